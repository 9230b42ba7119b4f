/*
 * budget.c: budgets of Lua work on LuaJIT's one count hook, and the
 * watchdog that makes their deadlines hold inside long C calls
 * (budget.h).
 *
 * Only the loop thread runs Lua, so the stack of budgets is a plain
 * static list. The hook is global to the VM (LuaJIT keeps one per
 * state family), so a budget pushed on a coroutine also watches the main
 * state and every other coroutine it resumes.
 *
 * The watchdog. The count hook looks at the clock only every `every`
 * instructions, and an instruction or a C call between two looks may take
 * any time. So a thread watches the innermost deadline, which push, pop
 * and expiry publish in an atomic. When it has passed, the thread sends
 * POKE_SIGNAL to the loop thread, and the handler, on the loop thread,
 * sets the hook to run at the next instruction (lua_sethook with a count
 * of 1). LuaJIT documents lua_sethook as safe to call asynchronously, from
 * a signal handler; its own interpreter stops code on Ctrl-C that way. The
 * thread never touches the VM, and the handler checks the deadline again
 * itself, so a late or stray signal does nothing. The loop thread's own
 * lua_sethook calls (set_hook) are marked in_arm: a poke that lands inside
 * one only leaves a note, acted on when it is done, so two lua_sethook
 * calls never overlap. A signal rather than lua_sethook from the thread:
 * lua_sethook rewrites the VM's dispatch table, which must not happen at
 * the same time as the loop thread's own rewrite.
 *
 * SIGURG because nothing else in the server uses it and its default
 * action is to ignore it (Go's runtime preempts goroutines with it for the
 * same reasons). The handler is installed with SA_RESTART; a poke comes
 * only when a deadline has passed anyway.
 */
#include "budget.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#define EVERY_DEFAULT 10000
#define POKE_SIGNAL SIGURG
/* The watchdog wakes at least this often, and at each deadline. */
#define WATCH_TICK_NS 100000000ull

/* Without lock-free 64-bit atomics (which a signal handler may use) there
 * is no watchdog: the count hook alone keeps the deadlines. */
#if ATOMIC_LLONG_LOCK_FREE == 2
#define HAVE_WATCHDOG 1
#else
#define HAVE_WATCHDOG 0
#endif

static tp_budget_t *top;   /* innermost budget, or NULL */

/* Read by the watchdog thread (deadline only) and the signal handler. */
static _Atomic unsigned long long live_deadline; /* the innermost budget's
                                    deadline while it can still expire;
                                    0: none */
static lua_State *volatile live_L;       /* the state it was pushed on */
static volatile sig_atomic_t in_arm;     /* set_hook is in lua_sethook */
static volatile sig_atomic_t pending;    /* a poke came meanwhile */
static volatile sig_atomic_t poked;      /* the hook runs at every
                                            instruction for a poke */

/* The watchdog thread; only the loop thread starts and stops it. */
static struct {
    pthread_t thread;       /* the watchdog */
    pthread_t loop;         /* the thread it pokes */
    pid_t pid;              /* the process that started it */
    pthread_mutex_t lock;   /* guards stopping; the thread sleeps on wake */
    pthread_cond_t wake;    /* signalled to stop it (CLOCK_MONOTONIC) */
    bool running;           /* started and not yet stopped */
    bool failed;            /* could not start: the count hook only */
    bool stopping;          /* tells the thread to end */
    bool at_exit;           /* tp_budget_close is registered with atexit */
} wd = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void hook(lua_State *L, lua_Debug *ar);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ the poke */

/* Runs on the loop thread, from the signal handler or from set_hook. */
static void poke_now(lua_State *L)
{
    poked = 1;
    lua_sethook(L, hook, LUA_MASKCOUNT, 1);
}

static void on_poke(int sig)
{
    (void)sig;
    int saved = errno;
    unsigned long long d = atomic_load_explicit(&live_deadline,
                                                memory_order_relaxed);
    lua_State *L = live_L;
    if (d && L && now_ns() >= d) {
        if (in_arm)
            pending = 1;
        else
            poke_now(L);
    }
    errno = saved;
}

/* Every lua_sethook of the loop thread goes through here (see the top). */
static void set_hook(lua_State *L, lua_Hook f, int mask, int count)
{
    for (;;) {
        in_arm = 1;
        atomic_signal_fence(memory_order_seq_cst);
        lua_sethook(L, f, mask, count);
        atomic_signal_fence(memory_order_seq_cst);
        in_arm = 0;
        atomic_signal_fence(memory_order_seq_cst);
        if (!pending)
            return;
        pending = 0;
        unsigned long long d = atomic_load_explicit(&live_deadline,
                                                    memory_order_relaxed);
        if (!d || now_ns() < d)
            return;
        /* The poke that came meanwhile. */
        poked = 1;
        f = hook;
        mask = LUA_MASKCOUNT;
        count = 1;
    }
}

/* Publishes what the watchdog and the handler watch: the innermost
 * budget's deadline, unless there is none or it has expired already. */
static void publish(void)
{
    tp_budget_t *b = top;
    bool live = b && b->deadline_ns && !b->expired;
    if (live)
        live_L = b->L;
    atomic_signal_fence(memory_order_seq_cst);
    atomic_store_explicit(&live_deadline, live ? b->deadline_ns : 0,
                          memory_order_relaxed);
}

/* ------------------------------------------------------------ the thread */

static void *watch(void *arg)
{
    (void)arg;
    unsigned long long poked_for = 0;   /* the deadline last poked for */
    pthread_mutex_lock(&wd.lock);
    while (!wd.stopping) {
        uint64_t now = now_ns();
        unsigned long long d = atomic_load_explicit(&live_deadline,
                                                    memory_order_relaxed);
        uint64_t wake = now + WATCH_TICK_NS;
        if (d && now >= d) {
            if (d != poked_for) {
                poked_for = d;
                pthread_kill(wd.loop, POKE_SIGNAL);
            }
        } else if (d && d < wake) {
            wake = d;
        }
        struct timespec ts = { .tv_sec = (time_t)(wake / 1000000000ull),
                               .tv_nsec = (long)(wake % 1000000000ull) };
        pthread_cond_timedwait(&wd.wake, &wd.lock, &ts);
    }
    pthread_mutex_unlock(&wd.lock);
    return NULL;
}

/* In a child of fork (the daemon's detach): the thread stayed in the
 * parent, so the next deadline starts one of the child's own (arm()
 * counts on the watchdog running to leave the count hook off). */
static void watchdog_forked(void)
{
    pthread_mutex_init(&wd.lock, NULL);
    wd.running = false;
}

/* Starts the watchdog at the first deadline; on any failure the count
 * hook alone keeps the deadlines (less exactly). */
static void watchdog_start(void)
{
    if (!HAVE_WATCHDOG || wd.running || wd.failed)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_poke;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    pthread_condattr_t ca;
    if (sigaction(POKE_SIGNAL, &sa, NULL) != 0 ||
        pthread_condattr_init(&ca) != 0) {
        wd.failed = true;
        return;
    }
    bool ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
              pthread_cond_init(&wd.wake, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok) {
        wd.failed = true;
        return;
    }
    wd.loop = pthread_self();
    wd.pid = getpid();
    wd.stopping = false;
    /* The thread takes no signals: the process's go to the loop thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&wd.thread, NULL, watch, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&wd.wake);
        wd.failed = true;
        return;
    }
    wd.running = true;
    if (!wd.at_exit) {
        wd.at_exit = atexit(tp_budget_close) == 0;
        pthread_atfork(NULL, NULL, watchdog_forked);
    }
}

void tp_budget_close(void)
{
    if (!wd.running || wd.pid != getpid())
        return;
    pthread_mutex_lock(&wd.lock);
    wd.stopping = true;
    pthread_cond_signal(&wd.wake);
    pthread_mutex_unlock(&wd.lock);
    pthread_join(wd.thread, NULL);
    pthread_cond_destroy(&wd.wake);
    wd.running = false;
}

/* ------------------------------------------------------------ budgets */

/* Installs the hook the innermost budget needs: none, every `every`
 * instructions, or every instruction once it has expired. */
static void arm(lua_State *L)
{
    tp_budget_t *b = top;
    /* A deadline alone, with the watchdog running, needs no count hook:
     * the watchdog pokes when it passes, and until then the VM runs at
     * full speed (a count hook sends every instruction through C, and
     * keeps the trace compiler out). */
    if (!b || (!b->check && !b->expired &&
               (!b->deadline_ns || wd.running))) {
        set_hook(L, NULL, 0, 0);
        return;
    }
    int every = b->expired ? 1 : b->every > 0 ? b->every : EVERY_DEFAULT;
    set_hook(L, hook, LUA_MASKCOUNT, every);
}

static void expire(lua_State *L, tp_budget_t *b)
{
    b->expired = true;
    publish();
    /* From now on every instruction raises: a pcall in the code being
     * stopped catches one error, and its next instruction raises again. */
    arm(L);
}

/* Whether b's deadline has passed; then b->why says so. */
static bool past_deadline(tp_budget_t *b)
{
    if (b->expired || !b->deadline_ns || now_ns() < b->deadline_ns)
        return false;
    snprintf(b->why, sizeof b->why, "the %s ran for more than %g s (its "
             "time limit) and was stopped", b->what ? b->what : "work",
             b->seconds);
    return true;
}

static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    bool was_poked = poked;
    poked = 0;
    tp_budget_t *b = top;
    if (!b) {
        if (was_poked)
            arm(L);
        return;
    }
    if (past_deadline(b))
        expire(L, b);
    if (b->check) {
        tp_budget_verdict_t v = b->check(b, L);
        if (v == TP_BUDGET_YIELDED)
            return;   /* lua_yield was called: return at once */
        if (v == TP_BUDGET_STOP && !b->expired)
            expire(L, b);
    }
    if (b->expired)
        luaL_error(L, "%s", b->why);
    /* A poke that found nothing due: back to the budget's own pace. */
    if (was_poked)
        arm(L);
}

void tp_budget_push(lua_State *L, tp_budget_t *b)
{
    b->expired = false;
    b->why[0] = '\0';
    b->L = L;
    b->started_ns = now_ns();
    b->deadline_ns = b->seconds > 0 ?
        b->started_ns + (uint64_t)(b->seconds * 1e9) : 0;
    b->outer = top;
    top = b;
    if (b->deadline_ns)
        watchdog_start();
    publish();
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
        top->deadline_ns += now_ns() - b->started_ns;
    publish();
    arm(L);
}

void tp_budget_stop(tp_budget_t *b, const char *why)
{
    if (b->expired)
        return;
    snprintf(b->why, sizeof b->why, "%s", why);
    b->expired = true;
    if (b == top)
        publish();
    /* The hook is armed at the next arm(): the innermost budget's count
     * keeps running until then, which is soon enough for an outside
     * stop. */
}

tp_budget_t *tp_budget_current(void)
{
    return top;
}

void tp_budget_poll(lua_State *L)
{
    tp_budget_t *b = top;
    if (!b)
        return;
    if (!b->expired) {
        if (!past_deadline(b))
            return;
        expire(L, b);
    }
    luaL_error(L, "%s", b->why);
}

/* ------------------------------------------------------------ time_limit */

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
