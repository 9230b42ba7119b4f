-- tp.logbus: the server's log lines for whoever listens in the server
-- (the TP admin protocol's LogMessage pushes, the control UI's live log).
--
-- tp.console's log hook takes one function; this module owns it and
-- hands each batch of lines to every subscriber, in order, each under
-- protection. With keep(n) it also keeps the last n lines (numbered), for
-- a dashboard that opens later. The hook is installed only while someone
-- subscribes or lines are kept: the log costs nothing more otherwise.
--
--   local stop = logbus.subscribe(function(lines, dropped) ... end)
--   -- lines: array of { id, time, level, module, text }
--   logbus.keep(500); logbus.recent() -> the kept lines, oldest first

local cons = require "tp.console"

local M = {}

local subscribers = {}
local keep_n = 0
local ring = {}            -- the last keep_n lines
local next_id = 1
local installed = false

local function deliver(lines, dropped)
    for _, l in ipairs(lines) do
        l.id = next_id
        next_id = next_id + 1
    end
    if keep_n > 0 then
        for _, l in ipairs(lines) do
            ring[#ring + 1] = l
        end
        local extra = #ring - keep_n
        if extra > 0 then
            local kept = {}
            for i = extra + 1, #ring do
                kept[#kept + 1] = ring[i]
            end
            ring = kept
        end
    end
    for _, fn in ipairs({ unpack(subscribers) }) do
        local ok, err = pcall(fn, lines, dropped)
        if not ok then
            -- Written to the sinks, not back to the hook (tp.console
            -- does not queue what is logged while delivering).
            require("tp.log").error("log", "a log listener failed: %s",
                                    tostring(err))
        end
    end
end

local function update()
    local want = #subscribers > 0 or keep_n > 0
    if want and not installed then
        cons.log_hook(deliver)
        installed = true
    elseif not want and installed then
        cons.log_hook(nil)
        installed = false
    end
end

-- Calls fn(lines, dropped) for the lines logged from now on; returns a
-- function that stops it.
function M.subscribe(fn)
    subscribers[#subscribers + 1] = fn
    update()
    return function()
        for i, f in ipairs(subscribers) do
            if f == fn then
                table.remove(subscribers, i)
                break
            end
        end
        update()
    end
end

-- Keeps the last n lines from now on (0: none).
function M.keep(n)
    keep_n = math.max(0, math.floor(n or 0))
    if keep_n == 0 then
        ring = {}
    end
    update()
end

-- The kept lines, oldest first (a copy of the list; the lines are shared).
function M.recent()
    local out = {}
    for i, l in ipairs(ring) do
        out[i] = l
    end
    return out
end

-- Stops everything (the server stops).
function M.stop()
    subscribers = {}
    keep_n = 0
    ring = {}
    update()
end

return M
