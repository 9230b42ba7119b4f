-- The battle recorder (tp.battle) on its own: the document's form, text
-- escaped and cleaned, every mistake of a ruleset raised with what was
-- wrong, and the record save() stores with the turn.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local battle = require "tp.battle"
local model = require "tp.model"

local g = assert(H.new_game { random_seed = 3 })
local A = g:join("alice").id
local B = g:join("bob").id

local b = battle.new({ media = "minisec", title = "Battle at <Sol>" }, 4)
local sa = b:side("alice", A)
local sb = b:side("b\"o&b", B)
b:entity(sa, "Frigate-1-0", "alice's Fleet <1>, Frigate 0", "Frigate")
b:entity(sb, "planet-2-0", "bad \255\254 utf-8 \1 and \226\130\172",
         "planet")
t.raises(function() b:log("too soon") end, "before the first round",
         "an event before round() raises")
t.is(b:round(), 0, "the first round is round 0")
b:log("alice & bob meet")
b:move("Frigate-1-0", { x = 1.5, y = -2, z = 0 })
b:fire("Frigate-1-0", "planet-2-0")
b:damage("planet-2-0", 3.7)
b:death("planet-2-0")
t.is(b:round(), 1, "then round 1")
t.raises(function() b:fire("Frigate-1-0", "Scout-9-9") end,
         "no entity 'Scout-9-9' was declared",
         "an event naming an undeclared entity raises")
t.raises(function() b:entity(sa, "planet-2-0", "x", "y") end,
         "declared twice", "an entity id declared twice raises")
t.raises(function() b:side("alice", A) end, "declared twice",
         "a side id declared twice raises")
t.raises(function() b:entity({ id = "alice" }, "x-1-0", "x", "y") end,
         "a side made by this battle", "an entity of a foreign side raises")
t.raises(function() b:damage("planet-2-0", -1) end, "0 or more",
         "a negative damage raises")
local doc = b:xml()
t.ok(doc:find('^<%?xml version="1.0" encoding="UTF%-8"%?>\n<battle '
              .. 'version="0.0.1" media="minisec">'),
     "the declaration and root", doc:sub(1, 120))
t.ok(doc:find('<side id="b&quot;o&amp;b">', 1, true) and
     doc:find("<name>alice&apos;s Fleet &lt;1&gt;, Frigate 0</name>", 1,
              true) and doc:find("<log>alice &amp; bob meet</log>", 1,
                                 true),
     "attribute and element text escaped", doc)
t.ok(doc:find("<name>bad ?? utf-8 ? and \226\130\172</name>", 1, true),
     "bytes that are not UTF-8 or that XML forbids become ?; good UTF-8 "
     .. "stays", doc)
t.ok(doc:find("<move><reference ref=\"Frigate-1-0\"/><position>1.5,-2,0"
              .. "</position></move>", 1, true) and
     doc:find("<damage><reference ref=\"planet-2-0\"/><amount>3</amount>"
              .. "</damage>", 1, true),
     "positions x,y,z; damage amounts whole", doc)
t.ok(doc:find('<round roundnum="1">\n    </round>', 1, true),
     "an empty round is kept (numbers stay consecutive)", doc)
local check = io.popen("printf '%s' '" .. doc:gsub("'", "'\\''") ..
                       "' | xmllint --noout - 2>&1 && echo WELL-FORMED")
local out = check:read("*a")
check:close()
t.ok(out:find("WELL-FORMED", 1, true), "xmllint finds it well formed", out)

local id = b:save()
t.is(id, 1, "the first battle of a game is battle 1")
t.raises(function() b:log("late") end, "already saved",
         "a saved battle takes no more events")
t.is(model.battle(id).xml, doc, "until the commit it is found in memory")
g:commit()
g:reopen()
local rec = model.battle(1)
t.ok(rec and rec.xml == doc and rec.turn == 4 and rec.title ==
     "Battle at <Sol>" and table.concat(rec.players, ",") == A .. "," .. B
     and rec.rounds == 2, "after a restart the record is in the database "
     .. "(document, turn, title, players, rounds)")
local list = model.battles()
t.ok(#list == 1 and list[1].xml == nil and list[1].id == 1,
     "listings carry no document")
t.ok(battle.may_read(rec, A, false) and not battle.may_read(rec, 99, false)
     and battle.may_read(rec, nil, true),
     "participants may read it; others only while spectating")
g:close()
return t.done()
