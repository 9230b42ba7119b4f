-- tp.web.stream: the event stream, GET /api/events (Server-Sent Events).
--
-- Every subscriber gets the game's public events (tp.events: turn_start,
-- turn_end, turn_warning, player_finished); a logged-in one also gets a
-- message event when a message arrives on one of their boards. Events
-- are numbered; the last KEEP are kept so that a client reconnecting with
-- Last-Event-ID gets what it missed. A comment line every PING seconds
-- keeps idle streams open through proxies. A subscriber whose output is
-- full (it does not read) is dropped.

local accounts = require "tp.accounts"
local cjson = require "cjson"
local core = require "tp.core"
local events = require "tp.events"
local game = require "tp.game"
local log = require "tp.log"
local stats = require "tp.stats"

local M = {}

M.KEEP = 256
M.PING = 25

local subscribers = {}     -- conn -> { player = id or nil }
local count = 0
local kept = {}            -- ring of { id, player or nil, text }
local next_id = 1

local subs_gauge = stats.gauge("tpserver_http_event_streams",
                               "Open event streams (GET /api/events)")

local function format(id, name, data)
    return string.format("id: %d\nevent: %s\ndata: %s\n\n", id, name,
                         cjson.encode(data))
end

local function drop(conn, why)
    if subscribers[conn] then
        subscribers[conn] = nil
        count = count - 1
        subs_gauge:set(count)
    end
    if why and not conn.closed then
        log.info("http", "conn=%s event stream dropped: %s",
                 tostring(conn.id), why)
        conn:close()
    end
end

local function deliver(conn, sub, ev)
    if ev.player and ev.player ~= sub.player then
        return
    end
    if not conn:http_write(ev.text) then
        drop(conn, "its output is full")
    end
end

-- Numbers, keeps and sends one event; player: only for that player.
local function publish(name, data, player)
    local ev = { id = next_id, player = player,
                 text = format(next_id, name, data) }
    next_id = next_id + 1
    kept[#kept + 1] = ev
    if #kept > M.KEEP then
        table.remove(kept, 1)
    end
    for conn, sub in pairs(subscribers) do
        if conn.closed then
            drop(conn)
        else
            deliver(conn, sub, ev)
        end
    end
end
M.publish = publish

local function on_event(name, data)
    if name == "message" then
        if data.owner and data.owner ~= 0 then
            publish("message", { board = data.board, slot = data.slot,
                                 subject = data.subject }, data.owner)
        else
            publish("message", { board = data.board, slot = data.slot,
                                 subject = data.subject })
        end
    elseif name == "player_finished" then
        local p = accounts.player(data.player)
        publish(name, { player = data.player, name = p and p.name or "" })
    else
        publish(name, data)
    end
end

-- The answer to GET /api/events: the stream's head and its first events.
function M.open(req, session)
    local conn = req.conn
    local sub = { player = session and session.player or nil }
    local first = {}
    first[#first + 1] = string.format("retry: 3000\nevent: hello\ndata: "
        .. "%s\n\n", cjson.encode({ turn = game.turn_number(),
                                    seconds_left = game.time_remaining(),
                                    last_id = next_id - 1 }))
    local last = tonumber(req.headers["last-event-id"] or
                          req.query.last_event_id or "")
    if last then
        for _, ev in ipairs(kept) do
            if ev.id > last and (not ev.player or ev.player == sub.player)
            then
                first[#first + 1] = ev.text
            end
        end
    end
    subscribers[conn] = sub
    count = count + 1
    subs_gauge:set(count)
    return { status = 200, stream = true, body = table.concat(first),
             headers = { ["Content-Type"] = "text/event-stream",
                         ["Cache-Control"] = "no-store",
                         ["X-Content-Type-Options"] = "nosniff",
                         ["X-Accel-Buffering"] = "no" } }
end

function M.closed(conn)
    drop(conn)
end

function M.count()
    return count
end

function M.init()
    events.subscribe(on_event)
    core.timer(M.PING * 1000, M.PING * 1000, function()
        for conn in pairs(subscribers) do
            if conn.closed then
                drop(conn)
            elseif not conn:http_write(": ping\n\n") then
                drop(conn, "its output is full")
            end
        end
    end)
end

return M
