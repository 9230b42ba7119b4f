-- Notifications without a server: e-mail addresses and messages
-- (tp.mail), the configuration check and the texts of tp.notify, and
-- programs run on the loop (tp.spawn: input, output and its bound, exit
-- status, a failed start, the timeout that kills, kill).
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local core = require "tp.core"
local crypto = require "tp.crypto"
local mail = require "tp.mail"
local notify = require "tp.notify"
local spawn = require "tp.spawn"

-- ------------------------------------------------------------ addresses

for _, a in ipairs { "alice@example.org", "a.b+tag@mail.example.co.uk",
                     "x_y-z@localhost" } do
    t.ok(mail.valid_address(a), "a valid address: " .. a)
end
for _, a in ipairs { "", "alice", "@example.org", "alice@", "a b@example.org",
                     "alice@example.org\r\nBcc: evil@example.net",
                     "alice@exa mple.org", "a..b@example.org",
                     ".a@example.org", "alice@-example.org",
                     "alice@example..org", "<alice@example.org>",
                     "\"a\"@example.org", "ålice@example.org",
                     string.rep("a", 65) .. "@example.org",
                     "a@" .. string.rep("b", 250) .. ".org" } do
    t.ok(not mail.valid_address(a), "refused: " .. a:gsub("%c", "\\n"))
end

-- ------------------------------------------------------------ messages

t.is(mail.base64(""), "", "base64 of nothing")
t.is(mail.base64("f"), "Zg==", "base64 f")
t.is(mail.base64("fo"), "Zm8=", "base64 fo")
t.is(mail.base64("foobar"), "Zm9vYmFy", "base64 foobar")
local bytes = crypto.random(100)
t.is(crypto.base64_decode(mail.base64(bytes)), bytes,
     "base64 of random bytes decodes back")

local cfg = { mail_from = "game@example.org",
              game_longname = "Évian \"Cup\"\r\nBcc: evil@example.net" }
local msg = assert(mail.compose(cfg, {
    to = "bob@example.org",
    subject = "Turn 3\r\nBcc: evil@example.net",
    body = "line one\nline two\n.\nend" }))
local head, body = msg:match("^(.-)\r\n\r\n(.*)$")
t.ok(head and body, "headers, a blank line, the body")
local names = {}
for line in (head .. "\r\n"):gmatch("(.-)\r\n") do
    if not line:match("^ ") then
        names[#names + 1] = line:match("^([%w%-]+):")
    end
end
t.is(table.concat(names, " "), "From To Subject Date Message-ID "
     .. "MIME-Version Content-Type Content-Transfer-Encoding Auto-Submitted",
     "exactly the headers made, none added by the name or subject")
t.ok(head:find("\r\nSubject: Turn 3  Bcc: evil@example.net\r\n", 1, true),
     "CR LF in the subject became spaces", head)
t.ok(head:find("From: \"=?UTF-8?B?", 1, true) and
     head:find("<game@example.org>", 1, true), "a non-ASCII name is "
     .. "encoded (RFC 2047), the address in <>", head)
local word = head:match("From: \"=%?UTF%-8%?B%?([^?]+)%?=")
t.is(crypto.base64_decode(word or ""), "Évian Cup  Bcc: evil@example.net",
     "the encoded name: quotes and control characters gone")
t.ok(head:find("\r\nTo: <bob@example.org>\r\n", 1, true), "To", head)
t.ok(head:find("\r\nDate: %a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d "
               .. "%+0000\r\n"), "Date in RFC 5322 form", head)
t.ok(head:find("\r\nMessage%-ID: <[^>]+@example%.org>\r\n"),
     "Message-ID in the From address's domain", head)
t.ok(head:find("Content-Type: text/plain; charset=UTF-8", 1, true),
     "text/plain UTF-8")
t.is(body, "line one\r\nline two\r\n.\r\nend\r\n", "body lines end CR LF")
local _, why = mail.compose(cfg, { to = "bob@example.org\nBcc: x@y.z",
                                   subject = "x", body = "" })
t.ok(why and why:find("not an e%-mail address"), "no message to a bad "
     .. "address", why)
_, why = mail.compose({ mail_from = "bad from", game_longname = "" },
                      { to = "bob@example.org", subject = "", body = "" })
t.ok(why and why:find("mail_from", 1, true), "no message from a bad "
     .. "mail_from", why)

-- ------------------------------------------------------------ notify

local function check(n, mail_from)
    return notify.check({ notify = n, mail_from = mail_from or "" })
end
t.ok(check({}), "no hooks")
t.ok(check({ { url = "https://example.org/h", format = "slack",
               events = { "turn_start", "game_over" } } }), "a hook")
for _, case in ipairs {
    { { "http://x/" }, "must be a table" },
    { { { url = "ftp://x/" } }, "http:// or https://" },
    { { { url = "http://x/", format = "xml" } }, "\"json\", \"discord\"" },
    { { { url = "http://x/", events = { "turn_begin" } } },
      "unknown event 'turn_begin'" },
    { { { url = "http://x/", secret = "s" } }, "unknown key 'secret'" },
    { { { url = "http://x/", events = "turn_start" } }, "list of event" },
} do
    local ok, err = check(case[1])
    t.ok(not ok and err:find(case[2], 1, true), "refused: " .. case[2], err)
end
local ok, err = check({}, "not an address")
t.ok(not ok and err:find("mail_from", 1, true), "a bad mail_from", err)

t.is(notify.span(45), "45 seconds", "span: seconds")
t.is(notify.span(60), "1 minute", "span: a minute")
t.is(notify.span(3600), "1 hour", "span: an hour")
t.is(notify.span(3 * 3600 + 20 * 60), "3 hours 20 minutes", "span: h m")
t.is(notify.span(86400 + 7200 + 60), "1 day 2 hours", "span: days drop "
     .. "minutes")

-- The texts, on an injected clock (start() is not called: no game).
notify.now = function() return 1700000000 end
local cjson = require "cjson"
local o = cjson.decode(notify.payload("json", "turn_warning",
                                      { turn = 4, seconds_left = 300 }))
t.ok(o.event == "turn_warning" and o.turn == 4 and o.seconds_left == 300
     and o.ends_at == "2023-11-14T22:18:20Z" and
     o.time == "2023-11-14T22:13:20Z",
     "json: the warning with its end on the clock", cjson.encode(o))
t.ok(notify.payload("json", "game_over", { turn = 9, winners = {} })
     :find('"winners":[]', 1, true), "json: no winners is an empty array")
t.is(cjson.decode(notify.payload("json", "game_over", { turn = 9 })).text,
     "the game is over after turn 9.", "json: the end without winners")
t.is(cjson.decode(notify.payload("slack", "turn_end", { turn = 4 })).text,
     "Turn 4 of the game has ended.", "slack: the sentence")
t.is(cjson.decode(notify.payload("discord", "turn_warning",
     { turn = 4, seconds_left = 300 })).content,
     "Turn 4 of the game ends in 5 minutes.", "discord: the sentence")

-- ------------------------------------------------------------ spawn

local keep = core.timer(60000, 0, function()
    t.ok(false, "the programs ended within 60 s")
    require("tp.sys").set_exit_status(1)
end)
local left = 0
local function started(id, what)
    t.ok(id, what .. " started")
    left = left + 1
end
local function ended()
    left = left - 1
    if left == 0 then
        keep:stop()
        if t.done() ~= 0 then
            require("tp.sys").set_exit_status(1)
        end
    end
end

started(spawn.run({ file = "/bin/cat", input = "hello\n" }, function(r)
    t.ok(r.status == 0 and r.stdout == "hello\n" and r.stderr == "" and
         not r.truncated, "cat: the input came back, exit 0")
    ended()
end), "cat")
started(spawn.run({ file = "/bin/sh",
                    args = { "-c", "echo oops >&2; exit 3" } }, function(r)
    t.ok(r.status == 3 and r.stderr == "oops\n", "exit status 3 and stderr")
    ended()
end), "sh")
started(spawn.run({ file = "/bin/sh",
                    args = { "-c", "head -c 100000 /dev/zero" },
                    max_output = 1000 }, function(r)
    t.ok(r.status == 0 and #r.stdout == 1000 and r.truncated,
         "output bounded at max_output, flagged", #r.stdout)
    ended()
end), "head")
started(spawn.run({ file = "/bin/sleep", args = { "600" }, timeout = 0.2 },
    function(r)
        t.ok(r.timed_out and r.signal == 9 and r.status == nil,
             "a program past its timeout is killed", cjson.encode(r))
        ended()
    end), "sleep")
local id = spawn.run({ file = "/bin/sleep", args = { "600" } }, function(r)
    t.ok(r.signal == 9 and not r.timed_out, "spawn.kill ends it")
    ended()
end)
started(id, "another sleep")
t.ok(spawn.kill(id), "spawn.kill says it was running")
local none, err2 = spawn.run({ file = "/nonexistent/sendmail" }, function()
    t.ok(false, "no callback for a program that did not start")
end)
t.ok(none == nil and err2:find("cannot run /nonexistent/sendmail", 1, true),
     "a program that cannot start: nil and why", err2)
t.ok(spawn.pending() == 5, "5 programs running", spawn.pending())
t.raises(function() spawn.run({ file = "/bin/true", timeout = 0 },
                              function() end) end,
         "timeout must be", "a timeout of 0 is refused")
