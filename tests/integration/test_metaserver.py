#!/usr/bin/env python3
"""Metaserver registration (README "Being found"; lua/tp/metaserver.lua):
a real HTTP server in the test records the updates. Checks the keys and
values of tpserver-cpp's update request, the public host and port, the
re-send after a turn and after a player joins, the key kept across a
restart, the back-off after an HTTP 500, that a metaserver that accepts
the connection and never answers holds up no TP client and no stop, the
configuration checks, and `tpserver find --metaserver` reading a
metaserver's list (TP frames) with the server's codec."""

import http.server
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_protocol import Player, check_okay  # noqa: E402

T = tplib.Tap.current or tplib.Tap()


class Meta:
    """A metaserver on 127.0.0.1: records every request's path and query.
    status: the HTTP status of updates; games: the body of action=get."""

    def __init__(self, status=200, body=None, games=b""):
        self.requests = []
        self.status = status
        self.body = body if body is not None else tplib.encode_frame(
            3, 0, "Okay", {"result": "updated"})
        self.games = games
        self.cond = threading.Condition()
        meta = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
                q = {k: v[0] for k, v in q.items()}
                with meta.cond:
                    meta.requests.append((u.path, q, time.monotonic(),
                                          self.headers.get("User-Agent")))
                    meta.cond.notify_all()
                if q.get("action") == "get":
                    body, status = meta.games, 200
                else:
                    body, status = meta.body, meta.status
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/meta" % self.port
        threading.Thread(target=self.httpd.serve_forever,
                         daemon=True).start()

    def updates(self):
        with self.cond:
            return [r for r in self.requests if r[1].get("action") == "update"]

    def wait(self, n, timeout=15.0, where=None):
        """Waits for the n-th update (1-based), and optionally one whose
        query satisfies where; returns its query or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                ups = [r for r in self.requests
                       if r[1].get("action") == "update"]
                if len(ups) >= n:
                    for r in ups[n - 1:]:
                        if where is None or where(r[1]):
                            return r[1]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Silent:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d/" % self.port
        self.conns = []
        self.accepted = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            self.accepted.set()

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def config(tmp, **keys):
    path = os.path.join(tmp, "meta.lua")
    with open(path, "w") as f:
        for k, v in keys.items():
            if isinstance(v, list):
                f.write("%s = { %s }\n" % (k, ", ".join('"%s"' % x
                                                      for x in v)))
            elif isinstance(v, str):
                f.write('%s = "%s"\n' % (k, v))
            else:
                f.write("%s = %s\n" % (k, v))
    return path


def server(tmp, *extra, **keys):
    return tplib.Server("-c", config(tmp, **keys), *extra,
                        port_flags=["--tls-port"])


def test_update():
    meta = Meta()
    tmp = tplib.tempfile.mkdtemp(prefix="tpserver-meta-")
    srv = server(tmp, metaservers=[meta.url], game_name="mg",
                 game_longname="Meta Game", game_comment="fun & games",
                 admin_email="admin@example.org", turn_length=600)
    srv.start()
    try:
        q = meta.wait(1)
        T.ok(q is not None, "the first update arrives at start")
        if q is None:
            return
        path, _, _, agent = meta.updates()[0]
        T.is_(path, "/meta", "the update goes to the URL's path")
        T.ok(agent and agent.startswith("tpserver/"), "User-Agent "
             "tpserver/VERSION", repr(agent))
        want = {"action": "update", "sertype": "tpserver",
                "tp": "0.3,0.4", "rule": "MiniSec", "turn": "0",
                "plys": "0", "sn": "mg", "ln": "Meta Game",
                "cmt": "fun & games", "admin": "admin@example.org",
                "prd": "600", "type0": "tp", "port0": str(srv.port),
                "ip0": "127.0.0.1", "dns0": "", "type1": "tps",
                "port1": str(srv.ports["--tls-port"]), "ip1": "127.0.0.1"}
        bad = {k: (q.get(k), v) for k, v in want.items() if q.get(k) != v}
        T.ok(not bad, "the update's keys and values (tpserver-cpp's "
             "request)", repr(bad))
        T.ok(q.get("server", "") != "" and q.get("rulever", "") != "",
             "server and rulever are given", repr(q))
        T.ok(int(q.get("objs", "0")) > 0, "objs counts the universe",
             repr(q.get("objs")))
        now = time.time()
        T.ok(now + 500 < int(q.get("next", "0")) <= now + 601,
             "next is the end of the turn (Unix seconds)", repr(q.get("next")))
        key = q.get("key", "")
        T.ok(len(key) == 32 and all(c in "0123456789abcdef" for c in key),
             "key: 32 hex digits", repr(key))
        T.ok(len(q.get("reqid", "")) == 16, "reqid: a random id",
             repr(q.get("reqid")))
        T.ok("type2" not in q, "only TP listeners are listed (not the "
             "web side)", repr(sorted(q)))

        # A player joins: an update at once, with plys=1.
        t0 = time.monotonic()
        p = Player(srv)
        q2 = meta.wait(2, where=lambda x: x.get("plys") == "1")
        T.ok(q2 is not None and time.monotonic() - t0 < 10,
             "a player joining sends an update at once (plys=1)")
        # The turn ends (the only player finishes): an update with turn=1.
        n = len(meta.updates())
        check_okay(p.req("FinishedTurn"), "the player finishes the turn")
        q3 = meta.wait(n + 1, where=lambda x: x.get("turn") == "1")
        T.ok(q3 is not None, "the end of a turn sends an update (turn=1)")
        if q3:
            T.is_(q3.get("key"), key, "the key stays the same")
            T.ok(q3.get("reqid") != q.get("reqid"), "each update has its "
                 "own reqid")
        T.ok(any("registered with " + meta.url in line
                 for line in srv.log().splitlines()),
             "the log says the server registered", srv.log_tail(20))
        # A restart keeps the key (it is in the database).
        data = srv.data_dir
        srv.stop(cleanup=False)
        before = len(meta.updates())
        srv2 = tplib.Server("-c", config(tmp, metaservers=[meta.url]),
                            data_dir=data)
        srv2.start()
        try:
            q4 = meta.wait(before + 1)
            T.ok(q4 is not None and q4.get("key") == key,
                 "after a restart the same key is sent",
                 repr(q4 and q4.get("key")))
        finally:
            srv2.stop()
    finally:
        if srv.alive():
            srv.stop()
        srv.cleanup()
        meta.close()


def test_public_address():
    meta = Meta()
    tmp = tplib.tempfile.mkdtemp(prefix="tpserver-meta-")
    srv = server(tmp, metaservers=[meta.url],
                 metaserver_public_host="games.example.org",
                 metaserver_public_port=16923)
    srv.start()
    try:
        q = meta.wait(1)
        T.ok(q is not None and q.get("dns0") == "games.example.org" and
             q.get("ip0") == "" and q.get("port0") == "16923" and
             q.get("dns1") == "games.example.org" and
             q.get("port1") == str(srv.ports["--tls-port"]),
             "metaserver_public_host replaces the listeners' address, "
             "metaserver_public_port the tp listener's port", repr(q))
        T.ok("cannot reach" not in srv.log(), "no warning about a private "
             "address when the public host is set")
    finally:
        srv.stop()
        meta.close()


def test_private_address_warning():
    meta = Meta()
    tmp = tplib.tempfile.mkdtemp(prefix="tpserver-meta-")
    srv = server(tmp, metaservers=[meta.url])
    srv.start()
    try:
        meta.wait(1)
        T.ok("players elsewhere cannot reach" in srv.log() and
             "metaserver_public_host" in srv.log(),
             "listing 127.0.0.1 is warned about, naming the setting",
             srv.log_tail(20))
    finally:
        srv.stop()
        meta.close()


def test_backoff():
    meta = Meta(status=500, body=b"database down\n")
    tmp = tplib.tempfile.mkdtemp(prefix="tpserver-meta-")
    srv = server(tmp, metaservers=[meta.url])
    srv.start()
    try:
        T.ok(meta.wait(1) is not None, "500: the first update was sent")
        time.sleep(0.5)
        T.ok("HTTP 500: database down" in srv.log() and
             "next try in 600 s" in srv.log(),
             "the failure is logged with the reply, and the back-off",
             srv.log_tail(10))
        # A player and a turn would send at once; backing off, they wait.
        p = Player(srv)
        check_okay(p.req("FinishedTurn"), "a turn ends")
        time.sleep(7)
        T.is_(len(meta.updates()), 1, "backing off after an error: no "
              "update for the player or the turn within 7 s")
        T.ok(srv.alive(), "the server goes on")
        r = subprocess.run([tplib.tpserver_path(), "console", "--data",
                            srv.data_dir, "-e", "discovery()"],
                           capture_output=True, text=True, timeout=30)
        T.ok(r.returncode == 0 and meta.url in r.stdout and
             "HTTP 500" in r.stdout and "in 5" in r.stdout,
             "the console's discovery() shows the metaserver, its error "
             "and the next try", r.stdout + r.stderr)
    finally:
        srv.stop()
        meta.close()


def test_fail_frame():
    meta = Meta(body=tplib.encode_frame(3, 0, "Fail", {
        "code": 0, "result": "bad key"}))
    tmp = tplib.tempfile.mkdtemp(prefix="tpserver-meta-")
    srv = server(tmp, metaservers=[meta.url])
    srv.start()
    try:
        meta.wait(1)
        time.sleep(0.5)
        T.ok("refused: bad key" in srv.log(), "a TP Fail frame in the reply "
             "is an error, logged with its message", srv.log_tail(10))
    finally:
        srv.stop()
        meta.close()


def test_silent_metaserver():
    silent = Silent()
    tmp = tplib.tempfile.mkdtemp(prefix="tpserver-meta-")
    srv = server(tmp, metaservers=[silent.url])
    srv.start()
    try:
        T.ok(silent.accepted.wait(10), "the server connects to the silent "
             "metaserver")
        worst = 0.0
        p = Player(srv)
        for _ in range(20):
            t0 = time.monotonic()
            p.call("GetTimeRemaining")
            worst = max(worst, time.monotonic() - t0)
        T.ok(worst < 1.0, "TP requests are answered while the metaserver "
             "never answers (slowest %.3f s)" % worst)
        t0 = time.monotonic()
        rc = srv.stop(cleanup=False)
        T.ok(rc == 0 and time.monotonic() - t0 < 10,
             "the server stops at once and cleanly while the request hangs "
             "(exit %r, %.1f s)" % (rc, time.monotonic() - t0))
    finally:
        if srv.alive():
            srv.stop()
        srv.cleanup()
        silent.close()


def test_config_checks():
    exe = tplib.tpserver_path()
    tmp = tplib.tempfile.mkdtemp(prefix="tpserver-meta-")
    r = subprocess.run([exe, "--check-config", "-c", config(
        tmp, metaservers=["ftp://x/"])], capture_output=True, text=True,
        timeout=30)
    T.ok(r.returncode != 0 and "metaservers[1]" in r.stderr and
         "http://" in r.stderr, "a metaserver URL that is not http(s) is "
         "refused, naming the entry", r.stderr)
    r = subprocess.run([exe, "--check-config", "-c", config(
        tmp, metaserver_interval=60)], capture_output=True, text=True,
        timeout=30)
    T.ok(r.returncode != 0 and "metaserver_interval" in r.stderr,
         "metaserver_interval under 120 is refused", r.stderr)
    r = subprocess.run([exe, "--check-config", "--set",
                        "metaservers.1=http://meta.example.org/"],
                       capture_output=True, text=True, timeout=30)
    T.ok(r.returncode == 0 and 'metaservers = { "http://meta.example.org/" }'
         in r.stdout.replace("\n", " ").replace("  ", " ")
         or '"http://meta.example.org/"' in r.stdout,
         "--set metaservers.1=URL sets the list", r.stdout[-400:] + r.stderr)


def game_frame(version, name, longname, rule, turn, players, conns,
               ctime=True):
    params = [{"id": 8, "strval": name, "intval": 0},
              {"id": 7, "strval": longname, "intval": 0},
              {"id": 1, "strval": "", "intval": players},
              {"id": 9, "strval": "", "intval": turn}]
    fields = {"name": name, "key": "", "tp": ["0.3", "0.4"],
              "server": "1.0", "sertype": "tpserver-cpp", "rule": rule,
              "rulever": "0.1", "connections": conns, "parameters": params,
              "mediabase": "", "ctime": 1700000000}
    body = tplib.encode_body(4, tplib.type_of("Game"), fields)
    if not ctime:
        body = body[:-8]
    return tplib.header(version, 0, tplib.type_of("Game"), len(body)) + body


def test_find_metaserver():
    games = (tplib.encode_frame(4, 0, "Sequence", {"number": 2}) +
             game_frame(4, "alpha", "Alpha Centauri Cup", "RFTS", 12, 5,
                        [{"type": "tp", "dns": "alpha.example.org",
                          "ip": "", "port": 6923},
                         {"type": "tps", "dns": "alpha.example.org",
                          "ip": "", "port": 7000}]) +
             game_frame(4, "beta", "Beta League", "MiniSec", 3, 2,
                        [{"type": "tp", "dns": "", "ip": "192.0.2.7",
                          "port": 6000}], ctime=False))
    meta = Meta(games=games)
    try:
        r = subprocess.run([tplib.tpserver_path(), "find", "--no-local",
                            "--metaserver", meta.url, "--timeout", "5"],
                           capture_output=True, text=True, timeout=30)
        out = r.stdout
        T.is_(r.returncode, 0, "find: exit 0 when games are found")
        lines = out.splitlines()
        alpha = [x for x in lines if "Alpha Centauri Cup" in x]
        beta = [x for x in lines if "Beta League" in x]
        T.ok(lines and lines[0].split()[:2] == ["NAME", "RULESET"],
             "find prints a header line", out)
        T.ok(len(alpha) == 1 and "RFTS 0.1" in alpha[0] and
             " 12 " in alpha[0] and " 5 " in alpha[0] and
             "tp://alpha.example.org/" in alpha[0] and
             "tps://alpha.example.org:7000/" in alpha[0] and
             meta.url in alpha[0],
             "a TP04 Game frame: name, ruleset, turn, players, where, URLs",
             out + r.stderr)
        T.ok(len(beta) == 1 and "MiniSec" in beta[0] and
             "tp://192.0.2.7:6000/" in beta[0],
             "a Game frame without ctime (older servers) is read too",
             out + r.stderr)
        q = [x for x in meta.requests if x[1].get("action") == "get"]
        T.ok(len(q) == 1 and q[0][0] == "/meta", "find asks action=get on "
             "the metaserver's path", repr(meta.requests))
    finally:
        meta.close()
    meta = Meta(games=b"<html>not frames</html>")
    try:
        r = subprocess.run([tplib.tpserver_path(), "find", "--no-local",
                            "--metaserver", meta.url, "--timeout", "5"],
                           capture_output=True, text=True, timeout=30)
        T.ok(r.returncode == 1 and "not TP frames" in r.stderr and
             "no Thousand Parsec games found" in r.stdout,
             "a reply that is not TP frames: said, exit 1",
             r.stdout + r.stderr)
    finally:
        meta.close()
    r = subprocess.run([tplib.tpserver_path(), "find", "--bogus"],
                       capture_output=True, text=True, timeout=30)
    T.ok(r.returncode == 2 and "usage" in r.stderr, "find: a bad option "
         "gives the usage and exit 2", r.stderr)


tplib.main(test_update, test_public_address, test_private_address_warning,
           test_backoff, test_fail_frame, test_silent_metaserver,
           test_config_checks, test_find_metaserver)
