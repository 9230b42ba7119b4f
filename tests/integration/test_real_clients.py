#!/usr/bin/env python3
"""What real TP clients need beyond protocol.xml (PROTOCOL.md 1.3, 7.2, 7.8,
13, 19): the TP04 Game frame's trailing u64 ctime and the TP04 Player
frame's trailing u64 modtime, byte for byte (and TP03's Player with exactly
its three fields); turns numbered from 0, with the Universe's Year (TP03:
age), TimeRemaining's turn, the Game frame's turn parameter and the
universe's modtimes agreeing at turn 0 and after one and two ends of turn;
a game stored with the old numbering (format 1) converted on open; over
TLS, every reply frame in a TLS record of its own (read one record at a
time, as libtpproto-cpp does) and no session tickets, TLS 1.2 and 1.3; and
a game in the shape of three AI clients (daneel-ai: wait for the Year to
change, read the objects, give orders, FinishedTurn) in which every turn
ends because all players finished, never by the timer."""

import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from test_protocol import (  # noqa: E402
    ORDER_PARAM, Player, encode_params, object_values, string, u32, u64)
from tplib import check_okay  # noqa: E402

T = tplib.Tap.current or tplib.Tap()
TLS = "--tls-port"
NOP = 0
REASON_TIMER_STARTED, REASON_ALL_FINISHED, REASON_EOT = 1, 3, 5


def minisec(*extra, port_flags=(), data_dir=None):
    """A MiniSec game whose turns end when every player has finished (and
    after an hour otherwise: no test here may reach it)."""
    return tplib.Server("--set", "turn_mode=players_finished",
                        "--set", "turn_length=3600", *extra,
                        port_flags=port_flags, data_dir=data_dir)


def game_frame(c):
    frames = c.request("GetGames")
    T.ok(len(frames) == 2 and frames[0].is_("Sequence") and
         frames[1].is_("Game"), "GetGames: Sequence + Game", repr(frames))
    return frames[-1]


def game_param(g, pid):
    for p in g["parameters"]:
        if p["id"] == pid:
            return p
    return None


class Session(Player):
    """A MiniSec player that also knows the object descriptions."""

    def __init__(self, srv, version=4, **kw):
        Player.__init__(self, srv, version, **kw)
        self.descs = {}

    def desc(self, otype):
        if otype not in self.descs:
            self.descs[otype] = self.get("GetObjectDesc", [otype])[0]
        return self.descs[otype]

    def universe(self):
        """(Year, modtime) of object 0."""
        o = self.get("GetObjectsByID", [0])[0]
        v = object_values(self.desc(o["otype"]), o)
        return v["Year"]["value"], o["modtime"]

    def time_remaining(self):
        f = self.call("GetTimeRemaining")
        return f["turn"]

    def wait_turn_started(self, turn, timeout=30.0):
        """Waits for the push (sequence 0, reason TimerStarted) of turn."""
        deadline = time.monotonic() + timeout
        seen = list(self.c.async_frames)
        self.c.async_frames = []
        while True:
            for f in seen:
                if (f.is_("TimeRemaining") and
                        f["reason"] == REASON_TIMER_STARTED and
                        f["turn"] == turn):
                    return True
            seen = []
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                seen = [self.c.recv_frame(timeout=left)]
            except tplib.Timeout:
                return False


# ------------------------------------------------------------ frames

def test_game_and_player_bytes():
    with minisec() as srv:
        started = int(time.time())
        a = Session(srv)
        g = game_frame(a.c)
        ctime = g.get("ctime")
        T.ok(isinstance(ctime, int) and started - 60 <= ctime <= started + 1,
             "Game (TP04) ends with u64 ctime, the game's creation time",
             repr(ctime))
        T.is_(g.body[-8:], u64(ctime), "ctime is the frame's last 8 bytes")
        T.is_(len(g.body), len(tplib.encode_body(4, tplib.type_of("Game"), {
            k: g[k] for k in ("name", "key", "tp", "server", "sertype",
                              "rule", "rulever", "connections",
                              "parameters", "mediabase", "ctime")})),
              "Game: nothing after ctime")
        p = a.get("GetPlayer", [0])[0]
        body = (u32(a.id) + string(a.name) + string(p["race"]) +
                u64(p["modtime"]))
        T.is_(p.body, body, "Player (TP04): id, name, race, u64 modtime")
        # (The modification clock runs ahead of the wall clock by one
        # second per change made within the same second.)
        T.ok(started - 60 <= p["modtime"] <= int(time.time()) + 3600,
             "Player modtime is a Unix time", repr(p["modtime"]))
        ids = a.ids("GetPlayerIDs")
        mt = [m["modtime"] for m in ids["modtimes"] if m["id"] == a.id]
        T.is_(mt, [p["modtime"]], "the modtime is the one PlayerIDs lists")
        b = Session(srv, version=3)
        f = b.get("GetPlayer", [a.id])[0]
        T.is_(f.body, u32(a.id) + string(a.name) + string(p["race"]),
              "Player (TP03): exactly id, name, race")
        T.is_(len(f.body), 12 + len(a.name) + len(p["race"]),
              "Player (TP03): 12 bytes and the strings")
        f = b.c.call(65, body=b"")
        T.ok(f.is_("Fail"), "TP03: no Game frame", repr(f))
        a.c.close()
        b.c.close()
        srv.stop(cleanup=False)
        with minisec(data_dir=srv.data_dir) as again:
            c = again.client()
            c.connect()
            g2 = game_frame(c)
            T.is_(g2["ctime"], ctime, "ctime is the same after a restart")
            c.close()
        srv.cleanup()


# ------------------------------------------------------------ turns

def check_turn(srv, a, b3, turn, what, last_mod):
    """Year, TP03 age, TimeRemaining, the Game frame and modtimes at turn;
    returns the universe's modtime."""
    year, mod = a.universe()
    T.is_(year, turn, "%s: the Universe's Year is %d" % (what, turn))
    T.is_(a.time_remaining(), turn, "%s: TimeRemaining says turn %d" %
          (what, turn))
    g = game_frame(a.c)
    T.is_(game_param(g, 9)["intval"], turn, "%s: the Game frame's turn "
          "parameter is %d" % (what, turn))
    o3 = b3.get("GetObjectsByID", [0])[0]
    age = struct.unpack(">Q", o3.body[-8:])[0] if o3.body else None
    T.is_(age, turn, "%s: TP03 universe age is %d" % (what, turn))
    T.ok(o3["modtime"] == mod, "%s: TP03 and TP04 see the same modtime" %
         what, repr((o3["modtime"], mod)))
    if last_mod is not None:
        T.ok(mod > last_mod, "%s: the universe's modtime moved on" % what,
             repr((last_mod, mod)))
        f = a.ids("GetObjectIDs", frm=last_mod)
        listed = {m["id"]: m["modtime"] for m in f["modtimes"]}
        T.is_(listed.get(0), mod, "%s: GetObjectIDs from the last turn's "
              "modtime lists the universe with its new modtime" % what)
    return mod


def test_turn_numbers():
    with minisec() as srv:
        a = Session(srv)
        b3 = Session(srv, version=3)
        mod = check_turn(srv, a, b3, 0, "a new game", None)
        for turn in (1, 2):
            check_okay(T, [a.call("FinishedTurn")], "FinishedTurn (a)")
            check_okay(T, [b3.call("FinishedTurn")], "FinishedTurn (TP03)")
            T.ok(a.wait_turn_started(turn), "turn %d started (push)" % turn)
            mod = check_turn(srv, a, b3, turn, "after %d end(s) of turn" %
                             turn, mod)
        a.c.close()
        b3.c.close()


MAKE_FORMAT_1 = r"""
-- Rewrites a stopped game the way tpserver stored it before turns were
-- numbered from 0 (database format 1): every turn number one higher.
local store = require "tp.store"
local cjson = require "cjson"
local db = assert(store.open(arg[1] .. "/db", { create_if_missing = false }))
local b = db:batch()
local todo = {}
for k, v in db:iter() do todo[#todo + 1] = { k, v } end
for _, e in ipairs(todo) do          -- the deletes before the puts
    if e[1]:match("^hist/") then b:delete(e[1]) end
end
for _, e in ipairs(todo) do
    local k, v = e[1], e[2]
    local t, id = k:match("^hist/(%d+)/(%d+)$")
    if t then
        b:put(string.format("hist/%010d/%s", tonumber(t) + 1, id), v)
    elseif k:match("^msg/") then
        local m = cjson.decode(v)
        m.turn = m.turn + 1
        b:put(k, cjson.encode(m))
    elseif k == "meta/turn" then
        local m = cjson.decode(v)
        m.turn = m.turn + 1
        b:put(k, cjson.encode(m))
    elseif k == "meta/game" then
        local m = cjson.decode(v)
        m.format = 1
        b:put(k, cjson.encode(m))
    end
end
assert(db:write(b, true))
db:close()
"""


def dump(srv):
    r = subprocess.run([tplib.tpserver_path(), "script",
                        os.path.join(os.path.dirname(__file__), "..",
                                     "fixtures", "persist_check.lua"),
                        srv.data_dir], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout)["keys"]


def test_format_1():
    with minisec() as srv:
        a = Session(srv)
        b = Session(srv)
        for turn in (1, 2):
            a.call("FinishedTurn")
            b.call("FinishedTurn")
            a.wait_turn_started(turn)
        a.c.close()
        b.c.close()
        srv.stop(cleanup=False)
        before = dump(srv)
        script = os.path.join(srv.tmp, "make_format_1.lua")
        with open(script, "w") as f:
            f.write(MAKE_FORMAT_1)
        r = subprocess.run([tplib.tpserver_path(), "script", script,
                            srv.data_dir], capture_output=True, text=True,
                           timeout=60)
        T.ok(r.returncode == 0, "(setup) the game rewritten as format 1",
             r.stderr)
        old = dump(srv)
        T.ok(old["meta/game"]["format"] == 1 and old["meta/turn"]["turn"] == 3
             and any(k.startswith("hist/0000000003/") for k in old),
             "(setup) format 1: turn 3, history under turn 3",
             repr((old["meta/game"], old["meta/turn"])))
        with minisec(data_dir=srv.data_dir) as again:
            T.ok("database converted from format 1 to 2" in again.log(),
                 "the conversion is logged", again.log_tail())
            c = again.client()
            c.connect()
            check_okay(T, [c.login(a.name, "pw-" + a.name)],
                       "(format 1) the player logs in")
            o = c.request("GetObjectsByID", {"ids": [0]})[1]
            desc = c.request("GetObjectDesc", {"ids": [o["otype"]]})[1]
            year = object_values(desc, o)["Year"]["value"]
            T.is_((year, c.call("GetTimeRemaining")["turn"]), (2, 2),
                  "a format-1 game opens at turn 2 with Year 2")
            c.close()
        after = dump(srv)
        T.is_(after["meta/game"]["format"], 2, "stored as format 2")
        # (meta/wseq counts the batches written, the conversion's too.)
        skip = ("meta/game", "meta/turn", "meta/clock", "meta/wseq")
        same = {k: v for k, v in after.items() if k not in skip}
        want = {k: v for k, v in before.items() if k not in skip}
        T.ok(same == want, "history and messages are as a game numbered "
             "from 0 stores them", repr(sorted(
                 k for k in set(same) | set(want)
                 if same.get(k) != want.get(k))[:10]))
        T.is_(after["meta/turn"]["turn"], before["meta/turn"]["turn"],
              "meta/turn as before")
        srv.cleanup()


# ------------------------------------------------------------ TLS

class RecordReader:
    """A TLS client that reads the socket one TLS record at a time and
    decrypts each alone, as libtpproto-cpp's reader does (one frame per
    readable socket, nothing drained from the TLS layer)."""

    def __init__(self, port, version):
        ctx = tplib.tls_context()
        if version == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.inc, self.outg = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.outg)
        self.raw = b""
        self.records = []     # (content type, length) of every record
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._send()
                self._record()
        self._send()
        self.seq = 0

    def _send(self):
        data = self.outg.read()
        if data:
            self.sock.sendall(data)

    def _need(self, n):
        while len(self.raw) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise tplib.Closed("closed")
            self.raw += chunk

    def _record(self):
        """Feeds exactly one TLS record to the TLS object."""
        self._need(5)
        n = struct.unpack(">H", self.raw[3:5])[0]
        self._need(5 + n)
        rec, self.raw = self.raw[:5 + n], self.raw[5 + n:]
        self.records.append((rec[0], n))
        self.inc.write(rec)

    def plaintext_of_next_record(self):
        """The plaintext that one record carries (b"" for records that carry
        none, such as TLS 1.3 session tickets)."""
        self._record()
        out = b""
        while True:
            try:
                out += self.tls.read(1 << 20)
            except ssl.SSLWantReadError:
                return out

    def send(self, name, fields=None):
        self.seq += 1
        self.tls.write(tplib.encode_frame(4, self.seq, name, fields or {}))
        self._send()
        return self.seq

    def close(self):
        self.sock.close()


def test_tls_records():
    with minisec(port_flags=(TLS,)) as srv:
        port = srv.ports[TLS]
        for version in ("1.3", "1.2"):
            r = RecordReader(port, version)
            T.is_(r.tls.version(), "TLSv1.3" if version == "1.3" else
                  "TLSv1.2", "(TLS %s) handshake done" % version)
            # Pipelined: Connect, GetFeatures, GetGames (Sequence + Game),
            # three Pings: seven reply frames, answered in one batch.
            r.send("Connect", {"client": "record-reader/1.0"})
            r.send("GetFeatures")
            r.send("GetGames")
            for _ in range(3):
                r.send("Ping")
            frames, empty = [], 0
            while len(frames) < 7 and len(r.records) < 200:
                data = r.plaintext_of_next_record()
                if not data:
                    empty += 1
                    continue
                hdr = data[:16]
                ok = (len(data) >= 16 and
                      len(data) == 16 + struct.unpack(">I", hdr[12:16])[0])
                frames.append((ok, tplib.Frame(hdr, data[16:]) if ok
                               else data))
            names = [f.name if ok else "?" for ok, f in frames]
            T.ok(all(ok for ok, _ in frames) and len(frames) == 7,
                 "(TLS %s) every record carries exactly one whole frame" %
                 version, repr(names))
            T.is_(names, ["Okay", "Features", "Sequence", "Game", "Okay",
                          "Okay", "Okay"],
                  "(TLS %s) the seven replies in order" % version)
            T.is_(empty, 0, "(TLS %s) no record without a frame after the "
                  "handshake (no session ticket)" % version)
            sess = r.tls.session
            T.ok(sess is None or not sess.has_ticket,
                 "(TLS %s) the client holds no session ticket" % version,
                 repr(sess and sess.has_ticket))
            r.close()
        # The ssl module's own socket: a whole exchange, then no ticket.
        c = srv.client(port_flag=TLS, tls=True)
        c.connect()
        c.ping()
        T.ok(c.sock.version() == "TLSv1.3" and
             not c.sock.session.has_ticket,
             "TLS 1.3 through Python's ssl socket: no session ticket",
             repr((c.sock.version(), c.sock.session.has_ticket)))
        c.close()


# ------------------------------------------------------------ an AI game

class AI(threading.Thread):
    """An AI client in daneel-ai's shape: each turn it waits until the
    Universe's Year equals the turn number, reads every object it can see,
    gives an order to one of its queues and sends FinishedTurn."""

    def __init__(self, srv, turns):
        threading.Thread.__init__(self, daemon=True)
        self.p = Session(srv)
        self.turns = turns
        self.eot_reasons = []
        self.errors = []
        self.done_turns = 0
        self.nop_types = None

    def year(self):
        return self.p.universe()[0]

    def push_reasons(self):
        for f in self.p.c.async_frames:
            if f.is_("TimeRemaining") and f["time"] == 0:
                self.eot_reasons.append(f["reason"])
        self.p.c.async_frames = []

    def play_turn(self, turn):
        ids = self.p.list_ids("GetObjectIDs")
        objs = self.p.get("GetObjectsByID", ids)
        if not all(o.is_("Object") for o in objs):
            self.errors.append("turn %d: objects %r" % (turn, objs))
        queues = self.p.list_ids("GetOrderQueueIDs")
        if queues:
            if self.nop_types is None:
                desc = self.p.get("GetOrderDesc", [NOP])[0]
                self.nop_types = [x["type"] for x in desc["parameters"]]
            q = queues[turn % len(queues)]
            params = encode_params(ORDER_PARAM, self.nop_types,
                                   [{"turns": 1, "maxtime": 0}])
            f = self.p.call("OrderInsert", {
                "id": q, "slot": -1, "otype": NOP, "turns": 0,
                "resources": [],
                "params": params.decode("utf-8", "surrogateescape")})
            # TP04 answers with the order as stored (PROTOCOL.md 7.5).
            if not (f.is_("Order") and f["otype"] == NOP):
                self.errors.append("turn %d: OrderInsert %r" % (turn, f))
        f = self.p.call("FinishedTurn")
        if not f.is_("Okay"):
            self.errors.append("turn %d: FinishedTurn %r" % (turn, f))

    def run(self):
        try:
            for turn in range(self.turns):
                deadline = time.monotonic() + 30
                while self.year() != turn:
                    self.push_reasons()
                    if time.monotonic() > deadline:
                        self.errors.append("turn %d never came (Year %d)" %
                                           (turn, self.year()))
                        return
                    try:
                        self.p.c.async_frames.append(
                            self.p.c.recv_frame(timeout=1.0))
                    except tplib.Timeout:
                        pass
                if self.p.time_remaining() != turn:
                    self.errors.append("turn %d: TimeRemaining says %d" %
                                       (turn, self.p.time_remaining()))
                self.play_turn(turn)
                self.done_turns += 1
                self.push_reasons()
        except Exception as e:  # noqa: BLE001 (reported as a check)
            self.errors.append("%s: %s" % (type(e).__name__, e))


def test_ai_game():
    turns = 20
    with minisec() as srv:
        ais = [AI(srv, turns) for _ in range(3)]
        started = time.monotonic()
        for ai in ais:
            ai.start()
        for ai in ais:
            ai.join(180)
        took = time.monotonic() - started
        errors = [e for ai in ais for e in ai.errors]
        T.is_(errors, [], "three AI clients: no error, no Fail")
        T.is_([ai.done_turns for ai in ais], [turns] * 3,
              "each AI played %d turns" % turns)
        T.ok(took < 120, "%d turns in %.1f s (bounded wall time)" %
             (turns, took))
        log = srv.log()
        ended_all = log.count("turn ending reason=all")
        T.ok(ended_all >= turns and "turn ending reason=timer" not in log,
             "every turn ended because all players finished (%d), never by "
             "the timer" % ended_all)
        reasons = sorted(set(r for ai in ais for r in ai.eot_reasons))
        T.is_(reasons, [REASON_ALL_FINISHED], "the end-of-turn pushes say "
              "AllFinished (3), never EndOfTurnStarted (5)")
        T.is_([line for line in log.splitlines()
               if " warning " in line[:40] or " error " in line[:40]], [],
              "no warning or error in the log")


def main():
    T.run(test_game_and_player_bytes, test_turn_numbers, test_format_1,
          test_tls_records, test_ai_game)
    T.done()


if __name__ == "__main__":
    main()
