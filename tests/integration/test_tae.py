#!/usr/bin/env python3
"""TaE over the protocol: a server started with --ruleset tae (seed and a
small bag of colonist ships set in a configuration file), three players
over TP04 sockets. The board the players see is checked against the
board text of the notes (176 squares at their positions, markers,
regions); the colonist types against an MT19937 written here; the order
types' descriptions say when each is allowed; orders out of their turn
get a Fail that says why (Reinforce on a normal turn, Colonize, Move and
Attack on a combat turn, a third order, a doubled target). A scripted
game builds two regions with merchant leaders, joins them (an external
conflict), fights the combat turn with Reinforce orders, then moves the
leaders next to temples and settles colonists where they score, until the
bag is empty and the game ends with "GAME OVER!" and the final scores
worked out here from the last scores. Before the combat turn ends
the running server's game is backed up and a second server started from
the copy: its next turn is the same."""

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
from rulesetlib import MT, Client, finish, wait_turn  # noqa: E402
from test_protocol import raw_params  # noqa: E402

T = tplib.Tap.current or tplib.Tap()

SEED = 77
BAG = [12, 12, 12, 12]
UNIVERSE, GALAXY, SYSTEM, PLANET, FLEET = range(5)
CMINING, COLONIZE, MOVE, ATTACK, REINFORCE = range(5)
ORDER_NAMES = ["ColonizeMining", "Colonize", "Move", "Attack", "Reinforce"]
UNIN, DESTROYED, ARTIFACT, MONEY, TECH, PEOPLE, RAW = range(1, 8)
CATS = ["Money", "Technology", "People", "Raw Materials", "Alien Artifacts"]
SHIP_TYPES = {"MerchantShip": 1, "ScientistShip": 2, "SettlerShip": 3,
              "MiningShip": 4}

BOARD = """....MMMMM.A.M...
.A..M.......M..A
...MMA......MM..
MMMM.........MMM
.............AMM
..............M.
MMMM....A...MMM.
.A.MMMM.....M...
......MMMMMMM.A.
.....A..........
..........A.....""".split("\n")
W, H = 16, 11


def cell(c, r):
    return BOARD[H - 1 - r][c]


def draw(gen, bag):
    if sum(bag) == 0:
        return None
    while True:
        k = gen.range(0, 3)
        if bag[k] > 0:
            bag[k] -= 1
            return k + 1


# ------------------------------------------------------------ clients

def write_config(tmp):
    path = os.path.join(tmp, "tae-test.lua")
    with open(path, "w") as f:
        f.write("return { ruleset_settings = { tae = { random_seed = %d, "
                "bag = { %s } } } }\n" % (SEED, ", ".join(map(str, BAG))))
    return path


def server(config, data_dir=None):
    return tplib.Server("-c", config, "--ruleset", "tae",
                        "--set", "turn_length=0", data_dir=data_dir)


def tgt(oid):
    return {"objectid": oid, "validtypes": []}


def accepted(f):
    return f.is_("Order")


def refused(f, words):
    return f.is_("Fail") and words in f["result"]


class View:
    """What a player sees, decoded: squares by (c, r), markers, fleets."""

    def __init__(self, client):
        self.client = client
        self.objs = client.objects()
        self.square = {}
        self.planet_of = {}
        for oid, v in self.objs.items():
            fr = v["_frame"]
            m = re.match(r"^(\d+), (\d+)$", fr["name"])
            if fr["otype"] == SYSTEM and m:
                self.square[(int(m.group(1)), int(m.group(2)))] = oid
                planets = [c for c in fr["contains"]
                           if self.objs[c]["_frame"]["otype"] == PLANET]
                self.planet_of[oid] = planets[0] if planets else None

    def markers(self, sid):
        v = self.objs[self.planet_of[sid]]
        return set(r["resource"] for r in v["Resource List"]["resources"])

    def region(self, sid):
        return self.objs[sid]["Region"]["value"]

    def fleets(self, owner=None):
        return [oid for oid, v in sorted(self.objs.items())
                if v["_frame"]["otype"] == FLEET and
                (owner is None or v["Owner"]["id"] == owner)]

    def name(self, oid):
        return self.objs[oid]["_frame"]["name"]

    def parent(self, oid):
        return self.objs[oid]["_frame"]["parent"]

    def ship_design(self, oid):
        return self.objs[oid]["Ship List"]["references"][0]["id"]

    def colonist_type(self, oid):
        d = self.client.design(self.ship_design(oid))
        return SHIP_TYPES.get(d["name"])

    def my(self, kind):
        """The client's fleets of a kind: Colonist Fleet, a leader name,
        Bomber."""
        return [f for f in self.fleets(self.client.id)
                if self.name(f) == kind]

    def occupied(self, sid):
        return any(self.objs[c]["_frame"]["otype"] == FLEET
                   for c in self.objs[sid]["_frame"]["contains"])

    def free(self, mining, taken):
        """A square a colonist may settle, top rows first."""
        for r in range(H - 1, -1, -1):
            for c in range(W):
                sid = self.square[(c, r)]
                m = self.markers(sid)
                if sid in taken or self.objs[sid]["Destroyed"]["value"] or \
                        self.occupied(sid) or m & {MONEY, TECH, PEOPLE, RAW}:
                    continue
                if (UNIN in m) == mining:
                    return sid
        return None


LEADERS = {"Merchant Leader": 1, "Scientist Leader": 2, "Settler Leader": 3,
           "Mining Leader": 4}


def region_around(pv, sid):
    c, r = [k for k, v in pv.square.items() if v == sid][0]
    out = set()
    tech = False
    for dc, dr in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        n = pv.square.get((c + dc, r + dr))
        if n is not None:
            if pv.region(n):
                out.add(pv.region(n))
            if TECH in pv.markers(n):
                tech = True
    return out, tech


def endgame_orders(p, pv, taken, turn):
    """Two orders: a leader at home moves next to a temple; colonists
    settle where one of the player's leaders scores for them, or else on
    any free square."""
    n = 0
    mine = {}
    for name, lt in LEADERS.items():
        fl = pv.my(name)[0]
        sid = pv.parent(fl)
        if sid in pv.square.values():
            mine.setdefault(pv.region(sid), set()).add(lt)
        elif n == 0:
            for (c, r), cand in sorted(pv.square.items()):
                if cand in taken or cell(c, r) != "." or \
                        pv.objs[cand]["Destroyed"]["value"] or \
                        pv.occupied(cand) or \
                        pv.markers(cand) & {MONEY, TECH, PEOPLE, RAW}:
                    continue
                regs, tech = region_around(pv, cand)
                if tech and len(regs) <= 1:
                    taken.add(cand)
                    f = p.insert(fl, MOVE, [tgt(cand)])
                    if not accepted(f):
                        T.ok(False, "turn %d: %s's Move" % (turn, p.name),
                             repr(f))
                    n += accepted(f)
                    break
    for fl in pv.my("Colonist Fleet"):
        if n == 2:
            break
        t = pv.colonist_type(fl)
        mining = t == 4
        best = None
        for r in range(H - 1, -1, -1):
            for c in range(W):
                cand = pv.square[(c, r)]
                m = pv.markers(cand)
                if cand in taken or pv.objs[cand]["Destroyed"]["value"] or \
                        pv.occupied(cand) or \
                        m & {MONEY, TECH, PEOPLE, RAW} or \
                        (UNIN in m) != mining:
                    continue
                regs, _ = region_around(pv, cand)
                if len(regs) == 1 and mine.get(list(regs)[0], set()) & \
                        {t, 3}:
                    best = cand
        sid = best or pv.free(mining, taken)
        if sid is None:
            continue
        taken.add(sid)
        f = p.insert(fl, CMINING if mining else COLONIZE, [tgt(sid)])
        if not accepted(f):
            T.ok(False, "turn %d: %s's order" % (turn, p.name), repr(f))
        n += accepted(f)
    return n


def restart_copy(srv, config):
    dest = os.path.join(srv.tmp, "copy")
    r = subprocess.run([tplib.tpserver_path(), "backup", "--data",
                        srv.data_dir, dest], capture_output=True,
                       timeout=30)
    T.ok(r.returncode == 0, "tpserver backup of the running game",
         r.stdout.decode() + r.stderr.decode())
    return server(config, data_dir=dest).start()


def picture(c):
    out = {}
    for oid, v in c.objects().items():
        fr = v["_frame"]
        out[oid] = (fr["name"], fr["parent"], tuple(sorted(fr["contains"])),
                    fr["params"])
    return out


def parse_scores(body):
    out = {}
    for line in body.split("\n"):
        m = re.match(r"^(\w+): (.*)$", line)
        if m:
            vals = dict((k, int(v)) for k, v in
                        re.findall(r"([A-Za-z ]+?) (\d+)(?:, |$)", m.group(2)))
            out[m.group(1)] = [vals.get(c, 0) for c in CATS]
    return out


def final_score(s):
    cats = list(s[:4])
    for _ in range(s[4]):
        low = min(range(4), key=lambda i: (cats[i], i))
        cats[low] += 1
    return min(cats)


# ------------------------------------------------------------ checks

def check_board(v):
    bad = []
    T.is_(len(v.square), W * H, "176 squares named 'c, r'")
    for (c, r), sid in sorted(v.square.items()):
        o = v.objs[sid]
        ch = cell(c, r)
        m = v.markers(sid)
        if o["Position"]["x"] != 1 + 80000 * c or \
                o["Position"]["y"] != 1 + 80000 * (r + 1) or \
                o["Size"]["size"] != 60000:
            bad.append("%d, %d position" % (c, r))
        if o["Inhabitable"]["value"] != (0 if ch == "M" else 1):
            bad.append("%d, %d inhabitable" % (c, r))
        want = {"M": {UNIN}, "A": {ARTIFACT, TECH}, ".": set()}[ch]
        if m != want:
            bad.append("%d, %d markers %r" % (c, r, m))
        if o["Region"]["value"] != (sid if ch == "A" else 0):
            bad.append("%d, %d region" % (c, r))
        if v.name(v.planet_of[sid]) != "Planet %d, %d" % (c, r):
            bad.append("%d, %d planet" % (c, r))
    T.ok(not bad, "every square's position, Inhabitable, markers, Region "
         "and planet as board.txt says", "; ".join(bad[:10]))


def play():
    tmp = tempfile.mkdtemp(prefix="tae-test-")
    config = write_config(tmp)
    with server(config) as srv:
        alice = Client(srv, "alice")
        bob = Client(srv, "bob")
        carol = Client(srv, "carol")
        players = [alice, bob, carol]
        names = {p.id: p.name for p in players}

        # -------------------------------------------------- what they see
        g = alice.req("GetGames")[-1]
        T.ok(g.is_("Game") and g["rule"] == "TaE" and g["rulever"] == "0.01",
             "the game is TaE 0.01", repr(g))
        v = View(alice)
        check_board(v)
        T.is_(v.objs[0]["Year"]["value"], 0, "Year 0")
        gen, bag = MT(SEED), list(BAG)
        bad = []
        for p in players:
            pv = View(p)
            col = pv.my("Colonist Fleet")
            got = [pv.colonist_type(f) for f in col]
            want = [draw(gen, bag) for _ in range(6)]
            if got != want:
                bad.append("%s: %r, want %r" % (p.name, got, want))
            for leader in ("Merchant Leader", "Scientist Leader",
                           "Settler Leader", "Mining Leader"):
                if len(pv.my(leader)) != 1:
                    bad.append(p.name + " " + leader)
            if len(pv.my("Bomber")) != 2:
                bad.append(p.name + " bombers")
        T.ok(not bad, "each player's 6 colonists drawn from the bag with "
             "MT19937(seed) (their own designs say which), 4 leaders, 2 "
             "bombers", "; ".join(bad))
        bv = View(bob)
        a_col = v.my("Colonist Fleet")[0]
        hidden = bob.design(bv.ship_design(a_col))
        T.ok(hidden["name"] == "ColonistShip" and not hidden["properties"],
             "bob sees alice's colonist ship only as the hidden design",
             repr(hidden))
        lay = tplib.compile_layout("i:owner [I:type I:count]:ships I:damage")
        seen = {}
        for who in ("alice", "bob"):
            c3 = srv.client(version=3)
            try:
                c3.connect("tae-tp03/1.0")
                c3.login(who, "pw-" + who)
                fr = c3.request("GetObjectsByID", {"ids": [a_col]})[-1]
                seen[who], _ = lay.decode(raw_params(fr))
            finally:
                c3.close()
        T.ok(seen["bob"]["ships"] == [{"type": hidden["id"], "count": 1}] and
             seen["alice"]["ships"] == [{"type": v.ship_design(a_col),
                                         "count": 1}] and
             seen["bob"]["owner"] == alice.id,
             "TP03: bob's frame of her colonist fleet names the hidden "
             "design, hers her own", repr(seen))
        a_ml = v.my("Merchant Leader")[0]
        ld = bob.design(bv.ship_design(a_ml))
        T.ok(ld["name"] == "MerchantLeaderShip" and ld["owner"] == alice.id,
             "... but her leader's design in full", repr(ld))
        descs = {i: alice.odesc(i) for i in range(5)}
        T.ok([descs[i]["name"] for i in range(5)] == ORDER_NAMES,
             "the five order types")
        T.ok("Normal turns only" in descs[COLONIZE]["description"] and
             "Combat turns only" in descs[REINFORCE]["description"] and
             "at most 2" in descs[MOVE]["description"],
             "their descriptions say when each is allowed")

        # -------------------------------------------------- turn 0
        sq = v.square
        mine = {p.id: View(p) for p in players}
        b_ml = mine[bob.id].my("Merchant Leader")[0]
        f = alice.insert(a_ml, MOVE, [tgt(sq[(4, 1)])])
        T.ok(accepted(f), "alice's merchant leader moves to 4, 1", repr(f))
        f = alice.insert(mine[alice.id].my("Settler Leader")[0], MOVE,
                         [tgt(sq[(4, 1)])])
        T.ok(refused(f, "already the target"), "a second order on the same "
             "square: Fail", repr(f))
        f = alice.insert(mine[alice.id].my("Settler Leader")[0], MOVE,
                         [tgt(sq[(2, 0)])])
        T.ok(refused(f, "borders no science colony"), "Move next to no "
             "science colony: Fail", repr(f))
        f = alice.insert(a_col, REINFORCE, [])
        T.ok(refused(f, "Reinforce is only for combat turns"),
             "Reinforce on a normal turn: Fail saying so", repr(f))
        f = alice.insert(a_ml, ATTACK, [tgt(sq[(0, 0)])])
        T.ok(refused(f, "Attack is for bomber"), "Attack by a leader: Fail",
             repr(f))
        f = alice.insert(mine[alice.id].my("Bomber")[0], ATTACK,
                         [tgt(sq[(0, 10)])])
        T.ok(accepted(f), "alice's bomber attacks 0, 10", repr(f))
        f = alice.insert(mine[alice.id].my("Bomber")[1], ATTACK,
                         [tgt(sq[(1, 10)])])
        T.ok(refused(f, "already gave 2 orders"), "a third order: Fail (two "
             "actions a turn)", repr(f))
        cv = View(carol)
        c_min = [fl for fl in cv.my("Colonist Fleet")
                 if cv.colonist_type(fl) == 4]
        c_oth = [fl for fl in cv.my("Colonist Fleet")
                 if cv.colonist_type(fl) != 4]
        T.ok(c_min and c_oth, "carol has mining robots and other colonists "
             "(seed %d)" % SEED)
        f = carol.insert(c_min[0], COLONIZE, [tgt(sq[(0, 4)])])
        T.ok(refused(f, "mining robots: ColonizeMining"), "Colonize by "
             "mining robots: Fail naming the order they take", repr(f))
        f = carol.insert(c_oth[0], CMINING, [tgt(sq[(0, 4)])])
        T.ok(refused(f, "ColonizeMining is for mining"), "ColonizeMining "
             "by other colonists: Fail", repr(f))
        f = carol.insert(c_oth[0], COLONIZE, [tgt(sq[(0, 4)])])
        T.ok(refused(f, "only mining robots"), "Colonize on an 'M' "
             "square: Fail", repr(f))
        f = carol.insert(c_min[0], CMINING, [tgt(sq[(0, 4)])])
        T.ok(accepted(f), "carol's mining robots settle 0, 4", repr(f))
        f = bob.insert(b_ml, MOVE, [tgt(sq[(10, 1)])])
        T.ok(accepted(f), "bob's merchant leader moves to 10, 1", repr(f))
        log = {p.name: [] for p in players}

        def end_turn(turn):
            bad = finish(players)
            T.ok(not bad, "turn %d finished" % turn, "\n".join(bad))
            wait_turn(alice, turn + 1)
            for p in players:
                log[p.name] += p.new_messages()

        end_turn(0)
        v = View(alice)
        T.is_(v.objs[0]["Year"]["value"], 1, "Year 1")
        T.ok(v.parent(a_ml) == sq[(4, 1)] and v.parent(b_ml) == sq[(10, 1)],
             "both merchant leaders stand on their squares")
        T.ok(RAW in v.markers(sq[(0, 4)]) and
             v.region(sq[(0, 4)]) == sq[(0, 4)], "0, 4 holds a mining "
             "colony, a new region")
        T.ok(v.objs[sq[(0, 10)]]["Destroyed"]["value"] == 1 and
             DESTROYED in v.markers(sq[(0, 10)]), "0, 10 is destroyed")
        T.ok(v.region(sq[(4, 1)]) == v.region(sq[(5, 1)]) == sq[(4, 1)],
             "4, 1 joined the temple at 5, 1 (region id: the lower square)")
        T.ok(any(s == "Turn Order" and "bob, carol, alice" in b
                 for s, b, t in log["carol"]), "Turn Order: bob first on "
             "turn 1")

        # -------------------------------------------------- turns 1, 2
        # Regions grow towards each other; carol joins them on turn 2.
        used = set()

        def colonize(p, sid):
            pv = View(p)
            want_mining = UNIN in pv.markers(sid)
            for fl in pv.my("Colonist Fleet"):
                if fl not in used and \
                        (pv.colonist_type(fl) == 4) == want_mining:
                    used.add(fl)
                    return p.insert(fl, CMINING if want_mining else COLONIZE,
                                    [tgt(sid)])
            return None

        for p, s in ((alice, (6, 1)), (alice, (7, 1)), (bob, (9, 1))):
            f = colonize(p, sq[s])
            T.ok(f is not None and accepted(f), "turn 1: %s settles %d, %d" %
                 (p.name, s[0], s[1]), repr(f))
        end_turn(1)
        v = View(alice)
        T.ok(v.region(sq[(7, 1)]) == v.region(sq[(4, 1)]) and
             v.region(sq[(9, 1)]) == v.region(sq[(10, 1)]) and
             v.region(sq[(8, 1)]) == 0, "two regions with a gap at 8, 1")
        left = [s for s, sid in sq.items() if v.region(sid) ==
                v.region(sq[(4, 1)])]
        right = [s for s, sid in sq.items() if v.region(sid) ==
                 v.region(sq[(10, 1)])]
        f = colonize(carol, sq[(8, 1)])
        T.ok(f is not None and accepted(f), "turn 2: carol settles the gap",
             repr(f))
        end_turn(2)
        v = View(alice)
        tr = alice.call("GetTimeRemaining")
        T.is_(tr["turnname"], "Combat turn", "turn 3 is a combat turn")
        combat = [b for s, b, t in log["alice"] if s == "COMBAT!"]
        # The regions in ascending id: the right one (10, 0) is first.
        first, second = ("bob", "alice") if v.region(sq[(10, 1)]) < \
            v.region(sq[(4, 1)]) else ("alice", "bob")
        T.ok(combat and "external conflict between %s's and %s's Merchant "
             "Leader over Money" % (first, second) in combat[-1],
             "COMBAT!: %s against %s over Money" % (first, second),
             repr(combat))
        m = re.search(r"strengths (\d+) and (\d+)", combat[-1] if combat
                      else "")
        s_a = sum(1 for s in left if MONEY in v.markers(sq[s]))
        s_b = sum(1 for s in right if MONEY in v.markers(sq[s]))
        want = (s_a, s_b) if first == "alice" else (s_b, s_a)
        T.ok(m and (int(m.group(1)), int(m.group(2))) == want,
             "strengths: the merchant colonies of each region (%d, %d)" %
             (s_a, s_b), combat[-1] if combat else "")

        # -------------------------------------------------- combat turn 3
        cv = View(carol)
        f = carol.insert(cv.my("Colonist Fleet")[0], COLONIZE,
                         [tgt(sq[(0, 0)])])
        T.ok(refused(f, "not allowed during a combat turn"),
             "Colonize on a combat turn: Fail saying so", repr(f))
        c_min = [(p, fl) for p in players for fl in
                 View(p).my("Colonist Fleet")
                 if View(p).colonist_type(fl) == 4]
        f = c_min[0][0].insert(c_min[0][1], CMINING, [tgt(sq[(1, 4)])])
        T.ok(refused(f, "not allowed during a combat turn"),
             "ColonizeMining on a combat turn: Fail saying so", repr(f))
        f = carol.insert(cv.my("Bomber")[0], ATTACK, [tgt(sq[(1, 0)])])
        T.ok(refused(f, "combat turn"), "Attack on a combat turn: Fail",
             repr(f))
        f = alice.insert(a_ml, MOVE, [tgt(sq[(4, 0)])])
        T.ok(refused(f, "combat turn"), "Move on a combat turn: Fail",
             repr(f))
        c_merch = [fl for fl in cv.my("Colonist Fleet")
                   if cv.colonist_type(fl) == 1]
        if c_merch:
            f = carol.insert(c_merch[0], REINFORCE, [])
            T.ok(refused(f, "only the combatants'"), "Reinforce by carol "
                 "(not fighting): Fail", repr(f))
        reinf = {}
        for p in (alice, bob):
            pv = View(p)
            n = 0
            for fl in pv.my("Colonist Fleet"):
                if pv.colonist_type(fl) == 1:
                    f = p.insert(fl, REINFORCE, [])
                    n += accepted(f)
                elif pv.colonist_type(fl) is not None:
                    f = p.insert(fl, REINFORCE, [])
                    if not refused(f, "Merchant colonist fleets may "
                                   "Reinforce"):
                        T.ok(False, "Reinforce by another kind refused",
                             repr(f))
            reinf[p.id] = n
        fa, fb = s_a + reinf[alice.id], s_b + reinf[bob.id]
        winner = alice if fa >= fb else bob
        loser = bob if winner is alice else alice
        before = parse_scores([b for s, b, t in log["alice"]
                               if s == "Turn complete"][-1])

        # The restart: a copy of the game now, a second server on it.
        copy = restart_copy(srv, config)
        others = [Client(copy, p.name, create=False) for p in players]
        same_before = all(picture(p) == picture(q)
                          for p, q in zip(players, others))
        T.ok(same_before, "the restarted copy shows the same objects")
        end_turn(3)
        bad = finish(others)
        wait_turn(others[0], 4)
        for p, q in zip(players, others):
            q.seen = 0
            msgs = [x for x in q.new_messages() if x[2] == 4]
            mine_ = [x for x in log[p.name] if x[2] == 4]
            T.ok(not bad and picture(p) == picture(q) and msgs == mine_,
                 "restarted copy, turn 4: %s sees the same objects and gets "
                 "the same %d messages" % (p.name, len(mine_)),
                 repr((bad, msgs, mine_)))
        for q in others:
            q.close()
        copy.stop()

        done = [b for s, b, t in log["alice"] if s == "Combat Complete!"]
        T.ok(done and done[-1].startswith("%s won the external conflict" %
                                          winner.name),
             "%d to %d: %s wins" % (fa, fb, winner.name), repr(done))
        after = parse_scores([b for s, b, t in log["alice"]
                              if s == "Turn complete"][-1])
        removed = (s_b if winner is alice else s_a)
        T.is_(after[winner.name][0] - before[winner.name][0], 1 + removed,
              "the winner +1 Money and +1 per merchant colony removed")
        v = View(alice)
        T.ok(v.parent(a_ml if loser is alice else b_ml) ==
             [oid for oid in v.objs if v.name(oid) == loser.name +
              "'s System"][0], "the loser's leader went home")
        T.is_(alice.call("GetTimeRemaining")["turnname"], "Turn 4",
              "back to normal turns")

        # -------------------------------------------------- to the end
        turn = 4
        while turn < 30:
            tr = alice.call("GetTimeRemaining")
            if tr["turnname"] == "Game over":
                break
            if tr["turnname"] == "Combat turn":
                for p in players:
                    pv = View(p)
                    for fl in pv.my("Colonist Fleet"):
                        p.insert(fl, REINFORCE, [])
            else:
                taken = set()
                for p in players:
                    n = endgame_orders(p, View(p), taken, turn)
                    if n != 2:
                        T.ok(False, "turn %d: %s gave %d orders" % (
                            turn, p.name, n))
            end_turn(turn)
            turn += 1
        T.is_(alice.call("GetTimeRemaining")["turnname"], "Game over",
              "the bag ran out: game over (turn %d)" % turn)
        last = parse_scores([b for s, b, t in log["alice"]
                             if s == "Turn complete"][-1])
        over = [b for s, b, t in log["bob"] if s == "GAME OVER!"]
        T.is_(len(over), 1, "GAME OVER! once")
        want = {n: final_score(s) for n, s in last.items()}
        got = dict((n, int(x)) for n, x in
                   re.findall(r"^(\w+): (\d+)$", over[0] if over else "",
                              re.M))
        T.diag("last scores %r, final %r" % (last, got))
        T.ok(got == want and len(want) == 3, "final scores: the weakest "
             "category after the artifacts", repr((got, want, last)))
        best = max(sorted(players, key=lambda p: p.id),
                   key=lambda p: want.get(p.name, -1))
        T.ok(over and (best.name + " wins.") in over[0], best.name +
             " wins", repr(over))
        for p in players:
            T.ok(sum(1 for s, b, t in log[p.name] if s == "GAME OVER!") == 1,
                 "%s got GAME OVER!" % p.name)
        f = alice.insert(View(alice).my("Colonist Fleet")[0], COLONIZE,
                         [tgt(sq[(0, 1)])])
        T.ok(f.is_("Fail") and "the game is over" in f["result"],
             "no orders after the game", repr(f))
        c4 = srv.client(4)
        c4.connect("tae-test/1.0")
        f = c4.create_account("dave", "pw")
        T.ok(f.is_("Fail") and "over" in f.get("result", ""),
             "no new players after the game", repr(f))
        c4.close()
        for p in players:
            p.close()
    shutil.rmtree(tmp, ignore_errors=True)


def settings_checked():
    """The settings' bounds: max_players 0 and random_seed -2 are refused
    by --check-config with a message naming them; the defaults pass."""
    tmp = tempfile.mkdtemp(prefix="tae-config-")
    try:
        for extra, ok, word in (([], True, None),
                                (["ruleset_settings.max_players=0"], False,
                                 "max_players"),
                                (["ruleset_settings.random_seed=-2"], False,
                                 "random_seed")):
            args = [tplib.tpserver_path(), "--check-config", "--ruleset",
                    "tae", "--data", os.path.join(tmp, "data")]
            for e in extra:
                args += ["--set", e]
            r = subprocess.run(args, cwd=tmp, capture_output=True,
                               timeout=30)
            out = r.stdout.decode() + r.stderr.decode()
            if ok:
                T.ok(r.returncode == 0, "--check-config: the defaults pass",
                     out[-500:])
            else:
                T.ok(r.returncode != 0 and word in out,
                     "--check-config: %s refused, naming it" % extra[0],
                     out[-500:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    T.run(settings_checked, play)
    T.done()


if __name__ == "__main__":
    main()
