-- tp.mail: e-mail to players through the local mail transfer agent.
-- Each message is handed to `sendmail -t -i` (sendmail_path), started
-- with libuv's process spawning (tp.spawn): the message goes to its
-- stdin, the recipients are read from its To header, and the exit status
-- says whether the MTA took it. Nothing waits: one sendmail runs at a
-- time, the others queue (at most QUEUE_MAX messages; past that the new
-- ones are dropped and logged), and a sendmail that runs past TIMEOUT_S
-- is killed. The MTA retries delivery itself; a message it refuses is
-- logged with what it said on stderr, not tried again.
--
-- Headers cannot be injected: addresses must pass M.valid_address, every
-- other header value has its control characters (CR, LF...) replaced by
-- spaces, and non-ASCII text in a header is RFC 2047 encoded.
--
--   valid_address(s) -> true | nil, why
--   compose(cfg, { to =, subject =, body = }) -> message text | nil, why
--   send(cfg, msg) -> true | nil, why (queued)
--   status() -> { queued =, running =, sent =, failed = , last_error = }

local M = {}

-- Loaded when needed: valid_address runs in the configuration check, in
-- processes without the server's C modules too (tpserver console).
local function log()
    return require "tp.log"
end

M.QUEUE_MAX = 1000
M.TIMEOUT_S = 60
M.MAX_BODY = 65536

local queue = {}
local running = false
local counts = { sent = 0, failed = 0 }
local last_error

-- A plain Internet address: local@domain, ASCII, no spaces, no quoting,
-- no comments, at most 254 bytes (RFC 5321's path limit). Stricter than
-- RFC 5322 on purpose: what passes cannot change a header's meaning.
function M.valid_address(s)
    if type(s) ~= "string" or s == "" then
        return nil, "an e-mail address is local@domain"
    end
    if #s > 254 then
        return nil, "an e-mail address is at most 254 bytes"
    end
    local localpart, domain = s:match("^([%w%.!#%$%%&'%*%+/=%?%^_`{|}~%-]+)"
                                      .. "@([%w%-%.]+)$")
    if not localpart then
        return nil, "not an e-mail address (local@domain, ASCII, no spaces)"
    end
    if #localpart > 64 or localpart:sub(1, 1) == "." or
       localpart:sub(-1) == "." or localpart:find("..", 1, true) then
        return nil, "not an e-mail address (the part before @)"
    end
    for label in (domain .. "."):gmatch("([^%.]*)%.") do
        if label == "" or #label > 63 or label:sub(1, 1) == "-" or
           label:sub(-1) == "-" then
            return nil, "not an e-mail address (the domain)"
        end
    end
    return true
end

-- A header value with no control characters (no CR or LF: nothing can
-- start a header of its own).
local function clean(s)
    return (tostring(s):gsub("%c", " "))
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local q = {}
        for k = 3, 0, -1 do
            local v = math.floor(n / 64 ^ k) % 64
            q[#q + 1] = B64:sub(v + 1, v + 1)
        end
        if not b then
            q[3], q[4] = "=", "="
        elseif not c then
            q[4] = "="
        end
        out[#out + 1] = table.concat(q)
    end
    return table.concat(out)
end
M.base64 = base64

-- RFC 2047 "B" encoding of non-ASCII text (words of at most 45 bytes of
-- UTF-8, not cut inside a character).
local function encode_words(s)
    if not s:find("[\128-\255]") then
        return s
    end
    local words, i = {}, 1
    while i <= #s do
        local j = math.min(#s, i + 44)
        -- Back up to the start of a character.
        while j < #s and j > i and s:byte(j + 1) >= 0x80 and
              s:byte(j + 1) < 0xC0 do
            j = j - 1
        end
        words[#words + 1] = "=?UTF-8?B?" .. base64(s:sub(i, j)) .. "?="
        i = j + 1
    end
    return table.concat(words, "\r\n ")
end
M.encode_words = encode_words

-- The From header's address: mail_from, else tpserver@<host name>.
function M.from_address(cfg)
    if cfg.mail_from ~= "" then
        return cfg.mail_from
    end
    return "tpserver@" .. require("tp.metaserver").hostname()
end

local seq = 0

-- The whole message (headers, blank line, body), lines ending CRLF.
function M.compose(cfg, m)
    local ok, why = M.valid_address(m.to)
    if not ok then
        return nil, why
    end
    local from = M.from_address(cfg)
    ok, why = M.valid_address(from)
    if not ok then
        return nil, "mail_from: " .. why
    end
    local name = clean(cfg.game_longname):gsub('["\\]', "")
    seq = seq + 1
    local crypto = require "tp.crypto"
    local id = string.format("<%d.%d.%s@%s>", os.time(), seq,
                             crypto.hex(crypto.random(6)),
                             from:match("@(.*)$"))
    local body = tostring(m.body or "")
    if #body > M.MAX_BODY then
        body = body:sub(1, M.MAX_BODY)
    end
    body = body:gsub("\r\n", "\n"):gsub("\r", "\n"):gsub("\n", "\r\n")
    if body:sub(-2) ~= "\r\n" then
        body = body .. "\r\n"
    end
    local headers = {
        "From: " .. (name ~= "" and ('"' .. encode_words(name) .. '" ')
                     or "") .. "<" .. from .. ">",
        "To: <" .. m.to .. ">",
        "Subject: " .. encode_words(clean(m.subject or "")),
        "Date: " .. os.date("!%a, %d %b %Y %H:%M:%S +0000"),
        "Message-ID: " .. id,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=UTF-8",
        "Content-Transfer-Encoding: 8bit",
        "Auto-Submitted: auto-generated",
    }
    return table.concat(headers, "\r\n") .. "\r\n\r\n" .. body
end

local function run_next()
    if running or #queue == 0 then
        return
    end
    local item = table.remove(queue, 1)
    local spawn = require "tp.spawn"
    local id, err = spawn.run({ file = item.path, args = { "-t", "-i" },
                                input = item.text, timeout = M.TIMEOUT_S,
                                max_output = 4096 },
        function(res)
            running = false
            if res.status == 0 then
                counts.sent = counts.sent + 1
                log().info("mail", "mail to %s handed to %s (%s)", item.to,
                         item.path, item.what)
            else
                counts.failed = counts.failed + 1
                last_error = string.format("%s %s: %s", item.path,
                    res.error or (res.signal and ("killed by signal " ..
                    res.signal)) or ("exit status " .. tostring(res.status)),
                    clean(res.stderr):sub(1, 300))
                log().warning("mail", "mail to %s (%s) not sent: %s", item.to,
                            item.what, last_error)
            end
            run_next()
        end)
    if not id then
        counts.failed = counts.failed + 1
        last_error = err
        log().warning("mail", "mail to %s (%s) not sent: %s", item.to,
                    item.what, tostring(err))
        -- The next one may fare better (but not from this call's stack).
        require("tp.core").timer(0, 0, run_next)
        return
    end
    running = true
end

-- Queues a message: { to =, subject =, body =, what = (for the log) }.
function M.send(cfg, m)
    local text, why = M.compose(cfg, m)
    if not text then
        log().warning("mail", "no mail to %s: %s", tostring(m.to), why)
        return nil, why
    end
    if #queue >= M.QUEUE_MAX then
        counts.failed = counts.failed + 1
        log().warning("mail", "mail queue full (%d): mail to %s (%s) dropped",
                    M.QUEUE_MAX, m.to, m.what or "")
        return nil, "the mail queue is full"
    end
    queue[#queue + 1] = { to = m.to, text = text, path = cfg.sendmail_path,
                          what = m.what or m.subject or "" }
    run_next()
    return true
end

function M.status()
    return { queued = #queue, running = running, sent = counts.sent,
             failed = counts.failed, last_error = last_error }
end

-- Drops what is queued (a stop: the sendmail running finishes alone).
function M.stop()
    queue = {}
end

return M
