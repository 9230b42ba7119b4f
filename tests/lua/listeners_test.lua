-- The listener list of the configuration (tp.listeners through
-- tp.config): kinds, ports on bind, explicit lists and the flags that
-- change them, certificates, errors naming the entry, and the feature ids
-- a connection is offered.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local config = require "tp.config"
local listeners = require "tp.listeners"

local load_config = dofile(TP_HOME .. "/tests/lua/config_helper.lua")

local function load(text, overrides, set)
    return load_config(text, set, overrides)
end

local function kinds(cfg)
    local out = {}
    for _, l in ipairs(cfg.listeners) do
        out[#out + 1] = l.kind .. "@" .. l.host .. ":" .. l.port
    end
    return table.concat(out, " ")
end

local cfg, err = load("return {}")
t.is(kinds(cfg), "tp@127.0.0.1:6923 web@127.0.0.1:8080",
     "default: one tp listener and the web side")

cfg = assert(load("return { tls_port = 6924, http_port = 8081, "
                  .. "https_port = 8443, bind = '::1', web_port = 0, "
                  .. "webs_port = 8444 }"))
t.is(kinds(cfg), "tp@::1:6923 tps@::1:6924 http@::1:8081 https@::1:8443 "
     .. "webs@::1:8444",
     "tls_port, http_port, https_port and webs_port add listeners on "
     .. "bind; web_port = 0 has none")
cfg = assert(load("return {}", { tls_port = 7001, bind = "[::1]",
                                 web_port = 9000 }))
t.is(kinds(cfg), "tp@::1:6923 tps@::1:7001 web@::1:9000",
     "--tls-port adds a tps listener; a bracketed IPv6 address is taken; "
     .. "--web-port moves the web side")

local list = "return { listeners = { { port = 7000 }, "
    .. "{ kind = 'tps', host = '0.0.0.0', port = 7001 }, "
    .. "{ kind = 'tps', host = '::', port = 7001 } } }"
cfg = assert(load(list))
t.is(kinds(cfg), "tp@127.0.0.1:7000 tps@0.0.0.0:7001 tps@:::7001",
     "an explicit list; kind and host default to tp and bind")
cfg = assert(load(list, { tls_port = 7100, http_port = 7200,
                          bind = "10.0.0.1" }))
t.is(kinds(cfg), "tp@10.0.0.1:7000 tps@10.0.0.1:7100 tps@:::7001 "
     .. "http@10.0.0.1:7200",
     "flags change the first listener of their kind, or add one on --bind")
cfg = assert(load(list, { tls_port = 0 }))
t.is(kinds(cfg), "tp@127.0.0.1:7000", "--tls-port 0 removes the tps "
     .. "listeners")
cfg = assert(load(list, {}, { "tls_port=9999" }))
t.is(kinds(cfg), "tp@127.0.0.1:7000 tps@0.0.0.0:7001 tps@:::7001",
     "tls_port from the file or --set does not touch an explicit list")

cfg, err = load("return { listeners = { { kind = 'ftp', port = 1 } } }")
t.ok(not cfg and err:find("listeners[1]", 1, true) and
     err:find("'ftp'", 1, true), "an unknown kind names the entry", err)
cfg, err = load("return { listeners = { { kind = 'tp' } } }")
t.ok(not cfg and err:find("needs a port", 1, true), "a port is needed", err)
cfg, err = load("return { listeners = { { port = 70000 } } }")
t.ok(not cfg and err:find("needs a port", 1, true), "a port in range", err)
cfg, err = load("return { listeners = { { port = 1, prot = 2 } } }")
t.ok(not cfg and err:find("'prot'", 1, true), "unknown keys in an entry",
     err)
cfg, err = load("return { listeners = { { kind = 'tp', port = 1, "
                .. "cert = 'a.pem', key = 'a.key' } } }")
t.ok(not cfg and err:find("only for tps, https and webs", 1, true),
     "cert on a plain listener is an error", err)
cfg, err = load("return { listeners = { { kind = 'tps', port = 1, "
                .. "cert = 'a.pem' } } }")
t.ok(not cfg and err:find("go together", 1, true),
     "cert without key is an error", err)
cfg, err = load("return { tls_cert = 'a.pem' }")
t.ok(not cfg and err:find("tls_key", 1, true),
     "tls_cert without tls_key is an error", err)
cfg, err = load("return { tls_port = 70000 }")
t.ok(not cfg and err:find("'tls_port'", 1, true), "tls_port in range", err)
cfg, err = load("return { max_connections = 0 }")
t.ok(not cfg and err:find("'max_connections'", 1, true),
     "max_connections at least 1", err)
cfg, err = load("return { request_rate = -1 }")
t.ok(not cfg and err:find("'request_rate'", 1, true),
     "request_rate not negative", err)

-- Feature ids 1-4 for connections of each kind.
cfg = assert(load("return { tls_port = 6924, http_port = 8080 }"))
local function feats(conn)
    return table.concat(listeners.features(cfg, conn), ",")
end
t.is(feats { tls = false, kind = "tp" }, "2,4", "plain: 2 and 4")
t.is(feats { tls = true, kind = "tps" }, "1,4", "tps: 1 and 4")
t.is(feats { tls = false, kind = "http" }, "2,3", "http: 2 and 3")
cfg = assert(load("return {}"))
t.is(feats { tls = false, kind = "tp" }, "", "tp only: none of them")

t.is(listeners.GAME_TYPE.https, "tp+https", "Game frame types")

-- The dump of a configuration with listeners checks again.
cfg = assert(load(list))
local again = assert(loadstring(config.dump(cfg)))()
t.ok(config.check(again), "a dumped listener list checks")

return t.done()
