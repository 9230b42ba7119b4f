-- tp.schedule: turn schedules, the clock times at which turns end
-- (turn_schedule, in turn_timezone).
--
-- An entry is "HH:MM" (every day) or "DAYS HH:MM", DAYS being a comma
-- list of days and day ranges in English three-letter names: "Mon-Fri
-- 20:00", "Sat,Sun 12:00", "Mon,Wed,Fri-Sun 08:30"; a range may wrap
-- ("Fri-Mon"). A turn ends at the first listed time after it starts
-- (tp.tz says how a time that a daylight-saving change skips or repeats
-- is read).

local tz = require "tp.tz"

local M = {}

local DAYS = { sun = 0, mon = 1, tue = 2, wed = 3, thu = 4, fri = 5,
               sat = 6 }

local function parse_days(text)
    local set = {}
    for item in (text .. ","):gmatch("([^,]*),") do
        local a, b = item:match("^(%a+)%-(%a+)$")
        a = a or item
        local from, to = DAYS[a:lower()], DAYS[(b or a):lower()]
        if not from or not to then
            return nil, "'" .. item .. "' is not a day or a range of days "
                        .. "(Mon, Tue, Wed, Thu, Fri, Sat, Sun; Mon-Fri)"
        end
        local d = from
        while true do
            set[d] = true
            if d == to then
                break
            end
            d = (d + 1) % 7
        end
    end
    return set
end

-- Parses one entry -> { days = set of weekdays or nil (every day), h, m }.
function M.parse_entry(s)
    if type(s) ~= "string" then
        return nil, "an entry must be a string such as \"20:00\" or "
                    .. "\"Mon-Fri 20:00\""
    end
    local days, h, m = s:match("^%s*([%a,%-]-)%s*(%d%d?):(%d%d)%s*$")
    if not h then
        return nil, "'" .. s .. "' is not \"HH:MM\" or \"DAYS HH:MM\" "
                    .. "(e.g. \"Mon-Fri 20:00\")"
    end
    h, m = tonumber(h), tonumber(m)
    if h > 23 or m > 59 then
        return nil, "'" .. s .. "': no such time of day"
    end
    local entry = { h = h, m = m }
    if days ~= "" then
        local set, err = parse_days(days)
        if not set then
            return nil, "'" .. s .. "': " .. err
        end
        entry.days = set
    end
    return entry
end

-- Checks a turn_schedule list and its zone -> { entries, zone } or nil,
-- message. An empty list is no schedule (nil, nil).
function M.compile(list, zone_name)
    if type(list) ~= "table" then
        return nil, "turn_schedule must be a list of times"
    end
    local zone, err = tz.load(zone_name)
    if not zone then
        return nil, "turn_timezone: " .. err
    end
    if #list == 0 then
        if next(list) ~= nil then
            return nil, "turn_schedule must be a list of times"
        end
        return nil, nil
    end
    local entries = {}
    for i, s in ipairs(list) do
        local e, err = M.parse_entry(s)
        if not e then
            return nil, "turn_schedule[" .. i .. "]: " .. err
        end
        entries[i] = e
    end
    return { entries = entries, zone = zone, zone_name = zone_name }
end

-- The first scheduled time strictly after now (UTC seconds).
function M.next_end(sched, now)
    local zone = sched.zone
    local y, mo, d = tz.civil(now + zone:offset(now))
    local today = tz.days_from_civil(y, mo, d)
    local best
    -- From yesterday (a zone's offset may put it before now's local day)
    -- to eight days on: every weekday comes in that span.
    for day = today - 1, today + 8 do
        local wday = (day + 4) % 7
        local cy, cm, cd = tz.civil(day * 86400)
        for _, e in ipairs(sched.entries) do
            if not e.days or e.days[wday] then
                local t = zone:to_utc(cy, cm, cd, e.h, e.m)
                if t > now and (not best or t < best) then
                    best = t
                end
            end
        end
        if best and day > today + 1 then
            break
        end
    end
    return best
end

-- "2026-03-29 03:30 +02:00" for t in the schedule's zone (logs, status).
function M.local_text(sched, t)
    local off = sched.zone:offset(t)
    local y, mo, d, h, mi = tz.civil(t + off)
    local a = math.abs(off)
    return string.format("%04d-%02d-%02d %02d:%02d %s%02d:%02d %s", y, mo, d,
                         h, mi, off < 0 and "-" or "+",
                         math.floor(a / 3600), math.floor(a % 3600 / 60),
                         sched.zone_name)
end

return M
