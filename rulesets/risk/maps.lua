-- Risk maps (risk.md 4): a map is a data file of maps/, named by the
-- setting risk_map: "NAME" or "NAME.json" is the JSON form, "NAME.svg"
-- an Inkscape drawing of the reference's form. Both come out as
--   { name, constellations = { { name, bonus, territories = { { name,
--     x, y } } } }, wormholes = { { name A, name B } } }
-- and are checked (unique names, known ends, no self or double links,
-- every territory linked). README.md describes both forms for modders.
return function(rk)
    local M = {}

    local function fail(file, msg)
        error("Risk map " .. file .. ": " .. msg, 0)
    end

    -- An attribute of an SVG tag's text (names may hold ':' and '-').
    local function attr(tag, name)
        local escaped = name:gsub("[%-%.:]", "%%%0")
        local pat = "[%s]" .. escaped .. '%s*=%s*"([^"]*)"'
        return tag:match(pat)
    end

    local function fill_of(tag)
        local style = attr(tag, "style") or ""
        local c = style:match("fill%s*:%s*([^;%s]+)") or attr(tag, "fill")
        return c and c:lower()
    end

    -- An SVG id as a territory name: _s_ and a final _s are 's, other
    -- underscores spaces ("Barnard_s_Star" -> "Barnard's Star").
    function M.svg_name(id)
        local s = id:gsub("_s_", "'s_"):gsub("_s$", "'s")
        return (s:gsub("_", " "))
    end

    -- The reference's SVG form (risk.md 4): each <rect> a territory (id
    -- = name, x and -y its unit position), rectangles of one fill colour a
    -- constellation named by a <tspan> of that colour reading
    -- "Name|Bonus", each <path> with inkscape:connection-start and -end
    -- naming two rectangles ("#id") a wormhole.
    function M.parse_svg(text, file)
        local by_colour, order, rect_ids = {}, {}, {}
        for tag in text:gmatch("<rect(.-)/?>") do
            local id = attr(tag, "id")
            local x, y = tonumber(attr(tag, "x")), tonumber(attr(tag, "y"))
            local colour = fill_of(tag)
            if not (id and x and y and colour) then
                fail(file, "a <rect> needs id, x, y and a fill colour")
            end
            if not by_colour[colour] then
                by_colour[colour] = { territories = {} }
                order[#order + 1] = colour
            end
            local c = by_colour[colour]
            c.territories[#c.territories + 1] =
                { name = M.svg_name(id), x = x, y = -y }
            rect_ids[id] = M.svg_name(id)
        end
        local function label(colour, body)
            local name, bonus = body:match("^%s*(.-)%s*|%s*(%-?%d+)%s*$")
            local c = by_colour[colour]
            if name and c then
                c.name, c.bonus = name, tonumber(bonus)
            end
        end
        for ttag, inner in text:gmatch("<text(.-)>(.-)</text>") do
            for stag, body in inner:gmatch("<tspan(.-)>(.-)</tspan>") do
                label(fill_of(stag) or fill_of(ttag), body)
            end
        end
        local map = { name = file, constellations = {}, wormholes = {} }
        for _, colour in ipairs(order) do
            local c = by_colour[colour]
            if not c.name then
                fail(file, "no <tspan> \"Name|Bonus\" of colour " .. colour)
            end
            map.constellations[#map.constellations + 1] = c
        end
        for tag in text:gmatch("<path(.-)/?>") do
            local a = attr(tag, "inkscape:connection-start")
            local b = attr(tag, "inkscape:connection-end")
            if a and b then
                a, b = a:gsub("^#", ""), b:gsub("^#", "")
                if not rect_ids[a] or not rect_ids[b] then
                    fail(file, "a connection names no rectangle: " .. a
                               .. " - " .. b)
                end
                map.wormholes[#map.wormholes + 1] = { rect_ids[a],
                                                      rect_ids[b] }
            end
        end
        return map
    end

    function M.check(map, file)
        local seen, linked = {}, {}
        if type(map.constellations) ~= "table" or #map.constellations == 0 then
            fail(file, "no constellations")
        end
        for _, c in ipairs(map.constellations) do
            if type(c.name) ~= "string" or c.name == "Wormholes" or
               type(c.bonus) ~= "number" or c.bonus < 0 or
               type(c.territories) ~= "table" or #c.territories == 0 then
                fail(file, "a constellation needs a name (not Wormholes), "
                           .. "a bonus >= 0 and territories")
            end
            for _, t in ipairs(c.territories) do
                if type(t.name) ~= "string" or t.name == "" or
                   type(t.x) ~= "number" or type(t.y) ~= "number" then
                    fail(file, "a territory needs a name, x and y")
                end
                if seen[t.name] then
                    fail(file, "territory " .. t.name .. " named twice")
                end
                seen[t.name] = true
            end
        end
        local pairs_seen = {}
        for _, w in ipairs(map.wormholes or {}) do
            local a, b = w[1], w[2]
            if not seen[a] or not seen[b] then
                fail(file, "wormhole " .. tostring(a) .. " - " .. tostring(b)
                           .. " names an unknown territory")
            end
            if a == b then
                fail(file, "wormhole from " .. a .. " to itself")
            end
            local key = a < b and a .. "\0" .. b or b .. "\0" .. a
            if pairs_seen[key] then
                fail(file, "wormhole " .. a .. " - " .. b .. " twice")
            end
            pairs_seen[key] = true
            linked[a], linked[b] = true, true
        end
        for name in pairs(seen) do
            if not linked[name] then
                fail(file, "territory " .. name .. " has no wormhole")
            end
        end
        return map
    end

    -- The map the setting names, from maps/ of the ruleset's folder.
    function M.load(name)
        local file = name
        if not file:find("%.%w+$") then
            file = file .. ".json"
        end
        if not file:match("^[%w_%-]+%.%w+$") then
            fail(file, "a map is a file of maps/ (letters, digits, _ and -)")
        end
        local ok, text = pcall(read_file, "maps/" .. file)
        if not ok then
            fail(file, "cannot be read: " .. tostring(text))
        end
        local map
        if file:match("%.svg$") then
            map = M.parse_svg(text, file)
        else
            local okj, m = pcall(json.decode, text)
            if not okj or type(m) ~= "table" then
                fail(file, "not valid JSON: " .. tostring(m))
            end
            map = m
        end
        return M.check(map, file)
    end

    return M
end
