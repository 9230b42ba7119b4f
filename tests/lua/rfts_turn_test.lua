-- RFTS turn processing against values worked out here from the notes:
-- the population update with maintenance (the draws taken from the
-- game's generator state with the test's own MT19937), a population
-- dying out (and no explosion below 40), ship technology levels with
-- the Mark2 design and the PDB upgrade, a zero-length move, and combat
-- (a scout destroyed; two warship fleets fighting, draw by draw).
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local types = require "tp.types"

-- ------------------------------------------------------------ MT19937

local MT = dofile(TP_HOME .. "/tests/lua/mt19937.lua")
MT.range = MT.range_trunc    -- RFTS truncates toward zero

local function trunc(v)
    return v >= 0 and math.floor(v) or math.ceil(v)
end

local RP, IND, POP, SOC, PLAN, MAINT, COL, TECH = 1, 2, 3, 4, 5, 6, 7, 8
local PDB1, PDB2 = 9, 11

local function res(p, id)
    return p.data.resources[id].stored
end

local function max(p, id)
    return p.data.resources[id].minable
end

local function set_res(g, p, values)
    for id, v in pairs(values) do
        p.data.resources[id].stored = v
    end
    g:set(p, {})
end

local function info(g, p)
    return g:ctx().state.players[tostring(p.id)]
end

-- ------------------------------------------------------------ population

local g = assert(H.new_game({ random_seed = 99, game_length = 60 },
                            { ruleset = "rfts" }))
local alice, bob = g:join("alice"), g:join("bob")
local home_a = g:objects("Planet", alice.id)[1]
local home_b = g:objects("Planet", bob.id)[1]
set_res(g, home_a, { [MAINT] = 40, [SOC] = 35 })
set_res(g, home_b, { [SOC] = 0 })

local function expect_pop(social, smax, plan, pmax, maint, pop, r)
    social = trunc(social + 0.125 * (plan / pmax - social / smax))
    maint = maint + math.floor(maint * r / 1000)
    if pop ~= 0 then
        if maint < pop then
            pop = pop - math.floor((pop - maint) / 3)
        end
        pop = pop + math.floor(pop * (social - 40) / 9)
    end
    return pop, social
end

local gen = MT.from_state(g:ctx().state.rng)
local draws = {}
local first, second = home_a, home_b
if home_b.id < home_a.id then
    first, second = home_b, home_a
end
draws[first.id] = gen:range(-50, 125)
draws[second.id] = gen:range(-50, 125)
local want_a, soc_a = expect_pop(35, max(home_a, SOC), 55,
    max(home_a, PLAN), 40, 50, draws[home_a.id])
local want_b = expect_pop(0, max(home_b, SOC), 55, max(home_b, PLAN), 0, 50,
                          draws[home_b.id])
g:end_turn()          -- turn 0 -> 1: the population update (t = 1)
t.is(res(home_a, POP), want_a, "population with maintenance 40 and social "
     .. "35: " .. want_a)
t.ok(want_a < 50, "below 40 the population shrinks (no unsigned explosion)")
t.is(res(home_a, SOC), soc_a, "social environment " .. soc_a)
t.is(res(home_a, MAINT), 0, "maintenance reset to 0")
t.ok(want_b < 0, "(bob's social environment 0 kills his population)")
t.is(res(home_b, POP), 0, "a population below 0 becomes 0")
t.is(home_b.owner, 0, "... and the planet is nobody's")
t.is(g:ctx():queue(home_b).owner, 0, "... with its order queue")
t.is(#g:new_messages(bob.id, "Planet population dead!"), 1,
     "bob is told: Planet population dead!")
t.ok(g:ctx().state.rng.mti == gen.i, "no other draws were made")

-- ------------------------------------------------------------ movement

-- A zero-length move arrives at the end of the turn (the reference's
-- counter wraps and the fleet never arrives).
local scout_a = g:objects("Fleet", alice.id)[1]
local here = scout_a.parent
t.ok(g:order(alice.id, scout_a, "Move", { ["Star System"] = { objectid =
     here } }), "Move to the fleet's own system accepted")
t.is(g:estimate(scout_a, 0), 0, "... 0 turns")
g:end_turn()          -- 1 -> 2
t.is(#g:queue(scout_a).orders, 0, "the zero-length move is done")
t.is(scout_a.parent, here, "... the fleet is where it was")
t.is(#g:new_messages(alice.id, "Move fleet order complete"), 1,
     "... Move fleet order complete")

-- ------------------------------------------------------------ combat

-- Two fleets of two Mark1 meet in an empty system; then a Mark1 fleet and
-- a lone scout.
local rf = g:ms()
local ctx = g:ctx()
local arena
for _, s in ipairs(g:objects("Star System")) do
    if s.id ~= home_a.parent and s.id ~= home_b.parent then
        arena = s
        break
    end
end
local mk_a = info(g, alice).designs.Mark1
local mk_b = info(g, bob).designs.Mark1
local fa = rf.objects.new_fleet(ctx, { name = "A", system = arena,
    owner = alice.id, ships = { { design = mk_a, count = 2 } } })
local fb = rf.objects.new_fleet(ctx, { name = "B", system = arena,
    owner = bob.id, ships = { { design = mk_b, count = 2 } } })
g:commit()

-- The fight as the notes tell it: fleet A (lower id) fights while both
-- are alive and its attack is over 0; each hit adds damage d and kills
-- floor(d x 0.125 / fleet armour x real2 / design armour) ships of a
-- type drawn with range(0, types - 1); B hits back while alive.
gen = MT.from_state(ctx.state.rng)
local sim = { [1] = { ships = 2, damage = 0, vp = 0 },
              [2] = { ships = 2, damage = 0, vp = 0 } }
local function hit(src, dst)
    local s, d = sim[src], sim[dst]
    s.vp = s.vp + 5
    d.damage = d.damage + 5
    gen:range(0, 0)
    local n = math.floor((d.damage * 0.125 / 5) * gen:real2() * (1 / 5))
    d.ships = d.ships - math.min(n, d.ships)
    return d.ships > 0
end
local rounds = 0
while sim[1].ships > 0 and sim[2].ships > 0 do
    rounds = rounds + 1
    if hit(1, 2) then
        hit(2, 1)
    end
end
local vp_a, vp_b = info(g, alice).vp, info(g, bob).vp
g:end_turn()          -- 2 -> 3: combat in the arena
local alive_a, alive_b = g:object(fa.id) ~= nil, g:object(fb.id) ~= nil
t.is(alive_a, sim[1].ships > 0, "combat: fleet A lives as the notes say")
t.is(alive_b, sim[2].ships > 0, "combat: fleet B lives as the notes say")
t.ok(alive_a ~= alive_b, "one fleet is destroyed (" .. rounds .. " rounds)")
local survivor = alive_a and fa or fb
local s = alive_a and sim[1] or sim[2]
t.is(survivor.data.damage, s.damage, "the survivor's damage")
t.is(survivor.data.ships[1].count, s.ships, "the survivor's ships")
t.is(info(g, alice).vp - vp_a, sim[1].vp, "alice's victory points: the "
     .. "damage she dealt")
t.is(info(g, bob).vp - vp_b, sim[2].vp, "bob's victory points")
t.ok(rounds > 5, "the fight took rounds")
local cm = g:new_messages(alice.id, "Combat")
t.is(#cm, 1, "alice gets a Combat message")
t.is(#g:new_messages(bob.id, "Combat"), 1, "bob too")
local battle_ref = false
for _, r in ipairs(cm[1] and cm[1].references or {}) do
    battle_ref = battle_ref or r.type == -1000
end
t.ok(battle_ref, "... with a reference to the battle log")
t.ok(cm[1] and cm[1].body:find("Battle log"), "... and its link")
t.ok(ctx.state.rng.mti ~= nil, "(generator state kept)")

-- A warship fleet and a lone scout: the scout has no armour, so it loses
-- range(1, 1/2) = 1 ship and is gone after the first hit.
local fc = rf.objects.new_fleet(ctx, { name = "C", system = arena,
    owner = alice.id, ships = { { design = mk_a, count = 1 } } })
local fs = rf.objects.new_fleet(ctx, { name = "S", system = arena,
    owner = bob.id, ships = { { design = info(g, bob).designs.Scout,
                                count = 1 } } })
g:commit()
vp_a = info(g, alice).vp
g:end_turn()          -- 3 -> 4 (t = 1: the planets draw first; no matter)
t.ok(g:object(fs.id) == nil, "the scout is destroyed")
t.ok(g:object(fc.id) ~= nil, "the warship lives")
t.ok(info(g, alice).vp - vp_a >= 5, "... and dealt its attack")

-- ------------------------------------------------------------ technology

-- 390 points, then 20 more: level 2, the Mark2 design, PDB1 -> PDB2.
info(g, alice).tech = 390
g:ctx():state_changed()
g:commit()
set_res(g, home_a, { [RP] = 100 })
while g:turn_number() % 3 ~= 0 do
    g:end_turn()
end
local pdb1 = res(home_a, PDB1)
t.ok(pdb1 > 0, "alice has PDB1s (" .. pdb1 .. ")")
t.ok(g:order(alice.id, home_a, "Produce", { ["Planetary stats"] = {
     selection = { { id = TECH, number = 20 },
                   { id = PDB1, number = 2 } } } }),
     "Produce 20 Ship Technology and 2 PDB1")
vp_a = info(g, alice).vp
g:end_turn()
t.is(info(g, alice).tech, 410, "410 ship technology points")
t.is(info(g, alice).level, 2, "level 2")
t.is(info(g, alice).vp - vp_a, 8, "PDB RP spent are victory points")
local mk2 = info(g, alice).designs.Mark2
t.ok(mk2 ~= nil, "the Mark2 design exists")
t.is(g:ctx():property(g:design(mk2), "Attack"), 10, "Mark2 attack 10")
t.is(g:ctx():property(g:design(mk2), "Armour"), 10, "Mark2 armour 10")
t.is(g:ctx():property(g:design(mk2), "Speed"), 0.2, "Mark2 speed 0.2")
t.is(res(home_a, PDB1), 0, "the PDB upgrade leaves no PDB1")
t.is(res(home_a, PDB2), pdb1 + 2, "... they are PDB2s")
t.is(#g:new_messages(alice.id, "Ship Technology"), 1, "Ship Technology "
     .. "message")
t.is(max(home_a, TECH), 410, "Ship Technology max = the points")
local names = {}
for _, c in ipairs(types.order_by_name.Produce.params[1].choices(
        g:ctx(), home_a, alice.id)) do
    names[#names + 1] = c.name
end
t.ok(table.concat(names, ","):find("PDB2,PDB2 Maintenance", 1, true),
     "Produce now offers PDB2", table.concat(names, ","))
t.is(g.unmarked or 0, 0, "every change was marked")
g:close()

return t.done()
