-- admin/console.lua: the console's sessions, in the manner of tarantool's
-- console (local_eval): each chunk is tried as "return " .. chunk, then as
-- itself; it runs in the session's own environment, whose __index is the
-- admin API (admin/commands.lua), not _G, so what a session defines stays
-- in that session. Errors are shown and the session goes on.
--
-- A chunk runs as a task (admin/task.lua) under tp.console's run: a count
-- hook stops it on Ctrl-C (an interrupt message, read by the hook itself
-- since the loop is held up) or when it has held the server for longer
-- than the time slice. The chunk is compiled with the JIT off (for it and
-- the functions it defines), because LuaJIT runs no hooks inside compiled
-- traces. A command that waits (backup, add_player, sleep) lets the server
-- run meanwhile; Ctrl-C then stops the waiting.
--
-- What a command changes in the game is committed when it ends well, and
-- rolled back when it fails. Every command is logged with the console
-- user (the socket's peer credentials).

local cons = require "tp.console"
local core = require "tp.core"
local log = require "tp.log"
local model = require "tp.model"
local commands = require "admin.commands"
local pretty = require "admin.pretty"
local task = require "admin.task"

local M = {}

local OUTPUT_CAP = 8 * 1048576   -- bytes one command may print
local RESULT_CAP = 16 * 1048576  -- bytes of one result or error shown
local LOGGED_TEXT = 1000         -- characters of a command in the log

local cfg
local listener
local sessions = {}              -- session handle -> state

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false",
                   "for", "function", "if", "in", "local", "nil", "not",
                   "or", "repeat", "return", "then", "true", "until",
                   "while" }

local function pack(...)
    return { n = select("#", ...), ... }
end

-- ------------------------------------------------------------ output

local function output(s, text)
    if s.handle.closed then
        return
    end
    s.printed = s.printed + #text
    if s.printed > OUTPUT_CAP then
        if not s.cut then
            s.cut = true
            s.handle:send("o", string.format("\n(output cut: a command may "
                          .. "print %d bytes)\n", OUTPUT_CAP))
        end
        return
    end
    s.handle:send("o", text)
end

-- ------------------------------------------------------------ running

-- The error handler of a chunk: { message, trace }.
local function on_error(e)
    local msg
    if type(e) == "table" and e.tp_fail then
        msg = tostring(e.message)
    elseif type(e) == "string" or type(e) == "number" then
        msg = tostring(e)
    else
        msg = "error object: " .. pretty.format(e, { quote = true })
    end
    return { message = msg, trace = debug.traceback(msg, 2) }
end

-- Compiles text as tarantool does: an expression first (so that "1 + 1"
-- or "players()" shows its value; "=expr" is the same), then a statement.
local function compile(text, name)
    local code = text
    if code:sub(1, 1) == "=" then
        code = code:sub(2)
    end
    local fn = loadstring("return " .. code, name)
    if fn then
        return fn
    end
    local err
    fn, err = loadstring(code, name)
    return fn, err
end

-- A script (the console's stdin) runs as one chunk, its locals shared;
-- and, as -e and the prompt show the value of an expression, so does a
-- script for each of its top-level statements that is an expression or a
-- call ("players()", "1 + 1", "=turn.number()"), when it runs. The
-- statements are found line by line: the lines from the end of the last
-- one up to the first that makes them load by themselves (as a chunk or
-- as "return " .. them), unless the next line continues them as an
-- expression ("f" then "{ ... }"). One that loads as "return " .. it
-- becomes SHOW(it); its lines and line numbers are kept. The chunk gets
-- SHOW as its "...". A script that does not split so (a statement
-- continued on a line that loads by itself) runs as written: the result
-- is nil then.
local SHOW = "__tp_show"

local function as_expr(stmt)
    return stmt:match("^%s*=(.*)$") or stmt
end

local function loads_as_expr(stmt)
    return loadstring("return " .. as_expr(stmt)) ~= nil
end

local function script_code(text)
    local lines = {}
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        lines[#lines + 1] = line
    end
    if lines[1] and lines[1]:sub(1, 1) == "#" then
        lines[1] = "--" .. lines[1]          -- a "#!" line
    end
    local out, from = {}, 1
    for i = 1, #lines do
        local stmt = table.concat(lines, "\n", from, i)
        local expr = loads_as_expr(stmt)
        if (expr or loadstring(stmt)) and
           not (lines[i + 1] and loads_as_expr(stmt .. "\n" ..
                                               lines[i + 1])) then
            if expr and stmt:find("%S") then
                -- ";": a next statement starting with "(" is not a call
                -- of what SHOW returns. The ")" on a line of its own
                -- (after a "--" comment), and the next statement on it.
                local last = lines[i]
                out[#out + 1] = SHOW .. "(" .. as_expr(stmt) ..
                                (last:find("%-%-") and "\n" or "") .. ");"
                out[#out + 1] = last:find("%-%-") and " " or "\n"
            else
                out[#out + 1] = stmt
                out[#out + 1] = "\n"
            end
            from = i + 1
        end
    end
    if from <= #lines then
        return nil      -- unfinished: compiled as written, for its error
    end
    return "local " .. SHOW .. " = ...; " .. table.concat(out)
end

local function finish(s, ok, r)
    local t = s.task
    s.task = nil
    if t then
        t:cancel()
    end
    local note = ""
    if model.is_dirty() then
        if ok then
            local cok, cerr = pcall(model.commit)
            if not cok then
                ok = false
                r = { message = "the changes could not be stored: " ..
                      tostring(cerr), trace = tostring(cerr) }
                pcall(model.rollback)
            end
        else
            pcall(model.rollback)
            note = "\n(what the command changed in the game was rolled "
                   .. "back)"
        end
    end
    if s.handle.closed then
        return
    end
    local function cut(text)
        if #text <= RESULT_CAP then
            return text
        end
        return text:sub(1, RESULT_CAP) .. string.format("\n...(%d bytes "
            .. "in all; cut)", #text)
    end
    if ok then
        local text = pretty.results(r.n - 2, unpack(r, 3, r.n))
        s.handle:send("r", cut(text))
    else
        if type(r) ~= "table" then
            r = { message = tostring(r), trace = tostring(r) }
        end
        s.last_trace = r.trace
        s.handle:send("x", cut(tostring(r.message) .. note))
    end
    if s.quit then
        s.handle:close("quit")
    end
end

-- Resumes the session's task (first run, or after a wait) under the hook.
local function step(s, ...)
    local t = s.task
    if not t or s.handle.closed then
        return
    end
    local slice = s.slice or cfg.console_time_slice
    local r = pack(cons.run(s.chandle, t.co, slice, ...))
    local status = r[1]
    if status == "yield" then
        if r[2] == task.WAIT then
            return      -- waiting: t.resume() comes back here
        end
        return finish(s, false, "coroutine.yield() at the console's top "
                      .. "level: nothing to yield to")
    elseif status == "interrupted" then
        log.info("console", "%s command stopped: %s", s.log_as,
                 tostring(r[2]))
        return finish(s, false, r[2])
    elseif status == "error" then
        return finish(s, false, on_error(r[2]))
    end
    -- "ok": the body's xpcall results.
    if r[2] then
        return finish(s, true, r)      -- { "ok", true, values... }
    end
    return finish(s, false, r[3])
end

local function run(s, text, chunkname)
    local h = s.handle
    log.info("console", "%s command: %s", s.log_as,
             #text > LOGGED_TEXT and (text:sub(1, LOGGED_TEXT) .. "...")
             or text)
    local fn, err
    local show
    if chunkname == "=stdin" then
        local code = script_code(text)
        fn = code and loadstring(code, chunkname)
        if fn then
            show = function(...)
                local n = select("#", ...)
                if n > 0 then
                    output(s, pretty.results(n, ...) .. "\n")
                end
            end
        end
    end
    if not fn then
        fn, err = compile(text, chunkname)
    end
    if not fn then
        h:send("x", tostring(err))
        return
    end
    setfenv(fn, s.env)
    jit.off(fn, true)
    s.printed, s.cut = 0, false
    s.task = task.new(function()
        return xpcall(fn, on_error, show)
    end, { session = s, who = s.who,
           output = function(out) output(s, out) end,
           resume = function(_, ...) step(s, ...) end })
    step(s)
end

-- ------------------------------------------------------------ completion

-- v[k] without calling metamethods: raw, then through __index tables.
local function raw_index(v, k, depth)
    depth = depth or 0
    if depth > 4 then
        return nil
    end
    if type(v) == "table" then
        local r = rawget(v, k)
        if r ~= nil then
            return r
        end
    end
    local mt = (type(v) == "table" or type(v) == "userdata" or
                type(v) == "string") and getmetatable(v)
    local index = type(mt) == "table" and rawget(mt, "__index")
    if type(index) == "table" then
        return raw_index(index, k, depth + 1)
    end
end

-- Every string key reachable from v (raw keys and __index tables).
local function keys_of(v, add, depth)
    depth = depth or 0
    if depth > 4 then
        return
    end
    if type(v) == "table" then
        local k = next(v)
        while k ~= nil do
            add(k)
            k = next(v, k)
        end
    end
    local mt = (type(v) == "table" or type(v) == "userdata" or
                type(v) == "string") and getmetatable(v)
    local index = type(mt) == "table" and rawget(mt, "__index")
    if type(index) == "table" then
        keys_of(index, add, depth + 1)
    end
end

-- The names that complete word ("tu", "turn.n", "s:up"), one per line.
local function complete(s, word)
    local base, sep, prefix = word:match("^(.-)([%.:])([%w_]*)$")
    local target
    if base then
        if base == "" then
            return ""
        end
        target = s.env
        for part in base:gmatch("[^%.:]+") do
            target = raw_index(target, part)
            if target == nil then
                return ""
            end
        end
    else
        prefix = word
        if not prefix:match("^[%a_]?[%w_]*$") then
            return ""
        end
        target = s.env
    end
    local found, list = {}, {}
    local function add(k)
        if type(k) == "string" and not found[k] and
           k:sub(1, #prefix) == prefix and k:match("^[%a_][%w_]*$") then
            found[k] = true
            list[#list + 1] = base and (base .. sep .. k) or k
        end
    end
    keys_of(target, add)
    if not base then
        for _, k in ipairs(KEYWORDS) do
            add(k)
        end
    end
    table.sort(list)
    while #list > 500 do
        list[#list] = nil
    end
    return table.concat(list, "\n")
end

-- ------------------------------------------------------------ sessions

local function banner()
    local game = require "tp.game"
    local accounts = require "tp.accounts"
    local rs = game.ruleset()
    local n = accounts.count()
    return string.format("tpserver %s admin console: %s %s, turn %d, %d "
        .. "%s.\nhelp() lists the commands; Ctrl-C stops a command, "
        .. "Ctrl-D leaves.", core.version, rs.name, rs.version,
        game.turn_number(), n, n == 1 and "player" or "players")
end

local handlers = {}

function handlers.open(h)
    local s = {
        handle = h,
        chandle = h,
        log_as = string.format("session=%d user=%s uid=%d pid=%d", h.id,
                               h.user, h.uid, h.pid),
        env = setmetatable({}, { __index = commands.api }),
        who = string.format("console session %d (%s, uid %d, pid %d)",
                            h.id, h.user, h.uid, h.pid),
        printed = 0,
    }
    sessions[h] = s
    h:send("h", banner())
end

function handlers.message(h, kind, payload)
    local s = sessions[h]
    if not s then
        return
    end
    if kind == "i" then
        local t = s.task
        if t and t.waiting then
            log.info("console", "session=%d stopped waiting (Ctrl-C)", h.id)
            finish(s, false, "interrupted (Ctrl-C): stopped waiting; what "
                   .. "it waited for goes on in the background")
        end
    elseif kind == "e" or kind == "s" then
        if s.task then
            h:send("x", "the last command is still running (Ctrl-C stops "
                   .. "it)")
            return
        end
        run(s, payload, kind == "s" and "=stdin" or "=console")
    elseif kind == "c" then
        local ok, list = pcall(complete, s, payload)
        h:send("c", ok and list or "")
    else
        h:send("x", "unknown console message '" .. kind .. "'")
    end
end

function handlers.close(h)
    local s = sessions[h]
    sessions[h] = nil
    if s and s.task then
        s.task:cancel()
        s.task = nil
    end
end

-- ------------------------------------------------------------ elsewhere

-- A session of the console for another transport (the control UI's
-- console pane, the SSH console): the same environment, time slice,
-- logging, commit and rollback as a session on the socket. who names the
-- user in the log and in what commands log ("web admin root
-- (10.0.0.5:4242)"). opts (all optional):
--   interrupt  what console.run watches for Ctrl-C (tp.ssh's
--              s:interrupt()); without it a command that holds the server
--              is stopped by the time slice only
--   output     fn(text) for what a command prints, as it prints it
--              (else it is kept and handed to done)
--   quit       fn() for quit() at this console
--   max_wait   seconds a waiting command may wait before it stops waiting
--              (M.MAX_WAIT; 0: as long as it takes, for a transport with
--              a Ctrl-C of its own)
M.MAX_WAIT = 60

function M.session(who, opts)
    opts = opts or {}
    local s
    local h = { closed = false, id = 0 }
    function h.send(_, kind, text)
        if kind == "o" then
            if opts.output then
                opts.output(text)
            else
                s.out[#s.out + 1] = text
            end
        elseif kind == "r" or kind == "x" then
            local done = s.done
            s.done = nil
            if done then
                done(kind == "r", table.concat(s.out), text)
            end
        end
    end
    function h.close()
        if opts.quit then
            opts.quit()
        end
    end
    s = { handle = h, chandle = opts.interrupt, log_as = who, who = who,
          env = setmetatable({}, { __index = commands.api }), printed = 0,
          out = {}, max_wait = opts.max_wait or M.MAX_WAIT }
    return s
end

-- Runs one chunk in session s (made by session()); done(ok, output,
-- text) gets what print() wrote (unless opts.output took it) and the
-- result (ok) or the error, maybe before eval returns. chunkname names
-- the chunk in error messages ("=web", "=stdin"). Returns false, why when
-- a chunk still runs.
function M.eval(s, text, done, chunkname)
    if s.task then
        return false, "the last command is still running"
    end
    s.out, s.done = {}, done
    run(s, text, chunkname or "=web")
    local t = s.task
    if t and s.max_wait > 0 then
        core.timer(s.max_wait * 1000, 0, function()
            if s.task == t and t.waiting then
                log.info("console", "%s stopped waiting after %d s",
                         s.log_as, s.max_wait)
                finish(s, false, string.format("stopped waiting after %d "
                       .. "s; what it waited for goes on in the background",
                       s.max_wait))
            end
        end)
    end
    return true
end

-- Ctrl-C for a session of session() whose command waits (one that holds
-- the server is stopped by console.run itself). Returns true when it
-- stopped one.
function M.interrupt(s)
    local t = s.task
    if t and t.waiting then
        log.info("console", "%s stopped waiting (Ctrl-C)", s.log_as)
        finish(s, false, "interrupted (Ctrl-C): stopped waiting; what it "
               .. "waited for goes on in the background")
        return true
    end
    return false
end

-- Whether a session of session() has a command running or waiting.
function M.busy(s)
    return s.task ~= nil
end

-- The names that complete word in session s, as a list.
function M.complete(s, word)
    local ok, list = pcall(complete, s, word)
    local out = {}
    if ok then
        for name in list:gmatch("[^\n]+") do
            out[#out + 1] = name
        end
    end
    return out
end

-- Whether text is a statement left incomplete: more lines are to come
-- (as lua.c judges it, and tpserver console's client).
function M.incomplete(text)
    local code = text:sub(1, 1) == "=" and text:sub(2) or text
    if loadstring("return " .. code, "=console") then
        return false
    end
    if text:sub(1, 1) == "=" then
        return false
    end
    local fn, err = loadstring(text, "=console")
    if fn then
        return false
    end
    return tostring(err):sub(-7) == "'<eof>'"
end

-- Drops a session of session(): a command still waiting is stopped.
function M.close_session(s)
    s.done = nil
    if s.task then
        s.task:cancel()
        s.task = nil
    end
end

-- The socket path of the configuration: console_socket, else
-- <data>/console.sock (data is absolute by now).
function M.socket_path(config)
    local path = config.console_socket
    if path == nil or path == "" then
        return config.data .. "/console.sock"
    end
    local ok, service = pcall(require, "tp.service")
    if ok and service.absolute then
        path = service.absolute(path)
    end
    return path
end

-- The running configuration, for sessions of session() too.
function M.configure(config)
    cfg = config
end

-- Opens the console socket. Raises a message when it cannot.
function M.start(config)
    cfg = config
    local path = M.socket_path(cfg)
    local lst, err = cons.listen(path, handlers)
    if not lst then
        error(err, 0)
    end
    listener = lst
    return path
end

function M.stop()
    if listener then
        listener:close()
        listener = nil
    end
end

-- Open sessions (for stats and tests): array of { id, user, uid, pid,
-- busy }.
function M.sessions()
    local out = {}
    for h, s in pairs(sessions) do
        out[#out + 1] = { id = h.id, user = h.user, uid = h.uid,
                          pid = h.pid, busy = s.task ~= nil }
    end
    table.sort(out, function(a, b) return a.id < b.id end)
    return out
end

return M
