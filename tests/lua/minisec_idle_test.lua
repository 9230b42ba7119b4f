-- MiniSec and idle players (tp.idle): a player who neither logs in nor
-- finishes is marked idle after idle_turns turns and, with idle_action =
-- "remove", taken out of the game: MiniSec's player_removed hook makes
-- their planets unowned and disbands their fleets; the others keep theirs.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local game = require "tp.game"

local g = assert(H.new_game({ random_seed = 7 }, { cfg = {
    idle_turns = 2, idle_action = "remove", idle_remove_turns = 1 } }))
local alice, bob, carol = g:join("alice"), g:join("bob"), g:join("carol")
local function owned(p, type_name)
    return #g:objects(type_name, p.id)
end
t.ok(owned(carol, "Planet") > 0 and owned(carol, "Fleet") > 0,
     "carol starts with a planet and fleets")
local alice_planets = owned(alice, "Planet")

local function turn(...)
    for _, p in ipairs { ... } do
        game.player_seen(p.id)
    end
    local n = g:turn_number()
    t.ok(g:end_turn(), "turn " .. n .. " ends")
end
turn(alice, bob)
t.ok(not g:player(carol.id).idle, "one turn away: not idle yet")
turn(alice, bob)
t.ok(g:player(carol.id).idle, "two turns neither logged in nor finished: "
     .. "idle")
t.ok(g:player(carol.id).alive ~= false, "idle, not yet removed")
t.is(#game.waiting(), 2, "carol is not waited for")
turn(alice, bob)
local c = g:player(carol.id)
t.ok(c.alive == false and c.removed, "a turn idle later, carol is out")
t.is(owned(carol, "Planet"), 0, "carol's planets are unowned")
t.is(owned(carol, "Fleet"), 0, "carol's fleets are disbanded")
t.is(owned(alice, "Planet"), alice_planets, "alice keeps her planets")
t.ok(g:player(bob.id).alive ~= false and not g:player(bob.id).idle,
     "bob, who logged in, plays on")
g:reopen()
t.ok(g:player(carol.id).removed and g:player(carol.id).alive == false,
     "stored: still out after a restart")
turn(alice, bob)
t.is(g:player(carol.id).alive, false, "and MiniSec's turn leaves it so")
g:close()
return t.done()
