-- Risk: the board game as Thousand Parsec plays it (the Risk notes,
-- rulesets/risk.md of the project's documents; README.md here is the
-- players', operators' and modders' guide and lists every quirk of the
-- reference kept or fixed). Section numbers in comments are the notes'.
--
-- Territories are planets, one per star system, grouped into
-- constellations that give bonus armies, linked by wormholes. No ships:
-- armies stand on planets and move along wormholes; enemy planets are
-- attacked with dice.
--
-- Files: maps.lua (map files: JSON and the reference's SVG), board.lua
-- (object types, the board, planet and pool helpers), rng.lua (the
-- generator), combat.lua (dice), orders.lua, players.lua (joining),
-- turn.lua. Each returns a function that gets the table of all modules
-- (rk) and returns its own. Maps are in maps/.
local rk = {}
for _, name in ipairs { "maps", "rng", "board", "combat", "orders",
                        "turn", "players" } do
    rk[name] = include(name .. ".lua")(rk)
end

return {
    name = "Risk",
    version = "0.1",
    description = "Risk in space: conquer territories (planets) linked "
                  .. "by wormholes, place reinforcements, roll dice, and "
                  .. "hold whole constellations for bonus armies; the "
                  .. "last player standing wins.",

    settings = {
        max_players = { default = 6, type = "integer", min = 1, max = 42,
            doc = "most players (a player named guest may join beyond it)" },
        game_length = { default = 60, type = "integer", min = 1,
            max = 100000, doc = "the game ends at this turn: the most "
            .. "territories win" },
        risk_rfc_rate = { default = 3, type = "integer", min = 1, max = 1000,
            doc = "territories per reinforcement step" },
        risk_rfc_number = { default = 1, type = "integer", min = 0,
            max = 1000, doc = "armies per reinforcement step" },
        risk_default_planet_armies = { default = 3, type = "integer",
            min = 1, max = 1000, doc = "armies on each starting territory" },
        risk_rfc_start = { default = 30, type = "integer", min = 0,
            max = 100000, doc = "each player's starting reinforcement pool" },
        risk_randomly_assign = { default = true, type = "boolean",
            doc = "deal floor(territories / max_players) random territories "
                  .. "to each player (else one, and colonising is on)" },
        risk_attack_dmg = { default = 1, type = "integer", min = 1,
            max = 100, doc = "armies lost per lost die" },
        risk_allow_colonize = { default = "auto",
            choices = { "auto", "yes", "no" },
            doc = "Colonize orders (bidding): auto = when territories are "
                  .. "not dealt at random" },
        risk_map = { default = "default", type = "string",
            doc = "the map: a file of the ruleset's maps/ folder (default, "
                  .. "test, or NAME.json / NAME.svg)" },
        risk_debug_random_seed = { default = -1, type = "integer", min = -1,
            max = 4294967295,
            doc = "seed of the game's generator; -1: from the clock" },
    },

    resources = { { id = rk.board.ARMY, name = "Army", name_plural = "Armies",
                    unit = "unit", unit_plural = "units",
                    description = "Armies: on a planet, those stationed "
                                  .. "there (minable: the owner's pool)",
                    weight = 0, size = 0 } },
    object_types = rk.board.TYPES,
    order_types = rk.orders.TYPES,

    marks_changes = true,

    setup = function(ctx)
        local s = ctx.settings
        local map = rk.maps.load(s.risk_map)
        ctx.state.pools = {}
        ctx.state.game_over = false
        ctx.state.map = s.risk_map
        if s.risk_allow_colonize == "auto" then
            ctx.state.colonize = not s.risk_randomly_assign
        else
            ctx.state.colonize = s.risk_allow_colonize == "yes"
        end
        rk.rng.create(ctx)
        rk.rng.with(ctx, function(g)
            rk.board.setup(ctx, map, g)
        end)
        ctx:state_changed()
    end,
    join_allowed = rk.players.join_allowed,
    player_joined = rk.players.player_joined,
    turn = rk.turn.turn,
    turn_name = rk.turn.turn_name,
    game_over = function(ctx)
        return ctx.state.game_over == true
    end,

    -- The modules, for tests (tests/lua/risk_*_test.lua).
    modules = rk,
}
