-- tpserver check DIR / tpserver repair DIR: a game database, offline.
--
-- DIR is a data directory (holding db/) or the database folder itself.
--
-- check: reads every block and value through a check copy (tp.db: the
--   database itself is not changed, so it may be run on a running
--   server's folder, where the newest writes may be missing from the
--   copy), looks for a log that ends inside a write, and checks the
--   game's consistency (tp.dbcheck). Exit 0: good; 1: damaged or
--   inconsistent, with every problem named by its key.
-- repair [RULESET]: for a server that refuses its database. Keeps a copy of the
--   folder as it was (DIR/db.before-repair-<time>), lets LevelDB salvage
--   what it can read (RepairDB, which drops unreadable blocks and log
--   records), reports what LevelDB said it dropped, then fixes the game's
--   consistency (objects restored from their history where it has them,
--   references to lost objects taken away, lost records made again) so
--   that the server opens the result, and says what each fix did.
--
-- Run by core/main.c as a script: arg[1] is the command, arg[2] the DIR.

local store = require "tp.store"
local db_mod = require "tp.db"
local check = require "tp.dbcheck"

local cmd, dir = arg[1], arg[2]
local ruleset           -- repair: the ruleset, when meta/game is lost

local function say(fmt, ...)
    io.stdout:write(string.format(fmt, ...), "\n")
end

local function usage()
    io.stderr:write("usage: tpserver check DIR | tpserver repair DIR "
        .. "[RULESET]\n"
        .. "  DIR: a data directory (with db/ in it) or a database "
        .. "folder; RULESET: the game's ruleset, only needed when its "
        .. "game record is lost\n")
    return 2
end

local function database_folder(d)
    if db_mod.is_dir(d .. "/db") then
        return d .. "/db"
    end
    return d
end

local function log_tails(folder)
    local found = {}
    for _, n in ipairs(db_mod.list_dir(folder) or {}) do
        if n:match("%.log$") then
            local t = check.log_tail(folder .. "/" .. n)
            if t and t.dropped then
                found[#found + 1] = string.format("the log %s ends inside "
                    .. "a write: its last %d bytes (changes made just "
                    .. "before the server stopped, with a power cut or a "
                    .. "damaged file) are not in the game", n, t.dropped)
            elseif t and t.corrupt then
                found[#found + 1] = string.format("the log %s is damaged "
                    .. "at byte %d", n, t.at)
            end
        end
    end
    return found
end

local function summary(report)
    local parts = {}
    local names = {}
    for ns in pairs(report.counts) do
        names[#names + 1] = ns
    end
    table.sort(names)
    for _, ns in ipairs(names) do
        parts[#parts + 1] = ns .. " " .. report.counts[ns]
    end
    local g, t = report.game or {}, report.turn or {}
    return string.format("%s game (format %s), turn %s; %d keys (%s)",
        tostring(g.ruleset or "?"), tostring(g.format or "?"),
        tostring(t.turn or "?"), report.keys, table.concat(parts, ", "))
end

local function print_problems(list, heading)
    if #list > 0 then
        say("%s", heading)
        for _, p in ipairs(list) do
            say("  %s: %s", p.key, p.what)
        end
    end
end

local function run_check(folder)
    local bad = 0
    for _, line in ipairs(log_tails(folder)) do
        say("warning: %s", line)
    end
    local db, err = db_mod.open(folder, { create_if_missing = false })
    if not db then
        say("%s: %s", folder, err)
        return 1
    end
    local report = check.scan(db.raw)
    db:close()                  -- the check copy goes; folder unchanged
    local list = check.described(report)
    say("%s: %s", folder, summary(report))
    print_problems(list, string.format("%d problem%s (tpserver repair "
        .. "fixes them):", #list, #list == 1 and "" or "s"))
    bad = #list
    if bad == 0 then
        say("no problems found")
        return 0
    end
    return 1
end

-- What RepairDB wrote in LevelDB's own log about what it found.
local function repair_notes(folder)
    local notes = {}
    local f = io.open(folder .. "/LOG", "rb")
    if not f then
        return notes
    end
    for line in f:lines() do
        local text = line:gsub("^%S+ %d+ ", "")
        if text:find("Corruption") or text:find("ignoring") or
           text:find("dropp") or text:find("lost") or
           text:find("Archiving .*%.ldb") then
            notes[#notes + 1] = text:gsub(folder .. "/", "")
        end
    end
    f:close()
    return notes
end

-- RepairDB keeps a table whose blocks only fail their checksums (it reads
-- without checking them): copies every key whose block passes into a new
-- database, which then replaces folder. Returns the keys dropped, or nil
-- and a message.
local function salvage(folder)
    local raw, err = store.open(folder, { create_if_missing = false,
                                          paranoid_checks = true })
    if not raw then
        return nil, err
    end
    local clean = pcall(function()
        for _ in raw:iter() do
        end
    end)
    if clean then
        raw:close()
        return {}
    end
    local into = folder .. ".salvage"
    db_mod.remove_dir(into)
    local out
    out, err = store.open(into, { create_if_missing = true,
                                  error_if_exists = true })
    if not out then
        raw:close()
        return nil, err
    end
    local batch, n = store.batch(), 0
    local dropped, werr = check.damaged_keys(raw, function(k, v)
        batch:put(k, v)
        n = n + 1
        if n % 1000 == 0 then
            assert(out:write(batch, false))
            batch:clear()
        end
    end)
    if werr then
        dropped[#dropped + 1] = "(every key after the last one kept: "
            .. werr .. ")"
    end
    local ok
    ok, err = out:write(batch, true)
    raw:close()
    out:close()
    if not ok then
        return nil, err
    end
    if db_mod.is_dir(folder .. "/lost") then
        os.rename(folder .. "/lost", into .. "/lost")
    end
    local old = folder .. ".salvaged"
    db_mod.remove_dir(old)
    assert(os.rename(folder, old))
    assert(os.rename(into, folder))
    db_mod.remove_dir(old)
    return dropped
end

local function run_repair(folder)
    if not db_mod.list_dir(folder) then
        say("%s: no such folder", folder)
        return 1
    end
    local keep = folder .. ".before-repair-" .. os.date("!%Y%m%d-%H%M%S")
    local ok, err = db_mod.copy_files(folder, keep)
    if not ok then
        say("cannot copy %s to %s first (%s): nothing was changed", folder,
            keep, tostring(err))
        return 1
    end
    say("the database as it was is kept in %s", keep)
    for _, line in ipairs(log_tails(folder)) do
        say("warning: %s", line)
    end
    -- A database LevelDB opens is salvaged key by key (so that every key
    -- dropped is named); one it does not open (a damaged MANIFEST or log,
    -- a missing file) goes through LevelDB's repair first.
    -- (Always paranoid: an open may start a compaction, and one that
    -- read without checking would copy a damaged block into a new table
    -- with a good checksum.)
    local opens = store.open(folder, { create_if_missing = false,
                                       paranoid_checks = true })
    if opens then
        opens:close()
    else
        ok, err = store.repair(folder)
        if not ok then
            if tostring(err):find("lock") then
                say("%s is in use (a server is running on it?): stop the "
                    .. "server first", folder)
            else
                say("LevelDB could not repair %s: %s", folder,
                    tostring(err))
            end
            return 1
        end
        local notes = repair_notes(folder)
        say("LevelDB's repair (what it could not read is dropped; "
            .. "unreadable files are in %s/lost):", folder)
        for _, n in ipairs(notes) do
            say("  %s", n)
        end
    end
    local dropped
    dropped, err = salvage(folder)
    if not dropped then
        say("cannot salvage %s: %s", folder, tostring(err))
        return 1
    end
    if #dropped > 0 then
        say("%d key%s in damaged blocks dropped:", #dropped,
            #dropped == 1 and "" or "s")
        for i, k in ipairs(dropped) do
            if i > 50 then
                say("  ... and %d more", #dropped - 50)
                break
            end
            say("  %q", k)
        end
    else
        say("every key could be read")
    end
    local raw
    raw, err = store.open(folder, { create_if_missing = false,
                                    paranoid_checks = true })
    if not raw then
        say("the repaired database does not open: %s", tostring(err))
        return 1
    end
    local report = check.scan(raw)
    local list = check.described(report)
    print_problems(list, "the game after LevelDB's repair:")
    if not report.game and ruleset and report.keys > 0 then
        -- The game record is lost: made again for the ruleset the admin
        -- names (its settings are the ruleset's defaults from now on).
        local created = os.time()
        for _, v in raw:iter { prefix = "account/" } do
            local ok, a = pcall(require("cjson").decode, v)
            if ok and type(a) == "table" and tonumber(a.created) then
                created = math.min(created, a.created)
            end
        end
        report.game = { format = db_mod.FORMAT, ruleset = ruleset,
                        ruleset_version = "", created = created,
                        settings = {} }
        report.problems[#report.problems + 1] = { key = "meta/game",
            fix = { { "put", "meta/game", report.game } } }
        say("the game record is made again for the ruleset %s (its "
            .. "settings are lost: the ruleset's defaults apply)", ruleset)
    end
    local n
    n, err = check.apply(raw, report)
    if not n then
        raw:close()
        say("cannot write the fixes: %s", tostring(err))
        return 1
    end
    local after = check.described(check.scan(raw))
    raw:close()
    -- What is left cannot be fixed here (no game record, players without
    -- accounts): said, and the server decides at start.
    local left = {}
    for _, p in ipairs(after) do
        if not p.fix or p.key == "meta/game" then
            left[#left + 1] = p
        end
    end
    say("%d fix%s written", n, n == 1 and "" or "es")
    print_problems(left, "still to look at by hand:")
    -- The server's own start check (every block, every value).
    local db, oerr = db_mod.open(folder, { create_if_missing = false })
    if not db then
        say("%s: still refused: %s", folder, oerr)
        return 1
    end
    say("%s: %s", folder, summary(check.scan(db.raw)))
    db:close()
    if report.game == nil then
        say("there is no game record: restore a backup, or name the "
            .. "game's ruleset to make one: tpserver repair DIR RULESET")
        return 1
    end
    say("repaired: start the server on it, and compare with the kept copy "
        .. "if in doubt")
    return 0
end

if not dir or (cmd ~= "check" and cmd ~= "repair") or arg[4] or
   (cmd == "check" and arg[3]) then
    return usage()
end
ruleset = arg[3]
local folder = database_folder(dir)
if cmd == "check" then
    return run_check(folder)
end
return run_repair(folder)
