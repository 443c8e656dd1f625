#!/bin/bash
# tests/bench/bench_audit.sh - the audit log at BENCH_AUDIT_N records
# (default 1M), on SQLite and on PostgreSQL with two vigil-cp (make bench-cp;
# docs/benchmarks.md "Audit log"):
#
#   - the log is filled with BENCH_AUDIT_N records as vigil-cp writes them
#     (build/tests/bench/audit_bench fill: right i and prev, batched);
#   - load: the time cpaudit_new takes over it (vigil-cp's start) and the
#     memory its tree holds;
#   - vigil-cp started on it (--audit-key): seconds until it serves;
#   - vigilctl audit verify over the whole log through vigil-cp: seconds,
#     and vigilctl's and vigil-cp's CPU;
#   - appends per second for BENCH_AUDIT_SECONDS (10) with the log that big,
#     each durable (audit_bench append: cpaudit_append, one commit each), and
#     records per second when 100 come in one turn of the event loop (one
#     commit for them all, as vigil-cp writes a busy turn's records);
#     on PostgreSQL, two appending processes at once (two servers), and a
#     verify of the result through the second vigil-cp.
#
# Results go to build/bench/audit_results.md too.

set -u
cd "$(dirname "$0")/../.."

N=${BENCH_AUDIT_N:-1000000}
SECS=${BENCH_AUDIT_SECONDS:-10}
AB=build/tests/bench/audit_bench
OUT=build/bench/audit_results.md

die() { echo "bench-audit: $*" >&2; exit 1; }
[ -x "$AB" ] && [ -x build/vigil-cp ] && [ -x build/vigilctl ] || die "run make first"

. tests/integration/lib.sh
. tests/integration/lib_opamp.sh
. tests/integration/lib_pg.sh

cp_pki "$T/pki" >/dev/null || die "could not make the PKI"
openssl genpkey -algorithm ed25519 -out "$T/audit.key" 2>/dev/null || die "openssl genpkey"
openssl pkey -in "$T/audit.key" -pubout -out "$T/audit.pub" 2>/dev/null

kv() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

declare -A R

# measure NAME URL CPDB: load, start (cp_start's DB: a SQLite path or a URL), verify; fills R[NAME,...].
measure() {
	local name=$1 url=$2 cpdb=$3 out t0 c0 c1
	out=$("$AB" load "$url") || die "load: $out"
	R[$name,load]=$(kv load_seconds <<<"$out")
	R[$name,rss]=$(kv rss_mb <<<"$out")
	unset CP_PORT
	t0=$(now_ms)
	cp_start "$T/pki" "$cpdb" "$T/cp-$name.log" --audit-key "$T/audit.key" --log-level warn
	cp_wait_ready "$T/pki" 600 || die "vigil-cp did not start: $(tail -3 "$T/cp-$name.log")"
	R[$name,ready]=$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
	c0=$(ticks "$CP_PID")
	t0=$(now_ms)
	out=$( { /usr/bin/time -f "cpu=%U+%S" "$VIGILCTL" --server "$CP_URL" --cert "$T/pki/admin.pem" \
		--key "$T/pki/admin.key" --ca "$T/pki/server-ca.pem" --timeout 600 audit verify \
		--audit-pubkey "$T/audit.pub" --state "$T/state-$name"; } 2>&1) || die "verify failed: $out"
	R[$name,verify]=$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
	R[$name,verify_cpu]=$(sed -n 's/.*cpu=\([0-9.]*\)+\([0-9.]*\).*/\1 \2/p' <<<"$out" | awk '{ printf "%.1f", $1 + $2 }')
	c1=$(ticks "$CP_PID")
	R[$name,cp_cpu]=$(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN { printf "%.1f", t / hz }')
	R[$name,records]=$(sed -n 's/.*verified: \([0-9]*\) records.*/\1/p' <<<"$out")
}

echo "bench-audit: SQLite, filling $N records"
DB=$T/audit.db
"$AB" fill "sqlite:$DB" "$N" >/dev/null || die "fill failed"
measure sqlite "sqlite:$DB" "$DB"
out=$("$AB" append "sqlite:$DB" "$SECS" one) || die "append: $out"
R[sqlite,append]=$(kv per_second <<<"$out")
out=$("$AB" append "sqlite:$DB" "$SECS" batch 100) || die "append: $out"
R[sqlite,batch]=$(kv per_second <<<"$out")
cp_stop

if pg_start; then
	echo "bench-audit: PostgreSQL, filling $N records"
	"$AB" fill "$PG_URL" "$N" >/dev/null || die "fill failed"
	measure postgresql "$PG_URL" "$PG_URL"
	A_PID=$CP_PID
	out=$("$AB" append "$PG_URL" "$SECS" one) || die "append: $out"
	R[postgresql,append]=$(kv per_second <<<"$out")
	out=$("$AB" append "$PG_URL" "$SECS" batch 100) || die "append: $out"
	R[postgresql,batch]=$(kv per_second <<<"$out")
	# Two servers appending at once into one log, then verified through a second vigil-cp.
	"$AB" append "$PG_URL" "$SECS" a >"$T/a.out" 2>&1 &
	P1=$!
	"$AB" append "$PG_URL" "$SECS" b >"$T/b.out" 2>&1 &
	P2=$!
	wait $P1 $P2
	R[postgresql,append2]=$(cat "$T/a.out" "$T/b.out" | kv per_second | awk '{ s += $1 } END { printf "%.0f", s }')
	unset CP_PORT
	cp_start "$T/pki" "$PG_URL" "$T/cp-pg2.log" --audit-key "$T/audit.key" --log-level warn
	cp_wait_ready "$T/pki" 600 || die "second vigil-cp did not start"
	t0=$(now_ms)
	out=$("$VIGILCTL" --server "$CP_URL" --cert "$T/pki/admin.pem" --key "$T/pki/admin.key" \
		--ca "$T/pki/server-ca.pem" --timeout 600 audit verify --audit-pubkey "$T/audit.pub" \
		--state "$T/state-postgresql" 2>&1) || die "verify through the second server failed: $out"
	R[postgresql,verify2]=$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
	R[postgresql,records2]=$(sed -n 's/.*verified: \([0-9]*\) records.*/\1/p' <<<"$out")
	kill "$A_PID" "$CP_PID" 2>/dev/null
else
	echo "bench-audit: no PostgreSQL: $PG_ERR" >&2
fi

mkdir -p build/bench
{
	echo "### Audit log at $N records ($(date -u '+%Y-%m-%d %H:%M UTC'))"
	echo
	echo "| | SQLite | PostgreSQL |"
	echo "|---|---|---|"
	echo "| load (cpaudit_new, vigil-cp's start) | ${R[sqlite,load]} s | ${R[postgresql,load]:--} s |"
	echo "| tree in memory | ${R[sqlite,rss]} MB | ${R[postgresql,rss]:--} MB |"
	echo "| vigil-cp started to serving | ${R[sqlite,ready]} s | ${R[postgresql,ready]:--} s |"
	echo "| vigilctl audit verify, ${R[sqlite,records]} records | ${R[sqlite,verify]} s (vigilctl CPU ${R[sqlite,verify_cpu]} s, vigil-cp ${R[sqlite,cp_cpu]} s) | ${R[postgresql,verify]:--} s (vigilctl CPU ${R[postgresql,verify_cpu]:--} s, vigil-cp ${R[postgresql,cp_cpu]:--} s) |"
	echo "| durable appends/s, one writer | ${R[sqlite,append]} | ${R[postgresql,append]:--} |"
	echo "| durable appends/s, two writers at once | - | ${R[postgresql,append2]:--} |"
	echo "| records/s written 100 per loop turn (vigil-cp under load) | ${R[sqlite,batch]} | ${R[postgresql,batch]:--} |"
	echo "| verify through the second vigil-cp afterwards | - | ${R[postgresql,verify2]:--} s, ${R[postgresql,records2]:--} records |"
} | tee "$OUT"
