-- tp.dispatch: the one entry point the core calls for every decoded
-- request, and the connection states of PROTOCOL.md section 4.
--
-- States: PRE (nothing yet) -> CONNECTED (Connect answered) -> READY
-- (Login answered). Each handler names the states it serves; a request in
-- any other state gets the Fail the protocol gives, never an answer.
-- Handlers return reply frames (one table, or an array: Sequence + items),
-- raise with tp.fail, or take the reply off the loop with M.defer.

local core = require "tp.core"
local fail = require "tp.fail"
local log = require "tp.log"
local proto = require "tp.proto"
local sys = require "tp.sys"

local M = {}

-- name -> { states = { PRE=true, ... }, fn = function(conn, req) }
M.handlers = {}

-- Adds every handler of a module: { FrameName = { states, fn }, ... }.
function M.add(module)
    for name, h in pairs(module) do
        assert(proto.id[name], "no such frame " .. name)
        M.handlers[name] = h
    end
end

local function refuse(conn, req)
    local state = conn.state
    if state == "PRE" then
        fail.raise("Protocol", "first frame must be Connect")
    elseif state == "CONNECTED" then
        fail.raise("Frame", "wrong frame for this state; expected Login, "
                   .. "CreateAccount or GetFeatures")
    elseif req._name == "Connect" or req._name == "Login" or
           req._name == "CreateAccount" then
        fail.raise("Frame", req._name .. " is not allowed after login")
    end
    fail.raise("UnavailablePermanently", req._name ..
               " is not served by this server yet")
end

local model = require "tp.model"
local types = require "tp.types"

-- Runs the handler; what it changed is committed before the reply goes
-- out. If it raises, the error goes on to the core's one error handler
-- (core/lua_util.c: a fail.raise record is a Fail, anything else a bug
-- with its traceback, taken where it was raised), and the core then calls
-- request_failed (below), once the request's time limit is over, which
-- throws the changes away.
function M.dispatch(conn, req)
    local h = M.handlers[req._name]
    if not h or not h.states[conn.state] then
        return refuse(conn, req)
    end
    local reply = h.fn(conn, req)
    if model.is_dirty() then
        -- A refused write leaves the changes marked; request_failed then
        -- reads them back from the database: the client hears Fail and
        -- memory equals the disk.
        local stored, err = pcall(model.commit)
        if not stored then
            log.error("db", "conn=%s seq=%d %s: the change could not be "
                      .. "stored: %s", tostring(conn.id), req._seq,
                      req._name, tostring(err))
            fail.raise("UnavailableTemporarily", "the server could not "
                       .. "store the change; nothing was changed")
        end
    end
    return reply
end

-- The core's one error path of a request (core/bridge.c), called after
-- the request's time limit was popped, so that it runs unlimited: throws
-- away what the request changed and returns what to answer instead of
-- err (nil: err as it is). timed_out: the request was stopped by
-- request_time_limit (why says so), whatever its code did after.
function M.request_failed(conn, err, timed_out, why)
    -- A ruleset hook that was running (tp.types.guard) gets the blame,
    -- and its partial changes are unmarked: reload everything.
    local hook = types.take_running_hook()
    if hook or timed_out then
        model.rollback()
    elseif model.is_dirty() then
        model.undo()
    end
    if not timed_out then
        return nil
    end
    if hook then
        log.error("ruleset", "order type %d (%s): the ruleset failed %s "
                  .. "an order: %s", hook.ot.id, hook.ot.name, hook.what, why)
        return types.hook_fail(hook)
    end
    return { tp_fail = true, code = proto.FAIL.UnavailableTemporarily,
             message = why }
end

-- Answers req later: holds the connection's next frames, runs
-- start(reply) and sends what reply(frames) is given, then goes on with
-- the connection. A tp.fail or an error inside the continuation still
-- answers the request (the continuation must be wrapped with M.guard).
function M.defer(conn, req, start)
    local seq = req._seq
    local answered = false
    local started = core.hrtime()
    conn:pause()
    local function reply(frames)
        if answered then
            return
        end
        answered = true
        sys.observe_request((core.hrtime() - started) / 1000)
        if not conn.closed then
            conn:send(frames, seq)
            conn:resume()
        end
    end
    start(reply)
end

-- Wraps a continuation fn(...) of a deferred request so a fail.raise
-- becomes a Fail reply and any other error an internal-error Fail.
local error_count = 0
function M.guard(conn, req, reply, fn)
    return function(...)
        if conn.closed then
            return      -- the client went away while we waited
        end
        local ok, err = xpcall(fn, function(e)
            if type(e) == "table" and e.tp_fail then
                return e
            end
            return { trace = debug.traceback(tostring(e), 2) }
        end, ...)
        if not ok then
            if err.tp_fail then
                reply(proto.fail(err.code, err.message, err.refs))
            else
                error_count = error_count + 1
                log.error("lua", "internal error (deferred) conn=%s seq=%d "
                          .. "frame=%s: %s", tostring(conn.id), req._seq,
                          req._name, err.trace)
                reply(proto.fail("UnavailableTemporarily",
                                 "internal error (deferred #" ..
                                 error_count .. ")"))
            end
        end
    end
end

M.hooks = {
    dispatch = M.dispatch,
    request_failed = M.request_failed,
    on_open = function(conn)
        conn.state = "PRE"
    end,
}

return M
