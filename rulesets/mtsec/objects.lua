-- MTSec objects: the five object types (mtsec.md 1), the resources (3)
-- and the helpers the rest of the ruleset uses to make and change
-- planets, fleets and the weapons they hold.
--
-- Object data (obj.data, stored as JSON):
--   Universe  year
--   Planet    resources = { { resource, stored, minable, unavailable } }
--             (ascending resource id; weapons are resources 11 and up),
--             factories (the per-turn Factories parameter), one_time
--   Fleet     ships = { { design, count } } (ascending design id, no zero
--             counts), damage, weapons = { { resource, stored, minable,
--             unavailable } } (weapons carried)
-- Container classes (for re-parenting moving fleets): Universe, Galaxy
-- and Star System 1, Planet 2, Fleet 0.
return function(mt)
    local data, tt = mt.data, mt.techtree
    local M = {}

    M.UNIVERSE, M.GALAXY, M.SYSTEM = "Universe", "Galaxy", "Star System"
    M.PLANET, M.FLEET = "Planet", "Fleet"

    M.PLANET_ORDERS = { "No Operation", "Build Fleet", "Build Weapon",
                        "Enhance", "Send Points" }
    -- Colonise is added while the fleet holds a ship that can colonise.
    local FLEET_ORDERS = { "No Operation", "Move", "Split Fleet",
                           "Merge Fleet", "Load Armament",
                           "Unload Armament" }
    local FLEET_ORDERS_COLONISE = { "No Operation", "Move", "Colonise",
                                    "Split Fleet", "Merge Fleet",
                                    "Load Armament", "Unload Armament" }

    -- ---------------------------------------------------- object types

    local function positional()
        return { name = "Positional", description = "Positional information",
            params = {
                { name = "Position", type = "position",
                  description = "The position of the object" },
                { name = "Velocity", type = "velocity",
                  description = "The velocity of the object" },
                { name = "Size", type = "size",
                  description = "The size of the object" } } }
    end
    local function ownership()
        return { name = "Ownership",
            description = "The ownership of this object", params = {
                { name = "Owner", type = "reference", reftype = 7,
                  description = "The owner of this object" } } }
    end
    local function orders()
        return { name = "Orders", description = "The order queues", params = {
            { name = "Order Queue", type = "order_queue",
              description = "The queue of orders for this object" } } }
    end

    local function ship_list(obj)
        local refs = {}
        for _, s in ipairs(obj.data.ships or {}) do
            refs[#refs + 1] = { reftype = 9, id = s.design, count = s.count }
        end
        return { references = refs }
    end

    M.TYPES = {
        { name = M.UNIVERSE, description = "The Universe",
          tp03 = { kind = "universe", extra = function(obj)
                       return { age = obj.data.year or 0 }
                   end },
          groups = { positional(),
              { name = "Informational",
                description = "Information about the universe", params = {
                    { name = "Year", type = "integer", field = "year",
                      description = "The Age of the universe" } } } } },
        { name = M.GALAXY, description = "The Galaxy Object type",
          tp03 = "galaxy", groups = { positional() } },
        { name = M.SYSTEM, description = "The Star System Object type",
          tp03 = "star_system", groups = { positional() } },
        { name = M.PLANET, description = "A planet object", tp03 = "planet",
          groups = { positional(), ownership(), orders(),
              { name = "Resources", description = "The planets resources",
                params = {
                    { name = "Resource List", type = "resource_list",
                      description = "The resource list of the resources "
                                    .. "the planet has available" } } },
              { name = "Factories",
                description = "The production points of the planet",
                params = {
                    { name = "Factories", type = "integer",
                      field = "factories",
                      description = "The production points the planet "
                                    .. "makes each turn" },
                    { name = "One Time", type = "integer",
                      field = "one_time",
                      description = "Points sent to the planet, arriving "
                                    .. "next turn" } } } } },
        { name = M.FLEET, description = "Fleet of ships", tp03 = "fleet",
          groups = { positional(), ownership(), orders(),
              { name = "Ships",
                description = "The information about ships in this fleet",
                params = {
                    { name = "Ship List", type = "reference_quantity_list",
                      get = ship_list, description = "The list of ships" },
                    { name = "Damage", type = "integer", field = "damage",
                      description = "The damage done to the ships" } } },
              { name = "Resources", description = "The weapons carried",
                params = {
                    { name = "Weapon Resource List", type = "resource_list",
                      field = "weapons",
                      description = "The weapons the fleet carries" } } } } },
    }

    -- ---------------------------------------------------- resources

    local function resource(id, name, plural, unit, unit_plural, desc, w, s)
        return { id = id, name = name, name_plural = plural, unit = unit,
                 unit_plural = unit_plural, description = desc,
                 weight = w or 0, size = s or 0 }
    end
    local function ore(id, name, volume, desc)
        return resource(id, name, name, "kt", "kt", desc, 1, volume)
    end
    M.RESOURCES = {
        resource(data.RES_SHIP_PART, "Ship part", "Ship parts", "part",
                 "parts", "Ships parts that can be used to create ships"),
        resource(data.RES_HOME_PLANET, "Home Planet", "Home Planets", "unit",
                 "units", "The home planet for a race."),
        ore(data.RES_URANIUM, "Uranium", 4, "Raw Uranium, an explosive"),
        ore(data.RES_THORIUM, "Thorium", 4, "Raw Thorium, an explosive"),
        ore(data.RES_CERIUM, "Cerium", 3, "Raw Cerium, an explosive"),
        ore(data.RES_ENRICHED_URANIUM, "Enriched Uranium", 2,
            "Enriched Uranium, an explosive"),
        ore(data.RES_MASSIVIUM, "Massivium", 12, "Massivium, an explosive"),
        ore(data.RES_ANTIPARTICLE, "Antiparticle", 1,
            "Antiparticles, an explosive"),
        ore(data.RES_ANTIMATTER, "Antimatter", 1, "Antimatter, an explosive"),
        resource(data.RES_FACTORIES, "Factories", "Factories", "unit",
                 "units", "The production points of a planet"),
    }
    -- The weapon resources: one per weapon design that was ever ordered
    -- (mt.arms assigns them and keeps their names in ctx.state).
    M.WEAPON_RESOURCES = {}
    for k = 1, data.WEAPON_SLOTS do
        local r = resource(data.RES_FIRST_WEAPON + k - 1, "Weapon " .. k,
                           "Weapon " .. k, "weapon", "weapons",
                           "A weapon (no design has been built as this "
                           .. "weapon yet)")
        M.RESOURCES[#M.RESOURCES + 1] = r
        M.WEAPON_RESOURCES[k] = r
    end

    -- ---------------------------------------------------- types

    function M.is(ctx, obj, type_name)
        return obj ~= nil and obj.type == ctx.types[type_name]
    end

    function M.container_class(ctx, obj)
        local t = obj.type
        if t == ctx.types[M.FLEET] then
            return 0
        elseif t == ctx.types[M.PLANET] then
            return 2
        end
        return 1
    end

    function M.distance(a, b)
        local dx, dy, dz = a.x - b.x, a.y - b.y, a.z - b.z
        return math.floor(math.sqrt(dx * dx + dy * dy + dz * dz))
    end

    function M.half(size)
        return math.floor(size / 2)
    end

    -- ---------------------------------------------------- designs

    -- The numbers of a design the rules use, cached per design table (a
    -- reloaded or changed design is re-read: the cache keys on modtime).
    local stats_cache = setmetatable({}, { __mode = "k" })

    function M.design_stats(ctx, id)
        local d = ctx:design(id)
        if not d then
            return nil
        end
        local s = stats_cache[d]
        if not s or s.modtime ~= d.modtime then
            local p = tt.prop
            s = { id = id, name = d.name, modtime = d.modtime,
                  speed = p(d, "Speed"), cost = p(d, "ProductCost"),
                  hp = p(d, "HitPoints"), colonise = p(d, "Colonise"),
                  missile_size = p(d, "MissileSize"),
                  explosiveness = p(d, "AmmoExplosiveness"),
                  tubes = {} }
            -- Tubes by the size of one tube (value / count): { size, n }.
            for _, tube in ipairs(tt.TUBES) do
                local v, n = p(d, tube), p(d, "num-" .. tube)
                if v > 0 and n > 0 then
                    s.tubes[#s.tubes + 1] = { size = v / n, count = n }
                end
            end
            stats_cache[d] = s
        end
        return s
    end

    function M.in_category(d, cat)
        for _, c in ipairs(d.categories or {}) do
            if c == cat then
                return true
            end
        end
        return false
    end

    -- ---------------------------------------------------- resource lists

    function M.amount(list, id)
        for _, r in ipairs(list) do
            if r.resource == id then
                return r.stored
            end
        end
        return 0
    end

    function M.add_amount(list, id, n, minable)
        local i = 1
        while list[i] and list[i].resource < id do
            i = i + 1
        end
        if list[i] and list[i].resource == id then
            list[i].stored = list[i].stored + n
        else
            table.insert(list, i, { resource = id, stored = n,
                                    minable = minable or 0,
                                    unavailable = 0 })
        end
    end

    -- Takes n; false (nothing taken) when fewer are stored. A weapon
    -- entry that reaches 0 goes from the list.
    function M.take_amount(list, id, n)
        for i, r in ipairs(list) do
            if r.resource == id then
                if r.stored < n then
                    return false
                end
                r.stored = r.stored - n
                if r.stored == 0 and id >= data.RES_FIRST_WEAPON then
                    table.remove(list, i)
                end
                return true
            end
        end
        return n == 0
    end

    function M.set_amount(list, id, n)
        for _, r in ipairs(list) do
            if r.resource == id then
                r.stored = n
                return
            end
        end
        M.add_amount(list, id, n)
    end

    -- Planet helpers: resources and production points.
    function M.resource(planet, id)
        return M.amount(planet.data.resources, id)
    end

    function M.points(planet)
        return M.amount(planet.data.resources, data.RES_FACTORIES)
    end

    function M.spend(ctx, planet, n)
        if M.take_amount(planet.data.resources, data.RES_FACTORIES, n) then
            ctx:changed(planet)
            return true
        end
        return false
    end

    -- ---------------------------------------------------- fleets

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

    M.created = {}

    function M.begin_turn()
        M.created = {}
    end

    -- A new fleet (velocity 0, its own queue). t: name, parent, owner,
    -- pos, ships, weapons.
    function M.new_fleet(ctx, t)
        local fleet = ctx:new_object {
            type = M.FLEET, name = t.name, parent = t.parent,
            owner = t.owner, size = data.FLEET_SIZE,
            pos = { x = t.pos.x, y = t.pos.y, z = t.pos.z },
            vel = { x = 0, y = 0, z = 0 },
            data = { ships = {}, damage = 0, weapons = t.weapons or {} },
        }
        ctx:new_queue(fleet, t.owner, FLEET_ORDERS)
        for _, s in ipairs(t.ships or {}) do
            M.add_ships(ctx, fleet, s.design, s.count)
        end
        M.created[#M.created + 1] = fleet
        return fleet
    end

    function M.remove_fleet(ctx, fleet)
        ctx:set_queue_owner(fleet, 0)
        ctx:clear_orders(fleet)
        ctx:remove_object(fleet)
    end

    -- ---------------------------------------------------- planets and space

    -- A planet (unowned, its queue with owner 0). t: name, parent
    -- (object), offset {dx, dy}, size.
    function M.new_planet(ctx, t)
        local p = t.parent.pos
        local planet = ctx:new_object {
            type = M.PLANET, name = t.name, parent = t.parent.id,
            size = t.size or data.PLANET_SIZE,
            pos = { x = p.x + t.offset[1], y = p.y + t.offset[2], z = p.z },
            data = { resources = {}, factories = 0, one_time = 0 },
        }
        ctx:new_queue(planet, 0, M.PLANET_ORDERS)
        return planet
    end

    function M.new_space(ctx, type_name, t)
        return ctx:new_object {
            type = type_name, name = t.name, parent = t.parent, size = t.size,
            pos = { x = t.pos.x, y = t.pos.y, z = t.pos.z or 0 },
            data = {},
        }
    end

    function M.set_planet_owner(ctx, planet, owner)
        planet.owner = owner
        ctx:set_queue_owner(planet, owner)
        ctx:changed(planet)
    end

    return M
end
