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
 * A deadline holds for wall-clock time, whatever the VM spends it on:
 *  - Lua code: the watchdog below; without it (it could not start), the
 *    count hook looks at the clock every `every` instructions. A budget
 *    with a check (the console's) always has the count hook.
 *  - One long C call or instruction that returns (table.insert into a
 *    huge table, `..` of two huge strings, a slow disk): a watchdog thread
 *    sees the deadline pass and has the hook run at the very next
 *    instruction (budget.c says how).
 *  - A C function that would not return for a long time (a backtracking
 *    pattern, string.rep of a huge count, sorting a huge table): the
 *    functions of the standard library that can do that are replaced by
 *    budget_lib.c's, which call tp_budget_poll() as they work. The first
 *    push puts them into the VM's string and table libraries (once per
 *    process: the server has one VM).
 *  - Compiled code runs no hooks: the ruleset loader keeps a ruleset's
 *    code out of the trace compiler (jit = true), so its loops are always
 *    stopped; a loop the compiler made of the server's own code is not.
 * A budget's check (the console's) runs only from the hook, never from
 * inside a C function: inside one, only the deadline and an earlier stop
 * are seen.
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
    uint64_t started_ns;       /* when pushed (CLOCK_MONOTONIC) */
    uint64_t deadline_ns;      /* 0: none */
    lua_State *L;              /* the state it was pushed on (alive while
                                  it is pushed: its call is running) */
    tp_budget_t *outer;        /* the budget it suspends */
};

/* Starts b (innermost from now on). seconds = 0 with no check suspends the
 * outer budgets and runs without a hook. Only the loop thread pushes. */
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

/* For C functions that may work long before they return: raises the
 * innermost budget's stop message (luaL_error) when its deadline has
 * passed or it was stopped; otherwise returns at once. Reads the clock:
 * call it every few thousand units of work, not for each. The caller must
 * own nothing that the raise would leak (no malloc'd memory, no locks). */
void tp_budget_poll(lua_State *L);

/* Replaces string.find, match, gmatch, gsub, rep and table.concat, sort
 * in L's VM with budget_lib.c's (in the tables package.loaded holds, which
 * the string metatable and every sandbox read). tp_lua_init does it
 * right after the standard libraries; tests call it on states of their
 * own. LuaJIT's own functions stay in the registry, as the table
 * "tp.budget.native" (name -> function), for the tests that compare. Raises only on
 * memory errors. */
void tp_budget_open_lib(lua_State *L);

/* The largest string budget_lib.c's string.rep, string.gsub and
 * table.concat make (bytes); a bigger result raises instead. */
#define TP_BUDGET_MAX_STRING (64u * 1048576u)

/* Stops the watchdog thread, if it runs (tests, the end of the process);
 * a later push with a deadline starts it again. */
void tp_budget_close(void);

/* Lua: core.time_limit(seconds, what, fn, ...) -> true, fn's results |
 * false, message. Runs fn under a budget of its own; a stop counts even if
 * fn caught it. Errors other than the stop carry a traceback. */
int tp_budget_l_time_limit(lua_State *L);

#endif
