-- tp.zeroconf: the game on the local network by mDNS/DNS-SD, through
-- avahi-daemon (tp.avahi, core/avahi.c). One service per listener
-- (_tp._tcp, _tps._tcp, _tp-http._tcp, _tp-https._tcp, and _http._tcp /
-- _https._tcp for the web side), all under the game's long name, with the
-- TXT keys of tp.advert; the TXT is updated when the game changes (a
-- turn, a player joining, a reload).
--
-- zeroconf = "auto" (the default) publishes when avahi-daemon is there
-- and says so once on the log when it is not; true does the same but
-- warns; false publishes nothing. Either way a daemon that starts later,
-- or comes back after a restart, gets the services again.
--
-- A listener on a loopback address is not published: nobody else could
-- connect to it. One on a specific address is published on the interface
-- that has it; one on a wildcard address on every interface Avahi serves.
--
--   start(cfg)  stop()  refresh()  status() -> { state =, name =,
--   services = { "_tp._tcp 6923", ... }, skipped = { ... } }

local log = require "tp.log"
local advert = require "tp.advert"

local M = {}

local state = {
    cfg = nil,
    pub = nil,
    services = nil,    -- what p:set gets
    listed = nil,      -- "type port" strings, for logs and status
    skipped = nil,
    unwatch = nil,
    down = false,      -- said that the daemon is missing
    was_up = false,    -- it was there once
}

-- A DNS-SD instance name is at most 63 bytes: cut at a UTF-8 boundary.
local function instance_name(s)
    s = s ~= "" and s or "Thousand Parsec game"
    if #s <= 63 then
        return s
    end
    local cut = 63
    while cut > 0 and s:byte(cut + 1) and s:byte(cut + 1) >= 0x80 and
          s:byte(cut + 1) < 0xC0 do
        cut = cut - 1
    end
    return s:sub(1, cut)
end

-- The TXT strings: "key=value", each at most 255 bytes. The long name is
-- the instance name already.
local function txt(cfg)
    local out = {}
    for _, kv in ipairs(advert.info(cfg)) do
        if kv[1] ~= "ln" then
            local s = kv[1] .. "=" .. kv[2]
            out[#out + 1] = #s <= 255 and s or s:sub(1, 255)
        end
    end
    return out
end

-- Says once that the daemon is missing or gone (and once that it is
-- back): the C side tries again by itself, quietly.
local function daemon_down(detail)
    if state.down then
        log.debug("zeroconf", "avahi-daemon still unreachable: %s",
                  tostring(detail))
        return
    end
    local say = state.cfg.zeroconf == true and log.warning or log.info
    if state.was_up then
        say("zeroconf", "lost avahi-daemon (%s): the game will be "
            .. "published again when it is back", tostring(detail))
    else
        say("zeroconf", "avahi-daemon is not running (%s): the game will "
            .. "be published on the local network when it starts "
            .. "(zeroconf = false turns this off)", tostring(detail))
    end
    state.down = true
end

local function on_event(event, detail)
    if event == "waiting" or event == "failure" then
        daemon_down(detail)
    elseif event == "running" then
        state.down = false
        state.was_up = true
        log.info("zeroconf", "connected to avahi-daemon (host %s)",
                 tostring(detail))
    elseif event == "established" then
        log.info("zeroconf", "published \"%s\" on the local network: %s",
                 tostring(detail), table.concat(state.listed, ", "))
    elseif event == "collision" then
        log.warning("zeroconf", "the name is taken on the local network; "
                    .. "published as \"%s\" instead", tostring(detail))
    elseif event == "error" then
        log.warning("zeroconf", "%s", tostring(detail))
    end
end

function M.refresh()
    if state.pub then
        local ok, err = pcall(state.pub.set, state.pub,
                              instance_name(state.cfg.game_longname),
                              state.services, txt(state.cfg))
        if not ok then
            log.warning("zeroconf", "cannot publish: %s", tostring(err))
        end
    end
end

function M.start(cfg)
    state.cfg = cfg
    if cfg.zeroconf == false then
        log.debug("zeroconf", "off (zeroconf = false)")
        return
    end
    local avahi = require "tp.avahi"
    state.services, state.listed, state.skipped = {}, {}, {}
    for _, s in ipairs(advert.services(cfg)) do
        local index, protocol, loopback = avahi.interface_of(s.host)
        local desc = string.format("%s %d", s.mdns_type, s.port)
        if loopback then
            state.skipped[#state.skipped + 1] = desc
            log.info("zeroconf", "not publishing %s: it listens on %s, "
                     .. "which no other machine can reach", desc, s.host)
        else
            state.services[#state.services + 1] = {
                type = s.mdns_type, port = s.port, interface = index,
                protocol = protocol }
            state.listed[#state.listed + 1] = desc
        end
    end
    if #state.services == 0 then
        log.info("zeroconf", "nothing to publish on the local network "
                 .. "(every listener is on a loopback address)")
        return
    end
    local pub, err = avahi.publisher(on_event)
    if not pub then
        log.warning("zeroconf", "cannot start: %s", tostring(err))
        return
    end
    state.pub = pub
    M.refresh()
    state.unwatch = advert.watch(M.refresh)
    require("tp.hup").add("zeroconf", M.refresh)
end

function M.status()
    local pub = state.pub
    return { state = pub and pub.state or (state.cfg and
                     state.cfg.zeroconf == false and "off" or "unused"),
             name = pub and pub.name, services = state.listed or {},
             skipped = state.skipped or {} }
end

function M.stop()
    if state.unwatch then
        state.unwatch()
        state.unwatch = nil
    end
    if state.pub then
        state.pub:close()
        state.pub = nil
    end
end

return M
