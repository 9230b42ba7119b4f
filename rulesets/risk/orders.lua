-- Risk orders (risk.md 3): Colonize (bids for unowned planets),
-- Reinforce (armies from the pool), Move (to own planets, unowned ones,
-- or an attack). All complete in the turn they are given; turn.lua runs
-- them in phases by type. Every Fail says why.
return function(rk)
    local board, combat = rk.board, rk.combat
    local M = {}

    -- The generator of the turn being made (turn.lua opens it; it lives
    -- only while the turn hook runs).
    M.gen = nil

    -- A list parameter's selection: one entry per id (a later one
    -- replaces an earlier one), ascending id, no zeros.
    local function selection(list)
        local by_id, ids = {}, {}
        for _, s in ipairs(list and list.selection or {}) do
            if not by_id[s.id] then
                ids[#ids + 1] = s.id
            end
            by_id[s.id] = s.number
        end
        table.sort(ids)
        local out = {}
        for _, id in ipairs(ids) do
            if by_id[id] > 0 then
                out[#out + 1] = { id = id, number = by_id[id] }
            end
        end
        return out
    end
    M.selection = selection

    -- Most armies a planet may send or bid: armies + pool - 1 (the pool
    -- is placed before moves are made).
    local function most(ctx, planet)
        return math.max(planet.data.armies +
                        board.pool(ctx, planet.owner) - 1, 0)
    end

    -- A listed number clamped as the notes do: n >= armies gives armies
    -- - 1 (never below 0: the reference moves n armies off a planet with
    -- none, Quirk fixed).
    function M.clamp(n, armies)
        if n >= armies then
            n = armies - 1
        end
        return math.max(n, 0)
    end

    local function over(ctx)
        if ctx.state.game_over then
            return "The game is over: no more orders."
        end
    end

    local function msg(ctx, player_id, subject, body, refs)
        if player_id ~= 0 then
            ctx:message(player_id, subject, body, refs)
        end
    end

    -- ---------------------------------------------------- Colonize

    local function colonize_why_not(ctx)
        local why = over(ctx)
        if why then
            return why
        end
        if not ctx.state.colonize then
            return "Colonize is off in this game (risk_allow_colonize; "
                   .. "territories are handed out at random): claim "
                   .. "unowned planets with Move"
        end
        return "Colonize is over: every territory is owned"
    end

    -- Resolves bids { { planet, target = id, amount } } (risk.md 3): for
    -- each target still unowned, ascending id, every bid clamped to its
    -- planet's armies - 1 now; the highest wins (ties: the lowest planet
    -- id), the winner moves its bid there. Every bidder is told.
    function M.resolve_bids(ctx, bids)
        local by_target, targets = {}, {}
        for _, b in ipairs(bids) do
            if not by_target[b.target] then
                by_target[b.target] = {}
                targets[#targets + 1] = b.target
            end
            table.insert(by_target[b.target], b)
        end
        table.sort(targets)
        for _, tid in ipairs(targets) do
            local target = ctx:object(tid)
            local list = by_target[tid]
            local best, best_n
            if target and target.owner == 0 then
                for _, b in ipairs(list) do
                    local p = b.planet
                    b.n = p.owner ~= 0 and M.clamp(b.amount, p.data.armies)
                          or 0
                    if b.n > 0 and (not best or b.n > best_n or
                       (b.n == best_n and p.id < best.planet.id)) then
                        best, best_n = b, b.n
                    end
                end
            end
            if best then
                local p = best.planet
                board.set_owner(ctx, target, p.owner)
                board.set_armies(ctx, target, best_n)
                board.set_armies(ctx, p, p.data.armies - best_n)
            end
            for _, b in ipairs(list) do
                local refs = { { type = 1, id = b.planet.id },
                               { type = 1, id = tid } }
                local tname = target and target.name or ("planet " .. tid)
                if b == best then
                    msg(ctx, b.planet.owner, "Colonize bid accepted",
                        string.format("Your bid of %d armies from %s won "
                        .. "%s.", best_n, b.planet.name, tname), refs)
                else
                    local why
                    if not target or target.owner ~= 0 and not best then
                        why = "it is already owned"
                    elseif best then
                        why = string.format("%s bid more (%d)",
                                            best.planet.name, best_n)
                    else
                        why = "the bid came to 0 armies"
                    end
                    msg(ctx, b.planet.owner, "Colonize bid rejected",
                        string.format("Your bid from %s for %s was "
                        .. "rejected: %s.", b.planet.name, tname, why), refs)
                end
            end
        end
    end

    -- The bids of one Colonize order.
    function M.bids_of(ctx, planet, order, out)
        for _, s in ipairs(selection(order.params.Planet)) do
            out[#out + 1] = { planet = planet, target = s.id,
                              amount = s.number }
        end
        return out
    end

    M.colonize = {
        name = "Colonize",
        description = "Bid armies of this planet for unowned planets: the "
                      .. "highest bid for each takes it. Only while "
                      .. "colonising is on and some planet is unowned; run "
                      .. "first in the turn (before Reinforce and Move)",
        params = { { name = "Planet", type = "list",
            description = "Unowned planets and the armies bid for each",
            choices = function(ctx, planet)
                local out = {}
                for _, p in ipairs(board.unowned(ctx)) do
                    out[#out + 1] = { id = p.id, name = p.name,
                                      maxnum = most(ctx, planet) }
                end
                return out
            end } },
        why_not = colonize_why_not,
        check = function(ctx, planet, order, player_id)
            if not board.colonize_open(ctx) then
                return false, colonize_why_not(ctx)
            end
            -- An empty list is accepted (clients insert an order, then
            -- fill it in from its choices); it bids nothing.
            local sel = selection(order.params.Planet)
            for _, s in ipairs(sel) do
                local t = ctx:object(s.id)
                if not board.is_planet(ctx, t) then
                    return false, "Object " .. s.id .. " is not a planet."
                end
                if t.owner ~= 0 then
                    return false, t.name .. " is already owned."
                end
                if s.number > most(ctx, planet) then
                    return false, string.format("At most %d armies can be "
                        .. "bid from %s.", most(ctx, planet), planet.name)
                end
            end
            order.params.Planet = { selection = sel }
            return true
        end,
        turns = function() return 1 end,
        -- The bids are resolved by turn.lua for all planets at once.
        execute = function(ctx, planet, order)
            if M.single then
                M.resolve_bids(ctx, M.bids_of(ctx, planet, order, {}))
            end
            return true
        end,
    }

    -- ---------------------------------------------------- Reinforce

    M.reinforce = {
        name = "Reinforce",
        description = "Place armies from your reinforcement pool on this "
                      .. "planet (run after Colonize and before Move)",
        params = { { name = "Units", type = "time", maxtime = -1,
                     description = "How many armies to place" } },
        why_not = function(ctx)
            return over(ctx) or "Reinforce is not allowed now"
        end,
        check = function(ctx, planet, order, player_id)
            local why = over(ctx)
            if why then
                return false, why
            end
            -- 0 is accepted (clients insert an order, then set it).
            local n = order.params.Units and order.params.Units.turns or 0
            local pool = board.pool(ctx, player_id)
            if n < 0 then
                return false, "A number of armies is 0 or more."
            end
            if n > 0 and pool <= 0 then
                return false, "Your reinforcement pool is empty: it fills "
                              .. "at the end of each turn."
            end
            if n > pool then
                return false, string.format("Your pool holds only %d "
                                            .. "armies.", pool)
            end
            return true
        end,
        turns = function() return 1 end,
        execute = function(ctx, planet, order)
            local owner = planet.owner
            if owner == 0 then
                return true
            end
            local pool = board.pool(ctx, owner)
            local n = math.min(order.params.Units.turns, pool)
            if n <= 0 then
                return true
            end
            board.set_pool(ctx, owner, pool - n)
            board.set_armies(ctx, planet, planet.data.armies + n)
            msg(ctx, owner, "Reinforcements placed", string.format(
                "%d armies placed on %s; %d left in your pool.", n,
                planet.name, pool - n), { { type = 1, id = planet.id } })
            return true
        end,
    }

    -- ---------------------------------------------------- Move

    local function move_one(ctx, planet, target, n0, lines)
        local n = M.clamp(n0, planet.data.armies)
        if n == 0 then
            lines[#lines + 1] = string.format("%s: not sent, %s has too few "
                .. "armies (one always stays).", target.name, planet.name)
            return
        end
        if target.owner == planet.owner then
            board.set_armies(ctx, planet, planet.data.armies - n)
            board.set_armies(ctx, target, target.data.armies + n)
            lines[#lines + 1] = string.format("%d armies moved to %s.", n,
                                              target.name)
        elseif target.owner == 0 then
            board.set_armies(ctx, planet, planet.data.armies - n)
            board.set_owner(ctx, target, planet.owner)
            board.set_armies(ctx, target, target.data.armies + n)
            lines[#lines + 1] = string.format("%d armies occupied %s.", n,
                                              target.name)
        else
            local defender = target.owner
            local r = combat.attack(ctx, assert(M.gen, "no generator"),
                                    planet, target, n)
            if #r.att == 0 and r.conquered then
                lines[#lines + 1] = string.format("%d armies took %s, "
                    .. "emptied earlier this turn, without a fight.", n,
                    target.name)
                msg(ctx, defender, "You have been attacked!", string.format(
                    "%s took %s, which had no armies left.",
                    ctx:player(planet.owner).name, target.name),
                    { { type = 1, id = target.id } })
                return
            end
            if #r.att == 0 then
                lines[#lines + 1] = string.format("%s: no attack, too few "
                    .. "armies to roll a die.", target.name)
                return
            end
            local text = string.format("Attack on %s with %d armies: "
                .. "attacker dice %s, defender dice %s; attacker lost %d, "
                .. "defender lost %d.", target.name, n,
                table.concat(r.att, " "), table.concat(r.def, " "),
                r.att_lost, r.def_lost)
            if r.conquered then
                text = text .. string.format(" %s conquered with %d "
                                             .. "armies.", target.name,
                                             r.units)
            end
            lines[#lines + 1] = text
            msg(ctx, defender, "You have been attacked!",
                string.format("%s attacked %s from %s: attacker dice %s, "
                .. "defender dice %s; you lost %d armies, the attacker %d.%s"
                .. "\n\n%s", ctx:player(planet.owner).name, target.name,
                planet.name, table.concat(r.att, " "),
                table.concat(r.def, " "), r.def_lost, r.att_lost,
                r.conquered and (" " .. target.name .. " is lost.") or "",
                ctx:battle_link(r.battle)),
                { { type = 1, id = target.id },
                  ctx:battle_reference(r.battle) })
            lines.battles = lines.battles or {}
            table.insert(lines.battles, r.battle)
        end
    end

    M.move = {
        name = "Move",
        description = "Send armies along wormholes: to your own planets, "
                      .. "onto unowned ones, or attack enemy ones (one "
                      .. "exchange of dice per turn). One army always "
                      .. "stays; run after Colonize and Reinforce",
        params = { { name = "Planet", type = "list",
            description = "Adjacent planets and the armies sent to each",
            choices = function(ctx, planet)
                local out = {}
                for _, id in ipairs(planet.data.adjacent or {}) do
                    local p = ctx:object(id)
                    out[#out + 1] = { id = id, name = p.name,
                                      maxnum = most(ctx, planet) }
                end
                return out
            end } },
        why_not = function(ctx)
            return over(ctx) or "Move is not allowed now"
        end,
        check = function(ctx, planet, order, player_id)
            local why = over(ctx)
            if why then
                return false, why
            end
            -- An empty list is accepted (filled in later); it moves
            -- nothing.
            local sel = selection(order.params.Planet)
            for _, s in ipairs(sel) do
                if not board.adjacent(planet, s.id) then
                    local t = ctx:object(s.id)
                    return false, string.format("%s is not linked to %s by "
                        .. "a wormhole.", t and t.name or ("Object " .. s.id),
                        planet.name)
                end
                if s.number > most(ctx, planet) then
                    return false, string.format("At most %d armies can "
                        .. "leave %s.", most(ctx, planet), planet.name)
                end
            end
            order.params.Planet = { selection = sel }
            return true
        end,
        turns = function() return 1 end,
        execute = function(ctx, planet, order)
            local lines = {}
            for _, s in ipairs(order.params.Planet.selection) do
                if planet.owner == 0 then
                    break
                end
                move_one(ctx, planet, ctx:object(s.id), s.number, lines)
            end
            if planet.owner ~= 0 and #lines > 0 then
                local refs = { { type = 1, id = planet.id } }
                local body = table.concat(lines, "\n")
                for _, id in ipairs(lines.battles or {}) do
                    refs[#refs + 1] = ctx:battle_reference(id)
                    body = body .. "\n" .. ctx:battle_link(id)
                end
                msg(ctx, planet.owner, "Move order(s) via " .. planet.name,
                    body, refs)
            end
            return true
        end,
    }

    M.TYPES = { M.colonize, M.reinforce, M.move }

    return M
end
