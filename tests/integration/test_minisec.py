#!/usr/bin/env python3
"""MiniSec over the protocol: two TP04 clients (and a TP03 session) play
20 turns, moving, building, colonising, splitting, merging, intercepting
and fighting, ending every turn with FinishedTurn. After each turn every
object, every owned order queue, the design counters and every message
both players got are compared with what the rules say should have
happened.

"What the rules say" is a small model of MiniSec written here from the
specification (rulesets/minisec.md in the project documents),
independently of the Lua ruleset: MT19937 and range() as in section 1,
universe and home generation in the GCC draw order (4, 6), the turn
sequence (8), movement and re-parenting (7.1, 8.2), the orders (7) and
rock-paper-scissors combat (9) with the game generator. With
random_seed set both generators are seeded with it, so the model knows
every draw: positions, media names, combat rounds.

The game: seed 137, four random systems of two planets; alice and bob,
whose home systems lie 1.1 billion units apart."""

import math
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rulesetlib  # noqa: E402
import tplib  # noqa: E402
from test_protocol import (  # noqa: E402
    ORDER_PARAM, ORDER_PARAM_IDONLY, Player, decode_params, encode_params,
    object_values, raw_params)

T = tplib.Tap.current or tplib.Tap()

SEED = 137
TURNS = 20
SETTINGS = {"random_seed": SEED, "min_systems": 4, "max_systems": 4,
            "min_planets": 2, "max_planets": 2}

UNIVERSE, GALAXY, SYSTEM, PLANET, FLEET = range(5)
NOP, MOVE, BUILD, COLONISE, SPLIT, MERGE, INTERCEPT = range(7)
ORDER_NAMES = ["No Operation", "Move", "Build Fleet", "Colonise",
               "Split Fleet", "Merge Fleet", "Intercept"]
FLEET_ORDERS = [NOP, MOVE, SPLIT, MERGE, INTERCEPT]
PLANET_ORDERS = [NOP, BUILD]

STATS = {  # design name: speed, build time, armour, win, draw, colonise
    "Scout": (500000000, 1, 2, 0, 0, 0),
    "Frigate": (200000000, 2, 4, 2, 0, 1),
    "Battleship": (300000000, 4, 6, 3, 1, 0),
}

SYSTEM_NAMES = [
    "Barnard's Star", "Gielgud", "Ventana", "Aleph Prime", "Ventil",
    "Sagitaria", "Drifter", "Ptelemicus", "Centanis", "Mendelis",
    "Cassious' Shadow", "Llentim", "Redoubt", "Kelper", "Cemara",
    "Cilantarius", "Kya", "Lanternis", "Illatis", "Rintim", "Uvaharim",
    "Plaetais", "Denderis", "Desiderata", "Illuntara", "Ivemteris",
    "Wetcher", "Monanara", "Clesasia", "RumRunner", "Last Chance",
    "Kiuper Shadow", "NGC 42059", "Ceti Alpha", "Surreptitious",
    "Lupus Fold", "Atlantis", "Draconis", "Muir's Gold", "Fools Errand",
    "Wrenganis", "Humph", "Byzantis", "Torontis", "Radiant Pool"]
STAR_MEDIA = ["blue", "red", "yellow", "purple-large", "purple-small",
              "rainbow"]
PLANET_MEDIA = [k + str(i) for k in ("barren", "desert", "gasgiant",
                                     "inferno", "ocean") for i in (1, 2, 3)]
PLANET_MEDIA += ["radiated1", "radiated2", "radiaged3"]
PLANET_MEDIA += [k + str(i) for k in ("swamp", "terran", "toxic", "tundra")
                 for i in (1, 2, 3)]
FLEET_MEDIA = [
    "aeon-hud", "ancestor-hud", "andolian_dostoevsky-hud",
    "andolian_sartre-hud", "andolian_schroedinger-hud", "ariston-hud",
    "clydesdale-hud", "confed_gawain-hud", "confed_schroedinger-hud",
    "destroyer-hud", "franklin-hud", "gawain-hud", "highborn_gawain-hud",
    "kyta-hud", "purist_admonisher-hud", "purist_gawain-hud", "sartre-hud",
    "schroedinger-hud", "shaper_ancestor-hud", "watson-hud"]
STAR_PREFIX = "common-2d/star-small/"
PLANET_PREFIX = "common-2d/foreign/freeorion/planet-small/animation/"
FLEET_PREFIX = "common-2d/foreign/vegastrike/ship-small/"
ICONS = {UNIVERSE: "common/object-icons/system",
         GALAXY: "common/object-icons/system",
         SYSTEM: "common/object-icons/system",
         PLANET: "common/object-icons/planet",
         FLEET: "common/object-icons/ship"}


# ------------------------------------------------------------ randomness

class MT(rulesetlib.MT):
    """The tests' MT19937 (rulesetlib), with picking from a list."""

    def pick(self, names):
        return names[self.range(0, len(names) - 1)]


def wrap32(v):
    v %= 1 << 32
    return v - (1 << 32) if v >= 1 << 31 else v


def distance(a, b):
    dx, dy, dz = (float(a[0] - b[0]), float(a[1] - b[1]),
                  float(a[2] - b[2]))
    return int(math.sqrt(dx * dx + dy * dy + dz * dz))


# ------------------------------------------------------------ the model

class Obj:
    def __init__(self, oid, otype, name, parent, pos, size, media,
                 owner=0):
        self.id, self.type, self.name, self.parent = oid, otype, name, parent
        self.pos, self.vel, self.size = list(pos), [0, 0, 0], size
        self.media, self.owner = media, owner
        self.ships = {}         # design id -> count
        self.damage = 0
        self.resources = {}     # resource id -> stored
        self.year = 0
        self.queue = [] if otype in (PLANET, FLEET) else None
        self.qowner = owner
        self.allowed = (PLANET_ORDERS if otype == PLANET else
                        FLEET_ORDERS if otype == FLEET else None)


class Order:
    def __init__(self, otype, **params):
        self.type = otype
        self.p = params
        self.state = {}


class Model:
    """MiniSec as the specification states it, for a small game."""

    def __init__(self, seed, settings):
        self.game = MT(seed)      # media and combat
        self.cur = MT(seed)       # the debug generator: placement
        self.objs = {}
        self.next_id = 0
        self.turn = 0
        self.players = {}         # id -> {name, alive, score}
        self.designs = {}         # id -> {name, owner, inuse, exists}
        self.msgs = {}
        self.settings = settings

    # -- helpers

    def new(self, *args, **kw):
        o = Obj(self.next_id, *args, **kw)
        self.objs[o.id] = o
        self.next_id += 1
        return o

    def stats(self, design):
        return STATS[self.designs[design]["name"]]

    def children(self, o):
        return sorted(c.id for c in self.objs.values()
                      if c.parent == o.id and c.id != o.id)

    def tell(self, pid, subject, body, refs):
        if pid:
            self.msgs.setdefault(pid, []).append((subject, body, refs))

    def speed(self, f):
        return min(self.stats(d)[0] for d in f.ships)

    def refresh_allowed(self, f):
        col = any(self.stats(d)[5] == 1 for d in f.ships)
        f.allowed = sorted(FLEET_ORDERS + ([COLONISE] if col else []))

    def add_ships(self, f, design, n):
        if n > 0:
            f.ships[design] = f.ships.get(design, 0) + n
            self.refresh_allowed(f)

    def remove_ships(self, f, design, n):
        if f.ships.get(design, 0) < n:
            return False
        f.ships[design] = f.ships.get(design, 0) - n
        if f.ships[design] == 0:
            del f.ships[design]
        self.refresh_allowed(f)
        return True

    def remove(self, o):
        del self.objs[o.id]

    # -- universe (minisec.md 4) and players (6)

    def setup(self):
        s = self.settings
        u = self.new(UNIVERSE, "The Universe", 0, (0, 0, 0),
                     1000000000000, "common-2d/foreign/freeorion/"
                     "nebula-small/nebula3")
        u.parent = 0
        self.new(GALAXY, "Milky Way Galaxy", 0, (0, -6000, 0),
                 100000000000,
                 "common-2d/foreign/freeorion/nebula-small/nebula1")
        fixed = [("Sol/Terra System", 60000, (3000000000, 2000000000),
                  "yellow"),
                 ("Alpha Centauri System", 90000, (-1500000000, 1500000000),
                  "purple-large"),
                 ("Sirius System", 60000, (-250000000, -4000000000), "red")]
        for name, size, (x, y), colour in fixed:
            self.new(SYSTEM, name, 1, (x, y, 0), size, STAR_PREFIX + colour)
        for name, sysid, (dx, dy), look in [
                ("Earth", 2, (14960, 0), "terran1"),
                ("Venus", 2, (0, 10800), "inferno1"),
                ("Mars", 2, (-22790, 0), "desert1"),
                ("Alpha Centauri Prime", 3, (-6300, 78245), "toxic1"),
                ("Sirius 1", 4, (45925, -34262), "barren1")]:
            self.planet(name, self.objs[sysid], dx, dy, look)
        assert s["min_systems"] == s["max_systems"]
        assert s["min_planets"] == s["max_planets"]
        names = list(SYSTEM_NAMES)
        for _ in range(s["min_systems"]):
            n = s["min_planets"]
            name = names.pop(self.cur.range(0, len(names) - 1))
            y = self.cur.range(0, 8000) * 1000000 - 4000000000
            x = self.cur.range(0, 8000) * 1000000 - 4000000000
            star = self.new(SYSTEM, name, 1, (x, y, 0), n * 60000,
                            STAR_PREFIX + self.game.pick(STAR_MEDIA))
            for i in range(1, n + 1):
                self.planet("%s %d" % (name, i), star, i * 40000,
                            -i * 35000, self.game.pick(PLANET_MEDIA))

    def planet(self, name, parent, dx, dy, look):
        p = self.new(PLANET, name, parent.id,
                     (parent.pos[0] + dx, parent.pos[1] + dy, 0), 2,
                     PLANET_PREFIX + look)
        return p

    def join(self, pid, name):
        self.players[pid] = {"name": name, "alive": True, "score": 0}
        first = len(self.designs) + 1
        for i, dname in enumerate(("Scout", "Frigate", "Battleship")):
            self.designs[first + i] = {"name": dname, "owner": pid,
                                       "inuse": 0, "exists": 0}
        frigate = first + 1
        sy = self.cur.range(-5000, 5000)
        sx = self.cur.range(-5000, 5000)
        star = self.new(SYSTEM, name + " Star System", 1,
                        (wrap32(sx * 10000000), wrap32(sy * 10000000), 0),
                        80000, STAR_PREFIX + self.game.pick(STAR_MEDIA))
        look = self.game.pick(PLANET_MEDIA)
        py = self.cur.range(-5000, 5000) * 10
        px = self.cur.range(-5000, 5000) * 10
        home = self.planet(name + " Planet", star, px, py, look)
        home.owner = home.qowner = pid
        home.resources[2] = 1
        for which in ("First", "Second", "Third"):
            fy = self.cur.range(-5000, 5000) * 10
            fx = self.cur.range(-5000, 5000) * 10
            f = self.new(FLEET, "%s %s Fleet" % (name, which), star.id,
                         (star.pos[0] + fx, star.pos[1] + fy, 0), 2,
                         FLEET_PREFIX + self.game.pick(FLEET_MEDIA),
                         owner=pid)
            self.add_ships(f, frigate, 1)
        self.designs[frigate]["inuse"] += 3
        self.designs[frigate]["exists"] += 3

    # -- orders as submitted (the server's check and estimates)

    def submit(self, pid, oid, order):
        """Returns (accepted, turns estimate of the order in its slot)."""
        o = self.objs[oid]
        if order.type == BUILD:
            cost = 0
            for design, n in order.p["ships"]:
                d = self.designs.get(design)
                if not d or d["owner"] != pid:
                    return False, None
                cost += math.ceil(n * self.stats(design)[1])
            if cost == 0 and order.p["ships"]:
                return False, None
            if order.p["name"] == "":
                order.p["name"] = "A Fleet"
            order.state["cost"] = cost
            for design, n in order.p["ships"]:
                self.designs[design]["inuse"] += n
        o.queue.append(order)
        return True, self.estimate(o, len(o.queue) - 1)

    def estimate(self, o, slot):
        order = o.queue[slot]
        t = order.type
        if t == NOP:
            return max(0, order.p["wait"])
        if t == MOVE:
            d = distance(order.p["pos"], o.pos)
            return 1 if d == 0 else (d - 1) // self.speed(o) + 1
        if t == BUILD:
            cost = order.state["cost"]
            if slot != 0 or cost == 0:
                return cost
            parts = o.resources.get(1, 0)
            return 1 if parts >= cost else cost - parts
        if t in (COLONISE, SPLIT):
            return 1
        if t == MERGE:
            return 0
        return order.state.get("turns", 0)

    # -- the turn (minisec.md 8)

    def end_turn(self):
        self.turn += 1
        self.msgs = {}
        combatants, movers, interceptors, others = [], [], [], []
        self.containers = []
        for oid in sorted(self.objs):
            o = self.objs[oid]
            if o.type in (PLANET, FLEET):
                combatants.append(o)
                if o.queue:
                    t = o.queue[0].type
                    (movers if t == MOVE else interceptors
                     if t == INTERCEPT else others).append(o)
            if o.type != FLEET:
                self.containers.append(o)
        for o in movers + interceptors:
            self.run_first(o)
        self.combat(combatants)
        for o in others:
            if self.objs.get(o.id) is o:
                self.run_first(o)
        owned = {}
        for oid in sorted(self.objs):
            o = self.objs[oid]
            if o.type == UNIVERSE:
                o.year += 1
            elif o.type == FLEET:
                parent = self.objs.get(o.parent)
                if (parent and parent.type == PLANET and
                        parent.owner == o.owner):
                    o.damage = 0
                if not o.queue or o.queue[0].type not in (MOVE, INTERCEPT):
                    o.vel = [0, 0, 0]
            if o.type in (PLANET, FLEET) and o.owner:
                owned[o.owner] = owned.get(o.owner, 0) + 1
        alive, dead = [], 0
        for pid in sorted(self.players):
            p = self.players[pid]
            if not p["alive"] or not owned.get(pid):
                if p["alive"]:
                    self.tell(pid, "You lost", "You do not own any objects, "
                              "therefore you game has finished.", [(-4, 1)])
                    p["alive"] = False
                dead += 1
            else:
                alive.append(pid)
        if len(alive) == 1 and self.players[alive[0]]["score"] != dead:
            self.tell(alive[0], "You won!", "You have eliminated all the "
                      "competing players. Congratulations!", [])
            self.players[alive[0]]["score"] = dead

    def run_first(self, o):
        order = o.queue[0]
        done = getattr(self, "do_" + ORDER_NAMES[order.type].split()[0]
                       .lower())(o, order)
        if self.objs.get(o.id) is o and done and o.queue and \
                o.queue[0] is order:
            o.queue.pop(0)

    # movement (7.1, 8.2)

    def reparent(self, f, point):
        parent = self.objs.get(f.parent)
        if f.pos == list(point) or parent is None or parent.type == FLEET:
            return
        for c in reversed(self.containers):
            if distance(point, c.pos) <= f.size // 2 + c.size // 2 and \
                    c.size >= f.size:
                f.parent = c.id
                return

    def arrive(self, f, dest):
        f.vel = [0, 0, 0]
        self.reparent(f, dest)
        f.pos = list(dest)

    def step(self, f, target, speed):
        d = [float(target[i] - f.pos[i]) for i in range(3)]
        length = math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
        v = [0, 0, 0]
        if length > 0:
            s = speed / length
            v = [int(d[i] * s) for i in range(3)]
        f.vel = v
        at = [f.pos[i] + v[i] for i in range(3)]
        self.reparent(f, at)
        f.pos = at

    def arrived(self, f, subject):
        self.tell(f.owner, subject, "The fleet '%s' has reached it's "
                  "destination." % f.name, [(-2, 1), (1, f.id),
                                            (1, f.parent)])

    def do_no(self, o, order):
        if order.p["wait"] <= 1:
            self.tell(o.owner, "NOp order complete", "The object has "
                      "finished it's delay and is now continuing",
                      [(-2, 1), (1, o.id)])
            return True
        order.p["wait"] -= 1
        return False

    def do_move(self, f, order):
        dest, speed = order.p["pos"], self.speed(f)
        if distance(dest, f.pos) <= speed:
            self.arrive(f, dest)
            self.arrived(f, "Move order complete")
            return True
        self.step(f, dest, speed)
        return False

    def do_intercept(self, f, order):
        target = self.objs.get(order.p["target"])
        if order.p["target"] == 0:
            return True
        if target is None or target.type not in (FLEET, PLANET, SYSTEM):
            self.tell(f.owner, "Intercept order canceled", "The object to "
                      "intercept no longer exists" if target is None else
                      "Only fleets, planets and star systems can be "
                      "intercepted", [(-2, 2), (1, f.id)])
            return True
        speed = self.speed(f)
        if distance(target.pos, f.pos) <= speed:
            self.arrive(f, target.pos)
            self.arrived(f, "Intercept order complete")
            return True
        n, p = 1, list(target.pos)
        while distance(p, f.pos) > speed * n:
            p = [p[i] + target.vel[i] for i in range(3)]
            n += 1
            if n >= 50:
                return True
        order.state["turns"] = n
        self.step(f, p, speed)
        return False

    # other orders (7.2 - 7.5)

    def new_fleet(self, name, parent, owner, pos, ships):
        f = self.new(FLEET, name, parent, pos, 2,
                     FLEET_PREFIX + self.game.pick(FLEET_MEDIA), owner=owner)
        for design, n in ships:
            self.add_ships(f, design, n)
        return f

    def do_build(self, planet, order):
        cost = order.state["cost"]
        if cost == 0 or planet.owner == 0:
            return True
        planet.resources[1] = planet.resources.get(1, 0) + 1
        if planet.resources[1] < cost:
            return False
        planet.resources[1] -= cost
        f = self.new_fleet(order.p["name"], planet.id, planet.owner,
                           planet.pos, sorted(order.p["ships"]))
        for design, n in order.p["ships"]:
            self.designs[design]["exists"] += n
        self.tell(planet.owner, "Build Fleet order complete", "The "
                  "construction of your new fleet \"%s\" is complete."
                  % order.p["name"], [(-2, 1), (1, f.id), (1, planet.id)])
        return True

    def do_colonise(self, f, order):
        owner = f.owner
        planet = self.objs.get(f.parent)
        if planet is None or planet.type != PLANET:
            self.tell(owner, "Colonise order canceled", "Not at a planet, "
                      "colonisation canceled", [(-2, 2), (1, f.id)])
            return True
        refs = [(1, f.id), (1, planet.id)]
        if planet.owner == owner:
            self.tell(owner, "Colonisation failed", "You already own the "
                      "planet you tried to colonise", refs + [(-2, 2)])
        elif planet.owner:
            self.tell(owner, "Colonisation failed", "The planet you tried "
                      "to colonise, is already owned by someone else.",
                      refs + [(-2, 2)])
        else:
            best, hp = None, 2000000
            for design in sorted(f.ships):
                st = self.stats(design)
                if st[5] != 0 and st[2] < hp:
                    best, hp = design, st[2]
            if best:
                planet.owner = planet.qowner = owner
                self.remove_ships(f, best, 1)
                self.tell(owner, "Colonised planet", "You have colonised a "
                          "planet!", refs + [(-2, 1)])
            else:
                self.tell(owner, "Colonisation failed", "Your fleet did not "
                          "have a frigate to colonise the planet",
                          refs + [(-2, 4)])
            if not f.ships:
                self.remove(f)
        return True

    def do_split(self, f, order):
        look = self.game.pick(FLEET_MEDIA)
        moved = []
        for design, n in sorted(dict(order.p["ships"]).items()):
            if n > 0 and self.remove_ships(f, design, n):
                moved.append((design, n))
        refs = [(1, f.id)]
        if not f.ships or not moved:
            for design, n in moved:
                self.add_ships(f, design, n)
            body = "Fleet not split, not enough ships"
            refs.append((-2, 3))
        else:
            new = self.new(FLEET, "A fleet", f.parent, f.pos, 2,
                           FLEET_PREFIX + look, owner=f.owner)
            for design, n in moved:
                self.add_ships(new, design, n)
            body = "Split fleet complete"
            refs += [(1, new.id), (-2, 1)]
        self.tell(f.owner, "Split Fleet order complete", body, refs)
        return True

    def do_merge(self, f, order):
        target = None
        for cid in self.children(self.objs[f.parent]):
            o = self.objs[cid]
            if cid != f.id and o.type == FLEET and o.owner == f.owner and \
                    o.size + f.size > distance(o.pos, f.pos):
                target = o
                break
        if target is None:
            self.tell(f.owner, "Merge Fleet order canceled", "No target "
                      "fleet at this location", [(-2, 2), (1, f.id)])
            return True
        self.tell(f.owner, "Merge Fleet order complete", "The two fleets "
                  "have been merged", [(-2, 1), (1, f.id), (1, target.id)])
        for design, n in f.ships.items():
            self.add_ships(target, design, n)
        self.remove(f)
        return True

    # combat (9)

    def combat(self, combatants):
        groups, where = [], []
        for o in combatants:
            if not o.owner:
                continue
            best = None
            for gi, members in enumerate(groups):
                if any(distance(o.pos, m.pos) <= o.size // 2 + m.size // 2
                       for m in members):
                    best = gi
                    break
            if best is None:
                groups.append([o])
            else:
                groups[best].append(o)
        for members in groups:
            if len({m.owner for m in members}) >= 2:
                self.battle(members)

    def combatants(self, pid, objs):
        out = []
        for o in objs:
            if o.type == FLEET:
                kinds = len(o.ships)
                dmg = o.damage
                for design in sorted(o.ships, reverse=True):
                    st = self.stats(design)
                    for i in range(o.ships[design]):
                        share = dmg // max(1, (kinds - i) % (1 << 32))
                        dmg -= share
                        out.append({"obj": o, "design": design,
                                    "damage": share, "win": st[3],
                                    "draw": st[4], "armour": st[2]})
            else:
                n = 5 if o.resources.get(2, 0) == 1 else 2
                out += [{"obj": o, "design": 0, "damage": 0, "win": 3,
                         "draw": 1, "armour": 6} for _ in range(n)]
        out.sort(key=lambda c: -c["design"])   # stable
        return out

    def battle(self, members):
        owners = sorted({m.owner for m in members})
        sides = [{"pid": pid, "name": self.players[pid]["name"],
                  "list": self.combatants(pid, [m for m in members
                                                if m.owner == pid])}
                 for pid in owners]
        text = {pid: "" for pid in owners}
        dead = lambda c: c["damage"] >= c["armour"]  # noqa: E731

        def shots(side, draw):
            out, scouts, top = [], 0, None
            for c in side["list"]:
                if not dead(c):
                    if top is None:
                        top = c["design"]
                    s = c["draw"] if draw else c["win"]
                    if not draw and s == 0:
                        scouts += 1
                    if not (draw and s == 0) and c["design"] == top:
                        out.append(s)
            if not draw:
                n = len(side["list"])
                if scouts == n or (scouts and
                                   self.game.real1() < scouts / n):
                    out = []
            return out

        def fire(out, target):
            for power in out:
                top, pick = None, None
                for c in target["list"]:
                    if not dead(c):
                        if top is None:
                            top = c["design"]
                        if c["design"] != top:
                            break
                        if pick is None or c["damage"] < pick["damage"]:
                            pick = c
                    elif top is not None and c["design"] != top:
                        break
                if pick is None:
                    return
                pick["damage"] += power

        def resolve(side):
            colony, damage = {}, {}
            for c in side["list"]:
                o = c["obj"]
                if c["design"] == 0:
                    colony[o.id] = colony.get(o.id, True) and dead(c)
                elif dead(c):
                    self.remove_ships(o, c["design"], 1)
                    if not o.ships:
                        text[side["pid"]] += "Your fleet %s was destroyed. " \
                            % o.name
                        self.remove(o)
                else:
                    damage[o.id] = damage.get(o.id, 0) + c["damage"]
            for oid, d in damage.items():
                self.objs[oid].damage = d
            for oid, fell in colony.items():
                if fell:
                    p = self.objs[oid]
                    if p.resources.get(2, 0) == 1:
                        p.resources[2] -= 1
                    p.owner = p.qowner = 0
                    p.queue = []

        while len(sides) >= 2:
            ia, ib = 0, 1
            if len(sides) > 2:
                ia = ib = self.game.range(0, len(sides) - 1)
                while ib == ia:
                    ib = self.game.range(0, len(sides) - 1)
            a, b = sides[ia], sides[ib]
            r1 = self.game.range(0, 2)
            self.game.range(0, 2)        # r2: only the flavour text
            if r1 == 0:
                sa, sb = shots(a, True), shots(b, True)
                fire(sa, b)
                fire(sb, a)
            else:
                w, loser = (a, b) if r1 == 1 else (b, a)
                s = shots(w, False)
                if not s:
                    text[w["pid"]] += "Your Fleet escaped. "
                    for pid in owners:
                        if pid != w["pid"]:
                            text[pid] += "%s's fleet of escaped. " % w["name"]
                    resolve(w)
                    sides.remove(w)
                    continue
                fire(s, loser)
            for x, y in ((a, b), (b, a)):
                if all(dead(c) for c in x["list"]):
                    text[x["pid"]] += "Your fleet was destroyed by %s's " \
                        "fleet. " % y["name"]
                    text[y["pid"]] += "You destroyed %s's fleet. " % x["name"]
                    for pid in owners:
                        if pid not in (x["pid"], y["pid"]):
                            text[pid] += "%s's fleet destroyed %s's " \
                                "fleet. " % (y["name"], x["name"])
                    resolve(x)
                    sides.remove(x)
        if sides:
            resolve(sides[0])
            text[sides[0]["pid"]] += "Your Fleet survived combat."
        refs = [(1, m.id) for m in sorted(members, key=lambda m: m.id)]
        refs += [(7, pid) for pid in owners]
        # Then the battle's log (battle ids from 1, in the order fought).
        self.battles = getattr(self, "battles", 0) + 1
        refs += [(-1000, self.battles)]
        for pid in owners:
            self.tell(pid, "Combat", text[pid], refs)


# ------------------------------------------------------------ the server

class Client(Player):
    """A player's TP04 connection with the game helpers this test uses."""

    def __init__(self, srv, name, version=4):
        Player.__init__(self, srv, version=version, name=name)
        self.descs = {}
        self.odescs = {}
        self.seen_msgs = 0

    def all_ids(self):
        return self.list_ids("GetObjectIDs")

    def object_desc(self, otype):
        if otype not in self.descs:
            self.descs[otype] = self.get("GetObjectDesc", [otype])[0]
        return self.descs[otype]

    def objects(self):
        """{id: decoded object} for every object (TP04)."""
        out = {}
        ids = self.all_ids()
        for f in self.get("GetObjectsByID", ids):
            v = object_values(self.object_desc(f["otype"]), f)
            v["_frame"] = f
            out[f["id"]] = v
        return out

    def order_desc(self, otype):
        if otype not in self.odescs:
            self.odescs[otype] = self.get("GetOrderDesc", [otype])[0]
        return self.odescs[otype]

    def insert(self, queue, otype, values):
        types = [p["type"] for p in self.order_desc(otype)["parameters"]]
        table = ORDER_PARAM_IDONLY if self.version == 3 else ORDER_PARAM
        params = encode_params(table, types, values)
        return self.req("OrderInsert", {
            "id": queue, "slot": -1, "otype": otype, "turns": 0,
            "resources": [], "params": params.decode("utf-8",
                                                     "surrogateescape")})

    def new_messages(self):
        board = self.get("GetBoards", [0])[0]
        n = board["messages"]
        out = []
        if n > self.seen_msgs:
            frames = self.req("GetMessage", {
                "id": board["id"],
                "slots": list(range(self.seen_msgs, n))})[1:]
            out = [(f["subject"], f["body"], [(r["type"], r["id"]) for r in
                                              f["references"]], f["turn"])
                   for f in frames]
        self.seen_msgs = n
        return out


def order_values(otype, order):
    """The parameter values of an OrderInsert for a model order."""
    p = order.p
    if otype == NOP:
        return [{"turns": p["wait"], "maxtime": 0}]
    if otype == MOVE:
        x, y, z = p["pos"]
        return [{"x": x, "y": y, "z": z}]
    if otype == BUILD:
        return [{"choices": [], "selection": [{"id": d, "count": n}
                                              for d, n in p["ships"]]},
                {"maxlength": 0, "value": p["name"]}]
    if otype == SPLIT:
        return [{"choices": [], "selection": [{"id": d, "count": n}
                                              for d, n in p["ships"]]}]
    if otype == INTERCEPT:
        return [{"objectid": p["target"], "validtypes": []}]
    return []


# ------------------------------------------------------------ comparing

def model_view(m, o):
    """What a TP04 client should read of model object o."""
    v = {"name": o.name, "parent": o.parent, "pos": o.pos,
         "vel": o.vel, "size": o.size, "icon": ICONS[o.type],
         "media": o.media}
    if o.type == UNIVERSE:
        v["year"] = o.year
    if o.type in (PLANET, FLEET):
        v["owner"] = o.owner
    if o.type == PLANET:
        v["resources"] = [(r, s, 0, 0) for r, s in sorted(o.resources.items())]
    if o.type == FLEET:
        v["ships"] = [(9, d, n) for d, n in sorted(o.ships.items())]
        v["damage"] = o.damage
    return v


def server_view(s):
    def xyz(p):
        return [p["x"], p["y"], p["z"]]
    f = s["_frame"]
    v = {"name": f["name"], "parent": f["parent"], "pos": xyz(s["Position"]),
         "vel": xyz(s["Velocity"]), "size": s["Size"]["size"],
         "icon": s["Icon"]["url"], "media": s["Media"]["url"]}
    if "Year" in s:
        v["year"] = s["Year"]["value"]
    if "Owner" in s:
        v["owner"] = s["Owner"]["id"]
    if "Resource List" in s:
        v["resources"] = [(r["resource"], r["stored"], r["minable"],
                           r["unavailable"])
                          for r in s["Resource List"]["resources"]]
    if "Ship List" in s:
        v["ships"] = [(r["reftype"], r["id"], r["count"])
                      for r in s["Ship List"]["references"]]
        v["damage"] = s["Damage"]["value"]
    return v


def compare_universe(m, objs, what):
    """Checks every object; returns the list of differences."""
    diffs = []
    if sorted(objs) != sorted(m.objs):
        diffs.append("%s: objects %s on the server, %s in the model" % (
            what, sorted(set(objs) - set(m.objs)),
            sorted(set(m.objs) - set(objs))))
    for oid in sorted(set(objs) & set(m.objs)):
        want, got = model_view(m, m.objs[oid]), server_view(objs[oid])
        for k in want:
            if want[k] != got.get(k):
                diffs.append("%s: object %d (%s) %s: server %r, model %r" % (
                    what, oid, want["name"], k, got.get(k), want[k]))
        kids = objs[oid]["_frame"]["contains"]
        if sorted(kids) != m.children(m.objs[oid]):
            diffs.append("%s: object %d contains %r, model %r" % (
                what, oid, kids, m.children(m.objs[oid])))
    return diffs


# ------------------------------------------------------------ the game

def play():
    args = ["--set", "turn_length=0"]
    for k, v in SETTINGS.items():
        args += ["--set", "ruleset_settings.%s=%s" % (k, v)]
    with tplib.Server(*args) as srv:
        alice = Client(srv, "alice")
        bob = Client(srv, "bob")
        A, B = alice.id, bob.id
        T.ok(A == 1 and B == 2, "alice is player 1, bob player 2")
        m = Model(SEED, SETTINGS)
        m.setup()
        m.join(A, "alice")
        m.join(B, "bob")

        # The universe as generated, object by object.
        objs = alice.objects()
        diffs = compare_universe(m, objs, "start")
        T.ok(not diffs, "the universe and both home systems are where the "
             "seed puts them (%d objects; positions, names, media)" %
             len(objs), "\n".join(diffs[:20]))
        T.is_(objs[0]["_frame"]["otype"], UNIVERSE, "object 0: Universe")
        descs = [alice.object_desc(t)["name"] for t in range(5)]
        T.is_(descs, ["Universe", "Galaxy", "Star System", "Planet",
                      "Fleet"], "ObjectDescs 0-4")
        odescs = [alice.order_desc(t)["name"] for t in range(7)]
        T.is_(odescs, ORDER_NAMES, "OrderDescs 0-6")
        designs = alice.get("GetDesign", list(range(1, 7)))
        T.ok([(d["name"], d["owner"]) for d in designs] ==
             [("Scout", A), ("Frigate", A), ("Battleship", A),
              ("Scout", B), ("Frigate", B), ("Battleship", B)],
             "alice sees all six stock designs (no fog of war)")
        props = dict((p["id"], p["value"]) for p in designs[1]["properties"])
        T.ok(props.get(1) == "200.0 mega-units" and props.get(3) == "4.0 HP"
             and props.get(6) == "Yes", "Frigate properties as clients "
             "see them", repr(props))
        alice.new_messages()
        bob.new_messages()

        # Object ids, by name.
        ids = {o.name: o.id for o in m.objs.values()}
        ahome, bhome = ids["alice Planet"], ids["bob Planet"]
        af = [ids["alice %s Fleet" % w] for w in ("First", "Second",
                                                 "Third")]
        bf = [ids["bob %s Fleet" % w] for w in ("First", "Second",
                                               "Third")]
        centanis1 = ids["Centanis 1"]
        kiuper1 = ids["Kiuper Shadow 1"]
        mid = [(m.objs[ahome].pos[i] + m.objs[bhome].pos[i]) // 2
               for i in range(3)]
        AS, AF, AB = 1, 2, 3          # alice's designs
        BS, BF, BB = 4, 5, 6          # bob's

        def by_name(name):
            for o in m.objs.values():
                if o.name == name:
                    return o.id
            return None

        # The orders of each turn: (player, object, order) or a callable
        # that returns such a list when the turn comes.
        plan = {
            0: [(A, ahome, Order(BUILD, ships=[(AB, 1)], name="Hammer")),
                (A, af[0], Order(MOVE, pos=m.objs[centanis1].pos)),
                (A, af[0], Order(COLONISE)),
                (A, af[1], Order(MOVE, pos=mid)),
                (A, af[2], Order(NOP, wait=2)),
                (B, bhome, Order(BUILD, ships=[(BF, 2)], name="")),
                (B, bhome, Order(BUILD, ships=[(BS, 1)], name="Eye")),
                (B, bf[0], Order(MOVE, pos=mid)),
                (B, bf[1], Order(MERGE)),
                (B, bf[2], Order(COLONISE))],
            1: [(B, bf[1], Order(MOVE, pos=m.objs[ahome].pos)),
                (B, bf[2], Order(MOVE, pos=m.objs[kiuper1].pos)),
                (B, bf[2], Order(COLONISE))],
            4: lambda: [
                (A, by_name("Hammer"), Order(INTERCEPT, target=bf[1]))],
            5: lambda: [
                (B, by_name("A Fleet"), Order(SPLIT, ships=[(BF, 1)]))],
            6: lambda: [
                (B, by_name("A fleet"), Order(MERGE)),
                (A, af[2], Order(SPLIT, ships=[(AF, 5), (AS, 1)])),
                (A, ahome, Order(BUILD, ships=[(AF, 1), (AS, 2)],
                                 name="Second wave"))],
            8: lambda: [
                (B, by_name("Eye"), Order(MOVE, pos=m.objs[ahome].pos)),
                (B, by_name("A Fleet"), Order(MOVE, pos=m.objs[ahome].pos))],
            11: lambda: [
                (A, by_name("Second wave"), Order(SPLIT, ships=[(AS, 1)])),
                (A, by_name("Second wave"), Order(MOVE, pos=m.objs[
                    ids["Centanis 2"]].pos)),
                (A, by_name("Second wave"), Order(COLONISE))],
        }
        counts = {}
        tp03_done = False
        for turn in range(TURNS):
            todo = plan.get(turn, [])
            if callable(todo):
                todo = todo()
            for pid, oid, order in todo:
                if oid is None or oid not in m.objs:
                    continue
                client = alice if pid == A else bob
                ok, estimate = m.submit(pid, oid, order)
                frames = client.insert(oid, order.type,
                                       order_values(order.type, order))
                f = frames[0]
                T.ok(f.is_("Order") == ok and (not ok or f["turns"] ==
                                               estimate),
                     "turn %d: %s's %s on %d: %s, %s turn(s)" % (
                         turn, "alice" if pid == A else "bob",
                         ORDER_NAMES[order.type], oid,
                         "accepted" if ok else "refused", estimate),
                     repr(frames))
            if turn == 1 and not tp03_done:
                tp03_done = True
                tp03_session(srv, m, af[2])
            diffs = []
            for client in (alice, bob):
                r = client.call("FinishedTurn")
                if not r.is_("Okay"):
                    diffs.append("%s's FinishedTurn: %r" % (client.name, r))
            m.end_turn()
            now = alice.call("GetTimeRemaining")
            objs = alice.objects()
            diffs += compare_universe(m, objs, "turn %d" % turn)
            diffs += compare_queues(m, alice, A) + compare_queues(m, bob, B)
            for client, pid in ((alice, A), (bob, B)):
                got = client.new_messages()
                want = m.msgs.get(pid, [])
                if len(got) != len(want):
                    diffs.append("turn %d: %s got %d messages, model %d: "
                                 "%r" % (turn, client.name, len(got),
                                         len(want), [g[0] for g in got]))
                for g, w in zip(got, want):
                    body = g[1].split("\n\nBattle report:\n")[0]
                    if (g[0], body, g[2]) != w or g[3] != m.turn:
                        diffs.append("turn %d: %s's message %r: server "
                                     "%r, model %r" % (turn, client.name,
                                                       w[0], g, w))
                    counts[w[0]] = counts.get(w[0], 0) + 1
                    if w[0] == "Combat" and "was destroyed by" in w[1]:
                        counts["a side destroyed"] = \
                            counts.get("a side destroyed", 0) + 1
            dsg = alice.get("GetDesign", list(range(1, 7)))
            for d in dsg:
                want = m.designs[d["id"]]["inuse"]
                if d["inuse"] != want:
                    diffs.append("turn %d: design %d under construction %d,"
                                 " model %d" % (turn, d["id"], d["inuse"],
                                                want))
            T.ok(now["turn"] == m.turn and not diffs, "turn %d: every "
                 "object, queue, design and message as the rules say" %
                 turn, "\n".join(diffs[:25]))
            if diffs:
                break
        for subject in ("Move order complete", "Build Fleet order complete",
                        "Colonised planet", "Combat", "Split Fleet order "
                        "complete", "Merge Fleet order complete",
                        "NOp order complete", "Colonise order canceled",
                        "Merge Fleet order canceled",
                        "Intercept order complete", "a side destroyed"):
            T.ok(counts.get(subject, 0) > 0, "the game had: %s (%d)" % (
                subject, counts.get(subject, 0)))
        T.is_(srv.error_lines(), [], "no errors in the server log")


def compare_queues(m, client, pid):
    """Owned queues: how many orders, which order types allowed."""
    diffs = []
    own = [o for o in m.objs.values() if o.queue is not None and
           o.qowner == pid]
    ids = sorted(client.list_ids("GetOrderQueueIDs"))
    if ids != sorted(o.id for o in own):
        diffs.append("%s's queues: %r, model %r" % (
            client.name, ids, sorted(o.id for o in own)))
        return diffs
    if not ids:
        return diffs
    for q in client.get("GetOrderQueue", ids):
        o = m.objs[q["id"]]
        if q["numorders"] != len(o.queue) or sorted(q["ordertypes"]) != \
                sorted(o.allowed):
            diffs.append("%s's queue %d: %d orders %r allowed, model %d %r"
                         % (client.name, q["id"], q["numorders"],
                            q["ordertypes"], len(o.queue), o.allowed))
    return diffs


def tp03_session(srv, m, fleet):
    """alice over TP03: reads objects and gives an order."""
    c = srv.client(version=3)
    try:
        c.connect("tplib-tp03/1.0")
        T.ok(c.login("alice", "pw-alice").is_("Okay"), "TP03: alice logs "
             "in")
        f = c.call("GetObjectIDs", {"key": -1, "start": 0, "amount": -1})
        ids = sorted(x["id"] for x in f["modtimes"])
        T.is_(ids, sorted(m.objs), "TP03: the same objects")
        frames = c.request("GetObjectsByID", {"ids": [0, fleet]})
        uni, flt = frames[1], frames[2]
        T.ok(uni["otype"] == 0 and flt["otype"] == 4, "TP03: universe type "
             "0, fleet type 4")
        extra = tplib.compile_layout("i:owner [I:type I:count]:ships "
                                     "I:damage")
        vals, _ = extra.decode(raw_params(flt))
        o = m.objs[fleet]
        T.ok(vals["owner"] == o.owner and vals["ships"] ==
             [{"type": d, "count": n} for d, n in sorted(o.ships.items())]
             and vals["damage"] == o.damage and flt["name"] == o.name and
             [flt["pos"]["x"], flt["pos"]["y"]] == o.pos[:2],
             "TP03: alice's fleet: owner, ships, damage, position",
             repr((vals, flt)))
        T.ok(sorted(flt["ordertypes"]) == sorted(o.allowed) and
             flt["orders"] == len(o.queue), "TP03: its orders as its owner "
             "sees them", repr(flt))
        order = Order(NOP, wait=1)
        ok, _ = m.submit(1, fleet, order)
        types = [1]
        params = encode_params(ORDER_PARAM_IDONLY, types,
                               [{"turns": 1, "maxtime": 0}])
        r = c.call("OrderInsert", {"id": fleet, "slot": -1, "otype": NOP,
                                   "turns": 0, "resources": [],
                                   "params": params.decode(
                                       "utf-8", "surrogateescape")})
        T.ok(r.is_("Okay"), "TP03: OrderInsert by object id answered Okay",
             repr(r))
        frames = c.request("GetOrder", {"id": fleet, "slots": []})
        T.ok(len(frames) == len(o.queue) + 1 and frames[-1]["otype"] == NOP,
             "TP03: GetOrder lists the new order last", repr(frames))
    finally:
        c.close()


def main():
    T.run(play)
    T.done()


if __name__ == "__main__":
    main()
