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

local function copy_file(from, to)
    local f, err = io.open(from, "rb")
    if not f then
        return nil, err
    end
    local data = f:read("*a")
    f:close()
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
        if not bookkeeping(n) then
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
        if key then
            return nil, string.format("%s (reading after key '%s')", err,
                                      key)
        end
        return nil, err
    end
    return n
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
        elseif not bookkeeping(n) then
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
                              created = true }, DB)
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
        return setmetatable({ raw = raw, sync = opts.sync, dir = dir }, DB)
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
-- request then fails and nothing was acknowledged).
function Batch:commit(sync)
    if self.n > 0 then
        accept_or_raise(self.db)
        local ok, err = self.db.raw:write(self.raw, sync or self.db.sync)
        if not ok then
            self.after = nil
            error("database write failed: " .. tostring(err))
        end
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

function DB:close()
    self.raw:close()
    if self.pending then
        remove_dir(self.pending.check)
        self.pending = nil
    end
end

return M
