#!/usr/bin/env python3
"""HTTP tunnelling (PROTOCOL.md 1.2) on http and https listeners: whole
sessions through a POST preamble, raw TP on the tunnel port, bytes after
the preamble kept, GET answered with a page, junk and oversized preambles
closed, and the features and Game frame that advertise the listeners."""

import os
import random
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from tplib import check_okay, expect_close  # noqa: E402

T = tplib.Tap()
HTTP, HTTPS, TLS = "--http-port", "--https-port", "--tls-port"
TUNNEL_OK = ("HTTP/1.0 200 OK\r\nCache-Control: no-store, no-cache, "
             "must-revalidate, post-check=0, pre-check=0\r\n"
             "Pragma: no-cache\r\n\r\n")


def tunnelled_session(t, c, label):
    head = c.http_tunnel("/" + "abcdefghijkl")
    t.is_(head, TUNNEL_OK, "%s: the POST gets exactly the tunnel's 200 "
          "response" % label)
    check_okay(t, [c.connect("http tunnel " + label)],
               "%s: Connect through the tunnel" % label)
    f = c.call("GetFeatures")
    t.ok(3 in f["features"], "%s: GetFeatures has HTTPHere (3)" % label,
         repr(f))
    name = tplib.unique_name("http")
    check_okay(t, [c.create_account(name, "pw")], "%s: CreateAccount" %
               label)
    check_okay(t, [c.login(name, "pw")], "%s: Login" % label)
    ids = c.request("GetObjectIDs", {"key": -1, "start": 0, "amount": -1,
                                     "from": -1})
    t.ok(ids and ids[0].fields is not None, "%s: GetObjectIDs answered (%s)"
         % (label, ids[0].name))
    tr = c.call("GetTimeRemaining")
    t.ok(tr.is_("TimeRemaining"), "%s: GetTimeRemaining" % label)
    check_okay(t, [c.ping()], "%s: Ping" % label)
    return f


def test_tunnel():
    with tplib.Server(port_flags=[HTTP, HTTPS, TLS]) as srv:
        with srv.client(port_flag=HTTP) as c:
            f = tunnelled_session(T, c, "http")
            T.ok(1 not in f["features"] and 2 in f["features"],
                 "http: SecureThere (2), not SecureHere", repr(f))
        with srv.client(port_flag=HTTPS, tls=True) as c:
            f = tunnelled_session(T, c, "https")
            T.ok(1 in f["features"] and 3 in f["features"],
                 "https: SecureHere (1) and HTTPHere (3)", repr(f))
        with srv.client() as c:
            f = c.call("GetFeatures")
            T.ok(2 in f["features"] and 4 in f["features"] and
                 1 not in f["features"] and 3 not in f["features"],
                 "plain tp: SecureThere (2) and HTTPThere (4)", repr(f))
            c.connect()
            g = c.request("GetGames")[-1]
            got = sorted((x["type"], x["port"]) for x in g["connections"])
            want = sorted([("tp", srv.port), ("tps", srv.ports[TLS]),
                           ("tp+http", srv.ports[HTTP]),
                           ("tp+https", srv.ports[HTTPS])])
            T.is_(got, want, "the Game frame lists tp, tps, tp+http and "
                  "tp+https with their ports")

        # Raw TP on both tunnel ports (what libtpproto-cpp sends to https).
        with srv.client(port_flag=HTTP) as c:
            check_okay(T, [c.connect()], "raw TP on the http port")
        with srv.client(port_flag=HTTPS, tls=True) as c:
            check_okay(T, [c.connect()], "raw TP over TLS on the https port")

        # The POST and the first frames in one write: nothing is lost.
        with srv.client(port_flag=HTTP) as c:
            _, f1 = c.frame("Connect", {"client": "eager"})
            _, f2 = c.frame("Ping")
            c.send_bytes(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: "
                         b"0\r\n\r\n" + f1 + f2)
            data = b""
            deadline = time.monotonic() + 10
            while data.count(b"TP\x04") < 2 and time.monotonic() < deadline:
                data += c.recv_available(0.2)
            T.ok(data.startswith(TUNNEL_OK.encode()) and
                 data.count(b"TP\x04") == 2,
                 "bytes after the preamble are kept: Connect and Ping "
                 "answered", repr(data[:200]))
        # The preamble one byte at a time.
        with srv.client(port_flag=HTTP) as c:
            for b in b"POST /slow HTTP/1.0\r\n\r\n":
                c.send_bytes(bytes([b]))
            head = c.recv_exact(len(TUNNEL_OK))
            T.is_(head.decode(), TUNNEL_OK, "a preamble sent byte by byte "
                  "is answered")
            check_okay(T, [c.connect()], "and the tunnel works")

        # GET: a page, then closed.
        with srv.client(port_flag=HTTP) as c:
            c.send_bytes(b"GET / HTTP/1.0\r\nHost: h\r\n\r\n")
            data = expect_close(T, c, "GET: the connection is closed")
            T.ok(data.startswith(b"HTTP/1.0 200 OK\r\n") and
                 b"Thousand Parsec" in data and b"Content-Length:" in data,
                 "GET: answered with a small HTML page", repr(data[:200]))
        # Neither TP nor HTTP.
        with srv.client(port_flag=HTTP) as c:
            c.send_bytes(b"HELO there\r\n")
            data = expect_close(T, c, "junk on the http port: closed")
            T.is_(data, b"You are not running the correct protocol\n",
                  "junk: the protocol message")
        # A preamble without an end.
        with srv.client(port_flag=HTTP) as c:
            c.send_bytes(b"POST / HTTP/1.0\r\n" + b"X-Pad: " +
                         b"a" * 9000 + b"\r\n")
            data = expect_close(T, c, "a preamble over 8 KiB without its "
                                "blank line: closed")
            T.is_(data, b"", "nothing is answered to it")
        T.ok("HTTP request header over 8192 bytes" in srv.log(),
             "the oversized preamble is logged")
        # A tunnel in TP03.
        with srv.client(version=3, port_flag=HTTP) as c:
            c.http_tunnel()
            check_okay(T, [c.connect()], "a TP03 client through the tunnel")
        with srv.client() as c:
            check_okay(T, [c.connect()], "plain TP still served at the end")
        T.ok(not srv.error_lines(), "no error lines in the log",
             "\n".join(srv.error_lines()[:5]))
        T.is_(srv.stop(), 0, "SIGTERM -> exit code 0")


def test_garbage():
    """Random bytes behind every prefix the tunnel listener looks at, on
    http and (inside TLS) https, and raw on the TLS port: each connection
    ends (closed, or still waiting for more), the server goes on."""
    rng = random.Random(int(os.environ.get("TP_SEED", "0")) or 4242)
    T.ok(True, "garbage seed %d" % (int(os.environ.get("TP_SEED", "0"))
                                    or 4242))
    prefixes = [b"", b"P", b"POST", b"POST /", b"GET ", b"GE", b"TP",
                b"TP\x04\x00", b"\x16\x03\x01", b"HTTP/1.0", b"\r\n\r\n"]
    with tplib.Server("--set", "login_timeout=2", "--set",
                      "tls_handshake_timeout=2",
                      port_flags=[HTTP, HTTPS, TLS]) as srv:
        socks = []
        for i in range(150):
            flag = (HTTP, HTTPS, TLS)[i % 3]
            data = rng.choice(prefixes) + bytes(
                rng.randrange(256) for _ in range(rng.randrange(0, 300)))
            if rng.random() < 0.3:
                data += b"\r\n\r\n" + bytes(
                    rng.randrange(256) for _ in range(rng.randrange(0, 64)))
            try:
                if flag == HTTPS:
                    c = srv.client(port_flag=flag, tls=True)
                    c.send_bytes(data)
                    socks.append(c.sock)
                else:
                    s = socket.create_connection(("127.0.0.1",
                                                  srv.ports[flag]))
                    s.sendall(data)
                    socks.append(s)
            except OSError:
                pass
        with srv.client() as c:
            check_okay(T, [c.connect()], "a client is served while 150 "
                       "connections send garbage")
        for s in socks:
            s.close()
        for flag, tls in ((HTTP, None), (HTTPS, True), (TLS, True)):
            with srv.client(port_flag=flag, tls=tls) as c:
                check_okay(T, [c.connect()], "%s still served afterwards" %
                           flag)
        T.ok(srv.alive() and not srv.error_lines(), "no crash, no error "
             "lines", "\n".join(srv.error_lines()[:5]))
        T.is_(srv.stop(), 0, "SIGTERM -> exit code 0")


def test_slow_preamble_times_out():
    with tplib.Server("--set", "login_timeout=1",
                      port_flags=[HTTP]) as srv:
        s = socket.create_connection(("127.0.0.1", srv.ports[HTTP]))
        s.sendall(b"POST / HTTP/1.0\r\nX-Slow: ")
        s.settimeout(10)
        t0 = time.monotonic()
        try:
            data = s.recv(100)
        except (socket.timeout, ConnectionResetError):
            data = None
        took = time.monotonic() - t0
        s.close()
        T.ok(data == b"" and took < 5, "a preamble that never ends is "
             "closed by the login timeout (%.1f s)" % took, repr(data))
        T.is_(srv.stop(), 0, "SIGTERM -> exit code 0")


if __name__ == "__main__":
    tplib.main(test_tunnel, test_garbage, test_slow_preamble_times_out)
