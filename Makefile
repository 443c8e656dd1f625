# Vigil - one non-recursive GNU Makefile.  Everything builds into build/.
#
#   make deps    install the Debian packages the project needs
#   make         build vigild, the BPF objects, tests and tools
#   make run     deps + build, then profile this host in the foreground
#   make check   deps + build, then every test (tests/run.sh); last line
#                "N passed, N failed, N skipped"
#   make deb     the Debian packages, in build/deb/ (packaging/deb.mk)
#   make bench   compare vigild with bpftrace and perf (at 999 Hz, and at
#                19 Hz in the steady state: tests/bench/bench_idle.sh),
#                measure the overhead budgets, what Pyroscope export and
#                unwinding cost, and how the collector grows with the host's
#                processes, stacks and new processes (tests/bench/
#                bench_scale.sh; docs/benchmarks.md)
#   make bench-cp  vigil-cp under 1k and 10k simulated OpAMP agents, a staged
#                rollout to 10k of them (tests/bench/bench_rollout.sh), and
#                the audit log at 1M records (tests/bench/bench_audit.sh)
#
# Quiet unless V=1.

.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules

B       := build
# gcc unless CC is given (tests/integration/deb.sh gives "ccache gcc")
ifeq ($(origin CC),default)
CC      := gcc
endif
CLANG   ?= clang
BPFTOOL ?= bpftool
PROTOC_C ?= protoc-c

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' '$(1)' '$(2)'
endif

# Debian bookworm packages the build, the tests and the benchmark need.
DEB_PACKAGES := build-essential ccache clang llvm libbpf-dev bpftool libelf-dev \
	zlib1g-dev protobuf-c-compiler libprotobuf-c-dev libcmocka-dev \
	pkg-config golang-go bpftrace linux-perf libssl-dev openssl libyaml-dev \
	libseccomp-dev libcap-dev libclang-rt-14-dev libevent-dev libjansson-dev \
	libsqlite3-dev sqlite3 libcurl4-openssl-dev jq libpq-dev postgresql-15 \
	libsystemd-dev prometheus python3 libc6-dbg liblzma-dev xz-utils libunwind-dev libiberty-dev \
	strace debhelper lintian fakeroot groff man-db selinux-policy-dev selinux-policy-default \
	setools semodule-utils checkpolicy policycoreutils m4 bzip2 \
	libengine-pkcs11-openssl softhsm2 p11-kit

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla \
	-Wmissing-prototypes -Wstrict-prototypes -Wpointer-arith \
	-Wcast-qual -Wundef -Wno-unused-parameter
HARDEN   := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
CFLAGS   := -std=c17 -D_GNU_SOURCE -O2 -g $(WARNINGS) $(HARDEN)
VERSION  := 0.1.0
# tree (this build tree), development or release (make deb: packaging/deb.mk)
BUILD_KIND ?= tree
CPPFLAGS := -Ibpf -Idaemon -Isigning -Ipolicy -Icontrol-plane -I/usr/include/postgresql -I$(B)/gen \
	-DVIGIL_VERSION=\"$(VERSION)\" -DVIGIL_BUILD_KIND=\"$(BUILD_KIND)\"
LDFLAGS  := -pie -Wl,-z,relro,-z,now -Wl,--as-needed
# One library list for every program: --as-needed keeps each binary's
# dependencies to what it calls (vigild does not link libevent or SQLite).
LDLIBS   := -lbpf -lelf -lz -lprotobuf-c -lssl -lcrypto -lyaml -lseccomp -lcap -lm \
	-levent_openssl -levent -ljansson -lsqlite3 -lpq -lcurl -lsystemd -liberty -llzma -lunwind-x86_64

SAN_CFLAGS := -std=c17 -D_GNU_SOURCE -O1 -g $(WARNINGS) -fPIE \
	-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_LDFLAGS := -pie -fsanitize=address,undefined -Wl,--as-needed

# ---------------------------------------------------------------------------
# Generated code: vmlinux.h (CO-RE, never committed) and pprof's protobuf.

$(B)/gen/vmlinux.h:
	$(call msg,BTF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)test -r /sys/kernel/btf/vmlinux || { echo "error: /sys/kernel/btf/vmlinux missing: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF=y is required)" >&2; exit 1; }
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(B)/gen/profile.pb-c.c $(B)/gen/profile.pb-c.h &: proto/profile.proto
	$(call msg,PROTOC,$<)
	$(Q)mkdir -p $(B)/gen
	$(Q)$(PROTOC_C) --proto_path=proto --c_out=$(B)/gen $<

# OpAMP's messages (proto/opamp.proto, from the OpAMP specification).
$(B)/gen/opamp.pb-c.c $(B)/gen/opamp.pb-c.h &: proto/opamp.proto
	$(call msg,PROTOC,$<)
	$(Q)mkdir -p $(B)/gen
	$(Q)$(PROTOC_C) --proto_path=proto --c_out=$(B)/gen $<

# Grafana Pyroscope's push API (proto/push.proto, from pyroscope's schema).
$(B)/gen/push.pb-c.c $(B)/gen/push.pb-c.h &: proto/push.proto
	$(call msg,PROTOC,$<)
	$(Q)mkdir -p $(B)/gen
	$(Q)$(PROTOC_C) --proto_path=proto --c_out=$(B)/gen $<

GEN_HDRS := $(B)/gen/profile.pb-c.h $(B)/gen/opamp.pb-c.h $(B)/gen/push.pb-c.h

# ---------------------------------------------------------------------------
# BPF objects.

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(BPF_SRCS:bpf/%.bpf.c=$(B)/bpf/%.bpf.o)

$(B)/bpf/%.bpf.o: bpf/%.bpf.c bpf/vigil_abi.h $(B)/gen/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -D__VIGIL_BPF__ \
		-Wall -Werror -I$(B)/gen -Ibpf -c $< -o $@
	$(Q)llvm-strip -g $@  # keep .BTF, drop DWARF

# ---------------------------------------------------------------------------
# The daemon and the control plane: every .c but the entry points goes into
# libvigil.a so that unit tests link exactly the code that ships.

MAIN_SRCS := daemon/vigild.c daemon/vigild-collector.c daemon/vigild-uplink.c \
	daemon/vigild-uplink-local.c signing/vigil-sign.c \
	control-plane/vigil-cp.c control-plane/vigilctl.c
LIB_SRCS  := $(filter-out $(MAIN_SRCS),$(wildcard daemon/*.c signing/*.c policy/*.c control-plane/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(B)/obj/%.o) $(B)/obj/gen/profile.pb-c.o $(B)/obj/gen/opamp.pb-c.o \
	$(B)/obj/gen/push.pb-c.o
SAN_OBJS  := $(LIB_SRCS:%.c=$(B)/san/%.o) $(B)/san/gen/profile.pb-c.o $(B)/san/gen/opamp.pb-c.o \
	$(B)/san/gen/push.pb-c.o

$(B)/obj/%.o: %.c $(GEN_HDRS)
	$(call msg,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/san/%.o: %.c $(GEN_HDRS)
	$(call msg,CC-SAN,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(SAN_CFLAGS) -MMD -MP -c $< -o $@

# protobuf-c's generated code is not ours to warn about.
$(B)/obj/gen/%.o: $(B)/gen/%.c $(GEN_HDRS)
	$(call msg,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) -std=c17 -O2 -g $(HARDEN) -w -c $< -o $@

$(B)/san/gen/%.o: $(B)/gen/%.c $(GEN_HDRS)
	$(call msg,CC-SAN,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) -std=c17 -O1 -g -fPIE -fsanitize=address,undefined -w -c $< -o $@

$(B)/libvigil.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/libvigil-san.a: $(SAN_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# The monitor and its two workers are three programs (daemon/workerexe.h):
# with --as-needed each maps only the libraries its own code calls, so
# that libcurl and what it pulls in are the uplink's alone.
# vigild-uplink-local is the uplink without a control plane or export:
# metrics only, and no libcurl (daemon/uplinklocal.c).
# vigild-collector-local is the collector's object linked without the
# control plane's and the export's sides, which collector.c refers to
# weakly, and so without libcrypto (daemon/collector.c says why).
VIGILD_PROGS := $(B)/vigild $(B)/vigild-collector $(B)/vigild-uplink $(B)/vigild-uplink-local \
	$(B)/vigild-collector-local
COLLECTOR_SIDES := -Wl,--undefined=cpside_init -Wl,--undefined=exportside_init
$(B)/vigild-collector $(B)/tests/vigild-testhooks-collector: LDFLAGS += $(COLLECTOR_SIDES)

# Whatever the umask: the monitor refuses worker programs others may write,
# and the workers, unprivileged, execute them.
$(filter-out $(B)/vigild-collector-local,$(VIGILD_PROGS)): $(B)/%: $(B)/obj/daemon/%.o $(B)/libvigil.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	$(Q)chmod 0755 $@

$(B)/vigild-collector-local: $(B)/obj/daemon/vigild-collector.o $(B)/libvigil.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	$(Q)chmod 0755 $@

# The control plane (docs/control-plane.md) and its admin client.
$(B)/vigil-cp: $(B)/obj/control-plane/vigil-cp.o $(B)/libvigil.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/vigilctl: $(B)/obj/control-plane/vigilctl.o $(B)/libvigil.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# vigil-sign links the same signing and bpfobj code vigild runs.
$(B)/vigil-sign: $(B)/obj/signing/vigil-sign.o $(B)/libvigil.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lelf -lcrypto

# ---------------------------------------------------------------------------
# Signed BPF objects: a development CA made once under build/ (never
# committed; `make clean` forgets it), and NAME.bpf.o.sig beside each object.
# Packaging signs with a real key instead (docs/vigil-sign.1).

DEV_CA   := $(B)/dev-ca
BPF_SIGS := $(BPF_OBJS:%=%.sig)

$(DEV_CA)/ca.pem $(DEV_CA)/signer.pem $(DEV_CA)/signer.key &: | $(B)/vigil-sign
	$(call msg,DEV-CA,$(DEV_CA))
	$(Q)$(B)/vigil-sign dev-ca --out $(DEV_CA) --force

$(B)/bpf/%.bpf.o.sig: $(B)/bpf/%.bpf.o $(DEV_CA)/signer.pem $(DEV_CA)/signer.key | $(B)/vigil-sign
	$(call msg,SIGN,$<)
	$(Q)$(B)/vigil-sign sign --cert $(DEV_CA)/signer.pem --key $(DEV_CA)/signer.key $<

# A TEST-ONLY vigild whose workers can be told (VIGIL_TEST_ATTEMPT) to try
# what their sandbox forbids (daemon/testhooks.h).  Never installed: only
# the worker entry points differ from build/vigild.
# Its workers are beside it, named as vigild's are beside vigild.

$(B)/hooks/%.o: %.c $(GEN_HDRS)
	$(call msg,CC-HOOK,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) -DVIGIL_TEST_HOOKS $(CFLAGS) -MMD -MP -c $< -o $@

HOOK_PROGS := $(B)/tests/vigild-testhooks $(B)/tests/vigild-testhooks-collector \
	$(B)/tests/vigild-testhooks-uplink $(B)/tests/vigild-testhooks-uplink-local \
	$(B)/tests/vigild-testhooks-collector-local

$(B)/tests/vigild-testhooks: $(B)/hooks/daemon/monitor.o $(B)/obj/daemon/vigild.o $(B)/libvigil.a
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	$(Q)chmod 0755 $@

$(B)/tests/vigild-testhooks-collector-local: $(B)/hooks/daemon/collector.o \
		$(B)/obj/daemon/vigild-collector.o $(B)/libvigil.a
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	$(Q)chmod 0755 $@

$(B)/tests/vigild-testhooks-uplink-local: $(B)/hooks/daemon/uplinklocal.o \
		$(B)/obj/daemon/vigild-uplink-local.o $(B)/libvigil.a
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	$(Q)chmod 0755 $@

$(B)/tests/vigild-testhooks-%: $(B)/hooks/daemon/%.o $(B)/obj/daemon/vigild-%.o $(B)/libvigil.a
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	$(Q)chmod 0755 $@

# ---------------------------------------------------------------------------
# Tests.  Unit tests (one cmocka binary per module) run under ASan/UBSan.

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/unit/%)

$(B)/tests/unit/%: tests/unit/%.c $(B)/libvigil-san.a
	$(call msg,TEST,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) -Itests/unit $(SAN_CFLAGS) $(SAN_LDFLAGS) -MMD -MP -MF $@.d -o $@ $< \
		$(B)/libvigil-san.a -lcmocka $(LDLIBS)

# Fixtures of the symbolization tests: ELF files with known symbols, and
# what nm and readelf say about them, for the tests to compare against.
FIXTURE_DIR := $(B)/tests/fixtures
FIXTURE_CFLAGS := -std=c17 -D_GNU_SOURCE -O1 -g -fno-inline -fno-toplevel-reorder -Wall -Wextra -Werror
FIXTURES := $(addprefix $(FIXTURE_DIR)/,libvsym.so libvsym-nobid.so libvsym-stripped.so vsym_prog \
	libvsym.so.nm vsym_prog.nm libvsym.so.buildid vsym_prog.buildid)

$(FIXTURE_DIR)/libvsym.so: tests/unit/fixtures/libvsym.c
	$(call msg,FIXTURE,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(FIXTURE_CFLAGS) -fPIC -shared -Wl,--build-id=sha1 -Wl,-Ttext-segment=0x100000 -o $@ $<
$(FIXTURE_DIR)/libvsym-nobid.so: tests/unit/fixtures/libvsym.c
	$(call msg,FIXTURE,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(FIXTURE_CFLAGS) -fPIC -shared -Wl,--build-id=none -o $@ $<
$(FIXTURE_DIR)/libvsym-stripped.so: $(FIXTURE_DIR)/libvsym.so
	$(call msg,FIXTURE,$@)
	$(Q)strip --strip-all -o $@ $<
$(FIXTURE_DIR)/vsym_prog: tests/unit/fixtures/vsym_prog.c
	$(call msg,FIXTURE,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(FIXTURE_CFLAGS) -fPIE -pie -Wl,--build-id=sha1 -o $@ $<
$(FIXTURE_DIR)/%.nm: $(FIXTURE_DIR)/%
	$(Q)nm -S --defined-only $< > $@
$(FIXTURE_DIR)/%.buildid: $(FIXTURE_DIR)/%
	$(Q)readelf -n $< | sed -n 's/^ *Build ID: *//p' > $@ && test -s $@

$(B)/tests/unit/test_elfsym $(B)/tests/unit/test_symbolizer: | $(FIXTURES)
# test_bpfobj signs copies of the real sampler object.
$(B)/tests/unit/test_bpfobj: | $(BPF_OBJS)

# Fuzz corpora, replayed by make check: every tests/fuzz/fuzz_<name>.c is
# linked a second time with our replay driver as its main (gcc, ASan/UBSan,
# the shipping library) into build/tests/fuzz/fuzz_<name>, which tests/run.sh
# runs over tests/fuzz/corpus/<name>/.  A new target is picked up by name.
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(B)/tests/fuzz/%)

$(B)/tests/fuzz/replay.o: tests/fuzz/replay.c
	$(call msg,CC-SAN,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(SAN_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/tests/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(B)/tests/fuzz/replay.o $(B)/libvigil-san.a
	$(call msg,REPLAY,$@)
	$(Q)$(CC) $(CPPFLAGS) -Itests/unit $(SAN_CFLAGS) $(SAN_LDFLAGS) -MMD -MP -o $@ $< $(B)/tests/fuzz/replay.o \
		$(B)/libvigil-san.a $(LDLIBS)

# The test runner's own test (tests/harness/run_sh.sh): a cmocka binary and a
# fuzz target that fail on purpose.  Never run by themselves.
$(B)/tests/harness/cm_counts: tests/harness/cm_counts.c
	$(call msg,TEST,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -Itests/unit $(CFLAGS) $(LDFLAGS) -o $@ $< -lcmocka

$(B)/tests/harness/fuzz_crash: tests/harness/fuzz_crash.c $(B)/tests/fuzz/replay.o
	$(call msg,TEST,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(SAN_CFLAGS) $(SAN_LDFLAGS) -o $@ $^

HARNESS_BINS := $(B)/tests/harness/cm_counts $(B)/tests/harness/fuzz_crash

# Test tools (profile readers and the like) link the shipping library.
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(B)/tests/tools/%)

$(B)/tests/tools/%: tests/tools/%.c $(B)/libvigil.a
	$(call msg,TOOL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libvigil.a $(LDLIBS)

# The control plane's load generator (make bench-cp, tests/bench/bench_cp.sh).
BENCH_BINS := $(B)/tests/bench/cp_load $(B)/tests/bench/audit_bench

$(B)/tests/bench/%: tests/bench/%.c $(B)/libvigil.a
	$(call msg,BENCH,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libvigil.a $(LDLIBS)

# Workloads with a known profile: frame pointers on, no inlining, so that
# the functions the test expects are the functions the stack shows.
WL_CFLAGS := -std=c17 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer \
	-fno-inline -fno-optimize-sibling-calls -fno-pie -Wall -Wextra -Werror
WL_LIB_SRCS := $(wildcard tests/workloads/lib*.c)
WL_LIBS     := $(WL_LIB_SRCS:tests/workloads/%.c=$(B)/tests/workloads/%.so)
WL_SRCS     := $(filter-out $(WL_LIB_SRCS),$(wildcard tests/workloads/*.c))
WL_BINS     := $(WL_SRCS:tests/workloads/%.c=$(B)/tests/workloads/%)
# C++ workloads are built as Debian builds its packages: -O2, no frame
# pointers, exceptions (issue 12).
WL_CXX_SRCS := $(wildcard tests/workloads/*.cc)
WL_CXX_BINS := $(WL_CXX_SRCS:tests/workloads/%.cc=$(B)/tests/workloads/%)

$(B)/tests/workloads/lib%.so: tests/workloads/lib%.c
	$(call msg,WL-SO,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -fno-pie,$(WL_CFLAGS)) -fPIC -shared -Wl,--build-id -o $@ $<

# Workloads are PIE (the common case on Debian) and may link the workload
# libraries next to them.
$(B)/tests/workloads/%: tests/workloads/%.c $(WL_LIBS)
	$(call msg,WL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -fno-pie,$(WL_CFLAGS)) -fPIE -pie -Wl,--build-id -o $@ $< \
		-L$(B)/tests/workloads -Wl,-rpath,'$$ORIGIN' $(patsubst $(B)/tests/workloads/lib%.so,-l%,$(WL_LIBS)) -lpthread

$(B)/tests/workloads/%: tests/workloads/%.cc
	$(call msg,WL-CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) -std=c++17 -O2 -g -fomit-frame-pointer -fexceptions -fPIE -pie -Wall -Wextra -Werror \
		-pthread -Wl,--build-id -o $@ $<

# A stripped workload and its separate debug file, as a -dbgsym package
# ships them (issue 12): cpusplit under a build-id of its own, so that the
# test that installs the debug file under /usr/lib/debug/.build-id names
# nothing else.  Its .gnu_debuglink names the debug file too, for the
# tests that put it beside a copy of the binary instead.
DBGSPLIT_BID := 0x7669676c2d6462677370-6c69742d746573742d31
$(B)/tests/workloads/dbgsplit $(B)/tests/workloads/dbgsplit.debug &: tests/workloads/cpusplit.c $(WL_LIBS)
	$(call msg,WL-DBG,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -fno-pie,$(WL_CFLAGS)) -fPIE -pie -Wl,--build-id=$(subst -,,$(DBGSPLIT_BID)) \
		-o $(B)/tests/workloads/dbgsplit.full $< -L$(B)/tests/workloads -Wl,-rpath,'$$ORIGIN' \
		$(patsubst $(B)/tests/workloads/lib%.so,-l%,$(WL_LIBS)) -lpthread
	$(Q)objcopy --only-keep-debug $(B)/tests/workloads/dbgsplit.full $(B)/tests/workloads/dbgsplit.debug
	$(Q)objcopy --strip-all --add-gnu-debuglink=$(B)/tests/workloads/dbgsplit.debug \
		$(B)/tests/workloads/dbgsplit.full $(B)/tests/workloads/dbgsplit
	$(Q)rm -f $(B)/tests/workloads/dbgsplit.full

# cpusplit stripped, with its symbols in .gnu_debugdata (MiniDebugInfo: the
# .symtab of its debug file, without DWARF, xz'ed), under a build-id of
# its own.
MINISPLIT_BID := 0x7669676c2d6d696e6973706c69742d746573742d31
$(B)/tests/workloads/minisplit: tests/workloads/cpusplit.c $(WL_LIBS)
	$(call msg,WL-MINI,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -fno-pie,$(WL_CFLAGS)) -fPIE -pie -Wl,--build-id=$(MINISPLIT_BID) \
		-o $@.full $< -L$(B)/tests/workloads -Wl,-rpath,'$$ORIGIN' \
		$(patsubst $(B)/tests/workloads/lib%.so,-l%,$(WL_LIBS)) -lpthread
	$(Q)objcopy --only-keep-debug $@.full $@.dbg
	$(Q)objcopy --strip-debug $@.dbg $@.sym
	$(Q)xz -c $@.sym > $@.xz
	$(Q)objcopy --strip-all $@.full $@.stripped
	$(Q)objcopy --add-section .gnu_debugdata=$@.xz $@.stripped $@
	$(Q)rm -f $@.full $@.dbg $@.sym $@.xz $@.stripped

# ---------------------------------------------------------------------------
# Top-level targets.

PROGRAMS := $(VIGILD_PROGS) $(B)/vigil-sign $(if $(wildcard control-plane/vigil-cp.c),$(B)/vigil-cp) \
	$(if $(wildcard control-plane/vigilctl.c),$(B)/vigilctl)
TESTS    := $(HOOK_PROGS) $(UNIT_BINS) $(REPLAY_BINS) $(HARNESS_BINS) $(FIXTURES) \
	$(TOOL_BINS) $(BENCH_BINS) $(WL_LIBS) $(WL_BINS) $(WL_CXX_BINS) \
	$(B)/tests/workloads/dbgsplit $(B)/tests/workloads/minisplit

all: $(PROGRAMS) $(BPF_OBJS) $(BPF_SIGS) $(TESTS)

# One dpkg-query for every package; apt-get (and the network) only for what
# is missing, so that make check costs nothing here once deps are in.
# The build behind run, check and bench: one job per CPU, unless make was
# given -j (its jobserver) already.
BUILD_ALL = $(MAKE) --no-print-directory $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(shell nproc)) all

deps:
	$(Q)missing=$$(dpkg-query -W -f='$${Package} $${db:Status-Abbrev}\n' $(DEB_PACKAGES) 2>/dev/null | \
		awk -v want='$(DEB_PACKAGES)' 'BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) need[w[i]] = 1 } \
			$$2 == "ii" { delete need[$$1] } END { for (p in need) printf " %s", p }'); \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

run: deps
	$(Q)$(BUILD_ALL)
	./$(B)/vigild --hz 19 --interval 10 --duration 0 --output var/profiles \
		--bpf-dir $(B)/bpf --trust $(B)/dev-ca/ca.pem

check: deps
	$(Q)$(BUILD_ALL)
	$(Q)tests/run.sh

bench: deps
	$(Q)$(BUILD_ALL)
	$(Q)tests/bench/bench.sh
	$(Q)tests/bench/budgets.sh
	$(Q)tests/bench/bench_export.sh
	$(Q)tests/bench/bench_unwind.sh
	$(Q)tests/bench/bench_idle.sh
	$(Q)tests/bench/bench_scale.sh

# vigil-cp under 1k and 10k simulated agents (tests/bench/bench_cp.sh,
# docs/benchmarks.md "Control plane").
bench-cp: deps
	$(Q)$(BUILD_ALL)
	$(Q)tests/bench/bench_cp.sh
	$(Q)tests/bench/bench_rollout.sh
	$(Q)tests/bench/bench_audit.sh

# Fuzz targets (libFuzzer, clang): make fuzz builds build/fuzz/fuzz_<name>
# from tests/fuzz/fuzz_<name>.c and the library sources it exercises,
# compiled here with coverage instrumentation.  make fuzz-run runs each for
# FUZZ_SECONDS from its seed corpus tests/fuzz/corpus/<name>/, keeping what
# it finds in build/fuzz/corpus/<name>/.
FUZZ_BINS     := $(FUZZ_SRCS:tests/fuzz/%.c=$(B)/fuzz/%)
FUZZ_LIB_SRCS := $(wildcard policy/*.c) daemon/exporturl.c daemon/decimal.c
FUZZ_CFLAGS   := -std=c17 -D_GNU_SOURCE -O1 -g $(WARNINGS) -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SECONDS  ?= 120

# The monitor's request handler, with the modules it calls.
FUZZ_BROKER_SRCS := daemon/broker.c daemon/privsep.c daemon/procmaps.c daemon/procstat.c daemon/mapfile.c \
	daemon/sampler.c daemon/sampler_hz.c daemon/cgnest.c daemon/fds.c daemon/hexdigit.c daemon/beats.c

# The collector's parsers of what profiled processes and the kernel hand it.
FUZZ_ELFSYM_SRCS   := daemon/elfsym.c daemon/symname.c
FUZZ_PROCMAPS_SRCS := daemon/procmaps.c daemon/hexdigit.c
FUZZ_KALLSYMS_SRCS := daemon/kallsyms.c daemon/hexdigit.c daemon/symname.c daemon/toknames.c \
	daemon/growarr.c

$(B)/fuzz/fuzz_elfsym: tests/fuzz/fuzz_elfsym.c tests/fuzz/guardbuf.h $(FUZZ_ELFSYM_SRCS) $(wildcard daemon/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_ELFSYM_SRCS)

$(B)/fuzz/fuzz_procmaps: tests/fuzz/fuzz_procmaps.c tests/fuzz/guardbuf.h $(FUZZ_PROCMAPS_SRCS) $(wildcard daemon/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_PROCMAPS_SRCS)

$(B)/fuzz/fuzz_kallsyms: tests/fuzz/fuzz_kallsyms.c $(FUZZ_KALLSYMS_SRCS) $(wildcard daemon/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_KALLSYMS_SRCS)

# vigild's metrics endpoint: the request line parser (what anyone reaching the port sends).
FUZZ_METRICSRV_SRCS := daemon/metricsrv.c daemon/promtext.c

$(B)/fuzz/fuzz_metricsrv: tests/fuzz/fuzz_metricsrv.c tests/fuzz/guardbuf.h $(FUZZ_METRICSRV_SRCS) $(wildcard daemon/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_METRICSRV_SRCS)

$(B)/fuzz/fuzz_broker: tests/fuzz/fuzz_broker.c tests/unit/fdcount.h $(FUZZ_BROKER_SRCS) $(wildcard daemon/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) -Itests/unit $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_BROKER_SRCS) -lbpf -lelf -lz

# vigil-cp's OpAMP message handler, with the store (SQLite, a temporary
# file) and the modules it calls; protobuf-c's generated code is built
# apart, instrumented but not held to our warnings.
FUZZ_OPAMPSRV_SRCS := control-plane/opampsrv.c control-plane/store.c control-plane/store_sqlite.c control-plane/store_pg.c \
	control-plane/selector.c control-plane/assignset.c control-plane/configmap.c control-plane/csrsign.c \
	control-plane/pemfile.c \
	signing/signing.c signing/p11key.c signing/sslutil.c daemon/hexdigit.c

$(B)/fuzz/opamp.pb-c.o: $(B)/gen/opamp.pb-c.c $(GEN_HDRS)
	$(call msg,FUZZ-CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) -std=c17 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -w -c $< -o $@

$(B)/fuzz/fuzz_opampsrv: tests/fuzz/fuzz_opampsrv.c $(FUZZ_OPAMPSRV_SRCS) $(B)/fuzz/opamp.pb-c.o \
		$(wildcard control-plane/*.h) $(GEN_HDRS)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_OPAMPSRV_SRCS) $(B)/fuzz/opamp.pb-c.o \
		-lprotobuf-c -lsqlite3 -lpq -ljansson -lcrypto

# The uplink's reading of a control plane's answer (vigild, network-facing).
FUZZ_OPAMPCLI_SRCS := daemon/opampcli.c control-plane/configmap.c

$(B)/fuzz/fuzz_opampcli: tests/fuzz/fuzz_opampcli.c $(FUZZ_OPAMPCLI_SRCS) $(B)/fuzz/opamp.pb-c.o \
		$(wildcard daemon/*.h) $(GEN_HDRS)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_OPAMPCLI_SRCS) $(B)/fuzz/opamp.pb-c.o \
		-lprotobuf-c -lcrypto

# What vigilctl audit verify reads from a server: checkpoints and records.
FUZZ_AUDITLOG_SRCS := control-plane/checkpoint.c control-plane/auditverify.c control-plane/merkle.c \
	control-plane/pemfile.c signing/sslutil.c signing/signing.c signing/p11key.c daemon/hexdigit.c

$(B)/fuzz/fuzz_auditlog: tests/fuzz/fuzz_auditlog.c $(FUZZ_AUDITLOG_SRCS) $(wildcard control-plane/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_AUDITLOG_SRCS) -ljansson -lcrypto

# A rollout's stages and durations, and a rollback's serial edit (vigilctl, vigil-cp).
FUZZ_ROLLPLAN_SRCS := control-plane/rollplan.c control-plane/polrevert.c

$(B)/fuzz/fuzz_rollplan: tests/fuzz/fuzz_rollplan.c $(FUZZ_ROLLPLAN_SRCS) control-plane/rollplan.h \
		control-plane/polrevert.h
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_ROLLPLAN_SRCS) -lcrypto

$(B)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRCS) $(wildcard policy/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_SRCS) -lyaml

fuzz: $(FUZZ_BINS)

fuzz-run: fuzz
	$(Q)for f in $(FUZZ_BINS); do n=$${f##*/fuzz_}; mkdir -p $(B)/fuzz/corpus/$$n; \
		seeds=tests/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
		dict=tests/fuzz/$$n.dict; [ -f $$dict ] && dict=-dict=$$dict || dict=; \
		$$f $$dict -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=$(B)/fuzz/ \
			$(B)/fuzz/corpus/$$n $$seeds || exit 1; done

clean:
	rm -rf $(B)

.PHONY: all deps run check bench bench-cp clean fuzz fuzz-run
.DEFAULT_GOAL := all

include packaging/deb.mk

-include $(shell find $(B)/obj $(B)/san $(B)/hooks $(B)/tests/fuzz $(B)/tests/unit -name '*.d' 2>/dev/null)
