-- tp.designs: computing a design's properties from its components.
--
-- This replaces tpserver-cpp's TPCL (Scheme) with plain Lua. For each
-- property (ascending id), every component of the design that defines it
-- contributes count x value, where value is a number or a function
-- (ctx, design) -> number; the property's total is the sum (or the
-- property's own combine(values) function). A property no component
-- defines is absent. Each property's display(total) gives the text clients
-- see. Then every component's requirements(ctx, design) may refuse the
-- design: (false, "why") makes it invalid, with that feedback.

local types = require "tp.types"
local model = require "tp.model"

local M = {}

-- Fills d.properties = { { id, name, number, value } }, d.valid and
-- d.feedback. Marks the design changed.
function M.evaluate(ctx, d)
    local values = {}      -- property id -> list of contributions
    for _, c in ipairs(d.components or {}) do
        local comp = types.components[c.id]
        if comp then
            for pname, v in pairs(comp.properties or {}) do
                local p = types.property_by_name[pname]
                local list = values[p.id] or {}
                for _ = 1, c.count do
                    list[#list + 1] = type(v) == "function" and v(ctx, d) or v
                end
                values[p.id] = list
            end
        end
    end
    local props = {}
    for _, pid in ipairs(types.ids(types.properties)) do
        local list = values[pid]
        if list then
            local p = types.properties[pid]
            local total
            if p.combine then
                total = p.combine(list)
            else
                total = 0
                for _, v in ipairs(list) do
                    total = total + v
                end
            end
            props[#props + 1] = {
                id = pid, name = p.name, number = total,
                value = p.display and p.display(total) or tostring(total),
            }
        end
    end
    d.properties = props
    d.valid, d.feedback = true, ""
    for _, c in ipairs(d.components or {}) do
        local comp = types.components[c.id]
        if not comp then
            d.valid, d.feedback = false, "no such component " .. c.id
            break
        end
        if comp.requirements then
            local ok, why = comp.requirements(ctx, d)
            if not ok then
                d.valid, d.feedback = false, why or "requirements not met"
                break
            end
        end
    end
    if d.valid and d.feedback == "" then
        d.feedback = "Design is valid"
    end
    d.inuse = d.inuse or 0
    model.design_changed(d)
    return d
end

return M
