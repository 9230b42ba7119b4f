-- admin/pretty.lua: values as the console shows them.
--
-- Tables are nested to a bounded depth, with a bounded number of items
-- each and a bounded number of lines in all; keys are sorted (the array
-- part first, then numbers, then strings); a table that fits on one line
-- is written on one. Game things (objects, players, boards ...) nested in
-- a table are shown by a one-line summary from the summarizers registered
-- here; at the top they are shown whole. A table whose metatable has
-- __pretty(t) is shown by what that returns (the command results that
-- read best as a text table), one with __tostring by tostring. Nothing
-- here calls other metamethods: keys and values are read raw.

local M = {}

M.DEPTH = 3          -- nesting levels shown
M.ITEMS = 40         -- items shown per table
M.LINES = 200        -- lines shown in all
M.WIDTH = 78         -- a table fits on one line within this
M.STRING = 160       -- characters of a nested string shown

local summarizers = {}   -- functions(v) -> string or nil

-- Registers fn(v) -> one-line summary or nil (v is not its kind).
function M.summarizer(fn)
    summarizers[#summarizers + 1] = fn
end

local function summary(v)
    for _, fn in ipairs(summarizers) do
        local ok, s = pcall(fn, v)
        if ok and s then
            return s
        end
    end
end

local ESCAPES = { ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r",
                  ["\\"] = "\\\\", ['"'] = '\\"' }

-- A string literal, cut at max characters.
function M.quote(s, max)
    local cut = ""
    if max and #s > max then
        cut = string.format("...(%d bytes)", #s)
        s = s:sub(1, max)
    end
    s = s:gsub('[%c\\"]', function(c)
        return ESCAPES[c] or string.format("\\%03d", c:byte())
    end)
    return '"' .. s .. '"' .. cut
end

local function number(n)
    if n ~= n then
        return "nan"
    elseif n == math.huge then
        return "inf"
    elseif n == -math.huge then
        return "-inf"
    elseif n == math.floor(n) and math.abs(n) < 2 ^ 53 then
        return string.format("%d", n)
    end
    return string.format("%.14g", n)
end

local function func(f)
    local info = debug.getinfo(f, "S")
    if not info or info.what == "C" then
        return "<function: builtin>"
    end
    return string.format("<function %s:%d>", info.short_src,
                         info.linedefined)
end

local function safe_tostring(v)
    local ok, s = pcall(tostring, v)
    return ok and tostring(s) or ("<" .. type(v) .. ">")
end

local function is_identifier(k)
    return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil and
           not ({ ["and"] = 1, ["break"] = 1, ["do"] = 1, ["else"] = 1,
                  ["elseif"] = 1, ["end"] = 1, ["false"] = 1, ["for"] = 1,
                  ["function"] = 1, ["goto"] = 1, ["if"] = 1, ["in"] = 1,
                  ["local"] = 1, ["nil"] = 1, ["not"] = 1, ["or"] = 1,
                  ["repeat"] = 1, ["return"] = 1, ["then"] = 1,
                  ["true"] = 1, ["until"] = 1, ["while"] = 1 })[k]
end

local TYPE_ORDER = { number = 1, string = 2, boolean = 3 }

local function key_less(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then
        return (TYPE_ORDER[ta] or 9) < (TYPE_ORDER[tb] or 9) or
               ((TYPE_ORDER[ta] or 9) == (TYPE_ORDER[tb] or 9) and ta < tb)
    end
    if ta == "number" or ta == "string" then
        return a < b
    end
    return safe_tostring(a) < safe_tostring(b)
end

local render

local function render_key(k, seen)
    if is_identifier(k) then
        return k
    end
    return "[" .. render(k, "", M.DEPTH, seen, true) .. "]"
end

-- v rendered at the given indentation and depth (0 at the top).
function render(v, indent, depth, seen, nested)
    local t = type(v)
    if t == "string" then
        return M.quote(v, nested and M.STRING or nil)
    elseif t == "number" then
        return number(v)
    elseif t == "function" then
        return func(v)
    elseif t ~= "table" then
        return safe_tostring(v)
    end
    local mt = getmetatable(v)
    if type(mt) == "table" then
        local pretty = rawget(mt, "__pretty")
        if type(pretty) == "function" then
            local ok, s = pcall(pretty, v)
            if ok and type(s) == "string" then
                return s
            end
        end
        if rawget(mt, "__tostring") then
            return safe_tostring(v)
        end
    end
    if depth > 0 then
        local s = summary(v)
        if s then
            return s
        end
    end
    if seen[v] then
        return "<table shown above>"
    end
    -- The array part, then the other keys in order.
    local n = 0
    while rawget(v, n + 1) ~= nil do
        n = n + 1
    end
    local keys = {}
    local k = next(v)
    while k ~= nil do
        if not (type(k) == "number" and k >= 1 and k <= n and
                k == math.floor(k)) then
            keys[#keys + 1] = k
        end
        k = next(v, k)
    end
    if n == 0 and #keys == 0 then
        return "{}"
    end
    if depth >= M.DEPTH then
        return string.format("{...%d item%s}", n + #keys,
                             n + #keys == 1 and "" or "s")
    end
    table.sort(keys, key_less)
    seen[v] = true
    local items = {}
    local inner = indent .. "  "
    local total = n + #keys
    local shown = math.min(total, M.ITEMS)
    local multiline = false
    for i = 1, shown do
        local item
        if i <= n then
            item = render(rawget(v, i), inner, depth + 1, seen, true)
        else
            local key = keys[i - n]
            item = render_key(key, seen) .. " = " ..
                   render(rawget(v, key), inner, depth + 1, seen, true)
        end
        multiline = multiline or item:find("\n", 1, true) ~= nil
        items[#items + 1] = item
    end
    if total > shown then
        items[#items + 1] = string.format("...(%d more)", total - shown)
    end
    seen[v] = nil
    if not multiline then
        local line = "{ " .. table.concat(items, ", ") .. " }"
        if #line + #indent <= M.WIDTH then
            return line
        end
    end
    return "{\n" .. inner .. table.concat(items, ",\n" .. inner) .. "\n" ..
           indent .. "}"
end

-- Cuts text to M.LINES lines.
local function bound(text)
    local count, pos = 0, 1
    while true do
        local nl = text:find("\n", pos, true)
        if not nl then
            return text
        end
        count = count + 1
        if count >= M.LINES then
            local rest = select(2, text:sub(nl + 1):gsub("\n", "")) + 1
            return text:sub(1, nl - 1) ..
                   string.format("\n...(%d more lines)", rest)
        end
        pos = nl + 1
    end
end

-- One value. opts.depth overrides M.DEPTH; a top-level string is written
-- as it is unless opts.quote.
function M.format(v, opts)
    opts = opts or {}
    local saved = M.DEPTH
    M.DEPTH = opts.depth or M.DEPTH
    local ok, s = pcall(function()
        if type(v) == "string" and not opts.quote then
            return v
        end
        return render(v, "", 0, {}, false)
    end)
    M.DEPTH = saved
    if not ok then
        return "<cannot show this value: " .. tostring(s) .. ">"
    end
    return bound(s)
end

-- The results of a command: nothing, or each value (tab-separated when
-- they fit on a line, else one after the other).
function M.results(n, ...)
    if n == 0 then
        return ""
    end
    local parts, multiline = {}, false
    for i = 1, n do
        local s = M.format((select(i, ...)))
        multiline = multiline or s:find("\n", 1, true) ~= nil
        parts[i] = s
    end
    return bound(table.concat(parts, multiline and "\n" or "\t"))
end

-- A text table: rows (arrays of strings) under headers, columns aligned.
function M.columns(headers, rows)
    local widths = {}
    for i, h in ipairs(headers) do
        widths[i] = #h
    end
    for _, row in ipairs(rows) do
        for i = 1, #headers do
            local cell = tostring(row[i] == nil and "" or row[i])
            row[i] = cell
            widths[i] = math.max(widths[i], #cell)
        end
    end
    local function line(cells)
        local out = {}
        for i = 1, #headers do
            out[i] = cells[i] .. string.rep(" ", widths[i] - #cells[i])
        end
        return (table.concat(out, "  "):gsub("%s+$", ""))
    end
    local lines = { line(headers) }
    for _, row in ipairs(rows) do
        lines[#lines + 1] = line(row)
    end
    if #rows == 0 then
        lines[#lines + 1] = "(none)"
    end
    return table.concat(lines, "\n")
end

return M
