-- tp.params: the value layouts of object parameters (objectParam*) and
-- order parameters (orderParam*), from protocol.xml (TP04) and
-- protocol3.xml (TP03), with the decisions of PROTOCOL.md 9 and 10.
--
-- A ruleset names parameter types by these names; the server builds the
-- layout of an object's or an order's variable part from them, in
-- description order, and codes it with tp.codec.

local codec = require "tp.codec"

local M = {}

-- Object parameter types (PROTOCOL.md 10.2).
M.object = {
    position = { id = 0, layout = "q:x q:y q:z I:relative" },
    velocity = { id = 1, layout = "q:x q:y q:z I:relative" },
    acceleration = { id = 2, layout = "q:x q:y q:z I:relative" },
    bound_position = { id = 3, layout = "i:slot" },
    order_queue = { id = 4, layout = "I:queueid" },
    resource_list = { id = 5,
        layout = "[I:resource I:stored I:minable I:unavailable]:resources" },
    reference = { id = 6, layout = "i:reftype I:id", writable = true },
    reference_quantity_list = { id = 7,
        layout = "[i:reftype I:id I:count]:references", writable = true },
    integer = { id = 8, layout = "I:value", writable = true },
    size = { id = 9, layout = "Q:size" },
    media = { id = 10, layout = "S:url" },
}

-- Order parameter types (PROTOCOL.md 9). tp03 = false: not in TP03.
-- idonly: the layout for TP03 and libtpproto-cpp (orderParamObject).
M.order = {
    abs_coords = { id = 0, layout = "q:x q:y q:z" },
    time = { id = 1, layout = "i:turns i:maxtime" },
    object = { id = 2, layout = "I:objectid ? [I]:validtypes",
               idonly = "I:objectid" },
    player = { id = 3, layout = "I:playerid I:mask" },
    rel_coords = { id = 4, layout = "I:objectid q:x q:y q:z" },
    range = { id = 5, layout = "i:value i:minvalue i:maxvalue i:increment" },
    list = { id = 6, layout = "[I:id S:name I:maxnum]:possibleselections " ..
                              "[I:id I:number]:selection" },
    string = { id = 7, layout = "I:maxlength S:string" },
    reference = { id = 8, layout = "I:reference [I]:allowed" },
    reference_list = { id = 9, layout = "[I]:references [I]:allowed" },
    resource_list = { id = 10, tp03 = false,
        layout = "[I:resourcetype I:max]:allowed I:maxmass I:maxvolume " ..
                 "[I:resourcetype I:quantity]:selected" },
    generic_reference_quantity_list = { id = 11, tp03 = false,
        layout = "[I:max [i:reftype I:refid]:reflist]:weightmaximums " ..
                 "[I:optionid S:name j:max [i:reftype I:refid]:reflist " ..
                 "[I]:weights]:possibles [I:id I:number]:selection" },
}

-- Reverse maps: id -> name.
M.object_name = {}
for name, p in pairs(M.object) do
    M.object_name[p.id] = name
end
M.order_name = {}
for name, p in pairs(M.order) do
    M.order_name[p.id] = name
end

-- Builds the layout of a list of parameters: each parameter's value is a
-- table under key "p<i>" (i = position in the list).
-- kinds: M.object or M.order; form: nil, or "idonly" for orderParamObject
-- as TP03 and libtpproto-cpp code it. Returns a compiled layout.
function M.build(kinds, params, form)
    local parts = {}
    for i, p in ipairs(params) do
        local kind = kinds[p.type]
        assert(kind, "unknown parameter type " .. tostring(p.type))
        local layout = kind.layout
        if form == "idonly" and kind.idonly then
            layout = kind.idonly
        end
        -- '?' is only meaningful for the last parameter of a frame.
        if i < #params then
            layout = layout:gsub("%? ", "")
        end
        parts[#parts + 1] = "{" .. layout .. "}:p" .. i
    end
    return codec.compile(table.concat(parts, " "))
end

return M
