-- Risk end of turn (risk.md 6), ctx.turn the number of the turn that
-- starts now:
--   1. Colonize: the leading Colonize orders of every planet, all bids
--      resolved together (orders.resolve_bids)
--   2. Reinforce, 3. Move: each planet ascending id, its leading orders
--      of that type
--   4. every order left, front to back (a Colonize here is a bid alone)
--   5. reinforcements: rfc_number x floor(owned / rfc_rate), then the
--      bonus of every constellation one player owns whole
--   6. (everyone sees everything: nothing to do)
--   7. the Year; planets with 0 armies become unowned; Army displays;
--      allowed orders
--   8. players owning nothing are dead; one left, or the last turn
--      (game_length) reached: the game is over
return function(rk)
    local board, orders, rng = rk.board, rk.orders, rk.rng
    local M = {}

    local function leading(ctx, planet, type_name)
        local want = ctx.orders[type_name]
        local q = ctx:queue(planet)
        local out = {}
        for _, o in ipairs(q and q.orders or {}) do
            if o.type ~= want then
                break
            end
            out[#out + 1] = o
        end
        return out
    end

    local function run_leading(ctx, planet, type_name)
        for _ = 1, #leading(ctx, planet, type_name) do
            local o = ctx:first_order(planet)
            if not o or o.type ~= ctx.orders[type_name] then
                break
            end
            ctx:execute_first_order(planet)
        end
    end

    local function phases(ctx, planets)
        local bids = {}
        for _, p in ipairs(planets) do
            for _, o in ipairs(leading(ctx, p, "Colonize")) do
                orders.bids_of(ctx, p, o, bids)
            end
        end
        orders.resolve_bids(ctx, bids)
        for _, p in ipairs(planets) do
            run_leading(ctx, p, "Colonize")
        end
        for _, name in ipairs { "Reinforce", "Move" } do
            for _, p in ipairs(planets) do
                run_leading(ctx, p, name)
            end
        end
        orders.single = true
        for _, p in ipairs(planets) do
            local q = ctx:queue(p)
            for _ = 1, #q.orders do
                if not ctx:first_order(p) then
                    break
                end
                ctx:execute_first_order(p)
            end
        end
        orders.single = nil
    end

    local function reinforcements(ctx, planets)
        local owned = {}
        for _, p in ipairs(planets) do
            if p.owner ~= 0 then
                owned[p.owner] = (owned[p.owner] or 0) + 1
            end
        end
        local lines = {}
        for _, pl in ipairs(ctx:players()) do
            local n = owned[pl.id]
            if n then
                local gain = ctx.settings.risk_rfc_number *
                             math.floor(n / ctx.settings.risk_rfc_rate)
                board.set_pool(ctx, pl.id, board.pool(ctx, pl.id) + gain)
                lines[pl.id] = { string.format("%d armies for your %d "
                                 .. "territories.", gain, n) }
            end
        end
        for _, c in ipairs(board.constellations(ctx)) do
            local owner
            for _, p in ipairs(planets) do
                if p.data.constellation == c.id then
                    if owner == nil then
                        owner = p.owner
                    elseif owner ~= p.owner then
                        owner = 0
                    end
                end
            end
            if owner and owner ~= 0 then
                board.set_pool(ctx, owner, board.pool(ctx, owner) +
                                          c.data.bonus)
                table.insert(lines[owner], string.format("%d armies for "
                             .. "holding all of %s.", c.data.bonus, c.name))
            end
        end
        for id, l in pairs(lines) do
            l[#l + 1] = string.format("Your reinforcement pool holds %d "
                                      .. "armies.", board.pool(ctx, id))
            ctx:message(id, "Reinforcements", table.concat(l, "\n"), {})
        end
    end

    local function once_a_turn(ctx, planets)
        local u = ctx:object(0)
        u.data.turn = ctx.turn
        ctx:changed(u)
        for _, p in ipairs(planets) do
            if p.owner ~= 0 and p.data.armies <= 0 then
                board.set_owner(ctx, p, 0)
                board.set_armies(ctx, p, 0)
            end
            board.refresh(ctx, p)
        end
    end

    -- Scores: territories owned. The end: one player left owning planets
    -- (the last standing wins), or turn game_length reached (the most
    -- territories win; a tie is shared).
    function M.judge(ctx, planets)
        local owned = {}
        for _, p in ipairs(planets) do
            if p.owner ~= 0 then
                owned[p.owner] = (owned[p.owner] or 0) + 1
            end
        end
        local st = ctx.state
        local alive, best = {}, 0
        for _, pl in ipairs(ctx:players()) do
            if pl.id ~= st.guest then
                local n = owned[pl.id] or 0
                if pl.score ~= n or (n == 0 and pl.alive) then
                    pl.score = n
                    if n == 0 then
                        pl.alive = false
                    end
                    ctx:player_changed(pl)
                end
                if n > 0 then
                    alive[#alive + 1] = pl
                    best = math.max(best, n)
                end
            end
        end
        local players = 0
        for _, pl in ipairs(ctx:players()) do
            if pl.id ~= st.guest then
                players = players + 1
            end
        end
        local winners
        if #alive == 1 and players > 1 then
            winners = alive
        elseif #alive == 0 and players > 0 then
            winners = {}          -- nobody holds anything: nobody wins
        elseif ctx.turn >= ctx.settings.game_length then
            winners = {}
            for _, pl in ipairs(alive) do
                if owned[pl.id] == best then
                    winners[#winners + 1] = pl
                end
            end
        end
        if not winners then
            return
        end
        st.game_over = true
        st.winners = {}
        local names = {}
        for _, pl in ipairs(winners) do
            st.winners[#st.winners + 1] = pl.id
            names[#names + 1] = pl.name
        end
        ctx:state_changed()
        local body
        if #winners == 0 then
            body = "No player holds a territory any more: nobody wins."
        elseif #alive == 1 and winners == alive then
            body = names[1] .. " owns every territory left and wins the game."
        else
            body = string.format("Turn %d, the last of the game, is reached: "
                .. "%s %s with %d territories.", ctx.turn,
                table.concat(names, " and "), #names > 1 and "share the win"
                or "wins", best)
        end
        for _, pl in ipairs(ctx:players()) do
            ctx:message(pl.id, "Game over!", body, {})
        end
    end

    function M.turn(ctx)
        local planets = board.planets(ctx)
        if ctx.state.game_over then
            local u = ctx:object(0)
            u.data.turn = ctx.turn
            ctx:changed(u)
            return
        end
        -- (both are set only while this hook runs; a turn that failed
        -- may have left them set)
        orders.single = nil
        local gen = rng.open(ctx)
        orders.gen = gen
        phases(ctx, planets)
        orders.gen = nil
        rng.close(ctx, gen)
        reinforcements(ctx, planets)
        once_a_turn(ctx, planets)
        M.judge(ctx, planets)
        board.refresh_allowed(ctx)
    end

    function M.turn_name(ctx, n)
        if ctx.state and ctx.state.game_over then
            return "Game over"
        end
        if ctx.state and ctx.state.colonize and ctx.state.planets and
           #board.unowned(ctx) > 0 then
            return "Colonize, Reinforce, Move"
        end
        return "Reinforce, Move"
    end

    return M
end
