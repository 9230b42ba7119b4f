-- Persistence in the model and the game, without a network: object
-- history (objects_at before and after a restart, history kept for
-- history_turns turns), a rollback keeps ctx.state the model's, settings
-- stored with the game, the check copy of tp.db (a database opened and not
-- accepted is left as it was), an atomic turn (a ruleset that raises
-- leaves nothing), and an interrupted turn ends again at start.
-- Run: tpserver script tests/lua/persist_test.lua
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local cjson = require "cjson"
local config = require "tp.config"
local db_mod = require "tp.db"
local game = require "tp.game"
local model = require "tp.model"
local ruleset_mod = require "tp.ruleset"

local PERSIST = TP_HOME .. "/tests/fixtures/rulesets/persist"

local function remove_tree(path)
    for _, n in ipairs(db_mod.list_dir(path) or {}) do
        local p = path .. "/" .. n
        if db_mod.list_dir(p) then
            remove_tree(p)
        else
            os.remove(p)
        end
    end
    os.remove(path)
end

local tmp = os.tmpname()
os.remove(tmp)
assert(require("tp.core").mkdir(tmp))
local data = tmp .. "/data"
assert(require("tp.core").mkdir(data))

-- A canonical encoding (sorted keys) to compare tables.
local function canon(v)
    if type(v) ~= "table" then
        return cjson.encode(v)
    end
    local keys = {}
    for k in pairs(v) do
        keys[#keys + 1] = k
    end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local out = {}
    for _, k in ipairs(keys) do
        out[#out + 1] = tostring(k) .. "=" .. canon(v[k])
    end
    return "{" .. table.concat(out, ",") .. "}"
end

local function snapshot()
    local out = {}
    for id, o in pairs(model.objects) do
        out[id] = cjson.decode(cjson.encode(o))
    end
    return out
end

local function same_objects(got, want, name)
    local diff
    for id, o in pairs(want) do
        if canon(o) ~= canon(got[id]) then
            diff = string.format("object %d: got %s, want %s", id,
                                 canon(got[id]), canon(o))
            break
        end
    end
    for id in pairs(got or {}) do
        if not diff and not want[id] then
            diff = "object " .. id .. " should not exist"
        end
    end
    return t.ok(got and not diff, name, diff or "no objects")
end

local function files(dir)
    local out = {}
    for _, n in ipairs(db_mod.list_dir(dir) or {}) do
        local f = io.open(dir .. "/" .. n, "rb")
        if f then
            out[#out + 1] = n .. ":" .. #f:read("*a")
            f:close()
        end
    end
    return table.concat(out, " ")
end

local rs = assert(ruleset_mod.load(TP_HOME, PERSIST))

local function start(set)
    local s = { "turn_mode=manual", "history_turns=3",
                "ruleset_settings.rocks=4" }
    for _, v in ipairs(set or {}) do
        s[#s + 1] = v
    end
    local cfg = assert(config.load { home = TP_HOME, set = s,
                                     overrides = { data = data } })
    local db = assert(db_mod.open(data .. "/db", { sync = false }))
    local ok, err = game.start(cfg, db, rs)
    assert(ok, err)
    return db, cfg
end

-- ------------------------------------------------------------ history

local db = start { "ruleset_settings.speed=5" }
t.ok(db.created, "a new database")
t.is(game.turn_number(), 0, "turn 0")
local ctx = game.ctx()
model.objects[1].name = "Rock one renamed"
model.changed(model.objects[1])
model.commit()
local at = {}
at[0] = snapshot()
game.end_turn("admin")
t.is(game.turn_number(), 1, "turn 1")
t.is(model.objects[2].data.n, 1, "the turn counted on every object")

-- Changes by requests during turn 1: a rename, a new object, a removal.
model.objects[2].name = "Rock two renamed"
model.changed(model.objects[2])
model.commit()
ctx = game.ctx()
local x = ctx:new_object { type = "Rock", parent = 0, name = "New rock",
                           data = { n = 1 } }
model.commit()
ctx:remove_object(model.objects[3])
model.commit()
at[1] = snapshot()
game.end_turn("admin")
at[2] = snapshot()
t.ok(model.objects[x.id] and not model.objects[3], "(the objects changed)")
same_objects(game.objects_at(2), at[2], "objects_at(2): the current turn")
same_objects(game.objects_at(1), at[1], "objects_at(1): as at the end of "
             .. "turn 1, changes made by requests during it included")
same_objects(game.objects_at(0), at[0], "objects_at(0): as at the end of "
             .. "turn 0 (before the requests of turn 1)")
t.ok(not game.objects_at(-1) and not game.objects_at(3),
     "objects_at of turns that are not (-1, 3) is nil")

-- A request change during turn 2 after which the game restarts.
model.objects[1].name = "Rock one, third name"
model.changed(model.objects[1])
model.commit()
at[2] = snapshot()
game.stop()
db:close()

db = start()
t.ok(not db.created and not db.pending, "second start: the database "
     .. "accepted")
t.is(game.ctx().settings.speed, 5, "the setting given at creation is kept "
     .. "(not repeated at the second start)")
t.is(db:get("meta/game").settings.speed, 5, "meta/game holds the settings")
t.is(model.detect_changes(), 0, "after a restart no object looks changed to "
     .. "the change detection")
same_objects(game.objects_at(0), at[0], "after a restart: objects_at(0)")
same_objects(game.objects_at(1), at[1], "after a restart: objects_at(1)")
-- A second change of the same object in turn 2 after the restart: the
-- turn-2 record still says how it was at the end of turn 1.
model.objects[1].name = "Rock one, fourth name"
model.changed(model.objects[1])
model.commit()
same_objects(game.objects_at(1), at[1], "a second change in the same turn "
             .. "keeps the first history record")
for _ = 1, 3 do
    game.end_turn("admin")
end
t.is(game.turn_number(), 5, "turn 5")
local old_turns = {}
for k in db.raw:iter { prefix = "hist/", keys_only = true } do
    old_turns[tonumber(k:match("^hist/(%d+)/"))] = true
end
t.ok(not old_turns[0] and not old_turns[1] and not old_turns[2] and
     old_turns[5], "history older than history_turns (3) is dropped",
     canon(old_turns))
t.ok(game.objects_at(2) and not game.objects_at(1),
     "objects_at: turn 2 kept, turn 1 too old")

-- ------------------------------------------------------------ rollback

ctx = game.ctx()
ctx.state.scratch = "uncommitted"
ctx:state_changed()
model.rollback()
t.ok(game.ctx().state == model.rsstate, "after a rollback ctx.state is the "
     .. "model's state table again")
t.is(game.ctx().state.scratch, nil, "the uncommitted change is gone")
local turns = model.rsstate.turns
game.end_turn("admin")
t.is(db:get("meta/rsstate").turns, turns + 1, "a turn after a rollback "
     .. "stores the ruleset's state")

-- ------------------------------------------------------------ atomic turn

local before = files(data .. "/db")
local saved_turn = rs.turn
rs.turn = function(c)
    saved_turn(c)
    error("the ruleset fails half-way")
end
local n0 = model.objects[0].data.n
t.ok(not game.end_turn("admin"), "a turn whose ruleset raises fails")
rs.turn = saved_turn
t.is(model.objects[0].data.n, n0, "the working set is as before the turn")
t.is(db:get("obj/0000000000").data.n, n0, "the stored objects too")
t.is(db:get("meta/turn").turn, game.turn_number(), "the turn is not "
     .. "advanced")
t.ok(before ~= nil, "(files listed)")
game.stop()
db:close()

-- ------------------------------------------------------------ check copy

before = files(data .. "/db")
local db2 = assert(db_mod.open(data .. "/db"))
t.ok(db2.pending, "an existing database opens as a check copy")
t.ok(db_mod.list_dir(data .. "/db.check"), "the check copy is a folder")
t.ok(db2:get("meta/game"), "the check copy reads the game")
db2:close()
t.is(files(data .. "/db"), before, "closed without accept: no file of the "
     .. "database changed")
t.ok(not db_mod.list_dir(data .. "/db.check"), "the check copy is gone")
db2 = assert(db_mod.open(data .. "/db"))
db2:batch():put("meta/test", { x = 1 }):commit()
t.ok(not db2.pending and not db_mod.list_dir(data .. "/db.check"),
     "the first write accepts the database")
db2:close()
db2 = assert(db_mod.open(data .. "/db"))
t.is(db2:get("meta/test").x, 1, "the write went to the database itself")
db2:close()

-- ------------------------------------------------------------ pending turn

-- Every player finished and the server died in the turn: at start the
-- turn is ended again.
db = start()
db:put("player/0000000001", { id = 1, name = "x", board = 0, score = 0 })
local tr = db:get("meta/turn")
tr.finished = { ["1"] = true }
db:put("meta/turn", tr)
game.stop()
db:close()
-- (The end of turn is scheduled on the loop: the timer is caught here and
-- run at once, so that the script ends without waiting for the loop.)
local core = require "tp.core"
local real_timer = core.timer
local scheduled = {}
core.timer = function(_, _, fn)
    scheduled[#scheduled + 1] = fn
    return { stop = function() end }
end
db = start { "turn_mode=players_finished", "turn_length=0" }
core.timer = real_timer
local turn_before = game.turn_number()
t.is(#scheduled, 1, "an end of turn is scheduled at start")
for _, fn in ipairs(scheduled) do
    fn()
end
t.is(game.turn_number(), turn_before + 1, "a turn every player had "
     .. "finished is ended at start")
game.stop()
db:close()
remove_tree(tmp)
return t.done()
