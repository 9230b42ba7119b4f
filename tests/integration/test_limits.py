#!/usr/bin/env python3
"""Limits that keep the server up under hostile clients: the connection
limit ("server full"), the login timeout, the request rate limit, hostile
clients that fill every slot, and 1000 concurrent connections (plain and
TLS mixed) all served."""

import asyncio
import os
import resource
import socket
import ssl
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from tplib import check_okay, check_fail  # noqa: E402

T = tplib.Tap()
TLS = "--tls-port"
SLOW = 3 if tplib.under_asan() else 1


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def closed_within(sock, timeout):
    """True when the peer closes sock (EOF or reset) within timeout."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except (socket.timeout, ssl.SSLError, OSError):
        return False


def wait_for(cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def probe_gone(srv):
    """Waits until the server has seen tplib's start-up probe (its first
    connection) go, so that it no longer counts against the limit."""
    wait_for(lambda: any("conn=1 " in x and "closed reason" in x
                         for x in srv.log().splitlines()), 10)


def test_connection_limit():
    with tplib.Server("--set", "max_connections=20",
                      port_flags=[TLS]) as srv:
        probe_gone(srv)
        hogs = []
        for i in range(20):
            c = srv.client(port_flag=TLS if i % 2 else None,
                           tls=bool(i % 2))
            c.connect()
            hogs.append(c)
        extra = srv.client()
        seq = extra.send("Connect", {"client": "one too many"})
        f = extra.recv_frame()
        T.ok(f.is_("Fail") and f.seq == seq and f["code"] == 3 and
             "server full" in f["result"],
             "the 21st connection gets Fail (3) \"server full\" with its "
             "sequence number", repr(f))
        data, closed = extra.read_until_close(10)
        T.ok(closed, "and is closed")
        extra.close()
        extra = srv.client(version=3, port_flag=TLS, tls=True)
        seq = extra.send("Connect", {"client": "tls, one too many"})
        f = extra.recv_frame()
        T.ok(f.is_("Fail") and f.version == 3 and f.seq == seq and
             "server full" in f["result"],
             "over TLS in TP03 too", repr(f))
        extra.close()
        T.ok("connection limit (20) reached" in srv.log(),
             "the limit is logged when it acts", srv.log_tail(5))

        # A flood far beyond the limit: all refused, nothing grows.
        rss0 = srv.rss_kb()
        flood = []
        for _ in range(300):
            try:
                flood.append(socket.create_connection(("127.0.0.1",
                                                       srv.port), timeout=5))
            except OSError:
                pass
        for s in flood:
            s.sendall(tplib.header(4, 9, 3, 0))
        refused = sum(1 for s in flood if closed_within(s, 10))
        for s in flood:
            s.close()
        T.is_(refused, len(flood), "a flood of %d more connections: every "
              "one is closed" % len(flood))
        rss1 = srv.rss_kb()
        T.ok(rss1 is not None and rss1 - rss0 < 64 * 1024,
             "the server did not grow (%s -> %s KiB)" % (rss0, rss1))
        for i, c in enumerate(hogs[:3]):
            check_okay(T, [c.ping()], "connection %d inside the limit is "
                       "still served" % i)
        # Room again once some leave.
        for c in hogs[:5]:
            c.close()
        ok = wait_for(lambda: "closed reason=\"peer closed\"" in srv.log(),
                      5)
        time.sleep(0.3)
        fresh = [srv.client() for _ in range(5)]
        results = [c.connect() for c in fresh]
        check_okay(T, [r for r in results if not r.is_("Okay")] or
                   results[:1], "after 5 leave, 5 new clients are served")
        for c in fresh + hogs[5:]:
            c.close()
        stats = [x for x in srv.log().splitlines()
                 if "connection limit" in x]
        T.ok(len(stats) < 40, "refusals are logged at most once a second "
             "(%d lines for %d refusals)" % (len(stats), refused + 2))
        T.ok(not srv.error_lines(), "no error lines in the log",
             "\n".join(srv.error_lines()[:5]))
        T.is_(srv.stop(cleanup=False), 0, "SIGTERM -> exit code 0")
        line = [x for x in srv.log().splitlines() if "listener tp " in x]
        refused_n = int(line[-1].split("refused=")[1].split()[0]) \
            if line else 0
        T.ok(refused_n >= 300, "the tp listener's statistics count the "
             "refused connections (refused=%d)" % refused_n,
             "\n".join(line))
        srv.cleanup()


def test_login_timeout():
    with tplib.Server("--set", "login_timeout=1") as srv:
        idle = srv.client()
        connected = srv.client()
        connected.connect()
        player = srv.client()
        name = tplib.unique_name("lt")
        player.connect()
        player.create_account(name, "pw")
        check_okay(T, [player.login(name, "pw")], "a client logs in")
        t0 = time.monotonic()
        _, c1 = idle.read_until_close(10)
        _, c2 = connected.read_until_close(10)
        took = time.monotonic() - t0
        T.ok(c1 and c2 and took < 6,
             "a silent client and one that never logs in are closed by "
             "the 1 s login timeout (%.1f s)" % took)
        T.ok("did not log in within 1 s" in srv.log(),
             "the login timeout is logged", srv.log_tail(5))
        time.sleep(1.0)
        check_okay(T, [player.ping()], "the logged-in client stays")
        for c in (idle, connected, player):
            c.close()
        T.is_(srv.stop(), 0, "SIGTERM -> exit code 0")


def test_request_rate():
    with tplib.Server("--set", "request_rate=50", "--set",
                      "request_burst=10") as srv:
        flooder = srv.client(timeout=30)
        flooder.connect()
        n = 110
        t0 = time.monotonic()
        flooder.send_bytes(b"".join(tplib.header(4, 1000 + i, 27, 0)
                                    for i in range(n)))
        # Another client meanwhile is not slowed down.
        time.sleep(0.2)
        with srv.client() as other:
            t1 = time.monotonic()
            other.connect()
            other.ping()
            other_took = time.monotonic() - t1
        got = [flooder.recv_frame(timeout=30) for _ in range(n)]
        took = time.monotonic() - t0
        T.ok([f.seq for f in got] == list(range(1000, 1000 + n)) and
             all(f.is_("Okay") for f in got),
             "%d pipelined Pings over the rate limit: all answered, in "
             "order" % n)
        T.ok(took >= 1.5, "they took as long as the rate allows (%.1f s "
             "for 50/s with bursts of 10)" % took)
        T.ok(other_took < 0.5 * SLOW, "another client is served at once "
             "meanwhile (%.3f s)" % other_took)
        T.ok("over the request rate limit" in srv.log(),
             "the rate limit is logged when it acts", srv.log_tail(5))
        flooder.close()
        T.is_(srv.stop(), 0, "SIGTERM -> exit code 0")


def test_hostile_clients():
    """Stallers and idlers fill every slot; the deadlines free them and
    well-behaved clients get in."""
    with tplib.Server("--set", "max_connections=40", "--set",
                      "login_timeout=2", "--set", "tls_handshake_timeout=1",
                      port_flags=[TLS]) as srv:
        probe_gone(srv)
        hostile = []
        for i in range(40):
            port = srv.ports[TLS] if i % 2 else srv.port
            s = socket.create_connection(("127.0.0.1", port))
            if i % 4 == 1:
                s.sendall(b"\x16\x03\x01")       # a ClientHello begun
            hostile.append(s)
        time.sleep(0.3)
        c = srv.client()
        seq = c.send("Connect", {"client": "good"})
        f = c.recv_frame()
        check_fail(T, [f], 3, "while stallers and idlers hold every slot, "
                   "a newcomer is told the server is full", "server full")
        c.close()
        t0 = time.monotonic()
        closed = sum(1 for s in hostile if closed_within(s, 10))
        took = time.monotonic() - t0
        T.is_(closed, 40, "all 40 hostile connections are closed by the "
              "deadlines (%.1f s)" % took)
        for s in hostile:
            s.close()
        time.sleep(0.2)
        name = tplib.unique_name("good")
        with srv.client(port_flag=TLS, tls=True) as c:
            c.connect()
            c.create_account(name, "pw")
            check_okay(T, [c.login(name, "pw")], "then a well-behaved "
                       "client gets in and logs in")
        T.is_(srv.stop(), 0, "SIGTERM -> exit code 0")


async def one_client(i, port, tls_ctx, name, all_open, counter, n):
    def frame(seq, name, fields=None):
        return tplib.encode_frame(4, seq, name, fields)

    async def reply(reader):
        hdr = await reader.readexactly(16)
        (length,) = struct.unpack(">I", hdr[12:16])
        body = await reader.readexactly(length)
        return tplib.Frame(hdr, body)

    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=tls_ctx)
    try:
        steps = []
        for seq, req, fields in (
                (1, "Connect", {"client": "many %d" % i}),
                (2, "GetFeatures", None),
                (3, "Login", {"username": name, "password": "pw"}),
                (4, "Ping", None)):
            writer.write(frame(seq, req, fields))
            await writer.drain()
            steps.append(await reply(reader))
        counter[0] += 1
        if counter[0] == n:
            all_open.set()
        await asyncio.wait_for(all_open.wait(), 120)
        writer.write(frame(5, "Ping") + frame(6, "GetTimeRemaining"))
        await writer.drain()
        steps.append(await reply(reader))
        steps.append(await reply(reader))
        ok = ([f.name for f in steps] == ["Okay", "Features", "Okay",
                                          "Okay", "Okay", "TimeRemaining"]
              and [f.seq for f in steps] == [1, 2, 3, 4, 5, 6])
        return ok, steps
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass


def test_thousand_connections():
    n = 1000
    limit = raise_nofile(n + 200)
    if limit < n + 100:
        T.skip("1000 concurrent connections", "open-file limit %d" % limit)
        return
    with tplib.Server(port_flags=[TLS]) as srv:
        ctx = tplib.tls_context()
        name = tplib.unique_name("k")
        with srv.client() as c:
            c.connect()
            c.create_account(name, "pw")

        async def run():
            all_open = asyncio.Event()
            counter = [0]
            tasks = [one_client(i, srv.ports[TLS] if i % 2 else srv.port,
                                ctx if i % 2 else None, name, all_open,
                                counter, n) for i in range(n)]
            return await asyncio.wait_for(
                asyncio.gather(*tasks, return_exceptions=True), 240)

        t0 = time.monotonic()
        results = asyncio.run(run())
        took = time.monotonic() - t0
        bad = [(i, r) for i, r in enumerate(results)
               if isinstance(r, BaseException) or not r[0]]
        T.ok(not bad, "%d concurrent connections (half TLS) each Connect, "
             "GetFeatures, Login, Ping; all open at once, then Ping and "
             "GetTimeRemaining: all served (%.1f s)" % (n, took),
             "\n".join("client %d: %r" % (i, r) for i, r in bad[:5]))
        with srv.client() as c:
            check_okay(T, [c.connect()], "a client after them is served")
        T.ok(not srv.error_lines(), "no error lines in the log",
             "\n".join(srv.error_lines()[:5]))
        T.is_(srv.stop(cleanup=False), 0, "SIGTERM -> exit code 0")
        line = [x for x in srv.log().splitlines() if "listener tps" in x]
        T.ok(line and ("accepted=%d" % (n // 2)) in line[-1] and
             ("tls_done=%d" % (n // 2)) in line[-1],
             "the tps statistics count %d handshakes" % (n // 2),
             "\n".join(line))
        srv.cleanup()


if __name__ == "__main__":
    tplib.main(test_connection_limit, test_login_timeout, test_request_rate,
               test_hostile_clients, test_thousand_connections)
