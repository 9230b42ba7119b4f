-- RFTS fixed data (rfts.md 1, 4, 6): the 53 stars, the resources and
-- their production costs, the planet classes and their statistic ranges,
-- the ship technology thresholds and the stock designs.
local D = {}

-- Universe coordinates of a unit position (rfts.md 1).
D.WIDTH = 4 * 1050000000
D.HEIGHT = 3 * 1050000000
D.UNIVERSE_SIZE = 123456789123

-- name, u, v: the fixed map, in the order the stars are created.
D.STARS = {
    { "Acrux", .875, .87 }, { "Adara", .18, .24 }, { "Agena", .18, .075 },
    { "Algol", .28, .75 }, { "Alhema", .86, .24 }, { "Alioth", .37, .5 },
    { "Almak", .84, .125 }, { "Altair", .58, .62 }, { "Aludra", .71, .95 },
    { "Antares", .075, .35 }, { "Arneb", .485, .37 },
    { "Ascella", .43, .875 }, { "Canopus", .55, .55 },
    { "Capella", .76, .075 }, { "Caph", .79, .33 }, { "Castor", .05, .95 },
    { "Deneb", .85, .55 }, { "Diphda", .1, .75 }, { "Dubhe", .475, .5 },
    { "Enif", .62, .77 }, { "Furud", .64, .075 }, { "Gemma", .5, .625 },
    { "Gienah", .8, .75 }, { "Hamal", .75, .625 }, { "Izar", .29, .21 },
    { "Kochab", .18, .38 }, { "Megrez", .69, .8 }, { "Mintaka", .57, .27 },
    { "Mirzam", .37, .8 }, { "Mizar", .6, .375 }, { "Nath", .7, .375 },
    { "Nihal", .23, .6 }, { "Nunki", .39, .25 }, { "Phaeda", .58, .95 },
    { "Polaris", .65, .2 }, { "Pollux", .68, .875 },
    { "Procyon", .15, .6 }, { "Rastaban", .29, .375 },
    { "Regulus", .69, .6 }, { "Rigel", .8, .8 }, { "Ross", .88, .61 },
    { "Sabik", .6, .745 }, { "Saiph", .23, .875 }, { "Schedar", .27, .6 },
    { "Sirius", .42, .18 }, { "Shedir", .57, .47 }, { "Spica", .475, .79 },
    { "Tarazed", .9, .42 }, { "Thuban", .83, .4 }, { "Vega", .23, .7 },
    { "Wesen", .39, .65 }, { "Wolf", .54, .92 }, { "Zosma", .86, .05 },
}

-- Resource ids (rfts.md 4).
D.RP, D.INDUSTRY, D.POPULATION, D.SOCIAL, D.PLANETARY = 1, 2, 3, 4, 5
D.POP_MAINT, D.COLONIST, D.SHIP_TECH = 6, 7, 8
D.PDB = { 9, 11, 13 }          -- PDB1, PDB2, PDB3
D.PDB_MAINT = { 10, 12, 14 }
D.NUM_RESOURCES = 14

-- id, name, plural, unit, unit plural, description.
D.RESOURCES = {
    { "Resource Point", "Resource Points", "point", "points",
      "Resource points: what everything is bought with" },
    { "Industry", "Industry", "unit", "units",
      "Industry: with the social environment, it makes resource points" },
    { "Population", "Population", "unit", "units",
      "The people of the planet" },
    { "Social Environment", "Social Environment", "unit", "units",
      "How well the population lives: above 40 it grows" },
    { "Planetary Environment", "Planetary Environment", "unit", "units",
      "The state of the planet: it draws the social environment along" },
    { "Population Maintenance", "Population Maintenance", "unit", "units",
      "Care for the population: without it a third of the uncared-for "
      .. "leave at each population update" },
    { "Colonist", "Colonists", "colonist", "colonists",
      "Colonists, ready to board transports" },
    { "Ship Technology", "Ship Technology", "point", "points",
      "Research toward better ships and planetary defence bases" },
    { "PDB1", "PDB1s", "base", "bases", "Planetary defence bases, level 1" },
    { "PDB1 Maintenance", "PDB1 Maintenance", "unit", "units",
      "Maintenance of level 1 planetary defence bases" },
    { "PDB2", "PDB2s", "base", "bases", "Planetary defence bases, level 2" },
    { "PDB2 Maintenance", "PDB2 Maintenance", "unit", "units",
      "Maintenance of level 2 planetary defence bases" },
    { "PDB3", "PDB3s", "base", "bases", "Planetary defence bases, level 3" },
    { "PDB3 Maintenance", "PDB3 Maintenance", "unit", "units",
      "Maintenance of level 3 planetary defence bases" },
}

-- Production costs in resource points per unit (rfts.md 4).
D.COST = {
    [D.INDUSTRY] = 10, [D.SOCIAL] = 4, [D.PLANETARY] = 8,
    [D.POP_MAINT] = 1, [D.COLONIST] = 5, [D.SHIP_TECH] = 1,
    [9] = 4, [10] = 1, [11] = 8, [12] = 2, [13] = 16, [14] = 2,
}
D.SHIP_COST = { Scout = 3, Transport = 5, Mark1 = 14, Mark2 = 30,
                Mark3 = 80, Mark4 = 120 }
D.SHIP_TECH_MAX = 100            -- most Ship Technology per Produce order

-- Points for ship technology levels 2, 3 and 4.
D.TECH_LEVELS = { 400, 1000, 2000 }
D.MAX_PDB_LEVEL = 3

-- Planet classes (stored as the planet's Size) and statistic ranges.
D.INDUSTRIAL, D.NEUTRAL, D.PRIMARY = 1, 2, 3
D.CLASS_NAMES = { "industrial", "neutral", "primary" }
-- In the order they are drawn: Industry, Population, Social, Planetary.
D.STAT_RANGES = {
    { D.INDUSTRY, { 25, 90 }, { 30, 70 }, { 30, 55 } },
    { D.POPULATION, { 10, 30 }, { 40, 80 }, { 75, 100 } },
    { D.SOCIAL, { 5, 20 }, { 30, 75 }, { 55, 100 } },
    { D.PLANETARY, { 5, 20 }, { 30, 75 }, { 55, 100 } },
}

-- Home planet starting values (rfts.md 7).
D.HOME = { [D.RP] = 200, [D.POPULATION] = 50, [D.INDUSTRY] = 15,
           [D.SOCIAL] = 52, [D.PLANETARY] = 55, [9] = 12 }

-- Population never grows past this (the reference's 32-bit counters
-- wrap; ours are doubles, which would overflow to infinity).
D.MAX_POPULATION = 2147483647

-- Turn names by turn number mod 3 (rfts.md 8 step 5).
D.TURN_NAMES = { [0] = "Production, Construction, Movement",
                 [1] = "Construction, Movement", [2] = "Movement" }

-- Victory points (rfts.md 10).
D.VP_COLONISE, D.VP_COLONISE_FAILED, D.VP_BOMBARD = 125, 25, 50

return D
