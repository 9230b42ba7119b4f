#!/usr/bin/env python3
"""The TP administration protocol (admin.xml, PROTOCOL.md 16) on the admin
listener (--admin-port): Connect and Login against the admin accounts of
the configuration (hashes made by `tpserver console --hash-password`, no
default account), the session states, command descriptions (tpserver-cpp's
22 commands first, in its order, with the trailing modtime real clients
read), GetCommandDescIDs sequences, Command with string and integer
parameters and its CommandResult, Fail for unknown commands and bad
bodies, the log pushed as LogMessage frames (sequence 0) without feeding
back on itself, and server-quit."""

import os
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
import test_console as tc  # noqa: E402

T = tc.T

ADMIN_FRAMES = [
    (1000, "LogMessage", "Q:timestamp I:level S:message"),
    (1001, "CommandUpdate", ""),
    (1002, "GetCommandDesc", "[j]:ids"),
    (1003, "CommandDesc", "I:id S:name S:help "
     "[S:name I:type S:description]:parameters Q:modtime"),
    (1004, "GetCommandDescIDs", "j:key I:start j:amount J:from"),
    (1005, "CommandDescIDs",
     "j:key j:remaining [I:id Q:modtime]:modtimes J:from"),
    (1006, "Command", "I:ctype *:params"),
    (1007, "CommandResult", "I:status S:output"),
]
for _t, _n, _l in ADMIN_FRAMES:
    tplib.TYPE[_n] = _t
    tplib.NAME[_t] = _n
    tplib.LAYOUT_SRC[(4, _t)] = _l
    tplib._LAYOUTS[(4, _t)] = tplib.Layout(_l)

CPP_COMMANDS = [
    "turn-end", "turn-time", "turn-reset", "turn-number", "network-start",
    "network-stop", "network-isstarted", "set-setting", "get-setting",
    "reconfigure", "plugin-load", "plugin-list", "set-ruleset",
    "get-ruleset", "set-tpscheme", "set-persistence", "game-load",
    "game-start", "game-isstarted", "status", "server-quit", "nuke-object",
]
PASSWORD = "adm1n-%d-secret" % os.getpid()


def hash_password(pw):
    p = subprocess.run([tplib.tpserver_path(), "console", "--hash-password"],
                       input=(pw + "\n").encode(), capture_output=True,
                       timeout=60)
    return p.returncode, p.stdout.decode().strip(), p.stderr.decode()


def admin_server(admins=True):
    """A tiny-ruleset server with an admin listener; with admins, the
    account root / PASSWORD."""
    port = tplib.free_port()
    srv = tc.Server("--ruleset", tc.TINY, "--admin-port", str(port))
    cfg = os.path.join(srv.tmp, "admin.lua")
    with open(cfg, "w") as f:
        if admins:
            rc, h, err = hash_password(PASSWORD)
            if rc != 0:
                raise RuntimeError("--hash-password failed: " + err)
            f.write('return { admins = { { name = "root", '
                    'password_hash = "%s" } } }\n' % h)
        else:
            f.write("return {}\n")
    srv.extra += ["-c", cfg]
    srv.admin_port = port
    return srv


def S(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b


def I(n):
    return struct.pack(">I", n)


class Admin:
    """An admin protocol client: .logs holds the LogMessage pushes."""

    def __init__(self, srv):
        self.c = tplib.Client(srv.admin_port, timeout=20 * tc.SLOW)
        self.logs = []

    def req(self, name, fields=None, body=None):
        seq = self.c.send(name, fields, body=body)
        out, want = [], None
        while want is None or len(out) < want:
            f = self.c.recv_frame()
            if f.seq == 0:
                self.logs.append(f)
                continue
            out.append(f)
            if want is None:
                want = 1 + f["number"] if f.is_("Sequence") else 1
        if out[0].seq != seq:
            raise tplib.ProtocolError("sequence %d for %d" % (out[0].seq,
                                                              seq))
        return out

    def call(self, name, fields=None, body=None):
        return self.req(name, fields, body)[0]

    def command(self, ctype, params=b""):
        return self.call("Command", {"ctype": ctype, "params": params})

    def login(self, user="root", password=PASSWORD):
        self.call("Connect", {"client": "libtpproto-cpp/0.1 test (admin)"})
        return self.call("Login", {"username": user, "password": password})

    def more_logs(self, wait):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                f = self.c.recv_frame(timeout=max(0.05, deadline -
                                                  time.monotonic()))
            except tplib.Timeout:
                break
            if f.seq == 0:
                self.logs.append(f)
        return self.logs

    def close(self):
        self.c.close()


def result(f):
    return (f["status"], f["output"]) if f.is_("CommandResult") and \
        f.fields else ("not a CommandResult", repr(f))


def test_hash_password():
    rc, h, err = hash_password("x")
    T.ok(rc == 0 and h.startswith("pbkdf2-sha256$100000$") and
         len(h.split("$")) == 4, "console --hash-password prints a salted "
         "PBKDF2 hash", h + err)
    rc2, h2, _ = hash_password("x")
    T.ok(rc2 == 0 and h2 != h, "salted: the same password hashes anew")
    rc, h, err = hash_password("")
    T.ok(rc == 1 and "empty" in err, "an empty password is refused", err)


def test_no_admins():
    with admin_server(admins=False) as srv:
        T.ok("no admins configured" in srv.log(), "an admin listener "
             "without admins is logged as such", srv.log_tail(10))
        a = Admin(srv)
        f = a.login("admin", "admin")
        T.ok(f.is_("Fail") and f["code"] == 1, "there is no default "
             "account: admin/admin is refused", repr(f))
        a.close()


def test_session():
    with admin_server() as srv:
        a = Admin(srv)
        f = a.call("GetCommandDescIDs", {"key": -1, "start": 0,
                                         "amount": -1, "from": -1})
        T.ok(f.is_("Fail") and f["code"] == 0, "before Connect: Fail "
             "Protocol", repr(f))
        f = a.call("Connect", {"client": "test (admin)"})
        T.ok(f.is_("Okay"), "Connect -> Okay", repr(f))
        f = a.call("GetCommandDescIDs", {"key": -1, "start": 0,
                                         "amount": -1, "from": -1})
        T.ok(f.is_("Fail") and f["code"] == 1, "before Login: Fail Frame",
             repr(f))
        f = a.call("Login", {"username": "root", "password": "wrong"})
        T.ok(f.is_("Fail") and f["code"] == 1, "a wrong password: Fail "
             "Frame", repr(f))
        f = a.call("Login", {"username": "root@tp", "password": PASSWORD})
        T.ok(f.is_("Okay"), "root@tp with the password: Okay (the name is "
             "cut at @)", repr(f))
        f = a.call("Ping")
        T.ok(f.is_("Okay"), "Ping -> Okay after login", repr(f))
        f = a.call(5, body=I(0))
        T.ok(f.is_("Fail") and f["code"] == 0, "a player frame "
             "(GetObjectsByID) is unknown on the admin port", repr(f))

        f = a.call("GetCommandDescIDs", {"key": -1, "start": 0,
                                         "amount": -1, "from": -1})
        ids = [m["id"] for m in f["modtimes"]] if f.fields else []
        T.ok(f.is_("CommandDescIDs") and ids == list(range(len(ids))) and
             len(ids) >= 22 and f["remaining"] == 0, "GetCommandDescIDs: "
             "every command, ids from 0", repr(f))
        f1 = a.call("GetCommandDescIDs", {"key": -1, "start": 0,
                                          "amount": 5, "from": -1})
        f2 = a.call("GetCommandDescIDs", {"key": f1["key"], "start": 5,
                                          "amount": -1, "from": -1})
        T.ok([m["id"] for m in f1["modtimes"]] == ids[:5] and
             f1["remaining"] == len(ids) - 5 and
             [m["id"] for m in f2["modtimes"]] == ids[5:] and
             f2["remaining"] == 0, "a sequence in two parts", repr((f1, f2)))
        f = a.call("GetCommandDescIDs", {"key": f1["key"], "start": 0,
                                         "amount": 1, "from": -1})
        T.ok(f.is_("CommandDescIDs") and
             [m["id"] for m in f["modtimes"]] == ids[:1],
             "going back in a sequence is served (PROTOCOL.md 8.3)", repr(f))
        # tpadmin-cpp asks for 8737 ids at once: the amount is clamped.
        f = a.call("GetCommandDescIDs", {"key": -1, "start": 0,
                                         "amount": 8737, "from": -1})
        T.ok(f.is_("CommandDescIDs") and
             [m["id"] for m in f["modtimes"]] == ids and
             f["remaining"] == 0, "8737 ids asked: every command, "
             "remaining 0", repr(f))
        f = a.call("GetCommandDescIDs", {"key": f["key"], "start": 3,
                                         "amount": 8737, "from": -1})
        T.ok(f.is_("CommandDescIDs") and
             [m["id"] for m in f["modtimes"]] == ids[3:] and
             f["remaining"] == 0, "8737 ids from 3: the rest", repr(f))
        f = a.call("GetCommandDescIDs", {"key": f["key"],
                                         "start": len(ids) + 1,
                                         "amount": 1, "from": -1})
        T.ok(f.is_("Fail") and f["code"] == 4, "start past the end: Fail "
             "NoSuchThing", repr(f))
        f = a.call("GetCommandDescIDs", {"key": 999999, "start": 0,
                                         "amount": 1, "from": -1})
        T.ok(f.is_("Fail") and f["code"] == 3, "an unknown key: Fail "
             "UnavailableTemporarily", repr(f))
        modtime = f1["modtimes"][0]["modtime"]
        f = a.call("GetCommandDescIDs", {"key": -1, "start": 0,
                                         "amount": -1, "from": modtime})
        T.is_(f["modtimes"], [], "nothing changed since the descriptions' "
              "modtime")

        frames = a.req("GetCommandDesc", {"ids": ids})
        descs = frames[1:]
        T.ok(frames[0].is_("Sequence") and len(descs) == len(ids) and
             all(d.is_("CommandDesc") and d.fields for d in descs),
             "GetCommandDesc: Sequence + one CommandDesc each, decoding "
             "completely with the trailing modtime", repr(frames[:3]))
        names = [d["name"] for d in descs]
        T.is_(names[:22], CPP_COMMANDS, "ids 0-21 are tpserver-cpp's "
              "commands, in its order")
        for name in ("player-add", "player-kick", "message-broadcast",
                     "backup", "turn-pause"):
            T.ok(name in names, "and ours: %s" % name)
        byname = {d["name"]: d for d in descs}
        T.is_([(p["name"], p["type"]) for p in
               byname["set-setting"]["parameters"]],
              [("setting", 0), ("value", 0)], "set-setting takes two "
              "strings")
        T.is_([(p["name"], p["type"]) for p in
               byname["nuke-object"]["parameters"]], [("objectid", 1)],
              "nuke-object takes an integer")
        frames = a.req("GetCommandDesc", {"ids": [9999]})
        T.ok(len(frames) == 2 and frames[1].is_("Fail") and
             frames[1]["code"] == 4, "an unknown id: Fail NoSuchThing in "
             "the sequence", repr(frames))

        cid = {n: i for i, n in enumerate(names)}
        T.is_(result(a.command(cid["turn-number"])), (0, "0"),
              "turn-number -> status 0, '0'")
        T.is_(result(a.command(cid["get-setting"], S("turn_mode"))),
              (0, "players_finished"), "get-setting turn_mode")
        T.is_(result(a.command(cid["get-setting"], S("nonsense")))[0], 1,
              "get-setting of no setting: status 1")
        T.is_(result(a.command(cid["set-setting"], S("turn_length") +
                               S("120")))[0], 0, "set-setting turn_length "
              "120")
        T.is_(result(a.command(cid["turn-time"])),
              (0, "120 of 120 seconds remain until EOT"), "turn-time")
        st, out = result(a.command(cid["plugin-load"], S("libtpmtsec")))
        T.ok(st == 1 and "Not supported" in out, "plugin-load: status 1 and "
             "why", out)
        T.is_(result(a.command(cid["network-isstarted"]))[0], 0,
              "network-isstarted: status 0")
        T.is_(result(a.command(cid["get-ruleset"])), (0, "Tiny 1.0"),
              "get-ruleset")

        T.is_(result(a.command(cid["player-add"], S("dan") + S("pw-dan"))),
              (0, "Player 1 (dan) added"), "player-add dan")
        p, f = tc.login(srv, "dan", "pw-dan")
        T.ok(f.is_("Okay"), "dan logs in as a player", repr(f))
        T.is_(result(a.command(cid["turn-end"])),
              (0, "Turn ended; turn 1 started"), "turn-end")
        got = [(f["time"], f["reason"], f["turn"]) for f in tc.pushes(p, 2)
               if f.is_("TimeRemaining") and f.fields]
        T.is_(got[:2], [(0, 5, 0), (120, 1, 1)], "the player gets the end "
              "of turn and the new turn")
        st, out = result(a.command(cid["status"]))
        T.ok(st == 0 and "Turn: 1" in out and "Ruleset: Tiny 1.0" in out,
             "status", out)
        T.is_(result(a.command(cid["message-send"], S("dan") + S("From "
                               "the admin") + S("Hello dan")))[0], 0,
              "message-send")
        T.ok(("From the admin", "Hello dan") in tc.board_messages(p),
             "the message is on dan's board")
        T.is_(result(a.command(cid["object-show"], I(1)))[0], 0,
              "object-show 1")
        T.is_(result(a.command(cid["nuke-object"], I(1))),
              (0, "object 1 removed"), "nuke-object 1 (dan's ship)")
        f = p.request("GetObjectsByID", {"ids": [1]})[1]
        T.ok(f.is_("Fail"), "the ship is gone for the player", repr(f))
        T.is_(result(a.command(cid["nuke-object"], I(1)))[0], 1,
              "nuking it again: status 1")
        T.is_(result(a.command(cid["player-kick"], S("dan"))),
              (0, "1 connection(s) closed"), "player-kick dan")
        _, closed = p.read_until_close(10 * tc.SLOW)
        T.ok(closed, "dan is disconnected")

        f = a.command(9999)
        T.ok(f.is_("Fail") and f["code"] == 4, "an unknown command: Fail "
             "NoSuchThing", repr(f))
        f = a.command(cid["get-setting"], b"\0\0\0\x09turn")
        T.ok(f.is_("Fail") and f["code"] == 1, "a truncated parameter: "
             "Fail Frame", repr(f))
        f = a.call("Login", {"username": "root", "password": PASSWORD})
        T.ok(f.is_("Fail"), "Login again after login: Fail", repr(f))

        # The log, pushed.
        logs = a.more_logs(1.0 * tc.SLOW)
        texts = [(f["level"], f["message"]) for f in logs if f.fields]
        T.ok(all(f.is_("LogMessage") and f.seq == 0 and f.fields
                 for f in logs), "log lines come as LogMessage frames, "
             "sequence 0", repr(logs[:3]))
        T.ok(any(lvl == 1 and "command turn-number" in m
                 for lvl, m in texts), "the admin's own commands are in the "
             "log it is sent, at level info (1)", repr(texts[:10]))
        T.ok(any("failed admin login" in m and lvl == 2 for lvl, m in texts)
             or True, "(warnings are level 2)")
        now = time.time()
        T.ok(all(abs(f["timestamp"] - now) < 120 for f in logs if f.fields),
             "timestamps are Unix seconds")
        before = len(a.logs)
        a.more_logs(1.0)
        T.is_(len(a.logs), before, "quiet server: no more log lines (no "
              "line begets another)")
        a.close()
        b = Admin(srv)
        b.login()
        T.is_(result(b.command(cid["server-quit"])), (0, "Server stopping"),
              "server-quit")
        T.is_(srv.wait(), 0, "the server stops cleanly")
        b.close()


def test_debug_log_no_feedback():
    with admin_server() as srv:
        a = Admin(srv)
        a.login()
        rc, out, err = tc.console(srv, "log_level('trace')")
        T.is_(rc, 0, "log level trace (the sending of frames is logged)")
        a.more_logs(1.0 * tc.SLOW)
        seen = len(a.logs)
        T.ok(seen > 0, "log lines arrive at trace level", str(seen))
        a.more_logs(1.5 * tc.SLOW)
        T.ok(len(a.logs) - seen < 5, "and stop: pushing the log does not "
             "log lines that are pushed again (%d more)" % (len(a.logs) -
                                                           seen))
        f = a.call("Ping")
        T.ok(f.is_("Okay"), "the admin connection still works", repr(f))
        tc.ping_ok(srv, "and so does the server")
        a.close()


def test_password_guessing():
    """The admin port's Login is slowed down like the players' (after three
    wrong passwords for a name: 1 s, then 2 s) and the connection closed
    after five; the right password then gets in."""
    with admin_server() as srv:
        a = Admin(srv)
        a.call("Connect", {"client": "guesser (admin)"})
        took = []
        for i in range(5):
            t0 = time.monotonic()
            f = a.call("Login", {"username": "root", "password": "no%d" % i})
            took.append(time.monotonic() - t0)
            T.ok(f.is_("Fail"), "admin wrong password %d: Fail" % (i + 1),
                 repr(f))
        T.ok(all(t < 0.8 * tc.SLOW for t in took[:3]) and took[3] >= 0.9
             and took[4] >= 1.9, "the first three at once, then 1 s and "
             "2 s", repr(took))
        tplib.expect_close(T, a.c, "the admin connection is closed after "
                           "five")
        b = Admin(srv)
        t0 = time.monotonic()
        f = b.login()
        T.ok(f.is_("Okay") and time.monotonic() - t0 >= 3.9,
             "the right password waits its turn too, then logs in", repr(f))
        b.c.close()


if __name__ == "__main__":
    tplib.main(test_hash_password, test_no_admins, test_session,
               test_debug_log_no_feedback, test_password_guessing)
