#!/usr/bin/env python3
"""Risk over the protocol: a server started with --ruleset risk on the
10-territory test map (seeded; max_players 3), three players over TP04
sockets, a fourth refused and a guest let in. The board the players see
is checked against the notes (territories, constellations and bonuses,
the 13 wormholes); every order type is inserted in and out of its phase
with its Fail; a scripted game is played to its end (alice attacks with
every army she gets, bob and carol only sit), with "Game over!" for
every player and no orders after it. In the middle of the game the
running server's game is backed up and a second server started from the
copy: the next turn there is the same as on the server never
restarted."""

import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from rulesetlib import Client, refused, view, finish, wait_turn  # noqa: E402
from test_protocol import raw_params  # noqa: E402

T = tplib.Tap.current or tplib.Tap()

SEED = 2024
LENGTH = 40
RESTART_AT = 2

UNIVERSE, CONSTELLATION, SYSTEM, PLANET, UNUSED, WORMHOLE = range(6)
COLONIZE, REINFORCE, MOVE = range(3)

# risk.md 4: the test map.
CONS = {"Cygnus": (2, {"Deneb", "Albireo", "Sadr", "Gienah Cygni"}),
        "Orion": (3, {"Betelgeuse", "Rigel", "Bellatrix", "Mintaka",
                      "Alnitak", "Saiph"})}
LINKS = [("Deneb", "Sadr"), ("Deneb", "Gienah Cygni"),
         ("Sadr", "Gienah Cygni"), ("Sadr", "Albireo"),
         ("Albireo", "Gienah Cygni"), ("Betelgeuse", "Bellatrix"),
         ("Betelgeuse", "Alnitak"), ("Bellatrix", "Mintaka"),
         ("Mintaka", "Alnitak"), ("Mintaka", "Rigel"), ("Alnitak", "Saiph"),
         ("Saiph", "Rigel"), ("Betelgeuse", "Sadr")]
ADJ = {}
for _a, _b in LINKS:
    ADJ.setdefault(_a, set()).add(_b)
    ADJ.setdefault(_b, set()).add(_a)


def server(data_dir=None, *extra):
    return tplib.Server(*extra,
        "--ruleset", "risk", "--set", "turn_length=0",
        "--set", "ruleset_settings.risk_debug_random_seed=%d" % SEED,
        "--set", "ruleset_settings.game_length=%d" % LENGTH,
        "--set", "ruleset_settings.risk_map=test",
        "--set", "ruleset_settings.max_players=3", data_dir=data_dir)


def sel(pairs):
    return [{"choices": [], "selection": [{"id": i, "count": n}
                                          for i, n in pairs]}]


def units(n):
    return [{"turns": n, "maxtime": 0}]


def owner(v):
    return v["Owner"]["id"]


def armies(v):
    return v["Resource List"]["resources"][0]["stored"]


def pool_of(v):
    return v["Resource List"]["resources"][0]["minable"]


def planets(objs):
    return {v["_frame"]["name"]: v for v in objs.values()
            if v["_frame"]["otype"] == PLANET}


def check_board(a):
    objs = a.objects()
    by_type = {}
    for v in objs.values():
        by_type.setdefault(v["_frame"]["otype"], []).append(v)
    T.is_(len(by_type.get(PLANET, [])), 10, "10 territories (planets)")
    T.is_(len(by_type.get(SYSTEM, [])), 10, "... in 10 star systems")
    T.is_(len(by_type.get(WORMHOLE, [])), 13, "13 wormholes")
    cons = {}
    for c in by_type.get(CONSTELLATION, []):
        names = set()
        for sid in c["_frame"]["contains"]:
            for pid in objs[sid]["_frame"]["contains"]:
                names.add(objs[pid]["_frame"]["name"])
        cons[c["_frame"]["name"]] = (c["Bonus"]["value"], names)
    T.is_(cons.get("Cygnus"), CONS["Cygnus"], "Cygnus: bonus 2, its 4 "
          "territories")
    T.is_(cons.get("Orion"), CONS["Orion"], "Orion: bonus 3, its 6")
    T.ok("Wormholes" in cons and cons["Wormholes"][0] == 0,
         "the Wormholes pseudo-constellation, bonus 0")
    links = set()
    for w in by_type.get(WORMHOLE, []):
        a_, b_ = w["_frame"]["name"].split(" to ")
        links.add(frozenset((a_.replace(" System", ""),
                             b_.replace(" System", ""))))
    T.is_(links, {frozenset(x) for x in LINKS}, "the wormholes link what "
          "the notes link")
    T.is_(objs[0]["Year"]["value"], 0, "the Year is 0")
    return objs


def orders_in_and_out(a, b, objs):
    ps = planets(objs)
    mine = sorted((v for v in ps.values() if owner(v) == a.id),
                  key=lambda v: v["_frame"]["id"])
    T.is_(len(mine), 3, "alice was dealt floor(10 / 3) = 3 territories")
    T.ok(all(armies(v) == 3 for v in mine), "... 3 armies each")
    T.ok(all(pool_of(v) == 30 for v in mine), "... the display shows her "
         "pool of 30")
    here = mine[0]
    hid = here["_frame"]["id"]
    T.is_(a.allowed(hid), [REINFORCE, MOVE],
          "random assignment: Reinforce and Move offered, not Colonize")
    f = a.insert(hid, COLONIZE, sel([]))
    T.ok(refused(f, "Colonize is off"), "Colonize out of its phase: the "
         "Fail says colonising is off", repr(f))
    T.ok("first in the turn" in a.odesc(COLONIZE)["description"] and
         "after Colonize" in a.odesc(REINFORCE)["description"],
         "the order descriptions say the phases")
    name = here["_frame"]["name"]
    far = [ps[n]["_frame"]["id"] for n in ps if n != name and
           n not in ADJ[name]][0]
    f = a.insert(hid, MOVE, sel([(far, 1)]))
    T.ok(refused(f, "not linked"), "Move with no wormhole refused",
         repr(f))
    f = a.insert(hid, REINFORCE, units(31))
    T.ok(refused(f, "only 30"), "Reinforce beyond the pool refused", repr(f))
    f = b.insert(hid, REINFORCE, units(1))
    T.ok(f.is_("Fail"), "bob cannot order alice's planet", repr(f))
    f = a.insert(hid, MOVE, sel([]))
    T.ok(f.is_("Order"), "an empty Move is accepted (to be filled in)",
         repr(f))
    r = a.req("RemoveOrder", {"id": hid, "slots": [0]})
    T.ok(r[-1].is_("Okay"), "... and removed", repr(r))


def plan(a, objs):
    """alice: her whole pool on her planet with the most armies next to
    an enemy, then attacks the weakest enemy neighbour with 4 Move orders
    (4 exchanges of dice); other planets send spare armies to it."""
    ps = planets(objs)
    mine = {n: v for n, v in ps.items() if owner(v) == a.id}
    out = []
    best = None
    for n, v in sorted(mine.items()):
        foes = [m for m in ADJ[n] if owner(ps[m]) != a.id]
        if foes and (best is None or armies(v) > armies(mine[best])):
            best = n
    if best is None:
        return out
    bid = ps[best]["_frame"]["id"]
    pool = pool_of(ps[best])
    if pool > 0:
        out.append(a.insert(bid, REINFORCE, units(pool)))
    foes = sorted((m for m in ADJ[best] if owner(ps[m]) != a.id),
                  key=lambda m: (armies(ps[m]), m))
    target = ps[foes[0]]["_frame"]["id"]
    total = armies(ps[best]) + pool
    for _ in range(4):
        out.append(a.insert(bid, MOVE, sel([(target, total - 1)])))
    for n, v in sorted(mine.items()):
        if n != best and armies(v) > 1 and best in ADJ[n]:
            out.append(a.insert(v["_frame"]["id"], MOVE,
                                sel([(bid, armies(v) - 1)])))
    return out


def tp03_check(srv, objs, a):
    """A TP03 client: planets as planets (owner, armies), wormholes as
    wormholes with their far end."""
    ps = planets(objs)
    mine = [v for v in ps.values() if owner(v) == a.id][0]
    wh = [v for v in objs.values() if v["_frame"]["otype"] == WORMHOLE][0]
    c = srv.client(version=3)
    try:
        c.connect("risk-tp03/1.0")
        T.ok(c.login("alice", "pw-alice").is_("Okay"), "TP03: alice logs in")
        frames = c.request("GetObjectsByID", {
            "ids": [mine["_frame"]["id"], wh["_frame"]["id"]]})
        planet, worm = frames[1], frames[2]
        lay = tplib.compile_layout("i:owner [I:resource I:units I:minable "
                                   "I:inaccessible]:resources")
        vals, _ = lay.decode(raw_params(planet))
        T.ok(planet["otype"] == 3 and vals["owner"] == a.id and
             vals["resources"][0]["units"] == armies(mine),
             "TP03: alice's planet: owner and armies", repr(vals))
        vals, _ = tplib.compile_layout("q:endx q:endy q:endz").decode(
            raw_params(worm))
        end = wh["EndB"]
        T.ok(worm["otype"] == 5 and (vals["endx"], vals["endy"]) ==
             (end["x"], end["y"]), "TP03: a wormhole (type 5) with its "
             "far end", repr((vals, end)))
    finally:
        c.close()


def restart_copy(srv):
    dest = os.path.join(srv.tmp, "copy")
    r = subprocess.run([tplib.tpserver_path(), "backup", "--data",
                        srv.data_dir, dest], capture_output=True,
                       timeout=30)
    T.ok(r.returncode == 0, "tpserver backup of the running game",
         r.stdout.decode() + r.stderr.decode())
    return server(data_dir=dest).start()


def play():
    with server() as srv:
        alice = Client(srv, "alice")
        bob = Client(srv, "bob")
        carol = Client(srv, "carol")
        players = [alice, bob, carol]
        c = srv.client(4)
        c.connect("risk-test/1.0")
        f = c.create_account("dave", "pw-dave")
        T.ok(refused(f, "full"), "a fourth player is refused: the game is "
             "full (max_players 3)", repr(f))
        f = c.create_account("guest", "pw-guest")
        T.ok(f.is_("Okay"), "... but a player named guest may join",
             repr(f))
        c.close()
        guest = Client(srv, "guest", create=False)
        objs = check_board(alice)
        T.ok(not any(owner(v) == guest.id for v in planets(objs).values()),
             "the guest owns nothing")
        orders_in_and_out(alice, bob, objs)
        tp03_check(srv, objs, alice)
        log = {p.name: p.new_messages() for p in players}
        T.ok(any(s == "Welcome to Risk" for s, _, _ in log["alice"]),
             "alice got the welcome message")
        restart_ok = None
        ended = None
        misnamed = []
        for turn in range(LENGTH + 1):
            tr = alice.call("GetTimeRemaining")
            objs = alice.objects()
            if objs[0]["Year"]["value"] != turn or tr.get("turn") != turn:
                misnamed.append((turn, objs[0]["Year"], tr.get("turn")))
            over = [x for x in log["alice"] if x[0] == "Game over!"]
            if over:
                ended = turn
                break
            for f in plan(alice, objs):
                if not f.is_("Order"):
                    T.ok(False, "turn %d: alice's order accepted" % turn,
                         repr(f))
            copy = None
            if turn == RESTART_AT:
                copy = restart_copy(srv)
                others = [Client(copy, p.name, create=False)
                          for p in players]
                T.ok(all(view(p) == view(q) for p, q in zip(players,
                                                             others)),
                     "the copy's players see what they see on the running "
                     "server")
                for q in others:
                    q.new_messages()
            bad = finish(players + [guest])
            if bad:
                T.ok(False, "FinishedTurn", "\n".join(bad))
            wait_turn(alice, turn + 1)
            for p in players:
                log[p.name] += p.new_messages()
            if copy is not None:
                bad = finish(others + [Client(copy, "guest", create=False)])
                wait_turn(others[0], turn + 1)
                restart_ok = not bad
                for p, q in zip(players, others):
                    same = view(p) == view(q)
                    msgs = [x for x in q.new_messages() if x[2] == turn + 1]
                    mine = [x for x in log[p.name] if x[2] == turn + 1]
                    restart_ok = restart_ok and same and msgs == mine
                    T.ok(same and msgs == mine, "restarted copy, turn %d: %s "
                         "sees the same objects and gets the same %d "
                         "messages" % (turn + 1, p.name, len(mine)),
                         repr((bad, msgs, mine)))
                for q in others:
                    q.close()
                copy.stop()
        T.ok(restart_ok, "the restarted copy made the same turn %d" %
             (RESTART_AT + 1))
        T.ok(not misnamed, "the Year is the turn number every turn",
             repr(misnamed))
        T.ok(ended is not None, "the game ended (turn %r)" % ended)
        subjects = {n: set(s for s, _, _ in log[n]) for n in log}
        for p in players:
            n = len([x for x in log[p.name] if x[0] == "Game over!"])
            T.is_(n, 1, "%s got 'Game over!' once" % p.name)
        T.ok("You have been attacked!" in subjects["bob"] or
             "You have been attacked!" in subjects["carol"],
             "bob or carol was attacked")
        T.ok("Reinforcements placed" in subjects["alice"] and
             "Reinforcements" in subjects["alice"],
             "alice placed reinforcements and got new ones")
        atk = [b for s, b, _ in log["alice"] if s.startswith(
            "Move order(s) via")]
        T.ok(any("Battle log:" in b and "attacker dice" in b for b in atk),
             "alice's move reports give the dice and link the battle",
             repr(atk[:2]))
        objs = alice.objects()
        ps = planets(objs)
        held = len([v for v in ps.values() if owner(v) == alice.id])
        body = [b for s, b, _ in log["alice"] if s == "Game over!"][0]
        T.ok(held == 10 - len([v for v in ps.values() if owner(v) == 0])
             and "alice" in body, "alice won, holding every owned "
             "territory (%d): %s" % (held, body), body)
        some = [v for v in ps.values() if owner(v) == alice.id][0]
        T.is_(alice.allowed(some["_frame"]["id"]), [], "no orders offered "
              "after the end")
        f = alice.insert(some["_frame"]["id"], MOVE, sel([]))
        # (The server refuses every change once the game is over, before
        # Risk's own check: tp.dispatch.)
        T.ok(refused(f) and "the game is over" in f["result"].lower(),
             "a Move after the end: the "
             "Fail says the game is over", repr(f))
        for p in players + [guest]:
            p.close()


def colonize_game():
    """Territories not dealt: one planet each, Colonize offered and run
    first in the turn, then closed once every territory is owned."""
    with server(None, "--set", "ruleset_settings.risk_randomly_assign=false"
                ) as srv:
        players = [Client(srv, n) for n in ("alice", "bob", "carol")]
        alice, bob = players[0], players[1]
        ps = planets(alice.objects())
        home = [v for v in ps.values() if owner(v) == alice.id]
        T.is_(len(home), 1, "colonising game: alice has one planet")
        hid = home[0]["_frame"]["id"]
        T.is_(alice.allowed(hid), [COLONIZE, REINFORCE, MOVE],
              "... and is offered Colonize, Reinforce and Move")
        free = sorted(v["_frame"]["id"] for v in ps.values()
                      if owner(v) == 0)
        bhome = [v for v in ps.values() if owner(v) == bob.id][0]
        f = alice.insert(hid, COLONIZE, sel([(bhome["_frame"]["id"], 1)]))
        T.ok(refused(f, "already owned"), "a bid for bob's planet is "
             "refused", repr(f))
        # turn 0: alice reinforces after bidding 2 for one planet (her 3
        # armies allow it), bob bids 1 for the same one.
        T.ok(alice.insert(hid, COLONIZE, sel([(free[0], 2)])).is_("Order"),
             "alice bids 2 for a free planet")
        T.ok(bob.insert(bhome["_frame"]["id"], COLONIZE,
                        sel([(free[0], 1)])).is_("Order"),
             "bob bids 1 for it")
        T.ok(alice.insert(hid, REINFORCE, units(25)).is_("Order"),
             "alice reinforces 25")
        finish(players)
        wait_turn(alice, 1)
        ps = planets(alice.objects())
        by_id = {v["_frame"]["id"]: v for v in ps.values()}
        T.ok(owner(by_id[free[0]]) == alice.id and
             armies(by_id[free[0]]) == 2, "the higher bid (alice's 2) took "
             "it, before her reinforcements (1 + 25 left at home)",
             repr(by_id[free[0]]))
        T.is_(armies(by_id[hid]), 26, "alice's home: 3 - 2 + 25")
        msgs = [s_ for s_, _, _ in bob.new_messages()]
        T.ok("Colonize bid rejected" in msgs, "bob: Colonize bid rejected",
             repr(msgs))
        rest = [i for i in free[1:] if owner(by_id[i]) == 0]
        T.ok(alice.insert(hid, COLONIZE, sel([(i, 1) for i in rest])
                          ).is_("Order"), "alice bids 1 for each of the "
             "%d planets left" % len(rest))
        finish(players)
        wait_turn(alice, 2)
        ps = planets(alice.objects())
        T.ok(all(owner(v) != 0 for v in ps.values()), "every territory is "
             "owned")
        T.is_(alice.allowed(hid), [REINFORCE, MOVE], "Colonize is no "
              "longer offered")
        f = alice.insert(hid, COLONIZE, sel([]))
        T.ok(refused(f, "every territory is owned"), "... and its Fail "
             "says every territory is owned", repr(f))
        for p in players:
            p.close()


def main():
    T.run(play, colonize_game)
    T.done()


if __name__ == "__main__":
    main()
