#!/usr/bin/env python3
"""A database write that fails (injected with TPSERVER_TEST_FAULTS=1 and
store.fail_writes, as a full disk would refuse it) during a request, a
FinishedTurn, an account creation and a turn: the client gets a Fail (the
turn fails and starts over), memory stays equal to the disk (what was
refused is not shown, later writes store exactly what they say), and after
a restart the game is exactly what clients were told."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_console import console  # noqa: E402
from test_minisec_errors import BROKEN, fly, queued  # noqa: E402
from test_protocol import Player, object_values  # noqa: E402

T = tplib.Tap.current or tplib.Tap()
os.environ["TPSERVER_TEST_FAULTS"] = "1"


def server(data_dir=None):
    return tplib.Server("--ruleset", BROKEN, "--set", "turn_length=0",
                        data_dir=data_dir)


def fail_writes(srv, n, then=""):
    rc, out, err = console(srv, 'require("tp.store").fail_writes(%d) %s' %
                           (n, then))
    return rc, out + err


def alice_again(srv):
    """alice, logged in again (after a restart)."""
    p = Player.__new__(Player)
    p.version = 4
    p.c = srv.client()
    p.c.connect()
    p.c.login("alice", "pw-alice")
    return p


def orders(p, ship):
    frames = p.req("GetOrder", {"id": ship, "slots": []})
    return [objx(f) for f in frames[1:]]


def objx(f):
    return f["params"] if f.is_("Order") else repr(f)


def position(p, ship):
    o = p.get("GetObjectsByID", [ship])[0]
    desc = p.get("GetObjectDesc", [o["otype"]])[0]
    pos = object_values(desc, o)["Position"]
    return (pos["x"], pos["y"])


def test_request():
    with server() as srv:
        a = Player(srv, name="alice")
        ship = [i for i in a.list_ids("GetObjectIDs") if i != 0][0]
        T.ok(fly(a, ship, 5)[0].is_("Order"), "(setup) an order is stored")
        rc, out = fail_writes(srv, 1)
        T.is_(rc, 0, "(setup) the next write will fail", )
        r = fly(a, ship, 6)
        T.ok(len(r) == 1 and r[0].is_("Fail") and r[0]["code"] == 3 and
             "could not store" in r[0]["result"], "a refused write: Fail "
             "'could not store'", repr(r))
        T.is_(queued(a, ship), 1, "memory holds what the disk holds: one "
              "order")
        T.ok(fly(a, ship, 7)[0].is_("Order"), "the next order is stored")
        told = orders(a, ship)
        T.is_(len(told), 2, "two orders (5 and 7)")
        T.ok("the change could not be stored" in srv.log(),
             "the log says what failed")
        rc, out = fail_writes(srv, 1)
        f = a.call("FinishedTurn")
        T.ok(f.is_("Fail") and "could not store" in f["result"],
             "a FinishedTurn whose write is refused: Fail", repr(f))
        T.is_(a.call("GetTimeRemaining")["waiting"], [a.id],
              "and the player is still waited for")
        rc, out = fail_writes(srv, 1)
        c = srv.client()
        c.connect()
        f = c.create_account("carol", "pw-carol")
        T.ok(f.is_("Fail"), "CreateAccount whose write is refused: Fail "
             "(answered, not left hanging)", repr(f))
        T.ok(c.call("Ping").is_("Okay"), "that connection still answers")
        f = c.login("carol", "pw-carol")
        T.ok(f.is_("Fail"), "no account carol was made", repr(f))
        c.close()
        a.close()
        srv.stop(cleanup=False)
        with server(data_dir=srv.data_dir) as again:
            a = alice_again(again)
            T.is_(orders(a, ship), told, "after a restart: exactly the "
                  "orders the client was told about")
            T.ok(not a.call("GetTimeRemaining")["turn"] and
                 a.call("GetTimeRemaining")["waiting"] != [],
                 "the refused FinishedTurn is not there")
            c = again.client()
            c.connect()
            T.ok(c.login("carol", "pw-carol").is_("Fail"),
                 "nor the refused account")
            c.close()
            a.c.close()
        srv.cleanup()


def test_turn():
    with server() as srv:
        a = Player(srv, name="alice")
        ship = [i for i in a.list_ids("GetObjectIDs") if i != 0][0]
        before = position(a, ship)
        T.ok(fly(a, ship, 9)[0].is_("Order"), "(setup) an order to fly "
             "to x = 9")
        rc, out = fail_writes(srv, 1, "; return turn.now()")
        T.ok(rc != 0 and "turn failed" in out, "a turn whose batch is "
             "refused fails", out)
        T.is_(a.call("GetTimeRemaining")["turn"], 0, "the turn is not "
              "advanced")
        T.is_(position(a, ship), before, "the ship has not moved (memory "
              "is what the disk holds)")
        T.is_(queued(a, ship), 1, "the order is still queued")
        T.ok("the turn could not be stored" in srv.log(),
             "the log says so")
        rc, out, _ = console(srv, "return turn.now()")
        T.ok(rc == 0 and out.strip().endswith("1"), "the next try "
             "succeeds: turn 1", out)
        moved = position(a, ship)
        T.is_(moved[0], 9, "the ship flew")
        T.is_(queued(a, ship), 0, "the order is done")
        a.close()
        srv.stop(cleanup=False)
        with server(data_dir=srv.data_dir) as again:
            b = alice_again(again)
            T.is_((b.call("GetTimeRemaining")["turn"], position(b, ship),
                   queued(b, ship)), (1, moved, 0), "after a restart: turn "
                  "1, the ship where it was shown, no order")
            b.c.close()
        srv.cleanup()


def test_reported_failed_but_landed():
    """A write reported as failed that reached the disk after all (a
    failed flush): the next write reopens the database, finds it, and the
    server stops (status 1) rather than go on with memory that differs
    from the disk; the next start has the change."""
    with server() as srv:
        a = Player(srv, name="alice")
        ship = [i for i in a.list_ids("GetObjectIDs") if i != 0][0]
        T.ok(fly(a, ship, 5)[0].is_("Order"), "(landed) an order is stored")
        rc, out, _ = console(srv, 'require("tp.store").fail_writes(1, '
                             '"landed")')
        T.is_(rc, 0, "(landed) the next write lands but is reported failed")
        r = fly(a, ship, 6)
        T.ok(r[0].is_("Fail"), "the client hears Fail", repr(r))
        try:
            fly(a, ship, 7)
        except (OSError, tplib.ProtocolError):
            pass
        rc = srv.wait()
        T.is_(rc, 1, "the next write finds the change in the database and "
              "the server stops with status 1")
        T.ok("reported as failed is in it after all" in srv.log(),
             "the log says why")
        srv.stop(cleanup=False)
        with server(data_dir=srv.data_dir) as again:
            b = alice_again(again)
            T.is_(queued(b, ship), 2, "after a restart: the game as it is "
                  "stored, with the change")
            b.c.close()
        srv.cleanup()


def main():
    T.run(test_request, test_turn, test_reported_failed_but_landed)
    T.done()


if __name__ == "__main__":
    main()
