-- admin/lineedit.lua, the SSH console's line editor, fed bytes as a
-- terminal sends them: keys, escape sequences and UTF-8 cut between
-- reads, history, kills, completion and the drawing at a width.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
package.path = TP_HOME .. "/?.lua;" .. package.path
local lineedit = require "admin.lineedit"

local function editor(cols, complete)
    local out = {}
    local ed = lineedit.new { cols = cols or 80, complete = complete,
                              write = function(b) out[#out + 1] = b end }
    ed:prompt("> ")
    return ed, out
end

-- Feeds chunks; returns the events and the text typed so far.
local function feed(ed, ...)
    local events = {}
    for _, chunk in ipairs { ... } do
        local rest = chunk
        repeat
            local ev, value
            ev, value, rest = ed:feed(rest)
            if ev then
                events[#events + 1] = value and (ev .. ":" .. value) or ev
                ed:prompt("> ")
            end
        until rest == ""
    end
    return events, ed:text()
end

local ed = editor()
t.is(table.concat(feed(ed, "return 1\r"), ","), "line:return 1",
     "Enter ends a line")
t.is(table.concat(feed(ed, "a\r\nb\r"), ","), "line:a,line:b",
     "CR LF is one Enter")
t.is(table.concat(feed(ed, "x\n"), ","), "line:x", "a lone LF too")
local evs, text = feed(ed, "abc\27[D\27[DX")
t.is(text, "aXbc", "Left twice, then insert")
evs, text = feed(ed, "\27", "[", "D", "Y")
t.is(text, "aYXbc", "an escape sequence cut across three reads")
feed(ed, "\5\21")
evs, text = feed(ed, "caf\195", "\169!")
t.is(text, "caf\195\169!", "a UTF-8 character cut across two reads")
feed(ed, "\127\127")
t.is(ed:text(), "caf", "Backspace removes whole characters")
feed(ed, "\1Z\5!")
t.is(ed:text(), "Zcaf!", "Ctrl-A, Ctrl-E")
feed(ed, "\27[H\27[3~")
t.is(ed:text(), "caf!", "Home, Delete")
feed(ed, "\5\21one two three\23")
t.is(ed:text(), "one two ", "Ctrl-W kills the word before the cursor")
feed(ed, "\1\11")
t.is(ed:text(), "", "Ctrl-K kills to the end")
feed(ed, "\25")
t.is(ed:text(), "one two ", "Ctrl-Y yanks it back")
feed(ed, "\1\27f\27f")
t.is(ed.pos, 7, "Alt-F moves by words")
feed(ed, "\5\21")
t.is(table.concat(feed(ed, "\3"), ","), "interrupt", "Ctrl-C")
t.is(table.concat(feed(ed, "\4"), ","), "eof", "Ctrl-D on an empty line")
feed(ed, "ab\1\4")
t.is(ed:text(), "b", "Ctrl-D deletes under the cursor otherwise")
feed(ed, "\5\21")

-- History.
ed = editor()
ed:add_history("first")
ed:add_history("second")
ed:add_history("second")
ed:add_history("multi\nline")
t.is(#ed.history, 3, "history: repeated entries are kept once")
feed(ed, "draft")
feed(ed, "\27[A")
t.is(ed:text(), "multi line", "Up: the last entry (one line)")
feed(ed, "\27[A\27[A")
t.is(ed:text(), "first", "Up twice more: the first")
feed(ed, "\27[A")
t.is(ed:text(), "first", "Up at the oldest stays")
feed(ed, "\27[B\27[B\27[B")
t.is(ed:text(), "draft", "Down back to the line being typed")
for i = 1, lineedit.HISTORY + 5 do
    ed:add_history("e" .. i)
end
t.is(#ed.history, lineedit.HISTORY, "history is bounded")

-- Completion.
ed = editor(80, function(word)
    if word == "tu" then
        return { "turn", "turn_length", "turn_number" }
    elseif word == "pla" then
        return { "players" }
    end
    return {}
end)
feed(ed, "pla\t")
t.is(ed:text(), "players", "Tab: the one name")
feed(ed, "\5\21tu\t")
t.is(ed:text(), "turn", "Tab: what the names share")
local out
ed, out = editor(80, function() return { "aa", "ab" } end)
feed(ed, "a\t")
t.ok(table.concat(out):find("aa  ab", 1, true), "Tab: several names are "
     .. "listed", table.concat(out))

-- Drawing at a width: 30 characters after "> " on 10 columns.
ed, out = editor(10)
feed(ed, string.rep("x", 30))
for i = #out, 1, -1 do
    out[i] = nil
end
feed(ed, "\1")
t.ok(out[1]:find("\27[3A", 1, true), "Home on a line of four rows goes "
     .. "up three", out[1])
ed:resize(80)
for i = #out, 1, -1 do
    out[i] = nil
end
feed(ed, "\5\1")
t.ok(not table.concat(out):find("\27%[%d+A"), "after a resize to 80 "
     .. "columns it is one row", table.concat(out))

t.done()
