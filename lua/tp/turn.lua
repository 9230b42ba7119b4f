-- tp.turn: the turn engine: the turn clock and its timers, the end of a
-- turn (the ruleset's turn, written as one batch) or its failure, the
-- players who have not finished, pausing, and the TimeRemaining frames.
-- tp.game opens the game and re-exports the public functions here, which
-- is how the rest of the server reaches them (game.end_turn, ...).
--
-- State kept in the database:
--   meta/turn  -> { turn, started, ends_at, finished = { player ids },
--                   seen = { player ids that logged in this turn } }
--   meta/pause -> { at, remaining } while an admin holds the turns
--   meta/over  -> { turn, reason, winners, at } once the game is over
-- The turn clock follows turn_mode: "fixed" (a turn lasts turn_length),
-- "players_finished" (ends when every player has sent FinishedTurn, or at
-- turn_length, whichever is first), "threshold" (turn_length_under_
-- threshold until turn_player_threshold percent of the players have
-- finished, then at most turn_length_over_threshold more; everyone
-- finished ends it), "manual" (only an admin ends it). A warning goes out
-- turn_warning seconds before the end. In the two modes where players
-- finishing ends a turn, computer players alone never do (human_finished).
-- turn_schedule (tp.schedule) replaces turn_length (in threshold mode,
-- turn_length_under_threshold) with the next listed clock time: "fixed"
-- ends the turn there, "players_finished" there or when everyone has
-- finished. Idle players (tp.idle) are not waited for.
-- When the ruleset says the game is over after a turn (its game_over
-- hook), every player gets a message, no turn ends any more, and the
-- TimeRemaining frames say so (time -1, the reason in the turn name).
-- TimeRemaining frames are pushed (sequence 0) to every logged-in player.

local core = require "tp.core"
local log = require "tp.log"
local proto = require "tp.proto"
local accounts = require "tp.accounts"
local stats = require "tp.stats"

local M = {}

-- What tp.game shares (M.attach): cfg, db, ruleset (replaced by a
-- reload), ctx() (the ruleset's context) and sessions (logged-in player
-- connection -> player id).
local game
local turn          -- meta/turn
local timer         -- core timer for the end of turn
local warn_timer    -- pushes the advance warning (reason TimerWarning)
local paused        -- meta/pause while an admin holds the turns, or nil
local turn_seconds = stats.histogram("tpserver_turn_duration_seconds",
    "Time the turn processing took (ruleset and database write).",
    { 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300 })

local cjson_encode = require("cjson").encode
local model = require "tp.model"
local types = require "tp.types"
local schedule_mod = require "tp.schedule"
local idle = require "tp.idle"
local events = require "tp.events"

local over          -- meta/over once the game has ended, else nil

function M.attach(shared)
    game = shared
end

-- Takes the turn record of the game being opened (stored, or a new game's)
-- and the stored pause. Returns the record.
function M.open(record)
    turn = record
    turn.finished = turn.finished or {}
    paused = game.db:get("meta/pause")
    over = game.db:get("meta/over")
    return turn
end

-- The end of the game (meta/over: turn, reason, winners, at), or nil
-- while it runs.
function M.over()
    return over
end

-- The ruleset's name for turn n (its turn_name hook; "" without one).
function M.name_of(c, n)
    local hook = game.ruleset.turn_name
    if not hook then
        return nil
    end
    local name = hook(c, n)
    if name ~= nil and type(name) ~= "string" then
        error("the ruleset's turn_name returned a " .. type(name), 0)
    end
    return name
end

-- Names the running turn anew (a game opened or created: the ruleset's
-- turn_name may have changed). A failing hook leaves the name empty.
function M.name_current(c)
    local ok, name = pcall(M.name_of, c, turn.turn)
    if not ok then
        log.error("turn", "the ruleset's turn_name failed: %s",
                  tostring(name))
        name = nil
    end
    turn.name = name
end

function M.turn_number()
    return turn.turn
end

-- Seconds until the end of turn, or -1 when no timer runs.
function M.time_remaining()
    if not turn.ends_at then
        return -1
    end
    return math.max(0, math.ceil(turn.ends_at - core.now()))
end

-- Ids of players who have not finished this turn. Cached until a player
-- joins or finishes, or the turn changes (asked on every GetTimeRemaining).
local waiting_cache, waiting_turn, waiting_version
function M.waiting()
    if waiting_cache and waiting_turn == turn and
       waiting_version == accounts.version then
        return waiting_cache
    end
    local list = {}
    for _, p in ipairs(over and {} or accounts.players()) do
        -- Players out of the game (eliminated, spectators) are not
        -- waited for, idle ones neither, and nobody once it is over.
        if p.alive ~= false and not idle.is_idle(p) and
           not turn.finished[tostring(p.id)] then
            list[#list + 1] = p.id
        end
    end
    waiting_cache, waiting_turn, waiting_version = list, turn,
                                                   accounts.version
    return list
end

-- Once the game is over the turn name says why, as TimeRemaining has no
-- reason code for it: the ruleset's own name for the turn (TaE: "Game
-- over"), else "Game over: <reason>"; no timer runs (time -1).
function M.time_frame(reason)
    local name = turn.name or ""
    if over and name == "" then
        name = "Game over: " .. (over.reason or "")
    end
    return proto.frame("TimeRemaining", {
        time = M.time_remaining(), reason = reason, turn = turn.turn,
        turnname = name, waiting = M.waiting(),
    })
end

-- Pushes a TimeRemaining frame to every logged-in player.
function M.broadcast_time(reason, time)
    local frame = M.time_frame(reason)
    if time then
        frame.time = time
    end
    for conn in pairs(game.sessions) do
        if not conn.closed then
            conn:send(frame)
        end
    end
end

-- How long a new turn lasts (seconds; 0 = no deadline). In threshold
-- mode a turn starts with the long timer (turn_length_under_threshold),
-- or with the short one when the threshold is 0 ("always over").
local function initial_length()
    local cfg = game.cfg
    if cfg.turn_mode == "manual" then
        return 0
    elseif cfg.turn_mode == "threshold" then
        if cfg.turn_player_threshold == 0 then
            return cfg.turn_length_over_threshold
        end
        return cfg.turn_length_under_threshold
    end
    return cfg.turn_length
end

-- The configuration's turn_schedule, compiled (nil without one).
local sched, sched_of, sched_zone
local function schedule()
    local cfg = game.cfg
    if #cfg.turn_schedule == 0 or cfg.turn_mode == "manual" then
        return nil
    end
    if sched_of ~= cfg.turn_schedule or sched_zone ~= cfg.turn_timezone then
        -- (Checked with the configuration: cannot fail here.)
        sched = assert(schedule_mod.compile(cfg.turn_schedule,
                                            cfg.turn_timezone))
        sched_of, sched_zone = cfg.turn_schedule, cfg.turn_timezone
    end
    return sched
end

-- When a turn starting now ends (wall-clock seconds), or nil for no
-- deadline: the next scheduled time, else now + its length.
local function new_deadline()
    local s = schedule()
    if s then
        return schedule_mod.next_end(s, core.now())
    end
    local len = initial_length()
    if len > 0 then
        return core.now() + len
    end
    return nil
end

-- The end of the running turn as local time in turn_timezone ("" with
-- no deadline), for the console's status.
function M.ends_at_text()
    if not turn.ends_at then
        return ""
    end
    local zone = assert(schedule_mod.compile({ "00:00" },
                                             game.cfg.turn_timezone))
    return schedule_mod.local_text(zone, turn.ends_at)
end

function M.arm_timer()
    if timer then
        timer:stop()
        timer = nil
    end
    if warn_timer then
        warn_timer:stop()
        warn_timer = nil
    end
    if paused or over then
        turn.ends_at = nil
        return
    end
    turn.ends_at = turn.ends_at or new_deadline()
    if not turn.ends_at then
        return
    end
    local left = turn.ends_at - core.now()
    timer = core.timer(math.max(0, left * 1000), 0, function()
        timer = nil
        M.end_turn("timer")
    end)
    -- The advance warning, turn_warning seconds before the end.
    local warn = game.cfg.turn_warning
    if warn > 0 and left > warn then
        warn_timer = core.timer((left - warn) * 1000, 0, function()
            warn_timer = nil
            M.broadcast_time(proto.REASON.TimerWarning, warn)
            require("tp.events").emit("turn_warning", { turn = turn.turn,
                                      seconds_left = warn })
        end)
    end
end

-- Computer players alone never end a turn early (tp.ai): a turn ends
-- before its time only once at least one human player has finished it,
-- so that a game nobody plays follows its timer or the admin.
local function human_finished()
    local ai = require "tp.ai"
    for key in pairs(turn.finished) do
        local p = accounts.player(tonumber(key))
        if p and not ai.is_ai(p) then
            return true
        end
    end
    return false
end
M.human_finished = human_finished

-- Whether every player has finished in a mode where that ends the turn.
local function all_finished_ends_turn()
    local mode = game.cfg.turn_mode
    if (mode ~= "players_finished" and mode ~= "threshold") or over or
       #M.waiting() > 0 then
        return false
    end
    -- Someone active must have finished: a game whose players are all
    -- idle (or out) waits for its timer.
    -- Computer players alone do not end it either (human_finished).
    for _, p in ipairs(accounts.players()) do
        if p.alive ~= false and not idle.is_idle(p) then
            return human_finished()
        end
    end
    return false
end

-- Starts the clock of the turn just opened (M.open); stored_ends_at is the
-- deadline as stored, so that the time left survives a restart.
function M.start_clock(stored_ends_at)
    M.arm_timer()
    if turn.ends_at ~= stored_ends_at then
        game.db:put("meta/turn", turn)
    end
    -- Killed while processing a turn every player had finished: the turn
    -- was not stored, so it is made again.
    if all_finished_ends_turn() and not paused then
        log.info("game", "every player had finished turn %d: ending it",
                 turn.turn)
        core.timer(0, 0, function()
            if #M.waiting() == 0 then
                M.end_turn("all")
            end
        end)
    end
end

-- Threshold mode: once turn_player_threshold percent of the players still
-- in the game have finished, the turn is cut to
-- turn_length_over_threshold from now (never lengthened); everyone
-- finished ends it at once. Returns true when it acted.
local function check_threshold(waiting)
    local cfg = game.cfg
    local alive = 0
    for _, p in ipairs(accounts.players()) do
        if p.alive ~= false and not idle.is_idle(p) then
            alive = alive + 1
        end
    end
    if alive == 0 or not human_finished() then
        return false
    end
    if #waiting == 0 then
        M.end_turn("all")
        return true
    end
    local done = alive - #waiting
    if turn.over or done * 100 < cfg.turn_player_threshold * alive then
        return false
    end
    turn.over = true
    local short = cfg.turn_length_over_threshold
    if short == 0 then
        M.end_turn("threshold")
        return true
    end
    local ends = core.now() + short
    if not turn.ends_at or ends < turn.ends_at then
        turn.ends_at = ends
        M.arm_timer()
    end
    game.db:put("meta/turn", turn)
    log.info("turn", "threshold of finished players reached",
             { turn = turn.turn, finished = done, players = alive,
               remaining = M.time_remaining() })
    M.broadcast_time(proto.REASON.ThresholdFinishedTimerStarted)
    return true
end

-- A turn that failed (the ruleset raised or was stopped, or the disk
-- refused its batch): the working set is read back from the database, and
-- the turn starts over with a new deadline and players finishing again
-- (else, with no deadline, nothing would ever end it).
local function turn_failed()
    local db = game.db
    types.take_running_hook()
    model.rollback()
    accounts.init(db, game.cfg)
    turn.ends_at = nil
    turn.finished = {}
    waiting_cache = nil
    M.arm_timer()
    local ok, err = pcall(db.put, db, "meta/turn", turn)
    if not ok then
        log.error("turn", "cannot store the restarted turn: %s",
                  tostring(err))
    end
    M.broadcast_time(proto.REASON.TimerStarted)
    require("tp.events").emit("turn_restarted", { turn = turn.turn })
    return false
end

-- The ruleset's verdict after a turn: nil while the game goes on, else
-- { reason, winners }. Its game_over(ctx) hook returns over [, reason
-- [, winners]]; winners default to the players still in the game with the
-- best score (of all players, when the ruleset put everyone out of the
-- game at its end, as TaE does). A ruleset without the hook never ends its
-- games by itself (MiniSec goes on after its winner, as the reference
-- server does).
function M.verdict(c)
    local hook = game.ruleset.game_over
    if not hook then
        return nil
    end
    local alive = {}
    for _, p in ipairs(accounts.players()) do
        if p.alive ~= false then
            alive[#alive + 1] = p
        end
    end
    if #alive == 0 then
        alive = accounts.players()
    end
    local is_over, reason, winners = hook(c)
    if not is_over then
        return nil
    end
    if type(winners) == "table" then
        local ids = {}
        for _, id in ipairs(winners) do
            if type(id) == "number" and accounts.player(id) then
                ids[#ids + 1] = id
            end
        end
        winners = ids
    else
        winners = {}
        local best
        for _, p in ipairs(alive) do
            local score = tonumber(p.score) or 0
            if not best or score > best then
                best, winners = score, { p.id }
            elseif score == best then
                winners[#winners + 1] = p.id
            end
        end
    end
    return { reason = type(reason) == "string" and reason or "the ruleset "
             .. "ended the game", winners = winners }
end

-- The game ended with the turn just processed: a message to every player
-- (in the turn's batch). Returns the meta/over record.
local function announce_end(c, verdict, turn_no)
    local names = {}
    for _, id in ipairs(verdict.winners) do
        local p = accounts.player(id)
        names[#names + 1] = p and p.name or ("#" .. id)
    end
    local won = #names > 0 and ("Won by " .. table.concat(names, ", ") ..
                                ".") or "Nobody won."
    local scores = {}
    for _, p in ipairs(accounts.players()) do
        scores[#scores + 1] = string.format("%s: %s", p.name,
                                            tostring(p.score or 0))
    end
    local body = string.format("The game is over after turn %d: %s. %s\n"
        .. "Final scores: %s.\nYou may still log in and look at the "
        .. "universe; no orders are taken any more.", turn_no,
        verdict.reason, won, table.concat(scores, ", "))
    for _, p in ipairs(accounts.players()) do
        c:message(p.id, "End of the game", body, { { type = -4, id = 3 } })
    end
    return { turn = turn_no, reason = verdict.reason,
             winners = verdict.winners, at = os.time() }
end

-- Ends the turn now. why: "timer", "all" (everyone finished), "admin".
-- The ruleset's turn runs over the working set; its whole result is one
-- batch, written with sync. If it raises, nothing of it is kept (the
-- working set is reloaded from the database) and the turn is not advanced.
-- A game that is over has no more turns (returns false).
function M.end_turn(why)
    if over then
        log.warning("turn", "the game is over: no turn ends any more")
        return false
    end
    local reason = why == "all" and proto.REASON.AllFinished
                   or proto.REASON.EndOfTurnStarted
    log.info("turn", "turn ending", { turn = turn.turn, reason = why })
    M.broadcast_time(reason, 0)
    events.emit("turn_end", { turn = turn.turn })
    local started = core.hrtime()
    local next_turn = turn.turn + 1
    local name
    local eliminated, idle_events, ended = {}, {}, nil
    -- Under the turn's own time limit (a request's limit, when a
    -- FinishedTurn ends the turn, waits meanwhile).
    local limit = game.cfg.turn_time_limit
    local ok, err = core.time_limit(limit, "turn", function()
        local c = game.ctx()
        c.turn = next_turn
        -- Players changed without ctx:player_changed are found too.
        local before, was_alive = {}, {}
        for _, p in ipairs(accounts.players()) do
            before[p] = cjson_encode(p)
            was_alive[p] = p.alive ~= false
        end
        local ruleset = game.ruleset
        if ruleset.turn then
            ruleset.turn(c)
        end
        name = M.name_of(c, next_turn)
        -- Whoever the ruleset's turn put out of the game, whatever the
        -- ruleset.
        for p, alive in pairs(was_alive) do
            if alive and p.alive == false then
                eliminated[#eliminated + 1] = p
            end
        end
        table.sort(eliminated, function(a, b) return a.id < b.id end)
        idle_events = idle.end_of_turn(c, turn, next_turn, game.sessions)
        local verdict = M.verdict(c)
        if verdict then
            ended = announce_end(c, verdict, next_turn)
        end
        -- A ruleset that marks every object it changes (marks_changes)
        -- spares the comparison of every object with its stored form.
        if not ruleset.marks_changes then
            model.detect_changes()
        end
        for p, json in pairs(before) do
            if cjson_encode(p) ~= json then
                model.player_changed(p)
            end
        end
        model.state_changed()
    end)
    if not ok then
        log.error("turn", "the ruleset's turn failed; turn %d is not "
                  .. "advanced and nothing of it is kept: %s", turn.turn,
                  tostring(err))
        return turn_failed()
    end
    local new_turn = { turn = next_turn, started = math.floor(core.now()),
                       finished = {}, name = name }
    if not ended then
        new_turn.ends_at = new_deadline()
    end
    local commit_started = core.hrtime()
    local batch = game.db:batch()
    local n
    ok, err = pcall(function()
        n = model.commit(batch, nil, new_turn.turn)
        if ended then
            batch:put("meta/over", ended)
        end
        batch:put("meta/turn", new_turn):commit(true)
    end)
    if not ok then
        -- The disk refused the turn: nothing of it is in memory either.
        log.error("turn", "the turn could not be stored; turn %d is not "
                  .. "advanced and nothing of it is kept: %s", turn.turn,
                  tostring(err))
        return turn_failed()
    end
    model.committed()
    turn = new_turn
    over = ended
    M.last_commit_ms = core.hrtime() - commit_started
    M.last_turn_ms = core.hrtime() - started
    turn_seconds:observe(M.last_turn_ms / 1000)
    log.info("turn", "turn started", { turn = turn.turn, records = n,
             processing_ms = M.last_turn_ms })
    M.arm_timer()
    M.broadcast_time(proto.REASON.TimerStarted)
    for _, p in ipairs(eliminated) do
        events.emit("player_eliminated", { player = p.id, name = p.name })
    end
    for _, e in ipairs(idle_events) do
        events.emit(e[1], e[2])
    end
    if over then
        log.info("turn", "the game is over", { turn = over.turn,
                 reason = over.reason })
        events.emit("game_over", { turn = over.turn, reason = over.reason,
                                   winners = over.winners })
    else
        events.emit("turn_start", { turn = turn.turn,
                                    seconds_left = M.time_remaining() })
    end
    require("tp.autosave").after_turn(game.db, game.cfg, turn.turn)
    return true
end

-- Records that player id has finished the turn (idempotent).
function M.finished_turn(id)
    local db = game.db
    local key = tostring(id)
    if turn.finished[key] then
        return
    end
    turn.finished[key] = true
    waiting_cache = nil
    local ok, err = pcall(db.put, db, "meta/turn", turn)
    if not ok then
        -- Not stored, so not finished: memory stays what the disk says.
        turn.finished[key] = nil
        waiting_cache = nil
        log.error("turn", "player %d's FinishedTurn could not be stored: "
                  .. "%s", id, tostring(err))
        require("tp.fail").raise("UnavailableTemporarily", "the server "
            .. "could not store that you finished; try again")
    end
    local waiting = M.waiting()
    local mode = game.cfg.turn_mode
    require("tp.events").emit("player_finished", { player = id })
    if paused then
        M.broadcast_time(proto.REASON.TimerWarning)
    elseif mode == "players_finished" and #waiting == 0 and
           human_finished() then
        M.end_turn("all")
    elseif mode == "threshold" and check_threshold(waiting) then
        return
    else
        M.broadcast_time(proto.REASON.TimerWarning)
    end
end

-- A player logged in (tp.handlers.session, for the web page too): active
-- this turn for tp.idle, which also takes an idle mark away. Stored once a
-- turn per player (meta/turn's seen).
function M.player_seen(id)
    local key = tostring(id)
    turn.seen = turn.seen or {}
    if not turn.seen[key] then
        turn.seen[key] = true
        local ok, err = pcall(game.db.put, game.db, "meta/turn", turn)
        if not ok then
            turn.seen[key] = nil
            log.error("turn", "player %d's login could not be noted: %s",
                      id, tostring(err))
        end
    end
    local p = accounts.player(id)
    if p and p.ai_control then
        -- Back from idle_action "ai": they play their empire again.
        local ok, err = pcall(require("tp.ai").release, id)
        if not ok then
            log.error("turn", "player %d's empire could not be taken back "
                      .. "from the AI: %s", id, tostring(err))
        end
    end
    if p and idle.clear(p) then
        waiting_cache = nil
        M.broadcast_time(proto.REASON.TimerWarning)
    end
end

-- ------------------------------------------------------------ admin
-- (admin/commands.lua: turn.pause(), turn.reset(), reload_ruleset() ...)

-- Pausing: no turn ends while paused, neither by the timer nor because
-- every player finished (an admin's turn.now() still does). The time left
-- is kept and given back on resume. Stored (meta/pause): a restart stays
-- paused.
function M.paused()
    return paused
end

function M.pause()
    if paused then
        return false
    end
    local left = M.time_remaining()
    paused = { at = os.time(), remaining = left >= 0 and left or nil }
    M.arm_timer()
    local db = game.db
    db:batch():put("meta/pause", paused):put("meta/turn", turn):commit(true)
    log.info("turn", "turns paused", { turn = turn.turn,
             remaining = paused.remaining })
    M.broadcast_time(proto.REASON.TimerWarning)
    return true
end

function M.resume()
    if not paused then
        return false
    end
    local left = paused.remaining
    paused = nil
    turn.ends_at = left and (core.now() + left) or nil
    M.arm_timer()
    local db = game.db
    db:batch():delete("meta/pause"):put("meta/turn", turn):commit(true)
    log.info("turn", "turns resumed", { turn = turn.turn,
             remaining = M.time_remaining() })
    M.broadcast_time(proto.REASON.TimerStarted)
    if all_finished_ends_turn() then
        core.timer(0, 0, function()
            if not paused and #M.waiting() == 0 then
                M.end_turn("all")
            end
        end)
    end
    return true
end

-- Starts the turn's clock again from now (turn_length seconds), after a
-- change of turn_length or turn_mode too.
function M.reset_timer()
    turn.ends_at = nil
    M.arm_timer()
    game.db:put("meta/turn", turn)
    M.broadcast_time(proto.REASON.TimerStarted)
end

-- The running turn's record (read only): turn, started, ends_at, finished.
function M.turn_record()
    return turn
end

function M.stop()
    if timer then
        timer:stop()
        timer = nil
    end
    if warn_timer then
        warn_timer:stop()
        warn_timer = nil
    end
end

return M
