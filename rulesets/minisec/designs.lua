-- MiniSec ship design data (minisec.md 2.3, 2.4, 3): the resources, the
-- category, the seven properties, the three hull components, and the
-- stock designs every player gets.
--
-- A property's value is the sum of its components' values (the server's
-- default). The reference computes with inexact Scheme numbers, so its
-- display texts read "2.0 HP"; ours do too. Clients are also sent TPCL
-- texts that say the same thing as the Lua below.
return function(ms)
    local data = ms.data
    local M = {}

    -- Scheme's number->string of an inexact number: 2 -> "2.0".
    local function inexact(n)
        if n == math.floor(n) and math.abs(n) < 1e15 then
            return string.format("%d.0", n)
        end
        return tostring(n)
    end

    local function sum_text(suffix)
        return "(lambda (design bits) (let ((n (apply + bits))) (cons n "
               .. "(string-append (number->string n) \"" .. suffix
               .. "\"))))"
    end

    local ALWAYS = "(lambda (design) (cons #t \"\"))"

    M.resources = {
        { id = data.RES_SHIP_PART, name = "Ship part",
          name_plural = "Ship parts", unit = "part", unit_plural = "parts",
          description = "Ships parts that can be used to create ships" },
        { id = data.RES_HOME_PLANET, name = "Home Planet",
          name_plural = "Home Planets", unit = "unit", unit_plural = "units",
          description = "The home planet for a race." },
    }

    M.categories = {
        { id = 1, name = "Ships",
          description = "The Ship design and component category" },
    }

    local function property(id, name, displayname, description, display,
                            text)
        return { id = id, name = name, displayname = displayname, rank = 0,
                 categories = { 1 }, description = description,
                 display = display, calculate_text = text,
                 requirements_text = ALWAYS }
    end

    M.properties = {
        property(1, "Speed", "Speed",
            "The number of units the ship can move each turn",
            function(n) return inexact(n / 1000000) .. " mega-units" end,
            "(lambda (design bits) (let ((n (apply + bits))) (cons n "
            .. "(string-append (number->string (/ n 1000000)) "
            .. "\" mega-units\"))))"),
        property(2, "BuildTime", "Build Time",
            "The number of turns to build the ship",
            function(n) return inexact(n) .. " turns" end, sum_text(" turns")),
        property(3, "Armour", "Armour", "The amount of amour on the ship",
            function(n) return inexact(n) .. " HP" end, sum_text(" HP")),
        property(4, "WeaponWin", "Weapon Strength at Win",
            "The number of HP to do to the fired at ship when RSP wins",
            function(n) return inexact(n) .. " HP" end, sum_text(" HP")),
        property(5, "WeaponDraw", "Weapon Strength at Draw",
            "The number of HP to do to the fired at ship when RSP draws",
            function(n) return inexact(n) .. " HP" end, sum_text(" HP")),
        property(6, "Colonise", "Can Colonise Planets",
            "Can the ship colonise planets",
            function(n) return n == 1 and "Yes" or "No" end,
            "(lambda (design bits) (let ((n (apply + bits))) (cons n "
            .. "(if (= n 1) \"Yes\" \"No\"))))"),
        property(7, "_num-components", "Number of Conponents",
            "The total number of components in the design",
            function(n) return inexact(n) .. " components" end,
            sum_text(" components")),
    }

    -- A hull is a complete design: nothing else may be in it.
    local HULL_ONLY = "This is a complete component, nothing else can be "
                      .. "included"
    local function hull_only(ctx, design)
        if ctx:property(design, "_num-components") == 1 then
            return true
        end
        return false, HULL_ONLY
    end
    local HULL_ONLY_TEXT = "(lambda (design) (if (= (designType."
        .. "_num-components design) 1) (cons #t \"\") (cons #f \""
        .. HULL_ONLY .. "\")))"

    local function hull(id, name, description, props)
        props["_num-components"] = 1
        return { id = id, name = name, categories = { 1 },
                 description = description, properties = props,
                 requirements = hull_only,
                 requirements_text = HULL_ONLY_TEXT }
    end

    M.components = {
        hull(1, "ScoutHull",
             "The scout hull, fitted out with everything a scout needs",
             { Speed = 500000000, BuildTime = 1, Armour = 2, WeaponWin = 0,
               WeaponDraw = 0 }),
        hull(2, "FrigateHull",
             "The frigate hull, fitted out with everything a frigate needs",
             { Speed = 200000000, BuildTime = 2, Armour = 4, WeaponWin = 2,
               WeaponDraw = 0, Colonise = 1 }),
        hull(3, "BattleshipHull", "The battleship hull, fitted out with "
             .. "everything a battleship needs",
             { Speed = 300000000, BuildTime = 4, Armour = 6, WeaponWin = 3,
               WeaponDraw = 1 }),
    }

    -- Gives a player the stock designs (ids consecutive, in STOCK_DESIGNS
    -- order). Returns { Scout = design, Frigate = ..., Battleship = ... }.
    -- d.inuse counts ships ordered ("under construction", as the
    -- reference's Design frame shows it) and d.exists ships delivered;
    -- neither goes down when ships are lost.
    function M.create_stock(ctx, player_id)
        local out = {}
        for _, s in ipairs(data.STOCK_DESIGNS) do
            local d = ctx:new_design { name = s.name,
                description = s.description, owner = player_id,
                categories = { 1 }, components = { { id = s.hull,
                                                     count = 1 } } }
            d.inuse, d.exists = 0, 0
            ctx:design_changed(d)
            out[s.name] = d
        end
        return out
    end

    -- Designs the player may build: their own valid ones (category 1).
    function M.usable(ctx, player_id, id)
        local d = ctx:design(id)
        if not d or d.owner ~= player_id or d.owner == 0 or not d.valid then
            return nil
        end
        for _, c in ipairs(d.categories or {}) do
            if c == 1 then
                return d
            end
        end
        return nil
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

    -- Design counters.
    function M.count_ordered(ctx, d, n)
        d.inuse = (d.inuse or 0) + n
        ctx:design_changed(d)
    end

    function M.count_built(ctx, d, n)
        d.exists = (d.exists or 0) + n
        ctx:design_changed(d)
    end

    return M
end
