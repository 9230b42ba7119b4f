/*
 * daemon.c: detaching, lock files and systemd notification (see daemon.h).
 *
 * State: the write end of the start-up pipe while the daemon has not
 * reported (ready_fd), and the lock files this process holds.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* The pid file and the data directory lock (service.lua), and room. */
#define MAX_LOCKS 4

static int ready_fd = -1;
static int exit_status;

static struct {
    char path[PATH_MAX];    /* where the file is */
    int fd;                 /* open descriptor holding the lock */
    dev_t dev;              /* the locked file, to recognise it */
    ino_t ino;
    bool remove;            /* delete at release (pid files) */
} locks[MAX_LOCKS];
static int num_locks;

/* ------------------------------------------------------------ detaching */

/* The original process: waits for the daemon's word, then exits. */
static void wait_for_daemon(int fd, pid_t child)
{
    char c = 0;
    ssize_t n;
    do {
        n = read(fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    /* Reaped: the first child exits right after the second fork. */
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    /* No byte (n == 0) means the daemon closed the pipe by dying. _exit,
     * not exit: atexit handlers and stdio buffers are the daemon's now. */
    if (n == 1 && c == 'R')
        _exit(0);
    if (n != 1)
        fprintf(stderr, "tpserver: the server died while starting\n");
    _exit(1);
}

int tp_daemon_detach(char *err, size_t errlen)
{
    int fds[2];
    /* Close-on-exec: a program the daemon runs must not hold the pipe open
     * and keep the terminal waiting. */
    if (pipe2(fds, O_CLOEXEC) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot create a pipe: %s", strerror(e));
        return -e;
    }
    /* Flushed before the fork, or both processes would write the buffers. */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot fork: %s", strerror(e));
        close(fds[0]);
        close(fds[1]);
        return -e;
    }
    if (pid > 0) {
        close(fds[1]);
        wait_for_daemon(fds[0], pid);
    }
    /* The first child: a new session without a terminal, then a second
     * fork so the daemon is not a session leader and can never acquire a
     * controlling terminal again. */
    close(fds[0]);
    /* On failure the pipe closes with us: the parent reports a failed
     * start. */
    if (setsid() < 0)
        _exit(1);
    pid = fork();
    if (pid < 0)
        _exit(1);
    if (pid > 0)
        _exit(0);
    ready_fd = fds[1];
    return 0;
}

static void report(char c)
{
    if (ready_fd < 0)
        return;
    ssize_t n;
    do {
        n = write(ready_fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    close(ready_fd);
    ready_fd = -1;
}

void tp_daemon_ready(void)
{
    if (ready_fd < 0)
        return;
    if (chdir("/") != 0) {
        /* Cannot happen in practice; staying put is harmless. */
    }
    fflush(stdout);
    fflush(stderr);
    /* 0-2 stay open, on /dev/null: closed, a later open() could get one and
     * receive whatever is still written to stdout or stderr. */
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        /* Unless open itself returned one of 0-2 (it was closed): keep it. */
        if (null > STDERR_FILENO)
            close(null);
    }
    /* Last: the terminal's process exits on it, and no more of our output
     * may reach that terminal after its prompt is back. */
    report('R');
}

void tp_daemon_failed(void)
{
    /* The message must be on the terminal before the parent exits 1. */
    fflush(stderr);
    report('F');
}

/* ------------------------------------------------------------ locks */

static void lock_whole(struct flock *fl, short type)
{
    memset(fl, 0, sizeof *fl);
    fl->l_type = type;
    fl->l_whence = SEEK_SET;
    fl->l_start = 0;
    fl->l_len = 0;
}

/* Takes a write lock without waiting: an open file description lock
 * where the kernel has them (see daemon.h), else a classic one. */
static int set_lock(int fd, struct flock *fl)
{
#ifdef F_OFD_SETLK
    if (fcntl(fd, F_OFD_SETLK, fl) == 0)
        return 0;
    /* EINVAL: a kernel without OFD locks (before Linux 3.15). */
    if (errno != EINVAL)
        return -1;
#endif
    return fcntl(fd, F_SETLK, fl);
}

/* Reads the decimal pid at the start of fd's file; 0 if none. */
static pid_t read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    if (end == buf || v <= 0 || v > INT_MAX)
        return 0;
    return (pid_t)v;
}

int tp_daemon_lock(const char *path, bool remove_at_exit, pid_t *holder,
                   char *err, size_t errlen)
{
    *holder = 0;
    if (num_locks == MAX_LOCKS || strlen(path) >= sizeof locks[0].path) {
        snprintf(err, errlen, "cannot lock %s: too many locks or name too "
                 "long", path);
        return -ENOMEM;
    }
    /* A process that ends between our open and our lock may delete the
     * file it held: the lock would then be on a file no one can see, so
     * check that the path still names the locked file, and retry. */
    for (int attempt = 0; attempt < 10; attempt++) {
        /* 0644, cut to 0600 by the server's umask (main.c): the data
         * directory is the server user's alone. */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
            return -e;
        }
        struct flock fl;
        lock_whole(&fl, F_WRLCK);
        if (set_lock(fd, &fl) != 0) {
            int e = errno;
            if (e == EACCES || e == EAGAIN) {
                /* An OFD lock has no owner: F_GETLK reports l_pid -1,
                 * and the pid then comes from the file. */
                struct flock q;
                lock_whole(&q, F_WRLCK);
                if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK &&
                    q.l_pid > 0)
                    *holder = q.l_pid;
                else
                    *holder = read_pid(fd);
                close(fd);
                snprintf(err, errlen, "%s is locked by process %d", path,
                         (int)*holder);
                return -EAGAIN;
            }
            close(fd);
            snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
            return -e;
        }
        struct stat held, named;
        if (fstat(fd, &held) != 0 || stat(path, &named) != 0 ||
            held.st_dev != named.st_dev || held.st_ino != named.st_ino) {
            close(fd);
            continue;
        }
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
        /* Truncated first: a shorter pid leaves no digits of the old one. */
        if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
            int e = errno;
            close(fd);
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
            return -e;
        }
        snprintf(locks[num_locks].path, sizeof locks[0].path, "%s", path);
        locks[num_locks].fd = fd;
        locks[num_locks].dev = held.st_dev;
        locks[num_locks].ino = held.st_ino;
        locks[num_locks].remove = remove_at_exit;
        num_locks++;
        return 0;
    }
    snprintf(err, errlen, "cannot lock %s: it keeps being replaced", path);
    return -EAGAIN;
}

int tp_daemon_probe(const char *path, pid_t *pid)
{
    *pid = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? TP_DAEMON_ABSENT : -errno;
    struct flock q;
    lock_whole(&q, F_WRLCK);
    int state;
    if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK) {
        *pid = q.l_pid > 0 ? q.l_pid : read_pid(fd);
        state = TP_DAEMON_RUNNING;
    } else {
        *pid = read_pid(fd);
        struct stat st;
        state = fstat(fd, &st) == 0 && st.st_size == 0 ? TP_DAEMON_ABSENT
                                                       : TP_DAEMON_STALE;
    }
    close(fd);
    return state;
}

void tp_daemon_release_all(void)
{
    for (int i = 0; i < num_locks; i++) {
        struct stat st;
        /* Delete only the file we hold (an admin may have replaced it). */
        if (locks[i].remove && stat(locks[i].path, &st) == 0 &&
            st.st_dev == locks[i].dev && st.st_ino == locks[i].ino)
            unlink(locks[i].path);
        close(locks[i].fd);
    }
    num_locks = 0;
}

/* ------------------------------------------------------------ systemd */

int tp_daemon_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(path);
    /* systemd gives a path, or '@' for the abstract namespace. */
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path)
        return -EINVAL;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';     /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Exactly len bytes: an abstract name's trailing NULs would be part of
     * the name. */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
                                  len);
    int rc = 0;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
               (struct sockaddr *)&sa, salen) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

void tp_daemon_set_exit_status(int status)
{
    exit_status = status;
}

int tp_daemon_exit_status(void)
{
    return exit_status;
}
