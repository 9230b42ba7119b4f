-- Game frames (PROTOCOL.md 6-9): objects, descriptions, orders and order
-- queues, boards and messages, resources, players, categories, designs,
-- components and properties, and every ID list. Each reply is built for the
-- player asking, through tp.views; changes go through tp.model and are in
-- the database before the answer leaves (the dispatcher commits).

local codec = require "tp.codec"
local designs = require "tp.designs"
local fail = require "tp.fail"
local game = require "tp.game"
local idseq = require "tp.idseq"
local model = require "tp.model"
local params = require "tp.params"
local proto = require "tp.proto"
local types = require "tp.types"
local views = require "tp.views"
local accounts = require "tp.accounts"

local M = {}

local READY = { READY = true }

-- References name ids as the client sent them: a semisigned -1 is the
-- u32 0xFFFFFFFF on the wire (PROTOCOL.md 2.1, 2.4).
local function wire_refs(refs)
    if refs then
        for _, r in ipairs(refs) do
            r.id = r.id % 4294967296
        end
    end
    return refs
end

local function raise(code, message, refs)
    fail.raise(code, message, wire_refs(refs))
end

local function item_fail(code, message, refs)
    return proto.fail(code, message, wire_refs(refs))
end

local function handler(fn)
    return { states = READY, fn = fn }
end

-- Sequence + one frame (or Fail) per id, in request order.
local function per_id(ids, fn)
    local out = { proto.sequence(#ids) }
    for _, id in ipairs(ids) do
        local ok, frame = pcall(fn, id)
        if not ok then
            if type(frame) == "table" and frame.tp_fail then
                frame = item_fail(frame.code, frame.message, frame.refs)
            else
                error(frame, 0)
            end
        end
        out[#out + 1] = frame
    end
    return out
end

local function no_such(what, id, reftype)
    raise("NoSuchThing", string.format("no such %s %d", what, id),
          reftype and { { type = reftype, id = id } } or nil)
end

-- ------------------------------------------------------------ ID lists

-- The entries { id, modtime } of one list kind as the player sees them,
-- in ascending id order (LISTS); with from >= 0, id_sequence keeps only
-- those changed after it, removed objects included (PROTOCOL.md 8.4).
local function static_list(registry)
    local out = {}
    for _, id in ipairs(types.ids(registry)) do
        local e = registry[id]
        out[#out + 1] = { id = id, modtime = e.modtime or types.modtime }
    end
    return out
end

-- The entries of a model registry that may_see(player, entry) allows.
local function visible_list(registry, may_see, player)
    local out = {}
    for _, id in ipairs(types.ids(registry)) do
        local e = registry[id]
        if may_see(player, e) then
            out[#out + 1] = { id = id, modtime = e.modtime }
        end
    end
    return out
end

local LISTS = {
    GetObjectIDs = function(conn, from)
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
    end,
    GetOrderDescIDs = function(conn)
        local out = {}
        for _, e in ipairs(static_list(types.orders)) do
            if views.order_type_shown(conn, types.orders[e.id]) then
                out[#out + 1] = e
            end
        end
        return out
    end,
    GetObjectDescIDs = function() return static_list(types.objects) end,
    GetResourceIDs = function() return static_list(types.resources) end,
    GetCategoryIDs = function() return static_list(types.categories) end,
    GetComponentIDs = function() return static_list(types.components) end,
    GetPropertyIDs = function() return static_list(types.properties) end,
    GetBoardIDs = function(conn)
        return visible_list(model.boards, views.board_readable, conn.player)
    end,
    GetDesignIDs = function(conn)
        return visible_list(model.designs, views.design_visible, conn.player)
    end,
    GetPlayerIDs = function()
        local out = {}
        for _, p in ipairs(accounts.players()) do
            out[#out + 1] = { id = p.id, modtime = p.modtime or p.created }
        end
        return out
    end,
    GetOrderQueueIDs = function(conn)
        return visible_list(model.queues, views.owns_queue, conn.player)
    end,
}

local REPLY_OF = {
    GetObjectIDs = "ObjectIDs", GetOrderDescIDs = "OrderDescIDs",
    GetBoardIDs = "BoardIDs", GetResourceIDs = "ResourceIDs",
    GetCategoryIDs = "CategoryIDs", GetDesignIDs = "DesignIDs",
    GetComponentIDs = "ComponentIDs", GetPropertyIDs = "PropertyIDs",
    GetObjectDescIDs = "ObjectDescIDs", GetPlayerIDs = "PlayerIDs",
    GetOrderQueueIDs = "OrderQueueIDs",
}

-- One snapshot per list kind per connection (PROTOCOL.md 8.3).
local function id_sequence(conn, req)
    return idseq.answer(conn, req._name, req, REPLY_OF[req._name],
                        LISTS[req._name])
end

for name in pairs(LISTS) do
    M[name] = handler(id_sequence)
end

-- ------------------------------------------------------------ objects

M.GetObjectsByID = handler(function(conn, req)
    return per_id(req.ids, function(id)
        local o = id >= 0 and views.object(conn.player, id)
        if not o then
            no_such("object", id, 1)
        end
        return views.object_frame(conn, o)
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

M.GetObjectsByPos = handler(function(conn, req)
    local list = objects_at(conn, req.pos, req.r)
    local out = { proto.sequence(#list) }
    for _, o in ipairs(list) do
        out[#out + 1] = views.object_frame(conn, o)
    end
    return out
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
    return per_id(req.ids, function(id)
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

-- ------------------------------------------------------------ orders

local function owned_queue(conn, id)
    local q = model.queues[id]
    if not q or not views.owns_queue(conn.player, q) then
        raise("NoSuchThing", string.format("no such order queue %d "
              .. "(or it is not yours)", id), { { type = 13, id = id } })
    end
    return q, model.objects[q.object]
end

M.GetOrderDesc = handler(function(conn, req)
    return per_id(req.ids, function(id)
        local ot = types.orders[id]
        if not ot then
            no_such("order type", id, 2)
        end
        if not views.order_type_shown(conn, ot) then
            raise("UnavailablePermanently", string.format("order type "
                  .. "%d (%s) has parameters TP03 cannot carry", id,
                  ot.name), { { type = 2, id = id } })
        end
        return views.order_desc_frame(ot)
    end)
end)

M.GetOrderQueue = handler(function(conn, req)
    return per_id(req.ids, function(id)
        local q = owned_queue(conn, id)
        return views.order_queue_frame(q)
    end)
end)

M.GetOrder = handler(function(conn, req)
    local q, obj = owned_queue(conn, req.id)
    local slots = req.slots
    if #slots == 0 then
        slots = {}
        for i = 1, #q.orders do
            slots[i] = i - 1
        end
    end
    return per_id(slots, function(slot)
        local order = slot >= 0 and q.orders[slot + 1]
        if not order then
            raise("NoSuchThing", string.format("no order in slot %d of "
                  .. "queue %d", slot, q.id),
                  { { type = 13, id = q.id }, { type = 3, id = slot } })
        end
        if not views.order_type_shown(conn, types.orders[order.type]) then
            raise("UnavailablePermanently", string.format("the order "
                  .. "in slot %d of queue %d has parameters TP03 "
                  .. "cannot carry", slot, q.id),
                  { { type = 13, id = q.id }, { type = 3, id = slot } })
        end
        return views.order_frame(conn, obj, order, slot, q)
    end)
end)

-- Builds the order a client sent (OrderInsert, OrderProbe), checked.
local function client_order(conn, req, probe)
    local q, obj = owned_queue(conn, req.id)
    local ot = types.orders[req.otype]
    if not ot then
        no_such("order type", req.otype, 2)
    end
    if not views.order_type_shown(conn, ot) then
        raise("UnavailablePermanently", string.format("order type %d "
              .. "(%s) cannot be given over TP03", ot.id, ot.name),
              { { type = 2, id = ot.id } })
    end
    local allowed = false
    for _, t in ipairs(q.allowed) do
        allowed = allowed or t == ot.id
    end
    if not allowed then
        raise(probe and "UnavailablePermanently" or
              "UnavailableTemporarily",
              string.format("order type %d (%s) cannot be given to "
              .. "object %d", ot.id, ot.name, obj.id),
              { { type = 2, id = ot.id }, { type = 1, id = obj.id } })
    end
    local values, err = views.decode_order_params(conn, ot, req.params)
    if not values then
        raise("Frame", string.format("parameters of order type %d (%s) "
              .. "do not decode: %s", ot.id, ot.name, err),
              { { type = 2, id = ot.id } })
    end
    local order = { type = ot.id, params = values }
    if ot.check then
        local ok, msg = ot.check(game.ctx(), obj, order, conn.player)
        if ok == false then
            raise("Frame", string.format("order type %d (%s) not "
                  .. "accepted for object %d: %s", ot.id, ot.name,
                  obj.id, msg or "refused by the ruleset"),
                  { { type = 2, id = ot.id }, { type = 1, id = obj.id } })
        end
    end
    return q, obj, order, ot
end

local function check_slot(q, slot)
    if slot == -1 then
        return #q.orders
    end
    if slot < 0 or slot > #q.orders then
        raise("NoSuchThing", string.format("slot %d is not in queue "
              .. "%d (%d orders)", slot, q.id, #q.orders),
              { { type = 13, id = q.id }, { type = 3, id = slot } })
    end
    return slot
end

M.OrderInsert = handler(function(conn, req)
    local q, obj, order, ot = client_order(conn, req, false)
    local slot = check_slot(q, req.slot)
    table.insert(q.orders, slot + 1, order)
    if ot.inserted then
        ot.inserted(game.ctx(), obj, order, conn.player)
    end
    model.queue_changed(q)
    if conn.version == 3 then
        return proto.okay("Order added")
    end
    return views.order_frame(conn, obj, order, slot, q)
end)

-- A probe changes nothing: whatever a ruleset hook changed while the
-- answer was built is thrown away.
M.OrderProbe = handler(function(conn, req)
    local q, obj, order = client_order(conn, req, true)
    local slot = check_slot(q, req.slot)
    local frame = views.order_frame(conn, obj, order, slot, q)
    if model.is_dirty() then
        model.undo()
    end
    return frame
end)

M.RemoveOrder = handler(function(conn, req)
    local q = owned_queue(conn, req.id)
    local out = { proto.sequence(#req.slots) }
    for _, slot in ipairs(req.slots) do
        if slot >= 0 and q.orders[slot + 1] then
            local order = table.remove(q.orders, slot + 1)
            local ot = types.orders[order.type]
            if ot.removed then
                ot.removed(game.ctx(), model.objects[q.object], order)
            end
            model.queue_changed(q)
            out[#out + 1] = proto.okay("Order removed")
        else
            out[#out + 1] = item_fail("NoSuchThing",
                string.format("no order in slot %d of queue %d", slot, q.id),
                { { type = 13, id = q.id }, { type = 3, id = slot } })
        end
    end
    return out
end)

-- ------------------------------------------------------------ boards

local function own_board_id(conn)
    local p = accounts.player(conn.player)
    return p and p.board or 0
end

local function readable_board(conn, id)
    if id == 0 then
        id = own_board_id(conn)
    end
    local b = model.boards[id]
    if not views.board_readable(conn.player, b) then
        no_such("board", id, 4)
    end
    return b
end

M.GetBoards = handler(function(conn, req)
    return per_id(req.ids, function(id)
        return views.board_frame(readable_board(conn, id))
    end)
end)

M.GetMessage = handler(function(conn, req)
    local b = readable_board(conn, req.id)
    local slots = req.slots
    if #slots == 0 then
        slots = {}
        for i = 1, #b.msgs do
            slots[i] = i - 1
        end
    end
    return per_id(slots, function(slot)
        local m = slot >= 0 and model.message(b, slot)
        if not m then
            raise("NoSuchThing", string.format("no message in slot %d "
                  .. "of board %d", slot, b.id),
                  { { type = 4, id = b.id }, { type = 5, id = slot } })
        end
        return views.message_frame(b, slot, m)
    end)
end)

M.PostMessage = handler(function(conn, req)
    local id = req.id == 0 and own_board_id(conn) or req.id
    local b = model.boards[id]
    if not views.board_postable(conn.player, b) then
        no_such("board", id, 4)
    end
    if req.slot < -1 or req.slot > #b.msgs then
        raise("NoSuchThing", string.format("slot %d is not on board %d",
              req.slot, b.id), { { type = 4, id = b.id } })
    end
    local refs = {}
    for _, r in ipairs(req.references) do
        refs[#refs + 1] = { type = r.type, id = r.id }
    end
    model.post(b, { subject = req.subject, body = req.body,
                    turn = game.turn_number(), references = refs,
                    from = conn.player }, req.slot)
    return proto.okay("Message posted")
end)

M.RemoveMessage = handler(function(conn, req)
    local b = readable_board(conn, req.id)
    local out = { proto.sequence(#req.slots) }
    for _, slot in ipairs(req.slots) do
        if slot >= 0 and model.remove_message(b, slot) then
            out[#out + 1] = proto.okay("Message removed")
        else
            out[#out + 1] = item_fail("NoSuchThing",
                string.format("no message in slot %d of board %d", slot,
                              b.id),
                { { type = 4, id = b.id }, { type = 5, id = slot } })
        end
    end
    return out
end)

-- ------------------------------------------------------------ static data

local function static_getter(registry, what, reftype, frame)
    return handler(function(conn, req)
        return per_id(req.ids, function(id)
            local e = registry()[id]
            if not e then
                no_such(what, id, reftype)
            end
            return frame(e)
        end)
    end)
end

M.GetResource = static_getter(function() return types.resources end,
                              "resource", 6, views.resource_frame)
M.GetCategory = static_getter(function() return types.categories end,
                              "category", 8, views.category_frame)
M.GetComponent = static_getter(function() return types.components end,
                               "component", 10, views.component_frame)
M.GetProperty = static_getter(function() return types.properties end,
                              "property", 11, views.property_frame)

M.GetPlayer = handler(function(conn, req)
    return per_id(req.ids, function(id)
        local p = accounts.player(id == 0 and conn.player or id)
        if id < 0 or not p then
            no_such("player", id, 7)
        end
        return views.player_frame(p)
    end)
end)

M.GetDesign = handler(function(conn, req)
    return per_id(req.ids, function(id)
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

M.handlers = {}
for k, v in pairs(M) do
    if type(v) == "table" and v.fn then
        M.handlers[k] = v
    end
end

return M
