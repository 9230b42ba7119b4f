-- tp.advert: what the server tells the world about its game, for the
-- Zeroconf TXT records (tp.zeroconf) and the metaserver updates
-- (tp.metaserver). The keys are those of tpserver-cpp's advertisements,
-- which TP clients read (PROTOCOL.md 7.2 gives their meaning):
--
--   server, sertype, tp, rule, rulever, turn, next, prd, objs, plys,
--   admin, cmt, sn, ln
--
-- next (the end of the turn, Unix seconds) and prd (the turn's length in
-- seconds) are there only while a turn timer runs; admin and cmt only
-- when configured.
--
--   info(cfg)         -> ordered list of { key, value } (values strings)
--   services(cfg)     -> the listeners worth advertising, each
--                        { kind =, game_type =, mdns_type =, host =, port = }
--   watch(fn)         fn(reason) whenever what info() gives may have
--                     changed: "turn" (a turn ended or started), "players"
--                     (a player joined or left), "other" (anything else,
--                     found by a check every CHECK_S seconds); returns a
--                     function that stops it.

local core = require "tp.core"

local M = {}

local CHECK_S = 30

-- DNS-SD service type of each listener kind: the TP kinds as
-- tpserver-cpp names them (PROTOCOL.md 1.1), the web side as any web
-- server is found.
M.MDNS_TYPE = { tp = "_tp._tcp", tps = "_tps._tcp", http = "_tp-http._tcp",
                https = "_tp-https._tcp", web = "_http._tcp",
                webs = "_https._tcp" }

function M.services(cfg)
    local game_type = require("tp.listeners").GAME_TYPE
    local out = {}
    for _, l in ipairs(cfg.listeners) do
        if M.MDNS_TYPE[l.kind] then
            out[#out + 1] = { kind = l.kind, game_type = game_type[l.kind],
                              mdns_type = M.MDNS_TYPE[l.kind],
                              host = l.host, port = l.port }
        end
    end
    return out
end

function M.info(cfg)
    local game = require "tp.game"
    local accounts = require "tp.accounts"
    local rs = game.ruleset()
    local record = game.turn_record()
    local t = {
        { "server", core.version },
        { "sertype", "tpserver" },
        { "tp", "0.3,0.4" },
        { "rule", rs.name },
        { "rulever", rs.version },
        { "turn", tostring(record.turn) },
    }
    if record.ends_at and not game.paused() then
        t[#t + 1] = { "next", tostring(math.floor(record.ends_at)) }
        local length = cfg.turn_length
        if record.started and record.ends_at > record.started then
            length = math.floor(record.ends_at - record.started)
        end
        t[#t + 1] = { "prd", tostring(length) }
    end
    t[#t + 1] = { "objs", tostring(require("tp.model").object_count()) }
    t[#t + 1] = { "plys", tostring(accounts.count()) }
    if cfg.admin_email ~= "" then
        t[#t + 1] = { "admin", cfg.admin_email }
    end
    if cfg.game_comment ~= "" then
        t[#t + 1] = { "cmt", cfg.game_comment }
    end
    t[#t + 1] = { "sn", cfg.game_name }
    t[#t + 1] = { "ln", cfg.game_longname }
    return t
end

-- A string that changes when info() does.
function M.signature(info)
    local parts = {}
    for _, kv in ipairs(info) do
        parts[#parts + 1] = kv[1] .. "=" .. kv[2]
    end
    return table.concat(parts, "\n")
end

function M.watch(fn)
    local events = require "tp.events"
    local accounts = require "tp.accounts"
    local players = accounts.count()
    local function call(reason)
        local ok, err = pcall(fn, reason)
        if not ok then
            require("tp.log").error("advert", "a watcher failed: %s",
                                    tostring(err))
        end
    end
    local unsubscribe = events.subscribe(function(name)
        if name == "turn_start" or name == "turn_end" then
            call("turn")
        elseif name == "player_joined" or name == "player_removed" then
            players = accounts.count()
            call("players")
        end
    end)
    local timer = core.timer(CHECK_S * 1000, CHECK_S * 1000, function()
        local n = accounts.count()
        if n ~= players then
            players = n
            call("players")
        else
            call("other")
        end
    end)
    return function()
        unsubscribe()
        timer:stop()
    end
end

return M
