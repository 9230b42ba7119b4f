/*
 * store.c: the LevelDB binding for Lua, module "tp.store".
 *
 * Owns every LevelDB object the server creates: databases with their
 * options, block caches and read/write options, write batches, iterators
 * and snapshots.  Each lives in a userdata whose __gc frees it.  Keys and
 * values are opaque byte strings (embedded NULs allowed).
 *
 *   store.open(path [, opts]) -> db | nil, err
 *       opts: create_if_missing (true), error_if_exists, paranoid_checks,
 *       sync (false; the default for writes), cache_size (8 MiB, 0 = no
 *       caching), write_buffer_size (4 MiB), block_size (4096),
 *       max_open_files (1000), compression ("snappy" | "none")
 *   store.destroy(path), store.repair(path) -> true | nil, err
 *   store.fail_writes(n [, mode]): tests only (TPSERVER_TEST_FAULTS=1): the
 *       next n writes fail as on a full disk; mode "landed": db:write
 *       writes the batch, then reports the failure
 *   store.batch() -> batch
 *   db:get(k [, snap]) -> v | nil | nil, err
 *   db:put(k, v [, sync]), db:delete(k [, sync]), db:write(batch [, sync])
 *       -> true | nil, err
 *   db:iter([opts]) -> iterator (callable: for k, v in db:iter() do)
 *       opts: prefix, start (inclusive), stop (exclusive), reverse,
 *       snapshot, limit, keys_only, verify_checksums (true: every block
 *       read from a file is checked; false is for salvaging a damaged
 *       database).  The keys walked are those with the
 *       prefix in [start, stop), ascending or, with reverse, descending.
 *       The LevelDB iterator is freed when the walk ends, by close or __gc.
 *   db:snapshot(), db:batch(), db:property(name), db:approximate_size(a, b),
 *   db:compact([a, b]), db:close()
 *   batch:put(k, v), batch:delete(k), batch:clear() -> batch; batch:count()
 *   iter:next() (same as calling it), iter:close(); snap:release()
 *
 * Invariants:
 *  - A db whose handle is NULL is closed: every method but close raises
 *    "store is closed".  close is idempotent and is also the __gc.
 *  - A db userdata's environment is a table holding the db at [1]; its
 *    live iterators and snapshots share that environment, so the db stays
 *    alive as long as any of them is reachable, and all of them go in one
 *    collection once none is.  An iterator or snapshot that ends (close,
 *    release, end of walk) takes its class metatable as environment
 *    instead, and no longer keeps the db alive.
 *  - Every live iterator and snapshot is on its db's child list.  Closing
 *    a db (by close, or by __gc in whatever order the collector or
 *    lua_close picks) first destroys the LevelDB iterators and snapshots
 *    of its children and detaches them; a detached child raises "store is
 *    closed" when used and its __gc does nothing.  So LevelDB never sees a
 *    close under a live iterator or snapshot, and a child never touches a
 *    db struct that is gone.
 *  - No C allocation is left unowned across a call that can raise: options
 *    are checked before anything is created, LevelDB objects are stored in
 *    their userdata as soon as they exist, LevelDB error strings are copied
 *    to the C stack and freed before Lua sees them, and a value LevelDB
 *    allocated is anchored (db->pending, see buf_anchor) while Lua copies
 *    it.
 *  - Misuse raises; I/O failures return nil, message.  The one exception is
 *    an iterator step, which raises on I/O failure because a for loop would
 *    silently stop on a nil.
 */
#include "store.h"

#include <lauxlib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MT_DB    "tp.store.db"
#define MT_BATCH "tp.store.batch"
#define MT_ITER  "tp.store.iter"
#define MT_SNAP  "tp.store.snapshot"
#define MT_BUF   "tp.store.buffer"  /* internal: see buf_anchor() */

#define CLOSED_MSG "store is closed"
#define ERRBUF     1024         /* longest LevelDB message kept, with NUL */

enum { CHILD_ITER, CHILD_SNAP };

typedef struct store_db store_db;

/* What iterators and snapshots share: membership of their db's list. */
typedef struct store_child {
    struct store_child *prev;   /* previous on db->children, NULL if first */
    struct store_child *next;   /* next on db->children, NULL if last */
    store_db *db;               /* owning db while linked, else NULL */
    int kind;                   /* CHILD_ITER or CHILD_SNAP */
    int detached;               /* 1 once its db was closed under it */
} store_child;

struct store_db {
    leveldb_t *handle;              /* the database; NULL once closed */
    leveldb_options_t *options;     /* options it was opened with */
    leveldb_cache_t *cache;         /* block cache, destroyed after handle */
    leveldb_readoptions_t *ropts;   /* reads; snapshot set during one call */
    leveldb_writeoptions_t *wsync;  /* writes with sync = true */
    leveldb_writeoptions_t *wnosync; /* writes with sync = false */
    int sync;                       /* default sync flag for writes */
    char *pending;                  /* LevelDB buffer Lua is copying */
    store_child *children;          /* live iterators and snapshots */
};

typedef struct store_batch {
    leveldb_writebatch_t *wb;       /* the batch; NULL once collected */
    size_t count;                   /* puts and deletes since create/clear */
} store_batch;

typedef struct store_snap {
    store_child link;               /* list membership; must be first */
    const leveldb_snapshot_t *snap; /* NULL once released or detached */
} store_snap;

typedef struct store_iter {
    store_child link;               /* list membership; must be first */
    leveldb_iterator_t *it;         /* NULL once finished/closed/detached */
    int reverse;                    /* 1: walk keys in descending order */
    int keys_only;                  /* 1: yield keys without values */
    int has_limit;                  /* 1: remaining bounds the pairs left */
    size_t remaining;               /* pairs still allowed if has_limit */
    const char *lo;                 /* inclusive lower bound or NULL */
    size_t lo_len;                  /* bytes in lo */
    const char *hi;                 /* exclusive upper bound or NULL */
    size_t hi_len;                  /* bytes in hi */
    char bounds[];                  /* storage that lo and hi point into */
} store_iter;

/* Options of db:iter(), as parsed; strings point into the opts table. */
typedef struct iter_opts {
    const char *prefix;             /* key prefix or NULL */
    size_t prefix_len;              /* bytes in prefix */
    const char *start;              /* inclusive start key or NULL */
    size_t start_len;               /* bytes in start */
    const char *stop;               /* exclusive stop key or NULL */
    size_t stop_len;                /* bytes in stop */
    int reverse;                    /* reverse = true */
    int keys_only;                  /* keys_only = true */
    int has_limit;                  /* limit given */
    size_t limit;                   /* its value */
    store_snap *snap;               /* snapshot = snap, or NULL */
    int unverified;                 /* verify_checksums = false */
} iter_opts;

/* Options of store.open(), as parsed. */
typedef struct open_opts {
    int create_if_missing;          /* create the db if absent */
    int error_if_exists;            /* fail if the db exists */
    int paranoid_checks;            /* LevelDB paranoid_checks */
    int compression;                /* leveldb_*_compression */
    int sync;                       /* default sync flag for writes */
    int max_open_files;             /* LevelDB max_open_files */
    size_t cache_size;              /* block cache bytes, 0 = no caching */
    size_t write_buffer_size;       /* memtable bytes */
    size_t block_size;              /* table block bytes */
} open_opts;

/* ------------------------------------------------------------ helpers */

/* Bytewise comparison, as LevelDB's default comparator orders keys. */
static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* Copies a LevelDB error string into msg (truncated) and frees it. */
static void take_error(char *err, char msg[ERRBUF])
{
    size_t n = strlen(err);
    if (n >= ERRBUF)
        n = ERRBUF - 1;
    memcpy(msg, err, n);
    msg[n] = '\0';
    /* Freed here, before any Lua call that could raise and leak it. */
    leveldb_free(err);
}

/* Frees a LevelDB error string and pushes nil, its text; returns 2. */
static int push_error(lua_State *L, char *err)
{
    char msg[ERRBUF];
    take_error(err, msg);
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/*
 * Where a LevelDB buffer waits while Lua copies it, so that a copy that
 * raises does not leak it: d's slot if free (db.__gc frees a buffer left
 * there), else a new tp.store.buffer userdata pushed on the stack (the
 * slot is held by a copy that raised, or by one that a finalizer calling
 * into this db interrupted).  Call it before LevelDB allocates the buffer.
 */
static char **buf_anchor(lua_State *L, store_db *d, int *pushed)
{
    char **a;
    *pushed = 0;
    if (!d->pending)
        return &d->pending;
    a = lua_newuserdata(L, sizeof *a);
    *a = NULL;
    luaL_getmetatable(L, MT_BUF);
    lua_setmetatable(L, -2);
    *pushed = 1;
    return a;
}

/* Drops the anchor buf_anchor() pushed, if it pushed one. */
static void buf_unanchor(lua_State *L, int pushed)
{
    if (pushed)
        lua_pop(L, 1);
}

/* Pushes buf through anchor a as a string, then frees buf. */
static void push_owned(lua_State *L, char **a, int pushed, char *buf,
                       size_t len)
{
    *a = buf;
    lua_pushlstring(L, buf, len);
    *a = NULL;
    leveldb_free(buf);
    if (pushed)
        lua_remove(L, -2);
}

/* The userdata at idx if its metatable is tname's, else NULL. */
static void *test_udata(lua_State *L, int idx, const char *tname)
{
    void *p = lua_touserdata(L, idx);
    int same;
    if (!p || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, tname);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? p : NULL;
}

/* A path argument: a string without embedded NULs. */
static const char *check_path(lua_State *L, int arg)
{
    size_t len;
    const char *path = luaL_checklstring(L, arg, &len);
    /* LevelDB takes a C string: an embedded NUL would name another path. */
    if (strlen(path) != len)
        luaL_argerror(L, arg, "path contains a NUL byte");
    return path;
}

/* Raises a bad option error for the value at the top of the stack. */
static void opt_error(lua_State *L, int arg, const char *name,
                      const char *what)
{
    const char *got = luaL_typename(L, -1);
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': %s expected, "
                                          "got %s", name, what, got));
}

/* The boolean at the top of the stack, for option name. */
static int opt_bool(lua_State *L, int arg, const char *name)
{
    if (!lua_isboolean(L, -1))
        opt_error(L, arg, name, "boolean");
    return lua_toboolean(L, -1);
}

/* The integer in [min, max] at the top of the stack, for option name. */
static size_t opt_size(lua_State *L, int arg, const char *name,
                       size_t min, size_t max)
{
    lua_Number n;
    if (lua_type(L, -1) != LUA_TNUMBER)
        opt_error(L, arg, name, "integer");
    n = lua_tonumber(L, -1);
    /* Written so that NaN fails; the cast test refuses fractions. */
    if (!(n >= (lua_Number)min && n <= (lua_Number)max)
        || (lua_Number)(size_t)n != n)
        luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': integer "
                                              "out of range", name));
    return (size_t)n;
}

/* The string at the top of the stack, for option name. */
static const char *opt_string(lua_State *L, int arg, const char *name,
                              size_t *len)
{
    /* Strictly a string: lua_tolstring would convert a number in place and
     * leave a pointer into a value only the stack holds. */
    if (lua_type(L, -1) != LUA_TSTRING)
        opt_error(L, arg, name, "string");
    return lua_tolstring(L, -1, len);
}

/* ----------------------------------------------------- children of a db */

static void child_link(store_db *d, store_child *c)
{
    c->prev = NULL;
    c->next = d->children;
    if (d->children)
        d->children->prev = c;
    d->children = c;
    c->db = d;
}

/* Takes c off its db's list, if it is on one. */
static void child_unlink(store_child *c)
{
    if (c->db) {
        if (c->prev)
            c->prev->next = c->next;
        else
            c->db->children = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->prev = c->next = NULL;
        c->db = NULL;
    }
}

/* Frees the LevelDB object of a linked child; its db must be open. */
static void child_free(store_child *c)
{
    if (c->kind == CHILD_ITER) {
        store_iter *it = (store_iter *)c;
        if (it->it) {
            leveldb_iter_destroy(it->it);
            it->it = NULL;
        }
    } else {
        store_snap *s = (store_snap *)c;
        if (s->snap && c->db && c->db->handle)
            leveldb_release_snapshot(c->db->handle, s->snap);
        s->snap = NULL;
    }
}

/* Ends a child: frees its LevelDB object and leaves its db. */
static void child_end(store_child *c)
{
    child_free(c);
    child_unlink(c);
}

/* Ends the child userdata at idx (an absolute index): frees its LevelDB
 * object, leaves its db and stops keeping the db alive. */
static void child_end_at(lua_State *L, int idx, store_child *c,
                         const char *tname)
{
    child_end(c);
    luaL_getmetatable(L, tname);    /* an existing table: no allocation */
    lua_setfenv(L, idx);
}

/* ----------------------------------------------------------------- db */

/* Frees everything a db owns; safe on a half-opened or closed db. */
static void db_close(store_db *d)
{
    /* Children first: LevelDB wants every iterator and snapshot gone
     * before the close. */
    while (d->children) {
        store_child *c = d->children;
        c->detached = 1;
        child_end(c);
    }
    if (d->handle) {
        leveldb_close(d->handle);
        d->handle = NULL;
    }
    if (d->options) {
        leveldb_options_destroy(d->options);
        d->options = NULL;
    }
    /* The cache after the handle, which uses it until it is closed. */
    if (d->cache) {
        leveldb_cache_destroy(d->cache);
        d->cache = NULL;
    }
    if (d->ropts) {
        leveldb_readoptions_destroy(d->ropts);
        d->ropts = NULL;
    }
    if (d->wsync) {
        leveldb_writeoptions_destroy(d->wsync);
        d->wsync = NULL;
    }
    if (d->wnosync) {
        leveldb_writeoptions_destroy(d->wnosync);
        d->wnosync = NULL;
    }
}

static store_db *check_open(lua_State *L, int idx)
{
    store_db *d = luaL_checkudata(L, idx, MT_DB);
    if (!d->handle)
        luaL_error(L, CLOSED_MSG);
    return d;
}

/* The write options for an optional sync argument at arg. */
static const leveldb_writeoptions_t *check_wopts(lua_State *L, store_db *d,
                                                 int arg)
{
    int sync = d->sync;
    if (!lua_isnoneornil(L, arg)) {
        luaL_checktype(L, arg, LUA_TBOOLEAN);
        sync = lua_toboolean(L, arg);
    }
    return sync ? d->wsync : d->wnosync;
}

/* Raises unless s is a live snapshot of d; arg names it in errors. */
static void check_snap_of(lua_State *L, store_snap *s, store_db *d, int arg)
{
    if (!s->snap)
        luaL_error(L, "%s", s->link.detached ? CLOSED_MSG
                                             : "snapshot is released");
    if (s->link.db != d)
        luaL_argerror(L, arg, "snapshot belongs to another store");
}

static void parse_open_opts(lua_State *L, int arg, open_opts *o)
{
    /* LevelDB's own defaults (options.h) but create_if_missing, spelled
     * out so that the list at the top holds whatever the library version. */
    o->create_if_missing = 1;
    o->error_if_exists = 0;
    o->paranoid_checks = 0;
    o->compression = leveldb_snappy_compression;
    o->sync = 0;
    o->max_open_files = 1000;
    o->cache_size = (size_t)8 << 20;
    o->write_buffer_size = (size_t)4 << 20;
    o->block_size = 4096;
    if (lua_isnoneornil(L, arg))
        return;
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        const char *name;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, arg, "option names must be strings");
        name = lua_tostring(L, -2);
        if (strcmp(name, "create_if_missing") == 0) {
            o->create_if_missing = opt_bool(L, arg, name);
        } else if (strcmp(name, "error_if_exists") == 0) {
            o->error_if_exists = opt_bool(L, arg, name);
        } else if (strcmp(name, "paranoid_checks") == 0) {
            o->paranoid_checks = opt_bool(L, arg, name);
        } else if (strcmp(name, "sync") == 0) {
            o->sync = opt_bool(L, arg, name);
        } else if (strcmp(name, "cache_size") == 0) {
            o->cache_size = opt_size(L, arg, name, 0, (size_t)1 << 40);
        } else if (strcmp(name, "write_buffer_size") == 0) {
            o->write_buffer_size = opt_size(L, arg, name, 1, (size_t)1 << 40);
        } else if (strcmp(name, "block_size") == 0) {
            o->block_size = opt_size(L, arg, name, 1, (size_t)1 << 30);
        } else if (strcmp(name, "max_open_files") == 0) {
            o->max_open_files = (int)opt_size(L, arg, name, 1, INT32_MAX);
        } else if (strcmp(name, "compression") == 0) {
            const char *c = opt_string(L, arg, name, NULL);
            if (strcmp(c, "snappy") == 0)
                o->compression = leveldb_snappy_compression;
            else if (strcmp(c, "none") == 0)
                o->compression = leveldb_no_compression;
            else
                luaL_argerror(L, arg, "option 'compression': "
                              "\"snappy\" or \"none\" expected");
        } else {
            luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'",
                                                  name));
        }
        lua_pop(L, 1);
    }
}

/* store.open(path [, opts]) -> db | nil, err */
static int l_store_open(lua_State *L)
{
    const char *path = check_path(L, 1);
    open_opts o;
    store_db *d;
    char *err = NULL;

    parse_open_opts(L, 2, &o);
    d = lua_newuserdata(L, sizeof *d);
    memset(d, 0, sizeof *d);
    luaL_getmetatable(L, MT_DB);
    lua_setmetatable(L, -2);
    /* The environment before anything is created: it allocates, and may
     * raise while the userdata owns nothing yet. */
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, 1);
    lua_setfenv(L, -2);
    /* From here on nothing raises: the userdata owns what is created. */
    d->sync = o.sync;
    d->cache = leveldb_cache_create_lru(o.cache_size);
    d->options = leveldb_options_create();
    leveldb_options_set_create_if_missing(d->options,
                                          (uint8_t)o.create_if_missing);
    leveldb_options_set_error_if_exists(d->options,
                                        (uint8_t)o.error_if_exists);
    leveldb_options_set_paranoid_checks(d->options,
                                        (uint8_t)o.paranoid_checks);
    leveldb_options_set_cache(d->options, d->cache);
    leveldb_options_set_write_buffer_size(d->options, o.write_buffer_size);
    leveldb_options_set_block_size(d->options, o.block_size);
    leveldb_options_set_max_open_files(d->options, o.max_open_files);
    leveldb_options_set_compression(d->options, o.compression);
    d->ropts = leveldb_readoptions_create();
    /* Every block read from a file is checked against its CRC (blocks in
     * the cache were checked when they were read): damage is an error,
     * never a value served. */
    leveldb_readoptions_set_verify_checksums(d->ropts, 1);
    d->wsync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(d->wsync, 1);
    d->wnosync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(d->wnosync, 0);
    d->handle = leveldb_open(d->options, path, &err);
    if (err) {
        /* An error comes with a NULL handle; one that does not is closed. */
        if (d->handle) {
            leveldb_close(d->handle);
            d->handle = NULL;
        }
        db_close(d);
        return push_error(L, err);
    }
    return 1;
}

/* db:close(): idempotent; closes iterators and snapshots first. */
static int l_store_close(lua_State *L)
{
    store_db *d = luaL_checkudata(L, 1, MT_DB);
    db_close(d);
    return 0;
}

/* db.__gc: close, and free a buffer left by a copy that raised.  Only
 * here: a close run by a finalizer during a copy must not free it. */
static int l_store_db_gc(lua_State *L)
{
    store_db *d = luaL_checkudata(L, 1, MT_DB);
    db_close(d);
    if (d->pending) {
        leveldb_free(d->pending);
        d->pending = NULL;
    }
    return 0;
}

/* Reads key at keyidx from d (through s if not NULL); pushes the result. */
static int db_get(lua_State *L, store_db *d, int keyidx, store_snap *s)
{
    size_t klen, vlen = 0;
    const char *key = luaL_checklstring(L, keyidx, &klen);
    char *err = NULL;
    char *val;
    int pushed;
    char **a = buf_anchor(L, d, &pushed);

    /* A finalizer run by the allocation may have closed d or s. */
    if (!d->handle)
        return luaL_error(L, CLOSED_MSG);
    if (s && !s->snap)
        return luaL_error(L, "snapshot is released");
    leveldb_readoptions_set_snapshot(d->ropts, s ? s->snap : NULL);
    val = leveldb_get(d->handle, d->ropts, key, klen, &vlen, &err);
    /* Reset at once: ropts is shared by every read of this db. */
    leveldb_readoptions_set_snapshot(d->ropts, NULL);
    if (err) {
        if (val)
            leveldb_free(val);
        buf_unanchor(L, pushed);
        return push_error(L, err);
    }
    if (!val) {
        buf_unanchor(L, pushed);
        lua_pushnil(L);
        return 1;
    }
    push_owned(L, a, pushed, val, vlen);
    return 1;
}

/* db:get(key [, snap]) -> value | nil | nil, err */
static int l_store_get(lua_State *L)
{
    store_db *d = check_open(L, 1);
    store_snap *s = NULL;
    luaL_checkstring(L, 2);
    if (!lua_isnoneornil(L, 3)) {
        s = luaL_checkudata(L, 3, MT_SNAP);
        check_snap_of(L, s, d, 3);
    }
    return db_get(L, d, 2, s);
}

/* Fault injection for the tests: with TPSERVER_TEST_FAULTS=1 in the
 * environment, store.fail_writes(n) makes the next n writes (put, delete,
 * write) of any database fail as a full disk would, without writing;
 * store.fail_writes(n, "landed") makes db:write write the batch and then
 * report the failure anyway (as a failed flush whose data reached the
 * disk after all). */
static long failing_writes;
static bool failing_landed;

static bool injected_failure(void)
{
    if (failing_writes <= 0)
        return false;
    failing_writes--;
    return true;
}

#define INJECTED_ERROR "IO error: injected write failure (TPSERVER_TEST_FAULTS)"

/* store.fail_writes(n [, "refused" | "landed"]) -> n */
static int l_store_fail_writes(lua_State *L)
{
    /* Refused unless the environment asks: no console command or ruleset
     * can make a real server drop its writes. */
    const char *on = getenv("TPSERVER_TEST_FAULTS");
    if (!on || strcmp(on, "1") != 0)
        return luaL_error(L, "fault injection is off (set "
                          "TPSERVER_TEST_FAULTS=1 to test with it)");
    lua_Integer n = luaL_checkinteger(L, 1);
    const char *mode = luaL_optstring(L, 2, "refused");
    if (strcmp(mode, "refused") != 0 && strcmp(mode, "landed") != 0)
        return luaL_argerror(L, 2, "\"refused\" or \"landed\"");
    failing_writes = n < 0 ? 0 : (long)n;
    failing_landed = strcmp(mode, "landed") == 0;
    lua_pushinteger(L, failing_writes);
    return 1;
}

/* db:put(key, value [, sync]) -> true | nil, err */
static int l_store_put(lua_State *L)
{
    store_db *d = check_open(L, 1);
    size_t klen, vlen;
    const char *key = luaL_checklstring(L, 2, &klen);
    const char *val = luaL_checklstring(L, 3, &vlen);
    const leveldb_writeoptions_t *wo = check_wopts(L, d, 4);
    char *err = NULL;

    if (injected_failure()) {
        lua_pushnil(L);
        lua_pushstring(L, INJECTED_ERROR);
        return 2;
    }
    leveldb_put(d->handle, wo, key, klen, val, vlen, &err);
    if (err)
        return push_error(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* db:delete(key [, sync]) -> true | nil, err */
static int l_store_delete(lua_State *L)
{
    store_db *d = check_open(L, 1);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    const leveldb_writeoptions_t *wo = check_wopts(L, d, 3);
    char *err = NULL;

    if (injected_failure()) {
        lua_pushnil(L);
        lua_pushstring(L, INJECTED_ERROR);
        return 2;
    }
    leveldb_delete(d->handle, wo, key, klen, &err);
    if (err)
        return push_error(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* db:write(batch [, sync]) -> true | nil, err */
static int l_store_write(lua_State *L)
{
    store_db *d = check_open(L, 1);
    store_batch *b = luaL_checkudata(L, 2, MT_BATCH);
    const leveldb_writeoptions_t *wo = check_wopts(L, d, 3);
    char *err = NULL;

    /* NULL once collected: a finalizer may reach a batch whose own __gc
     * already ran. */
    if (!b->wb)
        return luaL_error(L, "batch is released");
    if (injected_failure()) {
        if (failing_landed) {
            leveldb_write(d->handle, wo, b->wb, &err);
            leveldb_free(err);
        }
        lua_pushnil(L);
        lua_pushstring(L, INJECTED_ERROR);
        return 2;
    }
    leveldb_write(d->handle, wo, b->wb, &err);
    if (err)
        return push_error(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* db:property(name) -> string | nil */
static int l_store_property(lua_State *L)
{
    store_db *d = check_open(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int pushed;
    char **a = buf_anchor(L, d, &pushed);
    char *val;

    if (!d->handle)                 /* closed by a finalizer meanwhile */
        return luaL_error(L, CLOSED_MSG);
    val = leveldb_property_value(d->handle, name);
    if (!val) {
        buf_unanchor(L, pushed);
        lua_pushnil(L);
        return 1;
    }
    push_owned(L, a, pushed, val, strlen(val));
    return 1;
}

/* db:approximate_size(start, limit) -> bytes on disk for [start, limit) */
static int l_store_approximate_size(lua_State *L)
{
    store_db *d = check_open(L, 1);
    size_t slen, llen;
    const char *start = luaL_checklstring(L, 2, &slen);
    const char *limit = luaL_checklstring(L, 3, &llen);
    uint64_t size = 0;

    leveldb_approximate_sizes(d->handle, 1, &start, &slen, &limit, &llen,
                              &size);
    lua_pushnumber(L, (lua_Number)size);
    return 1;
}

/* db:compact([start [, limit]]): nil bounds mean the ends of the keys. */
static int l_store_compact(lua_State *L)
{
    store_db *d = check_open(L, 1);
    size_t slen = 0, llen = 0;
    const char *start = luaL_optlstring(L, 2, NULL, &slen);
    const char *limit = luaL_optlstring(L, 3, NULL, &llen);

    leveldb_compact_range(d->handle, start, slen, limit, llen);
    return 0;
}

/* --------------------------------------------------------------- batch */

static store_batch *check_batch(lua_State *L, int idx)
{
    store_batch *b = luaL_checkudata(L, idx, MT_BATCH);
    if (!b->wb)
        luaL_error(L, "batch is released");
    return b;
}

/* store.batch() -> an empty write batch */
static int l_store_batch(lua_State *L)
{
    store_batch *b = lua_newuserdata(L, sizeof *b);
    b->wb = NULL;
    b->count = 0;
    luaL_getmetatable(L, MT_BATCH);
    lua_setmetatable(L, -2);
    /* Created last, once __gc is in place to free it: nothing that may
     * raise comes after. */
    b->wb = leveldb_writebatch_create();
    return 1;
}

/* db:batch() -> an empty write batch (not tied to db) */
static int l_store_db_batch(lua_State *L)
{
    check_open(L, 1);
    return l_store_batch(L);
}

/* batch:put(key, value) -> batch */
static int l_store_batch_put(lua_State *L)
{
    store_batch *b = check_batch(L, 1);
    size_t klen, vlen;
    const char *key = luaL_checklstring(L, 2, &klen);
    const char *val = luaL_checklstring(L, 3, &vlen);

    leveldb_writebatch_put(b->wb, key, klen, val, vlen);
    b->count++;
    lua_settop(L, 1);
    return 1;
}

/* batch:delete(key) -> batch */
static int l_store_batch_delete(lua_State *L)
{
    store_batch *b = check_batch(L, 1);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);

    leveldb_writebatch_delete(b->wb, key, klen);
    b->count++;
    lua_settop(L, 1);
    return 1;
}

/* batch:clear() -> batch */
static int l_store_batch_clear(lua_State *L)
{
    store_batch *b = check_batch(L, 1);
    leveldb_writebatch_clear(b->wb);
    b->count = 0;
    lua_settop(L, 1);
    return 1;
}

/* batch:count() -> operations added since creation or the last clear */
static int l_store_batch_count(lua_State *L)
{
    store_batch *b = check_batch(L, 1);
    lua_pushinteger(L, (lua_Integer)b->count);
    return 1;
}

static int l_store_batch_gc(lua_State *L)
{
    store_batch *b = luaL_checkudata(L, 1, MT_BATCH);
    if (b->wb) {
        leveldb_writebatch_destroy(b->wb);
        b->wb = NULL;
    }
    return 0;
}

/* ------------------------------------------------------------ snapshot */

/* db:snapshot() -> snapshot of the current state */
static int l_store_snapshot(lua_State *L)
{
    store_db *d = check_open(L, 1);
    store_snap *s = lua_newuserdata(L, sizeof *s);

    memset(s, 0, sizeof *s);
    s->link.kind = CHILD_SNAP;
    luaL_getmetatable(L, MT_SNAP);
    lua_setmetatable(L, -2);
    /* The db's environment: the snapshot keeps the db alive (see the top). */
    lua_getfenv(L, 1);
    lua_setfenv(L, -2);
    /* A finalizer run by the allocation above may have closed d. */
    if (!d->handle)
        return luaL_error(L, CLOSED_MSG);
    s->snap = leveldb_create_snapshot(d->handle);
    child_link(d, &s->link);
    return 1;
}

/* snap:release(): idempotent, also the __gc */
static int l_store_snapshot_release(lua_State *L)
{
    store_snap *s = luaL_checkudata(L, 1, MT_SNAP);
    child_end_at(L, 1, &s->link, MT_SNAP);
    return 0;
}

/* ------------------------------------------------------------ iterator */

static void parse_iter_opts(lua_State *L, int arg, store_db *d, iter_opts *o)
{
    memset(o, 0, sizeof *o);
    if (lua_isnoneornil(L, arg))
        return;
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        const char *name;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, arg, "option names must be strings");
        name = lua_tostring(L, -2);
        if (strcmp(name, "prefix") == 0) {
            o->prefix = opt_string(L, arg, name, &o->prefix_len);
        } else if (strcmp(name, "start") == 0) {
            o->start = opt_string(L, arg, name, &o->start_len);
        } else if (strcmp(name, "stop") == 0) {
            o->stop = opt_string(L, arg, name, &o->stop_len);
        } else if (strcmp(name, "reverse") == 0) {
            o->reverse = opt_bool(L, arg, name);
        } else if (strcmp(name, "keys_only") == 0) {
            o->keys_only = opt_bool(L, arg, name);
        } else if (strcmp(name, "verify_checksums") == 0) {
            o->unverified = !opt_bool(L, arg, name);
        } else if (strcmp(name, "limit") == 0) {
            /* 2^52: every count up to it is exact in a double. */
            o->limit = opt_size(L, arg, name, 0, (size_t)1 << 52);
            o->has_limit = 1;
        } else if (strcmp(name, "snapshot") == 0) {
            o->snap = test_udata(L, -1, MT_SNAP);
            if (!o->snap)
                opt_error(L, arg, name, MT_SNAP);
            check_snap_of(L, o->snap, d, arg);
        } else {
            luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'",
                                                  name));
        }
        lua_pop(L, 1);
    }
}

/* Bytes in the smallest key above every key with prefix p (0: none). */
static size_t prefix_end_len(const char *p, size_t len)
{
    /* A trailing 0xFF cannot be incremented: drop it and increment the
     * byte before. A prefix of only 0xFF bytes has no end: no upper bound. */
    while (len > 0 && (unsigned char)p[len - 1] == 0xFF)
        len--;
    return len;
}

/* Ends the iterator at index 1: its LevelDB iterator goes, it leaves its
 * db. */
static void iter_end(lua_State *L, store_iter *it)
{
    child_end_at(L, 1, &it->link, MT_ITER);
}

/* Ends an exhausted iterator; pushes nil, or raises on a LevelDB error. */
static int iter_finish(lua_State *L, store_iter *it)
{
    char *err = NULL;
    char msg[ERRBUF];

    leveldb_iter_get_error(it->it, &err);
    /* After the error is read: it lives in the LevelDB iterator. */
    iter_end(L, it);
    if (!err) {
        lua_pushnil(L);
        return 1;
    }
    take_error(err, msg);
    return luaL_error(L, "store iterator: %s", msg);
}

/* db:iter([opts]) -> iterator; opts are in the comment at the top. */
static int l_store_iter(lua_State *L)
{
    store_db *d = check_open(L, 1);
    iter_opts o;
    const char *lo = NULL, *hi = NULL;
    size_t lo_len = 0, hi_len = 0, end_len = 0;
    store_iter *it;

    parse_iter_opts(L, 2, d, &o);
    /* Range: [max(start, prefix), min(stop, end of prefix)). */
    if (o.start) {
        lo = o.start;
        lo_len = o.start_len;
    }
    if (o.prefix && o.prefix_len > 0) {
        if (!lo || bytes_cmp(o.prefix, o.prefix_len, lo, lo_len) > 0) {
            lo = o.prefix;
            lo_len = o.prefix_len;
        }
        end_len = prefix_end_len(o.prefix, o.prefix_len);
    }
    if (o.stop) {
        hi = o.stop;
        hi_len = o.stop_len;
    }
    /* The bounds are copied into the userdata: the option strings may be
     * collected while the iterator lives. */
    it = lua_newuserdata(L, sizeof *it + lo_len + hi_len + end_len);
    memset(it, 0, sizeof *it);
    it->link.kind = CHILD_ITER;
    luaL_getmetatable(L, MT_ITER);
    lua_setmetatable(L, -2);
    it->reverse = o.reverse;
    it->keys_only = o.keys_only;
    it->has_limit = o.has_limit;
    it->remaining = o.limit;
    if (lo) {
        memcpy(it->bounds, lo, lo_len);
        it->lo = it->bounds;
        it->lo_len = lo_len;
    }
    if (hi) {
        memcpy(it->bounds + lo_len, hi, hi_len);
        it->hi = it->bounds + lo_len;
        it->hi_len = hi_len;
    }
    if (end_len > 0) {
        /* The end of the prefix: prefix[0, end_len), last byte plus one. */
        char *e = it->bounds + lo_len + hi_len;
        memcpy(e, o.prefix, end_len);
        e[end_len - 1] = (char)((unsigned char)e[end_len - 1] + 1);
        if (!it->hi || bytes_cmp(e, end_len, it->hi, it->hi_len) < 0) {
            it->hi = e;
            it->hi_len = end_len;
        }
    }
    lua_getfenv(L, 1);
    lua_setfenv(L, -2);
    /* A finalizer run by the allocation above may have closed d. */
    if (!d->handle)
        return luaL_error(L, CLOSED_MSG);
    if (o.snap && !o.snap->snap)
        return luaL_error(L, "snapshot is released");

    /* The iterator keeps a copy of the options. */
    leveldb_readoptions_set_snapshot(d->ropts, o.snap ? o.snap->snap : NULL);
    /* Unchecked blocks stay out of the cache, where a checked read
     * would take them as good. */
    if (o.unverified) {
        leveldb_readoptions_set_verify_checksums(d->ropts, 0);
        leveldb_readoptions_set_fill_cache(d->ropts, 0);
    }
    it->it = leveldb_create_iterator(d->handle, d->ropts);
    leveldb_readoptions_set_snapshot(d->ropts, NULL);
    leveldb_readoptions_set_verify_checksums(d->ropts, 1);
    leveldb_readoptions_set_fill_cache(d->ropts, 1);
    child_link(d, &it->link);
    /* The seek sets one bound; next() checks the other as it walks. */
    if (!it->reverse) {
        if (it->lo)
            leveldb_iter_seek(it->it, it->lo, it->lo_len);
        else
            leveldb_iter_seek_to_first(it->it);
    } else if (it->hi) {
        /* The first key >= hi is outside the range: step back from it, or from
         * the end when there is none. */
        leveldb_iter_seek(it->it, it->hi, it->hi_len);
        if (leveldb_iter_valid(it->it))
            leveldb_iter_prev(it->it);
        else
            leveldb_iter_seek_to_last(it->it);
    } else {
        leveldb_iter_seek_to_last(it->it);
    }
    return 1;
}

/* iter:next(), iter(): the next key and value, or nil at the end. */
static int l_store_iter_next(lua_State *L)
{
    store_iter *it = luaL_checkudata(L, 1, MT_ITER);
    const char *key;
    size_t klen;

    if (!it->it) {
        if (it->link.detached)
            return luaL_error(L, CLOSED_MSG);
        lua_pushnil(L);
        return 1;
    }
    if (!leveldb_iter_valid(it->it))
        return iter_finish(L, it);
    /* limit = 0: nothing at all. */
    if (it->has_limit && it->remaining == 0) {
        iter_end(L, it);
        lua_pushnil(L);
        return 1;
    }
    key = leveldb_iter_key(it->it, &klen);
    if (it->reverse ? it->lo && bytes_cmp(key, klen, it->lo, it->lo_len) < 0
                    : it->hi && bytes_cmp(key, klen, it->hi, it->hi_len) >= 0)
    {
        iter_end(L, it);
        lua_pushnil(L);
        return 1;
    }
    /* Copy before the iterator moves; a raise leaves it in the userdata.
     * A finalizer run by a push may close the db, and with it this. */
    lua_pushlstring(L, key, klen);
    if (!it->it)
        return luaL_error(L, CLOSED_MSG);
    if (!it->keys_only) {
        size_t vlen;
        const char *val = leveldb_iter_value(it->it, &vlen);
        lua_pushlstring(L, val, vlen);
        if (!it->it)
            return luaL_error(L, CLOSED_MSG);
    }
    /* The last pair allowed: the LevelDB iterator goes now, not at the
     * next call. */
    if (it->has_limit && --it->remaining == 0)
        iter_end(L, it);
    else if (it->reverse)
        leveldb_iter_prev(it->it);
    else
        leveldb_iter_next(it->it);
    return it->keys_only ? 1 : 2;
}

/* iter:close(): idempotent, also the __gc */
static int l_store_iter_close(lua_State *L)
{
    store_iter *it = luaL_checkudata(L, 1, MT_ITER);
    iter_end(L, it);
    return 0;
}

/* ------------------------------------------------------ module functions */

/* store.destroy(path) -> true | nil, err */
static int l_store_destroy(lua_State *L)
{
    const char *path = check_path(L, 1);
    leveldb_options_t *o = leveldb_options_create();
    char *err = NULL;

    leveldb_destroy_db(o, path, &err);
    leveldb_options_destroy(o);
    if (err)
        return push_error(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* store.repair(path) -> true | nil, err */
static int l_store_repair(lua_State *L)
{
    const char *path = check_path(L, 1);
    leveldb_options_t *o = leveldb_options_create();
    char *err = NULL;

    /* Paranoid: the repair checks every block's checksum, so a damaged
     * block is dropped rather than copied into a new table as if good. */
    leveldb_options_set_paranoid_checks(o, 1);
    leveldb_repair_db(o, path, &err);
    leveldb_options_destroy(o);
    if (err)
        return push_error(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

leveldb_t *tp_store_handle(lua_State *L, int idx)
{
    store_db *d = luaL_checkudata(L, idx, MT_DB);
    return d->handle;
}

static const luaL_Reg db_methods[] = {
    {"get", l_store_get},
    {"put", l_store_put},
    {"delete", l_store_delete},
    {"write", l_store_write},
    {"batch", l_store_db_batch},
    {"iter", l_store_iter},
    {"snapshot", l_store_snapshot},
    {"property", l_store_property},
    {"approximate_size", l_store_approximate_size},
    {"compact", l_store_compact},
    {"close", l_store_close},
    {"__gc", l_store_db_gc},
    {NULL, NULL}
};

static const luaL_Reg batch_methods[] = {
    {"put", l_store_batch_put},
    {"delete", l_store_batch_delete},
    {"clear", l_store_batch_clear},
    {"count", l_store_batch_count},
    {"__gc", l_store_batch_gc},
    {NULL, NULL}
};

static const luaL_Reg iter_methods[] = {
    {"next", l_store_iter_next},
    {"close", l_store_iter_close},
    {"__call", l_store_iter_next},
    {"__gc", l_store_iter_close},
    {NULL, NULL}
};

static const luaL_Reg snap_methods[] = {
    {"release", l_store_snapshot_release},
    {"__gc", l_store_snapshot_release},
    {NULL, NULL}
};

/* buffer.__gc: frees a LevelDB buffer whose copy into Lua raised. */
static int l_store_buffer_gc(lua_State *L)
{
    char **a = luaL_checkudata(L, 1, MT_BUF);
    if (*a) {
        leveldb_free(*a);
        *a = NULL;
    }
    return 0;
}

static const luaL_Reg buf_methods[] = {
    {"__gc", l_store_buffer_gc},
    {NULL, NULL}
};

static const luaL_Reg module_funcs[] = {
    {"open", l_store_open},
    {"destroy", l_store_destroy},
    {"repair", l_store_repair},
    {"fail_writes", l_store_fail_writes},
    {"batch", l_store_batch},
    {NULL, NULL}
};

/* Creates (or refreshes) metatable tname, its own __index. */
static void new_class(lua_State *L, const char *tname, const luaL_Reg *m)
{
    luaL_newmetatable(L, tname);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    luaL_register(L, NULL, m);
    lua_pop(L, 1);
}

int luaopen_tp_store(lua_State *L)
{
    new_class(L, MT_DB, db_methods);
    new_class(L, MT_BATCH, batch_methods);
    new_class(L, MT_ITER, iter_methods);
    new_class(L, MT_SNAP, snap_methods);
    new_class(L, MT_BUF, buf_methods);
    lua_newtable(L);
    luaL_register(L, NULL, module_funcs);
    return 1;
}
