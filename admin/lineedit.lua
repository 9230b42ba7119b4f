-- admin/lineedit.lua: line editing for a terminal at the other end of a
-- connection (the SSH console's pty), in the manner of linenoise's
-- multi-line mode: the server holds the line, reads the keys the terminal
-- sends (VT100/xterm sequences) and redraws the prompt and line after
-- each change, wrapped at the terminal's width.
--
-- libedit, which tpserver console uses on the admin's side, reads a local
-- terminal with blocking calls: it cannot edit many remote lines at once
-- inside the server's loop. This is that part of it, over bytes.
--
-- Keys: printable text (UTF-8) inserts; Left/Right, Ctrl-B/Ctrl-F move;
-- Home/End, Ctrl-A/Ctrl-E; Alt-B/Alt-F (and Ctrl-Left/Right) by word;
-- Backspace, Delete, Ctrl-D (deletes, or is "eof" on an empty line);
-- Ctrl-K, Ctrl-U, Ctrl-W kill; Ctrl-Y yanks what was killed; Ctrl-T swaps;
-- Up/Down, Ctrl-P/Ctrl-N walk the history; Ctrl-L clears the screen; Tab
-- completes (the complete callback); Enter ends the line; Ctrl-C is
-- "interrupt".
--
--   local ed = lineedit.new { write = fn(bytes), cols = 80,
--                             complete = fn(word) -> { names } }
--   ed:prompt(text)          starts a new line with that prompt
--   ev, value, rest = ed:feed(bytes)
--       handles keys until an event: "line" (value: the text), "eof",
--       "interrupt"; nil when the bytes ran out. rest is what is left
--       to feed after the event.
--   ed:resize(cols), ed:add_history(line), ed.history (oldest first)

local M = {}

local Editor = {}
Editor.__index = Editor

M.HISTORY = 1000

function M.new(opts)
    local ed = setmetatable({
        write = opts.write,
        cols = math.max(tonumber(opts.cols) or 80, 10),
        complete = opts.complete,
        history = {},
        chars = {},       -- the line, one UTF-8 character per entry
        pos = 0,          -- characters before the cursor
        prompt_text = "",
        rows = 1,         -- rows the last drawing took
        row = 0,          -- the cursor's row in it, from 0
        esc = nil,        -- an escape sequence being read
        utf = nil,        -- a UTF-8 character being read
        killed = "",
        hist_at = nil,    -- the history entry shown, or nil
        saved = nil,      -- the line being typed, while walking history
        active = false,
    }, Editor)
    return ed
end

local function split(text)
    local out = {}
    for ch in text:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
        out[#out + 1] = ch
    end
    return out
end

function Editor:text()
    return table.concat(self.chars)
end

function Editor:set_text(text)
    self.chars = split(text)
    self.pos = #self.chars
end

-- Redraws prompt and line: up to the first row of the last drawing,
-- clear to the end of the screen, write, put the cursor in its place.
function Editor:refresh()
    local out = {}
    if self.row > 0 then
        out[#out + 1] = string.format("\27[%dA", self.row)
    end
    out[#out + 1] = "\r\27[J"
    out[#out + 1] = self.prompt_text
    out[#out + 1] = self:text()
    local plen = #self.prompt_text
    local len = plen + #self.chars
    local cols = self.cols
    local rows = math.floor(len / cols) + 1
    local at = plen + self.pos
    -- A line that fills the last row exactly: the terminal waits at its
    -- right edge; go to the next row for the cursor.
    if self.pos == #self.chars and len > 0 and len % cols == 0 then
        out[#out + 1] = "\r\n"
    end
    local end_row = math.floor(len / cols)
    local cur_row = math.floor(at / cols)
    if end_row > cur_row then
        out[#out + 1] = string.format("\27[%dA", end_row - cur_row)
    end
    out[#out + 1] = "\r"
    local col = at % cols
    if col > 0 then
        out[#out + 1] = string.format("\27[%dC", col)
    end
    self.rows, self.row = rows, cur_row
    self.write(table.concat(out))
end

function Editor:prompt(text)
    self.prompt_text = text
    self.chars, self.pos = {}, 0
    self.rows, self.row = 1, 0
    self.hist_at, self.saved = nil, nil
    self.active = true
    self.write(text)
end

function Editor:resize(cols)
    cols = math.max(tonumber(cols) or 80, 10)
    if cols ~= self.cols then
        self.cols = cols
        if self.active then
            -- Where the old drawing's rows went is the terminal's guess:
            -- start afresh on the row of the cursor.
            self.row = 0
            self:refresh()
        end
    end
end

function Editor:add_history(line)
    line = line:gsub("[\r\n]+", " ")
    if line:match("^%s*$") then
        return
    end
    local h = self.history
    if h[#h] == line then
        return
    end
    h[#h + 1] = line
    while #h > M.HISTORY do
        table.remove(h, 1)
    end
end

-- Moving through history by delta (-1 older, +1 newer).
function Editor:walk(delta)
    local h = self.history
    if #h == 0 then
        return
    end
    local at = self.hist_at
    if not at then
        if delta > 0 then
            return
        end
        self.saved = self:text()
        at = #h + 1
    end
    at = at + delta
    if at < 1 then
        return
    end
    if at > #h then
        self.hist_at = nil
        self:set_text(self.saved or "")
        self.saved = nil
    else
        self.hist_at = at
        self:set_text(h[at])
    end
    self:refresh()
end

local function is_word(ch)
    return ch:match("^[%w_]$") ~= nil or #ch > 1
end

function Editor:word_left()
    local p = self.pos
    while p > 0 and not is_word(self.chars[p]) do
        p = p - 1
    end
    while p > 0 and is_word(self.chars[p]) do
        p = p - 1
    end
    return p
end

function Editor:word_right()
    local p, n = self.pos, #self.chars
    while p < n and not is_word(self.chars[p + 1]) do
        p = p + 1
    end
    while p < n and is_word(self.chars[p + 1]) do
        p = p + 1
    end
    return p
end

function Editor:delete(from, to)      -- characters from+1 .. to
    if to <= from then
        return ""
    end
    local gone = {}
    for _ = from + 1, to do
        gone[#gone + 1] = table.remove(self.chars, from + 1)
    end
    self.pos = from
    return table.concat(gone)
end

function Editor:insert(text)
    for _, ch in ipairs(split(text)) do
        table.insert(self.chars, self.pos + 1, ch)
        self.pos = self.pos + 1
    end
end

function Editor:do_complete()
    if not self.complete then
        return
    end
    local before = table.concat(self.chars, "", 1, self.pos)
    local word = before:match("[%w_%.:]*$")
    local list = self.complete(word) or {}
    if #list == 0 then
        self.write("\7")
        return
    end
    local common = list[1]
    for i = 2, #list do
        local c = list[i]
        local n = 0
        while n < #common and n < #c and
              common:sub(n + 1, n + 1) == c:sub(n + 1, n + 1) do
            n = n + 1
        end
        common = common:sub(1, n)
    end
    if #common > #word then
        self:insert(common:sub(#word + 1))
        self:refresh()
        return
    end
    if #list == 1 then
        return
    end
    -- List them in columns under the line, then draw it again.
    local widest = 0
    for _, c in ipairs(list) do
        widest = math.max(widest, #c)
    end
    local per = math.max(1, math.floor(self.cols / (widest + 2)))
    local out = { "\r\n" }
    for i, c in ipairs(list) do
        out[#out + 1] = c .. string.rep(" ", widest + 2 - #c)
        if i % per == 0 or i == #list then
            out[#out + 1] = "\r\n"
        end
    end
    -- Below the drawing: move to its last row first.
    local down = self.rows - 1 - self.row
    self.write((down > 0 and string.format("\27[%dB", down) or "") ..
               table.concat(out))
    self.rows, self.row = 1, 0
    self:refresh()
end

-- One key (a control byte, a character or an escape sequence); returns
-- an event or nil.
function Editor:key(k)
    local n = #self.chars
    if k == "\r" or k == "\n" then
        local text = self:text()
        -- The cursor to the end of the drawing, then a new row.
        self.pos = n
        self:refresh()
        self.write("\r\n")
        self.active = false
        return "line", text
    elseif k == "\3" then
        self.pos = n
        self:refresh()
        self.write("^C\r\n")
        self.active = false
        return "interrupt"
    elseif k == "\4" then
        if n == 0 then
            self.write("\r\n")
            self.active = false
            return "eof"
        end
        self:delete(self.pos, math.min(self.pos + 1, n))
    elseif k == "\127" or k == "\8" then
        if self.pos > 0 then
            self:delete(self.pos - 1, self.pos)
        end
    elseif k == "\27[3~" then
        self:delete(self.pos, math.min(self.pos + 1, n))
    elseif k == "\2" or k == "\27[D" or k == "\27OD" then
        self.pos = math.max(self.pos - 1, 0)
    elseif k == "\6" or k == "\27[C" or k == "\27OC" then
        self.pos = math.min(self.pos + 1, n)
    elseif k == "\1" or k == "\27[H" or k == "\27OH" or k == "\27[1~" or
           k == "\27[7~" then
        self.pos = 0
    elseif k == "\5" or k == "\27[F" or k == "\27OF" or k == "\27[4~" or
           k == "\27[8~" then
        self.pos = n
    elseif k == "\27b" or k == "\27[1;5D" or k == "\27[1;3D" then
        self.pos = self:word_left()
    elseif k == "\27f" or k == "\27[1;5C" or k == "\27[1;3C" then
        self.pos = self:word_right()
    elseif k == "\11" then
        self.killed = self:delete(self.pos, n)
    elseif k == "\21" then
        local at = self.pos
        self.killed = self:delete(0, at)
    elseif k == "\23" then
        local from = self:word_left()
        self.killed = self:delete(from, self.pos)
    elseif k == "\25" then
        self:insert(self.killed)
    elseif k == "\20" then
        if self.pos > 0 and n > 1 then
            local p = self.pos == n and n - 1 or self.pos
            self.chars[p], self.chars[p + 1] = self.chars[p + 1], self.chars[p]
            self.pos = math.min(p + 1, n)
        end
    elseif k == "\16" or k == "\27[A" or k == "\27OA" then
        self:walk(-1)
        return
    elseif k == "\14" or k == "\27[B" or k == "\27OB" then
        self:walk(1)
        return
    elseif k == "\12" then
        self.write("\27[H\27[2J")
        self.rows, self.row = 1, 0
    elseif k == "\t" then
        self:do_complete()
        return
    elseif #k >= 1 and k:byte(1) >= 32 and k:byte(1) ~= 127 then
        self:insert(k)
    else
        return      -- a key that does nothing here
    end
    self:refresh()
end

-- Splits bytes into keys; an escape sequence or a UTF-8 character cut
-- between two reads is kept for the next.
function Editor:feed(bytes)
    local i, len = 1, #bytes
    while i <= len do
        local b = bytes:byte(i)
        local k
        if self.esc then
            local e = self.esc .. string.char(b)
            i = i + 1
            if #e == 2 then
                if b == 91 or b == 79 then          -- '[' or 'O'
                    self.esc = e
                else
                    self.esc, k = nil, e              -- Alt-key
                end
            elseif self.esc:sub(2, 2) == "O" then
                self.esc, k = nil, e
            elseif b >= 64 and b <= 126 then          -- final byte
                self.esc, k = nil, e
            elseif #e > 16 then
                self.esc = nil                        -- not one we know
            else
                self.esc = e
            end
        elseif self.utf then
            if b >= 128 and b < 192 then
                self.utf = self.utf .. string.char(b)
                i = i + 1
                local need = self.utf_len
                if #self.utf == need then
                    k, self.utf = self.utf, nil
                end
            else
                self.utf = nil      -- broken: drop it, read b afresh
            end
        elseif b == 27 then
            self.esc = "\27"
            i = i + 1
        elseif b >= 194 and b <= 244 then
            self.utf = string.char(b)
            self.utf_len = b >= 240 and 4 or b >= 224 and 3 or 2
            i = i + 1
        elseif b >= 128 then
            i = i + 1           -- not UTF-8
        else
            k = string.char(b)
            i = i + 1
            -- CR LF (or LF after CR) is one Enter.
            if k == "\n" and self.last == "\r" then
                k = nil
            end
        end
        if k then
            self.last = k
            local ev, value = self:key(k)
            if ev then
                return ev, value, bytes:sub(i)
            end
        elseif b ~= 27 then
            self.last = nil
        end
    end
    return nil, nil, ""
end

return M
