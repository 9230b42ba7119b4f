-- tp.hup: what SIGHUP reloads. Modules register a reloader once
-- (hup.add("tls", fn)); on SIGHUP every reloader runs in registration
-- order, each protected so one failure does not stop the others. The
-- failures are logged and returned.

local log = require "tp.log"

local M = {}

local reloaders = {}   -- array of { name, fn }

function M.add(name, fn)
    for _, r in ipairs(reloaders) do
        if r[1] == name then
            r[2] = fn
            return
        end
    end
    reloaders[#reloaders + 1] = { name, fn }
end

-- Runs every reloader; returns a list of "name: error" strings.
function M.run()
    local failed = {}
    for _, r in ipairs(reloaders) do
        local ok, err = xpcall(r[2], debug.traceback)
        if ok then
            log.info("main", "reloaded %s", r[1])
        else
            log.error("main", "reloading %s failed: %s", r[1], tostring(err))
            failed[#failed + 1] = r[1] .. ": " .. tostring(err)
        end
    end
    return failed
end

return M
