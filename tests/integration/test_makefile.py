#!/usr/bin/env python3
"""The Makefile's package and start logic, with nothing really installed:
make runs with a PATH of fake apt-get, sudo, dpkg-query and id scripts that
record their arguments (and, for the build check, fake pkg-config and cc
that know no library), so every check runs the real recipes through a real
make and reads what they asked for, what they printed and their exit
status.

- make deps asks apt-get for the build and run packages only, make
  deps-test for those and the test packages (clang, llvm, chromium ...);
  only the missing ones, nothing when all are there; apt-get's output goes
  to a log file, not the terminal.
- As root no sudo, as another user sudo, without sudo the exact su -c
  commands and a non-zero exit (no make "Error 127").
- make and make install without the libraries stop before compiling, with
  a pointer to make deps, and install nothing.
- make run PORT=7000 puts 7000, 7001 and 7002 on the server's command line
  (and two computer players, AI_PLAYERS=0 none, for MiniSec only).
- make uninstall keeps the configuration and says so; PURGE=1 removes it.
- make fuzz-quick prints one line and keeps libFuzzer's output in its log;
  make test adds the fuzz run to the suite's "N passed, N failed" line
  (a copy of the Makefile in a scratch folder, with stand-ins for the
  suite and the fuzzer)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402

T = tplib.Tap.current or tplib.Tap()
ROOT = tplib.ROOT
MAKE = shutil.which("make") or "make"

# Real tools the recipes use besides the fakes.
REAL_TOOLS = ("sh", "bash", "grep", "sed", "tail", "head", "cat", "env",
              "mktemp", "rm", "mkdir", "cp", "date", "rmdir", "wc", "tr",
              "install", "printf", "expr", "ls", "chmod", "sleep", "touch")

FAKE_DPKG_QUERY = r"""#!/bin/sh
# dpkg-query -W -f=FORMAT PACKAGE: installed when PACKAGE is in
# $FAKE_INSTALLED (or FAKE_INSTALLED is "all").
for p; do :; done
case " $FAKE_INSTALLED " in
  *" all "* | *" $p "*) printf 'install ok installed\n'; exit 0 ;;
esac
echo "dpkg-query: no packages found matching $p" >&2
exit 1
"""

FAKE_APT_GET = r"""#!/bin/sh
echo "apt-get $* DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-}" >>"$FAKE_LOG"
[ "$1" = update ] && exit 0
for p; do
  case $p in -*|install) ;; *)
    echo "Selecting previously unselected package $p."
    echo "Unpacking $p (1.0) ..."
    echo "Setting up $p (1.0) ..." ;;
  esac
done
if [ "${FAKE_APT_RC:-0}" != 0 ]; then
  echo "E: Unable to fetch some archives (fake)" >&2
fi
exit "${FAKE_APT_RC:-0}"
"""

FAKE_SUDO = r"""#!/bin/sh
echo "sudo $*" >>"$FAKE_LOG"
if [ "$1" = -v ]; then exit "${FAKE_SUDO_RC:-0}"; fi
exec "$@"
"""

FAKE_ID = r"""#!/bin/sh
if [ "$1" = -u ]; then echo "${FAKE_UID:-1000}"; exit 0; fi
echo "uid=${FAKE_UID:-1000}(someone)"
"""

# The build check's view of a machine without the -dev packages.
FAKE_PKG_CONFIG = r"""#!/bin/sh
echo "pkg-config $*" >>"$FAKE_LOG"
exit 1
"""

FAKE_CC = r"""#!/bin/sh
echo "cc $*" >>"$FAKE_LOG"
for a; do
  case $a in -print-file-name=*) echo "${a#-print-file-name=}"; exit 0 ;;
  esac
done
echo "<stdin>:1:10: fatal error: something.h: No such file or directory" >&2
exit 1
"""


def write_exe(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


class Box:
    """A scratch folder with bin/ (fakes + links to real tools) as the only
    PATH, and a record of the fakes' calls."""

    def __init__(self, sudo=True, no_libs=False):
        self.dir = tempfile.mkdtemp(prefix="tpserver-mk.")
        self.bin = os.path.join(self.dir, "bin")
        os.mkdir(self.bin)
        self.log = os.path.join(self.dir, "calls.log")
        open(self.log, "w").close()
        for tool in REAL_TOOLS:
            real = shutil.which(tool)
            if real:
                os.symlink(real, os.path.join(self.bin, tool))
        write_exe(os.path.join(self.bin, "dpkg-query"), FAKE_DPKG_QUERY)
        write_exe(os.path.join(self.bin, "apt-get"), FAKE_APT_GET)
        write_exe(os.path.join(self.bin, "id"), FAKE_ID)
        if sudo:
            write_exe(os.path.join(self.bin, "sudo"), FAKE_SUDO)
        if no_libs:
            write_exe(os.path.join(self.bin, "pkg-config"), FAKE_PKG_CONFIG)
            write_exe(os.path.join(self.bin, "cc"), FAKE_CC)
        else:
            for tool in ("pkg-config", "cc", "gcc"):
                real = shutil.which(tool)
                if real:
                    os.symlink(real, os.path.join(self.bin, tool))

    def make(self, *args, uid=1000, installed="", env=None, cwd=ROOT,
             timeout=60):
        e = {"PATH": self.bin, "HOME": self.dir, "TMPDIR": self.dir,
             "LC_ALL": "C", "FAKE_LOG": self.log, "FAKE_UID": str(uid),
             "FAKE_INSTALLED": installed}
        e.update(env or {})
        r = subprocess.run([MAKE, "--no-print-directory"] + list(args),
                           cwd=cwd, env=e, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        r.out = r.stdout + r.stderr
        return r

    def calls(self):
        with open(self.log) as f:
            return f.read().splitlines()

    def installs(self):
        """The package lists of the apt-get install calls."""
        out = []
        for line in self.calls():
            words = line.split()
            if words[:2] == ["apt-get", "install"]:
                out.append([w for w in words[2:] if not w.startswith("-")
                            and "=" not in w])
        return out

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def clean_env():
    """This environment without what an outer make (make test PORT=...)
    or the shell could hand to the Makefile."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PORT",
              "TLS_PORT", "WEB_PORT", "RULESET", "RUN_ARGS", "BUILD", "BIN",
              "SAN", "V", "CC", "DESTDIR", "PREFIX", "PURGE"):
        env.pop(k, None)
    return env


def make_var(name):
    r = subprocess.run([MAKE, "-s", "--no-print-directory",
                        "--eval=print-var: ; @echo $(%s)" % name,
                        "print-var"], cwd=ROOT, capture_output=True,
                       text=True, timeout=30, env=clean_env())
    return r.stdout.split()


RUN_PKGS = make_var("RUN_PKGS")
TEST_PKGS = make_var("TEST_PKGS")


def test_package_lists():
    T.ok(len(RUN_PKGS) > 5, "the Makefile has RUN_PKGS", RUN_PKGS)
    for p in ("pkg-config", "libuv1-dev", "libluajit-5.1-dev", "libssl-dev",
              "libleveldb-dev", "lua-cjson-dev", "libicu-dev",
              "libhttp-parser-dev", "libssh-dev", "libcurl4-openssl-dev"):
        T.ok(p in RUN_PKGS, "running needs %s" % p, RUN_PKGS)
    for p in ("clang", "libclang-rt-dev", "llvm", "python3", "chromium",
              "chromium-driver", "python3-selenium", "openssl",
              "openssh-client", "avahi-daemon", "libxml2-utils"):
        T.ok(p in TEST_PKGS and p not in RUN_PKGS,
             "%s is a test package only" % p, (RUN_PKGS, TEST_PKGS))


def test_deps_as_root():
    box = Box(sudo=True)
    try:
        r = box.make("deps", uid=0)
        T.is_(r.returncode, 0, "make deps as root: exit status 0")
        inst = box.installs()
        T.is_(len(inst), 1, "one apt-get install")
        T.is_(sorted(inst[0]) if inst else None, sorted(RUN_PKGS),
              "make deps asks for exactly the run packages")
        calls = box.calls()
        T.ok(not any(c.startswith("sudo") for c in calls),
             "as root sudo is not used", calls)
        T.ok(any(c.startswith("apt-get update") for c in calls),
             "apt-get update first", calls)
        inst_line = [c for c in calls if c.startswith("apt-get install")]
        T.ok(inst_line and "-y" in inst_line[0].split() and
             "--no-install-recommends" in inst_line[0] and
             "DEBIAN_FRONTEND=noninteractive" in inst_line[0],
             "non-interactive, -y, no recommended packages", inst_line)
        T.ok("Unpacking" not in r.out and "Setting up" not in r.out,
             "apt-get's unpacking lines are not on the terminal", r.out)
        m = re.search(r"apt-get's output goes to (\S+)", r.out)
        T.ok(m is not None, "the log file is named", r.out)
        if m:
            with open(m.group(1)) as f:
                text = f.read()
            T.ok("Unpacking libuv1-dev" in text,
                 "apt-get's output is in that log", text[:500])
        T.ok("installing" in r.out and "libuv1-dev" in r.out,
             "it says what it installs", r.out)
    finally:
        box.close()


def test_deps_test_as_root():
    box = Box(sudo=True)
    try:
        r = box.make("deps-test", uid=0)
        T.is_(r.returncode, 0, "make deps-test as root: exit status 0")
        inst = box.installs()
        T.is_(sorted(inst[0]) if inst else None, sorted(RUN_PKGS + TEST_PKGS),
              "make deps-test asks for the run and the test packages")
    finally:
        box.close()


def test_nothing_missing():
    box = Box(sudo=False)
    try:
        for target in ("deps", "deps-test"):
            r = box.make(target, uid=1000, installed="all")
            T.is_(r.returncode, 0, "make %s with everything installed, no "
                  "root, no sudo: exit status 0" % target)
            T.is_(box.calls(), [], "make %s calls neither apt-get nor sudo"
                  % target)
            T.is_(r.out, "", "make %s prints nothing" % target)
    finally:
        box.close()


def test_only_missing():
    box = Box(sudo=True)
    try:
        have = [p for p in RUN_PKGS + TEST_PKGS
                if p not in ("libuv1-dev", "clang")]
        r = box.make("deps", uid=0, installed=" ".join(have))
        T.is_(box.installs(), [["libuv1-dev"]],
              "make deps asks only for the missing run package")
        open(box.log, "w").close()
        r = box.make("deps-test", uid=0, installed=" ".join(have))
        T.is_(box.installs(), [["libuv1-dev", "clang"]],
              "make deps-test asks only for the missing ones")
        T.is_(r.returncode, 0, "exit status 0")
    finally:
        box.close()


def test_sudo():
    box = Box(sudo=True)
    try:
        r = box.make("deps", uid=1000)
        T.is_(r.returncode, 0, "make deps as a user with sudo: exit status 0")
        calls = box.calls()
        T.ok(calls[:1] == ["sudo -v"],
             "sudo -v first (its password prompt on the terminal)", calls)
        T.ok("sudo apt-get update -qq" in calls, "sudo apt-get update", calls)
        T.ok(any(c.startswith("sudo env DEBIAN_FRONTEND=noninteractive "
                              "apt-get install") for c in calls),
             "sudo apt-get install, non-interactive through sudo", calls)
        T.is_(sorted(box.installs()[0]) if box.installs() else None,
              sorted(RUN_PKGS), "the run packages")
        T.ok("with sudo" in r.out, "it says it uses sudo", r.out)

        open(box.log, "w").close()
        r = box.make("deps", uid=1000, env={"FAKE_SUDO_RC": "1"})
        T.ok(r.returncode != 0, "sudo refused: non-zero exit", r.out)
        T.ok("su -c 'make deps'" in r.out, "sudo refused: the su -c command",
             r.out)
        T.is_(box.installs(), [], "sudo refused: no apt-get install")
    finally:
        box.close()


def test_no_sudo():
    box = Box(sudo=False)
    try:
        r = box.make("deps", uid=1000)
        T.ok(r.returncode != 0, "make deps without root or sudo: non-zero "
             "exit", r.returncode)
        T.is_(box.calls(), [], "no apt-get call")
        T.ok("su -c 'make deps'" in r.out, "it names su -c 'make deps'",
             r.out)
        line = ("su -c 'apt-get update && apt-get install -y "
                "--no-install-recommends %s'" % " ".join(RUN_PKGS))
        T.ok(line in r.out, "it prints the exact apt-get line", r.out)
        T.ok("Error 127" not in r.out and "not found" not in r.out,
             "no 'not found' / Error 127", r.out)

        r = box.make("run", uid=1000)
        T.ok(r.returncode != 0, "make run without root or sudo: non-zero "
             "exit", r.out)
        T.ok("su -c 'make deps'" in r.out and "make run again" in r.out,
             "make run points to su -c 'make deps', then make run", r.out)
        T.ok("clang" not in r.out and "chromium" not in r.out and
             "python3" not in r.out,
             "make run asks for no test package", r.out)
        T.ok("tpserver -f" not in r.out,
             "the server is not started", r.out)

        r = box.make("deps-test", uid=1000)
        T.ok(r.returncode != 0 and "su -c 'make deps-test'" in r.out and
             " clang" in r.out and " llvm" in r.out,
             "make deps-test without sudo: su -c 'make deps-test', "
             "clang and llvm listed", r.out)
    finally:
        box.close()


def test_apt_fails():
    box = Box(sudo=True)
    try:
        r = box.make("deps", uid=0, env={"FAKE_APT_RC": "100"})
        T.ok(r.returncode != 0, "apt-get failing: non-zero exit", r.out)
        T.ok("apt-get failed (exit status 100)" in r.out,
             "it says apt-get failed, with its status", r.out)
        T.ok("E: Unable to fetch some archives" in r.out,
             "the log's last lines are shown", r.out)
    finally:
        box.close()


def test_build_without_libraries():
    box = Box(sudo=True, no_libs=True)
    try:
        build = os.path.join(box.dir, "build")
        binary = os.path.join(box.dir, "tpserver")
        r = box.make("BUILD=" + build, "BIN=" + binary, uid=1000)
        T.ok(r.returncode != 0, "make without the libraries: non-zero exit",
             r.out)
        T.ok("make deps" in r.out, "it points to make deps", r.out)
        T.ok("pkg-config finds no libuv" in r.out,
             "it names what pkg-config does not find", r.out)
        T.ok("leveldb/c.h" in r.out and "liblua5.1-cjson.so" in r.out,
             "and the headers and libraries the compiler does not find",
             r.out)
        T.ok("libuv1-dev" in r.out, "and the missing Debian packages",
             r.out)
        T.ok("lauxlib.h" not in r.out and "  CC " not in r.out,
             "nothing was compiled", r.out)
        T.ok(not os.path.exists(build) and not os.path.exists(binary),
             "no build folder, no binary")
        T.is_(box.installs(), [], "make installs nothing")
        T.ok(not any(c.startswith("sudo") for c in box.calls()),
             "make does not call sudo", box.calls())

        dest = os.path.join(box.dir, "dest")
        r = box.make("install", "DESTDIR=" + dest, "BUILD=" + build,
                     "BIN=" + binary, uid=0)
        T.ok(r.returncode != 0 and "make deps" in r.out,
             "make install without the libraries: stops, points to make "
             "deps", r.out)
        T.ok(not os.path.exists(dest), "make install installed nothing")
        T.is_(box.installs(), [], "make install installs no package")
    finally:
        box.close()


def test_build_check_passes():
    # This machine has the libraries (make deps-test ran): the check is
    # silent and succeeds.
    r = subprocess.run([MAKE, "--no-print-directory", "libcheck"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30,
                       env=clean_env())
    T.is_((r.returncode, r.stdout + r.stderr), (0, ""),
          "with the libraries the build check passes silently")


def dry_run(*args):
    r = subprocess.run([MAKE, "-n", "--no-print-directory"] + list(args),
                       cwd=ROOT, capture_output=True, text=True, timeout=30,
                       env=clean_env())
    lines = [ln for ln in r.stdout.splitlines()
             if ln.startswith("./tpserver ")]
    return r, lines


def test_port():
    r, lines = dry_run("run", "PORT=7000")
    T.is_(lines, ["./tpserver -f --port 7000 --tls-port 7001 "
                  "--web-port 7002 --set ai_players=2"],
          "make -n run PORT=7000: 7000, TLS on 7001, the web page on 7002")
    r, lines = dry_run("run")
    T.is_(lines, ["./tpserver -f --port 6923 --tls-port 6924 "
                  "--web-port 8080 --set ai_players=2"],
          "make -n run: 6923, 6924, 8080, a MiniSec game with 2 computer "
          "players")
    r, lines = dry_run("run", "AI_PLAYERS=0")
    T.is_(lines, ["./tpserver -f --port 6923 --tls-port 6924 "
                  "--web-port 8080"], "make -n run AI_PLAYERS=0: none")
    r, lines = dry_run("run", "PORT=7000", "TLS_PORT=0", "WEB_PORT=8181",
                       "RULESET=rfts", "RUN_ARGS=--log-level debug")
    T.is_(lines, ["./tpserver -f --port 7000 --tls-port 0 --web-port 8181 "
                  "--ruleset rfts --data var-rfts --log-level debug"],
          "TLS_PORT=, WEB_PORT=, RULESET= and RUN_ARGS= reach the command "
          "line")
    T.ok("chromium" not in r.stdout and "clang" not in r.stdout,
         "make -n run names no test package", r.stdout[-2000:])
    r, _ = dry_run("test")
    T.ok(r.returncode == 0 and "chromium" in r.stdout and
         "clang" in r.stdout, "make -n test goes through the test packages",
         r.stdout[-2000:])
    box = Box(sudo=False)
    try:
        r = box.make("run", "PORT=69x23", installed="all")
        T.ok(r.returncode != 0 and "PORT=69x23: a port number expected" in
             r.out, "make run PORT=69x23: refused before building", r.out)
    finally:
        box.close()


def test_uninstall():
    box = Box(sudo=False)
    try:
        dest = os.path.join(box.dir, "dest")
        pre = "/usr/local"
        files = ["bin/tpserver", "share/man/man1/tpserver.1",
                 "lib/systemd/system/tpserver.service",
                 "share/tpserver/lua/tp/core.lua", "etc/tpserver/tpserver.lua"]
        for f in files:
            p = dest + pre + "/" + f
            os.makedirs(os.path.dirname(p), exist_ok=True)
            open(p, "w").close()
        conf = dest + pre + "/etc/tpserver/tpserver.lua"
        r = box.make("uninstall", "DESTDIR=" + dest, "PREFIX=" + pre)
        T.is_(r.returncode, 0, "make uninstall: exit status 0")
        T.ok(not os.path.exists(dest + pre + "/bin/tpserver") and
             not os.path.exists(dest + pre + "/share/tpserver") and
             not os.path.exists(dest + pre + "/share/man/man1/tpserver.1"),
             "the binary, the shared files and the man page are gone")
        T.ok(os.path.exists(conf), "the configuration is kept")
        T.ok("kept the configuration " + conf in r.out and "PURGE=1" in r.out,
             "and it says so, with how to remove it", r.out)
        r = box.make("uninstall", "DESTDIR=" + dest, "PREFIX=" + pre,
                     "PURGE=1")
        T.ok(r.returncode == 0 and not os.path.exists(conf) and
             not os.path.exists(os.path.dirname(conf)),
             "make uninstall PURGE=1 removes the configuration", r.out)
    finally:
        box.close()


def test_install_config():
    """make install writes the configuration with the service's data
    directory (/var/lib/tpserver), not the source tree's ./var."""
    dest = tempfile.mkdtemp(prefix="tpserver-install-")
    try:
        r = subprocess.run(["make", "--no-print-directory", "install",
                            "DESTDIR=" + dest, "PREFIX=/usr/local"],
                           cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
        conf = dest + "/usr/local/etc/tpserver/tpserver.lua"
        text = open(conf).read() if os.path.exists(conf) else ""
        T.ok(r.returncode == 0 and
             re.search(r'^    data = "/var/lib/tpserver",$', text, re.M),
             "make install: the installed tpserver.lua keeps its data in "
             "/var/lib/tpserver", r.stdout[-500:] + r.stderr[-500:])
        c = subprocess.run([tplib.tpserver_path(), "--check-config", "-c",
                            conf], capture_output=True, text=True,
                           timeout=60)
        T.ok(c.returncode == 0 and
             'data = "/var/lib/tpserver"' in c.stdout,
             "and --check-config of it says so", c.stdout[-300:] +
             c.stderr[-300:])
    finally:
        shutil.rmtree(dest, ignore_errors=True)


FAKE_FUZZER = r"""#!/bin/sh
i=0
while [ $i -lt 400 ]; do
  echo "#$i	NEW    cov: 100 ft: 200 corp: 10/1Kb exec/s: 0 rss: 30Mb"
  i=$((i + 1))
done
echo "WARNING: invalid path to external symbolizer!"
if [ -n "$FAKE_FUZZ_CRASH" ]; then
  echo "==1==ERROR: AddressSanitizer: heap-buffer-overflow (fake)"
  exit 77
fi
echo "stat::number_of_executed_units: 123456"
exit 0
"""


def test_fuzz_quick():
    box = Box(sudo=False)
    try:
        fz = os.path.join(box.dir, "fuzz")
        os.mkdir(fz)
        fuzzer = os.path.join(fz, "fuzz_frame")
        write_exe(fuzzer, FAKE_FUZZER)    # newer than its sources: no build
        args = ("-s", "fuzz-quick", "FUZZ_DIR=" + fz)
        r = box.make(*args, installed="all")
        lines = r.out.splitlines()
        T.is_(r.returncode, 0, "make fuzz-quick: exit status 0")
        T.is_(len(lines), 1, "one line on the terminal")
        T.ok(lines and re.match(r"fuzz/fuzz_frame +ok \(123456 runs, \d+s; "
                                r"log \S+fuzz-quick.log\)$", lines[0]),
             "'fuzz/fuzz_frame  ok (N runs ...)'", lines)
        with open(os.path.join(fz, "fuzz-quick.log")) as f:
            text = f.read()
        T.ok(text.count("NEW    cov") == 400 and "symbolizer" in text,
             "the fuzzer's output is in build/fuzz/fuzz-quick.log", text[:300])
        with open(os.path.join(fz, "fuzz-quick.result")) as f:
            T.is_(f.read().strip(), "ok", "the result file says ok")

        r = box.make(*args, installed="all", env={"FAKE_FUZZ_CRASH": "1"})
        T.ok(r.returncode != 0, "a crashing fuzzer: non-zero exit", r.out)
        T.ok(re.search(r"fuzz/fuzz_frame +FAILED \(exit code 77", r.out),
             "a FAILED line", r.out)
        T.ok("AddressSanitizer: heap-buffer-overflow" in r.out and
             "fuzz-quick.log" in r.out,
             "with the log's last lines and its name", r.out)
        T.ok(r.out.count("NEW    cov") <= 30, "not the whole log", r.out)
        with open(os.path.join(fz, "fuzz-quick.result")) as f:
            T.is_(f.read().strip(), "failed", "the result file says failed")
    finally:
        box.close()


FAKE_SUITE = r"""#!/bin/sh
echo "unit/test_codec                              ok (10 checks, 0s)"
if [ -n "$FAKE_SUITE_FAIL" ]; then
  echo "integration/test_x.py                        FAILED (3 passed, 1 failed, 1s)"
  echo "13 passed, 1 failed"
  exit 1
fi
echo "integration/test_x.py                        ok (4 checks, 1s)"
echo "14 passed, 0 failed"
exit 0
"""


def test_make_test_summary():
    """make test's recipe in a copy of the Makefile: a stand-in suite and
    fuzzer, nothing of the real suite runs."""
    box = Box(sudo=False)
    try:
        tree = os.path.join(box.dir, "tree")
        os.makedirs(os.path.join(tree, "tests"))
        os.makedirs(os.path.join(tree, "fuzz", "corpus"))
        os.makedirs(os.path.join(tree, "build", "fuzz"))
        shutil.copy(os.path.join(ROOT, "Makefile"), tree)
        shutil.copy(os.path.join(ROOT, "fuzz", "fuzz.mk"),
                    os.path.join(tree, "fuzz"))
        open(os.path.join(tree, "fuzz", "corpus", "seed"), "w").close()
        write_exe(os.path.join(tree, "tests", "run"), FAKE_SUITE)
        write_exe(os.path.join(tree, "tpserver"), "#!/bin/sh\n")
        fuzzer = os.path.join(tree, "build", "fuzz", "fuzz_frame")
        write_exe(fuzzer, FAKE_FUZZER)
        args = ("test", "FUZZ_SRC=", "FUZZ_QUICK_SECONDS=1")
        r = box.make(*args, installed="all", cwd=tree)
        lines = r.stdout.splitlines()
        T.is_(lines[-1:], ["15 passed, 0 failed"],
              "make test: the fuzz run counts as one more passed check")
        T.is_(r.returncode, 0, "exit status 0")
        T.ok(any(ln.startswith("fuzz/fuzz_frame ") for ln in lines) and
             "NEW    cov" not in r.out, "one fuzz line, no fuzzer chatter",
             r.out)

        r = box.make(*args, installed="all", cwd=tree,
                     env={"FAKE_FUZZ_CRASH": "1"})
        lines = r.stdout.splitlines()
        T.is_(lines[-1:], ["14 passed, 1 failed"],
              "a failed fuzz run: the suite still runs, one more failure")
        T.ok(r.returncode != 0, "and a non-zero exit", r.returncode)

        r = box.make(*args, installed="all", cwd=tree,
                     env={"FAKE_SUITE_FAIL": "1"})
        lines = r.stdout.splitlines()
        T.is_(lines[-1:], ["14 passed, 1 failed"],
              "a failed suite: its failure is kept in the last line")
        T.ok(r.returncode != 0, "and a non-zero exit", r.returncode)
        T.ok("integration/test_x.py" in r.out and "FAILED" in r.out,
             "the suite's lines pass through", r.out)
    finally:
        box.close()


if __name__ == "__main__":
    tplib.main(test_package_lists, test_deps_as_root, test_deps_test_as_root,
               test_nothing_missing, test_only_missing, test_sudo,
               test_no_sudo, test_apt_fails, test_build_without_libraries,
               test_build_check_passes, test_port, test_uninstall,
               test_install_config,
               test_fuzz_quick, test_make_test_summary)
