-- tp.config: reading, overriding and checking the configuration.
--
-- The configuration file (tpserver.lua) is a Lua chunk run in a small
-- sandbox; it returns a table (or sets globals, which are collected).
-- Every key has a type and a default here; an unknown key or a wrong type
-- is a start-up error naming the key. Command-line flags and --set
-- key=value override the file.

local M = {}

-- The schema: every key the server reads, with its type and default.
-- Keep tpserver.lua's comments and the README in step with this table.
M.schema = {
    data = { type = "string", default = "var",
             doc = "data directory (the LevelDB database)" },
    bind = { type = "string", default = "127.0.0.1",
             doc = "address of the default TP listener" },
    port = { type = "integer", default = 6923, min = 1, max = 65535,
             doc = "port of the default TP listener" },
    listeners = { type = "table", default = false,
                  doc = "explicit listener list; replaces bind/port" },
    sync = { type = "boolean", default = false,
             doc = "flush every write to the device (power-loss safety); "
                   .. "off: writes reach the OS (process-crash safety)" },
    cache_size = { type = "integer", default = 8 * 1048576, min = 0,
                   max = 64 * 1073741824, doc = "LevelDB block cache, bytes" },
    write_buffer_size = { type = "integer", default = 4 * 1048576,
                          min = 65536, max = 1073741824,
                          doc = "LevelDB write buffer, bytes" },
    compression = { type = "string", default = "snappy",
                    oneof = { "snappy", "none" },
                    doc = "LevelDB block compression" },
    history_turns = { type = "integer", default = 10, min = 0,
                      max = 100000,
                      doc = "turns of object history kept" },
    ruleset = { type = "string", default = "minisec",
                doc = "ruleset folder under rulesets/" },
    ruleset_settings = { type = "table", default = {},
                         doc = "settings passed to the ruleset" },
    game_name = { type = "string", default = "tp",
                  doc = "short game name (clients log in as user@name)" },
    game_longname = { type = "string", default = "Thousand Parsec game",
                      doc = "long, human-readable game name" },
    game_comment = { type = "string", default = "",
                     doc = "comment shown in the game listing" },
    admin_email = { type = "string", default = "",
                    doc = "admin contact shown in the game listing" },
    media_base = { type = "string", default = "",
                   doc = "base URL of the game media for clients" },
    allow_account_creation = { type = "boolean", default = true,
                               doc = "clients may create accounts" },
    auto_create_accounts = { type = "boolean", default = false,
                             doc = "an unknown login name creates the account" },
    password_iterations = { type = "integer", default = 100000, min = 1000,
                            max = 10000000,
                            doc = "PBKDF2-SHA256 iterations for new passwords" },
    max_frame_size = { type = "integer", default = 1048576, min = 4096,
                       max = 64 * 1048576,
                       doc = "largest frame in bytes, header included" },
    max_output = { type = "integer", default = 16 * 1048576,
                   min = 65536, max = 1024 * 1048576,
                   doc = "bytes queued to one client before it is dropped" },
    client_write_timeout = { type = "number", default = 60, min = 0.1,
                             max = 86400,
                             doc = "seconds a client may leave its replies "
                                   .. "unread (past the high mark)" },
    log_level = { type = "string", default = "info",
                  oneof = { "error", "warning", "info", "debug", "trace" },
                  doc = "default log level" },
    log_modules = { type = "table", default = {},
                    doc = "per-module log levels, e.g. { net = 'debug' }" },
    turn_mode = { type = "string", default = "players_finished",
                  oneof = { "fixed", "players_finished", "manual" },
                  doc = "when a turn ends" },
    turn_length = { type = "integer", default = 600, min = 0,
                    max = 365 * 86400,
                    doc = "seconds a turn lasts at most (0: no limit)" },
}

local function copy(v)
    if type(v) ~= "table" then
        return v
    end
    local t = {}
    for k, x in pairs(v) do
        t[k] = copy(x)
    end
    return t
end

-- Runs the configuration file in a sandbox; returns its table.
function M.read_file(path)
    local chunk, err = loadfile(path)
    if not chunk then
        return nil, "cannot read configuration: " .. tostring(err)
    end
    local env = {
        math = math, string = string, table = table, tonumber = tonumber,
        tostring = tostring, pairs = pairs, ipairs = ipairs, type = type,
        error = error, assert = assert, select = select, next = next,
        unpack = unpack, pcall = pcall,
        os = { getenv = os.getenv, time = os.time },
    }
    setfenv(chunk, env)
    local ok, result = pcall(chunk)
    if not ok then
        return nil, "error in configuration " .. path .. ": " ..
                    tostring(result)
    end
    if result == nil then
        result = {}
        for k, v in pairs(env) do
            if M.schema[k] then
                result[k] = v
            end
        end
    end
    if type(result) ~= "table" then
        return nil, "configuration " .. path .. " must return a table"
    end
    return result
end

-- Parses a --set value: numbers, true/false, else the string itself.
local function parse_value(s)
    if s == "true" then return true end
    if s == "false" then return false end
    local n = tonumber(s)
    if n then return n end
    return s
end

-- Applies "key=value" (key may be dotted: ruleset_settings.seed=7).
function M.apply_set(cfg, item)
    local key, value = item:match("^([%w_%.]+)=(.*)$")
    if not key then
        return nil, "--set wants key=value, got '" .. item .. "'"
    end
    local t = cfg
    local parts = {}
    for part in key:gmatch("[^%.]+") do
        parts[#parts + 1] = part
    end
    for i = 1, #parts - 1 do
        if type(t[parts[i]]) ~= "table" then
            t[parts[i]] = {}
        end
        t = t[parts[i]]
    end
    t[parts[#parts]] = parse_value(value)
    return true
end

-- Checks types and ranges; fills defaults. Returns cfg or nil, message.
function M.check(raw)
    local cfg = {}
    for k, v in pairs(raw) do
        local spec = M.schema[k]
        if not spec then
            return nil, "unknown configuration key '" .. tostring(k) .. "'"
        end
        local want = spec.type
        local ok
        if want == "integer" then
            ok = type(v) == "number" and v == math.floor(v)
        else
            ok = type(v) == want
        end
        if not ok then
            return nil, string.format("configuration key '%s' must be %s %s, "
                .. "got %s", k, want == "integer" and "an" or "a", want,
                type(v))
        end
        if spec.min and v < spec.min or spec.max and v > spec.max then
            return nil, string.format("configuration key '%s' must be "
                .. "between %d and %d", k, spec.min, spec.max)
        end
        if spec.oneof then
            local found = false
            for _, o in ipairs(spec.oneof) do
                found = found or o == v
            end
            if not found then
                return nil, string.format("configuration key '%s' must be "
                    .. "one of %s", k, table.concat(spec.oneof, ", "))
            end
        end
        cfg[k] = v
    end
    for k, spec in pairs(M.schema) do
        if cfg[k] == nil then
            cfg[k] = copy(spec.default)
        end
    end
    if cfg.listeners then
        for i, l in ipairs(cfg.listeners) do
            if type(l) ~= "table" or type(l.port) ~= "number" then
                return nil, "listeners[" .. i .. "] needs a port"
            end
            l.kind = l.kind or "tp"
            l.host = l.host or cfg.bind
            if l.kind ~= "tp" then
                return nil, "listeners[" .. i .. "]: kind '" ..
                    tostring(l.kind) .. "' is not supported (only tp)"
            end
        end
    else
        cfg.listeners = { { kind = "tp", host = cfg.bind, port = cfg.port } }
    end
    for module, level in pairs(cfg.log_modules) do
        if type(level) ~= "string" then
            return nil, "log_modules." .. tostring(module) ..
                        " must be a level name"
        end
    end
    return cfg
end

-- Finds the configuration file: -c FILE, else tpserver.lua in the server's
-- home (a source tree), else etc/tpserver/tpserver.lua next to the
-- installation, else /etc/tpserver/tpserver.lua. Returns path or nil.
function M.find(args)
    if args.config then
        return args.config
    end
    local candidates = {
        args.home .. "/tpserver.lua",
        args.home .. "/../../etc/tpserver/tpserver.lua",
        "/etc/tpserver/tpserver.lua",
    }
    for _, p in ipairs(candidates) do
        local f = io.open(p, "r")
        if f then
            f:close()
            return p
        end
    end
    return nil
end

-- Reads the file, applies flags and --set items, checks the result.
-- Returns cfg, path or nil, message.
function M.load(args)
    local path = M.find(args)
    local raw = {}
    if path then
        local t, err = M.read_file(path)
        if not t then
            return nil, err
        end
        raw = t
    elseif args.config then
        return nil, "configuration file " .. args.config .. " not found"
    end
    raw = copy(raw)
    for _, item in ipairs(args.set or {}) do
        local ok, err = M.apply_set(raw, item)
        if not ok then
            return nil, err
        end
    end
    for k, v in pairs(args.overrides or {}) do
        raw[k] = v
    end
    -- A flag for bind/port adjusts the default listener, not a list.
    local cfg, err = M.check(raw)
    if not cfg then
        return nil, err
    end
    if raw.listeners and (args.overrides.port or args.overrides.bind) then
        for _, l in ipairs(cfg.listeners) do
            if l.kind == "tp" then
                l.port = args.overrides.port or l.port
                l.host = args.overrides.bind or l.host
                break
            end
        end
    end
    return cfg, path
end

-- A readable dump of the effective configuration (sorted keys).
function M.dump(cfg)
    local function ser(v, indent)
        if type(v) == "table" then
            local keys = {}
            for k in pairs(v) do keys[#keys + 1] = k end
            table.sort(keys, function(a, b)
                return tostring(a) < tostring(b)
            end)
            if #keys == 0 then return "{}" end
            local out = { "{" }
            for _, k in ipairs(keys) do
                local key = type(k) == "number" and "" or (tostring(k) .. " = ")
                out[#out + 1] = indent .. "    " .. key ..
                                ser(v[k], indent .. "    ") .. ","
            end
            out[#out + 1] = indent .. "}"
            return table.concat(out, "\n")
        elseif type(v) == "string" then
            return string.format("%q", v)
        end
        return tostring(v)
    end
    return "return " .. ser(cfg, "")
end

return M
