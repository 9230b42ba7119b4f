/*
 * avahi.h: Zeroconf (mDNS/DNS-SD) through avahi-daemon (module tp.avahi,
 * core/avahi.c), with Avahi's polling interface (AvahiPoll) implemented
 * on the loop: a uv_poll per watch, a uv_timer per timeout, no thread of
 * its own. Avahi's client library talks to the daemon over the D-Bus
 * system bus; its calls that publish are round trips to that local
 * daemon, made only when what is published changes.
 *
 * A publisher keeps what Lua last asked for (the name, the services, the
 * TXT strings) and publishes it whenever the daemon is there: at start,
 * when the daemon appears later, when it comes back after a restart. The
 * client is made with AVAHI_CLIENT_NO_FAIL, so a missing daemon is a state
 * (waiting), not an error; a client that fails all the same (the system
 * bus went away) is made again after a delay. A name taken by another
 * host takes Avahi's alternative name ("Name #2").
 *
 * The handles do not keep the loop alive. A stop (tp_avahi_close_all)
 * frees every client, which withdraws what it published.
 *
 * Lua API:
 *   avahi.publisher(fn) -> p | nil, err
 *     fn(event, detail) for: "waiting" (no daemon yet, or it went away),
 *     "running" (connected), "established" (published; detail = name),
 *     "collision" (detail = the new name), "failure" (detail = message;
 *     the client is made again after retry seconds), "error" (a service
 *     could not be added: detail = message).
 *   p:set(name, services, txt)  services = { { type =, port =,
 *     interface = index (-1 any), protocol = "inet" | "inet6" | nil } },
 *     txt = { "key=value", ... }. Only the TXT changed: updated in place;
 *     anything else: the services are published again.
 *   p:close()
 *   p.name (the name in use), p.state ("waiting", "running", ...)
 *   avahi.browse(types, fn) -> b | nil, err   (types = { "_tp._tcp", ... })
 *     fn("found", { name =, type =, domain =, host =, address =, port =,
 *        interface =, protocol =, txt = { key = value } }),
 *     fn("all_for_now", type), fn("failure", message)
 *   b:close()
 *   avahi.interface_of(address) -> index, protocol  (-1 and nil for a
 *     wildcard or an address of no interface; "lo" style loopback gives
 *     its index and loopback = true as a third value)
 */
#ifndef TP_AVAHI_H
#define TP_AVAHI_H

#include <lua.h>

int luaopen_tp_avahi(lua_State *L);

/* Frees every publisher and browser (at a stop). */
void tp_avahi_close_all(void);

#endif
