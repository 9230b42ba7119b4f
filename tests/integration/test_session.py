#!/usr/bin/env python3
"""Session frames over TCP against a real server (PROTOCOL.md 3, 4, 5, 7.1-7.3,
14): Connect, GetFeatures, CreateAccount, Login, Ping, GetTimeRemaining,
GetGames in TP04 and TP03, the connection states, pipelining and frames
split across many writes. Every reply is decoded completely."""

import os
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from tplib import check_fail, check_okay  # noqa: E402

T = tplib.Tap()
SRV = None            # the server shared by the TP04 tests
PLAYERS = []          # account names created on SRV, in id order (id = index+1)

BAD_LOGIN = "Login Error - bad username or password"


def create(c, name, password):
    """CreateAccount that must succeed; records the new player's id."""
    ok = check_okay(T, [c.create_account(name, password,
                                         "%s@example.org" % name, "")],
                    "CreateAccount %s -> Okay" % name)
    if ok:
        PLAYERS.append(name.lower())
    return len(PLAYERS)


def player_id(name):
    return PLAYERS.index(name.lower()) + 1


def check_features(f, version, name):
    T.ok(f.is_("Features") and f.fields is not None,
         "%s: Features frame decodes completely" % name, repr(f))
    feats = f.get("features") or []
    T.ok(tplib.FEATURE_KEEPALIVE in feats, "%s: feature 5 KeepAlive" % name,
         repr(feats))
    T.ok(tplib.FEATURE_ACCOUNT_CREATE in feats,
         "%s: feature 0x3E8 account creation (default on)" % name,
         repr(feats))
    if version == 4:
        T.ok(tplib.FEATURE_PADDING in feats,
             "%s: feature 0x1D00 string padding on TP04" % name, repr(feats))
    else:
        T.ok(tplib.FEATURE_PADDING not in feats,
             "%s: no feature 0x1D00 on TP03" % name, repr(feats))
    T.is_(len(feats), len(set(feats)), "%s: no feature listed twice" % name)


def check_time_remaining(f, version, name, pid=None):
    T.ok(f.is_("TimeRemaining") and f.fields is not None,
         "%s: TimeRemaining decodes completely" % name, repr(f))
    if f.fields is None:
        return
    T.ok(0 < f["time"] <= 600, "%s: time %d is in (0, 600] with the default "
         "config" % (name, f["time"]))
    if version == 3:
        T.is_(len(f.body), 4, "%s: TP03 TimeRemaining body is exactly 4 "
              "bytes (time only)" % name)
        return
    T.is_(f["reason"], 0, "%s: reason 0 (Requested)" % name)
    T.is_(f["turn"], 0, "%s: turn 0" % name)
    T.ok(isinstance(f["turnname"], str), "%s: turn name is a string" % name)
    waiting = f["waiting"]
    T.is_(sorted(waiting), list(range(1, len(PLAYERS) + 1)),
          "%s: waiting lists every player of the game once" % name)
    if pid is not None:
        T.ok(pid in waiting, "%s: waiting contains the player's id %d" %
             (name, pid), repr(waiting))


def test_tp04_session():
    c = SRV.client()
    f = c.call("GetFeatures", seq=7)
    T.is_(f.seq, 7, "GetFeatures before Connect is answered, seq echoed")
    check_features(f, 4, "GetFeatures before Connect")

    f = c.call("Connect", {"client": "tplib-test/1.0 session"}, seq=1)
    check_okay(T, [f], "Connect -> Okay")
    T.is_(f.seq, 1, "Connect: sequence number echoed")
    T.is_(f.raw_header[:4], b"TP\x04\x00", "reply header is TP 04 00")
    check_features(c.call("GetFeatures"), 4, "GetFeatures after Connect")

    name = tplib.unique_name("alice")
    pw = "correct horse"
    create(c, name, pw)
    check_fail(T, [c.create_account(name, "other")], 1,
               "CreateAccount with a taken name -> Fail 1")
    check_fail(T, [c.create_account(name.upper(), "other")], 1,
               "CreateAccount with a name differing only in case -> Fail 1")
    check_fail(T, [c.create_account(name + "@tp", "other")], 1,
               "CreateAccount name@tp of a taken name -> Fail 1")
    check_fail(T, [c.create_account("", "pw")], 1,
               "CreateAccount with an empty name -> Fail 1")
    check_fail(T, [c.create_account(tplib.unique_name("nopw"), "")], 1,
               "CreateAccount with an empty password -> Fail 1")

    # Wrong password: the exact frame of the specification's vector
    # tp04_fail_norefs (code 1, fixed text, empty reference list).
    seq = c.send("Login", {"username": name, "password": "wrong"})
    frames = c.recv_reply(seq, 20)
    check_fail(T, frames, 1, "Login with a wrong password -> Fail 1",
               BAD_LOGIN)
    msg = BAD_LOGIN.encode()
    want = (tplib.header(4, seq, 1, 4 + 4 + len(msg) + 4) +
            struct.pack(">II", 1, len(msg)) + msg + b"\0\0\0\0")
    T.is_(frames[0].raw if frames else None, want,
          "bad-login Fail is byte-exact (code 1, text, empty references)")
    T.is_(frames[0].get("result") if frames else None, BAD_LOGIN,
          "bad-login message text")
    check_fail(T, [c.login(tplib.unique_name("nobody"), pw)], 1,
               "Login as an unknown user -> Fail 1", BAD_LOGIN)
    check_fail(T, [c.login("", pw)], 1, "Login with an empty user name -> "
               "Fail 1")
    check_fail(T, [c.login("@tp", pw)], 1, "Login with a user name empty "
               "after cutting at '@' -> Fail 1")
    check_fail(T, [c.login(name, "")], 1, "Login with an empty password -> "
               "Fail 1")
    check_fail(T, [c.login(name.upper() + "@tp", "wrong")], 1,
               "Login with another case and a wrong password -> Fail 1")

    f = c.login(name + "@tp", pw)
    check_okay(T, [f], "Login with name@tp -> Okay")
    for i in range(5):
        check_okay(T, [c.ping()], "Ping %d -> Okay" % (i + 1))

    check_time_remaining(c.call("GetTimeRemaining"), 4, "GetTimeRemaining",
                         player_id(name))
    check_games(c, "GetGames after login")

    # A second account logs in with another case of its name.
    c2 = SRV.client()
    check_okay(T, [c2.connect()], "second client: Connect")
    bob = tplib.unique_name("Bob")
    create(c2, bob, "pw2")
    check_okay(T, [c2.login(bob.lower(), "pw2")],
               "Login with the name in another case -> Okay")
    check_time_remaining(c2.call("GetTimeRemaining"), 4,
                         "GetTimeRemaining, second player", player_id(bob))
    c2.close()
    c.close()


def check_games(c, name):
    frames = c.request("GetGames")
    T.ok(len(frames) == 2 and frames[0].is_("Sequence") and
         frames[0].get("number") == 1 and frames[1].is_("Game"),
         "%s -> Sequence(1) + Game" % name, tplib._describe(frames))
    T.ok(all(f.seq == frames[0].seq for f in frames),
         "%s: both frames carry the request's sequence number" % name)
    if len(frames) != 2 or frames[1].fields is None:
        T.ok(False, "%s: Game frame decodes completely" % name,
             tplib._describe(frames))
        return
    g = frames[1]
    T.ok(True, "%s: Game frame decodes completely" % name)
    T.is_(g["name"], "tp", "Game name is the short name 'tp'")
    T.is_(g["key"], "", "Game key is empty towards clients")
    T.is_(g["tp"], ["0.3", "0.4"], "Game tp versions")
    T.is_(g["rule"], "MiniSec", "Game rule")
    T.ok(g["rulever"] != "", "Game rulever is set", repr(g["rulever"]))
    T.ok(g["server"] != "" and g["sertype"] != "",
         "Game server and sertype are set", repr((g["server"],
                                                   g["sertype"])))
    T.ok(any(x["port"] == SRV.port and x["type"] == "tp"
             for x in g["connections"]),
         "Game connections include tp on port %d" % SRV.port,
         repr(g["connections"]))
    params = {}
    for p in g["parameters"]:
        params.setdefault(p["id"], []).append(p)
    T.ok(all(len(v) == 1 for v in params.values()),
         "Game parameters: each id once", repr(g["parameters"]))
    T.ok(8 in params and params[8][0]["strval"] == "tp",
         "Game parameter 8 (short name) = 'tp'", repr(g["parameters"]))
    T.ok(7 in params and params[7][0]["strval"] == "Thousand Parsec game",
         "Game parameter 7 (long name) = default long name",
         repr(g["parameters"]))
    T.ok(1 in params and params[1][0]["intval"] == len(PLAYERS),
         "Game parameter 1 (players) = %d" % len(PLAYERS),
         repr(g["parameters"]))
    T.ok(9 in params and params[9][0]["intval"] == 0,
         "Game parameter 9 (turn) = 0", repr(g["parameters"]))
    T.is_(g["mediabase"], "", "Game mediabase (default empty)")


def test_states():
    """PROTOCOL.md 4: PRE, CONNECTED and READY."""
    c = SRV.client()
    check_fail(T, c.request("Login", {"username": "x", "password": "y"}), 0,
               "Login before Connect -> Fail 0", "first frame must be Connect")
    check_fail(T, c.request("Ping"), 0, "Ping before Connect -> Fail 0")
    check_fail(T, c.request("CreateAccount", {
        "username": "x", "password": "y", "email": "", "comment": ""}), 0,
        "CreateAccount before Connect -> Fail 0")
    check_fail(T, c.request("GetGames"), 0, "GetGames before Connect -> "
               "Fail 0")
    check_fail(T, c.request("GetObjectsByID", {"ids": [0]}), 0,
               "GetObjectsByID before Connect -> Fail 0")
    f = c.call("GetFeatures")
    T.ok(f.is_("Features"), "GetFeatures before Connect is answered",
         repr(f))
    check_fail(T, c.request("Ping"), 0, "GetFeatures leaves the connection "
               "in PRE: Ping -> Fail 0", "first frame must be Connect")
    check_okay(T, c.request("Connect", {"client": "states"}),
               "Connect after refused frames -> Okay")

    check_fail(T, c.request("GetObjectsByID", {"ids": [0]}), 1,
               "GetObjectsByID (5) after Connect, before login -> Fail 1")
    check_fail(T, c.request("FinishedTurn"), 1,
               "FinishedTurn before login -> Fail 1")
    check_okay(T, c.request("Ping"), "Ping in CONNECTED -> Okay")
    f = c.call("GetTimeRemaining")
    T.ok(f.is_("TimeRemaining") and f.fields is not None,
         "GetTimeRemaining in CONNECTED is answered", repr(f))
    frames = c.request("GetGames")
    T.ok(len(frames) == 2 and frames[1].is_("Game"),
         "GetGames in CONNECTED -> Sequence + Game", tplib._describe(frames))
    check_fail(T, c.request("Connect", {"client": "again"}), 1,
               "second Connect before login -> Fail 1")

    name = tplib.unique_name("carol")
    create(c, name, "pw")
    check_okay(T, [c.login(name, "pw")], "Login -> Okay")
    check_fail(T, c.request("Connect", {"client": "again"}), 1,
               "Connect after login -> Fail 1")
    check_fail(T, [c.create_account(tplib.unique_name("dave"), "pw")], 1,
               "CreateAccount after login -> Fail 1")
    check_fail(T, [c.login(name, "pw")], 1, "second Login after login -> "
               "Fail 1")
    check_okay(T, c.request("Ping"), "Ping still answered after refused "
               "frames")
    f = c.call("GetFeatures")
    T.ok(f.is_("Features"), "GetFeatures in READY is answered", repr(f))
    c.close()


def test_pipelining():
    c = SRV.client()
    name = tplib.unique_name("pipe")
    reqs = [
        (100, "Connect", {"client": "pipelined"}),
        (101, "CreateAccount", {"username": name, "password": "pw",
                                "email": "", "comment": ""}),
        (102, "Login", {"username": name + "@tp", "password": "pw"}),
        (103, "Ping", None),
        (104, "GetTimeRemaining", None),
        (105, "GetFeatures", None),
        (106, "GetGames", None),
        (0xFFFFFFFF, "Ping", None),
        (0, "Ping", None),
        (103, "Ping", None),
        (108, "Login", {"username": name, "password": "pw"}),
        (109, "Ping", None),
    ]
    data = b"".join(c.frame(n, f, seq=s)[1] for s, n, f in reqs)
    c.send_bytes(data)
    want = [(100, ["Okay"]), (101, ["Okay"]), (102, ["Okay"]),
            (103, ["Okay"]), (104, ["TimeRemaining"]), (105, ["Features"]),
            (106, ["Sequence", "Game"]), (0xFFFFFFFF, ["Okay"]),
            (0, ["Okay"]), (103, ["Okay"]), (108, ["Fail"]), (109, ["Okay"])]
    got = []
    try:
        for seq, names in want:
            frames = c.recv_reply(seq, 20)
            got.append((seq, [f.name for f in frames]))
    except Exception as e:
        got.append(("error", str(e)))
    T.is_(got, want, "12 requests in one write are answered in order with "
          "their sequence numbers (CreateAccount/Login deferred in between)")
    PLAYERS.append(name.lower())
    check_okay(T, [c.ping()], "connection still answers after the pipeline")
    c.close()


def test_split_writes():
    c = SRV.client()
    name = tplib.unique_name("split")
    frames = [c.frame("Connect", {"client": "one byte at a time"}),
              c.frame("CreateAccount", {"username": name, "password": "pw",
                                        "email": "", "comment": ""}),
              c.frame("Login", {"username": name, "password": "pw"}),
              c.frame("Ping")]
    data = b"".join(d for _, d in frames)
    for i in range(len(data)):
        c.send_bytes(data[i:i + 1])
        if i % 8 == 0:
            time.sleep(0.001)
    got = []
    for seq, _ in frames:
        got.append([f.name for f in c.recv_reply(seq, 20)])
    T.is_(got, [["Okay"]] * 4, "%d bytes sent one byte per write: Connect, "
          "CreateAccount, Login, Ping all answered Okay" % len(data))
    PLAYERS.append(name.lower())

    # A header cut in two with a pause in between, then the body later.
    seq, ping = c.frame("Ping")
    c.send_bytes(ping[:7])
    time.sleep(0.2)
    c.send_bytes(ping[7:])
    check_okay(T, c.recv_reply(seq), "Ping header split 7+9 bytes with a "
               "pause -> Okay")
    seq, d = c.frame("GetFeatures")
    c.send_bytes(d[:16])
    time.sleep(0.1)
    seq2, d2 = c.frame("CreateAccount", {"username": "x", "password": "y",
                                         "email": "", "comment": ""})
    c.send_bytes(d2[:20])
    T.ok(c.recv_reply(seq)[0].is_("Features"),
         "GetFeatures answered while the next frame is incomplete")
    time.sleep(0.1)
    c.send_bytes(d2[20:])
    check_fail(T, c.recv_reply(seq2), 1, "rest of a split CreateAccount "
               "(after login) -> Fail 1")
    c.close()


def test_padding():
    """SetFilters and the string padding filter (PROTOCOL.md 2.7, 7.2)."""
    c = SRV.client()
    check_okay(T, [c.connect()], "padding: Connect")
    check_okay(T, c.request("SetFilters", {"filters": []}),
               "SetFilters [] -> Okay")
    check_fail(T, c.request("SetFilters", {"filters": [0x1234]}), 2,
               "SetFilters with a filter not offered -> Fail 2")
    check_fail(T, c.request("SetFilters", {"filters": [0x1D00, 0x1000]}), 2,
               "SetFilters [0x1D00, 0x1000] -> Fail 2 (nothing switched on)")
    frames = c.request("GetGames")
    T.ok(len(frames) == 2 and frames[1].fields is not None,
         "after the refused SetFilters, replies are still unpadded",
         tplib._describe(frames))
    frames = c.request("SetFilters", {"filters": [0x1D00]})
    check_okay(T, frames, "SetFilters [0x1D00] -> Okay, itself unpadded")
    T.ok(c.pad, "(the client now pads its strings)")
    name = tplib.unique_name("pad")   # odd lengths need padding
    check_okay(T, [c.create_account(name + "x", "pw1")],
               "padded CreateAccount -> Okay")
    PLAYERS.append((name + "x").lower())
    seq = c.send("Login", {"username": name + "x", "password": "bad"})
    frames = c.recv_reply(seq, 20)
    msg = BAD_LOGIN.encode()
    want = (tplib.header(4, seq, 1, 4 + 4 + len(msg) + 2 + 4) +
            struct.pack(">II", 1, len(msg)) + msg + b"\0\0" + b"\0\0\0\0")
    T.is_(frames[0].raw if frames else None, want,
          "padded bad-login Fail is byte-exact (38-byte text + 2 zero bytes)")
    check_okay(T, [c.login(name + "x@tp", "pw1")], "padded Login -> Okay")
    frames = c.request("GetGames")
    T.ok(len(frames) == 2 and frames[1].fields is not None and
         frames[1]["name"] == "tp" and frames[1]["tp"] == ["0.3", "0.4"],
         "padded Game frame decodes completely with padding",
         tplib._describe(frames))
    f = c.call("GetTimeRemaining")
    T.ok(f.is_("TimeRemaining") and f.fields is not None,
         "padded TimeRemaining decodes", repr(f))
    check_okay(T, [c.ping()], "padded Ping -> Okay")
    c.close()


def test_tp03_session():
    with tplib.Server() as srv:
        c = srv.client(version=3)
        f = c.call("GetFeatures")
        T.is_(f.raw_header[:4], b"TP03", "TP03 GetFeatures before Connect: "
              "TP03 reply header")
        check_features(f, 3, "TP03 GetFeatures")
        f = c.connect("libtpproto-py/0.2.5 test")
        check_okay(T, [f], "TP03 Connect -> Okay")
        T.is_(f.raw_header[:4], b"TP03", "TP03 Okay has a TP03 header")
        name = tplib.unique_name("tpthree")
        check_okay(T, [c.create_account(name, "pw3")],
                   "TP03 CreateAccount -> Okay")
        check_fail(T, [c.create_account(name, "pw3")], 1,
                   "TP03 CreateAccount of a taken name -> Fail 1")
        seq = c.send("Login", {"username": name, "password": "bad"})
        frames = c.recv_reply(seq, 20)
        check_fail(T, frames, 1, "TP03 Login with a wrong password -> Fail 1",
                   BAD_LOGIN, version=3)
        msg = BAD_LOGIN.encode()
        T.is_(frames[0].raw if frames else None,
              tplib.header(3, seq, 1, 8 + len(msg)) +
              struct.pack(">II", 1, len(msg)) + msg,
              "TP03 Fail: u32 code + string, no reference list (exact bytes)")
        check_okay(T, [c.login(name, "pw3")], "TP03 Login -> Okay")
        for i in range(3):
            check_okay(T, [c.ping()], "TP03 Ping %d -> Okay" % (i + 1))
        check_time_remaining(c.call("GetTimeRemaining"), 3,
                             "TP03 GetTimeRemaining")
        for frame in ("GetGames", "SetFilters"):
            fields = {"filters": []} if frame == "SetFilters" else None
            seq = c.send(tplib.TYPE[frame], body=tplib.encode_body(
                4, tplib.TYPE[frame], fields))
            frames = c.recv_reply(seq)
            check_fail(T, frames, 1, "TP03 %s (TP04-only frame) -> Fail 1" %
                       frame, version=3)
            f = frames[0] if frames else None
            if f is not None and f.fields is not None:
                T.is_(len(f.body), 8 + len(f["result"].encode()),
                      "TP03 Fail to %s: body is u32 code + string, exact "
                      "length" % frame)
        bad = []
        for t in range(64, 78):
            frames = c.request(t, body=b"")
            if not (len(frames) == 1 and frames[0].is_("Fail") and
                    frames[0].fields is not None and
                    frames[0]["code"] == 1 and frames[0].version == 3):
                bad.append("type %d: %r" % (t, frames))
        T.ok(not bad, "TP03: every TP04-only frame type 64-77 -> Fail 1",
             "\n".join(bad))
        # A TP04 header on a TP03 connection.
        seq, data = c.frame("Ping", version=4)
        c.send_bytes(data)
        frames = c.recv_reply(seq)
        check_fail(T, frames, 0, "TP04 header on a TP03 connection -> Fail 0",
                   version=3)
        check_okay(T, [c.ping()], "TP03 connection still answers after that")
        # FinishedTurn is accepted on TP03 (PROTOCOL.md 4); pushes that it
        # causes are TP03 TimeRemaining frames with the time only.
        check_okay(T, c.request("FinishedTurn"), "TP03 FinishedTurn -> Okay")
        check_okay(T, [c.ping()], "TP03 Ping after FinishedTurn")
        try:
            while True:
                c.async_frames.append(c.recv_frame(0.3))
        except tplib.Timeout:
            pass
        pushes = c.async_frames
        T.ok(pushes and all(f.version == 3 and f.is_("TimeRemaining") and
                            len(f.body) == 4 for f in pushes),
             "TP03 FinishedTurn of the only player ends the turn: pushes "
             "are TP03 TimeRemaining frames (time only, sequence 0)",
             repr(pushes))
        T.ok(pushes and pushes[0].get("time") == 0 and
             (len(pushes) < 2 or 0 < pushes[-1].get("time") <= 600),
             "TP03 pushes: time 0 at the end of turn, then the new timer",
             repr(pushes))
        c.close()
        T.is_(srv.stop(), 0, "TP03 server: SIGTERM -> exit code 0")


def test_stop():
    T.is_(SRV.stop(), 0, "SIGTERM -> exit code 0")


def start():
    global SRV
    SRV = tplib.Server().start()


if __name__ == "__main__":
    tplib.main(start, test_tp04_session, test_states, test_pipelining,
               test_split_writes, test_padding, test_tp03_session, test_stop)
