#!/usr/bin/env python3
"""Crash recovery (issue 5): 30 rounds of SIGKILL at random moments, each
followed by a restart on the same data directory.

Each round starts the server, logs both players in, and kills it with
SIGKILL in one of these situations (chosen at random, each at a random
instant):
  requests  both players stream OrderInsert, RemoveOrder and PostMessage
  turn      both players finish the turn; the kill lands while the log says
            the turn is being made (the persist ruleset spins turn_ms)
  mixed     requests with FinishedTurn among them, so turns end meanwhile
  reply     one OrderInsert, and the kill right after its Okay arrives
  account   a CreateAccount in flight
  starting  a new server while it starts (checks, loads, ends a turn every
            player had finished)
After each kill, before the restart, the database itself is read
(persist_check.lua) and must be consistent: every object, the ruleset's
state, every player's score and board count the same finished turns (a
turn is all there or not at all), every player has an account, a board
and a ship, every order and message that was answered Okay is there (and
what was in flight is there or not, whole), the turn is the last one seen
or the next. Then the restarted server must serve both players the same
orders, and an account answered Okay must log in.

Seed: TP_SEED (printed). The whole test takes about half a minute.
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_persist import (PERSIST, Player, board_subjects,  # noqa: E402
                          db_problems, queue_targets, read_db)

ROUNDS = 30
TURN_MS = 200
BUDGET = 75.0      # seconds: later rounds are skipped past this


def order_targets_in_db(keys, queue):
    q = keys.get("queue/%010d" % queue)
    return [o["params"]["to"]["x"] for o in (q or {}).get("orders", [])]


def subjects_in_db(keys, board):
    """The subjects of a board's messages in slot order, read as
    docs/storage.md says: the board's msgs when it is reordered, else
    the message keys in serial order."""
    b = keys.get("board/%010d" % board)
    if not b:
        return []
    prefix = "msg/%010d/" % board
    if b.get("reordered"):
        serials = b["msgs"]
    else:
        serials = sorted(int(k[len(prefix):]) for k in keys
                         if k.startswith(prefix))
    return [keys[prefix + "%010d" % s]["subject"] for s in serials]


def player_problems(keys):
    bad = []
    accounts = {v["id"]: v for k, v in keys.items()
                if k.startswith("account/")}
    ships = {v["owner"] for k, v in keys.items()
             if k.startswith("obj/") and v["type"] == 2}
    for k, p in keys.items():
        if not k.startswith("player/"):
            continue
        pid = p["id"]
        if pid not in accounts:
            bad.append("player %d has no account" % pid)
        if "board/%010d" % p.get("board", -1) not in keys:
            bad.append("player %d has no board" % pid)
        if pid not in ships:
            bad.append("player %d has no ship" % pid)
    for pid in accounts:
        if "player/%010d" % pid not in keys:
            bad.append("account of player %d without a player" % pid)
    return bad


class Stream(threading.Thread):
    """A player's requests until the server dies: Fly orders appended,
    the first order removed now and then, messages posted, FinishedTurn
    (with finish=True) now and then. known: the player's orders and
    messages as answered; pending: the request in flight when the
    connection died (it may or may not have been applied)."""

    def __init__(self, p, rng, tag, orders, messages, finish):
        super().__init__(daemon=True)
        self.p, self.rng, self.tag = p, rng, tag
        self.orders, self.messages = orders, messages
        self.finish = finish
        self.pending = None
        self.turns_seen = []
        self.count = 0

    def run(self):
        n = 0
        try:
            while True:
                n += 1
                r = self.rng.random()
                if self.finish and r < 0.08:
                    self.pending = ("finish", None)
                    self.p.call("FinishedTurn")
                    self.turns_seen.append(self.p.call(
                        "GetTimeRemaining")["turn"])
                elif r < 0.55:
                    x = 500000 + self.rng.randrange(1, 1 << 30)
                    self.pending = ("insert", x)
                    f = self.p.fly(x)
                    if f.is_("Order"):
                        self.orders.append(x)
                elif r < 0.70 and self.orders:
                    self.pending = ("remove", self.orders[0])
                    fr = self.p.req("RemoveOrder", {"id": self.p.ship,
                                                    "slots": [0]})
                    if fr[-1].is_("Okay"):
                        self.orders.pop(0)
                else:
                    s = "m%s-%d" % (self.tag, n)
                    self.pending = ("post", s)
                    if self.p.post(s).is_("Okay"):
                        self.messages.append(s)
                self.pending = None
                self.count += 1
        except Exception:
            pass


def possible(known, pending, kind_insert, kind_remove):
    """The lists the store may hold: known, or known with the request in
    flight applied."""
    out = [list(known)]
    if pending and pending[0] == kind_insert:
        out.append(list(known) + [pending[1]])
    if pending and pending[0] == kind_remove and known:
        out.append(list(known[1:]))
    return out


def wait_for_log(srv, text, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in srv.log():
            return True
        time.sleep(0.005)
    return False


def main():
    t = tplib.Tap()
    seed = int(os.environ.get("TP_SEED") or time.time())
    rng = random.Random(seed)
    t.ok(True, "seed %d (TP_SEED=%d reproduces the kill points)" %
         (seed, seed))
    tmp = tempfile.mkdtemp(prefix="tpserver-crash-")
    data = os.path.join(tmp, "data")
    args = ("--ruleset", PERSIST, "--set", "turn_length=0",
            "--set", "ruleset_settings.turn_ms=%d" % TURN_MS,
            "--set", "ruleset_settings.rocks=300", "--log-level", "info")
    names = [tplib.unique_name("crashA"), tplib.unique_name("crashB")]
    state = {}           # player name -> {"orders", "messages", "ship"}
    accounts = []        # accounts made in account rounds (stored)
    turn_seen = 0
    started = time.monotonic()
    counts = {}
    failures = 0
    mid_turn = 0         # turn rounds killed before the turn was stored
    srv = tplib.Server(*args, data_dir=data).start()
    try:
        for name in names:
            p = Player(srv, name=name)
            state[name] = {"orders": [], "messages": [], "ship": p.ship,
                           "board": p.get("GetBoards", [0])[0]["id"]}
            p.close()
        for rnd in range(ROUNDS):
            if time.monotonic() - started > BUDGET:
                t.skip("round %d" % rnd, "time budget of %.0f s used" %
                       BUDGET)
                continue
            mode = rng.choice(["requests", "turn", "mixed", "reply",
                               "account", "starting"])
            counts[mode] = counts.get(mode, 0) + 1
            # Players who joined in account rounds only finish turns.
            for name in accounts:
                p = Player(srv, name=name, create=False, timeout=5)
                p.call("FinishedTurn")
                p.close()
            players = [Player(srv, name=n, create=False, timeout=5)
                       for n in names]
            streams = []
            new_account = None
            created = []
            if mode in ("requests", "mixed"):
                for p, tag in zip(players, "ab"):
                    s = state[p.name]
                    st = Stream(p, random.Random(rng.random()),
                                "%d%s" % (rnd, tag), s["orders"],
                                s["messages"], mode == "mixed")
                    streams.append(st)
                    st.start()
                time.sleep(rng.uniform(0.0, 0.4))
            elif mode == "turn":
                marker = "turn ending reason=all turn=%d" % turn_seen
                players[0].call("FinishedTurn")
                players[1].c.send("FinishedTurn")
                wait_for_log(srv, marker, 5)
                time.sleep(rng.uniform(0, TURN_MS * 1.3 / 1000))
            elif mode == "reply":
                p = players[rng.randrange(2)]
                x = 500000 + rng.randrange(1, 1 << 30)
                if p.fly(x).is_("Order"):
                    state[p.name]["orders"].append(x)
            elif mode == "starting":
                # Killed while it starts: checking, loading, perhaps
                # ending a turn every player had finished.
                srv.proc.kill()
                srv.proc.wait(10)
                srv.kill()
                srv = tplib.Server(*args, data_dir=data)
                srv.port = tplib.free_port()
                srv.proc = subprocess.Popen(
                    srv.command(), cwd=srv.tmp, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(rng.uniform(0, 0.12))
            else:
                new_account = tplib.unique_name("late")
                c = srv.client(timeout=5)
                c.connect()

                def create(c=c, name=new_account):
                    try:
                        if c.create_account(name, "pw-" + name).is_("Okay"):
                            created.append(name)
                    except Exception:
                        pass
                th = threading.Thread(target=create, daemon=True)
                th.start()
                time.sleep(rng.uniform(0, 0.05))
            srv.proc.kill()
            srv.proc.wait(10)
            for st in streams:
                st.join(10)
            for p in players:
                turn_seen = max([turn_seen] + [
                    x for st in streams if st.p is p
                    for x in st.turns_seen])
                p.close()
            log = srv.log()
            srv.kill()   # (bookkeeping: it is dead already)

            # The database as the kill left it.
            what = "round %d (%s)" % (rnd + 1, mode)
            problems = []
            try:
                keys = read_db(data)
            except Exception as e:
                keys = None
                problems.append("cannot read the database: %s" % e)
            if keys:
                problems += db_problems(keys) + player_problems(keys)
                turn = keys["meta/turn"]["turn"]
                if turn not in (turn_seen, turn_seen + 1):
                    problems.append("turn %d, last seen %d" % (turn,
                                                               turn_seen))
                for st in streams:
                    s = state[st.p.name]
                    got = order_targets_in_db(keys, s["ship"])
                    if got not in possible(s["orders"], st.pending,
                                           "insert", "remove"):
                        problems.append("%s's orders: stored %r, answered "
                                        "%r, in flight %r" % (
                                            st.p.name, got[-5:],
                                            s["orders"][-5:], st.pending))
                    s["orders"][:] = got
                    msgs = [m for m in subjects_in_db(keys, s["board"])
                            if m.startswith("m")]
                    if msgs not in possible(s["messages"], st.pending,
                                            "post", None):
                        problems.append("%s's messages: stored %r, "
                                        "answered %r, in flight %r" % (
                                            st.p.name, msgs[-5:],
                                            s["messages"][-5:],
                                            st.pending))
                    s["messages"][:] = msgs
                for name in state:
                    got = order_targets_in_db(keys, state[name]["ship"])
                    if got != state[name]["orders"]:
                        problems.append("%s's orders: stored %r, "
                                        "answered %r" % (
                                            name, got[-5:],
                                            state[name]["orders"][-5:]))
                for name in created:
                    if "account/" + name.lower() not in keys:
                        problems.append("account %s answered Okay is not "
                                        "stored" % name)
                if mode == "turn":
                    what += ", killed %s the turn's commit" % (
                        "before" if turn == turn_seen else "after")
                    if turn == turn_seen:
                        mid_turn += 1
                turn_seen = turn
            if not t.ok(not problems, "%s: the stored game is consistent "
                        "(turn %s, %d requests answered)" % (
                            what, keys and keys["meta/turn"]["turn"],
                            sum(st.count for st in streams)),
                        "\n".join(problems[:10])):
                failures += 1
                t.diag("server log tail:\n" + "\n".join(
                    log.splitlines()[-15:]))

            # Restart: the same game is served.
            srv = tplib.Server(*args, data_dir=data).start()
            problems = []
            for name in names:
                p = Player(srv, name=name, create=False)
                if queue_targets(p) != state[name]["orders"]:
                    problems.append("%s's orders served: %r, stored %r" %
                                    (name, queue_targets(p)[-5:],
                                     state[name]["orders"][-5:]))
                msgs = [m for m in board_subjects(p) if m.startswith("m")]
                if msgs != state[name]["messages"]:
                    problems.append("%s's messages served differ" % name)
                turn = p.call("GetTimeRemaining")["turn"]
                if turn not in (turn_seen, turn_seen + 1):
                    problems.append("turn served %d, stored %d" %
                                    (turn, turn_seen))
                turn_seen = max(turn_seen, turn)
                p.close()
            if new_account:
                c = srv.client()
                c.connect()
                ok = c.login(new_account, "pw-" + new_account).is_("Okay")
                c.close()
                if ok:
                    accounts.append(new_account)
                elif created:
                    problems.append("account %s cannot log in" %
                                    new_account)
            if not t.ok(not problems, "%s: the restarted server serves the "
                        "same game" % what, "\n".join(problems)):
                failures += 1
            if failures > 3:
                t.ok(False, "too many failures: stopping")
                break
        t.ok(True, "rounds by kind: %s (%d turn kills before the turn's "
             "commit); %.1f s" % (
                 ", ".join("%s %d" % kv for kv in sorted(counts.items())),
                 mid_turn, time.monotonic() - started))
    finally:
        if srv.alive():
            srv.stop()
        else:
            srv.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    t.done()


if __name__ == "__main__":
    main()
