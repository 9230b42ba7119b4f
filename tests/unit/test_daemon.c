/*
 * test_daemon.c: lock files (core/daemon.c) between real processes, a
 * stale file left by a process that died, systemd notification over a
 * socket the test owns, and the latency histogram (core/stats.c).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "stats.h"
#include "tap.h"

static char dir[PATH_MAX];

static int read_int(const char *path)
{
    FILE *f = fopen(path, "r");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* Runs fn in a child process; returns its exit status (or -1). */
static int in_child(int (*fn)(const char *), const char *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(arg));
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* In a child: the parent holds path. Bit 0: probe says running with the
 * parent's pid; bit 1: locking fails with EAGAIN naming the parent. */
static int child_sees_parent(const char *path)
{
    int result = 0;
    pid_t pid = 0;
    if (tp_daemon_probe(path, &pid) == TP_DAEMON_RUNNING &&
        pid == getppid())
        result |= 1;
    char err[256];
    pid_t holder = 0;
    if (tp_daemon_lock(path, true, &holder, err, sizeof err) == -EAGAIN &&
        holder == getppid() && strstr(err, path))
        result |= 2;
    return result;
}

/* In a child: take the lock and die without releasing it. */
static int child_locks_and_dies(const char *path)
{
    char err[256];
    pid_t holder;
    return tp_daemon_lock(path, true, &holder, err, sizeof err) == 0 ? 0 : 1;
}

static void test_locks(void)
{
    char path[PATH_MAX + 16], err[256] = "";
    snprintf(path, sizeof path, "%s/t.pid", dir);
    pid_t pid = 0, holder = 0;
    TAP_IS_INT(tp_daemon_probe(path, &pid), TP_DAEMON_ABSENT,
               "no file: absent");
    TAP_IS_INT(tp_daemon_lock(path, true, &holder, err, sizeof err), 0,
               "lock taken");
    TAP_IS_INT(read_int(path), getpid(), "the file holds our pid");
    TAP_IS_INT(in_child(child_sees_parent, path), 3,
               "another process sees it running under our pid and cannot "
               "take it");
    tp_daemon_release_all();
    TAP_OK(access(path, F_OK) != 0, "released: the pid file is deleted");

    /* A holder that dies leaves a stale file, which is taken over. */
    TAP_IS_INT(in_child(child_locks_and_dies, path), 0, "child locked");
    int child_pid = read_int(path);
    TAP_OK(child_pid > 0 && child_pid != getpid(), "the file names the "
           "child");
    TAP_IS_INT(tp_daemon_probe(path, &pid), TP_DAEMON_STALE,
               "its holder is gone: stale");
    TAP_IS_INT(pid, child_pid, "... naming the dead pid");
    TAP_IS_INT(tp_daemon_lock(path, false, &holder, err, sizeof err), 0,
               "a stale file is taken over");
    TAP_IS_INT(read_int(path), getpid(), "... and now holds our pid");
    tp_daemon_release_all();
    TAP_OK(access(path, F_OK) == 0, "a lock file (not a pid file) stays");
    unlink(path);

    char bad[PATH_MAX + 32];
    snprintf(bad, sizeof bad, "%s/none/x.pid", dir);
    int rc = tp_daemon_lock(bad, true, &holder, err, sizeof err);
    TAP_OK(rc == -ENOENT && strstr(err, bad), "an impossible path is an "
           "error naming it: %s", err);
}

static void test_notify(void)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/notify.sock", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, strlen(path) < sizeof sa.sun_path ?
           strlen(path) : sizeof sa.sun_path - 1);
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    unsetenv("NOTIFY_SOCKET");
    TAP_IS_INT(tp_daemon_notify("READY=1"), 0, "no NOTIFY_SOCKET: no-op");
    setenv("NOTIFY_SOCKET", path, 1);
    TAP_IS_INT(tp_daemon_notify("READY=1"), 0, "notify sent");
    char buf[64] = "";
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    TAP_IS_STR(buf, "READY=1", "the socket got READY=1");
    close(fd);
    unlink(path);

    /* The abstract namespace ("@name"). */
    char name[64];
    snprintf(name, sizeof name, "@tp-unit-%d", (int)getpid());
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path + 1, name + 1, strlen(name) - 1);
    bind(fd, (struct sockaddr *)&sa,
         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name)));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setenv("NOTIFY_SOCKET", name, 1);
    TAP_IS_INT(tp_daemon_notify("STOPPING=1"), 0, "abstract notify sent");
    n = recv(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    TAP_IS_STR(buf, "STOPPING=1", "the abstract socket got STOPPING=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void test_histogram(void)
{
    tp_histogram_t h;
    memset(&h, 0, sizeof h);
    tp_histogram_observe(&h, 0.00005);   /* first bucket */
    tp_histogram_observe(&h, 0.0001);    /* on the bound: still first */
    tp_histogram_observe(&h, 0.003);     /* le 0.005 */
    tp_histogram_observe(&h, 99);        /* +Inf */
    tp_histogram_observe(&h, -1);        /* counts as 0 */
    TAP_IS_INT(h.count, 5, "five observations");
    TAP_IS_INT(h.counts[0], 3, "three in the first bucket");
    TAP_IS_INT(h.counts[5], 1, "one in le=0.005");
    TAP_IS_INT(h.counts[TP_STATS_BUCKETS], 1, "one over every bound");
    TAP_OK(h.sum > 99.003 && h.sum < 99.0032, "sum %f", h.sum);
    uint64_t before = tp_stats.frames_in[TP_STATS_TYPES];
    tp_stats_frame_in(5000);
    tp_stats_frame_in(27);
    TAP_OK(tp_stats.frames_in[TP_STATS_TYPES] == before + 1 &&
           tp_stats.frames_in[27] >= 1, "frame types past the table share "
           "the last slot");
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/tp-daemon-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_locks();
    test_notify();
    test_histogram();
    rmdir(dir);
    return tap_done();
}
