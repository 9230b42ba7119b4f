-- tp.metaserver: registering the game with metaservers, so that players
-- find public games. Each URL of `metaservers` gets tpserver-cpp's update
-- request, an HTTP GET with `action=update` and the keys of tp.advert
-- plus one typeN/portN/dnsN/ipN group per TP listener, a key that
-- identifies this game (kept in the database: the same after a restart)
-- and a random reqid.
--
-- When: at start, every metaserver_interval seconds, at once when a turn
-- ends or the number of players changes (no more often than every
-- MIN_GAP_S seconds), and after a SIGHUP. After an error (no connection,
-- no answer within TIMEOUT_S, an HTTP status that is not 2xx, or a TP Fail
-- frame in the reply) the next try waits BACKOFF_S seconds. The requests
-- go through tp.curl (libcurl's multi interface on the loop): a
-- metaserver that never answers holds up nothing.
--
-- Addresses: metaserver_public_host (a name or an address) replaces the
-- listeners' own in every entry, and metaserver_public_port the port of
-- the first tp listener, for a server behind NAT. Without them a listener
-- on a wildcard address is listed by this machine's host name, one on a
-- specific address by that address (a warning says when that address is
-- one players elsewhere cannot reach).
--
--   start(cfg, db)  stop()  send_now(reason)  status() -> list of
--   { url =, ok =, last =, error =, next_in = }

local core = require "tp.core"
local curl = require "tp.curl"
local log = require "tp.log"
local advert = require "tp.advert"

local M = {}

M.BACKOFF_S = 600
M.MIN_GAP_S = 5
M.TIMEOUT_S = 30
M.CONNECT_TIMEOUT_S = 15

local state = { cfg = nil, key = nil, servers = {}, unwatch = nil,
                warned = {} }

-- The machine's name (for addresses given out: the metaserver's, the
-- battle logs' URLs).
local function hostname()
    local f = io.open("/proc/sys/kernel/hostname", "r")
    local name = f and f:read("*l")
    if f then
        f:close()
    end
    return name ~= nil and name ~= "" and name or "localhost"
end
M.hostname = hostname

local function is_ip(host)
    return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or
           host:find(":", 1, true) ~= nil
end

-- Addresses players on the Internet cannot reach.
local function is_private(ip)
    local a, b = ip:match("^(%d+)%.(%d+)%.")
    a, b = tonumber(a), tonumber(b)
    if a then
        return a == 10 or a == 127 or (a == 172 and b >= 16 and b <= 31) or
               (a == 192 and b == 168) or (a == 169 and b == 254) or a == 0
    end
    ip = ip:lower()
    return ip == "::1" or ip:match("^fe[89ab]") ~= nil or
           ip:match("^f[cd]") ~= nil
end

-- The listener entries: { type, port, dns, ip } for each TP listener.
function M.entries(cfg)
    local out, first_tp = {}, true
    local public = cfg.metaserver_public_host
    for _, s in ipairs(advert.services(cfg)) do
        if s.game_type then
            local port = s.port
            if s.kind == "tp" and first_tp then
                first_tp = false
                if cfg.metaserver_public_port > 0 then
                    port = cfg.metaserver_public_port
                end
            end
            local dns, ip = "", ""
            local host = public ~= "" and public or s.host
            if public == "" and (host == "0.0.0.0" or host == "::") then
                dns = hostname()
            elseif is_ip(host) then
                ip = host
            else
                dns = host
            end
            if public == "" and ip ~= "" and is_private(ip) and
               not state.warned[ip] then
                state.warned[ip] = true
                log.warning("metaserver", "the metaserver will list %s "
                    .. "port %d, which players elsewhere cannot reach: set "
                    .. "metaserver_public_host (and metaserver_public_port "
                    .. "behind NAT)", ip, port)
            end
            out[#out + 1] = { type = s.game_type, port = port, dns = dns,
                              ip = ip }
        end
    end
    return out
end

-- The query string of an update (without "?").
function M.query(cfg, key)
    local parts = { "action=update" }
    local function add(k, v)
        parts[#parts + 1] = k .. "=" .. curl.escape(tostring(v))
    end
    for _, kv in ipairs(advert.info(cfg)) do
        add(kv[1], kv[2])
        if kv[1] == "tp" then
            add("key", key)
        end
    end
    for i, e in ipairs(M.entries(cfg)) do
        local n = i - 1
        add("type" .. n, e.type)
        add("port" .. n, e.port)
        add("dns" .. n, e.dns)
        add("ip" .. n, e.ip)
    end
    add("reqid", require("tp.crypto").hex(require("tp.crypto").random(8)))
    return table.concat(parts, "&")
end

local function u32(s, at)
    local a, b, c, d = s:byte(at, at + 3)
    return ((a * 256 + b) * 256 + c) * 256 + d
end

-- Reads a reply: (true, message) or (nil, why). A body of TP frames is
-- read for an Okay (0) or a Fail (1); any other 2xx body is taken as a
-- yes.
function M.read_reply(res)
    if res.error then
        return nil, res.error
    end
    local body = res.body or ""
    if res.status < 200 or res.status > 299 then
        local line = body:match("^[^\r\n]*") or ""
        return nil, string.format("HTTP %d%s", res.status,
            line ~= "" and (": " .. line:sub(1, 200)) or "")
    end
    if #body >= 16 and body:sub(1, 2) == "TP" then
        local ftype, len = u32(body, 9), u32(body, 13)
        local payload = body:sub(17, 16 + len)
        local function str(at)
            if #payload < at + 3 then
                return ""
            end
            local n = u32(payload, at)
            return payload:sub(at + 4, at + 3 + n)
        end
        if ftype == 1 then
            return nil, "refused: " .. str(5)
        elseif ftype == 0 then
            return true, str(1)
        end
        return true, "TP frame type " .. ftype
    end
    return true, (body:match("^[^\r\n]*") or ""):sub(1, 200)
end

local function schedule(m, seconds)
    if m.timer then
        m.timer:stop()
    end
    m.next_at = core.now() + seconds
    m.timer = core.timer(math.max(0, seconds * 1000), 0, function()
        m.timer = nil
        M.send(m, "timer")
    end)
end

function M.send(m, reason)
    if m.inflight then
        m.again = true
        return
    end
    local cfg = state.cfg
    local url = m.url .. (m.url:find("?", 1, true) and "&" or "?") ..
                M.query(cfg, state.key)
    m.sent_at = core.now()
    local id, err = curl.request({ url = url, timeout = M.TIMEOUT_S,
                                   connect_timeout = M.CONNECT_TIMEOUT_S,
                                   max_size = 65536 },
                                 function(res) M.answered(m, res) end)
    if not id then
        m.ok, m.error = false, err
        log.warning("metaserver", "%s: cannot send the update: %s", m.url,
                    tostring(err))
        schedule(m, M.BACKOFF_S)
        return
    end
    m.inflight = id
    log.debug("metaserver", "update sent to %s (%s)", m.url, reason)
end

function M.answered(m, res)
    m.inflight = nil
    m.last = core.now()
    local ok, msg = M.read_reply(res)
    if ok then
        local was_ok = m.ok
        m.ok, m.error = true, nil
        local say = was_ok and log.debug or log.info
        say("metaserver", "registered with %s (HTTP %d, %.2f s)%s", m.url,
            res.status, res.seconds or 0,
            msg ~= "" and (": " .. msg) or "")
        schedule(m, state.cfg.metaserver_interval)
        if m.again then
            m.again = nil
            M.send(m, "change")
        end
    else
        m.ok, m.error = false, msg
        m.again = nil
        log.warning("metaserver", "update to %s failed: %s; next try in "
                    .. "%d s", m.url, msg, M.BACKOFF_S)
        schedule(m, M.BACKOFF_S)
    end
end

-- A change worth telling at once (a turn, players, a reload).
function M.send_now(reason)
    for _, m in ipairs(state.servers) do
        if m.ok == false then
            -- Backing off: the retry carries the change.
        elseif m.inflight then
            m.again = true
        else
            local since = core.now() - (m.sent_at or 0)
            if since >= M.MIN_GAP_S then
                M.send(m, reason)
            else
                schedule(m, M.MIN_GAP_S - since)
            end
        end
    end
end

function M.start(cfg, db)
    state.cfg = cfg
    state.servers = {}
    if #cfg.metaservers == 0 then
        return
    end
    local rec = db:get("meta/metaserver")
    if type(rec) ~= "table" or type(rec.key) ~= "string" then
        rec = { key = require("tp.crypto").hex(
                      require("tp.crypto").random(16)) }
        local ok, err = pcall(db.put, db, "meta/metaserver", rec)
        if not ok then
            log.warning("metaserver", "cannot store the metaserver key: %s",
                        tostring(err))
        end
    end
    state.key = rec.key
    for _, url in ipairs(cfg.metaservers) do
        local m = { url = url }
        state.servers[#state.servers + 1] = m
        schedule(m, 0)
    end
    if not curl.async_dns then
        log.warning("metaserver", "this libcurl resolves names while it "
                    .. "waits: use an address in the metaserver URLs")
    end
    state.unwatch = advert.watch(function(reason)
        if reason ~= "other" then
            M.send_now(reason)
        end
    end)
    require("tp.hup").add("metaserver", function()
        M.send_now("reload")
    end)
end

function M.status()
    local out = {}
    for _, m in ipairs(state.servers) do
        out[#out + 1] = { url = m.url, ok = m.ok, error = m.error,
                          last = m.last, inflight = m.inflight ~= nil,
                          next_in = m.next_at and
                                    math.max(0, m.next_at - core.now()) }
    end
    return out
end

function M.stop()
    if state.unwatch then
        state.unwatch()
        state.unwatch = nil
    end
    for _, m in ipairs(state.servers) do
        if m.timer then
            m.timer:stop()
            m.timer = nil
        end
        if m.inflight then
            curl.cancel(m.inflight)
            m.inflight = nil
        end
    end
end

return M
