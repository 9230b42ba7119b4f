-- tp.clock: the wall clock the game reads (core.now), with a shift for
-- tests. TPSERVER_CLOCK_OFFSET=SECONDS in the environment at start moves
-- the server's clock by that much and lets the admin console's
-- clock_shift(seconds) move it further, so that tests of turn schedules
-- and deadlines never wait for real time to pass. Without it the clock is
-- the system's and cannot be shifted.
--
-- Required by boot.lua before any other module reads the time: it puts
-- a shifted core.now in place (every caller reads core.now through the
-- module table).

local core = require "tp.core"

local M = {}

local system_now = core.now
local offset = tonumber(os.getenv("TPSERVER_CLOCK_OFFSET") or "")
M.testing = offset ~= nil
offset = offset or 0

if M.testing then
    core.now = function()
        return system_now() + offset
    end
end

-- Moves the clock by seconds (test servers only). Returns the new time.
function M.shift(seconds)
    if not M.testing then
        error("the clock can only be shifted in a server started with "
              .. "TPSERVER_CLOCK_OFFSET set (tests)", 0)
    end
    if type(seconds) ~= "number" or seconds ~= seconds then
        error("clock_shift wants a number of seconds", 0)
    end
    offset = offset + seconds
    return core.now()
end

function M.offset()
    return offset
end

return M
