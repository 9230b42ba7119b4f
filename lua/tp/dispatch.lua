-- tp.dispatch: the one entry point the core calls for every decoded
-- request, and the connection states of PROTOCOL.md section 4.
--
-- States: PRE (nothing yet) -> CONNECTED (Connect answered) -> READY
-- (Login answered). Each handler names the states it serves; a request in
-- any other state gets the Fail the protocol gives, never an answer.
-- Handlers return reply frames (one table, or an array: Sequence + items),
-- raise with tp.fail, take the reply off the loop with M.defer, or answer
-- item by item with M.stream (Sequence + one frame per item, made in parts
-- so that a long reply does not hold the other connections).
--
-- Bounds: one request names at most M.max_ids(conn) ids or slots (as many
-- as one ID list frame carries); more get Fail RequestTooBig.

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

-- The most ids (or slots) one request may name: as many as one ID list
-- frame carries (key, remaining, the count and, on TP04, from, then 12
-- bytes an entry): 87,378 on TP04 and 87,379 on TP03 with 1 MiB frames
-- (PROTOCOL.md 3.3). A client never needs to ask for more ids than the
-- server lists at once.
function M.max_ids(conn)
    local fixed = 16 + 12 + (conn.version == 3 and 0 or 8)
    return math.floor((conn.max_frame - fixed) / 12)
end

-- Refuses a request naming more ids or slots than M.max_ids: Fail
-- RequestTooBig (Frame on TP03), before any work is done.
function M.check_size(conn, req)
    local list = req.ids or req.slots
    if type(list) == "table" and #list > 0 then
        local max = M.max_ids(conn)
        if #list > max then
            fail.raise("RequestTooBig", string.format("%s names %d ids; "
                       .. "one request may name at most %d (as many as "
                       .. "one ID list frame holds): ask in parts",
                       req._name, #list, max))
        end
    end
end

-- Commits what a request changed; a refused write leaves the changes
-- marked, and request_failed then reads them back from the database: the
-- client hears Fail and memory equals the disk.
local function commit(conn, name, seq)
    local stored, err = pcall(model.commit)
    if not stored then
        log.error("db", "conn=%s seq=%d %s: the change could not be "
                  .. "stored: %s", tostring(conn.id), seq, name,
                  tostring(err))
        fail.raise("UnavailableTemporarily", "the server could not "
                   .. "store the change; nothing was changed")
    end
end

-- Runs the handler; what it changed is committed before the reply goes
-- out. If it raises, the error goes on to the core's one error handler
-- (core/lua_util.c: a fail.raise record is a Fail, anything else a bug
-- with its traceback, taken where it was raised), and the core then calls
-- request_failed (below), once the request's time limit is over, which
-- throws the changes away.
-- Once the game is over (tp.turn's meta/over) the universe is read-only:
-- these requests, which would change it, get a Fail saying so.
M.CHANGES = {
    OrderInsert = true, RemoveOrder = true, PostMessage = true,
    RemoveMessage = true, AddCategory = true, RemoveCategory = true,
    AddDesign = true, ModifyDesign = true, RemoveDesign = true,
    FinishedTurn = true, ModifyObject = true, CreateAccount = true,
}

local function refuse_if_over(req)
    local over = M.CHANGES[req._name] and require("tp.game").over()
    if over then
        fail.raise("PermissionDenied", string.format("the game is over "
                   .. "(after turn %d: %s): the universe is read-only, %s "
                   .. "is refused", over.turn, tostring(over.reason),
                   req._name))
    end
end

function M.dispatch(conn, req)
    local h = M.handlers[req._name]
    if not h or not h.states[conn.state] then
        return refuse(conn, req)
    end
    refuse_if_over(req)
    M.check_size(conn, req)
    local reply = h.fn(conn, req)
    if model.is_dirty() then
        commit(conn, req._name, req._seq)
    end
    return reply
end

-- Throws away what failed work changed (a request, or a part of a reply
-- made in parts) and returns what to answer instead of err (nil: err as
-- it is).
local function throw_away(err, timed_out, why)
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

-- The core's one error path of a request (core/bridge.c), called after
-- the request's time limit was popped, so that it runs unlimited: throws
-- away what the request changed and returns what to answer instead of
-- err (nil: err as it is). timed_out: the request was stopped by
-- request_time_limit (why says so), whatever its code did after. A reply
-- the request had begun to make in parts (M.stream) is not continued: the
-- core drops what it had sent and answers one Fail.
function M.request_failed(conn, err, timed_out, why)
    conn:produce(nil)
    return throw_away(err, timed_out, why)
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

-- The message handler of work answered later: a fail.raise record as it
-- is, anything else { trace = traceback }.
local function catch(e)
    if type(e) == "table" and e.tp_fail then
        return e
    end
    return { trace = debug.traceback(tostring(e), 2) }
end

-- Logs a bug in work answered later (trace: its traceback) and returns
-- the Fail frame its client gets: the number, never the text.
local error_count = 0
local function internal_error(conn, seq, name, trace)
    error_count = error_count + 1
    log.error("lua", "internal error (deferred #%d) conn=%s seq=%d "
              .. "frame=%s: %s", error_count, tostring(conn.id), seq, name,
              trace)
    return proto.fail("UnavailableTemporarily", "internal error (deferred #"
                      .. error_count .. ")")
end

-- The Fail frame for a caught error record (see catch).
local function fail_frame(conn, seq, name, err)
    if err.tp_fail then
        return proto.fail(err.code, err.message, err.refs)
    end
    return internal_error(conn, seq, name, err.trace)
end

-- Wraps a continuation fn(...) of a deferred request so a fail.raise
-- becomes a Fail reply and any other error an internal-error Fail.
function M.guard(conn, req, reply, fn)
    return function(...)
        if conn.closed then
            return      -- the client went away while we waited
        end
        local ok, err = xpcall(fn, catch, ...)
        if not ok then
            reply(fail_frame(conn, req._seq, req._name, err))
        end
    end
end

-- ---------------------------------------------------- replies in parts

-- A reply of Sequence(n) and n item frames is made in parts of at most
-- PART_ITEMS frames and about PART_MS of work, a part ending early once
-- the connection's output is past its high mark (conn.output_high; the
-- clock and the output are looked at every CHECK_EVERY items). The
-- first part is made within the request; between parts the connection
-- yields to the loop (the core calls the producer once per loop
-- iteration, other connections served in between), and the next part
-- waits while the output stays past the high mark (a client that does not
-- read is held there, and dropped after client_write_timeout as usual).
-- The connection's later requests wait for the whole reply.
local PART_ITEMS = 256
local PART_MS = 1

-- Sends the frames of one part, from item st.next on. In the first part
-- (within the request) any error fails the whole request, as for any
-- handler: the core drops what was sent. In later parts a bug in an item
-- fails that item (logged), and an item frame that does not encode (too
-- large for one frame) gets its own Fail; what was changed is committed
-- as a request's changes are.
local CHECK_EVERY = 8   -- items between two looks at the clock and output

local function make_part(st)
    local conn = st.conn
    local high = conn.output_high
    local stop = core.hrtime() + PART_MS
    st.part_first, st.part_base = st.next, conn.frames_out
    local made = 0
    local item, seq, n = st.item, st.seq, st.n
    -- conn:send answers false once the connection is closed: no need to
    -- ask before each item.
    local open = not conn.closed
    while open and st.next <= n do
        local i = st.next
        if st.first then
            open = conn:send(item(i), seq)
        else
            local frame = st.failed
            if not frame then
                local ok, f = xpcall(item, catch, i)
                frame = ok and f or fail_frame(conn, seq, st.name, f)
            end
            local sent, res = pcall(conn.send, conn, frame, seq)
            if not sent then
                if tostring(res):find("too big", 1, true) then
                    frame = proto.fail("RequestTooBig", "reply too large "
                                       .. "for one frame")
                else
                    frame = internal_error(conn, seq, st.name,
                                           tostring(res))
                end
                res = conn:send(frame, seq)
            end
            open = res
        end
        st.next = i + 1
        made = made + 1
        if made >= PART_ITEMS or (made % CHECK_EVERY == 0 and
           (conn.pending_output > high or core.hrtime() >= stop)) then
            break
        end
    end
    if not st.first and model.is_dirty() then
        commit(conn, st.name, st.seq)
    end
end

-- The reply is complete (or its connection gone): the core goes on with
-- the connection's next requests.
local function finish(st)
    st.conn:produce(nil)
    sys.observe_request((core.hrtime() - st.started) / 1000)
end

-- One later part, under the request's time limit (a fresh one for each
-- part). A part that fails (stopped by the limit, a bug outside the
-- items, a refused commit) is thrown away like a failed request's work;
-- the item it was making and every later one get the Fail, without more
-- work (the frames it had sent stay: each went out whole, and the count
-- of frames sent says how far it got).
local function more(st)
    local conn = st.conn
    if conn.closed then
        return finish(st)
    end
    local part_ok, err
    local ok, why = core.time_limit(conn.time_limit, "request", function()
        part_ok, err = xpcall(make_part, catch, st)
    end)
    if not ok or not part_ok then
        local answer = throw_away(err, not ok, why)
        st.next = st.part_first + (conn.frames_out - st.part_base)
        if answer then
            st.failed = proto.fail(answer.code, answer.message, answer.refs)
        else
            st.failed = fail_frame(conn, st.seq, st.name, err)
        end
        log.warning("net", "conn=%s seq=%d %s: a part of the reply failed; "
                    .. "items %d to %d get Fail: %s", tostring(conn.id),
                    st.seq, st.name, st.next, st.n, st.failed.result)
    end
    if st.next > st.n or conn.closed then
        finish(st)
    end
end

-- Answers req with Sequence(n) and item(i) for i = 1..n, in order:
-- item(i) returns the frame for item i (a Fail frame for a missing one);
-- an error in it is a bug. Items are made when their part is, so one
-- that is gone by then gets the Fail a missing one gets. Returns nothing
-- for the handler to send: the frames go out through conn:send.
function M.stream(conn, req, n, item)
    local st = { conn = conn, seq = req._seq, name = req._name, n = n,
                 item = item, next = 1, first = true,
                 started = core.hrtime() }
    conn:send(proto.sequence(n), st.seq)
    make_part(st)
    if st.next <= st.n and not conn.closed then
        st.first = false
        conn:produce(function()
            more(st)
        end)
    end
    return nil
end

M.hooks = {
    dispatch = M.dispatch,
    request_failed = M.request_failed,
    on_open = function(conn)
        conn.state = "PRE"
    end,
}

return M
