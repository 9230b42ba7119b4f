-- tp.autosave: backups of the running game every backup_every_turns
-- turns, into <data>/backups/turn-N/ (a data directory each, made by
-- tp.backup from a snapshot taken right after the turn's commit, copied
-- in slices on the loop), keeping the newest backup_keep of them: the
-- oldest are removed once a new one is whole. tpserver restore DIR
-- (tp.gametool) puts one back.

local backup = require "tp.backup"
local core = require "tp.core"
local db_mod = require "tp.db"
local log = require "tp.log"

local M = {}

function M.folder(cfg)
    return cfg.data .. "/backups"
end

-- The backups in folder, oldest first: { { turn, dir, whole } }.
function M.list(folder)
    local out = {}
    for _, n in ipairs(db_mod.list_dir(folder) or {}) do
        local t = tonumber(n:match("^turn%-(%d+)$"))
        if t then
            local dir = folder .. "/" .. n
            out[#out + 1] = { turn = t, dir = dir,
                              whole = db_mod.is_dir(dir .. "/db") }
        end
    end
    table.sort(out, function(a, b) return a.turn < b.turn end)
    return out
end

local function remove(dir)
    db_mod.remove_dir(dir .. "/db")
    db_mod.remove_dir(dir .. "/db.incomplete")
    db_mod.remove_dir(dir)
end

-- Removes all but the newest keep whole backups (and the remains of any
-- backup cut short that is older than the newest whole one).
function M.prune(folder, keep)
    local list = M.list(folder)
    local whole = {}
    for _, b in ipairs(list) do
        if b.whole then
            whole[#whole + 1] = b
        end
    end
    local newest = whole[#whole]
    for i, b in ipairs(whole) do
        if i <= #whole - keep then
            remove(b.dir)
            log.info("backup", "old backup %s removed", b.dir)
        end
    end
    for _, b in ipairs(list) do
        if not b.whole and newest and b.turn < newest.turn and
           backup.running() == nil then
            remove(b.dir)
        end
    end
end

-- After turn n was stored (tp.turn).
function M.after_turn(db, cfg, n)
    local every = cfg.backup_every_turns
    if every == 0 or n % every ~= 0 then
        return
    end
    local folder = M.folder(cfg)
    local ok, err = core.mkdir(folder)
    if ok then
        ok, err = backup.start(db, folder .. "/turn-" .. n, function(done)
            if done then
                M.prune(folder, cfg.backup_keep)
            end
        end)
    end
    if not ok then
        log.error("backup", "the automatic backup of turn %d did not "
                  .. "start: %s", n, tostring(err))
    end
end

return M
