/*
 * lua_util.c: the helpers the Lua bindings share (see lua_util.h): the
 * bridge behind a lua_State, the message handler, logged protected calls,
 * hooks, object classes.
 */
#include "lua_util.h"

#include <stdbool.h>

#include "bridge.h"
#include "log.h"

/* ------------------------------------------------------------ the bridge */

/* The registry is shared by every coroutine, so any L will do. */
tp_lua_t *tp_lua_get(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, TP_LUA_KEY);
    tp_lua_t *lx = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return lx;
}

/* Needs a bridge: called from bindings only, after tp_lua_init. */
lua_State *tp_lua_main(lua_State *L)
{
    tp_lua_t *lx = tp_lua_get(L);
    return lx && lx->L ? lx->L : L;   /* L itself before tp_lua_init */
}

/* The server's loop (tp_lua_init's srv). */
uv_loop_t *tp_lua_loop(lua_State *L)
{
    return tp_lua_get(L)->srv->loop;
}

/* ------------------------------------------------------------ errors */

/* Uses raw access only, so an error value with a hostile metatable cannot
 * raise again here. */
int tp_lua_errhandler(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE) {
        lua_pushliteral(L, "tp_fail");
        lua_rawget(L, 1);
        bool is_fail = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (is_fail) {
            lua_settop(L, 1);
            return 1;
        }
    }
    const char *msg;
    int t = lua_type(L, 1);
    if (t == LUA_TSTRING || t == LUA_TNUMBER)
        msg = lua_tostring(L, 1);
    else
        msg = lua_pushfstring(L, "(error object is a %s value)",
                              lua_typename(L, t));
    luaL_traceback(L, L, msg, 1);
    lua_createtable(L, 0, 3);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "bug");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "trace");
    return 1;
}

/* Reads a string field of the record at idx without metamethods. */
const char *tp_lua_rec_string(lua_State *L, int idx, const char *key)
{
    lua_pushstring(L, key);
    lua_rawget(L, idx);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                   : NULL;
    lua_pop(L, 1); /* the string stays alive in the record */
    return s;
}

/* Protected call of the function under nargs arguments; logs a failure
 * with its traceback under what. Returns the pcall status; on success the
 * nresults results are left on the stack. */
static int pcall_logged(lua_State *L, int nargs, int nresults,
                        const char *what)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, tp_lua_errhandler);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nresults, base);
    if (rc != 0) {
        const char *msg = "?";
        if (lua_type(L, -1) == LUA_TTABLE) {
            msg = tp_lua_rec_string(L, lua_gettop(L), "trace");
            if (!msg)
                msg = tp_lua_rec_string(L, lua_gettop(L), "message");
            if (!msg)
                msg = "error";
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            msg = lua_tostring(L, -1);
        }
        tp_log_error("lua", "%s failed: %s", what, msg ? msg : "?");
        lua_pop(L, 1);
    }
    lua_remove(L, base);
    return rc;
}

/* The function and its nargs arguments are on top; no results are kept
 * (lua_util.h). */
int tp_lua_pcall_logged(lua_State *L, int nargs, const char *what)
{
    return pcall_logged(L, nargs, 0, what);
}

/* ------------------------------------------------------------ hooks */

/* Pushes hooks[name] (a function or nil). */
void tp_lua_push_hook(tp_lua_t *lx, const char *name)
{
    lua_State *L = lx->L;
    if (lx->hooks_ref == LUA_NOREF || lx->hooks_ref == LUA_REFNIL) {
        lua_pushnil(L);
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, lx->hooks_ref);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
}

/* ------------------------------------------------------------ objects */

/* The attribute table is the object's environment table. */
bool tp_lua_object_method(lua_State *L)
{
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));   /* the methods table */
    if (!lua_isnil(L, -1))
        return true;
    lua_pop(L, 1);
    return false;
}

int tp_lua_object_attr(lua_State *L)
{
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

/* __newindex of every object class: it is only ever called with an object
 * of its own metatable, so the type needs no check. */
static int object_newindex(lua_State *L)
{
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, -3);
    return 0;
}

/* A second registration of the same name keeps the first metatable. */
void tp_lua_object_class(lua_State *L, const char *name,
                         const luaL_Reg *methods, lua_CFunction index,
                         lua_CFunction gc, lua_CFunction tostring)
{
    if (luaL_newmetatable(L, name)) {
        lua_newtable(L);
        luaL_register(L, NULL, methods);
        lua_pushcclosure(L, index, 1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, object_newindex);
        lua_setfield(L, -2, "__newindex");
        if (gc) {
            lua_pushcfunction(L, gc);
            lua_setfield(L, -2, "__gc");
        }
        if (tostring) {
            lua_pushcfunction(L, tostring);
            lua_setfield(L, -2, "__tostring");
        }
    }
    lua_pop(L, 1);
}
