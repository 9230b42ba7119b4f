-- tp.listeners: the player listeners of the configuration, the
-- certificates of the TLS ones, starting them, and reloading the
-- certificates on SIGHUP.
--
-- Kinds (PROTOCOL.md 1.1, 1.2): "tp" plain TP, "tps" TLS then TP, "http"
-- raw TP or an HTTP POST preamble then TP, "https" TLS then the same as
-- http; "web" the web side (HTTP/1.1, docs/http.md), "webs" TLS then the
-- same. Without an explicit `listeners` list the configuration gives one
-- tp listener on bind:port, plus tps, http and https listeners on bind at
-- tls_port, http_port, https_port, web_port and webs_port when those are
-- not 0. With a list,
-- the flags --port/--bind change its first tp listener and --tls-port,
-- --http-port and --https-port its first listener of their kind (adding
-- one on --bind when there is none; 0 removes them).
--
-- A TLS listener uses its own cert/key, else tls_cert/tls_key, else a
-- self-signed certificate in <data>/tls/, made at start when it is missing
-- or has expired (and said so on the log and the terminal). A configured
-- certificate that is missing, unreadable, not matching its key or expired
-- stops the server at start with a message naming the file.

local M = {}

M.KINDS = {
    tp = { tls = false, http = false },
    tps = { tls = true, http = false },
    http = { tls = false, http = true },
    https = { tls = true, http = true },
    web = { tls = false, http = false, web = true },
    webs = { tls = true, http = false, web = true },
    -- The admin console over SSH: started by admin/ssh.lua, not here;
    -- normalize moves these entries to cfg.ssh_listeners.
    ssh = { tls = false, http = false, ssh = true },
}

-- The connection "type" of each kind in the Game frame (PROTOCOL.md 7.2).
M.GAME_TYPE = { tp = "tp", tps = "tps", http = "tp+http",
                https = "tp+https" }

-- The configuration key (and command-line flag) giving the port of each
-- extra kind on the bind address, in the order the listeners are made.
M.PORT_KEYS = { { "tps", "tls_port" }, { "http", "http_port" },
                { "https", "https_port" }, { "web", "web_port" },
                { "webs", "webs_port" } }

-- Whether a kind serves the web side (HTTP/1.1: docs/http.md) rather
-- than TP.
function M.is_web(kind)
    local k = M.KINDS[kind]
    return k ~= nil and k.web == true
end

-- The URL of a listener (tp://host:port/, https://..., [v6] bracketed).
function M.url(l)
    local scheme = ({ tp = "tp", tps = "tps", http = "tp+http",
                      https = "tp+https", web = "http",
                      webs = "https" })[l.kind] or l.kind
    local host = l.host:find(":", 1, true) and "[" .. l.host .. "]" or l.host
    return string.format("%s://%s:%d/", scheme, host, l.port)
end

local ENTRY_KEYS = { kind = true, host = true, port = true, cert = true,
                     key = true }

local function unbracket(host)
    return host:match("^%[(.*)%]$") or host
end

function M.is_tls(kind)
    local k = M.KINDS[kind]
    return k ~= nil and k.tls
end

function M.is_http(kind)
    local k = M.KINDS[kind]
    return k ~= nil and k.http
end

-- Checks cfg.listeners, or builds it from bind, port, tls_port, http_port
-- and https_port (config.check calls this once every key has its value).
-- Returns true, or nil and a message naming the entry.
function M.normalize(cfg)
    if (cfg.tls_cert == "") ~= (cfg.tls_key == "") then
        return nil, "configuration keys 'tls_cert' and 'tls_key' go "
                    .. "together: set both or neither"
    end
    if not cfg.listeners then
        local list = { { kind = "tp", host = unbracket(cfg.bind),
                         port = cfg.port } }
        for _, pk in ipairs(M.PORT_KEYS) do
            local port = cfg[pk[2]]
            if port and port > 0 then
                list[#list + 1] = { kind = pk[1], host = unbracket(cfg.bind),
                                    port = port }
            end
        end
        cfg.listeners = list
        return M.split_ssh(cfg)
    end
    for i, l in ipairs(cfg.listeners) do
        local where = "listeners[" .. i .. "]"
        if type(l) ~= "table" then
            return nil, where .. " must be a table { kind =, host =, port = }"
        end
        for k in pairs(l) do
            if not ENTRY_KEYS[k] then
                return nil, where .. ": unknown key '" .. tostring(k) ..
                            "' (kind, host, port, cert, key)"
            end
        end
        if type(l.port) ~= "number" or l.port ~= math.floor(l.port) or
           l.port < 0 or l.port > 65535 then
            return nil, where .. " needs a port (0 to 65535)"
        end
        l.kind = l.kind or "tp"
        if not M.KINDS[l.kind] then
            return nil, where .. ": kind '" .. tostring(l.kind) ..
                        "' is not one of tp, tps, http, https, web, webs, "
                        .. "ssh"
        end
        l.host = l.host or (l.kind == "ssh" and cfg.ssh_bind) or cfg.bind
        if type(l.host) ~= "string" or l.host == "" then
            return nil, where .. ": host must be an address"
        end
        l.host = unbracket(l.host)
        for _, k in ipairs { "cert", "key" } do
            if l[k] ~= nil and (type(l[k]) ~= "string" or l[k] == "") then
                return nil, where .. ": " .. k .. " must be a file name"
            end
            if l[k] ~= nil and not M.KINDS[l.kind].tls then
                return nil, where .. ": " .. k .. " is only for tps, "
                            .. "https and webs listeners"
            end
        end
        if (l.cert == nil) ~= (l.key == nil) then
            return nil, where .. ": cert and key go together"
        end
    end
    return M.split_ssh(cfg)
end

-- The SSH console's host key file: ssh_host_key, else
-- <data>/ssh/host_ed25519_key.
function M.ssh_host_key(cfg)
    if cfg.ssh_host_key and cfg.ssh_host_key ~= "" then
        local ok, service = pcall(require, "tp.service")
        if ok and service.absolute then
            return service.absolute(cfg.ssh_host_key)
        end
        return cfg.ssh_host_key
    end
    return cfg.data .. "/ssh/host_ed25519_key"
end

local from_port = setmetatable({}, { __mode = "k" })  -- made of ssh_port

-- Moves the ssh entries of cfg.listeners to cfg.ssh_listeners, and adds
-- one on ssh_bind:ssh_port when ssh_port is set: the other listeners are
-- the players' and the web's, and the code that walks them never sees
-- the SSH console's.
function M.split_ssh(cfg)
    local ssh = {}
    for i = #cfg.listeners, 1, -1 do
        if cfg.listeners[i].kind == "ssh" then
            table.insert(ssh, 1, table.remove(cfg.listeners, i))
        end
    end
    local port = tonumber(cfg.ssh_port) or 0
    if port > 0 then
        local host = unbracket(cfg.ssh_bind or "127.0.0.1")
        local dup = false
        for _, l in ipairs(ssh) do
            dup = dup or (l.host == host and l.port == port)
        end
        if not dup then
            local l = { kind = "ssh", host = host, port = port }
            from_port[l] = true
            ssh[#ssh + 1] = l
        end
    end
    cfg.ssh_listeners = ssh
    return true
end

-- The listener list as the configuration gave it (for config.dump): the
-- ssh entries that split_ssh moved out, back in.
function M.as_given(cfg)
    local list = {}
    for _, l in ipairs(cfg.listeners or {}) do
        list[#list + 1] = l
    end
    for _, l in ipairs(cfg.ssh_listeners or {}) do
        if not from_port[l] then
            list[#list + 1] = l
        end
    end
    return list
end

-- Applies the command-line flags to an explicit listener list (flags in
-- overrides: port, bind, tls_port, http_port, https_port).
function M.apply_flags(cfg, overrides)
    local list = cfg.listeners
    if overrides.port or overrides.bind then
        for _, l in ipairs(list) do
            if l.kind == "tp" then
                l.port = overrides.port or l.port
                l.host = unbracket(overrides.bind or l.host)
                break
            end
        end
    end
    for _, pk in ipairs(M.PORT_KEYS) do
        local kind, port = pk[1], overrides[pk[2]]
        if port == 0 then
            for i = #list, 1, -1 do
                if list[i].kind == kind then
                    table.remove(list, i)
                end
            end
        elseif port then
            local found
            for _, l in ipairs(list) do
                if l.kind == kind then
                    found = l
                    break
                end
            end
            if found then
                found.port = port
                found.host = unbracket(overrides.bind or found.host)
            else
                list[#list + 1] = { kind = kind, port = port,
                                    host = unbracket(overrides.bind or
                                                     cfg.bind) }
            end
        end
    end
end

local function exists(path)
    local f = io.open(path, "r")
    if f then
        f:close()
        return true
    end
    return false
end

-- Gives every TLS listener its certificate and key files, making the
-- self-signed pair in <data>/tls when it is needed and missing or expired.
-- Needs the data directory. Returns true, or nil and a message.
function M.prepare_tls(cfg)
    local tls = require "tp.tls"
    local log = require "tp.log"
    local dir = cfg.data .. "/tls"
    local auto_cert, auto_key = dir .. "/cert.pem", dir .. "/key.pem"
    local auto, cn = false, nil
    for _, l in ipairs(cfg.listeners) do
        if M.is_tls(l.kind) and not l.cert then
            if cfg.tls_cert ~= "" then
                l.cert, l.key = cfg.tls_cert, cfg.tls_key
            else
                l.cert, l.key = auto_cert, auto_key
                auto = true
                if not cn and not l.host:match("^[%d.]+$") and
                   not l.host:find(":", 1, true) then
                    cn = l.host
                end
            end
        end
    end
    if not auto then
        return true
    end
    local why
    if not exists(auto_cert) or not exists(auto_key) then
        why = "none was configured"
    else
        local info = tls.cert_info(auto_cert)
        if info and info.not_after <= os.time() + 86400 then
            why = "the one in " .. auto_cert .. " has expired"
        end
    end
    if not why then
        log.info("tls", "using the self-signed TLS certificate %s (set "
                 .. "tls_cert and tls_key for another)", auto_cert)
        return true
    end
    local ok, err = require("tp.core").mkdir(dir, 448) -- 0700
    if not ok then
        return nil, err
    end
    ok, err = tls.make_self_signed(auto_cert, auto_key, cn or "localhost")
    if not ok then
        return nil, "cannot make a self-signed TLS certificate: " .. err
    end
    local msg = string.format("made a self-signed TLS certificate %s "
        .. "(key %s) because %s; set tls_cert and tls_key to use your own",
        auto_cert, auto_key, why)
    log.warning("tls", "%s", msg)
    io.stderr:write("tpserver: " .. msg .. "\n")
    return true
end

-- Starts every listener of cfg.listeners (their port is updated to the
-- port bound) and registers the certificate reload on SIGHUP. Returns
-- true, or nil and a message naming the address or the file.
function M.start(cfg)
    local core = require "tp.core"
    local any_tls = false
    -- TLS listeners first: loading a certificate takes a while, and a
    -- client (or a test harness) that finds the tp port open may expect
    -- every other port to be open too.
    local order = {}
    for _, l in ipairs(cfg.listeners) do
        if M.is_tls(l.kind) then
            order[#order + 1] = l
        end
    end
    for _, l in ipairs(cfg.listeners) do
        if not M.is_tls(l.kind) and l.kind ~= "tp" then
            order[#order + 1] = l
        end
    end
    -- Plain TP last, so that when it answers every other port is open.
    for _, l in ipairs(cfg.listeners) do
        if l.kind == "tp" then
            order[#order + 1] = l
        end
    end
    for _, l in ipairs(order) do
        local opts
        if M.is_tls(l.kind) then
            opts = { cert = l.cert, key = l.key }
            any_tls = true
        end
        local ok, port = pcall(core.listen, l.host, l.port, l.kind,
                               "player", opts)
        if not ok then
            return nil, (tostring(port):gsub("^[^:\n]-%.lua:%d+: ", ""))
        end
        l.port = port
    end
    if any_tls then
        require("tp.hup").add("tls", function()
            local ok, err = core.tls_reload()
            if not ok then
                error(err, 0)
            end
        end)
    end
    return true
end

-- Feature ids for a connection (PROTOCOL.md 12.1): 1 SecureHere, 2
-- SecureThere, 3 HTTPHere, 4 HTTPThere.
function M.features(cfg, conn)
    local here_tls, here_http = conn.tls, M.is_http(conn.kind)
    local there_tls, there_http = false, false
    for _, l in ipairs(cfg.listeners) do
        if M.is_tls(l.kind) and not here_tls then
            there_tls = true
        end
        if M.is_http(l.kind) and not here_http then
            there_http = true
        end
    end
    local f = {}
    if here_tls then f[#f + 1] = 1 end
    if there_tls then f[#f + 1] = 2 end
    if here_http then f[#f + 1] = 3 end
    if there_http then f[#f + 1] = 4 end
    return f
end

return M
