#!/bin/bash
# tests/bench/bench_export.sh - what exporting profiles to Pyroscope costs
# (issue 11, "Benchmark"), part of make bench.  Runs as root (BPF).
#
# vigild pushes to tests/tools/pyro_receiver (--no-go-check: the oracle's go
# tool runs would compete with vigild for the two CPUs) while cpusplit keeps
# every CPU busy.  It measures, in one run:
#
#   cost ratio      vigild's userspace cost per sample (CPU time of all its
#                   processes, /proc/PID/task/*/schedstat, over samples =
#                   BPF run_cnt) with --export-url against without, at the
#                   default frequency; rounds alternate off/on so that drift
#                   hits both.  The ratio is of each mode's cheapest round:
#                   another tenant of the host only ever adds to a window's
#                   CPU, and one disturbed window swung the pooled ratio
#                   from 0.75 to 1.42 between two runs of the same build
#                   (docs/benchmarks.md); the pooled ratio is printed too.
#                   Target (issue 11): ratio <= 1.10.
#   uplink CPU      the uplink's CPU time over the pushes (requests) the
#                   receiver answered 200 in the export-on windows, and over
#                   the profiles (series) those pushes carried.
#   wire bytes      (request line + headers + body) of the accepted pushes
#                   over the samples they carry (the pprof samples/count
#                   totals); TLS and TCP framing not counted.
#   drain rate      after an outage of BENCH_EXPORT_OUTAGE seconds at
#                   --interval BENCH_EXPORT_DRAIN_INTERVAL: the backlog
#                   (spool files when the receiver comes back, and the
#                   profiles = series they hold) in profiles per second
#                   from the first push accepted to the last, the
#                   delay before the first, and whether it came oldest first
#                   with nothing missing.  The contract bounds it by
#                   --export-max-rate (default 10/s).
#
# Environment: BENCH_EXPORT_HZ (19, vigild's default), BENCH_EXPORT_SECONDS
# (60 per window), BENCH_EXPORT_ROUNDS (2), BENCH_EXPORT_INTERVAL (10,
# vigild's default), BENCH_EXPORT_OUTAGE (60), BENCH_EXPORT_DRAIN_INTERVAL
# (1), BENCH_STRICT=1 (exit 1 on a missed target).  Results also go to
# build/bench/export.md.
#
# Until vigild has --export-url (the push and spool work of issue 11) this
# prints one SKIP line and exits 0, so that make bench still runs the rest.
# vigild runs with --metrics-listen none on both sides of the comparison.

set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/lib_pyro.sh

HZ=${BENCH_EXPORT_HZ:-19}
WINDOW=${BENCH_EXPORT_SECONDS:-60}
ROUNDS=${BENCH_EXPORT_ROUNDS:-2}
INTERVAL=${BENCH_EXPORT_INTERVAL:-10}
OUTAGE=${BENCH_EXPORT_OUTAGE:-60}
DRAIN_INTERVAL=${BENCH_EXPORT_DRAIN_INTERVAL:-1}
NCPU=$(nproc)
OUT=$B/bench/export.md
VIGILD_TIMEOUT=$((ROUNDS * 2 * (WINDOW + 60) + OUTAGE + 1200)) # lib.sh's watchdog on vigild

die() { echo "bench_export: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (BPF)"
for f in "$VIGILD" "$PYRO_RECEIVER" "$WLD/cpusplit"; do
	[ -x "$f" ] || die "$f missing: run make first"
done
HELP=$("$VIGILD" --help 2>&1)
if ! grep -q -- '--export-url' <<<"$HELP" || ! grep -q -- '--spool-max-bytes' <<<"$HELP"; then
	echo "SKIP  export benchmark: $VIGILD has no --export-url or no --spool-max-bytes yet (issue 11 push and spool)"
	exit 0
fi
# The metrics page would bind 127.0.0.1:9464 in every run (and fail when a
# test elsewhere holds it); both sides of the comparison go without it.
COMMON=()
grep -q -- '--metrics-listen' <<<"$HELP" && COMMON+=(--metrics-listen none)
command -v jq >/dev/null || die "jq missing (make deps)"

WAS_STATS=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo 0)
sysctl -q kernel.bpf_stats_enabled=1 >/dev/null || die "cannot enable kernel.bpf_stats_enabled"
trap 'sysctl -q kernel.bpf_stats_enabled="$WAS_STATS" >/dev/null 2>&1; lib_cleanup' EXIT

# CPU time (ns) of every thread of every process in PID's tree.
tree_cpu_ns() {
	local p t sum=0 v
	for p in $(pid_tree "$1"); do
		for t in /proc/$p/task/*/schedstat; do
			read -r v _ <"$t" 2>/dev/null || continue
			sum=$((sum + v))
		done
	done
	echo "$sum"
}

# run_cnt summed over the perf_event BPF programs PID's tree holds.
tree_samples() {
	local p f id
	for p in $(pid_tree "$1"); do
		for f in /proc/$p/fdinfo/*; do awk '/^prog_id:/ {print $2}' "$f" 2>/dev/null; done
	done | sort -un | while read -r id; do
		bpftool prog show id "$id" 2>/dev/null | head -1
	done | awk '$2 == "perf_event" { for (i = 3; i < NF; i++) if ($i == "run_cnt") c += $(i + 1) }
		END { printf "%.0f\n", c }'
}

role_pid() { pgrep -P "$VIGILD_PID" -f "internal-role $1" | head -1; }

# proc_cpu_ns PID: CPU time (ns) of PID's own threads (0 when it is gone).
proc_cpu_ns() {
	local t sum=0 v
	[ -n "$1" ] || { echo 0; return; }
	for t in /proc/$1/task/*/schedstat; do
		read -r v _ <"$t" 2>/dev/null || continue
		sum=$((sum + v))
	done
	echo "$sum"
}

# spool_files DIR: the files waiting for their push, oldest first (contract:
# one cpu-<stamp>_<k>_<n>.push per interval, or a few parts, each holding
# the PushRequest of <n> series).
spool_files() { find "$1" -maxdepth 1 -name 'cpu-*_*_*.push' -printf '%f\n' 2>/dev/null | sort -t_ -k1,1 -k2,2n; }
# spool_series FILE...: the series (profiles) the files hold, from their names.
spool_series() { printf '%s\n' "$@" | sed -n 's/^cpu-[^_]*_[0-9]*_\([0-9]*\)\.push$/\1/p' | awk '{ n += $1 } END { print n + 0 }'; }

div() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (b > 0) printf f, a / b; else printf "n/a" }'; }

pyro_start bench --no-go-check || die "pyro_receiver did not start: $(cat "$T/bench.err")"

# ---------------------------------------------------------------------------
# 1. Cost with export off and on, and what the pushes carry.

declare -A CPU SAMPLES LEAST
CPU[off]=0 CPU[on]=0 SAMPLES[off]=0 SAMPLES[on]=0 LEAST[off]= LEAST[on]=
UPLINK_NS=0 PUSHES=0 PPROFILES=0 WIRE=0 PSAMPLES=0
ROUND_LINES=()

echo "bench_export: $NCPU CPUs busy (cpusplit), vigild --hz $HZ --interval $INTERVAL, $ROUNDS x (off, on) windows of ${WINDOW}s"
for ((round = 1; round <= ROUNDS; round++)); do
	for mode in off on; do
		dir=$T/cost.$mode.$round
		mkdir -p "$dir"
		args=(--hz "$HZ" --interval "$INTERVAL" --duration 0 --output "$dir/profiles" "${COMMON[@]}")
		[ "$mode" = on ] && args+=(--export-url "$PYRO_URL")
		vigild_start "$dir/vigild.log" "${args[@]}"
		vigild_wait_ready 30 || die "vigild ($mode) not sampling after 30 s: $(tail -3 "$dir/vigild.log")"
		"$WLD/cpusplit" --seconds $((WINDOW + 30)) --threads "$NCPU" >/dev/null &
		wl=$!
		# One interval to settle (the first push, libcurl's first connection).
		sleep "$INTERVAL"
		s0=$(tree_samples "$VIGILD_PID") c0=$(tree_cpu_ns "$VIGILD_PID") t0=$(now_ms)
		up=$(role_pid uplink) co=$(role_pid collector)
		u0=$(proc_cpu_ns "$up") k0=$(proc_cpu_ns "$co") m0=$(proc_cpu_ns "$VIGILD_PID")
		sleep "$WINDOW"
		s1=$(tree_samples "$VIGILD_PID") c1=$(tree_cpu_ns "$VIGILD_PID") t1=$(now_ms)
		u1=$(proc_cpu_ns "$up") k1=$(proc_cpu_ns "$co") m1=$(proc_cpu_ns "$VIGILD_PID")
		kill -0 "$VIGILD_PID" 2>/dev/null || die "vigild ($mode) exited during the window: $(tail -3 "$dir/vigild.log")"
		kill "$wl" 2>/dev/null
		wait "$wl" 2>/dev/null
		kill -INT "$VIGILD_PID"
		vigild_wait 30 || echo "bench_export: vigild ($mode) did not exit within 30 s of SIGINT"
		CPU[$mode]=$((CPU[$mode] + c1 - c0))
		SAMPLES[$mode]=$((SAMPLES[$mode] + s1 - s0))
		cost=$(div $((c1 - c0)) $(((s1 - s0) * 1000)) '%.2f')
		LEAST[$mode]=$(awk -v a="${LEAST[$mode]}" -v b="$cost" \
			'BEGIN { if (b == "n/a") print a; else if (a == "" || b + 0 < a + 0) print b; else print a }')
		line="round $round export $mode: $cost us/sample over $((s1 - s0)) samples"
		# Where it goes, in CPU ms per second of window.
		ms_s() { div "$1" "$((t1 - t0))" '%.2f'; }
		line+=" (ms/s: monitor $(ms_s $(((m1 - m0) / 1000))), collector $(ms_s $(((k1 - k0) / 1000)))"
		line+=", uplink $(ms_s $(((u1 - u0) / 1000))))"
		if [ "$mode" = on ]; then
			win="(.time_unix_ms >= $t0) and (.time_unix_ms < $t1)"
			read -r n wire <<<"$(pyro_requests "$win and .status == 200" |
				jq -s '[length, (map(.header_bytes + .body_bytes) | add // 0)] | @tsv' -r)"
			read -r np ps <<<"$(pyro_samples "$win and .status == 200" |
				jq -s '[length, (map(.totals[0] // 0) | add // 0)] | @tsv' -r)"
			PUSHES=$((PUSHES + n)) PPROFILES=$((PPROFILES + np)) WIRE=$((WIRE + wire)) PSAMPLES=$((PSAMPLES + ps))
			UPLINK_NS=$((UPLINK_NS + u1 - u0))
			line+=", $n pushes of $np profiles accepted, uplink $(div $((u1 - u0)) $((n * 1000)) '%.1f') us/push"
			[ -n "$up" ] || line+=" (no uplink process found)"
		fi
		echo "bench_export: $line"
		ROUND_LINES+=("$line")
	done
done

# ---------------------------------------------------------------------------
# 2. The backlog after an outage.

dir=$T/drain
mkdir -p "$dir"
echo "bench_export: drain: --interval $DRAIN_INTERVAL, receiver down for ${OUTAGE}s"
vigild_start "$dir/vigild.log" --hz "$HZ" --interval "$DRAIN_INTERVAL" --duration 0 \
	--output "$dir/profiles" --export-url "$PYRO_URL" "${COMMON[@]}"
vigild_wait_ready 30 || die "vigild (drain) not sampling after 30 s: $(tail -3 "$dir/vigild.log")"
"$WLD/cpusplit" --seconds $((OUTAGE + 1200)) --threads "$NCPU" >/dev/null &
wl=$!
DRAIN_NOTE=
before=$(pyro_samples '.status == 200' | wc -l)
pyro_wait_samples 60 $((before + 3)) || DRAIN_NOTE+="fewer than 3 pushes before the outage; "
pyro_stop
t_down=$(now_ms)
sleep "$OUTAGE"
mapfile -t backlog < <(spool_files "$dir/profiles")
backlog_series=$(spool_series "${backlog[@]}")
backlog_bytes=$(cd "$dir/profiles" && cat "${backlog[@]}" 2>/dev/null | wc -c)
pyro_restart || die "pyro_receiver did not come back on port $PYRO_PORT"
t_up=$(now_ms)
still() { local f; for f in "${backlog[@]}"; do [ -e "$dir/profiles/$f" ] && return 0; done; return 1; }
# The uplink's backoff reaches minutes after a long outage: allow for it.
wait_for 900 eval '! still' || DRAIN_NOTE+="backlog not drained 900 s after the receiver came back; "
t_done=$(now_ms)
kill "$wl" 2>/dev/null
wait "$wl" 2>/dev/null
kill -INT "$VIGILD_PID"
vigild_wait 30
pyro_stop
# The backlog as it arrived: accepted after the restart, profiled before it.
pyro_samples ".status == 200 and .time_unix_ms >= $t_up and (.time_nanos / 1000000) < $t_up" >"$dir/arrived"
n_arr=$(wc -l <"$dir/arrived")
n_ids=$(jq -r .id "$dir/arrived" | sort -u | wc -l)
first=$(head -1 "$dir/arrived" | jq .time_unix_ms)
last=$(tail -1 "$dir/arrived" | jq .time_unix_ms)
ordered=$(jq -s '[.[].time_nanos] as $t | $t == ($t | sort)' "$dir/arrived")
# A push carries a file's n series and the next waits n / --export-max-rate:
# the rate is the series pushed before the last push over the time to it.
n_last=0
[ "$n_arr" -gt 0 ] &&
	n_last=$(jq -s --argjson s "$(tail -1 "$dir/arrived" | jq .seq)" 'map(select(.seq == $s)) | length' "$dir/arrived")
rate=$(div $((n_arr > n_last ? n_arr - n_last : 0)) "$(((${last:-0} - ${first:-0})))" '%.2f')
rate=$([ "$rate" = n/a ] && echo n/a || awk -v r="$rate" 'BEGIN { printf "%.2f", r * 1000 }')

# ---------------------------------------------------------------------------
# Report.

target() { if [ "$2" = 1 ]; then echo "PASS  $1"; else echo "MISS  $1"; fi; }

pooled=$(awk -v a="${CPU[on]}" -v b="${SAMPLES[on]}" -v c="${CPU[off]}" -v d="${SAMPLES[off]}" \
	'BEGIN { if (b > 0 && d > 0 && c > 0) printf "%.3f", (a / b) / (c / d); else print "n/a" }')
ratio=$(awk -v a="${LEAST[on]}" -v b="${LEAST[off]}" \
	'BEGIN { if (a != "" && b + 0 > 0) printf "%.3f", a / b; else print "n/a" }')
{
	echo "Vigil export benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $NCPU CPUs"
	echo "vigild --hz $HZ --interval $INTERVAL, $ROUNDS x (off, on) windows of ${WINDOW}s, cpusplit on every CPU"
	echo
	printf '%s\n' "${ROUND_LINES[@]}"
	echo
	echo "| measure | value |"
	echo "|---------|-------|"
	echo "| userspace us/sample, export off | ${LEAST[off]:-n/a} (cheapest round; pooled $(div "${CPU[off]}" "$((SAMPLES[off] * 1000))" '%.2f')) |"
	echo "| userspace us/sample, export on | ${LEAST[on]:-n/a} (cheapest round; pooled $(div "${CPU[on]}" "$((SAMPLES[on] * 1000))" '%.2f')) |"
	echo "| cost ratio on/off | $ratio (cheapest rounds; pooled $pooled) |"
	echo "| uplink CPU per push | $(div "$UPLINK_NS" "$((PUSHES * 1000))" '%.1f') us ($PUSHES pushes) |"
	echo "| uplink CPU per pushed profile | $(div "$UPLINK_NS" "$((PPROFILES * 1000))" '%.1f') us ($PPROFILES profiles) |"
	echo "| bytes on the wire per sample | $(div "$WIRE" "$PSAMPLES" '%.1f') ($WIRE bytes, $PSAMPLES samples) |"
	echo "| backlog after ${OUTAGE}s down | ${#backlog[@]} files, $backlog_series profiles, $backlog_bytes bytes |"
	echo "| drain rate | $rate profiles/s ($n_arr arrived, $n_ids distinct IDs) |"
	echo "| first push after the restart | $(div "$((${first:-t_up} - t_up))" 1000 '%.1f') s |"
	echo "| backlog gone after | $(div "$((t_done - t_up))" 1000 '%.1f') s |"
	echo
	target "vigild userspace cost with export within 10% of without: ratio $ratio" \
		"$(awk -v r="$ratio" 'BEGIN { print (r != "n/a" && r <= 1.10) ? 1 : 0 }')"
	target "every backlog profile arrived after the outage: $backlog_series spooled, $n_ids distinct arrived" \
		"$([ "$n_ids" -ge "$backlog_series" ] && [ "$backlog_series" -gt 0 ] && echo 1 || echo 0)"
	target "the backlog drained oldest first" "$([ "$ordered" = true ] && echo 1 || echo 0)"
	target "the drain rate stays within --export-max-rate (10/s): $rate/s" \
		"$(awk -v r="$rate" 'BEGIN { print (r != "n/a" && r <= 10.5) ? 1 : 0 }')"
	[ -z "$DRAIN_NOTE" ] || echo "note: $DRAIN_NOTE"
} | tee "$T/report"
mkdir -p "$(dirname "$OUT")" && cp "$T/report" "$OUT"
if [ "${BENCH_STRICT:-0}" = 1 ] && grep -q '^MISS' "$T/report"; then
	exit 1
fi
exit 0
