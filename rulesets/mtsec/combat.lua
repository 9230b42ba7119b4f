-- MTSec combat (mtsec.md 7 step 3, 8): one round of missile fire for
-- every pair of owned planets and fleets of different players within
-- 10,000 units, taken in ascending id (A, then every B of higher id).
--
-- In a round both sides fire at once. A side's shots: for each ship
-- design it has (ascending design id), each tube of it (count x the
-- design's tubes of each kind) fires one weapon the side carries whose
-- design's MissileSize is the tube's size (the weapon resources in
-- ascending id), while there is one; a shot deals the weapon design's
-- AmmoExplosiveness. A planet fights as two ships of its owner's stock
-- Scout (one Alpha Missile Tube each) and fires the weapons stored on it.
--
-- Damage is then resolved per side: D = the fleet's old Damage + what it
-- received (a planet keeps no damage); for each ship design in descending
-- id with HitPoints h, k = min(ships, floor(D / h)) ships die and D -= k
-- x h; a fleet keeps what is left as its Damage. A side with no ships
-- left is dead: a fleet is removed, a planet falls (owner 0, orders
-- cleared). Dead objects take no part in later pairings of the turn.
--
-- Each pairing is recorded as a battle (ctx:battle) and both players get
-- a Combat message referring to it. README.md lists where this differs
-- from the reference.
return function(mt)
    local data, objects, universe, arms =
        mt.data, mt.objects, mt.universe, mt.arms
    local M = {}

    local function ref(t, id)
        return { type = t, id = id }
    end

    -- The side of one object: ships { { design, count } } (a copy),
    -- weapons (the object's own list, consumed by firing).
    local function side_of(ctx, obj)
        if objects.is(ctx, obj, objects.PLANET) then
            local stock = universe.stock_of(ctx, obj.owner)
            return { obj = obj, planet = true,
                     ships = { { design = stock.scout,
                                 count = data.PLANET_SCOUTS } },
                     weapons = obj.data.resources, damage = 0 }
        end
        local ships = {}
        for i, s in ipairs(obj.data.ships) do
            ships[i] = { design = s.design, count = s.count }
        end
        obj.data.weapons = obj.data.weapons or {}
        return { obj = obj, ships = ships, weapons = obj.data.weapons,
                 damage = obj.data.damage or 0 }
    end

    -- Battle entities of a side, per ship: { design = id, ref = "..." }
    -- in ship order (ascending design id).
    local function declare(ctx, b, side, sid)
        local list = {}
        local obj = side.obj
        if side.planet then
            local id = "planet-" .. obj.id .. "-0"
            b:entity(sid, id, obj.name, "planet")
            side.refs = { id }
            return
        end
        local n = 0
        for _, s in ipairs(side.ships) do
            local st = objects.design_stats(ctx, s.design)
            for _ = 1, s.count do
                local id = st.name .. "-" .. obj.id .. "-" .. n
                b:entity(sid, id, obj.name .. ", " .. st.name .. " " .. n,
                         st.name)
                list[#list + 1] = { design = s.design, ref = id }
                n = n + 1
            end
        end
        side.entities = list
    end

    -- The first entity of a side still standing (the target of a shot).
    local function target_ref(side)
        if side.planet then
            return side.refs[1]
        end
        for i = #side.entities, 1, -1 do
            local e = side.entities[i]
            if not e.dead then
                return e.ref
            end
        end
        return side.entities[1] and side.entities[1].ref
    end

    local function shooter_ref(side, design)
        if side.planet then
            return side.refs[1]
        end
        for _, e in ipairs(side.entities) do
            if e.design == design then
                return e.ref
            end
        end
    end

    -- Fires side's tubes; returns the damage dealt and the shot count.
    local function fire(ctx, b, side, other)
        local dealt, shots = 0, 0
        for _, s in ipairs(side.ships) do
            local st = objects.design_stats(ctx, s.design)
            for _, tube in ipairs(st.tubes) do
                for _ = 1, s.count * tube.count do
                    local found
                    for _, w in ipairs(side.weapons) do
                        local wd = w.resource >= data.RES_FIRST_WEAPON and
                                   w.stored > 0 and
                                   arms.design_of(ctx, w.resource)
                        local ws = wd and objects.design_stats(ctx, wd)
                        if ws and ws.missile_size == tube.size then
                            found = { w, ws }
                            break
                        end
                    end
                    if not found then
                        break
                    end
                    objects.take_amount(side.weapons, found[1].resource, 1)
                    dealt = dealt + found[2].explosiveness
                    shots = shots + 1
                    b:fire(shooter_ref(side, s.design), target_ref(other))
                end
            end
        end
        ctx:changed(side.obj)
        return dealt, shots
    end

    -- Applies damage to a side; returns the ships lost.
    local function resolve(ctx, b, side, received)
        local d = side.damage + received
        local lost = 0
        for i = #side.ships, 1, -1 do
            local s = side.ships[i]
            local h = objects.design_stats(ctx, s.design).hp
            if h > 0 and d >= h then
                local k = math.min(s.count, math.floor(d / h))
                s.count = s.count - k
                d = d - k * h
                lost = lost + k
                if not side.planet then
                    objects.remove_ships(ctx, side.obj, s.design, k)
                    for _, e in ipairs(side.entities) do
                        if k > 0 and e.design == s.design and not e.dead then
                            e.dead = true
                            k = k - 1
                            b:damage(e.ref, h)
                            b:death(e.ref)
                        end
                    end
                end
            end
        end
        local left = 0
        for _, s in ipairs(side.ships) do
            left = left + s.count
        end
        side.dead = left == 0
        if side.planet then
            if received > 0 then
                b:damage(side.refs[1], received)
            end
            if side.dead then
                b:death(side.refs[1])
            end
        elseif not side.dead then
            if d > 0 then
                b:damage(target_ref(side), d)
            end
            side.obj.data.damage = d
            ctx:changed(side.obj)
        end
        return lost
    end

    local function what(side)
        return side.planet and ("the planet " .. side.obj.name)
               or ("the fleet " .. side.obj.name)
    end

    -- One pairing (mtsec.md 8).
    function M.fight(ctx, a, b_obj)
        local pa, pb = ctx:player(a.owner), ctx:player(b_obj.owner)
        local sa, sb = side_of(ctx, a), side_of(ctx, b_obj)
        local place = ctx:object(a.parent)
        local b = ctx:battle { media = "mtsec", title = "Battle at " ..
                               (place and place.name or a.name) }
        local ida = b:side(pa.name, pa.id)
        local idb = b:side(pb.name, pb.id)
        declare(ctx, b, sa, ida)
        declare(ctx, b, sb, idb)
        b:round()
        b:log(pa.name .. "'s " .. what(sa) .. " meets " .. pb.name .. "'s "
              .. what(sb))
        local da, na = fire(ctx, b, sa, sb)
        local db, nb = fire(ctx, b, sb, sa)
        b:log(string.format("%s fires %d shots for %s damage; %s fires %d "
              .. "shots for %s damage", pa.name, na, mt.techtree.number(da),
              pb.name, nb, mt.techtree.number(db)))
        local la = resolve(ctx, b, sa, db)
        local lb = resolve(ctx, b, sb, da)
        local id = b:save()
        local text = {
            [sa] = string.format("Your %s fought %s's %s: it fired %d "
                   .. "shots (%s damage) and lost %d ships.", what(sa),
                   pb.name, what(sb), na, mt.techtree.number(da), la),
            [sb] = string.format("Your %s fought %s's %s: it fired %d "
                   .. "shots (%s damage) and lost %d ships.", what(sb),
                   pa.name, what(sa), nb, mt.techtree.number(db), lb),
        }
        local function fall(side, other)
            if side.dead and side.planet then
                text[side] = text[side] .. " Your planet fell."
                text[other] = text[other] .. " You took their planet."
            elseif side.dead then
                text[side] = text[side] .. " Your fleet was destroyed."
                text[other] = text[other] .. " You destroyed their fleet."
            end
        end
        fall(sa, sb)
        fall(sb, sa)
        local refs = { ctx:battle_reference(id), ref(1, a.id),
                       ref(1, b_obj.id) }
        for _, s in ipairs { sa, sb } do
            ctx:message(s.obj.owner, "Combat", text[s] .. "\n" ..
                        ctx:battle_link(id), refs)
        end
        for _, s in ipairs { sa, sb } do
            if s.dead then
                if s.planet then
                    objects.set_planet_owner(ctx, s.obj, 0)
                    ctx:clear_orders(s.obj)
                else
                    objects.remove_fleet(ctx, s.obj)
                end
            end
        end
        return id
    end

    local function fighting(ctx, o)
        return ctx:object(o.id) == o and o.owner ~= 0
    end

    -- Every pairing among the turn's possible combatants (ascending id).
    -- A grid with cells of the combat range finds the neighbours.
    function M.run(ctx, list)
        local owned = {}
        for _, o in ipairs(list) do
            if o.owner ~= 0 then
                owned[#owned + 1] = o
            end
        end
        local R = data.COMBAT_RANGE
        local grid = {}
        local function key(cx, cy)
            return cx * 134217728 + cy
        end
        for i, o in ipairs(owned) do
            local k = key(math.floor(o.pos.x / R), math.floor(o.pos.y / R))
            grid[k] = grid[k] or {}
            table.insert(grid[k], i)
        end
        local battles = {}
        for i, a in ipairs(owned) do
            local cx, cy = math.floor(a.pos.x / R), math.floor(a.pos.y / R)
            local near = {}
            for dx = -1, 1 do
                for dy = -1, 1 do
                    for _, j in ipairs(grid[key(cx + dx, cy + dy)] or {}) do
                        if j > i then
                            near[#near + 1] = j
                        end
                    end
                end
            end
            table.sort(near)
            for _, j in ipairs(near) do
                local b = owned[j]
                if fighting(ctx, a) and fighting(ctx, b) and
                   a.owner ~= b.owner and
                   objects.distance(a.pos, b.pos) <= R then
                    battles[#battles + 1] = M.fight(ctx, a, b)
                end
            end
        end
        return battles
    end

    return M
end
