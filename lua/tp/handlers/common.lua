-- tp.handlers.common: what the game frame handlers (tp.handlers.*) and the
-- admin protocol share: refusing with references as the client sent them,
-- answering a list of ids item by item, ID lists and the lookups of static
-- data.

local dispatch = require "tp.dispatch"
local fail = require "tp.fail"
local idseq = require "tp.idseq"
local proto = require "tp.proto"
local types = require "tp.types"

local M = {}

local READY = { READY = true }

-- References name ids as the client sent them: a semisigned -1 is the
-- u32 0xFFFFFFFF on the wire (PROTOCOL.md 2.1, 2.4).
function M.wire_refs(refs)
    if refs then
        for _, r in ipairs(refs) do
            r.id = r.id % 4294967296
        end
    end
    return refs
end

-- Fails the whole request.
function M.raise(code, message, refs)
    fail.raise(code, message, M.wire_refs(refs))
end

-- A Fail frame for one item of a Sequence.
function M.item_fail(code, message, refs)
    return proto.fail(code, message, M.wire_refs(refs))
end

-- A handler served once the player has logged in.
function M.handler(fn)
    return { states = READY, fn = fn }
end

-- Answers req with Sequence + one frame (or Fail) per id, in request
-- order: fn(id) returns the id's frame or raises with tp.fail. The one
-- way every per-id handler answers: the reply is made in parts
-- (tp.dispatch.stream), so fn runs when the id's part is made, and an id
-- whose thing is gone by then gets its Fail like a missing one. Any other
-- error is a bug: in the first part it fails the whole request, later it
-- fails that id. Returns nothing for the handler to send.
function M.per_id(conn, req, ids, fn)
    local function item(i)
        local ok, frame = pcall(fn, ids[i])
        if not ok then
            if type(frame) == "table" and frame.tp_fail then
                return M.item_fail(frame.code, frame.message, frame.refs)
            end
            error(frame, 0)
        end
        return frame
    end
    return dispatch.stream(conn, req, #ids, item)
end

function M.no_such(what, id, reftype)
    M.raise("NoSuchThing", string.format("no such %s %d", what, id),
            reftype and { { type = reftype, id = id } } or nil)
end

-- ------------------------------------------------------------ ID lists

-- An ID list handler answering with frame `reply`: build(conn, from)
-- gives the entries { id, modtime } of the list kind as the player sees
-- them, in ascending id order; with from >= 0, tp.idseq keeps only those
-- changed after it, removed objects included (PROTOCOL.md 8.4). One
-- snapshot per list kind per connection (PROTOCOL.md 8.3).
function M.id_list(reply, build)
    return M.handler(function(conn, req)
        return idseq.answer(conn, req._name, req, reply, build)
    end)
end

-- The entries of a registry of static data (tp.types).
function M.static_list(registry)
    local out = {}
    for _, id in ipairs(types.ids(registry)) do
        local e = registry[id]
        out[#out + 1] = { id = id, modtime = e.modtime or types.modtime }
    end
    return out
end

-- The entries of a model registry that may_see(player, entry) allows.
function M.visible_list(registry, may_see, player)
    local out = {}
    for _, id in ipairs(types.ids(registry)) do
        local e = registry[id]
        if may_see(player, e) then
            out[#out + 1] = { id = id, modtime = e.modtime }
        end
    end
    return out
end

-- A handler answering ids of static data: registry() gives the current
-- table (tp.types rebuilds it when a ruleset is reloaded), frame(entry)
-- its frame.
function M.static_getter(registry, what, reftype, frame)
    return M.handler(function(conn, req)
        return M.per_id(conn, req, req.ids, function(id)
            local e = registry()[id]
            if not e then
                M.no_such(what, id, reftype)
            end
            return frame(e)
        end)
    end)
end

-- The handlers among a module's fields: { FrameName = { states, fn } }.
function M.collect(module)
    local out = {}
    for k, v in pairs(module) do
        if type(v) == "table" and v.fn then
            out[k] = v
        end
    end
    return out
end

return M
