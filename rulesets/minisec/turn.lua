-- MiniSec end of turn, in the reference's order (minisec.md 8):
--   1. classify planets and fleets by their first order (ascending id);
--      note the container candidates for re-parenting
--   2. movers run their Move       3. interceptors their Intercept
--   4. combat at the new positions  5. destroyed fleets go
--   6. every other first order (Build Fleet, Colonise, Split, Merge,
--      No Operation) of objects that still exist   7. emptied fleets go
--   8. once a turn: the year advances, fleets parked at their owner's
--      planets are repaired, fleets not moving stop
--   9. (everything is visible to everyone: nothing to do)
--  10. elimination: players without objects lose
--  11. victory: the last player standing wins (the game then ends:
--      init.lua's game_over, setting end_at_victory)
-- Fleets are removed at the moment they are destroyed, emptied or merged
-- rather than in steps 5 and 7: nothing looks at them in between, so the
-- outcome is the same.
return function(ms)
    local objects, movement, combat, rng, universe =
        ms.objects, ms.movement, ms.combat, ms.rng, ms.universe
    local M = {}

    -- Runs the first order of each object in list that still exists.
    local function run_first_orders(ctx, list)
        for _, o in ipairs(list) do
            if ctx:object(o.id) == o then
                ctx:execute_first_order(o)
            end
        end
    end

    -- Step 8, for every object (those of the turn's start that still
    -- exist, then the fleets made during the turn); returns the number of
    -- planets and fleets each player owns.
    local function once_a_turn(ctx, all, created)
        local universe_t = ctx.types[objects.UNIVERSE]
        local planet_t = ctx.types[objects.PLANET]
        local fleet_t = ctx.types[objects.FLEET]
        local move_t, intercept_t = ctx.orders.Move, ctx.orders.Intercept
        local owned = {}
        local function upkeep(o)
            local t = o.type
            if t == universe_t then
                o.data.year = (o.data.year or 0) + 1
                ctx:changed(o)
            elseif t == fleet_t then
                local parent = ctx:object(o.parent)
                if parent and parent.type == planet_t and
                   parent.owner == o.owner and (o.data.damage or 0) ~= 0 then
                    o.data.damage = 0
                    ctx:changed(o)
                end
                local first = ctx:first_order(o)
                if not first or (first.type ~= move_t and
                                 first.type ~= intercept_t) then
                    local v = o.vel
                    if v.x ~= 0 or v.y ~= 0 or v.z ~= 0 then
                        o.vel = { x = 0, y = 0, z = 0 }
                        ctx:changed(o)
                    end
                end
            end
            if o.owner ~= 0 and (t == fleet_t or t == planet_t) then
                owned[o.owner] = (owned[o.owner] or 0) + 1
            end
        end
        for _, list in ipairs { all, created } do
            for _, o in ipairs(list) do
                if ctx:object(o.id) == o then
                    upkeep(o)
                end
            end
        end
        return owned
    end

    -- Steps 10 and 11. The winner's score is the number of players they
    -- outlived. (The reference sets it to dead players - 1, counting on
    -- the guest being among the dead; here only players who are guests
    -- are left out, so a game without a guest scores right.)
    local function players(ctx, owned)
        local alive, dead, guests = {}, 0, 0
        for _, p in ipairs(ctx:players()) do
            if p.alive == false or not owned[p.id] then
                if p.alive ~= false then
                    ctx:message(p.id, "You lost", "You do not own any "
                        .. "objects, therefore you game has finished.",
                        { { type = -4, id = 1 } })
                    p.alive = false
                    ctx:player_changed(p)
                end
                dead = dead + 1
                if universe.is_guest(ctx, p) then
                    guests = guests + 1
                end
            else
                alive[#alive + 1] = p
            end
        end
        if #alive == 1 then
            local p = alive[1]
            local score = dead - guests
            if (p.score or 0) ~= score then
                ctx:message(p.id, "You won!", "You have eliminated all the "
                            .. "competing players. Congratulations!", {})
                p.score = score
                ctx:player_changed(p)
            end
        end
    end

    function M.turn(ctx)
        local g = rng.open(ctx)
        objects.begin_turn()
        local planet_t = ctx.types[objects.PLANET]
        local fleet_t = ctx.types[objects.FLEET]
        local move_t, intercept_t = ctx.orders.Move, ctx.orders.Intercept
        local all, combatants, containers = {}, {}, {}
        local movers, interceptors, others = {}, {}, {}
        local container_ids = 0
        for o in ctx:each_object() do
            all[#all + 1] = o
            local t = o.type
            if t == planet_t or t == fleet_t then
                combatants[#combatants + 1] = o
                local first = ctx:first_order(o)
                if first then
                    local list = others
                    if first.type == move_t then
                        list = movers
                    elseif first.type == intercept_t then
                        list = interceptors
                    end
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
        run_first_orders(ctx, interceptors)
        combat.run(ctx, g.game, combatants)
        run_first_orders(ctx, others)
        movement.end_turn()
        players(ctx, once_a_turn(ctx, all, objects.created))
        rng.close(ctx, g)
    end

    return M
end
