-- admin/protocol.lua: the TP administration protocol (admin.xml;
-- PROTOCOL.md section 16) on the optional admin listener, for existing
-- TP admin clients (tpadmin-cpp).
--
-- Session: Connect, then Login against the admin accounts of the
-- configuration (admins = { { name =, password_hash = } }; there is no
-- default account, so with none configured nobody gets in), then
-- GetCommandDescIDs / GetCommandDesc / Command. Before Connect only
-- Connect is served (Fail Protocol), before Login only Login and Ping
-- (Fail Frame). Player frames do not exist on this port (the codec
-- answers Fail Protocol).
--
-- Commands are tpserver-cpp's 22, numbered from 0 in its order (so that
-- clients and habits carry over), mapped onto the admin API; those that
-- make no sense here answer status 1 with the reason. Ours follow from 22.
-- String parameters travel as bare strings, as real clients send them
-- (PROTOCOL.md 16.2), integers as u32. CommandDesc carries the trailing
-- modtime real clients read.
--
-- While an admin is logged in, every log line the server writes is pushed
-- to it as LogMessage (sequence 0). Lines logged while pushing are not
-- pushed again (tp.console's log hook, through tp.logbus).

local codec = require "tp.codec"
local core = require "tp.core"
local dispatch = require "tp.dispatch"
local fail = require "tp.fail"
local game = require "tp.game"
local idseq = require "tp.idseq"
local login_guard = require "tp.login_guard"
local log = require "tp.log"
local logbus = require "tp.logbus"
local per_id = require("tp.handlers.common").per_id
local proto = require "tp.proto"
local commands = require "admin.commands"
local pretty = require "admin.pretty"
local secret = require "admin.secret"
local task = require "admin.task"

local M = {}

local STR, INT = 0, 1
local cfg
local api = commands.api
local modtime = os.time()         -- of every command description
local logged_in = {}              -- admin connection -> true

local function show(v)
    if v == nil then
        return ""
    end
    return pretty.format(v)
end

-- set-setting's value: numbers, true/false, else the string (as --set).
local function parse_value(s)
    if s == "true" then return true end
    if s == "false" then return false end
    return tonumber(s) or s
end

-- A command: { name, help, params = { { name, type, description } },
-- run = fn(args...) -> output (raise: status 1 with the message) }.
-- Results of run that are false, nil-with-message pairs use status 1:
-- run may return false, text to answer "did not work / is not the case".
local CMDS = {}

local function cmd(name, help, params, run)
    CMDS[#CMDS + 1] = { name = name, help = help, params = params or {},
                        run = run }
end

local function refuse(why)
    return function()
        return false, why
    end
end

-- tpserver-cpp's commands, ids 0..21 in its order.
cmd("turn-end", "End the current turn now.", nil, function()
    local n = api.turn.now()
    return "Turn ended; turn " .. n .. " started"
end)
cmd("turn-time", "Time until the end of the turn.", nil, function()
    local left = game.time_remaining()
    if left < 0 then
        return "No end of turn is scheduled (turn_mode " .. cfg.turn_mode ..
               (game.paused() and ", paused" or "") .. ")"
    end
    return string.format("%d of %d seconds remain until EOT", left,
                         cfg.turn_length)
end)
cmd("turn-reset", "Start the turn's clock again.", nil, function()
    api.turn.reset()
    return "Turn timer reset"
end)
cmd("turn-number", "The current turn number.", nil, function()
    return tostring(game.turn_number())
end)
cmd("network-start", "Start the player listeners.", nil, function()
    return "The network is started (it always is while the server runs)"
end)
cmd("network-stop", "Stop the player listeners.", nil,
    refuse("Not supported: the listeners run as long as the server; use "
           .. "player-kick, or server-quit"))
cmd("network-isstarted", "Whether the player listeners run.", nil,
    function()
        return "The network is started"
    end)
cmd("set-setting", "Set a configuration key in the running server.",
    { { "setting", STR, "the configuration key" },
      { "value", STR, "its new value" } }, function(key, value)
    return api.setting(key, parse_value(value))
end)
cmd("get-setting", "Show a configuration key.",
    { { "setting", STR, "the configuration key" } }, function(key)
    if not require("tp.config").schema[key] then
        return false, "No such setting: " .. key
    end
    return show(api.setting(key))
end)
cmd("reconfigure", "Reload the configuration file.", nil, function()
    return "Configuration " .. api.reload()
end)
cmd("plugin-load", "Load a plugin.",
    { { "plugin", STR, "the plugin's name" } },
    refuse("Not supported: tpserver has no plugins; rulesets are Lua "
           .. "folders (reload-ruleset reloads the running one)"))
cmd("plugin-list", "List the loaded plugins.", nil, function()
    local rs = game.ruleset()
    return string.format("No plugins; ruleset %s %s (Lua, rulesets/%s)",
                         rs.name, rs.version, tostring(rs.folder))
end)
cmd("set-ruleset", "Choose the ruleset.",
    { { "ruleset", STR, "the ruleset's name" } }, function()
    local rs = game.ruleset()
    return false, "Not supported while the game runs: the ruleset is "
                  .. "chosen at start (ruleset in tpserver.lua); this game "
                  .. "runs " .. rs.name
end)
cmd("get-ruleset", "The ruleset's name and version.", nil, function()
    local rs = game.ruleset()
    return rs.name .. " " .. rs.version
end)
cmd("set-tpscheme", "Choose the TPCL implementation.",
    { { "tpscheme", STR, "the implementation's name" } },
    refuse("Not supported: there is no TPCL here; rulesets compute in Lua"))
cmd("set-persistence", "Choose the persistence module.",
    { { "persist", STR, "the module's name" } },
    refuse("Not supported: the game is always stored in LevelDB"))
cmd("game-load", "Load the game.", nil, function()
    return "The game is loaded (it always is while the server runs)"
end)
cmd("game-start", "Start the game.", nil, function()
    return "The game is started (it always is while the server runs)"
end)
cmd("game-isstarted", "Whether the game is started.", nil, function()
    return "The game is started" .. (game.paused() and
                                     " (turns are paused)" or "")
end)
cmd("status", "The server's status.", nil, function()
    local s = api.status()
    local lines = {
        "Server: " .. s.server,
        "Persistence: LevelDB in " .. tostring(s.data),
        "Ruleset: " .. s.ruleset,
        "Game loaded: yes, started: yes" .. (s.paused and
                                             " (turns paused)" or ""),
        "Turn: " .. s.turn,
        "Turn mode: " .. s.turn_mode .. ", length " .. s.turn_length ..
            " s",
        "Time to end of turn: " .. (s.time_left < 0 and "none" or
                                    (s.time_left .. " s")),
        string.format("Players: %d, logged in %d, not finished %d",
                      s.players, s.logged_in, #s.waiting_for),
        "Connections: " .. s.connections,
        "Network started: yes",
    }
    return table.concat(lines, "\n")
end)
cmd("server-quit", "Stop the server cleanly.", nil, function()
    api.shutdown()
    return "Server stopping"
end)
cmd("nuke-object", "Remove an object from the universe.",
    { { "objectid", INT, "the object's id" } }, function(id)
    return api.nuke(id)
end)

-- Ours.
cmd("player-list", "List the players.", nil, function()
    return show(api.players())
end)
cmd("player-add", "Add a player.",
    { { "name", STR, "the player's name" },
      { "password", STR, "their password" } }, function(name, password)
    local p = api.add_player(name, password)
    return string.format("Player %d (%s) added", p.id, p.name)
end)
cmd("player-remove", "Remove a player's account.",
    { { "name", STR, "the player's name" } }, function(name)
    return api.remove_player(name)
end)
cmd("player-password", "Set a player's password.",
    { { "name", STR, "the player's name" },
      { "password", STR, "the new password" } }, function(name, password)
    return api.reset_password(name, password)
end)
cmd("player-kick", "Disconnect a player.",
    { { "name", STR, "the player's name" } }, function(name)
    return api.kick(name) .. " connection(s) closed"
end)
cmd("player-ban", "Ban a player.",
    { { "name", STR, "the player's name" },
      { "reason", STR, "why (kept with the account)" } },
    function(name, reason)
        return api.ban(name, reason)
    end)
cmd("player-unban", "Lift a player's ban.",
    { { "name", STR, "the player's name" } }, function(name)
    return api.unban(name)
end)
cmd("message-send", "Post a message to a player's board.",
    { { "player", STR, "the player's name" },
      { "subject", STR, "the subject" }, { "body", STR, "the text" } },
    function(who, subject, body)
        return api.message(who, subject, body)
    end)
cmd("message-broadcast", "Post a message to every player's board.",
    { { "subject", STR, "the subject" }, { "body", STR, "the text" } },
    function(subject, body)
        return "Sent to " .. api.broadcast(subject, body) .. " players"
    end)
cmd("turn-length", "Set the turn length and restart the clock.",
    { { "seconds", INT, "the turn length in seconds (0: none)" } },
    function(seconds)
        return "Turn length " .. api.turn.length(seconds) .. " s"
    end)
cmd("turn-mode", "Set when turns end.",
    { { "mode", STR, "fixed, players_finished or manual" } },
    function(mode)
        return "Turn mode " .. api.turn.mode(mode)
    end)
cmd("turn-pause", "Hold the turns.", nil, function()
    return api.turn.pause()
end)
cmd("turn-resume", "Let the turns run again.", nil, function()
    return api.turn.resume()
end)
cmd("backup", "Copy the game into a new data directory.",
    { { "dir", STR, "the folder (absolute, or from the server's start "
                    .. "folder)" } }, function(dir)
    return tostring(api.backup(dir))
end)
cmd("reload-ruleset", "Reload the ruleset's Lua files.", nil, function()
    return api.reload_ruleset()
end)
cmd("log-level", "Set the log level.",
    { { "level", STR, "error, warning, info, debug or trace" },
      { "module", STR, "one module, or empty for the default level" } },
    function(level, module)
        api.log_level(level, module ~= "" and module or nil)
        return "Log level " .. level ..
               (module ~= "" and (" for " .. module) or "")
    end)
cmd("connections", "List the open connections.", nil, function()
    return show(api.connections())
end)
cmd("stats", "Server statistics.", nil, function()
    return show(api.stats())
end)
cmd("object-list", "List objects.",
    { { "filter", STR, "type name or part of a name; empty: all" } },
    function(filter)
        return show(api.objects(filter ~= "" and filter or nil))
    end)
cmd("object-show", "Show an object.",
    { { "objectid", INT, "the object's id" } }, function(id)
    return show(api.object(id))
end)

-- Parameter layouts of Command (1006), by command id.
for _, c in ipairs(CMDS) do
    local items = {}
    for i, p in ipairs(c.params) do
        items[i] = (p[2] == INT and "I:" or "S:") .. p[1]
    end
    c.layout = codec.compile(table.concat(items, " "))
end

M.COMMANDS = CMDS

-- ------------------------------------------------------------ frames

local function desc_frame(id)
    local c = CMDS[id + 1]
    if not c then
        fail.raise("NoSuchThing", "no command " .. id)
    end
    local params = {}
    for i, p in ipairs(c.params) do
        params[i] = { name = p[1], type = p[2], description = p[3] }
    end
    return proto.frame("CommandDesc", { id = id, name = c.name,
                       help = c.help, parameters = params,
                       modtime = modtime })
end

-- Runs command c with its decoded arguments as a task (it may wait);
-- reply(frame) answers.
local function run_command(conn, c, args, reply)
    local printed = {}
    local t
    local function step(...)
        local res = { coroutine.resume(t.co, ...) }
        if res[1] and res[2] == task.WAIT then
            return          -- waiting: the task's resume comes back
        end
        t:cancel()
        local status, output
        if not res[1] then
            status, output = 1, "internal error: " .. tostring(res[2])
            log.error("admin", "command %s failed: %s", c.name,
                      tostring(res[2]))
        elseif not res[2] then
            local e = res[3]
            status = 1
            output = type(e) == "table" and tostring(e.message) or
                     tostring(e)
        elseif res[3] == false then
            status, output = 1, tostring(res[4] or "")
        else
            status, output = 0, res[3] == nil and "" or tostring(res[3])
        end
        if #printed > 0 then
            output = table.concat(printed) .. output
        end
        -- The answer is one frame: cut what does not fit.
        local room = (cfg.max_frame_size or 1048576) - 1024
        if #output > room then
            output = output:sub(1, room - 64) .. string.format(
                "\n...(%d bytes in all; cut)", #output)
        end
        -- Commands commit what they change; what a failed one left is
        -- thrown away.
        local model = require "tp.model"
        if model.is_dirty() then
            local stored = status == 0 and pcall(model.commit)
            if not stored then
                model.rollback()
            end
            if status == 0 and not stored then
                status = 1
                output = "the changes could not be stored (see the "
                         .. "server log); nothing was changed"
                log.error("admin", "conn=%d command: the database write "
                          .. "failed", conn.id)
            end
        end
        local sent, err = pcall(reply, proto.frame("CommandResult",
                                { status = status, output = output }))
        if not sent then
            log.error("admin", "conn=%d cannot answer command %s: %s",
                      conn.id, c.name, tostring(err))
            conn:close("cannot answer")
        end
    end
    t = task.new(function()
        return pcall(c.run, unpack(args, 1, #c.params))
    end, { who = "admin " .. tostring(conn.admin_name) .. " (" ..
                 tostring(conn.peer) .. ")",
           output = function(text) printed[#printed + 1] = text end,
           resume = function(_, ...) step(...) end })
    step()
end

local PRE = { PRE = true }
local CONNECTED = { CONNECTED = true }
local AFTER_CONNECT = { CONNECTED = true, READY = true }
local READY = { READY = true }

local H = {}

H.Connect = { states = PRE, fn = function(conn, req)
    conn.client = req.client
    conn.state = "CONNECTED"
    log.info("admin", "conn=%d admin connect client=\"%s\"", conn.id,
             req.client)
    return proto.okay("Protocol check ok, continue! tpserver " ..
                      core.version .. " administration")
end }

H.Ping = { states = AFTER_CONNECT, fn = function()
    return proto.okay("pong")
end }

-- The admin account named name, or nil.
local function admin_account(name)
    return secret.account(cfg, name)
end

H.Login = { states = CONNECTED, fn = function(conn, req)
    local name = (req.username or ""):match("^([^@]*)")
    if name == "" or req.password == "" then
        fail.raise("Frame", "Login Error - bad username or password")
    end
    local account = admin_account(name)
    -- Admin names are counted apart from players' (tp.login_guard).
    local key = "admin:" .. name
    dispatch.defer(conn, req, function(reply)
        local function check()
            secret.verify_async(req.password,
                account and account.password_hash,
                dispatch.guard(conn, req, reply, function(ok)
                if not (ok and account) then
                    log.warning("admin", "conn=%d peer=%s failed admin "
                                .. "login as \"%s\"", conn.id, conn.peer,
                                name)
                    login_guard.login_failed(conn, key, log)
                    fail.raise("Frame", "Login Error - bad username or "
                               .. "password")
                end
                login_guard.succeeded(key, conn.peer)
                conn.state = "READY"
                conn.admin_name = name
                conn:set_logged_in()
                log.info("admin", "conn=%d peer=%s admin %s logged in",
                         conn.id, conn.peer, name)
                M.attach(conn)
                reply(proto.okay("Welcome " .. name))
            end))
        end
        login_guard.after_wait(conn, key, check)
    end)
end }

-- Clamped and keyed like every other ID list (tp.idseq): tpadmin-cpp
-- asks for 8737 ids from 0.
local function command_list()
    local out = {}
    for i = 1, #CMDS do
        out[#out + 1] = { id = i - 1, modtime = modtime }
    end
    return out
end

H.GetCommandDescIDs = { states = READY, fn = function(conn, req)
    return idseq.answer(conn, "GetCommandDescIDs", req, "CommandDescIDs",
                        command_list)
end }

H.GetCommandDesc = { states = READY, fn = function(conn, req)
    return per_id(conn, req, req.ids, desc_frame)
end }

H.Command = { states = READY, fn = function(conn, req)
    local c = CMDS[req.ctype + 1]
    if not c then
        fail.raise("NoSuchThing", "no command " .. req.ctype)
    end
    local values, used = codec.decode(c.layout, req.params or "")
    if not values then
        fail.raise("Frame", "bad parameters for " .. c.name .. ": " ..
                   tostring(used))
    end
    local args = {}
    for i, p in ipairs(c.params) do
        args[i] = values[p[1]]
    end
    log.info("admin", "conn=%d admin %s command %s", conn.id,
             tostring(conn.admin_name), c.name)
    dispatch.defer(conn, req, function(reply)
        run_command(conn, c, args, reply)
    end)
end }

function M.dispatch(conn, req)
    local h = H[req._name]
    local state = conn.state
    if not h then
        fail.raise("Protocol", req._name .. " is not served on the admin "
                   .. "port")
    end
    if not h.states[state] then
        if state == "PRE" then
            fail.raise("Protocol", "first frame must be Connect")
        elseif state == "CONNECTED" then
            fail.raise("Frame", "log in first")
        end
        fail.raise("Frame", req._name .. " is not allowed after login")
    end
    dispatch.check_size(conn, req)
    return h.fn(conn, req)
end

-- ------------------------------------------------------------ log push

local LEVELS = { error = 3, warning = 2, info = 1, debug = 0, trace = 0 }

local function push_lines(lines, dropped)
    local frames = {}
    for i, l in ipairs(lines) do
        frames[i] = proto.frame("LogMessage", {
            timestamp = math.floor(l.time), level = LEVELS[l.level] or 1,
            message = l.module .. ": " .. l.text })
    end
    if dropped and dropped > 0 then
        frames[#frames + 1] = proto.frame("LogMessage", {
            timestamp = os.time(), level = 2,
            message = string.format("admin: %d log lines were not sent "
                                    .. "(too many at once)", dropped) })
    end
    for conn in pairs(logged_in) do
        if conn.closed then
            logged_in[conn] = nil
        else
            pcall(conn.send, conn, frames)
        end
    end
end

-- conn is a logged-in admin: it gets the log from now on.
local unsubscribe

function M.attach(conn)
    if not unsubscribe then
        unsubscribe = logbus.subscribe(push_lines)
    end
    logged_in[conn] = true
end

local function detach_all()
    if unsubscribe then
        unsubscribe()
        unsubscribe = nil
    end
end

function M.closed(conn)
    if logged_in[conn] then
        logged_in[conn] = nil
        if next(logged_in) == nil then
            detach_all()
        end
    end
end

function M.start(config)
    cfg = config
end

function M.stop()
    logged_in = {}
    detach_all()
end

return M
