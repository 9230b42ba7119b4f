-- TaE: Tigris and Euphrates in space (the TaE notes, rulesets/tae.md of
-- the project's documents; README.md here is the players' and
-- operators' guide and lists where this port differs). Section numbers
-- in the comments are the notes'.
--
-- A grid board of star systems (board.txt), colonists of four kinds that
-- build regions, four leaders per player, bombers, conflicts fought out
-- in special combat turns, and four scoring categories of which the
-- weakest is the final score.
--
-- Files: board.lua (the board file, squares, markers, regions),
-- objects.lua (object types, resources, designs, fleets), orders.lua
-- (the five order types), turn.lua (normal and combat turns, scoring).
-- Each returns a function that gets the table of all modules (tae) and
-- fills in its own part.
local tae = {}
for _, name in ipairs { "board", "objects", "orders", "turn" } do
    tae[name] = include(name .. ".lua")(tae)
end

return {
    name = "TaE",
    version = "0.01",
    description = "Tigris and Euphrates in space: settle colonists of four "
                  .. "kinds on a grid of star systems to grow regions, move "
                  .. "your four leaders into them to score, fight leader "
                  .. "conflicts in combat turns. Two actions a turn; your "
                  .. "final score is your weakest category.",

    settings = {
        board = { default = "board.txt", type = "string",
            doc = "the board file of the ruleset's folder (lines of '.' "
                  .. "inhabitable, 'M' uninhabitable, 'A' artifact; the "
                  .. "last line is row 0)" },
        random_seed = { default = -1, type = "integer", min = -1,
            max = 4294967295,
            doc = "seed of the game's MT19937 generator (passenger types); "
                  .. "-1: seeded from the clock" },
        bag = { default = { 30, 57, 30, 36 }, type = "list",
            doc = "the shared bag of colonist ships: merchant, scientist, "
                  .. "settler and mining counts" },
        max_players = { default = 8, type = "integer", min = 1, max = 64,
            doc = "most players in the game (more are refused)" },
    },

    resources = tae.objects.resources,
    categories = tae.objects.categories,
    properties = tae.objects.properties,
    components = tae.objects.components,
    object_types = tae.objects.TYPES,
    order_types = tae.orders.TYPES,

    marks_changes = true,

    setup = tae.objects.setup,
    join_allowed = tae.objects.join_allowed,
    player_joined = tae.objects.player_joined,
    turn = tae.turn.turn,
    turn_name = tae.turn.turn_name,
    game_over = function(ctx)
        return ctx.state.game_over == true
    end,
    design_visible = tae.objects.design_visible,

    -- The modules, for tests (tests/lua/tae_*_test.lua).
    modules = tae,
}
