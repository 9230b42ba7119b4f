#!/usr/bin/env python3
"""Persistence (issue 5): a restart resumes the same game, and a data
directory the server must not use is refused at start and left as it was.

* Restart: two players play turns (orders inserted and removed, messages
  posted and removed, FinishedTurn), the server is stopped with SIGTERM and
  started again on the same data directory: a full dump of everything each
  player can see (objects, the changes since a modification time, order
  queues and orders, boards and messages, designs, players, the static
  descriptions, the turn and who is waiting) is identical, the time left
  in the turn has gone on, and the ruleset's settings are those stored with
  the game (the second start does not repeat them).
* Refusals: a database of another ruleset, of a newer format, with a value
  that is not JSON, without CURRENT, with a truncated or corrupted table
  file, MANIFEST or log: the server exits with a message saying what is
  wrong, and no file of the database changed (checksums before and after).

Uses tests/fixtures/rulesets/persist (every object counts the turns) and
tests/fixtures/persist_check.lua (prints the database as JSON). The helpers
here are shared with test_persist_crash.py and test_persist_backup.py.
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PERSIST = os.path.join(ROOT, "tests", "fixtures", "rulesets", "persist")
TINY = os.path.join(ROOT, "tests", "fixtures", "rulesets", "tiny")
CHECK = os.path.join(ROOT, "tests", "fixtures", "persist_check.lua")
FLY = 0      # the persist ruleset's only order type


# ------------------------------------------------------------ helpers

def persist_server(*extra, data_dir=None):
    """A server of the persist ruleset; turns end when both players have
    finished (or after ten minutes)."""
    return tplib.Server("--ruleset", PERSIST, "--set", "turn_length=600",
                        *extra, data_dir=data_dir)


class Player:
    """A logged-in client: .c (tplib.Client), .name, .id, .ship (the id of
    their ship, whose queue takes Fly orders)."""

    def __init__(self, srv, name=None, create=True, timeout=10.0):
        self.name = name or tplib.unique_name("p")
        self.c = srv.client(timeout=timeout)
        self.c.connect()
        if create:
            f = self.c.create_account(self.name, "pw-" + self.name)
            if not f.is_("Okay"):
                raise RuntimeError("CreateAccount: %r" % f)
        f = self.c.login(self.name, "pw-" + self.name)
        if not f.is_("Okay"):
            raise RuntimeError("Login: %r" % f)
        self.id = self.get("GetPlayer", [0])[0]["id"]
        self.ship = None
        for m in self.call("GetOrderQueueIDs", idseq())["modtimes"]:
            self.ship = m["id"]

    def req(self, name, fields=None, **kw):
        return self.c.request(name, fields, **kw)

    def call(self, name, fields=None, **kw):
        return self.c.call(name, fields, **kw)

    def get(self, name, ids):
        frames = self.req(name, {"ids": ids})
        if not frames[0].is_("Sequence") or len(frames) != len(ids) + 1:
            raise tplib.ProtocolError("%s: %r" % (name, frames))
        return frames[1:]

    def list_ids(self, name, frm=-1):
        return [m["id"] for m in self.call(name, idseq(frm))["modtimes"]]

    def fly(self, x, slot=-1, queue=None):
        """OrderInsert of a Fly order to (x, 0, 0); returns the reply."""
        return self.call("OrderInsert", {
            "id": self.ship if queue is None else queue, "slot": slot,
            "otype": FLY, "turns": 0, "resources": [],
            "params": fly_params(x)})

    def post(self, subject, board=0, slot=-1):
        return self.call("PostMessage", {
            "id": board, "slot": slot, "msgtypes": [], "subject": subject,
            "body": "body of " + subject, "turn": 0, "references": []})

    def close(self):
        self.c.close()


def idseq(frm=-1):
    return {"key": -1, "start": 0, "amount": -1, "from": frm}


def fly_params(x):
    return struct.pack(">qqq", x, 0, 0).decode("utf-8", "surrogateescape")


def fly_target(order):
    """The x of a Fly order frame's destination."""
    raw = order["params"].encode("utf-8", "surrogateescape")
    return struct.unpack(">q", raw[:8])[0]


def counter(obj):
    """The persist ruleset's turn counter: every object type's last
    parameter, an integer."""
    raw = obj["params"].encode("utf-8", "surrogateescape")
    return struct.unpack(">I", raw[-4:])[0]


def position_x(obj):
    """x of an object's position (its first parameter)."""
    raw = obj["params"].encode("utf-8", "surrogateescape")
    return struct.unpack(">q", raw[:8])[0]


def fields(frames):
    return [(f.name, f.fields) for f in frames]


def queue_targets(p, queue=None):
    """The x of every order in a queue, in slot order."""
    q = p.get("GetOrderQueue", [queue or p.ship])[0]
    if q["numorders"] == 0:
        return []
    orders = p.req("GetOrder", {"id": queue or p.ship, "slots": []})[1:]
    return [fly_target(o) for o in orders]


def board_subjects(p, board=0):
    frames = p.req("GetMessage", {"id": board, "slots": []})
    return [f["subject"] for f in frames[1:]]


def dump(p):
    """Everything player p can see, as plain data: one entry per request."""
    out = {}

    def listed(kind):
        f = p.call(kind, idseq())
        out[kind] = f["modtimes"]
        return [m["id"] for m in f["modtimes"]]

    objs = listed("GetObjectIDs")
    out["objects"] = fields(p.req("GetObjectsByID", {"ids": objs}))
    mods = sorted(m["modtime"] for m in out["GetObjectIDs"])
    since = mods[len(mods) // 2] if mods else 0
    out["changed since %d" % since] = p.call("GetObjectIDs",
                                             idseq(since))["modtimes"]
    for f in p.req("GetObjectsByID", {"ids": objs})[1:]:
        if f.is_("Object") and f["contains"]:
            out["contains %d" % f["id"]] = p.call(
                "GetObjectIDsByContainer", {"id": f["id"]})["modtimes"]
    queues = listed("GetOrderQueueIDs")
    out["queues"] = fields(p.req("GetOrderQueue", {"ids": queues}))
    for q in queues:
        out["orders %d" % q] = fields(p.req("GetOrder", {"id": q,
                                                         "slots": []}))
    boards = listed("GetBoardIDs")
    out["boards"] = fields(p.req("GetBoards", {"ids": boards}))
    for b in boards:
        out["messages %d" % b] = fields(p.req("GetMessage", {"id": b,
                                                             "slots": []}))
    for kind, get in (("GetDesignIDs", "GetDesign"),
                      ("GetPlayerIDs", "GetPlayer"),
                      ("GetResourceIDs", "GetResource"),
                      ("GetCategoryIDs", "GetCategory"),
                      ("GetComponentIDs", "GetComponent"),
                      ("GetPropertyIDs", "GetProperty"),
                      ("GetOrderDescIDs", "GetOrderDesc"),
                      ("GetObjectDescIDs", "GetObjectDesc")):
        out[get] = fields(p.req(get, {"ids": listed(kind)}))
    t = p.call("GetTimeRemaining")
    out["turn"] = (t["turn"], t["turnname"], sorted(t["waiting"]))
    return out


def time_left(p):
    return p.call("GetTimeRemaining")["time"]


def read_db(data_dir):
    """{key: value} of a (stopped) server's database, through
    persist_check.lua; raises with its stderr when it cannot be read."""
    r = subprocess.run([tplib.tpserver_path(), "script", CHECK, data_dir],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("persist_check.lua: exit %d: %s" % (
            r.returncode, r.stderr.decode("utf-8", "replace")))
    return json.loads(r.stdout.decode())["keys"]


def db_problems(keys):
    """What is inconsistent in a persist game's database (a list of
    strings; empty when all is well): every object, the ruleset's state,
    every player's score and board count the same finished turns, and
    parents and children agree."""
    bad = []
    turn = keys["meta/turn"]["turn"]
    done = turn     # turns are numbered from 0: turn T follows T ended
    objs = {v["id"]: v for k, v in keys.items() if k.startswith("obj/")}
    if not objs:
        bad.append("no objects")
    for oid, o in sorted(objs.items()):
        if o["data"].get("n") != done:
            bad.append("object %d counts %r turns, turn is %d" %
                       (oid, o["data"].get("n"), turn))
        if oid != 0 and o["parent"] not in objs:
            bad.append("object %d: parent %r missing" % (oid, o["parent"]))
        elif oid != 0 and oid not in objs[o["parent"]]["children"]:
            bad.append("object %d not among its parent's children" % oid)
        for c in o["children"]:
            if c not in objs or objs[c]["parent"] != oid:
                bad.append("object %d: child %d missing or elsewhere" %
                           (oid, c))
    state = keys.get("meta/rsstate", {})
    if state.get("turns") != done:
        bad.append("ruleset state counts %r turns, turn is %d" %
                   (state.get("turns"), turn))
    boards = {}
    for k, v in keys.items():
        if k.startswith("msg/"):
            boards.setdefault(int(k.split("/")[1]), []).append(v["subject"])
    for k, p in keys.items():
        if not k.startswith("player/"):
            continue
        if p.get("score") != done:
            bad.append("player %d: score %r, turn %d" % (p["id"],
                       p.get("score"), turn))
        turns = sorted(int(s.split()[1]) for s in boards.get(p["board"], [])
                       if s.startswith("Turn "))
        if turns and turns != list(range(turns[0], turn + 1)):
            bad.append("player %d's board has turn messages %r at turn %d"
                       % (p["id"], turns, turn))
        if turns and turns[-1] != turn:
            bad.append("player %d's last turn message is for %d, turn %d"
                       % (p["id"], turns[-1], turn))
    for k in keys:
        if k.startswith("hist/"):
            t = int(k.split("/")[1])
            if t > turn:
                bad.append("history record %s after turn %d" % (k, turn))
    return bad


def checksums(folder):
    """{file name: sha256} of the files of folder (a database)."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def run_server(data_dir, *extra, timeout=20):
    """Runs the server in the foreground on data_dir until it exits (it
    should not start); returns (exit code, output). A server that starts
    is stopped and reported with code None."""
    port = tplib.free_port()
    cmd = [tplib.tpserver_path(), "-f", "--port", str(port), "--bind",
           "127.0.0.1", "--data", data_dir, "--set",
           "password_iterations=1000"] + tplib.NO_WEB + list(extra)
    proc = subprocess.Popen(cmd, cwd=os.path.dirname(data_dir),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return None, out.decode("utf-8", "replace")


# ------------------------------------------------------------ restart

def test_restart(t):
    first = persist_server("--set", "ruleset_settings.speed=3",
                           "--set", "ruleset_settings.rocks=12").start()
    second = None
    try:
        a, b = Player(first), Player(first)
        t.ok(a.ship and b.ship, "both players have a ship with a queue",
             "%r %r" % (a.ship, b.ship))
        for x in (300, 600, 900):
            a.fly(x)
            b.fly(-x)
        a.post("from a")
        a.post("to b", board=b.get("GetBoards", [0])[0]["id"])
        b.post("b first", slot=0)
        for p in (a, b):
            p.call("FinishedTurn")
        a.req("RemoveOrder", {"id": a.ship, "slots": [1]})
        b.fly(12345, slot=0)
        b.req("RemoveMessage", {"id": 0, "slots": [1]})
        for p in (a, b):
            p.call("FinishedTurn")
        a.fly(42)
        b.call("FinishedTurn")      # b waits for a in turn 2
        t.is_(a.call("GetTimeRemaining")["turn"], 2, "(setup) turn 2")
        before = {p.name: dump(p) for p in (a, b)}
        left = time_left(a)
        for p in (a, b):
            p.close()
        stopped = time.monotonic()
        t.is_(first.stop(cleanup=False), 0, "SIGTERM: the server exits 0")
        time.sleep(1.2)

        # The second start does not repeat the ruleset settings: the game
        # keeps those it was created with.
        second = persist_server(data_dir=first.data_dir).start()
        a2 = Player(second, name=a.name, create=False)
        b2 = Player(second, name=b.name, create=False)
        after = {p.name: dump(p) for p in (a2, b2)}
        for name in before:
            diffs = [k for k in set(before[name]) | set(after[name])
                     if before[name].get(k) != after[name].get(k)]
            t.ok(not diffs, "player %s sees the same game after the "
                 "restart (%d requests compared)" % (name,
                                                     len(before[name])),
                 "\n".join("%s:\n before %r\n after  %r" % (
                     k, before[name].get(k), after[name].get(k))
                     for k in sorted(diffs)[:5]))
        left2 = time_left(a2)
        gone = time.monotonic() - stopped
        t.ok(left - gone - 2 <= left2 <= left - gone + 2,
             "the time left in the turn went on (%d s before, %d s after "
             "%.1f s)" % (left, left2, gone))
        t.is_(a2.call("GetTimeRemaining")["waiting"], [a2.id],
              "FinishedTurn is remembered: only a is waited for")
        x0 = position_x(a2.get("GetObjectsByID", [a2.ship])[0])
        a2.call("FinishedTurn")
        t.is_(a2.call("GetTimeRemaining")["turn"], 3,
              "the turn ends when a finishes after the restart")
        ship = a2.get("GetObjectsByID", [a2.ship])[0]
        t.is_(counter(ship), 3, "objects counted 3 finished turns")
        t.is_(position_x(ship) - x0, 3, "the ship flew at speed 3, the "
              "setting stored with the game")
        a2.close()
        b2.close()
        t.is_(second.stop(cleanup=False), 0, "second server exits 0")
        keys = read_db(first.data_dir)
        t.is_(keys["meta/game"]["settings"],
              {"speed": 3, "rocks": 12, "turn_ms": 0},
              "meta/game keeps the ruleset settings of the game")
        probs = db_problems(keys)
        t.ok(not probs, "the stored game is consistent", "\n".join(probs))
        t.ok(any(k.startswith("hist/") for k in keys),
             "object history is stored (hist/<turn>/<id>)")
    finally:
        if second:
            second.stop()
        first.stop()


# ------------------------------------------------------------ refusals

def flip(path, offset_fraction, count=64):
    with open(path, "r+b") as f:
        f.seek(0, 2)
        size = f.tell()
        off = max(0, min(size - count, int(size * offset_fraction)))
        f.seek(off)
        data = bytearray(f.read(count))
        for i in range(len(data)):
            data[i] ^= 0x5A
        f.seek(off)
        f.write(bytes(data))


def truncate(path, keep_fraction):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * keep_fraction))


def only(folder, suffix):
    names = [n for n in sorted(os.listdir(folder)) if n.endswith(suffix) or
             n.startswith(suffix)]
    return os.path.join(folder, names[-1]) if names else None


def set_value(db, key, value):
    """Writes one raw key with tp.store (a stopped server's database)."""
    script = os.path.join(os.path.dirname(db), "set.lua")
    with open(script, "w") as f:
        f.write("local s = require 'tp.store'\n"
                "local db = assert(s.open(arg[1], "
                "{ create_if_missing = false }))\n"
                "if arg[3] then assert(db:put(arg[2], arg[3]))\n"
                "else assert(db:delete(arg[2])) end\ndb:close()\n")
    args = [db, key] if value is None else [db, key, value]
    subprocess.run([tplib.tpserver_path(), "script", script] + args,
                   check=True, timeout=30)
    os.remove(script)


def compact(db):
    """Compacts a stopped server's database, so that it is in table
    files."""
    script = os.path.join(os.path.dirname(db), "compact.lua")
    with open(script, "w") as f:
        f.write("local s = require 'tp.store'\n"
                "local db = assert(s.open(arg[1], "
                "{ create_if_missing = false }))\n"
                "db:compact()\ndb:close()\n")
    subprocess.run([tplib.tpserver_path(), "script", script, db],
                   check=True, timeout=30)
    os.remove(script)


def make_game(folder, compacted):
    """A stopped persist game with two players and a turn played, in
    folder/data; compacted: everything in table files (else the last
    writes are in the log)."""
    srv = persist_server("--set", "ruleset_settings.rocks=200",
                         data_dir=os.path.join(folder, "data")).start()
    try:
        a, b = Player(srv), Player(srv)
        for x in range(10):
            a.fly(1000 + x)
        a.call("FinishedTurn")
        b.call("FinishedTurn")
        a.close()
        b.close()
    finally:
        srv.stop(cleanup=False)
        shutil.rmtree(srv.tmp, ignore_errors=True)
    db = os.path.join(folder, "data", "db")
    if compacted:
        compact(db)
    else:
        # A little more in the log after the tables.
        srv = persist_server(data_dir=os.path.join(folder, "data")).start()
        try:
            c = Player(srv)
            c.fly(77)
            c.close()
        finally:
            srv.stop(cleanup=False)
            shutil.rmtree(srv.tmp, ignore_errors=True)
    return os.path.join(folder, "data")


REFUSALS = [
    # (name, compacted game?, damage(db folder), ruleset, words expected)
    ("a game of another ruleset", False, None, TINY,
     ["persist game", "--ruleset persist"]),
    ("a newer format", False,
     lambda db: set_value(db, "meta/game", json.dumps(
         {"format": 99, "ruleset": "persist", "created": 1})),
     PERSIST, ["newer tpserver", "format 99"]),
    ("a value that is not JSON", False,
     lambda db: set_value(db, "obj/0000000003", '{"id":3,"nam'),
     PERSIST, ["damaged", "obj/0000000003", "not JSON"]),
    ("data without a game record", False,
     lambda db: set_value(db, "meta/game", None),
     PERSIST, ["no game record"]),
    ("no CURRENT file", True,
     lambda db: os.remove(os.path.join(db, "CURRENT")),
     PERSIST, ["damaged", "CURRENT"]),
    ("a truncated table file", True,
     lambda db: truncate(only(db, ".ldb"), 0.5), PERSIST, ["damaged"]),
    ("a corrupted table file", True,
     lambda db: flip(only(db, ".ldb"), 0.3, 4096), PERSIST, ["damaged"]),
    ("a truncated MANIFEST", True,
     lambda db: truncate(only(db, "MANIFEST-"), 0.0), PERSIST,
     ["damaged"]),
    ("a corrupted MANIFEST", True,
     lambda db: flip(only(db, "MANIFEST-"), 0.2, 16), PERSIST,
     ["damaged"]),
    ("a corrupted log", False,
     lambda db: flip(only(db, ".log"), 0.5, 32), PERSIST, ["damaged"]),
]


def test_refusals(t):
    tmp = tempfile.mkdtemp(prefix="tpserver-persist-")
    try:
        games = {c: make_game(os.path.join(tmp, "game%d" % c), c)
                 for c in (False, True)}
        for n, (what, compacted, damage, ruleset, words) in \
                enumerate(REFUSALS):
            data = os.path.join(tmp, "case%d" % n, "data")
            shutil.copytree(games[compacted], data)
            db = os.path.join(data, "db")
            if damage:
                damage(db)
            before = checksums(db)
            rc, out = run_server(data, "--ruleset", ruleset)
            last = out.strip().splitlines()[-1] if out.strip() else ""
            t.ok(rc not in (0, None),
                 "%s: the server does not start (exit %s)" % (what, rc), out)
            t.ok(last.startswith("tpserver: ") and
                 all(w in last for w in words),
                 "%s: the message says so: %s" % (what, last[:150]),
                 "want the words %r in the last line of:\n%s" %
                 (words, out[-2000:]))
            t.is_(checksums(db), before,
                  "%s: no file of the database changed" % what)
            t.ok(not os.path.exists(db + ".check"),
                 "%s: the check copy is gone" % what)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    t = tplib.Tap()
    t.run(lambda: test_restart(t), lambda: test_refusals(t))
    t.done()


if __name__ == "__main__":
    main()
