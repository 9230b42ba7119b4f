#!/usr/bin/env python3
"""Accounts (PROTOCOL.md 7.2, 14): they survive a restart, passwords are
never stored in clear, and account creation can be switched off."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from tplib import check_fail, check_okay  # noqa: E402

T = tplib.Tap()

# Distinctive, so that a scan of the database files cannot hit it by chance.
PASSWORD = "Xq7-persist-Zebra-%d-quartz!" % os.getpid()


def scan_for(root, needle):
    """Files under root whose bytes contain needle."""
    hits = []
    for d, _, files in os.walk(root):
        for name in files:
            path = os.path.join(d, name)
            try:
                with open(path, "rb") as f:
                    if needle in f.read():
                        hits.append(os.path.relpath(path, root))
            except OSError:
                pass
    return hits


def test_persistence():
    first = tplib.Server().start()
    name = tplib.unique_name("Persist")
    try:
        c = first.client()
        check_okay(T, [c.connect()], "first server: Connect")
        check_okay(T, [c.create_account(name, PASSWORD, "p@example.org",
                                        "a comment")],
                   "first server: CreateAccount")
        check_okay(T, [c.login(name, PASSWORD)], "first server: Login")
        c.close()
        T.is_(first.stop(cleanup=False), 0, "first server: SIGTERM -> exit 0")
        T.ok("database closed" in first.log(), "first server logged "
             "'database closed'", first.log_tail(5))

        files = [f for _, _, fs in os.walk(first.data_dir) for f in fs]
        T.ok(files, "the data directory holds database files", repr(files))
        for needle, what in ((PASSWORD.encode(), "the password"),
                             (PASSWORD.encode().hex().encode(),
                              "the password in hex"),
                             (PASSWORD.encode().hex().upper().encode(),
                              "the password in upper-case hex")):
            hits = scan_for(first.data_dir, needle)
            T.ok(not hits, "no file of the data directory contains %s" % what,
                 "found in: %s" % ", ".join(hits))
        T.ok(scan_for(first.data_dir, name.lower().encode()) or
             scan_for(first.data_dir, name.encode()),
             "(sanity) the account name itself is found by the scan")

        with tplib.Server(data_dir=first.data_dir) as second:
            c = second.client()
            check_okay(T, [c.connect()], "second server: Connect")
            check_fail(T, [c.login(name, PASSWORD + "x")], 1,
                       "second server: wrong password -> Fail 1")
            check_okay(T, [c.login(name + "@tp", PASSWORD)],
                       "second server, same data dir: Login with the "
                       "account made before the restart -> Okay")
            check_okay(T, [c.ping()], "second server: Ping")
            c2 = second.client()
            check_okay(T, [c2.connect()], "second server: second client")
            check_fail(T, [c2.create_account(name.upper(), "x")], 1,
                       "second server: the old name (other case) is still "
                       "taken -> Fail 1")
            other = tplib.unique_name("after")
            check_okay(T, [c2.create_account(other, "pw")],
                       "second server: a new account")
            check_okay(T, [c2.login(other, "pw")],
                       "second server: Login with the new account")
            f = c2.call("GetTimeRemaining")
            T.ok(f.is_("TimeRemaining") and f.fields is not None and
                 sorted(f["waiting"]) == [1, 2],
                 "player ids continue after the restart (waiting [1, 2])",
                 repr(f))
            c.close()
            c2.close()
            T.is_(second.stop(), 0, "second server: SIGTERM -> exit 0")
    finally:
        first.kill()


def test_creation_disabled():
    with tplib.Server("--set", "allow_account_creation=false") as srv:
        c = srv.client()
        f = c.call("GetFeatures")
        T.ok(f.is_("Features") and
             tplib.FEATURE_ACCOUNT_CREATE not in f["features"] and
             tplib.FEATURE_KEEPALIVE in f["features"],
             "creation disabled: Features lack 0x3E8 (still have 5)", repr(f))
        check_okay(T, [c.connect()], "creation disabled: Connect")
        f = c.call("GetFeatures")
        T.ok(f.is_("Features") and
             tplib.FEATURE_ACCOUNT_CREATE not in f["features"],
             "creation disabled: Features after Connect lack 0x3E8", repr(f))
        check_fail(T, [c.create_account(tplib.unique_name("nope"), "pw")], 5,
                   "creation disabled: CreateAccount -> Fail 5")
        check_fail(T, [c.login("nope", "pw")], 1,
                   "creation disabled: Login of a non-existent account -> "
                   "Fail 1")
        check_okay(T, [c.ping()], "creation disabled: Ping still answered")
        c.close()
        c3 = srv.client(version=3)
        check_okay(T, [c3.connect()], "creation disabled: TP03 Connect")
        check_fail(T, [c3.create_account(tplib.unique_name("nope"), "pw")], 5,
                   "creation disabled: TP03 CreateAccount -> Fail 5",
                   version=3)
        c3.close()
        T.is_(srv.stop(), 0, "creation disabled: SIGTERM -> exit 0")


def test_auto_create():
    with tplib.Server("--set", "auto_create_accounts=true") as srv:
        c = srv.client()
        check_okay(T, [c.connect()], "auto-create: Connect")
        name = tplib.unique_name("auto")
        check_okay(T, [c.login(name + "@tp", "pw")],
                   "auto-create: Login of an unknown name creates it -> Okay")
        c.close()
        c = srv.client()
        check_okay(T, [c.connect()], "auto-create: Connect again")
        check_fail(T, [c.login(name, "wrong")], 1,
                   "auto-create: existing name with a wrong password -> "
                   "Fail 1")
        check_okay(T, [c.login(name, "pw")], "auto-create: Login again")
        c.close()
        T.is_(srv.stop(), 0, "auto-create: SIGTERM -> exit 0")


if __name__ == "__main__":
    tplib.main(test_persistence, test_creation_disabled, test_auto_create)
