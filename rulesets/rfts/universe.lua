-- RFTS universe: the fixed 53-star map with its random planets (rfts.md
-- 6), and the players who join (rfts.md 7).
--
-- Draw order: for each star in the listed order, its number of planets
-- range(0,3); then for each planet the offset (y before x, as the GCC
-- build of the reference evaluates), its class range(1,3), and the
-- maxima of Industry, Population, Social and Planetary Environment, each
-- range(min,max) rounded down to a multiple of 5.
return function(rf)
    local data, rng, objects, designs =
        rf.data, rf.rng, rf.objects, rf.designs
    local M = {}

    local function new_planet(ctx, g, star, i)
        local oy = g:range(-100, 100)
        local ox = g:range(-100, 100)
        local class = g:range(1, 3)
        local res = objects.new_resources()
        for _, r in ipairs(data.STAT_RANGES) do
            local lo, hi = r[class + 1][1], r[class + 1][2]
            local v = g:range(lo, hi)
            res[r[1]].minable = v - v % 5
        end
        local planet = ctx:new_object {
            type = objects.PLANET, name = star.name .. " " .. i,
            parent = star.id, size = class,
            pos = { x = star.pos.x + data.WIDTH * ox / 10000,
                    y = star.pos.y + data.HEIGHT * oy / 10000, z = 0 },
            data = { resources = res },
        }
        ctx:new_queue(planet, 0, objects.PLANET_ORDERS)
        return planet
    end

    function M.setup(ctx)
        rng.create(ctx)
        ctx.state.players = {}
        ctx.state.game_over = false
        rng.with(ctx, function(g)
            local c = objects.coords(0.5, 0.5)
            ctx:new_object { type = objects.UNIVERSE, name = "The Universe",
                parent = 0, size = data.UNIVERSE_SIZE, pos = c,
                data = { turn = 0 } }
            for _, s in ipairs(data.STARS) do
                local star = ctx:new_object { type = objects.SYSTEM,
                    name = s[1], parent = 0, size = 1,
                    pos = objects.coords(s[2], s[3]),
                    data = { u = s[2], v = s[3] } }
                for i = 1, g:range(0, 3) do
                    new_planet(ctx, g, star, i)
                end
            end
        end)
    end

    -- ---------------------------------------------------- new players

    local function systems(ctx)
        local out = {}
        local system_t = ctx.types[objects.SYSTEM]
        for _, id in ipairs(ctx:object(0).children) do
            local o = ctx:object(id)
            if o and o.type == system_t then
                out[#out + 1] = o
            end
        end
        return out
    end

    -- The home planet a system offers: its first primary planet when no
    -- planet of it is owned; else nil.
    local function home_in(ctx, sys)
        local home
        for _, id in ipairs(sys.children) do
            local o = ctx:object(id)
            if o and o.type == ctx.types[objects.PLANET] then
                if o.owner ~= 0 then
                    return nil
                end
                if not home and o.size == data.PRIMARY then
                    home = o
                end
            end
        end
        return home
    end

    -- rfts.md 7: up to n*4/3 random picks range(1, n-1) among the star
    -- systems (the first is never picked); then, unlike the reference
    -- (which gives up), the first free system in id order.
    local function pick_home(ctx, g)
        local list = systems(ctx)
        local n = #list
        for _ = 1, math.floor(n * 4 / 3) do
            local sys = list[g:range(1, n - 1) + 1]
            local home = sys and home_in(ctx, sys)
            if home then
                return home
            end
        end
        for _, sys in ipairs(list) do
            local home = home_in(ctx, sys)
            if home then
                return home
            end
        end
        return nil
    end

    local function count_players(ctx)
        return #ctx:players()
    end

    -- Before a player is created: room left and a free home system.
    function M.join_allowed(ctx, name)
        if ctx.state.game_over then
            return false, "The game is over."
        end
        local max = ctx.settings.max_players
        if count_players(ctx) >= max then
            return false, "The game is full: it has its " .. max
                          .. " players."
        end
        for _, sys in ipairs(systems(ctx)) do
            if home_in(ctx, sys) then
                return true
            end
        end
        return false, "No free home system is left."
    end

    local function welcome(ctx, player, home)
        local lines = {
            "Welcome to RFTS, " .. player.name .. ". Your home planet is "
            .. home.name .. ".",
            "",
            "Turns come in cycles of three: 'Production, Construction, "
            .. "Movement' (turn number divisible by 3), 'Construction, "
            .. "Movement', 'Movement'.",
            "Resource points (RP) are worked out at the start of each "
            .. "production turn: 2 x population + industry x social "
            .. "environment / 16. Produce orders complete at the end of "
            .. "the production turn; Build Fleet orders at the end of the "
            .. "production or construction turn.",
            "",
            "Costs (RP per unit): Industry 10, Social Environment 4, "
            .. "Planetary Environment 8, Population Maintenance 1, "
            .. "Colonist 5, Ship Technology 1, PDB1 4, PDB2 8, PDB3 16, "
            .. "PDB1 Maintenance 1, PDB2/PDB3 Maintenance 2; ships: Scout "
            .. "3, Transport 5, Mark1 14, Mark2 30, Mark3 80, Mark4 120.",
            "Ship technology: 400, 1000 and 2000 points give Mark2, Mark3 "
            .. "and Mark4 and better planetary defence bases.",
            "",
            "Victory points come from damage dealt in combat, 3/4 of the "
            .. "RP spent on ships, the RP spent on PDBs, colonising "
            .. "(125; 25 for a failed attempt) and bombarding (50). The "
            .. "game ends after turn " .. ctx.settings.game_length .. ".",
        }
        ctx:message(player.id, "Welcome to RFTS", table.concat(lines, "\n"),
                    { { type = 1, id = home.id } })
    end

    function M.player_joined(ctx, player)
        local d = { Scout = designs.create(ctx, player.id, "Scout"),
                    Mark1 = designs.create(ctx, player.id, "Mark1"),
                    Transport = designs.create(ctx, player.id, "Transport") }
        local home = rng.with(ctx, function(g)
            return pick_home(ctx, g)
        end)
        if not home then
            ctx.log("warning", "no home system for player %d", player.id)
            return
        end
        for id, v in pairs(data.HOME) do
            objects.set(ctx, home, id, v)
        end
        objects.set_planet_owner(ctx, home, player.id)
        local sys = ctx:object(home.parent)
        objects.explore(ctx, player.id, sys)
        objects.new_fleet(ctx, { name = player.name .. "'s fleet",
            system = sys, owner = player.id,
            ships = { { design = d.Scout.id, count = 1 } } })
        welcome(ctx, player, home)
    end

    return M
end
