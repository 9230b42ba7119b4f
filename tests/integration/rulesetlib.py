"""Helpers of the ruleset tests over real sockets (test_rfts.py,
test_risk.py, test_tae.py), next to tplib:

* MT: the tests' own MT19937 (init_genrand, genrand_int32) with the
  notes' range() and real1() (minisec.md 1), written apart from the
  server's so that a test computes the draws it expects;
* Client: one player's TP04 connection (a new account, or a login to
  one) with the requests these tests make, answers decoded."""

import time

from test_protocol import ORDER_PARAM, encode_params, object_values


class MT:
    """MT19937 (init_genrand, genrand_int32) and range() of the notes."""

    def __init__(self, seed):
        self.mt = [seed & 0xFFFFFFFF]
        for i in range(1, 624):
            p = self.mt[-1]
            self.mt.append((1812433253 * (p ^ (p >> 30)) + i) & 0xFFFFFFFF)
        self.i = 624

    def int32(self):
        mt = self.mt
        if self.i >= 624:
            for k in range(624):
                y = (mt[k] & 0x80000000) | (mt[(k + 1) % 624] & 0x7FFFFFFF)
                v = mt[(k + 397) % 624] ^ (y >> 1)
                mt[k] = v ^ 0x9908B0DF if y & 1 else v
            self.i = 0
        y = mt[self.i]
        self.i += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        return y ^ (y >> 18)

    def range(self, lo, hi):
        """range(lo, hi): truncated toward zero, as the C++ converts."""
        return int(self.int32() / 4294967296.0 * (hi - lo + 1) + lo)

    def real1(self):
        return self.int32() / 4294967295.0


class Client:
    """A player's TP04 connection (a new account, or a login to one)."""

    def __init__(self, srv, name, create=True, client="ruleset-test/1.0"):
        self.name = name
        self.c = srv.client(4)
        self.c.connect(client)
        if create:
            f = self.c.create_account(name, "pw-" + name)
            if not f.is_("Okay"):
                raise RuntimeError("CreateAccount: %r" % f)
        f = self.c.login(name, "pw-" + name)
        if not f.is_("Okay"):
            raise RuntimeError("Login: %r" % f)
        self.id = self.c.request("GetPlayer", {"ids": [0]})[1]["id"]
        self.descs = {}
        self.odescs = {}
        self.designs = {}
        self.seen = 0

    def req(self, name, fields=None):
        return self.c.request(name, fields)

    def call(self, name, fields=None):
        return self.c.call(name, fields)

    def get(self, name, ids):
        return self.req(name, {"ids": ids})[1:]

    def desc(self, otype):
        if otype not in self.descs:
            self.descs[otype] = self.get("GetObjectDesc", [otype])[0]
        return self.descs[otype]

    def odesc(self, otype):
        if otype not in self.odescs:
            self.odescs[otype] = self.get("GetOrderDesc", [otype])[0]
        return self.odescs[otype]

    def design(self, did):
        if did not in self.designs:
            self.designs[did] = self.get("GetDesign", [did])[0]
        return self.designs[did]

    def objects(self):
        """{id: values} of every object the player sees: the parameter
        values by name plus _frame (the Object frame)."""
        f = self.call("GetObjectIDs", {"key": -1, "start": 0, "amount": -1,
                                       "from": -1})
        ids = [m["id"] for m in f["modtimes"]]
        out = {}
        for fr in self.get("GetObjectsByID", ids):
            v = object_values(self.desc(fr["otype"]), fr)
            v["_frame"] = fr
            out[fr["id"]] = v
        return out

    def sees(self, oid):
        frames = self.req("GetObjectsByID", {"ids": [oid]})
        return len(frames) == 2 and frames[1].is_("Object")

    def insert(self, oid, otype, values):
        types = [p["type"] for p in self.odesc(otype)["parameters"]]
        params = encode_params(ORDER_PARAM, types, values)
        return self.req("OrderInsert", {
            "id": oid, "slot": -1, "otype": otype, "turns": 0,
            "resources": [], "params": params.decode("utf-8",
                                                     "surrogateescape")})[0]

    def new_messages(self):
        """(subject, body, turn) of the messages since the last call."""
        board = self.get("GetBoards", [0])[0]
        n = board["messages"]
        out = []
        if n > self.seen:
            frames = self.req("GetMessage", {
                "id": board["id"], "slots": list(range(self.seen, n))})[1:]
            out = [(f["subject"], f["body"], f["turn"]) for f in frames]
        self.seen = n
        return out

    def allowed(self, oid):
        return sorted(self.get("GetOrderQueue", [oid])[0]["ordertypes"])

    def close(self):
        self.c.close()


def refused(f, words=None):
    """Whether f is a Fail (whose text has words)."""
    return f.is_("Fail") and (words is None or words in f["result"])


def view(c):
    """What a player sees, comparable between servers (no modtimes)."""
    out = {}
    for oid, v in c.objects().items():
        fr = v["_frame"]
        out[oid] = (fr["name"], fr["parent"], tuple(sorted(fr["contains"])),
                    fr["params"])
    return out


def finish(players):
    """Every player's FinishedTurn; the ones not answered Okay."""
    bad = []
    for p in players:
        r = p.call("FinishedTurn")
        if not r.is_("Okay"):
            bad.append("%s: %r" % (p.name, r))
    return bad


def wait_turn(p, turn):
    """Waits until the server is at turn; its TimeRemaining."""
    for _ in range(300):
        t = p.call("GetTimeRemaining")
        if t["turn"] == turn:
            return t
        time.sleep(0.02)
    return p.call("GetTimeRemaining")
