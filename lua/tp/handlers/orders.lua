-- Order frames: order descriptions, order queues and their ID lists,
-- orders (GetOrder, OrderInsert, OrderProbe, RemoveOrder). A player
-- reaches only the queues they own (tp.views); the ruleset's order hooks
-- check, follow and estimate the orders.

local common = require "tp.handlers.common"
local game = require "tp.game"
local model = require "tp.model"
local proto = require "tp.proto"
local types = require "tp.types"
local views = require "tp.views"

local handler, per_id = common.handler, common.per_id
local raise, no_such = common.raise, common.no_such

local M = {}

M.GetOrderDescIDs = common.id_list("OrderDescIDs", function(conn)
    local out = {}
    for _, e in ipairs(common.static_list(types.orders)) do
        if views.order_type_shown(conn, types.orders[e.id]) then
            out[#out + 1] = e
        end
    end
    return out
end)

M.GetOrderQueueIDs = common.id_list("OrderQueueIDs", function(conn)
    return common.visible_list(model.queues, views.owns_queue, conn.player)
end)

local function owned_queue(conn, id)
    local q = model.queues[id]
    if not q or not views.owns_queue(conn.player, q) then
        raise("NoSuchThing", string.format("no such order queue %d "
              .. "(or it is not yours)", id), { { type = 13, id = id } })
    end
    return q, model.objects[q.object]
end

M.GetOrderDesc = handler(function(conn, req)
    return per_id(conn, req, req.ids, function(id)
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
    return per_id(conn, req, req.ids, function(id)
        local q = owned_queue(conn, id)
        return views.order_queue_frame(q)
    end)
end)

-- The queue is looked up again for each slot: a reply made in parts sees
-- the queue as it is when the slot's part is made.
M.GetOrder = handler(function(conn, req)
    local q = owned_queue(conn, req.id)
    local slots = req.slots
    if #slots == 0 then
        slots = {}
        for i = 1, #q.orders do
            slots[i] = i - 1
        end
    end
    return per_id(conn, req, slots, function(slot)
        local obj
        q, obj = owned_queue(conn, req.id)
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
        -- The ruleset may say why (a phase, a combat turn): the order
        -- type's why_not(ctx, obj, player_id) -> text.
        local why = ot.why_not and ot.why_not(game.ctx(), obj, conn.player)
        raise(probe and "UnavailablePermanently" or
              "UnavailableTemporarily",
              string.format("order type %d (%s) cannot be given to "
              .. "object %d%s", ot.id, ot.name, obj.id,
              type(why) == "string" and why ~= "" and ": " .. why or ""),
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
            out[#out + 1] = common.item_fail("NoSuchThing",
                string.format("no order in slot %d of queue %d", slot, q.id),
                { { type = 13, id = q.id }, { type = 3, id = slot } })
        end
    end
    return out
end)

M.handlers = common.collect(M)

return M
