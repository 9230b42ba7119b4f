-- Design frames: categories, components and properties (the ruleset's
-- static data) and designs, with their ID lists; AddDesign, ModifyDesign
-- and RemoveDesign through the ruleset's hooks. Players see their own
-- designs and published ones (tp.views) and change only their own.

local common = require "tp.handlers.common"
local designs = require "tp.designs"
local game = require "tp.game"
local model = require "tp.model"
local proto = require "tp.proto"
local types = require "tp.types"
local views = require "tp.views"

local handler, per_id = common.handler, common.per_id
local raise, no_such = common.raise, common.no_such

local M = {}

M.GetCategoryIDs = common.id_list("CategoryIDs", function()
    return common.static_list(types.categories)
end)
M.GetComponentIDs = common.id_list("ComponentIDs", function()
    return common.static_list(types.components)
end)
M.GetPropertyIDs = common.id_list("PropertyIDs", function()
    return common.static_list(types.properties)
end)
M.GetDesignIDs = common.id_list("DesignIDs", function(conn)
    return common.visible_list(model.designs, views.design_visible,
                               conn.player)
end)

M.GetCategory = common.static_getter(function() return types.categories end,
                                     "category", 8, views.category_frame)
M.GetComponent = common.static_getter(function() return types.components end,
                                      "component", 10, views.component_frame)
M.GetProperty = common.static_getter(function() return types.properties end,
                                     "property", 11, views.property_frame)

M.GetDesign = handler(function(conn, req)
    return per_id(conn, req, req.ids, function(id)
        local d = model.designs[id]
        if id < 0 or not views.design_visible(conn.player, d) then
            no_such("design", id, 9)
        end
        return views.design_frame(d)
    end)
end)

-- Categories are the ruleset's: players cannot add or remove them
-- (Fail 2, as tpserver-cpp; PROTOCOL.md 7.1, 7.9).
local function refuse_design(what)
    return handler(function()
        local rs = game.ruleset()
        raise("UnavailablePermanently", string.format("players "
              .. "cannot %s in %s", what, rs.name))
    end)
end

M.AddCategory = refuse_design("add categories")
M.RemoveCategory = refuse_design("remove categories")

-- A design the player may change, or Fail(4): designs they cannot see
-- do not exist for them; published designs of others are read-only.
local function own_design(conn, id)
    local d = id >= 0 and model.designs[id] or nil
    if not views.design_visible(conn.player, d) then
        no_such("design", id, 9)
    end
    if not views.owns_design(conn.player, d) then
        raise("NoSuchThing", string.format("design %d is not yours: "
              .. "only its owner may change or remove it", id),
              { { type = 9, id = id } })
    end
    return d
end

-- AddDesign / ModifyDesign: the ruleset's add_design(ctx, player, t) or
-- modify_design(ctx, player, t) (t: id, name, description, categories,
-- components) returns the design, or nil/false, why. The server then
-- recomputes its properties and feedback.
local function design_change(kind)
    return handler(function(conn, req)
        local rs = game.ruleset()
        local hook = rs[kind .. "_design"]
        if not hook then
            raise("UnavailablePermanently", string.format("players "
                  .. "cannot %s designs in %s", kind, rs.name))
        end
        if kind ~= "add" then
            own_design(conn, req.id)
        end
        for _, c in ipairs(req.categories) do
            if not types.categories[c] then
                no_such("category", c, 8)
            end
        end
        for _, c in ipairs(req.components) do
            if not types.components[c.id] then
                no_such("component", c.id, 10)
            end
        end
        local d, why = hook(game.ctx(), conn.player, {
            id = req.id, name = req.name, description = req.description,
            categories = req.categories, components = req.components })
        if not d then
            raise("Frame", string.format("design not %s: %s", kind ==
                  "add" and "added" or "changed",
                  why or "refused by the ruleset"),
                  kind ~= "add" and { { type = 9, id = req.id } } or nil)
        end
        designs.evaluate(game.ctx(), d)
        return views.design_frame(d)
    end)
end

M.AddDesign = design_change("add")
M.ModifyDesign = design_change("modify")

-- RemoveDesign: one Okay when every design is removed, else one Fail
-- naming every design that could not be, and nothing removed. The
-- ruleset's remove_design(ctx, player, design) may refuse (false, why);
-- otherwise the server removes the design.
M.RemoveDesign = handler(function(conn, req)
    local rs = game.ruleset()
    if not rs.remove_design then
        raise("UnavailablePermanently", "players cannot remove designs "
              .. "in " .. rs.name)
    end
    local bad, refs = {}, {}
    for _, id in ipairs(req.ids) do
        local ok, e = pcall(own_design, conn, id)
        if not ok and not (type(e) == "table" and e.tp_fail) then
            error(e, 0)
        end
        if not ok then
            bad[#bad + 1] = tostring(id)
            refs[#refs + 1] = { type = 9, id = id }
        end
    end
    if #bad > 0 then
        raise("NoSuchThing", string.format("no design%s %s of yours to "
              .. "remove; nothing removed", #bad > 1 and "s" or "",
              table.concat(bad, ", ")), refs)
    end
    for _, id in ipairs(req.ids) do
        local d = model.designs[id]
        if d then
            local ok, why = rs.remove_design(game.ctx(), conn.player, d)
            if ok == false then
                raise("Frame", string.format("design %d not removed: "
                      .. "%s; nothing removed", id,
                      why or "refused by the ruleset"),
                      { { type = 9, id = id } })
            end
            if model.designs[id] then
                model.remove_design(d)
            end
        end
    end
    return proto.okay("Designs removed")
end)

M.handlers = common.collect(M)

return M
