/*
 * crash.h: a last word on a fatal signal.
 *
 * A server that dies of SIGSEGV, SIGBUS, SIGILL or SIGFPE writes one line
 * naming the signal, the faulting address and what it was doing (booting,
 * serving a frame of a given type to a connection, stopping), then the C
 * stack, to stderr and to the log file, and then dies of the same signal
 * (so a core dump and the exit status stay as they were). Only
 * async-signal-safe calls are made once the signal has come.
 *
 * Not installed in sanitizer builds: their own reports say more.
 */
#ifndef TP_CRASH_H
#define TP_CRASH_H

#include <stdint.h>

/* Installs the handlers (with their own signal stack, so that a stack
 * overflow is reported too). Call once, early. */
void tp_crash_install(void);

/* What the server is doing, for the report: a static string ("boot",
 * "serve", "stop"...). */
void tp_crash_phase(const char *phase);

/* The request being handled (conn 0: none). Cheap: two stores. */
void tp_crash_request(uint64_t conn_id, int frame_type);

#endif
