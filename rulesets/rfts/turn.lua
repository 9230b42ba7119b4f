-- RFTS end of turn (rfts.md 8), with ctx.turn the number of the turn
-- that starts now (t = ctx.turn mod 3):
--   1. every object, ascending id: every order of its queue, front to
--      back; finished orders are removed
--   2. exploration (every owned planet and fleet outside transit
--      explores its star system)
--   3. once a turn, ascending id: the universe's Turn; owned planets: RP
--      (t = 0), population update and PDB upgrade (t = 1), Ship
--      Technology max; fleets outside transit fight; allowed orders
--   4. exploration again; PDB-upgrade flags cleared; scores
--   5. victory: the game ends when ctx.turn reaches game_length
-- Objects are removed the moment they go (the reference waits for steps
-- 2 and 4; nothing looks at them in between).
return function(rf)
    local data, objects, designs, rng, combat, orders =
        rf.data, rf.objects, rf.designs, rf.rng, rf.combat, rf.orders
    local M = {}

    local BY_ID = {}
    for i, ot in ipairs(orders.TYPES) do
        BY_ID[i - 1] = ot
    end

    local function trunc(v)
        if v >= 0 then
            return math.floor(v)
        end
        return math.ceil(v)
    end

    -- Step 1 for one object.
    local function run_orders(ctx, obj)
        local q = ctx:queue(obj)
        if not q or #q.orders == 0 then
            return
        end
        local done = {}
        for _, order in ipairs({ unpack(q.orders) }) do
            if ctx:object(obj.id) ~= obj then
                return            -- the object is gone (merged, emptied)
            end
            local ot = BY_ID[order.type]
            local ok, res = pcall(ot.execute, ctx, obj, order)
            if not ok then
                error(string.format("%s order on object %d (%s) failed: %s",
                      ot.name, obj.id, tostring(obj.name), tostring(res)), 0)
            end
            if res then
                done[order] = true
            end
        end
        if ctx:object(obj.id) ~= obj then
            return
        end
        q = ctx:queue(obj)
        local left = {}
        for _, order in ipairs(q.orders) do
            if not done[order] then
                left[#left + 1] = order
            end
        end
        q.orders = left
        -- (marks the queue changed: order states and removals)
        local names = {}
        for i, id in ipairs(q.allowed) do
            names[i] = BY_ID[id].name
        end
        ctx:set_allowed(obj, names)
    end

    -- rfts.md 8: the population update of an owned planet.
    local function population(ctx, g, planet)
        local social = objects.get(planet, data.SOCIAL)
        local smax = objects.max(planet, data.SOCIAL)
        local plan = objects.get(planet, data.PLANETARY)
        local pmax = objects.max(planet, data.PLANETARY)
        local ratio = 0
        if pmax > 0 and smax > 0 then
            ratio = plan / pmax - social / smax
        end
        social = trunc(social + 0.125 * ratio)
        local maint = objects.get(planet, data.POP_MAINT)
        maint = maint + math.floor(maint * g:range(-50, 125) / 1000)
        local pop = objects.get(planet, data.POPULATION)
        if pop ~= 0 then
            if maint < pop then
                pop = pop - math.floor((pop - maint) / 3)
            end
            -- Signed (the reference's unsigned arithmetic makes a
            -- social environment below 40 explode the population).
            pop = pop + math.floor(pop * (social - 40) / 9)
        end
        objects.set(ctx, planet, data.SOCIAL, social)
        objects.set(ctx, planet, data.POP_MAINT, 0)
        if pop < 0 then
            local owner = planet.owner
            objects.set(ctx, planet, data.POPULATION, 0)
            objects.set_planet_owner(ctx, planet, 0)
            ctx:message(owner, "Planet population dead!", "The population "
                        .. "of " .. planet.name .. " has died out; the "
                        .. "planet is no longer yours.",
                        { { type = 1, id = planet.id } })
            return
        end
        objects.set(ctx, planet, data.POPULATION,
                    math.min(pop, data.MAX_POPULATION))
    end

    -- PDB upgrade: lower-level PDBs (and their maintenance) become PDBs
    -- of the owner's new level.
    local function upgrade_pdbs(ctx, planet, level)
        for k = 1, level - 1 do
            for _, list in ipairs { data.PDB, data.PDB_MAINT } do
                local n = objects.get(planet, list[k])
                if n ~= 0 then
                    objects.add(ctx, planet, list[level], n)
                    objects.set(ctx, planet, list[k], 0)
                end
            end
        end
    end

    local function planet_turn(ctx, g, planet, t)
        local owner = planet.owner
        if owner == 0 then
            return
        end
        if t == 0 then
            local pop = math.min(objects.get(planet, data.POPULATION),
                                 objects.max(planet, data.POPULATION))
            objects.set(ctx, planet, data.RP, pop * 2 + math.floor(
                objects.get(planet, data.INDUSTRY) *
                objects.get(planet, data.SOCIAL) / 16))
        elseif t == 1 then
            population(ctx, g, planet)
            owner = planet.owner
            if owner ~= 0 and designs.info(ctx, owner).upgrade then
                upgrade_pdbs(ctx, planet, designs.pdb_level(ctx, owner))
            end
        end
        if planet.owner ~= 0 then
            local tech = designs.info(ctx, planet.owner).tech
            if objects.max(planet, data.SHIP_TECH) ~= tech then
                objects.set_max(ctx, planet, data.SHIP_TECH, tech)
            end
        end
    end

    -- A fleet left in transit without a Move (its Move was removed)
    -- goes back to the system it left.
    local function stranded(ctx, fleet)
        local q = ctx:queue(fleet)
        for _, o in ipairs(q and q.orders or {}) do
            if o.type == ctx.orders.Move then
                return
            end
        end
        local sys = fleet.data.from and ctx:object(fleet.data.from)
        if sys then
            orders.arrive(ctx, fleet, sys)
        end
    end

    -- Scores, sorted by victory points (then player id).
    function M.scores(ctx)
        local list = {}
        for _, p in ipairs(ctx:players()) do
            list[#list + 1] = { id = p.id, name = p.name,
                                vp = designs.info(ctx, p.id).vp }
        end
        table.sort(list, function(a, b)
            if a.vp ~= b.vp then
                return a.vp > b.vp
            end
            return a.id < b.id
        end)
        return list
    end

    -- rfts.md 10. The game ends when ctx.turn reaches game_length. The
    -- winner is the player with the most victory points ("an
    -- overwhelming victory" with at least 2.5 times the runner-up's).
    local function victory(ctx)
        if ctx.turn < ctx.settings.game_length then
            return
        end
        local list = M.scores(ctx)
        local lines = {}
        for i, s in ipairs(list) do
            lines[i] = string.format("%d. %s: %d victory points", i, s.name,
                                     s.vp)
        end
        local winner = list[1]
        local headline = "Nobody played."
        if winner then
            local second = list[2]
            if second and second.vp == winner.vp then
                headline = "The game is drawn between the leaders."
                winner = nil
            elseif second and winner.vp < 2.5 * second.vp then
                headline = winner.name .. " wins on points."
            else
                headline = winner.name .. " wins an overwhelming victory."
            end
        end
        local st = ctx.state
        st.game_over = true
        st.winner = winner and winner.id or 0
        st.final_turn = ctx.turn
        ctx:state_changed()
        local body = headline .. "\n\n" .. table.concat(lines, "\n")
        for _, p in ipairs(ctx:players()) do
            ctx:message(p.id, "Game over!", body, {})
        end
    end

    local function set_turn(ctx)
        local u = ctx:object(0)
        if u and u.data.turn ~= ctx.turn then
            u.data.turn = ctx.turn
            ctx:changed(u)
        end
    end

    function M.turn(ctx)
        if ctx.state.game_over then
            set_turn(ctx)
            return
        end
        local g = rng.open(ctx)
        local planet_t = ctx.types[objects.PLANET]
        local fleet_t = ctx.types[objects.FLEET]
        for o in ctx:each_object() do
            if o.type == planet_t or o.type == fleet_t then
                run_orders(ctx, o)
            end
        end
        objects.explore_all(ctx)
        local t = ctx.turn % 3
        for o in ctx:each_object() do
            if o.id == 0 then
                set_turn(ctx)
            elseif o.type == planet_t then
                planet_turn(ctx, g, o, t)
                objects.refresh_allowed(ctx, o)
            elseif o.type == fleet_t and ctx:object(o.id) == o then
                if o.parent == 0 then
                    stranded(ctx, o)
                else
                    combat.run(ctx, g, o)
                end
                if ctx:object(o.id) == o then
                    objects.refresh_allowed(ctx, o)
                end
            end
        end
        objects.explore_all(ctx)
        for _, p in ipairs(ctx:players()) do
            local info = designs.info(ctx, p.id)
            if info.upgrade then
                info.upgrade = false
                ctx:state_changed()
            end
            if (p.score or 0) ~= info.vp then
                p.score = info.vp
                ctx:player_changed(p)
            end
        end
        victory(ctx)
        rng.close(ctx, g)
    end

    function M.turn_name(ctx, turn)
        if ctx.state.game_over then
            return "Game over"
        end
        return data.TURN_NAMES[(turn or ctx.turn) % 3]
    end

    return M
end
