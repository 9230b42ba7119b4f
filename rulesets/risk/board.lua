-- Risk board (risk.md 1, 2, 4): the object types, the board built from
-- the map (constellations, star systems, planets, wormholes), and the
-- helpers every other file uses on planets and pools.
--
-- Object data (obj.data, stored as JSON, so that a restart keeps all):
--   Universe       turn (the Year: equals the game's turn number)
--   Constellation  bonus
--   Planet         armies, adjacent (ids of the planets a wormhole links,
--                  ascending), constellation (id), resources (the Army
--                  display: stored = armies, minable = the owner's pool)
--   Wormhole       a, b (planet ids), enda, endb (positions)
-- ctx.state.pools["<player id>"] is each player's reinforcement pool.
return function(rk)
    local M = {}

    M.UNIVERSE, M.CONSTELLATION, M.SYSTEM = "Universe", "Constellation",
                                            "Star System"
    M.PLANET, M.PLACEHOLDER, M.WORMHOLE = "Planet", "Unused", "Wormhole"
    M.WIDTH, M.HEIGHT = 4200000000, 3150000000
    M.ARMY = 1

    local function positional(extra)
        local params = {
            { name = "Position", type = "position",
              description = "The position of the object" },
            { name = "Size", type = "size",
              description = "The size of the object" } }
        for _, p in ipairs(extra or {}) do
            params[#params + 1] = p
        end
        return { name = "Positional", description = "Positional information",
                 params = params }
    end

    local function endpoint(field)
        return function(obj)
            local p = obj.data[field] or { x = 0, y = 0, z = 0 }
            return { x = p.x, y = p.y, z = p.z, relative = 0 }
        end
    end

    M.TYPES = {
        { name = M.UNIVERSE, description = "The Universe", tp03 = "universe",
          groups = { positional {
                  { name = "Icon", type = "media", field = "icon",
                    description = "The icon of the universe" },
                  { name = "Media", type = "media", field = "media",
                    description = "The picture of the universe" } },
              { name = "Informational", description = "The game's clock",
                params = { { name = "Year", type = "integer", field = "turn",
                             description = "The turn number" } } } } },
        { name = M.CONSTELLATION, tp03 = "galaxy",
          description = "A constellation: owning all its territories gives "
                        .. "bonus reinforcements each turn",
          groups = { positional(),
              { name = "Informational", description = "The bonus",
                params = { { name = "Bonus", type = "integer",
                    field = "bonus", description = "Armies a turn for "
                    .. "owning the whole constellation" } } } } },
        { name = M.SYSTEM, description = "A star system", tp03 = "star_system",
          groups = { positional() } },
        { name = M.PLANET, tp03 = "planet",
          description = "A territory: its armies, its owner, its orders",
          groups = { positional(),
              { name = "Ownership", description = "The owner",
                params = { { name = "Owner", type = "reference", reftype = 7,
                             description = "The owner of the territory" } } },
              { name = "Resources", description = "The armies",
                params = { { name = "Resource List", type = "resource_list",
                    description = "Armies: stationed here (stored) and the "
                    .. "owner's unplaced reinforcements (minable)" } } },
              { name = "Orders", description = "The order queue",
                params = { { name = "Order Queue", type = "order_queue",
                             description = "The queue of orders" } } } } },
        { name = M.PLACEHOLDER, tp03 = "star_system",
          description = "Never created (keeps Wormhole at id 5)",
          groups = { positional() } },
        { name = M.WORMHOLE,
          description = "A wormhole linking two territories",
          tp03 = { kind = "wormhole", extra = function(obj)
                       local p = obj.data.endb or { x = 0, y = 0, z = 0 }
                       return { endx = p.x, endy = p.y, endz = p.z }
                   end },
          groups = { positional {
                  { name = "EndA", type = "position", get = endpoint("enda"),
                    description = "One end" },
                  { name = "EndB", type = "position", get = endpoint("endb"),
                    description = "The other end" } },
              { name = "Media", description = "The picture",
                params = { { name = "Icon", type = "media", field = "icon",
                             description = "The wormhole's icon" } } } } },
    }

    function M.coords(u, v)
        return { x = math.floor(M.WIDTH * u), y = math.floor(M.HEIGHT * v),
                 z = 0 }
    end

    -- ---------------------------------------------------- queries

    function M.planets(ctx)
        local out = {}
        for o in ctx:each_object(M.PLANET) do
            out[#out + 1] = o
        end
        return out
    end

    function M.constellations(ctx)
        local out = {}
        for o in ctx:each_object(M.CONSTELLATION) do
            if o.name ~= "Wormholes" then
                out[#out + 1] = o
            end
        end
        return out
    end

    function M.is_planet(ctx, obj)
        return obj ~= nil and obj.type == ctx.types[M.PLANET]
    end

    function M.adjacent(planet, id)
        for _, a in ipairs(planet.data.adjacent) do
            if a == id then
                return true
            end
        end
        return false
    end

    function M.unowned(ctx)
        local out = {}
        for _, p in ipairs(M.planets(ctx)) do
            if p.owner == 0 then
                out[#out + 1] = p
            end
        end
        return out
    end

    function M.owned_count(ctx, player_id)
        local n = 0
        for _, p in ipairs(M.planets(ctx)) do
            if p.owner == player_id then
                n = n + 1
            end
        end
        return n
    end

    function M.pool(ctx, player_id)
        return ctx.state.pools[tostring(player_id)] or 0
    end

    function M.set_pool(ctx, player_id, n)
        ctx.state.pools[tostring(player_id)] = n
        ctx:state_changed()
    end

    -- Whether Colonize may be given now (risk.md 3).
    function M.colonize_open(ctx)
        return ctx.state.colonize and not ctx.state.game_over and
               #M.unowned(ctx) > 0
    end

    -- ---------------------------------------------------- changes

    -- The Army display: armies stationed, the owner's pool.
    function M.refresh(ctx, planet)
        local pool = planet.owner ~= 0 and M.pool(ctx, planet.owner) or 0
        planet.data.resources = { { resource = M.ARMY,
            stored = planet.data.armies, minable = pool, unavailable = 0 } }
        ctx:changed(planet)
    end

    function M.set_armies(ctx, planet, n)
        planet.data.armies = n
        M.refresh(ctx, planet)
    end

    function M.set_owner(ctx, planet, owner)
        planet.owner = owner
        ctx:set_queue_owner(planet, owner)
        ctx:clear_orders(planet)
        M.refresh(ctx, planet)
    end

    -- The orders every planet takes now (risk.md 3): none once the game
    -- is over; Colonize while colonising is on and a planet is unowned.
    function M.allowed(ctx)
        if ctx.state.game_over then
            return {}
        end
        local names = { "Reinforce", "Move" }
        if M.colonize_open(ctx) then
            table.insert(names, 1, "Colonize")
        end
        return names
    end

    function M.refresh_allowed(ctx)
        local names = M.allowed(ctx)
        for _, p in ipairs(M.planets(ctx)) do
            ctx:set_allowed(p, names)
        end
    end

    -- ---------------------------------------------------- new game

    function M.setup(ctx, map, gen)
        ctx:new_object { type = M.UNIVERSE, name = "The Universe",
            parent = 0, size = 100000000000, pos = M.coords(0.5, 0.5),
            data = { turn = 0, icon = "common/object-icons/universe",
                     media = "common-2d/universe" } }
        local planet_of = {}
        for _, c in ipairs(map.constellations) do
            local cx, cy = 0, 0
            for _, t in ipairs(c.territories) do
                cx, cy = cx + t.x / #c.territories, cy + t.y / #c.territories
            end
            local con = ctx:new_object { type = M.CONSTELLATION,
                name = c.name, parent = 0, size = 1000000000,
                pos = M.coords(cx, cy), data = { bonus = c.bonus } }
            for _, t in ipairs(c.territories) do
                local sys = ctx:new_object { type = M.SYSTEM,
                    name = t.name .. " System", parent = con.id,
                    size = 100000000, pos = M.coords(t.x, t.y), data = {} }
                -- risk.md 1: a random offset of up to 1% (x, then y).
                local ox = gen:range(-100, 100)
                local oy = gen:range(-100, 100)
                local planet = ctx:new_object { type = M.PLANET,
                    name = t.name, parent = sys.id, size = 2,
                    pos = M.coords(t.x + ox / 10000, t.y + oy / 10000),
                    data = { armies = 0, adjacent = {},
                             constellation = con.id } }
                ctx:new_queue(planet, 0, {})
                M.refresh(ctx, planet)
                planet_of[t.name] = planet
            end
        end
        local holder = ctx:new_object { type = M.CONSTELLATION,
            name = "Wormholes", parent = 0, size = 1000000000,
            pos = M.coords(0.5, 0.5), data = { bonus = 0 } }
        for _, w in ipairs(map.wormholes) do
            local a, b = planet_of[w[1]], planet_of[w[2]]
            table.insert(a.data.adjacent, b.id)
            table.insert(b.data.adjacent, a.id)
            local sa, sb = ctx:object(a.parent), ctx:object(b.parent)
            ctx:new_object { type = M.WORMHOLE,
                name = sa.name .. " to " .. sb.name, parent = holder.id,
                size = 1, pos = { x = sa.pos.x, y = sa.pos.y, z = 0 },
                data = { a = a.id, b = b.id, enda = sa.pos, endb = sb.pos,
                         icon = "common/object-icons/link" } }
        end
        for _, p in pairs(planet_of) do
            table.sort(p.data.adjacent)
            ctx:changed(p)
        end
        ctx.state.planets = #M.planets(ctx)
        ctx:state_changed()
    end

    return M
end
