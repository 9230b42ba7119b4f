-- mt19937.lua: the tests' own MT19937 (Matsumoto and Nishimura's
-- generator, as minisec.md 1 describes tpserver-cpp's use of it), written
-- apart from the server's (core) so that the ruleset tests check the
-- server's draws against an independent implementation.
--   local MT = dofile(TP_HOME .. "/tests/lua/mt19937.lua")
--   local g = MT.new(5489)            -- or MT.from_state(ctx.state.rng)
--   g:int32(), g:range(lo, hi), g:range_trunc(lo, hi), g:real2()
local MT = {}
MT.__index = MT

local function u32(x)
    return x % 4294967296
end

local function mul32(a, b)      -- (a * b) mod 2^32 without losing bits
    local bh, bl = math.floor(b / 65536), b % 65536
    return ((a * bh) % 65536 * 65536 + a * bl) % 4294967296
end

function MT.new(seed)
    local mt = { [0] = seed % 4294967296 }
    for i = 1, 623 do
        local p = mt[i - 1]
        mt[i] = (mul32(1812433253, u32(bit.bxor(p, bit.rshift(p, 30)))) + i)
                % 4294967296
    end
    return setmetatable({ mt = mt, i = 624 }, MT)
end

-- A generator in the state the server keeps ({ mt = 624 words, mti }).
function MT.from_state(st)
    local mt = {}
    for i = 1, 624 do
        mt[i - 1] = st.mt[i]
    end
    return setmetatable({ mt = mt, i = st.mti }, MT)
end

function MT:int32()
    local mt = self.mt
    if self.i >= 624 then
        for k = 0, 623 do
            local y = u32(bit.bor(bit.band(mt[k], 0x80000000),
                                  bit.band(mt[(k + 1) % 624], 0x7FFFFFFF)))
            local v = u32(bit.bxor(mt[(k + 397) % 624], bit.rshift(y, 1)))
            if y % 2 == 1 then
                v = u32(bit.bxor(v, 0x9908B0DF))
            end
            mt[k] = v
        end
        self.i = 0
    end
    local y = mt[self.i]
    self.i = self.i + 1
    y = u32(bit.bxor(y, bit.rshift(y, 11)))
    y = u32(bit.bxor(y, bit.band(bit.lshift(y, 7), 0x9D2C5680)))
    y = u32(bit.bxor(y, bit.band(bit.lshift(y, 15), 0xEFC60000)))
    return u32(bit.bxor(y, bit.rshift(y, 18)))
end

-- minisec.md 1: range(lo, hi) = floor(int32 / 2^32 * (hi - lo + 1) + lo).
function MT:range(lo, hi)
    return math.floor(self:int32() / 4294967296 * (hi - lo + 1) + lo)
end

-- The same, truncated toward zero (RFTS converts to an integer by C's
-- truncation: it differs from floor below 0).
function MT:range_trunc(lo, hi)
    local v = self:int32() / 4294967296 * (hi - lo + 1) + lo
    return v >= 0 and math.floor(v) or math.ceil(v)
end

-- A real in [0, 1).
function MT:real2()
    return self:int32() / 4294967296
end

return MT
