-- MiniSec universe: creating a new game (minisec.md 4) and setting up a
-- player who joins (minisec.md 6).
--
-- Random draws follow the reference build (GCC, right-to-left evaluation
-- of arguments, minisec.md 1.3): of a coordinate pair y is drawn before
-- x. The "current" generator (the debug generator when random_seed is
-- set) places things; the game generator picks media.
return function(ms)
    local data, rng, objects = ms.data, ms.rng, ms.objects
    local M = {}

    -- A signed 32-bit product, as the reference computes home system
    -- coordinates (minisec.md 6, quirk kept: it sets the travel times).
    local function wrap32(v)
        v = v % 4294967296
        if v >= 2147483648 then
            v = v - 4294967296
        end
        return v
    end
    M.wrap32 = wrap32

    local function check_settings(s)
        for _, k in ipairs { "min_systems", "max_systems", "min_planets",
                             "max_planets", "total_planets" } do
            local v = s[k]
            if v < 0 or v ~= math.floor(v) or v > 0x0FFFFFFF then
                error("MiniSec setting " .. k .. " must be a whole number "
                      .. "from 0 to 268435455", 0)
            end
        end
        if s.min_systems > s.max_systems then
            error("MiniSec setting min_systems is larger than max_systems",
                  0)
        end
        if s.min_planets > s.max_planets then
            error("MiniSec setting min_planets is larger than max_planets",
                  0)
        end
        for i, n in ipairs(s.system_names) do
            if type(n) ~= "string" then
                error("MiniSec setting system_names: entry " .. i ..
                      " is not a string", 0)
            end
        end
        if s.random_seed ~= math.floor(s.random_seed) then
            error("MiniSec setting random_seed must be a whole number", 0)
        end
    end

    -- The system name picker (minisec.md 1.4): the names given in the
    -- setting system_names in order (the reference reads them from a
    -- file), else the built-in names drawn without replacement; then
    -- "System 1", "System 2", ...
    local function name_picker(settings, gen)
        local given, left = {}, {}
        for _, n in ipairs(settings.system_names) do
            n = n:match("^%s*(.-)%s*$")
            if n ~= "" then
                given[#given + 1] = n
            end
        end
        for i, n in ipairs(data.SYSTEM_NAMES) do
            left[i] = n
        end
        local next_given, fallback = 1, 0
        return function()
            if #settings.system_names > 0 then
                local n = given[next_given]
                if n then
                    next_given = next_given + 1
                    return n
                end
            elseif #left > 0 then
                return table.remove(left, gen:range(0, #left - 1) + 1)
            end
            fallback = fallback + 1
            return data.SYSTEM_PREFIX .. " " .. fallback
        end
    end

    -- A random star system and its planets (minisec.md 4 step 6).
    -- Returns the planet budget left.
    local function random_system(ctx, g, names, budget)
        local s = ctx.settings
        local nplanets = s.min_planets
        if s.min_planets ~= s.max_planets then
            nplanets = g.current:range(s.min_planets, s.max_planets)
        end
        if nplanets > budget then
            nplanets = budget
        end
        local name = names()
        local y = g.current:range(0, 8000) * 1000000 - 4000000000
        local x = g.current:range(0, 8000) * 1000000 - 4000000000
        local colour = rng.pick(g.game, data.STAR_MEDIA)
        local star = objects.new_space(ctx, objects.SYSTEM, {
            name = name, parent = 1, size = nplanets * 60000,
            pos = { x = x, y = y, z = 0 },
            media = data.STAR_MEDIA_PREFIX .. colour })
        local numbered = name:sub(1, #data.SYSTEM_PREFIX) ==
                         data.SYSTEM_PREFIX
        for i = 1, nplanets do
            objects.new_planet(ctx, {
                name = numbered and (name .. ", Planet " .. i)
                       or (name .. " " .. i),
                parent = star, offset = { i * 40000, -i * 35000 },
                look = rng.pick(g.game, data.PLANET_MEDIA) })
            budget = budget - 1
        end
        return budget
    end

    -- A new game: the fixed universe, then the random systems.
    function M.setup(ctx)
        local s = ctx.settings
        check_settings(s)
        rng.create(ctx)
        rng.with(ctx, function(g)
            ctx:new_object { type = objects.UNIVERSE,
                name = data.UNIVERSE.name, parent = 0,
                size = data.UNIVERSE.size, pos = { x = 0, y = 0, z = 0 },
                data = { icon = data.ICON_SYSTEM,
                         media = data.UNIVERSE.media, year = 0 } }
            objects.new_space(ctx, objects.GALAXY, {
                name = data.GALAXY.name, parent = 0,
                size = data.GALAXY.size, pos = data.GALAXY.pos,
                media = data.GALAXY.media })
            local systems = {}
            for i, sys in ipairs(data.SYSTEMS) do
                systems[i] = objects.new_space(ctx, objects.SYSTEM, {
                    name = sys.name, parent = 1, size = sys.size,
                    pos = sys.pos,
                    media = data.STAR_MEDIA_PREFIX .. sys.colour })
            end
            for _, p in ipairs(data.PLANETS) do
                objects.new_planet(ctx, { name = p.name,
                    parent = systems[p.system], offset = p.offset,
                    look = p.look })
            end
            local count = s.min_systems
            if s.min_systems ~= s.max_systems then
                count = g.current:range(s.min_systems, s.max_systems)
            end
            local budget = s.total_planets > 0 and s.total_planets
                           or 0x0FFFFFFF
            local names = name_picker(s, g.current)
            for _ = 1, count do
                budget = random_system(ctx, g, names, budget)
                if budget <= 0 then
                    break
                end
            end
        end)
    end

    -- Is this player the guest (a spectator)? minisec.md 6: the account
    -- named exactly "guest", unless the setting noguest is true.
    function M.is_guest(ctx, player)
        return player.name == "guest" and not ctx.settings.noguest
    end

    local FLEET_NAMES = { " First Fleet", " Second Fleet", " Third Fleet" }

    -- A player joins: the stock designs, a home system with a home
    -- planet, and three fleets of one frigate each.
    function M.player_joined(ctx, player)
        if M.is_guest(ctx, player) then
            player.alive = false
            ctx:player_changed(player)
            return
        end
        local stock = ms.designs.create_stock(ctx, player.id)
        local frigate = stock.Frigate
        local name = player.name
        rng.with(ctx, function(g)
            local cur = g.current
            local sy = cur:range(-5000, 5000)
            local sx = cur:range(-5000, 5000)
            local colour = rng.pick(g.game, data.STAR_MEDIA)
            local star = objects.new_space(ctx, objects.SYSTEM, {
                name = name .. " Star System", parent = 1, size = 80000,
                pos = { x = wrap32(sx * 10000000), y = wrap32(sy * 10000000),
                        z = 0 },
                media = data.STAR_MEDIA_PREFIX .. colour })
            local look = rng.pick(g.game, data.PLANET_MEDIA)
            local py = cur:range(-5000, 5000) * 10
            local px = cur:range(-5000, 5000) * 10
            local planet = objects.new_planet(ctx, { name = name .. " Planet",
                parent = star, offset = { px, py }, look = look })
            objects.add_resource(ctx, planet, data.RES_HOME_PLANET, 1)
            objects.set_planet_owner(ctx, planet, player.id)
            for _, suffix in ipairs(FLEET_NAMES) do
                local fy = cur:range(-5000, 5000) * 10
                local fx = cur:range(-5000, 5000) * 10
                objects.new_fleet(ctx, {
                    name = name .. suffix, parent = star.id,
                    owner = player.id,
                    pos = { x = star.pos.x + fx, y = star.pos.y + fy, z = 0 },
                    look = rng.pick(g.game, data.FLEET_MEDIA),
                    ships = { { design = frigate.id, count = 1 } } })
            end
        end)
        ms.designs.count_ordered(ctx, frigate, 3)
        ms.designs.count_built(ctx, frigate, 3)
    end

    return M
end
