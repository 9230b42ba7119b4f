/*
 * lua_util.h: what the Lua bindings in core/ share: the bridge (tp_lua_t)
 * behind any lua_State, the message handler and logged protected calls,
 * the hooks table, and object classes (userdata with methods and an
 * attribute table).
 *
 * The bridge is a light userdata in the registry under TP_LUA_KEY, set by
 * tp_lua_init; it is the same for the main state and every coroutine.
 * Nothing here keeps state of its own.
 */
#ifndef TP_LUA_UTIL_H
#define TP_LUA_UTIL_H

#include <stdbool.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

/* Defined in bridge.h (net.h declares the name too; C11 allows both). */
typedef struct tp_lua tp_lua_t;

/* Registry key of the bridge (console.c reads it under its own name). */
#define TP_LUA_KEY "tp.bridge"

/* The bridge of L's state; NULL before tp_lua_init set it. */
tp_lua_t *tp_lua_get(lua_State *L);

/* The loop the state belongs to (for modules that start libuv work). */
uv_loop_t *tp_lua_loop(lua_State *L);

/* The main Lua state. A callback that runs later must use it, not the
 * state that asked for it: that may be a coroutine, suspended or gone by
 * then. */
lua_State *tp_lua_main(lua_State *L);

/* Message handler for every protected call into Lua. A fail.raise() table
 * passes through untouched; any other error value is a bug and becomes a
 * record { bug = true, message = ..., trace = ... }. Never raises, whatever
 * the error value's metatable does. */
int tp_lua_errhandler(lua_State *L);

/* Calls a function pushed with its nargs arguments after it, under the
 * traceback handler; a failure is logged under what. Pops them all. */
int tp_lua_pcall_logged(lua_State *L, int nargs, const char *what);

/* Pushes hooks[name] of the table boot.lua (or core.set_hooks) gave: a
 * function, or nil. */
void tp_lua_push_hook(tp_lua_t *lx, const char *name);

/* The string field key of the record (a table) at idx, read without
 * metamethods; NULL when it is not a string. The string stays alive as
 * long as the record does. */
const char *tp_lua_rec_string(lua_State *L, int idx, const char *key);

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

/* For the start of an index function: pushes the method named by the key
 * at 2 and returns true, or pushes nothing and returns false. */
bool tp_lua_object_method(lua_State *L);

#endif
