-- RFTS orders (rfts.md 3): Build Fleet, Produce, Move, Split Fleet,
-- Merge Fleet, Rename Fleet, Colonise and Bombard. Every order of a queue
-- runs at the end of every turn, front to back (turn.lua); an order that
-- returns true is done and removed. Refusals at insertion are the Fail
-- texts clients get.
return function(rf)
    local data, objects, designs, rng, combat =
        rf.data, rf.objects, rf.designs, rf.rng, rf.combat
    local M = {}

    local function ref(t, id)
        return { type = t, id = id }
    end
    local COMPLETED, CANCELED, INVALID = ref(-2, 1), ref(-2, 2), ref(-2, 4)

    local function tell(ctx, owner, subject, body, refs)
        if owner ~= 0 then
            ctx:message(owner, subject, body, refs)
        end
    end

    -- Object type ids (object_types order).
    local SYSTEM_T, PLANET_T, FLEET_T = 2, 3, 4

    -- A list parameter's selection as { { id, number } } in ascending id,
    -- one entry per id (a later entry replaces an earlier one), no zeros.
    local function selection(list)
        local by_id, ids = {}, {}
        for _, s in ipairs(list and list.selection or {}) do
            if not by_id[s.id] then
                ids[#ids + 1] = s.id
            end
            by_id[s.id] = s.number
        end
        table.sort(ids)
        local out = {}
        for _, id in ipairs(ids) do
            if by_id[id] > 0 then
                out[#out + 1] = { id = id, number = by_id[id] }
            end
        end
        return out
    end

    local function game_over(ctx)
        if ctx.state.game_over then
            return false, "The game is over."
        end
        return true
    end

    local function object_param(order, name)
        local p = order.params[name]
        return p and p.objectid or 0
    end

    -- Whether an unfinished Move stands before order in obj's queue (the
    -- orders behind a Move wait for it: see README).
    local function behind_move(ctx, obj, order)
        local q = ctx:queue(obj)
        for _, o in ipairs(q and q.orders or {}) do
            if o == order then
                return false
            end
            if o.type == ctx.orders.Move then
                return true
            end
        end
        return false
    end

    -- ---------------------------------------------------- Produce

    -- The statistics a planet may produce: the player's PDB level only.
    local function producible(ctx, player_id)
        local level = designs.pdb_level(ctx, player_id)
        return { data.INDUSTRY, data.SOCIAL, data.PLANETARY, data.POP_MAINT,
                 data.COLONIST, data.SHIP_TECH, data.PDB[level],
                 data.PDB_MAINT[level] }
    end

    local function max_units(planet, id, rp)
        local n = math.floor(rp / data.COST[id])
        if id == data.SHIP_TECH then
            n = math.min(n, data.SHIP_TECH_MAX)
        end
        return n
    end

    -- RP already promised to the Produce orders of the planet's queue.
    local function promised(ctx, planet, except)
        local n = 0
        local q = ctx:queue(planet)
        for _, o in ipairs(q and q.orders or {}) do
            if o ~= except and o.type == ctx.orders.Produce and o.state then
                n = n + (o.state.cost or 0)
            end
        end
        return n
    end

    -- Countdown of an order made in turn (rfts.md 3).
    local PRODUCE_COUNTDOWN = { [0] = 1, [1] = 3, [2] = 2 }

    M.produce = {
        name = "Produce",
        description = "Spend resource points on the planet's statistics, "
                      .. "planetary defence bases and ship technology "
                      .. "(done at the end of the production turn)",
        params = { { name = "Planetary stats", type = "list",
            description = "The statistics to produce, and how many",
            choices = function(ctx, planet, player_id)
                if not planet.data.resources then
                    return {}
                end
                local rp = objects.get(planet, data.RP)
                local out = {}
                for _, id in ipairs(producible(ctx, planet.owner)) do
                    out[#out + 1] = { id = id,
                        name = data.RESOURCES[id][1],
                        maxnum = max_units(planet, id, rp) }
                end
                return out
            end } },
        check = function(ctx, planet, order, player_id)
            local ok, why = game_over(ctx)
            if not ok then
                return ok, why
            end
            local sel = selection(order.params["Planetary stats"])
            if #sel == 0 then
                return false, "Nothing to produce."
            end
            local allowed = {}
            for _, id in ipairs(producible(ctx, player_id)) do
                allowed[id] = true
            end
            local cost = 0
            for _, s in ipairs(sel) do
                if not allowed[s.id] then
                    return false, "Resource " .. s.id .. " cannot be "
                                  .. "produced here."
                end
                if s.id == data.SHIP_TECH and
                   s.number > data.SHIP_TECH_MAX then
                    return false, "At most " .. data.SHIP_TECH_MAX ..
                                  " Ship Technology at once."
                end
                cost = cost + s.number * data.COST[s.id]
            end
            local rp = objects.get(planet, data.RP) -
                       promised(ctx, planet, order)
            if cost > rp then
                return false, string.format("Over budget: this costs %d "
                    .. "RP and the planet has %d RP left.", cost,
                    math.max(rp, 0))
            end
            order.params["Planetary stats"].selection = sel
            order.state = { countdown = PRODUCE_COUNTDOWN[ctx.turn % 3],
                            cost = cost }
            return true
        end,
        turns = function(ctx, planet, order)
            return order.state and order.state.countdown or 0
        end,
        resources = function(ctx, planet, order)
            return { { resource = data.RP,
                       amount = order.state and order.state.cost or 0 } }
        end,
        execute = function(ctx, planet, order)
            local st = order.state
            st.countdown = st.countdown - 1
            if st.countdown > 0 then
                return false
            end
            local owner = planet.owner
            if owner == 0 then
                return true
            end
            -- Unlike the reference (RP clamped at 0), only what the RP
            -- left pays for is produced.
            objects.set(ctx, planet, data.SHIP_TECH, 0)
            local lines, short = {}, false
            for _, s in ipairs(order.params["Planetary stats"].selection) do
                local cost = data.COST[s.id]
                local rp = objects.get(planet, data.RP)
                local n = math.min(s.number, math.floor(rp / cost))
                if n < s.number then
                    short = true
                end
                if n > 0 then
                    objects.set(ctx, planet, data.RP, rp - n * cost)
                    objects.add(ctx, planet, s.id, n)
                    if s.id == data.PDB[1] or s.id == data.PDB[2] or
                       s.id == data.PDB[3] then
                        designs.add_vp(ctx, owner, n * cost)
                    end
                    lines[#lines + 1] = n .. " " .. data.RESOURCES[s.id][1]
                end
            end
            local body = "Production on " .. planet.name .. " is complete: "
                         .. (#lines > 0 and table.concat(lines, ", ")
                             or "nothing")
                         .. (short and " (not enough resource points for "
                             .. "all of it)" or "") .. "."
            tell(ctx, owner, "Production complete", body,
                 { COMPLETED, ref(1, planet.id) })
            local points = objects.get(planet, data.SHIP_TECH)
            if points > 0 then
                local gained = designs.add_tech(ctx, owner, points)
                local info = designs.info(ctx, owner)
                local text = string.format("Your ship technology has %d "
                    .. "points (level %d).", info.tech, info.level)
                for _, level in ipairs(gained) do
                    text = text .. " New design: Mark" .. level .. "."
                    if level <= data.MAX_PDB_LEVEL then
                        text = text .. " Your PDBs become PDB" .. level
                               .. "s."
                    end
                end
                tell(ctx, owner, "Ship Technology", text, {})
            end
            return true
        end,
    }

    -- ---------------------------------------------------- Build Fleet

    -- Fits a selection to the planet's budget (rfts.md 3: the reference
    -- rewrites over-budget entries with a wrong formula; here each entry
    -- is cut to what the RP left, the industry and the colonists allow).
    local function fit(ctx, planet, player_id, sel)
        local rp = objects.get(planet, data.RP)
        local industry = objects.get(planet, data.INDUSTRY)
        local colonists = objects.get(planet, data.COLONIST)
        local out = {}
        for _, s in ipairs(sel) do
            local d = ctx:design(s.id)
            local cost = designs.cost(d)
            local n
            if designs.is_transport(ctx, player_id, s.id) then
                n = rp >= cost and math.min(s.number, colonists) or 0
                colonists = colonists - n
                if n > 0 then
                    rp = rp - cost
                end
            else
                n = math.min(s.number, industry, math.floor(rp / cost))
                rp = rp - n * cost
            end
            if n > 0 then
                out[#out + 1] = { id = s.id, number = n }
            end
        end
        return out
    end

    M.build = {
        name = "Build Fleet",
        description = "Build a fleet of ships in the planet's star system "
                      .. "(done at the end of a production or construction "
                      .. "turn)",
        params = {
            { name = "Ships", type = "list",
              description = "The ships to build (Colonist: transports, "
                            .. "one per colonist)",
              choices = function(ctx, planet, player_id)
                  if not planet.data.resources then
                      return {}
                  end
                  local owner = planet.owner
                  local rp = objects.get(planet, data.RP)
                  local out = {}
                  for _, d in ipairs(designs.usable_list(ctx, owner)) do
                      local cost = designs.cost(d)
                      local by_rp = math.floor(rp / cost)
                      if designs.is_transport(ctx, owner, d.id) then
                          out[#out + 1] = { id = d.id, name = "Colonist",
                              maxnum = math.min(objects.get(planet,
                                  data.COLONIST), by_rp) }
                      else
                          out[#out + 1] = { id = d.id, name = d.name,
                              maxnum = math.min(objects.get(planet,
                                  data.INDUSTRY), by_rp) }
                      end
                  end
                  return out
              end },
            { name = "Name", type = "string", maxlength = 1024,
              description = "The name of the new fleet" },
        },
        check = function(ctx, planet, order, player_id)
            local ok, why = game_over(ctx)
            if not ok then
                return ok, why
            end
            local sel = selection(order.params.Ships)
            if #sel == 0 then
                return false, "No ships to build."
            end
            for _, s in ipairs(sel) do
                if not designs.usable(ctx, player_id, s.id) then
                    return false, "Design " .. s.id .. " cannot be built "
                                  .. "by you."
                end
            end
            local name = order.params.Name
            if #(name and name.string or "") > 1024 then
                return false, "The fleet name is longer than 1024 bytes."
            end
            local fitted = fit(ctx, planet, player_id, sel)
            if #fitted == 0 then
                return false, "Over budget: not enough resource points, "
                              .. "industry or colonists for any of these "
                              .. "ships."
            end
            order.params.Ships.selection = fitted
            order.state = { countdown = ctx.turn % 3 == 2 and 2 or 1 }
            return true
        end,
        turns = function(ctx, planet, order)
            return order.state and order.state.countdown or 0
        end,
        resources = function(ctx, planet, order)
            local n = 0
            for _, s in ipairs(order.params.Ships.selection or {}) do
                local cost = designs.cost(ctx:design(s.id)) or 0
                if designs.is_transport(ctx, planet.owner, s.id) then
                    n = n + cost
                else
                    n = n + cost * s.number
                end
            end
            return { { resource = data.RP, amount = n } }
        end,
        execute = function(ctx, planet, order)
            local st = order.state
            st.countdown = st.countdown - 1
            if st.countdown > 0 then
                return false
            end
            local owner = planet.owner
            if owner == 0 then
                return true
            end
            local ships, spent, short = {}, 0, false
            for _, s in ipairs(order.params.Ships.selection) do
                local d = ctx:design(s.id)
                local cost = designs.cost(d)
                local rp = objects.get(planet, data.RP)
                local n
                if not cost then
                    n = 0
                elseif designs.is_transport(ctx, owner, s.id) then
                    n = math.min(s.number, objects.get(planet, data.COLONIST))
                    if rp < cost then
                        n = 0
                    end
                    if n > 0 then
                        objects.set(ctx, planet, data.RP, rp - cost)
                        objects.add(ctx, planet, data.COLONIST, -n)
                        spent = spent + cost
                    end
                else
                    n = math.min(s.number, math.floor(rp / cost))
                    objects.set(ctx, planet, data.RP, rp - n * cost)
                    spent = spent + n * cost
                end
                if n < s.number then
                    short = true
                end
                if n > 0 then
                    ships[#ships + 1] = { design = s.id, count = n }
                end
            end
            designs.add_vp(ctx, owner, math.floor(spent * 3 / 4))
            if #ships == 0 then
                tell(ctx, owner, "Build Fleet order failed", "Not enough "
                     .. "resource points or colonists on " .. planet.name
                     .. " to build any ship.",
                     { INVALID, ref(1, planet.id) })
                return true
            end
            local name = order.params.Name and order.params.Name.string or ""
            if name == "" then
                local p = ctx:player(owner)
                name = (p and p.name or "?") .. "'s New Fleet"
            end
            local sys = ctx:object(planet.parent)
            local fleet = objects.new_fleet(ctx, { name = name, system = sys,
                owner = owner, ships = ships })
            tell(ctx, owner, "Build Fleet order complete", "The fleet '"
                 .. name .. "' has been built at " .. planet.name
                 .. (short and "; the build is incomplete: there were not "
                     .. "enough resource points or colonists for all the "
                     .. "ships" or "") .. ".",
                 { COMPLETED, ref(1, fleet.id), ref(1, planet.id) })
            return true
        end,
    }

    -- ---------------------------------------------------- Move

    -- Round half up of distance / speed (rfts.md 3).
    local function travel_turns(distance, speed)
        if speed <= 0 then
            return nil
        end
        return math.floor(distance / speed + 0.5)
    end

    -- Where a fleet starts from: its system, or (in transit) the system
    -- it left.
    local function origin(ctx, fleet)
        local sys = objects.system_of(ctx, fleet)
        if not sys and fleet.data.from then
            sys = ctx:object(fleet.data.from)
        end
        return sys
    end

    local function arrive(ctx, fleet, sys)
        if fleet.parent ~= sys.id then
            ctx:set_parent(fleet, sys.id)
        end
        fleet.pos = { x = sys.pos.x, y = sys.pos.y, z = 0 }
        fleet.data.from = nil
        ctx:changed(fleet)
        objects.explore(ctx, fleet.owner, sys)
        tell(ctx, fleet.owner, "Move fleet order complete", "The fleet '"
             .. fleet.name .. "' has arrived at " .. sys.name .. ".",
             { COMPLETED, ref(1, fleet.id), ref(1, sys.id) })
    end
    M.arrive = arrive

    M.move = {
        name = "Move",
        description = "Move the fleet to a star system",
        params = { { name = "Star System", type = "object",
                     validtypes = { SYSTEM_T, PLANET_T },
                     description = "The star system to go to (a planet "
                                   .. "stands for its star system)" } },
        check = function(ctx, fleet, order)
            local ok, why = game_over(ctx)
            if not ok then
                return ok, why
            end
            local target = ctx:object(object_param(order, "Star System"))
            if objects.is(ctx, target, objects.PLANET) then
                target = ctx:object(target.parent)
            end
            if not objects.is(ctx, target, objects.SYSTEM) then
                return false, "The destination must be a star system or a "
                              .. "planet."
            end
            order.params["Star System"].objectid = target.id
            if objects.fleet_stats(ctx, fleet).speed <= 0 then
                return false, "This fleet cannot move."
            end
            return true
        end,
        turns = function(ctx, fleet, order)
            if order.state and order.state.left then
                return order.state.left
            end
            local from = origin(ctx, fleet)
            local to = ctx:object(object_param(order, "Star System"))
            if not from or not to then
                return 0
            end
            return travel_turns(objects.distance(from, to),
                                objects.fleet_stats(ctx, fleet).speed) or 0
        end,
        execute = function(ctx, fleet, order)
            if behind_move(ctx, fleet, order) then
                return false
            end
            local to = ctx:object(object_param(order, "Star System"))
            if not objects.is(ctx, to, objects.SYSTEM) then
                return true
            end
            order.state = order.state or {}
            local st = order.state
            if not st.left then
                local from = origin(ctx, fleet)
                st.left = travel_turns(objects.distance(from, to),
                    objects.fleet_stats(ctx, fleet).speed) or 0
                st.from = from.id
            end
            -- A zero-length move arrives at once (the reference's
            -- counter wraps and the fleet never arrives).
            if st.left > 0 then
                st.left = st.left - 1
            end
            if st.left == 0 then
                arrive(ctx, fleet, to)
                return true
            end
            if fleet.parent ~= 0 then
                fleet.data.from = fleet.parent
                ctx:set_parent(fleet, 0)
                ctx:changed(fleet)
            end
            return false
        end,
    }

    -- ---------------------------------------------------- Split Fleet

    local function in_system(ctx, fleet)
        local parent = ctx:object(fleet.parent)
        return parent ~= nil and parent.type == ctx.types[objects.SYSTEM]
    end

    M.split = {
        name = "Split Fleet",
        description = "Split ships off into a new fleet",
        params = { { name = "ships", type = "list",
            description = "The ships to move into the new fleet",
            choices = function(ctx, fleet)
                local out = {}
                for _, s in ipairs(fleet.data.ships or {}) do
                    out[#out + 1] = { id = s.design,
                        name = objects.design_stats(ctx, s.design).name,
                        maxnum = s.count }
                end
                return out
            end } },
        check = function(ctx, fleet, order)
            local ok, why = game_over(ctx)
            if not ok then
                return ok, why
            end
            local sel = selection(order.params.ships)
            if #sel == 0 then
                return false, "No ships to split off."
            end
            local moved = 0
            for _, s in ipairs(sel) do
                if s.number > objects.ship_count(fleet, s.id) then
                    return false, "The fleet does not have " .. s.number
                                  .. " ships of design " .. s.id .. "."
                end
                moved = moved + s.number
            end
            if moved >= objects.total_ships(fleet) then
                return false, "The fleet must keep at least one ship."
            end
            order.params.ships.selection = sel
            return true
        end,
        turns = function() return 1 end,
        execute = function(ctx, fleet, order)
            if behind_move(ctx, fleet, order) then
                return false
            end
            local refs = { ref(1, fleet.id) }
            if not in_system(ctx, fleet) then
                refs[#refs + 1] = CANCELED
                tell(ctx, fleet.owner, "Split Fleet order canceled",
                     "A fleet in transit cannot split.", refs)
                return true
            end
            local moved, failed = {}, false
            for _, s in ipairs(selection(order.params.ships)) do
                if objects.remove_ships(ctx, fleet, s.id, s.number) then
                    moved[#moved + 1] = { design = s.id, count = s.number }
                else
                    failed = true
                end
            end
            if failed or #moved == 0 or objects.total_ships(fleet) == 0 then
                for _, s in ipairs(moved) do
                    objects.add_ships(ctx, fleet, s.design, s.count)
                end
                refs[#refs + 1] = CANCELED
                tell(ctx, fleet.owner, "Split Fleet order canceled",
                     "Fleet not split: not enough ships.", refs)
                return true
            end
            local new = objects.new_fleet(ctx, { name = "New fleet",
                system = ctx:object(fleet.parent), owner = fleet.owner,
                ships = moved })
            objects.refresh_allowed(ctx, fleet)
            refs[#refs + 1] = ref(1, new.id)
            refs[#refs + 1] = COMPLETED
            tell(ctx, fleet.owner, "Split Fleet order complete",
                 "The fleet '" .. fleet.name .. "' has been split.", refs)
            return true
        end,
    }

    -- ---------------------------------------------------- Merge Fleet

    M.merge = {
        name = "Merge Fleet",
        description = "Take another fleet's ships into this one",
        params = { { name = "Other fleet", type = "object",
                     validtypes = { FLEET_T },
                     description = "Your fleet to merge into this one" } },
        check = function(ctx, fleet, order, player_id)
            local ok, why = game_over(ctx)
            if not ok then
                return ok, why
            end
            local other = ctx:object(object_param(order, "Other fleet"))
            if not objects.is(ctx, other, objects.FLEET) then
                return false, "The other fleet must be a fleet."
            end
            if other.owner ~= player_id then
                return false, "The other fleet must be yours."
            end
            if other.id == fleet.id then
                return false, "A fleet cannot merge with itself."
            end
            return true
        end,
        turns = function() return 1 end,
        execute = function(ctx, fleet, order)
            if behind_move(ctx, fleet, order) then
                return false
            end
            local other = ctx:object(object_param(order, "Other fleet"))
            local refs = { ref(1, fleet.id) }
            -- Unlike the reference, both fleets must be in the same star
            -- system (not in transit).
            if not objects.is(ctx, other, objects.FLEET) or
               other.owner ~= fleet.owner or other.id == fleet.id or
               other.parent ~= fleet.parent or not in_system(ctx, fleet) then
                refs[#refs + 1] = CANCELED
                tell(ctx, fleet.owner, "Merge Fleet order canceled",
                     "The other fleet is not here (or is not yours).", refs)
                return true
            end
            for _, s in ipairs(other.data.ships) do
                objects.add_ships(ctx, fleet, s.design, s.count)
            end
            fleet.data.damage = (fleet.data.damage or 0) +
                                (other.data.damage or 0)
            objects.remove_fleet(ctx, other)
            objects.refresh_allowed(ctx, fleet)
            refs[#refs + 1] = COMPLETED
            tell(ctx, fleet.owner, "Merge Fleet order complete",
                 "The fleets have been merged into '" .. fleet.name .. "'.",
                 refs)
            return true
        end,
    }

    -- ---------------------------------------------------- Rename Fleet

    M.rename = {
        name = "Rename Fleet", description = "Give the fleet a new name",
        params = { { name = "New Name", type = "string", maxlength = 1024,
                     description = "The fleet's new name" } },
        check = function(ctx, fleet, order)
            local ok, why = game_over(ctx)
            if not ok then
                return ok, why
            end
            local s = order.params["New Name"]
            s = s and s.string or ""
            if s == "" then
                return false, "The new name is empty."
            end
            if #s > 1024 then
                return false, "The new name is longer than 1024 bytes."
            end
            return true
        end,
        turns = function() return 1 end,
        execute = function(ctx, fleet, order)
            fleet.name = order.params["New Name"].string
            ctx:changed(fleet)
            return true
        end,
    }

    -- ---------------------------------------------------- Colonise

    local function planet_check(ctx, fleet, order, player_id, what)
        local ok, why = game_over(ctx)
        if not ok then
            return ok, why
        end
        local planet = ctx:object(object_param(order, "Planet"))
        if not objects.is(ctx, planet, objects.PLANET) then
            return false, "The target must be a planet."
        end
        if planet.owner == player_id then
            return false, "You cannot " .. what .. " your own planet."
        end
        return true, planet
    end

    M.colonise = {
        name = "Colonise",
        description = "Land the fleet's transports on a planet of its star "
                      .. "system",
        params = { { name = "Planet", type = "object",
                     validtypes = { PLANET_T },
                     description = "The planet to colonise" } },
        check = function(ctx, fleet, order, player_id)
            local ok, why = planet_check(ctx, fleet, order, player_id,
                                         "colonise")
            if not ok then
                return ok, why
            end
            if objects.fleet_stats(ctx, fleet).transports == 0 then
                return false, "The fleet has no transports."
            end
            return true
        end,
        turns = function() return 1 end,
        execute = function(ctx, fleet, order)
            if behind_move(ctx, fleet, order) then
                return false
            end
            local owner = fleet.owner
            local planet = ctx:object(object_param(order, "Planet"))
            local c = objects.fleet_stats(ctx, fleet).transports
            if not objects.is(ctx, planet, objects.PLANET) or
               planet.parent ~= fleet.parent or planet.owner == owner or
               c == 0 then
                tell(ctx, owner, "Colonise order canceled", "The planet is "
                     .. "not in the fleet's star system, is already yours, "
                     .. "or the fleet has no transports.",
                     { CANCELED, ref(1, fleet.id) })
                return true
            end
            local defender = planet.owner
            local pop = objects.get(planet, data.POPULATION)
            pop = math.max(pop - math.floor(c * 4 / 3), 0)
            local refs = { ref(1, fleet.id), ref(1, planet.id) }
            local subject, body
            objects.set(ctx, planet, data.POPULATION, pop)
            if c >= pop / 2 then
                objects.set_planet_owner(ctx, planet, owner)
                designs.add_vp(ctx, owner, data.VP_COLONISE)
                subject = "Colonised planet"
                body = "The planet " .. planet.name .. " has been colonised"
                       .. " by " .. ctx:player(owner).name .. "."
                refs[#refs + 1] = COMPLETED
            else
                designs.add_vp(ctx, owner, data.VP_COLONISE_FAILED)
                subject = "Colonisation failed"
                body = "The planet " .. planet.name .. " was attacked by "
                       .. ctx:player(owner).name .. " but the colonisation "
                       .. "failed."
            end
            for _, s in ipairs(objects.copy_ships(fleet)) do
                if objects.design_stats(ctx, s.design).colonise >= 1 then
                    objects.remove_ships(ctx, fleet, s.design, s.count)
                end
            end
            tell(ctx, owner, subject, body, refs)
            if defender ~= 0 and defender ~= owner then
                tell(ctx, defender, subject, body, refs)
            end
            if objects.total_ships(fleet) == 0 then
                objects.remove_fleet(ctx, fleet)
            else
                objects.refresh_allowed(ctx, fleet)
            end
            return true
        end,
    }

    -- ---------------------------------------------------- Bombard

    M.bombard = {
        name = "Bombard",
        description = "Bombard an enemy planet of the fleet's star system",
        params = { { name = "Planet", type = "object",
                     validtypes = { PLANET_T },
                     description = "The enemy planet to bombard" } },
        check = function(ctx, fleet, order, player_id)
            local ok, planet = planet_check(ctx, fleet, order, player_id,
                                            "bombard")
            if not ok then
                return ok, planet
            end
            if planet.owner == 0 then
                return false, "Nobody owns that planet."
            end
            return true
        end,
        turns = function() return 1 end,
        execute = function(ctx, fleet, order)
            if behind_move(ctx, fleet, order) then
                return false
            end
            local owner = fleet.owner
            local planet = ctx:object(object_param(order, "Planet"))
            local attack = objects.fleet_stats(ctx, fleet).attack
            if not objects.is(ctx, planet, objects.PLANET) or
               planet.parent ~= fleet.parent or planet.owner == owner or
               planet.owner == 0 or attack <= 0 then
                tell(ctx, owner, "Bombard order canceled", "The planet is "
                     .. "not an enemy planet of the fleet's star system, or "
                     .. "the fleet has no weapons.",
                     { CANCELED, ref(1, fleet.id) })
                return true
            end
            local g = rng.active()
            local defender = planet.owner
            local level = designs.pdb_level(ctx, defender)
            local pdb = data.PDB[level]
            local hits = { { data.INDUSTRY, 2 }, { data.SOCIAL, 5 },
                           { data.PLANETARY, 3 }, { pdb, 4 / 10 } }
            for _, h in ipairs(hits) do
                local r = g:range(-2, 2)
                local loss = math.floor(attack * h[2] * (1 + r / 100))
                objects.set(ctx, planet, h[1],
                            math.max(objects.get(planet, h[1]) - loss, 0))
            end
            designs.add_vp(ctx, owner, data.VP_BOMBARD)
            local body = "The planet " .. planet.name .. " was bombarded by "
                         .. ctx:player(owner).name .. "'s fleet '"
                         .. fleet.name .. "'."
            local refs = { COMPLETED, ref(1, fleet.id), ref(1, planet.id) }
            tell(ctx, owner, "Bombard complete", body, refs)
            tell(ctx, defender, "Planet bombarded", body, refs)
            local damage = level * 6 * objects.get(planet, pdb)
            if damage > 0 then
                combat.damage(ctx, g, fleet, damage)
            end
            return true
        end,
    }

    -- In id order (order type ids 0-7).
    M.TYPES = { M.build, M.produce, M.move, M.split, M.merge, M.rename,
                M.colonise, M.bombard }

    return M
end
