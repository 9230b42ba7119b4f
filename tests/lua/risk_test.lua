-- Risk against values worked out here from the notes (risk.md): the
-- boards from their data files (JSON and the SVG form), the players'
-- start (random territories, the cap and the guest), every order in and
-- out of its phase, dice combat with the game generator replayed by the
-- test's own MT19937, bidding (and the three 1-army bids that crash the
-- reference), reinforcements with constellation bonuses, the end of the
-- game, and a restart in the middle of a game.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")

-- ------------------------------------------------------------ MT19937

local MT = dofile(TP_HOME .. "/tests/lua/mt19937.lua")

-- ------------------------------------------------------------ helpers

local function fail_text(ok, r)
    if ok then
        return nil
    end
    return type(r) == "table" and (r.message or r.text) or tostring(r)
end

local function find(text, s)
    return text ~= nil and text:find(s, 1, true) ~= nil
end

local function planet(g, name)
    for _, p in ipairs(g:objects("Planet")) do
        if p.name == name then
            return p
        end
    end
    error("no planet " .. name)
end

-- Sets a planet's owner and armies directly (test set-ups).
local function put(g, p, owner, armies)
    p.owner = owner
    p.data.armies = armies
    p.data.resources[1].stored = armies
    g:ctx():queue(p).owner = owner
    g:set(p, {})
end

local function set_pool(g, pid, n)
    local ctx = g:ctx()
    ctx.state.pools[tostring(pid)] = n
    ctx:state_changed()
    g:commit()
end

local function pool(g, pid)
    return g:ctx().state.pools[tostring(pid)] or 0
end

local function move(g, pid, from, list)
    local sel = {}
    for _, e in ipairs(list) do
        sel[#sel + 1] = { id = e[1].id, number = e[2] }
    end
    return g:order(pid, from, "Move", { Planet = { selection = sel } })
end

local function colonize(g, pid, from, list)
    local sel = {}
    for _, e in ipairs(list) do
        sel[#sel + 1] = { id = e[1].id, number = e[2] }
    end
    return g:order(pid, from, "Colonize", { Planet = { selection = sel } })
end

local function reinforce(g, pid, at, n)
    return g:order(pid, at, "Reinforce", { Units = { turns = n } })
end

local function sorted_desc(l)
    local o = { unpack(l) }
    table.sort(o, function(a, b) return a > b end)
    return o
end

-- ------------------------------------------------------------ the boards

local DEFAULT = { Cygnus = { 4, 2 }, Orion = { 6, 3 }, Cassiopeia = { 9, 5 },
                  Cepheus = { 7, 5 }, Draco = { 12, 7 },
                  ["Crux Australis"] = { 4, 2 } }

local g = assert(H.new_game({ risk_debug_random_seed = 11 },
                            { ruleset = "risk" }))
t.is(#g:objects("Planet"), 42, "default map: 42 territories (planets)")
t.is(#g:objects("Star System"), 42, "... each in its own star system")
t.is(#g:objects("Wormhole"), 76, "... 76 wormholes")
local degree, symmetric = 0, true
for _, p in ipairs(g:objects("Planet")) do
    degree = degree + #p.data.adjacent
    for _, id in ipairs(p.data.adjacent) do
        local found = false
        for _, back in ipairs(g:object(id).data.adjacent) do
            found = found or back == p.id
        end
        symmetric = symmetric and found
    end
    if g:object(p.parent).name ~= p.name .. " System" then
        symmetric = false
    end
end
t.is(degree, 152, "the adjacency lists hold each of the 76 links twice")
t.ok(symmetric, "adjacency is symmetric; systems are named '<name> System'")
local cons = {}
for _, c in ipairs(g:objects("Constellation")) do
    local n = 0
    for _, sid in ipairs(c.children) do
        if g:object(sid).type == g:ctx().types["Star System"] then
            n = n + 1
        end
    end
    cons[c.name] = { n, c.data.bonus }
end
for name, want in pairs(DEFAULT) do
    t.ok(cons[name] and cons[name][1] == want[1] and cons[name][2] == want[2],
         string.format("%s: %d territories, bonus %d", name, want[1],
                       want[2]))
end
t.ok(cons.Wormholes and cons.Wormholes[2] == 0,
     "the pseudo-constellation Wormholes (bonus 0) holds the wormholes")
local wh = g:objects("Wormhole")[1]
t.is(g:object(wh.parent).name, "Wormholes", "... a wormhole's parent")
t.ok(wh.name:match("^.+ System to .+ System$") ~= nil,
     "a wormhole is named '<system A> to <system B>': " .. wh.name)
t.is(g:object(0).data.turn, 0, "the Year starts at 0")
g:close()

local TEST_LINKS = {
    { "Deneb", "Sadr" }, { "Deneb", "Gienah Cygni" },
    { "Sadr", "Gienah Cygni" }, { "Sadr", "Albireo" },
    { "Albireo", "Gienah Cygni" }, { "Betelgeuse", "Bellatrix" },
    { "Betelgeuse", "Alnitak" }, { "Bellatrix", "Mintaka" },
    { "Mintaka", "Alnitak" }, { "Mintaka", "Rigel" }, { "Alnitak", "Saiph" },
    { "Saiph", "Rigel" }, { "Betelgeuse", "Sadr" } }

local function check_test_map(map_name)
    local x = assert(H.new_game({ risk_map = map_name,
                                  risk_debug_random_seed = 3 },
                                { ruleset = "risk" }))
    t.is(#x:objects("Planet"), 10, map_name .. ": 10 territories")
    t.is(#x:objects("Wormhole"), 13, map_name .. ": 13 wormholes")
    local all = true
    for _, l in ipairs(TEST_LINKS) do
        local a, b = planet(x, l[1]), planet(x, l[2])
        local found = false
        for _, id in ipairs(a.data.adjacent) do
            found = found or id == b.id
        end
        all = all and found
    end
    t.ok(all, map_name .. ": every link of the notes is there")
    local bonus = {}
    for _, c in ipairs(x:objects("Constellation")) do
        bonus[c.name] = { #c.children, c.data.bonus }
    end
    t.ok(bonus.Cygnus[1] == 4 and bonus.Cygnus[2] == 2 and
         bonus.Orion[1] == 6 and bonus.Orion[2] == 3,
         map_name .. ": Cygnus 4 territories bonus 2, Orion 6 bonus 3")
    t.is(x:object(planet(x, "Gienah Cygni").parent).name,
         "Gienah Cygni System", map_name .. ": names with spaces")
    x:close()
end
check_test_map("test")
check_test_map("test.svg")

local maps = (function()
    local x = assert(H.new_game({ risk_map = "test" }, { ruleset = "risk" }))
    local m = x:ms().maps
    x:close()
    return m
end)()
t.is(maps.svg_name("Barnard_s_Star"), "Barnard's Star", "SVG id: _s_ is 's")
t.is(maps.svg_name("Kapteyn_s"), "Kapteyn's", "SVG id: a final _s is 's")
t.is(maps.svg_name("Gienah_Cygni"), "Gienah Cygni", "SVG id: _ is a space")
local bad = H.new_game({ risk_map = "nosuchmap" }, { ruleset = "risk" })
t.ok(bad == nil, "a map file that cannot be read stops the game from "
     .. "starting (no silent fallback)")

-- ------------------------------------------------------------ players

g = assert(H.new_game({ risk_debug_random_seed = 21, max_players = 3 },
                      { ruleset = "risk" }))
-- The draws of the notes: for each of floor(42 / 3) = 14 territories,
-- range(0, free - 1) among the unowned planets in ascending id.
local gen = MT.from_state(g:ctx().state.rng)
local free = {}
for _, p in ipairs(g:objects("Planet")) do
    free[#free + 1] = p.id
end
local want_alice = {}
for _ = 1, 14 do
    local i = gen:range(0, #free - 1) + 1
    want_alice[free[i]] = true
    table.remove(free, i)
end
local alice = g:join("alice")
local got = g:objects("Planet", alice.id)
local same = #got == 14
for _, p in ipairs(got) do
    same = same and want_alice[p.id] and p.data.armies == 3
end
t.ok(same, "alice gets floor(42 / 3) = 14 random territories with 3 armies "
     .. "each, drawn as the notes say")
t.is(pool(g, alice.id), 30, "... and a pool of 30")
local bob, carol = g:join("bob"), g:join("carol")
t.is(#g:objects("Planet", carol.id), 14, "carol gets 14 too")
local ok, why = g.rs.join_allowed(g:ctx(), "dave")
t.ok(not ok and find(why, "full"), "a fourth player is refused (max 3)",
     why)
t.ok(g.rs.join_allowed(g:ctx(), "guest"), "a player named guest may join")
local guest = g:join("guest")
t.is(#g:objects("Planet", guest.id), 0, "... and gets nothing")
t.is(pool(g, guest.id), 0, "... not even a pool")
ok, why = g.rs.join_allowed(g:ctx(), "erin")
t.ok(not ok, "the board is full: no one else")
t.is(#g:new_messages(alice.id, "Welcome to Risk"), 1, "welcome message")

-- ------------------------------------------------------------ orders

local mine = g:objects("Planet", alice.id)
local a1 = mine[1]
local q = g:queue(a1)
t.is(#q.allowed, 2, "random assignment: Reinforce and Move only")
ok, why = colonize(g, alice.id, a1, {})
t.ok(not ok and find(fail_text(ok, why), "Colonize is off"),
     "Colonize refused, and the Fail says colonising is off",
     fail_text(ok, why))
local far
for _, p in ipairs(g:objects("Planet")) do
    local adj = false
    for _, id in ipairs(a1.data.adjacent) do
        adj = adj or id == p.id
    end
    if not adj and p.id ~= a1.id then
        far = p
        break
    end
end
ok, why = move(g, alice.id, a1, { { far, 1 } })
t.ok(not ok and find(fail_text(ok, why), "not linked"),
     "Move to a planet with no wormhole is refused", fail_text(ok, why))
ok, why = move(g, alice.id, a1, { { g:object(a1.data.adjacent[1]), 33 } })
t.ok(not ok and find(fail_text(ok, why), "At most 32"),
     "Move of more than armies + pool - 1 (32) is refused",
     fail_text(ok, why))
ok, why = reinforce(g, alice.id, a1, 31)
t.ok(not ok and find(fail_text(ok, why), "only 30"),
     "Reinforce beyond the pool is refused", fail_text(ok, why))
ok, why = reinforce(g, bob.id, a1, 1)
t.ok(not ok, "bob cannot order alice's planet")
t.ok(reinforce(g, alice.id, a1, 5), "Reinforce 5 accepted")
g:end_turn()
t.is(a1.data.armies, 8, "Reinforce placed 5 armies: 8")
-- 14 territories: 1 x floor(14 / 3) = 4, no whole constellation assumed.
local whole = false
for _, c in ipairs(g:objects("Constellation")) do
    if c.name ~= "Wormholes" then
        local all = true
        for _, sid in ipairs(c.children) do
            local s = g:object(sid)
            all = all and g:object(s.children[1]).owner == alice.id
        end
        whole = whole or all
    end
end
if not whole then
    t.is(pool(g, alice.id), 25 + 4, "pool 30 - 5 + floor(14 / 3)")
else
    t.ok(true, "(alice holds a whole constellation by chance)")
end
t.is(a1.data.resources[1].minable, pool(g, alice.id),
     "the Army display's maximum is the owner's pool")
t.is(g:object(0).data.turn, 1, "the Year is 1")
t.is(g.unmarked, 0, "every change was marked")
g:close()

-- ------------------------------------------------------------ combat

-- The test map, two players; every planet set up by hand.
local function duel(settings)
    settings.risk_map = "test"
    settings.risk_debug_random_seed = settings.risk_debug_random_seed or 7
    settings.max_players = 2
    local x = assert(H.new_game(settings, { ruleset = "risk" }))
    local pa, pb = x:join("alice"), x:join("bob")
    for _, p in ipairs(x:objects("Planet")) do
        put(x, p, p.data.constellation == x:objects("Constellation")[1].id
                  and pa.id or pb.id, 2)
    end
    return x, pa, pb
end

-- One exchange as the notes say: attacker dice min(3, floor((A - 1) /
-- dmg), n), defender floor(D / dmg) >= 3 and 2 or 1 (+1 for a Move
-- back with more than 1 army); range(1, 6) each, attacker first.
local function expect(gen2, A, D, n, dmg, back)
    local na = math.min(3, math.floor((A - 1) / dmg), n)
    local nd = math.floor(D / dmg) >= 3 and 2 or 1
    if back and D > 1 then
        nd = nd + 1
    end
    local ad, dd = {}, {}
    for i = 1, na do ad[i] = gen2:range(1, 6) end
    for i = 1, nd do dd[i] = gen2:range(1, 6) end
    local sa, sd = sorted_desc(ad), sorted_desc(dd)
    local al, dl, tie = 0, 0, false
    for i = 1, math.min(na, nd) do
        if sa[i] > sd[i] then dl = dl + dmg else al = al + dmg end
        tie = tie or sa[i] == sd[i]
    end
    dl, al = math.min(dl, D), math.min(al, n)
    return { na = na, nd = nd, al = al, dl = dl, tie = tie }
end

-- The first seed whose exchange holds a tie (ties go to the defender).
local x, pa, pb, sadr, bet, e
for seed = 1, 60 do
    x, pa, pb = duel { risk_debug_random_seed = seed }
    sadr, bet = planet(x, "Sadr"), planet(x, "Betelgeuse")
    put(x, sadr, pa.id, 6)
    put(x, bet, pb.id, 4)
    gen = MT.from_state(x:ctx().state.rng)
    e = expect(gen, 6, 4, 4, 1, false)
    if e.tie or seed == 60 then
        break
    end
    x:close()
end
t.ok(e.tie, "(an exchange with a tie found)")
t.ok(move(x, pa.id, sadr, { { bet, 4 } }), "alice attacks Betelgeuse with 4")
x:end_turn()
t.is(e.na .. "/" .. e.nd, "3/2", "(3 attacking dice against 2)")
t.is(bet.data.armies, 4 - e.dl, "defender lost " .. e.dl)
t.is(sadr.data.armies, 6 - e.al, "attacker lost " .. e.al
     .. " (from the origin)")
t.is(bet.owner, pb.id, "Betelgeuse is still bob's")
t.is(#x:new_messages(pb.id, "You have been attacked!"), 1,
     "bob: You have been attacked!")
local m = x:new_messages(pa.id, "Move order(s) via Sadr")[1]
t.ok(m and find(m.body, "Battle log:"), "alice's report links the battle",
     m and m.body)
t.ok(x:ctx().state.rng.mti == gen.i, "no other draws were made")

-- A counter-move adds a defending die; dmg 2 halves the dice.
put(x, sadr, pa.id, 7)
put(x, bet, pb.id, 6)
t.ok(move(x, pa.id, sadr, { { bet, 6 } }), "alice attacks again with 6")
t.ok(move(x, pb.id, bet, { { sadr, 2 } }), "bob's Betelgeuse moves back at "
     .. "Sadr")
gen = MT.from_state(x:ctx().state.rng)
t.ok(sadr.id < bet.id, "(Sadr moves first: the lower id)")
e = expect(gen, 7, 6, 6, 1, true)
-- Then Betelgeuse's own Move (its Move back is done with Sadr's gone from
-- the queue: no extra die for Sadr) attacks with min(2, armies - 1).
local b_left, s_left = 6 - e.dl, 7 - e.al
local n2 = math.min(2, b_left - 1)
local e2 = expect(gen, b_left, s_left, n2, 1, false)
x:end_turn()
t.is(e.nd, 3, "the counter-move gives the defender a third die")
t.is(bet.data.armies, b_left - e2.al, "Betelgeuse: lost " .. e.dl
     .. " defending, " .. e2.al .. " attacking back")
t.is(sadr.data.armies, s_left - e2.dl, "Sadr: lost " .. e.al
     .. " attacking, " .. e2.dl .. " defending")
t.ok(x:ctx().state.rng.mti == gen.i, "two exchanges drawn, no more")
t.is(#x:new_messages(pb.id, "You have been attacked!"), 1,
     "one attack on bob")
t.is(#x:new_messages(pa.id, "You have been attacked!"), 1,
     "one attack on alice")
x:close()

x, pa, pb = duel { risk_attack_dmg = 2 }
sadr, bet = planet(x, "Sadr"), planet(x, "Betelgeuse")
put(x, sadr, pa.id, 5)
put(x, bet, pb.id, 5)
move(x, pa.id, sadr, { { bet, 4 } })
gen = MT.from_state(x:ctx().state.rng)
e = expect(gen, 5, 5, 4, 2, false)
x:end_turn()
t.is(e.na .. "/" .. e.nd, "2/1", "dmg 2: floor(4 / 2) = 2 dice against 1")
t.is(bet.data.armies, 5 - e.dl, "dmg 2: defender lost " .. e.dl)
t.is(sadr.data.armies, 5 - e.al, "dmg 2: attacker lost " .. e.al)
t.ok(x:ctx().state.rng.mti == gen.i, "dmg 2: 3 dice drawn, no more")
x:close()

-- Conquest: 1 defender against 3 dice; replay seeds until one conquers.
local conquered = false
for seed = 1, 20 do
    x, pa, pb = duel { risk_debug_random_seed = seed }
    sadr, bet = planet(x, "Sadr"), planet(x, "Betelgeuse")
    put(x, sadr, pa.id, 10)
    put(x, bet, pb.id, 1)
    move(x, pa.id, bet, { { sadr, 1 } })        -- bob's queued order
    move(x, pa.id, sadr, { { bet, 5 } })
    gen = MT.from_state(x:ctx().state.rng)
    e = expect(gen, 10, 1, 5, 1, false)
    x:end_turn()
    if e.dl == 1 then
        t.is(bet.owner, pa.id, "seed " .. seed .. ": Betelgeuse conquered")
        t.is(bet.data.armies, 5, "... by the 5 armies sent (none lost)")
        t.is(sadr.data.armies, 5, "... which left Sadr")
        t.is(#x:queue(bet).orders, 0, "... Betelgeuse's orders cleared")
        t.is(x:queue(bet).owner, pa.id, "... its queue is alice's")
        t.is(bet.data.resources[1].minable, pool(x, pa.id),
             "... its display shows alice's pool")
        conquered = true
        x:close()
        break
    end
    t.is(bet.owner, pb.id, "seed " .. seed .. ": the attack failed, "
         .. "Betelgeuse holds")
    t.is(sadr.data.armies, 9, "... and Sadr lost 1")
    x:close()
end
t.ok(conquered, "a conquest happened within 20 seeds")

-- Two attacks on one planet in a turn: the first empties it without
-- taking it (all attackers lost is impossible with 1 defender, so set
-- the planet to 0 armies, as an attack that killed the last defender and
-- lost every unit would leave it); the next Move takes it without dice.
x, pa, pb = duel {}
sadr, bet = planet(x, "Sadr"), planet(x, "Betelgeuse")
put(x, sadr, pa.id, 4)
put(x, bet, pb.id, 0)
move(x, pa.id, sadr, { { bet, 2 } })
local before = H.copy(x:ctx().state.rng)
x:end_turn()
t.is(bet.owner, pa.id, "an enemy planet with 0 armies is taken without dice")
t.is(bet.data.armies, 2, "... by the 2 armies sent")
t.is(sadr.data.armies, 2, "... which left Sadr")
t.ok(H.same(before, x:ctx().state.rng), "... no die was drawn")
x:close()

-- Moves to own and unowned planets, the army that stays, 0 armies.
x, pa, pb = duel {}
local deneb, gienah, alb = planet(x, "Deneb"), planet(x, "Gienah Cygni"),
                           planet(x, "Albireo")
sadr = planet(x, "Sadr")
put(x, deneb, pa.id, 5)
put(x, gienah, 0, 0)
put(x, alb, pa.id, 1)
t.ok(move(x, pa.id, deneb, { { sadr, 2 }, { gienah, 9 } }),
     "Move 2 to own Sadr and 9 to unowned Gienah Cygni")
t.ok(move(x, pa.id, alb, { { sadr, 1 } }), "Move 1 off a 1-army planet "
     .. "(accepted: the pool counts)")
x:end_turn()
t.is(sadr.data.armies, 4, "Sadr 2 + 2")
t.is(gienah.owner, pa.id, "Gienah Cygni occupied")
t.is(gienah.data.armies, 2, "... by armies - 1 = 2 (9 clamped)")
t.is(deneb.data.armies, 1, "one army stays on Deneb")
t.is(alb.data.armies, 1, "Albireo sent nothing (one always stays)")
put(x, alb, pa.id, 0)
x:end_turn()
t.is(alb.owner, 0, "a planet with 0 armies becomes unowned")
t.is(x:queue(alb).owner, 0, "... with its queue")
x:close()

-- Phases by type: every Reinforce before every Move, whatever the order
-- in a queue or the planets' ids.
x, pa, pb = duel {}
deneb, sadr = planet(x, "Deneb"), planet(x, "Sadr")
put(x, deneb, pa.id, 1)
put(x, sadr, pa.id, 1)
t.ok(deneb.id < sadr.id, "(Deneb has the lower id)")
move(x, pa.id, deneb, { { sadr, 4 } })      -- Deneb: Move, then Reinforce
reinforce(x, pa.id, deneb, 5)
reinforce(x, pa.id, sadr, 3)                -- Sadr: Reinforce, then Move
move(x, pa.id, sadr, { { deneb, 3 } })
x:end_turn()
-- Reinforce phase: Sadr +3 = 4 (Deneb's Reinforce is not leading).
-- Move phase: Deneb (1 army) sends nothing; Sadr sends min(3, 4 - 1) = 3.
-- Rest: Deneb's Reinforce +5.  Deneb 1 + 3 + 5 = 9, Sadr 1.
t.is(deneb.data.armies, 9, "Deneb: its Move ran with 1 army (nothing), "
     .. "then Sadr's 3 and its own Reinforce 5 arrived: 9")
t.is(sadr.data.armies, 1, "Sadr: reinforced to 4 before moving 3: 1")
x:close()

-- ------------------------------------------------------------ bidding

local function bidders(seed)
    local y = assert(H.new_game({ risk_map = "test", max_players = 4,
        risk_randomly_assign = false, risk_debug_random_seed = seed },
        { ruleset = "risk" }))
    local ps = y:join_many { "alice", "bob", "carol" }
    return y, ps
end
local y, ps = bidders(5)
local homes = {}
for i, p in ipairs(ps) do
    homes[i] = y:objects("Planet", p.id)
    t.ok(#homes[i] == 1 and homes[i][1].data.armies == 3,
         p.name .. ": one random planet, 3 armies")
    homes[i] = homes[i][1]
end
t.is(#y:queue(homes[1]).allowed, 3, "colonising on: Colonize, Reinforce, "
     .. "Move")
local targets = y:objects("Planet")
local free_list = {}
for _, p in ipairs(targets) do
    if p.owner == 0 then
        free_list[#free_list + 1] = p
    end
end
t.is(#free_list, 7, "7 planets unowned")
put(y, homes[1], ps[1].id, 10)
put(y, homes[2], ps[2].id, 8)
put(y, homes[3], ps[3].id, 3)
local X, Y, Z, W = free_list[1], free_list[2], free_list[3], free_list[4]
ok, why = colonize(y, ps[1].id, homes[1], { { homes[2], 1 } })
t.ok(not ok and find(fail_text(ok, why), "already owned"),
     "a bid for an owned planet is refused", fail_text(ok, why))
t.ok(colonize(y, ps[1].id, homes[1], { { X, 5 }, { W, 4 } }),
     "alice bids 5 for X, 4 for W")
t.ok(colonize(y, ps[2].id, homes[2], { { X, 7 }, { W, 4 } }),
     "bob bids 7 for X, 4 for W")
-- carol: three 1-army bids from a 3-army planet (the reference crashes).
t.ok(colonize(y, ps[3].id, homes[3], { { Y, 1 }, { Z, 1 } }),
     "carol bids 1 for Y and Z")
t.ok(colonize(y, ps[3].id, homes[3], { { W, 1 } }), "... and 1 for W")
y:end_turn()
t.is(X.owner, ps[2].id, "X: bob's 7 beats alice's 5")
t.is(X.data.armies, 7, "... X holds the 7 bid")
-- W: alice 4, bob 4 (bob has 8 - 7 = 1 left: clamped to 0), carol 1.
t.is(W.owner, ps[1].id, "W: alice's 4 wins (bob's bid clamped to 0)")
t.is(W.data.armies, 4, "... W holds 4")
t.is(Y.owner, ps[3].id, "Y: carol's 1")
t.is(Z.owner, ps[3].id, "Z: carol's 1")
t.is(homes[3].data.armies, 1, "carol's planet keeps 1 (3 - 1 - 1)")
t.is(homes[1].data.armies, 6, "alice 10 - 4")
t.is(homes[2].data.armies, 1, "bob 8 - 7")
t.is(#y:new_messages(ps[1].id, "Colonize bid rejected"), 1,
     "alice: one bid rejected")
t.is(#y:new_messages(ps[1].id, "Colonize bid accepted"), 1,
     "alice: one bid accepted")
t.is(#y:new_messages(ps[3].id, "Colonize bid rejected"), 1,
     "carol: the W bid rejected")
y:close()

-- A Colonize behind a Reinforce waits for phase 4 and is a bid alone;
-- empty orders are accepted and do nothing.
y, ps = bidders(8)
for i, p in ipairs(ps) do
    homes[i] = y:objects("Planet", p.id)[1]
    put(y, homes[i], p.id, 5)
end
free_list = {}
for _, p in ipairs(y:objects("Planet")) do
    if p.owner == 0 then free_list[#free_list + 1] = p end
end
t.ok(reinforce(y, ps[1].id, homes[1], 2), "alice: Reinforce 2, then")
t.ok(colonize(y, ps[1].id, homes[1], { { free_list[1], 3 },
     { free_list[2], 2 } }), "... Colonize: 3 for a planet, 2 for another")
t.ok(colonize(y, ps[2].id, homes[2], { { free_list[1], 4 } }),
     "bob bids 4 for it too (a leading Colonize)")
t.ok(colonize(y, ps[3].id, homes[3], {}), "an empty Colonize is accepted")
t.ok(move(y, ps[3].id, homes[3], {}), "an empty Move is accepted")
t.ok(reinforce(y, ps[3].id, homes[3], 0), "Reinforce 0 is accepted")
y:end_turn()
t.is(free_list[1].owner, ps[2].id, "phase 1: bob's leading bid takes it")
t.is(free_list[2].owner, ps[1].id, "phase 4: alice's bid alone takes the "
     .. "other")
t.is(free_list[2].data.armies, 2, "... with 2")
t.is(homes[1].data.armies, 5, "alice reinforced (5 + 2), then sent 2")
t.is(#y:new_messages(ps[1].id, "Colonize bid rejected"), 1,
     "... her late bid for bob's planet found it owned: rejected")
t.is(homes[3].data.armies, 5, "the empty orders did nothing")
t.is(#y:queue(homes[3]).orders, 0, "... and are done")
t.is(y.unmarked, 0, "every change was marked")
y:close()

-- A tie: the lower planet id wins.
y, ps = bidders(6)
for i, p in ipairs(ps) do
    homes[i] = y:objects("Planet", p.id)[1]
    put(y, homes[i], p.id, 5)
end
free_list = {}
for _, p in ipairs(y:objects("Planet")) do
    if p.owner == 0 then free_list[#free_list + 1] = p end
end
colonize(y, ps[1].id, homes[1], { { free_list[1], 3 } })
colonize(y, ps[2].id, homes[2], { { free_list[1], 3 } })
local low = homes[1].id < homes[2].id and ps[1] or ps[2]
y:end_turn()
t.is(free_list[1].owner, low.id, "a tie goes to the lower planet id")
-- Everything claimed: Colonize closes, the Fail says so.
for _, p in ipairs(y:objects("Planet")) do
    if p.owner == 0 then put(y, p, ps[3].id, 1) end
end
y:end_turn()
t.is(#y:queue(homes[1]).allowed, 2, "board claimed: Colonize no longer "
     .. "allowed")
ok, why = colonize(y, ps[1].id, homes[1], { { homes[2], 1 } })
t.ok(not ok and find(fail_text(ok, why), "every territory is owned"),
     "... and its Fail says every territory is owned", fail_text(ok, why))
ok, why = y.rs.join_allowed(y:ctx(), "dave")
t.ok(not ok and find(why, "Every territory is owned"), "3 of 4 players, "
     .. "but no territory left: a fourth is refused", why)
t.ok(y.rs.join_allowed(y:ctx(), "guest"), "... a guest is not")
t.is(y.rs.turn_name(y:ctx(), 2), "Reinforce, Move", "the turn's name "
     .. "drops Colonize")
y:close()

-- ------------------------------------------------------------ reinforcements

x, pa, pb = duel { risk_rfc_rate = 2, risk_rfc_number = 3 }
-- alice: Cygnus (4) + Betelgeuse; bob: the 5 other Orion planets.
put(x, planet(x, "Betelgeuse"), pa.id, 2)
set_pool(x, pa.id, 0)
set_pool(x, pb.id, 0)
x:end_turn()
t.is(pool(x, pa.id), 3 * math.floor(5 / 2) + 2,
     "alice: 3 x floor(5 / 2) + Cygnus 2 = 8")
t.is(pool(x, pb.id), 3 * math.floor(5 / 2), "bob: 3 x floor(5 / 2) = 6, "
     .. "no bonus (Orion not whole)")
local rm = x:new_messages(pa.id, "Reinforcements")[1]
t.ok(rm and find(rm.body, "Cygnus"), "the message names the bonus",
     rm and rm.body)
x:close()

-- ------------------------------------------------------------ the end

x, pa, pb = duel {}
for _, p in ipairs(x:objects("Planet")) do
    if p.owner == pb.id then put(x, p, pa.id, 2) end
end
put(x, planet(x, "Rigel"), pb.id, 0)     -- bob's last planet, empty
x:end_turn()
t.ok(x:ctx().state.game_over, "bob's last planet emptied: game over")
t.is(x:player(pb.id).alive, false, "bob is dead")
t.is(x:player(pa.id).score, 9, "alice's score: 9 territories (Rigel "
     .. "went unowned)")
t.is(#x:new_messages(pb.id, "Game over!"), 1, "Game over! to bob")
t.is(#x:new_messages(pa.id, "Game over!"), 1, "... and to alice")
t.ok(x.rs.game_over(x:ctx()), "game_over hook: true")
local deneb2 = planet(x, "Deneb")
t.is(#x:queue(deneb2).allowed, 0, "no orders once the game is over")
ok, why = move(x, pa.id, deneb2, { { planet(x, "Sadr"), 1 } })
-- (The server refuses every change once the game is over, before Risk's
-- own check: tp.dispatch.)
t.ok(not ok and find(fail_text(ok, why):lower(), "the game is over"),
     "a Move's Fail says the game is over", fail_text(ok, why))
t.ok(not x.rs.join_allowed(x:ctx(), "late"), "no joining after the end")
-- The server stops the game there (tp.turn): no turn ends any more.
t.ok(not x:end_turn(), "no turn ends once the game is over")
t.is(#x:new_messages(pa.id, "Game over!"), 1,
     "Game over! is not repeated")
t.is(x:object(0).data.turn, 1, "the Year stays")
t.is(x.unmarked, 0, "every change was marked")
x:close()

x, pa, pb = duel { game_length = 2 }
local pc = x:join("carol")
put(x, planet(x, "Rigel"), pc.id, 2)
put(x, planet(x, "Saiph"), pc.id, 2)
x:end_turn()
t.ok(not x:ctx().state.game_over, "turn 1 of 2: going on")
x:end_turn()
-- alice 4, bob 4 (6 Orion - 2), carol 2: alice and bob share the win.
t.ok(x:ctx().state.game_over, "turn 2 = game_length: game over")
local w = x:ctx().state.winners
t.ok(#w == 2 and w[1] == pa.id and w[2] == pb.id,
     "alice and bob (4 territories each) share the win over carol (2)")
local go = x:new_messages(pc.id, "Game over!")[1]
t.ok(go and find(go.body, "alice and bob share the win"), "carol is told",
     go and go.body)
x:close()

-- ------------------------------------------------------------ restart

-- The same game twice: one runs on, one is reopened (as a restarted
-- server) with its orders queued; the next turn is the same.
local function scripted(restart)
    local z = assert(H.new_game({ risk_debug_random_seed = 99,
                                  max_players = 3 }, { ruleset = "risk" }))
    local zs = z:join_many { "alice", "bob", "carol" }
    z:end_turn()
    for _, pl in ipairs(zs) do
        for _, p in ipairs(z:objects("Planet", pl.id)) do
            for _, id in ipairs(p.data.adjacent) do
                local tgt = z:object(id)
                if tgt.owner ~= pl.id then
                    reinforce(z, pl.id, p, 2)
                    move(z, pl.id, p, { { tgt, 4 } })
                    break
                end
            end
        end
    end
    if restart then
        z:reopen()
    end
    z:end_turn()
    local snap = H.copy(z:snapshot())
    local st = H.copy(z:ctx().state)
    local msgs = #z:messages(zs[1].id)
    z:close()
    return snap, st, msgs
end
local s1, st1, m1 = scripted(false)
local s2, st2, m2 = scripted(true)
local same_objs, where = H.same(s1, s2)
t.ok(same_objs, "restart mid-game: the same objects after the next turn",
     where)
t.ok(H.same(st1, st2), "... the same state (pools, generator)")
t.is(m2, m1, "... the same messages")
t.ok(st1.pools["1"] ~= 32 + 0, "(the turn did something: alice's pool "
     .. st1.pools["1"] .. ")")

return t.done()
