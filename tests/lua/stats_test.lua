-- tp.stats: metrics kept in Lua and their Prometheus text.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local stats = require "tp.stats"

local c = stats.counter("test_things_total", "Things, by colour.")
c:inc(1, { colour = "red" })
c:inc(2, { colour = "red" })
c:inc(1, { colour = 'say "hi"\\\n' })
t.is(c:get { colour = "red" }, 3, "counter adds up")
t.ok(stats.counter("test_things_total") == c, "registering again returns "
     .. "the same metric")
t.ok(not pcall(stats.gauge, "test_things_total"), "a name keeps its kind")
t.ok(not pcall(stats.counter, "bad name"), "names are checked")

local g = stats.gauge("test_level", "A level.")
g:set(2.5)

local h = stats.histogram("test_seconds", "Durations.", { 0.1, 1 })
local empty = stats.render()
t.ok(empty:find('test_seconds_bucket{le="+Inf"} 0\n', 1, true) and
     empty:find("\ntest_seconds_count 0\n", 1, true),
     "a histogram shows zero before its first observation")
h:observe(0.05)
h:observe(0.1)
h:observe(0.5)
h:observe(7)

local text = stats.render()
local function has(s, name)
    t.ok(text:find(s, 1, true), name, s)
end
has('# HELP test_things_total Things, by colour.\n'
    .. '# TYPE test_things_total counter\n', "HELP and TYPE lines")
has('test_things_total{colour="red"} 3\n', "labelled counter sample")
has('test_things_total{colour="say \\"hi\\"\\\\\\n"} 1\n',
    "label values escape quotes, backslashes and newlines")
has("test_level 2.5\n", "gauge sample")
has('test_seconds_bucket{le="0.1"} 2\n'
    .. 'test_seconds_bucket{le="1"} 3\n'
    .. 'test_seconds_bucket{le="+Inf"} 4\n'
    .. 'test_seconds_sum 7.65\n'
    .. 'test_seconds_count 4\n', "histogram: cumulative buckets, sum, count")
has("# TYPE tpserver_request_duration_seconds histogram\n",
    "the core's metrics are there too")
has('tpserver_log_lines_total{level="error"}', "log lines by level")
t.ok(text:sub(-1) == "\n", "the text ends with a newline")

-- Every line is a comment or "name{labels} value".
local bad = {}
for line in text:gmatch("[^\n]+") do
    if not line:match("^# ") and
       not line:match('^[%a_:][%w_:]*{?.-}? [%d%.e%+%-]+$') and
       not line:match('^[%a_:][%w_:]*{.*} [%d%.e%+%-]+$') then
        bad[#bad + 1] = line
    end
end
t.ok(#bad == 0, "every line parses", table.concat(bad, "\n"))

local snap = stats.snapshot()
t.is(snap.test_level, 2.5, "snapshot: gauge")
t.is(snap.test_things_total['{colour="red"}'], 3, "snapshot: labelled")

return t.done()
