/*
 * tap.h: a tiny TAP producer for the C unit tests.
 *
 * Each check prints "ok N - what" or "not ok N - what" with the file and line
 * of a failure; tap_done() prints the plan and returns the exit status.
 * tests/run counts the lines of every test program.
 */
#ifndef TP_TAP_H
#define TP_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count;   /* checks run so far */
static int tap_failed;  /* checks that failed */

#define TAP_OK(cond, ...) tap_ok_((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

#define TAP_IS_INT(got, want, ...) do {                                       \
        long long g_ = (long long)(got), w_ = (long long)(want);             \
        if (!tap_ok_(g_ == w_, __FILE__, __LINE__, __VA_ARGS__))             \
            printf("#   got %lld, want %lld\n", g_, w_);                     \
    } while (0)

#define TAP_IS_STR(got, want, ...) do {                                       \
        const char *g_ = (got), *w_ = (want);                                \
        int same_ = g_ && w_ && strcmp(g_, w_) == 0;                         \
        if (!tap_ok_(same_, __FILE__, __LINE__, __VA_ARGS__))                \
            printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)",      \
                   w_ ? w_ : "(null)");                                      \
    } while (0)

__attribute__((format(printf, 4, 5)))
static int tap_ok_(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    tap_count++;
    printf("%s %d - ", pass ? "ok" : "not ok", tap_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!pass) {
        tap_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return pass;
}

static inline int tap_done(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}

#endif
