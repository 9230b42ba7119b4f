#!/usr/bin/env python3
"""A Lua error in a handler becomes a Fail for that request only
(STYLE.md 4, ARCHITECTURE.md): error(), error(nil), error({}), an error
object whose __tostring raises, a reply that cannot be encoded, a reply over
the frame limit, a half-built multi-frame answer, and tp.fail.raise with
references. After each, the same connection still answers Ping, and the log
has the traceback. The server is tests/fixtures/faulty_server.lua: the real
boot sequence with a GetResource handler that misbehaves on purpose."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from tplib import check_fail, check_okay  # noqa: E402

T = tplib.Tap()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class FaultyServer(tplib.Server):
    def command(self):
        return [tplib.tpserver_path(), "script",
                os.path.join(ROOT, "tests", "fixtures", "faulty_server.lua"),
                str(self.port), self.data_dir]


CASES = [
    (1, 3, "internal error #", "error('plain message')"),
    (2, 3, "internal error #", "error(nil)"),
    (3, 3, "internal error #", "error({})"),
    (4, 3, "internal error #", "error object with a raising __tostring"),
    (5, 3, "internal error #", "reply frame missing a field"),
    (6, 4, "no such resource 6", "tp.fail.raise with references"),
    (7, 8, "reply too large", "reply over the frame limit"),
    (8, 3, "internal error #", "Sequence then a frame that cannot encode"),
]


def main():
    srv = FaultyServer().start()
    try:
        c = srv.client()
        check_okay(T, [c.connect()], "Connect")
        name = tplib.unique_name("Faulty")
        check_okay(T, [c.create_account(name, "pw")], "CreateAccount")
        check_okay(T, [c.login(name, "pw")], "Login")
        texts = []
        for n, code, text, what in CASES:
            frames = c.request("GetResource", {"ids": [n]})
            texts.append(str(frames[0].get("result", "")))
            T.ok(len(frames) == 1,
                 "%s: exactly one frame answers (no half answer)" % what,
                 repr(frames))
            check_fail(T, frames, code, "%s: Fail code %d" % (what, code),
                       text=text)
            if n == 6:
                refs = frames[0].get("references")
                T.ok(refs == [{"type": 6, "id": 6}],
                     "tp.fail.raise references reach the client", repr(refs))
            check_okay(T, [c.ping()], "%s: the connection still answers Ping"
                       % what)
        fresh = srv.client()
        check_okay(T, [fresh.connect()], "a fresh client is served after all")
        log = srv.log()
        T.ok("stack traceback" in log, "tracebacks are logged")
        T.ok("faulty_server.lua:" in log, "the log names the file and line")
        T.ok(log.count("internal error #") >= 6,
             "each bug is logged with its number")
        seen = " ".join(texts)
        T.ok("plain message" not in seen and "traceback" not in seen
             and ".lua" not in seen,
             "clients never see error texts or tracebacks", seen)
    finally:
        rc = srv.stop()
    T.ok(rc == 0, "the server stops cleanly on SIGTERM", "exit %s" % rc)


main()
T.done()
