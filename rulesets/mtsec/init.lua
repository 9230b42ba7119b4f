-- MTSec ("Missile and Torpedo Wars") 0.3, as tpserver-cpp plays it (the
-- MTSec notes, rulesets/mtsec.md of the project's documents, with
-- MiniSec's for what MTSec reuses); README.md lists the settings, the
-- orders and every place where this port differs. Section numbers in the
-- comments are the notes'.
--
-- Players design ships (hulls, missile and torpedo tubes, armour,
-- colonisation modules) and weapons (missile and torpedo hulls filled with
-- explosives) from a tech tree of 52 components (techtree.json). Planets
-- make production points each turn and spend them building fleets and
-- weapons; weapons are resources, loaded onto fleets and fired from their
-- tubes when fleets and planets of different players meet.
--
-- Files: data.lua (names, numbers, the fixed universe), techtree.lua
-- (the tech tree and its requirement rules), rng.lua, objects.lua
-- (object types, resources, helpers), arms.lua (weapon resources),
-- designs.lua (stock designs, player designs), orders.lua, combat.lua,
-- universe.lua, turn.lua, and MiniSec's movement (../common/movement.lua).
-- Each but data.lua returns a function that gets the table of all modules
-- (mt) and returns its own.
local mt = {}
mt.data = include("data.lua")
for _, name in ipairs { "techtree", "rng", "objects", "arms", "designs",
                        "movement", "universe", "orders", "combat",
                        "turn" } do
    local file = name == "movement" and "common/movement.lua" or
                 name .. ".lua"
    mt[name] = include(file)(mt)
end

local arms, turn = mt.arms, mt.turn

return {
    name = "MTSec",
    version = "0.3",
    description = "MTSec: Missile and Torpedo Wars. Design ships and "
                  .. "missiles, build them with your planets' production "
                  .. "points, arm your fleets and take the galaxy.",

    settings = {
        random_seed = { default = -1, type = "integer", min = -1,
            max = 4294967295,
            doc = "seed for a reproducible game (universe, home systems); "
                  .. "-1: seeded from the clock" },
        max_turns = { default = 100, type = "integer", min = 0,
            max = 1000000,
            doc = "the game ends after this turn: the player with the most "
                  .. "planets (then the most Factories) wins; 0: no limit "
                  .. "(the game ends when one player is left with planets)" },
    },

    resources = mt.objects.RESOURCES,
    categories = mt.techtree.categories,
    properties = mt.techtree.properties,
    components = mt.techtree.components,
    object_types = mt.objects.TYPES,
    order_types = mt.orders.TYPES,

    marks_changes = true,

    setup = mt.universe.setup,
    player_joined = mt.universe.player_joined,
    turn = turn.turn,
    game_over = turn.game_over,

    turn_name = function(ctx, n)
        if turn.game_over(ctx) then
            return "Year " .. n .. " (game over)"
        end
        return "Year " .. n
    end,

    join_allowed = function(ctx, name)
        if turn.game_over(ctx) then
            return false, "the game is over"
        end
        return true
    end,

    -- The weapon resources' names come from the game's state (arms.lua):
    -- they are set again whenever the game is opened or reloaded.
    opened = function(ctx)
        arms.sync(ctx)
    end,

    -- No fog of war: every object (no visible hook) and every design is
    -- visible to everyone (7.6).
    design_visible = function() return true end,

    add_design = mt.designs.add_design,
    modify_design = mt.designs.modify_design,
    remove_design = mt.designs.remove_design,

    modules = mt,
}
