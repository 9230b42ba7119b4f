-- tp.log: the server's logger for Lua code (the same sink as the C core).
--
--   log.info("net", "player %s logged in", name)
--   log.enabled("debug", "turn")
-- Levels: error, warning, info, debug, trace. The message is formatted
-- only when the level is enabled for that module.

local core = require "tp.core"

local M = {}

local function make(level)
    return function(module, fmt, ...)
        if core.log_enabled(level, module) then
            local ok, msg = pcall(string.format, fmt, ...)
            core.log(level, module, ok and msg or tostring(fmt))
        end
    end
end

M.error = make("error")
M.warning = make("warning")
M.warn = M.warning
M.info = make("info")
M.debug = make("debug")
M.trace = make("trace")

function M.enabled(level, module)
    return core.log_enabled(level, module)
end

return M
