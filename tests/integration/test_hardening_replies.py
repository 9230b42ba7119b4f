#!/usr/bin/env python3
"""Hardening (issue 14): one heavy request does not stall everyone.

A request names at most as many ids (or slots) as one ID list frame
carries, 87,378 on TP04 and 87,379 on TP03 (PROTOCOL.md 3.3); more get
Fail RequestTooBig (Fail 1 on TP03) naming the bound, before any work.
A reply of many frames (Sequence + one frame per id) is made in parts,
the other connections served in between: a quiet client's Ping stays
fast while the biggest reply allowed is made, and every item of it comes,
in request order. The next part waits while the client has not read what
was sent (the server's output for it stays near the high mark, a quarter
of max_output, and the client is dropped after client_write_timeout as
any client that does not read); a thing removed while its reply is made
gets the Fail of a missing one; a client that goes away mid-reply stops
the work; the server's memory comes back afterwards."""

import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_console import console  # noqa: E402
from test_protocol import Player  # noqa: E402

T = tplib.Tap.current or tplib.Tap()

MAX4 = 87378            # ids in one request, TP04 (1 MiB frames)
MAX3 = 87379            # TP03 (no "from" in its ID list frames)
MISSING = 999999        # an object id that does not exist


def frames_of(data):
    """Splits bytes into (seq, type, body) of whole frames; the rest."""
    frames, rest = tplib.split_frames(data)
    return [(int.from_bytes(h[4:8], "big"), int.from_bytes(h[8:12], "big"),
             b) for h, b in frames], rest


class Reader:
    """Reads the whole answer to request seq on client c (Sequence + its
    items) in a thread, as raw frames; .items holds (type, body) of each
    item, .t_done when the last one came."""

    def __init__(self, c, seq, timeout=120):
        self.c, self.seq, self.timeout = c, seq, timeout
        self.first = None
        self.items = []
        self.error = None
        self.t_done = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def run(self):
        buf = b""
        want = None
        deadline = time.monotonic() + self.timeout
        try:
            while want is None or len(self.items) < want:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise tplib.Timeout("%d items of %r" %
                                        (len(self.items), want))
                self.c.sock.settimeout(left)
                chunk = self.c.sock.recv(1 << 20)
                if not chunk:
                    raise tplib.Closed("closed after %d items" %
                                       len(self.items))
                frames, buf = frames_of(buf + chunk)
                for seq, ftype, body in frames:
                    if seq != self.seq:
                        raise tplib.ProtocolError("seq %d in the answer "
                                                  "to %d" % (seq, self.seq))
                    if self.first is None:
                        self.first = tplib.Frame(
                            tplib.header(self.c.version, seq, ftype,
                                         len(body)), body)
                        want = (self.first["number"]
                                if self.first.is_("Sequence") else 0)
                    else:
                        self.items.append((ftype, body))
            self.t_done = time.monotonic()
        except Exception as e:      # reported by the checks
            self.error = repr(e)

    def wait(self):
        self.thread.join(self.timeout + 5)
        return self


def item_ids(reader, version):
    """[(kind, id)] of the items: ("Object", id) or ("Fail", code, ref)."""
    out = []
    for ftype, body in reader.items:
        f = tplib.Frame(tplib.header(version, 1, ftype, len(body)), body)
        if f.is_("Object"):
            out.append(("Object", f["id"]))
        elif f.is_("Fail"):
            refs = f.get("references") or [{}]
            out.append(("Fail", f["code"], refs[0].get("id")))
        else:
            out.append((f.name,))
    return out


def wanted(ids, seen, version):
    """What the items must be for ids, seen being the visible objects."""
    out = []
    for i in ids:
        if i in seen:
            out.append(("Object", i))
        elif version == 4:
            out.append(("Fail", 4, i))
        else:
            out.append(("Fail", 4, None))   # TP03 Fails carry no references
    return out


def pinger(p, stop, lat):
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            f = p.call("Ping", timeout=30)
        except Exception:
            lat.append((t0, 99.0))
            return
        lat.append((t0, time.monotonic() - t0 if f.is_("Okay") else 99.0))
        time.sleep(0.005)


def console_number(srv, code):
    rc, out, err = console(srv, code)
    try:
        return int(float(out.strip()))
    except ValueError:
        raise RuntimeError("console %r: %r %r" % (code, out, err))


def over_bound(p, name, fields, code, text, what):
    """Request name must get one Fail code with text, at once; only the
    first frames are shown when it does not."""
    t0 = time.monotonic()
    try:
        frames = p.req(name, fields, timeout=30)
    except Exception as e:
        frames = None
        err = repr(e)
    took = time.monotonic() - t0
    f = frames[0] if frames else None
    T.ok(frames is not None and len(frames) == 1 and f.is_("Fail") and
         f["code"] == code and text in f["result"] and took < 2,
         "%s -> one Fail %d naming the bound, at once (%.2f s)" %
         (what, code, took),
         err if frames is None else "%d frames: %r" % (len(frames),
                                                         frames[:2]))


def test_bound():
    with tplib.Server() as srv:
        p = Player(srv)
        over_bound(p, "GetObjectsByID", {"ids": [0] * (MAX4 + 1)}, 8,
                   "at most %d" % MAX4, "TP04: GetObjectsByID with %d ids"
                   % (MAX4 + 1))
        if not p.c.eof:
            over_bound(p, "GetObjectsByID", {"ids": [0] * 262139}, 8,
                       "at most %d" % MAX4, "the most ids a 1 MiB frame "
                       "holds (262139)")
        p = Player(srv)
        over_bound(p, "GetOrder", {"id": 0, "slots": [0] * (MAX4 + 1)}, 8,
                   "at most %d" % MAX4, "GetOrder with too many slots")
        over_bound(p, "RemoveDesign", {"ids": [1] * (MAX4 + 1)}, 8,
                   "at most %d" % MAX4, "RemoveDesign with too many ids")
        T.ok(p.call("Ping").is_("Okay"), "the connection still answers")
        p = Player(srv, version=3)
        over_bound(p, "GetObjectsByID", {"ids": [0] * (MAX3 + 1)}, 1,
                   "at most %d" % MAX3, "TP03: %d ids (TP03 has no "
                   "RequestTooBig)" % (MAX3 + 1))


def test_quiet_client():
    with tplib.Server() as srv:
        big, quiet = Player(srv), Player(srv)
        seen = big.list_ids("GetObjectIDs")
        # At the bound: every item, in order, while a quiet client pings.
        ids = [seen[i % len(seen)] if i % 97 else MISSING
               for i in range(MAX4)]
        rss0 = srv.rss_kb()
        lua0 = console_number(srv, "stats().lua_memory")
        stop = threading.Event()
        lat = []
        th = threading.Thread(target=pinger, args=(quiet, stop, lat),
                              daemon=True)
        th.start()
        time.sleep(0.2)
        seq, data = big.c.frame("GetObjectsByID", {"ids": ids})
        reader = Reader(big.c, seq)
        t_sent = time.monotonic()
        big.c.send_bytes(data)
        reader.start().wait()
        stop.set()
        th.join(30)
        T.ok(reader.error is None and reader.first is not None and
             reader.first.is_("Sequence") and
             reader.first["number"] == MAX4,
             "TP04: GetObjectsByID with %d ids -> Sequence(%d)" %
             (MAX4, MAX4), repr((reader.error, reader.first)))
        got = item_ids(reader, 4)
        T.ok(got == wanted(ids, set(seen), 4), "and %d items, each the "
             "object asked for or Fail 4 naming the missing id, in "
             "request order" % MAX4,
             "got %d items; first difference at %r" % (len(got), next(
                 (i for i, (a, b) in enumerate(zip(got,
                  wanted(ids, set(seen), 4))) if a != b), None)))
        duration = (reader.t_done or time.monotonic()) - t_sent
        during = [t for t0, t in lat if t_sent <= t0 <= t_sent + duration]
        worst = max([t for _, t in lat] or [99.0])
        T.diag("the reply took %.2f s; %d Pings meanwhile, the slowest "
               "%.3f s" % (duration, len(during), worst))
        T.ok(len(during) >= 3, "the quiet client's Pings are answered "
             "while the reply is made (%d of them)" % len(during))
        T.ok(worst < 0.5, "the quiet client's slowest Ping: %.3f s "
             "(< 0.5 s)" % worst)
        T.ok(big.call("Ping").is_("Okay"), "the big client's next request "
             "is answered after its whole reply")
        time.sleep(0.5)
        lua1 = console_number(srv, "stats().lua_memory")
        rss1 = srv.rss_kb()
        T.diag("server memory: RSS %d -> %d KiB, Lua %d -> %d KiB" %
               (rss0, rss1, lua0 // 1024, lua1 // 1024))
        T.ok(lua1 - lua0 < 16 << 20, "the Lua heap afterwards is within "
             "16 MiB of before (%+d KiB)" % ((lua1 - lua0) // 1024))
        if tplib.under_asan():
            T.skip("RSS comes back afterwards", "sanitizer build")
        else:
            T.ok(rss1 - rss0 < 24 * 1024, "the server's RSS afterwards is "
                 "within 24 MiB of before (%+d KiB)" % (rss1 - rss0))
        T.ok(not srv.error_lines(), "no error in the log",
             "\n".join(srv.error_lines()))
        big.c.close()
        quiet.c.close()


def test_tp03():
    with tplib.Server() as srv:
        p = Player(srv, version=3)
        seen = p.list_ids("GetObjectIDs")
        ids = [seen[i % len(seen)] if i % 101 else MISSING
               for i in range(MAX3)]
        seq, data = p.c.frame("GetObjectsByID", {"ids": ids})
        reader = Reader(p.c, seq)
        p.c.send_bytes(data)
        reader.start().wait()
        T.ok(reader.error is None and reader.first is not None and
             reader.first["number"] == MAX3, "TP03: %d ids -> Sequence(%d)"
             % (MAX3, MAX3), repr((reader.error, reader.first)))
        got = item_ids(reader, 3)
        T.ok(got == wanted(ids, set(seen), 3), "and every item, in order")
        T.ok(p.call("Ping").is_("Okay"), "then the next request")
        p.c.close()


def quiet_reader(srv):
    """A logged-in client that reads nothing for now: a small fixed
    receive buffer (not under one segment: the client can still read fast
    later), so that the server's output is what fills up."""
    p = Player(srv)
    p.c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 131072)
    return p


def connections(srv):
    return console_number(srv, "local n = 0 for _ in ipairs(connections()) "
                          "do n = n + 1 end return n")


MAX_PENDING = ("local m = 0 for _, r in ipairs(connections()) do "
               "if r.pending > m then m = r.pending end end return m")


def test_client_not_reading():
    """max_output=2 MiB: the high mark is 512 KiB. A client that asks the
    biggest reply and reads nothing holds its reply there; it is dropped
    after client_write_timeout, not for output over max_output."""
    with tplib.Server("--set", "max_output=2097152",
                      "--set", "client_write_timeout=3") as srv:
        quiet = Player(srv)
        slow = quiet_reader(srv)
        rss0 = srv.rss_kb()
        slow.c.send("GetObjectsByID", {"ids": [0] * MAX4})
        peak = 0
        t0 = time.monotonic()
        pings = []
        while time.monotonic() - t0 < 2.0:
            peak = max(peak, console_number(srv, MAX_PENDING))
            t = time.monotonic()
            pings.append((quiet.call("Ping").is_("Okay"),
                          time.monotonic() - t))
        rss1 = srv.rss_kb()
        T.diag("pending output at most %d bytes; RSS %d -> %d KiB" %
               (peak, rss0, rss1))
        T.ok(0 < peak <= 512 * 1024 + 1048576, "the output held for it "
             "stays under the high mark plus one frame (%d bytes)" % peak)
        T.ok("output over" not in srv.log(), "it is not dropped for output "
             "over max_output")
        T.ok(all(ok for ok, _ in pings) and max(t for _, t in pings) < 0.5,
             "another client is served meanwhile", repr(pings[:5]))
        if not tplib.under_asan():
            T.ok(rss1 - rss0 < 24 * 1024, "the server's memory does not "
                 "grow (%+d KiB)" % (rss1 - rss0))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and connections(srv) > 1:
            time.sleep(0.2)
        T.ok(connections(srv) == 1, "after client_write_timeout it is "
             "disconnected")
        T.ok("has not read its replies" in srv.log(), "as a client that "
             "does not read (logged)", srv.log_tail(5))
        slow.c.close()
        T.ok(quiet.call("Ping").is_("Okay"), "the other client goes on")
        quiet.c.close()


def test_gone_mid_reply():
    """An object removed while the reply is held: the items made after
    get Fail 4, those made before the object."""
    with tplib.Server("--set", "max_output=2097152") as srv:
        p = quiet_reader(srv)
        target = max(p.list_ids("GetObjectIDs"))
        seq, data = p.c.frame("GetObjectsByID", {"ids": [target] * MAX4})
        p.c.send_bytes(data)
        time.sleep(0.5)         # the reply is held by the unread output
        rc, out, err = console(srv, "nuke(%d)" % target)
        T.ok(rc == 0 and "removed" in out, "the console removes object %d "
             "while its reply is held" % target, out + err)
        reader = Reader(p.c, seq).start().wait()
        got = item_ids(reader, 4)
        kinds = [g[0] for g in got]
        n_obj = kinds.count("Object")
        T.ok(reader.error is None and len(got) == MAX4, "every item comes "
             "(%d)" % len(got), reader.error)
        T.ok(0 < n_obj < MAX4 and kinds == ["Object"] * n_obj +
             ["Fail"] * (MAX4 - n_obj) and
             all(g == ("Fail", 4, target) for g in got[n_obj:]),
             "%d objects, then Fail 4 for object %d (%d)" %
             (n_obj, target, MAX4 - n_obj))
        T.ok(p.call("Ping").is_("Okay"), "then the next request")
        p.c.close()


def test_client_gone():
    """A client that closes mid-reply: the server stops making it."""
    with tplib.Server("--set", "max_output=2097152") as srv:
        quiet = Player(srv)
        p = quiet_reader(srv)
        p.c.send("GetObjectsByID", {"ids": [0] * MAX4})
        time.sleep(0.3)
        p.c.sock.recv(65536)
        p.c.close()
        time.sleep(0.5)
        out1 = console_number(srv, "stats().bytes_out")
        time.sleep(0.5)
        out2 = console_number(srv, "stats().bytes_out")
        n = connections(srv)
        T.ok(n == 1, "its connection is gone (%d left)" % n)
        # Each console run sends nothing on TP connections.
        T.ok(out2 == out1, "nothing more is sent (%d, %d bytes)" %
             (out1, out2))
        T.ok(quiet.call("Ping").is_("Okay"), "the other client is served")
        T.ok(not srv.error_lines(), "no error in the log",
             "\n".join(srv.error_lines()))
        quiet.c.close()


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class PartsServer(tplib.Server):
    """tests/fixtures/parts_server.lua: GetResource answered per id, with
    items that fail on purpose (1 good, 2 a bug, 3 too large, 4 an endless
    loop, 5 missing); request_time_limit 0.5 s."""

    def command(self):
        return [tplib.tpserver_path(), "script",
                os.path.join(ROOT, "tests", "fixtures", "parts_server.lua"),
                str(self.port), self.data_dir]


def kinds(frames):
    """Runs of (frame name, code, text) of the items: [(key, count)]."""
    out = []
    for f in frames:
        key = (f.name, f.get("code"), (f.get("result") or "")[:24])
        if out and out[-1][0] == key:
            out[-1][1] += 1
        else:
            out.append([key, 1])
    return [(k, n) for k, n in out]


def test_failing_items():
    """In the first part (256 items) a bug or a frame too large fails the
    whole request, as for any handler; in a later part only that item
    fails (logged), and a part stopped by the time limit fails the rest of
    the reply, which still has all its items."""
    with PartsServer() as srv:
        c = srv.client()
        c.connect()
        c.create_account("parts", "pw")
        c.login("parts", "pw")
        for bad, code, text in ((2, 3, "internal error #"),
                                (3, 8, "reply too large")):
            frames = c.request("GetResource", {"ids": [1] * 10 + [bad]})
            T.ok(len(frames) == 1 and frames[0].is_("Fail") and
                 frames[0]["code"] == code and text in frames[0]["result"],
                 "item %d in the first part: one Fail %d for the request"
                 % (bad, code), repr(frames[:3]))
        ids = [1] * 600 + [2] + [1] * 10 + [3] + [1] * 10 + [5] + [1] * 700
        frames = c.request("GetResource", {"ids": ids}, timeout=30)
        got = kinds(frames[1:])
        want = [(("Okay", None, "ok"), 600),
                (("Fail", 3, "internal error (deferred #1)"[:24]), 1),
                (("Okay", None, "ok"), 10),
                (("Fail", 8, "reply too large for one frame"[:24]), 1),
                (("Okay", None, "ok"), 10),
                (("Fail", 4, "no such item 5"), 1),
                (("Okay", None, "ok"), 700)]
        T.ok(frames[0].is_("Sequence") and frames[0]["number"] == len(ids)
             and got == want, "in later parts a bug and a frame too large "
             "fail their item only", repr(got))
        T.ok("internal error (deferred #1)" in srv.log() and
             "plain message" in srv.log(), "the bug is logged with its "
             "traceback")
        ids = [1] * 600 + [4] + [1] * 300
        t0 = time.monotonic()
        frames = c.request("GetResource", {"ids": ids}, timeout=30)
        took = time.monotonic() - t0
        got = kinds(frames[1:])
        T.ok(frames[0]["number"] == len(ids) and len(got) == 2 and
             got[0] == (("Okay", None, "ok"), 600) and got[1][1] == 301 and
             got[1][0][:2] == ("Fail", 3) and
             "time limit" in frames[601]["result"],
             "an endless item in a later part: stopped by the time limit; "
             "it and every later item get the Fail (%.1f s)" % took,
             repr(got))
        T.ok(c.call("Ping").is_("Okay"), "the connection goes on")
        c.close()


def main():
    T.run(test_bound, test_quiet_client, test_tp03, test_client_not_reading,
          test_gone_mid_reply, test_client_gone, test_failing_items)
    T.done()


if __name__ == "__main__":
    main()
