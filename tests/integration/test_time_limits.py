#!/usr/bin/env python3
"""Time limits that a ruleset cannot defeat with pcall
(tests/fixtures/rulesets/broken): an order check that loops forever inside
pcall, twice, or calls a looping function in pcall again and again, is
stopped at request_time_limit with the readable Fail naming the order type,
keeps nothing, and the server answers everyone after it and stops on
SIGTERM; an execute that loops inside pcall twice fails the turn after
turn_time_limit (the turn is not advanced, nothing of it is kept) and the
server still stops on SIGTERM."""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_minisec_errors import BROKEN, fly, queued, readable  # noqa: E402
from test_protocol import Player  # noqa: E402

T = tplib.Tap.current or tplib.Tap()
LIMIT = 1


def broken_server():
    return tplib.Server("--ruleset", BROKEN, "--set", "turn_length=0",
                        "--set", "request_time_limit=%d" % LIMIT,
                        "--set", "turn_time_limit=%d" % LIMIT)


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


def main():
    T.run(test_request_loops, test_turn_loops)
    T.done()


if __name__ == "__main__":
    main()
