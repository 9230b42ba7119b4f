-- tp.config: reading, overriding and checking the configuration.
--
-- The configuration file (tpserver.lua) is a Lua chunk run in a small
-- sandbox; it returns a table (or sets globals, which are collected).
-- Every key has a type and a default here; an unknown key or a wrong type
-- is a start-up error naming the key. Command-line flags and --set
-- key=value override the file.

local M = {}

-- The schema: every key the server reads, with its type and default.
-- Keep tpserver.lua's comments and the README in step with this table.
M.schema = {
    data = { type = "string", default = "var",
             doc = "data directory (the LevelDB database)" },
    bind = { type = "string", default = "127.0.0.1",
             doc = "address of the default TP listener" },
    port = { type = "integer", default = 6923, min = 1, max = 65535,
             doc = "port of the default TP listener" },
    listeners = { type = "table", default = false,
                  doc = "explicit listener list { { kind =, host =, port = "
                        .. "[, cert =, key =] } }; replaces bind, port, "
                        .. "tls_port, http_port and https_port" },
    tls_port = { type = "integer", default = 0, min = 0, max = 65535,
                 doc = "port of a TLS (tps) listener on bind; 0: none" },
    http_port = { type = "integer", default = 0, min = 0, max = 65535,
                  doc = "port of an HTTP tunnel (http) listener on bind; "
                        .. "0: none" },
    https_port = { type = "integer", default = 0, min = 0, max = 65535,
                   doc = "port of an HTTPS tunnel (https) listener on "
                         .. "bind; 0: none" },
    web_port = { type = "integer", default = 8080, min = 0, max = 65535,
                 doc = "port of the web side (web: HTTP, docs/http.md) on "
                       .. "bind; 0: none" },
    webs_port = { type = "integer", default = 0, min = 0, max = 65535,
                  doc = "port of the web side over HTTPS (webs) on bind; "
                        .. "0: none" },
    web_root = { type = "string", default = "",
                 doc = "folder of the web page's files; \"\": the web/ "
                       .. "folder shipped with the server" },
    web_spectators = { type = "boolean", also = { "after_end" },
                       default = false,
                       doc = "visitors may watch the whole universe: "
                             .. "false, true, or \"after_end\" (once the "
                             .. "game has ended)" },
    web_session_timeout = { type = "number", default = 86400, min = 60,
                            max = 31536000,
                            doc = "seconds a web login lasts unused" },
    web_admin_session_timeout = { type = "number", default = 3600,
                                  min = 60, max = 604800,
                                  doc = "seconds a login to the control "
                                        .. "UI (/admin) lasts unused" },
    http_max_header = { type = "integer", default = 16384, min = 1024,
                        max = 1048576,
                        doc = "bytes of an HTTP request line and headers "
                              .. "(more: 431)" },
    http_max_body = { type = "integer", default = 1048576, min = 0,
                      max = 1073741824,
                      doc = "bytes of an HTTP request body (more: 413)" },
    http_request_timeout = { type = "number", default = 30, min = 0,
                             max = 3600,
                             doc = "seconds an HTTP request may take to "
                                   .. "arrive once begun (then 408); 0: "
                                   .. "no limit" },
    http_keepalive_timeout = { type = "number", default = 60, min = 0,
                               max = 86400,
                               doc = "seconds an idle HTTP keep-alive "
                                     .. "connection stays open; 0: "
                                     .. "forever" },
    tls_cert = { type = "string", default = "",
                 doc = "certificate chain (PEM) of the TLS listeners; \"\": "
                       .. "a self-signed one, <data>/tls/cert.pem, made "
                       .. "when missing" },
    tls_key = { type = "string", default = "",
                doc = "private key (PEM, not encrypted) of tls_cert; \"\": "
                      .. "<data>/tls/key.pem" },
    tls_handshake_timeout = { type = "number", default = 10, min = 0.1,
                              max = 3600,
                              doc = "seconds a TLS handshake may take" },
    max_connections = { type = "integer", default = 4096, min = 1,
                        max = 1000000,
                        doc = "player connections at once; more get Fail "
                              .. "\"server full\" and are closed" },
    login_timeout = { type = "number", default = 120, min = 0, max = 86400,
                      doc = "seconds a connection may stay without logging "
                            .. "in (0: no limit)" },
    max_connections_per_address = { type = "integer", default = 1024,
                                    min = 0, max = 1000000,
                                    doc = "player connections from one "
                                          .. "address (0: no cap); more "
                                          .. "get a Fail and are closed" },
    idle_timeout = { type = "number", default = 3600, min = 0,
                     max = 31536000,
                     doc = "seconds a logged-in connection may send "
                           .. "nothing before it is closed (0: never)" },
    frame_timeout = { type = "number", default = 60, min = 0, max = 86400,
                      doc = "seconds a frame may stay half-sent before "
                            .. "the connection is closed (0: never)" },
    request_rate = { type = "number", default = 0, min = 0, max = 1000000,
                     doc = "requests a second one connection may send (0: "
                           .. "no limit); more wait their turn" },
    request_burst = { type = "integer", default = 100, min = 1,
                      max = 1000000,
                      doc = "requests a connection may send at once before "
                            .. "request_rate applies" },
    -- Nobody else is served while one request or turn runs, so these are
    -- what a game needs and not much more: the heaviest request measured,
    -- the object list of a 100,000-object MiniSec game, takes 0.1-0.3 s,
    -- and that game's turn about 0.25 s (README.md, Performance).
    request_time_limit = { type = "number", default = 2, min = 0,
                           max = 86400,
                           doc = "seconds one player request may take "
                                 .. "(Lua, and the C it calls) before it "
                                 .. "is stopped with a Fail (0: no limit)" },
    turn_time_limit = { type = "number", default = 60, min = 0,
                        max = 86400,
                        doc = "seconds the ruleset's turn may take (Lua, "
                              .. "and the C it calls) before it is stopped "
                              .. "and the turn fails (0: no limit)" },
    sync = { type = "boolean", default = false,
             doc = "flush every write to the device (power-loss safety); "
                   .. "off: writes reach the OS (process-crash safety)" },
    cache_size = { type = "integer", default = 8 * 1048576, min = 0,
                   max = 64 * 1073741824, doc = "LevelDB block cache, bytes" },
    write_buffer_size = { type = "integer", default = 4 * 1048576,
                          min = 65536, max = 1073741824,
                          doc = "LevelDB write buffer, bytes" },
    compression = { type = "string", default = "snappy",
                    oneof = { "snappy", "none" },
                    doc = "LevelDB block compression" },
    history_turns = { type = "integer", default = 10, min = 0,
                      max = 100000,
                      doc = "turns of object history kept" },
    ruleset = { type = "string", default = "minisec",
                doc = "ruleset folder under rulesets/" },
    ruleset_settings = { type = "table", default = {},
                         doc = "settings passed to the ruleset" },
    game_name = { type = "string", default = "tp",
                  doc = "short game name (clients log in as user@name)" },
    game_longname = { type = "string", default = "Thousand Parsec game",
                      doc = "long, human-readable game name" },
    game_comment = { type = "string", default = "",
                     doc = "comment shown in the game listing" },
    admin_email = { type = "string", default = "",
                    doc = "admin contact shown in the game listing" },
    media_base = { type = "string", default = "",
                   doc = "base URL of the game media for clients" },
    allow_account_creation = { type = "boolean", default = true,
                               doc = "clients may create accounts" },
    max_players = { type = "integer", default = 0, min = 0, max = 1000000,
                    doc = "players the game takes; past it clients cannot "
                          .. "create accounts (admins still can; 0: no "
                          .. "cap)" },
    account_creation_limit = { type = "integer", default = 3, min = 0,
                               max = 1000000,
                               doc = "new accounts clients from one address "
                                     .. "(an IPv6 /64) may create in "
                                     .. "account_creation_window; more get "
                                     .. "a Fail saying when to try again "
                                     .. "(admins are not limited; 0: no "
                                     .. "limit)" },
    account_creation_total = { type = "integer", default = 30, min = 0,
                               max = 1000000,
                               doc = "new accounts all clients together may "
                                     .. "create in account_creation_window "
                                     .. "(0: no limit)" },
    account_creation_window = { type = "number", default = 600, min = 1,
                                max = 7 * 86400,
                                doc = "seconds over which "
                                      .. "account_creation_limit and "
                                      .. "account_creation_total count "
                                      .. "(a sliding window)" },
    auto_create_accounts = { type = "boolean", default = false,
                             doc = "an unknown login name creates the account" },
    password_iterations = { type = "integer", default = 100000, min = 1000,
                            max = 10000000,
                            doc = "PBKDF2-SHA256 iterations for new passwords" },
    max_frame_size = { type = "integer", default = 1048576, min = 4096,
                       max = 64 * 1048576,
                       doc = "largest frame in bytes, header included" },
    max_output_total = { type = "integer", default = 268435456, min = 0,
                         max = 1099511627776,
                         doc = "bytes queued to all clients together; past "
                               .. "it, clients over a quarter of "
                               .. "max_output unread are disconnected (0: "
                               .. "no total)" },
    max_output = { type = "integer", default = 16 * 1048576,
                   min = 65536, max = 1024 * 1048576,
                   doc = "bytes queued to one client before it is dropped" },
    client_write_timeout = { type = "number", default = 60, min = 0.1,
                             max = 86400,
                             doc = "seconds a client may leave its replies "
                                   .. "unread (past the high mark)" },
    jit = { type = "boolean", default = false,
            doc = "LuaJIT's trace compiler (off: Debian 12's LuaJIT was "
                  .. "seen to corrupt its heap with it on; needs a "
                  .. "restart)" },
    log_level = { type = "string", default = "info",
                  oneof = { "error", "warning", "info", "debug", "trace" },
                  doc = "default log level" },
    log_modules = { type = "table", default = {},
                    doc = "per-module log levels, e.g. { net = 'debug' }" },
    -- Keys without a default take one that depends on how the server runs
    -- (tp.service.resolve): as a daemon or in the foreground (-f).
    log_stderr = { type = "boolean",
                   doc = "log to stderr (default: true with -f, false as "
                         .. "a daemon)" },
    log_file = { type = "string",
                 doc = "log file, reopened on SIGHUP; \"\" for none "
                       .. "(default: <data>/tpserver.log as a daemon, none "
                       .. "with -f)" },
    log_syslog = { type = "boolean", default = false,
                   doc = "log to syslog too" },
    log_syslog_facility = { type = "string", default = "daemon",
                            oneof = { "daemon", "user", "local0", "local1",
                                      "local2", "local3", "local4",
                                      "local5", "local6", "local7" },
                            doc = "syslog facility" },
    log_syslog_ident = { type = "string", default = "tpserver",
                         doc = "syslog tag of every message" },
    log_syslog_socket = { type = "string", default = "/dev/log",
                          doc = "the local syslog socket" },
    pid_file = { type = "string",
                 doc = "pid file, locked while the server runs "
                       .. "(default: <data>/tpserver.pid)" },
    stats_file = { type = "string",
                   doc = "statistics in Prometheus text format, rewritten "
                         .. "every stats_interval seconds and on SIGUSR1; "
                         .. "\"\" for none (default: <data>/tpserver.prom)" },
    stats_interval = { type = "number", default = 10, min = 0, max = 86400,
                       doc = "seconds between writes of stats_file (0: only "
                             .. "on SIGUSR1 and tpserver --stats)" },
    turn_player_threshold = { type = "integer", default = 0, min = 0,
                              max = 100,
                              doc = "threshold mode: percent of the players "
                                    .. "whose FinishedTurn cuts the turn short" },
    turn_length_under_threshold = { type = "integer", default = 600,
                                    min = 0, max = 365 * 86400,
                                    doc = "threshold mode: turn length until "
                                          .. "the threshold (0: no limit)" },
    turn_length_over_threshold = { type = "integer", default = 600,
                                   min = 0, max = 365 * 86400,
                                   doc = "threshold mode: seconds left once "
                                         .. "it is reached (0: end at once)" },
    turn_warning = { type = "integer", default = 60, min = 0,
                     max = 86400,
                     doc = "seconds before the end of a turn when clients "
                           .. "are warned (0: no warning)" },
    turn_mode = { type = "string", default = "players_finished",
                  oneof = { "fixed", "players_finished", "threshold",
                            "manual" },
                  doc = "when a turn ends" },
    turn_length = { type = "integer", default = 600, min = 0,
                    max = 365 * 86400,
                    doc = "seconds a turn lasts at most (0: no limit)" },
    -- Computer players (tp.ai; rulesets/README.md, "AI players").
    ai_players = { type = "integer", default = 0, min = 0, max = 64,
                   doc = "computer players added when the game is created "
                         .. "(the ruleset must have an ai.lua)" },
    ai_level = { type = "string", default = "normal",
                 doc = "level of the computer players of ai_players (one "
                       .. "of the ruleset AI's levels)" },
    ai_time_limit = { type = "number", default = 1, min = 0, max = 3600,
                      doc = "seconds one computer player may think per "
                            .. "turn (Lua, and the C it calls) before it "
                            .. "is stopped; its turn is finished with the "
                            .. "orders it gave (0: no limit)" },
    -- Turn schedules (tp.schedule, tp.tz).
    turn_schedule = { type = "table", default = {},
                      doc = "clock times turns end at, in turn_timezone: "
                            .. "{ \"20:00\" }, { \"08:00\", \"20:00\" }, "
                            .. "{ \"Mon-Fri 20:00\", \"Sat,Sun 12:00\" }; "
                            .. "replaces turn_length (and "
                            .. "turn_length_under_threshold); {}: none" },
    turn_timezone = { type = "string", default = "UTC",
                      doc = "IANA time zone of turn_schedule "
                            .. "(\"Europe/Berlin\"), from the tzdata "
                            .. "files" },
    -- Idle players (tp.idle).
    idle_turns = { type = "integer", default = 0, min = 0, max = 100000,
                   doc = "turns a player may neither log in nor finish "
                         .. "before being marked idle (no longer waited "
                         .. "for); 0: never" },
    idle_action = { type = "string", default = "none",
                    oneof = { "none", "remove", "ai" },
                    doc = "what happens to a player idle for "
                          .. "idle_remove_turns turns: \"none\"; "
                          .. "\"remove\" (out of the game; the ruleset's "
                          .. "player_removed hook decides about the "
                          .. "empire); \"ai\" (the ruleset's AI plays "
                          .. "the empire at ai_level until they log in "
                          .. "again)" },
    idle_remove_turns = { type = "integer", default = 3, min = 0,
                          max = 100000,
                          doc = "turns a player stays idle before "
                                .. "idle_action acts (0: at once)" },
    -- Autosave rotation (tp.autosave).
    backup_every_turns = { type = "integer", default = 0, min = 0,
                           max = 100000,
                           doc = "back the game up into "
                                 .. "<data>/backups/turn-N/ after every "
                                 .. "N-th turn; 0: never" },
    backup_keep = { type = "integer", default = 5, min = 1, max = 10000,
                    doc = "automatic backups kept (the oldest beyond are "
                          .. "removed)" },
    -- The admin console and the TP admin protocol (admin/).
    console = { type = "boolean", default = true,
                doc = "open the admin console socket (tpserver console)" },
    console_socket = { type = "string", default = "",
                       doc = "the console's Unix socket, mode 0600; \"\": "
                             .. "<data>/console.sock" },
    console_time_slice = { type = "number", default = 2, min = 0,
                           max = 86400,
                           doc = "seconds a console command may hold the "
                                 .. "server before it is stopped (0: no "
                                 .. "limit)" },
    admin_port = { type = "integer", default = 0, min = 0, max = 65535,
                   doc = "port of the TP admin protocol listener; 0: none" },
    admin_bind = { type = "string", default = "127.0.0.1",
                   doc = "address of the TP admin protocol listener" },
    -- The admin console over SSH (admin/ssh.lua, docs/ssh.md).
    ssh_port = { type = "integer", default = 0, min = 0, max = 65535,
                 doc = "port of the admin console over SSH on ssh_bind; 0: "
                       .. "none" },
    ssh_bind = { type = "string", default = "127.0.0.1",
                 doc = "address of the SSH console listener" },
    ssh_host_key = { type = "string", default = "",
                     doc = "the SSH host key (OpenSSH private key file); "
                           .. "\"\": <data>/ssh/host_ed25519_key, made on "
                           .. "first start" },
    ssh_authorized_keys = { type = "string", default = "",
                            doc = "an OpenSSH authorized_keys file whose "
                                  .. "keys may log in as any admin; \"\": "
                                  .. "none (admins' ssh_keys only)" },
    ssh_passwords = { type = "boolean", default = false,
                      doc = "let admins log in over SSH with their "
                            .. "password too (keys only when false)" },
    ssh_max_sessions = { type = "integer", default = 8, min = 1,
                         max = 1000,
                         doc = "SSH connections at once (more are "
                               .. "refused)" },
    ssh_login_timeout = { type = "integer", default = 60, min = 5,
                          max = 3600,
                          doc = "seconds an SSH client has to log in and "
                                .. "open its session" },
    ssh_idle_timeout = { type = "number", default = 3600, min = 0,
                         max = 604800,
                         doc = "seconds an SSH console session may stay "
                               .. "idle at its prompt (0: no limit)" },
    -- Being found (tp.zeroconf, tp.metaserver; README "Being found").
    zeroconf = { type = "boolean", also = { "auto" }, default = "auto",
                 doc = "publish the game on the local network by "
                       .. "mDNS/DNS-SD through avahi-daemon: \"auto\" when "
                       .. "the daemon is there, true (warn when it is "
                       .. "not), false" },
    metaservers = { type = "table", default = {},
                    doc = "metaserver URLs to register the game with "
                          .. "({ \"http://host/path\" }); none by default" },
    metaserver_interval = { type = "integer", default = 360, min = 120,
                            max = 86400,
                            doc = "seconds between metaserver updates "
                                  .. "(also sent at once after a turn and "
                                  .. "when players join)" },
    metaserver_public_host = { type = "string", default = "",
                               doc = "host name or address players reach "
                                     .. "the server at, for the "
                                     .. "metaserver (behind NAT); \"\": "
                                     .. "the listeners' own" },
    metaserver_public_port = { type = "integer", default = 0, min = 0,
                               max = 65535,
                               doc = "port players reach the first tp "
                                     .. "listener at, for the metaserver; "
                                     .. "0: the port it listens on" },
    -- Notifications: web hooks and e-mail (tp.notify, tp.mail; README
    -- "Notifications").
    notify = { type = "table", default = {},
               doc = "web hooks { { url =, events = { \"turn_start\", "
                     .. "... }, format = \"json\" | \"discord\" | "
                     .. "\"slack\" } }; none by default" },
    notify_retries = { type = "integer", default = 5, min = 1, max = 20,
                       doc = "tries of one web hook request before it is "
                             .. "dropped" },
    notify_retry_delay = { type = "number", default = 10, min = 0.05,
                           max = 3600,
                           doc = "seconds before a failed web hook "
                                 .. "request is tried again (doubled at "
                                 .. "each try)" },
    notify_timeout = { type = "number", default = 15, min = 0.1, max = 300,
                       doc = "seconds a web hook has to answer" },
    notify_queue = { type = "integer", default = 100, min = 1,
                     max = 100000,
                     doc = "events waiting per web hook; past it the "
                           .. "oldest is dropped" },
    notify_reminder = { type = "number", default = 3600, min = 0,
                        max = 30 * 86400,
                        doc = "seconds before the end of a turn when "
                              .. "players who asked for mail and have not "
                              .. "finished get a reminder (0: none)" },
    notify_email_default = { type = "boolean", default = false,
                             doc = "an e-mail address given at account "
                                   .. "creation turns the turn mails on" },
    mail_from = { type = "string", default = "",
                  doc = "From address of the players' mail; \"\": "
                        .. "tpserver@<this host's name>" },
    sendmail_path = { type = "string", default = "/usr/sbin/sendmail",
                      doc = "the MTA's sendmail program (run as "
                            .. "sendmail -t -i, the message on its stdin)" },
    admins = { type = "table", default = {},
               doc = "admin accounts { { name =, password_hash =, ssh_keys "
                     .. "= { \"ssh-ed25519 AAAA... \" } } } (tpserver "
                     .. "console --hash-password); none by default" },
}

-- Bounds between keys (a key's own bounds are its min and max above):
-- { key, message, holds(cfg) }. M.check_rules checks them on the
-- configuration that is to run, at start and at a reload.
M.rules = {
    { "max_output", "must be at least twice max_frame_size",
      function(cfg) return cfg.max_output >= 2 * cfg.max_frame_size end },
    { "turn_schedule", "cannot be used with turn_mode = \"manual\"",
      function(cfg)
          return cfg.turn_mode ~= "manual" or #cfg.turn_schedule == 0
      end },
}

-- A deep copy of a configuration value (tables copied all the way down).
local function copy(v)
    if type(v) ~= "table" then
        return v
    end
    local t = {}
    for k, x in pairs(v) do
        t[k] = copy(x)
    end
    return t
end
M.copy = copy

-- Runs the configuration file in a sandbox; returns its table.
function M.read_file(path)
    local chunk, err = loadfile(path)
    if not chunk then
        return nil, "cannot read configuration: " .. tostring(err)
    end
    local env = {
        math = math, string = string, table = table, tonumber = tonumber,
        tostring = tostring, pairs = pairs, ipairs = ipairs, type = type,
        error = error, assert = assert, select = select, next = next,
        unpack = unpack, pcall = pcall,
        os = { getenv = os.getenv, time = os.time },
    }
    setfenv(chunk, env)
    local ok, result = pcall(chunk)
    if not ok then
        return nil, "error in configuration " .. path .. ": " ..
                    tostring(result)
    end
    if result == nil then
        result = {}
        for k, v in pairs(env) do
            if M.schema[k] then
                result[k] = v
            end
        end
    end
    if type(result) ~= "table" then
        return nil, "configuration " .. path .. " must return a table"
    end
    return result
end

-- Parses a --set value: numbers, true/false, a JSON list or object
-- ([30, 57] or {"a": 1}), else the string itself.
local function parse_value(s)
    if s == "true" then return true end
    if s == "false" then return false end
    local n = tonumber(s)
    if n then return n end
    if s:match("^%s*[%[{]") then
        local ok, v = pcall(require("cjson").decode, s)
        if ok and type(v) == "table" then
            return v
        end
        return nil, "not JSON: " .. tostring(v):gsub("^.-: ", "")
    end
    return s
end

-- Applies "key=value" (key may be dotted: ruleset_settings.random_seed=7, and
-- a number is a list index: metaservers.1=http://...; a value in [ ] or
-- { } is JSON: ruleset_settings.bag=[30,57,30,36]).
function M.apply_set(cfg, item)
    local key, value = item:match("^([%w_%.]+)=(.*)$")
    if not key then
        return nil, "--set wants key=value, got '" .. item .. "'"
    end
    local t = cfg
    local parts = {}
    for part in key:gmatch("[^%.]+") do
        -- metaservers.1=URL sets the first item of a list.
        parts[#parts + 1] = part:match("^%d+$") and tonumber(part) or part
    end
    for i = 1, #parts - 1 do
        if type(t[parts[i]]) ~= "table" then
            t[parts[i]] = {}
        end
        t = t[parts[i]]
    end
    local v, err = parse_value(value)
    if v == nil then
        return nil, "--set " .. key .. ": " .. err
    end
    t[parts[#parts]] = v
    return true
end

-- Checks types and ranges; fills defaults. Returns cfg or nil, message.
function M.check(raw)
    local cfg = {}
    for k, v in pairs(raw) do
        local spec = M.schema[k]
        if not spec then
            return nil, "unknown configuration key '" .. tostring(k) .. "'"
        end
        local want = spec.type
        local ok
        if want == "integer" then
            ok = type(v) == "number" and v == math.floor(v)
        elseif spec.also and type(v) == "string" then
            -- A boolean that may also be one of a few words.
            for _, w in ipairs(spec.also) do
                ok = ok or v == w
            end
            if not ok then
                return nil, string.format("configuration key '%s' must be "
                    .. "true, false or \"%s\"", k,
                    table.concat(spec.also, "\", \""))
            end
        else
            ok = type(v) == want
        end
        if not ok then
            return nil, string.format("configuration key '%s' must be %s %s, "
                .. "got %s", k, want == "integer" and "an" or "a", want,
                type(v))
        end
        if spec.min and v < spec.min or spec.max and v > spec.max then
            return nil, string.format("configuration key '%s' must be "
                .. "between %d and %d", k, spec.min, spec.max)
        end
        if spec.oneof then
            local found = false
            for _, o in ipairs(spec.oneof) do
                found = found or o == v
            end
            if not found then
                return nil, string.format("configuration key '%s' must be "
                    .. "one of %s", k, table.concat(spec.oneof, ", "))
            end
        end
        cfg[k] = v
    end
    for k, spec in pairs(M.schema) do
        if cfg[k] == nil then
            cfg[k] = copy(spec.default)
        end
    end
    -- A game of the systemd template (tpserver@NAME.service sets
    -- TPSERVER_GAME=NAME) is listed under its own name by default.
    local instance = os.getenv("TPSERVER_GAME")
    if instance and instance ~= "" then
        instance = instance:gsub("%c", "")
        if raw.game_name == nil then
            cfg.game_name = instance
        end
        if raw.game_longname == nil then
            cfg.game_longname = "Thousand Parsec game " .. instance
        end
    end
    local lok, lerr = require("tp.listeners").normalize(cfg)
    if not lok then
        return nil, lerr
    end
    for i, url in pairs(cfg.metaservers) do
        if type(i) ~= "number" or type(url) ~= "string" or
           not (url:match("^https?://[^/?#%s]+") and not url:find("%s")) then
            return nil, "metaservers[" .. tostring(i) .. "] must be an "
                        .. "http:// or https:// URL, got " .. tostring(url)
        end
    end
    local nok, nerr = require("tp.notify").check(cfg)
    if not nok then
        return nil, nerr
    end
    local _, serr = require("tp.schedule").compile(cfg.turn_schedule,
                                                  cfg.turn_timezone)
    if serr then
        return nil, serr
    end
    local levels = { error = true, warning = true, warn = true, info = true,
                     debug = true, trace = true }
    for module, level in pairs(cfg.log_modules) do
        if type(module) ~= "string" or not levels[level] then
            return nil, "log_modules." .. tostring(module) ..
                        " must be a level name (error, warning, info, "
                        .. "debug or trace)"
        end
    end
    return cfg
end

-- Checks M.rules on cfg (checked key by key already; any table with the
-- keys' values, such as the running configuration with reloaded keys
-- over it). Returns true or nil, message.
function M.check_rules(cfg)
    for _, rule in ipairs(M.rules) do
        if not rule[3](cfg) then
            return nil, string.format("configuration key '%s' %s", rule[1],
                                      rule[2])
        end
    end
    return true
end

-- path normalised by its text: no "//", "/./" or "/x/../" ("x/.." is
-- taken as no step at all: symbolic links are not followed). A relative
-- path is taken from base when given (an absolute folder), else stays
-- relative. nil and "" stay.
function M.normalise(path, base)
    if path == nil or path == "" then
        return path
    end
    if base and path:sub(1, 1) ~= "/" then
        path = base .. "/" .. path
    end
    local absolute = path:sub(1, 1) == "/"
    local parts = {}
    for part in path:gmatch("[^/]+") do
        if part == ".." and #parts > 0 and parts[#parts] ~= ".." then
            parts[#parts] = nil
        elseif part == ".." and absolute then   -- "/.." is "/"
        elseif part ~= "." then
            parts[#parts + 1] = part
        end
    end
    local text = table.concat(parts, "/")
    if absolute then
        return "/" .. text
    end
    return text ~= "" and text or "."
end

-- Finds the configuration file: -c FILE, else tpserver.lua in the server's
-- home (a source tree), else etc/tpserver/tpserver.lua next to the
-- installation, else /etc/tpserver/tpserver.lua. Returns path or nil.
function M.find(args)
    if args.config then
        return args.config
    end
    local candidates = {
        args.home .. "/tpserver.lua",
        args.home .. "/../../etc/tpserver/tpserver.lua",
        "/etc/tpserver/tpserver.lua",
    }
    for _, p in ipairs(candidates) do
        local f = io.open(p, "r")
        if f then
            f:close()
            return M.normalise(p)
        end
    end
    return nil
end

-- Reads the file, applies flags and --set items, checks the result.
-- Returns cfg, path or nil, message.
function M.load(args)
    local path = M.find(args)
    local raw = {}
    if path then
        local t, err = M.read_file(path)
        if not t then
            return nil, err
        end
        raw = t
    elseif args.config then
        return nil, "configuration file " .. args.config .. " not found"
    end
    raw = copy(raw)
    for _, item in ipairs(args.set or {}) do
        local ok, err = M.apply_set(raw, item)
        if not ok then
            return nil, err
        end
    end
    for k, v in pairs(args.overrides or {}) do
        raw[k] = v
    end
    -- A flag for bind/port adjusts the default listener, not a list.
    local cfg, err = M.check(raw)
    if not cfg then
        return nil, err
    end
    if raw.listeners then
        require("tp.listeners").apply_flags(cfg, args.overrides or {})
    end
    return cfg, path
end

-- A readable dump of the effective configuration (sorted keys).
function M.dump(cfg)
    local function ser(v, indent)
        if type(v) == "table" then
            local keys = {}
            for k in pairs(v) do keys[#keys + 1] = k end
            table.sort(keys, function(a, b)
                return tostring(a) < tostring(b)
            end)
            if #keys == 0 then return "{}" end
            local out = { "{" }
            for _, k in ipairs(keys) do
                local key = type(k) == "number" and "" or (tostring(k) .. " = ")
                out[#out + 1] = indent .. "    " .. key ..
                                ser(v[k], indent .. "    ") .. ","
            end
            out[#out + 1] = indent .. "}"
            return table.concat(out, "\n")
        elseif type(v) == "string" then
            return string.format("%q", v)
        end
        return tostring(v)
    end
    if cfg.ssh_listeners then
        -- Derived by tp.listeners.normalize: dumped as it was given.
        local c = {}
        for k, v in pairs(cfg) do
            c[k] = v
        end
        c.ssh_listeners = nil
        if type(cfg.listeners) == "table" then
            c.listeners = require("tp.listeners").as_given(cfg)
        end
        cfg = c
    end
    return "return " .. ser(cfg, "")
end

return M
