-- admin/web.lua: the control UI's server side (docs/admin-ui.md): /admin
-- and /api/admin/ on the web listener, for the admin accounts of the
-- configuration (admins = { { name =, password_hash = } }).
--
-- It is a transport over the admin API (admin/commands.lua), like the
-- console and the TP admin protocol: every action is a call of one of its
-- commands, run as a task under the admin's name (so the command's own
-- log line names them), committed when it ends well and rolled back when
-- it fails; the console pane is a session of admin/console.lua. Besides,
-- it keeps what a dashboard shows: the load of the last hour (samples of
-- the request histograms), the log's last lines (tp.logbus), the audit
-- trail (in the database, audit/<n>), background jobs.

local accounts = require "tp.accounts"
local cjson = require "cjson"
local core = require "tp.core"
local events = require "tp.events"
local game = require "tp.game"
local json = require "tp.web.json"
local log = require "tp.log"
local logbus = require "tp.logbus"
local login_guard = require "tp.login_guard"
local model = require "tp.model"
local stats = require "tp.stats"
local sys = require "tp.sys"
local web = require "tp.web"
local commands = require "admin.commands"
local console = require "admin.console"
local pretty = require "admin.pretty"
local secret = require "admin.secret"
local task = require "admin.task"

local M = {}

local W = web.internal
local api = commands.api
local cfg
local COOKIE = "tp_admin"
local CSRF = "x-tp-admin-csrf"

M.SAMPLE = 10            -- seconds between load samples
M.HOUR = 3600            -- seconds of samples kept
M.LOG_KEEP = 500         -- log lines kept for a dashboard that opens
M.AUDIT_SHOWN = 200      -- audit entries in the state
M.AUDIT_KEEP = 1000      -- audit entries kept in the database
M.JOBS_KEPT = 20

local sessions = {}      -- token -> session
local streams = {}       -- conn -> session (GET /api/admin/events)
local samples = {}       -- { t, tp_rate, ... }, oldest first
local turns = {}         -- { t, turn, ms }
local audit = {}         -- the last AUDIT_SHOWN entries
local audit_seq = 0
local jobs = {}          -- the last JOBS_KEPT jobs
local job_seq = 0

local function pack(...)
    return { n = select("#", ...), ... }
end

local function enabled()
    return cfg ~= nil and type(cfg.admins) == "table" and #cfg.admins > 0
end
M.enabled = enabled

local function cut(text, n)
    text = tostring(text or "")
    if #text > n then
        return text:sub(1, n) .. string.format("...(%d bytes in all)", #text)
    end
    return text
end

-- A value as plain JSON data: tables copied (arrays kept, other keys made
-- strings), what JSON has no form for shown as text.
local function plain(v, depth)
    depth = depth or 0
    local t = type(v)
    if t == "string" or t == "boolean" then
        return v
    elseif t == "number" then
        if v ~= v or v == math.huge or v == -math.huge then
            return tostring(v)
        end
        return v
    elseif t == "nil" then
        return cjson.null
    elseif t ~= "table" then
        return tostring(v)
    end
    if depth > 8 then
        return "(nested too deep)"
    end
    local n, count = #v, 0
    for _ in pairs(v) do
        count = count + 1
        if count > 10000 then
            return "(too big to show)"
        end
    end
    if count == 0 then
        return json.array({})
    end
    local out = {}
    if n == count then
        for i = 1, n do
            out[i] = plain(v[i], depth + 1)
        end
        return out
    end
    for k, x in pairs(v) do
        local tk = type(k)
        if tk == "string" or tk == "number" or tk == "boolean" then
            out[tostring(k)] = plain(x, depth + 1)
        end
    end
    return out
end

-- ------------------------------------------------------------ the stream

local function send_event(name, data)
    if next(streams) == nil then
        return
    end
    local text = string.format("event: %s\ndata: %s\n\n", name,
                               json.encode(data))
    for conn in pairs(streams) do
        if conn.closed then
            streams[conn] = nil
        elseif not conn:http_write(text) then
            streams[conn] = nil
            log.info("admin", "conn=%s admin event stream dropped: its "
                     .. "output is full", tostring(conn.id))
            conn:close()
        end
    end
end

-- ------------------------------------------------------------ audit

local function audit_key(n)
    return string.format("audit/%010d", n)
end

-- Notes an action of session s (or { name, peer }) in the log (unless
-- logged: it has been already), the database and the dashboard.
local function record(s, action, detail, ok, result, logged)
    audit_seq = audit_seq + 1
    local e = { id = audit_seq, time = os.time(), admin = s.name,
                peer = s.peer, action = action, detail = cut(detail, 1000),
                ok = ok and true or false, result = cut(result, 1000) }
    local level = ok and log.info or log.warning
    if logged then
        level = function() end
    end
    level("admin", "web admin %s (%s): %s -> %s%s", tostring(s.name),
          tostring(s.peer), e.detail, ok and "" or "failed: ",
          cut(result, 200):gsub("\n", " "))
    local stored, err = pcall(function()
        local b = game.db():batch():put(audit_key(e.id), e)
        if e.id > M.AUDIT_KEEP then
            b:delete(audit_key(e.id - M.AUDIT_KEEP))
        end
        b:commit()
    end)
    if not stored then
        log.error("admin", "audit entry %d could not be stored: %s", e.id,
                  tostring(err))
    end
    audit[#audit + 1] = e
    if #audit > M.AUDIT_SHOWN then
        table.remove(audit, 1)
    end
    send_event("audit", e)
    return e
end

local function load_audit()
    audit, audit_seq = {}, 0
    for k, v in game.db():each("audit/") do
        local n = tonumber(k:match("^audit/(%d+)$"))
        if n and type(v) == "table" then
            audit_seq = math.max(audit_seq, n)
            audit[#audit + 1] = v
            if #audit > M.AUDIT_SHOWN then
                table.remove(audit, 1)
            end
        end
    end
end

-- ------------------------------------------------------------ sessions

local function who_of(s)
    return "web admin " .. s.name .. " (" .. s.peer .. ")"
end

local function drop(token, why)
    local s = sessions[token]
    if not s then
        return
    end
    sessions[token] = nil
    if s.console then
        console.close_session(s.console)
    end
    for conn, ss in pairs(streams) do
        if ss == s then
            streams[conn] = nil
            conn:close()
        end
    end
    log.info("admin", "web admin session of %s (%s) ended (%s)", s.name,
             s.peer, why)
end

local function session_of(req)
    local token = req.cookies[COOKIE]
    local s = token and sessions[token]
    if not s then
        return nil
    end
    local now = core.now()
    if not secret.account(cfg, s.name) then
        drop(token, "no longer an admin")
        return nil
    elseif now - s.last > cfg.web_admin_session_timeout then
        drop(token, "expired")
        return nil
    end
    s.last = now
    return s
end

local function not_here()
    return W.error_answer(404, "no such endpoint (the control UI needs an "
                          .. "admin account: admins in tpserver.lua)")
end

-- A route for a logged-in admin; unsafe: the CSRF header is checked.
local function guarded(fn, unsafe)
    return function(req, p)
        if not enabled() then
            return not_here()
        end
        local s = session_of(req)
        if not s then
            return W.error_answer(401, "log in as an admin first (POST "
                                  .. "/api/admin/login)")
        end
        if unsafe and req.headers[CSRF] ~= s.csrf then
            log.warning("admin", "%s: %s %s refused: missing or wrong "
                        .. "X-TP-Admin-CSRF header", who_of(s), req.method,
                        req.path)
            return W.error_answer(403, "missing or wrong X-TP-Admin-CSRF "
                                  .. "header (the csrf of the login "
                                  .. "answer)")
        end
        s.peer = req.conn.peer
        req.conn.web_admin = s.name
        return fn(req, p, s)
    end
end

-- Answers now (when done ran before the route returned) or later.
local function deferred(req, start)
    local returned, now_ans = false, nil
    start(function(ans)
        if returned then
            web.finish(req, ans)
        else
            now_ans = ans
        end
    end)
    returned = true
    if now_ans then
        return now_ans
    end
    req.conn:pause()
    return nil
end

-- ------------------------------------------------------------ what is shown

local function status()
    local st = api.status()
    st.waiting_for = json.array(st.waiting_for)
    st.game_over = web.game_over()
    st.admin_protocol = cfg.admin_port > 0 and cfg.admin_port or false
    return st
end

local function player_rows()
    local out = {}
    for _, r in ipairs(api.players()) do
        out[#out + 1] = { id = r.id, name = r.name, online = r.online,
                          finished = r.finished, alive = r.alive,
                          idle = r.idle, banned = r.banned,
                          email = r.email, ai = r.ai }
    end
    return json.array(out)
end

local function player_name(id)
    local p = id and id ~= 0 and accounts.player(id)
    return p and p.name or ""
end

local function clients()
    local out = {}
    for _, c in ipairs(core.connections()) do
        if not c.closed then
            local kind = c.admin and "admin" or c.kind
            local web_kind = kind == "web" or kind == "webs"
            local player, pid = "", nil
            if c.admin then
                player = c.admin_name and ("admin " .. c.admin_name) or ""
            elseif web_kind then
                player = c.web_admin and ("admin " .. c.web_admin) or ""
            else
                pid = c.player
                player = player_name(pid)
            end
            local protocol = c.version ~= 0 and ("TP0" .. c.version) or
                             (web_kind and "HTTP" or "-")
            out[#out + 1] = {
                id = c.id, kind = kind, listener = c.listener,
                peer = c.peer, protocol = protocol, tls = c.tls,
                player = player, player_id = pid or cjson.null,
                state = web_kind and "HTTP" or (c.state or ""),
                idle = math.floor(c.idle * 10 + 0.5) / 10,
                age = math.floor(c.age * 10 + 0.5) / 10,
                pending = c.pending_output, admin = c.admin,
            }
        end
    end
    table.sort(out, function(a, b) return a.id < b.id end)
    for _, s in ipairs(web.sessions()) do
        out[#out + 1] = {
            id = s.id, kind = "session", listener = "web", peer = s.peer,
            protocol = "HTTP", tls = s.tls, player = s.name,
            player_id = s.player, state = "READY",
            idle = math.floor(s.idle * 10 + 0.5) / 10,
            age = math.floor(s.age * 10 + 0.5) / 10, pending = 0,
            admin = false,
        }
    end
    return json.array(out)
end

-- ------------------------------------------------------------ load samples

-- The q-quantile of the observations in a histogram's bucket counts,
-- by linear interpolation inside its bucket; nil without observations.
local function quantile(bounds, counts, total, q)
    if total <= 0 then
        return cjson.null
    end
    local rank = q * total
    local cum = 0
    for i = 1, #bounds + 1 do
        local c = counts[i] or 0
        if c > 0 and cum + c >= rank then
            local lo = i > 1 and bounds[i - 1] or 0
            local hi = bounds[i]
            if not hi then
                return lo       -- past the last bound: at least that
            end
            return lo + (hi - lo) * ((rank - cum) / c)
        end
        cum = cum + c
    end
    return bounds[#bounds]
end

-- Counts of h since prev (both { counts, count }); the new prev.
local function delta(h, prev)
    local d = {}
    for i, c in ipairs(h.counts) do
        d[i] = c - (prev and prev.counts[i] or 0)
    end
    local n = h.count - (prev and prev.count or 0)
    local copy = {}
    for i, c in ipairs(h.counts) do
        copy[i] = c
    end
    return d, n, { counts = copy, count = h.count }
end

local prev_tp, prev_http, prev_at

local function http_histogram()
    local m = stats.histogram("tpserver_http_request_seconds", "", {})
    return m.values[""], m.bounds
end

local function take_sample()
    local now = core.now()
    local tp = sys.stats().request
    local hh, hbounds = http_histogram()
    local td, tn, tprev = delta(tp, prev_tp)
    local hd, hn, hprev = delta(hh, prev_http)
    local span = prev_at and (now - prev_at) or M.SAMPLE
    local first = prev_at == nil
    prev_tp, prev_http, prev_at = tprev, hprev, now
    if first then
        return           -- the first one only sets the base
    end
    span = math.max(span, 0.001)
    local c = core.stats()
    local function r3(v)
        if v == cjson.null then
            return v
        end
        return tonumber(string.format("%.6g", v))
    end
    local s = {
        t = math.floor(os.time()),
        tp_rate = r3(tn / span), http_rate = r3(hn / span),
        tp_p50 = r3(quantile(tp.bounds, td, tn, 0.5)),
        tp_p95 = r3(quantile(tp.bounds, td, tn, 0.95)),
        tp_p99 = r3(quantile(tp.bounds, td, tn, 0.99)),
        http_p50 = r3(quantile(hbounds, hd, hn, 0.5)),
        http_p95 = r3(quantile(hbounds, hd, hn, 0.95)),
        http_p99 = r3(quantile(hbounds, hd, hn, 0.99)),
        connections = c.connections, memory = c.lua_memory,
    }
    samples[#samples + 1] = s
    local keep = math.floor(M.HOUR / M.SAMPLE)
    while #samples > keep do
        table.remove(samples, 1)
    end
    send_event("sample", s)
end
M.take_sample = take_sample

local function note_turn(turn)
    local t = { t = math.floor(os.time()), turn = turn,
                ms = tonumber(string.format("%.3f", game.last_turn_ms or 0)) }
    turns[#turns + 1] = t
    while turns[1] and turns[1].t < os.time() - M.HOUR do
        table.remove(turns, 1)
    end
    send_event("turn", t)
end

-- ------------------------------------------------------------ actions

-- Argument kinds: s string, n number, w a player (name or id), p a
-- password (a string never shown); "?" after one: may be left out.
local A = {}
local ACTION_LIST = {}

local function action(name, args, confirm, opts)
    local path = {}
    for part in name:gmatch("[^%.]+") do
        path[#path + 1] = part
    end
    local a = { name = name, args = args, confirm = confirm,
                path = path, background = opts and opts.background }
    local doc = commands.docs[name]
    a.usage = doc and doc.usage or name .. "()"
    a.summary = doc and doc.summary or ""
    A[name] = a
    ACTION_LIST[#ACTION_LIST + 1] = a
end

action("turn.now", {}, "End the current turn now: the ruleset processes "
       .. "it at once and every player gets the new turn.")
action("turn.pause", {})
action("turn.resume", {})
action("turn.reset", {})
action("turn.mode", { "s" })
action("turn.length", { "n" })
action("add_player", { "s", "p", "s?" })
action("remove_player", { "w" }, "Remove the player's account: they "
       .. "cannot log in again, their connections are closed; what they "
       .. "own in the game stays.")
action("reset_password", { "w", "p" }, "Give the player a new password: "
       .. "the old one stops working.")
action("kick", { "w", "s?" }, "Close every connection of the player. They "
       .. "may log in again.")
action("ban", { "w", "s?" }, "Ban the player: their connections are closed "
       .. "and their logins refused until unbanned.")
action("unban", { "w" })
action("message", { "w", "s", "s?" })
action("broadcast", { "s", "s?" })
action("log_level", { "s", "s?" })
action("unlock", {})
action("reload", {}, "Reload tpserver.lua and apply what can change while "
       .. "the server runs (as SIGHUP).")
action("reload_ruleset", {}, "Load the ruleset's Lua files again and put "
       .. "their hooks in place (refused if the types change).")
action("backup", { "s" }, nil, { background = true })
action("shutdown", {}, "Stop the server: every player is disconnected and "
       .. "the game is closed cleanly. It does not come back by itself.")

local function fn_of(a)
    local v = api
    for _, part in ipairs(a.path) do
        v = type(v) == "table" and v[part] or nil
    end
    return v
end

-- The arguments of a request checked against a's kinds: args, shown
-- (the call as text, passwords hidden); or nil, why.
local function check_args(a, given)
    if given == nil or given == cjson.null then
        given = {}
    end
    if type(given) ~= "table" then
        return nil, "args must be an array"
    end
    local n = 0
    for k in pairs(given) do
        if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then
            return nil, "args must be an array"
        end
        n = math.max(n, k)
    end
    if n > #a.args then
        return nil, string.format("%s takes at most %d arguments", a.name,
                                  #a.args)
    end
    local args, shown = {}, {}
    for i, kind in ipairs(a.args) do
        local k, optional = kind:match("^(%a)(%??)$")
        local v = given[i]
        if v == cjson.null or (optional == "?" and v == "") then
            v = nil
        end
        if v == nil then
            if optional ~= "?" then
                return nil, string.format("%s: argument %d is missing "
                                          .. "(%s)", a.name, i, a.usage)
            end
        elseif k == "n" then
            if type(v) ~= "number" then
                return nil, string.format("%s: argument %d must be a "
                                          .. "number", a.name, i)
            end
        elseif k == "w" then
            if type(v) ~= "string" and type(v) ~= "number" then
                return nil, string.format("%s: argument %d must be a "
                                          .. "player's name or id", a.name,
                                          i)
            end
        elseif type(v) ~= "string" then
            return nil, string.format("%s: argument %d must be a string",
                                      a.name, i)
        end
        args[i] = v
        if v ~= nil then
            shown[#shown + 1] = k == "p" and '"***"' or
                                pretty.format(v, { quote = true })
        end
    end
    return args, a.name .. "(" .. table.concat(shown, ", ") .. ")"
end

-- Runs fn(args) as a task of session s; done(ok, value, error, printed),
-- maybe before run returns. What the command changed is committed when
-- it ended well, else thrown away.
local function run(s, fn, args, nargs, done)
    local printed = {}
    local t
    local function step(...)
        local res = pack(coroutine.resume(t.co, ...))
        if res[1] and res[2] == task.WAIT then
            return
        end
        t:cancel()
        local ok, value, err
        if not res[1] then
            ok, err = false, "internal error: " .. tostring(res[2])
            log.error("admin", "%s: command failed: %s", who_of(s),
                      tostring(res[2]))
        elseif not res[2] then
            local e = res[3]
            ok = false
            err = type(e) == "table" and tostring(e.message) or tostring(e)
        else
            ok, value = true, res[3]
        end
        if model.is_dirty() then
            local stored = ok and pcall(model.commit)
            if not stored then
                model.rollback()
            end
            if ok and not stored then
                ok, err = false, "the changes could not be stored (see the "
                                 .. "server log); nothing was changed"
            end
        end
        done(ok, value, err, table.concat(printed))
    end
    t = task.new(function()
        return pcall(fn, unpack(args, 1, nargs))
    end, { who = who_of(s),
           output = function(text) printed[#printed + 1] = text end,
           resume = function(_, ...) step(...) end })
    step()
end

local function result_text(value, printed)
    local text = value == nil and "" or pretty.format(value)
    if printed ~= "" then
        text = printed .. text
    end
    return text
end

local function job_public(j)
    return { id = j.id, action = j.action, detail = j.detail,
             state = j.state, started = j.started,
             finished = j.finished or cjson.null,
             result = j.result or "" }
end

local function do_action(req, s, a, args, shown)
    local fn = fn_of(a)
    if type(fn) ~= "function" then
        return W.error_answer(500, "the admin API has no " .. a.name)
    end
    if a.background then
        job_seq = job_seq + 1
        local j = { id = job_seq, action = a.name, detail = shown,
                    state = "running", started = os.time() }
        jobs[#jobs + 1] = j
        if #jobs > M.JOBS_KEPT then
            table.remove(jobs, 1)
        end
        record(s, a.name, shown, true, "started (job " .. j.id .. ")")
        send_event("job", job_public(j))
        run(s, fn, args, #a.args, function(ok, value, err, printed)
            j.state = ok and "done" or "failed"
            j.finished = os.time()
            j.result = ok and result_text(value, printed) or err
            record(s, a.name, shown .. " (job " .. j.id .. ")", ok,
                   j.result)
            send_event("job", job_public(j))
            send_event("status", status())
        end)
        return W.json_answer(202, { ok = true, job = job_public(j) })
    end
    return deferred(req, function(answer)
        run(s, fn, args, #a.args, function(ok, value, err, printed)
            local text = ok and result_text(value, printed) or err
            record(s, a.name, shown, ok, text)
            if ok then
                answer(W.json_answer(200, { ok = true, result = text,
                                            value = plain(value) }))
            else
                answer(W.json_answer(422, { ok = false, error = err,
                                            status = 422 }))
            end
            -- What the dashboards show may have changed.
            send_event("status", status())
            send_event("players", player_rows())
        end)
    end)
end

-- ------------------------------------------------------------ routes

local function actions_public()
    local out = {}
    for i, a in ipairs(ACTION_LIST) do
        out[i] = { name = a.name, usage = a.usage, summary = a.summary,
                   args = json.array(a.args),
                   confirm = a.confirm or cjson.null,
                   background = a.background or false }
    end
    return out
end

local function state(s)
    local lines = {}
    for i, l in ipairs(logbus.recent()) do
        lines[i] = l
    end
    local js = {}
    for i, j in ipairs(jobs) do
        js[i] = job_public(j)
    end
    return {
        admin = s.name, status = status(), clients = clients(),
        players = player_rows(),
        history = { interval = M.SAMPLE, samples = json.array(samples),
                    turns = json.array(turns) },
        log = json.array(lines), audit = json.array(audit),
        jobs = json.array(js), actions = actions_public(),
    }
end

local function routes()
    local route = W.route

    local function page(req)
        if not enabled() then
            return not_here()
        end
        return W.static(req, "/admin.html")
    end
    route("GET", "/admin", page)
    route("GET", "/admin/", page)

    route("POST", "/api/admin/login", function(req)
        if not enabled() then
            return not_here()
        end
        local b = W.body_json(req)
        if type(b.name) ~= "string" or type(b.password) ~= "string" then
            W.refuse(400, "name and password must be strings")
        end
        local name, password = b.name, b.password
        local conn = req.conn
        local account = name ~= "" and secret.account(cfg, name)
        local key = "admin:" .. name
        local who = { name = name, peer = conn.peer }
        return deferred(req, function(answer)
            login_guard.after_wait(conn, key, function()
                secret.verify_async(password,
                    account and account.password_hash, function(ok)
                    if conn.closed then
                        return
                    end
                    if not (ok and account and password ~= "") then
                        log.warning("admin", "web admin login failed as "
                                    .. "\"%s\" from %s", name, conn.peer)
                        login_guard.login_failed(conn, key, log)
                        record(who, "login", "login as " .. name, false,
                               "bad name or password", true)
                        answer(W.error_answer(401, "bad name or password"))
                        return
                    end
                    login_guard.succeeded(key, conn.peer)
                    local token = W.new_token()
                    local s = { name = name, peer = conn.peer,
                                token = token, csrf = W.new_token(),
                                last = core.now(), started = core.now() }
                    sessions[token] = s
                    record(s, "login", "login", true, "logged in")
                    answer(W.json_answer(200, {
                        name = name, csrf = s.csrf,
                        timeout = cfg.web_admin_session_timeout },
                        { ["Set-Cookie"] = W.cookie(req, COOKIE, token,
                              math.floor(cfg.web_admin_session_timeout)) }))
                end)
            end)
        end)
    end, { own_csrf = true })

    route("POST", "/api/admin/logout", function(req)
        if not enabled() then
            return not_here()
        end
        local s = session_of(req)
        if s then
            if req.headers[CSRF] ~= s.csrf then
                return W.error_answer(403, "missing or wrong "
                                      .. "X-TP-Admin-CSRF header")
            end
            s.peer = req.conn.peer
            record(s, "logout", "logout", true, "logged out")
            drop(s.token, "logged out")
        end
        return W.json_answer(200, { ok = true }, {
            ["Set-Cookie"] = W.cookie(req, COOKIE, "", 0) })
    end, { own_csrf = true })

    route("GET", "/api/admin/session", guarded(function(_, _, s)
        return W.json_answer(200, { name = s.name, csrf = s.csrf,
                             timeout = cfg.web_admin_session_timeout })
    end))

    route("GET", "/api/admin/state", guarded(function(_, _, s)
        return W.json_answer(200, state(s))
    end))

    route("GET", "/api/admin/events", guarded(function(req, _, s)
        streams[req.conn] = s
        local first = string.format("retry: 3000\nevent: hello\ndata: %s"
                                    .. "\n\n", json.encode({ admin =
                                    s.name }))
        return { status = 200, stream = true, body = first,
                 headers = { ["Content-Type"] = "text/event-stream",
                             ["Cache-Control"] = "no-store",
                             ["X-Content-Type-Options"] = "nosniff",
                             ["X-Accel-Buffering"] = "no" } }
    end))

    route("POST", "/api/admin/action", guarded(function(req, _, s)
        local b = W.body_json(req)
        local a = type(b.action) == "string" and A[b.action]
        if not a then
            return W.error_answer(400, "no such action: " ..
                                  tostring(b.action))
        end
        local args, shown = check_args(a, b.args)
        if not args then
            return W.error_answer(400, shown)
        end
        return do_action(req, s, a, args, shown)
    end, true), { own_csrf = true })

    route("POST", "/api/admin/console", guarded(function(req, _, s)
        local b = W.body_json(req)
        if type(b.code) ~= "string" or b.code:match("^%s*$") then
            W.refuse(400, "code must be a string of Lua")
        end
        s.console = s.console or console.session(who_of(s))
        s.console.who, s.console.log_as = who_of(s), who_of(s)
        local code = b.code
        local busy
        local ans = deferred(req, function(answer)
            local started, why = console.eval(s.console, code,
                function(ok, output, text)
                    record(s, "console", code, ok, text)
                    answer(W.json_answer(200, {
                        ok = ok, output = output,
                        result = ok and text or cjson.null,
                        error = (not ok) and text or cjson.null }))
                    send_event("status", status())
                end)
            if not started then
                busy = why
                answer(W.error_answer(409, why))
            end
        end)
        if busy then
            log.info("admin", "%s: console line refused: %s", who_of(s),
                     busy)
        end
        return ans
    end, true), { own_csrf = true })
end

-- ------------------------------------------------------------ set-up

local started = false

-- Adds the routes and starts keeping the dashboard's data. cfg: the
-- running configuration (admins is read each time: a reload applies).
function M.start(config)
    cfg = config
    if started then
        return
    end
    started = true
    routes()
    web.admin_ui = enabled
    load_audit()
    logbus.keep(M.LOG_KEEP)
    logbus.subscribe(function(lines)
        if next(streams) ~= nil then
            send_event("log", lines)
        end
    end)
    events.subscribe(function(name, data)
        if next(streams) == nil and name ~= "turn_start" then
            return
        end
        if name == "turn_start" then
            note_turn((data.turn or game.turn_number()) - 1)
        end
        if name == "player_finished" then
            local p = accounts.player(data.player)
            send_event(name, { player = data.player,
                               name = p and p.name or "" })
        elseif name ~= "message" then
            send_event(name, plain(data))
        end
        if next(streams) ~= nil then
            send_event("status", status())
            send_event("players", player_rows())
        end
    end)
    take_sample()
    core.timer(M.SAMPLE * 1000, M.SAMPLE * 1000, take_sample)
    core.timer(2000, 2000, function()
        if next(streams) ~= nil then
            send_event("clients", clients())
        end
    end)
    core.timer(5000, 5000, function()
        if next(streams) ~= nil then
            send_event("status", status())
        end
    end)
    -- Idle sessions go once a minute; streams get a comment line now and
    -- then, so that proxies keep them open.
    core.timer(60000, 60000, function()
        local now = core.now()
        for token, s in pairs(sessions) do
            if now - s.last > cfg.web_admin_session_timeout then
                drop(token, "expired")
            elseif not secret.account(cfg, s.name) then
                drop(token, "no longer an admin")
            end
        end
    end)
end

function M.closed(conn)
    streams[conn] = nil
end

-- Open sessions (the console's view): { name, peer, idle }.
function M.sessions()
    local out = {}
    for _, s in pairs(sessions) do
        out[#out + 1] = { name = s.name, peer = s.peer,
                          idle = core.now() - s.last }
    end
    return out
end

return M
