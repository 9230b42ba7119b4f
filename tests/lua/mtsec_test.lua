-- mtsec_test.lua: the MTSec ruleset (rulesets/mtsec) in-process: the tech
-- tree, designs, the universe of a fixed seed, production, every order,
-- combat, victory and a restart in the middle of a game. Expected values
-- are computed here from the MTSec notes (an MT19937 of the test's own,
-- the notes' tables and formulas), not with the ruleset's functions.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local types = require "tp.types"
local cjson = require "cjson"

-- ------------------------------------------------------------ MT19937

-- The tests' own generator (tests/lua/mt19937.lua), with the truncating
-- range of minisec.md 1.1, called with dots.
local MTlib = dofile(TP_HOME .. "/tests/lua/mt19937.lua")
local function MT(seed)
    local g = MTlib.new(seed)
    return { int32 = function() return g:int32() end,
             range = function(a, b) return g:range_trunc(a, b) end }
end

do
    -- The reference output of init_genrand(5489): 3499211612, 581869302.
    local r = MT(5489)
    t.ok(r.int32() == 3499211612 and r.int32() == 581869302,
         "the test's own MT19937 gives the reference sequence")
end

-- ------------------------------------------------------------ helpers

local function new_game(settings)
    return assert(H.new_game(settings or { random_seed = 42 },
                             { ruleset = "mtsec" }))
end

local function props_of(d)
    local out = {}
    for _, p in ipairs(d.properties) do
        out[p.id] = p.number
    end
    return out
end

local function design_named(g, owner, name)
    for _, d in ipairs(g:ctx():designs()) do
        if d.owner == owner and d.name == name then
            return d
        end
    end
end

local function amount(list, id)
    for _, r in ipairs(list) do
        if r.resource == id then
            return r.stored, r.minable
        end
    end
    return 0, 0
end

-- A request as the server makes it: a failed one is thrown away
-- (tp.dispatch.request_failed, what the core calls on an error).
local dispatch = require "tp.dispatch"
local function request(g, pid, name, req)
    local ok, r = g:request(pid, name, req)
    if not ok then
        dispatch.request_failed(g:conn(pid), r, false)
    end
    return ok, r
end

local function add_design(g, pid, name, cat, comps, id, kind)
    local list = {}
    for i, c in ipairs(comps) do
        list[i] = { id = c[1], count = c[2] }
    end
    return request(g, pid, kind or "AddDesign", { id = id or 0, modtime = 0,
        categories = { cat }, name = name, description = "test",
        inuse = 0, owner = pid, components = list, feedback = "",
        properties = {} })
end

local function sel(entries)
    local s = {}
    for i, e in ipairs(entries) do
        s[i] = { id = e[1], number = e[2] }
    end
    return { selection = s }
end

local function subjects(g, pid)
    local out = {}
    for _, m in ipairs(g:new_messages(pid)) do
        out[#out + 1] = m.subject
    end
    return table.concat(out, "|")
end

local FACTORIES, HOME, FIRST_WEAPON = 10, 2, 11

-- ------------------------------------------------------------ tech tree

local g = new_game()
local n_props, n_comps, n_cats = 0, 0, 0
for _ in pairs(types.properties) do n_props = n_props + 1 end
for _ in pairs(types.components) do n_comps = n_comps + 1 end
for _ in pairs(types.categories) do n_cats = n_cats + 1 end
t.is(n_props, 61, "61 properties")
t.is(n_comps, 52, "52 components")
t.is(n_cats, 2, "2 categories")
t.ok(types.categories[1].name == "Ships" and
     types.categories[2].name == "Weapons", "categories Ships, Weapons")
local shadowed = { "_num-components", "Speed", "AmmoCost",
    "AmmoExplosiveness", "AmmoSize", "Firepower", "MissileCost",
    "MissileFirepower", "TorpedoeCost", "TorpedoeFirepower", "TorpedoeSize",
    "ProductCost", "num-ammo", "num-baytypes", "num-hulls", "Size",
    "MaxSize" }
local want_ids = { 22, 23, 24, 25, 26, 27, 28, 29, 31, 32, 33, 34, 35, 36,
                   37, 38, 39 }
local bad = {}
for i, n in ipairs(shadowed) do
    if types.property_by_name[n].id ~= want_ids[i] then
        bad[#bad + 1] = n
    end
end
t.is(table.concat(bad, ","), "", "shadowing: names resolve to the "
     .. "Weapons copy (last id registered)")
t.ok(types.property_by_name.Armor.id == 14 and
     types.property_by_name.HitPoints.id == 15 and
     types.property_by_name.Colonise.id == 16 and
     types.property_by_name.StartingHitPoints.id == 12,
     "Ships-only properties 12, 14, 15, 16")
t.ok(types.properties[6].rank == 2 and types.properties[27].rank == 2 and
     types.properties[29].rank == 1 and types.properties[2].rank == 0,
     "ranks from the data")
t.ok(types.properties[40].name == "AlphaMissileTube" and
     types.properties[50].name == "XiTorpedoeTube" and
     types.properties[51].name == "num-AlphaMissileTube" and
     types.properties[61].name == "num-XiTorpedoeTube", "tube properties "
     .. "40-50, counts 51-61")
t.ok(types.components[1].name == "Scout Hull" and
     types.components[52].name == "Colonisation Module" and
     types.components[18].properties.AlphaMissileTube == 3 and
     types.components[16].properties.AmmoSize == 0.8,
     "components and contributions from the data")
t.is(types.properties[2].display(1500000000), "1500 mega-units",
     "Speed display: value / 1,000,000 mega-units")
t.is(types.properties[16].display(1), "Yes", "Colonise 1 -> Yes")

-- Worked examples (mtsec.md 4.3).
local alice = g:join("alice")
local bob = g:join("bob")
local scout = design_named(g, alice.id, "Scout")
local missile = design_named(g, alice.id, "Alpha Missile")
local sp = props_of(scout)
t.ok(sp[23] == 1000000000 and sp[34] == 7 and sp[14] == 2 and
     sp[15] == 75 and sp[38] == 3 and sp[39] == 60 and sp[37] == 1 and
     sp[40] == 3 and sp[51] == 1 and sp[30] == 3 and sp[24] == 6,
     "Scout: Speed 10^9, ProductCost 7, Armor 2, HitPoints 75, Size 3 of "
     .. "60, one hull, one Alpha tube of 3, MissileSize 3, AmmoCost 6",
     cjson.encode(scout.properties))
t.ok(scout.valid, "Scout is valid")
t.ok(sp[2] == nil and sp[13] == nil and sp[20] == nil and sp[21] == nil,
     "shadowed Ships ids get no values")
local mp = props_of(missile)
t.ok(mp[23] == 1e12 and mp[34] == 101 and mp[30] == 3 and mp[39] == 3 and
     mp[38] == 300 and mp[26] == 300 and mp[25] == 400 and mp[24] == 1400 and
     mp[35] == 100, "Alpha Missile: Speed 10^12, ProductCost 101, "
     .. "MissileSize 3, MaxSize 3, Size 300, AmmoSize 300, "
     .. "AmmoExplosiveness 400, AmmoCost 1400, num-ammo 100")
t.ok(not missile.valid and missile.usable == true,
     "Alpha Missile is invalid (Size >= MaxSize) but usable")
t.is(missile.feedback, "This many components can't fit into this Hull",
     "its feedback")
t.ok(scout.owner == alice.id and scout.inuse == 2 and scout.exists == 2,
     "2 Scouts ordered and built for the first fleet")
t.ok(g:ctx():property(scout, "Speed") == 1000000000,
     "ctx:property finds the shadowed name")

-- ------------------------------------------------------------ designs

local n_designs = #g:ctx():designs()
local ok, r = add_design(g, alice.id, "Lancer", 1,
    { { 4, 1 }, { 27, 2 } })                 -- Frigate + 2 Delta tubes
t.ok(ok and r.name == "Lancer" and r.id > 0, "AddDesign: a frigate with "
     .. "two Delta tubes "
     .. "is accepted", type(r) == "table" and r.message or r)
local lancer = ok and g:design(r.id)
local lp = lancer and props_of(lancer) or {}
-- Frigate: MaxSize 200, HitPoints 150, Armor 12, ProductCost 20; each
-- Delta tube: Size 12, ProductCost 1, DeltaMissileTube 12, MissileSize 12.
t.ok(lancer and lp[34] == 22 and lp[38] == 24 and lp[39] == 200 and
     lp[14] == 12 and lp[43] == 24 and lp[54] == 2 and lp[15] == 150 and
     lp[30] == 24, "its properties: cost 22, Size 24 of 200, tubes 24 (2)",
     lancer and cjson.encode(lancer.properties))
t.ok(lancer and lancer.valid and lancer.feedback == "Design is valid",
     "valid, feedback 'Design is valid'")
local frame_props = {}
for _, p in ipairs(r.properties or {}) do frame_props[p.id] = p.value end
t.is(frame_props[34], "22 turns", "the Design frame carries the computed "
     .. "properties (ProductCost '22 turns')")
n_designs = n_designs + 1

local function refused(name, cat, comps, want)
    local ok2, e = add_design(g, alice.id, name, cat, comps)
    t.ok(not ok2 and type(e) == "table" and
         tostring(e.message):find(want, 1, true) ~= nil,
         "AddDesign refused: " .. name .. " (" .. want .. ")",
         type(e) == "table" and e.message or tostring(e))
    t.is(#g:ctx():designs(), n_designs, "  and no design was kept")
end
refused("Big", 1, { { 1, 1 }, { 52, 1 } },
        "This many components can't fit into this Hull")  -- Size 100 > 60
refused("Twin", 1, { { 1, 2 } }, "can only have one hull")
refused("Plated frigate", 1, { { 4, 1 }, { 51, 1 } },
        "Armor plates fit only a Scout or Battle Scout Hull")
refused("Settlers", 1, { { 10, 1 }, { 52, 2 } },
        "can only have one Colonisation Module")
refused("Loose bomb", 2, { { 17, 1 } }, "requires a Missile or Torpedoe Hull")
refused("Mixed", 1, { { 1, 1 }, { 17, 1 } },
        "is not a Ships component")
refused("Fat missile", 2, { { 20, 1 }, { 13, 1 } },
        "can't fit")                          -- Size 3, MaxSize 3
refused("Tube only", 1, { { 18, 1 } }, "can't fit")   -- MaxSize 0

-- A valid weapon: Alpha Missile Hull + 2 Antimatter (Size 2 < 3).
ok, r = add_design(g, alice.id, "Spark", 2, { { 20, 1 }, { 17, 2 } })
local spark = ok and g:design(r.id)
local kp = spark and props_of(spark) or {}
t.ok(spark and spark.valid and kp[25] == 200 and kp[30] == 3 and
     kp[34] == 3 and kp[38] == 2, "a weapon design: 2 Antimatter in an "
     .. "Alpha hull, explosiveness 200, MissileSize 3, cost 3")
n_designs = n_designs + 1
-- Settler: Argonaut + one Colonisation Module.
ok, r = add_design(g, alice.id, "Settler", 1, { { 1, 1 } })
local settler_id = ok and r.id
n_designs = n_designs + 1
ok, r = add_design(g, alice.id, "Settler", 1, { { 10, 1 }, { 52, 1 } },
                   settler_id, "ModifyDesign")
t.ok(ok and g:design(settler_id).valid and
     props_of(g:design(settler_id))[16] == 1, "ModifyDesign: a valid change "
     .. "is taken (Argonaut + Colonisation Module, Colonise 1)")
ok, r = add_design(g, alice.id, "Settler", 1, { { 10, 2 } }, settler_id,
                   "ModifyDesign")
t.ok(not ok and tostring(r.message):find("can only have one hull", 1, true)
     and props_of(g:design(settler_id))[16] == 1,
     "ModifyDesign: an invalid change is refused, the design stays",
     type(r) == "table" and r.message)
ok, r = add_design(g, bob.id, "Settler", 1, { { 1, 1 } }, settler_id,
                   "ModifyDesign")
t.ok(not ok, "ModifyDesign of another player's design is refused")
g:close()

-- ------------------------------------------------------------ universe

-- The draws of mtsec.md 5 and 6 in the order README.md documents, with
-- the test's generator.
local NAMES = { "Barnard's Star", "Gielgud", "Ventana", "Aleph Prime",
    "Ventil", "Sagitaria", "Drifter", "Ptelemicus", "Centanis", "Mendelis",
    "Cassious' Shadow", "Llentim", "Redoubt", "Kelper", "Cemara",
    "Cilantarius", "Kya", "Lanternis", "Illatis", "Rintim", "Uvaharim",
    "Plaetais", "Denderis", "Desiderata", "Illuntara", "Ivemteris",
    "Wetcher", "Monanara", "Clesasia", "RumRunner", "Last Chance",
    "Kiuper Shadow", "NGC 42059", "Ceti Alpha", "Surreptitious",
    "Lupus Fold", "Atlantis", "Draconis", "Muir's Gold", "Fools Errand",
    "Wrenganis", "Humph", "Byzantis", "Torontis", "Radiant Pool" }
-- resource id, lo, hi in draw order: Uranium, Thorium, Massivium,
-- Enriched Uranium, Cerium, Antiparticle, Antimatter.
local ORES = { { 3, 10, 100 }, { 4, 20, 100 }, { 7, 10, 100 },
               { 6, 7, 70 }, { 5, 5, 50 }, { 8, 1, 30 }, { 9, 1, 15 } }
local function planet_draws(r, flo, fhi)
    local out = { ores = {} }
    for _, o in ipairs(ORES) do
        out.ores[o[1]] = r.range(o[2], o[3])
    end
    out.factories = r.range(flo, fhi)
    return out
end
local function check_planet(obj, want, label)
    local good = obj ~= nil
    local why = ""
    for id, max in pairs(want.ores) do
        local cur, mx = amount(obj.data.resources, id)
        if cur ~= 0 or mx ~= max then
            good = false
            why = why .. " ore " .. id .. " " .. cur .. "/" .. mx .. " want "
                  .. max
        end
    end
    local f = amount(obj.data.resources, FACTORIES)
    if f ~= want.factories or obj.data.factories ~= want.factories then
        good = false
        why = why .. " factories " .. f
    end
    return good, why
end

g = new_game { random_seed = 42 }
do
    local r = MT(42)
    local ids = {}
    for _, id in ipairs(require("tp.model").object_ids()) do
        ids[#ids + 1] = g:object(id)
    end
    t.ok(ids[1].name == "The Universe" and ids[1].size == 1000000000 and
         ids[2].name == "Milky Way Galaxy" and ids[2].size == 100000000 and
         ids[2].pos.y == -6000, "object 0 The Universe, 1 Milky Way Galaxy")
    local fixed = {
        { 2, "Sol/Terra System", 3000000000, 2000000000, 1400000 },
        { 3, "Earth/Terra", 3000014960, 2000000000 },
        { 4, "Venus", 3000000000, 2000010800 },
        { 5, "Mars", 2999977210, 2000000000 },
        { 6, "Alpha Centauri System", -1500000000, 1500000000, 800000 },
        { 7, "Alpha Centauri Prime", -1500006300, 1500078245 },
        { 8, "Sirius System", -250000000, -3800000000, 2000000 },
        { 9, "Sirius 1", -249954075, -3800034262 },
    }
    local good, why = true, ""
    for _, f in ipairs(fixed) do
        local o = g:object(f[1])
        if not (o and o.name == f[2] and o.pos.x == f[3] and o.pos.y == f[4]
                and (not f[5] or o.size == f[5])) then
            good, why = false, why .. " " .. f[1]
        end
        if not f[5] then
            local ok2, w = check_planet(o, planet_draws(r, 1, 15))
            if not ok2 then
                good, why = false, why .. " " .. f[2] .. w
            end
        end
    end
    t.ok(good, "fixed systems and planets: names, positions, sizes, ores "
         .. "and Factories of the draws", why)
    local id = 10
    local systems, planets, bad_sys, bad_pl = 0, 0, {}, {}
    for k = 1, 45 do
        local name = NAMES[r.range(1, 45)]
        local y = r.range(1, 8000) * 1000000 - 4000000000
        local x = r.range(1, 8000) * 1000000 - 4000000000
        local star = g:object(id)
        if not (star and star.name == name and star.pos.x == x and
                star.pos.y == y and star.size == 1400000 and
                star.parent == 1) then
            bad_sys[#bad_sys + 1] = k
        end
        systems = systems + 1
        id = id + 1
        local n = 0
        while n < 5 and r.range(1, 10) < 6 do
            local p = g:object(id)
            local w = planet_draws(r, 1, 15)
            local ok2 = check_planet(p, w)
            if not (ok2 and p.name == name .. " " .. n and
                    p.parent == id - n - 1 and
                    p.pos.x == x + n * 40000 and p.pos.y == y - n * 35000 and
                    amount(p.data.resources, HOME) == 1 and p.owner == 0) then
                bad_pl[#bad_pl + 1] = id
            end
            planets = planets + 1
            id = id + 1
            n = n + 1
        end
    end
    t.is(#bad_sys, 0, "45 random systems: names (with replacement), "
         .. "positions (y drawn first), size 1,400,000")
    t.is(#bad_pl, 0, "their planets: count by the 50% draw, names, offsets,"
         .. " ores, Factories 1-15, Home Planet 1")
    t.is(#g:objects("Star System"), 48, "3 + 45 systems")
    t.is(#g:objects("Planet"), 5 + planets, "planets: 5 fixed + " .. planets
         .. " drawn")
    t.ok(planets > 20, "the draw makes a fair number of planets")
    -- Players.
    alice = g:join("alice")
    local sy = (r.range(0, 1000) - 500) * 10000000
    local sx = (r.range(0, 1000) - 500) * 10000000
    local py = r.range(0, 10000) - 5000
    local px = r.range(0, 10000) - 5000
    local w = planet_draws(r, 20, 50)
    local fy = r.range(0, 10000) - 5000
    local fx = r.range(0, 10000) - 5000
    local star = g:find("alice Star System")
    t.ok(star and star.pos.x == sx and star.pos.y == sy and
         star.size == 2000000 and star.parent == 1 and star.id == id,
         "alice's star system: position of the draws, size 2,000,000")
    local home = g:find("alice's Planet")
    local okp, why2 = check_planet(home, w)
    t.ok(home and home.pos.x == sx + px and home.pos.y == sy + py and okp and
         home.owner == alice.id and amount(home.data.resources, HOME) == 1,
         "alice's Planet: offset, ores, Factories 20-50, Home Planet, owned",
         why2)
    t.is(g:queue(home).owner, alice.id, "its queue is alice's")
    local fleet = g:find("alice's Fleet #1")
    t.ok(fleet and fleet.pos.x == sx + fx and fleet.pos.y == sy + fy and
         fleet.parent == star.id and fleet.owner == alice.id and
         #fleet.data.ships == 1 and fleet.data.ships[1].count == 2 and
         g:design(fleet.data.ships[1].design).name == "Scout",
         "alice's Fleet #1: offset, 2 Scouts, parent the star system")
    t.is(table.concat(g:queue(home).allowed, ","), "0,2,3,7,8",
         "planet orders: No Operation, Build Fleet, Build Weapon, Enhance, "
         .. "Send Points")
    t.is(table.concat(g:queue(fleet).allowed, ","), "0,1,5,6,9,10",
         "fleet orders: No Operation, Move, Split, Merge, Load, Unload")
    t.is(g:ctx().state.rng.seed, 42, "the generator is seeded with "
         .. "random_seed")
end
g:close()


-- ------------------------------------------------------------ production

g = new_game { random_seed = 7 }
alice, bob = g:join("alice"), g:join("bob")
local mt = g:ms()
local ctx = g:ctx()
local home = g:find("alice's Planet")
local bhome = g:find("bob's Planet")
do
    local p0 = home.data.factories
    local want, good = p0, true
    for turn = 1, 4 do
        g:end_turn()
        want = math.min(100, want + 1)
        if home.data.factories ~= want or
           amount(home.data.resources, FACTORIES) ~= want then
            good = false
        end
    end
    t.ok(good, "production: Factories grows by 1 a turn and the points "
         .. "are reset to it (" .. p0 .. " -> " .. want .. ")")
    -- At 100 the points are no longer reset: they pile up.
    home.data.factories = 100
    mt.objects.set_amount(home.data.resources, FACTORIES, 30)
    g:set(home, {})
    g:end_turn()
    t.ok(home.data.factories == 100 and
         amount(home.data.resources, FACTORIES) == 30,
         "at 100 the parameter stays and the points are kept")
    home.data.one_time = 12
    g:set(home, {})
    g:end_turn()
    t.ok(amount(home.data.resources, FACTORIES) == 42 and
         home.data.one_time == 0, "One Time points arrive and are cleared")
    home.data.factories = 40
    mt.objects.set_amount(home.data.resources, FACTORIES, 40)
    g:set(home, {})
    local earth = g:object(3)
    local p3 = earth.data.factories
    local e3 = amount(earth.data.resources, FACTORIES)
    g:end_turn()
    t.ok(earth.data.factories == p3 and
         amount(earth.data.resources, FACTORIES) == e3,
         "unowned planets do not produce")
end

-- ------------------------------------------------------------ orders

local function points(p) return (amount(p.data.resources, FACTORIES)) end
local function set_points(p, n)
    mt.objects.set_amount(p.data.resources, FACTORIES, n)
    g:set(p, {})
end
local function place(fleet, pos)
    g:set(fleet, { pos = { x = pos.x, y = pos.y, z = pos.z } })
end
local earth = g:object(3)
mt.objects.set_planet_owner(ctx, earth, alice.id)
g:commit()
local ascout = design_named(g, alice.id, "Scout")
local amissile = design_named(g, alice.id, "Alpha Missile")
local bscout = design_named(g, bob.id, "Scout")
local afleet = g:find("alice's Fleet #1")
local bfleet = g:find("bob's Fleet #1")

-- No Operation.
ok, r = g:order(alice.id, home, "No Operation", { wait = { turns = 2 } })
t.ok(ok, "No Operation accepted")
ok, r = g:order(alice.id, home, "No Operation", { wait = { turns = -1 } })
t.ok(not ok, "No Operation of -1 turns refused")
g:end_turn()
t.is(#g:queue(home).orders, 1, "No Operation 2: still there after a turn")
g:end_turn()
t.ok(#g:queue(home).orders == 0 and
     subjects(g, alice.id):find("NOp order complete", 1, true),
     "No Operation 2: done on the second turn")

-- Build Fleet: 2 Scouts cost 2 x 7 = 14 points.
set_points(home, 10)
home.data.factories = 10
g:set(home, {})
ok, r = g:order(alice.id, home, "Build Fleet", { ships = sel { { ascout.id,
    2 } }, name = { string = "Pickets" } })
t.ok(ok, "Build Fleet of 2 Scouts accepted")
t.is(g:design(ascout.id).inuse, 4, "under construction += 2 on insert")
local est_turns, est = g:estimate(home, 0)
t.ok(est[1].resource == FACTORIES and est[1].amount == 14 and est_turns == 2,
     "its estimate: 14 Factories points, 2 turns at 10 a turn",
     cjson.encode(est) .. " " .. est_turns)
ok, r = g:order(alice.id, home, "Build Fleet", { ships = sel {},
    name = { string = "x" } })
t.ok(not ok and tostring(r.message):find("empty", 1, true),
     "Build Fleet of nothing refused", r.message)
ok, r = g:order(alice.id, home, "Build Fleet", { ships = sel { { bscout.id,
    1 } }, name = { string = "x" } })
t.ok(not ok and tostring(r.message):find("not valid", 1, true),
     "Build Fleet of another player's design refused")
ok, r = g:order(alice.id, home, "Build Fleet", { ships = sel { { amissile.id,
    1 } }, name = { string = "x" } })
t.ok(not ok, "Build Fleet of a weapon design refused")
ok, r = g:order(bob.id, home, "Build Fleet", { ships = sel { { bscout.id,
    1 } }, name = { string = "x" } })
t.ok(not ok, "Build Fleet on another player's planet refused")
g:end_turn()   -- 10 points spent, 4 left to pay
t.ok(#g:queue(home).orders == 1 and points(home) == 11 and
     g:queue(home).orders[1].state.total == 4 and
     subjects(g, alice.id):find("Build Fleet order slowed", 1, true),
     "turn 1: all 10 points spent, 4 left; next turn's points made",
     points(home))
g:end_turn()
local pickets = g:find("Pickets")
t.ok(pickets and pickets.owner == alice.id and pickets.parent == home.id and
     pickets.data.ships[1].count == 2 and #g:queue(home).orders == 0 and
     points(home) == 12 and g:design(ascout.id).exists == 4,
     "turn 2: the fleet is built at the planet (4 of 11 points spent, then "
     .. "production), exists += 2",
     pickets and cjson.encode(pickets.data) .. " " .. points(home))
t.ok(subjects(g, alice.id):find("Build Fleet order complete", 1, true),
     "Build Fleet order complete message")

-- Build Weapon: Spark (cost 3) x 2 = 6; the Factories-0 case waits.
ok, r = add_design(g, alice.id, "Spark", 2, { { 20, 1 }, { 17, 2 } })
spark = g:design(r.id)
ok, r = add_design(g, alice.id, "Ember", 2, { { 20, 1 }, { 17, 1 } })
local ember = g:design(r.id)
set_points(home, 0)
ok, r = g:order(alice.id, home, "Build Weapon", { Weapons = sel { { spark.id,
    2 }, { ember.id, 3 } } })
t.ok(ok, "Build Weapon with no points on the planet is accepted (the "
     .. "reference divides by zero)", type(r) == "table" and r.message)
local wres = mt.arms.resource_of(ctx, spark.id)
local eres = mt.arms.resource_of(ctx, ember.id)
t.ok(wres == FIRST_WEAPON and eres == FIRST_WEAPON + 1 and
     types.resources[wres].name == "Spark" and
     types.resources[eres].unit == "weapon",
     "the weapons get resources 11 and 12, named after the designs")
ok, r = g:order(alice.id, home, "Build Weapon", { Weapons = sel { { ascout.id,
    1 } } })
t.ok(not ok, "Build Weapon of a ship design refused")
t.is((g:estimate(home, 0)), math.ceil(12 / home.data.factories),
     "estimate with 0 points: no division "
     .. "by zero")
local before = #g:messages(alice.id)
g:end_turn()
t.ok(subjects(g, alice.id):find("Build Weapon order error", 1, true) and
     #g:queue(home).orders == 1, "no points: order error, it waits")
g:end_turn()
t.ok(amount(home.data.resources, wres) == 2 and
     amount(home.data.resources, eres) == 3 and #g:queue(home).orders == 0,
     "then built: 2 Spark and 3 Ember on the planet")

-- Enhance.
set_points(home, 50)
local f0 = home.data.factories
ok, r = g:order(alice.id, home, "Enhance", { Points = { turns = 5 } })
t.ok(not ok, "Enhance of 5 points refused (the gain would be 0)")
ok, r = g:order(alice.id, home, "Enhance", { Points = { turns = 30 } })
t.ok(ok, "Enhance of 30 accepted")
g:end_turn()
t.ok(home.data.factories == math.min(100, f0 + 3 + 1) and
     #g:queue(home).orders == 0, "Enhance 30: Factories + 3 (then + 1 of "
     .. "the turn's growth)", home.data.factories .. " from " .. f0)
set_points(home, 10)
ok, r = g:order(alice.id, home, "Enhance", { Points = { turns = 0 } })
t.is(g:queue(home).orders[1].params.Points.turns, 100,
     "Enhance with 0 points means the default 100")
local hf = home.data.factories
home.data.factories = 100  -- no reset: the points stay at 10
g:set(home, {})
g:end_turn()
t.ok(#g:queue(home).orders == 1 and home.data.factories == 100 and
     subjects(g, alice.id):find("Enhance order waiting", 1, true),
     "not enough points: it waits with a message")
ctx:clear_orders(home)
home.data.factories = hf
g:set(home, {})

-- Send Points.
set_points(home, 20)
local eone = earth.data.one_time
ok, r = g:order(alice.id, home, "Send Points", { Planet = sel { { bhome.id,
    5 } } })
t.ok(not ok, "Send Points to another player's planet refused")
ok, r = g:order(alice.id, home, "Send Points", { Planet = sel { { earth.id,
    7 } } })
t.ok(ok, "Send Points to an own planet accepted")
local epoints = points(earth)
g:end_turn()
t.ok(#g:queue(home).orders == 0 and earth.data.one_time == 0 and
     points(earth) == earth.data.factories + 7,
     "7 points arrive on Earth with its turn's production",
     points(earth) .. " " .. earth.data.factories)

-- Move, Load Armament, Unload Armament, Split, Merge.
ok, r = g:order(alice.id, afleet, "Move", { pos = { x = 2 ^ 60, y = 0,
    z = 0 } })
t.ok(not ok, "Move out of range refused")
ok, r = g:order(alice.id, afleet, "Load Armament", { Weapons = sel { { 3,
    1 } } })
t.ok(not ok, "Load Armament of a resource that is no weapon refused")
ok, r = g:order(alice.id, afleet, "Unload Armament", { Weapons = sel {} })
t.ok(not ok, "Unload Armament of nothing refused")
local dest = home.pos
ok, r = g:order(alice.id, afleet, "Move", { pos = dest })
t.ok(ok and g:estimate(afleet, 0) == 1, "Move to the home planet "
     .. "accepted, 1 turn")
ok, r = g:order(alice.id, afleet, "Load Armament", { Weapons = sel { { wres,
    2 }, { eres, 1 } } })
t.ok(ok, "Load Armament of 2 Spark and 1 Ember accepted")
set_points(home, 10)
g:end_turn()   -- one order a turn: the move
t.ok(afleet.pos.x == home.pos.x and afleet.pos.y == home.pos.y and
     afleet.parent == home.id and #g:queue(afleet).orders == 1,
     "the fleet arrived at the planet; the load waits for the next turn")
local pts = points(home)
g:end_turn()
t.ok(amount(afleet.data.weapons, wres) == 2 and
     amount(afleet.data.weapons, eres) == 1 and
     amount(home.data.resources, wres) == 0 and
     amount(home.data.resources, eres) == 2 and #g:queue(afleet).orders == 0,
     "loaded: the weapons moved to the fleet",
     cjson.encode(afleet.data.weapons))
ok, r = g:order(alice.id, afleet, "Unload Armament", { Weapons = sel {
    { eres, 1 } } })
t.ok(ok, "Unload Armament accepted")
g:end_turn()
t.ok(amount(afleet.data.weapons, eres) == 0 and
     amount(home.data.resources, eres) == 3, "unloaded onto the planet")
ok, r = g:order(alice.id, afleet, "Split Fleet", { ships = sel { { ascout.id,
    1 } } })
t.ok(ok, "Split Fleet accepted")
g:end_turn()
local split = g:find("A fleet")
t.ok(split and split.data.ships[1].count == 1 and
     afleet.data.ships[1].count == 1, "split: one Scout each")
ok, r = g:order(alice.id, split, "Merge Fleet", {})
g:end_turn()
t.ok(not g:object(split.id) and afleet.data.ships[1].count == 2,
     "merged back")
ok, r = g:order(alice.id, afleet, "Split Fleet", { ships = sel { { ascout.id,
    2 } } })
g:end_turn()
t.ok(afleet.data.ships[1].count == 2 and not g:find("A fleet") and
     subjects(g, alice.id):find("Split Fleet", 1, true),
     "splitting every ship does nothing (no ships made)")
ok, r = g:order(alice.id, afleet, "Colonise", {})
t.ok(not ok, "Colonise is not allowed without a colonising ship")
ok, r = g:order(bob.id, afleet, "Move", { pos = dest })
t.ok(not ok, "orders on another player's fleet refused")
-- Orders that cannot be carried out wait (or are canceled).
mt.objects.set_amount(home.data.resources, wres, 1)
g:set(home, {})
place(afleet, { x = home.pos.x + 10002, y = home.pos.y, z = 0 })
ok = g:order(alice.id, afleet, "Load Armament", { Weapons = sel { { wres,
    1 } } })
g:end_turn()
t.ok(ok and #g:queue(afleet).orders == 1 and
     amount(afleet.data.weapons, wres) == 2,
     "Load Armament 10,002 units from the planet (reach 10,000 + 1): waits")
place(afleet, { x = home.pos.x + 10001, y = home.pos.y, z = 0 })
g:end_turn()
t.ok(#g:queue(afleet).orders == 0 and amount(afleet.data.weapons, wres) == 3,
     "at 10,001 (the planet's radius 1 counts) it loads")
ok = g:order(alice.id, afleet, "Merge Fleet", {})
g:end_turn()
t.ok(#g:queue(afleet).orders == 0 and
     subjects(g, alice.id):find("Merge Fleet order canceled", 1, true),
     "Merge Fleet with no fleet to merge with: canceled")
set_points(home, 0)
home.data.factories = 100
g:set(home, {})
ok = g:order(alice.id, home, "Send Points", { Planet = sel { { earth.id,
    50 } } })
g:end_turn()
t.ok(#g:queue(home).orders == 1, "Send Points without the points: waits")
ctx:clear_orders(home)
home.data.factories = 40
g:set(home, {})
place(afleet, home.pos)

-- Colonise: a fleet with a Settler (Argonaut + Colonisation Module).
ok, r = add_design(g, alice.id, "Settler", 1, { { 10, 1 }, { 52, 1 } })
local settler = g:design(r.id)
local venus = g:object(4)
local colony = mt.objects.new_fleet(ctx, { name = "Colony", parent = venus.id,
    owner = alice.id, pos = venus.pos, ships = { { design = ascout.id,
    count = 1 }, { design = settler.id, count = 1 } } })
g:commit()
t.is(table.concat(g:queue(colony).allowed, ","), "0,1,4,5,6,9,10",
     "Colonise allowed with a Settler aboard")
ok, r = g:order(alice.id, colony, "Colonise", {})
t.ok(ok, "Colonise accepted")
g:end_turn()
t.ok(venus.owner == alice.id and g:queue(venus).owner == alice.id and
     colony.data.ships[1].design == ascout.id and #colony.data.ships == 1 and
     subjects(g, alice.id):find("Colonised planet", 1, true),
     "Venus colonised, the Settler used up")
ok, r = g:order(alice.id, colony, "Colonise", {})
t.ok(not ok, "no Colonise once the Settler is gone")
t.is(g.unmarked or 0, 0, "orders: every change the turns made was marked")
g:close()


-- ------------------------------------------------------------ combat

-- Arithmetic of mtsec.md 8 as this port plays it (README.md "Combat"):
-- one shot per tube with a weapon of its size; damage D (plus the fleet's
-- old Damage) kills min(ships, floor(D / HitPoints)) of each design in
-- descending id; the rest stays as Damage.
local model = require "tp.model"
local function battles() return model.battles() end

g = new_game { random_seed = 11 }
alice, bob = g:join("alice"), g:join("bob")
mt, ctx = g:ms(), g:ctx()
ascout = design_named(g, alice.id, "Scout")
bscout = design_named(g, bob.id, "Scout")
ok, r = add_design(g, bob.id, "Ember", 2, { { 20, 1 }, { 17, 1 } })
ember = g:design(r.id)                    -- AmmoExplosiveness 100
bmissile = design_named(g, bob.id, "Alpha Missile")   -- 400
local ember_res = mt.arms.assign(ctx, ember)
local missile_res = mt.arms.assign(ctx, bmissile)
g:commit()
local deep = { x = 3900000000, y = 3900000000, z = 0 }   -- empty space
local function fleet(owner, name, ships, weapons, pos)
    local f = mt.objects.new_fleet(ctx, { name = name, parent = 1,
        owner = owner, pos = pos or deep, ships = ships,
        weapons = weapons })
    g:commit()
    return f
end
for _, f in ipairs(g:objects("Fleet")) do   -- the stock fleets go away
    mt.objects.remove_fleet(ctx, f)
end
g:commit()

-- Bob: 1 Scout (one Alpha tube of size 3) with 3 Embers; alice: 2 Scouts.
local fa = fleet(alice.id, "Target", { { design = ascout.id, count = 2 } })
local fb = fleet(bob.id, "Hunter", { { design = bscout.id, count = 1 } },
                 { { resource = ember_res, stored = 3, minable = 0,
                     unavailable = 0 } },
                 { x = deep.x + 6000, y = deep.y, z = 0 })
g:end_turn()
-- 1 shot x 100: floor(100 / 75) = 1 Scout dies, 25 damage stays.
t.ok(fa.data.ships[1].count == 1 and fa.data.damage == 25 and
     amount(fb.data.weapons, ember_res) == 2,
     "one tube fires one Ember (100): one of two Scouts (75 HP) dies, "
     .. "Damage 25 stays", cjson.encode(fa.data))
local bl = battles()
t.is(#bl, 1, "one battle recorded for the pairing")
local rec = bl[1] and model.battle(bl[1].id)
t.ok(rec and rec.xml:find("Scout-" .. fa.id .. "-1", 1, true) and
     rec.xml:find("Scout-" .. fb.id .. "-0", 1, true) and
     rec.xml:find("<fire", 1, true) and rec.xml:find("<death", 1, true) and
     rec.media == "mtsec", "BattleXML: entities <design>-<fleet>-<n>, "
     .. "fire and death events", rec and rec.xml:sub(1, 300))
local msgs = g:new_messages(alice.id, "Combat")
local has_ref = false
for _, rf in ipairs(msgs[1] and msgs[1].references or {}) do
    if rf.type == -1000 and rf.id == bl[1].id then
        has_ref = true
    end
end
t.ok(#msgs == 1 and has_ref and msgs[1].body:find("Battle log", 1, true),
     "the Combat message refers to the battle (type -1000) and links it")
t.is(#g:new_messages(bob.id, "Combat"), 1, "bob gets one too")
g:end_turn()
-- D = 25 + 100 = 125: the last Scout dies; the fleet is gone.
t.ok(not g:object(fa.id) and amount(fb.data.weapons, ember_res) == 1 and
     g:new_messages(alice.id, "Combat")[1].body:find("Your fleet was "
     .. "destroyed", 1, true), "the old Damage adds up: 25 + 100 kills the "
     .. "last Scout, the fleet is removed")
g:end_turn()
t.is(#battles(), 2, "no enemy left: no more battles")

-- Several designs: damage goes to the highest design id first.
ok, r = add_design(g, alice.id, "Lancer", 1, { { 4, 1 }, { 27, 2 } })
local lancer2 = g:design(r.id)                -- HitPoints 150
local fc = fleet(alice.id, "Mixed", { { design = ascout.id, count = 3 },
                                     { design = lancer2.id, count = 1 } },
                 nil, { x = deep.x + 6000, y = deep.y + 5000, z = 0 })
-- Bob's 1 tube fires 1 Ember (the last): 100 < 150 spares the Lancer,
-- floor(100 / 75) = 1 Scout dies, 25 stays.
g:end_turn()
t.ok(fc.data.damage == 25 and fc.data.ships[2].count == 1 and
     fc.data.ships[1].count == 2 and
     amount(fb.data.weapons, ember_res) == 0,
     "100 on a Lancer (150 HP) and 3 Scouts: the Lancer is spared, one "
     .. "Scout dies, Damage 25", cjson.encode(fc.data))
-- Now 1 Alpha Missile (400): D = 425: the Lancer dies (150), 275 left:
-- floor(275 / 75) = 3, capped at the 2 Scouts.
fb.data.weapons = { { resource = missile_res, stored = 1, minable = 0,
                      unavailable = 0 } }
g:set(fb, {})
g:end_turn()
t.ok(not g:object(fc.id), "400 more: the Lancer, then both Scouts die "
     .. "(425 = 150 + 275, 275 / 75 >= 2)")
-- Alice's Lancer has Delta tubes (size 12): an Alpha weapon does not fit.
local fd = fleet(alice.id, "Wrong tubes", { { design = lancer2.id,
    count = 1 } }, { { resource = missile_res, stored = 2, minable = 0,
    unavailable = 0 } }, { x = deep.x + 6000, y = deep.y - 5000, z = 0 })
g:end_turn()
t.ok(amount(fd.data.weapons, missile_res) == 2 and
     fb.data.ships[1].count == 1, "weapons of another size are not fired")
mt.objects.remove_fleet(ctx, fd)
g:commit()

-- Planets: a planet fights as two of its owner's Scouts and fires the
-- weapons stored on it. Alice's home with 2 Alpha Missiles vs bob's
-- fleet of 2 Scouts: 2 shots, 800 >= 2 x 75.
local ahome = g:find("alice's Planet")
mt.objects.set_amount(ahome.data.resources, missile_res, 2)
g:set(ahome, {})
local fe = fleet(bob.id, "Raiders", { { design = bscout.id, count = 2 } },
                 nil, { x = ahome.pos.x + 9000, y = ahome.pos.y, z = 0 })
g:end_turn()
t.ok(not g:object(fe.id) and amount(ahome.data.resources, missile_res) == 0,
     "the planet fires its 2 Alpha Missiles (2 Scout tubes): the raiders "
     .. "die")
-- Bob's fleet with 2 Alpha Missiles takes the planet (800 >= 150).
local ff = fleet(bob.id, "Siege", { { design = bscout.id, count = 2 } },
                 { { resource = missile_res, stored = 2, minable = 0,
                     unavailable = 0 } },
                 { x = ahome.pos.x, y = ahome.pos.y + 10000, z = 0 })
ok = g:order(alice.id, ahome, "No Operation", { wait = { turns = 5 } })
g:end_turn()
t.ok(ahome.owner == 0 and g:queue(ahome).owner == 0 and
     #g:queue(ahome).orders == 0 and g:object(ff.id).data.ships[1].count == 2,
     "2 missiles (800) take the planet: unowned, its orders cleared")
t.ok(g:new_messages(alice.id, "Combat")[1].body:find("Your planet fell", 1,
     true), "alice is told her planet fell")
t.is(g.unmarked or 0, 0, "combat: every change the turns made was marked")
g:close()

-- ------------------------------------------------------------ victory

g = new_game { random_seed = 3, max_turns = 4 }
alice, bob = g:join("alice"), g:join("bob")
g:end_turn() g:end_turn() g:end_turn()
t.ok(not g.rs.game_over(g:ctx()), "not over before max_turns")
g:end_turn()
t.ok(g.rs.game_over(g:ctx()), "over at max_turns")
local go = g:new_messages(alice.id, "Game over")
t.ok(#go == 1 and go[1].body:find("last turn", 1, true) and
     #g:new_messages(bob.id, "Game over") == 1,
     "everyone gets a Game over message", go[1] and go[1].body)
-- The server stops the game there (tp.turn): no turn ends any more.
local snap = g:snapshot()
local over_at = g:turn_number()
t.ok(not g:end_turn() and g:turn_number() == over_at,
     "after the end no turn ends any more")
local snap2 = g:snapshot()
local same = #snap2 == #snap
for i, o in ipairs(snap2) do
    same = same and H.same(o, snap[i])
end
t.ok(same and g:object(0).data.year == 4, "and nothing changes")
t.ok(not g.rs.join_allowed(g:ctx(), "carol"), "no joining a finished game")
g:close()

g = new_game { random_seed = 3, max_turns = 0 }
alice, bob = g:join("alice"), g:join("bob")
mt, ctx = g:ms(), g:ctx()
for _, o in ipairs(g:objects(nil, bob.id)) do
    if o.type == types.object_by_name.Fleet.id then
        mt.objects.remove_fleet(ctx, o)
    else
        mt.objects.set_planet_owner(ctx, o, 0)
    end
end
g:commit()
g:end_turn()
t.ok(g.rs.game_over(ctx) and ctx.state.game_over.winners[1] == alice.id and
     g:new_messages(bob.id, "You lost")[1] ~= nil,
     "last player with planets wins; the other lost")
t.is(g.rs.turn_name(ctx, 1), "Year 1 (game over)", "turn name")
g:close()

-- ------------------------------------------------------------ restart

-- The same game with and without a restart before the last turn.
local function play(restart)
    local gg = new_game { random_seed = 5 }
    local a, b = gg:join("alice"), gg:join("bob")
    local hm = gg:find("alice's Planet")
    local fl = gg:find("alice's Fleet #1")
    local ok2, rr = add_design(gg, a.id, "Spark", 2, { { 20, 1 },
                                                      { 17, 2 } })
    gg:order(a.id, hm, "Build Weapon", { Weapons = sel { { rr.id, 3 } } })
    gg:order(a.id, hm, "Build Fleet", { ships = sel { { design_named(gg,
        a.id, "Scout").id, 1 } }, name = { string = "New" } })
    gg:order(a.id, fl, "Move", { pos = hm.pos })
    gg:order(a.id, fl, "Load Armament", { Weapons = sel { { FIRST_WEAPON,
        3 } } })
    gg:order(b.id, gg:find("bob's Fleet #1"), "Move", { pos = hm.pos })
    for _ = 1, 3 do gg:end_turn() end
    if restart then
        gg:reopen()
        t.is(types.resources[FIRST_WEAPON].name, "Spark", "right after "
             .. "the restart (before any request) the weapon resource has "
             .. "its design's name (the opened hook)")
    end
    for _ = 1, 6 do gg:end_turn() end
    local s1 = gg:snapshot()
    local st = H.copy(gg:ctx().state)
    local res = types.resources[FIRST_WEAPON].name
    local nb = #model.battles()
    gg:close()
    return s1, st, res, nb
end
local s1, st1, res1, nb1 = play(false)
local s2, st2, res2, nb2 = play(true)
local same, where = H.same(s1, s2)
t.ok(same, "restart mid-game: the same universe after the next turns",
     where)
t.ok(H.same(st1, st2), "and the same ruleset state")
t.ok(res1 == "Spark" and res2 == "Spark", "the weapon resource keeps its "
     .. "name after the restart")
t.ok(nb1 == nb2, "the same battles (" .. nb1 .. ")")

return t.done()
