-- tp.service: running as a service. Used by boot.lua:
--
--   resolve(cfg, args)     defaults that depend on how the server runs
--   command(args, cfg)     --stop, --status, --stats: returns an exit status
--   prepare(cfg, args, path)  absolute paths, log levels
--   lock(cfg)              the pid file and the data directory lock
--   open_logs(cfg)         the log sinks of the configuration
--   started(cfg, db)       SIGHUP reloader, statistics file, SIGUSR1
--   stop()                 on a clean stop (the pid file goes in C, last)
--
-- Paths in the configuration are relative to the folder the server was
-- started from; they are made absolute before the daemon leaves it.
--
-- SIGHUP re-reads the configuration file with the same command line (its
-- flags and --set items still win) and applies what can change while the
-- server runs (LIVE below: logging, the game's listing, accounts, turn
-- settings from the next turn, output limits, statistics). A changed key
-- that needs a restart is logged as such and keeps its running value.

local config = require "tp.config"
local core = require "tp.core"
local log = require "tp.log"
local stats = require "tp.stats"
local sys = require "tp.sys"

local M = {}

-- Keys a reload applies. Other modules may add theirs (M.live[k] = true)
-- when they read cfg.k afresh each time they use it.
M.live = {
    log_level = true, log_modules = true, log_stderr = true,
    log_file = true, log_syslog = true, log_syslog_facility = true,
    log_syslog_ident = true, log_syslog_socket = true,
    game_name = true, game_longname = true, game_comment = true,
    admin_email = true, media_base = true,
    allow_account_creation = true, auto_create_accounts = true,
    max_players = true, account_creation_limit = true,
    account_creation_total = true, account_creation_window = true,
    turn_mode = true, turn_length = true, turn_warning = true,
    turn_player_threshold = true, turn_length_under_threshold = true,
    turn_length_over_threshold = true,
    turn_schedule = true, turn_timezone = true,
    idle_turns = true, idle_action = true, idle_remove_turns = true,
    backup_every_turns = true, backup_keep = true,
    max_output = true, client_write_timeout = true,
    request_time_limit = true, turn_time_limit = true,
    idle_timeout = true, frame_timeout = true,
    max_connections_per_address = true, max_output_total = true,
    http_max_header = true, http_max_body = true,
    http_request_timeout = true, http_keepalive_timeout = true,
    web_spectators = true, web_session_timeout = true,
    web_admin_session_timeout = true,
    stats_file = true, stats_interval = true,
    metaserver_interval = true, metaserver_public_host = true,
    metaserver_public_port = true,
    notify = true, notify_retries = true, notify_retry_delay = true,
    notify_timeout = true, notify_queue = true, notify_reminder = true,
    notify_email_default = true, mail_from = true, sendmail_path = true,
}

-- Keys holding paths (made absolute; "" stays "").
local PATHS = { "data", "pid_file", "log_file", "stats_file",
                "log_syslog_socket", "tls_cert", "tls_key", "ssh_host_key",
                "ssh_authorized_keys", "sendmail_path" }

local start_dir = sys.cwd() or "."
local state = {
    args = nil,        -- the command line (for reloads)
    path = nil,        -- the configuration file, absolute, or nil
    cfg = nil,         -- the running configuration (shared by all modules)
    loaded = nil,      -- what was read, before paths were made absolute
    db = nil,          -- tp.db handle
    timer = nil,       -- statistics file timer
    stats_seq = 0,     -- statistics file writes
}

local copy = config.copy

local function equal(a, b)
    if type(a) ~= "table" or type(b) ~= "table" then
        return a == b
    end
    for k, v in pairs(a) do
        if not equal(v, b[k]) then
            return false
        end
    end
    for k in pairs(b) do
        if a[k] == nil then
            return false
        end
    end
    return true
end

-- path made absolute (from the folder the server was started in) and
-- normalised (tp.config.normalise: no "//", "/./" or "/x/../"). nil and
-- "" stay.
function M.absolute(path)
    return config.normalise(path, start_dir)
end

-- Fills the keys whose default depends on the way the server runs.
function M.resolve(cfg, args)
    local daemon = args.daemon or
                   (not args.foreground and not args.command and
                    not args.check_config)
    if args.check_config then
        daemon = not args.foreground
    end
    if cfg.pid_file == nil then
        cfg.pid_file = cfg.data .. "/tpserver.pid"
    end
    if cfg.log_stderr == nil then
        cfg.log_stderr = not daemon
    end
    if cfg.log_file == nil then
        cfg.log_file = daemon and (cfg.data .. "/tpserver.log") or ""
    end
    if cfg.stats_file == nil then
        cfg.stats_file = cfg.data .. "/tpserver.prom"
    end
    return cfg
end

-- ------------------------------------------------------------ commands

-- The data directory's lock file: held while a server uses the directory.
function M.lock_path(cfg)
    return M.absolute(cfg.data) .. "/tpserver.lock"
end

local STOP_WAIT = 60       -- seconds --stop waits for the server to go
local STATS_WAIT = 5       -- seconds --stats waits for a fresh file

local function say(fmt, ...)
    io.stdout:write(string.format(fmt, ...), "\n")
    io.stdout:flush()
end

local function complain(fmt, ...)
    io.stderr:write("tpserver: ", string.format(fmt, ...), "\n")
end

local function read_file(path)
    local f = io.open(path, "rb")
    if not f then
        return nil
    end
    local text = f:read("*a")
    f:close()
    return text
end

local function stats_seq(text)
    return tonumber(text and text:match("\ntpserver_stats_writes_total (%d+)"))
           or -1
end

-- Where a running server is found: its pid file, else the lock of its
-- data directory (held while it runs, and holding its pid), so that a
-- command given only --data finds a server whose pid file is elsewhere
-- (the systemd unit's /run/tpserver/tpserver.pid). Returns
-- state ("running", "stale", "absent"), pid, the file that told, or nil
-- and a message when a file cannot be read (the server may be running).
local function find(cfg)
    local pid_file = M.absolute(cfg.pid_file)
    local lock_file = M.lock_path(cfg)
    local st, pid = sys.probe(pid_file)
    if st == "running" then
        return st, pid, pid_file
    end
    local lst, lpid = sys.probe(lock_file)
    if lst == "running" then
        return lst, lpid, lock_file
    end
    if not st then
        return nil, string.format("cannot read the pid file %s: %s",
                                  pid_file, pid)
    end
    if not lst then
        return nil, string.format("cannot read the data directory lock "
                                  .. "%s: %s", lock_file, lpid)
    end
    -- The lock file stays after a clean stop: only the pid file tells a
    -- crash ("stale").
    return st, pid, pid_file
end

local function where(file, cfg)
    if file == M.absolute(cfg.pid_file) then
        return "pid file " .. file
    end
    return "data directory lock " .. file
end

-- Runs --stop, --status or --stats. Returns the exit status.
function M.command(args, cfg)
    local pid_file = M.absolute(cfg.pid_file)
    local st, pid, file = find(cfg)
    if not st then
        complain("%s", pid)
        return 4
    end
    local running = st == "running"
    if args.command == "status" then
        if running then
            say("tpserver is running (pid %d, %s)", pid, where(file, cfg))
            if #(cfg.ssh_listeners or {}) > 0 then
                local path = require("tp.listeners").ssh_host_key(cfg)
                local fp, err = require("tp.ssh").fingerprint(path)
                say("SSH host key: %s", fp and (fp .. " (" .. path .. ")")
                    or err)
            end
            return 0
        elseif st == "stale" then
            say("tpserver is not running, but its pid file %s remains "
                .. "(pid %d): it did not stop cleanly", pid_file, pid)
            return 1
        end
        say("tpserver is not running (no pid file %s, data directory %s "
            .. "unlocked)", pid_file, M.absolute(cfg.data))
        return 3
    end
    if args.command == "stop" then
        if not running then
            say("tpserver is not running (no pid file %s, data directory %s "
                .. "unlocked)", pid_file, M.absolute(cfg.data))
            return 0
        end
        local ok, err = sys.kill(pid, "TERM")
        if not ok then
            complain("cannot signal pid %d: %s", pid, err)
            return 1
        end
        -- Stopped: neither file is held any more (the pid file goes
        -- last, in C; the data directory lock with it).
        local deadline = core.hrtime() + STOP_WAIT * 1000
        while core.hrtime() < deadline do
            local now, npid = find(cfg)
            if now ~= "running" or npid ~= pid then
                if not now then
                    complain("%s", npid)
                    return 4
                end
                say("tpserver stopped (pid %d)", pid)
                return 0
            end
            sys.sleep(50)
        end
        complain("pid %d did not stop within %d seconds", pid, STOP_WAIT)
        return 1
    end
    if args.command == "stats" then
        local path = M.absolute(cfg.stats_file)
        if path == "" then
            complain("stats_file is \"\" in the configuration: the server "
                     .. "writes no statistics")
            return 1
        end
        if not running then
            complain("tpserver is not running (pid file %s)", pid_file)
            return 3
        end
        local before = stats_seq(read_file(path))
        local ok, err = sys.kill(pid, "USR1")
        if not ok then
            complain("cannot signal pid %d: %s", pid, err)
            return 1
        end
        local deadline = core.hrtime() + STATS_WAIT * 1000
        while core.hrtime() < deadline do
            local text = read_file(path)
            if stats_seq(text) > before then
                io.stdout:write(text)
                io.stdout:flush()
                return 0
            end
            sys.sleep(20)
        end
        complain("pid %d did not write %s within %d seconds", pid, path,
                 STATS_WAIT)
        return 1
    end
    complain("unknown command %s", tostring(args.command))
    return 2
end

-- ------------------------------------------------------------ start-up

local function apply_levels(cfg)
    sys.log_clear_modules()
    core.set_log_level(cfg.log_level)
    for module, level in pairs(cfg.log_modules) do
        core.set_log_level(level, module)
    end
end

local function make_absolute(cfg)
    for _, k in ipairs(PATHS) do
        if type(cfg[k]) == "string" then
            cfg[k] = M.absolute(cfg[k])
        end
    end
    for _, l in ipairs(type(cfg.listeners) == "table" and cfg.listeners
                       or {}) do
        for _, k in ipairs { "cert", "key" } do
            if type(l) == "table" and type(l[k]) == "string" then
                l[k] = M.absolute(l[k])
            end
        end
    end
end

-- The path keys of cfg made absolute and normalised (in place).
M.absolute_paths = make_absolute

-- Remembers the command line, makes paths absolute, sets the log levels.
function M.prepare(cfg, args, path)
    state.args = args
    state.path = path and M.absolute(path)
    -- A reload finds the same file after the daemon has left its folder.
    args.config = args.config and M.absolute(args.config)
    state.cfg = cfg
    state.loaded = copy(cfg)
    make_absolute(cfg)
    apply_levels(cfg)
end

-- Takes the pid file and the data directory lock, or raises a message for
-- the terminal naming the process that holds them.
function M.lock(cfg)
    local ok, err, holder = sys.lock(cfg.pid_file, true)
    if not ok then
        if holder then
            error(string.format("already running as pid %d (pid file %s)",
                  holder, cfg.pid_file), 0)
        end
        error("cannot take the pid file: " .. err, 0)
    end
    local lock_path = M.lock_path(cfg)
    ok, err, holder = sys.lock(lock_path, false)
    if not ok then
        if holder then
            error(string.format("the data directory %s is in use by another "
                  .. "tpserver (pid %d, lock file %s)", cfg.data, holder,
                  lock_path), 0)
        end
        error("cannot lock the data directory: " .. err, 0)
    end
end

local function sinks(cfg)
    return { stderr = cfg.log_stderr, file = cfg.log_file,
             syslog = cfg.log_syslog, facility = cfg.log_syslog_facility,
             ident = cfg.log_syslog_ident, socket = cfg.log_syslog_socket }
end

-- Opens the log sinks, or raises (a log file that cannot be opened).
function M.open_logs(cfg)
    local ok, err = sys.log_configure(sinks(cfg))
    if not ok then
        error(err, 0)
    end
    if not cfg.log_stderr and cfg.log_file == "" and not cfg.log_syslog then
        io.stderr:write("tpserver: warning: no log sink (log_stderr, "
                        .. "log_file and log_syslog are all off)\n")
    end
end

-- ------------------------------------------------------------ statistics

local stats_writes = stats.counter("tpserver_stats_writes_total",
                                   "Writes of the statistics file.")

-- Writes the statistics file (atomically: a new file renamed over it).
function M.write_stats()
    local path = state.cfg and state.cfg.stats_file
    if not path or path == "" then
        return
    end
    stats_writes:inc()
    local text = stats.render()
    local tmp = path .. ".tmp"
    local f, err = io.open(tmp, "wb")
    if not f then
        log.warning("stats", "cannot write file=%s: %s", tmp, err)
        return
    end
    f:write(text)
    f:close()
    local ok, rerr = os.rename(tmp, path)
    if not ok then
        log.warning("stats", "cannot rename %s: %s", tmp, tostring(rerr))
        os.remove(tmp)
    end
end

local function arm_stats_timer(cfg)
    if state.timer then
        state.timer:stop()
        state.timer = nil
    end
    if cfg.stats_file ~= "" and cfg.stats_interval > 0 then
        local ms = cfg.stats_interval * 1000
        state.timer = core.timer(ms, ms, M.write_stats)
    end
end

-- ------------------------------------------------------------ reload

-- The SIGHUP reloader: re-reads the file and applies what may change.
function M.reload()
    local new, err = config.load(state.args)
    if not new then
        error("configuration not reloaded: " .. tostring(err), 0)
    end
    M.resolve(new, state.args)
    local changed, restart = {}, {}
    local keys = {}
    for k in pairs(config.schema) do
        keys[#keys + 1] = k
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
        if not equal(new[k], state.loaded[k]) then
            if M.live[k] then
                changed[#changed + 1] = k
            else
                restart[#restart + 1] = k
            end
        end
    end
    -- The candidate running configuration: the live keys changed.
    local cfg = state.cfg
    local cand = {}
    for _, k in ipairs(changed) do
        cand[k] = copy(new[k])
    end
    make_absolute(cand)
    local merged = setmetatable({}, { __index = function(_, k)
        if cand[k] ~= nil then return cand[k] end
        return cfg[k]
    end })
    -- The bounds between keys hold for what will run: keys that only a
    -- restart changes (max_frame_size) keep their running values.
    local rok, rerr = config.check_rules(merged)
    if not rok then
        error("configuration not reloaded: " .. rerr, 0)
    end
    -- Sinks first: a log file that cannot be opened keeps everything.
    local ok, serr = sys.log_configure(sinks(merged))
    if not ok then
        error("configuration not reloaded: " .. serr, 0)
    end
    for _, k in ipairs(changed) do
        cfg[k] = cand[k]
        state.loaded[k] = copy(new[k])
    end
    apply_levels(cfg)
    core.set_limits { output_max = cfg.max_output,
                      stall_ms = cfg.client_write_timeout * 1000,
                      request_s = cfg.request_time_limit,
                      idle_ms = cfg.idle_timeout * 1000,
                      frame_ms = cfg.frame_timeout * 1000,
                      per_address = cfg.max_connections_per_address,
                      http_header_max = cfg.http_max_header,
                      http_body_max = cfg.http_max_body,
                      http_request_ms = cfg.http_request_timeout * 1000,
                      http_keepalive_ms = cfg.http_keepalive_timeout * 1000,
                      output_total = cfg.max_output_total }
    arm_stats_timer(cfg)
    for _, k in ipairs(restart) do
        log.warning("config", "key=%s changed in the file, but only a "
                    .. "restart applies it; the running value stays", k)
    end
    log.info("config", "reloaded", {
        file = state.path or "(none)",
        changed = #changed > 0 and table.concat(changed, ",") or "none",
        restart_needed = #restart > 0 and table.concat(restart, ",") or nil,
    })
end

-- After the listeners are up: reloader, statistics, start line.
function M.started(cfg, db)
    state.db = db
    local game = require "tp.game"
    local dbdir = cfg.data .. "/db"
    stats.collector(function(out)
        out("tpserver_turn", "The game's current turn.", "gauge",
            { { nil, game.turn_number() } })
        local n = 0
        for _ in pairs(game.sessions) do
            n = n + 1
        end
        out("tpserver_players_logged_in", "Players logged in now.",
            "gauge", { { nil, n } })
        local size = sys.dir_size(dbdir)
        if size then
            out("tpserver_leveldb_size_bytes", "Size of the LevelDB files.",
                "gauge", { { nil, size } })
        end
    end)
    require("tp.hup").add("config", M.reload)
    sys.on_signal("USR1", M.write_stats)
    arm_stats_timer(cfg)
    M.write_stats()
    if state.args.daemon then
        io.stderr:write(string.format("tpserver: running as a daemon, pid "
            .. "%d, pid file %s%s\n", sys.getpid(), cfg.pid_file,
            cfg.log_file ~= "" and (", log " .. cfg.log_file) or ""))
    end
    log.info("main", "started", { pid = sys.getpid(), pid_file = cfg.pid_file,
             config = state.path or "(none)",
             mode = state.args.daemon and "daemon" or "foreground" })
end

-- A clean stop: no more statistics (a stale file would mislead).
function M.stop()
    if state.timer then
        state.timer:stop()
        state.timer = nil
    end
    sys.on_signal("USR1", nil)
    local path = state.cfg and state.cfg.stats_file
    if path and path ~= "" then
        os.remove(path)
    end
end

return M
