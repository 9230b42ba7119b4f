-- TaE end of turn (tae.md 7, 8), ctx.turn being the number of the turn
-- that starts now.
--
-- Normal turn: the players act in rotation from ctx.state.player_turn,
-- each player's fleets in ascending id running their order; orders left
-- over are dropped (each order is for one turn); artifacts are awarded;
-- fewer than 3 artifact squares end the game; the rotation advances; used
-- fleets go; colonist fleets are topped up to 6 (an empty bag ends the
-- game); "Turn complete" and "Turn Order". If a conflict was queued the
-- next turn is a combat turn (ctx.state.combat).
--
-- Combat turn: Reinforce orders run, the conflict is decided, then the
-- next queued conflict still valid is the next combat turn, or the game
-- goes back to normal turns; "Combat Complete!" and "Turn complete".
--
-- ctx.state.conflicts: the queue, each { kind = "internal" or
-- "external", ltype (leader type), ctype (contested colonist type),
-- square (where it started), leaders = { fleet ids }, players = { their
-- owners } }; ctx.state.combat: the one being fought, with strength = {
-- [player id] = n }.
return function(tae)
    local board, objects, orders = tae.board, tae.objects, tae.orders
    local M = {}

    local function order_of_play(ctx)
        local ids = {}
        for _, p in ipairs(ctx:players()) do
            if objects.info(ctx, p.id) then
                ids[#ids + 1] = p.id
            end
        end
        table.sort(ids)
        local out = {}
        local n = #ids
        for i = 0, n - 1 do
            out[#out + 1] = ids[(ctx.state.player_turn + i) % n + 1]
        end
        return out
    end
    M.order_of_play = order_of_play

    local function name(ctx, id)
        local p = ctx:player(id)
        return p and p.name or ("player " .. id)
    end

    local function broadcast(ctx, subject, body)
        for _, p in ipairs(ctx:players()) do
            ctx:message(p.id, subject, body, {})
        end
    end

    local function weakest(scores)
        local low = scores[1]
        for i = 2, 4 do
            low = math.min(low, scores[i])
        end
        return low
    end

    local function update_scores(ctx)
        for _, p in ipairs(ctx:players()) do
            local info = objects.info(ctx, p.id)
            if info and p.score ~= weakest(info.scores) then
                p.score = weakest(info.scores)
                ctx:player_changed(p)
            end
        end
    end

    local function score_text(ctx)
        local lines = {}
        for _, p in ipairs(ctx:players()) do
            local info = objects.info(ctx, p.id)
            if info then
                local parts = {}
                for i, c in ipairs(objects.CATEGORIES) do
                    parts[i] = c .. " " .. info.scores[i]
                end
                lines[#lines + 1] = p.name .. ": " .. table.concat(parts, ", ")
            end
        end
        return table.concat(lines, "\n")
    end

    -- Sets every fleet's allowed orders for the coming turn.
    local function set_allowed(ctx)
        local c = ctx.state.combat
        for f in ctx:each_object("Fleet") do
            local allowed
            if ctx.state.game_over then
                allowed = {}
            elseif c then
                allowed = {}
                if f.data.kind == "colonist" and f.data.ptype == c.ctype and
                   c.strength[tostring(f.owner)] then
                    allowed = { "Reinforce" }
                end
            else
                allowed = objects.normal_orders(f)
            end
            ctx:set_allowed(f, allowed)
        end
    end

    local function clear_orders(ctx)
        for f in ctx:each_object("Fleet") do
            ctx:clear_orders(f)
        end
    end

    local function remove_consumed(ctx)
        local gone = {}
        for f in ctx:each_object("Fleet") do
            if f.data.consumed then
                gone[#gone + 1] = f
            end
        end
        for _, f in ipairs(gone) do
            ctx:remove_object(f)
        end
    end

    local function run_orders(ctx)
        for _, pid in ipairs(order_of_play(ctx)) do
            for _, f in ipairs(objects.fleets(ctx, pid)) do
                if ctx:first_order(f) then
                    ctx:execute_first_order(f)
                end
            end
        end
        clear_orders(ctx)
    end

    -- ---------------------------------------------------- artifacts

    -- In a region with two or more artifact squares the merchant leader's
    -- owner takes all but the lowest-id one (+1 Alien Artifacts each).
    function M.award_artifacts(ctx)
        local by_region, list = {}, {}
        for _, sys in ipairs(board.artifacts(ctx)) do
            local r = sys.data.region
            if r ~= 0 then
                if not by_region[r] then
                    by_region[r] = {}
                    list[#list + 1] = r
                end
                table.insert(by_region[r], sys)
            end
        end
        table.sort(list)
        for _, r in ipairs(list) do
            local squares = by_region[r]
            local merchant = orders.leaders_in(ctx, r, 1)[1]
            if #squares >= 2 and merchant then
                for i = 2, #squares do
                    board.remove(ctx, squares[i], board.ARTIFACT)
                end
                orders.score(ctx, merchant.owner, 5, #squares - 1)
                ctx:message(merchant.owner, "Alien Artifacts",
                    string.format("Your Merchant Leader collected %d alien "
                        .. "artifact(s) in region %d.", #squares - 1, r), {})
            end
        end
    end

    -- ---------------------------------------------------- conflicts

    local function leader(ctx, id)
        local l = ctx:object(id)
        if l and l.type == ctx.types.Fleet and not l.data.consumed and
           board.is_square(ctx, ctx:object(l.parent)) then
            return l
        end
        return nil
    end

    local function region_of(ctx, l)
        return ctx:object(l.parent).data.region
    end

    local function borders(ctx, sys, r)
        for _, n in ipairs(board.neighbours(ctx, sys)) do
            if n.data.region == r then
                return true
            end
        end
        return false
    end

    local function valid(ctx, c)
        local a, b = leader(ctx, c.leaders[1]), leader(ctx, c.leaders[2])
        if not a or not b then
            return false
        end
        local ra, rb = region_of(ctx, a), region_of(ctx, b)
        if ra == 0 or rb == 0 then
            return false
        end
        if c.kind == "internal" then
            return ra == rb
        end
        local sq = ctx:object(c.square)
        return ra ~= rb and borders(ctx, sq, ra) and borders(ctx, sq, rb)
    end

    local function colonies_of(ctx, r, marker)
        local out = {}
        for _, sys in ipairs(board.region_squares(ctx, r)) do
            if board.has(ctx, sys, marker) then
                out[#out + 1] = sys
            end
        end
        return out
    end

    -- The strength a leader starts a conflict with.
    function M.base_strength(ctx, c, l)
        local n = 0
        if c.kind == "internal" then
            for _, s in ipairs(board.neighbours(ctx, ctx:object(l.parent))) do
                if board.has(ctx, s, board.TECH) then
                    n = n + 1
                end
            end
        else
            n = #colonies_of(ctx, region_of(ctx, l), 3 + c.ctype)
        end
        return n
    end

    local function release(ctx, c)
        local sq = ctx:object(c.square)
        if sq and sq.data.pending then
            sq.data.pending = sq.data.pending - 1
            if sq.data.pending <= 0 then
                sq.data.pending = nil
            end
            ctx:changed(sq)
        end
    end

    -- Takes the next valid conflict off the queue as the coming combat
    -- turn; false when there is none.
    local function start_next(ctx)
        local q = ctx.state.conflicts
        while #q > 0 do
            local c = table.remove(q, 1)
            ctx:state_changed()
            if valid(ctx, c) then
                c.strength = {}
                for i = 1, 2 do
                    local l = ctx:object(c.leaders[i])
                    c.strength[tostring(c.players[i])] =
                        M.base_strength(ctx, c, l)
                end
                ctx.state.combat = c
                broadcast(ctx, "COMBAT!", string.format(
                    "Turn %d is a combat turn: %s conflict between %s's and "
                    .. "%s's %s over %s (strengths %d and %d). The "
                    .. "combatants' %s colonist fleets may Reinforce; no "
                    .. "other orders this turn.", ctx.turn, c.kind,
                    name(ctx, c.players[1]), name(ctx, c.players[2]),
                    objects.LEADER_TITLES[c.ltype],
                    objects.CATEGORIES[c.ctype],
                    c.strength[tostring(c.players[1])],
                    c.strength[tostring(c.players[2])],
                    objects.PTYPES[c.ctype]))
                return true
            end
            release(ctx, c)
        end
        ctx.state.combat = nil
        ctx:state_changed()
        board.rebuild(ctx)
        return false
    end

    -- Leaders with no science colony next to them go home.
    local function strand_leaders(ctx)
        for _, l in ipairs(objects.leaders_on_board(ctx)) do
            local ok = false
            for _, s in ipairs(board.neighbours(ctx, ctx:object(l.parent))) do
                if board.has(ctx, s, board.TECH) then
                    ok = true
                end
            end
            if not ok then
                objects.send_home(ctx, l)
            end
        end
        board.rebuild(ctx)
    end

    -- Decides the combat; returns the text of the outcome.
    function M.resolve(ctx, c)
        local p1, p2 = c.players[1], c.players[2]
        local s1, s2 = c.strength[tostring(p1)], c.strength[tostring(p2)]
        local wi
        if s1 ~= s2 then
            wi = s1 > s2 and 1 or 2
        else
            wi = p1 < p2 and 1 or 2
        end
        local li = 3 - wi
        local winner, loser = c.players[wi], c.players[li]
        local lost = ctx:object(c.leaders[li])
        local text
        if c.kind == "internal" then
            objects.send_home(ctx, lost)
            orders.score(ctx, winner, 2)
            release(ctx, c)
            board.rebuild(ctx)
            text = string.format("%s won the internal conflict (%d to %d): "
                .. "+1 Technology; %s's %s went home.", name(ctx, winner),
                c.strength[tostring(winner)], c.strength[tostring(loser)],
                name(ctx, loser), lost.name)
        else
            local removed = 0
            for _, sys in ipairs(colonies_of(ctx, region_of(ctx, lost),
                                             3 + c.ctype)) do
                if not board.has(ctx, sys, board.ARTIFACT) then
                    board.remove(ctx, sys, 3 + c.ctype)
                    removed = removed + 1
                end
            end
            objects.send_home(ctx, lost)
            orders.score(ctx, winner, c.ctype, 1 + removed)
            release(ctx, c)
            board.rebuild(ctx)
            strand_leaders(ctx)
            text = string.format("%s won the external conflict over %s (%d "
                .. "to %d): +%d %s; %s's %s went home and %d colonies were "
                .. "removed.", name(ctx, winner), objects.CATEGORIES[c.ctype],
                c.strength[tostring(winner)], c.strength[tostring(loser)],
                1 + removed, objects.CATEGORIES[c.ctype], name(ctx, loser),
                lost.name, removed)
        end
        return text
    end

    -- ---------------------------------------------------- game over

    local function game_over(ctx)
        ctx.state.game_over = true
        ctx.state.combat = nil
        ctx.state.conflicts = {}
        ctx:state_changed()
        local finals, best = {}, nil
        local ids = {}
        for _, p in ipairs(ctx:players()) do
            if objects.info(ctx, p.id) then
                ids[#ids + 1] = p.id
            end
        end
        table.sort(ids)
        for _, id in ipairs(ids) do
            local s = objects.info(ctx, id).scores
            local cats = { s[1], s[2], s[3], s[4] }
            for _ = 1, s[5] do
                local low = 1
                for i = 2, 4 do
                    if cats[i] < cats[low] then
                        low = i
                    end
                end
                cats[low] = cats[low] + 1
            end
            finals[id] = weakest(cats)
            if not best or finals[id] > finals[best] then
                best = id
            end
        end
        ctx.state.final = {}
        local lines = {}
        for _, id in ipairs(ids) do
            ctx.state.final[tostring(id)] = finals[id]
            lines[#lines + 1] = name(ctx, id) .. ": " .. finals[id]
            local p = ctx:player(id)
            p.score = finals[id]
            p.alive = false
            ctx:player_changed(p)
        end
        ctx.state.winner = best
        broadcast(ctx, "GAME OVER!", "Final scores (the weakest category, "
            .. "artifacts added to it one by one):\n" .. table.concat(lines,
            "\n") .. "\n" .. (best and (name(ctx, best) .. " wins.") or ""))
        clear_orders(ctx)
        set_allowed(ctx)
    end

    -- ---------------------------------------------------- the turn

    local function set_year(ctx)
        local u = ctx:object(0)
        if u and u.data.year ~= ctx.turn then
            u.data.year = ctx.turn
            ctx:changed(u)
        end
    end

    local function top_up_all(ctx)
        for _, pid in ipairs(order_of_play(ctx)) do
            objects.top_up(ctx, pid)
        end
    end

    local function combat_turn(ctx)
        local c = ctx.state.combat
        run_orders(ctx)
        c = ctx.state.combat
        local text = M.resolve(ctx, c)
        ctx.state.combat = nil
        ctx:state_changed()
        remove_consumed(ctx)
        set_year(ctx)
        top_up_all(ctx)
        broadcast(ctx, "Combat Complete!", text)
        start_next(ctx)
        update_scores(ctx)
        broadcast(ctx, "Turn complete", score_text(ctx))
    end

    local function normal_turn(ctx)
        run_orders(ctx)
        M.award_artifacts(ctx)
        local over = #board.artifacts(ctx) < 3
        ctx.state.player_turn = ctx.state.player_turn + 1
        ctx:state_changed()
        remove_consumed(ctx)
        set_year(ctx)
        top_up_all(ctx)
        update_scores(ctx)
        broadcast(ctx, "Turn complete", score_text(ctx))
        local names = {}
        for _, id in ipairs(order_of_play(ctx)) do
            names[#names + 1] = name(ctx, id)
        end
        broadcast(ctx, "Turn Order", "Order of play this turn: "
                  .. table.concat(names, ", "))
        return over
    end

    function M.turn(ctx)
        if ctx.state.game_over then
            clear_orders(ctx)
            set_year(ctx)
            return
        end
        local over
        if ctx.state.combat then
            combat_turn(ctx)
        else
            over = normal_turn(ctx)
            if not over and #ctx.state.conflicts > 0 then
                start_next(ctx)
            end
        end
        if over or ctx.state.bag_empty then
            game_over(ctx)
            return
        end
        set_allowed(ctx)
    end

    function M.turn_name(ctx, n)
        if ctx.state.game_over then
            return "Game over"
        elseif ctx.state.combat then
            return "Combat turn"
        end
        return "Turn " .. (n or ctx.turn)
    end

    return M
end
