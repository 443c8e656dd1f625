#!/bin/bash
# tests/bench/bench_rollout.sh - a staged rollout to simulated agents (make
# bench-cp; docs/benchmarks.md "Staged rollouts"), issue 10:
#
#   one policy rolled out through stages BENCH_ROLLOUT_STAGES
#   (1,10%,50%,100%) to BENCH_ROLLOUT_AGENTS (10000) agents of
#   build/tests/bench/cp_load (each its own certificate, instance_uid and
#   keep-alive mutual-TLS connection, polling every BENCH_ROLLOUT_POLL_MS,
#   5000, and reporting APPLIED at its next message after a config came),
#   with a bake of BENCH_ROLLOUT_BAKE (2s), measured from `vigilctl rollout
#   start` to the state "completed": the time, each stage's time, and
#   vigil-cp's CPU over it (all servers', from /proc/PID/stat).
#
#   sqlite   one vigil-cp on a SQLite file, all agents on it;
#   pg2      two vigil-cp on one PostgreSQL 15 (lib_pg.sh), half of the
#            agents on each (one cp_load each), the rollout started through
#            the first: each server advances it when it holds its lock.
#
# The floor: a stage cannot end before its agents' next poll (to be offered
# the policy), their next one (to report APPLIED), the bake and a tick, so
# with these defaults a stage takes at least about 2 polls + 2 s + 1 s.
# Results go to build/bench/rollout_results.md too.

set -u
cd "$(dirname "$0")/../.."

N=${BENCH_ROLLOUT_AGENTS:-10000}
POLL=${BENCH_ROLLOUT_POLL_MS:-5000}
STAGES=${BENCH_ROLLOUT_STAGES:-1,10%,50%,100%}
BAKE=${BENCH_ROLLOUT_BAKE:-2s}
LOAD=build/tests/bench/cp_load
OUT=build/bench/rollout_results.md

die() { echo "bench-rollout: $*" >&2; exit 1; }
[ -x "$LOAD" ] && [ -x build/vigil-cp ] && [ -x build/vigilctl ] || die "run make first"

. tests/integration/lib.sh
. tests/integration/lib_opamp.sh
. tests/integration/lib_pg.sh

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cp_pki "$T/pki" >/dev/null || die "could not make the PKI"
cp_policy "$T/p1.yaml" 1 web && cp_sign "$T/pki" "$T/p1.yaml" || die "could not sign the policy"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
JG=build/tests/tools/json_get
declare -A R

# load NAME PID COUNT: one cp_load with COUNT agents on the current server, in the background.
load() {
	stdbuf -oL "$LOAD" --connect "127.0.0.1:$CP_PORT" --ca "$T/pki/server-ca.pem" --mint-ca "$T/pki/agent-ca.pem" \
		--mint-key "$T/pki/agent-ca.key" --agents "$3" --poll-ms "$POLL" --window 3600 --ramp 64 \
		--pid "$2" --label env=bench >"$T/load-$1.out" 2>&1 &
	SPAWNED+=("$!")
	LOAD_PIDS+=("$!")
}
warm() { grep -q '^warm-up:' "$T/load-$1.out"; }

# run NAME SERVERS...: the rollout on the named servers (already started); fills R[NAME,...].
run() {
	local name=$1 first=$2 s per t0 c0 c1 state id i out stage last_stage=-1 pids=() ends=()
	shift
	per=$((N / $#))
	LOAD_PIDS=()
	for s in "$@"; do
		pid=${s}_PID
		pids+=("${!pid}")
		cp_on "$s" load "$name-$s" "${!pid}" "$per"
	done
	for s in "$@"; do
		wait_for 600 warm "$name-$s" || die "$name: cp_load on $s did not finish its warm-up: $(tail -3 "$T/load-$name-$s.out")"
		grep '^warm-up:' "$T/load-$name-$s.out"
	done
	cp_on "$first" vctl "$T/pki" policy upload "$T/p1.yaml" "$T/p1.yaml.sig" >/dev/null || die "upload"
	c0=0
	for s in "${pids[@]}"; do c0=$((c0 + $(ticks "$s"))); done
	t0=$(now_ms)
	out=$(cp_on "$first" vctl "$T/pki" rollout start 1 --selector env=bench --stages "$STAGES" --bake "$BAKE" \
		--report-timeout 10m) || die "rollout start: $out"
	id=$("$JG" .id <<<"$out")
	while :; do
		out=$(cp_on "$first" vctl "$T/pki" rollout status "$id") || die "rollout status: $out"
		state=$("$JG" .state <<<"$out")
		stage=$("$JG" .stage <<<"$out")
		while [ "$last_stage" -lt "$stage" ] && [ "$state" = running ]; do
			last_stage=$((last_stage + 1))
			[ "$last_stage" -gt 0 ] && ends+=("$(($(now_ms) - t0))")
		done
		[ "$state" = running ] || break
		[ $(($(now_ms) - t0)) -lt 900000 ] || die "$name: not completed after 900 s: $out"
		sleep 0.25
	done
	R[$name,ms]=$(($(now_ms) - t0))
	ends+=("${R[$name,ms]}")
	[ "$state" = completed ] || die "$name: the rollout ended $state: $out"
	c1=0
	for s in "${pids[@]}"; do c1=$((c1 + $(ticks "$s"))); done
	R[$name,cpu]=$(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
	R[$name,cores]=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v ms="${R[$name,ms]}" 'BEGIN { printf "%.3f", t / hz / (ms / 1000) }')
	R[$name,stages]=$(printf '%s ' "${ends[@]}" | awk '{ p = 0; for (i = 1; i <= NF; i++) { printf "%s%.1f", (i > 1 ? " / " : ""), ($i - p) / 1000; p = $i } }')
	R[$name,members]=$("$JG" .member_count <<<"$out")
	R[$name,applied]=$("$JG" .stage_status[3].succeeded <<<"$out")
	# cp_load's window is an hour: it is stopped here, its own figures unused.
	for i in "${LOAD_PIDS[@]}"; do kill -KILL "$i" 2>/dev/null; done
	for i in "${LOAD_PIDS[@]}"; do wait "$i" 2>/dev/null; done
	echo "bench-rollout: $name: completed in ${R[$name,ms]} ms (stages: ${R[$name,stages]} s), vigil-cp ${R[$name,cpu]} s CPU"
}

# SQLite, one server.
cp_start_named S1 "$T/pki" "$T/cp.db" "$T/cp-s1.log" --log-level warn || die "vigil-cp did not start"
run sqlite S1
cp_on S1 cp_stop TERM

# PostgreSQL, two servers.
pg_start || die "PostgreSQL did not start: $PG_ERR"
cp_start_named A "$T/pki" "$PG_URL" "$T/cp-a.log" --log-level warn &&
	cp_start_named B "$T/pki" "$PG_URL" "$T/cp-b.log" --log-level warn || die "vigil-cp on PostgreSQL did not start"
run pg2 A B
cp_on A cp_stop TERM
cp_on B cp_stop TERM

mkdir -p build/bench
{
	echo "a staged rollout to $N simulated agents ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, commit" \
		"$(git rev-parse --short HEAD 2>/dev/null || echo ?), load average $(cut -d' ' -f1-3 /proc/loadavg))"
	echo "stages $STAGES, bake $BAKE, agents polling every $POLL ms"
	echo
	echo "| | SQLite, one vigil-cp | PostgreSQL, two vigil-cp |"
	echo "|---|---|---|"
	echo "| members | ${R[sqlite,members]:-?} | ${R[pg2,members]:-?} |"
	echo "| start to 100% applied and baked (s) | $(awk -v m="${R[sqlite,ms]:-0}" 'BEGIN{printf "%.1f", m/1000}') | $(awk -v m="${R[pg2,ms]:-0}" 'BEGIN{printf "%.1f", m/1000}') |"
	echo "| each stage (s) | ${R[sqlite,stages]:-?} | ${R[pg2,stages]:-?} |"
	echo "| vigil-cp CPU over the rollout (s, all servers) | ${R[sqlite,cpu]:-?} | ${R[pg2,cpu]:-?} |"
	echo "| vigil-cp CPU (cores, average) | ${R[sqlite,cores]:-?} | ${R[pg2,cores]:-?} |"
	echo "| last stage's agents succeeded | ${R[sqlite,applied]:-?} | ${R[pg2,applied]:-?} |"
} | tee "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
exit 0
