-- MiniSec orders, each through OrderInsert and end of turn: Move (travel
-- time by distance and speed, steps, arrival, re-parenting), Build Fleet
-- (cost, time, ship parts, counters, refusals), Colonise (every
-- condition), Split and Merge Fleet, No Operation and Intercept, with the
-- messages and references their owners get.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")

local FRIGATE_SPEED, BATTLESHIP_SPEED = 200000000, 300000000

local function trunc(v)
    return v >= 0 and math.floor(v) or math.ceil(v)
end

local function dist(a, b)
    local dx, dy, dz = a.x - b.x, a.y - b.y, a.z - b.z
    return math.floor(math.sqrt(dx * dx + dy * dy + dz * dz))
end

-- One step as minisec.md 7.1 states it.
local function step(pos, dest, speed)
    local dx, dy, dz = dest.x - pos.x, dest.y - pos.y, dest.z - pos.z
    local s = speed / math.sqrt(dx * dx + dy * dy + dz * dz)
    return { x = pos.x + trunc(dx * s), y = pos.y + trunc(dy * s),
             z = pos.z + trunc(dz * s) }
end

local function refs_text(m)
    local out = {}
    for _, r in ipairs(m.references) do
        out[#out + 1] = r.type .. ":" .. r.id
    end
    return table.concat(out, " ")
end

-- The one message with this subject a player got this turn.
local function message(g, pid, subject)
    local list = g:new_messages(pid, subject)
    return list[#list], #list
end

local function fail_text(err)
    return type(err) == "table" and err.message or tostring(err)
end

local g = assert(H.new_game { random_seed = 42 })
local ctx = g:ctx()
local ms = g:ms()
local alice = g:join("alice")
local bob = g:join("bob")
local A, B = alice.id, bob.id
local af = g:objects("Fleet", A)
local bf = g:objects("Fleet", B)
local ahome = g:find("alice Planet")
local bhome = g:find("bob Planet")
local earth, venus, mars = g:find("Earth"), g:find("Venus"), g:find("Mars")
local sol = g:find("Sol/Terra System")

-- Puts an object somewhere (test set-up).
local function place(obj, pos, parent)
    obj.pos = { x = pos.x, y = pos.y, z = pos.z or 0 }
    ctx:set_parent(obj, parent)
    ctx:changed(obj)
    g:commit()
end

local function give(fleet, design, n)
    ms.objects.add_ships(ctx, fleet, design, n)
    g:commit()
end

-- ------------------------------------------------------------ Move

local f = af[1]
local dest = { x = earth.pos.x, y = earth.pos.y, z = 0 }
local d0 = dist(dest, f.pos)
local eta = math.floor((d0 - 1) / FRIGATE_SPEED) + 1
local ok, reply = g:order(A, f, "Move", { pos = dest })
t.ok(ok, "Move accepted", fail_text(reply))
t.is(reply.turns, eta, "Move: the Order frame shows the arrival time "
     .. "(distance - 1) / speed + 1 = " .. eta)
local expect = { x = f.pos.x, y = f.pos.y, z = 0 }
local stepped_ok, arrival = true, nil
for turn = 1, eta do
    local before = { x = expect.x, y = expect.y, z = 0 }
    g:end_turn()
    if turn < eta then
        expect = step(expect, dest, FRIGATE_SPEED)
        if f.pos.x ~= expect.x or f.pos.y ~= expect.y or
           f.vel.x ~= expect.x - before.x or
           f.vel.y ~= expect.y - before.y then
            stepped_ok = false
        end
        if g:estimate(f, 0) ~= eta - turn then
            stepped_ok = false
        end
    else
        arrival = turn
    end
end
t.ok(stepped_ok, "each turn the fleet steps by its speed (components "
     .. "truncated), velocity = the step, and the estimate counts down")
t.ok(f.pos.x == dest.x and f.pos.y == dest.y, "arrives exactly on turn "
     .. eta)
t.ok(f.vel.x == 0 and f.vel.y == 0, "velocity 0 on arrival")
t.is(f.parent, earth.id, "arriving at a planet puts the fleet in it")
t.is(#g:queue(f).orders, 0, "the Move is done")
local m = message(g, A, "Move order complete")
t.ok(m and m.body == "The fleet 'alice First Fleet' has reached it's "
     .. "destination.", "message 'Move order complete'", m and m.body)
t.is(m and refs_text(m), "-2:1 1:" .. f.id .. " 1:" .. earth.id,
     "references: completed, the fleet, its new parent")

-- Into a system (not at a planet), then into the galaxy, the universe.
local function move_now(fleet, pos)
    place(fleet, { x = pos.x - 1000, y = pos.y, z = pos.z }, fleet.parent)
    assert(g:order(A, fleet, "Move", { pos = pos }))
    g:end_turn()
end
move_now(f, { x = sol.pos.x + 25000, y = sol.pos.y + 100, z = 0 })
t.is(f.parent, sol.id, "arriving inside a system's radius: the system")
move_now(f, { x = 0, y = 0, z = 0 })
t.is(f.parent, 1, "arriving in open space: the galaxy")
move_now(f, { x = 60000000000, y = 0, z = 0 })
t.is(f.parent, 0, "arriving outside the galaxy: the universe")
move_now(f, { x = earth.pos.x + 2, y = earth.pos.y, z = 0 })
t.is(f.parent, earth.id, "within 2 units of a planet counts as at it")
move_now(f, { x = earth.pos.x + 3, y = earth.pos.y, z = 0 })
t.is(f.parent, sol.id, "3 units away does not")

ok, reply = g:order(A, f, "Move", { pos = { x = f.pos.x, y = f.pos.y,
                                            z = 0 } })
t.is(reply.turns, 1, "a Move to where the fleet is takes 1 turn")
g:end_turn()
t.ok(message(g, A, "Move order complete") and #g:queue(f).orders == 0,
     "and completes at once")

-- Fleet speed: the slowest design.
local mixed = af[2]
give(mixed, 3, 1)
t.is(ms.objects.speed(ctx, mixed), FRIGATE_SPEED, "frigate + battleship: "
     .. "frigate speed")
ms.objects.remove_ships(ctx, mixed, 2, 1)
g:commit()
t.is(ms.objects.speed(ctx, mixed), BATTLESHIP_SPEED, "battleship alone")
ok, reply = g:order(A, mixed, "Move", { pos = { x = mixed.pos.x + 900000000,
                                                y = mixed.pos.y, z = 0 } })
t.is(reply.turns, 3, "900 M units at 300 M per turn: 3 turns")
local badpos = g:order(A, mixed, "Move", { pos = { x = 2 ^ 60, y = 0,
                                                   z = 0 } })
t.ok(not badpos, "a position beyond 2^53 is refused")
g:end_turn()
t.is(mixed.vel.x, BATTLESHIP_SPEED, "moving: velocity = speed")
g:request(A, "RemoveOrder", { id = mixed.id, slots = { 0 } })
g:end_turn()
t.ok(mixed.vel.x == 0 and mixed.vel.y == 0, "a fleet that stops moving "
     .. "has its velocity cleared at the end of the turn")
ms.objects.remove_ships(ctx, mixed, 3, 1)
give(mixed, 2, 1)

-- ------------------------------------------------------------ Build Fleet

local bship = g:design(3)
local inuse0 = bship.inuse
local function build(pid, planet, selection, name, slot)
    local sel = {}
    for _, s in ipairs(selection) do
        sel[#sel + 1] = { id = s[1], number = s[2] }
    end
    return g:order(pid, planet, "Build Fleet", { ships = { selection = sel },
                                                name = { string = name } },
                   slot)
end
ok, reply = g:probe(A, ahome, "Build Fleet", {
    ships = { selection = { { id = 3, number = 1 } } },
    name = { string = "" } })
t.ok(ok and reply.turns == 4, "probe: a battleship takes 4 turns")
t.is(bship.inuse, inuse0, "a probe changes no counter")
ok, reply = build(A, ahome, { { 3, 1 } }, "")
t.ok(ok, "Build Fleet accepted", fail_text(reply))
t.ok(reply.turns == 4 and reply.resources[1].resource == 1 and
     reply.resources[1].amount == 4, "cost 4 ship parts (BuildTime 4), "
     .. "4 turns")
t.is(bship.inuse, inuse0 + 1, "under construction +1 when ordered")
local order = g:queue(ahome).orders[1]
t.is(order.params.name.string, "A Fleet", "an empty name becomes 'A Fleet'")
ok, reply = build(A, ahome, { { 1, 2 }, { 2, 1 } }, "Pair")
t.is(reply.turns, 4, "not first in the queue: turns = cost (2 + 2)")
local before_ids = #g:objects()
for turn = 1, 3 do
    g:end_turn()
    t.ok(ms.objects.resource(ahome, 1) == turn and
         g:estimate(ahome, 0) == 4 - turn,
         "turn " .. turn .. ": " .. turn .. " ship part(s), " ..
         (4 - turn) .. " turn(s) to go")
end
t.is(#g:objects(), before_ids, "nothing built before the 4th turn")
g:end_turn()
local built = g:find("A Fleet")
t.ok(built and built.parent == ahome.id and built.owner == A and
     built.pos.x == ahome.pos.x and built.pos.y == ahome.pos.y,
     "4th turn: the fleet appears at the planet, owned")
t.ok(built and #built.data.ships == 1 and built.data.ships[1].design == 3
     and built.data.ships[1].count == 1, "with one battleship")
t.is(built and table.concat(g:queue(built).allowed, ","), "0,1,4,5,6",
     "no Colonise without a frigate")
t.is(ms.objects.resource(ahome, 1), 0, "the parts are used up")
t.is(bship.exists, 1, "exists +1 when delivered")
m = message(g, A, "Build Fleet order complete")
t.ok(m and m.body == "The construction of your new fleet \"A Fleet\" is "
     .. "complete.", "message 'Build Fleet order complete'", m and m.body)
t.is(m and refs_text(m), "-2:1 1:" .. built.id .. " 1:" .. ahome.id,
     "references: completed, the new fleet, the planet")
t.is(g:estimate(ahome, 0), 4, "the next build, now first: cost 4 - 0 "
     .. "parts held")
g:end_turn()
g:end_turn()
g:end_turn()
g:end_turn()
local pair = g:find("Pair")
t.ok(pair and ms.objects.total_ships(pair) == 3, "'Pair': 2 scouts and a "
     .. "frigate after 4 more turns")
t.is(pair and table.concat(g:queue(pair).allowed, ","), "0,1,3,4,5,6",
     "a built frigate allows Colonise")
t.is(g:design(1).exists, 2, "Scout: exists +2")

-- Leftover parts speed up the next build.
build(A, ahome, { { 3, 1 } }, "Cancelled")
g:end_turn()
g:request(A, "RemoveOrder", { id = ahome.id, slots = { 0 } })
build(A, ahome, { { 2, 1 } }, "Quick")
t.is(g:estimate(ahome, 0), 1, "one part left: a frigate (2) shows 1 turn")
g:end_turn()
t.ok(g:find("Quick") ~= nil, "and is built the next turn")

local ok2, err = build(A, ahome, { { 4, 1 } }, "Stolen")
t.ok(not ok2 and fail_text(err):find("The requested design was not valid.",
     1, true), "another player's design: readable Fail", fail_text(err))
ok2, err = build(A, ahome, { { 1, 0 } }, "Nothing")
t.ok(not ok2 and fail_text(err):find("To build was empty...", 1, true),
     "a list with nothing to build is refused", fail_text(err))
ok2, err = build(A, ahome, { { 1, 101 } }, "Too many")
t.ok(not ok2, "more than 100 of a design is refused", fail_text(err))
ok2, err = build(B, ahome, { { 4, 1 } }, "Not mine")
t.ok(not ok2 and err.code == 4, "building on another player's planet: "
     .. "no such queue")
ok2 = build(A, ahome, {}, "Empty")
t.ok(ok2, "an empty list is accepted (cost 0)")
local count = #g:objects()
g:end_turn()
t.ok(#g:objects() == count and #g:queue(ahome).orders == 0,
     "and is done at once, building nothing")

-- A planet that lost its owner drops its build.
local lost = g:find("bob Planet")
build(B, lost, { { 5, 1 } }, "Orphan")
lost.owner = 0
ctx:changed(lost)
g:commit()
g:end_turn()
t.ok(#g:queue(lost).orders == 0 and not g:find("Orphan") and
     ms.objects.resource(lost, 1) == 0, "an unowned planet's build is "
     .. "dropped without a part")
lost.owner = B
ctx:changed(lost)
g:commit()

-- ------------------------------------------------------------ Colonise

local c = af[3]
ok, reply = g:order(A, c, "Colonise", {})
t.is(reply.turns, 1, "Colonise shows 1 turn")
g:end_turn()
m = message(g, A, "Colonise order canceled")
t.ok(m and m.body == "Not at a planet, colonisation canceled" and
     refs_text(m) == "-2:2 1:" .. c.id, "not at a planet: canceled",
     m and (m.body .. " " .. refs_text(m)))

-- Move then Colonise: the Colonise runs the turn after arrival.
place(c, { x = venus.pos.x + 1000, y = venus.pos.y }, sol.id)
g:order(A, c, "Move", { pos = venus.pos })
g:order(A, c, "Colonise", {})
g:end_turn()
t.ok(c.parent == venus.id and venus.owner == 0,
     "arrived at Venus; not colonised in the same turn")
local colonised = venus.id
g:end_turn()
t.is(venus.owner, A, "the next turn: Venus is alice's")
t.is(g:queue(venus).owner, A, "with its order queue")
t.is(g:object(c.id), nil, "the fleet's only frigate was used: fleet gone")
m = message(g, A, "Colonised planet")
t.ok(m and m.body == "You have colonised a planet!" and
     refs_text(m) == "1:" .. c.id .. " 1:" .. colonised .. " -2:1",
     "message 'Colonised planet'", m and refs_text(m))
t.is(ms.objects.resource(venus, 2), 0, "a colony is no home world")

-- The lightest coloniser goes; the fleet stays.
local big = g:find("Pair")
give(big, 3, 1)
place(big, mars.pos, mars.id)
g:order(A, big, "Colonise", {})
g:end_turn()
t.ok(mars.owner == A and ms.objects.ship_count(big, 2) == 0 and
     ms.objects.ship_count(big, 3) == 1 and ms.objects.ship_count(big, 1) == 2,
     "a mixed fleet gives up its frigate and stays")
t.is(table.concat(g:queue(big).allowed, ","), "0,1,4,5,6",
     "without a frigate it may no longer colonise")
ok2, err = g:order(A, big, "Colonise", {})
t.ok(not ok2 and err.code == 3, "so Colonise is refused")

local q2 = g:find("Quick")
place(q2, mars.pos, mars.id)
g:order(A, q2, "Colonise", {})
g:end_turn()
m = message(g, A, "Colonisation failed")
t.ok(m and m.body == "You already own the planet you tried to colonise" and
     refs_text(m) == "1:" .. q2.id .. " 1:" .. mars.id .. " -2:2",
     "own planet: failed", m and m.body)
-- In bob's planet, but 10 units off its position: no battle.
place(q2, { x = bhome.pos.x + 10, y = bhome.pos.y }, bhome.id)
g:order(A, q2, "Colonise", {})
g:end_turn()
m = message(g, A, "Colonisation failed")
t.ok(m and m.body == "The planet you tried to colonise, is already owned "
     .. "by someone else." and refs_text(m):find("-2:2", 1, true),
     "someone else's planet: failed (canceled)", m and m.body)
t.is(bhome.owner, B, "bob's planet stays bob's")

-- Colonise queued, then the frigate split off: no frigate left.
local fr = g:find("alice Second Fleet")
give(fr, 1, 1)
place(fr, earth.pos, earth.id)
local sel = { selection = { { id = 2, number = 1 } } }
g:order(A, fr, "Split Fleet", { ships = sel })
g:order(A, fr, "Colonise", {})
g:end_turn()
g:end_turn()
m = message(g, A, "Colonisation failed")
t.ok(m and m.body == "Your fleet did not have a frigate to colonise the "
     .. "planet" and refs_text(m):find("-2:4", 1, true),
     "no frigate left: failed (invalid)", m and m.body)
t.ok(earth.owner == 0 and g:object(fr.id), "planet and fleet unchanged")

-- ------------------------------------------------------------ Split

local sp = g:find("Pair")
local before = ms.objects.total_ships(sp)
ok, reply = g:order(A, sp, "Split Fleet", {
    ships = { selection = { { id = 1, number = 1 } } } })
t.is(reply.turns, 1, "Split shows 1 turn")
local choices = {}
local values = require("tp.views").order_values(sp, g:queue(sp).orders[1], A)
for _, ch in ipairs(values.p1.possibleselections) do
    choices[#choices + 1] = ch.id .. ":" .. ch.name .. ":" .. ch.maxnum
end
t.is(table.concat(choices, " "), "1:Scout:2 3:Battleship:1",
     "choices: the fleet's designs, up to the count held")
g:end_turn()
m = message(g, A, "Split Fleet order complete")
local new = m and m.references[2] and g:object(m.references[2].id)
t.ok(new and new.name == "A fleet" and new.owner == A and
     new.parent == sp.parent and new.pos.x == sp.pos.x and
     ms.objects.total_ships(new) == 1 and
     ms.objects.ship_count(new, 1) == 1, "a new fleet 'A fleet' with the "
     .. "scout, same place, parent and owner")
t.is(ms.objects.total_ships(sp), before - 1, "the old fleet lost it")
t.ok(m and m.body == "Split fleet complete" and refs_text(m) ==
     "1:" .. sp.id .. " 1:" .. new.id .. " -2:1", "message and references",
     m and refs_text(m))

local whole = g:find("Quick")
place(whole, { x = whole.pos.x + 1000, y = whole.pos.y }, whole.parent)
local rng_before = H.copy(ctx.state.rng.game)
g:order(A, whole, "Split Fleet", { ships = {
    selection = { { id = 2, number = 1 }, { id = 1, number = 5 } } } })
local objects_before = #g:objects()
g:end_turn()
m = message(g, A, "Split Fleet order complete")
t.ok(m and m.body == "Fleet not split, not enough ships" and
     refs_text(m) == "1:" .. whole.id .. " -2:3",
     "splitting off every ship: not split (incompatible)", m and m.body)
t.ok(ms.objects.total_ships(whole) == 1 and
     ms.objects.ship_count(whole, 1) == 0, "the fleet is as before: no "
     .. "ships made out of the skipped entry (reference quirk fixed)")
t.is(#g:objects(), objects_before, "no new object")
t.ok(not H.same(rng_before, ctx.state.rng.game), "a media name was drawn "
     .. "all the same")
g:order(A, whole, "Split Fleet", { ships = {
    selection = { { id = 3, number = 2 } } } })
g:end_turn()
m = message(g, A, "Split Fleet order complete")
t.ok(m and m.body == "Fleet not split, not enough ships",
     "splitting off ships the fleet does not have: not split")

-- ------------------------------------------------------------ Merge

local m1, m2 = g:find("A fleet"), g:find("Pair")
local total = ms.objects.total_ships(m1) + ms.objects.total_ships(m2)
place(m1, m2.pos, m2.parent)
ok, reply = g:order(A, m1, "Merge Fleet", {})
t.is(reply.turns, 0, "Merge shows 0 turns")
g:end_turn()
t.ok(g:object(m1.id) == nil and ms.objects.total_ships(m2) == total,
     "merged: the ships join the other fleet, the fleet is gone")
m = message(g, A, "Merge Fleet order complete")
t.ok(m and m.body == "The two fleets have been merged" and refs_text(m) ==
     "-2:1 1:" .. m1.id .. " 1:" .. m2.id, "message and references")

-- 4 units from alice's other fleet; bob's fleet 3 units away (too far
-- to fight, near enough to merge were it alice's).
local lone = g:find("Quick")
place(lone, { x = m2.pos.x + 4, y = m2.pos.y }, m2.parent)
place(bf[1], { x = lone.pos.x, y = lone.pos.y + 3 }, lone.parent)
g:order(A, lone, "Merge Fleet", {})
g:end_turn()
m = message(g, A, "Merge Fleet order canceled")
t.ok(m and m.body == "No target fleet at this location" and
     refs_text(m) == "-2:2 1:" .. lone.id,
     "no own fleet within 3 units (4 away; bob's does not count): canceled")
place(bf[1], bhome.pos, bhome.id)

-- ------------------------------------------------------------ No Operation

local n = g:find("alice Second Fleet")
ok, reply = g:order(A, n, "No Operation", { wait = { turns = 3 } })
t.ok(ok and reply.turns == 3, "No Operation: shows its wait")
g:order(A, n, "Move", { pos = { x = n.pos.x + 10, y = n.pos.y, z = 0 } })
g:end_turn()
t.is(g:estimate(n, 0), 2, "after a turn: 2 left")
g:end_turn()
t.ok(#g:new_messages(A, "NOp order complete") == 0 and
     g:queue(n).orders[1].type == 0, "still waiting after 2 turns")
g:end_turn()
m = message(g, A, "NOp order complete")
t.ok(m and m.body == "The object has finished it's delay and is now "
     .. "continuing" and refs_text(m) == "-2:1 1:" .. n.id,
     "wait 3: done on the 3rd turn, with its message")
t.is(g:queue(n).orders[1].type, 1, "the Move is next")
g:order(A, ahome, "No Operation", { wait = { turns = 0 } })
g:end_turn()
t.ok(message(g, A, "NOp order complete") and #g:queue(ahome).orders == 0,
     "wait 0: done on the first turn (planets too)")

-- ------------------------------------------------------------ Intercept

-- A frigate flies away; a battleship (faster) intercepts it. (Both
-- alice's: they must not fight when they meet.)
local prey, hunter = g:find("Quick"), g:find("A Fleet")
place(prey, { x = 0, y = 0 }, 1)
place(hunter, { x = -700000000, y = 0 }, 1)
g:order(A, prey, "Move", { pos = { x = 2000000000, y = 0, z = 0 } })
ok, reply = g:order(A, hunter, "Intercept", { Fleet = { objectid =
                                                         prey.id } })
t.is(reply.turns, 0, "Intercept shows 0 turns until it runs")
g:end_turn()
t.ok(prey.pos.x == 200000000 and prey.vel.x == 200000000,
     "the prey moved first (movers before interceptors)")
-- Predicted: the prey at 200M moving 200M/turn, at 200M + 200M (n - 1)
-- after n - 1 more turns; the hunter at -700M covers 300M n: first n
-- with 900M + 200M (n - 1) <= 300M n is 7.
t.is(g:estimate(hunter, 0), 7, "then the prediction: 7 turns")
t.is(hunter.pos.x, -400000000, "the hunter steps toward the predicted "
     .. "meeting point")
local caught
for turn = 2, 12 do
    g:end_turn()
    if message(g, A, "Intercept order complete") then
        caught = turn
        break
    end
end
t.ok(caught and hunter.pos.x == prey.pos.x and hunter.pos.y == prey.pos.y,
     "caught up on turn " .. tostring(caught) .. " at the prey's position")
place(hunter, { x = 5000000, y = 0 }, 1)
g:order(A, hunter, "Intercept", { Fleet = { objectid = 4000 } })
g:end_turn()
m = message(g, A, "Intercept order canceled")
t.ok(m and refs_text(m) == "-2:2 1:" .. hunter.id, "a target that does "
     .. "not exist: canceled")
g:order(A, hunter, "Intercept", { Fleet = { objectid = 0 } })
g:end_turn()
t.ok(#g:queue(hunter).orders == 0 and
     not message(g, A, "Intercept order canceled"),
     "target 0: done without a word")
local sirius = g:find("Sirius System")
place(hunter, { x = sirius.pos.x, y = sirius.pos.y + 250000000 }, 1)
g:order(A, hunter, "Intercept", { Fleet = { objectid = sirius.id } })
g:end_turn()
t.ok(message(g, A, "Intercept order complete") and
     hunter.parent == sirius.id, "a star system can be intercepted "
     .. "(reference quirk fixed)")

t.is(g.unmarked or 0, 0, "every change a turn made was marked (marks_changes)")
g:close()
return t.done()
