-- tp.idseq: answering an ID list request (GetObjectIDs, GetBoardIDs, ...,
-- the admin protocol's GetCommandDescIDs) by the rule of PROTOCOL.md 8.3,
-- the same for every list kind of both protocols.
--
-- A connection keeps one snapshot per list kind: key -1 builds it (the
-- entries { id, modtime } in ascending id order, filtered by from) and
-- gives it a fresh key; another key must be the current one. Any start
-- from 0 to the size is served, and the amount is clamped to what is
-- left: libtpproto-cpp and tpadmin-cpp ask for 8737 ids at once and rely
-- on it (PROTOCOL.md 19.1 items 7 and 19).

local fail = require "tp.fail"
local proto = require "tp.proto"

local M = {}

-- Answers req (key, start, amount, from) of list kind `kind` with a reply
-- frame named `reply`. build(conn, from) returns every entry the
-- connection may see (removed ones included when from >= 0); entries not
-- changed after from are dropped here.
function M.answer(conn, kind, req, reply, build)
    local from = req.from or -1
    conn.id_lists = conn.id_lists or {}
    local snap
    if req.key == -1 then
        local old = conn.id_lists[kind]
        conn.id_key = (conn.id_key or 0) + 1
        local list = build(conn, from)
        if from >= 0 then
            local changed = {}
            for _, e in ipairs(list) do
                if e.modtime > from then
                    changed[#changed + 1] = e
                end
            end
            list = changed
        end
        snap = { key = conn.id_key, list = list }
        -- A fresh key: never the one the client may still hold.
        if old and old.key == snap.key then
            snap.key = snap.key + 1
        end
        conn.id_lists[kind] = snap
    else
        snap = conn.id_lists[kind]
        if not snap or snap.key ~= req.key then
            fail.raise("UnavailableTemporarily",
                       "invalid sequence key, start again with -1")
        end
    end
    local size = #snap.list
    if req.start < 0 or req.start > size then
        fail.raise("NoSuchThing", string.format("start %d is past the end "
                   .. "of the list (%d entries)", req.start, size))
    end
    local amount = req.amount
    if amount < 0 or amount > size - req.start then
        amount = size - req.start
    end
    local batch = {}
    for i = req.start + 1, req.start + amount do
        batch[#batch + 1] = snap.list[i]
    end
    return proto.frame(reply, {
        key = snap.key, remaining = size - req.start - amount,
        modtimes = batch, from = from,
    })
end

return M
