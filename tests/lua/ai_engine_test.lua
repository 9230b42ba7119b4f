-- The AI engine (tp.ai) on a MiniSec game, driven without sockets:
-- computer players made at game creation, what an AI module is given (its
-- player's view, the orders API, no handle to the model), orders through
-- the handlers' validation (a refusal logged as the AI's bug, nothing
-- applied), the time limit, the memory across a restart, the turn-ending
-- rule (computer players alone never end a turn early), handing a human's
-- empire to the AI and back, and AIs resuming an unfinished turn after a
-- restart.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local accounts = require "tp.accounts"
local ai = require "tp.ai"
local game = require "tp.game"
local log = require "tp.log"
local model = require "tp.model"
local turn = require "tp.turn"

-- Warnings of the ai module, caught (and still logged).
local warnings = {}
local warning = log.warning
log.warning = function(module, fmt, ...)
    if module == "ai" then
        warnings[#warnings + 1] = string.format(fmt, ...)
    end
    return warning(module, fmt, ...)
end

local function finished(id)
    return turn.turn_record().finished[tostring(id)] == true
end

-- ------------------------------------------------------------ creation

local missing, why = H.new_game(nil, { ruleset = "rfts",
                                       cfg = { ai_players = 1 } })
t.ok(missing == nil and why:find("has no AI", 1, true) and
     why:find("ai.lua", 1, true), "ai_players with a ruleset without an "
     .. "AI: the game is refused, saying why", why)
missing, why = H.new_game(nil, { cfg = { ai_players = 1,
                                         ai_level = "genius" } })
t.ok(missing == nil and why:find("genius", 1, true) and
     why:find("\"easy\", \"normal\"", 1, true),
     "an unknown ai_level is refused, with the levels", why)

local g = assert(H.new_game({ random_seed = 5 },
                            { cfg = { ai_players = 2, ai_level = "easy" } }))
local rs = g.rs
local players = accounts.players()
t.is(#players, 2, "ai_players = 2: two players in the new game")
local A, B = players[1], players[2]
t.ok(A.name == "Ada" and B.name == "Babbage", "named from the list",
     A.name .. ", " .. B.name)
t.ok(A.ai == "easy" and B.ai == "easy", "marked ai = level")
t.is(A.race, "AI (easy)", "their race string says AI (GetPlayer)")
t.is(accounts.find("Ada").kdf, "none", "no password hash at all")
local set_ok, set_err
accounts.set_password("Ada", "secret", function(ok, err)
    set_ok, set_err = ok, err
end)
t.ok(not set_ok and set_err:find("computer player", 1, true),
     "no password can be given to one", set_err)
t.ok(g:find("Ada Planet") and g:find("Babbage Planet"),
     "they joined as players do (home planets)")
t.is(#ai.pending(), 2, "both are queued to play the first turn")

-- ------------------------------------------------------------ the view

-- The test's own AI, in the place of MiniSec's.
local real_ai = rs.ai
local test_ai = { levels = { "easy", "normal" } }
rs.ai = test_ai
local seen
test_ai.play = function(me)
    seen = me
end
t.ok(ai.run(A.id), "an AI runs")
t.ok(finished(A.id), "and has finished its turn (FinishedTurn)")
t.ok(not finished(B.id), "the other one has not yet")

-- Every table and function reachable from what play got.
local reached, functions = {}, {}
local function walk(v)
    if type(v) == "function" then
        functions[v] = true
        return
    end
    if type(v) ~= "table" or reached[v] then
        return
    end
    reached[v] = true
    for k, x in pairs(v) do
        walk(k)
        walk(x)
    end
    walk(getmetatable(v))
end
walk(seen)
local leaks = {}
local forbidden = { [model] = "tp.model", [model.objects] = "model.objects",
                    [model.queues] = "model.queues",
                    [model.designs] = "model.designs",
                    [model.boards] = "model.boards",
                    [game.ctx()] = "the ruleset's ctx", [g.db] = "the db",
                    [accounts.players()] = "the player list",
                    [game] = "tp.game", [_G] = "the globals" }
for _, id in ipairs(model.object_ids()) do
    forbidden[model.objects[id]] = "object " .. id
    if model.queues[id] then
        forbidden[model.queues[id]] = "queue " .. id
    end
end
for _, p in ipairs(accounts.players()) do
    forbidden[p] = "player record " .. p.id
end
for v, what in pairs(forbidden) do
    if reached[v] then
        leaks[#leaks + 1] = what
    end
end
t.is(#leaks, 0, "nothing of the model, the db, the ctx or the players "
     .. "is reachable from what the AI gets", table.concat(leaks, ", "))
local allowed_fns = { [seen.orders.insert] = true,
                      [seen.orders.probe] = true,
                      [seen.orders.remove] = true,
                      [seen.orders.finish] = true, [seen.log] = true }
for _, f in pairs(seen.random) do
    allowed_fns[f] = true
end
local other_fns = 0
for f in pairs(functions) do
    if not allowed_fns[f] then
        other_fns = other_fns + 1
    end
end
t.is(other_fns, 0, "its only functions: the orders API, log and its "
     .. "random numbers")
t.ok(getmetatable(seen.random) == nil and seen.random:range(1, 6) >= 1,
     "random numbers through functions of its own")
local env = getfenv(real_ai.play)
t.ok(env.require == nil and env.debug == nil and env.io == nil and
     env.load == nil and env.loadstring == nil and env.getfenv == nil,
     "MiniSec's ai.lua runs in a sandbox (no require, debug, io, load)")

local v = seen.view
t.is(v.me, A.id, "view.me")
t.is(v.turn, 0, "view.turn")
local n = 0
for _ in pairs(v.objects) do
    n = n + 1
end
t.is(n, #model.object_ids(), "MiniSec shows every object: all are there")
local afleet = g:objects("Fleet", A.id)[1]
local bfleet = g:objects("Fleet", B.id)[1]
local mine, theirs = v.objects[afleet.id], v.objects[bfleet.id]
t.ok(mine.type == "Fleet" and mine.params.Owner.id == A.id and
     mine.params["Ship List"].references[1].count == 1,
     "an object: its type, parameters by name, as the Object frame has "
     .. "them")
t.ok(mine.orders and #mine.orders == 0 and
     mine.params["Order Queue"].queueid == afleet.id,
     "its own fleet: its order queue and orders")
t.ok(theirs.orders == nil and theirs.params["Order Queue"].queueid == 0,
     "another player's fleet: no queue, no orders (as a client sees it)")
t.ok(v.order_types.Move and v.order_types.Move.params[1] == "pos",
     "order types by name, with their parameters")
local frigate
for _, d in pairs(v.designs) do
    if d.owner == A.id and d.name == "Frigate" then
        frigate = d
    end
end
t.ok(frigate and frigate.numbers.Speed == 200 and
     frigate.properties.Speed == "200.0 mega-units",
     "designs: properties as shown and their numbers")
t.ok(#v.players == 2 and v.players[2].race == "AI (easy)",
     "players as GetPlayer shows them")

-- A ruleset with fog: the hidden object is not in the view, nor in its
-- parent's contents.
local hidden = bfleet.id
rs.visible = function(_, player, obj)
    return not (player == A.id and obj.id == hidden)
end
local fog_view = ai.view(A.id)
rs.visible = nil
local parent = fog_view.objects[bfleet.parent]
local listed = false
for _, c in ipairs(parent.contains) do
    listed = listed or c == hidden
end
t.ok(fog_view.objects[hidden] == nil and not listed,
     "an object the ruleset hides from the player is not in its view")

-- ------------------------------------------------------------ orders

local function count_orders(obj)
    return #model.queues[obj.id].orders
end
local bplanet = g:find("Babbage Planet")
local results = {}
test_ai.play = function(me)
    local o = me.orders
    results.move = o.insert(afleet.id, "Move",
                            { pos = { x = 1000, y = 2000, z = 0 } })
    results.probe = o.probe(afleet.id, "Move",
                            { pos = { x = afleet.pos.x + 400000000,
                                      y = afleet.pos.y, z = 0 } })
    results.enemy = { o.insert(bplanet.id, "Build Fleet", {
        ships = { selection = { { id = 4, number = 1 } } } }) }
    results.design = { o.insert(g:find("Ada Planet").id, "Build Fleet", {
        ships = { selection = { { id = 999, number = 1 } } } }) }
    results.kind = { o.insert(afleet.id, "Warp", {}) }
    results.slot = { o.remove(afleet.id, 7) }
    results.nothing = { o.insert(123456, "Move", {}) }
    o.finish()
    results.after = { o.insert(afleet.id, "Move",
                               { pos = { x = 5, y = 5, z = 0 } }) }
end
warnings = {}
t.ok(ai.run(B.id) ~= nil, "B's AI runs")
-- B's AI gave A's fleet orders: refused, it is not B's.
t.ok(results.move == nil, "an order for another player's object is "
     .. "refused")
t.is(count_orders(afleet), 0, "and not applied")
-- Now as A (the fleet's owner), a new turn.
g:end_turn()
warnings = {}
t.ok(ai.run(A.id), "A's AI runs")
t.ok(results.move and results.move.type == "Move" and
     results.move.params.pos.x == 1000, "a valid order: inserted, "
     .. "answered with the Order frame (decoded)")
t.is(count_orders(afleet), 1, "it is in the fleet's queue")
t.ok(results.after[1] == nil and results.after[2]:find("finished", 1, true),
     "after finish(), no more orders", results.after[2])
t.ok(results.probe and results.probe.turns == 2,
     "a probe answers the estimate (2 turns for a frigate at 4e8)",
     results.probe and results.probe.turns)
t.is(count_orders(afleet), 1, "a probe adds nothing")
t.ok(results.enemy[1] == nil and
     results.enemy[2]:find("not yours", 1, true),
     "another player's planet: refused by the handler", results.enemy[2])
t.is(count_orders(bplanet), 0, "nothing applied to it")
t.ok(results.design[1] == nil and results.design[2] ~= nil,
     "a design not theirs: refused by the ruleset's check",
     results.design[2])
t.is(count_orders(g:find("Ada Planet")), 0, "nothing applied")
t.ok(results.kind[1] == nil and results.slot[1] == nil and
     results.nothing[1] == nil, "an unknown order type, slot or object "
     .. "is refused")
local bug_lines = 0
for _, w in ipairs(warnings) do
    if w:find("a bug in the AI", 1, true) and w:find("Ada", 1, true) then
        bug_lines = bug_lines + 1
    end
end
t.is(bug_lines, 6, "each refusal is logged as the AI's bug",
     table.concat(warnings, "\n"))
t.is(#g.db:get(require("tp.db").key("queue", afleet.id)).orders, 1,
     "the accepted order is in the database")

-- ------------------------------------------------------------ time limit

g:end_turn()
g.cfg.ai_time_limit = 0.2
test_ai.play = function(me)
    me.orders.insert(afleet.id, "No Operation", { wait = { turns = 3 } })
    while true do
        me.memory.spins = (me.memory.spins or 0) + 1
    end
end
warnings = {}
t.is(ai.run(A.id), false, "an AI that never returns is stopped "
     .. "(ai_time_limit)")
t.ok(warnings[#warnings] and warnings[#warnings]:find("failed", 1, true),
     "logged", warnings[#warnings])
t.ok(finished(A.id), "its turn is finished all the same")
t.is(count_orders(afleet), 2, "the order it gave before stands")
g.cfg.ai_time_limit = 1

-- ------------------------------------------------------------ memory

g:end_turn()
test_ai.play = function(me)
    me.memory.turns = (me.memory.turns or 0) + 1
    me.memory.last = me.view.turn
end
ai.drain()
g:end_turn()
ai.drain()
local rec = g.db:get(require("tp.db").key("ai", A.id))
t.ok(rec.memory.turns == 2 and rec.memory.last == g:turn_number() and
     rec.memory.spins > 0, "the memory is stored after each turn")
g:end_turn()
g:reopen()
rs = g.rs
rs.ai = test_ai
t.ok(#ai.pending() == 2, "after a restart, the AIs that have not "
     .. "finished the running turn are queued")
ai.drain()
rec = g.db:get(require("tp.db").key("ai", A.id))
t.is(rec.memory.turns, 3, "and play it with their memory")
t.ok(finished(A.id) and finished(B.id), "both finished it")

-- ------------------------------------------------------------ turn end

g.cfg.turn_mode = "players_finished"
g:end_turn()
ai.drain()
local before = g:turn_number()
t.ok(finished(A.id) and finished(B.id) and g:turn_number() == before,
     "players_finished: all the players are computers and have "
     .. "finished; the turn does not end")
local alice = g:join("alice")
g:end_turn()
before = g:turn_number()
ai.drain()
t.is(g:turn_number(), before, "a human has not finished: it goes on")
game.finished_turn(alice.id)
t.is(g:turn_number(), before + 1, "the human finishes: the turn ends at "
     .. "once")
-- The human first, the AIs after (in threshold mode now).
game.finished_turn(alice.id)
t.is(g:turn_number(), before + 1, "the AIs still to play")
g.cfg.turn_mode = "threshold"
g.cfg.turn_player_threshold = 50
g.cfg.turn_length_over_threshold = 0
ai.drain()
-- The last AI ended the turn, and the AIs played the next one in the
-- same drain (as the server's queue does).
t.is(g:turn_number(), before + 2, "the last AI to finish ends it")
t.ok(finished(A.id) and finished(B.id) and not finished(alice.id),
     "the AIs have played the next turn")
t.is(g:turn_number(), before + 2, "threshold: two computers of three "
     .. "players past the threshold do not end the turn")
game.finished_turn(alice.id)
t.is(g:turn_number(), before + 3, "the human does")
g.cfg.turn_mode = "manual"
game.reset_timer()
ai.drain()

-- A turn that fails starts over: every player finishes it again, and
-- the AIs play it again.
local real_turn = rs.turn
rs.turn = function()
    error("a broken turn")
end
before = g:turn_number()
t.ok(finished(A.id), "A had finished")
g:end_turn()
rs.turn = real_turn
t.ok(g:turn_number() == before and not finished(A.id),
     "the turn failed: not advanced, nobody finished")
t.ok(#ai.pending() == 2, "the AIs are queued to play it again")
ai.drain()
t.ok(finished(A.id) and finished(B.id), "and play it")
-- The failed turn read the players back from the database.
alice, A, B = accounts.player(alice.id), accounts.player(A.id),
              accounts.player(B.id)

-- ------------------------------------------------------------ control

t.ok(ai.control(alice.id, "normal"), "a human's empire handed to the AI")
t.ok(ai.is_ai(alice) and alice.ai_control == "normal" and not alice.ai,
     "played by the AI, still a human's account")
local list = ai.list()
t.ok(#list == 3 and list[3].controlled and list[3].level == "normal",
     "ai.list shows it, controlled")
t.ok(ai.pending()[1] == alice.id, "it plays the running turn")
ai.drain()
t.ok(finished(alice.id), "and finished it")
g:reopen()
rs = g.rs
rs.ai = test_ai
alice = accounts.player(alice.id)
t.is(alice.ai_control, "normal", "the hand-over survives a restart")
t.ok(not turn.human_finished(), "its FinishedTurn is not a human's")
t.ok(ai.release(alice.id), "given back")
t.ok(not ai.is_ai(alice) and not accounts.player(alice.id).ai_control,
     "the human plays again")
g:reopen()
t.ok(not ai.is_ai(accounts.player(alice.id)), "stored")
t.ok(not ai.release(alice.id), "releasing twice is refused")
t.ok(not ai.control(A.id), "a computer player cannot be handed over")
g.rs.ai = test_ai

-- ------------------------------------------------------------ add, remove

local zed, zerr = ai.add("Zed", "hard")
t.ok(zed == nil and zerr:find("hard", 1, true), "ai.add: an unknown "
     .. "level is refused", zerr)
zed = assert(ai.add("Zed", "easy"))
t.ok(zed.ai == "easy" and accounts.find("Zed"), "ai.add makes one")
t.ok(ai.pending()[#ai.pending()] == zed.id, "it plays the running turn")
t.ok(ai.remove("alice") == nil, "ai.remove refuses a human")
t.ok(ai.remove("Zed"), "ai.remove")
t.ok(accounts.find("Zed") == nil, "its account is gone")
for _, id in ipairs(ai.pending()) do
    t.ok(id ~= zed.id, "and it is not queued")
end
t.is(g.db:get(require("tp.db").key("ai", zed.id)), nil, "nor its memory")

log.warning = warning
g:close()
t.done()
