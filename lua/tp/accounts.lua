-- tp.accounts: player accounts and password checking.
--
-- Passwords are never stored: each account keeps a random salt and the
-- PBKDF2-HMAC-SHA256 hash of the password (OpenSSL), computed on libuv's
-- thread pool so that logins never stall the server.
--
-- Names (one set of rules for clients, the admin console and the TP admin
-- port: every path goes through M.normalize, M.create and M.find):
--   * the part of a login name after the first '@' names the game and is
--     ignored; leading and trailing Unicode White_Space is dropped; the
--     rest is put in Unicode NFC (tp.text, ICU). "Alice " is "Alice".
--   * a name is 1 to MAX_NAME bytes (of UTF-8, after the above).
--   * a new name must be UTF-8 without control characters, spaces other
--     than U+0020, invisible characters (format characters, zero-width
--     spaces and joiners, bidi controls, everything Default_Ignorable),
--     private-use characters, noncharacters or unassigned code points;
--     the refusal names the rule and the code point.
--   * names are unique without regard to case (full Unicode case
--     folding) and to look-alike characters: a new name is taken when a
--     look-alike key of it (the Unicode TS #39 confusable skeleton, of the
--     case-folded name and of the name) equals one of an existing account.
--     "alıce", the Cyrillic "аlice" and "aIice" are taken by "alice".
--   * logins are looked up without regard to case and form: the account
--     stored under the typed name, else the one whose case-folded name is
--     the typed one's.
-- Accounts made before these rules keep working: their keys are read as
-- they are, and the case-folded and look-alike indexes are built in
-- memory from every account at start (nothing of them is stored).
--
-- New accounts from clients are limited per address (an IPv6 address
-- counts by its /64) and in total over a sliding window
-- (account_creation_limit, account_creation_total,
-- account_creation_window); the admin's are not. The counts are in
-- memory only.
--
-- Keys: account/<name with A-Z in lower case> -> { id, name, kdf, iter,
-- salt, hash, email, comment, created, notify_email }; player/<id> -> {
-- id, name, race, created }.

local core = require "tp.core"
local crypto = require "tp.crypto"
local db_mod = require "tp.db"
local text = require "tp.text"

local M = {}

local KDF = "pbkdf2-sha256"
local HASH_LEN = 32
-- The kdf of an account nobody can log into (a computer player).
local NO_PASSWORD = "none"
local MAX_NAME = 64
M.MAX_NAME = MAX_NAME
-- Longest login name looked at before trimming (tp.text's own cap).
local MAX_TYPED = 1024

local db          -- tp.db handle
local iterations  -- for new hashes
local config = {} -- the running configuration (the creation limits)
local players = {}        -- id -> player record
local player_list = {}    -- the same records in id order
local next_player_id = 1
M.version = 0             -- bumped whenever a player is added

-- The indexes of the stored accounts, rebuilt from the database by
-- build_index: an entry is { key = the account's key, name = its stored
-- name, id = its player id }.
local by_fold = {}   -- case-folded normalized name -> entry (logins)
local by_look = {}   -- look-alike key -> entry (uniqueness)
local keys_memo = {} -- stored name -> { fold, looks }: the ICU work once
local warned = {}    -- "name|name" pairs already logged as clashing

local function log()
    return require "tp.log"
end

local function codepoint(cp)
    return string.format("U+%04X", cp)
end

-- Cuts name at the first '@', trims it and puts it in NFC. Returns name,
-- or nil, why (a sentence for the Fail). This is the form of every name
-- looked up (Login) and of every new one (then checked by M.check_new).
-- Bytes that are not UTF-8 are kept as they are, so that a name stored
-- by an older server can still log in.
function M.normalize(name)
    name = tostring(name or ""):match("^([^@]*)")
    if #name > MAX_TYPED then
        return nil, "user name longer than " .. MAX_NAME .. " bytes"
    end
    name = text.trim(name)
    if text.valid(name) then
        name = assert(text.nfc(name))
    end
    if name == "" then
        return nil, "empty user name"
    end
    if #name > MAX_NAME then
        return nil, "user name longer than " .. MAX_NAME .. " bytes"
    end
    local bad = name:find("%c")
    if bad then
        return nil, "account names may not contain control characters ("
                    .. codepoint(name:byte(bad)) .. ")"
    end
    return name
end

local HIDDEN = {
    control = "control characters",
    space = "spaces other than the plain space (U+0020)",
    invisible = "invisible characters",
    private = "private-use characters",
    noncharacter = "noncharacters",
    unassigned = "unassigned code points",
}

-- The rules a new name (already through M.normalize) must meet besides
-- being free. Returns true or nil, why.
function M.check_new(name)
    if not text.valid(name) then
        return nil, "account names must be UTF-8 text"
    end
    local cp, kind = text.hidden(name)
    if cp then
        if kind == "space" then
            return nil, "account names may not contain spaces other than "
                        .. "the plain space (" .. codepoint(cp) .. ")"
        end
        return nil, "account names may not contain " ..
                    (HIDDEN[kind] or kind) .. " (" .. codepoint(cp) .. ")"
    end
    return true
end

local function account_key(name)
    return "account/" .. name:lower()
end

-- The case-folded form of a normalized name (logins are looked up by it).
local function fold_key(name)
    return text.fold(name) or name:lower()
end

-- The look-alike keys of a normalized name: the skeleton of its folded
-- form ("ALICE" and "alice"; "alıce" and "alice") and the skeleton of the
-- folded skeleton ("aIice", whose capital I looks like l, and "alice";
-- "bob0" and "bobo"). Two names clash when any key of one is a key of the
-- other. A name that is not UTF-8 (an old account) has its fold only.
local function looks_of(name, folded)
    local out = {}
    local function add(k)
        if k and k ~= "" then
            for _, have in ipairs(out) do
                if have == k then
                    return
                end
            end
            out[#out + 1] = k
        end
    end
    if not text.valid(name) then
        add(folded)
        return out
    end
    add(text.skeleton(folded))
    local skel = text.skeleton(name)
    if skel then
        local f = text.fold(skel)
        add(f and text.skeleton(f))
    end
    return out
end

-- { fold, looks } of a stored name.
local function keys_of_stored(name)
    local k = keys_memo[name]
    if not k then
        local norm = M.normalize(name) or name
        local folded = fold_key(norm)
        k = { fold = folded, looks = looks_of(norm, folded) }
        keys_memo[name] = k
    end
    return k
end

-- Of two entries, the older account (the lower id): an older server
-- stored names that are now one, and the older keeps the lookups.
local function older(a, b)
    if (tonumber(b.id) or 0) < (tonumber(a.id) or 0) then
        return b
    end
    return a
end

-- Two stored accounts that the rules make one: logged once per pair.
local function clash(a, b)
    local first = older(a, b)
    local other = first == a and b or a
    local pair = first.name .. "|" .. other.name
    if warned[pair] then
        return
    end
    warned[pair] = true
    log().warning("game", "accounts '%s' (player %d) and '%s' (player %d) "
                  .. "are one name under the account name rules (case, "
                  .. "Unicode form, spaces at the ends): logins by that "
                  .. "name reach player %d (the older) unless typed "
                  .. "exactly as the other is stored (which a name with "
                  .. "spaces at its ends cannot be); remove_player can "
                  .. "remove one", first.name, first.id or 0, other.name,
                  other.id or 0, first.id or 0)
end

local function index_account(key, account)
    if type(account) ~= "table" or type(account.name) ~= "string" then
        return
    end
    local e = { key = key, name = account.name, id = account.id }
    local k = keys_of_stored(account.name)
    local have = by_fold[k.fold]
    if have and have.key ~= key then
        clash(have, e)
    end
    by_fold[k.fold] = have and older(have, e) or e
    for _, look in ipairs(k.looks) do
        have = by_look[look]
        by_look[look] = have and older(have, e) or e
    end
end

local function build_index()
    by_fold, by_look = {}, {}
    for key, account in db:each("account/") do
        index_account(key, account)
    end
end

function M.init(database, cfg)
    db = database
    config = cfg
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
    build_index()
    M.version = M.version + 1
end

-- The account of a name: the one stored under it, else the one whose
-- case-folded normalized name is the name's. nil when there is none.
function M.find(name)
    local account = db:get(account_key(name))
    if account then
        return account
    end
    local norm = M.normalize(name)
    local e = norm and by_fold[fold_key(norm)]
    return e and db:get(e.key)
end

-- Why a new (normalized) name cannot be had: "account name 'alice' is
-- taken" (the same name but for case and form; the stored name is
-- given), "the name is taken (looks like 'alice')"; nil when it is free.
function M.taken(name)
    local folded = fold_key(name)
    local e = by_fold[folded]
    if e or db:get(account_key(name)) then
        return "account name '" .. (e and e.name or name) .. "' is taken"
    end
    for _, look in ipairs(looks_of(name, folded)) do
        e = by_look[look]
        if e then
            return "the name is taken (looks like '" .. e.name .. "')"
        end
    end
    return nil
end

-- ------------------------------------------------------------ creation limit

-- New accounts from clients, for account_creation_limit (per address) and
-- account_creation_total (all together) over account_creation_window
-- seconds: lists of slots { t, source }, oldest first. A slot is taken
-- when a creation starts (so that requests in flight count) and given
-- back if it fails.
local recent_by_source = {}  -- source -> list of slots
local recent_all = {}        -- list of slots
local logged_at = {}         -- source or "*" -> when a refusal was logged
local swept_at = 0

local function now_s()
    return core.hrtime() / 1000
end

-- The group an address is counted in: an IPv4 address, or the /64 of an
-- IPv6 one (one host commonly has a whole /64); IPv4-mapped IPv6 is IPv4.
function M.source_of(peer)
    local addr = require("tp.login_guard").address(peer)
    if not addr:find(":", 1, true) then
        return addr
    end
    addr = addr:gsub("%%.*$", "")           -- a zone (fe80::1%eth0)
    local v4 = addr:match("^::[fF][fF][fF][fF]:(%d+%.%d+%.%d+%.%d+)$")
    if v4 then
        return v4
    end
    local function split(s)
        local out = {}
        for g in s:gmatch("[^:]+") do
            out[#out + 1] = g
            if g:find(".", 1, true) then    -- a dotted quad: two groups
                out[#out + 1] = "0"
            end
        end
        return out
    end
    local head, tail = addr:match("^(.-)::(.*)$")
    local groups
    if head then
        local h, t = split(head), split(tail)
        groups = h
        for _ = 1, 8 - #h - #t do
            groups[#groups + 1] = "0"
        end
        for _, g in ipairs(t) do
            groups[#groups + 1] = g
        end
    else
        groups = split(addr)
    end
    if #groups < 4 then
        return addr
    end
    local out = {}
    for i = 1, 4 do
        out[i] = string.format("%x", tonumber(groups[i], 16) or 0)
    end
    return table.concat(out, ":") .. "::/64"
end

-- "40 seconds", "1 minute", "7 minutes" (rounded up).
local function span(seconds)
    local s = math.max(1, math.ceil(seconds - 1e-6))
    if s < 120 then
        return s .. (s == 1 and " second" or " seconds")
    end
    return math.ceil(s / 60) .. " minutes"
end

local function drop_old(list, since)
    while list[1] and list[1].t <= since do
        table.remove(list, 1)
    end
end

local function remove_slot(list, slot)
    for i = #list, 1, -1 do
        if list[i] == slot then
            table.remove(list, i)
            return
        end
    end
end

-- Once a window, forgets the sources with nothing in it.
local function sweep(now, window)
    if now - swept_at < window then
        return
    end
    swept_at = now
    for source, list in pairs(recent_by_source) do
        drop_old(list, now - window)
        if #list == 0 then
            recent_by_source[source] = nil
        end
    end
    for key, at in pairs(logged_at) do
        if now - at >= window then
            logged_at[key] = nil
        end
    end
end

-- A refusal, logged once a window per source (and once for the total).
local function refused(key, fmt, ...)
    local now = now_s()
    local window = config.account_creation_window or 600
    if not logged_at[key] or now - logged_at[key] >= window then
        logged_at[key] = now
        log().warning("session", fmt, ...)
    end
end

-- Takes a slot for a new account from peer: slot, or nil, why (a
-- sentence saying when to try again). No peer (the admin) or both limits
-- 0: no slot, no limit.
local function reserve(peer)
    local limit = config.account_creation_limit or 0
    local total = config.account_creation_total or 0
    if peer == nil or (limit <= 0 and total <= 0) then
        return nil
    end
    local window = config.account_creation_window or 600
    local now = now_s()
    sweep(now, window)
    local source = M.source_of(peer)
    local mine = recent_by_source[source]
    if mine then
        drop_old(mine, now - window)
    end
    if limit > 0 and mine and #mine >= limit then
        refused(source, "account creation refused for %s: %d new accounts "
                .. "from it in the last %s (account_creation_limit); "
                .. "refusals from it are logged once in that time",
                source, #mine, span(window))
        return nil, string.format("too many new accounts from your address "
                                  .. "(%d in %s); try again in %s", limit,
                                  span(window),
                                  span(mine[1].t + window - now))
    end
    drop_old(recent_all, now - window)
    if total > 0 and #recent_all >= total then
        refused("*", "account creation refused for %s: %d new accounts "
                .. "from all clients in the last %s "
                .. "(account_creation_total); refusals are logged once in "
                .. "that time", source, #recent_all, span(window))
        return nil, string.format("too many new accounts on this server "
                                  .. "just now (%d in %s); try again in %s",
                                  total, span(window),
                                  span(recent_all[1].t + window - now))
    end
    local slot = { t = now, source = source }
    if limit > 0 then
        mine = mine or {}
        recent_by_source[source] = mine
        mine[#mine + 1] = slot
    end
    if total > 0 then
        recent_all[#recent_all + 1] = slot
    end
    return slot
end

-- Gives back the slot of a creation that failed.
local function release(slot)
    if not slot then
        return
    end
    local mine = recent_by_source[slot.source]
    if mine then
        remove_slot(mine, slot)
    end
    remove_slot(recent_all, slot)
end

-- Forgets every creation counted (tests; an admin after a false alarm).
function M.clear_creation_limits()
    recent_by_source, recent_all, logged_at = {}, {}, {}
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

-- The secret of a computer player's account (tp.ai): no hash at all, so
-- that no password matches it.
local function no_password(_, done)
    done { kdf = NO_PASSWORD, iter = 0, salt = "", hash = "" }
end

-- Creates an account and its player. done(player) on success, or
-- done(nil, why, message), why being "name" (the name breaks a rule),
-- "taken", "full", "limited" (too many new accounts from the address, or
-- from everyone, just now; message says when to try again) or "error".
-- extra: email, comment, max_players (refuse when the game has that many;
-- nil or 0: no cap), peer (the client's address "ip:port", counted
-- against the creation limits; nil for the admin, who is not limited),
-- ai (a computer player's level: the account cannot be logged into, and
-- done is called before M.create returns), race (the player's race
-- string; "Human" by default).
function M.create(name, password, extra, done)
    local why
    name, why = M.normalize(name)
    if name then
        local ok
        ok, why = M.check_new(name)
        if not ok then
            name = nil
        end
    end
    if not name then
        return done(nil, "name", why)
    end
    local taken = M.taken(name)
    if taken then
        return done(nil, "taken", taken)
    end
    local refused = M.join_refused and M.join_refused(name)
    if refused then
        return done(nil, "full", refused)
    end
    local slot
    slot, why = reserve(extra.peer)
    if why then
        return done(nil, "limited", why)
    end
    -- A computer player (extra.ai) has no password anyone could type:
    -- no hash is made, and M.verify refuses the account.
    local hash = extra.ai and no_password or hash_new
    hash(password, function(secret, err)
        if not secret then
            release(slot)
            return done(nil, "error", "cannot hash password: " .. err)
        end
        -- The game may have filled, or the name been taken, while
        -- hashing.
        local cap = extra.max_players or 0
        if cap > 0 and #player_list >= cap then
            release(slot)
            return done(nil, "full", string.format("the game is full (%d "
                        .. "players)", cap))
        end
        taken = M.taken(name)
        if taken then
            release(slot)
            return done(nil, "taken", taken)
        end
        refused = M.join_refused and M.join_refused(name)
        if refused then
            release(slot)
            return done(nil, "full", refused)
        end
        local id = next_player_id
        local now = os.time()
        local account = {
            id = id, name = name, kdf = secret.kdf, iter = secret.iter,
            salt = secret.salt, hash = secret.hash,
            email = extra.email or "", comment = extra.comment or "",
            created = now, notify_email = extra.notify_email or nil,
            ai = extra.ai,
        }
        local player = { id = id, name = name, race = extra.race or "Human",
                         created = now, alive = true, score = 0,
                         ai = extra.ai }
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
            release(slot)
            log().error("game", "player %s could not join: %s", name,
                        tostring(err))
            return done(nil, "error", "the game could not take a new "
                        .. "player (see the server log)")
        end
        index_account(account_key(name), account)
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
    if account and account.kdf == NO_PASSWORD then
        account = nil       -- a computer player: nobody logs in as it
    end
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

-- ------------------------------------------------------------ new game

-- A new game kept the accounts of the last one (tp.newgame): every
-- account without a player joins the new game (same player id, the join
-- hook, in batch, which the caller commits). Returns how many joined.
function M.readmit(batch)
    local n = 0
    local list = {}
    for _, account in db:each("account/") do
        if type(account) == "table" and account.id and
           not players[account.id] then
            list[#list + 1] = account
        end
    end
    table.sort(list, function(a, b) return a.id < b.id end)
    for _, account in ipairs(list) do
        local player = { id = account.id, name = account.name,
                         race = "Human", created = os.time(), alive = true,
                         score = 0 }
        players[player.id] = player
        player_list[#player_list + 1] = player
        if player.id >= next_player_id then
            next_player_id = player.id + 1
        end
        M.version = M.version + 1
        if M.on_join then
            M.on_join(player, batch, true)
        end
        batch:put(db_mod.key("player", player.id), player)
        n = n + 1
    end
    table.sort(player_list, function(a, b) return a.id < b.id end)
    return n
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
    build_index()
    return p or { id = account.id, name = account.name }
end

-- Sets a new password. done(true) or done(nil, err).
function M.set_password(name, password, done)
    local found = M.find(name)
    if not found then
        return done(nil, "no account '" .. tostring(name) .. "'")
    end
    if found.ai then
        return done(nil, "'" .. found.name .. "' is a computer player: "
                    .. "nobody logs in as it")
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

-- ------------------------------------------------------------ e-mail
-- (tp.notify's mails; the console's notify.email, the web's /api/account)

-- Sets the account's e-mail address (nil: kept; "": none) and whether it
-- gets the turn mails (nil: kept; an account without an address gets
-- none). Stored before it returns. Returns the account, or nil, err.
function M.set_email(name, email, on)
    local account = M.find(name)
    if not account then
        return nil, "no account '" .. tostring(name) .. "'"
    end
    if email ~= nil then
        if type(email) ~= "string" then
            return nil, "the e-mail address must be a string"
        end
        email = text.trim(email)
        if email ~= "" then
            local ok, why = require("tp.mail").valid_address(email)
            if not ok then
                return nil, why
            end
        end
    end
    if on ~= nil and type(on) ~= "boolean" then
        return nil, "notify_email must be true or false"
    end
    local new_email = email == nil and (account.email or "") or email
    local new_on = on == nil and account.notify_email or on
    if new_on and not require("tp.mail").valid_address(new_email) then
        return nil, "turn mails need a valid e-mail address"
    end
    local before_email, before_on = account.email, account.notify_email
    account.email, account.notify_email = new_email, new_on or nil
    local ok, err = pcall(db.put, db, account_key(account.name), account)
    if not ok then
        account.email, account.notify_email = before_email, before_on
        return nil, "the change could not be stored: " .. tostring(err)
    end
    return account
end

return M
