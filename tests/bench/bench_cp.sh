#!/bin/bash
# tests/bench/bench_cp.sh - vigil-cp under simulated fleets (make bench-cp).
#
# For each configuration AGENTS:POLL_MS it starts a fresh vigil-cp on a new
# SQLite file (so that its peak RSS is that run's), uploads a signed policy
# and assigns it to every simulated agent (env=bench), and runs
# build/tests/bench/cp_load: AGENTS agents, each with its own certificate
# (minted by cp_load under the test agent CA), its own instance_uid and one
# keep-alive mutual-TLS connection, polling every POLL_MS after a warm-up in
# which each connects, reports full state and applies the policy.  Over a
# window of BENCH_CP_WINDOW seconds it measures requests/s, latency, errors,
# vigil-cp's CPU and peak RSS, cp_load's own CPU and what the rest of the
# host used.  Then one table, with the goals of issue 9 and the anchors.
#
#   1000:30000   1k agents at opamp-go's default 30 s poll (33 req/s)
#   1000:3000    1k agents at 333 req/s: the 10k run's rate on 1k connections
#   10000:30000  10k agents at 30 s (333 req/s): the goal's configuration
#   10000:3000   10k agents at 3 s (3333 req/s): ten times the goal's rate,
#                to show the headroom
#
# Environment: BENCH_CP_RUNS ("1000:30000 1000:3000 10000:30000 10000:3000"),
# BENCH_CP_WINDOW (60), BENCH_CP_RAMP (handshakes in flight, 64),
# BENCH_CP_DBDIR (where the SQLite files go: $T, under /tmp; e.g. /dev/shm
# to take the disk out of the figures),
# BENCH_STRICT=1 (exit 1 when the 10k run misses a goal).
# Results also go to build/bench/cp_results.md.  docs/benchmarks.md
# ("Control plane") has the method and the figures.

set -u
cd "$(dirname "$0")/../.."

RUNS=${BENCH_CP_RUNS:-1000:30000 1000:3000 10000:30000 10000:3000}
WINDOW=${BENCH_CP_WINDOW:-60}
RAMP=${BENCH_CP_RAMP:-64}
LOAD=build/tests/bench/cp_load
OUT=build/bench/cp_results.md

die() { echo "bench-cp: $*" >&2; exit 1; }

[ -x build/vigil-cp ] || die "build/vigil-cp missing: run make (the control plane must be built)"
[ -x build/vigilctl ] || die "build/vigilctl missing: run make"
[ -x "$LOAD" ] || die "$LOAD missing: run make"

# lib.sh gives $T (removed at exit), spawn/cleanup and now_ms.
. tests/integration/lib.sh
. tests/integration/lib_opamp.sh

# 10k connections on each side, and some to spare.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 10100 ] || echo "bench-cp: warning: only $(ulimit -n) file descriptors" >&2

echo "bench-cp: making the PKI and a signed policy"
cp_pki "$T/pki" || die "could not make the PKI"
cp_policy "$T/policy.yaml" 1 web && cp_sign "$T/pki" "$T/policy.yaml" || die "could not sign the policy"

declare -A R

# run AGENTS POLL_MS: one configuration on a fresh vigil-cp; fills R[key,field].
run() {
	local n=$1 poll=$2 key=$1:$2 res f
	local db=${BENCH_CP_DBDIR:-$T}/cp-$n-$poll.db log=$T/cp-$n-$poll.log
	rm -f "$db"*
	CP_PORT=$(free_port)
	cp_start "$T/pki" "$db" "$log"
	cp_wait_ready "$T/pki" 20 || { tail -5 "$log" >&2; die "vigil-cp did not start"; }
	vctl "$T/pki" policy upload "$T/policy.yaml" "$T/policy.yaml.sig" >/dev/null 2>"$T/vctl.err" &&
		vctl "$T/pki" assign 1 --selector env=bench >/dev/null 2>>"$T/vctl.err" ||
		{ cat "$T/vctl.err" >&2; die "could not assign the policy"; }
	echo
	echo "bench-cp: $n agents polling every $poll ms, window $WINDOW s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	"$LOAD" --connect "127.0.0.1:$CP_PORT" --ca "$T/pki/server-ca.pem" --mint-ca "$T/pki/agent-ca.pem" \
		--mint-key "$T/pki/agent-ca.key" --agents "$n" --poll-ms "$poll" --window "$WINDOW" --ramp "$RAMP" \
		--pid "$CP_PID" --label env=bench | tee "$T/load.out"
	res=$(grep '^result ' "$T/load.out")
	[ -n "$res" ] || { tail -5 "$log" >&2; die "cp_load gave no result"; }
	for f in rps target_rps sent ok errors late reconnects resent p50_ms p99_ms max_ms cp_cores cp_hwm_kb gen_cores \
		other_cores connect_s connect_failed warm_cp_ms_per_agent warm_p50_ms warm_p99_ms cp_write_kib_per_req; do
		R[$key,$f]=$(sed -n "s/.* $f=\([^ ]*\).*/\1/p" <<<"$res")
	done
	R[$key,cpu_us]=$(awk -v c="$(sed -n 's/.* cp_cpu_s=\([^ ]*\).*/\1/p' <<<"$res")" -v n="${R[$key,ok]}" \
		'BEGIN { if (n > 0) printf "%.0f", c * 1e6 / n; else print "?" }')
	cp_stop TERM
}

for r in $RUNS; do
	run "${r%%:*}" "${r##*:}"
done

# ---------------------------------------------------------------------------
# The table.

mkdir -p build/bench
{
	echo "vigil-cp under simulated agents ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, window $WINDOW s," \
		"commit $(git rev-parse --short HEAD 2>/dev/null || echo ?), load average $(cut -d' ' -f1-3 /proc/loadavg))"
	echo
	printf '| %-36s' "configuration"
	for r in $RUNS; do printf '| %-18s' "$((${r%%:*}))/$((${r##*:} / 1000))s"; done
	printf '| %-22s|\n' "goal"
	printf '|%s' "-------------------------------------"
	for r in $RUNS; do printf '|%s' "-------------------"; done
	printf '|%s|\n' "-----------------------"
	row() {
		local label=$1 field=$2 fmt=$3 goal=$4 r v
		printf '| %-36s' "$label"
		for r in $RUNS; do
			v=${R[$r,$field]:-?}
			# shellcheck disable=SC2059
			[ "$v" = "?" ] && printf '| %-18s' "?" || printf "| %-18s" "$(printf "$fmt" "$v")"
		done
		printf '| %-22s|\n' "$goal"
	}
	row "target requests/s" target_rps "%s" "333 (10000/30s)"
	row "requests/s answered 200" rps "%s" "333 (10000/30s)"
	row "latency p50 (ms)" p50_ms "%s" ""
	row "latency p99 (ms)" p99_ms "%s" "< 100"
	row "latency max (ms)" max_ms "%s" ""
	row "errors" errors "%s" "0"
	row "late polls (previous unanswered)" late "%s" "0"
	row "reconnects in the window" reconnects "%s" ""
	row "sent again (server closed idle conn)" resent "%s" ""
	row "vigil-cp CPU (cores)" cp_cores "%s" "< 1"
	row "vigil-cp CPU per request (us)" cpu_us "%s" ""
	row "vigil-cp peak RSS (kB)" cp_hwm_kb "%s" ""
	row "vigil-cp storage writes (KiB/poll)" cp_write_kib_per_req "%s" ""
	row "cp_load CPU (cores)" gen_cores "%s" ""
	row "rest of the host (cores)" other_cores "%s" ""
	row "warm-up: connect + full state (s)" connect_s "%s" ""
	row "warm-up: vigil-cp CPU ms per agent" warm_cp_ms_per_agent "%s" ""
	row "warm-up: full-state/status p50 (ms)" warm_p50_ms "%s" ""
	row "warm-up: full-state/status p99 (ms)" warm_p99_ms "%s" ""
	row "agents that never connected" connect_failed "%s" "0"
	echo
	echo "steady state only: the window starts after every agent has connected, reported its full state"
	echo "and applied the policy (the warm-up rows); 'rest of the host' is the CPU that other processes"
	echo "used meanwhile (the machine may be shared), out of $(nproc)."
	echo "anchors: Fleet reports about 7.5k hosts per vCPU; Bindplane up to 25k agents on 4 cores (6.25k per core)"
} | tee "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "bench-cp: results in $OUT"

if [ "${BENCH_STRICT:-0}" = 1 ]; then
	k=10000:30000
	awk -v p="${R[$k,p99_ms]:-1e9}" -v c="${R[$k,cp_cores]:-1e9}" -v e="${R[$k,errors]:-1}" \
		'BEGIN { exit !(p < 100 && c < 1 && e == 0) }' || die "a goal is missed at 10k agents"
fi
exit 0
