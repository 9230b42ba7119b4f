-- RFTS: the declarations, the universe of a fixed seed (against MT19937
-- and range() written here from the notes), the home planets, every
-- order's effect and its refusals, the per-turn formulas, the turn
-- names, fog of war, the end of the game, and the same seed (or a
-- restart) giving the same game.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local types = require "tp.types"
local views = require "tp.views"

-- ------------------------------------------------------------ MT19937

local MT = dofile(TP_HOME .. "/tests/lua/mt19937.lua")
MT.range = MT.range_trunc    -- RFTS truncates toward zero

local function trunc(v)
    return v >= 0 and math.floor(v) or math.ceil(v)
end

-- The reference values of MT19937 (seed 5489: 3499211612, 581869302).
local m = MT.new(5489)
t.is(m:int32(), 3499211612, "MT19937 of the test: first value")
t.is(m:int32(), 581869302, "MT19937 of the test: second value")

-- ------------------------------------------------------------ the notes

local STARS = {
    "Acrux", .875, .87, "Adara", .18, .24, "Agena", .18, .075, "Algol", .28,
    .75, "Alhema", .86, .24, "Alioth", .37, .5, "Almak", .84, .125, "Altair",
    .58, .62, "Aludra", .71, .95, "Antares", .075, .35, "Arneb", .485, .37,
    "Ascella", .43, .875, "Canopus", .55, .55, "Capella", .76, .075, "Caph",
    .79, .33, "Castor", .05, .95, "Deneb", .85, .55, "Diphda", .1, .75,
    "Dubhe", .475, .5, "Enif", .62, .77, "Furud", .64, .075, "Gemma", .5,
    .625, "Gienah", .8, .75, "Hamal", .75, .625, "Izar", .29, .21, "Kochab",
    .18, .38, "Megrez", .69, .8, "Mintaka", .57, .27, "Mirzam", .37, .8,
    "Mizar", .6, .375, "Nath", .7, .375, "Nihal", .23, .6, "Nunki", .39, .25,
    "Phaeda", .58, .95, "Polaris", .65, .2, "Pollux", .68, .875, "Procyon",
    .15, .6, "Rastaban", .29, .375, "Regulus", .69, .6, "Rigel", .8, .8,
    "Ross", .88, .61, "Sabik", .6, .745, "Saiph", .23, .875, "Schedar", .27,
    .6, "Sirius", .42, .18, "Shedir", .57, .47, "Spica", .475, .79,
    "Tarazed", .9, .42, "Thuban", .83, .4, "Vega", .23, .7, "Wesen", .39,
    .65, "Wolf", .54, .92, "Zosma", .86, .05 }
-- class -> { Industry, Population, Social, Planetary } ranges, in the
-- order they are drawn
local RANGES = {
    { { 25, 90 }, { 10, 30 }, { 5, 20 }, { 5, 20 } },
    { { 30, 70 }, { 40, 80 }, { 30, 75 }, { 30, 75 } },
    { { 30, 55 }, { 75, 100 }, { 55, 100 }, { 55, 100 } } }
local STAT_IDS = { 2, 3, 4, 5 }      -- Industry, Population, Social, Planetary
local RP, IND, POP, SOC, PLAN, MAINT, COL, TECH = 1, 2, 3, 4, 5, 6, 7, 8

-- The expected universe: systems { name, u, v, planets = { { class,
-- max = {...}, dx, dy } } }, and the generator after it.
local function expected_universe(seed)
    local gen = MT.new(seed)
    local systems = {}
    for i = 1, #STARS, 3 do
        local s = { name = STARS[i], u = STARS[i + 1], v = STARS[i + 2],
                    planets = {} }
        for _ = 1, gen:range(0, 3) do
            local p = { max = {} }
            p.oy = gen:range(-100, 100)
            p.ox = gen:range(-100, 100)
            p.class = gen:range(1, 3)
            for k, r in ipairs(RANGES[p.class]) do
                local v = gen:range(r[1], r[2])
                p.max[STAT_IDS[k]] = v - v % 5
            end
            s.planets[#s.planets + 1] = p
        end
        systems[#systems + 1] = s
    end
    return systems, gen
end

-- A home pick (notes 7) for the expected universe; owned: system index ->
-- true. Returns the system index.
local function expected_home(systems, gen, owned)
    local n = #systems
    local function fits(i)
        if owned[i] then
            return false
        end
        for _, p in ipairs(systems[i].planets) do
            if p.class == 3 then
                return true
            end
        end
        return false
    end
    for _ = 1, math.floor(n * 4 / 3) do
        local i = gen:range(1, n - 1) + 1
        if fits(i) then
            return i
        end
    end
    for i = 1, n do
        if fits(i) then
            return i
        end
    end
end

local function res(p, id)
    return p.data.resources[id].stored
end

local function max(p, id)
    return p.data.resources[id].minable
end

-- ------------------------------------------------------------ declarations

local SEED = 20260
local g = assert(H.new_game({ random_seed = SEED, game_length = 30 },
                            { ruleset = "rfts" }))
t.is(g.rs.name, "TP RFTS", "ruleset name")
t.is(g.rs.version, "0.5", "ruleset version")
local want_types = { "Universe", "Galaxy", "Star System", "Planet", "Fleet" }
for i, name in ipairs(want_types) do
    t.is(types.objects[i - 1].name, name, "object type " .. (i - 1))
end
local function layout(ot)
    local out = {}
    for _, gr in ipairs(ot.groups) do
        local ps = {}
        for _, p in ipairs(gr.params) do
            ps[#ps + 1] = p.name
        end
        out[#out + 1] = gr.name .. "(" .. table.concat(ps, ",") .. ")"
    end
    return table.concat(out, " ")
end
t.is(layout(types.objects[0]), "Positional(Position,Size) Informational(Turn)",
     "Universe groups")
t.is(layout(types.objects[3]), "Positional(Position,Size) Ownership(Owner) "
     .. "Resources(Resource List) Orders(Order Queue)", "Planet groups")
t.is(layout(types.objects[4]), "Positional(Position,Size,Velocity) "
     .. "Ownership(Owner) Orders(Order Queue) Ships(Ship List,Damage)",
     "Fleet groups")
local want_orders = { "Build Fleet", "Produce", "Move", "Split Fleet",
                      "Merge Fleet", "Rename Fleet", "Colonise", "Bombard" }
for i, name in ipairs(want_orders) do
    t.is(types.orders[i - 1].name, name, "order type " .. (i - 1))
end
t.is(#g.rs.resources, 14, "14 resources")
t.is(g.rs.resources[8].name, "Ship Technology", "resource 8")
t.is(g.rs.resources[14].name, "PDB3 Maintenance", "resource 14")
t.is(#g.rs.properties, 4, "4 properties")
t.is(#g.rs.components, 9, "9 components")
t.is(g.rs.components[7].name, "Battle3", "component 7")

-- ------------------------------------------------------------ universe

local systems, gen = expected_universe(SEED)
local got = g:objects("Star System")
t.is(#got, 53, "53 star systems")
local u0 = g:object(0)
t.is(u0.size, 123456789123, "universe size")
t.is(u0.pos.x, 2100000000, "universe at unit x 0.5")
t.is(u0.pos.y, 1575000000, "universe at unit y 0.5")
local bad = {}
local nplanets = 0
for i, s in ipairs(systems) do
    local o = got[i]
    if o.name ~= s.name or o.parent ~= 0 or
       o.pos.x ~= math.floor(4 * 1050000000 * s.u) or
       o.pos.y ~= math.floor(3 * 1050000000 * s.v) then
        bad[#bad + 1] = s.name
    end
    local kids = {}
    for _, id in ipairs(o.children) do
        kids[#kids + 1] = g:object(id)
    end
    if #kids ~= #s.planets then
        bad[#bad + 1] = s.name .. " planet count " .. #kids
    end
    for j, p in ipairs(s.planets) do
        local q = kids[j]
        nplanets = nplanets + 1
        local ok = q and q.name == s.name .. " " .. j and q.size == p.class and
                   q.pos.x == o.pos.x + 420000 * p.ox and
                   q.pos.y == o.pos.y + 315000 * p.oy and
                   q.owner == 0 and res(q, RP) == 0
        for _, id in ipairs(STAT_IDS) do
            ok = ok and max(q, id) == p.max[id] and p.max[id] % 5 == 0
        end
        if not ok then
            bad[#bad + 1] = s.name .. " " .. j
        end
    end
end
t.ok(#bad == 0, "systems, planets, positions, classes and maxima match the "
     .. "notes drawn with the test's MT19937", table.concat(bad, "; "))
t.is(#g:objects("Planet"), nplanets, "no other planets")
t.ok(nplanets > 40, "a fair number of planets (" .. nplanets .. ")")

-- ------------------------------------------------------------ players

local alice, bob = g:join("alice"), g:join("bob")
local owned = {}
local ha = expected_home(systems, gen, owned)
owned[ha] = true
local hb = expected_home(systems, gen, owned)
local function home_of(p)
    return g:objects("Planet", p.id)[1]
end
local home_a, home_b = home_of(alice), home_of(bob)
t.is(g:object(home_a.parent).name, systems[ha].name, "alice's home system "
     .. "is the one the notes' picks give")
t.is(g:object(home_b.parent).name, systems[hb].name, "bob's home system")
t.is(home_a.size, 3, "the home planet is primary")
local want_home = { [RP] = 200, [POP] = 50, [IND] = 15, [SOC] = 52,
                    [PLAN] = 55, [9] = 12 }
local ok_home = true
for id = 1, 14 do
    ok_home = ok_home and res(home_a, id) == (want_home[id] or 0)
end
t.ok(ok_home, "home planet starting values")
local fleet_a = g:objects("Fleet", alice.id)[1]
t.is(fleet_a.name, "alice's fleet", "the starting fleet's name")
t.is(fleet_a.parent, home_a.parent, "... in the home system")
local scout = fleet_a.data.ships[1]
t.is(g:design(scout.design).name, "Scout", "... with a scout")
t.is(scout.count, 1, "... one")
local dnames = {}
for _, d in ipairs(g:ctx():designs()) do
    if d.owner == alice.id then
        dnames[#dnames + 1] = d.name
    end
end
t.is(table.concat(dnames, ","), "Scout,Mark1,Transport", "alice's designs")
local mark1 = g:ctx().state.players[tostring(alice.id)].designs.Mark1
local transport = g:ctx().state.players[tostring(alice.id)].designs.Transport
t.is(g:ctx():property(g:design(mark1), "Attack"), 5, "Mark1 attack 5")
t.is(g:ctx():property(g:design(mark1), "Speed"), 0.1, "Mark1 speed 0.1")

local welcome = g:new_messages(alice.id, "Welcome to RFTS")
t.is(#welcome, 1, "alice gets the welcome message")
t.ok(welcome[1] and welcome[1].body:find("Mark1 14", 1, true) and
     welcome[1].body:find("after turn 30", 1, true),
     "... with the costs and the game's length")

-- max_players through join_allowed
local ok_join, why = g.rs.join_allowed(g:ctx(), "carol")
t.ok(ok_join, "a third player may join (max 4)")
local g_ctx = g:ctx()
g_ctx.settings.max_players = 2
ok_join, why = g.rs.join_allowed(g_ctx, "carol")
t.ok(not ok_join and why:find("full"), "with max_players 2 a third is "
     .. "refused", why)
g_ctx.settings.max_players = 4

-- ------------------------------------------------------------ visibility

local function sees(p, o)
    return views.can_see(p.id, o)
end
t.ok(sees(bob, g:object(0)) and sees(bob, g:object(home_a.parent)),
     "everyone sees the universe and every star system")
t.ok(sees(alice, home_a), "alice sees her home planet")
t.ok(not sees(bob, home_a), "bob does not see alice's planet (unexplored)")
local far
for _, s in ipairs(g:objects("Star System")) do
    if s.id ~= home_a.parent and s.id ~= home_b.parent and #s.children > 0 then
        far = s
        break
    end
end
t.ok(not sees(alice, g:object(far.children[1])),
     "an unexplored system's planet is hidden")

-- ------------------------------------------------------------ turn names

t.is(g.rs.turn_name(g:ctx(), 0), "Production, Construction, Movement",
     "turn 0 name")
t.is(g.rs.turn_name(g:ctx(), 1), "Construction, Movement", "turn 1 name")
t.is(g.rs.turn_name(g:ctx(), 5), "Movement", "turn 5 name")

-- ------------------------------------------------------------ orders

local function fail_text(ok, r)
    if ok then
        return nil
    end
    return type(r) == "table" and (r.message or r.text) or tostring(r)
end

-- Produce: refusals, then 5 Industry and 50 Ship Technology (cost 100).
local ok, r = g:order(alice.id, home_a, "Produce",
    { ["Planetary stats"] = { selection = { { id = IND, number = 21 } } } })
t.ok(not ok and fail_text(ok, r):find("Over budget"),
     "Produce over budget is refused", fail_text(ok, r))
ok, r = g:order(alice.id, home_a, "Produce",
    { ["Planetary stats"] = { selection = { { id = 11, number = 1 } } } })
t.ok(not ok, "Produce of PDB2 at tech level 1 is refused")
ok, r = g:order(alice.id, home_a, "Produce",
    { ["Planetary stats"] = { selection = { { id = TECH, number = 101 } } } })
t.ok(not ok, "Produce of more than 100 Ship Technology is refused")
ok, r = g:order(alice.id, fleet_a, "Produce",
    { ["Planetary stats"] = { selection = { { id = IND, number = 1 } } } })
t.ok(not ok, "Produce on a fleet is refused")
ok, r = g:order(bob.id, home_a, "Produce",
    { ["Planetary stats"] = { selection = { { id = IND, number = 1 } } } })
t.ok(not ok, "Produce on someone else's planet is refused")
ok = g:order(alice.id, home_a, "Produce", { ["Planetary stats"] = {
    selection = { { id = IND, number = 5 }, { id = TECH, number = 50 } } } })
t.ok(ok, "Produce of 5 Industry and 50 Ship Technology accepted")
t.is(g:estimate(home_a, 0), 1, "... done in 1 turn (made on turn 0)")
ok, r = g:order(alice.id, home_a, "Produce",
    { ["Planetary stats"] = { selection = { { id = COL, number = 21 } } } })
t.ok(not ok, "a second Produce beyond what is left is refused")

-- Build Fleet: refusals, then 2 Mark1 (28 RP) and 1 transport... no
-- colonists yet: the Colonist entry is refused alone.
ok, r = g:order(alice.id, home_a, "Build Fleet",
    { Ships = { selection = { { id = transport, number = 3 } } } })
t.ok(not ok and fail_text(ok, r):find("Over budget"),
     "Build Fleet of transports without colonists is refused",
     fail_text(ok, r))
ok, r = g:order(alice.id, home_a, "Build Fleet",
    { Ships = { selection = { { id = home_b.id, number = 1 } } } })
t.ok(not ok, "Build Fleet of a design that is not the player's is refused")
ok = g:order(alice.id, home_a, "Build Fleet", { Ships = { selection = {
    { id = mark1, number = 2 } } }, Name = { string = "" } })
t.ok(ok, "Build Fleet of 2 Mark1 accepted")
-- Bob's probe shows the list's choices to a client: Colonist for the
-- transport design.
local choices = types.order_by_name["Build Fleet"].params[1].choices(
    g:ctx(), home_b, bob.id)
local labels = {}
for _, c in ipairs(choices) do
    labels[#labels + 1] = c.name .. "=" .. c.maxnum
end
t.is(table.concat(labels, ","), "Scout=15,Mark1=14,Colonist=0",
     "Build Fleet choices: min(Industry, RP / cost); Colonist min(colonists, "
     .. "RP / cost)")

-- Move: refusal, then the scout to a far system.
ok, r = g:order(alice.id, fleet_a, "Move",
    { ["Star System"] = { objectid = fleet_a.id } })
t.ok(not ok, "Move to a fleet is refused")
ok, r = g:order(alice.id, fleet_a, "Move",
    { ["Star System"] = { objectid = 99999 } })
t.ok(not ok, "Move to no object is refused")
local sys_a = g:object(home_a.parent)
local function wrapdist(a, b)
    local dx = math.abs(a.u - b.u)
    dx = dx > 0.5 and 1 - dx or dx
    local dy = math.abs(a.v - b.v)
    dy = dy > 0.5 and 1 - dy or dy
    return math.sqrt(dx * dx + dy * dy)
end
-- the farthest system: several turns of travel
local dest, best = nil, 0
for i, s in ipairs(systems) do
    local d = wrapdist(systems[ha], s)
    if d > best and i ~= hb then
        dest, best = got[i], d
    end
end
local want_turns = math.floor(best / 0.1 + 0.5)
ok = g:order(alice.id, fleet_a, "Move",
    { ["Star System"] = { objectid = dest.children[1] or dest.id } })
t.ok(ok, "Move to a planet (its system) accepted")
t.is(g:queue(fleet_a).orders[1].params["Star System"].objectid, dest.id,
     "... the planet is replaced by its system")
t.is(g:estimate(fleet_a, 0), want_turns, "Move turns = round(distance / "
     .. "speed) = " .. want_turns)
t.ok(want_turns >= 3, "a move of several turns")

-- ------------------------------------------------------------ turn 0 ends

g:end_turn()       -- now turn 1
t.is(g:object(0).data.turn, 1, "universe Turn is 1")
t.is(g.unmarked or 0, 0, "every change of the turn was marked")
-- production: 5 Industry, Ship Tech 50 (RP 200 - 50 - 50 = 100), then the
-- 2 Mark1: 28 RP -> 72
t.is(res(home_a, IND), 20, "Produce: Industry 15 + 5")
t.is(max(home_a, TECH), 50, "Ship Technology max = the owner's points")
t.is(res(home_a, RP), 72, "RP 200 - 100 (produce) - 28 (2 Mark1)")
local built = g:find("alice's New Fleet")
t.ok(built ~= nil, "Build Fleet: the unnamed fleet is \"alice's New Fleet\"")
t.is(built and built.parent, home_a.parent, "... in the home system")
t.is(built and built.data.ships[1].count, 2, "... with 2 ships")
local info_a = g:ctx().state.players[tostring(alice.id)]
t.is(info_a.vp, 21, "victory points: 3/4 of 28 RP spent on ships")
t.is(#g:new_messages(alice.id, "Production complete"), 1,
     "alice is told: Production complete")
t.is(#g:new_messages(alice.id, "Ship Technology"), 1,
     "... and of her Ship Technology")

-- population update at the end of turn 0 (t = 1), each owned planet in
-- id order draws range(-50, 125); maintenance 0
local function expect_pop(p_social, p_smax, p_plan, p_pmax, maint, pop, r)
    local social = trunc(p_social + 0.125 * (p_plan / p_pmax -
                                             p_social / p_smax))
    maint = maint + math.floor(maint * r / 1000)
    if pop ~= 0 then
        if maint < pop then
            pop = pop - math.floor((pop - maint) / 3)
        end
        pop = pop + math.floor(pop * (social - 40) / 9)
    end
    return pop, social
end
local first, second = home_a, home_b
if home_b.id < home_a.id then
    first, second = home_b, home_a
end
local r1, r2 = gen:range(-50, 125), gen:range(-50, 125)
local pop_a, soc_a = expect_pop(52, max(home_a, SOC), 55, max(home_a, PLAN),
                                0, 50, first == home_a and r1 or r2)
t.is(res(home_a, POP), pop_a, "population update: " .. pop_a)
t.is(res(home_a, SOC), soc_a, "social environment update: " .. soc_a)
t.is(res(home_a, MAINT), 0, "maintenance reset to 0")
t.is(res(home_b, POP), (expect_pop(52, max(home_b, SOC), 55,
     max(home_b, PLAN), 0, 50, first == home_b and r1 or r2)),
     "bob's population update")
local pop_b_now = res(home_b, POP)

-- the scout is in transit: hidden from bob, seen by alice
t.is(fleet_a.parent, 0, "the moving fleet is in transit (parent universe)")
t.ok(not sees(bob, fleet_a), "a fleet in transit is hidden from others")
t.ok(sees(alice, fleet_a), "... its owner sees it")
t.is(g.rs.turn_name(g:ctx(), g:turn_number()), "Construction, Movement",
     "turn 1 name")

-- Build transports: Produce colonists first (turn 1: done at the end of
-- turn 3); colonists are none yet.
ok = g:order(alice.id, home_a, "Produce",
    { ["Planetary stats"] = { selection = { { id = COL, number = 4 },
                                            { id = MAINT, number = 10 } } } })
t.ok(ok, "Produce colonists on turn 1")
t.is(g:estimate(home_a, 0), 3, "... takes 3 turns (made on turn 1)")

-- Split and Rename on the built fleet; Merge back later
ok, r = g:order(alice.id, built, "Split Fleet",
    { ships = { selection = { { id = mark1, number = 2 } } } })
t.ok(not ok, "Split Fleet taking every ship is refused")
ok = g:order(alice.id, built, "Split Fleet",
    { ships = { selection = { { id = mark1, number = 1 } } } })
t.ok(ok, "Split Fleet of one Mark1 accepted")
ok, r = g:order(alice.id, built, "Rename Fleet",
    { ["New Name"] = { string = "" } })
t.ok(not ok, "Rename Fleet to nothing is refused")
ok = g:order(alice.id, built, "Rename Fleet",
    { ["New Name"] = { string = "Home Guard" } })
t.ok(ok, "Rename Fleet accepted")
ok, r = g:order(alice.id, built, "Merge Fleet",
    { ["Other fleet"] = { objectid = home_a.id } })
t.ok(not ok, "Merge Fleet with a planet is refused")
ok, r = g:order(alice.id, built, "Merge Fleet",
    { ["Other fleet"] = { objectid = g:objects("Fleet", bob.id)[1].id } })
t.ok(not ok, "Merge Fleet with someone else's fleet is refused")
ok, r = g:order(alice.id, built, "Colonise",
    { Planet = { objectid = home_b.id } })
t.ok(not ok, "Colonise is not allowed without transports")

g:end_turn()        -- now turn 2
t.is(built.name, "Home Guard", "Rename Fleet renamed the fleet")
t.is(built.data.ships[1].count, 1, "Split Fleet: one ship left")
local split = g:find("New fleet")
t.ok(split and split.data.ships[1].count == 1, "... one in 'New fleet'")
t.is(split and split.parent, built.parent, "... in the same system")
ok = g:order(alice.id, built, "Merge Fleet",
    { ["Other fleet"] = { objectid = split.id } })
t.ok(ok, "Merge Fleet accepted")
-- a Build Fleet made on turn 2 takes 2 turns
ok = g:order(alice.id, home_a, "Build Fleet", { Ships = { selection = {
    { id = mark1, number = 1 } } }, Name = { string = "Late" } })
t.ok(ok, "Build Fleet on turn 2")
t.is(g:estimate(home_a, 1), 2, "... takes 2 turns")
g:end_turn()        -- now turn 3
t.ok(g:object(split.id) == nil, "Merge Fleet removed the other fleet")
t.is(built.data.ships[1].count, 2, "... its ships joined")
-- RP at the start of a production turn
local want_rp = math.min(res(home_a, POP), max(home_a, POP)) * 2 +
                math.floor(res(home_a, IND) * res(home_a, SOC) / 16)
t.is(g.rs.turn_name(g:ctx(), 3), "Production, Construction, Movement",
     "turn 3 name")
t.is(res(home_a, RP), want_rp, "RP at t = 0: min(pop, max) x 2 + "
     .. "industry x social / 16 = " .. want_rp)
t.ok(g:find("Late") == nil, "the turn-2 build is not done yet")
g:end_turn()        -- now turn 4
t.ok(g:find("Late") ~= nil, "... it is done at the end of turn 3")
t.is(res(home_a, COL), 4, "the colonists are produced at the end of turn 3")
t.is(res(home_a, RP), want_rp - 14 - 30, "RP: - 14 (Mark1) - 20 (colonists)"
     .. " - 10 (maintenance)")

-- transports: one transport price for the whole entry, 4 colonists used
ok = g:order(alice.id, home_a, "Build Fleet", { Ships = { selection = {
    { id = transport, number = 4 } } }, Name = { string = "Settlers" } })
t.ok(ok, "Build Fleet of 4 transports")
local rp_before = res(home_a, RP)
g:end_turn()        -- now turn 5
local settlers = g:find("Settlers")
t.ok(settlers and settlers.data.ships[1].count == 4, "4 transports built")
t.is(res(home_a, COL), 0, "... using the 4 colonists")
t.is(res(home_a, RP), rp_before - 5, "... for one transport price")

-- Colonise: the settlers go to a free planet of a nearby system
local target_sys, target_planet
local best_d = 2
for i, s in ipairs(systems) do
    local o = got[i]
    if i ~= ha and i ~= hb and #o.children > 0 then
        local d = wrapdist(systems[ha], s)
        if d < best_d then
            best_d, target_sys, target_planet = d, o, g:object(o.children[1])
        end
    end
end
ok, r = g:order(alice.id, settlers, "Colonise",
    { Planet = { objectid = target_sys.id } })
t.ok(not ok, "Colonise of a star system is refused")
ok, r = g:order(alice.id, settlers, "Colonise",
    { Planet = { objectid = home_a.id } })
t.ok(not ok, "Colonise of one's own planet is refused")
t.ok(g:order(alice.id, settlers, "Move",
     { ["Star System"] = { objectid = target_sys.id } }), "Move settlers")
t.ok(g:order(alice.id, settlers, "Colonise",
     { Planet = { objectid = target_planet.id } }), "then Colonise")
local vp_before = g:ctx().state.players[tostring(alice.id)].vp
for _ = 1, 12 do
    if target_planet.owner == alice.id then
        break
    end
    g:end_turn()
end
t.is(target_planet.owner, alice.id, "Colonise: the empty planet is alice's")
t.is(res(target_planet, POP), 0, "... its population stays 0 (0 - 4 x 4/3, "
     .. "clamped)")
t.is(#g:new_messages(alice.id, "Colonised planet"), 1, "... alice is told")
t.ok(g:object(settlers.id) == nil, "... the emptied fleet is gone")
t.is(g:ctx().state.players[tostring(alice.id)].vp - vp_before, 125,
     "... 125 victory points")
t.ok(sees(alice, target_planet), "alice sees the system she explored")

-- Bombard: alice's warships go to bob's home
ok, r = g:order(alice.id, built, "Bombard",
    { Planet = { objectid = home_b.id } })
t.ok(not ok, "Bombard is not allowed away from an enemy planet")
t.ok(g:order(alice.id, built, "Move",
     { ["Star System"] = { objectid = home_b.parent } }), "Move warships")
for _ = 1, 12 do
    if built.parent == home_b.parent then
        break
    end
    g:end_turn()
end
t.is(built.parent, home_b.parent, "the warships arrived at bob's home")
t.ok(sees(alice, home_b), "... alice now sees bob's home planet")
local allowed = {}
for _, id in ipairs(g:queue(built).allowed) do
    allowed[#allowed + 1] = types.orders[id].name
end
t.is(table.concat(allowed, ","), "Move,Split Fleet,Merge Fleet,Rename Fleet,"
     .. "Bombard", "Bombard is allowed next to an enemy planet")
ok, r = g:order(alice.id, built, "Bombard",
    { Planet = { objectid = target_planet.id } })
t.ok(not ok, "Bombard of one's own planet is refused")
local ind_b, pdb_b = res(home_b, IND), res(home_b, 9)
t.ok(g:order(alice.id, built, "Bombard",
             { Planet = { objectid = home_b.id } }),
     "Bombard accepted")
vp_before = g:ctx().state.players[tostring(alice.id)].vp
g:end_turn()
local loss = ind_b - res(home_b, IND)
-- fleet attack 5 (the highest design attack); r in -2..2
t.ok(loss >= 9 and loss <= 10,
     "Bombard: Industry - attack x 2 x (1 + r/100) (" .. loss .. ")")
t.ok(pdb_b - res(home_b, 9) >= 1 and pdb_b - res(home_b, 9) <= 2,
     "... PDB1 - attack x 0.4 x (1 + r/100)")
t.is(g:ctx().state.players[tostring(alice.id)].vp - vp_before, 50,
     "... 50 victory points")
t.ok(built.data.damage == 6 * res(home_b, 9) or g:object(built.id) == nil,
     "... the fleet takes 6 x PDB1 damage")
t.ok(#g:new_messages(bob.id, "Planet bombarded") == 1,
     "the defender is told")

-- ------------------------------------------------------------ restart

-- The same game in a restarted server goes on the same way.
local snap_turn = g:turn_number()
g:end_turn()
local after = H.copy(g:snapshot())
local state_after = H.copy(g:ctx().state)
g:reopen()
t.is(g:turn_number(), snap_turn + 1, "reopened at the same turn")
t.ok(H.same(H.copy(g:snapshot()), after), "reopened: the same objects")
t.ok(H.same(H.copy(g:ctx().state), state_after), "reopened: the same state")
g:close()

-- ------------------------------------------------------------ same seed

-- A second game from the same seed, the same players: the same universe,
-- and the same first turns without any orders.
local function plain_game(turns, restart_at)
    local x = assert(H.new_game({ random_seed = 777, game_length = 12 },
                                { ruleset = "rfts" }))
    x:join("alice")
    x:join("bob")
    for i = 1, turns do
        if i == restart_at then
            x:reopen()
        end
        x:end_turn()
    end
    return x
end
local x1 = plain_game(7)
local s1 = H.copy(x1:snapshot())
local st1 = H.copy(x1:ctx().state)
x1:close()
local x2 = plain_game(7, 4)
t.ok(H.same(H.copy(x2:snapshot()), s1), "the same seed (and a restart in "
     .. "the middle) gives the same game")
t.ok(H.same(H.copy(x2:ctx().state), st1), "... and the same state")
x2:close()

-- ------------------------------------------------------------ victory

local v = plain_game(11)
t.ok(not v.rs.game_over(v:ctx()), "not over before game_length")
v:end_turn()     -- turn 12 = game_length
t.ok(v.rs.game_over(v:ctx()), "game_over after game_length turns")
for _, p in ipairs(v:ctx():players()) do
    t.is(#v:new_messages(p.id, "Game over!"), 1, p.name .. " got Game over!")
end
local ok_after = v:order(1, v:objects("Planet", 1)[1], "Produce",
    { ["Planetary stats"] = { selection = { { id = IND, number = 1 } } } })
t.ok(not ok_after, "no orders after the end")
-- The server stops the game there (tp.turn): no turn ends any more.
t.ok(not v:end_turn(), "no turn ends after the game")
t.is(v:object(0).data.turn, 12, "the universe's Turn stays with the turn")
v:close()

return t.done()
