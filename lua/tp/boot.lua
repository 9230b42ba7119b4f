-- boot.lua: run once by the core at start. Reads the configuration,
-- registers the frame layouts, opens the database and the game, starts the
-- listeners, and returns the hooks the core calls:
--   dispatch(conn, req), request_failed(conn, err, timed_out, why),
--   on_open(conn), on_close(conn, reason), on_hup(), on_stop().
-- Any error here stops the server before it serves anyone, with a message
-- on stderr and a non-zero exit.

local args = ...
local core = require "tp.core"
-- The test clock (TPSERVER_CLOCK_OFFSET) is in place before anything
-- reads the time.
require "tp.clock"
local config = require "tp.config"

-- A port in use: the message says how to choose another. kind (as
-- core/listener.c names it) -> the flag and the tpserver.lua key.
-- (and the variable of "make run" in the source tree, for three).
local PORT_KEYS = {
    tp = { "--port", "port", "PORT" },
    tps = { "--tls-port", "tls_port", "TLS_PORT" },
    http = { "--http-port", "http_port" },
    https = { "--https-port", "https_port" },
    web = { "--web-port", "web_port", "WEB_PORT" },
    webs = { nil, "webs_port" },
    admin = { "--admin-port", "admin_port" },
    ssh = { "--ssh-port", "ssh_port" },
}

local function port_hint(err, file)
    err = tostring(err)
    local port, kind = err:match("cannot listen on %S+ port (%d+) %((%w+)%)"
                                 .. ": address already in use")
    local keys = PORT_KEYS[kind]
    if not keys then
        return err
    end
    -- An explicit listeners list in the file replaces the port keys.
    file = file and require("tp.service").absolute(file)
    local raw = file and config.read_file(file)
    local how
    if type(raw) == "table" and raw.listeners ~= nil and kind ~= "admin"
       and kind ~= "ssh" then
        how = string.format("change its entry (kind = \"%s\", port = %s) "
                            .. "of listeners in %s", kind, port, file)
    else
        how = string.format("set %s = N in %s (or --set %s=N)", keys[2],
                            file or "tpserver.lua", keys[2])
    end
    if keys[1] then
        how = string.format("start with %s N, or %s", keys[1], how)
    end
    if keys[3] then
        how = string.format("%s; from the source tree: make run %s=N", how,
                            keys[3])
    end
    return string.format("%s: another program uses port %s; choose "
        .. "another: %s", err, port, how)
end

local cfg, path = config.load(args)
if not cfg then
    error(path, 0)
end
local service = require "tp.service"
service.resolve(cfg, args)
if args.check_config then
    -- The ruleset's settings are checked too (names, types, bounds).
    local rs, rerr = require("tp.ruleset").load(args.home, cfg.ruleset)
    if not rs then
        error(rerr, 0)
    end
    local sok, serr = pcall(require("tp.game").check_settings, rs,
                            cfg.ruleset_settings)
    if not sok then
        error(serr, 0)
    end
    local ai_refused = require("tp.ai").check(cfg, rs)
    if ai_refused then
        error(ai_refused, 0)
    end
    -- Paths as the server would use them: absolute, normalised.
    service.absolute_paths(cfg)
    print("-- configuration: " .. (service.absolute(path) or "(defaults)"))
    print(config.dump(cfg))
    return nil
end
if args.command then   -- --stop, --status, --stats
    require("tp.sys").set_exit_status(service.command(args, cfg))
    return nil
end
service.prepare(cfg, args, path)
if cfg.jit then
    require("jit").on()     -- off until here (core/bridge.c)
end
-- The bounds between keys (tp.config.rules): --check-config and the
-- service commands above do not apply them.
local rules_ok, rules_err = config.check_rules(cfg)
if not rules_ok then
    error(rules_err, 0)
end
core.set_limits { max_frame = cfg.max_frame_size,
                  output_max = cfg.max_output,
                  stall_ms = cfg.client_write_timeout * 1000,
                  max_connections = cfg.max_connections,
                  handshake_ms = cfg.tls_handshake_timeout * 1000,
                  login_ms = cfg.login_timeout * 1000,
                  request_rate = cfg.request_rate,
                  request_burst = cfg.request_burst,
                  request_s = cfg.request_time_limit,
                  idle_ms = cfg.idle_timeout * 1000,
                  frame_ms = cfg.frame_timeout * 1000,
                  per_address = cfg.max_connections_per_address,
                  http_header_max = cfg.http_max_header,
                  http_body_max = cfg.http_max_body,
                  http_request_ms = cfg.http_request_timeout * 1000,
                  http_keepalive_ms = cfg.http_keepalive_timeout * 1000,
                  output_total = cfg.max_output_total }

local proto = require "tp.proto"
proto.register()

local log = require "tp.log"
local db_mod = require "tp.db"
local game = require "tp.game"
local dispatch = require "tp.dispatch"
local ruleset_mod = require "tp.ruleset"

local rs, err = ruleset_mod.load(args.home, cfg.ruleset)
if not rs then
    error(err, 0)
end

-- Create the data directory (and its parents) if needed. It holds the
-- password hashes: the server makes it 0700 (and, by its umask, its
-- files 0600), and warns about an existing one others may read.
local dir = ""
local data_mode = core.mode(cfg.data)
for part in cfg.data:gmatch("[^/]+") do
    dir = (dir == "" and cfg.data:sub(1, 1) ~= "/") and part
          or (dir .. "/" .. part)
    local ok, merr = core.mkdir(dir, dir == cfg.data:gsub("/+$", "") and
                                     448 or nil)            -- 0700
    if not ok then
        error(merr, 0)
    end
end

service.lock(cfg)
service.open_logs(cfg)
if data_mode and data_mode % 64 ~= 0 then     -- any group or other bits
    log.warning("main", "the data directory %s can be read or entered by "
                .. "other users (mode %o): it holds the accounts' password "
                .. "hashes; chmod 700 %s", cfg.data, data_mode, cfg.data)
end

local db
db, err = db_mod.open(cfg.data .. "/db", {
    create_if_missing = true, paranoid_checks = true, sync = cfg.sync,
    cache_size = cfg.cache_size, write_buffer_size = cfg.write_buffer_size,
    compression = cfg.compression })
if not db then
    error("cannot open the database in " .. cfg.data .. "/db: " ..
          tostring(err), 0)
end

-- A database that cannot go on after a failed write (tp.db) stops the
-- server, with status 1, once the current request has its answer.
db_mod.on_fatal = function()
    require("tp.sys").set_exit_status(1)
    core.timer(0, 0, core.stop)
end

local ok
ok, err = game.start(cfg, db, rs)
if not ok then
    db:close()
    error(err, 0)
end

dispatch.add(require("tp.handlers.session").init(cfg).handlers)
for _, family in ipairs(require("tp.handlers.game").families) do
    dispatch.add(require(family).handlers)
end

-- The web side (tp.web): its routes run the handlers registered above.
local web = require("tp.web").init(cfg, args.home)

-- The admin console socket and the TP admin listener (admin/), before
-- the players' listeners: once a client can connect, so can the admin.
local admin = require "admin.init"
ok, err = pcall(admin.start, cfg, args)
if not ok then
    admin.stop()
    game.stop()
    db:close()
    error(port_hint((tostring(err):gsub("^.-%.lua:%d+: ", "", 1)), path), 0)
end

local listeners = require "tp.listeners"
ok, err = listeners.prepare_tls(cfg)
if ok then
    ok, err = listeners.start(cfg)
end
if not ok then
    admin.stop()
    game.stop()
    db:close()
    error(port_hint(err, path), 0)
end

log.info("main", "tpserver %s serving %s %s (turn %d) from %s", core.version,
         rs.name, rs.version, game.turn_number(), cfg.data)
-- On the terminal (a daemon has not left it yet).
for _, l in ipairs(cfg.listeners) do
    if require("tp.listeners").is_web(l.kind) then
        io.stderr:write(string.format("tpserver: web page at %s\n",
                        require("tp.listeners").url(l)))
    else
        io.stderr:write(string.format("tpserver: %s game on %s://%s:%d/\n",
                        rs.name, l.kind, l.host, l.port))
    end
end
service.started(cfg, db)

-- Being found: Zeroconf on the local network, metaservers on the
-- Internet. Neither can stop the start: they log what goes wrong.
local zeroconf = require "tp.zeroconf"
local metaserver = require "tp.metaserver"
-- Notifications (web hooks, e-mail) likewise.
local notify = require "tp.notify"
for name, m in pairs { zeroconf = zeroconf, metaserver = metaserver,
                       notify = notify } do
    local zok, zerr = pcall(m.start, cfg, db)
    if not zok then
        log.error(name, "cannot start: %s", tostring(zerr))
    end
end

-- From here on an undeclared global is a bug: reading or setting one
-- raises (the console's sessions have environments of their own).
setmetatable(_G, {
    __newindex = function(_, k)
        error("assignment to undeclared global '" .. tostring(k) .. "'", 2)
    end,
    __index = function(_, k)
        error("undeclared global '" .. tostring(k) .. "'", 2)
    end,
})

return admin.hooks {
    dispatch = dispatch.dispatch,
    request_failed = dispatch.request_failed,
    on_open = dispatch.hooks.on_open,
    on_close = function(conn, reason)
        game.sessions[conn] = nil
        web.on_close(conn)
    end,
    http = web.http,
    http_failed = web.http_failed,
    on_hup = function()
        require("tp.hup").run()
    end,
    on_stop = function()
        zeroconf.stop()
        metaserver.stop()
        notify.stop()
        service.stop()
        game.stop()
        db:close()
        log.info("main", "database closed")
    end,
}
