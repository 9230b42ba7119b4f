-- tp.backup: a consistent copy of the running game's database.
--
-- The copy is read from a LevelDB snapshot, so it is the game exactly as
-- it was when the backup started, whatever is written meanwhile. It is
-- made in slices on the loop (a few thousand keys per tick), so clients
-- are served while it runs. The backup folder is laid out as a data
-- directory: the copy is built in <dir>/db.incomplete and renamed to
-- <dir>/db once it is whole and synced, so `tpserver --data <dir>` starts
-- the game as it was, and a backup cut short never looks like a game.

local core = require "tp.core"
local store = require "tp.store"
local log = require "tp.log"

local M = {}

local SLICE = 4000      -- keys copied per loop tick, at most
local SLICE_MS = 5      -- milliseconds one slice may take, about
local running = nil     -- the backup in progress, if any

-- Starts a backup of db (a tp.db handle) into data directory dir.
-- done(true, info) or done(false, message) runs when it ends.
-- Returns true, or nil and a message when it cannot start.
function M.start(db, dir, done)
    if running then
        return nil, "a backup is already running (to " .. running.dir .. ")"
    end
    local ok, err = core.mkdir(dir)
    if not ok then
        return nil, err
    end
    local final, partial = dir .. "/db", dir .. "/db.incomplete"
    local f = io.open(final .. "/CURRENT", "rb")
    if f then
        f:close()
        return nil, dir .. " already holds a database (" .. final .. ")"
    end
    -- What a backup cut short left.
    require("tp.db").remove_dir(partial)
    local target
    target, err = store.open(partial, { create_if_missing = true,
                                        error_if_exists = true })
    if not target then
        return nil, "cannot create the backup database in " .. partial ..
                    ": " .. tostring(err)
    end
    local snap = db.raw:snapshot()
    local it = db.raw:iter { snapshot = snap }
    local started = core.hrtime()
    local job = { dir = dir, keys = 0, bytes = 0 }
    running = job
    local function finish(success, message)
        running = nil
        it:close()
        snap:release()
        target:close()
        if success then
            local rok, rerr = os.rename(partial, final)
            if not rok then
                success, message = false, "cannot rename " .. partial ..
                                   " to " .. final .. ": " .. tostring(rerr)
            end
        end
        if success then
            local info = { dir = dir, keys = job.keys, bytes = job.bytes,
                           ms = core.hrtime() - started }
            log.info("backup", "backup to %s done: %d keys, %d bytes, "
                     .. "%.0f ms", dir, info.keys, info.bytes, info.ms)
            done(true, info)
        else
            log.error("backup", "backup to %s failed: %s", dir, message)
            done(false, message)
        end
    end
    local function slice()
        local ok2, err2 = pcall(function()
            local batch = target:batch()
            local t0 = core.hrtime()
            for i = 1, SLICE do
                if i % 256 == 0 and core.hrtime() - t0 > SLICE_MS then
                    break
                end
                local k, v = it()
                if not k then
                    local wok, werr = target:write(batch, true)
                    if not wok then
                        error(werr, 0)
                    end
                    return true
                end
                batch:put(k, v)
                job.keys = job.keys + 1
                job.bytes = job.bytes + #k + #v
            end
            local wok, werr = target:write(batch)
            if not wok then
                error(werr, 0)
            end
            return false
        end)
        if not ok2 then
            return finish(false, tostring(err2))
        end
        if err2 == true then
            return finish(true)
        end
        -- (1 ms, not 0: a timer of 0 started from a timer callback runs
        -- in the same pass of the loop, before any client is served.)
        core.timer(1, 0, slice)
    end
    log.info("backup", "backup to %s started", dir)
    core.timer(0, 0, slice)
    return true
end

function M.running()
    return running
end

return M
