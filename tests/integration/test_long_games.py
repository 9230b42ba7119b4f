#!/usr/bin/env python3
"""Long games (issue 22): turn schedules in a time zone, over a
daylight-saving change and weekdays, seen in TimeRemaining, the Game frame
and the console's status; idle players (marked, not waited for by
players_finished, cleared by a login, removed with the ruleset's
player_removed hook); the automatic backups' rotation and `tpserver
restore`; a game played to its end (the finite fixture ruleset), archived
by game.new, and a new game on the same server with the old accounts.

The server's clock is the test clock (TPSERVER_CLOCK_OFFSET, and the
console's clock_shift): nothing here waits for a turn's real length."""

import calendar
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_console import console  # noqa: E402
from test_protocol import T, Player, check_okay  # noqa: E402
from test_protocol_turns import pushes, summary  # noqa: E402

FINITE = os.path.join(tplib.ROOT, "tests", "fixtures", "rulesets", "finite")
STARTED, WARNING = 1, 2


def utc(y, mo, d, h=0, mi=0, s=0):
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


class ClockServer(tplib.Server):
    """A server whose clock reads `at` (Unix seconds) when it starts."""

    def __init__(self, *args, at=None, **kw):
        super().__init__(*args, **kw)
        self.at = at

    def start(self):
        old = os.environ.get("TPSERVER_CLOCK_OFFSET")
        offset = 0 if self.at is None else self.at - time.time()
        os.environ["TPSERVER_CLOCK_OFFSET"] = "%.3f" % offset
        try:
            return super().start()
        finally:
            if old is None:
                del os.environ["TPSERVER_CLOCK_OFFSET"]
            else:
                os.environ["TPSERVER_CLOCK_OFFSET"] = old


def lua(srv, code, name):
    """Runs console code printing one JSON value; returns it decoded."""
    rc, out, err = console(srv, 'print(require("cjson").encode(%s))' % code)
    T.ok(rc == 0, name, "exit %r\nstdout: %s\nstderr: %s" % (rc, out, err))
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def run(srv, code, name):
    rc, out, err = console(srv, code)
    T.ok(rc == 0, name, "exit %r\nstdout: %s\nstderr: %s" % (rc, out, err))
    return out


def game_param(p, pid):
    frames = p.req("GetGames")
    for f in frames:
        if f.is_("Game"):
            for prm in f["parameters"]:
                if prm["id"] == pid:
                    return prm["intval"]
    return None


def started_push(p, turn, timeout=10):
    """The TimerStarted push (time, turn) of turn to p, or (None, None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for s in summary(pushes(p.c, 1, timeout=deadline - time.monotonic())):
            if len(s) == 5 and s[2] == STARTED and s[3] == turn:
                return s[1], s[3]
    return None, None


def test_schedule():
    # Saturday 2026-03-28, 19:59 in Berlin (CET): one minute before the
    # turn ends; the next evening's turn ends at 20:00 CEST, 23 hours on.
    at = utc(2026, 3, 28, 18, 59)
    with ClockServer("--ruleset", FINITE, "--set", "turn_mode=fixed",
                     "--set", "turn_schedule=[\"20:00\"]",
                     "--set", "turn_timezone=Europe/Berlin",
                     "--set", "turn_warning=0",
                     "--set", "ruleset_settings.last_turn=100",
                     at=at) as srv:
        p = Player(srv)
        t = p.call("GetTimeRemaining")
        T.ok(50 <= t["time"] <= 60, "the first turn ends at 20:00 CET, a "
             "minute on", repr(t["time"]))
        T.is_(game_param(p, 6), utc(2026, 3, 28, 19),
              "the Game frame's next turn time is 19:00 UTC")
        st = lua(srv, "status()", "status")
        T.is_(st and st.get("turn_ends"),
              "2026-03-28 20:00 +01:00 Europe/Berlin",
              "the console's status shows the end in local time")
        run(srv, "clock_shift(61)", "the clock is moved past 20:00")
        left, turn = started_push(p, 1)
        T.ok(turn == 1 and left is not None and
             82780 <= left <= 82800, "the scheduled time ended the turn; "
             "the next lasts 23 hours, over the change to summer time",
             repr((left, turn)))
        T.is_(game_param(p, 6), utc(2026, 3, 29, 18),
              "next turn: 20:00 CEST is 18:00 UTC")
        st = lua(srv, "status()", "status after the change")
        T.is_(st and st.get("turn_ends"),
              "2026-03-29 20:00 +02:00 Europe/Berlin",
              "status: the end in summer time")
        # Weekdays, past midnight: Saturday evening to Monday 00:30.
        run(srv, 'setting("turn_schedule", { "Mon-Fri 00:30" })',
            "the schedule is changed to weekdays")
        t = p.call("GetTimeRemaining")
        want = utc(2026, 3, 29, 22, 30) - (utc(2026, 3, 28, 19, 0, 1))
        T.ok(abs(t["time"] - want) <= 10, "Monday 00:30 CEST is next "
             "(Sunday has no turn end)", repr((t["time"], want)))
        rc, out, err = console(srv, "clock_shift('x')")
        T.ok(rc != 0 and "number" in err, "clock_shift wants a number", err)


def test_schedule_players_finished():
    at = utc(2026, 12, 8, 10)       # a Tuesday, 10:00 UTC
    with ClockServer("--ruleset", FINITE,
                     "--set", "turn_mode=players_finished",
                     "--set", "turn_schedule=[\"08:00\",\"20:00\"]",
                     "--set", "turn_warning=0",
                     "--set", "ruleset_settings.last_turn=100",
                     at=at) as srv:
        a, b = Player(srv), Player(srv)
        t = a.call("GetTimeRemaining")
        T.ok(abs(t["time"] - 36000) <= 10, "the turn ends at 20:00",
             repr(t["time"]))
        check_okay(a.req("FinishedTurn"), "A finishes")
        check_okay(b.req("FinishedTurn"), "B finishes")
        left, turn = started_push(a, 1)
        T.ok(turn == 1 and left is not None and abs(left - 36000) <= 10,
             "everyone finished: the turn ended early; the next ends at "
             "the next listed time, 20:00", repr((left, turn)))


def test_schedule_reload():
    # Tuesday 2026-12-08 10:00 UTC; the file's schedule is changed and
    # reloaded (SIGHUP): it applies from the next turn.
    at = utc(2026, 12, 8, 10)
    srv = ClockServer("--ruleset", FINITE, "--set", "turn_mode=fixed",
                      "--set", "turn_warning=0",
                      "--set", "ruleset_settings.last_turn=100", at=at)
    path = os.path.join(srv.tmp, "long.lua")

    def write(times):
        with open(path, "w") as f:
            f.write("return { turn_schedule = { %s } }\n" % ", ".join(
                '"%s"' % t for t in times))
    write(["20:00"])
    srv.extra += ["-c", path]
    with srv:
        p = Player(srv)
        T.ok(abs(p.call("GetTimeRemaining")["time"] - 36000) <= 10,
             "the file's schedule: 20:00")
        write(["Wed 06:00"])
        srv.proc.send_signal(signal.SIGHUP)
        T.ok(wait_for(lambda: "config: reloaded" in srv.log()),
             "SIGHUP reloads the file")
        T.ok(abs(p.call("GetTimeRemaining")["time"] - 36000) <= 10,
             "the running turn keeps its end")
        run(srv, "turn.now()", "the turn is ended")
        t = p.call("GetTimeRemaining")
        want = utc(2026, 12, 9, 6) - at
        T.ok(abs(t["time"] - want) <= 10, "the next turn ends at the "
             "reloaded schedule's time, Wednesday 06:00", repr(t["time"]))
        write(["Wed 26:00"])
        srv.proc.send_signal(signal.SIGHUP)
        T.ok(wait_for(lambda: "turn_schedule[1]" in srv.log()),
             "a bad schedule in a reload is refused, naming the entry")
        T.ok(srv.alive(), "and the server goes on")


def test_schedule_refused():
    srv = tplib.Server("--set", "turn_schedule=[\"Mon 25:00\"]")
    try:
        srv.start()
        T.ok(False, "a bad schedule stops the start")
    except RuntimeError as e:
        T.ok("turn_schedule[1]" in str(e), "a bad schedule stops the start, "
             "naming the entry", str(e)[-300:])
    finally:
        srv.kill()
    rc = subprocess.run([tplib.tpserver_path(), "--check-config", "--set",
                         "turn_timezone=Nowhere/Atlantis"],
                        capture_output=True, text=True, cwd=tplib.ROOT)
    T.ok(rc.returncode != 0 and "unknown time zone" in rc.stderr,
         "an unknown zone is refused", rc.stderr[-300:])


def players(srv):
    rows = lua(srv, "players()", "players()") or []
    return {r["name"]: r for r in rows}


def test_idle():
    with ClockServer("--ruleset", FINITE,
                     "--set", "turn_mode=players_finished",
                     "--set", "turn_length=0", "--set", "turn_warning=0",
                     "--set", "idle_turns=2", "--set", "idle_action=remove",
                     "--set", "idle_remove_turns=1",
                     "--set", "ruleset_settings.last_turn=100",
                     port_flags=["--web-port"]) as srv:
        a, b, c, d = (Player(srv) for _ in range(4))
        c.c.close()
        d.c.close()
        for n in range(2):
            run(srv, "turn.now()", "turn %d ended by the admin" % n)
        rows = players(srv)
        T.ok(not rows[c.name]["idle"] and rows[c.name]["alive"],
             "C was here in turn 0: one turn away is not idle yet")
        run(srv, "turn.now()", "turn 2 ended by the admin")
        rows = players(srv)
        T.ok(rows[c.name]["idle"] and rows[d.name]["idle"] and
             not rows[a.name]["idle"], "two turns neither logged in nor "
             "finished: C and D are idle", repr(rows))
        t = a.call("GetTimeRemaining")
        T.is_(sorted(t["waiting"]), sorted([a.id, b.id]),
              "idle players are not waited for")
        url = "http://127.0.0.1:%d/api/players" % srv.ports["--web-port"]
        got = json.loads(urllib.request.urlopen(url, timeout=10).read())
        idle = {p["name"]: p.get("idle") for p in got}
        T.ok(idle.get(c.name) is True and idle.get(a.name) is False,
             "the web side lists who is idle", repr(got))
        frames = a.req("GetPlayer", {"ids": [c.id]})
        T.ok(len(frames) > 1 and "idle" in frames[1]["race"],
             "the TP Player frame tells other players", repr(frames))
        # C comes back: the mark goes with the login.
        c2 = tplib_login(srv, c)
        rows = players(srv)
        T.ok(not rows[c.name]["idle"], "a login clears the mark")
        t = a.call("GetTimeRemaining")
        T.is_(sorted(t["waiting"]), sorted([a.id, b.id, c.id]),
              "C is waited for again")
        for who in (c2, a, b):
            check_okay(who.req("FinishedTurn"), "finishes")
        left, turn = started_push(a, 4)
        T.is_(turn, 4, "A, B and C finished: the turn ended without D")
        rows = players(srv)
        T.ok(not rows[d.name]["alive"] and rows[d.name]["removed"],
             "D, idle for idle_remove_turns, is out of the game",
             repr(rows[d.name]))
        owners = lua(srv, "(function() local o = {} for _, ob in "
                     "pairs(model.objects) do if ob.type == 1 then "
                     "o[#o + 1] = ob.owner end end return o end)()",
                     "ship owners")
        T.ok(owners is not None and d.id not in owners and 0 in owners,
             "the ruleset's player_removed hook left D's ship unowned",
             repr(owners))


def wait_for(cond, timeout=20):
    """Polls cond() until it holds (work the server does off the request,
    such as a backup copied in slices); returns its last value."""
    deadline = time.monotonic() + timeout * (4 if tplib.under_asan() else 1)
    while True:
        v = cond()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def backups(data):
    folder = os.path.join(data, "backups")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n for n in names
                  if os.path.isdir(os.path.join(folder, n, "db")))


def tool(*args, cwd=None):
    p = subprocess.run([tplib.tpserver_path()] + list(args),
                       capture_output=True, text=True, timeout=120,
                       cwd=cwd or tplib.ROOT)
    return p.returncode, p.stdout, p.stderr


def test_backups_and_restore():
    srv = tplib.Server("--ruleset", FINITE, "--set", "turn_mode=manual",
                       "--set", "backup_every_turns=1",
                       "--set", "backup_keep=2",
                       "--set", "ruleset_settings.last_turn=100")
    srv.start()
    try:
        p = Player(srv)
        run(srv, "turn.now()", "turn 0 ends")
        T.ok(wait_for(lambda: backups(srv.data_dir) == ["turn-1"]),
             "the turn's backup is made in backups/turn-1",
             repr(backups(srv.data_dir)))
        run(srv, "turn.now()", "turn 1 ends")
        run(srv, "turn.now()", "turn 2 ends")
        T.ok(wait_for(lambda: backups(srv.data_dir) ==
                      ["turn-2", "turn-3"]),
             "backup_keep = 2: the oldest is removed",
             repr(backups(srv.data_dir)))
        T.is_(p.call("GetTimeRemaining")["turn"], 3, "the game is at turn 3")
        rc, out, err = tool("restore", "--data", srv.data_dir,
                            os.path.join(srv.data_dir, "backups", "turn-2"))
        T.ok(rc == 1 and "running" in err and "stop it first" in err,
             "restore refuses while the server runs", err)
        p.c.close()
    finally:
        srv.stop(cleanup=False)
    rc, out, err = tool("restore", "--data", srv.data_dir,
                        os.path.join(srv.data_dir, "backups", "turn-2"))
    T.ok(rc == 0 and "turn 2" in out, "restore puts turn 2's backup back",
         out + err)
    aside = [n for n in os.listdir(srv.data_dir)
             if n.startswith("db.before-restore-")]
    T.ok(len(aside) == 1 and os.path.isfile(
        os.path.join(srv.data_dir, aside[0], "CURRENT")),
        "the current database was moved aside, not deleted", repr(aside))
    again = tplib.Server("--ruleset", FINITE, "--set", "turn_mode=manual",
                         data_dir=srv.data_dir)
    with again:
        c = again.client(4)
        c.connect()
        T.ok(c.login(p.name, "pw-" + p.name).is_("Okay"),
             "the restored game knows the player")
        T.is_(c.call("GetTimeRemaining")["turn"], 2,
              "the restored server serves turn 2")
        c.close()
    rc, out, err = tool("restore", "--data", srv.data_dir, srv.tmp)
    T.ok(rc == 1 and "no database" in err, "a folder without a database "
         "is refused", err)
    srv.cleanup()


def subjects(srv, pid):
    return lua(srv, "(function() local b = model.boards[accounts.player("
               "%d).board] local out = {} for i = 0, #b.msgs - 1 do "
               "out[#out + 1] = model.message(b, i).subject end return out "
               "end)()" % pid, "player %d's messages" % pid) or []


def test_game_end_and_next():
    srv = tplib.Server("--ruleset", FINITE, "--set", "turn_mode=manual",
                       "--set", "ruleset_settings.last_turn=2",
                       port_flags=["--web-port"])
    srv.start()
    try:
        a, b = Player(srv), Player(srv)
        run(srv, "turn.now()", "turn 0 ends")
        pushes(a.c, 100, timeout=0.3)
        run(srv, "turn.now()", "turn 1 ends: the last")
        got = [s for s in summary(pushes(a.c, 2)) if len(s) == 5]
        T.ok(got and got[-1][1] == -1 and got[-1][2] == STARTED and
             got[-1][3] == 2, "the last TimeRemaining push: no timer (-1), "
             "turn 2", repr(got))
        t = a.call("GetTimeRemaining")
        T.ok(t["time"] == -1 and t["turnname"] ==
             "Game over: the last turn (2) was played" and
             t["waiting"] == [],
             "TimeRemaining gives the end's reason in the turn name, and "
             "waits for nobody", repr(t))
        T.ok("End of the game" in subjects(srv, a.id) and
             "End of the game" in subjects(srv, b.id),
             "every player gets a message")
        rc, out, err = console(srv, "turn.now()")
        T.ok(rc != 0 and "the game is over" in err, "no turn ends any more",
             err)
        f = a.req("FinishedTurn")[-1]
        T.ok(f.is_("Fail") and "the game is over" in f["result"] and
             "read-only" in f["result"], "FinishedTurn gets a clear Fail",
             repr(f))
        f = a.req("PostMessage", {"id": 1, "slot": -1, "msgtypes": [],
                                  "subject": "gg", "body": "gg", "turn": 0,
                                  "references": []})[-1]
        T.ok(f.is_("Fail") and "the game is over" in f["result"],
             "changes are refused", repr(f))
        c = tplib_login(srv, a)
        T.is_(c.call("GetTimeRemaining")["turn"], 2,
              "a login still works, read-only")
        objs = c.req("GetObjectIDs", {"key": -1, "start": 0, "amount": -1,
                                      "from": -1})
        T.ok(objs[-1].is_("ObjectIDs"), "and the universe can be read")
        url = "http://127.0.0.1:%d/api/game" % srv.ports["--web-port"]
        g = json.loads(urllib.request.urlopen(url, timeout=10).read())
        over = g.get("over") or {}
        T.ok(over.get("turn") == 2 and "last turn" in over.get("reason", "")
             and sorted(over.get("winners", [])) ==
             sorted([a.name, b.name]), "the web side has the end: reason "
             "and winners (a tie of scores)", repr(over))
        st = lua(srv, "status()", "status")
        T.ok(st and "last turn" in (st.get("game_over") or ""),
             "the console's status says the game is over", repr(st))
        # The next game, same server, same accounts.
        rc, out, err = console(srv, 'print(game.new { ruleset = "%s", '
                               'settings = { last_turn = 5 }, '
                               'keep_accounts = true })' % FINITE)
        T.ok(rc == 0 and "new Finite game started with 2 players" in out,
             "game.new starts the next game", out + err)
        archives = os.listdir(os.path.join(srv.data_dir, "archive"))
        T.ok(len(archives) == 1 and archives[0].endswith("-tp") and
             os.path.isdir(os.path.join(srv.data_dir, "archive",
                                        archives[0], "db")),
             "the finished game is archived in archive/<date>-tp",
             repr(archives))
        try:
            left = a.c.recv_available(3)
            closed = left is not None
        except OSError:
            closed = True
        T.ok(closed, "players logged in were disconnected")
        n = tplib_login(srv, a)
        t = n.call("GetTimeRemaining")
        T.ok(t["turn"] == 0 and "Game over" not in t["turnname"],
             "the old account logs in to the new game, at turn 0", repr(t))
        check_okay(n.req("FinishedTurn"), "the new game takes changes")
        rows = players(srv)
        T.ok(set(rows) == {a.name, b.name} and
             all(r["alive"] for r in rows.values()),
             "both players are in the new game", repr(rows))
        subj = subjects(srv, a.id)
        T.ok("Welcome" in subj and "End of the game" not in subj,
             "a new personal board, with a welcome", repr(subj))
        run(srv, "turn.now()", "the new game's turns end")
        archive = os.path.join(srv.data_dir, "archive", archives[0])
    finally:
        srv.stop(cleanup=False)
    old = tplib.Server("--ruleset", FINITE, "--set", "turn_mode=manual",
                       data_dir=archive)
    with old:
        c = tplib_login(old, a)
        t = c.call("GetTimeRemaining")
        T.ok(t["turn"] == 2 and t["turnname"].startswith("Game over"),
             "the archive opens as the finished game", repr(t))
        c.c.close()
    srv.cleanup()


def test_new_game_offline():
    srv = tplib.Server("--ruleset", FINITE, "--set", "turn_mode=manual")
    srv.start()
    try:
        a = Player(srv)
        run(srv, "turn.now()", "turn 0 ends")
        rc, out, err = tool("new-game", "--data", srv.data_dir)
        T.ok(rc == 1 and "running" in err, "new-game refuses while the "
             "server runs", err)
        a.c.close()
    finally:
        srv.stop(cleanup=False)
    rc, out, err = tool("new-game", "--data", srv.data_dir,
                        "--keep-accounts")
    T.ok(rc == 0 and "archived" in out and "1 accounts kept" in out,
         "tpserver new-game archives the game", out + err)
    again = tplib.Server("--ruleset", FINITE, "--set", "turn_mode=manual",
                         data_dir=srv.data_dir)
    with again:
        c = tplib_login(again, a)
        T.is_(c.call("GetTimeRemaining")["turn"], 0,
              "the next start makes the new game, with the old account")
        c.c.close()
    srv.cleanup()


def tplib_login(srv, p):
    """Logs p's account in again on a new connection."""
    class Again(Player):
        def __init__(self):
            self.version = 4
            self.name, self.id = p.name, p.id
            self.c = srv.client(4)
            self.c.connect()
            f = self.c.login(p.name, "pw-" + p.name)
            if not f.is_("Okay"):
                raise RuntimeError("Login: %r" % f)
    return Again()


if __name__ == "__main__":
    test_schedule()
    test_schedule_players_finished()
    test_schedule_reload()
    test_schedule_refused()
    test_idle()
    test_backups_and_restore()
    test_game_end_and_next()
    test_new_game_offline()
    T.done()
