"""tplib: a small Thousand Parsec client and test harness for the
integration tests (Python 3 standard library only).

* A layout-driven frame codec. Layouts are written in the layout language
  of core/codec.h and mirror lua/tp/proto.lua (test_codec.py checks that
  the two tables agree and that the C codec and this one produce the same
  bytes), so the tests decode every reply independently of the server.
* Server: runs $TPSERVER in the foreground on a free loopback port with a
  temporary data directory, and stops it with SIGTERM.
* Client: a TP03/TP04 client with request/reply helpers that know the
  Sequence rule, raw byte access and timeouts on every socket operation.
* Tap: prints TAP ("ok N - name", diagnostics as "# ..." lines, the plan at
  the end) and sets the exit status.

Nothing here waits without a bound: every socket operation has a deadline
and the server is killed if it does not stop in time.
"""

import atexit
import itertools
import os
import random
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# ----------------------------------------------------------------- codec


class CodecError(Exception):
    """A body that does not match its layout, or a value that cannot be
    encoded."""


_SCALARS = {
    # kind: (struct format, size)
    "I": (">I", 4), "i": (">i", 4), "j": (">I", 4),
    "Q": (">Q", 8), "q": (">q", 8), "J": (">Q", 8),
}


class Layout:
    """A compiled layout. Items are tuples:
    (kind, name) for I i j Q q J S; ("x", n); ("?",); ("*", name);
    ("[", name, Layout) for lists; ("{", name, Layout) for groups.
    A list whose inner layout is one unnamed scalar is a list of values.
    """

    def __init__(self, src):
        self.src = src
        self.items, pos = _parse_items(src, 0, None)
        if pos != len(src):
            raise CodecError("layout %r: unexpected %r at %d" %
                             (src, src[pos], pos))
        self.scalar = (len(self.items) == 1 and self.items[0][1] is None and
                       self.items[0][0] in "IijQqJS")
        self.min_size = _min_size(self.items)

    def __repr__(self):
        return "Layout(%r)" % self.src

    def decode(self, body, pad=False, offset=0, strict=False):
        """Returns (fields dict, next offset). Raises CodecError. strict:
        string padding must be zero bytes (checking the server's output;
        on input the server tolerates any padding bytes)."""
        out = {}
        off = _decode_items(self.items, body, offset, 2 if pad and strict
                            else pad, out)
        return out, off

    def encode(self, fields, pad=False):
        out = bytearray()
        _encode_items(self.items, fields, out, pad)
        return bytes(out)


def _name_at(src, pos):
    if pos >= len(src) or src[pos] != ":":
        return None, pos
    end = pos + 1
    while end < len(src) and (src[end].isalnum() or src[end] == "_"):
        end += 1
    if end == pos + 1:
        raise CodecError("layout %r: empty name at %d" % (src, pos))
    return src[pos + 1:end], end


def _parse_items(src, pos, closer):
    items = []
    while True:
        while pos < len(src) and src[pos].isspace():
            pos += 1
        if pos >= len(src):
            if closer:
                raise CodecError("layout %r: missing %r" % (src, closer))
            return items, pos
        c = src[pos]
        if c == closer:
            return items, pos + 1
        if c in "]}":
            raise CodecError("layout %r: stray %r at %d" % (src, c, pos))
        if c == "?":
            items.append(("?",))
            pos += 1
        elif c == "x":
            end = pos + 1
            while end < len(src) and src[end].isdigit():
                end += 1
            if end == pos + 1:
                raise CodecError("layout %r: x without a count" % src)
            items.append(("x", int(src[pos + 1:end])))
            pos = end
        elif c in "[{":
            sub, pos = _parse_items(src, pos + 1, "]" if c == "[" else "}")
            name, pos = _name_at(src, pos)
            if name is None:
                raise CodecError("layout %r: %s...%s needs a name" %
                                 (src, c, "]" if c == "[" else "}"))
            lay = Layout.__new__(Layout)
            lay.src = "<inner>"
            lay.items = sub
            lay.scalar = (len(sub) == 1 and sub[0][1] is None and
                          sub[0][0] in "IijQqJS")
            lay.min_size = _min_size(sub)
            items.append((c, name, lay))
        elif c == "*":
            name, pos = _name_at(src, pos + 1)
            items.append(("*", name))
        elif c in "IijQqJS":
            name, pos = _name_at(src, pos + 1)
            items.append((c, name))
        else:
            raise CodecError("layout %r: bad character %r at %d" %
                             (src, c, pos))


def _min_size(items):
    n = 0
    for it in items:
        k = it[0]
        if k == "?":
            break
        if k in _SCALARS:
            n += _SCALARS[k][1]
        elif k in "S[":
            n += 4
        elif k == "x":
            n += it[1]
        elif k == "{":
            n += it[2].min_size
    return n


def _pad_len(n):
    return (4 - n % 4) % 4


def _decode_value(it, body, off, pad):
    k = it[0]
    left = len(body) - off
    name = it[1] or "?"
    if k in _SCALARS:
        fmt, size = _SCALARS[k]
        if left < size:
            raise CodecError("frame too short at field '%s' (byte %d of %d)"
                             % (name, off, len(body)))
        (v,) = struct.unpack_from(fmt, body, off)
        if k == "j" and v == 0xFFFFFFFF:
            v = -1
        elif k == "J" and v == 0xFFFFFFFFFFFFFFFF:
            v = -1
        return v, off + size
    if k == "S":
        if left < 4:
            raise CodecError("frame too short at field '%s'" % name)
        (n,) = struct.unpack_from(">I", body, off)
        extra = _pad_len(n) if pad else 0
        if n + extra > left - 4:
            raise CodecError("string runs past the end at field '%s' "
                             "(length %d, %d bytes left)" % (name, n,
                                                            left - 4))
        raw = bytes(body[off + 4:off + 4 + n])
        if pad == 2 and any(body[off + 4 + n:off + 4 + n + extra]):
            raise CodecError("non-zero string padding at field '%s'" % name)
        return raw.decode("utf-8", "surrogateescape"), off + 4 + n + extra
    if k == "[":
        if left < 4:
            raise CodecError("frame too short at list '%s'" % name)
        (count,) = struct.unpack_from(">I", body, off)
        off += 4
        sub = it[2]
        if count * sub.min_size > left - 4:
            raise CodecError("list runs past the end at field '%s' "
                             "(count %d)" % (name, count))
        values = []
        for _ in range(count):
            if sub.scalar:
                v, off = _decode_value(sub.items[0], body, off, pad)
            else:
                v = {}
                off = _decode_items(sub.items, body, off, pad, v)
            values.append(v)
        return values, off
    if k == "{":
        v = {}
        off = _decode_items(it[2].items, body, off, pad, v)
        return v, off
    if k == "*":
        return (bytes(body[off:]).decode("utf-8", "surrogateescape"),
                len(body))
    raise CodecError("bad item %r" % (it,))


def _decode_items(items, body, off, pad, out):
    for it in items:
        k = it[0]
        if k == "?":
            if off == len(body):
                break
            continue
        if k == "x":
            if len(body) - off < it[1]:
                raise CodecError("frame too short at padding")
            off += it[1]
            continue
        v, off = _decode_value(it, body, off, pad)
        out[it[1]] = v
    return off


def _encode_value(it, v, out, pad):
    k = it[0]
    name = it[1] or "?"
    if k in _SCALARS:
        fmt, size = _SCALARS[k]
        if not isinstance(v, int) or isinstance(v, bool):
            raise CodecError("field '%s': integer wanted, got %r" % (name, v))
        if k in "jJ" and v == -1:
            v = (1 << (size * 8)) - 1
        try:
            out += struct.pack(fmt, v)
        except struct.error:
            raise CodecError("field '%s': %r out of range" % (name, v))
        return
    if k == "S":
        if isinstance(v, str):
            v = v.encode("utf-8", "surrogateescape")
        if not isinstance(v, (bytes, bytearray)):
            raise CodecError("field '%s': string wanted, got %r" % (name, v))
        out += struct.pack(">I", len(v)) + v
        if pad:
            out += b"\0" * _pad_len(len(v))
        return
    if k == "[":
        sub = it[2]
        out += struct.pack(">I", len(v))
        for x in v:
            if sub.scalar:
                _encode_value(sub.items[0], x, out, pad)
            else:
                _encode_items(sub.items, x, out, pad)
        return
    if k == "{":
        _encode_items(it[2].items, v, out, pad)
        return
    if k == "*":
        if isinstance(v, str):
            v = v.encode("utf-8", "surrogateescape")
        out += v
        return
    raise CodecError("bad item %r" % (it,))


def _encode_items(items, fields, out, pad):
    for i, it in enumerate(items):
        k = it[0]
        if k == "?":
            rest = [x[1] for x in items[i + 1:] if len(x) > 1 and
                    isinstance(x[1], str)]
            if not any(n in fields for n in rest):
                return
            continue
        if k == "x":
            out += b"\0" * it[1]
            continue
        if it[1] not in fields:
            raise CodecError("missing field '%s'" % it[1])
        _encode_value(it, fields[it[1]], out, pad)


def compile_layout(src):
    return Layout(src)


# The player protocol's frames, mirroring lua/tp/proto.lua:
# (type, name, TP04 layout, TP03 layout) with TP03 None = same as TP04,
# False = the frame does not exist in TP03.
_GET_WITH_ID = "[j]:ids"
_GET_WITH_ID_SLOT = "I:id [j]:slots"
_GET_ID_SEQ4 = "j:key I:start j:amount J:from"
_GET_ID_SEQ3 = "j:key I:start j:amount"
_ID_SEQ4 = "j:key j:remaining [I:id Q:modtime]:modtimes J:from"
_ID_SEQ3 = "j:key j:remaining [I:id Q:modtime]:modtimes"
_REFS = "[i:type I:id]:references"
_POS = "{q:x q:y q:z}:pos"
_ORDER = "I:id j:slot I:otype I:turns [I:resource I:amount]:resources *:params"
_MESSAGE = "I:id j:slot [I]:msgtypes S:subject S:body I:turn " + _REFS
_CATEGORY = "j:id Q:modtime S:name S:description"
_DESIGN = ("j:id Q:modtime [I]:categories S:name S:description i:inuse "
           "i:owner [I:id I:count]:components S:feedback "
           "[I:id S:value]:properties")

PLAYER_FRAMES = [
    (0, "Okay", "S:result", None),
    (1, "Fail", "I:code S:result " + _REFS, "I:code S:result"),
    (2, "Sequence", "I:number", None),
    (3, "Connect", "S:client", None),
    (4, "Login", "S:username S:password", None),
    (5, "GetObjectsByID", _GET_WITH_ID, None),
    (6, "GetObjectsByPos", _POS + " Q:r", None),
    (7, "Object",
     "I:id I:otype S:name S:desc I:parent [I]:contains Q:modtime x16 "
     "*:params",
     "I:id I:otype S:name Q:size " + _POS + " {q:x q:y q:z}:vel "
     "[I]:contains [I]:ordertypes I:orders Q:modtime x8 *:params"),
    (8, "GetOrderDesc", _GET_WITH_ID, None),
    (9, "OrderDesc",
     "I:id S:name S:description [S:name I:type S:description]:parameters "
     "Q:modtime", None),
    (10, "GetOrder", _GET_WITH_ID_SLOT, None),
    (11, "Order", _ORDER, None),
    (12, "OrderInsert", _ORDER, None),
    (13, "RemoveOrder", _GET_WITH_ID_SLOT, None),
    (14, "GetTimeRemaining", "", None),
    (15, "TimeRemaining", "j:time I:reason I:turn S:turnname [I]:waiting",
     "j:time"),
    (16, "GetBoards", _GET_WITH_ID, None),
    (17, "Board", "I:id S:name S:description I:messages Q:modtime", None),
    (18, "GetMessage", _GET_WITH_ID_SLOT, None),
    (19, "Message", _MESSAGE, None),
    (20, "PostMessage", _MESSAGE, None),
    (21, "RemoveMessage", _GET_WITH_ID_SLOT, None),
    (22, "GetResource", _GET_WITH_ID, None),
    (23, "Resource",
     "I:id S:name S:name_plural S:unit S:unit_plural S:description "
     "I:weight I:size Q:modtime", None),
    (24, "Redirect", "S:uri", None),
    (25, "GetFeatures", "", None),
    (26, "Features", "[I]:features", None),
    (27, "Ping", "", None),
    (28, "GetObjectIDs", _GET_ID_SEQ4, _GET_ID_SEQ3),
    (29, "GetObjectIDsByPos", _POS + " Q:r", None),
    (30, "GetObjectIDsByContainer", "I:id", None),
    (31, "ObjectIDs", _ID_SEQ4, _ID_SEQ3),
    (32, "GetOrderDescIDs", _GET_ID_SEQ4, _GET_ID_SEQ3),
    (33, "OrderDescIDs", _ID_SEQ4, _ID_SEQ3),
    (34, "OrderProbe", _ORDER, None),
    (35, "GetBoardIDs", _GET_ID_SEQ4, _GET_ID_SEQ3),
    (36, "BoardIDs", _ID_SEQ4, _ID_SEQ3),
    (37, "GetResourceIDs", _GET_ID_SEQ4, _GET_ID_SEQ3),
    (38, "ResourceIDs", _ID_SEQ4, _ID_SEQ3),
    (39, "GetPlayer", _GET_WITH_ID, None),
    (40, "Player", "I:id S:name S:race Q:modtime", "I:id S:name S:race"),
    (41, "GetCategory", _GET_WITH_ID, None),
    (42, "Category", _CATEGORY, None),
    (43, "AddCategory", _CATEGORY, None),
    (44, "RemoveCategory", _GET_WITH_ID, None),
    (45, "GetCategoryIDs", _GET_ID_SEQ4, _GET_ID_SEQ3),
    (46, "CategoryIDs", _ID_SEQ4, _ID_SEQ3),
    (47, "GetDesign", _GET_WITH_ID, None),
    (48, "Design", _DESIGN, None),
    (49, "AddDesign", _DESIGN, None),
    (50, "ModifyDesign", _DESIGN, None),
    (51, "RemoveDesign", _GET_WITH_ID, None),
    (52, "GetDesignIDs", _GET_ID_SEQ4, _GET_ID_SEQ3),
    (53, "DesignIDs", _ID_SEQ4, _ID_SEQ3),
    (54, "GetComponent", _GET_WITH_ID, None),
    (55, "Component",
     "I:id Q:modtime [I]:categories S:name S:description S:requirements "
     "[I:id S:value]:properties", None),
    (56, "GetComponentIDs", _GET_ID_SEQ4, _GET_ID_SEQ3),
    (57, "ComponentIDs", _ID_SEQ4, _ID_SEQ3),
    (58, "GetProperty", _GET_WITH_ID, None),
    (59, "Property",
     "I:id Q:modtime [I]:categories I:rank S:name S:displayname "
     "S:description S:calculate S:requirements", None),
    (60, "GetPropertyIDs", _GET_ID_SEQ4, _GET_ID_SEQ3),
    (61, "PropertyIDs", _ID_SEQ4, _ID_SEQ3),
    (62, "CreateAccount", "S:username S:password S:email S:comment", None),
    (63, "FinishedTurn", "", None),
    (64, "SetFilters", "[I]:filters", False),
    (65, "GetGames", "", False),
    (66, "Game",
     "S:name S:key [S]:tp S:server S:sertype S:rule S:rulever "
     "[S:type S:dns S:ip I:port]:connections "
     "[I:id S:strval I:intval]:parameters S:mediabase Q:ctime", False),
    (67, "GetObjectDesc", _GET_WITH_ID, False),
    (68, "ObjectDesc",
     "I:id S:name S:description Q:modtime "
     "[I:id S:name S:description [S:name I:type S:description]:parameters]"
     ":groups", False),
    (69, "GetObjectDescIDs", _GET_ID_SEQ4, False),
    (70, "ObjectDescIDs", _ID_SEQ4, False),
    (71, "ModifyObject",
     "I:id I:otype S:name S:desc I:parent [I]:contains Q:modtime x16 "
     "*:params", False),
    (72, "GetPlayerIDs", _GET_ID_SEQ4, False),
    (73, "PlayerIDs", _ID_SEQ4, False),
    (74, "GetOrderQueue", _GET_WITH_ID, False),
    (75, "OrderQueue",
     "I:id Q:modtime I:maxslots I:numorders [I]:ordertypes", False),
    (76, "GetOrderQueueIDs", _GET_ID_SEQ4, False),
    (77, "OrderQueueIDs", _ID_SEQ4, False),
]

TYPE = {}        # name -> type number
NAME = {}        # type number -> name
LAYOUT_SRC = {}  # (version, type) -> layout source
_LAYOUTS = {}    # (version, type) -> Layout
for _t, _n, _l4, _l3 in PLAYER_FRAMES:
    TYPE[_n] = _t
    NAME[_t] = _n
    LAYOUT_SRC[(4, _t)] = _l4
    _LAYOUTS[(4, _t)] = Layout(_l4)
    if _l3 is not False:
        LAYOUT_SRC[(3, _t)] = _l3 or _l4
        _LAYOUTS[(3, _t)] = Layout(_l3 or _l4)

FAIL = {"Protocol": 0, "Frame": 1, "UnavailablePermanently": 2,
        "UnavailableTemporarily": 3, "NoSuchThing": 4, "PermissionDenied": 5,
        "Gone": 6, "FrameVersionNotSupported": 7, "RequestTooBig": 8}
FEATURE_KEEPALIVE = 0x5
FEATURE_ACCOUNT_CREATE = 0x3E8
FEATURE_PADDING = 0x1D00

HEADER_SIZE = 16
MAX_FRAME = 1048576


def layout(version, type_):
    """The Layout of frame type_ in version (3 or 4), or None."""
    return _LAYOUTS.get((version, type_))


def type_of(name_or_type):
    if isinstance(name_or_type, int):
        return name_or_type
    return TYPE[name_or_type]


def header(version, seq, type_, length, frame_version=0):
    """A 16-byte header. version 3 -> "TP03", 4 -> "TP" 04 fv; a bytes value
    of length 4 is used as the first four bytes verbatim."""
    if isinstance(version, (bytes, bytearray)):
        magic = bytes(version)
    elif version == 3:
        magic = b"TP03"
    else:
        magic = b"TP" + bytes([version, frame_version])
    return magic + struct.pack(">III", seq & 0xFFFFFFFF, type_ & 0xFFFFFFFF,
                               length & 0xFFFFFFFF)


def encode_body(version, type_, fields, pad=False):
    lay = layout(version, type_)
    if lay is None:
        raise CodecError("no layout for type %d in TP0%d" % (type_, version))
    return lay.encode(fields or {}, pad)


def encode_frame(version, seq, name_or_type, fields=None, body=None,
                 pad=False, frame_version=0):
    """A whole frame. Give fields (encoded by the layout) or raw body."""
    t = type_of(name_or_type)
    if body is None:
        body = encode_body(3 if version == 3 else 4, t, fields, pad)
    return header(version, seq, t, len(body), frame_version) + body


def split_frames(data):
    """Cuts received bytes into whole frames: a list of (16-byte header,
    body) and the bytes left over (a frame not complete yet)."""
    out = []
    i = 0
    while i + 16 <= len(data):
        n = int.from_bytes(data[i + 12:i + 16], "big")
        if i + 16 + n > len(data):
            break
        out.append((data[i:i + 16], data[i + 16:i + 16 + n]))
        i += 16 + n
    return out, data[i:]


class Frame:
    """A received frame. fields is the decoded body (None when the type is
    unknown or the body did not decode; error then says why). The body
    must decode completely: trailing bytes are an error too."""

    def __init__(self, raw_header, body, pad=False):
        self.raw_header = bytes(raw_header)
        self.body = bytes(body)
        m = self.raw_header[:4]
        if m == b"TP03":
            self.version = 3
            self.frame_version = 0
        elif m[:2] == b"TP" and m[2] < 0x30:
            self.version = m[2]
            self.frame_version = m[3]
        else:
            self.version = None
            self.frame_version = None
        self.seq, self.type, self.length = struct.unpack(
            ">III", self.raw_header[4:16])
        self.name = NAME.get(self.type, "type%d" % self.type)
        self.fields = None
        self.error = None
        lay = layout(self.version, self.type) if self.version in (3, 4) \
            else None
        if lay is None:
            self.error = "no layout for type %d in version %r" % (
                self.type, self.version)
            return
        try:
            fields, used = lay.decode(self.body, pad, strict=True)
            if used != len(self.body):
                self.error = "%d trailing bytes after %s" % (
                    len(self.body) - used, self.name)
            else:
                self.fields = fields
        except CodecError as e:
            self.error = str(e)

    @property
    def raw(self):
        return self.raw_header + self.body

    def get(self, key, default=None):
        return (self.fields or {}).get(key, default)

    def __getitem__(self, key):
        if self.fields is None:
            raise KeyError("%s: undecoded frame (%s)" % (key, self.error))
        return self.fields[key]

    def is_(self, name):
        return self.type == TYPE[name]

    def __repr__(self):
        return "<%s v%s seq=%d len=%d %s>" % (
            self.name, self.version, self.seq, self.length,
            self.fields if self.fields is not None else
            "undecoded: %s %r" % (self.error, self.body[:64]))


# ---------------------------------------------------------------- client


class ProtocolError(Exception):
    """The server sent something the protocol does not allow here."""


class Closed(Exception):
    """The server closed the connection."""


class Timeout(Exception):
    """Nothing (or not enough) arrived in time."""


def tls_context():
    """A TLS client context as TP clients use one: TLS 1.2 or later, the
    server's (self-signed) certificate not verified."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Client:
    """One TP connection. version 4 or 3 selects the header form; tls=True
    (or an ssl.SSLContext) does a TLS handshake first (tls_context())."""

    def __init__(self, port, version=4, host="127.0.0.1", timeout=10.0,
                 tls=None):
        self.version = version
        self.timeout = timeout
        self.seq = 0
        self.pad = False
        self.rbuf = bytearray()
        self.eof = False
        self.async_frames = []     # sequence-0 frames seen while waiting
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = tls if isinstance(tls, ssl.SSLContext) else tls_context()
            try:
                self.sock = ctx.wrap_socket(self.sock)
            except BaseException:
                self.sock.close()
                raise

    def http_tunnel(self, path="/tp", timeout=None):
        """Opens an HTTP tunnel the way libtpproto-py does (PROTOCOL.md
        1.2): POST with an empty body, then the response header. Returns
        the response header as text; TP frames follow on this socket."""
        self.send_bytes(("POST %s HTTP/1.0\r\nHost: localhost\r\n"
                         "Content-Length: 0\r\n\r\n" % path).encode())
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.rbuf:
            if self.eof or not self._fill(deadline):
                raise Closed("connection closed in the HTTP response: %r"
                             % bytes(self.rbuf[:200]))
        end = self.rbuf.index(b"\r\n\r\n") + 4
        head = bytes(self.rbuf[:end])
        del self.rbuf[:end]
        return head.decode("latin-1")

    # -- raw I/O

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_bytes(self, data, timeout=None):
        self.sock.settimeout(timeout or self.timeout)
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise Timeout("send of %d bytes timed out" % len(data))

    def _fill(self, deadline):
        """Reads more bytes into rbuf; False on EOF."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout("timed out with %d bytes buffered" % len(self.rbuf))
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise Timeout("timed out with %d bytes buffered" % len(self.rbuf))
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.rbuf += data
        return True

    def recv_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.rbuf) < n:
            if self.eof or not self._fill(deadline):
                raise Closed("connection closed with %d of %d bytes" %
                             (len(self.rbuf), n))
        data = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return data

    def recv_available(self, timeout=0.5):
        """Whatever arrives until timeout passes or the peer closes."""
        deadline = time.monotonic() + timeout
        try:
            while not self.eof and self._fill(deadline):
                pass
        except Timeout:
            pass
        data = bytes(self.rbuf)
        self.rbuf.clear()
        return data

    def read_until_close(self, timeout=None):
        """(bytes received, True if the server closed before timeout)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while not self.eof and self._fill(deadline):
                pass
        except Timeout:
            pass
        data = bytes(self.rbuf)
        self.rbuf.clear()
        return data, self.eof

    # -- frames

    def next_seq(self):
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        if self.seq == 0:
            self.seq = 1
        return self.seq

    def frame(self, name_or_type, fields=None, seq=None, body=None,
              version=None, frame_version=0):
        """Encodes a frame for this connection; returns (seq, bytes)."""
        if seq is None:
            seq = self.next_seq()
        v = self.version if version is None else version
        return seq, encode_frame(v, seq, name_or_type, fields, body,
                                 self.pad and v == 4, frame_version)

    def send(self, name_or_type, fields=None, seq=None, body=None,
             version=None, frame_version=0):
        """Sends one frame; returns its sequence number."""
        seq, data = self.frame(name_or_type, fields, seq, body, version,
                               frame_version)
        self.send_bytes(data)
        return seq

    def recv_frame(self, timeout=None):
        """The next whole frame (any sequence number)."""
        t = timeout or self.timeout
        hdr = self.recv_exact(HEADER_SIZE, t)
        (length,) = struct.unpack(">I", hdr[12:16])
        if length > MAX_FRAME - HEADER_SIZE:
            raise ProtocolError("server frame with body length %d" % length)
        body = self.recv_exact(length, t)
        return Frame(hdr, body, self.pad)

    def recv_reply(self, seq, timeout=None):
        """The complete answer to request seq: [frame] or [Sequence(n),
        n frames]. Sequence-0 TimeRemaining pushes that arrive meanwhile are
        kept in async_frames. Any other sequence number is an error."""
        frames = []
        want = None
        while want is None or len(frames) < want:
            f = self.recv_frame(timeout)
            if f.seq == 0 and seq != 0 and f.type == TYPE["TimeRemaining"]:
                self.async_frames.append(f)
                continue
            if f.seq != seq:
                raise ProtocolError("reply with sequence %d while waiting "
                                    "for %d: %r" % (f.seq, seq, f))
            frames.append(f)
            if want is None:
                if f.type == TYPE["Sequence"] and f.fields is not None:
                    want = 1 + f["number"]
                else:
                    want = 1
        return frames

    def request(self, name_or_type, fields=None, seq=None, body=None,
                timeout=None, frame_version=0):
        """Sends a request and returns the list of reply frames."""
        seq = self.send(name_or_type, fields, seq, body,
                        frame_version=frame_version)
        frames = self.recv_reply(seq, timeout)
        self._note_filters(name_or_type, fields, body, frames)
        return frames

    def call(self, name_or_type, fields=None, **kw):
        """A request answered by exactly one frame; returns it."""
        frames = self.request(name_or_type, fields, **kw)
        if len(frames) != 1:
            raise ProtocolError("expected one reply frame, got %r" % frames)
        return frames[0]

    def _note_filters(self, name_or_type, fields, body, frames):
        # A SetFilters accepted with the padding filter switches padding on
        # for every later frame (PROTOCOL.md 2.7).
        if type_of(name_or_type) != TYPE["SetFilters"] or self.version != 4:
            return
        if not frames or not frames[0].is_("Okay"):
            return
        try:
            flt = fields["filters"] if fields else \
                layout(4, TYPE["SetFilters"]).decode(body)[0]["filters"]
        except (CodecError, KeyError, TypeError):
            return
        if FEATURE_PADDING in flt:
            self.pad = True

    # -- session helpers (each returns the single reply frame)

    def connect(self, client="tplib-test/1.0"):
        return self.call("Connect", {"client": client})

    def create_account(self, user, password, email="", comment=""):
        return self.call("CreateAccount", {
            "username": user, "password": password, "email": email,
            "comment": comment}, timeout=max(self.timeout, 20))

    def login(self, user, password):
        return self.call("Login", {"username": user, "password": password},
                         timeout=max(self.timeout, 20))

    def ping(self):
        return self.call("Ping")


def fail_info(f):
    """(code, result) of a Fail frame, or None."""
    if f is None or not f.is_("Fail") or f.fields is None:
        return None
    return f["code"], f["result"]


# ------------------------------------------------------- reply checks


def _describe(frames):
    return "\n".join(repr(f) for f in frames) if frames else "(no frames)"


def check_okay(t, frames, name):
    """One Okay frame that decodes completely (a TAP check)."""
    good = (len(frames) == 1 and frames[0].is_("Okay") and
            frames[0].fields is not None)
    return t.ok(good, name, "expected one Okay, got:\n" + _describe(frames))


def check_fail(t, frames, code, name, text=None, version=None):
    """One Fail frame with this code (and text in its message, when
    given), decoding completely in the connection's version: TP04 with a
    reference list, TP03 without (a TAP check)."""
    f = frames[0] if len(frames) == 1 else None
    good = (f is not None and f.is_("Fail") and f.fields is not None and
            f["code"] == code and (text is None or text in f["result"]) and
            (version is None or f.version == version))
    want = "Fail code %d%s" % (code, " containing %r" % text if text else "")
    return t.ok(good, name, "expected one %s, got:\n%s" %
                (want, _describe(frames)))


def expect_close(t, client, name, timeout=10.0):
    """The server closes the connection within timeout; returns the bytes
    that came before the close."""
    data, closed = client.read_until_close(timeout)
    t.ok(closed, name, "connection still open after %.0f s; received %r"
         % (timeout, data[:200]))
    return data


# ---------------------------------------------------------------- server


def tpserver_path():
    p = os.environ.get("TPSERVER") or "./tpserver"
    if os.path.isabs(p):
        return p
    if os.path.exists(p):
        return os.path.abspath(p)
    return os.path.join(ROOT, p)


def under_asan():
    """True when the server under test is a sanitizer build (slower, and
    with a much larger resident size)."""
    return "asan" in tpserver_path() or bool(os.environ.get("ASAN_OPTIONS"))


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


_running = []

# Every test client comes from 127.0.0.1 and many tests make more accounts
# than a real address would: the servers the tests start have the account
# creation limits off, unless a test sets them again (its --set comes
# later and wins).
# The shipped tpserver.lua opens the web side on 127.0.0.1:8080; test
# servers open it only when asked (port_flags=["--web-port"]), on a free
# port, so that they never contend for 8080.
NO_WEB = ["--web-port", "0"]

NO_CREATION_LIMITS = ["--set", "account_creation_limit=0",
                      "--set", "account_creation_total=0"]


def _cleanup_at_exit():
    for srv in list(_running):
        try:
            srv.kill()
        except Exception:
            pass


atexit.register(_cleanup_at_exit)


class Server:
    """A tpserver process on 127.0.0.1 with its own temporary folder.

    Server(*extra_args, data_dir=None): extra_args are appended to the
    command line (e.g. "--set", "allow_account_creation=false"), after
    the defaults (password_iterations=1000, the account creation limits
    off: NO_CREATION_LIMITS), which they override. With
    data_dir the server uses that data directory (e.g. another Server's,
    for restart tests); otherwise <tmp>/data.
    """

    START_TIMEOUT = 60.0 if under_asan() else 20.0
    STOP_TIMEOUT = 30.0 if under_asan() else 15.0

    def __init__(self, *extra_args, data_dir=None, port_flags=()):
        self.extra = list(extra_args)
        # Flags such as "--tls-port" that get a free port each at start;
        # the ports chosen are in self.ports["--tls-port"].
        self.port_flags = list(port_flags)
        self.ports = {}
        self.tmp = tempfile.mkdtemp(prefix="tpserver-test-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "server.log")
        self.proc = None
        self.port = None
        self.returncode = None

    def command(self):
        more = []
        for flag in self.port_flags:
            more += [flag, str(self.ports[flag])]
        if "--web-port" not in self.port_flags and \
                "--web-port" not in self.extra:
            more += NO_WEB
        return [tpserver_path(), "-f", "--port", str(self.port),
                "--bind", "127.0.0.1", "--data", self.data_dir,
                "--set", "password_iterations=1000"] + NO_CREATION_LIMITS + \
            more + self.extra

    def start(self):
        last = ""
        for _ in range(5):
            self.port = free_port()
            for flag in self.port_flags:
                self.ports[flag] = free_port()
            logf = open(self.log_path, "ab")
            try:
                # Run in the temporary folder so that no tpserver.lua of
                # the caller's working directory is picked up.
                self.proc = subprocess.Popen(
                    self.command(), cwd=self.tmp, stdin=subprocess.DEVNULL,
                    stdout=logf, stderr=logf)
            finally:
                logf.close()
            _running.append(self)
            deadline = time.monotonic() + self.START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection(("127.0.0.1", self.port),
                                             timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.02)
            if self.proc.poll() is None:
                self.kill()
                raise RuntimeError("tpserver did not accept connections "
                                   "within %.0f s:\n%s" %
                                   (self.START_TIMEOUT, self.log_tail()))
            _running.remove(self)
            last = self.log_tail()
            if "cannot listen" not in last:
                break
        raise RuntimeError("tpserver exited at start (code %s):\n%s" %
                           (self.proc.returncode, last))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def rss_kb(self):
        """Resident set size in KiB from /proc/<pid>/status (None if gone)."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(self.log().splitlines()[-lines:])

    def error_lines(self):
        """Log lines at level error (internal errors, crashes caught by the
        Lua guard, ...)."""
        return [line for line in self.log().splitlines()
                if " error " in line[:40] or " fatal " in line[:40]]

    def unformatted_log_lines(self):
        """Log lines that still hold printf placeholders (a log call whose
        arguments failed to format)."""
        return [line for line in self.log().splitlines()
                if "%d" in line or "%s" in line]

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout=None):
        """Waits for the process to end; returns its exit code or None."""
        try:
            self.returncode = self.proc.wait(timeout or self.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None
        if self in _running:
            _running.remove(self)
        return self.returncode

    def stop(self, cleanup=True):
        """SIGTERM, bounded wait (then SIGKILL). Returns the exit code (None
        when it had to be killed). Copies the log tail to stderr when the
        exit code is not 0 or the current test file has failures."""
        rc = self.returncode
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            rc = self.wait()
            if rc is None:
                self.kill()
        if rc != 0 or (Tap.current and Tap.current.failed):
            sys.stderr.write("--- tpserver log (port %s, exit %s) ---\n%s\n"
                             % (self.port, rc, self.log_tail(60)))
        if cleanup:
            self.cleanup()
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self in _running:
            _running.remove(self)
        self.cleanup()

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def client(self, version=4, timeout=10.0, port_flag=None, tls=None):
        """A client of the tp listener, or of the one port_flag (e.g.
        "--tls-port") started."""
        port = self.ports[port_flag] if port_flag else self.port
        return Client(port, version=version, timeout=timeout, tls=tls)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.alive():
            self.stop()
        else:
            self.cleanup()


class Daemon:
    """A tpserver started the way an admin does: without -f, so it detaches
    (its pid file, in the data directory by default, names it), and is
    stopped with "tpserver --stop". Under a sanitizer build the daemon's
    reports go to files in its temporary folder (its stderr is /dev/null):
    asan_reports() lists them.

    Daemon(*extra_args, data_dir=None): extra_args are appended to every
    command line (start and --stop/--status/--stats alike).
    """

    START_TIMEOUT = Server.START_TIMEOUT
    STOP_TIMEOUT = Server.STOP_TIMEOUT + 60

    def __init__(self, *extra_args, data_dir=None):
        self.extra = list(extra_args)
        self.tmp = tempfile.mkdtemp(prefix="tpserver-daemon-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.port = free_port()
        self.started_pid = None
        _running.append(self)

    def env(self):
        env = dict(os.environ)
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            if env.get(var) or under_asan():
                env[var] = (env.get(var, "") + ":log_path=" +
                            os.path.join(self.tmp, var.lower())).lstrip(":")
        return env

    def command(self, *more):
        return [tpserver_path(), "--port", str(self.port), "--bind",
                "127.0.0.1", "--data", self.data_dir, "--set",
                "password_iterations=1000"] + NO_CREATION_LIMITS + NO_WEB + \
            self.extra + list(more)

    def run(self, *more, timeout=None):
        """Runs tpserver with the common arguments plus more; returns the
        subprocess.CompletedProcess (text output)."""
        return subprocess.run(self.command(*more), cwd=self.tmp,
                              stdin=subprocess.DEVNULL,
                              capture_output=True, text=True,
                              env=self.env(),
                              timeout=timeout or self.START_TIMEOUT)

    def start(self, *more):
        """Starts the daemon; returns the CompletedProcess of the starting
        command (it has exited when this returns)."""
        res = self.run(*more)
        if res.returncode == 0:
            self.started_pid = self.pid()
        return res

    @property
    def pid_file(self):
        return os.path.join(self.data_dir, "tpserver.pid")

    @property
    def log_path(self):
        return os.path.join(self.data_dir, "tpserver.log")

    def pid(self):
        """The pid in the pid file, or None."""
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def alive(self, pid=None):
        pid = pid or self.started_pid
        return pid is not None and process_alive(pid)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        """tpserver --stop; returns its CompletedProcess."""
        return self.run("--stop", timeout=self.STOP_TIMEOUT)

    def asan_reports(self):
        out = []
        for name in sorted(os.listdir(self.tmp)):
            if name.startswith(("asan_options", "ubsan_options")):
                with open(os.path.join(self.tmp, name), "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
        return out

    def kill(self):
        """Last resort (SIGKILL to the pid we started), then cleanup."""
        pid = self.started_pid
        if pid and self.alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            wait_gone(pid, 10)
        self.cleanup()

    def cleanup(self):
        if self in _running:
            _running.remove(self)
        shutil.rmtree(self.tmp, ignore_errors=True)


def process_alive(pid):
    """True while pid names a process that is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    # The state follows the command name in parentheses.
    return stat[stat.rindex(")") + 2:][:1] not in ("Z", "X", "")


def wait_gone(pid, timeout):
    """Waits (bounded) for pid to end; returns True when it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.02)
    return not process_alive(pid)


_names = itertools.count(1)


def unique_name(prefix):
    """An account name no other of this process's names has (a counter)
    and unlikely to clash with any other test's."""
    return "%s%d%04d%d" % (prefix, os.getpid() % 100000,
                           random.randrange(10000), next(_names))


# ------------------------------------------------------------------- TAP


class Tap:
    """Prints TAP: ok(cond, name, diag) per check, done() at the end."""

    current = None

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.lock = threading.Lock()
        Tap.current = self

    def _line(self, text):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def ok(self, cond, name, diag=None):
        with self.lock:
            self.n += 1
            name = str(name).replace("\n", " ").replace("#", "\\#")
            self._line("%s %d - %s" % ("ok" if cond else "not ok", self.n,
                                       name))
            if not cond:
                self.failed += 1
                if diag is not None:
                    self.diag(diag)
        return bool(cond)

    def diag(self, text):
        for line in str(text).splitlines() or [""]:
            self._line("#   " + line)

    def is_(self, got, want, name):
        return self.ok(got == want, name, "got:  %r\nwant: %r" % (got, want))

    def skip(self, name, reason):
        with self.lock:
            self.n += 1
            self._line("ok %d - %s # SKIP %s" % (self.n, name, reason))

    def run(self, *fns):
        """Runs test functions; an exception is one failed check with the
        traceback as diagnostics."""
        for fn in fns:
            try:
                fn()
            except Exception:
                self.ok(False, "%s: unexpected exception" % fn.__name__,
                        traceback.format_exc())

    def done(self):
        self._line("1..%d" % self.n)
        sys.stdout.flush()
        sys.exit(1 if self.failed else 0)


def main(*fns):
    """Runs fns as one TAP program and exits."""
    t = Tap.current or Tap()
    t.run(*fns)
    t.done()
