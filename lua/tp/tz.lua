-- tp.tz: time zones from the system's TZif files (Debian's tzdata, in
-- /usr/share/zoneinfo, or $TZDIR), read in Lua: the server never sets TZ
-- (it runs threads, and localtime() under a changed TZ is not safe
-- there), and one server may use a zone other than the host's.
--
--   zone = tz.load("Europe/Berlin")     a zone, or nil, message
--   zone:offset(t)                      seconds east of UTC at UTC time t
--   zone:to_utc(y, mo, d, h, mi)        the UTC time of a local time
--   tz.civil(t)                         y, mo, d, h, mi, s, wday of a time
--                                       (wday 0 = Sunday)
--
-- A local time that does not exist (in the gap when clocks go forward) is
-- read with the offset from before the change, so it falls the gap's
-- length later on the new clock (Europe/Berlin: 02:30 on the last Sunday
-- of March is 03:30 CEST). A local time that happens twice (clocks go
-- back) is its first occurrence (02:30 CEST, not 02:30 CET).
-- Past the file's last transition the zone follows the POSIX rule in the
-- file's footer (e.g. "CET-1CEST,M3.5.0,M10.5.0/3").

local M = {}

M.dir = os.getenv("TZDIR") or "/usr/share/zoneinfo"

local DAY = 86400

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
-- algorithm).
local function days_from_civil(y, m, d)
    y = m <= 2 and y - 1 or y
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = math.floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end
M.days_from_civil = days_from_civil

local function civil_from_days(z)
    z = z + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460) +
                            math.floor(doe / 36524) -
                            math.floor(doe / 146096)) / 365)
    local y = yoe + era * 400
    local doy = doe - (365 * yoe + math.floor(yoe / 4) -
                       math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local d = doy - math.floor((153 * mp + 2) / 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    return m <= 2 and y + 1 or y, m, d
end

-- The civil fields of t (seconds, taken as UTC: pass t + offset for
-- local time). wday: 0 Sunday .. 6 Saturday.
function M.civil(t)
    local days = math.floor(t / DAY)
    local s = t - days * DAY
    local y, mo, d = civil_from_days(days)
    return y, mo, d, math.floor(s / 3600), math.floor(s % 3600 / 60),
           s % 60, (days + 4) % 7
end

-- ------------------------------------------------------------ POSIX rules

-- "[+-]hh[:mm[:ss]]" at position i of s -> seconds, next position.
local function posix_time(s, i)
    local sign, h, rest, j = s:match("^([+-]?)(%d+)([:%d]*)()", i)
    if not sign then
        return nil
    end
    local v = tonumber(h) * 3600
    local mm, ss = rest:match("^:(%d+)"), rest:match("^:%d+:(%d+)")
    v = v + (tonumber(mm) or 0) * 60 + (tonumber(ss) or 0)
    return sign == "-" and -v or v, j
end

local function posix_name(s, i)
    local name, j = s:match("^<([^>]*)>()", i)
    if name then
        return name, j
    end
    return s:match("^(%a%a%a+)()", i)
end

-- A rule's date "Mm.w.d[/time]" -> { m, w, d, time } (other forms, Jn
-- and n, are not used by tzdata's zones; they give nil).
local function posix_date(s, i)
    local m, w, d, j = s:match("^M(%d+)%.(%d)%.(%d)()", i)
    if not m then
        return nil
    end
    local time = 7200
    if s:sub(j, j) == "/" then
        time, j = posix_time(s, j + 1)
        if not time then
            return nil
        end
    end
    return { m = tonumber(m), w = tonumber(w), d = tonumber(d),
             time = time }, j
end

-- Parses a POSIX TZ string; nil when it is not understood.
local function parse_posix(s)
    local std, i = posix_name(s, 1)
    if not std then
        return nil
    end
    local off
    off, i = posix_time(s, i)
    if not off then
        return nil
    end
    local rule = { std = -off }
    if i > #s then
        return rule
    end
    local dst
    dst, i = posix_name(s, i)
    if not dst then
        return nil
    end
    rule.dst = rule.std + 3600
    if s:sub(i, i) ~= "," then
        local doff, j = posix_time(s, i)
        if not doff then
            return nil
        end
        rule.dst, i = -doff, j
    end
    if s:sub(i, i) ~= "," then
        return nil
    end
    rule.start, i = posix_date(s, i + 1)
    if not rule.start or s:sub(i, i) ~= "," then
        return nil
    end
    rule["end"], i = posix_date(s, i + 1)
    if not rule["end"] or i <= #s then
        return nil
    end
    return rule
end

-- The local (wall clock) time, as seconds from 1970, of a rule date in
-- year y: day d (0 Sunday) of week w (5: the last) of month m.
local function rule_local(date, y)
    local first = days_from_civil(y, date.m, 1)
    local wday = (first + 4) % 7
    local day = first + (date.d - wday) % 7 + (date.w - 1) * 7
    local next_month = date.m == 12 and days_from_civil(y + 1, 1, 1)
                       or days_from_civil(y, date.m + 1, 1)
    while day >= next_month do
        day = day - 7
    end
    return day * DAY + date.time
end

local function posix_offset(rule, t)
    if not rule.start then
        return rule.std
    end
    local y = M.civil(t + rule.std)
    -- Summer time starts at a time given on the standard clock and ends
    -- at one given on the summer clock.
    local s = rule_local(rule.start, y) - rule.std
    local e = rule_local(rule["end"], y) - rule.dst
    if s < e then
        return (t >= s and t < e) and rule.dst or rule.std
    end
    return (t >= e and t < s) and rule.std or rule.dst
end

-- ------------------------------------------------------------ TZif

local function be(data, pos, n)
    local v = 0
    for k = 0, n - 1 do
        v = v * 256 + data:byte(pos + k)
    end
    if v >= 2 ^ (8 * n - 1) then
        v = v - 2 ^ (8 * n)
    end
    return v
end

-- Parses a TZif file's contents -> { times, offsets (per transition),
-- initial, rule } or nil, message.
local function parse_tzif(data)
    if #data < 44 or data:sub(1, 4) ~= "TZif" then
        return nil, "not a TZif file"
    end
    local version = data:sub(5, 5)
    local function header(pos)
        if #data < pos + 43 then
            return nil
        end
        local c = {}
        for k = 0, 5 do
            c[k + 1] = be(data, pos + 20 + 4 * k, 4)
        end
        return { isut = c[1], isstd = c[2], leap = c[3], time = c[4],
                 type = c[5], char = c[6] }
    end
    local h = header(1)
    local tsize, pos = 4, 45
    if version >= "2" then
        -- Skip the 32-bit block; the 64-bit one follows its header.
        pos = pos + h.time * 5 + h.type * 6 + h.char + h.leap * 8 +
              h.isstd + h.isut
        h = header(pos)
        if not h then
            return nil, "truncated TZif file"
        end
        tsize, pos = 8, pos + 44
    end
    local need = h.time * (tsize + 1) + h.type * 6 + h.char +
                 h.leap * (tsize + 4) + h.isstd + h.isut
    if h.type < 1 or #data < pos + need - 1 then
        return nil, "truncated TZif file"
    end
    local times, idx = {}, {}
    for k = 1, h.time do
        times[k] = be(data, pos + (k - 1) * tsize, tsize)
    end
    pos = pos + h.time * tsize
    for k = 1, h.time do
        idx[k] = data:byte(pos + k - 1)
    end
    pos = pos + h.time
    local types = {}
    for k = 0, h.type - 1 do
        types[k] = be(data, pos + k * 6, 4)
    end
    local offsets = {}
    for k = 1, h.time do
        offsets[k] = types[idx[k]]
        if offsets[k] == nil then
            return nil, "bad TZif file (type index)"
        end
    end
    local zone = { times = times, offsets = offsets, initial = types[0] }
    pos = pos + need - h.time * (tsize + 1)
    if version >= "2" then
        local footer = data:match("^\n([^\n]*)\n", pos)
        if footer and footer ~= "" then
            zone.rule = parse_posix(footer)
        end
    end
    return zone
end

local Zone = {}
Zone.__index = Zone

function Zone:offset(t)
    local times = self.times
    local n = #times
    if n == 0 or t < times[1] then
        if n == 0 and self.rule then
            return posix_offset(self.rule, t)
        end
        return self.initial
    end
    if t >= times[n] then
        if self.rule then
            return posix_offset(self.rule, t)
        end
        return self.offsets[n]
    end
    local lo, hi = 1, n     -- times[lo] <= t < times[hi]
    while hi - lo > 1 do
        local mid = math.floor((lo + hi) / 2)
        if times[mid] <= t then
            lo = mid
        else
            hi = mid
        end
    end
    return self.offsets[lo]
end

function Zone:to_utc(y, mo, d, h, mi)
    local wall = days_from_civil(y, mo, d) * DAY + h * 3600 + mi * 60
    -- The offsets a day either side (no zone changes twice in two days).
    local before, after = self:offset(wall - DAY), self:offset(wall + DAY)
    local best
    for _, o in ipairs { before, after } do
        local t = wall - o
        if self:offset(t) == o and (not best or t < best) then
            best = t
        end
    end
    return best or (wall - before)
end

local cache = {}

-- The zone named name ("UTC", "Europe/Berlin" ...), or nil, message.
function M.load(name)
    if cache[name] then
        return cache[name]
    end
    if type(name) ~= "string" or name == "" or
       not name:match("^[%w_%+%-]+[%w_%+%-/]*$") or name:find("%.%.") or
       name:find("//") then
        return nil, "not a time zone name: " .. tostring(name)
    end
    local f = io.open(M.dir .. "/" .. name, "rb")
    if not f then
        if name == "UTC" then
            cache[name] = setmetatable({ times = {}, offsets = {},
                                         initial = 0 }, Zone)
            return cache[name]
        end
        return nil, "unknown time zone '" .. name .. "' (no file " ..
                    M.dir .. "/" .. name .. "; is tzdata installed?)"
    end
    local data = f:read("*a")
    f:close()
    local zone, err = parse_tzif(data or "")
    if not zone then
        return nil, "time zone " .. name .. ": " .. err
    end
    cache[name] = setmetatable(zone, Zone)
    return cache[name]
end

M.parse_posix = parse_posix

return M
