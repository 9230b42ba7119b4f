-- tp.ctx: the context a ruleset's hooks receive. It is the ruleset's only
-- way to reach the game: objects, order queues, players, boards, designs,
-- settings, its own persistent state, randomness and the logger. Changes
-- made through it are written with the request or the turn that made them
-- (one atomic batch); a hook that raises leaves nothing of its changes.
-- rulesets/README.md documents every function.

local accounts = require "tp.accounts"
local log = require "tp.log"
local model = require "tp.model"
local random = require "tp.random"
local types = require "tp.types"
local designs = require "tp.designs"

local M = {}

-- The methods of every ctx (rulesets call ctx:new_object{...}).
local Ctx = {}

-- ctx.state: the ruleset's persistent table. It is looked up in the
-- model on every use, because a rollback (a failed request or turn)
-- reloads the model and replaces the table.
local meta = { __index = function(_, k)
    if k == "state" then
        return model.rsstate
    end
    return Ctx[k]
end }

function M.new(opts)
    local ctx = setmetatable({
        settings = opts.settings,    -- the ruleset's settings, checked
        turn = opts.turn or 0,       -- current turn number (from 0)
        random = random,             -- tp.random (MT19937)
        types = {},                  -- object type name -> id
        orders = {},                 -- order type name -> id
    }, meta)
    for id, t in pairs(types.objects) do
        ctx.types[t.name] = id
    end
    for id, t in pairs(types.orders) do
        ctx.orders[t.name] = id
    end
    -- Logging: ctx.log("info", "fleet %d arrived", id), a plain function
    -- (called with a dot), so it keeps the ruleset's module name itself.
    local module = (opts.name or "ruleset"):lower()
    function ctx.log(level, fmt, ...)
        local f = log[level] or log.info
        f(module, fmt, ...)
    end
    return ctx
end

-- ------------------------------------------------------------ fog of war

-- What a player has found, for good (kept in the game database): the
-- ruleset's visible hook reads it.
function Ctx:reveal(player_id, obj)
    model.reveal(player_id, type(obj) == "table" and obj.id or obj)
end

function Ctx:revealed(player_id, id)
    return model.revealed(player_id, type(id) == "table" and id.id or id)
end

function Ctx:revealed_ids(player_id)
    return model.revealed_ids(player_id)
end

-- ------------------------------------------------------------ battles

-- A battle recorder (tp.battle): sides, entities, rounds, events; save()
-- stores its BattleXML document with the turn and returns its id.
function Ctx:battle(opts)
    return require("tp.battle").new(opts, self.turn)
end

-- The reference a message gives to battle id (PROTOCOL.md 11: a
-- server-specific reference, type -1000).
function Ctx:battle_reference(id)
    return { type = require("tp.battle").REFTYPE, id = id }
end

-- A line for a message's body telling where battle id's log is.
function Ctx:battle_link(id)
    local url = require("tp.battle").url(id)
    if url then
        return "Battle log: " .. url
    end
    return string.format("Battle log: battle %d (the server has no web "
                         .. "listener; an admin can show it with "
                         .. "battle(%d) in the console)", id, id)
end

-- The persistent state table may be replaced as a whole.
function Ctx:set_state(t)
    model.rsstate = t
    rawset(self, "state", nil)   -- (a copy someone stored in ctx)
    model.state_changed()
end

function Ctx:state_changed()
    model.state_changed()
end

-- Objects.
function Ctx:object(id)
    return model.objects[id]
end

-- Iterates objects in ascending id order (a snapshot of the ids, so
-- objects may be added or removed while iterating).
function Ctx:each_object(type_name)
    local ids = model.object_ids()
    local want = type_name and self.types[type_name]
    local i = 0
    return function()
        while true do
            i = i + 1
            local id = ids[i]
            if id == nil then
                return nil
            end
            local o = model.objects[id]
            if o and (not want or o.type == want) then
                return o
            end
        end
    end
end

-- t: type (name or id), name, desc, parent, owner, pos, vel, size,
-- data.
function Ctx:new_object(t)
    if type(t.type) == "string" then
        t.type = assert(self.types[t.type], "no object type " .. t.type)
    end
    return model.new_object(t)
end

function Ctx:remove_object(obj)
    model.remove_object(obj)
end

function Ctx:set_parent(obj, parent)
    model.set_parent(obj, type(parent) == "table" and parent.id or parent)
end

function Ctx:changed(obj)
    model.changed(obj)
end

function Ctx:type_of(obj)
    return types.objects[obj.type].name
end

-- Order queues: allowed is a list of order type names.
local function order_ids(ctx, names)
    local ids = {}
    for _, n in ipairs(names or {}) do
        ids[#ids + 1] = assert(ctx.orders[n], "no order type " .. n)
    end
    return ids
end

function Ctx:new_queue(obj, owner, allowed)
    return model.new_queue(obj, owner, order_ids(self, allowed))
end

function Ctx:queue(obj)
    return model.queues[type(obj) == "table" and obj.id or obj]
end

function Ctx:set_queue_owner(obj, owner)
    local q = model.queues[obj.id]
    if q then
        q.owner = owner or 0
        model.queue_changed(q)
    end
end

function Ctx:set_allowed(obj, allowed)
    local q = model.queues[obj.id]
    if q then
        q.allowed = order_ids(self, allowed)
        model.queue_changed(q)
    end
end

function Ctx:first_order(obj)
    local q = model.queues[obj.id]
    return q and q.orders[1]
end

function Ctx:order_name(order)
    return types.orders[order.type].name
end

-- Runs the first order of obj's queue (its type's execute hook); an
-- order that reports done is removed. Returns done.
function Ctx:execute_first_order(obj)
    local q = model.queues[obj.id]
    local order = q and q.orders[1]
    if not order then
        return false
    end
    local ot = types.orders[order.type]
    local done = true
    if ot.execute then
        -- A failure names the order and the object it ran on (the turn
        -- engine logs it with the traceback and keeps nothing).
        local ok, res = xpcall(ot.execute, debug.traceback, self, obj,
                               order)
        if not ok then
            error(string.format("%s order on object %d (%s) failed: %s",
                                ot.name, obj.id, tostring(obj.name),
                                tostring(res)), 0)
        end
        done = res and true or false
    end
    if not model.objects[obj.id] then
        return done          -- the order removed its own object
    end
    if done and q.orders[1] == order then
        table.remove(q.orders, 1)
    end
    model.queue_changed(q)
    return done
end

-- Runs every order of obj's queue, front to back (rulesets where all
-- queued orders act each turn, as RFTS's); each that reports done is
-- removed. Orders an execute hook adds to the queue wait for the next
-- call. Stops early when an order removes obj. Returns how many finished.
function Ctx:execute_orders(obj)
    local q = model.queues[obj.id]
    if not q or #q.orders == 0 then
        return 0
    end
    local finished = 0
    local list = {}
    for i, order in ipairs(q.orders) do
        list[i] = order
    end
    for _, order in ipairs(list) do
        local slot
        for i, o in ipairs(q.orders) do
            if o == order then
                slot = i
                break
            end
        end
        if slot then
            local ot = types.orders[order.type]
            local done = true
            if ot.execute then
                local ok, res = xpcall(ot.execute, debug.traceback, self,
                                       obj, order)
                if not ok then
                    error(string.format("%s order on object %d (%s) "
                                        .. "failed: %s", ot.name, obj.id,
                                        tostring(obj.name), tostring(res)),
                          0)
                end
                done = res and true or false
            end
            if not model.objects[obj.id] then
                return finished + (done and 1 or 0)
            end
            if done then
                for i, o in ipairs(q.orders) do
                    if o == order then
                        table.remove(q.orders, i)
                        break
                    end
                end
                finished = finished + 1
            end
        end
    end
    model.queue_changed(q)
    return finished
end

function Ctx:clear_orders(obj)
    local q = model.queues[obj.id]
    if q and #q.orders > 0 then
        q.orders = {}
        model.queue_changed(q)
    end
end

-- Players.
function Ctx:player(id)
    return accounts.player(id)
end

function Ctx:players()
    return accounts.players()
end

function Ctx:player_changed(p)
    model.player_changed(p)
end

-- Messages: to a player's personal board.
function Ctx:message(player_id, subject, body, references)
    local p = accounts.player(player_id)
    local b = p and model.boards[p.board]
    if not b then
        return false
    end
    model.post(b, { subject = subject, body = body or "",
                    turn = self.turn, references = references or {} })
    return true
end

-- Designs: t = { name, description, owner, categories, components =
-- { { id = component, count = n } } }. Properties are computed.
function Ctx:new_design(t)
    t.owner = t.owner or 0
    t.categories = t.categories or {}
    t.components = t.components or {}
    local d = model.new_design(t)
    designs.evaluate(self, d)
    return d
end

function Ctx:design(id)
    return model.designs[id]
end

-- Computes a design's properties, validity and feedback again (after its
-- components changed); marks it changed.
function Ctx:evaluate_design(d)
    return designs.evaluate(self, d)
end

function Ctx:designs()
    local list = {}
    for _, id in ipairs(types.ids(model.designs)) do
        list[#list + 1] = model.designs[id]
    end
    return list
end

function Ctx:design_changed(d)
    model.design_changed(d)
end

-- The value of a property in a design (0 when absent).
function Ctx:property(d, name)
    for _, pv in ipairs(d.properties or {}) do
        if pv.name == name then
            return pv.number
        end
    end
    return 0
end

return M
