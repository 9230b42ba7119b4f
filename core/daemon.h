/*
 * daemon.h: running as a service: detaching from the terminal, the pid
 * file and the data directory lock, and systemd's readiness notification.
 *
 * Detaching: tp_daemon_detach() forks twice (new session in between). The
 * original process waits on a pipe and exits 0 when the daemon reports
 * tp_daemon_ready() (boot done: configuration read, locks taken, database
 * open, ports bound), or 1 when it reports tp_daemon_failed() or dies: so
 * start-up errors reach the terminal, with a non-zero exit, and systemd's
 * Type=forking sees the pid file written before the parent exits.
 *
 * Locks: a lock file is held with an fcntl record lock for the life of
 * the process and contains its pid. It is an open file description lock
 * where the kernel has them (Linux 3.15), which opening and closing the
 * same file elsewhere in the process cannot drop; else a classic POSIX
 * lock, and then the process must never open and close a locked file
 * again. A file left by a crashed process carries no lock and is taken
 * over. Others test the lock without taking it (F_GETLK); the holder's
 * pid comes from the lock when the kernel tells it, else from the file.
 */
#ifndef TP_DAEMON_H
#define TP_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Forks into the background. Returns 0 in the daemon; the original
 * process never returns (it exits as described above). Returns a negative
 * errno, with a message in err, when a fork or the pipe fails. Call before
 * creating the libuv loop and the thread pool. */
int tp_daemon_detach(char *err, size_t errlen);

/* In the daemon: leave the start folder (chdir "/"), point stdin, stdout
 * and stderr to /dev/null, and let the original process exit 0. No-op when
 * not detached. */
void tp_daemon_ready(void);

/* In the daemon: let the original process exit 1 (the error has been
 * printed on stderr, which is still the terminal). No-op when not
 * detached. */
void tp_daemon_failed(void);

/* Creates (or opens) path, locks it and writes the pid into it. With
 * remove_at_exit the file is deleted by tp_daemon_release_all().
 * Returns 0; -EAGAIN when another process holds it (*holder = its pid, or
 * 0 when unknown); another negative errno with a message in err. */
int tp_daemon_lock(const char *path, bool remove_at_exit, pid_t *holder,
                   char *err, size_t errlen);

typedef enum tp_daemon_state {
    TP_DAEMON_ABSENT = 0,   /* no such file (or empty) */
    TP_DAEMON_STALE = 1,    /* file without a live holder */
    TP_DAEMON_RUNNING = 2   /* locked by a live process */
} tp_daemon_state_t;

/* Looks at a lock file without taking the lock. *pid: the holder, or for
 * a stale file the pid written in it (0 if none). Returns the state, or a
 * negative errno when the file cannot be read. */
int tp_daemon_probe(const char *path, pid_t *pid);

/* Releases every lock taken by tp_daemon_lock, deleting the pid files.
 * Safe to call more than once. */
void tp_daemon_release_all(void);

/* Sends a state string ("READY=1", "RELOADING=1", "STOPPING=1", ...) to
 * systemd when $NOTIFY_SOCKET is set. Returns 0 (also when unset), or a
 * negative errno. */
int tp_daemon_notify(const char *state);

/* Exit status chosen by a command run by the boot script (--status ...). */
void tp_daemon_set_exit_status(int status);
int tp_daemon_exit_status(void);

#endif
