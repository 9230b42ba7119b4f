/*
 * log.h: the server's logger, shared by C and Lua.
 *
 * One line per event: UTC time, level, module, message (key=value fields
 * by convention). Lines go to stderr; the level can be set globally and per
 * module. Nothing here allocates per call.
 */
#ifndef TP_LOG_H
#define TP_LOG_H

#include <stdbool.h>

typedef enum tp_log_level {
    TP_LOG_ERROR = 0,
    TP_LOG_WARNING = 1,
    TP_LOG_INFO = 2,
    TP_LOG_DEBUG = 3,
    TP_LOG_TRACE = 4
} tp_log_level_t;

/* Parses "error", "warning" (or "warn"), "info", "debug", "trace";
 * returns -1 for anything else. */
int tp_log_level_parse(const char *name);
const char *tp_log_level_name(tp_log_level_t level);

/* Sets the default level. */
void tp_log_set_level(tp_log_level_t level);
/* Sets a level for one module (at most 32 modules; returns false past that).
 * A negative level removes the module's own setting. */
bool tp_log_set_module_level(const char *module, int level);

bool tp_log_enabled(tp_log_level_t level, const char *module);

__attribute__((format(printf, 3, 4)))
void tp_log(tp_log_level_t level, const char *module, const char *fmt, ...);

#define tp_log_error(mod, ...) tp_log(TP_LOG_ERROR, mod, __VA_ARGS__)
#define tp_log_warn(mod, ...) tp_log(TP_LOG_WARNING, mod, __VA_ARGS__)
#define tp_log_info(mod, ...) tp_log(TP_LOG_INFO, mod, __VA_ARGS__)
#define tp_log_debug(mod, ...) tp_log(TP_LOG_DEBUG, mod, __VA_ARGS__)

#endif
