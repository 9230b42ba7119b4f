/*
 * bridge.h: the one Lua state and every call from C into it.
 *
 * Only the loop thread touches the state. Each entry from C is a protected
 * call with a traceback handler: a Lua error becomes a TP Fail for the
 * request at hand and a log line, never a stopped server. A request's
 * replies are encoded into the connection's output after a savepoint, so a
 * failing handler leaves no half answer behind.
 */
#ifndef TP_BRIDGE_H
#define TP_BRIDGE_H

#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "codec.h"
#include "frame.h"
#include "net.h"

/* Fail codes (PROTOCOL.md 5.4). */
enum {
    TP_FAIL_PROTOCOL = 0,
    TP_FAIL_FRAME = 1,
    TP_FAIL_UNAVAILABLE_PERM = 2,
    TP_FAIL_UNAVAILABLE_TEMP = 3,
    TP_FAIL_NO_SUCH_THING = 4,
    TP_FAIL_PERMISSION = 5,
    TP_FAIL_GONE = 6,
    TP_FAIL_FRAME_VERSION = 7,
    TP_FAIL_TOO_BIG = 8
};

struct tp_lua {
    lua_State *L;              /* the state */
    tp_server_t *srv;          /* the network side */
    int hooks_ref;             /* registry ref of the hooks table */
    uint64_t next_error_id;    /* numbers "internal error #N" */
    bool in_dispatch;          /* guards against re-entry */
};

/* Creates the state with the standard libraries and the tp.* modules
 * preloaded (tp.core, tp.codec, tp.store, tp.crypto, tp.tls, tp.console,
 * cjson). */
int tp_lua_init(tp_lua_t *lx, tp_server_t *srv);
void tp_lua_close(tp_lua_t *lx);

/* Runs the boot script at path with args (a table on top of the stack,
 * popped). The script returns the hooks table: dispatch(conn, req),
 * request_failed(conn, err, timed_out, why) (after a request raised or was
 * stopped by its time limit: undoes its changes, returns what to answer),
 * on_open(conn), on_close(conn, reason), on_hup(), on_stop(). Returns 0, or -1 after
 * printing the error to stderr. */
int tp_lua_boot(tp_lua_t *lx, const char *path);

/* Decodes one whole request frame and dispatches it (see file comment). */
void tp_lua_request(tp_lua_t *lx, tp_conn_t *c, const tp_header_t *h,
                    const uint8_t *body);

/* Appends a Fail frame in version (3 or 4) with seq to c's output. */
void tp_lua_send_fail(tp_lua_t *lx, tp_conn_t *c, int version, uint32_t seq,
                      uint32_t code, const char *msg);

/* Connection lifecycle hooks. */
void tp_lua_conn_open(tp_lua_t *lx, tp_conn_t *c);
void tp_lua_conn_closed(tp_lua_t *lx, tp_conn_t *c, const char *reason);

/* Stops the server: listeners, connections (after flushing) and timers,
 * so that uv_run returns. */
void tp_lua_request_stop(tp_lua_t *lx);

/* Calls the on_hup hook (SIGHUP: reload what can be reloaded). */
void tp_lua_hup(tp_lua_t *lx);

/* Calls the on_stop hook (flush and close the store). */
void tp_lua_stop(tp_lua_t *lx);

/* The loop the state belongs to (for modules that start libuv work). */
uv_loop_t *tp_lua_loop(lua_State *L);

/* The main Lua state. A callback that runs later must use it, not the
 * state that asked for it: that may be a coroutine, suspended or gone by
 * then. */
lua_State *tp_lua_main(lua_State *L);

/* Calls a function pushed with its nargs arguments after it, under the
 * traceback handler; a failure is logged under what. Pops them all. */
int tp_lua_pcall_logged(lua_State *L, int nargs, const char *what);

/* Objects for Lua with methods and an attribute table (conn, console
 * session): a full userdata whose environment table holds what Lua code
 * sets on it. tp_lua_object_class registers metatable name with methods
 * (an upvalue of index, which looks them up first: lua_upvalueindex(1)),
 * index (computed fields; it ends with tp_lua_object_attr), a __newindex
 * that stores into the attribute table, and the optional gc and tostring.
 * Leaves the stack as it was. */
void tp_lua_object_class(lua_State *L, const char *name,
                         const luaL_Reg *methods, lua_CFunction index,
                         lua_CFunction gc, lua_CFunction tostring);

/* Pushes the attribute of the object at 1 named by the key at 2; for the
 * end of an index function: return tp_lua_object_attr(L). */
int tp_lua_object_attr(lua_State *L);

/* Module openers defined elsewhere. */
int luaopen_tp_core(lua_State *L);
int luaopen_tp_crypto(lua_State *L);
int luaopen_tp_tls(lua_State *L);

#endif
