-- tp.views: what one player may see, and the frames that show it.
--
-- Every request goes through this module to decide visibility: objects
-- (the ruleset's visible() hook, everything by default), order queues
-- (their owner only), boards (their owner; public boards to everyone),
-- designs (the ruleset's design_visible() hook, own designs by default).
-- It also builds the per-viewer frames: Object (TP04 and TP03), Order,
-- OrderDesc, ObjectDesc, OrderQueue, Board, Message, Design, Component,
-- Property, Category, Resource, Player.

local codec = require "tp.codec"
local model = require "tp.model"
local params = require "tp.params"
local proto = require "tp.proto"
local types = require "tp.types"

local M = {}

local ruleset        -- the ruleset table (hooks)
local ctx            -- the ruleset context, passed to hooks
local accounts

-- The players who can see obj now, or nil when the ruleset shows
-- everything to everyone (kept with a removed object: see saw_go).
local function viewers_of(obj)
    if not ruleset.visible then
        return nil
    end
    local list = {}
    for _, p in ipairs(accounts.players()) do
        if M.can_see(p.id, obj) then
            list[#list + 1] = p.id
        end
    end
    return list
end

-- Whether player may be told that removed object id is gone: only those
-- who could see it when it went.
function M.saw_go(player, id)
    local seen = model.gone_seen[id]
    if not seen then
        return true
    end
    for _, p in ipairs(seen) do
        if p == player then
            return true
        end
    end
    return false
end

function M.init(rs, context)
    ruleset, ctx = rs, context
    M.flush_frames()
    accounts = require "tp.accounts"
    model.viewers_of = viewers_of
end

-- ------------------------------------------------------------ visibility

function M.can_see(player, obj)
    if not obj then
        return false
    end
    if ruleset.visible then
        return ruleset.visible(ctx, player, obj) and true or false
    end
    return true
end

-- The visible object id, or nil.
function M.object(player, id)
    local o = model.objects[id]
    if o and M.can_see(player, o) then
        return o
    end
end

function M.owns_queue(player, q)
    return q ~= nil and q.owner ~= 0 and q.owner == player
end

-- May player change obj (ModifyObject)? Only its owner, and only when
-- the ruleset lets them see it.
function M.owns_object(player, obj)
    return obj ~= nil and obj.owner ~= 0 and obj.owner == player and
           M.can_see(player, obj)
end

function M.board_readable(player, b)
    return b ~= nil and (b.owner == player or b.owner == 0)
end

-- May player post to b? The ruleset's board_postable(ctx, player, board)
-- decides when it has one; by default the boards they read (their own, the
-- public ones) and other players' personal boards (that is how players
-- write to each other: such a message goes to the end, marked with its
-- sender, see handlers/boards.lua).
function M.board_postable(player, b)
    if b == nil then
        return false
    end
    if ruleset and ruleset.board_postable then
        return ruleset.board_postable(ctx, player, b) and true or false
    end
    return M.board_readable(player, b) or
           (b.owner ~= 0 and accounts.player(b.owner) ~= nil)
end

function M.design_visible(player, d)
    if not d then
        return false
    end
    if ruleset.design_visible then
        return ruleset.design_visible(ctx, player, d) and true or false
    end
    return d.owner == player or d.owner == 0
end

-- May player modify or remove design d? Only their own designs (a
-- published design is readable, not writable).
function M.owns_design(player, d)
    return d ~= nil and d.owner ~= 0 and d.owner == player and
           M.design_visible(player, d)
end

-- Can this connection be shown order type ot? TP03 clients only know
-- order parameter types 0-9 (PROTOCOL.md 15.2).
function M.order_type_shown(conn, ot)
    return ot ~= nil and (conn.version ~= 3 or ot.tp03)
end

-- ------------------------------------------------------------ objects

local function visible_children(player, obj)
    local out = {}
    for _, c in ipairs(obj.children) do
        local child = model.objects[c]
        if child and M.can_see(player, child) then
            out[#out + 1] = c
        end
    end
    return out
end

-- The value of one object parameter as the viewer sees it.
local function param_value(p, obj, player)
    if p.get then
        return p.get(obj, player, ctx)
    end
    local t = p.type
    if t == "position" then
        return { x = obj.pos.x, y = obj.pos.y, z = obj.pos.z, relative = 0 }
    elseif t == "velocity" then
        return { x = obj.vel.x, y = obj.vel.y, z = obj.vel.z, relative = 0 }
    elseif t == "acceleration" then
        return { x = 0, y = 0, z = 0, relative = 0 }
    elseif t == "bound_position" then
        return { slot = -1 }
    elseif t == "order_queue" then
        local q = model.queues[obj.id]
        return { queueid = M.owns_queue(player, q) and q.id or 0 }
    elseif t == "resource_list" then
        return { resources = obj.data[p.field or "resources"] or {} }
    elseif t == "reference" then
        return { reftype = p.reftype or 7,
                 id = obj[p.field or "owner"] or obj.data[p.field] or 0 }
    elseif t == "reference_quantity_list" then
        return { references = obj.data[p.field] or {} }
    elseif t == "integer" then
        return { value = obj.data[p.field] or 0 }
    elseif t == "size" then
        return { size = obj.size }
    elseif t == "media" then
        return { url = obj.data[p.field or "media"] or "" }
    end
    error("no value for parameter " .. tostring(p.name))
end

-- The Object frame of obj for player, in the connection's version.
local function build_object_frame(conn, obj)
    local player = conn.player
    local ot = types.objects[obj.type]
    if conn.version == 3 then
        local q = model.queues[obj.id]
        local own = M.owns_queue(player, q)
        local kind = types.TP03[ot.tp03.kind]
        local extra
        if ot.tp03.extra then
            extra = ot.tp03.extra(obj, player, ctx)
        else
            local ships = {}
            for _, s in ipairs(obj.data.ships or {}) do
                ships[#ships + 1] = { type = s.design, count = s.count }
            end
            local res = {}
            for _, r in ipairs(obj.data.resources or {}) do
                res[#res + 1] = { resource = r.resource, units = r.stored,
                                  minable = r.minable,
                                  inaccessible = r.unavailable }
            end
            extra = { age = ctx.turn or 0,
                      owner = obj.owner ~= 0 and obj.owner or -1,
                      resources = res, ships = ships,
                      damage = obj.data.damage or 0,
                      endx = 0, endy = 0, endz = 0 }
        end
        local allowed = {}
        if own then
            for _, id in ipairs(q.allowed) do
                if M.order_type_shown(conn, types.orders[id]) then
                    allowed[#allowed + 1] = id
                end
            end
        end
        return proto.frame("Object", {
            id = obj.id, otype = kind.type, name = obj.name, size = obj.size,
            pos = obj.pos, vel = obj.vel,
            contains = visible_children(player, obj),
            ordertypes = allowed, orders = own and #q.orders or 0,
            modtime = obj.modtime,
            params = codec.encode(ot.tp03_layout, extra, conn.padding),
        })
    end
    local values = {}
    for i, p in ipairs(ot.flat) do
        values["p" .. i] = param_value(p, obj, player)
    end
    return proto.frame("Object", {
        id = obj.id, otype = obj.type, name = obj.name, desc = obj.desc,
        parent = obj.parent, contains = visible_children(player, obj),
        modtime = obj.modtime,
        params = codec.encode(ot.layout, values, conn.padding),
    })
end

-- ------------------------------------------------------------ frame cache

-- Object frames encoded once and sent as bytes until something may have
-- changed: per viewer (player, protocol version, padding) and object id,
-- each a frame table { _type, _body } that conn:send copies as it is.
-- Everything a frame shows comes from the model (and the ruleset's hooks
-- reading it), so the whole cache goes when the model's generation
-- changes (a commit, an undo, a rollback, a load, so every end of turn);
-- while the model is dirty (a request changing it, before its commit) or
-- for anything but a TP connection (the web side's virtual connections
-- want the fields) frames are built each time. The ruleset's visible()
-- and parameter hooks must then depend on the game's state only (as the
-- API says); a ruleset with views_volatile = true is never cached.
local OBJECT = proto.id.Object
M.frame_cache_max = 65536       -- frames kept over all viewers
local cache = {}                -- viewer key -> { [object id] = frame }
local cache_gen                 -- model generation the cache is of
local cache_size = 0            -- frames in it
local layouts = {}              -- "set/version" -> Object frame layout
-- conn -> { key, version, pad }: what its viewer key is made of, read
-- from the connection once (its player is set once, at login; its
-- version at its first frame) but its padding each time (SetFilters).
local viewers = setmetatable({}, { __mode = "k" })

-- Drops every cached frame (tp.views.init does, for a new ruleset).
function M.flush_frames()
    cache, cache_size = {}, 0
end

-- The frames of conn's viewer, or nil when conn is not to be cached.
local function viewer_frames(conn)
    if type(conn) ~= "userdata" or model.is_dirty() or
       ruleset.views_volatile then
        return nil
    end
    local gen = model.generation()
    if gen ~= cache_gen then
        cache, cache_gen, cache_size = {}, gen, 0
    end
    local pad = conn.padding
    local v = viewers[conn]
    if not v or v.pad ~= pad then
        local version, player = conn.version, conn.player
        if type(player) ~= "number" then
            return nil          -- not a player's connection
        end
        v = { pad = pad, version = version,
              key = player * 4 + (version == 3 and 2 or 0) +
                    (pad and 1 or 0) }
        viewers[conn] = v
    end
    local t = cache[v.key]
    if not t then
        t = {}
        cache[v.key] = t
    end
    return t, v.version, pad
end

-- Object frame layout of conn's set and version (nil: none).
local function object_layout(conn, version)
    local set = conn.admin and "admin" or "player"
    local lk = set .. "/" .. version
    local lay = layouts[lk]
    if lay == nil then
        local _, l = codec.lookup(set, version, OBJECT)
        lay = l or false
        layouts[lk] = lay
    end
    return lay or nil
end

-- The Object frame of obj as conn's player sees it, in its version.
function M.object_frame(conn, obj)
    local frames, version, pad = viewer_frames(conn)
    if not frames then
        return build_object_frame(conn, obj)
    end
    local f = frames[obj.id]
    if f then
        return f
    end
    f = build_object_frame(conn, obj)
    local lay = object_layout(conn, version == 3 and 3 or 4)
    if not lay then
        return f
    end
    f = { _type = OBJECT, _body = codec.encode(lay, f, pad) }
    if cache_size >= M.frame_cache_max then
        M.flush_frames()
        frames = viewer_frames(conn)
    end
    frames[obj.id] = f
    cache_size = cache_size + 1
    return f
end

function M.object_desc_frame(ot)
    local groups = {}
    for _, g in ipairs(ot.groups) do
        local ps = {}
        for _, p in ipairs(g.params or {}) do
            ps[#ps + 1] = { name = p.name, type = params.object[p.type].id,
                            description = p.description }
        end
        groups[#groups + 1] = { id = g.id, name = g.name,
                                description = g.description, parameters = ps }
    end
    return proto.frame("ObjectDesc", {
        id = ot.id, name = ot.name, description = ot.description,
        modtime = types.modtime, groups = groups,
    })
end

-- ------------------------------------------------------------ orders

-- Which coding of orderParamObject the connection uses (PROTOCOL.md 9).
function M.order_layout(conn, ot)
    if conn.version == 3 or
       (conn.client or ""):sub(1, 15) == "libtpproto-cpp/" then
        return ot.layout3
    end
    return ot.layout4
end

-- Full parameter values of an order (read-only parts filled in).
function M.order_values(obj, order, player)
    local ot = types.orders[order.type]
    local values = {}
    for i, p in ipairs(ot.params) do
        local v = order.params[p.name] or {}
        local t, out = p.type, nil
        if t == "abs_coords" then
            out = { x = v.x or 0, y = v.y or 0, z = v.z or 0 }
        elseif t == "time" then
            out = { turns = v.turns or 0, maxtime = p.maxtime or -1 }
        elseif t == "object" then
            out = { objectid = v.objectid or 0,
                    validtypes = p.validtypes or {} }
        elseif t == "player" then
            out = { playerid = v.playerid or 0, mask = p.mask or 0 }
        elseif t == "rel_coords" then
            out = { objectid = v.objectid or 0, x = v.x or 0, y = v.y or 0,
                    z = v.z or 0 }
        elseif t == "range" then
            out = { value = v.value or p.min or 0, minvalue = p.min or 0,
                    maxvalue = p.max or 0, increment = p.increment or 1 }
        elseif t == "list" then
            local choices = p.choices
            if type(choices) == "function" then
                choices = choices(ctx, obj, player)
            end
            out = { possibleselections = choices or {},
                    selection = v.selection or {} }
        elseif t == "string" then
            out = { maxlength = p.maxlength or 1024, string = v.string or "" }
        elseif t == "reference" then
            out = { reference = v.reference or 0, allowed = p.allowed or {} }
        elseif t == "reference_list" then
            out = { references = v.references or {},
                    allowed = p.allowed or {} }
        elseif t == "resource_list" then
            out = { allowed = p.allowed or {}, maxmass = p.maxmass or 0,
                    maxvolume = p.maxvolume or 0,
                    selected = v.selected or {} }
        elseif t == "generic_reference_quantity_list" then
            local possibles = p.possibles
            if type(possibles) == "function" then
                possibles = possibles(ctx, obj, player)
            end
            out = { weightmaximums = p.weightmaximums or {},
                    possibles = possibles or {},
                    selection = v.selection or {} }
        end
        values["p" .. i] = out
    end
    return values
end

-- The client-writable parts of decoded parameter values.
local WRITABLE = {
    abs_coords = { "x", "y", "z" }, time = { "turns" },
    object = { "objectid" }, player = { "playerid" },
    rel_coords = { "objectid", "x", "y", "z" }, range = { "value" },
    list = { "selection" }, string = { "string" },
    reference = { "reference" }, reference_list = { "references" },
    resource_list = { "selected" },
    generic_reference_quantity_list = { "selection" },
}

-- Decodes an order's parameters sent by a client. Returns the params
-- table keyed by parameter name, or nil, message.
function M.decode_order_params(conn, ot, raw)
    local t, err = codec.decode(M.order_layout(conn, ot), raw, conn.padding)
    if not t then
        return nil, err
    end
    local out = {}
    for i, p in ipairs(ot.params) do
        local v = t["p" .. i]
        local keep = {}
        for _, f in ipairs(WRITABLE[p.type]) do
            keep[f] = v[f]
        end
        out[p.name] = keep
    end
    return out
end

-- Estimated turns and resources of the order at slot (0-based).
function M.order_estimates(obj, order, slot)
    local ot = types.orders[order.type]
    local turns, res = 0, {}
    if ot.turns then
        turns = ot.turns(ctx, obj, order, slot) or 0
    end
    if ot.resources then
        res = ot.resources(ctx, obj, order, slot) or {}
    end
    return math.max(0, math.floor(turns)), res
end

-- The Order frame of order at slot of queue q (on obj). Its id is the
-- queue id on TP04 and the object id on TP03 (PROTOCOL.md 7.5).
function M.order_frame(conn, obj, order, slot, q)
    local ot = types.orders[order.type]
    local turns, res = M.order_estimates(obj, order, slot)
    local id = obj.id
    if conn.version ~= 3 and q then
        id = q.id
    end
    return proto.frame("Order", {
        id = id, slot = slot, otype = order.type, turns = turns,
        resources = res,
        params = codec.encode(M.order_layout(conn, ot),
                              M.order_values(obj, order, conn.player),
                              conn.padding),
    })
end

function M.order_desc_frame(ot)
    local ps = {}
    for _, p in ipairs(ot.params) do
        ps[#ps + 1] = { name = p.name, type = params.order[p.type].id,
                        description = p.description }
    end
    return proto.frame("OrderDesc", {
        id = ot.id, name = ot.name, description = ot.description,
        parameters = ps, modtime = types.modtime,
    })
end

function M.order_queue_frame(q)
    return proto.frame("OrderQueue", {
        id = q.id, modtime = q.modtime, maxslots = 0xFFFFFFFF,
        numorders = #q.orders, ordertypes = q.allowed,
    })
end

-- ------------------------------------------------------------ the rest

function M.board_frame(b)
    return proto.frame("Board", {
        id = b.id, name = b.name, description = b.description,
        messages = #b.msgs, modtime = b.modtime,
    })
end

function M.message_frame(b, slot, m)
    return proto.frame("Message", {
        id = b.id, slot = slot, msgtypes = {}, subject = m.subject or "",
        body = m.body or "", turn = m.turn or 0,
        references = m.references or {},
    })
end

-- An idle player (tp.idle) or one out of the game is shown so to every
-- player, in the race (TP has no field for it).
function M.player_frame(p)
    local race = p.race or ""
    if p.removed then
        race = race .. " (removed: idle)"
    elseif p.idle then
        race = race .. " (idle)"
    end
    return proto.frame("Player", { id = p.id, name = p.name,
                                   race = race,
                                   modtime = p.modtime or p.created or 0 })
end

function M.resource_frame(r)
    return proto.frame("Resource", {
        id = r.id, name = r.name, name_plural = r.name_plural or r.name,
        unit = r.unit or "", unit_plural = r.unit_plural or r.unit or "",
        description = r.description or "", weight = r.weight or 0,
        size = r.size or 0, modtime = types.modtime,
    })
end

function M.category_frame(c)
    return proto.frame("Category", {
        id = c.id, modtime = c.modtime or types.modtime, name = c.name,
        description = c.description or "",
    })
end

function M.component_frame(c)
    local props = {}
    for _, pid in ipairs(types.ids(types.properties)) do
        local p = types.properties[pid]
        local v = (c.properties or {})[p.name]
        if v ~= nil then
            props[#props + 1] = { id = pid, value = type(v) == "string" and v
                                  or string.format("(lambda (design) %s)",
                                                   tostring(v)) }
        end
    end
    return proto.frame("Component", {
        id = c.id, modtime = types.modtime, categories = c.categories or {},
        name = c.name, description = c.description or "",
        requirements = c.requirements_text or "(lambda (design) (cons #t \"\"))",
        properties = props,
    })
end

function M.property_frame(p)
    return proto.frame("Property", {
        id = p.id, modtime = types.modtime, categories = p.categories or {},
        rank = p.rank or 0, name = p.name, displayname = p.displayname or
        p.name, description = p.description or "",
        calculate = p.calculate_text or "",
        requirements = p.requirements_text or "",
    })
end

function M.design_frame(d)
    local props = {}
    for _, pv in ipairs(d.properties or {}) do
        props[#props + 1] = { id = pv.id, value = pv.value }
    end
    return proto.frame("Design", {
        id = d.id, modtime = d.modtime, categories = d.categories or {},
        name = d.name, description = d.description or "",
        inuse = d.inuse or 0, owner = d.owner ~= 0 and d.owner or -1,
        components = d.components or {}, feedback = d.feedback or "",
        properties = props,
    })
end

return M
