-- MTSec weapons as resources (mtsec.md 2 Build Weapon, 3).
--
-- The reference creates a resource type named after a weapon design when
-- the first such weapon is built. A ruleset declares its resources when
-- it loads, so MTSec declares 200 weapon resources (ids 11-210) and gives
-- them out one per weapon design, in the order designs are first ordered
-- with Build Weapon: the resource takes the design's name (unit "weapon",
-- "weapons", description "A weapon ..."). Which resource belongs to which
-- design lives in ctx.state.arms.slots; the declared resources' names are
-- brought in line with it by sync(ctx): when a weapon resource is given
-- out, and from the ruleset's opened hook, which the server calls when
-- the game is opened and whenever its state is read again (a restart, a
-- failed request or turn thrown away). A weapon is a resource of one
-- design, so two players' designs of the same name stay apart.
return function(mt)
    local data, objects = mt.data, mt.objects
    local M = {}

    local applied   -- signature of the slots the declarations show now

    local function state(ctx)
        local st = ctx.state.arms
        if not st then
            st = { slots = {} }
            ctx.state.arms = st
        end
        return st
    end

    local function signature(slots)
        local last = slots[#slots]
        return #slots .. ":" .. (last and (last.design .. ":" .. last.name)
                                 or "")
    end

    local function describe(r, slot)
        if slot then
            r.name, r.name_plural = slot.name, slot.name
            r.description = "A weapon: " .. slot.name .. " (design " ..
                            slot.design .. " of " .. slot.owner_name .. ")"
            r.modtime = slot.modtime
        else
            local k = r.id - data.RES_FIRST_WEAPON + 1
            r.name, r.name_plural = "Weapon " .. k, "Weapon " .. k
            r.description = "A weapon (no design has been built as this "
                            .. "weapon yet)"
            r.modtime = nil
        end
    end

    -- Brings the declared weapon resources in line with ctx.state.
    function M.sync(ctx)
        local slots = state(ctx).slots
        local sig = signature(slots)
        if sig == applied then
            return
        end
        for k, r in ipairs(objects.WEAPON_RESOURCES) do
            describe(r, slots[k])
        end
        applied = sig
    end

    -- The weapon resource of a design, or nil.
    function M.resource_of(ctx, design_id)
        for k, s in ipairs(state(ctx).slots) do
            if s.design == design_id then
                return data.RES_FIRST_WEAPON + k - 1
            end
        end
        return nil
    end

    -- The design a weapon resource stands for, or nil.
    function M.design_of(ctx, resource_id)
        local s = state(ctx).slots[resource_id - data.RES_FIRST_WEAPON + 1]
        return s and s.design
    end

    -- The weapon resource of design d, given out now if it has none.
    -- nil, why when all are taken.
    function M.assign(ctx, d)
        local id = M.resource_of(ctx, d.id)
        if id then
            return id
        end
        local slots = state(ctx).slots
        if #slots >= data.WEAPON_SLOTS then
            return nil, "no more kinds of weapon can be made in this game "
                        .. "(at most " .. data.WEAPON_SLOTS .. ")"
        end
        local owner = ctx:player(d.owner)
        slots[#slots + 1] = { design = d.id, name = d.name,
                              owner_name = owner and owner.name or "nobody",
                              modtime = d.modtime or 0 }
        ctx:state_changed()
        M.sync(ctx)
        return data.RES_FIRST_WEAPON + #slots - 1
    end

    -- The name of a weapon resource (for messages and lists).
    function M.name(ctx, resource_id)
        local s = state(ctx).slots[resource_id - data.RES_FIRST_WEAPON + 1]
        return s and s.name or ("weapon " .. resource_id)
    end

    return M
end
