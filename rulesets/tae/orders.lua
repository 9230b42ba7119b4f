-- TaE orders (tae.md 4): ColonizeMining, Colonize, Move, Attack,
-- Reinforce, all for fleets. Planets take no orders.
--
-- Which fleet takes which order is its queue's allowed list: on a normal
-- turn colonists Colonize (mining robots ColonizeMining), leaders Move,
-- bombers Attack; on a combat turn only the combatants' colonist fleets
-- of the contested type may Reinforce and every other fleet has no
-- order (turn.lua sets the lists). why_not says which rule refused.
--
-- Submission (0-3): the target is a square of the board, no other fleet
-- of the player targets it, the fleet has no order yet and the player
-- has fewer than two orders this turn (two actions a turn); the square
-- must also suit the order now. A refused order gets a Fail saying why
-- (the reference kept it with its target set to 0: fixed). The order is
-- checked again when it runs, since other players act first.
return function(tae)
    local board, objects = tae.board, tae.objects
    local M = {}

    local PARAM = "Star System"

    local function target(ctx, order)
        local p = order.params[PARAM]
        return p and ctx:object(p.objectid)
    end

    local function names(ctx, ids)
        local out = {}
        for _, id in ipairs(ids) do
            local p = ctx:player(id)
            out[#out + 1] = p and p.name or ("player " .. id)
        end
        return table.concat(out, " and ")
    end

    local function combat_text(ctx, c)
        return string.format("%s conflict of %s over %s",
            c.kind, names(ctx, c.players), objects.CATEGORIES[c.ltype])
    end

    local function tell(ctx, player_id, subject, body, refs)
        ctx:message(player_id, subject, body, refs or {})
    end

    local function ref(id)
        return { type = 1, id = id }
    end

    -- The Fail's reason for an order type not allowed on this fleet now.
    local function why_not(order_name)
        return function(ctx, fleet, player_id)
            if ctx.state.game_over then
                return "the game is over"
            end
            local c = ctx.state.combat
            if c then
                if order_name == "Reinforce" then
                    return "this is a combat turn (" .. combat_text(ctx, c)
                           .. "): only the combatants' "
                           .. objects.PTYPES[c.ctype]
                           .. " colonist fleets may Reinforce"
                end
                return order_name .. " is not allowed during a combat "
                       .. "turn (" .. combat_text(ctx, c) .. "): only the "
                       .. "combatants' " .. objects.PTYPES[c.ctype]
                       .. " colonist fleets may give an order, Reinforce"
            end
            local d = fleet.data or {}
            if order_name == "Reinforce" then
                return "Reinforce is only for combat turns"
            elseif order_name == "Colonize" then
                return "Colonize is for merchant, scientist and settler "
                       .. "colonist fleets (mining robots: ColonizeMining)"
            elseif order_name == "ColonizeMining" then
                return "ColonizeMining is for mining colonist fleets "
                       .. "(other colonists: Colonize)"
            elseif order_name == "Move" then
                return "Move is for leader fleets"
            end
            return "Attack is for bomber fleets"
        end
    end

    -- Every order of the player's fleets: { fleet, order }.
    local function player_orders(ctx, player_id)
        local out = {}
        for _, f in ipairs(objects.fleets(ctx, player_id)) do
            local q = ctx:queue(f)
            for _, o in ipairs(q and q.orders or {}) do
                out[#out + 1] = { fleet = f, order = o }
            end
        end
        return out
    end

    -- The submission checks shared by orders 0-3.
    local function shared_check(ctx, fleet, order, player_id)
        if ctx.state.game_over then
            return false, "the game is over"
        end
        local sys = target(ctx, order)
        if not board.is_square(ctx, sys) then
            return false, "the target must be a star system of the board"
        end
        local n = 0
        for _, e in ipairs(player_orders(ctx, fleet.owner)) do
            if e.fleet.id == fleet.id then
                return false, "this fleet already has its order for this "
                              .. "turn"
            end
            local t = e.order.params[PARAM]
            if t and t.objectid == sys.id then
                return false, sys.name .. " is already the target of your "
                              .. "fleet " .. e.fleet.name .. " ("
                              .. e.fleet.id .. ")"
            end
            n = n + 1
        end
        if n >= 2 then
            return false, "you already gave 2 orders this turn (at most 2 "
                          .. "actions a turn)"
        end
        return true, sys
    end

    local function star_param(what)
        return { { name = PARAM, type = "object", validtypes = { 2 },
                   description = what } }
    end

    -- ---------------------------------------------------- Colonize

    local function score(ctx, player_id, cat, n)
        local info = objects.info(ctx, player_id)
        info.scores[cat] = info.scores[cat] + (n or 1)
        ctx:state_changed()
    end
    M.score = score

    -- The leaders on the board of type ltype standing in region r.
    local function leaders_in(ctx, r, ltype)
        local out = {}
        for _, l in ipairs(objects.leaders_on_board(ctx)) do
            if (not ltype or l.data.ptype == ltype) and
               ctx:object(l.parent).data.region == r then
                out[#out + 1] = l
            end
        end
        return out
    end
    M.leaders_in = leaders_in

    local function queue_conflict(ctx, c)
        table.insert(ctx.state.conflicts, c)
        ctx:state_changed()
    end

    local function colonize(ctx, fleet, order)
        local sys = target(ctx, order)
        local mining = fleet.data.ptype == 4
        local ok, why = board.colonisable(ctx, sys, mining)
        if not ok then
            tell(ctx, fleet.owner, "Colonize failed", "Your " .. fleet.name
                 .. " could not settle: " .. why .. ".",
                 { ref(fleet.id) })
            return true
        end
        local t = fleet.data.ptype
        board.add(ctx, sys, 3 + t)
        local regions = board.regions_around(ctx, sys)
        if #regions == 1 then
            local l = leaders_in(ctx, regions[1], t)[1] or
                      leaders_in(ctx, regions[1], 3)[1]
            if l then
                score(ctx, l.owner, t)
            end
        elseif #regions >= 2 then
            local queued = 0
            for lt = 1, 4 do
                local found, ps = {}, {}
                for _, r in ipairs(regions) do
                    local l = leaders_in(ctx, r, lt)[1]
                    if l and #found < 2 then
                        found[#found + 1] = l.id
                        ps[#ps + 1] = l.owner
                    end
                end
                if #found == 2 then
                    queue_conflict(ctx, { kind = "external", ltype = lt,
                        ctype = lt, square = sys.id, leaders = found,
                        players = ps })
                    queued = queued + 1
                end
            end
            if queued > 0 then
                sys.data.pending = queued
                ctx:changed(sys)
            end
        end
        board.rebuild(ctx)
        fleet.data.consumed = true
        ctx:changed(fleet)
        return true
    end

    local function colonize_type(name, mining)
        return {
            name = name,
            description = (mining and "Settle mining robots on an "
                .. "uninhabitable square ('M')" or "Settle merchants, "
                .. "scientists or settlers on an inhabitable square")
                .. ": a square of the board that is not destroyed, holds "
                .. "no colony and no leader. Normal turns only; at most 2 "
                .. "orders a turn, one per fleet, one per target.",
            params = star_param("The square to settle"),
            check = function(ctx, fleet, order, player_id)
                local ok, sys = shared_check(ctx, fleet, order, player_id)
                if not ok then
                    return false, sys
                end
                local fine, why = board.colonisable(ctx, sys, mining)
                if not fine then
                    return false, why
                end
                return true
            end,
            turns = function() return 1 end,
            why_not = why_not(name),
            execute = colonize,
        }
    end

    -- ---------------------------------------------------- Move

    -- Whether the leader may stand on sys (its own square left out).
    local function move_ok(ctx, leader, sys)
        local ok, why = board.colonisable(ctx, sys, false)
        if not ok then
            return false, why
        end
        local regions, seen = {}, {}
        local science = false
        for _, n in ipairs(board.neighbours(ctx, sys)) do
            local own = n.id == leader.parent and not board.colony(ctx, n)
            if not own and n.data.region ~= 0 and not seen[n.data.region] then
                seen[n.data.region] = true
                regions[#regions + 1] = n.data.region
            end
            if board.has(ctx, n, board.TECH) then
                science = true
            end
        end
        if #regions > 1 then
            return false, sys.name .. " borders more than one region"
        end
        if not science then
            return false, sys.name .. " borders no science colony"
        end
        return true
    end
    M.move_ok = move_ok

    local function move(ctx, leader, order)
        local sys = target(ctx, order)
        local from = leader.parent
        if board.is_square(ctx, ctx:object(from)) then
            objects.send_home(ctx, leader)
            board.rebuild(ctx)
        end
        local ok, why = move_ok(ctx, leader, sys)
        if not ok then
            if from ~= leader.parent then
                local back = ctx:object(from)
                ctx:set_parent(leader, back)
                leader.pos = { x = back.pos.x, y = back.pos.y, z = 0 }
                ctx:changed(leader)
                board.rebuild(ctx)
            end
            tell(ctx, leader.owner, "Move failed", "Your " .. leader.name
                 .. " could not move: " .. why .. ".", { ref(leader.id) })
            return true
        end
        local regions = board.regions_around(ctx, sys)
        ctx:set_parent(leader, sys)
        leader.pos = { x = sys.pos.x, y = sys.pos.y, z = 0 }
        ctx:changed(leader)
        if #regions == 1 then
            local other = leaders_in(ctx, regions[1], leader.data.ptype)[1]
            if other and other.id ~= leader.id then
                queue_conflict(ctx, { kind = "internal",
                    ltype = leader.data.ptype, ctype = 2, square = sys.id,
                    leaders = { other.id, leader.id },
                    players = { other.owner, leader.owner } })
            end
        end
        board.rebuild(ctx)
        return true
    end

    -- ---------------------------------------------------- Attack

    local function attack(ctx, bomber, order)
        local sys = target(ctx, order)
        board.add(ctx, sys, board.DESTROYED)
        sys.data.destroyed = 1
        ctx:changed(sys)
        bomber.data.consumed = true
        ctx:changed(bomber)
        return true
    end

    -- ---------------------------------------------------- Reinforce

    local function reinforce(ctx, fleet)
        local c = ctx.state.combat
        if c and fleet.data.kind == "colonist" and
           fleet.data.ptype == c.ctype then
            local k = tostring(fleet.owner)
            if c.strength[k] then
                c.strength[k] = c.strength[k] + 1
                ctx:state_changed()
                fleet.data.consumed = true
                ctx:changed(fleet)
            end
        end
        return true
    end

    M.TYPES = {
        colonize_type("ColonizeMining", true),
        colonize_type("Colonize", false),
        { name = "Move",
          description = "Move a leader to a square that is not destroyed, "
              .. "not uninhabitable, holds no colony and no leader, borders "
              .. "at most one region and borders a science colony. A leader "
              .. "joining a region with a leader of its kind starts an "
              .. "internal conflict. Normal turns only; at most 2 orders a "
              .. "turn.",
          params = star_param("The square to move to"),
          check = function(ctx, fleet, order, player_id)
              local ok, sys = shared_check(ctx, fleet, order, player_id)
              if not ok then
                  return false, sys
              end
              return move_ok(ctx, fleet, sys)
          end,
          turns = function() return 1 end,
          why_not = why_not("Move"),
          execute = move },
        { name = "Attack",
          description = "Bomb a square of the board: it is destroyed for "
              .. "good (nothing settles or moves there; what stands on it "
              .. "stays). The bomber is used up. Normal turns only; at most "
              .. "2 orders a turn.",
          params = star_param("The square to bomb"),
          check = function(ctx, fleet, order, player_id)
              local ok, sys = shared_check(ctx, fleet, order, player_id)
              if not ok then
                  return false, sys
              end
              return true
          end,
          turns = function() return 1 end,
          why_not = why_not("Attack"),
          execute = attack },
        { name = "Reinforce",
          description = "Combat turns only: a combatant's colonist fleet of "
              .. "the contested kind adds 1 to its owner's strength and is "
              .. "used up. Any number a turn.",
          params = {},
          check = function(ctx, fleet)
              if ctx.state.game_over then
                  return false, "the game is over"
              end
              local q = ctx:queue(fleet)
              if q and #q.orders > 0 then
                  return false, "this fleet already has its order for "
                                .. "this turn"
              end
              return true
          end,
          turns = function() return 1 end,
          why_not = why_not("Reinforce"),
          execute = reinforce },
    }

    return M
end
