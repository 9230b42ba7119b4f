-- MiniSec combat (minisec.md 9): who fights whom, and each outcome of a
-- round (a win that kills, a draw, escapes, a falling planet, damage
-- spread over ships, three sides), with the generator scripted so every
-- round's rock-paper-scissors result is chosen by the test. Then a battle
-- in a real turn.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")

local g = assert(H.new_game { random_seed = 5 })
local ctx = g:ctx()
local ms = g:ms()
local alice, bob, carol = g:join("alice"), g:join("bob"), g:join("carol")
local A, B, C = alice.id, bob.id, carol.id
-- Design ids: alice 1-3, bob 4-6, carol 7-9 (Scout, Frigate, Battleship).
local SCOUT = { [A] = 1, [B] = 4, [C] = 7 }
local FRIGATE = { [A] = 2, [B] = 5, [C] = 8 }
local BATTLESHIP = { [A] = 3, [B] = 6, [C] = 9 }

-- A generator that returns the test's numbers, in order, and checks the
-- calls are the ones expected.
local function scripted(values)
    local gen = { i = 0, bad = nil }
    local function next_value(kind, a, b)
        gen.i = gen.i + 1
        local v = values[gen.i]
        if type(v) ~= "table" or v[1] ~= kind or
           (kind == "range" and (v[2] < a or v[2] > b)) then
            gen.bad = gen.bad or string.format("draw %d: %s(%s, %s) "
                .. "unexpected", gen.i, kind, tostring(a), tostring(b))
            error(gen.bad, 0)
        end
        return v[2]
    end
    function gen:range(a, b)
        return next_value("range", a, b)
    end
    function gen:real1()
        return next_value("real1")
    end
    function gen:used_all()
        return self.bad == nil and self.i == #values, self.bad or
               (self.i .. " of " .. #values .. " draws used")
    end
    return gen
end

-- r1 (0 draw, 1 first side wins, 2 second side wins) and r2 of rounds.
local function rounds(...)
    local out = {}
    for _, r in ipairs { ... } do
        out[#out + 1] = { "range", r[1] }
        out[#out + 1] = { "range", r[2] }
        for _, extra in ipairs(r[3] or {}) do
            out[#out + 1] = extra
        end
    end
    return out
end

local spot = 0
-- A fleet of owner at a fresh spot (or at `at`), with ships { design =
-- count }.
local function fleet(owner, ships, at, damage)
    if not at then
        spot = spot + 1
        at = { x = 10000000 * spot, y = 777, z = 0 }
    end
    local list = {}
    for design, n in pairs(ships) do
        list[#list + 1] = { design = design, count = n }
    end
    table.sort(list, function(a, b) return a.design < b.design end)
    local f = ms.objects.new_fleet(ctx, { name = "fleet " .. spot .. "/" ..
        owner, parent = 1, owner = owner, pos = at, look = "aeon-hud",
        ships = list })
    f.data.damage = damage or 0
    ctx:changed(f)
    g:commit()
    return f
end

local function fight(script, ...)
    local gen = scripted(script)
    local ok, err = pcall(ms.combat.run, ctx, gen, { ... })
    if not ok then
        gen.bad = gen.bad or tostring(err)
    end
    g:commit()
    return gen
end

-- The Combat message a player got last.
local function combat_message(pid)
    local list = g:messages(pid)
    for i = #list, 1, -1 do
        if list[i].subject == "Combat" then
            return list[i]
        end
    end
end

local function summary(pid)
    local m = combat_message(pid)
    return m and m.body:match("^(.-)\n\nBattle report:\n") or ""
end

local function refs_text(m)
    local out = {}
    for _, r in ipairs(m.references) do
        out[#out + 1] = r.type .. ":" .. r.id
    end
    return table.concat(out, " ")
end

-- ------------------------------------------------------------ grouping

do
    local P = function(id, x, owner)
        return { id = id, pos = { x = x, y = 0, z = 0 }, size = 2,
                 owner = owner }
    end
    local a, b, c, d, e = P(1, 0, 1), P(2, 2, 2), P(3, 4, 1), P(4, 10, 2),
                          P(5, -3, 2)
    local groups = ms.combat.groups(ctx, { a, b, c, d, e })
    local shape = {}
    for i, gr in ipairs(groups) do
        local ids = {}
        for _, o in ipairs(gr.objects) do
            ids[#ids + 1] = o.id
        end
        shape[i] = table.concat(ids, ",")
    end
    t.is(table.concat(shape, " | "), "1,2,3 | 4 | 5", "grouping: within 2 "
         .. "units of a member joins the first such group (3 via 2); far "
         .. "ones start their own (groups never merge)")
end

-- ------------------------------------------------------------ a win

local fa = fleet(A, { [BATTLESHIP[A]] = 1 })
local fb = fleet(B, { [FRIGATE[B]] = 1 }, fa.pos)
local gen = fight(rounds({ 1, 0 }, { 1, 2 }), fa, fb)
t.ok(gen:used_all(), "a win: two rounds drawn from the generator",
     select(2, gen:used_all()))
t.is(g:object(fb.id), nil, "bob's frigate (4 HP) dies to two hits of 3")
t.is(g:object(fa.id) and fa.data.damage, 0, "alice's battleship unharmed")
t.is(summary(B), "Your fleet was destroyed by alice's fleet. Your fleet "
     .. fb.name .. " was destroyed. ", "loser's summary")
t.is(summary(A), "You destroyed bob's fleet. Your Fleet survived combat.",
     "winner's summary")
local battles = require("tp.model").battles()
local last = battles[#battles]
t.is(refs_text(combat_message(A)), "1:" .. fa.id .. " 1:" .. fb.id ..
     " 7:" .. A .. " 7:" .. B .. " -1000:" .. (last and last.id or "?"),
     "references: the objects, the players, then the battle's log")
t.ok(combat_message(A).body:find("\n\nBattle log: http://[^\n]*/battles/"
     .. (last and last.id or "?") .. "%.xml$"),
     "the body ends with where the battle's log is",
     combat_message(A).body)
local doc = last and require("tp.model").battle(last.id).xml or ""
t.ok(doc:find('<side id="alice">', 1, true) and
     doc:find('<entity id="Battleship-' .. fa.id .. '-0">', 1, true) and
     doc:find('<fire><source ref="Battleship-' .. fa.id ..
              '-0"/><destination ref="Frigate-' .. fb.id .. '-0"/></fire>',
              1, true) and
     doc:find('<damage><reference ref="Frigate-' .. fb.id ..
              '-0"/><amount>3</amount></damage>', 1, true) and
     doc:find('<death><reference ref="Frigate-' .. fb.id .. '-0"/></death>',
              1, true),
     "the battle's log: sides, entities, fire, damage and death", doc)
t.is(table.concat(last and last.players or {}, ","), A .. "," .. B,
     "the battle's players are the two sides'")
local report = combat_message(A).body:match("Battle report:\n(.*)$")
t.ok(report and report:find("Round 1: alice chooses rock, bob chooses "
     .. "scissors: alice wins.", 1, true) and report:find("alice fires 1 "
     .. "win shot of 3 at bob's Frigate: 1 hit, 0 destroyed.", 1, true),
     "the battle report tells each round", report)

-- ------------------------------------------------------------ a draw

fa = fleet(A, { [BATTLESHIP[A]] = 1 })
fb = fleet(B, { [BATTLESHIP[B]] = 1 }, fa.pos)
gen = fight(rounds({ 0, 1 }, { 2, 0 }, { 2, 0 }), fa, fb)
t.ok(gen:used_all(), "draw then two losses", select(2, gen:used_all()))
t.is(g:object(fa.id), nil, "alice's battleship: 1 (draw) + 3 + 3 = 7 >= 6")
t.is(fb.data.damage, 1, "bob's survivor keeps the draw's 1 damage")
t.is(summary(B), "You destroyed alice's fleet. Your Fleet survived combat.",
     "bob's summary")
report = combat_message(A).body
t.ok(report:find("a draw", 1, true) and report:find("alice fires 1 draw "
     .. "shot of 1", 1, true) and report:find("bob fires 1 draw shot of 1",
     1, true), "on a draw both sides fire their draw weapons")

-- ------------------------------------------------------------ escapes

fa = fleet(A, { [SCOUT[A]] = 2 })
fb = fleet(B, { [FRIGATE[B]] = 1 }, fa.pos)
gen = fight(rounds({ 1, 0 }), fa, fb)
t.ok(gen:used_all(), "scouts that win escape without a draw",
     select(2, gen:used_all()))
t.ok(g:object(fa.id) and ms.objects.total_ships(fa) == 2 and
     g:object(fb.id), "nobody is hurt")
t.is(summary(A), "Your Fleet escaped. ", "the scouts' owner: escaped")
t.is(summary(B), "alice's fleet of escaped. Your Fleet survived combat.",
     "the other side (reference wording)")

fa = fleet(A, { [SCOUT[A]] = 1, [BATTLESHIP[A]] = 1 })
fb = fleet(B, { [BATTLESHIP[B]] = 1 }, fa.pos)
gen = fight(rounds({ 1, 0, { { "real1", 0.3 } } }), fa, fb)
t.ok(gen:used_all() and summary(A) == "Your Fleet escaped. ",
     "1 scout of 2 ships: real1 0.3 < 1/2 escapes", summary(A))
gen = fight(rounds({ 1, 0, { { "real1", 0.7 } } },
                  { 1, 0, { { "real1", 0.9 } } }), fa, fb)
t.ok(gen:used_all() and g:object(fb.id) == nil and
     summary(A) == "You destroyed bob's fleet. Your Fleet survived combat.",
     "real1 0.7 and 0.9: the battleship fires twice", summary(A))

-- ------------------------------------------------------------ damage

-- Damage 7 over a battleship and two frigates: 3 to the battleship
-- (7 / 2 designs), then 2 and 2 (the index restarts per design).
fa = fleet(A, { [FRIGATE[A]] = 2, [BATTLESHIP[A]] = 1 }, nil, 7)
fb = fleet(B, { [BATTLESHIP[B]] = 1 }, fa.pos)
gen = fight(rounds({ 2, 0 }, { 0, 0 }, { 1, 0 }, { 1, 0 }), fa, fb)
t.ok(gen:used_all(), "four rounds", select(2, gen:used_all()))
t.ok(ms.objects.ship_count(fa, BATTLESHIP[A]) == 0 and
     ms.objects.ship_count(fa, FRIGATE[A]) == 2,
     "the battleship (3 damage carried in) dies to one hit of 3")
t.is(fa.data.damage, 5, "survivors' damage 3 + 2 becomes the fleet's "
     .. "(the draw hit the first of the least damaged)")
t.is(table.concat(g:queue(fa).allowed, ","), "0,1,3,4,5,6",
     "the frigates still colonise")
t.is(g:object(fb.id), nil, "bob's battleship: 2+2, 2+2 = 8")

-- ------------------------------------------------------------ planets

local bhome = g:find("bob Planet")
g:order(B, bhome, "Build Fleet", { ships = { selection = { { id = 5,
        number = 1 } } }, name = { string = "x" } })
fa = fleet(A, { [BATTLESHIP[A]] = 3 }, bhome.pos)
gen = fight(rounds({ 1, 0 }, { 1, 0 }, { 1, 0 }, { 1, 0 }), bhome, fa)
t.ok(gen:used_all(), "five batteries (home world) need four rounds of "
     .. "three 3-damage shots", select(2, gen:used_all()))
t.is(bhome.owner, 0, "the planet falls: no owner")
t.is(ms.objects.resource(bhome, 2), 0, "and is no longer a home world")
t.ok(g:queue(bhome).owner == 0 and #g:queue(bhome).orders == 0,
     "its queue has no owner and no orders")
t.is(summary(B), "Your fleet was destroyed by alice's fleet. ",
     "bob's summary (the planet's side)")

local earth = g:find("Earth")
fa = fleet(A, { [FRIGATE[A]] = 1 }, { x = earth.pos.x + 2, y = earth.pos.y,
                                     z = 0 })
earth.owner = C
ctx:changed(earth)
g:commit()
gen = fight(rounds({ 2, 0 }), earth, fa)
t.ok(gen:used_all() and g:object(fa.id) == nil, "a colony's two batteries "
     .. "(3 damage each on a win) destroy a frigate 2 units away",
     select(2, gen:used_all()))
t.is(summary(C), "You destroyed alice's fleet. Your Fleet survived combat.",
     "the colony's owner's summary")
earth.owner = 0
ctx:changed(earth)
g:commit()

-- Three fleets, one spot: alice and carol first, then carol and bob, then
-- the last two (fixed order once two sides are left).
fa = fleet(A, { [BATTLESHIP[A]] = 1 })
fb = fleet(B, { [BATTLESHIP[B]] = 1 }, fa.pos)
local fc = fleet(C, { [BATTLESHIP[C]] = 1 }, fa.pos)
gen = fight({ { "range", 0 }, { "range", 0 }, { "range", 2 },   -- A vs C
              { "range", 1 }, { "range", 0 },                   -- A wins
              { "range", 2 }, { "range", 1 },                   -- C vs B
              { "range", 2 }, { "range", 1 },                   -- B wins
              { "range", 0 }, { "range", 0 },                   -- draw
              { "range", 1 }, { "range", 0 },                   -- A wins
              { "range", 1 }, { "range", 0 } }, fa, fb, fc)
t.ok(gen:used_all(), "three sides: the scripted rounds", select(2,
     gen:used_all()))
t.ok(g:object(fc.id) == nil and g:object(fb.id) == nil and
     fa.data.damage == 1, "carol falls first, then bob; alice survives "
     .. "with 1 damage")
t.is(summary(C), "Your fleet was destroyed by bob's fleet. Your fleet " ..
     fc.name .. " was destroyed. alice's fleet destroyed bob's fleet. ",
     "carol's summary: she hears how the battle ended")
t.is(summary(A), "bob's fleet destroyed carol's fleet. You destroyed "
     .. "bob's fleet. Your Fleet survived combat.", "alice hears who "
     .. "destroyed whom (the reference names them the wrong way round)")

-- ------------------------------------------------------------ not fighting

local lone = fleet(A, { [FRIGATE[A]] = 1 })
local own = fleet(A, { [FRIGATE[A]] = 1 }, lone.pos)
gen = fight({}, lone, own)
t.ok(gen:used_all() and g:object(lone.id) and g:object(own.id),
     "one owner's fleets together do not fight")
local mars = g:find("Mars")
fa = fleet(A, { [FRIGATE[A]] = 1 }, mars.pos)
gen = fight({}, mars, fa)
t.ok(gen:used_all(), "an unowned planet never fights")

-- ------------------------------------------------------------ in a turn

-- bob's fleet flies onto alice's home planet: after the move, combat.
-- A fleet alice builds there this turn is not in it.
local ahome = g:find("alice Planet")
g:order(A, ahome, "Build Fleet", { ships = { selection = { { id = 1,
        number = 1 } } }, name = { string = "Fresh" } })
local raider = fleet(B, { [BATTLESHIP[B]] = 2 }, { x = ahome.pos.x +
                      100000000, y = ahome.pos.y, z = 0 })
g:order(B, raider, "Move", { pos = ahome.pos })
g:end_turn()
local ma, mb = combat_message(A), combat_message(B)
t.ok(ma and mb and ma.turn == g:turn_number() and mb.turn == ma.turn,
     "the raid ends in battle the turn it arrives; both get a Combat "
     .. "message")
local fresh = g:find("Fresh")
t.ok(fresh and not refs_text(ma):find("1:" .. fresh.id .. " ", 1, true),
     "the fleet built that turn was not in the battle")
t.ok(ahome.owner == 0 or g:object(raider.id) == nil,
     "fought to the end: the planet fell or the raider is gone")

t.is(g.unmarked or 0, 0, "every change a turn made was marked (marks_changes)")
g:close()
return t.done()
