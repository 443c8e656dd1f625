#!/bin/bash
# tests/integration/lib.sh - helpers shared by the integration tests.
#
# Sourced, never run: the test scripts next to it do ". lib.sh".  It gives
#   TAP output      tap_plan, tap_ok, tap_not_ok, tap_skip, tap_diag, tap_done
#   cgroups         cgroup2_root (the cgroup v2 mount vigild uses)
#   BPF gating      require_bpf NAME... (skip those tests when this host
#                   cannot run BPF; with VIGIL_REQUIRE_BPF=1 fail them)
#   scratch space   $T, a temporary directory removed on exit, with the
#                   processes started through spawn and the mounts made
#                   through tmp_mount cleaned up as well
#   waiting         now_ms, wait_for SECONDS CMD...
#   vigild          vigild_start / vigild_wait_ready / vigild_wait
#   BPF programs    vigil_sample_ids, leaked (what this test left loaded)
#   profiles        validate_profiles (go tool pprof -raw + pprof_query
#                   check), pq (pprof_query), profile_files, inclusive
#   a small PKI     tap_quiet, ec_key, mkca, leaf (openssl x509 -req in the
#                   current directory; lib_pki.sh makes a fuller one)
#
# Scripts run as root from any directory; paths below are absolute.

# Never run (tests/run.sh runs no lib*.sh); run by itself it reports nothing.
[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0

VIGIL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=$VIGIL_ROOT/build
VIGILD=$B/vigild
PQ=$B/tests/tools/pprof_query
WLD=$B/tests/workloads
BPF_FLOOR=$B/tests/tools/bpf_floor
EMPTY_BPF=$B/bpf/empty.bpf.o

# ---------------------------------------------------------------------------
# TAP.

TAP_N=0
TAP_FAILED=0
TAP_PLAN=

# tap_plan N: announce, before any result, that N tests follow.  tests/run.sh
# fails a script whose plan is missing or differs from the results it saw,
# so a script that stops early cannot pass.
tap_plan() {
	TAP_PLAN=$1
	echo "1..$1"
}

tap_diag() {
	local arg line
	for arg in "$@"; do
		[ -n "$arg" ] || continue
		printf '%s\n' "$arg" | while IFS= read -r line; do printf '# %s\n' "$line"; done
	done
}

tap_ok() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $1"
}

# tap_not_ok NAME [DIAGNOSTIC...]
tap_not_ok() {
	TAP_N=$((TAP_N + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $1"
	shift
	[ $# -gt 0 ] && tap_diag "$@"
	return 0
}

tap_skip() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $1 # SKIP $2"
}

# tap_result NAME STATUS [DIAGNOSTIC...]: ok when STATUS is 0.
tap_result() {
	local name=$1 st=$2
	shift 2
	if [ "$st" -eq 0 ]; then tap_ok "$name"; else tap_not_ok "$name" "$@"; fi
}

# Leaves with 1 when anything failed, or when the number of results is
# not the plan announced by tap_plan (which every script must call first).
tap_done() {
	if [ -z "$TAP_PLAN" ]; then
		tap_not_ok "the script announced its plan (tap_plan N) before its results"
	elif [ "$TAP_N" -ne "$TAP_PLAN" ]; then
		echo "# planned $TAP_PLAN tests, ran $TAP_N"
		exit 1
	fi
	[ "$TAP_FAILED" -eq 0 ] && exit 0
	exit 1
}

# ---------------------------------------------------------------------------
# Scratch space and cleanup.

SPAWNED=()
MOUNTS=()
CGROUPS=()

lib_cleanup() {
	local p m
	# A PostgreSQL of lib_pg.sh: stopped before its directory goes, also
	# when a script's own EXIT trap replaced lib_pg.sh's.
	declare -F pg_stop >/dev/null && pg_stop
	# bash reports a job killed by a signal ("Killed") on its own stderr,
	# when it reaps it: the kills here are the script's, not news.
	{
		for p in "${SPAWNED[@]}"; do
			# A function run with & is a subshell: its command is a child of it.
			pkill -KILL -P "$p"
			kill -KILL "$p"
		done
		for p in "${SPAWNED[@]}"; do
			wait "$p"
		done
	} 2>/dev/null
	for ((m = ${#MOUNTS[@]} - 1; m >= 0; m--)); do
		umount -l "${MOUNTS[$m]}" 2>/dev/null
	done
	# Emptied by the kills above, once the kernel has reaped the tasks.
	for ((m = ${#CGROUPS[@]} - 1; m >= 0; m--)); do
		for _ in 1 2 3 4 5; do rmdir "${CGROUPS[$m]}" 2>/dev/null && break; sleep 0.2; done
	done
	# VIGIL_KEEP_SCRATCH=1 keeps the scratch directory to look at afterwards.
	if [ -n "${VIGIL_KEEP_SCRATCH:-}" ]; then
		[ -n "${T:-}" ] && echo "# scratch kept in $T" >&2
	else
		[ -n "${T:-}" ] && [ -d "$T" ] && rm -rf "$T"
	fi
}
trap lib_cleanup EXIT
trap 'exit 130' INT TERM

T=$(mktemp -d /tmp/vigil-it.XXXXXX)
chmod 755 "$T" # so that an unprivileged vigild can reach what tests put in it

# go tool pprof wants a home for its cache; do not touch the invoker's.
export HOME=${HOME:-$T}
export GOCACHE=${GOCACHE:-$T/gocache}
export PPROF_TMPDIR=$T/pprof

# spawn CMD...: run CMD in the background, killed at exit; pid in $SPAWNED_PID.
spawn() {
	"$@" &
	SPAWNED_PID=$!
	SPAWNED+=("$SPAWNED_PID")
}

# tmp_mount DIR ARGS...: mount (ARGS as for mount) on DIR, undone at exit.
tmp_mount() {
	local dir=$1
	shift
	mkdir -p "$dir" && mount "$@" "$dir" && MOUNTS+=("$dir")
}

# tmp_cgroup DIR: make the cgroup DIR (and its parents) for the test,
# removed at exit after the processes spawned; 1 when it cannot be made.
tmp_cgroup() {
	mkdir -p "$1" && CGROUPS+=("$1")
}

# cgroup2_root: the mount point of the cgroup v2 hierarchy, found as vigild
# finds it (the first cgroup2 entry of /proc/self/mountinfo): /sys/fs/cgroup
# on a normal Debian host, /sys/fs/cgroup/unified on a hybrid one.  Prints
# nothing when there is none.
cgroup2_root() {
	awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
		/proc/self/mountinfo
}

# vigil_user_ids: "UID GID" of the user vigild runs its workers as,
# created as vigild creates it (sandbox.c) when this test runs first.
vigil_user_ids() {
	id -u vigil >/dev/null 2>&1 ||
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
			--user-group vigil >/dev/null 2>&1
	echo "$(id -u vigil 2>/dev/null) $(id -g vigil 2>/dev/null)"
}

# setpriv_caps FIRST CAP...: setpriv's capability list "FIRST,+a,+b" for
# CAP... named as systemd does (CAP_BPF) or as setpriv does (bpf); FIRST
# may be empty or, for --bounding-set, -all.
setpriv_caps() {
	local out=$1 c
	shift
	for c in "$@"; do
		c=${c,,}
		out+=",+${c#cap_}"
	done
	echo "${out#,}"
}

# softhsm_token DIR NAME LABEL PIN: a SoftHSM token standing for an HSM,
# its files under DIR (SOFTHSM2_CONF exported, VIGIL_PKCS11_MODULE too):
# vigil-sign dev-ca --name NAME in DIR/keys, whose signer key is imported
# into the token LABEL (object "signer", PIN PIN) and then deleted, so that
# only the token can sign; DIR/pin holds the PIN (0600).  Its tools' output
# in DIR/setup.out; non-zero when the token could not be made.
softhsm_token() {
	local dir=$1 rc
	mkdir -p "$dir/tokens"
	export SOFTHSM2_CONF=$dir/softhsm2.conf VIGIL_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so
	printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$dir/tokens" >"$SOFTHSM2_CONF"
	"$B/vigil-sign" dev-ca --out "$dir/keys" --name "$2" >"$dir/setup.out" 2>&1 &&
		openssl pkcs8 -topk8 -nocrypt -in "$dir/keys/signer.key" -out "$dir/signer.p8" >>"$dir/setup.out" 2>&1 &&
		softhsm2-util --init-token --free --label "$3" --pin "$4" --so-pin 87654321 >>"$dir/setup.out" 2>&1 &&
		softhsm2-util --import "$dir/signer.p8" --token "$3" --label signer --id 01 --pin "$4" \
			>>"$dir/setup.out" 2>&1
	rc=$?
	rm -f "$dir/keys/signer.key" "$dir/signer.p8"
	(umask 077 && printf '%s' "$4" >"$dir/pin")
	return $rc
}

# now_ms: CLOCK_REALTIME in milliseconds.
now_ms() {
	local t=${EPOCHREALTIME//[!0-9]/} # its separator is the locale's
	echo $((t / 1000))
}

# wait_for SECONDS CMD...: run CMD every 0.2 s until it succeeds; 1 when
# SECONDS pass first.
wait_for() {
	local limit=$(($(now_ms) + $1 * 1000))
	shift
	while [ "$(now_ms)" -lt "$limit" ]; do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}

# ---------------------------------------------------------------------------
# BPF gating.

# Prints why BPF profiling cannot run here, or nothing when it can.
bpf_unusable_reason() {
	[ "$(id -u)" -eq 0 ] || { echo "not running as root"; return; }
	[ -x "$VIGILD" ] || { echo "$VIGILD is not built"; return; }
	[ -r /sys/kernel/btf/vmlinux ] || { echo "kernel has no BTF (/sys/kernel/btf/vmlinux)"; return; }
	if [ -x "$BPF_FLOOR" ] && [ -f "$EMPTY_BPF" ]; then
		local out
		out=$("$BPF_FLOOR" --hz 19 --duration 0 "$EMPTY_BPF" 2>&1 >/dev/null) ||
			{ echo "cannot attach a perf_event BPF program: $(echo "$out" | tail -1)"; return; }
	fi
}

# require_bpf NAME...: when BPF is unusable, report every named test as
# skipped (failed with VIGIL_REQUIRE_BPF=1) and end the script.
require_bpf() {
	local why name
	why=$(bpf_unusable_reason)
	[ -z "$why" ] && return 0
	for name in "$@"; do
		if [ "${VIGIL_REQUIRE_BPF:-0}" = 1 ]; then
			tap_not_ok "$name" "BPF is required (VIGIL_REQUIRE_BPF=1) but $why"
		else
			tap_skip "$name" "$why"
		fi
	done
	tap_done
}

# require_tool NAME... : fail the named tests when a test tool is missing.
require_file() {
	local f=$1 name
	shift
	[ -e "$f" ] && return 0
	for name in "$@"; do
		tap_not_ok "$name" "$f is missing: run make"
	done
	tap_done
}

# ---------------------------------------------------------------------------
# vigild.

# vigild_start LOG ARGS...: start build/vigild ARGS in the background with
# stderr (and stdout) to LOG; pid in $VIGILD_PID, start time in
# $VIGILD_START_MS.  A watchdog kills it after $VIGILD_TIMEOUT seconds
# (600 unless the script says): a backstop for a vigild its script could
# no longer stop, never a bound on a check.  A script whose one vigild
# lives through all of it takes longer than 120 s on a loaded host
# (agent_compromised_cp.sh took 138 s in CI, whose 120 s killed vigild).
vigild_start() {
	local log=$1 a metrics=(--metrics-listen none)
	shift
	# Metrics off unless the test asks for them: the default address is one
	# for the whole host, and a warning that it is taken (by a vigild of
	# another test or a real one) would change what tests read in the log.
	for a in "$@"; do
		case $a in --metrics-listen | --metrics-listen=*) metrics=() ;; esac
	done
	VIGILD_START_MS=$(now_ms)
	"$VIGILD" "${metrics[@]}" "$@" >"$log" 2>&1 &
	VIGILD_PID=$!
	SPAWNED+=("$VIGILD_PID")
	(
		sleep "${VIGILD_TIMEOUT:-600}"
		kill -KILL "$VIGILD_PID" 2>/dev/null
	) >/dev/null 2>&1 &
	SPAWNED+=("$!")
}

# free_port: a TCP port nothing listens on now, or 0.  It is below the
# kernel's ephemeral range (net.ipv4.ip_local_port_range, from 32768 by
# default), so that no outgoing connection of a script run beside this one
# takes it as its own port before it is bound.
free_port() {
	local p lo=20000 eph
	read -r eph _ </proc/sys/net/ipv4/ip_local_port_range || eph=32768
	[ "$eph" -gt $((lo + 1000)) ] || lo=1024
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		p=$(shuf -i "$lo-$((eph - 1))" -n 1)
		ss -Htln "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
	echo 0
}

# pid_tree PID: PID and its descendants.
pid_tree() {
	local todo=("$1") p c
	while [ ${#todo[@]} -gt 0 ]; do
		p=${todo[0]}
		todo=("${todo[@]:1}")
		[ -d "/proc/$p" ] || continue
		echo "$p"
		for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do todo+=("$c"); done
	done
}

# True when the process tree of PID holds a perf_event BPF program
# (prog_type 7) or a BPF link attached to a perf event.
tree_has_perf_bpf() {
	local p
	for p in $(pid_tree "$1"); do
		grep -qsE '^(prog_type:[[:space:]]+7|link_type:[[:space:]]+perf)$' /proc/"$p"/fdinfo/* && return 0
	done
	return 1
}

# vigil_sample_ids: ids of the loaded programs named vigil_sample.
vigil_sample_ids() {
	bpftool prog show 2>/dev/null | awk '/ name vigil_sample / { sub(":", "", $1); print $1 }' | sort
}

# prog_holders ID: pids with an fd on BPF program ID (bpf-prog or bpf-link
# fds say "prog_id: ID" in their fdinfo; this bpftool shows no pids).
prog_holders() {
	grep -lsE "^prog_id:[[:space:]]+$1\$" /proc/[0-9]*/fdinfo/* 2>/dev/null | cut -d/ -f3 | sort -u
}

# leaked BEFORE: vigil_sample programs not in BEFORE (an earlier
# vigil_sample_ids) that are pinned or held by a process started for this
# test (its command line names $T).  Other vigild instances on the host
# (the machine may be shared) are not ours to judge; a program nobody holds
# is on its way out.
leaked() {
	local id p
	for id in $(comm -13 <(echo "$1") <(vigil_sample_ids)); do
		bpftool -f prog show id "$id" 2>/dev/null | grep -q 'pinned ' && echo "prog $id pinned"
		for p in $(prog_holders "$id"); do
			tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$T" && echo "prog $id held by pid $p"
		done
	done
}

# vigild_wait_ready [TIMEOUT]: wait until vigild samples (its processes hold
# perf_event BPF programs), then a little longer.  1 when it died or timed out.
vigild_wait_ready() {
	local limit=$(($(now_ms) + ${1:-20} * 1000))
	while [ "$(now_ms)" -lt "$limit" ]; do
		kill -0 "$VIGILD_PID" 2>/dev/null || return 1
		if tree_has_perf_bpf "$VIGILD_PID"; then
			sleep 0.5
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# vigild_wait TIMEOUT: wait up to TIMEOUT seconds for vigild to exit; its
# exit code in $VIGILD_RC (255 and killed when it did not exit), the time it
# ran in $VIGILD_RAN_MS.
vigild_wait() {
	local limit=$(($(now_ms) + $1 * 1000))
	while kill -0 "$VIGILD_PID" 2>/dev/null && [ "$(now_ms)" -lt "$limit" ]; do
		# A zombie still answers kill -0; it has exited all the same.
		[ "$(awk '{print $3}' /proc/"$VIGILD_PID"/stat 2>/dev/null)" = Z ] && break
		sleep 0.1
	done
	VIGILD_RAN_MS=$(($(now_ms) - VIGILD_START_MS))
	if kill -0 "$VIGILD_PID" 2>/dev/null && [ "$(awk '{print $3}' /proc/"$VIGILD_PID"/stat 2>/dev/null)" != Z ]; then
		kill -KILL "$VIGILD_PID" 2>/dev/null
		wait "$VIGILD_PID" 2>/dev/null
		VIGILD_RC=255
		return 1
	fi
	wait "$VIGILD_PID"
	VIGILD_RC=$?
	return 0
}

# ---------------------------------------------------------------------------
# Profiles.

pq() { "$PQ" "$@"; }

# profile_files DIR: the finished profiles in DIR, sorted by name.
profile_files() {
	find "$1" -maxdepth 1 -name '*.pb.gz' ! -name '.*' -printf '%p\n' 2>/dev/null | sort
}

# cpusplit_cpu OUTFILE: the CPU seconds cpusplit reported in OUTFILE.
cpusplit_cpu() { sed -nE 's/.* of ([0-9.]+) s CPU.*/\1/p' "$1"; }
# cxxspin_cpu OUTFILE main|workers: the CPU seconds cxxspin reported in
# OUTFILE for its main thread, or for its workers together.
cxxspin_cpu() { sed -nE "s/^cxxspin: (.*, )?$2 ([0-9.]+) s CPU.*/\2/p" "$1"; }

# rate_verdict N HZ OUTFILE [LEAST]: "ok ..." (else "bad ...") when N
# samples over the CPU seconds cpusplit reported in OUTFILE are HZ a second
# within 3 sigma of counting noise, and at least LEAST (30) were expected:
# enough that 3 sigma leaves out the rate the caller tells HZ from.
rate_verdict() {
	local cpu
	cpu=$(cpusplit_cpu "$3")
	awk -v n="${1:-0}" -v cpu="${cpu:-0}" -v hz="$2" -v least="${4:-30}" 'BEGIN {
		want = hz * cpu; tol = 3 / sqrt(want > 1 ? want : 1); r = cpu > 0 ? n / cpu : 0
		d = r / hz - 1; if (d < 0) d = -d
		printf "%s %d samples in %.2f CPU s: %.1f per s, want %d +-%.1f%%", (want >= least && d <= tol ? "ok" : "bad"), n, cpu, r, hz, 100 * tol }'
}

# tasks_ns PID: the CPU time PID's threads have run so far, in ns
# (/proc/PID/schedstat alone is the main thread's).
tasks_ns() {
	local f v sum=0
	for f in /proc/"$1"/task/*/schedstat; do
		read -r v _ <"$f" 2>/dev/null && sum=$((sum + v))
	done
	echo "$sum"
}

# info_field NAME: the number of line "NAME: N" of pq info's output (stdin).
info_field() { sed -n "s/^$1: \([0-9]*\)\$/\1/p"; }

# profiles_begun_after DIR MS: the finished profiles in DIR whose interval
# began (time_nanos) at or after MS (ms since the epoch), sorted by name.
# A profile written after a moment may have begun before it, and hold what
# was sampled then, labelled as it was then.
profiles_begun_after() {
	local f t
	for f in $(profile_files "$1"); do
		# bash's 64-bit arithmetic: mawk's printf %d stops at 2^31
		t=$(pq info "$f" 2>/dev/null | info_field time_nanos)
		[ -n "$t" ] && [ $((t / 1000000)) -ge "$2" ] && echo "$f"
	done
}

# sample_floor CPU_S HZ: the fewest samples of a workload that had CPU_S
# seconds of CPU, sampled at HZ, that a test may judge: half of what the
# sampling gives (counting noise is far less), and 20 at the least.  A
# workload that runs a fixed wall time gets less CPU on a loaded host, so
# the floor comes from the CPU it reports, not from the time it ran.
sample_floor() {
	awk -v cpu="$1" -v hz="$2" 'BEGIN { f = cpu * hz / 2; if (f < 20) f = 20; printf "%d", f + 0.999 }'
}
# enough_samples N CPU_S HZ: N samples are at least sample_floor CPU_S HZ;
# false when CPU_S is empty (the workload did not say: it did not finish).
enough_samples() { [ -n "$2" ] && [ "$1" -ge "$(sample_floor "$2" "$3")" ]; }

# validate_profiles FILE...: every file must be read by go tool pprof -raw
# and by pprof_query check.  Prints one line per failure; 1 if any.
validate_profiles() {
	local f out st=0
	[ $# -gt 0 ] || { echo "no profile files"; return 1; }
	mkdir -p "$PPROF_TMPDIR"
	for f in "$@"; do
		if ! out=$(go tool pprof -symbolize=none -raw "$f" 2>&1 >/dev/null); then
			echo "go tool pprof -raw $(basename "$f"): $(echo "$out" | head -3 | tr '\n' ' ')"
			st=1
		fi
		if ! out=$(pq check "$f" 2>&1); then
			echo "pprof_query check $(basename "$f"): $(echo "$out" | head -3 | tr '\n' ' ')"
			st=1
		fi
	done
	return $st
}

# stacks_sum: total count of folded stacks on stdin.
stacks_sum() {
	awk -F'\t' '{ n += $1 } END { print n + 0 }'
}

# inclusive FUNC...: folded stacks on stdin; prints, per FUNC, the number
# of samples whose stack contains FUNC (each sample counted once).
inclusive() {
	awk -F'\t' -v funcs="$*" '
		BEGIN { n = split(funcs, want, " ") }
		{
			k = split($2, fr, ";")
			delete seen
			for (i = 1; i <= k; i++) seen[fr[i]] = 1
			for (j = 1; j <= n; j++) if (want[j] in seen) c[j] += $1
		}
		END { for (j = 1; j <= n; j++) printf "%s %d\n", want[j], c[j] + 0 }'
}

# has_frame FUNC: true when some folded stack on stdin contains FUNC.
has_frame() {
	awk -F'\t' -v f="$1" '
		{ k = split($2, fr, ";"); for (i = 1; i <= k; i++) if (fr[i] == f) found = 1 }
		END { exit !found }'
}

# syscalls_named PID FILE...: what the profiles name on the stacks of the
# syscalls workload PID (tests/workloads/syscalls): "user" for its own
# read_zero (its maps and binary were read), "kernel" for do_syscall_64
# (/proc/kallsyms gave addresses), on one line.  By its pid: the scripts
# run beside the caller may have syscalls workloads too.
syscalls_named() {
	local pid=$1 st named=()
	shift
	st=$(pq stacks --label comm=syscalls --label "pid=$pid" "$@" 2>/dev/null)
	has_frame read_zero <<<"$st" && named+=(user)
	has_frame do_syscall_64 <<<"$st" && named+=(kernel)
	echo "${named[*]}"
}

# ---------------------------------------------------------------------------
# A small PKI in the current directory, made with openssl x509 -req: enough
# for vigil-cp's server, agent and admin CAs and a policy signer
# (agent_cp.sh, agent_compromised_cp.sh, vigilctl.sh).

# tap_quiet CMD...: run CMD; only if it fails, show its output as TAP
# diagnostics.
tap_quiet() {
	local out
	out=$("$@" 2>&1) || { echo "# setup failed: $*"; echo "$out" | sed 's/^/# /'; return 1; }
}

# ec_key FILE: a new P-256 private key.
ec_key() { tap_quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# mkca NAME: a self-signed CA, NAME-ca.pem and NAME-ca.key.
mkca() {
	ec_key "$1-ca.key" && tap_quiet openssl req -x509 -new -key "$1-ca.key" -sha256 -days 30 \
		-subj "/O=Vigil test/CN=$1 CA" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1-ca.pem"
}

# leaf CA NAME SUBJECT-CN EXTENSIONS...: NAME.pem and NAME.key, issued by
# CA-ca.pem; not a CA, digitalSignature, and EXTENSIONS (openssl config lines).
leaf() {
	local ca=$1 name=$2 cn=$3
	shift 3
	{
		echo "basicConstraints = critical, CA:FALSE"
		echo "keyUsage = critical, digitalSignature"
		printf '%s\n' "$@"
	} >"$name.ext"
	ec_key "$name.key" &&
		tap_quiet openssl req -new -key "$name.key" -subj "/O=Vigil test/CN=$cn" -out "$name.csr" &&
		tap_quiet openssl x509 -req -in "$name.csr" -CA "$ca-ca.pem" -CAkey "$ca-ca.key" -CAcreateserial \
			-days 30 -sha256 -extfile "$name.ext" -out "$name.pem"
}
