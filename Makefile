# tollgate build.
#
#   make            release build: build/tollgate, build/unit_tests
#   make asan       ASan + UBSan build: build-asan/tollgate, build-asan/unit_tests
#   make tsan       ThreadSanitizer build: build-tsan/tollgate, build-tsan/unit_tests
#   make check      unit tests and end-to-end tests, release and sanitizer builds
#   make run        build and start the gateway on its embedded defaults
#
# Every src/**/*.c except src/main.c goes into the gateway library; every
# tests/unit/*.c goes into the unit test binary.

CC      ?= cc
PKGS    := libevent libevent_pthreads libevent_openssl libcurl jansson yaml-0.1 openssl sqlite3 hiredis libpq liblz4
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
# liblz4: stored bodies (src/store/body.c).
# http-parser (libhttp-parser-dev) ships no pkg-config file.
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lhttp_parser -lpthread -lm
# The release gateway allocates with jemalloc: glibc's malloc spent ~13% of
# a loaded worker's time in its locks and free-list consolidation (perf), and
# jemalloc took proxied throughput up ~20% (bench/proxy.sh, same run). The
# sanitizer build keeps the allocator ASan intercepts.
MALLOC_LIBS := $(shell pkg-config --libs jemalloc)

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla -Wcast-qual
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -Isrc $(PKG_CFLAGS) -MMD -MP
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
BASE_CFLAGS += -DTG_VERSION='"$(VERSION)"'

SRCS      := $(shell find src -name '*.c' ! -name main.c | sort)
UNIT_SRCS := $(shell find tests/unit -name '*.c' | sort)

# Release build
OUT      := build
CFLAGS_R := $(BASE_CFLAGS) -O2 -g
# Sanitizer build
OUT_A    := build-asan
CFLAGS_A := $(BASE_CFLAGS) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_A := -fsanitize=address,undefined
# ThreadSanitizer build: the writer, checkpointer and worker threads share
# the record queue, the spool and the journals; TSan checks their hand-offs.
OUT_T    := build-tsan
CFLAGS_T := $(BASE_CFLAGS) -O1 -g -fno-omit-frame-pointer -fsanitize=thread
LDFLAGS_T := -fsanitize=thread

# The dashboard's page (src/dashboard/www), built into the binary as a C
# table by scripts/embed-assets.sh; one generated source for every build.
WWW      := $(shell find src/dashboard/www -type f | sort)
GEN_C    := build/gen/dashboard_assets.c
$(GEN_C): $(WWW) scripts/embed-assets.sh
	@mkdir -p $(dir $@)
	./scripts/embed-assets.sh $@ src/dashboard/www $(WWW)

OBJS_R   := $(SRCS:%.c=$(OUT)/%.o) $(OUT)/gen/dashboard_assets.o
UOBJS_R  := $(UNIT_SRCS:%.c=$(OUT)/%.o)
OBJS_A   := $(SRCS:%.c=$(OUT_A)/%.o) $(OUT_A)/gen/dashboard_assets.o
UOBJS_A  := $(UNIT_SRCS:%.c=$(OUT_A)/%.o)
OBJS_T   := $(SRCS:%.c=$(OUT_T)/%.o) $(OUT_T)/gen/dashboard_assets.o
UOBJS_T  := $(UNIT_SRCS:%.c=$(OUT_T)/%.o)

.PHONY: all asan tsan check test unit e2e run clean format bench
all: $(OUT)/tollgate $(OUT)/unit_tests
asan: $(OUT_A)/tollgate $(OUT_A)/unit_tests
tsan: $(OUT_T)/tollgate $(OUT_T)/unit_tests

$(OUT)/gen/dashboard_assets.o: $(GEN_C)
	$(CC) $(CFLAGS_R) -c $< -o $@
$(OUT_A)/gen/dashboard_assets.o: $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_A) -c $< -o $@
$(OUT_T)/gen/dashboard_assets.o: $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_T) -c $< -o $@
$(OUT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_R) -c $< -o $@
$(OUT_A)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_A) -c $< -o $@
$(OUT_T)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_T) -c $< -o $@

$(OUT)/libtollgate.a: $(OBJS_R)
	ar rcs $@ $^
$(OUT_A)/libtollgate.a: $(OBJS_A)
	ar rcs $@ $^
$(OUT_T)/libtollgate.a: $(OBJS_T)
	ar rcs $@ $^

$(OUT)/tollgate: $(OUT)/src/main.o $(OUT)/libtollgate.a
	$(CC) -o $@ $^ $(PKG_LIBS) $(MALLOC_LIBS)
$(OUT)/unit_tests: $(UOBJS_R) $(OUT)/libtollgate.a
	$(CC) -o $@ $^ $(PKG_LIBS)
$(OUT_A)/tollgate: $(OUT_A)/src/main.o $(OUT_A)/libtollgate.a
	$(CC) $(LDFLAGS_A) -o $@ $^ $(PKG_LIBS)
$(OUT_A)/unit_tests: $(UOBJS_A) $(OUT_A)/libtollgate.a
	$(CC) $(LDFLAGS_A) -o $@ $^ $(PKG_LIBS)
$(OUT_T)/tollgate: $(OUT_T)/src/main.o $(OUT_T)/libtollgate.a
	$(CC) $(LDFLAGS_T) -o $@ $^ $(PKG_LIBS)
$(OUT_T)/unit_tests: $(UOBJS_T) $(OUT_T)/libtollgate.a
	$(CC) $(LDFLAGS_T) -o $@ $^ $(PKG_LIBS)

# The whole suite: unit and end-to-end, on the release and the sanitizer
# builds. Prints "N passed, N failed" last. Installs nothing: that is
# scripts/install-deps.sh (which scripts/test.sh runs unless told not to).
check: all asan tsan
	TOLLGATE_SKIP_DEPS=1 ./scripts/test.sh
test: check

unit: all
	./$(OUT)/unit_tests

run: all
	./$(OUT)/tollgate

bench: all
	./bench/proxy.sh

format:
	clang-format -i $$(find src tests/unit tests/fuzz -name '*.[ch]')

clean:
	rm -rf $(OUT) $(OUT_A) $(OUT_T)

-include $(OBJS_R:.o=.d) $(UOBJS_R:.o=.d) $(OBJS_A:.o=.d) $(UOBJS_A:.o=.d) $(OBJS_T:.o=.d) $(UOBJS_T:.o=.d) $(OUT)/src/main.d $(OUT_A)/src/main.d $(OUT_T)/src/main.d
