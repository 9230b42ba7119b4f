-- MiniSec's computer players (rulesets/README.md, "AI players"). The
-- engine (the server's tp.ai) calls play(me) once a turn for each
-- computer player, with the player's view of the galaxy and the orders
-- API a client has; this file knows MiniSec only through what a client
-- sees: object types by name, the parameters of the Object frames, the
-- designs' properties, the seven orders.
--
-- Two levels:
--   normal  explores and colonises with its frigates (up to three
--           colonists at once, splitting one off the main fleet when it
--           needs one), builds frigates, gathers them at its home and
--           merges them into one fleet, defends a threatened planet,
--           attacks the weakest enemy planet it can take (retreating from
--           one it cannot), colonises what falls, and hunts enemy fleets
--           when no planet is left to take.
--   easy    colonises with one frigate at a time, builds a ship of any
--           design (scouts too, which run from battles), and sends every
--           new fleet alone at the nearest enemy planet.
--
-- Memory (kept by the engine between turns, as JSON: string keys):
--   roles[fleet id] = { role = "colonise" | "army" | "attack" |
--                       "defend" | "hunt", target = object id }
local M = { levels = { "easy", "normal" } }

-- A battery of a planet (MiniSec: 3 to win, 1 to draw, dies at 6) is
-- worth about a battleship; the rest are valued against a frigate.
local BATTERY = 1.6
local HOME_BATTERIES, BATTERIES = 5, 2
local MAX_COLONISTS = { easy = 1, normal = 3 }
local THREAT_RANGE = 600000000

-- ------------------------------------------------------------ reading

local function position(o)
    local p = o.params.Position
    return { x = p.x, y = p.y, z = p.z }
end

local function distance(a, b)
    local dx, dy, dz = a.x - b.x, a.y - b.y, a.z - b.z
    return math.sqrt(dx * dx + dy * dy + dz * dz)
end

local function owner_of(o)
    local r = o.params.Owner
    return r and r.id or 0
end

local function is_home(planet)
    local list = planet.params["Resource List"]
    for _, r in ipairs(list and list.resources or {}) do
        if r.resource == 2 and r.stored >= 1 then
            return true
        end
    end
    return false
end

-- { design id -> count } of a fleet, and its ship count.
local function ships_of(fleet)
    local out, n = {}, 0
    local list = fleet.params["Ship List"]
    for _, r in ipairs(list and list.references or {}) do
        out[r.id] = (out[r.id] or 0) + r.count
        n = n + r.count
    end
    return out, n
end

-- What a design is worth in battle, from its properties as shown.
local function design_value(d)
    if not d then
        return 1
    end
    local n = d.numbers
    local armour, win, draw = n.Armour or 0, n.WeaponWin or 0,
                              n.WeaponDraw or 0
    return (armour + 2 * win + draw) / 8
end

-- The galaxy, sorted out: planets and fleets by owner, designs by name.
local function survey(view)
    local s = { me = view.me, turn = view.turn, objects = view.objects,
                planets = {}, my_planets = {}, free = {}, enemy_planets = {},
                my_fleets = {}, enemy_fleets = {}, design = {},
                value = {}, speed = {} }
    for id, d in pairs(view.designs) do
        s.value[id] = design_value(d)
        s.speed[id] = (d.numbers.Speed or 0) * 1000000
        if d.owner == view.me then
            s.design[d.name] = d
        end
    end
    local ids = {}
    for id in pairs(view.objects) do
        ids[#ids + 1] = id
    end
    table.sort(ids)
    for _, id in ipairs(ids) do
        local o = view.objects[id]
        local owner = owner_of(o)
        if o.type == "Planet" then
            s.planets[#s.planets + 1] = o
            if owner == view.me then
                s.my_planets[#s.my_planets + 1] = o
            elseif owner == 0 then
                s.free[#s.free + 1] = o
            else
                s.enemy_planets[#s.enemy_planets + 1] = o
            end
        elseif o.type == "Fleet" then
            if owner == view.me then
                s.my_fleets[#s.my_fleets + 1] = o
            elseif owner ~= 0 then
                s.enemy_fleets[#s.enemy_fleets + 1] = o
            end
        end
    end
    return s
end

local function strength(s, fleet)
    local total = 0
    for design, count in pairs(ships_of(fleet)) do
        total = total + count * (s.value[design] or 1)
    end
    return total
end

local function speed(s, fleet)
    local v
    for design in pairs(ships_of(fleet)) do
        local sp = s.speed[design] or 0
        if sp > 0 and (not v or sp < v) then
            v = sp
        end
    end
    return v or 1
end

local function has_frigate(s, fleet)
    local frigate = s.design.Frigate
    return frigate and (ships_of(fleet)[frigate.id] or 0) > 0
end

-- Enemy fleets within range of a point, and their strength.
local function enemies_near(s, p, range)
    local total, list = 0, {}
    for _, f in ipairs(s.enemy_fleets) do
        if distance(position(f), p) <= range then
            total = total + strength(s, f)
            list[#list + 1] = f
        end
    end
    return total, list
end

-- What taking a planet means fighting: its batteries and the fleets of
-- its owner there.
local function defence(s, planet)
    local batteries = is_home(planet) and HOME_BATTERIES or BATTERIES
    local total = batteries * BATTERY
    local p = position(planet)
    for _, f in ipairs(s.enemy_fleets) do
        if distance(position(f), p) <= 2 then
            total = total + strength(s, f)
        end
    end
    return total
end

-- Each enemy's strength: fleets and planets together.
local function power_of(s)
    local power = {}
    for _, f in ipairs(s.enemy_fleets) do
        local o = owner_of(f)
        power[o] = (power[o] or 0) + strength(s, f)
    end
    for _, p in ipairs(s.enemy_planets) do
        local o = owner_of(p)
        power[o] = (power[o] or 0) +
                   (is_home(p) and HOME_BATTERIES or BATTERIES) * BATTERY
    end
    return power
end

-- ------------------------------------------------------------ ordering

local function first_order(o)
    return o.orders and o.orders[1]
end

-- Replaces the object's orders by one.
local function command(me, o, otype, params)
    for slot = #(o.orders or {}) - 1, 0, -1 do
        me.orders.remove(o.id, slot)
    end
    local order = me.orders.insert(o.id, otype, params)
    o.orders = { order }
    return order
end

local function at(fleet, target)
    return fleet.parent == target.id or
           distance(position(fleet), position(target)) <= 2
end

-- Sends the fleet to the object (a Move to where it is now), unless it
-- is on its way there already or there.
local function go(me, fleet, target)
    if at(fleet, target) then
        return false
    end
    local p = position(target)
    local f = first_order(fleet)
    if f and f.type == "Move" and f.params.pos.x == p.x and
       f.params.pos.y == p.y and f.params.pos.z == p.z then
        return true
    end
    command(me, fleet, "Move", { pos = { x = p.x, y = p.y, z = p.z } })
    return true
end

local function idle(me, o)
    for slot = #(o.orders or {}) - 1, 0, -1 do
        me.orders.remove(o.id, slot)
    end
    o.orders = {}
end

local function build(me, planet, design, count)
    if not design then
        return
    end
    command(me, planet, "Build Fleet", {
        ships = { selection = { { id = design.id, number = count or 1 } } },
        name = { string = "" } })
end

local function nearest(list, p, skip)
    local best, best_d
    for _, o in ipairs(list) do
        if not (skip and skip[o.id]) then
            local d = distance(position(o), p)
            if not best_d or d < best_d then
                best, best_d = o, d
            end
        end
    end
    return best, best_d
end

-- ------------------------------------------------------------ planning

local function key(id)
    return tostring(id)
end

-- The roles of the fleets still there; the planets colonists go to.
local function tidy_roles(s, memory)
    memory.roles = memory.roles or {}
    local kept = {}
    for _, f in ipairs(s.my_fleets) do
        kept[key(f.id)] = memory.roles[key(f.id)]
    end
    memory.roles = kept
    return kept
end

-- Where the army gathers: the planet of ours nearest to an enemy planet
-- (the front), else the home planet, else any.
local function rally_point(s)
    local best, best_d
    for _, p in ipairs(s.my_planets) do
        local _, d = nearest(s.enemy_planets, position(p))
        if d and (not best_d or d < best_d) then
            best, best_d = p, d
        end
    end
    if best then
        return best
    end
    for _, p in ipairs(s.my_planets) do
        if is_home(p) then
            return p
        end
    end
    return s.my_planets[1]
end

-- Colonists: to the nearest free planet no other colonist goes to; at
-- it, Colonise. A planet taken meanwhile: another one, or the army.
local function colonists(me, s, roles, level)
    local taken, count = {}, 0
    for _, f in ipairs(s.my_fleets) do
        local r = roles[key(f.id)]
        if r and r.role == "colonise" then
            local t = s.objects[r.target]
            if t and owner_of(t) == 0 and has_frigate(s, f) then
                taken[t.id] = true
                count = count + 1
            else
                roles[key(f.id)] = nil
            end
        end
    end
    -- New fleets of one frigate become colonists while there is room.
    for _, f in ipairs(s.my_fleets) do
        local _, n = ships_of(f)
        if not roles[key(f.id)] and n == 1 and has_frigate(s, f) and
           count < MAX_COLONISTS[level] then
            local t = nearest(s.free, position(f), taken)
            if t then
                roles[key(f.id)] = { role = "colonise", target = t.id }
                taken[t.id] = true
                count = count + 1
            end
        end
    end
    for _, f in ipairs(s.my_fleets) do
        local r = roles[key(f.id)]
        if r and r.role == "colonise" then
            local t = s.objects[r.target]
            if at(f, t) then
                local o = first_order(f)
                if not (o and o.type == "Colonise") then
                    command(me, f, "Colonise", {})
                end
            else
                go(me, f, t)
            end
        end
    end
    local untaken = 0
    for _, p in ipairs(s.free) do
        if not taken[p.id] then
            untaken = untaken + 1
        end
    end
    return count, untaken
end

-- Every planet builds: normal builds frigates, one at a time while it
-- needs colonists, then three at a time (fewer, bigger fleets to gather);
-- easy builds a ship of any design.
local function builds(me, s, level, colonists_wanted)
    for _, p in ipairs(s.my_planets) do
        if not first_order(p) then
            local design, count = s.design.Frigate, 1
            if level == "normal" and not colonists_wanted then
                count = 3
            elseif level == "easy" then
                local names = { "Scout", "Frigate", "Battleship" }
                design = s.design[names[me.random:range(1, 3)]]
            end
            build(me, p, design, count)
        end
    end
end

-- The best enemy planet the fleet can take: the nearest of the weakest
-- enemy's among those its strength is enough for.
local function choose_target(s, fleet, power)
    local mine = strength(s, fleet)
    local here = position(fleet)
    local best, best_score
    for _, p in ipairs(s.enemy_planets) do
        local need = defence(s, p) * 1.3 + 1
        if mine >= need then
            local turns = distance(here, position(p)) / speed(s, fleet)
            local score = turns + (power[owner_of(p)] or 0) * 0.5
            if not best_score or score < best_score then
                best, best_score = p, score
            end
        end
    end
    return best
end

-- An attacking fleet: on to its target; a planet that fell is colonised,
-- one that is ours now (or too strong) sends the fleet home.
local function attack(me, s, f, r, rally)
    local t = s.objects[r.target]
    if not t then
        return false
    end
    local owner = owner_of(t)
    if t.type == "Fleet" then
        if owner == 0 or owner == s.me then
            return false
        end
        local o = first_order(f)
        if not (o and o.type == "Intercept" and
                o.params.Fleet.objectid == t.id) then
            command(me, f, "Intercept", { Fleet = { objectid = t.id } })
        end
        return true
    end
    if owner == s.me then
        return false
    end
    if owner == 0 then
        if not has_frigate(s, f) then
            return false
        end
        if at(f, t) then
            local o = first_order(f)
            if not (o and o.type == "Colonise") then
                command(me, f, "Colonise", {})
            end
        else
            go(me, f, t)
        end
        return true
    end
    if rally and strength(s, f) < defence(s, t) * 0.7 then
        return false
    end
    if not at(f, t) then
        go(me, f, t)
    elseif first_order(f) then
        idle(me, f)
    end
    return true
end

local function play_easy(me, s, roles)
    colonists(me, s, roles, "easy")
    builds(me, s, "easy", true)
    for _, f in ipairs(s.my_fleets) do
        local r = roles[key(f.id)]
        if not r or r.role ~= "colonise" then
            if not (r and r.role == "attack" and attack(me, s, f, r)) then
                local t = nearest(s.enemy_planets, position(f))
                if t then
                    roles[key(f.id)] = { role = "attack", target = t.id }
                    go(me, f, t)
                else
                    roles[key(f.id)] = { role = "army" }
                end
            end
        end
    end
end

local function play_normal(me, s, roles)
    local count, untaken = colonists(me, s, roles, "normal")
    builds(me, s, "normal", untaken > 0)
    local rally = rally_point(s)
    local power = power_of(s)
    -- The army: fleets neither colonising nor on a mission gather at the
    -- rally point, where they merge into the biggest.
    local gathered, main = {}, nil
    for _, f in ipairs(s.my_fleets) do
        local r = roles[key(f.id)]
        if r and (r.role == "attack" or r.role == "hunt") then
            if not attack(me, s, f, r, rally) then
                -- Done (or beaten back): on to the next planet it can
                -- take, or back to the army.
                local t = choose_target(s, f, power)
                if t then
                    roles[key(f.id)] = { role = "attack", target = t.id }
                    go(me, f, t)
                else
                    roles[key(f.id)] = { role = "army" }
                end
            end
        elseif r and r.role == "defend" then
            -- Defended once there: the fleet rejoins the army.
            local t = s.objects[r.target]
            if t and owner_of(t) == s.me and not at(f, t) then
                go(me, f, t)
            else
                roles[key(f.id)] = { role = "army" }
            end
        elseif not r then
            roles[key(f.id)] = { role = "army" }
        end
        r = roles[key(f.id)]
        if r.role == "army" then
            if rally and at(f, rally) then
                gathered[#gathered + 1] = f
                if not main or strength(s, f) > strength(s, main) then
                    main = f
                end
            elseif rally then
                go(me, f, rally)
            end
        end
    end
    for _, f in ipairs(gathered) do
        if f ~= main then
            local o = first_order(f)
            if not (o and o.type == "Merge Fleet") then
                command(me, f, "Merge Fleet", {})
            end
        end
    end
    if not main then
        return
    end
    -- A colonist wanted and none to be had: one frigate leaves the army.
    local _, n = ships_of(main)
    if untaken > 0 and count < MAX_COLONISTS.normal and n > 6 and
       has_frigate(s, main) then
        command(me, main, "Split Fleet", { ships = { selection = {
            { id = s.design.Frigate.id, number = 1 } } } })
        return
    end
    -- Defend a planet enemy fleets close in on that its batteries cannot
    -- hold alone, when the army is enough (and not already near it).
    local mine = strength(s, main)
    for _, p in ipairs(s.my_planets) do
        local threat = enemies_near(s, position(p), THREAT_RANGE)
        local away = distance(position(p), position(main))
        if away > THREAT_RANGE and threat > BATTERIES * BATTERY * 0.5 and
           mine > threat and away / speed(s, main) <= 6 then
            roles[key(main.id)] = { role = "defend", target = p.id }
            go(me, main, p)
            return
        end
    end
    local home_threat = enemies_near(s, position(rally), THREAT_RANGE)
    if home_threat > HOME_BATTERIES * BATTERY * 0.5 and
       home_threat > mine * 0.75 then
        idle(me, main)
        return
    end
    local t = choose_target(s, main, power)
    if t then
        roles[key(main.id)] = { role = "attack", target = t.id }
        go(me, main, t)
        return
    end
    -- No planet to take: hunt a weaker enemy fleet, once there are no
    -- enemy planets at all (the last of an enemy keeps it in the game).
    if #s.enemy_planets == 0 then
        local best
        for _, f in ipairs(s.enemy_fleets) do
            if strength(s, f) < mine and (not best or
               distance(position(f), position(main)) <
               distance(position(best), position(main))) then
                best = f
            end
        end
        if best then
            roles[key(main.id)] = { role = "hunt", target = best.id }
            command(me, main, "Intercept", { Fleet = { objectid = best.id } })
            return
        end
    end
    idle(me, main)
end

function M.play(me)
    local s = survey(me.view)
    local roles = tidy_roles(s, me.memory)
    if #s.my_planets == 0 and #s.my_fleets == 0 then
        return
    end
    if me.level == "easy" then
        play_easy(me, s, roles)
    else
        play_normal(me, s, roles)
    end
    me.orders.finish()
end

return M
