-- find.lua: `tpserver find`, the TP games a player would be shown.
--
--   tpserver find [--metaserver URL]... [--timeout SECONDS] [--no-local]
--
-- Browses the local network through avahi-daemon for the TP service
-- types (_tp._tcp, _tps._tcp, _tp-http._tcp, _tp-https._tcp) and asks
-- each metaserver given for its list (`?action=get`: a Sequence and Game
-- frames, read with the server's own codec). Prints one line per game:
-- its name, ruleset, turn, players, where it was found, and its URLs.
-- Exit status: 0 when a game was found, 1 when none was (or no search
-- could run), 2 for a usage error.

local core = require "tp.core"
local codec = require "tp.codec"
local sys = require "tp.sys"

local USAGE = "usage: tpserver find [--metaserver URL]... [--timeout SECONDS] "
              .. "[--no-local]\n"

local opts = { metaservers = {}, timeout = 3, browse = true }
do
    local i = 1
    while arg[i] do
        local a = arg[i]
        if a == "--metaserver" and arg[i + 1] then
            opts.metaservers[#opts.metaservers + 1] = arg[i + 1]
            i = i + 1
        elseif a == "--timeout" and tonumber(arg[i + 1]) then
            opts.timeout = tonumber(arg[i + 1])
            i = i + 1
        elseif a == "--no-local" then
            opts.browse = false
        elseif a == "-h" or a == "--help" then
            io.stdout:write(USAGE)
            return 0
        else
            io.stderr:write("tpserver find: unknown or incomplete option ",
                            a, "\n", USAGE)
            return 2
        end
        i = i + 1
    end
    if opts.timeout <= 0 or opts.timeout > 600 then
        io.stderr:write("tpserver find: --timeout must be between 0 and "
                        .. "600 seconds\n")
        return 2
    end
end

require("tp.proto").register()

local TYPES = { ["_tp._tcp"] = "tp", ["_tps._tcp"] = "tps",
                ["_tp-http._tcp"] = "tp+http",
                ["_tp-https._tcp"] = "tp+https" }
local DEFAULT_PORT = { tp = 6923, tps = 6924 }

local games, order = {}, {}
local pending = 0          -- searches not finished
local searched = 0         -- searches that could run
local deadline_timer

local function url(kind, host, port)
    if host:find(":", 1, true) then
        host = "[" .. host .. "]"
    end
    if DEFAULT_PORT[kind] == port then
        return string.format("%s://%s/", kind, host)
    end
    return string.format("%s://%s:%d/", kind, host, port)
end

local function game_entry(key, fields)
    local g = games[key]
    if not g then
        g = { urls = {}, seen = {} }
        games[key] = g
        order[#order + 1] = key
    end
    for k, v in pairs(fields) do
        if v ~= nil and v ~= "" then
            g[k] = v
        end
    end
    return g
end

local function add_url(g, u)
    if not g.seen[u] then
        g.seen[u] = true
        g.urls[#g.urls + 1] = u
    end
end

local function print_games()
    local rows = { { "NAME", "RULESET", "TURN", "PLAYERS", "FOUND ON",
                     "ADDRESSES" } }
    for _, key in ipairs(order) do
        local g = games[key]
        table.sort(g.urls)
        rows[#rows + 1] = {
            g.name or "?",
            ((g.rule or "?") .. (g.rulever and (" " .. g.rulever) or "")),
            g.turn or "-", g.plys or "-", g.where or "?",
            table.concat(g.urls, " ") }
    end
    local widths = {}
    for _, r in ipairs(rows) do
        for i, c in ipairs(r) do
            widths[i] = math.max(widths[i] or 0, #c)
        end
    end
    for _, r in ipairs(rows) do
        local cells = {}
        for i, c in ipairs(r) do
            cells[i] = i < #r and (c .. string.rep(" ", widths[i] - #c)) or c
        end
        io.stdout:write(table.concat(cells, "  "), "\n")
    end
end

local finished = false
local browser
local function finish()
    if finished then
        return
    end
    finished = true
    if deadline_timer then
        deadline_timer:stop()
    end
    if browser then
        browser:close()
    end
    if #order == 0 then
        io.stdout:write("no Thousand Parsec games found\n")
    else
        print_games()
    end
    io.stdout:flush()
    sys.set_exit_status(#order > 0 and 0 or 1)
end

local function done_one()
    pending = pending - 1
    if pending <= 0 then
        -- A little longer for the resolvers still running.
        core.timer(300, 0, finish)
    end
end

-- ------------------------------------------------------------ Zeroconf

if opts.browse then
    local ok, avahi = pcall(require, "tp.avahi")
    local types = {}
    for t in pairs(TYPES) do
        types[#types + 1] = t
    end
    table.sort(types)
    local waiting = {}
    local b, err
    if ok then
        b, err = avahi.browse(types, function(event, d)
            if event == "found" then
                local kind = TYPES[d.type]
                local g = game_entry(d.name .. "\0" .. d.host, {
                    name = d.name, rule = d.txt.rule, rulever = d.txt.rulever,
                    turn = d.txt.turn, plys = d.txt.plys,
                    where = "local network" })
                if kind then
                    add_url(g, url(kind, d.host:gsub("%.$", ""), d.port))
                end
            elseif event == "all_for_now" then
                if waiting[d] then
                    waiting[d] = nil
                    done_one()
                end
            elseif event == "failure" then
                io.stderr:write("tpserver find: local network: ", tostring(d),
                                "\n")
            end
        end)
    else
        err = tostring(avahi)
    end
    if b then
        browser = b
        searched = searched + 1
        for _, t in ipairs(types) do
            waiting[t] = true
            pending = pending + 1
        end
    else
        io.stderr:write("tpserver find: cannot search the local network: ",
                        tostring(err), " (is avahi-daemon running?)\n")
    end
end

-- ------------------------------------------------------------ metaservers

local GAME_TP03 = codec.compile(
    "S:name S:key [S]:tp S:server S:sertype S:rule S:rulever " ..
    "[S:type S:dns S:ip I:port]:connections " ..
    "[I:id S:strval I:intval]:parameters S:mediabase")

local function u32(s, at)
    local a, b, c, d = s:byte(at, at + 3)
    return ((a * 256 + b) * 256 + c) * 256 + d
end

-- The Game frames of a metaserver's reply; raises with a message.
local function read_games(body)
    local out, at = {}, 1
    local _, game_layout = codec.lookup("player", 4, 66)
    while at + 15 <= #body do
        if body:sub(at, at + 1) ~= "TP" then
            error("the reply is not TP frames", 0)
        end
        local ftype, len = u32(body, at + 8), u32(body, at + 12)
        if at + 15 + len > #body then
            error("the reply ends inside a frame", 0)
        end
        local payload = body:sub(at + 16, at + 15 + len)
        at = at + 16 + len
        if ftype == 66 then
            local g, err = codec.decode(game_layout, payload)
            if not g then
                g, err = codec.decode(GAME_TP03, payload)
            end
            if not g then
                error("a Game frame cannot be read: " .. tostring(err), 0)
            end
            out[#out + 1] = g
        elseif ftype == 1 then
            local n = #payload >= 8 and u32(payload, 5) or 0
            error("the metaserver says: " .. payload:sub(9, 8 + n), 0)
        end
    end
    return out
end

for _, base in ipairs(opts.metaservers) do
    local curl = require "tp.curl"
    local u = base .. (base:find("?", 1, true) and "&" or "?") .. "action=get"
    local id, err = curl.request({ url = u, timeout = opts.timeout,
                                   connect_timeout = opts.timeout,
                                   max_size = 4 * 1048576 }, function(res)
        local ok, list = false, nil
        if res.error then
            list = res.error
        elseif res.status ~= 200 then
            list = "HTTP " .. res.status
        else
            ok, list = pcall(read_games, res.body)
        end
        if not ok then
            io.stderr:write("tpserver find: ", base, ": ", tostring(list),
                            "\n")
        else
            for _, g in ipairs(list) do
                local p = {}
                for _, param in ipairs(g.parameters or {}) do
                    p[param.id] = param
                end
                local name = p[7] and p[7].strval ~= "" and p[7].strval
                             or g.name
                local e = game_entry("meta\0" .. g.name .. "\0" .. g.key ..
                                     "\0" .. name, {
                    name = name, rule = g.rule, rulever = g.rulever,
                    turn = p[9] and tostring(p[9].intval),
                    plys = p[1] and tostring(p[1].intval),
                    where = base })
                for _, c in ipairs(g.connections or {}) do
                    local host = c.dns ~= "" and c.dns or c.ip
                    if host ~= "" then
                        add_url(e, url(c.type, host, c.port))
                    end
                end
            end
        end
        done_one()
    end)
    if id then
        searched = searched + 1
        pending = pending + 1
    else
        io.stderr:write("tpserver find: ", base, ": ", tostring(err), "\n")
    end
end

if searched == 0 then
    if not opts.browse and #opts.metaservers == 0 then
        io.stderr:write("tpserver find: nothing to search (--no-local "
                        .. "without --metaserver)\n")
        return 2
    end
    return 1
end
-- Whatever has come by the deadline is the answer.
deadline_timer = core.timer(opts.timeout * 1000, 0, finish)
return 0
