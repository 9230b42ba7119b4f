-- tp.dbcheck: what a game database holds and what is wrong with it, for
-- tpserver check and tpserver repair (lua/tp/dbtool.lua) and for the log
-- at start (tp.db).
--
--   log_tail(path)  -> nil | { dropped = bytes, at = offset } | { corrupt }
--   scan(raw)       -> report: counts per namespace, problems (each with
--                      a fix where one exists), the game's turn and ruleset
--   apply(raw, report) -> fixes written (one synced batch)
--
-- Problems are the game's own consistency (LevelDB checks its blocks and
-- files itself): values that are not JSON, objects whose parent or
-- children are missing, queues without their object, players without
-- their account or board, messages of boards that are gone.

local cjson = require "cjson"

local M = {}

local decode, encode = cjson.decode, cjson.encode

-- ------------------------------------------------------------ the log

-- LevelDB's log: 32 KiB blocks of records, each a 7-byte header (CRC,
-- 16-bit length, type) and its bytes; a batch too large for the rest of
-- a block is cut into FIRST, MIDDLE..., LAST fragments. A record that the
-- file ends inside is a write that never finished: LevelDB drops it
-- silently when it opens the database. This finds it so that the drop is
-- said. (Checksums are LevelDB's business: it refuses a bad one.)
local BLOCK, HEADER = 32768, 7
local FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4

function M.log_tail(path)
    local f = io.open(path, "rb")
    if not f then
        return nil
    end
    local data = f:read("*a") or ""
    f:close()
    local n, pos, first = #data, 0, nil
    while pos < n do
        local room = BLOCK - pos % BLOCK
        if room < HEADER then
            pos = pos + room             -- a block's zero trailer
        elseif n - pos < HEADER then
            break                        -- a header cut short
        else
            local lo, hi, kind = data:byte(pos + 5, pos + 7)
            local len = lo + hi * 256
            if kind == 0 and len == 0 then
                pos = pos + room         -- zeroes: the rest of the block
            elseif HEADER + len > room then
                if pos + HEADER + len > n then
                    break                -- cut by the end of the file
                end
                return { corrupt = true, at = pos }
            elseif pos + HEADER + len > n then
                break
            else
                if kind == FULL or kind == LAST then
                    first = nil
                elseif kind == FIRST then
                    first = pos
                elseif kind ~= MIDDLE then
                    return { corrupt = true, at = pos }
                end
                pos = pos + HEADER + len
            end
        end
    end
    if pos >= n and not first then
        return nil
    end
    local at = first or pos
    if at >= n then
        return nil
    end
    -- Zeroes after the last record (space a file system kept) are not a
    -- write.
    if not data:sub(at + 1):find("[^%z]") then
        return nil
    end
    return { dropped = n - at, at = at }
end

-- ------------------------------------------------------------ damage

-- The keys of raw whose values cannot be read with their checksums
-- checked (LevelDB's iterator skips a damaged block and says so only at
-- the end): every key is walked without checks, and each one read again
-- with them. fn(key, value) gets every good one. Returns the list of bad
-- keys, and the error that stopped the walk (nil when it finished).
function M.damaged_keys(raw, fn)
    local bad = {}
    local ok, err = pcall(function()
        for k in raw:iter { keys_only = true, verify_checksums = false } do
            local v = raw:get(k)
            if v then
                if fn then
                    fn(k, v)
                end
            else
                bad[#bad + 1] = k
            end
        end
    end)
    return bad, not ok and tostring(err):gsub("^.-: ", "") or nil
end

-- ------------------------------------------------------------ the game

-- True when s is well-formed UTF-8 (what the server writes: lua-cjson
-- passes bytes through, so damage inside a string decodes fine).
local function valid_utf8(s)
    local i, n = 1, #s
    while true do
        i = s:find("[\128-\255]", i)
        if not i then
            return true
        end
        local c = s:byte(i)
        local len, min
        if c >= 0xC2 and c <= 0xDF then
            len, min = 1, 0x80
        elseif c >= 0xE0 and c <= 0xEF then
            len, min = 2, 0x800
        elseif c >= 0xF0 and c <= 0xF4 then
            len, min = 3, 0x10000
        else
            return false
        end
        if i + len > n then
            return false
        end
        local cp = c % (2 ^ (6 - len))
        for j = i + 1, i + len do
            local b = s:byte(j)
            if b < 0x80 or b > 0xBF then
                return false
            end
            cp = cp * 64 + b % 64
        end
        if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then
            return false
        end
        i = i + len + 1
    end
end
M.valid_utf8 = valid_utf8

local function id_of(key)
    return tonumber(key:match("/(%d+)$"))
end

local function set_of(list)
    local s = {}
    for _, v in ipairs(type(list) == "table" and list or {}) do
        s[v] = true
    end
    return s
end

-- Reads every key of raw (a tp.store handle). Returns a report:
-- { keys, counts = { ns = n }, problems = { { key, what, fix } },
--   game = meta/game or nil, turn = meta/turn or nil }. A fix is a list
-- of { "put", key, value } / { "delete", key } actions.
function M.scan(raw)
    local r = { keys = 0, counts = {}, problems = {} }
    local objs, queues, players, accounts, boards = {}, {}, {}, {}, {}
    local msgs, hist, meta, gone = {}, {}, {}, {}
    local function problem(key, what, fix)
        r.problems[#r.problems + 1] = { key = key, what = what, fix = fix }
    end
    for k, v in raw:iter() do
        r.keys = r.keys + 1
        local ns = k:match("^([^/]*)/") or k
        r.counts[ns] = (r.counts[ns] or 0) + 1
        local ok, t = pcall(decode, v)
        if ok and not valid_utf8(v) then
            ok, t = false, "not UTF-8: a damaged byte"
        end
        if not ok then
            local why = tostring(t):gsub("^.-:%d+: ", "")
            t = nil
            if ns ~= "hist" then
                problem(k, "its value is not JSON (" .. why .. "); removed",
                        { { "delete", k } })
            end
        end
        if t ~= nil then
            local id = id_of(k)
            if ns == "meta" then
                meta[k] = t
            elseif ns == "obj" and type(t) == "table" then
                objs[id] = t
            elseif ns == "gone" then
                gone[id] = true
            elseif ns == "queue" and type(t) == "table" then
                queues[id] = t
            elseif ns == "player" and type(t) == "table" then
                players[id] = t
            elseif ns == "account" and type(t) == "table" then
                accounts[k] = t
            elseif ns == "board" and type(t) == "table" then
                boards[id] = t
            elseif ns == "msg" then
                msgs[#msgs + 1] = k
            elseif ns == "hist" and type(t) == "table" and t.o then
                local turn = tonumber(k:match("^hist/(%d+)/"))
                local h = hist[id]
                if not h or turn > h.turn then
                    hist[id] = { turn = turn, m = t.m, o = t.o }
                end
            end
        end
    end
    r.game, r.turn = meta["meta/game"], meta["meta/turn"]
    if not r.game then
        problem("meta/game", "there is no game record: this is not a "
                .. "tpserver game, or the record was lost (restore a "
                .. "backup)")
    end
    local now = os.time()

    -- Objects the damage took that the history has: the newest record
    -- (the object as it was at the end of an earlier turn).
    for _, p in ipairs(r.problems) do
        local id = p.key:match("^obj/") and id_of(p.key)
        if id and hist[id] then
            local o = hist[id].o
            o.modtime = now
            objs[id] = o
            p.fix = { { "put", p.key, o } }
            p.what = p.what .. "; restored from the history of turn " ..
                     hist[id].turn .. " (as it was at the end of turn " ..
                     (hist[id].turn - 1) .. ")"
        end
    end

    -- Objects with no record at all (no obj/, no gone/: dropped by a
    -- repair) that the history has.
    for id, h in pairs(hist) do
        local k = string.format("obj/%010d", id)
        if not objs[id] and not gone[id] then
            local o = h.o
            o.modtime = now
            objs[id] = o
            problem(k, "missing; restored from the history of turn " ..
                    h.turn .. " (as it was at the end of turn " ..
                    (h.turn - 1) .. ")", { { "put", k, o } })
        end
    end

    local changed = {}                  -- objects a fix rewrites
    local function fixed(id)
        changed[id] = true
    end
    for id, o in pairs(objs) do
        local kids = {}
        local lost = {}
        for _, c in ipairs(type(o.children) == "table" and o.children
                           or {}) do
            if objs[c] then
                kids[#kids + 1] = c
            else
                lost[#lost + 1] = c
            end
        end
        if #lost > 0 then
            o.children = kids
            fixed(id)
            problem(string.format("obj/%010d", id), string.format(
                "lists missing objects as its children (%s): they were "
                .. "lost; taken off the list", table.concat(lost, ", ")))
        end
        if id ~= 0 and o.parent ~= nil and not objs[o.parent] then
            problem(string.format("obj/%010d", id), string.format(
                "its parent, object %s, is missing; moved into the universe",
                tostring(o.parent)))
            o.parent = 0
            fixed(id)
            if objs[0] then
                local u = objs[0]
                u.children = type(u.children) == "table" and u.children
                             or {}
                if not set_of(u.children)[id] then
                    u.children[#u.children + 1] = id
                    table.sort(u.children)
                    fixed(0)
                end
            end
        end
        if o.queue and not queues[id] then
            problem(string.format("obj/%010d", id), "its order queue is "
                    .. "missing; given an empty one", { { "put",
                    string.format("queue/%010d", id), { id = id,
                    object = id, owner = o.owner or 0, allowed = {},
                    orders = {}, modtime = now } } })
        end
    end
    for id in pairs(changed) do
        local o = objs[id]
        o.modtime = now
        r.problems[#r.problems + 1] = { key = string.format("obj/%010d",
            id), fix = { { "put", string.format("obj/%010d", id), o } } }
    end
    for id in pairs(queues) do
        if not objs[id] then
            problem(string.format("queue/%010d", id), "the queue of a "
                    .. "missing object; removed",
                    { { "delete", string.format("queue/%010d", id) } })
        end
    end
    local by_id = {}
    for k, a in pairs(accounts) do
        if a.id then
            by_id[a.id] = a
        end
        if a.id and not players[a.id] then
            local p = { id = a.id, name = a.name, race = "Human",
                        created = a.created or now, alive = true,
                        score = 0, modtime = now }
            players[a.id] = p
            problem(k, string.format("its player record (player %d) is "
                    .. "missing; made again (the ruleset's fields of it "
                    .. "are lost)", a.id), { { "put",
                    string.format("player/%010d", a.id), p } })
        end
    end
    local ids = meta["meta/ids"]
    local next_board = ids and ids.board or 1
    for id in pairs(boards) do
        next_board = math.max(next_board, id + 1)
    end
    local ids_changed = false
    for id, p in pairs(players) do
        if not by_id[id] then
            problem(string.format("player/%010d", id), "it has no "
                    .. "account: nobody can log in as " ..
                    tostring(p.name) .. " (add the account again from "
                    .. "the console)")
        end
        if p.board and not boards[p.board] then
            local b = { id = next_board, name = "Personal board",
                        description = "Messages for " .. tostring(p.name),
                        owner = id, next = 1, modtime = now }
            boards[next_board] = b
            problem(string.format("player/%010d", id), string.format(
                "its board %d is missing; a new empty one is board %d",
                p.board, next_board), { { "put",
                string.format("board/%010d", next_board), b } })
            p.board = next_board
            p.modtime = now
            table.insert(r.problems[#r.problems].fix, { "put",
                string.format("player/%010d", id), p })
            next_board = next_board + 1
            ids_changed = true
        end
    end
    for _, k in ipairs(msgs) do
        local b = tonumber(k:match("^msg/(%d+)/"))
        if not boards[b] then
            problem(k, "a message of a missing board; removed",
                    { { "delete", k } })
        end
    end
    if r.game and not r.turn then
        local t = 0
        for _, h in pairs(hist) do
            t = math.max(t, h.turn)
        end
        r.turn = { turn = t, started = now, finished = {} }
        problem("meta/turn", "the turn record is missing; the game goes "
                .. "on at turn " .. t .. " (from its history)",
                { { "put", "meta/turn", r.turn } })
    end
    if r.game and (not ids or ids_changed) then
        local o, d = 0, 1
        for id in pairs(objs) do
            o = math.max(o, id + 1)
        end
        for k in raw:iter { prefix = "gone/", keys_only = true } do
            o = math.max(o, id_of(k) + 1)
        end
        for k in raw:iter { prefix = "design/", keys_only = true } do
            d = math.max(d, id_of(k) + 1)
        end
        ids = ids or {}
        local fresh = { object = math.max(ids.object or 0, o),
                        design = math.max(ids.design or 1, d),
                        board = math.max(ids.board or 1, next_board) }
        if not meta["meta/ids"] then
            problem("meta/ids", "the id counters are missing; made from "
                    .. "the highest ids", { { "put", "meta/ids", fresh } })
        else
            r.problems[#r.problems + 1] = { key = "meta/ids",
                fix = { { "put", "meta/ids", fresh } } }
        end
    end
    return r
end

-- The problems worth a line (the rest only carry fixes).
function M.described(report)
    local out = {}
    for _, p in ipairs(report.problems) do
        if p.what then
            out[#out + 1] = p
        end
    end
    return out
end

-- Writes every fix of report in one synced batch. Returns the number of
-- actions, or nil and a message.
function M.apply(raw, report)
    local store = require "tp.store"
    local b = store.batch()
    local n = 0
    for _, p in ipairs(report.problems) do
        for _, a in ipairs(p.fix or {}) do
            if a[1] == "put" then
                b:put(a[2], encode(a[3]))
            else
                b:delete(a[2])
            end
            n = n + 1
        end
    end
    if n == 0 then
        return 0
    end
    local ok, err = raw:write(b, true)
    if not ok then
        return nil, err
    end
    return n
end

return M
