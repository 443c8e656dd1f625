#!/bin/bash
# tests/bench/bench_idle.sh - what each profiler costs at a continuous
# profiler's own pace: vigild at its defaults (19 Hz), bpftrace and perf
# at 19 Hz, each profiling every CPU of a host kept busy by one burner per
# CPU, one after another, each for the same window (issue 13).
#
# For each profiler, over the window (start-up and shut-down excluded):
#   CPU            ns of CPU of all its processes' threads (schedstat), as
#                  a share of one core
#   wakeups        voluntary context switches of its threads, per second
#                  (a thread that sleeps and is woken counts one)
#   peak RSS       VmHWM summed over its processes
# The window spans several of vigild's intervals (BENCH_IDLE_INTERVAL, 10 s,
# in a 45 s window), so interval flushes are in it; it begins after the
# first interval, whose first look at every process is start-up.  Ratios are vigild's
# figure over the peer's, from the same run.  Results also go to
# $BENCH_BUILD/bench/idle.md (build/bench/idle.md by default).
#
# Environment: BENCH_IDLE_WINDOW (45 s), BENCH_IDLE_INTERVAL (10 s),
# BENCH_IDLE_ONLY (subset of: vigild bpftrace perf), BENCH_VIGILD_ARGS,
# BENCH_BUILD (the build tree whose vigild runs: build; as in bench.sh).

set -u
export LC_ALL=C # $EPOCHREALTIME with a decimal point
cd "$(dirname "$0")/../.."

WINDOW=${BENCH_IDLE_WINDOW:-45}
INTERVAL=${BENCH_IDLE_INTERVAL:-10}
CONFIGS=${BENCH_IDLE_ONLY:-vigild bpftrace perf}
read -r -a VIGILD_ARGS <<<"${BENCH_VIGILD_ARGS:-}"
HZ=19
B=${BENCH_BUILD:-build}
BURN=$B/tests/workloads/cpusplit
NCPU=$(nproc)
OUT=$B/bench/idle.md

die() { echo "bench_idle: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (BPF, perf -a)"
[ -x "$BURN" ] || die "$BURN missing: run make first"
[ -x "$B"/vigild ] || die "$B/vigild missing: run make first"

TMP=$(mktemp -d /tmp/vigil-bench-idle.XXXXXX)
PROF_PID=
BURN_PID=
cleanup() {
	# reaped here, so that bash does not report the kill ("Killed") on stderr
	if [ -n "$BURN_PID" ]; then
		kill -KILL "$BURN_PID" 2>/dev/null
		wait "$BURN_PID" 2>/dev/null
	fi
	if [ -n "$PROF_PID" ] && kill -0 "$PROF_PID" 2>/dev/null; then
		kill -KILL "$PROF_PID" 2>/dev/null
		wait "$PROF_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. tests/bench/lib_bench.sh
nap_init "$TMP" || die "mkfifo $TMP/nap.fifo"

start_profiler() {
	local cfg=$1 dir=$TMP/$1
	mkdir -p "$dir"
	case $cfg in
	vigild)
		"$B"/vigild --interval "$INTERVAL" --duration 0 --output "$dir/profiles" \
			"${VIGILD_ARGS[@]}" >"$dir/out" 2>"$dir/err" &
		;;
	bpftrace)
		bpftrace -o "$dir/maps" -e "profile:hz:$HZ { @[ustack, kstack, comm] = count(); }" \
			>"$dir/out" 2>"$dir/err" &
		;;
	perf)
		perf record -q -g -a -F "$HZ" -o "$dir/perf.data" >"$dir/out" 2>"$dir/err" &
		;;
	*) die "unknown configuration '$cfg'" ;;
	esac
	PROF_PID=$!
}

declare -A CPU SW HWM NOTE
"$BURN" --threads "$NCPU" --seconds $(((WINDOW + 20) * 4)) >/dev/null &
BURN_PID=$!
echo "bench_idle: $NCPU CPUs busy (cpusplit), $HZ Hz, a ${WINDOW} s window each, vigild --interval $INTERVAL"
for cfg in $CONFIGS; do
	case $cfg in
	bpftrace | perf)
		command -v "$cfg" >/dev/null || { NOTE[$cfg]="not installed"; continue; } ;;
	esac
	start_profiler "$cfg"
	# The whole tree (vigild starts its workers after loading and
	# calibrating, which on busy CPUs takes seconds), then start-up and
	# for vigild its first interval (every process met for the first time,
	# every file opened, the harness's tree_snap included): the steady
	# state is measured, and from here to the window's end the harness
	# starts no process (nap, snap_read).
	for ((i = 0; i < 60; i++)); do
		tree_snap "$PROF_PID"
		[ "$cfg" != vigild ] || [ ${#SNAP_PIDS[@]} -ge 3 ] && break
		kill -0 "$PROF_PID" 2>/dev/null || break
		sleep 1
	done
	nap $((INTERVAL + 5))
	if ! kill -0 "$PROF_PID" 2>/dev/null; then
		NOTE[$cfg]="did not start: $(head -c 300 "$TMP/$cfg/err" | tr '\n' ' ')"
		continue
	fi
	snap_read
	c0=$SNAP_CPU_NS s0=$SNAP_SWITCHES t0=$EPOCHREALTIME
	nap "$WINDOW"
	snap_read
	c1=$SNAP_CPU_NS s1=$SNAP_SWITCHES t1=$EPOCHREALTIME
	HWM[$cfg]=$(tree_hwm_kb "$PROF_PID")
	stop_profiler
	el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	CPU[$cfg]=$(awk -v c=$((c1 - c0)) -v e="$el" 'BEGIN { printf "%.4f", 100 * c / 1e9 / e }')
	SW[$cfg]=$(awk -v s=$((s1 - s0)) -v e="$el" 'BEGIN { printf "%.1f", s / e }')
	echo "bench_idle: $cfg: ${CPU[$cfg]}% of a core, ${SW[$cfg]} wakeups/s, peak RSS $((HWM[$cfg] / 1024)) MiB"
done

ratio() { [ -n "${2:-}" ] && [ -n "${3:-}" ] && div "$2" "$3" "%.2f" || echo "n/a"; }
mkdir -p "$(dirname "$OUT")"
{
	echo "### At 19 Hz, $NCPU busy CPUs, ${WINDOW} s windows ($(date -u +%Y-%m-%d))"
	echo
	echo "| profiler | CPU (% of one core) | wakeups/s | peak RSS (MiB) |"
	echo "|---|---|---|---|"
	for cfg in $CONFIGS; do
		if [ -n "${NOTE[$cfg]:-}" ]; then
			echo "| $cfg | ${NOTE[$cfg]} | | |"
		else
			echo "| $cfg | ${CPU[$cfg]} | ${SW[$cfg]} | $(awk -v k="${HWM[$cfg]}" 'BEGIN { printf "%.1f", k / 1024 }') |"
		fi
	done
	echo
	if [ -n "${CPU[vigild]:-}" ]; then
		echo "| vigild over | CPU | wakeups | peak RSS | targets (issue 13) |"
		echo "|---|---|---|---|---|"
		for peer in bpftrace perf; do
			[ -n "${CPU[$peer]:-}" ] || continue
			target=$([ $peer = bpftrace ] && echo "CPU <= 1" || echo "CPU <= 3")
			echo "| $peer | $(ratio x "${CPU[vigild]}" "${CPU[$peer]}") | $(ratio x "${SW[vigild]}" "${SW[$peer]}") |" \
				"$(ratio x "${HWM[vigild]}" "${HWM[$peer]}") | $target |"
		done
		echo
		echo "vigild's peak RSS target: 16 MiB across its processes; measured $(awk -v k="${HWM[vigild]}" 'BEGIN { printf "%.1f", k / 1024 }') MiB."
	fi
} | tee "$OUT"
