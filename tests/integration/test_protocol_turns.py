#!/usr/bin/env python3
"""Turn pushes over TCP (PROTOCOL.md 7.3, 13): TimeRemaining frames with
sequence 0 to every logged-in player connection (TP04 with reason, turn
and waiting list; TP03 the time alone) when a player finishes (reason 2
and the new waiting list), when the end of turn starts (time 0, reason 3
when everyone finished, 5 when the timer ran out) and when the next turn
starts (reason 1, the new turn number); FinishedTurn counted for the
'everyone finished' trigger, twice harmless; nothing for connections that
are not logged in."""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_protocol import (  # noqa: E402
    T, Player, check_okay, decoded, fog_server, u32)


def pushes(c, n, timeout=10.0):
    """The next n frames of c (pushes expected)."""
    out = list(c.async_frames)
    c.async_frames = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        try:
            out.append(c.recv_frame(timeout=max(0.1, deadline -
                                                time.monotonic())))
        except tplib.Timeout:
            break
    return out


def summary(frames):
    """(seq, time, reason, turn, sorted waiting) of TP04 TimeRemaining
    frames; the raw body for anything else."""
    out = []
    for f in frames:
        if f.is_("TimeRemaining") and decoded(f) and f.version == 4:
            out.append((f.seq, f["time"], f["reason"], f["turn"],
                        sorted(f["waiting"])))
        else:
            out.append((f.seq, f.name, f.raw_header[:4], f.body))
    return out


def quiet(c, name, wait=0.3):
    data = c.recv_available(wait)
    T.is_(data, b"", "%s: nothing pushed" % name)


def test_finished():
    with fog_server() as srv:
        a, b = Player(srv), Player(srv)
        c = Player(srv, version=3)
        a2 = srv.client()
        a2.connect()
        a2.login(a.name, "pw-" + a.name)
        d = srv.client()
        d.connect()
        everyone = sorted([a.id, b.id, c.id])

        check_okay(a.req("FinishedTurn"), "A FinishedTurn")
        want = [(0, -1, 2, 0, sorted([b.id, c.id]))]
        for who, cl in (("A", a.c), ("A's second connection", a2),
                        ("B", b.c)):
            T.is_(summary(pushes(cl, 1)), want, "A finished: %s gets "
                  "TimeRemaining(-1, reason 2, turn 0, waiting B and C), "
                  "sequence 0" % who)
        T.is_(summary(pushes(c.c, 1)), [(0, "TimeRemaining", b"TP03",
                                         u32(0xFFFFFFFF))],
              "A finished: the TP03 player gets the time alone")
        quiet(d, "a connection that is not logged in")

        check_okay(a.req("FinishedTurn"), "A FinishedTurn again")
        quiet(b.c, "A finishing twice: B")

        check_okay(b.req("FinishedTurn"), "B FinishedTurn")
        for who, cl in (("A", a.c), ("B", b.c)):
            T.is_(summary(pushes(cl, 1)), [(0, -1, 2, 0, [c.id])],
                  "B finished: %s gets reason 2 with only C waiting" % who)
        pushes(c.c, 1)
        pushes(a2, 1)

        check_okay(c.req("FinishedTurn"), "C (TP03) FinishedTurn")
        want = [(0, 0, 3, 0, []), (0, -1, 1, 1, everyone)]
        for who, cl in (("A", a.c), ("A's second connection", a2),
                        ("B", b.c)):
            T.is_(summary(pushes(cl, 2)), want,
                  "everyone finished: %s gets TimeRemaining(0, reason 3, "
                  "turn 0), then (-1, reason 1, turn 1, everyone waiting)"
                  % who)
        T.is_(summary(pushes(c.c, 2)),
              [(0, "TimeRemaining", b"TP03", u32(0)),
               (0, "TimeRemaining", b"TP03", u32(0xFFFFFFFF))],
              "everyone finished: the TP03 player gets 0, then -1")
        quiet(d, "not logged in, at the end of turn")
        f = b.call("GetTimeRemaining")
        T.is_((f.seq != 0, f["reason"], f["turn"], sorted(f["waiting"])),
              (True, 0, 1, everyone), "GetTimeRemaining afterwards: reason "
              "0, the request's sequence number, turn 1, everyone waiting")
        T.is_(srv.error_lines(), [], "no errors in the server log")


def test_timer():
    with fog_server("--set", "turn_mode=fixed", "--set",
                    "turn_length=2") as srv:
        a = Player(srv)
        f = a.call("GetTimeRemaining")
        T.ok(decoded(f) and 0 < f["time"] <= 2 and f["reason"] == 0,
             "fixed 2 s turns: 0 < time <= 2", repr(f))
        check_okay(a.req("FinishedTurn"), "FinishedTurn in fixed mode")
        got = summary(pushes(a.c, 1, 1.0))
        T.ok(len(got) == 1 and got[0][0] == 0 and got[0][2:] == (2, 0, []),
             "fixed mode: the player's finishing is pushed (reason 2, "
             "nobody waiting) but the turn does not end", repr(got))
        got = summary(pushes(a.c, 2, 8.0))
        T.ok(len(got) == 2 and got[0] == (0, 0, 5, 0, []) and
             got[1][0] == 0 and 1 <= got[1][1] <= 2 and
             got[1][2:] == (1, 1, [a.id]),
             "the timer ran out: TimeRemaining(0, reason 5, turn 0), then "
             "(about 2, reason 1, turn 1, the player waiting)", repr(got))
        T.is_(srv.error_lines(), [], "no errors in the server log")


def test_manual():
    """turn_mode manual: only an admin ends a turn, even when every
    player has finished."""
    with fog_server("--set", "turn_mode=manual") as srv:
        a = Player(srv)
        check_okay(a.req("FinishedTurn"), "manual mode: FinishedTurn")
        got = summary(pushes(a.c, 2, 1.0))
        T.is_(got, [(0, -1, 2, 0, [])], "manual mode: everyone finished "
              "is pushed (reason 2) but the turn does not end")
        T.is_(srv.error_lines(), [], "no errors in the server log")


if __name__ == "__main__":
    tplib.main(test_finished, test_timer, test_manual)
