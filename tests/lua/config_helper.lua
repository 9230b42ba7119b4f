-- config_helper.lua: loading a configuration file written by a test.
--   local load_config = dofile(TP_HOME .. "/tests/lua/config_helper.lua")
--   local cfg, err = load_config("return { port = 7000 }", set, overrides)
local config = require "tp.config"

return function(text, set, overrides)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
    local cfg, err = config.load { home = TP_HOME, config = path,
                                   set = set or {},
                                   overrides = overrides or {} }
    os.remove(path)
    return cfg, err
end
