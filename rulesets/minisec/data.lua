-- MiniSec data: names, media, the fixed part of the universe and the
-- stock ship designs (minisec.md sections 3, 4 and 6). Plain tables, no
-- code; the lists keep the reference's order, which the random pickers
-- depend on.
local M = {}

-- Icons and the folders media names are drawn into.
M.ICON_SYSTEM = "common/object-icons/system"
M.ICON_PLANET = "common/object-icons/planet"
M.ICON_SHIP = "common/object-icons/ship"
M.STAR_MEDIA_PREFIX = "common-2d/star-small/"
M.PLANET_MEDIA_PREFIX = "common-2d/foreign/freeorion/planet-small/animation/"
M.FLEET_MEDIA_PREFIX = "common-2d/foreign/vegastrike/ship-small/"

-- Names of random star systems, drawn without replacement; then
-- "System 1", "System 2", ...
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
M.SYSTEM_PREFIX = "System"

-- Media looks, drawn with replacement from the game generator.
M.STAR_MEDIA = { "blue", "red", "yellow", "purple-large", "purple-small",
                 "rainbow" }
M.PLANET_MEDIA = {
    "barren1", "barren2", "barren3", "desert1", "desert2", "desert3",
    "gasgiant1", "gasgiant2", "gasgiant3", "inferno1", "inferno2",
    "inferno3", "ocean1", "ocean2", "ocean3", "radiated1", "radiated2",
    "radiaged3", "swamp1", "swamp2", "swamp3", "terran1", "terran2",
    "terran3", "toxic1", "toxic2", "toxic3", "tundra1", "tundra2",
    "tundra3",
}
M.FLEET_MEDIA = {
    "aeon-hud", "ancestor-hud", "andolian_dostoevsky-hud",
    "andolian_sartre-hud", "andolian_schroedinger-hud", "ariston-hud",
    "clydesdale-hud", "confed_gawain-hud", "confed_schroedinger-hud",
    "destroyer-hud", "franklin-hud", "gawain-hud", "highborn_gawain-hud",
    "kyta-hud", "purist_admonisher-hud", "purist_gawain-hud", "sartre-hud",
    "schroedinger-hud", "shaper_ancestor-hud", "watson-hud",
}

-- The fixed universe (objects 0-9 of a new game).
M.UNIVERSE = { name = "The Universe", size = 1000000000000,
               media = "common-2d/foreign/freeorion/nebula-small/nebula3" }
M.GALAXY = { name = "Milky Way Galaxy", size = 100000000000,
             pos = { x = 0, y = -6000, z = 0 },
             media = "common-2d/foreign/freeorion/nebula-small/nebula1" }
M.SYSTEMS = {
    { name = "Sol/Terra System", size = 60000, colour = "yellow",
      pos = { x = 3000000000, y = 2000000000, z = 0 } },
    { name = "Alpha Centauri System", size = 90000, colour = "purple-large",
      pos = { x = -1500000000, y = 1500000000, z = 0 } },
    { name = "Sirius System", size = 60000, colour = "red",
      pos = { x = -250000000, y = -4000000000, z = 0 } },
}
-- system: index into SYSTEMS; offset from the system's position.
M.PLANETS = {
    { name = "Earth", system = 1, offset = { 14960, 0 }, look = "terran1" },
    { name = "Venus", system = 1, offset = { 0, 10800 }, look = "inferno1" },
    { name = "Mars", system = 1, offset = { -22790, 0 }, look = "desert1" },
    { name = "Alpha Centauri Prime", system = 2, offset = { -6300, 78245 },
      look = "toxic1" },
    { name = "Sirius 1", system = 3, offset = { 45925, -34262 },
      look = "barren1" },
}

-- The stock designs every player gets, in id order (one hull each).
M.STOCK_DESIGNS = {
    { name = "Scout", description = "Scout ship", hull = 1 },
    { name = "Frigate", description = "Frigate ship", hull = 2 },
    { name = "Battleship", description = "Battleship ship", hull = 3 },
}

-- Defence batteries of a planet in combat (design id 0).
M.BATTERY = { win = 3, draw = 1, armour = 6, name = "defence batteries" }
M.BATTERIES = 2            -- on every owned planet
M.HOME_BATTERIES = 5       -- on a planet whose Home Planet resource is 1

-- Resource ids.
M.RES_SHIP_PART = 1
M.RES_HOME_PLANET = 2

return M
