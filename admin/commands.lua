-- admin/commands.lua: the admin API, what the console has in scope (and
-- what the TP admin protocol's commands call).
--
-- Each command is declared once with def(section, name, usage, text, fn):
-- help() lists them by section, help(name) explains one. Commands raise
-- with a plain message (no position) when they cannot do what was asked;
-- they commit what they change before returning. Commands that wait (for
-- a password hash, a backup) suspend their task (admin/task.lua), so the
-- server goes on serving meanwhile.
--
-- Besides the commands, the scope holds the standard library and the
-- server's modules (game, model, accounts, types, core), and G, the
-- server's real global table: any Lua is allowed, it is an admin console.

local accounts = require "tp.accounts"
local core = require "tp.core"
local game = require "tp.game"
local log = require "tp.log"
local model = require "tp.model"
local types = require "tp.types"
local pretty = require "admin.pretty"
local task = require "admin.task"

local M = {}

local api = {}          -- the scope: name -> value
local docs = {}         -- name -> { section, usage, summary, text }
local by_value = {}     -- command function -> name (help(turn.now))
local names = {}        -- command names in declaration order
local opts = {}         -- init(): cfg, home, stop_console

M.api = api
M.docs = docs

M.SECTIONS = {
    { "game", "Game and turns" },
    { "players", "Players" },
    { "objects", "Objects and orders" },
    { "messages", "Messages" },
    { "server", "Server" },
    { "console", "The console" },
}

-- What help() lists for each command (help(name) shows the whole text).
M.SUMMARY = {
    status = "the game and the server at a glance",
    ["turn.now"] = "end the turn now",
    ["turn.number"] = "the current turn",
    ["turn.remaining"] = "seconds to the end of the turn",
    ["turn.waiting"] = "players who have not finished",
    ["turn.length"] = "get or set the turn length",
    ["turn.mode"] = "get or set when turns end",
    ["turn.pause"] = "hold the turns",
    ["turn.resume"] = "let the turns run again",
    ["turn.reset"] = "start the turn's clock again",
    ["game.new"] = "archive this game and start the next",
    players = "list the players",
    player = "one player's details",
    add_player = "create an account and its player",
    remove_player = "remove an account",
    reset_password = "give a player a new password",
    kick = "disconnect a player",
    ban = "refuse a player's logins",
    unban = "let a banned player in again",
    ["ai.add"] = "add a computer player",
    ["ai.remove"] = "remove a computer player",
    ["ai.list"] = "the players the AI plays",
    objects = "list objects (by type, name, owner)",
    find = "objects whose name contains text",
    object = "one object, whole",
    edit = "change an object, checked",
    nuke = "remove an object from the universe",
    orders = "the orders queued on an object",
    remove_order = "remove one order",
    clear_orders = "remove every order of an object",
    battles = "the battles fought, with their logs",
    battle = "one battle's log (BattleXML)",
    message = "post to a player's board",
    broadcast = "post to every player's board",
    stats = "server statistics",
    connections = "open TP connections",
    discovery = "Zeroconf and metaserver state",
    log_level = "get or set log levels",
    reload = "reload the configuration (as SIGHUP)",
    reload_ruleset = "reload the ruleset's Lua files",
    backup = "copy the game into a folder, wait",
    config = "the running configuration",
    setting = "get or set one configuration key",
    shutdown = "stop the server cleanly",
    clock_shift = "tests: move the server's clock",
    help = "this list, or one command's help",
    print = "write to the console",
    pp = "print a value in full",
    sleep = "wait without holding the server",
    timeslice = "how long a command may hold the server",
    traceback = "the last error's traceback",
    quit = "leave the console (or Ctrl-D)",
}

-- Raises msg (formatted) without a position: a refusal, not a bug.
local function fail(fmt, ...)
    error(string.format(fmt, ...), 0)
end
M.fail = fail

local function def(section, name, usage, text, value)
    local summary = M.SUMMARY[name] or text:match("^[^\n]*")
    docs[name] = { section = section, usage = usage, summary = summary,
                   text = text, name = name }
    names[#names + 1] = name
    local parent, leaf = name:match("^([%w_]+)%.([%w_]+)$")
    if parent then
        api[parent] = api[parent] or {}
        api[parent][leaf] = value
    else
        api[name] = value
    end
    if type(value) == "function" then
        by_value[value] = name
    end
end

-- A list whose console display is a text table (pretty's __pretty).
local function listing(headers, rows, fields)
    local list = {}
    for i, r in ipairs(rows) do
        list[i] = r
    end
    return setmetatable(list, { __pretty = function(t)
        local cells = {}
        for i, r in ipairs(t) do
            local row = {}
            for j, f in ipairs(fields) do
                local v = r[f]
                if type(v) == "boolean" then
                    v = v and "yes" or "no"
                elseif type(v) == "number" then
                    v = v == math.floor(v) and string.format("%d", v)
                        or string.format("%.1f", v)
                end
                row[j] = v == nil and "" or tostring(v)
            end
            cells[i] = row
        end
        return pretty.columns(headers, cells)
    end })
end

local function count(t)
    local n = 0
    for _ in pairs(t) do
        n = n + 1
    end
    return n
end

local function check_type(v, want, what)
    if type(v) ~= want then
        fail("%s must be a %s, not %s", what, want, type(v))
    end
end

-- ------------------------------------------------------------ lookups

-- A player by name (as typed at login: "name" or "name@game") or id.
local function find_player(who)
    if type(who) == "table" and type(who.id) == "number" then
        who = who.id
    end
    if type(who) == "number" then
        local p = accounts.player(who)
        if not p then
            fail("no player %d", who)
        end
        return p
    end
    if type(who) ~= "string" then
        fail("a player name or id, please (got %s)", type(who))
    end
    local name = accounts.normalize(who)
    local account = name and accounts.find(name)
    local p = account and accounts.player(account.id)
    if not p then
        fail("no player named '%s'", who)
    end
    return p
end
M.find_player = find_player

local function find_object(id)
    if type(id) == "table" and type(id.id) == "number" then
        id = id.id
    end
    check_type(id, "number", "the object id")
    local o = model.objects[id]
    if not o then
        fail("no object %d%s", id, model.gone[id] and " (it is gone)" or "")
    end
    return o
end

local function type_name(o)
    local t = types.objects[o.type]
    return t and t.name or ("type " .. tostring(o.type))
end

local function player_name(id)
    local p = id and id ~= 0 and accounts.player(id)
    return p and p.name or (id == 0 and "" or tostring(id))
end

-- Open player connections of player id.
local function connections_of(id)
    local out = {}
    for _, c in ipairs(core.connections()) do
        if not c.admin and c.player == id and not c.closed then
            out[#out + 1] = c
        end
    end
    -- Web sessions (tp.web.vconn): logged in without a TP connection.
    for c, pid in pairs(game.sessions) do
        if c.virtual and pid == id and not c.closed then
            out[#out + 1] = c
        end
    end
    return out
end

-- Whoever runs the command, for the log.
local function who()
    local t = task.current()
    return t and t.who or "admin"
end

-- The game's universe as one-line summaries, in nested positions.
pretty.summarizer(function(v)
    if type(v) ~= "table" or type(v.id) ~= "number" then
        return nil
    end
    if model.objects[v.id] == v then
        return string.format("<%s #%d %s owner=%s>", type_name(v), v.id,
                             pretty.quote(v.name or "", 40),
                             tostring(v.owner or 0))
    elseif accounts.player(v.id) == v then
        return string.format("<player #%d %s>", v.id, v.name)
    elseif model.boards[v.id] == v then
        return string.format("<board #%d %s, %d messages>", v.id,
                             pretty.quote(v.name or "", 40), #v.msgs)
    elseif model.designs[v.id] == v then
        return string.format("<design #%d %s>", v.id,
                             pretty.quote(v.name or "", 40))
    end
end)

-- ------------------------------------------------------------ game

def("game", "status", "status()", [[
The game and the server at a glance: ruleset, turn, time left and the
turn's end in turn_timezone (turn_ends), the turn schedule, the end of the
game once it is over, players (logged in, still to finish),
connections.]], function()
    local rs = game.ruleset()
    local waiting = {}
    for _, id in ipairs(game.waiting()) do
        waiting[#waiting + 1] = player_name(id)
    end
    local paused = game.paused()
    local st = core.stats()
    return {
        server = "tpserver " .. core.version,
        ruleset = rs.name .. " " .. rs.version,
        turn = game.turn_number(),
        turn_name = game.turn_record().name,
        time_left = game.time_remaining(),
        turn_ends = game.ends_at_text(),
        turn_schedule = #opts.cfg.turn_schedule > 0 and
                        table.concat(opts.cfg.turn_schedule, ", ") or nil,
        game_over = game.over() and ("after turn " .. game.over().turn ..
                                     ": " .. game.over().reason) or nil,
        turn_mode = opts.cfg.turn_mode,
        turn_length = opts.cfg.turn_length,
        paused = paused and true or false,
        players = accounts.count(),
        logged_in = count(game.sessions),
        waiting_for = waiting,
        connections = st.connections,
        objects = count(model.objects),
        data = opts.cfg.data,
    }
end)

def("game", "turn.now", "turn.now()", [[
Ends the turn at once: the ruleset's turn runs, players get the end of
turn and the new turn's TimeRemaining frames. Returns the new turn's
number. If the ruleset fails, the turn is not advanced and nothing of it
is kept (the log has the traceback).]], function()
    local before = game.turn_number()
    if game.over() then
        fail("the game is over (after turn %d: %s): no turn ends any more; "
             .. "game.new{} starts the next game", game.over().turn,
             game.over().reason)
    end
    log.info("admin", "turn %d ended by %s", before, who())
    local ok = require("tp.console").unhooked(game.end_turn, "admin")
    if not ok then
        fail("the turn failed: turn %d is not advanced (see the server "
             .. "log)", before)
    end
    return game.turn_number()
end)

def("game", "turn.number", "turn.number()", [[
The current turn's number.]], function()
    return game.turn_number()
end)

def("game", "turn.remaining", "turn.remaining()", [[
Seconds until the end of the turn, or -1 when no clock runs (manual mode,
no turn length, paused).]], function()
    return game.time_remaining()
end)

def("game", "turn.waiting", "turn.waiting()", [[
Names of the players who have not finished this turn.]], function()
    local out = {}
    for _, id in ipairs(game.waiting()) do
        out[#out + 1] = player_name(id)
    end
    return out
end)

def("game", "turn.length", "turn.length([seconds])", [[
The turn length in seconds (0: no limit). With an argument, sets it and
starts the turn's clock again from now with the new length. Lasts until
the configuration is reloaded or the server restarts (put it in
tpserver.lua to keep it).]], function(seconds)
    if seconds == nil then
        return opts.cfg.turn_length
    end
    check_type(seconds, "number", "the turn length")
    if seconds < 0 or seconds ~= math.floor(seconds) then
        fail("the turn length is a whole number of seconds, 0 or more")
    end
    opts.cfg.turn_length = seconds
    game.reset_timer()
    log.info("admin", "turn length set to %d s by %s", seconds, who())
    return seconds
end)

def("game", "turn.mode", "turn.mode([mode])", [[
When turns end: "fixed" (after turn length seconds), "players_finished"
(when every player has finished, or after turn length), "threshold" (a
long timer until turn_player_threshold percent of the players have
finished, then turn_length_over_threshold seconds), "manual" (only by
turn.now()). With an argument, sets it and starts the clock again.]],
function(mode)
    if mode == nil then
        return opts.cfg.turn_mode
    end
    if mode ~= "fixed" and mode ~= "players_finished" and
       mode ~= "threshold" and mode ~= "manual" then
        fail("the turn mode is \"fixed\", \"players_finished\", "
             .. "\"threshold\" or \"manual\"")
    end
    opts.cfg.turn_mode = mode
    game.reset_timer()
    log.info("admin", "turn mode set to %s by %s", mode, who())
    return mode
end)

def("game", "turn.pause", "turn.pause()", [[
Holds the turns: no turn ends, neither by the clock nor because everyone
finished, until turn.resume() (turn.now() still works). The time left is
kept. Survives a restart.]], function()
    if not game.pause() then
        return "already paused"
    end
    log.info("admin", "turns paused by %s", who())
    return "paused"
end)

def("game", "turn.resume", "turn.resume()", [[
Lets the turns run again after turn.pause(), with the time that was left.]],
function()
    if not game.resume() then
        return "not paused"
    end
    log.info("admin", "turns resumed by %s", who())
    return "resumed"
end)

def("game", "turn.reset", "turn.reset()", [[
Starts the turn's clock again: the turn ends turn length seconds from now.]],
function()
    game.reset_timer()
    return game.time_remaining()
end)

-- ------------------------------------------------------------ players

local function player_row(p)
    local account = accounts.find(p.name) or {}
    local finished = true
    for _, id in ipairs(game.waiting()) do
        if id == p.id then
            finished = false
        end
    end
    if p.idle then      -- not waited for, but not finished either
        finished = game.turn_record().finished[tostring(p.id)] == true
    end
    return { id = p.id, name = p.name, online = #connections_of(p.id),
             finished = finished, alive = p.alive ~= false,
             ai = require("tp.ai").level_of(p) or "",
             idle = p.idle ~= nil, removed = p.removed and true or false,
             banned = account.banned and true or false,
             email = account.email or "", board = p.board,
             score = p.score, created = p.created }
end

def("players", "players", "players()", [[
Every player: id, name, open connections, whether they finished the turn,
are idle (neither logged in nor finished for idle_turns turns: not waited
for), are still in the game, are banned, and the AI level of computer
players (and of humans whose empire the AI plays).]], function()
    local rows = {}
    for _, p in ipairs(accounts.players()) do
        rows[#rows + 1] = player_row(p)
    end
    return listing({ "id", "name", "online", "finished", "idle", "alive",
                     "banned", "AI" }, rows,
                   { "id", "name", "online", "finished", "idle", "alive",
                     "banned", "ai" })
end)

def("players", "player", "player(name | id)", [[
One player's details (a copy: change players with the commands below).
The player's own record, which the ruleset keeps, is
accounts.player(id).]], function(who_)
    local p = find_player(who_)
    local row = player_row(p)
    local account = accounts.find(p.name) or {}
    row.banned = account.banned
    row.connections = {}
    for _, c in ipairs(connections_of(p.id)) do
        row.connections[#row.connections + 1] = tostring(c)
    end
    return row
end)

def("players", "add_player", "add_player(name, password [, email])", [[
Creates an account and its player, who joins the game as if they had
created the account themselves (board, welcome, the ruleset's start).]],
function(name, password, email)
    check_type(name, "string", "the name")
    check_type(password, "string", "the password")
    if password == "" then
        fail("an empty password is not allowed")
    end
    local n, why = accounts.normalize(name)
    if not n then
        fail("bad name: %s", why)
    end
    local p, _, msg = task.await(function(done)
        accounts.create(n, password, { email = email or "",
                                       comment = "added by " .. who() },
                        done)
    end)
    if not p then
        fail("%s", msg or "cannot add the player")
    end
    log.info("admin", "player %d (%s) added by %s", p.id, p.name, who())
    return player_row(p)
end)

def("players", "remove_player", "remove_player(name | id)", [[
Removes the account and the player record; their connections are
closed. What they owned in the game stays, with its owner id.]],
function(who_)
    local p = find_player(who_)
    for _, c in ipairs(connections_of(p.id)) do
        c:close("player removed by the admin")
    end
    local ok, err = accounts.remove(p.name)
    if not ok then
        fail("%s", err)
    end
    require("tp.ai").forget(p.id)
    log.info("admin", "player %d (%s) removed by %s", p.id, p.name, who())
    return string.format("player %d (%s) removed", p.id, p.name)
end)

def("players", "reset_password", "reset_password(name | id, password)", [[
Gives the player a new password (the old one stops working; open
connections stay).]], function(who_, password)
    local p = find_player(who_)
    check_type(password, "string", "the password")
    if password == "" then
        fail("an empty password is not allowed")
    end
    local ok, err = task.await(function(done)
        accounts.set_password(p.name, password, done)
    end)
    if not ok then
        fail("%s", err)
    end
    log.info("admin", "password of player %d (%s) reset by %s", p.id,
             p.name, who())
    return "password changed"
end)

def("players", "kick", "kick(name | id [, reason])", [[
Disconnects the player's open connections (they may log in again).
Returns how many were closed.]], function(who_, reason)
    local p = find_player(who_)
    local conns = connections_of(p.id)
    for _, c in ipairs(conns) do
        c:close("kicked by the admin" ..
                (reason and (": " .. tostring(reason)) or ""))
    end
    log.info("admin", "player %d (%s) kicked by %s (%d connections)",
             p.id, p.name, who(), #conns)
    return #conns
end)

def("players", "ban", "ban(name | id [, reason])", [[
Bans the player: logins are refused (as for a wrong password) until
unban(); their connections are closed.]], function(who_, reason)
    local p = find_player(who_)
    local ok, err = accounts.ban(p.name, reason and tostring(reason) or "")
    if not ok then
        fail("%s", err)
    end
    for _, c in ipairs(connections_of(p.id)) do
        c:close("banned by the admin")
    end
    log.info("admin", "player %d (%s) banned by %s", p.id, p.name, who())
    return "banned"
end)

def("players", "unban", "unban(name | id)", [[
Lets a banned player log in again.]], function(who_)
    local p = find_player(who_)
    local ok, err = accounts.unban(p.name)
    if not ok then
        fail("%s", err)
    end
    log.info("admin", "player %d (%s) unbanned by %s", p.id, p.name, who())
    return "unbanned"
end)

-- Notifications (tp.notify, tp.mail; README "Notifications").

def("players", "notify.email", "notify.email(name | id [, address [, on]])",
[[
A player's e-mail address and whether they get turn mails
(notify_email): read them with only the player; set the address ("" for
none, nil to keep it) and turn the mails on or off (true / false; nil
keeps it). Stored before it returns; the player changes the same on the
web page.]], function(who_, address, on)
    local p = find_player(who_)
    if address ~= nil or on ~= nil then
        local a, err = accounts.set_email(p.name, address, on)
        if not a then
            fail("%s", err)
        end
        log.info("admin", "e-mail settings of player %d (%s) changed by %s",
                 p.id, p.name, who())
    end
    local a = accounts.find(p.name) or {}
    return { name = p.name, email = a.email or "",
             notify_email = a.notify_email == true }
end)

def("server", "notify.status", "notify.status()", [[
The web hooks (url, format, events, queued, sent, failed, last error)
and the mail (queued, sent, failed, last error, the reminder's lead and
the last turn reminded).]], function()
    local st = require("tp.notify").status()
    st.hooks = listing({ "url", "format", "events", "queued", "sent",
                         "failed", "error" }, st.hooks,
                       { "url", "format", "events", "queued", "sent",
                         "failed", "error" })
    return st
end)

def("players", "notify.remind", "notify.remind()", [[
Mails the reminder of the running turn now to the players who asked for
mail and have not finished it. Returns how many were mailed.]], function()
    local n = require("tp.notify").remind(game.turn_number())
    log.info("admin", "turn %d's reminder mailed to %d players by %s",
             game.turn_number(), n, who())
    return n
end)

def("players", "locked", "locked()", [[
Account names and client addresses whose logins are being slowed down
after repeated wrong passwords: failures, the wait each login gets now
(seconds), the time of the last failure. They are forgotten 15 minutes
after their last failure; unlock() forgets them at once.]], function()
    local rows = require("tp.login_guard").locked()
    for _, r in ipairs(rows) do
        r.last = os.date("!%Y-%m-%d %H:%M:%S", r.last)
    end
    return listing({ "kind", "name or address", "failures", "wait (s)",
                     "last failure (UTC)" }, rows,
                   { "kind", "key", "failures", "delay", "last" })
end)

def("players", "unlock", "unlock()", [[
Forgets every count of failed logins (see locked()).]], function()
    require("tp.login_guard").clear()
    log.info("admin", "failed-login counts cleared by %s", who())
    return "unlocked"
end)

-- Computer players (tp.ai; rulesets/README.md, "AI players").

def("players", "ai.add", "ai.add([name] [, level])", [[
Adds a computer player: an account nobody can log into, which joins the
game as any player does and is played by the ruleset's AI (ai.lua) at
level (the ruleset's levels, e.g. "easy" or "normal"; default ai_level).
Without a name, the next free one of the AI names. It plays the running
turn at once.]], function(name, level)
    local ai = require "tp.ai"
    if name == nil then
        name = ai.free_name()
    end
    check_type(name, "string", "the name")
    if level ~= nil then
        check_type(level, "string", "the level")
    end
    local p, err = ai.add(name, level)
    if not p then
        fail("%s", err)
    end
    log.info("admin", "computer player %d (%s) added by %s", p.id, p.name,
             who())
    return player_row(p)
end)

def("players", "ai.remove", "ai.remove(name | id)", [[
Removes a computer player's account (what it owned stays, with its owner
id, as with remove_player) and its memory.]], function(who_)
    local p = find_player(who_)
    local removed, err = require("tp.ai").remove(p.name)
    if not removed then
        fail("%s", err)
    end
    log.info("admin", "computer player %d (%s) removed by %s", p.id, p.name,
             who())
    return string.format("computer player %d (%s) removed", p.id, p.name)
end)

def("players", "ai.list", "ai.list()", [[
The players the AI plays: computer players, and humans whose empire was
handed to it (controlled = yes); their level, whether they are still in
the game and have finished the turn.]], function()
    return listing({ "id", "name", "level", "controlled", "alive",
                     "finished" }, require("tp.ai").list(),
                   { "id", "name", "level", "controlled", "alive",
                     "finished" })
end)

-- ------------------------------------------------------------ objects

local function object_row(o)
    local pos = o.pos or {}
    return { id = o.id, type = type_name(o), name = o.name,
             owner = player_name(o.owner), parent = o.parent,
             pos = string.format("%s,%s,%s", tostring(pos.x or 0),
                                 tostring(pos.y or 0), tostring(pos.z or 0)),
             object = o }
end

-- Whether o matches filter: a string (type name, or part of the name,
-- either case), a number (owner), or { type =, owner =, name =,
-- parent = }.
local function matches(o, filter)
    if filter == nil then
        return true
    end
    if type(filter) == "string" then
        local f = filter:lower()
        return type_name(o):lower() == f or
               (o.name or ""):lower():find(f, 1, true) ~= nil
    end
    if type(filter) == "number" then
        return o.owner == filter
    end
    if type(filter) == "table" then
        if filter.type and type_name(o):lower() ~=
           tostring(filter.type):lower() then
            return false
        end
        if filter.owner then
            local owner = type(filter.owner) == "number" and filter.owner or
                          find_player(filter.owner).id
            if o.owner ~= owner then
                return false
            end
        end
        if filter.name and not (o.name or ""):lower():find(
                tostring(filter.name):lower(), 1, true) then
            return false
        end
        if filter.parent and o.parent ~= filter.parent then
            return false
        end
        return true
    end
    fail("a filter is a string, an owner id or a table")
end

def("objects", "objects", "objects([filter])", [[
The objects of the universe, as a table (id, type, name, owner, parent,
position); each row's .object is the object itself. filter: a type name
or part of a name ("Fleet", "earth"), an owner's id, or a table
{ type =, owner =, name =, parent = }.]], function(filter)
    local rows = {}
    for _, id in ipairs(model.object_ids()) do
        local o = model.objects[id]
        if matches(o, filter) then
            rows[#rows + 1] = object_row(o)
        end
    end
    return listing({ "id", "type", "name", "owner", "parent", "position" },
                   rows, { "id", "type", "name", "owner", "parent", "pos" })
end)

def("objects", "find", "find(text)", [[
The objects whose name contains text (any case), as objects() shows
them.]], function(text)
    check_type(text, "string", "the text")
    return api.objects({ name = text })
end)

def("objects", "object", "object(id)", [[
The object itself, shown whole: changing it changes the game (prefer
edit(), which checks and stores the change).]], function(id)
    return find_object(id)
end)

local EDITABLE = { name = "string", desc = "string", owner = "number",
                   parent = "number", size = "number", pos = "table",
                   vel = "table", data = "table" }

def("objects", "edit", "edit(id, fields)", [[
Changes an object: fields is a table of name, desc, owner (a player id,
0 for none), parent (an object id), size, pos and vel ({ x =, y =, z = }),
data (merged into the ruleset's data). Checked first, then stored; clients
see the new modification time. Returns the object.
  edit(12, { name = "Terra", owner = 3 })]], function(id, fields)
    local o = find_object(id)
    check_type(fields, "table", "fields")
    for k, v in pairs(fields) do
        local want = EDITABLE[k]
        if not want then
            fail("cannot edit '%s' (editable: name, desc, owner, parent, "
                 .. "size, pos, vel, data)", tostring(k))
        end
        check_type(v, want, k)
        if k == "pos" or k == "vel" then
            for _, axis in ipairs { "x", "y", "z" } do
                if v[axis] ~= nil and type(v[axis]) ~= "number" then
                    fail("%s.%s must be a number", k, axis)
                end
            end
        elseif k == "owner" and v ~= 0 and not accounts.player(v) then
            fail("no player %d", v)
        elseif k == "parent" then
            if not model.objects[v] then
                fail("no object %d", v)
            end
            local up = model.objects[v]
            while up do
                if up.id == o.id then
                    fail("object %d cannot go inside itself", o.id)
                end
                up = up.parent ~= up.id and model.objects[up.parent] or nil
            end
        end
    end
    for k, v in pairs(fields) do
        if k == "parent" then
            model.set_parent(o, v)
        elseif k == "data" then
            o.data = o.data or {}
            for dk, dv in pairs(v) do
                o.data[dk] = dv
            end
        elseif k == "pos" or k == "vel" then
            local old = o[k] or {}
            o[k] = { x = v.x or old.x or 0, y = v.y or old.y or 0,
                     z = v.z or old.z or 0 }
        else
            o[k] = v
        end
    end
    model.changed(o)
    model.commit()
    log.info("admin", "object %d edited by %s", o.id, who())
    return o
end)

def("objects", "nuke", "nuke(id)", [[
Removes an object from the universe (its children move to its parent;
players are told it is gone).]], function(id)
    local o = find_object(id)
    if o.id == 0 then
        fail("the universe (object 0) stays")
    end
    model.remove_object(o)
    model.commit()
    log.info("admin", "object %d (%s) removed by %s", o.id, o.name or "",
             who())
    return string.format("object %d removed", o.id)
end)

local function queue_of(id)
    local o = find_object(id)
    local q = model.queues[o.id]
    if not q then
        fail("object %d has no order queue", o.id)
    end
    return q, o
end

def("objects", "orders", "orders(id)", [[
The orders queued on an object: slot (from 0), order type, the order's
parameters.]], function(id)
    local q = queue_of(id)
    local rows = {}
    for i, order in ipairs(q.orders) do
        local ot = types.orders[order.type]
        rows[#rows + 1] = { slot = i - 1, type = ot and ot.name or
                            tostring(order.type), params = order.params,
                            order = order }
    end
    return rows
end)

def("objects", "remove_order", "remove_order(id, slot)", [[
Removes the order in slot (from 0) of the object's queue.]],
function(id, slot)
    local q, o = queue_of(id)
    check_type(slot, "number", "the slot")
    local order = q.orders[slot + 1]
    if not order then
        fail("no order in slot %d of object %d", slot, o.id)
    end
    table.remove(q.orders, slot + 1)
    local ot = types.orders[order.type]
    if ot and ot.removed then
        ot.removed(game.ctx(), o, order)
    end
    model.queue_changed(q)
    model.commit()
    return "order removed"
end)

def("objects", "clear_orders", "clear_orders(id)", [[
Removes every order queued on the object.]], function(id)
    local q, o = queue_of(id)
    local n = #q.orders
    while #q.orders > 0 do
        api.remove_order(o.id, #q.orders - 1)
    end
    return n
end)

-- ------------------------------------------------------------ battles

def("game", "game.new", "game.new { [ruleset =, settings =, keep_accounts =] }", [[
Ends this game and starts the next one in the running server: the game as
it is now is archived in <data>/archive/<date>-<game_name>/ (a data
directory: tpserver --data DIR opens it again), the database is emptied
and a new universe made, of ruleset (a folder under rulesets/, default
the running one) with settings (its ruleset_settings, default {}: the
ruleset's defaults). keep_accounts = true keeps every account, whose
players join the new game (else nobody has an account any more). Players
logged in are disconnected and log in again. Waits for the archive; the
server serves meanwhile. After a change of ruleset, set ruleset in
tpserver.lua too, or the next start refuses the data directory.]],
function(t)
    t = t or {}
    check_type(t, "table", "the options")
    for k in pairs(t) do
        if k ~= "ruleset" and k ~= "settings" and k ~= "keep_accounts" then
            fail("game.new takes ruleset, settings and keep_accounts, not "
                 .. "'%s'", tostring(k))
        end
    end
    local name = t.ruleset or game.ruleset().folder
    check_type(name, "string", "the ruleset")
    local settings = t.settings or {}
    check_type(settings, "table", "the settings")
    local rs, err = require("tp.ruleset").load(opts.home, name)
    if not rs then
        fail("%s", err)
    end
    local sok, serr = pcall(game.check_settings, rs, settings)
    if not sok then
        fail("%s", tostring(serr))
    end
    log.info("admin", "new %s game asked for by %s (keep_accounts=%s)",
             rs.name, who(), tostring(t.keep_accounts == true))
    local done, info = task.await(function(finish)
        require("tp.newgame").start({ cfg = opts.cfg, db = game.db(),
            ruleset = rs, ruleset_name = name, settings = settings,
            keep_accounts = t.keep_accounts == true }, finish)
    end)
    if not done then
        fail("%s", tostring(info))
    end
    return string.format("a new %s game started with %d player%s; the "
        .. "last game is archived in %s", info.ruleset, info.players,
        info.players == 1 and "" or "s", info.archive)
end)

def("game", "battles", "battles([turn])", [[
The battles fought (of one turn, when given): id, turn, where, sides,
rounds and the path of each one's log on the web listener (its
participants fetch it there; docs/battles.md). battle(id) shows one.]],
function(t)
    if t ~= nil then
        check_type(t, "number", "the turn")
    end
    local rows = {}
    for _, b in ipairs(model.battles(function(b)
        return t == nil or b.turn == t
    end)) do
        local sides = {}
        for i, sd in ipairs(b.sides or {}) do
            sides[i] = sd.id
        end
        rows[#rows + 1] = { id = b.id, turn = b.turn, title = b.title,
                            sides = table.concat(sides, ", "),
                            rounds = b.rounds,
                            log = require("tp.battle").path(b.id) }
    end
    local cols = { "id", "turn", "title", "sides", "rounds", "log" }
    return listing(cols, rows, cols)
end)

def("game", "battle", "battle(id)", [[
One battle's BattleXML document, as its participants fetch it.]],
function(id)
    check_type(id, "number", "the battle id")
    local b = model.battle(id)
    if not b then
        fail("no battle %d (battles() lists them)", id)
    end
    return setmetatable({ id = b.id, turn = b.turn, xml = b.xml },
                        { __pretty = function(t) return t.xml end })
end)

-- ------------------------------------------------------------ messages

def("messages", "message", "message(name | id, subject, body)", [[
Posts a message on the player's personal board (they see it with their
next look at their boards).]], function(who_, subject, body)
    local p = find_player(who_)
    check_type(subject, "string", "the subject")
    if body ~= nil then
        check_type(body, "string", "the body")
    end
    if not game.ctx():message(p.id, subject, body or "") then
        fail("player %d has no personal board", p.id)
    end
    model.commit()
    log.info("admin", "message to player %d from %s: %s", p.id, who(),
             subject)
    return "sent"
end)

def("messages", "broadcast", "broadcast(subject, body)", [[
Posts the message on every player's personal board. Returns how many
got it.]], function(subject, body)
    check_type(subject, "string", "the subject")
    if body ~= nil then
        check_type(body, "string", "the body")
    end
    local n = 0
    local ctx = game.ctx()
    for _, p in ipairs(accounts.players()) do
        if ctx:message(p.id, subject, body or "") then
            n = n + 1
        end
    end
    model.commit()
    log.info("admin", "broadcast from %s to %d players: %s", who(), n,
             subject)
    return n
end)

-- ------------------------------------------------------------ server

def("server", "stats", "stats()", [[
Connections, listeners, Lua memory, requests and frames counted, the last
turn's timing.]], function()
    local s = core.stats()
    local ok, sys = pcall(require, "tp.sys")
    if ok and sys.stats then
        local c = sys.stats()
        s.bytes_in, s.bytes_out = c.bytes_in, c.bytes_out
    end
    s.players = accounts.count()
    s.logged_in = count(game.sessions)
    s.objects = count(model.objects)
    s.turn = game.turn_number()
    s.last_turn_ms = game.last_turn_ms
    return s
end)

def("server", "connections", "connections()", [[
Open TP connections: id, kind of listener, peer address, protocol
version, state, player, bytes waiting to be sent. Each row's .conn is the
connection (conn:close() closes it).]], function()
    local rows = {}
    for _, c in ipairs(core.connections()) do
        rows[#rows + 1] = {
            id = c.id, kind = c.admin and "admin" or c.kind, peer = c.peer,
            version = c.version ~= 0 and ("TP0" .. c.version) or "-",
            state = c.state or "", player = c.admin and (c.admin_name or "")
                or player_name(c.player),
            pending = c.pending_output, conn = c,
        }
    end
    table.sort(rows, function(a, b) return a.id < b.id end)
    return listing({ "id", "kind", "peer", "version", "state", "player",
                     "pending" }, rows,
                   { "id", "kind", "peer", "version", "state", "player",
                     "pending" })
end)

def("server", "discovery", "discovery()", [[
How players find the game (README "Being found"), one row per way: the
local network (Zeroconf: off, waiting for avahi-daemon, running,
established, with the name and the services published, or why nothing
is), then each metaserver (ok or failed, its last error, when it last
answered, when the next update goes).]], function()
    local z = require("tp.zeroconf").status()
    local detail
    if #z.services > 0 then
        detail = string.format("\"%s\": %s", z.name or "?",
                               table.concat(z.services, ", "))
    elseif #z.skipped > 0 then
        detail = "loopback only, not published: " ..
                 table.concat(z.skipped, ", ")
    else
        detail = ""
    end
    local rows = { { way = "zeroconf", where = "local network",
                     state = z.state, detail = detail, answered = "-",
                     next = "-" } }
    for _, m in ipairs(require("tp.metaserver").status()) do
        rows[#rows + 1] = {
            way = "metaserver", where = m.url,
            state = m.ok == nil and "starting" or (m.ok and "ok" or "failed"),
            detail = m.error or "",
            answered = m.last and string.format("%d s ago",
                                                core.now() - m.last) or "-",
            next = m.inflight and "sending" or
                   (m.next_in and string.format("in %d s", m.next_in) or "-"),
        }
    end
    local cols = { "way", "where", "state", "answered", "next", "detail" }
    return listing(cols, rows, cols)
end)

def("server", "log_level", "log_level([level [, module]])", [[
The log levels; with arguments, sets the default level or one module's
(error, warning, info, debug, trace). Until the next reload or restart.]],
function(level, module)
    local cfg = opts.cfg
    if level == nil then
        local mods = {}
        for k, v in pairs(cfg.log_modules or {}) do
            mods[k] = v
        end
        return { level = cfg.log_level, modules = mods }
    end
    check_type(level, "string", "the level")
    local ok, err = pcall(core.set_log_level, level, module)
    if not ok then
        fail("%s", tostring(err):gsub("^.-: ", ""))
    end
    if module then
        cfg.log_modules[module] = level
    else
        cfg.log_level = level
    end
    log.info("admin", "log level%s set to %s by %s",
             module and (" of " .. module) or "", level, who())
    return level
end)

def("server", "reload", "reload()", [[
Reloads the configuration file and applies what can change while the
server runs (as SIGHUP does; the log says what changed and what needs a
restart).]], function()
    local failed = require("tp.hup").run()
    if #failed > 0 then
        fail("%s", table.concat(failed, "\n"))
    end
    return "reloaded"
end)

-- What differs between the types two ruleset tables declare.
local function shape(rs)
    local out = {}
    for _, t in ipairs(rs.object_types or {}) do
        local params = {}
        for _, g in ipairs(t.groups or {}) do
            for _, p in ipairs(g.params or {}) do
                params[#params + 1] = tostring(g.name) .. "." ..
                                      tostring(p.name) .. ":" ..
                                      tostring(p.type)
            end
        end
        out[#out + 1] = "object type " .. tostring(t.name) .. " (" ..
                        table.concat(params, ",") .. ")"
    end
    for _, t in ipairs(rs.order_types or {}) do
        local params = {}
        for _, p in ipairs(t.params or {}) do
            params[#params + 1] = tostring(p.name) .. ":" .. tostring(p.type)
        end
        out[#out + 1] = "order type " .. tostring(t.name) .. " (" ..
                        table.concat(params, ",") .. ")"
    end
    for _, kind in ipairs { "resources", "categories", "properties",
                            "components" } do
        local ids = {}
        for _, e in ipairs(rs[kind] or {}) do
            ids[#ids + 1] = tostring(e.id) .. "=" .. tostring(e.name)
        end
        table.sort(ids)
        out[#out + 1] = kind .. " " .. table.concat(ids, ",")
    end
    return out
end

def("server", "reload_ruleset", "reload_ruleset()", [[
Loads the ruleset's Lua files again and puts their hooks (turn, orders,
visibility ...) in place; connections stay. Refused, with the reason,
when the new files change the object or order types, resources,
categories, properties or components: types may not change shape
mid-game.]], function()
    local cfg = opts.cfg
    local rs, err = require("tp.ruleset").load(opts.home, cfg.ruleset)
    if not rs then
        fail("not reloaded: %s", err)
    end
    local old, new = shape(game.ruleset()), shape(rs)
    local diffs = {}
    for i = 1, math.max(#old, #new) do
        if old[i] ~= new[i] then
            diffs[#diffs + 1] = "was " .. tostring(old[i] or "nothing") ..
                                ", now " .. tostring(new[i] or "nothing")
        end
    end
    if #diffs > 0 then
        fail("not reloaded: the new files change the game's types, which "
             .. "may not change shape mid-game (restart with a new game "
             .. "for that):\n  %s", table.concat(diffs, "\n  "))
    end
    require("tp.console").unhooked(game.swap_ruleset, rs)
    log.info("admin", "ruleset %s %s reloaded by %s", rs.name, rs.version,
             who())
    return string.format("ruleset %s %s reloaded", rs.name, rs.version)
end)

local BACKUP_MT = { __tostring = function(b)
    return string.format("backup in %s: %d keys, %d bytes, %.0f ms", b.dir,
                         b.keys or 0, b.bytes or 0, b.ms or 0)
end }

def("server", "backup", "backup(dir)", [[
Copies the game, as it is now, into dir (a new data directory: the
database goes to dir/db), and waits until the copy is whole. Clients are
served meanwhile. A relative dir is taken from the folder the server was
started in. From the shell: tpserver backup DIR.]], function(dir)
    check_type(dir, "string", "the folder")
    if dir == "" then
        fail("a folder, please")
    end
    local ok, service = pcall(require, "tp.service")
    if ok and service.absolute then
        dir = service.absolute(dir)
    end
    log.info("admin", "backup to %s started by %s", dir, who())
    local done, info = task.await(function(finish)
        local started, err = require("tp.backup").start(game.db(), dir,
                                                        finish)
        if not started then
            finish(false, err)
        end
    end)
    if not done then
        fail("backup failed: %s", tostring(info))
    end
    return setmetatable(info, BACKUP_MT)
end)

def("server", "config", "config([key])", [[
The running configuration (a copy), or one key of it.]], function(key)
    local copy = require("tp.config").copy
    if key ~= nil then
        return copy(opts.cfg[key])
    end
    return copy(opts.cfg)
end)

def("server", "setting", "setting(key [, value])", [[
Reads a configuration key, or sets it in the running server (checked as
the configuration file is). Keys the server reads each time apply at
once (turn_mode, turn_length, turn_schedule and turn_timezone restart
the turn's clock, log_level sets
the level); the others apply at the next restart, and the answer says
so. Lasts until the next reload or restart.]], function(key, value)
    check_type(key, "string", "the key")
    local config = require "tp.config"
    local spec = config.schema[key]
    if not spec then
        fail("no configuration key '%s'", key)
    end
    if value == nil then
        return opts.cfg[key]
    end
    local raw = { [key] = value }
    local checked, err = config.check(raw)
    if not checked then
        fail("%s", err)
    end
    opts.cfg[key] = checked[key]
    if key == "log_level" then
        core.set_log_level(value)
    elseif key == "turn_mode" or key == "turn_length" or
           key == "turn_schedule" or key == "turn_timezone" then
        game.reset_timer()
    end
    log.info("admin", "setting %s changed by %s", key, who())
    local ok, service = pcall(require, "tp.service")
    if ok and service.live and not service.live[key] and
       key ~= "turn_mode" and key ~= "turn_length" then
        return string.format("%s set; it applies at the next restart", key)
    end
    return string.format("%s set", key)
end)

def("server", "clock_shift", "clock_shift(seconds)", [[
Tests only: moves the server's clock by seconds (negative: back) and sets
the turn's timer again from the moved clock, so that a test reaches a
turn's scheduled end without waiting for it. Refused unless the server was
started with TPSERVER_CLOCK_OFFSET in its environment. Returns the new
time (Unix seconds).]], function(seconds)
    check_type(seconds, "number", "the seconds")
    local clock = require "tp.clock"
    local ok, now = pcall(clock.shift, seconds)
    if not ok then
        fail("%s", tostring(now))
    end
    log.info("admin", "clock shifted by %s s by %s", tostring(seconds), who())
    if not game.paused() then
        game.arm_timer()
    end
    return now
end)

def("server", "shutdown", "shutdown()", [[
Stops the server cleanly, as SIGTERM does: connections are closed after
what they are owed is sent, the database is closed.]], function()
    log.warning("admin", "shutdown requested by %s", who())
    -- From the loop: the answer to this command goes out first.
    core.timer(0, 0, core.stop)
    return "stopping"
end)

-- ------------------------------------------------------------ console

local function current_session()
    local t = task.current()
    return t and t.session
end

def("console", "help", "help([name])", [[
Lists the commands, or explains one: help("turn.now") or help(turn.now).]],
function(name)
    if name == nil then
        local out = { "Commands (help(\"name\") explains one; any Lua works "
                      .. "too):" }
        for _, s in ipairs(M.SECTIONS) do
            out[#out + 1] = ""
            out[#out + 1] = s[2] .. ":"
            for _, n in ipairs(names) do
                local d = docs[n]
                if d.section == s[1] then
                    out[#out + 1] = string.format("  %-36s %s", d.usage,
                                                  d.summary)
                end
            end
        end
        out[#out + 1] = ""
        out[#out + 1] = "Also in scope: game, model, accounts, types, core "
                        .. "(the server's\nmodules), G (its globals) and "
                        .. "the standard library."
        return setmetatable({}, { __tostring = function()
            return table.concat(out, "\n")
        end })
    end
    local d = docs[name] or docs[by_value[name] or ""]
    if not d then
        fail("no command %s (help() lists them)", tostring(name))
    end
    return setmetatable({}, { __tostring = function()
        return d.usage .. "\n" .. d.text
    end })
end)

def("console", "print", "print(...)", [[
Writes its arguments (as tostring does, separated by tabs) to the
console.]], function(...)
    local parts = {}
    for i = 1, select("#", ...) do
        parts[i] = tostring((select(i, ...)))
    end
    local text = table.concat(parts, "\t") .. "\n"
    local t = task.current()
    if t and t.output then
        t.output(text)
    else
        io.stdout:write(text)
    end
end)

def("console", "pp", "pp(value [, depth])", [[
Prints value in full, nested depth levels deep (default 6).]],
function(value, depth)
    api.print(pretty.format(value, { depth = depth or 6, quote = true }))
end)

def("console", "sleep", "sleep(seconds)", [[
Waits without holding the server up (handy in scripts).]], function(s)
    check_type(s, "number", "the time")
    task.sleep(s)
end)

def("console", "timeslice", "timeslice([seconds])", [[
How long one command may hold the server (clients wait meanwhile) before
it is stopped; 0 for no limit. For this console session, from the command
that sets it on; the default is console_time_slice in tpserver.lua. Time
spent waiting (backup, sleep) and ending turns does not count.]],
function(seconds)
    local s = current_session()
    if not s then
        fail("timeslice() is for console sessions")
    end
    if seconds ~= nil then
        check_type(seconds, "number", "the time slice")
        if seconds < 0 then
            fail("the time slice is 0 (no limit) or more seconds")
        end
        s.slice = seconds
        require("tp.console").set_slice(seconds)   -- this command too
    end
    return s.slice or opts.cfg.console_time_slice
end)

def("console", "traceback", "traceback()", [[
The full traceback of the last error in this console session.]],
function()
    local s = current_session()
    return s and s.last_trace or "no error yet"
end)

def("console", "quit", "quit()", [[
Leaves the console (so does Ctrl-D).]], function()
    local s = current_session()
    if s then
        s.quit = true
    end
end)
api.exit = api.quit

-- The standard library and the server's modules.
for _, k in ipairs { "assert", "error", "ipairs", "next", "pairs", "pcall",
                     "xpcall", "select", "tonumber", "tostring", "type",
                     "unpack", "rawget", "rawset", "rawequal",
                     "setmetatable", "getmetatable", "require",
                     "loadstring", "load", "string", "table", "math", "os",
                     "io", "coroutine", "debug", "bit", "jit" } do
    api[k] = _G[k]
end
api.G = _G
api._G = _G
-- game.new is a command; the rest of game is the module tp.game.
api.game = setmetatable(api.game or {}, { __index = game })
api.model = model
api.accounts = accounts
api.types = types
api.core = core

-- Names of the commands, in declaration order.
function M.names()
    return names
end

-- opts: cfg (the running configuration), home (the server's folder).
function M.init(o)
    opts = o
end

return M
