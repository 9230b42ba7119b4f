-- MTSec data: names, the fixed part of the universe, resource ids and the
-- numbers of the rules (mtsec.md sections 3, 5, 6, 8). Plain tables, no
-- code; the name list keeps the reference's order, which the random
-- picker depends on.
local M = {}

-- The 45 system names of MiniSec, drawn with replacement (range(1, 45)).
M.SYSTEM_NAMES = {
    "Barnard's Star", "Gielgud", "Ventana", "Aleph Prime", "Ventil",
    "Sagitaria", "Drifter", "Ptelemicus", "Centanis", "Mendelis",
    "Cassious' Shadow", "Llentim", "Redoubt", "Kelper", "Cemara",
    "Cilantarius", "Kya", "Lanternis", "Illatis", "Rintim", "Uvaharim",
    "Plaetais", "Denderis", "Desiderata", "Illuntara", "Ivemteris",
    "Wetcher", "Monanara", "Clesasia", "RumRunner", "Last Chance",
    "Kiuper Shadow", "NGC 42059", "Ceti Alpha", "Surreptitious",
    "Lupus Fold", "Atlantis", "Draconis", "Muir's Gold", "Fools Errand",
    "Wrenganis", "Humph", "Byzantis", "Torontis", "Radiant Pool",
}
M.RANDOM_SYSTEMS = 45
M.RANDOM_SYSTEM_SIZE = 1400000
M.MAX_PLANETS = 5                 -- per random system

-- The fixed universe (objects 0-9 of a new game).
M.UNIVERSE = { name = "The Universe", size = 1000000000 }
M.GALAXY = { name = "Milky Way Galaxy", size = 100000000,
             pos = { x = 0, y = -6000, z = 0 } }
M.SYSTEMS = {
    { name = "Sol/Terra System", size = 1400000,
      pos = { x = 3000000000, y = 2000000000, z = 0 }, planets = {
          { name = "Earth/Terra", offset = { 14960, 0 } },
          { name = "Venus", offset = { 0, 10800 } },
          { name = "Mars", offset = { -22790, 0 } } } },
    { name = "Alpha Centauri System", size = 800000,
      pos = { x = -1500000000, y = 1500000000, z = 0 }, planets = {
          { name = "Alpha Centauri Prime", offset = { -6300, 78245 } } } },
    { name = "Sirius System", size = 2000000,
      pos = { x = -250000000, y = -3800000000, z = 0 }, planets = {
          { name = "Sirius 1", offset = { 45925, -34262 } } } },
}
M.PLANET_SIZE = 2
M.FLEET_SIZE = 2

-- Resource ids (mtsec.md 3).
M.RES_SHIP_PART = 1
M.RES_HOME_PLANET = 2
M.RES_URANIUM = 3
M.RES_THORIUM = 4
M.RES_CERIUM = 5
M.RES_ENRICHED_URANIUM = 6
M.RES_MASSIVIUM = 7
M.RES_ANTIPARTICLE = 8
M.RES_ANTIMATTER = 9
M.RES_FACTORIES = 10
M.RES_FIRST_WEAPON = 11
M.WEAPON_SLOTS = 200              -- resources 11-210: one per weapon design

-- The ore ranges every planet gets, in the order they are drawn (max
-- value; current 0).
M.ORES = {
    { M.RES_URANIUM, 10, 100 }, { M.RES_THORIUM, 20, 100 },
    { M.RES_MASSIVIUM, 10, 100 }, { M.RES_ENRICHED_URANIUM, 7, 70 },
    { M.RES_CERIUM, 5, 50 }, { M.RES_ANTIPARTICLE, 1, 30 },
    { M.RES_ANTIMATTER, 1, 15 },
}
M.FACTORIES_UNIVERSE = { 1, 15 }  -- a universe planet's first Factories
M.FACTORIES_HOME = { 20, 50 }     -- a home planet's
M.FACTORIES_GROWTH_LIMIT = 100    -- the per-turn parameter grows to this

-- Ranges and distances of the orders and of combat.
M.ARMAMENT_RANGE = 10000          -- Load/Unload Armament (+ planet radius)
M.COMBAT_RANGE = 10000
M.MAX_PER_DESIGN = 100            -- Build Fleet / Build Weapon list maxima
M.ENHANCE_DEFAULT = 100

-- The planet's stand-in in combat: two ships of its owner's Scout.
M.PLANET_SCOUTS = 2

return M
