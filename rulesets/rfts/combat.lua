-- RFTS combat (rfts.md 8 step 3): fleets of different owners in the same
-- star system fight until one side is gone or has no attack left; damage
-- destroys ships; every point of damage dealt is a victory point.
-- With the server's battle recorder (ctx:battle), each fight is kept as
-- a battle log the players of both sides can read.
return function(rf)
    local objects, designs, rng = rf.objects, rf.designs, rf.rng
    local M = {}

    local MAX_ROUNDS = 10000       -- a safety net: fights end long before
    local LOGGED_ROUNDS = 100      -- rounds kept in a battle log

    -- Adds damage to a fleet and destroys ships (rfts.md 8): a random
    -- ship type (range(0, types - 1): the reference's range(0, types)
    -- can pick one past the end); an unarmoured type loses
    -- range(1, count/2) ships, an armoured one
    -- floor(d * 0.125 / fleet armour * real2 / design armour).
    -- Removes the fleet when it has no ships left. Returns the number of
    -- ships destroyed and whether the fleet is still alive.
    function M.damage(ctx, g, fleet, amount, battle)
        fleet.data.damage = (fleet.data.damage or 0) + amount
        ctx:changed(fleet)
        local d = fleet.data.damage
        local ships = fleet.data.ships
        if #ships == 0 then
            objects.remove_fleet(ctx, fleet)
            return 0, false
        end
        local st = objects.fleet_stats(ctx, fleet)
        local pick = ships[g:range(0, #ships - 1) + 1]
        local ds = objects.design_stats(ctx, pick.design)
        local n
        if ds.armour <= 0 then
            n = g:range(1, math.floor(pick.count / 2))
        else
            n = math.floor((d * 0.125 / st.armour) * rng.real2(g) *
                           (1 / ds.armour))
        end
        n = math.min(n, pick.count)
        if n > 0 then
            objects.remove_ships(ctx, fleet, pick.design, n)
        end
        if objects.total_ships(fleet) == 0 then
            objects.remove_fleet(ctx, fleet)
            return n, false
        end
        return n, true
    end

    local function alive(ctx, fleet)
        return ctx:object(fleet.id) == fleet
    end

    local function owner_name(ctx, id)
        local p = ctx:player(id)
        return p and p.name or ("player " .. id)
    end

    -- The battle log of a fight (nil without the recorder).
    local function open_battle(ctx, sys, fleet, opponents)
        if not ctx.battle then
            return nil
        end
        local b = ctx:battle { media = "mtsec",
                               title = "Battle at " .. sys.name }
        local sides, refs = {}, {}
        local function add(f)
            local s = sides[f.owner]
            if not s then
                s = b:side(owner_name(ctx, f.owner) .. " (player "
                           .. f.owner .. ")", f.owner)
                sides[f.owner] = s
            end
            local parts, kind = {}, "planet"
            for _, sh in ipairs(f.data.ships) do
                local name = objects.design_stats(ctx, sh.design).name
                parts[#parts + 1] = sh.count .. " " .. name
                if kind == "planet" then
                    kind = name
                end
            end
            refs[f.id] = "fleet-" .. f.id
            b:entity(s, refs[f.id], owner_name(ctx, f.owner) .. "'s "
                     .. f.name .. " (" .. table.concat(parts, ", ") .. ")",
                     kind)
        end
        add(fleet)
        for _, o in ipairs(opponents) do
            add(o)
        end
        return { b = b, refs = refs, rounds = 0 }
    end

    -- One fleet's fight with every opposing fleet of its system.
    local function fight(ctx, g, fleet, sys, fleet_t)
        local opponents = {}
        for _, id in ipairs(sys.children) do
            local o = ctx:object(id)
            if o and o.type == fleet_t and o.owner ~= fleet.owner and
               o.owner ~= 0 then
                opponents[#opponents + 1] = o
            end
        end
        if #opponents == 0 or objects.fleet_stats(ctx, fleet).attack <= 0 then
            return
        end
        local log = open_battle(ctx, sys, fleet, opponents)
        local dealt, lost = {}, {}
        local function hit(src, dst, n)
            designs.add_vp(ctx, src.owner, n)
            dealt[src.owner] = (dealt[src.owner] or 0) + n
            if log and log.open then
                log.b:fire(log.refs[src.id], log.refs[dst.id])
                log.b:damage(log.refs[dst.id], n)
            end
            local killed, still = M.damage(ctx, g, dst, n)
            lost[dst.owner] = (lost[dst.owner] or 0) + killed
            if log and log.open and not still then
                log.b:death(log.refs[dst.id])
            end
            return still
        end
        local rounds = 0
        while alive(ctx, fleet) and rounds < MAX_ROUNDS do
            local attack = objects.fleet_stats(ctx, fleet).attack
            local any = false
            for _, o in ipairs(opponents) do
                if alive(ctx, o) then
                    any = true
                end
            end
            if not any or attack <= 0 then
                break
            end
            rounds = rounds + 1
            if log then
                log.open = rounds <= LOGGED_ROUNDS
                if log.open then
                    log.b:round()
                end
            end
            for _, o in ipairs(opponents) do
                if alive(ctx, fleet) and alive(ctx, o) then
                    local a = objects.fleet_stats(ctx, fleet).attack
                    if hit(fleet, o, a) then
                        local back = objects.fleet_stats(ctx, o).attack
                        if back > 0 then
                            hit(o, fleet, back)
                        end
                    end
                end
            end
        end
        -- The owners of both sides hear of it.
        local owners, order, lines = {}, {}, {}
        local function note(id)
            if not owners[id] then
                owners[id] = true
                order[#order + 1] = id
                lines[#lines + 1] = string.format("%s dealt %d damage and "
                    .. "lost %d ships.", owner_name(ctx, id), dealt[id] or 0,
                    lost[id] or 0)
            end
        end
        note(fleet.owner)
        for _, o in ipairs(opponents) do
            note(o.owner)
        end
        local body = "Fleets fought at " .. sys.name .. ".\n"
                     .. table.concat(lines, "\n")
        local refs = { { type = 1, id = sys.id } }
        if log then
            if rounds > LOGGED_ROUNDS then
                log.b:log(string.format("... and %d more rounds",
                                        rounds - LOGGED_ROUNDS))
            end
            local id = log.b:save()
            refs[#refs + 1] = ctx:battle_reference(id)
            body = body .. "\n" .. ctx:battle_link(id)
        end
        for _, id in ipairs(order) do
            ctx:message(id, "Combat", body, refs)
        end
    end

    -- Step 3 for a fleet that is not in transit.
    function M.run(ctx, g, fleet)
        local sys = ctx:object(fleet.parent)
        if not sys or sys.type ~= ctx.types[objects.SYSTEM] then
            return
        end
        fight(ctx, g, fleet, sys, ctx.types[objects.FLEET])
    end

    return M
end
