-- RFTS: "Reach for the Stars" as Thousand Parsec plays it (the RFTS
-- notes, rulesets/rfts.md of the project's documents; README.md here is
-- the players' and operators' guide and lists where this port differs).
-- Section numbers in the comments are the notes'.
--
-- A fixed map of 53 named stars on a wrapping square; planets with
-- population, industry and environment; a three-turn cycle of
-- production, construction and movement; planetary defence bases, ship
-- technology, colonisation, bombardment and combat; victory points, and
-- a game of a set number of turns.
--
-- Files: data.lua (stars, resources, costs), rng.lua (the generator),
-- objects.lua (object types, planet and fleet helpers, exploration),
-- designs.lua (resources, properties, components, designs, the players'
-- records), universe.lua (new game, new players), combat.lua,
-- orders.lua, turn.lua. Each but data.lua returns a function that gets
-- the table of all modules (rf) and returns its own.
local rf = {}
rf.data = include("data.lua")
for _, name in ipairs { "rng", "objects", "designs", "combat", "orders",
                        "universe", "turn" } do
    rf[name] = include(name .. ".lua")(rf)
end

return {
    name = "TP RFTS",
    version = "0.5",
    description = "RFTS: Reach for the Stars. Grow your planets' industry "
                  .. "and population through a three-turn production "
                  .. "cycle, research ship technology, colonise, bombard "
                  .. "and fight; the most victory points after the set "
                  .. "number of turns wins.",

    settings = {
        max_players = { default = 4, type = "integer", min = 1, max = 53,
            doc = "most players in the game (more are refused)" },
        game_length = { default = 60, type = "integer", min = 1,
            max = 100000, doc = "the game ends when this turn begins" },
        random_seed = { default = -1, type = "integer", min = -1,
            max = 4294967295,
            doc = "seed of the game's generator (planets, home systems, "
                  .. "population, combat); -1: seeded from the clock" },
    },

    resources = rf.designs.resources,
    categories = rf.designs.categories,
    properties = rf.designs.properties,
    components = rf.designs.components,
    object_types = rf.objects.TYPES,
    order_types = rf.orders.TYPES,

    marks_changes = true,

    setup = rf.universe.setup,
    join_allowed = rf.universe.join_allowed,
    player_joined = rf.universe.player_joined,
    turn = rf.turn.turn,
    turn_name = rf.turn.turn_name,
    game_over = function(ctx)
        return ctx.state.game_over == true
    end,

    -- Fog of war (9): star systems for all, planets and fleets of the
    -- systems a player explored, fleets in transit for their owner only.
    visible = rf.objects.visible,
    -- Every design is visible to everyone (7).
    design_visible = function() return true end,

    -- The modules, for tests (tests/lua/rfts_*_test.lua).
    modules = rf,
}
