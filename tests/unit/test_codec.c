/*
 * test_codec.c: unit tests for core/codec.c (layout compiler, decoder,
 * encoder, frame registry and the "tp.codec" Lua module) and for the header
 * classification in core/frame.c.
 *
 * The frame layouts under test are the real ones: a LuaJIT state loads
 * lua/tp/proto.lua and registers them, exactly as the server does at boot.
 * The repository root (for lua/ and tests/fixtures/) is $TPSERVER_HOME, else
 * the nearest parent of the test binary holding lua/tp/proto.lua, else the
 * current directory.
 *
 *  1. golden vectors: every tests/fixtures/vectors/<name>.hex (written by
 *     make_vectors.py there, independently of this codec) decodes by its
 *     registered layout to the expected field values, and those values
 *     encode back to the same bytes, header included; every strict prefix
 *     of each body fails cleanly (or decodes up to the raw part);
 *  2. shared vectors: when <root>/../shared/spec/vectors exists, each of its
 *     frames is byte-identical to our vector of the same name and decodes by
 *     our layouts consuming every byte (skipped when the folder is absent);
 *  3. codec edge cases: round trips of every item kind, decode failures,
 *     encode errors, the output cap, layout compile errors;
 *  4. the tp.codec Lua API;
 *  5. tp_frame_classify / tp_frame_parse / tp_frame_write_header.
 */
#include "buf.h"
#include "codec.h"
#include "frame.h"
#include "tap.h"

#include <dirent.h>
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root[PATH_MAX];     /* repository root, no trailing slash */

/* ------------------------------------------------------------ helpers */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parses hex text: lines starting with '#' are comments, white space is
 * ignored, every other character must be a hex digit and the digits must
 * pair up. Returns a malloc'd block (never NULL on success, even when
 * empty) or NULL on bad text. */
static uint8_t *parse_hex(const char *text, size_t *n)
{
    size_t cap = strlen(text) / 2 + 1, len = 0;
    uint8_t *out = malloc(cap);
    int hi = -1;
    bool line_start = true;
    if (!out)
        return NULL;
    for (const char *p = text; *p; p++) {
        if (line_start && *p == '#') {
            while (*p && *p != '\n')
                p++;
            if (!*p)
                break;
            continue;       /* p at '\n': the next char starts a line */
        }
        line_start = *p == '\n';
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            continue;
        int v = hexval((unsigned char)*p);
        if (v < 0)
            goto bad;
        if (hi < 0) {
            hi = v;
        } else {
            out[len++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0)
        goto bad;
    *n = len;
    return out;
bad:
    free(out);
    return NULL;
}

/* Reads a whole file into a NUL-terminated malloc'd string. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (len + 1 < cap)
            break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static uint8_t *load_hex_file(const char *path, size_t *n)
{
    char *text = read_file(path);
    if (!text)
        return NULL;
    uint8_t *bytes = parse_hex(text, n);
    free(text);
    return bytes;
}

static bool file_exists(const char *path)
{
    return access(path, R_OK) == 0;
}

static bool is_root(const char *dir)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/lua/tp/proto.lua", dir);
    return file_exists(path);
}

static void find_root(const char *argv0)
{
    const char *env = getenv("TPSERVER_HOME");
    if (env && *env && is_root(env)) {
        snprintf(root, sizeof root, "%s", env);
        return;
    }
    char dir[PATH_MAX];
    const char *starts[] = { argv0, "/proc/self/exe" };
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        if (!starts[i] || !realpath(starts[i], dir))
            continue;
        for (;;) {
            char *slash = strrchr(dir, '/');
            if (!slash)
                break;
            *slash = '\0';
            if (dir[0] == '\0')
                break;
            if (is_root(dir)) {
                snprintf(root, sizeof root, "%s", dir);
                return;
            }
        }
    }
    snprintf(root, sizeof root, ".");
}

/* Prints where two byte strings first differ. */
static void diag_bytes(const uint8_t *got, size_t gn, const uint8_t *want,
                       size_t wn)
{
    size_t i = 0;
    while (i < gn && i < wn && got[i] == want[i])
        i++;
    printf("#   got %zu bytes, want %zu; first difference at byte %zu", gn,
           wn, i);
    if (i < gn && i < wn)
        printf(" (got %02x, want %02x)", got[i], want[i]);
    printf("\n");
}

static bool same_bytes(const uint8_t *got, size_t gn, const uint8_t *want,
                       size_t wn)
{
    return gn == wn && (gn == 0 || memcmp(got, want, gn) == 0);
}

/* ------------------------------------------------------------ Lua side */

/* ok(cond, name) -> cond as a boolean */
static int l_ok(lua_State *L)
{
    int pass = lua_toboolean(L, 1);
    TAP_OK(pass, "%s", luaL_optstring(L, 2, "(unnamed)"));
    lua_pushboolean(L, pass);
    return 1;
}

/* diag(msg): a TAP comment line */
static int l_diag(lua_State *L)
{
    printf("#   %s\n", luaL_checkstring(L, 1));
    fflush(stdout);
    return 0;
}

static const char prelude[] =
    "codec = require 'tp.codec'\n"
    "proto = require 'tp.proto'\n"
    "decoded = {}\n"
    "function show(v)\n"
    "    if type(v) == 'string' then return ('%q'):format(v) end\n"
    "    if type(v) == 'number' then return ('%.17g'):format(v) end\n"
    "    return tostring(v)\n"
    "end\n"
    /* hex'00 0a ...' -> the bytes */
    "function hex(s)\n"
    "    s = s:gsub('%s+', '')\n"
    "    assert(#s % 2 == 0 and not s:find('[^%x]'), 'bad hex')\n"
    "    return (s:gsub('%x%x', function(h)\n"
    "        return string.char(tonumber(h, 16))\n"
    "    end))\n"
    "end\n"
    "function zeros(n) return string.rep('\\0', n) end\n"
    /* deep_eq(got, want) -> true | false, where they differ */
    "function deep_eq(got, want, path)\n"
    "    path = path or 'frame'\n"
    "    if type(got) ~= type(want) then\n"
    "        return false, ('%s: got %s, want %s'):format(path, show(got),\n"
    "                                                     show(want))\n"
    "    end\n"
    "    if type(want) ~= 'table' then\n"
    "        if got ~= want then\n"
    "            return false, ('%s: got %s, want %s'):format(path,\n"
    "                show(got), show(want))\n"
    "        end\n"
    "        return true\n"
    "    end\n"
    "    for k, v in pairs(want) do\n"
    "        local same, why = deep_eq(got[k], v, path .. '.' .. tostring(k))\n"
    "        if not same then return false, why end\n"
    "    end\n"
    "    for k in pairs(got) do\n"
    "        if want[k] == nil then\n"
    "            return false, path .. '.' .. tostring(k) ..\n"
    "                ': unexpected field'\n"
    "        end\n"
    "    end\n"
    "    return true\n"
    "end\n"
    "function is(got, want, name)\n"
    "    local pass = ok(got == want, name)\n"
    "    if not pass then\n"
    "        diag(('got %s, want %s'):format(show(got), show(want)))\n"
    "    end\n"
    "    return pass\n"
    "end\n"
    "function same(got, want, name)\n"
    "    local eq, why = deep_eq(got, want)\n"
    "    if not ok(eq, name) then diag(why) end\n"
    "    return eq\n"
    "end\n"
    /* raises(text, name, f, ...): f(...) raises an error containing text */
    "function raises(text, name, f, ...)\n"
    "    local st, err = pcall(f, ...)\n"
    "    local pass = ok(not st and tostring(err):find(text, 1, true), name)\n"
    "    if not pass then\n"
    "        diag(st and 'no error raised' or 'error: ' .. tostring(err))\n"
    "    end\n"
    "    return pass\n"
    "end\n"
    /* The value layout of each object parameter type (PROTOCOL.md 10.2). */
    "PARAM = {\n"
    "    [0] = '{q:x q:y q:z I:relative}', [1] = '{q:x q:y q:z I:relative}',\n"
    "    [2] = '{q:x q:y q:z I:relative}', [3] = '{i:slot}',\n"
    "    [4] = '{I:queueid}',\n"
    "    [5] = '[I:resource I:stored I:minable I:unavailable]',\n"
    "    [6] = '{i:reftype I:id}', [7] = '[i:reftype I:id I:count]',\n"
    "    [8] = 'I', [9] = 'Q', [10] = 'S',\n"
    "}\n"
    /* params_layout(objectdesc) -> the layout of an Object's params part */
    "function params_layout(desc)\n"
    "    local items = {}\n"
    "    for _, g in ipairs(desc.groups) do\n"
    "        for _, p in ipairs(g.parameters) do\n"
    "            local name = p.name:lower():gsub('[^%w_]', '_')\n"
    "            items[#items + 1] = assert(PARAM[p.type], 'param type') ..\n"
    "                ':' .. name\n"
    "        end\n"
    "    end\n"
    "    return table.concat(items, ' ')\n"
    "end\n"
    "proto.register()\n";

/* Runs a Lua chunk; a load or run error is a failed check. */
static void run_chunk(lua_State *L, const char *name, const char *src)
{
    if (luaL_loadbuffer(L, src, strlen(src), name) != 0 ||
        lua_pcall(L, 0, 0, 0) != 0) {
        TAP_OK(0, "chunk %s runs: %s", name, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

/* Pushes the value of the Lua expression src; false on error (nothing
 * pushed, a failed check recorded). */
static bool push_expr(lua_State *L, const char *src)
{
    char *chunk = malloc(strlen(src) + 8);
    if (!chunk)
        return false;
    strcpy(chunk, "return ");
    strcat(chunk, src);
    int rc = luaL_loadstring(L, chunk);
    free(chunk);
    if (rc != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        TAP_OK(0, "expression %s: %s", src, lua_tostring(L, -1));
        lua_pop(L, 1);
        return false;
    }
    return true;
}

/* Compares the tables at got and want with deep_eq; prints where they
 * differ. */
static bool tables_equal(lua_State *L, int got, int want, char *why,
                         size_t whylen)
{
    int top = lua_gettop(L);
    if (got < 0)
        got = top + got + 1;
    if (want < 0)
        want = top + want + 1;
    lua_getglobal(L, "deep_eq");
    lua_pushvalue(L, got);
    lua_pushvalue(L, want);
    if (lua_pcall(L, 2, 2, 0) != 0) {
        snprintf(why, whylen, "deep_eq: %s", lua_tostring(L, -1));
        lua_settop(L, top);
        return false;
    }
    bool eq = lua_toboolean(L, -2);
    snprintf(why, whylen, "%s", eq ? "" : lua_tostring(L, -1));
    lua_settop(L, top);
    return eq;
}

static int l_encode_cb(lua_State *L)
{
    const tp_layout_t *lay = lua_touserdata(L, 1);
    tp_buf_t *out = lua_touserdata(L, 2);
    tp_codec_encode(L, 4, lay, out, lua_toboolean(L, 3));
    return 0;
}

/* Encodes the table at idx with tp_codec_encode under lua_pcall. Returns 0,
 * or -1 with the error message in err. */
static int encode_table(lua_State *L, int idx, const tp_layout_t *lay,
                        tp_buf_t *out, bool pad, char *err, size_t errlen)
{
    if (idx < 0)
        idx = lua_gettop(L) + idx + 1;
    lua_pushcfunction(L, l_encode_cb);
    lua_pushlightuserdata(L, (void *)lay);
    lua_pushlightuserdata(L, out);
    lua_pushboolean(L, pad);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 4, 0, 0) != 0) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    err[0] = '\0';
    return 0;
}

/* ------------------------------------------------------------ 1. vectors */

typedef struct vcase {
    const char *name;    /* fixture file name without ".hex" */
    int set;             /* TP_SET_PLAYER or TP_SET_ADMIN */
    int version;         /* 3 or 4 */
    uint32_t type;       /* frame type number */
    const char *tname;   /* registered frame name */
    uint32_t seq;        /* header sequence number */
    bool pad;            /* string padding filter on */
    bool raw;            /* the layout ends in a raw "*:params" part */
    const char *fields;  /* Lua expression: the decoded field values */
} vcase_t;

#define P TP_SET_PLAYER
#define A TP_SET_ADMIN

static const vcase_t vectors[] = {
    { "tp04_connect", P, 4, 3, "Connect", 1, false, false,
      "{ client = 'example-client/1.0' }" },
    { "tp04_login", P, 4, 4, "Login", 2, false, false,
      "{ username = 'alice@tp', password = 'secret' }" },
    { "tp04_create_account", P, 4, 62, "CreateAccount", 2, false, false,
      "{ username = 'bob@tp', password = 'hunter2', "
      "email = 'bob@example.org', comment = '' }" },
    { "tp04_get_features", P, 4, 25, "GetFeatures", 3, false, false, "{}" },
    { "tp04_get_objects_by_id", P, 4, 5, "GetObjectsByID", 4, false, false,
      "{ ids = { 0 } }" },
    { "tp04_get_object_ids", P, 4, 28, "GetObjectIDs", 5, false, false,
      "{ key = -1, start = 0, amount = 10, from = -1 }" },
    { "tp04_get_object_ids_by_pos", P, 4, 29, "GetObjectIDsByPos", 6, false,
      false, "{ pos = { x = -1000, y = 2000, z = -3 }, r = 500 }" },
    { "tp04_ping", P, 4, 27, "Ping", 7, false, false, "{}" },
    { "tp04_okay", P, 4, 0, "Okay", 2, false, false,
      "{ result = 'Welcome' }" },
    { "tp04_okay_padded", P, 4, 0, "Okay", 2, true, false,
      "{ result = 'Welcome' }" },
    { "tp04_fail", P, 4, 1, "Fail", 4, false, false,
      "{ code = 4, result = 'No Such Object', "
      "references = { { type = 1, id = 42 } } }" },
    { "tp04_fail_norefs", P, 4, 1, "Fail", 2, false, false,
      "{ code = 1, result = 'Login Error - bad username or password', "
      "references = {} }" },
    { "tp04_sequence", P, 4, 2, "Sequence", 4, false, false,
      "{ number = 1 }" },
    { "tp04_features", P, 4, 26, "Features", 3, false, false,
      "{ features = { 5, 6, 0x3E8, 0x1D00 } }" },
    { "tp04_object_ids", P, 4, 31, "ObjectIDs", 5, false, false,
      "{ key = 1, remaining = 0, modtimes = { "
      "{ id = 0, modtime = 1262304000 }, { id = 1, modtime = 1262304005 } },"
      " from = -1 }" },
    { "tp04_time_remaining_async", P, 4, 15, "TimeRemaining", 0, false,
      false,
      "{ time = 120, reason = 1, turn = 3, turnname = '', "
      "waiting = { 1, 2 } }" },
    { "tp04_object_desc_universe", P, 4, 68, "ObjectDesc", 8, false, false,
      "{ id = 0, name = 'Universe', description = 'The Universe', "
      "  modtime = 1262304000, groups = {"
      "  { id = 1, name = 'Positional',"
      "    description = 'Positional information', parameters = {"
      "    { name = 'Position', type = 0,"
      "      description = 'The position of the object' },"
      "    { name = 'Velocity', type = 1,"
      "      description = 'The velocity of the object' },"
      "    { name = 'Size', type = 9,"
      "      description = 'The size of the object' } } },"
      "  { id = 2, name = 'Informational',"
      "    description = 'Information about the universe', parameters = {"
      "    { name = 'Year', type = 8,"
      "      description = 'The Age of the universe' } } } } }" },
    { "tp04_object_universe", P, 4, 7, "Object", 4, false, true,
      "{ id = 0, otype = 0, name = 'The Universe', desc = '', parent = 0,"
      "  contains = { 1 }, modtime = 1262304000,"
      "  params = zeros(56) .. hex'00 00 00 17 48 76 e8 00 00 00 00 03' }" },
    { "tp03_connect", P, 3, 3, "Connect", 1, false, false,
      "{ client = 'example-client/1.0' }" },
    { "tp03_get_object_ids", P, 3, 28, "GetObjectIDs", 5, false, false,
      "{ key = -1, start = 0, amount = -1 }" },
    { "tp03_fail", P, 3, 1, "Fail", 4, false, false,
      "{ code = 4, result = 'No Such Object' }" },
    { "tp03_time_remaining_async", P, 3, 15, "TimeRemaining", 0, false,
      false, "{ time = 120 }" },
    { "tp03_object_universe", P, 3, 7, "Object", 4, false, true,
      "{ id = 0, otype = 0, name = 'The Universe', size = 1e11,"
      "  pos = { x = 0, y = 0, z = 0 }, vel = { x = 0, y = 0, z = 0 },"
      "  contains = { 1 }, ordertypes = {}, orders = 0,"
      "  modtime = 1262304000, params = hex'00 00 00 03' }" },
    { "admin_command", A, 4, 1006, "Command", 5, false, true,
      "{ ctype = 8, params = hex'00 00 00 0b' .. 'turn_length' }" },
    { "admin_command_result", A, 4, 1007, "CommandResult", 5, false, false,
      "{ status = 0, output = 'Setting \"turn_length\" is set to \"600\".' }" },
    { "admin_log_message", A, 4, 1000, "LogMessage", 0, false, false,
      "{ timestamp = 1262304000, level = 1, message = 'Game started' }" },
    { "admin_command_desc", A, 4, 1003, "CommandDesc", 3, false, false,
      "{ id = 8, name = 'get-setting', help = 'Show a setting',"
      "  parameters = { { name = 'setting', type = 0,"
      "                   description = 'Setting name' } },"
      "  modtime = 1262304000 }" },
};

/* Every strict prefix of body must fail with a message and leave the stack
 * alone, except prefixes reaching raw_start (the start of a raw part),
 * which decode cleanly and consume everything. Each prefix is decoded from
 * a block of exactly its size so ASan sees any read past it. */
static bool check_prefixes(lua_State *L, const tp_layout_t *lay,
                           const uint8_t *body, size_t blen, bool pad,
                           size_t raw_start, char *why, size_t whylen)
{
    static uint8_t empty[1];
    for (size_t k = 0; k < blen; k++) {
        uint8_t *copy = malloc(k);
        uint8_t *p = copy ? copy : empty;
        if (k)
            memcpy(p, body, k);
        int top = lua_gettop(L);
        size_t used = SIZE_MAX;
        char err[256] = "";
        int rc = tp_codec_decode(L, lay, p, k, pad, &used, err, sizeof err);
        bool good;
        if (k >= raw_start)
            good = rc == 0 && used == k && lua_gettop(L) == top + 1;
        else
            good = rc == -1 && err[0] && lua_gettop(L) == top;
        lua_settop(L, top);
        free(copy);
        if (!good) {
            snprintf(why, whylen, "prefix of %zu bytes: rc %d, used %zu, "
                     "err \"%s\"", k, rc, used, err);
            return false;
        }
    }
    return true;
}

static void test_vector(lua_State *L, const vcase_t *vc)
{
    char path[PATH_MAX + 64], err[512], why[512];
    size_t n;
    int top = lua_gettop(L);
    snprintf(path, sizeof path, "%s/tests/fixtures/vectors/%s.hex", root,
             vc->name);
    uint8_t *frame = load_hex_file(path, &n);
    if (!TAP_OK(frame && n >= TP_HEADER_SIZE, "%s: fixture loads",
                vc->name)) {
        free(frame);
        return;
    }
    const uint8_t *body = frame + TP_HEADER_SIZE;
    size_t blen = n - TP_HEADER_SIZE;

    /* The header. */
    tp_header_t h;
    tp_frame_parse(frame, &h);
    TAP_IS_INT(h.cls, vc->version == 3 ? TP_HDR_TP03 : TP_HDR_TP04,
               "%s: header class", vc->name);
    TAP_OK(h.seq == vc->seq && h.type == vc->type && h.len == blen &&
           h.frame_version == 0, "%s: header seq %u type %u len %zu",
           vc->name, vc->seq, vc->type, blen);

    /* The registry, from C and from Lua. */
    const tp_frame_def_t *def = tp_codec_lookup(L, vc->set, vc->version,
                                                vc->type);
    if (!TAP_OK(def && def->type == vc->type && def->layout &&
                strcmp(def->name, vc->tname) == 0,
                "%s: registered as %s", vc->name, vc->tname)) {
        free(frame);
        return;
    }
    lua_getglobal(L, "codec");
    lua_getfield(L, -1, "lookup");
    lua_pushstring(L, vc->set == TP_SET_ADMIN ? "admin" : "player");
    lua_pushinteger(L, vc->version);
    lua_pushnumber(L, vc->type);
    if (lua_pcall(L, 3, 2, 0) == 0) {
        TAP_OK(lua_isstring(L, -2) && strcmp(lua_tostring(L, -2),
                                             vc->tname) == 0 &&
               lua_isuserdata(L, -1),
               "%s: codec.lookup gives %s and a layout", vc->name,
               vc->tname);
    } else {
        TAP_OK(0, "%s: codec.lookup: %s", vc->name, lua_tostring(L, -1));
    }
    lua_settop(L, top);

    /* Decode, compare every field. */
    size_t used = SIZE_MAX;
    err[0] = '\0';
    int rc = tp_codec_decode(L, def->layout, body, blen, vc->pad, &used, err,
                             sizeof err);
    if (!TAP_OK(rc == 0 && used == blen && lua_gettop(L) == top + 1,
                "%s: decodes, consuming all %zu bytes", vc->name, blen)) {
        printf("#   rc %d used %zu err \"%s\"\n", rc, used, err);
        lua_settop(L, top);
        free(frame);
        return;
    }
    int got = lua_gettop(L);
    lua_getglobal(L, "decoded");
    lua_pushvalue(L, got);
    lua_setfield(L, -2, vc->name);
    lua_pop(L, 1);
    if (!push_expr(L, vc->fields)) {
        lua_settop(L, top);
        free(frame);
        return;
    }
    int want = lua_gettop(L);
    if (!TAP_OK(tables_equal(L, got, want, why, sizeof why),
                "%s: field values", vc->name))
        printf("#   %s\n", why);

    /* Encode the expected values: header + body are the vector. */
    tp_buf_t out;
    tp_buf_init(&out, 0);
    uint8_t hdr[TP_HEADER_SIZE];
    rc = encode_table(L, want, def->layout, &out, vc->pad, err, sizeof err);
    if (TAP_OK(rc == 0, "%s: values encode", vc->name)) {
        tp_frame_write_header(hdr, vc->version, vc->seq, vc->type,
                              (uint32_t)out.len);
        bool same = out.len == blen &&
                    memcmp(hdr, frame, TP_HEADER_SIZE) == 0 &&
                    same_bytes(out.data, out.len, body, blen);
        if (!TAP_OK(same, "%s: encoding is the vector, header included",
                    vc->name)) {
            if (memcmp(hdr, frame, TP_HEADER_SIZE) != 0)
                diag_bytes(hdr, TP_HEADER_SIZE, frame, TP_HEADER_SIZE);
            if (!same_bytes(out.data, out.len, body, blen))
                diag_bytes(out.data, out.len, body, blen);
        }
    } else {
        printf("#   %s\n", err);
    }
    /* The decoded table encodes to the same body too. */
    out.len = 0;
    rc = encode_table(L, got, def->layout, &out, vc->pad, err, sizeof err);
    TAP_OK(rc == 0 && same_bytes(out.data, out.len, body, blen),
           "%s: decoded table re-encodes to the same body", vc->name);
    tp_buf_free(&out);

    /* Every strict prefix fails cleanly (up to a raw part). */
    size_t raw_start = SIZE_MAX;
    if (vc->raw) {
        size_t plen = 0;
        lua_getfield(L, got, "params");
        lua_tolstring(L, -1, &plen);
        lua_pop(L, 1);
        raw_start = blen - plen;
    }
    TAP_OK(check_prefixes(L, def->layout, body, blen, vc->pad, raw_start,
                          why, sizeof why),
           "%s: every strict prefix of the body %s", vc->name,
           vc->raw ? "fails or stops cleanly in the raw part"
                   : "fails cleanly");
    if (strstr(why, "prefix"))
        printf("#   %s\n", why);

    /* Trailing bytes are left to the caller (a raw part takes them). */
    uint8_t *longer = malloc(blen + 3);
    if (longer) {
        if (blen)
            memcpy(longer, body, blen);
        memcpy(longer + blen, "\x01\x02\x03", 3);
        used = SIZE_MAX;
        rc = tp_codec_decode(L, def->layout, longer, blen + 3, vc->pad,
                             &used, err, sizeof err);
        TAP_OK(rc == 0 && used == (vc->raw ? blen + 3 : blen),
               "%s: 3 trailing bytes %s", vc->name,
               vc->raw ? "go to the raw part" : "are left unconsumed");
        free(longer);
    }
    lua_settop(L, top);
    free(frame);
}

/* Object parameters and the other raw parts, decoded with layouts of their
 * own built from the description frames. */
static const char t_params[] =
    "local desc = decoded.tp04_object_desc_universe\n"
    "local obj = decoded.tp04_object_universe\n"
    "if not ok(desc and obj, 'ObjectDesc and Object vectors decoded') then\n"
    "    return\n"
    "end\n"
    "local src = params_layout(desc)\n"
    "is(src, '{q:x q:y q:z I:relative}:position '\n"
    "     .. '{q:x q:y q:z I:relative}:velocity Q:size I:year',\n"
    "   'Universe params layout built from its ObjectDesc')\n"
    "local lay = codec.compile(src)\n"
    "local p, nxt = codec.decode(lay, obj.params)\n"
    "is(nxt, #obj.params, 'Object params decode, consuming every byte')\n"
    "same(p, { position = { x = 0, y = 0, z = 0, relative = 0 },\n"
    "          velocity = { x = 0, y = 0, z = 0, relative = 0 },\n"
    "          size = 1e11, year = 3 }, '... to the vector values')\n"
    "is(codec.encode(lay, p), obj.params, 'params re-encode to the bytes')\n"
    /* A moving object away from the origin: negative i64 coordinates. */
    "local moved = {\n"
    "    position = { x = -1500000000000, y = 42, z = -1, relative = 0 },\n"
    "    velocity = { x = -1000, y = 0, z = 2^53, relative = 7 },\n"
    "    size = 2^63, year = 4294967295 }\n"
    "local s = codec.encode(lay, moved)\n"
    "is(s, hex[[fffffea2c1086800 000000000000002a ffffffffffffffff 00000000\n"
    "          fffffffffffffc18 0000000000000000 0020000000000000 00000007\n"
    "          8000000000000000 ffffffff]],\n"
    "   'params with negative coordinates and large sizes encode')\n"
    "local back, used = codec.decode(lay, s)\n"
    "same(back, moved, '... and decode back')\n"
    "is(used, 68, '... from 68 bytes')\n"
    "local cmd = decoded.admin_command\n"
    "local args, n = codec.decode('S:setting', cmd.params)\n"
    "same(args, { setting = 'turn_length' },\n"
    "     'admin Command string argument is a bare string')\n"
    "is(n, #cmd.params, '... consuming every byte')\n"
    "local t3, n3 = codec.decode('I:age', decoded.tp03_object_universe.params)\n"
    "same(t3, { age = 3 }, 'TP03 Universe extra data')\n"
    "is(n3, 4, '... consuming every byte')\n";

/* ------------------------------------------------------------ 2. shared */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_shared_vectors(lua_State *L)
{
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/../shared/spec/vectors", root);
    DIR *d = opendir(dir);
    if (!d) {
        tap_count++;
        printf("ok %d # SKIP no shared vectors folder (../shared/spec/"
               "vectors)\n", tap_count);
        return;
    }
    char *names[256];
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) && count < sizeof names / sizeof names[0]) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".hex") == 0)
            names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof names[0], cmp_names);
    TAP_OK(count > 0, "shared vectors: %zu files", count);

    int top = lua_gettop(L);
    lua_newtable(L);
    int shared = lua_gettop(L);
    for (size_t i = 0; i < count; i++) {
        char path[PATH_MAX + 128], mine[PATH_MAX + 128], err[256];
        char base[128];
        snprintf(base, sizeof base, "%.*s", (int)(strlen(names[i]) - 4),
                 names[i]);
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(mine, sizeof mine, "%s/tests/fixtures/vectors/%s", root,
                 names[i]);
        size_t n = 0, mn = 0;
        uint8_t *frame = load_hex_file(path, &n);
        if (!TAP_OK(frame && n >= TP_HEADER_SIZE, "shared %s loads", base)) {
            free(frame);
            continue;
        }
        if (file_exists(mine)) {
            uint8_t *m = load_hex_file(mine, &mn);
            if (!TAP_OK(m && same_bytes(m, mn, frame, n),
                        "shared %s: our vector is byte-identical", base) &&
                m)
                diag_bytes(m, mn, frame, n);
            free(m);
        }
        tp_header_t h;
        tp_frame_parse(frame, &h);
        int version = h.cls == TP_HDR_TP03 ? 3 : h.cls == TP_HDR_TP04 ? 4 : 0;
        int set = strncmp(base, "admin_", 6) == 0 ? TP_SET_ADMIN
                                                  : TP_SET_PLAYER;
        /* README: the padded Okay only decodes with the filter on. */
        bool pad = strstr(base, "padded") != NULL;
        const tp_frame_def_t *def = version
            ? tp_codec_lookup(L, set, version, h.type) : NULL;
        if (!TAP_OK(def && h.len == n - TP_HEADER_SIZE,
                    "shared %s: TP%02d %s type %u is registered", base,
                    version, set == TP_SET_ADMIN ? "admin" : "player",
                    h.type)) {
            free(frame);
            continue;
        }
        size_t used = SIZE_MAX;
        int rc = tp_codec_decode(L, def->layout, frame + TP_HEADER_SIZE,
                                 h.len, pad, &used, err, sizeof err);
        if (TAP_OK(rc == 0 && used == h.len,
                   "shared %s: decodes as %s consuming all %u bytes%s", base,
                   def->name, h.len, pad ? " (padding filter on)" : "")) {
            lua_setfield(L, shared, base);
        } else {
            printf("#   rc %d used %zu err \"%s\"\n", rc, used,
                   rc ? err : "");
            lua_settop(L, shared);
        }
        if (pad) {
            /* ... and without the filter one zero byte is left over. */
            rc = tp_codec_decode(L, def->layout, frame + TP_HEADER_SIZE,
                                 h.len, false, &used, err, sizeof err);
            TAP_OK(rc == 0 && used + 1 == h.len,
                   "shared %s: without the filter 1 byte is left", base);
            lua_settop(L, shared);
        }
        free(frame);
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);

    /* The raw parts: Object params by the ObjectDesc, the bare-string
     * admin Command argument. */
    lua_setglobal(L, "shared");
    run_chunk(L, "shared-params",
        "local desc, obj = shared.tp04_object_desc_universe,\n"
        "                  shared.tp04_object_universe\n"
        "if desc and obj then\n"
        "    local p, n = codec.decode(params_layout(desc), obj.params)\n"
        "    ok(p and n == #obj.params,\n"
        "       'shared Object params decode by the shared ObjectDesc')\n"
        "    ok(p and p.size == 1e11 and p.year == 3, '... size and year')\n"
        "end\n"
        "local cmd = shared.admin_command\n"
        "if cmd then\n"
        "    local a, n = codec.decode('S:setting', cmd.params)\n"
        "    ok(a and a.setting == 'turn_length' and n == #cmd.params,\n"
        "       'shared admin Command: bare string argument')\n"
        "    ok(not codec.decode('I:maxlength S:setting', cmd.params),\n"
        "       'shared admin Command: the admin.xml form misparses')\n"
        "end\n"
        "shared = nil\n");
    lua_settop(L, top);
}

/* ------------------------------------------------------------ 3. edges */

typedef struct rtcase {
    const char *layout;  /* layout source */
    const char *value;   /* Lua expression: the table */
    const char *hex;     /* its encoding */
    bool pad;            /* string padding filter */
    const char *what;
} rtcase_t;

/* Encode value -> hex, decode hex -> value, consuming every byte. */
static const rtcase_t roundtrips[] = {
    { "j:a J:b", "{ a = -1, b = -1 }", "ffffffff ffffffffffffffff", false,
      "semisigned -1 (j and J) is all ones" },
    { "j:a J:b", "{ a = 4294967294, b = 0 }",
      "fffffffe 0000000000000000", false,
      "semisigned largest non-negative 32-bit value" },
    { "i:a i:b", "{ a = -2147483648, b = 2147483647 }", "80000000 7fffffff",
      false, "i32 limits" },
    { "I:a I:b", "{ a = 0, b = 4294967295 }", "00000000 ffffffff", false,
      "u32 limits" },
    { "q:x q:y q:z", "{ x = -1000, y = -1, z = -9223372036854775808 }",
      "fffffffffffffc18 ffffffffffffffff 8000000000000000", false,
      "i64 negative coordinates" },
    { "Q:a Q:b Q:c Q:d",
      "{ a = 100000000000, b = 2^53, c = 2^63, d = 18446744073709549568 }",
      "000000174876e800 0020000000000000 8000000000000000 fffffffffffff800",
      false, "u64 large values" },
    { "S:a S:b", "{ a = 'abc', b = 'hello' }",
      "00000003 616263 00 00000005 68656c6c6f 000000", true,
      "padding filter: strings padded to 4" },
    { "S:a S:b", "{ a = 'abcd', b = '' }", "00000004 61626364 00000000",
      true, "padding filter: no pad at a multiple of 4" },
    { "[S]:l I:n", "{ l = { 'a', 'bc' }, n = 7 }",
      "00000002 00000001 61 000000 00000002 6263 0000 00000007", true,
      "padding filter: strings inside lists" },
    { "S:a", "{ a = 'abc' }", "00000003 616263", false,
      "no padding without the filter" },
    { "x3 I:a x1", "{ a = 1 }", "000000 00000001 00", false,
      "xN writes zero bytes" },
    { "{I:a {S:b}:inner}:outer", "{ outer = { a = 5, inner = { b = 'z' } } }",
      "00000005 00000001 7a", false, "nested groups" },
    { "[[I]:ids S:n]:rows",
      "{ rows = { { ids = { 1, 2 }, n = 'a' }, { ids = {}, n = '' } } }",
      "00000002 00000002 00000001 00000002 00000001 61"
      " 00000000 00000000", false, "lists of tables holding lists" },
    { "[j]:l", "{ l = { -1, 3 } }", "00000002 ffffffff 00000003", false,
      "list of plain semisigned values" },
    { "I:a ? I:b", "{ a = 1, b = 2 }", "00000001 00000002", false,
      "optional tail present" },
    { "I:t *:rest", "{ t = 1, rest = 'xyz' }", "00000001 78797a", false,
      "raw part" },
    { "I:t *:rest", "{ t = 1, rest = '' }", "00000001", false,
      "empty raw part" },
    { "", "{}", "", false, "empty layout" },
};

typedef struct deccase {
    const char *layout;
    const char *hex;     /* body */
    bool pad;
    const char *value;   /* Lua expression, or NULL: must fail */
    size_t used;         /* bytes consumed on success */
    const char *error;   /* text in the message on failure */
    const char *what;
} deccase_t;

static const deccase_t decodes[] = {
    { "I:a ? I:b", "00000001", false, "{ a = 1 }", 4, NULL,
      "optional tail absent: clean partial decode" },
    { "I:a ? I:b S:c", "00000001 0000", false, NULL, 0, "frame too short",
      "optional tail cut in the middle fails" },
    { "I:a ? I:b S:c", "00000001 00000002", false, NULL, 0,
      "frame too short", "optional tail cut between items fails" },
    { "x2 I:a", "ffff 00000001", false, "{ a = 1 }", 6, NULL,
      "xN skips its bytes whatever they hold" },
    { "S:a I:b", "00000003 616263 ff 00000009", true, "{ a = 'abc', b = 9 }",
      12, NULL, "padding filter skips the pad bytes on decode" },
    { "S:a", "00000003 616263", true, NULL, 0, "runs past the end",
      "padding filter: missing pad bytes fail" },
    { "I:a", "00000001 deadbeef", false, "{ a = 1 }", 4, NULL,
      "trailing bytes left unconsumed" },
    { "[I]:l", "ffffffff 00000001", false, NULL, 0, "list runs past",
      "list count 0xFFFFFFFF with a short body fails" },
    { "[I]:l", "00000003 00000001 00000002", false, NULL, 0,
      "list runs past", "list count one past the body fails" },
    { "[[I]:b]:a", "00000001 ffffffff", false, NULL, 0, "list runs past",
      "inner list count 0xFFFFFFFF fails" },
    { "[x1]:l", "00000002 0000", false, "{ l = { {}, {} } }", 6, NULL,
      "list of one-byte elements" },
    { "S:s", "00000010 6162", false, NULL, 0, "string runs past",
      "string length past the end fails" },
    { "S:s", "ffffffff", false, NULL, 0, "string runs past",
      "string length 0xFFFFFFFF fails" },
    { "S:s", "ffffffff", true, NULL, 0, "string runs past",
      "string length 0xFFFFFFFF fails with padding" },
    { "Q:a", "00000000 000000", false, NULL, 0, "frame too short",
      "u64 cut short fails" },
    { "x4", "000000", false, NULL, 0, "frame too short",
      "padding cut short fails" },
    { "J:a", "ffffffffffffffff", false, "{ a = -1 }", 8, NULL,
      "J all ones is -1" },
    { "j:a", "ffffffff", false, "{ a = -1 }", 4, NULL, "j all ones is -1" },
    { "i:a", "ffffffff", false, "{ a = -1 }", 4, NULL, "i32 all ones is -1" },
    { "I:a", "ffffffff", false, "{ a = 4294967295 }", 4, NULL,
      "u32 all ones is 4294967295" },
};

typedef struct enccase {
    const char *layout;
    const char *value;
    const char *error;   /* text the raised message contains */
    const char *what;
} enccase_t;

static const enccase_t encode_errors[] = {
    { "I:a", "{}", "missing field 'a'", "missing field" },
    { "I:a {S:b}:g", "{ a = 1, g = {} }", "missing field 'b'",
      "missing field in a group" },
    { "I:a", "{ a = '1' }", "must be a number", "string for u32" },
    { "I:a", "{ a = true }", "must be a number", "boolean for u32" },
    { "S:a", "{ a = {} }", "must be a string", "table for a string" },
    { "[I]:l", "{ l = 5 }", "must be a list", "number for a list" },
    { "[I:a]:l", "{ l = { 5 } }", "must be a table", "number as a record" },
    { "{I:a}:g", "{ g = 1 }", "must be a table", "number for a group" },
    { "[I]:l", "{ l = { 1, 'x' } }", "must be a number",
      "string in a u32 list" },
    { "I:a", "{ a = -1 }", "out of range", "u32 -1" },
    { "I:a", "{ a = 2^32 }", "out of range", "u32 2^32" },
    { "I:a", "{ a = 1.5 }", "out of range", "u32 non-integer" },
    { "I:a", "{ a = 0/0 }", "out of range", "u32 NaN" },
    { "I:a", "{ a = math.huge }", "out of range", "u32 infinity" },
    { "i:a", "{ a = 2^31 }", "out of range", "i32 2^31" },
    { "i:a", "{ a = -2^31 - 1 }", "out of range", "i32 -2^31-1" },
    { "j:a", "{ a = -2 }", "out of range", "semisigned32 -2" },
    { "j:a", "{ a = 4294967295 }", "out of range",
      "semisigned32 all ones as a number" },
    { "J:a", "{ a = -2 }", "out of range", "semisigned64 -2" },
    { "Q:a", "{ a = 2^64 }", "out of range", "u64 2^64" },
    { "Q:a", "{ a = -1 }", "out of range", "u64 -1" },
    { "q:a", "{ a = 2^63 }", "out of range", "i64 2^63" },
    { "q:a", "{ a = 0.25 }", "out of range", "i64 non-integer" },
};

static tp_layout_t *compile_ok(const char *src)
{
    char err[256];
    tp_layout_t *lay = tp_layout_compile(src, err, sizeof err);
    if (!lay)
        TAP_OK(0, "layout \"%s\" compiles: %s", src, err);
    return lay;
}

static void test_roundtrips(lua_State *L)
{
    for (size_t i = 0; i < sizeof roundtrips / sizeof roundtrips[0]; i++) {
        const rtcase_t *c = &roundtrips[i];
        int top = lua_gettop(L);
        size_t n;
        char err[256], why[512];
        uint8_t *want = parse_hex(c->hex, &n);
        tp_layout_t *lay = compile_ok(c->layout);
        if (!want || !lay || !push_expr(L, c->value)) {
            free(want);
            tp_layout_free(lay);
            continue;
        }
        tp_buf_t out;
        tp_buf_init(&out, 0);
        int rc = encode_table(L, -1, lay, &out, c->pad, err, sizeof err);
        if (!TAP_OK(rc == 0 && same_bytes(out.data, out.len, want, n),
                    "encode: %s", c->what)) {
            if (rc)
                printf("#   %s\n", err);
            else
                diag_bytes(out.data, out.len, want, n);
        }
        size_t used = SIZE_MAX;
        rc = tp_codec_decode(L, lay, want, n, c->pad, &used, err, sizeof err);
        if (TAP_OK(rc == 0 && used == n, "decode: %s", c->what))
            TAP_OK(tables_equal(L, -1, top + 1, why, sizeof why),
                   "decode: %s: values %s", c->what, why);
        else
            printf("#   %s\n", err);
        tp_buf_free(&out);
        tp_layout_free(lay);
        free(want);
        lua_settop(L, top);
    }
}

static void test_decodes(lua_State *L)
{
    for (size_t i = 0; i < sizeof decodes / sizeof decodes[0]; i++) {
        const deccase_t *c = &decodes[i];
        int top = lua_gettop(L);
        size_t n;
        char err[256] = "", why[512];
        uint8_t *body = parse_hex(c->hex, &n);
        tp_layout_t *lay = compile_ok(c->layout);
        if (!body || !lay) {
            free(body);
            tp_layout_free(lay);
            continue;
        }
        /* An exact-size copy so ASan catches reads past the body. */
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, body, n);
        size_t used = SIZE_MAX;
        int rc = tp_codec_decode(L, lay, copy, n, c->pad, &used, err,
                                 sizeof err);
        if (c->value) {
            if (TAP_OK(rc == 0 && used == c->used && lua_gettop(L) == top + 1,
                       "decode: %s", c->what) &&
                push_expr(L, c->value)) {
                TAP_OK(tables_equal(L, top + 1, top + 2, why, sizeof why),
                       "decode: %s: values %s", c->what, why);
            } else if (rc) {
                printf("#   %s\n", err);
            }
        } else {
            if (!TAP_OK(rc == -1 && strstr(err, c->error) &&
                        lua_gettop(L) == top, "decode fails: %s", c->what))
                printf("#   rc %d, err \"%s\"\n", rc, err);
        }
        lua_settop(L, top);
        free(copy);
        free(body);
        tp_layout_free(lay);
    }
}

static void test_encode_errors(lua_State *L)
{
    for (size_t i = 0; i < sizeof encode_errors / sizeof encode_errors[0];
         i++) {
        const enccase_t *c = &encode_errors[i];
        int top = lua_gettop(L);
        char err[256];
        tp_layout_t *lay = compile_ok(c->layout);
        if (!lay || !push_expr(L, c->value)) {
            tp_layout_free(lay);
            continue;
        }
        tp_buf_t out;
        tp_buf_init(&out, 0);
        int rc = encode_table(L, -1, lay, &out, false, err, sizeof err);
        if (!TAP_OK(rc == -1 && strstr(err, "tp.codec:") &&
                    strstr(err, c->error), "encode fails: %s", c->what))
            printf("#   rc %d, err \"%s\"\n", rc, rc ? err : "");
        tp_buf_free(&out);
        tp_layout_free(lay);
        lua_settop(L, top);
    }

    /* Not a table at all. */
    tp_layout_t *lay = compile_ok("I:a");
    if (lay) {
        char err[256];
        tp_buf_t out;
        tp_buf_init(&out, 0);
        lua_pushnumber(L, 3);
        int rc = encode_table(L, -1, lay, &out, false, err, sizeof err);
        TAP_OK(rc == -1 && strstr(err, "frame must be a table"),
               "encode fails: frame not a table");
        lua_pop(L, 1);
        tp_buf_free(&out);
        tp_layout_free(lay);
    }
}

/* encode into a capped buffer raises "tp.codec: too big". */
static void test_output_cap(lua_State *L)
{
    static const struct {
        size_t max;
        const char *layout, *value;
        bool pad, fits;
        const char *what;
    } cases[] = {
        { 16, "S:a", "{ a = string.rep('x', 12) }", false, true,
          "a 16-byte body fits a 16-byte cap" },
        { 16, "S:a", "{ a = string.rep('x', 13) }", false, false,
          "a 17-byte body passes a 16-byte cap" },
        { 15, "S:a", "{ a = string.rep('x', 11) }", false, true,
          "a 15-byte body fits a 15-byte cap" },
        { 15, "S:a", "{ a = string.rep('x', 11) }", true, false,
          "the string pad pushes that body past the cap" },
        { 8, "I:a I:b I:c", "{ a = 1, b = 2, c = 3 }", false, false,
          "a third u32 passes an 8-byte cap" },
        { 100, "[I]:l", "{ l = (function() local t = {} for i = 1, 100 do "
          "t[i] = i end return t end)() }", false, false,
          "a long list passes the cap" },
        { 40, "x64", "{}", false, false, "padding passes the cap" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int top = lua_gettop(L);
        char err[256];
        tp_layout_t *lay = compile_ok(cases[i].layout);
        if (!lay || !push_expr(L, cases[i].value)) {
            tp_layout_free(lay);
            continue;
        }
        tp_buf_t out;
        tp_buf_init(&out, cases[i].max);
        int rc = encode_table(L, -1, lay, &out, cases[i].pad, err,
                              sizeof err);
        if (cases[i].fits)
            TAP_OK(rc == 0 && out.len == cases[i].max, "output cap: %s",
                   cases[i].what);
        else if (!TAP_OK(rc == -1 && strcmp(err, "tp.codec: too big") == 0 &&
                         out.len <= cases[i].max,
                         "output cap: %s raises \"tp.codec: too big\"",
                         cases[i].what))
            printf("#   rc %d, err \"%s\", len %zu\n", rc, rc ? err : "",
                   out.len);
        tp_buf_free(&out);
        tp_layout_free(lay);
        lua_settop(L, top);
    }
}

/* A hostile list count must be refused before anything is allocated. */
static void test_no_allocation(lua_State *L)
{
    static const struct {
        const char *layout, *hex, *what;
    } cases[] = {
        { "[I]:l", "ffffffff 00000000", "u32 list count 0xFFFFFFFF" },
        { "[I:a Q:b]:l", "7fffffff", "record list count 0x7FFFFFFF" },
        { "[S]:l", "ffffffff 00000000 00000000", "string list 0xFFFFFFFF" },
        { "I:x [[I]:b]:a", "00000000 00000001 ffffffff",
          "inner list count 0xFFFFFFFF" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        char err[256] = "";
        uint8_t *body = parse_hex(cases[i].hex, &n);
        tp_layout_t *lay = compile_ok(cases[i].layout);
        if (!body || !lay) {
            free(body);
            tp_layout_free(lay);
            continue;
        }
        int top = lua_gettop(L);
        lua_gc(L, LUA_GCCOLLECT, 0);
        lua_gc(L, LUA_GCSTOP, 0);
        long before = lua_gc(L, LUA_GCCOUNT, 0) * 1024L +
                      lua_gc(L, LUA_GCCOUNTB, 0);
        size_t used;
        int rc = tp_codec_decode(L, lay, body, n, false, &used, err,
                                 sizeof err);
        long after = lua_gc(L, LUA_GCCOUNT, 0) * 1024L +
                     lua_gc(L, LUA_GCCOUNTB, 0);
        lua_gc(L, LUA_GCRESTART, 0);
        if (!TAP_OK(rc == -1 && lua_gettop(L) == top &&
                    after - before < 1024,
                    "%s with a short body fails without allocating",
                    cases[i].what))
            printf("#   rc %d, err \"%s\", %ld bytes allocated\n", rc, err,
                   after - before);
        lua_settop(L, top);
        free(body);
        tp_layout_free(lay);
    }
}

static void test_compile_errors(void)
{
    static const struct {
        const char *src, *error, *what;
    } cases[] = {
        { "[I:a", "unbalanced", "unclosed list" },
        { "{I:a", "unbalanced", "unclosed group" },
        { "I:a]", "unbalanced", "stray ']'" },
        { "I:a }", "unbalanced", "stray '}'" },
        { "[I:a}:l", "unbalanced", "list closed by '}'" },
        { "Z:a", "unknown item 'Z'", "unknown item" },
        { "I:a #", "unknown item '#'", "unknown item '#'" },
        { "I", "expected ':name'", "missing name" },
        { "I:a S", "expected ':name'", "missing name after an item" },
        { "I:", "bad field name", "empty name" },
        { "[I:a]", "expected ':name'", "unnamed list" },
        { "{I:a}", "expected ':name'", "unnamed group" },
        { "*:a I:b", "'*' must be the last", "'*' not last" },
        { "[*:a]:l", "'*' must be the last", "'*' inside a list" },
        { "{*:a}:g", "'*' must be the last", "'*' inside a group" },
        { "x0", "bad padding count", "x0" },
        { "x", "bad padding count", "x without a count" },
        { "x1025", "bad padding count", "padding over 1024" },
        { "[x0]:l", "bad padding count", "[x0] list" },
        { "[?]:l", "no fixed bytes", "list of nothing" },
        { "[{}:g]:l", "no fixed bytes", "list of empty groups" },
        { "[? I:a]:l", "no fixed bytes", "list of optional items only" },
        { "I:a ? I:b ? I:c", "'?' given twice", "two '?'" },
        { "S:a Q:a ? S:a", "field 'a' given twice",
          "a name used twice (found by the fuzzer)" },
        { "I:abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
          "abcde", "bad field name", "65-character name" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "untouched";
        tp_layout_t *lay = tp_layout_compile(cases[i].src, err, sizeof err);
        if (!TAP_OK(lay == NULL && strstr(err, cases[i].error),
                    "compile error: %s", cases[i].what))
            printf("#   layout \"%s\": %s\n", cases[i].src,
                   lay ? "compiled" : err);
        tp_layout_free(lay);
    }

    /* Nesting: 12 levels below the top compile, 13 do not. */
    char deep[256];
    for (int levels = 12; levels <= 13; levels++) {
        size_t len = 0;
        for (int i = 0; i < levels; i++)
            deep[len++] = '{';
        memcpy(deep + len, "I:a", 3);
        len += 3;
        for (int i = 0; i < levels; i++) {
            memcpy(deep + len, "}:g", 3);
            len += 3;
        }
        deep[len] = '\0';
        char err[256] = "";
        tp_layout_t *lay = tp_layout_compile(deep, err, sizeof err);
        if (levels == 12)
            TAP_OK(lay != NULL, "12 nested groups compile");
        else if (!TAP_OK(lay == NULL && strstr(err, "nested too deeply"),
                         "13 nested groups: nested too deeply"))
            printf("#   %s\n", lay ? "compiled" : err);
        tp_layout_free(lay);
    }
    /* Lists nest the same way. */
    snprintf(deep, sizeof deep, "%s", "[[[[[[[[[[[[[I]:a]:a]:a]:a]:a]:a]:a]"
             ":a]:a]:a]:a]:a]:a");
    char err[256] = "";
    tp_layout_t *lay = tp_layout_compile(deep, err, sizeof err);
    TAP_OK(lay == NULL && strstr(err, "nested too deeply"),
           "13 nested lists: nested too deeply");
    tp_layout_free(lay);

    /* Too many items. */
    size_t cap = 4097 * 10 + 1;
    char *lng = malloc(cap);
    if (lng) {
        size_t at4096 = 0, used = 0;
        lng[0] = '\0';
        for (int i = 0; i < 4097; i++) {
            if (i == 4096)
                at4096 = used;
            used += (size_t)snprintf(lng + used, cap - used, "I:a%d ", i);
        }
        lay = tp_layout_compile(lng, err, sizeof err);
        TAP_OK(lay == NULL && strstr(err, "layout too long"),
               "4097 items: layout too long");
        tp_layout_free(lay);
        lng[at4096] = '\0';
        lay = tp_layout_compile(lng, err, sizeof err);
        TAP_OK(lay != NULL, "4096 items compile");
        tp_layout_free(lay);
        free(lng);
    }

    /* The message names the position; no buffer is fine too. */
    lay = tp_layout_compile("I:a Z:b", err, sizeof err);
    TAP_OK(!lay && strstr(err, "at offset 4"), "error names the offset (%s)",
           err);
    tp_layout_free(lay);
    lay = tp_layout_compile("I:a ]", NULL, 0);
    TAP_OK(lay == NULL, "compile error without a message buffer");
    char tiny[8];
    lay = tp_layout_compile("[I:a", tiny, sizeof tiny);
    TAP_OK(lay == NULL && strlen(tiny) == sizeof tiny - 1,
           "compile error truncated to a small buffer");
    tp_layout_free(lay);
    lay = tp_layout_compile(" \t\n", err, sizeof err);
    TAP_OK(lay != NULL, "blank layout compiles (an empty body)");
    tp_layout_free(lay);
}

/* ------------------------------------------------------------ 4. Lua API */

static const char t_lua_api[] =
    "local name, lay = codec.lookup('player', 4, 28)\n"
    "is(name, 'GetObjectIDs', 'lookup player 4 28')\n"
    "ok(type(lay) == 'userdata', '... gives a layout')\n"
    "is(codec.lookup('player', 3, 64), nil, 'SetFilters is not TP03')\n"
    "is(codec.lookup('player', 3, 63), 'FinishedTurn',\n"
    "   'FinishedTurn exists for TP03 connections')\n"
    "is(codec.lookup('player', 4, 1006), nil, 'admin frames are not player')\n"
    "is(codec.lookup('admin', 4, 1006), 'Command', 'admin Command')\n"
    "is(codec.lookup('admin', 4, 5), nil, 'GetObjectsByID is not admin')\n"
    "is(codec.lookup('player', 4, 200), nil, 'unknown type')\n"
    "is(codec.lookup('player', 4, 256), nil, 'type 256 is not type 0')\n"
    "is(codec.lookup('player', 4, 4294967295), nil, 'type 2^32-1')\n"
    "is(codec.lookup('player', 4, -1), nil, 'type -1')\n"
    "is(codec.lookup('player', 5, 0), nil, 'version 5')\n"
    "raises('invalid option', 'bad set name', codec.lookup, 'gm', 4, 0)\n"
    /* Every registered row round-trips its name. */
    "local n = 0\n"
    "for set, rows in pairs { player = proto.player, admin = proto.admin } do\n"
    "    for _, row in ipairs(rows) do\n"
    "        if codec.lookup(set, 4, row[1]) == row[2] then n = n + 1 end\n"
    "    end\n"
    "end\n"
    "is(n, #proto.player + #proto.admin, 'every proto row is registered')\n"
    /* decode with an offset */
    "local s = 'junk' .. hex'00000001 00000002'\n"
    "local t, nxt = codec.decode('I:a', s, false, 4)\n"
    "same(t, { a = 1 }, 'decode at an offset')\n"
    "is(nxt, 8, '... returns the next offset')\n"
    "t, nxt = codec.decode('I:a', s, false, nxt)\n"
    "is(t.a, 2, 'decode at the next offset')\n"
    "is(nxt, 12, '... to the end')\n"
    "local none, err = codec.decode('I:a', s, false, 12)\n"
    "ok(none == nil and err:find('frame too short', 1, true),\n"
    "   'decode at the end: nil, message')\n"
    "raises('offset out of range', 'offset past the end',\n"
    "       codec.decode, 'I:a', s, false, 13)\n"
    "raises('offset out of range', 'negative offset',\n"
    "       codec.decode, 'I:a', s, false, -1)\n"
    /* compile / encode */
    "raises('tp.codec: layout', 'compile raises on bad syntax',\n"
    "       codec.compile, 'I:a ]')\n"
    "raises('unknown item', 'encode with a bad layout string raises',\n"
    "       codec.encode, 'Z:a', {})\n"
    "is(codec.encode('S:a', { a = 'abc' }, true), hex'00000003 61626300',\n"
    "   'encode with the padding filter')\n"
    "is(codec.encode(codec.compile('I:a'), { a = 7 }), hex'00000007',\n"
    "   'encode with a compiled layout')\n"
    "raises('missing field', 'encode raises on a missing field',\n"
    "       codec.encode, 'I:a', {})\n"
    "local big = string.rep('x', 64 * 1024 * 1024)\n"
    "raises('tp.codec: too big', 'encode output is capped at 64 MiB',\n"
    "       codec.encode, 'S:a', { a = big })\n"
    "big = nil\n"
    "collectgarbage()\n"
    /* register */
    "raises('version must be 3 or 4', 'register version 5',\n"
    "       codec.register, 'player', 5, 0, 'X', '')\n"
    "raises('frame type outside', 'register type 500',\n"
    "       codec.register, 'player', 4, 500, 'X', '')\n"
    "raises('bad frame type', 'register type -1',\n"
    "       codec.register, 'player', 4, -1, 'X', '')\n"
    "raises('tp.codec: layout', 'register a bad layout',\n"
    "       codec.register, 'player', 4, 127, 'X', 'I:a ]')\n"
    "is(codec.lookup('player', 4, 127), nil, '... registers nothing')\n"
    "codec.register('admin', 3, 1127, 'TestFrame', 'I:a S:b')\n"
    "local tn, tl = codec.lookup('admin', 3, 1127)\n"
    "is(tn, 'TestFrame', 'register then lookup')\n"
    "same(codec.decode(tl, hex'00000001 00000000'), { a = 1, b = '' },\n"
    "     '... the registered layout decodes')\n"
    "is(codec.lookup('admin', 4, 1127), nil, '... only for that version')\n"
    "codec.register('admin', 3, 1127, 'TestFrame2', codec.compile('I:z'))\n"
    "is(codec.lookup('admin', 3, 1127), 'TestFrame2', 're-register replaces')\n"
    "collectgarbage()\n"
    "same(codec.decode(select(2, codec.lookup('admin', 3, 1127)),\n"
    "                  hex'00000005'), { z = 5 },\n"
    "     '... and the new layout survives a collection')\n";

/* A check for a known, reported bug: printed with "# TODO", which the test
 * driver counts as passing, so it neither fails the suite now nor goes
 * unnoticed when fixed (it turns into "ok ... # TODO"). */
static void tap_todo(int pass, const char *what, const char *why)
{
    tap_count++;
    printf("%s %d - %s # TODO %s\n", pass ? "ok" : "not ok", tap_count,
           what, why);
    fflush(stdout);
}

/* codec.lookup with a frame type that is not an integer: l_lookup range
 * checks the number but truncates it, so 1.5 finds Fail (1). (NaN is not
 * tried: converting it is undefined behaviour a clang UBSan build aborts
 * on.) */
static void test_lookup_fraction(lua_State *L)
{
    int top = lua_gettop(L);
    if (luaL_dostring(L, "return (codec.lookup('player', 4, 1.5))") != 0) {
        TAP_OK(0, "codec.lookup with type 1.5 runs: %s",
               lua_tostring(L, -1));
    } else {
        tap_todo(lua_isnil(L, -1), "codec.lookup('player', 4, 1.5) is nil",
                 "l_lookup truncates a non-integer type (finds Fail)");
    }
    lua_settop(L, top);
}

/* The C side of the registry after the Lua register calls above. */
static void test_registry_c(lua_State *L)
{
    const tp_frame_def_t *def = tp_codec_lookup(L, TP_SET_ADMIN, 3, 1127);
    TAP_OK(def && strcmp(def->name, "TestFrame2") == 0,
           "tp_codec_lookup sees a re-registered frame");
    TAP_OK(tp_codec_lookup(L, TP_SET_COUNT, 4, 0) == NULL,
           "tp_codec_lookup: bad set");
    TAP_OK(tp_codec_lookup(L, -1, 4, 0) == NULL,
           "tp_codec_lookup: negative set");
    TAP_OK(tp_codec_lookup(L, TP_SET_PLAYER, 2, 0) == NULL,
           "tp_codec_lookup: version 2");
    TAP_OK(tp_codec_lookup(L, TP_SET_PLAYER, 4, 1000 + 256) == NULL,
           "tp_codec_lookup: type 1256 is not an admin slot");
    def = tp_codec_lookup(L, TP_SET_PLAYER, 4, 77);
    TAP_OK(def && strcmp(def->name, "OrderQueueIDs") == 0,
           "tp_codec_lookup: last player frame");
}

/* ------------------------------------------------------------ 5. frame.c */

static void test_frame(void)
{
    static const struct {
        const char *bytes;
        size_t n;
        tp_hdr_class_t cls;
        const char *what;
    } cases[] = {
        { "TP03", 4, TP_HDR_TP03, "\"TP03\"" },
        { "TP\x04\x00", 4, TP_HDR_TP04, "\"TP\\x04\"" },
        { "TP\x04", 3, TP_HDR_TP04, "\"TP\\x04\" from 3 bytes" },
        { "TP00", 4, TP_HDR_TOO_OLD, "\"TP00\"" },
        { "TP01", 4, TP_HDR_TOO_OLD, "\"TP01\"" },
        { "TP02", 4, TP_HDR_TOO_OLD, "\"TP02\"" },
        { "TP04", 4, TP_HDR_UNSUP_ASCII, "\"TP04\" ascii" },
        { "TP05", 4, TP_HDR_UNSUP_ASCII, "\"TP05\" ascii" },
        { "TP09", 4, TP_HDR_UNSUP_ASCII, "\"TP09\" ascii" },
        { "TP\x05\x00", 4, TP_HDR_UNSUP_BIN, "\"TP\\x05\" binary" },
        { "TP\x2f\x00", 4, TP_HDR_UNSUP_BIN, "\"TP\\x2f\" binary" },
        { "TP\x30\x3a", 4, TP_HDR_UNSUP_OTHER, "\"TP0:\"" },
        { "TP\xff\x00", 4, TP_HDR_UNSUP_OTHER, "\"TP\\xff\"" },
        { "TP\x00\x00", 4, TP_HDR_UNSUP_OTHER, "\"TP\\x00\"" },
        { "TP\x03\x00", 4, TP_HDR_UNSUP_OTHER, "\"TP\\x03\" binary" },
        { "GET ", 4, TP_HDR_NOT_TP, "\"GET \"" },
        { "G", 1, TP_HDR_NOT_TP, "\"G\" alone" },
        { "TX", 2, TP_HDR_NOT_TP, "\"TX\"" },
        { "tp03", 4, TP_HDR_NOT_TP, "\"tp03\"" },
        { "", 0, TP_HDR_NEED_MORE, "nothing" },
        { "T", 1, TP_HDR_NEED_MORE, "\"T\" alone" },
        { "TP", 2, TP_HDR_NEED_MORE, "\"TP\"" },
        { "TP0", 3, TP_HDR_NEED_MORE, "\"TP0\"" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* An exact-size copy: classify must not look past n. */
        uint8_t *p = malloc(cases[i].n ? cases[i].n : 1);
        memcpy(p, cases[i].bytes, cases[i].n);
        TAP_IS_INT(tp_frame_classify(p, cases[i].n), cases[i].cls,
                   "classify %s", cases[i].what);
        free(p);
    }

    uint8_t hdr[TP_HEADER_SIZE];
    tp_frame_write_header(hdr, 3, 0x01020304, 1006, 0xA0B0C0D0);
    TAP_OK(memcmp(hdr, "TP03\x01\x02\x03\x04\x00\x00\x03\xee"
                  "\xa0\xb0\xc0\xd0", 16) == 0, "write a TP03 header");
    tp_header_t h;
    tp_frame_parse(hdr, &h);
    TAP_OK(h.cls == TP_HDR_TP03 && h.frame_version == 0 &&
           h.seq == 0x01020304 && h.type == 1006 && h.len == 0xA0B0C0D0,
           "parse it back");
    tp_frame_write_header(hdr, 4, 0xFFFFFFFF, 0, 0);
    TAP_OK(memcmp(hdr, "TP\x04\x00\xff\xff\xff\xff\0\0\0\0\0\0\0\0", 16) == 0,
           "write a TP04 header (frame version 0)");
    hdr[3] = 7;
    tp_frame_parse(hdr, &h);
    TAP_OK(h.cls == TP_HDR_TP04 && h.frame_version == 7 &&
           h.seq == 0xFFFFFFFF, "parse a TP04 frame version byte");
    memcpy(hdr, "TP05", 4);
    tp_frame_parse(hdr, &h);
    TAP_OK(h.cls == TP_HDR_UNSUP_ASCII && h.frame_version == 0 &&
           h.seq == 0xFFFFFFFF && h.type == 0 && h.len == 0,
           "parse an unsupported header still gives seq/type/len");
}

/* ------------------------------------------------------------ main */

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return NULL;
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_tp_codec);
    lua_setfield(L, -2, "tp.codec");
    lua_pop(L, 1);
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua", root, root);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    lua_register(L, "ok", l_ok);
    lua_register(L, "diag", l_diag);
    return L;
}

int main(int argc, char **argv)
{
    (void)argc;
    find_root(argv[0]);
    printf("# repository root: %s\n", root);
    lua_State *L = new_state();
    if (!L) {
        printf("not ok 1 - luaL_newstate\n1..1\n");
        return 1;
    }
    if (luaL_loadbuffer(L, prelude, strlen(prelude), "prelude") != 0 ||
        lua_pcall(L, 0, 0, 0) != 0) {
        TAP_OK(0, "prelude: %s", lua_tostring(L, -1));
        lua_close(L);
        return tap_done();
    }
    TAP_OK(1, "tp.proto layouts registered");

    printf("# 1. golden vectors\n");
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
        test_vector(L, &vectors[i]);
    run_chunk(L, "params", t_params);

    printf("# 2. shared vectors\n");
    test_shared_vectors(L);

    printf("# 3. codec edge cases\n");
    test_roundtrips(L);
    test_decodes(L);
    test_encode_errors(L);
    test_output_cap(L);
    test_no_allocation(L);
    test_compile_errors();

    printf("# 4. tp.codec Lua API\n");
    run_chunk(L, "lua-api", t_lua_api);
    test_registry_c(L);
    test_lookup_fraction(L);

    printf("# 5. frame headers\n");
    test_frame();

    TAP_IS_INT(lua_gettop(L), 0, "Lua stack balanced at the end");
    lua_close(L);
    return tap_done();
}
