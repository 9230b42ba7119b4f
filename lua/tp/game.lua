-- tp.game: the hosted game: its identity, the turn clock, and the players
-- connected to it.
--
-- State kept in the database:
--   meta/game -> { format, ruleset, ruleset_version, created }
--   meta/turn -> { turn, started, ends_at, finished = { player ids } }
-- The turn clock follows turn_mode: "fixed" (a turn lasts turn_length),
-- "players_finished" (ends when every player has sent FinishedTurn, or at
-- turn_length, whichever is first), "threshold" (turn_length_under_
-- threshold until turn_player_threshold percent of the players have
-- finished, then at most turn_length_over_threshold more; everyone
-- finished ends it), "manual" (only an admin ends it). A warning goes out
-- turn_warning seconds before the end.
-- TimeRemaining frames are pushed (sequence 0) to every logged-in player.

local core = require "tp.core"
local db_mod = require "tp.db"
local log = require "tp.log"
local proto = require "tp.proto"
local accounts = require "tp.accounts"
local stats = require "tp.stats"

local M = {}

local cfg, db, ruleset
local meta          -- meta/game
local turn          -- meta/turn
local timer         -- core timer for the end of turn
local paused        -- meta/pause while an admin holds the turns, or nil
local turn_seconds = stats.histogram("tpserver_turn_duration_seconds",
    "Time the turn processing took (ruleset and database write).",
    { 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300 })
M.sessions = {}     -- logged-in player connection -> player id

-- The ruleset's settings: its declared defaults, overlaid with the
-- settings stored with the game (stored), overlaid with the
-- configuration's ruleset_settings; an unknown or mistyped key is an error.
local function ruleset_settings(rs, given, stored)
    local out = {}
    local decl = rs.settings or {}
    -- ruleset_settings may also hold a section per ruleset, named by its
    -- folder ({ minisec = { max_systems = 30 } }): the running ruleset's
    -- section applies, other sections are left alone, and plain keys
    -- (e.g. from --set) apply to whichever ruleset runs, over the section.
    local flat = {}
    local section = (given or {})[rs.folder]
    if type(section) == "table" and not decl[rs.folder] then
        for k, v in pairs(section) do
            flat[k] = v
        end
    end
    for k, v in pairs(given or {}) do
        if type(v) ~= "table" or decl[k] then
            flat[k] = v
        end
    end
    given = flat
    for k, v in pairs(given) do
        local d = decl[k]
        if not d then
            error(string.format("ruleset %s has no setting '%s'", rs.name,
                                tostring(k)), 0)
        end
        if d.default ~= nil and type(v) ~= type(d.default) then
            error(string.format("ruleset setting '%s' must be a %s", k,
                                type(d.default)), 0)
        end
        out[k] = v
    end
    for k, d in pairs(decl) do
        if out[k] == nil then
            if stored and stored[k] ~= nil then
                out[k] = stored[k]
            else
                out[k] = d.default
            end
        end
    end
    return out
end

-- Names of the settings whose values differ between a and b.
local function settings_changed(a, b)
    local cjson = require "cjson"
    local out = {}
    for k, v in pairs(a) do
        local w = b[k]
        if type(v) == "table" and type(w) == "table" then
            if cjson.encode(v) ~= cjson.encode(w) then
                out[#out + 1] = k
            end
        elseif v ~= w then
            out[#out + 1] = k
        end
    end
    table.sort(out)
    return out
end

local ctx_mod = require "tp.ctx"
local cjson_encode = require("cjson").encode
local model = require "tp.model"
local types = require "tp.types"
local views = require "tp.views"
local ctx

function M.ctx()
    ctx.turn = turn.turn
    ctx.state = model.rsstate   -- a rollback reloads it as a new table
    return ctx
end

-- A new player: a personal board with a welcome message, the ruleset's
-- join hook, and a message to everyone else. Runs inside the batch that
-- stores the account.
local function player_joined(player, batch)
    local b = model.new_board { name = "Personal board",
                                description = "Messages for " .. player.name,
                                owner = player.id }
    player.board = b.id
    model.player_changed(player)     -- stamps its modtime (PlayerIDs from)
    model.post(b, { subject = "Welcome", body = "Welcome to " ..
                    cfg.game_longname .. ", " .. player.name .. ".",
                    turn = turn.turn, references = {} })
    if ruleset.player_joined then
        ruleset.player_joined(M.ctx(), player)
    end
    for _, other in ipairs(accounts.players()) do
        if other.id ~= player.id then
            M.ctx():message(other.id, "New player", player.name ..
                " has joined the game.", { { type = -4, id = 3 },
                                           { type = 7, id = player.id } })
        end
    end
    model.commit(batch)
end

-- Opens the game in the database, creating it on first start. Returns
-- true or nil, message (a database from another ruleset or a newer
-- format is refused, never overwritten).
function M.start(config, database, rs)
    cfg, db, ruleset = config, database, rs
    meta = db:get("meta/game")
    local created = false
    if not meta and db.raw:iter { limit = 1, keys_only = true }() then
        return nil, string.format("the database in %s/db holds data but no "
            .. "game record (meta/game): it is not a tpserver game, or it "
            .. "is damaged; nothing was changed in it", cfg.data)
    end
    if meta ~= nil and type(meta) ~= "table" then
        return nil, string.format("the database in %s/db is damaged: its "
            .. "game record (meta/game) is %s; nothing was changed in it",
            cfg.data, cjson_encode(meta))
    end
    if meta then
        if (meta.format or 0) > db_mod.FORMAT then
            return nil, string.format("the data directory %s was written "
                .. "by a newer tpserver (format %d; this one reads %d)",
                cfg.data, meta.format, db_mod.FORMAT)
        end
        if meta.ruleset ~= rs.folder then
            return nil, string.format("the data directory %s holds a %s "
                .. "game; start with --ruleset %s, or use another --data",
                cfg.data, tostring(meta.ruleset), tostring(meta.ruleset))
        end
        turn = db:get("meta/turn") or { turn = 0, finished = {} }
    else
        meta = { format = db_mod.FORMAT, ruleset = rs.folder,
                 ruleset_version = rs.version, created = os.time() }
        -- Turns are numbered from 0, as tpserver-cpp does and clients
        -- expect (PROTOCOL.md 13).
        turn = { turn = 0, started = os.time(), finished = {} }
        created = true
    end
    turn.finished = turn.finished or {}
    local stored_ends_at = turn.ends_at
    paused = db:get("meta/pause")
    model.history_turns = cfg.history_turns
    model.turn = turn.turn
    local settings
    local ok, err = pcall(function()
        types.build(rs, meta.created)
        model.load(db)
        accounts.init(db, cfg)
        settings = ruleset_settings(rs, cfg.ruleset_settings, meta.settings)
        ctx = ctx_mod.new { name = rs.name, settings = settings,
                            turn = turn.turn }
        views.init(rs, ctx)
    end)
    if not ok then
        return nil, tostring(err)
    end
    -- Everything was read and found good: from here on the game writes.
    ok, err = db:accept()
    if not ok then
        return nil, err
    end
    -- A game of an older format is converted now that it was found good;
    -- the working set is read again from the converted database.
    if not created and require("tp.migrate").run(db, meta, turn,
                                                 db_mod.FORMAT, log) then
        model.turn = turn.turn
        ctx.turn = turn.turn
        model.load(db)
        accounts.init(db, cfg)
    end
    if not created then
        local changed = settings_changed(settings, meta.settings or {})
        if #changed > 0 then
            if meta.settings then
                log.warning("game", "ruleset settings changed from those "
                            .. "stored with the game: %s",
                            table.concat(changed, ", "))
            end
            meta.settings = settings
        end
        if meta.ruleset_version ~= rs.version then
            log.warning("game", "the game was run with %s %s until now; "
                        .. "it goes on with %s", rs.name,
                        tostring(meta.ruleset_version), rs.version)
            meta.ruleset_version = rs.version
            changed[#changed + 1] = "(version)"
        end
        if #changed > 0 then
            db:put("meta/game", meta)
        end
    end
    meta.settings = settings
    accounts.on_join = player_joined
    accounts.on_join_failed = function()
        model.rollback()
    end
    model.on_rollback = function()
        accounts.init(db, cfg)
    end
    if created then
        local batch = db:batch()
        if rs.setup then
            ok, err = xpcall(function() rs.setup(M.ctx()) end,
                             debug.traceback)
            if not ok then
                return nil, "ruleset " .. rs.name .. ": creating the game "
                            .. "failed: " .. tostring(err)
            end
        end
        model.commit(batch)
        M.arm_timer()
        stored_ends_at = turn.ends_at
        batch:put("meta/game", meta):put("meta/turn", turn):commit(true)
        model.committed()
        created = false
        log.info("game", "new %s game created in %s (%d objects)", rs.name,
                 cfg.data, #model.object_ids())
    end
    M.arm_timer()
    if turn.ends_at ~= stored_ends_at then
        db:put("meta/turn", turn)     -- the time left survives a restart
    end
    -- Killed while processing a turn every player had finished: the turn
    -- was not stored, so it is made again.
    if (cfg.turn_mode == "players_finished" or cfg.turn_mode == "threshold")
       and accounts.count() > 0 and
       #M.waiting() == 0 and not paused then
        log.info("game", "every player had finished turn %d: ending it",
                 turn.turn)
        core.timer(0, 0, function()
            if #M.waiting() == 0 then
                M.end_turn("all")
            end
        end)
    end
    return true
end

function M.ruleset()
    return ruleset
end

function M.db()
    return db
end

-- The universe as it was at the end of turn n (see model.objects_at).
function M.objects_at(n)
    return model.objects_at(n, turn.turn)
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
    for _, p in ipairs(accounts.players()) do
        -- Players out of the game (eliminated, spectators) are not
        -- waited for.
        if p.alive ~= false and not turn.finished[tostring(p.id)] then
            list[#list + 1] = p.id
        end
    end
    waiting_cache, waiting_turn, waiting_version = list, turn,
                                                   accounts.version
    return list
end

function M.time_frame(reason)
    return proto.frame("TimeRemaining", {
        time = M.time_remaining(), reason = reason, turn = turn.turn,
        turnname = turn.name or "", waiting = M.waiting(),
    })
end

-- Pushes a TimeRemaining frame to every logged-in player.
function M.broadcast_time(reason, time)
    local frame = M.time_frame(reason)
    if time then
        frame.time = time
    end
    for conn in pairs(M.sessions) do
        if not conn.closed then
            conn:send(frame)
        end
    end
end

-- How long a new turn lasts (seconds; 0 = no deadline). In threshold
-- mode a turn starts with the long timer (turn_length_under_threshold),
-- or with the short one when the threshold is 0 ("always over").
local function initial_length()
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

local warn_timer    -- pushes the advance warning (reason TimerWarning)

function M.arm_timer()
    if timer then
        timer:stop()
        timer = nil
    end
    if warn_timer then
        warn_timer:stop()
        warn_timer = nil
    end
    if paused or (not turn.ends_at and initial_length() == 0) then
        turn.ends_at = nil
        return
    end
    turn.ends_at = turn.ends_at or (core.now() + initial_length())
    local left = turn.ends_at - core.now()
    timer = core.timer(math.max(0, left * 1000), 0, function()
        timer = nil
        M.end_turn("timer")
    end)
    -- The advance warning, turn_warning seconds before the end.
    local warn = cfg.turn_warning
    if warn > 0 and left > warn then
        warn_timer = core.timer((left - warn) * 1000, 0, function()
            warn_timer = nil
            M.broadcast_time(proto.REASON.TimerWarning, warn)
        end)
    end
end

-- Threshold mode: once turn_player_threshold percent of the players still
-- in the game have finished, the turn is cut to
-- turn_length_over_threshold from now (never lengthened); everyone
-- finished ends it at once. Returns true when it acted.
local function check_threshold(waiting)
    local alive = 0
    for _, p in ipairs(accounts.players()) do
        if p.alive ~= false then
            alive = alive + 1
        end
    end
    if alive == 0 then
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
    db:put("meta/turn", turn)
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
    types.take_running_hook()
    model.rollback()
    accounts.init(db, cfg)
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
    return false
end

-- Ends the turn now. why: "timer", "all" (everyone finished), "admin".
-- The ruleset's turn runs over the working set; its whole result is one
-- batch, written with sync. If it raises, nothing of it is kept (the
-- working set is reloaded from the database) and the turn is not advanced.
function M.end_turn(why)
    local reason = why == "all" and proto.REASON.AllFinished
                   or proto.REASON.EndOfTurnStarted
    log.info("turn", "turn ending", { turn = turn.turn, reason = why })
    M.broadcast_time(reason, 0)
    local started = core.hrtime()
    local next_turn = turn.turn + 1
    -- Under the turn's own time limit (a request's limit, when a
    -- FinishedTurn ends the turn, waits meanwhile).
    local ok, err = core.time_limit(cfg.turn_time_limit, "turn", function()
        local c = M.ctx()
        c.turn = next_turn
        -- Players changed without ctx:player_changed are found too.
        local before = {}
        for _, p in ipairs(accounts.players()) do
            before[p] = cjson_encode(p)
        end
        if ruleset.turn then
            ruleset.turn(c)
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
    local new_turn = { turn = next_turn, started = os.time(), finished = {} }
    if initial_length() > 0 then
        new_turn.ends_at = core.now() + initial_length()
    end
    local commit_started = core.hrtime()
    local batch = db:batch()
    local n
    ok, err = pcall(function()
        n = model.commit(batch, nil, new_turn.turn)
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
    M.last_commit_ms = core.hrtime() - commit_started
    M.last_turn_ms = core.hrtime() - started
    turn_seconds:observe(M.last_turn_ms / 1000)
    log.info("turn", "turn started", { turn = turn.turn, records = n,
             processing_ms = M.last_turn_ms })
    M.arm_timer()
    M.broadcast_time(proto.REASON.TimerStarted)
    return true
end

-- Records that player id has finished the turn (idempotent).
function M.finished_turn(id)
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
    if paused then
        M.broadcast_time(proto.REASON.TimerWarning)
    elseif cfg.turn_mode == "players_finished" and #waiting == 0 then
        M.end_turn("all")
    elseif cfg.turn_mode == "threshold" and check_threshold(waiting) then
        return
    else
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
    db:batch():delete("meta/pause"):put("meta/turn", turn):commit(true)
    log.info("turn", "turns resumed", { turn = turn.turn,
             remaining = M.time_remaining() })
    M.broadcast_time(proto.REASON.TimerStarted)
    if (cfg.turn_mode == "players_finished" or cfg.turn_mode == "threshold")
       and accounts.count() > 0 and
       #M.waiting() == 0 then
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
    db:put("meta/turn", turn)
    M.broadcast_time(proto.REASON.TimerStarted)
end

-- The running turn's record (read only): turn, started, ends_at, finished.
function M.turn_record()
    return turn
end

-- Puts a reloaded ruleset in place of the running one. The caller has
-- checked that its object and order types are those of the game; their
-- hooks (turn, order execute/check, visibility ...) are the new ones from
-- now on.
function M.swap_ruleset(rs)
    rs.folder = ruleset.folder
    local ok, err = pcall(types.build, rs, meta.created)
    if not ok then
        types.build(ruleset, meta.created)
        error(err, 0)
    end
    views.init(rs, ctx)
    ruleset = rs
end

function M.stop()
    if timer then
        timer:stop()
        timer = nil
    end
end

-- The Game frame describing this server (PROTOCOL.md 7.2).
function M.game_frame()
    local conns = {}
    local game_type = require("tp.listeners").GAME_TYPE
    for _, l in ipairs(cfg.listeners) do
        conns[#conns + 1] = { type = game_type[l.kind] or l.kind, dns = "",
                              ip = l.host, port = l.port }
    end
    local params = {
        { id = 8, strval = cfg.game_name, intval = 0 },
        { id = 7, strval = cfg.game_longname, intval = 0 },
        { id = 1, strval = "", intval = accounts.count() },
        { id = 2, strval = "", intval = 0 },
        { id = 9, strval = "", intval = turn.turn },
    }
    local n = 0
    for _ in pairs(M.sessions) do
        n = n + 1
    end
    params[4].intval = n
    if cfg.admin_email ~= "" then
        params[#params + 1] = { id = 4, strval = cfg.admin_email, intval = 0 }
    end
    if cfg.game_comment ~= "" then
        params[#params + 1] = { id = 5, strval = cfg.game_comment,
                                intval = 0 }
    end
    if turn.ends_at then
        params[#params + 1] = { id = 6, strval = "",
                                intval = math.floor(turn.ends_at) }
        params[#params + 1] = { id = 10, strval = "",
                                intval = cfg.turn_length }
    end
    return proto.frame("Game", {
        name = cfg.game_name, key = "", tp = { "0.3", "0.4" },
        server = core.version, sertype = "tpserver",
        rule = ruleset.name, rulever = ruleset.version,
        connections = conns, parameters = params,
        mediabase = cfg.media_base, ctime = meta.created,
    })
end

return M
