/*
 * test_log.c: the logger (core/log.c): levels, line format, the file sink
 * and its reopen after a move, the syslog sink over a datagram socket the
 * test owns, and the counters.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

static char dir[PATH_MAX];

static char *slurp(const char *path)
{
    static char buf[16384];
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; text && *text; text++)
        n += *text == '\n';
    return n;
}

static void test_levels(void)
{
    TAP_IS_INT(tp_log_level_parse("warn"), TP_LOG_WARNING, "warn parses");
    TAP_IS_INT(tp_log_level_parse("trace"), TP_LOG_TRACE, "trace parses");
    TAP_IS_INT(tp_log_level_parse("loud"), -1, "a bad level is -1");
    tp_log_set_level(TP_LOG_INFO);
    TAP_OK(tp_log_enabled(TP_LOG_INFO, "net") &&
           !tp_log_enabled(TP_LOG_DEBUG, "net"), "default level info");
    TAP_OK(tp_log_set_module_level("net", TP_LOG_DEBUG), "module level set");
    TAP_OK(tp_log_enabled(TP_LOG_DEBUG, "net") &&
           !tp_log_enabled(TP_LOG_DEBUG, "turn"),
           "net at debug, turn still at info");
    TAP_OK(tp_log_set_module_level("turn", TP_LOG_ERROR) &&
           !tp_log_enabled(TP_LOG_WARNING, "turn") &&
           tp_log_enabled(TP_LOG_WARNING, "game"),
           "a module may be quieter than the default");
    tp_log_clear_module_levels();
    TAP_OK(!tp_log_enabled(TP_LOG_DEBUG, "net") &&
           tp_log_enabled(TP_LOG_WARNING, "turn"),
           "clearing the module levels returns them to the default");
    TAP_IS_INT(tp_log_facility_parse("local3"), 19, "facility local3");
    TAP_IS_INT(tp_log_facility_parse("daemon"), 3, "facility daemon");
    TAP_IS_INT(tp_log_facility_parse("nope"), -1, "bad facility");
}

static void test_file(void)
{
    char path[PATH_MAX + 16], moved[PATH_MAX + 32], err[512] = "";
    snprintf(path, sizeof path, "%s/a.log", dir);
    snprintf(moved, sizeof moved, "%s/a.log.1", dir);
    tp_log_sinks_t s = { .to_stderr = false, .file = path };
    TAP_IS_INT(tp_log_configure(&s, err, sizeof err), 0, "file sink on");
    tp_log_counts_t before, after;
    tp_log_get_counts(&before);
    tp_log_info("net", "conn=%d peer=%s accepted", 7, "1.2.3.4:5");
    tp_log_debug("net", "not shown");
    tp_log_warn("lua", "line one\nline two\x01!");
    tp_log_get_counts(&after);
    char *text = slurp(path);
    TAP_IS_INT(count_lines(text), 2, "two lines in the file (debug "
               "filtered out)");
    /* 2024-01-02T03:04:05.678Z info    net: ... */
    int y, mo, d, h, mi, sec, ms;
    char level[16], module[16];
    int fields = text ? sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %15s "
                               "%15s", &y, &mo, &d, &h, &mi, &sec, &ms,
                               level, module) : 0;
    TAP_IS_INT(fields, 9, "line starts with an ISO UTC time, level, module");
    TAP_IS_STR(level, "info", "level field");
    TAP_IS_STR(module, "net:", "module field");
    TAP_OK(text && strstr(text, "net: conn=7 peer=1.2.3.4:5 accepted\n"),
           "message with its key=value fields");
    TAP_OK(text && strstr(text, "warning lua: line one\tline two?!\n"),
           "newlines fold into tabs, control characters into '?'");
    TAP_IS_INT(after.lines[TP_LOG_INFO] - before.lines[TP_LOG_INFO], 1,
               "info lines counted");
    TAP_IS_INT(after.lines[TP_LOG_DEBUG] - before.lines[TP_LOG_DEBUG], 0,
               "filtered lines not counted");

    /* logrotate: move the file, reopen, write. */
    TAP_IS_INT(rename(path, moved), 0, "file moved away");
    tp_log_info("main", "after the move, before the reopen");
    TAP_IS_INT(tp_log_reopen(err, sizeof err), 0, "reopen");
    tp_log_info("main", "after the reopen");
    text = slurp(path);
    TAP_OK(text && count_lines(text) == 1 && strstr(text, "after the reopen"),
           "the new file has the new line only");
    text = slurp(moved);
    TAP_OK(text && count_lines(text) == 3 &&
           strstr(text, "before the reopen"),
           "the moved file got the lines until the reopen");

    /* A file that cannot be opened leaves the sinks as they were. */
    char bad[PATH_MAX + 32];
    snprintf(bad, sizeof bad, "%s/no/such/dir.log", dir);
    tp_log_sinks_t s2 = { .to_stderr = false, .file = bad };
    int rc = tp_log_configure(&s2, err, sizeof err);
    TAP_OK(rc == -ENOENT && strstr(err, bad) &&
           strstr(err, "cannot open log file"),
           "an unopenable file is an error naming it: %s", err);
    tp_log_info("main", "still here");
    text = slurp(path);
    TAP_OK(text && strstr(text, "still here"), "... and the old file is "
           "still in use");
    unlink(moved);
}

static void test_syslog(void)
{
    char sock_path[PATH_MAX + 16], err[512] = "";
    snprintf(sock_path, sizeof sock_path, "%s/log.sock", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, sock_path, strlen(sock_path) < sizeof sa.sun_path ?
           strlen(sock_path) : sizeof sa.sun_path - 1);
    TAP_IS_INT(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0,
               "test syslog socket bound");
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    tp_log_sinks_t s = { .to_stderr = false, .to_syslog = true,
                         .syslog_facility = 19, .syslog_ident = "unit",
                         .syslog_socket = sock_path };
    TAP_IS_INT(tp_log_configure(&s, err, sizeof err), 0, "syslog sink on");
    tp_log_warn("turn", "turn=%d slow", 3);
    tp_log_error("db", "broken");
    char buf[1024];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    char want[128];
    snprintf(want, sizeof want, " unit[%d]: warning turn: turn=3 slow",
             (int)getpid());
    TAP_OK(n > 0 && strncmp(buf, "<156>", 5) == 0 && strstr(buf, want) &&
           buf[n - 1] == 'w', "local3.warning message: %s", buf);
    /* RFC 3164 time: "Mmm dd hh:mm:ss" after the priority. */
    TAP_OK(n > 20 && buf[8] == ' ' && buf[11] == ' ' && buf[14] == ':' &&
           buf[17] == ':', "RFC 3164 time stamp");
    n = recv(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    TAP_OK(n > 0 && strncmp(buf, "<155>", 5) == 0 &&
           strstr(buf, "error   db: broken"), "local3.err message: %s", buf);

    /* syslogd going away: messages are dropped and counted, never block. */
    close(fd);
    unlink(sock_path);
    tp_log_counts_t before, after;
    tp_log_get_counts(&before);
    tp_log_info("main", "nobody listens");
    tp_log_get_counts(&after);
    TAP_IS_INT(after.syslog_dropped - before.syslog_dropped, 1,
               "a message syslog cannot take is dropped and counted");

    /* It comes back (a reopen reconnects at once). */
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    tp_log_reopen(err, sizeof err);
    tp_log_info("main", "back");
    n = recv(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    TAP_OK(n > 0 && strstr(buf, "info    main: back"),
           "after syslogd is back, messages arrive again");
    close(fd);
    unlink(sock_path);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/tp-log-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_levels();
    test_file();
    test_syslog();
    tp_log_close();
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/a.log", dir);
    unlink(path);
    rmdir(dir);
    return tap_done();
}
