-- MiniSec orders (minisec.md 2.2, 7): No Operation, Move, Build Fleet,
-- Colonise, Split Fleet, Merge Fleet and Intercept, with the messages
-- their owners get. Only the first order of a queue runs in a turn (the
-- turn decides when, minisec.md 8); an order that returns true is done.
return function(ms)
    local data, objects, movement, rng, designs =
        ms.data, ms.objects, ms.movement, ms.rng, ms.designs
    local M = {}

    local function ref(t, id)
        return { type = t, id = id }
    end
    -- Order action references (PROTOCOL.md 11).
    local COMPLETED, CANCELED = ref(-2, 1), ref(-2, 2)
    local INCOMPATIBLE, INVALID = ref(-2, 3), ref(-2, 4)

    -- A message to an object's owner (nobody when unowned).
    local function tell(ctx, owner, subject, body, refs)
        if owner ~= 0 then
            ctx:message(owner, subject, body, refs)
        end
    end

    local FLEET_TYPE_ID = 4     -- Fleet is the fifth object type

    -- A list parameter's selection as { { id, number } } in ascending id,
    -- one entry per id (a later entry for the same id replaces an earlier
    -- one, as the reference's map does).
    local function selection(list)
        local by_id, ids = {}, {}
        for _, s in ipairs(list.selection or {}) do
            if not by_id[s.id] then
                ids[#ids + 1] = s.id
            end
            by_id[s.id] = s.number
        end
        table.sort(ids)
        local out = {}
        for i, id in ipairs(ids) do
            out[i] = { id = id, number = by_id[id] }
        end
        return out
    end

    -- ---------------------------------------------------- No Operation

    M.nop = {
        name = "No Operation",
        description = "Object does nothing for a given number of turns",
        params = { { name = "wait", type = "time", maxtime = 1000,
                     description = "The number of turns to wait" } },
        turns = function(ctx, obj, order)
            return order.params.wait.turns or 0
        end,
        execute = function(ctx, obj, order)
            local wait = order.params.wait
            if (wait.turns or 0) <= 1 then
                tell(ctx, obj.owner, "NOp order complete", "The object has "
                     .. "finished it's delay and is now continuing",
                     { COMPLETED, ref(1, obj.id) })
                return true
            end
            wait.turns = wait.turns - 1
            return false
        end,
    }

    -- ---------------------------------------------------- Move

    -- Arrival message of Move and Intercept.
    local function arrived(ctx, fleet, subject)
        tell(ctx, fleet.owner, subject, "The fleet '" .. fleet.name ..
             "' has reached it's destination.",
             { COMPLETED, ref(1, fleet.id), ref(1, fleet.parent) })
    end

    M.move = {
        name = "Move",
        description = "Move to a given position absolute in space",
        params = { { name = "pos", type = "abs_coords",
                     description = "The position in space to move to" } },
        check = function(ctx, fleet, order)
            if not movement.valid_point(order.params.pos) then
                return false, "the position is out of range"
            end
            return true
        end,
        turns = function(ctx, fleet, order)
            return movement.eta(objects.distance(order.params.pos, fleet.pos),
                                objects.speed(ctx, fleet))
        end,
        execute = function(ctx, fleet, order)
            local dest = order.params.pos
            local speed = objects.speed(ctx, fleet)
            if objects.distance(dest, fleet.pos) <= speed then
                movement.arrive(ctx, fleet, dest)
                arrived(ctx, fleet, "Move order complete")
                return true
            end
            movement.step(ctx, fleet, dest, speed)
            return false
        end,
    }

    -- ---------------------------------------------------- Build Fleet

    local MAX_PER_DESIGN = 100

    local function cost_of(order)
        return order.state and order.state.cost or 0
    end

    M.build = {
        name = "Build Fleet", description = "Build a fleet",
        params = {
            { name = "ships", type = "list",
              description = "The type of ship to build",
              choices = function(ctx, planet)
                  local out = {}
                  for _, d in ipairs(designs.usable_list(ctx, planet.owner)) do
                      out[#out + 1] = { id = d.id, name = d.name,
                                        maxnum = MAX_PER_DESIGN }
                  end
                  return out
              end },
            { name = "name", type = "string", maxlength = 1024,
              description = "The name of the new fleet being built" },
        },
        -- The cost in ship parts: the sum of count x BuildTime, rounded
        -- up per design; kept in order.state.cost.
        check = function(ctx, planet, order, player)
            local sel = selection(order.params.ships)
            local cost = 0
            for _, s in ipairs(sel) do
                local d = designs.usable(ctx, player, s.id)
                if not d then
                    return false, "The requested design was not valid."
                end
                if s.number > MAX_PER_DESIGN then
                    return false, "At most " .. MAX_PER_DESIGN .. " ships "
                                  .. "of a design can be ordered at once."
                end
                cost = cost + math.ceil(s.number *
                                        objects.design_stats(ctx, s.id)
                                        .build_time)
            end
            if cost == 0 and #sel > 0 then
                return false, "To build was empty..."
            end
            local name = order.params.name
            if #(name.string or "") > 1024 then
                return false, "The fleet name is longer than 1024 bytes."
            end
            if (name.string or "") == "" then
                name.string = "A Fleet"
            end
            order.params.ships.selection = sel
            order.state = { cost = cost }
            return true
        end,
        inserted = function(ctx, planet, order)
            for _, s in ipairs(order.params.ships.selection) do
                designs.count_ordered(ctx, ctx:design(s.id), s.number)
            end
        end,
        turns = function(ctx, planet, order, slot)
            local cost = cost_of(order)
            if slot ~= 0 or cost == 0 then
                return cost
            end
            local parts = objects.resource(planet, data.RES_SHIP_PART)
            if parts >= cost then
                return 1
            end
            return cost - parts
        end,
        resources = function(ctx, planet, order)
            return { { resource = data.RES_SHIP_PART,
                       amount = cost_of(order) } }
        end,
        execute = function(ctx, planet, order)
            local cost = cost_of(order)
            if cost == 0 or planet.owner == 0 then
                return true
            end
            objects.add_resource(ctx, planet, data.RES_SHIP_PART, 1)
            if not objects.remove_resource(ctx, planet, data.RES_SHIP_PART,
                                           cost) then
                return false
            end
            local ships = {}
            for _, s in ipairs(order.params.ships.selection) do
                ships[#ships + 1] = { design = s.id, count = s.number }
            end
            local name = order.params.name.string
            local fleet = objects.new_fleet(ctx, {
                name = name, parent = planet.id, owner = planet.owner,
                pos = planet.pos, ships = ships,
                look = rng.pick(rng.active().game, data.FLEET_MEDIA) })
            for _, s in ipairs(ships) do
                designs.count_built(ctx, ctx:design(s.design), s.count)
            end
            tell(ctx, planet.owner, "Build Fleet order complete",
                 "The construction of your new fleet \"" .. name ..
                 "\" is complete.",
                 { COMPLETED, ref(1, fleet.id), ref(1, planet.id) })
            return true
        end,
    }

    -- ---------------------------------------------------- Colonise

    -- The colonising ship: the design with Colonise and the least Armour
    -- (the first of equals, in ascending design id), or nil.
    local function coloniser(ctx, fleet)
        local best, best_hp = nil, 2000000
        for _, s in ipairs(fleet.data.ships) do
            local st = objects.design_stats(ctx, s.design)
            if st.colonise ~= 0 and math.floor(st.armour) < best_hp then
                best, best_hp = s.design, math.floor(st.armour)
            end
        end
        return best
    end

    M.colonise = {
        name = "Colonise",
        description = "Attempt to colonise a planet at the current location",
        turns = function() return 1 end,
        execute = function(ctx, fleet, order)
            local owner = fleet.owner
            local planet = ctx:object(fleet.parent)
            if not objects.is(ctx, planet, objects.PLANET) then
                tell(ctx, owner, "Colonise order canceled",
                     "Not at a planet, colonisation canceled",
                     { CANCELED, ref(1, fleet.id) })
                return true
            end
            local refs = { ref(1, fleet.id), ref(1, planet.id) }
            local subject, body
            if planet.owner == owner then
                subject = "Colonisation failed"
                body = "You already own the planet you tried to colonise"
                refs[#refs + 1] = CANCELED
            elseif planet.owner ~= 0 then
                subject = "Colonisation failed"
                body = "The planet you tried to colonise, is already owned "
                       .. "by someone else."
                refs[#refs + 1] = CANCELED
            else
                local design = coloniser(ctx, fleet)
                if design then
                    objects.set_planet_owner(ctx, planet, owner)
                    objects.remove_ships(ctx, fleet, design, 1)
                    subject, body = "Colonised planet",
                                    "You have colonised a planet!"
                    refs[#refs + 1] = COMPLETED
                else
                    subject = "Colonisation failed"
                    body = "Your fleet did not have a frigate to colonise "
                           .. "the planet"
                    refs[#refs + 1] = INVALID
                end
                if objects.total_ships(fleet) == 0 then
                    objects.remove_fleet(ctx, fleet)
                end
            end
            tell(ctx, owner, subject, body, refs)
            return true
        end,
    }

    -- ---------------------------------------------------- Split Fleet

    M.split = {
        name = "Split Fleet", description = "Split the fleet into two",
        params = { { name = "ships", type = "list",
                     description = "The ships to be transferred",
                     choices = function(ctx, fleet)
                         local out = {}
                         for _, s in ipairs(fleet.data.ships) do
                             local st = objects.design_stats(ctx, s.design)
                             out[#out + 1] = { id = s.design, name = st.name,
                                               maxnum = s.count }
                         end
                         return out
                     end } },
        turns = function() return 1 end,
        execute = function(ctx, fleet, order)
            -- The new fleet's look is drawn even when nothing is split.
            local look = rng.pick(rng.active().game, data.FLEET_MEDIA)
            local moved = {}
            for _, s in ipairs(selection(order.params.ships)) do
                if s.number > 0 and
                   objects.remove_ships(ctx, fleet, s.id, s.number) then
                    moved[#moved + 1] = { design = s.id, count = s.number }
                end
            end
            local refs = { ref(1, fleet.id) }
            local body
            if objects.total_ships(fleet) == 0 or #moved == 0 then
                -- Put back what was taken (and only that: the reference
                -- puts back every listed count, which can create ships).
                for _, s in ipairs(moved) do
                    objects.add_ships(ctx, fleet, s.design, s.count)
                end
                body = "Fleet not split, not enough ships"
                refs[#refs + 1] = INCOMPATIBLE
            else
                local new = objects.new_fleet(ctx, {
                    name = "A fleet", parent = fleet.parent,
                    owner = fleet.owner, pos = fleet.pos, look = look,
                    ships = moved })
                body = "Split fleet complete"
                refs[#refs + 1] = ref(1, new.id)
                refs[#refs + 1] = COMPLETED
            end
            tell(ctx, fleet.owner, "Split Fleet order complete", body, refs)
            return true
        end,
    }

    -- ---------------------------------------------------- Merge Fleet

    M.merge = {
        name = "Merge Fleet",
        description = "Merge this fleet into another one",
        turns = function() return 0 end,
        execute = function(ctx, fleet, order)
            local parent = ctx:object(fleet.parent)
            local target
            for _, id in ipairs(parent and parent.children or {}) do
                local o = id ~= fleet.id and ctx:object(id)
                if o and o.type == fleet.type and o.owner == fleet.owner and
                   o.size + fleet.size >
                   objects.distance(o.pos, fleet.pos) then
                    target = o
                    break
                end
            end
            if not target then
                tell(ctx, fleet.owner, "Merge Fleet order canceled",
                     "No target fleet at this location",
                     { CANCELED, ref(1, fleet.id) })
                return true
            end
            tell(ctx, fleet.owner, "Merge Fleet order complete",
                 "The two fleets have been merged",
                 { COMPLETED, ref(1, fleet.id), ref(1, target.id) })
            for _, s in ipairs(fleet.data.ships) do
                objects.add_ships(ctx, target, s.design, s.count)
            end
            objects.remove_fleet(ctx, fleet)
            return true
        end,
    }

    -- ---------------------------------------------------- Intercept

    -- What can be intercepted: fleets and planets, and star systems
    -- (which the reference means to allow but never recognises).
    local INTERCEPTABLE = { [objects.FLEET] = true, [objects.PLANET] = true,
                            [objects.SYSTEM] = true }
    local MAX_PREDICTION = 50

    M.intercept = {
        name = "Intercept", description = "Intercept a given ship",
        params = { { name = "Fleet", type = "object",
                     validtypes = { FLEET_TYPE_ID },
                     description = "The fleet to intercept" } },
        -- 0 until the order has run; then the predicted number of turns.
        turns = function(ctx, fleet, order)
            return order.state and order.state.turns or 0
        end,
        execute = function(ctx, fleet, order)
            local id = order.params.Fleet.objectid or 0
            if id == 0 then
                return true
            end
            local target = ctx:object(id)
            if not target or not INTERCEPTABLE[ctx:type_of(target)] then
                tell(ctx, fleet.owner, "Intercept order canceled", target
                     and "Only fleets, planets and star systems can be "
                         .. "intercepted"
                     or "The object to intercept no longer exists",
                     { CANCELED, ref(1, fleet.id) })
                return true
            end
            local dest, vel = target.pos, target.vel
            local speed = objects.speed(ctx, fleet)
            if objects.distance(dest, fleet.pos) <= speed then
                movement.arrive(ctx, fleet, dest)
                arrived(ctx, fleet, "Intercept order complete")
                return true
            end
            -- Follow the target's velocity until the fleet can be there
            -- as soon as the target; give up after 50 turns.
            local n = 1
            local p = { x = dest.x, y = dest.y, z = dest.z }
            while objects.distance(p, fleet.pos) > speed * n do
                p = { x = p.x + vel.x, y = p.y + vel.y, z = p.z + vel.z }
                n = n + 1
                if n >= MAX_PREDICTION then
                    return true
                end
            end
            order.state = { turns = n }
            movement.step(ctx, fleet, p, speed)
            return false
        end,
    }

    -- In id order (order type ids 0-6).
    M.TYPES = { M.nop, M.move, M.build, M.colonise, M.split, M.merge,
                M.intercept }

    return M
end
