-- tp.migrate: converts a game stored by an older tpserver to the current
-- database format (tp.db.FORMAT), in one synced batch, after the game was
-- read from its check copy and found good (docs/storage.md, "Format
-- version and refusals").
--
-- Format 1 -> 2: turns were numbered from 1; they are numbered from 0 now,
-- so that a ruleset's turn counter (MiniSec's Year, which started at 0)
-- equals the turn number clients are told (PROTOCOL.md 13). Every stored
-- turn number goes down by one: meta/turn, the keys of the history records
-- (hist/<turn>/...) and the turn of every message.

local M = {}

local function to_2(db, meta, turn, log)
    local batch = db:batch()
    local raw = db.raw
    local moved, msgs = 0, 0
    -- Collected first: the batch must not change what is being iterated.
    local hist = {}
    for k, v in raw:iter { prefix = "hist/" } do
        hist[#hist + 1] = { k, v }
    end
    -- Every delete before the puts: a put must not be undone by the
    -- delete of a key that moves too.
    for _, e in ipairs(hist) do
        batch.raw:delete(e[1])
    end
    for _, e in ipairs(hist) do
        local t, id = e[1]:match("^hist/(%d+)/(%d+)$")
        t = tonumber(t)
        -- Turn 1 made no records (there was nothing before it to undo).
        if t and t >= 2 then
            batch.raw:put(string.format("hist/%010d/%s", t - 1, id), e[2])
            moved = moved + 1
        end
    end
    for k, m in db:each("msg/") do
        if type(m) == "table" and type(m.turn) == "number" and m.turn > 0 then
            m.turn = m.turn - 1
            batch:put(k, m)
            msgs = msgs + 1
        end
    end
    turn.turn = math.max(0, (turn.turn or 1) - 1)
    meta.format = 2
    batch:put("meta/turn", turn):put("meta/game", meta):commit(true)
    log.info("game", "database converted from format 1 to 2: turns are "
             .. "numbered from 0 (now turn %d; %d history records, %d "
             .. "messages renumbered)", turn.turn, moved, msgs)
end

local STEPS = { [1] = to_2 }

-- Brings the stored game from meta.format up to target. meta and turn are
-- the loaded meta/game and meta/turn tables; they are changed in place.
-- Returns true when anything was converted (the caller reloads what it
-- keeps in memory).
function M.run(db, meta, turn, target, log)
    local from = meta.format or 1
    if from >= target then
        return false
    end
    for f = from, target - 1 do
        STEPS[f](db, meta, turn, log)
    end
    return true
end

return M
