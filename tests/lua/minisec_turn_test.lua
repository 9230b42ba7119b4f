-- MiniSec end of turn: the order of the steps, once-a-turn upkeep (year,
-- repairs, stopping), elimination and victory, and what the objects look
-- like to TP04 and TP03 clients.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local H = dofile(TP_HOME .. "/tests/lua/minisec_harness.lua")
local codec = require "tp.codec"
local types = require "tp.types"
local views = require "tp.views"

local g = assert(H.new_game { random_seed = 11 })
local ctx = g:ctx()
local ms = g:ms()
local alice, bob, carol = g:join("alice"), g:join("bob"), g:join("carol")
local A, B, C = alice.id, bob.id, carol.id

local function eliminate(pid)
    for _, o in ipairs(g:objects(nil, pid)) do
        if o.type == ctx.types.Fleet then
            ms.objects.remove_fleet(ctx, o)
        else
            ms.objects.set_planet_owner(ctx, o, 0)
        end
    end
    g:commit()
end

-- ------------------------------------------------------------ upkeep

local u = g:object(0)
g:end_turn()
g:end_turn()
t.is(u.data.year, 2, "the universe's year counts the turns")
t.is(g:turn_number(), 2, "turn 2")

local ahome = g:find("alice Planet")
local astar = g:find("alice Star System")
local af = g:objects("Fleet", A)
local function park(f, parent, damage)
    f.pos = { x = parent.pos.x, y = parent.pos.y, z = 0 }
    ctx:set_parent(f, parent)
    f.data.damage = damage
    ctx:changed(f)
    g:commit()
end
park(af[1], ahome, 3)
park(af[2], astar, 3)
local venus = g:find("Venus")
park(af[3], venus, 3)
g:end_turn()
t.is(af[1].data.damage, 0, "a fleet at its owner's planet is repaired")
t.is(af[2].data.damage, 3, "not in its home system (reference rule)")
t.is(af[3].data.damage, 3, "nor at an unowned planet")

-- Movement stops when the next order is not a move.
g:order(A, af[2], "Move", { pos = { x = astar.pos.x + 900000000,
                                    y = astar.pos.y, z = 0 } })
g:order(A, af[2], "No Operation", { wait = { turns = 1 } })
g:end_turn()
t.ok(af[2].vel.x ~= 0, "moving: velocity set")
g:request(A, "RemoveOrder", { id = af[2].id, slots = { 0 } })
g:end_turn()
t.ok(af[2].vel.x == 0 and af[2].vel.y == 0,
     "next order No Operation: velocity cleared at the end of the turn")

-- A fleet destroyed in battle loses its orders: nothing of them happens.
local bf = g:objects("Fleet", B)
local victim = bf[1]
victim.pos = { x = ahome.pos.x, y = ahome.pos.y, z = 0 }
ctx:changed(victim)
g:commit()
g:order(B, victim, "No Operation", { wait = { turns = 0 } })
g:end_turn()
local gone = g:object(victim.id) == nil
t.ok(not gone or #g:new_messages(B, "NOp order complete") == 0,
     "a fleet lost in battle does not run its order afterwards")
t.ok(#g:new_messages(A, "Combat") == 1, "the battle at alice's home planet "
     .. "(5 batteries against a frigate)")

-- ------------------------------------------------------------ the end

eliminate(B)
g:end_turn()
local lost = g:new_messages(B, "You lost")
t.is(#lost, 1, "bob, who owns nothing, lost")
t.ok(lost[1] and lost[1].body == "You do not own any objects, therefore "
     .. "you game has finished." and lost[1].references[1].type == -4 and
     lost[1].references[1].id == 1, "'You lost', reference: player "
     .. "eliminated")
t.is(g:player(B).alive, false, "bob is no longer alive")
t.is(#g:new_messages(A, "You won!"), 0, "two players left: no winner")
g:end_turn()
t.is(#g:new_messages(B, "You lost"), 0, "'You lost' comes once")

eliminate(C)
g:end_turn()
local won = g:new_messages(A, "You won!")
t.is(#won, 1, "alice, the last one standing, won")
t.ok(won[1] and won[1].body == "You have eliminated all the competing "
     .. "players. Congratulations!", "'You won!' message")
t.is(g:player(A).score, 2, "score: the two players she outlived")
t.is(g.unmarked or 0, 0, "every change a turn made was marked")
local over = require("tp.game").over()
t.ok(over and over.winners and over.winners[1] == A and
     over.reason:find("alice", 1, true),
     "end_at_victory: the game is over, alice the winner", over)
t.is(#g:new_messages(A, "End of the game"), 1, "alice is told the end")
local turn = g:turn_number()
g:end_turn()
t.is(g:turn_number(), turn, "no turn after the end")
g:close()

-- end_at_victory = false: the game goes on, as in tpserver-cpp.
g = assert(H.new_game { random_seed = 11, end_at_victory = false })
ctx, ms = g:ctx(), g:ms()
alice, bob = g:join("alice"), g:join("bob")
A, B = alice.id, bob.id
eliminate(B)
g:end_turn()
t.is(#g:new_messages(A, "You won!"), 1, "without end_at_victory: won")
turn = g:turn_number()
g:end_turn()
t.is(#g:new_messages(A, "You won!"), 0, "the victory is announced once")
t.is(g:turn_number(), turn + 1, "the game goes on")
t.ok(not require("tp.game").over(), "and is not over")
g:close()

g = assert(H.new_game {})
ctx, ms = g:ctx(), g:ms()
g:join("guest")
alice, bob = g:join("alice"), g:join("bob")
eliminate(bob.id)
g:end_turn()
t.is(g:player(alice.id).score, 1, "with a guest (counted among the dead "
     .. "from the start) the score is still 1")
g:close()

-- ------------------------------------------------------------ frames

g = assert(H.new_game { random_seed = 11 })
ctx, ms = g:ctx(), g:ms()
alice, bob = g:join("alice"), g:join("bob")
g:end_turn()
local f = g:objects("Fleet", alice.id)[1]
f.data.damage = 4
ctx:changed(f)
g:commit()
local function decode(conn, obj)
    local frame = views.object_frame(conn, obj)
    local ot = types.objects[obj.type]
    local layout = conn.version == 3 and ot.tp03_layout or ot.layout
    return frame, assert(codec.decode(layout, frame.params, false))
end
local frame, v = decode(g:conn(alice.id), f)
t.ok(v.p6.reftype == 7 and v.p6.id == alice.id, "TP04 fleet: owner is a "
     .. "player reference")
t.is(v.p7.queueid, f.id, "its owner sees the queue id")
t.ok(#v.p8.references == 1 and v.p8.references[1].reftype == 9 and
     v.p8.references[1].id == 2 and v.p8.references[1].count == 1,
     "ship list: (design reference, count)")
t.is(v.p9.value, 4, "damage")
t.is(v.p5.url, f.data.media, "media")
frame, v = decode(g:conn(bob.id), f)
t.is(v.p7.queueid, 0, "others see queue 0")
frame, v = decode(g:conn(alice.id, 3), f)
t.ok(v.owner == alice.id and v.damage == 4 and v.ships[1].type == 2 and
     v.ships[1].count == 1, "TP03 fleet: owner, ships, damage")
t.is(frame.otype, 4, "TP03 type 4")
frame, v = decode(g:conn(alice.id, 3), g:object(0))
t.is(v.age, 1, "TP03 universe: age = the year")
frame, v = decode(g:conn(alice.id, 3), g:find("alice Planet"))
t.ok(v.owner == alice.id and v.resources[1].resource == 2 and
     v.resources[1].units == 1, "TP03 planet: owner and resources")
frame, v = decode(g:conn(alice.id, 3), g:find("Mars"))
t.is(v.owner, -1, "TP03: an unowned planet has owner -1")
frame, v = decode(g:conn(alice.id), g:find("Mars"))
t.ok(v.p6.id == 0 and #v.p8.resources == 0, "TP04: unowned, no resources")
t.ok(views.design_visible(bob.id, g:design(1)), "everyone sees every "
     .. "design")
t.is(g.unmarked or 0, 0, "every change a turn made was marked (marks_changes)")
g:close()

return t.done()
