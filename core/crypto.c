/*
 * crypto.c: the tp.crypto Lua module, thin bindings over OpenSSL's
 * libcrypto for password hashing and randomness.
 *
 *   crypto.pbkdf2(password, salt, iterations, length [, digest]) -> bytes
 *       PBKDF2-HMAC (digest "sha256" by default, or "sha512")
 *   crypto.random(n)   -> n bytes from the OpenSSL CSPRNG (n <= 1024)
 *   crypto.equal(a, b) -> true when equal, compared in constant time
 *   crypto.hex(bytes)  -> lowercase hex
 *   crypto.unhex(hex)  -> bytes, or nil on bad input
 *   crypto.sha256(s)   -> 32 bytes
 *   crypto.pbkdf2_async(password, salt, iterations, length, digest, fn)
 *       the same hash computed on libuv's thread pool, so a login never
 *       stalls the loop; fn(bytes) runs on the loop thread afterwards
 *       (fn(nil, err) on failure). Errors in fn are logged.
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <lauxlib.h>
#include <lua.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "lua_util.h"

/* The arguments both PBKDF2 functions take:
 * (password, salt, iterations, length [, digest]). Raises on misuse. */
typedef struct kdf_args {
    const char *pass;     /* borrowed from the Lua stack */
    size_t plen;          /* its length */
    const char *salt;     /* borrowed from the Lua stack */
    size_t slen;          /* its length */
    int iter;             /* iterations, 1 .. 10,000,000 */
    int len;              /* output bytes, 1 .. 128 */
    const EVP_MD *md;     /* SHA-256 or SHA-512 */
} kdf_args_t;

static void check_kdf_args(lua_State *L, kdf_args_t *a)
{
    a->pass = luaL_checklstring(L, 1, &a->plen);
    a->salt = luaL_checklstring(L, 2, &a->slen);
    a->iter = luaL_checkint(L, 3);
    a->len = luaL_checkint(L, 4);
    const char *dname = luaL_optstring(L, 5, "sha256");
    a->md = strcmp(dname, "sha256") == 0 ? EVP_sha256() :
            strcmp(dname, "sha512") == 0 ? EVP_sha512() : NULL;
    if (!a->md)
        luaL_argerror(L, 5, "digest must be sha256 or sha512");
    /* The ceiling of password_iterations (config.lua): more means a damaged
     * record, and would hold the loop or a pool thread for seconds. */
    if (a->iter < 1 || a->iter > 10000000)
        luaL_argerror(L, 3, "iterations out of range");
    /* 128: the size of the output buffers (out[] here and in kdf_job_t). */
    if (a->len < 1 || a->len > 128)
        luaL_argerror(L, 4, "length out of range");
}

static int l_pbkdf2(lua_State *L)
{
    kdf_args_t a;
    check_kdf_args(L, &a);
    const char *pass = a.pass, *salt = a.salt;
    size_t plen = a.plen, slen = a.slen;
    int iter = a.iter, len = a.len;
    const EVP_MD *md = a.md;
    unsigned char out[128];
    if (PKCS5_PBKDF2_HMAC(pass, (int)plen, (const unsigned char *)salt,
                          (int)slen, iter, md, len, out) != 1)
        return luaL_error(L, "PBKDF2 failed");
    lua_pushlstring(L, (const char *)out, (size_t)len);
    /* The derived key is as secret as the password: wipe the stack copy. */
    OPENSSL_cleanse(out, sizeof out);
    return 1;
}

static int l_random(lua_State *L)
{
    int n = luaL_checkint(L, 1);
    /* The cap keeps the buffer on the stack; salts and tokens are far
     * smaller. */
    if (n < 0 || n > 1024)
        return luaL_argerror(L, 1, "0 to 1024 bytes");
    unsigned char buf[1024];
    if (RAND_bytes(buf, n) != 1)
        return luaL_error(L, "random generator failed");
    lua_pushlstring(L, (const char *)buf, (size_t)n);
    return 1;
}

static int l_equal(lua_State *L)
{
    size_t a_len, b_len;
    const char *a = luaL_checklstring(L, 1, &a_len);
    const char *b = luaL_checklstring(L, 2, &b_len);
    /* CRYPTO_memcmp takes as long wherever the bytes differ, so comparing
     * hashes leaks nothing; the length is no secret (one hash, one length). */
    lua_pushboolean(L, a_len == b_len && CRYPTO_memcmp(a, b, a_len) == 0);
    return 1;
}

static int l_hex(lua_State *L)
{
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1,
                                                                      &n);
    static const char digits[] = "0123456789abcdef";
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i++) {
        luaL_addchar(&b, digits[s[i] >> 4]);
        luaL_addchar(&b, digits[s[i] & 15]);
    }
    luaL_pushresult(&b);
    return 1;
}

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

static int l_unhex(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    /* Bad input returns no value (nil to the caller: not misuse). A buffer
     * left half filled on the stack is dropped with it. */
    if (n % 2)
        return 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval((unsigned char)s[i]);
        int lo = hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        luaL_addchar(&b, (char)(hi << 4 | lo));
    }
    luaL_pushresult(&b);
    return 1;
}

/* base64_decode(s): the bytes of standard base64 text (RFC 4648, with
 * padding), or nil when it is not that. OpenSSL's block decoder gives
 * whole groups of three bytes; the padding's bytes are taken off. */
static int l_base64_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (n == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    if (n % 4 || n > 65536)
        return 0;
    unsigned char *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return luaL_error(L, "out of memory");
    int len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (len < 0) {
        free(out);
        return 0;
    }
    if (s[n - 1] == '=')
        len--;
    if (s[n - 2] == '=')
        len--;
    lua_pushlstring(L, (const char *)out, (size_t)len);
    free(out);
    return 1;
}

static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(s, n, md, &mdlen, EVP_sha256(), NULL) != 1)
        return luaL_error(L, "sha256 failed");
    lua_pushlstring(L, (const char *)md, mdlen);
    return 1;
}

typedef struct kdf_job {
    uv_work_t req;            /* thread-pool request */
    lua_State *L;             /* state to call back into */
    int fn_ref;               /* callback */
    char *pass;               /* copies of the inputs, owned */
    size_t plen;              /* password length */
    unsigned char *salt;      /* salt copy */
    size_t slen;              /* salt length */
    int iter;                 /* iterations */
    int len;                  /* output length */
    const EVP_MD *md;         /* digest */
    unsigned char out[128];   /* result */
    int ok;                   /* PBKDF2 succeeded */
} kdf_job_t;

static void kdf_work(uv_work_t *req)
{
    kdf_job_t *job = req->data;
    job->ok = PKCS5_PBKDF2_HMAC(job->pass, (int)job->plen, job->salt,
                                (int)job->slen, job->iter, job->md, job->len,
                                job->out) == 1;
}

static void kdf_free(kdf_job_t *job)
{
    OPENSSL_cleanse(job->pass, job->plen);
    OPENSSL_cleanse(job->out, sizeof job->out);
    free(job->pass);
    free(job->salt);
    free(job);
}

static void kdf_done(uv_work_t *req, int status)
{
    kdf_job_t *job = req->data;
    lua_State *L = job->L;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, job->fn_ref);
    /* Unref now: fn is on the stack, and it is called only once. */
    luaL_unref(L, LUA_REGISTRYINDEX, job->fn_ref);
    if (status == 0 && job->ok) {
        lua_pushlstring(L, (const char *)job->out, (size_t)job->len);
        lua_pushnil(L);
    } else {
        lua_pushnil(L);
        lua_pushstring(L, status ? uv_strerror(status) : "PBKDF2 failed");
    }
    /* Wiped and freed before fn runs: the hash is on the stack now, and no
     * copy of the password should outlive this call, whatever fn does. */
    kdf_free(job);
    tp_lua_pcall_logged(L, 2, "password hash callback");
    lua_settop(L, top);
}

static int l_pbkdf2_async(lua_State *L)
{
    kdf_args_t a;
    check_kdf_args(L, &a);
    luaL_checktype(L, 6, LUA_TFUNCTION);
    const char *pass = a.pass, *salt = a.salt;
    size_t plen = a.plen, slen = a.slen;
    int iter = a.iter, len = a.len;
    const EVP_MD *md = a.md;
    kdf_job_t *job = calloc(1, sizeof *job);
    if (!job)
        return luaL_error(L, "out of memory");
    /* Copies: the work runs on another thread, when the Lua strings may be
     * gone. +1: malloc(0) may return NULL, which is not out of memory. */
    job->pass = malloc(plen + 1);
    job->salt = malloc(slen + 1);
    if (!job->pass || !job->salt) {
        free(job->pass);
        free(job->salt);
        free(job);
        return luaL_error(L, "out of memory");
    }
    memcpy(job->pass, pass, plen);
    memcpy(job->salt, salt, slen);
    job->plen = plen;
    job->slen = slen;
    job->iter = iter;
    job->len = len;
    job->md = md;
    /* The main state: L may be a coroutine that is dead by the time the
     * work is done. */
    job->L = tp_lua_main(L);
    job->req.data = job;
    lua_pushvalue(L, 6);
    job->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    int rc = uv_queue_work(tp_lua_loop(L), &job->req, kdf_work, kdf_done);
    /* kdf_done never runs when queueing fails (libuv's promise): undo here. */
    if (rc != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, job->fn_ref);
        kdf_free(job);
        return luaL_error(L, "cannot queue work: %s", uv_strerror(rc));
    }
    return 0;
}

int luaopen_tp_crypto(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "pbkdf2", l_pbkdf2 },
        { "pbkdf2_async", l_pbkdf2_async },
        { "random", l_random },
        { "equal", l_equal },
        { "hex", l_hex },
        { "unhex", l_unhex },
        { "sha256", l_sha256 },
        { "base64_decode", l_base64_decode },
        { NULL, NULL }
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
