-- tp.proto: every TP frame type, declared once as a layout (written from
-- the protocol specification: protocol.xml for TP04, protocol3.xml for
-- TP03, admin.xml, with the decisions of PROTOCOL.md where they disagree).
--
-- The layout language is described in core/codec.h. Field names follow
-- protocol.xml. The C core decodes requests and encodes replies by these
-- rows; "*:params" marks a variable part coded with a layout built from an
-- ObjectDesc, OrderDesc or CommandDesc.

local codec = require "tp.codec"

local M = {}

-- Shared bodies.
local GET_WITH_ID = "[j]:ids"
local GET_WITH_ID_SLOT = "I:id [j]:slots"
local GET_ID_SEQ4 = "j:key I:start j:amount J:from"
local GET_ID_SEQ3 = "j:key I:start j:amount"
local ID_SEQ4 = "j:key j:remaining [I:id Q:modtime]:modtimes J:from"
local ID_SEQ3 = "j:key j:remaining [I:id Q:modtime]:modtimes"
local REFS = "[i:type I:id]:references"
local POS = "{q:x q:y q:z}:pos"
local ORDER = "I:id j:slot I:otype I:turns [I:resource I:amount]:resources " ..
              "*:params"
local MESSAGE = "I:id j:slot [I]:msgtypes S:subject S:body I:turn " .. REFS
local CATEGORY = "j:id Q:modtime S:name S:description"
local DESIGN = "j:id Q:modtime [I]:categories S:name S:description i:inuse " ..
               "i:owner [I:id I:count]:components S:feedback " ..
               "[I:id S:value]:properties"

-- { id, name, TP04 layout, TP03 layout }. TP03 layout: nil = same as TP04,
-- false = the frame does not exist in TP03.
M.player = {
    { 0, "Okay", "S:result" },
    { 1, "Fail", "I:code S:result " .. REFS, "I:code S:result" },
    { 2, "Sequence", "I:number" },
    { 3, "Connect", "S:client" },
    { 4, "Login", "S:username S:password" },
    { 5, "GetObjectsByID", GET_WITH_ID },
    { 6, "GetObjectsByPos", POS .. " Q:r" },
    { 7, "Object",
      "I:id I:otype S:name S:desc I:parent [I]:contains Q:modtime x16 " ..
      "*:params",
      "I:id I:otype S:name Q:size " .. POS .. " {q:x q:y q:z}:vel " ..
      "[I]:contains [I]:ordertypes I:orders Q:modtime x8 *:params" },
    { 8, "GetOrderDesc", GET_WITH_ID },
    { 9, "OrderDesc",
      "I:id S:name S:description [S:name I:type S:description]:parameters " ..
      "Q:modtime" },
    { 10, "GetOrder", GET_WITH_ID_SLOT },
    { 11, "Order", ORDER },
    { 12, "OrderInsert", ORDER },
    { 13, "RemoveOrder", GET_WITH_ID_SLOT },
    { 14, "GetTimeRemaining", "" },
    { 15, "TimeRemaining", "j:time I:reason I:turn S:turnname [I]:waiting",
      "j:time" },
    { 16, "GetBoards", GET_WITH_ID },
    { 17, "Board", "I:id S:name S:description I:messages Q:modtime" },
    { 18, "GetMessage", GET_WITH_ID_SLOT },
    { 19, "Message", MESSAGE },
    { 20, "PostMessage", MESSAGE },
    { 21, "RemoveMessage", GET_WITH_ID_SLOT },
    { 22, "GetResource", GET_WITH_ID },
    { 23, "Resource",
      "I:id S:name S:name_plural S:unit S:unit_plural S:description " ..
      "I:weight I:size Q:modtime" },
    { 24, "Redirect", "S:uri" },
    { 25, "GetFeatures", "" },
    { 26, "Features", "[I]:features" },
    { 27, "Ping", "" },
    { 28, "GetObjectIDs", GET_ID_SEQ4, GET_ID_SEQ3 },
    { 29, "GetObjectIDsByPos", POS .. " Q:r" },
    { 30, "GetObjectIDsByContainer", "I:id" },
    { 31, "ObjectIDs", ID_SEQ4, ID_SEQ3 },
    { 32, "GetOrderDescIDs", GET_ID_SEQ4, GET_ID_SEQ3 },
    { 33, "OrderDescIDs", ID_SEQ4, ID_SEQ3 },
    { 34, "OrderProbe", ORDER },
    { 35, "GetBoardIDs", GET_ID_SEQ4, GET_ID_SEQ3 },
    { 36, "BoardIDs", ID_SEQ4, ID_SEQ3 },
    { 37, "GetResourceIDs", GET_ID_SEQ4, GET_ID_SEQ3 },
    { 38, "ResourceIDs", ID_SEQ4, ID_SEQ3 },
    { 39, "GetPlayer", GET_WITH_ID },
    -- TP04's modtime is not in protocol.xml but libtpproto-py's TP04
    -- branch reads it; TP03 clients break on it (PROTOCOL.md 7.8).
    { 40, "Player", "I:id S:name S:race Q:modtime", "I:id S:name S:race" },
    { 41, "GetCategory", GET_WITH_ID },
    { 42, "Category", CATEGORY },
    { 43, "AddCategory", CATEGORY },
    { 44, "RemoveCategory", GET_WITH_ID },
    { 45, "GetCategoryIDs", GET_ID_SEQ4, GET_ID_SEQ3 },
    { 46, "CategoryIDs", ID_SEQ4, ID_SEQ3 },
    { 47, "GetDesign", GET_WITH_ID },
    { 48, "Design", DESIGN },
    { 49, "AddDesign", DESIGN },
    { 50, "ModifyDesign", DESIGN },
    { 51, "RemoveDesign", GET_WITH_ID },
    { 52, "GetDesignIDs", GET_ID_SEQ4, GET_ID_SEQ3 },
    { 53, "DesignIDs", ID_SEQ4, ID_SEQ3 },
    { 54, "GetComponent", GET_WITH_ID },
    { 55, "Component",
      "I:id Q:modtime [I]:categories S:name S:description S:requirements " ..
      "[I:id S:value]:properties" },
    { 56, "GetComponentIDs", GET_ID_SEQ4, GET_ID_SEQ3 },
    { 57, "ComponentIDs", ID_SEQ4, ID_SEQ3 },
    { 58, "GetProperty", GET_WITH_ID },
    { 59, "Property",
      "I:id Q:modtime [I]:categories I:rank S:name S:displayname " ..
      "S:description S:calculate S:requirements" },
    { 60, "GetPropertyIDs", GET_ID_SEQ4, GET_ID_SEQ3 },
    { 61, "PropertyIDs", ID_SEQ4, ID_SEQ3 },
    { 62, "CreateAccount", "S:username S:password S:email S:comment" },
    -- FinishedTurn is a TP04 frame that TP03 connections may send too.
    { 63, "FinishedTurn", "" },
    { 64, "SetFilters", "[I]:filters", false },
    { 65, "GetGames", "", false },
    -- ctime (the game's creation) is not in protocol.xml; real TP04
    -- clients need it (PROTOCOL.md 7.2).
    { 66, "Game",
      "S:name S:key [S]:tp S:server S:sertype S:rule S:rulever " ..
      "[S:type S:dns S:ip I:port]:connections " ..
      "[I:id S:strval I:intval]:parameters S:mediabase Q:ctime", false },
    { 67, "GetObjectDesc", GET_WITH_ID, false },
    { 68, "ObjectDesc",
      "I:id S:name S:description Q:modtime " ..
      "[I:id S:name S:description [S:name I:type S:description]:parameters]" ..
      ":groups", false },
    { 69, "GetObjectDescIDs", GET_ID_SEQ4, false },
    { 70, "ObjectDescIDs", ID_SEQ4, false },
    { 71, "ModifyObject",
      "I:id I:otype S:name S:desc I:parent [I]:contains Q:modtime x16 " ..
      "*:params", false },
    { 72, "GetPlayerIDs", GET_ID_SEQ4, false },
    { 73, "PlayerIDs", ID_SEQ4, false },
    { 74, "GetOrderQueue", GET_WITH_ID, false },
    { 75, "OrderQueue",
      "I:id Q:modtime I:maxslots I:numorders [I]:ordertypes", false },
    { 76, "GetOrderQueueIDs", GET_ID_SEQ4, false },
    { 77, "OrderQueueIDs", ID_SEQ4, false },
}

-- The administration protocol (admin.xml; PROTOCOL.md section 16): the
-- session frames it shares with the player protocol, then its own.
M.admin = {
    { 0, "Okay", "S:result" },
    { 1, "Fail", "I:code S:result " .. REFS, "I:code S:result" },
    { 2, "Sequence", "I:number" },
    { 3, "Connect", "S:client" },
    { 4, "Login", "S:username S:password" },
    { 27, "Ping", "" },
    { 1000, "LogMessage", "Q:timestamp I:level S:message" },
    { 1001, "CommandUpdate", "" },
    { 1002, "GetCommandDesc", GET_WITH_ID },
    -- modtime is not in admin.xml but real clients read it (PROTOCOL.md 16).
    { 1003, "CommandDesc",
      "I:id S:name S:help [S:name I:type S:description]:parameters Q:modtime" },
    { 1004, "GetCommandDescIDs", GET_ID_SEQ4 },
    { 1005, "CommandDescIDs", ID_SEQ4 },
    { 1006, "Command", "I:ctype *:params" },
    { 1007, "CommandResult", "I:status S:output" },
}

-- Name <-> id maps (player and admin names do not clash).
M.id = {}
M.name = {}
for _, set in ipairs { M.player, M.admin } do
    for _, row in ipairs(set) do
        M.id[row[2]] = row[1]
        M.name[row[1]] = row[2]
    end
end

-- Fail codes (PROTOCOL.md 5.4).
M.FAIL = {
    Protocol = 0, Frame = 1, UnavailablePermanently = 2,
    UnavailableTemporarily = 3, NoSuchThing = 4, PermissionDenied = 5,
    Gone = 6, FrameVersionNotSupported = 7, RequestTooBig = 8,
}

-- Feature ids (PROTOCOL.md 12.1).
M.FEATURE = {
    SecureHere = 0x1, SecureThere = 0x2, HTTPHere = 0x3, HTTPThere = 0x4,
    KeepAlive = 0x5, PropertyCalc = 0x6, AccountCreate = 0x3E8,
    FilterPadding = 0x1D00,
}

-- TimeRemaining reasons (PROTOCOL.md 7.3).
M.REASON = {
    Requested = 0, TimerStarted = 1, TimerWarning = 2, AllFinished = 3,
    ThresholdFinishedTimerStarted = 4, EndOfTurnStarted = 5,
}

-- Registers every layout with the C codec. Called once at boot.
function M.register()
    for setname, set in pairs { player = M.player, admin = M.admin } do
        for _, row in ipairs(set) do
            local id, name, tp04, tp03 = row[1], row[2], row[3], row[4]
            codec.register(setname, 4, id, name, tp04)
            if tp03 ~= false then
                codec.register(setname, 3, id, name, tp03 or tp04)
            end
        end
    end
end

-- Frame constructors used by handlers.
function M.frame(name, fields)
    local t = fields or {}
    t._type = assert(M.id[name], name)
    return t
end

function M.okay(msg)
    return { _type = 0, result = msg or "" }
end

function M.sequence(n)
    return { _type = 2, number = n }
end

-- A Fail frame (for one item of a Sequence; to fail a whole request,
-- raise with tp.fail instead).
function M.fail(code, msg, refs)
    return { _type = 1, code = M.FAIL[code] or code, result = msg or "",
             references = refs or {} }
end

return M
