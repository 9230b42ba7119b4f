#!/usr/bin/env python3
"""A ruleset with deliberate errors in its order code
(tests/fixtures/rulesets/broken) over the protocol: the request that runs
the faulty hook gets a readable Fail naming the order type (never a file
name or a traceback, which go to the log), nothing of the request is
kept, and the server goes on serving everyone; an order whose execute
fails makes the end of turn fail without advancing the turn."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_protocol import ORDER_PARAM, Player, encode_params  # noqa: E402

T = tplib.Tap.current or tplib.Tap()
BROKEN = os.path.join(tplib.ROOT, "tests", "fixtures", "rulesets", "broken")
FLY = 0


def bug_line():
    """The line of the broken ruleset's deliberate bug (bug(): indexing a
    nil value), where the log must say the error was raised."""
    with open(os.path.join(BROKEN, "init.lua")) as f:
        for n, line in enumerate(f, 1):
            if "nothing.field" in line:
                return "init.lua:%d" % n
    return "init.lua:(no bug line)"


def fly(p, ship, x, name="OrderInsert"):
    params = encode_params(ORDER_PARAM, [0], [{"x": x, "y": 1, "z": 0}])
    return p.req(name, {"id": ship, "slot": -1, "otype": FLY, "turns": 0,
                        "resources": [],
                        "params": params.decode("utf-8", "surrogateescape")})


def readable(frames, doing):
    f = frames[0] if len(frames) == 1 else None
    return (f is not None and f.is_("Fail") and f["code"] == 3 and
            f["result"] == "the ruleset failed %s this Fly order (a bug in "
            "the ruleset; the server log has the details)" % doing and
            f["references"] == [{"type": 2, "id": FLY}])


def queued(p, ship):
    return p.get("GetOrderQueue", [ship])[0]["numorders"]


def test_broken():
    with tplib.Server("--ruleset", BROKEN, "--set", "turn_length=0") as srv:
        a = Player(srv, name="alice")
        ship = [i for i in a.list_ids("GetObjectIDs") if i != 0][0]
        r = fly(a, ship, 13)
        T.ok(readable(r, "checking"), "a bug in the order's check: a "
             "readable Fail naming the order type", repr(r))
        text = r[0].get("result", "")
        T.ok(".lua" not in text and "traceback" not in text,
             "no file names or tracebacks for the client", text)
        r = fly(a, ship, 13, "OrderProbe")
        T.ok(readable(r, "checking"), "the same for OrderProbe", repr(r))
        r = fly(a, ship, 16)
        T.ok(readable(r, "inserting"), "a bug after the order was queued "
             "(inserted): Fail", repr(r))
        T.is_(queued(a, ship), 0, "and the order is not kept")
        r = fly(a, ship, 14)
        T.ok(readable(r, "estimating"), "a bug in the turns estimate: Fail",
             repr(r))
        T.is_(queued(a, ship), 0, "not kept either")
        T.ok(a.call("Ping").is_("Okay"), "the connection still answers")
        b = Player(srv, name="bob")
        T.ok(b.call("Ping").is_("Okay"), "a new client is served")

        r = fly(a, ship, 5)
        T.ok(r[0].is_("Order"), "a good order is accepted", repr(r))
        a.call("FinishedTurn")
        b.call("FinishedTurn")
        T.is_(a.call("GetTimeRemaining")["turn"], 1, "and the turn ends")
        r = fly(a, ship, 15)
        T.ok(r[0].is_("Order"), "an order whose execute has a bug is "
             "accepted", repr(r))
        a.call("FinishedTurn")
        b.call("FinishedTurn")
        T.is_(a.call("GetTimeRemaining")["turn"], 1, "the end of turn with "
              "the faulty execute fails: still turn 1")
        T.is_(queued(a, ship), 1, "nothing of that turn was kept")
        obj = a.get("GetObjectsByID", [ship])[0]
        T.ok(obj.is_("Object"), "objects are still served")
        log = srv.log()
        T.ok(bug_line() in log and "the ruleset failed checking" in log
             and "turn failed" in log, "the log has each error with the "
             "file and line")
        T.ok(("Fly order on object %d" % ship) in log,
             "the turn's failure names the order and the object")
        T.ok(srv.alive(), "the server is still running")
        a.close()
        b.close()


def test_endless_loops():
    """A ruleset hook that never returns costs one request (a Fail, after
    request_time_limit) or one turn (it fails, after turn_time_limit), and
    the server goes on."""
    with tplib.Server("--ruleset", BROKEN, "--set", "turn_length=0",
                      "--set", "request_time_limit=1",
                      "--set", "turn_time_limit=1") as srv:
        a = Player(srv, name="alice")
        b = Player(srv, name="bob")
        ship = [i for i in a.list_ids("GetObjectIDs") if i != 0][0]
        r = fly(a, ship, 17)
        T.ok(readable(r, "checking"), "a check that loops forever: after "
             "the request's time limit, a readable Fail", repr(r))
        T.is_(queued(a, ship), 0, "and no order is kept")
        T.ok(b.call("Ping").is_("Okay"), "the other player is served")
        T.ok("the request ran for more than 1 s" in srv.log(),
             "the log says the request was stopped", srv.log_tail(5))
        r = fly(a, ship, 18)
        T.ok(r[0].is_("Order"), "an order whose execute loops forever is "
             "accepted", repr(r))
        a.call("FinishedTurn")
        b.call("FinishedTurn")
        T.is_(a.call("GetTimeRemaining")["turn"], 0, "the end of turn that "
              "loops is stopped after the turn's time limit: still turn 0")
        T.ok("the turn ran for more than 1 s" in srv.log() and
             "turn failed" in srv.log(), "the log says why", srv.log_tail(5))
        T.ok(a.get("GetObjectsByID", [ship])[0].is_("Object"),
             "objects are still served")
        a.close()
        b.close()


if __name__ == "__main__":
    tplib.main(test_broken, test_endless_loops)
