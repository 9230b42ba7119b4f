-- bench/turn.lua: how long a MiniSec end of turn takes on a big game.
--
--   tpserver script bench/turn.lua [players] [systems] [turns]
--
-- Creates a game in a temporary data directory through the server's own
-- code paths (tp.game.start and the ruleset's setup, every player's join
-- as account creation runs it, a Move for every fleet through the
-- OrderInsert handler), then times tp.game.end_turn: the ruleset's turn
-- and the one database batch (written with sync). Defaults: 1000 players
-- and 31,666 random systems of 2 planets (95 objects per player), about
-- 100,000 objects; 3000 fleets, all moving every turn; 3 turns. Setting
-- the game up takes most of the time (every join posts a message to every
-- player).
-- Prints one line per turn and a summary line:
--   turn-bench players=1000 objects=100010 movers=3000 setup_s=...
--   median_ms=... max_ms=...
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local core = require "tp.core"
local game = require "tp.game"

local players = tonumber(arg[1]) or 1000
local systems = tonumber(arg[2]) or math.floor(players * 95 / 3)
local turns = tonumber(arg[3]) or 3

local started = core.hrtime()
local g = assert(H.new_game { random_seed = 1, min_systems = systems,
                              max_systems = systems, min_planets = 2,
                              max_planets = 2 })
local names = {}
for i = 1, players do
    names[i] = string.format("player%04d", i)
end
g:join_many(names)

-- Every fleet moves toward some planet far away (a deterministic pick).
local planets = g:objects("Planet")
local fleets = g:objects("Fleet")
for k, f in ipairs(fleets) do
    local p = planets[(k * 7919) % #planets + 1]
    assert(g:order(f.owner, f, "Move", { pos = p.pos }))
end
local objects = #g:objects()
local setup_s = (core.hrtime() - started) / 1000
io.write(string.format("turn-bench: %d players, %d objects, %d fleets "
                       .. "moving (set up in %.1f s)\n", players, objects,
                       #fleets, setup_s))

local times = {}
for i = 1, turns do
    collectgarbage()
    local t0 = core.hrtime()
    assert(game.end_turn("admin"), "the turn failed")
    times[i] = core.hrtime() - t0
    io.write(string.format("turn-bench: turn %d took %.0f ms (ruleset and "
                           .. "commit %.0f ms)\n", i, times[i],
                           game.last_turn_ms or 0))
end
table.sort(times)
io.write(string.format("turn-bench players=%d objects=%d movers=%d "
                       .. "setup_s=%.1f median_ms=%.0f max_ms=%.0f\n",
                       players, objects, #fleets, setup_s,
                       times[math.floor((#times + 1) / 2)], times[#times]))
g:close()
