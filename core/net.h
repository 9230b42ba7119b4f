/*
 * net.h: the network side in one include: the server and its listeners
 * (listener.h), connections and their transports (conn.h), TP framing
 * (frame.h). See docs/core.md for the map of core/.
 */
#ifndef TP_NET_H
#define TP_NET_H

#include "conn.h"
#include "frame.h"
#include "listener.h"

typedef struct tp_lua tp_lua_t;

#endif
