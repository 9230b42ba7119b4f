#!/usr/bin/env python3
"""RFTS over the protocol: a server started with --ruleset rfts (seed and
game length set with --set ruleset_settings.X=V), three players over TP04
sockets, a fourth refused (max_players 3). The universe the players see is
checked against the notes (53 named stars at their unit positions, planet
counts and statistics drawn with an MT19937 written here, the home
systems picked as the notes say); every order type is inserted over the
protocol with its refusals; a scripted game of 32 turns produces,
builds, splits, merges, renames, colonises, moves warships to an enemy
home, fights and bombards, and ends with "Game over!" for every player.
In the middle of it the running server's game is backed up and a second
server started from the copy: the next turn there is the same as on the
server that was never restarted."""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from rulesetlib import (  # noqa: E402
    MT, Client, refused, view, finish, wait_turn)
from test_protocol import (  # noqa: E402
    ORDER_PARAM, encode_params, raw_params)

T = tplib.Tap.current or tplib.Tap()

SEED = 4242
LENGTH = 32
RESTART_AT = 15

UNIVERSE, GALAXY, SYSTEM, PLANET, FLEET = range(5)
BUILD, PRODUCE, MOVE, SPLIT, MERGE, RENAME, COLONISE, BOMBARD = range(8)
ORDER_NAMES = ["Build Fleet", "Produce", "Move", "Split Fleet",
               "Merge Fleet", "Rename Fleet", "Colonise", "Bombard"]
RP, IND, POP, SOC, PLAN, MAINT, COL, TECH = range(1, 9)
TURN_NAMES = ["Production, Construction, Movement", "Construction, Movement",
              "Movement"]

STARS = """Acrux .875 .87; Adara .18 .24; Agena .18 .075; Algol .28 .75;
Alhema .86 .24; Alioth .37 .5; Almak .84 .125; Altair .58 .62; Aludra .71 .95;
Antares .075 .35; Arneb .485 .37; Ascella .43 .875; Canopus .55 .55;
Capella .76 .075; Caph .79 .33; Castor .05 .95; Deneb .85 .55; Diphda .1 .75;
Dubhe .475 .5; Enif .62 .77; Furud .64 .075; Gemma .5 .625; Gienah .8 .75;
Hamal .75 .625; Izar .29 .21; Kochab .18 .38; Megrez .69 .8; Mintaka .57 .27;
Mirzam .37 .8; Mizar .6 .375; Nath .7 .375; Nihal .23 .6; Nunki .39 .25;
Phaeda .58 .95; Polaris .65 .2; Pollux .68 .875; Procyon .15 .6;
Rastaban .29 .375; Regulus .69 .6; Rigel .8 .8; Ross .88 .61; Sabik .6 .745;
Saiph .23 .875; Schedar .27 .6; Sirius .42 .18; Shedir .57 .47;
Spica .475 .79; Tarazed .9 .42; Thuban .83 .4; Vega .23 .7; Wesen .39 .65;
Wolf .54 .92; Zosma .86 .05"""
STARS = [(n, float(u), float(v)) for n, u, v in
         (s.split() for s in STARS.replace("\n", " ").split(";"))]
# class -> ranges of Industry, Population, Social, Planetary (draw order)
RANGES = {1: [(25, 90), (10, 30), (5, 20), (5, 20)],
          2: [(30, 70), (40, 80), (30, 75), (30, 75)],
          3: [(30, 55), (75, 100), (55, 100), (55, 100)]}


class Model:
    """The universe of the seed as the notes make it: objects by id."""

    def __init__(self, seed):
        self.gen = MT(seed)
        self.objs = {0: {"type": UNIVERSE, "name": "The Universe",
                         "pos": (2100000000, 1575000000, 0),
                         "children": []}}
        self.systems = []
        nid = 1
        for name, u, v in STARS:
            sid = nid
            nid += 1
            pos = (int(4 * 1050000000 * u), int(3 * 1050000000 * v), 0)
            s = {"type": SYSTEM, "name": name, "pos": pos, "u": u, "v": v,
                 "children": [], "id": sid}
            self.objs[sid] = s
            self.systems.append(s)
            for i in range(1, self.gen.range(0, 3) + 1):
                oy = self.gen.range(-100, 100)
                ox = self.gen.range(-100, 100)
                cls = self.gen.range(1, 3)
                maxima = {}
                for stat, (lo, hi) in zip((IND, POP, SOC, PLAN),
                                          RANGES[cls]):
                    x = self.gen.range(lo, hi)
                    maxima[stat] = x - x % 5
                self.objs[nid] = {
                    "type": PLANET, "name": "%s %d" % (name, i),
                    "pos": (pos[0] + 420000 * ox, pos[1] + 315000 * oy, 0),
                    "size": cls, "max": maxima, "parent": sid, "id": nid}
                s["children"].append(nid)
                nid += 1
        self.owned = set()

    def home(self):
        """The home planet id the next player gets (notes 7)."""
        n = len(self.systems)

        def primary(s):
            if s["id"] in self.owned:
                return None
            for pid in s["children"]:
                if self.objs[pid]["size"] == 3:
                    return pid
            return None
        def tries():
            for _ in range(n * 4 // 3):
                yield self.systems[self.gen.range(1, n - 1)]
            for s in self.systems:
                yield s
        for s in tries():
            pid = primary(s)
            if pid:
                self.owned.add(s["id"])
                return pid
        return None


def wrapdist(a, b):
    dx = abs(a["u"] - b["u"])
    dx = 1 - dx if dx > 0.5 else dx
    dy = abs(a["v"] - b["v"])
    dy = 1 - dy if dy > 0.5 else dy
    return math.sqrt(dx * dx + dy * dy)


# ------------------------------------------------------------ clients

def server(data_dir=None, web=False):
    extra = ["--set", "web_spectators=after_end"] if web else []
    return tplib.Server(
        "--ruleset", "rfts", "--set", "turn_length=0",
        "--set", "ruleset_settings.random_seed=%d" % SEED,
        "--set", "ruleset_settings.game_length=%d" % LENGTH,
        "--set", "ruleset_settings.max_players=3", *extra,
        data_dir=data_dir, port_flags=("--web-port",) if web else ())


def web_json(srv, path):
    """GET path on the server's web listener, decoded."""
    url = "http://127.0.0.1:%d%s" % (srv.ports["--web-port"], path)
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode("utf-8"))


def obj(oid):
    return [{"objectid": oid, "validtypes": []}]


def ships(*pairs):
    return {"choices": [], "selection": [{"id": d, "count": n}
                                         for d, n in pairs]}


def text(s):
    return {"maxlength": 0, "value": s}


def stats(v):
    return {r["resource"]: r["stored"] for r in
            v["Resource List"]["resources"]}


def owner(v):
    return v["Owner"]["id"]


def fleet_ships(v):
    return [(r["id"], r["count"]) for r in v["Ship List"]["references"]]


def accepted(f):
    return f.is_("Order")


# ------------------------------------------------------------ the game

def check_universe(m, a, homes):
    objs = a.objects()
    systems = [o for o in objs.values() if o["_frame"]["otype"] == SYSTEM]
    T.is_(len(systems), 53, "alice sees the 53 star systems")
    diffs = []
    for s in m.systems:
        v = objs.get(s["id"])
        if v is None:
            diffs.append("no system %d" % s["id"])
            continue
        fr = v["_frame"]
        if fr["name"] != s["name"] or fr["parent"] != 0:
            diffs.append("system %d: %r" % (s["id"], fr["name"]))
        pos = v["Position"]
        if (pos["x"], pos["y"], pos["z"]) != s["pos"]:
            diffs.append("system %s at %r, notes %r" % (s["name"], pos,
                                                        s["pos"]))
    T.ok(not diffs, "star names and unit positions x 4.2e9 / 3.15e9",
         "\n".join(diffs[:10]))
    home = m.objs[homes["alice"]]
    got = objs.get(homes["alice"])
    T.ok(got is not None and got["_frame"]["name"] == home["name"] and
         got["Size"]["size"] == 3, "alice's home planet is %s (the notes' "
         "pick), primary" % home["name"], repr(got and got["_frame"]))
    st = stats(got)
    T.is_({k: st[k] for k in (RP, POP, IND, SOC, PLAN, 9)},
          {RP: 200, POP: 50, IND: 15, SOC: 52, PLAN: 55, 9: 12},
          "home planet starting values over the protocol")
    maxima = {r["resource"]: r["minable"] for r in
              got["Resource List"]["resources"]}
    T.is_({k: maxima[k] for k in (IND, POP, SOC, PLAN)}, home["max"],
          "home planet maxima (multiples of 5) as drawn")
    pos = got["Position"]
    T.is_((pos["x"], pos["y"], pos["z"]), home["pos"], "planet offset")
    sysv = objs[home["parent"]]
    kids = sorted(sysv["_frame"]["contains"])
    T.ok(all(k in kids for k in m.objs[home["parent"]]["children"]),
         "alice sees her home system's %d planets" %
         len(m.objs[home["parent"]]["children"]), repr(kids))
    unseen = [p for p in m.objs.values() if p["type"] == PLANET and
              p["parent"] != home["parent"]]
    T.ok(unseen and not any(p["id"] in objs for p in unseen),
         "alice sees no planet of the systems she has not explored")
    return objs


def after(turn, m, players, state, log, ha, hb, sys_b):
    """Checks once the turn before `turn` has ended."""
    alice, bob, carol = players
    a = alice.objects()
    mine = {o["_frame"]["name"]: o for o in a.values()
            if o["_frame"]["otype"] == FLEET and owner(o) == alice.id}
    if turn == 1:
        st = stats(a[ha])
        T.is_((st[IND], st[COL], st[RP]), (18, 4, 200 - 50 - 112),
              "turn 0 done: Industry 15 + 3, 4 colonists, RP 200 - 50 - 112")
        T.ok("Hammer" in mine and fleet_ships(mine["Hammer"]) == [(2, 8)],
             "Build Fleet: 'Hammer' with 8 Mark1", repr(sorted(mine)))
        eye = mine.get("Eye")
        T.ok(eye is not None and eye["_frame"]["parent"] == 0,
             "Rename Fleet: 'Eye', now in transit (parent universe)",
             repr(eye and eye["_frame"]))
        T.ok(eye and not bob.sees(eye["_frame"]["id"]) and
             not carol.sees(eye["_frame"]["id"]),
             "the fleet in transit is hidden from the other players")
        c = {o["_frame"]["name"] for o in carol.objects().values()
             if o["_frame"]["otype"] == FLEET}
        T.ok("carol's New Fleet" in c, "an unnamed fleet is "
             "\"<player>'s New Fleet\"", repr(c))
        T.is_(stats(bob.objects()[hb])[9], 17, "bob: 12 + 5 PDB1")
    if turn == 2:
        T.ok("Settlers" in mine and fleet_ships(mine["Settlers"]) ==
             [(3, 4)], "4 transports built from 4 colonists",
             repr(sorted(mine)))
        T.is_(stats(a[ha])[COL], 0, "... the colonists are used")
        T.ok("New fleet" in mine and fleet_ships(mine["New fleet"]) ==
             [(2, 1)] and fleet_ships(mine["Hammer"]) == [(2, 7)],
             "Split Fleet: 1 Mark1 into 'New fleet', 7 left in Hammer")
    if turn == 3:
        T.ok("Guard" not in mine and "New fleet" in mine and
             fleet_ships(mine["New fleet"]) == [(2, 2)],
             "Merge Fleet: Guard merged into 'New fleet'",
             repr(sorted(mine)))
    hammer = mine.get("Hammer")
    if state["arrived"] is None and hammer and \
            hammer["_frame"]["parent"] == sys_b:
        state["arrived"] = turn
        T.ok(alice.sees(hb), "Hammer arrived at bob's home (turn %d): "
             "alice now sees bob's planet" % turn)
    new = [x for x in log["alice"] if x[2] == turn]
    state["bombards"] += len([x for x in new if x[0] == "Bombard complete"])
    if state["colonised"] is None and \
            any(x[0] == "Colonised planet" for x in new):
        state["colonised"] = turn
        v = alice.objects().get(state["target"])
        T.ok(v is not None and owner(v) == alice.id,
             "Colonise: %s is alice's (turn %d)" % (m.objs[state["target"]][
                 "name"], turn), repr(v and v["_frame"]))


def tp03_check(srv, m, ha, hammer):
    """alice and bob over TP03: planets and fleets as TP03 kinds with
    their extra data (owner, resources; owner, ships, damage)."""
    c = srv.client(version=3)
    try:
        c.connect("rfts-tp03/1.0")
        T.ok(c.login("alice", "pw-alice").is_("Okay"), "TP03: alice logs in")
        frames = c.request("GetObjectsByID", {"ids": [0, ha, hammer]})
        uni, planet, fleet = frames[1], frames[2], frames[3]
        T.ok(uni["otype"] == 0 and planet["otype"] == 3 and
             fleet["otype"] == 4, "TP03: universe 0, planet 3, fleet 4")
        age, _ = tplib.compile_layout("I:age").decode(raw_params(uni))
        T.is_(age["age"], 1, "TP03: the universe's turn")
        lay = tplib.compile_layout("i:owner [I:resource I:units I:minable "
                                   "I:inaccessible]:resources")
        vals, _ = lay.decode(raw_params(planet))
        res = {r["resource"]: (r["units"], r["minable"])
               for r in vals["resources"]}
        T.ok(vals["owner"] == 1 and len(res) == 14 and
             res[IND] == (18, m.objs[ha]["max"][IND]) and
             res[POP][1] == m.objs[ha]["max"][POP],
             "TP03: alice's planet: owner, 14 resources (current, max)",
             repr(vals))
        lay = tplib.compile_layout("i:owner [I:type I:count]:ships I:damage")
        vals, _ = lay.decode(raw_params(fleet))
        T.ok(vals["owner"] == 1 and vals["ships"] == [{"type": 2,
                                                       "count": 8}] and
             vals["damage"] == 0, "TP03: Hammer: owner, 8 Mark1, damage",
             repr(vals))
        T.ok(sorted(fleet["ordertypes"]) == [MOVE, SPLIT, MERGE, RENAME],
             "TP03: the fleet's allowed orders", repr(fleet))
        params = encode_params(ORDER_PARAM, [7], [text("Hammer")])
        r = c.call("OrderInsert", {"id": hammer, "slot": -1, "otype": RENAME,
                                   "turns": 0, "resources": [],
                                   "params": params.decode(
                                       "utf-8", "surrogateescape")})
        T.ok(r.is_("Okay"), "TP03: Rename Fleet inserted", repr(r))
    finally:
        c.close()
    c = srv.client(version=3)
    try:
        c.connect("rfts-tp03/1.0")
        c.login("bob", "pw-bob")
        frames = c.request("GetObjectsByID", {"ids": [ha]})
        T.ok(frames[-1].is_("Fail"), "TP03: bob cannot see alice's planet",
             repr(frames))
    finally:
        c.close()


def restart_copy(srv):
    """A consistent copy of the running server's game, and a second server
    started from it (a restarted server)."""
    dest = os.path.join(srv.tmp, "copy")
    r = subprocess.run([tplib.tpserver_path(), "backup", "--data",
                        srv.data_dir, dest], capture_output=True,
                       timeout=30)
    T.ok(r.returncode == 0, "tpserver backup of the running game",
         r.stdout.decode() + r.stderr.decode())
    srv2 = server(data_dir=dest).start()
    return srv2


def play():
    m = Model(SEED)
    with server(web=True) as srv:
        alice = Client(srv, "alice")
        bob = Client(srv, "bob")
        carol = Client(srv, "carol")
        players = [alice, bob, carol]
        homes = {p.name: m.home() for p in players}
        c = srv.client(4)
        c.connect("rfts-test/1.0")
        f = c.create_account("dave", "pw-dave")
        T.ok(f.is_("Fail") and "full" in f["result"],
             "a fourth player is refused (max_players 3)", repr(f))
        c.close()

        T.is_([alice.desc(t)["name"] for t in range(5)],
              ["Universe", "Galaxy", "Star System", "Planet", "Fleet"],
              "ObjectDescs 0-4")
        T.is_([alice.odesc(t)["name"] for t in range(8)], ORDER_NAMES,
              "OrderDescs 0-7")
        tr = alice.call("GetTimeRemaining")
        T.is_(tr.get("turnname"), TURN_NAMES[0], "turn 0's name")
        info = web_json(srv, "/api/game")
        T.ok(info["turn_name"] == TURN_NAMES[0] and
             info["ruleset"] == {"name": "TP RFTS", "version": "0.5"} and
             info["spectators"] is False, "web /api/game: ruleset, turn "
             "name; no spectators before the end", repr(info))
        check_universe(m, alice, homes)
        ha, hb, hc = homes["alice"], homes["bob"], homes["carol"]
        T.ok(not bob.sees(ha), "bob cannot see alice's home planet")
        T.ok(bob.sees(hb) and bob.sees(m.objs[ha]["parent"]),
             "bob sees his planet and every star system")
        for p in players:
            p.new_messages()

        fleets = {p.name: [o for o in p.objects().values()
                           if o["_frame"]["otype"] == FLEET and
                           owner(o) == p.id] for p in players}
        T.ok(all(len(v) == 1 and fleet_ships(v[0]) == [(3 * i + 1, 1)]
                 for i, v in enumerate(fleets[p.name] for p in players)),
             "each player has one fleet of one Scout (designs 1, 4, 7)")
        fa = fleets["alice"][0]["_frame"]["id"]
        fb = fleets["bob"][0]["_frame"]["id"]
        T.is_(fleets["alice"][0]["_frame"]["name"], "alice's fleet",
              "the fleet's name")
        SCOUT, MARK1, TRANSPORT = 1, 2, 3        # alice's designs
        sys_b = m.objs[hb]["parent"]
        sys_a = m.objs[ha]["parent"]

        # ---- turn 0: every order type refused at least once
        refusals = [
            (alice, ha, PRODUCE, [ships((IND, 50))], "Over budget",
             "Produce over budget"),
            (alice, fa, PRODUCE, [ships((IND, 1))], None,
             "Produce on a fleet"),
            (bob, ha, PRODUCE, [ships((IND, 1))], None,
             "Produce on someone else's planet"),
            (alice, ha, BUILD, [ships((TRANSPORT, 3)), text("x")],
             "Over budget", "Build Fleet of transports without colonists"),
            (alice, ha, BUILD, [ships((5, 1)), text("x")], None,
             "Build Fleet of another player's design"),
            (alice, fa, BUILD, [ships((SCOUT, 1)), text("x")], None,
             "Build Fleet on a fleet"),
            (alice, fa, MOVE, obj(fa), "star system", "Move to a fleet"),
            (alice, fa, MOVE, obj(99999), "star system", "Move to nothing"),
            (alice, ha, MOVE, obj(sys_b), None, "Move a planet"),
            (alice, fa, SPLIT, [ships((SCOUT, 1))], "at least one ship",
             "Split Fleet of every ship"),
            (alice, fa, SPLIT, [ships((MARK1, 1))], None,
             "Split Fleet of ships it does not have"),
            (alice, fa, MERGE, obj(ha), "must be a fleet",
             "Merge Fleet with a planet"),
            (alice, fa, MERGE, obj(fb), "must be yours",
             "Merge Fleet with bob's fleet"),
            (alice, fa, MERGE, obj(fa), "itself", "Merge Fleet with itself"),
            (alice, fa, RENAME, [text("")], "empty", "Rename Fleet to ''"),
            (alice, fa, COLONISE, obj(hb), None,
             "Colonise without transports"),
            (alice, fa, BOMBARD, obj(hb), None,
             "Bombard away from an enemy planet"),
        ]
        for p, oid, ot, values, words, name in refusals:
            f = p.insert(oid, ot, values)
            T.ok(refused(f, words), "refused: " + name,
                 repr(f) + (" " + f["result"] if f.is_("Fail") else ""))
        T.ok(accepted(alice.insert(ha, PRODUCE, [ships((IND, 3), (COL, 4))])),
             "alice: Produce 3 Industry, 4 Colonists")
        f = alice.insert(ha, BUILD, [ships((MARK1, 8)), text("Hammer")])
        T.ok(accepted(f) and f["turns"] == 1, "alice: Build Fleet 8 Mark1 "
             "'Hammer', 1 turn", repr(f))
        T.ok(accepted(alice.insert(fa, RENAME, [text("Eye")])),
             "alice: Rename Fleet 'Eye'")
        f = alice.insert(fa, MOVE, obj(hb))
        want = math.floor(wrapdist(m.objs[sys_a], m.objs[sys_b]) / 0.1 + 0.5)
        T.ok(accepted(f) and f["turns"] == want, "alice: Move the scout to "
             "bob's home (a planet: its system), %d turns" % want, repr(f))
        T.ok(accepted(bob.insert(hb, PRODUCE, [ships((TECH, 100), (9, 5))])),
             "bob: Produce 100 Ship Technology, 5 PDB1")
        T.ok(accepted(bob.insert(hb, BUILD, [ships((4, 1)), text("Watch")])),
             "bob: Build Fleet 1 Scout 'Watch'")
        T.ok(accepted(carol.insert(hc, BUILD, [ships((8, 2)), text("")])),
             "carol: Build Fleet 2 Mark1, no name")

        log = {p.name: [] for p in players}
        state = {"hammer": None, "settlers": None, "colonised": None,
                 "bombards": 0, "arrived": None, "target": None,
                 "btarget": hb}

        def by_name(p, name):
            for o in p.objects().values():
                if o["_frame"]["name"] == name and owner(o) == p.id:
                    return o["_frame"]["id"]
            return None

        def turn_orders(turn, who):
            """The orders of turn; who: the three clients (the main server
            or the copy)."""
            a, b, c = who
            out = []
            if turn == 1:
                hammer = by_name(a, "Hammer")
                out.append(("alice", a.insert(ha, BUILD, [
                    ships((TRANSPORT, 4)), text("Settlers")])))
                out.append(("alice", a.insert(ha, BUILD, [
                    ships((MARK1, 1)), text("Guard")])))
                out.append(("alice", a.insert(hammer, SPLIT,
                                              [ships((MARK1, 1))])))
                out.append(("alice", a.insert(hammer, MOVE, obj(sys_b))))
            if turn == 2:
                nf, guard = by_name(a, "New fleet"), by_name(a, "Guard")
                settlers = by_name(a, "Settlers")
                f = a.insert(nf, MERGE, obj(fb))
                T.ok(refused(f, "yours"), "Merge Fleet with bob's fleet "
                     "refused", repr(f))
                out.append(("alice", a.insert(nf, MERGE, obj(guard))))
                f = a.insert(settlers, COLONISE, obj(sys_a))
                T.ok(refused(f, "planet"), "Colonise of a star system "
                     "refused", repr(f))
                f = a.insert(settlers, COLONISE, obj(ha))
                T.ok(refused(f, "own"), "Colonise of one's own planet "
                     "refused", repr(f))
                out.append(("alice", a.insert(settlers, MOVE,
                                              obj(state["target"]))))
                out.append(("alice", a.insert(settlers, COLONISE,
                                              obj(state["target"]))))
                out.append(("bob", b.insert(fb, MOVE, obj(sys_a))))
            hammer = by_name(a, "Hammer")
            if state["arrived"] is not None and hammer is not None:
                # bombard bob's home while it is his, then carol's
                seen = a.objects()
                tgt = state["btarget"]
                tv = seen.get(tgt)
                here = seen[hammer]["_frame"]["parent"]
                if tv and owner(tv) not in (0, a.id):
                    if here == m.objs[tgt]["parent"] and turn % 2 == 1:
                        out.append(("alice", a.insert(hammer, BOMBARD,
                                                      obj(tgt))))
                elif tgt == hb:
                    state["btarget"] = hc
                    out.append(("alice", a.insert(hammer, MOVE, obj(hc))))
            hbv = b.objects().get(hb)
            if turn % 3 == 0 and turn >= 3 and hbv and owner(hbv) == b.id:
                out.append(("bob", b.insert(hb, BUILD, [
                    ships((5, 1)), text("Defender %d" % turn)])))
            hcv = c.objects().get(hc)
            if turn % 3 == 0 and turn >= 3 and hcv and owner(hcv) == c.id:
                out.append(("carol", c.insert(hc, PRODUCE, [
                    ships((SOC, 2), (MAINT, 10))])))
                out.append(("carol", c.insert(hc, BUILD, [
                    ships((7, 1)), text("Picket %d" % turn)])))
            return out

        # the colonise target: the nearest system to alice's with a planet
        # and no home in it
        cands = [s for s in m.systems if s["children"] and
                 s["id"] not in m.owned]
        near = min(cands, key=lambda s: wrapdist(m.objs[sys_a], s))
        state["target"] = near["children"][0]
        restart_ok = None
        misnamed = []
        for turn in range(LENGTH):
            tr = alice.call("GetTimeRemaining")
            if tr.get("turn") != turn or tr.get("turnname") != \
                    TURN_NAMES[turn % 3]:
                misnamed.append((turn, tr.get("turn"), tr.get("turnname")))
            uni = alice.objects()[0]
            if uni["Turn"]["value"] != turn:
                misnamed.append((turn, "universe Turn", uni["Turn"]))
            if turn == 1:
                tp03_check(srv, m, ha, by_name(alice, "Hammer"))
            if turn > 0:
                for name, f in turn_orders(turn, players):
                    if not accepted(f):
                        T.ok(False, "turn %d: %s's order accepted" % (
                            turn, name), repr(f) + " " + f.get("result", ""))
            copy = None
            if turn == RESTART_AT:
                copy = restart_copy(srv)
                others = [Client(copy, p.name, create=False)
                          for p in players]
                restart_ok = all(view(p) == view(q)
                                 for p, q in zip(players, others))
                T.ok(restart_ok, "the copy's players see what they see on "
                     "the running server")
            bad = finish(players)
            if bad:
                T.ok(False, "FinishedTurn", "\n".join(bad))
            wait_turn(alice, turn + 1)
            for p in players:
                log[p.name] += p.new_messages()
            if copy is not None:
                bad = finish(others)
                wait_turn(others[0], turn + 1)
                for p, q in zip(players, others):
                    same = view(p) == view(q)
                    msgs = [x for x in q.new_messages() if x[2] == turn + 1]
                    mine = [x for x in log[p.name] if x[2] == turn + 1]
                    restart_ok = restart_ok and same and msgs == mine and \
                        not bad
                    T.ok(same and msgs == mine, "restarted copy, turn %d: "
                         "%s sees the same objects and gets the same %d "
                         "messages" % (turn + 1, p.name, len(mine)),
                         repr((bad, msgs, mine)))
                for q in others:
                    q.close()
                copy.stop()
            after(turn + 1, m, players, state, log, ha, hb, sys_b)
        T.ok(restart_ok, "the restarted copy made the same turn %d" %
             RESTART_AT)
        T.ok(not misnamed, "turns 0-%d: TimeRemaining names each turn by "
             "its number mod 3, and the universe's Turn is the turn" %
             (LENGTH - 1), repr(misnamed))
        tr = alice.call("GetTimeRemaining")
        T.is_(tr.get("turn"), LENGTH, "the game reached turn %d" % LENGTH)
        info = web_json(srv, "/api/game")
        T.ok(info["spectators"] is True and info["turn_name"] == "Game over",
             "web: the game_over hook says the game is over", repr(info))
        scores = {p["name"]: p["score"] for p in
                  web_json(srv, "/api/players")}
        body = [b for s, b, t in log["alice"] if s == "Game over!"]
        T.ok(body and all("%s: %d victory points" % (n, v) in body[0]
                          for n, v in scores.items()),
             "the players' scores are their victory points, as the Game "
             "over! message lists them", repr((scores, body)))
        for p in players:
            over = [s for s, b, t in log[p.name] if s == "Game over!"]
            T.is_(len(over), 1, "%s got 'Game over!'" % p.name)
        body = [b for s, b, t in log["alice"] if s == "Game over!"]
        T.ok(body and all(n in body[0] for n in ("alice", "bob", "carol"))
             and "victory points" in body[0], "... with every score",
             repr(body))
        f = alice.insert(ha, PRODUCE, [ships((IND, 1))])
        T.ok(refused(f, "over"), "no orders once the game is over", repr(f))
        subjects = {n: set(s for s, b, t in log[n]) for n in log}
        for n, subj in (("alice", "Production complete"),
                        ("alice", "Build Fleet order complete"),
                        ("alice", "Split Fleet order complete"),
                        ("alice", "Merge Fleet order complete"),
                        ("alice", "Move fleet order complete"),
                        ("alice", "Colonised planet"),
                        ("alice", "Combat"), ("bob", "Combat"),
                        ("alice", "Bombard complete"),
                        ("bob", "Planet bombarded"),
                        ("bob", "Ship Technology"),
                        ("carol", "Production complete")):
            T.ok(subj in subjects[n], "%s got '%s'" % (n, subj),
                 repr(sorted(subjects[n])))
        T.ok(state["bombards"] >= 1, "Hammer bombarded bob's home (%d "
             "times)" % state["bombards"])
        T.ok("Planet population dead!" in subjects["bob"], "bob's "
             "bombarded home died out (social environment below 31)")
        for p in players:
            p.close()
    return


def settings_checked():
    """The settings' bounds: game_length 0 and max_players 0 are refused
    by --check-config with a clear message; 10 is fine."""
    tmp = tempfile.mkdtemp(prefix="rfts-config-")
    try:
        for key, value, ok in (("game_length", 0, False),
                               ("max_players", 0, False),
                               ("game_length", 10, True)):
            r = subprocess.run([tplib.tpserver_path(), "--check-config",
                                "--ruleset", "rfts", "--data",
                                os.path.join(tmp, "data"), "--set",
                                "ruleset_settings.%s=%d" % (key, value)],
                               cwd=tmp, capture_output=True, timeout=30)
            out = r.stdout.decode() + r.stderr.decode()
            if ok:
                T.ok(r.returncode == 0, "--check-config: %s=%d accepted" %
                     (key, value), out[-500:])
            else:
                T.ok(r.returncode != 0 and key in out and "at least" in out,
                     "--check-config: %s=%d refused with a message" %
                     (key, value), out[-500:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    T.run(settings_checked, play)
    T.done()


if __name__ == "__main__":
    main()
