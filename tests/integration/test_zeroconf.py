#!/usr/bin/env python3
"""Zeroconf (README "Being found"; lua/tp/zeroconf.lua, core/avahi.c)
against a real avahi-daemon, started by this test in a network and mount
namespace of its own (unshare -n -m: loopback up with multicast on, a
tmpfs on /run), on a private D-Bus system bus (dbus-daemon with its own
configuration; DBUS_SYSTEM_BUS_ADDRESS points at it), with
allow-interfaces=lo. avahi-browse (avahi-utils) reads what is published.

Checks the services (one per listener: _tp._tcp, _tps._tcp, _http._tcp),
their ports and TXT values, the TXT updated when a player joins and when a
turn ends, a listener on a loopback address left out, a name collision
taking Avahi's alternative name, the server surviving avahi-daemon being
killed and publishing again when it is back, a server started before the
daemon, the services withdrawn at a stop, and `tpserver find`.

Needs root (or user namespaces) for unshare; the packages come from
`make deps` (avahi-daemon, avahi-utils, dbus-daemon, iproute2)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_protocol import Player, check_okay  # noqa: E402

MARK = "TPSERVER_ZEROCONF_NS"

if not os.environ.get(MARK):
    # Into namespaces of our own: nothing here touches the machine's
    # network, its D-Bus or its avahi-daemon.
    os.environ[MARK] = "1"
    unshare = shutil.which("unshare")
    if not unshare:
        print("not ok 1 - unshare (util-linux) is missing: run make deps")
        print("1..1")
        sys.exit(1)
    try:
        os.execv(unshare, [unshare, "-n", "-m", "--", sys.executable,
                           os.path.abspath(__file__)] + sys.argv[1:])
    except OSError as e:
        print("not ok 1 - cannot run unshare: %s" % e)
        print("1..1")
        sys.exit(1)

T = tplib.Tap.current or tplib.Tap()

BUS_CONF = """<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

AVAHI_CONF = """[server]
use-ipv4=yes
use-ipv6=no
allow-interfaces=lo
enable-dbus=yes
ratelimit-interval-usec=0
[wide-area]
enable-wide-area=no
[publish]
publish-workstation=no
publish-hinfo=no
"""


class Env:
    """The namespace's loopback, D-Bus system bus and avahi-daemon."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="tpserver-zc-")
        self.bus = os.path.join(self.tmp, "bus")
        self.avahi_conf = os.path.join(self.tmp, "avahi.conf")
        with open(self.avahi_conf, "w") as f:
            f.write(AVAHI_CONF)
        bus_conf = os.path.join(self.tmp, "bus.conf")
        with open(bus_conf, "w") as f:
            f.write(BUS_CONF % self.bus)
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["ip", "link", "set", "lo", "multicast", "on"],
                    ["mount", "-t", "tmpfs", "tmpfs", "/run"]):
            subprocess.run(cmd, check=True, timeout=30)
        self.dbus = subprocess.Popen(
            ["dbus-daemon", "--nofork", "--config-file=" + bus_conf],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.bus) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + self.bus
        self.avahi = None
        self.avahi_log = os.path.join(self.tmp, "avahi.log")

    def start_avahi(self):
        log = open(self.avahi_log, "ab")
        self.avahi = subprocess.Popen(
            ["avahi-daemon", "--no-drop-root", "--no-chroot", "--no-rlimits",
             "-f", self.avahi_conf], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.avahi.poll() is not None:
                raise RuntimeError("avahi-daemon exited:\n" +
                                   open(self.avahi_log).read())
            r = subprocess.run(["avahi-browse", "-atp", "-k"],
                               capture_output=True, text=True, timeout=15)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("avahi-daemon did not come up:\n" +
                           open(self.avahi_log).read())

    def kill_avahi(self):
        if self.avahi and self.avahi.poll() is None:
            self.avahi.send_signal(signal.SIGKILL)
            self.avahi.wait(10)
        # A killed daemon leaves its pid file behind.
        for p in ("/run/avahi-daemon/pid", "/run/avahi-daemon/socket"):
            try:
                os.unlink(p)
            except OSError:
                pass

    def close(self):
        self.kill_avahi()
        self.dbus.terminate()
        self.dbus.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)


def unescape(s):
    return re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1))), s)


def browse(type_="-a"):
    """Resolved services: list of dicts (name, type, host, address, port,
    txt)."""
    args = ["avahi-browse", "-rtp", "-k"]
    args += ["-a"] if type_ == "-a" else [type_]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    out = []
    for line in r.stdout.splitlines():
        f = line.split(";")
        if f[0] != "=" or len(f) < 10:
            continue
        txt = {}
        for item in re.findall(r'"((?:[^"\\]|\\.)*)"', ";".join(f[9:])):
            k, _, v = item.partition("=")
            txt[k] = v
        out.append({"name": unescape(f[3]), "type": f[4], "host": f[6],
                    "address": f[7], "port": int(f[8]), "txt": txt})
    return out


def wait_for(pred, timeout=20.0, type_="-a"):
    """Browses until pred(services) is true; returns the services or
    None."""
    deadline = time.monotonic() + timeout
    while True:
        got = browse(type_)
        if pred(got):
            return got
        if time.monotonic() > deadline:
            return None
        time.sleep(0.3)


def of(services, name, type_):
    return [s for s in services if s["name"] == name and s["type"] == type_]


def zc_server(*extra, name="Zeroconf Test Game"):
    return tplib.Server("--bind", "0.0.0.0", "--set",
                        "game_longname=" + name, "--set",
                        "admin_email=op@example.org", "--set",
                        "game_comment=come and play", "--set",
                        "turn_length=600", *extra,
                        port_flags=["--tls-port", "--web-port",
                                    "--http-port"])


def test_publish(env):
    name = "Zeroconf Test Game"
    with zc_server(name=name) as srv:
        got = wait_for(lambda s: len(of(s, name, "_tp._tcp")) == 1 and
                       len(of(s, name, "_tps._tcp")) == 1 and
                       len(of(s, name, "_http._tcp")) == 1)
        T.ok(got is not None, "the services are published: _tp._tcp, "
             "_tps._tcp and _http._tcp under the game's long name",
             repr(browse()))
        if not got:
            return
        tp = of(got, name, "_tp._tcp")[0]
        T.is_(tp["port"], srv.port, "_tp._tcp carries the tp port")
        T.is_(of(got, name, "_tps._tcp")[0]["port"], srv.ports["--tls-port"],
              "_tps._tcp carries the TLS port")
        T.is_(of(got, name, "_http._tcp")[0]["port"],
              srv.ports["--web-port"], "_http._tcp carries the web port")
        tun = of(browse("_tp-http._tcp"), name, "_tp-http._tcp")
        T.ok(len(tun) == 1 and tun[0]["port"] == srv.ports["--http-port"],
             "_tp-http._tcp carries the HTTP tunnel's port", repr(tun))
        txt = tp["txt"]
        want = {"sertype": "tpserver", "tp": "0.3,0.4", "rule": "MiniSec",
                "turn": "0", "plys": "0", "sn": "tp", "prd": "600",
                "admin": "op@example.org", "cmt": "come and play"}
        bad = {k: (txt.get(k), v) for k, v in want.items()
               if txt.get(k) != v}
        T.ok(not bad, "the TXT keys the clients read", repr(bad))
        T.ok(txt.get("server") and txt.get("rulever"), "server and rulever "
             "are given", repr(txt))
        T.ok(int(txt.get("objs", "0")) > 0, "objs counts the universe",
             repr(txt))
        T.ok(abs(int(txt.get("next", "0")) - (time.time() + 600)) < 30,
             "next is the end of the turn", repr(txt.get("next")))
        T.ok(any("published \"%s\"" % name in line
                 for line in srv.log().splitlines()),
             "the log says what was published", srv.log_tail(10))

        r = subprocess.run([tplib.tpserver_path(), "console", "--data",
                            srv.data_dir, "-e", "discovery()"],
                           capture_output=True, text=True, timeout=30)
        T.ok(r.returncode == 0 and "established" in r.stdout and
             ('"%s": _tp._tcp %d' % (name, srv.port)) in r.stdout,
             "the console's discovery() shows what is published",
             r.stdout + r.stderr)

        # A player joins: plys=1; the turn ends: turn=1.
        p = Player(srv)
        got = wait_for(lambda s: any(x["txt"].get("plys") == "1"
                                     for x in of(s, name, "_tp._tcp")),
                       timeout=10, type_="_tp._tcp")
        T.ok(got is not None, "TXT plys becomes 1 when a player joins")
        check_okay(p.req("FinishedTurn"), "the only player finishes")
        got = wait_for(lambda s: any(x["txt"].get("turn") == "1"
                                     for x in of(s, name, "_tp._tcp")),
                       timeout=10, type_="_tp._tcp")
        T.ok(got is not None, "TXT turn becomes 1 after the turn ends",
             repr(browse("_tp._tcp")))

        # tpserver find, as an admin would check.
        r = subprocess.run([tplib.tpserver_path(), "find", "--timeout", "4"],
                           capture_output=True, text=True, timeout=60)
        line = [x for x in r.stdout.splitlines() if name in x]
        T.ok(r.returncode == 0 and len(line) == 1 and "MiniSec" in line[0]
             and "local network" in line[0] and
             (":%d/" % srv.port) in line[0] and "tp://" in line[0] and
             "tps://" in line[0],
             "tpserver find lists the game: name, ruleset, turn, players, "
             "URLs", r.stdout + r.stderr)
        if line:
            cells = re.split(r"\s{2,}", line[0])
            T.ok(len(cells) >= 6 and cells[2] == "1" and cells[3] == "1",
                 "find: turn 1, 1 player", repr(cells))

        # The daemon dies: the server goes on, and publishes again when
        # the daemon is back.
        env.kill_avahi()
        time.sleep(1)
        T.ok(srv.alive(), "the server survives avahi-daemon being killed")
        t0 = time.monotonic()
        p.call("GetTimeRemaining")
        T.ok(time.monotonic() - t0 < 1, "TP requests are answered without "
             "the daemon")
        deadline = time.monotonic() + 10
        while "lost avahi-daemon" not in srv.log() and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        T.ok("lost avahi-daemon" in srv.log(), "the loss is logged",
             srv.log_tail(10))
        env.start_avahi()
        got = wait_for(lambda s: len(of(s, name, "_tp._tcp")) == 1 and
                       len(of(s, name, "_tps._tcp")) == 1, timeout=30)
        T.ok(got is not None and of(got, name, "_tp._tcp")[0]["txt"].get(
            "turn") == "1", "published again, up to date, once the daemon "
             "is back", repr(browse()))
        T.is_(srv.log().count("lost avahi-daemon"), 1, "the loss is logged "
              "once")
        T.ok(not srv.error_lines(), "no error lines", srv.error_lines())
        srv.stop(cleanup=False)
        got = wait_for(lambda s: not of(s, name, "_tp._tcp"), timeout=10)
        T.ok(got is not None, "a stopped server withdraws its services")


def test_loopback_and_collision(env):
    # Another program has the name already: Avahi's alternative name.
    holder = subprocess.Popen(["avahi-publish", "-s", "Taken Name",
                               "_tp._tcp", "9"],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda s: of(s, "Taken Name", "_tp._tcp"), timeout=10)
        with zc_server(name="Taken Name") as srv:
            got = wait_for(lambda s: of(s, "Taken Name #2", "_tp._tcp"),
                           timeout=20)
            T.ok(got is not None and of(got, "Taken Name #2", "_tp._tcp")[0][
                "port"] == srv.port, "a name taken on the network: the game "
                 "is published as \"Taken Name #2\"", repr(browse()))
            T.ok("published as \"Taken Name #2\" instead" in srv.log(),
                 "the collision is logged with the new name",
                 srv.log_tail(10))
    finally:
        holder.terminate()
        holder.wait(10)
    # Listeners on 127.0.0.1 (reachable from this machine only) are not
    # published.
    with tplib.Server("--set", "game_longname=Loopback Game") as srv:
        time.sleep(2)
        T.ok(not [s for s in browse() if s["name"] == "Loopback Game"],
             "a server on 127.0.0.1 publishes nothing")
        T.ok("not publishing _tp._tcp %d: it listens on 127.0.0.1" %
             srv.port in srv.log(), "and says why", srv.log_tail(10))
    # zeroconf = false: nothing.
    with zc_server("--set", "zeroconf=false", name="Silent Game"):
        time.sleep(2)
        T.ok(not [s for s in browse() if s["name"] == "Silent Game"],
             "zeroconf = false publishes nothing")


def test_daemon_later(env):
    env.kill_avahi()
    name = "Early Game"
    with zc_server(name=name) as srv:
        deadline = time.monotonic() + 10
        while "avahi-daemon is not running" not in srv.log() and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        T.ok("avahi-daemon is not running" in srv.log() and
             "zeroconf = false" in srv.log(),
             "started without a daemon: said once, with how to turn it off",
             srv.log_tail(10))
        T.ok(not [x for x in srv.log().splitlines()
                  if "zeroconf" in x and " warning " in x[:40]],
             "at info level (zeroconf = \"auto\")", srv.log_tail(10))
        r = subprocess.run([tplib.tpserver_path(), "find", "--timeout", "2"],
                           capture_output=True, text=True, timeout=60)
        T.ok(r.returncode == 1 and "avahi-daemon" in r.stderr,
             "find without a daemon says so, exit 1", r.stdout + r.stderr)
        env.start_avahi()
        got = wait_for(lambda s: of(s, name, "_tp._tcp"), timeout=30)
        T.ok(got is not None, "published once the daemon starts")
    with zc_server("--set", "zeroconf=true", name="Insistent Game") as srv:
        time.sleep(1)
        T.ok("avahi-daemon is not running" not in srv.log(),
             "with a daemon, nothing to say")


def main():
    env = None
    try:
        env = Env()
        env.start_avahi()
    except Exception as e:
        T.ok(False, "the test's avahi-daemon starts (make deps installs "
             "avahi-daemon, avahi-utils, dbus-daemon, iproute2)", repr(e))
        T.done()
    try:
        T.run(lambda: test_publish(env), lambda: test_loopback_and_collision(
            env), lambda: test_daemon_later(env))
    finally:
        env.close()
    T.done()


main()
