-- MiniSec's AI (rulesets/minisec/ai.lua) playing whole games through the
-- AI engine, without sockets: an AI-only game of three reaches a victory
-- in a bounded number of turns; the same seed gives the same game, with
-- or without restarts in the middle of turns; "normal" beats "easy" in
-- most of 20 seeded games (the count is printed).
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local accounts = require "tp.accounts"
local ai = require "tp.ai"
local model = require "tp.model"

-- A galaxy of a few random systems besides the fixed ones.
local function settings(seed)
    return { random_seed = seed, min_systems = 4, max_systems = 8,
             max_planets = 3, noguest = true }
end

local function alive(players)
    local out = {}
    for _, p in ipairs(players) do
        if accounts.player(p.id).alive ~= false then
            out[#out + 1] = p
        end
    end
    return out
end

local function planets_of(id)
    local n = 0
    for _, oid in ipairs(model.object_ids()) do
        local o = model.objects[oid]
        if o.type == 3 and o.owner == id then
            n = n + 1
        end
    end
    return n
end

-- Plays a game of computer players at levels until one is left or
-- max_turns. opts.restart_every: reopen the game (as a restarted server)
-- every that many turns, before the AIs have played the turn.
-- Returns the game (open), its players, and the turns played.
local function play(seed, levels, max_turns, opts)
    opts = opts or {}
    local g = assert(H.new_game(settings(seed),
                                { cfg = { ai_time_limit = 10 } }))
    local players = {}
    for i, level in ipairs(levels) do
        players[i] = assert(ai.add(ai.free_name(), level))
    end
    local turns = 0
    while turns < max_turns and #alive(players) > 1 do
        if opts.restart_every and turns > 0 and
           turns % opts.restart_every == 0 then
            g:reopen()
        end
        ai.drain()
        g:end_turn()
        turns = turns + 1
    end
    return g, players, turns
end

-- ------------------------------------------------------------ a victory

local LIMIT = 200
local g, players, turns = play(3, { "normal", "easy", "easy" }, LIMIT)
local left = alive(players)
t.ok(#left == 1, string.format("three AIs: one is left after %d turns "
     .. "(at most %d)", turns, LIMIT), #left .. " left")
local won = false
for _, m in ipairs(g:messages(left[1].id)) do
    won = won or m.subject == "You won!"
end
t.ok(won, "it is told it won")
t.ok(planets_of(left[1].id) > 1, "it conquered or colonised planets")
local first = g:snapshot()
local first_turns = turns
local first_msgs = #g:messages(left[1].id)
g:close()

-- ------------------------------------------------------------ the same

g, players, turns = play(3, { "normal", "easy", "easy" }, LIMIT)
t.is(turns, first_turns, "the same seed: the game lasts as long")
local same, where = H.same(g:snapshot(), first)
t.ok(same, "and ends with the same universe", where)
t.is(#g:messages(players[1].id), first_msgs, "and the same messages")
g:close()

-- Restarted every 7 turns, before the AIs play: they resume the turn with
-- their memory, and the game is the same.
local straight = play(11, { "normal", "easy" }, 30)
local snap = straight:snapshot()
straight:close()
local restarted = play(11, { "normal", "easy" }, 30, { restart_every = 7 })
same, where = H.same(restarted:snapshot(), snap)
t.ok(same, "restarts in the middle of turns: the same game", where)
restarted:close()

-- ------------------------------------------------------------ levels

-- The orders each level gives, counted at the OrderInsert handler the
-- AIs' orders go through.
local types = require "tp.types"
local insert = require("tp.handlers.orders").OrderInsert
local insert_fn = insert.fn
local given = { easy = {}, normal = {} }
insert.fn = function(conn, req)
    local level = accounts.player(conn.player).ai
    local name = types.orders[req.otype].name
    if level then
        given[level][name] = (given[level][name] or 0) + 1
    end
    return insert_fn(conn, req)
end

-- 20 seeded games of normal against easy, each level first in half of
-- them (combat sides go by player id). A game not over after MAX turns
-- goes to the one with more planets.
local MAX = 150
local normal_wins, lines = 0, {}
for seed = 1, 20 do
    local levels = seed % 2 == 0 and { "normal", "easy" }
                   or { "easy", "normal" }
    local game_, ps, n = play(100 + seed, levels, MAX)
    local normal = levels[1] == "normal" and ps[1] or ps[2]
    local easy = normal == ps[1] and ps[2] or ps[1]
    local still = alive(ps)
    local winner
    if #still == 1 then
        winner = still[1]
    elseif planets_of(normal.id) ~= planets_of(easy.id) then
        winner = planets_of(normal.id) > planets_of(easy.id) and normal
                 or easy
    end
    if winner == normal then
        normal_wins = normal_wins + 1
    end
    lines[#lines + 1] = string.format("seed %d: %s after %d turns", 100 +
        seed, winner == normal and "normal" or winner and "easy" or "draw",
        n)
    game_:close()
end
insert.fn = insert_fn
print("# normal beat easy in " .. normal_wins .. " of 20 games")
local used = {}
for _, name in ipairs { "Move", "Build Fleet", "Colonise", "Merge Fleet",
                        "Split Fleet", "Intercept" } do
    used[#used + 1] = (given.normal[name] or 0) > 0 and name or nil
end
t.is(#used, 6, "normal moves, builds, colonises, merges and splits fleets "
     .. "and intercepts", table.concat(used, ", "))
t.ok((given.easy["Build Fleet"] or 0) > 0 and
     (given.easy.Colonise or 0) > 0 and not given.easy["Merge Fleet"],
     "easy builds and colonises, and never merges")
t.ok(normal_wins > 10, "normal beats easy in most of 20 seeded games ("
     .. normal_wins .. ")", table.concat(lines, "\n"))

t.done()
