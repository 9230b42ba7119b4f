-- Board frames: boards and their ID list, and the messages on them
-- (GetMessage, PostMessage, RemoveMessage). Board 0 is the asking
-- player's personal board; tp.views decides who may read and post.

local accounts = require "tp.accounts"
local common = require "tp.handlers.common"
local game = require "tp.game"
local model = require "tp.model"
local proto = require "tp.proto"
local views = require "tp.views"

local handler, per_id = common.handler, common.per_id
local raise, no_such = common.raise, common.no_such

local M = {}

M.GetBoardIDs = common.id_list("BoardIDs", function(conn)
    return common.visible_list(model.boards, views.board_readable,
                               conn.player)
end)

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
    return per_id(conn, req, req.ids, function(id)
        return views.board_frame(readable_board(conn, id))
    end)
end)

-- The board is looked up again for each slot, as GetOrder's queue.
M.GetMessage = handler(function(conn, req)
    local b = readable_board(conn, req.id)
    local slots = req.slots
    if #slots == 0 then
        slots = {}
        for i = 1, #b.msgs do
            slots[i] = i - 1
        end
    end
    return per_id(conn, req, slots, function(slot)
        b = readable_board(conn, req.id)
        local m = slot >= 0 and model.message(b, slot)
        if not m then
            raise("NoSuchThing", string.format("no message in slot %d "
                  .. "of board %d", slot, b.id),
                  { { type = 4, id = b.id }, { type = 5, id = slot } })
        end
        return views.message_frame(b, slot, m)
    end)
end)

-- Messages a player may post to other players' boards: a bucket of
-- POST_BURST that refills by one every POST_EVERY seconds.
local POST_BURST, POST_EVERY = 10, 6
local post_tokens = {}      -- player id -> { tokens, at }

local function take_post_token(player)
    local now = require("tp.core").now()
    local t = post_tokens[player] or { tokens = POST_BURST, at = now }
    t.tokens = math.min(POST_BURST, t.tokens + (now - t.at) / POST_EVERY)
    t.at = now
    post_tokens[player] = t
    if t.tokens < 1 then
        return false, math.ceil((1 - t.tokens) * POST_EVERY)
    end
    t.tokens = t.tokens - 1
    return true
end

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
    local subject, slot = req.subject, req.slot
    if b.owner ~= conn.player and b.owner ~= 0 then
        -- Into someone else's board: at its end, with who sent it, and
        -- not faster than the bucket allows.
        local ok, wait = take_post_token(conn.player)
        if not ok then
            raise("UnavailableTemporarily", string.format("you are posting "
                  .. "to other players too fast; try again in %d s", wait))
        end
        local sender = accounts.player(conn.player)
        subject = string.format("[from %s] %s",
                                sender and sender.name or "?", subject)
        refs[1] = { type = 7, id = conn.player }
        slot = -1
    end
    for _, r in ipairs(req.references) do
        refs[#refs + 1] = { type = r.type, id = r.id }
    end
    model.post(b, { subject = subject, body = req.body,
                    turn = game.turn_number(), references = refs,
                    from = conn.player }, slot)
    return proto.okay("Message posted")
end)

M.RemoveMessage = handler(function(conn, req)
    local b = readable_board(conn, req.id)
    local out = { proto.sequence(#req.slots) }
    for _, slot in ipairs(req.slots) do
        if slot >= 0 and model.remove_message(b, slot) then
            out[#out + 1] = proto.okay("Message removed")
        else
            out[#out + 1] = common.item_fail("NoSuchThing",
                string.format("no message in slot %d of board %d", slot,
                              b.id),
                { { type = 4, id = b.id }, { type = 5, id = slot } })
        end
    end
    return out
end)

M.handlers = common.collect(M)

return M
