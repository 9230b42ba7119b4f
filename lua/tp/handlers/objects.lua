-- Object frames: objects by id, position and container, their ID lists,
-- object descriptions and ModifyObject. Each reply is built for the
-- player asking, through tp.views; changes go through tp.model and are in
-- the database before the answer leaves (the dispatcher commits).

local codec = require "tp.codec"
local common = require "tp.handlers.common"
local game = require "tp.game"
local model = require "tp.model"
local params = require "tp.params"
local proto = require "tp.proto"
local types = require "tp.types"
local views = require "tp.views"

local handler, per_id = common.handler, common.per_id
local raise, no_such = common.raise, common.no_such

local M = {}

M.GetObjectIDs = common.id_list("ObjectIDs", function(conn, from)
    local out = {}
    local ids = model.object_ids()
    if from >= 0 then
        for id in pairs(model.gone) do
            ids[#ids + 1] = id
        end
        table.sort(ids)
    end
    for _, id in ipairs(ids) do
        local o = model.objects[id]
        if o then
            if views.can_see(conn.player, o) then
                out[#out + 1] = { id = id, modtime = o.modtime }
            end
        elseif views.saw_go(conn.player, id) then
            out[#out + 1] = { id = id, modtime = model.gone[id] }
        end
    end
    return out
end)

M.GetObjectDescIDs = common.id_list("ObjectDescIDs", function()
    return common.static_list(types.objects)
end)

-- The frame of object id as conn's player sees it (Fail when it does not
-- exist for them, or no longer does: per_id calls it as the id's part of
-- the reply is made).
local function object_frame(conn, id, player)
    local o = id >= 0 and views.object(player or conn.player, id)
    if not o then
        no_such("object", id, 1)
    end
    return views.object_frame(conn, o)
end

M.GetObjectsByID = handler(function(conn, req)
    local player = conn.player     -- set once, at login
    return per_id(conn, req, req.ids, function(id)
        return object_frame(conn, id, player)
    end)
end)

-- Objects take part in position queries when their type has both a
-- position and a size parameter (PROTOCOL.md 7.4, as tpserver-cpp).
local function positioned(o)
    local ot = types.objects[o.type]
    local has_pos, has_size = false, false
    for _, p in ipairs(ot and ot.flat or {}) do
        has_pos = has_pos or p.type == "position"
        has_size = has_size or p.type == "size"
    end
    return has_pos and has_size
end

local function within(o, pos, r)
    local dx, dy, dz = o.pos.x - pos.x, o.pos.y - pos.y, o.pos.z - pos.z
    local d = math.sqrt(dx * dx + dy * dy + dz * dz)
    return d <= r + (o.size or 0) / 2
end

local function objects_at(conn, pos, r)
    local out = {}
    for _, id in ipairs(model.object_ids()) do
        local o = model.objects[id]
        if views.can_see(conn.player, o) and positioned(o) and
           within(o, pos, r) then
            out[#out + 1] = o
        end
    end
    return out
end

-- Answered like GetObjectsByID with the ids found, in parts: an object
-- gone before its part is made gets Fail(4).
M.GetObjectsByPos = handler(function(conn, req)
    local ids = {}
    for i, o in ipairs(objects_at(conn, req.pos, req.r)) do
        ids[i] = o.id
    end
    return per_id(conn, req, ids, function(id)
        return object_frame(conn, id)
    end)
end)

local function id_list_frame(list)
    local mods = {}
    for _, o in ipairs(list) do
        mods[#mods + 1] = { id = o.id, modtime = o.modtime }
    end
    return proto.frame("ObjectIDs", { key = 0, remaining = 0,
                                      modtimes = mods, from = -1 })
end

M.GetObjectIDsByPos = handler(function(conn, req)
    return id_list_frame(objects_at(conn, req.pos, req.r))
end)

M.GetObjectIDsByContainer = handler(function(conn, req)
    local o = views.object(conn.player, req.id)
    if not o then
        no_such("object", req.id, 1)
    end
    local list = {}
    for _, c in ipairs(o.children) do
        local child = views.object(conn.player, c)
        if child then
            list[#list + 1] = child
        end
    end
    return id_list_frame(list)
end)

M.GetObjectDesc = handler(function(conn, req)
    return per_id(conn, req, req.ids, function(id)
        local ot = types.objects[id]
        if not ot then
            no_such("object type", id, 12)
        end
        return views.object_desc_frame(ot)
    end)
end)

-- The hook gets the name, the description and the writable parameter
-- values (by parameter name); it changes obj, or returns false, why.
M.ModifyObject = handler(function(conn, req)
    local rs = game.ruleset()
    local o = views.object(conn.player, req.id)
    if not o then
        no_such("object", req.id, 1)
    end
    if not rs.modify_object then
        raise("UnavailablePermanently", rs.name ..
              " does not let players modify objects",
              { { type = 1, id = req.id } })
    end
    if not views.owns_object(conn.player, o) then
        raise("NoSuchThing", string.format("object %d is not yours: "
              .. "only its owner may modify it", o.id),
              { { type = 1, id = o.id } })
    end
    local ot = types.objects[o.type]
    local values, err = codec.decode(ot.layout, req.params, conn.padding)
    if not values then
        raise("Frame", string.format("parameters of object %d (%s) do "
              .. "not decode: %s", o.id, ot.name, err),
              { { type = 1, id = o.id } })
    end
    local changes = { name = req.name, desc = req.desc, params = {} }
    for i, p in ipairs(ot.flat) do
        if params.object[p.type].writable then
            changes.params[p.name] = values["p" .. i]
        end
    end
    local ok, why = rs.modify_object(game.ctx(), conn.player, o, changes)
    if ok == false then
        raise("Frame", string.format("object %d not changed: %s", o.id,
              why or "refused by the ruleset"),
              { { type = 1, id = o.id } })
    end
    model.changed(o)
    return views.object_frame(conn, o)
end)

M.handlers = common.collect(M)

return M
