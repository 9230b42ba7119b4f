#!/usr/bin/env python3
"""Running as a service: the daemon (detaching, pid file, refusing a second
instance, --status, --stop, --stats), start-up errors on the terminal, the
log sinks (stderr, file reopened on SIGHUP, syslog), reloading the
configuration on SIGHUP, systemd notification, and SIGTERM under load."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402

T = tplib.Tap()


def wait_for(pred, timeout=10.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


def metric(text, name, labels=""):
    """The value of one sample in Prometheus text, or None."""
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)),
                  text, re.M)
    return float(m.group(1)) if m else None


def session(port, pings=0):
    with tplib.Client(port) as c:
        check = c.connect()
        for _ in range(pings):
            check = c.ping()
        return check


def test_daemon():
    d = tplib.Daemon()
    try:
        t0 = time.monotonic()
        res = d.start()
        T.is_(res.returncode, 0, "daemon start: the command returns 0 "
              "(%.1f s)" % (time.monotonic() - t0))
        if res.returncode != 0:
            T.diag(res.stderr)
            return
        pid = d.pid()
        T.ok(pid and tplib.process_alive(pid), "the pid file names a live "
             "process (%s)" % pid)
        T.ok("running as a daemon, pid %d" % pid in res.stderr,
             "the terminal is told the pid and the log file",
             res.stderr)
        T.is_(os.path.realpath("/proc/%d/exe" % pid),
              os.path.realpath(tplib.tpserver_path()),
              "... and that process is tpserver")
        T.ok(os.getsid(pid) != os.getsid(0) and os.getsid(pid) != pid,
             "it runs in a session of its own and is not its leader")
        T.is_(os.readlink("/proc/%d/cwd" % pid), "/", "its folder is /")
        T.is_([os.readlink("/proc/%d/fd/%d" % (pid, fd)) for fd in range(3)],
              ["/dev/null"] * 3, "stdin, stdout, stderr are /dev/null")
        f = session(d.port, pings=3)
        T.ok(f.is_("Okay"), "it answers TP (Connect, 3 Pings)", repr(f))
        # A Login before Connect: a Protocol Fail, to count.
        with tplib.Client(d.port) as c:
            fl = c.call("Login", {"username": "x", "password": "y"})
            T.ok(fl.is_("Fail"), "a request out of order gets a Fail")

        T.ok(wait_for(lambda: "started" in d.log() and
                      "pid=%d" % pid in d.log()),
             "the default log file <data>/tpserver.log has the start line "
             "with the pid", d.log()[-2000:])

        # A second instance: same data directory and pid file.
        res2 = d.run()
        T.ok(res2.returncode != 0 and "already running" in res2.stderr and
             "pid %d" % pid in res2.stderr, "a second start is refused, "
             "naming the running pid", res2.stderr)
        # Another pid file, same data directory.
        other = os.path.join(d.tmp, "other.pid")
        res3 = d.run("--pid-file", other)
        T.ok(res3.returncode != 0 and "data directory" in res3.stderr and
             "in use" in res3.stderr and "pid %d" % pid in res3.stderr,
             "another pid file on the same data directory is refused too",
             res3.stderr)
        T.ok(not os.path.exists(other), "... and leaves no pid file")
        # Another data directory, same pid file.
        res4 = tplib.Daemon("--pid-file", d.pid_file).run()
        T.ok(res4.returncode != 0 and "already running" in res4.stderr,
             "another data directory with the same pid file is refused",
             res4.stderr)
        T.ok(tplib.process_alive(pid) and d.pid() == pid,
             "the first server still runs and owns its pid file")

        st = d.run("--status")
        T.ok(st.returncode == 0 and "running (pid %d" % pid in st.stdout,
             "--status: running, with the pid, exit 0", st.stdout)

        stats = d.run("--stats")
        text = stats.stdout
        T.is_(stats.returncode, 0, "--stats exits 0")
        T.ok(metric(text, "tpserver_frames_received_total",
                    '{type="Ping"}') == 3.0,
             "--stats: 3 Pings received", text[:3000])
        T.is_(metric(text, "tpserver_frames_received_total",
                     '{type="Connect"}'), 1.0, "--stats: 1 Connect")
        T.is_(metric(text, "tpserver_fails_sent_total",
                     '{code="Protocol"}'), 1.0,
              "--stats: 1 Fail with code Protocol")
        T.is_(metric(text, "tpserver_frames_sent_total", '{type="Okay"}'),
              4.0, "--stats: 4 Okay frames sent")
        T.is_(metric(text, "tpserver_connections_accepted_total",
                     '{address="127.0.0.1:%d",kind="tp"}' % d.port), 2.0,
              "--stats: 2 connections accepted on the listener")
        T.is_(metric(text, "tpserver_request_duration_seconds_count"), 5.0,
              "--stats: 5 requests in the latency histogram")
        T.ok((metric(text, "tpserver_received_bytes_total") or 0) > 0 and
             (metric(text, "tpserver_sent_bytes_total") or 0) > 0,
             "--stats: bytes in and out counted")
        T.ok((metric(text, "tpserver_lua_memory_bytes") or 0) > 100000 and
             (metric(text, "tpserver_leveldb_size_bytes") or 0) > 0 and
             metric(text, "tpserver_turn") == 0.0,
             "--stats: Lua memory, LevelDB size, turn")

        # logrotate: move the log away, HUP, new lines go to a new file.
        os.rename(d.log_path, d.log_path + ".1")
        os.kill(pid, signal.SIGHUP)
        T.ok(wait_for(lambda: os.path.exists(d.log_path)),
             "SIGHUP: the log file is created again at its path")
        session(d.port)
        T.ok(wait_for(lambda: "conn=3 " in d.log()),
             "new lines go to the new file", d.log())
        with open(d.log_path + ".1") as fh:
            old = fh.read()
        T.ok("conn=3 " not in old and "conn=1 " in old,
             "the moved file keeps the old lines only")

        t0 = time.monotonic()
        stop = d.stop()
        T.ok(stop.returncode == 0 and "stopped (pid %d)" % pid in stop.stdout,
             "--stop: exit 0 after %.1f s" % (time.monotonic() - t0),
             stop.stdout + stop.stderr)
        T.ok(tplib.wait_gone(pid, 10), "the process is gone")
        T.ok(not os.path.exists(d.pid_file), "the pid file is gone")
        log = d.log()
        T.ok("database closed" in log and
             "stopped pid=%d status=0" % pid in log,
             "the log ends with 'database closed' and a clean stop",
             log[-1500:])
        st = d.run("--status")
        T.ok(st.returncode == 3 and "not running" in st.stdout,
             "--status afterwards: not running, exit 3", st.stdout)
        st = d.run("--stop")
        T.is_(st.returncode, 0, "--stop when not running: exit 0")
        reports = d.asan_reports()
        T.ok(not reports, "no sanitizer reports from the daemon",
             "\n".join(reports)[:4000])
    finally:
        d.kill()


def test_start_errors():
    d = tplib.Daemon()
    try:
        cfg = os.path.join(d.tmp, "bad.lua")
        with open(cfg, "w") as f:
            f.write("return { prot = 6923 }\n")
        res = d.run("-c", cfg)
        T.ok(res.returncode != 0 and "'prot'" in res.stderr,
             "a bad configuration key fails the start, naming the key",
             res.stderr)
        res = d.run("--set", "turn_length=soon")
        T.ok(res.returncode != 0 and "'turn_length'" in res.stderr,
             "a wrong type fails the start, naming the key", res.stderr)
        res = d.run("--set", "log_file=" + os.path.join(d.tmp, "no", "x"))
        T.ok(res.returncode != 0 and "cannot open log file" in res.stderr,
             "an unwritable log file fails the start", res.stderr)
        T.ok(not os.path.exists(d.pid_file), "... and leaves no pid file")

        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        try:
            res = tplib.Daemon(data_dir=d.data_dir).run(
                "--port", str(busy.getsockname()[1]))
        finally:
            busy.close()
        T.ok(res.returncode != 0 and "cannot listen" in res.stderr,
             "a port in use fails the start on the terminal", res.stderr)
        T.ok("choose another: start with --port N, or set port = N" in
             res.stderr and "--set port=N" in res.stderr and
             "make run PORT=N" in res.stderr, "... and says how to choose "
             "another port (flag, tpserver.lua key, make run)", res.stderr)
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        try:
            res = tplib.Daemon(data_dir=d.data_dir).run(
                "--web-port", str(busy.getsockname()[1]))
        finally:
            busy.close()
        T.ok(res.returncode != 0 and "(web)" in res.stderr and
             "start with --web-port N, or set web_port = N" in res.stderr
             and "make run WEB_PORT=N" in res.stderr,
             "a web port in use: the message names --web-port and web_port",
             res.stderr)
        T.ok(not os.path.exists(d.pid_file), "... and the pid file is "
             "removed")

        # A stale pid file (a crashed server): --status says so, a start
        # replaces it.
        os.makedirs(d.data_dir, exist_ok=True)
        with open(d.pid_file, "w") as f:
            f.write("999999\n")
        st = d.run("--status")
        T.ok(st.returncode == 1 and "did not stop cleanly" in st.stdout,
             "--status with a stale pid file: exit 1", st.stdout)
        res = d.start()
        T.is_(res.returncode, 0, "a start over a stale pid file succeeds")
        T.ok(d.pid() and d.pid() != 999999 and d.alive(),
             "... and the pid file names the new server")
        res = d.run("--check-config")
        T.ok(res.returncode == 0 and
             'pid_file = "%s"' % d.pid_file in res.stdout and
             'log_file = "%s"' % d.log_path in res.stdout,
             "--check-config prints the effective configuration",
             res.stdout[-1500:])
        stop = d.stop()
        T.is_(stop.returncode, 0, "--stop")
    finally:
        d.kill()


def test_daemon_relative_paths():
    """A daemon leaves its folder: a relative -c and log_file still work,
    also for a reload."""
    d = tplib.Daemon("-c", "conf.lua", "--set", "log_file=rel.log")
    try:
        conf = os.path.join(d.tmp, "conf.lua")
        with open(conf, "w") as f:
            f.write('return { game_comment = "one" }\n')
        res = d.start()
        T.is_(res.returncode, 0, "daemon with a relative -c and log_file")
        log_path = os.path.join(d.tmp, "rel.log")
        with open(conf + ".new", "w") as f:
            f.write('return { game_comment = "two" }\n')
        os.rename(conf + ".new", conf)
        os.kill(d.pid(), signal.SIGHUP)

        def log():
            try:
                with open(log_path) as fh:
                    return fh.read()
            except OSError:
                return ""
        T.ok(wait_for(lambda: "config: reloaded changed=game_comment" in
                      log()), "SIGHUP: the relative -c is read again and "
             "the relative log file written", log()[-1500:])
        with tplib.Client(d.port) as c:
            c.connect()
            games = c.request("GetGames")
            T.is_([p["strval"] for p in games[1]["parameters"]
                   if p["id"] == 5], ["two"], "the new game_comment is "
                  "served")
        T.is_(d.stop().returncode, 0, "--stop with the relative -c")
        T.ok(not d.asan_reports(), "no sanitizer reports")
    finally:
        d.kill()


def test_game_stats():
    """Counters kept by Lua (logins, turn time) and deferred requests in
    the latency histogram, read with --stats from a foreground server."""
    with tplib.Server() as srv:
        name = tplib.unique_name("st")
        with srv.client() as c, srv.client() as bad:
            c.connect()
            c.create_account(name, "pw")
            T.ok(c.login(name, "pw").is_("Okay"), "logged in")
            bad.connect()
            T.ok(bad.login(name, "nope").is_("Fail"), "a failed login")
            T.ok(c.call("FinishedTurn").is_("Okay"), "FinishedTurn (the "
                 "only player: the turn ends)")
            res = subprocess.run(
                [tplib.tpserver_path(), "--data", srv.data_dir, "--stats"],
                cwd=srv.tmp, capture_output=True, text=True, timeout=30)
            text = res.stdout
            T.is_(res.returncode, 0, "--stats on a foreground server")
            T.is_(metric(text, "tpserver_turn"), 1.0, "turn 1")
            T.is_(metric(text, "tpserver_turn_duration_seconds_count"), 1.0,
                  "one turn in the turn time histogram")
            T.is_([metric(text, "tpserver_logins_total", '{result="%s"}' % r)
                   for r in ("ok", "failed")], [1.0, 1.0],
                  "logins: 1 ok, 1 failed")
            T.is_(metric(text, "tpserver_players_logged_in"), 1.0,
                  "one player logged in")
            T.is_(metric(text, "tpserver_request_duration_seconds_count"),
                  6.0, "6 requests timed, the 3 deferred ones (hashing) "
                  "included")
            T.ok(re.search(r"info +turn: turn ending reason=all turn=0$",
                           srv.log(), re.M) and
                 re.search(r"info +turn: turn started processing_ms=\S+ "
                           r"records=\d+ turn=1$", srv.log(), re.M),
                 "turn end and start logged with key=value fields",
                 srv.log_tail(8))
            T.ok(re.search(r"info +session: login failed conn=\d+ name=%s "
                           r"peer=127\.0\.0\.1:\d+$" % name, srv.log(),
                           re.M), "the failed login is logged")


def test_sinks():
    tmp = tempfile.mkdtemp(prefix="tpserver-sinks-")
    sock_path = os.path.join(tmp, "log.sock")
    sl = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sl.bind(sock_path)
    sl.settimeout(10)
    log_file = os.path.join(tmp, "server.log")
    srv = tplib.Server("--set", "log_syslog=true",
                       "--set", "log_syslog_socket=" + sock_path,
                       "--set", "log_syslog_facility=local3",
                       "--set", "log_syslog_ident=tptest",
                       "--set", "log_file=" + log_file)
    try:
        srv.start()
        session(srv.port)
        got = []
        try:
            while True:
                msg = sl.recv(4096).decode("utf-8", "replace")
                got.append(msg)
                if "logged" in msg or "session: " in msg:
                    break
        except socket.timeout:
            pass
        pat = re.compile(r"^<158>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d "
                         r"tptest\[%d\]: info +net: listening on tp "
                         r"127\.0\.0\.1:%d$" % (srv.pid, srv.port))
        T.ok(any(pat.match(m) for m in got),
             "syslog: '<local3.info>TIME tptest[pid]: info net: listening "
             "on ...' on the socket", "\n".join(got[:10]))
        T.ok(any("accepted on tp" in m for m in got),
             "syslog: the connection is logged", "\n".join(got[:10]))
        with open(log_file) as f:
            text = f.read()
        T.ok("net: listening on tp 127.0.0.1:%d" % srv.port in text and
             "accepted on tp" in text, "file sink: the same lines",
             text[-1000:])
        T.ok(re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info +net: "
                       r"conn=1 peer=127\.0\.0\.1:\d+ accepted", text, re.M),
             "file lines: time, level, module, key=value fields")
        T.ok("accepted on tp" in srv.log(), "stderr sink: the same lines "
             "(on with -f by default)")
        T.is_(srv.stop(), 0, "exit 0")
    finally:
        sl.close()
        srv.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    # stderr off: nothing in the logger's format on stderr.
    srv = tplib.Server("--set", "log_stderr=false")
    with srv:
        session(srv.port)
        lines = [ln for ln in srv.log().splitlines()
                 if re.match(r"^\d{4}-\d\d-\d\dT", ln)]
        T.ok(not lines, "log_stderr=false: no log lines on stderr",
             "\n".join(lines[:5]))


def test_reload():
    tmp = tempfile.mkdtemp(prefix="tpserver-reload-")
    cfg = os.path.join(tmp, "conf.lua")

    def write(text):
        with open(cfg + ".new", "w") as f:
            f.write(text)
        os.rename(cfg + ".new", cfg)

    write('return { game_comment = "one", log_level = "info" }\n')
    srv = tplib.Server("-c", cfg)
    try:
        srv.start()

        def comment():
            with srv.client() as c:
                c.connect()
                games = c.request("GetGames")
                params = games[1]["parameters"]
                return [p["strval"] for p in params if p["id"] == 5]

        T.is_(comment(), ["one"], "game_comment from the file")
        T.ok("protocol TP04" not in srv.log(), "no debug lines at info")
        write('return { game_comment = "two", log_level = "debug", '
              'max_frame_size = 65536 }\n')
        srv.signal(signal.SIGHUP)
        T.ok(wait_for(lambda: "config: reloaded" in srv.log()),
             "SIGHUP: 'config: reloaded' logged", srv.log_tail(10))
        log = srv.log()
        T.ok(re.search(r"config: reloaded changed=game_comment,log_level "
                       r"file=\S+conf\.lua restart_needed=max_frame_size",
                       log), "the reload line names what changed and what "
             "needs a restart", srv.log_tail(10))
        T.ok(re.search(r"warning +config: key=max_frame_size changed in the "
                       r"file, but only a restart applies it", log),
             "a key that cannot change live is logged as a warning")
        T.is_(comment(), ["two"], "game_comment changed live")
        T.ok(wait_for(lambda: "protocol TP04" in srv.log()),
             "log_level changed live (debug lines appear)")

        write('return { bogus = 1 }\n')
        srv.signal(signal.SIGHUP)
        T.ok(wait_for(lambda: "unknown configuration key 'bogus'" in
                      srv.log()), "a bad file on reload is logged, naming "
             "the key", srv.log_tail(5))
        T.ok(session(srv.port).is_("Okay"), "... and the server goes on "
             "with its running configuration")
        T.is_(comment(), ["two"], "... unchanged")
        T.is_(srv.stop(), 0, "exit 0")
    finally:
        srv.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def test_notify():
    tmp = tempfile.mkdtemp(prefix="tpserver-notify-")
    path = os.path.join(tmp, "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    ns.settimeout(30)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        srv = tplib.Server().start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        T.is_(ns.recv(256), b"READY=1", "sd_notify: READY=1 once serving")
        srv.signal(signal.SIGHUP)
        T.is_([ns.recv(256), ns.recv(256)], [b"RELOADING=1", b"READY=1"],
              "sd_notify: RELOADING=1 then READY=1 on SIGHUP")
        srv.signal(signal.SIGTERM)
        T.is_(ns.recv(256), b"STOPPING=1", "sd_notify: STOPPING=1 on "
              "SIGTERM")
        T.is_(srv.wait(), 0, "exit 0")
    finally:
        ns.close()
        srv.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def test_term_under_load():
    """Clients create accounts (hashing off the loop) and ping while the
    server gets SIGTERM: it exits 0, and every account acknowledged with
    Okay is there after a restart."""
    srv = tplib.Server().start()
    acked = []
    errors = []
    lock = threading.Lock()
    prefix = tplib.unique_name("load")
    stop_at = threading.Event()

    def worker(i):
        n = 0
        try:
            with srv.client(timeout=30) as c:
                c.connect()
                while not stop_at.is_set() or n < 50:
                    name = "%s_%d_%d" % (prefix, i, n)
                    f = c.create_account(name, "pw")
                    if f.is_("Okay"):
                        with lock:
                            acked.append(name)
                    else:
                        with lock:
                            errors.append(repr(f))
                    c.ping()
                    n += 1
        except (tplib.Closed, ConnectionError, OSError):
            pass     # the server closed the connection: expected
        except Exception as e:
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(12)]
    for th in threads:
        th.start()
    wait_for(lambda: len(acked) >= 40, timeout=30)
    srv.signal(signal.SIGTERM)
    stop_at.set()
    rc = srv.wait()
    for th in threads:
        th.join(30)
    T.is_(rc, 0, "SIGTERM under load: exit 0 (%d accounts acknowledged)" %
          len(acked))
    T.ok(not errors, "every reply before the close was complete and Okay",
         "\n".join(errors[:5]))
    T.ok("database closed" in srv.log(), "the database was closed")
    again = tplib.Server(data_dir=srv.data_dir).start()
    try:
        missing = []
        with again.client(timeout=30) as c:
            c.connect()
        for name in acked:
            with again.client(timeout=30) as c:
                c.connect()
                if not c.login(name, "pw").is_("Okay"):
                    missing.append(name)
        T.ok(not missing, "all %d acknowledged accounts log in after a "
             "restart" % len(acked), ", ".join(missing[:10]))
        T.is_(again.stop(cleanup=False), 0, "second server: exit 0")
    finally:
        again.kill()
        srv.cleanup()


def test_fatal_signal():
    """A server that dies of a fatal signal says so, with what it was doing
    and its C stack, on stderr and in its log file, and dies of that
    signal; started again, the game is there."""
    if tplib.under_asan():
        T.skip("fatal signal report", "sanitizer builds leave fatal "
               "signals to the sanitizer")
        return
    srv = tplib.Server()
    logfile = os.path.join(srv.tmp, "fatal.log")
    srv.extra += ["--set", "log_file=" + logfile]
    srv.start()
    try:
        with srv.client() as c:
            c.connect()
            T.ok(c.create_account("crash", "pw").is_("Okay"),
                 "an account is made before the crash")
        subprocess.run([tplib.tpserver_path(), "console", "--data",
                        srv.data_dir, "-e",
                        'return require("ffi").cast("int *", 24)[0]'],
                       capture_output=True, timeout=30)
        rc = srv.wait(15)
        T.is_(rc, -signal.SIGSEGV, "the server dies of SIGSEGV")
        stderr = srv.log()
        line = [x for x in stderr.splitlines() if "fatal SIGSEGV" in x]
        T.ok(line and "address=0x18" in line[0] and "phase=serve" in line[0],
             "stderr names the signal, the address and the phase",
             stderr[-800:])
        T.ok(re.search(r"fatal SIGSEGV.*\n.*tpserver", stderr) is not None,
             "and the C stack follows", stderr[-800:])
        with open(logfile) as f:
            T.ok("fatal SIGSEGV" in f.read(), "the log file has it too")
        srv.start()
        with srv.client() as c:
            c.connect()
            T.ok(c.login("crash", "pw").is_("Okay"),
                 "started again, the acknowledged account is there")
    finally:
        srv.stop()


def test_jit_setting():
    """The trace compiler is off unless the configuration turns it on."""
    for flag, want in ((None, "false"), ("jit=true", "true")):
        srv = tplib.Server(*(["--set", flag] if flag else []))
        srv.start()
        try:
            r = subprocess.run([tplib.tpserver_path(), "console", "--data",
                                srv.data_dir, "-e",
                                "return tostring((require('jit').status()))"],
                               capture_output=True, text=True, timeout=30)
            T.ok(want in r.stdout, "jit %s: the trace compiler is %s" %
                 (flag or "by default", "on" if want == "true" else "off"),
                 r.stdout + r.stderr)
        finally:
            srv.stop()


def test_pid_file_elsewhere():
    """The systemd unit's layout: the pid file outside the data directory
    (/run/tpserver). --status and --stop given only --data find the server
    through the data directory's lock, which holds its pid."""
    d = tplib.Daemon()
    try:
        run_dir = os.path.join(d.tmp, "run")
        os.makedirs(run_dir)
        pid_file = os.path.join(run_dir, "tpserver.pid")
        res = d.start("--pid-file", pid_file)
        T.is_(res.returncode, 0, "a daemon with its pid file elsewhere")
        if res.returncode != 0:
            T.diag(res.stderr)
            return
        with open(pid_file) as f:
            pid = int(f.read())
        d.started_pid = pid
        T.ok(not os.path.exists(d.pid_file), "no pid file in the data "
             "directory")
        lock = os.path.join(d.data_dir, "tpserver.lock")
        st = d.run("--status")
        T.ok(st.returncode == 0 and "running (pid %d" % pid in st.stdout and
             lock in st.stdout, "--status with --data only: running, the "
             "pid, found by the data directory lock, exit 0", st.stdout)
        st = d.run("--status", "--pid-file", pid_file)
        T.ok(st.returncode == 0 and "running (pid %d, pid file %s)" %
             (pid, pid_file) in st.stdout, "--status with the pid file: "
             "found by it", st.stdout)
        t0 = time.monotonic()
        stop = d.stop()
        gone = not tplib.process_alive(pid)
        T.ok(stop.returncode == 0 and "stopped (pid %d)" % pid in
             stop.stdout and gone, "--stop with --data only stops it, exit 0 "
             "(%.1f s)" % (time.monotonic() - t0), stop.stdout + stop.stderr)
        T.ok(not os.path.exists(pid_file), "... its pid file is gone")
        st = d.run("--status")
        T.ok(st.returncode == 3 and "not running" in st.stdout,
             "--status afterwards: not running, exit 3 (the lock file "
             "stays, unlocked)", st.stdout)
        st = d.run("--stop")
        T.ok(st.returncode == 0 and "not running" in st.stdout,
             "--stop when not running: exit 0", st.stdout)

        # A data directory whose lock cannot be read: --stop must not say
        # "not running" with success (the server may well run).
        if os.geteuid() != 0:
            os.chmod(d.data_dir, 0)
            try:
                st = d.run("--stop")
            finally:
                os.chmod(d.data_dir, 0o700)
            T.ok(st.returncode == 4 and "cannot read" in st.stderr,
                 "--stop that cannot read the lock: exit 4", st.stderr)
        else:
            T.skip("--stop that cannot read the lock", "root reads all")
    finally:
        d.kill()


def test_check_config_paths_and_settings():
    """--check-config: ruleset settings checked as a start checks them,
    and paths printed absolute and normalised."""
    d = tplib.Daemon()
    try:
        res = d.run("--check-config", "--set", "ruleset_settings.seed=7")
        want = "has no setting 'seed'"
        T.ok(res.returncode != 0 and want in res.stderr, "--check-config "
             "refuses ruleset_settings.seed=7, naming it", res.stderr)
        start = d.run("--set", "ruleset_settings.seed=7")
        T.ok(start.returncode != 0 and want in start.stderr, "... as the "
             "start does, with the same message", start.stderr)
        conf = os.path.join(d.tmp, "conf.lua")
        with open(conf, "w") as f:
            f.write('return { log_file = "logs//x/../tp.log" }\n')
        res = subprocess.run(
            [tplib.tpserver_path(), "--check-config", "-c", ".//conf.lua",
             "--data", "./a//b/../data/"], cwd=d.tmp, capture_output=True,
            text=True, timeout=60)
        data = os.path.join(d.tmp, "a", "data")
        T.ok(res.returncode == 0 and
             "-- configuration: %s\n" % conf in res.stdout and
             'data = "%s",' % data in res.stdout and
             'pid_file = "%s/tpserver.pid",' % data in res.stdout and
             'log_file = "%s/logs/tp.log",' % d.tmp in res.stdout,
             "--check-config prints the paths absolute, without ./, // or "
             "x/..", res.stdout[:3000] + res.stderr)
    finally:
        d.kill()


tplib.main(test_daemon, test_start_errors, test_daemon_relative_paths,
           test_game_stats, test_sinks, test_reload,
           test_notify, test_term_under_load, test_fatal_signal,
           test_jit_setting, test_pid_file_elsewhere,
           test_check_config_paths_and_settings)
