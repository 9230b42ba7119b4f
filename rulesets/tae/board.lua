-- TaE board (tae.md 5, 4): the board file, its squares (a star system
-- and a planet each), the markers on the planets and the regions.
--
-- ctx.state.board = { width, height, squares = { system id by
-- row * width + col + 1 } }. A star system's data: col, row, planet (the
-- planet's id), inhabitable, destroyed, region (0 = none) and pending
-- (true while the conflicts its colony started are being fought). A
-- planet's data.resources is its list of markers, each { resource,
-- stored = 1, minable = 0, unavailable = 0 }; a removed marker is gone
-- (the reference only zeroes it: fixed, see README.md).
--
-- A region is a set of orthogonally connected squares each holding a
-- colony (markers 4-7) or a leader, leaving out pending squares; its id
-- is the lowest star system id in it (a new region of one square has the
-- square's own id). The regions are worked out again after every change
-- (rebuild), so a region never outlives the squares that make it.
return function(tae)
    local M = {}

    M.UNINHABITABLE, M.DESTROYED, M.ARTIFACT = 1, 2, 3
    M.MONEY, M.TECH, M.PEOPLE, M.RAW = 4, 5, 6, 7
    M.SPACING = 80000

    -- The lines of a board text, bottom line first (row 0), or nil, why.
    function M.parse(text)
        local lines = {}
        for line in (text .. "\n"):gmatch("([^\n]*)\n") do
            line = line:gsub("\r$", ""):gsub("%s+$", "")
            if line ~= "" then
                if line:find("[^%.MA]") then
                    return nil, "board line " .. (#lines + 1) .. " holds a "
                                .. "character other than '.', 'M', 'A'"
                end
                lines[#lines + 1] = line
            end
        end
        if #lines == 0 then
            return nil, "the board is empty"
        end
        local rows = {}
        for i = #lines, 1, -1 do
            rows[#rows + 1] = lines[i]
        end
        return rows
    end

    -- Creates the squares of the board named by the setting (setup).
    function M.create(ctx, galaxy)
        local rows = assert(M.parse(read_file(ctx.settings.board)))
        local width = 0
        for _, line in ipairs(rows) do
            width = math.max(width, #line)
        end
        local st = { width = width, height = #rows, squares = {} }
        for r, line in ipairs(rows) do
            local row = r - 1
            for col = 0, width - 1 do
                local ch = line:sub(col + 1, col + 1)
                if ch == "" then
                    ch = "."
                end
                local pos = { x = 1 + M.SPACING * col,
                              y = 1 + M.SPACING * (row + 1), z = 0 }
                local sys = ctx:new_object { type = "Star System",
                    name = col .. ", " .. row, parent = galaxy.id,
                    size = 60000, pos = pos,
                    data = { col = col, row = row, inhabitable = 1,
                             destroyed = 0, region = 0 } }
                local markers = {}
                if ch == "M" then
                    sys.data.inhabitable = 0
                    markers[1] = M.marker(M.UNINHABITABLE)
                elseif ch == "A" then
                    markers[1] = M.marker(M.ARTIFACT)
                    markers[2] = M.marker(M.TECH)
                end
                local planet = ctx:new_object { type = "Planet",
                    name = "Planet " .. col .. ", " .. row, parent = sys.id,
                    size = 1000, pos = { x = pos.x, y = pos.y, z = 0 },
                    data = { resources = markers } }
                ctx:new_queue(planet, 0, {})
                sys.data.planet = planet.id
                ctx:changed(sys)
                st.squares[row * width + col + 1] = sys.id
            end
        end
        ctx.state.board = st
        ctx:state_changed()
        M.rebuild(ctx)
    end

    function M.marker(id)
        return { resource = id, stored = 1, minable = 0, unavailable = 0 }
    end

    -- The board square at col, row, or nil.
    function M.square(ctx, col, row)
        local st = ctx.state.board
        if col < 0 or row < 0 or col >= st.width or row >= st.height then
            return nil
        end
        return ctx:object(st.squares[row * st.width + col + 1])
    end

    -- Whether obj is a square of the board (not a home system).
    function M.is_square(ctx, obj)
        return obj ~= nil and obj.type == ctx.types["Star System"] and
               obj.data.col ~= nil
    end

    -- The squares at +-1 column and +-1 row (+x, -x, +y, -y).
    function M.neighbours(ctx, sys)
        local out = {}
        local c, r = sys.data.col, sys.data.row
        for _, d in ipairs { { 1, 0 }, { -1, 0 }, { 0, 1 }, { 0, -1 } } do
            local n = M.square(ctx, c + d[1], r + d[2])
            if n then
                out[#out + 1] = n
            end
        end
        return out
    end

    function M.planet(ctx, sys)
        return ctx:object(sys.data.planet)
    end

    function M.has(ctx, sys, id)
        for _, m in ipairs(M.planet(ctx, sys).data.resources) do
            if m.resource == id then
                return true
            end
        end
        return false
    end

    function M.add(ctx, sys, id)
        if not M.has(ctx, sys, id) then
            local p = M.planet(ctx, sys)
            table.insert(p.data.resources, M.marker(id))
            table.sort(p.data.resources, function(a, b)
                return a.resource < b.resource
            end)
            ctx:changed(p)
        end
    end

    function M.remove(ctx, sys, id)
        local p = M.planet(ctx, sys)
        for i, m in ipairs(p.data.resources) do
            if m.resource == id then
                table.remove(p.data.resources, i)
                ctx:changed(p)
                return
            end
        end
    end

    -- The colony marker (4-7) on the square, or nil.
    function M.colony(ctx, sys)
        for _, m in ipairs(M.planet(ctx, sys).data.resources) do
            if m.resource >= M.MONEY and m.resource <= M.RAW then
                return m.resource
            end
        end
        return nil
    end

    -- The leader fleet standing on the square, or nil.
    function M.leader_on(ctx, sys)
        for _, id in ipairs(sys.children or {}) do
            local o = ctx:object(id)
            if o and o.type == ctx.types.Fleet and not o.data.consumed then
                return o
            end
        end
        return nil
    end

    -- Whether a colonist (mining or not) may settle on the square now.
    function M.colonisable(ctx, sys, mining)
        if not M.is_square(ctx, sys) then
            return false, "the target is not a square of the board"
        end
        if sys.data.destroyed ~= 0 then
            return false, sys.name .. " is destroyed"
        end
        if M.leader_on(ctx, sys) then
            return false, "a leader stands on " .. sys.name
        end
        if M.colony(ctx, sys) then
            return false, sys.name .. " already holds a colony"
        end
        local unin = M.has(ctx, sys, M.UNINHABITABLE)
        if mining and not unin then
            return false, "mining robots settle only uninhabitable squares "
                          .. "('M'), and " .. sys.name .. " is inhabitable"
        end
        if not mining and unin then
            return false, sys.name .. " is uninhabitable: only mining "
                          .. "robots may settle it"
        end
        return true
    end

    -- The distinct regions of the square's neighbours, ascending.
    function M.regions_around(ctx, sys)
        local seen, out = {}, {}
        for _, n in ipairs(M.neighbours(ctx, sys)) do
            local r = n.data.region
            if r ~= 0 and not seen[r] then
                seen[r] = true
                out[#out + 1] = r
            end
        end
        table.sort(out)
        return out
    end

    local function member(ctx, sys)
        if sys.data.pending then
            return false
        end
        return M.colony(ctx, sys) ~= nil or M.leader_on(ctx, sys) ~= nil
    end

    -- Works out every square's region again.
    function M.rebuild(ctx)
        local st = ctx.state.board
        local region = {}
        for i = 1, st.width * st.height do
            local sys = ctx:object(st.squares[i])
            if not region[sys.id] and member(ctx, sys) then
                local comp, todo, k = {}, { sys }, 1
                region[sys.id] = -1
                while k <= #todo do
                    local s = todo[k]
                    k = k + 1
                    comp[#comp + 1] = s
                    for _, n in ipairs(M.neighbours(ctx, s)) do
                        if not region[n.id] and member(ctx, n) then
                            region[n.id] = -1
                            todo[#todo + 1] = n
                        end
                    end
                end
                local low = comp[1].id
                for _, s in ipairs(comp) do
                    low = math.min(low, s.id)
                end
                for _, s in ipairs(comp) do
                    region[s.id] = low
                end
            end
        end
        for i = 1, st.width * st.height do
            local sys = ctx:object(st.squares[i])
            local r = region[sys.id] or 0
            if sys.data.region ~= r then
                sys.data.region = r
                ctx:changed(sys)
            end
        end
    end

    -- The squares of a region.
    function M.region_squares(ctx, r)
        local out = {}
        if r == 0 then
            return out
        end
        local st = ctx.state.board
        for i = 1, st.width * st.height do
            local sys = ctx:object(st.squares[i])
            if sys.data.region == r then
                out[#out + 1] = sys
            end
        end
        return out
    end

    -- Every artifact square.
    function M.artifacts(ctx)
        local out = {}
        local st = ctx.state.board
        for i = 1, st.width * st.height do
            local sys = ctx:object(st.squares[i])
            if M.has(ctx, sys, M.ARTIFACT) then
                out[#out + 1] = sys
            end
        end
        return out
    end

    return M
end
