-- tp.types: the object types, order types and static game data a ruleset
-- declares, checked and turned into what the protocol needs (ids, layouts
-- of the variable parts, description frames).
--
-- Object and order type ids count from 0 in declaration order; resources,
-- categories, properties and components keep the ids the ruleset gives
-- (from 1). See rulesets/README.md for the declarations.

local params = require "tp.params"

local M = {}

-- Order type hooks that run while a request is answered, and the words
-- that say what the server was doing when one of them failed.
local REQUEST_HOOKS = {
    check = "checking", turns = "estimating", resources = "estimating",
    inserted = "inserting", removed = "removing", why_not = "refusing",
}
local guarded = setmetatable({}, { __mode = "k" })  -- our wrappers

-- Wraps a ruleset hook that runs for a request: an error in it (a bug in
-- the ruleset) fails that request with a Fail that says which order type
-- and hook failed, the traceback goes to the log, and whatever the
-- request changed is rolled back. A tp.fail raised inside passes through.
-- Wrapping twice (types.build again) is a no-op.
local running_hook         -- { ot, what } of the hook being run, or nil

local function hook_fail(h)
    require("tp.fail").raise("UnavailableTemporarily", string.format(
        "the ruleset failed %s this %s order (a bug in the ruleset; "
        .. "the server log has the details)", h.what, h.ot.name),
        { { type = 2, id = h.ot.id } })
end

local function guard(ot, what, fn)
    if guarded[fn] then
        return fn
    end
    local function handler(e)
        if type(e) == "table" and e.tp_fail then
            return e
        end
        return debug.traceback(tostring(e), 2)
    end
    local me = { ot = ot, what = what }
    local wrapper = function(...)
        -- Left set if a time limit stops the hook: then no code here runs
        -- until the limit is over, and tp.dispatch.request_failed takes it.
        local outer = running_hook
        running_hook = me
        local r = { xpcall(fn, handler, ...) }
        running_hook = outer
        if r[1] then
            return unpack(r, 2, table.maxn(r))
        end
        -- The request may have changed the game before the hook failed,
        -- without marking it yet (OrderInsert adds the order, then calls
        -- inserted): reload the whole working set, which throws away all
        -- of it (a bug's price; dispatch's undo only sees marked records).
        require("tp.model").rollback()
        if type(r[2]) == "table" then
            error(r[2], 0)
        end
        require("tp.log").error("ruleset", "order type %d (%s): the "
            .. "ruleset failed %s an order: %s", ot.id, ot.name, what, r[2])
        hook_fail(me)
    end
    guarded[wrapper] = true
    return wrapper
end

-- The ruleset hook a time limit stopped, if any (and forgets it).
function M.take_running_hook()
    local h = running_hook
    running_hook = nil
    return h
end

-- The Fail record (as fail.raise makes it) that blames hook h.
function M.hook_fail(h)
    local ok, err = pcall(hook_fail, h)
    return not ok and err or nil
end

M.objects = {}          -- id -> object type
M.object_by_name = {}   -- name -> object type
M.orders = {}           -- id -> order type
M.order_by_name = {}    -- name -> order type
M.resources = {}        -- id -> resource
M.categories = {}       -- id -> category
M.properties = {}       -- id -> property
M.property_by_name = {} -- name -> property
M.components = {}       -- id -> component
M.modtime = 0           -- modtime of all static descriptions

-- TP03 fixed object kinds (PROTOCOL.md 10.3) and their extra data.
M.TP03 = {
    universe = { type = 0, layout = "I:age" },
    galaxy = { type = 1, layout = "" },
    star_system = { type = 2, layout = "" },
    planet = { type = 3, layout = "i:owner [I:resource I:units I:minable " ..
                                  "I:inaccessible]:resources" },
    fleet = { type = 4, layout = "i:owner [I:type I:count]:ships I:damage" },
    wormhole = { type = 5, layout = "q:endx q:endy q:endz" },
}

local function check(cond, what, msg)
    if not cond then
        error("ruleset: " .. what .. ": " .. msg, 0)
    end
end

local function by_id(list, what)
    local out = {}
    for i, t in ipairs(list or {}) do
        check(type(t.id) == "number" and t.id >= 1, what .. " #" .. i,
              "needs a numeric id >= 1")
        check(not out[t.id], what .. " " .. t.id, "id used twice")
        check(type(t.name) == "string", what .. " " .. t.id, "needs a name")
        out[t.id] = t
    end
    return out
end

-- Builds everything from the ruleset table rs; raises a message naming
-- the faulty declaration.
function M.build(rs, modtime)
    local codec = require "tp.codec"
    M.modtime = modtime
    M.objects, M.object_by_name = {}, {}
    for i, t in ipairs(rs.object_types or {}) do
        local what = "object type '" .. tostring(t.name) .. "'"
        check(type(t.name) == "string", "object type #" .. i, "needs a name")
        check(not M.object_by_name[t.name], what, "declared twice")
        t.id = i - 1
        t.description = t.description or ""
        t.groups = t.groups or {}
        local flat = {}
        for g, group in ipairs(t.groups) do
            group.id = g
            group.description = group.description or ""
            for _, p in ipairs(group.params or {}) do
                local kind = params.object[p.type]
                check(kind, what, "parameter '" .. tostring(p.name) ..
                      "' has unknown type '" .. tostring(p.type) .. "'")
                p.description = p.description or ""
                flat[#flat + 1] = p
            end
        end
        t.flat = flat
        t.layout = params.build(params.object, flat)
        local k = t.tp03 or "galaxy"
        if type(k) == "string" then
            k = { kind = k }
        end
        check(M.TP03[k.kind], what, "unknown tp03 kind '" ..
              tostring(k.kind) .. "'")
        t.tp03 = k
        t.tp03_layout = codec.compile(M.TP03[k.kind].layout)
        M.objects[t.id] = t
        M.object_by_name[t.name] = t
    end
    M.orders, M.order_by_name = {}, {}
    for i, t in ipairs(rs.order_types or {}) do
        local what = "order type '" .. tostring(t.name) .. "'"
        check(type(t.name) == "string", "order type #" .. i, "needs a name")
        check(not M.order_by_name[t.name], what, "declared twice")
        t.id = i - 1
        t.description = t.description or ""
        t.params = t.params or {}
        for _, p in ipairs(t.params) do
            check(type(p.name) == "string", what, "parameter without name")
            check(params.order[p.type], what, "parameter '" .. p.name ..
                  "' has unknown type '" .. tostring(p.type) .. "'")
            p.description = p.description or ""
        end
        check(t.execute == nil or type(t.execute) == "function", what,
              "execute must be a function")
        for hook, doing in pairs(REQUEST_HOOKS) do
            if t[hook] ~= nil then
                check(type(t[hook]) == "function", what, hook ..
                      " must be a function")
                t[hook] = guard(t, doing, t[hook])
            end
        end
        for _, p in ipairs(t.params) do
            for _, k in ipairs { "choices", "possibles" } do
                if type(p[k]) == "function" then
                    p[k] = guard(t, "describing", p[k])
                end
            end
        end
        t.layout4 = params.build(params.order, t.params)
        t.layout3 = params.build(params.order, t.params, "idonly")
        t.tp03 = true
        for _, p in ipairs(t.params) do
            if params.order[p.type].tp03 == false then
                t.tp03 = false
            end
        end
        M.orders[t.id] = t
        M.order_by_name[t.name] = t
    end
    M.resources = by_id(rs.resources, "resource")
    M.categories = by_id(rs.categories, "category")
    M.properties = by_id(rs.properties, "property")
    -- A name declared by several properties means the last declared (the
    -- highest id), as tpserver-cpp's lookup by name does: properties of
    -- different categories may share a name.
    M.property_by_name = {}
    for _, id in ipairs(M.ids(M.properties)) do
        local p = M.properties[id]
        M.property_by_name[p.name] = p
    end
    M.components = by_id(rs.components, "component")
    for id, c in pairs(M.components) do
        for pname in pairs(c.properties or {}) do
            check(M.property_by_name[pname], "component " .. id,
                  "unknown property '" .. tostring(pname) .. "'")
        end
    end
end

-- Sorted ids of a registry table.
function M.ids(registry)
    local ids = {}
    for id in pairs(registry) do
        ids[#ids + 1] = id
    end
    table.sort(ids)
    return ids
end

return M
