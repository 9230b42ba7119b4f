/*
 * curl.h: outgoing HTTP(S) requests (module tp.curl, core/curl.c), through
 * libcurl's multi interface driven by the loop: curl tells which sockets
 * to watch (one uv_poll each) and when to wake it (one uv_timer), and the
 * loop hands it the events. Nothing waits: name resolution runs on curl's
 * resolver thread (Debian's libcurl has the threaded resolver), a
 * connection or a reply that never comes ends at the request's timeout.
 *
 * The handles do not keep the loop alive by themselves (a server that
 * stops does not wait for a metaserver); a script that needs the answer
 * keeps a timer of its own. A stop (tp_curl_close_all) drops every
 * request still running, without calling its callback.
 *
 * Lua API:
 *   curl.request({ url =, method = "GET", headers = { "Name: value" },
 *                  body = string, timeout = 30, connect_timeout = 10,
 *                  max_size = 1048576, user_agent = }, fn) -> id | nil, err
 *     fn({ status = n (0 when no reply), body = string, error = msg | nil,
 *          url = effective URL, seconds = total time, content_type = }),
 *     called once, on the loop, under protection. Only http and https
 *     URLs are accepted; a body longer than max_size ends the request
 *     with an error.
 *   curl.cancel(id) -> true | false (already done)
 *   curl.pending() -> number of requests running
 *   curl.escape(s) -> s percent-encoded (RFC 3986 unreserved kept)
 */
#ifndef TP_CURL_H
#define TP_CURL_H

#include <lua.h>

int luaopen_tp_curl(lua_State *L);

/* Drops every request and closes the handles (at a stop). */
void tp_curl_close_all(void);

#endif
