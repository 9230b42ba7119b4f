-- Game frames (PROTOCOL.md 6-9), served after login: the list of their
-- families, one module each (tp.handlers.common holds what they share).
-- boot.lua registers every family; M.handlers, all of them in one table,
-- is for callers that register the game frames at once (the Lua tests).

local M = {}

M.families = {
    "tp.handlers.objects",      -- objects, object descriptions
    "tp.handlers.orders",       -- order descriptions, queues, orders
    "tp.handlers.boards",       -- boards and messages
    "tp.handlers.designs",      -- categories, components, properties,
                                -- designs
    "tp.handlers.players",      -- players, resources
}

M.handlers = {}
for _, name in ipairs(M.families) do
    for frame, h in pairs(require(name).handlers) do
        assert(not M.handlers[frame], frame .. " is served twice")
        M.handlers[frame] = h
    end
end

return M
