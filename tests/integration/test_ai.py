#!/usr/bin/env python3
"""Computer players (tp.ai, rulesets/minisec/ai.lua) in a real server:
ai_players = 2 makes two when the game is created, shown as AI in
GetPlayer's race, the console's players() and ai.list() and the web
page's player list; nobody can log in as one; they finish their turn
as soon as their orders are in, so that a human's FinishedTurn ends a
players_finished turn at once; they give orders through the same order
handlers as clients; ai.add and ai.remove; after a restart they play the
next turns, and no more are made; alone they never end a turn; an
AI-only game of three, its turns ended by the console, ends in a victory
and is the same game again with the same seed; ai_players (and
idle_action = "ai") with a ruleset without an AI is refused at start and
by --check-config; with idle_action = "ai" an idle player's empire is
played by the AI until their next login."""

import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
import weblib  # noqa: E402
from test_console import console, ok_run  # noqa: E402
from test_protocol import T, Player, check_okay  # noqa: E402

ARGS = ("--set", "ai_players=2", "--set", "turn_length=0",
        "--set", "ruleset_settings.random_seed=9")


def time_remaining(p):
    """(turn, sorted waiting ids) from GetTimeRemaining."""
    f = p.call("GetTimeRemaining")
    return f["turn"], sorted(f["waiting"])


def until_waiting(p, want, turn, timeout=20.0):
    """GetTimeRemaining until the waiting list is want in turn (the AIs
    play on the server's loop, each on its own pass); the last answer."""
    deadline = time.monotonic() + timeout * (4 if tplib.under_asan() else 1)
    got = time_remaining(p)
    while got != (turn, want) and time.monotonic() < deadline:
        time.sleep(0.05)
        got = time_remaining(p)
    return got


def console_json(srv, code):
    """The JSON a console chunk prints."""
    out = ok_run(srv, "print(require('cjson').encode(%s))" % code,
                 "console: " + code[:60])
    return json.loads(out.splitlines()[-1]) if out else None


def login_fails(srv, name, password):
    c = srv.client()
    c.connect()
    f = c.login(name, password)
    c.close()
    return f.is_("Fail")


def test_game():
    srv = tplib.Server(*ARGS, port_flags=["--web-port"])
    srv.start()
    try:
        alice = Player(srv, name="alice")
        ids = alice.list_ids("GetPlayerIDs")
        T.is_(len(ids), 3, "two computer players and alice")
        others = [i for i in ids if i != alice.id]
        frames = alice.get("GetPlayer", others)
        T.is_([(f["name"], f["race"]) for f in frames],
              [("Ada", "AI (normal)"), ("Babbage", "AI (normal)")],
              "GetPlayer: named from the list, the race says AI and its "
              "level")
        T.is_(until_waiting(alice, [alice.id], 0), (0, [alice.id]),
              "the AIs have finished turn 0 on their own; alice is "
              "waited for")
        T.ok(login_fails(srv, "Ada", "") and login_fails(srv, "Ada", "x")
             and login_fails(srv, "Ada", "none"),
             "nobody can log in as a computer player")

        # Their orders went through the order handlers into the queues.
        n = console_json(srv, "(function() local n = 0 for _, q in "
                         "pairs(model.queues) do if q.owner ~= %d and "
                         "#q.orders > 0 then n = n + 1 end end return n "
                         "end)()" % alice.id)
        T.ok(n and n > 0, "the AIs' objects have orders", repr(n))

        check_okay(alice.req("FinishedTurn"), "alice: FinishedTurn")
        T.is_(time_remaining(alice)[0], 1,
              "players_finished: the turn ended right after the human's "
              "FinishedTurn")
        T.is_(until_waiting(alice, [alice.id], 1), (1, [alice.id]),
              "the AIs play turn 1 at once")

        listing = ok_run(srv, "players()", "console: players()")
        T.ok("AI" in listing and "normal" in listing, "players() shows "
             "the AI level", listing)
        ais = console_json(srv, "ai.list()")
        T.is_([(a["name"], a["level"], a["controlled"]) for a in ais],
              [("Ada", "normal", False), ("Babbage", "normal", False)],
              "ai.list()")
        ok_run(srv, "ai.add('Zed', 'easy')", "console: ai.add", "Zed")
        T.is_(until_waiting(alice, [alice.id], 1), (1, [alice.id]),
              "the new one plays the running turn at once")
        rc, _, err = console(srv, "ai.add('Yan', 'hard')")
        T.ok(rc == 1 and "hard" in err and "easy" in err,
             "ai.add refuses an unknown level", err)
        ok_run(srv, "ai.remove('Zed')", "console: ai.remove", "removed")
        rc, _, err = console(srv, "ai.remove('alice')")
        T.ok(rc == 1 and "no computer player" in err,
             "ai.remove refuses a human", err)
        T.is_(len(alice.list_ids("GetPlayerIDs")), 3, "Zed is gone")

        w = weblib.Web(srv)
        st, _, ps = w.get("/api/players")
        T.is_([(p["name"], p["ai"]) for p in ps],
              [("Ada", True), ("Babbage", True), ("alice", False)],
              "the web page's player list marks them")
        T.is_(srv.error_lines(), [], "no errors in the server log")
        alice.close()
    finally:
        srv.stop(cleanup=False)

    # A restart in the middle of the game: the same players, and the AIs
    # play on.
    again = tplib.Server(*ARGS, data_dir=srv.data_dir)
    again.start()
    try:
        c = again.client()
        c.connect()
        check_okay([c.login("alice", "pw-alice")], "alice logs in again")
        alice.c = c
        T.is_(len(alice.list_ids("GetPlayerIDs")), 3,
              "no new computer players at a restart")
        T.is_(time_remaining(alice), (1, [alice.id]),
              "turn 1: the AIs had finished it")
        check_okay(alice.req("FinishedTurn"), "alice: FinishedTurn")
        T.is_(until_waiting(alice, [alice.id], 2), (2, [alice.id]),
              "after the restart the AIs play turn 2")
        check_okay(alice.req("FinishedTurn"), "alice: FinishedTurn")
        T.is_(until_waiting(alice, [alice.id], 3), (3, [alice.id]),
              "and turn 3")
        T.is_(again.error_lines(), [], "no errors in the server log")
        c.close()
    finally:
        again.stop()
        srv.stop()


def test_all_ai():
    """Computer players alone never end a turn early."""
    with tplib.Server(*ARGS) as srv:
        n = None
        deadline = time.monotonic() + 20
        while n != 0 and time.monotonic() < deadline:
            n = console_json(srv, "#turn.waiting()")
            time.sleep(0.1)
        T.is_(n, 0, "both AIs have finished turn 0")
        T.is_(console_json(srv, "turn.number()"), 0,
              "players_finished with computer players only: the turn "
              "does not end")
        T.is_(console_json(srv, "turn.now()"), 1, "turn.now() ends it")


# A console script playing an AI-only game: the turns end by turn.now()
# once every AI has finished (sleep lets the server run them), until one
# player is left; then the turns, the survivors and the universe.
AI_ONLY_GAME = """
ai.add("Ada", "normal") ai.add("Babbage", "easy") ai.add("Turing", "easy")
local function alive()
    local n = 0
    for _, p in ipairs(accounts.players()) do
        if p.alive ~= false then n = n + 1 end
    end
    return n
end
local turns = 0
while alive() > 1 and turns < 200 do
    while #turn.waiting() > 0 do sleep(0.01) end
    turn.now()
    turns = turns + 1
end
local objects = {}
for _, id in ipairs(model.object_ids()) do
    local o = model.objects[id]
    objects[#objects + 1] = { o.id, o.type, o.name, o.owner, o.pos,
                              o.parent }
end
local winner
for _, p in ipairs(accounts.players()) do
    if p.alive ~= false then winner = p.name end
end
print(require("cjson").encode({ turns = turns, left = alive(),
                                winner = winner, objects = objects }))
"""

AI_ONLY = ("--set", "turn_mode=manual", "--set", "turn_length=0",
           "--set", "ruleset_settings.random_seed=3",
           "--set", "ruleset_settings.min_systems=4",
           "--set", "ruleset_settings.max_systems=8",
           "--set", "ruleset_settings.max_planets=3",
           "--set", "ruleset_settings.noguest=true")


def ai_only_game():
    with tplib.Server(*AI_ONLY) as srv:
        rc, out, err = console(srv, AI_ONLY_GAME, timeout=240)
        T.ok(rc == 0, "an AI-only game played through the console", err)
        T.is_(srv.error_lines(), [], "no errors in the server log")
        return json.loads(out.strip().splitlines()[-1]) if rc == 0 else {}


def test_ai_only_game():
    """Three computer players, turns ended by the console: a victory in a
    bounded number of turns, and the same game again with the seed."""
    first = ai_only_game()
    T.ok(first.get("left") == 1 and first.get("turns", 999) < 200,
         "three AIs: one is left after %s turns (at most 200)" %
         first.get("turns"), repr({k: first.get(k) for k in
                                   ("turns", "left", "winner")}))
    second = ai_only_game()
    T.ok(second.get("turns") == first.get("turns") and
         second.get("winner") == first.get("winner") and
         second.get("objects") == first.get("objects"),
         "the same seed: the same game (turns, winner, every object)")


def test_refused():
    """ai_players with a ruleset that has no AI."""
    tmp = tplib.Server().tmp
    cmd = [tplib.tpserver_path(), "--check-config", "--ruleset", "rfts",
           "--set", "ai_players=1"]
    p = subprocess.run(cmd, capture_output=True, cwd=tmp, timeout=60)
    err = p.stderr.decode()
    T.ok(p.returncode != 0 and "has no AI" in err and "ai.lua" in err,
         "--check-config refuses ai_players with RFTS", err)
    p = subprocess.run([tplib.tpserver_path(), "--check-config", "--set",
                        "ai_players=1"], capture_output=True, cwd=tmp,
                       timeout=60)
    T.ok(p.returncode == 0, "and takes it with MiniSec",
         p.stderr.decode())
    p = subprocess.run([tplib.tpserver_path(), "--check-config",
                        "--ruleset", "rfts", "--set", "idle_action=ai"],
                       capture_output=True, cwd=tmp, timeout=60)
    err = p.stderr.decode()
    T.ok(p.returncode != 0 and "idle_action" in err and "has no AI" in err,
         "--check-config refuses idle_action = \"ai\" with RFTS", err)
    srv = tplib.Server("--ruleset", "rfts", "--set", "ai_players=1")
    try:
        srv.start()
        T.ok(False, "a server with ai_players and RFTS does not start")
    except RuntimeError as e:
        T.ok("has no AI" in str(e), "a server with ai_players and RFTS "
             "does not start, saying why", str(e)[-500:])
    finally:
        srv.stop()


def ai_rows(srv):
    return {r["name"]: r for r in
            console_json(srv, "require('tp.ai').list()") or []}


def ai_finished(srv, name, timeout=20.0):
    """Waits until the AI has finished the running turn for name."""
    deadline = time.monotonic() + timeout * (4 if tplib.under_asan() else 1)
    while time.monotonic() < deadline and \
            not ai_rows(srv).get(name, {}).get("finished"):
        time.sleep(0.05)


def test_idle_ai():
    """idle_action = "ai": an idle player's empire is played by the AI
    (its orders, its FinishedTurn) until the player logs in again."""
    from test_long_games import tplib_login
    srv = tplib.Server("--set", "turn_mode=players_finished",
                       "--set", "turn_length=0", "--set", "turn_warning=0",
                       "--set", "idle_turns=1", "--set", "idle_action=ai",
                       "--set", "idle_remove_turns=0",
                       "--set", "ai_level=easy",
                       "--set", "ruleset_settings.random_seed=5")
    srv.start()
    try:
        alice = Player(srv, name="alice")
        carol = Player(srv, name="carol")
        carol.c.close()
        ok_run(srv, "turn.now()", "turn 0 ended by the admin")
        T.ok("carol" not in ai_rows(srv), "one turn away: carol's empire "
             "is still hers")
        ok_run(srv, "turn.now()", "turn 1 ended by the admin")
        rows = ai_rows(srv)
        T.ok(rows.get("carol", {}).get("controlled") is True and
             rows["carol"]["level"] == "easy",
             "carol, idle, is played by the AI at ai_level", repr(rows))
        ai_finished(srv, "carol")
        T.ok(ai_rows(srv).get("carol", {}).get("finished") is True,
             "the AI finished turn 2 for carol")
        orders = console_json(srv, "(function() local n = 0 for _, q in "
                              "pairs(model.queues or {}) do if q.owner == %d "
                              "then n = n + #q.orders end end return n "
                              "end)()" % carol.id)
        T.ok(isinstance(orders, int) and orders > 0,
             "the AI gave orders on carol's objects", repr(orders))
        check_okay(alice.req("FinishedTurn"), "alice finishes turn 2")
        T.is_(until_waiting(alice, [alice.id], 3), (3, [alice.id]),
              "alice's FinishedTurn ended the turn (carol is idle and "
              "the AI played her)")
        ai_finished(srv, "carol")
        T.ok(ai_rows(srv).get("carol", {}).get("finished") is True,
             "the AI played carol's turn 3 as well")
        again = tplib_login(srv, carol)
        rows = ai_rows(srv)
        T.ok("carol" not in rows, "carol's login takes her empire back",
             repr(rows))
        T.is_(time_remaining(alice), (3, [alice.id]),
              "the orders the AI gave for her this turn stand")
        check_okay(alice.req("FinishedTurn"), "alice finishes turn 3")
        T.is_(until_waiting(alice, sorted([alice.id, carol.id]), 4),
              (4, sorted([alice.id, carol.id])),
              "in turn 4 carol is waited for: the AI no longer plays her")
        check_okay(alice.req("FinishedTurn"), "alice finishes turn 4")
        T.is_(time_remaining(alice), (4, [carol.id]),
              "the turn waits for carol herself")
        check_okay(again.req("FinishedTurn"), "carol finishes turn 4")
        T.is_(until_waiting(alice, sorted([alice.id, carol.id]), 5),
              (5, sorted([alice.id, carol.id])), "and it ends")
    finally:
        srv.stop()


if __name__ == "__main__":
    tplib.main(test_game, test_all_ai, test_ai_only_game, test_refused,
               test_idle_ai)
