#!/usr/bin/env python3
"""The game frames of TP04 over TCP (PROTOCOL.md 6-11, 13, 18): every
request type walked against the fog test ruleset (tests/fixtures/rulesets/
fog), every reply decoded completely (object and order parameters by the
descriptions the server sends, with layouts written here from the
specification), contents checked, and bytes compared where the
specification fixes them.

The helpers at the top are shared by the other test_protocol_*.py files
(TP03, per-player views, ID sequences, turn pushes)."""

import os
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from tplib import CodecError, compile_layout  # noqa: E402

FIXTURES = os.path.join(tplib.ROOT, "tests", "fixtures", "rulesets")
FOG = os.path.join(FIXTURES, "fog")
TINY = os.path.join(FIXTURES, "tiny")

# Fog's numbering (its init.lua): object types, order types, objects.
UNIVERSE_T, PLANET_T, FLEET_T = 0, 1, 2
MOVE, ATTACK, LOAD, BUILD, SCUTTLE, COLONISE = 0, 1, 2, 3, 4, 5
NOWHERE = 1          # the neutral planet nobody sees
GALAXY, SOL, GATE = 2, 3, 4   # seen only with the landmarks setting

CPP_CLIENT = "libtpproto-cpp/0.1.9 tpclient-cpptext/0.0.1"

T = tplib.Tap.current or tplib.Tap()


# ------------------------------------------------------------ bytes

def u32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def i32(v):
    return struct.pack(">i", v)


def u64(v):
    return struct.pack(">Q", v & 0xFFFFFFFFFFFFFFFF)


def i64(v):
    return struct.pack(">q", v)


def string(text):
    b = text.encode("utf-8")
    return u32(len(b)) + b


def listof(items, fn):
    return u32(len(items)) + b"".join(fn(x) for x in items)


def idseq_body(key, remaining, pairs, frm=None):
    """An IDSequence body: TP04 with from, TP03 (frm None) without."""
    body = u32(key) + u32(remaining) + listof(
        pairs, lambda p: u32(p[0]) + u64(p[1]))
    if frm is not None:
        body += u64(frm)
    return body


# ------------------------------------------------------------ parameters
# Value layouts of object parameters (PROTOCOL.md 10.2) and order
# parameters (PROTOCOL.md 9), written from the specification (not from
# the server's tables), in the layout language of tplib.

OBJ_PARAM = {
    0: "q:x q:y q:z I:relative", 1: "q:x q:y q:z I:relative",
    2: "q:x q:y q:z I:relative", 3: "i:slot", 4: "I:queueid",
    5: "[I:resource I:stored I:minable I:unavailable]:resources",
    6: "i:reftype I:id", 7: "[i:reftype I:id I:count]:references",
    8: "I:value", 9: "Q:size", 10: "S:url",
}

ORDER_PARAM = {
    0: "q:x q:y q:z", 1: "i:turns i:maxtime",
    2: "I:objectid [I]:validtypes", 3: "I:playerid I:mask",
    4: "I:objectid q:x q:y q:z", 5: "i:value i:min i:max i:inc",
    6: "[I:id S:name I:maxnum]:choices [I:id I:count]:selection",
    7: "I:maxlength S:value", 8: "I:ref [I]:allowed",
    9: "[I]:refs [I]:allowed",
    10: "[I:resource I:max]:allowed I:maxmass I:maxvolume "
        "[I:resource I:quantity]:selected",
    11: "[I:max [i:reftype I:refid]:reflist]:weightmax "
        "[I:optionid S:name j:max [i:reftype I:refid]:reflist [I]:weights]"
        ":possibles [I:id I:count]:selection",
}
# orderParamObject as TP03 and libtpproto-cpp code it.
ORDER_PARAM_IDONLY = dict(ORDER_PARAM)
ORDER_PARAM_IDONLY[2] = "I:objectid"


def params_layout(table, types):
    return compile_layout(" ".join("{%s}:p%d" % (table[t], i)
                                   for i, t in enumerate(types)))


def raw_params(frame):
    return frame["params"].encode("utf-8", "surrogateescape")


def decode_params(table, types, raw, pad=False):
    """The values of a parameter list, in order. Raises CodecError when the
    bytes do not match exactly (short or trailing bytes, non-zero string
    padding)."""
    lay = params_layout(table, types)
    fields, used = lay.decode(raw, pad, strict=True)
    if used != len(raw):
        raise CodecError("%d bytes after the parameters" % (len(raw) - used))
    return [fields["p%d" % i] for i in range(len(types))]


def encode_params(table, types, values, pad=False):
    return params_layout(table, types).encode(
        {"p%d" % i: v for i, v in enumerate(values)}, pad)


def desc_param_types(desc):
    """(names, types) of an ObjectDesc's parameters, in order."""
    names, types = [], []
    for g in desc["groups"]:
        for p in g["parameters"]:
            names.append(p["name"])
            types.append(p["type"])
    return names, types


def object_values(desc, frame, pad=False):
    """{parameter name: value} of a TP04 Object frame by its ObjectDesc."""
    names, types = desc_param_types(desc)
    return dict(zip(names, decode_params(OBJ_PARAM, types,
                                         raw_params(frame), pad)))


def order_types_of(odesc):
    return [p["type"] for p in odesc["parameters"]]


# ------------------------------------------------------------ sessions

def fog_server(*extra):
    """A fog server without a turn timer (turns end when every player has
    finished)."""
    return tplib.Server("--ruleset", FOG, "--set", "turn_length=0", *extra)


def tiny_server(*extra):
    return tplib.Server("--ruleset", TINY, "--set", "turn_length=0", *extra)


class Player:
    """A logged-in client with a new account: .c (tplib.Client), .name,
    .id (the player id, from GetPlayer [0])."""

    def __init__(self, srv, version=4, client="tplib-test/1.0", name=None):
        self.version = version
        self.name = name or tplib.unique_name("p")
        self.c = srv.client(version)
        self.c.connect(client)
        f = self.c.create_account(self.name, "pw-" + self.name)
        if not f.is_("Okay"):
            raise RuntimeError("CreateAccount: %r" % f)
        f = self.c.login(self.name, "pw-" + self.name)
        if not f.is_("Okay"):
            raise RuntimeError("Login: %r" % f)
        frames = self.c.request("GetPlayer", {"ids": [0]})
        self.id = frames[1]["id"]

    def req(self, name, fields=None, **kw):
        return self.c.request(name, fields, **kw)

    def call(self, name, fields=None, **kw):
        return self.c.call(name, fields, **kw)

    def ids(self, name, key=-1, start=0, amount=-1, frm=-1):
        """One GetXxxIDs request; returns the reply frame."""
        f = {"key": key, "start": start, "amount": amount}
        if self.version == 4:
            f["from"] = frm
        return self.call(name, f)

    def list_ids(self, name, frm=-1):
        f = self.ids(name, frm=frm)
        return [m["id"] for m in f["modtimes"]]

    def get(self, name, ids):
        """GetWithID: returns the item frames after the Sequence."""
        frames = self.req(name, {"ids": ids})
        if not frames[0].is_("Sequence") or len(frames) != len(ids) + 1:
            raise tplib.ProtocolError("%s: %r" % (name, frames))
        return frames[1:]

    def close(self):
        self.c.close()


def home_ids(p):
    """(planet id, fleet id) of a fog player, from the universe's
    contents."""
    uni = p.get("GetObjectsByID", [0])[0]
    homes = [o for o in p.get("GetObjectsByID", uni["contains"])
             if o["name"] == p.name + "'s home"]
    planet = homes[0]["id"]
    fleet = homes[0]["contains"][0]
    return planet, fleet


# ------------------------------------------------------------ checks

def describe(frames):
    if not isinstance(frames, list):
        frames = [frames]
    return "\n".join(repr(f) for f in frames)


def decoded(f):
    return f is not None and f.fields is not None


def check_seq(frames, n, name):
    """Sequence(n) followed by n completely decoded frames."""
    good = (len(frames) == n + 1 and frames[0].is_("Sequence") and
            decoded(frames[0]) and frames[0]["number"] == n and
            all(decoded(f) for f in frames))
    T.ok(good, "%s: Sequence(%d) + %d frames, all decoded" % (name, n, n),
         describe(frames))
    return good


def check_item_fail(f, code, name, text=None, refs=None, version=4):
    """One Fail frame (e.g. an item of a Sequence) with code, text in its
    message and exactly these references (TP04)."""
    good = (f is not None and f.is_("Fail") and decoded(f) and
            f["code"] == code and (text is None or text in f["result"]) and
            f.version == version)
    if good and version == 4 and refs is not None:
        good = [(r["type"], r["id"]) for r in f["references"]] == refs
    want = "Fail(%d%s%s)" % (code, ", %r" % text if text else "",
                             ", refs %r" % (refs,) if refs is not None
                             else "")
    T.ok(good, "%s -> %s" % (name, want), describe(f))
    return good


def check_fail(frames, code, name, text=None, refs=None, version=4):
    """The whole answer is one Fail."""
    if len(frames) != 1:
        return T.ok(False, "%s -> one Fail(%d)" % (name, code),
                    describe(frames))
    return check_item_fail(frames[0], code, name, text, refs, version)


def todo(cond, name, why):
    """A check known to fail for now (a bug outside the protocol
    handlers): TAP "# TODO", which tests/run counts as passed."""
    with T.lock:
        T.n += 1
        T._line("%s %d - %s # TODO %s" % ("ok" if cond else "not ok", T.n,
                                          name, why))


def check_okay(frames, name):
    good = (len(frames) == 1 and frames[0].is_("Okay") and
            decoded(frames[0]))
    return T.ok(good, "%s -> Okay" % name, describe(frames))


def check_is(frame, name, want):
    """frame is a decoded frame of type name."""
    return T.ok(frame is not None and frame.is_(name) and decoded(frame),
                "%s: a %s frame that decodes completely" % (want, name),
                describe(frame))


def check_idseq(f, name, reply, ids, key=None, remaining=0, frm=-1,
                version=4):
    """An IDSequence frame of type reply listing exactly ids (in order)."""
    if not check_is(f, reply, name):
        return False
    got = [m["id"] for m in f["modtimes"]]
    good = T.is_(got, ids, "%s: ids" % name)
    T.is_(f["remaining"], remaining, "%s: remaining %d" % (name, remaining))
    if key is not None:
        T.is_(f["key"], key, "%s: key %d" % (name, key))
    if version == 4:
        T.is_(f["from"], frm, "%s: from %d echoed" % (name, frm))
    return good


# ------------------------------------------------------------ TP04 walk

def test_descriptions(srv, a):
    """Object types and order types: the ID lists and the descriptions."""
    f = a.ids("GetObjectDescIDs")
    check_idseq(f, "GetObjectDescIDs", "ObjectDescIDs", list(range(6)))
    if decoded(f):
        mods = [m["modtime"] for m in f["modtimes"]]
        T.ok(all(m > 1e9 for m in mods) and len(set(mods)) == 1,
             "ObjectDescIDs: every type has the same Unix-time modtime",
             repr(mods))
        T.is_(f.body, idseq_body(f["key"], 0,
                                 [(i, mods[0]) for i in range(6)], -1),
              "ObjectDescIDs: bytes as the specification lays them out "
              "(key, remaining, (id, modtime) list, from = -1)")

    frames = a.req("GetObjectDesc", {"ids": [0, 1, 2, 99]})
    descs = {}
    if check_seq(frames, 4, "GetObjectDesc [0,1,2,99]"):
        for f in frames[1:4]:
            descs[f["id"]] = f
        check_item_fail(frames[4], 4, "GetObjectDesc 99",
                        "no such object type 99", [(12, 99)])
    want = {
        0: ("Universe", [("Positional", [("Position", 0), ("Size", 9)]),
                         ("Informational", [("Year", 8)])]),
        1: ("Planet", [("Positional", [("Position", 0), ("Size", 9)]),
                       ("Ownership", [("Owner", 6)]),
                       ("Resources", [("Resources", 5), ("Picture", 10)])]),
        2: ("Fleet", [("Positional", [("Position", 0), ("Velocity", 1),
                                      ("Size", 9)]),
                      ("Ownership", [("Owner", 6)]),
                      ("Orders", [("Order Queue", 4)]),
                      ("Combat", [("Damage", 8), ("Cargo", 7)])]),
    }
    for tid, (tname, groups) in want.items():
        d = descs.get(tid)
        if d is None:
            T.ok(False, "ObjectDesc %d received" % tid)
            continue
        T.is_(d["name"], tname, "ObjectDesc %d: name" % tid)
        got = [(g["name"], [(p["name"], p["type"]) for p in g["parameters"]])
               for g in d["groups"]]
        T.is_(got, groups, "ObjectDesc %d (%s): groups, parameters and "
              "their types in order" % (tid, tname))
        T.is_([g["id"] for g in d["groups"]],
              list(range(1, len(groups) + 1)),
              "ObjectDesc %d: group ids 1.." % tid)
    # The universe's description byte by byte (PROTOCOL.md 7.4).
    u = descs.get(0)
    if u is not None:
        body = (u32(0) + string("Universe") + string("Everything") +
                u64(u["modtime"]) + u32(2) +
                u32(1) + string("Positional") + string("Where it is") +
                u32(2) + string("Position") + u32(0) + string("Centre") +
                string("Size") + u32(9) + string("Diameter") +
                u32(2) + string("Informational") + string("") + u32(1) +
                string("Year") + u32(8) + string("Turns since the start"))
        T.is_(u.body, body, "ObjectDesc 0: bytes as the specification lays "
              "them out (no extra data after each parameter)")

    f = a.ids("GetOrderDescIDs")
    check_idseq(f, "GetOrderDescIDs", "OrderDescIDs",
                [MOVE, ATTACK, LOAD, BUILD, SCUTTLE, COLONISE])
    frames = a.req("GetOrderDesc", {"ids": [MOVE, ATTACK, LOAD, BUILD, 77]})
    if check_seq(frames, 5, "GetOrderDesc [0,1,2,3,77]"):
        got = [(f["id"], f["name"], [(p["name"], p["type"])
                                     for p in f["parameters"]])
               for f in frames[1:5]]
        T.is_(got, [(0, "Move", [("to", 0)]),
                    (1, "Attack", [("turns", 1), ("target", 2)]),
                    (2, "Load", [("cargo", 10)]),
                    (3, "Build", [("what", 6)])],
              "OrderDesc: names, parameter names and types")
        f = frames[1]
        T.is_(f.body, u32(0) + string("Move") + string("Move to a point") +
              u32(1) + string("to") + u32(0) + string("Where to go") +
              u64(f["modtime"]),
              "OrderDesc 0: bytes, modtime after the parameter list")
        check_item_fail(frames[5], 4, "GetOrderDesc 77",
                        "no such order type 77", [(2, 77)])
    return descs


def test_objects(srv, a, descs):
    planet, fleet = home_ids(a)
    f = a.ids("GetObjectIDs")
    check_idseq(f, "GetObjectIDs (fog: the universe and own objects only)",
                "ObjectIDs", [0, planet, fleet])
    mods = {m["id"]: m["modtime"] for m in f["modtimes"]} if decoded(f) \
        else {}

    frames = a.req("GetObjectsByID",
                   {"ids": [0, planet, fleet, NOWHERE, 999, -1]})
    if not check_seq(frames, 6, "GetObjectsByID [0, planet, fleet, "
                     "Nowhere, 999, -1]"):
        return planet, fleet
    uni, pl, fl = frames[1:4]
    for f, oid, otype, name, parent, contains in (
            (uni, 0, UNIVERSE_T, "The Universe", 0, [planet]),
            (pl, planet, PLANET_T, "%s's home" % a.name, 0, [fleet]),
            (fl, fleet, FLEET_T, "%s's fleet" % a.name, planet, [])):
        T.is_((f["id"], f["otype"], f["name"], f["desc"], f["parent"],
               f["contains"]), (oid, otype, name, "", parent, contains),
              "Object %d: id, type, name, desc, parent, visible children"
              % oid)
        T.is_(f["modtime"], mods.get(oid), "Object %d: modtime as listed "
              "in ObjectIDs" % oid)
        names, _ = desc_param_types(descs[otype])
        name_len = len(name.encode())
        fixed = 4 + 4 + 4 + name_len + 4 + 4 + 4 + 4 * len(contains) + 8
        T.is_(f.body[fixed:fixed + 16], b"\0" * 16,
              "Object %d: 16 zero bytes of padding before the parameters"
              % oid)
    for f, oid in ((frames[4], NOWHERE), (frames[5], 999)):
        check_item_fail(f, 4, "GetObjectsByID %d (hidden / unknown)" % oid,
                        "no such object %d" % oid, [(1, oid)])
    check_item_fail(frames[6], 4, "GetObjectsByID -1", "no such object -1",
                    [(1, 0xFFFFFFFF)])

    v = object_values(descs[UNIVERSE_T], uni)
    T.is_(v, {"Position": {"x": 0, "y": 0, "z": 0, "relative": 0},
              "Size": {"size": 1000000}, "Year": {"value": 0}},
          "Object 0: parameter values")
    # The universe byte by byte (PROTOCOL.md 7.4, 10.2).
    T.is_(uni.body, u32(0) + u32(0) + string("The Universe") + string("") +
          u32(0) + listof([planet], u32) + u64(uni["modtime"]) +
          b"\0" * 16 + i64(0) * 3 + u32(0) + u64(1000000) + u32(0),
          "Object 0: bytes as the specification lays them out")
    x = a.id * 100
    v = object_values(descs[PLANET_T], pl)
    T.is_(v, {"Position": {"x": x, "y": 0, "z": 0, "relative": 0},
              "Size": {"size": 10},
              "Owner": {"reftype": 7, "id": a.id},
              "Resources": {"resources": [{"resource": 1, "stored": 100,
                                           "minable": 50,
                                           "unavailable": 5}]},
              "Picture": {"url": "planets/home.png"}},
          "Object %d (planet): parameter values" % planet)
    v = object_values(descs[FLEET_T], fl)
    T.is_(v, {"Position": {"x": x, "y": 0, "z": 0, "relative": 0},
              "Velocity": {"x": 0, "y": 1, "z": 0, "relative": 0},
              "Size": {"size": 1},
              "Owner": {"reftype": 7, "id": a.id},
              "Order Queue": {"queueid": fleet},
              "Damage": {"value": 7},
              "Cargo": {"references": [{"reftype": 6, "id": 1,
                                        "count": 12}]}},
          "Object %d (fleet): parameter values; its order queue id is the "
          "object id" % fleet)

    # A sphere around the player's home: the home, the fleet and the
    # universe (which is a million wide); around the hidden planet: only
    # the universe.
    frames = a.req("GetObjectsByPos", {"pos": {"x": x, "y": 0, "z": 0},
                                       "r": 1})
    if check_seq(frames, 3, "GetObjectsByPos around the home"):
        T.is_(sorted(f["id"] for f in frames[1:]), [0, planet, fleet],
              "GetObjectsByPos around the home: universe, home, fleet")
    frames = a.req("GetObjectsByPos", {"pos": {"x": -50, "y": 0, "z": 0},
                                       "r": 3})
    if check_seq(frames, 1, "GetObjectsByPos around the hidden planet"):
        T.is_(frames[1]["id"], 0, "GetObjectsByPos around the hidden "
              "planet: only the universe")
    frames = a.req("GetObjectsByPos", {"pos": {"x": 10 ** 7, "y": 0,
                                               "z": 0}, "r": 0})
    check_seq(frames, 0, "GetObjectsByPos far outside everything")
    f = a.call("GetObjectIDsByPos", {"pos": {"x": x + 4, "y": 0, "z": 0},
                                     "r": 0})
    if check_idseq(f, "GetObjectIDsByPos 4 from the home's centre (the "
                   "home is 10 wide, the fleet 1)", "ObjectIDs",
                   [0, planet], key=0):
        T.is_(f.body, idseq_body(0, 0, [(0, mods[0]),
                                        (planet, mods[planet])], -1),
              "GetObjectIDsByPos: bytes (key 0, remaining 0, from -1)")
    # Exactly 32 bytes of request body (PROTOCOL.md 7.4).
    body = i64(x) + i64(0) + i64(0) + u64(0)
    f = a.call("GetObjectIDsByPos", body=body)
    check_idseq(f, "GetObjectIDsByPos with a 32-byte body", "ObjectIDs",
                [0, planet, fleet], key=0)

    for cid, want in ((0, [planet]), (planet, [fleet]), (fleet, [])):
        f = a.call("GetObjectIDsByContainer", {"id": cid})
        check_idseq(f, "GetObjectIDsByContainer %d" % cid, "ObjectIDs",
                    want, key=0)
    for cid in (NOWHERE, 999):
        check_fail(a.req("GetObjectIDsByContainer", {"id": cid}), 4,
                   "GetObjectIDsByContainer %d" % cid,
                   "no such object %d" % cid, [(1, cid)])
    check_seq(a.req("GetObjectsByID", {"ids": []}), 0,
              "GetObjectsByID [] (empty list)")

    # ModifyObject: the owner renames the fleet and sets its damage (an
    # Integer parameter is writable); read-only values sent are ignored.
    names, types = desc_param_types(descs[FLEET_T])
    vals = decode_params(OBJ_PARAM, types, raw_params(fl))
    vals[names.index("Damage")] = {"value": 9}
    vals[names.index("Position")] = {"x": 5, "y": 5, "z": 5, "relative": 0}
    fields = dict(fl.fields)
    fields.update(name="Red October", desc="a quiet fleet",
                  params=encode_params(OBJ_PARAM, types, vals))
    f = a.call("ModifyObject", fields)
    if check_is(f, "Object", "ModifyObject on own fleet"):
        v = object_values(descs[FLEET_T], f)
        T.is_((f["id"], f["name"], f["desc"], v["Damage"]["value"],
               v["Position"]["x"]), (fleet, "Red October", "a quiet fleet",
                                     9, x),
              "ModifyObject: name, desc and the writable Integer changed; "
              "the read-only position did not")
        T.ok(f["modtime"] > fl["modtime"], "ModifyObject: the modtime "
             "moved on")
    fields.update(name="")
    check_fail(a.req("ModifyObject", fields), 1,
               "ModifyObject with a name the ruleset refuses",
               "a name cannot be empty", [(1, fleet)])
    fields.update(name="x", params=raw_params(fl)[:5])
    check_fail(a.req("ModifyObject", fields), 1,
               "ModifyObject with parameters cut short", "do not decode",
               [(1, fleet)])
    ufields = dict(uni.fields)
    check_fail(a.req("ModifyObject", ufields), 4,
               "ModifyObject on the universe (nobody's)", "not yours",
               [(1, 0)])
    ufields.update(id=NOWHERE)
    check_fail(a.req("ModifyObject", ufields), 4,
               "ModifyObject on a hidden object", "no such object 1",
               [(1, NOWHERE)])
    return planet, fleet


def move_params(x, y, z=0):
    return encode_params(ORDER_PARAM, [0], [{"x": x, "y": y, "z": z}])


def order_fields(queue, slot, otype, params):
    return {"id": queue, "slot": slot, "otype": otype, "turns": 0,
            "resources": [], "params": params}


def test_orders(srv, a, fleet, planet):
    f = a.ids("GetOrderQueueIDs")
    check_idseq(f, "GetOrderQueueIDs", "OrderQueueIDs", [fleet])
    frames = a.req("GetOrderQueue", {"ids": [fleet, planet, 0, 999]})
    q0 = None
    if check_seq(frames, 4, "GetOrderQueue [fleet, planet, 0, 999]"):
        q0 = frames[1]
        T.is_((q0["id"], q0["maxslots"], q0["numorders"], q0["ordertypes"]),
              (fleet, 0xFFFFFFFF, 0, [MOVE, ATTACK, LOAD, BUILD, SCUTTLE]),
              "OrderQueue: id, unlimited slots, no orders, allowed types")
        T.is_(q0.body, u32(fleet) + u64(q0["modtime"]) + u32(0xFFFFFFFF) +
              u32(0) + listof([0, 1, 2, 3, 4], u32), "OrderQueue: bytes")
        T.is_(q0["modtime"], f["modtimes"][0]["modtime"],
              "OrderQueue: modtime as listed")
        for g, qid in zip(frames[2:], (planet, 0, 999)):
            check_item_fail(g, 4, "GetOrderQueue %d" % qid,
                            "no such order queue %d" % qid, [(13, qid)])
    fl0 = a.get("GetObjectsByID", [fleet])[0]
    x = a.id * 100

    # A probe answers the order as it would be and changes nothing.
    f = a.call("OrderProbe", order_fields(fleet, -1, MOVE, move_params(
        x + 30, 40)))
    if check_is(f, "Order", "OrderProbe Move"):
        T.is_((f["id"], f["slot"], f["otype"], f["turns"], f["resources"]),
              (fleet, 0, MOVE, 4, []),
              "OrderProbe: queue id, the slot it would take, type, "
              "estimated turns, resources")
        T.is_(decode_params(ORDER_PARAM, [0], raw_params(f)),
              [{"x": x + 30, "y": 40, "z": 0}], "OrderProbe: parameters")
    q = a.get("GetOrderQueue", [fleet])[0]
    fl = a.get("GetObjectsByID", [fleet])[0]
    T.ok(q["numorders"] == 0 and q0 is not None and
         q["modtime"] == q0["modtime"] and fl["modtime"] == fl0["modtime"],
         "OrderProbe stored nothing: no order, queue and object modtimes "
         "unchanged", describe([q, fl]))

    # Inserts: append (-1), at the front, at the end (slot == count).
    f = a.call("OrderInsert", order_fields(fleet, -1, MOVE, move_params(
        x + 30, 40)))
    if check_is(f, "Order", "OrderInsert Move at -1"):
        T.is_((f["id"], f["slot"], f["otype"], f["turns"]),
              (fleet, 0, MOVE, 4), "OrderInsert -1: the actual slot (0) "
              "is in the answer, never -1")
    attack = encode_params(ORDER_PARAM, [1, 2], [
        {"turns": 3, "maxtime": 0}, {"objectid": planet, "validtypes": []}])
    f = a.call("OrderInsert", order_fields(fleet, -1, ATTACK, attack))
    if check_is(f, "Order", "OrderInsert Attack at -1"):
        T.is_((f["slot"], f["turns"], f["resources"]),
              (1, 3, [{"resource": 2, "amount": 5}]),
              "OrderInsert Attack: slot 1, turns and resources from the "
              "ruleset")
        T.is_(decode_params(ORDER_PARAM, [1, 2], raw_params(f)),
              [{"turns": 3, "maxtime": 10},
               {"objectid": planet, "validtypes": [1, 2]}],
              "OrderInsert Attack: read-only parts (maxtime, validtypes) "
              "filled in by the server")
        T.is_(f.body, u32(fleet) + u32(1) + u32(ATTACK) + u32(3) +
              listof([(2, 5)], lambda r: u32(r[0]) + u32(r[1])) +
              i32(3) + i32(10) + u32(planet) + listof([1, 2], u32),
              "Order Attack: bytes")
    load = encode_params(ORDER_PARAM, [10], [
        {"allowed": [], "maxmass": 0, "maxvolume": 0,
         "selected": [{"resource": 1, "quantity": 20}]}])
    f = a.call("OrderInsert", order_fields(fleet, 0, LOAD, load))
    if check_is(f, "Order", "OrderInsert Load at 0"):
        T.is_(f["slot"], 0, "OrderInsert Load: slot 0")
        T.is_(decode_params(ORDER_PARAM, [10], raw_params(f)),
              [{"allowed": [{"resource": 1, "max": 50}], "maxmass": 100,
                "maxvolume": 150,
                "selected": [{"resource": 1, "quantity": 20}]}],
              "OrderInsert Load: resource list parameter")
    designs = a.list_ids("GetDesignIDs")
    build = encode_params(ORDER_PARAM, [6], [
        {"choices": [], "selection": [{"id": designs[0], "count": 2}]}])
    f = a.call("OrderInsert", order_fields(fleet, 3, BUILD, build))
    if check_is(f, "Order", "OrderInsert Build at 3 (= count: the end)"):
        T.is_(f["slot"], 3, "OrderInsert Build: slot 3")
        T.is_(decode_params(ORDER_PARAM, [6], raw_params(f)),
              [{"choices": [{"id": designs[0], "name": "Scout",
                             "maxnum": 10}],
                "selection": [{"id": designs[0], "count": 2}]}],
              "OrderInsert Build: list choices from the ruleset")

    # Refusals.
    move = move_params(1, 2)
    check_fail(a.req("OrderInsert", order_fields(fleet, 5, MOVE, move)), 4,
               "OrderInsert at slot 5 of 4", "slot 5",
               [(13, fleet), (3, 5)])
    check_fail(a.req("OrderInsert", order_fields(fleet, 0xFFFFFFFE, MOVE,
                                                 move)), 4,
               "OrderInsert at slot 0xFFFFFFFE", "slot 4294967294",
               [(13, fleet), (3, 0xFFFFFFFE)])
    check_fail(a.req("OrderInsert", order_fields(fleet, -1, 99, move)), 4,
               "OrderInsert of order type 99", "no such order type 99",
               [(2, 99)])
    check_fail(a.req("OrderInsert", order_fields(planet, -1, MOVE, move)),
               4, "OrderInsert on the planet (no queue)",
               "no such order queue %d" % planet, [(13, planet)])
    check_fail(a.req("OrderInsert", order_fields(fleet, -1, COLONISE, b"")),
               3, "OrderInsert of a type the queue does not take",
               "order type 5 (Colonise) cannot be given to object %d" %
               fleet, [(2, COLONISE), (1, fleet)])
    check_fail(a.req("OrderProbe", order_fields(fleet, -1, COLONISE, b"")),
               2, "OrderProbe of a type the queue does not take",
               "cannot be given to object %d" % fleet,
               [(2, COLONISE), (1, fleet)])
    check_fail(a.req("OrderInsert", order_fields(fleet, -1, MOVE,
                                                 move[:10])), 1,
               "OrderInsert with parameters cut short", "do not decode",
               [(2, MOVE)])
    check_fail(a.req("OrderProbe", order_fields(fleet, -1, MOVE,
                                                move[:10])), 1,
               "OrderProbe with parameters cut short", "do not decode")
    bad = encode_params(ORDER_PARAM, [1, 2], [
        {"turns": 3, "maxtime": 0}, {"objectid": 999, "validtypes": []}])
    check_fail(a.req("OrderInsert", order_fields(fleet, -1, ATTACK, bad)), 1,
               "OrderInsert refused by the ruleset's check", "no such target",
               [(2, ATTACK), (1, fleet)])
    # orderParamObject as the last parameter without its (read-only) list:
    # accepted from any TP04 client (PROTOCOL.md 9).
    short = encode_params(ORDER_PARAM_IDONLY, [1, 2], [
        {"turns": 1, "maxtime": 0}, {"objectid": planet}])
    f = a.call("OrderProbe", order_fields(fleet, -1, ATTACK, short))
    if check_is(f, "Order", "OrderProbe Attack without the validtypes "
                "list"):
        T.is_(decode_params(ORDER_PARAM, [1, 2], raw_params(f)),
              [{"turns": 1, "maxtime": 10},
               {"objectid": planet, "validtypes": [1, 2]}],
              "... answered in the full TP04 form")

    # GetOrder: every slot (empty list), chosen slots, missing ones.
    frames = a.req("GetOrder", {"id": fleet, "slots": []})
    if check_seq(frames, 4, "GetOrder [] (every slot)"):
        T.is_([(f["id"], f["slot"], f["otype"]) for f in frames[1:]],
              [(fleet, 0, LOAD), (fleet, 1, MOVE), (fleet, 2, ATTACK),
               (fleet, 3, BUILD)], "GetOrder []: the orders in slot order")
        T.is_(decode_params(ORDER_PARAM, [0], raw_params(frames[2])),
              [{"x": x + 30, "y": 40, "z": 0}], "GetOrder: Move's "
              "parameters as stored")
    frames = a.req("GetOrder", {"id": fleet, "slots": [2, 9, -1]})
    if check_seq(frames, 3, "GetOrder [2, 9, -1]"):
        T.is_(frames[1]["otype"], ATTACK, "GetOrder 2: the Attack order")
        check_item_fail(frames[2], 4, "GetOrder slot 9",
                        "no order in slot 9 of queue %d" % fleet,
                        [(13, fleet), (3, 9)])
        check_item_fail(frames[3], 4, "GetOrder slot -1",
                        "no order in slot -1", [(13, fleet),
                                                (3, 0xFFFFFFFF)])
    check_fail(a.req("GetOrder", {"id": planet, "slots": []}), 4,
               "GetOrder on the planet (no queue)", "no such order queue",
               [(13, planet)])
    q = a.get("GetOrderQueue", [fleet])[0]
    fl = a.get("GetObjectsByID", [fleet])[0]
    T.ok(q["numorders"] == 4 and q["modtime"] > q0["modtime"] and
         fl["modtime"] > fl0["modtime"],
         "after inserts: 4 orders; the queue's and the object's modtimes "
         "moved on", describe([q, fl]))

    # RemoveOrder: each slot answered, in the order given.
    frames = a.req("RemoveOrder", {"id": fleet, "slots": [3, 9, 0]})
    if check_seq(frames, 3, "RemoveOrder [3, 9, 0]"):
        T.ok(frames[1].is_("Okay") and frames[3].is_("Okay"),
             "RemoveOrder: slots 3 and 0 removed (Okay each)",
             describe(frames))
        check_item_fail(frames[2], 4, "RemoveOrder slot 9",
                        "no order in slot 9", [(13, fleet), (3, 9)])
    check_seq(a.req("RemoveOrder", {"id": fleet, "slots": []}), 0,
              "RemoveOrder [] removes nothing")
    frames = a.req("GetOrder", {"id": fleet, "slots": []})
    if check_seq(frames, 2, "GetOrder after the removals"):
        T.is_([f["otype"] for f in frames[1:]], [MOVE, ATTACK],
              "the queue is Move, Attack")
    check_fail(a.req("RemoveOrder", {"id": 999, "slots": [0]}), 4,
               "RemoveOrder on queue 999", "no such order queue 999",
               [(13, 999)])

    # libtpproto-cpp codes orderParamObject as the id alone, in both
    # directions, even on TP04 (PROTOCOL.md 9, 19.1).
    cpp = srv.client()
    cpp.connect(CPP_CLIENT)
    cpp.login(a.name + "@tp", "pw-" + a.name)
    f = cpp.call("OrderProbe", order_fields(fleet, -1, ATTACK, short))
    if check_is(f, "Order", "libtpproto-cpp client: OrderProbe Attack"):
        T.is_(decode_params(ORDER_PARAM_IDONLY, [1, 2], raw_params(f)),
              [{"turns": 1, "maxtime": 10}, {"objectid": planet}],
              "libtpproto-cpp client: orderParamObject without its list")
    frames = cpp.request("GetOrder", {"id": fleet, "slots": [1]})
    if check_seq(frames, 1, "libtpproto-cpp client: GetOrder 1"):
        T.is_(decode_params(ORDER_PARAM_IDONLY, [1, 2],
                            raw_params(frames[1])),
              [{"turns": 3, "maxtime": 10}, {"objectid": planet}],
              "libtpproto-cpp client: the stored Attack, id-only form")
    cpp.close()


def test_boards(srv, a):
    frames = a.req("GetBoards", {"ids": [0]})
    board = None
    if check_seq(frames, 1, "GetBoards [0] (own board)"):
        b = frames[1]
        board = b["id"]
        T.ok(board > 0, "GetBoards [0]: the real board id is in the answer")
        T.is_((b["name"], b["messages"]), ("Personal board", 1),
              "Board: name, one message (the welcome)")
        T.is_(b.body, u32(board) + string("Personal board") +
              string("Messages for " + a.name) + u32(1) + u64(b["modtime"]),
              "Board: bytes")
    f = a.ids("GetBoardIDs")
    check_idseq(f, "GetBoardIDs", "BoardIDs", [board])
    frames = a.req("GetBoards", {"ids": [board, 999]})
    if check_seq(frames, 2, "GetBoards [own, 999]"):
        T.is_(frames[1]["modtime"], f["modtimes"][0]["modtime"],
              "Board modtime as listed")
        check_item_fail(frames[2], 4, "GetBoards 999", "no such board 999",
                        [(4, 999)])
    m0 = a.get("GetBoards", [board])[0]["modtime"]

    def post(slot, subject, refs=()):
        return a.req("PostMessage", {
            "id": 0, "slot": slot, "msgtypes": [7], "subject": subject,
            "body": "body of " + subject, "turn": 99,
            "references": [{"type": t, "id": i} for t, i in refs]})
    check_okay(post(-1, "last", [(1, 0), (7, a.id)]), "PostMessage -1")
    check_okay(post(0, "first"), "PostMessage at slot 0")
    check_fail(post(9, "nowhere"), 4, "PostMessage at slot 9 of 3",
               "slot 9", [(4, board)])
    f = a.req("PostMessage", {"id": 999, "slot": -1, "msgtypes": [],
                              "subject": "s", "body": "b", "turn": 0,
                              "references": []})
    check_fail(f, 4, "PostMessage to board 999", "no such board 999",
               [(4, 999)])
    frames = a.req("GetMessage", {"id": 0, "slots": []})
    if check_seq(frames, 3, "GetMessage [] (every message)"):
        got = [(f["id"], f["slot"], f["msgtypes"], f["subject"], f["turn"])
               for f in frames[1:]]
        T.is_(got, [(board, 0, [], "first", 0), (board, 1, [], "Welcome", 0),
                    (board, 2, [], "last", 0)],
              "GetMessage []: board id, slots in order, no msgtypes, the "
              "turn is the server's")
        T.is_((frames[3]["body"], [(r["type"], r["id"]) for r in
                                   frames[3]["references"]]),
              ("body of last", [(1, 0), (7, a.id)]),
              "Message: body and references as posted")
        T.is_(frames[3].body, u32(board) + u32(2) + u32(0) +
              string("last") + string("body of last") + u32(0) +
              listof([(1, 0), (7, a.id)], lambda r: i32(r[0]) + u32(r[1])),
              "Message: bytes")
    frames = a.req("GetMessage", {"id": board, "slots": [2, 5]})
    if check_seq(frames, 2, "GetMessage [2, 5]"):
        T.is_(frames[1]["subject"], "last", "GetMessage 2")
        check_item_fail(frames[2], 4, "GetMessage slot 5",
                        "no message in slot 5 of board %d" % board,
                        [(4, board), (5, 5)])
    frames = a.req("RemoveMessage", {"id": board, "slots": [2, 7]})
    if check_seq(frames, 2, "RemoveMessage [2, 7]"):
        T.ok(frames[1].is_("Okay"), "RemoveMessage 2 -> Okay",
             describe(frames[1]))
        check_item_fail(frames[2], 4, "RemoveMessage slot 7",
                        "no message in slot 7", [(4, board), (5, 7)])
    b = a.get("GetBoards", [0])[0]
    T.ok(b["messages"] == 2 and b["modtime"] > m0, "Board: 2 messages "
         "left, modtime moved on", describe(b))
    check_fail(a.req("GetMessage", {"id": 999, "slots": []}), 4,
               "GetMessage on board 999", "no such board 999", [(4, 999)])
    check_fail(a.req("RemoveMessage", {"id": 999, "slots": [0]}), 4,
               "RemoveMessage on board 999", "no such board 999",
               [(4, 999)])


def test_static(srv, a):
    f = a.ids("GetResourceIDs")
    check_idseq(f, "GetResourceIDs", "ResourceIDs", [1, 2])
    frames = a.req("GetResource", {"ids": [1, 2, 3]})
    if check_seq(frames, 3, "GetResource [1, 2, 3]"):
        r = frames[1]
        T.is_((r["id"], r["name"], r["name_plural"], r["unit"],
               r["unit_plural"], r["description"], r["weight"], r["size"]),
              (1, "Ore", "Ore", "kilotonne", "kilotonnes",
               "Rock worth digging.", 2, 3), "Resource 1: every field")
        T.is_(r.body, u32(1) + string("Ore") + string("Ore") +
              string("kilotonne") + string("kilotonnes") +
              string("Rock worth digging.") + u32(2) + u32(3) +
              u64(r["modtime"]), "Resource 1: bytes")
        T.is_(frames[2]["name_plural"], "Crews", "Resource 2: plural")
        check_item_fail(frames[3], 4, "GetResource 3",
                        "no such resource 3", [(6, 3)])

    f = a.ids("GetPlayerIDs")
    check_idseq(f, "GetPlayerIDs", "PlayerIDs", [a.id])
    listed = [m["modtime"] for m in f["modtimes"] if m["id"] == a.id]
    frames = a.req("GetPlayer", {"ids": [0, a.id, 999, -1]})
    if check_seq(frames, 4, "GetPlayer [0, me, 999, -1]"):
        for g in frames[1:3]:
            T.is_(g.body, u32(a.id) + string(a.name) + string("Human") +
                  (u64(listed[0]) if listed else b"(not listed)"),
                  "Player: exactly id, name, race and the trailing u64 "
                  "modtime (the one PlayerIDs lists)")
        check_item_fail(frames[3], 4, "GetPlayer 999", "no such player 999",
                        [(7, 999)])
        check_item_fail(frames[4], 4, "GetPlayer -1", "no such player -1",
                        [(7, 0xFFFFFFFF)])

    f = a.ids("GetCategoryIDs")
    check_idseq(f, "GetCategoryIDs", "CategoryIDs", [1, 2])
    frames = a.req("GetCategory", {"ids": [2, 5]})
    if check_seq(frames, 2, "GetCategory [2, 5]"):
        c = frames[1]
        T.is_(c.body, u32(2) + u64(c["modtime"]) + string("Weapons") +
              string("What ships shoot with"), "Category 2: bytes")
        check_item_fail(frames[2], 4, "GetCategory 5",
                        "no such category 5", [(8, 5)])
    check_fail(a.req("AddCategory", {"id": -1, "modtime": 0, "name": "Mine",
                                     "description": ""}), 2,
               "AddCategory (categories are the ruleset's)",
               "cannot add categories")
    check_fail(a.req("RemoveCategory", {"ids": [1]}), 2,
               "RemoveCategory: one Fail", "cannot remove categories")

    f = a.ids("GetComponentIDs")
    check_idseq(f, "GetComponentIDs", "ComponentIDs", [1, 2])
    frames = a.req("GetComponent", {"ids": [1, 2, 9]})
    if check_seq(frames, 3, "GetComponent [1, 2, 9]"):
        c = frames[2]
        T.is_((c["id"], c["categories"], c["name"], c["description"],
               [p["id"] for p in c["properties"]]),
              (2, [2], "Gun", "Shoots", [2]),
              "Component 2: id, categories, name, description, properties")
        T.is_(c.body, u32(2) + u64(c["modtime"]) + listof([2], u32) +
              string("Gun") + string("Shoots") +
              string(c["requirements"]) +
              listof(c["properties"], lambda q: u32(q["id"]) +
                     string(q["value"])), "Component 2: bytes")
        check_item_fail(frames[3], 4, "GetComponent 9",
                        "no such component 9", [(10, 9)])
    f = a.ids("GetPropertyIDs")
    check_idseq(f, "GetPropertyIDs", "PropertyIDs", [1, 2])
    frames = a.req("GetProperty", {"ids": [1, 2, 9]})
    if check_seq(frames, 3, "GetProperty [1, 2, 9]"):
        p = frames[1]
        T.is_((p["id"], p["categories"], p["rank"], p["name"],
               p["displayname"], p["description"]),
              (1, [1], 0, "Speed", "Speed", "Parsecs per turn"),
              "Property 1: every descriptive field")
        T.is_(p.body, u32(1) + u64(p["modtime"]) + listof([1], u32) +
              u32(0) + string("Speed") + string("Speed") +
              string("Parsecs per turn") + string(p["calculate"]) +
              string(p["requirements"]), "Property 1: bytes")
        T.is_(frames[2]["rank"], 1, "Property 2: rank")
        check_item_fail(frames[3], 4, "GetProperty 9",
                        "no such property 9", [(11, 9)])


def design_fields(name, components, categories=(1,), did=-1):
    return {"id": did, "modtime": 0, "categories": list(categories),
            "name": name, "description": "desc of " + name, "inuse": 0,
            "owner": 0, "components": [{"id": i, "count": n}
                                       for i, n in components],
            "feedback": "", "properties": []}


def test_designs(srv, a):
    f = a.ids("GetDesignIDs")
    scout = f["modtimes"][0]["id"] if decoded(f) and f["modtimes"] else 1
    check_idseq(f, "GetDesignIDs", "DesignIDs", [scout])
    frames = a.req("GetDesign", {"ids": [scout, 999]})
    if check_seq(frames, 2, "GetDesign [scout, 999]"):
        d = frames[1]
        T.is_((d["name"], d["owner"], d["inuse"], d["categories"],
               d["components"], d["feedback"], d["properties"]),
              ("Scout", a.id, 1, [1], [{"id": 1, "count": 1}],
               "Design is valid", [{"id": 1, "value": "2 pc/turn"}]),
              "Design: name, owner, in use, categories, components, "
              "feedback, computed properties")
        check_item_fail(frames[2], 4, "GetDesign 999", "no such design 999",
                        [(9, 999)])

    f = a.call("AddDesign", design_fields("Gunboat", [(1, 1), (2, 2)],
                                          (1, 2)))
    gunboat = None
    if check_is(f, "Design", "AddDesign Gunboat"):
        gunboat = f["id"]
        T.ok(gunboat > scout, "AddDesign: a new id")
        T.is_((f["name"], f["description"], f["owner"], f["inuse"],
               f["feedback"], f["properties"]),
              ("Gunboat", "desc of Gunboat", a.id, 0, "Design is valid",
               [{"id": 1, "value": "2 pc/turn"}, {"id": 2, "value": "6"}]),
              "AddDesign: owner is the sender, properties computed")
        T.is_(f.body, u32(gunboat) + u64(f["modtime"]) + listof([1, 2], u32) +
              string("Gunboat") + string("desc of Gunboat") + i32(0) +
              i32(a.id) + listof([(1, 1), (2, 2)], lambda c: u32(c[0]) +
                                 u32(c[1])) + string("Design is valid") +
              listof([(1, "2 pc/turn"), (2, "6")], lambda q: u32(q[0]) +
                     string(q[1])), "Design: bytes")
    f = a.call("AddDesign", design_fields("Turret", [(2, 1)], (2,)))
    if check_is(f, "Design", "AddDesign Turret (a gun without a hull)"):
        T.is_(f["feedback"], "a gun needs a hull",
              "AddDesign: an invalid design is stored with the ruleset's "
              "feedback")
    check_fail(a.req("AddDesign", design_fields("", [(1, 1)])), 1,
               "AddDesign refused by the ruleset", "a design needs a name")
    check_fail(a.req("AddDesign", design_fields("X", [(99, 1)])), 4,
               "AddDesign with component 99", "no such component 99",
               [(10, 99)])
    check_fail(a.req("AddDesign", design_fields("X", [(1, 1)], (9,))), 4,
               "AddDesign with category 9", "no such category 9", [(8, 9)])
    if gunboat is not None:
        f = a.call("ModifyDesign", design_fields("Runner", [(1, 2)], (1,),
                                                 gunboat))
        if check_is(f, "Design", "ModifyDesign Gunboat -> Runner"):
            T.is_((f["id"], f["name"], f["components"], f["properties"]),
                  (gunboat, "Runner", [{"id": 1, "count": 2}],
                   [{"id": 1, "value": "4 pc/turn"}]),
                  "ModifyDesign: stored and its properties recomputed")
    check_fail(a.req("ModifyDesign", design_fields("Y", [(1, 1)], (1,),
                                                   999)), 4,
               "ModifyDesign 999", "no such design 999", [(9, 999)])
    check_fail(a.req("RemoveDesign", {"ids": [scout]}), 1,
               "RemoveDesign of a design in use", "is in use", [(9, scout)])
    check_fail(a.req("RemoveDesign", {"ids": [998, 999]}), 4,
               "RemoveDesign [998, 999]: one Fail naming both",
               "998, 999", [(9, 998), (9, 999)])
    if gunboat is not None:
        check_okay(a.req("RemoveDesign", {"ids": [gunboat]}),
                   "RemoveDesign Runner: one Okay")
        check_item_fail(a.get("GetDesign", [gunboat])[0], 4,
                        "GetDesign of the removed design", "no such design")
        T.ok(gunboat not in a.list_ids("GetDesignIDs"),
             "the removed design is not listed")


def test_padding(srv, a, descs, planet, fleet):
    """With the string padding filter on (PROTOCOL.md 2.7), the
    parameters inside Object and Order frames are padded too, in both
    directions."""
    c = srv.client()
    c.connect()
    c.login(a.name, "pw-" + a.name)
    check_okay([c.call("SetFilters", {"filters": [tplib.FEATURE_PADDING]})],
               "SetFilters [0x1D00]")
    frames = c.request("GetObjectsByID", {"ids": [planet]})
    if check_seq(frames, 1, "padded GetObjectsByID planet"):
        o = frames[1]
        T.is_((o["name"], object_values(descs[PLANET_T], o, pad=True)[
            "Picture"]), ("%s's home" % a.name, {"url": "planets/home.png"}),
            "padded Object: name and a string parameter")
    frames = c.request("GetObjectDesc", {"ids": [PLANET_T]})
    if check_seq(frames, 1, "padded GetObjectDesc"):
        T.is_(frames[1].fields, descs[PLANET_T].fields,
              "padded ObjectDesc: the same description")
    ids = a.list_ids("GetDesignIDs")
    design = ids[0]
    choices = [{"id": d["id"], "name": d["name"], "maxnum": 10}
               for d in a.get("GetDesign", ids)]
    build = encode_params(ORDER_PARAM, [6], [
        {"choices": [{"id": 1, "name": "abc", "maxnum": 0}],
         "selection": [{"id": design, "count": 1}]}], pad=True)
    f = c.call("OrderProbe", order_fields(fleet, -1, BUILD, build))
    if check_is(f, "Order", "padded OrderProbe Build"):
        T.is_(decode_params(ORDER_PARAM, [6], raw_params(f), pad=True),
              [{"choices": choices,
                "selection": [{"id": design, "count": 1}]}],
              "padded Order: the list parameter's names padded")
    c.close()


def test_turn(srv, a, fleet):
    f = a.call("GetTimeRemaining")
    if check_is(f, "TimeRemaining", "GetTimeRemaining"):
        T.is_((f["time"], f["reason"], f["turn"], f["waiting"]),
              (-1, 0, 0, [a.id]), "TimeRemaining: no timer (-1), reason 0, "
              "turn 0, the player is waiting")
    frames = a.req("GetGames")
    if check_seq(frames, 1, "GetGames"):
        g = frames[1]
        T.is_((g["rule"], g["rulever"], g["tp"]), ("Fog", "0.1",
                                                    ["0.3", "0.4"]),
              "Game: ruleset name and version, protocol versions")
    # The only player finishes: the turn ends (reason 3, time 0) and the
    # next starts (reason 1, turn 1), pushed with sequence 0.
    a.c.async_frames = []
    check_okay(a.req("FinishedTurn"), "FinishedTurn")
    deadline = time.monotonic() + 10
    while len(a.c.async_frames) < 2 and time.monotonic() < deadline:
        a.c.async_frames.append(a.c.recv_frame(timeout=10))
    got = [(f.seq, f["time"], f["reason"], f["turn"])
           for f in a.c.async_frames if decoded(f)]
    T.is_(got, [(0, 0, 3, 0), (0, -1, 1, 1)],
          "pushes: TimeRemaining(0, AllFinished, turn 0) then "
          "TimeRemaining(-1, TimerStarted, turn 1)")
    # The turn ran the first order of the fleet (Move).
    frames = a.req("GetOrder", {"id": fleet, "slots": []})
    if check_seq(frames, 1, "GetOrder after the turn"):
        T.is_(frames[1]["otype"], ATTACK, "the Move order ran and is gone")
    fl = a.get("GetObjectsByID", [fleet])[0]
    uni = a.get("GetObjectsByID", [0])[0]
    descs = {d["id"]: d for d in a.get("GetObjectDesc", [0, 2])}
    T.is_(object_values(descs[FLEET_T], fl)["Position"],
          {"x": a.id * 100 + 30, "y": 40, "z": 0, "relative": 0},
          "the fleet moved")
    T.is_(object_values(descs[UNIVERSE_T], uni)["Year"], {"value": 1},
          "the universe's year is 1")


def test_states(srv):
    """Game frames before login: Fail(1); an unknown frame type: Fail(0);
    replies carry the request's sequence number."""
    c = srv.client()
    c.connect()
    check_fail(c.request("GetObjectsByID", {"ids": [0]}), 1,
               "GetObjectsByID before Login", "expected Login")
    frames = c.request("GetObjectIDs", {"key": -1, "start": 0, "amount": -1,
                                        "from": -1}, seq=4242)
    T.ok(len(frames) == 1 and frames[0].seq == 4242,
         "the Fail carries the request's sequence number", describe(frames))
    c.close()


def test_walk_tp04():
    with fog_server() as srv:
        a = Player(srv)
        descs = test_descriptions(srv, a)
        if len(descs) != 3:
            T.ok(False, "ObjectDescs missing; the rest is skipped")
            return
        planet, fleet = test_objects(srv, a, descs)
        test_orders(srv, a, fleet, planet)
        test_boards(srv, a)
        test_static(srv, a)
        test_designs(srv, a)
        test_padding(srv, a, descs, planet, fleet)
        test_turn(srv, a, fleet)
        test_states(srv)
        T.is_(srv.error_lines(), [], "no errors in the server log")
        a.close()


if __name__ == "__main__":
    tplib.main(test_walk_tp04)
