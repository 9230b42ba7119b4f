-- tp.newgame: from one game to the next without a reinstall. The game as
-- it is goes to <data>/archive/<date>-<game_name>/ (a data directory: the
-- archived game runs again with tpserver --data DIR), then the database
-- is emptied, but for the accounts when they are kept, and a new
-- universe is made, with the accounts of the last game joining it
-- (keep_accounts). The console's game.new does it in the running server
-- (M.start); tpserver new-game does it offline (tp.gametool).
--
-- meta/newgame -> { ruleset, keep_accounts, archive } marks an emptied
-- database that waits for its new game (tp.game.start makes it).

local backup = require "tp.backup"
local core = require "tp.core"
local db_mod = require "tp.db"
local log = require "tp.log"

local M = {}

-- A folder name made of the game's short name ("tp" when it has nothing
-- usable).
local function slug(name)
    local s = tostring(name or ""):gsub("[^%w_%-]+", "-"):gsub("^%-+", "")
                                  :gsub("%-+$", "")
    return s ~= "" and s:sub(1, 40) or "tp"
end

-- A new archive folder: <data>/archive/<YYYY-MM-DD>-<name>[-N].
function M.archive_dir(cfg, now)
    local root = cfg.data .. "/archive"
    local ok, err = core.mkdir(root)
    if not ok then
        return nil, err
    end
    local base = root .. "/" .. os.date("!%Y-%m-%d", math.floor(now)) ..
                 "-" .. slug(cfg.game_name)
    local dir, n = base, 1
    while db_mod.is_dir(dir) do
        n = n + 1
        dir = base .. "-" .. n
    end
    return dir
end

-- Deletes every key of db but the accounts' (keep_accounts) and writes
-- meta/newgame, in one batch.
function M.empty(db, keep_accounts, info)
    local batch = db:batch()
    for k in db.raw:iter { keys_only = true } do
        -- (meta/wseq counts the batches written: tp.db keeps it.)
        if k ~= "meta/wseq" and
           not (keep_accounts and k:sub(1, 8) == "account/") then
            batch:delete(k)
        end
    end
    batch:put("meta/newgame", info):commit(true)
end

-- The running server: archives the game, then makes the new one.
-- opts: ruleset (a loaded ruleset table), ruleset_name (as given: a
-- folder name or a path), settings (its
-- ruleset_settings), keep_accounts, cfg, db. done(true, info) or
-- done(nil, message).
function M.start(opts, done)
    local cfg, db = opts.cfg, opts.db
    if backup.running() then
        return done(nil, "a backup is running; try again when it is done")
    end
    local dir, err = M.archive_dir(cfg, core.now())
    if not dir then
        return done(nil, "cannot make the archive folder: " .. tostring(err))
    end
    local ok
    ok, err = backup.start(db, dir, function(copied, info)
        if not copied then
            return done(nil, "the game could not be archived (nothing was "
                        .. "changed): " .. tostring(info))
        end
        local made, merr = M.replace(opts, dir)
        if not made then
            return done(nil, merr)
        end
        done(true, made)
    end)
    if not ok then
        done(nil, "the game could not be archived (nothing was changed): "
             .. tostring(err))
    end
end

-- Everyone logged in is disconnected (their ids and views belong to the
-- old game), the database emptied, and the new game opened.
function M.replace(opts, archive)
    local game = require "tp.game"
    local cfg, db, rs = opts.cfg, opts.db, opts.ruleset
    game.stop()
    for _, c in ipairs(core.connections()) do
        if not c.admin and c.player and not c.closed then
            c:close("a new game starts: log in again")
        end
    end
    for c in pairs(game.sessions) do
        if not c.closed then
            c:close("a new game starts: log in again")
        end
        game.sessions[c] = nil
    end
    M.empty(db, opts.keep_accounts, { ruleset = rs.folder,
                                      keep_accounts = opts.keep_accounts,
                                      archive = archive })
    cfg.ruleset = opts.ruleset_name or rs.folder
    cfg.ruleset_settings = opts.settings or {}
    local ok, err = game.start(cfg, db, rs)
    if not ok then
        log.error("game", "the new game could not be made: %s (the old "
                  .. "one is in %s)", tostring(err), archive)
        return nil, "the new game could not be made: " .. tostring(err) ..
                    " (the old game is in " .. archive .. "; the server "
                    .. "must be restarted)"
    end
    log.info("game", "a new %s game started; the last one is archived in "
             .. "%s", rs.name, archive)
    require("tp.events").emit("turn_start", {
        turn = game.turn_number(), seconds_left = game.time_remaining() })
    return { archive = archive, ruleset = rs.name,
             players = require("tp.accounts").count() }
end

return M
