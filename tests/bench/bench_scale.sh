#!/bin/bash
# tests/bench/bench_scale.sh - how the collector's cost grows with the
# host's work (issue 13): its CPU per interval and its peak RSS as the
# host runs more processes, more distinct stacks and more new processes a
# second, and what its caches' bounds did meanwhile.
#
# Three axes, three points each, a fresh vigild for every point:
#
#   processes      N (10, 100, 1000) copies of tests/workloads/stackfan
#                  (8 paths each), each spinning 1/N of the time, so that
#                  together they keep one CPU busy whatever N (1000
#                  spinners starve the host: vigild's own start-up then
#                  takes over a minute); 99 Hz, DWARF (the default),
#                  10-second intervals
#   stacks         one stackfan per CPU, P paths each (128, 5120, 51200,
#                  so that an interval offers ~1k, ~10k, ~100k distinct
#                  stacks: each path is one or two stacks in each process,
#                  its leaf spinning at one of two instructions, and a
#                  sample in the kernel's timer or scheduler adds the
#                  kernel's frames); 4999 Hz so that an interval holds 200k
#                  samples, frame pointers (the workload has them; DWARF
#                  copies would be 80 MB/s through the ring), 20-second
#                  intervals.  At ~100k the aggregation's bound (16 MiB)
#                  ends intervals early: a profile then holds ~40k
#                  distinct stacks, and an interval several profiles
#   new processes  R (1, 10, 100) a second of tests/workloads/shortlived,
#                  each living 150 ms; 99 Hz, DWARF, 10-second intervals
#
# For each point, after one interval of warm-up, over the next two (or
# the next two profiles, when the aggregation's bound ends them early):
#
#   samples        samples per interval (the profiles' comments, over the
#                  window's length)
#   distinct       distinct stacks per profile (the profiles' samples: a
#                  stack and its labels), and in brackets the workload's
#   CPU ms         the collector's CPU per interval (over the window's
#                  length)
#   us/sample      the same per sample
#   monitor CPU    the monitor's CPU per interval, the same way: what it
#                  spends opening maps and files for the collector (a new
#                  process's cost is shared between the two)
#   RSS MiB        the collector's peak RSS (VmHWM), warm-up included
#   held           processes and files the symbolizer holds at the end
#   bounds         what the caches' bounds did since the start (the
#                  profiles' "vigil: caches" comment): processes and files
#                  aged out or refused at a limit, CFI evicted, libunwind
#                  spaces evicted, learnt rules replaced, intervals ended
#                  early because the aggregation was full
#
# Results go to build/bench/scale.md; docs/benchmarks.md quotes them.
# The harness starts no process while a point runs (see profiles_in and nap in lib_bench.sh).
# Environment: BENCH_SCALE_AXES ("processes stacks newprocs"),
# BENCH_SCALE_NPROCS ("10 100 1000"), BENCH_SCALE_PATHS ("128 5120 51200").

set -u
export LC_ALL=C # $EPOCHREALTIME with a decimal point
cd "$(dirname "$0")/../.."

B=build
NCPU=$(nproc)
OUT=$B/bench/scale.md
PQ=$B/tests/tools/pprof_query
WL=$B/tests/workloads
AXES=${BENCH_SCALE_AXES:-processes stacks newprocs}

die() { echo "bench_scale: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
[ -x $B/vigild ] && [ -x "$PQ" ] && [ -x $WL/stackfan ] && [ -x $WL/shortlived ] || die "run make first"

. tests/bench/lib_bench.sh

TMP=$(mktemp -d /tmp/vigil-bench-scale.XXXXXX)
nap_init "$TMP" || die "mkfifo $TMP/nap.fifo"
PROF_PID=
LOAD_PIDS=()
SPAWNER=
stop_load() {
	[ -n "$SPAWNER" ] && kill "$SPAWNER" 2>/dev/null && wait "$SPAWNER" 2>/dev/null
	SPAWNER=
	[ ${#LOAD_PIDS[@]} -gt 0 ] && kill -KILL "${LOAD_PIDS[@]}" 2>/dev/null
	[ ${#LOAD_PIDS[@]} -gt 0 ] && wait "${LOAD_PIDS[@]}" 2>/dev/null
	LOAD_PIDS=()
	pkill -KILL -f "$WL/shortlived" 2>/dev/null
	true
}
cleanup() {
	stop_load
	[ -n "$PROF_PID" ] && kill -KILL "$PROF_PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# profiles DIR: the profiles written so far, oldest first.
profiles() { ls "$1"/*.pb.gz 2>/dev/null | sort; }
# Between a point's start and its window's end the harness starts no
# process, not even a subshell ($(...) forks one): each would be one more
# for the collector to note (about a millisecond of its CPU) and its
# stacks more distinct stacks in the profiles.  So the helpers below set
# variables instead of printing (as profiles_in does, lib_bench.sh), and
# wait with nap.
# wait_profiles DIR N SECONDS: until DIR holds N profiles; false on timeout.
wait_profiles() {
	local i
	for ((i = 0; i < $3 * 4; i++)); do
		profiles_in "$1"
		[ "$PROFILES_N" -ge "$2" ] && return 0
		kill -0 "$PROF_PID" 2>/dev/null || return 1
		nap 0.25
	done
	return 1
}

# collector_of PID SECONDS: sets COLL to the pid of vigild PID's collector
# (the process whose parent is PID and whose argv[2] is "collector"), or
# empty if it has none within SECONDS (this kernel has no
# /proc/PID/task/TID/children: every process's stat is read).
collector_of() {
	local i d stat rest ppid cmd
	COLL=
	for ((i = 0; i < $2 * 10; i++)); do
		for d in /proc/[0-9]*; do
			stat=
			read -r stat <"$d/stat" 2>/dev/null || continue
			rest=${stat##*) }
			read -r _ ppid _ <<<"$rest"
			[ "$ppid" = "$1" ] || continue
			cmd=
			{ read -r -d '' _ && read -r -d '' _ && read -r -d '' cmd; } <"$d/cmdline" 2>/dev/null
			[ "$cmd" = collector ] && COLL=${d#/proc/} && return 0
		done
		nap 0.1
	done
}

# comment FILE KEY: KEY's value in FILE's "vigil: ..." comments (0 if none).
comment() {
	$PQ info "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=\([0-9]*\)$/\1/p" | head -1 | grep . || echo 0
}

ROWS=()
# point AXIS LABEL INTERVAL VIGILD-ARGS...: one measurement, the load already running.
point() {
	local axis=$1 label=$2 interval=$3 dir coll c0 c1 m0 m1 t0 t1 win f1 f2 v s=0 d=0 w=0 n hwm last
	shift 3
	dir=$TMP/$axis-$label
	mkdir -p "$dir"
	$B/vigild --interval "$interval" --duration 0 --no-top --metrics-listen none \
		--output "$dir/profiles" "$@" >"$dir/log" 2>&1 &
	PROF_PID=$!
	# From here to the window's end: no process started (above)
	if ! wait_profiles "$dir/profiles" 1 $((interval * 3 + 30)); then
		ROWS+=("| $axis | $label | vigild wrote no profile: $(tail -1 "$dir/log") |")
		stop_profiler
		return
	fi
	collector_of "$PROF_PID" 10
	coll=$COLL
	if [ -z "$coll" ]; then
		ROWS+=("| $axis | $label | vigild's collector not found among its children |")
		stop_profiler
		return
	fi
	SNAP_PIDS=("$PROF_PID") SNAP_PROGS=()
	snap_read
	m0=$SNAP_CPU_NS
	SNAP_PIDS=("$coll")
	snap_read
	c0=$SNAP_CPU_NS t0=$EPOCHREALTIME
	profiles_in "$dir/profiles"
	n=$PROFILES_N
	if ! wait_profiles "$dir/profiles" $((n + 2)) $((interval * 3 + 30)); then
		ROWS+=("| $axis | $label | vigild stopped writing profiles: $(tail -1 "$dir/log") |")
		stop_profiler
		return
	fi
	snap_read
	c1=$SNAP_CPU_NS t1=$EPOCHREALTIME
	SNAP_PIDS=("$PROF_PID")
	snap_read
	m1=$SNAP_CPU_NS
	hwm=$(awk '/^VmHWM:/ {print $2}' /proc/"$coll"/status 2>/dev/null)
	stop_profiler
	f1=$(profiles "$dir/profiles" | sed -n "$((n + 1))p")
	f2=$(profiles "$dir/profiles" | sed -n "$((n + 2))p")
	for f in "$f1" "$f2"; do
		s=$((s + $(comment "$f" samples)))
		v=$($PQ count "$f") || v=0
		d=$((d + ${v:-0}))
		v=$($PQ count --label comm="$WL_COMM" "$f") || v=0
		w=$((w + ${v:-0}))
	done
	last=$f2
	# per interval: over the window's length, which is two intervals
	# unless the aggregation's bound ended some early
	win=$(awk -v a="$t0" -v b="$t1" -v i="$interval" 'BEGIN { printf "%.4f", (b - a) / i }')
	ROWS+=("| $axis | $label | $(div "$s" "$win" '%.0f') | $((d / 2)) ($((w / 2))) | $(div $((c1 - c0)) "$(awk -v w="$win" 'BEGIN { print w * 1e6 }')" '%.1f') | $(div $((c1 - c0)) $((s * 1000)) '%.2f') | $(div $((m1 - m0)) "$(awk -v w="$win" 'BEGIN { print w * 1e6 }')" '%.1f') | $(div "${hwm:-0}" 1024 '%.1f') | $(comment "$last" processes) / $(comment "$last" files) | aged $(comment "$last" processes_aged)/$(comment "$last" files_aged), refused $(comment "$last" processes_refused)/$(comment "$last" files_refused), cfi $(comment "$last" cfi_evicted), spaces $(comment "$last" unwind_spaces_evicted), rules $(comment "$last" rules_replaced), early $(comment "$last" early_flushes) |")
	echo "bench_scale: $axis $label done" >&2
}

axis_processes() {
	local n i
	for n in ${BENCH_SCALE_NPROCS:-10 100 1000}; do
		LOAD_PIDS=()
		# each stopped as soon as it starts, so that the shell starting
		# the next ones does not compete with hundreds of spinners
		for ((i = 0; i < n; i++)); do
			$WL/stackfan --paths 8 --us 1000 --duty "$(awk -v n="$n" 'BEGIN { printf "%.6f", 1 / n }')" --seconds 600 &
			LOAD_PIDS+=($!)
			kill -STOP $!
		done
		kill -CONT "${LOAD_PIDS[@]}"
		WL_COMM=stackfan point processes "$n processes" 10 --hz 99
		stop_load
	done
}

axis_stacks() {
	local paths i
	# ~1k, ~10k, ~100k distinct stacks offered in an interval of 200k
	# samples (above)
	for paths in ${BENCH_SCALE_PATHS:-128 5120 51200}; do
		LOAD_PIDS=()
		for ((i = 0; i < NCPU; i++)); do
			$WL/stackfan --paths "$paths" --us 20 --seconds 600 &
			LOAD_PIDS+=($!)
		done
		WL_COMM=stackfan point stacks "$paths paths a process" 20 --hz 4999 --max-hz 5000 --unwind frame-pointer
		stop_load
	done
}

axis_newprocs() {
	local rate
	for rate in 1 10 100; do
		# one process every 1/rate seconds, each living 150 ms
		(
			gap=$(awk -v r="$rate" 'BEGIN { printf "%.4f", 1 / r }')
			while :; do
				$WL/shortlived --ms 150 &
				nap "$gap"
			done
		) &
		SPAWNER=$!
		WL_COMM=shortlived point newprocs "$rate a second" 10 --hz 99
		stop_load
	done
}

for a in $AXES; do
	case $a in
	processes) axis_processes ;;
	stacks) axis_stacks ;;
	newprocs) axis_newprocs ;;
	*) die "unknown axis $a (processes, stacks, newprocs)" ;;
	esac
done

mkdir -p "$(dirname "$OUT")"
{
	echo "Vigil scale benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $NCPU CPUs"
	echo
	echo "| axis | point | samples/interval | distinct stacks/profile (the workload's) | collector CPU ms/interval | us/sample | monitor CPU ms/interval | collector peak RSS MiB | processes / files held | bounds since start (aged proc/file, refused proc/file, CFI evicted, unwind spaces evicted, rules replaced, early flushes) |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${ROWS[@]}"
} | tee "$OUT"
