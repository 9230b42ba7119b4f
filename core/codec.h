/*
 * codec.h: the TP frame codec, driven by layout tables.
 *
 * Every frame body is described once, as a layout string written from the
 * protocol specification (see lua/tp/proto.lua), and compiled here into a
 * small array of operations. One walker decodes a body into a Lua table and
 * encodes a Lua table into a body by those operations; no frame has its own
 * pack or unpack code.
 *
 * Layout language (items separated by white space):
 *   I:name  u32            i:name  i32          j:name  semisigned u32
 *   Q:name  u64            q:name  i64          J:name  semisigned u64
 *   S:name  string (u32 length + bytes; padded to 4 with the padding filter)
 *   xN      N zero bytes (written as zeros, skipped when read)
 *   [ ... ]:name   u32-counted list; "[I]:ids" is a list of plain values,
 *                  "[I:id Q:modtime]:modtimes" a list of tables
 *   { ... }:name   nested group (a table), nothing on the wire in front
 *   *:name         the rest of the body as raw bytes (a "useparameters" part,
 *                  coded separately with a layout of its own); last item only
 *   ?              the items after it may be absent: decoding stops quietly
 *                  when the body ends exactly here, and encoding stops here
 *                  when the table has no value for the next item.
 *                  Inside a list or group an absent tail cannot be told
 *                  from the next item's bytes: use it there only when
 *                  nothing follows (order parameters at a frame's end)
 * Semisigned values travel as unsigned, all ones standing for -1.
 *
 * Frame registry: layouts registered per (set, version, type) so the network
 * core can decode requests and encode replies without asking Lua.
 */
#ifndef TP_CODEC_H
#define TP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "buf.h"

/* Protocol sets: the player protocol and the administration protocol. */
enum { TP_SET_PLAYER = 0, TP_SET_ADMIN = 1, TP_SET_COUNT = 2 };

/* Protocol versions a registry knows. */
enum { TP_VERSION_3 = 3, TP_VERSION_4 = 4 };

typedef struct tp_layout tp_layout_t;

/* Compiles a layout string. Returns NULL and writes a message naming the
 * offending position into err on a syntax error. Free with tp_layout_free. */
tp_layout_t *tp_layout_compile(const char *src, char *err, size_t errlen);
void tp_layout_free(tp_layout_t *lay);

/* Decodes body[0..n) by lay into a new table pushed on L. Returns 0 and
 * sets *used to the bytes consumed (trailing bytes are left to the caller),
 * or -1 with a message in err and nothing pushed. Raises only on memory
 * errors. */
int tp_codec_decode(lua_State *L, const tp_layout_t *lay, const uint8_t *body,
                    size_t n, bool pad, size_t *used, char *err,
                    size_t errlen);

/* Appends the encoding of the table at idx to out. Raises a Lua error naming
 * the field on a missing or out-of-range value, and the string
 * "tp.codec: too big" when out's cap would be passed. */
void tp_codec_encode(lua_State *L, int idx, const tp_layout_t *lay,
                     tp_buf_t *out, bool pad);

/* One registered frame type. */
typedef struct tp_frame_def {
    uint32_t type;             /* frame type number */
    const char *name;          /* e.g. "GetObjectIDs"; owned by the registry */
    const tp_layout_t *layout; /* body layout; owned by the registry */
} tp_frame_def_t;

/* Looks up a registered frame; NULL when (set, version, type) is unknown.
 * The registry lives in L's registry table. */
const tp_frame_def_t *tp_codec_lookup(lua_State *L, int set, int version,
                                      uint32_t type);

/* Opens the "tp.codec" Lua module:
 *   codec.compile(src)                    -> layout   (raises on bad syntax)
 *   codec.encode(layout, t [, pad])       -> string   (raises on bad value)
 *   codec.decode(layout, s [, pad [, offset]]) -> t, next_offset | nil, err
 *   codec.register(set, version, type, name, layout_or_src)
 *   codec.lookup(set, version, type)      -> name, layout | nil
 * set is "player" or "admin"; version 3 or 4. */
int luaopen_tp_codec(lua_State *L);

#endif
