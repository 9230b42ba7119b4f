-- Session frames: Connect, Login, CreateAccount, GetFeatures, Ping,
-- GetTimeRemaining, GetGames, SetFilters, FinishedTurn (PROTOCOL.md 4, 7.2,
-- 7.3, 14).

local accounts = require "tp.accounts"
local dispatch = require "tp.dispatch"
local fail = require "tp.fail"
local game = require "tp.game"
local log = require "tp.log"
local guard = require "tp.login_guard"
local proto = require "tp.proto"
local stats = require "tp.stats"

local M = {}
local cfg
local logins = stats.counter("tpserver_logins_total",
                             "Login attempts, by result.")
logins:inc(0, { result = "ok" })
logins:inc(0, { result = "failed" })

local PRE = { PRE = true }
local ANY = { PRE = true, CONNECTED = true, READY = true }
local CONNECTED = { CONNECTED = true }
local AFTER_CONNECT = { CONNECTED = true, READY = true }
local READY = { READY = true }

local function tp04_only(conn, req)
    if conn.version ~= 4 then
        fail.raise("Frame", req._name ..
                   " is not supported in this protocol version")
    end
end

M.Connect = { states = PRE, fn = function(conn, req)
    conn.client = req.client
    conn.state = "CONNECTED"
    log.info("session", "conn=%d connect client=\"%s\" version=TP0%d",
             conn.id, req.client, conn.version)
    return proto.okay("Protocol check ok, continue! Welcome to tpserver "
                      .. require("tp.core").version)
end }

M.GetFeatures = { states = ANY, fn = function(conn)
    -- TLS and HTTP here or on another listener (1-4) first.
    local f = require("tp.listeners").features(cfg, conn)
    f[#f + 1] = proto.FEATURE.KeepAlive
    if cfg.allow_account_creation then
        f[#f + 1] = proto.FEATURE.AccountCreate
    end
    if conn.version == 4 then
        f[#f + 1] = proto.FEATURE.FilterPadding
    end
    return proto.frame("Features", { features = f })
end }

M.Ping = { states = AFTER_CONNECT, fn = function()
    return proto.okay("pong")
end }

M.GetTimeRemaining = { states = AFTER_CONNECT, fn = function()
    return game.time_frame(proto.REASON.Requested)
end }

M.GetGames = { states = AFTER_CONNECT, fn = function(conn, req)
    tp04_only(conn, req)
    return { proto.sequence(1), game.game_frame() }
end }

M.SetFilters = { states = AFTER_CONNECT, fn = function(conn, req)
    tp04_only(conn, req)
    for _, f in ipairs(req.filters) do
        if f ~= proto.FEATURE.FilterPadding then
            fail.raise("UnavailablePermanently",
                       string.format("filter 0x%x is not offered", f))
        end
    end
    -- The Okay accepting the filter is itself unpadded (PROTOCOL.md 2.7).
    local reply = proto.okay("filters on")
    if #req.filters > 0 then
        conn:send(reply, req._seq)
        conn:set_padding(true)
        return nil
    end
    return reply
end }

local function login_ok(conn, player)
    conn.state = "READY"
    conn:set_logged_in()    -- the login deadline (login_timeout) is over
    conn.player = player.id
    game.sessions[conn] = player.id
    game.player_seen(player.id)     -- active this turn (tp.idle)
    logins:inc(1, { result = "ok" })
    log.info("session", "login", { conn = conn.id, player = player.id,
             name = player.name, peer = conn.peer })
    return proto.okay("Welcome " .. player.name)
end

M.Login = { states = CONNECTED, fn = function(conn, req)
    local name, why = accounts.normalize(req.username)
    if not name or req.password == "" then
        fail.raise("Frame", "Login Error - " .. (why or "empty password"))
    end
    dispatch.defer(conn, req, function(reply)
        local function check()
            accounts.verify(name, req.password, dispatch.guard(conn, req,
                reply, function(player)
                if player then
                    guard.succeeded(name, conn.peer)
                    return reply(login_ok(conn, player))
                end
                if not accounts.find(name) and cfg.auto_create_accounts then
                    return accounts.create(name, req.password,
                        { max_players = cfg.max_players, peer = conn.peer },
                        dispatch.guard(conn, req, reply, function(p, _, msg)
                            if not p then
                                fail.raise("PermissionDenied",
                                           "cannot create account: " .. msg)
                            end
                            reply(login_ok(conn, p))
                        end))
                end
                logins:inc(1, { result = "failed" })
                log.info("session", "login failed", { conn = conn.id,
                         peer = conn.peer, name = name })
                guard.login_failed(conn, name, log)
                fail.raise("Frame", "Login Error - bad username or password")
            end))
        end
        -- A name or address under a guessing attack waits first, whatever
        -- the password (tp.login_guard).
        guard.after_wait(conn, name, check)
    end)
end }

M.CreateAccount = { states = CONNECTED, fn = function(conn, req)
    if not cfg.allow_account_creation then
        fail.raise("PermissionDenied", "account creation is disabled on "
                   .. "this server; ask the game admin")
    end
    local name, why = accounts.normalize(req.username)
    if not name then
        fail.raise("Frame", "cannot create account: " .. why)
    end
    if req.password == "" then
        fail.raise("Frame", "cannot create account: empty password")
    end
    if cfg.max_players > 0 and accounts.count() >= cfg.max_players then
        fail.raise("PermissionDenied", string.format("cannot create "
                   .. "account: the game is full (%d players)",
                   cfg.max_players))
    end
    dispatch.defer(conn, req, function(reply)
        accounts.create(name, req.password,
            { email = req.email, comment = req.comment,
              max_players = cfg.max_players, peer = conn.peer,
              -- notify_email_default: an address given asks for mail.
              notify_email = cfg.notify_email_default and
                  require("tp.mail").valid_address(req.email) or nil },
            dispatch.guard(conn, req, reply, function(player, why, msg)
                if not player then
                    fail.raise(why == "full" and "PermissionDenied"
                               or why == "limited" and
                               "UnavailableTemporarily" or "Frame",
                               "cannot create account: " .. msg)
                end
                log.info("session", "conn=%d account \"%s\" created, "
                         .. "player %d", conn.id, name, player.id)
                reply(proto.okay("Account created."))
            end))
    end)
end }

M.FinishedTurn = { states = READY, fn = function(conn)
    game.finished_turn(conn.player)
    return proto.okay("Thanks for letting me know you have finished "
                      .. "your turn.")
end }

function M.init(config)
    cfg = config
    return M
end

local handlers = {}
for k, v in pairs(M) do
    if type(v) == "table" then
        handlers[k] = v
    end
end
M.handlers = handlers

return M
