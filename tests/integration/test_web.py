#!/usr/bin/env python3
"""The web side over real sockets (docs/http.md): every endpoint of the
JSON API, as two players and as a visitor; that a player sees over HTTP
what they see over TP and never another player's data; the event stream;
spectators; and the HTTP errors and limits: bad method, unknown route,
huge headers and bodies, bad JSON, slow requests, pipelining, keep-alive,
cross-site requests, path traversal, the per-address connection cap."""

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
from test_console import console  # noqa: E402

T = tplib.Tap()
WEB = weblib.WEB


class Web(weblib.Web):
    """A player's client (X-TP-CSRF on POST and DELETE)."""

    def login(self, user, password):
        return self.login_post("/api/login", {"username": user,
                                              "password": password})


def raw(port, data, timeout=10.0, wait_close=True, shut=False):
    """Sends bytes on a fresh connection (then half-closes it, with shut);
    returns what came back until the server closed (or the timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        got += chunk
        if not wait_close and b"\r\n\r\n" in got:
            break
    s.close()
    return got


def player(srv, name, password="pw"):
    c = srv.client()
    c.connect()
    c.create_account(name, password)
    tplib.check_okay(T, [c.login(name, password)], "%s logs in over TP"
                     % name)
    return c


def tp_objects(c, ids):
    frames = c.request("GetObjectsByID", {"ids": ids})
    return {f["id"]: f for f in frames if f.name == "Object"}


def own(objects, pid, type_name=None):
    return [o for o in objects if o.get("owner") == pid and
            (type_name is None or o["type_name"] == type_name)]


def test_public_and_limits():
    srv = tplib.Server("--set", "http_request_timeout=1",
                       "--set", "http_keepalive_timeout=2",
                       "--set", "admin_email=admin@example.org",
                       "--set", "game_comment=a test game",
                       port_flags=[WEB, "--tls-port"]).start()
    try:
        port = srv.ports[WEB]
        w = Web(srv)
        st, hd, g = w.get("/api/game")
        T.is_(st, 200, "GET /api/game: 200")
        T.ok(hd.get("content-type") == "application/json" and
             hd.get("x-content-type-options") == "nosniff",
             "JSON with nosniff", repr(hd))
        T.ok(g["ruleset"]["name"] == "MiniSec" and g["turn"] == 0 and
             g["server"]["name"] == "tpserver" and g["objects"] >= 5 and
             g["players"] == 0 and g["admin"] == "admin@example.org" and
             g["comment"] == "a test game" and
             isinstance(g["seconds_left"], int),
             "the game: ruleset, turn, counts, admin, comment", repr(g))
        T.ok("tp://127.0.0.1:%d/" % srv.port in g["listeners"] and
             "tps://127.0.0.1:%d/" % srv.ports["--tls-port"] in
             g["listeners"] and g["web"] == "http://127.0.0.1:%d/" % port,
             "the TP listeners as URLs", repr(g["listeners"]))
        a = player(srv, "alice")
        b = player(srv, "bob")
        st, _, ps = w.get("/api/players")
        T.ok(st == 200 and [(p["id"], p["name"], p["finished"], p["alive"],
                             p["ai"]) for p in ps] ==
             [(1, "alice", False, True, False), (2, "bob", False, True,
                                                  False)] and
             all("score" in p for p in ps),
             "GET /api/players", repr(ps))
        a.request("FinishedTurn")
        st, _, ps = w.get("/api/players")
        T.ok(ps[0]["finished"] is True and ps[1]["finished"] is False,
             "a finished player shows so", repr(ps))
        st, _, t = w.get("/api/time")
        T.ok(st == 200 and t["turn"] == 0 and "seconds_left" in t,
             "GET /api/time", repr(t))
        st, _, h = w.get("/healthz")
        T.ok(st == 200 and h["status"] == "ok", "GET /healthz: 200 ok",
             repr(h))
        st, hd, m = w.get("/metrics")
        text = m.decode() if isinstance(m, bytes) else str(m)
        T.ok(st == 200 and hd["content-type"].startswith("text/plain") and
             "tpserver_http_requests_total{route=\"/api/game\",status=\"200\"}"
             in text and "tpserver_http_request_seconds_bucket" in text and
             "tpserver_connections" in text,
             "GET /metrics: Prometheus text with the server's figures and "
             "the HTTP counts", text[:600])
        # Errors.
        st, hd, v = w.call("PUT", "/api/game")
        T.ok(st == 405 and "GET" in hd.get("allow", ""),
             "a method the route does not take: 405 with Allow", repr(hd))
        st, _, v = w.get("/api/nothing")
        T.ok(st == 404 and "error" in v, "an unknown route: 404 with a "
             "JSON error", repr(v))
        st, _, v = w.get("/api/objects")
        T.is_(st, 401, "player data logged out: 401")
        st, _, v = w.post("/api/login", raw="{not json")
        T.ok(st == 400 and "JSON" in v["error"], "bad JSON: 400", repr(v))
        st, _, v = w.post("/api/login", {"username": "alice",
                                         "password": "wrong"})
        T.ok(st == 401 and "bad username or password" in v["error"],
             "a wrong password: 401 with the TP Login error", repr(v))
        st, _, v = w.get("/../../etc/passwd")
        T.is_(st, 404, "a path with .. : 404")
        st, _, v = w.get("/%2e%2e/%2e%2e/etc/passwd")
        T.is_(st, 404, "an escaped .. : 404")
        st, _, v = w.call("HEAD", "/api/game")
        T.ok(st == 200 and not v, "HEAD: the head, no body", repr(v))
        # Pipelined requests come back in order.
        reqs = b"".join(b"GET /api/time?n=%d HTTP/1.1\r\nHost: x\r\n\r\n"
                        % i for i in range(5)) + \
            b"GET /api/game HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        got = raw(port, reqs)
        parts = got.split(b"HTTP/1.1 200 OK")[1:]
        T.ok(len(parts) == 6 and all(b'"paused"' in p and b'"ruleset"'
                                     not in p for p in parts[:5]) and
             b'"ruleset"' in parts[5],
             "six pipelined requests: six answers, in order",
             got[:300])
        # Limits.
        got = raw(port, b"GET /api/game HTTP/1.1\r\nHost: x\r\nX-Big: " +
                  b"a" * 20000 + b"\r\n\r\n")
        T.ok(got.startswith(b"HTTP/1.1 431 "), "headers over 16 KiB: 431 "
             "and closed", got[:200])
        got = raw(port, b"POST /api/login HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 5000000\r\n\r\n")
        T.ok(got.startswith(b"HTTP/1.1 413 "), "a body over 1 MiB: 413 "
             "before it is read", got[:200])
        t0 = time.monotonic()
        got = raw(port, b"GET /api/game HTTP/1.1\r\nHost: x\r\n", timeout=8)
        T.ok(got.startswith(b"HTTP/1.1 408 ") and time.monotonic() - t0 < 5,
             "a request not finished in http_request_timeout: 408",
             got[:200])
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nExpect: "
                  b"100-continue\r\nContent-Length: 2\r\n\r\n")
        first = s.recv(4096)
        s.sendall(b"{}")
        rest = s.recv(4096)
        s.close()
        T.ok(first == b"HTTP/1.1 100 Continue\r\n\r\n" and
             rest.startswith(b"HTTP/1.1 400 "),
             "Expect: 100-continue is answered before the body",
             repr(first + rest)[:200])
        got = raw(port, b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
        T.ok(got.startswith(b"HTTP/1.1 400 "), "not HTTP: 400 and closed",
             got[:200])
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /api/time HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)
        t0 = time.monotonic()
        rest = s.recv(65536)
        T.ok(first.startswith(b"HTTP/1.1 200") and rest == b"" and
             1 < time.monotonic() - t0 < 6,
             "an idle keep-alive connection is closed after "
             "http_keepalive_timeout", repr(rest))
        s.close()
        # Cross-site and missing-token state changes.
        st, _, v = w.post("/api/login", {"username": "alice",
                                         "password": "pw"},
                          headers={"Origin": "http://evil.example"})
        T.ok(st == 403 and "cross-site" in v["error"],
             "a POST from another origin: 403", repr(v))
        st, _, v = w.login("alice", "pw")
        T.ok(st == 200 and v["player"] == {"id": 1, "name": "alice"},
             "POST /api/login: 200 with the player", repr(v))
        st, hd, v = w.post("/api/finished", headers={"X-TP-CSRF": "nope"})
        T.is_(st, 403, "a POST without the csrf token: 403")
        st, _, v = w.get("/api/session")
        T.ok(st == 200 and v["csrf"] == w.csrf, "GET /api/session",
             repr(v))
        st, hd, v = w.post("/api/logout")
        T.ok(st == 200 and "Max-Age=0" in hd.get("set-cookie", ""),
             "POST /api/logout clears the cookie", repr(hd))
        st, _, v = w.get("/api/session")
        T.is_(st, 401, "logged out: the session is gone")
        T.ok(srv.alive() and not srv.error_lines(), "no error lines",
             "\n".join(srv.error_lines()[:5]))
        w.close()
        a.close()
        b.close()
    finally:
        srv.stop()


def test_players_data():
    srv = tplib.Server(port_flags=[WEB]).start()
    try:
        a = player(srv, "alice")
        b = player(srv, "bob")
        wa, wb = Web(srv), Web(srv)
        st, hd, v = wa.login("alice", "pw")
        cookie = hd.get("set-cookie", "")
        T.ok(st == 200 and "HttpOnly" in cookie and
             "SameSite=Strict" in cookie and "Secure" not in cookie,
             "the session cookie: HttpOnly, SameSite=Strict (no Secure "
             "over plain HTTP)", cookie)
        wb.login("bob", "pw")
        st, _, objs = wa.get("/api/objects")
        T.is_(st, 200, "GET /api/objects: 200")
        objects = objs["objects"]
        mine = own(objects, 1)
        fleets = own(objects, 1, "Fleet")
        planets = own(objects, 1, "Planet")
        T.ok(len(planets) == 1 and len(fleets) >= 1 and
             all("pos" in o for o in mine),
             "alice sees her home planet and fleets, with positions",
             repr([(o["id"], o["type_name"]) for o in mine]))
        # The same as over TP.
        ids = tplib_ids(a)
        T.is_(sorted(o["id"] for o in objects), sorted(ids),
              "the objects are those GetObjectIDs lists over TP")
        tpo = tp_objects(a, [o["id"] for o in objects[:20]])
        same = all(tpo[o["id"]]["name"] == o["name"] and
                   tpo[o["id"]]["contains"] == o["contains"] and
                   tpo[o["id"]]["modtime"] == o["modtime"]
                   for o in objects[:20])
        T.ok(same, "names, children and modtimes as over TP")
        fleet = fleets[0]
        st, _, one = wa.get("/api/objects/%d" % fleet["id"])
        T.ok(st == 200 and one["id"] == fleet["id"] and
             one["queue"] == fleet["id"] and
             any(p["type"] == "position" for p in one["params"]),
             "GET /api/objects/ID with named parameters", repr(one)[:300])
        st, _, several = wa.get("/api/objects?ids=%d,%d" % (
            fleet["id"], planets[0]["id"]))
        T.ok(st == 200 and [o["id"] for o in several] ==
             [fleet["id"], planets[0]["id"]], "GET /api/objects?ids=",
             repr(several)[:200])
        st, _, since = wa.get("/api/objects?since=%d" %
                              max(o["modtime"] for o in objects))
        T.ok(st == 200 and since["objects"] == [],
             "?since= the newest modtime: nothing changed since",
             repr(since)[:200])
        st, _, ots = wa.get("/api/ordertypes")
        move = [o for o in ots if o["name"] == "Move"]
        T.ok(st == 200 and move and
             move[0]["parameters"][0]["type"] == "abs_coords",
             "GET /api/ordertypes: Move with its abs_coords parameter",
             repr(ots)[:300])
        move_id = move[0]["id"]
        st, _, q = wa.get("/api/objects/%d/orders" % fleet["id"])
        T.ok(st == 200 and q["orders"] == [] and move_id in q["allowed"],
             "the fleet's empty queue, Move allowed", repr(q))
        st, _, pr = wa.post("/api/objects/%d/orders/probe" % fleet["id"],
                            {"otype": move_id, "params": {}})
        T.ok(st == 200 and pr["name"] == "Move" and
             pr["params"][0]["value"] == {"x": 0, "y": 0, "z": 0},
             "probe: the order as it would be", repr(pr))
        target = planets[0]["pos"]
        st, _, o = wa.post("/api/objects/%d/orders" % fleet["id"],
                           {"otype": move_id, "params": {"pos": target}})
        T.ok(st == 201 and o["params"][0]["value"] == target and
             o["turns"] >= 0, "POST an order: 201 with the order", repr(o))
        frames = a.request("GetOrder", {"id": fleet["id"], "slots": [0]})
        orders = [f for f in frames if f.name == "Order"]
        T.ok(len(orders) == 1 and orders[0]["otype"] == move_id,
             "the order is there over TP too", repr(frames))
        st, _, v = wa.post("/api/objects/%d/orders" % fleet["id"],
                           {"otype": 999, "params": {}})
        T.ok(st == 404 and v["code"] == 4, "an unknown order type: 404 "
             "with TP's NoSuchThing", repr(v))
        st, _, v = wa.post("/api/objects/%d/orders" % fleet["id"],
                           {"otype": move_id, "params": {"nope": {}}})
        T.is_(st, 400, "an unknown parameter: 400")
        # Bob and alice's things.
        st, _, v = wb.get("/api/objects/%d/orders" % fleet["id"])
        T.ok(st == 403, "bob cannot read alice's order queue", repr(v))
        st, _, v = wb.post("/api/objects/%d/orders" % fleet["id"],
                           {"otype": move_id, "params": {}})
        T.ok(st == 403, "nor add to it", repr(v))
        st, _, v = wb.call("DELETE", "/api/objects/%d/orders/0"
                           % fleet["id"])
        T.ok(st == 403, "nor remove from it", repr(v))
        st, _, bobs = wb.get("/api/objects/%d" % fleet["id"])
        T.ok(st == 200 and bobs["queue"] == 0,
             "bob sees alice's fleet without its queue", repr(bobs)[:200])
        st, _, boards = wa.get("/api/boards")
        T.ok(st == 200 and len(boards) == 1, "alice's boards", repr(boards))
        board = boards[0]["id"]
        st, _, v = wb.get("/api/boards/%d/messages" % board)
        T.ok(st in (403, 404), "bob cannot read alice's board", repr(v))
        st, _, msgs = wa.get("/api/boards/%d/messages" % board)
        T.ok(st == 200 and len(msgs) >= 1 and "subject" in msgs[0],
             "alice reads her board", repr(msgs)[:200])
        st, _, m = wa.post("/api/boards/%d/messages" % board,
                           {"subject": "note", "body": "to self"})
        T.ok(st == 201 and m["subject"] == "note", "POST a message: 201",
             repr(m))
        st, _, v = wa.call("DELETE", "/api/boards/%d/messages/%d" %
                           (board, m["slot"]))
        T.ok(st == 200, "DELETE a message", repr(v))
        st, _, v = wa.call("DELETE", "/api/objects/%d/orders/0"
                           % fleet["id"])
        T.ok(st == 200, "DELETE an order", repr(v))
        st, _, q = wa.get("/api/objects/%d/orders" % fleet["id"])
        T.is_(q["orders"], [], "the queue is empty again")
        st, _, qs = wa.get("/api/queues")
        T.ok(st == 200 and sorted(q["queue"] for q in qs) ==
             sorted(o["queue"] for o in mine if o.get("queue")) and
             all(q["orders"] == [] for q in qs),
             "GET /api/queues: every queue of hers", repr(qs)[:300])
        st, _, pl = wa.get("/api/players/2")
        T.ok(st == 200 and pl["name"] == "bob", "GET /api/players/2",
             repr(pl))
        st, _, pl = wa.get("/api/players/99")
        T.is_(st, 404, "GET /api/players/99: 404")
        for path in ("/api/resources", "/api/categories", "/api/designs",
                     "/api/components", "/api/properties",
                     "/api/objecttypes"):
            st, _, v = wa.get(path)
            T.ok(st == 200 and isinstance(v, list) and len(v) > 0,
                 "GET %s" % path, repr(v)[:200])
        st, _, v = wa.post("/api/finished")
        T.ok(st == 200 and v["ok"], "POST /api/finished", repr(v))
        # Ids the player may not name.
        st, _, v = wa.get("/api/objects?ids=999999")
        T.ok(st == 200 and v == [{"error": "no such object 999999",
                                  "code": 4}] or st == 404,
             "an id that does not exist", repr(v))
        st, _, v = wa.get("/api/objects/999999")
        T.is_(st, 404, "GET /api/objects/999999: 404")
        rc, out, err = console(srv, 'return kick("alice")')
        st, _, v = wa.get("/api/session")
        T.ok(st == 401 and out.strip() == "2",
             "the console's kick ends alice's web session too (2 closed: "
             "her TP connection and her web session)", repr((out, v)))
        wb2 = Web(srv)
        wb2.login("bob", "pw")
        console(srv, 'ban("bob")')
        st, _, v = wb2.get("/api/objects")
        st2, _, v2 = Web(srv).login("bob", "pw")
        T.ok(st == 401 and st2 == 401, "ban ends bob's web session, and "
             "he cannot log in again", repr((v, v2)))
        console(srv, 'unban("bob")')
        # A login (answered later: the hash is made on the thread pool)
        # pipelined with a request after it, and the write side closed:
        # both answered, in order.
        body = b'{"username": "bob", "password": "pw"}'
        s = socket.create_connection(("127.0.0.1", srv.ports[WEB]),
                                     timeout=10)
        s.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: %d\r\n\r\n%s"
                  b"GET /api/time HTTP/1.1\r\nHost: x\r\n\r\n"
                  % (len(body), body))
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
        parts = got.split(b"HTTP/1.1 200 OK")[1:]
        T.ok(len(parts) == 2 and b'"csrf"' in parts[0] and
             b'"seconds_left"' in parts[1],
             "a login pipelined with another request, then EOF: both "
             "answered in order", got[:400])
        T.ok(srv.alive() and not srv.error_lines(), "no error lines",
             "\n".join(srv.error_lines()[:5]))
    finally:
        srv.stop()


def tplib_ids(c):
    frames = c.request("GetObjectIDs", {"key": -1, "start": 0,
                                        "amount": -1, "from": -1})
    return [e["id"] for e in frames[-1]["modtimes"]]


def read_events(sock, want, timeout=15):
    """Reads an event stream until every event name in want was seen."""
    got = b""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        names = [ln.split(b": ", 1)[1] for ln in got.split(b"\n")
                 if ln.startswith(b"event: ")]
        if all(w.encode() in names for w in want):
            break
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        got += chunk
    return got


def test_events_and_spectators():
    srv = tplib.Server("--set", "web_spectators=true",
                       port_flags=[WEB]).start()
    try:
        port = srv.ports[WEB]
        a = player(srv, "alice")
        w = Web(srv)
        w.login("alice", "pw")
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\nCookie: " +
                  w.cookie.encode() + b"\r\n\r\n")
        head = read_events(s, ["hello"])
        T.ok(head.startswith(b"HTTP/1.1 200") and
             b"text/event-stream" in head and b"event: hello" in head,
             "GET /api/events: a stream that starts with hello",
             head[:300])
        rc, out, err = console(srv, "turn.now()")
        got = read_events(s, ["turn_end", "turn_start"])
        T.ok(b"event: turn_end" in got and b"event: turn_start" in got and
             b'"turn":1' in got, "the end of a turn reaches the stream",
             got[-400:])
        ids = [int(ln.split(b": ")[1]) for ln in got.split(b"\n")
               if ln.startswith(b"id: ")]
        a.request("FinishedTurn")
        got2 = read_events(s, ["player_finished"])
        T.ok(b"event: player_finished" in got2 and b'"alice"' in got2,
             "a player finishing reaches the stream", got2[-300:])
        st, _, boards = w.get("/api/boards")
        w.post("/api/boards/%d/messages" % boards[0]["id"],
               {"subject": "ping", "body": "x"})
        got3 = read_events(s, ["message"])
        T.ok(b"event: message" in got3 and b'"ping"' in got3,
             "a new message on the player's board reaches their stream",
             got3[-300:])
        s.close()
        # Resuming with Last-Event-ID replays what was missed.
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\n"
                  b"Last-Event-ID: %d\r\n\r\n" % (min(ids) - 1))
        again = read_events(s, ["turn_end", "turn_start"], timeout=5)
        T.ok(b"event: turn_end" in again and b"event: turn_start" in again
             and b"event: message" not in again,
             "Last-Event-ID: the missed public events again (not the "
             "player's message, logged out)", again[-400:])
        s.close()
        # Spectators.
        v = Web(srv)
        st, _, u = v.get("/api/universe")
        T.ok(st == 200 and len(u["objects"]) > 10 and
             all(o.get("queue", 0) == 0 for o in u["objects"]),
             "a visitor watches the universe, without order queues",
             repr(u)[:200])
        st, _, hist = v.get("/api/history")
        now = v.get("/api/game")[2]["turn"]
        T.ok(st == 200 and hist == {"first": 0, "last": now} and now >= 1,
             "GET /api/history", repr(hist))
        st, _, u0 = v.get("/api/universe?turn=0")
        T.ok(st == 200 and u0["turn"] == 0 and len(u0["objects"]) > 10,
             "the universe at turn 0 from the history", repr(u0)[:200])
        st, _, u9 = v.get("/api/universe?turn=9")
        T.is_(st, 404, "a turn not in the history: 404")
        T.ok(srv.alive() and not srv.error_lines(), "no error lines",
             "\n".join(srv.error_lines()[:5]))
    finally:
        srv.stop()
    srv = tplib.Server(port_flags=[WEB]).start()
    try:
        st, _, v = Web(srv).get("/api/universe")
        T.ok(st == 403 and "spectating is off" in v["error"],
             "web_spectators off (the default): 403", repr(v))
    finally:
        srv.stop()


def test_accounts():
    srv = tplib.Server("--set", "max_players=2", port_flags=[WEB]).start()
    try:
        w = Web(srv)
        st, _, g = w.get("/api/game")
        T.ok(g["account_creation"] is True, "the game takes new accounts",
             repr(g)[:200])
        st, _, v = w.post("/api/accounts", {"username": "dora",
                                            "password": "pw"})
        T.ok(st == 201 and v["ok"], "POST /api/accounts: 201", repr(v))
        st, _, v = w.login("dora", "pw")
        T.is_(st, 200, "and the new account logs in")
        c = srv.client()
        c.connect()
        T.ok(c.login("dora", "pw").is_("Okay"), "over TP too")
        c.close()
        st, _, v = w.post("/api/accounts", {"username": "DORA",
                                            "password": "x"})
        T.ok(st == 409 and "dora" in v["error"].lower(),
             "a name taken (without regard to case): refused as over TP",
             repr(v))
        st, _, v = w.post("/api/accounts", {"username": "a\u200bb",
                                            "password": "x"})
        T.ok(st == 400 and "U+200B" in v["error"],
             "the name rules of TP apply", repr(v))
        st, _, v = w.post("/api/accounts", {"username": "erin",
                                            "password": "pw"})
        st, _, v = w.post("/api/accounts", {"username": "fay",
                                            "password": "pw"})
        T.ok(st == 403 and "full" in v["error"], "max_players: the game is "
             "full", repr(v))
        st, _, g = w.get("/api/game")
        T.ok(g["account_creation"] is False, "and /api/game says so",
             repr(g)[:200])
    finally:
        srv.stop()
    srv = tplib.Server("--set", "allow_account_creation=false",
                       port_flags=[WEB]).start()
    try:
        st, _, v = Web(srv).post("/api/accounts", {"username": "gil",
                                                   "password": "pw"})
        T.ok(st == 403 and "disabled" in v["error"],
             "allow_account_creation=false: 403", repr(v))
    finally:
        srv.stop()


def test_after_end():
    srv = tplib.Server("--set", "web_spectators=after_end",
                       port_flags=[WEB]).start()
    try:
        a, b = player(srv, "alice"), player(srv, "bob")
        w = Web(srv)
        st, _, g = w.get("/api/game")
        st2, _, v = w.get("/api/universe")
        T.ok(g["spectators"] is False and st2 == 403,
             "after_end: no spectating while two players are in the game",
             repr(v))
        rc, out, err = console(srv, "require('tp.accounts').player(2)"
                               ".alive = false")
        st, _, g = w.get("/api/game")
        st2, _, u = w.get("/api/universe")
        T.ok(g["spectators"] is True and st2 == 200 and
             len(u["objects"]) > 5, "after_end: once one player is left, "
             "visitors may watch", repr(g)[:200])
        a.close()
        b.close()
    finally:
        srv.stop()


def test_connection_cap():
    srv = tplib.Server("--set", "max_connections_per_address=3",
                       port_flags=[WEB]).start()
    try:
        port = srv.ports[WEB]
        time.sleep(0.5)        # the start-up probe of tplib is gone
        held = [socket.create_connection(("127.0.0.1", port))
                for _ in range(3)]
        time.sleep(0.3)
        got = raw(port, b"GET /api/game HTTP/1.1\r\nHost: x\r\n\r\n")
        T.ok(got.startswith(b"HTTP/1.1 503 "),
             "web connections count against max_connections_per_address: "
             "503", got[:200])
        for s in held:
            s.close()
    finally:
        srv.stop()


def test_https():
    port = tplib.free_port()
    srv = tplib.Server("--set", "webs_port=%d" % port).start()
    try:
        a = player(srv, "alice")
        ctx = tplib.tls_context()
        h = http.client.HTTPSConnection("127.0.0.1", port, timeout=15,
                                        context=ctx)
        h.request("GET", "/api/game")
        r = h.getresponse()
        g = json.loads(r.read())
        T.ok(r.status == 200 and g["ruleset"]["name"] == "MiniSec" and
             g["web"] == "https://127.0.0.1:%d/" % port,
             "webs: the API over HTTPS", repr(g)[:200])
        h.request("POST", "/api/login", body=json.dumps(
            {"username": "alice", "password": "pw"}),
            headers={"Content-Type": "application/json"})
        r = h.getresponse()
        r.read()
        cookie = r.getheader("Set-Cookie") or ""
        T.ok(r.status == 200 and "; Secure" in cookie and
             "HttpOnly" in cookie,
             "over HTTPS the session cookie is Secure", cookie)
        h.request("GET", "/api/objects", headers={
            "Cookie": cookie.split(";")[0]})
        r = h.getresponse()
        objs = json.loads(r.read())
        T.ok(r.status == 200 and own(objs["objects"], 1, "Planet"),
             "and the player's objects", repr(objs)[:200])
        h.close()
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port),
                                                     timeout=10),
                            server_hostname="localhost")
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        got = read_events(s, ["hello"])
        T.ok(b"event: hello" in got, "an event stream over HTTPS",
             got[:200])
        s.close()
        a.close()
        T.ok(srv.alive() and not srv.error_lines(), "no error lines",
             "\n".join(srv.error_lines()[:5]))
    finally:
        srv.stop()


def test_fog_views():
    """The fog ruleset shows a player the universe and their own objects:
    over HTTP, exactly what TP shows, and nothing of the other player."""
    from test_protocol import FOG, Player, home_ids
    srv = tplib.Server("--ruleset", FOG, "--set", "turn_length=0",
                       port_flags=[WEB]).start()
    try:
        a, b = Player(srv), Player(srv)
        a_planet, a_fleet = home_ids(a)
        b_planet, b_fleet = home_ids(b)
        wa = Web(srv)
        st, _, v = wa.login(a.name, "pw-" + a.name)
        T.is_(st, 200, "fog: alice logs in over HTTP")
        st, _, objs = wa.get("/api/objects")
        ids = sorted(o["id"] for o in objs["objects"])
        T.is_(ids, sorted(tplib_ids(a.c)), "fog: the objects over HTTP are "
              "those TP lists for her")
        T.ok(a_planet in ids and a_fleet in ids and b_planet not in ids and
             b_fleet not in ids, "fog: hers are there, bob's are not",
             repr(ids))
        for path in ("/api/objects/%d" % b_planet,
                     "/api/objects/%d" % b_fleet,
                     "/api/objects/%d/orders" % b_fleet):
            st, _, v = wa.get(path)
            T.ok(st == 404 and "no such object" in v["error"],
                 "fog: GET %s of bob's: 404, as if it did not exist" % path,
                 repr(v))
        st, _, v = wa.get("/api/objects?ids=%d,%d" % (a_fleet, b_fleet))
        T.ok(st == 200 and v[0]["id"] == a_fleet and "error" in v[1] and
             "name" not in v[1], "fog: ?ids= with one of bob's: his is an "
             "error item, nothing of it shown", repr(v)[:300])
        st, _, v = wa.post("/api/objects/%d/orders" % b_fleet,
                           {"otype": 1, "params": {}})
        T.is_(st, 404, "fog: an order for bob's fleet: 404")
        st, _, v = wa.post("/api/objects/%d/orders/probe" % b_fleet,
                           {"otype": 1, "params": {}})
        T.is_(st, 404, "fog: a probe on bob's fleet: 404")
        st, _, v = wa.call("DELETE", "/api/objects/%d/orders/0" % b_fleet)
        T.is_(st, 404, "fog: removing bob's order: 404")
        st, _, boards = wa.get("/api/boards")
        T.ok(st == 200 and all(bd["name"] != b.name for bd in boards),
             "fog: only her boards", repr(boards))
        st, _, bb = Web(srv).get("/api/universe")
        T.is_(st, 403, "fog: no spectating by default")
        st, _, v = wa.get("/api/objects?since=0")
        T.ok(st == 200 and all(o["id"] in ids for o in v["objects"]),
             "fog: changed-since shows nothing new of bob's", repr(v)[:200])
        T.ok(srv.alive() and not srv.error_lines(), "no error lines",
             "\n".join(srv.error_lines()[:5]))
    finally:
        srv.stop()


def test_garbage():
    """Random bytes and mangled requests on the web port: each gets an
    HTTP error or a closed connection; the server stays up and serves."""
    import random
    seed = int(os.environ.get("TP_SEED", "4242"))
    rnd = random.Random(seed)
    # A mangled request may be left unfinished: 408 after a second.
    srv = tplib.Server("--set", "http_request_timeout=1",
                       port_flags=[WEB]).start()
    try:
        port = srv.ports[WEB]
        good = (b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: "
                b"application/json\r\nContent-Length: 37\r\n\r\n"
                b'{"username":"a","password":"b"}     ')
        bad_answers = 0
        for i in range(150):
            if i % 3 == 0:
                data = bytes(rnd.randrange(256) for _ in
                             range(rnd.randrange(1, 400)))
            else:
                data = bytearray(good)
                for _ in range(rnd.randrange(1, 6)):
                    data[rnd.randrange(len(data))] = rnd.randrange(256)
                data = bytes(data)
            got = raw(port, data, timeout=3, shut=True)
            if got and not got.startswith(b"HTTP/1.1 "):
                bad_answers += 1
        T.ok(bad_answers == 0, "150 random and mangled requests (seed %d):"
             " every answer is HTTP" % seed, str(bad_answers))
        got = raw(port, b"GET /api/game HTTP/1.1\r\n" +
                  b"".join(b"X-%d: y\r\n" % i for i in range(150)) +
                  b"\r\n")
        T.ok(got.startswith(b"HTTP/1.1 431 "), "more than 100 headers: 431",
             got[:100])
        st, _, g = Web(srv).get("/api/game")
        T.ok(srv.alive() and st == 200, "still served afterwards")
        T.ok(not srv.error_lines(), "no error lines",
             "\n".join(srv.error_lines()[:5]))
    finally:
        srv.stop()


T.run(test_public_and_limits, test_https, test_fog_views, test_garbage,
      test_after_end, test_accounts, test_players_data, test_events_and_spectators,
      test_connection_cap)
T.done()
