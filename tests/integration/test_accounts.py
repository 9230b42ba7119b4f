#!/usr/bin/env python3
"""Accounts (PROTOCOL.md 7.2, 14): they survive a restart, passwords are
never stored in clear, and account creation can be switched off; names
(issue 14, item 6) are trimmed and put in NFC, refused with control or
invisible characters, unique without regard to case and to look-alike
characters, and logins find them the same way; accounts an older server
stored under names the rules now change still log in."""

import os
import subprocess
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


ZWSP = "\u200b"


def test_lookalikes():
    """After "alice" exists, the look-alikes of issue 14 are refused, each
    with a Fail saying why; names that differ are still taken."""
    with tplib.Server() as srv:
        c = srv.client()
        check_okay(T, [c.connect()], "look-alikes: Connect")
        check_okay(T, [c.create_account("alice", "pw-alice")],
                   "look-alikes: CreateAccount alice")
        taken = "account name 'alice' is taken"
        looks = "the name is taken (looks like 'alice')"
        cases = [
            (" alice", taken, "a leading space is trimmed: alice, taken"),
            ("alice ", taken, "a trailing space is trimmed: alice, taken"),
            ("\u3000alice\u00a0", taken,
             "Unicode spaces at the ends are trimmed too"),
            ("ALICE", taken, "another case: taken"),
            ("al\u0131ce", looks, "dotless i (U+0131): looks like alice"),
            ("ali" + ZWSP + "ce", "account names may not contain invisible "
             "characters (U+200B)", "a zero-width space: refused"),
            ("alice" + ZWSP, "account names may not contain invisible "
             "characters (U+200B)", "a zero-width space at the end: refused"),
            ("\u0430lice", looks, "Cyrillic a (U+0430): looks like alice"),
            ("\u0410LICE", looks, "Cyrillic capital A, ALICE: looks like "
             "alice"),
            ("aIice", looks, "capital I for l: looks like alice"),
            ("al\x07ice", "account names may not contain control characters "
             "(U+0007)", "a control character: refused"),
            ("al\u00a0ice", "account names may not contain spaces other "
             "than the plain space (U+00A0)", "a no-break space inside: "
             "refused"),
            ("\u202eecila", "account names may not contain invisible "
             "characters (U+202E)", "a bidi override: refused"),
            ("  ", "empty user name", "spaces only: empty"),
        ]
        for name, text, what in cases:
            check_fail(T, [c.create_account(name, "pw")], 1,
                       "look-alikes: %s (%r)" % (what, name),
                       "cannot create account: " + text)
        # Unicode forms and case folding beyond ASCII.
        check_okay(T, [c.create_account("\u00e9mile", "pw-emile")],
                   "look-alikes: CreateAccount \u00e9mile (NFC)")
        check_fail(T, [c.create_account("e\u0301mile", "pw")], 1,
                   "look-alikes: the same name decomposed (e + U+0301) is "
                   "taken", "cannot create account: account name "
                   "'\u00e9mile' is taken")
        check_okay(T, [c.create_account("Stra\u00dfe", "pw-strasse")],
                   "look-alikes: CreateAccount Stra\u00dfe")
        check_fail(T, [c.create_account("STRASSE", "pw")], 1,
                   "look-alikes: STRASSE folds to strasse: taken",
                   "is taken")
        check_okay(T, [c.create_account("alicia", "pw-alicia")],
                   "look-alikes: a name that only starts alike is fine")
        check_okay(T, [c.create_account("\u0418\u0432\u0430\u043d", "pw")],
                   "look-alikes: a Cyrillic name of its own is fine")
        c.close()

        # Logins find accounts the same way.
        c = srv.client()
        check_okay(T, [c.connect()], "logins: Connect")
        f = c.login("Alice ", "pw-alice")
        check_okay(T, [f], "logins: 'Alice ' logs in as alice")
        T.is_(f.get("result") if f.fields else None, "Welcome alice",
              "logins: and is welcomed as alice")
        c.close()
        for typed, pw, what in ((" ALICE@tp", "pw-alice", "' ALICE@tp'"),
                                ("E\u0301MILE", "pw-emile",
                                 "decomposed capital \u00c9MILE"),
                                ("strasse", "pw-strasse", "strasse for "
                                 "Stra\u00dfe")):
            c = srv.client()
            c.connect()
            check_okay(T, [c.login(typed, pw)], "logins: %s logs in" % what)
            c.close()
        c = srv.client()
        c.connect()
        check_fail(T, [c.login("al\u0131ce", "pw-alice")], 1,
                   "logins: a look-alike is not the account (alıce)",
                   "bad username or password")
        c.close()
        rc, out, err = console_run(srv, 'player("ALICE ").name')
        T.ok(rc == 0 and "alice" in out, "console: player('ALICE ') finds "
             "alice", out + err)
        rc, out, err = console_run(srv, 'add_player("al\u0131ce", "pw")')
        T.ok(rc != 0 and "looks like 'alice'" in out + err,
             "console: add_player of a look-alike is refused the same way",
             out + err)
        rc, out, err = console_run(srv, 'add_player("bob' + ZWSP + '", '
                                   '"pw")')
        T.ok(rc != 0 and "invisible characters (U+200B)" in out + err,
             "console: add_player with a zero-width space is refused",
             out + err)
        rc, out, err = console_run(srv, 'add_player(" carol ", "pw").name')
        T.ok(rc == 0 and out.strip().strip('"') == "carol",
             "console: add_player trims the name", out + err)
        T.ok(not srv.error_lines(), "look-alikes: no error in the log",
             "\n".join(srv.error_lines()))
        T.is_(srv.stop(), 0, "look-alikes: SIGTERM -> exit 0")


def console_run(srv, code):
    from test_console import console
    return console(srv, code)


# Adds accounts to a stopped server's database as a server older than
# the name rules stored them: key account/<name with A-Z lowered>, the
# name as it was typed. argv: DB NAME PASSWORD [NAME PASSWORD ...]
OLD_ACCOUNTS = r"""
local store = require "tp.store"
local crypto = require "tp.crypto"
local cjson = require "cjson"
local db = assert(store.open(arg[1], { create_if_missing = false }))
local next_id = 1
for _, v in db:iter { prefix = "player/" } do
    local p = cjson.decode(v)
    if p.id >= next_id then next_id = p.id + 1 end
end
local b = db:batch()
for i = 2, #arg, 2 do
    local name, pw = arg[i], arg[i + 1]
    local salt = crypto.random(16)
    local hash = crypto.pbkdf2(pw, salt, 1000, 32, "sha256")
    local id = next_id
    next_id = next_id + 1
    b:put("account/" .. name:lower(), cjson.encode {
        id = id, name = name, kdf = "pbkdf2-sha256", iter = 1000,
        salt = crypto.hex(salt), hash = crypto.hex(hash), email = "",
        comment = "", created = os.time() })
    b:put(string.format("player/%010d", id), cjson.encode {
        id = id, name = name, race = "Human", created = os.time(),
        alive = true, score = 0 })
end
assert(db:write(b, true))
db:close()
"""


def test_old_database():
    """A database written before the name rules: its accounts, stored
    under the names as typed then, still log in (as typed, and in the
    normalized forms), and still hold their names against new ones."""
    first = tplib.Server().start()
    try:
        c = first.client()
        c.connect()
        check_okay(T, [c.create_account("alice", "pw-alice")],
                   "old database: alice made by this server")
        c.close()
        T.is_(first.stop(cleanup=False), 0, "old database: stopped")
        script = os.path.join(first.tmp, "old_accounts.lua")
        with open(script, "w") as f:
            f.write(OLD_ACCOUNTS)
        old = [("\u00c5sa", "pw-asa"), ("e\u0301va", "pw-eva"),
               ("dave ", "pw-dave"), ("zo\u00eb" + ZWSP, "pw-zoe"),
               ("bob", "pw-bob"), ("bob ", "pw-bob2")]
        args = [tplib.tpserver_path(), "script", script,
                os.path.join(first.data_dir, "db")]
        for name, pw in old:
            args += [name, pw]
        r = subprocess.run(args, capture_output=True, timeout=60)
        T.is_(r.returncode, 0, "old database: old-style accounts written "
              "(%s)" % r.stderr.decode("utf-8", "replace").strip())
        with tplib.Server(data_dir=first.data_dir) as srv:
            for typed, pw, what in (
                    ("alice", "pw-alice", "alice"),
                    ("\u00c5sa", "pw-asa", "\u00c5sa as stored"),
                    ("\u00e5sa", "pw-asa", "\u00c5sa in lower case "
                     "(not ASCII)"),
                    ("\u00c5SA", "pw-asa", "\u00c5sa in upper case"),
                    ("e\u0301va", "pw-eva", "a decomposed name as stored"),
                    ("\u00e9va", "pw-eva", "a decomposed name typed "
                     "composed"),
                    ("dave", "pw-dave", "'dave ' (trailing space) as "
                     "'dave'"),
                    ("zo\u00eb" + ZWSP, "pw-zoe", "a name with a "
                     "zero-width space, as stored")):
                c = srv.client()
                c.connect()
                check_okay(T, [c.login(typed, pw)], "old database: %s "
                           "logs in" % what)
                c.close()
            c = srv.client()
            c.connect()
            check_fail(T, [c.login("bob ", "pw-bob2")], 1,
                       "old database: of 'bob' and 'bob ', both stored, "
                       "'bob ' typed reaches bob (the older)")
            check_okay(T, [c.login("bob ", "pw-bob")],
                       "old database: with bob's password")
            c.close()
            T.ok("accounts 'bob' (player 6) and 'bob ' (player 7) are one "
                 "name under the account name rules" in srv.log(),
                 "old database: the clash of 'bob' and 'bob ' is logged",
                 srv.log_tail(10))
            c = srv.client()
            c.connect()
            for name, what in (("\u00e5sa", "\u00c5sa"),
                               ("\u00c9VA", "e\u0301va"),
                               ("Dave", "'dave '")):
                check_fail(T, [c.create_account(name, "pw")], 1,
                           "old database: %r is taken by %s" % (name, what),
                           "is taken")
            check_okay(T, [c.create_account("frank", "pw-frank")],
                       "old database: a new account beside the old ones")
            c.close()
            c = srv.client()
            c.connect()
            check_okay(T, [c.login("frank", "pw-frank")],
                       "old database: the new account logs in")
            c.close()
            T.ok(not srv.error_lines(), "old database: no error in the log",
                 "\n".join(srv.error_lines()))
            T.is_(srv.stop(), 0, "old database: SIGTERM -> exit 0")
    finally:
        first.kill()


if __name__ == "__main__":
    tplib.main(test_persistence, test_creation_disabled, test_auto_create,
               test_lookalikes, test_old_database)
