#!/usr/bin/env python3
"""Bad input (PROTOCOL.md 2.6, 3.3-3.6, 4): wrong protocols and versions,
oversized and truncated frames, unknown types, malformed bodies, garbage,
and clients that do not read. After each case the SAME server must still
serve a FRESH client (Connect, Login, Ping)."""

import os
import random
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from tplib import check_fail, check_okay, expect_close  # noqa: E402

T = tplib.Tap()
SEED = int(os.environ.get("TP_SEED") or time.time())
rng = random.Random(SEED)
SRV = None
USER = tplib.unique_name("fresh")
PASSWORD = "fresh-pw"

NOT_TP = b"You are not running the correct protocol\n"
TOO_OLD = b"You are not running the right version of TP, please upgrade\n"
RSS_LIMIT_KB = (200 + (800 if tplib.under_asan() else 0)) * 1024


def fresh_ok(after):
    """A new client can still Connect, Login and Ping."""
    steps = []
    try:
        with SRV.client() as c:
            steps.append(c.connect())
            steps.append(c.login(USER, PASSWORD))
            steps.append(c.ping())
        good = all(f.is_("Okay") for f in steps) and len(steps) == 3
    except Exception as e:
        good = False
        steps.append(repr(e))
    T.ok(good and SRV.alive(), "after %s: the same server serves a fresh "
         "client (Connect, Login, Ping)" % after,
         "server alive: %s\n%s" % (SRV.alive(), "\n".join(map(str, steps))))


def logged_in(version=4):
    c = SRV.client(version=version)
    c.connect()
    f = c.login(USER, PASSWORD)
    if not f.is_("Okay"):
        raise RuntimeError("login failed: %r" % f)
    return c


def raw_fail(f, version):
    """(code, text) of a Fail frame whose body is exactly the Fail layout of
    version, else None."""
    if f is None or not f.is_("Fail") or f.version != version or \
            f.fields is None:
        return None
    return f["code"], f["result"]


def test_not_tp():
    for label, data in (
            ("an HTTP request", b"GET / HTTP/1.0\r\n\r\n"),
            ("random bytes", bytes([0xFF]) + bytes(rng.randrange(256)
                                                   for _ in range(63))),
            ("a single byte 'X'", b"X"),
            ("'T' then not 'P'", b"TQ03" + b"\0" * 12)):
        c = SRV.client()
        c.send_bytes(data)
        got = expect_close(T, c, "%s: the server closes the connection" %
                           label)
        T.is_(got, NOT_TP, "%s: the server sends the 'correct protocol' text"
              % label)
        c.close()
    fresh_ok("non-TP data")


def test_too_old():
    for magic in (b"TP01", b"TP00", b"TP02"):
        c = SRV.client()
        c.send_bytes(magic + struct.pack(">III", 1, 3, 4) + b"\0\0\0\0")
        got = expect_close(T, c, "%r header: the server closes the "
                           "connection" % magic)
        T.is_(got, TOO_OLD, "%r header: the server sends the 'please "
              "upgrade' text" % magic)
        c.close()
    c = SRV.client()
    c.send_bytes(b"TP01")
    got = expect_close(T, c, "just 'TP01': closed")
    T.is_(got, TOO_OLD, "just 'TP01': the 'please upgrade' text")
    c.close()
    fresh_ok("old protocol versions")


def test_unsupported_versions():
    # ASCII TP05..TP09: Fail 0 in TP03 format echoing the sequence number;
    # the connection stays in PRE and a TP03 Connect works.
    for magic in (b"TP05", b"TP09"):
        c = SRV.client(version=3)
        body = struct.pack(">I", 4) + b"test"
        c.send_bytes(tplib.header(magic, 77, 3, len(body)) + body)
        f = c.recv_frame()
        T.is_(f.raw_header[:4], b"TP03", "%r: the Fail has a TP03 header" %
              magic)
        T.is_(f.seq, 77, "%r: the Fail echoes the client's sequence number" %
              magic)
        T.ok(raw_fail(f, 3) is not None and f["code"] == 0,
             "%r: Fail code 0, TP03 body (code + string, exact length)" %
             magic, repr(f))
        f = c.call("Connect", {"client": "after %r" % magic}, seq=78)
        T.ok(f.is_("Okay") and f.version == 3 and f.seq == 78,
             "%r: the connection stays open; a TP03 Connect then gets a TP03 "
             "Okay" % magic, repr(f))
        check_okay(T, [c.ping()], "%r: then Ping -> Okay" % magic)
        c.close()

    # Binary TP 05 (and 0x2F): Fail 0 in TP04 format.
    for v in (5, 0x2F):
        c = SRV.client()
        c.send_bytes(tplib.header(bytes([0x54, 0x50, v, 0]), 55, 25, 0))
        f = c.recv_frame()
        T.is_(f.raw_header[:4], b"TP\x04\x00", "binary version %d: the Fail "
              "has a TP 04 00 header" % v)
        T.is_(f.seq, 55, "binary version %d: the Fail echoes the sequence "
              "number" % v)
        T.ok(raw_fail(f, 4) is not None and f["code"] == 0 and
             f["references"] == [],
             "binary version %d: Fail code 0, TP04 body with an empty "
             "reference list" % v, repr(f))
        f = c.call("Connect", {"client": "v%d" % v}, seq=56)
        T.ok(f.is_("Okay") and f.seq == 56 and f.version == 4,
             "binary version %d: then a TP04 Connect -> Okay" % v, repr(f))
        c.close()

    # "TP" followed by other bytes: TP03-format Fail, stays open.
    for magic in (b"TP\x00\x00", b"TP\x03\x00", b"TP0x", b"TP\xff\xff"):
        c = SRV.client()
        c.send_bytes(tplib.header(magic, 9, 3, 2) + b"zz")
        f = c.recv_frame()
        T.ok(raw_fail(f, 3) is not None and f["code"] == 0 and f.seq == 9,
             "%r header: Fail 0 in TP03 format echoing the sequence number" %
             magic, repr(f))
        f = c.call("GetFeatures", seq=10)
        T.ok(f.is_("Features"), "%r header: connection still open "
             "(GetFeatures answered)" % magic, repr(f))
        c.close()

    # A frame with another version once the version is set.
    c = logged_in(4)
    seq, data = c.frame("Ping", version=3)
    c.send_bytes(data)
    f = c.recv_reply(seq)
    T.ok(len(f) == 1 and raw_fail(f[0], 4) is not None and
         f[0]["code"] == 0,
         "TP03 frame on a TP04 connection -> Fail 0 in TP04 format",
         repr(f))
    check_okay(T, [c.ping()], "... and the connection still answers Ping")
    c.close()
    fresh_ok("unsupported versions")


def test_oversized():
    limit = tplib.MAX_FRAME - tplib.HEADER_SIZE   # largest body allowed
    cases = [
        ("fresh TP04 connection, length 0x7fffffff", 4, False, 0x7FFFFFFF),
        ("fresh TP03 connection, length 0x7fffffff", 3, False, 0x7FFFFFFF),
        ("TP04 after login, length 0x7fffffff", 4, True, 0x7FFFFFFF),
        ("TP04 after login, length 0xffffffff", 4, True, 0xFFFFFFFF),
        ("TP04 after login, length limit+1", 4, True, limit + 1),
    ]
    for label, version, login, length in cases:
        c = logged_in(version) if login else SRV.client(version=version)
        c.send_bytes(tplib.header(version, 4242, 27, length))
        t0 = time.monotonic()
        data, closed = c.read_until_close(10)
        took = time.monotonic() - t0
        f = None
        if len(data) >= 16:
            n = struct.unpack(">I", data[12:16])[0]
            f = tplib.Frame(data[:16], data[16:16 + n])
            rest = data[16 + n:]
        else:
            rest = data
        T.ok(f is not None and raw_fail(f, version) is not None and
             f["code"] == 0 and f.seq == 4242 and rest == b"",
             "%s: Fail code 0 in TP0%d format echoing the sequence number" %
             (label, version), "received %r" % data[:200])
        T.ok(closed and took < 5, "%s: then the server closes without "
             "waiting for the body" % label, "closed=%s after %.1f s" %
             (closed, took))
        c.close()

    # The largest allowed frame is accepted (trailing bytes of a Ping).
    c = logged_in(4)
    seq, _ = c.frame("Ping")
    c.send_bytes(tplib.header(4, seq, 27, limit) + b"\0" * limit,
                 timeout=30)
    check_okay(T, c.recv_reply(seq, 30), "Ping with a body of %d bytes (a "
               "frame of exactly 1 MiB) -> Okay" % limit)
    check_okay(T, [c.ping()], "... and the next Ping -> Okay")
    c.close()
    fresh_ok("oversized frames")


def test_truncated():
    c = logged_in(4)
    c.send_bytes(tplib.header(4, 5, 27, 100) + b"0123456789")
    time.sleep(0.2)
    c.close()
    c = SRV.client()
    c.send_bytes(b"TP\x04\x00\x00\x00")
    time.sleep(0.1)
    c.close()
    c = SRV.client()
    seq, data = c.frame("Connect", {"client": "half"})
    c.send_bytes(data[:len(data) - 3])
    time.sleep(0.1)
    c.close()
    fresh_ok("truncated frames and early closes")

    # A deferred request (Login) whose client goes away at once.
    for _ in range(5):
        c = SRV.client()
        c.connect()
        c.send("Login", {"username": USER, "password": PASSWORD})
        c.send("Ping")
        c.close()
    time.sleep(0.2)
    fresh_ok("clients closing while their Login is being checked")


def test_unknown_type():
    c = logged_in(4)
    for t in (999, 78, 127, 1000, 1006, 0xFFFFFFFF):
        frames = c.request(t, body=b"abc")
        check_fail(T, frames, 0, "unknown frame type %d -> Fail 0" % t,
                   "unknown frame type %d" % t)
    check_okay(T, [c.ping()], "unknown types: the connection still answers "
               "Ping")
    c.close()
    c = SRV.client()
    check_fail(T, c.request(999, body=b""), 0, "unknown type before Connect "
               "-> Fail 0")
    check_okay(T, [c.connect()], "... then Connect -> Okay")
    c.close()
    c = logged_in(3)
    check_fail(T, c.request(999, body=b""), 0, "TP03: unknown type 999 -> "
               "Fail 0", "unknown frame type 999", version=3)
    check_okay(T, [c.ping()], "TP03: then Ping -> Okay")
    c.close()
    fresh_ok("unknown frame types")


def test_malformed():
    c = logged_in(4)
    frames = c.request("GetObjectsByID", body=struct.pack(">I", 1000))
    check_fail(T, frames, 1, "GetObjectsByID with list count 1000 and a "
               "4-byte body -> Fail 1", "malformed")
    frames = c.request("GetObjectsByID", body=struct.pack(">II", 2, 1))
    check_fail(T, frames, 1, "GetObjectsByID with count 2 and one id -> "
               "Fail 1")
    frames = c.request("GetObjectsByID", body=b"\0\0")
    check_fail(T, frames, 1, "GetObjectsByID with a 2-byte body -> Fail 1")
    check_okay(T, [c.ping()], "malformed bodies: the connection still "
               "answers Ping")
    c.close()

    c = SRV.client()
    check_fail(T, c.request("Connect", body=b""), 1,
               "Connect with an empty body -> Fail 1")
    check_fail(T, c.request("Connect", body=struct.pack(">I", 10) + b"abc"),
               1, "Connect whose string runs past the end -> Fail 1")
    check_okay(T, [c.connect()], "a proper Connect afterwards -> Okay")
    body = struct.pack(">I", 100) + b"short"
    check_fail(T, c.request("CreateAccount", body=body), 1,
               "CreateAccount whose user name length runs past the end -> "
               "Fail 1", "malformed")
    body = (struct.pack(">I", 3) + b"abc" + struct.pack(">I", 0xFFFFFFF0) +
            b"pw")
    check_fail(T, c.request("CreateAccount", body=body), 1,
               "CreateAccount with a password length near 2^32 -> Fail 1")
    check_fail(T, c.request("Login", body=b"\0\0\0\1a"), 1,
               "Login with a missing password field -> Fail 1")
    check_okay(T, [c.ping()], "... the connection still answers Ping")
    check_okay(T, [c.login(USER, PASSWORD)], "... and Login works")
    c.close()
    fresh_ok("malformed bodies")


def test_trailing_bytes():
    c = SRV.client()
    check_okay(T, c.request("Connect", body=struct.pack(">I", 3) + b"abc" +
                            b"trailing"),
               "Connect with trailing bytes -> Okay")
    check_okay(T, c.request("Ping", body=b"\x01\x02\x03\x04\x05"),
               "Ping with 5 trailing bytes -> Okay")
    f = c.call("GetFeatures", body=b"\xff" * 9)
    T.ok(f.is_("Features"), "GetFeatures with trailing bytes -> Features",
         repr(f))
    check_okay(T, [c.ping()], "then a plain Ping -> Okay")
    c.close()


def test_frame_version():
    c = logged_in(4)
    frames = c.request("Ping", body=b"12345", frame_version=1)
    check_fail(T, frames, 7, "Ping with frame version 1 -> Fail 7")
    T.ok(frames and raw_fail(frames[0], 4) is not None,
         "the Fail 7 is a complete TP04 Fail (with a reference list)",
         repr(frames))
    frames = c.request("GetFeatures", frame_version=0xFF)
    check_fail(T, frames, 7, "GetFeatures with frame version 255 -> Fail 7")
    check_okay(T, [c.ping()], "the body was skipped: the next Ping -> Okay")
    c.close()
    c = SRV.client()
    frames = c.request("Connect", {"client": "fv"}, frame_version=2)
    check_fail(T, frames, 7, "first frame with frame version 2 -> Fail 7")
    check_okay(T, [c.connect()], "then Connect with frame version 0 -> Okay")
    c.close()
    fresh_ok("non-zero frame versions")


def test_garbage_after_connect():
    for label, first in (("0xFF", 0xFF), ("'X'", ord("X"))):
        c = logged_in(4)
        junk = bytes([first]) + bytes(rng.randrange(256) for _ in range(99))
        c.send_bytes(junk)
        data = expect_close(T, c, "garbage starting with %s after login: the "
                            "server closes the connection" % label)
        if data:
            n = struct.unpack(">I", data[12:16])[0] if len(data) >= 16 else 0
            f = tplib.Frame(data[:16], data[16:16 + n]) if len(data) >= 16 \
                else None
            T.ok(f is not None and raw_fail(f, 4) is not None and
                 f["code"] == 0 and len(data) == 16 + n,
                 "garbage: anything sent before the close is one Fail 0",
                 repr(data[:200]))
        c.close()
    fresh_ok("garbage after Connect")


def random_frames(c, count, version, label):
    """Sends count frames with valid headers, random types and random
    bodies in batches; every one must be answered with its own sequence
    number. Returns (problems, answered)."""
    problems = []
    answered = 0
    types = list(range(0, 80)) + [999, 1000, 1003, 0xFFFFFFFF]
    batch = []
    for i in range(count):
        t = rng.choice(types)
        n = rng.choice([0, 0, 1, 3, 4, 8, 12, 20, rng.randrange(200)])
        body = bytearray(rng.randrange(256) for _ in range(n))
        for off in range(0, n - 3, 4):     # small counts now and then
            if rng.random() < 0.4:
                body[off:off + 4] = rng.randrange(4).to_bytes(4, "big")
        seq = rng.randrange(1, 0xFFFFFFFF)
        batch.append((seq, t, bytes(body)))
        if len(batch) == 10 or i == count - 1:
            c.send_bytes(b"".join(
                tplib.header(version, s, ty, len(b)) + b
                for s, ty, b in batch))
            for s, ty, b in batch:
                try:
                    frames = c.recv_reply(s, 20)
                except Exception as e:
                    problems.append("type %d body %s: %r" % (ty, b.hex(), e))
                    return problems, answered
                answered += 1
                for f in frames:
                    if f.fields is None:
                        problems.append("type %d body %s: undecodable reply "
                                        "%r" % (ty, b.hex(), f))
                    elif f.version != version:
                        problems.append("type %d: reply in version %s" %
                                        (ty, f.version))
                    elif f.is_("Fail") and "internal error" in f["result"]:
                        problems.append("type %d body %s: %r" %
                                        (ty, b.hex(), f))
                c._note_filters(ty, None, b, frames)
            batch = []
    return problems, answered


def test_random_frames():
    c = logged_in(4)
    problems, answered = random_frames(c, 200, 4, "TP04")
    T.ok(not problems and answered == 200,
         "200 random TP04 frames after login: every one answered with its "
         "sequence number, no internal errors (seed %d)" % SEED,
         "\n".join(problems[:10]))
    check_okay(T, [c.ping()], "random TP04 frames: the connection still "
               "answers Ping")
    c.close()

    c = logged_in(3)
    problems, answered = random_frames(c, 100, 3, "TP03")
    T.ok(not problems and answered == 100,
         "100 random TP03 frames after login: every one answered (seed %d)"
         % SEED, "\n".join(problems[:10]))
    check_okay(T, [c.ping()], "random TP03 frames: the connection still "
               "answers Ping")
    c.close()

    c = SRV.client()
    problems, answered = random_frames(c, 100, 4, "TP04 PRE")
    T.ok(not problems and answered == 100,
         "100 random TP04 frames on a new connection: every one answered "
         "(seed %d)" % SEED, "\n".join(problems[:10]))
    c.close()
    fresh_ok("random frames")


def flood(count, pause):
    """Sends count pipelined Pings without reading for pause seconds, then
    reads. Returns (replies in order, closed, peak RSS in KiB, problems)."""
    c = logged_in(4)
    data = b"".join(tplib.header(4, i + 1, 27, 0) for i in range(count))
    send_error = []

    def sender():
        try:
            c.send_bytes(data, timeout=60)
        except Exception as e:
            send_error.append(e)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    peak = 0
    end = time.monotonic() + pause
    while time.monotonic() < end:
        peak = max(peak, SRV.rss_kb() or 0)
        time.sleep(0.05)
    replies = 0
    problems = []
    closed = False
    try:
        while replies < count:
            f = c.recv_frame(30)
            if f.seq != replies + 1 or not f.is_("Okay"):
                problems.append("reply %d: %r" % (replies + 1, f))
                break
            replies += 1
            if replies % 5000 == 0:
                peak = max(peak, SRV.rss_kb() or 0)
    except tplib.Closed:
        closed = True
    except Exception as e:
        problems.append(repr(e))
    th.join(60)
    peak = max(peak, SRV.rss_kb() or 0)
    c.close()
    return replies, closed, peak, problems + [repr(e) for e in send_error
                                              if not closed]


def test_flood():
    for count, pause in ((20000, 1.0), (300000, 2.0)):
        replies, closed, peak, problems = flood(count, pause)
        T.ok(not problems and (replies == count or closed),
             "%d pipelined Pings, not read for %.0f s: all answered in order "
             "or the client disconnected" % (count, pause),
             "replies %d, closed %s\n%s" % (replies, closed,
                                            "\n".join(problems[:5])))
        T.ok(0 < peak < RSS_LIMIT_KB, "%d Pings: server RSS stayed under "
             "%d MB (peak %.1f MB)" % (count, RSS_LIMIT_KB // 1024,
                                       peak / 1024.0))
        fresh_ok("%d pipelined Pings" % count)


def test_stop():
    errors = SRV.error_lines()
    T.ok(not errors, "no error lines in the server log", "\n".join(errors[:10]))
    T.is_(SRV.stop(), 0, "SIGTERM -> exit code 0")


def start():
    global SRV
    SRV = tplib.Server().start()
    with SRV.client() as c:
        c.connect()
        f = c.create_account(USER, PASSWORD)
        if not f.is_("Okay"):
            raise RuntimeError("cannot create the test account: %r" % f)
    T.ok(True, "server started, account created (random seed %d; "
         "TP_SEED=%d repeats this run)" % (SEED, SEED))


if __name__ == "__main__":
    tplib.main(start, test_not_tp, test_too_old, test_unsupported_versions,
               test_oversized, test_truncated, test_unknown_type,
               test_malformed, test_trailing_bytes, test_frame_version,
               test_garbage_after_connect, test_random_frames, test_flood,
               test_stop)
