#!/usr/bin/env python3
"""The admin console (admin/console.lua, core/console.c,
core/console_client.c): `tpserver console` driven as a person would, on a
real pseudo-terminal (a multi-line function, an error, history recall, Tab
completion, Ctrl-C on an endless loop, Ctrl-D); the -e and script forms of
every admin command, each checked through a TP client (a kicked player is
disconnected, a message is on the player's board, turn.now() pushes the end
of turn ...); the socket's mode, its removal at stop, a stale socket
replaced and a live one refused; the time slice; the log line with the
console user; `tpserver backup DIR`."""

import os
import pty
import re
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402

T = tplib.Tap.current or tplib.Tap()
TINY = os.path.join(tplib.ROOT, "tests", "fixtures", "rulesets", "tiny")
SLOW = 4.0 if tplib.under_asan() else 1.0
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


class Server(tplib.Server):
    """A server whose stop is a check: exit status 0 and no sanitizer
    report in its log."""

    def stop(self, cleanup=True):
        was_alive = self.alive()
        rc = super().stop(cleanup=False)
        log = self.log()
        if was_alive or rc is not None:
            T.ok(rc == 0 and not SANITIZER.search(log), "the server (port "
                 "%s) stops with status 0 and no sanitizer report" %
                 self.port, "exit %r\n%s" % (rc, log[-3000:]))
        if cleanup:
            self.cleanup()
        return rc


def tiny_server(*args, **kw):
    """A server running the tiny fixture ruleset (ships flying around)."""
    return Server("--ruleset", TINY, *args, **kw)


def console(srv, code=None, stdin=None, args=(), timeout=60):
    """Runs `tpserver console` (-e code, or the script stdin) against srv;
    returns (exit status, stdout, stderr)."""
    cmd = [tplib.tpserver_path(), "console", "--data", srv.data_dir]
    cmd += list(args)
    if code is not None:
        cmd += ["-e", code]
    p = subprocess.run(cmd, input=stdin.encode() if stdin is not None
                       else None, stdin=None if stdin is not None
                       else subprocess.DEVNULL, capture_output=True,
                       timeout=timeout * SLOW, cwd=srv.tmp)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def ok_run(srv, code, name, want=None):
    """A -e run that must succeed; returns its stdout (stripped)."""
    rc, out, err = console(srv, code)
    good = rc == 0 and (want is None or want in out)
    T.ok(good, name, "exit %r\nstdout: %s\nstderr: %s" % (rc, out, err))
    return out.strip()


def fail_run(srv, code, name, want=None):
    """A -e run that must fail (exit 1, message on stderr)."""
    rc, out, err = console(srv, code)
    good = rc == 1 and (want is None or want in err)
    T.ok(good, name, "exit %r\nstdout: %s\nstderr: %s" % (rc, out, err))
    return err.strip()


def login(srv, name, password):
    """(client, reply to Login)."""
    c = srv.client()
    c.connect()
    return c, c.login(name, password)


def ping_ok(srv, name):
    with srv.client() as c:
        c.connect()
        T.ok(c.ping().is_("Okay"), name)


def board_messages(c):
    """(subject, body) of every message on the client's own board."""
    board = c.request("GetBoards", {"ids": [0]})[1]
    n = board["messages"]
    frames = c.request("GetMessage", {"id": board["id"],
                                      "slots": list(range(n))})
    return [(f["subject"], f["body"]) for f in frames[1:] if f.fields]


def pushes(c, n, timeout=10.0):
    """The next n frames c receives (server pushes)."""
    out = list(c.async_frames)
    c.async_frames = []
    deadline = time.monotonic() + timeout * SLOW
    while len(out) < n and time.monotonic() < deadline:
        try:
            out.append(c.recv_frame(timeout=max(0.1, deadline -
                                                time.monotonic())))
        except tplib.Timeout:
            break
    return out


# ------------------------------------------------------------ the terminal


class Terminal:
    """`tpserver console` (or the program argv) on a pseudo-terminal of
    cols x rows, driven by keystrokes."""

    def __init__(self, srv, env=None, argv=None, cols=100, rows=24):
        self.out = b""
        self.mark = 0
        path = tplib.tpserver_path()
        argv = argv or [path, "console", "--data", srv.data_dir]
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.chdir(srv.tmp)
                os.environ.update(env or {})
                os.execvp(argv[0], argv)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.resize(cols, rows, signal_it=False)
        self.status = None

    def resize(self, cols, rows, signal_it=True):
        """Sets the terminal's size; with signal_it, tells the program
        (SIGWINCH) as a terminal window does."""
        import fcntl
        import termios
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", rows, cols, 0, 0))
        if signal_it:
            os.kill(self.pid, signal.SIGWINCH)

    def read(self, timeout):
        """Reads what arrives within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return False
                if not data:
                    return False
                self.out += data
        return True

    def expect(self, text, timeout=10.0):
        """Waits until text shows on the screen (escape sequences and
        carriage returns taken out) in what came after the mark; moves the
        mark to the end of what was read. Returns that screen text."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            seen = ANSI.sub(b"", self.out[self.mark:])
            if text in seen:
                self.mark = len(self.out)
                return seen.decode("utf-8", "replace")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], min(left, 0.1))
            if r:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    return None
                self.out += data

    def prompt(self, timeout=10.0):
        """Waits for the next prompt (and lets line editing settle)."""
        seen = self.expect(b"tpserver> ", timeout)
        time.sleep(0.15)
        return seen

    def settle(self, quiet=0.3, timeout=10.0):
        """Reads until nothing has arrived for quiet seconds (a redraw
        finished, however loaded the machine), at most timeout seconds;
        moves the mark to the end. Returns whether it went quiet."""
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            before = len(self.out)
            if self.read(quiet) is False:
                break
            if len(self.out) == before:
                self.mark = len(self.out)
                return True
        self.mark = len(self.out)
        return False

    def ctrl_c_at_prompt(self, timeout=10.0):
        """Ctrl-C at the prompt: once the screen is quiet, so that the
        prompt waited for is the fresh one the Ctrl-C brings (on a new
        line, nothing typed after it), not a redraw still on its way.
        Returns that screen text, or None."""
        self.settle()
        self.send(b"\x03")
        seen = self.expect(b"\ntpserver> ", timeout)
        if seen is not None:
            self.settle(0.15)
        return seen

    def send(self, data):
        os.write(self.fd, data)

    def line(self, text):
        """Types a line and Enter."""
        for ch in text.encode():
            os.write(self.fd, bytes([ch]))
        os.write(self.fd, b"\r")

    def screen(self):
        return ANSI.sub(b"", self.out).decode("utf-8", "replace")

    def wait(self, timeout=10.0):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                return self.status
            self.read(0.1)
        return None

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
        try:
            os.close(self.fd)
        except OSError:
            pass


def test_terminal():
    with tiny_server() as srv:
        hist = os.path.join(srv.tmp, "history")
        term = Terminal(srv, {"TPSERVER_HISTORY": hist, "HOME": srv.tmp})
        try:
            banner = term.prompt()
            T.ok(banner is not None and "admin console" in banner and
                 "Tiny" in banner, "a person: the banner names the game, "
                 "then the prompt", term.screen())

            # A function typed over three lines.
            term.line("function sq(x)")
            T.ok(term.expect(b"...> ") is not None, "an unfinished "
                 "statement continues on the next line", term.screen())
            time.sleep(0.1)
            term.line("  return x * x")
            T.ok(term.expect(b"...> ") is not None, "and on the next",
                 term.screen())
            time.sleep(0.1)
            term.line("end")
            T.ok(term.prompt() is not None, "'end' completes it: a new "
                 "prompt", term.screen())
            term.line("sq(12)")
            seen = term.prompt()
            T.ok(seen is not None and "\n144\n" in seen, "the function "
                 "works: sq(12) shows 144", term.screen())

            # An error, and the console goes on.
            term.line("error('kaboom')")
            seen = term.prompt()
            T.ok(seen is not None and "kaboom" in seen, "an error shows "
                 "its message and the console goes on", term.screen())
            term.line("traceback()")
            seen = term.prompt()
            T.ok(seen is not None and "kaboom" in seen and
                 "stack traceback" in seen, "traceback() shows the last "
                 "error's trace", term.screen())
            term.line("nosuch.field")
            seen = term.prompt()
            T.ok(seen is not None and "attempt to index" in seen,
                 "a runtime error shows Lua's message", term.screen())
            term.line("{ b = 2, a = { 1, 2, 3 }, s = 'x' }")
            seen = term.prompt()
            T.ok(seen is not None and
                 '{ a = { 1, 2, 3 }, b = 2, s = "x" }' in seen,
                 "a table is shown with its keys sorted", term.screen())

            # History: the arrow up brings back the last line.
            term.line("sq(5)")
            term.prompt()
            term.send(b"\x1b[A")
            time.sleep(0.3)
            term.send(b"\r")
            seen = term.prompt()
            T.ok(seen is not None and "sq(5)" in seen and "\n25\n" in seen,
                 "arrow up recalls sq(5) and Enter runs it again",
                 term.screen())

            # Tab completion from the server.
            term.send(b"turn.nu\t")
            T.ok(term.expect(b"turn.number", 5) is not None, "Tab completes "
                 "turn.nu to turn.number", term.screen())
            time.sleep(0.2)
            term.send(b"()\r")
            seen = term.prompt()
            T.ok(seen is not None and "\n0\n" in seen, "and it runs",
                 term.screen())

            # Ctrl-C on an endless loop: the server stops it and goes on.
            term.line("timeslice(0)")
            term.prompt()
            term.line("while true do end")
            time.sleep(1.0 * SLOW)
            c = srv.client(timeout=60)
            c.connect_seq = c.send("Connect", {"client": "while-looping"})
            term.send(b"\x03")
            seen = term.prompt(20)
            T.ok(seen is not None and "interrupted (Ctrl-C)" in seen,
                 "Ctrl-C stops 'while true do end'", term.screen())
            f = c.recv_reply(c.connect_seq, timeout=30)
            T.ok(f and f[0].is_("Okay"), "a client that connected during "
                 "the loop is answered once it is stopped", repr(f))
            c.close()
            ping_ok(srv, "the server serves new clients after Ctrl-C")
            term.line("sq(3)")
            seen = term.prompt()
            T.ok(seen is not None and "\n9\n" in seen, "the session still "
                 "has its function after the interrupt", term.screen())

            # Ctrl-C at the prompt drops the line; Ctrl-D leaves.
            term.send(b"this is not lua")
            T.ok(term.ctrl_c_at_prompt() is not None, "Ctrl-C at the "
                 "prompt drops the line: a new prompt", term.screen())
            term.send(b"\x04")
            T.is_(term.wait(), 0, "Ctrl-D leaves with exit status 0")
        finally:
            term.close()
        term = Terminal(srv, {"TPSERVER_HISTORY": hist, "HOME": srv.tmp})
        try:
            term.prompt()
            term.send(b"\x1b[A")
            T.ok(term.expect(b"sq(3)", 5) is not None,
                 "a new session recalls the last one's lines",
                 term.screen())
            # The recalled line's redraw may show a prompt too: Ctrl-C
            # once it has all arrived, and quit() only after the prompt
            # that Ctrl-C brings (typed earlier, quit() went to the
            # recalled line, or was dropped with it, and the console
            # never left: the cause of a rare failure under load, where
            # a fixed pause was not always enough).
            T.ok(term.ctrl_c_at_prompt() is not None, "Ctrl-C drops the "
                 "recalled line: a new prompt", term.screen())
            term.line("quit()")
            T.is_(term.wait(), 0, "quit() leaves with exit status 0")
            if term.status != 0:
                T.diag(term.screen()[-1500:])
        finally:
            term.close()
        try:
            with open(hist, "rb") as f:
                history = f.read().decode("utf-8", "replace")
        except OSError as e:
            history = "(unreadable: %s)" % e
        T.ok("sq(12)" in history and "timeslice(0)" in history,
             "the history is saved to the user's history file", history)
        mode = stat.S_IMODE(os.stat(hist).st_mode) if os.path.exists(hist) \
            else None
        T.is_(mode, 0o600, "the history file is readable by its owner only")
        log = srv.log()
        uid = os.getuid()
        T.ok(re.search(r"console: session=\d+ user=\S+ uid=%d pid=\d+ "
                       r"command: sq\(12\)" % uid, log) is not None,
             "every command is logged with the console user's credentials",
             "\n".join(l for l in log.splitlines() if "console" in l)[-2000:])


# ------------------------------------------------------------ socket


def test_socket():
    srv = tiny_server().start()
    path = os.path.join(srv.data_dir, "console.sock")
    try:
        st = os.lstat(path)
        T.ok(stat.S_ISSOCK(st.st_mode), "the console socket is in the data "
             "directory")
        T.is_(stat.S_IMODE(st.st_mode), 0o600, "its mode is 0600")
        T.is_(st.st_uid, os.geteuid(), "it belongs to the server's user")
        T.is_(ok_run(srv, "1 + 1", "-e: an expression"), "2",
              "-e '1 + 1' prints 2")
        rc, out, err = console(srv, None, args=["--socket", path, "-e",
                                                "turn.number()"])
        T.ok(rc == 0 and out.strip() == "0", "--socket PATH finds it too",
             out + err)
        gone = os.path.join(srv.tmp, "nowhere")
        rc, out, err = console(srv, None, args=["--socket", gone, "-e", "1"])
        T.ok(rc == 1 and "no console socket" in err, "no server there: "
             "exit 1 and a message saying so", err)
    finally:
        T.is_(srv.stop(cleanup=False), 0, "the server stops cleanly")
    T.ok(not os.path.exists(path), "the socket is removed at stop")
    srv.cleanup()


def test_stale_and_live_socket():
    first = tiny_server().start()
    path = os.path.join(first.data_dir, "console.sock")
    try:
        first.proc.kill()
        first.wait()
        T.ok(os.path.exists(path), "a killed server leaves its socket")
        again = tiny_server(data_dir=first.data_dir).start()
        try:
            T.is_(ok_run(again, "turn.number()", "the stale socket of a "
                         "dead server is replaced"), "0",
                  "the new server answers on it")
            other = tiny_server("--set", "console_socket=" + path)
            try:
                other.start()
                started = True
            except RuntimeError:
                started = False
            T.ok(not started and "another server answers on the console "
                 "socket" in other.log(), "a live socket is not taken "
                 "over: the second server does not start, and says why",
                 other.log_tail(10))
            other.kill()
            T.ok(os.path.exists(path) and
                 ok_run(again, "1", "the first server's socket is "
                        "untouched") == "1", "and the first keeps it")
        finally:
            again.stop()
    finally:
        first.cleanup()


# ------------------------------------------------------------ scripts


def test_scripts_and_slice():
    with tiny_server() as srv:
        rc, out, err = console(srv, stdin="local t = {}\n"
                               "for i = 1, 3 do t[i] = i * i end\n"
                               "print('printed', #t)\n"
                               "return t, 'done'\n")
        T.ok(rc == 0 and "printed\t3" in out and "{ 1, 4, 9 }" in out and
             "done" in out, "a script on stdin runs as one chunk: print() "
             "and the results show", out + err)
        rc, out, err = console(srv, stdin="x = 1\nerror('script failed')\n")
        T.ok(rc == 1 and "script failed" in err, "a failing script: exit 1 "
             "and the message on stderr", out + err)
        rc, out, err = console(srv, stdin="for\n")
        T.ok(rc == 1 and "expected" in err, "a syntax error: exit 1 and "
             "the parser's message", out + err)
        rc, out, err = console(srv, "=turn.number()")
        T.ok(rc == 0 and out.strip() == "0", "=expr shows the value, as in "
             "the LuaJIT REPL", out + err)
        # A script shows the values of its expression statements, as -e
        # and the prompt do, in order with what it prints.
        script = ("1 + 1\n"
                  "turn.number()\n"
                  "local t = { 'a' }\n"
                  "print('printed')\n"
                  "=#t\n"
                  "string.format('%d-%s',\n"
                  "              7, t[1])   -- a comment\n"
                  "t[1] = 'b'\n"
                  "t\n"
                  "local f = function(o) return o.x end\n"
                  "f\n"
                  "{ x = 'called' }\n")
        expr_out = []
        for line in ["1 + 1", "turn.number()", "string.format('%d-%s', 7, "
                     "'a')"]:
            rc, out, err = console(srv, line)
            expr_out.append(out)
        rc, out, err = console(srv, stdin=script)
        T.ok(rc == 0 and out == expr_out[0] + expr_out[1] + "printed\n1\n" +
             expr_out[2] + '{ "b" }\ncalled\n',
             "a script prints the value of each expression statement, as -e "
             "does (-e: %r)" % expr_out, out + err)
        rc, out, err = console(srv, stdin="local x = 1\n\n\nerror('at 4')\n"
                               "x\n")
        T.ok(rc == 1 and "stdin:4: at 4" in err and out == "",
             "... keeping its line numbers; nothing after a failure",
             out + err)

        # The time slice stops what holds the server too long.
        start = time.monotonic()
        rc, out, err = console(srv, "while true do end")
        took = time.monotonic() - start
        T.ok(rc == 1 and "interrupted" in err and "time slice" not in err
             and "2.0 s" in err, "an endless loop is stopped after the time "
             "slice (2 s), and the message says so", out + err)
        T.ok(took < 15 * SLOW, "it took %.1f s" % took)
        rc, out, err = console(srv, "while true do pcall(function() "
                               "while true do end end) end")
        T.ok(rc == 1 and "interrupted" in err, "pcall cannot swallow the "
             "stop", out + err)
        rc, out, err = console(srv, "local t = {3, 2, 1} table.sort(t, "
                               "function(a, b) while true do end end)")
        T.ok(rc == 1 and "interrupted" in err, "nor can a C function "
             "(table.sort) between the loop and the console", out + err)
        ping_ok(srv, "the server still serves clients")
        rc, out, err = console(srv, stdin="timeslice(0.3)\n"
                               "local n = 0\n"
                               "for i = 1, 3 do sleep(0.2) n = n + 1 end\n"
                               "return n\n")
        # timeslice(0.3) is an expression statement: its value shows.
        T.ok(rc == 0 and out.split() == ["0.3", "3"], "sleep() waits "
             "without counting against the slice", out + err)
        rc, out, err = console(srv, "G.require('tp.console').run(nil, "
                               "coroutine.create(print), 1)")
        T.ok(rc == 1 and "already running" in err, "console code cannot "
             "start a second run", out + err)


# ------------------------------------------------------------ players


def test_players():
    with tiny_server() as srv:
        ok_run(srv, "add_player('alice', 'pw-alice', 'a@example.org')",
               "add_player(name, password, email)", "alice")
        c, f = login(srv, "alice", "pw-alice")
        T.ok(f.is_("Okay"), "the added player logs in with that password",
             repr(f))
        term = Terminal(srv, {"HOME": srv.tmp})
        try:
            banner = term.prompt()
            T.ok(banner is not None and ", 1 player.\n" in banner,
                 "the banner counts '1 player.'", term.screen())
            term.line("quit()")
            term.wait()
        finally:
            term.close()
        out = ok_run(srv, "players()", "players()")
        T.ok(re.search(r"1\s+alice\s+1\s+no\s+no\s+yes\s+no", out),
             "players() lists alice: online 1, not finished, not idle, "
             "alive, not banned", out)
        rc, out, err = console(srv, stdin="local p = player('alice')\n"
                               "return p.email, p.online\n")
        T.ok(rc == 0 and "a@example.org" in out and "1" in out,
             "player(name) in a script", out + err)
        fail_run(srv, "add_player('alice', 'x')", "add_player with a taken "
                 "name fails", "taken")
        fail_run(srv, "player('nobody')", "an unknown player: a plain "
                 "message", "no player named 'nobody'")

        T.is_(ok_run(srv, "kick('alice', 'testing')", "kick(name)"), "1",
              "kick closes one connection")
        _, closed = c.read_until_close(10 * SLOW)
        T.ok(closed, "the kicked player is disconnected")
        c.close()

        ok_run(srv, "reset_password('alice', 'new-pw')", "reset_password")
        _, f = login(srv, "alice", "pw-alice")
        T.ok(f.is_("Fail"), "the old password no longer works", repr(f))
        c, f = login(srv, "alice", "new-pw")
        T.ok(f.is_("Okay"), "the new one does", repr(f))

        ok_run(srv, "ban('alice', 'cheating')", "ban(name, reason)")
        _, closed = c.read_until_close(10 * SLOW)
        T.ok(closed, "ban disconnects the player")
        _, f = login(srv, "alice", "new-pw")
        T.ok(f.is_("Fail"), "a banned player cannot log in", repr(f))
        T.ok("account alice is banned (cheating)" in srv.log(), "the log "
             "says why the login was refused")
        ok_run(srv, "unban('alice')", "unban(name)")
        c, f = login(srv, "alice", "new-pw")
        T.ok(f.is_("Okay"), "unbanned, alice logs in again", repr(f))

        ok_run(srv, "remove_player('alice')", "remove_player(name)")
        _, closed = c.read_until_close(10 * SLOW)
        T.ok(closed, "a removed player is disconnected")
        _, f = login(srv, "alice", "new-pw")
        T.ok(f.is_("Fail"), "and cannot log in", repr(f))
        out = ok_run(srv, "players()", "players() after the removal")
        T.ok("alice" not in out, "alice is no longer listed", out)


# ------------------------------------------------------------ messages


def test_messages():
    with tiny_server() as srv:
        ok_run(srv, "add_player('ann', 'pw1') add_player('ben', 'pw2')",
               "two players")
        a, _ = login(srv, "ann", "pw1")
        b, _ = login(srv, "ben", "pw2")
        ok_run(srv, "message('ann', 'Hello ann', 'Only for you.')",
               "message(name, subject, body)")
        T.ok(("Hello ann", "Only for you.") in board_messages(a),
             "the message is on ann's board", repr(board_messages(a)))
        T.ok(("Hello ann", "Only for you.") not in board_messages(b),
             "and not on ben's")
        T.is_(ok_run(srv, "broadcast('Maintenance', 'At noon.')",
                     "broadcast(subject, body)"), "2",
              "broadcast reaches both players")
        for c, who in ((a, "ann"), (b, "ben")):
            T.ok(("Maintenance", "At noon.") in board_messages(c),
                 "the broadcast is on %s's board" % who)
        fail_run(srv, "message('nobody', 'x', 'y')", "a message to no one "
                 "fails", "no player named")


# ------------------------------------------------------------ turns


def test_turns():
    with tiny_server() as srv:
        ok_run(srv, "add_player('tim', 'pw')", "a player")
        c, _ = login(srv, "tim", "pw")
        T.is_(ok_run(srv, "turn.now()", "turn.now()"), "1",
              "turn.now() returns the new turn's number")
        frames = pushes(c, 2)
        got = [(f.seq, f["time"], f["reason"], f["turn"]) for f in frames
               if f.is_("TimeRemaining") and f.fields]
        T.is_(got[:2], [(0, 0, 5, 0), (0, 600, 1, 1)], "the player gets the "
              "end of turn (time 0, reason 5) and the new turn (reason 1, "
              "turn 1)")
        T.is_(ok_run(srv, "turn.number()", "turn.number()"), "1",
              "turn.number() is 1")
        T.is_(ok_run(srv, "turn.waiting()", "turn.waiting()"),
              '{ "tim" }', "turn.waiting() names the player who has not "
              "finished")
        c.call("FinishedTurn")
        pushes(c, 3, 2)
        T.is_(ok_run(srv, "turn.number()", "turn.number() once tim "
                     "finished"), "2", "(everyone finished: turn 2)")

        ok_run(srv, "turn.pause()", "turn.pause()", "paused")
        pushes(c, 1, 2)
        f = c.call("GetTimeRemaining")
        T.is_(f["time"], -1, "paused: no end of turn is scheduled")
        T.is_(ok_run(srv, "turn.remaining()", "turn.remaining()"), "-1",
              "turn.remaining() says so too")
        rc, out, err = console(srv, "turn.pause()")
        T.ok(rc == 0 and "already paused" in out, "pausing twice says so")
        ok_run(srv, "turn.resume()", "turn.resume()", "resumed")
        pushes(c, 1, 2)
        f = c.call("GetTimeRemaining")
        T.ok(590 <= f["time"] <= 600, "resumed with the time that was left",
             repr(f))
        ok_run(srv, "turn.length(30)", "turn.length(30)")
        pushes(c, 1, 2)
        f = c.call("GetTimeRemaining")
        T.ok(25 <= f["time"] <= 30, "turn.length(30): the turn ends within "
             "30 s", repr(f))
        T.is_(ok_run(srv, "turn.length()", "turn.length()"), "30",
              "turn.length() reads it back")
        ok_run(srv, "turn.mode('manual')", "turn.mode('manual')")
        pushes(c, 1, 2)
        f = c.call("GetTimeRemaining")
        T.is_(f["time"], -1, "manual mode: no clock")
        fail_run(srv, "turn.mode('sometimes')", "a bad mode is refused",
                 "turn mode is")
        ok_run(srv, "turn.mode('fixed') turn.length(100) turn.reset()",
               "turn.reset()")
        pushes(c, 3, 2)
        f = c.call("GetTimeRemaining")
        T.ok(95 <= f["time"] <= 100, "turn.reset() starts the clock anew",
             repr(f))
        out = ok_run(srv, "status()", "status()")
        T.ok("turn = 2" in out and 'turn_mode = "fixed"' in out, "status() "
             "shows the turn and the mode", out)


# ------------------------------------------------------------ objects


def test_objects():
    with tiny_server() as srv:
        ok_run(srv, "add_player('olga', 'pw')", "a player with a ship")
        c, _ = login(srv, "olga", "pw")
        out = ok_run(srv, "objects()", "objects()")
        T.ok(re.search(r"0\s+Universe\s+The Universe", out) and
             re.search(r"1\s+Ship\s+olga's ship\s+olga", out),
             "objects() lists the universe and olga's ship", out)
        out = ok_run(srv, "objects('ship')", "objects('ship')")
        T.ok("olga's ship" in out and "Universe" not in out, "filtered by "
             "type", out)
        out = ok_run(srv, "find('OLGA')", "find(text)")
        T.ok("olga's ship" in out, "find() ignores case", out)
        out = ok_run(srv, "object(1)", "object(id)")
        T.ok('name = "olga\'s ship"' in out and "pos = " in out,
             "object(id) shows the object whole", out)
        out = ok_run(srv, "{ object(1) }", "an object nested in a table")
        T.ok("<Ship #1" in out, "nested, an object is a one-line summary",
             out)

        ok_run(srv, "edit(1, { name = 'Renamed', pos = { x = 7 } })",
               "edit(id, fields)")
        f = c.request("GetObjectsByID", {"ids": [1]})[1]
        T.ok(f.is_("Object") and f["name"] == "Renamed", "the client sees "
             "the new name", repr(f))
        fail_run(srv, "edit(1, { colour = 'red' })", "an unknown field is "
                 "refused", "cannot edit 'colour'")
        fail_run(srv, "edit(1, { owner = 99 })", "an unknown owner is "
                 "refused", "no player 99")

        rc, out, err = console(srv, stdin=(
            "local q = model.queues[1]\n"
            "q.orders[#q.orders + 1] = { type = 0, params = { to = "
            "{ x = 5, y = 0, z = 0 } } }\n"
            "model.queue_changed(q)\n"
            "return #orders(1)\n"))
        T.ok(rc == 0 and out.strip() == "1", "a script adds an order; "
             "orders(id) lists it", out + err)
        f = c.request("GetOrderQueue", {"ids": [1]})[1]
        T.is_(f.get("numorders"), 1, "the script's change was stored: the "
              "client sees one order")
        ok_run(srv, "remove_order(1, 0)", "remove_order(id, slot)")
        f = c.request("GetOrderQueue", {"ids": [1]})[1]
        T.is_(f.get("numorders"), 0, "the order is gone for the client")
        T.is_(ok_run(srv, "clear_orders(1)", "clear_orders(id) of none"),
              "0", "clear_orders on an empty queue removes nothing")
        rc, out, err = console(srv, stdin=(
            "local q = model.queues[1]\n"
            "for i = 1, 2 do q.orders[#q.orders + 1] = { type = 0, params "
            "= { to = { x = i, y = 0, z = 0 } } } end\n"
            "model.queue_changed(q)\n"
            "return clear_orders(1)\n"))
        T.ok(rc == 0 and out.strip() == "2", "clear_orders(id) removes the "
             "two orders a script queued", out + err)
        f = c.request("GetOrderQueue", {"ids": [1]})[1]
        T.is_(f.get("numorders"), 0, "the client sees none left")

        rc, out, err = console(srv, stdin=(
            "object(1).name = 'Half done'\n"
            "model.changed(object(1))\n"
            "error('changed my mind')\n"))
        T.ok(rc == 1 and "rolled back" in err, "a script that fails after "
             "a change: its change is rolled back", out + err)
        T.is_(ok_run(srv, "object(1).name", "the name after the rollback"),
              "Renamed", "the object kept its stored name")

        ok_run(srv, "nuke(1)", "nuke(id)")
        f = c.request("GetObjectsByID", {"ids": [1]})[1]
        T.ok(f.is_("Fail"), "the client can no longer get it", repr(f))
        fail_run(srv, "object(1)", "object() of a removed object",
                 "it is gone")


# ------------------------------------------------------------ server


def test_server_commands():
    with tiny_server() as srv:
        c = srv.client()
        c.connect()
        out = ok_run(srv, "connections()", "connections()")
        T.ok(re.search(r"\s+tp\s+127\.0\.0\.1:\d+\s+TP04\s+CONNECTED", out),
             "connections() lists the TP client", out)
        out = ok_run(srv, "stats()", "stats()")
        T.ok("connections = 1" in out and "lua_memory" in out, "stats() "
             "counts the connection", out)
        ok_run(srv, "log_level('debug', 'turn')", "log_level(level, module)")
        out = ok_run(srv, "log_level()", "log_level()")
        T.ok('turn = "debug"' in out and 'level = "info"' in out,
             "log_level() shows the levels", out)
        fail_run(srv, "log_level('loud')", "a bad level is refused",
                 "level must be")
        T.is_(ok_run(srv, "reload()", "reload()"), "reloaded",
              "reload() reloads the configuration")
        T.is_(ok_run(srv, "config('turn_mode')", "config(key)"),
              "players_finished", "config(key) reads the running value")
        out = ok_run(srv, "setting('turn_length', 77)", "setting(key, value)")
        T.is_(ok_run(srv, "turn.length()", "turn.length() after it"), "77",
              "setting() changed the running turn length")
        fail_run(srv, "setting('turn_length', 'long')", "setting() checks "
                 "the type", "must be an integer")
        out = ok_run(srv, "setting('sync', true)", "a key that needs a "
                     "restart")
        T.ok("next restart" in out, "setting() says when it applies", out)
        T.ok("session=" in ok_run(srv, "G.require('admin.console')"
                                  ".sessions()[1].user ~= nil and "
                                  "'session=' or 'none'",
                                  "any Lua: the server's modules"),
             "G reaches the server's modules")
        out = ok_run(srv, "help()", "help()")
        for name in ("turn.now()", "add_player(", "kick(", "ban(",
                     "broadcast(", "objects(", "edit(", "backup(dir)",
                     "reload_ruleset()", "shutdown()"):
            T.ok(name in out, "help() lists %s" % name)
        out = ok_run(srv, "pp({ a = { b = { c = { d = { e = 1 } } } } })",
                     "pp(value)")
        T.ok("e = 1" in out, "pp() prints nested deeper than results do",
             out)
        out = ok_run(srv, "{ a = { b = { c = { d = { e = 1 } } } } }",
                     "a deep table")
        T.ok("e = 1" not in out and "..." in out, "results are shown to a "
             "bounded depth", out)
        out = ok_run(srv, "local t = {} for i = 1, 100 do t[i] = i end "
                     "return t", "a long list")
        T.ok("(60 more)" in out, "and a bounded number of items", out)
        rc, out, err = console(srv, "quit()")
        T.ok(rc == 0, "quit() ends the session with status 0", out + err)
        out = ok_run(srv, "help(turn.now)", "help(function)")
        T.ok(out.startswith("turn.now()") and "ruleset" in out,
             "help(turn.now) explains it", out)
        fail_run(srv, "help('nothing')", "help() of nothing",
                 "no command nothing")
        rc, out, err = console(srv, "shutdown()")
        T.ok(rc == 0 and "stopping" in out, "shutdown() answers", out + err)
        T.is_(srv.wait(), 0, "and the server stops cleanly (exit 0)")
        T.ok(not SANITIZER.search(srv.log()), "with no sanitizer report",
             srv.log_tail(60))
        T.ok(not os.path.exists(os.path.join(srv.data_dir, "console.sock")),
             "the socket went with it")
        c.close()


# ------------------------------------------------------------ backups


def test_backup():
    dest_root = tplib.tempfile.mkdtemp(prefix="tpserver-backup-")
    dest = os.path.join(dest_root, "copy1")
    with tiny_server() as srv:
        ok_run(srv, "add_player('bob', 'pw')", "a player to back up")
        out = ok_run(srv, "backup(%r)" % dest, "backup(dir)")
        T.ok("keys" in out and os.path.exists(os.path.join(dest, "db",
                                                             "CURRENT")),
             "backup(dir) waits for a whole copy in dir/db", out)
        cmd = [tplib.tpserver_path(), "backup", "--data", srv.data_dir,
               "copy2"]
        p = subprocess.run(cmd, cwd=srv.tmp, capture_output=True,
                           timeout=60 * SLOW)
        T.ok(p.returncode == 0 and os.path.exists(
            os.path.join(srv.tmp, "copy2", "db", "CURRENT")),
            "tpserver backup DIR (relative to the caller's folder): exit 0 "
            "and the copy is there", p.stdout + p.stderr)
        p = subprocess.run(cmd, cwd=srv.tmp, capture_output=True,
                           timeout=60 * SLOW)
        T.ok(p.returncode == 1 and b"already holds a database" in p.stderr,
             "a second backup into the same folder: exit 1 and why",
             p.stdout + p.stderr)
    copy = Server("--ruleset", TINY, data_dir=dest).start()
    try:
        c, f = login(copy, "bob", "pw")
        T.ok(f.is_("Okay"), "a server started on the backup has the "
             "player", repr(f))
        c.close()
    finally:
        copy.stop()
        shutil.rmtree(dest_root, ignore_errors=True)


# ------------------------------------------------------------ ruleset


def test_reload_ruleset():
    work = tplib.tempfile.mkdtemp(prefix="tpserver-rs-")
    rs_dir = os.path.join(work, "tinycopy")
    shutil.copytree(TINY, rs_dir)
    init = os.path.join(rs_dir, "init.lua")
    with open(init) as f:
        source = f.read()
    try:
        with Server("--ruleset", rs_dir) as srv:
            T.ok("Tiny 1.0 reloaded" in ok_run(srv, "reload_ruleset()",
                                              "reload_ruleset(), unchanged"),
                 "the same files reload")
            with open(init, "w") as f:
                f.write(source.replace('version = "1.0"', 'version = "1.1"'))
            out = ok_run(srv, "reload_ruleset()", "reload_ruleset() after a "
                         "change of its code")
            T.ok("Tiny 1.1 reloaded" in out, "the new files are in place",
                 out)
            T.is_(ok_run(srv, "game.ruleset().version", "the running "
                         "ruleset's version"), "1.1", "and run")
            with open(init, "w") as f:
                f.write(source.replace(
                    'order_types = {',
                    'order_types = {\n        { name = "Wait", '
                    'description = "Do nothing" },'))
            err = fail_run(srv, "reload_ruleset()", "a reload that changes "
                           "the order types", "not reloaded")
            T.ok("may not change shape" in err and "order type" in err,
                 "is refused, saying which types changed", err)
            T.is_(ok_run(srv, "game.ruleset().version", "the ruleset after "
                         "the refusal"), "1.1", "the running ruleset stays")
            with open(init, "w") as f:
                f.write(source.replace("return {", "return { x ="))
            fail_run(srv, "reload_ruleset()", "files that do not load",
                     "not reloaded")
            ping_ok(srv, "the server serves clients after the reloads")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    tplib.main(test_socket, test_terminal, test_scripts_and_slice,
               test_players, test_messages, test_turns, test_objects,
               test_server_commands, test_backup, test_reload_ruleset,
               test_stale_and_live_socket)
