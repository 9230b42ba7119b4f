#!/usr/bin/env python3
"""Many clients at once, and stopping the server while clients are
connected."""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from tplib import check_okay  # noqa: E402

T = tplib.Tap()
CLIENTS = 100


def test_many_clients():
    with tplib.Server() as srv:
        barrier = threading.Barrier(CLIENTS, timeout=60)
        results = [None] * CLIENTS
        prefix = tplib.unique_name("many")

        def worker(i):
            steps = []
            c = None
            try:
                c = srv.client(version=4 if i % 4 else 3, timeout=30)
                barrier.wait()     # all connections open at the same time
                name = "%s_%d" % (prefix, i)
                steps.append(c.connect("load %d" % i))
                steps.append(c.create_account(name, "pw%d" % i))
                steps.append(c.login(name, "pw%d" % i))
                steps.append(c.ping())
                barrier.wait()     # all logged in at the same time
                steps.append(c.ping())
                ok = len(steps) == 5 and all(f.is_("Okay") for f in steps)
                results[i] = (ok, steps)
            except Exception as e:
                results[i] = (False, steps + [repr(e)])
                try:
                    barrier.abort()
                except Exception:
                    pass
            finally:
                if c:
                    c.close()

        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(i,), daemon=True)
                   for i in range(CLIENTS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        took = time.monotonic() - t0
        bad = [(i, r) for i, r in enumerate(results) if not r or not r[0]]
        T.ok(not bad, "%d concurrent connections (TP04 and TP03) each do "
             "Connect, CreateAccount, Login, Ping, Ping: all Okay (%.1f s)" %
             (CLIENTS, took),
             "\n".join("client %d: %r" % (i, r) for i, r in bad[:5]))

        with srv.client() as c:
            c.connect()
            c.login("%s_7" % prefix, "pw7")
            f = c.call("GetTimeRemaining")
            T.ok(f.is_("TimeRemaining") and
                 sorted(f["waiting"]) == list(range(1, CLIENTS + 1)),
                 "%d accounts, %d distinct player ids 1..%d" % (
                     CLIENTS, CLIENTS, CLIENTS), repr(f))
        errors = srv.error_lines()
        T.ok(not errors, "no error lines in the server log",
             "\n".join(errors[:10]))
        T.is_(srv.stop(), 0, "SIGTERM -> exit code 0")


def test_sigterm_with_clients():
    srv = tplib.Server().start()
    try:
        name = tplib.unique_name("term")
        ready = srv.client()
        ready.connect()
        ready.create_account(name, "pw")
        check_okay(T, [ready.login(name, "pw")], "logged-in client ready")
        connected = srv.client()
        check_okay(T, [connected.connect()], "client in CONNECTED state")
        tp03 = srv.client(version=3)
        check_okay(T, [tp03.connect()], "TP03 client connected")
        idle = srv.client()                  # PRE, sent nothing
        partial = srv.client()
        partial.send_bytes(tplib.header(4, 1, 27, 50) + b"x" * 10)
        reading = srv.client()               # many replies not read
        reading.connect()
        reading.send_bytes(b"".join(tplib.header(4, i, 27, 0)
                                    for i in range(2, 5000)))
        deferred = srv.client()              # a Login being checked
        deferred.connect()
        deferred.send("Login", {"username": name, "password": "pw"})
        time.sleep(0.2)

        t0 = time.monotonic()
        srv.signal(15)
        rc = srv.wait()
        took = time.monotonic() - t0
        T.is_(rc, 0, "SIGTERM with 7 clients connected -> exit code 0")
        T.ok(took < 10, "the server stopped within 10 s (%.1f s)" % took)
        log = srv.log()
        T.ok("database closed" in log, "'database closed' in the log",
             srv.log_tail(10))
        for label, c in (("logged-in", ready), ("connected", connected),
                         ("TP03", tp03), ("idle", idle),
                         ("mid-frame", partial), ("not reading", reading),
                         ("deferred Login", deferred)):
            data, closed = c.read_until_close(10)
            T.ok(closed, "%s client sees the connection closed" % label)
            c.close()
        errors = srv.error_lines()
        T.ok(not errors, "no error lines in the server log",
             "\n".join(errors[:10]))
        if rc is None:
            srv.kill()
        srv.stop()
    finally:
        srv.kill()

    # Stopping right after start, with nobody connected, and SIGINT.
    srv = tplib.Server().start()
    try:
        srv.signal(2)
        T.is_(srv.wait(), 0, "SIGINT -> exit code 0")
        T.ok("database closed" in srv.log(), "SIGINT: 'database closed' in "
             "the log", srv.log_tail(5))
        srv.stop()
    finally:
        srv.kill()


if __name__ == "__main__":
    tplib.main(test_many_clients, test_sigterm_with_clients)
