-- tap.lua: a tiny TAP producer for Lua tests run with `tpserver script`.
--   local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
--   t.ok(cond, "name"); t.is(got, want, "name"); return t.done()
local M = { n = 0, failed = 0 }

function M.ok(cond, name, diag)
    M.n = M.n + 1
    print(string.format("%s %d - %s", cond and "ok" or "not ok", M.n, name))
    if not cond then
        M.failed = M.failed + 1
        local info = debug.getinfo(2, "Sl")
        print(string.format("#   failed at %s:%d", info.short_src,
                            info.currentline))
        if diag then
            print("#   " .. tostring(diag))
        end
    end
    return cond
end

function M.is(got, want, name)
    return M.ok(got == want, name, string.format("got %s, want %s",
                tostring(got), tostring(want)))
end

-- Checks that fn raises an error whose message contains pattern (plain).
function M.raises(fn, pattern, name)
    local ok, err = pcall(fn)
    return M.ok(not ok and tostring(err):find(pattern, 1, true) ~= nil, name,
                "error was: " .. tostring(err))
end

function M.done()
    print("1.." .. M.n)
    return M.failed == 0 and 0 or 1
end

return M
