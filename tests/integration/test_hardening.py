#!/usr/bin/env python3
"""Hardening (issue 14, as far as it is done): the data directory the
server makes is 0700 and everything in it is the server's alone (files
0600, folders 0700: the password hashes are in it), and an existing data
directory that other users may read or enter gets a warning at start
(the server still starts); password guessing: after three wrong passwords
for a name its logins wait 1 s, 2 s, ... (whatever the password), the
connection is closed after five failed logins, the admin console lists
the name, a good login clears it, other names are not slowed; posting
into another player's board is rate-limited (own boards are not);
connections: a cap per address, idle logged-in clients and half-sent
frames closed; a total of unsent output over all clients; a player cap
(max_players) that admins may pass; fair service of a pipelining
client; account creation limited per address and in total over a window
(account_creation_limit, account_creation_total, account_creation_window),
which the admin console passes and 0 turns off."""

import os
import stat
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_protocol import Player  # noqa: E402

T = tplib.Tap.current or tplib.Tap()


def modes(top):
    """{path relative to top: permission bits} of everything under top."""
    out = {}
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            if stat.S_ISSOCK(st.st_mode) or stat.S_ISLNK(st.st_mode):
                continue
            out[os.path.relpath(p, top)] = stat.S_IMODE(st.st_mode)
    return out


def test_new_data_directory():
    with tplib.Server("--tls-port", "0") as srv:
        p = Player(srv)
        p.call("FinishedTurn")
        p.c.close()
        data_mode = stat.S_IMODE(os.stat(srv.data_dir).st_mode)
        T.is_(oct(data_mode), oct(0o700), "a new data directory is 0700")
        found = modes(srv.data_dir)
        T.ok(any(k.startswith("db" + os.sep) for k in found),
             "(the database is in it)", repr(sorted(found)))
        open_to_others = {k: oct(v) for k, v in found.items()
                          if v & 0o077}
        T.is_(open_to_others, {}, "nothing in it is open to group or "
              "others (files 0600, folders 0700)")
        T.ok("can be read or entered by other users" not in srv.log(),
             "no warning about it")


def test_open_data_directory():
    srv = tplib.Server()
    os.makedirs(srv.data_dir)
    os.chmod(srv.data_dir, 0o755)
    with srv:
        p = Player(srv)
        T.ok(p.call("Ping").is_("Okay"), "a data directory of mode 0755: "
             "the server starts and serves")
        T.ok("can be read or entered by other users (mode 755)" in
             srv.log() and "chmod 700" in srv.log(),
             "with a warning that says how to fix it", srv.log_tail(10))
        p.c.close()


def timed_login(c, name, password):
    t0 = time.monotonic()
    f = c.login(name, password)
    return f, time.monotonic() - t0


def test_password_guessing():
    from test_console import console
    with tplib.Server() as srv:
        victim = Player(srv, name="victim")
        victim.c.close()
        c = srv.client()
        c.connect()
        took = []
        for i in range(5):
            f, t = timed_login(c, "Victim", "guess%d" % i)
            T.ok(f.is_("Fail") and f["result"] ==
                 "Login Error - bad username or password",
                 "wrong password %d: the usual Fail" % (i + 1), repr(f))
            took.append(t)
        T.ok(all(t < 0.8 for t in took[:3]), "the first three are answered "
             "at once", repr(took))
        T.ok(0.9 <= took[3] < 3 and 1.9 <= took[4] < 5, "then 1 s, then "
             "2 s", repr(took))
        tplib.expect_close(T, c, "after five failed logins the connection "
                           "is closed")
        rc, out, err = console(srv, "locked()")
        T.ok(rc == 0 and "victim" in out and "name" in out,
             "the admin console lists the name", out + err)
        T.ok("failed logins for account name victim" in srv.log(),
             "the log says the name is slowed down")
        other = Player(srv, name="bystander")
        f, t = timed_login(srv_client(srv), "bystander", "pw-bystander")
        T.ok(f.is_("Okay") and t < 0.8, "another name from the same "
             "address is not slowed", repr((f, t)))
        other.c.close()
        c2 = srv_client(srv)
        f, t = timed_login(c2, "victim", "pw-victim")
        T.ok(f.is_("Okay") and t >= 1.9, "the right password waits too "
             "(%.1f s), then logs in" % t, repr(f))
        c2.close()
        c3 = srv_client(srv)
        f, t = timed_login(c3, "victim", "pw-victim")
        T.ok(f.is_("Okay") and t < 0.8, "after a good login the name is "
             "answered at once again", repr((f, t)))
        c3.close()
        rc, out, err = console(srv, "locked()")
        T.ok(rc == 0 and "victim" not in out, "and no longer listed",
             out + err)


def post(p, board, subject, slot=-1):
    return p.req("PostMessage", {
        "id": board, "slot": slot, "msgtypes": [], "subject": subject,
        "body": "spam", "turn": 0, "references": []})


def test_board_spam():
    with tplib.Server() as srv:
        a, b = Player(srv), Player(srv)
        a_board = a.get("GetBoards", [0])[0]["id"]
        before = a.get("GetBoards", [0])[0]["messages"]
        answers = [post(b, a_board, "spam %d" % i)[0] for i in range(12)]
        okays = [f.is_("Okay") for f in answers]
        T.ok(okays == [True] * 10 + [False] * 2, "ten messages to another "
             "player's board at once, then Fail", repr(answers))
        T.ok(answers[-1]["code"] == 3 and "too fast" in
             answers[-1]["result"], "Fail 'posting too fast; try again in "
             "N s'", repr(answers[-1]))
        T.is_(a.get("GetBoards", [0])[0]["messages"], before + 10,
              "the board holds the ten")
        own = post(b, 0, "note to self", slot=0)
        T.ok(own[0].is_("Okay"), "posting to one's own board is not "
             "limited", repr(own))
        a.c.close()
        b.c.close()


def test_connection_limits():
    with tplib.Server("--set", "max_connections_per_address=3",
                      "--set", "idle_timeout=1",
                      "--set", "frame_timeout=1") as srv:
        held = [srv_client(srv) for _ in range(3)]
        extra = srv.client()
        f = extra.call("Connect", {"client": "fourth"})
        T.ok(f.is_("Fail") and f["code"] == 3 and
             "too many connections from your address" in f["result"],
             "a fourth connection from one address: Fail", repr(f))
        tplib.expect_close(T, extra, "and it is closed")
        held.pop().close()
        time.sleep(0.3)
        c = srv_client(srv)
        T.ok(c.call("Ping").is_("Okay"), "room again when one leaves")
        for h in held + [c]:
            h.close()
        time.sleep(0.5)         # (their slots free once they are gone)
        # Idle: a logged-in client that sends nothing is closed; one that
        # pings stays.
        quiet, busy = Player(srv), Player(srv)
        t0 = time.monotonic()
        alive = True
        while time.monotonic() - t0 < 3.0 and alive:
            alive = busy.call("Ping").is_("Okay")
            time.sleep(0.3)
        T.ok(alive, "a client that pings stays connected")
        tplib.expect_close(T, quiet.c, "a logged-in client silent past "
                           "idle_timeout is closed", timeout=5)
        T.ok("sent nothing for 1 s: closing" in srv.log(), "the log says so")
        busy.c.close()
        # Half a frame: a header cut after 8 bytes.
        h = srv.client()
        h.send_bytes(tplib.encode_frame(4, 1, "Connect",
                                        {"client": "x"})[:8])
        tplib.expect_close(T, h, "a frame left half-sent past "
                           "frame_timeout is closed", timeout=5)
        T.ok("left a frame unfinished for 1 s" in srv.log(),
             "the log says so")


def test_total_output():
    """Clients that never read: past max_output_total all together, the
    ones holding unread output are disconnected; a client that reads is
    not."""
    import socket
    import threading
    with tplib.Server("--set", "max_output=262144",
                      "--set", "max_frame_size=131072",
                      "--set", "max_output_total=400000") as srv:
        ping = tplib.encode_frame(4, 7, "Ping", {})
        blob = ping * 20000
        socks = []
        for _ in range(8):
            c = srv_client(srv)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            socks.append(c)

        def flood(c):
            try:
                for _ in range(15):
                    c.sock.sendall(blob)
            except OSError:
                pass
        threads = [threading.Thread(target=flood, args=(c,), daemon=True)
                   for c in socks]
        for t in threads:
            t.start()
        reader = srv_client(srv)
        ok = True
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "all clients' unsent " \
                "output" not in srv.log():
            ok = ok and reader.call("Ping").is_("Okay")
            time.sleep(0.1)
        T.ok("all clients' unsent output is over 400000 bytes" in
             srv.log(), "past the total, clients not reading are "
             "disconnected (logged)", srv.log_tail(5))
        T.ok(ok and reader.call("Ping").is_("Okay"), "a client that reads "
             "is served throughout")
        for c in socks:
            c.sock.close()
        reader.close()


def test_player_cap():
    from test_console import console
    with tplib.Server("--set", "max_players=2") as srv:
        a, b = Player(srv), Player(srv)
        c = srv_client(srv)
        f = c.create_account("third", "pw")
        T.ok(f.is_("Fail") and f["code"] == 5 and "the game is full (2 "
             "players)" in f["result"], "max_players=2: the third "
             "CreateAccount gets Fail 'the game is full'", repr(f))
        c.close()
        T.ok(a.call("Ping").is_("Okay") and b.call("Ping").is_("Okay"),
             "the two players are still served")
        rc, out, err = console(srv, 'add_player("admins_pick", "pw")')
        T.ok(rc == 0, "an admin may still add a player", out + err)
        a.c.close()
        b.c.close()


def limited(f, text):
    """A Fail UnavailableTemporarily whose text has text."""
    return (f.is_("Fail") and f["code"] == 3 and
            f["result"].startswith("cannot create account: ") and
            text in f["result"])


def test_creation_limit():
    """account_creation_limit=3: the fourth account from one address
    within the window gets a Fail saying when to try again, logged with
    the address; refused and failed attempts do not count; the console
    still adds players; a Login that would auto-create is limited too."""
    from test_console import console
    with tplib.Server("--set", "account_creation_limit=3",
                      "--set", "account_creation_window=600",
                      "--set", "auto_create_accounts=true") as srv:
        c = srv_client(srv)
        for i in range(3):
            f = c.create_account("flood%d" % i, "pw")
            T.ok(f.is_("Okay"), "limit 3: account %d of 3 from 127.0.0.1 "
                 "-> Okay" % (i + 1), repr(f))
        f = c.create_account("flood3", "pw")
        T.ok(limited(f, "too many new accounts from your address (3 in 10 "
                     "minutes); try again in 10 minutes"),
             "limit 3: the fourth -> Fail 3 'too many new accounts from "
             "your address (3 in 10 minutes); try again in 10 minutes'",
             repr(f))
        c2 = srv_client(srv)
        f = c2.create_account("flood4", "pw")
        T.ok(limited(f, "from your address"), "limit 3: another "
             "connection from the same address is refused too", repr(f))
        f = c2.create_account("flood0", "pw")
        T.ok(f.is_("Fail") and f["code"] == 1 and "is taken" in f["result"],
             "limit 3: a taken name is still answered 'taken'", repr(f))
        f = c2.login("auto_new", "pw")
        T.ok(f.is_("Fail") and "too many new accounts" in f["result"],
             "limit 3: a Login that would create the account is refused",
             repr(f))
        c2 = srv_client(srv)
        check_ok = c2.login("flood1", "pw")
        T.ok(check_ok.is_("Okay"), "limit 3: the accounts made log in",
             repr(check_ok))
        T.ok("account creation refused for 127.0.0.1: 3 new accounts from "
             "it in the last 10 minutes (account_creation_limit)"
             in srv.log(), "limit 3: the refusal is logged with the "
             "address", srv.log_tail(5))
        T.is_(srv.log().count("account creation refused for 127.0.0.1"), 1,
              "limit 3: and logged once, not for every refusal")
        rc, out, err = console(srv, 'add_player("admins_own", "pw").name')
        T.ok(rc == 0 and "admins_own" in out, "limit 3: the console adds a "
             "player regardless", out + err)
        T.ok(c.ping().is_("Okay"), "limit 3: the refused client is still "
             "served")
        c.close()
        c2.close()
        T.ok(not srv.error_lines(), "limit 3: no error in the log",
             "\n".join(srv.error_lines()))

    # The window slides: a slot is free again once its account is older.
    with tplib.Server("--set", "account_creation_limit=1",
                      "--set", "account_creation_window=2") as srv:
        c = srv_client(srv)
        T.ok(c.create_account("slide0", "pw").is_("Okay"),
             "window 2 s, limit 1: the first account")
        f = c.create_account("slide1", "pw")
        T.ok(limited(f, "(1 in 2 seconds); try again in 2 seconds"),
             "window 2 s: the second at once -> 'try again in 2 seconds'",
             repr(f))
        time.sleep(2.2)
        f = c.create_account("slide1", "pw")
        T.ok(f.is_("Okay"), "window 2 s: after 2 s it is taken", repr(f))
        c.close()

    # 0 turns the per-address limit off (the total keeps its default, 30).
    with tplib.Server("--set", "account_creation_limit=0",
                      "--set", "account_creation_total=30") as srv:
        c = srv_client(srv)
        made = sum(1 for i in range(6)
                   if c.create_account("free%d" % i, "pw").is_("Okay"))
        T.is_(made, 6, "account_creation_limit=0: six accounts from one "
              "address")
        c.close()

    # The total over all addresses.
    with tplib.Server("--set", "account_creation_limit=0",
                      "--set", "account_creation_total=2") as srv:
        c = srv_client(srv)
        T.ok(c.create_account("all0", "pw").is_("Okay") and
             c.create_account("all1", "pw").is_("Okay"),
             "total 2: two accounts")
        f = c.create_account("all2", "pw")
        T.ok(limited(f, "too many new accounts on this server just now (2 "
                     "in 10 minutes); try again in"),
             "total 2: the third -> Fail 3 'too many new accounts on this "
             "server just now'", repr(f))
        T.ok("(account_creation_total)" in srv.log(), "total 2: the "
             "refusal is logged", srv.log_tail(5))
        c.close()


def test_fair_service():
    """A client pipelining a flood of Pings does not hold the loop: a
    quiet client's Ping is answered while the flood is being served, not
    after (counted in replies to the flooder, not in seconds)."""
    import threading
    with tplib.Server() as srv:
        flood = srv_client(srv)
        quiet = srv_client(srv)
        total = 150000
        count = [0]
        done = threading.Event()

        def reader():
            buf = b""
            while count[0] < total:
                try:
                    chunk = flood.sock.recv(1 << 20)
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
                n = len(buf) // 24          # Okay "pong": 24 bytes each
                count[0] += n
                buf = buf[n * 24:]
            done.set()
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        ping = tplib.encode_frame(4, 9, "Ping", {})
        sender = threading.Thread(
            target=lambda: flood.sock.sendall(ping * total), daemon=True)
        sender.start()
        while count[0] < 1000 and not done.is_set():
            time.sleep(0.001)
        before = count[0]
        f = quiet.call("Ping")
        after = count[0]
        done.wait(60)
        T.ok(f.is_("Okay"), "the quiet client is answered")
        T.ok(before < total and after - before < 10000,
             "while the flood is served: %d flood replies went out between "
             "its Ping and its answer (of %d)" % (after - before, total),
             repr((before, after)))
        T.is_(count[0], total, "and the flood got every reply")
        flood.close()
        quiet.close()


def srv_client(srv):
    c = srv.client()
    c.connect()
    return c


def main():
    T.run(test_new_data_directory, test_open_data_directory,
          test_password_guessing, test_board_spam, test_connection_limits,
          test_total_output, test_player_cap, test_creation_limit,
          test_fair_service)
    T.done()


if __name__ == "__main__":
    main()
