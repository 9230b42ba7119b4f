/*
 * budget.c: budgets of Lua work on LuaJIT's one count hook (budget.h).
 *
 * Only the loop thread runs Lua, so the stack of budgets is a plain
 * static list. The hook is global to the VM (LuaJIT keeps one per
 * state family), so a budget pushed on a coroutine also watches the main
 * state and every other coroutine it resumes.
 */
#include "budget.h"

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <uv.h>

#define EVERY_DEFAULT 10000

static tp_budget_t *top;   /* innermost budget, or NULL */

static void hook(lua_State *L, lua_Debug *ar);

/* Installs the hook the innermost budget needs: none, every `every`
 * instructions, or every instruction once it has expired. */
static void arm(lua_State *L)
{
    tp_budget_t *b = top;
    if (!b || (!b->deadline_ns && !b->check && !b->expired)) {
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    int every = b->expired ? 1 : b->every > 0 ? b->every : EVERY_DEFAULT;
    lua_sethook(L, hook, LUA_MASKCOUNT, every);
}

static void expire(lua_State *L, tp_budget_t *b)
{
    b->expired = true;
    /* From now on every instruction raises: a pcall in the code being
     * stopped catches one error, and its next instruction raises again. */
    arm(L);
}

static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    tp_budget_t *b = top;
    if (!b)
        return;
    if (!b->expired && b->deadline_ns && uv_hrtime() > b->deadline_ns) {
        snprintf(b->why, sizeof b->why, "the %s ran for more than %g s of "
                 "Lua time (its time limit) and was stopped",
                 b->what ? b->what : "work", b->seconds);
        expire(L, b);
    }
    if (b->check) {
        tp_budget_verdict_t v = b->check(b, L);
        if (v == TP_BUDGET_YIELDED)
            return;   /* lua_yield was called: return at once */
        if (v == TP_BUDGET_STOP && !b->expired)
            expire(L, b);
    }
    if (b->expired)
        luaL_error(L, "%s", b->why);
}

void tp_budget_push(lua_State *L, tp_budget_t *b)
{
    b->expired = false;
    b->why[0] = '\0';
    b->started_ns = uv_hrtime();
    b->deadline_ns = b->seconds > 0 ?
        b->started_ns + (uint64_t)(b->seconds * 1e9) : 0;
    b->outer = top;
    top = b;
    arm(L);
}

void tp_budget_pop(lua_State *L, tp_budget_t *b)
{
    if (top != b)
        return;   /* popped out of order: a bug; keep the stack sound */
    top = b->outer;
    b->outer = NULL;
    /* The outer budget does not pay for the time the inner one ran. */
    if (top && top->deadline_ns && !top->expired)
        top->deadline_ns += uv_hrtime() - b->started_ns;
    arm(L);
}

void tp_budget_stop(tp_budget_t *b, const char *why)
{
    if (b->expired)
        return;
    snprintf(b->why, sizeof b->why, "%s", why);
    b->expired = true;
    /* The hook is armed at the next arm(): the innermost budget's count
     * keeps running until then, which is soon enough for an outside
     * stop. */
}

tp_budget_t *tp_budget_current(void)
{
    return top;
}

/* The message handler of time_limit: the stop's message as it is, other
 * errors with their traceback. */
static int traceback(lua_State *L)
{
    tp_budget_t *b = top;
    if (b && b->expired) {
        lua_pushstring(L, b->why);
        return 1;
    }
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = lua_pushfstring(L, "(error object is a %s value)",
                              luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int tp_budget_l_time_limit(lua_State *L)
{
    lua_Number seconds = luaL_checknumber(L, 1);
    if (!(seconds >= 0 && seconds <= 1e7))
        return luaL_argerror(L, 1, "0 to 1e7 seconds");
    const char *what = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    tp_budget_t b = { .seconds = seconds };
    char what_buf[32];
    snprintf(what_buf, sizeof what_buf, "%s", what);
    b.what = what_buf;
    lua_pushcfunction(L, traceback);
    lua_insert(L, 3);
    int nargs = lua_gettop(L) - 4;
    tp_budget_push(L, &b);
    int rc = lua_pcall(L, nargs, LUA_MULTRET, 3);
    tp_budget_pop(L, &b);
    if (tp_budget_expired(&b)) {
        /* Stopped, even if the code caught the stop and returned. */
        lua_pushboolean(L, 0);
        lua_pushstring(L, b.why);
        return 2;
    }
    if (rc != 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    int n = lua_gettop(L) - 3;
    lua_pushboolean(L, 1);
    lua_insert(L, 4);
    return n + 1;
}
