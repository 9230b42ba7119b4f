/*
 * log.h: the server's logger, shared by C and Lua.
 *
 * One line per event: UTC time, level, module, message (key=value fields
 * by convention, see lua/tp/log.lua). The level can be set globally and
 * per module. Lines go to any combination of three sinks:
 *   - stderr;
 *   - a file, opened for appending and reopened (same path) by
 *     tp_log_reopen() on SIGHUP, so logrotate can move it away;
 *   - syslog, spoken directly over the local datagram socket (/dev/log by
 *     default, or any path), with a facility and an ident, RFC 3164 form.
 * Until tp_log_configure() is called, stderr is the only sink.
 *
 * Nothing here allocates per call, and nothing blocks on syslog: a message
 * the syslog socket cannot take at once is dropped and counted. Calls are
 * serialised by a mutex, so any thread may log.
 */
#ifndef TP_LOG_H
#define TP_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum tp_log_level {
    TP_LOG_ERROR = 0,
    TP_LOG_WARNING = 1,
    TP_LOG_INFO = 2,
    TP_LOG_DEBUG = 3,
    TP_LOG_TRACE = 4
} tp_log_level_t;

#define TP_LOG_NUM_LEVELS 5

/* Parses "error", "warning" (or "warn"), "info", "debug", "trace";
 * returns -1 for anything else. */
int tp_log_level_parse(const char *name);
const char *tp_log_level_name(tp_log_level_t level);

/* Sets the default level. */
void tp_log_set_level(tp_log_level_t level);
/* Sets a level for one module (at most 32 modules; returns false past that).
 * A negative level removes the module's own setting. */
bool tp_log_set_module_level(const char *module, int level);
/* Removes every per-module level (a reload sets them afresh). */
void tp_log_clear_module_levels(void);

bool tp_log_enabled(tp_log_level_t level, const char *module);

__attribute__((format(printf, 3, 4)))
void tp_log(tp_log_level_t level, const char *module, const char *fmt, ...);

#define tp_log_error(mod, ...) tp_log(TP_LOG_ERROR, mod, __VA_ARGS__)
#define tp_log_warn(mod, ...) tp_log(TP_LOG_WARNING, mod, __VA_ARGS__)
#define tp_log_info(mod, ...) tp_log(TP_LOG_INFO, mod, __VA_ARGS__)
#define tp_log_debug(mod, ...) tp_log(TP_LOG_DEBUG, mod, __VA_ARGS__)

/* Where lines go. Strings are copied by tp_log_configure(). */
typedef struct tp_log_sinks {
    bool to_stderr;             /* write lines to stderr */
    const char *file;           /* append to this file; NULL or "": none */
    bool to_syslog;             /* send lines to syslog */
    int syslog_facility;        /* facility code (tp_log_facility_parse) */
    const char *syslog_ident;   /* tag in front of each message */
    const char *syslog_socket;  /* datagram socket; NULL: "/dev/log" */
} tp_log_sinks_t;

/* Replaces the sinks. The new file is opened before anything changes: if
 * it cannot be opened, the sinks stay as they were and a negative errno is
 * returned with a message naming the file in err. A syslog socket that
 * cannot be reached is not an error (syslogd may come later): the attempt
 * is repeated at most once a second while messages come. */
int tp_log_configure(const tp_log_sinks_t *sinks, char *err, size_t errlen);

/* Reopens the log file at its path (after logrotate moved it) and
 * reconnects to syslog. Returns 0, or a negative errno with a message in
 * err; the old file then stays in use. */
int tp_log_reopen(char *err, size_t errlen);

/* Closes the file and the syslog socket; stderr becomes the only sink. */
void tp_log_close(void);

/* The file sink's descriptor, or -1 (read without the lock; for the crash
 * report only). */
int tp_log_file_fd(void);

/* Parses a syslog facility name ("daemon", "user", "local0".."local7",
 * "auth", "authpriv", "cron", ...); returns its code or -1. */
int tp_log_facility_parse(const char *name);

/* Counters for the statistics. */
typedef struct tp_log_counts {
    uint64_t lines[TP_LOG_NUM_LEVELS]; /* lines written, by level */
    uint64_t syslog_dropped;           /* messages syslog did not take */
    uint64_t write_errors;             /* failed writes to stderr or file */
} tp_log_counts_t;

void tp_log_get_counts(tp_log_counts_t *out);

/* One extra sink (the admin console's): fn(level, module, text, len, arg)
 * gets every line written, without the time, level and module prefix and
 * without the newline. It is called after the other sinks, with the
 * logger's lock released, on the thread that logged; lines logged from
 * inside fn go to the other sinks only. NULL removes it. */
typedef void (*tp_log_sink_fn)(tp_log_level_t level, const char *module,
                               const char *text, size_t len, void *arg);
void tp_log_set_sink_fn(tp_log_sink_fn fn, void *arg);

#endif
