-- tp.idle: players who have left without saying so. A player who neither
-- logged in (TP or the web page) nor finished for idle_turns turns in a
-- row is marked idle: everyone sees it (the player lists of the console,
-- the web page and the TP Player frame), and the turn engine no longer
-- waits for them (players_finished, threshold). Their first login takes
-- the mark away. After idle_remove_turns turns idle, idle_action acts:
-- "none" leaves them be; "remove" takes them out of the game, the
-- ruleset's player_removed(ctx, player) hook deciding what becomes of
-- their empire (rulesets/README.md); the account stays; "ai" hands their
-- empire to the ruleset's AI (tp.ai, at ai_level) until they log in.
--
-- Kept in the player's record: idle_count (turns in a row neither logged
-- in nor finished), idle (the turn they were marked idle at), removed
-- (true once idle_action removed them).

local accounts = require "tp.accounts"
local log = require "tp.log"
local model = require "tp.model"

local M = {}

function M.is_idle(p)
    return p.idle ~= nil
end

-- Marks player p idle (from turn turn_no on). Everything that follows
-- from being idle starts here.
function M.mark_idle(c, p, turn_no, events)
    p.idle = turn_no
    model.player_changed(p)
    log.info("turn", "player idle", { player = p.id, name = p.name,
             turns = p.idle_count })
    events[#events + 1] = { "player_idle", { player = p.id, name = p.name } }
    return c
end

-- Takes p out of the game (idle_action "remove"): the ruleset's
-- player_removed hook first, then alive = false.
function M.remove(c, p, events, ruleset)
    if ruleset.player_removed then
        ruleset.player_removed(c, p)
    end
    p.alive = false
    p.removed = true
    model.player_changed(p)
    log.info("turn", "idle player removed from the game",
             { player = p.id, name = p.name })
    events[#events + 1] = { "player_removed",
                            { player = p.id, name = p.name } }
end

-- Hands p's empire to the computer player (idle_action "ai", tp.ai) at
-- ai_level, in the turn's batch: the AI plays it from the next turn on,
-- until the player's first login takes it back (tp.turn.player_seen).
function M.hand_to_ai(c, p, events)
    if p.ai or p.ai_control then
        return
    end
    p.ai_control = require("tp.game").config().ai_level
    model.player_changed(p)
    log.info("turn", "idle player handed to the AI",
             { player = p.id, name = p.name, level = p.ai_control })
    events[#events + 1] = { "player_ai", { player = p.id, name = p.name,
                                           level = p.ai_control } }
end

M.actions = {
    none = function() end,
    remove = M.remove,
    ai = M.hand_to_ai,
}

-- At the end of every turn, after the ruleset's turn, in its batch:
-- record is the turn that ends (its finished and seen), online the
-- logged-in connections (conn -> player id). Returns the events to emit
-- once the turn is stored: { { name, data } }.
function M.end_of_turn(c, record, next_turn, online)
    local cfg = require("tp.game").config()
    local events = {}
    if cfg.idle_turns == 0 then
        return events
    end
    local connected = {}
    for conn, id in pairs(online) do
        if not conn.closed then
            connected[id] = true
        end
    end
    local seen = record.seen or {}
    local ruleset = require("tp.game").ruleset()
    for _, p in ipairs(accounts.players()) do
        local key = tostring(p.id)
        if p.alive ~= false then
            -- A turn the AI finished for them (idle_action "ai") does not
            -- count: they are still away.
            local finished = record.finished[key] and not p.ai_control
            if finished or seen[key] or connected[p.id] then
                if p.idle_count or p.idle then
                    p.idle_count, p.idle = nil, nil
                    model.player_changed(p)
                end
            else
                p.idle_count = (p.idle_count or 0) + 1
                model.player_changed(p)
                if not p.idle and p.idle_count >= cfg.idle_turns then
                    M.mark_idle(c, p, next_turn, events)
                end
                if p.idle and cfg.idle_action ~= "none" and
                   next_turn - p.idle >= cfg.idle_remove_turns then
                    M.actions[cfg.idle_action](c, p, events, ruleset)
                end
            end
        end
    end
    return events
end

-- A login: the idle mark goes (stored at once). Returns true when p was
-- idle.
function M.clear(p)
    if not p.idle and not p.idle_count then
        return false
    end
    local was = p.idle ~= nil
    p.idle, p.idle_count = nil, nil
    model.player_changed(p)
    local ok, err = pcall(model.commit)
    if not ok then
        model.undo()
        log.error("turn", "player %d's idle mark could not be cleared: %s",
                  p.id, tostring(err))
        return false
    end
    if was then
        log.info("turn", "idle player is back", { player = p.id,
                 name = p.name })
    end
    return was
end

return M
