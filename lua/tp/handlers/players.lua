-- Player and resource frames: players (id 0: the one asking) and the
-- ruleset's resource types, with their ID lists.

local accounts = require "tp.accounts"
local common = require "tp.handlers.common"
local types = require "tp.types"
local views = require "tp.views"

local M = {}

M.GetPlayerIDs = common.id_list("PlayerIDs", function()
    local out = {}
    for _, p in ipairs(accounts.players()) do
        out[#out + 1] = { id = p.id, modtime = p.modtime or p.created }
    end
    return out
end)

M.GetPlayer = common.handler(function(conn, req)
    return common.per_id(conn, req, req.ids, function(id)
        local p = accounts.player(id == 0 and conn.player or id)
        if id < 0 or not p then
            common.no_such("player", id, 7)
        end
        return views.player_frame(p)
    end)
end)

M.GetResourceIDs = common.id_list("ResourceIDs", function()
    return common.static_list(types.resources)
end)

M.GetResource = common.static_getter(function() return types.resources end,
                                     "resource", 6, views.resource_frame)

M.handlers = common.collect(M)

return M
