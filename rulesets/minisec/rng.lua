-- MiniSec randomness (minisec.md 1.2): two MT19937 generators.
--
-- * game: seeded from the clock when the game is created (the reference
--   uses pid + time); media names and all of combat draw from it.
-- * debug: exists only when the setting random_seed is >= 0, seeded with
--   it; universe and home-system layout draw from it instead of the game
--   generator ("current" generator). With random_seed set the game
--   generator is seeded with random_seed too, so that the whole game is
--   reproducible (the reference's game generator never is).
--
-- Both states live in ctx.state.rng, so a restarted server goes on with
-- the same sequences (the reference keeps the debug generator in memory
-- only). A hook that draws opens the generators, draws, and closes them,
-- which writes the states back: if the hook then fails, the database
-- still holds the states from before it, and nothing was drawn.
return function(ms)
    local M = {}

    local open_set    -- the generators of the hook running now

    -- Creates both generators for a new game (setup).
    function M.create(ctx)
        local seed = ctx.settings.random_seed
        local game_seed
        if seed >= 0 then
            game_seed = seed
        else
            game_seed = (os.time() + math.floor(os.clock() * 1000000)) %
                        4294967296
        end
        local st = { game = ctx.random.new(game_seed):state(),
                     game_seed = game_seed }
        if seed >= 0 then
            st.debug = ctx.random.new(seed % 4294967296):state()
            st.debug_seed = seed
        end
        ctx.state.rng = st
        ctx:state_changed()
    end

    -- Restores the generators: { game = gen, current = gen }.
    function M.open(ctx)
        local st = ctx.state.rng
        local g = { game = ctx.random.restore(st.game) }
        g.current = st.debug and ctx.random.restore(st.debug) or g.game
        open_set = g
        return g
    end

    -- Writes the generators' states back into ctx.state.
    function M.close(ctx, g)
        local st = ctx.state.rng
        st.game = g.game:state()
        if st.debug then
            st.debug = g.current:state()
        end
        ctx:state_changed()
        if open_set == g then
            open_set = nil
        end
    end

    -- Runs fn(g) between open and close.
    function M.with(ctx, fn)
        local g = M.open(ctx)
        local result = fn(g)
        M.close(ctx, g)
        return result
    end

    -- The generators of the hook running now (orders run inside the turn).
    function M.active()
        return assert(open_set, "MiniSec: no generator open")
    end

    -- A name from list, with replacement, drawn from gen.
    function M.pick(gen, list)
        return list[gen:range(0, #list - 1) + 1]
    end

    return M
end
