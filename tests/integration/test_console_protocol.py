#!/usr/bin/env python3
"""The console socket's own protocol (core/console.h), spoken byte by byte
over a real Unix socket: framing (split and pipelined messages, a length
over the cap, unknown types), completion, interrupts when idle, while a
command waits and while it runs, a client that goes away in the middle of
an endless loop, output bounds, many sessions at once, and who may
connect (the socket's mode, and the server's own check of the peer)."""

import os
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
import test_console as tc  # noqa: E402

T = tc.T
MAX_IN = 16 << 20


def msg(kind, payload=b""):
    if isinstance(payload, str):
        payload = payload.encode()
    return kind.encode() + struct.pack(">I", len(payload)) + payload


class Raw:
    """A console session on a raw socket."""

    def __init__(self, srv):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30 * tc.SLOW)
        self.s.connect(os.path.join(srv.data_dir, "console.sock"))
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def recv(self, timeout=30):
        """(type, payload) of the next message, or None at EOF."""
        self.s.settimeout(timeout * tc.SLOW)
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack(">I", self.buf[1:5])[0]
                if len(self.buf) >= 5 + n:
                    kind = self.buf[:1].decode()
                    payload = self.buf[5:5 + n]
                    self.buf = self.buf[5 + n:]
                    return kind, payload.decode("utf-8", "replace")
            data = self.s.recv(1 << 20)
            if not data:
                return None
            self.buf += data

    def until_end(self, timeout=30):
        """Messages up to and including the next 'r' or 'x'."""
        out = []
        while True:
            m = self.recv(timeout)
            out.append(m)
            if m is None or m[0] in "rx":
                return out

    def eval(self, code):
        self.send(msg("e", code))
        return self.until_end()[-1]

    def close(self):
        self.s.close()


def test_framing():
    with tc.tiny_server() as srv:
        r = Raw(srv)
        kind, banner = r.recv()
        T.ok(kind == "h" and "admin console" in banner, "a banner first",
             banner)
        for b in msg("e", "40 + 2"):
            r.send(bytes([b]))
            time.sleep(0.001)
        T.is_(r.until_end()[-1], ("r", "42"), "a message sent one byte at "
              "a time")
        r.send(msg("e", "x = 7") + msg("e", "x * 2") + msg("e", "nope("))
        T.is_(r.until_end()[-1], ("r", ""), "pipelined: a statement shows "
              "nothing")
        T.is_(r.until_end()[-1], ("r", "14"), "the session keeps its "
              "variables")
        kind, text = r.until_end()[-1]
        T.ok(kind == "x" and "unexpected symbol" in text or "expected" in
             text, "a syntax error", text)
        r.send(msg("z", "what"))
        T.is_(r.recv(), ("x", "unknown console message 'z'"), "an unknown "
              "message type is answered with an error")
        r.send(msg("i"))
        T.is_(r.eval("1"), ("r", "1"), "an interrupt while idle does "
              "nothing")
        r.send(msg("c", "tu"))
        T.is_(r.recv(), ("c", "turn"), "completion of a global")
        r.send(msg("c", "turn.n"))
        T.is_(r.recv(), ("c", "turn.now\nturn.number"), "completion of a "
              "field")
        r.send(msg("c", "x"))
        kind, text = r.recv()
        T.ok(kind == "c" and "x" in text.split("\n") and "xpcall" in text,
             "completion sees the session's own variables", text)
        r.send(msg("c", "nosuch.field"))
        T.is_(r.recv(), ("c", ""), "nothing completes a missing table")
        r.send(msg("c", "string.rep("))
        T.is_(r.recv(), ("c", ""), "nor a call")
        big = r.eval("string.rep('y', 10 * 1024 * 1024)")
        T.ok(big[0] == "r" and len(big[1]) == 10 * 1024 * 1024, "a 10 MiB "
             "result comes whole", str(len(big[1])))
        r.send(msg("e", "timeslice(0) for i = 1, 2000000 do "
                   "print(i) end"))
        out = r.until_end(120)
        printed = sum(len(m[1]) for m in out if m and m[0] == "o")
        T.ok(out[-1] is not None and out[-1][0] == "r" and
             any("output cut" in m[1] for m in out if m) and
             printed < 9 * 1024 * 1024, "print() output is cut at 8 MiB "
             "(%d bytes came)" % printed)
        r.send(struct.pack(">cI", b"e", MAX_IN + 1))
        T.is_(r.recv(), ("x", "message too big"), "a length over 16 MiB is "
              "refused before any payload")
        T.is_(r.recv(), None, "and the session is closed")
        r.close()
        T.ok("sent a message of %d bytes" % (MAX_IN + 1) in srv.log(),
             "and logged")
        tc.ping_ok(srv, "the server goes on")


def test_interrupts():
    with tc.tiny_server() as srv:
        r = Raw(srv)
        r.recv()
        r.send(msg("e", "sleep(30) return 'slept'"))
        time.sleep(0.3)
        r.send(msg("e", "1"))
        T.is_(r.recv(), ("x", "the last command is still running (Ctrl-C "
              "stops it)"), "while a command waits, another is refused")
        tc.ping_ok(srv, "a waiting command does not hold the server up")
        r.send(msg("i"))
        kind, text = r.recv()
        T.ok(kind == "x" and "stopped waiting" in text, "an interrupt "
             "stops the waiting", text)
        T.is_(r.eval("2"), ("r", "2"), "and the session goes on")

        r.send(msg("e", "timeslice(0) n = 0 while true do n = n + 1 end"))
        time.sleep(0.5 * tc.SLOW)
        r.send(msg("i"))
        kind, text = r.recv()
        T.ok(kind == "x" and "interrupted (Ctrl-C)" in text, "an interrupt "
             "stops a running loop", text)
        kind, text = r.eval("n > 0")
        T.is_((kind, text), ("r", "true"), "the loop had run")

        r.send(msg("e", "while true do end"))
        time.sleep(0.5 * tc.SLOW)
        r.close()
        time.sleep(0.5 * tc.SLOW)
        tc.ping_ok(srv, "a client gone in the middle of an endless loop: "
                   "the loop is stopped and the server goes on")
        T.ok("command stopped: the console went away" in srv.log(),
             "the log says why", srv.log_tail(5))


def test_many_sessions():
    with tc.tiny_server() as srv:
        sessions = [Raw(srv) for _ in range(20)]
        for i, r in enumerate(sessions):
            T.ok(r.recv()[0] == "h", "session %d: banner" % i) if i == 19 \
                else r.recv()
            r.send(msg("e", "mine = %d" % i))
        for r in sessions:
            r.until_end()
        good = all(r.eval("mine") == ("r", str(i))
                   for i, r in enumerate(sessions))
        T.ok(good, "20 sessions at once, each with its own variables")
        for r in sessions:
            r.close()
        out = tc.ok_run(srv, "#G.require('admin.console').sessions()",
                        "sessions after they closed")
        T.is_(out, "1", "closed sessions are gone (only this one is left)")


def test_who_may_connect():
    if os.geteuid() != 0:
        T.skip("another user cannot connect", "not running as root")
        T.skip("the server refuses another user", "not running as root")
        return
    with tc.tiny_server() as srv:
        sock = os.path.join(srv.data_dir, "console.sock")

        def as_nobody():
            os.setgid(65534)
            os.setuid(65534)

        try:
            subprocess.run([tplib.tpserver_path(), "--version"],
                           preexec_fn=as_nobody, capture_output=True,
                           timeout=60, check=True)
        except (OSError, subprocess.SubprocessError):
            T.skip("another user cannot connect", "nobody cannot run "
                   "the binary here")
            T.skip("the server refuses another user", "nobody cannot run "
                   "the binary here")
            T.skip("and logs it", "nobody cannot run the binary here")
            return

        # The folders let the other user reach the socket: only its mode
        # keeps them out.
        os.chmod(srv.tmp, 0o711)
        os.chmod(srv.data_dir, 0o751)
        p = subprocess.run([tplib.tpserver_path(), "console", "--socket",
                            sock, "-e", "1"], preexec_fn=as_nobody,
                           capture_output=True, timeout=60 * tc.SLOW,
                           cwd="/")
        T.ok(p.returncode == 1 and b"permission denied" in p.stderr,
             "another user cannot connect (mode 0600)", p.stdout + p.stderr)
        os.chmod(sock, 0o666)
        p = subprocess.run([tplib.tpserver_path(), "console", "--socket",
                            sock, "-e", "1"], preexec_fn=as_nobody,
                           capture_output=True, timeout=60 * tc.SLOW,
                           cwd="/")
        T.ok(p.returncode == 1 and b"the console is for the server's own "
             b"user" in p.stderr, "with the mode opened up, the server "
             "itself refuses another uid (peer credentials)",
             p.stdout + p.stderr)
        T.ok("refused: peer uid=65534" in srv.log(), "and logs it",
             srv.log_tail(5))


if __name__ == "__main__":
    tplib.main(test_framing, test_interrupts, test_many_sessions,
               test_who_may_connect)
