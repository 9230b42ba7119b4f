-- tp.fail: refusing a request with a TP Fail frame.
--
-- fail.raise(code, message, refs) stops the handler; the core answers the
-- request with Fail(code, message, refs) carrying its sequence number.
-- code is a name from tp.proto.FAIL ("NoSuchThing") or a number. Any other
-- error in a handler is a bug: it is logged with its traceback and the
-- client gets Fail(UnavailableTemporarily, "internal error #N").

local proto = require "tp.proto"

local M = {}

function M.raise(code, message, refs)
    local num = proto.FAIL[code] or code
    if type(num) ~= "number" then
        error("tp.fail.raise: unknown Fail code " .. tostring(code), 2)
    end
    error({ tp_fail = true, code = num, message = tostring(message or ""),
            refs = refs }, 0)
end

-- Raises unless cond holds.
function M.check(cond, code, message, refs)
    if not cond then
        M.raise(code, message, refs)
    end
    return cond
end

return M
