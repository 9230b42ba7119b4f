-- MTSec randomness (mtsec.md: "the game generator only"; minisec.md 1):
-- one MT19937 generator, seeded with the setting random_seed, or from the
-- clock when it is -1. Its state lives in ctx.state.rng, so a restarted
-- server goes on with the same sequence. A hook that draws opens the
-- generator, draws and closes it (which writes the state back): if the
-- hook then fails, the database still holds the state from before.
return function(mt)
    local M = {}

    function M.create(ctx)
        local seed = ctx.settings.random_seed
        if seed < 0 then
            seed = (os.time() + math.floor(os.clock() * 1000000)) %
                   4294967296
        end
        seed = seed % 4294967296
        ctx.state.rng = { seed = seed, game = ctx.random.new(seed):state() }
        ctx:state_changed()
    end

    function M.open(ctx)
        return ctx.random.restore(ctx.state.rng.game)
    end

    function M.close(ctx, gen)
        ctx.state.rng.game = gen:state()
        ctx:state_changed()
    end

    -- Runs fn(gen) between open and close.
    function M.with(ctx, fn)
        local gen = M.open(ctx)
        local result = fn(gen)
        M.close(ctx, gen)
        return result
    end

    return M
end
