-- tp.db: the game's LevelDB database, with values encoded as JSON.
--
-- Keys are namespaced and ids fixed-width so prefix scans come back in id
-- order: db.key("player", 7) == "player/0000000007". Values are tables
-- encoded with lua-cjson. Every write that a client will be told "Okay"
-- about goes through one batch that is committed before the reply.

local store = require "tp.store"
local cjson = require "cjson"

local M = {}

-- Format of the database; a newer one is refused at start.
M.FORMAT = 1

local encode, decode = cjson.encode, cjson.decode
cjson.encode_sparse_array(true)
cjson.encode_number_precision(14)

function M.key(ns, id)
    return string.format("%s/%010d", ns, id)
end

local DB = {}
DB.__index = DB

-- Opens (creating) the database in dir. opts: sync, cache_size, ...
function M.open(dir, opts)
    local raw, err = store.open(dir, opts)
    if not raw then
        return nil, err
    end
    return setmetatable({ raw = raw, sync = opts and opts.sync }, DB)
end

function DB:get(key)
    local v, err = self.raw:get(key)
    if v == nil then
        if err then
            error("database read failed: " .. err)
        end
        return nil
    end
    return decode(v)
end

-- Iterates key, value over every key starting with prefix, in order.
function DB:each(prefix)
    local it = self.raw:iter { prefix = prefix }
    return function()
        local k, v = it()
        if k then
            return k, decode(v)
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
    if self.n == 0 then
        return true
    end
    local ok, err = self.db.raw:write(self.raw, sync or self.db.sync)
    if not ok then
        error("database write failed: " .. tostring(err))
    end
    self.raw:clear()
    self.n = 0
    return true
end

function DB:put(key, value)
    return self:batch():put(key, value):commit()
end

function DB:close()
    self.raw:close()
end

return M
