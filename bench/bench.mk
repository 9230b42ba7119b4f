# bench/bench.mk: `make bench`, the load benchmarks (included by the Makefile).
#
# Builds the server, the load generator (bench/loadgen.c), the web side's
# load generator (bench/httpload.c) and the frame-echo server (bench/echo.c)
# under $(BUILD)/bench/, then runs bench/run, which puts tpserver and tpecho
# under the same loads and prints them side by side.
# BENCH_SECONDS (default 5) sets the measured time of each run; see
# bench/README.md for the other knobs.

BENCH_DIR  = $(BUILD)/bench
BENCH_LIBS = $(shell pkg-config --libs libuv openssl) -lm

bench: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory $(BENCH_DIR)/tploadgen \
	 $(BENCH_DIR)/tphttpload $(BENCH_DIR)/tpecho
	@TPSERVER=./$(BIN) TPLOADGEN=$(BENCH_DIR)/tploadgen \
	 TPHTTPLOAD=$(BENCH_DIR)/tphttpload TPECHO=$(BENCH_DIR)/tpecho \
	 BENCH_LOGDIR=$(BENCH_DIR) bench/run

$(BENCH_DIR)/tploadgen: $(BENCH_DIR)/loadgen.o
	@echo "  LINK   $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(BENCH_LIBS)

$(BENCH_DIR)/tphttpload: $(BENCH_DIR)/httpload.o
	@echo "  LINK   $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(BENCH_LIBS)

$(BENCH_DIR)/tpecho: $(BENCH_DIR)/echo.o
	@echo "  LINK   $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(BENCH_LIBS)

$(BENCH_DIR)/%.o: bench/%.c
	@mkdir -p $(dir $@)
	@echo "  CC     $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

-include $(BENCH_DIR)/loadgen.d $(BENCH_DIR)/httpload.d $(BENCH_DIR)/echo.d
