#!/usr/bin/env python3
"""The systemd template unit packaging/tpserver@.service (README "Many
games on one host"): systemd-analyze verify accepts it; its ExecStart,
with the instance and the prefix put in and the system folders moved
under a temporary one, is a command line the server takes
(--check-config); two games started by it run side by side on their own
ports and data directories, each listed under its own name
(TPSERVER_GAME from the unit's Environment); its pid file and log paths
are the ones --status finds; make install installs it."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402

T = tplib.Tap.current or tplib.Tap()
UNIT = os.path.join(tplib.ROOT, "packaging", "tpserver@.service")


def unit_lines():
    """The unit's key=value lines, continuation lines joined."""
    with open(UNIT) as f:
        text = f.read().replace("\\\n", " ")
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def command(root, name, extra=()):
    """ExecStart for instance name, the system folders under root."""
    line = unit_lines()["ExecStart"][0].replace("%i", name)
    line = line.replace("@PREFIX@/bin/tpserver", tplib.tpserver_path())
    for d in ("/etc/tpserver", "/var/lib/tpserver", "/run/tpserver",
              "/var/log/tpserver"):
        line = line.replace(d, root + d)
    return line.split() + list(extra)


def environment(name):
    env = dict(os.environ)
    for e in unit_lines().get("Environment", []):
        k, v = e.replace("%i", name).split("=", 1)
        env[k] = v
    return env


def prepare(root, name, port, web_port):
    """What systemd and the admin make before a start: the folders
    (StateDirectory, RuntimeDirectory, LogsDirectory) and the game's
    configuration, as the README's commands write it."""
    u = unit_lines()
    for key, base in (("StateDirectory", "/var/lib"),
                      ("RuntimeDirectory", "/run"),
                      ("LogsDirectory", "/var/log")):
        os.makedirs(root + base + "/" + u[key][0].replace("%i", name),
                    exist_ok=True)
    os.makedirs(root + "/etc/tpserver", exist_ok=True)
    with open(root + "/etc/tpserver/%s.lua" % name, "w") as f:
        f.write('return {\n    port = %d,\n    web_port = %d,\n'
                '    password_iterations = 1000,\n}\n' % (port, web_port))


def test_verify():
    tool = shutil.which("systemd-analyze")
    if not tool:
        T.skip("systemd-analyze verify", "systemd-analyze is not installed")
        return
    d = tempfile.mkdtemp(prefix="tpserver-unit-")
    try:
        path = os.path.join(d, "tpserver@.service")
        with open(UNIT) as f:
            text = f.read().replace("@PREFIX@/bin/tpserver",
                                    tplib.tpserver_path())
        with open(path, "w") as f:
            f.write(text)
        inst = os.path.join(d, "tpserver@alpha.service")
        os.symlink(path, inst)
        # --man=no: the man page is not installed here.
        r = subprocess.run([tool, "verify", "--man=no", inst],
                           capture_output=True, text=True, timeout=60)
        bad = [ln for ln in r.stderr.splitlines() if "tpserver@" in ln]
        T.ok(r.returncode == 0 and not bad, "systemd-analyze verify finds "
             "nothing wrong in the unit", r.stderr)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_two_games():
    root = tempfile.mkdtemp(prefix="tpserver-games-")
    started = []
    try:
        ports = {}
        for name in ("alpha", "beta"):
            ports[name] = (tplib.free_port(), tplib.free_port())
            prepare(root, name, *ports[name])
            r = subprocess.run(command(root, name, ["--check-config"]),
                               env=environment(name), capture_output=True,
                               text=True, timeout=60)
            out = r.stdout
            T.ok(r.returncode == 0, "%s: the unit's ExecStart passes "
                 "--check-config" % name, r.stderr + out[-500:])
            T.ok(('data = "%s/var/lib/tpserver/%s"' % (root, name)) in out
                 and ('pid_file = "%s/run/tpserver/%s/tpserver.pid"'
                      % (root, name)) in out and
                 ('log_file = "%s/var/log/tpserver/%s.log"' % (root, name))
                 in out, "%s: data, pid file and log file of its own"
                 % name, out[-3000:])
            T.ok(('game_name = "%s"' % name) in out and
                 ('game_longname = "Thousand Parsec game %s"' % name) in out,
                 "%s: listed under its own name by default" % name,
                 out[-3000:])
        for name in ("alpha", "beta"):
            r = subprocess.run(command(root, name), env=environment(name),
                               capture_output=True, text=True, timeout=60)
            T.ok(r.returncode == 0, "%s: started as the unit starts it "
                 "(Type=forking)" % name, r.stderr)
            if r.returncode == 0:
                started.append(name)
        for name in started:
            c = tplib.Client(ports[name][0])
            f = c.connect()
            T.ok(f.is_("Okay"), "%s answers on its own port" % name,
                 repr(f))
            games = c.request("GetGames")
            T.ok(len(games) == 2 and games[1]["name"] == name,
                 "%s: the Game frame names it" % name, repr(games))
            c.close()
            st = subprocess.run(command(root, name, ["--status"]),
                                env=environment(name), capture_output=True,
                                text=True, timeout=60)
            T.ok(st.returncode == 0, "%s: --status through the unit's "
                 "pid file" % name, st.stdout + st.stderr)
    finally:
        for name in started:
            r = subprocess.run(command(root, name, ["--stop"]),
                               env=environment(name), capture_output=True,
                               text=True, timeout=60)
            T.ok(r.returncode == 0, "%s: --stop" % name, r.stderr)
        shutil.rmtree(root, ignore_errors=True)


def test_installed():
    dest = tempfile.mkdtemp(prefix="tpserver-install-")
    try:
        r = subprocess.run(["make", "-n", "install", "DESTDIR=" + dest,
                            "PREFIX=/usr"], cwd=tplib.ROOT,
                           capture_output=True, text=True, timeout=120)
        T.ok(r.returncode == 0 and
             re.search(r"packaging/tpserver@\.service.*\n.*"
                       r"/usr/lib/systemd/system/tpserver@\.service",
                       r.stdout) is not None,
             "make install puts tpserver@.service next to tpserver.service",
             r.stdout[-1500:])
    finally:
        shutil.rmtree(dest, ignore_errors=True)


tplib.main(test_verify, test_two_games, test_installed)
