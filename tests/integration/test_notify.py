#!/usr/bin/env python3
"""Notifications (README "Notifications"; lua/tp/notify.lua,
lua/tp/mail.lua, core/spawn.c): web hooks received by an HTTP server in
the test for turn start and end, a player joining, the game's end and a
player eliminated (those two emitted from the console, as the turn
engine does), in each format (json, discord, slack); the retry after a
500; a hook that never answers holds up no TP client. E-mail through a
stand-in sendmail (sendmail_path) that records its argv and input: the
turn started mail and its headers, the reminder only to players who have
not finished (by notify.remind(), at a start that missed its time, once
a turn across restarts, and by its timer), no mail without opt-in, and
the settings set at CreateAccount over TP04, on the web API and on the
console."""

import email
import email.policy
import glob
import http.server
import json
import os
import signal
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_console import console  # noqa: E402
from test_protocol import TINY, Player  # noqa: E402
from weblib import WEB, Web  # noqa: E402

T = tplib.Tap.current or tplib.Tap()
WAIT = 30.0 * (3 if tplib.under_asan() else 1)


class Hooks:
    """Web hooks on 127.0.0.1: records each POST (path, JSON body).
    /flaky answers its first request with a 500; /hang never answers
    until released."""

    def __init__(self):
        self.posts = []
        self.cond = threading.Condition()
        self.release = threading.Event()
        self.hanging = threading.Event()
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with hooks.cond:
                    hooks.posts.append((self.path, json.loads(body),
                                        self.headers.get("Content-Type")))
                    hooks.cond.notify_all()
                    tries = len([p for p in hooks.posts
                                 if p[0] == self.path])
                if self.path == "/hang":
                    hooks.hanging.set()
                    hooks.release.wait(120)
                    return
                status = 500 if self.path == "/flaky" and tries == 1 \
                    else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever,
                         daemon=True).start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def at(self, path):
        with self.cond:
            return [p[1] for p in self.posts if p[0] == path]

    def wait(self, path, pred, timeout=WAIT):
        """Waits for a POST to path whose body satisfies pred; returns
        it or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for p in self.posts:
                    if p[0] == path and pred(p[1]):
                        return p[1]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def wait_n(self, path, n, timeout=WAIT):
        """Waits for n POSTs to path; returns the bodies so far."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.at_locked(path)) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return self.at_locked(path)

    def at_locked(self, path):
        return [p[1] for p in self.posts if p[0] == path]

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def write_config(tmp, text):
    path = os.path.join(tmp, "notify.lua")
    with open(path, "w") as f:
        f.write(text)
    return path


def run(srv, code, name):
    rc, out, err = console(srv, code)
    T.ok(rc == 0, name, "exit %r\nstdout: %s\nstderr: %s" % (rc, out, err))
    return out.strip()


def until(srv, code, pred, timeout=WAIT):
    """Runs a console chunk until its output satisfies pred (or the time
    is up); returns the last output."""
    deadline = time.monotonic() + timeout
    while True:
        rc, out, err = console(srv, code)
        out = out.strip()
        if (rc == 0 and pred(out)) or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


EVENTS = '{ "turn_start", "turn_end", "player_joined", "game_over", ' \
         '"player_eliminated" }'


def test_hooks():
    tmp = tempfile.mkdtemp(prefix="tpserver-notify-")
    hooks = Hooks()
    cfg = write_config(tmp, """
game_name = "hooked"
game_longname = "Hooked Game"
notify = {
    { url = "%s", events = %s },
    { url = "%s", events = %s, format = "discord" },
    { url = "%s", format = "slack" },
    { url = "%s", events = { "turn_end" } },
    { url = "%s", events = { "turn_end" } },
}
notify_retry_delay = 0.1
notify_timeout = 300
turn_length = 3600
""" % (hooks.url("/json"), EVENTS, hooks.url("/discord"), EVENTS,
       hooks.url("/slack"), hooks.url("/flaky"), hooks.url("/hang")))
    srv = tplib.Server("-c", cfg, "--ruleset", TINY).start()
    try:
        a = Player(srv)
        n = a.call("GetTimeRemaining")["turn"]
        for path, key in (("/json", None), ("/discord", "content"),
                          ("/slack", "text")):
            got = hooks.wait(path, lambda b: (b.get("event") ==
                             "player_joined" if key is None else
                             a.name in b.get(key, "")))
            T.ok(got is not None, "%s: the join of %s" % (path, a.name),
                 repr(hooks.at(path)))
        j = hooks.wait("/json", lambda b: b.get("event") == "player_joined")
        T.ok(j and j["player"] == {"id": a.id, "name": a.name} and
             j["game"] == "hooked" and j["text"] ==
             "%s joined Hooked Game." % a.name,
             "json: player_joined names the player and the game", repr(j))

        run(srv, "turn.now()", "the console ends turn %d" % n)
        end = hooks.wait("/json", lambda b: b.get("event") == "turn_end")
        start = hooks.wait("/json", lambda b: b.get("event") ==
                           "turn_start")
        T.ok(end and end["turn"] == n and end["text"] ==
             "Turn %d of Hooked Game has ended." % n,
             "json: turn_end of the turn", repr(end))
        start = start or {}
        T.ok(start.get("turn") == n + 1 and
             3500 <= start["seconds_left"] <= 3600 and
             start["ends_at"].endswith("Z") and
             start["text"].startswith("Turn %d of Hooked Game has started; "
                                      "it ends at " % (n + 1)) and
             ("(in 1 hour)" in start["text"] or
              "59 minutes" in start["text"]),
             "json: turn_start with the turn, the seconds left, the end "
             "time and a sentence", repr(start))
        head = "Turn %d of Hooked Game has started" % (n + 1)
        d = hooks.wait("/discord", lambda b: head in b["content"])
        s = hooks.wait("/slack", lambda b: head in b["text"])
        T.ok(d is not None and list(d) == ["content"] and
             d["content"].startswith(head),
             "discord: {content} with the sentence", repr(d))
        T.ok(s is not None and list(s) == ["text"] and
             s["text"].startswith(head),
             "slack: {text} with the sentence", repr(s))

        # The events of the game's end, as the turn engine emits them.
        run(srv, 'require("tp.events").emit("player_eliminated", '
            '{ player = %d, name = "%s" })' % (a.id, a.name),
            "player_eliminated emitted")
        run(srv, 'require("tp.events").emit("game_over", { turn = %d, '
            'reason = "the last empire standing", winners = { %d } })'
            % (n + 1, a.id), "game_over emitted")
        e = hooks.wait("/json", lambda b: b["event"] == "player_eliminated")
        T.ok(e and e["player"]["name"] == a.name and e["text"] ==
             "%s was eliminated from Hooked Game." % a.name,
             "json: player_eliminated", repr(e))
        g = hooks.wait("/json", lambda b: b["event"] == "game_over")
        T.ok(g and g["winners"] == [{"id": a.id, "name": a.name}] and
             g["reason"] == "the last empire standing" and g["text"] ==
             "Hooked Game is over after turn %d: won by %s (the last "
             "empire standing)." % (n + 1, a.name), "json: game_over with the "
             "winners' names and the reason", repr(g))
        sg = hooks.wait("/slack", lambda b: "is over" in b["text"])
        dg = hooks.wait("/discord", lambda b: "eliminated" in b["content"])
        T.ok(sg is not None and dg is not None, "slack and discord get "
             "the game's end and the elimination too",
             repr((hooks.at("/slack"), hooks.at("/discord"))))
        T.ok(not any(b.get("event") == "player_finished" or
                     "finished" in b.get("text", "")
                     for b in hooks.at("/slack")),
             "slack (default events) gets no player_finished")

        # 500, then the retry gets its 200.
        fl = hooks.wait_n("/flaky", 2)
        T.ok(len(fl) == 2 and fl[0] == fl[1] and
             fl[0]["event"] == "turn_end",
             "the 500 is tried again (the same body), once", repr(fl))
        # (The server reads the 200 after the hook has recorded the POST.)
        st = until(srv, 'local h = require("tp.notify").status().hooks '
                   'print(h[4].sent, h[4].failed, h[4].queued)',
                   lambda out: out.split() == ["1", "0", "0"])
        T.ok(st.split() == ["1", "0", "0"], "the flaky hook: 1 sent, "
             "nothing failed or queued", st)

        # The hook that never answers holds up nobody.
        T.ok(hooks.hanging.wait(WAIT), "the hanging hook got its request")
        t0 = time.monotonic()
        for _ in range(5):
            tplib.check_okay(T, a.req("Ping"), "Ping while the hook hangs")
            a.call("GetTimeRemaining")
        took = time.monotonic() - t0
        pending = run(srv, 'print(require("tp.notify").status().hooks[5]'
                      '.inflight)', "the hanging hook's state")
        T.ok(pending == "true" and not hooks.release.is_set() and
             took < 10, "5 Pings and GetTimeRemainings answered while the "
             "hook's request is still pending", "%s %.2f s" %
             (pending, took))
        out = until(srv, 'print(notify.status().hooks[1].sent >= 5)',
                    lambda o: o == "true")
        T.ok(out == "true", "notify.status counts the json hook's "
             "deliveries", out)
        a.close()
    finally:
        hooks.close()
        T.ok(srv.stop() == 0, "hooks: a clean stop with a request pending")


def test_queue_and_reload():
    """A hook that never answers keeps at most notify_queue events (the
    oldest waiting ones go, logged); a SIGHUP with a new notify list
    replaces the hooks."""
    hooks = Hooks()
    tmp = tempfile.mkdtemp(prefix="tpserver-notify-")
    text = """
notify = { { url = "%s", events = { "turn_start", "turn_end" } } }
notify_queue = 2
notify_timeout = 300
"""
    cfg = write_config(tmp, text % hooks.url("/hang"))
    srv = tplib.Server("-c", cfg, "--ruleset", TINY).start()
    try:
        for _ in range(3):
            run(srv, "turn.now()", "a turn ends")
        out = run(srv, 'local h = notify.status().hooks[1] print(h.queued, '
                  'h.failed, h.inflight)', "the hanging hook's queue")
        T.ok(out.split() == ["2", "4", "true"], "6 events, 1 in flight: 2 "
             "wait (notify_queue), 4 dropped", out)
        T.ok("queue full (2)" in srv.log(), "the drops are logged",
             srv.log_tail(5))
        with open(cfg, "w") as f:
            f.write(text % hooks.url("/json"))
        srv.signal(signal.SIGHUP)
        out = until(srv, 'print(notify.status().hooks[1].url)',
                    lambda o: o.endswith("/json"))
        T.ok(out == hooks.url("/json"), "SIGHUP: the new hook replaces "
             "the old", out)
        run(srv, "turn.now()", "a turn ends after the reload")
        T.ok(hooks.wait("/json", lambda b: b["event"] == "turn_start")
             is not None, "the new hook gets the next events")
    finally:
        hooks.close()
        T.ok(srv.stop() == 0, "queue: a clean stop")


SENDMAIL = """#!/bin/sh
f=$(mktemp "%s/mail.XXXXXX")
printf '%%s\\n' "$@" > "$f.argv"
cat > "$f.tmp" && mv "$f.tmp" "$f.eml"
"""


class Mails:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "mails")
        os.makedirs(self.dir)
        self.script = os.path.join(tmp, "sendmail")
        with open(self.script, "w") as f:
            f.write(SENDMAIL % self.dir)
        os.chmod(self.script, 0o755)

    def all(self):
        out = []
        for p in sorted(glob.glob(os.path.join(self.dir, "*.eml"))):
            with open(p, "rb") as f:
                raw = f.read()
            with open(p[:-4] + ".argv") as f:
                argv = f.read().split()
            out.append((email.message_from_bytes(
                raw, policy=email.policy.default), raw, argv))
        return out

    def subject(self, m):
        return str(m["Subject"])

    def wait(self, pred, n, timeout=WAIT):
        """Waits for n mails satisfying pred; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            got = [x for x in self.all() if pred(x[0])]
            if len(got) >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


def to(m):
    return str(m["To"]).strip("<>")


def test_mail():
    tmp = tempfile.mkdtemp(prefix="tpserver-notify-")
    mails = Mails(tmp)
    base = """
game_name = "mailed"
game_longname = "Mailed Game\\r\\nBcc: evil@example.net"
sendmail_path = "%s"
mail_from = "game@example.org"
notify_email_default = true
turn_length = 3600
turn_mode = "fixed"
""" % mails.script
    cfg = write_config(tmp, base + "notify_reminder = 0\n")
    srv = tplib.Server("-c", cfg, "--ruleset", TINY,
                       port_flags=[WEB]).start()
    # A: an address at CreateAccount (TP04), mails on by
    # notify_email_default; B likewise; C: none, set on the web; D: set on
    # the console with the mails off; E: nothing.
    names = {k: tplib.unique_name(k) for k in "abcde"}
    players = {}
    for k in "ab":
        c = srv.client(4)
        c.connect()
        f = c.create_account(names[k], "pw", email="%s@example.org" % k)
        tplib.check_okay(T, [f], "CreateAccount of %s with an e-mail "
                         "address" % k)
        tplib.check_okay(T, [c.login(names[k], "pw")], "login of " + k)
        players[k] = c
    for k in "cde":
        players[k] = Player(srv, name=names[k])
    out = run(srv, 'local a = notify.email("%s") print(a.email, '
              'a.notify_email)' % names["a"], "notify.email reads")
    T.ok(out.split() == ["a@example.org", "true"], "CreateAccount stored "
         "the address and turned the mails on (notify_email_default)", out)

    w = Web(srv)
    st, _, body = w.call("GET", "/api/account")
    T.ok(st == 401, "GET /api/account needs a login", repr((st, body)))
    st, _, body = w.login_post("/api/login", {"username": names["c"],
                                              "password": "pw-" +
                                              names["c"]})
    T.ok(st == 200, "web login of c", repr(body))
    st, _, body = w.call("GET", "/api/account")
    T.ok(st == 200 and body == {"name": names["c"], "email": "",
                                "notify_email": False},
         "GET /api/account: no address, no mails", repr(body))
    st, _, body = w.call("POST", "/api/account",
                         {"email": "c@example.org\r\nBcc: evil@example.net",
                          "notify_email": True})
    T.ok(st == 400 and "e-mail address" in body["error"],
         "an address with CR LF is refused (400)", repr((st, body)))
    st, _, body = w.call("POST", "/api/account", {"notify_email": True})
    T.ok(st == 400 and "valid e-mail address" in body["error"],
         "mails without an address are refused", repr((st, body)))
    st, _, body = w.call("POST", "/api/account", {"email": "c@example.org",
                                                   "notify_email": True},
                         csrf=False)
    T.ok(st == 403, "POST /api/account without the csrf header: 403",
         repr((st, body)))
    st, _, body = w.call("POST", "/api/account", {"email": "c@example.org",
                                                   "notify_email": True})
    T.ok(st == 200 and body == {"name": names["c"],
                                "email": "c@example.org",
                                "notify_email": True},
         "POST /api/account sets the address and the mails", repr(body))
    rc, _, err = console(srv, 'notify.email("%s", "not an address", true)'
                         % names["d"])
    T.ok(rc == 1 and "not an e-mail address" in err,
         "notify.email refuses a bad address", err)
    out = run(srv, 'local a = notify.email("%s", "d@example.org", false) '
              'print(a.email, a.notify_email)' % names["d"],
              "notify.email sets d's address, mails off")
    T.ok(out.split() == ["d@example.org", "false"], "the console sets the "
         "address and the opt-in", out)
    for c in players.values():
        c.close()
    srv.stop(cleanup=False)
    srv.start()      # the settings were stored
    out = run(srv, 'local c = notify.email("%s") local d = notify.email('
              '"%s") print(c.email, c.notify_email, d.email, '
              'd.notify_email)' % (names["c"], names["d"]),
              "the settings after a restart")
    T.ok(out.split() == ["c@example.org", "true", "d@example.org",
                         "false"],
         "the web's and the console's settings survived a restart", out)

    # The next turn starts: a mail to a, b and c; none to d (off) or e.
    n = int(run(srv, "print(turn.number())", "the turn's number"))
    t2, t3 = "Turn %d" % (n + 1), "Turn %d" % (n + 2)
    run(srv, "turn.now()", "a new turn begins")
    got = mails.wait(lambda m: (t2 + " has started") in str(m["Subject"]), 3)
    T.ok(sorted(to(m) for m, _, _ in got) ==
         ["a@example.org", "b@example.org", "c@example.org"],
         "the turn's start is mailed to a, b and c only",
         repr([to(m) for m, _, _ in got]))
    m, raw, argv = [x for x in got if to(x[0]) == "a@example.org"][0]
    T.ok(argv == ["-t", "-i"], "sendmail -t -i", repr(argv))
    T.ok(str(m["Subject"]) == "[mailed] %s has started" % t2,
         "Subject", str(m["Subject"]))
    T.ok(m["From"].addresses[0].addr_spec == "game@example.org",
         "From: mail_from", str(m["From"]))
    T.ok(b"\r\nBcc:" not in raw and m["Bcc"] is None and
         raw.count(b"\nFrom:") + raw.startswith(b"From:") == 1,
         "the CR LF in game_longname starts no header", repr(raw[:400]))
    T.ok(m["Date"] is not None and m["Date"].datetime is not None,
         "a Date header", str(m["Date"]))
    T.ok(str(m["Message-ID"]).startswith("<") and
         str(m["Message-ID"]).endswith("@example.org>"), "Message-ID",
         str(m["Message-ID"]))
    T.ok(m.get_content_type() == "text/plain" and
         m.get_content_charset() == "utf-8", "text/plain; charset=UTF-8",
         str(m["Content-Type"]))
    text = m.get_content()
    T.ok(("Hello %s," % names["a"]) in text and (t2 + " of Mailed Game") in
         text and "it ends at" in text and
         ("(in 1 hour)" in text or "59 minutes" in text),
         "the body: the player, the turn, its end", text)

    # b finishes; the reminder (asked on the console) goes to a and c.
    b = srv.client(4)
    b.connect()
    tplib.check_okay(T, [b.login(names["b"], "pw")], "b logs in again")
    tplib.check_okay(T, b.request("FinishedTurn"), "b finishes the turn")
    b.close()
    out = run(srv, "print(notify.remind())", "notify.remind()")
    T.ok(out == "2", "notify.remind() mails 2 players", out)
    got = mails.wait(lambda m: (t2 + " ends in") in str(m["Subject"]), 2)
    T.ok(sorted(to(m) for m, _, _ in got) ==
         ["a@example.org", "c@example.org"],
         "the reminder goes to a and c, who have not finished (not b, "
         "who has; not d, e)", repr([to(m) for m, _, _ in got]))
    srv.stop(cleanup=False)

    # A start after the reminder's time: it goes at once, once a turn.
    with open(cfg, "w") as f:
        f.write(base + "notify_reminder = 3599\n")
    srv.start()
    got = mails.wait(lambda m: (t2 + " ends in") in str(m["Subject"]), 4)
    T.ok(sorted(to(m) for m, _, _ in got) ==
         ["a@example.org", "a@example.org", "c@example.org",
          "c@example.org"],
         "a start past the reminder's time mails it to a and c",
         repr([to(m) for m, _, _ in got]))
    srv.stop(cleanup=False)
    srv.start()
    out = run(srv, 'local s = notify.status() print(s.reminded_turn, '
              's.mail.sent + s.mail.queued, s.mail.running)',
              "notify.status after another restart")
    T.ok(out.split() == [str(n + 1), "0", "false"], "the turn's reminder "
         "is not sent again after a restart", out)

    # The reminder's timer: turn 3 lasts 3600 s, the reminder 3598 s
    # before its end.
    run(srv, 'setting("notify_reminder", 3598) turn.now()',
        "a turn with the reminder 2 s after its start")
    got = mails.wait(lambda m: (t3 + " ends in") in str(m["Subject"]), 3)
    T.ok(sorted(to(m) for m, _, _ in got) ==
         ["a@example.org", "b@example.org", "c@example.org"],
         "the reminder's timer mails a, b and c (nobody finished the turn)",
         repr([to(m) for m, _, _ in got]))
    run(srv, 'require("tp.events").emit("game_over", { reason = "time", '
        'winners = { accounts.find("%s").id } })' % names["b"],
        "game_over emitted")
    got = mails.wait(lambda m: "The game is over" in str(m["Subject"]), 3)
    T.ok(sorted(to(m) for m, _, _ in got) ==
         ["a@example.org", "b@example.org", "c@example.org"] and
         all(("won by %s" % names["b"]) in m.get_content()
             for m, _, _ in got),
         "the game's end is mailed to a, b and c, with the winner",
         repr([(to(m), m.get_content()) for m, _, _ in got]))
    T.ok(not [x for x in mails.all() if to(x[0]) in
              ("d@example.org",) or names["e"] in to(x[0])],
         "d (mails off) and e (no address) got nothing")
    T.ok(not srv.error_lines(), "no errors logged",
         "\n".join(srv.error_lines()))
    T.ok(srv.stop() == 0, "mail: a clean stop")


def test_mail_failure():
    """A sendmail that fails is logged; the server goes on."""
    tmp = tempfile.mkdtemp(prefix="tpserver-notify-")
    script = os.path.join(tmp, "badmail")
    with open(script, "w") as f:
        f.write("#!/bin/sh\ncat >/dev/null\necho 'no route to the relay' "
                ">&2\nexit 75\n")
    os.chmod(script, 0o755)
    srv = tplib.Server("--ruleset", TINY, "--set", "sendmail_path=" + script,
                       "--set", "notify_email_default=true").start()
    try:
        c = srv.client(4)
        c.connect()
        tplib.check_okay(T, [c.create_account("failmail", "pw",
                                        email="f@example.org")],
                   "an account with mail on")
        run(srv, "turn.now()", "a turn starts")
        deadline = time.monotonic() + WAIT
        while "not sent" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        T.ok("exit status 75: no route to the relay" in srv.log(),
             "the failed sendmail is logged with its status and stderr",
             srv.log_tail(10))
        tplib.check_okay(T, [c.ping()], "the server still answers")
        c.close()
    finally:
        T.ok(srv.stop() == 0, "a clean stop after a failed mail")


def test_engine_events():
    """player_eliminated and game_over as the turn engine emits them: a
    MiniSec game whose second player lost everything (the console took
    it), ended by the next turn (end_at_victory)."""
    tmp = tempfile.mkdtemp(prefix="tpserver-notify-")
    hooks = Hooks()
    cfg = write_config(tmp, """
game_name = "ending"
notify = { { url = "%s", events = { "player_eliminated", "game_over" } } }
turn_length = 3600
ruleset_settings = { random_seed = 3 }
""" % hooks.url("/end"))
    srv = tplib.Server("-c", cfg).start()
    try:
        a, b = Player(srv, name="winner"), Player(srv, name="loser")
        run(srv, "local ids = {} for id, ob in pairs(model.objects) do "
                 "if ob.owner == %d then ids[#ids + 1] = id end end "
                 "for _, id in ipairs(ids) do nuke(id) end" % b.id,
            "the console takes everything loser owns")
        run(srv, "turn.now()", "the next turn")
        gone = hooks.wait("/end", lambda j: j.get("event") ==
                          "player_eliminated")
        T.ok(gone and gone["player"] == {"id": b.id, "name": "loser"},
             "player_eliminated from the turn engine names the loser",
             repr(hooks.at("/end")))
        over = hooks.wait("/end", lambda j: j.get("event") == "game_over")
        T.ok(over and over["winners"] == [{"id": a.id, "name": "winner"}]
             and "winner" in over.get("reason", ""),
             "game_over from the turn engine names the winner and why",
             repr(over))
        T.ok(over and "winner" in over.get("text", ""),
             "with a sentence saying so", repr(over))
    finally:
        srv.stop()
        hooks.close()


tplib.main(test_hooks, test_queue_and_reload, test_mail, test_mail_failure,
           test_engine_events)
