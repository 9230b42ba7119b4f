#!/usr/bin/env python3
"""The control UI (/admin, docs/admin-ui.md) in a real browser: headless
Chromium driven by Selenium against a real server with an admin account,
and players made and connected over TP in the same game.

1. the game's page links to /admin (api/game admin_ui); /admin shows the
   login; a wrong password is refused and said so; the right one opens
   the dashboard: the turn, a countdown that runs, the ruleset;
2. the connected TP clients listed with their player names; "kick" on
   one asks first (a dialog saying what will happen, Cancel does
   nothing), then the TP socket is closed and the row goes;
3. "End turn now" (confirmed): the other TP client gets the turn push,
   the page's turn number advances without a reload, the log pane shows
   the server's "turn N ended by web admin root (...)" line, its level
   filter hides the info lines, the turn chart has a bar;
4. the Lua console pane: turn.number() answered, an error shown as one,
   the history on the arrow keys;
5. a broadcast from the page on the TP player's board; a player added
   from the page, given a new password through the dialog, banned,
   unbanned and removed, each checked by logging in over TP; pause and
   resume, turn length and mode; a backup shown running then done; the
   load charts drawn from the samples; the audit trail, newest first;
6. a reload of the page keeps the session; the dashboard on a phone-sized
   screen (one column, nothing wider than the screen); a request
   refused with 401 brings the login back; logging out; "Stop server"
   (confirmed) stops the server cleanly.

A screenshot of each step goes to $TEST_OUTPUT_DIR (default
build/test-output/admin/); each path is printed in a '#' line. Chromium,
chromium-driver and python3-selenium are needed: without them the test
fails saying so ("make deps" installs them)."""

import base64
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import tplib  # noqa: E402
import weblib  # noqa: E402
from weblib import Keys, Select  # noqa: E402

weblib.use_system_python()

T = tplib.Tap()
WEB = weblib.WEB
PW = "secret pw"
ADMIN = "root"
ADMIN_PW = "browser-adm1n-%d" % os.getpid()
OUT = os.environ.get("TEST_OUTPUT_DIR") or os.path.join(
    tplib.ROOT, "build", "test-output", "admin")
SLOW = 4.0 if tplib.under_asan() else 1.0

SRV = None          # the server
BROWSER = None
BOB = None          # a TP player, kicked from the page
CAROL = None        # a TP player who stays connected
ST = {}             # what the tests learn and pass on


# ------------------------------------------------------------ server


def hash_password(pw):
    p = subprocess.run([tplib.tpserver_path(), "console", "--hash-password"],
                       input=(pw + "\n").encode(), capture_output=True,
                       timeout=60)
    if p.returncode != 0:
        raise RuntimeError("tpserver console --hash-password failed: %s"
                           % p.stderr.decode())
    return p.stdout.decode().strip()


def admin_server():
    """A server with the web listener and the admin account root."""
    srv = tplib.Server(port_flags=[WEB])
    cfg = os.path.join(srv.tmp, "extra.lua")
    with open(cfg, "w") as f:
        f.write('return { admins = { { name = "%s", password_hash = "%s" '
                '} } }\n' % (ADMIN, hash_password(ADMIN_PW)))
    srv.extra += ["-c", cfg]
    return srv


class TpPlayer:
    """A player made and logged in over TP."""

    def __init__(self, srv, prefix, name=None, create=True, password=PW):
        self.name = name or tplib.unique_name(prefix)
        self.c = srv.client()
        self.c.connect()
        if create:
            self.c.create_account(self.name, password)
        f = self.c.login(self.name, password)
        self.login_frame = f
        if create and not f.is_("Okay"):
            raise AssertionError("TP login of %s: %r" % (self.name, f))


def tp_login(srv, name, password):
    """Whether name/password logs in over TP (a fresh connection)."""
    c = srv.client()
    try:
        c.connect()
        return c.login(name, password).is_("Okay")
    finally:
        c.close()


def pushes_until(c, pred, timeout=15.0):
    """Sequence-0 frames c receives until pred(frame) holds: the frames,
    the matching one (or None)."""
    seen = list(c.async_frames)
    c.async_frames = []
    for f in seen:
        if pred(f):
            return seen, f
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        try:
            f = c.recv_frame(timeout=max(0.1, deadline - time.monotonic()))
        except tplib.Timeout:
            break
        seen.append(f)
        if pred(f):
            return seen, f
    return seen, None


def board_messages(c):
    """(subject, body) of every message on the client's own board."""
    board = c.request("GetBoards", {"ids": [0]})[1]
    n = board["messages"]
    frames = c.request("GetMessage", {"id": board["id"],
                                      "slots": list(range(n))})
    return [(f["subject"], f["body"]) for f in frames[1:] if f.fields]


# ------------------------------------------------------------ browser


class Browser(weblib.Browser):
    """The control UI in headless Chromium; waits longer under a
    sanitizer."""

    # 401 without a session and for the wrong password, 409 and 422 of
    # refused commands.
    expected_statuses = (401, 409, 422)

    def __init__(self, name, size=(1400, 1000)):
        super().__init__(name, size, OUT, SLOW)

    def view(self):
        return self.js("return document.body.dataset.view")

    def click(self, selector, timeout=10):
        """Clicks the element (waiting for it to be there and enabled)."""
        def go():
            e = self.css(selector)
            if not e.is_displayed() or not e.is_enabled():
                return False
            e.click()
            return True
        return self.wait(go, timeout)

    def result_seq(self):
        return int(self.js("return document.getElementById('action-result')"
                           ".dataset.seq || '0'"))

    def wait_result(self, after, timeout=20):
        """The text of the result line once a result newer than `after`
        is shown."""
        return self.wait(lambda: self.result_seq() > after and
                         self.shown("action-result") and
                         self.text("action-result-text"), timeout)

    def dialog_open(self):
        return self.js("return document.getElementById('confirm-dialog')"
                       ".open")

    def diag(self):
        res = self.text("action-result-text") or ""
        return "view %r, result line: %r\nbrowser console (last lines):\n%s" \
            % (self.view(), res, self.console_tail())

    def full_shot(self, step, mobile=False):
        """A screenshot of the whole page: the viewport made as tall as
        the page for the time of the shot."""
        path = self._path(step)
        width = self.js("return window.innerWidth")
        height = self.js("return window.innerHeight")
        full = self.js("return document.documentElement.scrollHeight")
        try:
            self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": min(full, 8000),
                "deviceScaleFactor": 1, "mobile": mobile})
            time.sleep(0.4)
            r = self.d.execute_cdp_cmd("Page.captureScreenshot",
                                       {"format": "png"})
            with open(path, "wb") as f:
                f.write(base64.b64decode(r["data"]))
            sys.stdout.write("# screenshot: %s\n" % path)
        except Exception as e:
            sys.stdout.write("# screenshot %s failed: %s\n" % (path, e))
        finally:
            self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1,
                "mobile": mobile})
            time.sleep(0.3)
        sys.stdout.flush()
        return path

    def scroll_to(self, id_):
        self.js("document.getElementById(arguments[0]).scrollIntoView("
                "{block: 'start'});", id_)
        time.sleep(0.2)


def base(srv):
    return "http://127.0.0.1:%d" % srv.ports[WEB]


def check(cond, name, b=None, extra=None):
    diag = []
    if extra:
        diag.append(str(extra))
    if b is not None and not cond:
        diag.append(b.diag())
    return T.ok(cond, name, "\n".join(diag) if diag else None)


def client_rows(b):
    return b.js("return [...document.querySelectorAll('#clients tr')]"
                ".map(r => ({id: r.dataset.id, player: r.dataset.player, "
                "kind: r.dataset.kind, cells: [...r.cells].map(c => "
                "c.textContent), kick: !!r.querySelector("
                "'button[data-do=kick]')}))") or []


def page_turn(b):
    t = b.js("return document.getElementById('turn-number').dataset.turn")
    return int(t) if t and t.isdigit() else None


def confirm(b, ok=True, timeout=10):
    """Answers the confirmation dialog; returns the text it showed."""
    if not b.wait(b.dialog_open, timeout):
        return None
    text = b.text("confirm-text")
    b.el("confirm-ok" if ok else "confirm-cancel").click()
    b.wait(lambda: not b.dialog_open(), 5)
    return text


# ------------------------------------------------------------ 1: login


def test_link_on_game_page():
    b = BROWSER
    ready = b.open(base(SRV) + "/")
    check(ready, "the game's page loads", b)
    link = b.wait(lambda: b.shown("admin-link") and
                  b.el("admin-link").get_attribute("href"), 10)
    check(link and link.endswith("/admin"), "the game's page links to "
          "/admin when the server has an admin account", b, repr(link))
    b.shot("0-game-page")


def test_login():
    b = BROWSER
    ready = b.open(base(SRV) + "/admin")
    check(ready, "/admin loads (admin.js ran: body data-ready)", b)
    check(b.view() == "login" and b.shown("login-form") and
          not b.shown("dash"), "without a session: the login form, no "
          "dashboard", b)
    b.shot("1-login")

    b.el("login-name").send_keys(ADMIN)
    b.el("login-password").send_keys("not the password")
    b.el("login-btn").click()
    err = b.wait(lambda: b.shown("login-error") and b.text("login-error"),
                 20)
    check(err and "401" in err and "wrong" in err.lower(), "a wrong "
          "password: refused, and the form says so", b, repr(err))
    check(b.view() == "login", "still on the login form", b)
    check(b.wait(lambda: 'web admin login failed as "%s"' % ADMIN in
                 SRV.log(), 5),
          "the server logged the failed login", None, SRV.log_tail(10))
    b.shot("2-login-refused")

    b.set_value("login-password", ADMIN_PW)
    b.el("login-btn").click()
    dash = b.wait(lambda: b.view() == "dash" and
                  b.js("return !!document.body.dataset.loaded"), 30)
    check(dash, "the right password: the dashboard", b)
    if not dash:
        return
    ST["logged_in"] = True
    check(b.text("admin-name") == ADMIN, "the admin's name is shown", b,
          repr(b.text("admin-name")))
    check(b.wait(lambda: b.js("return window.tpAdmin.live()"), 10),
          "the live event stream is open", b)
    turn = page_turn(b)
    check(turn == 0, "the turn number is shown (0)", b,
          repr(b.text("turn-number")))
    rs = b.text("game-ruleset") or ""
    check("MiniSec" in rs, "the ruleset is shown", b, repr(rs))
    info = b.text("turn-info") or ""
    check("10:00" in info, "the turn mode and length are shown", b,
          repr(info))
    waiting = b.text("waiting-for") or ""
    check(BOB.name in waiting and CAROL.name in waiting,
          "the players still to finish are named", b, repr(waiting))

    def seconds():
        s = b.js("return document.getElementById('countdown')"
                 ".dataset.seconds")
        return int(s) if s else None
    s0 = b.wait(seconds, 5)
    time.sleep(2.3)
    s1 = seconds()
    check(s0 is not None and s1 is not None and 1 <= s0 - s1 <= 4 and
          ":" in (b.text("countdown") or ""),
          "the countdown ticks down by itself", b,
          "before %r, after %r (%r)" % (s0, s1, b.text("countdown")))
    b.shot("3-dashboard")
    b.full_shot("3-dashboard-full")
    b.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# ------------------------------------------------------------ 2: clients


def test_clients_and_kick():
    b = BROWSER
    if not ST.get("logged_in"):
        return

    def rows_of(name):
        return [r for r in client_rows(b) if r["player"] == name]
    bob = b.wait(lambda: rows_of(BOB.name), 10)
    check(bob and len(bob) == 1 and bob[0]["kind"] == "tp" and
          "TP04" in bob[0]["cells"] and bob[0]["kick"],
          "the TP client is listed with its player's name, protocol and "
          "a kick button", b, repr(client_rows(b)))
    if not bob:
        return
    cells = bob[0]["cells"]
    check(re.match(r"^\d+ (s|min)$", cells[8] or "") and
          cells[6] == "no" and cells[3].startswith("127.0.0.1:"),
          "its peer, TLS no, idle time in words", b, repr(cells))
    mine = [r for r in client_rows(b) if r["player"] == "admin " + ADMIN]
    check(mine and not mine[0]["kick"], "the page's own connection is "
          "listed as the admin's, without a kick button", b,
          repr(client_rows(b)))

    sel = '#clients tr[data-player="%s"] button[data-do="kick"]' % BOB.name
    # Cancel first: nothing happens.
    seq = b.result_seq()
    b.click(sel)
    text = confirm(b, ok=False)
    check(text == "Kick %s: close their 1 connection. They may log in "
          "again." % BOB.name, "kick asks first, saying what it does", b,
          repr(text))
    res = b.wait_result(seq, 5)
    check(res and "cancelled" in res, "Cancel: nothing done, and the "
          "result line says so", b, repr(res))
    still = BOB.c.recv_available(0.5)
    check(not BOB.c.eof, "after Cancel the TP client is still connected",
          None, repr(still))

    seq = b.result_seq()
    b.click(sel)
    check(b.wait(b.dialog_open, 5), "the confirmation dialog is open", b)
    b.shot("4-kick-confirm")
    confirm(b, ok=True)
    data, closed = BOB.c.read_until_close(10 * SLOW)
    check(closed, "confirmed: the kicked TP client's connection is "
          "closed by the server", None, repr(data[:200]))
    res = b.wait_result(seq, 10)
    check(res and 'kick("%s") → 1' % BOB.name in res,
          "the result line shows the answer (1 connection)", b, repr(res))
    gone = b.wait(lambda: not rows_of(BOB.name), 10)
    check(gone, "the kicked client leaves the list (live, no reload)", b,
          repr(client_rows(b)))
    check(rows_of(CAROL.name), "the other TP client is still listed", b)
    check(b.wait(lambda: "kicked by web admin %s (127.0.0.1:" % ADMIN in
                 SRV.log(), 5),
          "the server's log names the web admin", None, SRV.log_tail(10))
    b.shot("5-kicked")


# ------------------------------------------------------------ 3: the turn


def test_end_turn_and_log():
    b = BROWSER
    if not ST.get("logged_in"):
        return
    turn0 = page_turn(b)
    CAROL.c.async_frames = []
    seq = b.result_seq()
    b.click("#btn-end-turn")
    text = confirm(b, ok=True)
    check(text and text.startswith("End turn %s now:" % turn0) and
          "turn %d" % (turn0 + 1) in text, "End turn asks first, naming "
          "the turn", b, repr(text))
    frames, push = pushes_until(
        CAROL.c, lambda f: f.is_("TimeRemaining") and f.fields and
        f["turn"] == turn0 + 1, 20)
    check(push is not None, "the connected TP client gets the new turn's "
          "TimeRemaining push", None, repr(frames))
    new = b.wait(lambda: page_turn(b) == turn0 + 1, 15)
    check(new, "the page's turn number advances (live, no reload)", b,
          "page %r" % b.text("turn-number"))
    res = b.wait_result(seq, 10)
    check(res and "turn.now() → %d" % (turn0 + 1) in res,
          "the result line shows the new turn", b, repr(res))
    b.shot("6-turn-ended")

    want = "turn %d ended by web admin %s (127.0.0.1:" % (turn0, ADMIN)
    line = b.wait(lambda: b.js(
        "return [...document.querySelectorAll('#log .line')]"
        ".map(l => l.textContent).find(t => t.includes(arguments[0]))",
        want), 10)
    check(line and " info " in line and " admin " in line,
          "the log pane shows the end of turn line, with its level and "
          "module", b, repr(line))
    ok_follow = b.js("const l = document.getElementById('log');"
                     "return l.scrollHeight - l.scrollTop - l.clientHeight"
                     " < 30")
    check(ok_follow, "the log pane follows the newest lines", b)
    b.scroll_to("log-card")
    b.shot("7-log")

    # The level filter: warnings and up hides the info lines.
    Select(b.el("log-level")).select_by_value("warning")

    def visible(level):
        return b.js("return [...document.querySelectorAll("
                    "'#log .line.lv-' + arguments[0])].filter(l => "
                    "l.getClientRects().length > 0).length", level)
    check(visible("info") == 0 and visible("warning") >= 1,
          "filter 'warnings and up': the info lines are hidden, the "
          "failed login's warning stays", b,
          "info %r, warning %r" % (visible("info"), visible("warning")))
    b.shot("7-log-warnings")
    Select(b.el("log-level")).select_by_value("info")
    check(visible("info") > 0, "back to 'info and up': the info lines "
          "again", b)

    bars = b.wait(lambda: int(b.el("chart-turns").get_attribute(
        "data-points") or 0) >= 1, 10)
    check(bars, "the turn chart has the turn's bar", b)


# ------------------------------------------------------------ 4: console


def console_run(b, code, timeout=15):
    n = b.js("return document.querySelectorAll('#console-output .entry')"
             ".length")
    b.set_value("console-input", code)
    b.el("console-input").send_keys(Keys.ENTER)
    return b.wait(lambda: b.js(
        "const e = document.querySelectorAll('#console-output .entry');"
        "const x = e[e.length - 1];"
        "if (e.length <= arguments[0] || x.classList.contains('running'))"
        "  return null;"
        "const t = (c) => { const p = x.querySelector(c); "
        "  return p ? p.textContent : null; };"
        "return {code: t('.code'), output: t('.output'), result: "
        "t('.result'), error: t('.error'), cls: [...x.querySelectorAll"
        "('pre')].map(p => p.className)};", n), timeout)


def test_console():
    b = BROWSER
    if not ST.get("logged_in"):
        return
    b.scroll_to("console-card")
    want = str(page_turn(b))
    e = console_run(b, "turn.number()")
    check(e and e["code"] == "turn.number()" and e["result"] == want and
          not e["error"], "the console pane answers turn.number() (%s)"
          % want, b, repr(e))
    e = console_run(b, 'x = 20; print("hello from the page"); return x + 1')
    check(e and e["output"] and "hello from the page" in e["output"] and
          e["result"] == "21", "what print wrote, then the value", b,
          repr(e))
    e = console_run(b, "return x * 2")
    check(e and e["result"] == "40", "a global stays for the next line "
          "(the session's own environment)", b, repr(e))
    e = console_run(b, 'error("boom from the page")')
    check(e and e["error"] and "boom from the page" in e["error"] and
          "error" in e["cls"], "an error is shown, styled as one", b,
          repr(e))
    inp = b.el("console-input")
    inp.send_keys(Keys.ARROW_UP)
    up1 = inp.get_attribute("value")
    inp.send_keys(Keys.ARROW_UP)
    up2 = inp.get_attribute("value")
    inp.send_keys(Keys.ARROW_DOWN)
    down = inp.get_attribute("value")
    check(up1 == 'error("boom from the page")' and up2 == "return x * 2"
          and down == up1, "↑ and ↓ walk the history", b,
          repr((up1, up2, down)))
    b.set_value("console-input", "")
    b.shot("8-console")


# ------------------------------------------------------------ 5: controls


def test_broadcast():
    b = BROWSER
    if not ST.get("logged_in"):
        return
    b.scroll_to("server-card")
    subject = "News from the page %d" % os.getpid()
    b.set_value("broadcast-subject", subject)
    b.set_value("broadcast-body", "Hello, every player.")
    seq = b.result_seq()
    b.el("broadcast-btn").click()
    res = b.wait_result(seq, 15)
    check(res and res.startswith("broadcast(") and res.endswith("→ 2"),
          "the broadcast's answer: 2 players got it", b, repr(res))
    msgs = board_messages(CAROL.c)
    check((subject, "Hello, every player.") in msgs, "the message is on "
          "the TP player's board", None, repr(msgs))
    check(b.el("broadcast-subject").get_attribute("value") == "",
          "the form is cleared after sending", b)
    b.shot("9-broadcast")


def test_players():
    b = BROWSER
    if not ST.get("logged_in"):
        return
    name = tplib.unique_name("dave")
    b.scroll_to("players-card")
    b.set_value("add-name", name)
    b.set_value("add-password", "first pw")
    b.set_value("add-email", "dave@example.org")
    seq = b.result_seq()
    b.el("add-btn").click()
    res = b.wait_result(seq, 20)
    check(res and res.startswith('add_player("%s", "***"' % name),
          "add a player: the call shown without the password", b, repr(res))
    row = b.wait(lambda: b.js(
        "const r = document.querySelector('#players tr[data-player=\"' + "
        "arguments[0] + '\"]'); return r ? r.textContent : null;", name), 10)
    check(row and "dave@example.org" in row, "the new player is listed "
          "(live)", b, repr(row))
    check(tp_login(SRV, name, "first pw"), "the new player logs in over "
          "TP", None)

    sel = '#players tr[data-player="%s"] button[data-do="reset_password"]' \
        % name
    seq = b.result_seq()
    b.click(sel)
    check(b.wait(lambda: b.dialog_open() and b.shown("confirm-input"), 5),
          "reset password: the dialog asks for the new one", b)
    text = b.text("confirm-text")
    check(text and text.startswith("Give %s a new password" % name),
          "and says what will happen", b, repr(text))
    b.el("confirm-ok").click()
    err = b.wait(lambda: b.shown("confirm-error") and b.dialog_open(), 5)
    check(err, "an empty password is not sent: the dialog stays open", b)
    b.el("confirm-input").send_keys("second pw")
    b.shot("10-reset-password")
    b.el("confirm-ok").click()
    res = b.wait_result(seq, 20)
    check(res and "password changed" in res and "second pw" not in res,
          "the password is changed (and not shown)", b, repr(res))
    check(not tp_login(SRV, name, "first pw") and
          tp_login(SRV, name, "second pw"),
          "over TP: the old password refused, the new one taken", None)
    audit = b.js("return document.getElementById('audit').textContent")
    check("second pw" not in audit and "first pw" not in audit,
          "no password in the audit list", b)

    def row(attr):
        return b.js("const r = document.querySelector('#players "
                    "tr[data-player=\"' + arguments[0] + '\"]');"
                    "return r ? r.dataset[arguments[1]] : null;", name, attr)

    # Ban (asks first), then unban (does not).
    b.click('#players tr[data-player="%s"] button[data-do="ban"]' % name)
    text = confirm(b, ok=True)
    check(text and text.startswith("Ban %s:" % name), "ban asks first",
          b, repr(text))
    check(b.wait(lambda: row("banned") == "true", 10), "the player is "
          "shown banned", b)
    check(not tp_login(SRV, name, "second pw"), "a banned player's TP "
          "login is refused", None)
    seq = b.result_seq()
    b.click('#players tr[data-player="%s"] button[data-do="unban"]' % name)
    res = b.wait_result(seq, 10)
    check(res and "→ unbanned" in res and not b.dialog_open() and
          b.wait(lambda: row("banned") == "false", 10),
          "unban: at once, no question", b, repr(res))
    check(tp_login(SRV, name, "second pw"), "and the TP login works "
          "again", None)

    # Remove (asks first).
    b.click('#players tr[data-player="%s"] button[data-do="remove_player"]'
            % name)
    text = confirm(b, ok=True)
    check(text and text.startswith("Remove %s: delete their account" %
                                   name), "remove asks first", b, repr(text))
    check(b.wait(lambda: row("id") is None, 10), "the removed player "
          "leaves the list", b)
    check(not tp_login(SRV, name, "second pw"), "a removed player cannot "
          "log in", None)


def test_pause_resume():
    b = BROWSER
    if not ST.get("logged_in"):
        return
    b.js("window.scrollTo(0, 0)")
    seq = b.result_seq()
    b.click("#btn-pause")
    res = b.wait_result(seq, 10)
    paused = b.wait(lambda: b.shown("paused-badge") and
                    not b.shown("countdown"), 10)
    check(res and "→ paused" in res and paused, "Pause: the turns are "
          "held, the header says so (a badge for the countdown)", b,
          repr(res))
    check(b.el("btn-resume").is_enabled() and
          not b.el("btn-pause").is_enabled(), "then only Resume can be "
          "pressed", b)
    b.shot("11-paused")
    seq = b.result_seq()
    b.click("#btn-resume")
    res = b.wait_result(seq, 10)
    running = b.wait(lambda: not b.shown("paused-badge") and
                     b.shown("countdown") and
                     ":" in (b.text("countdown") or ""), 10)
    check(res and "→ resumed" in res and running, "Resume: the countdown "
          "runs again", b, repr(res))

    # Turn length and mode.
    b.set_value("turn-length", 900)
    seq = b.result_seq()
    b.el("btn-turn-length").click()
    res = b.wait_result(seq, 10)
    check(res and "turn.length(900) → 900" in res and b.wait(
        lambda: "15:00" in (b.text("turn-info") or ""), 10),
        "turn length set from the page", b, repr(res))
    Select(b.el("turn-mode")).select_by_value("manual")
    seq = b.result_seq()
    b.el("btn-turn-mode").click()
    res = b.wait_result(seq, 10)
    check(res and 'turn.mode("manual")' in res and b.wait(
        lambda: b.text("countdown") == "manual", 10),
        "turn mode manual: no clock", b, repr(res))
    Select(b.el("turn-mode")).select_by_value("players_finished")
    b.el("btn-turn-mode").click()
    b.wait(lambda: ":" in (b.text("countdown") or ""), 10)


def test_backup():
    b = BROWSER
    if not ST.get("logged_in"):
        return
    b.scroll_to("server-card")
    folder = os.path.join(SRV.tmp, "backup-1")
    b.set_value("backup-dir", folder)
    seq = b.result_seq()
    b.el("backup-btn").click()
    res = b.wait_result(seq, 10)
    check(res and ("started (job" in res or "(job 1): done" in res),
          "backup: started as a job (or already done)", b, repr(res))
    job = b.wait(lambda: b.js(
        "const j = document.querySelector('#jobs li');"
        "return j && j.dataset.state !== 'running' ? "
        "{state: j.dataset.state, text: j.textContent} : null"), 30)
    check(job and job["state"] == "done", "the job is shown done", b,
          repr(job))
    check(os.path.isdir(folder) and os.listdir(folder),
          "the backup is in the folder", None, repr(folder))
    b.shot("12-backup")


def test_charts():
    b = BROWSER
    if not ST.get("logged_in"):
        return
    b.scroll_to("charts-card")

    def pts(id_):
        return int(b.el(id_).get_attribute("data-points") or 0)
    got = b.wait(lambda: pts("chart-rate") > 0 and pts("chart-conns") > 0,
                 30, 0.5)
    check(got, "the request-rate and connection charts are drawn from the "
          "samples", b, "rate %r, conns %r, samples %r" % (
              pts("chart-rate"), pts("chart-conns"),
              b.js("return window.tpAdmin.samples()")))
    # Something drawn in the connections line's colour (#c084fc).
    painted = b.js("""
        const c = document.getElementById('chart-conns');
        const d = c.getContext('2d')
          .getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) {
          if (d[i] > 150 && d[i + 2] > 200 && d[i + 1] < 160) n++;
        }
        return n;""")
    check(painted and painted > 3, "the connections line is painted on the "
          "canvas", b, repr(painted))
    labels = b.js("return document.getElementById('legend-rate')"
                  ".textContent")
    check("TP" in labels and "HTTP" in labels, "the rate chart's legend "
          "names TP and HTTP", b, repr(labels))
    b.shot("13-charts")


def test_audit():
    b = BROWSER
    if not ST.get("logged_in"):
        return
    b.scroll_to("audit-card")
    entries = b.wait(lambda: b.js(
        "return [...document.querySelectorAll('#audit li')].map(l => "
        "({action: l.dataset.action, ok: l.dataset.ok, text: "
        "l.textContent, id: Number(l.dataset.id)}))"), 5) or []
    actions = [e["action"] for e in entries]
    ids = [e["id"] for e in entries]
    check(ids == sorted(ids, reverse=True) and len(ids) > 5,
          "the audit list is newest first", b, repr(ids))
    for a in ("login", "kick", "turn.now", "console", "broadcast",
              "add_player", "backup"):
        check(a in actions, "the audit list has the %s" % a, b,
              repr(actions))
    failed = [e for e in entries if e["action"] == "login" and
              e["ok"] == "false"]
    check(failed and "bad name or password" in failed[0]["text"],
          "and the failed login, marked failed", b, repr(entries[-3:]))
    kick = [e for e in entries if e["action"] == "kick"]
    check(kick and ADMIN in kick[0]["text"] and "127.0.0.1:" in
          kick[0]["text"] and 'kick("%s")' % BOB.name in kick[0]["text"],
          "an entry names the admin, the address and the call", b,
          repr(kick))
    b.shot("14-audit")


# ------------------------------------------------------------ 6: session


def test_reload_keeps_session():
    b = BROWSER
    if not ST.get("logged_in"):
        return
    b.d.refresh()
    b.wait(lambda: b.js("return document.body.dataset.ready === 'true'"),
           20)
    dash = b.wait(lambda: b.view() == "dash" and
                  b.js("return !!document.body.dataset.loaded"), 15)
    check(dash, "a reload of the page: the dashboard again, from the "
          "session cookie", b)
    n = b.wait(lambda: b.js("return document.querySelectorAll('#log "
                            ".line').length"), 10)
    check(n and n > 5, "the log pane is filled from the state", b, repr(n))
    seq = b.result_seq()
    b.click("#btn-reset-timer")
    res = b.wait_result(seq, 10)
    check(res and res.startswith("turn.reset() → "), "a POST after the "
          "reload (the csrf from GET /api/admin/session)", b, repr(res))


def test_phone():
    b = BROWSER
    if not ST.get("logged_in"):
        return
    b.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 390, "height": 844, "deviceScaleFactor": 1,
        "mobile": True})
    try:
        time.sleep(0.5)
        b.js("window.scrollTo(0, 0)")
        width = b.js("return document.documentElement.clientWidth")
        check(width == 390, "the phone-sized screen (390 px)", b,
              repr(width))
        cols = b.js("return getComputedStyle(document.getElementById("
                    "'dash')).gridTemplateColumns.split(' ').length")
        check(cols == 1, "one column on a phone", b, repr(cols))
        wide = b.js("""
            const w = document.documentElement.clientWidth;
            return [...document.querySelectorAll('#dash > .card')]
              .filter(c => c.getBoundingClientRect().right > w + 1)
              .map(c => c.id);""")
        check(not wide and b.js(
            "return document.documentElement.scrollWidth <= "
            "document.documentElement.clientWidth"),
            "no card wider than the screen", b, repr(wide))
        canvas_w = b.js("return document.getElementById('chart-rate')"
                        ".clientWidth")
        check(canvas_w and 250 < canvas_w <= 390, "the charts fit the "
              "screen", b, repr(canvas_w))
        b.shot("15-phone")
        b.scroll_to("clients-card")
        b.shot("15-phone-clients")
        b.scroll_to("charts-card")
        b.shot("15-phone-charts")
        b.scroll_to("log-card")
        b.shot("15-phone-log")
        b.full_shot("15-phone-full", mobile=True)
    finally:
        b.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        time.sleep(0.3)


def test_session_lost_and_logout():
    b = BROWSER
    if not ST.get("logged_in"):
        return
    # The cookie gone: the next request is refused with 401 and the page
    # shows the login again.
    b.d.delete_cookie("tp_admin")
    b.scroll_to("console-card")
    b.set_value("console-input", "turn.number()")
    b.el("console-input").send_keys(Keys.ENTER)
    back = b.wait(lambda: b.view() == "login" and b.shown("login-form"),
                  10)
    check(back, "a 401 (session gone): the login form again", b)
    note = b.text("login-note") or ""
    check("session has ended" in note, "saying why", b, repr(note))
    b.shot("16-session-lost")

    b.set_value("login-name", ADMIN)
    b.set_value("login-password", ADMIN_PW)
    b.el("login-btn").click()
    dash = b.wait(lambda: b.view() == "dash", 30)
    check(dash, "logging in again", b)
    b.click("#logout-btn")
    out = b.wait(lambda: b.view() == "login", 10)
    check(out, "Log out: the login form", b)
    b.d.refresh()
    b.wait(lambda: b.js("return document.body.dataset.ready === 'true'"),
           20)
    check(b.view() == "login", "after logging out a reload stays on the "
          "login form", b)
    errs = b.js_errors()
    check(not errs, "no script errors on the page", b, "\n".join(errs))


def test_shutdown():
    b = BROWSER
    if not ST.get("logged_in"):
        return
    b.set_value("login-name", ADMIN)
    b.set_value("login-password", ADMIN_PW)
    b.el("login-btn").click()
    if not check(b.wait(lambda: b.view() == "dash" and b.js(
            "return window.tpAdmin.live()"), 30), "logged in again", b):
        return
    b.scroll_to("server-card")
    b.click("#btn-shutdown")
    text = confirm(b, ok=False)
    check(text and text.startswith("Stop the server:"), "Stop server asks "
          "first", b, repr(text))
    time.sleep(0.5)
    check(SRV.alive(), "Cancel: the server still runs")
    seq = b.result_seq()
    b.click("#btn-shutdown")
    confirm(b, ok=True)
    rc = SRV.wait(20 * SLOW)
    check(rc == 0, "confirmed: the server stops cleanly (exit 0)", None,
          repr(rc))
    res = b.wait_result(seq, 10)
    check(res and res.startswith("shutdown()"), "the result line has the "
          "answer", b, repr(res))
    off = b.wait(lambda: b.js("return document.getElementById("
                              "'live-status').classList.contains('off')"),
                 10)
    check(off, "the page shows the live feed gone", b)
    b.shot("17-server-stopped")


# ------------------------------------------------------------ main


def main():
    global BROWSER, SRV, BOB, CAROL
    try:
        weblib.find_browser()
    except RuntimeError as e:
        T.ok(False, "a headless browser to test the page with", str(e))
        return
    SRV = admin_server().start()
    try:
        BOB = TpPlayer(SRV, "bob")
        CAROL = TpPlayer(SRV, "carol")
        try:
            BROWSER = Browser("admin")
        except Exception as e:
            T.ok(False, "the headless browser starts", "%s\n`make deps` "
                 "installs chromium, chromium-driver and python3-selenium"
                 % e)
            return
        T.run(test_link_on_game_page, test_login, test_clients_and_kick,
              test_end_turn_and_log, test_console, test_broadcast,
              test_players, test_pause_resume, test_backup, test_charts,
              test_audit, test_reload_keeps_session, test_phone,
              test_session_lost_and_logout, test_shutdown)
        errors = SRV.error_lines()
        T.ok(not errors, "no error lines in the server's log",
             "\n".join(errors[-10:]))
    finally:
        if BROWSER:
            BROWSER.quit()
        rc = SRV.stop()
        T.ok(rc == 0, "the server's exit status is 0", repr(rc))


if __name__ == "__main__":
    try:
        main()
    finally:
        T.done()
