-- Risk dice combat (risk.md 3, Move against an enemy planet): one
-- exchange of dice per Move order and target, recorded as a battle.
--
-- dmg = risk_attack_dmg. Attacker dice = min(3, floor((origin armies -
-- 1) / dmg), moving units); defender dice = 2 when floor(defending armies
-- / dmg) >= 3, else 1, +1 when the target's own queue has a Move back at
-- the origin and it holds more than 1 army. Every die is range(1, 6),
-- the attacker's first; both sorted descending and compared pairwise:
-- attacker strictly higher, the defender loses dmg armies, else the
-- attacker does. The attacker's losses leave the origin (the reference
-- takes them from the moving units only, so the origin never lost any:
-- Quirk fixed, README).
return function(rk)
    local board = rk.board
    local M = {}

    local function counter_move(ctx, target, origin)
        local q = ctx:queue(target)
        for _, o in ipairs(q and q.orders or {}) do
            if o.type == ctx.orders.Move then
                local p = o.params.Planet
                for _, s in ipairs(p and p.selection or {}) do
                    if s.id == origin.id and s.number > 0 then
                        return true
                    end
                end
            end
        end
        return false
    end

    local function dice(gen, n)
        local out = {}
        for i = 1, n do
            out[i] = gen:range(1, 6)
        end
        return out
    end

    local function sorted_desc(list)
        local out = { unpack(list) }
        table.sort(out, function(a, b) return a > b end)
        return out
    end

    -- The dice counts of an attack (also shown to tests and clients).
    function M.dice_counts(ctx, origin, target, n)
        local dmg = ctx.settings.risk_attack_dmg
        local att = math.min(3, math.floor((origin.data.armies - 1) / dmg), n)
        local def = target.data.armies
        local dd = math.floor(def / dmg) >= 3 and 2 or 1
        if def > 1 and counter_move(ctx, target, origin) then
            dd = dd + 1
        end
        return math.max(att, 0), dd
    end

    local function name_of(ctx, id)
        local p = ctx:player(id)
        return p and p.name or ("player " .. id)
    end

    -- One exchange: n units from origin attack target. Returns a result
    -- table { att, def, att_lost, def_lost, conquered, units, battle }.
    function M.attack(ctx, gen, origin, target, n)
        local dmg = ctx.settings.risk_attack_dmg
        local na, nd = M.dice_counts(ctx, origin, target, n)
        local r = { att = {}, def = {}, att_lost = 0, def_lost = 0,
                    conquered = false, units = n }
        if na == 0 then
            return r
        end
        -- A planet emptied earlier in this turn (it becomes unowned at
        -- the end of the turn) is taken without dice (the reference rolls
        -- against 0 armies).
        if target.data.armies == 0 then
            r.conquered = true
            board.set_owner(ctx, target, origin.owner)
            board.set_armies(ctx, target, n)
            board.set_armies(ctx, origin, origin.data.armies - n)
            return r
        end
        r.att = dice(gen, na)
        r.def = dice(gen, nd)
        local a, d = sorted_desc(r.att), sorted_desc(r.def)
        local attacker, defender = origin.owner, target.owner
        local b = ctx:battle { media = "risk", where = target,
            title = "Battle at " .. target.name }
        local sa = b:side(name_of(ctx, attacker), attacker)
        local sd = b:side(name_of(ctx, defender), defender)
        local ea, ed = "planet-" .. origin.id .. "-0",
                       "planet-" .. target.id .. "-0"
        b:entity(sa, ea, name_of(ctx, attacker) .. "'s armies from "
                 .. origin.name, "planet")
        b:entity(sd, ed, name_of(ctx, defender) .. "'s armies on "
                 .. target.name, "planet")
        b:round()
        b:log(string.format("%s attacks %s with %d armies: dice %s "
              .. "against %s.", origin.name, target.name, n,
              table.concat(a, ", "), table.concat(d, ", ")))
        for i = 1, math.min(#a, #d) do
            if a[i] > d[i] then
                r.def_lost = r.def_lost + dmg
                b:fire(ea, ed)
                b:damage(ed, dmg)
            else
                r.att_lost = r.att_lost + dmg
                b:fire(ed, ea)
                b:damage(ea, dmg)
            end
        end
        r.def_lost = math.min(r.def_lost, target.data.armies)
        r.att_lost = math.min(r.att_lost, n)
        board.set_armies(ctx, target, target.data.armies - r.def_lost)
        board.set_armies(ctx, origin, origin.data.armies - r.att_lost)
        r.units = n - r.att_lost
        if target.data.armies == 0 and r.units > 0 then
            r.conquered = true
            b:death(ed)
            board.set_owner(ctx, target, attacker)
            board.set_armies(ctx, target, r.units)
            board.set_armies(ctx, origin, origin.data.armies - r.units)
        end
        r.battle = b:save()
        return r
    end

    return M
end
