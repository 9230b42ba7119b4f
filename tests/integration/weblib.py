"""Helpers of the web tests (test_web*.py, test_admin_web.py,
test_admin_browser.py), next to tplib:

* Web: a keep-alive HTTP client of a server's web listener, JSON in and
  out, with the session cookie and csrf token once logged in;
* for the browser tests: use_system_python() (run again under the system
  python3 when this one lacks Selenium), find_browser() and Browser, a
  headless Chromium driven by Selenium.

Importing it needs only the standard library: without Selenium the
Selenium names below are None and find_browser() says what is missing."""

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time

WEB = "--web-port"
SYSTEM_PYTHON = "/usr/bin/python3"

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    SELENIUM_ERROR = None
except ImportError as e:
    SELENIUM_ERROR = str(e)
    webdriver = WebDriverException = Options = Service = None
    ActionChains = By = Keys = Select = None


# ------------------------------------------------------------ HTTP


class Web:
    """A keep-alive HTTP client of one server's web listener, with the
    session cookie and csrf token once logged in. The defaults are the
    player page's (web/api.js): csrf_header on POST and DELETE. With
    page_posts a POST goes as the control UI's page sends it: with an
    Origin, Content-Type: application/json and a body ({} when none is
    given)."""

    csrf_header = "X-TP-CSRF"
    csrf_methods = ("POST", "DELETE")
    page_posts = False

    def __init__(self, srv, port=None, timeout=15):
        self.port = port or srv.ports[WEB]
        self.h = http.client.HTTPConnection("127.0.0.1", self.port,
                                            timeout=timeout)
        self.cookie = None
        self.csrf = None
        self.origin = "http://127.0.0.1:%d" % self.port

    def call(self, method, path, body=None, headers=None, raw=None,
             csrf=True, origin=True):
        """(status, headers by lower-case name, the answer's JSON or its
        bytes or None). raw: bytes sent as they are instead of body as
        JSON; csrf=False leaves out the csrf header, origin=False the
        Origin of page_posts; headers are added last."""
        hdr = {"Host": "127.0.0.1:%d" % self.port}
        if self.cookie:
            hdr["Cookie"] = self.cookie
        page_post = self.page_posts and method == "POST"
        if page_post and origin:
            hdr["Origin"] = self.origin
        if csrf and self.csrf and method in self.csrf_methods:
            hdr[self.csrf_header] = self.csrf
        if page_post:
            hdr["Content-Type"] = "application/json"
        hdr.update(headers or {})
        data = raw if raw is not None else (
            json.dumps(body) if body is not None else None)
        for attempt in (1, 2):
            try:
                self.h.request(method, path, body=data, headers=hdr)
                r = self.h.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                # The server closed an idle keep-alive connection: as a
                # browser does, ask again on a new one.
                self.h.close()
                if attempt == 2:
                    raise
        text = r.read()
        try:
            value = json.loads(text) if text else None
        except ValueError:
            value = text
        return r.status, {k.lower(): v for k, v in r.getheaders()}, value

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        if body is None and self.page_posts:
            body = {}
        return self.call("POST", path, body, **kw)

    def login_post(self, path, body):
        """POSTs a login; a 200 keeps its session cookie and csrf token."""
        st, hd, v = self.post(path, body)
        if st == 200:
            self.cookie = hd["set-cookie"].split(";")[0]
            self.csrf = v["csrf"]
        return st, hd, v

    def close(self):
        self.h.close()


# ------------------------------------------------------------ browser


def use_system_python():
    """Debian's python3-selenium is installed for the system interpreter;
    when this runs under another python3 (a virtual environment, pyenv)
    that lacks it, runs the test again under the system one (and does not
    return)."""
    if (SELENIUM_ERROR and not os.environ.get("TP_WEB_TEST_REEXEC") and
            os.path.exists(SYSTEM_PYTHON) and
            os.path.realpath(sys.executable) !=
            os.path.realpath(SYSTEM_PYTHON) and
            subprocess.run([SYSTEM_PYTHON, "-c", "import selenium"],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL).returncode == 0):
        os.environ["TP_WEB_TEST_REEXEC"] = "1"
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)


def find_browser():
    """(chromium binary, chromedriver) or raises with what is missing."""
    missing = []
    if SELENIUM_ERROR:
        missing.append("python3-selenium (%s)" % SELENIUM_ERROR)
    chrome = (shutil.which("chromium") or shutil.which("chromium-browser")
              or shutil.which("google-chrome"))
    if not chrome:
        missing.append("chromium")
    driver = shutil.which("chromedriver")
    if not driver:
        missing.append("chromium-driver (chromedriver)")
    if missing:
        raise RuntimeError("missing: %s. `make deps` installs them "
                           "(chromium chromium-driver python3-selenium)"
                           % ", ".join(missing))
    return chrome, driver


class Browser:
    """Headless Chromium of a window of `size`, its screenshots named
    <out_dir>/<name>-<step>.png. Waits last `slow` times their timeout.
    expected_statuses: the HTTP error statuses the page is expected to
    get, whose console errors js_errors() leaves out."""

    expected_statuses = ()

    def __init__(self, name, size, out_dir, slow=1.0):
        chrome, driver = find_browser()
        opts = Options()
        opts.binary_location = chrome
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--window-size=%d,%d" % size, "--disable-extensions",
                  "--no-first-run", "--disable-background-networking",
                  "--force-device-scale-factor=1"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service(driver), options=opts)
        self.d.set_script_timeout(15)
        self.name = name
        self.out_dir = out_dir
        self.slow = slow
        self.logs = []

    def quit(self):
        try:
            self.d.quit()
        except Exception:
            pass

    def open(self, url):
        self.d.get(url)
        return self.wait(lambda: self.js(
            "return document.body.dataset.ready === 'true'"), 20)

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def el(self, id_):
        return self.d.find_element(By.ID, id_)

    def css(self, selector):
        return self.d.find_element(By.CSS_SELECTOR, selector)

    def text(self, id_):
        return self.js("const e = document.getElementById(arguments[0]);"
                       "return e ? e.textContent : null;", id_)

    def shown(self, id_):
        return self.js("const e = document.getElementById(arguments[0]);"
                       "return !!e && e.getClientRects().length > 0 && "
                       "getComputedStyle(e).visibility !== 'hidden';", id_)

    def wait(self, fn, timeout=15, interval=0.1):
        """fn's first true value within timeout seconds (times slow),
        else None."""
        deadline = time.monotonic() + timeout * self.slow
        while True:
            try:
                v = fn()
            except WebDriverException:
                v = None
            if v:
                return v
            if time.monotonic() > deadline:
                return None
            time.sleep(interval)

    def set_value(self, id_, value):
        """Types value into a field, as a person would: focused, all of
        it selected and typed over (a page may refresh a field it does
        not see being edited, as between clear() and typing). Typed again
        if the field does not hold it."""
        e = self.el(id_)
        for _ in range(3):
            e.click()
            e.send_keys(Keys.CONTROL, "a")
            e.send_keys(Keys.DELETE)
            e.send_keys(str(value))
            if e.get_attribute("value") == str(value):
                return

    def collect_logs(self):
        try:
            self.logs += self.d.get_log("browser")
        except Exception:
            pass
        return self.logs

    def js_errors(self):
        """Console errors other than the answers the page expects (network
        errors of expected_statuses)."""
        expected = r"status of (%s)" % "|".join(
            str(s) for s in self.expected_statuses)
        out = []
        for e in self.collect_logs():
            if e.get("level") != "SEVERE":
                continue
            msg = e.get("message", "")
            if (self.expected_statuses and e.get("source") == "network"
                    and re.search(expected, msg)):
                continue
            out.append(msg)
        return out

    def console_tail(self):
        """The browser console's last lines, for a diagnostic."""
        return "\n".join(e.get("message", "") for e in self.collect_logs()
                         [-15:]) or "(empty)"

    def _path(self, step):
        os.makedirs(self.out_dir, exist_ok=True)
        return os.path.join(self.out_dir, "%s-%s.png" % (self.name, step))

    def shot(self, step):
        """A screenshot of the viewport."""
        path = self._path(step)
        try:
            self.d.save_screenshot(path)
            sys.stdout.write("# screenshot: %s\n" % path)
        except Exception as e:
            sys.stdout.write("# screenshot %s failed: %s\n" % (path, e))
        sys.stdout.flush()
        return path
