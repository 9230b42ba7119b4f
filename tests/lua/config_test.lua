-- Configuration loading: defaults, overrides, and start-up errors that name
-- the offending key.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local config = require "tp.config"

local load = dofile(TP_HOME .. "/tests/lua/config_helper.lua")

-- The shipped file is valid and equals the defaults.
local cfg, err = config.load { home = TP_HOME, set = {}, overrides = {} }
t.ok(cfg, "tpserver.lua loads", err)
for k, spec in pairs(config.schema) do
    if type(spec.default) ~= "table" and spec.default ~= false then
        t.is(cfg[k], spec.default, "tpserver.lua states the default of " .. k)
    end
end
t.is(cfg.listeners[1].port, 6923, "default listener port")
t.is(cfg.listeners[1].host, "127.0.0.1", "default listener address")

cfg = assert(load("return { port = 7000, turn_length = 60 }"))
t.is(cfg.port, 7000, "file value read")
t.is(cfg.turn_length, 60, "file value read (turn_length)")
t.is(cfg.data, "var", "unset key gets its default")

cfg, err = load("return { prot = 7000 }")
t.ok(not cfg and err:find("'prot'", 1, true), "unknown key names the key", err)
cfg, err = load("return { port = 'x' }")
t.ok(not cfg and err:find("'port'", 1, true) and err:find("integer"),
     "wrong type names the key and the type", err)
cfg, err = load("return { port = 70000 }")
t.ok(not cfg and err:find("'port'", 1, true), "out of range names the key", err)
cfg, err = load("return { turn_mode = 'sometimes' }")
t.ok(not cfg and err:find("turn_mode", 1, true), "bad choice names the key", err)
cfg, err = load("return {")
t.ok(not cfg and err:find("configuration", 1, true), "syntax error reported",
     err)
cfg, err = load("error('boom')")
t.ok(not cfg and err:find("boom", 1, true), "runtime error reported", err)
cfg = assert(load("return { game_comment = tostring(os.execute) .. " ..
                  "tostring(io) .. tostring(require) }"))
t.is(cfg.game_comment, "nilnilnil", "no os.execute, io or require in the file")

-- Logging and service keys.
cfg, err = load("return { log_modules = { net = 'loud' } }")
t.ok(not cfg and err:find("log_modules.net", 1, true),
     "a bad per-module level names the module", err)
cfg, err = load("return { log_syslog_facility = 'kernel' }")
t.ok(not cfg and err:find("log_syslog_facility", 1, true),
     "a bad syslog facility names the key", err)
cfg, err = load("return { log_stderr = 'yes' }")
t.ok(not cfg and err:find("'log_stderr'", 1, true) and err:find("boolean"),
     "log_stderr must be a boolean", err)
cfg = assert(load("return { data = 'd' }"))
t.is(cfg.pid_file, nil, "pid_file has no fixed default")
local service = require "tp.service"
service.resolve(cfg, { daemon = true })
t.is(cfg.pid_file, "d/tpserver.pid", "pid_file defaults into the data dir")
t.is(cfg.log_file, "d/tpserver.log", "a daemon logs to <data>/tpserver.log")
t.is(cfg.log_stderr, false, "a daemon does not log to stderr")
t.is(cfg.stats_file, "d/tpserver.prom", "stats_file defaults into the data "
     .. "dir")
cfg = service.resolve(assert(load("return { data = 'd' }")),
                      { foreground = true })
t.is(cfg.log_file, "", "in the foreground: no log file by default")
t.is(cfg.log_stderr, true, "in the foreground: stderr by default")
cfg = service.resolve(assert(load("return { log_file = 'x.log', "
                                  .. "log_stderr = true }")),
                      { daemon = true })
t.is(cfg.log_file, "x.log", "an explicit log_file is kept")
t.is(cfg.log_stderr, true, "an explicit log_stderr is kept")
t.ok(service.absolute("x.log"):sub(1, 1) == "/" and
     service.absolute("/a/b") == "/a/b" and service.absolute("") == "",
     "relative paths are made absolute, others kept")

-- Log fields.
local log = require "tp.log"
t.is(log.fields { turn = 3, reason = "timer", name = "a b", ms = 1.25,
                  q = 'x"y', e = "" },
     'e="" ms=1.25 name="a b" q="x\\"y" reason=timer turn=3',
     "key=value fields: sorted, quoted when needed")

-- Globals instead of a returned table.
cfg = assert(load("port = 7100\nruleset = 'minisec'"))
t.is(cfg.port, 7100, "globals form read")

-- --set and flags override the file.
cfg = assert(load("return { port = 7000 }", { "port=7001",
                  "ruleset_settings.seed=42", "game_name=abc",
                  "allow_account_creation=false" }))
t.is(cfg.port, 7001, "--set overrides the file")
t.is(cfg.ruleset_settings.seed, 42, "--set reaches into tables")
t.is(cfg.game_name, "abc", "--set string")
t.is(cfg.allow_account_creation, false, "--set boolean")
cfg = assert(load("return { port = 7000 }", { "port=7001" }, { port = 7002 }))
t.is(cfg.port, 7002, "flag overrides --set")
cfg = assert(load("return {}", { 'ruleset_settings.bag=[30, 57]',
                                  'ruleset_settings.m={"a": "b"}',
                                  "ruleset_settings.names.2=Vega" }))
t.ok(cfg.ruleset_settings.bag[1] == 30 and cfg.ruleset_settings.bag[2] == 57
     and #cfg.ruleset_settings.bag == 2, "--set: a JSON list")
t.is(cfg.ruleset_settings.m.a, "b", "--set: a JSON object")
t.is(cfg.ruleset_settings.names[2], "Vega", "--set: a list item by index")
cfg, err = load("return {}", { "ruleset_settings.bag=[1, 2" })
t.ok(not cfg and err:find("ruleset_settings.bag: not JSON", 1, true),
     "--set: bad JSON is reported with the key", err)
cfg, err = load("return {}", { "nonsense" })
t.ok(not cfg and err:find("key=value", 1, true), "bad --set reported", err)
cfg, err = load("return {}", { "colour=red" })
t.ok(not cfg and err:find("'colour'", 1, true), "unknown --set key reported",
     err)

-- An explicit listener list; --port changes the first tp listener.
cfg = assert(load("return { listeners = { { port = 7000, host = '::1' } } }",
                  {}, { port = 7005 }))
t.is(cfg.listeners[1].port, 7005, "--port adjusts the listener list")
t.is(cfg.listeners[1].host, "::1", "listener host kept")

-- The dump is valid Lua that gives the same configuration back.
cfg = assert(load("return { port = 7000 }"))
local again = assert(loadstring(config.dump(cfg)))()
t.is(again.port, 7000, "dump round trip")
t.ok(config.check(again), "dumped configuration checks")

return t.done()
