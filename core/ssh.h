/*
 * ssh.h: the admin console over SSH (module tp.ssh, core/ssh.c), on
 * libssh's server API.
 *
 * The listening socket is libuv's, on the loop. Each accepted connection
 * gets a thread of its own that runs libssh for it (key exchange,
 * authentication, the one session channel), so that a slow, stuck or
 * hostile SSH client can never hold up the loop: the thread blocks, the
 * loop does not. The thread never touches Lua, the logger or the game: it
 * passes events (an authentication to decide, a pty, a shell or exec
 * request, input, a window size, end of input, the end of the
 * connection) to the loop through a queue and one uv_async, and the loop
 * hands them to Lua (admin/ssh.lua). What Lua writes goes back through
 * the session's output buffer and a pipe that wakes the thread.
 *
 * Ctrl-C is the one thing the thread acts on by itself: while Lua has
 * marked the session busy (a console command runs) a 0x03 byte on a pty
 * sets the session's interrupt flag (console.h's tp_interrupt_t), which
 * console.run's hook reads while the command holds the loop, and is also
 * posted as an "interrupt" event for a command that is waiting.
 *
 * Lua API:
 *   ssh.listen{ host =, port =, host_key = path, passwords = bool,
 *               max_sessions = n, login_timeout = seconds,
 *               handlers = { auth, pty, resize, shell, exec, data, eof,
 *                            interrupt, close } } -> listener | nil, err
 *     auth(s, { method = "publickey" | "password" | "none", user =,
 *               key_type =, key =, fingerprint =, probe = bool,
 *               password = }) -> true | false | nil (answer later with
 *               s:answer), and an optional delay in seconds;
 *     pty(s, term, cols, rows), resize(s, cols, rows), shell(s),
 *     exec(s, command), data(s, bytes), eof(s), interrupt(s),
 *     close(s, why).
 *   listener:close(); listener.port, listener.host
 *   s:write(bytes [, "stderr"]) -> true | false, why  (bounded backlog;
 *       on stderr only without a pty, where it is a stream of its own)
 *   s:exit(status)   exit status, end of output, channel closed
 *   s:close(why)     drops the connection
 *   s:answer(ok [, delay])   answers a pending auth
 *   s:busy(flag)     Ctrl-C is an interrupt while set
 *   s:interrupt()    light userdata for console.run
 *   s.id, s.peer, s.user, s.fingerprint, s.closed
 *   ssh.host_key(path) -> fingerprint, made (true when the Ed25519 key
 *       was made now, mode 0600) | nil, err
 *   ssh.fingerprint(path) -> "SHA256:..." | nil, err (of a key file)
 *   ssh.parse_key(type, base64) -> fingerprint | nil, err
 */
#ifndef TP_SSH_H
#define TP_SSH_H

#include <lua.h>

int luaopen_tp_ssh(lua_State *L);

#endif
