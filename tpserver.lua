-- tpserver.lua: the server's configuration. A Lua file that returns a
-- table; every key is optional (the defaults are shown). Unknown keys and
-- wrong types stop the server at start with a message naming the key.
-- Command-line flags (--data, --port, --bind, --ruleset, --log-level) and
-- --set key=value override what is here. Check a file with
--   tpserver --check-config -c FILE
return {
    -- Data directory: the LevelDB database lives in <data>/db.
    data = "var",

    -- The TP listener (plain TCP). Clients connect to tp://bind:port/.
    bind = "127.0.0.1",
    port = 6923,
    -- listeners = { { kind = "tp", host = "0.0.0.0", port = 6923 } },
    --   an explicit list replaces bind/port (only kind "tp" for now).

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

    -- The ruleset: a folder under rulesets/ (or a path to a folder), and
    -- its settings.
    ruleset = "minisec",
    ruleset_settings = {},

    -- How the game is listed to clients (Game frame, TP04).
    game_name = "tp",                      -- short name; logins are user@tp
    game_longname = "Thousand Parsec game",
    game_comment = "",
    admin_email = "",
    media_base = "",                       -- base URL of media for clients

    -- Accounts. Passwords are stored as salted PBKDF2-SHA256 hashes.
    allow_account_creation = true,         -- CreateAccount from clients
    auto_create_accounts = false,          -- unknown login name creates it
    password_iterations = 100000,          -- PBKDF2 iterations, new hashes

    -- Turns: "players_finished" ends a turn when every player has sent
    -- FinishedTurn or after turn_length seconds, whichever is first;
    -- "fixed" after turn_length seconds; "manual" only when an admin ends
    -- it. turn_length = 0 means no time limit.
    turn_mode = "players_finished",
    turn_length = 600,

    -- Limits.
    max_frame_size = 1048576,              -- bytes, header included
    max_output = 16777216,                 -- bytes queued to one client
    client_write_timeout = 60,             -- seconds a client may leave a
                                           -- quarter of that unread

    -- Logging to stderr: error, warning, info, debug or trace, and
    -- per-module levels, e.g. { net = "debug", turn = "info" }.
    log_level = "info",
    log_modules = {},
}
