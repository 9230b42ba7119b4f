#!/usr/bin/env python3
"""The game frames of TP03 over TCP (PROTOCOL.md 10.3, 15, 19.2): the same
requests as test_protocol.py from a TP03 client (as libtpproto-py sends
them), answered in the TP03 forms: fixed-layout objects, orders addressed
by object id, orderParamObject as the id alone, OrderInsert answered with
Okay, ID lists without `from`, Fail without references, TimeRemaining as
the time alone; TP04-only frames refused. Bytes are compared wherever the
specification fixes them."""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_protocol import (  # noqa: E402
    ATTACK, BUILD, COLONISE, GALAXY, GATE, LOAD, MOVE, NOWHERE, SOL,
    ORDER_PARAM, ORDER_PARAM_IDONLY, SCUTTLE, T, Player, check_is, check_okay,
    check_seq, decode_params, decoded, design_fields, encode_params,
    fog_server, home_ids, i32, i64, idseq_body, listof, object_values,
    order_fields, raw_params, string, u32, u64)


def fail03(code, text):
    """The body of a TP03 Fail: code and message, no references."""
    return u32(code) + string(text)


def check_fail03(frames, code, text, name):
    """One TP03 Fail whose body is exactly code + text."""
    good = (len(frames) == 1 and frames[0].is_("Fail") and
            frames[0].version == 3 and frames[0].body == fail03(code, text))
    return T.ok(good, "%s -> TP03 Fail(%d, %r), no references" %
                (name, code, text), "\n".join(repr(f) for f in frames))


def object03(mods, oid, otype, name, size, pos, vel, contains, ordertypes,
             orders, extra):
    """The body of a TP03 Object frame (PROTOCOL.md 15.3)."""
    return (u32(oid) + u32(otype) + string(name) + u64(size) +
            b"".join(i64(v) for v in pos) +
            b"".join(i64(v) for v in vel) + listof(contains, u32) +
            listof(ordertypes, u32) + u32(orders) + u64(mods[oid]) +
            b"\0" * 8 + extra)


def test_objects(srv, p, planet, fleet):
    # libtpproto-py's iterator: amount 0 first to learn the total, then
    # batches with the returned key (PROTOCOL.md 8.2, 19.2).
    f = p.ids("GetObjectIDs", amount=0)
    if check_is(f, "ObjectIDs", "TP03 GetObjectIDs amount 0"):
        T.is_((f["remaining"], f["modtimes"]), (3, []),
              "TP03 GetObjectIDs amount 0: remaining 3, no ids")
        T.is_(len(f.body), 12, "TP03 ObjectIDs: 12 bytes (no `from`)")
        key = f["key"]
        g = p.ids("GetObjectIDs", key=key, start=0, amount=2)
        h = p.ids("GetObjectIDs", key=key, start=2, amount=30)
        mods = g["modtimes"] + h["modtimes"]
        T.is_([m["id"] for m in mods], [0, planet, fleet],
              "TP03 paging: universe, planet, fleet (the hidden planet is "
              "not listed)")
        T.is_((g["remaining"], h["remaining"]), (1, 0),
              "TP03 paging: remaining 1, then 0 (the amount is clamped)")
        T.is_(h.body, idseq_body(key, 0, [(fleet, mods[2]["modtime"])]),
              "TP03 ObjectIDs: bytes (key, remaining, list; no from)")
    # A TP04-sized (20-byte) request on TP03: the extra bytes are ignored.
    f = p.call("GetObjectIDs", body=u32(0xFFFFFFFF) + u32(0) +
               u32(0xFFFFFFFF) + u64(0xFFFFFFFFFFFFFFFF))
    if check_is(f, "ObjectIDs", "TP03 GetObjectIDs with 8 trailing bytes"):
        T.is_([m["id"] for m in f["modtimes"]], [0, planet, fleet],
              "... answered with every id")
    mods = {m["id"]: m["modtime"] for m in f["modtimes"]} if decoded(f) \
        else {}

    frames = p.req("GetObjectsByID", {"ids": [0, planet, fleet, NOWHERE]})
    if not check_seq(frames, 4, "TP03 GetObjectsByID [0, planet, fleet, "
                     "Nowhere]"):
        return
    uni, pl, fl, hidden = frames[1:]
    x = p.id * 100
    q = p.req("GetOrder", {"id": fleet, "slots": []})
    norders = len(q) - 1

    def obj03(*args):
        return object03(mods, *args)
    T.is_(uni.body, obj03(0, 0, "The Universe", 1000000, (0, 0, 0),
                          (0, 0, 0), [planet], [], 0, u32(0)),
          "TP03 Object 0: universe (type 0), age = turn 0; bytes")
    T.is_(pl.body, obj03(planet, 3, "%s's home" % p.name, 10, (x, 0, 0),
                         (0, 0, 0), [fleet], [], 0,
                         i32(p.id) + listof([(1, 100, 50, 5)], lambda r:
                                            b"".join(u32(v) for v in r))),
          "TP03 Object %d: planet (type 3), owner, resources; bytes" %
          planet)
    designs = p.list_ids("GetDesignIDs")
    T.is_(fl.body, obj03(fleet, 4, "%s's fleet" % p.name, 1, (x, 0, 0),
                         (0, 1, 0), [], [MOVE, ATTACK, BUILD, SCUTTLE],
                         norders, i32(p.id) + listof([(designs[0], 2)],
                                                     lambda s: u32(s[0]) +
                                                     u32(s[1])) + u32(7)),
          "TP03 Object %d: fleet (type 4), the order types TP03 can give "
          "(not Load), owner, ships, damage; bytes" % fleet)
    T.is_(hidden.body, fail03(4, "no such object %d" % NOWHERE),
          "TP03 GetObjectsByID of a hidden object: Fail(4) without "
          "references; bytes")

    frames = p.req("GetObjectsByPos", {"pos": {"x": x, "y": 0, "z": 0},
                                       "r": 1})
    if check_seq(frames, 3, "TP03 GetObjectsByPos around the home"):
        T.is_(sorted(f["id"] for f in frames[1:]), [0, planet, fleet],
              "TP03 GetObjectsByPos: universe, home, fleet")
    f = p.call("GetObjectIDsByPos", {"pos": {"x": x + 4, "y": 0, "z": 0},
                                     "r": 0})
    if check_is(f, "ObjectIDs", "TP03 GetObjectIDsByPos"):
        T.is_(f.body, idseq_body(0, 0, [(0, mods[0]),
                                        (planet, mods[planet])]),
              "TP03 GetObjectIDsByPos: bytes, no `from`")
    f = p.call("GetObjectIDsByContainer", {"id": planet})
    if check_is(f, "ObjectIDs", "TP03 GetObjectIDsByContainer"):
        T.is_(f.body, idseq_body(0, 0, [(fleet, mods[fleet])]),
              "TP03 GetObjectIDsByContainer planet: bytes")
    check_fail03(p.req("GetObjectIDsByContainer", {"id": 999}), 4,
                 "no such object 999", "TP03 GetObjectIDsByContainer 999")


def test_orders(srv, p, planet, fleet):
    f = p.ids("GetOrderDescIDs")
    if check_is(f, "OrderDescIDs", "TP03 GetOrderDescIDs"):
        T.is_([m["id"] for m in f["modtimes"]],
              [MOVE, ATTACK, BUILD, SCUTTLE, COLONISE],
              "TP03 GetOrderDescIDs: every order type but Load (whose "
              "resource list TP03 cannot carry)")
    frames = p.req("GetOrderDesc", {"ids": [ATTACK, LOAD]})
    if check_seq(frames, 2, "TP03 GetOrderDesc [Attack, Load]"):
        T.is_([(q["name"], q["type"]) for q in frames[1]["parameters"]],
              [("turns", 1), ("target", 2)], "TP03 OrderDesc Attack")
        T.is_(frames[2].body, fail03(2, "order type 2 (Load) has "
                                     "parameters TP03 cannot carry"),
              "TP03 GetOrderDesc Load: Fail(2); bytes")

    x = p.id * 100
    move = encode_params(ORDER_PARAM, [0], [{"x": x + 20, "y": 0, "z": 0}])
    frames = p.req("OrderInsert", order_fields(fleet, -1, MOVE, move))
    T.ok(len(frames) == 1 and frames[0].is_("Okay") and
         frames[0].version == 3 and
         frames[0].body == string(frames[0]["result"]),
         "TP03 OrderInsert Move (object id, slot -1) -> Okay, not the Order",
         repr(frames))
    attack = encode_params(ORDER_PARAM_IDONLY, [1, 2], [
        {"turns": 2, "maxtime": 0}, {"objectid": planet}])
    check_okay(p.req("OrderInsert", order_fields(fleet, 0, ATTACK, attack)),
               "TP03 OrderInsert Attack (orderParamObject: id only) at 0")
    load = encode_params(ORDER_PARAM, [10], [
        {"allowed": [], "maxmass": 0, "maxvolume": 0, "selected": []}])
    check_fail03(p.req("OrderInsert", order_fields(fleet, -1, LOAD, load)),
                 2, "order type 2 (Load) cannot be given over TP03",
                 "TP03 OrderInsert Load")
    check_fail03(p.req("OrderInsert", order_fields(fleet, 7, MOVE, move)),
                 4, "slot 7 is not in queue %d (2 orders)" % fleet,
                 "TP03 OrderInsert at slot 7")
    check_fail03(p.req("OrderInsert", order_fields(planet, -1, MOVE, move)),
                 4, "no such order queue %d (or it is not yours)" % planet,
                 "TP03 OrderInsert on the planet")
    f = p.call("OrderProbe", order_fields(fleet, -1, ATTACK, attack))
    if check_is(f, "Order", "TP03 OrderProbe Attack"):
        T.is_((f["id"], f["slot"], f["turns"]), (fleet, 2, 2),
              "TP03 OrderProbe: object id, slot 2, turns")
        T.is_(decode_params(ORDER_PARAM_IDONLY, [1, 2], raw_params(f)),
              [{"turns": 2, "maxtime": 10}, {"objectid": planet}],
              "TP03 OrderProbe: orderParamObject as the id alone")

    # A TP04 client of the same player adds a Load order: TP03 cannot be
    # shown it, but still counts it.
    frames = p.req("GetOrder", {"id": fleet, "slots": []})
    if check_seq(frames, 2, "TP03 GetOrder [] (every slot)"):
        T.is_([(f["id"], f["slot"], f["otype"]) for f in frames[1:]],
              [(fleet, 0, ATTACK), (fleet, 1, MOVE)],
              "TP03 GetOrder: the object id, slots, types")
        T.is_(decode_params(ORDER_PARAM_IDONLY, [1, 2],
                            raw_params(frames[1])),
              [{"turns": 2, "maxtime": 10}, {"objectid": planet}],
              "TP03 Order Attack: parameters in the TP03 form")
    return move


def test_orders_mixed(srv, p, fleet):
    c4 = srv.client()
    c4.connect()
    c4.login(p.name, "pw-" + p.name)
    load = encode_params(ORDER_PARAM, [10], [
        {"allowed": [], "maxmass": 0, "maxvolume": 0,
         "selected": [{"resource": 1, "quantity": 1}]}])
    f = c4.call("OrderInsert", order_fields(fleet, -1, LOAD, load))
    check_is(f, "Order", "TP04 client of the same player: OrderInsert Load")
    c4.close()
    frames = p.req("GetOrder", {"id": fleet, "slots": [2]})
    if check_seq(frames, 1, "TP03 GetOrder [2] (a Load order)"):
        T.is_(frames[1].body, fail03(2, "the order in slot 2 of queue %d "
                                     "has parameters TP03 cannot carry" %
                                     fleet),
              "TP03 GetOrder of a TP04-only order: Fail(2); bytes")
    fl = p.get("GetObjectsByID", [fleet])[0]
    T.is_(fl["orders"], 3, "TP03 Object: the order count includes it")
    frames = p.req("RemoveOrder", {"id": fleet, "slots": [2, 5]})
    if check_seq(frames, 2, "TP03 RemoveOrder [2, 5]"):
        T.ok(frames[1].is_("Okay"), "TP03 RemoveOrder 2 -> Okay")
        T.is_(frames[2].body, fail03(4, "no order in slot 5 of queue %d" %
                                     fleet), "TP03 RemoveOrder 5: bytes")


def test_rest(srv, p):
    frames = p.req("GetBoards", {"ids": [0]})
    board = None
    if check_seq(frames, 1, "TP03 GetBoards [0]"):
        board = frames[1]["id"]
        T.is_(frames[1]["messages"], 1, "TP03 Board: one message")
    f = p.ids("GetBoardIDs")
    if check_is(f, "BoardIDs", "TP03 GetBoardIDs"):
        T.is_(f.body, idseq_body(f["key"], 0, [(board, f["modtimes"][0][
            "modtime"])]), "TP03 BoardIDs: bytes")
    check_okay(p.req("PostMessage", {
        "id": 0, "slot": -1, "msgtypes": [], "subject": "note",
        "body": "to self", "turn": 0, "references": [{"type": 1, "id": 0}]}),
        "TP03 PostMessage")
    frames = p.req("GetMessage", {"id": board, "slots": []})
    if check_seq(frames, 2, "TP03 GetMessage [] (every message)"):
        m = frames[2]
        T.is_((m["id"], m["slot"], m["subject"], m["body"], m["turn"],
               m["references"]),
              (board, 1, "note", "to self", 0, [{"type": 1, "id": 0}]),
              "TP03 Message: as posted")
    frames = p.req("RemoveMessage", {"id": board, "slots": [1]})
    if check_seq(frames, 1, "TP03 RemoveMessage [1]"):
        T.ok(frames[1].is_("Okay"), "TP03 RemoveMessage 1 -> Okay")

    for lst, get, item, ids in (
            ("GetResourceIDs", "GetResource", "Resource", [1, 2]),
            ("GetCategoryIDs", "GetCategory", "Category", [1, 2]),
            ("GetComponentIDs", "GetComponent", "Component", [1, 2]),
            ("GetPropertyIDs", "GetProperty", "Property", [1, 2])):
        f = p.ids(lst)
        if check_is(f, f.name, "TP03 %s" % lst):
            T.is_([m["id"] for m in f["modtimes"]], ids,
                  "TP03 %s: ids" % lst)
        frames = p.req(get, {"ids": ids + [77]})
        if check_seq(frames, len(ids) + 1, "TP03 %s" % get):
            T.is_([g["id"] for g in frames[1:-1]], ids,
                  "TP03 %s: %s frames" % (get, item))
            T.ok(frames[-1].is_("Fail") and frames[-1]["code"] == 4 and
                 len(frames[-1].body) == 8 + len(frames[-1]["result"]),
                 "TP03 %s 77: Fail(4) without references" % get,
                 repr(frames[-1]))
    frames = p.req("GetPlayer", {"ids": [0]})
    if check_seq(frames, 1, "TP03 GetPlayer [0]"):
        T.is_(frames[1].body, u32(p.id) + string(p.name) + string("Human"),
              "TP03 Player: bytes")

    designs = p.list_ids("GetDesignIDs")
    f = p.call("AddDesign", design_fields("Gunboat", [(1, 1), (2, 1)],
                                          (1, 2)))
    did = None
    if check_is(f, "Design", "TP03 AddDesign -> the Design frame"):
        did = f["id"]
        T.is_((f["owner"], f["properties"]),
              (p.id, [{"id": 1, "value": "2 pc/turn"},
                      {"id": 2, "value": "3"}]),
              "TP03 AddDesign: owner and properties")
    if did is not None:
        f = p.call("ModifyDesign", design_fields("Gunboat II", [(1, 1)],
                                                 (1,), did))
        if check_is(f, "Design", "TP03 ModifyDesign -> the Design frame"):
            T.is_(f["name"], "Gunboat II", "TP03 ModifyDesign: renamed")
        check_okay(p.req("RemoveDesign", {"ids": [did]}),
                   "TP03 RemoveDesign: one Okay")
    check_fail03(p.req("RemoveDesign", {"ids": [designs[0]]}), 1,
                 "design %d not removed: design Scout is in use; nothing "
                 "removed" % designs[0], "TP03 RemoveDesign of a design in "
                 "use: one Fail")
    check_fail03(p.req("AddCategory", {"id": -1, "modtime": 0, "name": "c",
                                       "description": ""}), 2,
                 "players cannot add categories in Fog", "TP03 AddCategory")

    f = p.call("GetTimeRemaining")
    T.ok(f.is_("TimeRemaining") and f.version == 3 and
         f.body == u32(0xFFFFFFFF),
         "TP03 GetTimeRemaining: the time alone, 0xFFFFFFFF without a "
         "timer", repr(f))
    # Frames that exist only in TP04 (PROTOCOL.md 4, 15.1).
    for t, body in ((64, u32(0)), (65, b""), (67, u32(1) + u32(0)),
                    (69, u32(0xFFFFFFFF) + u32(0) + u32(0xFFFFFFFF)),
                    (71, b""), (72, u32(0xFFFFFFFF) + u32(0) + u32(0)),
                    (74, u32(1) + u32(3)), (76, u32(0xFFFFFFFF) + u32(0) +
                                            u32(0xFFFFFFFF))):
        frames = p.req(t, body=body)
        T.ok(len(frames) == 1 and frames[0].is_("Fail") and
             frames[0].version == 3 and frames[0]["code"] == 1 and
             frames[0].body == fail03(1, frames[0]["result"]),
             "TP03 frame type %d (TP04 only) -> Fail(1)" % t,
             repr(frames))


def test_turn(srv, p):
    p.c.async_frames = []
    frames = p.req("FinishedTurn")
    check_okay(frames, "TP03 FinishedTurn")
    deadline = time.monotonic() + 10
    while len(p.c.async_frames) < 2 and time.monotonic() < deadline:
        p.c.async_frames.append(p.c.recv_frame(timeout=10))
    got = [(f.raw_header[:4], f.seq, f.type, f.body)
           for f in p.c.async_frames]
    T.is_(got, [(b"TP03", 0, 15, u32(0)), (b"TP03", 0, 15, u32(0xFFFFFFFF))],
          "TP03 pushes at the end of the turn: TimeRemaining 0 then -1 "
          "(no timer), the time alone, sequence 0")
    uni = p.get("GetObjectsByID", [0])[0]
    T.is_(uni.body[-4:], u32(1), "TP03 universe: age 1 after the turn")


def test_walk_tp03():
    with fog_server() as srv:
        p = Player(srv, version=3, client="libtpproto-py/0.2.5 tpclient-pywx")
        planet, fleet = home_ids(p)
        test_objects(srv, p, planet, fleet)
        test_orders(srv, p, planet, fleet)
        test_orders_mixed(srv, p, fleet)
        test_rest(srv, p)
        test_turn(srv, p)
        T.is_(srv.error_lines(), [], "no errors in the server log")
        p.close()


def test_kinds_tp03():
    """The six TP03 object kinds (PROTOCOL.md 10.3): galaxy, star system
    and wormhole as well, with fog's landmarks on."""
    with fog_server("--set", "ruleset_settings.landmarks=true") as srv:
        p = Player(srv, version=3)
        planet, fleet = home_ids(p)
        f = p.ids("GetObjectIDs")
        mods = {m["id"]: m["modtime"] for m in f["modtimes"]}
        T.is_(sorted(mods), [0, GALAXY, SOL, GATE, planet, fleet],
              "landmarks: the TP03 player lists them")
        frames = p.req("GetObjectsByID", {"ids": [0, GALAXY, SOL, GATE]})
        if check_seq(frames, 4, "TP03 GetObjectsByID [0, galaxy, star "
                     "system, wormhole]"):
            T.is_(frames[1]["contains"], [GALAXY, GATE, planet],
                  "TP03 universe contains the landmarks and the home")
            T.is_(frames[2].body, object03(
                mods, GALAXY, 1, "Milky Way", 100000, (0, 0, 0), (0, 0, 0),
                [SOL], [], 0, b""), "TP03 Object: galaxy (type 1, no extra "
                "data); bytes")
            T.is_(frames[3].body, object03(
                mods, SOL, 2, "Sol", 50, (-1000, -2000, 3), (0, 0, 0), [],
                [], 0, b""), "TP03 Object: star system (type 2, no extra "
                "data, negative coordinates); bytes")
            T.is_(frames[4].body, object03(
                mods, GATE, 5, "Gate", 3, (500, 500, 0), (0, 0, 0), [], [],
                0, i64(-7000) + i64(8000) + i64(-9)),
                "TP03 Object: wormhole (type 5, signed end coordinates); "
                "bytes")
        q = Player(srv)
        desc = q.get("GetObjectDesc", [5])[0]
        o = q.get("GetObjectsByID", [GATE])[0]
        T.is_(object_values(desc, o), {
            "Position": {"x": 500, "y": 500, "z": 0, "relative": 0},
            "Size": {"size": 3},
            "Exit": {"x": -7000, "y": 8000, "z": -9, "relative": 0}},
            "TP04 wormhole: a parameter value from the ruleset's get()")
        T.is_(srv.error_lines(), [], "no errors in the server log")


if __name__ == "__main__":
    tplib.main(test_walk_tp03, test_kinds_tp03)
