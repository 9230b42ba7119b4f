-- tp.log: the server's logger for Lua code (the same logger, levels and
-- sinks as the C core; rulesets get it as ctx.log).
--
--   log.info("session", "conn=%d player=%d logged in", id, pid)
--   log.info("turn", "turn ended", { turn = 7, reason = "timer" })
--   log.enabled("debug", "turn")
-- Levels: error, warning, info, debug, trace. The message is formatted
-- only when the level is enabled for that module. A table as the only
-- argument after the message becomes key=value fields, sorted by key,
-- with values quoted when they hold spaces, quotes or '='.

local core = require "tp.core"

local M = {}

local function value(v)
    if type(v) == "number" then
        if v == math.floor(v) and v > -1e15 and v < 1e15 then
            return string.format("%d", v)
        end
        return string.format("%.6g", v)
    end
    local s = tostring(v)
    if s ~= "" and not s:find("[^%w%._:/@%-%+,]") then
        return s
    end
    return '"' .. s:gsub('[\\"]', "\\%0") .. '"'
end

-- Formats a table as "k1=v1 k2=v2" (keys sorted).
function M.fields(t)
    local keys = {}
    for k in pairs(t) do
        keys[#keys + 1] = tostring(k)
    end
    table.sort(keys)
    local out = {}
    for i, k in ipairs(keys) do
        local v = t[k]
        if v == nil then
            v = t[tonumber(k)]
        end
        out[i] = k .. "=" .. value(v)
    end
    return table.concat(out, " ")
end

local function make(level)
    return function(module, fmt, ...)
        if core.log_enabled(level, module) then
            local msg
            if select("#", ...) == 1 and type((...)) == "table" then
                msg = tostring(fmt) .. " " .. M.fields((...))
            else
                local ok, formatted = pcall(string.format, fmt, ...)
                msg = ok and formatted or tostring(fmt)
            end
            core.log(level, module, msg)
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
