-- MiniSec objects: the five object types (minisec.md 2.1) and the helpers
-- the rest of the ruleset uses to make and change planets and fleets.
--
-- Object data (obj.data, stored as JSON):
--   every type   icon, media             (the Media group)
--   Universe     year
--   Planet       resources = { { resource, stored, minable, unavailable } }
--                (ascending resource id)
--   Fleet        ships = { { design, count } } (ascending design id, no
--                zero counts), damage
-- Container classes (used to re-parent moving fleets, minisec.md 8.2):
-- Universe, Galaxy and Star System 1, Planet 2, Fleet 0.
return function(ms)
    local data = ms.data
    local M = {}

    M.UNIVERSE, M.GALAXY, M.SYSTEM = "Universe", "Galaxy", "Star System"
    M.PLANET, M.FLEET = "Planet", "Fleet"

    M.PLANET_ORDERS = { "No Operation", "Build Fleet" }
    -- Colonise is added while the fleet holds a ship that can colonise.
    local FLEET_ORDERS = { "No Operation", "Move", "Split Fleet",
                           "Merge Fleet", "Intercept" }
    local FLEET_ORDERS_COLONISE = { "No Operation", "Move", "Colonise",
                                    "Split Fleet", "Merge Fleet",
                                    "Intercept" }

    -- ---------------------------------------------------- object types

    local POSITIONAL = { name = "Positional",
        description = "Positional information", params = {
            { name = "Position", type = "position",
              description = "The position of the object" },
            { name = "Velocity", type = "velocity",
              description = "The velocity of the object" },
            { name = "Size", type = "size",
              description = "The size of the object" } } }
    local MEDIA = { name = "Media", description = "Media for this object",
        params = {
            { name = "Icon", type = "media", field = "icon",
              description = "Icon for this object" },
            { name = "Media", type = "media", field = "media",
              description = "The main media for the object" } } }
    local OWNERSHIP = { name = "Ownership",
        description = "The ownership of this object", params = {
            { name = "Owner", type = "reference", reftype = 7,
              description = "The owner of this object" } } }
    local ORDERS = { name = "Orders",
        description = "The order queues of the fleet", params = {
            { name = "Order Queue", type = "order_queue",
              description = "The queue of orders for this fleet" } } }

    -- Fleet ships as TP references to designs (reftype 9).
    local function ship_list(obj)
        local refs = {}
        for _, s in ipairs(obj.data.ships or {}) do
            refs[#refs + 1] = { reftype = 9, id = s.design, count = s.count }
        end
        return { references = refs }
    end

    -- The declarations for init.lua's object_types (ids 0-4 in order).
    -- Groups are copied per type: tp.types numbers them in place.
    local function group(g)
        local params = {}
        for i, p in ipairs(g.params) do
            local c = {}
            for k, v in pairs(p) do
                c[k] = v
            end
            params[i] = c
        end
        return { name = g.name, description = g.description,
                 params = params }
    end

    M.TYPES = {
        { name = M.UNIVERSE, description = "The Universe",
          tp03 = { kind = "universe", extra = function(obj)
                       return { age = obj.data.year or 0 }
                   end },
          groups = { group(POSITIONAL), group(MEDIA),
              { name = "Informational",
                description = "Information about the universe", params = {
                    { name = "Year", type = "integer", field = "year",
                      description = "The Age of the universe" } } } } },
        { name = M.GALAXY, description = "The Galaxy Object type",
          tp03 = "galaxy", groups = { group(POSITIONAL), group(MEDIA) } },
        { name = M.SYSTEM, description = "The Star System Object type",
          tp03 = "star_system",
          groups = { group(POSITIONAL), group(MEDIA) } },
        { name = M.PLANET, description = "A planet object", tp03 = "planet",
          groups = { group(POSITIONAL), group(MEDIA), group(OWNERSHIP),
              group(ORDERS),
              { name = "Resources", description = "The planets resources",
                params = {
                    { name = "Resource List", type = "resource_list",
                      description = "The resource list of the resources "
                                    .. "the planet has available" } } } } },
        { name = M.FLEET, description = "Fleet of ships", tp03 = "fleet",
          groups = { group(POSITIONAL), group(MEDIA), group(OWNERSHIP),
              group(ORDERS),
              { name = "Ships",
                description = "The information about ships in this fleet",
                params = {
                    { name = "Ship List", type = "reference_quantity_list",
                      get = ship_list, description = "The list of ships" },
                    { name = "Damage", type = "integer", field = "damage",
                      description = "The damage done to the ships" } } } } },
    }

    -- ---------------------------------------------------- types

    function M.is(ctx, obj, type_name)
        return obj ~= nil and obj.type == ctx.types[type_name]
    end

    -- Container class: what movement may re-parent fleets into.
    function M.container_class(ctx, obj)
        local t = obj.type
        if t == ctx.types[M.FLEET] then
            return 0
        elseif t == ctx.types[M.PLANET] then
            return 2
        end
        return 1
    end

    -- ---------------------------------------------------- geometry

    -- Distance as the reference computes it: the square root of the sum
    -- of squares in doubles, truncated.
    function M.distance(a, b)
        local dx, dy, dz = a.x - b.x, a.y - b.y, a.z - b.z
        return math.floor(math.sqrt(dx * dx + dy * dy + dz * dz))
    end

    -- Half a size, in integers (sizes are unsigned in the reference).
    function M.half(size)
        return math.floor(size / 2)
    end

    -- ---------------------------------------------------- designs

    -- Property values of a design, cached per design table (a reloaded
    -- design is a new table, so the cache never goes stale).
    local stats_cache = setmetatable({}, { __mode = "k" })

    function M.design_stats(ctx, id)
        local d = ctx:design(id)
        if not d then
            return nil
        end
        local s = stats_cache[d]
        if not s then
            s = { id = id, name = d.name,
                  speed = ctx:property(d, "Speed"),
                  build_time = ctx:property(d, "BuildTime"),
                  armour = ctx:property(d, "Armour"),
                  win = ctx:property(d, "WeaponWin"),
                  draw = ctx:property(d, "WeaponDraw"),
                  colonise = ctx:property(d, "Colonise") }
            stats_cache[d] = s
        end
        return s
    end

    -- ---------------------------------------------------- fleets

    -- Fleet speed: the slowest design's Speed (minisec.md 7.1).
    function M.speed(ctx, fleet)
        local speed
        for _, s in ipairs(fleet.data.ships) do
            local v = M.design_stats(ctx, s.design).speed
            if not speed or v < speed then
                speed = v
            end
        end
        return math.floor(speed or 0)
    end

    -- Colonise is allowed exactly while a ship can colonise.
    function M.refresh_allowed(ctx, fleet)
        local q = ctx:queue(fleet)
        if not q then
            return
        end
        local colonise = false
        for _, s in ipairs(fleet.data.ships) do
            if M.design_stats(ctx, s.design).colonise == 1 then
                colonise = true
            end
        end
        local want = colonise and FLEET_ORDERS_COLONISE or FLEET_ORDERS
        if #q.allowed ~= #want then
            ctx:set_allowed(fleet, want)
        end
    end

    -- The fleet's ships (rulesets/common/ships.lua), shared with the
    -- other rulesets of tpserver-cpp.
    local ships = include("common/ships.lua")(function(ctx, fleet)
        M.refresh_allowed(ctx, fleet)
    end)
    M.total_ships, M.ship_count = ships.total, ships.count
    M.add_ships, M.remove_ships = ships.add, ships.remove

    -- Fleets made since begin_turn, in creation (= id) order.
    M.created = {}

    function M.begin_turn()
        M.created = {}
    end

    -- A new fleet (size 2, velocity 0, its own queue). t: name, parent,
    -- owner, pos, look (fleet media name), ships.
    function M.new_fleet(ctx, t)
        local fleet = ctx:new_object {
            type = M.FLEET, name = t.name, parent = t.parent,
            owner = t.owner, size = 2,
            pos = { x = t.pos.x, y = t.pos.y, z = t.pos.z },
            vel = { x = 0, y = 0, z = 0 },
            data = { icon = data.ICON_SHIP,
                     media = data.FLEET_MEDIA_PREFIX .. t.look,
                     ships = {}, damage = 0 },
        }
        ctx:new_queue(fleet, t.owner, FLEET_ORDERS)
        for _, s in ipairs(t.ships or {}) do
            M.add_ships(ctx, fleet, s.design, s.count)
        end
        M.created[#M.created + 1] = fleet
        return fleet
    end

    -- Removes a fleet that has no ships left (or was merged).
    function M.remove_fleet(ctx, fleet)
        ctx:set_queue_owner(fleet, 0)
        ctx:clear_orders(fleet)
        ctx:remove_object(fleet)
    end

    -- ---------------------------------------------------- planets

    function M.resource(planet, id)
        for _, r in ipairs(planet.data.resources) do
            if r.resource == id then
                return r.stored
            end
        end
        return 0
    end

    function M.add_resource(ctx, planet, id, n)
        local list = planet.data.resources
        local i = 1
        while list[i] and list[i].resource < id do
            i = i + 1
        end
        if list[i] and list[i].resource == id then
            list[i].stored = list[i].stored + n
        else
            table.insert(list, i, { resource = id, stored = n, minable = 0,
                                    unavailable = 0 })
        end
        ctx:changed(planet)
    end

    -- Takes n units; false (nothing taken) when fewer are stored.
    function M.remove_resource(ctx, planet, id, n)
        for _, r in ipairs(planet.data.resources) do
            if r.resource == id then
                if r.stored < n then
                    return false
                end
                r.stored = r.stored - n
                ctx:changed(planet)
                return true
            end
        end
        return false
    end

    -- The planet recipe (minisec.md 4.1): size 2, an order queue with
    -- owner 0, unowned, no resources. t: name, parent (object), offset
    -- {dx, dy}, look.
    function M.new_planet(ctx, t)
        local p = t.parent.pos
        local planet = ctx:new_object {
            type = M.PLANET, name = t.name, parent = t.parent.id, size = 2,
            pos = { x = p.x + t.offset[1], y = p.y + t.offset[2], z = p.z },
            data = { icon = data.ICON_PLANET,
                     media = data.PLANET_MEDIA_PREFIX .. t.look,
                     resources = {} },
        }
        ctx:new_queue(planet, 0, M.PLANET_ORDERS)
        return planet
    end

    -- A galaxy or star system (no owner, no orders).
    function M.new_space(ctx, type_name, t)
        return ctx:new_object {
            type = type_name, name = t.name, parent = t.parent, size = t.size,
            pos = { x = t.pos.x, y = t.pos.y, z = t.pos.z or 0 },
            data = { icon = data.ICON_SYSTEM, media = t.media },
        }
    end

    -- Changes a planet's owner, with its order queue.
    function M.set_planet_owner(ctx, planet, owner)
        planet.owner = owner
        ctx:set_queue_owner(planet, owner)
        ctx:changed(planet)
    end

    return M
end
