/*
 * log.c: level filtering, line formatting and the sinks of the logger (see
 * log.h).
 *
 * State: the levels, the sink settings and their descriptors, all guarded
 * by one mutex. The file and syslog descriptors are replaced only after
 * the new ones are open, so a failed reopen leaves logging as it was.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Fixed sizes, so nothing allocates while logging (log.h): a longer
 * line is cut, and a missing syslogd costs one connect a second. */
#define MAX_MODULES 32
#define LINE_MAX_LEN 2048
#define SYSLOG_DEFAULT_SOCKET "/dev/log"
#define SYSLOG_RETRY_SECONDS 1

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static tp_log_level_t default_level = TP_LOG_INFO;

static struct {
    char name[24];       /* module name */
    int level;           /* its level, or -1 when removed */
} modules[MAX_MODULES];
static int num_modules;

static const char *const names[] = {
    "error", "warning", "info", "debug", "trace"
};

/* syslog severities of our levels (RFC 5424 6.2.1). */
static const int severities[] = { 3, 4, 6, 7, 7 };

static struct {
    bool to_stderr;                 /* stderr sink on */
    char file[PATH_MAX];            /* file sink path, "" when off */
    int file_fd;                    /* its descriptor, -1 when closed */
    bool to_syslog;                 /* syslog sink on */
    int facility;                   /* syslog facility code */
    char ident[64];                 /* syslog tag */
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int syslog_fd;                  /* connected socket, or -1 */
    int syslog_type;                /* SOCK_DGRAM or SOCK_STREAM */
    time_t syslog_next_try;         /* no reconnect before this */
    tp_log_counts_t counts;         /* statistics */
} sink = {
    .to_stderr = true, .file_fd = -1, .facility = 3, .ident = "tpserver",
    .socket_path = SYSLOG_DEFAULT_SOCKET, .syslog_fd = -1,
};

/* The extra sink (tp_log_set_sink_fn), and whether this thread is inside
 * it (so that what it logs does not come back to it). */
static struct {
    tp_log_sink_fn fn;              /* NULL: none */
    void *arg;                      /* its argument */
} extra_sink;
static _Thread_local bool extra_sink_busy;

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
    pthread_mutex_lock(&lock);
    default_level = level;
    pthread_mutex_unlock(&lock);
}

bool tp_log_set_module_level(const char *module, int level)
{
    bool ok = true;
    pthread_mutex_lock(&lock);
    /* A removed module keeps its slot (level -1) and gets it back when set
     * again, so removing and setting never runs out of slots. */
    for (int i = 0; i < num_modules; i++) {
        if (strcmp(modules[i].name, module) == 0) {
            modules[i].level = level;
            goto done;
        }
    }
    /* Removing a level that was never set: nothing to do, no slot taken. */
    if (level < 0)
        goto done;
    if (num_modules == MAX_MODULES ||
        strlen(module) >= sizeof modules[0].name) {
        ok = false;
        goto done;
    }
    snprintf(modules[num_modules].name, sizeof modules[0].name, "%s", module);
    modules[num_modules++].level = level;
done:
    pthread_mutex_unlock(&lock);
    return ok;
}

void tp_log_clear_module_levels(void)
{
    pthread_mutex_lock(&lock);
    num_modules = 0;
    pthread_mutex_unlock(&lock);
}

/* Caller holds the lock. */
static bool enabled_locked(tp_log_level_t level, const char *module)
{
    if (module) {
        for (int i = 0; i < num_modules; i++)
            if (modules[i].level >= 0 &&
                strcmp(modules[i].name, module) == 0)
                return (int)level <= modules[i].level;
    }
    return level <= default_level;
}

bool tp_log_enabled(tp_log_level_t level, const char *module)
{
    pthread_mutex_lock(&lock);
    bool on = enabled_locked(level, module);
    pthread_mutex_unlock(&lock);
    return on;
}

/* ------------------------------------------------------------ sinks */

/* Writes all of buf to fd; false on error. */
static bool write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/* Opens and connects a socket to the syslog path, datagram first, then
 * stream (some systems have a stream /dev/log). Returns the descriptor or
 * -1 with errno set. */
static int syslog_connect(const char *path, int *type)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path));
    static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
    int saved = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            *type = types[i];
            return fd;
        }
        saved = errno;
        close(fd);
        /* Only a wrong socket type is worth trying the other one; any other
         * error (no such file, refused) would come again. */
        if (saved != EPROTOTYPE)
            break;
    }
    errno = saved;
    return -1;
}

/* Caller holds the lock. Connects when not connected and the last attempt
 * is at least a second old. */
static void syslog_ensure_locked(time_t now)
{
    if (sink.syslog_fd >= 0 || now < sink.syslog_next_try)
        return;
    sink.syslog_next_try = now + SYSLOG_RETRY_SECONDS;
    sink.syslog_fd = syslog_connect(sink.socket_path, &sink.syslog_type);
}

static void syslog_disconnect_locked(void)
{
    if (sink.syslog_fd >= 0)
        close(sink.syslog_fd);
    sink.syslog_fd = -1;
}

/* Caller holds the lock. msg is "level module: text" without newline. */
static void syslog_send_locked(tp_log_level_t level, const struct timeval *tv,
                               const char *msg, size_t msglen)
{
    syslog_ensure_locked(tv->tv_sec);
    if (sink.syslog_fd < 0) {
        sink.counts.syslog_dropped++;
        return;
    }
    /* Room for the header (priority, time, ident, pid) and a whole line. */
    char buf[LINE_MAX_LEN + 128];
    struct tm tm;
    time_t secs = tv->tv_sec;
    /* Local time without a zone, as RFC 3164 stamps are (our lines: UTC). */
    localtime_r(&secs, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    int n = snprintf(buf, sizeof buf, "<%d>%s %s[%d]: ",
                     sink.facility * 8 + severities[level], stamp, sink.ident,
                     (int)getpid());
    if (n < 0)
        return;
    size_t len = (size_t)n;
    /* One byte kept for the NUL a stream socket takes after the message. */
    if (msglen > sizeof buf - len - 1)
        msglen = sizeof buf - len - 1;
    memcpy(buf + len, msg, msglen);
    len += msglen;
    if (sink.syslog_type == SOCK_STREAM)
        buf[len++] = '\0';  /* what syslogd expects between messages */
    for (int attempt = 0; attempt < 2; attempt++) {
        ssize_t sent = send(sink.syslog_fd, buf, len,
                            MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent == (ssize_t)len)
            return;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                         errno == ENOBUFS))
            break;   /* syslogd is behind: never stall the server */
        /* The reader went away (syslogd restarted): reconnect once. */
        syslog_disconnect_locked();
        /* The one-second pacing is for a missing syslogd, not this retry. */
        sink.syslog_next_try = 0;
        syslog_ensure_locked(tv->tv_sec);
        if (sink.syslog_fd < 0)
            break;
    }
    sink.counts.syslog_dropped++;
}

void tp_log(tp_log_level_t level, const char *module, const char *fmt, ...)
{
    /* The level indexes names, severities and the counts: clamp it. */
    if (level > TP_LOG_TRACE)
        level = TP_LOG_TRACE;
    pthread_mutex_lock(&lock);
    if (!enabled_locked(level, module)) {
        pthread_mutex_unlock(&lock);
        return;
    }
    char line[LINE_MAX_LEN];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t secs = tv.tv_sec;
    gmtime_r(&secs, &tm);
    int stamp = snprintf(line, sizeof line,
                         "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec,
                         (int)(tv.tv_usec / 1000));
    int n = stamp < 0 ? -1 :
        snprintf(line + stamp, sizeof line - (size_t)stamp, "%-7s %s: ",
                 tp_log_level_name(level), module ? module : "-");
    if (n < 0) {
        pthread_mutex_unlock(&lock);
        return;
    }
    n += stamp;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    /* m is what vsnprintf wanted to write, not what fit: clamp, keeping a
     * byte for the newline. */
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    /* One line per event: fold embedded newlines (tracebacks) into tabs,
     * and other control characters (from peers' strings) into '?', so no
     * one can forge a line. */
    for (size_t i = (size_t)n; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if (ch == '\n')
            line[i] = '\t';
        else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            line[i] = '?';
    }
    line[len++] = '\n';
    sink.counts.lines[level]++;
    if (sink.to_stderr && !write_all(STDERR_FILENO, line, len))
        sink.counts.write_errors++;
    if (sink.file_fd >= 0 && !write_all(sink.file_fd, line, len))
        sink.counts.write_errors++;
    /* Without our time stamp: the syslog header carries its own. */
    if (sink.to_syslog)
        syslog_send_locked(level, &tv, line + stamp, len - 1 - (size_t)stamp);
    tp_log_sink_fn extra = extra_sink.fn;
    void *extra_arg = extra_sink.arg;
    pthread_mutex_unlock(&lock);
    /* Called unlocked: the console's sink writes to sessions and may log,
     * and the lock is not recursive. fn and arg were read under it. */
    if (extra && !extra_sink_busy) {
        extra_sink_busy = true;
        extra(level, module, line + n, len - 1 - (size_t)n, extra_arg);
        extra_sink_busy = false;
    }
}

/* ------------------------------------------------------------ set-up */

static int open_log_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open log file %s: %s", path,
                 strerror(e));
        return -e;
    }
    return fd;
}

int tp_log_configure(const tp_log_sinks_t *s, char *err, size_t errlen)
{
    const char *file = s->file && *s->file ? s->file : NULL;
    if (file && strlen(file) >= sizeof sink.file) {
        snprintf(err, errlen, "log file name too long: %s", file);
        return -ENAMETOOLONG;
    }
    const char *sock = s->syslog_socket && *s->syslog_socket ?
        s->syslog_socket : SYSLOG_DEFAULT_SOCKET;
    if (s->to_syslog && strlen(sock) >= sizeof sink.socket_path) {
        snprintf(err, errlen, "syslog socket path too long: %s", sock);
        return -ENAMETOOLONG;
    }
    /* 0-23 (RFC 5424): facility * 8 + severity must be a valid priority. */
    if (s->to_syslog &&
        (s->syslog_facility < 0 || s->syslog_facility > 23)) {
        snprintf(err, errlen, "bad syslog facility %d", s->syslog_facility);
        return -EINVAL;
    }
    /* The file is opened before anything changes, so a bad path leaves the
     * old sinks in place. */
    int fd = -1;
    if (file) {
        fd = open_log_file(file, err, errlen);
        if (fd < 0)
            return fd;
    }
    pthread_mutex_lock(&lock);
    if (sink.file_fd >= 0)
        close(sink.file_fd);
    sink.file_fd = fd;
    snprintf(sink.file, sizeof sink.file, "%s", file ? file : "");
    sink.to_stderr = s->to_stderr;
    syslog_disconnect_locked();
    sink.to_syslog = s->to_syslog;
    int e = 0;
    if (s->to_syslog) {
        sink.facility = s->syslog_facility;
        snprintf(sink.ident, sizeof sink.ident, "%s",
                 s->syslog_ident && *s->syslog_ident ? s->syslog_ident
                                                     : "tpserver");
        snprintf(sink.socket_path, sizeof sink.socket_path, "%s", sock);
        sink.syslog_next_try = 0;
        struct timeval tv;
        gettimeofday(&tv, NULL);
        syslog_ensure_locked(tv.tv_sec);
        /* Read at once: why the connect failed, for the warning below. */
        e = errno;
    }
    bool unreachable = sink.to_syslog && sink.syslog_fd < 0;
    pthread_mutex_unlock(&lock);
    /* Warned after the unlock: tp_log takes the lock itself. */
    if (unreachable)
        tp_log_warn("log", "syslog socket %s: %s (will retry)", sock,
                    strerror(e));
    return 0;
}

int tp_log_reopen(char *err, size_t errlen)
{
    char path[PATH_MAX];
    pthread_mutex_lock(&lock);
    snprintf(path, sizeof path, "%s", sink.file);
    /* syslogd may have been restarted too: reconnect at the next line. */
    syslog_disconnect_locked();
    sink.syslog_next_try = 0;
    pthread_mutex_unlock(&lock);
    if (!*path)
        return 0;
    /* Opened without the lock, so other threads keep logging meanwhile;
     * the sinks may have been reconfigured by then (checked below). */
    int fd = open_log_file(path, err, errlen);
    if (fd < 0)
        return fd;
    pthread_mutex_lock(&lock);
    if (strcmp(path, sink.file) == 0) {
        if (sink.file_fd >= 0)
            close(sink.file_fd);
        sink.file_fd = fd;
        fd = -1;
    }
    pthread_mutex_unlock(&lock);
    if (fd >= 0)
        close(fd);  /* reconfigured meanwhile (another thread) */
    return 0;
}

int tp_log_file_fd(void)
{
    /* Read without the lock: for the crash report, which must not wait. */
    return sink.file_fd;
}

void tp_log_close(void)
{
    pthread_mutex_lock(&lock);
    if (sink.file_fd >= 0)
        close(sink.file_fd);
    sink.file_fd = -1;
    sink.file[0] = '\0';
    syslog_disconnect_locked();
    sink.to_syslog = false;
    sink.to_stderr = true;
    pthread_mutex_unlock(&lock);
}

int tp_log_facility_parse(const char *name)
{
    static const struct {
        const char *name;  /* facility name */
        int code;          /* its code */
    } facilities[] = {
        { "kern", 0 }, { "user", 1 }, { "mail", 2 }, { "daemon", 3 },
        { "auth", 4 }, { "syslog", 5 }, { "lpr", 6 }, { "news", 7 },
        { "uucp", 8 }, { "cron", 9 }, { "authpriv", 10 }, { "ftp", 11 },
        { "local0", 16 }, { "local1", 17 }, { "local2", 18 },
        { "local3", 19 }, { "local4", 20 }, { "local5", 21 },
        { "local6", 22 }, { "local7", 23 },
    };
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof facilities / sizeof facilities[0]; i++)
        if (strcmp(name, facilities[i].name) == 0)
            return facilities[i].code;
    return -1;
}

void tp_log_set_sink_fn(tp_log_sink_fn fn, void *arg)
{
    pthread_mutex_lock(&lock);
    extra_sink.fn = fn;
    extra_sink.arg = arg;
    pthread_mutex_unlock(&lock);
}

void tp_log_get_counts(tp_log_counts_t *out)
{
    pthread_mutex_lock(&lock);
    *out = sink.counts;
    pthread_mutex_unlock(&lock);
}
