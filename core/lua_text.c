/*
 * lua_text.c: the tp.text Lua module, thin bindings over ICU for the
 * Unicode questions that account names raise. The rules themselves (what
 * a name may hold, when two names are the same) are in
 * lua/tp/accounts.lua; this file only answers questions about strings and
 * code points, with the Unicode data of the ICU it is linked with.
 *
 *   text.valid(s)    -> true when s is well-formed UTF-8 (no surrogates,
 *                       no overlong forms, nothing past U+10FFFF)
 *   text.trim(s)     -> s without its leading and trailing White_Space
 *                       code points (bytes that are not UTF-8 are kept)
 *   text.nfc(s)      -> s in Normalization Form C
 *   text.fold(s)     -> s case-folded (Unicode full default case folding:
 *                       "Straße" -> "strasse")
 *   text.skeleton(s) -> the confusable skeleton of s (Unicode TS #39):
 *                       strings that look alike ("alıce", "аlice" with a
 *                       Cyrillic a, "alice") have the same skeleton
 *   text.hidden(s)   -> cp, kind: the first code point of s a name should
 *                       not hold, or nil when there is none. kind is
 *                       "control" (Cc), "space" (White_Space other than
 *                       U+0020), "invisible" (Cf, or Default_Ignorable:
 *                       zero-width spaces and joiners, bidi controls,
 *                       variation selectors, fillers), "private" (Co),
 *                       "noncharacter", "unassigned" (Cn), or "invalid"
 *                       (cp -1: the bytes are not UTF-8)
 *   text.unicode     -> the Unicode version of the data ("15.0")
 *
 * nfc, fold and skeleton return nil, err on expected failures: "not
 * UTF-8", or "too long" for input over TEXT_MAX bytes (names are far
 * shorter; the cap bounds the work a peer's string can cause). Arguments
 * that are not strings raise.
 *
 * Every buffer is a userdata on the Lua stack, sized from the input's
 * length or from ICU's preflight, so that nothing leaks when pushing the
 * result raises. The ICU objects (the NFC instance is ICU's own; the
 * spoof checker and the case map are ours) live in one userdata, an
 * upvalue of every function, closed by its __gc.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <unicode/uchar.h>
#include <unicode/ucasemap.h>
#include <unicode/unorm2.h>
#include <unicode/uspoof.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>
#include <unicode/uversion.h>

/* Longest input nfc, fold and skeleton take, in bytes. */
#define TEXT_MAX 1024

/* Metatable of the ICU objects' userdata. */
#define TEXT_ICU "tp.text.icu"

/* The ICU objects every function uses (upvalue 1). */
typedef struct text_icu {
    const UNormalizer2 *nfc;  /* owned by ICU: never closed */
    USpoofChecker *spoof;     /* ours: closed by __gc; NULL once closed */
    UCaseMap *fold;           /* ours: closed by __gc; NULL once closed */
} text_icu_t;

static text_icu_t *icu_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int l_text_icu_gc(lua_State *L)
{
    text_icu_t *t = luaL_checkudata(L, 1, TEXT_ICU);
    if (t->spoof) {
        uspoof_close(t->spoof);
        t->spoof = NULL;
    }
    if (t->fold) {
        ucasemap_close(t->fold);
        t->fold = NULL;
    }
    return 0;
}

/* The string argument 1; raises when it is not a string (a number is
 * not taken for one: names are strings) or longer than ICU's int32_t
 * lengths reach. */
static const char *check_text(lua_State *L, int32_t *len)
{
    if (lua_type(L, 1) != LUA_TSTRING)
        luaL_typerror(L, 1, "string");
    size_t n;
    const char *s = lua_tolstring(L, 1, &n);
    if (n > INT32_MAX)
        luaL_argerror(L, 1, "string too long");
    *len = (int32_t)n;
    return s;
}

/* True when s[0..len) is well-formed UTF-8. */
static bool utf8_valid(const char *s, int32_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    int32_t i = 0;
    while (i < len) {
        UChar32 c;
        U8_NEXT(p, i, len, c);
        if (c < 0)
            return false;
    }
    return true;
}

/* Pushes nil, err; returns 2. */
static int fail(lua_State *L, const char *err)
{
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
}

/* For nfc, fold and skeleton: NULL (and nil, err pushed) when the input
 * is too long or not UTF-8. */
static const char *check_input(lua_State *L, int32_t *len, int *nret)
{
    const char *s = check_text(L, len);
    if (*len > TEXT_MAX) {
        *nret = fail(L, "too long");
        return NULL;
    }
    if (!utf8_valid(s, *len)) {
        *nret = fail(L, "not UTF-8");
        return NULL;
    }
    return s;
}

/* The functions below are the module's (see the top of the file); each
 * raises only when its argument is not a string. */

static int l_text_valid(lua_State *L)
{
    int32_t len;
    const char *s = check_text(L, &len);
    lua_pushboolean(L, utf8_valid(s, len));
    return 1;
}

static int l_text_trim(lua_State *L)
{
    int32_t len;
    const char *s = check_text(L, &len);
    const uint8_t *p = (const uint8_t *)s;
    int32_t start = 0;
    while (start < len) {
        int32_t i = start;
        UChar32 c;
        U8_NEXT(p, i, len, c);
        if (c < 0 || !u_hasBinaryProperty(c, UCHAR_WHITE_SPACE))
            break;
        start = i;
    }
    int32_t end = len;
    while (end > start) {
        int32_t i = end;
        UChar32 c;
        U8_PREV(p, start, i, c);
        if (c < 0 || !u_hasBinaryProperty(c, UCHAR_WHITE_SPACE))
            break;
        end = i;
    }
    if (start == 0 && end == len)
        lua_pushvalue(L, 1);
    else
        lua_pushlstring(L, s + start, (size_t)(end - start));
    return 1;
}

static int l_text_nfc(lua_State *L)
{
    text_icu_t *t = icu_of(L);
    int32_t len;
    int nret;
    const char *s = check_input(L, &len, &nret);
    if (!s)
        return nret;
    /* UTF-8 to UTF-16 never needs more units than there are bytes. */
    int32_t cap16 = len > 0 ? len : 1;
    UChar *u16 = lua_newuserdata(L, (size_t)cap16 * sizeof(UChar));
    UErrorCode err = U_ZERO_ERROR;
    int32_t n16 = 0;
    u_strFromUTF8(u16, cap16, &n16, s, len, &err);
    if (U_FAILURE(err))
        return fail(L, "not UTF-8");
    /* NFC makes a string at most three times as long (Unicode's
     * stability policy); ICU checks the capacity regardless. */
    int32_t capn = 3 * n16 + 1;
    UChar *norm = lua_newuserdata(L, (size_t)capn * sizeof(UChar));
    int32_t nn = unorm2_normalize(t->nfc, u16, n16, norm, capn, &err);
    if (U_FAILURE(err))
        return fail(L, "too long");
    /* A UTF-16 unit is at most three bytes of UTF-8. */
    int32_t cap8 = 3 * nn + 1;
    char *out = lua_newuserdata(L, (size_t)cap8);
    int32_t n8 = 0;
    u_strToUTF8(out, cap8, &n8, norm, nn, &err);
    if (U_FAILURE(err))
        return fail(L, "too long");
    lua_pushlstring(L, out, (size_t)n8);
    return 1;
}

/* A UTF-8 to UTF-8 conversion of ICU's shape: the length it needs when
 * out is too small (U_BUFFER_OVERFLOW_ERROR), else the length made. */
typedef int32_t (*convert_fn)(const text_icu_t *t, const char *s,
                              int32_t len, char *out, int32_t cap,
                              UErrorCode *err);

static int32_t fold_utf8(const text_icu_t *t, const char *s, int32_t len,
                         char *out, int32_t cap, UErrorCode *err)
{
    return ucasemap_utf8FoldCase(t->fold, out, cap, s, len, err);
}

static int32_t skeleton_utf8(const text_icu_t *t, const char *s,
                             int32_t len, char *out, int32_t cap,
                             UErrorCode *err)
{
    return uspoof_getSkeletonUTF8(t->spoof, 0, s, len, out, cap, err);
}

/* Pushes fn applied to the string argument: the size is asked first,
 * then the result is made in a buffer of that size. */
static int push_converted(lua_State *L, const text_icu_t *t, convert_fn fn)
{
    int32_t len;
    int nret;
    const char *s = check_input(L, &len, &nret);
    if (!s)
        return nret;
    UErrorCode err = U_ZERO_ERROR;
    int32_t need = fn(t, s, len, NULL, 0, &err);
    if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err))
        return fail(L, "not UTF-8");
    err = U_ZERO_ERROR;
    int32_t cap = need + 1;
    char *out = lua_newuserdata(L, (size_t)cap);
    int32_t n = fn(t, s, len, out, cap, &err);
    if (U_FAILURE(err) || n > cap)
        return fail(L, "too long");
    lua_pushlstring(L, out, (size_t)n);
    return 1;
}

static int l_text_fold(lua_State *L)
{
    text_icu_t *t = icu_of(L);
    if (!t->fold)
        return luaL_error(L, "tp.text: closed");
    return push_converted(L, t, fold_utf8);
}

static int l_text_skeleton(lua_State *L)
{
    text_icu_t *t = icu_of(L);
    if (!t->spoof)
        return luaL_error(L, "tp.text: closed");
    return push_converted(L, t, skeleton_utf8);
}

/* The kind of code point c for text.hidden, or NULL when a name may hold
 * it. The order matters: noncharacters and some Default_Ignorable code
 * points are also unassigned (Cn). */
static const char *hidden_kind(UChar32 c)
{
    int8_t type = u_charType(c);
    if (type == U_CONTROL_CHAR)
        return "control";
    if (c != 0x20 && u_hasBinaryProperty(c, UCHAR_WHITE_SPACE))
        return "space";
    if (type == U_FORMAT_CHAR ||
        u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT))
        return "invisible";
    if (type == U_PRIVATE_USE_CHAR)
        return "private";
    if (u_hasBinaryProperty(c, UCHAR_NONCHARACTER_CODE_POINT))
        return "noncharacter";
    if (type == U_UNASSIGNED)
        return "unassigned";
    if (type == U_SURROGATE)     /* not in well-formed UTF-8 */
        return "invalid";
    return NULL;
}

static int l_text_hidden(lua_State *L)
{
    int32_t len;
    const char *s = check_text(L, &len);
    const uint8_t *p = (const uint8_t *)s;
    int32_t i = 0;
    while (i < len) {
        UChar32 c;
        U8_NEXT(p, i, len, c);
        const char *kind = c < 0 ? "invalid" : hidden_kind(c);
        if (kind) {
            lua_pushinteger(L, c < 0 ? -1 : c);
            lua_pushstring(L, kind);
            return 2;
        }
    }
    lua_pushnil(L);
    return 1;
}

/* require "tp.text": the module table. Raises when ICU's data (NFC,
 * confusables, case folding) cannot be had: a broken installation. */
int luaopen_tp_text(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "valid", l_text_valid },
        { "trim", l_text_trim },
        { "nfc", l_text_nfc },
        { "fold", l_text_fold },
        { "skeleton", l_text_skeleton },
        { "hidden", l_text_hidden },
        { NULL, NULL }
    };
    text_icu_t *t = lua_newuserdata(L, sizeof *t);     /* [icu] */
    memset(t, 0, sizeof *t);
    if (luaL_newmetatable(L, TEXT_ICU)) {              /* [icu, mt] */
        lua_pushcfunction(L, l_text_icu_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);                           /* [icu] */
    UErrorCode err = U_ZERO_ERROR;
    t->nfc = unorm2_getNFCInstance(&err);
    if (U_FAILURE(err))
        return luaL_error(L, "tp.text: no NFC data (%s)", u_errorName(err));
    t->spoof = uspoof_open(&err);
    if (U_FAILURE(err))
        return luaL_error(L, "tp.text: no confusables data (%s)",
                          u_errorName(err));
    t->fold = ucasemap_open(NULL, U_FOLD_CASE_DEFAULT, &err);
    if (U_FAILURE(err))
        return luaL_error(L, "tp.text: no case data (%s)", u_errorName(err));
    lua_newtable(L);                                   /* [icu, M] */
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushvalue(L, -2);
        lua_pushcclosure(L, r->func, 1);
        lua_setfield(L, -2, r->name);
    }
    UVersionInfo v;
    u_getUnicodeVersion(v);
    char buf[U_MAX_VERSION_STRING_LENGTH];
    u_versionToString(v, buf);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "unicode");
    return 1;
}
