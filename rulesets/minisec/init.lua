-- MiniSec: the ruleset manifest.
--
-- The MiniSec rules (universe generation, fleets, orders, combat) are
-- written against the ruleset API in a later step; until then the game
-- runs with this manifest only: players can connect, create accounts, log
-- in and finish turns, and the turn clock runs.
return {
    name = "MiniSec",
    version = "0.1",
    description = "A small game of space conquest.",
}
