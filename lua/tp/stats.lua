-- tp.stats: the server's statistics: metrics kept in Lua (counters,
-- gauges, histograms, with labels), the core's counters (tp.sys.stats,
-- tp.core.stats), and their rendering as Prometheus text.
--
--   local logins = stats.counter("tpserver_logins_total",
--                                "Login attempts, by result.")
--   logins:inc(1, { result = "ok" })
--   local turn_time = stats.histogram("tpserver_turn_duration_seconds",
--                                     "Turn processing time.", BOUNDS)
--   turn_time:observe(0.42)
--   stats.collector(function(out) ... end)  -- computed at render time
--   stats.render()    -> Prometheus text (version 0.0.4)
--   stats.snapshot()  -> { [name] = value or { [labels] = value } }
--
-- Registering a name twice returns the same metric, so modules may be
-- reloaded. Names follow Prometheus: tpserver_<what>_<unit>[_total].

local core = require "tp.core"
local sys = require "tp.sys"

local M = {}

local metrics = {}      -- name -> metric
local order = {}        -- names in registration order
local collectors = {}   -- functions(out) adding computed samples

local Metric = {}
Metric.__index = Metric

-- Label table -> '{a="x",b="y"}' (sorted), "" for none.
local function escape(v)
    return (tostring(v):gsub('[\\"\n]', function(c)
        return c == "\n" and "\\n" or "\\" .. c
    end))
end

local function label_key(labels)
    if not labels or next(labels) == nil then
        return ""
    end
    local keys = {}
    for k in pairs(labels) do
        keys[#keys + 1] = k
    end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do
        parts[i] = k .. '="' .. escape(labels[k]) .. '"'
    end
    return "{" .. table.concat(parts, ",") .. "}"
end
M.label_key = label_key

local function register(name, help, kind, bounds)
    local m = metrics[name]
    if m then
        assert(m.kind == kind, "metric " .. name .. " is a " .. m.kind)
        return m
    end
    assert(name:match("^[%a_:][%w_:]*$"), "bad metric name " .. name)
    m = setmetatable({ name = name, help = help or "", kind = kind,
                       values = {}, bounds = bounds }, Metric)
    metrics[name] = m
    order[#order + 1] = name
    return m
end

function M.counter(name, help)
    return register(name, help, "counter")
end

function M.gauge(name, help)
    return register(name, help, "gauge")
end

-- bounds: ascending upper bounds (the +Inf bucket is implied). Without
-- labels it shows (zero) before the first observation.
function M.histogram(name, help, bounds)
    local m = register(name, help, "histogram", bounds)
    if next(m.values) == nil then
        local h = { counts = {}, count = 0, sum = 0 }
        for i = 1, #bounds + 1 do
            h.counts[i] = 0
        end
        m.values[""] = h
    end
    return m
end

function Metric:inc(n, labels)
    local k = label_key(labels)
    self.values[k] = (self.values[k] or 0) + (n or 1)
end

function Metric:set(v, labels)
    self.values[label_key(labels)] = v
end

function Metric:get(labels)
    return self.values[label_key(labels)]
end

function Metric:observe(v, labels)
    local k = label_key(labels)
    local h = self.values[k]
    if not h then
        h = { counts = {}, count = 0, sum = 0 }
        for i = 1, #self.bounds + 1 do
            h.counts[i] = 0
        end
        self.values[k] = h
    end
    local i = 1
    while self.bounds[i] and v > self.bounds[i] do
        i = i + 1
    end
    h.counts[i] = h.counts[i] + 1
    h.count = h.count + 1
    h.sum = h.sum + v
end

-- Adds fn(out) to the render: out(name, help, kind, samples) where
-- samples is an array of { labels_table_or_nil, value } (histograms:
-- value = { bounds =, counts = (per bucket), count =, sum = }).
function M.collector(fn)
    collectors[#collectors + 1] = fn
end

-- ------------------------------------------------------------ rendering

local function num(v)
    if v ~= v then
        return "NaN"
    elseif v == math.huge then
        return "+Inf"
    elseif v == -math.huge then
        return "-Inf"
    elseif v == math.floor(v) and math.abs(v) < 1e15 then
        return string.format("%d", v)
    end
    return string.format("%.9g", v)
end

-- Appends the lines of one histogram sample to lines.
local function histogram_lines(lines, name, key, h, bounds)
    local inner = key:sub(2, -2)          -- labels without braces
    local sep = inner == "" and "" or ","
    local cum = 0
    for i = 1, #bounds + 1 do
        cum = cum + (h.counts[i] or 0)
        local le = bounds[i] and num(bounds[i]) or "+Inf"
        lines[#lines + 1] = string.format('%s_bucket{%s%sle="%s"} %s', name,
                                          inner, sep, le, num(cum))
    end
    lines[#lines + 1] = name .. "_sum" .. key .. " " .. num(h.sum)
    lines[#lines + 1] = name .. "_count" .. key .. " " .. num(h.count)
end

local function family(lines, name, help, kind, samples, bounds)
    lines[#lines + 1] = "# HELP " .. name .. " " .. help:gsub("\n", " ")
    lines[#lines + 1] = "# TYPE " .. name .. " " .. kind
    table.sort(samples, function(a, b) return a[1] < b[1] end)
    for _, s in ipairs(samples) do
        if kind == "histogram" then
            histogram_lines(lines, name, s[1], s[2], s[2].bounds or bounds)
        else
            lines[#lines + 1] = name .. s[1] .. " " .. num(s[2])
        end
    end
end

-- The whole exposition, in Prometheus text format.
function M.render()
    local lines = {}
    for _, fn in ipairs(collectors) do
        fn(function(name, help, kind, samples)
            local keyed = {}
            for i, s in ipairs(samples) do
                keyed[i] = { label_key(s[1]), s[2] }
            end
            family(lines, name, help, kind, keyed)
        end)
    end
    for _, name in ipairs(order) do
        local m = metrics[name]
        local samples = {}
        for k, v in pairs(m.values) do
            samples[#samples + 1] = { k, v }
        end
        family(lines, name, m.help, m.kind, samples, m.bounds)
    end
    lines[#lines + 1] = ""
    return table.concat(lines, "\n")
end

-- A plain table of every sample, for the console: name -> value, or
-- name -> { [labels] = value } when the metric has labels.
function M.snapshot()
    local out = {}
    local function put(name, key, v)
        if key == "" then
            out[name] = v
        else
            out[name] = out[name] or {}
            out[name][key] = v
        end
    end
    for _, fn in ipairs(collectors) do
        fn(function(name, _, _, samples)
            for _, s in ipairs(samples) do
                put(name, label_key(s[1]), s[2])
            end
        end)
    end
    for _, name in ipairs(order) do
        for k, v in pairs(metrics[name].values) do
            put(name, k, v)
        end
    end
    return out
end

-- ------------------------------------------------------------ the core

-- Names for frame types and Fail codes, from the layout tables.
local function frame_name(proto, t, other)
    if t == other then
        return "other"
    end
    return proto.name[t] or ("type_" .. t)
end

local started = core.now()

M.collector(function(out)
    local proto = require "tp.proto"
    local s = sys.stats()
    local c = core.stats()
    out("tpserver_start_time_seconds", "When the server started (Unix "
        .. "time).", "gauge", { { nil, math.floor(started) } })
    out("tpserver_info", "The server's version.", "gauge",
        { { { version = core.version }, 1 } })

    local open, accepted, refused, tls = {}, {}, {}, {}
    for _, l in ipairs(c.listeners) do
        local labels = { kind = l.kind, address = l.host .. ":" .. l.port }
        open[#open + 1] = { labels, l.open }
        accepted[#accepted + 1] = { labels, l.accepted }
        refused[#refused + 1] = { labels, l.refused }
        if l.kind == "tps" or l.kind == "https" then
            for result, n in pairs { ok = l.tls_done, failed = l.tls_failed } do
                tls[#tls + 1] = { { kind = l.kind, address = labels.address,
                                    result = result }, n }
            end
        end
    end
    out("tpserver_connections", "Connections open now.", "gauge",
        { { nil, c.connections } })
    out("tpserver_listener_connections", "Connections open now, by "
        .. "listener.", "gauge", open)
    out("tpserver_connections_accepted_total", "Connections accepted, by "
        .. "listener.", "counter", accepted)
    out("tpserver_connections_refused_total", "Connections refused, by "
        .. "listener.", "counter", refused)
    if #tls > 0 then
        out("tpserver_tls_handshakes_total", "TLS handshakes, by listener "
            .. "and result.", "counter", tls)
    end

    local fin, fout, fails = {}, {}, {}
    for t, n in pairs(s.frames_in) do
        fin[#fin + 1] = { { type = frame_name(proto, t, s.other_type) }, n }
    end
    for t, n in pairs(s.frames_out) do
        fout[#fout + 1] = { { type = frame_name(proto, t, s.other_type) }, n }
    end
    local code_names = {}
    for name, code in pairs(proto.FAIL) do
        code_names[code] = name
    end
    for code, n in pairs(s.fails) do
        local name = code == s.other_code and "other" or
                     code_names[code] or ("code_" .. code)
        fails[#fails + 1] = { { code = name }, n }
    end
    out("tpserver_frames_received_total", "Frames received, by type.",
        "counter", fin)
    out("tpserver_frames_sent_total", "Frames sent, by type.", "counter",
        fout)
    out("tpserver_fails_sent_total", "Fail frames sent, by code.",
        "counter", fails)
    out("tpserver_received_bytes_total", "Bytes read from clients.",
        "counter", { { nil, s.bytes_in } })
    out("tpserver_sent_bytes_total", "Bytes written to clients.",
        "counter", { { nil, s.bytes_out } })
    out("tpserver_request_duration_seconds", "Time from a request to its "
        .. "reply.", "histogram", { { nil, s.request } })

    local lines = {}
    for level, n in pairs(s.log_lines) do
        lines[#lines + 1] = { { level = level }, n }
    end
    out("tpserver_log_lines_total", "Log lines written, by level.",
        "counter", lines)
    out("tpserver_syslog_dropped_total", "Log messages syslog did not "
        .. "take.", "counter", { { nil, s.syslog_dropped } })
    out("tpserver_lua_memory_bytes", "Memory used by the Lua state.",
        "gauge", { { nil, c.lua_memory } })
    out("tpserver_connection_objects", "Connections not yet freed, "
        .. "closing ones included.", "gauge", { { nil, c.conn_objects } })
    out("tpserver_connection_memory_bytes", "Memory the connections hold "
        .. "(structures, buffers, unsent output).", "gauge",
        { { nil, c.conn_bytes } })
end)

return M
