-- MiniSec combat: rock, paper, scissors (minisec.md 9). All draws come
-- from the game generator.
--
-- Owned planets and fleets that share a position fight when they belong
-- to two or more players. Every ship is a combatant (an owned planet has
-- two defence batteries, five on a home world); each round two sides
-- play rock-paper-scissors; the winner's biggest ships fire, on a draw
-- both sides' biggest ships fire their draw weapons. A side whose win
-- shots are all zero (only scouts left) escapes, and scouts may help a
-- winning side slip away instead of firing. Sides drop out when all
-- their combatants are dead or they escape; the last one survives.
--
-- Every battle is recorded with the server's battle recorder (ctx:battle,
-- BattleXML as tpserver-cpp writes it: a side per player, an entity per
-- ship and per planet battery, each round's choices, shots, damage and
-- deaths). The Combat message every participant gets carries the
-- reference's summary, a round-by-round battle report, and where to open
-- the battle's log (with a reference to it).
return function(ms)
    local data, objects = ms.data, ms.objects
    local M = {}

    local RSP = { [0] = "rock", "scissors", "paper" }

    -- ---------------------------------------------------- who fights

    -- Groups the possible combatants (owned planets and fleets, ascending
    -- id) by position, as the reference does in one pass: an object
    -- joins the first group holding an object within size1/2 + size2/2
    -- of it, else starts a new one. A grid (cells as wide as the largest
    -- reach) finds the neighbours. Returns the list of groups: { objects
    -- = { obj... } } in creation order.
    function M.groups(ctx, list)
        local maxhalf = 0
        for _, o in ipairs(list) do
            maxhalf = math.max(maxhalf, objects.half(o.size))
        end
        local width = math.max(1, 2 * maxhalf)
        local grid, group_of, groups = {}, {}, {}
        local function key(cx, cy)
            return cx * 134217728 + cy
        end
        for _, o in ipairs(list) do
            local cx = math.floor(o.pos.x / width)
            local cy = math.floor(o.pos.y / width)
            local best
            for dx = -1, 1 do
                for dy = -1, 1 do
                    for _, p in ipairs(grid[key(cx + dx, cy + dy)] or {}) do
                        local g = group_of[p]
                        if (not best or g < best) and
                           objects.distance(o.pos, p.pos) <=
                           objects.half(o.size) + objects.half(p.size) then
                            best = g
                        end
                    end
                end
            end
            if not best then
                best = #groups + 1
                groups[best] = { objects = {} }
            end
            local members = groups[best].objects
            members[#members + 1] = o
            group_of[o] = best
            local k = key(cx, cy)
            grid[k] = grid[k] or {}
            table.insert(grid[k], o)
        end
        return groups
    end

    -- ---------------------------------------------------- combatants

    local function battery(owner, planet)
        local b = data.BATTERY
        return { owner = owner, object = planet, design = 0,
                 name = b.name, damage = 0, win = b.win, draw = b.draw,
                 armour = b.armour }
    end

    -- A side's combatants, strongest design first (minisec.md 9.2).
    local function combatants(ctx, owner, objs)
        local list = {}
        for _, o in ipairs(objs) do
            if objects.is(ctx, o, objects.FLEET) then
                local ships = o.data.ships
                local kinds = #ships
                local damage = o.data.damage or 0
                for k = kinds, 1, -1 do
                    local s = ships[k]
                    local st = objects.design_stats(ctx, s.design)
                    for i = 0, s.count - 1 do
                        -- The reference spreads damage with the index of
                        -- the ship within its design against the number of
                        -- designs, in unsigned 32-bit arithmetic (quirk).
                        local d = kinds - i
                        if d < 0 then
                            d = d + 4294967296
                        end
                        local share = math.floor(damage / math.max(1, d))
                        damage = damage - share
                        list[#list + 1] = { owner = owner, object = o,
                            design = s.design, name = st.name,
                            damage = share, win = math.floor(st.win),
                            draw = math.floor(st.draw),
                            armour = math.floor(st.armour) }
                    end
                end
            else
                local n = data.BATTERIES
                if objects.resource(o, data.RES_HOME_PLANET) == 1 then
                    n = data.HOME_BATTERIES
                end
                for _ = 1, n do
                    list[#list + 1] = battery(owner, o)
                end
            end
        end
        -- Stable sort by design, descending.
        for i, c in ipairs(list) do
            c.order = i
        end
        table.sort(list, function(a, b)
            if a.design ~= b.design then
                return a.design > b.design
            end
            return a.order < b.order
        end)
        return list
    end

    local function dead(c)
        return c.damage >= c.armour
    end

    local function all_dead(side)
        for _, c in ipairs(side.list) do
            if not dead(c) then
                return false
            end
        end
        return true
    end

    -- ---------------------------------------------------- a round

    -- The shots a side fires (minisec.md 9.3): one per alive combatant of
    -- its strongest alive design; on a draw only non-zero ones. On a win,
    -- scouts (zero win firepower) may make the side escape instead: all
    -- scouts, or with probability scouts / all combatants. Returns the
    -- list of firepowers.
    local function shot_list(side, draw, gen)
        local shots, shooters, scouts, top = {}, {}, 0, nil
        for _, c in ipairs(side.list) do
            if not dead(c) then
                if top == nil then
                    top = c.design
                end
                local shot = draw and c.draw or c.win
                if not draw and shot == 0 then
                    scouts = scouts + 1
                end
                if not (draw and shot == 0) and c.design == top then
                    shots[#shots + 1] = shot
                    shooters[#shots] = c
                end
            end
        end
        if not draw then
            local n = #side.list
            if scouts == n then
                shots = {}
            elseif scouts > 0 and gen:real1() < scouts / n then
                shots = {}
            end
        end
        return shots, shooters
    end

    -- Fires shots at a side: each hits the least damaged alive combatant
    -- of the target's strongest alive design. Returns the target design
    -- name, the shots that hit and the combatants that died.
    local function fire(shots, target, rec, shooters)
        local hits, killed, name = 0, 0, nil
        for i, power in ipairs(shots) do
            local pick, top
            for _, c in ipairs(target.list) do
                if not dead(c) then
                    if top == nil then
                        top = c.design
                    end
                    if c.design ~= top then
                        break
                    end
                    if not pick or c.damage < pick.damage then
                        pick = c
                    end
                elseif top ~= nil and c.design ~= top then
                    break
                end
            end
            if not pick then
                break
            end
            name = pick.name
            pick.damage = pick.damage + power
            hits = hits + 1
            rec:fire(shooters[i].ref, pick.ref)
            rec:damage(pick.ref, power)
            if dead(pick) then
                killed = killed + 1
                rec:death(pick.ref)
            end
        end
        return name, hits, killed
    end

    -- ---------------------------------------------------- outcome

    -- Applies a side's result to its objects (minisec.md 9.4): dead ships
    -- leave their fleets (an empty fleet is destroyed), survivors' damage
    -- becomes their fleet's Damage, a planet whose batteries all died
    -- falls (no owner, no orders, no longer a home world).
    local function resolve(ctx, b, side)
        local colony_dead, colonies = {}, {}
        local damage, damaged = {}, {}
        for _, c in ipairs(side.list) do
            local o = c.object
            if c.design == 0 then
                if colony_dead[o] == nil then
                    colony_dead[o] = dead(c)
                    colonies[#colonies + 1] = o
                else
                    colony_dead[o] = colony_dead[o] and dead(c)
                end
            elseif dead(c) then
                objects.remove_ships(ctx, o, c.design, 1)
                if objects.total_ships(o) == 0 then
                    b.text[c.owner] = b.text[c.owner] .. "Your fleet " ..
                                      o.name .. " was destroyed. "
                    objects.remove_fleet(ctx, o)
                end
            else
                if not damage[o] then
                    damage[o] = 0
                    damaged[#damaged + 1] = o
                end
                damage[o] = damage[o] + c.damage
            end
        end
        for _, o in ipairs(damaged) do
            if o.data.damage ~= damage[o] then
                o.data.damage = damage[o]
                ctx:changed(o)
            end
        end
        for _, o in ipairs(colonies) do
            if colony_dead[o] then
                if objects.resource(o, data.RES_HOME_PLANET) == 1 then
                    objects.remove_resource(ctx, o, data.RES_HOME_PLANET, 1)
                end
                ctx:clear_orders(o)
                objects.set_planet_owner(ctx, o, 0)
            end
        end
    end

    -- Adds text to every participant's summary but the ones in skip.
    local function tell_others(b, text, skip1, skip2)
        for _, pid in ipairs(b.players) do
            if pid ~= skip1 and pid ~= skip2 then
                b.text[pid] = b.text[pid] .. text
            end
        end
    end

    local function remove_side(sides, side)
        for i, s in ipairs(sides) do
            if s == side then
                table.remove(sides, i)
                return
            end
        end
    end

    -- The battle's recorder, with a side per player (named after the
    -- player, as the reference does) and an entity per combatant:
    -- "<design>-<fleet>-<n>" for the n-th ship of a design in a fleet,
    -- "planet-<planet>-<n>" for a planet's n-th battery. Each combatant
    -- gets its entity id as c.ref.
    local function record(ctx, group, sides)
        local where = group.objects[1]
        local place = where
        for _, o in ipairs(group.objects) do
            if objects.is(ctx, o, objects.PLANET) then
                place = o
                break
            end
        end
        local parent = place.parent and ctx:object(place.parent)
        if objects.is(ctx, place, objects.FLEET) and parent then
            place = parent
        end
        local rec = ctx:battle { media = "minisec", where = where,
                                 title = "Battle at " .. place.name }
        local used = {}
        for _, side in ipairs(sides) do
            local sid = side.name
            if used[sid] then
                sid = "player-" .. side.owner
            end
            used[sid] = true
            local s = rec:side(sid, side.owner)
            local n = {}
            for _, c in ipairs(side.list) do
                local o = c.object
                local kind = c.design == 0 and "planet" or c.name
                local k = kind .. "-" .. o.id
                local i = n[k] or 0
                n[k] = i + 1
                local id = k .. "-" .. i
                while used[id] do
                    id = id .. "'"
                end
                used[id] = true
                c.ref = id
                if c.design == 0 then
                    rec:entity(s, id, string.format("%s's colony on %s, "
                               .. "Defense battery %d", side.name, o.name,
                               i), "planet")
                else
                    rec:entity(s, id, string.format("%s, %s %d", o.name,
                               c.name, i), c.name)
                end
            end
        end
        return rec
    end

    -- One battle among the sides of a group.
    local function battle(ctx, gen, group)
        local by_owner, owners = {}, {}
        local ids = {}
        for _, o in ipairs(group.objects) do
            if not by_owner[o.owner] then
                by_owner[o.owner] = {}
                owners[#owners + 1] = o.owner
            end
            table.insert(by_owner[o.owner], o)
            ids[#ids + 1] = o.id
        end
        table.sort(owners)
        local b = { players = owners, text = {}, report = {} }
        local sides = {}
        for i, pid in ipairs(owners) do
            local p = ctx:player(pid)
            sides[i] = { owner = pid, name = p and p.name or ("player " ..
                         pid), list = combatants(ctx, pid, by_owner[pid]) }
            b.text[pid] = ""
        end
        local rec = record(ctx, group, sides)
        local report = b.report
        local function fired(who, shots, kind, target, tname, hits, killed)
            if #shots > 0 then
                report[#report + 1] = string.format("  %s fires %d %s "
                    .. "shot%s of %d at %s's %s: %d hit, %d destroyed.",
                    who.name, #shots, kind, #shots == 1 and "" or "s",
                    shots[1], target.name, tname or "ships", hits, killed)
            end
        end
        local round = 0
        while #sides >= 2 do
            round = round + 1
            rec:round()
            local ia, ib = 1, 2
            if #sides > 2 then
                ia = gen:range(0, #sides - 1) + 1
                ib = ia
                while ib == ia do
                    ib = gen:range(0, #sides - 1) + 1
                end
            end
            local A, B = sides[ia], sides[ib]
            local r1 = gen:range(0, 2)
            local r2 = gen:range(0, 2)
            local head = string.format("Round %d: %s chooses %s, %s chooses "
                .. "%s: ", round, A.name, RSP[r2], B.name, RSP[(r2 + r1) % 3])
            local escaped = false
            rec:log((head:gsub(": $", ".")))
            if r1 == 0 then
                report[#report + 1] = head .. "a draw."
                rec:log("A draw.")
                local sa, wa = shot_list(A, true, gen)
                local sb, wb = shot_list(B, true, gen)
                local tname, hits, killed = fire(sa, B, rec, wa)
                fired(A, sa, "draw", B, tname, hits, killed)
                tname, hits, killed = fire(sb, A, rec, wb)
                fired(B, sb, "draw", A, tname, hits, killed)
            else
                local W, L = A, B
                if r1 == 2 then
                    W, L = B, A
                end
                report[#report + 1] = head .. W.name .. " wins."
                rec:log(W.name .. " wins.")
                local shots, shooters = shot_list(W, false, gen)
                if #shots == 0 then
                    report[#report + 1] = "  " .. W.name ..
                                          "'s forces escape."
                    rec:log(W.name .. "'s forces escape.")
                    b.text[W.owner] = b.text[W.owner] .. "Your Fleet escaped. "
                    tell_others(b, W.name .. "'s fleet of escaped. ",
                                W.owner)
                    resolve(ctx, b, W)
                    remove_side(sides, W)
                    escaped = true
                else
                    local tname, hits, killed = fire(shots, L, rec,
                                                     shooters)
                    fired(W, shots, "win", L, tname, hits, killed)
                end
            end
            if not escaped then
                for _, pair in ipairs { { A, B }, { B, A } } do
                    local X, Y = pair[1], pair[2]
                    if all_dead(X) then
                        report[#report + 1] = "  " .. X.name ..
                                              "'s forces are destroyed."
                        rec:log(X.name .. "'s forces are destroyed.")
                        b.text[X.owner] = b.text[X.owner] .. "Your fleet "
                            .. "was destroyed by " .. Y.name .. "'s fleet. "
                        b.text[Y.owner] = b.text[Y.owner] .. "You destroyed "
                            .. X.name .. "'s fleet. "
                        tell_others(b, Y.name .. "'s fleet destroyed " ..
                                    X.name .. "'s fleet. ", X.owner, Y.owner)
                        resolve(ctx, b, X)
                        remove_side(sides, X)
                    end
                end
            end
        end
        if sides[1] then
            resolve(ctx, b, sides[1])
            b.text[sides[1].owner] = b.text[sides[1].owner] ..
                                     "Your Fleet survived combat."
        end
        table.sort(ids)
        local refs = {}
        for _, id in ipairs(ids) do
            refs[#refs + 1] = { type = 1, id = id }
        end
        for _, pid in ipairs(owners) do
            refs[#refs + 1] = { type = 7, id = pid }
        end
        local battle_id = rec:save()
        refs[#refs + 1] = ctx:battle_reference(battle_id)
        local details = "\n\nBattle report:\n" .. table.concat(report, "\n")
                        .. "\n\n" .. ctx:battle_link(battle_id)
        for _, pid in ipairs(owners) do
            ctx:message(pid, "Combat", b.text[pid] .. details, refs)
        end
    end

    -- Combat among the possible combatants (planets and fleets, ascending
    -- id, after movement): every group with two or more owners fights.
    function M.run(ctx, gen, list)
        local owned = {}
        for _, o in ipairs(list) do
            if o.owner ~= 0 then
                owned[#owned + 1] = o
            end
        end
        for _, group in ipairs(M.groups(ctx, owned)) do
            local owners, n = {}, 0
            for _, o in ipairs(group.objects) do
                if not owners[o.owner] then
                    owners[o.owner] = true
                    n = n + 1
                end
            end
            if n >= 2 then
                battle(ctx, gen, group)
            end
        end
    end

    return M
end
