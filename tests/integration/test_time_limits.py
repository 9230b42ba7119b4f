#!/usr/bin/env python3
"""Time limits that a ruleset cannot defeat with pcall
(tests/fixtures/rulesets/broken): an order check that loops forever inside
pcall, twice, or calls a looping function in pcall again and again, is
stopped at request_time_limit with the readable Fail naming the order type,
keeps nothing, and the server answers everyone after it and stops on
SIGTERM; an execute that loops inside pcall twice fails the turn after
turn_time_limit (the turn is not advanced, nothing of it is kept) and the
server still stops on SIGTERM.

The limits hold outside Lua code too: a check stuck in one C call
(string.find with a backtracking pattern, a backtracking s:match in pcall
again and again, `..` of a big string in a loop, which the count hook alone
would see only every 10000 instructions) gets its readable Fail at the
limit, another client's Ping, sent meanwhile, is answered right after it,
and the server goes on; an execute stuck in string.gsub fails the turn at
turn_time_limit; and with the trace compiler on (jit = true) a ruleset's
empty loop, arithmetic loop and backtracking pattern are stopped as well."""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_minisec_errors import (BROKEN, FLY, fly, queued,  # noqa: E402
                                 readable)
from test_protocol import ORDER_PARAM, Player, encode_params  # noqa: E402

T = tplib.Tap.current or tplib.Tap()
LIMIT = 1


def broken_server(*extra):
    return tplib.Server("--ruleset", BROKEN, "--set", "turn_length=0",
                        "--set", "request_time_limit=%d" % LIMIT,
                        "--set", "turn_time_limit=%d" % LIMIT, *extra)


def stops_on_sigterm(srv, what):
    srv.signal(signal.SIGTERM)
    try:
        code = srv.wait(timeout=15)
    except Exception:  # noqa: BLE001 (a hang is the failure)
        code = None
    T.is_(code, 0, "%s: SIGTERM stops the server (exit 0)" % what)


def test_request_loops():
    for x, what in ((19, "a check that loops inside pcall, twice"),
                    (21, "a check that calls a looping function in pcall "
                         "forever")):
        with broken_server() as srv:
            a = Player(srv, name="alice")
            b = Player(srv, name="bob")
            ship = [i for i in a.list_ids("GetObjectIDs") if i != 0][0]
            started = time.monotonic()
            r = fly(a, ship, x)
            took = time.monotonic() - started
            T.ok(readable(r, "checking"), "%s: a readable Fail" % what,
                 repr(r))
            T.ok(LIMIT <= took < LIMIT + 4, "%s: answered at the limit "
                 "(%.1f s)" % (what, took))
            T.is_(queued(a, ship), 0, "%s: no order kept" % what)
            T.ok(b.call("Ping").is_("Okay") and a.call("Ping").is_("Okay"),
                 "%s: both players are served after it" % what)
            r = fly(a, ship, 5)
            T.ok(r[0].is_("Order"), "%s: a good order is accepted after "
                 "it" % what, repr(r))
            T.ok("the request ran for more than %d s" % LIMIT in srv.log(),
                 "%s: the log says the request was stopped" % what)
            # The same again: nothing of the first stop lingers.
            r = fly(a, ship, x, name="OrderProbe")
            T.ok(readable(r, "checking"), "%s: OrderProbe too" % what,
                 repr(r))
            stops_on_sigterm(srv, what)
            a.close()
            b.close()


def test_turn_loops():
    with broken_server() as srv:
        a = Player(srv, name="alice")
        b = Player(srv, name="bob")
        ship = [i for i in a.list_ids("GetObjectIDs") if i != 0][0]
        r = fly(a, ship, 20)
        T.ok(r[0].is_("Order"), "an order whose execute loops inside pcall "
             "twice is accepted", repr(r))
        a.call("FinishedTurn")
        started = time.monotonic()
        b.call("FinishedTurn")
        took = time.monotonic() - started
        T.ok(took < LIMIT + 4, "the end of turn is stopped at the turn's "
             "time limit (%.1f s)" % took)
        T.is_(a.call("GetTimeRemaining")["turn"], 0, "the turn is not "
              "advanced: still turn 0")
        T.is_(queued(a, ship), 1, "nothing of that turn was kept: the "
              "order is still queued")
        T.ok("the turn ran for more than %d s" % LIMIT in srv.log() and
             "turn failed" in srv.log(), "the log says why")
        T.ok(b.call("Ping").is_("Okay"), "players are served after it")
        stops_on_sigterm(srv, "after a turn that looped")
        a.close()
        b.close()


C_LEVEL = ((24, "a check stuck in string.find with a backtracking pattern"),
           (25, "a check running a backtracking s:match in pcall, again "
                "and again"),
           (26, "a check joining a 16 MiB string in a loop"))


def stopped_meanwhile(srv, a, b, ship, x, what):
    """a's Fly to x, with b's Ping sent while it runs: checks a's readable
    Fail at the limit and b's Okay right after it."""
    started = time.monotonic()
    seq = a.c.send("OrderInsert", fly_fields(ship, x))
    time.sleep(0.3)
    ping_sent = time.monotonic()
    ping = b.c.send("Ping")
    r = a.c.recv_reply(seq, timeout=LIMIT + 15)
    failed_at = time.monotonic() - started
    pong = b.c.recv_reply(ping, timeout=LIMIT + 15)
    pong_at = time.monotonic() - started
    T.ok(readable(r, "checking"), "%s: a readable Fail" % what, repr(r))
    T.ok(LIMIT <= failed_at < LIMIT + 1.5, "%s: answered at the limit "
         "(%.2f s)" % (what, failed_at))
    T.ok(pong[0].is_("Okay") and pong_at - failed_at < 0.5,
         "%s: another client's Ping, sent %.1f s in, is answered right "
         "after (%.2f s)" % (what, ping_sent - started, pong_at), repr(pong))
    print("# %s: Fail after %.2f s, the other client's Ping answered after "
          "%.2f s" % (what, failed_at, pong_at))
    return failed_at


def fly_fields(ship, x):
    """The OrderInsert fields fly() sends, for sending without waiting."""
    params = encode_params(ORDER_PARAM, [0], [{"x": x, "y": 1, "z": 0}])
    return {"id": ship, "slot": -1, "otype": FLY, "turns": 0,
            "resources": [],
            "params": params.decode("utf-8", "surrogateescape")}


def test_c_level():
    with broken_server() as srv:
        a = Player(srv, name="alice")
        b = Player(srv, name="bob")
        ship = [i for i in a.list_ids("GetObjectIDs") if i != 0][0]
        for x, what in C_LEVEL:
            before = queued(a, ship)
            stopped_meanwhile(srv, a, b, ship, x, what)
            T.is_(queued(a, ship), before, "%s: no order kept" % what)
            r = fly(a, ship, 5)
            T.ok(r[0].is_("Order") and a.call("Ping").is_("Okay"),
                 "%s: the server goes on (a good order, a Ping)" % what,
                 repr(r))
        T.ok(srv.log().count("the request ran for more than %d s" % LIMIT)
             >= len(C_LEVEL), "the log says each request was stopped")
        stops_on_sigterm(srv, "after checks stuck in C")
        a.close()
        b.close()


def test_turn_in_c():
    with broken_server() as srv:
        a = Player(srv, name="alice")
        b = Player(srv, name="bob")
        ship = [i for i in a.list_ids("GetObjectIDs") if i != 0][0]
        r = fly(a, ship, 27)
        T.ok(r[0].is_("Order"), "an order whose execute is stuck in gsub is "
             "accepted", repr(r))
        a.call("FinishedTurn")
        started = time.monotonic()
        b.call("FinishedTurn", timeout=LIMIT + 15)
        took = time.monotonic() - started
        T.ok(took < LIMIT + 1.5, "a turn stuck in string.gsub is stopped at "
             "the turn's time limit (%.2f s)" % took)
        T.is_(a.call("GetTimeRemaining")["turn"], 0, "the turn is not "
              "advanced")
        T.is_(queued(a, ship), 1, "nothing of that turn was kept")
        T.ok("the turn ran for more than %d s" % LIMIT in srv.log(),
             "the log says why")
        T.ok(b.call("Ping").is_("Okay"), "players are served after it")
        stops_on_sigterm(srv, "after a turn stuck in C")
        a.close()
        b.close()


def test_jit_loops():
    """With the trace compiler on, LuaJIT would compile these loops into
    machine code that runs no hooks."""
    with broken_server("--set", "jit=true") as srv:
        a = Player(srv, name="alice")
        b = Player(srv, name="bob")
        ship = [i for i in a.list_ids("GetObjectIDs") if i != 0][0]
        for x, what in ((22, "jit on: an empty loop"),
                        (23, "jit on: a loop of pure arithmetic"),
                        (17, "jit on: a counting loop"),
                        (24, "jit on: a backtracking pattern")):
            stopped_meanwhile(srv, a, b, ship, x, what)
            T.ok(a.call("Ping").is_("Okay"), "%s: served after it" % what)
        stops_on_sigterm(srv, "jit on, after the loops")
        a.close()
        b.close()


def main():
    T.run(test_request_loops, test_turn_loops, test_c_level, test_turn_in_c,
          test_jit_loops)
    T.done()


if __name__ == "__main__":
    main()
