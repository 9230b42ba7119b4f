-- RFTS designs (rfts.md 4, 5): the 14 resources, the Ships category, the
-- four properties (sums of their components' values), the nine
-- components, the stock designs, and each player's record (victory
-- points, ship technology, designs) in ctx.state.players.
return function(rf)
    local data = rf.data
    local M = {}

    M.resources = {}
    for i, r in ipairs(data.RESOURCES) do
        M.resources[i] = { id = i, name = r[1], name_plural = r[2],
                           unit = r[3], unit_plural = r[4],
                           description = r[5] }
    end

    M.categories = {
        { id = 1, name = "Ships",
          description = "The ship design and component category" },
    }

    local ALWAYS = "(lambda (design) (cons #t \"\"))"

    local function number_text(n)
        if n == math.floor(n) and math.abs(n) < 1e15 then
            return string.format("%d", n)
        end
        return string.format("%.10g", n)
    end

    local function property(id, name, description, display, text)
        return { id = id, name = name, displayname = name, rank = 0,
                 categories = { 1 }, description = description,
                 display = display, calculate_text = text,
                 requirements_text = ALWAYS }
    end

    local function sum_text(suffix)
        return "(lambda (design bits) (let ((n (apply + bits))) (cons n "
               .. "(string-append (number->string n) \"" .. suffix
               .. "\"))))"
    end

    M.properties = {
        property(1, "Speed", "How far the ship goes in a turn",
            function(n) return number_text(n / 10) .. " speedy units" end,
            "(lambda (design bits) (let ((n (apply + bits))) (cons n "
            .. "(string-append (number->string (/ n 10)) "
            .. "\" speedy units\"))))"),
        property(2, "Attack", "The damage the ship deals",
            function(n) return number_text(n) end, sum_text("")),
        property(3, "Armour", "The damage the ship withstands",
            function(n) return number_text(n) end, sum_text("")),
        property(4, "Colonise", "Can the ship colonise planets",
            function(n) return n == 1 and "Yes" or "No" end,
            "(lambda (design bits) (let ((n (apply + bits))) (cons n "
            .. "(if (= n 1) \"Yes\" \"No\"))))"),
    }

    -- Every component requires fewer than 3 kinds of component in the
    -- design (the reference's _num-components: distinct components).
    local TOO_MANY = "A design holds at most two kinds of component"
    local function few_kinds(ctx, design)
        local kinds = 0
        for _, c in ipairs(design.components or {}) do
            if (c.count or 0) > 0 then
                kinds = kinds + 1
            end
        end
        if kinds < 3 then
            return true
        end
        return false, TOO_MANY
    end

    M.components = {}
    for n = 1, 4 do
        M.components[n] = { id = n, name = "Engine" .. n, categories = { 1 },
            description = "An engine of technology level " .. n,
            properties = { Speed = 0.1 * n }, requirements = few_kinds }
        M.components[4 + n] = { id = 4 + n, name = "Battle" .. n,
            categories = { 1 },
            description = "Weapons and armour of technology level " .. n,
            properties = { Attack = 5 * n, Armour = 5 * n },
            requirements = few_kinds }
    end
    M.components[9] = { id = 9, name = "Transport", categories = { 1 },
        description = "Room for colonists",
        properties = { Colonise = 1 }, requirements = few_kinds }

    -- The stock designs: components by id.
    local STOCK = {
        Scout = { description = "A fast, unarmed scout", parts = { 1 } },
        Transport = { description = "Carries colonists to other planets",
                      parts = { 1, 9 } },
        Mark1 = { description = "A level 1 warship", parts = { 1, 5 } },
        Mark2 = { description = "A level 2 warship", parts = { 2, 6 } },
        Mark3 = { description = "A level 3 warship", parts = { 3, 7 } },
        Mark4 = { description = "A level 4 warship", parts = { 4, 8 } },
    }

    -- ---------------------------------------------------- players

    -- The record of a player: vp (victory points), tech (ship technology
    -- points), level (ship technology level 1-4), upgrade (gained a
    -- level this turn), designs (name -> id).
    function M.info(ctx, player_id)
        local st = ctx.state
        st.players = st.players or {}
        local key = tostring(player_id)
        local p = st.players[key]
        if not p then
            p = { vp = 0, tech = 0, level = 1, upgrade = false,
                  designs = {} }
            st.players[key] = p
            ctx:state_changed()
        end
        return p
    end

    function M.add_vp(ctx, player_id, n)
        if player_id == 0 or n == 0 then
            return
        end
        local p = M.info(ctx, player_id)
        p.vp = p.vp + n
        ctx:state_changed()
    end

    -- The player's PDB level (ship technology level, at most 3); 1 for
    -- nobody.
    function M.pdb_level(ctx, player_id)
        if player_id == 0 then
            return 1
        end
        return math.min(M.info(ctx, player_id).level, data.MAX_PDB_LEVEL)
    end

    function M.create(ctx, player_id, name)
        local s = STOCK[name]
        local comps = {}
        for _, id in ipairs(s.parts) do
            comps[#comps + 1] = { id = id, count = 1 }
        end
        local d = ctx:new_design { name = name, description = s.description,
            owner = player_id, categories = { 1 }, components = comps }
        local p = M.info(ctx, player_id)
        p.designs[name] = d.id
        ctx:state_changed()
        return d
    end

    -- Adds ship technology points; crossing a threshold gives the next
    -- MarkN design and flags a PDB upgrade. Returns the levels gained.
    function M.add_tech(ctx, player_id, points)
        local p = M.info(ctx, player_id)
        p.tech = p.tech + points
        local gained = {}
        while p.level < 4 and p.tech >= data.TECH_LEVELS[p.level] do
            p.level = p.level + 1
            M.create(ctx, player_id, "Mark" .. p.level)
            p.upgrade = true
            gained[#gained + 1] = p.level
        end
        ctx:state_changed()
        return gained
    end

    -- The RP cost of one ship of design d (by its stock name), or nil.
    function M.cost(d)
        return d and data.SHIP_COST[d.name]
    end

    -- The designs a player may build: their own stock designs.
    function M.usable(ctx, player_id, id)
        local d = ctx:design(id)
        if not d or d.owner == 0 or d.owner ~= player_id or not M.cost(d) then
            return nil
        end
        return d
    end

    function M.usable_list(ctx, player_id)
        local out = {}
        for _, d in ipairs(ctx:designs()) do
            if M.usable(ctx, player_id, d.id) then
                out[#out + 1] = d
            end
        end
        return out
    end

    function M.is_transport(ctx, player_id, id)
        return id == M.info(ctx, player_id).designs.Transport
    end

    return M
end
