-- Risk players (risk.md 5): the cap and its guest exception, the
-- starting pool and territories, the welcome message.
return function(rk)
    local board, rng = rk.board, rk.rng
    local M = {}

    local GUEST = "guest"

    function M.join_allowed(ctx, name)
        local st = ctx.state
        if st.game_over then
            return false, "The game is over."
        end
        if name == GUEST then
            return true
        end
        local n = 0
        for _, pl in ipairs(ctx:players()) do
            if pl.name ~= GUEST then
                n = n + 1
            end
        end
        local max = ctx.settings.max_players
        if n >= max then
            return false, string.format("The game is full: it has its %d "
                .. "players (only a player named guest may still join, to "
                .. "watch).", max)
        end
        if #board.unowned(ctx) == 0 then
            return false, "Every territory is owned: there is no room for "
                          .. "another player."
        end
        return true
    end

    local function welcome(ctx, player, given)
        local s = ctx.settings
        local names = {}
        for _, p in ipairs(given) do
            names[#names + 1] = p.name
        end
        local lines = {
            "Welcome to Risk, " .. player.name .. ".",
            #given > 0 and ("Your territories: " .. table.concat(names, ", ")
                            .. ".") or "You watch: you own nothing.",
            "",
            "Each turn runs the orders by type: first every Colonize (bids "
            .. "for unowned planets: the highest bid wins), then every "
            .. "Reinforce (armies from your pool), then every Move (along "
            .. "wormholes; against an enemy planet one exchange of dice, "
            .. "up to 3 attacking dice against 1 or 2), then anything left.",
            string.format("At the end of each turn you get %d armies for "
                .. "every %d territories you own, and the bonus of each "
                .. "constellation you own whole.", s.risk_rfc_number,
                s.risk_rfc_rate),
            "A planet left with no armies becomes unowned. The last player "
            .. "owning planets wins; after turn " .. s.game_length
            .. " the most territories win.",
        }
        local refs = {}
        for _, p in ipairs(given) do
            refs[#refs + 1] = { type = 1, id = p.id }
        end
        ctx:message(player.id, "Welcome to Risk", table.concat(lines, "\n"),
                    refs)
    end

    function M.player_joined(ctx, player)
        local st = ctx.state
        if player.name == GUEST then
            st.guest = player.id
            ctx:state_changed()
            welcome(ctx, player, {})
            return
        end
        local s = ctx.settings
        board.set_pool(ctx, player.id, s.risk_rfc_start)
        local count = 1
        if s.risk_randomly_assign then
            count = math.floor(st.planets / s.max_players)
        end
        local given = rng.with(ctx, function(g)
            local out = {}
            for _ = 1, count do
                local free = board.unowned(ctx)
                if #free == 0 then
                    break
                end
                local p = free[g:range(0, #free - 1) + 1]
                board.set_owner(ctx, p, player.id)
                board.set_armies(ctx, p, s.risk_default_planet_armies)
                out[#out + 1] = p
            end
            return out
        end)
        table.sort(given, function(a, b) return a.id < b.id end)
        board.refresh_allowed(ctx)
        welcome(ctx, player, given)
    end

    return M
end
