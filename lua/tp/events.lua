-- tp.events: what happens in the game, for whoever listens (the web
-- side's event stream). The turn engine and the model emit; listeners
-- are called in the order they subscribed, each under protection (a
-- listener that raises is logged and the others still run).
--
-- Events: turn_end { turn }, turn_start { turn, seconds_left },
-- turn_warning { turn, seconds_left }, turn_restarted { turn } (the
-- turn failed and starts over, every player to finish it again),
-- player_finished { player },
-- player_joined { player, name } (once its account is stored),
-- message { board, slot, owner } (emitted once the request or turn that
-- posted it has been stored: see model.post).
-- After a turn is stored (tp.turn), in this order: player_eliminated
-- { player, name } for each player whose alive became false in the
-- ruleset's turn (whatever the ruleset); player_idle { player, name } and
-- player_removed { player, name } (tp.idle: marked idle; taken out by
-- idle_action = "remove"); then either turn_start or, once, game_over
-- { turn, reason, winners = { player ids } } when the ruleset ended the
-- game with that turn (no turn_start follows it: no turn ends any more).
-- turn_start's seconds_left is the time to the turn's real end (its
-- turn_schedule time, or turn_length); -1 without a deadline.

local M = {}

local listeners = {}

-- Calls fn(name, data) for every event from now on; returns a function
-- that stops it.
function M.subscribe(fn)
    listeners[#listeners + 1] = fn
    return function()
        for i, f in ipairs(listeners) do
            if f == fn then
                table.remove(listeners, i)
                return
            end
        end
    end
end

function M.emit(name, data)
    for _, fn in ipairs({ unpack(listeners) }) do
        local ok, err = pcall(fn, name, data)
        if not ok then
            require("tp.log").error("events", "a listener of %s failed: %s",
                                    name, tostring(err))
        end
    end
end

return M
