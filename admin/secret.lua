-- admin/secret.lua: the password hashes of the admin accounts
-- (tpserver.lua's admins = { { name =, password_hash = } }).
--
-- Form: "pbkdf2-sha256$<iterations>$<salt, hex>$<hash, hex>", made by
-- `tpserver console --hash-password`. Passwords themselves are never
-- stored, and there is no default admin password.

local crypto = require "tp.crypto"

local M = {}

M.KDF = "pbkdf2-sha256"
M.ITERATIONS = 100000
local HASH_LEN = 32

function M.hash(password, iterations)
    iterations = iterations or M.ITERATIONS
    local salt = crypto.random(16)
    local hash = crypto.pbkdf2(password, salt, iterations, HASH_LEN,
                               "sha256")
    return string.format("%s$%d$%s$%s", M.KDF, iterations, crypto.hex(salt),
                         crypto.hex(hash))
end

-- Splits a stored hash; nil, why when it is not one.
function M.parse(stored)
    if type(stored) ~= "string" then
        return nil, "password_hash must be a string"
    end
    local kdf, iter, salt, hash = stored:match(
        "^([%w%-]+)%$(%d+)%$(%x+)%$(%x+)$")
    if kdf ~= M.KDF then
        return nil, "password_hash is not a " .. M.KDF .. " hash (make one "
                    .. "with tpserver console --hash-password)"
    end
    iter = tonumber(iter)
    if iter < 1 or iter > 10000000 or #hash ~= 2 * HASH_LEN then
        return nil, "password_hash is damaged"
    end
    return { iter = iter, salt = crypto.unhex(salt), hash = hash:lower() }
end

-- The admin account of cfg.admins named name, or nil.
function M.account(cfg, name)
    for _, a in ipairs(cfg.admins or {}) do
        if type(a) == "table" and a.name == name then
            return a
        end
    end
end

-- Checks password against stored off the loop; done(true | false). A
-- stored hash that does not parse is hashed against anyway (the same
-- time either way) and never matches.
function M.verify_async(password, stored, done)
    local rec = M.parse(stored)
    local iter = rec and rec.iter or M.ITERATIONS
    local salt = rec and rec.salt or "0000000000000000"
    crypto.pbkdf2_async(password, salt, iter, HASH_LEN, "sha256",
        function(hash)
            done(rec ~= nil and hash ~= nil and
                 crypto.equal(crypto.hex(hash), rec.hash))
        end)
end

return M
