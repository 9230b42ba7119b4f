-- MiniSec: the declarations clients see, universe generation with its
-- settings, the random draws (against values computed independently with
-- MT19937), the same seed giving the same universe, players joining (and
-- the guest), and the generators surviving a restart.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local types = require "tp.types"

local function names_of(list)
    local out = {}
    for i, o in ipairs(list) do
        out[i] = o.name
    end
    return table.concat(out, ", ")
end

-- ------------------------------------------------------------ declarations

local g = assert(H.new_game {})

local want_types = {
    { "Universe", "universe", { "Positional", "Media", "Informational" } },
    { "Galaxy", "galaxy", { "Positional", "Media" } },
    { "Star System", "star_system", { "Positional", "Media" } },
    { "Planet", "planet", { "Positional", "Media", "Ownership", "Orders",
                            "Resources" } },
    { "Fleet", "fleet", { "Positional", "Media", "Ownership", "Orders",
                          "Ships" } },
}
for i, w in ipairs(want_types) do
    local ot = types.objects[i - 1]
    local groups = {}
    for j, gr in ipairs(ot.groups) do
        groups[j] = gr.name
    end
    t.is(ot.name, w[1], "object type " .. (i - 1) .. " is " .. w[1])
    t.is(ot.tp03.kind, w[2], w[1] .. " shows as TP03 " .. w[2])
    t.is(table.concat(groups, ","), table.concat(w[3], ","),
         w[1] .. " parameter groups")
end
local function params_of(name)
    local out = {}
    for _, p in ipairs(types.object_by_name[name].flat) do
        out[#out + 1] = p.name .. ":" .. p.type
    end
    return table.concat(out, " ")
end
t.is(params_of("Universe"), "Position:position Velocity:velocity Size:size "
     .. "Icon:media Media:media Year:integer", "Universe parameters")
t.is(params_of("Planet"), "Position:position Velocity:velocity Size:size "
     .. "Icon:media Media:media Owner:reference Order Queue:order_queue "
     .. "Resource List:resource_list", "Planet parameters")
t.is(params_of("Fleet"), "Position:position Velocity:velocity Size:size "
     .. "Icon:media Media:media Owner:reference Order Queue:order_queue "
     .. "Ship List:reference_quantity_list Damage:integer",
     "Fleet parameters")

local want_orders = {
    { "No Operation", "wait:time" }, { "Move", "pos:abs_coords" },
    { "Build Fleet", "ships:list name:string" }, { "Colonise", "" },
    { "Split Fleet", "ships:list" }, { "Merge Fleet", "" },
    { "Intercept", "Fleet:object" },
}
for i, w in ipairs(want_orders) do
    local ot = types.orders[i - 1]
    local ps = {}
    for _, p in ipairs(ot.params) do
        ps[#ps + 1] = p.name .. ":" .. p.type
    end
    t.is(ot.name, w[1], "order type " .. (i - 1) .. " is " .. w[1])
    t.is(table.concat(ps, " "), w[2], w[1] .. " parameters")
end
t.is(types.orders[0].params[1].maxtime, 1000, "No Operation: maxtime 1000")
t.is(types.orders[6].params[1].validtypes[1], 4, "Intercept: fleets only")

t.is(types.resources[1].name, "Ship part", "resource 1: Ship part")
t.is(types.resources[1].unit, "part", "resource 1 unit")
t.is(types.resources[2].name, "Home Planet", "resource 2: Home Planet")
t.is(types.categories[1].name, "Ships", "category 1: Ships")
local prop_names = {}
for id = 1, 7 do
    prop_names[id] = types.properties[id].name .. "/" ..
                     types.properties[id].displayname
end
t.is(table.concat(prop_names, ","), "Speed/Speed,BuildTime/Build Time,"
     .. "Armour/Armour,WeaponWin/Weapon Strength at Win,WeaponDraw/Weapon "
     .. "Strength at Draw,Colonise/Can Colonise Planets,_num-components/"
     .. "Number of Conponents", "properties 1-7")
t.is(types.components[1].name .. "," .. types.components[2].name .. "," ..
     types.components[3].name, "ScoutHull,FrigateHull,BattleshipHull",
     "components 1-3")

-- ------------------------------------------------------------ fixed universe

local objs = g:snapshot()
t.is(#objs, 10, "all settings 0: only the fixed universe (10 objects)")
t.is(names_of(objs), "The Universe, Milky Way Galaxy, Sol/Terra System, "
     .. "Alpha Centauri System, Sirius System, Earth, Venus, Mars, "
     .. "Alpha Centauri Prime, Sirius 1", "fixed objects in id order")
local u = g:object(0)
t.is(u.size, 1000000000000, "universe size")
t.is(u.data.year, 0, "year 0")
t.is(u.data.media, "common-2d/foreign/freeorion/nebula-small/nebula3",
     "universe media")
t.is(u.data.icon, "common/object-icons/system", "universe icon")
local gal = g:object(1)
t.ok(gal.parent == 0 and gal.pos.y == -6000 and gal.size == 100000000000,
     "galaxy: parent, position, size")
local sirius = g:object(4)
t.ok(sirius.parent == 1 and sirius.pos.x == -250000000 and
     sirius.pos.y == -4000000000 and sirius.size == 60000 and
     sirius.data.media == "common-2d/star-small/red", "Sirius System")
local acp = g:object(8)
t.ok(acp.parent == 3 and acp.pos.x == -1500006300 and
     acp.pos.y == 1500078245 and acp.size == 2, "Alpha Centauri Prime")
t.is(acp.data.media, "common-2d/foreign/freeorion/planet-small/animation/"
     .. "toxic1", "planet media")
t.is(acp.data.icon, "common/object-icons/planet", "planet icon")
t.is(acp.owner, 0, "planets start unowned")
local q = g:queue(acp)
t.ok(q and q.id == 8 and q.owner == 0 and #q.orders == 0,
     "planet queue: id = object id, no owner, empty")
t.is(table.concat(q.allowed, ","), "0,2", "planet orders: No Operation, "
     .. "Build Fleet")
t.is(#acp.data.resources, 0, "no resources on a new planet")
g:close()

-- ------------------------------------------------------------ seeded draws

-- Expected values computed with an independent MT19937 (init_genrand,
-- genrand_int32) in the documented draw order for seed 42.
g = assert(H.new_game { random_seed = 42, max_systems = 5,
                        max_planets = 2 })
local alice = g:join("alice")
local bob = g:join("bob")
local systems = g:objects("Star System")
t.is(#systems, 7, "seed 42: 2 random systems + 2 home systems + 3 fixed")
local byz, wet = g:find("Byzantis"), g:find("Wetcher")
t.ok(byz and byz.id == 10 and byz.pos.x == 1856000000 and
     byz.pos.y == -2533000000 and byz.size == 120000,
     "first random system: name, id, position (y drawn first), size",
     byz and (byz.pos.x .. "," .. byz.pos.y))
t.ok(wet and wet.id == 13 and wet.pos.x == -2752000000 and
     wet.pos.y == 775000000, "second random system")
local b1 = g:find("Byzantis 1")
t.ok(b1 and b1.id == 11 and b1.parent == 10 and b1.pos.x == 1856040000 and
     b1.pos.y == -2533035000, "planet 1: name '<system> 1', offset "
     .. "(40000, -35000)")
t.ok(g:find("Byzantis 2").pos.y == -2533070000, "planet 2 offset")
local astar = g:find("alice Star System")
t.ok(astar.pos.x == -30261632 and astar.pos.y == -1115032704 and
     astar.size == 80000 and astar.parent == 1,
     "alice's home system (coordinates wrapped to 32 bits)",
     astar.pos.x .. "," .. astar.pos.y)
local aplanet = g:find("alice Planet")
t.ok(aplanet.pos.x == -30305822 and aplanet.pos.y == -1115072704 and
     aplanet.parent == astar.id, "alice's home planet")
local want_fleets = { { -30225012, -1115036774 }, { -30251522, -1115049324 },
                      { -30240822, -1115068414 } }
local afleets = g:objects("Fleet", alice.id)
for i, w in ipairs(want_fleets) do
    t.ok(afleets[i].pos.x == w[1] and afleets[i].pos.y == w[2],
         "alice's fleet " .. i .. " position")
end
local bstar = g:find("bob Star System")
t.ok(bstar.pos.x == -695359744 and bstar.pos.y == -2089869184,
     "bob's home system")
t.ok(g:find("bob Third Fleet").pos.x == -695391554 and
     g:find("bob Third Fleet").pos.y == -2089919104, "bob's third fleet")
t.is(g:ms().universe.wrap32(-4692 * 10000000), 324640256,
     "32-bit wrap of X = -4692 (minisec.md 6)")
t.ok(g:ctx().state.rng.debug ~= nil and g:ctx().state.rng.game_seed == 42,
     "debug generator kept in the state; game generator seeded with it")

-- Players joining.
t.is(names_of(afleets), "alice First Fleet, alice Second Fleet, alice "
     .. "Third Fleet", "three fleets")
local designs = {}
for _, d in ipairs(g:ctx():designs()) do
    if d.owner == alice.id then
        designs[#designs + 1] = d
    end
end
t.is(names_of(designs), "Scout, Frigate, Battleship", "stock designs")
t.ok(designs[1].id == 1 and designs[2].id == 2 and designs[3].id == 3,
     "design ids consecutive from 1")
t.ok(designs[1].valid and designs[2].valid and designs[3].valid,
     "stock designs are valid")
t.ok(designs[2].inuse == 3 and designs[2].exists == 3,
     "Frigate: under construction 3, exists 3")
t.ok(designs[1].inuse == 0 and designs[1].exists == 0, "Scout counters 0")
local props = {}
for _, p in ipairs(designs[3].properties) do
    props[#props + 1] = p.name .. "=" .. p.value
end
t.is(table.concat(props, ", "), "Speed=300.0 mega-units, BuildTime=4.0 "
     .. "turns, Armour=6.0 HP, WeaponWin=3.0 HP, WeaponDraw=1.0 HP, "
     .. "_num-components=1.0 components", "Battleship properties")
t.is(g:ctx():property(designs[2], "Colonise"), 1, "the Frigate colonises")
t.is(g:ctx():property(designs[1], "Colonise"), 0,
     "the Scout cannot colonise (absent property)")
local bad = g:ctx():new_design { name = "Two hulls", owner = alice.id,
    categories = { 1 }, components = { { id = 1, count = 2 } } }
t.ok(not bad.valid and bad.feedback:find("complete component", 1, true),
     "a design with two hulls is invalid", bad.feedback)
t.is(aplanet.owner, alice.id, "home planet owned")
t.ok(#aplanet.data.resources == 1 and aplanet.data.resources[1].resource == 2
     and aplanet.data.resources[1].stored == 1, "home planet: Home Planet 1")
t.is(g:queue(aplanet).owner, alice.id, "home planet queue owned")
local f1 = afleets[1]
t.ok(f1.parent == astar.id and f1.size == 2 and f1.vel.x == 0,
     "fleets in the home system, size 2, still")
t.ok(#f1.data.ships == 1 and f1.data.ships[1].design == 2 and
     f1.data.ships[1].count == 1 and f1.data.damage == 0,
     "one frigate, no damage")
t.is(table.concat(g:queue(f1).allowed, ","), "0,1,3,4,5,6",
     "fleet orders: all but Build Fleet (Colonise: it has a frigate)")
t.is(f1.data.media:match("^common%-2d/foreign/vegastrike/ship%-small/"),
     "common-2d/foreign/vegastrike/ship-small/", "fleet media")
local news = {}
for _, m in ipairs(g:messages(alice.id)) do
    news[#news + 1] = m.subject
end
t.is(table.concat(news, ","), "Welcome,New player",
     "alice: welcome, then bob joined")
g:close()

-- ------------------------------------------------------------ settings

g = assert(H.new_game { min_systems = 10, max_systems = 10, min_planets = 3,
                        max_planets = 3, total_planets = 7 })
local random_systems = {}
for _, s in ipairs(g:objects("Star System")) do
    if s.id > 4 then
        random_systems[#random_systems + 1] = s
    end
end
t.is(#random_systems, 3, "total_planets 7 stops after the third system")
t.is(#g:objects("Planet") - 5, 7, "7 random planets")
t.is(random_systems[3].size, 60000, "a capped system is sized by its "
     .. "planets (1 x 60000)")
g:close()

g = assert(H.new_game { min_systems = 3, max_systems = 3,
                        system_names = { " Alpha ", "", "Beta" } })
local named = {}
for _, s in ipairs(g:objects("Star System")) do
    if s.id > 4 then
        named[#named + 1] = s
    end
end
t.is(names_of(named), "Alpha, Beta, System 1",
     "system_names used in order (trimmed, blanks skipped), then System k")
t.is(named[1].size, 0, "a system without planets has size 0")
g:close()

g = assert(H.new_game { min_systems = 2, max_systems = 2, min_planets = 1,
                        max_planets = 1, system_names = { "Alpha" } })
t.ok(g:find("Alpha 1") and g:find("System 1, Planet 1"),
     "planets: '<name> 1', and 'System k, Planet 1' for numbered systems")
g:close()

g = assert(H.new_game { min_systems = 47, max_systems = 47,
                        random_seed = 3 })
local seen, count = {}, 0
for _, s in ipairs(g:objects("Star System")) do
    if s.id > 4 and not seen[s.name] then
        seen[s.name] = true
        count = count + 1
    end
end
t.ok(count == 47 and seen["System 1"] and seen["System 2"] and
     seen["Radiant Pool"] and seen["Barnard's Star"],
     "45 built-in names without repeats, then System 1, System 2")
g:close()

local bad_game, err = H.new_game { min_systems = 5, max_systems = 2 }
t.ok(not bad_game and tostring(err):find("min_systems", 1, true),
     "min_systems > max_systems refused at creation", err)

-- ------------------------------------------------------------ same seed

local function universe(settings, players)
    local game = assert(H.new_game(settings))
    for _, name in ipairs(players) do
        game:join(name)
    end
    local snap = game:snapshot()
    game:close()
    return snap
end
local settings = { random_seed = 20260101, min_systems = 3,
                   max_systems = 25, min_planets = 0, max_planets = 4 }
local s1 = universe(settings, { "ann", "ben", "cid" })
local s2 = universe(settings, { "ann", "ben", "cid" })
local same, where = H.same(s1, s2)
t.ok(same and #s1 > 25, "the same seed and settings give the same "
     .. "universe, object by object (" .. #s1 .. " objects)", where)
settings.random_seed = 20260102
local s3 = universe(settings, { "ann", "ben", "cid" })
t.ok(not H.same(s1, s3), "another seed gives another universe")
local c1 = universe({}, {})
local c2 = universe({}, {})
t.ok(H.same(c1, c2), "unseeded games share the fixed universe")

-- ------------------------------------------------------------ restart

-- The generators' states are stored: a restarted server goes on with the
-- same sequences (bob's home is where it is without a restart).
g = assert(H.new_game { random_seed = 42, max_systems = 5,
                        max_planets = 2 })
g:join("alice")
g:reopen()
g:join("bob")
local bstar2 = g:find("bob Star System")
t.ok(bstar2.pos.x == -695359744 and bstar2.pos.y == -2089869184,
     "after a restart the debug generator continues its sequence")
t.is(g:find("bob First Fleet").data.media,
     "common-2d/foreign/vegastrike/ship-small/destroyer-hud",
     "and so does the game generator")
g:close()

g = assert(H.new_game {})
local st = g:ctx().state.rng
t.ok(st.game and #st.game.mt == 624 and st.debug == nil,
     "without random_seed: only the game generator, seeded from the clock")
g:close()

-- ------------------------------------------------------------ the guest

g = assert(H.new_game {})
local guest = g:join("guest")
local carol = g:join("carol")
t.is(guest.alive, false, "the guest is not alive")
t.is(#g:objects(nil, guest.id), 0, "the guest owns nothing")
local guest_designs = 0
for _, d in ipairs(g:ctx():designs()) do
    if d.owner == guest.id then
        guest_designs = guest_designs + 1
    end
end
t.is(guest_designs, 0, "the guest has no designs")
t.is(carol.id, 2, "the next player joins normally")
t.is(#g:objects("Fleet", carol.id), 3, "and gets three fleets")
g:end_turn()
t.is(#g:new_messages(guest.id, "You lost"), 0,
     "the guest never gets 'You lost'")
t.is(#g:new_messages(carol.id, "You won!"), 0,
     "a lone player beside the guest has beaten nobody")
g:close()

g = assert(H.new_game { noguest = true })
guest = g:join("guest")
t.ok(guest.alive ~= false and #g:objects("Fleet", guest.id) == 3,
     "noguest: an account named guest plays")
t.is(g.unmarked or 0, 0, "every change a turn made was marked (marks_changes)")
g:close()

return t.done()
