-- A fleet's ships, as MiniSec, MTSec and RFTS keep them: fleet.data.ships
-- = { { design = id, count = n } }, ascending design id, no zero counts.
--
--   local ships = include("common/ships.lua")(after)
--
-- after(ctx, fleet), optional, runs after every change (before the fleet
-- is marked changed): a ruleset recomputes there what depends on the ships
-- (the orders the fleet may take).
return function(after)
    local M = {}

    function M.total(fleet)
        local n = 0
        for _, s in ipairs(fleet.data.ships) do
            n = n + s.count
        end
        return n
    end

    -- How many ships of a design the fleet has.
    function M.count(fleet, design)
        for _, s in ipairs(fleet.data.ships) do
            if s.design == design then
                return s.count
            end
        end
        return 0
    end

    local function changed(ctx, fleet)
        if after then
            after(ctx, fleet)
        end
        ctx:changed(fleet)
    end

    -- Adds n ships of a design (nothing for n <= 0).
    function M.add(ctx, fleet, design, n)
        if n <= 0 then
            return
        end
        local list = fleet.data.ships
        local i = 1
        while list[i] and list[i].design < design do
            i = i + 1
        end
        if list[i] and list[i].design == design then
            list[i].count = list[i].count + n
        else
            table.insert(list, i, { design = design, count = n })
        end
        changed(ctx, fleet)
    end

    -- Removes n ships of a design; false (and nothing changed) when the
    -- fleet has fewer.
    function M.remove(ctx, fleet, design, n)
        local list = fleet.data.ships
        for i, s in ipairs(list) do
            if s.design == design then
                if s.count < n then
                    return false
                end
                s.count = s.count - n
                if s.count == 0 then
                    table.remove(list, i)
                end
                changed(ctx, fleet)
                return true
            end
        end
        return n == 0
    end

    return M
end
