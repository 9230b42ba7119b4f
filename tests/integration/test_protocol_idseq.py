#!/usr/bin/env python3
"""ID sequences over TCP (PROTOCOL.md 7.1, 8): sequence keys, start,
amount (-1 = all the rest, over-asking clamped), start past the end, one
live key per list kind; paging with a kept key while the game changes
(no duplicates, no gaps: the listing is a snapshot); modification times
and `from` (only what changed after a time, removed objects included)."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_protocol import (  # noqa: E402
    MOVE, ORDER_PARAM, SCUTTLE, T, Player, check_fail, check_is, check_okay,
    decoded, design_fields, encode_params, fog_server, home_ids, idseq_body,
    order_fields, tiny_server)

LISTS = ("GetObjectIDs", "GetOrderDescIDs", "GetBoardIDs", "GetResourceIDs",
         "GetCategoryIDs", "GetDesignIDs", "GetComponentIDs",
         "GetPropertyIDs", "GetObjectDescIDs", "GetPlayerIDs",
         "GetOrderQueueIDs")


def move(x, y):
    return encode_params(ORDER_PARAM, [0], [{"x": x, "y": y, "z": 0}])


def pairs(f):
    return [(m["id"], m["modtime"]) for m in f["modtimes"]]


def test_paging():
    with tiny_server() as srv:
        players = [Player(srv) for _ in range(6)]
        a = players[0]
        f = a.ids("GetObjectIDs", amount=0)
        if not check_is(f, "ObjectIDs", "key -1, amount 0"):
            return
        key = f["key"]
        T.is_((f["remaining"], f["modtimes"]), (7, []),
              "key -1, amount 0: remaining 7 (universe + 6 ships), no ids")
        T.ok(key != 0xFFFFFFFF, "a real key (not -1)", repr(f))
        snapshot = a.ids("GetObjectIDs", amount=-1)
        snap_key = snapshot["key"]
        T.ok(snap_key != key, "a new listing gets a new key")
        check_fail(a.req("GetObjectIDs", {"key": key, "start": 0,
                                          "amount": 1, "from": -1}), 3,
                   "the replaced key", "invalid sequence key", [])

        got = []
        f = a.ids("GetObjectIDs", key=snap_key, start=0, amount=3)
        got += pairs(f)
        T.is_(f["remaining"], 4, "page 1: 3 ids, remaining 4")
        # The game changes between pages: three players (three ships, the
        # universe's contents) and an order on A's ship.
        for _ in range(3):
            players.append(Player(srv))
        ship = [i for i, _ in pairs(snapshot)
                if a.get("GetOrderQueue", [i])[0].is_("OrderQueue")][0]
        check_is(a.call("OrderInsert", order_fields(ship, -1, 0,
                                                    move(3, 3))),
                 "Order", "OrderInsert between pages")
        f = a.ids("GetObjectIDs", key=snap_key, start=3, amount=3)
        got += pairs(f)
        T.is_(f["remaining"], 1, "page 2: 3 ids, remaining 1")
        f = a.ids("GetObjectIDs", key=snap_key, start=6, amount=30)
        got += pairs(f)
        T.is_((len(f["modtimes"]), f["remaining"]), (1, 0),
              "page 3 asking for 30: clamped to the 1 left, remaining 0")
        T.is_(got, pairs(snapshot), "the pages put together are the "
              "snapshot: same ids and modtimes, no duplicates, no gaps, "
              "ascending")
        T.is_([i for i, _ in got], list(range(7)), "ids 0..6")
        f = a.ids("GetObjectIDs", key=snap_key, start=2, amount=2)
        T.is_(pairs(f), got[2:4], "any start may be asked again")

        f = a.ids("GetObjectIDs")
        now = pairs(f)
        T.is_([i for i, _ in now], list(range(10)),
              "a new listing (key -1) sees the 3 new ships")
        mod = dict(now)
        T.ok(mod[ship] > dict(got)[ship] and mod[0] > dict(got)[0],
             "... with newer modtimes for the ship given an order and "
             "the universe", repr((now, got)))
        k = f["key"]
        check_fail(a.req("GetObjectIDs", {"key": snap_key, "start": 0,
                                          "amount": 1, "from": -1}), 3,
                   "the old key after a new listing",
                   "invalid sequence key, start again with -1")
        check_fail(a.req("GetObjectIDs", {"key": 777, "start": 0,
                                          "amount": 1, "from": -1}), 3,
                   "a key never given", "invalid sequence key")
        check_fail(a.req("GetObjectIDs", {"key": k, "start": 11,
                                          "amount": 1, "from": -1}), 4,
                   "start 11 of 10", "start 11 is past the end")
        f = a.ids("GetObjectIDs", key=k, start=10, amount=5)
        T.is_((f["modtimes"], f["remaining"]), ([], 0),
              "start 10 of 10: an empty batch, remaining 0")
        f = a.ids("GetObjectIDs", key=k, start=4, amount=-1)
        T.is_(([i for i, _ in pairs(f)], f["remaining"]),
              (list(range(4, 10)), 0), "start 4, amount -1: the rest")
        f = a.ids("GetObjectIDs", key=k, start=0, amount=0)
        T.is_((f["modtimes"], f["remaining"]), ([], 10),
              "amount 0: an empty batch, remaining 10")
        T.is_(f.body, idseq_body(k, 10, [], -1),
              "IDSequence bytes: key, remaining, empty list, from -1")

        # One live key per list kind: interleaved listings both go on.
        o = a.ids("GetObjectIDs", amount=0)
        d = a.ids("GetDesignIDs", amount=0)
        T.ok(o["key"] != d["key"], "object and design listings have "
             "different keys")
        f1 = a.ids("GetObjectIDs", key=o["key"], start=0, amount=-1)
        f2 = a.ids("GetDesignIDs", key=d["key"], start=0, amount=-1)
        T.ok(decoded(f1) and decoded(f2) and len(f1["modtimes"]) == 10 and
             len(f2["modtimes"]) == 1, "both keys still work",
             repr((f1, f2)))
        check_fail(a.req("GetDesignIDs", {"key": o["key"], "start": 0,
                                          "amount": 1, "from": -1}), 3,
                   "a key of another list kind", "invalid sequence key")

        # libtpproto-cpp: key -1, start 0, amount 8737, from -1, every
        # kind, pipelined, never paging.
        c = a.c
        seqs = [c.send(name, {"key": -1, "start": 0, "amount": 8737,
                              "from": -1}) for name in LISTS]
        answers = [c.recv_reply(s) for s in seqs]
        T.ok(all(len(x) == 1 and decoded(x[0]) and x[0]["remaining"] == 0
                 and x[0]["from"] == -1 for x in answers),
             "every list kind, amount 8737 pipelined: one whole answer "
             "each, clamped", "\n".join(repr(x) for x in answers))
        T.is_([len(x[0]["modtimes"]) for x in answers],
              [10, 1, 1, 1, 1, 1, 1, 1, 2, 9, 1],
              "... with every id of each kind")
        T.is_(srv.error_lines(), [], "no errors in the server log")


def listed(p, name, frm):
    f = p.ids(name, frm=frm)
    if not decoded(f):
        return []
    T.ok(f["from"] == frm, "%s from %d: from echoed" % (name, frm), repr(f))
    T.ok(all(m > frm for _, m in pairs(f)), "%s from %d: every modtime "
         "is later" % (name, frm), repr(f))
    return [i for i, _ in pairs(f)]


def test_from():
    with fog_server() as srv:
        a = Player(srv)
        planet, fleet = home_ids(a)
        everything = {}
        for name in LISTS:
            f = a.ids(name)
            everything[name] = pairs(f)
        t0 = max(m for v in everything.values() for _, m in v)
        for name in LISTS:
            T.is_(listed(a, name, t0), [], "%s from the latest modtime: "
                  "nothing" % name)
        T.is_(listed(a, "GetOrderDescIDs", 0), list(range(6)),
              "GetOrderDescIDs from 0: every order type")

        check_is(a.call("OrderInsert", order_fields(fleet, -1, MOVE,
                                                    move(5, 5))),
                 "Order", "A OrderInsert")
        T.is_(listed(a, "GetObjectIDs", t0), [fleet],
              "after an order: only the fleet changed")
        T.is_(listed(a, "GetOrderQueueIDs", t0), [fleet],
              "... and its queue")
        f = a.ids("GetObjectIDs", frm=t0)
        T.is_(f.body, idseq_body(f["key"], 0, pairs(f), t0),
              "ObjectIDs from T: bytes, T echoed as the last u64")

        b = Player(srv)
        T.is_(listed(a, "GetObjectIDs", t0), [0, fleet],
              "after B joined: the universe (new contents) too, none of "
              "B's objects")
        T.is_(listed(a, "GetPlayerIDs", t0), [b.id],
              "PlayerIDs from T: the new player")
        board = a.get("GetBoards", [0])[0]["id"]
        T.is_(listed(a, "GetBoardIDs", t0), [board],
              "BoardIDs from T: A's board (B's joining was announced on "
              "it)")
        t2 = max(m for _, m in pairs(a.ids("GetBoardIDs")))
        T.is_(listed(a, "GetBoardIDs", t2), [], "BoardIDs from its "
              "modtime: nothing")
        check_okay(a.req("PostMessage", {
            "id": 0, "slot": -1, "msgtypes": [], "subject": "s",
            "body": "b", "turn": 0, "references": []}), "A PostMessage")
        T.is_(listed(a, "GetBoardIDs", t2), [board],
              "BoardIDs from then: the board written to")
        f = a.call("AddDesign", design_fields("New", [(1, 1)]))
        if check_is(f, "Design", "A AddDesign"):
            T.is_(listed(a, "GetDesignIDs", t0), [f["id"]],
                  "DesignIDs from T: the new design only")

        # The fleet scuttles at the end of the turn: a listing from before
        # names it (removed), one from now does not.
        check_is(a.call("OrderInsert", order_fields(fleet, 0, SCUTTLE, b"")),
                 "Order", "A OrderInsert Scuttle")
        t1 = max(m for _, m in pairs(a.ids("GetObjectIDs")))
        check_okay(a.req("FinishedTurn"), "A FinishedTurn")
        check_okay(b.req("FinishedTurn"), "B FinishedTurn (the turn ends)")
        T.is_(a.call("GetTimeRemaining")["turn"], 1, "turn 1")
        T.is_(listed(a, "GetObjectIDs", t1), [0, planet, fleet],
              "from before the turn: universe (year), planet (contents) "
              "and the removed fleet")
        T.is_(a.list_ids("GetObjectIDs"), [0, planet],
              "from -1: the fleet is gone")
        f = a.get("GetObjectsByID", [fleet])[0]
        T.ok(f.is_("Fail") and f["code"] == 4, "GetObjectsByID of the "
             "removed fleet -> Fail(4)", repr(f))
        T.is_(a.list_ids("GetOrderQueueIDs"), [],
              "its order queue is gone too")
        T.is_(listed(a, "GetObjectIDs", 2 ** 63), [],
              "from far in the future: nothing")
        # B never saw A's fleet (fog: own objects only): B is not told it
        # went, so nothing of A's leaks through the removal.
        T.ok(fleet not in listed(b, "GetObjectIDs", t1),
             "B, who never saw the fleet, is not told it was removed")
        T.is_(srv.error_lines(), [], "no errors in the server log")


if __name__ == "__main__":
    tplib.main(test_paging, test_from)
