-- TaE in-process tests, against values worked out here from the notes
-- (tae.md): the board from its data file (squares, markers, positions,
-- the first regions), the bag drawn with the test's own MT19937, every
-- order in and out of its turn (through the server's OrderInsert
-- handler), the two-action limit, colony scoring (matching leader and
-- the Government Official), an internal and an external conflict over
-- combat turns, the artifact award, and the final "weakest category"
-- score with its tie-break.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local model = require "tp.model"

-- ------------------------------------------------------------ MT19937

local MT = dofile(TP_HOME .. "/tests/lua/mt19937.lua")

-- The bag as the notes draw from it: a type 0-3, redrawn when exhausted.
local function draw(gen, bag)
    local n = 0
    for i = 1, 4 do
        n = n + bag[i]
    end
    if n == 0 then
        return nil
    end
    while true do
        local k = gen:range(0, 3) + 1
        if bag[k] > 0 then
            bag[k] = bag[k] - 1
            return k
        end
    end
end

-- ------------------------------------------------------------ the board

local BOARD = {
    "....MMMMM.A.M...",
    ".A..M.......M..A",
    "...MMA......MM..",
    "MMMM.........MMM",
    ".............AMM",
    "..............M.",
    "MMMM....A...MMM.",
    ".A.MMMM.....M...",
    "......MMMMMMM.A.",
    ".....A..........",
    "..........A.....",
}
local W, HT = 16, 11
local function cell(c, r)
    local line = BOARD[HT - r]
    return line:sub(c + 1, c + 1)
end

local UNIN, DESTROYED, ARTIFACT = 1, 2, 3
local MONEY, TECH, PEOPLE, RAW = 4, 5, 6, 7
local MERCHANT, SCIENTIST, SETTLER, MINING = 1, 2, 3, 4

local g

local function sq(c, r)
    return g:find(c .. ", " .. r)
end

local function markers(s)
    local out = {}
    for _, m in ipairs(g:object(s.data.planet).data.resources) do
        out[m.resource] = true
    end
    return out
end

local function leader_on(s)
    for _, id in ipairs(s.children) do
        local o = g:object(id)
        if o.type == 4 then
            return o
        end
    end
end

local function rebuild()
    g:ms().board.rebuild(g:ctx())
    g:commit()
end

local function put(s, id)
    local p = g:object(s.data.planet)
    table.insert(p.data.resources, { resource = id, stored = 1, minable = 0,
                                     unavailable = 0 })
    g:set(p, {})
    rebuild()
end

local function place(l, s)
    local ctx = g:ctx()
    ctx:set_parent(l, s)
    l.pos = { x = s.pos.x, y = s.pos.y, z = 0 }
    ctx:changed(l)
    g:commit()
    rebuild()
end

-- The regions as the notes make them, worked out here: connected squares
-- with a colony or a leader (pending squares left out), id = lowest id.
local function expected_regions(skip)
    local member = {}
    for r = 0, HT - 1 do
        for c = 0, W - 1 do
            local s = sq(c, r)
            local m = markers(s)
            if not (skip and skip[s.id]) and
               (m[MONEY] or m[TECH] or m[PEOPLE] or m[RAW] or
                leader_on(s)) then
                member[c .. "," .. r] = s
            end
        end
    end
    local region = {}
    for r = 0, HT - 1 do
        for c = 0, W - 1 do
            local s = member[c .. "," .. r]
            if s and not region[s.id] then
                local comp, todo = {}, { { c, r } }
                region[s.id] = true
                while #todo > 0 do
                    local p = table.remove(todo)
                    local ps = member[p[1] .. "," .. p[2]]
                    comp[#comp + 1] = ps
                    for _, d in ipairs { { 1, 0 }, { -1, 0 }, { 0, 1 },
                                         { 0, -1 } } do
                        local n = member[(p[1] + d[1]) .. "," .. (p[2] + d[2])]
                        if n and not region[n.id] then
                            region[n.id] = true
                            todo[#todo + 1] = { p[1] + d[1], p[2] + d[2] }
                        end
                    end
                end
                local low = math.huge
                for _, x in ipairs(comp) do
                    low = math.min(low, x.id)
                end
                for _, x in ipairs(comp) do
                    region[x.id] = low
                end
            end
        end
    end
    return region
end

local function regions_match(skip)
    local want = expected_regions(skip)
    for r = 0, HT - 1 do
        for c = 0, W - 1 do
            local s = sq(c, r)
            if s.data.region ~= (want[s.id] or 0) then
                return false, string.format("%s: region %d, want %d", s.name,
                                            s.data.region, want[s.id] or 0)
            end
        end
    end
    return true
end

local function fleet(pid, kind, ptype, skip)
    for _, f in ipairs(g:objects("Fleet", pid)) do
        if f.data.kind == kind and (not ptype or f.data.ptype == ptype) and
           not (skip and skip[f.id]) then
            return f
        end
    end
end

local function fleets(pid, kind, ptype)
    local out = {}
    for _, f in ipairs(g:objects("Fleet", pid)) do
        if f.data.kind == kind and (not ptype or f.data.ptype == ptype) then
            out[#out + 1] = f
        end
    end
    return out
end

local function target(s)
    return { ["Star System"] = { objectid = s.id } }
end

local function fail_text(ok, e)
    if ok then
        return nil
    end
    return type(e) == "table" and e.message or tostring(e)
end

local function refused(r, words, name)
    local msg = fail_text(r[1], r[2])
    return t.ok(msg ~= nil and msg:find(words, 1, true) ~= nil, name,
                tostring(msg))
end

local function scores(pid)
    return g:ctx().state.players[tostring(pid)].scores
end

local function allowed_names(obj)
    local q = g:queue(obj)
    local types = require "tp.types"
    local out = {}
    for _, id in ipairs(q.allowed) do
        out[#out + 1] = types.orders[id].name
    end
    table.sort(out)
    return table.concat(out, ",")
end

-- ============================================================ game 1

local SEED = 1
g = assert(H.new_game({ random_seed = SEED }, { ruleset = "tae" }))
local alice, bob, carol = g:join("alice"), g:join("bob"), g:join("carol")

-- The board: 176 squares from board.txt, their markers and positions.
do
    local bad, count, arts, unin = {}, 0, 0, 0
    for r = 0, HT - 1 do
        for c = 0, W - 1 do
            local s = sq(c, r)
            count = count + (s and 1 or 0)
            if s then
                local m, ch = markers(s), cell(c, r)
                local p = g:object(s.data.planet)
                local want_inh = ch == "M" and 0 or 1
                if s.data.inhabitable ~= want_inh or
                   (m[UNIN] or false) ~= (ch == "M") or
                   (m[ARTIFACT] or false) ~= (ch == "A") or
                   (m[TECH] or false) ~= (ch == "A") or
                   s.pos.x ~= 1 + 80000 * c or s.pos.y ~= 1 + 80000 * (r + 1)
                   or s.size ~= 60000 or p.name ~= "Planet " .. c .. ", " .. r
                   or p.parent ~= s.id or s.data.destroyed ~= 0 then
                    bad[#bad + 1] = s.name
                end
                if ch == "A" then
                    arts = arts + 1
                    if s.data.region ~= s.id then
                        bad[#bad + 1] = s.name .. " region"
                    end
                elseif ch == "M" then
                    unin = unin + 1
                end
            end
        end
    end
    t.is(count, 176, "board.txt gives 16 x 11 = 176 squares")
    t.is(#g:objects("Star System"), 176 + 3, "... plus one home system a "
         .. "player")
    t.is(#g:objects("Planet"), 176 + 3, "a planet a square and a home "
         .. "planet a player")
    t.is(arts, 10, "10 artifact squares")
    t.is(unin, 41, "41 uninhabitable squares")
    t.ok(#bad == 0, "every square's markers, inhabitable flag, position, "
         .. "planet, and each artifact square a region of its own",
         table.concat(bad, "; "))
    local ok, why = regions_match()
    t.ok(ok, "the first regions are the artifact temples", why)
    local home = g:find("alice's System")
    t.ok(home and home.pos.x == 1 + 80000 * alice.id and home.pos.y == 1 and
         home.data.destroyed == 1, "alice's home system below the board, "
         .. "destroyed")
    t.is(g:object(0).data.year, 0, "Year 0")
end

-- Fleets and the bag, drawn with the test's MT19937.
local gen = MT.new(SEED)
local bag = { 30, 57, 30, 36 }
do
    local bad = {}
    for _, p in ipairs { alice, bob, carol } do
        local col = fleets(p.id, "colonist")
        if #col ~= 6 then
            bad[#bad + 1] = p.name .. " has " .. #col .. " colonists"
        end
        for i = 1, 6 do
            local want = draw(gen, bag)
            if col[i] and col[i].data.ptype ~= want then
                bad[#bad + 1] = string.format("%s's colonist %d: %s, want %d",
                    p.name, i, tostring(col[i].data.ptype), want)
            end
        end
        for lt = 1, 4 do
            if #fleets(p.id, "leader", lt) ~= 1 then
                bad[#bad + 1] = p.name .. " leader " .. lt
            end
        end
        if #fleets(p.id, "bomber") ~= 2 then
            bad[#bad + 1] = p.name .. " bombers"
        end
    end
    t.ok(#bad == 0, "6 colonists drawn from the bag with MT19937(seed), 4 "
         .. "leaders and 2 bombers each", table.concat(bad, "; "))
    local st = g:ctx().state.bag
    t.ok(st[1] == bag[1] and st[2] == bag[2] and st[3] == bag[3] and
         st[4] == bag[4], "the bag in the game state holds what is left",
         table.concat(st, ","))
end

-- Designs: a design per fleet; what others see of a colonist ship.
do
    local f = fleet(alice.id, "colonist")
    local d = g:design(f.data.ships[1].design)
    local names = { "MerchantShip", "ScientistShip", "SettlerShip",
                    "MiningShip" }
    t.is(d.name, names[f.data.ptype], "a colonist fleet's own design")
    t.is(g:ctx():property(d, "Passengers"), f.data.ptype,
         "... carrying its type")
    local ctx = g:ctx()
    t.ok(g.rs.design_visible(ctx, alice.id, d) and
         not g.rs.design_visible(ctx, bob.id, d),
         "bob cannot see alice's colonist design")
    local l = fleet(alice.id, "leader", MERCHANT)
    local ld = g:design(l.data.ships[1].design)
    t.ok(ld.name == "MerchantLeaderShip" and
         g.rs.design_visible(ctx, bob.id, ld), "but sees her leader design")
    local ot = require("tp.types").objects[4]
    local seen = ot.groups[4].params[1].get(f, bob.id, ctx)
    t.ok(seen.references[1].id ~= d.id and
         g:design(seen.references[1].id).name == "ColonistShip",
         "bob's view of her colonist fleet names the hidden design")
    t.is(ot.groups[4].params[1].get(f, alice.id, ctx).references[1].id, d.id,
         "alice's names her own")
end

-- ------------------------------------------------------------ turn 0

local a_ml = fleet(alice.id, "leader", MERCHANT)
local c_sl = fleet(carol.id, "leader", SETTLER)
local b_bomb = fleet(bob.id, "bomber")
do
    local ok, e = g:order(alice.id, a_ml, "Move", target(sq(4, 1)))
    t.ok(ok, "Move: alice's merchant leader to 4, 1 (next to the temple at "
         .. "5, 1)", fail_text(ok, e))
    refused({g:order(alice.id, fleet(alice.id, "leader", SCIENTIST), "Move",
                    target(sq(4, 1)))}, "already the target",
            "a second fleet of hers may not target the same square")
    refused({g:order(alice.id, a_ml, "Move", target(sq(3, 1)))},
            "already has its order", "one order a fleet")
    refused({g:order(alice.id, fleet(alice.id, "leader", SETTLER), "Move",
                    target(sq(2, 0)))}, "borders no science colony",
            "Move: the target must border a science colony")
    refused({g:order(alice.id, fleet(alice.id, "leader", SETTLER), "Move",
                    target(sq(5, 1)))}, "already holds a colony",
            "Move: not onto a colony")
    refused({g:order(alice.id, fleet(alice.id, "leader", SETTLER), "Move",
                    target(sq(6, 2)))}, "uninhabitable",
            "Move: not onto an uninhabitable square")
    refused({g:order(alice.id, fleet(alice.id, "leader", SETTLER), "Move",
                    target(g:find("alice's System")))}, "of the board",
            "Move: only squares of the board")
    local mining = fleet(alice.id, "colonist", MINING)
    local other
    for _, f in ipairs(fleets(alice.id, "colonist")) do
        if f.data.ptype ~= MINING then
            other = f
        end
    end
    if mining then
        refused({g:order(alice.id, mining, "Colonize", target(sq(0, 0)))},
                "mining robots: ColonizeMining", "Colonize is refused to "
                .. "mining robots, saying which order they take")
        refused({g:order(alice.id, mining, "ColonizeMining",
                         target(sq(0, 0)))},
                "inhabitable", "ColonizeMining: not an inhabitable square")
    end
    refused({g:order(alice.id, other, "ColonizeMining", target(sq(6, 2)))},
            "ColonizeMining is for mining colonist", "ColonizeMining is "
            .. "refused to other colonists")
    refused({g:order(alice.id, other, "Colonize", target(sq(6, 2)))},
            "only mining robots", "Colonize: not an uninhabitable square")
    refused({g:order(alice.id, other, "Reinforce", {})},
            "Reinforce is only for combat turns", "Reinforce is refused on a "
            .. "normal turn, saying why")
    refused({g:order(alice.id, a_ml, "Attack", target(sq(0, 0)))},
            "Attack is for bomber", "Attack is only for bombers")
    refused({g:order(alice.id, fleet(alice.id, "bomber"), "Colonize",
                    target(sq(0, 0)))}, "Colonize is for merchant",
            "bombers do not Colonize")
    ok, e = g:order(alice.id, other, "Colonize", target(sq(0, 5)))
    t.ok(ok, "Colonize: a second action", fail_text(ok, e))
    refused({g:order(alice.id, fleet(alice.id, "bomber"), "Attack",
                    target(sq(0, 10)))}, "already gave 2 orders",
            "a third order is refused: two actions a turn")
    ok, e = g:order(carol.id, c_sl, "Move", target(sq(9, 0)))
    t.ok(ok, "carol's settler leader to 9, 0", fail_text(ok, e))
    ok, e = g:order(bob.id, b_bomb, "Attack", target(sq(0, 10)))
    t.ok(ok, "bob's bomber attacks 0, 10", fail_text(ok, e))
    -- The probe says the same.
    refused({g:probe(bob.id, fleet(bob.id, "colonist"), "Reinforce", {})},
            "only for combat turns", "OrderProbe gives the same reason")
end
g:end_turn()
t.is(g:turn_number(), 1, "turn 1")
t.is(g:object(0).data.year, 1, "Year 1")
do
    t.is(g:object(a_ml.id).parent, sq(4, 1).id,
         "alice's merchant leader stands on 4, 1")
    local ok, why = regions_match()
    t.ok(ok, "4, 1 joined the temple's region", why)
    t.is(sq(4, 1).data.region, math.min(sq(4, 1).id, sq(5, 1).id),
         "... whose id is the lower square id")
    t.ok(sq(0, 5).data.region == sq(0, 5).id,
         "a colony with no region around starts its own region")
    t.ok(sq(0, 10).data.destroyed == 1 and markers(sq(0, 10))[DESTROYED],
         "the bombed square is destroyed")
    t.is(g:object(b_bomb.id), nil, "the bomber is used up")
    t.is(#fleets(bob.id, "bomber"), 1, "bob has one bomber left")
    t.is(#fleets(alice.id, "colonist"), 6, "alice's colonists topped up to 6")
    -- The top-up draws in the order of play of the turn just made's end:
    -- players in rotation from index 1 (bob, carol, alice); only alice
    -- used a colonist.
    local want = draw(gen, bag)
    local col = fleets(alice.id, "colonist")
    t.is(col[#col].data.ptype, want, "her new colonist's type is the next "
         .. "MT19937 draw")
    local msgs = g:new_messages(bob.id, "Turn Order")
    t.ok(#msgs == 1 and msgs[1].body:find("bob, carol, alice", 1, true),
         "Turn Order: the rotation starts with bob on turn 1",
         msgs[1] and msgs[1].body)
    t.is(#g:new_messages(carol.id, "Turn complete"), 1, "Turn complete")
    refused({g:order(bob.id, fleet(bob.id, "colonist"), "Colonize",
                    target(sq(0, 10)))}, "destroyed",
            "nothing settles a destroyed square")
end

-- ------------------------------------------------------------ scoring

-- A colony next to a region scores for the leader of its kind there, or
-- else for the settler leader (Government Official).
do
    local before = {}
    for _, p in ipairs { alice, bob, carol } do
        before[p.id] = { unpack(scores(p.id)) }
    end
    local bf = fleet(bob.id, "colonist", MERCHANT)
    local cf
    for _, f in ipairs(fleets(carol.id, "colonist")) do
        if f.data.ptype ~= MINING then
            cf = f
        end
    end
    t.ok(bf ~= nil and cf ~= nil, "bob has a merchant colonist and carol a "
         .. "non-mining one (seed " .. SEED .. ")")
    local ok, e = g:order(bob.id, bf, "Colonize", target(sq(4, 0)))
    t.ok(ok, "bob settles merchants at 4, 0 (next to alice's merchant "
         .. "leader's region)", fail_text(ok, e))
    ok, e = g:order(carol.id, cf, "Colonize", target(sq(9, 1)))
    t.ok(ok, "carol settles at 9, 1 next to her settler leader",
         fail_text(ok, e))
    local ctype = cf.data.ptype
    g:end_turn()
    local want_a = { unpack(before[alice.id]) }
    want_a[1] = want_a[1] + 1
    local want_c = { unpack(before[carol.id]) }
    want_c[ctype] = want_c[ctype] + 1
    t.is(table.concat(scores(alice.id), ","), table.concat(want_a, ","),
         "alice's merchant leader scores +1 Money for bob's merchant colony")
    t.is(table.concat(scores(carol.id), ","), table.concat(want_c, ","),
         "carol's settler leader scores the colony of another kind (+1 in "
         .. "its category)")
    t.is(table.concat(scores(bob.id), ","),
         table.concat(before[bob.id], ","), "bob scores nothing")
    local ok2, why = regions_match()
    t.ok(ok2, "both colonies joined their regions", why)
    t.ok(markers(sq(4, 0))[MONEY] and markers(sq(9, 1))[3 + ctype],
         "the colony markers are on the planets")
end

-- ------------------------------------------------------------ internal

-- Turn 2 (rotation from carol: carol, alice, bob): alice's scientist
-- leader goes to 6, 1 and bob's to 5, 0, both in the region of 5, 1.
local a_sl = fleet(alice.id, "leader", SCIENTIST)
local b_sl = fleet(bob.id, "leader", SCIENTIST)
do
    local ok, e = g:order(alice.id, a_sl, "Move", target(sq(6, 1)))
    t.ok(ok, "alice's scientist leader to 6, 1", fail_text(ok, e))
    ok, e = g:order(bob.id, b_sl, "Move", target(sq(5, 0)))
    t.ok(ok, "bob's scientist leader to 5, 0", fail_text(ok, e))
    g:end_turn()
    local c = g:ctx().state.combat
    t.ok(c and c.kind == "internal" and c.players[1] == alice.id and
         c.players[2] == bob.id, "an internal conflict: alice (there first) "
         .. "against bob")
    local function science_around(s)
        local n = 0
        for _, d in ipairs { { 1, 0 }, { -1, 0 }, { 0, 1 }, { 0, -1 } } do
            local x = sq(s.data.col + d[1], s.data.row + d[2])
            if x and markers(x)[TECH] then
                n = n + 1
            end
        end
        return n
    end
    local sa, sb = science_around(sq(6, 1)), science_around(sq(5, 0))
    t.ok(c and c.strength[tostring(alice.id)] == sa and
         c.strength[tostring(bob.id)] == sb, string.format("strengths: a "
         .. "science colony next to each leader (%d and %d)", sa, sb))
    t.is(g:ctx().state.combat and g.rs.turn_name(g:ctx(), 3), "Combat turn",
         "the turn is named a combat turn")
    t.is(#g:new_messages(carol.id, "COMBAT!"), 1, "everyone is told COMBAT!")

    -- Combat turn: only the combatants' scientist colonists may act.
    local bad = {}
    for _, p in ipairs { alice, bob, carol } do
        for _, f in ipairs(g:objects("Fleet", p.id)) do
            local want = (p.id ~= carol.id and f.data.kind == "colonist" and
                          f.data.ptype == SCIENTIST) and "Reinforce" or ""
            if allowed_names(f) ~= want then
                bad[#bad + 1] = f.name .. " " .. f.id .. ": "
                                .. allowed_names(f)
            end
        end
    end
    t.ok(#bad == 0, "combat turn: the combatants' scientist colonists may "
         .. "only Reinforce, every other fleet has no order",
         table.concat(bad, "; "))
    refused({g:order(alice.id, fleet(alice.id, "leader", SETTLER), "Move",
                    target(sq(6, 0)))}, "not allowed during a combat turn",
            "Move on a combat turn: refused, saying so")
    local nonsci
    for _, f in ipairs(fleets(alice.id, "colonist")) do
        if f.data.ptype ~= SCIENTIST then
            nonsci = f
        end
    end
    if nonsci then
        refused({g:order(alice.id, nonsci, "Reinforce", {})},
                "colonist fleets may Reinforce", "Reinforce by a colonist of "
                .. "another kind: refused")
    end
    local csci = fleet(carol.id, "colonist", SCIENTIST)
    if csci then
        refused({g:order(carol.id, csci, "Reinforce", {})},
                "only the combatants'", "Reinforce by a player not in the "
                .. "conflict: refused")
    end
    local n_b = 0
    for _, f in ipairs(fleets(bob.id, "colonist", SCIENTIST)) do
        local ok, e = g:order(bob.id, f, "Reinforce", {})
        if ok then
            n_b = n_b + 1
        end
    end
    t.ok(n_b > 0 and n_b == #fleets(bob.id, "colonist", SCIENTIST),
         "bob reinforces with every scientist colonist (" .. n_b .. "): no "
         .. "two-action limit on Reinforce")
    local a_sci = fleets(alice.id, "colonist", SCIENTIST)
    local n_a = 0
    if a_sci[1] then
        local ok = g:order(alice.id, a_sci[1], "Reinforce", {})
        n_a = ok and 1 or 0
    end
    local before_b_tech = scores(bob.id)[2]
    local before_a_tech = scores(alice.id)[2]
    g:end_turn()
    local fa, fb = sa + n_a, sb + n_b
    local winner = (fa > fb or (fa == fb and alice.id < bob.id)) and alice
                   or bob
    local loser = winner == alice and bob or alice
    local lost = winner == alice and b_sl or a_sl
    t.is(g:object(lost.id).parent, g:find(loser.name .. "'s System").id,
         string.format("%d to %d: %s's scientist leader went home", fa, fb,
                       loser.name))
    t.is(scores(winner.id)[2], (winner == alice and before_a_tech or
         before_b_tech) + 1, winner.name .. " +1 Technology")
    t.is(g:ctx().state.combat, nil, "back to a normal turn")
    t.is(#g:new_messages(alice.id, "Combat Complete!"), 1,
         "Combat Complete!")
    local ok2, why = regions_match()
    t.ok(ok2, "the regions rebuilt without the loser", why)
    t.is(allowed_names(fleet(alice.id, "leader", SETTLER)), "Move",
         "the leaders' Move is allowed again")
    t.is(#fleets(bob.id, "colonist"), 6, "bob's colonists topped up again")
end

t.is(g.unmarked or 0, 0, "every change of the turns was marked")
g:close()

-- ============================================================ external

g = assert(H.new_game({ random_seed = 1 }, { ruleset = "tae" }))
alice, bob, carol = g:join("alice"), g:join("bob"), g:join("carol")
do
    -- Left region: the temple 5, 1, alice's merchant leader at 4, 1,
    -- merchant colonies at 6, 1 and 5, 0. Right region: bob's merchant
    -- leader at 8, 1, a merchant colony at 8, 0, a science colony at 9, 1.
    place(fleet(alice.id, "leader", MERCHANT), sq(4, 1))
    put(sq(6, 1), MONEY)
    put(sq(5, 0), MONEY)
    place(fleet(bob.id, "leader", MERCHANT), sq(8, 1))
    put(sq(8, 0), MONEY)
    put(sq(9, 1), TECH)
    t.ok(sq(4, 1).data.region ~= sq(8, 1).data.region and
         sq(7, 1).data.region == 0, "two regions with a gap at 7, 1")
    local cf
    for _, f in ipairs(fleets(carol.id, "colonist")) do
        if f.data.ptype ~= MINING then
            cf = f
        end
    end
    local ok, e = g:order(carol.id, cf, "Colonize", target(sq(7, 1)))
    t.ok(ok, "carol settles the gap 7, 1", fail_text(ok, e))
    g:end_turn()
    local c = g:ctx().state.combat
    t.ok(c and c.kind == "external" and c.ctype == MERCHANT and
         c.players[1] == alice.id and c.players[2] == bob.id,
         "an external conflict between the merchant leaders over Money")
    t.ok(c and c.strength[tostring(alice.id)] == 2 and
         c.strength[tostring(bob.id)] == 1, "strengths: the merchant "
         .. "colonies of each region (2 and 1)")
    t.is(sq(7, 1).data.region, 0, "the new colony waits outside the "
         .. "regions while the conflict lasts")
    local ok2, why = regions_match({ [sq(7, 1).id] = true })
    t.ok(ok2, "the two regions stay apart", why)
    t.ok(markers(sq(7, 1))[3 + cf.data.ptype], "its colony marker is down")
    refused({g:order(carol.id, fleet(carol.id, "leader", SETTLER), "Move",
                    target(sq(6, 0)))}, "only the combatants' Merchant "
                    .. "colonist fleets", "combat turn: the Fail names the "
                    .. "contested kind")
    local n_b = 0
    for _, f in ipairs(fleets(bob.id, "colonist", MERCHANT)) do
        if g:order(bob.id, f, "Reinforce", {}) then
            n_b = n_b + 1
        end
    end
    t.ok(n_b >= 2, "bob reinforces with his " .. n_b .. " merchant colonists")
    local before_money = { [alice.id] = scores(alice.id)[1],
                           [bob.id] = scores(bob.id)[1] }
    g:end_turn()
    local fa, fb = 2, 1 + n_b
    local winner = (fa >= fb) and alice or bob
    local loser = winner == alice and bob or alice
    local removed = winner == alice and 1 or 2
    t.is(scores(winner.id)[1], before_money[winner.id] + 1 + removed,
         string.format("%d to %d: %s wins +1 and +1 per merchant colony "
                       .. "removed (%d)", fa, fb, winner.name, removed))
    t.is(scores(loser.id)[1], before_money[loser.id], "the loser scores "
         .. "nothing")
    local lost = fleet(loser.id, "leader", MERCHANT)
    t.is(lost.parent, g:find(loser.name .. "'s System").id,
         "the loser's merchant leader went home")
    if winner == alice then
        t.ok(not markers(sq(8, 0))[MONEY], "bob's merchant colony is gone")
    else
        t.ok(not markers(sq(6, 1))[MONEY] and not markers(sq(5, 0))[MONEY],
             "alice's merchant colonies are gone")
    end
    t.is(sq(7, 1).data.pending, nil, "the new colony is no longer pending")
    local ok3, why3 = regions_match()
    t.ok(ok3, "the regions are rebuilt around what is left", why3)
    t.is(g:ctx().state.combat, nil, "no conflict left: a normal turn")
end
t.is(g.unmarked or 0, 0, "every change of the turns was marked")
g:close()

-- A tie goes to the lower player id, whoever is first in the conflict:
-- bob's region (the lower id) comes first, 2 to 2 without Reinforce.
g = assert(H.new_game({ random_seed = 1 }, { ruleset = "tae" }))
alice, bob, carol = g:join("alice"), g:join("bob"), g:join("carol")
do
    place(fleet(bob.id, "leader", MERCHANT), sq(4, 1))
    put(sq(6, 1), MONEY)
    put(sq(5, 0), MONEY)
    place(fleet(alice.id, "leader", MERCHANT), sq(8, 1))
    put(sq(8, 0), MONEY)
    put(sq(9, 0), MONEY)
    put(sq(9, 1), TECH)
    local cf
    for _, f in ipairs(fleets(carol.id, "colonist")) do
        if f.data.ptype ~= MINING then
            cf = f
        end
    end
    local ok = g:order(carol.id, cf, "Colonize", target(sq(7, 1)))
    g:end_turn()
    local c = g:ctx().state.combat
    t.ok(ok and c and c.players[1] == bob.id and
         c.strength[tostring(bob.id)] == 2 and
         c.strength[tostring(alice.id)] == 2, "bob's region first, 2 to 2")
    local money = scores(alice.id)[1]
    g:end_turn()
    t.is(scores(alice.id)[1], money + 3, "the tie goes to alice (lower id): "
         .. "+1 and bob's 2 merchant colonies")
    t.is(fleet(bob.id, "leader", MERCHANT).parent, g:find("bob's System").id,
         "bob's merchant leader went home")
end
t.is(g.unmarked or 0, 0, "every change of the turns was marked")
g:close()

-- ============================================================ artifacts

g = assert(H.new_game({ random_seed = 3 }, { ruleset = "tae" }))
alice, bob = g:join("alice"), g:join("bob")
do
    -- The temples 10, 0 and 14, 2 joined by colonies; bob's merchant
    -- leader at 11, 1.
    for _, p in ipairs { { 11, 0 }, { 12, 0 }, { 13, 0 }, { 14, 0 },
                         { 14, 1 } } do
        put(sq(p[1], p[2]), PEOPLE)
    end
    place(fleet(bob.id, "leader", MERCHANT), sq(11, 1))
    t.is(sq(10, 0).data.region, sq(14, 2).data.region,
         "both temples in one region")
    g:end_turn()
    t.is(scores(bob.id)[5], 1, "bob's merchant leader collects the second "
         .. "artifact (+1 Alien Artifacts)")
    t.ok(markers(sq(10, 0))[ARTIFACT] and not markers(sq(14, 2))[ARTIFACT],
         "the artifact of the higher square id is taken off")
    t.ok(markers(sq(14, 2))[TECH], "... the temple stays")
    g:end_turn()
    t.is(scores(bob.id)[5], 1, "no second award for the same artifact "
         .. "(removed markers are gone)")
    t.is(scores(alice.id)[5], 0, "alice has none")
end
t.is(g.unmarked or 0, 0, "every change of the turns was marked")
g:close()

-- ============================================================ game over

local function final_case(sets, want, winner, name)
    g = assert(H.new_game({ random_seed = 1 }, { ruleset = "tae" }))
    local ps = g:join_many { "alice", "bob", "carol" }
    local st = g:ctx().state
    for i, p in ipairs(ps) do
        st.players[tostring(p.id)].scores = sets[i]
    end
    -- Leave two artifact squares: the game ends at the end of the turn.
    local n = 0
    for r = 0, HT - 1 do
        for c = 0, W - 1 do
            if cell(c, r) == "A" then
                n = n + 1
                if n > 2 then
                    local pl = g:object(sq(c, r).data.planet)
                    local keep = {}
                    for _, m in ipairs(pl.data.resources) do
                        if m.resource ~= ARTIFACT then
                            keep[#keep + 1] = m
                        end
                    end
                    pl.data.resources = keep
                    g:set(pl, {})
                end
            end
        end
    end
    g:ctx():state_changed()
    g:commit()
    g:end_turn()
    local got = {}
    for i, p in ipairs(ps) do
        got[i] = g:player(p.id).score
    end
    t.is(table.concat(got, ","), table.concat(want, ","), name)
    t.is(g:ctx().state.winner, ps[winner].id, name .. ": " ..
         ps[winner].name .. " wins")
    t.ok(g:ctx().state.game_over and not g:player(ps[1].id).alive and
         g.rs.game_over(g:ctx()), "game over: players no longer alive")
    t.is(#g:new_messages(ps[2].id, "GAME OVER!"), 1, "GAME OVER! to everyone")
    refused({g:order(ps[1].id, fleet(ps[1].id, "colonist"), "Colonize",
                    target(sq(0, 0)))}, "the game is over",
            "no orders after the game")
    -- The server stops the game there (tp.turn): no turn ends any more.
    t.ok(not g:end_turn(), "no turn ends after the game")
    t.is(#g:new_messages(ps[2].id, "GAME OVER!"), 1, "GAME OVER! only once")
    g:close()
end

-- alice: 3,1,2,5 + 3 artifacts -> 3,2,2,5 -> 3,3,2,5 -> 3,3,3,5: 3.
-- bob: 0,4,4,4 + 1 -> 1. carol: 2,2,2,2 + 0 -> 2.
final_case({ { 3, 1, 2, 5, 3 }, { 0, 4, 4, 4, 1 }, { 2, 2, 2, 2, 0 } },
           { 3, 1, 2 }, 1, "final scores: artifacts fill the lowest category")
-- Ties: alice 1,1,1,1 = 1; bob 0,0,0,0 + 4 = 1; carol 0: alice (lower id).
-- The extra artifacts go to the first lowest category: bob 1,1,1,1.
final_case({ { 1, 1, 1, 1, 0 }, { 0, 0, 0, 0, 4 }, { 0, 5, 5, 5, 0 } },
           { 1, 1, 0 }, 1, "a tie goes to the lower player id")
-- bob 9,9,9,2 + 6 artifacts: the 2 becomes 8, the weakest: 8; alice 8;
-- carol 9 wins.
final_case({ { 8, 8, 8, 8, 0 }, { 9, 9, 9, 2, 6 }, { 9, 9, 9, 9, 0 } },
           { 8, 8, 9 }, 3, "carol's 9 wins")

-- The bag running out ends the game.
g = assert(H.new_game({ random_seed = 1, bag = { 3, 3, 3, 4 } },
                      { ruleset = "tae" }))
alice, bob = g:join("alice"), g:join("bob")
t.is(#fleets(alice.id, "colonist") + #fleets(bob.id, "colonist"), 12,
     "a bag of 13 fills two players' 12 colonist slots")
do
    local f1 = fleets(alice.id, "colonist")
    local ok1 = g:order(alice.id, f1[1], f1[1].data.ptype == MINING and
                        "ColonizeMining" or "Colonize",
                        target(f1[1].data.ptype == MINING and sq(6, 2) or
                               sq(0, 0)))
    local ok2 = g:order(alice.id, f1[2], f1[2].data.ptype == MINING and
                        "ColonizeMining" or "Colonize",
                        target(f1[2].data.ptype == MINING and sq(7, 2) or
                               sq(2, 0)))
    t.ok(ok1 and ok2, "alice settles twice")
end
g:end_turn()
t.ok(g:ctx().state.game_over, "one ship was left for two empty slots: the "
     .. "game is over")
t.is(g.unmarked or 0, 0, "every change of the turns was marked")
g:close()

-- ============================================================ board setting

-- Another board of the folder (board_small.txt: 6 x 4, bottom line row 0).
do
    local small = { "..A.M.", ".M....", "....A.", "A..MM." }
    g = assert(H.new_game({ random_seed = 1, board = "board_small.txt" },
                          { ruleset = "tae" }))
    local a = g:join("alice")
    local bad, n = {}, 0
    for r = 0, 3 do
        for c = 0, 5 do
            local s = sq(c, r)
            local ch = small[4 - r]:sub(c + 1, c + 1)
            if not s then
                bad[#bad + 1] = c .. ", " .. r .. " missing"
            else
                n = n + 1
                local m = markers(s)
                if (m[UNIN] or false) ~= (ch == "M") or
                   (m[ARTIFACT] or false) ~= (ch == "A") or
                   s.pos.x ~= 1 + 80000 * c or s.pos.y ~= 1 + 80000 * (r + 1)
                then
                    bad[#bad + 1] = s.name
                end
            end
        end
    end
    t.is(n, 24, "the board setting names another file: 24 squares")
    t.is(#g:objects("Star System"), 25, "... and no more (plus a home)")
    t.ok(#bad == 0, "its markers and positions", table.concat(bad, "; "))
    t.is(g:find("alice's Home Planet").parent, g:find("alice's System").id,
         "alice's home planet in her home system")
    g:close()
    local ok = H.new_game({ board = "no_such_board.txt" },
                          { ruleset = "tae" })
    t.ok(not ok, "a board file that is not there: the game is not created")
end

return t.done()
