-- tp.login_guard: slowing down password guessing.
--
-- Failed logins are counted per account name (without regard to case) and
-- per client address. After FREE_NAME failures for a name, or FREE_ADDR
-- from an address, each Login for that name, or from that address, waits
-- before its password is even checked: 1 s, then 2, 4, ... up to MAX_DELAY, whatever the password (so a guesser learns
-- nothing sooner). A successful login clears the name's count and lowers
-- the address's; counts are forgotten FORGET seconds after their last
-- failure. A connection is closed after PER_CONN failed logins. Every
-- name or address that starts being slowed is logged once, with the count.
-- admin: locked() (the console's players.locked()) lists them.

local core = require "tp.core"

local M = {}

M.FREE_NAME = 3      -- failures of one name answered at once
M.FREE_ADDR = 10     -- failures from one address answered at once
M.MAX_DELAY = 30     -- seconds, at most
M.FORGET = 900       -- seconds after the last failure
M.PER_CONN = 5       -- failed logins before the connection is closed

local by_name = {}   -- lower-case name -> { n, last, logged }
local by_addr = {}   -- address -> { n, last, logged }

-- The address of a peer "ip:port" or "[v6]:port", without the port.
function M.address(peer)
    peer = tostring(peer or "?")
    return peer:match("^%[(.*)%]:%d+$") or peer:match("^(.*):%d+$") or peer
end

local function entry(t, key, now)
    local e = t[key]
    if e and now - e.last > M.FORGET then
        t[key] = nil
        e = nil
    end
    return e
end

local function delay_of(e, free)
    if not e or e.n < free then
        return 0
    end
    return math.min(M.MAX_DELAY, 2 ^ (e.n - free))
end

-- Seconds a Login for name from peer must wait before it is checked.
function M.delay(name, peer)
    local now = core.now()
    return math.max(delay_of(entry(by_name, name:lower(), now), M.FREE_NAME),
                    delay_of(entry(by_addr, M.address(peer), now),
                             M.FREE_ADDR))
end

local function bump(t, key, free, what, log)
    local now = core.now()
    local e = entry(t, key, now) or { n = 0 }
    e.n = e.n + 1
    e.last = now
    t[key] = e
    if e.n >= free and not e.logged then
        e.logged = true
        log.warning("session", "%d failed logins for %s %s: its logins "
                    .. "are slowed down (up to %d s each) until %d minutes "
                    .. "pass without a failure", e.n, what, key, M.MAX_DELAY,
                    math.floor(M.FORGET / 60))
    end
end

-- A login for name from peer failed.
function M.failed(name, peer, log)
    bump(by_name, name:lower(), M.FREE_NAME, "account name", log)
    bump(by_addr, M.address(peer), M.FREE_ADDR, "address", log)
end

-- A login for name from peer succeeded.
function M.succeeded(name, peer)
    by_name[name:lower()] = nil
    local e = by_addr[M.address(peer)]
    if e then
        e.n = math.max(0, e.n - 1)
    end
end

-- Runs check() for a Login of key (a name) on conn: at once, or after the
-- wait the name's and the address's failures call for, whatever the
-- password. Nothing runs if the connection left meanwhile.
function M.after_wait(conn, key, check)
    local function go()
        if not conn.closed then
            check()
        end
    end
    local wait = M.delay(key, conn.peer)
    if wait > 0 then
        core.timer(math.floor(wait * 1000), 0, go)
    else
        go()
    end
end

-- A Login of key on conn failed: counted, and after PER_CONN failures
-- on one connection it is closed, once the Fail has gone out.
function M.login_failed(conn, key, log)
    M.failed(key, conn.peer, log)
    conn.failed_logins = (conn.failed_logins or 0) + 1
    if conn.failed_logins >= M.PER_CONN then
        core.timer(0, 0, function()
            if not conn.closed then
                log.warning("session", "conn=%d peer=%s: %d failed logins, "
                            .. "closing", conn.id, tostring(conn.peer),
                            conn.failed_logins)
                conn:close("too many failed logins")
            end
        end)
    end
end

-- Names and addresses being slowed down now: { kind, key, failures,
-- delay, last }, most failures first.
function M.locked()
    local now = core.now()
    local out = {}
    for kind, t in pairs { name = by_name, address = by_addr } do
        local free = kind == "name" and M.FREE_NAME or M.FREE_ADDR
        for key in pairs(t) do
            local e = entry(t, key, now)
            if e and e.n >= free then
                out[#out + 1] = { kind = kind, key = key, failures = e.n,
                                  delay = delay_of(e, free),
                                  last = math.floor(e.last) }
            end
        end
    end
    table.sort(out, function(a, b)
        if a.failures ~= b.failures then
            return a.failures > b.failures
        end
        return a.key < b.key
    end)
    return out
end

-- Forgets every count (tests, an admin clearing a false alarm).
function M.clear()
    by_name, by_addr = {}, {}
end

return M
