#!/usr/bin/env python3
"""The frame codec, checked three ways:

1. tplib's Python codec against byte-exact frames from the protocol
   specification's test vectors (copied in below);
2. tplib's layout table against lua/tp/proto.lua (loaded by the server
   binary), so the other tests decode exactly what the server encodes;
3. the C codec (tp.codec, run by "$TPSERVER script") against the Python
   codec, on random valid values of every frame layout (decode and encode
   must agree byte for byte, with and without the padding filter) and on
   random and truncated bodies (both must accept or both refuse, with the
   same values and the same number of bytes used).
"""

import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402

T = tplib.Tap()
rng = random.Random(int(os.environ.get("TP_SEED", "4242")))


def hx(s):
    return bytes(int(tok, 16) for tok in s.split())


# Byte-exact frames from the specification's vectors/ folder.
VECTORS = [
    ("tp04_fail_norefs", 4, "Fail", {
        "code": 1, "result": "Login Error - bad username or password",
        "references": []}, False, """
     54 50 04 00 00 00 00 02 00 00 00 01 00 00 00 32
     00 00 00 01 00 00 00 26 4c 6f 67 69 6e 20 45 72
     72 6f 72 20 2d 20 62 61 64 20 75 73 65 72 6e 61
     6d 65 20 6f 72 20 70 61 73 73 77 6f 72 64 00 00
     00 00"""),
    ("tp03_fail", 3, "Fail", {"code": 4, "result": "No Such Object"},
     False, """
     54 50 30 33 00 00 00 04 00 00 00 01 00 00 00 16
     00 00 00 04 00 00 00 0e 4e 6f 20 53 75 63 68 20
     4f 62 6a 65 63 74"""),
    ("tp04_features", 4, "Features", {
        "features": [5, 6, 0x3E8, 0x1D00]}, False, """
     54 50 04 00 00 00 00 03 00 00 00 1a 00 00 00 14
     00 00 00 04 00 00 00 05 00 00 00 06 00 00 03 e8
     00 00 1d 00"""),
    ("tp04_okay_padded", 4, "Okay", {"result": "Welcome"}, True, """
     54 50 04 00 00 00 00 02 00 00 00 00 00 00 00 0c
     00 00 00 07 57 65 6c 63 6f 6d 65 00"""),
    ("tp04_create_account", 4, "CreateAccount", {
        "username": "bob@tp", "password": "hunter2",
        "email": "bob@example.org", "comment": ""}, False, """
     54 50 04 00 00 00 00 02 00 00 00 3e 00 00 00 2c
     00 00 00 06 62 6f 62 40 74 70 00 00 00 07 68 75
     6e 74 65 72 32 00 00 00 0f 62 6f 62 40 65 78 61
     6d 70 6c 65 2e 6f 72 67 00 00 00 00"""),
    ("tp03_time_remaining_async", 3, "TimeRemaining", {"time": 120},
     False, """
     54 50 30 33 00 00 00 00 00 00 00 0f 00 00 00 04
     00 00 00 78"""),
    ("tp04_time_remaining_async", 4, "TimeRemaining", {
        "time": 120, "reason": 1, "turn": 3, "turnname": "",
        "waiting": [1, 2]}, False, """
     54 50 04 00 00 00 00 00 00 00 00 0f 00 00 00 1c
     00 00 00 78 00 00 00 01 00 00 00 03 00 00 00 00
     00 00 00 02 00 00 00 01 00 00 00 02"""),
    ("tp04_object_ids", 4, "ObjectIDs", {
        "key": 1, "remaining": 0,
        "modtimes": [{"id": 0, "modtime": 1262304000},
                     {"id": 1, "modtime": 1262304005}],
        "from": -1}, False, """
     54 50 04 00 00 00 00 05 00 00 00 1f 00 00 00 2c
     00 00 00 01 00 00 00 00 00 00 00 02 00 00 00 00
     00 00 00 00 4b 3d 3b 00 00 00 00 01 00 00 00 00
     4b 3d 3b 05 ff ff ff ff ff ff ff ff"""),
    ("tp04_get_object_ids", 4, "GetObjectIDs", {
        "key": -1, "start": 0, "amount": 10, "from": -1}, False, """
     54 50 04 00 00 00 00 05 00 00 00 1c 00 00 00 14
     ff ff ff ff 00 00 00 00 00 00 00 0a ff ff ff ff
     ff ff ff ff"""),
    ("tp03_get_object_ids", 3, "GetObjectIDs", {
        "key": -1, "start": 0, "amount": -1}, False, None),
]


def test_vectors():
    for name, version, frame, fields, pad, data in VECTORS:
        if data is None:
            continue
        raw = hx(data)
        f = tplib.Frame(raw[:16], raw[16:], pad)
        T.is_(f.fields, fields, "vector %s decodes to the documented fields"
              % name)
        seq = struct.unpack(">I", raw[4:8])[0]
        T.is_(tplib.encode_frame(version, seq, frame, fields, pad=pad), raw,
              "vector %s: encoding the fields gives the same bytes" % name)
    # The TP03 GetObjectIDs body has no "from" (12 bytes).
    body = tplib.encode_body(3, tplib.TYPE["GetObjectIDs"],
                             {"key": -1, "start": 0, "amount": -1})
    T.is_(body, hx("ff ff ff ff 00 00 00 00 ff ff ff ff"),
          "TP03 GetObjectIDs body is 12 bytes without 'from'")


def test_layout_language():
    lay = tplib.compile_layout("I:a ? S:b")
    T.is_(lay.decode(b"\0\0\0\1"), ({"a": 1}, 4),
          "'?': decoding stops quietly at the end of the body")
    T.is_(lay.encode({"a": 1}), b"\0\0\0\1",
          "'?': absent optional fields are not encoded")
    lay = tplib.compile_layout("x4 j:a J:b [I]:c")
    T.is_(lay.decode(b"\1\2\3\4" + b"\xff" * 12 + b"\0\0\0\0")[0],
          {"a": -1, "b": -1, "c": []},
          "xN skips bytes; semisigned all-ones decode as -1")
    for src, body in (("[I]:c", b"\0\0\0\2\0\0\0\1"),
                      ("S:s", b"\0\0\0\5abcd"), ("Q:q", b"\0" * 7)):
        try:
            tplib.compile_layout(src).decode(body)
            T.ok(False, "short body for %r is refused" % src)
        except tplib.CodecError:
            T.ok(True, "short body for %r is refused" % src)


LUA_SCRIPT = r"""
-- Runs the C codec over the cases written by test_codec.py.
local cjson = require "cjson"
local codec = require "tp.codec"
local proto = require "tp.proto"

local function unhex(s)
    return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end
local function tohex(s)
    return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- A canonical text form of a decoded value (same as dump() in Python).
local function dump(v)
    local t = type(v)
    if t == "number" then
        return "n" .. string.format("%.17g", v)
    elseif t == "string" then
        return "s" .. tohex(v)
    elseif t == "table" then
        if #v > 0 or next(v) == nil then
            local parts = {}
            for i = 1, #v do parts[i] = dump(v[i]) end
            return "[" .. table.concat(parts, ",") .. "]"
        end
        local keys = {}
        for k in pairs(v) do keys[#keys + 1] = k end
        table.sort(keys)
        local parts = {}
        for i, k in ipairs(keys) do parts[i] = k .. "=" .. dump(v[k]) end
        return "{" .. table.concat(parts, ",") .. "}"
    end
    return "?" .. t
end

local f = assert(io.open(arg[1], "rb"))
local input = cjson.decode(f:read("*a"))
f:close()

local out = { layouts = {}, results = {} }
for _, row in ipairs(proto.player) do
    out.layouts[#out.layouts + 1] = { row[1], row[2], row[3],
        row[4] == nil and cjson.null or row[4] }
end
local compiled = {}
for i, c in ipairs(input.cases) do
    local lay = compiled[c.src]
    if not lay then
        lay = codec.compile(c.src)
        compiled[c.src] = lay
    end
    local r = {}
    local t, used = codec.decode(lay, unhex(c.hex), c.pad)
    if t then
        r.ok = true
        r.used = used
        r.dump = dump(t)
    else
        r.ok = false
        r.err = used
    end
    if c.fields then
        local ok, enc = pcall(codec.encode, lay, c.fields, c.pad)
        r.enc = ok and tohex(enc) or ("error: " .. tostring(enc))
    end
    out.results[i] = r
end
local o = assert(io.open(arg[2], "wb"))
o:write(cjson.encode(out))
o:close()
return 0
"""


def dump(v):
    """Python twin of the Lua dump()."""
    if isinstance(v, bool):
        raise TypeError("bool")
    if isinstance(v, int):
        return "n%.17g" % float(v)
    if isinstance(v, str):
        return "s" + v.encode("utf-8", "surrogateescape").hex()
    if isinstance(v, (bytes, bytearray)):
        return "s" + bytes(v).hex()
    if isinstance(v, list):
        return "[" + ",".join(dump(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "[]"
        return "{" + ",".join("%s=%s" % (k, dump(v[k]))
                               for k in sorted(v)) + "}"
    raise TypeError(type(v))


def random_value(item, depth=0):
    k = item[0]
    if k == "I":
        return rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF,
                           rng.randrange(1 << 32)])
    if k == "i":
        return rng.choice([0, -1, -(1 << 31), (1 << 31) - 1,
                           rng.randrange(-(1 << 31), 1 << 31)])
    if k == "j":
        return rng.choice([-1, 0, 0xFFFFFFFE, rng.randrange(1 << 32 - 1)])
    # 64-bit values stay below 2^53: the server's Lua numbers are doubles.
    if k == "Q":
        return rng.choice([0, 1, (1 << 53) - 1, rng.randrange(1 << 53)])
    if k == "q":
        return rng.choice([0, -1, -(1 << 53) + 1, (1 << 53) - 1,
                           rng.randrange(-(1 << 53), 1 << 53)])
    if k == "J":
        return rng.choice([-1, 0, rng.randrange(1 << 53)])
    if k == "S":
        n = rng.choice([0, 1, 2, 3, 4, 5, rng.randrange(40)])
        return "".join(rng.choice("abcXYZ019 @/._-") for _ in range(n))
    if k == "*":
        n = rng.randrange(12)
        return "".join(rng.choice("pqr") for _ in range(n))
    if k == "[":
        sub = item[2]
        n = rng.choice([0, 1, 2, rng.randrange(6)])
        if sub.scalar:
            return [random_value(sub.items[0], depth + 1) for _ in range(n)]
        return [random_fields(sub.items, depth + 1) for _ in range(n)]
    if k == "{":
        return random_fields(item[2].items, depth + 1)
    raise ValueError(item)


def random_fields(items, depth=0):
    out = {}
    for it in items:
        if it[0] in ("x", "?"):
            continue
        out[it[1]] = random_value(it, depth)
    return out


def py_decode(src, body, pad):
    try:
        fields, used = tplib.compile_layout(src).decode(body, pad)
        return True, used, dump(fields)
    except tplib.CodecError as e:
        return False, None, str(e)


def run_lua(cases):
    tmp = tempfile.mkdtemp(prefix="tpcodec-")
    try:
        script = os.path.join(tmp, "codec_check.lua")
        inp = os.path.join(tmp, "in.json")
        outp = os.path.join(tmp, "out.json")
        with open(script, "w") as f:
            f.write(LUA_SCRIPT)
        with open(inp, "w") as f:
            json.dump({"cases": cases}, f)
        p = subprocess.run([tplib.tpserver_path(), "script", script, inp,
                            outp], cwd=tmp, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        if p.returncode != 0 or not os.path.exists(outp):
            raise RuntimeError("tpserver script failed (%d): %s%s" %
                               (p.returncode, p.stdout.decode(errors="replace"),
                                p.stderr.decode(errors="replace")))
        with open(outp) as f:
            return json.load(f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_against_c_codec():
    valid = []     # (version, type, case index)
    garbage = []   # (version, case index)
    cases = []
    for (version, t), src in sorted(tplib.LAYOUT_SRC.items()):
        lay = tplib.compile_layout(src)
        for i in range(6):
            pad = i % 2 == 1
            fields = random_fields(lay.items)
            body = lay.encode(fields, pad)
            cases.append({"src": src, "pad": pad, "hex": body.hex(),
                          "fields": fields})
            valid.append((version, t, len(cases) - 1, body, fields, pad))
            # Truncations and extensions of a valid body.
            for cut in sorted(set([0, len(body) // 2, max(0, len(body) - 1),
                                   rng.randrange(len(body) + 1)])):
                cases.append({"src": src, "pad": pad,
                              "hex": body[:cut].hex()})
                garbage.append((version, t, len(cases) - 1))
            cases.append({"src": src, "pad": pad,
                          "hex": (body + b"\0\1\2").hex()})
            garbage.append((version, t, len(cases) - 1))
        # Random bodies, with small counts and lengths now and then so that
        # some of them decode.
        for _ in range(12):
            n = rng.randrange(48)
            body = bytearray(rng.randrange(256) for _ in range(n))
            for off in range(0, n - 3, 4):
                if rng.random() < 0.5:
                    body[off:off + 4] = rng.randrange(6).to_bytes(4, "big")
            cases.append({"src": src, "pad": rng.random() < 0.3,
                          "hex": bytes(body).hex()})
            garbage.append((version, t, len(cases) - 1))

    out = run_lua(cases)

    # 2. The layout tables agree.
    lua_rows = {}
    for tid, name, l4, l3 in out["layouts"]:
        lua_rows[int(tid)] = (name, l4, l3)
    py_rows = {t: (n, l4, None if l3 is None else l3)
               for t, n, l4, l3 in tplib.PLAYER_FRAMES}
    diffs = []
    for t in sorted(set(lua_rows) | set(py_rows)):
        if lua_rows.get(t) != py_rows.get(t):
            diffs.append("type %d: proto.lua %r, tplib %r" %
                         (t, lua_rows.get(t), py_rows.get(t)))
    T.ok(not diffs, "tplib's layout table matches lua/tp/proto.lua (%d "
         "frame types)" % len(py_rows), "\n".join(diffs[:20]))

    # 3a. Valid values: same decoded values, same encoding.
    res = out["results"]
    per_frame = {}
    for version, t, idx, body, fields, pad in valid:
        r = res[idx]
        problems = per_frame.setdefault((version, t), [])
        want_dump = dump(fields)
        if not r.get("ok"):
            problems.append("C decode failed on a valid body (pad=%s): %s; "
                            "body %s" % (pad, r.get("err"), body.hex()))
            continue
        if r["used"] != len(body):
            problems.append("C decode used %d of %d bytes" % (r["used"],
                                                              len(body)))
        if r["dump"] != want_dump:
            problems.append("C decoded %s\n  expected %s" % (r["dump"],
                                                            want_dump))
        if r.get("enc") != body.hex():
            problems.append("C encoded %s\n  expected %s (pad=%s)" %
                            (r.get("enc"), body.hex(), pad))
    for (version, t), problems in sorted(per_frame.items()):
        T.ok(not problems, "C and Python codecs agree on TP0%d %s" %
             (version, tplib.NAME[t]), "\n".join(problems[:3]))

    # 3b. Truncated, extended and random bodies: same verdicts.
    for version in (3, 4):
        problems = []
        count = 0
        for v, t, idx in garbage:
            if v != version:
                continue
            count += 1
            c = cases[idx]
            body = bytes.fromhex(c["hex"])
            ok, used, info = py_decode(c["src"], body, c["pad"])
            r = res[idx]
            if ok != bool(r.get("ok")):
                problems.append("%s body %s pad=%s: Python %s, C %s" % (
                    tplib.NAME[t], c["hex"][:96], c["pad"],
                    "accepts" if ok else "refuses (%s)" % info,
                    "accepts" if r.get("ok") else
                    "refuses (%s)" % r.get("err")))
            elif ok and (used != r["used"] or info != r["dump"]):
                problems.append("%s body %s pad=%s: Python used %d %s, C "
                                "used %d %s" % (tplib.NAME[t], c["hex"][:96],
                                                c["pad"], used, info,
                                                r["used"], r["dump"]))
        T.ok(not problems, "C and Python codecs agree on %d truncated, "
             "extended and random TP0%d bodies" % (count, version),
             "\n".join(problems[:5]))


if __name__ == "__main__":
    tplib.main(test_vectors, test_layout_language, test_against_c_codec)
