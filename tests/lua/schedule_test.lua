-- Turn schedules (tp.schedule) and time zones read from the TZif files
-- (tp.tz): offsets, daylight-saving gaps and repeats, schedules across
-- midnight, weekdays, and the POSIX rule past a file's last transition.
local t = dofile(TP_HOME .. "/tests/lua/tap.lua")
local tz = require "tp.tz"
local schedule = require "tp.schedule"

local function utc(y, mo, d, h, mi)
    return tz.days_from_civil(y, mo, d) * 86400 + (h or 0) * 3600 +
           (mi or 0) * 60
end

t.is(utc(2026, 12, 8), os.time { year = 2026, month = 12, day = 8, hour = 0,
     isdst = false } - (os.time { year = 1970, month = 1, day = 1, hour = 0 }),
     "days_from_civil agrees with the C library")
local y, mo, d, h, mi, _, wday = tz.civil(utc(2026, 12, 11, 21, 5))
t.ok(y == 2026 and mo == 12 and d == 11 and h == 21 and mi == 5 and
     wday == 5, "civil: 2026-12-11 21:05 is a Friday")

local berlin = assert(tz.load("Europe/Berlin"))
t.is(berlin:offset(utc(2026, 1, 15, 12)), 3600, "Berlin in winter: +1")
t.is(berlin:offset(utc(2026, 7, 15, 12)), 7200, "Berlin in summer: +2")
-- Clocks go forward on 2026-03-29 at 01:00 UTC, back on 2026-10-25 at
-- 01:00 UTC.
t.is(berlin:offset(utc(2026, 3, 29, 0, 59)), 3600, "before the change")
t.is(berlin:offset(utc(2026, 3, 29, 1, 0)), 7200, "after the change")
t.is(berlin:to_utc(2026, 3, 29, 2, 30), utc(2026, 3, 29, 1, 30),
     "02:30 that does not exist is 03:30 CEST (the winter offset)")
t.is(berlin:to_utc(2026, 10, 25, 2, 30), utc(2026, 10, 25, 0, 30),
     "02:30 that happens twice is the first, 02:30 CEST")
t.is(berlin:to_utc(2026, 10, 25, 3, 30), utc(2026, 10, 25, 2, 30),
     "03:30 after the change is CET")
-- Past the file's transitions (2037) the footer's rule applies.
t.is(berlin:offset(utc(2045, 7, 1)), 7200, "2045 summer from the rule")
t.is(berlin:offset(utc(2045, 1, 1)), 3600, "2045 winter from the rule")
t.is(berlin:to_utc(2045, 3, 26, 2, 30), utc(2045, 3, 26, 1, 30),
     "a 2045 gap from the rule (last Sunday of March)")
local sydney = assert(tz.load("Australia/Sydney"))
t.is(sydney:offset(utc(2045, 1, 15)), 39600, "southern summer from the rule")
t.is(sydney:offset(utc(2045, 7, 15)), 36000, "southern winter from the rule")
t.is(sydney:offset(utc(2026, 1, 15)), 39600, "Sydney in January 2026")
local rule = tz.parse_posix("<+0330>-3:30")
t.is(rule and rule.std, 12600, "POSIX names in <>, offsets with minutes")
t.is(tz.parse_posix("CET-1CEST,M3.5.0,M10.5.0/3").dst, 7200,
     "POSIX summer offset defaults to an hour more")
t.is(assert(tz.load("UTC")):offset(utc(2026, 6, 1)), 0, "UTC")

local z, err = tz.load("Mars/Olympus")
t.ok(not z and err:find("unknown time zone", 1, true), "unknown zone", err)
z, err = tz.load("../../etc/passwd")
t.ok(not z and err:find("not a time zone name", 1, true),
     "a path is not a zone name", err)

-- Schedules.
local function compile(list, zone)
    return assert(schedule.compile(list, zone or "UTC"))
end
local s = compile { "00:30" }
t.is(schedule.next_end(s, utc(2026, 12, 31, 23, 50)), utc(2027, 1, 1, 0, 30),
     "across midnight (and a year)")
s = compile { "08:00", "20:00" }
t.is(schedule.next_end(s, utc(2026, 12, 8, 9)), utc(2026, 12, 8, 20),
     "two a day: the next one")
t.is(schedule.next_end(s, utc(2026, 12, 8, 20)), utc(2026, 12, 9, 8),
     "a time that is now is not next")
s = compile { "Mon-Fri 20:00" }
t.is(schedule.next_end(s, utc(2026, 12, 11, 21)), utc(2026, 12, 14, 20),
     "weekdays: Friday evening to Monday")
t.is(schedule.next_end(s, utc(2026, 12, 8, 19)), utc(2026, 12, 8, 20),
     "weekdays: Tuesday")
s = compile { "Sat,Sun 12:00", "fri-mon 06:00" }
t.is(schedule.next_end(s, utc(2026, 12, 8, 12)), utc(2026, 12, 11, 6),
     "a wrapping range: Friday 06:00 next")
t.is(schedule.next_end(s, utc(2026, 12, 12, 7)), utc(2026, 12, 12, 12),
     "Saturday noon")
-- Berlin: the evening turn over the spring change lasts 23 hours.
s = compile({ "20:00" }, "Europe/Berlin")
t.is(schedule.next_end(s, utc(2026, 3, 28, 18, 30)), utc(2026, 3, 28, 19),
     "20:00 CET is 19:00 UTC")
t.is(schedule.next_end(s, utc(2026, 3, 28, 19)), utc(2026, 3, 29, 18),
     "20:00 CEST the next day is 18:00 UTC (23 hours)")
s = compile({ "02:30" }, "Europe/Berlin")
t.is(schedule.next_end(s, utc(2026, 3, 28, 12)), utc(2026, 3, 29, 1, 30),
     "a scheduled 02:30 on the spring-forward night ends at 03:30 CEST")
t.is(schedule.next_end(s, utc(2026, 10, 24, 12)), utc(2026, 10, 25, 0, 30),
     "a scheduled 02:30 on the fall-back night ends at its first time")
t.is(schedule.next_end(s, utc(2026, 10, 25, 0, 30)), utc(2026, 10, 26, 1, 30),
     "and not again an hour later")
t.is(schedule.local_text(s, utc(2026, 3, 29, 1, 30)),
     "2026-03-29 03:30 +02:00 Europe/Berlin", "local text")

local function bad(list, zone, want, name)
    local ok, e = schedule.compile(list, zone or "UTC")
    t.ok(not ok and e and e:find(want, 1, true), name, e)
end
bad({ "25:00" }, nil, "no such time", "hour 25")
bad({ "20:00pm" }, nil, "HH:MM", "not a time")
bad({ "Xyz 10:00" }, nil, "not a day", "not a day")
bad({ 2000 }, nil, "must be a string", "not a string")
bad({ "20:00" }, "Nowhere/Atlantis", "turn_timezone", "unknown zone")
t.is(select(2, schedule.compile({}, "UTC")), nil, "no schedule: no error")

-- The configuration checks both, and manual mode refuses a schedule.
local load = dofile(TP_HOME .. "/tests/lua/config_helper.lua")
local cfg, cerr = load("return { turn_schedule = { 'Mon 25:00' } }")
t.ok(not cfg and cerr:find("turn_schedule[1]", 1, true),
     "configuration names the bad entry", cerr)
cfg = assert(load("return { turn_schedule = { 'Mon-Fri 20:00' }, "
                  .. "turn_timezone = 'America/New_York' }"))
t.ok(require("tp.config").check_rules(cfg), "a schedule is accepted")
cfg.turn_mode = "manual"
t.ok(not require("tp.config").check_rules(cfg), "not with manual turns")
return t.done()
