-- tp.random: the Mersenne Twister MT19937 (standard init_genrand seeding
-- and tempering), with the helpers rulesets use. Deterministic: the same
-- seed gives the same numbers on every machine. The state is a plain table
-- (state(), restore()) so a ruleset can keep it in its persistent state.
--
--   local rng = random.new(seed)
--   rng:int32()        -- 0 .. 2^32-1
--   rng:range(a, b)    -- truncate(u * (b - a + 1) + a), u = int32 / 2^32
--   rng:real1()        -- int32 / (2^32 - 1)

local bit = require "bit"
local band, bor, bxor = bit.band, bit.bor, bit.bxor
local rshift, lshift, tobit = bit.rshift, bit.lshift, bit.tobit

local M = {}

local N, MM = 624, 397
local MATRIX_A = 0x9908b0df
local UPPER, LOWER = 0x80000000, 0x7fffffff

local function u32(x)
    x = x % 4294967296
    return x
end

-- 32-bit unsigned multiply modulo 2^32, exact in doubles.
local function mul32(a, b)
    local ah, al = math.floor(a / 65536), a % 65536
    return u32((ah * b % 65536) * 65536 + al * b)
end

local Gen = {}
Gen.__index = Gen

function M.new(seed)
    local g = setmetatable({ mt = {}, mti = N + 1 }, Gen)
    g:seed(seed or 5489)
    return g
end

function Gen:seed(s)
    local mt = self.mt
    mt[0] = u32(s)
    for i = 1, N - 1 do
        local prev = mt[i - 1]
        local x = u32(bxor(prev, rshift(prev, 30)))
        mt[i] = u32(mul32(x, 1812433253) + i)
    end
    self.mti = N
end

local function twist(mt)
    for kk = 0, N - 1 do
        local y = bor(band(mt[kk], UPPER), band(mt[(kk + 1) % N], LOWER))
        local v = bxor(mt[(kk + MM) % N], rshift(y, 1))
        if band(y, 1) ~= 0 then
            v = bxor(v, MATRIX_A)
        end
        mt[kk] = u32(v)
    end
end

function Gen:int32()
    if self.mti >= N then
        twist(self.mt)
        self.mti = 0
    end
    local y = self.mt[self.mti]
    self.mti = self.mti + 1
    y = bxor(y, rshift(y, 11))
    y = bxor(y, band(lshift(y, 7), tobit(0x9d2c5680)))
    y = bxor(y, band(lshift(y, 15), tobit(0xefc60000)))
    y = bxor(y, rshift(y, 18))
    return u32(y)
end

-- truncate-toward-zero(u * (max - min + 1) + min), u in [0, 1).
function Gen:range(min, max)
    local u = self:int32() / 4294967296
    local v = u * (max - min + 1) + min
    if v >= 0 then
        return math.floor(v)
    end
    return math.ceil(v)
end

function Gen:real1()
    return self:int32() / 4294967295
end

-- A copy of the state as a plain table (JSON-safe).
function Gen:state()
    local mt = {}
    for i = 0, N - 1 do
        mt[i + 1] = self.mt[i]
    end
    return { mt = mt, mti = self.mti }
end

function M.restore(state)
    local g = setmetatable({ mt = {}, mti = state.mti }, Gen)
    for i = 1, N do
        g.mt[i - 1] = state.mt[i]
    end
    return g
end

return M
