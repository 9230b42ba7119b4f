-- admin/client.lua: what `tpserver console` and `tpserver backup` ask of
-- Lua on the client side (core/console_client.c), in a Lua state of their
-- own: where the server's console socket is, and password hashes.

local M = {}

-- The console socket of the configuration the server would read with the
-- same -c and --data: console_socket, else <data>/console.sock. A
-- relative path is taken from the current folder, as the server takes it
-- from the folder it was started in. opts: home, config, data.
-- Returns path or nil, message.
function M.socket_path(opts)
    local config = require "tp.config"
    local cfg, err = config.load {
        home = opts.home, config = opts.config,
        overrides = { data = opts.data }, set = {},
    }
    if not cfg then
        return nil, err
    end
    local path = cfg.console_socket
    if path == nil or path == "" then
        path = cfg.data .. "/console.sock"
    end
    -- Shown in messages: without "./", "//" or "x/..".
    return config.normalise(path)
end

-- opts.password -> the line to put in admins = { { password_hash = } }.
function M.hash_password(opts)
    return require("admin.secret").hash(opts.password)
end

return M
