-- MTSec tech tree (mtsec.md 4): the two categories, the 61 properties and
-- the 52 components, read from techtree.json when the ruleset loads, and
-- the eight requirement rules (H, E, T, B, M, P, A, C of 4.2), written
-- once here and given to each component by its rule letter.
--
-- Name shadowing (4.1): a name several properties share means the last
-- one declared (the highest id). The server's property lookup by name
-- does the same (tp.types), so a component's "Speed" goes to the Weapons
-- copy (23) whatever the component's category, and ids 1-11, 13, 17-21
-- never get a value. The rules here read properties through the same
-- lookup (M.prop).
--
-- Every property is the sum of its components' values (the server's
-- default) and its display text is the number and a suffix.
return function(mt)
    local M = {}

    local tree = json.decode(read_file("techtree.json"))
    M.tree = tree

    -- Name -> id of the last property declared with that name.
    M.property_id = {}
    for _, p in ipairs(tree.properties) do
        local last = M.property_id[p.name]
        if not last or p.id > last then
            M.property_id[p.name] = p.id
        end
    end

    -- A property's value in a design (0 when absent), by the id its name
    -- resolves to.
    function M.prop(design, name)
        local id = M.property_id[name]
        for _, pv in ipairs(design.properties or {}) do
            if pv.id == id then
                return pv.number
            end
        end
        return 0
    end

    -- Numbers as text: whole numbers without a fraction.
    local function number(n)
        if n == math.floor(n) and math.abs(n) < 1e15 then
            return string.format("%d", n)
        end
        return string.format("%.10g", n)
    end
    M.number = number

    local function display(p)
        if p.yesno then
            return function(n) return n == 1 and "Yes" or "No" end
        elseif p.scale then
            return function(n) return number(n / p.scale) .. p.suffix end
        end
        return function(n) return number(n) .. (p.suffix or "") end
    end

    -- The TPCL text clients are shown for a property (what display does).
    local function calculate_text(p)
        local n = "n"
        if p.yesno then
            return "(lambda (design bits) (let ((n (apply + bits))) "
                   .. "(cons n (if (= n 1) \"Yes\" \"No\"))))"
        elseif p.scale then
            n = "(/ n " .. p.scale .. ")"
        end
        return "(lambda (design bits) (let ((n (apply + bits))) (cons n "
               .. "(string-append (number->string " .. n .. ") \""
               .. (p.suffix or "") .. "\"))))"
    end

    local ALWAYS = "(lambda (design) (cons #t \"\"))"

    M.categories = {}
    for _, c in ipairs(tree.categories) do
        M.categories[#M.categories + 1] = { id = c.id, name = c.name,
                                             description = c.description }
    end

    M.properties = {}
    for _, p in ipairs(tree.properties) do
        M.properties[#M.properties + 1] = {
            id = p.id, name = p.name, displayname = p.displayname,
            rank = p.rank, categories = { p.category },
            description = p.description or p.displayname,
            display = display(p), calculate_text = calculate_text(p),
            requirements_text = ALWAYS }
    end

    -- ---------------------------------------------------- requirements

    local ONE_HULL = "can only have one hull"
    local NO_FIT = "This many components can't fit into this Hull"
    local NEEDS_HULL = "requires a Missile or Torpedoe Hull"
    local ARMOR = "Armor plates fit only a Scout or Battle Scout Hull, "
                  .. "with nothing else that counts as a component"
    local ONE_MODULE = "can only have one Colonisation Module"

    local function fits(d)
        return M.prop(d, "MaxSize") > M.prop(d, "Size")
    end

    local function one_hull(d)
        return M.prop(d, "num-hulls") == 1
    end

    -- rule letter -> function(design) -> ok, why
    local function both(d, hull_why)
        if not one_hull(d) then
            return false, hull_why
        end
        if not fits(d) then
            return false, NO_FIT
        end
        return true
    end

    M.RULES = {
        H = function(d) return both(d, ONE_HULL) end,
        E = function(d)
            if not one_hull(d) then
                return false, NEEDS_HULL
            end
            return true
        end,
        -- The reference's hull test here is always true (4.2).
        T = function(d)
            if not fits(d) then
                return false, NO_FIT
            end
            return true
        end,
        B = function(d) return both(d, ONE_HULL) end,
        M = function(d) return both(d, ONE_HULL) end,
        P = function(d) return both(d, ONE_HULL) end,
        A = function(d)
            if M.prop(d, "_num-components") ~= 1 then
                return false, ARMOR
            end
            return true
        end,
        C = function(d)
            if M.prop(d, "Colonise") ~= 1 then
                return false, ONE_MODULE
            end
            if not fits(d) then
                return false, NO_FIT
            end
            return true
        end,
    }

    -- The same rules as TPCL text for clients.
    local function cond(test, why)
        return "(if " .. test .. " (cons #t \"\") (cons #f \"" .. why
               .. "\"))"
    end
    local FIT_T = "(> (designType.MaxSize design) (designType.Size design))"
    local HULL_T = "(= (designType.num-hulls design) 1)"
    local RULE_TEXT = {
        H = "(lambda (design) (if " .. HULL_T .. " " .. cond(FIT_T, NO_FIT)
            .. " (cons #f \"" .. ONE_HULL .. "\")))",
        E = "(lambda (design) " .. cond(HULL_T, NEEDS_HULL) .. ")",
        T = "(lambda (design) " .. cond(FIT_T, NO_FIT) .. ")",
        A = "(lambda (design) " .. cond(
            "(= (designType._num-components design) 1)", ARMOR) .. ")",
        C = "(lambda (design) (if (= (designType.Colonise design) 1) "
            .. cond(FIT_T, NO_FIT) .. " (cons #f \"" .. ONE_MODULE
            .. "\")))",
    }
    RULE_TEXT.B, RULE_TEXT.M, RULE_TEXT.P = RULE_TEXT.H, RULE_TEXT.H,
                                            RULE_TEXT.H

    local RULE_WORDS = {
        H = "A ship hull", E = "An explosive for a missile or torpedoe",
        T = "A missile tube", B = "A missile or torpedoe tube or rack",
        M = "A missile hull", P = "A torpedoe hull",
        A = "An armor plate", C = "A colonisation module",
    }

    M.components = {}
    M.component_by_name = {}
    M.component_by_id = {}
    for _, c in ipairs(tree.components) do
        local props = {}
        for _, pv in ipairs(c.properties) do
            props[pv[1]] = pv[2]
        end
        local rule = assert(M.RULES[c.rule], "techtree.json: component "
                            .. c.id .. " has unknown rule " .. c.rule)
        local comp = {
            id = c.id, name = c.name, categories = { c.category },
            description = RULE_WORDS[c.rule] .. ": " .. c.name,
            properties = props, rule = c.rule,
            requirements = function(ctx, design) return rule(design) end,
            requirements_text = RULE_TEXT[c.rule] }
        M.components[#M.components + 1] = comp
        M.component_by_name[c.name] = comp
        M.component_by_id[c.id] = comp
    end

    -- The 11 tube properties (4.1: ids 40-50) and their counts (51-61).
    M.TUBES = {}
    for _, p in ipairs(tree.properties) do
        if p.name:match("Tube$") and not p.name:match("^num%-") then
            M.TUBES[#M.TUBES + 1] = p.name
        end
    end

    -- The check ModifyDesign makes before it changes a design (the hook
    -- cannot reach the server's computation, which runs again on the
    -- changed design): the same sums in rank order and the same rules.
    -- Fills design.properties, valid and feedback.
    local by_id = {}
    for _, p in ipairs(M.properties) do
        by_id[p.id] = p
    end
    local order = {}
    for _, p in ipairs(M.properties) do
        order[#order + 1] = p
    end
    table.sort(order, function(a, b)
        if a.rank ~= b.rank then
            return a.rank < b.rank
        end
        return a.id < b.id
    end)
    function M.precheck(design)
        local totals = {}
        for _, c in ipairs(design.components) do
            local comp = M.component_by_id[c.id]
            for name, v in pairs(comp.properties) do
                local id = M.property_id[name]
                totals[id] = (totals[id] or 0) + c.count * v
            end
        end
        local props = {}
        for _, p in ipairs(order) do
            if totals[p.id] then
                props[#props + 1] = { id = p.id, name = p.name,
                                      number = totals[p.id],
                                      value = p.display(totals[p.id]) }
            end
        end
        table.sort(props, function(a, b) return a.id < b.id end)
        design.properties = props
        local why, seen = {}, {}
        design.valid = true
        local ids = {}
        for _, c in ipairs(design.components) do
            ids[#ids + 1] = c.id
        end
        table.sort(ids)
        for _, id in ipairs(ids) do
            local ok, w = M.RULES[M.component_by_id[id].rule](design)
            if not ok then
                design.valid = false
                if not seen[w] then
                    seen[w] = true
                    why[#why + 1] = w
                end
            end
        end
        design.feedback = design.valid and "Design is valid"
                          or table.concat(why, "; ")
        return design
    end

    return M
end
