-- tp.battle: the battle recorder rulesets use (ctx:battle), and the
-- BattleXML document it makes.
--
-- A ruleset declares the sides of a battle (one per player), their
-- entities (ships, planets' batteries), then the rounds and what happened
-- in each (log, move, fire, damage, death), and saves it: the document
-- (the BattleXML form tpserver-cpp writes and the TP battle viewers read,
-- docs/battles.md) goes into the game database with the turn's commit,
-- under the next battle id, with the players who took part. Those players
-- (and spectators, when web_spectators lets them watch) fetch it from
-- the web listener at /battles/<id>.xml; the console lists them with
-- battles(turn) and shows one with battle(id).
--
-- Mistakes of the ruleset raise at once, with what was wrong: an event
-- naming an entity not declared, an id declared twice, an event before
-- the first round. A battle never saved is simply dropped.

local model = require "tp.model"

local M = {}

M.VERSION = "0.0.1"
M.REFTYPE = -1000     -- the Combat message's reference to a battle
                      -- (PROTOCOL.md 11: a server-specific reference)

-- ------------------------------------------------------------ XML text

-- Valid UTF-8 with the characters XML 1.0 allows; anything else becomes
-- "?" (names come from players).
local function clean(s)
    s = tostring(s)
    local out, i, n = {}, 1, #s
    while i <= n do
        local c = s:byte(i)
        local len, ok = 1, true
        if c < 0x20 then
            ok = c == 0x09 or c == 0x0A or c == 0x0D
        elseif c < 0x80 then
            ok = true
        elseif c >= 0xC2 and c <= 0xDF then
            len = 2
        elseif c >= 0xE0 and c <= 0xEF then
            len = 3
        elseif c >= 0xF0 and c <= 0xF4 then
            len = 4
        else
            ok = false
        end
        if ok and len > 1 then
            if i + len - 1 > n then
                ok = false
            else
                local cp = c % (2 ^ (7 - len))
                for j = i + 1, i + len - 1 do
                    local b = s:byte(j)
                    if b < 0x80 or b > 0xBF then
                        ok = false
                        break
                    end
                    cp = cp * 64 + (b - 0x80)
                end
                if ok then
                    -- Overlong forms, surrogates, beyond U+10FFFF and
                    -- the two non-characters XML refuses.
                    local min = ({ 0x80, 0x800, 0x10000 })[len - 1]
                    ok = cp >= min and cp <= 0x10FFFF and
                         not (cp >= 0xD800 and cp <= 0xDFFF) and
                         cp ~= 0xFFFE and cp ~= 0xFFFF
                end
            end
        end
        if ok then
            out[#out + 1] = s:sub(i, i + len - 1)
            i = i + len
        else
            out[#out + 1] = "?"
            i = i + 1
        end
    end
    return table.concat(out)
end

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
              ['"'] = "&quot;", ["'"] = "&apos;" }

local function esc(s)
    return (clean(s):gsub("[&<>\"']", ESC))
end
M.escape = esc

local function num(v)
    if v ~= v or v == math.huge or v == -math.huge then
        return "0"
    end
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then
        return string.format("%d", v)
    end
    return string.format("%.17g", v)
end

-- ------------------------------------------------------------ recorder

local Battle = {}
Battle.__index = Battle

-- opts: media (the viewer's media set, "minisec" by default), title (for
-- listings: "Battle at Sol"), where (the object the battle happened at,
-- an id or an object), turn (the turn's number, from ctx).
function M.new(opts, turn)
    opts = opts or {}
    local where = opts.where
    if type(where) == "table" then
        where = where.id
    end
    return setmetatable({
        media = tostring(opts.media or "minisec"),
        title = tostring(opts.title or "Battle"),
        where = where, turn = turn or 0,
        sides = {},      -- { id, player, entities = { {id, name, type} } }
        side_of = {},    -- side id -> side
        entity_side = {}, -- entity id -> side
        rounds = {},     -- { { events } }
        saved = nil,
    }, Battle)
end

local function need_text(v, what)
    if type(v) ~= "string" and type(v) ~= "number" then
        error("battle: " .. what .. " must be a string", 3)
    end
    v = tostring(v)
    if v == "" then
        error("battle: " .. what .. " must not be empty", 3)
    end
    return v
end

local function open(self)
    if self.saved then
        error("battle: already saved (id " .. self.saved .. ")", 3)
    end
end

-- A side: its id (unique text, e.g. the player's name) and the player it
-- stands for (a player id, or nil for none). Returns the side (give it
-- to entity).
function Battle:side(id, player)
    open(self)
    id = need_text(id, "a side's id")
    if self.side_of[id] or self.entity_side[id] then
        error("battle: the id '" .. id .. "' is declared twice", 2)
    end
    local s = { id = id, player = player, entities = {} }
    self.sides[#self.sides + 1] = s
    self.side_of[id] = s
    return s
end

-- An entity of a side: id (unique text, "<design>-<object>-<n>" or
-- "planet-<object>-<n>"), name (for people) and type (the picture: a
-- design name or "planet").
function Battle:entity(side, id, name, kind)
    open(self)
    if type(side) ~= "table" or self.side_of[side.id] ~= side then
        error("battle: entity needs a side made by this battle's side()",
              2)
    end
    id = need_text(id, "an entity's id")
    if self.side_of[id] or self.entity_side[id] then
        error("battle: the id '" .. id .. "' is declared twice", 2)
    end
    side.entities[#side.entities + 1] = {
        id = id, name = tostring(name or id), type = tostring(kind or "") }
    self.entity_side[id] = side
    return id
end

-- Opens the next round (0, 1, ...); returns its number.
function Battle:round()
    open(self)
    self.rounds[#self.rounds + 1] = {}
    return #self.rounds - 1
end

local function event(self, ev)
    open(self)
    local r = self.rounds[#self.rounds]
    if not r then
        error("battle: an event before the first round (call round())", 3)
    end
    r[#r + 1] = ev
end

local function ref(self, id)
    id = tostring(id)
    if not self.entity_side[id] then
        error("battle: no entity '" .. id .. "' was declared", 3)
    end
    return id
end

function Battle:log(text)
    event(self, { "log", tostring(text) })
end

function Battle:move(id, pos)
    if type(pos) ~= "table" then
        error("battle: move needs a position { x, y, z }", 2)
    end
    local x = pos.x or pos[1] or 0
    local y = pos.y or pos[2] or 0
    local z = pos.z or pos[3] or 0
    event(self, { "move", ref(self, id), num(x) .. "," .. num(y) .. "," ..
                  num(z) })
end

function Battle:fire(src, dst)
    event(self, { "fire", ref(self, src), ref(self, dst) })
end

function Battle:damage(id, amount)
    if type(amount) ~= "number" or amount < 0 then
        error("battle: damage needs an amount of 0 or more", 2)
    end
    event(self, { "damage", ref(self, id), num(math.floor(amount)) })
end

function Battle:death(id)
    event(self, { "death", ref(self, id) })
end

-- The players of the sides, ascending, without repeats.
function Battle:players()
    local seen, out = {}, {}
    for _, s in ipairs(self.sides) do
        if type(s.player) == "number" and not seen[s.player] then
            seen[s.player] = true
            out[#out + 1] = s.player
        end
    end
    table.sort(out)
    return out
end

-- The BattleXML document (docs/battles.md).
function Battle:xml()
    local o = {}
    local function w(s)
        o[#o + 1] = s
    end
    w('<?xml version="1.0" encoding="UTF-8"?>\n')
    w('<battle version="' .. M.VERSION .. '" media="' .. esc(self.media)
      .. '">\n')
    w('  <sides>\n')
    for _, s in ipairs(self.sides) do
        w('    <side id="' .. esc(s.id) .. '">\n')
        for _, e in ipairs(s.entities) do
            w('      <entity id="' .. esc(e.id) .. '">\n')
            w('        <name>' .. esc(e.name) .. '</name>\n')
            w('        <type>' .. esc(e.type) .. '</type>\n')
            w('      </entity>\n')
        end
        w('    </side>\n')
    end
    w('  </sides>\n')
    w('  <rounds>\n')
    for i, r in ipairs(self.rounds) do
        w('    <round roundnum="' .. (i - 1) .. '">\n')
        for _, ev in ipairs(r) do
            local k = ev[1]
            if k == "log" then
                w('      <log>' .. esc(ev[2]) .. '</log>\n')
            elseif k == "move" then
                w('      <move><reference ref="' .. esc(ev[2]) ..
                  '"/><position>' .. ev[3] .. '</position></move>\n')
            elseif k == "fire" then
                w('      <fire><source ref="' .. esc(ev[2]) ..
                  '"/><destination ref="' .. esc(ev[3]) ..
                  '"/></fire>\n')
            elseif k == "damage" then
                w('      <damage><reference ref="' .. esc(ev[2]) ..
                  '"/><amount>' .. ev[3] .. '</amount></damage>\n')
            else
                w('      <death><reference ref="' .. esc(ev[2]) ..
                  '"/></death>\n')
            end
        end
        w('    </round>\n')
    end
    w('  </rounds>\n')
    w('</battle>\n')
    return table.concat(o)
end

-- Stores the battle with the next commit (the turn's); returns its id.
function Battle:save()
    open(self)
    local sides = {}
    for i, s in ipairs(self.sides) do
        sides[i] = { id = s.id, player = s.player, entities = #s.entities }
    end
    local id = model.new_battle {
        turn = self.turn, title = self.title, media = self.media,
        where = self.where, players = self:players(), sides = sides,
        rounds = #self.rounds, created = os.time(), xml = self:xml(),
    }
    self.saved = id
    return id
end

-- ------------------------------------------------------------ access

-- The path of battle id on the web listener.
function M.path(id)
    return string.format("/battles/%d.xml", id)
end

-- The full URL of battle id on the server's first web listener (its
-- host: metaserver_public_host when set, the listener's address, or the
-- machine's name for a wildcard address), or nil without one.
function M.url(id)
    local cfg = require("tp.game").config()
    local listeners = require "tp.listeners"
    for _, l in ipairs(cfg and cfg.listeners or {}) do
        if listeners.is_web(l.kind) then
            local host = cfg.metaserver_public_host ~= "" and
                         cfg.metaserver_public_host or l.host
            if host == "0.0.0.0" or host == "::" or host == "" then
                host = require("tp.metaserver").hostname()
            end
            if host:find(":", 1, true) then
                host = "[" .. host .. "]"
            end
            return string.format("%s://%s:%d%s", l.kind == "webs" and
                                 "https" or "http", host, l.port, M.path(id))
        end
    end
    return nil
end

-- Whether player pid (nil: a visitor) may read battle record b;
-- spectating: whether visitors may watch the game now.
function M.may_read(b, pid, spectating)
    if spectating then
        return true
    end
    for _, p in ipairs(b.players or {}) do
        if p == pid then
            return true
        end
    end
    return false
end

return M
