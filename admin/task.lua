-- admin/task.lua: admin commands as coroutines, so that a command can
-- wait (for a password hash, a backup, a timer) while the server goes on
-- serving everyone else.
--
-- A runner (the console, the TP admin protocol) makes a task around the
-- code it runs, resumes its coroutine however it likes (the console under
-- an interrupting hook) and is told when it ends. Inside, await(start)
-- calls start(done) and suspends the task until done(...) is called; the
-- task then continues from the loop (never from inside done's caller)
-- with done's arguments as await's results.
--
--   local t = task.new(fn, { resume = function(t, ...) ... end,
--                            output = function(text) ... end })
--   task.await(function(done) core.timer(100, 0, done) end)
--   task.current() -> the running task, or nil
--   t:cancel()     -> a waiting task is dropped; done() later does nothing

local core = require "tp.core"

local M = {}

-- What a task's coroutine yields while it waits.
M.WAIT = setmetatable({}, { __tostring = function() return "task.WAIT" end })

local by_co = setmetatable({}, { __mode = "k" })   -- coroutine -> task

local Task = {}
Task.__index = Task

-- A task running fn. opts.resume(task, ...) continues its coroutine with
-- the values of a finished wait (the runner's way of resuming);
-- opts.output(text) takes what print() writes; opts.session is the
-- console session, if any.
function M.new(fn, opts)
    local t = setmetatable({ co = coroutine.create(fn), waiting = false,
                             cancelled = false }, Task)
    for k, v in pairs(opts or {}) do
        t[k] = v
    end
    by_co[t.co] = t
    return t
end

function M.current()
    local co = coroutine.running()
    return co and by_co[co]
end

-- Stops waiting for good: the task's coroutine is never resumed again.
function Task:cancel()
    self.cancelled = true
    self.waiting = false
    by_co[self.co] = nil
end

-- Suspends the running task until start's callback is called; returns
-- the callback's arguments. Raises when not inside a task, or what start
-- raised. start runs from the loop on the main Lua thread, not inside the
-- task's coroutine: the C modules that call back later (tp.crypto's
-- hashing) keep the state they were called with, and a coroutine may be
-- suspended or gone by then.
local FAILED = {}

local function after_wait(first, ...)
    if first == FAILED then
        error((...), 0)
    end
    return first, ...
end

function M.await(start)
    local t = M.current()
    if not t then
        error("this command waits for the server: run it from the console "
              .. "or an admin command", 2)
    end
    local finished = false
    local function wake(...)
        if finished then
            return
        end
        finished = true
        local results = { n = select("#", ...), ... }
        core.timer(0, 0, function()
            if not t.cancelled then
                t.waiting = false
                t.resume(t, unpack(results, 1, results.n))
            end
        end)
    end
    t.waiting = true
    core.timer(0, 0, function()
        if t.cancelled then
            return
        end
        local ok, err = pcall(start, wake)
        if not ok then
            wake(FAILED, err)
        end
    end)
    return after_wait(coroutine.yield(M.WAIT))
end

-- Waits seconds without holding the server up.
function M.sleep(seconds)
    return M.await(function(done)
        core.timer(math.max(0, seconds * 1000), 0, done)
    end)
end

return M
