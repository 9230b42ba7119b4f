-- tp.accounts: player accounts and password checking.
--
-- Passwords are never stored: each account keeps a random salt and the
-- PBKDF2-HMAC-SHA256 hash of the password (OpenSSL), computed on libuv's
-- thread pool so that logins never stall the server. Names are unique
-- without regard to case; the part of a login name after the first '@'
-- names the game and is ignored.
--
-- Keys: account/<lower-case name> -> { id, name, kdf, iter, salt, hash,
-- email, comment, created }; player/<id> -> { id, name, race, created }.

local crypto = require "tp.crypto"
local db_mod = require "tp.db"

local M = {}

local KDF = "pbkdf2-sha256"
local HASH_LEN = 32
local MAX_NAME = 64

local db          -- tp.db handle
local iterations  -- for new hashes
local players = {}        -- id -> player record
local player_list = {}    -- the same records in id order
local next_player_id = 1
M.version = 0             -- bumped whenever a player is added

-- Cuts name at the first '@' and checks it. Returns name or nil, why.
function M.normalize(name)
    name = (name or ""):match("^([^@]*)")
    if name == "" then
        return nil, "empty user name"
    end
    if #name > MAX_NAME then
        return nil, "user name longer than " .. MAX_NAME .. " bytes"
    end
    if name:find("[%c]") then
        return nil, "user name with control characters"
    end
    return name
end

local function account_key(name)
    return "account/" .. name:lower()
end

function M.init(database, cfg)
    db = database
    iterations = cfg.password_iterations
    players = {}
    player_list = {}
    next_player_id = 1
    for _, p in db:each("player/") do   -- keys sort by id
        players[p.id] = p
        player_list[#player_list + 1] = p
        if p.id >= next_player_id then
            next_player_id = p.id + 1
        end
    end
    M.version = M.version + 1
end

function M.find(name)
    return db:get(account_key(name))
end

function M.player(id)
    return players[id]
end

-- All players, in id order (the caller must not modify the list).
function M.players()
    return player_list
end

function M.count()
    return #player_list
end

-- Hashes password with a new salt, then calls done(record_fields) or
-- done(nil, err) on the loop thread.
local function hash_new(password, done)
    local salt = crypto.random(16)
    crypto.pbkdf2_async(password, salt, iterations, HASH_LEN, "sha256",
        function(hash, err)
            if not hash then
                return done(nil, err)
            end
            done { kdf = KDF, iter = iterations, salt = crypto.hex(salt),
                   hash = crypto.hex(hash) }
        end)
end

-- Creates an account and its player. done(player) on success, or
-- done(nil, "taken" | "full" | "error", message). extra: email, comment,
-- max_players (refuse when the game has that many; nil or 0: no cap).
function M.create(name, password, extra, done)
    if M.find(name) then
        return done(nil, "taken", "account name '" .. name .. "' is taken")
    end
    hash_new(password, function(secret, err)
        if not secret then
            return done(nil, "error", "cannot hash password: " .. err)
        end
        -- The game may have filled, or the name been taken, while
        -- hashing.
        local cap = extra.max_players or 0
        if cap > 0 and #player_list >= cap then
            return done(nil, "full", string.format("the game is full (%d "
                        .. "players)", cap))
        end
        if M.find(name) then
            return done(nil, "taken", "account name '" .. name ..
                        "' is taken")
        end
        local id = next_player_id
        local now = os.time()
        local account = {
            id = id, name = name, kdf = secret.kdf, iter = secret.iter,
            salt = secret.salt, hash = secret.hash,
            email = extra.email or "", comment = extra.comment or "",
            created = now,
        }
        local player = { id = id, name = name, race = "Human",
                         created = now, alive = true, score = 0 }
        next_player_id = id + 1
        players[id] = player
        player_list[#player_list + 1] = player
        M.version = M.version + 1
        -- The player joins the game (board, home, fleets...) in the same
        -- batch as the account: all of it is stored, or none.
        local batch = db:batch()
        local ok, err = xpcall(function()
            if M.on_join then
                M.on_join(player, batch)
            end
            batch:put(account_key(name), account)
                 :put(db_mod.key("player", id), player)
                 :commit()
        end, debug.traceback)
        if not ok then
            -- The join failed, or the disk refused the batch: nothing of
            -- the account is stored, and nothing of it stays in memory.
            players[id] = nil
            table.remove(player_list)
            next_player_id = id
            M.version = M.version + 1
            if M.on_join_failed then
                M.on_join_failed()
            end
            require("tp.log").error("game", "player %s could not join: %s",
                                    name, tostring(err))
            return done(nil, "error", "the game could not take a new "
                        .. "player (see the server log)")
        end
        require("tp.model").committed()
        done(player)
    end)
end

-- A hash to compare against when the name is unknown, so that a wrong
-- name costs as much time as a wrong password.
local DUMMY = { iter = 0, salt = "00000000000000000000000000000000",
                hash = "" }

-- Checks name/password. done(player) or done(nil).
function M.verify(name, password, done)
    local account = M.find(name)
    local rec = account or DUMMY
    local iter = account and account.iter or iterations
    crypto.pbkdf2_async(password, crypto.unhex(rec.salt) or "", iter,
        HASH_LEN, "sha256", function(hash)
            if account and hash and
               crypto.equal(crypto.hex(hash), account.hash) then
                if account.banned then
                    require("tp.log").info("session", "login refused: "
                        .. "account %s is banned (%s)", account.name,
                        tostring(account.banned.reason))
                    return done(nil, "banned")
                end
                return done(players[account.id])
            end
            done(nil)
        end)
end

-- ------------------------------------------------------------ admin
-- (admin/commands.lua: remove_player, reset_password, ban, unban)

-- Removes the account and its player record; what the player owned in
-- the game stays, with its owner id. Returns the player, or nil, err.
function M.remove(name)
    local account = M.find(name)
    if not account then
        return nil, "no account '" .. tostring(name) .. "'"
    end
    local p = players[account.id]
    players[account.id] = nil
    for i = #player_list, 1, -1 do
        if player_list[i].id == account.id then
            table.remove(player_list, i)
        end
    end
    M.version = M.version + 1
    db:batch():delete(account_key(account.name))
              :delete(db_mod.key("player", account.id)):commit(true)
    return p or { id = account.id, name = account.name }
end

-- Sets a new password. done(true) or done(nil, err).
function M.set_password(name, password, done)
    if not M.find(name) then
        return done(nil, "no account '" .. tostring(name) .. "'")
    end
    hash_new(password, function(secret, err)
        local account = M.find(name)
        if not secret or not account then
            return done(nil, secret and "the account was removed meanwhile"
                        or "cannot hash password: " .. tostring(err))
        end
        account.kdf, account.iter = secret.kdf, secret.iter
        account.salt, account.hash = secret.salt, secret.hash
        db:put(account_key(account.name), account)
        done(true)
    end)
end

-- A banned account cannot log in (verify refuses it even with the right
-- password). Returns the account, or nil, err.
function M.ban(name, reason)
    local account = M.find(name)
    if not account then
        return nil, "no account '" .. tostring(name) .. "'"
    end
    account.banned = { reason = reason or "", at = os.time() }
    db:put(account_key(account.name), account)
    return account
end

function M.unban(name)
    local account = M.find(name)
    if not account then
        return nil, "no account '" .. tostring(name) .. "'"
    end
    account.banned = nil
    db:put(account_key(account.name), account)
    return account
end

return M
