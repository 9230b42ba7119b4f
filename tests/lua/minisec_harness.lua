-- minisec_harness.lua: a MiniSec game in a temporary data directory for
-- the Lua tests (tests/lua/minisec_*_test.lua) and bench/turn.lua, driven
-- through the server's own code paths:
--   * the game is opened with tp.game.start (a new database, the ruleset's
--     setup hook);
--   * players join as tp.accounts.create makes them join, without the
--     password hashing: the player record, then the join hook
--     (accounts.on_join: personal board, ruleset, "New player" messages)
--     in one batch;
--   * orders go through tp.dispatch and the OrderInsert handler like a
--     TP04 client's (parameters encoded with the order type's layout);
--   * turns end with tp.game.end_turn.
--
--   local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
--   local g = H.new_game { random_seed = 7 }     -- ruleset settings
--   local alice = g:join("alice")
--   local ok, reply = g:order(alice.id, fleet, "Move", { pos = {...} })
--   g:end_turn()
--   g:close()
-- Only one game is open at a time (the server's modules are singletons).
local core = require "tp.core"
local codec = require "tp.codec"
local config = require "tp.config"
local db_mod = require "tp.db"
local ruleset_mod = require "tp.ruleset"
local game = require "tp.game"
local model = require "tp.model"
local accounts = require "tp.accounts"
local types = require "tp.types"
local views = require "tp.views"
local proto = require "tp.proto"
local dispatch = require "tp.dispatch"
local cjson = require "cjson"

local H = {}

local registered = false

local function setup_once()
    if registered then
        return
    end
    registered = true
    proto.register()
    dispatch.add(require("tp.handlers.game").handlers)
    core.set_log_level(os.getenv("TP_TEST_LOG") or "error")
end

local function tmpdir()
    local path = os.tmpname()
    os.remove(path)
    assert(core.mkdir(path))
    return path
end

local Game = {}
Game.__index = Game

-- Opens a new game. settings: the ruleset's settings; opts.ruleset: a
-- ruleset folder or name (default minisec); opts.cfg: extra configuration.
function H.new_game(settings, opts)
    setup_once()
    opts = opts or {}
    local dir = tmpdir()
    local overrides = { data = dir, turn_mode = "manual",
                        password_iterations = 1000,
                        ruleset_settings = settings or {} }
    for k, v in pairs(opts.cfg or {}) do
        overrides[k] = v
    end
    local empty = dir .. "/empty.lua"
    local f = assert(io.open(empty, "w"))
    f:write("return {}\n")
    f:close()
    local cfg = assert(config.load { home = TP_HOME, config = empty,
                                     set = {}, overrides = overrides })
    local rs = assert(ruleset_mod.load(TP_HOME, opts.ruleset or "minisec"))
    local db = assert(db_mod.open(dir .. "/db", { create_if_missing = true }))
    local ok, err = game.start(cfg, db, rs)
    if not ok then
        db:close()
        os.execute("rm -rf '" .. dir .. "'")
        return nil, err
    end
    return setmetatable({ dir = dir, db = db, cfg = cfg, rs = rs,
                          ruleset_name = opts.ruleset or "minisec",
                          conns = {} }, Game)
end

-- Stops the server's game and opens the same data directory again, as a
-- restarted server would (the ruleset loaded anew).
function Game:reopen()
    game.stop()
    self.db:close()
    self.rs = assert(ruleset_mod.load(TP_HOME, self.ruleset_name))
    self.db = assert(db_mod.open(self.dir .. "/db",
                                 { create_if_missing = true }))
    assert(game.start(self.cfg, self.db, self.rs))
    self.conns = {}
end

-- The ruleset's modules (rulesets/minisec/init.lua: modules).
function Game:ms()
    return self.rs.modules
end

function Game:close()
    game.stop()
    self.db:close()
    os.execute("rm -rf '" .. self.dir .. "'")
end

function Game:ctx()
    return game.ctx()
end

-- Players join, each as a new account would (several at once: their
-- records are written first, then each joins in turn).
function Game:join_many(names)
    local first = #accounts.players() + 1
    local batch = self.db:batch()
    for i, name in ipairs(names) do
        batch:put(db_mod.key("player", first + i - 1),
                  { id = first + i - 1, name = name, race = "Human",
                    created = os.time(), alive = true, score = 0 })
    end
    batch:commit()
    accounts.init(self.db, self.cfg)
    local out = {}
    for i = 1, #names do
        local p = accounts.player(first + i - 1)
        local b = self.db:batch()
        accounts.on_join(p, b)
        b:put(db_mod.key("player", p.id), p):commit()
        out[i] = p
    end
    return out
end

function Game:join(name)
    return self:join_many({ name })[1]
end

-- A logged-in TP04 connection of player id (what handlers see). What is
-- sent on it (conn:send, as replies made item by item are) is kept in
-- c.sent; a reply made in parts (conn:produce) is made to its end at once.
local Conn = {}
Conn.__index = Conn

function Conn:send(frames, seq)
    for _, f in ipairs(frames._type and { frames } or frames) do
        self.sent[#self.sent + 1] = f
        self.frames_out = self.frames_out + 1
    end
    return true
end

function Conn:produce(fn)
    self.producer = fn
end

function Game:conn(player_id, version)
    local key = player_id .. "/" .. (version or 4)
    local c = self.conns[key]
    if not c then
        c = setmetatable({ player = player_id, version = version or 4,
                           state = "READY", padding = false,
                           client = "minisec-test/1.0", id = 0,
                           closed = false, max_frame = 1048576,
                           output_high = math.huge, pending_output = 0,
                           time_limit = 0, frames_out = 0, sent = {} },
                         Conn)
        self.conns[key] = c
    end
    return c
end

-- Encodes order parameters (by parameter name, the client-writable
-- fields) as a client would send them.
local function encode_params(obj, ot, params, player_id)
    local order = { type = ot.id, params = params or {} }
    local values = views.order_values(obj, order, player_id)
    return codec.encode(ot.layout4, values, false)
end

-- A request through the dispatcher. Returns true, reply or false, err
-- (err: the Fail table { code, message } or an error text).
function Game:request(player_id, name, req)
    req._name = name
    req._seq = 1
    local conn = self:conn(player_id)
    conn.sent, conn.producer = {}, nil
    local ok, reply = pcall(dispatch.dispatch, conn, req)
    if ok then
        while conn.producer do
            conn.producer()
        end
        if reply == nil and #conn.sent > 0 then
            reply = conn.sent
        end
        return true, reply
    end
    if type(reply) == "table" and reply.tp_fail then
        return false, reply
    end
    return false, tostring(reply)
end

-- Inserts an order (type by name) on obj's queue at slot (default: at
-- the end), as OrderInsert. params: by parameter name, e.g. { pos = { x
-- = 1, y = 2, z = 0 } }, { ships = { selection = { { id = 2, number =
-- 1 } } }, name = { string = "x" } }.
function Game:order(player_id, obj, type_name, params, slot)
    local ot = types.order_by_name[type_name]
    obj = type(obj) == "table" and obj or model.objects[obj]
    return self:request(player_id, "OrderInsert", {
        id = obj.id, slot = slot or -1, otype = ot.id, turns = 0,
        resources = {}, params = encode_params(obj, ot, params, player_id) })
end

-- OrderProbe: the frame of the order as it would be inserted.
function Game:probe(player_id, obj, type_name, params, slot)
    local ot = types.order_by_name[type_name]
    obj = type(obj) == "table" and obj or model.objects[obj]
    return self:request(player_id, "OrderProbe", {
        id = obj.id, slot = slot or -1, otype = ot.id, turns = 0,
        resources = {}, params = encode_params(obj, ot, params, player_id) })
end

-- The estimated turns and resources of the order in slot (0-based).
function Game:estimate(obj, slot)
    obj = type(obj) == "table" and obj or model.objects[obj]
    local q = model.queues[obj.id]
    return views.order_estimates(obj, q.orders[slot + 1], slot)
end

-- Ends the turn. MiniSec marks every object it changes (marks_changes),
-- so the server does not look for unmarked changes: the harness does,
-- after each turn, and counts them in g.unmarked (tests expect 0).
function Game:end_turn()
    local ok = game.end_turn("admin")
    self.unmarked = (self.unmarked or 0) + model.detect_changes()
    if model.is_dirty() then
        model.commit()
    end
    return ok
end

function Game:turn_number()
    return game.turn_number()
end

-- ------------------------------------------------------------ reading

function Game:object(id)
    return model.objects[id]
end

function Game:queue(obj)
    return model.queues[type(obj) == "table" and obj.id or obj]
end

-- Objects of a type (name), ascending id; with owner, only theirs.
function Game:objects(type_name, owner)
    local t = type_name and types.object_by_name[type_name].id
    local out = {}
    for _, id in ipairs(model.object_ids()) do
        local o = model.objects[id]
        if (not t or o.type == t) and (not owner or o.owner == owner) then
            out[#out + 1] = o
        end
    end
    return out
end

function Game:find(name)
    for _, id in ipairs(model.object_ids()) do
        if model.objects[id].name == name then
            return model.objects[id]
        end
    end
end

function Game:player(id)
    return accounts.player(id)
end

-- The messages on a player's board, oldest first.
function Game:messages(player_id)
    local p = accounts.player(player_id)
    local b = model.boards[p.board]
    local out = {}
    for slot = 0, #b.msgs - 1 do
        out[#out + 1] = model.message(b, slot)
    end
    return out
end

-- Messages of a player posted in the current turn (since the last
-- end_turn), optionally with this subject.
function Game:new_messages(player_id, subject)
    local out = {}
    for _, m in ipairs(self:messages(player_id)) do
        if m.turn == game.turn_number() and
           (not subject or m.subject == subject) then
            out[#out + 1] = m
        end
    end
    return out
end

function Game:design(id)
    return model.designs[id]
end

-- Every object as plain JSON-shaped data, modtimes left out (a
-- comparable picture of the universe).
function Game:snapshot()
    local out = {}
    for _, id in ipairs(model.object_ids()) do
        local o = cjson.decode(cjson.encode(model.objects[id]))
        o.modtime = nil
        out[#out + 1] = o
    end
    return out
end

-- ------------------------------------------------------------ changing

-- Sets obj fields directly (test set-ups), then marks it changed.
function Game:set(obj, fields)
    for k, v in pairs(fields) do
        obj[k] = v
    end
    model.changed(obj)
    model.commit()
end

function Game:commit()
    model.commit()
end

-- ------------------------------------------------------------ helpers

-- Deep comparison of JSON-shaped values; returns true or false, path.
function H.same(a, b, path)
    path = path or ""
    if type(a) ~= type(b) then
        return false, path .. ": " .. type(a) .. " vs " .. type(b)
    end
    if type(a) ~= "table" then
        if a == b then
            return true
        end
        return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
    end
    for k, v in pairs(a) do
        local ok, where = H.same(v, b[k], path .. "." .. tostring(k))
        if not ok then
            return false, where
        end
    end
    for k in pairs(b) do
        if a[k] == nil then
            return false, path .. "." .. tostring(k) .. ": missing"
        end
    end
    return true
end

function H.copy(v)
    return cjson.decode(cjson.encode(v))
end

return H
