#!/usr/bin/env python3
"""TLS listeners (tps): whole sessions over TLS with Python's ssl module,
the wrong protocol on either port, handshake stallers, certificate errors at
start, certificate reload on SIGHUP, explicit listener lists with IPv6."""

import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tplib  # noqa: E402
from tplib import check_okay  # noqa: E402

T = tplib.Tap()
TLS = "--tls-port"


def wait_log(srv, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in srv.log():
            return True
        time.sleep(0.05)
    return text in srv.log()


def wait_log_count(srv, text, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.log().count(text) >= n:
            return True
        time.sleep(0.05)
    return srv.log().count(text) >= n


def openssl(*args, cwd=None):
    return subprocess.run(["openssl"] + list(args), cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def make_cert(folder, name, cn, days=30):
    """A self-signed P-256 certificate and key; returns (cert, key)."""
    cert = os.path.join(folder, name + ".crt")
    key = os.path.join(folder, name + ".key")
    r = openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                "-out", cert, "-days", str(days), "-subj", "/CN=" + cn)
    if r.returncode != 0:
        raise RuntimeError("openssl req failed: " + r.stderr)
    return cert, key


def make_expired_cert(folder):
    """A certificate that expired in 2020 (openssl ca takes explicit
    dates); returns (cert, key)."""
    key = os.path.join(folder, "old.key")
    csr = os.path.join(folder, "old.csr")
    cert = os.path.join(folder, "old.crt")
    db = os.path.join(folder, "cadb")
    os.mkdir(db)
    open(os.path.join(db, "index.txt"), "w").close()
    with open(os.path.join(db, "serial"), "w") as f:
        f.write("01\n")
    cnf = os.path.join(folder, "ca.cnf")
    with open(cnf, "w") as f:
        f.write("[ca]\ndefault_ca = c\n[c]\ndatabase = %s/index.txt\n"
                "new_certs_dir = %s\nserial = %s/serial\ndefault_md = "
                "sha256\npolicy = p\nunique_subject = no\n[p]\n"
                "commonName = supplied\n" % (db, db, db))
    r = openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                "-out", csr, "-subj", "/CN=expired")
    if r.returncode != 0:
        raise RuntimeError("openssl req failed: " + r.stderr)
    r = openssl("ca", "-batch", "-config", cnf, "-selfsign", "-keyfile", key,
                "-in", csr, "-out", cert, "-startdate", "20200101000000Z",
                "-enddate", "20200102000000Z", "-notext")
    if r.returncode != 0:
        raise RuntimeError("openssl ca failed: " + r.stderr)
    return cert, key


def der_of(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def session(c, name, tag):
    """Connect, Login, GetObjectIDs, GetObjectsByID, Ping,
    GetTimeRemaining: returns [(step, [(frame name, fields)])] for
    comparison, and the object frames."""
    out = []

    def step(label, frames):
        out.append((label, [(f.name, f.fields) for f in frames]))
        return frames

    step("connect", [c.connect("tls-test " + tag)])
    step("login", [c.login(name, "pw")])
    ids = step("objectids", c.request("GetObjectIDs", {
        "key": -1, "start": 0, "amount": -1, "from": -1}))
    wanted = []
    if ids and ids[0].is_("ObjectIDs"):
        wanted = [m["id"] for m in ids[0]["modtimes"]][:20]
    objs = step("objects", c.request("GetObjectsByID", {"ids": wanted}))
    step("ping", [c.ping()])
    step("tr", [f for f in c.request("GetTimeRemaining")])
    return out, ids, objs


def normalised(steps):
    """Drops what differs between two sessions by nature (the time
    left)."""
    out = []
    for label, frames in steps:
        if label == "tr":
            frames = [(n, None) for n, _ in frames]
        out.append((label, frames))
    return out


def test_tls_session():
    with tplib.Server(port_flags=[TLS]) as srv:
        log = srv.log()
        data_tls = os.path.join(srv.data_dir, "tls")
        T.ok("made a self-signed TLS certificate" in log and
             os.path.join(data_tls, "cert.pem") in log,
             "a self-signed certificate is made in <data>/tls and the log "
             "says where", srv.log_tail(20))
        st = os.stat(os.path.join(data_tls, "key.pem"))
        T.is_(st.st_mode & 0o777, 0o600, "the key file is mode 0600")

        with srv.client(port_flag=TLS, tls=True) as c:
            T.ok(c.sock.version() in ("TLSv1.2", "TLSv1.3"),
                 "TLS 1.2 or 1.3 negotiated (%s, %s)" % (c.sock.version(),
                                                        c.sock.cipher()[0]))
            f = c.call("GetFeatures")
            T.ok(1 in f["features"] and 2 not in f["features"],
                 "GetFeatures over TLS has SecureHere (1)", repr(f))
            name = tplib.unique_name("tls")
            check_okay(T, [c.connect()], "Connect over TLS")
            check_okay(T, [c.create_account(name, "pw")],
                       "CreateAccount over TLS")
        with srv.client(port_flag=TLS, tls=True) as c:
            tls_steps, ids, objs = session(c, name, "tls")
            T.ok(all(fr[0] == "Okay" for label, frames in tls_steps
                     if label in ("connect", "login", "ping")
                     for fr in frames),
                 "Connect, Login, Ping over TLS: Okay", repr(tls_steps))
            T.ok(ids and ids[0].fields is not None and objs and
                 all(o.fields is not None for o in objs),
                 "GetObjectIDs and GetObjectsByID over TLS decode (%s, %d "
                 "frames)" % (ids[0].name, len(objs)), repr(objs[:3]))
            g = c.request("GetGames")
            conns = g[-1]["connections"] if g[-1].is_("Game") else []
            T.ok(sorted((x["type"], x["port"]) for x in conns) ==
                 sorted([("tp", srv.port), ("tps", srv.ports[TLS])]),
                 "the Game frame lists the tp and tps listeners",
                 repr(conns))

        with srv.client() as p:
            f = p.call("GetFeatures")
            T.ok(2 in f["features"] and 1 not in f["features"],
                 "GetFeatures over plain TCP has SecureThere (2)", repr(f))
            plain_steps, _, _ = session(p, name, "tls")
        T.is_(normalised(tls_steps), normalised(plain_steps),
              "the same requests get the same answers over TLS and TCP")

        # TP03 over TLS, frames split into one TLS record per byte, and a
        # large pipelined burst whose replies span many records.
        with srv.client(version=3, port_flag=TLS, tls=True) as c:
            seq, data = c.frame("Connect", {"client": "tp03 bytewise"})
            for b in data:
                c.send_bytes(bytes([b]))
            check_okay(T, c.recv_reply(seq), "TP03 Connect sent one byte "
                       "per TLS record: Okay")
            n = 3000
            c.send_bytes(b"".join(tplib.header(3, 100 + i, 27, 0)
                                  for i in range(n)))
            got = []
            for _ in range(n):
                got.append(c.recv_frame(timeout=30))
            T.ok([f.seq for f in got] == list(range(100, 100 + n)) and
                 all(f.is_("Okay") for f in got),
                 "%d pipelined Pings over TLS answered in order" % n)
        T.ok(not srv.error_lines(), "no error lines in the log",
             "\n".join(srv.error_lines()[:5]))
        T.is_(srv.stop(cleanup=False), 0, "SIGTERM -> exit code 0")
        line = [x for x in srv.log().splitlines() if "listener tps" in x]
        T.ok(line and "tls_done=3 tls_failed=0" in line[-1],
             "listener statistics logged at stop (3 handshakes done)",
             srv.log_tail(8))
        srv.cleanup()


def test_wrong_protocol():
    with tplib.Server("--set", "tls_handshake_timeout=1",
                      port_flags=[TLS]) as srv:
        # Plain TP to the TLS port: the handshake fails, the server closes.
        with tplib.Client(srv.ports[TLS]) as c:
            c.send("Connect", {"client": "plain on tls"})
            data, closed = c.read_until_close(10)
            T.ok(closed, "plain TP to the TLS port: closed (%d bytes of "
                 "TLS alert)" % len(data))
        T.ok(wait_log(srv, "TLS handshake failed"),
             "the failed handshake is logged", srv.log_tail(5))
        # TLS to the plain port: the client's handshake fails cleanly.
        try:
            c = srv.client(tls=True)
            c.close()
            T.ok(False, "TLS client on the plain port fails")
        except (ssl.SSLError, OSError) as e:
            T.ok(True, "TLS client on the plain port fails: %s" %
                 e.__class__.__name__)
        T.ok(wait_log(srv, "TLS handshake on a plain port"),
             "logged as a TLS handshake on a plain port", srv.log_tail(5))

        # Protocol versions: 1.2 with a forward-secret AEAD suite; 1.1 and
        # older refused by the server.
        ctx12 = tplib.tls_context()
        ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
        with tplib.Client(srv.ports[TLS], tls=ctx12) as c:
            cipher = c.sock.cipher()[0]
            T.ok(c.sock.version() == "TLSv1.2" and cipher.startswith(
                "ECDHE-") and ("GCM" in cipher or "CHACHA" in cipher),
                "TLS 1.2 gets an ECDHE AEAD suite (%s)" % cipher)
            check_okay(T, [c.connect()], "and serves TP")
        ctx11 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx11.check_hostname = False
        ctx11.verify_mode = ssl.CERT_NONE
        try:
            ctx11.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx11.minimum_version = ssl.TLSVersion.TLSv1
            ctx11.maximum_version = ssl.TLSVersion.TLSv1_1
            before = srv.log().count("TLS handshake failed")
            try:
                tplib.Client(srv.ports[TLS], tls=ctx11).close()
                refused = False
            except (ssl.SSLError, OSError):
                refused = True
            T.ok(refused and wait_log_count(srv, "TLS handshake failed",
                                            before + 1),
                 "a TLS 1.1 client is refused by the server",
                 srv.log_tail(3))
        except (ssl.SSLError, ValueError) as e:
            T.skip("a TLS 1.1 client is refused by the server",
                   "this Python cannot offer TLS 1.1 (%s)" % e)

        # Stallers: nothing at all, half a ClientHello, garbage.
        stallers = []
        for payload in (b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                        b"\x16\x03"):
            s = socket.create_connection(("127.0.0.1", srv.ports[TLS]))
            if payload:
                s.sendall(payload)
            stallers.append(s)
        t0 = time.monotonic()
        with srv.client(port_flag=TLS, tls=True) as good:
            check_okay(T, [good.connect()], "a TLS client is served while "
                       "three others stall their handshakes")
        closed = 0
        for s in stallers:
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass
                closed += 1
            except ConnectionResetError:
                closed += 1
            except socket.timeout:
                pass
            s.close()
        took = time.monotonic() - t0
        T.ok(closed == 3 and took < 8, "the three stallers are closed by "
             "the 1 s handshake timeout (%.1f s)" % took)
        T.ok(wait_log(srv, "TLS handshake not done after"),
             "the handshake timeout is logged", srv.log_tail(5))

        # A TLS record that does not decrypt, after a good handshake.
        raw = socket.create_connection(("127.0.0.1", srv.ports[TLS]))
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = tplib.tls_context().wrap_bio(incoming, outgoing)
        raw.settimeout(10)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
                incoming.write(raw.recv(65536))
        raw.sendall(outgoing.read())
        raw.sendall(b"\x17\x03\x03\x00\x20" + os.urandom(32))
        got = b""
        try:
            while True:
                d = raw.recv(65536)
                if not d:
                    break
                got += d
            ended = True
        except ConnectionResetError:
            ended = True
        except socket.timeout:
            ended = False
        raw.close()
        T.ok(ended, "a forged TLS record: the connection is closed")
        T.ok(wait_log(srv, "TLS error"), "the TLS error is logged",
             srv.log_tail(5))
        with srv.client(port_flag=TLS, tls=True) as c, srv.client() as p:
            check_okay(T, [c.connect()], "TLS still served afterwards")
            check_okay(T, [p.connect()], "plain TCP still served afterwards")
        T.ok(not srv.error_lines(), "no error lines in the log",
             "\n".join(srv.error_lines()[:5]))
        T.is_(srv.stop(cleanup=False), 0, "SIGTERM -> exit code 0")
        log = srv.log()
        srv.cleanup()
        line = [x for x in log.splitlines() if "listener tps" in x]
        failed = int(line[-1].split("tls_failed=")[1].split()[0]) \
            if line else -1
        T.ok(failed >= 5, "tps statistics count the failed handshakes "
             "(tls_failed=%d)" % failed, "\n".join(line))


def start_fails(*args):
    """Runs a server that must not start; returns (exit code, stderr)."""
    srv = tplib.Server(*args)
    srv.port = tplib.free_port()
    try:
        r = subprocess.run(srv.command(), cwd=srv.tmp, capture_output=True,
                           text=True, timeout=srv.START_TIMEOUT,
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stderr
    finally:
        srv.cleanup()


def test_certificate_errors():
    tmp = tempfile.mkdtemp(prefix="tpserver-tlscert-")
    try:
        port = str(tplib.free_port())
        good_cert, good_key = make_cert(tmp, "good", "good")
        other_cert, other_key = make_cert(tmp, "other", "other")
        old_cert, old_key = make_expired_cert(tmp)
        garbage = os.path.join(tmp, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64\n")
        missing = os.path.join(tmp, "missing.pem")
        cases = [
            ("a missing certificate", [missing, good_key], [missing]),
            ("an expired certificate", [old_cert, old_key],
             [old_cert, "expired"]),
            ("a certificate that is not PEM", [garbage, good_key],
             [garbage]),
            ("a key of another certificate", [good_cert, other_key],
             [other_key, good_cert]),
            ("a missing key", [good_cert, missing], [missing]),
        ]
        for label, (cert, key), needles in cases:
            rc, err = start_fails(TLS, port, "--cert", cert, "--key", key)
            T.ok(rc != 0 and all(n in err for n in needles),
                 "%s stops the start with a message naming the file" %
                 label, "exit %s, stderr:\n%s" % (rc, err[-800:]))
        rc, err = start_fails(TLS, port, "--cert", good_cert)
        T.ok(rc != 0 and "tls_key" in err, "--cert without --key is an "
             "error", err[-400:])
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        bport = busy.getsockname()[1]
        rc, err = start_fails(TLS, str(bport), "--cert", good_cert, "--key",
                              good_key)
        busy.close()
        T.ok(rc != 0 and ("127.0.0.1 port %d" % bport) in err and
             "tps" in err, "a TLS port that cannot be bound is an error "
             "naming the address", err[-400:])
    finally:
        subprocess.run(["rm", "-rf", tmp])


def test_reload_on_hup():
    tmp = tempfile.mkdtemp(prefix="tpserver-tlshup-")
    try:
        first = make_cert(tmp, "first", "first")
        second = make_cert(tmp, "second", "second")
        cert = os.path.join(tmp, "live.crt")
        key = os.path.join(tmp, "live.key")
        for src, dst in zip(first, (cert, key)):
            with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
        with tplib.Server("--cert", cert, "--key", key,
                          port_flags=[TLS]) as srv:
            old = srv.client(port_flag=TLS, tls=True)
            T.is_(old.sock.getpeercert(binary_form=True), der_of(first[0]),
                  "the configured certificate is served")
            check_okay(T, [old.connect()], "a TLS session before the HUP")
            for src, dst in zip(second, (cert, key)):
                with open(src, "rb") as f, open(dst + ".new", "wb") as g:
                    g.write(f.read())
                os.rename(dst + ".new", dst)
            srv.signal(signal.SIGHUP)
            T.ok(wait_log(srv, "loaded again"), "SIGHUP reloads the "
                 "certificate (logged)", srv.log_tail(5))
            with srv.client(port_flag=TLS, tls=True) as c:
                T.is_(c.sock.getpeercert(binary_form=True),
                      der_of(second[0]),
                      "the next handshake gets the new certificate")
                check_okay(T, [c.connect()], "and its session works")
            check_okay(T, [old.ping()], "the session opened before the HUP "
                       "goes on")
            # A broken replacement: logged, the last good one stays.
            with open(cert, "w") as f:
                f.write("broken\n")
            before = srv.log().count("keeps its old certificate")
            srv.signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while (srv.log().count("keeps its old certificate") == before
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            T.ok(srv.log().count("keeps its old certificate") > before,
                 "a broken certificate on HUP is logged as an error",
                 srv.log_tail(5))
            with srv.client(port_flag=TLS, tls=True) as c:
                T.is_(c.sock.getpeercert(binary_form=True),
                      der_of(second[0]), "and the last good certificate "
                      "is still served")
            check_okay(T, [old.ping()], "the old session still goes on")
            old.close()
            T.is_(srv.stop(), 0, "SIGTERM -> exit code 0")
    finally:
        subprocess.run(["rm", "-rf", tmp])


def ipv6_available():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def test_listener_list():
    tmp = tempfile.mkdtemp(prefix="tpserver-tlslist-")
    try:
        v6 = ipv6_available()
        p_tls4, p_tls6, p_http6 = (tplib.free_port() for _ in range(3))
        v6host = "::1" if v6 else "127.0.0.1"
        conf = os.path.join(tmp, "tpserver.lua")
        with open(conf, "w") as f:
            f.write("return { listeners = {\n"
                    " { kind = 'tp', host = '127.0.0.1', port = 1 },\n"
                    " { kind = 'tps', host = '127.0.0.1', port = %d },\n"
                    " { kind = 'tps', host = '[%s]', port = %d },\n"
                    " { kind = 'http', host = '%s', port = %d },\n"
                    "} }\n" % (p_tls4, v6host, p_tls6, v6host, p_http6))
        with tplib.Server("-c", conf) as srv:
            for host, port, label in (("127.0.0.1", p_tls4, "IPv4"),
                                      (v6host, p_tls6, "IPv6")):
                with tplib.Client(port, host=host, tls=True) as c:
                    check_okay(T, [c.connect()], "tps listener on %s "
                               "(%s) from the listener list" % (host, label))
            with tplib.Client(p_http6, host=v6host) as c:
                c.http_tunnel()
                check_okay(T, [c.connect()], "http listener on %s" % v6host)
            with srv.client() as c:
                c.connect()
                g = c.request("GetGames")[-1]
                T.is_(sorted(x["type"] for x in g["connections"]),
                      ["tp", "tp+http", "tps", "tps"],
                      "the Game frame lists every listener")
            T.is_(srv.stop(), 0, "SIGTERM -> exit code 0")
        # --tls-port 0 removes the tps listeners of a list.
        with tplib.Server("-c", conf, "--tls-port", "0") as srv:
            T.ok("listening on tps" not in srv.log() and
                 "listening on http" in srv.log(),
                 "--tls-port 0 removes the tps listeners of the list",
                 srv.log_tail(10))
            srv.stop()
        rc, err = start_fails("--set", "listeners=x")
        T.ok(rc != 0 and "listeners" in err, "a bad listener list is a "
             "start-up error", err[-300:])
        with open(conf, "w") as f:
            f.write("return { listeners = { { kind = 'gopher', port = 1 } } }")
        rc, err = start_fails("-c", conf)
        T.ok(rc != 0 and "gopher" in err, "an unknown listener kind is a "
             "start-up error naming it", err[-300:])
    finally:
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    tplib.main(test_tls_session, test_wrong_protocol,
               test_certificate_errors, test_reload_on_hup,
               test_listener_list)
