-- tp.game: the hosted game: its identity (creating or opening the stored
-- game, its ruleset and settings, the Game frame), the ruleset's context
-- and the players connected to it. The turn engine is tp.turn; its public
-- functions are offered here too (game.end_turn, game.turn_number, ...).
--
-- State kept in the database:
--   meta/game -> { format, ruleset, ruleset_version, created, settings }
--   meta/turn, meta/pause: tp.turn's

local core = require "tp.core"
local db_mod = require "tp.db"
local log = require "tp.log"
local proto = require "tp.proto"
local accounts = require "tp.accounts"
local turn = require "tp.turn"

local M = {}

local meta          -- meta/game
M.sessions = {}     -- logged-in player connection -> player id

-- What the turn engine (tp.turn) shares with the game: cfg, db and
-- ruleset are set by M.start (ruleset also by M.swap_ruleset), ctx below.
local shared = { cfg = nil, db = nil, ruleset = nil,
                 sessions = M.sessions }
turn.attach(shared)

-- A ruleset setting's value against its declaration: type ("integer",
-- "number", "string", "boolean", "table"; default: the default's type),
-- min, max, choices.
local function check_setting(k, d, v)
    local want = d.type or (d.default ~= nil and type(d.default))
    if want == "integer" then
        if type(v) ~= "number" or v ~= math.floor(v) then
            error(string.format("ruleset setting '%s' must be a whole "
                                .. "number", k), 0)
        end
    elseif want == "list" then
        if type(v) ~= "table" then
            error(string.format("ruleset setting '%s' must be a list", k), 0)
        end
    elseif want and type(v) ~= want then
        error(string.format("ruleset setting '%s' must be a %s", k, want), 0)
    end
    if type(v) == "number" then
        if d.min and v < d.min then
            error(string.format("ruleset setting '%s' must be at least %s "
                                .. "(got %s)", k, tostring(d.min),
                                tostring(v)), 0)
        end
        if d.max and v > d.max then
            error(string.format("ruleset setting '%s' must be at most %s "
                                .. "(got %s)", k, tostring(d.max),
                                tostring(v)), 0)
        end
    end
    if d.choices then
        for _, c in ipairs(d.choices) do
            if c == v then
                return
            end
        end
        local names = {}
        for i, c in ipairs(d.choices) do
            names[i] = tostring(c)
        end
        error(string.format("ruleset setting '%s' must be one of %s (got "
                            .. "%s)", k, table.concat(names, ", "),
                            tostring(v)), 0)
    end
end

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
        check_setting(k, d, v)
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

-- Raises the first problem of the given ruleset_settings for rs
-- (--check-config).
function M.check_settings(rs, given)
    ruleset_settings(rs, given, nil)
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
    ctx.turn = turn.turn_number()
    ctx.state = model.rsstate   -- a rollback reloads it as a new table
    return ctx
end
shared.ctx = M.ctx

-- A new player: a personal board with a welcome message, the ruleset's
-- join hook, and a message to everyone else (not when the accounts of
-- the last game join a new one: readmitted). Runs inside the batch that
-- stores the account.
local function player_joined(player, batch, readmitted)
    local b = model.new_board { name = "Personal board",
                                description = "Messages for " .. player.name,
                                owner = player.id }
    player.board = b.id
    model.player_changed(player)     -- stamps its modtime (PlayerIDs from)
    model.post(b, { subject = "Welcome", body = "Welcome to " ..
                    shared.cfg.game_longname .. ", " .. player.name .. ".",
                    turn = turn.turn_number(), references = {} })
    if shared.ruleset.player_joined then
        shared.ruleset.player_joined(M.ctx(), player)
    end
    for _, other in ipairs(accounts.players()) do
        if other.id ~= player.id and not readmitted then
            M.ctx():message(other.id, "New player", player.name ..
                " has joined the game.", { { type = -4, id = 3 },
                                           { type = 7, id = player.id } })
        end
    end
    model.commit(batch)
    require("tp.events").emit("player_joined", { player = player.id,
                                                  name = player.name })
end

-- Opens the game in the database, creating it on first start. Returns
-- true or nil, message (a database from another ruleset or a newer
-- format is refused, never overwritten).
function M.start(config, database, rs)
    local cfg, db = config, database
    local ai_refused = require("tp.ai").check(cfg, rs)
    if ai_refused then
        return nil, ai_refused
    end
    shared.cfg, shared.db, shared.ruleset = cfg, db, rs
    meta = db:get("meta/game")
    local created = false
    -- A new game asked for (tp.newgame): the accounts of the last one may
    -- be there, waiting to join it.
    local newgame = not meta and db:get("meta/newgame")
    if type(newgame) == "table" and newgame.ruleset and
       newgame.ruleset ~= rs.folder then
        return nil, string.format("the data directory %s waits for a new "
            .. "%s game: start with --ruleset %s", cfg.data,
            tostring(newgame.ruleset), tostring(newgame.ruleset))
    end
    if not meta and not newgame and
       db.raw:iter { limit = 1, keys_only = true }() then
        return nil, string.format("the database in %s/db holds data but no "
            .. "game record (meta/game): it is not a tpserver game, or it "
            .. "is damaged; nothing was changed in it", cfg.data)
    end
    if meta ~= nil and type(meta) ~= "table" then
        return nil, string.format("the database in %s/db is damaged: its "
            .. "game record (meta/game) is %s; nothing was changed in it",
            cfg.data, cjson_encode(meta))
    end
    local record
    local new_game = not meta
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
        record = db:get("meta/turn") or { turn = 0, finished = {} }
    else
        meta = { format = db_mod.FORMAT, ruleset = rs.folder,
                 ruleset_version = rs.version, created = os.time() }
        -- Turns are numbered from 0, as tpserver-cpp does and clients
        -- expect (PROTOCOL.md 13).
        record = { turn = 0, started = os.time(), finished = {} }
        created = true
    end
    record = turn.open(record)
    local stored_ends_at = record.ends_at
    model.history_turns = cfg.history_turns
    model.turn = record.turn
    local settings
    local ok, err = pcall(function()
        types.build(rs, meta.created)
        model.load(db)
        accounts.init(db, cfg)
        settings = ruleset_settings(rs, cfg.ruleset_settings, meta.settings)
        ctx = ctx_mod.new { name = rs.name, settings = settings,
                            turn = record.turn }
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
    if not created and require("tp.migrate").run(db, meta, record,
                                                 db_mod.FORMAT, log) then
        model.turn = record.turn
        ctx.turn = record.turn
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
    -- The ruleset's join_allowed(ctx, name) -> ok, why may refuse new
    -- players (a cap of its own, a phase of the game). A failing hook
    -- refuses too, with the error in the log.
    accounts.join_refused = function(name)
        local hook = shared.ruleset.join_allowed
        if not hook then
            return nil
        end
        local why
        local jok, allowed = require("tp.core").time_limit(
            cfg.request_time_limit, "join_allowed", function()
                local a, w = hook(M.ctx(), name)
                why = w
                return a
            end)
        if not jok then
            log.error("game", "the ruleset's join_allowed failed: %s",
                      tostring(allowed))
            return "the ruleset could not decide whether you may join "
                   .. "(a bug in the ruleset; the server log has the "
                   .. "details)"
        end
        if allowed then
            return nil
        end
        return why or "the game takes no new players"
    end
    accounts.on_join_failed = function()
        model.rollback()
    end
    model.on_rollback = function()
        accounts.init(db, cfg)
        M.opened()
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
        if type(newgame) == "table" then
            if newgame.keep_accounts then
                local n = accounts.readmit(batch)
                log.info("game", "%d players of the last game joined the "
                         .. "new one", n)
            end
            batch:delete("meta/newgame")
        end
        turn.name_current(M.ctx())
        turn.arm_timer()
        stored_ends_at = record.ends_at
        batch:put("meta/game", meta):put("meta/turn", record):commit(true)
        model.committed()
        created = false
        log.info("game", "new %s game created in %s (%d objects)", rs.name,
                 cfg.data, #model.object_ids())
    end
    M.opened()
    if rs.turn_name then
        turn.name_current(M.ctx())
    end
    turn.start_clock(stored_ends_at)
    -- Computer players: a new game's ai_players join; those who have not
    -- finished the running turn play it (tp.ai).
    require("tp.ai").open(new_game)
    return true
end

function M.ruleset()
    return shared.ruleset
end

function M.config()
    return shared.cfg
end

function M.db()
    return shared.db
end

-- The universe as it was at the end of turn n (see model.objects_at).
function M.objects_at(n)
    return model.objects_at(n, turn.turn_number())
end

-- Puts a reloaded ruleset in place of the running one. The caller has
-- checked that its object and order types are those of the game; their
-- hooks (turn, order execute/check, visibility ...) are the new ones from
-- now on.
function M.swap_ruleset(rs)
    local ruleset = shared.ruleset
    rs.folder = ruleset.folder
    local ok, err = pcall(types.build, rs, meta.created)
    if not ok then
        types.build(ruleset, meta.created)
        error(err, 0)
    end
    views.init(rs, ctx)
    shared.ruleset = rs
    M.opened()
end

-- The ruleset's opened(ctx) hook: the game was opened, or its working set
-- read again from the database (a failed request or turn thrown away, a
-- reloaded ruleset). The ruleset rebuilds there what it derives from the
-- game's state. A failure is logged; the game goes on.
function M.opened()
    local rs = shared.ruleset
    if not (rs and rs.opened) then
        return
    end
    local ok, err = require("tp.core").time_limit(
        shared.cfg.request_time_limit, "opened",
        function() rs.opened(M.ctx()) end)
    if not ok then
        log.error("game", "the ruleset's opened hook failed: %s",
                  tostring(err))
    end
end

-- The Game frame describing this server (PROTOCOL.md 7.2).
function M.game_frame()
    local cfg, record = shared.cfg, turn.turn_record()
    local conns = {}
    local game_type = require("tp.listeners").GAME_TYPE
    for _, l in ipairs(cfg.listeners) do
        if game_type[l.kind] then   -- TP listeners only, not the web's
            conns[#conns + 1] = { type = game_type[l.kind], dns = "",
                                  ip = l.host, port = l.port }
        end
    end
    local params = {
        { id = 8, strval = cfg.game_name, intval = 0 },
        { id = 7, strval = cfg.game_longname, intval = 0 },
        { id = 1, strval = "", intval = accounts.count() },
        { id = 2, strval = "", intval = 0 },
        { id = 9, strval = "", intval = record.turn },
        { id = 3, strval = "", intval = model.object_count() },
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
    if record.ends_at then
        params[#params + 1] = { id = 6, strval = "",
                                intval = math.floor(record.ends_at) }
        -- A scheduled turn's length is its own (turn_schedule).
        local length = cfg.turn_length
        if #cfg.turn_schedule > 0 and record.started then
            length = math.max(0, math.floor(record.ends_at - record.started))
        end
        params[#params + 1] = { id = 10, strval = "", intval = length }
    end
    local ruleset = shared.ruleset
    return proto.frame("Game", {
        name = cfg.game_name, key = "", tp = { "0.3", "0.4" },
        server = core.version, sertype = "tpserver",
        rule = ruleset.name, rulever = ruleset.version,
        connections = conns, parameters = params,
        mediabase = cfg.media_base, ctime = meta.created,
    })
end

-- The turn engine's public functions (tp.turn), where callers have always
-- found them.
for _, name in ipairs { "turn_number", "time_remaining", "waiting",
                        "time_frame", "broadcast_time", "arm_timer",
                        "end_turn", "finished_turn", "paused", "pause",
                        "resume", "reset_timer", "turn_record", "stop",
                        "over", "player_seen", "ends_at_text" } do
    M[name] = turn[name]
end

-- Stopping the game stops its computer players too.
function M.stop()
    turn.stop()
    require("tp.ai").stop()
end

-- The last turn's timings (last_turn_ms, last_commit_ms) are set by the
-- engine as each turn ends, so they are read from it.
setmetatable(M, { __index = function(_, k)
    if k == "last_turn_ms" or k == "last_commit_ms" then
        return turn[k]
    end
end })

return M
