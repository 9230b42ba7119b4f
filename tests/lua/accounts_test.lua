-- tp.text (the ICU bindings) and the name rules of tp.accounts that need
-- no database: normalize, check_new, the addresses the creation limits
-- count by.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local text = require "tp.text"
local accounts = require "tp.accounts"

local ZWSP = "\226\128\139"        -- U+200B
local NBSP = "\194\160"            -- U+00A0
local IDEO_SPACE = "\227\128\128"  -- U+3000
local DOTLESS_I = "\196\177"       -- U+0131
local CYR_A = "\208\176"           -- U+0430
local ACUTE = "\204\129"           -- U+0301 (combining)
local E_ACUTE = "\195\169"         -- U+00E9

-- tp.text
t.ok(type(text.unicode) == "string" and text.unicode:match("^%d+%.%d"),
     "text.unicode names a Unicode version", text.unicode)
t.is(text.valid("alice"), true, "valid: ASCII")
t.is(text.valid("\255x"), false, "valid: a stray byte is not UTF-8")
t.is(text.valid("\237\160\128"), false, "valid: an encoded surrogate is not")
t.is(text.valid("\192\128"), false, "valid: an overlong NUL is not")
t.is(text.trim("  alice\t\n"), "alice", "trim: ASCII white space")
t.is(text.trim(NBSP .. "alice" .. IDEO_SPACE), "alice",
     "trim: Unicode White_Space (no-break, ideographic)")
t.is(text.trim("al ice"), "al ice", "trim: inner spaces stay")
t.is(text.trim(ZWSP .. "alice"), ZWSP .. "alice",
     "trim: a zero-width space is not White_Space (refused elsewhere)")
t.is(text.trim("   "), "", "trim: spaces only -> empty")
t.is(text.trim("\255 "), "\255", "trim: bytes that are not UTF-8 are kept")
t.is(text.nfc("e" .. ACUTE), E_ACUTE, "nfc composes e + U+0301")
local v, err = text.nfc("\255")
t.ok(v == nil and err == "not UTF-8", "nfc of bad UTF-8: nil, 'not UTF-8'",
     tostring(err))
v, err = text.nfc(string.rep("a", 5000))
t.ok(v == nil and err == "too long", "nfc past its cap: nil, 'too long'",
     tostring(err))
t.is(text.fold("ALICE"), "alice", "fold: ASCII")
t.is(text.fold("Stra\195\159e"), "strasse", "fold: full folding (sharp s)")
t.is(text.skeleton("al" .. DOTLESS_I .. "ce"), "alice",
     "skeleton: dotless i is i")
t.is(text.skeleton(CYR_A .. "lice"), "alice", "skeleton: Cyrillic a is a")
t.is(text.skeleton("m"), text.skeleton("rn"), "skeleton: m looks like rn")
t.ok(not pcall(text.nfc, 42), "a number is misuse: it raises")
local function hidden(s)
    local cp, kind = text.hidden(s)
    return tostring(cp) .. " " .. tostring(kind)
end
t.is(hidden("alice"), "nil nil", "hidden: nothing in a plain name")
t.is(hidden("al ice"), "nil nil", "hidden: a plain space is allowed")
t.is(hidden("al\7ice"), "7 control", "hidden: BEL is a control")
t.is(hidden("al\194\133ice"), "133 control", "hidden: NEL (U+0085) too")
t.is(hidden("ali" .. ZWSP .. "ce"), "8203 invisible",
     "hidden: zero-width space")
t.is(hidden("a\226\128\141b"), "8205 invisible", "hidden: zero-width joiner")
t.is(hidden("\226\128\174ecila"), "8238 invisible",
     "hidden: right-to-left override")
t.is(hidden("a\239\184\143"), "65039 invisible",
     "hidden: variation selector (Default_Ignorable)")
t.is(hidden("\227\133\164"), "12644 invisible", "hidden: Hangul filler")
t.is(hidden("al" .. NBSP .. "ice"), "160 space",
     "hidden: a no-break space inside")
t.is(hidden("\238\128\128"), "57344 private", "hidden: private use")
t.is(hidden("\239\183\144"), "64976 noncharacter", "hidden: U+FDD0")
t.is(hidden("\205\184"), "888 unassigned", "hidden: U+0378 is unassigned")
t.is(hidden("a\255"), "-1 invalid", "hidden: bad UTF-8")

-- accounts.normalize: the form of every name looked up or made
local function norm(s)
    local n, why = accounts.normalize(s)
    return n or ("nil: " .. tostring(why))
end
t.is(norm(" alice"), "alice", "normalize trims the front")
t.is(norm("alice \t"), "alice", "normalize trims the end")
t.is(norm(" alice @tp"), "alice", "normalize cuts at '@', then trims")
t.is(norm("Alice"), "Alice", "normalize keeps the case")
t.is(norm("e" .. ACUTE .. "mile"), E_ACUTE .. "mile", "normalize is NFC")
t.is(norm("  "), "nil: empty user name", "spaces only -> empty")
t.is(norm("@tp"), "nil: empty user name", "nothing before '@' -> empty")
t.is(norm(string.rep("x", 65)), "nil: user name longer than 64 bytes",
     "65 bytes: too long")
t.is(norm(string.rep("x", 64)), string.rep("x", 64), "64 bytes: fine")
t.is(norm("x\7y"), "nil: account names may not contain control "
     .. "characters (U+0007)", "a control character is refused")
t.is(norm("\255bob"), "\255bob", "a name that is not UTF-8 is looked up "
     .. "as it is (an old account)")

-- accounts.check_new: the rules for a new name
local function new(s)
    local ok, why = accounts.check_new(s)
    return ok and "ok" or why
end
t.is(new("alice"), "ok", "check_new: alice")
t.is(new("J" .. E_ACUTE .. "r" .. "\195\180" .. "me Li"), "ok",
     "check_new: accents and a plain space")
t.is(new("\208\152\208\178\208\176\208\189"), "ok", "check_new: Cyrillic")
t.is(new("ali" .. ZWSP .. "ce"), "account names may not contain invisible "
     .. "characters (U+200B)", "check_new: zero-width space")
t.is(new("al" .. NBSP .. "ice"), "account names may not contain spaces "
     .. "other than the plain space (U+00A0)", "check_new: no-break space")
t.is(new("\238\128\128x"), "account names may not contain private-use "
     .. "characters (U+E000)", "check_new: private use")
t.is(new("x\205\184"), "account names may not contain unassigned code "
     .. "points (U+0378)", "check_new: unassigned")
t.is(new("\255bob"), "account names must be UTF-8 text",
     "check_new: not UTF-8")

-- accounts.source_of: what the creation limits count by
t.is(accounts.source_of("192.0.2.7:4000"), "192.0.2.7", "IPv4 without port")
t.is(accounts.source_of("[2001:db8:1:2:3:4:5:6]:4000"), "2001:db8:1:2::/64",
     "IPv6 counts by its /64")
t.is(accounts.source_of("[2001:db8::1]:4000"), "2001:db8:0:0::/64",
     "IPv6 with :: is expanded")
t.is(accounts.source_of("[2001:DB8:0:0:ffff::9]:1"), "2001:db8:0:0::/64",
     "the same /64 whatever the spelling")
t.is(accounts.source_of("[::ffff:192.0.2.7]:4000"), "192.0.2.7",
     "IPv4-mapped IPv6 is the IPv4 address")
t.is(accounts.source_of("[::1]:4000"), "0:0:0:0::/64", "loopback IPv6")
t.is(accounts.source_of("[fe80::1%eth0]:9"), "fe80:0:0:0::/64",
     "a zone is dropped")

return t.done()
