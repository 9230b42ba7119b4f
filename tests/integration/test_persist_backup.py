#!/usr/bin/env python3
"""Live backups (issue 5): a backup taken while clients write is a
consistent snapshot, and a second server started on the copy serves the
same game.

The server is tests/fixtures/persist_server.lua (the real server, with a
GetResource id that starts tp.backup, until the admin console's `backup`
command exists). The game has 8000 rocks, so the copy takes several
slices of the loop, and two players keep inserting orders and posting
messages meanwhile:
* the backup completes while the writes go on, and some writes are
  answered while it runs;
* the copy is a consistent game (every object and the ruleset state at the
  same turn) and holds, of each player's orders and messages, exactly a
  prefix of those answered: everything answered before the backup started,
  nothing sent after it was answered;
* a second server on the copy (another port, while the first runs) serves
  that game: everything but the two players' ships, queues and boards is
  identical to what the first server serves;
* a second backup with the clients quiet: the two servers serve identical
  games, request for request;
* a backup into a folder that holds a database is refused; no
  <dir>/db.incomplete is left by a finished backup.
"""

import os
import shutil
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_persist import (PERSIST, Player, board_subjects,  # noqa: E402
                          db_problems, dump, queue_targets, read_db)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "persist_server.lua")
START, STATUS = 2147418113, 2147418114
SETTINGS = ["turn_length=0", "ruleset_settings.rocks=8000"]


class BackupServer(tplib.Server):
    def __init__(self, backup_dir, **kw):
        super().__init__(**kw)
        self.backup_dir = backup_dir

    def command(self):
        return [tplib.tpserver_path(), "script", FIXTURE, str(self.port),
                self.data_dir, self.backup_dir, "ruleset=" + PERSIST] + \
            SETTINGS


def copy_server(data_dir):
    args = []
    for s in SETTINGS:
        args += ["--set", s]
    return tplib.Server("--ruleset", PERSIST, *args, data_dir=data_dir)


class Writer(threading.Thread):
    """Orders and messages until stop is set; every answered write with
    the times its request was sent and its answer came."""

    def __init__(self, p, tag):
        super().__init__(daemon=True)
        self.p, self.tag = p, tag
        self.stop = threading.Event()
        self.orders = []     # (x, sent, answered)
        self.posts = []      # (subject, sent, answered)
        self.error = None

    def run(self):
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                sent = time.monotonic()
                if n % 3:
                    x = 700000 + n
                    if self.p.fly(x).is_("Order"):
                        self.orders.append((x, sent, time.monotonic()))
                else:
                    s = "w%s-%d" % (self.tag, n)
                    if self.p.post(s).is_("Okay"):
                        self.posts.append((s, sent, time.monotonic()))
        except Exception as e:
            self.error = e


def backup(c):
    """Starts a backup and waits for it; returns (start sent, start
    answered, final state)."""
    sent = time.monotonic()
    f = c.call("GetResource", {"ids": [START]})
    answered = time.monotonic()
    if not f.is_("Okay"):
        return sent, answered, "not started: %r" % f
    deadline = time.monotonic() + 60
    state = "running"
    while state == "running" and time.monotonic() < deadline:
        time.sleep(0.01)
        state = c.call("GetResource", {"ids": [STATUS]})["result"]
    return sent, answered, state


def prefix_check(t, what, got, answered, start_sent, start_answered):
    """got (stored values) must be answered[:k] with every value answered
    before the backup started included and none sent after it was
    answered."""
    values = [a[0] for a in answered]
    k = len(got)
    must = sum(1 for a in answered if a[2] < start_sent)
    may = sum(1 for a in answered if a[1] <= start_answered)
    t.ok(got == values[:k] and must <= k <= may,
         "%s: the copy holds the first %d of %d answered (between %d and "
         "%d)" % (what, k, len(values), must, may),
         "got %r...\nanswered %r..." % (got[-3:], values[max(0, k - 3):k]))


def main():
    t = tplib.Tap()
    tmp = tempfile.mkdtemp(prefix="tpserver-backup-")
    first = BackupServer(os.path.join(tmp, "backup1"),
                         data_dir=os.path.join(tmp, "data"))
    copy1 = copy2 = None
    try:
        first.start()
        a, b = Player(first), Player(first)
        for p in (a, b):
            p.fly(500)
            p.post("before")
            p.call("FinishedTurn")
        admin = Player(first)
        admin.call("FinishedTurn")
        for p in (a, b):
            p.call("FinishedTurn")
        t.is_(a.call("GetTimeRemaining")["turn"], 2, "(setup) turn 2")

        # A backup under load.
        writers = [Writer(a, "a"), Writer(b, "b")]
        for w in writers:
            w.start()
        time.sleep(0.2)
        s_sent, s_answered, state = backup(admin.c)
        done = time.monotonic()
        time.sleep(0.2)
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(20)
        t.ok(state.startswith("done"), "the backup under load completes: "
             "%s" % state)
        t.ok(all(w.error is None for w in writers),
             "the writers were served throughout",
             repr([w.error for w in writers]))
        during = sum(1 for w in writers for o in w.orders + w.posts
                     if s_answered < o[2] < done)
        t.ok(during > 0, "%d writes were answered while the backup ran "
             "(%.0f ms)" % (during, 1000 * (done - s_answered)))
        b1 = os.path.join(tmp, "backup1")
        t.ok(os.path.isdir(os.path.join(b1, "db")) and not
             os.path.exists(os.path.join(b1, "db.incomplete")),
             "the copy is <dir>/db, no db.incomplete left",
             repr(os.listdir(b1)))
        keys = read_db(b1)
        probs = db_problems(keys)
        t.ok(not probs, "the copy is a consistent game (%d keys)" %
             len(keys), "\n".join(probs[:10]))
        t.is_(keys["meta/turn"]["turn"], 2, "the copy is at turn 2")

        copy1 = copy_server(b1).start()
        a1 = Player(copy1, name=a.name, create=False)
        b1p = Player(copy1, name=b.name, create=False)
        for p, w in ((a1, writers[0]), (b1p, writers[1])):
            prefix_check(t, "%s's orders" % w.tag, queue_targets(p)[1:],
                         w.orders, s_sent, s_answered)
            prefix_check(t, "%s's messages" % w.tag,
                         [m for m in board_subjects(p)
                          if m.startswith("w")],
                         w.posts, s_sent, s_answered)
        d_orig, d_copy = dump(admin), dump(Player(copy1, name=admin.name,
                                                  create=False))
        # The writers' ships, queues and boards differ; nothing else.
        mine = {a.ship, b.ship}
        boards = {a.get("GetBoards", [0])[0]["id"],
                  b.get("GetBoards", [0])[0]["id"]}

        def scrub(d):
            out = {}
            for k, v in d.items():
                if k in ("GetObjectIDs", "GetBoardIDs", "boards") or \
                        k.startswith("changed since") or \
                        k.startswith("contains"):
                    continue
                if k == "objects":
                    v = [x for x in v if x[1].get("id") not in mine]
                if k.startswith("messages ") and int(k.split()[1]) in \
                        boards:
                    continue
                out[k] = v
            return out
        so, sc = scrub(d_orig), scrub(d_copy)
        diffs = sorted(k for k in set(so) | set(sc) if so.get(k) !=
                       sc.get(k))
        t.ok(not diffs, "the copy's server serves the same game but for "
             "the writers' ships and boards (%d requests compared)" %
             len(so), "differ: %r" % diffs[:5])
        a1.close()
        b1p.close()
        copy1.stop()
        copy1 = None

        # A backup with the clients quiet: the same game exactly.
        b2 = os.path.join(tmp, "backup2")
        c2 = Player(first)
        os.rename(b1, b1 + ".old")
        _, _, state = backup(c2.c)
        os.rename(b1, b2)
        os.rename(b1 + ".old", b1)
        t.ok(state.startswith("done"), "a quiet backup completes: %s" %
             state)
        copy2 = copy_server(b2).start()
        for p in (a, b, admin):
            q = Player(copy2, name=p.name, create=False)
            d1, d2 = dump(p), dump(q)
            diffs = sorted(k for k in set(d1) | set(d2)
                           if d1.get(k) != d2.get(k))
            t.ok(not diffs, "quiet backup: %s sees the same game on both "
                 "servers (%d requests)" % (p.name, len(d1)),
                 "differ: %r" % diffs[:5])
            q.close()

        # Into a folder that holds a database (backup1's): refused.
        f = c2.call("GetResource", {"ids": [START]})
        t.ok(f.is_("Fail") and "already holds a database" in f["result"],
             "a backup into a folder holding a database is refused",
             repr(f))
        t.ok(first.alive(), "the first server is still up")
    finally:
        for s in (copy1, copy2, first):
            if s is not None:
                s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    t.done()


if __name__ == "__main__":
    main()
