-- tp.ruleset: finding and loading a ruleset.
--
-- A ruleset is a folder rulesets/<name>/ whose init.lua returns a table
-- { name, version, description, ... hooks }. Its files run in their own
-- environment built from an allow-list (no io, os.execute, load or debug),
-- with chunk names that point at the real file so errors name it and the
-- line. The server core never names a ruleset: the configuration does.
--
-- Time limits hold in ruleset code (rulesets/README.md, "What a ruleset
-- may call"): its files are kept out of LuaJIT's trace compiler, whose
-- compiled loops run no hooks; and they load under a budget, whose push
-- puts in the string and table functions that heed the limits
-- (core/budget_lib.c) if no budget has yet, so that even a ruleset that
-- keeps `local find = string.find` gets those.

local M = {}

local core = require "tp.core"
local jit = require "jit"

-- Seconds a ruleset's files may take to load (they declare; the universe
-- is made later, in setup).
local LOAD_LIMIT = 10

-- A ruleset file, loaded: never compiled to a trace, with its functions
-- and every function made in them (jit.off with true: recursively).
local function load_ruleset_file(path)
    local chunk, err = loadfile(path)
    if chunk then
        jit.off(chunk, true)
    end
    return chunk, err
end

local ALLOWED = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "select",
    "tonumber", "tostring", "type", "unpack", "xpcall", "rawget", "rawset",
    "rawequal", "setmetatable", "getmetatable",
}

local function sandbox(dir, home)
    local env = {}
    for _, k in ipairs(ALLOWED) do
        env[k] = _G[k]
    end
    env.math = setmetatable({}, { __index = math })
    env.string = setmetatable({}, { __index = string })
    env.table = setmetatable({}, { __index = table })
    env.os = { time = os.time, clock = os.clock, date = os.date }
    env.bit = setmetatable({}, { __index = require("bit") })
    env.print = function(...)
        local parts = {}
        for i = 1, select("#", ...) do
            parts[#parts + 1] = tostring((select(i, ...)))
        end
        require("tp.log").info("ruleset", "%s", table.concat(parts, " "))
    end
    env._G = env
    -- read_file("map.json"): a data file of the ruleset's own folder (a
    -- tech tree, a map), read whole; json.decode/encode for such files.
    env.read_file = function(name)
        if type(name) ~= "string" or not name:match("^[%w_%-/]+%.%w+$")
           or name:find("%.%.") then
            error("read_file: bad file name '" .. tostring(name) .. "'", 2)
        end
        local f, err = io.open(dir .. "/" .. name, "rb")
        if not f then
            error("read_file: " .. tostring(err), 2)
        end
        local text = f:read("*a")
        f:close()
        return text
    end
    local cjson = require "cjson"
    env.json = {
        decode = function(s)
            local ok, v = pcall(cjson.decode, s)
            if not ok then
                error("json.decode: " .. tostring(v), 2)
            end
            return v
        end,
        encode = cjson.encode,
        null = cjson.null,
    }
    -- include("file.lua") runs another file of the same ruleset;
    -- include("common/file.lua") one of rulesets/common/, the code that
    -- rulesets share (fleets, movement), whatever folder the ruleset is in.
    env.include = function(name)
        if type(name) ~= "string" or not name:match("^[%w_%-/]+%.lua$") or
           name:find("%.%.") then
            error("include: bad file name '" .. tostring(name) .. "'", 2)
        end
        local path = dir .. "/" .. name
        local shared = name:match("^common/(.+)$")
        if shared then
            path = home .. "/rulesets/common/" .. shared
        end
        local chunk, err = load_ruleset_file(path)
        if not chunk then
            error(err, 2)
        end
        setfenv(chunk, env)
        return chunk()
    end
    return env
end

-- The ruleset's computer players, rulesets/<name>/ai.lua (rulesets/
-- README.md, "AI players"), when there is one: in an environment of its
-- own, so that it shares nothing with the ruleset's files but what it
-- includes itself. Returns the module, nil (no ai.lua), or nil, message.
local function load_ai(dir, home, name)
    local path = dir .. "/ai.lua"
    local f = io.open(path, "r")
    if not f then
        return nil
    end
    f:close()
    local chunk, err = load_ruleset_file(path)
    if not chunk then
        return nil, "ruleset " .. name .. ": " .. tostring(err)
    end
    setfenv(chunk, sandbox(dir, home))
    local ok, ai = core.time_limit(LOAD_LIMIT, "ruleset load", chunk)
    if not ok then
        return nil, "ruleset " .. name .. ": ai.lua failed to load: " ..
                    tostring(ai)
    end
    if type(ai) ~= "table" or type(ai.play) ~= "function" or
       type(ai.levels) ~= "table" or #ai.levels == 0 then
        return nil, "ruleset " .. name .. ": ai.lua must return a table "
                    .. "with a function play and a list of levels"
    end
    return ai
end

-- Loads rulesets/<name>/init.lua below home. Returns the ruleset table,
-- or nil and a message naming the file and line.
function M.load(home, name)
    local dir
    if name:find("/", 1, true) then
        -- A path to a ruleset folder (a modder's work in progress).
        dir = name:gsub("/+$", "")
        name = dir:match("([^/]+)$")
    elseif name:match("^[%w_%-]+$") then
        dir = home .. "/rulesets/" .. name
    else
        return nil, "bad ruleset name '" .. name .. "'"
    end
    local path = dir .. "/init.lua"
    local chunk, err = load_ruleset_file(path)
    if not chunk then
        local f = io.open(path, "r")
        if not f then
            return nil, "no ruleset '" .. name .. "' (" .. path ..
                        " not found)"
        end
        f:close()
        return nil, "ruleset " .. name .. ": " .. tostring(err)
    end
    setfenv(chunk, sandbox(dir, home))
    -- Under a budget of its own (whose push puts the limited library in
    -- first, if no budget has yet): a file that loops at load fails the
    -- start, or the console's ruleset check, instead of hanging it.
    local ok, rs = core.time_limit(LOAD_LIMIT, "ruleset load", chunk)
    if not ok then
        return nil, "ruleset " .. name .. " failed to load: " .. tostring(rs)
    end
    if type(rs) ~= "table" or type(rs.name) ~= "string" or
       type(rs.version) ~= "string" then
        return nil, "ruleset " .. name .. ": init.lua must return a table "
                    .. "with string fields name and version"
    end
    rs.folder = name
    local ai, aerr = load_ai(dir, home, name)
    if aerr then
        return nil, aerr
    end
    rs.ai = ai
    return rs
end

return M
