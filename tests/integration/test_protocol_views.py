#!/usr/bin/env python3
"""Per-player views over TCP (PROTOCOL.md 7.4-7.9, 8.1): two players, each
trying every kind of access to the other's things, and refused.

* fog (a player sees the universe and their own objects): objects by id,
  by position, by container and in the ID list; order queues, orders
  (get, insert, probe, remove); boards and messages; designs (get, list,
  modify, remove); ModifyObject. The same over TP03.
* fog with publish_designs: the other player's designs can be read, not
  changed.
* tiny (everyone sees every object): the other player's ship is visible,
  its order queue is not (the OrderQueue parameter is 0, TP03 lists no
  order types), and every order request on it is refused."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_protocol import (  # noqa: E402
    ATTACK, MOVE, ORDER_PARAM, T, Player, check_fail, check_is,
    check_item_fail, check_okay, check_seq, decode_params, design_fields,
    encode_params, fog_server, home_ids, object_values, order_fields,
    raw_params, tiny_server)


def move(x, y):
    return encode_params(ORDER_PARAM, [0], [{"x": x, "y": y, "z": 0}])


def test_fog_objects(srv, a, b, a_planet, a_fleet, b_planet, b_fleet):
    T.is_(b.list_ids("GetObjectIDs"), [0, b_planet, b_fleet],
          "B's ObjectIDs: the universe and B's own objects only")
    T.is_(a.get("GetObjectsByID", [0])[0]["contains"], [a_planet],
          "A's universe contains A's planet only")
    T.is_(b.get("GetObjectsByID", [0])[0]["contains"], [b_planet],
          "B's universe contains B's planet only")
    for oid in (a_planet, a_fleet):
        check_item_fail(b.get("GetObjectsByID", [oid])[0], 4,
                        "B GetObjectsByID A's object %d" % oid,
                        "no such object %d" % oid, [(1, oid)])
        check_fail(b.req("GetObjectIDsByContainer", {"id": oid}), 4,
                   "B GetObjectIDsByContainer A's object %d" % oid,
                   "no such object %d" % oid, [(1, oid)])
    ax = a.id * 100
    frames = b.req("GetObjectsByPos", {"pos": {"x": ax, "y": 0, "z": 0},
                                       "r": 2})
    if check_seq(frames, 1, "B GetObjectsByPos around A's home"):
        T.is_(frames[1]["id"], 0, "... only the universe")
    f = b.call("GetObjectIDsByPos", {"pos": {"x": ax, "y": 0, "z": 0},
                                     "r": 2})
    if check_is(f, "ObjectIDs", "B GetObjectIDsByPos around A's home"):
        T.is_([m["id"] for m in f["modtimes"]], [0],
              "... lists only the universe")
    fl = a.get("GetObjectsByID", [a_fleet])[0]
    fields = dict(fl.fields)
    fields["name"] = "stolen"
    check_fail(b.req("ModifyObject", fields), 4,
               "B ModifyObject on A's fleet", "no such object %d" % a_fleet,
               [(1, a_fleet)])
    T.is_(a.get("GetObjectsByID", [a_fleet])[0]["name"], fl["name"],
          "A's fleet keeps its name")


def test_fog_orders(srv, a, b, a_planet, a_fleet, b_fleet):
    f = a.call("OrderInsert", order_fields(a_fleet, -1, MOVE, move(1, 1)))
    check_is(f, "Order", "A OrderInsert on A's fleet")
    T.is_(b.list_ids("GetOrderQueueIDs"), [b_fleet],
          "B's OrderQueueIDs: B's queue only")
    frames = b.req("GetOrderQueue", {"ids": [a_fleet, b_fleet]})
    if check_seq(frames, 2, "B GetOrderQueue [A's, B's]"):
        check_item_fail(frames[1], 4, "B GetOrderQueue A's queue",
                        "no such order queue %d" % a_fleet,
                        [(13, a_fleet)])
        T.is_(frames[2]["id"], b_fleet, "B GetOrderQueue B's queue")
    refs = [(13, a_fleet)]
    text = "no such order queue %d (or it is not yours)" % a_fleet
    check_fail(b.req("GetOrder", {"id": a_fleet, "slots": []}), 4,
               "B GetOrder on A's queue", text, refs)
    check_fail(b.req("GetOrder", {"id": a_fleet, "slots": [0]}), 4,
               "B GetOrder slot 0 of A's queue", text, refs)
    check_fail(b.req("OrderInsert", order_fields(a_fleet, -1, MOVE,
                                                 move(2, 2))), 4,
               "B OrderInsert on A's queue", text, refs)
    check_fail(b.req("OrderProbe", order_fields(a_fleet, -1, MOVE,
                                                move(2, 2))), 4,
               "B OrderProbe on A's queue", text, refs)
    check_fail(b.req("RemoveOrder", {"id": a_fleet, "slots": [0]}), 4,
               "B RemoveOrder on A's queue", text, refs)
    attack = encode_params(ORDER_PARAM, [1, 2], [
        {"turns": 1, "maxtime": 0}, {"objectid": a_planet,
                                     "validtypes": []}])
    f = b.call("OrderProbe", order_fields(b_fleet, -1, ATTACK, attack))
    check_is(f, "Order", "B OrderProbe on B's own queue still works")
    frames = a.req("GetOrder", {"id": a_fleet, "slots": []})
    if check_seq(frames, 1, "A GetOrder: A's order is still there"):
        T.is_(decode_params(ORDER_PARAM, [0], raw_params(frames[1])),
              [{"x": 1, "y": 1, "z": 0}], "... unchanged")


def test_fog_boards(srv, a, b):
    a_board = a.get("GetBoards", [0])[0]["id"]
    b_board = b.get("GetBoards", [0])[0]["id"]
    T.ok(a_board != b_board, "A and B have their own boards")
    T.is_(b.list_ids("GetBoardIDs"), [b_board], "B's BoardIDs: B's board")
    check_item_fail(b.get("GetBoards", [a_board])[0], 4,
                    "B GetBoards A's board", "no such board %d" % a_board,
                    [(4, a_board)])
    check_fail(b.req("GetMessage", {"id": a_board, "slots": []}), 4,
               "B GetMessage on A's board", "no such board %d" % a_board,
               [(4, a_board)])
    check_fail(b.req("GetMessage", {"id": a_board, "slots": [0]}), 4,
               "B GetMessage slot 0 of A's board")
    check_fail(b.req("RemoveMessage", {"id": a_board, "slots": [0]}), 4,
               "B RemoveMessage on A's board", "no such board %d" % a_board,
               [(4, a_board)])
    n = a.get("GetBoards", [0])[0]["messages"]
    # Writing to another player's personal board is how players talk.
    check_okay(b.req("PostMessage", {
        "id": a_board, "slot": -1, "msgtypes": [], "subject": "hello",
        "body": "from B", "turn": 0, "references": [{"type": 7,
                                                     "id": b.id}]}),
        "B PostMessage to A's board (a personal message)")
    frames = a.req("GetMessage", {"id": 0, "slots": []})
    if check_seq(frames, n + 1, "A reads every message"):
        # Marked with its sender (the subject and a player reference
        # first), whatever B put in it.
        T.is_(frames[-1]["subject"], "[from %s] hello" % b.name,
              "A got B's message, marked with B's name")
        T.is_(frames[-1]["references"][0], {"type": 7, "id": b.id},
              "and a reference to B first")
    # Another player's board takes messages at its end only.
    check_okay(b.req("PostMessage", {
        "id": a_board, "slot": 0, "msgtypes": [], "subject": "first!",
        "body": "jumping the queue", "turn": 0, "references": []}),
        "B PostMessage to slot 0 of A's board")
    frames = a.req("GetMessage", {"id": 0, "slots": []})
    T.is_([f["subject"] for f in frames[1:]][-1:] +
          [frames[1]["subject"] == "[from %s] first!" % b.name],
          ["[from %s] first!" % b.name, False],
          "it went to the end, not to slot 0")


def test_fog_designs(srv, a, b):
    a_designs = a.list_ids("GetDesignIDs")
    b_designs = b.list_ids("GetDesignIDs")
    T.ok(len(b_designs) == 1 and not set(a_designs) & set(b_designs),
         "B's DesignIDs: B's own design only", repr((a_designs, b_designs)))
    f = a.call("AddDesign", design_fields("Spare", [(1, 1)]))
    spare = f["id"] if check_is(f, "Design", "A AddDesign Spare") else 999
    for did in (a_designs[0], spare):
        check_item_fail(b.get("GetDesign", [did])[0], 4,
                        "B GetDesign A's design %d" % did,
                        "no such design %d" % did, [(9, did)])
        check_fail(b.req("ModifyDesign", design_fields("Mine", [(1, 1)],
                                                       did=did)), 4,
                   "B ModifyDesign A's design %d" % did,
                   "no such design %d" % did, [(9, did)])
    check_fail(b.req("RemoveDesign", {"ids": [spare]}), 4,
               "B RemoveDesign A's design", "no design %d of yours" % spare,
               [(9, spare)])
    check_fail(b.req("RemoveDesign", {"ids": [b_designs[0], spare]}), 4,
               "B RemoveDesign [own, A's]: one Fail naming A's",
               "no design %d of yours" % spare, [(9, spare)])
    T.is_(b.list_ids("GetDesignIDs"), b_designs,
          "... and B's own design was not removed either")
    frames = a.req("GetDesign", {"ids": [spare]})
    if check_seq(frames, 1, "A's design is intact"):
        T.is_(frames[1]["name"], "Spare", "... with its name")


def test_fog_tp03(srv, a, a_fleet):
    c = Player(srv, version=3)
    c_planet, c_fleet = home_ids(c)
    f = c.ids("GetObjectIDs")
    T.is_([m["id"] for m in f["modtimes"]], [0, c_planet, c_fleet],
          "TP03 player's ObjectIDs: own objects only")
    frames = c.req("GetObjectsByID", {"ids": [a_fleet]})
    T.ok(len(frames) == 2 and frames[1].is_("Fail") and
         frames[1]["code"] == 4, "TP03 player GetObjectsByID A's fleet -> "
         "Fail(4)", repr(frames))
    for name, fields in (
            ("GetOrder", {"id": a_fleet, "slots": []}),
            ("OrderInsert", order_fields(a_fleet, -1, MOVE, move(3, 3))),
            ("OrderProbe", order_fields(a_fleet, -1, MOVE, move(3, 3))),
            ("RemoveOrder", {"id": a_fleet, "slots": [0]})):
        check_fail(c.req(name, fields), 4, "TP03 player %s on A's fleet" %
                   name, "no such order queue %d" % a_fleet, version=3)
    c.close()


def test_fog():
    with fog_server() as srv:
        a, b = Player(srv), Player(srv)
        a_planet, a_fleet = home_ids(a)
        b_planet, b_fleet = home_ids(b)
        test_fog_objects(srv, a, b, a_planet, a_fleet, b_planet, b_fleet)
        test_fog_orders(srv, a, b, a_planet, a_fleet, b_fleet)
        test_fog_boards(srv, a, b)
        test_fog_designs(srv, a, b)
        test_fog_tp03(srv, a, a_fleet)
        T.is_(srv.error_lines(), [], "fog: no errors in the server log")


def test_published_designs():
    with fog_server("--set", "ruleset_settings.publish_designs=true") as srv:
        a, b = Player(srv), Player(srv)
        ids = b.list_ids("GetDesignIDs")
        owners = {d["owner"]: d["id"] for d in b.get("GetDesign", ids)}
        T.is_(sorted(owners), [a.id, b.id],
              "published: B lists A's design too")
        a_design = owners.get(a.id, 999)
        f = b.get("GetDesign", [a_design])[0]
        if check_is(f, "Design", "published: B GetDesign A's design"):
            T.is_((f["name"], f["owner"]), ("Scout", a.id),
                  "... with A as owner")
        check_fail(b.req("ModifyDesign", design_fields("Mine", [(1, 1)],
                                                       did=a_design)), 4,
                   "published: B ModifyDesign A's design", "is not yours",
                   [(9, a_design)])
        check_fail(b.req("RemoveDesign", {"ids": [a_design]}), 4,
                   "published: B RemoveDesign A's design",
                   "no design %d of yours" % a_design, [(9, a_design)])
        T.is_(a.get("GetDesign", [a_design])[0]["name"], "Scout",
              "published: A's design unchanged")


def test_tiny():
    with tiny_server() as srv:
        a, b = Player(srv), Player(srv)
        ships = {}
        for p in (a, b):
            ids = p.list_ids("GetObjectIDs")
            T.is_(len(ids), 3, "tiny: %s sees the universe and both ships"
                  % ("A" if p is a else "B"))
        objs = a.get("GetObjectsByID", a.list_ids("GetObjectIDs")[1:])
        descs = {d["id"]: d for d in a.get("GetObjectDesc", [1])}
        for o in objs:
            owner = object_values(descs[1], o)["Owner"]["id"]
            ships[owner] = o["id"]
        a_ship, b_ship = ships[a.id], ships[b.id]
        for p, ship, want in ((a, a_ship, a_ship), (b, a_ship, 0),
                              (b, b_ship, b_ship), (a, b_ship, 0)):
            o = p.get("GetObjectsByID", [ship])[0]
            T.is_(object_values(descs[1], o)["Order Queue"]["queueid"], want,
                  "tiny: ship %d's OrderQueue parameter as seen by %s is %d"
                  % (ship, "A" if p is a else "B", want))
        refs = [(13, a_ship)]
        for name, fields in (
                ("GetOrder", {"id": a_ship, "slots": []}),
                ("OrderInsert", order_fields(a_ship, -1, 0, move(5, 5))),
                ("OrderProbe", order_fields(a_ship, -1, 0, move(5, 5))),
                ("RemoveOrder", {"id": a_ship, "slots": [0]})):
            check_fail(b.req(name, fields), 4, "tiny: B %s on A's ship" %
                       name, "no such order queue %d" % a_ship, refs)
        check_item_fail(b.get("GetOrderQueue", [a_ship])[0], 4,
                        "tiny: B GetOrderQueue A's ship", None, refs)
        T.is_(b.list_ids("GetOrderQueueIDs"), [b_ship],
              "tiny: B's OrderQueueIDs: B's ship only")
        c = Player(srv, version=3)
        o = c.get("GetObjectsByID", [a_ship])[0]
        T.is_((o["ordertypes"], o["orders"]), ([], 0),
              "tiny: a TP03 player sees A's ship without order types or "
              "orders")
        T.is_(srv.error_lines(), [], "tiny: no errors in the server log")


if __name__ == "__main__":
    tplib.main(test_fog, test_published_designs, test_tiny)
