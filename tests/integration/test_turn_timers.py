#!/usr/bin/env python3
"""The turn timers (PROTOCOL.md 13; peer-servers.md 7): the threshold mode
(a long timer until a share of the players has finished, then a short one,
pushed with reason 4; everyone finished ends the turn at once), the advance
warning before the end of a turn (reason 2), and the fixed mode, where
finishing does not end the turn. Uses the tiny example ruleset."""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_protocol import T, TINY, Player, check_okay  # noqa: E402
from test_protocol_turns import pushes, summary  # noqa: E402

REQUESTED, STARTED, WARNING, ALL, THRESHOLD, EOT = 0, 1, 2, 3, 4, 5


def server(*sets):
    args = ["--ruleset", TINY]
    for s in sets:
        args += ["--set", s]
    return tplib.Server(*args)


def reasons(frames):
    return [s[2] for s in summary(frames)]


def drain(*players):
    """Reads and drops what was pushed to these players so far."""
    for p in players:
        pushes(p.c, 100, timeout=0.3)


def test_threshold():
    with server("turn_mode=threshold", "turn_player_threshold=50",
                "turn_length_under_threshold=600",
                "turn_length_over_threshold=2", "turn_warning=0") as srv:
        a, b, c = Player(srv), Player(srv), Player(srv)
        t = a.c.call("GetTimeRemaining")
        T.ok(590 <= t["time"] <= 600, "threshold: the turn starts with the "
             "long timer", repr(t["time"]))
        check_okay(a.req("FinishedTurn"), "A finishes (1 of 3)")
        got = summary(pushes(b.c, 1))
        T.ok(len(got) == 1 and got[0][2] == WARNING and got[0][1] > 500,
             "1 of 3 under the 50% threshold: reason 2, the long timer "
             "goes on", repr(got))
        drain(a, c)
        check_okay(b.req("FinishedTurn"), "B finishes (2 of 3)")
        got = summary(pushes(c.c, 1))
        T.ok(len(got) == 1 and got[0][2] == THRESHOLD and
             0 < got[0][1] <= 2 and got[0][4] == [c.id],
             "2 of 3 reach the threshold: reason 4, at most 2 s left, "
             "waiting for C", repr(got))
        t0 = time.monotonic()
        got = summary(pushes(c.c, 2, timeout=6))
        took = time.monotonic() - t0
        T.ok([g[2] for g in got] == [EOT, STARTED] and got[1][3] == 1,
             "the short timer ends the turn: reason 5, then reason 1 for "
             "turn 1", repr(got))
        T.ok(took < 4, "the short timer, not the long one (%.1f s)" % took)
        T.ok(590 <= got[1][1] <= 600, "turn 1 starts with the long timer "
             "again", repr(got))
        drain(a, b)
        for p in (a, b, c):
            check_okay(p.req("FinishedTurn"), "turn 1: FinishedTurn")
        got = reasons(pushes(a.c, 5, timeout=3))
        T.ok(ALL in got and got[-1] == STARTED,
             "everyone finished ends the turn at once (reason 3)", repr(got))
        T.is_(a.c.call("GetTimeRemaining")["turn"], 2, "now turn 2")


def test_threshold_zero_length():
    with server("turn_mode=threshold", "turn_player_threshold=50",
                "turn_length_over_threshold=0", "turn_warning=0") as srv:
        a, b = Player(srv), Player(srv)
        check_okay(a.req("FinishedTurn"), "half the players finish")
        got = reasons(pushes(b.c, 2, timeout=3))
        T.is_(got, [EOT, STARTED], "over-threshold length 0: the turn ends "
              "as soon as the threshold is reached")


def test_warning_and_fixed():
    with server("turn_mode=fixed", "turn_length=3", "turn_warning=2") as srv:
        a = Player(srv)
        check_okay(a.req("FinishedTurn"), "fixed mode: FinishedTurn")
        got = summary(pushes(a.c, 1))
        T.ok(len(got) == 1 and got[0][2] == WARNING and got[0][4] == [],
             "fixed mode: finishing is pushed, the turn goes on", repr(got))
        got = summary(pushes(a.c, 1, timeout=3))
        T.ok(len(got) == 1 and got[0][2] == WARNING and got[0][1] == 2,
             "the advance warning comes 2 s before the end", repr(got))
        got = reasons(pushes(a.c, 2, timeout=4))
        T.is_(got, [EOT, STARTED], "then the timer ends the turn")


def test_threshold_config_checked():
    srv = server("turn_player_threshold=150")
    try:
        srv.start()
        T.ok(False, "a threshold over 100 stops the server")
    except RuntimeError as e:
        T.ok("turn_player_threshold" in str(e),
             "a threshold over 100 stops the server, naming the key")
    finally:
        srv.kill()


test_threshold()
test_threshold_zero_length()
test_warning_and_fixed()
test_threshold_config_checked()
T.done()
