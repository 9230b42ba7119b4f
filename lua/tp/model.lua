-- tp.model: the game's working set, a cache of the database.
--
-- Everything the game holds lives here as plain Lua tables, loaded from
-- LevelDB at start, and goes back to LevelDB through commit(): changes are
-- gathered in dirty sets and written as one atomic batch (one per request,
-- one per turn). rollback() throws away uncommitted changes by reloading
-- the working set from the database, which is the truth.
--
-- Key layout (docs/storage.md); players and accounts are tp.accounts':
--   player/<id>, account/<name>.
--   obj/<id>            object      { id, type, name, desc, parent,
--                                     children, modtime, owner, pos, vel,
--                                     size, queue, data }
--   gone/<id>           removed object { id, modtime [, seen_by] }:
--                       seen_by lists the players who could see it when
--                       it went (absent: everyone could)
--   queue/<id>          order queue { id, object, owner, allowed, orders,
--                                     modtime }
--   board/<id>          board       { id, name, description, owner,
--                                     msgs (message serials in slot order),
--                                     next, modtime }
--   msg/<board>/<ser>   message     { subject, body, turn, references }
--   design/<id>         design      { id, name, description, owner,
--                                     categories, components, modtime, ... }
--   meta/clock          last modification time stamped
--   meta/ids            next ids { object, design, board }
--   meta/rsstate        the ruleset's own persistent state
--   meta/seen           fog of war: player id -> { object id -> true }
--                       (ctx:reveal; the ruleset's visible hook reads it)
--   battle/<id>         a battle log { id, turn, title, media, players,
--                                     sides, xml } (tp.battle)
--   battlei/<id>        the same without the document, for listings
--   hist/<turn>/<id>    how object id was at the end of turn - 1, for every
--                       object changed during turn <turn> (by the turn's
--                       processing or by a request): {"m": modtime,
--                       "o": object without modtime}, or null when it did
--                       not exist. Kept for history_turns turns.
-- ids are written with 10 digits so that prefix scans come back in order.

local db_mod = require "tp.db"
local core = require "tp.core"
local cjson = require "cjson"

local M = {}

local db
local key = db_mod.key
local encode = cjson.encode

M.objects = {}    -- id -> object
M.gone = {}       -- id -> modtime of removal
M.gone_seen = {}  -- id -> players who could see it then (nil: everyone)
M.viewers_of = nil -- function(obj) -> player ids that see it, or nil for
                   -- everyone (set by tp.views)
M.queues = {}     -- id -> queue
M.boards = {}     -- id -> board
M.messages = {}   -- board id -> { serial -> message }
M.designs = {}    -- id -> design
M.rsstate = {}    -- ruleset state
M.seen = {}       -- player id (string) -> { object id (string) -> true }
M.ids = { object = 0, design = 1, board = 1 }

local clock = 0
local dirty           -- { obj = {}, queue = {}, board = {}, msg = {}, ... }
local saved_json = {} -- object id -> JSON last written, without modtime
                      -- (change detection); see saved()
local saved_raw = {}  -- object id -> the stored value, as loaded: turned
                      -- into saved_json when first needed
local saved_mod = {}  -- object id -> modtime last written
local fresh = {}      -- object id -> its JSON as detect_changes found it
M.history_turns = 10  -- turns of object history kept (0: none)
M.turn = 0            -- the current turn (set by tp.game, and by commits
                      -- that start a turn): history records go under it
local recorded = {}   -- object id -> true: hist/<M.turn>/<id> is written

local pending          -- commit()'s bookkeeping, applied after its write
local generation = 0   -- see M.generation
local function reset_dirty()
    generation = generation + 1
    pending = nil
    dirty = { obj = {}, gone = {}, queue = {}, board = {}, msg = {},
              design = {}, player = {}, battle = {}, meta = false,
              seen = false }
    fresh = {}
end
reset_dirty()

-- A new modification time: the wall clock in seconds, strictly increasing
-- (PROTOCOL.md 8.4).
function M.stamp()
    local now = math.floor(core.now())
    clock = now > clock and now or clock + 1
    dirty.meta = true
    return clock
end

function M.clock()
    return clock
end

-- A number that changes whenever the working set may have: at every
-- commit written, undo, rollback and load (and so at every end of turn).
-- Between two changes of it, with nothing dirty (M.is_dirty), the model
-- is what the database holds: what was shown from it may be shown again
-- (tp.views caches encoded frames under it).
function M.generation()
    return generation
end

-- ------------------------------------------------------------ loading

local function object_json(obj)
    local m = obj.modtime
    obj.modtime = nil
    local s = encode(obj)
    obj.modtime = m
    return s
end

-- The JSON of object id as last written, without modtime (nil: none).
local function saved(id)
    local json = saved_json[id]
    if json == nil and saved_raw[id] then
        json = object_json(cjson.decode(saved_raw[id]))
        saved_json[id], saved_raw[id] = json, nil
    end
    return json
end

local function load_all(database)
    db = database
    M.objects, M.gone, M.queues, M.boards = {}, {}, {}, {}
    M.gone_seen = {}
    M.messages, M.designs = {}, {}
    saved_json, saved_raw, saved_mod = {}, {}, {}
    reset_dirty()
    clock = (db:get("meta/clock") or {}).clock or 0
    M.ids = db:get("meta/ids") or { object = 0, design = 1, board = 1 }
    M.rsstate = db:get("meta/rsstate") or {}
    M.seen = db:get("meta/seen") or {}
    for _, o, raw in db:each("obj/") do
        M.objects[o.id] = o
        saved_raw[o.id] = raw
        saved_mod[o.id] = o.modtime
    end
    for _, g in db:each("gone/") do
        M.gone[g.id] = g.modtime
        M.gone_seen[g.id] = g.seen_by
    end
    for _, q in db:each("queue/") do
        M.queues[q.id] = q
    end
    for _, b in db:each("board/") do
        M.boards[b.id] = b
        M.messages[b.id] = {}
        if not b.reordered then
            b.msgs = {}               -- rebuilt from the message keys
        end
    end
    for k, m in db:each("msg/") do
        local b, s = k:match("^msg/(%d+)/(%d+)$")
        b, s = tonumber(b), tonumber(s)
        if M.messages[b] then
            M.messages[b][s] = m
            local board = M.boards[b]
            if not board.reordered then
                board.msgs[#board.msgs + 1] = s     -- keys come in order
            end
        end
    end
    for _, d in db:each("design/") do
        M.designs[d.id] = d
    end
    recorded = {}
    for k in db.raw:iter { prefix = string.format("hist/%010d/", M.turn),
                           keys_only = true } do
        recorded[tonumber(k:match("/(%d+)$"))] = true
    end
end

-- Loads the working set from database (a tp.db handle). The collector
-- waits meanwhile: the heap only grows, and collecting it while it grows
-- costs a quarter of the time.
function M.load(database)
    collectgarbage("stop")
    local ok, err = pcall(load_all, database)
    collectgarbage("restart")
    if not ok then
        error(err, 0)
    end
end

-- Throws away the uncommitted changes of one request by reading back
-- just the records it marked (a request changes a few records; rollback()
-- below reloads everything, which a turn needs). Changes a hook made
-- without marking them are not seen here.
function M.undo()
    local function reload_object(id)
        local raw = db.raw:get(key("obj", id))
        if raw then
            local o = cjson.decode(raw)
            M.objects[id] = o
            saved_raw[id], saved_json[id], saved_mod[id] = raw, nil,
                                                           o.modtime
        else
            M.objects[id] = nil
            saved_raw[id], saved_json[id], saved_mod[id] = nil, nil, nil
        end
        local g = db:get(key("gone", id))
        M.gone[id] = g and g.modtime or nil
        M.gone_seen[id] = g and g.seen_by or nil
    end
    local function reload_queue(id)
        M.queues[id] = db:get(key("queue", id))
    end
    for id in pairs(dirty.obj) do
        reload_object(id)
    end
    for id in pairs(dirty.gone) do
        reload_object(id)
        reload_queue(id)
    end
    for id in pairs(dirty.queue) do
        reload_queue(id)
    end
    for id in pairs(dirty.board) do
        local b = db:get(key("board", id))
        M.boards[id] = b
        M.messages[id] = b and {} or nil
        if b then
            if not b.reordered then
                b.msgs = {}
            end
            for k, m in db:each(string.format("msg/%010d/", id)) do
                local serial = tonumber(k:match("/(%d+)$"))
                M.messages[id][serial] = m
                if not b.reordered then
                    b.msgs[#b.msgs + 1] = serial
                end
            end
        end
    end
    for id in pairs(dirty.design) do
        M.designs[id] = db:get(key("design", id))
    end
    local players = next(dirty.player) ~= nil
    clock = (db:get("meta/clock") or {}).clock or 0
    M.ids = db:get("meta/ids") or { object = 0, design = 1, board = 1 }
    M.rsstate = db:get("meta/rsstate") or {}
    if dirty.seen then
        M.seen = db:get("meta/seen") or {}
    end
    reset_dirty()
    if M.on_rollback then
        M.on_rollback(players)
    end
end

-- Throws away every uncommitted change. on_rollback (set by tp.game)
-- reloads what other modules keep (the players).
function M.rollback()
    M.load(db)
    if M.on_rollback then
        M.on_rollback()
    end
end

-- ------------------------------------------------------------ commit

local function hist_key(turn, id)
    return string.format("hist/%010d/%010d", turn, id)
end

-- The undo record of object id: how it was before this commit (a stored
-- value as loaded has its modtime inside: objects_at overrides it).
local function undo_record(id)
    local json = saved_json[id] or saved_raw[id]
    if not json then
        return "null"
    end
    return '{"m":' .. string.format("%.0f", saved_mod[id] or 0) ..
           ',"o":' .. json .. '}'
end

-- Writes the records of one kind: record_of(entry, mark) gives, for each
-- entry of the kind's dirty set, the key and the value now (nil or false:
-- gone, so deleted). Returns how many.
local function write_records(batch, marks, record_of)
    local n = 0
    for entry, mark in pairs(marks) do
        local k, v = record_of(entry, mark)
        if v then
            batch:put(k, v)
        else
            batch:delete(k)
        end
        n = n + 1
    end
    return n
end

-- Writes every change into batch (a tp.db batch; a new one when nil) and
-- commits it when it was created here. turn: the number of the turn this
-- commit starts (a turn's commit), nil for a request's. The first change
-- of an object during a turn keeps the object's previous state as history
-- (hist/<turn>/<id>); a turn's commit also drops the history older than
-- history_turns turns. Returns the number of records.
function M.commit(batch, sync, turn)
    local own = batch == nil
    batch = batch or db:batch()
    local n = 0
    -- Nothing of the working set's bookkeeping changes until the batch is
    -- written: what is noted here is applied by settle() after the write,
    -- so that a failed write leaves every change marked dirty (the caller
    -- then undoes or rolls back, and memory equals the disk again).
    local cur_turn = turn or M.turn
    local rec = turn and {} or recorded
    local newly = {}            -- ids that get their history record now
    local saved = {}            -- id -> { json, modtime } | false (gone)
    -- (Records made during turn 0, the first, would only serve
    -- objects_at(-1).)
    local history = M.history_turns > 0 and cur_turn > 0
    local function record(id)
        if history and not rec[id] and not newly[id] then
            batch.raw:put(hist_key(cur_turn, id), undo_record(id))
            newly[id] = true
        end
    end
    for id in pairs(dirty.obj) do
        local o = M.objects[id]
        if o then
            record(id)
            -- Encoded once: the stored value is the JSON without
            -- modtime with modtime added.
            local json = fresh[id] or object_json(o)
            batch.raw:put(key("obj", id), json:sub(1, -2) ..
                          string.format(',"modtime":%.0f}', o.modtime or 0))
            batch.n = batch.n + 1
            saved[id] = { json, o.modtime }
            n = n + 1
        end
    end
    for id, modtime in pairs(dirty.gone) do
        record(id)
        batch:delete(key("obj", id))
        batch:delete(key("queue", id))
        batch:put(key("gone", id), { id = id, modtime = modtime,
                                     seen_by = M.gone_seen[id] })
        saved[id] = false
        n = n + 1
    end
    if turn then
        -- Keep the undo records of the last history_turns turns (all of
        -- the older ones: history_turns may have been lowered).
        local keep = turn - M.history_turns + 1
        if keep > 1 then
            for k in db.raw:iter { start = "hist/",
                                   stop = string.format("hist/%010d/", keep),
                                   keys_only = true } do
                batch:delete(k)
            end
        end
    end
    n = n + write_records(batch, dirty.queue, function(id)
        return key("queue", id), M.queues[id]
    end)
    for id in pairs(dirty.board) do
        -- The slot order is stored only when it is not the order of the
        -- serials (a message posted before others): appending to a board
        -- then costs the same however long the board is.
        local b = M.boards[id]
        local msgs = b.msgs
        if not b.reordered then
            b.msgs = nil
        end
        batch:put(key("board", id), b)
        b.msgs = msgs
        n = n + 1
    end
    -- A message's entry is its key, marked with the message (false:
    -- removed); a player's is marked with the record.
    n = n + write_records(batch, dirty.msg, function(k, m) return k, m end)
    n = n + write_records(batch, dirty.design, function(id)
        return key("design", id), M.designs[id]
    end)
    n = n + write_records(batch, dirty.player, function(id, p)
        return key("player", id), p
    end)
    if dirty.seen then
        batch:put("meta/seen", M.seen)
        n = n + 1
    end
    for id, rec in pairs(dirty.battle) do
        local summary = {}
        for k, v in pairs(rec) do
            if k ~= "xml" then
                summary[k] = v
            end
        end
        batch:put(key("battle", id), rec)
        batch:put(key("battlei", id), summary)
        n = n + 1
    end
    if dirty.meta then
        batch:put("meta/clock", { clock = clock })
        batch:put("meta/ids", M.ids)
        batch:put("meta/rsstate", M.rsstate)
        n = n + 1
    end
    local settle
    settle = function()
        -- Only the settle step of the last commit, and only if nothing
        -- was reloaded meanwhile (a rollback made it stale).
        if pending ~= settle then
            return
        end
        if turn then
            M.turn = turn
            recorded = rec
        end
        for id in pairs(newly) do
            recorded[id] = true
        end
        for id, v in pairs(saved) do
            if v then
                saved_json[id], saved_raw[id], saved_mod[id] = v[1], nil,
                                                               v[2]
            else
                saved_json[id], saved_raw[id], saved_mod[id] = nil, nil,
                                                               nil
            end
        end
        reset_dirty()
    end
    pending = settle
    -- The batch settles the working set itself once it is written
    -- (tp.db's after-write step), whoever commits it; a failed write
    -- leaves the changes marked, for undo() or rollback().
    batch:after_write(settle)
    if own then
        batch:commit(sync)   -- raises when the write fails
    end
    return n
end

-- The batch given to commit() was written. (Batch:commit settles the
-- working set by itself; this is for callers that want to say so.)
function M.committed()
    local settle = pending
    if settle then
        settle()
    end
end

-- Finds objects changed without being marked (a ruleset that set a field
-- and did not call changed()) and marks them, stamping their modtime.
function M.detect_changes()
    local found = 0
    for id, o in pairs(M.objects) do
        if not dirty.obj[id] then
            local json = object_json(o)
            if saved(id) ~= json then
                o.modtime = M.stamp()
                dirty.obj[id] = true
                fresh[id] = json     -- (commit needs it next)
                found = found + 1
            end
        end
    end
    return found
end

-- The objects as they were at the end of turn n (a new table of copies),
-- rebuilt from the current state and the undo records of later turns.
-- Returns nil, message when n is older than the history kept.
function M.objects_at(n, current_turn)
    if n > current_turn or n < 0 then
        return nil, "no turn " .. n
    end
    if n < current_turn - M.history_turns then
        return nil, string.format("turn %d is older than the %d turns of "
                                  .. "history kept", n, M.history_turns)
    end
    local out = {}
    for id, o in pairs(M.objects) do
        out[id] = cjson.decode(encode(o))
    end
    for t = current_turn, n + 1, -1 do
        for k, v in db.raw:iter { prefix = string.format("hist/%010d/", t) } do
            local id = tonumber(k:match("/(%d+)$"))
            if v == "null" then
                out[id] = nil
            else
                local rec = cjson.decode(v)
                rec.o.modtime = rec.m
                out[id] = rec.o
            end
        end
    end
    return out
end

-- ------------------------------------------------------------ objects

local function sorted_insert(list, id)
    local i = #list
    while i > 0 and list[i] > id do
        i = i - 1
    end
    if list[i] ~= id then
        table.insert(list, i + 1, id)
    end
end

local function remove_value(list, id)
    for i = #list, 1, -1 do
        if list[i] == id then
            table.remove(list, i)
        end
    end
end

-- Marks obj changed: a new modtime, written at the next commit.
function M.changed(obj)
    obj.modtime = M.stamp()
    dirty.obj[obj.id] = true
    return obj
end

function M.new_object_id()
    local id = M.ids.object
    M.ids.object = id + 1
    dirty.meta = true
    return id
end

-- Creates an object. t: type (number), name, desc, parent, owner, pos,
-- vel, size, data. Returns it.
function M.new_object(t)
    local id = t.id or M.new_object_id()
    assert(not M.objects[id], "object id in use")
    local o = {
        id = id, type = t.type, name = t.name or "", desc = t.desc or "",
        parent = t.parent or 0, children = {}, owner = t.owner or 0,
        pos = t.pos or { x = 0, y = 0, z = 0 },
        vel = t.vel or { x = 0, y = 0, z = 0 },
        size = t.size or 0, data = t.data or {},
    }
    M.objects[id] = o
    M.gone[id] = nil
    M.gone_seen[id] = nil
    if id ~= o.parent then
        local p = M.objects[o.parent]
        if p then
            sorted_insert(p.children, id)
            M.changed(p)
        end
    end
    return M.changed(o)
end

-- Moves obj under a new parent.
function M.set_parent(obj, parent_id)
    if obj.parent == parent_id then
        return
    end
    local old = M.objects[obj.parent]
    if old then
        remove_value(old.children, obj.id)
        M.changed(old)
    end
    obj.parent = parent_id
    local new = M.objects[parent_id]
    if new then
        sorted_insert(new.children, obj.id)
        M.changed(new)
    end
    M.changed(obj)
end

-- Removes obj (and its queue); children move to obj's parent.
function M.remove_object(obj)
    local id = obj.id
    for _, c in ipairs(obj.children) do
        local child = M.objects[c]
        if child then
            M.set_parent(child, obj.parent)
        end
    end
    local parent = M.objects[obj.parent]
    if parent then
        remove_value(parent.children, id)
        M.changed(parent)
    end
    -- Who saw it go: only they are told it is gone (ID lists with from).
    M.gone_seen[id] = M.viewers_of and M.viewers_of(obj) or nil
    M.objects[id] = nil
    M.queues[id] = nil
    dirty.obj[id] = nil
    dirty.queue[id] = nil
    local t = M.stamp()
    M.gone[id] = t
    dirty.gone[id] = t
end

-- Ascending list of object ids (fresh table).
-- How many objects the universe has now.
function M.object_count()
    local n = 0
    for _ in pairs(M.objects) do
        n = n + 1
    end
    return n
end

function M.object_ids()
    local ids = {}
    for id in pairs(M.objects) do
        ids[#ids + 1] = id
    end
    table.sort(ids)
    return ids
end

-- ------------------------------------------------------------ queues

-- Gives obj an order queue (queue id = object id, PROTOCOL.md 7.5).
function M.new_queue(obj, owner, allowed)
    assert(obj.id ~= 0, "object 0 cannot take orders")
    local q = { id = obj.id, object = obj.id, owner = owner or 0,
                allowed = allowed or {}, orders = {}, modtime = M.stamp() }
    M.queues[obj.id] = q
    obj.queue = true
    dirty.queue[q.id] = true
    M.changed(obj)
    return q
end

-- Marks a queue changed; the owning object's modtime moves too.
function M.queue_changed(q)
    q.modtime = M.stamp()
    dirty.queue[q.id] = true
    local o = M.objects[q.object]
    if o then
        M.changed(o)
    end
end

-- ------------------------------------------------------------ boards

function M.new_board(t)
    local id = M.ids.board
    M.ids.board = id + 1
    local b = { id = id, name = t.name or "", description = t.description
                or "", owner = t.owner or 0, msgs = {}, next = 1,
                modtime = M.stamp() }
    M.boards[id] = b
    M.messages[id] = {}
    dirty.board[id] = true
    return b
end

local function msg_key(board, serial)
    return string.format("msg/%010d/%010d", board, serial)
end

-- Inserts message m at slot (0-based; -1 or nil = append). Returns slot.
function M.post(board, m, slot)
    local serial = board.next
    board.next = serial + 1
    M.messages[board.id][serial] = m
    local n = #board.msgs
    if slot == nil or slot < 0 or slot > n then
        slot = n
    end
    if slot < n then
        board.reordered = true     -- slot order is no longer serial order
    end
    table.insert(board.msgs, slot + 1, serial)
    board.modtime = M.stamp()
    dirty.board[board.id] = true
    dirty.msg[msg_key(board.id, serial)] = m
    -- Told once the request or turn that posted it is over: only when it
    -- was kept (a failed one is undone, and the message is gone).
    local bid, subject = board.id, m.subject
    core.timer(0, 0, function()
        local b = M.boards[bid]
        if b and M.messages[bid] and M.messages[bid][serial] == m then
            for i, s in ipairs(b.msgs) do
                if s == serial then
                    require("tp.events").emit("message", { board = bid,
                        slot = i - 1, owner = b.owner, subject = subject })
                    break
                end
            end
        end
    end)
    return slot
end

-- The message at slot (0-based) or nil.
function M.message(board, slot)
    local serial = board.msgs[slot + 1]
    return serial and M.messages[board.id][serial]
end

function M.remove_message(board, slot)
    local serial = board.msgs[slot + 1]
    if not serial then
        return false
    end
    table.remove(board.msgs, slot + 1)
    M.messages[board.id][serial] = nil
    board.modtime = M.stamp()
    dirty.board[board.id] = true
    dirty.msg[msg_key(board.id, serial)] = false
    return true
end

-- ------------------------------------------------------------ designs

function M.new_design(t)
    local id = M.ids.design
    M.ids.design = id + 1
    dirty.meta = true
    t.id = id
    t.modtime = M.stamp()
    M.designs[id] = t
    dirty.design[id] = true
    return t
end

function M.design_changed(d)
    d.modtime = M.stamp()
    dirty.design[d.id] = true
end

function M.remove_design(d)
    M.designs[d.id] = nil
    M.stamp()
    dirty.design[d.id] = true
end

-- ------------------------------------------------------------ fog of war

-- Player pid knows object id from now on (ctx:reveal).
function M.reveal(pid, id)
    local k = tostring(pid)
    local set = M.seen[k]
    if not set then
        set = {}
        M.seen[k] = set
    end
    local ik = tostring(id)
    if not set[ik] then
        set[ik] = true
        dirty.seen, dirty.meta = true, true
    end
end

function M.revealed(pid, id)
    local set = M.seen[tostring(pid)]
    return set ~= nil and set[tostring(id)] == true
end

function M.revealed_ids(pid)
    local out = {}
    for ik in pairs(M.seen[tostring(pid)] or {}) do
        out[#out + 1] = tonumber(ik)
    end
    table.sort(out)
    return out
end

-- ------------------------------------------------------------ battles

-- Stores a battle record (tp.battle) with the next commit; returns its id.
function M.new_battle(rec)
    local id = M.ids.battle or 1
    M.ids.battle = id + 1
    dirty.meta = true
    rec.id = id
    dirty.battle[id] = rec
    return id
end

-- A battle record with its document, or nil.
function M.battle(id)
    return dirty.battle[id] or db:get(key("battle", id))
end

-- Every battle's summary (no document), ascending id; filter(summary)
-- keeps some.
function M.battles(filter)
    local out = {}
    for _, b in db:each("battlei/") do
        if not dirty.battle[b.id] and (not filter or filter(b)) then
            out[#out + 1] = b
        end
    end
    for _, b in pairs(dirty.battle) do
        if not filter or filter(b) then
            out[#out + 1] = b
        end
    end
    table.sort(out, function(a, b) return a.id < b.id end)
    return out
end

-- A player record (tp.accounts owns them) changed.
function M.player_changed(p)
    p.modtime = M.stamp()
    dirty.player[p.id] = p
end

-- Whether anything waits to be committed. Every change stamps the clock
-- or takes an id, and both mark the meta records dirty.
function M.is_dirty()
    return dirty.meta
end

-- The ruleset's state table changed.
function M.state_changed()
    dirty.meta = true
end

return M
