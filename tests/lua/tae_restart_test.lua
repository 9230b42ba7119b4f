-- TaE restart: the same scripted game (an external conflict fought over
-- a combat turn, then normal turns that settle, bomb and top up from the
-- bag) played without a restart and with the server's game closed and
-- opened again (the ruleset loaded anew) before a normal turn and before
-- the combat turn. Every object, the ruleset's state (bag, generator,
-- rotation, conflict queue, strengths) and every message must come out
-- the same, and so must the orders each fleet may take.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local cjson = require "cjson"

local MONEY, TECH = 4, 5
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

local function fleet(pid, kind, ptype)
    for _, f in ipairs(g:objects("Fleet", pid)) do
        if f.data.kind == kind and (not ptype or f.data.ptype == ptype) then
            return f
        end
    end
end

local function put(s, id)
    local p = g:object(s.data.planet)
    table.insert(p.data.resources, { resource = id, stored = 1, minable = 0,
                                     unavailable = 0 })
    g:set(p, {})
end

local function place(l, s)
    local ctx = g:ctx()
    ctx:set_parent(l, s)
    l.pos = { x = s.pos.x, y = s.pos.y, z = 0 }
    ctx:changed(l)
    g:commit()
end

local function target(s)
    return { ["Star System"] = { objectid = s.id } }
end

-- The first square (row by row) a colonist of this kind may settle,
-- leaving out the squares in taken.
local function free_square(mining, taken)
    for r = 0, 10 do
        for c = 0, 15 do
            local s = sq(c, r)
            local m = markers(s)
            local leader = false
            for _, id in ipairs(s.children) do
                if g:object(id).type == 4 then
                    leader = true
                end
            end
            if not taken[s.id] and s.data.destroyed == 0 and not leader and
               not (m[4] or m[5] or m[6] or m[7]) and
               (m[1] or false) == mining then
                return s
            end
        end
    end
end

local function picture(players)
    local msgs = {}
    for _, p in ipairs(players) do
        local list = {}
        for _, m in ipairs(g:messages(p.id)) do
            list[#list + 1] = { m.subject, m.body, m.turn }
        end
        msgs[p.name] = list
    end
    local ps = {}
    for _, p in ipairs(players) do
        local q = g:player(p.id)
        ps[#ps + 1] = { q.score, q.alive }
    end
    local allowed = {}
    for _, f in ipairs(g:objects("Fleet")) do
        allowed[#allowed + 1] = { f.id, H.copy(g:queue(f).allowed) }
    end
    return { objects = g:snapshot(), state = H.copy(g:ctx().state),
             allowed = allowed,
             messages = msgs, players = ps, turn = g:turn_number() }
end

local LAST = 5

-- Plays the game; reopens before ending turn restart_at. Returns the
-- picture after each turn.
local function play(restart_at)
    g = assert(H.new_game({ random_seed = 1 }, { ruleset = "tae" }))
    local players = g:join_many { "alice", "bob", "carol" }
    local alice, bob, carol = players[1], players[2], players[3]
    place(fleet(alice.id, "leader", 1), sq(4, 1))
    put(sq(6, 1), MONEY)
    put(sq(5, 0), MONEY)
    place(fleet(bob.id, "leader", 1), sq(8, 1))
    put(sq(8, 0), MONEY)
    put(sq(9, 1), TECH)
    g:ms().board.rebuild(g:ctx())
    g:commit()
    local out, refused = {}, 0
    for turn = 0, LAST - 1 do
        if turn == restart_at then
            g:reopen()
        end
        local st = g:ctx().state
        if st.combat then
            for _, p in ipairs(players) do
                for _, f in ipairs(g:objects("Fleet", p.id)) do
                    if f.data.kind == "colonist" and
                       f.data.ptype == st.combat.ctype and
                       st.combat.strength[tostring(p.id)] then
                        if not g:order(p.id, f, "Reinforce", {}) then
                            refused = refused + 1
                        end
                    end
                end
            end
        elseif turn == 0 then
            local cf
            for _, f in ipairs(g:objects("Fleet", carol.id)) do
                if f.data.kind == "colonist" and f.data.ptype ~= 4 then
                    cf = f
                end
            end
            if not g:order(carol.id, cf, "Colonize", target(sq(7, 1))) then
                refused = refused + 1
            end
            if not g:order(bob.id, fleet(bob.id, "bomber"), "Attack",
                           target(sq(0, 10))) then
                refused = refused + 1
            end
        else
            local taken = {}
            for _, p in ipairs(players) do
                local n = 0
                for _, f in ipairs(g:objects("Fleet", p.id)) do
                    if f.data.kind == "colonist" and n < 2 then
                        local s = free_square(f.data.ptype == 4, taken)
                        taken[s.id] = true
                        local ok = g:order(p.id, f, f.data.ptype == 4 and
                                           "ColonizeMining" or "Colonize",
                                           target(s))
                        if ok then
                            n = n + 1
                        else
                            refused = refused + 1
                        end
                    end
                end
            end
        end
        g:end_turn()
        out[turn + 1] = picture(players)
    end
    g:close()
    return out, refused
end

local base, r0 = play(nil)
t.is(r0, 0, "the scripted game's orders are all accepted")
t.ok(base[1].state.combat ~= nil and base[1].state.combat.kind == "external",
     "turn 1 is a combat turn (the conflict to fight after the restart)")
t.ok(base[2].state.combat == nil, "turn 2 is a normal turn")
local bag = base[LAST].state.bag
t.ok(bag[1] + bag[2] + bag[3] + bag[4] < 153 - 18,
     "the later turns drew from the bag (" .. table.concat(bag, ",") .. ")")

for _, at in ipairs { 1, 2, 3 } do
    local run, r = play(at)
    t.is(r, 0, "restart before turn " .. at .. ": the same orders accepted")
    local same, where = true, nil
    for i = at + 1, LAST do
        local ok, w = H.same(base[i], run[i])
        if not ok then
            same, where = false, "after turn " .. (i - 1) .. ": " .. w
            break
        end
    end
    t.ok(same, string.format("restarted before ending turn %d: every later "
         .. "turn the same (objects, state, messages, scores)", at), where)
end

return t.done()
