# fuzz/fuzz.mk: `make fuzz` and `make fuzz-quick` (included by the Makefile).
#
# Builds build/fuzz/fuzz_frame, a libFuzzer target over the frame reader and
# the layout codec (fuzz/fuzz_frame.c + core/codec.c, core/frame.c,
# core/log.c; clang with -fsanitize=fuzzer,address,undefined), then runs it
# on a fresh copy of the seed corpus fuzz/corpus/ in build/fuzz/corpus/. A
# crash, leak, sanitizer report or broken invariant stops the run with a
# non-zero status and leaves the input in build/fuzz/artifacts/ (see
# fuzz/README.md to reproduce it).
#
#   make fuzz        FUZZ_SECONDS (default 60), libFuzzer's output on the
#                    terminal
#   make fuzz-quick  FUZZ_QUICK_SECONDS (default 10), the run of make test:
#                    libFuzzer's output goes to FUZZ_LOG
#                    (build/fuzz/fuzz-quick.log) and one line is printed,
#                    "ok" with the number of runs, or "FAILED" with the
#                    log's last lines and its name; FUZZ_RESULT
#                    (build/fuzz/fuzz-quick.result) then holds "ok" or
#                    "failed" for make test's count
#   FUZZ_ARGS        more libFuzzer options, e.g. FUZZ_ARGS=-jobs=2
#   FUZZ_CC          the compiler (default clang)
#
# Both install the test packages first (make deps-test): clang,
# libclang-rt-dev and llvm, whose llvm-symbolizer turns the sanitizers'
# stack traces into file:line (without it they print "WARNING: invalid path
# to external symbolizer!" and bare addresses).

FUZZ_DIR      = build/fuzz
FUZZ_BIN      = $(FUZZ_DIR)/fuzz_frame
FUZZ_SECONDS ?= 60
FUZZ_QUICK_SECONDS ?= 10
FUZZ_LOG      = $(FUZZ_DIR)/fuzz-quick.log
FUZZ_RESULT   = $(FUZZ_DIR)/fuzz-quick.result
FUZZ_ARGS    ?=
FUZZ_CC      ?= clang
FUZZ_SRC      = fuzz/fuzz_frame.c core/codec.c core/frame.c core/log.c
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined \
                $(filter-out -Werror,$(WARN)) \
                $(shell pkg-config --cflags luajit 2>/dev/null) -Icore
FUZZ_LIBS     = $(shell pkg-config --libs luajit 2>/dev/null) -lm

# No "Nothing to be done" line from the sub-make (unless V=1).
FUZZ_QUIET = $(if $(filter 1,$(V)),,-s)

# fuzz_corpus: a fresh copy of the seed corpus.
define fuzz_corpus
	@rm -rf $(FUZZ_DIR)/corpus
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	@cp fuzz/corpus/* $(FUZZ_DIR)/corpus/
endef

# fuzz_cmd SECONDS: the libFuzzer command line.
fuzz_cmd = TPSERVER_HOME="$(CURDIR)" \
	 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 $(FUZZ_BIN) -max_len=65536 -max_total_time=$(1) -timeout=20 \
	   -rss_limit_mb=2048 -print_final_stats=1 \
	   -artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_ARGS) \
	   $(FUZZ_DIR)/corpus

.PHONY: fuzz fuzz-quick fuzz-build

fuzz: deps-test
	@$(MAKE) --no-print-directory $(FUZZ_QUIET) fuzz-build
	$(fuzz_corpus)
	@echo "  FUZZ   $(FUZZ_BIN) for $(FUZZ_SECONDS)s"
	$(Q)$(call fuzz_cmd,$(FUZZ_SECONDS))

# One line in the style of tests/run: name, ok/FAILED, the details.
fuzz-quick: deps-test
	@rm -f $(FUZZ_RESULT)
	@$(MAKE) --no-print-directory $(FUZZ_QUIET) fuzz-build
	$(fuzz_corpus)
	@start=$$(date +%s); \
	if $(call fuzz_cmd,$(FUZZ_QUICK_SECONDS)) >$(FUZZ_LOG) 2>&1; then \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_LOG) | \
	          tail -n 1); \
	  printf '%-44s ok (%s runs, %ds; log %s)\n' "fuzz/fuzz_frame" \
	    "$${runs:-?}" $$(($$(date +%s) - start)) "$(FUZZ_LOG)"; \
	  echo ok >$(FUZZ_RESULT); \
	else \
	  rc=$$?; \
	  printf '%-44s FAILED (exit code %d, %ds)\n' "fuzz/fuzz_frame" $$rc \
	    $$(($$(date +%s) - start)); \
	  echo "    --- last lines of $(FUZZ_LOG) ---"; \
	  tail -n 30 $(FUZZ_LOG) | sed 's/^/    | /'; \
	  echo "    the whole output: $(FUZZ_LOG); inputs: $(FUZZ_DIR)/artifacts/"; \
	  echo failed >$(FUZZ_RESULT); \
	  exit 1; \
	fi

fuzz-build: $(FUZZ_BIN)

$(FUZZ_BIN): $(FUZZ_SRC) $(wildcard core/*.h) fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	@echo "  FUZZCC $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRC) $(FUZZ_LIBS)
