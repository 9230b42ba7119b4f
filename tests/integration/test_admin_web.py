#!/usr/bin/env python3
"""The control UI's server side over real sockets (docs/admin-ui.md):
/admin exists only with an admin account; every /api/admin/ route is
refused without an admin session (401), from another site or without the
CSRF header (403), and then nothing changes; failed logins are slowed and
logged with the address; with a session each action takes effect as a TP
client sees it (kick, broadcast, end of turn, ban, players added, removed,
given a new password, turns paused), the console pane evaluates Lua as the
console does, the event stream carries the log, the clients and the
audit trail, which is stored and survives a restart."""

import http.client
import json
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
import weblib  # noqa: E402
import test_console as tc  # noqa: E402
from test_admin import hash_password  # noqa: E402

T = tplib.Tap()
WEB = weblib.WEB
PASSWORD = "web-adm1n-%d" % os.getpid()
ACTIONS = ["turn.now", "turn.pause", "turn.resume", "turn.reset",
           "turn.mode", "turn.length", "add_player", "remove_player",
           "reset_password", "kick", "ban", "unban", "message", "broadcast",
           "log_level", "unlock", "reload", "reload_ruleset", "backup",
           "shutdown"]
_HASH = []


def admin_hash():
    if not _HASH:
        rc, h, err = hash_password(PASSWORD)
        if rc != 0:
            raise RuntimeError("--hash-password failed: " + err)
        _HASH.append(h)
    return _HASH[0]


def write_admins(srv, names):
    with open(os.path.join(srv.tmp, "admins.lua"), "w") as f:
        f.write("return { admins = { %s } }\n" % ", ".join(
            '{ name = "%s", password_hash = "%s" }' % (n, admin_hash())
            for n in names))


def server(names=("root",), data_dir=None, *extra):
    srv = tplib.Server("--ruleset", tc.TINY, *extra, data_dir=data_dir,
                       port_flags=[WEB])
    write_admins(srv, names)
    srv.extra += ["-c", os.path.join(srv.tmp, "admins.lua")]
    return srv


class Web(weblib.Web):
    """An admin's client: X-TP-Admin-CSRF on POST, POSTs as the control
    UI sends them."""

    csrf_header = "X-TP-Admin-CSRF"
    csrf_methods = ("POST",)
    page_posts = True

    def __init__(self, srv):
        super().__init__(srv, timeout=30 * tc.SLOW)

    def login(self, name="root", password=PASSWORD):
        return self.login_post("/api/admin/login", {"name": name,
                                                    "password": password})

    def action(self, name, *args, **kw):
        return self.post("/api/admin/action", {"action": name,
                                               "args": list(args)}, **kw)

    def lua(self, code):
        return self.post("/api/admin/console", {"code": code})


def player(srv, name, password="pw"):
    c = srv.client()
    c.connect()
    c.create_account(name, password)
    tplib.check_okay(T, [c.login(name, password)], "%s logs in over TP"
                     % name)
    return c


def can_login(srv, name, password):
    c = srv.client()
    try:
        c.connect()
        return c.login(name, password).is_("Okay")
    finally:
        c.close()


def turn_of(w):
    return w.get("/api/game")[2]["turn"]


class Events:
    """GET /api/admin/events read on a socket of its own."""

    def __init__(self, srv, cookie):
        self.s = socket.create_connection(("127.0.0.1", srv.ports[WEB]),
                                          timeout=1)
        self.s.sendall(("GET /api/admin/events HTTP/1.1\r\nHost: x\r\n"
                        "Cookie: %s\r\n\r\n" % cookie).encode())
        self.buf = b""
        self.events = []

    def read(self, until, timeout=15):
        deadline = time.monotonic() + timeout * tc.SLOW
        while time.monotonic() < deadline:
            for i, (name, data) in enumerate(self.events):
                if until(name, data):
                    del self.events[i]
                    return name, data
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            self.buf += chunk
            while b"\n\n" in self.buf:
                block, self.buf = self.buf.split(b"\n\n", 1)
                name, data = None, None
                for line in block.decode("utf-8", "replace").split("\n"):
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                if name:
                    self.events.append((name, data))
        return None, None

    def close(self):
        self.s.close()


def test_off_without_admins():
    srv = server(names=()).start()
    try:
        w = Web(srv)
        T.is_(w.get("/admin")[0], 404, "no admins: /admin is 404")
        for path in ("/api/admin/state", "/api/admin/session",
                     "/api/admin/events"):
            T.is_(w.get(path)[0], 404, "no admins: GET %s is 404" % path)
        T.is_(w.post("/api/admin/login", {"name": "root",
                                          "password": "x"})[0], 404,
              "no admins: no login either")
        T.is_(w.get("/api/game")[2].get("admin_ui"), False,
              "/api/game: admin_ui false")
    finally:
        srv.stop()


def test_refused_without_session():
    srv = server().start()
    try:
        w = Web(srv)
        st, hd, body = w.get("/admin")
        T.ok(st == 200 and "text/html" in hd.get("content-type", "") and
             "frame-ancestors 'none'" in hd.get(
                 "content-security-policy", ""),
             "/admin: the page, with its CSP", "%d %r" % (st, hd))
        T.is_(w.get("/api/game")[2].get("admin_ui"), True,
              "/api/game: admin_ui true")
        a = player(srv, "alice")
        before = turn_of(w)
        for path in ("/api/admin/state", "/api/admin/session",
                     "/api/admin/events"):
            T.is_(w.get(path)[0], 401, "no session: GET %s is 401" % path)
        for name in ACTIONS:
            args = {"kick": ["alice"], "ban": ["alice"],
                    "remove_player": ["alice"], "broadcast": ["x", "y"],
                    "backup": [os.path.join(srv.tmp, "bk")]}.get(name, [])
            st = w.action(name, *args)[0]
            T.is_(st, 401, "no session: action %s is 401" % name)
        T.is_(w.lua("turn.now()")[0], 401, "no session: the console is 401")
        # A player's session is no admin session.
        p = Web(srv)
        s, hd, v = p.post("/api/login", {"username": "alice",
                                         "password": "pw"})
        p.cookie = hd["set-cookie"].split(";")[0]
        T.is_(p.get("/api/admin/state")[0], 401,
              "a player's session cookie does not open /api/admin/")
        time.sleep(0.3)
        T.is_(turn_of(w), before, "nothing changed: same turn")
        T.ok(a.ping().is_("Okay"), "nothing changed: alice still connected")
        T.ok(not os.path.exists(os.path.join(srv.tmp, "bk")),
             "nothing changed: no backup made")
        T.ok(srv.proc.poll() is None, "nothing changed: the server runs")
        T.ok(can_login(srv, "alice", "pw"), "alice can still log in")

        # Failed logins: refused, logged with the address, slowed.
        times = []
        for i in range(4):
            t0 = time.monotonic()
            st = w.post("/api/admin/login", {"name": "ghost",
                                             "password": "nope"})[0]
            times.append(time.monotonic() - t0)
            T.is_(st, 401, "wrong admin login %d: 401" % (i + 1))
        T.ok(times[3] >= 0.9 and times[0] < 0.9,
             "the 4th failure for a name waits (slowed)", repr(times))
        T.ok('web admin login failed as "ghost" from 127.0.0.1' in
             srv.log(), "a failed login is logged with the address",
             srv.log_tail(10))
        st = w.post("/api/admin/login", {"name": "root",
                                         "password": "wrong"})[0]
        T.is_(st, 401, "root with a wrong password: 401")

        # The session cookie.
        st, hd, v = w.login()
        T.is_(st, 200, "root logs in")
        c = hd.get("set-cookie", "")
        T.ok(c.startswith("tp_admin=") and "HttpOnly" in c and
             "SameSite=Strict" in c and "Max-Age=3600" in c and
             "Secure" not in c,
             "cookie tp_admin: HttpOnly, SameSite=Strict, expiring; no "
             "Secure over plain HTTP", c)
        T.ok(v["name"] == "root" and len(v["csrf"]) >= 32,
             "the answer names the admin and carries a csrf token", repr(v))
        T.is_(w.get("/api/admin/session")[2]["name"], "root",
              "GET /api/admin/session")

        # Cross-site and token-less requests are refused.
        st = w.action("kick", "alice",
                      headers={"Origin": "http://evil.example"})[0]
        T.is_(st, 403, "a cross-site POST (another Origin) is 403")
        st = w.action("kick", "alice", csrf=False)[0]
        T.is_(st, 403, "a POST without X-TP-Admin-CSRF is 403")
        st = w.action("kick", "alice",
                      headers={"X-TP-Admin-CSRF": "0" * 48})[0]
        T.is_(st, 403, "a POST with a wrong X-TP-Admin-CSRF is 403")
        st = w.post(
            "/api/admin/console", {"code": "turn.now()"},
            headers={"Origin": "http://evil.example"})[0]
        T.is_(st, 403, "a cross-site console line is 403")
        time.sleep(0.3)
        T.ok(a.ping().is_("Okay"), "after the refusals alice is still "
             "connected")
        T.is_(turn_of(w), before, "after the refusals the turn is the same")

        # Logout ends it.
        T.is_(w.post("/api/admin/logout")[0], 200, "logout")
        T.is_(w.get("/api/admin/state")[0], 401, "after logout: 401")
        a.close()
    finally:
        srv.stop()


def test_actions():
    srv = server().start()
    try:
        w = Web(srv)
        a = player(srv, "alice")
        b = player(srv, "bob")
        w.login()
        ev = Events(srv, w.cookie)
        name, hello = ev.read(lambda n, d: n == "hello")
        T.is_(hello, {"admin": "root"}, "the event stream says hello")

        st, _, s = w.get("/api/admin/state")
        T.is_(st, 200, "GET /api/admin/state")
        rows = [c for c in s["clients"] if c["player"] == "alice"]
        T.ok(len(rows) == 1 and rows[0]["protocol"] == "TP04" and
             rows[0]["kind"] == "tp" and rows[0]["tls"] is False and
             rows[0]["listener"].startswith("127.0.0.1:") and
             isinstance(rows[0]["idle"], (int, float)) and
             rows[0]["state"] == "READY" and rows[0]["pending"] == 0,
             "clients: alice's TP04 connection, its listener, idle time",
             repr(rows))
        T.ok({p["name"] for p in s["players"]} == {"alice", "bob"},
             "players: alice and bob", repr(s["players"]))
        T.ok(s["status"]["turn"] == 0 and s["status"]["ruleset"] and
             "waiting_for" in s["status"], "status", repr(s["status"]))
        T.ok({x["name"] for x in s["actions"]} == set(ACTIONS) and
             all(x["confirm"] for x in s["actions"] if x["name"] in
                 ("turn.now", "kick", "ban", "remove_player", "shutdown")),
             "actions: the list, the destructive ones with a confirmation")
        n, cl = ev.read(lambda n, d: n == "clients" and any(
            c["player"] == "bob" for c in d))
        T.ok(cl is not None, "the event stream lists the clients")

        # End of turn: the TP clients get the push, the turn advances.
        a.async_frames = []
        st, _, v = w.action("turn.now")
        T.ok(st == 200 and v["ok"] and v["value"] == 1,
             "turn.now: 200, the new turn", repr(v))
        got = tc.pushes(a, 1)
        T.ok(any(f.is_("TimeRemaining") for f in got),
             "alice gets the turn's TimeRemaining push", repr(got))
        T.is_(turn_of(w), 1, "the turn is 1")
        T.ok("turn 0 ended by web admin root (127.0.0.1:" in srv.log(),
             "the log names the admin and the address", srv.log_tail(10))
        n, d = ev.read(lambda n, d: n == "turn_end")
        T.ok(d is not None, "the event stream has turn_end")
        n, d = ev.read(lambda n, d: n == "log" and any(
            "ended by web admin root" in l["text"] for l in d))
        T.ok(d is not None, "the event stream carries the log line")
        n, d = ev.read(lambda n, d: n == "audit" and
                       d["action"] == "turn.now")
        T.ok(d is not None and d["admin"] == "root" and
             d["peer"].startswith("127.0.0.1:") and d["ok"],
             "the event stream carries the audit entry", repr(d))

        # Broadcast and message: on the boards.
        st, _, v = w.action("broadcast", "Server news", "Hello all")
        T.ok(st == 200 and v["value"] == 2, "broadcast to 2 players",
             repr(v))
        T.ok(("Server news", "Hello all") in tc.board_messages(b),
             "the broadcast is on bob's board")
        w.action("message", "alice", "Just you", "hi alice")
        T.ok(("Just you", "hi alice") in tc.board_messages(a),
             "the message is on alice's board")

        # Pause and resume, mode and length.
        T.is_(w.action("turn.pause")[2]["value"], "paused", "pause")
        T.is_(w.get("/api/game")[2]["paused"], True, "the game is paused")
        T.is_(w.action("turn.resume")[2]["value"], "resumed", "resume")
        T.is_(w.get("/api/game")[2]["paused"], False, "running again")
        w.action("turn.mode", "manual")
        w.action("turn.length", 1234)
        g = w.get("/api/game")[2]
        T.ok(g["turn_mode"] == "manual" and g["turn_length"] == 1234,
             "turn mode and length set", repr(g))
        st, _, v = w.action("turn.mode", "sometimes")
        T.ok(st == 422 and not v["ok"] and "turn mode" in v["error"],
             "a bad turn mode: 422 with the command's reason", repr(v))
        T.is_(w.action("turn.length", "soon")[0], 400,
              "a length that is not a number: 400")
        T.is_(w.action("no.such")[0], 400, "an unknown action: 400")
        T.is_(w.action("kick")[0], 400, "kick without a player: 400")
        T.is_(w.action("kick", "a", "b", "c")[0], 400,
              "too many arguments: 400")

        # Kick: disconnected. Ban: refused, unban: in again.
        st, _, v = w.action("kick", "bob", "testing")
        T.ok(st == 200 and v["value"] == 1, "kick bob: 1 connection",
             repr(v))
        tplib.expect_close(T, b, "bob's TP connection is closed")
        T.ok("kicked by web admin root" in srv.log(), "the kick is logged "
             "with the admin")
        st, _, v = w.action("ban", "bob")
        T.is_(st, 200, "ban bob")
        T.ok(not can_login(srv, "bob", "pw"), "banned bob cannot log in")
        w.action("unban", "bob")
        T.ok(can_login(srv, "bob", "pw"), "unbanned bob logs in")

        # Players: add, new password, remove.
        st, _, v = w.action("add_player", "carol", "c-pw", "c@example.org")
        T.ok(st == 200 and v["value"]["name"] == "carol",
             "add_player carol", repr(v))
        T.ok(can_login(srv, "carol", "c-pw"), "carol logs in over TP")
        T.is_(w.action("add_player", "carol", "x")[0], 422,
              "carol again: 422")
        w.action("reset_password", "carol", "new-pw")
        T.ok(not can_login(srv, "carol", "c-pw") and
             can_login(srv, "carol", "new-pw"),
             "reset_password: the new one works, the old one not")
        w.action("remove_player", "carol")
        T.ok(not can_login(srv, "carol", "new-pw"),
             "removed carol cannot log in")

        # Backup: in the background, its end as an event.
        dest = os.path.join(srv.tmp, "backup1")
        st, _, v = w.action("backup", dest)
        T.ok(st == 202 and v["job"]["state"] == "running",
             "backup: 202, a running job", repr(v))
        n, d = ev.read(lambda n, d: n == "job" and d["state"] != "running")
        T.ok(d is not None and d["state"] == "done" and
             "keys" in d["result"], "the job's end comes as an event",
             repr(d))
        T.ok(os.path.isdir(os.path.join(dest, "db")),
             "the backup is there")
        jobs = w.get("/api/admin/state")[2]["jobs"]
        T.ok(jobs and jobs[-1]["state"] == "done", "state.jobs: done")

        # Reloads.
        T.is_(w.action("reload")[0], 200, "reload the configuration")
        T.is_(w.action("reload_ruleset")[0], 200, "reload the ruleset")

        # The console pane.
        st, _, v = w.lua("x = 40; print('hello'); return x + 2")
        T.ok(st == 200 and v["ok"] and v["result"] == "42" and
             v["output"] == "hello\n", "console: output and result",
             repr(v))
        T.is_(w.lua("x")[2]["result"], "40",
              "console: the session keeps its variables")
        T.is_(w.lua("turn.number()")[2]["result"], "1",
              "console: the admin API in scope")
        v = w.lua("error('boom')")[2]
        T.ok(not v["ok"] and "boom" in v["error"], "console: an error",
             repr(v))
        v = w.lua("while true do end")[2]
        T.ok(not v["ok"] and "time slice" in v["error"] or
             "more than" in v["error"],
             "console: a loop is stopped by the time slice", repr(v))
        T.ok(w.get("/api/game")[0] == 200, "the server serves after it")
        T.ok("console: web admin root (127.0.0.1:" in srv.log() and
             "command: x = 40" in srv.log(),
             "console lines are logged with the admin")

        # The load history (a sample taken now, from the console).
        for _ in range(20):
            a.ping()
        w.lua("require('admin.web').take_sample()")
        h = w.get("/api/admin/state")[2]["history"]
        last = h["samples"][-1] if h["samples"] else {}
        T.ok(h["interval"] == 10 and last.get("tp_rate", 0) > 0 and
             last.get("tp_p50") is not None and
             last.get("connections", 0) >= 1,
             "history: a sample with TP requests, percentiles, "
             "connections", repr(last))
        T.ok(h["turns"] and h["turns"][-1]["turn"] == 0 and
             isinstance(h["turns"][-1]["ms"], (int, float)),
             "history: the turn processed and how long it took",
             repr(h["turns"]))

        # The log and the audit trail in the state.
        s = w.get("/api/admin/state")[2]
        T.ok(any("kicked by web admin root" in l["text"] for l in s["log"])
             and all({"id", "time", "level", "module", "text"} <= set(l)
                     for l in s["log"]),
             "state.log: the recent lines")
        acts = [e["action"] for e in s["audit"]]
        T.ok(all(x in acts for x in ("login", "turn.now", "kick", "ban",
                                     "broadcast", "console", "backup")),
             "the audit trail lists the actions", repr(acts))
        pw = [e for e in s["audit"] if e["action"] == "add_player"]
        T.ok(pw and "c-pw" not in json.dumps(s["audit"]) and
             '"***"' in pw[0]["detail"],
             "passwords are not in the audit trail", repr(pw))
        T.ok("c-pw" not in srv.log() and "new-pw" not in srv.log(),
             "nor in the log")
        ev.close()
        a.close()

        # The audit trail is stored: it survives a restart.
        data = srv.data_dir
        srv.stop(cleanup=False)
        srv = server(data_dir=data).start()
        w = Web(srv)
        w.login()
        acts = [e["action"] for e in w.get("/api/admin/state")[2]["audit"]]
        T.ok("kick" in acts and "backup" in acts,
             "after a restart the audit trail is still there", repr(acts))

        # An admin no longer listed loses the session at the reload.
        write_admins(srv, ["other"])
        st, _, v = w.action("reload")
        T.is_(st, 200, "reload with root gone from admins")
        T.is_(w.get("/api/admin/state")[0], 401,
              "root's session has ended")

        # Shutdown stops the server.
        w2 = Web(srv)
        write_admins(srv, ["root"])
        os.kill(srv.proc.pid, 1)       # SIGHUP: root is back
        time.sleep(1)
        T.is_(w2.login()[0], 200, "root again after SIGHUP")
        T.is_(w2.action("shutdown")[0], 200, "shutdown")
        try:
            srv.proc.wait(30 * tc.SLOW)
        except Exception:
            pass
        T.ok(srv.proc.poll() is not None, "the server has stopped")
    finally:
        srv.stop()


def test_https():
    port = tplib.free_port()
    srv = server((("root",)), None, "--set", "webs_port=%d" % port).start()
    try:
        h = http.client.HTTPSConnection("127.0.0.1", port, timeout=30,
                                        context=tplib.tls_context())
        h.request("POST", "/api/admin/login", body=json.dumps(
            {"name": "root", "password": PASSWORD}),
            headers={"Content-Type": "application/json",
                     "Origin": "https://127.0.0.1:%d" % port,
                     "Host": "127.0.0.1:%d" % port})
        r = h.getresponse()
        v = json.loads(r.read())
        cookie = r.getheader("Set-Cookie") or ""
        T.ok(r.status == 200 and "; Secure" in cookie and
             "HttpOnly" in cookie and "SameSite=Strict" in cookie,
             "over HTTPS the admin cookie is Secure", cookie)
        h.request("GET", "/api/admin/state", headers={
            "Cookie": cookie.split(";")[0]})
        r = h.getresponse()
        st = json.loads(r.read())
        T.ok(r.status == 200 and any(c["tls"] and c["kind"] == "webs"
                                     for c in st["clients"]),
             "the dashboard's own HTTPS connection is listed with TLS",
             repr(st["clients"]))
        h.close()
    finally:
        srv.stop()


if __name__ == "__main__":
    tplib.main(test_off_without_admins, test_refused_without_session,
               test_actions, test_https)
