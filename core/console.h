/*
 * console.h: the admin console, both ends.
 *
 * Server side (console.c): a Unix domain socket (mode 0600) that accepts
 * console sessions, the framing of their messages, and running console
 * code so that Ctrl-C or a time slice can stop it. Everything else (what
 * a message means, evaluation, printing, help) is Lua: admin/console.lua,
 * over the tp.console module opened here.
 *
 * Client side (console_client.c): "tpserver console" and "tpserver
 * backup", which connect to that socket.
 *
 * The console protocol: every message, both ways, is
 *     u8 type, u32 length (big-endian), length bytes of payload.
 * Client to server:
 *     'e' eval     a chunk typed at the prompt (or given with -e)
 *     's' script   a whole script (stdin)
 *     'i' interrupt   stop the command that runs (Ctrl-C); no payload
 *     'c' complete    the text before the cursor; answered by 'c'
 * Server to client:
 *     'h' hello    a banner, once, right after connecting
 *     'o' output   text printed by the command while it runs
 *     'r' result   the command ended; its results, pretty-printed
 *     'x' error    the command failed (or was interrupted); the message
 *     'c' candidates  completions, one per line
 * A client sends one 'e' or 's' and waits for its 'r' or 'x' (only 'i'
 * may be sent meanwhile). Lengths are checked against the caps below
 * before anything is buffered.
 */
#ifndef TP_CONSOLE_H
#define TP_CONSOLE_H

#include <stdatomic.h>

#include <lua.h>

/* What stops a console command besides a console session's Ctrl-C: a
 * flag set from any thread (the SSH console's, core/ssh.c). console.run
 * takes a pointer to one as a light userdata in place of a session. */
typedef struct tp_interrupt {
    atomic_int pending;        /* Ctrl-C arrived */
    atomic_int gone;           /* the peer went away */
} tp_interrupt_t;

#define TP_CONSOLE_HEADER 5
/* Largest message a client may send (a script), and the largest one the
 * client accepts from the server. */
#define TP_CONSOLE_MAX_IN (16u << 20)
#define TP_CONSOLE_MAX_OUT (64u << 20)

enum {
    TP_CONSOLE_EVAL = 'e',
    TP_CONSOLE_SCRIPT = 's',
    TP_CONSOLE_INTERRUPT = 'i',
    TP_CONSOLE_COMPLETE = 'c',
    TP_CONSOLE_HELLO = 'h',
    TP_CONSOLE_OUTPUT = 'o',
    TP_CONSOLE_RESULT = 'r',
    TP_CONSOLE_ERROR = 'x',
    TP_CONSOLE_CANDIDATES = 'c'
};

/* Opens the tp.console module (server side):
 *   console.listen(path, handlers) -> listener | nil, err
 *       handlers = { open = fn(session), message = fn(session, type,
 *       payload), close = fn(session) }; a live socket at path is an
 *       error, a stale one is replaced. listener:close(), listener.path.
 *   session:send(type, text) -> true | false, why
 *   session:close(); session.id, .uid, .gid, .pid, .user, .closed
 *   console.run(session, co, slice_seconds, ...) -> status, ...
 *       resumes coroutine co under a count hook that stops it on Ctrl-C
 *       from session (a console session, or a light userdata pointing at
 *       a tp_interrupt_t; when session is nil, on nothing but time) and
 *       after slice_seconds (0: no limit). status is "ok" (co returned),
 *       "yield" (co yielded), "error" (co raised) or "interrupted" (the
 *       hook stopped co, which must not be resumed), followed by the
 *       values or the reason.
 *   console.unhooked(fn, ...) -> fn's results: runs fn with no hook, its
 *       time not counted against the slice (long work on purpose).
 *   console.set_slice(seconds): the slice of the run in progress.
 *   console.log_hook(fn | nil): fn(lines) is called on the loop with the
 *       log lines written since the last call, each { time, level,
 *       module, text }; lines logged meanwhile are not passed again. */
int luaopen_tp_console(lua_State *L);

/* "tpserver console ..." and "tpserver backup DIR ...": argv[0] is the
 * command word. home is the folder holding lua/ and admin/. Returns the
 * exit status. */
int tp_console_client_main(int argc, char **argv, const char *home);

#endif
