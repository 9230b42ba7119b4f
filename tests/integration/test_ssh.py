#!/usr/bin/env python3
"""The admin console over SSH (docs/ssh.md), with Debian's OpenSSH client
against the running server: key logins, refusals (a wrong key, an unknown
admin, a password while passwords are off; with them on, the right and a
wrong password), the ssh_authorized_keys file, the host key kept across a
restart (a strict known_hosts check passes the second time) and shown by
--status, exec requests with their output and exit status, a script on
stdin, an interactive pty session driven as a person would (a multi-line
function, an error, history recalled, also in the next session, Tab,
Ctrl-C of an endless loop and of a wait, the window size followed, quit),
and the limits: sessions at once, the login timeout, idle sessions, too
many refused attempts, a client that connects and stops sending while TP
clients are served."""

import os
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
import test_console as tc  # noqa: E402
from test_admin import hash_password  # noqa: E402

T = tc.T
SLOW = tc.SLOW
PASSWORD = "ssh-adm1n-%d" % os.getpid()
SSH_FLAG = "--ssh-port"


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                    "test key", "-f", path], check=True,
                   stdout=subprocess.DEVNULL)
    with open(path + ".pub") as f:
        return f.read().strip()


class Keys:
    """The client side's files: keys, known_hosts, askpass."""

    def __init__(self, folder):
        self.dir = folder
        self.root = os.path.join(folder, "root_key")
        self.root_pub = keygen(self.root)
        self.other = os.path.join(folder, "other_key")
        self.other_pub = keygen(self.other)
        self.filed = os.path.join(folder, "filed_key")
        self.filed_pub = keygen(self.filed)
        self.known = os.path.join(folder, "known_hosts")
        self.askpass = os.path.join(folder, "askpass.sh")
        with open(self.askpass, "w") as f:
            f.write('#!/bin/sh\nprintf "%s\\n" "$TP_TEST_PASSWORD"\n')
        os.chmod(self.askpass, 0o700)


def make_server(keys, *extra, passwords=False, data_dir=None, conf=None):
    srv = tc.Server("--ruleset", tc.TINY, *extra, data_dir=data_dir,
                    port_flags=[SSH_FLAG])
    authorized = os.path.join(srv.tmp, "authorized_keys")
    with open(authorized, "w") as f:
        f.write("# a comment, then a line with options (not used)\n")
        f.write('command="/bin/false" %s\n' % keys.other_pub)
        f.write(keys.filed_pub + "\n")
    rc, h, err = hash_password(PASSWORD)
    if rc != 0:
        raise RuntimeError("--hash-password failed: " + err)
    path = conf or os.path.join(srv.tmp, "ssh.lua")
    with open(path, "w") as f:
        f.write("return { admins = {\n"
                "  { name = 'root', ssh_keys = { %r } },\n"
                "  { name = 'pw', password_hash = %r },\n"
                "}, ssh_authorized_keys = %r, ssh_passwords = %s }\n" %
                (keys.root_pub, h, authorized,
                 "true" if passwords else "false"))
    srv.extra += ["-c", path]
    return srv


def ssh_cmd(srv, keys, user="root", key=None, strict=False, extra=()):
    cmd = ["ssh", "-p", str(srv.ports[SSH_FLAG]),
           "-o", "UserKnownHostsFile=" + keys.known,
           # One name for the server whatever its port (a restart takes
           # a new one), so that known_hosts compares its keys.
           "-o", "HostKeyAlias=tpserver-test-%s" % os.path.basename(
               srv.data_dir.rstrip("/").rsplit("/", 1)[0]),
           "-o", "StrictHostKeyChecking=" + ("yes" if strict else "no"),
           "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
           "-o", "ConnectTimeout=%d" % int(20 * SLOW),
           "-F", "/dev/null"]
    if key:
        cmd += ["-i", key, "-o", "BatchMode=yes"]
    cmd += list(extra)
    return cmd + ["%s@127.0.0.1" % user]


def run_ssh(srv, keys, code=None, stdin=None, user="root", key="root",
            strict=False, extra=(), env=None, timeout=60):
    keyfile = getattr(keys, key) if key else None
    cmd = ssh_cmd(srv, keys, user, keyfile, strict, extra)
    if code is not None:
        cmd.append(code)
    p = subprocess.run(cmd, input=stdin.encode() if stdin is not None
                       else None, stdin=None if stdin is not None
                       else subprocess.DEVNULL, capture_output=True,
                       timeout=timeout * SLOW, env=env)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def by_password(srv, keys, code, password):
    """An exec request as admin pw, giving password through askpass."""
    env = dict(os.environ, SSH_ASKPASS=keys.askpass,
               SSH_ASKPASS_REQUIRE="force", TP_TEST_PASSWORD=password,
               DISPLAY=":0")
    return run_ssh(srv, keys, code, user="pw", key=None, env=env, extra=[
        "-o", "PreferredAuthentications=password",
        "-o", "NumberOfPasswordPrompts=1", "-o", "PubkeyAuthentication=no"])


class Pty(tc.Terminal):
    """ssh -tt on a pseudo-terminal of our own (test_console's terminal),
    typed at as a person; read_until looks at the raw bytes, escape
    sequences included."""

    def __init__(self, srv, keys, cols=80, rows=24, user="root", key=None):
        cmd = ssh_cmd(srv, keys, user, key or keys.root, extra=["-tt"])
        super().__init__(srv, argv=cmd, cols=cols, rows=rows)

    def send(self, data):
        super().send(data.encode() if isinstance(data, str) else data)

    def read_until(self, want, timeout=15):
        """Reads until want shows after the mark; whether it did."""
        end = time.time() + timeout * SLOW
        want = want.encode() if isinstance(want, str) else want
        while want not in self.out[self.mark:] and time.time() < end:
            if not self.read(0.05):
                break
        return want in self.out[self.mark:]

    def since(self):
        return self.out[self.mark:].decode("utf-8", "replace")

    def set_mark(self):
        self.mark = len(self.out)

    def wait(self, timeout=15):
        return super().wait(timeout)


def ssh_log(srv):
    return [line for line in srv.log().splitlines() if " ssh: " in line
            or " console: ssh" in line]


def fingerprint(pub_or_key):
    out = subprocess.run(["ssh-keygen", "-l", "-f", pub_or_key],
                         capture_output=True, text=True).stdout
    return out.split()[1] if out else None


# ---------------------------------------------------------------- tests

def test_logins_and_exec(keys):
    srv = make_server(keys)
    srv.start()
    try:
        key_file = os.path.join(srv.data_dir, "ssh", "host_ed25519_key")
        T.ok(os.path.exists(key_file) and
             (os.stat(key_file).st_mode & 0o777) == 0o600,
             "the host key is made in <data>/ssh/ with mode 0600")
        host_fp = fingerprint(key_file)
        T.ok(host_fp and any("host key" in l and host_fp in l
                             for l in ssh_log(srv)),
             "its fingerprint is logged at start", host_fp)
        st = subprocess.run([tplib.tpserver_path(), "--data", srv.data_dir,
                             "-c", srv.extra[-1], SSH_FLAG,
                             str(srv.ports[SSH_FLAG]), "--status"],
                            capture_output=True, text=True, timeout=30)
        T.ok(st.returncode == 0 and host_fp and host_fp in st.stdout,
             "tpserver --status prints the SSH host key's fingerprint",
             st.stdout + st.stderr)

        rc, out, err = run_ssh(srv, keys, "return 6 * 7, 'x'")
        T.ok(rc == 0 and out.strip() == "42\tx", "exec: a key listed in "
             "the admin's ssh_keys logs in; the results on stdout, exit 0",
             "rc %r out %r err %r" % (rc, out, err))
        rc, out, err = run_ssh(srv, keys, "print('hello') print('two')")
        T.is_((rc, out), (0, "hello\ntwo\n"), "exec: what print() writes")
        rc, out, err = run_ssh(srv, keys, "error('it broke')")
        T.ok(rc == 1 and "it broke" in err and "it broke" not in out,
             "exec: an error goes to stderr with exit status 1",
             "rc %r out %r err %r" % (rc, out, err))
        rc, out, err = run_ssh(srv, keys, "return (")
        T.ok(rc == 1 and "unexpected symbol" in err or "'<eof>'" in err,
             "exec: a syntax error too", err)
        rc, out, err = run_ssh(srv, keys, "return players()")
        T.ok(rc == 0, "exec: the admin API (players())", err)
        rc, out, err = run_ssh(srv, keys, stdin="local a = 20\n"
                               "print('from stdin')\nreturn a + 1\n")
        T.ok(rc == 0 and "from stdin" in out and "21" in out,
             "a script on stdin (no pty) runs as one chunk",
             "rc %r out %r err %r" % (rc, out, err))
        rc, out, err = run_ssh(srv, keys, stdin="error('script fails')\n")
        T.ok(rc == 1 and "script fails" in err,
             "a failing script on stdin: exit 1", err)
        rc, out, err = run_ssh(srv, keys, "return 'filed'", key="filed")
        T.ok(rc == 0 and "filed" in out, "a key of the ssh_authorized_keys "
             "file logs in", err)
        rc, out, err = run_ssh(srv, keys, "return 'filed'", key="filed",
                               user="pw")
        T.ok(rc == 0, "... as any admin (pw)", err)

        before = len(ssh_log(srv))
        rc, out, err = run_ssh(srv, keys, "return 1", key="other")
        T.ok(rc == 255 and "Permission denied" in err and out == "",
             "a key that is not listed (and one only on a line with "
             "options) is refused", "rc %r err %r" % (rc, err))
        time.sleep(0.3)
        lines = ssh_log(srv)[before:]
        other_fp = fingerprint(keys.other + ".pub")
        T.ok(any("refused root" in l and other_fp in l and "127.0.0.1" in l
                 for l in lines), "the refusal is logged with the key's "
             "fingerprint and the address", "\n".join(lines))
        rc, out, err = run_ssh(srv, keys, "return 1", user="nobody")
        T.ok(rc == 255 and "Permission denied" in err,
             "an unknown user is refused, even with a good key", err)
        T.ok(any("refused nobody" in l and "no such admin" in l
                 for l in ssh_log(srv)), "... and logged")
        rc, out, err = by_password(srv, keys, "return 1", PASSWORD)
        T.ok(rc == 255 and "Permission denied (publickey)" in err,
             "passwords are off by default: only publickey is offered",
             "rc %r err %r" % (rc, err))
        lines = [l for l in ssh_log(srv) if "login admin=root" in l]
        root_fp = fingerprint(keys.root + ".pub")
        T.ok(lines and root_fp in lines[0] and "127.0.0.1" in lines[0],
             "a login is logged with the admin, the address and the key",
             "\n".join(lines[:2]))
        T.ok(any("admin=root" in l and "command: return 6 * 7" in l
                 for l in ssh_log(srv)),
             "every command is logged with the admin's name")

        # The host key stays: a strict check against what was learnt.
        rc1, _, err1 = run_ssh(srv, keys, "return 1", strict=True)
        srv.stop(cleanup=False)
        srv.start()
        rc2, out2, err2 = run_ssh(srv, keys, "return 2", strict=True)
        T.ok(rc1 == 0 and rc2 == 0 and out2.strip() == "2",
             "the host key is the same after a restart (strict known_hosts "
             "check passes)", err1 + err2)
        T.is_(fingerprint(key_file), host_fp, "... the same key file")
    finally:
        srv.stop()


def test_passwords(keys):
    srv = make_server(keys, passwords=True)
    srv.start()
    try:
        def with_password(pw):
            return by_password(srv, keys, "return 'by password'", pw)
        rc, out, err = with_password(PASSWORD)
        T.ok(rc == 0 and "by password" in out, "with ssh_passwords = true "
             "the admin's password logs in", "rc %r err %r" % (rc, err))
        rc, out, err = with_password("wrong")
        T.ok(rc == 255 and "Permission denied" in err,
             "a wrong password is refused", err)
        T.ok(any("refused pw" in l and "wrong password" in l
                 for l in ssh_log(srv)), "... and logged")
        rc, out, err = run_ssh(srv, keys, "return 1")
        T.ok(rc == 0, "keys still work with passwords on", err)
    finally:
        srv.stop()


def test_interactive(keys):
    srv = make_server(keys, "--set", "console_time_slice=30")
    srv.start()
    p = Pty(srv, keys)
    try:
        T.ok(p.read_until("tpserver> ", 20), "a pty session gets the "
             "banner and the prompt", p.since())
        T.ok("admin console over SSH" in p.since() and "help()" in
             p.since(), "the banner names the game and help()")
        p.set_mark()
        p.send("function double(x)\r")
        T.ok(p.read_until("...> "), "a statement left open continues on "
             "the next line", p.since())
        p.set_mark()
        p.send("  return x * 2\r")
        p.read_until("...> ")
        p.set_mark()
        p.send("end\r")
        T.ok(p.read_until("tpserver> "), "... and ends with its end")
        p.set_mark()
        p.send("double(21)\r")
        T.ok(p.read_until("42\r\n"), "the function defined over three "
             "lines works", p.since())
        p.read_until("tpserver> ")
        p.set_mark()
        p.send("error('oops')\r")
        T.ok(p.read_until("oops") and p.read_until("tpserver> "),
             "an error is shown and the session goes on", p.since())
        p.set_mark()
        p.send("\x1b[A\x1b[A\r")
        T.ok(p.read_until("42\r\n"), "Up twice recalls double(21) from "
             "the history", p.since())
        p.read_until("tpserver> ")
        p.set_mark()
        p.send("dou\t")
        T.ok(p.read_until("double"), "Tab completes a name the session "
             "defined", p.since())
        p.send("\x15")          # Ctrl-U: drop the line
        p.read_until("tpserver> ")
        p.set_mark()
        # "1 +", three Backspaces, "2 * 3", Home, Delete, "7": "7 * 3".
        p.send("1 +\x7f\x7f\x7f2 * 3\x01\x1b[3~7\r")
        T.ok(p.read_until("\r\n21\r\n"), "line editing: Backspace, "
             "Home, Delete and insert", p.since())
        p.read_until("tpserver> ")

        # Ctrl-C of an endless loop, which holds the server.
        p.set_mark()
        p.send("while true do end\r")
        time.sleep(0.5 * SLOW)
        p.send("\x03")
        T.ok(p.read_until("interrupted (Ctrl-C)", 20), "Ctrl-C stops an "
             "endless loop that holds the server", p.since())
        T.ok(p.read_until("tpserver> "), "... and the prompt comes back")
        tc.ping_ok(srv, "the server still answers TP clients after it")
        # Ctrl-C of a command that waits without holding the server.
        p.set_mark()
        p.send("sleep(60)\r")
        time.sleep(0.5 * SLOW)
        tc.ping_ok(srv, "TP clients are answered while an SSH command "
                   "waits")
        p.send("\x03")
        T.ok(p.read_until("stopped waiting", 20), "Ctrl-C stops a command "
             "that waits", p.since())
        p.read_until("tpserver> ")
        # Ctrl-C at the prompt drops the line.
        p.set_mark()
        p.send("this is not lua\x03")
        T.ok(p.read_until("^C") and p.read_until("tpserver> "),
             "Ctrl-C at the prompt drops what was typed", p.since())

        # The window size is followed: a 60-character line on 40 columns
        # takes two rows, and Home goes up one.
        p.resize(40, 20)
        time.sleep(0.5 * SLOW)
        p.set_mark()
        p.send("x" * 60)
        p.read_until("x" * 10)
        time.sleep(0.3 * SLOW)
        p.set_mark()
        p.send("\x01")
        T.ok(p.read_until("\x1b[1A"), "after a window change to 40 "
             "columns a long line wraps: Home moves up a row", p.since())
        p.send("\x15\r")
        p.read_until("tpserver> ")
        p.resize(200, 20)
        time.sleep(0.5 * SLOW)
        p.set_mark()
        p.send("y" * 60)
        p.read_until("y" * 10)
        time.sleep(0.3 * SLOW)
        p.set_mark()
        p.send("\x01")
        time.sleep(0.5 * SLOW)
        p.read_until("\x1b[1A", 1)
        T.ok("\x1b[1A" not in p.since(), "on 200 columns the same line "
             "takes one row", p.since())
        p.send("\x15\r")
        p.read_until("tpserver> ")

        p.set_mark()
        p.send("quit()\r")
        T.is_(p.wait(), 0, "quit() leaves with exit status 0")
    finally:
        p.close()

    # History kept per admin: the next session recalls the last command.
    hist = os.path.join(srv.data_dir, "ssh", "history", "root")
    T.ok(os.path.exists(hist), "the history is kept in <data>/ssh/history/")
    p = Pty(srv, keys)
    try:
        p.read_until("tpserver> ", 20)
        p.set_mark()
        p.send("\x1b[A")
        T.ok(p.read_until("quit()"), "a new session recalls the last "
             "session's commands", p.since())
        p.send("\x15")
        p.set_mark()
        p.send("\x04")
        T.is_(p.wait(), 0, "Ctrl-D on an empty line leaves (status 0)")
    finally:
        p.close()
    srv.stop()


def test_limits(keys):
    srv = make_server(keys, "--set", "ssh_max_sessions=2", "--set",
                      "ssh_login_timeout=5", "--set", "ssh_idle_timeout=2")
    srv.start()
    port = srv.ports[SSH_FLAG]
    stuck = []
    try:
        # Two clients that connect and never send: they hold their own
        # threads only.
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", port))
            stuck.append(s)
        time.sleep(0.3)
        with srv.client() as c:
            c.connect()
            t0 = time.time()
            T.ok(c.ping().is_("Okay"), "a TP client is answered while SSH "
                 "clients sit connected without sending")
        rc, out, err = run_ssh(srv, keys, "return 1", timeout=30)
        T.ok(rc == 255, "over ssh_max_sessions a connection is refused",
             "rc %r err %r" % (rc, err))
        T.ok(any("SSH sessions at once" in l for l in ssh_log(srv)),
             "... and logged")
        # The login timeout drops them.
        s = stuck[0]
        s.settimeout(20 * SLOW)
        data = b""
        t0 = time.time()
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                data += d
        except OSError:
            pass
        waited = time.time() - t0
        T.ok(data.startswith(b"SSH-2.0-") and waited < 15 * SLOW,
             "a client that never logs in is dropped after "
             "ssh_login_timeout", "waited %.1f s, got %r" % (waited,
                                                             data[:40]))
        time.sleep(1)
        T.ok(any("key exchange failed" in l or "login timeout" in l
                 for l in ssh_log(srv)), "... with a log line")
        for s in stuck:
            s.close()
        stuck = []
        time.sleep(0.5)
        rc, out, err = run_ssh(srv, keys, "return 'room again'")
        T.ok(rc == 0 and "room again" in out, "once they are gone, logins "
             "work again", err)

        # Idle at the prompt: the session ends.
        p = Pty(srv, keys)
        try:
            p.read_until("tpserver> ", 20)
            p.set_mark()
            T.ok(p.read_until("idle for 2 s", 20), "an idle session is "
                 "told and closed", p.since())
            T.ok(p.wait() is not None, "... the ssh client ends")
        finally:
            p.close()

        # Many keys refused on one connection: it is dropped.
        extra = []
        for i in range(8):
            k = os.path.join(keys.dir, "many_%d" % i)
            if not os.path.exists(k):
                keygen(k)
            extra += ["-i", k]
        cmd = ["ssh", "-p", str(port), "-o", "UserKnownHostsFile=" +
               keys.known, "-o", "StrictHostKeyChecking=no", "-o",
               "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-F",
               "/dev/null"] + extra + ["root@127.0.0.1", "return 1"]
        p2 = subprocess.run(cmd, capture_output=True, timeout=60 * SLOW)
        T.ok(p2.returncode == 255, "eight unknown keys are refused")
        time.sleep(0.5)
        T.ok(any("too many refused" in l for l in ssh_log(srv)),
             "the connection is dropped after 6 refused attempts",
             "\n".join(ssh_log(srv)[-12:]))
    finally:
        for s in stuck:
            s.close()
        srv.stop()


def test_admin_removed(keys):
    """An admin dropped from `admins` at a reload is logged out; the key
    file's edits apply at the next login without a reload."""
    srv = make_server(keys)
    srv.start()
    p = Pty(srv, keys)
    try:
        T.ok(p.read_until("tpserver> ", 20), "a session as root")
        conf = srv.extra[-1]
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("{ name = 'root'", "{ name = 'gone'"))
        p.set_mark()
        srv.signal(signal.SIGHUP)
        T.ok(p.read_until("no longer an admin", 20), "root dropped from "
             "admins at a reload: the session ends", p.since())
        T.ok(p.wait() is not None, "... and the ssh client with it")
        rc, out, err = run_ssh(srv, keys, "return 1")
        T.ok(rc == 255, "root's key no longer logs in", err)
        with open(os.path.join(srv.tmp, "authorized_keys"), "w") as f:
            f.write("")
        rc, out, err = run_ssh(srv, keys, "return 1", key="filed",
                               user="pw")
        T.ok(rc == 255, "a key taken out of ssh_authorized_keys no longer "
             "logs in (the file is read at each login)", err)
    finally:
        p.close()
        srv.stop()


def test_listeners_entry(keys):
    """An ssh entry in listeners; and no SSH without one."""
    port = tplib.free_port()
    srv = tc.Server("--ruleset", tc.TINY)
    conf = os.path.join(srv.tmp, "l.lua")
    with open(conf, "w") as f:
        f.write("return { listeners = { { kind = 'tp', port = %d }, "
                "{ kind = 'ssh', host = '127.0.0.1', port = %d } }, "
                "admins = { { name = 'root', ssh_keys = { %r } } } }\n" %
                (tplib.free_port(), port, keys.root_pub))
    srv.extra += ["-c", conf]
    srv.start()
    try:
        srv.ports[SSH_FLAG] = port
        rc, out, err = run_ssh(srv, keys, "return 'from listeners'")
        T.ok(rc == 0 and "from listeners" in out, "listeners = { { kind = "
             "'ssh', ... } } opens the SSH console", err)
    finally:
        srv.stop()
    srv = tc.Server("--ruleset", tc.TINY)
    srv.start()
    try:
        T.ok(not any(" ssh: " in l for l in srv.log().splitlines()),
             "without ssh_port there is no SSH listener")
    finally:
        srv.stop()


def main():
    import tempfile
    folder = tempfile.mkdtemp(prefix="tpserver-ssh-keys-")
    keys = Keys(folder)
    T.run(lambda: test_logins_and_exec(keys),
          lambda: test_passwords(keys),
          lambda: test_interactive(keys),
          lambda: test_limits(keys),
          lambda: test_admin_removed(keys),
          lambda: test_listeners_entry(keys))
    T.done()


if __name__ == "__main__":
    main()
