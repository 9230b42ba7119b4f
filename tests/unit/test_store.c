/*
 * test_store.c: unit tests for core/store.c, the LevelDB binding.
 *
 * The tests are Lua chunks run against tp.store in a fresh LuaJIT state.
 * They report through ok(cond, name) and diag(msg), which map onto tap.h;
 * handle_of(db) exposes tp_store_handle() to them.  Every database lives
 * under a fresh mkdtemp() directory, removed at the end.  The last chunk
 * leaves a db, an iterator and a snapshot alive so lua_close() has to
 * finalize them in whatever order it picks (run under ASan for leaks).
 */
#include "store.h"
#include "tap.h"

#include <ftw.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <sys/stat.h>

/* ok(cond, name) -> cond as a boolean */
static int l_ok(lua_State *L)
{
    int pass = lua_toboolean(L, 1);
    const char *name = luaL_optstring(L, 2, "(unnamed)");
    TAP_OK(pass, "%s", name);
    lua_pushboolean(L, pass);
    return 1;
}

/* diag(msg): a TAP comment line */
static int l_diag(lua_State *L)
{
    printf("# %s\n", luaL_checkstring(L, 1));
    fflush(stdout);
    return 0;
}

/* handle_of(db) -> whether tp_store_handle() gives a handle */
static int l_handle_of(lua_State *L)
{
    lua_pushboolean(L, tp_store_handle(L, 1) != NULL);
    return 1;
}

static const char prelude[] =
    "store = require 'tp.store'\n"
    "function is(got, want, name)\n"
    "    local pass = ok(got == want, name)\n"
    "    if not pass then\n"
    "        diag(('got %s, want %s'):format(show(got), show(want)))\n"
    "    end\n"
    "    return pass\n"
    "end\n"
    "function show(v)\n"
    "    if type(v) ~= 'string' then return tostring(v) end\n"
    "    return '\"' .. v:gsub('[^%w/_.,=-]', function(c)\n"
    "        return ('\\\\%d'):format(c:byte())\n"
    "    end) .. '\"'\n"
    "end\n"
    /* raises(text, name, f, ...): f(...) raises an error containing text */
    "function raises(text, name, f, ...)\n"
    "    local st, err = pcall(f, ...)\n"
    "    local pass = ok(not st and tostring(err):find(text, 1, true), name)\n"
    "    if not pass then\n"
    "        diag(st and 'no error raised' or 'error: ' .. tostring(err))\n"
    "    end\n"
    "end\n"
    /* keys(it): the keys an iterator yields, shown and comma-separated */
    "function keys(it)\n"
    "    local t = {}\n"
    "    for k in it do t[#t + 1] = show(k):sub(2, -2) end\n"
    "    return table.concat(t, ',')\n"
    "end\n";

static const char t_basic[] =
    "local p = TMP .. '/basic'\n"
    "local db, err = store.open(p)\n"
    "if not ok(db, 'open creates a new store') then return diag(err) end\n"
    "is(db:get('missing'), nil, 'get of an absent key is nil')\n"
    "is(select('#', db:get('missing')), 1, '... and only nil')\n"
    "is(db:put('hello', 'world'), true, 'put returns true')\n"
    "is(db:get('hello'), 'world', 'get returns the value')\n"
    "local bin = 'a\\0b\\0\\255c\\0'\n"
    "is(db:put('k\\0ey', bin), true, 'put of binary key and value')\n"
    "is(db:get('k\\0ey'), bin, 'binary value with NULs round-trips')\n"
    "is(db:get('k'), nil, 'key cut at its NUL is another key')\n"
    "is(db:put('empty', ''), true, 'put of an empty value')\n"
    "is(db:get('empty'), '', 'empty value reads back as empty, not nil')\n"
    "is(db:put('', 'empty key'), true, 'put of an empty key')\n"
    "is(db:get(''), 'empty key', 'empty key reads back')\n"
    "is(db:put('synced', 'x', true), true, 'put with sync = true')\n"
    "is(db:delete('hello'), true, 'delete returns true')\n"
    "is(db:get('hello'), nil, 'deleted key is gone')\n"
    "is(db:delete('never-there', false), true, 'delete of absent key')\n"
    "local big = ('0123456789'):rep(100000)\n"
    "db:put('big', big)\n"
    "is(db:get('big'), big, 'a 1 MB value round-trips')\n"
    "db:put('hello', 'again')\n"
    "db:close()\n"
    "ok(pcall(db.close, db), 'close is idempotent')\n"
    "local db2, err2 = store.open(p, {create_if_missing = false})\n"
    "if not ok(db2, 'reopen') then return diag(err2) end\n"
    "is(db2:get('hello'), 'again', 'value survives close and reopen')\n"
    "is(db2:get('k\\0ey'), bin, 'binary value survives reopen')\n"
    "is(db2:get('big'), big, 'big value survives reopen')\n"
    "is(db2:get('synced'), 'x', 'synced value survives reopen')\n"
    "db2:close()\n";

static const char t_open[] =
    "local p = TMP .. '/open'\n"
    "local db, err = store.open(p, {cache_size = 0, block_size = 1024,\n"
    "    write_buffer_size = 65536, max_open_files = 100,\n"
    "    compression = 'none', sync = true, paranoid_checks = true,\n"
    "    create_if_missing = true, error_if_exists = false})\n"
    "if not ok(db, 'open with every option') then return diag(err) end\n"
    "is(db:put('a', '1'), true, 'put with sync as the default')\n"
    "is(db:put('b', '2', false), true, 'put overriding the sync default')\n"
    "local db2, err2 = store.open(p)\n"
    "is(db2, nil, 'second open of an open store fails')\n"
    "ok(type(err2) == 'string' and #err2 > 0, '... with a message')\n"
    "diag('lock error: ' .. tostring(err2))\n"
    "db:close()\n"
    "local db3, err3 = store.open(p, {error_if_exists = true})\n"
    "is(db3, nil, 'error_if_exists on an existing store fails')\n"
    "is(type(err3), 'string', '... with a message')\n"
    "local db4, err4 = store.open(TMP .. '/nowhere',\n"
    "                             {create_if_missing = false})\n"
    "is(db4, nil, 'create_if_missing = false on a missing store fails')\n"
    "is(type(err4), 'string', '... with a message')\n"
    "local db5, err5 = store.open(TMP .. '/no/such/dir/db')\n"
    "is(db5, nil, 'open under a missing parent directory fails')\n"
    "raises('unknown option', 'unknown open option raises',\n"
    "       store.open, p, {cache = 1})\n"
    "raises('compression', 'bad compression raises',\n"
    "       store.open, p, {compression = 'zstd'})\n"
    "raises('cache_size', 'negative cache_size raises',\n"
    "       store.open, p, {cache_size = -1})\n"
    "raises('block_size', 'fractional block_size raises',\n"
    "       store.open, p, {block_size = 1.5})\n"
    "raises('write_buffer_size', 'zero write_buffer_size raises',\n"
    "       store.open, p, {write_buffer_size = 0})\n"
    "raises('create_if_missing', 'non-boolean flag raises',\n"
    "       store.open, p, {create_if_missing = 1})\n"
    "raises('option names', 'non-string option name raises',\n"
    "       store.open, p, {true})\n"
    "raises('bad argument #1', 'open without a path raises', store.open)\n"
    "raises('bad argument #1', 'open with a table path raises',\n"
    "       store.open, {})\n"
    "raises('NUL', 'path with a NUL raises', store.open, p .. '\\0x')\n"
    "raises('bad argument #2', 'non-table opts raise', store.open, p, 'x')\n"
    "local db6 = store.open(p, {create_if_missing = false})\n"
    "ok(db6, 'store still opens after the failed attempts')\n"
    "is(db6 and db6:get('a'), '1', '... with its data')\n"
    "if db6 then db6:close() end\n";

static const char t_misuse[] =
    "local db = assert(store.open(TMP .. '/misuse'))\n"
    "raises('bad argument', 'get with a table key raises',\n"
    "       function() return db:get({}) end)\n"
    "raises('bad argument', 'get without a key raises',\n"
    "       function() return db:get() end)\n"
    "raises('bad argument', 'put with a table value raises',\n"
    "       function() return db:put('k', {}) end)\n"
    "raises('bad argument', 'put with a non-boolean sync raises',\n"
    "       function() return db:put('k', 'v', 'yes') end)\n"
    "raises('bad argument', 'delete with a table key raises',\n"
    "       function() return db:delete({}) end)\n"
    "raises('bad argument', 'get with a table as snapshot raises',\n"
    "       function() return db:get('k', {}) end)\n"
    "raises('bad argument', 'write of a non-batch raises',\n"
    "       function() return db:write({}) end)\n"
    "raises('bad argument', 'method on another type raises',\n"
    "       function() return db.get(db:batch(), 'k') end)\n"
    "raises('bad argument', 'non-table iter opts raise',\n"
    "       function() return db:iter('x') end)\n"
    "raises('prefix', 'numeric prefix raises',\n"
    "       function() return db:iter{prefix = 1} end)\n"
    "raises('unknown option', 'unknown iter option raises',\n"
    "       function() return db:iter{prefx = 'a'} end)\n"
    "raises('limit', 'negative limit raises',\n"
    "       function() return db:iter{limit = -1} end)\n"
    "raises('limit', 'fractional limit raises',\n"
    "       function() return db:iter{limit = 1.5} end)\n"
    "raises('reverse', 'non-boolean reverse raises',\n"
    "       function() return db:iter{reverse = 1} end)\n"
    "raises('snapshot', 'non-snapshot snapshot option raises',\n"
    "       function() return db:iter{snapshot = db} end)\n"
    "raises('bad argument', 'approximate_size needs two keys',\n"
    "       function() return db:approximate_size('a') end)\n"
    "raises('bad argument', 'property needs a name',\n"
    "       function() return db:property() end)\n"
    "local b = store.batch()\n"
    "raises('bad argument', 'batch put with a table key raises',\n"
    "       function() return b:put({}, 'v') end)\n"
    "raises('bad argument', 'batch put without a value raises',\n"
    "       function() return b:put('k') end)\n"
    "is(b:count(), 0, 'failed batch calls add nothing')\n"
    "is(db:put(12, 34), true, 'numbers are taken as strings (Lua 5.1)')\n"
    "is(db:get('12'), '34', '... as their decimal text')\n"
    "ok(pcall(db.get, db, 'k'), 'store still usable after the errors')\n"
    "db:close()\n";

static const char t_batch[] =
    "local db = assert(store.open(TMP .. '/batch'))\n"
    "db:put('gone', 'x')\n"
    "db:put('keep', 'old')\n"
    "local b = db:batch()\n"
    "is(b:count(), 0, 'a new batch is empty')\n"
    "b:put('a', '1')\n"
    "b:put('b\\0', '2\\0')\n"
    "b:delete('gone')\n"
    "b:put('keep', 'new')\n"
    "b:put('tmp', 't')\n"
    "b:delete('tmp')\n"
    "is(b:count(), 6, 'count counts puts and deletes')\n"
    "is(db:get('a'), nil, 'nothing applied before write')\n"
    "is(db:get('gone'), 'x', '... deletes neither')\n"
    "is(db:write(b), true, 'write returns true')\n"
    "is(db:get('a'), '1', 'batch put applied')\n"
    "is(db:get('b\\0'), '2\\0', 'batch put of binary applied')\n"
    "is(db:get('gone'), nil, 'batch delete applied')\n"
    "is(db:get('keep'), 'new', 'batch overwrite applied')\n"
    "is(db:get('tmp'), nil, 'a later delete in the batch wins')\n"
    "is(b:count(), 6, 'write leaves the batch as it was')\n"
    "is(b:clear(), b, 'clear returns the batch')\n"
    "is(b:count(), 0, 'clear empties the batch')\n"
    "b:put('c', '3')\n"
    "is(db:write(b, true), true, 'reused batch written with sync')\n"
    "is(db:get('c'), '3', 'reused batch applied')\n"
    "is(db:get('a'), '1', 'cleared ops not written again')\n"
    "local b2 = store.batch()\n"
    "is(b2:put('d', '4'):delete('c'), b2, 'put and delete chain')\n"
    "is(db:write(b2), true, 'store.batch() writes')\n"
    "is(db:get('d'), '4', '... its put')\n"
    "is(db:get('c'), nil, '... and its delete')\n"
    "is(db:write(store.batch()), true, 'an empty batch writes')\n"
    "db:close()\n";

static const char t_iter[] =
    "local db = assert(store.open(TMP .. '/iter'))\n"
    "for _, k in ipairs{'b/1', 'a/2', 'a/1', 'a', 'a0', 'c'} do\n"
    "    db:put(k, 'v' .. k)\n"
    "end\n"
    "is(keys(db:iter()), 'a,a/1,a/2,a0,b/1,c', 'full scan ascending')\n"
    "is(keys(db:iter{reverse = true}), 'c,b/1,a0,a/2,a/1,a',\n"
    "   'full scan descending')\n"
    "is(keys(db:iter{prefix = 'a/'}), 'a/1,a/2', 'prefix a/')\n"
    "is(keys(db:iter{prefix = 'a/', reverse = true}), 'a/2,a/1',\n"
    "   'prefix a/ reversed')\n"
    "is(keys(db:iter{prefix = 'b/'}), 'b/1', 'prefix b/')\n"
    "is(keys(db:iter{prefix = 'z/'}), '', 'prefix without keys')\n"
    "is(keys(db:iter{prefix = 'z/', reverse = true}), '',\n"
    "   'prefix without keys reversed')\n"
    "is(keys(db:iter{prefix = ''}), 'a,a/1,a/2,a0,b/1,c',\n"
    "   'empty prefix is everything')\n"
    "is(keys(db:iter{start = 'a/2'}), 'a/2,a0,b/1,c', 'start is inclusive')\n"
    "is(keys(db:iter{start = 'a/15'}), 'a/2,a0,b/1,c', 'start between keys')\n"
    "is(keys(db:iter{stop = 'a/2'}), 'a,a/1', 'stop is exclusive')\n"
    "is(keys(db:iter{start = 'a/2', stop = 'b/1'}), 'a/2,a0', 'start, stop')\n"
    "is(keys(db:iter{start = 'a/2', stop = 'b/1', reverse = true}),\n"
    "   'a0,a/2', 'start, stop reversed')\n"
    "is(keys(db:iter{stop = 'b', reverse = true}), 'a0,a/2,a/1,a',\n"
    "   'stop reversed starts below stop')\n"
    "is(keys(db:iter{stop = 'zzz', reverse = true}), 'c,b/1,a0,a/2,a/1,a',\n"
    "   'stop past the last key reversed')\n"
    "is(keys(db:iter{start = 'b', stop = 'a'}), '', 'empty range')\n"
    "is(keys(db:iter{start = 'b', stop = 'a', reverse = true}), '',\n"
    "   'empty range reversed')\n"
    "is(keys(db:iter{prefix = 'a', start = 'a/2'}), 'a/2,a0',\n"
    "   'prefix and start')\n"
    "is(keys(db:iter{prefix = 'a/', stop = 'a/2'}), 'a/1',\n"
    "   'prefix and stop')\n"
    "is(keys(db:iter{prefix = 'a/', stop = 'b'}), 'a/1,a/2',\n"
    "   'prefix and a stop past it')\n"
    "is(keys(db:iter{prefix = 'a/', start = 'a', reverse = true}),\n"
    "   'a/2,a/1', 'prefix and a start before it, reversed')\n"
    "is(keys(db:iter{limit = 2}), 'a,a/1', 'limit')\n"
    "is(keys(db:iter{limit = 2, reverse = true}), 'c,b/1', 'limit reversed')\n"
    "is(keys(db:iter{limit = 0}), '', 'limit 0')\n"
    "is(keys(db:iter{limit = 100}), 'a,a/1,a/2,a0,b/1,c', 'large limit')\n"
    "is(keys(db:iter{prefix = 'a', limit = 3, reverse = true}),\n"
    "   'a0,a/2,a/1', 'prefix, limit, reverse')\n"
    "local pairs_ = {}\n"
    "for k, v in db:iter{prefix = 'a/'} do\n"
    "    pairs_[#pairs_ + 1] = k .. '=' .. v\n"
    "end\n"
    "is(table.concat(pairs_, ','), 'a/1=va/1,a/2=va/2',\n"
    "   'values follow keys')\n"
    "local n, vals = 0, 0\n"
    "for k, v in db:iter{keys_only = true} do\n"
    "    n = n + 1\n"
    "    if v ~= nil then vals = vals + 1 end\n"
    "end\n"
    "is(n, 6, 'keys_only walks every key')\n"
    "is(vals, 0, 'keys_only yields no values')\n"
    "local it = db:iter{prefix = 'a/'}\n"
    "local k, v = it:next()\n"
    "is(k, 'a/1', 'it:next() gives the first key')\n"
    "is(v, 'va/1', '... and its value')\n"
    "is((it()), 'a/2', 'calling the iterator gives the next key')\n"
    "is(it(), nil, 'then nil at the end')\n"
    "is(it(), nil, 'and nil again')\n"
    "ok(pcall(it.close, it), 'close of a finished iterator')\n"
    "local it2 = db:iter()\n"
    "it2()\n"
    "it2:close()\n"
    "it2:close()\n"
    "is(it2(), nil, 'a closed iterator yields nil')\n"
    "local seen = 0\n"
    "for key in db:iter() do\n"
    "    seen = seen + 1\n"
    "    db:put(key .. '.', 'x')\n"
    "end\n"
    "is(seen, 6, 'writes during a walk are not seen by it')\n"
    "is(keys(db:iter{prefix = 'c'}), 'c,c.', '... but are written')\n"
    "db:close()\n";

static const char t_binary[] =
    "local db = assert(store.open(TMP .. '/binary'))\n"
    "local all = {'a', 'a\\255', 'a\\255\\0', 'a\\255\\255',\n"
    "    'a\\255\\255\\255', 'a\\255\\255\\255\\1', 'b', 'k', 'k\\0',\n"
    "    'k\\0\\0', 'k\\0a', 'k\\0b', 'k\\1', '\\0', '\\255', '\\255\\255',\n"
    "    '\\255\\255\\1', '\\255\\255\\255'}\n"
    "for _, k in ipairs(all) do db:put(k, k) end\n"
    "is(keys(db:iter{prefix = 'a\\255'}),\n"
    "   'a\\\\255,a\\\\255\\\\0,a\\\\255\\\\255,a\\\\255\\\\255\\\\255,'\n"
    "   .. 'a\\\\255\\\\255\\\\255\\\\1', 'prefix ending in 0xFF')\n"
    "is(keys(db:iter{prefix = 'a\\255', reverse = true}),\n"
    "   'a\\\\255\\\\255\\\\255\\\\1,a\\\\255\\\\255\\\\255,'\n"
    "   .. 'a\\\\255\\\\255,a\\\\255\\\\0,a\\\\255',\n"
    "   'prefix ending in 0xFF reversed')\n"
    "is(keys(db:iter{prefix = 'a\\255\\255', reverse = true}),\n"
    "   'a\\\\255\\\\255\\\\255\\\\1,a\\\\255\\\\255\\\\255,'\n"
    "   .. 'a\\\\255\\\\255',\n"
    "   'prefix ending in two 0xFF reversed')\n"
    "is(keys(db:iter{prefix = '\\255'}),\n"
    "   '\\\\255,\\\\255\\\\255,\\\\255\\\\255\\\\1,\\\\255\\\\255\\\\255',\n"
    "   'all-0xFF prefix')\n"
    "is(keys(db:iter{prefix = '\\255\\255', reverse = true}),\n"
    "   '\\\\255\\\\255\\\\255,\\\\255\\\\255\\\\1,\\\\255\\\\255',\n"
    "   'all-0xFF prefix reversed')\n"
    "is(keys(db:iter{prefix = '\\255\\255\\255\\255'}), '',\n"
    "   'all-0xFF prefix without keys')\n"
    "is(keys(db:iter{prefix = '\\255\\255\\255\\255', reverse = true}), '',\n"
    "   'all-0xFF prefix without keys reversed')\n"
    "is(keys(db:iter{prefix = 'k\\0'}),\n"
    "   'k\\\\0,k\\\\0\\\\0,k\\\\0a,k\\\\0b', 'prefix with a NUL')\n"
    "is(keys(db:iter{prefix = 'k\\0', reverse = true}),\n"
    "   'k\\\\0b,k\\\\0a,k\\\\0\\\\0,k\\\\0', 'prefix with a NUL reversed')\n"
    "is(keys(db:iter{start = 'k\\0', stop = 'k\\0b'}),\n"
    "   'k\\\\0,k\\\\0\\\\0,k\\\\0a', 'start and stop with NULs')\n"
    "is(keys(db:iter{prefix = '\\0'}), '\\\\0', 'NUL prefix')\n"
    "is(keys(db:iter{limit = 1}), '\\\\0', 'NUL sorts first')\n"
    "is(keys(db:iter{limit = 1, reverse = true}), '\\\\255\\\\255\\\\255',\n"
    "   '0xFF sorts last')\n"
    "local n = 0\n"
    "for k, v in db:iter() do if k == v then n = n + 1 end end\n"
    "is(n, #all, 'every binary key maps to itself')\n"
    "db:close()\n";

static const char t_snapshot[] =
    "local db = assert(store.open(TMP .. '/snap'))\n"
    "db:put('x', '1')\n"
    "db:put('y', '1')\n"
    "local snap = db:snapshot()\n"
    "db:put('x', '2')\n"
    "db:delete('y')\n"
    "db:put('z', 'new')\n"
    "is(db:get('x'), '2', 'db sees the new value')\n"
    "is(db:get('x', snap), '1', 'snapshot sees the old value')\n"
    "is(db:get('y', snap), '1', 'snapshot sees a since-deleted key')\n"
    "is(db:get('z', snap), nil, 'snapshot misses a later key')\n"
    "is(keys(db:iter{snapshot = snap}), 'x,y', 'snapshot iteration')\n"
    "is(keys(db:iter{snapshot = snap, reverse = true, prefix = 'y'}), 'y',\n"
    "   'snapshot iteration with prefix, reversed')\n"
    "is(keys(db:iter()), 'x,z', 'plain iteration sees the new state')\n"
    "local s2 = db:snapshot()\n"
    "local it = db:iter{snapshot = s2}\n"
    "db:put('x', '3')\n"
    "s2:release()\n"
    "collectgarbage()\n"
    "local got = {}\n"
    "for k, v in it do got[#got + 1] = k .. '=' .. v end\n"
    "is(table.concat(got, ','), 'x=2,z=new',\n"
    "   'iterator keeps its view after its snapshot is released')\n"
    "snap:release()\n"
    "ok(pcall(snap.release, snap), 'release is idempotent')\n"
    "raises('snapshot is released', 'get through a released snapshot',\n"
    "       function() return db:get('x', snap) end)\n"
    "raises('snapshot is released', 'iter over a released snapshot',\n"
    "       function() return db:iter{snapshot = snap} end)\n"
    "local other = assert(store.open(TMP .. '/snap-other'))\n"
    "local osnap = other:snapshot()\n"
    "raises('another store', 'snapshot of another store raises',\n"
    "       function() return db:get('x', osnap) end)\n"
    "raises('another store', '... in iter too',\n"
    "       function() return db:iter{snapshot = osnap} end)\n"
    "other:close()\n"
    "raises('store is closed', 'snapshot of a closed store raises',\n"
    "       function() return db:get('x', osnap) end)\n"
    "raises('store is closed', '... in iter too',\n"
    "       function() return db:iter{snapshot = osnap} end)\n"
    "ok(pcall(osnap.release, osnap), 'release after its store closed')\n"
    "db:close()\n";

static const char t_closed[] =
    "local p = TMP .. '/closed'\n"
    "local db = assert(store.open(p))\n"
    "db:put('a', '1')\n"
    "db:put('b', '2')\n"
    "db:put('c', '3')\n"
    "local it = db:iter()\n"
    "is((it()), 'a', 'iterator started')\n"
    "local fresh = db:iter{prefix = 'b'}\n"
    "local snap = db:snapshot()\n"
    "local snap2 = db:snapshot()\n"
    "snap2:release()\n"
    "local b = db:batch()\n"
    "b:put('d', '4')\n"
    "ok(handle_of(db), 'tp_store_handle gives the handle of an open store')\n"
    "db:close()\n"
    "ok(not handle_of(db), '... and NULL once it is closed')\n"
    "for _, m in ipairs{'get', 'put', 'delete', 'write', 'iter',\n"
    "                   'snapshot', 'batch', 'property',\n"
    "                   'approximate_size', 'compact'} do\n"
    "    raises('store is closed', 'db:' .. m .. ' after close raises',\n"
    "           function() return db[m](db, 'a', 'b') end)\n"
    "end\n"
    "raises('store is closed', 'db:get(k, snap) after close raises',\n"
    "       function() return db:get('a', snap) end)\n"
    "raises('store is closed', 'iterator call after close raises', it)\n"
    "raises('store is closed', 'it:next() after close raises',\n"
    "       function() return it:next() end)\n"
    "raises('store is closed', 'for loop after close raises',\n"
    "       function() for k in fresh do end end)\n"
    "ok(pcall(it.close, it), 'it:close() after close is fine')\n"
    "ok(pcall(snap.release, snap), 'snap:release() after close is fine')\n"
    "ok(pcall(db.close, db), 'db:close() again is fine')\n"
    "b:put('e', '5')\n"
    "is(b:count(), 2, 'a batch outlives its store')\n"
    "collectgarbage()\n"
    "local db2 = assert(store.open(p))\n"
    "raises('store is closed', 'snapshot of the closed store on a new one',\n"
    "       function() return db2:get('a', snap) end)\n"
    "is(db2:write(b), true, 'the batch writes to another store')\n"
    "is(db2:get('e'), '5', '... and its ops are there')\n"
    "db2:close()\n";

static const char t_gc[] =
    "local p = TMP .. '/gc'\n"
    "local function fill()\n"
    "    local db = assert(store.open(p))\n"
    "    for i = 1, 100 do db:put(('k%03d'):format(i), 'v') end\n"
    "    local n = 0\n"
    "    for k in db:iter() do\n"
    "        n = n + 1\n"
    "        if n == 10 then break end\n"
    "    end\n"
    "    local snap = db:snapshot()\n"
    "    local it = db:iter{snapshot = snap}\n"
    "    it()\n"
    "    return n\n"
    "end\n"
    "is(fill(), 10, 'broke out of a loop')\n"
    "collectgarbage()\n"
    "ok(true, 'collecting a dropped store, iterators, snapshot is fine')\n"
    "local db = store.open(p)\n"
    "ok(db, 'a collected store released its lock')\n"
    "db:close()\n"
    "local it = (function()\n"
    "    return assert(store.open(p)):iter{limit = 3}\n"
    "end)()\n"
    "collectgarbage()\n"
    "collectgarbage()\n"
    "is(store.open(p), nil, 'an iterator keeps its store open')\n"
    "is(keys(it), 'k001,k002,k003', '... and usable')\n"
    "collectgarbage()\n"
    "collectgarbage()\n"
    "local db2 = store.open(p)\n"
    "ok(db2, 'the store is collected once its iterator ended')\n"
    "db2:close()\n"
    "local snap = (function()\n"
    "    return assert(store.open(p)):snapshot()\n"
    "end)()\n"
    "collectgarbage()\n"
    "collectgarbage()\n"
    "is(store.open(p), nil, 'a snapshot keeps its store open')\n"
    "snap:release()\n"
    "snap = nil\n"
    "collectgarbage()\n"
    "collectgarbage()\n"
    "local db3 = store.open(p)\n"
    "ok(db3, 'the store is collected once its snapshot is released')\n"
    "db3:close()\n"
    "for i = 1, 200 do\n"
    "    local d = assert(store.open(p))\n"
    "    local s = d:snapshot()\n"
    "    local i2 = d:iter{snapshot = s}\n"
    "    i2()\n"
    "    if i % 2 == 0 then d:close() end\n"
    "    d, s, i2 = nil, nil, nil\n"
    "    collectgarbage()\n"
    "end\n"
    "ok(true, '200 open/iterate/drop rounds')\n";

/* Finalizers that use the store while a store call is copying data out:
 * an aggressive collector runs them inside the C functions' allocations. */
static const char t_reentry[] =
    "local db = assert(store.open(TMP .. '/reentry'))\n"
    "local val = ('v'):rep(3000)\n"
    "for i = 1, 20 do db:put(('k%02d'):format(i), val) end\n"
    "local bad = 0\n"
    "local function finalizer()\n"
    "    if db:get('k01') ~= val then bad = bad + 1 end\n"
    "    for k, v in db:iter{limit = 2} do\n"
    "        if v ~= val then bad = bad + 1 end\n"
    "    end\n"
    "    local s = db:snapshot()\n"
    "    if db:get('k02', s) ~= val then bad = bad + 1 end\n"
    "    if not db:property('leveldb.stats') then bad = bad + 1 end\n"
    "end\n"
    "collectgarbage('setpause', 0)\n"
    "collectgarbage('setstepmul', 100)\n"
    "for i = 1, 1500 do\n"
    "    getmetatable(newproxy(true)).__gc = finalizer\n"
    "    if db:get('k03') ~= val then bad = bad + 1 end\n"
    "    if not db:property('leveldb.stats') then bad = bad + 1 end\n"
    "    local n = 0\n"
    "    for k, v in db:iter{prefix = 'k1'} do\n"
    "        if v == val then n = n + 1 end\n"
    "    end\n"
    "    if n ~= 10 then bad = bad + 1 end\n"
    "end\n"
    "collectgarbage('setpause', 200)\n"
    "collectgarbage('setstepmul', 200)\n"
    "collectgarbage()\n"
    "is(bad, 0, 'reads stay right with finalizers reading mid-call')\n"
    "db:close()\n";

static const char t_misc[] =
    "local p = TMP .. '/misc'\n"
    "local db = assert(store.open(p))\n"
    "local val = ('x'):rep(100)\n"
    "for i = 1, 2000 do db:put(('key%05d'):format(i), val .. i) end\n"
    "local stats = db:property('leveldb.stats')\n"
    "is(type(stats), 'string', 'property leveldb.stats is a string')\n"
    "ok(stats and #stats > 0, '... and not empty')\n"
    "is(type(db:property('leveldb.approximate-memory-usage')), 'string',\n"
    "   'property leveldb.approximate-memory-usage is a string')\n"
    "is(db:property('leveldb.no-such-thing'), nil, 'unknown property: nil')\n"
    "db:compact('key00100', 'key00200')\n"
    "db:compact()\n"
    "ok(true, 'compact, with and without bounds')\n"
    "local size = db:approximate_size('key00000', 'key99999')\n"
    "is(type(size), 'number', 'approximate_size is a number')\n"
    "ok(size > 0, 'approximate_size of compacted data is positive')\n"
    "is(db:approximate_size('zzz0', 'zzz9'), 0, '... and 0 for no keys')\n"
    "local r, err = store.destroy(p)\n"
    "is(r, nil, 'destroy of an open store fails')\n"
    "is(type(err), 'string', '... with a message')\n"
    "db:close()\n"
    "is(store.repair(p), true, 'repair of a closed store')\n"
    "local db2 = assert(store.open(p))\n"
    "is(db2:get('key00001'), val .. 1, 'data survives repair')\n"
    "db2:close()\n"
    "is(store.destroy(p), true, 'destroy')\n"
    "is(store.open(p, {create_if_missing = false}), nil,\n"
    "   'a destroyed store is gone')\n"
    "local db3 = assert(store.open(p))\n"
    "is(db3:get('key00001'), nil, 'destroy removed the data')\n"
    "db3:close()\n"
    "is(store.destroy(p), true, 'destroy again')\n"
    "is(store.destroy(TMP .. '/never'), true, 'destroy of nothing is fine')\n"
    "raises('bad argument', 'destroy needs a path', store.destroy)\n"
    "raises('bad argument', 'repair needs a path', store.repair, {})\n";

/* Left alive for lua_close() to finalize, in whatever order. */
static const char t_atexit[] =
    "LEAK_DB = assert(store.open(TMP .. '/atexit'))\n"
    "LEAK_DB:put('a', '1')\n"
    "LEAK_DB:put('b', '2')\n"
    "LEAK_IT = LEAK_DB:iter()\n"
    "LEAK_IT()\n"
    "LEAK_SNAP = LEAK_DB:snapshot()\n"
    "LEAK_IT2 = LEAK_DB:iter{snapshot = LEAK_SNAP}\n"
    "LEAK_BATCH = LEAK_DB:batch():put('x', 'y')\n"
    "ok(true, 'store, iterators, snapshot, batch left for lua_close')\n";

static const struct {
    const char *name;   /* chunk name in errors */
    const char *code;   /* Lua source */
} chunks[] = {
    {"basic", t_basic},
    {"open", t_open},
    {"misuse", t_misuse},
    {"batch", t_batch},
    {"iter", t_iter},
    {"binary", t_binary},
    {"snapshot", t_snapshot},
    {"closed", t_closed},
    {"gc", t_gc},
    {"reentry", t_reentry},
    {"misc", t_misc},
    {"atexit", t_atexit},
};

/* Runs one chunk; an error escaping it is a failed check. */
static void run(lua_State *L, const char *name, const char *code)
{
    int top = lua_gettop(L);
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "traceback");
    lua_remove(L, -2);
    if (luaL_loadbuffer(L, code, strlen(code), name) != 0
        || lua_pcall(L, 0, 0, top + 1) != 0) {
        TAP_OK(0, "chunk %s runs: %s", name, lua_tostring(L, -1));
    }
    lua_settop(L, top);
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    return remove(path) == 0 ? 0 : -1;
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    struct stat st;
    lua_State *L;
    size_t i;

    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(dir, sizeof dir, "%s/tp-store-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }

    L = luaL_newstate();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_tp_store);
    lua_setfield(L, -2, "tp.store");
    lua_pop(L, 2);
    lua_register(L, "ok", l_ok);
    lua_register(L, "diag", l_diag);
    lua_register(L, "handle_of", l_handle_of);
    lua_pushstring(L, dir);
    lua_setglobal(L, "TMP");

    run(L, "prelude", prelude);
    for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
        run(L, chunks[i].name, chunks[i].code);
    lua_close(L);
    TAP_OK(1, "lua_close finalizes what was left open");

    TAP_OK(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0,
           "temp dir removed");
    TAP_OK(stat(dir, &st) != 0, "temp dir is gone");
    return tap_done();
}
