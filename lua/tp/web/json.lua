-- tp.web.json: TP reply frames as the JSON of the web API (docs/http.md),
-- and JSON in and out with lua-cjson.
--
-- A frame's fields are kept with their protocol.xml names; the variable
-- part of objects and orders (their parameters, coded by the object or
-- order type) is decoded and named by the type's description. Nothing is
-- added that the frame does not carry: what a player reads over HTTP is
-- what the TP frame told them.

local cjson = require "cjson"
local codec = require "tp.codec"
local crypto = require "tp.crypto"
local params = require "tp.params"
local proto = require "tp.proto"
local types = require "tp.types"

local M = {}

-- lua-cjson writes an empty table as {}: arrays that may be empty are
-- given this marker, written as [] (a random string, so no value a
-- player wrote can be taken for it).
local EMPTY = "\1tp-empty-array-" .. crypto.hex(crypto.random(12))
local EMPTY_JSON = cjson.encode(EMPTY)

local decoder = cjson.new()
decoder.decode_max_depth(32)
decoder.decode_invalid_numbers(false)

-- An array (a Lua sequence) for JSON: an empty one marked.
function M.array(t)
    if t == EMPTY then
        return t
    end
    if t == nil or next(t) == nil then
        return EMPTY
    end
    return t
end

function M.encode(v)
    local s = cjson.encode(v)
    if s:find(EMPTY_JSON, 1, true) then
        s = s:gsub(EMPTY_JSON:gsub("%p", "%%%0"), "[]")
    end
    return s
end

-- Decodes a request body: the value, or nil and why.
function M.decode(s)
    if s == nil or s == "" then
        return nil, "the request needs a JSON body"
    end
    local ok, v = pcall(decoder.decode, s)
    if not ok then
        return nil, "bad JSON: " .. tostring(v):gsub("^.-:%d+: ", "")
    end
    return v
end

-- Copies the arrays of a value for JSON (every empty table inside made an
-- empty array, since frames have no empty objects).
local function arrays(v)
    if type(v) ~= "table" then
        return v
    end
    if next(v) == nil then
        return EMPTY
    end
    local out = {}
    for k, x in pairs(v) do
        out[k] = arrays(x)
    end
    return out
end

-- A frame's fields without the codec's own (_type, _name ...).
local function plain(frame)
    local out = {}
    for k, v in pairs(frame) do
        if type(k) ~= "string" or k:sub(1, 1) ~= "_" then
            out[k] = arrays(v)
        end
    end
    return out
end
M.plain = plain

-- The group of each flattened parameter of an object type.
local function groups_of(ot)
    local g = ot._web_groups
    if not g then
        g = {}
        for _, group in ipairs(ot.groups) do
            for _, p in ipairs(group.params or {}) do
                g[#g + 1] = group.name
            end
        end
        ot._web_groups = g
    end
    return g
end

-- An Object frame (TP04) as JSON.
function M.object(frame)
    local ot = types.objects[frame.otype]
    local out = {
        id = frame.id, type = frame.otype, type_name = ot and ot.name or "",
        name = frame.name, desc = frame.desc, parent = frame.parent,
        contains = M.array(frame.contains), modtime = frame.modtime,
    }
    local list = {}
    if ot then
        local values = codec.decode(ot.layout, frame.params, false)
        local groups = groups_of(ot)
        for i, p in ipairs(ot.flat) do
            local v = values and values["p" .. i] or {}
            list[#list + 1] = { group = groups[i], name = p.name,
                                type = p.type, value = arrays(v) }
            if p.type == "position" and not out.pos then
                out.pos = { x = v.x, y = v.y, z = v.z }
            elseif p.type == "velocity" and not out.vel then
                out.vel = { x = v.x, y = v.y, z = v.z }
            elseif p.type == "reference" and v.reftype == 7 and
                   out.owner == nil then
                out.owner = v.id
            elseif p.type == "order_queue" and out.queue == nil then
                out.queue = v.queueid
            elseif p.type == "size" and out.size == nil then
                out.size = v.size
            end
        end
    end
    out.params = M.array(list)
    return out
end

-- An Order frame as JSON (layout: the one the request used).
function M.order(frame, layout_of)
    local ot = types.orders[frame.otype]
    local out = {
        queue = frame.id, slot = frame.slot, otype = frame.otype,
        name = ot and ot.name or "", turns = frame.turns,
        resources = M.array(arrays(frame.resources)),
    }
    local list = {}
    if ot then
        local values = codec.decode(layout_of(ot), frame.params, false)
        for i, p in ipairs(ot.params) do
            local v = values and values["p" .. i] or {}
            list[#list + 1] = { name = p.name, type = p.type,
                                type_id = params.order[p.type].id,
                                description = p.description,
                                value = arrays(v) }
        end
    end
    out.params = M.array(list)
    return out
end

-- Described parameters ({ name, type (id), description }) with their
-- type's name too (names: params.order_name or params.object_name).
local function described(list, names)
    local out = {}
    for _, p in ipairs(list or {}) do
        out[#out + 1] = { name = p.name, type_id = p.type,
                          type = names[p.type] or "",
                          description = p.description }
    end
    return M.array(out)
end

-- An OrderDesc frame as JSON.
function M.order_desc(frame)
    local out = plain(frame)
    out.parameters = described(frame.parameters, params.order_name)
    return out
end

-- An ObjectDesc frame as JSON.
function M.object_desc(frame)
    local out = plain(frame)
    local groups = {}
    for _, g in ipairs(frame.groups or {}) do
        groups[#groups + 1] = { id = g.id, name = g.name,
                                description = g.description,
                                parameters = described(g.parameters,
                                                       params.object_name) }
    end
    out.groups = M.array(groups)
    return out
end

-- A Message frame as JSON.
function M.message(frame)
    return { board = frame.id, slot = frame.slot, subject = frame.subject,
             body = frame.body, turn = frame.turn,
             types = M.array(frame.msgtypes),
             references = M.array(arrays(frame.references)) }
end

-- Converts one frame by its type; a Fail is returned as (nil, fail).
function M.frame(frame, layout_of)
    local t = frame._type
    if t == proto.id.Fail then
        return nil, frame
    elseif t == proto.id.Object then
        return M.object(frame)
    elseif t == proto.id.Order then
        return M.order(frame, layout_of)
    elseif t == proto.id.OrderDesc then
        return M.order_desc(frame)
    elseif t == proto.id.ObjectDesc then
        return M.object_desc(frame)
    elseif t == proto.id.Message then
        return M.message(frame)
    end
    return plain(frame)
end

return M
