#!/usr/bin/env python3
"""MTSec over the protocol: three TP04 clients (alice, bob, carol) play a
game of the mtsec ruleset to its end, ending every turn with
FinishedTurn.

* The static data as clients see it: object and order types, the 210
  resources, 61 properties, 52 components.
* AddDesign of valid designs (a weapon, a coloniser) answered with the
  computed properties, and of an invalid one refused with the reason.
* Every order type inserted once where it is refused (Fail) and where it
  is taken.
* Alice builds weapons and a coloniser, loads, unloads, splits and
  merges, colonises the nearest free planet, sends points and enhances,
  then flies to bob's home planet: the battle there takes it (two Scouts'
  tubes fire two Sparks of 200 >= the planet's 2 x 75), and both players
  get a Combat message referring to the battle (reference type -1000).
* The game ends at turn max_turns = 32: alice, with the most planets,
  wins; everyone gets "Game over", the turn name says so and no one may
  join any more.

The expected numbers come from the MTSec notes (rulesets/mtsec.md) and
the README's rules, not from the ruleset."""

import base64
import math
import os
import sys
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
import weblib  # noqa: E402
from test_protocol import (  # noqa: E402
    ORDER_PARAM, Player, encode_params, object_values)

T = tplib.Tap.current or tplib.Tap()

SEED = 21
MAX_TURNS = 32
NOP, MOVE, BUILD_FLEET, BUILD_WEAPON, COLONISE, SPLIT, MERGE, ENHANCE, \
    SEND_POINTS, LOAD, UNLOAD = range(11)
ORDER_NAMES = ["No Operation", "Move", "Build Fleet", "Build Weapon",
               "Colonise", "Split Fleet", "Merge Fleet", "Enhance",
               "Send Points", "Load Armament", "Unload Armament"]
PLANET, FLEET = 3, 4
FACTORIES, FIRST_WEAPON = 10, 11
# Components (mtsec.md 4.3).
ADV_BATTLE_SCOUT, ALPHA_MISSILE_HULL, CERIUM, ANTIMATTER, COLONY, \
    SCOUT_HULL = 3, 20, 13, 17, 52, 1


class Client(Player):
    def __init__(self, srv, name):
        Player.__init__(self, srv, name=name)
        self.descs = {}
        self.odescs = {}
        self.seen = 0

    def objects(self):
        out = {}
        for f in self.get("GetObjectsByID", self.list_ids("GetObjectIDs")):
            t = f["otype"]
            if t not in self.descs:
                self.descs[t] = self.get("GetObjectDesc", [t])[0]
            v = object_values(self.descs[t], f)
            v["_frame"] = f
            out[f["id"]] = v
        return out

    def insert(self, oid, otype, values):
        if otype not in self.odescs:
            self.odescs[otype] = self.get("GetOrderDesc", [otype])[0]
        types = [p["type"] for p in self.odescs[otype]["parameters"]]
        params = encode_params(ORDER_PARAM, types, values)
        return self.req("OrderInsert", {
            "id": oid, "slot": -1, "otype": otype, "turns": 0,
            "resources": [],
            "params": params.decode("utf-8", "surrogateescape")})[0]

    def design(self, name, cat, comps):
        return self.call("AddDesign", {
            "id": 0, "modtime": 0, "categories": [cat], "name": name,
            "description": "", "inuse": 0, "owner": self.id,
            "components": [{"id": c, "count": n} for c, n in comps],
            "feedback": "", "properties": []})

    def messages(self):
        board = self.get("GetBoards", [0])[0]
        n = board["messages"]
        out = []
        if n > self.seen:
            frames = self.req("GetMessage", {
                "id": board["id"], "slots": list(range(self.seen, n))})[1:]
            out = [(f["subject"], f["body"],
                    [(r["type"], r["id"]) for r in f["references"]])
                   for f in frames]
        self.seen = n
        return out


def t_(n):
    return {"turns": n, "maxtime": 0}


def pos(p):
    return {"x": p["x"], "y": p["y"], "z": p["z"]}


def lst(entries):
    return {"choices": [], "selection": [{"id": i, "count": n}
                                         for i, n in entries]}


def name(s):
    return {"maxlength": 0, "value": s}


def dist(a, b):
    return int(math.sqrt(sum((a[k] - b[k]) ** 2 for k in "xyz")))


def by_name(objs, n):
    for oid, o in objs.items():
        if o["_frame"]["name"] == n:
            return oid
    return None


def res(o, rid, key="Resource List"):
    for r in o[key]["resources"]:
        if r["resource"] == rid:
            return r["stored"]
    return 0


def ships(o):
    return [(r["id"], r["count"]) for r in o["Ship List"]["references"]]


def basic(user):
    tok = base64.b64encode(("%s:pw-%s" % (user, user)).encode()).decode()
    return {"Authorization": "Basic " + tok}


def play():
    args = ["--ruleset", "mtsec", "--set", "turn_length=0",
            "--set", "ruleset_settings.random_seed=%d" % SEED,
            "--set", "ruleset_settings.max_turns=%d" % MAX_TURNS]
    with tplib.Server(*args, port_flags=[weblib.WEB]) as srv:
        alice = Client(srv, "alice")
        bob = Client(srv, "bob")
        carol = Client(srv, "carol")
        players = (alice, bob, carol)
        A, B, C = alice.id, bob.id, carol.id

        # ---------------------------------------------- static data
        names = [alice.get("GetObjectDesc", [t])[0]["name"]
                 for t in range(5)]
        T.is_(names, ["Universe", "Galaxy", "Star System", "Planet",
                      "Fleet"], "object types 0-4")
        onames = [o["name"] for o in alice.get("GetOrderDesc",
                                               list(range(11)))]
        T.is_(onames, ORDER_NAMES, "order types 0-10")
        rids = alice.list_ids("GetResourceIDs")
        T.is_(rids, list(range(1, 211)), "resources 1-210 (10 + 200 "
              "weapon resources)")
        T.is_(len(alice.list_ids("GetPropertyIDs")), 61, "61 properties")
        T.is_(len(alice.list_ids("GetComponentIDs")), 52, "52 components")
        comp = alice.get("GetComponent", [18])[0]
        T.is_(comp["name"], "Alpha Missile Tube", "component 18")
        designs = alice.get("GetDesign", list(range(1, 7)))
        T.is_([(d["name"], d["owner"]) for d in designs],
              [("Scout", A), ("Alpha Missile", A), ("Scout", B),
               ("Alpha Missile", B), ("Scout", C), ("Alpha Missile", C)],
              "two stock designs per player")
        sp = dict((p["id"], p["value"]) for p in designs[0]["properties"])
        T.ok(sp.get(23) == "1000 mega-units" and sp.get(34) == "7 turns"
             and sp.get(15) == "75 HP", "Scout: Speed (Weapons copy, id "
             "23), ProductCost 7, HitPoints 75", repr(sp))

        # ---------------------------------------------- designs
        f = alice.design("Spark", 2, [(ALPHA_MISSILE_HULL, 1),
                                      (ANTIMATTER, 2)])
        T.ok(f.is_("Design") and f["feedback"] == "Design is valid",
             "AddDesign Spark (Alpha hull + 2 Antimatter): valid", repr(f))
        spark = f["id"]
        props = dict((p["id"], p["value"]) for p in f["properties"])
        T.ok(props.get(25) == "200 hit points" and props.get(34) ==
             "3 turns" and props.get(30) == "3", "its properties: "
             "explosiveness 200, cost 3, MissileSize 3", repr(props))
        f = alice.design("Settler", 1, [(ADV_BATTLE_SCOUT, 1), (COLONY, 1)])
        T.ok(f.is_("Design") and f["feedback"] == "Design is valid",
             "AddDesign Settler (Advanced Battle Scout + Colonisation "
             "Module): valid", repr(f))
        settler = f["id"]
        n_designs = len(alice.list_ids("GetDesignIDs"))
        f = alice.design("Twin", 1, [(SCOUT_HULL, 2)])
        T.ok(f.is_("Fail") and "can only have one hull" in f["result"],
             "AddDesign of two hulls: Fail naming why", repr(f))
        f = alice.design("Dud", 2, [(ALPHA_MISSILE_HULL, 1), (CERIUM, 1)])
        T.ok(f.is_("Fail") and "can't fit" in f["result"],
             "AddDesign of a missile too full: Fail naming why", repr(f))
        T.is_(len(alice.list_ids("GetDesignIDs")), n_designs,
              "refused designs are not kept")

        objs = alice.objects()
        ahome = by_name(objs, "alice's Planet")
        bhome = by_name(objs, "bob's Planet")
        chome = by_name(objs, "carol's Planet")
        afleet = by_name(objs, "alice's Fleet #1")
        bfleet = by_name(objs, "bob's Fleet #1")
        start_objs = objs
        apos = objs[ahome]["Position"]
        bpos = objs[bhome]["Position"]
        T.ok(objs[ahome]["Owner"]["id"] == A and
             20 <= objs[ahome]["Factories"]["value"] <= 50,
             "alice's home planet: hers, Factories 20-50")
        # The nearest free planet to colonise.
        free = [(dist(o["Position"], apos), oid) for oid, o in objs.items()
                if o["_frame"]["otype"] == PLANET and
                o["Owner"]["id"] in (0, 0xFFFFFFFF, -1)]
        target = min(free)[1]

        # ---------------------------------------------- refusals
        def refused(client, oid, otype, values, text, label):
            f = client.insert(oid, otype, values)
            T.ok(f.is_("Fail") and (text is None or text in f["result"]),
                 "%s refused: %s" % (ORDER_NAMES[otype], label), repr(f))

        refused(alice, ahome, NOP, [t_(-1)], None, "wait -1")
        refused(alice, afleet, MOVE, [{"x": 2 ** 62, "y": 0, "z": 0}],
                "out of range", "a point out of range")
        refused(alice, ahome, BUILD_FLEET, [lst([]), name("x")], "empty",
                "an empty list")
        refused(alice, ahome, BUILD_WEAPON, [lst([(1, 1)])], "not valid",
                "a ship design")
        refused(alice, afleet, COLONISE, [], None, "no coloniser aboard")
        refused(bob, afleet, SPLIT, [lst([(1, 1)])], None,
                "another player's fleet")
        refused(bob, afleet, MERGE, [], None, "another player's fleet")
        refused(alice, ahome, ENHANCE, [t_(5)], "at least 10",
                "5 points")
        refused(alice, ahome, SEND_POINTS, [lst([(bhome, 5)])],
                "not another planet of yours", "to bob's planet")
        refused(alice, afleet, LOAD, [lst([(3, 1)])], "not a weapon",
                "Uranium")
        refused(alice, afleet, UNLOAD, [lst([])], "No weapons",
                "nothing")

        # ---------------------------------------------- the plan
        def take(client, oid, otype, values, label):
            f = client.insert(oid, otype, values)
            T.ok(f.is_("Order"), "%s taken: %s" % (ORDER_NAMES[otype],
                                                    label), repr(f))
            return f

        f = take(alice, ahome, BUILD_WEAPON, [lst([(spark, 3)])],
                 "3 Sparks")
        T.ok(f.is_("Order") and
             f["resources"] == [{"resource": FACTORIES, "amount": 9}],
             "its cost: 3 x 3 = 9 Factories points", repr(f))
        T.is_(alice.get("GetResource", [FIRST_WEAPON])[0]["name"], "Spark",
              "the Spark gets the first weapon resource, named after it")
        take(alice, ahome, BUILD_FLEET, [lst([(settler, 1)]),
                                         name("Settlers")], "a Settler")
        take(alice, afleet, NOP, [t_(0)], "wait 0")
        take(alice, afleet, MOVE, [pos(apos)], "to the home planet")
        take(alice, afleet, LOAD, [lst([(FIRST_WEAPON, 3)])], "3 Sparks")
        take(alice, afleet, UNLOAD, [lst([(FIRST_WEAPON, 1)])], "1 Spark")
        take(alice, afleet, SPLIT, [lst([(1, 1)])], "1 Scout")
        take(carol, chome, BUILD_FLEET, [lst([(5, 1)]), name("Picket")],
             "carol's Scout")

        state = {"merged": False, "moved": False, "colonise": False,
                 "sent": False, "battle": None, "over": None}
        turn = 0
        while turn < MAX_TURNS + 1:
            for p in players:
                r = p.call("FinishedTurn")
                if not r.is_("Okay"):
                    T.ok(False, "FinishedTurn of %s" % p.name, repr(r))
            tr = alice.call("GetTimeRemaining")
            if tr["turn"] != turn + 1:
                T.ok(False, "turn %d ended" % turn, repr(tr))
                break
            turn += 1
            objs = alice.objects()
            msgs = {p.id: p.messages() for p in players}
            for subject, body, refs in msgs[A]:
                if subject == "Combat" and state["battle"] is None:
                    state["battle"] = (turn, body, refs)
                if subject == "Game over":
                    state["over"] = (turn, body)
            for subject, body, refs in msgs[B]:
                if subject == "Combat":
                    state["bob_combat"] = (body, refs)
            for p in players:
                for subject, body, refs in msgs[p.id]:
                    if subject == "Game over":
                        state.setdefault("over_for", set()).add(p.id)
            # Split done: the new fleet merges back.
            split = by_name(objs, "A fleet")
            if split and not state["merged"]:
                take(alice, split, MERGE, [], "the split-off Scout")
                state["merged"] = True
            elif (state["merged"] and not split and not state["moved"] and
                  afleet in objs):
                f = objs[afleet]
                T.ok(ships(f) == [(1, 2)] and
                     res(f, FIRST_WEAPON, "Weapon Resource List") == 2,
                     "alice's fleet: 2 Scouts merged back, 2 Sparks "
                     "aboard (3 loaded, 1 unloaded)", repr(f))
                T.is_(res(objs[ahome], FIRST_WEAPON), 1,
                      "1 Spark is back on the home planet")
                take(alice, afleet, MOVE, [pos(bpos)], "to bob's planet")
                state["moved"] = True
            settlers = by_name(objs, "Settlers")
            if settlers and not state["colonise"]:
                take(alice, settlers, MOVE, [pos(objs[target]["Position"])],
                     "the Settler to the nearest free planet")
                take(alice, settlers, COLONISE, [], "there")
                state["colonise"] = True
            if (state["colonise"] and not state["sent"] and
                    objs[target]["Owner"]["id"] == A):
                T.ok(settlers is None, "the colony ship was used up")
                take(alice, ahome, SEND_POINTS, [lst([(target, 5)])],
                     "5 points to the colony")
                take(alice, ahome, ENHANCE, [t_(20)], "20 points")
                state["sent"] = (turn, objs[target]["Factories"]["value"])
            if state["over"]:
                break

        # ---------------------------------------------- results
        T.ok(state["battle"] is not None, "a battle happened")
        if state["battle"]:
            bturn, body, refs = state["battle"]
            bids = [i for t, i in refs if t == -1000]
            T.ok(len(bids) == 1 and (1, bhome) in refs and "Battle log" in
                 body, "alice's Combat message refers to the battle "
                 "(-1000) and bob's planet, and says where its log is",
                 repr(state["battle"]))
            T.ok("You took their planet" in body, "alice took it", body)
            url = "http://127.0.0.1:%d/battles/%d.xml" % (
                srv.ports[weblib.WEB], bids[0] if bids else 0)
            T.ok(body.rstrip().endswith("Battle log: " + url),
                 "the body ends with the log's URL", body[-120:])
            w = weblib.Web(srv)
            path = "/battles/%d.xml" % (bids[0] if bids else 0)
            st, _, doc = w.get(path, headers=basic("alice"))
            T.ok(st == 200, "alice fetches the battle log", repr(st))
            try:
                root = ET.fromstring(doc)
            except Exception as e:  # noqa: BLE001
                root = None
                T.ok(False, "the battle log parses", repr(e))
            if root is not None:
                sides = [x.get("id") for x in root.find("sides")]
                ents = [e.get("id") for x in root.find("sides") for e in x]
                T.ok(root.tag == "battle" and root.get("media") == "mtsec"
                     and sides == ["alice", "bob"],
                     "BattleXML: media mtsec, a side per player",
                     repr((root.attrib, sides)))
                T.ok("Scout-%d-0" % afleet in ents and "Scout-%d-1" %
                     afleet in ents and "planet-%d-0" % bhome in ents,
                     "entities Scout-<fleet>-0, -1 and planet-<id>-0",
                     repr(ents))
                text = ET.tostring(root).decode()
                T.ok(text.count("<fire") >= 2 and "<death" in text,
                     "two shots at the planet and its fall are in it")
            st, _, _ = w.get(path, headers=basic("carol"))
            T.ok(st == 403, "carol, who did not fight, may not read it",
                 repr(st))
            bb, brefs = state.get("bob_combat", ("", []))
            T.ok("Your planet fell" in bb and
                 [i for t, i in brefs if t == -1000] == bids,
                 "bob is told, with the same battle", repr(bb))
        objs = alice.objects()
        T.ok(objs[bhome]["Owner"]["id"] in (0, 0xFFFFFFFF, -1),
             "bob's planet is unowned after the battle")
        T.ok(objs[target]["Owner"]["id"] == A, "alice's colony is hers")
        T.ok(state["sent"], "Send Points and Enhance were given")
        T.ok(state["over"] is not None and state["over"][0] == MAX_TURNS,
             "the game is over after turn %d" % MAX_TURNS,
             repr(state["over"]))
        if state["over"]:
            T.ok("alice wins" in state["over"][1], "alice wins (most "
                 "planets)", state["over"][1])
        T.is_(state.get("over_for"), {A, B, C}, "all three players got "
              "the Game over message")
        # Bob's fleet was in range of the battle (10,000 units) or not.
        near = dist(start_objs[bfleet]["Position"], bpos) <= 10000
        T.ok((bfleet not in objs) == near, "bob's fleet %s (it was %d units"
             " from his planet: the last Spark, 200, kills both its "
             "Scouts when within 10,000)" % (
                 "was destroyed" if near else "is left",
                 dist(start_objs[bfleet]["Position"], bpos)))
        # The colony: its Factories grew one a turn from the colonisation
        # (its own draw of 1-15), capped at 100.
        if state["sent"]:
            sturn, f0 = state["sent"]
            T.is_(objs[target]["Factories"]["value"],
                  min(100, f0 + (MAX_TURNS - sturn)),
                  "the colony's Factories grew by one a turn")
        tr = alice.call("GetTimeRemaining")
        T.ok("game over" in tr["turnname"], "the turn name says the game "
             "is over", repr(tr))
        c = srv.client(4)
        c.connect("tplib-test/1.0")
        f = c.create_account("dave", "pw-dave")
        T.ok(f.is_("Fail") and "the game is over" in f["result"],
             "no new players once it is over", repr(f))
        c.close()


def main():
    T.run(play)
    T.done()


if __name__ == "__main__":
    main()
