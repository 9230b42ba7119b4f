-- tpserver.lua: the server's configuration. A Lua file that returns a
-- table; every key is optional (the defaults are shown). Unknown keys and
-- wrong types stop the server at start with a message naming the key.
-- Command-line flags (--data, --port, --bind, --ruleset, --log-level,
-- --pid-file) and --set key=value override what is here. Relative paths
-- are taken from the folder the server is started in. Check a file with
--   tpserver --check-config -c FILE
-- (it prints the effective configuration, defaults included).
return {
    -- Data directory: the LevelDB database lives in <data>/db. Relative
    -- to the folder the server starts in; make install writes
    -- "/var/lib/tpserver" here in the installed copy.
    data = "var",

    -- The TP listener (plain TCP). Clients connect to tp://bind:port/.
    bind = "127.0.0.1",
    port = 6923,
    -- More listeners on bind (0: none; also --tls-port, --http-port,
    -- --https-port): TP over TLS (tps://, 6924 by convention), the HTTP
    -- tunnel of clients behind web proxies (a POST, then TP; 80 by
    -- convention) and the same over TLS (443 by convention).
    tls_port = 0,
    http_port = 0,
    https_port = 0,
    -- The web side (docs/http.md): the game's page, the JSON API, the
    -- event stream, /healthz and /metrics, over HTTP on bind (also
    -- --web-port; 0: none); webs_port the same over HTTPS, with the TLS
    -- certificate below. Loopback by default: put a reverse proxy in
    -- front, or set bind, to serve other machines.
    web_port = 8080,
    webs_port = 0,
    -- web_root = "",                    -- the page's files; "": web/
    -- Visitors who are not logged in may watch the whole universe
    -- (read-only, with a turn slider over the object history): false,
    -- true, or "after_end" (once the game is over).
    web_spectators = false,
    web_session_timeout = 86400,         -- seconds a web login lasts unused
    -- Bounds of an HTTP request: its line and headers (431 past it), its
    -- body (413), the seconds it may take to arrive (408), and how long an
    -- idle keep-alive connection stays open.
    http_max_header = 16384,
    http_max_body = 1048576,
    http_request_timeout = 30,
    http_keepalive_timeout = 60,
    -- An explicit list replaces bind, port and the five above; kinds tp,
    -- tps, http, https, web, webs, and ssh (the admin console over SSH,
    -- below); IPv4 or IPv6 addresses (an IPv6 one listens to
    -- IPv6 only); a TLS listener may name its own cert and key:
    -- listeners = {
    --     { kind = "tp", host = "0.0.0.0", port = 6923 },
    --     { kind = "tp", host = "::", port = 6923 },
    --     { kind = "tps", host = "0.0.0.0", port = 6924 },
    --     { kind = "https", host = "0.0.0.0", port = 443,
    --       cert = "/etc/tpserver/web.pem", key = "/etc/tpserver/web.key" },
    -- },
    -- The TLS certificate chain and its key, PEM (also --cert, --key).
    -- "" (both): a self-signed certificate in <data>/tls/, made at start
    -- when it is missing or has expired. A configured file that is
    -- missing, unreadable, expired or not matching stops the start. SIGHUP
    -- loads the same files again (open connections keep their session).
    -- TLS 1.2 and 1.3 only, ECDHE with AES-GCM or ChaCha20-Poly1305.
    tls_cert = "",
    tls_key = "",
    tls_handshake_timeout = 10,            -- seconds

    -- The database. sync = true flushes every write to the device (safe
    -- against power loss, slower); false hands writes to the OS (safe
    -- against a crash of the server). cache_size and write_buffer_size
    -- are in bytes; compression is "snappy" or "none".
    sync = false,
    cache_size = 8388608,
    write_buffer_size = 4194304,
    compression = "snappy",
    -- Turns of object history kept (the universe as it was at turn N).
    history_turns = 10,

    -- The ruleset: a folder under rulesets/ (minisec, rfts, mtsec, risk,
    -- tae; or a path to a folder of your own), and its settings: plain keys apply to
    -- whichever ruleset runs; a section named after a ruleset's folder
    -- applies to that ruleset only (plain keys, e.g. from --set
    -- ruleset_settings.KEY=VALUE, win over it). Each ruleset's README
    -- lists its settings; a key it does not have, or a value of the wrong
    -- type or out of its bounds, stops the start (and --check-config).
    ruleset = "minisec",
    ruleset_settings = {
        -- MiniSec (rulesets/minisec/README.md), as tpserver-cpp's quick
        -- start: 0-30 random star systems (besides the three fixed ones)
        -- of 0-2 planets each. Also: min_systems, min_planets,
        -- total_planets (0: no limit), system_names = { "Name", ... },
        -- random_seed (-1: from the clock), noguest (true: an account
        -- named "guest" plays; false: it is a spectator). Settings are
        -- read when a new game is created (except noguest).
        minisec = { max_systems = 30, max_planets = 2 },
        -- RFTS (rulesets/rfts/README.md): max_players, game_length,
        -- random_seed. MTSec (rulesets/mtsec/README.md): max_turns,
        -- random_seed. Risk and TaE: see their READMEs.
        rfts = { game_length = 60 },
        mtsec = { max_turns = 100 },
    },

    -- How the game is listed to clients (Game frame, TP04).
    game_name = "tp",                      -- short name; logins are user@tp
    game_longname = "Thousand Parsec game",
    game_comment = "",
    admin_email = "",
    media_base = "",                       -- base URL of media for clients

    -- Accounts. Passwords are stored as salted PBKDF2-SHA256 hashes.
    allow_account_creation = true,         -- CreateAccount from clients
    auto_create_accounts = false,          -- unknown login name creates it
    max_players = 0,                       -- players the game takes from
                                           -- clients (admins may add more;
                                           -- 0: no cap)
    -- New accounts from clients: at most account_creation_limit from one
    -- address (an IPv6 /64) and account_creation_total from all clients
    -- together in any account_creation_window seconds; past it,
    -- CreateAccount gets a Fail saying when to try again (logged with the
    -- address). The admin console is not limited. 0: no limit.
    account_creation_limit = 3,
    account_creation_total = 30,
    account_creation_window = 600,
    password_iterations = 100000,          -- PBKDF2 iterations, new hashes

    -- Turns: "players_finished" ends a turn when every player has sent
    -- FinishedTurn or after turn_length seconds, whichever is first;
    -- "fixed" after turn_length seconds; "threshold" after
    -- turn_length_under_threshold seconds, cut to
    -- turn_length_over_threshold seconds from the moment
    -- turn_player_threshold percent of the players have finished (0: from
    -- the start), and at once when all have; "manual" only when an admin
    -- ends it. turn_length = 0 means no time limit. Clients are warned
    -- turn_warning seconds before a turn ends (0: no warning).
    turn_mode = "players_finished",
    turn_length = 600,
    turn_player_threshold = 0,
    turn_length_under_threshold = 600,
    turn_length_over_threshold = 600,
    turn_warning = 60,
    -- Turn schedules: turns end at clock times instead of after
    -- turn_length seconds (in threshold mode: instead of
    -- turn_length_under_threshold), in turn_timezone (an IANA name read
    -- from the tzdata files; default UTC). "HH:MM" is every day; days go
    -- first: "Mon-Fri 20:00", "Sat,Sun 12:00" (Mon Tue Wed Thu Fri Sat
    -- Sun, ranges may wrap: "Fri-Mon"). "fixed" ends the turn at the next
    -- listed time; "players_finished" there or as soon as every active
    -- player has finished (the next turn then ends at the next listed
    -- time, which may be soon). Not with "manual". Daylight-saving
    -- changes: a time the change skips (02:30 on the night clocks go
    -- forward) falls the gap's length later (03:30); a time that happens
    -- twice is the first one.
    turn_schedule = {},                    -- e.g. { "20:00" }
    turn_timezone = "UTC",                 -- e.g. "Europe/Berlin"

    -- Idle players: one who neither logged in nor finished for
    -- idle_turns turns in a row is marked idle (shown in every player
    -- list) and no longer waited for; their next login clears it
    -- (0: never idle). After idle_remove_turns turns idle, idle_action
    -- "remove" takes them out of the game (the ruleset decides what
    -- becomes of their empire; the account stays); "ai" hands their
    -- empire to the ruleset's computer player (at ai_level) until they
    -- log in again; "none" leaves them.
    idle_turns = 0,
    idle_action = "none",
    idle_remove_turns = 3,

    -- Automatic backups: after every backup_every_turns-th turn (0:
    -- never) a copy of the game goes to <data>/backups/turn-N/ (made on
    -- the loop, clients are served meanwhile); the newest backup_keep
    -- are kept. tpserver restore <data>/backups/turn-N puts one back.
    backup_every_turns = 0,
    backup_keep = 5,

    -- Computer players (rulesets/README.md, "AI players"): ai_players are
    -- added when the game is created, at ai_level, and play through the
    -- same views and orders as clients; they finish their turn as soon as
    -- their orders are in. Alone they never end a turn early: in
    -- players_finished and threshold modes a turn ends before its time
    -- only once a human player has finished it. Each may think
    -- ai_time_limit seconds per turn (0: no limit). The ruleset must have
    -- an AI (MiniSec has, at levels "easy" and "normal").
    ai_players = 0,
    ai_level = "normal",
    ai_time_limit = 1,

    -- Limits. Each one logs when it acts.
    max_connections = 4096,                -- player connections at once;
                                           -- more get Fail "server full"
    login_timeout = 120,                   -- seconds to log in (0: none)
    request_rate = 0,                      -- requests a second per
                                           -- connection (0: no limit);
                                           -- more wait their turn
    request_burst = 100,                   -- requests at once before it
    max_connections_per_address = 1024,    -- player connections from one
                                           -- address; more get a Fail
                                           -- and are closed (0: no cap)
    idle_timeout = 3600,                   -- seconds a logged-in client
                                           -- may send nothing (clients
                                           -- ping) before it is closed
    frame_timeout = 60,                    -- seconds a frame may stay
                                           -- half-sent before the
                                           -- connection is closed
    request_time_limit = 2,                -- seconds one player request
                                           -- may take (Lua and the C it
                                           -- calls); then it is stopped
                                           -- with a Fail (0: none). No one
                                           -- else is served meanwhile.
    turn_time_limit = 60,                  -- seconds the ruleset's turn
                                           -- may take; then the turn
                                           -- fails and starts over (0: none)
    max_frame_size = 1048576,              -- bytes, header included
    max_output = 16777216,                 -- bytes queued to one client
    max_output_total = 268435456,          -- bytes queued to all clients;
                                           -- past it, clients not reading
                                           -- are disconnected first
    client_write_timeout = 60,             -- seconds a client may leave a
                                           -- quarter of that unread

    -- LuaJIT's trace compiler. Off: with it on, Debian 12's LuaJIT (a 2.1
    -- snapshot of 2022) was seen to free a live table about once in a few
    -- hundred starts. The interpreter runs the game; a restart applies a
    -- change.
    jit = false,

    -- Logging. Levels: error, warning, info, debug or trace; a default
    -- and per-module levels, e.g. { net = "debug", turn = "info" }
    -- (modules: main, net, tls, session, game, turn, config, lua, log,
    -- stats, and the ruleset's). One line per event: time (UTC), level,
    -- module, then key=value fields.
    log_level = "info",
    log_modules = {},
    -- Sinks, any combination:
    -- log_stderr = true,                  -- default: true with -f, false
                                           -- as a daemon
    -- log_file = "var/tpserver.log",      -- appended to, reopened on
                                           -- SIGHUP; "" for none. Default:
                                           -- <data>/tpserver.log as a
                                           -- daemon, none with -f
    log_syslog = false,                    -- also send lines to syslog
    log_syslog_facility = "daemon",        -- daemon, user, local0..local7
    log_syslog_ident = "tpserver",         -- tag of every message
    log_syslog_socket = "/dev/log",        -- the local syslog socket

    -- Running as a service. The pid file is locked while the server
    -- runs; tpserver --stop, --status and --stats find the server by it.
    -- pid_file = "var/tpserver.pid",      -- default: <data>/tpserver.pid

    -- Statistics in Prometheus text format, written to stats_file every
    -- stats_interval seconds (0: only when asked) and on SIGUSR1, which is
    -- what tpserver --stats sends. "" for none.
    -- stats_file = "var/tpserver.prom",   -- default: <data>/tpserver.prom
    stats_interval = 10,

    -- The admin console: tpserver console attaches to this Unix socket
    -- (mode 0600: the server's user only). A console command that holds
    -- the server longer than console_time_slice seconds is stopped (0: no
    -- limit; timeslice() changes it per session).
    console = true,
    -- console_socket = "var/console.sock", -- default: <data>/console.sock
    console_time_slice = 2,

    -- The TP admin protocol (tpadmin-cpp ...), off unless admin_port is
    -- set (or --admin-port), for the accounts of admins; there is no
    -- default account. Hash a password with tpserver console
    -- --hash-password.
    admin_port = 0,
    admin_bind = "127.0.0.1",
    -- admins = { { name = "root", password_hash = "pbkdf2-sha256$..." } },
    -- An admin may also have SSH keys (authorized_keys lines, no options)
    -- for the console over SSH below; one with ssh_keys needs no
    -- password_hash (and then logs in over SSH only):
    -- admins = {
    --     { name = "root", password_hash = "pbkdf2-sha256$..." },
    --     { name = "admin", ssh_keys = { "ssh-ed25519 AAAA... me@laptop" } },
    -- },
    -- The same accounts log in to the control UI at /admin on the web
    -- listener (docs/admin-ui.md), which exists only when admins has an
    -- account; a login there lasts this many seconds unused.
    web_admin_session_timeout = 3600,

    -- The admin console over SSH (docs/ssh.md): ssh -p PORT admin@host
    -- gets the REPL of tpserver console, ssh ... 'code' runs one chunk.
    -- Off unless ssh_port is set (or --ssh-port). The login name must be
    -- an admin of admins, proving a key from its ssh_keys or from the
    -- ssh_authorized_keys file (read at every login; lines with options
    -- are skipped and logged); passwords only with ssh_passwords = true.
    -- ssh_authorized_keys and ssh_idle_timeout change at a reload, the
    -- others need a restart.
    -- ssh_port = 0,                       -- 0: none
    -- ssh_bind = "127.0.0.1",             -- loopback by default
    -- ssh_host_key = "",                  -- OpenSSH private key file;
                                           -- "": <data>/ssh/host_ed25519_key,
                                           -- made when missing (its
                                           -- fingerprint is printed at
                                           -- start and by --status)
    -- ssh_authorized_keys = "",           -- a file whose keys may log
                                           -- in as any admin;
                                           -- "": admins' ssh_keys only
    -- ssh_passwords = false,              -- admins' passwords too
    -- ssh_max_sessions = 8,               -- connections at once
    -- ssh_login_timeout = 60,             -- seconds to log in and open
                                           -- the session
    -- ssh_idle_timeout = 3600,            -- seconds a console session may
                                           -- sit at its prompt (0: no limit)
    -- More SSH listeners: entries of kind "ssh" in listeners above
    -- ({ kind = "ssh", host = "::1", port = 6925 }).

    -- Being found (README "Being found"). On the local network by
    -- Zeroconf through avahi-daemon: one service per listener (_tp._tcp,
    -- _tps._tcp, _http._tcp ...) under game_longname, with the turn, the
    -- players and the ruleset in its TXT. Listeners on a loopback address
    -- are not published (bind to 0.0.0.0 or a LAN address to be found).
    -- zeroconf = "auto",                  -- "auto": when avahi-daemon
                                           -- runs; true: warn when not;
                                           -- false: never
    -- On the Internet through metaservers (none unless named):
    -- metaservers = { "http://metaserver.thousandparsec.net/" },
    -- metaserver_interval = 360,          -- seconds between updates
                                           -- (120 at least); also at once
                                           -- after a turn and when
                                           -- players join
    -- metaserver_public_host = "",        -- behind NAT: the name or
                                           -- address players reach
    -- metaserver_public_port = 0,         -- and the port of the first
                                           -- tp listener there

    -- Notifications (README "Notifications"). Web hooks: an HTTP POST
    -- for each event a hook names (turn_start, turn_end, turn_warning,
    -- player_joined, player_finished, player_eliminated, game_over;
    -- without events: turn_start, turn_end, player_joined,
    -- player_eliminated, game_over), as a JSON object, or Discord's
    -- {content} or Slack's {text}:
    -- notify = {
    --     { url = "https://discord.com/api/webhooks/ID/TOKEN",
    --       format = "discord" },
    --     { url = "http://127.0.0.1:9000/tp", format = "json",
    --       events = { "turn_start", "game_over" } },
    -- },
    -- notify_retries = 5,                 -- tries of one request
    -- notify_retry_delay = 10,            -- seconds before the second try,
                                           -- doubled at each try
    -- notify_timeout = 15,                -- seconds a hook has to answer
    -- notify_queue = 100,                 -- events waiting per hook; past
                                           -- it the oldest is dropped
    -- Turn mails, to players who gave an address and turned them on (on
    -- the web page, or the console's notify.email), through the local MTA:
    -- notify_reminder = 3600,             -- seconds before a turn's end:
                                           -- a reminder to those who have
                                           -- not finished (0: none)
    -- notify_email_default = false,       -- an address given at account
                                           -- creation turns the mails on
    -- mail_from = "",                     -- From address; "": tpserver@
                                           -- this host's name
    -- sendmail_path = "/usr/sbin/sendmail",  -- run as sendmail -t -i

    -- SIGHUP reloads this file: logging, the game listing (game_*,
    -- admin_email, media_base), account creation, the turn settings (from
    -- the next turn; turn_schedule and turn_timezone too), the idle_* and
    -- backup_* keys, max_output, client_write_timeout, the time limits,
    -- the statistics keys, admins, console_time_slice,
    -- ssh_authorized_keys, ssh_idle_timeout, the metaserver_* keys
    -- (not the metaservers list), notify, the notify_* keys, mail_from and
    -- sendmail_path change at once; any other change is
    -- logged and waits for a restart.
}
