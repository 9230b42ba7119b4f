-- Ruleset API pieces that need no server: ctx:execute_orders (every
-- order of a queue acts, finished ones go), the typed settings' checks,
-- read_file's name rules.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local game = require "tp.game"
local ruleset = require "tp.ruleset"

local g = assert(H.new_game({}, {
    ruleset = TP_HOME .. "/tests/fixtures/rulesets/tiny" }))
local alice = g:join("alice")
local ship
for _, o in ipairs(g:objects("Ship", alice.id)) do
    ship = o
end
local x0 = ship.pos.x
t.ok(g:order(alice.id, ship, "Fly", { to = { x = x0 + 1, y = 0, z = 0 } }),
     "a first Fly order (one step)")
t.ok(g:order(alice.id, ship, "Fly", { to = { x = x0 + 5, y = 0, z = 0 } }),
     "a second Fly order (five steps)")
local ctx = g:ctx()
t.is(ctx:execute_orders(ship), 1, "execute_orders: one of the two finished")
t.is(ship.pos.x, x0 + 2, "both orders acted: one step each")
t.is(#g:queue(ship).orders, 1, "the finished one left the queue")
t.is(ctx:execute_orders(ship), 0, "the next call: the second goes on")
t.is(ship.pos.x, x0 + 3, "one more step")
g:close()

-- Settings: the declarations are checked against what is given.
local rs = assert(ruleset.load(TP_HOME,
                               TP_HOME .. "/tests/fixtures/rulesets/scouting"))
local function refused(given)
    local ok, err = pcall(game.check_settings, rs, given)
    return not ok and tostring(err) or nil
end
t.ok((refused { cap = 0 } or ""):find("at least 1", 1, true),
     "below min", refused { cap = 0 })
t.ok((refused { cap = "3" } or ""):find("whole number", 1, true),
     "a string for an integer", refused { cap = "3" })
t.ok((refused { daylight = "dusk" } or ""):find("one of long, short", 1,
     true), "not among the choices")
t.ok((refused { scouting = { cap = 99 } } or ""):find("at most 8", 1, true),
     "the ruleset's own section is checked too")
t.is(refused { cap = 4, daylight = "short", ratio = 0 }, nil,
     "good values pass")

-- read_file: only files of the ruleset's folder.
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p '" .. dir .. "'")
local f = io.open(dir .. "/init.lua", "w")
f:write([[
local ok1, e1 = pcall(read_file, "../secret.txt")
local ok2, e2 = pcall(read_file, "/etc/passwd")
local ok3, e3 = pcall(read_file, "missing.json")
local data = json.decode(read_file("data.json"))
local ok4, e4 = pcall(json.decode, "{ bad")
return { name = "R", version = "1",
         probe = { ok1, e1, ok2, e2, ok3, e3, data.n, ok4, e4 } }
]])
f:close()
f = io.open(dir .. "/data.json", "w")
f:write('{ "n": 42 }')
f:close()
local r = assert(ruleset.load(TP_HOME, dir))
local p = r.probe
t.ok(not p[1] and tostring(p[2]):find("bad file name", 1, true),
     "read_file refuses ..", tostring(p[2]))
t.ok(not p[3] and tostring(p[4]):find("bad file name", 1, true),
     "read_file refuses an absolute path", tostring(p[4]))
t.ok(not p[5] and tostring(p[6]):find("missing.json", 1, true),
     "a missing file raises with its name", tostring(p[6]))
t.is(p[7], 42, "a data file is read and decoded")
t.ok(not p[8] and tostring(p[9]):find("json.decode", 1, true),
     "bad JSON raises from json.decode", tostring(p[9]))
os.execute("rm -rf '" .. dir .. "'")
return t.done()
