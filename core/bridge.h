/*
 * bridge.h: the one Lua state and every call from C into it.
 *
 * Only the loop thread touches the state. Each entry from C is a protected
 * call with a traceback handler: a Lua error becomes a TP Fail for the
 * request at hand and a log line, never a stopped server. A request's
 * replies are encoded into the connection's output after a savepoint, so a
 * failing handler leaves no half answer behind.
 *
 * bridge.c owns the state and the request path; its bindings are
 * lua_conn.c (tp.conn) and lua_core.c (tp.core, timers), over the helpers
 * of lua_util.h, which this header includes for every binding in core/.
 * The network side never includes this header: it reaches the bridge only
 * through the handlers tp_lua_init registers (listener.h).
 */
#ifndef TP_BRIDGE_H
#define TP_BRIDGE_H

#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "codec.h"
#include "frame.h"
#include "lua_util.h"
#include "net.h"

struct tp_lua {
    lua_State *L;              /* the state */
    tp_server_t *srv;          /* the network side */
    int hooks_ref;             /* registry ref of the hooks table */
    uint64_t next_error_id;    /* numbers "internal error #N" */
    bool in_dispatch;          /* guards against re-entry */
};

/* Creates the state with the standard libraries and the tp.* modules
 * preloaded (tp.core, tp.codec, tp.store, tp.crypto, tp.tls, tp.console,
 * cjson), and registers the connection handlers on srv (open, frame,
 * close: each request frame is decoded and dispatched to Lua). */
int tp_lua_init(tp_lua_t *lx, tp_server_t *srv);
void tp_lua_close(tp_lua_t *lx);

/* Runs the boot script at path with args (a table on top of the stack,
 * popped). The script returns the hooks table: dispatch(conn, req),
 * request_failed(conn, err, timed_out, why) (after a request raised or
 * was stopped by its time limit: undoes its changes, returns what to
 * answer), on_open(conn), on_close(conn, reason), on_hup(), on_stop().
 * Returns 0, or -1 after printing the error to stderr. */
int tp_lua_boot(tp_lua_t *lx, const char *path);

/* Stops the server: listeners, connections (after flushing) and timers,
 * so that uv_run returns. */
void tp_lua_request_stop(tp_lua_t *lx);

/* Calls the on_hup hook (SIGHUP: reload what can be reloaded). */
void tp_lua_hup(tp_lua_t *lx);

/* Calls the on_stop hook (flush and close the store). */
void tp_lua_stop(tp_lua_t *lx);

/* Module openers defined elsewhere. */
int luaopen_tp_core(lua_State *L);
int luaopen_tp_crypto(lua_State *L);
int luaopen_tp_text(lua_State *L);
int luaopen_tp_tls(lua_State *L);

/* ---- Between bridge.c and its bindings (lua_conn.c, lua_core.c). */

/* lua_conn.c: registers the tp.conn class (tp_lua_init calls it). */
void tp_lua_open_conn(lua_State *L);

/* lua_conn.c: makes c's Lua object and calls the on_open hook. */
void tp_lua_conn_open(tp_lua_t *lx, tp_conn_t *c);

/* lua_conn.c: calls the on_close hook and detaches c's Lua object (it
 * stays valid, as a closed connection). Once per connection. */
void tp_lua_conn_closed(tp_lua_t *lx, tp_conn_t *c, const char *reason);

/* lua_conn.c: pushes c's Lua object. */
void tp_lua_push_conn(lua_State *L, tp_conn_t *c);

/* lua_conn.c: appends the frame table at idx to c's output, with seq, in
 * c's protocol version. Raises when it does not encode (not a table, no
 * _type, a type or field the version lacks, over the frame limit); what
 * it appended before raising is the caller's to roll back. */
void tp_lua_encode_frame(lua_State *L, int idx, tp_conn_t *c, uint32_t seq);

/* lua_conn.c: the same for a handler's result at idx: nil (nothing), one
 * frame (a table with _type), or an array of frames. */
void tp_lua_encode_replies(lua_State *L, int idx, tp_conn_t *c,
                           uint32_t seq);

/* lua_conn.c: the connection of the tp.conn at idx: NULL when it has
 * closed (or a raise then, if must_be_open). */
tp_conn_t *tp_lua_check_conn(lua_State *L, int idx, bool must_be_open);

/* lua_http.c: one whole HTTP request (the server's http handler). */
struct tp_http;
void tp_lua_http(tp_lua_t *lx, tp_conn_t *c, struct tp_http *h);

/* lua_http.c: conn:http_respond(answer) and conn:http_write(s). */
int tp_lua_conn_http_respond(lua_State *L);
int tp_lua_conn_http_write(lua_State *L);

/* lua_core.c: registers the tp.timer class (tp_lua_init calls it). */
void tp_lua_open_timers(lua_State *L);

/* lua_core.c: closes every timer core.timer() started. */
void tp_lua_close_timers(void);

#endif
