#!/usr/bin/env python3
"""Battle logs over real sockets (docs/battles.md): a MiniSec battle
fought between two of three players; its BattleXML document is well
formed (xmllint) and follows BATTLEXML.md (root, sides, entities, every
ref declared, rounds from 0, the events' forms); the Combat message of
each participant refers to it (reference -1000 and the URL in its body);
only the participants fetch it, with a web session or HTTP Basic, and
visitors only while web_spectators lets them watch; /api/battles lists
what the reader may open; the console shows it; a restart keeps it."""

import base64
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
import weblib  # noqa: E402
from test_console import console  # noqa: E402

T = tplib.Tap()
WEB = weblib.WEB
EVENTS = {"log", "move", "fire", "damage", "death"}


class Web(weblib.Web):
    def login(self, user, password):
        return self.login_post("/api/login", {"username": user,
                                              "password": password})


def basic(user, password):
    tok = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    return {"Authorization": "Basic " + tok}


def player(srv, name):
    c = srv.client()
    c.connect()
    c.create_account(name, "pw-" + name)
    tplib.check_okay(T, [c.login(name, "pw-" + name)], "%s logs in" % name)
    return c


def messages(c):
    board = c.request("GetBoards", {"ids": [0]})[1]
    n = board["messages"]
    if n == 0:
        return []
    frames = c.request("GetMessage", {"id": board["id"],
                                      "slots": list(range(n))})[1:]
    return [f for f in frames if f.name == "Message"]


def check_document(doc, name):
    """Checks a BattleXML document against BATTLEXML.md; returns the
    parsed root (or None)."""
    p = subprocess.run(["xmllint", "--noout", "-"], input=doc,
                       capture_output=True)
    T.ok(p.returncode == 0, name + ": xmllint finds it well formed",
         p.stderr.decode("utf-8", "replace"))
    try:
        root = ET.fromstring(doc)
    except ET.ParseError as e:
        T.ok(False, name + ": parses", str(e))
        return None
    T.ok(root.tag == "battle" and root.get("version") == "0.0.1" and
         root.get("media") == "minisec",
         name + ": root battle, version 0.0.1, media minisec",
         repr(root.attrib))
    T.ok([c.tag for c in root] == ["sides", "rounds"],
         name + ": sides then rounds", repr([c.tag for c in root]))
    ids, problems = set(), []
    for side in root.find("sides"):
        if side.tag != "side" or not side.get("id"):
            problems.append("bad side %r" % side.tag)
        if side.get("id") in ids:
            problems.append("id declared twice: " + side.get("id"))
        ids.add(side.get("id"))
        for ent in side:
            kids = [k.tag for k in ent]
            if ent.tag != "entity" or kids != ["name", "type"] or \
                    not (ent.find("name").text or "") or \
                    not (ent.find("type").text or ""):
                problems.append("bad entity %r %r" % (ent.get("id"), kids))
            if ent.get("id") in ids:
                problems.append("id declared twice: " + ent.get("id"))
            ids.add(ent.get("id"))
    entities = ids - {s.get("id") for s in root.find("sides")}
    counts = {}
    for i, rnd in enumerate(root.find("rounds")):
        if rnd.tag != "round" or rnd.get("roundnum") != str(i):
            problems.append("round %d numbered %r" % (i, rnd.get("roundnum")))
        for ev in rnd:
            counts[ev.tag] = counts.get(ev.tag, 0) + 1
            kids = [k.tag for k in ev]
            want = {"log": [], "move": ["reference", "position"],
                    "fire": ["source", "destination"],
                    "damage": ["reference", "amount"],
                    "death": ["reference"]}.get(ev.tag)
            if want is None or kids != want:
                problems.append("bad event %s %r" % (ev.tag, kids))
                continue
            for k in ev:
                if k.tag in ("reference", "source", "destination") and \
                        k.get("ref") not in entities:
                    problems.append("%s names undeclared %r"
                                    % (ev.tag, k.get("ref")))
            if ev.tag == "damage" and not \
                    (ev.find("amount").text or "").isdigit():
                problems.append("damage amount %r" % ev.find("amount").text)
            if ev.tag == "log" and not (ev.text or "").strip():
                problems.append("empty log")
    T.ok(not problems, name + ": ids unique, every ref declared, rounds "
         "numbered from 0, events of the documented forms",
         "\n".join(problems))
    T.ok(counts.get("fire", 0) > 0 and counts.get("damage", 0) > 0 and
         counts.get("death", 0) > 0 and counts.get("log", 0) > 0,
         name + ": the battle's shots, damage, deaths and logs are in it",
         repr(counts))
    return root


def test_battle_logs():
    srv = tplib.Server("--set", "ruleset_settings.random_seed=11",
                       port_flags=[WEB])
    srv.start()
    try:
        alice, bob, carol = (player(srv, n) for n in
                             ("alice", "bob", "carol"))
        # alice's three frigates are put on bob's home planet, and the
        # turn ends: they fight its batteries.
        rc, out, err = console(srv, """
            local bp = objects{ owner = 2, type = "Planet" }[1].object
            for _, f in ipairs(objects{ owner = 1, type = "Fleet" }) do
                edit(f.id, { pos = { x = bp.pos.x, y = bp.pos.y, z = 0 } })
            end
            turn.now()""")
        T.ok(rc == 0, "the console sets up a battle and ends the turn",
             out + err)
        port = srv.ports[WEB]
        combats = {}
        for name, c in (("alice", alice), ("bob", bob), ("carol", carol)):
            combats[name] = [m for m in messages(c)
                             if m["subject"] == "Combat"]
        T.ok(len(combats["alice"]) == 1 and len(combats["bob"]) == 1 and
             not combats["carol"],
             "alice and bob get a Combat message, carol none",
             repr({k: len(v) for k, v in combats.items()}))
        m = combats["alice"][0] if combats["alice"] else {"references": [],
                                                           "body": ""}
        refs = [(r["type"], r["id"]) for r in m["references"]]
        battle_ids = [i for t, i in refs if t == -1000]
        T.ok(battle_ids == [1], "the Combat message refers to battle 1 "
             "(reference type -1000)", repr(refs))
        url = "http://127.0.0.1:%d/battles/1.xml" % port
        T.ok(m["body"].rstrip().endswith("Battle log: " + url),
             "its body ends with the log's URL", m["body"][-200:])
        bm = combats["bob"][0] if combats["bob"] else {"references": []}
        T.ok((-1000, 1) in [(r["type"], r["id"]) for r in
                            bm["references"]],
             "bob's Combat message refers to the same battle")

        w = Web(srv)
        st, hd, v = w.get("/battles/1.xml")
        T.ok(st == 401 and hd.get("www-authenticate", "").startswith(
            "Basic "), "a visitor gets 401 with a Basic challenge",
            "%r %r" % (st, hd))
        st, _, _ = w.get("/battles/1.xml",
                         headers=basic("alice", "wrong"))
        T.ok(st == 401, "a wrong password gets 401", repr(st))
        st, _, _ = w.get("/battles/1.xml", headers={
            "Authorization": "Basic !!!"})
        T.ok(st in (400, 401), "garbage credentials get a 4xx", repr(st))
        st, hd, doc = w.get("/battles/1.xml", headers=basic("bob",
                                                             "pw-bob"))
        T.ok(st == 200 and hd.get("content-type", "").startswith(
            "application/xml"), "bob fetches it with HTTP Basic (his TP "
            "name and password)", "%r %r" % (st, hd.get("content-type")))
        root = check_document(doc if isinstance(doc, bytes) else b"",
                              "battle 1")
        if root is not None:
            sides = [s.get("id") for s in root.find("sides")]
            T.ok(sides == ["alice", "bob"], "a side per player, named "
                 "after the player", repr(sides))
            ents = [e.get("id") for s in root.find("sides") for e in s]
            T.ok(any(e.startswith("Frigate-") for e in ents) and
                 any(e.startswith("planet-") for e in ents),
                 "entities <design>-<fleet>-<n> and planet-<id>-<n>",
                 repr(ents))
        st, _, _ = w.get("/battles/1.xml", headers=basic("carol",
                                                         "pw-carol"))
        T.ok(st == 403, "carol, who did not fight, gets 403", repr(st))

        wa = Web(srv)
        st, _, _ = wa.login("alice", "pw-alice")
        st, _, doc2 = wa.get("/battles/1.xml")
        T.ok(st == 200 and doc2 == doc, "alice fetches the same document "
             "with her web session", repr(st))
        st, _, lst = wa.get("/api/battles")
        T.ok(st == 200 and [b["id"] for b in lst["battles"]] == [1] and
             lst["battles"][0]["url"] == "/battles/1.xml" and
             lst["battles"][0]["sides"] == ["alice", "bob"],
             "/api/battles lists it for alice", repr(lst))
        st, _, lst = wa.get("/api/battles?turn=5")
        T.ok(st == 200 and lst["battles"] == [], "?turn= filters",
             repr(lst))
        wc = Web(srv)
        wc.login("carol", "pw-carol")
        st, _, lst = wc.get("/api/battles")
        T.ok(st == 200 and lst["battles"] == [],
             "/api/battles lists nothing for carol", repr(lst))
        st, _, _ = wc.get("/battles/1.xml")
        T.ok(st == 403, "carol's web session gets 403 too", repr(st))
        st, _, _ = wa.get("/battles/2.xml")
        T.ok(st == 404, "a battle that does not exist: 404", repr(st))
        st, _, _ = w.get("/api/battles")
        T.ok(st == 401, "/api/battles for a visitor: 401", repr(st))

        rc, out, err = console(srv, "battles(1)")
        T.ok(rc == 0 and "Battle at" in out and "/battles/1.xml" in out and
             "alice, bob" in out, "battles(turn) in the console", out + err)
        rc, out, err = console(srv, "battle(1)")
        T.ok(rc == 0 and out.strip() == doc.decode().strip(),
             "battle(id) shows the document", out[:300] + err)
        rc, out, err = console(srv, "battle(7)")
        T.ok(rc == 1 and "no battle 7" in err, "battle() of an unknown id "
             "says so", out + err)
        for c in (alice, bob, carol):
            c.close()
        w.close(), wa.close(), wc.close()
    finally:
        srv.stop(cleanup=False)

    # A restart keeps it (it is in the game database), and spectators may
    # read every battle when web_spectators is on.
    again = tplib.Server("--set", "web_spectators=true",
                         data_dir=srv.data_dir, port_flags=[WEB])
    again.start()
    try:
        w = Web(again)
        st, _, doc3 = w.get("/battles/1.xml")
        T.ok(st == 200 and doc3 == doc, "after a restart, with "
             "web_spectators on, a visitor reads the same document",
             repr(st))
        st, _, lst = w.get("/api/battles")
        T.ok(st == 200 and len(lst["battles"]) == 1,
             "and /api/battles lists it for visitors", repr(lst))
        w.close()
    finally:
        again.stop()
        srv.cleanup()


if __name__ == "__main__":
    tplib.main(test_battle_logs)
