-- MTSec universe: a new game (mtsec.md 5) and a new player (6).
--
-- Draws, all from the one game generator, in this order (README.md
-- "Randomness"; of a coordinate pair y is drawn before x, as the GCC
-- build of the reference evaluates them):
--   every planet, right after it is made: the ore maxima (Uranium 10-100,
--   Thorium 20-100, Massivium 10-100, Enriched Uranium 7-70, Cerium 5-50,
--   Antiparticle 1-30, Antimatter 1-15), then its Factories (1-15; a home
--   planet 20-50);
--   each of the 45 random systems: name range(1, 45), y, x
--   range(1, 8000) x 10^6 - 4 x 10^9, then while it has fewer than 5
--   planets range(1, 10) < 6 adds one (and its draws);
--   a new player: star y, x range(0, 1000); planet y, x range(0, 10000);
--   the planet's draws; fleet y, x range(0, 10000).
return function(mt)
    local data, rng, objects, designs = mt.data, mt.rng, mt.objects,
                                        mt.designs
    local M = {}

    -- The resources of a planet, drawn. factories: { lo, hi }.
    local function stock_planet(ctx, gen, planet, factories)
        local list = planet.data.resources
        for _, o in ipairs(data.ORES) do
            objects.add_amount(list, o[1], 0, gen:range(o[2], o[3]))
        end
        local f = gen:range(factories[1], factories[2])
        objects.add_amount(list, data.RES_FACTORIES, f)
        planet.data.factories = f
        planet.data.one_time = 0
        ctx:changed(planet)
    end

    local function check_settings(s)
        if s.random_seed ~= math.floor(s.random_seed) or
           s.random_seed < -1 or s.random_seed > 4294967295 then
            error("MTSec setting random_seed must be -1 or a whole number "
                  .. "from 0 to 4294967295", 0)
        end
        if s.max_turns ~= math.floor(s.max_turns) or s.max_turns < 0 then
            error("MTSec setting max_turns must be a whole number, 0 or "
                  .. "more", 0)
        end
    end

    function M.setup(ctx)
        check_settings(ctx.settings)
        rng.create(ctx)
        ctx.state.stock = {}
        ctx.state.arms = { slots = {} }
        ctx:state_changed()
        rng.with(ctx, function(gen)
            ctx:new_object { type = objects.UNIVERSE,
                name = data.UNIVERSE.name, parent = 0,
                size = data.UNIVERSE.size, pos = { x = 0, y = 0, z = 0 },
                data = { year = 0 } }
            objects.new_space(ctx, objects.GALAXY, {
                name = data.GALAXY.name, parent = 0,
                size = data.GALAXY.size, pos = data.GALAXY.pos })
            for _, sys in ipairs(data.SYSTEMS) do
                local star = objects.new_space(ctx, objects.SYSTEM, {
                    name = sys.name, parent = 1, size = sys.size,
                    pos = sys.pos })
                for _, p in ipairs(sys.planets) do
                    local planet = objects.new_planet(ctx, { name = p.name,
                        parent = star, offset = p.offset })
                    stock_planet(ctx, gen, planet, data.FACTORIES_UNIVERSE)
                end
            end
            for _ = 1, data.RANDOM_SYSTEMS do
                local name = data.SYSTEM_NAMES[gen:range(1, 45)]
                local y = gen:range(1, 8000) * 1000000 - 4000000000
                local x = gen:range(1, 8000) * 1000000 - 4000000000
                local star = objects.new_space(ctx, objects.SYSTEM, {
                    name = name, parent = 1, size = data.RANDOM_SYSTEM_SIZE,
                    pos = { x = x, y = y, z = 0 } })
                local n = 0
                while n < data.MAX_PLANETS and gen:range(1, 10) < 6 do
                    local planet = objects.new_planet(ctx, {
                        name = name .. " " .. n, parent = star,
                        offset = { n * 40000, -n * 35000 } })
                    stock_planet(ctx, gen, planet, data.FACTORIES_UNIVERSE)
                    -- The reference marks these as home planets (a bug
                    -- without effect: nothing reads the marker).
                    objects.add_amount(planet.data.resources,
                                       data.RES_HOME_PLANET, 1)
                    n = n + 1
                end
            end
        end)
    end

    -- The stock designs of a player: { scout = id, missile = id }.
    function M.stock_of(ctx, player_id)
        return (ctx.state.stock or {})[tostring(player_id)]
    end

    function M.player_joined(ctx, player)
        local stock = designs.create_stock(ctx, player.id)
        local scout = stock.Scout
        ctx.state.stock = ctx.state.stock or {}
        ctx.state.stock[tostring(player.id)] = {
            scout = scout.id, missile = stock["Alpha Missile"].id }
        ctx:state_changed()
        local name = player.name
        rng.with(ctx, function(gen)
            local sy = (gen:range(0, 1000) - 500) * 10000000
            local sx = (gen:range(0, 1000) - 500) * 10000000
            local star = objects.new_space(ctx, objects.SYSTEM, {
                name = name .. " Star System", parent = 1, size = 2000000,
                pos = { x = sx, y = sy, z = 0 } })
            local py = gen:range(0, 10000) - 5000
            local px = gen:range(0, 10000) - 5000
            local planet = objects.new_planet(ctx, {
                name = name .. "'s Planet", parent = star,
                offset = { px, py } })
            objects.add_amount(planet.data.resources, data.RES_HOME_PLANET, 1)
            stock_planet(ctx, gen, planet, data.FACTORIES_HOME)
            objects.set_planet_owner(ctx, planet, player.id)
            local fy = gen:range(0, 10000) - 5000
            local fx = gen:range(0, 10000) - 5000
            objects.new_fleet(ctx, {
                name = name .. "'s Fleet #1", parent = star.id,
                owner = player.id,
                pos = { x = star.pos.x + fx, y = star.pos.y + fy, z = 0 },
                ships = { { design = scout.id, count = 2 } } })
        end)
        designs.count_ordered(ctx, scout, 2)
        designs.count_built(ctx, scout, 2)
    end

    return M
end
