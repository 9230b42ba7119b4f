-- Risk randomness (minisec.md 1 for MT19937 and range()). One game
-- generator, seeded with the setting risk_debug_random_seed (-1: from
-- the clock), its state in ctx.state.rng so that a restarted server goes
-- on with the same sequence (the reference's debug generator lives in
-- memory only). A hook that draws opens it, draws and closes it, which
-- writes the state back; a hook that fails leaves the stored state as it
-- was.
return function(rk)
    local M = {}

    function M.create(ctx)
        local seed = ctx.settings.risk_debug_random_seed
        if seed < 0 then
            seed = (os.time() + math.floor(os.clock() * 1000000)) %
                   4294967296
        end
        ctx.state.rng = ctx.random.new(seed % 4294967296):state()
        ctx.state.seed = seed
        ctx:state_changed()
    end

    function M.open(ctx)
        return ctx.random.restore(ctx.state.rng)
    end

    function M.close(ctx, gen)
        ctx.state.rng = gen:state()
        ctx:state_changed()
    end

    function M.with(ctx, fn)
        local gen = M.open(ctx)
        local result = fn(gen)
        M.close(ctx, gen)
        return result
    end

    return M
end
