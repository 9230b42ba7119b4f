#!/usr/bin/env python3
"""The web page (web/) in a real browser: headless Chromium driven by
Selenium against a real server, with players made over TP playing in the
same game as the browser.

1. the front page: game name, turn, players, TP addresses; the countdown
   runs;
2. logging in as a player made over TP: the home planet in the object
   list and drawn on the map in the player's colour (a foreign planet in
   another), the list filter;
3. the player's fleet selected, a Move order to the home planet given
   through the form (its position picked on the map), a server error
   shown by the form, an order added and removed, "End turn"; the turn
   ends (the TP player finishes too) and the page, not reloaded, shows
   the fleet where the server says it is, with the selection kept;
4. message boards: reading, posting, a message from the TP player raising
   the unread count live, seen counts kept over a reload that logs in
   again from the session cookie; logging out;
5. spectators: with the default settings the "spectating is off" notice
   and no objects; with web_spectators=true the universe on the map,
   the turn slider showing earlier turns and following a new turn; the
   page on a phone-sized screen;
6. the order form for every order parameter type of the protocol
   (tests/fixtures/rulesets/webform): the probe's limits and choices
   shown, a value past a limit refused, and the values typed in stored
   by the server as chosen;
7. the end of a game (tests/fixtures/rulesets/finite): the "Game over"
   card with the reason, the winners and the final scores, the countdown
   saying so, and an idle player marked in the player list.

A screenshot of each step goes to $TEST_OUTPUT_DIR (default
build/test-output/web/); each path is printed in a '#' line. Chromium,
chromium-driver and python3-selenium are needed: without them the test
fails saying so ("make deps" installs them)."""

import http.client
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import tplib  # noqa: E402
import weblib  # noqa: E402
from weblib import ActionChains, Keys, Select  # noqa: E402
from test_console import console  # noqa: E402

weblib.use_system_python()

T = tplib.Tap()
WEB = weblib.WEB
PW = "secret pw"
OUT = os.environ.get("TEST_OUTPUT_DIR") or os.path.join(
    tplib.ROOT, "build", "test-output", "web")
OWN_RGB = (0x4a, 0xde, 0x80)       # the page's colour of one's own objects

SRV = None          # the server of tests 1-4 (spectators off)
ALICE = None        # the browser's player
BOB = None          # a TP player in the same game
BOB_ID = []         # BOB's player id
ST = {}             # what the tests learn and pass on


# ------------------------------------------------------------ HTTP API


class Api:
    """A JSON client of the web API (to compare the page with)."""

    def __init__(self, port):
        self.port = port
        self.cookie = None
        self.csrf = None

    def call(self, method, path, body=None):
        h = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        hdr = {"Host": "127.0.0.1:%d" % self.port}
        if body is not None:
            hdr["Content-Type"] = "application/json"
        if self.cookie:
            hdr["Cookie"] = self.cookie
        if self.csrf and method != "GET":
            hdr["X-TP-CSRF"] = self.csrf
        try:
            h.request(method, path, body=None if body is None else
                      json.dumps(body), headers=hdr)
            r = h.getresponse()
            text = r.read()
            cookie = r.getheader("Set-Cookie")
        finally:
            h.close()
        try:
            value = json.loads(text) if text else None
        except ValueError:
            value = text
        return r.status, value, cookie

    def get(self, path):
        st, v, _ = self.call("GET", path)
        if st != 200:
            raise AssertionError("GET %s: %s %r" % (path, st, v))
        return v

    def login(self, user, password):
        st, v, cookie = self.call("POST", "/api/login",
                                  {"username": user, "password": password})
        if st != 200:
            raise AssertionError("login %s over HTTP: %s %r" % (user, st, v))
        self.cookie = cookie.split(";")[0]
        self.csrf = v["csrf"]
        return v["player"]["id"]


class TpPlayer:
    """A player made and logged in over TP."""

    def __init__(self, srv, prefix):
        self.name = tplib.unique_name(prefix)
        self.c = srv.client()
        self.c.connect()
        self.c.create_account(self.name, PW)
        f = self.c.login(self.name, PW)
        if not f.is_("Okay"):
            raise AssertionError("TP login of %s: %r" % (self.name, f))

    def finish(self):
        return self.c.call("FinishedTurn")


def own(objects, pid, type_name):
    return [o for o in objects if o.get("owner") == pid and
            o["type_name"] == type_name]


def same_xy(a, b):
    return a is not None and b is not None and \
        a["x"] == b["x"] and a["y"] == b["y"]


# ------------------------------------------------------------ browser


class Browser(weblib.Browser):
    """The player page in headless Chromium."""

    # 401 from api/session when not logged in, 403 of spectating, the 400
    # the test provokes.
    expected_statuses = (401, 403, 400)

    def __init__(self, name, size=(1280, 900)):
        super().__init__(name, size, OUT)

    def diag(self):
        notice = self.text("notice") or ""
        return "page notice: %r\nbrowser console (last lines):\n%s" % (
            notice, self.console_tail())

    # The page's own state, through window.tpDebug.
    def dbg(self, expr, *args):
        return self.js("return window.tpDebug ? (%s) : null;" % expr, *args)

    def canvas_click(self, x, y):
        """A click at (x, y) CSS pixels from the map's top left corner."""
        canvas = self.el("map")
        w = self.js("return arguments[0].clientWidth;", canvas)
        h = self.js("return arguments[0].clientHeight;", canvas)
        # Selenium 4 offsets are from the element's centre.
        ActionChains(self.d).move_to_element_with_offset(
            canvas, int(round(x - w / 2)), int(round(y - h / 2))).click() \
            .perform()

    def pixel(self, x, y):
        return self.js("""
            window.tpDebug.drawnObjects();
            const c = document.getElementById('map');
            const r = c.width / c.clientWidth;
            const d = c.getContext('2d').getImageData(
                Math.round(arguments[0] * r), Math.round(arguments[1] * r),
                1, 1).data;
            return [d[0], d[1], d[2]];""", x, y)


def close_to(rgb, want, tol=45):
    return rgb is not None and all(abs(a - b) <= tol
                                   for a, b in zip(rgb, want))


def fmt_int(n):
    return "{:,}".format(n)


BROWSER = None      # the browser of tests 1-5


def url(srv):
    return "http://127.0.0.1:%d/" % srv.ports[WEB]


def check(cond, name, b=None, extra=None):
    diag = []
    if extra:
        diag.append(str(extra))
    if b is not None and not cond:
        diag.append(b.diag())
    return T.ok(cond, name, "\n".join(diag) if diag else None)


# ------------------------------------------------------------ 1: front


def test_front_page():
    b = BROWSER
    api = Api(SRV.ports[WEB])
    ready = b.open(url(SRV))
    check(ready, "the front page loads (app.js ran: body data-ready)", b)
    g = api.get("/api/game")
    b.wait(lambda: b.text("game-name") == g["name"], 5)
    check(b.text("game-name") == g["name"], "the game's name is shown",
          b, "page %r, /api/game %r" % (b.text("game-name"), g["name"]))
    turn = b.js("return document.getElementById('game-turn').dataset.turn")
    check(turn == str(g["turn"]) and str(g["turn"]) in b.text("game-turn"),
          "the turn is shown (%s)" % g["turn"], b,
          "page %r / %r" % (turn, b.text("game-turn")))
    rs = b.text("game-ruleset") or ""
    check(g["ruleset"]["name"] in rs and g["ruleset"]["version"] in rs,
          "the ruleset and its version are shown", b, repr(rs))
    names = b.wait(lambda: b.js(
        "return [...document.querySelectorAll('#players tr')]"
        ".map(r => r.dataset.player + ' ' + r.textContent)") or None, 5)
    names = names or []
    check(any(ALICE.name in n for n in names) and
          any(BOB.name in n for n in names),
          "both players are listed", b, repr(names))
    listeners = b.text("listeners") or ""
    check("tp://127.0.0.1:%d/" % SRV.port in listeners,
          "the TP listener's URL is shown", b, repr(listeners))
    check(b.shown("login-form") and b.shown("spectate-off"),
          "a login form, and spectating off (the default)", b)

    def seconds():
        s = b.js("return document.getElementById('countdown')"
                 ".dataset.seconds")
        return int(s) if s else None
    s0 = b.wait(seconds, 5)
    api_left = api.get("/api/game")["seconds_left"]
    time.sleep(2.2)
    s1 = seconds()
    check(s0 is not None and s1 is not None and 1 <= s0 - s1 <= 4,
          "the countdown goes down over 2 s", b,
          "before %r, after %r (text %r)" % (s0, s1, b.text("countdown")))
    check(s0 is not None and abs(s0 - api_left) <= 3,
          "the countdown agrees with /api/game seconds_left", b,
          "page %r, api %r" % (s0, api_left))
    b.shot("1-front")
    errs = b.js_errors()
    check(not errs, "no script errors on the front page", b,
          "\n".join(errs))


# ------------------------------------------------------------ 2: login


def test_login_and_map():
    b = BROWSER
    api = Api(SRV.ports[WEB])
    pid = api.login(ALICE.name, PW)
    ST["api"] = api
    ST["pid"] = pid
    objects = api.get("/api/objects")["objects"]
    planets = own(objects, pid, "Planet")
    fleets = own(objects, pid, "Fleet")
    if not check(planets and fleets, "(MiniSec gave %s a home planet and a "
                 "fleet)" % ALICE.name, None, repr(objects)[:2000]):
        return
    planet, fleet = planets[0], fleets[0]
    ST["planet"], ST["fleet"] = planet, fleet

    b.el("login-user").send_keys(ALICE.name)
    b.el("login-pass").send_keys("wrong password")
    b.el("login-btn").click()
    err = b.wait(lambda: b.shown("login-error") and b.text("login-error"),
                 15)
    check(err and "401" in err, "a wrong password: the error is shown "
          "next to the form", b, repr(err))
    b.set_value("login-pass", PW)
    b.el("login-btn").click()
    playing = b.wait(lambda: b.dbg("tpDebug.mode()") == "play" and
                     planet["id"] in (b.dbg("tpDebug.objectIds()") or []),
                     20)
    check(playing, "logged in: the page has the player's objects", b)
    if not playing:
        return
    check(b.text("session-user") == ALICE.name and b.shown("logout-btn"),
          "the player's name and a logout button are shown", b,
          repr(b.text("session-user")))
    check(b.dbg("tpDebug.player()") == pid, "the page's player id is the "
          "login's", b)
    ST["load_id"] = b.js("return window.tpLoadId")

    li = b.wait(lambda: b.js(
        "const e = document.querySelector('#object-list li[data-id=\"' + "
        "arguments[0] + '\"]'); return e ? e.textContent : null;",
        planet["id"]), 5)
    check(li and planet["name"] in li, "the home planet is in the object "
          "list", b, repr(li))
    b.set_value("object-filter", planet["name"])
    listed = b.wait(lambda: b.js(
        "return [...document.querySelectorAll('#object-list li.obj')]"
        ".map(e => Number(e.dataset.id))"), 5) or []
    check(planet["id"] in listed and fleet["id"] not in listed,
          "the list filter keeps the planet and drops the fleet", b,
          repr(listed))
    b.el("object-filter").clear()
    b.el("object-filter").send_keys(" ")
    b.el("object-filter").send_keys(Keys.BACKSPACE)

    drawn = b.dbg("tpDebug.drawnObjects()") or []
    check(planet["id"] in drawn and fleet["id"] in drawn,
          "the home planet and the fleet are drawn in view", b,
          "drawn %r" % drawn)
    p = b.dbg("tpDebug.screenPos(arguments[0])", planet["id"])
    rgb = b.pixel(p["x"], p["y"]) if p else None
    check(close_to(rgb, OWN_RGB), "the map shows the home planet in the "
          "player's own colour at its position", b,
          "pixel %r at %r, want about %r" % (rgb, p, OWN_RGB))

    # A foreign planet: another colour.
    foreign = own(objects, BOB_ID[0], "Planet") if BOB_ID else []
    if foreign:
        fp = foreign[0]
        b.el("obj-%d" % fp["id"]).click()
        b.wait(lambda: b.dbg("tpDebug.selected()") == fp["id"], 5)
        q = b.dbg("tpDebug.screenPos(arguments[0])", fp["id"])
        inside = q and 0 <= q["x"] <= b.dbg("tpDebug.view().width") and \
            0 <= q["y"] <= b.dbg("tpDebug.view().height")
        rgb2 = b.pixel(q["x"], q["y"]) if inside else None
        check(inside and rgb2 is not None and not close_to(rgb2, OWN_RGB)
              and sum(rgb2) > 150,
              "selecting a foreign planet in the list brings it into view, "
              "drawn in another colour", b, "pixel %r at %r" % (rgb2, q))
        meta = b.text("object-meta") or ""
        check(BOB.name in meta, "its panel names its owner", b, repr(meta))
        b.shot("2-foreign")
    b.el("zoom-fit").click()
    b.shot("2-logged-in")
    errs = b.js_errors()
    check(not errs, "no script errors after logging in", b,
          "\n".join(errs))


# ------------------------------------------------------------ 3: orders


def queue_names(b):
    return b.js("return [...document.querySelectorAll('#order-queue "
                "li.order')].map(e => e.querySelector('.order-name')"
                ".textContent)")


def test_orders_and_turn():
    b = BROWSER
    api, planet, fleet = ST.get("api"), ST.get("planet"), ST.get("fleet")
    if not fleet:
        check(False, "orders: needs the login of test 2")
        return
    fid = fleet["id"]
    b.set_value("object-filter", fleet["name"])
    b.wait(lambda: b.js("return !!document.getElementById('obj-' + "
                        "arguments[0])", fid), 5)
    b.el("obj-%d" % fid).click()
    sel = b.wait(lambda: b.js("return document.getElementById("
                              "'object-detail').dataset.id") == str(fid) and
                 b.shown("order-type"), 10)
    check(sel and b.dbg("tpDebug.selected()") == fid,
          "clicking the fleet in the list selects it: its panel and order "
          "form", b)
    pos_text = b.js("const e = document.querySelector('#object-props "
                    "dd[data-param=\"Position\"]'); return e ? "
                    "e.textContent : null;")
    check(pos_text and fmt_int(fleet["pos"]["x"]) in pos_text and
          fmt_int(fleet["pos"]["y"]) in pos_text,
          "the panel shows its properties by name (Position)", b,
          repr(pos_text))
    props = b.text("object-props") or ""
    check("Owner" in props and ALICE.name in props,
          "the owner parameter is shown as the player's name", b,
          props[:500])

    Select(b.el("order-type")).select_by_visible_text("Move")
    got = b.wait(lambda: b.shown("order-param-0-x"), 10)
    check(got and b.shown("order-param-0-pick"),
          "choosing Move builds x, y, z inputs and a pick button from the "
          "probe", b)
    if not got:
        return

    # Pick the target on the map: the home planet.
    b.el("zoom-fit").click()
    b.el("order-param-0-pick").click()
    b.wait(lambda: b.shown("pick-banner"), 3)
    p = b.dbg("tpDebug.screenPos(arguments[0])", planet["id"])
    b.canvas_click(p["x"], p["y"])
    xy = b.wait(lambda: (lambda v: v if v[0] == str(planet["pos"]["x"])
                         else None)(
        [b.el("order-param-0-x").get_attribute("value"),
         b.el("order-param-0-y").get_attribute("value")]), 3)
    check(xy == [str(planet["pos"]["x"]), str(planet["pos"]["y"])],
          "'pick on map' then a click on the planet fills in its position",
          b, "inputs %r, planet %r" % (xy, planet["pos"]))
    check(b.dbg("tpDebug.selected()") == fid, "(picking did not change "
          "the selection)", b)

    # A value the server refuses: its error next to the form.
    b.set_value("order-param-0-x", "100000000000000000000")
    b.el("order-add").click()
    err = b.wait(lambda: b.shown("order-error") and b.text("order-error"),
                 10)
    check(err and "400" in err, "a coordinate out of range: the server's "
          "error is shown next to the form", b, repr(err))
    st, q, _ = api.call("GET", "/api/objects/%d/orders" % fid)
    check(st == 200 and q["orders"] == [], "(and nothing was stored)", b,
          repr(q))

    b.set_value("order-param-0-x", planet["pos"]["x"])
    b.set_value("order-param-0-y", planet["pos"]["y"])
    b.el("order-add").click()
    names = b.wait(lambda: queue_names(b) == ["Move"] and queue_names(b),
                   10)
    check(names == ["Move"], "the Move order appears in the order queue",
          b, repr(queue_names(b)))
    check(not b.shown("order-error"), "the error went away", b)
    st, q, _ = api.call("GET", "/api/objects/%d/orders" % fid)
    orders = q.get("orders", []) if st == 200 else []
    target = orders[0]["params"][0]["value"] if orders else None
    check(len(orders) == 1 and orders[0]["name"] == "Move" and
          same_xy(target, planet["pos"]),
          "the server has the Move order to the planet's position", b,
          repr(q))
    lines = b.wait(lambda: [ln for ln in b.dbg("tpDebug.lines()") or []
                            if ln["id"] == fid], 5) or []
    check(lines and same_xy(lines[0]["to"], planet["pos"]),
          "the map draws the move from the fleet to its target", b,
          repr(lines))

    # Another order, then remove it.
    Select(b.el("order-type")).select_by_visible_text("No Operation")
    if b.wait(lambda: b.shown("order-param-0-turns"), 10):
        b.set_value("order-param-0-turns", 2)
        b.el("order-add").click()
    names = b.wait(lambda: len(queue_names(b)) == 2 and queue_names(b), 10)
    check(names == ["Move", "No Operation"], "a No Operation order (a "
          "time parameter) is added after it", b, repr(queue_names(b)))
    b.shot("3-orders")
    if names:
        b.el("order-remove-1").click()
    names = b.wait(lambda: queue_names(b) == ["Move"], 10)
    st, q, _ = api.call("GET", "/api/objects/%d/orders" % fid)
    check(names and st == 200 and [o["name"] for o in q["orders"]] ==
          ["Move"], "its Remove button removes it (page and server)", b,
          repr(q))

    # End the turn.
    b.el("end-turn").click()
    done = b.wait(lambda: b.js("return document.getElementById("
                               "'finished-status').dataset.finished") ==
                  "true", 10)
    players = api.get("/api/players")
    me = [p for p in players if p["name"] == ALICE.name]
    check(done and me and me[0]["finished"] and
          b.el("end-turn").get_attribute("disabled") is not None,
          "End turn: the page shows the player has finished, and the "
          "server agrees", b, repr(players))
    status = b.text("finished-status") or ""
    check(BOB.name in status, "it names who is still playing", b,
          repr(status))
    b.shot("3-finished")

    turn0 = b.dbg("tpDebug.turn()")
    f = BOB.finish()
    check(f.is_("Okay"), "(the TP player finishes too: the turn ends)",
          None, repr(f))
    turned = b.wait(lambda: b.dbg("tpDebug.turn()") == turn0 + 1, 30)
    check(turned, "the page sees the new turn (turn_start event)", b,
          "turn %r" % b.dbg("tpDebug.turn()"))
    now = api.get("/api/objects/%d" % fid)
    moved = b.wait(lambda: (b.dbg("tpDebug.object(arguments[0])", fid) or
                            {}).get("pos") == now["pos"], 15)
    page_pos = (b.dbg("tpDebug.object(arguments[0])", fid) or {}).get("pos")
    check(moved, "the page's fleet is where GET /api/objects/ID says", b,
          "page %r, server %r" % (page_pos, now["pos"]))
    check(same_xy(now["pos"], planet["pos"]) and
          not same_xy(now["pos"], fleet["pos"]),
          "(the fleet moved to the planet)", None,
          "before %r, now %r, planet %r" % (fleet["pos"], now["pos"],
                                            planet["pos"]))
    check(b.js("return window.tpLoadId") == ST.get("load_id"),
          "without reloading the page (tpLoadId unchanged)", b)
    check(b.dbg("tpDebug.selected()") == fid and b.js(
        "return document.getElementById('object-detail').dataset.id") ==
        str(fid), "the selection is kept", b)
    pos_ok = b.wait(lambda: fmt_int(now["pos"]["x"]) in (b.js(
        "const e = document.querySelector('#object-props dd[data-param="
        "\"Position\"]'); return e ? e.textContent : '';") or ""), 5)
    check(pos_ok, "the panel shows the new position", b)
    st, q, _ = api.call("GET", "/api/objects/%d/orders" % fid)
    want = [o["name"] for o in q.get("orders", [])] if st == 200 else None
    got = b.wait(lambda: queue_names(b) == want and queue_names(b) or
                 (want == [] and queue_names(b) == []), 10)
    check(got or queue_names(b) == want, "the order queue is the server's "
          "again (%r)" % want, b, repr(queue_names(b)))
    again = b.wait(lambda: b.el("end-turn").get_attribute("disabled") is
                   None, 10)
    check(again, "End turn can be pressed again in the new turn", b)
    b.shot("3-new-turn")
    errs = b.js_errors()
    check(not errs, "no script errors during orders and the turn", b,
          "\n".join(errs))


# ------------------------------------------------------------ 4: boards


def test_boards():
    b = BROWSER
    api = ST.get("api")
    if not api:
        check(False, "boards: needs the login of test 2")
        return
    # A battle first: bob's fleets are put on alice's home planet and the
    # turn ends; alice's Combat message links to the battle's log.
    from test_console import console
    rc, out, err = console(SRV, """
        local me = objects{ owner = %d, type = "Planet" }[1].object
        for _, f in ipairs(objects{ owner = %d, type = "Fleet" }) do
            edit(f.id, { pos = { x = me.pos.x, y = me.pos.y, z = 0 } })
        end
        turn.now()""" % (ST.get("pid", 1), BOB_ID[0]))
    check(rc == 0, "(the console sets up a battle)", None, out + err)
    boards = api.get("/api/boards")
    board = boards[0]
    bid = board["id"]
    # The new turn redraws the page's boards: click once it has.
    time.sleep(1)

    def open_board():
        try:
            b.el("board-%d" % bid).click()
            return True
        except Exception:
            return False
    b.wait(open_board, 10)
    msgs = api.get("/api/boards/%d/messages" % bid)
    shown = b.wait(lambda: b.js("return document.querySelectorAll("
                                "'#board-messages li.message').length") ==
                   len(msgs), 10)
    check(shown, "opening the board lists its %d messages" % len(msgs), b)
    href = b.wait(lambda: b.js(
        "const a = document.querySelector('#board-messages a.battle-log');"
        "return a && a.getAttribute('href');"), 10)
    check(href == "/battles/1.xml", "the Combat message shows a link to "
          "the battle's log", b, repr(href))
    got = b.d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.text().then(t => done([r.status, "
        "r.headers.get('content-type'), t])), e => done([0, '', "
        "String(e)]));", href or "/battles/1.xml")
    check(got[0] == 200 and got[1].startswith("application/xml") and
          "<battle version=\"0.0.1\"" in got[2] and
          '<side id="%s">' % ALICE.name in got[2],
          "the page's session opens it: the battle's BattleXML", b,
          repr(got)[:300])
    check(not b.js("return !!document.getElementById('board-unread-' + "
                   "arguments[0])", bid), "and its unread count goes", b)
    b.set_value("post-subject", "Hello from the web")
    b.set_value("post-body", "First line\nsecond line")
    b.el("post-btn").click()
    posted = b.wait(lambda: "Hello from the web" in
                    (b.text("board-messages") or ""), 10)
    after = api.get("/api/boards/%d/messages" % bid)
    check(posted and any(m["subject"] == "Hello from the web" and
                         m["body"] == "First line\nsecond line"
                         for m in after),
          "a message posted from the page is on the board", b,
          repr(after[-2:]))

    # Closed board, a message from the TP player: the count goes up live.
    b.el("board-%d" % bid).click()
    b.wait(lambda: not b.shown("board-view"), 3)
    f = BOB.c.call("PostMessage", {
        "id": bid, "slot": -1, "msgtypes": [], "subject": "Hi from TP",
        "body": "over the protocol", "turn": 0, "references": []})
    check(f.is_("Okay"), "(the TP player posts to the board)", None,
          repr(f))
    badge = b.wait(lambda: b.text("board-unread-%d" % bid), 10)
    check(badge == "1", "the page shows 1 unread message (message event)",
          b, repr(badge))
    b.shot("4-unread")
    b.el("board-%d" % bid).click()
    got = b.wait(lambda: "Hi from TP" in (b.text("board-messages") or ""),
                 10)
    check(got and not b.js("return !!document.getElementById("
                           "'board-unread-' + arguments[0])", bid),
          "opening it shows the message and clears the count", b)
    b.shot("4-board")

    # A reload: logged in again by the session cookie, the counts kept.
    b.d.refresh()
    back = b.wait(lambda: b.js("return document.body.dataset.ready") ==
                  "true" and b.dbg("tpDebug.mode()") == "play", 20)
    check(back, "after a reload the page is logged in again (GET "
          "/api/session)", b)
    b.wait(lambda: b.js("return !!document.getElementById('board-' + "
                        "arguments[0])", bid), 10)
    check(not b.js("return !!document.getElementById('board-unread-' + "
                   "arguments[0])", bid),
          "seen messages stay seen (localStorage)", b)

    b.el("logout-btn").click()
    out = b.wait(lambda: b.dbg("tpDebug.mode()") == "front" and
                 b.shown("login-form"), 10)
    status = b.d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('api/session').then(r => done(r.status), () => done(0));")
    check(out and status == 401, "Log out: the front page again, and the "
          "session is gone", b, "api/session: %r" % status)
    errs = b.js_errors()
    check(not errs, "no script errors with the boards", b, "\n".join(errs))


# ------------------------------------------------------------ 5: watch


def test_spectators_off():
    b = BROWSER
    b.open(url(SRV))
    b.wait(lambda: b.shown("spectate-off"), 5)
    check(b.shown("spectate-off") and not b.shown("watch-btn"),
          "spectators off (default): the page says so, no Watch button", b)
    check(not b.dbg("tpDebug.objectIds()") and
          b.dbg("tpDebug.mode()") == "front",
          "and it holds no objects", b)
    st, v, _ = Api(SRV.ports[WEB]).call("GET", "/api/universe")
    check(st == 403, "(GET /api/universe: 403)", None, repr((st, v)))
    b.shot("5-spectating-off")


def test_signup():
    """A visitor makes an account from the page and is playing at once."""
    b = BROWSER
    b.open(url(SRV))
    shown = b.wait(lambda: b.shown("signup-btn"), 10)
    check(shown, "the server takes new accounts: the page offers "
          "\"Create this account\"", b)
    if not shown:
        return
    name = tplib.unique_name("carol")
    b.set_value("login-user", name)
    b.set_value("login-pass", PW)
    b.el("signup-btn").click()
    playing = b.wait(lambda: b.dbg("tpDebug.mode()") == "play" and
                     b.text("session-user") == name, 20)
    check(playing, "a new account made from the page, logged in with it",
          b, repr(b.text("login-error")))
    b.shot("5-signed-up")
    st, v, _ = Api(SRV.ports[WEB]).call("GET", "/api/players")
    check(st == 200 and any(p["name"] == name for p in v),
          "the new player is in the game", None, repr(v)[:300])
    c = SRV.client()
    c.connect()
    check(c.login(name, PW).is_("Okay"), "and logs in over TP with the "
          "same name and password")
    c.close()
    b.el("logout-btn").click()
    b.wait(lambda: b.dbg("tpDebug.mode()") == "front", 10)


def test_turn_mails():
    """The "Turn mails" panel: a player sets an address and turns the
    mails on (stored: the console reads it back); a bad address shows the
    server's refusal."""
    b = BROWSER
    b.open(url(SRV))
    b.wait(lambda: b.shown("login-form"), 10)
    b.set_value("login-user", ALICE.name)
    b.set_value("login-pass", PW)
    b.el("login-btn").click()
    playing = b.wait(lambda: b.dbg("tpDebug.mode()") == "play", 20)
    check(playing, "alice logs in for the turn mails", b)
    if not playing:
        return
    b.css("#account-panel summary").click()
    b.wait(lambda: b.text("account-status") == "No turn mails.", 10)
    check(b.text("account-status") == "No turn mails.",
          "the panel says no turn mails yet", b)
    b.set_value("account-email", "alice@")
    b.el("account-notify").click()
    b.el("account-save").click()
    shown = b.wait(lambda: b.shown("account-error"), 10)
    check(shown and "e-mail address" in (b.text("account-error") or ""),
          "a bad address: the server's refusal is shown", b)
    b.set_value("account-email", "alice@example.org")
    b.el("account-save").click()
    ok = b.wait(lambda: b.text("account-status") ==
                "Turn mails go to alice@example.org.", 10)
    check(ok and not b.shown("account-error"), "saved: turn mails go to "
          "the address", b, repr(b.text("account-status")))
    rc, out, err = console(SRV, 'local a = notify.email("%s") '
                           'print(a.email, a.notify_email)' % ALICE.name)
    check(rc == 0 and out.split() == ["alice@example.org", "true"],
          "stored: the console reads the same", None, out + err)
    b.shot("5b-turn-mails")
    errs = b.js_errors()
    check(not errs, "no script errors with the turn mails panel", b,
          "\n".join(errs))
    b.el("logout-btn").click()
    b.wait(lambda: b.dbg("tpDebug.mode()") == "front", 10)


def test_spectators_on():
    srv = tplib.Server("--set", "web_spectators=true",
                       port_flags=[WEB]).start()
    b = None
    try:
        carol, dave = TpPlayer(srv, "carol"), TpPlayer(srv, "dave")
        capi = Api(srv.ports[WEB])
        cid = capi.login(carol.name, PW)
        objects = capi.get("/api/objects")["objects"]
        fleet = own(objects, cid, "Fleet")[0]
        planet = own(objects, cid, "Planet")[0]
        st, v, _ = capi.call("POST", "/api/objects/%d/orders" % fleet["id"],
                             {"otype": 1, "slot": -1, "params": {
                                 "pos": dict(planet["pos"])}})
        if not check(st == 201, "(carol's fleet is sent to her planet over "
                     "HTTP)", None, repr((st, v))):
            return
        carol.finish()
        dave.finish()
        pub = Api(srv.ports[WEB])
        deadline = time.monotonic() + 20
        while pub.get("/api/game")["turn"] < 1 and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        hist = pub.get("/api/history")
        uni = pub.get("/api/universe")
        old = pub.get("/api/universe?turn=%d" % hist["first"])

        b = Browser("watch")
        b.open(url(srv))
        check(b.wait(lambda: b.shown("watch-btn"), 5),
              "web_spectators=true: the front page offers Watch", b)
        b.el("watch-btn").click()
        ids = sorted(o["id"] for o in uni["objects"])
        watching = b.wait(lambda: b.dbg("tpDebug.mode()") == "watch" and
                          sorted(b.dbg("tpDebug.objectIds()") or []) == ids,
                          15)
        check(watching, "Watch: the page holds every object of "
              "/api/universe (%d)" % len(ids), b,
              "page %r" % (b.dbg("tpDebug.objectIds()"),))
        drawn = b.dbg("tpDebug.drawnObjects()") or []
        systems = [o["id"] for o in uni["objects"]
                   if o["type_name"] == "Star System"]
        check(set(systems) <= set(drawn), "every star system is drawn on the "
              "map (fitted to everything)", b,
              "systems %r, drawn %r" % (systems, drawn))
        check(not b.shown("end-turn") and not b.shown("order-form"),
              "read-only: no End turn, no order form", b)
        slider = b.el("turn-slider")
        rng = (slider.get_attribute("min"), slider.get_attribute("max"),
               slider.get_attribute("value"))
        check(rng == (str(hist["first"]), str(hist["last"]),
                      str(hist["last"])),
              "the turn slider spans /api/history %r" % hist, b, repr(rng))
        fid = fleet["id"]
        now_pos = next(o["pos"] for o in uni["objects"] if o["id"] == fid)
        old_pos = next(o["pos"] for o in old["objects"] if o["id"] == fid)
        check((b.dbg("tpDebug.object(arguments[0])", fid) or {}).get("pos")
              == now_pos, "carol's fleet is shown where it is now", b)
        b.shot("5-watch")

        slider.send_keys(Keys.HOME)
        back = b.wait(lambda: b.dbg("tpDebug.watchTurn()") == hist["first"]
                      and (b.dbg("tpDebug.object(arguments[0])", fid) or {})
                      .get("pos") == old_pos, 10)
        check(back and old_pos != now_pos,
              "moving the slider to turn %d shows the universe then "
              "(GET /api/universe?turn=)" % hist["first"], b,
              "page turn %r, fleet %r, then %r, now %r" % (
                  b.dbg("tpDebug.watchTurn()"),
                  (b.dbg("tpDebug.object(arguments[0])", fid) or {})
                  .get("pos"), old_pos, now_pos))
        b.shot("5-watch-earlier")
        slider.send_keys(Keys.END)
        b.wait(lambda: b.dbg("tpDebug.watchTurn()") == hist["last"], 10)
        carol.finish()
        dave.finish()
        follow = b.wait(lambda: b.el("turn-slider").get_attribute("max") ==
                        str(hist["last"] + 1) and
                        b.dbg("tpDebug.watchTurn()") == hist["last"] + 1, 20)
        check(follow, "a new turn: the slider grows and the live view "
              "follows it", b, "max %r, turn %r" % (
                  b.el("turn-slider").get_attribute("max"),
                  b.dbg("tpDebug.watchTurn()")))

        # A phone-sized screen (390 x 844 CSS pixels, two device pixels
        # each, as a phone's browser has it).
        b.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 390, "height": 844, "deviceScaleFactor": 2,
            "mobile": True})
        fits = b.wait(lambda: b.js(
            "const m = document.getElementById('map');"
            "return innerWidth === 390 && "
            "document.documentElement.scrollWidth <= innerWidth + 1 "
            "&& m.clientWidth > 300 && m.clientHeight > 250 && "
            "m.width === 2 * m.clientWidth;"), 5)
        check(fits, "on a phone-sized screen the page fits its width and "
              "the map is usable (and sharp: two canvas pixels a CSS pixel)",
              b, repr(b.js(
                  "const m = document.getElementById('map'); return ["
                  "document.documentElement.scrollWidth, innerWidth, "
                  "m.clientWidth, m.clientHeight, m.width]")))
        b.shot("5-phone")
        errs = b.js_errors()
        check(not errs, "no script errors while watching", b,
              "\n".join(errs))
    finally:
        if b:
            b.quit()
        srv.stop()


# ------------------------------------------------------------ 6: every type

WEBFORM = os.path.join(tplib.ROOT, "tests", "fixtures", "rulesets",
                       "webform")
PARAM_TYPES = ["abs_coords", "time", "object", "player", "rel_coords",
               "range", "list", "string", "reference", "reference_list",
               "resource_list", "generic_reference_quantity_list"]


def test_every_parameter_type():
    srv = tplib.Server("--ruleset", WEBFORM, port_flags=[WEB]).start()
    b = None
    try:
        ann, ben = TpPlayer(srv, "ann"), TpPlayer(srv, "ben")
        api = Api(srv.ports[WEB])
        aid = api.login(ann.name, PW)
        bid = Api(srv.ports[WEB]).login(ben.name, PW)
        objs = api.get("/api/objects")["objects"]
        ship = own(objs, aid, "Ship")[0]
        other = own(objs, bid, "Ship")[0]

        b = Browser("form")
        b.open(url(srv))
        b.el("login-user").send_keys(ann.name)
        b.el("login-pass").send_keys(PW)
        b.el("login-btn").click()
        b.wait(lambda: ship["id"] in (b.dbg("tpDebug.objectIds()") or []),
               20)
        b.el("obj-%d" % ship["id"]).click()
        b.wait(lambda: b.shown("order-type"), 10)
        Select(b.el("order-type")).select_by_visible_text("Everything")
        types = b.wait(lambda: (lambda t: t if len(t) == 12 else None)(
            b.js("return [...document.querySelectorAll('#order-params "
                 "fieldset.param')].map(f => f.dataset.type)")), 10)
        check(types == PARAM_TYPES, "an order with every parameter type: "
              "one input group each, in order", b, repr(types))
        if types != PARAM_TYPES:
            return

        def attr(id_, name):
            return b.el(id_).get_attribute(name)

        def text_of(i):
            return b.text("order-param-%d-box" % i) or ""
        limits = {
            "time: at most maxtime turns":
                attr("order-param-1-turns", "max") == "5",
            "object: only the valid types (the ships, not the universe)":
                sorted(int(o.get_attribute("value")) for o in
                       Select(b.el("order-param-2-object")).options) ==
                sorted([0, ship["id"], other["id"]]),
            "player: every player": str(bid) in [
                o.get_attribute("value") for o in
                Select(b.el("order-param-3-player")).options],
            "range: min, max and step":
                (attr("order-param-5-value", "min"),
                 attr("order-param-5-value", "max"),
                 attr("order-param-5-value", "step")) == ("1", "9", "2"),
            "list: each choice by name with its maxnum":
                "Crates" in text_of(6) and "Barrels" in text_of(6) and
                attr("order-param-6-opt-1", "max") == "5" and
                attr("order-param-6-opt-2", "max") == "3",
            "string: maxlength": attr("order-param-7-string",
                                      "maxlength") == "20",
            "reference: the allowed kinds": "object" in text_of(8) and
                "player" in text_of(8),
            "resource_list: each allowed resource by name with its max":
                "Fuel" in text_of(10) and "Ore" in text_of(10) and
                attr("order-param-10-res-1", "max") == "50" and
                attr("order-param-10-res-2", "max") == "8",
            "generic_reference_quantity_list: each possible by name":
                "Pilots" in text_of(11) and "Gunners" in text_of(11) and
                attr("order-param-11-opt-2", "max") == "6",
        }
        for name, ok in limits.items():
            check(ok, "the form shows the probe's %s" % name, b)

        fill = [("order-param-0-x", 123), ("order-param-0-y", -456),
                ("order-param-0-z", 7), ("order-param-1-turns", 3),
                ("order-param-4-x", 10), ("order-param-4-y", 20),
                ("order-param-4-z", 30), ("order-param-5-value", 5),
                ("order-param-6-opt-1", 2), ("order-param-6-opt-2", 3),
                ("order-param-7-string", "Hello form"),
                ("order-param-8-reference", 42),
                ("order-param-9-references", "3, 4 5"),
                ("order-param-10-res-1", 12), ("order-param-11-opt-1", 1),
                ("order-param-11-opt-2", 6)]
        for id_, v in fill:
            b.set_value(id_, v)
        Select(b.el("order-param-2-object")).select_by_value(
            str(other["id"]))
        Select(b.el("order-param-3-player")).select_by_value(str(bid))
        Select(b.el("order-param-4-object")).select_by_value(
            str(ship["id"]))

        # A value past a limit is refused before it is sent.
        b.set_value("order-param-5-value", 10)
        b.el("order-add").click()
        err = b.wait(lambda: b.shown("order-error") and
                     b.text("order-error"), 5)
        check(err and "between 1 and 9" in err, "a range value past its "
              "maximum: the form says so", b, repr(err))
        b.set_value("order-param-5-value", 5)
        b.el("order-add").click()
        b.wait(lambda: len(queue_names(b) or []) == 1, 10)
        b.shot("6-every-type")
        st, q, _ = api.call("GET", "/api/objects/%d/orders" % ship["id"])
        orders = q.get("orders", []) if st == 200 else []
        if not check(len(orders) == 1, "the order is stored", b, repr(q)):
            return
        got = {p["name"]: p["value"] for p in orders[0]["params"]}
        want = {
            "to": {"x": 123, "y": -456, "z": 7},
            "wait": {"turns": 3},
            "target": {"objectid": other["id"]},
            "who": {"playerid": bid},
            "offset": {"objectid": ship["id"], "x": 10, "y": 20, "z": 30},
            "speed": {"value": 5},
            "cargo": {"selection": [{"id": 1, "number": 2},
                                    {"id": 2, "number": 3}]},
            "label": {"string": "Hello form"},
            "ref": {"reference": 42},
            "refs": {"references": [3, 4, 5]},
            "fuel": {"selected": [{"resourcetype": 1, "quantity": 12}]},
            "crew": {"selection": [{"id": 1, "number": 1},
                                   {"id": 2, "number": 6}]},
        }
        for name, fields in want.items():
            v = got.get(name) or {}
            sub = {k: v.get(k) for k in fields}
            check(sub == fields, "the server stored %s as chosen in the "
                  "form" % name, None, "got %r\nwant %r" % (sub, fields))
        summary = b.js("return document.querySelector('#order-queue "
                       ".order-turns').textContent")
        check(summary == "3 turns", "the queue shows the order's turns",
              b, repr(summary))
        errs = b.js_errors()
        check(not errs, "no script errors in the order form", b,
              "\n".join(errs))
    finally:
        if b:
            b.quit()
        srv.stop()


# ------------------------------------------------------------ main


# ------------------------------------------------------------ 7: the end


def test_game_over():
    finite = os.path.join(tplib.ROOT, "tests", "fixtures", "rulesets",
                          "finite")
    srv = tplib.Server("--ruleset", finite, "--set", "turn_mode=manual",
                       "--set", "ruleset_settings.last_turn=2",
                       "--set", "idle_turns=1", port_flags=[WEB]).start()
    b = None
    try:
        alice, carol = TpPlayer(srv, "alice"), TpPlayer(srv, "carol")
        carol.c.close()
        for n in range(2):
            p = subprocess.run([tplib.tpserver_path(), "console", "--data",
                                srv.data_dir, "-e", "turn.now()"],
                               capture_output=True, text=True, timeout=60)
            check(p.returncode == 0, "turn %d ended from the console" % n,
                  None, p.stderr)
        b = Browser("over")
        check(b.open(url(srv)), "the page of a finished game loads", b)
        check(b.wait(lambda: b.shown("over-card"), 5),
              "the Game over card is shown", b)
        reason = b.text("over-reason") or ""
        check("the last turn (2) was played" in reason and "Won by" in reason
              and alice.name in reason, "it gives the reason and the "
              "winners", b, repr(reason))
        rows = b.wait(lambda: b.js(
            "return [...document.querySelectorAll('#final-scores tr')]"
            ".map(r => r.textContent)") or None, 5) or []
        check(len(rows) == 2 and any(alice.name in r and "2" in r
                                     for r in rows),
              "the final scores: a point per ship and turn", b, repr(rows))
        check(b.text("countdown") == "game over",
              "the countdown says the game is over", b,
              repr(b.text("countdown")))
        cls = b.wait(lambda: b.js(
            "const r = document.querySelector('#players tr[data-player="
            "\"%d\"]'); return r ? r.className : null" % 2), 5) or ""
        check("idle" in cls, "carol, who left, is listed as idle", b,
              repr(cls))
        check(not b.shown("signup-btn"), "no new accounts in a finished "
              "game", b)
        b.shot("7-game-over")
        errs = b.js_errors()
        check(not errs, "no script errors on the finished game's page", b,
              "\n".join(errs))
    finally:
        if b:
            b.quit()
        srv.stop()


def main():
    global BROWSER, SRV, ALICE, BOB
    try:
        weblib.find_browser()
    except RuntimeError as e:
        T.ok(False, "a headless browser to test the page with", str(e))
        return
    SRV = tplib.Server(port_flags=[WEB]).start()
    try:
        ALICE = TpPlayer(SRV, "alice")
        BOB = TpPlayer(SRV, "bob")
        bob_api = Api(SRV.ports[WEB])
        BOB_ID.append(bob_api.login(BOB.name, PW))
        try:
            BROWSER = Browser("player")
        except Exception as e:
            T.ok(False, "the headless browser starts", "%s\n`make deps` "
                 "installs chromium, chromium-driver and python3-selenium"
                 % e)
            return
        T.run(test_front_page, test_login_and_map, test_orders_and_turn,
              test_boards, test_spectators_off, test_signup,
              test_turn_mails)
    finally:
        if BROWSER:
            BROWSER.quit()
        SRV.stop()
    T.run(test_spectators_on, test_every_parameter_type, test_game_over)


if __name__ == "__main__":
    try:
        main()
    finally:
        T.done()
