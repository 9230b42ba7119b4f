#!/usr/bin/env python3
"""Requests answered later: CreateAccount and Login hash the password off
the event loop (PROTOCOL.md 5.5: one connection's frames are still handled
strictly in arrival order). The server here uses a slow password hash so
that the windows are wide: pipelining through a deferred request, clients
that half-close or go away while their Login is checked, other clients
served meanwhile, and SIGTERM while hashes are running."""

import os
import select
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from tplib import check_okay  # noqa: E402

T = tplib.Tap()
SLOW = ("--set", "password_iterations=100000")      # ~20-50 ms a hash
SLOWER = ("--set", "password_iterations=1000000")   # ~0.2-0.5 s a hash
SRV = None
USER = tplib.unique_name("slow")


def frames_in(data):
    """Splits received bytes into frames (a short tail is ignored)."""
    return [tplib.Frame(h, b) for h, b in tplib.split_frames(data)[0]]


def summary(frames):
    return [(f.seq, f.name) for f in frames]


def test_pipeline_through_deferred():
    c = SRV.client()
    name = tplib.unique_name("pipe")
    reqs = [("Connect", {"client": "deferred pipeline"}),
            ("CreateAccount", {"username": name, "password": "pw",
                               "email": "", "comment": ""}),
            ("Ping", None),
            ("Login", {"username": name, "password": "wrong"}),
            ("Ping", None),
            ("Login", {"username": name, "password": "pw"}),
            ("GetTimeRemaining", None),
            ("GetGames", None),
            ("Ping", None)]
    sent = [c.frame(n, f) for n, f in reqs]
    c.send_bytes(b"".join(d for _, d in sent))
    got = []
    try:
        for seq, _ in sent:
            got += summary(c.recv_reply(seq, 20))
    except Exception as e:
        got.append(repr(e))
    want = [(1, "Okay"), (2, "Okay"), (3, "Okay"), (4, "Fail"), (5, "Okay"),
            (6, "Okay"), (7, "TimeRemaining"), (8, "Sequence"), (8, "Game"),
            (9, "Okay")]
    T.is_(got, want, "9 pipelined requests around three deferred ones "
          "(CreateAccount, Login, Login) are answered in arrival order")
    c.close()


def test_half_close():
    # Without deferred requests.
    c = SRV.client()
    reqs = [("Connect", {"client": "half-close"}), ("Ping", None),
            ("GetFeatures", None), ("GetTimeRemaining", None)]
    c.send_bytes(b"".join(c.frame(n, f)[1] for n, f in reqs))
    c.sock.shutdown(socket.SHUT_WR)
    data, closed = c.read_until_close(10)
    T.is_(summary(frames_in(data)), [(1, "Okay"), (2, "Okay"),
                                     (3, "Features"), (4, "TimeRemaining")],
          "client half-closes after 4 requests: all 4 answered")
    T.ok(closed, "... then the server closes")
    c.close()

    # With deferred requests: the answers to requests the server received
    # before the client's FIN must not be dropped.
    c = SRV.client()
    name = tplib.unique_name("half")
    reqs = [("Connect", {"client": "half-close"}),
            ("CreateAccount", {"username": name, "password": "pw",
                               "email": "", "comment": ""}),
            ("Login", {"username": name, "password": "pw"}),
            ("Ping", None), ("GetGames", None)]
    c.send_bytes(b"".join(c.frame(n, f)[1] for n, f in reqs))
    c.sock.shutdown(socket.SHUT_WR)
    data, closed = c.read_until_close(10)
    T.is_(summary(frames_in(data)),
          [(1, "Okay"), (2, "Okay"), (3, "Okay"), (4, "Okay"),
           (5, "Sequence"), (5, "Game")],
          "client half-closes after Connect, CreateAccount, Login, Ping, "
          "GetGames: all 5 answered before the close")
    T.ok(closed, "... then the server closes")
    c.close()

    # The same with the account already there: Connect + Login, FIN.
    c = SRV.client()
    c.send_bytes(c.frame("Connect", {"client": "x"})[1] +
                 c.frame("Login", {"username": USER, "password": "pw"})[1])
    c.sock.shutdown(socket.SHUT_WR)
    data, closed = c.read_until_close(10)
    T.is_(summary(frames_in(data)), [(1, "Okay"), (2, "Okay")],
          "client half-closes after Connect + Login: both answered")
    c.close()


def connected_count(c):
    """Game parameter 2 (clients connected) as seen by client c."""
    frames = c.request("GetGames")
    if len(frames) != 2 or frames[1].fields is None:
        return None
    for p in frames[1]["parameters"]:
        if p["id"] == 2:
            return p["intval"]
    return None


def test_close_during_login():
    # Clients that pipeline Connect + Login and disconnect before the
    # Login is answered must not stay counted as connected players.
    for _ in range(3):
        c = SRV.client()
        c.send_bytes(c.frame("Connect", {"client": "gone"})[1] +
                     c.frame("Login", {"username": USER, "password": "pw"})[1])
        c.close()
    time.sleep(0.5)
    with SRV.client() as c:
        check_okay(T, [c.connect()], "fresh client: Connect")
        check_okay(T, [c.login(USER, "pw")], "fresh client: Login")
        n = connected_count(c)
        T.is_(n, 1, "GetGames parameter 2 (clients connected) counts only "
              "the one logged-in client, not the 3 that went away during "
              "their Login")
        check_okay(T, [c.ping()], "fresh client: Ping")


def test_loop_not_blocked():
    srv = tplib.Server(*SLOWER).start()
    try:
        name = tplib.unique_name("slowest")
        with srv.client(timeout=30) as c:
            c.connect()
            t0 = time.monotonic()
            c.create_account(name, "pw")
            hash_time = time.monotonic() - t0
        a = srv.client(timeout=30)
        a.connect()
        seq = a.send("Login", {"username": name, "password": "pw"})
        b = srv.client()
        b.connect()
        times = []
        for _ in range(5):
            t0 = time.monotonic()
            f = b.ping()
            times.append(time.monotonic() - t0)
            if not f.is_("Okay"):
                times.append(repr(f))
        login_answered = bool(a.rbuf) or bool(
            select.select([a.sock], [], [], 0)[0])
        f = a.recv_reply(seq, 30)
        check_okay(T, f, "slow Login -> Okay")
        T.ok(all(isinstance(x, float) for x in times) and
             not login_answered,
             "while a Login hashes (%.2f s a hash), another client's 5 Pings "
             "are answered before it (the loop is not blocked)" % hash_time,
             "ping times %r, Login already answered: %s" %
             (times, login_answered))
        a.close()
        b.close()
        T.is_(srv.stop(), 0, "slow-hash server: SIGTERM -> exit 0")
    finally:
        srv.kill()


def test_sigterm_during_hashing():
    first = tplib.Server(*SLOWER).start()
    try:
        name = tplib.unique_name("termhash")
        with first.client(timeout=30) as c:
            c.connect()
            c.create_account(name, "pw")
        clients = []
        for i in range(3):
            c = first.client()
            c.connect()
            c.send("Login", {"username": name, "password": "pw"})
            clients.append(c)
            c = first.client()
            c.connect()
            c.send("CreateAccount", {"username": "%s_%d" % (name, i),
                                     "password": "pw", "email": "",
                                     "comment": ""})
            clients.append(c)
        time.sleep(0.05)
        first.signal(15)
        rc = first.wait()
        T.is_(rc, 0, "SIGTERM while 6 password hashes run -> exit code 0")
        T.ok("database closed" in first.log(), "... and 'database closed' "
             "in the log", first.log_tail(10))
        for c in clients:
            c.close()
        first.stop(cleanup=False)
        with tplib.Server(*SLOWER, data_dir=first.data_dir) as second:
            with second.client(timeout=30) as c:
                check_okay(T, [c.connect()], "restart on the same data: "
                           "Connect")
                check_okay(T, [c.login(name, "pw")], "restart: the account "
                           "made before works")
            T.is_(second.stop(), 0, "restarted server: SIGTERM -> exit 0")
    finally:
        first.kill()


def test_log():
    lines = SRV.unformatted_log_lines()
    T.ok(not lines, "no log line with unformatted placeholders (a log call "
         "whose arguments failed, e.g. conn.id of a closed connection)",
         "\n".join(lines[:5]))
    errors = SRV.error_lines()
    T.ok(not errors, "no error lines in the server log",
         "\n".join(errors[:10]))
    T.is_(SRV.stop(), 0, "SIGTERM -> exit code 0")


def start():
    global SRV
    SRV = tplib.Server(*SLOW).start()
    with SRV.client() as c:
        c.connect()
        f = c.create_account(USER, "pw")
        if not f.is_("Okay"):
            raise RuntimeError("cannot create the test account: %r" % f)


if __name__ == "__main__":
    tplib.main(start, test_pipeline_through_deferred, test_close_during_login,
               test_half_close, test_loop_not_blocked,
               test_sigterm_during_hashing, test_log)
