-- tp.db: the game's LevelDB database, with values encoded as JSON.
--
-- Keys are namespaced and ids fixed-width so prefix scans come back in id
-- order: db.key("player", 7) == "player/0000000007". Values are tables
-- encoded with lua-cjson. Every write that a client will be told "Okay"
-- about goes through one batch that is committed before the reply.
-- docs/storage.md describes every key.
--
-- Opening an existing database never changes it until the game has been
-- read and found good: LevelDB rewrites its MANIFEST and log on every
-- open, so open() first opens a check copy (<dir>.check: hard links to
-- the table files, which LevelDB never modifies, and copies of the small
-- mutable files), reads every key and value of it, and the game is loaded
-- from that copy. accept() then swaps to the real database (the first
-- write does it too). A damaged database, or one the game refuses (another
-- ruleset, a newer format), is left exactly as it was.

local store = require "tp.store"
local cjson = require "cjson"
local ffi = require "ffi"

local M = {}

-- Format of the database; a newer one is refused at start, an older one
-- converted (tp.migrate). 2: turns numbered from 0.
M.FORMAT = 2

local encode, decode = cjson.encode, cjson.decode
cjson.encode_sparse_array(true)
cjson.encode_number_precision(14)

function M.key(ns, id)
    return string.format("%s/%010d", ns, id)
end

-- ------------------------------------------------------------ files

-- Directory listing and hard links (glibc; the names are redirected so
-- that they cannot clash with another module's declarations).
ffi.cdef [[
struct tp_db_dirent {
    unsigned long d_ino; long d_off; unsigned short d_reclen;
    unsigned char d_type; char d_name[256];
};
void *tp_db_opendir(const char *name) __asm__("opendir");
struct tp_db_dirent *tp_db_readdir(void *dir) __asm__("readdir");
int tp_db_closedir(void *dir) __asm__("closedir");
int tp_db_link(const char *from, const char *to) __asm__("link");
]]
local C = ffi.C

-- The names in folder dir (without . and ..), or nil when it cannot be
-- read (absent).
local function list_dir(dir)
    local d = C.tp_db_opendir(dir)
    if d == nil then
        return nil
    end
    local names = {}
    while true do
        local e = C.tp_db_readdir(d)
        if e == nil then
            break
        end
        local n = ffi.string(e.d_name)
        if n ~= "." and n ~= ".." then
            names[#names + 1] = n
        end
    end
    C.tp_db_closedir(d)
    table.sort(names)
    return names
end
M.list_dir = list_dir

local function is_dir(path)
    local d = C.tp_db_opendir(path)
    if d == nil then
        return false
    end
    C.tp_db_closedir(d)
    return true
end
M.is_dir = is_dir

local function copy_file(from, to)
    local f, err = io.open(from, "rb")
    if not f then
        return nil, err
    end
    local data
    data, err = f:read("*a")
    f:close()
    if not data then
        return nil, from .. ": " .. tostring(err)
    end
    local g
    g, err = io.open(to, "wb")
    if not g then
        return nil, err
    end
    local ok
    ok, err = g:write(data)
    g:close()
    if not ok then
        return nil, err
    end
    return true
end

-- Removes folder dir and the files in it (not recursive).
local function remove_dir(dir)
    for _, n in ipairs(list_dir(dir) or {}) do
        os.remove(dir .. "/" .. n)
    end
    os.remove(dir)
end
M.remove_dir = remove_dir

-- LevelDB's own text log and lock: not part of the data.
local function bookkeeping(name)
    return name == "LOCK" or name == "LOG" or name == "LOG.old"
end

-- Makes check, a copy of database dir that LevelDB may rewrite freely:
-- table files are hard links (copied where linking fails), the rest are
-- copies. Returns true or nil, message.
local function make_check_copy(dir, names, check)
    remove_dir(check)       -- left by a server killed while starting
    local ok, err = require("tp.core").mkdir(check)
    if not ok then
        return nil, err
    end
    for _, n in ipairs(names) do
        -- (Folders, such as the lost/ of a repair, are not LevelDB's.)
        if not bookkeeping(n) and not is_dir(dir .. "/" .. n) then
            local from, to = dir .. "/" .. n, check .. "/" .. n
            local linked = (n:match("%.ldb$") or n:match("%.sst$")) and
                           C.tp_db_link(from, to) == 0
            if not linked then
                ok, err = copy_file(from, to)
                if not ok then
                    remove_dir(check)
                    return nil, err
                end
            end
        end
    end
    return true
end

local function with(opts, extra)
    local o = {}
    for k, v in pairs(opts or {}) do
        o[k] = v
    end
    for k, v in pairs(extra) do
        o[k] = v
    end
    return o
end

-- (The caller names the folder: "cannot open the database in <dir>: ".)
local function damaged(why)
    why = tostring(why)
    return string.format("it is damaged%s: %s. Nothing was changed in it; "
        .. "restore a backup, or see docs/storage.md (\"A damaged "
        .. "database\")", why:find("^IO error") and " or unreadable" or "",
        why)
end

-- Namespaces whose every value the game decodes when it starts (tp.model,
-- tp.accounts): a value there that is not JSON is found then, before the
-- database is accepted. History records are only looked at in their form.
local LOADED = { obj = true, gone = true, queue = true, board = true,
                 msg = true, design = true, player = true }

local function not_json(k, why)
    return string.format("the value of key '%s' is not JSON (%s)", k,
                         tostring(why):gsub("^.-:%d+: ", ""))
end

-- Reads every key and value of raw (a tp.store handle), so that LevelDB
-- checks every block; the values of the namespaces not loaded at start
-- must be JSON. Returns the number of keys, or nil and a message.
local function check_all(raw)
    local n, key, bad = 0, nil, nil
    local ok, err = pcall(function()
        for k, v in raw:iter() do
            key = k
            local ns = k:match("^([^/]*)/")
            if ns == "hist" then
                if v ~= "null" and not (v:sub(1, 5) == '{"m":' and
                                        v:sub(-1) == "}") then
                    bad = not_json(k, "not a history record")
                    return
                end
            elseif not LOADED[ns] then
                local good, derr = pcall(decode, v)
                if not good then
                    bad = not_json(k, derr)
                    return
                end
            end
            n = n + 1
        end
    end)
    if bad then
        return nil, bad
    end
    if not ok then
        err = tostring(err):gsub("^.-:%d+: ", ""):gsub("^store iterator: ",
                                                        "")
        -- LevelDB skips a damaged block and says so at the end: name the
        -- keys in it.
        local lost = require("tp.dbcheck").damaged_keys(raw)
        if #lost > 0 then
            local shown = {}
            for i = 1, math.min(#lost, 5) do
                shown[i] = "'" .. lost[i] .. "'"
            end
            return nil, string.format("%s (the values of %d key%s cannot "
                .. "be read: %s%s)", err, #lost, #lost == 1 and "" or "s",
                table.concat(shown, ", "), #lost > 5 and ", ..." or "")
        end
        if key then
            return nil, string.format("%s (reading after key '%s')", err,
                                      key)
        end
        return nil, err
    end
    return n
end

-- Every batch also writes WSEQ, the number of batches written: after a
-- failed write (below) it tells whether the database holds exactly what
-- was acknowledged.
local WSEQ = "meta/wseq"

local function read_seq(raw)
    local v = raw:get(WSEQ)
    return tonumber(v) or 0
end

local DB = {}
DB.__index = DB

-- Opens the database in dir, creating it when dir holds no database at
-- all (never over files that are there: a folder with database files but
-- no CURRENT is damaged, not new). opts: sync, cache_size,
-- write_buffer_size, compression (tp.store's open options);
-- create_if_missing = false refuses to create. An existing database is
-- checked through a check copy (see the top of this file) and must be
-- accept()ed before the game writes. Returns a handle, or nil and a
-- message. handle.created is true for a new database.
function M.open(dir, opts)
    opts = opts or {}
    local names = list_dir(dir)
    local current, files = false, false
    for _, n in ipairs(names or {}) do
        if n == "CURRENT" then
            current = true
        elseif not bookkeeping(n) and not is_dir(dir .. "/" .. n) then
            files = true
        end
    end
    local base = with(opts, { create_if_missing = false,
                              error_if_exists = false,
                              paranoid_checks = true })
    if not current then
        if files then
            return nil, damaged("there is no CURRENT file")
        end
        if opts.create_if_missing == false then
            return nil, "there is no database in " .. dir
        end
        local raw, err = store.open(dir, with(base,
                                              { create_if_missing = true }))
        if not raw then
            return nil, err
        end
        return setmetatable({ raw = raw, sync = opts.sync, dir = dir,
                              opts = base, created = true,
                              seq = 0 }, DB)
    end
    -- A log that ends inside a record: LevelDB drops that write without a
    -- word when it opens the database; say it.
    for _, n in ipairs(names) do
        if n:match("%.log$") then
            local t = require("tp.dbcheck").log_tail(dir .. "/" .. n)
            if t and t.dropped then
                require("tp.log").warning("db", "the database log %s/%s "
                    .. "ends inside a write: its last %d bytes (changes "
                    .. "made just before the server stopped: a power cut, "
                    .. "or a damaged file) are not in the game", dir, n,
                    t.dropped)
            end
        end
    end
    local check = dir .. ".check"
    local ok, err = make_check_copy(dir, names, check)
    if not ok then
        -- No room for a check copy (a read-only or full disk): open the
        -- database itself.
        require("tp.log").warning("db", "cannot make the check copy %s "
            .. "(%s); opening %s without it", check, tostring(err), dir)
        local raw, oerr = store.open(dir, base)
        if not raw then
            return nil, damaged(oerr)
        end
        local n, cerr = check_all(raw)
        if not n then
            raw:close()
            return nil, damaged(cerr)
        end
        return setmetatable({ raw = raw, sync = opts.sync, dir = dir,
                              opts = base, seq = read_seq(raw) }, DB)
    end
    local raw, oerr = store.open(check, base)
    if not raw then
        remove_dir(check)
        return nil, damaged(oerr)
    end
    local n, cerr = check_all(raw)
    if not n then
        raw:close()
        remove_dir(check)
        return nil, damaged(cerr)
    end
    return setmetatable({ raw = raw, sync = opts.sync, dir = dir,
                          opts = base, seq = read_seq(raw),
                          pending = { check = check, opts = base } }, DB)
end

-- Leaves the check copy for the database itself (what is read stays the
-- same: the copy had the same contents). Idempotent. Returns true or nil,
-- message.
function DB:accept()
    local p = self.pending
    if not p then
        return true
    end
    self.raw:close()
    remove_dir(p.check)
    local raw, err = store.open(self.dir, p.opts)
    if not raw then
        return nil, "cannot open the database in " .. self.dir .. ": " ..
                    tostring(err)
    end
    self.raw = raw
    self.pending = nil
    return true
end

local function accept_or_raise(db)
    if db.pending then
        local ok, err = db:accept()
        if not ok then
            error(err, 0)
        end
    end
end

local function decode_at(db, key, v)
    local ok, t = pcall(decode, v)
    if not ok then
        if db.pending then     -- still checking, at start
            error("cannot open the database in " .. db.dir .. ": " ..
                  damaged(not_json(key, t)), 0)
        end
        error("database value of key '" .. key .. "' is not JSON (" ..
              tostring(t) .. ")", 0)
    end
    return t
end

function DB:get(key)
    local v, err = self.raw:get(key)
    if v == nil then
        if err then
            error("database read failed: " .. err)
        end
        return nil
    end
    return decode_at(self, key, v)
end

-- Iterates key, value (decoded), stored value over every key starting
-- with prefix, in order.
function DB:each(prefix)
    local it = self.raw:iter { prefix = prefix }
    return function()
        local k, v = it()
        if k then
            return k, decode_at(self, k, v), v
        end
    end
end

local Batch = {}
Batch.__index = Batch

function DB:batch()
    return setmetatable({ db = self, raw = self.raw:batch(), n = 0 }, Batch)
end

function Batch:put(key, value)
    self.raw:put(key, encode(value))
    self.n = self.n + 1
    return self
end

function Batch:delete(key)
    self.raw:delete(key)
    self.n = self.n + 1
    return self
end

-- Writes the batch atomically; raises if LevelDB refuses (the caller's
-- request then fails and nothing was acknowledged), or while the
-- database is not known good after an earlier failure (DB:writable).
function Batch:commit(sync)
    if self.n > 0 then
        local db = self.db
        accept_or_raise(db)
        db:writable()
        local seq = db.seq + 1
        self.raw:put(WSEQ, tostring(seq))
        local ok, err = db.raw:write(self.raw, sync or db.sync)
        if not ok then
            self.after = nil
            self.raw:clear()
            self.n = 0
            db:failed(err, seq)
            error("database write failed: " .. tostring(err))
        end
        db.seq = seq
        self.raw:clear()
        self.n = 0
    end
    -- What waited for the write (tp.model settling its working set).
    local after = self.after
    self.after = nil
    if after then
        for _, fn in ipairs(after) do
            fn()
        end
    end
    return true
end

-- Runs fn after the batch was written (not if the write fails).
function Batch:after_write(fn)
    self.after = self.after or {}
    self.after[#self.after + 1] = fn
    return self
end

function DB:put(key, value)
    return self:batch():put(key, value):commit()
end

-- ------------------------------------------------------------ failed writes
--
-- A write LevelDB refused (a full disk, an I/O error) may have left part
-- of a record at the end of its log, and LevelDB's writer goes on after
-- it: a later write that succeeds lands behind the broken record, and the
-- next open finds the log damaged and drops what followed, writes that
-- were acknowledged. So after a failed write nothing more is written
-- through that handle. The next write first makes sure there is room
-- (a probe file), then closes the database and opens it again (LevelDB
-- recovers its log: a record cut at the end is an unfinished write, never
-- acknowledged) and checks that it holds exactly the acknowledged batches
-- (WSEQ); only then is the write made. Until that works, writes are
-- refused at once; reads go on from the old handle meanwhile. A database
-- that cannot be opened again, or that turns out to hold a write reported
-- as failed, stops the server with a message (on_fatal).

-- Seconds between attempts to recover, after a failed attempt (doubling).
local RETRY_FIRST, RETRY_MAX = 1, 5

-- The first attempt is made by the next write, at once.
function DB:failed(err, seq)
    local now = os.time()
    if not self.broken then
        require("tp.log").error("db", "a write to the database in %s "
            .. "failed (%s): no more writes until it is checked",
            self.dir, tostring(err))
        self.broken = { err = tostring(err), since = now, seq = seq,
                        wait = 0, next_try = 0 }
    else
        self.broken.err = tostring(err)
        self.broken.seq = seq
    end
end

local function file_size(path)
    local f = io.open(path, "rb")
    if not f then
        return 0
    end
    local n = f:seek("end") or 0
    f:close()
    return n
end

-- Writes and removes a file as large as what reopening may write (the
-- log turned into a table, a new MANIFEST and log). true or nil, message.
local function room_for_reopen(dir)
    local need = 1048576
    for _, n in ipairs(list_dir(dir) or {}) do
        if n:match("%.log$") then
            need = need + file_size(dir .. "/" .. n)
        end
    end
    local probe = dir .. ".room"
    local f, err = io.open(probe, "wb")
    if not f then
        return nil, err
    end
    local chunk = string.rep("\0", 65536)
    local ok, werr = true, nil
    local left = need
    while ok and left > 0 do
        ok, werr = f:write(left >= #chunk and chunk or chunk:sub(1, left))
        left = left - #chunk
    end
    if ok then
        ok, werr = f:flush()
    end
    f:close()
    os.remove(probe)
    if not ok then
        return nil, werr
    end
    return true
end

-- The server's reaction to a database it cannot go on with: set by the
-- boot (tp.boot stops the server); the default raises.
M.on_fatal = function(msg)
    error(msg, 0)
end

local function fatal(db, msg)
    db.broken.fatal = msg
    require("tp.log").error("db", "%s", msg)
    M.on_fatal(msg)
    error(msg, 0)
end

-- Raises unless writes may be made: after a failed write, tries to
-- recover (see above), at most once per wait.
function DB:writable()
    local b = self.broken
    if not b then
        return true
    end
    if b.fatal then
        error(b.fatal, 0)
    end
    local now = os.time()
    local refused = string.format("the database cannot be written since %s "
        .. "(%s); nothing was changed", os.date("!%H:%M:%SZ", b.since),
        b.err)
    if now < b.next_try then
        error(refused, 0)
    end
    b.wait = b.wait == 0 and RETRY_FIRST or math.min(b.wait * 2, RETRY_MAX)
    b.next_try = now + b.wait
    local log = require "tp.log"
    local ok, err = room_for_reopen(self.dir)
    if not ok then
        log.warning("db", "still no room to reopen the database (%s); "
                    .. "next try in %d s", tostring(err), b.wait)
        error(refused, 0)
    end
    self.raw:close()
    local raw, oerr = store.open(self.dir, self.opts)
    if not raw then
        self.raw = nil
        fatal(self, string.format("the database in %s cannot be opened "
            .. "again after a failed write (%s); stopping. Nothing that "
            .. "was acknowledged is lost: start the server again once the "
            .. "disk has room", self.dir, tostring(oerr)))
    end
    self.raw = raw
    local seq = read_seq(raw)
    if seq == b.seq and b.seq == self.seq + 1 then
        fatal(self, string.format("a write to the database in %s that "
            .. "was reported as failed is in it after all; stopping so "
            .. "that the next start loads the game as it is stored",
            self.dir))
    elseif seq ~= self.seq then
        fatal(self, string.format("the database in %s does not hold what "
            .. "was acknowledged after a failed write (write %d of %d "
            .. "found); stopping: check it with tpserver check",
            self.dir, seq, self.seq))
    end
    log.warning("db", "the database in %s was reopened and checked after "
                .. "the failed write (down %d s): writes are accepted "
                .. "again", self.dir, now - b.since)
    self.broken = nil
    return true
end

function DB:close()
    if not self.raw then
        return
    end
    self.raw:close()
    if self.pending then
        remove_dir(self.pending.check)
        self.pending = nil
    end
end


-- Copies the files of a database folder (not its LOCK, not its
-- sub-folders) into the folder to, made here. Offline tools only (it
-- reads each file whole): tpserver repair's copy, tpserver restore.
-- Returns true, or nil, message.
function M.copy_files(from, to)
    local ok, err = require("tp.core").mkdir(to)
    if not ok then
        return nil, err
    end
    for _, n in ipairs(list_dir(from) or {}) do
        local src = from .. "/" .. n
        if n ~= "LOCK" and not is_dir(src) then
            local f, ferr = io.open(src, "rb")
            if not f then
                return nil, ferr
            end
            local data = f:read("*a")
            f:close()
            local g, gerr = io.open(to .. "/" .. n, "wb")
            if not g then
                return nil, gerr
            end
            local wok, werr = g:write(data)
            g:close()
            if not wok then
                return nil, werr
            end
        end
    end
    return true
end

return M
