/*
 * fuzz_frame.c: a libFuzzer target over the frame reader and the layout
 * codec (core/frame.c, core/codec.c). Built and run by `make fuzz` (see
 * fuzz/fuzz.mk and fuzz/README.md).
 *
 * One input is a byte stream as a client would send it. It is split into
 * frames the way the server's reader does (net.c, process_input): until
 * the first TP03/TP04 frame the first bytes are classified and anything
 * not TP, or too old, ends the stream; after it a frame that does not start
 * with "TP" ends the stream; a 16-byte header; a body length over the 1 MiB
 * frame limit ends the stream; an incomplete frame ends the stream.
 *
 * Every complete TP03/TP04 frame body is copied into a block of exactly its
 * size (so ASan sees any read past it) and decoded with tp_codec_decode by
 * the layout registered for its type: the player set by the header's
 * version, the admin set too, and for TP04 with and without the string
 * padding filter. When a decode succeeds the table is encoded again with
 * tp_codec_encode. Encoding errors are allowed (a u64 or semisigned value
 * past 2^53 comes back as a double the encoder may refuse), crashes,
 * sanitizer reports and leaks are not, and these must hold (else
 * __builtin_trap):
 *   - a failed decode leaves a message and the Lua stack as it was;
 *   - the re-encoding is as long as the bytes the decode consumed;
 *   - for a layout without a raw part or an optional tail, the re-encoding
 *     is those bytes exactly; where the layout has 64-bit items or zero
 *     padding (or the padding filter is on), bytes may differ only if
 *     decoding the re-encoding gives the same table (rounded u64 values,
 *     non-zero pad bytes on input);
 *   - the re-encoding decodes, consuming every byte, and encodes to itself.
 *
 * The bytes the frame reader left over are a layout test: up to the first
 * NUL they are a layout string for tp_layout_compile (NULL with a message,
 * or a layout); the bytes after the NUL are a body decoded by that layout,
 * with the same decode -> encode -> decode -> encode checks as above
 * (except the byte comparison with the input: a made-up layout may name a
 * field twice).
 *
 * The Lua state is made once (LLVMFuzzerInitialize) with the layouts of
 * lua/tp/proto.lua registered; each run ends with lua_settop(L, 0) and a GC
 * step, with a full collection every 256 runs. The layouts registered at
 * set-up are kept out of LeakSanitizer's view (they are referenced only
 * from the LuaJIT heap, which it does not scan). The repository root (for
 * lua/) is $TPSERVER_HOME, else two levels above the binary
 * (build/fuzz/fuzz_frame), else the current directory.
 */
#include "buf.h"
#include "codec.h"
#include "frame.h"

#include <lauxlib.h>
#include <limits.h>
#if defined(__has_include)
#if __has_include(<sanitizer/lsan_interface.h>)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN_INTERFACE 1
#endif
#endif
#include <luajit.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LAYOUT_SRC_MAX 4096          /* longest fuzzed layout string */
#define ENCODE_CAP (8u << 20)        /* output cap of one re-encoding */

static lua_State *L;
static unsigned long runs;

/* What a registered layout holds, by [set][version - 3][type slot]. */
enum { F_KNOWN = 1, F_RAW = 2, F_OPT = 4, F_LOSSY = 8 };
static uint8_t layout_flags[TP_SET_COUNT][2][256];

static unsigned type_slot(uint32_t type)
{
    if (type < 128)
        return type;
    if (type >= 1000 && type < 1128)
        return type - 1000 + 128;
    return 0xFFFF;
}

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_frame: invariant broken: %s%s%s\n", what,
            detail ? ": " : "", detail ? detail : "");
    fflush(stderr);
    __builtin_trap();
}

/* ------------------------------------------------------------ set-up */

/* mark(setname, version, type, src): records what the layout source of a
 * registered frame holds (called from the set-up chunk below). */
static int l_mark(lua_State *Ls)
{
    const char *set = luaL_checkstring(Ls, 1);
    int version = luaL_checkint(Ls, 2);
    uint32_t type = (uint32_t)luaL_checknumber(Ls, 3);
    const char *src = luaL_checkstring(Ls, 4);
    int s = strcmp(set, "admin") == 0 ? TP_SET_ADMIN : TP_SET_PLAYER;
    unsigned slot = type_slot(type);
    if ((version != 3 && version != 4) || slot > 255)
        return luaL_error(Ls, "mark: bad frame %s/%d/%u", set, version,
                          (unsigned)type);
    uint8_t f = F_KNOWN;
    /* Items only: names are dropped first (":modtime" holds no item). */
    for (const char *p = src; *p; p++) {
        if (*p == ':') {
            while (p[1] == '_' || (p[1] >= '0' && p[1] <= '9') ||
                   (p[1] >= 'a' && p[1] <= 'z') ||
                   (p[1] >= 'A' && p[1] <= 'Z'))
                p++;
            continue;
        }
        if (*p == '*')
            f |= F_RAW;
        else if (*p == '?')
            f |= F_OPT;
        else if (*p == 'Q' || *p == 'q' || *p == 'J' || *p == 'x')
            f |= F_LOSSY;
    }
    layout_flags[s][version - 3][slot] = f;
    return 0;
}

static const char setup_lua[] =
    "local proto = require 'tp.proto'\n"
    "proto.register()\n"
    "for setname, rows in pairs { player = proto.player,\n"
    "                             admin = proto.admin } do\n"
    "    for _, row in ipairs(rows) do\n"
    "        local id, tp04, tp03 = row[1], row[3], row[4]\n"
    "        mark(setname, 4, id, tp04)\n"
    "        if tp03 ~= false then mark(setname, 3, id, tp03 or tp04) end\n"
    "    end\n"
    "end\n"
    /* deep_eq(a, b): same structure and values */
    "function deep_eq(a, b)\n"
    "    if type(a) ~= type(b) then return false end\n"
    "    if type(a) ~= 'table' then return a == b end\n"
    "    for k, v in pairs(a) do\n"
    "        if not deep_eq(v, b[k]) then return false end\n"
    "    end\n"
    "    for k in pairs(b) do\n"
    "        if a[k] == nil then return false end\n"
    "    end\n"
    "    return true\n"
    "end\n";

static bool is_root(const char *dir)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/lua/tp/proto.lua", dir);
    return access(path, R_OK) == 0;
}

static void find_root(const char *argv0, char *root, size_t len)
{
    const char *env = getenv("TPSERVER_HOME");
    if (env && *env && is_root(env)) {
        snprintf(root, len, "%s", env);
        return;
    }
    char dir[PATH_MAX];
    if (argv0 && realpath(argv0, dir)) {
        for (int up = 0; up < 3; up++) {
            char *slash = strrchr(dir, '/');
            if (!slash || slash == dir)
                break;
            *slash = '\0';
            if (is_root(dir)) {
                snprintf(root, len, "%s", dir);
                return;
            }
        }
    }
    snprintf(root, len, ".");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char root[PATH_MAX];
    find_root(argc && *argc > 0 ? (*argv)[0] : NULL, root, sizeof root);
    L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "fuzz_frame: luaL_newstate failed\n");
        exit(1);
    }
    luaL_openlibs(L);
    /* As in the server (core/bridge.c): the trace compiler off. */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_tp_codec);
    lua_setfield(L, -2, "tp.codec");
    lua_pop(L, 1);
    lua_pushfstring(L, "%s/lua/?.lua", root);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    lua_register(L, "mark", l_mark);
    /* The registered layouts live as long as the process and are only
     * referenced from the LuaJIT heap, which LeakSanitizer does not scan:
     * keep them out of the leak checks. */
#ifdef HAVE_LSAN_INTERFACE
    __lsan_disable();
#endif
    if (luaL_loadbuffer(L, setup_lua, strlen(setup_lua), "setup") != 0 ||
        lua_pcall(L, 0, 0, 0) != 0) {
        fprintf(stderr, "fuzz_frame: cannot register the layouts of "
                "%s/lua/tp/proto.lua (set TPSERVER_HOME): %s\n", root,
                lua_tostring(L, -1));
        exit(1);
    }
#ifdef HAVE_LSAN_INTERFACE
    __lsan_enable();
#endif
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}

/* ------------------------------------------------------------ codec calls */

typedef struct job {
    const tp_layout_t *lay;  /* layout */
    const uint8_t *body;     /* decode: input */
    size_t len;              /* decode: its length */
    bool pad;                /* string padding filter */
    int rc;                  /* decode result */
    size_t used;             /* decode: bytes consumed */
    tp_buf_t *out;           /* encode: output */
    char err[256];           /* decode message */
} job_t;

static int decode_cb(lua_State *Ls)
{
    job_t *j = lua_touserdata(Ls, 1);
    lua_settop(Ls, 0);
    j->err[0] = '\0';
    j->rc = tp_codec_decode(Ls, j->lay, j->body, j->len, j->pad, &j->used,
                            j->err, sizeof j->err);
    if (j->rc == 0 && lua_gettop(Ls) != 1)
        fail("decode succeeded without exactly one table pushed", NULL);
    if (j->rc != 0 && lua_gettop(Ls) != 0)
        fail("decode failed but left values on the stack", j->err);
    if (j->rc != 0 && (j->err[0] == '\0' ||
                       memchr(j->err, '\0', sizeof j->err) == NULL))
        fail("decode failed without a message", NULL);
    if (j->rc == 0 && j->used > j->len)
        fail("decode consumed more than the body", NULL);
    if (j->rc == 0 && lua_type(Ls, 1) != LUA_TTABLE)
        fail("decode pushed a non-table", NULL);
    return j->rc == 0 ? 1 : 0;
}

/* Decodes; on success pushes the table and returns true. */
static bool decode(const tp_layout_t *lay, const uint8_t *body, size_t len,
                   bool pad, size_t *used)
{
    job_t j = { .lay = lay, .body = body, .len = len, .pad = pad };
    int top = lua_gettop(L);
    lua_pushcfunction(L, decode_cb);
    lua_pushlightuserdata(L, &j);
    int st = lua_pcall(L, 1, 1, 0);
    if (st != 0) {
        /* tp_codec_decode raises only on memory errors. */
        if (st != LUA_ERRMEM)
            fail("decode raised", lua_tostring(L, -1));
        lua_settop(L, top);
        return false;
    }
    if (j.rc != 0) {
        lua_settop(L, top);
        return false;
    }
    *used = j.used;
    return true;
}

static int encode_cb(lua_State *Ls)
{
    job_t *j = lua_touserdata(Ls, 1);
    tp_codec_encode(Ls, 2, j->lay, j->out, j->pad);
    if (j->out->max && j->out->len > j->out->max)
        fail("encode passed the output cap", NULL);
    return 0;
}

/* Encodes the table at idx into out (emptied first); false on an error,
 * which must be a "tp.codec:" message. */
static bool encode(int idx, const tp_layout_t *lay, bool pad, tp_buf_t *out)
{
    job_t j = { .lay = lay, .pad = pad, .out = out };
    if (idx < 0)
        idx = lua_gettop(L) + idx + 1;
    out->len = 0;
    lua_pushcfunction(L, encode_cb);
    lua_pushlightuserdata(L, &j);
    lua_pushvalue(L, idx);
    int st = lua_pcall(L, 2, 0, 0);
    if (st != 0) {
        const char *msg = lua_tostring(L, -1);
        if (st != LUA_ERRMEM && (!msg || !strstr(msg, "tp.codec")))
            fail("encode raised something other than a tp.codec error",
                 msg);
        lua_pop(L, 1);
        return false;
    }
    return true;
}

static bool tables_equal(int a, int b)
{
    int top = lua_gettop(L);
    lua_getglobal(L, "deep_eq");
    lua_pushvalue(L, a);
    lua_pushvalue(L, b);
    if (lua_pcall(L, 2, 1, 0) != 0)
        fail("deep_eq raised", lua_tostring(L, -1));
    bool eq = lua_toboolean(L, -1);
    lua_settop(L, top);
    return eq;
}

/* Decodes body by lay and runs the round-trip checks. flags: F_* of a
 * registered layout, 0 for a made-up one. */
/* A fuzzed layout with '?' inside a list or group: an absent tail there
 * cannot be told from the bytes of what follows (core/codec.h), so only
 * memory safety is checked for it, not the round trip. */
static bool lenient;

static bool nested_optional(const char *src)
{
    int depth = 0;
    for (const char *c = src; *c; c++) {
        if (*c == '[' || *c == '{')
            depth++;
        else if (*c == ']' || *c == '}')
            depth--;
        else if (*c == '?' && depth > 0)
            return true;
    }
    return false;
}

static void roundtrip(const tp_layout_t *lay, const uint8_t *body,
                      size_t len, bool pad, uint8_t flags, const char *what)
{
    int top = lua_gettop(L);
    size_t used, used2;
    if (!decode(lay, body, len, pad, &used))
        return;
    int t1 = lua_gettop(L);
    tp_buf_t e1, e2;
    tp_buf_init(&e1, ENCODE_CAP);
    tp_buf_init(&e2, ENCODE_CAP);
    if (!encode(t1, lay, pad, &e1) || lenient)
        goto done;
    if (flags & F_KNOWN) {
        if (e1.len != used)
            fail("re-encoding length differs from the bytes consumed", what);
    }
    /* The re-encoding decodes whole and encodes to itself. (An empty
     * tp_buf_t has data NULL; the decoder is never given NULL.) */
    static const uint8_t empty[1];
    if (!decode(lay, e1.data ? e1.data : empty, e1.len, pad, &used2))
        fail("the re-encoding does not decode", what);
    int t2 = lua_gettop(L);
    if (used2 != e1.len)
        fail("the re-encoding does not decode whole", what);
    if (!encode(t2, lay, pad, &e2))
        fail("the decoded re-encoding does not encode", what);
    if (e2.len != e1.len || (e1.len && memcmp(e1.data, e2.data, e1.len)))
        fail("encode(decode(encoding)) is not the encoding", what);
    if ((flags & F_KNOWN) && !(flags & (F_RAW | F_OPT)) &&
        (e1.len && memcmp(e1.data, body, e1.len) != 0)) {
        /* Bytes may differ only where the values cannot tell: rounded
         * 64-bit values, skipped pad bytes. */
        if (!(flags & F_LOSSY) && !pad)
            fail("re-encoding differs from the input bytes", what);
        if (!tables_equal(t1, t2))
            fail("re-encoding differs from the input bytes and decodes "
                 "to other values", what);
    }
done:
    tp_buf_free(&e1);
    tp_buf_free(&e2);
    lua_settop(L, top);
}

/* One frame body: every registered layout it could be decoded by. */
static void fuzz_body(int version, uint32_t type, const uint8_t *body,
                      size_t len)
{
    /* An exact-size copy, so ASan sees reads past the body. */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    if (len)
        memcpy(copy, body, len);
    unsigned slot = type_slot(type);
    for (int set = 0; set < TP_SET_COUNT; set++) {
        const tp_frame_def_t *def = tp_codec_lookup(L, set, version, type);
        if (!def)
            continue;
        if (def->type != type)
            fail("lookup returned another type", def->name);
        uint8_t flags = slot <= 255 ? layout_flags[set][version - 3][slot]
                                    : 0;
        if (!(flags & F_KNOWN))
            fail("lookup found a frame proto.lua does not have", def->name);
        roundtrip(def->layout, copy, len, false, flags, def->name);
        if (version == 4)
            roundtrip(def->layout, copy, len, true, flags, def->name);
    }
    free(copy);
}

/* The left-over bytes: "layout\0body". */
static void fuzz_layout(const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    size_t slen = 0;
    while (slen < n && slen < LAYOUT_SRC_MAX && p[slen] != '\0')
        slen++;
    char *src = malloc(slen + 1);
    if (!src)
        return;
    memcpy(src, p, slen);
    src[slen] = '\0';
    char err[128];
    memset(err, 'x', sizeof err);
    tp_layout_t *lay = tp_layout_compile(src, err, sizeof err);
    if (!lay) {
        if (err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL)
            fail("compile failed without a message", src);
    } else if (slen < n && p[slen] == '\0') {
        const uint8_t *body = p + slen + 1;
        size_t blen = n - slen - 1;
        uint8_t *copy = malloc(blen ? blen : 1);
        if (copy) {
            if (blen)
                memcpy(copy, body, blen);
            lenient = nested_optional(src);
            roundtrip(lay, copy, blen, false, 0, src);
            roundtrip(lay, copy, blen, true, 0, src);
            lenient = false;
            free(copy);
        }
    }
    /* Without a message buffer too. */
    tp_layout_t *again = tp_layout_compile(src, NULL, 0);
    if (!again != !lay)
        fail("compile result depends on the message buffer", src);
    tp_layout_free(again);
    tp_layout_free(lay);
    free(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    int conn_version = 0;
    while (off < size) {
        const uint8_t *p = data + off;
        size_t n = size - off;
        if (conn_version == 0) {
            tp_hdr_class_t cls = tp_frame_classify(p, n);
            if (cls == TP_HDR_NOT_TP || cls == TP_HDR_TOO_OLD)
                break;
        } else if (n >= 2 && (p[0] != 'T' || p[1] != 'P')) {
            break;
        }
        if (n < TP_HEADER_SIZE)
            break;
        tp_header_t h;
        tp_frame_parse(p, &h);
        if (h.cls != tp_frame_classify(p, 4))
            fail("tp_frame_parse and tp_frame_classify disagree", NULL);
        if (h.len > TP_FRAME_MAX_DEFAULT - TP_HEADER_SIZE)
            break;
        if (n - TP_HEADER_SIZE < h.len)
            break;
        off += TP_HEADER_SIZE + (size_t)h.len;
        int hv = h.cls == TP_HDR_TP03 ? 3 : h.cls == TP_HDR_TP04 ? 4 : 0;
        if (hv == 0)
            continue;   /* the server answers Fail and skips the body */
        if (conn_version == 0)
            conn_version = hv;
        fuzz_body(hv, h.type, p + TP_HEADER_SIZE, h.len);
    }
    fuzz_layout(data + off, size - off);

    lua_settop(L, 0);
    if (++runs % 256 == 0)
        lua_gc(L, LUA_GCCOLLECT, 0);
    else
        lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
