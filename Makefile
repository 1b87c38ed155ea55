# SPDX-License-Identifier: BSD-3-Clause
# The two commands: `make demo` and `make test`. Each installs what is missing, builds, runs.
BUILD ?= build
SAN_BUILD ?= build-san
MESON_OPTS ?=

.PHONY: all deps build build-san demo test bench fuzz clean format

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	@meson setup $(BUILD) $(MESON_OPTS) >/dev/null

$(SAN_BUILD)/build.ninja:
	@meson setup $(SAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null || ninja -C $(BUILD)

build-san: deps $(SAN_BUILD)/build.ninja
	@ninja -C $(SAN_BUILD) >/dev/null || ninja -C $(SAN_BUILD)

demo: build
	@scripts/demo.sh $(BUILD)

# Everything but the tests that face hostile peers (suite security) under the release
# build, then the unit suite and the security suite under ASan+UBSan (the security tests
# ran in both before; once, under the sanitizers, is the stricter run and keeps make test
# under 15 minutes); the last line is meson's summaries added up. pmu_crash kills its writer
# at 1,000 random points in the release run and at 300 under the sanitizers (the same code
# paths, ~4x slower there: 52 s of the sanitizer run's ~80).
test: build build-san
	@rc=0; \
	meson test -C $(BUILD) --no-suite security --print-errorlogs --num-processes 2 || rc=1; \
	HF_CRASH_KILLS=300 \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(SAN_BUILD) --suite unit --suite security --print-errorlogs \
		--num-processes 2 || rc=1; \
	scripts/test-summary.sh $(BUILD)/meson-logs/testlog.json $(SAN_BUILD)/meson-logs/testlog.json || rc=1; \
	exit $$rc

bench: build
	@scripts/bench.sh $(BUILD)

# Every libFuzzer target for SECONDS each (make test runs them for 10 s): seeds from
# test/fuzz/corpus, what they find kept in $(BUILD)/fuzz.
SECONDS ?= 600
fuzz: build
	@BUILD=$(abspath $(BUILD)) SRC=$(CURDIR) FUZZ_SECONDS=$(SECONDS) test/integration/fuzz.sh

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
