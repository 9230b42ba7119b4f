-- MTSec designs (mtsec.md 4, 6): the stock designs every player gets,
-- which designs a player may build, and the hooks that let players make
-- and change designs (AddDesign, ModifyDesign, RemoveDesign).
--
-- A design's properties are computed by the server (tp.designs: rank
-- order, name shadowing, every component's requirement rule). A design a
-- player sends must have exactly one category, Ships (1) or Weapons (2),
-- hold only components of that category, and pass the requirement rules;
-- otherwise it is refused with the reason. The stock Alpha Missile is
-- invalid by the rules (its 100 Cerium Explosives do not fit its hull)
-- but usable, as in the reference (design.usable).
return function(mt)
    local data, tt, objects, arms = mt.data, mt.techtree, mt.objects,
                                    mt.arms
    local M = {}

    M.SHIPS, M.WEAPONS = 1, 2

    local function comp(name)
        return assert(tt.component_by_name[name], name).id
    end

    M.STOCK = {
        { name = "Scout", description = "A fast scout with a missile tube",
          category = M.SHIPS,
          components = { { "Scout Hull", 1 }, { "Alpha Missile Tube", 1 } } },
        { name = "Alpha Missile", description = "A missile for Alpha "
          .. "Missile Tubes", category = M.WEAPONS, usable = true,
          components = { { "Alpha Missile Hull", 1 },
                         { "Cerium Explosives", 100 } } },
    }

    -- Creates the stock designs of a player; returns { Scout = d,
    -- ["Alpha Missile"] = d }.
    function M.create_stock(ctx, player_id)
        local out = {}
        for _, s in ipairs(M.STOCK) do
            local list = {}
            for i, c in ipairs(s.components) do
                list[i] = { id = comp(c[1]), count = c[2] }
            end
            local d = ctx:new_design { name = s.name,
                description = s.description, owner = player_id,
                categories = { s.category }, components = list }
            d.inuse, d.exists = 0, 0
            d.usable = s.usable or nil
            ctx:design_changed(d)
            out[s.name] = d
        end
        return out
    end

    -- A design the player may build in category cat, or nil.
    function M.usable(ctx, player_id, id, cat)
        local d = ctx:design(id)
        if not d or d.owner == 0 or d.owner ~= player_id or
           not (d.valid or d.usable) or not objects.in_category(d, cat) then
            return nil
        end
        return d
    end

    function M.usable_list(ctx, player_id, cat)
        local out = {}
        for _, d in ipairs(ctx:designs()) do
            if M.usable(ctx, player_id, d.id, cat) then
                out[#out + 1] = d
            end
        end
        return out
    end

    function M.count_ordered(ctx, d, n)
        d.inuse = (d.inuse or 0) + n
        ctx:design_changed(d)
    end

    function M.count_built(ctx, d, n)
        d.exists = (d.exists or 0) + n
        ctx:design_changed(d)
    end

    -- ---------------------------------------------------- player designs

    -- What a design sent by a player must be before it is computed: a
    -- name, one category, components of that category, at most 1000 of
    -- each. Returns the cleaned component list, or nil, why.
    local function shape(t)
        if type(t.name) ~= "string" or t.name:match("^%s*$") then
            return nil, "a design needs a name"
        end
        if #t.name > 256 then
            return nil, "the name is longer than 256 bytes"
        end
        if #t.categories ~= 1 or (t.categories[1] ~= M.SHIPS and
                                  t.categories[1] ~= M.WEAPONS) then
            return nil, "a design has exactly one category: Ships (1) or "
                        .. "Weapons (2)"
        end
        local cat = t.categories[1]
        local counts, ids = {}, {}
        for _, c in ipairs(t.components) do
            local info = tt.components[c.id]
            if not info or not objects.in_category(info, cat) then
                return nil, "component " .. (info and info.name or c.id)
                            .. " is not a " .. (cat == M.SHIPS and "Ships"
                            or "Weapons") .. " component"
            end
            if c.count > 0 then
                if not counts[c.id] then
                    ids[#ids + 1] = c.id
                end
                counts[c.id] = (counts[c.id] or 0) + c.count
            end
        end
        if #ids == 0 then
            return nil, "a design needs components"
        end
        table.sort(ids)
        local out = {}
        for i, id in ipairs(ids) do
            if counts[id] > 1000 then
                return nil, "at most 1000 of a component"
            end
            out[i] = { id = id, count = counts[id] }
        end
        return out
    end

    -- The properties as a short text for a refusal.
    local function refused(d)
        return "the design is not valid: " .. d.feedback
    end

    function M.add_design(ctx, player_id, t)
        local list, why = shape(t)
        if not list then
            return nil, why
        end
        local d = ctx:new_design { name = t.name,
            description = t.description or "", owner = player_id,
            categories = { t.categories[1] }, components = list }
        if not d.valid then
            -- The Fail throws the new design away with the request.
            return nil, refused(d)
        end
        d.inuse, d.exists = 0, 0
        ctx:design_changed(d)
        return d
    end

    -- A changed design is checked with techtree.precheck (the server
    -- then computes it anew); refused, it is left as it was.
    function M.modify_design(ctx, player_id, t)
        local d = ctx:design(t.id)
        if (d.inuse or 0) > 0 or (d.exists or 0) > 0 then
            return nil, "design " .. d.name .. " has been ordered or built; "
                        .. "make a new design instead"
        end
        local list, why = shape(t)
        if not list then
            return nil, why
        end
        local old = { name = d.name, description = d.description,
                      categories = d.categories, components = d.components,
                      properties = d.properties, valid = d.valid,
                      feedback = d.feedback, usable = d.usable }
        d.name, d.description = t.name, t.description or ""
        d.categories, d.components = { t.categories[1] }, list
        d.usable = nil
        tt.precheck(d)
        if not d.valid then
            local reason = refused(d)
            for k, v in pairs(old) do
                d[k] = v
            end
            return nil, reason
        end
        return d
    end

    function M.remove_design(ctx, player_id, d)
        if (d.inuse or 0) > 0 or (d.exists or 0) > 0 then
            return false, "design " .. d.name .. " has been ordered or built"
        end
        return true
    end

    return M
end
