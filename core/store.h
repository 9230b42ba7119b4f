/*
 * store.h: the LevelDB binding for Lua, module "tp.store".
 *
 * Lua code opens databases with store.open() and reads and writes opaque
 * byte strings; see store.c for the full Lua API.  C code only needs the
 * opener (to preload the module) and, rarely, the raw LevelDB handle of a db
 * userdata that Lua passed it.
 */
#ifndef TP_STORE_H
#define TP_STORE_H

#include <leveldb/c.h>
#include <lua.h>

/* Pushes the module table (open, destroy, repair, batch); returns 1. */
int luaopen_tp_store(lua_State *L);

/*
 * The LevelDB handle of the db userdata at idx, or NULL if it is closed.
 * Raises if the value is not a tp.store db.  The handle belongs to the
 * userdata: do not close it, and do not keep it past a return to Lua (Lua
 * code may close or drop the db at any time).
 */
leveldb_t *tp_store_handle(lua_State *L, int idx);

#endif
