/*
 * spawn.h: running a program without waiting for it (module tp.spawn,
 * core/spawn.c), through libuv's process spawning: the program's stdin,
 * stdout and stderr are pipes on the loop, its exit status comes in
 * libuv's exit callback. Nothing waits: the input is written as the pipe
 * takes it, the output read as it comes, and a program that runs past its
 * timeout is killed (SIGKILL).
 *
 * The handles do not keep the loop alive by themselves. A stop
 * (tp_spawn_close_all) drops every callback; a program whose input was
 * all written is left to finish on its own (a mail handed to sendmail
 * is not lost), one still being fed is killed.
 *
 * Lua API:
 *   spawn.run({ file = path, args = { "arg1", ... }, input = string,
 *               timeout = 30, max_output = 65536 }, fn) -> id | nil, err
 *     file is run as it is (no shell, no PATH search when it has a '/'),
 *     with args as argv[1...]; input is written to its stdin, which is
 *     then closed. fn({ status = exit status | nil, signal = n | nil,
 *     stdout = string, stderr = string, truncated = true | nil,
 *     timed_out = true | nil, error = msg | nil }) is called once, on the
 *     loop, under protection, when the program has exited and its output
 *     ended. Output past max_output bytes (each of stdout, stderr) is
 *     read and dropped (truncated = true).
 *   spawn.kill(id) -> true | false (not running)
 *   spawn.pending() -> number of programs running
 */
#ifndef TP_SPAWN_H
#define TP_SPAWN_H

#include <lua.h>

int luaopen_tp_spawn(lua_State *L);

/* Drops every callback and closes the handles (at a stop). */
void tp_spawn_close_all(void);

#endif
