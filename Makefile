# tpserver: a Thousand Parsec game server (C core on libuv, game logic in LuaJIT).
#
#   make            build ./tpserver; installs nothing: with libraries
#                   missing it says which and stops, pointing to make deps
#   make run        install the missing build and run packages (make deps),
#                   build, run a MiniSec game in the foreground on 127.0.0.1:
#                   TP on PORT (6923), TP over TLS on TLS_PORT (PORT+1; a
#                   self-signed certificate in ./var/tls), the web page on
#                   WEB_PORT (8080 with the default PORT, else PORT+2), with
#                   its data in ./var. make run PORT=7000 listens on 7000,
#                   7001 and 7002; TLS_PORT= and WEB_PORT= set those two
#                   (0: off), RUN_ARGS= adds server flags (tpserver --help).
#                   make run RULESET=rfts (mtsec, risk, tae) plays that
#                   ruleset instead, with its data in ./var-rfts. A new
#                   MiniSec game has AI_PLAYERS (2) computer players
#   make test       install the missing test packages too (make deps-test),
#                   build, run the quick fuzz run (its output in
#                   build/fuzz/fuzz-quick.log, one line here) and the whole
#                   test suite; the last line is "N passed, N failed", the
#                   fuzz run counting as one check
#   make asan       the whole test suite against an ASan+UBSan build
#   make bench      load benchmarks (not part of make test)
#   make fuzz       libFuzzer over the frame reader and codec (FUZZ_SECONDS=60)
#   make install    PREFIX=/usr/local DESTDIR= (binary, Lua, rulesets, config,
#                   man page, systemd units tpserver.service and the template
#                   tpserver@.service, logrotate snippet); an existing
#                   PREFIX/etc/tpserver/tpserver.lua is kept as it is
#   make uninstall  removes what make install put there, except the
#                   configuration PREFIX/etc/tpserver/tpserver.lua, which it
#                   keeps and names; make uninstall PURGE=1 removes that too.
#                   Game data (the service's /var/lib/tpserver, ./var) and
#                   logs are never touched
#   make deps       install the missing Debian packages that building and
#                   running need (RUN_PKGS; make run and make bench call it)
#   make deps-test  the same plus what only the tests and the fuzzer need
#                   (TEST_PKGS; make test, make asan and make fuzz call it)
#
# The deps targets ask dpkg-query what is missing and install only that, with
# apt-get (non-interactive, no recommended packages; its output goes to a log
# file whose name is printed). As root they need nothing more; as another user
# they use sudo; with no sudo they print the command to run as root (su -c
# 'make deps') and stop. When nothing is missing they need no root at all.
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

# Debian packages. RUN_PKGS: building and running the server. The -dev
# packages bring the headers and pull in their run-time libraries (libuv1,
# libluajit-5.1-2 and its jit modules, libssl3, libleveldb1d with snappy,
# lua-cjson's liblua5.1-cjson.so.0, ...); that is all the binary and lua/
# load. Not needed to run: the openssl and luajit commands (the self-signed
# TLS certificate is made in-process, core/tls.c; the Lua runs in the
# binary), libsnappy-dev (libleveldb1d brings snappy), avahi-daemon
# (Zeroconf is used when it runs, zeroconf = "auto"), python3.
RUN_PKGS  = pkg-config libuv1-dev libluajit-5.1-dev libssl-dev \
            libleveldb-dev lua-cjson lua-cjson-dev libedit-dev libicu-dev \
            libhttp-parser-dev libssh-dev libavahi-client-dev \
            libcurl4-openssl-dev tzdata
# TEST_PKGS: what only the tests and the fuzzer need: python3 (the
# integration tests), openssl (test certificates), openssh-client (the SSH
# console), chromium + chromium-driver + python3-selenium (the browser
# tests), avahi-daemon + avahi-utils + dbus-daemon (Zeroconf), iproute2,
# util-linux, libxml2-utils, and clang + libclang-rt-dev (libFuzzer) with
# llvm (llvm-symbolizer, for readable sanitizer stack traces).
TEST_PKGS = python3 python3-selenium chromium chromium-driver openssl \
            openssh-client avahi-daemon avahi-utils dbus-daemon iproute2 \
            util-linux libxml2-utils clang libclang-rt-dev llvm

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

.PHONY: all build run test check asan bench fuzz deps deps-test libcheck \
        install uninstall clean unit-bins

all: build

build: $(BIN)

$(BIN): $(CORE_OBJ)
	@echo "  LINK   $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/core/%.o: core/%.c | libcheck
	@mkdir -p $(dir $@)
	@echo "  CC     $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/unit/%.c | libcheck
	@mkdir -p $(dir $@)
	@echo "  CC     $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(LIB_OBJ)
	@echo "  LINK   $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

unit-bins: $(UNIT_BIN)

-include $(CORE_OBJ:.o=.d) $(UNIT_BIN:=.d)

# ---------------------------------------------------------------- packages
# install_pkgs TARGET,PACKAGES: apt-get install the PACKAGES that dpkg-query
# does not list as installed (see the header for root, sudo and no sudo).
define install_pkgs
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "make $(1): no dpkg-query (not Debian?): nothing installed; the"; \
	  echo "  Debian names of what is needed: $(strip $(2))"; \
	  exit 0; \
	fi; \
	missing=; \
	for p in $(2); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | \
	    grep -q ' installed$$' || missing="$$missing $$p"; \
	done; \
	[ -n "$$missing" ] || exit 0; \
	again=; [ "$(MAKECMDGOALS)" = "$(1)" ] || [ -z "$(MAKECMDGOALS)" ] || \
	  again=", then make $(MAKECMDGOALS) again"; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	else \
	  echo "make $(1): these Debian packages are missing:$$missing"; \
	  echo "Installing them needs root, and there is no sudo here. Run (it asks"; \
	  echo "for root's password)"; \
	  echo "  su -c 'make $(1)'"; \
	  echo "or"; \
	  echo "  su -c 'apt-get update && apt-get install -y --no-install-recommends$$missing'"; \
	  echo "in this folder$$again."; \
	  exit 1; \
	fi; \
	echo "make $(1): installing$$missing$${sudo:+ (with sudo)}"; \
	if [ -n "$$sudo" ] && ! sudo -v; then \
	  echo "make $(1): sudo failed. As root, run  su -c 'make $(1)'$$again."; \
	  exit 1; \
	fi; \
	log=$$(mktemp "$${TMPDIR:-/tmp}/tpserver-apt.XXXXXX") || exit 1; \
	echo "  apt-get's output goes to $$log"; \
	if $$sudo apt-get update -qq >"$$log" 2>&1 && \
	   $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	     --no-install-recommends $$missing >>"$$log" 2>&1; then \
	  echo "make $(1): done"; \
	else \
	  rc=$$?; \
	  echo "  --- last lines of $$log ---"; \
	  tail -n 15 "$$log" | sed 's/^/  | /'; \
	  echo "make $(1): apt-get failed (exit status $$rc)."; \
	  exit 1; \
	fi
endef

deps:
	$(call install_pkgs,deps,$(RUN_PKGS))

deps-test:
	$(call install_pkgs,deps-test,$(RUN_PKGS) $(TEST_PKGS))

# The libraries the build needs, checked before the first compile (not
# installed: make, make install and make unit-bins never install anything).
# pkg-config for PKGS, the compiler for the rest.
CHECK_HDRS = leveldb/c.h http_parser.h
CHECK_LIBS = leveldb lua5.1-cjson http_parser

libcheck:
	@pcs=; hdrs=; libs=; \
	if command -v pkg-config >/dev/null 2>&1; then \
	  for p in $(PKGS); do \
	    pkg-config --exists "$$p" 2>/dev/null || pcs="$$pcs $$p"; \
	  done; \
	else pcs=" (pkg-config itself is missing)"; fi; \
	for h in $(CHECK_HDRS); do \
	  printf '#include <%s>\n' "$$h" | \
	    $(CC) -E -x c - -o /dev/null >/dev/null 2>&1 || hdrs="$$hdrs $$h"; \
	done; \
	for l in $(CHECK_LIBS); do \
	  case $$($(CC) -print-file-name=lib$$l.so 2>/dev/null) in \
	    /*) ;; *) libs="$$libs lib$$l.so" ;; \
	  esac; \
	done; \
	[ -n "$$pcs$$hdrs$$libs" ] || exit 0; \
	echo "make: cannot build tpserver, libraries are missing:"; \
	[ -z "$$pcs" ] || echo "  pkg-config finds no$$pcs"; \
	[ -z "$$hdrs" ] || echo "  the compiler finds no$$hdrs"; \
	[ -z "$$libs" ] || echo "  the linker finds no$$libs"; \
	if command -v dpkg-query >/dev/null 2>&1; then \
	  missing=; \
	  for p in $(RUN_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | \
	      grep -q ' installed$$' || missing="$$missing $$p"; \
	  done; \
	  [ -z "$$missing" ] || echo "  (Debian packages not installed:$$missing)"; \
	fi; \
	echo "Run  make deps  to install them (as root, or it uses sudo), then make again."; \
	exit 1

# ---------------------------------------------------------------- run/test
PORT     ?= 6923
TLS_PORT ?= $(shell echo $$(($(PORT) + 1)))
WEB_PORT ?= $(if $(filter 6923,$(PORT)),8080,$(shell echo $$(($(PORT) + 2))))
RUN_ARGS ?=
# Computer players in a new MiniSec game (the rulesets with an AI; a game
# already in ./var keeps its players). AI_PLAYERS=0: none.
AI_PLAYERS ?= 2
RUN_AI    = $(if $(filter-out minisec,$(RULESET)),,$(if $(filter-out 0,\
            $(AI_PLAYERS)), --set ai_players=$(AI_PLAYERS)))
# The flags win over tpserver.lua's port, tls_port and web_port.
RUN_CMD   = ./tpserver -f --port $(PORT) --tls-port $(TLS_PORT) \
            --web-port $(WEB_PORT)$(if $(RULESET), --ruleset $(RULESET) \
            --data var-$(RULESET))$(RUN_AI)$(if $(strip $(RUN_ARGS)), \
            $(RUN_ARGS))

run: deps
	@for v in PORT=$(PORT) TLS_PORT=$(TLS_PORT) WEB_PORT=$(WEB_PORT); do \
	  case $${v#*=} in \
	    '' | *[!0-9]*) echo "make run: $$v: a port number expected"; exit 2 ;; \
	  esac; \
	done
	@$(MAKE) --no-print-directory build
	$(RUN_CMD)

# The quick fuzz run first (one line, its output in a log; fuzz/fuzz.mk),
# then the suite; the fuzz run is added to the suite's last line as one
# check, so that line and the exit status cover both. (The lines that run
# tests/run hold no $(MAKE): make -n test runs nothing.)
test: deps-test
	@$(MAKE) --no-print-directory build unit-bins
	@$(MAKE) --no-print-directory -s fuzz-quick || true
	@fuzz=1; [ "$$(cat $(FUZZ_RESULT) 2>/dev/null)" = ok ] && fuzz=0; \
	{ TPSERVER=./$(BIN) UNIT_DIR=$(BUILD)/tests tests/run; \
	  echo "tests/run exit status $$?"; } | { \
	  held=; rc=1; \
	  while IFS= read -r line; do \
	    case $$line in \
	      "tests/run exit status "*) rc=$${line##* } ;; \
	      [0-9]*" passed, "[0-9]*" failed") \
	        [ -z "$$held" ] || printf '%s\n' "$$held"; held=$$line ;; \
	      *) [ -z "$$held" ] || printf '%s\n' "$$held"; held=; \
	         printf '%s\n' "$$line" ;; \
	    esac; \
	  done; \
	  pass=$${held%% passed*}; fail=$${held#*passed, }; fail=$${fail%% failed}; \
	  case $$pass$$fail in ''|*[!0-9]*) pass=0; fail=1 ;; esac; \
	  if [ $$fuzz = 0 ]; then pass=$$((pass + 1)); else fail=$$((fail + 1)); fi; \
	  echo "$$pass passed, $$fail failed"; \
	  [ "$$rc" = 0 ] && [ $$fuzz = 0 ]; }

check: asan

asan: deps-test
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
	@if [ -e $(ETC)/tpserver.lua ]; then \
	  echo "kept the existing configuration $(ETC)/tpserver.lua"; \
	else \
	  echo "install tpserver.lua $(ETC)/tpserver.lua (data = /var/lib/tpserver)"; \
	  sed 's|^\(    data = \)"var",|\1"/var/lib/tpserver",|' tpserver.lua \
	    > $(ETC)/tpserver.lua && chmod 0644 $(ETC)/tpserver.lua; \
	fi
	install -d $(MAN1) $(UNITS) $(SHARE)/packaging
	install -m 0644 packaging/tpserver.1 $(MAN1)/tpserver.1
	sed 's|@PREFIX@|$(PREFIX)|g' packaging/tpserver.service \
	  > $(UNITS)/tpserver.service
	chmod 0644 $(UNITS)/tpserver.service
	sed 's|@PREFIX@|$(PREFIX)|g' 'packaging/tpserver@.service' \
	  > '$(UNITS)/tpserver@.service'
	chmod 0644 '$(UNITS)/tpserver@.service'
	install -m 0644 packaging/tpserver.logrotate $(SHARE)/packaging/

# Keeps the configuration unless PURGE=1 (and says so); never touches game
# data or logs.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/tpserver
	rm -f $(MAN1)/tpserver.1 $(UNITS)/tpserver.service \
	  '$(UNITS)/tpserver@.service'
	rm -rf $(SHARE)
ifeq ($(PURGE),1)
	rm -f $(ETC)/tpserver.lua
	@rmdir $(ETC) 2>/dev/null || true
else
	@if [ -e $(ETC)/tpserver.lua ]; then \
	  echo "kept the configuration $(ETC)/tpserver.lua"; \
	  echo "  (make uninstall PURGE=1 removes it too)"; \
	fi
endif

clean:
	rm -rf build tpserver
