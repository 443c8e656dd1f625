#!/bin/bash
# tests/bench/bench.sh - compare vigild's overhead with bpftrace and perf.
#
# Every profiler samples the whole host at the same frequency while one
# benchspin process per CPU does a fixed amount of work.  For each profiler
# it measures, over the window in which the workload runs (start-up and
# shut-down excluded: a continuous profiler's cost is its steady state):
#
#   BPF ns/sample   run_time_ns / run_cnt of the profiler's perf_event BPF
#                   programs (kernel.bpf_stats_enabled=1); perf has none
#   user us/sample  CPU time of all the profiler's processes (sum of
#                   /proc/PID/task/*/schedstat, ns resolution) / samples;
#                   samples = BPF run_cnt, for perf the samples in perf.data
#                   whose timestamp falls in the window
#   peak RSS        VmHWM summed over the profiler's processes
#   slowdown        the workload's wall time against no profiler and
#                   against a do-nothing BPF program on the same events
#                   (tests/tools/bpf_floor + build/bpf/empty.bpf.o)
#
# The configurations run round-robin BENCH_ROUNDS times; the slowdown uses
# each configuration's fastest round (noise only ever slows a fixed amount
# of work down), the per-sample figures pool all rounds.  See
# docs/benchmarks.md.  Results also go to build/bench/results.md.
#
# Environment: BENCH_HZ (999), BENCH_OPS (benchspin ops per process,
# 750000, ~6 s here), BENCH_ROUNDS (2), BENCH_INTERVAL (vigild --interval,
# 5), BENCH_ONLY (space-separated subset of: none floor vigild bpftrace perf),
# BENCH_VIGILD_ARGS (extra vigild options, e.g. --build-id),
# BENCH_STRICT=1 (exit 1 when vigild misses a target), BENCH_BUILD (the
# build tree whose vigild and workload run, and where results.md goes:
# build; a copy of another commit's tree runs that build, to set two
# builds' runs side by side).

set -u
cd "$(dirname "$0")/../.."

HZ=${BENCH_HZ:-999}
OPS=${BENCH_OPS:-750000}
ROUNDS=${BENCH_ROUNDS:-2}
INTERVAL=${BENCH_INTERVAL:-5}
CONFIGS=${BENCH_ONLY:-none floor vigild bpftrace perf}
read -r -a VIGILD_ARGS <<<"${BENCH_VIGILD_ARGS:-}"
B=${BENCH_BUILD:-build}
WL=$B/tests/workloads/benchspin
NCPU=$(nproc)
OUT=$B/bench/results.md

die() { echo "bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (BPF, perf -a, bpf_stats_enabled)"
[ -x "$WL" ] || die "$WL missing: run make first"
command -v bpftool >/dev/null || die "bpftool missing (make deps)"

TMP=$(mktemp -d /tmp/vigil-bench.XXXXXX)
STATS_WAS=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo 0)
PROF_PID=

cleanup() {
	# run_workload runs in a subshell: its pids are in a file.
	[ -f "$TMP/wl.pids" ] && kill -KILL $(cat "$TMP/wl.pids") 2>/dev/null
	if [ -n "$PROF_PID" ] && kill -0 "$PROF_PID" 2>/dev/null; then
		kill -KILL "$PROF_PID" 2>/dev/null
		wait "$PROF_PID" 2>/dev/null
	fi
	sysctl -q kernel.bpf_stats_enabled="$STATS_WAS" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sysctl -q kernel.bpf_stats_enabled=1 >/dev/null || die "cannot enable kernel.bpf_stats_enabled"

. tests/bench/lib_bench.sh

nap_init "$TMP" || die "mkfifo $TMP/nap.fifo"

# Until the window starts.  vigild symbolizes at the end of each interval
# what it sampled during it, so the first interval's flush is where it
# pays for what ran before the window: its own start-up, the warm-up,
# and the harness (ps, awk, bpftool from tree_snap).  Charging that to
# the window would measure the harness, not the steady state: the window
# starts right after the interval that holds them has been written, and
# nothing is started between that flush and the window.  The window's
# own interval ends stay in it: one in a ~6.7 s window at --interval 5,
# where the steady state has 1.3 (docs/benchmarks.md).  The others
# symbolize at exit (bpftrace) or not at all (perf): a second for them.
settle() {
	local cfg=$1 dir=$2 before i
	if [ "$cfg" != vigild ]; then
		nap 1
		return 0
	fi
	profiles_in "$dir/profiles"
	before=$PROFILES_N
	for ((i = 0; i < (INTERVAL + 10) * 20; i++)); do
		nap 0.05
		profiles_in "$dir/profiles"
		[ "$PROFILES_N" -gt "$before" ] || continue
		# A profile in the first 0.1 s may be of a flush that had drained
		# the ring before the harness was done: the next one, then.
		[ $i -ge 2 ] && return 0
		before=$PROFILES_N
	done
	return 1
}


# Wait until the tree's perf_event programs have run (or, for perf, a
# moment).
wait_ready() {
	local pid=$1 kind=$2 i ns cnt
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || return 1
		if [ "$kind" = perf ]; then
			[ $i -ge 15 ] && break
		else
			read -r ns cnt <<<"$(tree_bpf_stats "$pid")"
			[ "${cnt:-0}" -gt 0 ] && break
		fi
		sleep 0.1
	done
	[ $i -lt 300 ] || return 1
}

start_profiler() {
	local cfg=$1 dir=$TMP/$cfg.$2
	mkdir -p "$dir"
	case $cfg in
	floor)
		"$B"/tests/tools/bpf_floor --hz "$HZ" --duration 3600 "$B"/bpf/empty.bpf.o \
			>"$dir/out" 2>"$dir/err" &
		;;
	vigild)
		"$B"/vigild --hz "$HZ" --interval "$INTERVAL" --duration 0 --output "$dir/profiles" \
			"${VIGILD_ARGS[@]}" >"$dir/out" 2>"$dir/err" &
		;;
	bpftrace)
		bpftrace -o "$dir/maps" -e "profile:hz:$HZ { @[ustack, kstack, comm] = count(); }" \
			>"$dir/out" 2>"$dir/err" &
		;;
	perf)
		perf record -q -g -a -F "$HZ" -k CLOCK_REALTIME -o "$dir/perf.data" \
			>"$dir/out" 2>"$dir/err" &
		;;
	esac
	PROF_PID=$!
}

# Runs NCPU benchspins in parallel and waits for them, in this shell: the
# window starts no process but the workload's (lib_bench.sh, tree_snap).
run_workload() {
	local dir=$1 i pids=()
	for ((i = 0; i < NCPU; i++)); do
		"$WL" --ops "$OPS" >"$dir/wl.$i" &
		pids+=($!)
	done
	echo "${pids[*]}" >"$TMP/wl.pids"
	for i in "${pids[@]}"; do wait "$i"; done
}

# The workload's mean wall time, from what its processes printed.
workload_wall() {
	rm -f "$TMP/wl.pids"
	cat "$1"/wl.* | sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' |
		awk '{s += $1; n++} END { if (n) printf "%.4f\n", s / n; else print "nan" }'
}

# Per configuration: best wall, pooled window figures.
declare -A WALL BPF_NS BPF_CNT CPU_NS SAMPLES HWM NOTE

for cfg in $CONFIGS; do
	case $cfg in
	none) ;;
	floor) [ -x "$B"/tests/tools/bpf_floor ] && [ -f "$B"/bpf/empty.bpf.o ] || NOTE[$cfg]="bpf_floor or empty.bpf.o not built" ;;
	vigild) [ -x "$B"/vigild ] || NOTE[$cfg]="$B/vigild not built" ;;
	bpftrace) command -v bpftrace >/dev/null || NOTE[$cfg]="bpftrace not installed" ;;
	perf) command -v perf >/dev/null || NOTE[$cfg]="perf not installed" ;;
	*) die "unknown configuration '$cfg' in BENCH_ONLY" ;;
	esac
	BPF_NS[$cfg]=0 BPF_CNT[$cfg]=0 CPU_NS[$cfg]=0 SAMPLES[$cfg]=0 HWM[$cfg]=0
done

echo "bench: $NCPU x benchspin --ops $OPS, $HZ Hz, $ROUNDS round(s), configurations: $CONFIGS"
for ((round = 1; round <= ROUNDS; round++)); do
	for cfg in $CONFIGS; do
		[ -z "${NOTE[$cfg]:-}" ] || continue
		dir=$TMP/$cfg.$round
		mkdir -p "$dir"
		if [ "$cfg" != none ]; then
			start_profiler "$cfg" "$round"
			if ! wait_ready "$PROF_PID" "$cfg"; then
				NOTE[$cfg]="did not start: $(head -c 300 "$dir/err" | tr '\n' ' ')"
				stop_profiler
				echo "bench: round $round $cfg: ${NOTE[$cfg]}"
				continue
			fi
			# A short run of the workload first, as a host that runs it
			# all the time would have had: vigild then holds its files
			# (their symbols and CFI, libc's debug file), which it reads
			# once, not for each process.  Every profiler gets it.
			warm=()
			for ((i = 0; i < NCPU; i++)); do
				"$WL" --ops $((OPS / 50)) >/dev/null &
				warm+=($!)
			done
			wait "${warm[@]}"
			# the tree and its programs, then start-up settles
			tree_snap "$PROF_PID"
			[ "$cfg" = perf ] || [ ${#SNAP_PROGS[@]} -gt 0 ] ||
				die "$cfg: no perf_event program fd found in its processes' fdinfo"
			settle "$cfg" "$dir" || die "$cfg: no profile written within $((INTERVAL + 10)) s"
			snap_read
			bt0=$SNAP_BPF_NS bc0=$SNAP_BPF_CNT cpu0=$SNAP_CPU_NS
		fi
		t0=$EPOCHREALTIME
		run_workload "$dir"
		t1=$EPOCHREALTIME
		if [ "$cfg" != none ]; then
			snap_read
			bt1=$SNAP_BPF_NS bc1=$SNAP_BPF_CNT cpu1=$SNAP_CPU_NS
		fi
		wall=$(workload_wall "$dir")
		if [ "$cfg" != none ]; then
			hwm=$(tree_hwm_kb "$PROF_PID")
			if ! kill -0 "$PROF_PID" 2>/dev/null; then
				NOTE[$cfg]="exited during the run: $(head -c 300 "$dir/err" | tr '\n' ' ')"
			fi
			stop_profiler
			BPF_NS[$cfg]=$((BPF_NS[$cfg] + bt1 - bt0))
			BPF_CNT[$cfg]=$((BPF_CNT[$cfg] + bc1 - bc0))
			CPU_NS[$cfg]=$((CPU_NS[$cfg] + cpu1 - cpu0))
			[ "$hwm" -gt "${HWM[$cfg]}" ] && HWM[$cfg]=$hwm
			if [ "$cfg" = perf ]; then
				n=$(perf script -i "$dir/perf.data" -F time 2>/dev/null |
					awk -v a="$t0" -v b="$t1" '{ t = $1 + 0; if (t >= a && t <= b) n++ } END { print n + 0 }')
				SAMPLES[$cfg]=$((SAMPLES[$cfg] + n))
			else
				SAMPLES[$cfg]=$((SAMPLES[$cfg] + bc1 - bc0))
			fi
		fi
		if [ -z "${WALL[$cfg]:-}" ] || awk -v a="$wall" -v b="${WALL[$cfg]}" 'BEGIN { exit !(a < b) }'; then
			WALL[$cfg]=$wall
		fi
		echo "bench: round $round $cfg: workload wall ${wall}s"
	done
done

# ---------------------------------------------------------------------------
# Report.


row() {
	local cfg=$1 bpf user rss slow floor
	if [ -n "${NOTE[$cfg]:-}" ] && [ -z "${WALL[$cfg]:-}" ]; then
		printf '| %-9s | %s | | | | | |\n' "$cfg" "not run: ${NOTE[$cfg]}"
		return
	fi
	case $cfg in
	none) bpf=- user=- rss=- SAMPLES[none]=- ;;
	perf) bpf=n/a ;;
	*) bpf=$(div "${BPF_NS[$cfg]}" "${BPF_CNT[$cfg]}" '%.0f') ;;
	esac
	case $cfg in
	none) ;;
	floor) user=n/a rss=$(div "${HWM[$cfg]}" 1024 '%.1f') ;;
	*) user=$(div "${CPU_NS[$cfg]}" "$((SAMPLES[$cfg] * 1000))" '%.2f')
	   rss=$(div "${HWM[$cfg]}" 1024 '%.1f') ;;
	esac
	slow=$(div "${WALL[$cfg]}" "${WALL[none]:-0}" '%.3f')
	floor=$(div "${WALL[$cfg]}" "${WALL[floor]:-0}" '%.3f')
	[ "$cfg" = none ] && floor=-
	[ "$cfg" = floor ] && floor=1.000
	printf '| %-9s | %s | %s | %s | %s | %s | %s | %s |\n' "$cfg" "$bpf" "$user" "$rss" \
		"${SAMPLES[$cfg]:--}" "${WALL[$cfg]}" "$slow" "$floor"
}

target() {
	local what=$1 ok=$2
	if [ "$ok" = 1 ]; then echo "PASS  $what"; else echo "MISS  $what"; MISSED=1; fi
}

MISSED=0
{
	echo "Vigil benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $NCPU CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1))"
	echo "workload: $NCPU x benchspin --ops $OPS; sampling $HZ Hz on every CPU; $ROUNDS round(s); vigild --interval $INTERVAL ${VIGILD_ARGS[*]}"
	echo
	echo "| profiler  | BPF ns/sample | user us/sample | peak RSS MiB | samples | wall s | slowdown vs none | vs empty BPF |"
	echo "|-----------|---------------|----------------|--------------|---------|--------|------------------|--------------|"
	for cfg in $CONFIGS; do row "$cfg"; done
	echo
	if [ -n "${WALL[vigild]:-}" ]; then
		v_bpf=$(div "${BPF_NS[vigild]}" "${BPF_CNT[vigild]}" '%.0f')
		b_bpf=$(div "${BPF_NS[bpftrace]:-0}" "${BPF_CNT[bpftrace]:-0}" '%.0f')
		v_user=$(div "${CPU_NS[vigild]}" "$((SAMPLES[vigild] * 1000))" '%.2f')
		v_rss=$(div "${HWM[vigild]}" 1024 '%.1f')
		if [ "$b_bpf" != n/a ]; then
			target "vigild BPF time per sample <= 0.8 x bpftrace's: $v_bpf ns vs $b_bpf ns ($(div "$v_bpf" "$b_bpf" '%.2f') x)" \
				"$(awk -v a="$v_bpf" -v b="$b_bpf" 'BEGIN { print (a <= 0.8 * b) ? 1 : 0 }')"
		else
			echo "SKIP  vigild BPF time per sample <= 0.8 x bpftrace's: bpftrace not measured"
		fi
		target "vigild userspace CPU <= 1 us per sample: $v_user us" \
			"$(awk -v a="$v_user" 'BEGIN { print (a != "n/a" && a <= 1) ? 1 : 0 }')"
		target "vigild peak RSS <= 32 MiB: $v_rss MiB" \
			"$(awk -v a="$v_rss" 'BEGIN { print (a != "n/a" && a <= 32) ? 1 : 0 }')"
	else
		echo "vigild was not measured: ${NOTE[vigild]:-not in BENCH_ONLY}"
	fi
	for cfg in $CONFIGS; do
		[ -n "${NOTE[$cfg]:-}" ] && [ -n "${WALL[$cfg]:-}" ] && echo "note: $cfg: ${NOTE[$cfg]}"
	done
} | tee "$TMP/report"
mkdir -p "$(dirname "$OUT")" && cp "$TMP/report" "$OUT"
grep -q '^MISS' "$TMP/report" && MISSED=1
if [ "${BENCH_STRICT:-0}" = 1 ] && [ "$MISSED" = 1 ]; then
	exit 1
fi
exit 0
