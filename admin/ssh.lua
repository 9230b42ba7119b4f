-- admin/ssh.lua: the admin console over SSH. Another transport of the one
-- console (admin/console.lua): the same environment, commands, time slice,
-- logging, commit and rollback as `tpserver console`. core/ssh.c runs the
-- SSH protocol (libssh, a thread per connection); this decides who gets
-- in and runs the REPL on the session's channel.
--
-- Who: the login name must be an admin of `admins`; the client must prove
-- a key listed in that admin's ssh_keys or in the ssh_authorized_keys
-- file (read at each connection, so edits apply at once), or, only when
-- ssh_passwords = true, give the admin's password. Every login and every
-- refusal is logged with the address and the key's fingerprint; refused
-- attempts are counted by tp.login_guard (key "ssh:NAME") and answered
-- slower from a guessing address; a connection is dropped after 6.
--
-- What: `ssh -p PORT admin@host` (a pty): the REPL with line editing
-- (admin/lineedit.lua), history kept per admin in <data>/ssh/history/,
-- statements over several lines, Tab completion, Ctrl-C stopping a
-- running command, Ctrl-D leaving, idle sessions closed after
-- ssh_idle_timeout. `ssh ... 'code'` (exec) runs one chunk: its output
-- and results on stdout, or an error on stderr and exit status 1.
-- `ssh ... < script.lua` (no pty) runs the whole input as one script.

local core = require "tp.core"
local log = require "tp.log"
local login_guard = require "tp.login_guard"
local console = require "admin.console"
local lineedit = require "admin.lineedit"
local secret = require "admin.secret"

local M = {}

local ssh                       -- tp.ssh, loaded by start()
local cfg
local listeners = {}
local sessions = {}             -- tp.ssh session -> state
M.fingerprint = nil

local PROMPT, MORE = "tpserver> ", "     ...> "
local SCRIPT_CAP = 16 * 1048576 -- bytes of a script on stdin

-- ------------------------------------------------------------ keys

-- The keys of one authorized_keys text: { { type, key, comment } }.
-- Lines with options (command=, from=, ...) are skipped and logged: they
-- would not be applied.
local function parse_keys(text, where)
    local out = {}
    local n = 0
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        n = n + 1
        line = line:gsub("\r$", ""):match("^%s*(.-)%s*$")
        if line ~= "" and line:sub(1, 1) ~= "#" then
            local kt, b64, comment = line:match("^(%S+)%s+(%S+)%s*(.*)$")
            local fp, canon
            if kt then
                fp, canon = ssh.parse_key(kt, b64)
            end
            if fp then
                out[#out + 1] = { type = canon, key = b64, comment = comment,
                                  fingerprint = fp }
            else
                log.warning("ssh", "%s line %d: not a public key (a line "
                            .. "with options is not used: options are not "
                            .. "applied here)", where, n)
            end
        end
    end
    return out
end

local function read_file(path)
    local f, err = io.open(path, "rb")
    if not f then
        return nil, err
    end
    local text = f:read("*a")
    f:close()
    return text
end

-- The keys that may log in as admin a: its ssh_keys and the
-- ssh_authorized_keys file, read once per connection (st.keys) so that
-- a client's offer and its signed attempt see the same lists.
local function keys_for(st, a)
    st.keys = st.keys or {}
    local lists = st.keys[a.name]
    if lists then
        return lists
    end
    lists = {}
    if type(a.ssh_keys) == "table" then
        local text = {}
        for _, k in ipairs(a.ssh_keys) do
            text[#text + 1] = tostring(k)
        end
        lists[#lists + 1] = parse_keys(table.concat(text, "\n"),
                                       "admins " .. a.name .. " ssh_keys")
    end
    if cfg.ssh_authorized_keys ~= "" then
        local text, err = read_file(cfg.ssh_authorized_keys)
        if text then
            lists[#lists + 1] = parse_keys(text, cfg.ssh_authorized_keys)
        else
            log.warning("ssh", "cannot read ssh_authorized_keys: %s", err)
        end
    end
    st.keys[a.name] = lists
    return lists
end

-- Whether the key (type, base64) may log in as admin a.
local function key_allowed(st, a, kt, b64)
    for _, list in ipairs(keys_for(st, a)) do
        for _, k in ipairs(list) do
            if k.type == kt and k.key == b64 then
                return true
            end
        end
    end
    return false
end

-- ------------------------------------------------------------ auth

local handlers = {}

local function state(s)
    local st = sessions[s]
    if not st then
        st = { s = s, addr = login_guard.address(s.peer), refused = false }
        sessions[s] = st
    end
    return st
end

local function refuse(st, name, how, why)
    log.warning("ssh", "refused %s from %s (%s): %s", name, st.s.peer, how,
                why)
    login_guard.failed("ssh:" .. name, st.s.peer, log)
end

function handlers.auth(s, info)
    local st = state(s)
    local name = info.user
    local a = secret.account(cfg, name)
    local delay = login_guard.delay("ssh:" .. name, s.peer)
    if info.method == "publickey" then
        local how = "key " .. info.fingerprint .. " " .. info.key_type
        if not a then
            if not st.unknown_logged then
                st.unknown_logged = true
                refuse(st, name, how, "no such admin")
            end
            return false, delay
        end
        if not key_allowed(st, a, info.key_type, info.key) then
            refuse(st, name, how, "key not listed")
            return false, delay
        end
        if info.probe then
            return true
        end
        login_guard.succeeded("ssh:" .. name, s.peer)
        st.admin, st.how = name, how
        log.info("ssh", "login admin=%s from %s (%s)", name, s.peer, how)
        return true
    elseif info.method == "password" then
        if not cfg.ssh_passwords then
            refuse(st, name, "password", "passwords are off "
                   .. "(ssh_passwords)")
            return false, delay
        end
        local hash = a and a.password_hash
        core.timer(math.floor(delay * 1000), 0, function()
            secret.verify_async(info.password, hash, function(ok)
                ok = ok and a ~= nil
                if ok then
                    login_guard.succeeded("ssh:" .. name, s.peer)
                    st.admin, st.how = name, "password"
                    log.info("ssh", "login admin=%s from %s (password)",
                             name, s.peer)
                else
                    refuse(st, name, "password", a and "wrong password"
                           or "no such admin")
                end
                s:answer(ok)
            end)
        end)
        return nil
    end
    return false
end

-- ------------------------------------------------------------ output

local function write(st, text, stream)
    if st.pty then
        text = text:gsub("\r?\n", "\r\n")
        stream = nil      -- one stream on a terminal
    end
    return st.s:write(text, stream)
end

local function with_newline(text)
    if text ~= "" and text:sub(-1) ~= "\n" then
        return text .. "\n"
    end
    return text
end

-- ------------------------------------------------------------ history

local function history_path(name)
    local safe = name:gsub("[^%w_.-]", function(c)
        return string.format("%%%02X", c:byte())
    end)
    return cfg.data .. "/ssh/history/" .. safe
end

local function load_history(st)
    local text = read_file(history_path(st.admin))
    if text then
        for line in text:gmatch("[^\n]+") do
            st.ed:add_history(line)
        end
    end
end

local function save_history(st)
    local dir = cfg.data .. "/ssh/history"
    core.mkdir(cfg.data .. "/ssh", 448)
    core.mkdir(dir, 448)
    local path = history_path(st.admin)
    local f = io.open(path .. ".tmp", "wb")
    if not f then
        return
    end
    f:write(table.concat(st.ed.history, "\n"), "\n")
    f:close()
    os.rename(path .. ".tmp", path)
end

-- ------------------------------------------------------------ the REPL

local pump

local function touch(st)
    st.last_active = core.hrtime()
end

local function new_console(st)
    st.con = console.session(string.format("ssh session=%d admin=%s "
        .. "peer=%s", st.s.id, st.admin or "?", st.s.peer),
        { interrupt = st.s:interrupt(), max_wait = 0,
          output = function(text) write(st, text) end,
          quit = function() st.quitting = true end })
    st.con.who = string.format("ssh admin %s (%s)", st.admin or "?",
                               st.s.peer)
end

local function leave(st, status)
    st.leaving = true
    if st.ed then
        save_history(st)
    end
    st.s:exit(status or 0)
end

local function prompt(st)
    -- quit() sets con.quit before its result arrives here.
    if st.quitting or st.con.quit then
        return leave(st, 0)
    end
    st.ed:prompt(st.chunk and MORE or PROMPT)
end

-- Runs a chunk; then(ok) after its result or error is written.
local function run(st, code, chunkname, after)
    st.s:busy(true)
    local ok, why = console.eval(st.con, code, function(good, _, text)
        st.s:busy(false)
        write(st, with_newline(text), not good and "stderr" or nil)
        touch(st)
        after(good)
    end, chunkname)
    if not ok then
        st.s:busy(false)
        write(st, with_newline(why), "stderr")
        after(false)
    end
end

-- Feeds typed-ahead bytes to the editor while no command runs.
pump = function(st)
    while not st.leaving and not console.busy(st.con) and st.pending ~= ""
          and st.ed.active do
        local ev, value, rest = st.ed:feed(st.pending)
        st.pending = rest
        if ev == "line" then
            local code = st.chunk and (st.chunk .. "\n" .. value) or value
            if code:match("^%s*$") then
                st.chunk = nil
                prompt(st)
            elseif console.incomplete(code) then
                st.chunk = code
                prompt(st)
            else
                st.chunk = nil
                st.ed:add_history(code)
                save_history(st)
                run(st, code, "=ssh", function()
                    prompt(st)
                    pump(st)
                end)
            end
        elseif ev == "interrupt" then
            st.chunk = nil
            prompt(st)
        elseif ev == "eof" then
            return leave(st, 0)
        end
    end
end

local function banner()
    local game = require "tp.game"
    local accounts = require "tp.accounts"
    local rs = game.ruleset()
    local n = accounts.count()
    return string.format("tpserver %s admin console over SSH: %s %s, turn "
        .. "%d, %d %s.\nhelp() lists the commands; Ctrl-C stops a "
        .. "command, Ctrl-D leaves.\n", core.version, rs.name, rs.version,
        game.turn_number(), n, n == 1 and "player" or "players")
end

function handlers.pty(s, term, cols, rows)
    local st = state(s)
    st.pty, st.cols = true, cols > 0 and cols or 80
end

function handlers.resize(s, cols)
    local st = state(s)
    st.cols = cols
    if st.ed then
        st.ed:resize(cols)
    end
end

local function start_session(st)
    touch(st)
    new_console(st)
    log.info("ssh", "session id=%d admin=%s from %s: %s", st.s.id,
             st.admin or "?", st.s.peer, st.mode)
end

function handlers.shell(s)
    local st = state(s)
    st.pending = ""
    if st.pty then
        st.mode = "console"
        start_session(st)
        st.ed = lineedit.new {
            write = function(bytes) st.s:write(bytes) end,
            cols = st.cols,
            complete = function(word) return console.complete(st.con, word) end,
        }
        load_history(st)
        write(st, banner())
        prompt(st)
    else
        st.mode = "script"
        st.script = {}
        st.script_len = 0
        start_session(st)
    end
end

function handlers.exec(s, command)
    local st = state(s)
    st.mode = "exec"
    start_session(st)
    run(st, command, "=ssh", function(ok)
        leave(st, ok and 0 or 1)
    end)
end

function handlers.data(s, bytes)
    local st = state(s)
    touch(st)
    if st.mode == "console" then
        st.pending = st.pending .. bytes
        pump(st)
    elseif st.mode == "script" then
        st.script_len = st.script_len + #bytes
        if st.script_len > SCRIPT_CAP then
            write(st, string.format("a script may be %d bytes at most\n",
                                    SCRIPT_CAP))
            st.mode = "done"
            return leave(st, 1)
        end
        st.script[#st.script + 1] = bytes
    end
end

function handlers.eof(s)
    local st = state(s)
    if st.mode == "script" then
        st.mode = "done"
        run(st, table.concat(st.script), "=stdin", function(ok)
            leave(st, ok and 0 or 1)
        end)
    elseif st.mode == "console" and not st.leaving then
        leave(st, 0)
    end
end

function handlers.interrupt(s)
    local st = sessions[s]
    if st and st.con then
        console.interrupt(st.con)
    end
end

function handlers.close(s, why)
    local st = sessions[s]
    sessions[s] = nil
    if st and st.con then
        console.close_session(st.con)
    end
    if st and st.admin then
        log.info("ssh", "closed id=%d admin=%s from %s: %s", s.id,
                 st.admin, s.peer, why)
    else
        log.info("ssh", "closed id=%d from %s: %s", s.id, s.peer, why)
    end
end

-- ------------------------------------------------------------ idle

local function check_idle()
    -- An admin dropped from `admins` (at a reload) is logged out.
    for _, st in pairs(sessions) do
        if st.admin and st.mode and not st.leaving and
           not secret.account(cfg, st.admin) then
            log.warning("ssh", "session id=%d: admin %s is no longer in "
                        .. "admins: closed", st.s.id, st.admin)
            write(st, "\n(you are no longer an admin: the session ends)\n")
            if st.con then
                console.close_session(st.con)
            end
            leave(st, 1)
        end
    end
    local limit = cfg.ssh_idle_timeout
    if not limit or limit <= 0 then
        return
    end
    local now = core.hrtime()
    for _, st in pairs(sessions) do
        if st.mode == "console" and not st.leaving and st.last_active and
           not console.busy(st.con) and
           now - st.last_active > limit * 1000 then
            log.info("ssh", "session id=%d admin=%s idle for %d s: closed",
                     st.s.id, st.admin or "?", limit)
            write(st, string.format("\n(idle for %d s: the session ends)\n",
                                    limit))
            leave(st, 0)
        end
    end
end

-- ------------------------------------------------------------ set-up

-- The host key file of a configuration.
M.host_key_path = require("tp.listeners").ssh_host_key

-- Opens every SSH listener of config.ssh_listeners. Raises a message for
-- the terminal when one cannot be opened.
function M.start(config)
    cfg = config
    ssh = require "tp.ssh"
    if #(cfg.ssh_listeners or {}) == 0 then
        return
    end
    local ok, service = pcall(require, "tp.service")
    if ok and service.live then
        service.live.ssh_authorized_keys = true
        service.live.ssh_idle_timeout = true
    end
    local path = M.host_key_path(cfg)
    if not config.ssh_host_key or config.ssh_host_key == "" then
        local mok, err = core.mkdir(cfg.data .. "/ssh", 448)  -- 0700
        if not mok then
            error("cannot make " .. cfg.data .. "/ssh: " .. tostring(err), 0)
        end
    end
    local fp, made = ssh.host_key(path)
    if not fp then
        error(made, 0)
    end
    M.fingerprint = fp
    if made then
        log.warning("ssh", "made the SSH host key %s (%s)", path, fp)
    end
    local with_keys = 0
    for _, a in ipairs(cfg.admins or {}) do
        if type(a.ssh_keys) == "table" and #a.ssh_keys > 0 then
            with_keys = with_keys + 1
        end
    end
    for _, l in ipairs(cfg.ssh_listeners) do
        local lst, err = ssh.listen {
            host = l.host, port = l.port, host_key = path,
            passwords = cfg.ssh_passwords,
            max_sessions = cfg.ssh_max_sessions,
            login_timeout = cfg.ssh_login_timeout,
            handlers = handlers,
        }
        if not lst then
            error(err, 0)
        end
        l.port = lst.port
        listeners[#listeners + 1] = lst
        log.info("ssh", "listening on ssh %s:%d (host key %s %s)", l.host,
                 lst.port, path, fp)
        io.stderr:write(string.format("tpserver: admin console over SSH on "
            .. "ssh://%s:%d/ (host key %s)\n", l.host:find(":", 1, true)
            and "[" .. l.host .. "]" or l.host, lst.port, fp))
    end
    if #(cfg.admins or {}) == 0 then
        log.warning("ssh", "the SSH console has no admins configured: "
                    .. "nobody can log in (admins = { { name =, ssh_keys = "
                    .. "{ ... } } })")
    elseif with_keys == 0 and cfg.ssh_authorized_keys == "" and
           not cfg.ssh_passwords then
        log.warning("ssh", "no admin has ssh_keys and ssh_authorized_keys "
                    .. "is not set: nobody can log in over SSH")
    end
    M.idle_timer = core.timer(5000, 5000, check_idle)
end

function M.stop()
    for _, lst in ipairs(listeners) do
        lst:close()
    end
    listeners = {}
    if M.idle_timer then
        M.idle_timer:stop()
        M.idle_timer = nil
    end
end

-- Open sessions (for the console and tests): { id, peer, admin, mode,
-- busy }.
function M.sessions()
    local out = {}
    for s, st in pairs(sessions) do
        out[#out + 1] = { id = s.id, peer = s.peer, admin = st.admin,
                          mode = st.mode,
                          busy = st.con ~= nil and console.busy(st.con) }
    end
    table.sort(out, function(a, b) return a.id < b.id end)
    return out
end

return M
