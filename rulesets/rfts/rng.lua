-- RFTS randomness (rfts.md: the game generator only; minisec.md 1.1 for
-- MT19937 and range()). One generator, seeded with the setting
-- random_seed (-1: from the clock), its state in ctx.state.rng so that a
-- restarted server goes on with the same sequence. A hook that draws
-- opens it, draws and closes it (writing the state back); a hook that
-- fails leaves the stored state as it was.
return function(rf)
    local M = {}

    local open_gen     -- the generator of the hook running now

    function M.create(ctx)
        local seed = ctx.settings.random_seed
        if seed < 0 then
            seed = (os.time() + math.floor(os.clock() * 1000000)) %
                   4294967296
        end
        ctx.state.rng = ctx.random.new(seed % 4294967296):state()
        ctx.state.seed = seed
        ctx:state_changed()
    end

    function M.open(ctx)
        open_gen = ctx.random.restore(ctx.state.rng)
        return open_gen
    end

    function M.close(ctx, gen)
        ctx.state.rng = gen:state()
        ctx:state_changed()
        if open_gen == gen then
            open_gen = nil
        end
    end

    function M.with(ctx, fn)
        local gen = M.open(ctx)
        local result = fn(gen)
        M.close(ctx, gen)
        return result
    end

    -- The generator of the hook running now (orders run inside the turn).
    function M.active()
        return assert(open_gen, "RFTS: no generator open")
    end

    -- real2 of the reference: [0, 1).
    function M.real2(gen)
        return gen:int32() / 4294967296
    end

    return M
end
