/*
 * crash.c: see crash.h.
 */
#include "crash.h"

#include <execinfo.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TP_CRASH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TP_CRASH_SANITIZED 1
#endif
#endif

/* Stored by the loop thread, read by the signal handler: volatile, so
 * every store is made and the handler sees the latest one. */
static const char *volatile crash_phase = "start";
static volatile uint64_t crash_conn;
static volatile int crash_type = -1;

void tp_crash_phase(const char *phase)
{
    crash_phase = phase;
}

void tp_crash_request(uint64_t conn_id, int frame_type)
{
    crash_conn = conn_id;
    crash_type = frame_type;
}

/* Appends s to buf (at *n, bounded by cap). */
static void put_str(char *buf, size_t cap, size_t *n, const char *s)
{
    /* By hand, not snprintf: stdio is not async-signal-safe. */
    while (*s && *n + 1 < cap)
        buf[(*n)++] = *s++;
}

/* Appends v in base 10 or 16. */
static void put_num(char *buf, size_t cap, size_t *n, uint64_t v, int base)
{
    /* A u64 has at most 20 digits in base 10, 16 in base 16. */
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = "0123456789abcdef"[v % (unsigned)base];
        v /= (unsigned)base;
    } while (v && i < (int)sizeof tmp);
    if (base == 16)
        put_str(buf, cap, n, "0x");
    while (i > 0 && *n + 1 < cap)
        buf[(*n)++] = tmp[--i];
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    default: return "signal";
    }
}

static void on_fatal(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    char line[256];
    size_t n = 0;
    put_str(line, sizeof line, &n, "tpserver: fatal ");
    put_str(line, sizeof line, &n, signal_name(sig));
    put_str(line, sizeof line, &n, " address=");
    put_num(line, sizeof line, &n, (uint64_t)(uintptr_t)si->si_addr, 16);
    put_str(line, sizeof line, &n, " pid=");
    put_num(line, sizeof line, &n, (uint64_t)getpid(), 10);
    put_str(line, sizeof line, &n, " phase=");
    put_str(line, sizeof line, &n, crash_phase);
    if (crash_conn) {
        put_str(line, sizeof line, &n, " conn=");
        put_num(line, sizeof line, &n, crash_conn, 10);
        put_str(line, sizeof line, &n, " frame_type=");
        put_num(line, sizeof line, &n, (uint64_t)(unsigned)crash_type, 10);
    }
    put_str(line, sizeof line, &n, "; C stack follows\n");
    /* The log file too: a daemon's stderr is /dev/null (tp_daemon_ready). */
    int fds[2] = { STDERR_FILENO, tp_log_file_fd() };
    void *frames[64];
    int depth = backtrace(frames, 64);
    for (int i = 0; i < 2; i++) {
        /* A log file that got descriptor 2 (stderr closed): write once. */
        if (fds[i] < 0 || (i == 1 && fds[1] == fds[0]))
            continue;
        /* A failed write is ignored: there is no one left to tell. */
        ssize_t w = write(fds[i], line, n);
        (void)w;
        backtrace_symbols_fd(frames, depth, fds[i]);
    }
    /* SA_RESETHAND put the default action back: raise it again so that
     * the process dies of this signal (with its core dump). */
    raise(sig);
}

void tp_crash_install(void)
{
#ifndef TP_CRASH_SANITIZED
    /* backtrace() loads libgcc on first use, which allocates: do that
     * now, not in the handler. */
    void *warm[4];
    (void)backtrace(warm, 4);

    /* A stack of its own: a stack overflow faults with no stack left for
     * the handler. Static, so nothing is allocated; 64 KiB holds backtrace()
     * and the handler with room to spare (MINSIGSTKSZ is a few KiB). */
    static char altstack[64 * 1024];
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };
    bool have_stack = sigaltstack(&ss, NULL) == 0;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    /* Without the stack the report still comes, except on an overflow. */
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | (have_stack ? SA_ONSTACK : 0);
    sigemptyset(&sa.sa_mask);
    const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
#else
    /* The sanitizer's own handler reports more (crash.h); the cast keeps
     * -Werror quiet about the unused function. */
    (void)on_fatal;
#endif
}
