#!/usr/bin/env python3
"""A real full disk (a small tmpfs as the data directory): requests made
while it is full get a Fail (CreateAccount and Ping included, nothing
hangs), and once space is freed the server reopens and checks the database
before it acknowledges a write again, so that every acknowledged change is
there after a SIGKILL and a restart, with sync off and on. Before this,
writes acknowledged after the space came back landed behind a broken log
record and the next start refused the database ("checksum mismatch").

Needs root (mount); as another user every check is reported as skipped."""

import os
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_console import console  # noqa: E402
from test_minisec_errors import BROKEN, fly, queued  # noqa: E402
from test_protocol import Player  # noqa: E402

T = tplib.Tap.current or tplib.Tap()


class Tmpfs:
    """A tmpfs of size bytes mounted on a new folder (.path)."""

    def __init__(self, size):
        self.path = tempfile.mkdtemp(prefix="tpserver-full-")
        subprocess.check_call(["mount", "-t", "tmpfs", "-o",
                               "size=%d,mode=0700" % size, "tmpfs",
                               self.path])

    def fill(self):
        """Writes a file until the disk is full; returns its path."""
        path = os.path.join(self.path, "filler")
        f = open(path, "wb", buffering=0)
        try:
            while True:
                f.write(b"x" * 4096)
        except OSError:
            pass
        f.close()
        return path

    def close(self):
        subprocess.call(["umount", "-l", self.path])
        os.rmdir(self.path)


def server(data_dir, sync):
    args = ["--ruleset", BROKEN, "--set", "turn_length=0"]
    if sync:
        args += ["--set", "sync=true"]
    return tplib.Server(*args, data_dir=data_dir)


def refused(frames):
    f = frames[0]
    return f.is_("Fail") and "could not store" in f["result"]


def full_then_freed(sync):
    what = "sync=%s" % ("true" if sync else "false")
    fs = Tmpfs(8 << 20)
    try:
        data = os.path.join(fs.path, "data")
        srv = server(data, sync)
        srv.start()
        a = Player(srv, name="alice")
        ship = [i for i in a.list_ids("GetObjectIDs") if i != 0][0]
        acked = 0
        for _ in range(5):
            acked += fly(a, ship, 5)[0].is_("Order")
        filler = fs.fill()
        answers = [fly(a, ship, 6) for _ in range(300)]
        okay = sum(r[0].is_("Order") for r in answers)
        acked += okay
        T.ok(all(r[0].is_("Order") or refused(r) for r in answers) and
             okay < 300, "%s: a full disk: requests are refused with a "
             "Fail 'could not store'" % what,
             "%d of 300 acknowledged" % okay)
        # A new player while the disk is full: answered, not left hanging.
        c = srv.client()
        c.connect()
        start = time.time()
        f = c.create_account("bob", "pw-bob")
        T.ok(f.is_("Fail") and time.time() - start < 10, "%s: CreateAccount "
             "on a full disk is answered with a Fail" % what, repr(f))
        T.ok(c.call("Ping").is_("Okay"), "%s: and Ping on the same "
             "connection" % what)
        c.close()
        T.ok(refused(fly(a, ship, 7)), "%s: still refused while full" % what)
        os.remove(filler)
        # The next writes reopen and check the database first (retried
        # every few seconds), then are acknowledged again.
        deadline = time.time() + 30
        back = False
        while time.time() < deadline:
            r = fly(a, ship, 8)
            if r[0].is_("Order"):
                acked += 1
                back = True
                break
            time.sleep(0.2)
        T.ok(back, "%s: once space is freed, writes are acknowledged "
             "again" % what)
        T.ok("reopened and checked" in srv.log(), "%s: the log says the "
             "database was reopened and checked" % what)
        later = sum(fly(a, ship, 9)[0].is_("Order") for _ in range(50))
        acked += later
        T.is_(later, 50, "%s: later writes are acknowledged" % what)
        T.is_(queued(a, ship), acked, "%s: the queue holds every "
              "acknowledged order" % what)
        a.c.close()
        srv.proc.kill()         # no clean stop: what is on disk counts
        srv.proc.wait(10)
        srv.stop(cleanup=False)
        again = server(data, sync)
        try:
            again.start()
            b = again.client()
            b.connect()
            T.ok(b.login("alice", "pw-alice").is_("Okay"), "%s: after a "
                 "SIGKILL the server starts on the same database" % what)
            n = len(b.request("GetOrder", {"id": ship, "slots": []})) - 1
            T.is_(n, acked, "%s: every acknowledged order is there (%d)"
                  % (what, acked))
            b.close()
        except RuntimeError as e:
            T.ok(False, "%s: after a SIGKILL the server starts on the same "
                 "database" % what, str(e))
        finally:
            again.stop()
        srv.cleanup()
    finally:
        fs.close()


def test_not_synced():
    full_then_freed(False)


def test_synced():
    full_then_freed(True)


def test_turn():
    fs = Tmpfs(8 << 20)
    try:
        data = os.path.join(fs.path, "data")
        with server(data, False) as srv:
            a = Player(srv, name="alice")
            ship = [i for i in a.list_ids("GetObjectIDs") if i != 0][0]
            T.ok(fly(a, ship, 9)[0].is_("Order"), "(turn) an order")
            filler = fs.fill()
            # Orders until the disk refuses one (a page may have room).
            for _ in range(300):
                if refused(fly(a, ship, 9)):
                    break
            n = queued(a, ship)
            rc, out, err = console(srv, "return turn.now()")
            T.ok("turn could not be stored" in srv.log() or
                 "cannot be written" in srv.log(), "a turn on a full disk "
                 "fails, and the log says why", out + err)
            T.is_(a.call("GetTimeRemaining")["turn"], 0, "the turn is not "
                  "advanced")
            os.remove(filler)
            deadline = time.time() + 30
            turn = 0
            while time.time() < deadline and turn == 0:
                console(srv, "return turn.now()")
                turn = a.call("GetTimeRemaining")["turn"]
                if turn == 0:
                    time.sleep(0.5)
            T.is_(turn, 1, "once space is freed the turn ends")
            T.is_(queued(a, ship), n - 1, "its first order was carried "
                  "out")
            a.c.close()
    finally:
        fs.close()


def main():
    if os.geteuid() != 0:
        for name in ("a full disk then freed space (sync off)",
                     "a full disk then freed space (sync on)",
                     "a turn on a full disk"):
            T.skip(name, "needs root to mount a tmpfs")
        T.done()
    T.run(test_not_synced, test_synced, test_turn)
    T.done()


if __name__ == "__main__":
    main()
