-- tp.web: the web side (docs/http.md). The core parses HTTP and applies
-- its limits (core/http.c); every request comes here through the http
-- hook: routes, sessions, the JSON API, the event stream, static files,
-- /healthz and /metrics.
--
-- The API runs each game operation as the TP request of the same
-- operation, on the session's virtual connection (tp.web.vconn), and
-- shows its reply frames as JSON (tp.web.json): what a player may see and
-- do is decided by the TP handlers alone.

local accounts = require "tp.accounts"
local core = require "tp.core"
local crypto = require "tp.crypto"
local dispatch = require "tp.dispatch"
local game = require "tp.game"
local json = require "tp.web.json"
local log = require "tp.log"
local model = require "tp.model"
local proto = require "tp.proto"
local stats = require "tp.stats"
local types = require "tp.types"
local vconn = require "tp.web.vconn"
local views = require "tp.views"

local M = {}

local cfg
local root                 -- the folder of the page's files
local routes = {}          -- { method, pattern, names, fn, opts }
local sessions = {}        -- token -> session
local COOKIE = "tp_session"
local json_null = require("cjson").null

local requests_total = stats.counter("tpserver_http_requests_total",
    "HTTP requests answered, by route and status")
local request_seconds = stats.histogram("tpserver_http_request_seconds",
    "Time to answer an HTTP request (answers made later included)",
    { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
      2.5, 5 })

-- ------------------------------------------------------------ answers

local CSP = "default-src 'self'; script-src 'self'; style-src 'self'; "
            .. "img-src 'self' data:; connect-src 'self'; "
            .. "frame-ancestors 'none'; base-uri 'none'; "
            .. "form-action 'self'"

local function answer(status, body, ctype, headers)
    local h = headers or {}
    h["Content-Type"] = h["Content-Type"] or ctype or "application/json"
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "same-origin"
    h["Cache-Control"] = h["Cache-Control"] or "no-store"
    return { status = status, headers = h, body = body }
end

local function json_answer(status, value, headers)
    return answer(status, json.encode(value) .. "\n", "application/json",
                  headers)
end

local function error_answer(status, message, code, headers)
    return json_answer(status, { error = message, code = code or
                                 json_null, status = status }, headers)
end

-- TP Fail codes to HTTP statuses (docs/http.md).
local FAIL_STATUS = { [0] = 400, [1] = 400, [2] = 404, [3] = 503, [4] = 404,
                      [5] = 403, [6] = 410, [7] = 400, [8] = 413 }

local function fail_answer(code, message)
    local status = FAIL_STATUS[code] or 500
    if code == proto.FAIL.UnavailablePermanently and
       tostring(message):find("not served", 1, true) then
        status = 501
    end
    return error_answer(status, message, code)
end

-- An error raised while answering: a fail.raise record (or a Fail frame)
-- is its answer; anything else is a bug, logged with its number.
local error_count = 0
local function raised_answer(err, where)
    if type(err) == "table" and err.tp_fail then
        return fail_answer(err.code, err.message)
    end
    if type(err) == "table" and err.web_status then
        return error_answer(err.web_status, err.message)
    end
    error_count = error_count + 1
    log.error("http", "internal error (web #%d) %s: %s", error_count,
              where or "", type(err) == "table" and
              tostring(err.trace or err.message) or tostring(err))
    return error_answer(500, "internal error (web #" .. error_count .. ")")
end

-- Raises an HTTP error from inside a route.
local function refuse(status, message)
    error({ web_status = status, message = message }, 0)
end
M.refuse = refuse

-- ------------------------------------------------------------ routing

-- route("GET", "/api/objects/{id}", fn): {name} matches a decimal number
-- (given to fn as a number), {*name} the rest of the path.
local function route(method, path, fn, opts)
    local names = {}
    local pat = "^" .. path:gsub("[%-%.%+%[%]%(%)%$%^%%%?]", "%%%0")
                          :gsub("{(%*?)([%w_]+)}", function(star, n)
        names[#names + 1] = n
        return star == "*" and "(.*)" or "(%-?%d+)"
    end) .. "$"
    routes[#routes + 1] = { method = method, path = path, pattern = pat,
                            names = names, fn = fn, opts = opts or {} }
end

local function find_route(method, path)
    local allowed = {}
    for _, r in ipairs(routes) do
        -- (A pattern without captures gives the whole match.)
        local caps = { path:match(r.pattern) }
        if caps[1] ~= nil then
            if r.method == method or (method == "HEAD" and
                                      r.method == "GET") then
                local params = {}
                for i, n in ipairs(r.names) do
                    params[n] = tonumber(caps[i]) or caps[i]
                end
                return r, params
            end
            allowed[#allowed + 1] = r.method
        end
    end
    return nil, allowed
end

local function unescape(s)
    return (s:gsub("+", " "):gsub("%%(%x%x)", function(h)
        return string.char(tonumber(h, 16))
    end))
end

local function parse_query(q)
    local out = {}
    for pair in (q or ""):gmatch("[^&]+") do
        local k, v = pair:match("^([^=]*)=?(.*)$")
        out[unescape(k)] = unescape(v)
    end
    return out
end

local function parse_cookies(h)
    local out = {}
    for pair in (h or ""):gmatch("[^;]+") do
        local k, v = pair:match("^%s*([^=]-)%s*=%s*(.-)%s*$")
        if k then
            out[k] = v
        end
    end
    return out
end

-- ------------------------------------------------------------ sessions

local function new_token()
    return crypto.hex(crypto.random(24))
end

local function drop_session(token, why)
    local s = sessions[token]
    if not s then
        return
    end
    sessions[token] = nil
    game.sessions[s.vc] = nil
    log.info("http", "web session of %s ended (%s)", s.name, why)
end

local function session_of(req)
    local token = req.cookies[COOKIE]
    local s = token and sessions[token]
    if not s then
        return nil
    end
    local now = core.now()
    -- kick and ban close the session (admin/commands.lua's
    -- connections_of lists it); a removed player's is gone too.
    if s.vc.closed or now - s.last > cfg.web_session_timeout or
       not accounts.player(s.player) then
        drop_session(token, s.vc.closed and "closed by the server" or
                     "expired")
        return nil
    end
    s.last = now
    return s
end

-- A Set-Cookie value for cookie `name` (the player's session here, the
-- admin's in admin/web.lua); Secure over TLS.
local function cookie(req, name, token, max_age)
    local c = string.format("%s=%s; Path=/; HttpOnly; SameSite=Strict; "
                            .. "Max-Age=%d", name, token, max_age)
    if req.conn.tls then
        c = c .. "; Secure"
    end
    return c
end

local function session_body(s)
    return { player = { id = s.player, name = s.name }, csrf = s.csrf }
end

-- ------------------------------------------------------------ TP calls

-- Runs TP request `name` for the session and returns its frames as
-- JSON items: a Sequence's items (Fails among them are raised, or kept
-- as { error } with keep_fails), or the one frame.
local function tp(req, name, fields, opts)
    opts = opts or {}
    local vc = req.session.vc
    local frames = vconn.call(vc, name, fields)
    local items = {}
    local function layout_of(ot)
        return views.order_layout(vc, ot)
    end
    for _, f in ipairs(frames) do
        if f._type ~= proto.id.Sequence then
            local item, failed = json.frame(f, layout_of)
            if failed then
                if not opts.keep_fails then
                    error({ tp_fail = true, code = failed.code,
                            message = failed.result }, 0)
                end
                item = { error = failed.result, code = failed.code }
            end
            items[#items + 1] = item
        end
    end
    return items
end

-- The ids of an ID list (GetObjectIDs ...), all at once.
local function tp_ids(req, name, from)
    local list = tp(req, name, { key = -1, start = 0, amount = -1,
                                 from = from or -1 })[1]
    local ids = {}
    local entries = type(list.modtimes) == "table" and list.modtimes or {}
    for _, e in ipairs(entries) do
        if type(e) == "table" then
            ids[#ids + 1] = e.id
        end
    end
    return ids
end

-- A number from a query or body value, or a 400.
local function number(v, what)
    local n = tonumber(v)
    if not n or n ~= math.floor(n) or n < -2147483648 or n > 4294967295 then
        refuse(400, what .. " must be an integer")
    end
    return n
end

local function body_json(req)
    local v, err = json.decode(req.body)
    if v == nil then
        refuse(400, err)
    end
    if type(v) ~= "table" then
        refuse(400, "the JSON body must be an object")
    end
    return v
end

-- ------------------------------------------------------------ public

-- The number of objects, counted again only when the model has changed
-- (every change stamps the model's clock), not on every request.
local count_at, count_cached
local function object_count()
    local at = model.clock()
    if at ~= count_at then
        local n = 0
        for _ in pairs(model.objects) do
            n = n + 1
        end
        count_at, count_cached = at, n
    end
    return count_cached
end

-- The end of the game for /api/game: { turn, reason, winners = { names } }
-- once the ruleset ended it (tp.turn), else null.
local function over_info()
    local over = game.over()
    if not over then
        return json_null
    end
    local names = {}
    for _, id in ipairs(over.winners or {}) do
        local p = accounts.player(id)
        names[#names + 1] = p and p.name or ("#" .. id)
    end
    return { turn = over.turn, reason = over.reason,
             winners = json.array(names) }
end

local function game_info()
    local rs = game.ruleset()
    local record = game.turn_record()
    local urls, web
    urls = {}
    local listeners = require "tp.listeners"
    for _, l in ipairs(cfg.listeners) do
        if listeners.is_web(l.kind) then
            web = web or listeners.url(l)
        else
            urls[#urls + 1] = listeners.url(l)
        end
    end
    local left = game.time_remaining()
    local count = object_count()
    return {
        name = cfg.game_longname ~= "" and cfg.game_longname or
               cfg.game_name,
        short_name = cfg.game_name,
        server = { name = "tpserver", version = core.version },
        ruleset = { name = rs.name, version = rs.version },
        turn = record.turn, turn_name = record.name or "",
        seconds_left = left,
        turn_end = record.ends_at and math.floor(record.ends_at) or
                   json_null,
        turn_mode = cfg.turn_mode, turn_length = cfg.turn_length,
        turn_schedule = json.array(cfg.turn_schedule),
        turn_timezone = cfg.turn_timezone,
        paused = game.paused() and true or false,
        over = over_info(),
        players = accounts.count(), objects = count,
        listeners = json.array(urls), web = web or json_null,
        admin = cfg.admin_email, comment = cfg.game_comment,
        spectators = M.spectating(),
        history_turns = cfg.history_turns,
        admin_ui = M.admin_ui and M.admin_ui() or false,
        account_creation = cfg.allow_account_creation and not game.over() and
                           (cfg.max_players == 0 or
                            accounts.count() < cfg.max_players),
    }
end

-- Whether the game is over: the ruleset's game_over(ctx) hook says so,
-- or, without one, at most one of two or more players is left.
function M.game_over()
    if game.over() then
        return true
    end
    local rs = game.ruleset()
    if rs.game_over then
        return rs.game_over(game.ctx()) and true or false
    end
    local n, alive = 0, 0
    for _, p in ipairs(accounts.players()) do
        n = n + 1
        if p.alive ~= false then
            alive = alive + 1
        end
    end
    return n >= 2 and alive <= 1
end

-- Whether visitors may watch the whole universe now.
function M.spectating()
    local s = cfg.web_spectators
    if s == "after_end" then
        return M.game_over()
    end
    return s == true
end

local function players_info()
    local waiting = {}
    for _, id in ipairs(game.waiting()) do
        waiting[id] = true
    end
    local finished = game.turn_record().finished
    local out = {}
    for _, p in ipairs(accounts.players()) do
        out[#out + 1] = { id = p.id, name = p.name,
                          finished = p.alive ~= false and
                                     (finished[tostring(p.id)] == true or
                                      not (waiting[p.id] or p.idle)),
                          alive = p.alive ~= false,
                          idle = p.idle ~= nil,
                          score = p.score or json_null,
                          ai = require("tp.ai").is_ai(p) }
    end
    return json.array(out)
end

route("GET", "/api/game", function()
    return json_answer(200, game_info())
end)

route("GET", "/api/players", function()
    return json_answer(200, players_info())
end)

route("GET", "/api/time", function()
    local record = game.turn_record()
    return json_answer(200, { seconds_left = game.time_remaining(),
                              turn = record.turn,
                              turn_name = record.name or "",
                              paused = game.paused() and true or false })
end)

route("GET", "/healthz", function()
    local db = game.db()
    local writable = db and db.writable and db:writable()
    if writable == false then
        return json_answer(503, { status = "database unavailable",
                                  turn = game.turn_number() })
    end
    return json_answer(200, { status = "ok", turn = game.turn_number() })
end)

route("GET", "/metrics", function()
    return answer(200, stats.render(), "text/plain; version=0.0.4; "
                  .. "charset=utf-8")
end)

-- ------------------------------------------------------------ login

route("POST", "/api/login", function(req)
    local b = body_json(req)
    if type(b.username) ~= "string" or type(b.password) ~= "string" then
        refuse(400, "username and password must be strings")
    end
    local vc = vconn.new(req.conn.peer, { tls = req.conn.tls,
                                          max_frame = cfg.max_frame_size })
    local conn = req.conn
    conn:pause()
    vconn.call_later(vc, "Login", { username = b.username,
                                    password = b.password },
        function(frames, err)
            local ans
            if not frames then
                ans = raised_answer(err, "login")
                if ans.status == 400 then
                    ans = error_answer(401, type(err) == "table" and
                                       err.message or "login failed",
                                       type(err) == "table" and err.code)
                end
            elseif frames[1] and frames[1]._type == proto.id.Okay then
                local token = new_token()
                local s = { vc = vc, player = vc.player, token = token,
                            name = accounts.player(vc.player).name,
                            csrf = new_token(), last = core.now(),
                            started = core.now() }
                sessions[token] = s
                log.info("http", "web login", { player = s.player,
                         name = s.name, peer = conn.peer })
                ans = json_answer(200, session_body(s), {
                    ["Set-Cookie"] = cookie(req, COOKIE, token,
                                            cfg.web_session_timeout)
                })
            else
                local f = frames[1] or {}
                ans = error_answer(401, f.result or "login failed",
                                   f.code)
            end
            M.finish(req, ans)
        end)
    return nil
end, { public_post = true })

-- A new account, by the TP CreateAccount handler (its name rules, the
-- player cap, the creation limits per address and allow_account_creation
-- apply as they do to TP clients).
route("POST", "/api/accounts", function(req)
    local b = body_json(req)
    if type(b.username) ~= "string" or type(b.password) ~= "string" or
       (b.email ~= nil and type(b.email) ~= "string") then
        refuse(400, "username and password (and email, if given) must be "
               .. "strings")
    end
    local vc = vconn.new(req.conn.peer, { tls = req.conn.tls,
                                          max_frame = cfg.max_frame_size })
    req.conn:pause()
    vconn.call_later(vc, "CreateAccount", { username = b.username,
                                            password = b.password,
                                            email = b.email or "",
                                            comment = "" },
        function(frames, err)
            local ans
            if not frames then
                ans = raised_answer(err, "account")
                if ans.status == 400 and type(err) == "table" and
                   tostring(err.message):find("taken", 1, true) then
                    ans = error_answer(409, err.message, err.code)
                end
            elseif frames[1] and frames[1]._type == proto.id.Okay then
                log.info("http", "account %s created from the web (%s)",
                         b.username, req.conn.peer)
                ans = json_answer(201, { ok = true,
                                         message = frames[1].result })
            else
                local f = frames[1] or {}
                local taken = tostring(f.result):find("is taken", 1, true)
                ans = error_answer(taken and 409 or FAIL_STATUS[f.code] or
                                   400, f.result or "not created", f.code)
            end
            M.finish(req, ans)
        end)
    return nil
end, { public_post = true })

route("GET", "/api/session", function(req)
    if not req.session then
        return error_answer(401, "not logged in")
    end
    return json_answer(200, session_body(req.session))
end)

route("POST", "/api/logout", function(req)
    if req.session then
        drop_session(req.session.token, "logged out")
    end
    return json_answer(200, { ok = true }, {
        ["Set-Cookie"] = cookie(req, COOKIE, "", 0) })
end, { public_post = true })

-- ------------------------------------------------------------ player data

local function auth(fn)
    return function(req, p)
        if not req.session then
            return error_answer(401, "log in first (POST /api/login)")
        end
        return fn(req, p)
    end
end

local function ids_param(s)
    local ids = {}
    for x in tostring(s):gmatch("[^,]+") do
        ids[#ids + 1] = number(x, "ids")
        if #ids > 10000 then
            refuse(413, "at most 10000 ids at once")
        end
    end
    return ids
end

route("GET", "/api/objects", auth(function(req)
    local q = req.query
    if q.ids then
        -- As the TP reply: an item per id, a Fail item for one the
        -- player may not see.
        return json_answer(200, json.array(tp(req, "GetObjectsByID",
            { ids = ids_param(q.ids) }, { keep_fails = true })))
    end
    local since = q.since and number(q.since, "since") or -1
    local ids = tp_ids(req, "GetObjectIDs", since)
    local present, gone = {}, {}
    for _, id in ipairs(ids) do
        -- A removed object is listed with the modtime of its removal.
        if model.gone[id] and not model.objects[id] then
            gone[#gone + 1] = id
        else
            present[#present + 1] = id
        end
    end
    local objects = #present > 0 and
        tp(req, "GetObjectsByID", { ids = present }, { keep_fails = true })
        or {}
    local out = {}
    for _, o in ipairs(objects) do
        if not o.error then
            out[#out + 1] = o
        end
    end
    return json_answer(200, { turn = game.turn_number(),
                              objects = json.array(out),
                              gone = json.array(gone) })
end))

route("GET", "/api/objects/{id}", auth(function(req, p)
    return json_answer(200, tp(req, "GetObjectsByID", { ids = { p.id } })[1])
end))

route("GET", "/api/objecttypes", auth(function(req)
    local ids = tp_ids(req, "GetObjectDescIDs")
    return json_answer(200, json.array(#ids > 0 and
        tp(req, "GetObjectDesc", { ids = ids }) or {}))
end))

route("GET", "/api/ordertypes", auth(function(req)
    local ids = tp_ids(req, "GetOrderDescIDs")
    return json_answer(200, json.array(#ids > 0 and
        tp(req, "GetOrderDesc", { ids = ids }) or {}))
end))

-- The order queue of an object the player may see: its id from the
-- object's order_queue parameter (0 when it is not theirs).
local function queue_of(req, id)
    local obj = tp(req, "GetObjectsByID", { ids = { id } })[1]
    if not obj.queue or obj.queue == 0 then
        error({ tp_fail = true, code = proto.FAIL.PermissionDenied,
                message = string.format("object %d has no order queue of "
                                        .. "yours", id) }, 0)
    end
    return obj.queue
end

route("GET", "/api/objects/{id}/orders", auth(function(req, p)
    local qid = queue_of(req, p.id)
    local q = tp(req, "GetOrderQueue", { ids = { qid } })[1]
    local orders = q.numorders and q.numorders > 0 and
        tp(req, "GetOrder", { id = qid, slots = {} }) or {}
    return json_answer(200, { object = p.id, queue = qid,
                              allowed = json.array(q.ordertypes),
                              orders = json.array(orders) })
end))

-- The encoded parameters of an order of type otype on object obj_id from
-- the JSON of the player's choices ({ name = { field = value } }): the
-- order's full values as a TP client is shown them (views.order_values),
-- with the player's choices in, coded as a TP client codes them. The
-- OrderInsert handler then checks them as it checks any client's.
local function order_params(vc, obj_id, otype, given)
    local ot = types.orders[otype]
    if not ot then
        error({ tp_fail = true, code = proto.FAIL.NoSuchThing,
                message = "no such order type " .. tostring(otype) }, 0)
    end
    if given ~= nil and type(given) ~= "table" then
        refuse(400, "params must be an object of parameter values")
    end
    given = given or {}
    for k, v in pairs(given) do
        local known = false
        for _, p in ipairs(ot.params) do
            known = known or p.name == k
        end
        if not known then
            refuse(400, string.format("order type %s has no parameter "
                                      .. "'%s'", ot.name, tostring(k)))
        end
        if type(v) ~= "table" then
            refuse(400, "parameter " .. tostring(k) .. " must be an object")
        end
    end
    local obj = model.objects[obj_id]
    local ok, values = pcall(views.order_values, obj,
                             { type = otype, params = given }, vc.player)
    local bytes
    if ok then
        ok, bytes = pcall(require("tp.codec").encode,
                          views.order_layout(vc, ot), values, false)
    else
        bytes = values
    end
    if not ok then
        refuse(400, "bad order parameters: " ..
               tostring(bytes):gsub("^.-:%d+: ", ""))
    end
    return bytes
end

local function order_fields(req, p, b)
    local qid = queue_of(req, p.id)
    local otype = number(b.otype, "otype")
    local slot = b.slot == nil and -1 or number(b.slot, "slot")
    return { id = qid, slot = slot, otype = otype, turns = 0,
             resources = {},
             params = order_params(req.session.vc, p.id, otype, b.params) }
end

route("POST", "/api/objects/{id}/orders", auth(function(req, p)
    local fields = order_fields(req, p, body_json(req))
    tp(req, "OrderInsert", fields)
    -- The order as stored: read back like any client would.
    local slot = fields.slot
    if slot < 0 then
        local q = tp(req, "GetOrderQueue", { ids = { fields.id } })[1]
        slot = q.numorders - 1
    end
    local order = tp(req, "GetOrder", { id = fields.id, slots = { slot } })
    return json_answer(201, order[1])
end))

route("POST", "/api/objects/{id}/orders/probe", auth(function(req, p)
    local fields = order_fields(req, p, body_json(req))
    return json_answer(200, tp(req, "OrderProbe", fields)[1])
end))

route("DELETE", "/api/objects/{id}/orders/{slot}", auth(function(req, p)
    local qid = queue_of(req, p.id)
    tp(req, "RemoveOrder", { id = qid, slots = { p.slot } })
    return json_answer(200, { ok = true })
end))

route("POST", "/api/finished", auth(function(req)
    local r = tp(req, "FinishedTurn", {})[1]
    return json_answer(200, { ok = true, message = r and r.result or "" })
end))

route("GET", "/api/boards", auth(function(req)
    local ids = tp_ids(req, "GetBoardIDs")
    return json_answer(200, json.array(#ids > 0 and
        tp(req, "GetBoards", { ids = ids }) or {}))
end))

route("GET", "/api/boards/{id}/messages", auth(function(req, p)
    local b = tp(req, "GetBoards", { ids = { p.id } })[1]
    if (b.messages or 0) == 0 then
        return json_answer(200, json.array({}))
    end
    local slots = {}
    for i = 1, b.messages do
        slots[i] = i - 1
    end
    return json_answer(200, json.array(tp(req, "GetMessage",
                                          { id = p.id, slots = slots })))
end))

route("POST", "/api/boards/{id}/messages", auth(function(req, p)
    local b = body_json(req)
    if type(b.subject) ~= "string" or type(b.body) ~= "string" then
        refuse(400, "subject and body must be strings")
    end
    local slot = b.slot == nil and -1 or number(b.slot, "slot")
    local refs = {}
    if b.references ~= nil then
        if type(b.references) ~= "table" then
            refuse(400, "references must be an array")
        end
        for _, r in ipairs(b.references) do
            refs[#refs + 1] = { type = number(type(r) == "table" and r.type,
                                              "reference type"),
                                id = number(r.id, "reference id") }
        end
    end
    tp(req, "PostMessage", { id = p.id, slot = slot, msgtypes = {},
                             subject = b.subject, body = b.body,
                             turn = 0, references = refs })
    local board = tp(req, "GetBoards", { ids = { p.id } })[1]
    local at = slot
    if at < 0 or at >= board.messages then
        at = board.messages - 1
    end
    local m = tp(req, "GetMessage", { id = p.id, slots = { at } })[1]
    return json_answer(201, m)
end))

route("DELETE", "/api/boards/{id}/messages/{slot}", auth(function(req, p)
    tp(req, "RemoveMessage", { id = p.id, slots = { p.slot } })
    return json_answer(200, { ok = true })
end))

-- Lists of the game's static and design data: ID list, then the items.
for _, e in ipairs {
    { "/api/resources", "GetResourceIDs", "GetResource" },
    { "/api/categories", "GetCategoryIDs", "GetCategory" },
    { "/api/designs", "GetDesignIDs", "GetDesign" },
    { "/api/components", "GetComponentIDs", "GetComponent" },
    { "/api/properties", "GetPropertyIDs", "GetProperty" },
} do
    local path, list, get = e[1], e[2], e[3]
    route("GET", path, auth(function(req)
        local ids = tp_ids(req, list)
        return json_answer(200, json.array(#ids > 0 and
            tp(req, get, { ids = ids }) or {}))
    end))
end

route("GET", "/api/me", auth(function(req)
    return json_answer(200, tp(req, "GetPlayer", { ids = { 0 } })[1])
end))

-- The player's own account settings: the e-mail address and the turn
-- mails (accounts.set_email, as the console's notify.email).
local function account_body(s)
    local a = accounts.find(s.name) or {}
    return { name = s.name, email = a.email or "",
             notify_email = a.notify_email == true }
end

route("GET", "/api/account", auth(function(req)
    return json_answer(200, account_body(req.session))
end))

route("POST", "/api/account", auth(function(req)
    local b = body_json(req)
    if (b.email ~= nil and type(b.email) ~= "string") or
       (b.notify_email ~= nil and type(b.notify_email) ~= "boolean") then
        refuse(400, "email must be a string and notify_email true or false")
    end
    local a, err = accounts.set_email(req.session.name, b.email,
                                      b.notify_email)
    if not a then
        refuse(err:find("could not be stored", 1, true) and 503 or 400, err)
    end
    log.info("http", "player %d (%s) changed their e-mail settings",
             req.session.player, req.session.name)
    return json_answer(200, account_body(req.session))
end))

route("GET", "/api/players/{id}", auth(function(req, p)
    return json_answer(200, tp(req, "GetPlayer", { ids = { p.id } })[1])
end))

-- Every order queue of the player's, with its orders (GetOrderQueueIDs,
-- GetOrderQueue, GetOrder).
route("GET", "/api/queues", auth(function(req)
    local ids = tp_ids(req, "GetOrderQueueIDs")
    local out = {}
    for _, q in ipairs(#ids > 0 and
                       tp(req, "GetOrderQueue", { ids = ids }) or {}) do
        local orders = (q.numorders or 0) > 0 and
            tp(req, "GetOrder", { id = q.id, slots = {} }) or {}
        out[#out + 1] = { queue = q.id, object = q.id,
                          allowed = json.array(q.ordertypes),
                          orders = json.array(orders) }
    end
    return json_answer(200, json.array(out))
end))

-- ------------------------------------------------------------ spectators

local function history_range()
    local now = game.turn_number()
    return math.max(0, now - cfg.history_turns), now
end

-- The universe for visitors: every object, shown as to nobody in
-- particular (no order queues), by the same view as for players.
local function universe_objects(objects)
    local viewer = { version = 4, player = 0, padding = false }
    local ids = {}
    for id in pairs(objects) do
        ids[#ids + 1] = id
    end
    table.sort(ids)
    local out = {}
    for _, id in ipairs(ids) do
        local ok, f = pcall(views.object_frame, viewer, objects[id])
        if ok then
            out[#out + 1] = json.object(f)
        end
    end
    return out
end

route("GET", "/api/history", function(req)
    if not M.spectating() and not req.session then
        return error_answer(403, "spectating is off on this server")
    end
    local first, last = history_range()
    return json_answer(200, { first = first, last = last })
end)

route("GET", "/api/universe", function(req)
    if not M.spectating() then
        return error_answer(403, "spectating is off on this server")
    end
    local now = game.turn_number()
    local t = req.query.turn and number(req.query.turn, "turn") or now
    local objects = model.objects
    if t ~= now then
        local first = history_range()
        if t < first or t > now then
            return error_answer(404, string.format("turn %d is not in the "
                .. "history (turns %d to %d)", t, first, now))
        end
        local err
        objects, err = game.objects_at(t)
        if not objects then
            return error_answer(404, err)
        end
    end
    return json_answer(200, { turn = t,
                              objects = json.array(universe_objects(objects)) })
end)

-- ------------------------------------------------------------ battles

-- Battle logs (docs/battles.md): a battle's BattleXML document for the
-- players who took part (a web session, or HTTP Basic with the player's
-- TP name and password, for TP clients and scripts), and for everyone
-- while web_spectators lets visitors watch.
local battle = require "tp.battle"

local function battle_summary(b)
    local sides = {}
    for i, sd in ipairs(b.sides or {}) do
        sides[i] = sd.id
    end
    return { id = b.id, turn = b.turn, title = b.title, media = b.media,
             where = b.where or json_null, players = json.array(b.players),
             sides = json.array(sides), rounds = b.rounds,
             url = battle.path(b.id) }
end

local BASIC_REALM = 'Basic realm="tpserver battles", charset="UTF-8"'

-- Calls with(pid) once the reader is known: the web session's player,
-- or the player of HTTP Basic credentials (through the TP Login handler:
-- the login guard and bans apply), or nil for a visitor. Answers 401
-- itself for credentials that fail.
local function battle_reader(req, with)
    if req.session then
        return with(req.session.player)
    end
    local h = req.headers.authorization
    local b64 = h and h:match("^[Bb][Aa][Ss][Ii][Cc]%s+(%S+)%s*$")
    if not b64 then
        return with(nil)
    end
    local raw = crypto.base64_decode(b64)
    local user, pass = (raw or ""):match("^([^:]*):(.*)$")
    if not user then
        return error_answer(400, "the Authorization header is not "
                            .. "Basic base64(name:password)")
    end
    local vc = vconn.new(req.conn.peer, { tls = req.conn.tls,
                                          max_frame = cfg.max_frame_size })
    req.conn:pause()
    vconn.call_later(vc, "Login", { username = user, password = pass },
        function(frames)
            local pid = frames and frames[1] and
                        frames[1]._type == proto.id.Okay and vc.player
            -- The check's session ends here: it served this request only.
            game.sessions[vc] = nil
            vc.closed = true
            if not pid then
                log.info("http", "battle log: HTTP Basic login failed",
                         { name = user, peer = req.conn.peer })
                return M.finish(req, error_answer(401, "wrong name or "
                    .. "password", nil, { ["WWW-Authenticate"] =
                    BASIC_REALM }))
            end
            local ok, ans = pcall(with, pid)
            if not ok then
                ans = type(ans) == "table" and ans.web_status and
                      error_answer(ans.web_status, ans.message) or
                      error_answer(500, "internal error")
            end
            M.finish(req, ans)
        end)
    return nil
end

route("GET", "/battles/{id}.xml", function(req, p)
    local b = model.battle(p.id)
    if not b then
        return error_answer(404, "no battle " .. p.id)
    end
    return battle_reader(req, function(pid)
        if not battle.may_read(b, pid, M.spectating()) then
            if pid == nil then
                return error_answer(401, "log in as a player who took "
                    .. "part in this battle", nil,
                    { ["WWW-Authenticate"] = BASIC_REALM })
            end
            return error_answer(403, "you did not take part in this "
                                .. "battle")
        end
        return answer(200, b.xml, "application/xml; charset=utf-8")
    end)
end)

-- The battles the reader may open (all while spectating), newest last;
-- ?turn=N: only that turn's.
route("GET", "/api/battles", function(req)
    local t = req.query.turn and number(req.query.turn, "turn")
    return battle_reader(req, function(pid)
        local spect = M.spectating()
        if pid == nil and not spect then
            return error_answer(401, "log in first (POST /api/login, or "
                                .. "HTTP Basic)", nil,
                                { ["WWW-Authenticate"] = BASIC_REALM })
        end
        local list = {}
        for _, b in ipairs(model.battles(function(b)
            return (not t or b.turn == t) and battle.may_read(b, pid, spect)
        end)) do
            list[#list + 1] = battle_summary(b)
        end
        return json_answer(200, { battles = json.array(list) })
    end)
end)

-- ------------------------------------------------------------ events

local stream = require "tp.web.stream"

route("GET", "/api/events", function(req)
    return stream.open(req, req.session)
end)

-- ------------------------------------------------------------ static files

local TYPES = {
    html = "text/html; charset=utf-8", js = "text/javascript; charset=utf-8",
    css = "text/css; charset=utf-8", svg = "image/svg+xml",
    png = "image/png", ico = "image/x-icon", json = "application/json",
    txt = "text/plain; charset=utf-8", webmanifest = "application/manifest+json",
}
local cache = {}           -- path -> { body, type } (cleared on SIGHUP)

local function static(req, path)
    if path == "/" then
        path = "/index.html"
    end
    local rel = unescape(path)
    if rel:find("%.%.", 1) or rel:find("[%z\\]") or rel:find("//", 1, true)
       or not rel:match("^/[%w%-%._/]+$") or rel:find("/%.") then
        return error_answer(404, "no such file")
    end
    local hit = cache[rel]
    if not hit then
        local f = io.open(root .. rel, "rb")
        if not f then
            return error_answer(404, "no such file")
        end
        local body = f:read("*a")
        f:close()
        if not body then
            return error_answer(404, "no such file")
        end
        local ext = rel:match("%.(%w+)$") or ""
        hit = { body = body, type = TYPES[ext] or "application/octet-stream" }
        cache[rel] = hit
    end
    local headers = { ["Cache-Control"] = "no-cache" }
    if hit.type:find("text/html", 1, true) then
        headers["Content-Security-Policy"] = CSP
        headers["X-Frame-Options"] = "DENY"
    end
    return answer(200, hit.body, hit.type, headers)
end

-- ------------------------------------------------------------ the hook

-- A state-changing request from another site is refused: its Origin (or
-- Referer) must name this host.
local function same_origin(req)
    local origin = req.headers.origin or req.headers.referer
    if not origin or origin == "null" then
        return origin == nil
    end
    local host = origin:match("^https?://([^/]+)")
    return host ~= nil and host:lower() == (req.headers.host or ""):lower()
end

local UNSAFE = { POST = true, DELETE = true, PUT = true, PATCH = true }

local function route_answer(req)
    local r, params = find_route(req.method, req.path)
    if not r then
        if #params > 0 then
            return error_answer(405, "method not allowed", nil,
                                { Allow = table.concat(params, ", ") })
        end
        if (req.method == "GET" or req.method == "HEAD") and
           req.path:sub(1, 5) ~= "/api/" then
            req.route = "static"
            return static(req, req.path)
        end
        return error_answer(404, "no such endpoint: " .. req.path)
    end
    req.route = r.path
    if UNSAFE[req.method] then
        if not same_origin(req) then
            log.info("http", "conn=%s peer=%s %s %s refused: cross-site "
                     .. "(Origin %s)", tostring(req.conn.id), req.conn.peer,
                     req.method, req.path, tostring(req.headers.origin))
            return error_answer(403, "cross-site request refused")
        end
        if req.session and not r.opts.public_post and not r.opts.own_csrf
           and
           req.headers["x-tp-csrf"] ~= req.session.csrf then
            return error_answer(403, "missing or wrong X-TP-CSRF header "
                                .. "(the csrf of the login answer)")
        end
    end
    return r.fn(req, params)
end

local function observe(req, ans)
    requests_total:inc(1, { route = req.route or "none",
                            status = tostring(ans.status or 200) })
    request_seconds:observe((core.hrtime() - req.started) / 1000)
end

-- Answers a request whose route returned nil (answered later).
function M.finish(req, ans)
    local conn = req.conn
    if conn.closed then
        return
    end
    observe(req, ans)
    local ok, err = pcall(conn.http_respond, conn, ans)
    if not ok then
        pcall(conn.http_respond, conn, raised_answer(err, req.path))
    end
    conn:resume()
end

function M.http(conn, raw)
    local target = raw.target
    local path, query = target:match("^([^?#]*)%??([^#]*)")
    if not path or path:sub(1, 1) ~= "/" then
        return error_answer(400, "the request target must be a path")
    end
    local req = { conn = conn, method = raw.method, path = path,
                  query = parse_query(query), headers = raw.headers,
                  body = raw.body, started = core.hrtime() }
    req.cookies = parse_cookies(raw.headers.cookie)
    req.session = session_of(req)
    local ok, ans = xpcall(route_answer, function(e)
        if type(e) == "table" then
            return e
        end
        return { trace = debug.traceback(tostring(e), 2) }
    end, req)
    if not ok then
        -- What the failed request changed is thrown away, as for TP.
        dispatch.request_failed(conn, ans, false, nil)
        ans = raised_answer(ans, raw.method .. " " .. path)
    end
    if ans == nil then
        return nil                 -- answered later (M.finish)
    end
    if not ans.stream then
        observe(req, ans)
    end
    return ans
end

-- The request ran out of time, or the hook itself failed (core/lua_http.c).
function M.http_failed(conn, err, timed_out, why)
    dispatch.request_failed(conn, err, timed_out, why)
    if timed_out then
        return error_answer(503, why or "request took too long")
    end
    return raised_answer(err, "http hook")
end

function M.on_close(conn)
    stream.closed(conn)
end

-- ------------------------------------------------------------ set-up

function M.init(config, home)
    cfg = config
    root = cfg.web_root ~= "" and cfg.web_root or (home .. "/web")
    stream.init(cfg)
    require("tp.hup").add("web", function()
        cache = {}
    end)
    -- Expired sessions go once a minute.
    core.timer(60000, 60000, function()
        local now = core.now()
        for token, s in pairs(sessions) do
            if s.vc.closed or now - s.last > cfg.web_session_timeout then
                drop_session(token, "expired")
            end
        end
    end)
    return M
end

-- Every web session (for the console): { id, name, player, peer, tls,
-- idle, age }.
function M.sessions()
    local out = {}
    local now = core.now()
    for _, s in pairs(sessions) do
        out[#out + 1] = { id = s.vc.id, name = s.name, player = s.player,
                          peer = s.vc.peer, tls = s.vc.tls and true or false,
                          idle = now - s.last, age = now - (s.started or
                          s.last) }
    end
    table.sort(out, function(a, b) return a.id < b.id end)
    return out
end

-- For the modules that add routes (admin/web.lua): the router and the
-- answers, as the routes here use them.
M.internal = {
    route = route, answer = answer, json_answer = json_answer,
    error_answer = error_answer, raised_answer = raised_answer,
    refuse = refuse, body_json = body_json, static = static,
    new_token = new_token, same_origin = same_origin, cookie = cookie,
}

return M
