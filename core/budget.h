/*
 * budget.h: the one owner of LuaJIT's count hook. A budget bounds a stretch
 * of Lua work: a player request (request_time_limit), a turn
 * (turn_time_limit), a console command (its time slice and Ctrl-C).
 *
 * Budgets nest as a stack; only the innermost one is checked, and the time
 * spent under an inner one is not counted against the outer ones (their
 * deadlines move on by it when it is popped). A budget expires when its
 * deadline passes or its check says so. From then on, until it is popped,
 * the hook raises at every Lua instruction, so that no pcall in the code
 * being stopped can swallow the stop: the code after a pcall is one more
 * instruction. Whoever pushed the budget asks tp_budget_expired() after
 * the pop and treats the work as failed, whatever it returned; recovery
 * (undo, rollback) runs after the pop, unlimited.
 *
 * LuaJIT runs no hooks inside compiled traces: with the trace compiler on
 * (jit = true) a loop it compiled is not stopped.
 */
#ifndef TP_BUDGET_H
#define TP_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include <lua.h>

typedef struct tp_budget tp_budget_t;

/* What a check says: go on, stop (raise b->why), or it has yielded the
 * coroutine away itself (the console's way to stop code that would catch
 * an error). */
typedef enum tp_budget_verdict {
    TP_BUDGET_GO_ON,
    TP_BUDGET_STOP,
    TP_BUDGET_YIELDED
} tp_budget_verdict_t;

struct tp_budget {
    /* Set by the owner before the push. */
    double seconds;            /* 0: no deadline */
    const char *what;          /* "request", "turn": names it in the stop
                                  message ("the request ran for ...") */
    int every;                 /* instructions between checks; 0: 10000 */
    /* Called at every check while not expired, and at every instruction
     * after (then with expired set); NULL: the deadline only. */
    tp_budget_verdict_t (*check)(tp_budget_t *b, lua_State *L);
    void *ud;                  /* the check's own data */
    /* State, kept by the module. */
    bool expired;              /* stopped: every later instruction raises */
    char why[192];             /* the stop message */
    uint64_t started_ns;       /* when pushed */
    uint64_t deadline_ns;      /* 0: none */
    tp_budget_t *outer;        /* the budget it suspends */
};

/* Starts b (innermost from now on). seconds = 0 with no check suspends the
 * outer budgets and runs without a hook. */
void tp_budget_push(lua_State *L, tp_budget_t *b);

/* Ends b, which must be the innermost; the outer one goes on, its deadline
 * moved by the time b ran. */
void tp_budget_pop(lua_State *L, tp_budget_t *b);

/* Whether b was stopped (valid after the pop too). */
static inline bool tp_budget_expired(const tp_budget_t *b)
{
    return b->expired;
}

/* Stops b from outside its check (the console's "the session went away"):
 * the next hook raises b->why. */
void tp_budget_stop(tp_budget_t *b, const char *why);

/* The innermost budget, or NULL. */
tp_budget_t *tp_budget_current(void);

/* Lua: core.time_limit(seconds, what, fn, ...) -> true, fn's results |
 * false, message. Runs fn under a budget of its own; a stop counts even if
 * fn caught it. Errors other than the stop carry a traceback. */
int tp_budget_l_time_limit(lua_State *L);

#endif
