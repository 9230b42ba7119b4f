-- tp.ai: computer players. A ruleset may have an AI (rulesets/<name>/
-- ai.lua, loaded by tp.ruleset into its own sandbox; the API is in
-- rulesets/README.md, "AI players"); this engine runs it for every
-- computer player, once a turn:
--   * at the start of each turn (the turn_start event), when the game is
--     opened (a restart: every AI that has not finished the running turn
--     plays it), and when a failed turn starts over;
--   * one AI at a time, each on its own pass of the loop (core.timer 0),
--     so that clients are served between them;
--   * under core.time_limit (ai_time_limit seconds per AI per turn), the
--     budget rulesets' hooks run under;
--   * the AI gets its player's view only (built with tp.views, the frames
--     a TP client gets, decoded) and an orders API that runs the TP
--     handlers of OrderInsert, OrderProbe, RemoveOrder and FinishedTurn
--     on a connection of its own: the same checks, the same ruleset hooks,
--     the same commit. A refused order is logged as the AI's bug. It never
--     gets the model, the database or the ruleset's context.
--   * when it is done (or stopped), its memory is stored and it sends
--     FinishedTurn.
--
-- Who plays: players marked ai = level (accounts made by M.add, which
-- nobody can log into: tp.accounts), and human players whose empire was
-- handed to the AI (M.control: ai_control = level, until M.release).
-- Both marks are in the player record, so they survive a restart.
--
-- Stored: ai/<player id> -> { seed, memory } (the AI's memory table,
-- JSON, and the seed its random numbers come from).

local core = require "tp.core"
local log = require "tp.log"
local accounts = require "tp.accounts"
local codec = require "tp.codec"
local db_mod = require "tp.db"
local model = require "tp.model"
local random = require "tp.random"
local types = require "tp.types"
local views = require "tp.views"
local cjson = require "cjson"

local M = {}

-- Names of new computer players, used in this order (a name taken is
-- skipped), then "AI 1", "AI 2", ...
M.NAMES = { "Ada", "Babbage", "Turing", "Hopper", "Lovelace", "Shannon",
            "Knuth", "Dijkstra", "Hamilton", "Liskov", "Ritchie",
            "Thompson", "Wirth", "Hoare", "Backus", "McCarthy" }

local game            -- tp.game (required late: it requires us)
local pending = {}    -- player ids still to play the running turn
local scheduled       -- the core timer of the next one, or nil
local subscribed = false

local function g()
    game = game or require "tp.game"
    return game
end

-- ------------------------------------------------------------ who

-- The level a player is played at, or nil for a human at the controls.
function M.level_of(p)
    return p and (p.ai or p.ai_control) or nil
end

function M.is_ai(p)
    return M.level_of(p) ~= nil
end

-- The ruleset's AI module, or nil.
function M.module(rs)
    rs = rs or g().ruleset()
    return rs and rs.ai
end

local function known_level(ai, level)
    for _, l in ipairs(ai.levels) do
        if l == level then
            return true
        end
    end
    return false
end

local function levels_text(ai)
    return "\"" .. table.concat(ai.levels, "\", \"") .. "\""
end

-- Whether the configuration's computer players can be had with ruleset
-- rs: nil, or the reason they cannot (game start, --check-config).
function M.check(cfg, rs)
    local ai = rs.ai
    if cfg.ai_players > 0 and not ai then
        return string.format("ai_players = %d, but the ruleset %s has no "
            .. "AI (no ai.lua in its folder): set ai_players = 0, or "
            .. "choose a ruleset with one (minisec)", cfg.ai_players,
            rs.name)
    end
    if cfg.idle_action == "ai" and not ai then
        return string.format("idle_action = \"ai\", but the ruleset %s "
            .. "has no AI (no ai.lua in its folder): choose \"none\" or "
            .. "\"remove\"", rs.name)
    end
    if ai and (cfg.ai_players > 0 or cfg.idle_action == "ai") and
       not known_level(ai, cfg.ai_level) then
        return string.format("ai_level = \"%s\" is not a level of %s's "
            .. "AI (%s)", cfg.ai_level, rs.name, levels_text(ai))
    end
    return nil
end

-- ------------------------------------------------------------ the view

-- The connection an AI acts on: what the handlers read of a TP04
-- client's connection. Nothing is sent on it.
local function conn_of(player_id)
    return { player = player_id, version = 4, padding = false,
             state = "READY", client = "tpserver-ai", id = 0, ai = true,
             closed = false, send = function() return true end,
             produce = function() end }
end

-- Decoded parameters of a frame, keyed by their names in list.
local function named(list, values)
    local out = {}
    for i, p in ipairs(list) do
        out[p.name] = values["p" .. i]
    end
    return out
end

-- A copy, all the way down: what a frame was built from (a ruleset
-- hook's answer) never reaches the AI itself.
local function copy(v)
    if type(v) ~= "table" then
        return v
    end
    local out = {}
    for k, x in pairs(v) do
        out[k] = copy(x)
    end
    return out
end

local function copy_list(t)
    local out = {}
    for i, v in ipairs(t or {}) do
        out[i] = copy(v)
    end
    return out
end

-- An Order frame (TP04) as the AI sees it.
local function decode_order(conn, frame)
    local ot = types.orders[frame.otype]
    local values = codec.decode(views.order_layout(conn, ot), frame.params,
                                false) or {}
    return { type = ot.name, type_id = ot.id, slot = frame.slot,
             turns = frame.turns, resources = copy_list(frame.resources),
             params = named(ot.params, values) }
end

-- The orders of the object's queue, when it is the player's (GetOrder).
local function orders_of(conn, obj)
    local q = model.queues[obj.id]
    if not views.owns_queue(conn.player, q) then
        return nil
    end
    local out = {}
    for i, order in ipairs(q.orders) do
        out[i] = decode_order(conn, views.order_frame(conn, obj, order,
                                                      i - 1, q))
    end
    local allowed = {}
    for i, id in ipairs(views.order_queue_frame(q).ordertypes) do
        allowed[i] = types.orders[id].name
    end
    return out, allowed
end

-- An object as the player sees it: the Object frame (TP04), decoded.
local function object_view(conn, obj)
    local frame = views.object_frame(conn, obj)
    local ot = types.objects[obj.type]
    local values = codec.decode(ot.layout, frame.params, false) or {}
    local o = { id = frame.id, type = ot.name, type_id = ot.id,
                name = frame.name, desc = frame.desc, parent = frame.parent,
                contains = copy_list(frame.contains),
                modtime = frame.modtime, params = named(ot.flat, values) }
    o.orders, o.allowed = orders_of(conn, obj)
    return o
end

-- The first number in a property's display text ("200.0 mega-units").
local function number_in(text)
    return tonumber(tostring(text):match("%-?%d+%.?%d*"))
end

-- Everything the player may see, as plain tables (rulesets/README.md,
-- "AI players"): built from the frames a TP client would be sent.
function M.view(player_id)
    local conn = conn_of(player_id)
    local view = { me = player_id, turn = g().turn_number(),
                   objects = {}, designs = {}, players = {},
                   order_types = {} }
    for _, id in ipairs(model.object_ids()) do
        local obj = views.object(player_id, id)
        if obj then
            view.objects[id] = object_view(conn, obj)
        end
    end
    for _, id in ipairs(types.ids(model.designs)) do
        local d = model.designs[id]
        if views.design_visible(player_id, d) then
            local f = views.design_frame(d)
            local props, numbers = {}, {}
            for _, pv in ipairs(f.properties) do
                local prop = types.properties[pv.id]
                if prop then
                    props[prop.name] = pv.value
                    numbers[prop.name] = number_in(pv.value)
                end
            end
            view.designs[id] = { id = f.id, name = f.name, owner = f.owner,
                                 categories = copy_list(f.categories),
                                 properties = props, numbers = numbers }
        end
    end
    for _, p in ipairs(accounts.players()) do
        local f = views.player_frame(p)
        view.players[#view.players + 1] = { id = f.id, name = f.name,
                                            race = f.race }
    end
    for _, id in ipairs(types.ids(types.orders)) do
        local f = views.order_desc_frame(types.orders[id])
        local ps = {}
        for i, p in ipairs(f.parameters) do
            ps[i] = p.name
        end
        view.order_types[f.name] = { id = f.id, name = f.name,
                                     description = f.description,
                                     params = ps }
    end
    return view
end

-- ------------------------------------------------------------ orders

local function who(conn)
    local p = accounts.player(conn.player)
    return string.format("AI %s (player %d)", p and p.name or "?",
                         conn.player)
end

-- Runs a TP handler for the AI as the dispatcher runs a client's request:
-- what it changed is committed, or thrown away when it fails. Returns the
-- handler's reply, or nil, the refusal's text (logged as the AI's bug).
-- Anything but a refusal (a bug in the server or the ruleset, the AI's
-- time running out) stops the AI's turn.
local function request(conn, name, req)
    local dispatch = require "tp.dispatch"
    local h = require("tp.handlers." .. (name == "FinishedTurn" and
                      "session" or "orders"))[name]
    req._name, req._seq = name, 0
    local ok, reply = pcall(h.fn, conn, req)
    if ok and model.is_dirty() then
        local stored, err = pcall(model.commit)
        if not stored then
            ok, reply = false, { tp_fail = true, message = "the change "
                                 .. "could not be stored: " .. tostring(err) }
        end
    end
    if ok then
        return reply
    end
    dispatch.request_failed(conn, reply, false)
    if type(reply) == "table" and reply.tp_fail then
        log.warning("ai", "%s: %s refused (a bug in the AI): %s", who(conn),
                    name, tostring(reply.message))
        return nil, tostring(reply.message)
    end
    error(reply, 0)
end

-- The order the AI asks for as a client would send it: the parameters
-- it gives (by name, the fields a client writes) encoded with the order
-- type's layout; the handler decodes and checks them.
local function order_request(conn, object_id, otype, params, slot)
    local ot = type(otype) == "number" and types.orders[otype] or nil
    if not ot then
        for _, t in pairs(types.orders) do
            if t.name == otype then
                ot = t
            end
        end
    end
    if not ot then
        return nil, "no order type " .. tostring(otype)
    end
    local obj = type(object_id) == "number" and
                views.object(conn.player, object_id)
    if not obj then
        return nil, "no such object " .. tostring(object_id)
    end
    if params ~= nil and type(params) ~= "table" then
        return nil, "order parameters must be a table"
    end
    if slot ~= nil and (type(slot) ~= "number" or slot % 1 ~= 0) then
        return nil, "the slot must be a whole number (-1: the end)"
    end
    local ok, raw = pcall(function()
        local values = views.order_values(obj, { type = ot.id,
                                                 params = params or {} },
                                          conn.player)
        return codec.encode(views.order_layout(conn, ot), values, false)
    end)
    if not ok then
        return nil, "order parameters do not encode: " .. tostring(raw)
    end
    local q = model.queues[obj.id]
    return { id = q and q.id or 0, slot = slot or -1, otype = ot.id,
             params = raw }
end

-- The orders API one AI gets for one turn (rulesets/README.md).
local function orders_api(conn, run)
    local api = {}
    local function refused(msg)
        log.warning("ai", "%s: order refused (a bug in the AI): %s",
                    who(conn), msg)
        return nil, msg
    end
    local function order(object_id, otype, params, slot)
        if run.finish then
            return nil, "the AI has finished its turn"
        end
        return order_request(conn, object_id, otype, params, slot)
    end
    -- An OrderInsert or OrderProbe through the handlers; the order as
    -- the reply describes it, or nil, why.
    local function order_frame(name, object_id, otype, params, slot)
        local req, err = order(object_id, otype, params, slot)
        if not req then
            return refused(err)
        end
        local frame, why = request(conn, name, req)
        if not frame then
            return nil, why
        end
        return decode_order(conn, frame)
    end
    function api.insert(object_id, otype, params, slot)
        local got, why = order_frame("OrderInsert", object_id, otype,
                                     params, slot)
        if got then
            run.orders = run.orders + 1
        end
        return got, why
    end
    function api.probe(object_id, otype, params, slot)
        return order_frame("OrderProbe", object_id, otype, params, slot)
    end
    function api.remove(object_id, slot)
        local obj = type(object_id) == "number" and
                    views.object(conn.player, object_id)
        local q = obj and model.queues[obj.id]
        if run.finish then
            return refused("the AI has finished its turn")
        elseif not q then
            return refused("no order queue on object " ..
                           tostring(object_id))
        elseif type(slot) ~= "number" or slot % 1 ~= 0 then
            return refused("the slot must be a whole number")
        end
        local out, why = request(conn, "RemoveOrder", { id = q.id,
                                                        slots = { slot } })
        if not out then
            return nil, why
        end
        local f = out[2]
        if f and f._type == require("tp.proto").id.Fail then
            return refused(tostring(f.result))
        end
        return true
    end
    -- The AI is done: no more orders this turn. FinishedTurn is sent
    -- once play returns (also when it does not call this).
    function api.finish()
        run.finish = true
    end
    return api
end

-- ------------------------------------------------------------ one turn

local function memory_key(id)
    return db_mod.key("ai", id)
end

-- The seed of a new AI's random numbers: the game's random_seed setting
-- when the ruleset has one (a seeded game is the same game again), else
-- the clock.
local function new_seed(id)
    local settings = g().ctx().settings or {}
    local base = tonumber(settings.random_seed)
    if not base or base < 0 then
        base = os.time()
    end
    return (base * 7919 + id * 104729) % 4294967296
end

local function stored(id)
    local rec = g().db():get(memory_key(id))
    if type(rec) ~= "table" then
        rec = { seed = new_seed(id), memory = {} }
    end
    if type(rec.memory) ~= "table" then
        rec.memory = {}
    end
    return rec
end

-- The AI's random numbers for turn n: a generator of its own, seen
-- through functions only (the generator's class is the rulesets' too).
local function random_for(seed, n)
    local gen = random.new((seed + n * 2654435761) % 4294967296)
    return {
        range = function(_, a, b) return gen:range(a, b) end,
        int32 = function() return gen:int32() end,
        real1 = function() return gen:real1() end,
    }
end

-- Plays player id's turn now (tests call it directly; the server through
-- the queue below). Returns true when the AI ran to its end, false when
-- it failed or was stopped (logged; its orders given so far stand), nil
-- when there was nothing to do.
function M.run(id)
    local p = accounts.player(id)
    local level = M.level_of(p)
    local ai = M.module()
    if not level or not ai or p.alive == false then
        return nil
    end
    local turn = require "tp.turn"
    if turn.turn_record().finished[tostring(id)] then
        return nil
    end
    local cfg = g().config()
    local conn = conn_of(id)
    local rec = stored(id)
    local number = turn.turn_number()
    local run = { orders = 0 }
    local started = core.hrtime()
    local me = {
        orders = orders_api(conn, run),
        memory = rec.memory,
        random = random_for(rec.seed, number),
        level = level,
        log = function(fmt, ...)
            log.info("ai", "%s: " .. tostring(fmt), who(conn), ...)
        end,
    }
    -- The view is built within the AI's time too.
    local ok, err = core.time_limit(cfg.ai_time_limit, "ai", function()
        me.view = M.view(id)
        ai.play(me)
    end)
    -- The AI may have put a table of its own in place of its memory.
    if type(me.memory) == "table" then
        rec.memory = me.memory
    end
    if not ok then
        -- What the AI was doing when it stopped is thrown away; the
        -- orders it gave before stand.
        if model.is_dirty() or types.take_running_hook() then
            model.rollback()
        end
        log.warning("ai", "%s: turn %d: the AI failed (a bug in the AI, "
                    .. "or ai_time_limit): %s", who(conn), number,
                    tostring(err))
    end
    local json_ok, why = pcall(cjson.encode, rec.memory)
    if json_ok then
        local put_ok, put_err = pcall(g().db().put, g().db(), memory_key(id),
                                      rec)
        if not put_ok then
            log.error("ai", "%s: its memory could not be stored: %s",
                      who(conn), tostring(put_err))
        end
    else
        log.warning("ai", "%s: its memory is not JSON and is not kept "
                    .. "(a bug in the AI): %s", who(conn), tostring(why))
    end
    log.debug("ai", "%s played turn %d", who(conn), number,
              { orders = run.orders, ms = core.hrtime() - started })
    -- The turn may end here (the last one to finish).
    local fok, ferr = pcall(request, conn, "FinishedTurn", {})
    if not fok then
        log.error("ai", "%s: FinishedTurn failed: %s", who(conn),
                  tostring(ferr))
    end
    return ok
end

-- ------------------------------------------------------------ the queue

local function pump()
    scheduled = nil
    local id = table.remove(pending, 1)
    if id then
        local ok, err = pcall(M.run, id)
        if not ok then
            log.error("ai", "player %d's AI could not run: %s", id,
                      tostring(err))
        end
    end
    if #pending > 0 and not scheduled then
        scheduled = core.timer(0, 0, pump)
    end
end

-- Queues every computer player that has not finished the running turn.
function M.schedule()
    pending = {}
    if not M.module() then
        return
    end
    local finished = require("tp.turn").turn_record().finished
    for _, p in ipairs(accounts.players()) do
        if M.is_ai(p) and p.alive ~= false and
           not finished[tostring(p.id)] then
            pending[#pending + 1] = p.id
        end
    end
    if #pending > 0 and not scheduled then
        scheduled = core.timer(0, 0, pump)
    end
end

-- Runs the queue to its end now (tests, which have no loop to turn).
function M.drain()
    if scheduled then
        scheduled:stop()
        scheduled = nil
    end
    local guard = 0
    while #pending > 0 and guard < 10000 do
        guard = guard + 1
        local id = table.remove(pending, 1)
        M.run(id)
    end
end

function M.pending()
    return copy_list(pending)
end

-- ------------------------------------------------------------ accounts

-- Adds a computer player (the console's ai.add, ai_players): an account
-- nobody can log into, which joins the game as every player does.
-- Returns the player, or nil, why.
function M.add(name, level)
    local ai = M.module()
    if not ai then
        return nil, g().ruleset().name .. " has no AI (no ai.lua)"
    end
    level = level or g().config().ai_level
    if not known_level(ai, level) then
        return nil, string.format("no AI level \"%s\" (%s has %s)",
                                  tostring(level), g().ruleset().name,
                                  levels_text(ai))
    end
    local player, msg
    accounts.create(name, "", { ai = level, race = "AI (" .. level .. ")",
                                comment = "computer player" },
                    function(p, _, m)
                        player, msg = p, m
                    end)
    if not player then
        return nil, msg or "the player could not be created"
    end
    log.info("ai", "computer player %d (%s) added at level %s", player.id,
             player.name, level)
    M.schedule()
    return player
end

-- The next free name of M.NAMES.
function M.free_name()
    for _, name in ipairs(M.NAMES) do
        if not accounts.taken(name) then
            return name
        end
    end
    for i = 1, 1000000 do
        local name = "AI " .. i
        if not accounts.taken(name) then
            return name
        end
    end
end

-- Removes a computer player's account (what it owned stays, as with
-- remove_player) and its memory. Returns the player, or nil, why.
function M.remove(name)
    local account = accounts.find(name)
    local p = account and accounts.player(account.id)
    if not p or not p.ai then
        return nil, "no computer player named '" .. tostring(name) .. "'"
    end
    local removed, err = accounts.remove(p.name)
    if not removed then
        return nil, err
    end
    M.forget(p.id)
    log.info("ai", "computer player %d (%s) removed", p.id, p.name)
    return p
end

-- A removed player's AI (ai.remove, remove_player): its memory goes, and
-- it is no longer queued.
function M.forget(id)
    if g().db():get(memory_key(id)) ~= nil then
        g().db():batch():delete(memory_key(id)):commit(true)
    end
    for i = #pending, 1, -1 do
        if pending[i] == id then
            table.remove(pending, i)
        end
    end
end

-- The players the AI plays: { id, name, level, controlled (a human's
-- empire), alive, finished }.
function M.list()
    local finished = require("tp.turn").turn_record().finished
    local out = {}
    for _, p in ipairs(accounts.players()) do
        if M.is_ai(p) then
            out[#out + 1] = { id = p.id, name = p.name, level = M.level_of(p),
                              controlled = p.ai == nil,
                              alive = p.alive ~= false,
                              finished = finished[tostring(p.id)] == true }
        end
    end
    return out
end

local function store_player(p)
    model.player_changed(p)
    model.commit(nil, true)
end

-- Hands a human player's empire to the AI at level (an idle player,
-- idle_action = "ai"): it plays their turns from this one on, until
-- M.release. Stored in the player record. Returns true, or nil, why.
function M.control(player_id, level)
    local ai = M.module()
    local p = accounts.player(player_id)
    if not p then
        return nil, "no player " .. tostring(player_id)
    end
    if not ai then
        return nil, g().ruleset().name .. " has no AI (no ai.lua)"
    end
    if p.ai then
        return nil, p.name .. " is a computer player already"
    end
    level = level or g().config().ai_level
    if not known_level(ai, level) then
        return nil, string.format("no AI level \"%s\" (%s has %s)",
                                  tostring(level), g().ruleset().name,
                                  levels_text(ai))
    end
    p.ai_control = level
    store_player(p)
    log.info("ai", "player %d (%s) handed to the AI at level %s", p.id,
             p.name, level)
    M.schedule()
    return true
end

-- Gives the empire back to its human player (they logged in again).
-- Returns true, or nil, why.
function M.release(player_id)
    local p = accounts.player(player_id)
    if not p then
        return nil, "no player " .. tostring(player_id)
    end
    if not p.ai_control then
        return nil, p.name .. " is not played by the AI"
    end
    p.ai_control = nil
    store_player(p)
    log.info("ai", "player %d (%s) plays again", p.id, p.name)
    for i = #pending, 1, -1 do
        if pending[i] == p.id then
            table.remove(pending, i)
        end
    end
    return true
end

-- ------------------------------------------------------------ the game

-- The game was opened (tp.game.start; created: a new game): a new game
-- gets its ai_players, and every AI that has not finished the running
-- turn plays it.
function M.open(created)
    M.stop()
    if not subscribed then
        subscribed = true
        require("tp.events").subscribe(function(name)
            if name == "turn_start" or name == "turn_restarted" then
                M.schedule()
            end
        end)
    end
    local cfg = g().config()
    if created and M.module() then
        for _ = 1, cfg.ai_players do
            local p, err = M.add(M.free_name(), cfg.ai_level)
            if not p then
                log.error("ai", "a computer player could not be added: %s",
                          tostring(err))
            end
        end
    end
    M.schedule()
end

function M.stop()
    if scheduled then
        scheduled:stop()
        scheduled = nil
    end
    pending = {}
end

return M
