/*
 * lua_tls.c: the tp.tls Lua module, thin bindings over tls.c for the
 * start-up checks of the TLS listeners (the listeners themselves are made
 * by core.listen, and reloaded by core.tls_reload).
 *
 *   tls.make_self_signed(cert, key, cn [, days]) -> true | nil, err
 *       a new RSA key (mode 0600) and a self-signed certificate for it
 *   tls.cert_info(path) -> { not_before =, not_after =, subject = }
 *                          | nil, err
 *       the first certificate of a PEM file (times in Unix seconds)
 *
 * Expected failures (files) return nil, err; misuse raises.
 */
#include <lauxlib.h>
#include <lua.h>

#include "lua_util.h"
#include "tls.h"

static int l_make_self_signed(lua_State *L)
{
    const char *cert = luaL_checkstring(L, 1);
    const char *key = luaL_checkstring(L, 2);
    const char *cn = luaL_checkstring(L, 3);
    int days = luaL_optint(L, 4, 3650);
    if (days < 1 || days > 36500)
        return luaL_argerror(L, 4, "1 to 36500 days");
    char err[512];
    if (tp_tls_make_self_signed(cert, key, cn, days, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_cert_info(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int64_t not_before = 0, not_after = 0;
    char subject[256];
    char err[512];
    if (tp_tls_cert_info(path, &not_before, &not_after, subject,
                         sizeof subject, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, (lua_Number)not_before);
    lua_setfield(L, -2, "not_before");
    lua_pushnumber(L, (lua_Number)not_after);
    lua_setfield(L, -2, "not_after");
    lua_pushstring(L, subject);
    lua_setfield(L, -2, "subject");
    return 1;
}

int luaopen_tp_tls(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "make_self_signed", l_make_self_signed },
        { "cert_info", l_cert_info },
        { NULL, NULL }
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
