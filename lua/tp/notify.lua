-- tp.notify: telling the world outside the game what happens in it.
--
-- Web hooks: each entry of `notify` ({ url =, events = { ... }, format =
-- "json" | "discord" | "slack" }) gets an HTTP POST for each of its
-- events (tp.events), through tp.curl (libcurl's multi interface on the
-- loop, as the metaserver updates): a hook that never answers holds up
-- nothing. Each hook sends one request at a time, in order; a request
-- that fails (no connection, no answer in notify_timeout seconds, a
-- status that is not 2xx) is tried again after notify_retry_delay
-- seconds, doubled at each try, notify_retries tries in all, then
-- dropped and logged. At most notify_queue events wait per hook; past
-- that the oldest is dropped (and logged).
--
-- E-mail (tp.mail): players with an address and notify_email on get a
-- mail when a turn starts and when the game is over, and a reminder notify_reminder seconds before
-- its end if they have not finished it by then (once a turn; kept in
-- meta/notify so that a restart does not send it again, and sent at
-- start when a server that was down missed its time).
--
--   check(cfg) -> true | nil, why       (the notify entries)
--   start(cfg, db)  stop()  status()    remind(turn)
--   payload(format, event, data) -> JSON text   text(event, data)

local M = {}

-- Loaded at start: the configuration check (M.check) runs in processes
-- without the server's C modules too (tpserver console).
local core, curl, log

-- The events a hook may ask for; DEFAULT_EVENTS when it names none.
M.EVENTS = { "turn_start", "turn_end", "turn_warning", "player_joined",
             "player_finished", "player_eliminated", "game_over" }
M.DEFAULT_EVENTS = { "turn_start", "turn_end", "player_joined",
                     "player_eliminated", "game_over" }
M.FORMATS = { json = true, discord = true, slack = true }
M.CHECK_S = 60          -- the reminder's deadline is looked at again

-- The clock (tests may replace it).
M.now = function() return require("tp.core").now() end

local state = { cfg = nil, db = nil, hooks = {}, unsubscribe = nil,
                reminder = nil, check_timer = nil, reminded = nil }

-- ------------------------------------------------------------ config

function M.check(cfg)
    local known = {}
    for _, e in ipairs(M.EVENTS) do
        known[e] = true
    end
    for i, h in pairs(cfg.notify) do
        local where = "notify[" .. tostring(i) .. "]"
        if type(i) ~= "number" or type(h) ~= "table" then
            return nil, where .. " must be a table { url =, events =, "
                        .. "format = }"
        end
        for k in pairs(h) do
            if k ~= "url" and k ~= "events" and k ~= "format" then
                return nil, where .. ": unknown key '" .. tostring(k) ..
                            "' (url, events, format)"
            end
        end
        if type(h.url) ~= "string" or not h.url:match("^https?://[^/?#%s]+")
           or h.url:find("%s") then
            return nil, where .. ".url must be an http:// or https:// URL, "
                        .. "got " .. tostring(h.url)
        end
        if h.format ~= nil and not M.FORMATS[h.format] then
            return nil, where .. ".format must be \"json\", \"discord\" or "
                        .. "\"slack\", got " .. tostring(h.format)
        end
        if h.events ~= nil then
            if type(h.events) ~= "table" then
                return nil, where .. ".events must be a list of event names"
            end
            for _, e in pairs(h.events) do
                if not known[e] then
                    return nil, where .. ".events: unknown event '" ..
                        tostring(e) .. "' (" .. table.concat(M.EVENTS, ", ")
                        .. ")"
                end
            end
        end
    end
    if cfg.mail_from ~= "" then
        local ok, why = require("tp.mail").valid_address(cfg.mail_from)
        if not ok then
            return nil, "mail_from: " .. why
        end
    end
    return true
end

-- ------------------------------------------------------------ texts

local function game_name()
    local cfg = state.cfg or {}
    local n = cfg.game_longname
    n = (n and n ~= "") and n or (cfg.game_name or "the game")
    -- One line, whatever the configuration holds.
    return (n:gsub("%c+", " "))
end

local function player_name(id)
    local p = id and require("tp.accounts").player(id)
    return p and p.name or ("player " .. tostring(id))
end

-- "3 hours 20 minutes", "45 seconds" (for a reader, not exact).
function M.span(s)
    s = math.max(0, math.floor(s + 0.5))
    local function unit(n, one)
        return n .. " " .. one .. (n == 1 and "" or "s")
    end
    if s < 60 then
        return unit(s, "second")
    end
    local d, h, m = math.floor(s / 86400), math.floor(s % 86400 / 3600),
                    math.floor(s % 3600 / 60)
    local parts = {}
    if d > 0 then parts[#parts + 1] = unit(d, "day") end
    if h > 0 then parts[#parts + 1] = unit(h, "hour") end
    if m > 0 and d == 0 then parts[#parts + 1] = unit(m, "minute") end
    return table.concat(parts, " ")
end

local function utc(t)
    return os.date("!%Y-%m-%d %H:%M UTC", math.floor(t))
end

local function iso(t)
    return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

local function names_list(names)
    if #names == 0 then
        return ""
    elseif #names == 1 then
        return names[1]
    end
    return table.concat(names, ", ", 1, #names - 1) .. " and " ..
           names[#names]
end

local function turn_label(data)
    local rec = require("tp.game").turn_record()
    local name = rec and rec.turn == data.turn and rec.name or ""
    return "Turn " .. tostring(data.turn) ..
           (name ~= "" and (" (" .. name .. ")") or "")
end

-- The end of the turn data describes: ends_at (Unix seconds) or nil.
local function ends_at(data)
    if data.ends_at then
        return data.ends_at
    end
    if data.seconds_left and data.seconds_left >= 0 then
        return (data.at or M.now()) + data.seconds_left
    end
    return nil
end

-- The human sentence of an event.
function M.text(event, data)
    local g = game_name()
    if event == "turn_start" then
        local e = ends_at(data)
        if e then
            return string.format("%s of %s has started; it ends at %s "
                                 .. "(in %s).", turn_label(data), g, utc(e),
                                 M.span(e - (data.at or M.now())))
        end
        return string.format("%s of %s has started; it has no deadline.",
                             turn_label(data), g)
    elseif event == "turn_end" then
        return string.format("Turn %d of %s has ended.", data.turn, g)
    elseif event == "turn_warning" then
        return string.format("Turn %d of %s ends in %s.", data.turn, g,
                             M.span(data.seconds_left or 0))
    elseif event == "player_joined" then
        return string.format("%s joined %s.", data.name or
                             player_name(data.player), g)
    elseif event == "player_finished" then
        return string.format("%s finished turn %d of %s.",
                             player_name(data.player), data.turn or 0, g)
    elseif event == "player_eliminated" then
        return string.format("%s was eliminated from %s.", data.name or
                             player_name(data.player), g)
    elseif event == "game_over" then
        local names = {}
        for _, id in ipairs(data.winners or {}) do
            names[#names + 1] = player_name(id)
        end
        local s = string.format("%s is over after turn %d", g,
                                data.turn or 0)
        if #names > 0 then
            s = s .. ": won by " .. names_list(names)
        end
        if data.reason and data.reason ~= "" then
            s = s .. " (" .. tostring(data.reason) .. ")"
        end
        return s .. "."
    end
    return string.format("%s: %s.", g, event)
end

-- The JSON object of an event (format "json").
function M.object(event, data)
    local cfg = state.cfg or {}
    local o = { event = event, game = cfg.game_name,
                game_longname = cfg.game_longname, text = M.text(event, data),
                time = iso(data.at or M.now()), turn = data.turn }
    if event == "turn_start" or event == "turn_warning" then
        o.seconds_left = data.seconds_left
        local e = ends_at(data)
        o.ends_at = e and iso(e) or nil
    end
    if data.player then
        o.player = { id = data.player, name = data.name or
                     player_name(data.player) }
    end
    if event == "game_over" then
        o.reason = data.reason
        local winners = {}
        for _, id in ipairs(data.winners or {}) do
            winners[#winners + 1] = { id = id, name = player_name(id) }
        end
        o.winners = require("tp.web.json").array(winners)
    end
    return o
end

function M.payload(format, event, data)
    local json = require "tp.web.json"
    if format == "discord" then
        return json.encode({ content = M.text(event, data) })
    elseif format == "slack" then
        return json.encode({ text = M.text(event, data) })
    end
    return json.encode(M.object(event, data))
end

-- ------------------------------------------------------------ hooks

local function backoff(cfg, tries)
    return cfg.notify_retry_delay * 2 ^ (tries - 1)
end

local send

local function retry_later(h, item)
    local cfg = state.cfg
    if item.tries >= cfg.notify_retries then
        h.failed = h.failed + 1
        log.warning("notify", "%s: %s dropped after %d tries: %s", h.url,
                    item.event, item.tries, h.error)
        table.remove(h.queue, 1)
        return send(h)
    end
    local wait = backoff(cfg, item.tries)
    log.info("notify", "%s: %s failed (%s); try %d of %d in %.1f s", h.url,
             item.event, h.error, item.tries + 1, cfg.notify_retries, wait)
    h.timer = core.timer(wait * 1000, 0, function()
        h.timer = nil
        send(h)
    end)
end

-- Sends the first queued event of the hook, unless one is in flight.
send = function(h)
    if h.inflight or h.timer or h.stopped then
        return
    end
    local item = h.queue[1]
    if not item then
        return
    end
    item.tries = item.tries + 1
    local cfg = state.cfg
    local id, err = curl.request({
        url = h.url, method = "POST", body = item.body,
        headers = { "Content-Type: application/json" },
        timeout = cfg.notify_timeout,
        connect_timeout = math.min(cfg.notify_timeout, 10),
        max_size = 65536,
    }, function(res)
        h.inflight = nil
        if h.stopped then
            return
        end
        if not res.error and res.status >= 200 and res.status <= 299 then
            h.sent = h.sent + 1
            h.error = nil
            h.last_ok = M.now()
            table.remove(h.queue, 1)
            log.debug("notify", "%s: %s delivered (HTTP %d)", h.url,
                      item.event, res.status)
            return send(h)
        end
        h.error = res.error or ("HTTP " .. tostring(res.status))
        retry_later(h, item)
    end)
    if not id then
        h.error = tostring(err)
        return retry_later(h, item)
    end
    h.inflight = id
end

local function wants(h, event)
    return h.events[event] == true
end

-- Queues the event for every hook that asked for it.
local make_hooks

local function to_hooks(event, data)
    local cfg = state.cfg
    if state.built_from ~= cfg.notify then
        make_hooks(cfg)       -- changed by the console's setting()
    end
    for _, h in ipairs(state.hooks) do
        if wants(h, event) then
            -- Full: the oldest goes, unless it is the one being sent
            -- (then the next; with nothing else waiting, the new one).
            local full = #h.queue >= cfg.notify_queue
            local drop = h.inflight and 2 or 1
            local item = { event = event, tries = 0,
                           body = M.payload(h.format, event, data) }
            if full then
                h.failed = h.failed + 1
                local old = drop <= #h.queue and
                            table.remove(h.queue, drop) or item
                log.warning("notify", "%s: queue full (%d): %s dropped",
                            h.url, cfg.notify_queue, old.event)
                if old == item then
                    item = nil
                end
            end
            if item then
                h.queue[#h.queue + 1] = item
            end
            send(h)
        end
    end
end

make_hooks = function(cfg)
    state.built_from = cfg.notify
    for _, h in ipairs(state.hooks) do
        h.stopped = true
        if h.timer then h.timer:stop() end
        if h.inflight then curl.cancel(h.inflight) end
    end
    state.hooks = {}
    for _, entry in ipairs(cfg.notify) do
        local events = {}
        for _, e in ipairs(entry.events or M.DEFAULT_EVENTS) do
            events[e] = true
        end
        state.hooks[#state.hooks + 1] = {
            url = entry.url, format = entry.format or "json",
            events = events, queue = {}, sent = 0, failed = 0,
        }
    end
end

-- ------------------------------------------------------------ e-mail

-- Players who get mail: { player, account } with an address and
-- notify_email on, still in the game (or out of it too, with all); only
-- those in `only` when given (a set of ids).
local function mail_players(only, all)
    local accounts = require "tp.accounts"
    local mail = require "tp.mail"
    local out = {}
    for _, p in ipairs(accounts.players()) do
        if (all or p.alive ~= false) and (not only or only[p.id]) then
            local a = accounts.find(p.name)
            if a and a.notify_email and mail.valid_address(a.email) then
                out[#out + 1] = { player = p, account = a }
            end
        end
    end
    return out
end

local function mail_all(list, subject, body_of, what)
    local mail = require "tp.mail"
    for _, r in ipairs(list) do
        mail.send(state.cfg, { to = r.account.email, subject = subject,
                               body = body_of(r.player), what = what })
    end
end

local function signature()
    local cfg = state.cfg
    local lines = { "", "-- ", game_name() .. " (" .. cfg.game_name ..
                    "), a Thousand Parsec game" }
    for _, l in ipairs(cfg.listeners) do
        lines[#lines + 1] = require("tp.listeners").url(l)
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "You get this mail because you asked for turn "
                        .. "mails; turn them off on the game's web page."
    return table.concat(lines, "\n")
end

local function mail_turn_start(data)
    local list = mail_players()
    if #list == 0 then
        return
    end
    local subject = string.format("[%s] %s has started",
                                  state.cfg.game_name, turn_label(data))
    local text = M.text("turn_start", data)
    mail_all(list, subject, function(p)
        return "Hello " .. p.name .. ",\n\n" .. text .. "\n" .. signature()
    end, "turn " .. tostring(data.turn) .. " started")
end

local function mail_game_over(data)
    local list = mail_players(nil, true)
    if #list == 0 then
        return
    end
    local subject = string.format("[%s] The game is over",
                                  state.cfg.game_name)
    local text = M.text("game_over", data)
    mail_all(list, subject, function(p)
        return "Hello " .. p.name .. ",\n\n" .. text .. "\n" .. signature()
    end, "game over")
end

-- Mails the reminder of turn n to the players who have not finished it.
function M.remind(n)
    local game = require "tp.game"
    local waiting = {}
    for _, id in ipairs(game.waiting()) do
        waiting[id] = true
    end
    local list = mail_players(waiting)
    local left = game.time_remaining()
    local rec = game.turn_record()
    local data = { turn = n, seconds_left = left >= 0 and left or nil,
                   ends_at = rec.ends_at }
    local subject
    if data.ends_at then
        subject = string.format("[%s] Turn %d ends in %s",
                                state.cfg.game_name, n,
                                M.span(data.ends_at - M.now()))
    else
        subject = string.format("[%s] Turn %d is waiting for you",
                                state.cfg.game_name, n)
    end
    mail_all(list, subject, function(p)
        local e = data.ends_at
        return "Hello " .. p.name .. ",\n\n" .. string.format("%s of %s "
            .. "is waiting for your orders.", turn_label(data), game_name())
            .. (e and string.format(" It ends at %s (in %s).", utc(e),
                                    M.span(e - M.now())) or "")
            .. "\n" .. signature()
    end, "reminder for turn " .. n)
    return #list
end

local function mark_reminded(n)
    state.reminded = n
    local ok, err = pcall(state.db.put, state.db, "meta/notify",
                          { reminded = n })
    if not ok then
        log.warning("notify", "cannot store that turn %d's reminder went: "
                    .. "%s", n, tostring(err))
    end
end

-- Arms the reminder of the running turn (again: its end may have moved).
local function arm_reminder()
    if state.reminder then
        state.reminder:stop()
        state.reminder = nil
    end
    local cfg = state.cfg
    local lead = cfg.notify_reminder
    local game = require "tp.game"
    local rec = game.turn_record()
    if lead <= 0 or not rec or not rec.ends_at or game.paused() or
       state.reminded == rec.turn then
        return
    end
    -- A turn no longer than the lead has the turn's start mail only.
    -- (started is whole seconds, ends_at is not.)
    if rec.started and rec.ends_at - rec.started <= lead + 1 then
        return
    end
    local left = rec.ends_at - M.now()
    if left <= lead + 0.5 then
        mark_reminded(rec.turn)
        local n = M.remind(rec.turn)
        if n > 0 then
            log.info("notify", "turn %d: reminder mailed to %d players",
                     rec.turn, n)
        end
        return
    end
    state.reminder = core.timer((left - lead) * 1000, 0, function()
        state.reminder = nil
        arm_reminder()
    end)
end
M.arm_reminder = arm_reminder

-- ------------------------------------------------------------ events

local function on_event(event, data)
    data = data or {}
    -- One time for every hook and mail of the event.
    local d = {}
    for k, v in pairs(data) do
        d[k] = v
    end
    d.at = d.at or M.now()
    if d.turn == nil then
        d.turn = require("tp.game").turn_number()
    end
    to_hooks(event, d)
    if event == "turn_start" then
        mail_turn_start(d)
    elseif event == "game_over" then
        mail_game_over(d)
    end
    if event == "turn_start" or event == "turn_warning" or
       event == "player_finished" or event == "game_over" then
        arm_reminder()
    end
end
M.on_event = on_event

function M.start(cfg, db)
    core, curl, log = require "tp.core", require "tp.curl", require "tp.log"
    state.cfg, state.db = cfg, db
    local rec = db:get("meta/notify")
    state.reminded = type(rec) == "table" and rec.reminded or nil
    make_hooks(cfg)
    if state.unsubscribe then
        state.unsubscribe()
    end
    state.unsubscribe = require("tp.events").subscribe(on_event)
    -- An end moved by the admin (turn.reset, a pause) emits nothing.
    state.check_timer = core.timer(M.CHECK_S * 1000, M.CHECK_S * 1000,
                                   arm_reminder)
    arm_reminder()
    require("tp.hup").add("notify", function()
        make_hooks(state.cfg)
        arm_reminder()
    end)
    if #state.hooks > 0 and not curl.async_dns then
        log.warning("notify", "this libcurl resolves names while it waits: "
                    .. "use addresses in the notify URLs")
    end
end

function M.status()
    local hooks = {}
    for _, h in ipairs(state.hooks) do
        local events = {}
        for _, e in ipairs(M.EVENTS) do
            if h.events[e] then
                events[#events + 1] = e
            end
        end
        hooks[#hooks + 1] = { url = h.url, format = h.format,
                              events = table.concat(events, " "),
                              queued = #h.queue, sent = h.sent,
                              failed = h.failed, error = h.error,
                              inflight = h.inflight ~= nil }
    end
    local cfg = state.cfg or {}
    return { hooks = hooks, mail = require("tp.mail").status(),
             reminder = cfg.notify_reminder, reminded_turn = state.reminded }
end

function M.stop()
    if state.unsubscribe then
        state.unsubscribe()
        state.unsubscribe = nil
    end
    for _, t in ipairs({ "reminder", "check_timer" }) do
        if state[t] then
            state[t]:stop()
            state[t] = nil
        end
    end
    for _, h in ipairs(state.hooks) do
        h.stopped = true
        if h.timer then h.timer:stop() end
        if h.inflight then curl.cancel(h.inflight) end
    end
    require("tp.mail").stop()
end

return M
