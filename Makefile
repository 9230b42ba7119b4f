# tpserver: a Thousand Parsec game server (C core on libuv, game logic in LuaJIT).
#
#   make            build ./tpserver
#   make run        install missing Debian packages, build, run a MiniSec game in
#                   the foreground on 127.0.0.1:6923 (TP) and 6924 (TP over
#                   TLS, self-signed certificate in ./var/tls) with its data
#                   in ./var; make run RULESET=rfts (mtsec, risk, tae) plays that
#                   ruleset instead, with its data in ./var-rfts
#   make test       install missing packages, build, run the whole test suite
#   make asan       the whole test suite against an ASan+UBSan build
#   make bench      load benchmarks (not part of make test)
#   make fuzz       libFuzzer over the frame reader and codec (FUZZ_SECONDS=60)
#   make install    PREFIX=/usr/local DESTDIR= (binary, Lua, rulesets, config,
#                   man page, systemd unit, logrotate snippet)
#   make deps       install missing Debian packages (apt-get, non-interactive)
#
# V=1 shows the full compiler command lines.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc

ifeq ($(SAN),1)
BUILD   ?= build/asan
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
BIN      = $(BUILD)/tpserver
OPT     ?= -O1
else
BUILD   ?= build/release
BIN      = tpserver
OPT     ?= -O2
endif

# Debian packages the build, the tests and the fuzzer need.
DEB_PKGS = pkg-config libuv1-dev libluajit-5.1-dev luajit libssl-dev openssl \
           libleveldb-dev libsnappy-dev lua-cjson lua-cjson-dev python3 \
           clang libclang-rt-dev libedit-dev libicu-dev \
           libhttp-parser-dev libssh-dev openssh-client chromium \
           chromium-driver python3-selenium libavahi-client-dev \
           libcurl4-openssl-dev avahi-daemon avahi-utils dbus-daemon \
           iproute2 util-linux libxml2-utils

PKGS      = libuv luajit openssl libedit icu-uc icu-i18n libssh \
            avahi-client libcurl
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     = -Wall -Wextra -Werror -Wstrict-prototypes -Wshadow -Wvla \
           -Wno-unused-parameter
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) \
             $(PKG_CFLAGS) -Icore -MMD -MP
LDLIBS_ALL = $(PKG_LIBS) -lleveldb -llua5.1-cjson -lhttp_parser -lm -lpthread
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)

CORE_SRC  = $(wildcard core/*.c)
CORE_OBJ  = $(patsubst core/%.c,$(BUILD)/core/%.o,$(CORE_SRC))
LIB_OBJ   = $(filter-out $(BUILD)/core/main.o,$(CORE_OBJ))
UNIT_SRC  = $(wildcard tests/unit/test_*.c)
UNIT_BIN  = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

ifeq ($(V),1)
Q =
else
Q = @
endif

.PHONY: all build run test check asan bench fuzz deps install uninstall clean \
        unit-bins

all: build

build: $(BIN)

$(BIN): $(CORE_OBJ)
	@echo "  LINK   $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/core/%.o: core/%.c
	@mkdir -p $(dir $@)
	@echo "  CC     $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	@echo "  CC     $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(LIB_OBJ)
	@echo "  LINK   $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

unit-bins: $(UNIT_BIN)

-include $(CORE_OBJ:.o=.d) $(UNIT_BIN:=.d)

# ---------------------------------------------------------------- packages
# Installs only what is missing, so it is quick (and needs no root) when all
# packages are present.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends $$missing; \
	fi

# ---------------------------------------------------------------- run/test
run: deps
	@$(MAKE) --no-print-directory build
	./tpserver -f --tls-port 6924 $(if $(RULESET),--ruleset $(RULESET) --data var-$(RULESET))

test: deps
	@$(MAKE) --no-print-directory build unit-bins
	@if command -v clang >/dev/null; then \
	  $(MAKE) --no-print-directory fuzz-quick FUZZ_SECONDS=10; \
	else echo "clang not found: fuzzing skipped"; fi
	@TPSERVER=./$(BIN) UNIT_DIR=$(BUILD)/tests tests/run

check: asan

asan: deps
	@$(MAKE) --no-print-directory SAN=1 build unit-bins
	@TPSERVER=./build/asan/tpserver UNIT_DIR=build/asan/tests \
	 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run

-include bench/bench.mk
-include fuzz/fuzz.mk

# ---------------------------------------------------------------- install
SHARE = $(DESTDIR)$(PREFIX)/share/tpserver
ETC   = $(DESTDIR)$(PREFIX)/etc/tpserver
MAN1  = $(DESTDIR)$(PREFIX)/share/man/man1
UNITS = $(DESTDIR)$(PREFIX)/lib/systemd/system

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(SHARE) $(ETC)
	install -m 0755 tpserver $(DESTDIR)$(PREFIX)/bin/tpserver
	cp -R lua rulesets admin web $(SHARE)/
	[ -e $(ETC)/tpserver.lua ] || install -m 0644 tpserver.lua $(ETC)/tpserver.lua
	install -d $(MAN1) $(UNITS) $(SHARE)/packaging
	install -m 0644 packaging/tpserver.1 $(MAN1)/tpserver.1
	sed 's|@PREFIX@|$(PREFIX)|g' packaging/tpserver.service \
	  > $(UNITS)/tpserver.service
	chmod 0644 $(UNITS)/tpserver.service
	install -m 0644 packaging/tpserver.logrotate $(SHARE)/packaging/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/tpserver
	rm -f $(MAN1)/tpserver.1 $(UNITS)/tpserver.service
	rm -rf $(SHARE)

clean:
	rm -rf build tpserver
