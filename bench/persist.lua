-- bench/persist.lua: start-up and commit times of a big game.
-- Run: tpserver script bench/persist.lua [OBJECTS]   (default 100000)
--
-- Builds a game of OBJECTS objects (planet-sized JSON, ~300 bytes each)
-- in a temporary data directory with an inline ruleset, through the real
-- tp.db / tp.game / tp.model code, and times:
--   create     game.start on an empty directory (setup + the first batch)
--   turn       game.end_turn when every object changes (the worst case:
--              change detection, history records, one synced batch), and
--              when 1% of them change; "commit" is the part after the
--              ruleset's turn (building and writing the batch)
--   start-up   a second start on the stored game: opening through the
--              check copy with every key read and decoded (open), then
--              loading the working set (load)
--   request    one object changed and committed, as a request's Okay
--              costs, with sync off (the default) and on
-- Prints one "name value unit" line per figure, then the database size.
local core = require "tp.core"
local config = require "tp.config"
local db_mod = require "tp.db"
local game = require "tp.game"
local model = require "tp.model"

local N = tonumber(arg[1] or os.getenv("BENCH_OBJECTS") or "") or 100000

local function remove_tree(path)
    for _, n in ipairs(db_mod.list_dir(path) or {}) do
        local p = path .. "/" .. n
        if db_mod.list_dir(p) then
            remove_tree(p)
        else
            os.remove(p)
        end
    end
    os.remove(path)
end

local function ruleset()
    return {
        name = "Bench", version = "1.0", folder = "bench",
        resources = { { id = 1, name = "Ore", name_plural = "Ore",
                        unit = "t", unit_plural = "t", description = "" } },
        object_types = {
            { name = "Planet", tp03 = "planet", groups = {
                { name = "Positional", params = {
                    { name = "Position", type = "position" },
                    { name = "Size", type = "size" } } },
                { name = "Resources", params = {
                    { name = "Resources", type = "resource_list" } } } } },
        },
        order_types = {},
        setup = function(ctx)
            for i = 0, N - 1 do
                ctx:new_object { type = "Planet", parent = 0,
                    name = "Planet " .. i, desc = "A planet of the bench",
                    size = 1000 + i % 97, owner = i % 8,
                    pos = { x = i * 1000, y = (i * 7919) % 100000, z = 0 },
                    data = { resources = { { 1, 100 + i % 50, 200, 0 } },
                             population = 1000 + i, industry = i % 13,
                             turns = 0 } }
            end
            ctx.state.step = 1
        end,
        turn = function(ctx)
            local step = ctx.state.step
            for o in ctx:each_object() do
                if o.id % step == 0 then
                    o.data.turns = o.data.turns + 1
                    o.data.population = o.data.population + 1
                    ctx:changed(o)
                end
            end
        end,
    }
end

local function du(dir)
    local total = 0
    for _, n in ipairs(db_mod.list_dir(dir) or {}) do
        local f = io.open(dir .. "/" .. n, "rb")
        if f then
            total = total + (f:seek("end") or 0)
            f:close()
        end
    end
    return total
end

local function out(name, value, unit)
    print(string.format("%-34s %10.1f %s", name, value, unit))
end

local tmp = os.tmpname()
os.remove(tmp)
assert(core.mkdir(tmp))
local data = tmp .. "/data"
assert(core.mkdir(data))
local cfg = assert(config.load { home = TP_HOME, set = {
    "turn_mode=manual", "log_level=warning" }, overrides = { data = data } })
core.set_log_level("warning")
local opts = { sync = cfg.sync, cache_size = cfg.cache_size,
               write_buffer_size = cfg.write_buffer_size,
               compression = cfg.compression }

print(string.format("persistence benchmark: %d objects, LevelDB cache %d "
                    .. "MiB, write buffer %d MiB, %s compression, "
                    .. "history_turns %d", N, cfg.cache_size / 1048576,
                    cfg.write_buffer_size / 1048576, cfg.compression,
                    cfg.history_turns))

local t0 = core.hrtime()
local db = assert(db_mod.open(data .. "/db", opts))
assert(game.start(cfg, db, ruleset()))
out("create (setup + first batch)", core.hrtime() - t0, "ms")

-- Turns: every object changes (twice, so that history records exist),
-- then 1% of them.
for i = 1, 2 do
    assert(game.end_turn("admin"))
    out(string.format("turn %d, all %d objects change", i + 1, N),
        game.last_turn_ms, "ms")
    out("  of which commit (batch + write)", game.last_commit_ms, "ms")
end
model.rsstate.step = 100
model.state_changed()
model.commit()
assert(game.end_turn("admin"))
out(string.format("turn 4, 1%% of the objects change"), game.last_turn_ms,
    "ms")
out("  of which commit (batch + write)", game.last_commit_ms, "ms")

-- Requests: one object changed and committed.
local function requests(n, sync)
    local times = {}
    for i = 1, n do
        local o = model.objects[(i * 7) % N]
        o.name = "Renamed " .. i
        model.changed(o)
        local s = core.hrtime()
        model.commit(nil, sync)
        times[i] = core.hrtime() - s
    end
    table.sort(times)
    return times[math.floor(n / 2)], times[math.floor(n * 0.99)]
end
local p50, p99 = requests(2000, false)
out("request commit, sync off: p50", p50 * 1000, "us")
out("request commit, sync off: p99", p99 * 1000, "us")
p50, p99 = requests(200, true)
out("request commit, sync on: p50", p50 * 1000, "us")
out("request commit, sync on: p99", p99 * 1000, "us")
game.stop()
db:close()

-- Start-up on the stored game, twice (the second with warm OS caches is
-- what a restart sees; the first follows the writes above).
for i = 1, 2 do
    collectgarbage()
    t0 = core.hrtime()
    db = assert(db_mod.open(data .. "/db", opts))
    local t1 = core.hrtime()
    assert(game.start(cfg, db, ruleset()))
    local t2 = core.hrtime()
    assert(#model.object_ids() == N)
    out(string.format("start-up %d: open (check copy, every key)", i),
        t1 - t0, "ms")
    out(string.format("start-up %d: load the working set", i), t2 - t1,
        "ms")
    out(string.format("start-up %d: total", i), t2 - t0, "ms")
    if i == 2 then
        collectgarbage()
        collectgarbage()
        out("Lua heap after load, collected",
            collectgarbage("count") / 1024, "MiB")
        local r0 = core.hrtime()
        model.rollback()
        out("rollback (a failed request's reload)", core.hrtime() - r0,
            "ms")
    end
    game.stop()
    db:close()
end
out("database size", du(data .. "/db") / 1048576, "MiB")
if os.getenv("BENCH_KEEP") then print("kept " .. data) else remove_tree(tmp) end
