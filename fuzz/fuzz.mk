# fuzz/fuzz.mk: `make fuzz` and `make fuzz-quick` (included by the Makefile).
#
# Builds build/fuzz/fuzz_frame, a libFuzzer target over the frame reader and
# the layout codec (fuzz/fuzz_frame.c + core/codec.c, core/frame.c,
# core/log.c; clang with -fsanitize=fuzzer,address,undefined), then runs it
# for FUZZ_SECONDS (default 60; fuzz-quick: 10) on a fresh copy of the seed
# corpus fuzz/corpus/ in build/fuzz/corpus/. A crash, leak, sanitizer report
# or broken invariant stops the run with a non-zero status and leaves the
# input in build/fuzz/artifacts/ (see fuzz/README.md to reproduce it).
#
#   FUZZ_SECONDS  run time in seconds (default 60)
#   FUZZ_ARGS     more libFuzzer options, e.g. FUZZ_ARGS=-jobs=2
#   FUZZ_CC       the compiler (default clang)

FUZZ_DIR      = build/fuzz
FUZZ_BIN      = $(FUZZ_DIR)/fuzz_frame
FUZZ_SECONDS ?= 60
FUZZ_ARGS    ?=
FUZZ_CC      ?= clang
FUZZ_SRC      = fuzz/fuzz_frame.c core/codec.c core/frame.c core/log.c
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined \
                $(filter-out -Werror,$(WARN)) \
                $(shell pkg-config --cflags luajit 2>/dev/null) -Icore
FUZZ_LIBS     = $(shell pkg-config --libs luajit 2>/dev/null) -lm

# fuzz_run SECONDS: a fresh corpus copy, then libFuzzer for SECONDS.
define fuzz_run
	@rm -rf $(FUZZ_DIR)/corpus
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	@cp fuzz/corpus/* $(FUZZ_DIR)/corpus/
	@echo "  FUZZ   $(FUZZ_BIN) for $(1)s"
	$(Q)TPSERVER_HOME="$(CURDIR)" \
	 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 $(FUZZ_BIN) -max_len=65536 -max_total_time=$(1) -timeout=20 \
	   -rss_limit_mb=2048 -print_final_stats=1 \
	   -artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_ARGS) \
	   $(FUZZ_DIR)/corpus
endef

.PHONY: fuzz fuzz-quick fuzz-build

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	$(call fuzz_run,$(FUZZ_SECONDS))

fuzz-quick: deps
	@$(MAKE) --no-print-directory fuzz-build
	$(call fuzz_run,10)

fuzz-build: $(FUZZ_BIN)

$(FUZZ_BIN): $(FUZZ_SRC) $(wildcard core/*.h) fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	@echo "  FUZZCC $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRC) $(FUZZ_LIBS)
