#!/usr/bin/env python3
"""Connections leave nothing behind when they close (issue 21, goal 4).

The console's stats() counts the connections whose memory has not gone
yet (conn_objects, closing ones included) and the bytes they hold
(conn_bytes: the structures, their input and output blocks, unsent
output). Plain reads share one block: a connection keeps input of its
own only while it holds an unfinished frame, about that frame's size.
Hundreds of connections of every kind (logged in, pipelining, an
unfinished header or body when they go, not TP at all, TLS) are opened
and closed; both figures must come back exactly to where they were. Run
against the ASan build, LeakSanitizer checks the rest at exit."""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_console import console  # noqa: E402
from test_protocol import Player  # noqa: E402

T = tplib.Tap.current or tplib.Tap()

ROUNDS = 3
PER_KIND = 40
# Bytes one idle connection may hold, structure included (it was one
# 64 KiB read block each, plus the structure).
IDLE_MAX = 4096


def conn_memory(srv):
    """(conn_objects, conn_bytes) as the console sees them; the console's
    own connection is among them, the same one each time."""
    rc, out, err = console(srv, 'local s = stats() '
                           'return s.conn_objects .. " " .. s.conn_bytes')
    try:
        n, b = out.split()
        return int(float(n)), int(float(b))
    except ValueError:
        raise RuntimeError("console: %r %r %r" % (rc, out, err))


def settled(srv, want, tries=200):
    """Polls until conn_objects is back to want (closes run on the
    server's loop after the peer has gone); returns the last figures."""
    got = conn_memory(srv)
    for _ in range(tries):
        if got[0] == want:
            break
        time.sleep(0.05)
        got = conn_memory(srv)
    return got


def open_kinds(srv, players):
    """One connection of each kind per PER_KIND; returns them (raw
    sockets and tplib clients), all still open."""
    held = []
    hdr = tplib.header(4, 1, tplib.type_of("Ping"), 0)
    for i in range(PER_KIND):
        # Logged in, pipelining three Pings (replies read).
        p = players[i % len(players)]
        c = srv.client()
        c.connect()
        c.login(p.name, "pw-" + p.name)
        for _ in range(3):
            c.send("Ping")
        for _ in range(3):
            c.recv_frame()
        held.append(c)
        # Half a header.
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(hdr[:7])
        held.append(s)
        # A header announcing a body, and part of it.
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(tplib.header(4, 1, tplib.type_of("Login"), 300) +
                  b"x" * 100)
        held.append(s)
        # A whole Connect, then the first bytes of the next frame.
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(tplib.encode_frame(4, 1, "Connect",
                                     {"client": "mem-test"}) + hdr[:5])
        held.append(s)
        # Not TP at all: the server answers and closes.
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        held.append(s)
        # TLS, handshake done, Connect answered.
        c = srv.client(port_flag="--tls-port", tls=True)
        c.connect()
        held.append(c)
    return held


def close_all(held):
    for h in held:
        try:
            h.close()
        except OSError:
            pass


def test_memory():
    with tplib.Server(port_flags=["--tls-port"]) as srv:
        base_n, base_b = conn_memory(srv)
        players = [Player(srv) for _ in range(4)]
        T.diag("at rest: %d connections, %d bytes" % (base_n, base_b))
        T.ok(base_n >= 1 and base_b > 0, "stats() counts the console's own "
             "connection (%d objects, %d bytes)" % (base_n, base_b))

        # The logged-in players, idle: little more than their structures.
        for p in players:
            p.call("Ping")
        n, b = conn_memory(srv)
        per = (b - base_b) // max(1, n - base_n)
        T.ok(n == base_n + len(players) and per < IDLE_MAX, "an idle "
             "logged-in connection holds %d bytes (< %d: no read block of "
             "its own)" % (per, IDLE_MAX))

        for r in range(1, ROUNDS + 1):
            held = open_kinds(srv, players)
            # Those waiting on an unfinished frame hold its bytes only.
            n, b = conn_memory(srv)
            T.ok(n > base_n + len(players), "round %d: %d connections open"
                 % (r, n - base_n))
            per = (b - base_b) // max(1, n - base_n)
            T.ok(per < IDLE_MAX, "round %d: %d bytes per open connection "
                 "(unfinished frames keep their bytes only: < %d)"
                 % (r, per, IDLE_MAX))
            close_all(held)
            n, b = settled(srv, base_n + len(players))
            T.ok(n == base_n + len(players), "round %d: every closed "
                 "connection freed (%d left besides the players' %d)"
                 % (r, n - base_n - len(players), len(players)))
            n2, b2 = conn_memory(srv)
            idle = (b2 - base_b)
            T.ok(n2 == n and idle < len(players) * IDLE_MAX,
                 "round %d: the bytes held are the idle players' again "
                 "(%d)" % (r, idle))

        for p in players:
            p.c.close()
        n, b = settled(srv, base_n)
        # The console's own connection is the one left; it holds the
        # request being answered when that came in more than one read
        # (a slow build), so its input may count, up to the request's
        # size (well under 1 KiB).
        T.ok(n == base_n and 0 <= b - base_b < 1024, "all closed: back to "
             "%d objects and %d bytes (+ the console request's input: got "
             "%d, %d)" % (base_n, base_b, n, b))
        T.ok(not srv.error_lines(), "no error lines in the log",
             "\n".join(srv.error_lines()[:5]))
        T.ok(srv.stop(cleanup=False) == 0, "clean exit (LeakSanitizer "
             "finds nothing under ASan)")
        srv.cleanup()


def main():
    T.run(test_memory)
    T.done()


if __name__ == "__main__":
    main()
