/*
 * log.c: formatting and level filtering for the logger (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define MAX_MODULES 32

static tp_log_level_t default_level = TP_LOG_INFO;

static struct {
    char name[24];       /* module name */
    int level;           /* its level */
} modules[MAX_MODULES];
static int num_modules;

static const char *const names[] = {
    "error", "warning", "info", "debug", "trace"
};

int tp_log_level_parse(const char *name)
{
    if (!name)
        return -1;
    if (strcmp(name, "warn") == 0)
        return TP_LOG_WARNING;
    for (int i = 0; i <= TP_LOG_TRACE; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

const char *tp_log_level_name(tp_log_level_t level)
{
    return level <= TP_LOG_TRACE ? names[level] : "?";
}

void tp_log_set_level(tp_log_level_t level)
{
    default_level = level;
}

bool tp_log_set_module_level(const char *module, int level)
{
    for (int i = 0; i < num_modules; i++) {
        if (strcmp(modules[i].name, module) == 0) {
            modules[i].level = level;
            return true;
        }
    }
    if (level < 0)
        return true;
    if (num_modules == MAX_MODULES || strlen(module) >= sizeof modules[0].name)
        return false;
    snprintf(modules[num_modules].name, sizeof modules[0].name, "%s", module);
    modules[num_modules++].level = level;
    return true;
}

bool tp_log_enabled(tp_log_level_t level, const char *module)
{
    if (module) {
        for (int i = 0; i < num_modules; i++)
            if (modules[i].level >= 0 &&
                strcmp(modules[i].name, module) == 0)
                return (int)level <= modules[i].level;
    }
    return level <= default_level;
}

void tp_log(tp_log_level_t level, const char *module, const char *fmt, ...)
{
    if (!tp_log_enabled(level, module))
        return;
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-7s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
                     tp_log_level_name(level), module ? module : "-");
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    /* One line per event: fold embedded newlines (tracebacks) into " | ". */
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n')
            line[i] = '\t';
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
