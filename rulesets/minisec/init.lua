-- MiniSec: the first Thousand Parsec game, as tpserver-cpp plays it
-- (the MiniSec specification, rulesets/minisec.md of the project's
-- documents; README.md here lists the settings and where this port
-- differs). Section numbers in the comments are the specification's.
--
-- A small galaxy of star systems and planets; every player starts with a
-- home planet and three frigates. Planets build fleets of scouts,
-- frigates and battleships with ship parts that accumulate while they
-- build; frigates colonise; fleets move, split, merge and intercept; and
-- fleets and planets that meet fight with rock, paper, scissors. The last
-- player with planets or fleets wins.
--
-- Files: data.lua (names, media, fixed universe), rng.lua (the two
-- random generators), objects.lua (object types, planet and fleet
-- helpers), designs.lua (resources, properties, components, stock
-- designs), universe.lua (new game, new player), orders.lua,
-- combat.lua, turn.lua, and ../common/movement.lua (shared with MTSec).
-- Each but data.lua returns a function that gets the table of all
-- modules (ms) and returns its own.
local ms = {}
ms.data = include("data.lua")
for _, name in ipairs { "rng", "objects", "designs", "movement", "orders",
                        "combat", "universe", "turn" } do
    -- Movement is shared with MTSec (rulesets/common/).
    local file = name == "movement" and "common/movement.lua" or
                 name .. ".lua"
    ms[name] = include(file)(ms)
end

return {
    name = "MiniSec",
    version = "0.4",
    description = "MiniSec: a small game of space conquest. Build fleets, "
                  .. "colonise planets, and win the battles of rock, paper, "
                  .. "scissors.",

    -- tpserver.lua: ruleset_settings = { max_systems = 30, ... }
    settings = {
        min_systems = { default = 0,
            doc = "fewest random star systems (besides the fixed ones)" },
        max_systems = { default = 0,
            doc = "most random star systems (a count is drawn between the "
                  .. "two; equal values fix it)" },
        min_planets = { default = 0,
            doc = "fewest planets in a random star system" },
        max_planets = { default = 0,
            doc = "most planets in a random star system" },
        total_planets = { default = 0,
            doc = "most planets in all random systems together (0: no "
                  .. "limit)" },
        system_names = { default = {},
            doc = "names for the random systems, used in this order, then "
                  .. "'System 1', 'System 2', ...; empty: 45 built-in "
                  .. "names drawn at random" },
        random_seed = { default = -1,
            doc = "seed for reproducible games (universe, home systems, "
                  .. "media, combat); -1: seeded from the clock" },
        noguest = { default = false,
            doc = "true: an account named 'guest' plays like any other; "
                  .. "false: it is a spectator" },
        end_at_victory = { default = true,
            doc = "true: the game is over once one of two or more "
                  .. "players is left (turns stop; game.new starts the "
                  .. "next); false: it goes on, as in tpserver-cpp" },
    },

    resources = ms.designs.resources,
    categories = ms.designs.categories,
    properties = ms.designs.properties,
    components = ms.designs.components,
    object_types = ms.objects.TYPES,
    order_types = ms.orders.TYPES,

    -- Every object the turn changes is marked (ctx:changed and the other
    -- ctx calls): the server need not compare all objects after a turn.
    marks_changes = true,

    setup = ms.universe.setup,
    player_joined = ms.universe.player_joined,
    turn = ms.turn.turn,

    -- A player taken out of the game for being idle (idle_action =
    -- "remove"): their planets become unowned (orders cleared, as a
    -- captured planet's), their fleets are disbanded.
    player_removed = function(ctx, player)
        local fleets, planets = {}, {}
        local fleet_t = ctx.types[ms.objects.FLEET]
        local planet_t = ctx.types[ms.objects.PLANET]
        for o in ctx:each_object() do
            if o.owner == player.id then
                if o.type == fleet_t then
                    fleets[#fleets + 1] = o
                elseif o.type == planet_t then
                    planets[#planets + 1] = o
                end
            end
        end
        for _, planet in ipairs(planets) do
            ctx:clear_orders(planet)
            ms.objects.set_planet_owner(ctx, planet, 0)
        end
        for _, fleet in ipairs(fleets) do
            ms.objects.remove_fleet(ctx, fleet)
        end
    end,

    -- Over when the last player standing has won (step 11), unless
    -- end_at_victory is off: true, why, { the winner }. Guests (spectators)
    -- do not count.
    game_over = function(ctx)
        if not ctx.settings.end_at_victory then
            return false
        end
        local players, alive = 0, {}
        for _, p in ipairs(ctx:players()) do
            if not ms.universe.is_guest(ctx, p) then
                players = players + 1
                if p.alive ~= false then
                    alive[#alive + 1] = p
                end
            end
        end
        if players < 2 or #alive > 1 then
            return false
        end
        if #alive == 0 then
            return true, "no player is left", {}
        end
        return true, alive[1].name .. " has eliminated every other player",
               { alive[1].id }
    end,

    -- No fog of war: every object (no visible hook: all are visible) and
    -- every design is visible to everyone. Order queues stay private.
    design_visible = function() return true end,

    -- The modules, for tests (tests/lua/minisec_*_test.lua).
    modules = ms,
}
