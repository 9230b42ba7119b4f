-- core/budget_lib.c: the string and table functions that heed time
-- limits. First they are compared with LuaJIT's own (which the server
-- keeps in the registry when it puts ours in) on generated cases: the same results and the
-- same errors. Then each way C code could outrun a limit is run under
-- core.time_limit and must be stopped at about the limit: backtracking
-- patterns (find, a method call, gmatch, gsub), sorting, concatenation,
-- and, through the watchdog, long single instructions and C calls that do
-- return (`..` of big strings, table.insert into a big table).
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local core = require "tp.core"

-- LuaJIT's own, which the server replaced before any Lua ran.
local native = debug.getregistry()["tp.budget.native"]
t.ok(type(native) == "table" and string.find ~= native.find and
     string.gsub ~= native.gsub and table.sort ~= native.sort and
     table.concat ~= native.concat and type(native.find) == "function",
     "the library functions are replaced from the start")
t.ok(("").find == string.find, "strings' methods are the replaced ones")
local ours = {
    find = string.find, match = string.match, gmatch = string.gmatch,
    gsub = string.gsub, rep = string.rep, concat = table.concat,
    sort = table.sort,
}

-- ------------------------------------------------------------ same results

-- A value list as text, for comparing and for the diagnostics.
local function show(...)
    local out = {}
    for i = 1, select("#", ...) do
        local v = select(i, ...)
        out[#out + 1] = type(v) == "string" and string.format("%q", v)
                        or tostring(v)
    end
    return native.concat(out, ", ")
end

-- Runs fn under pcall on each implementation and compares.
local mismatches, cases = 0, 0
local function same(name, call)
    cases = cases + 1
    local a = show(pcall(call, native))
    local b = show(pcall(call, ours))
    if a ~= b then
        mismatches = mismatches + 1
        if mismatches <= 10 then
            print("# " .. name .. ":\n#   LuaJIT: " .. a ..
                  "\n#   ours:   " .. b)
        end
    end
end

math.randomseed(14)
local random = math.random
local SUBJECT_CHARS = { "a", "b", "a", "b", "c", "(", ")", "%", ".", "-", " ",
                        "\0", "1", "x", "[", "]", "^", "$", "\n", "A", "\200" }
local function subject()
    local out = {}
    for i = 1, random(0, 14) do
        out[i] = SUBJECT_CHARS[random(#SUBJECT_CHARS)]
    end
    return native.concat(out)
end

local CLASSES = { "a", "b", ".", "%a", "%d", "%s", "%w", "%p", "%l", "%u",
                  "%x", "%c", "%g", "%z", "%A", "%S", "%W", "%%", "%(", "%.",
                  "[ab]", "[^ab]", "[a-c]", "[%a%d]", "[]]", "[^]]", "[a-]",
                  "[%]]", "[-a]", "\0", "%q", "\200", "[\128-\255]" }
local SUFFIXES = { "", "", "", "*", "+", "-", "?" }
local function item(depth)
    local r = random(20)
    if r == 1 and depth < 3 then
        return "(" .. item(depth + 1) .. item(depth + 1) .. ")"
    elseif r == 2 then
        return "()"
    elseif r == 3 then
        return "%b()"
    elseif r == 4 then
        return "%f[%w]"
    elseif r == 5 then
        return "%" .. random(0, 3)
    end
    return CLASSES[random(#CLASSES)] .. SUFFIXES[random(#SUFFIXES)]
end
local BROKEN = { "%", "[a", "(", ")", "%b", "%ba", "%f", "%fa", "[%", "(()",
                 "%1", "a)", "[^", "((a)", "%g" }
local function pattern()
    local out = {}
    if random(6) == 1 then
        out[1] = "^"
    end
    for _ = 1, random(0, 5) do
        out[#out + 1] = item(0)
    end
    if random(8) == 1 then
        out[#out + 1] = "$"
    end
    if random(10) == 1 then
        out[#out + 1] = BROKEN[random(#BROKEN)]
    end
    return native.concat(out)
end
local INITS = { "none", 1, 2, 0, -1, -3, 5, 100, -100, 2.7, "2", 1e10, -1e10 }

for _ = 1, 6000 do
    local s, p = subject(), pattern()
    local init = INITS[random(#INITS)]
    if init == "none" then
        init = nil
    end
    local plain = random(4) == 1
    same("find " .. show(s, p, init, plain), function(f)
        return f.find(s, p, init, plain)
    end)
    same("match " .. show(s, p, init), function(f)
        return f.match(s, p, init)
    end)
    same("gmatch " .. show(s, p), function(f)
        local out, n = {}, 0
        for a, b in f.gmatch(s, p) do
            n = n + 1
            out[#out + 1] = show(a, b)
            if n > 40 then
                break
            end
        end
        return native.concat(out, "; ")
    end)
end

local TEMPLATES = { "", "x", "%0", "%1", "%2", "<%1|%0>", "%%", "%", "%x",
                    "a%", "%9", 7 }
local REPL_TABLE = { a = "A", b = false, c = 12, ["()"] = "paren" }
local REPL_FNS = {
    function(...) return select("#", ...) .. "" end,
    function() return nil end,
    function() return false end,
    function(a) return a end,
    function() return 1.5 end,
    function() return {} end,
}
for _ = 1, 4000 do
    local s, p = subject(), pattern()
    local r = random(3)
    local repl = r == 1 and TEMPLATES[random(#TEMPLATES)]
                 or r == 2 and REPL_TABLE or REPL_FNS[random(#REPL_FNS)]
    local n = random(5) == 1 and random(-1, 3) or nil
    same("gsub " .. show(s, p, repl, n), function(f)
        return f.gsub(s, p, repl, n)
    end)
end
same("gsub with a bad repl", function(f) return f.gsub("abc", "b", true) end)
same("gsub with no repl", function(f) return f.gsub("abc", "b") end)
same("find without a pattern", function(f) return f.find("abc") end)
same("find of a number", function(f) return f.find(12345, 34) end)
same("gmatch with ^", function(f)
    local out = {}
    for m in f.gmatch("^a^a", "^a") do
        out[#out + 1] = m
    end
    return native.concat(out, ",")
end)
same("deep pattern", function(f)
    return f.find(native.rep("a", 300), native.rep("a?", 300))
end)
same("many captures", function(f)
    return f.find("aaaa", native.rep("(a*)", 33))
end)

for _ = 1, 500 do
    local s = subject()
    local n = random(-2, 6)
    local sep = random(3) == 1 and subject() or nil
    same("rep " .. show(s, n, sep), function(f) return f.rep(s, n, sep) end)
end
same("rep with a bad count", function(f) return f.rep("x", "y") end)
same("rep of a number", function(f) return f.rep(12, 3, 4) end)

local ITEMS = { "a", "", "bc", 1, 0.1, -0.0, 1e15, 2^53, 1 / 0, 123456789012,
                3.14159265358979, -7, 0 / 0, -(0 / 0), -1 / 0, 1e14,
                1e14 - 1, -99999999999999, 2^63, 1e-5, 123.456, 1 / 3 }
for _ = 1, 500 do
    local list = {}
    for i = 1, random(0, 8) do
        list[i] = ITEMS[random(#ITEMS)]
    end
    if random(10) == 1 then
        list[random(#list + 1)] = ({ true, {}, print })[random(3)]
    end
    local sep = random(2) == 1 and ({ ", ", "", 0 })[random(3)] or nil
    local i = random(4) == 1 and random(-1, 4) or nil
    local j = random(4) == 1 and random(-1, 9) or nil
    same("concat " .. show(sep, i, j), function(f)
        return f.concat(list, sep, i, j)
    end)
end
same("concat of no table", function(f) return f.concat("x") end)

local function sorted_copy(f, list, cmp)
    local copy = {}
    for i = 1, #list do
        copy[i] = list[i]
    end
    f.sort(copy, cmp)
    return show(unpack(copy))
end
for round = 1, 400 do
    local list, n = {}, random(0, round < 300 and 40 or 3000)
    local kind = random(4)
    for i = 1, n do
        list[i] = kind == 1 and random(-50, 50) or
                  kind == 2 and random() or
                  kind == 3 and subject() or
                  random(5)
    end
    same("sort of " .. n, function(f) return sorted_copy(f, list) end)
    same("sort of " .. n .. " descending", function(f)
        return sorted_copy(f, list, function(a, b) return a > b end)
    end)
end
t.is(mismatches, 0, "the same results and errors as LuaJIT in " .. cases
     .. " generated cases")

-- Sorting: what cannot be compared to LuaJIT case by case.
local function is_sorted(list, less)
    for i = 2, #list do
        if less(list[i], list[i - 1]) then
            return false
        end
    end
    return true
end
local recs = {}
for i = 1, 2000 do
    recs[i] = { key = random(20), id = i }
end
table.sort(recs, function(a, b) return a.key < b.key end)
t.ok(is_sorted(recs, function(a, b) return a.key < b.key end),
     "sort with a comparison function")
local mixed = { 3, "a", 2 }
t.ok(not pcall(table.sort, mixed), "sort of numbers and strings raises")
local seen = {}
for _, v in ipairs(mixed) do
    seen[tostring(v)] = true
end
t.ok(seen["3"] and seen.a and seen["2"], "and leaves every element there")
local chaos = {}
for i = 1, 5000 do
    chaos[i] = i
end
local ok = pcall(table.sort, chaos, function() return random(2) == 1 end)
local count, sum = 0, 0
for _, v in ipairs(chaos) do
    count, sum = count + 1, sum + v
end
t.ok(ok and count == 5000 and sum == 5000 * 5001 / 2,
     "a comparison that contradicts itself gives some order, no error")
local calls = 0
local raised = not pcall(table.sort, chaos, function(a, b)
    calls = calls + 1
    if calls == 3000 then
        error("boom")
    end
    return a < b
end)
count, sum = 0, 0
for _, v in ipairs(chaos) do
    count, sum = count + 1, sum + v
end
t.ok(raised and count == 5000 and sum == 5000 * 5001 / 2,
     "an error in the comparison leaves every element in the table")
local worst = {}   -- sorted, reversed, organ pipe, all equal
for i = 1, 20000 do
    worst[i] = i <= 5000 and i or i <= 10000 and 10001 - i or
               i <= 15000 and (i % 100) or 7
end
table.sort(worst)
t.ok(is_sorted(worst, function(a, b) return a < b end),
     "runs, reversed runs and repeats sort")

-- ------------------------------------------------------------ caps

t.raises(function() return ("x"):rep(2^27) end, "over the limit",
         "string.rep past 64 MiB raises")
t.is(#string.rep("ab", 32 * 1048576), 64 * 1048576,
     "string.rep of exactly 64 MiB works")
t.raises(function()
    local big = string.rep("x", 1048576)
    local list = {}
    for i = 1, 65 do
        list[i] = big
    end
    return table.concat(list)
end, "over the limit", "table.concat past 64 MiB raises")
t.raises(function()
    return string.gsub(string.rep("x", 1048576), "x", "yyyyyyyyyyyyyyyyyyyy"
                       .. "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
                       .. "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy")
end, "over the limit", "string.gsub past 64 MiB raises")

-- ------------------------------------------------------------ stops

local LIMIT = 0.3
local function stopped(name, fn, setup)
    local arg = setup and setup() or nil
    local started = core.hrtime()
    local ok, err = core.time_limit(LIMIT, "test", fn, arg)
    local took = (core.hrtime() - started) / 1000
    t.ok(not ok and tostring(err):find("the test ran for more than", 1, true)
         and took >= LIMIT and took < LIMIT + 0.5,
         string.format("%s: stopped at the limit (%.2f s)", name, took),
         tostring(err))
    print(string.format("# %s: stopped after %.3f s (limit %.1f s)", name,
                        took, LIMIT))
end

local A40 = string.rep("a", 40)
local P40 = string.rep("a*", 40) .. "b"
stopped("string.find with a backtracking pattern", function()
    return string.find(A40, P40)
end)
stopped("s:match as a method", function()
    return A40:match(P40)
end)
stopped("string.gmatch", function()
    for m in A40:gmatch(P40) do
        return m
    end
end)
stopped("string.gsub", function()
    return A40:gsub(P40, "")
end)
stopped("%b and back references", function()
    return string.find(string.rep("(", 2000) .. string.rep("a", 30),
                       "(.-)%b()" .. string.rep("%1", 5) .. ".-.-.-z")
end)
stopped("pcall around the pattern, forever", function()
    while true do
        pcall(string.find, A40, P40)
    end
end)
stopped("table.sort of 4e6 numbers", function(list)
    table.sort(list)
end, function()
    local list = {}
    for i = 1, 4e6 do
        list[i] = (i * 7919) % 1000003
    end
    return list
end)
stopped("table.sort of long equal strings", function(list)
    table.sort(list)
end, function()
    local s = string.rep("z", 4 * 1048576)
    local list = {}
    for i = 1, 3000 do
        list[i] = s
    end
    return list
end)
stopped("table.concat, again and again", function(list)
    while true do
        table.concat(list)
    end
end, function()
    local list = {}
    for i = 1, 1e6 do
        list[i] = "xyz"
    end
    return list
end)
stopped("string.rep, again and again", function()
    while true do
        string.rep("ab", 16 * 1048576)
    end
end)
-- The watchdog: one instruction or one C call at a time, each short,
-- 10000 of them (between two count hooks) far over the limit.
stopped("`..` of a 16 MiB string in a loop", function(s)
    while true do
        local _ = s .. "y"
    end
end, function()
    return string.rep("x", 16 * 1048576)
end)
stopped("table.insert at the front of a big table", function(list)
    while true do
        table.insert(list, 1, 0)
    end
end, function()
    local list = {}
    for i = 1, 2e6 do
        list[i] = i
    end
    return list
end)

-- After all that, everything works as before.
ok = core.time_limit(LIMIT, "test", function()
    return string.find("hello world", "o w")
end)
t.ok(ok and string.find("hello world", "(o)%s(w)") == 5,
     "a budget after the stops runs to its end")
t.ok(core.time_limit(0, "unlimited", function()
    return string.find(string.rep("a", 18), string.rep("a*", 4) .. "b")
end), "without a deadline a slow pattern runs to its end")

-- ------------------------------------------------------------ speed

local function clock(fn, n)
    local started = core.hrtime()
    for _ = 1, n do
        fn()
    end
    return core.hrtime() - started
end
local text = string.rep("the quick brown fox jumps over the lazy dog ", 20000)
local ids = {}
for i = 1, 100000 do
    ids[i] = (i * 7919) % 1000003
end
local words = {}
for w in text:sub(1, 200000):gmatch("%a+") do
    words[#words + 1] = w .. #words
end
for _, case in ipairs {
    { "gsub of words in 880 kB", function(f)
        f.gsub(text, "%a+", "w") end, 5 },
    { "find of a pattern", function(f)
        f.find(text, "lazy%s+cat") end, 20 },
    { "match of a short string", function(f)
        for _ = 1, 1000 do f.match("user@game", "^([%w_]+)@(%w+)$") end
    end, 20 },
    { "sort of 100000 numbers", function(f)
        local c = {} for i = 1, #ids do c[i] = ids[i] end f.sort(c) end, 5 },
    { "sort of 40000 strings", function(f)
        local c = {} for i = 1, #words do c[i] = words[i] end f.sort(c) end,
      5 },
    { "sort with a comparison", function(f)
        local c = {} for i = 1, #ids do c[i] = ids[i] end
        f.sort(c, function(a, b) return a > b end) end, 3 },
    { "concat of 100000 items", function(f) f.concat(ids, ",") end, 10 },
} do
    local name, fn, n = case[1], case[2], case[3]
    local a = clock(function() fn(native) end, n)
    local b = clock(function() fn(ours) end, n)
    print(string.format("# speed, %s: LuaJIT %.2f ms, ours %.2f ms", name,
                        a / n, b / n))
end

return t.done()
