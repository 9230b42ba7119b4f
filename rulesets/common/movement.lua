-- Fleet movement as tpserver-cpp's MiniSec and MTSec do it (minisec.md
-- 7.1, 7.6, 8.2; mtsec.md 1, 2): one step of a fleet toward a point,
-- arrival, and re-parenting a moving fleet into the container it ends up
-- in. Shared by MiniSec and MTSec: include("common/movement.lua")(mod),
-- where mod.objects gives distance(a, b), half(size) and
-- container_class(obj).
--
-- Re-parenting scans the turn's container candidates (every object that
-- may contain others, taken when the turn starts) in descending id and
-- picks the first C with distance(point, C) <= fleet.size/2 + C.size/2
-- and C.size >= fleet.size; that is the highest id among the matches. A
-- grid over the candidates finds it without scanning them all: every
-- candidate is filed in the cells its reach overlaps (reach = C.size/2
-- plus a fleet's half size, 1), candidates too large for the grid (the
-- universe, the galaxy) are always checked. Positions are compared in x
-- and y for the grid and in full for the match.
--
-- Containers (the universe, the galaxy, star systems, planets) never move,
-- change size or go away in these rulesets, so the grid (of copies of their id,
-- position and size) is kept from turn to turn while the set of
-- candidates is the same.
return function(mod)
    local objects = mod.objects
    local M = {}

    local CELL = 1048576          -- grid cell edge
    local FLEET_HALF = 1          -- half the size of every fleet
    local MAX_COORD = 9007199254740991   -- 2^53 - 1: exact in a double

    local grid, big          -- cell key -> { candidates }, { candidates }
    local filed = { count = -1, sum = -1 }   -- what the grid holds

    local function cell(v)
        return math.floor(v / CELL)
    end

    local function key(cx, cy)
        return cx * 134217728 + cy
    end

    -- Files the container candidates of this turn (ascending id; id_sum:
    -- the sum of their ids).
    function M.begin_turn(ctx, candidates, id_sum)
        if filed.count == #candidates and filed.sum == id_sum then
            grid, big = filed.grid, filed.big
            return
        end
        grid, big = {}, {}
        for _, o in ipairs(candidates) do
            local c = { id = o.id, size = o.size,
                        pos = { x = o.pos.x, y = o.pos.y, z = o.pos.z } }
            local reach = objects.half(c.size) + FLEET_HALF
            if reach > CELL then
                big[#big + 1] = c
            else
                for cx = cell(c.pos.x - reach), cell(c.pos.x + reach) do
                    for cy = cell(c.pos.y - reach), cell(c.pos.y + reach) do
                        local k = key(cx, cy)
                        local list = grid[k]
                        if not list then
                            list = {}
                            grid[k] = list
                        end
                        list[#list + 1] = c
                    end
                end
            end
        end
        filed = { count = #candidates, sum = id_sum, grid = grid, big = big }
    end

    function M.end_turn()
        grid, big = nil, nil
    end

    local function matches(c, point, fleet)
        return objects.distance(point, c.pos) <= objects.half(fleet.size) +
               objects.half(c.size) and c.size >= fleet.size
    end

    -- The container a fleet at point belongs in, or nil.
    local function container_at(point, fleet)
        local best
        local list = grid[key(cell(point.x), cell(point.y))]
        for _, c in ipairs(list or {}) do
            if (not best or c.id > best.id) and matches(c, point, fleet) then
                best = c
            end
        end
        for _, c in ipairs(big) do
            if (not best or c.id > best.id) and matches(c, point, fleet) then
                best = c
            end
        end
        return best
    end

    local function same(a, b)
        return a.x == b.x and a.y == b.y and a.z == b.z
    end

    -- Re-parents fleet for a move to point (before its position changes).
    local function reparent(ctx, fleet, point)
        local parent = ctx:object(fleet.parent)
        if same(fleet.pos, point) or not parent or
           objects.container_class(ctx, parent) < 1 then
            return
        end
        local c = container_at(point, fleet)
        if c and c.id ~= fleet.parent then
            ctx:set_parent(fleet, c.id)
        end
    end

    -- Arrives exactly at dest: velocity 0, re-parented, positioned.
    function M.arrive(ctx, fleet, dest)
        fleet.vel = { x = 0, y = 0, z = 0 }
        reparent(ctx, fleet, dest)
        fleet.pos = { x = dest.x, y = dest.y, z = dest.z }
        ctx:changed(fleet)
    end

    local function trunc(v)
        if v >= 0 then
            return math.floor(v)
        end
        return math.ceil(v)
    end

    -- One step of length speed toward target (which is farther away
    -- than speed): the velocity is the difference scaled to speed, each
    -- component truncated toward zero.
    function M.step(ctx, fleet, target, speed)
        local p = fleet.pos
        local dx, dy, dz = target.x - p.x, target.y - p.y, target.z - p.z
        local len = math.sqrt(dx * dx + dy * dy + dz * dz)
        local v = { x = 0, y = 0, z = 0 }
        if len > 0 then
            local scale = speed / len
            v = { x = trunc(dx * scale), y = trunc(dy * scale),
                  z = trunc(dz * scale) }
        end
        fleet.vel = v
        local at = { x = p.x + v.x, y = p.y + v.y, z = p.z + v.z }
        reparent(ctx, fleet, at)
        fleet.pos = at
        ctx:changed(fleet)
    end

    -- Turns to reach dest at speed (minisec.md 7.1).
    function M.eta(distance, speed)
        if distance == 0 then
            return 1
        end
        if speed <= 0 then
            return 0
        end
        return math.floor((distance - 1) / speed) + 1
    end

    -- Whether a point is representable (the protocol sends 64-bit
    -- integers; the game computes in doubles).
    function M.valid_point(p)
        return math.abs(p.x) <= MAX_COORD and math.abs(p.y) <= MAX_COORD and
               math.abs(p.z) <= MAX_COORD
    end

    return M
end
