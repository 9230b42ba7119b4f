-- tpserver restore DIR / tpserver new-game: a game's data directory,
-- offline (the server stopped: both take the data directory's lock, and
-- refuse while a server holds it).
--
-- restore DIR: puts a backup back (DIR is a backup: a data directory, such
--   as <data>/backups/turn-N from backup_every_turns, or one made by
--   tpserver backup). The current database is moved aside to
--   <data>/db.before-restore-<time> (never deleted), and the backup's
--   copied in; the next start serves the game as the backup holds it.
-- new-game [--keep-accounts]: moves the game to
--   <data>/archive/<date>-<game_name>/ (tp.newgame) and leaves a database
--   that makes a new game at the next start (of the configured ruleset
--   and settings), with the accounts of the last game when asked.
--
-- Both read the configuration as the server does (-c FILE, --data DIR,
-- --set key=value) to find the data directory.
--
-- Run by core/main.c as a script: arg[1] is the command.

local config = require "tp.config"
local db_mod = require "tp.db"
local store = require "tp.store"
local sys = require "tp.sys"

local cmd = arg[1]

local function say(fmt, ...)
    io.stdout:write(string.format(fmt, ...), "\n")
end

local function complain(fmt, ...)
    io.stderr:write("tpserver: ", string.format(fmt, ...), "\n")
end

local function usage()
    io.stderr:write("usage: tpserver restore [-c FILE] [--data DIR] "
        .. "BACKUP_DIR\n"
        .. "       tpserver new-game [-c FILE] [--data DIR] [--set k=v] "
        .. "[--keep-accounts]\n")
    return 2
end

-- The command line after the command -> args for tp.config.load, the
-- positional arguments and the flags, or nil, message.
local function parse()
    local args = { home = TP_HOME, set = {}, overrides = {} }
    local rest, flags = {}, {}
    local i = 2
    while arg[i] do
        local a = arg[i]
        if a == "-c" or a == "--config" then
            args.config, i = arg[i + 1], i + 1
        elseif a == "--data" then
            args.overrides.data, i = arg[i + 1], i + 1
        elseif a == "--set" then
            args.set[#args.set + 1], i = arg[i + 1], i + 1
        elseif a == "--keep-accounts" then
            flags.keep_accounts = true
        elseif a:sub(1, 1) == "-" then
            return nil, "unknown option " .. a
        else
            rest[#rest + 1] = a
        end
        if a ~= "--keep-accounts" and a:sub(1, 1) == "-" and
           arg[i] == nil then
            return nil, a .. " wants a value"
        end
        i = i + 1
    end
    return args, rest, flags
end

-- The data directory, locked against a server; or nil, message.
local function lock_data(args)
    local cfg, err = config.load(args)
    if not cfg then
        return nil, err
    end
    local service = require "tp.service"
    cfg.data = service.absolute(cfg.data)
    if not db_mod.is_dir(cfg.data) then
        return nil, "no data directory " .. cfg.data
    end
    local ok, lerr, holder = sys.lock(service.lock_path(cfg), false)
    if not ok then
        if holder then
            return nil, string.format("a server is running on %s (pid %d): "
                .. "stop it first (tpserver --stop)", cfg.data, holder)
        end
        return nil, "cannot lock the data directory: " .. tostring(lerr)
    end
    return cfg
end

local function stamp()
    return os.date("!%Y%m%d-%H%M%S")
end

local function restore(args, rest)
    if #rest ~= 1 then
        return usage()
    end
    local cfg, err = lock_data(args)
    if not cfg then
        complain("%s", err)
        return 1
    end
    local from = require("tp.service").absolute(rest[1])
    local src = db_mod.is_dir(from .. "/db") and from .. "/db" or from
    local current = io.open(src .. "/CURRENT", "rb")
    if not current then
        complain("%s holds no database (a backup has db/ in it)", from)
        return 1
    end
    current:close()
    -- The backup must open as a database before anything moves.
    local raw, oerr = store.open(src, { create_if_missing = false })
    if not raw then
        complain("the backup in %s does not open: %s", src, tostring(oerr))
        return 1
    end
    local meta = raw:get("meta/turn")
    raw:close()
    local target = cfg.data .. "/db"
    local aside
    if db_mod.is_dir(target) then
        aside = target .. ".before-restore-" .. stamp()
        local ok, rerr = os.rename(target, aside)
        if not ok then
            complain("cannot move %s aside: %s (nothing was changed)",
                     target, tostring(rerr))
            return 1
        end
        say("the current database is kept in %s", aside)
    end
    local partial = target .. ".restoring"
    db_mod.remove_dir(partial)
    local ok, cerr = db_mod.copy_files(src, partial)
    if ok then
        ok, cerr = os.rename(partial, target)
    end
    if not ok then
        -- The game as it was goes back: a data directory without a
        -- database would start a new game.
        db_mod.remove_dir(partial)
        if aside then
            os.rename(aside, target)
        end
        complain("cannot copy the backup into %s: %s (nothing was changed)",
                 target, tostring(cerr))
        return 1
    end
    local turn = meta and tostring(meta):match('"turn":(%d+)')
    say("restored %s into %s%s: start the server", from, target,
        turn and (" (turn " .. turn .. ")") or "")
    return 0
end

local function new_game(args, rest, flags)
    if #rest ~= 0 then
        return usage()
    end
    local cfg, err = lock_data(args)
    if not cfg then
        complain("%s", err)
        return 1
    end
    local newgame = require "tp.newgame"
    local target = cfg.data .. "/db"
    if not db_mod.is_dir(target) then
        complain("no game in %s", cfg.data)
        return 1
    end
    local dir
    dir, err = newgame.archive_dir(cfg, os.time())
    if not dir then
        complain("cannot make the archive folder: %s", tostring(err))
        return 1
    end
    local ok, merr = require("tp.core").mkdir(dir)
    if ok then
        ok, merr = os.rename(target, dir .. "/db")
    end
    if not ok then
        complain("cannot move the game to %s: %s (nothing was changed)", dir,
                 tostring(merr))
        return 1
    end
    say("the game is archived in %s", dir)
    local out, oerr = db_mod.open(target, { create_if_missing = true })
    if not out then
        complain("cannot make the new database: %s", tostring(oerr))
        return 1
    end
    out:accept()
    local kept = 0
    if flags.keep_accounts then
        local raw = assert(store.open(dir .. "/db",
                                      { create_if_missing = false }))
        local batch = out:batch()
        for k, v in raw:iter { prefix = "account/" } do
            batch:put(k, require("cjson").decode(v))
            kept = kept + 1
        end
        raw:close()
        batch:commit(true)
    end
    out:batch():put("meta/newgame", { keep_accounts = flags.keep_accounts
                                      or false, archive = dir })
       :commit(true)
    out:close()
    say("a new %s game is made at the next start%s", cfg.ruleset,
        flags.keep_accounts and string.format(" (%d accounts kept)", kept)
        or "")
    return 0
end

local args, rest, flags = parse()
if not args then
    complain("%s", rest)
    return usage()
end
if cmd == "restore" then
    return restore(args, rest)
elseif cmd == "new-game" then
    return new_game(args, rest, flags)
end
return usage()
