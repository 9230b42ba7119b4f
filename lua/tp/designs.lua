-- tp.designs: computing a design's properties from its components.
--
-- This replaces tpserver-cpp's TPCL (Scheme) with plain Lua. Properties
-- are computed rank by rank (ascending rank, then ascending id): for each
-- property, every component of the design that defines it contributes
-- count x value, where value is a number or a function (ctx, design) ->
-- number; the property's total is the sum (or the property's own
-- combine(values) function). While a rank is computed, d.properties holds
-- the properties of the lower ranks, so a function value (or a
-- requirement) may read what is already known of the design. A property
-- no component defines is absent. Each property's display(total) gives
-- the text clients see; d.properties ends in ascending id.
--
-- Components name properties by name; a name declared by several
-- properties means the last one declared (the highest id, tp.types'
-- property_by_name), as in tpserver-cpp.
--
-- Then every component of the design (once per component, ascending id)
-- may refuse it with its requirements(ctx, design): (false, "why") makes
-- it invalid. The feedback is every distinct "why", joined with "; ".

local types = require "tp.types"
local model = require "tp.model"

local M = {}

-- Property ids in evaluation order: ascending rank, then id.
local function evaluation_order()
    local ids = types.ids(types.properties)
    local rank = {}
    for _, id in ipairs(ids) do
        rank[id] = tonumber(types.properties[id].rank) or 0
    end
    table.sort(ids, function(a, b)
        if rank[a] ~= rank[b] then
            return rank[a] < rank[b]
        end
        return a < b
    end)
    return ids, rank
end

-- Fills d.properties = { { id, name, number, value } }, d.valid and
-- d.feedback. Marks the design changed.
function M.evaluate(ctx, d)
    -- property id -> { { value, count } } contributions, in component order
    local contrib = {}
    for _, c in ipairs(d.components or {}) do
        local comp = types.components[c.id]
        if comp then
            for pname, v in pairs(comp.properties or {}) do
                local p = types.property_by_name[pname]
                local list = contrib[p.id] or {}
                list[#list + 1] = { v, c.count }
                contrib[p.id] = list
            end
        end
    end
    local order, rank = evaluation_order()
    local props = {}
    d.properties = props
    local i = 1
    while i <= #order do
        -- One rank at a time: its values only see lower ranks.
        local r, j = rank[order[i]], i
        local done = {}
        while j <= #order and rank[order[j]] == r do
            local pid = order[j]
            local list = contrib[pid]
            if list then
                local values = {}
                for _, e in ipairs(list) do
                    local v, count = e[1], e[2]
                    for _ = 1, count do
                        values[#values + 1] = type(v) == "function" and
                                              v(ctx, d) or v
                    end
                end
                local p = types.properties[pid]
                local total
                if p.combine then
                    total = p.combine(values)
                else
                    total = 0
                    for _, v in ipairs(values) do
                        total = total + v
                    end
                end
                done[#done + 1] = {
                    id = pid, name = p.name, number = total,
                    value = p.display and p.display(total) or tostring(total),
                }
            end
            j = j + 1
        end
        for _, pv in ipairs(done) do
            props[#props + 1] = pv
        end
        i = j
    end
    table.sort(props, function(a, b) return a.id < b.id end)
    d.valid, d.feedback = true, ""
    local seen, ids, why_list, why_seen = {}, {}, {}, {}
    for _, c in ipairs(d.components or {}) do
        if not seen[c.id] then
            seen[c.id] = true
            ids[#ids + 1] = c.id
        end
    end
    table.sort(ids)
    for _, id in ipairs(ids) do
        local comp = types.components[id]
        local ok, why = true, nil
        if not comp then
            ok, why = false, "no such component " .. id
        elseif comp.requirements then
            ok, why = comp.requirements(ctx, d)
            why = why or "requirements not met"
        end
        if not ok then
            d.valid = false
            if not why_seen[why] then
                why_seen[why] = true
                why_list[#why_list + 1] = why
            end
        end
    end
    if d.valid then
        d.feedback = "Design is valid"
    else
        d.feedback = table.concat(why_list, "; ")
    end
    d.inuse = d.inuse or 0
    model.design_changed(d)
    return d
end

return M
