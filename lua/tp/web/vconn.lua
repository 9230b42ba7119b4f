-- tp.web.vconn: a TP session without a socket, through which the web
-- side runs TP requests.
--
-- A web request becomes the TP request of the same operation (GetObjectsByID,
-- OrderInsert, ...), given to tp.dispatch exactly as a TP frame is, on a
-- virtual connection that has the fields and methods the handlers use
-- (state, player, version, send, pause, resume, produce, ...). Its
-- replies are collected instead of encoded: the web side turns them into
-- JSON (tp.web.json). So every check, view and Fail of the game is the TP
-- handlers' own, in one place: the web adds no second implementation.
--
-- A web session is one virtual connection, logged in through the TP Login
-- handler (so the login guard, bans and account creation rules apply) and
-- kept in tp.game.sessions like a TP session while it lasts.

local dispatch = require "tp.dispatch"
local proto = require "tp.proto"

local M = {}

local VConn = {}
VConn.__index = VConn

local next_id = 0

-- A new virtual connection for a client at peer ("ip:port"), in state
-- CONNECTED (as after Connect). opts: tls, kind, max_frame.
function M.new(peer, opts)
    opts = opts or {}
    next_id = next_id + 1
    return setmetatable({
        id = "web" .. next_id, peer = peer or "?", kind = opts.kind or "web",
        tls = opts.tls or false, version = 4, state = "CONNECTED",
        client = "tpserver-web", padding = false, admin = false,
        tunnelled = false, closed = false, virtual = true,
        max_frame = opts.max_frame or 1048576,
        output_high = math.huge, pending_output = 0, frames_out = 0,
        time_limit = 0,            -- the web request's own limit applies
        replies = nil,             -- frames of the request being run
        paused = false,
    }, VConn)
end

function VConn:send(frames, seq)
    if self.closed then
        return false, "closed"
    end
    local out = self.replies
    if not out or not seq or seq == 0 then
        return true                -- a push (TimeRemaining): not for us
    end
    if frames._type then
        out[#out + 1] = frames
    else
        for _, f in ipairs(frames) do
            out[#out + 1] = f
        end
    end
    self.frames_out = self.frames_out + (frames._type and 1 or #frames)
    return true
end

function VConn:pause()
    self.paused = true
end

-- The request answered later has its answer (or its session is gone).
local function answered(vc)
    local done = vc.on_resume
    if done then
        vc.on_resume = nil
        done()
    end
end

function VConn:resume()
    self.paused = false
    answered(self)
end

function VConn:produce(fn)
    self.producer = fn
end

function VConn:close()
    self.closed = true
    answered(self)
end

function VConn:set_padding() end
function VConn:set_logged_in() end

function VConn:__tostring()
    return "web session " .. self.id .. " (" .. self.peer .. ")"
end

local seq = 0

-- Makes the request table of frame `name` with fields.
local function request(name, fields)
    local id = proto.id[name]
    assert(id, "no such frame " .. tostring(name))
    seq = seq % 2000000000 + 1
    local req = {}
    for k, v in pairs(fields or {}) do
        req[k] = v
    end
    req._name, req._type, req._seq = name, id, seq
    return req
end

-- Collects what the handler returned (nil, a frame, or frames).
local function collect(out, reply)
    if reply == nil then
        return
    end
    if reply._type then
        out[#out + 1] = reply
    else
        for _, f in ipairs(reply) do
            out[#out + 1] = f
        end
    end
end

-- Runs TP request `name` on vc and returns its reply frames (an array:
-- a Sequence and items, or one frame). A request the TP handler answers
-- later (Login: hashing on the thread pool) is refused here: use
-- M.call_later. A fail.raise of the handler is raised on, as a record, with
-- what the request had changed thrown away (as the core does for TP).
function M.call(vc, name, fields)
    local req = request(name, fields)
    local out = {}
    vc.replies = out
    local ok, err = pcall(function()
        collect(out, dispatch.dispatch(vc, req))
        -- A reply made in parts: every part, now (bounded by the request's
        -- time limit, like all the web request's work).
        local guard = 0
        while vc.producer do
            guard = guard + 1
            assert(guard < 10000000, "a reply in parts that never ends")
            vc.producer()
        end
    end)
    vc.replies = nil
    if not ok then
        vc.producer = nil
        local answer = dispatch.request_failed(vc, err, false, nil)
        error(answer or err, 0)
    end
    assert(not vc.paused, name .. " is answered later: use call_later")
    return out
end

-- Runs TP request `name` on vc and calls done(frames) with its replies,
-- or done(nil, err) with the fail.raise record or error it raised, now or
-- (for a request answered later) when the handler has answered.
function M.call_later(vc, name, fields, done)
    local req = request(name, fields)
    local out = {}
    vc.replies = out
    vc.on_resume = function()
        vc.replies = nil
        done(out)
    end
    local ok, err = pcall(function()
        collect(out, dispatch.dispatch(vc, req))
    end)
    if not ok then
        vc.on_resume = nil
        vc.replies = nil
        local answer = dispatch.request_failed(vc, err, false, nil)
        return done(nil, answer or err)
    end
    if not vc.paused then
        answered(vc)
    end
end

return M
