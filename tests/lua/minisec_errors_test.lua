-- A ruleset with deliberate errors in its order code
-- (tests/fixtures/rulesets/broken): the request that runs the faulty hook
-- gets a readable Fail naming the order type, nothing of it is kept, and
-- the game goes on; a faulty execute fails the turn, which is then not
-- advanced and leaves nothing behind.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")

local g = assert(H.new_game({}, { ruleset = TP_HOME ..
                                  "/tests/fixtures/rulesets/broken" }))
local alice = g:join("alice")
-- (A failed request reloads the game from the database: look objects up
-- again afterwards.)
local function my_ship()
    return g:objects("Ship", alice.id)[1]
end
local ship = my_ship()

local function fly(x)
    ship = my_ship()
    return g:order(alice.id, ship, "Fly", { to = { x = x, y = 1, z = 0 } })
end

local function readable(err, hook)
    return type(err) == "table" and err.tp_fail and err.code == 3 and
           err.message == "the ruleset failed " .. hook .. " this Fly "
           .. "order (a bug in the ruleset; the server log has the "
           .. "details)" and err.refs[1].type == 2 and err.refs[1].id == 0
end

local ok, err = fly(13)
t.ok(not ok and readable(err, "checking"), "a bug in check: a readable "
     .. "Fail naming the order type", type(err) == "table" and err.message
     or err)
t.ok(not tostring(err.message):find(".lua", 1, true) and
     not tostring(err.message):find("traceback", 1, true),
     "no file names or tracebacks for the client")
ok, err = g:probe(alice.id, ship, "Fly", { to = { x = 13, y = 1, z = 0 } })
t.ok(not ok and readable(err, "checking"), "the same for OrderProbe")
ok, err = fly(16)
t.ok(not ok and readable(err, "inserting"), "a bug in inserted: Fail")
t.is(#g:queue(my_ship()).orders, 0, "and the order is not kept")
ok, err = fly(14)
t.ok(not ok and readable(err, "estimating"), "a bug in turns: Fail")
t.is(#g:queue(my_ship()).orders, 0, "not kept either")

ok = fly(5)
t.ok(ok, "a good order is still accepted")
t.ok(g:end_turn(), "and a turn runs")
t.is(my_ship().pos.x, 5, "the ship jumped")
t.is(g:turn_number(), 1, "turn 1")

ok = fly(15)
t.ok(ok, "an order whose execute has a bug is accepted")
local turn_ok = g:end_turn()
t.is(turn_ok, false, "the turn it runs in fails")
t.is(g:turn_number(), 1, "and is not advanced")
ship = my_ship()
t.is(ship.pos.x, 5, "nothing of it is kept")
t.is(#g:queue(ship).orders, 1, "the order is still queued")
ok, err = g:request(alice.id, "RemoveOrder", { id = ship.id, slots = { 0 } })
t.ok(ok, "the player can remove it", err)
t.ok(g:end_turn() and g:turn_number() == 2, "then the game goes on")
g:close()

return t.done()
