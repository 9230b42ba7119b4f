#!/usr/bin/env python3
"""The ruleset API that the rulesets of tpserver-cpp need, over real
sockets, with the Scouting fixture (tests/fixtures/rulesets/scouting):
settings with types, bounds and choices (refused at start and by
--check-config); a data file of the ruleset's folder; join_allowed (the
ruleset's own cap, a Fail for the player over it); turn_name in
TimeRemaining; fog of war by exploration (ctx:reveal), kept over a
restart; the battle recorder from another ruleset than MiniSec."""

import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
import weblib  # noqa: E402
from test_console import console  # noqa: E402
from test_protocol import ORDER_PARAM, encode_params  # noqa: E402

T = tplib.Tap()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SCOUTING = os.path.join(ROOT, "tests", "fixtures", "rulesets", "scouting")
UNIVERSE, STAR, SCOUT = 0, 1, 2
VISIT = 0
STARS = ["Alpha", "Beta", "Gamma", "Delta"]   # stars.json, ids 1-4


def check_config(*sets):
    cmd = [tplib.tpserver_path(), "--check-config", "--ruleset", SCOUTING,
           "--data", "/nonexistent-for-check"]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def test_settings():
    for sets, want, name in (
            (["ruleset_settings.cap=0"], "must be at least 1",
             "an integer under its min"),
            (["ruleset_settings.cap=9"], "must be at most 8",
             "an integer over its max"),
            (["ruleset_settings.cap=2.5"], "must be a whole number",
             "a fraction for an integer"),
            (["ruleset_settings.daylight=dusk"], "must be one of long, short",
             "a value outside the choices"),
            (["ruleset_settings.ratio=1.5"], "must be at most 1",
             "a number over its max"),
            (["ruleset_settings.seed=7"], "has no setting 'seed'",
             "an unknown setting")):
        rc, err = check_config(*sets)
        T.ok(rc != 0 and want in err, "--check-config refuses " + name,
             "rc %r: %s" % (rc, err))
    rc, err = check_config("ruleset_settings.cap=3",
                           "ruleset_settings.daylight=short")
    T.ok(rc == 0, "--check-config takes good settings", err)
    srv = tplib.Server("--ruleset", SCOUTING, "--set",
                       "ruleset_settings.cap=12")
    try:
        srv.start()
        started = True
    except Exception:
        started = False
    log = open(srv.log_path, errors="replace").read() \
        if os.path.exists(srv.log_path) else ""
    T.ok(not started and "must be at most 8" in log,
         "a server does not start with a setting out of bounds", log[-400:])
    srv.stop()


def visible_names(p):
    ids = p.list_ids("GetObjectIDs")
    frames = p.req("GetObjectsByID", {"ids": ids})
    return sorted(f["name"] for f in frames if f.name == "Object")


def objects_of(p):
    ids = p.list_ids("GetObjectIDs")
    frames = p.req("GetObjectsByID", {"ids": ids})
    return {f["id"]: f for f in frames if f.name == "Object"}


def visit(p, scout, star):
    params = encode_params(ORDER_PARAM, [2], [{"objectid": star,
                                               "validtypes": []}])
    return p.call("OrderInsert", {
        "id": scout, "slot": -1, "otype": VISIT, "turns": 0,
        "resources": [], "params": params.decode("utf-8",
                                                 "surrogateescape")})


def turnname(p):
    return p.call("GetTimeRemaining")["turnname"]


def end_turn(players):
    # The last FinishedTurn ends the turn before its Okay.
    for p in players:
        r = p.call("FinishedTurn")
        T.ok(r.is_("Okay"), "FinishedTurn", repr(r))


def test_game():
    from test_protocol import Player
    srv = tplib.Server("--ruleset", SCOUTING, "--set",
                       "turn_mode=players_finished",
                       port_flags=[weblib.WEB])
    srv.start()
    try:
        a, b = Player(srv, name="alice"), Player(srv, name="bob")
        c = srv.client()
        c.connect()
        f = c.create_account("carol", "pw-carol")
        T.ok(f.is_("Fail") and "at most 2 players" in f["result"],
             "join_allowed: the third account is refused with the "
             "ruleset's reason", repr(f))
        c.close()
        T.is_(turnname(a), "Day 0", "turn 0 is named by the ruleset "
              "(TimeRemaining turnname)")
        T.is_(visible_names(a), sorted(["The Universe", "Alpha",
                                        "alice's scout", "bob's scout"]),
              "alice sees the stars of the data file she knows (Alpha) "
              "and the scouts there, not Beta, Gamma or Delta")
        scouts = {o["name"]: i for i, o in objects_of(a).items()}
        sa = scouts.get("alice's scout")
        sb = scouts.get("bob's scout")
        r = visit(a, sa, 2)
        T.ok(r.is_("Order"), "alice orders her scout to Beta", repr(r))
        r = visit(b, sb, 3)
        T.ok(r.is_("Order"), "bob orders his scout to Gamma", repr(r))
        r = visit(a, sa, 0)
        T.ok(r.is_("Fail") and "not a star" in r["result"],
             "a Visit to the universe: Fail with the check's reason",
             repr(r))
        end_turn([a, b])
        T.is_(turnname(a), "Day 0", "turn 1 is still day 0 (long days)")
        T.is_(visible_names(a), sorted(["The Universe", "Alpha", "Beta",
                                        "alice's scout"]),
              "alice has explored Beta; bob's scout left Alpha for Gamma, "
              "which she has not seen")
        T.is_(visible_names(b), sorted(["The Universe", "Alpha", "Gamma",
                                        "bob's scout"]),
              "bob knows Alpha and Gamma")
        # Both go to Delta: a battle there.
        visit(a, sa, 4)
        visit(b, sb, 4)
        r = a.call("OrderInsert", {
            "id": sa, "slot": -1, "otype": 1, "turns": 0, "resources": [],
            "params": ""})
        T.ok(r.is_("Fail") and r["result"].endswith(
            "cannot be given to object %d: Hide is only for nights, and "
            "Day 0 is not one" % sa),
             "an order not allowed now: the Fail ends with the ruleset's "
             "reason (why_not)", repr(r))
        end_turn([a, b])
        T.is_(turnname(a), "Night 0", "turn 2: night 0")
        rc, out, err = console(srv, "print(status().turn_name)")
        T.ok(rc == 0 and out.strip() == "Night 0",
             "the console's status() has the turn's name", out + err)
        st, _, g = weblib.Web(srv).get("/api/game")
        T.ok(st == 200 and g.get("turn_name") == "Night 0",
             "and so does the web's /api/game", repr(g))
        combat = [m for m in tplib_messages(a) if m["subject"] == "Combat"]
        refs = combat[0]["references"] if combat else []
        T.ok(combat and {"type": -1000, "id": 1} in
             [{"type": r["type"], "id": r["id"]} for r in refs] and
             "/battles/1.xml" in combat[0]["body"],
             "the fixture's battle: a Combat message with the battle's "
             "reference and link", repr(combat))
        w = weblib.Web(srv)
        import base64
        tok = base64.b64encode(b"bob:pw-bob").decode()
        st, _, doc = w.get("/battles/1.xml", headers={
            "Authorization": "Basic " + tok})
        p = subprocess.run(["xmllint", "--noout", "-"], input=doc
                           if isinstance(doc, bytes) else b"",
                           capture_output=True)
        T.ok(st == 200 and p.returncode == 0 and
             b"&amp; bob &lt;meet&gt; at Delta" in doc,
             "its document is well formed, the log's text escaped",
             "%r %r" % (st, doc))
        w.close()
        seen_before = visible_names(a)
        a.c.close(), b.c.close()
    finally:
        srv.stop(cleanup=False)
    again = tplib.Server("--ruleset", SCOUTING, data_dir=srv.data_dir)
    again.start()
    try:
        a = again.client()
        a.connect()
        a.login("alice", "pw-alice")

        class P:
            pass
        pa = P()
        pa.c = a
        pa.req = a.request
        pa.call = a.call
        pa.list_ids = lambda name: [m["id"] for m in a.call(name, {
            "key": -1, "start": 0, "amount": -1, "from": -1})["modtimes"]]
        T.is_(visible_names(pa), seen_before, "after a restart alice "
              "sees what she had explored (the fog is in the database)")
        T.is_(pa.call("GetTimeRemaining")["turnname"], "Night 0",
              "and the turn's name is the same")
        a.close()
    finally:
        again.stop()
        srv.cleanup()


def tplib_messages(p):
    board = p.req("GetBoards", {"ids": [0]})[1]
    n = board["messages"]
    if not n:
        return []
    return [f for f in p.req("GetMessage", {"id": board["id"],
                                            "slots": list(range(n))})[1:]]


if __name__ == "__main__":
    tplib.main(test_settings, test_game)
