-- admin: the admin console (a Lua REPL in the server over a Unix socket,
-- admin/console.lua, and over SSH, admin/ssh.lua), the TP admin protocol
-- listener (admin/protocol.lua)
-- and the control UI on the web listeners (admin/web.lua), over one admin
-- API (admin/commands.lua).
--
-- boot.lua calls start() once the game and the player listeners are up,
-- and wraps its hooks with hooks(): admin connections go to the admin
-- protocol, and a stop closes the console first.

local core = require "tp.core"
local log = require "tp.log"

local M = {}

local started = false
local protocol, console, ssh

-- Starts what the configuration asks for. Raises a message for the
-- terminal when the console socket or the admin port cannot be opened.
function M.start(cfg, args)
    require("admin.commands").init { cfg = cfg, home = args.home }
    local ok, service = pcall(require, "tp.service")
    if ok and service.live then
        -- Read each time they are used: a reload applies them.
        service.live.admins = true
        service.live.console_time_slice = true
    end
    local secret = require "admin.secret"
    for i, a in ipairs(cfg.admins or {}) do
        if type(a) ~= "table" or type(a.name) ~= "string" or a.name == "" then
            error(string.format("admins[%d] needs a name", i), 0)
        end
        if a.ssh_keys ~= nil and type(a.ssh_keys) ~= "table" then
            error(string.format("admins[%d] (%s): ssh_keys must be a list "
                                .. "of public keys", i, a.name), 0)
        end
        -- An admin with SSH keys may have no password (SSH only).
        if a.password_hash ~= nil or a.ssh_keys == nil then
            local rec, why = secret.parse(a.password_hash)
            if not rec then
                error(string.format("admins[%d] (%s): %s", i, a.name, why),
                      0)
            end
        end
    end
    if cfg.admin_port > 0 then
        protocol = require "admin.protocol"
        protocol.start(cfg)
        local port = core.listen(cfg.admin_bind, cfg.admin_port, "admin",
                                 "admin")
        cfg.admin_port = port
        if #(cfg.admins or {}) == 0 then
            log.warning("admin", "the admin listener on %s:%d has no "
                        .. "admins configured: nobody can log in (admins = "
                        .. "{ { name =, password_hash = } })",
                        cfg.admin_bind, port)
        end
        io.stderr:write(string.format("tpserver: admin protocol on "
            .. "tp://%s:%d/\n", cfg.admin_bind, port))
    end
    require("admin.console").configure(cfg)
    if cfg.console then
        console = require "admin.console"
        console.start(cfg)
    end
    -- The console over SSH.
    if #(cfg.ssh_listeners or {}) > 0 then
        ssh = require "admin.ssh"
        ssh.start(cfg)
    end
    -- The control UI (/admin), on the web listeners.
    local listeners = require "tp.listeners"
    for _, l in ipairs(cfg.listeners or {}) do
        if listeners.is_web(l.kind) then
            require("admin.web").start(cfg)
            break
        end
    end
    started = true
end

-- Closes the console socket (and stops pushing the log to admins).
function M.stop()
    if console then
        console.stop()
    end
    if ssh then
        ssh.stop()
    end
    if protocol then
        protocol.stop()
    end
    require("tp.logbus").stop()
end

-- Wraps boot.lua's hooks: admin connections are served by the admin
-- protocol; on_stop closes the console before the game stops.
function M.hooks(t)
    if protocol then
        local player_dispatch = t.dispatch
        t.dispatch = function(conn, req)
            if conn.admin then
                return protocol.dispatch(conn, req)
            end
            return player_dispatch(conn, req)
        end
        local on_close = t.on_close
        t.on_close = function(conn, reason)
            if conn.admin then
                protocol.closed(conn)
            end
            if on_close then
                return on_close(conn, reason)
            end
        end
    end
    local on_stop = t.on_stop
    t.on_stop = function()
        if started then
            M.stop()
        end
        if on_stop then
            return on_stop()
        end
    end
    return t
end

return M
