-- MTSec end of turn (mtsec.md 7):
--   1. classify planets and fleets: first order Move -> movers, any
--      other first order -> others; note the container candidates
--   2. movers run their Move          3. combat at the new positions
--   4. every other first order of the objects that still exist
--   5. once a turn: the Universe's Year (= the turn number), planet
--      production (3), fleets parked at their owner's planet repaired,
--      fleets not moving stopped
--   6. (everything is visible to everyone: nothing to do)
--   7. victory (README.md "Victory"): players left with nothing are out;
--      the last one with planets wins, or at turn max_turns the one with
--      the most planets. Then the game is over: turns change nothing.
return function(mt)
    local data, objects, movement, combat, rng, arms =
        mt.data, mt.objects, mt.movement, mt.combat, mt.rng, mt.arms
    local M = {}

    local function run_first_orders(ctx, list)
        for _, o in ipairs(list) do
            if ctx:object(o.id) == o then
                ctx:execute_first_order(o)
            end
        end
    end

    -- Planet production (mtsec.md 3): while the Factories parameter p is
    -- under 100 it grows by 1 and the points are reset to p; then the One
    -- Time points arrive.
    function M.produce(ctx, planet)
        local d = planet.data
        local p = d.factories or 0
        if p < data.FACTORIES_GROWTH_LIMIT then
            p = p + 1
            d.factories = p
            objects.set_amount(d.resources, data.RES_FACTORIES, p)
        end
        if (d.one_time or 0) ~= 0 then
            objects.set_amount(d.resources, data.RES_FACTORIES,
                               objects.points(planet) + d.one_time)
            d.one_time = 0
        end
        ctx:changed(planet)
    end

    local function once_a_turn(ctx, all, created)
        local universe_t = ctx.types[objects.UNIVERSE]
        local planet_t = ctx.types[objects.PLANET]
        local fleet_t = ctx.types[objects.FLEET]
        local move_t = ctx.orders.Move
        local function upkeep(o)
            local t = o.type
            if t == universe_t then
                o.data.year = ctx.turn
                ctx:changed(o)
            elseif t == planet_t then
                if o.owner ~= 0 then
                    M.produce(ctx, o)
                end
            elseif t == fleet_t then
                local parent = ctx:object(o.parent)
                if parent and parent.type == planet_t and
                   parent.owner == o.owner and (o.data.damage or 0) ~= 0 then
                    o.data.damage = 0
                    ctx:changed(o)
                end
                local first = ctx:first_order(o)
                if not first or first.type ~= move_t then
                    local v = o.vel
                    if v.x ~= 0 or v.y ~= 0 or v.z ~= 0 then
                        o.vel = { x = 0, y = 0, z = 0 }
                        ctx:changed(o)
                    end
                end
            end
        end
        for _, list in ipairs { all, created } do
            for _, o in ipairs(list) do
                if ctx:object(o.id) == o then
                    upkeep(o)
                end
            end
        end
    end

    -- ---------------------------------------------------- victory

    function M.game_over(ctx)
        return ctx.state.game_over ~= nil
    end

    local function finish(ctx, winners, reason)
        local names, ids = {}, {}
        for _, p in ipairs(winners) do
            names[#names + 1] = p.name
            ids[#ids + 1] = p.id
            p.score = (p.score or 0) + 1
            ctx:player_changed(p)
        end
        ctx.state.game_over = { turn = ctx.turn, winners = ids,
                                reason = reason }
        ctx:state_changed()
        local body = reason .. " " .. (#names == 0 and "Nobody won." or
            (table.concat(names, " and ") .. (#names > 1 and " share" or
             " wins") .. " the game."))
        for _, p in ipairs(ctx:players()) do
            ctx:message(p.id, "Game over", body, { { type = -4, id = 1 } })
        end
    end

    local function victory(ctx)
        local planets, fleets, points = {}, {}, {}
        local planet_t, fleet_t = ctx.types[objects.PLANET],
                                  ctx.types[objects.FLEET]
        for o in ctx:each_object() do
            if o.owner ~= 0 then
                if o.type == planet_t then
                    planets[o.owner] = (planets[o.owner] or 0) + 1
                    points[o.owner] = (points[o.owner] or 0) +
                                      (o.data.factories or 0)
                elseif o.type == fleet_t then
                    fleets[o.owner] = (fleets[o.owner] or 0) + 1
                end
            end
        end
        local players = ctx:players()
        local standing = {}
        for _, p in ipairs(players) do
            if not planets[p.id] and not fleets[p.id] then
                if p.alive ~= false then
                    ctx:message(p.id, "You lost", "You have no planets and "
                                .. "no fleets left: your game is over.",
                                { { type = -4, id = 1 } })
                    p.alive = false
                    ctx:player_changed(p)
                end
            else
                standing[#standing + 1] = p
            end
        end
        if #players >= 2 and #standing == 1 and planets[standing[1].id] then
            finish(ctx, standing, "Every other player has been defeated.")
            return
        end
        local limit = ctx.settings.max_turns
        if limit > 0 and ctx.turn >= limit then
            local best, winners = -1, {}
            for _, p in ipairs(standing) do
                local key = (planets[p.id] or 0) * 1e9 + (points[p.id] or 0)
                if key > best then
                    best, winners = key, { p }
                elseif key == best then
                    winners[#winners + 1] = p
                end
            end
            finish(ctx, winners, "The game has reached its last turn ("
                   .. limit .. "): the most planets win (then the most "
                   .. "Factories).")
        end
    end

    -- ---------------------------------------------------- the turn

    function M.turn(ctx)
        if M.game_over(ctx) then
            for o in ctx:each_object(objects.UNIVERSE) do
                o.data.year = ctx.turn
                ctx:changed(o)
            end
            return
        end
        local gen = rng.open(ctx)
        objects.begin_turn()
        local planet_t = ctx.types[objects.PLANET]
        local fleet_t = ctx.types[objects.FLEET]
        local move_t = ctx.orders.Move
        local all, combatants, containers = {}, {}, {}
        local movers, others = {}, {}
        local container_ids = 0
        for o in ctx:each_object() do
            all[#all + 1] = o
            local t = o.type
            if t == planet_t or t == fleet_t then
                combatants[#combatants + 1] = o
                local first = ctx:first_order(o)
                if first then
                    local list = first.type == move_t and movers or others
                    list[#list + 1] = o
                end
            end
            if t ~= fleet_t then
                containers[#containers + 1] = o
                container_ids = container_ids + o.id
            end
        end
        movement.begin_turn(ctx, containers, container_ids)
        run_first_orders(ctx, movers)
        combat.run(ctx, combatants)
        run_first_orders(ctx, others)
        movement.end_turn()
        once_a_turn(ctx, all, objects.created)
        victory(ctx)
        rng.close(ctx, gen)
    end

    return M
end
