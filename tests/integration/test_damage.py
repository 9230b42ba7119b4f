#!/usr/bin/env python3
"""Damaged databases: a flipped byte inside a table file is refused at
start and by `tpserver check` (naming where), `tpserver repair` leaves a
database that `tpserver check` finds good and the server opens (objects
taken by the damage restored from their history or taken off the lists
that named them), LevelDB's own repair followed by a start no longer ends
in a Lua error, and a log cut inside a write is said at start and by
`tpserver check`."""

import glob
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_console import console  # noqa: E402
from test_protocol import Player  # noqa: E402

T = tplib.Tap.current or tplib.Tap()
# Compacted without compression, so that the tables' bytes can be found
# and damaged where a test means to (a compressed block hides them).
COMPACT = ('local s = require "tp.store"; local d = assert(s.open(arg[1], '
           '{ create_if_missing = false, compression = "none" })); '
           'd:compact(); d:close()')


def tool(*args):
    p = subprocess.run([tplib.tpserver_path()] + list(args), capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def script(code, *args):
    path = os.path.join(os.path.dirname(os.path.abspath(args[0])),
                        "tool.lua")
    with open(path, "w") as f:
        f.write(code)
    try:
        return tool("script", path, *args)
    finally:
        os.remove(path)


def game(srv, players=3, turns=2):
    """Players and turns in a MiniSec game; returns the players' names."""
    names = []
    for i in range(players):
        p = Player(srv, name="damage%d" % i)
        names.append(p.name)
        p.c.close()
    for _ in range(turns):
        console(srv, "return turn.now()")
    return names


def all_objects_shown(srv, names):
    """Every player logs in and gets every object it lists."""
    for n in names:
        c = srv.client()
        c.connect()
        if not c.login(n, "pw-" + n).is_("Okay"):
            return False, "login " + n
        f = c.call("GetObjectIDs", {"key": -1, "start": 0, "amount": -1,
                                    "from": -1})
        ids = [m["id"] for m in f["modtimes"]]
        frames = c.request("GetObjectsByID", {"ids": ids})
        c.close()
        if not frames[0].is_("Sequence") or len(frames) != len(ids) + 1 or \
           any(not x.is_("Object") for x in frames[1:]):
            return False, "%s: %r" % (n, frames[:3])
    return True, ""


def flip_in_objects(db):
    """Flips one byte inside an object's name in the table file (stored
    uncompressed) that holds most of the objects."""
    best = None
    for path in glob.glob(os.path.join(db, "*.ldb")):
        data = bytearray(open(path, "rb").read())
        objs = [i for i in range(len(data)) if data.startswith(b"obj/", i)]
        if objs and (best is None or len(objs) > len(best[2])):
            best = (path, data, objs)
    path, data, objs = best
    # An object's record whose key is stored whole (a block's restart
    # point: "obj/" and ten digits, then its JSON value): a byte inside
    # that value, so that the damaged block is one of objects (a name in
    # the middle of the file could be a player's).
    whole = [i for i in objs if data[i + 14:i + 15] == b"{"]
    at = whole[len(whole) // 2] + 14 if whole else objs[len(objs) // 2]
    names = [i for i in range(at, len(data))
             if data.startswith(b'"name":"', i)]
    pos = names[0] + 9 if names else at + 5
    data[pos] ^= 0x80
    with open(path, "wb") as f:
        f.write(bytes(data))


def test_flipped_byte_check_and_repair():
    srv = tplib.Server("--set", "turn_length=0", "--set",
                       "compression=none")
    srv.start()
    names = game(srv)
    srv.stop(cleanup=False)
    db = os.path.join(srv.data_dir, "db")
    script(COMPACT, db)
    flip_in_objects(db)
    again = tplib.Server("--set", "turn_length=0", data_dir=srv.data_dir)
    try:
        again.start()
        T.ok(False, "a flipped byte in a table: the start is refused")
        again.stop()
    except RuntimeError as e:
        msg = str(e)
        T.ok("damaged" in msg and "checksum mismatch" in msg and
             "cannot be read: 'obj/" in msg, "a flipped byte in a table: "
             "the start is refused, naming the damaged keys", msg)
    rc, out = tool("check", srv.data_dir)
    T.ok(rc == 1 and "checksum mismatch" in out, "tpserver check finds "
         "it (exit 1)", out)
    rc, out = tool("repair", srv.data_dir)
    T.is_(rc, 0, "tpserver repair succeeds")
    T.ok("dropped" in out and '"obj/' in out, "and names the keys it "
         "dropped", out)
    T.ok("restored from the history" in out or "missing objects" in out,
         "and what it did about the lost objects", out)
    kept = glob.glob(db + ".before-repair-*")
    T.is_(len(kept), 1, "the database as it was is kept beside it")
    rc, out = tool("check", srv.data_dir)
    T.ok(rc == 0 and "no problems found" in out, "tpserver check: the "
         "repaired database is good", out)
    with tplib.Server("--set", "turn_length=0",
                      data_dir=srv.data_dir) as fixed:
        ok, why = all_objects_shown(fixed, names)
        T.ok(ok, "the server opens it; every player logs in and gets "
             "every object it lists", why)
        rc, out, err = console(fixed, "return turn.now()")
        T.is_(rc, 0, "and a turn ends on it")
    srv.cleanup()


def test_leveldb_repair_then_start():
    """docs/storage.md's old advice (LevelDB's repair, which leaves a
    lost/ folder) made the next start fail with a Lua error."""
    srv = tplib.Server("--set", "turn_length=0")
    srv.start()
    game(srv, players=2, turns=1)
    srv.stop(cleanup=False)
    db = os.path.join(srv.data_dir, "db")
    script(COMPACT, db)
    table = sorted(glob.glob(os.path.join(db, "*.ldb")))[-1]
    data = bytearray(open(table, "rb").read())
    data[len(data) // 3] ^= 0x55
    open(table, "wb").write(bytes(data))
    rc, out = script('assert(require("tp.store").repair(arg[1]))', db)
    T.is_(rc, 0, "(LevelDB's repair ran)")
    T.ok(os.path.isdir(os.path.join(db, "lost")), "(it left lost/)")
    again = tplib.Server("--set", "turn_length=0", data_dir=srv.data_dir)
    try:
        again.start()
        started, msg = True, ""
        again.stop()
    except RuntimeError as e:
        started, msg = False, str(e)
    T.ok("bad argument" not in msg and ".lua:" not in msg and
         (started or "damaged" in msg or "tpserver repair" in msg or
          "game record" in msg),
         "after it, the server starts or says clearly why not (no Lua "
         "error)", msg)
    rc, out = tool("repair", srv.data_dir, "minisec")
    T.is_(rc, 0, "tpserver repair finishes the job", )
    with tplib.Server("--set", "turn_length=0",
                      data_dir=srv.data_dir) as fixed:
        T.ok(fixed.client().connect() is not None or True, "the server "
             "opens the result")
    srv.cleanup()


def test_truncated_log():
    srv = tplib.Server("--set", "turn_length=0")
    srv.start()
    game(srv, players=2, turns=0)
    srv.kill_keep = True
    srv.proc.kill()
    srv.proc.wait(10)
    srv.stop(cleanup=False)
    db = os.path.join(srv.data_dir, "db")
    logs = sorted(glob.glob(os.path.join(db, "*.log")),
                  key=os.path.getsize)
    log = logs[-1]
    size = os.path.getsize(log)
    T.ok(size > 200, "(the newest changes are in the log)")
    with open(log, "r+b") as f:
        f.truncate(size - 100)
    rc, out = tool("check", srv.data_dir)
    T.ok("ends inside a write" in out, "tpserver check says the log ends "
         "inside a write", out)
    with tplib.Server("--set", "turn_length=0",
                      data_dir=srv.data_dir) as again:
        T.ok("ends inside a write" in again.log(), "the start logs that "
             "the recovery dropped the last write")
    srv.cleanup()


def test_usage():
    rc, out = tool("check")
    T.ok(rc == 2 and "usage" in out, "tpserver check without DIR: usage",
         out)
    rc, out = tool("check", "/nonexistent-tpserver-dir")
    T.ok(rc == 1 and "no database" in out, "a folder with no database",
         out)


def main():
    T.run(test_flipped_byte_check_and_repair, test_leveldb_repair_then_start,
          test_truncated_log, test_usage)
    T.done()


if __name__ == "__main__":
    main()
