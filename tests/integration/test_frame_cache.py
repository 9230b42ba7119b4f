#!/usr/bin/env python3
"""The cache of encoded Object frames (tp.views; issue 21) is exact.

A frame is kept per viewer (player, protocol version, padding) and sent
again as bytes until the model changes (a commit, an undo, a rollback,
an end of turn). Checked over TCP, each time by asking twice or more so
that the second answer comes from the cache:

* another player's view is never served from your cache: in the tiny
  ruleset every player sees every ship but only its owner its order
  queue, so two players asking for the same ship, in either order and
  again, each get their own frame, byte for byte the same as their first;
* TP03 and TP04, padded and not: each connection's frame decodes in its
  own version and padding;
* a change is seen right after the Okay of the change: a TP03 owner's
  ship shows its order count, cached at 0, then 1 right after the
  OrderInsert's Okay, 0 again after the RemoveOrder's;
* a change made by another player's request (ModifyObject in the fog
  ruleset), and one made from the console, are seen by a viewer whose
  frame was cached;
* after an end of turn every frame's modtime is the ObjectIDs list's
  (which is never cached)."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_console import console  # noqa: E402
from test_protocol import (  # noqa: E402
    MOVE, ORDER_PARAM, T, Player, check_okay, encode_params, fog_server,
    home_ids, object_values, order_fields, tiny_server)


def move(x, y):
    return encode_params(ORDER_PARAM, [0], [{"x": x, "y": y, "z": 0}])


def body(p, oid):
    return p.get("GetObjectsByID", [oid])[0].body


def ships_by_owner(a, descs):
    out = {}
    for o in a.get("GetObjectsByID", a.list_ids("GetObjectIDs")[1:]):
        out[object_values(descs[1], o)["Owner"]["id"]] = o["id"]
    return out


def modtimes_agree(p, what):
    ids = p.ids("GetObjectIDs")
    listed = {m["id"]: m["modtime"] for m in ids["modtimes"]}
    for _ in range(2):          # the second from the cache
        got = {o["id"]: o["modtime"]
               for o in p.get("GetObjectsByID", sorted(listed))}
    T.is_(got, listed, "%s: every Object frame's modtime is the ObjectIDs "
          "list's (%d objects)" % (what, len(listed)))


def test_viewers():
    with tiny_server() as srv:
        a, b = Player(srv), Player(srv)
        descs = {d["id"]: d for d in a.get("GetObjectDesc", [1])}
        ships = ships_by_owner(a, descs)
        a_ship, b_ship = ships[a.id], ships[b.id]
        # A's view of its ship first, then B's; B's of its own first.
        for first, second, ship in ((a, b, a_ship), (b, a, b_ship)):
            f1 = body(first, ship)
            s1 = body(second, ship)
            T.ok(f1 != s1, "ship %d: its owner's frame and the other "
                 "player's differ" % ship)
            T.is_((body(first, ship), body(second, ship)), (f1, s1),
                  "ship %d: asked again, each gets their own frame, byte "
                  "for byte" % ship)
            for p, want in ((first, ship if first is a and ship == a_ship
                             or first is b and ship == b_ship else 0),
                            (second, 0)):
                o = p.get("GetObjectsByID", [ship])[0]
                T.is_(object_values(descs[1], o)["Order Queue"]["queueid"],
                      want, "ship %d: the OrderQueue parameter %s sees is "
                      "%d" % (ship, "A" if p is a else "B", want))

        # Versions and padding: each decodes in its own.
        c = Player(srv, version=3)
        d = Player(srv)
        check_okay(d.req("SetFilters", {"filters": [0x1D00]}),
                   "padded player: SetFilters [padding] -> Okay")
        for _ in range(2):
            o3 = c.get("GetObjectsByID", [a_ship])[0]
            T.ok(o3.fields is not None and o3.version == 3 and
                 o3["id"] == a_ship, "TP03: A's ship decodes as a TP03 "
                 "Object", repr(o3))
            op = d.get("GetObjectsByID", [a_ship])[0]
            T.ok(op.fields is not None and op["id"] == a_ship and
                 object_values(descs[1], op, pad=True)["Owner"]["id"] ==
                 a.id, "padded TP04: A's ship decodes with padding",
                 repr(op))
            T.is_(object_values(descs[1], a.get("GetObjectsByID",
                                                [a_ship])[0])["Owner"]["id"],
                  a.id, "unpadded TP04: A's ship decodes without padding")

        # A change is seen right after its Okay (TP03 shows the order
        # count to the owner).
        c_ship = ships_by_owner(a, descs)[c.id]
        T.is_([c.get("GetObjectsByID", [c_ship])[0]["orders"]
               for _ in range(2)], [0, 0], "TP03 owner: no orders (twice)")
        check_okay(c.req("OrderInsert", order_fields(c_ship, -1, MOVE,
                                                        move(5, 5))),
                   "TP03 owner: OrderInsert -> Okay")
        T.is_(c.get("GetObjectsByID", [c_ship])[0]["orders"], 1,
              "right after the Okay: 1 order")
        r = c.req("RemoveOrder", {"id": c_ship, "slots": [0]})
        T.ok(r and r[-1].is_("Okay"), "TP03 owner: RemoveOrder -> Okay",
             repr(r))
        T.is_(c.get("GetObjectsByID", [c_ship])[0]["orders"], 0,
              "right after the Okay: no orders again")

        # A change from the console (the admin API's commit).
        before = a.get("GetObjectsByID", [b_ship])[0]
        rc, out, err = console(srv, 'local m = require "tp.model" '
                               'local o = m.objects[%d] o.name = "renamed" '
                               'm.changed(o) m.commit() return "done"'
                               % b_ship)
        T.ok(rc == 0 and "done" in out, "console renames B's ship",
             out + err)
        after = a.get("GetObjectsByID", [b_ship])[0]
        T.ok(after["name"] == "renamed" and
             after["modtime"] > before["modtime"], "A, whose frame was "
             "cached, sees the new name and modtime at once",
             repr((before.fields, after.fields)))

        modtimes_agree(a, "before the end of turn")
        rc, out, err = console(srv, "turn.now()")
        T.ok(rc == 0, "console: turn.now()", out + err)
        modtimes_agree(a, "after the end of turn")
        T.is_(srv.error_lines(), [], "no errors in the server log")


def test_modify():
    with fog_server() as srv:
        a = Player(srv)
        a_planet, a_fleet = home_ids(a)
        fl = a.get("GetObjectsByID", [a_fleet])[0]
        a.get("GetObjectsByID", [a_fleet])        # cached now
        fields = dict(fl.fields)
        fields["name"] = "Flagship"
        r = a.req("ModifyObject", fields)
        T.ok(r and r[-1].is_("Object") and r[-1]["name"] == "Flagship",
             "ModifyObject's own answer shows the new name", repr(r))
        for i in (1, 2):
            g = a.get("GetObjectsByID", [a_fleet])[0]
            T.ok(g["name"] == "Flagship" and g["modtime"] == r[-1]["modtime"],
                 "GetObjectsByID after it (%d): the new name and modtime"
                 % i, repr(g.fields))
        T.is_(srv.error_lines(), [], "fog: no errors in the server log")


def main():
    T.run(test_viewers, test_modify)
    T.done()


if __name__ == "__main__":
    main()
