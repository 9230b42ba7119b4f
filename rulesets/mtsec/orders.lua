-- MTSec orders (mtsec.md 2): No Operation, Move, Build Fleet, Build
-- Weapon, Colonise, Split Fleet, Merge Fleet, Enhance, Send Points, Load
-- Armament and Unload Armament, with the messages their owners get. Only
-- the first order of a queue runs in a turn; an order that returns true
-- is done. README.md lists where they differ from the reference.
return function(mt)
    local data, objects, movement, designs, arms =
        mt.data, mt.objects, mt.movement, mt.designs, mt.arms
    local M = {}

    local function ref(t, id)
        return { type = t, id = id }
    end
    local COMPLETED, CANCELED = ref(-2, 1), ref(-2, 2)
    local INCOMPATIBLE, INVALID = ref(-2, 3), ref(-2, 4)

    local function tell(ctx, owner, subject, body, refs)
        if owner ~= 0 then
            ctx:message(owner, subject, body, refs)
        end
    end

    -- A list parameter's selection as { { id, number } } in ascending id,
    -- one entry per id (a later entry replaces an earlier one), entries
    -- of 0 left out.
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
        for _, id in ipairs(ids) do
            if by_id[id] > 0 then
                out[#out + 1] = { id = id, number = by_id[id] }
            end
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
        check = function(ctx, obj, order)
            local w = order.params.wait.turns or 0
            if w < 0 or w > 1000 then
                return false, "wait from 0 to 1000 turns"
            end
            return true
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
                tell(ctx, fleet.owner, "Move order complete", "The fleet '"
                     .. fleet.name .. "' has reached it's destination.",
                     { COMPLETED, ref(1, fleet.id), ref(1, fleet.parent) })
                return true
            end
            movement.step(ctx, fleet, dest, speed)
            return false
        end,
    }

    -- ---------------------------------------------------- building

    -- Choices of a build list: the owner's usable designs of category cat.
    local function build_choices(cat)
        return function(ctx, planet, player)
            local out = {}
            for _, d in ipairs(designs.usable_list(ctx, player or
                                                   planet.owner, cat)) do
                out[#out + 1] = { id = d.id, name = d.name,
                                  maxnum = data.MAX_PER_DESIGN }
            end
            return out
        end
    end

    -- Checks a build list and fixes its total in order.state.total:
    -- Σ ⌈count × ProductCost⌉.
    local function check_build(ctx, order, list, player, cat)
        local sel = selection(list)
        if #sel == 0 then
            return false, "Nothing to build: the list is empty."
        end
        local total = 0
        for _, s in ipairs(sel) do
            if not designs.usable(ctx, player, s.id, cat) then
                return false, "The requested design was not valid."
            end
            if s.number > data.MAX_PER_DESIGN then
                return false, "At most " .. data.MAX_PER_DESIGN .. " of a "
                              .. "design can be ordered at once."
            end
            total = total + math.ceil(s.number *
                                      objects.design_stats(ctx, s.id).cost)
        end
        if total <= 0 then
            return false, "The designs cost nothing to build."
        end
        list.selection = sel
        order.state = { total = total }
        return true
    end

    local function remaining(order)
        return order.state and order.state.total or 0
    end

    -- Turns shown: the remaining points over what the planet makes a turn
    -- (at least 1 a turn: no division by zero).
    local function build_turns(ctx, planet, order)
        local per_turn = math.max(1, planet.data.factories or 0,
                                  objects.points(planet))
        return math.ceil(remaining(order) / per_turn)
    end

    local function build_resources(ctx, planet, order)
        return { { resource = data.RES_FACTORIES, amount = remaining(order) } }
    end

    -- One turn of paying for a build. Returns true when paid in full
    -- (the points are spent), false to wait.
    local function pay(ctx, planet, order, what)
        local total = remaining(order)
        local f = objects.points(planet)
        if f <= 0 then
            tell(ctx, planet.owner, what .. " order error", "The planet "
                 .. planet.name .. " has no production points this turn; "
                 .. total .. " points are still needed.",
                 { INCOMPATIBLE, ref(1, planet.id) })
            return false
        end
        if total > f then
            objects.spend(ctx, planet, f)
            order.state.total = total - f
            tell(ctx, planet.owner, what .. " order slowed", "The planet "
                 .. planet.name .. " spent " .. f .. " points; " ..
                 (total - f) .. " points are still needed.",
                 { ref(1, planet.id) })
            return false
        end
        objects.spend(ctx, planet, total)
        order.state.total = 0
        return true
    end

    M.build_fleet = {
        name = "Build Fleet", description = "Build a fleet",
        params = {
            { name = "ships", type = "list",
              description = "The type of ship to build",
              choices = build_choices(designs.SHIPS) },
            { name = "name", type = "string", maxlength = 1024,
              description = "The name of the new fleet being built" },
        },
        check = function(ctx, planet, order, player)
            local ok, why = check_build(ctx, order, order.params.ships,
                                        player, designs.SHIPS)
            if not ok then
                return false, why
            end
            local name = order.params.name
            if #(name.string or "") > 1024 then
                return false, "The fleet name is longer than 1024 bytes."
            end
            if (name.string or "") == "" then
                name.string = "A Fleet"
            end
            return true
        end,
        inserted = function(ctx, planet, order)
            for _, s in ipairs(order.params.ships.selection) do
                designs.count_ordered(ctx, ctx:design(s.id), s.number)
            end
        end,
        turns = build_turns,
        resources = build_resources,
        execute = function(ctx, planet, order)
            if planet.owner == 0 then
                return true
            end
            if not pay(ctx, planet, order, "Build Fleet") then
                return false
            end
            local ships = {}
            for _, s in ipairs(order.params.ships.selection) do
                ships[#ships + 1] = { design = s.id, count = s.number }
            end
            local name = order.params.name.string
            local fleet = objects.new_fleet(ctx, {
                name = name, parent = planet.id, owner = planet.owner,
                pos = planet.pos, ships = ships })
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

    M.build_weapon = {
        name = "Build Weapon", description = "Build weapons",
        params = {
            { name = "Weapons", type = "list",
              description = "The weapons to build",
              choices = build_choices(designs.WEAPONS) },
        },
        check = function(ctx, planet, order, player)
            local ok, why = check_build(ctx, order, order.params.Weapons,
                                        player, designs.WEAPONS)
            if not ok then
                return false, why
            end
            local new = 0
            for _, s in ipairs(order.params.Weapons.selection) do
                if not arms.resource_of(ctx, s.id) then
                    new = new + 1
                end
            end
            if new > 0 and #ctx.state.arms.slots + new > data.WEAPON_SLOTS then
                return false, "No more kinds of weapon can be made in this "
                              .. "game (at most " .. data.WEAPON_SLOTS .. ")."
            end
            return true
        end,
        -- The weapons' resources are given out now, so that the order
        -- can always complete.
        inserted = function(ctx, planet, order)
            for _, s in ipairs(order.params.Weapons.selection) do
                local d = ctx:design(s.id)
                assert(arms.assign(ctx, d))
                designs.count_ordered(ctx, d, s.number)
            end
        end,
        turns = build_turns,
        resources = build_resources,
        execute = function(ctx, planet, order)
            if planet.owner == 0 then
                return true
            end
            if not pay(ctx, planet, order, "Build Weapon") then
                return false
            end
            local refs = { COMPLETED, ref(1, planet.id) }
            local made = {}
            for _, s in ipairs(order.params.Weapons.selection) do
                local d = ctx:design(s.id)
                local rid = d and arms.assign(ctx, d)
                if rid then
                    objects.add_amount(planet.data.resources, rid, s.number)
                    designs.count_built(ctx, d, s.number)
                    made[#made + 1] = s.number .. " " .. d.name
                end
            end
            ctx:changed(planet)
            tell(ctx, planet.owner, "Build Weapon order complete",
                 "The planet " .. planet.name .. " has built " ..
                 (#made > 0 and table.concat(made, ", ") or "nothing") .. ".",
                 refs)
            return true
        end,
    }

    -- ---------------------------------------------------- Colonise

    -- The colonising ship: the first design (ascending id) that can
    -- colonise (the reference means the least armoured, but reads a
    -- property that does not exist: mtsec.md 2).
    local function coloniser(ctx, fleet)
        for _, s in ipairs(fleet.data.ships) do
            if objects.design_stats(ctx, s.design).colonise ~= 0 then
                return s.design
            end
        end
        return nil
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
                    body = "Your fleet has no ship that can colonise"
                    refs[#refs + 1] = INVALID
                end
                if objects.total_ships(fleet) == 0 then
                    -- The weapons it carried stay on the planet.
                    for _, w in ipairs(fleet.data.weapons) do
                        objects.add_amount(planet.data.resources, w.resource,
                                           w.stored)
                    end
                    ctx:changed(planet)
                    objects.remove_fleet(ctx, fleet)
                end
            end
            tell(ctx, owner, subject, body, refs)
            return true
        end,
    }

    -- ---------------------------------------------------- Split, Merge

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
            local moved = {}
            for _, s in ipairs(selection(order.params.ships)) do
                if objects.remove_ships(ctx, fleet, s.id, s.number) then
                    moved[#moved + 1] = { design = s.id, count = s.number }
                end
            end
            local refs = { ref(1, fleet.id) }
            local body
            if objects.total_ships(fleet) == 0 or #moved == 0 then
                -- Put back what was taken (only that: the reference puts
                -- back every listed count, which can create ships).
                for _, s in ipairs(moved) do
                    objects.add_ships(ctx, fleet, s.design, s.count)
                end
                body = "Fleet not split, not enough ships"
                refs[#refs + 1] = INCOMPATIBLE
            else
                local new = objects.new_fleet(ctx, {
                    name = "A fleet", parent = fleet.parent,
                    owner = fleet.owner, pos = fleet.pos, ships = moved })
                body = "Split fleet complete"
                refs[#refs + 1] = ref(1, new.id)
                refs[#refs + 1] = COMPLETED
            end
            tell(ctx, fleet.owner, "Split Fleet order complete", body, refs)
            return true
        end,
    }

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
            -- The weapons go along (the reference drops them).
            for _, w in ipairs(fleet.data.weapons) do
                objects.add_amount(target.data.weapons, w.resource, w.stored)
            end
            ctx:changed(target)
            objects.remove_fleet(ctx, fleet)
            return true
        end,
    }

    -- ---------------------------------------------------- Enhance

    local function enhance_points(order)
        local p = order.params.Points.turns or 0
        return p > 0 and p or data.ENHANCE_DEFAULT
    end

    M.enhance = {
        name = "Enhance",
        description = "Spend production points to raise the planet's "
                      .. "Factories by a tenth of them",
        params = { { name = "Points", type = "time", maxtime = 1000000,
                     description = "The points to spend (0: "
                                   .. data.ENHANCE_DEFAULT .. ")" } },
        check = function(ctx, planet, order)
            local p = order.params.Points.turns or 0
            if p < 0 or p > 1000000 then
                return false, "Points from 0 to 1000000"
            end
            if p > 0 and p < 10 then
                return false, "Enhance needs at least 10 points (a tenth of "
                              .. "them is the gain)"
            end
            order.params.Points.turns = enhance_points(order)
            return true
        end,
        turns = function(ctx, planet, order)
            return 1
        end,
        resources = function(ctx, planet, order)
            return { { resource = data.RES_FACTORIES,
                       amount = enhance_points(order) } }
        end,
        execute = function(ctx, planet, order)
            if planet.owner == 0 then
                return false
            end
            local p = enhance_points(order)
            if objects.points(planet) >= p then
                objects.spend(ctx, planet, p)
                local gain = math.floor(p / 10)
                planet.data.factories = (planet.data.factories or 0) + gain
                ctx:changed(planet)
                tell(ctx, planet.owner, "Enhance order complete", "The "
                     .. "Factories of " .. planet.name .. " rose by " ..
                     gain .. " to " .. planet.data.factories .. ".",
                     { COMPLETED, ref(1, planet.id) })
                return true
            end
            tell(ctx, planet.owner, "Enhance order waiting",
                 "Not enough points for Enhance Order",
                 { ref(1, planet.id) })
            return false
        end,
    }

    -- ---------------------------------------------------- Send Points

    M.send_points = {
        name = "Send Points",
        description = "Send production points to another of your planets",
        params = { { name = "Planet", type = "list",
                     description = "The planets to send points to",
                     choices = function(ctx, planet, player)
                         local out = {}
                         local owner = player or planet.owner
                         local max = objects.points(planet)
                         for p in ctx:each_object(objects.PLANET) do
                             if p.owner ~= 0 and p.owner == owner and
                                p.id ~= planet.id then
                                 out[#out + 1] = { id = p.id, name = p.name,
                                                   maxnum = max }
                             end
                         end
                         return out
                     end } },
        check = function(ctx, planet, order, player)
            local sel = selection(order.params.Planet)
            if #sel == 0 then
                return false, "No planet to send points to."
            end
            for _, s in ipairs(sel) do
                local p = ctx:object(s.id)
                if not objects.is(ctx, p, objects.PLANET) or
                   p.owner ~= player or p.id == planet.id then
                    return false, "Object " .. s.id .. " is not another "
                                  .. "planet of yours."
                end
            end
            order.params.Planet.selection = sel
            return true
        end,
        turns = function() return 1 end,
        execute = function(ctx, planet, order)
            for _, s in ipairs(order.params.Planet.selection) do
                local target = ctx:object(s.id)
                if objects.is(ctx, target, objects.PLANET) and
                   target.owner ~= 0 and target.owner == planet.owner and
                   objects.spend(ctx, planet, s.number) then
                    target.data.one_time = (target.data.one_time or 0) +
                                           s.number
                    ctx:changed(target)
                    tell(ctx, planet.owner, "Send Points order complete",
                         s.number .. " points sent from " .. planet.name ..
                         " to " .. target.name .. "; they arrive next turn.",
                         { COMPLETED, ref(1, planet.id), ref(1, target.id) })
                    return true
                end
            end
            return false
        end,
    }

    -- ---------------------------------------------------- armament

    -- The fleet owner's planets within reach of the fleet, ascending id.
    local function planets_in_reach(ctx, fleet)
        local out = {}
        for p in ctx:each_object(objects.PLANET) do
            if p.owner ~= 0 and p.owner == fleet.owner and
               objects.distance(p.pos, fleet.pos) <=
               data.ARMAMENT_RANGE + objects.half(p.size) then
                out[#out + 1] = p
            end
        end
        return out
    end
    M.planets_in_reach = planets_in_reach

    local function is_weapon(id)
        return id >= data.RES_FIRST_WEAPON and
               id < data.RES_FIRST_WEAPON + data.WEAPON_SLOTS
    end

    local function weapon_check(ctx, order)
        local sel = selection(order.params.Weapons)
        if #sel == 0 then
            return false, "No weapons listed."
        end
        for _, s in ipairs(sel) do
            if not is_weapon(s.id) or not arms.design_of(ctx, s.id) then
                return false, "Resource " .. s.id .. " is not a weapon."
            end
        end
        order.params.Weapons.selection = sel
        return true
    end

    M.load = {
        name = "Load Armament",
        description = "Load weapons from a planet of yours nearby",
        params = { { name = "Weapons", type = "list",
                     description = "The weapons to load",
                     choices = function(ctx, fleet)
                         local have, ids = {}, {}
                         for _, p in ipairs(planets_in_reach(ctx, fleet)) do
                             for _, r in ipairs(p.data.resources) do
                                 if is_weapon(r.resource) and r.stored > 0 then
                                     if not have[r.resource] then
                                         ids[#ids + 1] = r.resource
                                     end
                                     have[r.resource] = (have[r.resource]
                                                         or 0) + r.stored
                                 end
                             end
                         end
                         table.sort(ids)
                         local out = {}
                         for i, id in ipairs(ids) do
                             out[i] = { id = id, name = arms.name(ctx, id),
                                        maxnum = have[id] }
                         end
                         return out
                     end } },
        check = function(ctx, fleet, order)
            return weapon_check(ctx, order)
        end,
        turns = function() return 1 end,
        execute = function(ctx, fleet, order)
            local loaded, missing = {}, {}
            local planets = planets_in_reach(ctx, fleet)
            for _, s in ipairs(order.params.Weapons.selection) do
                local done = false
                for _, p in ipairs(planets) do
                    if objects.resource(p, s.id) >= s.number and
                       objects.points(p) >= 1 then
                        objects.spend(ctx, p, 1)
                        objects.take_amount(p.data.resources, s.id, s.number)
                        objects.add_amount(fleet.data.weapons, s.id, s.number)
                        ctx:changed(p)
                        ctx:changed(fleet)
                        done = true
                        break
                    end
                end
                local line = s.number .. " " .. arms.name(ctx, s.id)
                if done then
                    loaded[#loaded + 1] = line
                else
                    missing[#missing + 1] = line
                end
            end
            if #loaded == 0 then
                return false
            end
            tell(ctx, fleet.owner, "Load Armament order complete",
                 "The fleet " .. fleet.name .. " loaded " ..
                 table.concat(loaded, ", ") .. "." .. (#missing > 0 and
                 (" Not loaded: " .. table.concat(missing, ", ") .. ".")
                 or ""), { COMPLETED, ref(1, fleet.id) })
            return true
        end,
    }

    M.unload = {
        name = "Unload Armament",
        description = "Unload weapons onto a planet of yours nearby",
        params = { { name = "Weapons", type = "list",
                     description = "The weapons to unload",
                     choices = function(ctx, fleet)
                         local out = {}
                         for _, w in ipairs(fleet.data.weapons) do
                             out[#out + 1] = { id = w.resource,
                                               name = arms.name(ctx,
                                                                w.resource),
                                               maxnum = w.stored }
                         end
                         return out
                     end } },
        check = function(ctx, fleet, order)
            return weapon_check(ctx, order)
        end,
        turns = function() return 1 end,
        execute = function(ctx, fleet, order)
            local planets = planets_in_reach(ctx, fleet)
            local unloaded = {}
            local target
            for _, s in ipairs(order.params.Weapons.selection) do
                if objects.amount(fleet.data.weapons, s.id) >= s.number then
                    for _, p in ipairs(planets) do
                        if objects.points(p) >= 1 then
                            objects.spend(ctx, p, 1)
                            objects.take_amount(fleet.data.weapons, s.id,
                                                s.number)
                            objects.add_amount(p.data.resources, s.id,
                                               s.number)
                            ctx:changed(p)
                            ctx:changed(fleet)
                            unloaded[#unloaded + 1] = s.number .. " " ..
                                                      arms.name(ctx, s.id)
                            target = target or p
                            break
                        end
                    end
                end
            end
            if #unloaded == 0 then
                return false
            end
            tell(ctx, fleet.owner, "Unload Armament order complete",
                 "The fleet " .. fleet.name .. " unloaded " ..
                 table.concat(unloaded, ", ") .. ".",
                 { COMPLETED, ref(1, fleet.id), ref(1, target.id) })
            return true
        end,
    }

    -- In id order (order type ids 0-10).
    M.TYPES = { M.nop, M.move, M.build_fleet, M.build_weapon, M.colonise,
                M.split, M.merge, M.enhance, M.send_points, M.load,
                M.unload }

    return M
end
