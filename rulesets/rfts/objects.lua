-- RFTS objects: the five object types (rfts.md 2) and the helpers the
-- rest of the ruleset uses on planets and fleets, the allowed order sets
-- (rfts.md 3) and exploration (rfts.md 9).
--
-- Object data (obj.data, stored as JSON):
--   Universe     turn (equals the game's turn number)
--   Star System  u, v (its unit position)
--   Planet       resources = 14 entries { resource, stored = current,
--                minable = max, unavailable = 0 } in resource id order
--   Fleet        ships = { { design, count } } (ascending design id, no
--                zero counts), damage
-- A planet's Size is its class (1 industrial, 2 neutral, 3 primary).
-- Fleet speed, attack and armour are computed from the ships whenever
-- they are needed (never stored).
return function(rf)
    local data = rf.data
    local M = {}

    M.UNIVERSE, M.GALAXY, M.SYSTEM = "Universe", "Galaxy", "Star System"
    M.PLANET, M.FLEET = "Planet", "Fleet"
    M.PLANET_ORDERS = { "Build Fleet", "Produce" }
    local FLEET_ORDERS = { "Move", "Split Fleet", "Merge Fleet",
                           "Rename Fleet" }

    -- ---------------------------------------------------- object types

    local function positional(with_velocity)
        local params = {
            { name = "Position", type = "position",
              description = "The position of the object" },
            { name = "Size", type = "size",
              description = "The size of the object" } }
        if with_velocity then
            table.insert(params, { name = "Velocity", type = "velocity",
                description = "The velocity of the object" })
        end
        return { name = "Positional",
                 description = "Positional information", params = params }
    end
    local function ownership()
        return { name = "Ownership",
            description = "The ownership of this object", params = {
                { name = "Owner", type = "reference", reftype = 7,
                  description = "The owner of this object" } } }
    end
    local function orders()
        return { name = "Orders", description = "The order queue",
            params = { { name = "Order Queue", type = "order_queue",
                         description = "The queue of orders" } } }
    end

    local function ship_list(obj)
        local refs = {}
        for _, s in ipairs(obj.data.ships or {}) do
            refs[#refs + 1] = { reftype = 9, id = s.design, count = s.count }
        end
        return { references = refs }
    end

    M.TYPES = {
        { name = M.UNIVERSE, description = "The Universe", tp03 = "universe",
          groups = { positional(false),
              { name = "Informational",
                description = "Information about the universe", params = {
                    { name = "Turn", type = "integer", field = "turn",
                      description = "The current turn number" } } } } },
        { name = M.GALAXY, description = "The Galaxy Object type",
          tp03 = "galaxy", groups = { positional(false) } },
        { name = M.SYSTEM, description = "A star system", tp03 = "star_system",
          groups = { positional(false) } },
        { name = M.PLANET, description = "A planet", tp03 = "planet",
          groups = { positional(false), ownership(),
              { name = "Resources", description = "The planet's statistics",
                params = {
                    { name = "Resource List", type = "resource_list",
                      description = "Each statistic: its current value "
                                    .. "(stored) and its natural maximum "
                                    .. "(minable)" } } },
              orders() } },
        { name = M.FLEET, description = "A fleet of ships", tp03 = "fleet",
          groups = { positional(true), ownership(), orders(),
              { name = "Ships", description = "The ships in this fleet",
                params = {
                    { name = "Ship List", type = "reference_quantity_list",
                      get = ship_list, description = "The list of ships" },
                    { name = "Damage", type = "integer", field = "damage",
                      description = "The damage done to the ships" } } } } },
    }

    function M.is(ctx, obj, type_name)
        return obj ~= nil and obj.type == ctx.types[type_name]
    end

    -- ---------------------------------------------------- geometry

    -- Universe coordinates of a unit position (rfts.md 1).
    function M.coords(u, v)
        return { x = math.floor(data.WIDTH * u),
                 y = math.floor(data.HEIGHT * v), z = 0 }
    end

    -- The wrapping unit distance between two systems.
    function M.distance(a, b)
        local dx = math.abs(a.data.u - b.data.u)
        if dx > 0.5 then
            dx = 1 - dx
        end
        local dy = math.abs(a.data.v - b.data.v)
        if dy > 0.5 then
            dy = 1 - dy
        end
        return math.sqrt(dx * dx + dy * dy)
    end

    -- The star system an object is in (itself for a system), or nil (in
    -- transit, the universe).
    function M.system_of(ctx, obj)
        local o = obj
        while o and o.type ~= ctx.types[M.SYSTEM] do
            if o.id == 0 then
                return nil
            end
            o = ctx:object(o.parent)
        end
        return o
    end

    -- ---------------------------------------------------- planets

    function M.get(planet, id)
        return planet.data.resources[id].stored
    end

    function M.max(planet, id)
        return planet.data.resources[id].minable
    end

    function M.set(ctx, planet, id, v)
        planet.data.resources[id].stored = v
        ctx:changed(planet)
    end

    function M.add(ctx, planet, id, n)
        M.set(ctx, planet, id, M.get(planet, id) + n)
    end

    function M.set_max(ctx, planet, id, v)
        planet.data.resources[id].minable = v
        ctx:changed(planet)
    end

    function M.new_resources()
        local list = {}
        for i = 1, data.NUM_RESOURCES do
            list[i] = { resource = i, stored = 0, minable = 0,
                        unavailable = 0 }
        end
        return list
    end

    function M.set_planet_owner(ctx, planet, owner)
        planet.owner = owner
        ctx:set_queue_owner(planet, owner)
        if owner == 0 then
            ctx:clear_orders(planet)
        end
        ctx:changed(planet)
    end

    -- ---------------------------------------------------- fleets

    -- Design statistics by design id (cached per design table; a reloaded
    -- design is a new table, so the cache never goes stale).
    local stats_cache = setmetatable({}, { __mode = "k" })

    function M.design_stats(ctx, id)
        local d = ctx:design(id)
        if not d then
            return { id = id, name = "?", speed = 0, attack = 0, armour = 0,
                     colonise = 0 }
        end
        local s = stats_cache[d]
        if not s then
            s = { id = id, name = d.name, speed = ctx:property(d, "Speed"),
                  attack = ctx:property(d, "Attack"),
                  armour = ctx:property(d, "Armour"),
                  colonise = ctx:property(d, "Colonise") }
            stats_cache[d] = s
        end
        return s
    end

    -- speed (slowest design), attack and armour (highest design), the
    -- number of transports (ships with Colonise) (rfts.md 5).
    function M.fleet_stats(ctx, fleet)
        local speed, attack, armour, transports
        attack, armour, transports = 0, 0, 0
        for _, s in ipairs(fleet.data.ships) do
            local st = M.design_stats(ctx, s.design)
            if not speed or st.speed < speed then
                speed = st.speed
            end
            attack = math.max(attack, st.attack)
            armour = math.max(armour, st.armour)
            if st.colonise >= 1 then
                transports = transports + s.count
            end
        end
        return { speed = speed or 0, attack = attack, armour = armour,
                 transports = transports }
    end

    function M.copy_ships(fleet)
        local out = {}
        for i, s in ipairs(fleet.data.ships) do
            out[i] = { design = s.design, count = s.count }
        end
        return out
    end

    -- The fleet's ships (rulesets/common/ships.lua), shared with the
    -- other rulesets of tpserver-cpp.
    local ships = include("common/ships.lua")()
    M.total_ships, M.ship_count = ships.total, ships.count
    M.add_ships, M.remove_ships = ships.add, ships.remove

    -- A new fleet in a star system (size 2, its own queue).
    function M.new_fleet(ctx, t)
        local sys = t.system
        local fleet = ctx:new_object {
            type = M.FLEET, name = t.name, parent = sys.id, owner = t.owner,
            size = 2, pos = { x = sys.pos.x, y = sys.pos.y, z = 0 },
            vel = { x = 0, y = 0, z = 0 },
            data = { ships = {}, damage = 0 },
        }
        ctx:new_queue(fleet, t.owner, FLEET_ORDERS)
        for _, s in ipairs(t.ships or {}) do
            M.add_ships(ctx, fleet, s.design, s.count)
        end
        M.refresh_allowed(ctx, fleet)
        M.explore(ctx, t.owner, sys)
        return fleet
    end

    function M.remove_fleet(ctx, fleet)
        ctx:set_queue_owner(fleet, 0)
        ctx:clear_orders(fleet)
        ctx:remove_object(fleet)
    end

    -- ---------------------------------------------------- allowed orders

    -- Planets: Produce and Build Fleet. Fleets: Move, Split, Merge,
    -- Rename; Colonise with a transport; Bombard with attack > 0 in a
    -- system that holds a planet someone else owns (rfts.md 3).
    function M.allowed_for(ctx, obj)
        if obj.type == ctx.types[M.PLANET] then
            return M.PLANET_ORDERS
        end
        local list = { FLEET_ORDERS[1], FLEET_ORDERS[2], FLEET_ORDERS[3],
                       FLEET_ORDERS[4] }
        local st = M.fleet_stats(ctx, obj)
        if st.transports > 0 then
            list[#list + 1] = "Colonise"
        end
        if st.attack > 0 and M.enemy_planet_near(ctx, obj) then
            list[#list + 1] = "Bombard"
        end
        return list
    end

    -- Whether the fleet's system holds a planet owned by another player.
    function M.enemy_planet_near(ctx, fleet)
        local parent = ctx:object(fleet.parent)
        if not parent or parent.type ~= ctx.types[M.SYSTEM] then
            return false
        end
        for _, id in ipairs(parent.children) do
            local o = ctx:object(id)
            if o and o.type == ctx.types[M.PLANET] and o.owner ~= 0 and
               o.owner ~= fleet.owner then
                return true
            end
        end
        return false
    end

    -- Sets the allowed order types when they differ from the queue's.
    function M.refresh_allowed(ctx, obj)
        local q = ctx:queue(obj)
        if not q then
            return
        end
        local want = M.allowed_for(ctx, obj)
        local same = #q.allowed == #want
        for i, name in ipairs(want) do
            same = same and q.allowed[i] == ctx.orders[name]
        end
        if not same then
            ctx:set_allowed(obj, want)
        end
    end

    -- ---------------------------------------------------- exploration

    -- rfts.md 9: a player who has (had) an object in a star system sees
    -- its planets and fleets for good. Kept with ctx:reveal (the server's
    -- per-player record, in the game database).
    function M.explore(ctx, player_id, sys)
        if player_id ~= 0 and sys and not ctx:revealed(player_id, sys.id) then
            ctx:reveal(player_id, sys)
        end
    end

    -- Every owned planet and fleet outside transit explores its system.
    function M.explore_all(ctx)
        local system_t = ctx.types[M.SYSTEM]
        for _, t in ipairs { M.PLANET, M.FLEET } do
            for o in ctx:each_object(t) do
                if o.owner ~= 0 then
                    local parent = ctx:object(o.parent)
                    if parent and parent.type == system_t then
                        M.explore(ctx, o.owner, parent)
                    end
                end
            end
        end
    end

    -- The visible hook: the universe and the star systems are seen by
    -- all; a player sees what they own (their own fleets in transit
    -- too); others' fleets in transit are hidden; planets and fleets in
    -- a star system are seen by the players who explored it.
    function M.visible(ctx, player_id, obj)
        local t = obj.type
        if t == ctx.types[M.UNIVERSE] or t == ctx.types[M.SYSTEM] or
           t == ctx.types[M.GALAXY] then
            return true
        end
        if obj.owner ~= 0 and obj.owner == player_id then
            return true
        end
        local parent = ctx:object(obj.parent)
        if not parent or parent.type ~= ctx.types[M.SYSTEM] then
            return false          -- a fleet in transit
        end
        return ctx:revealed(player_id, parent.id)
    end

    return M
end
