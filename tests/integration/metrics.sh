#!/bin/bash
# tests/integration/metrics.sh - vigild's Prometheus metrics (docs/metrics.md),
# with real BPF, real cgroups, curl, promtool and a real Prometheus server.
#
# One vigild session with a policy of two tenants (web, batch), each with
# a cgroup made here and a burner in it, and --metrics-listen on a free
# loopback port.  Two scrapes two seconds apart: the sample counter must
# grow, all three tenants (default, web, batch) must have their rows, the
# budgets must be the policy's, and the three processes their process_*
# rows.  promtool must find nothing to say.  Then Prometheus (Debian's
# package) scrapes vigild every second and answers queries about it.
# Then hostile scrapers: connections that send half a request and wait
# (slowloris), more of them than vigild serves at once, and a request of
# 2 MB; a real scrape must be answered while they hang, the hanging ones
# must be closed by vigild's timeout (METRICSRV_TIMEOUT_MS, 5 s), and the
# uplink's memory must not grow with the request.  Whether OpAMP polls
# keep going meanwhile is in cp_metrics.sh, which has a control plane.
# Then two more vigild starts: on an address already taken (exit 69, a
# message that names the option), and with none (nothing listens).  Last,
# export to the faithful Pyroscope receiver (lib_pyro.sh) through an
# outage: the page's pushed count must be the profiles (series) the
# receiver answered 200 to, failing and retries must show the outage, vigil_spool_files must
# bracket the files spooled in the directory (one page before, one after
# counting), and once the receiver is back the spool must drain to 0.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pyro.sh"

TESTS=(
	"vigil_build_info carries vigild --version's version"
	"vigil_samples_total grows between two scrapes 2 s apart"
	"per-tenant rows for default, web and batch: frequency > 0, overhead ratio, the policy's budget ratio"
	"process_* rows for monitor, collector and uplink: RSS > 0, open fds > 0, start time of this run"
	"the uplink holds the listening socket, the monitor does not"
	"promtool check metrics finds no problem"
	"Prometheus scrapes vigild: up == 1"
	"Prometheus answers queries on vigild's metrics (samples > 0, batch's budget 0.02)"
	"slowloris: a scrape is answered while 12 half-requests hang; vigild closes them after its timeout"
	"a 2 MB request: refused (431 or closed), the uplink's memory does not grow, the next scrape works"
	"GET / answers 404 and POST /metrics 405"
	"--metrics-listen on an address already in use: exit 69, the message names the option and address"
	"--metrics-listen none: nothing listens, sampling goes on"
	"export to a receiver: pushed = its 200s; in an outage failing 1, retries grow, spool_files brackets the files spooled"
	"after the outage the spool drains: spool_files 0, failing 0, pushed = the receiver's 200s again"
	"the uplink is vigild-uplink-local without a control plane or export (no libcurl, no libssl mapped), vigild-uplink with --export-url (libcurl mapped)"
	"the collector is vigild-collector-local without a control plane or export (no libcrypto mapped), vigild-collector with --export-url (libcrypto mapped)"
	"figures are fetched for a scrape: the monitor reads no /proc/PID/limits of its own processes while nobody scrapes and does for a scrape; the scrape counts every sample the BPF stats map held before it"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$WLD/cpusplit" "${TESTS[@]}"
JG=$B/tests/tools/json_get
require_file "$JG" "${TESTS[@]}"
require_file "$PYRO_RECEIVER" "${TESTS[@]}"
for tool in curl promtool prometheus ss; do
	if ! command -v $tool >/dev/null; then
		for n in "${TESTS[@]}"; do tap_not_ok "$n" "$tool is not installed (make deps)"; done
		tap_done
	fi
done

# scrape PORT FILE: GET /metrics into FILE; 0 when HTTP 200.
scrape() {
	local code
	code=$(curl -s -o "$2" -w '%{http_code}' --max-time 10 "http://127.0.0.1:$1/metrics")
	[ "$code" = 200 ]
}

# value FILE SERIES: the value of the line for SERIES (name{labels} as printed).
value() {
	awk -v s="$2" '$1 == s { print $2; found = 1; exit } END { if (!found) exit 1 }' "$1"
}

# gt A B: A > B as numbers.
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'; }

CGROOT=$(cgroup2_root)
WEB=$CGROOT/vigil-metrics-$$-web
BATCH=$CGROOT/vigil-metrics-$$-batch
cleanup_cgroups() {
	local g
	for g in "$WEB" "$BATCH"; do
		[ -d "$g" ] || continue
		while read -r p; do echo "$p" >"$CGROOT/cgroup.procs" 2>/dev/null; done <"$g/cgroup.procs"
		rmdir "$g" 2>/dev/null
	done
}
trap 'cleanup_cgroups; lib_cleanup' EXIT
if [ -z "$CGROOT" ] || ! mkdir "$WEB" "$BATCH"; then
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "cannot make cgroups under '${CGROOT:-no cgroup v2 mount}'"; done
	tap_done
fi
cat >"$T/policy.yaml" <<EOF
version: 1
defaults:
  hz: {min: 1, max: 99, start: 49}
  budget: {max_overhead_percent: 1.0}
tenants:
  - name: web
    cgroups: ["$WEB"]
    budget: {max_overhead_percent: 1.0}
  - name: batch
    cgroups: ["$BATCH"]
    budget: {max_overhead_percent: 2.0}
EOF

# burner CGROUP SECONDS: cpusplit moved into CGROUP before it execs.
burner() {
	spawn sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --threads 1 --seconds "$3"' sh "$1" \
		"$WLD/cpusplit" "$2" >/dev/null
}

PORT=$(free_port)
RUN_START=$(date +%s)
VIGILD_TIMEOUT=150
vigild_start "$T/vigild.log" --policy "$T/policy.yaml" --control-period 1 --interval 5 --duration 0 \
	--no-top --output "$T/out" --metrics-listen "127.0.0.1:$PORT"
if ! vigild_wait_ready 30; then
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "vigild did not start" "$(tail -15 "$T/vigild.log")"; done
	tap_done
fi
burner "$WEB" 60
burner "$BATCH" 60
# The figures are fetched for each scrape: the first has them all.
wait_for 10 sh -c "curl -s --max-time 2 http://127.0.0.1:$PORT/metrics | grep -q '^process_resident_memory_bytes{process=\"uplink\"}' && curl -s --max-time 2 http://127.0.0.1:$PORT/metrics | grep -q '^vigil_samples_total '"
sleep 3 # a control period or two, so that overheads are measured
scrape "$PORT" "$T/m1.txt"
r1=$?
sleep 2
scrape "$PORT" "$T/m2.txt"
r2=$?

# 1. build info
ver=$("$VIGILD" --version | awk '{ print $2 }')
v=$(value "$T/m1.txt" "vigil_build_info{version=\"$ver\"}")
tap_result "${TESTS[0]}" $([ $r1 -eq 0 ] && [ "$v" = 1 ]; echo $?) \
	"scrape rc $r1, build_info for $ver: '$v'" "$(grep build_info "$T/m1.txt")"

# 2. samples grow
s1=$(value "$T/m1.txt" vigil_samples_total)
s2=$(value "$T/m2.txt" vigil_samples_total)
tap_result "${TESTS[1]}" $([ $r2 -eq 0 ] && [ -n "$s1" ] && [ -n "$s2" ] && gt "$s2" "$s1"; echo $?) \
	"samples: '$s1' then '$s2'"

# 3. tenants
problems=
for t in default:0.01 web:0.01 batch:0.02; do
	name=${t%%:*} budget=${t#*:}
	hz=$(value "$T/m2.txt" "vigil_tenant_sampling_frequency_hertz{tenant=\"$name\"}") ||
		problems+="no frequency row for $name; "
	[ -n "$hz" ] && ! gt "$hz" 0 && problems+="$name at $hz Hz; "
	value "$T/m2.txt" "vigil_tenant_overhead_ratio{tenant=\"$name\"}" >/dev/null ||
		problems+="no overhead row for $name; "
	b=$(value "$T/m2.txt" "vigil_tenant_budget_ratio{tenant=\"$name\"}")
	[ "$b" = "$budget" ] || problems+="$name's budget ratio '$b', the policy says $budget; "
	st=$(grep -c "^vigil_tenant_state{tenant=\"$name\",state=\"[a-z]*\"} 1$" "$T/m2.txt")
	[ "$st" = 1 ] || problems+="$name is in $st states; "
done
[ "$(value "$T/m2.txt" vigil_tenants)" = 3 ] || problems+="vigil_tenants is not 3; "
# web burns a CPU: its overhead was measured (a ratio above zero)
o=$(value "$T/m2.txt" 'vigil_tenant_overhead_ratio{tenant="web"}')
gt "$o" 0 || problems+="web's overhead ratio is '$o' while it burns a CPU; "
tap_result "${TESTS[2]}" $([ -z "$problems" ]; echo $?) "$problems" "$(grep '^vigil_tenant' "$T/m2.txt")"

# 4. process rows
problems=
now=$(date +%s)
for p in monitor collector uplink; do
	rss=$(value "$T/m2.txt" "process_resident_memory_bytes{process=\"$p\"}")
	fds=$(value "$T/m2.txt" "process_open_fds{process=\"$p\"}")
	st=$(value "$T/m2.txt" "process_start_time_seconds{process=\"$p\"}")
	cpu=$(value "$T/m2.txt" "process_cpu_seconds_total{process=\"$p\"}")
	gt "$rss" 1000000 || problems+="$p RSS '$rss'; "
	gt "$fds" 2 || problems+="$p open fds '$fds'; "
	{ gt "$st" $((RUN_START - 2)) && ! gt "$st" $((now + 1)); } ||
		problems+="$p started at '$st', not between $RUN_START and $now; "
	[ -n "$cpu" ] || problems+="$p has no CPU seconds; "
done
# the collector drains and symbolizes: it has used some CPU
gt "$(value "$T/m2.txt" 'process_cpu_seconds_total{process="collector"}')" 0 ||
	problems+="the collector used no CPU; "
tap_result "${TESTS[3]}" $([ -z "$problems" ]; echo $?) "$problems" "$(grep '^process_' "$T/m2.txt")"

# 18. figures fetched for a scrape (MSG_METRICS_WANTED), not every second.
# stats_samples: the samples the collector's BPF stats map holds now
# (struct vigil_stats: samples is the first u64 of each CPU's value).
stats_samples() {
	local c f id
	c=$(pgrep -P "$VIGILD_PID" -f 'internal-role collector')
	for f in /proc/"$c"/fdinfo/*; do
		id=$(awk '/^map_id:/ { print $2 }' "$f" 2>/dev/null)
		[ -n "$id" ] && bpftool map show id "$id" 2>/dev/null | grep -q ' name stats ' &&
			bpftool -j map dump id "$id" 2>/dev/null | python3 -c '
import json, sys
print(sum(int.from_bytes(bytes(int(b, 16) for b in v["value"][:8]), "little")
          for e in json.load(sys.stdin) for v in e["values"]))' && return
	done
	echo none
}
# figure_reads FILE: the monitor's opens of vigild's own processes'
# /proc/PID/limits in strace's FILE.  Only the figures read (procmetrics.c)
# opens limits; /proc/PID/stat would not do: the broker reads it for the
# collector's requests, and the collector samples vigild's own processes too.
figure_reads() {
	local pids
	pids=$(echo "$VIGILD_PID" $(pgrep -P "$VIGILD_PID") | tr ' ' '|')
	grep -cE "openat\(.*\"/proc/($pids)/limits\"" "$1"
}
problems=
timeout -s INT 3 strace -qq -e trace=openat -o "$T/idle.strace" -p "$VIGILD_PID" 2>"$T/strace.err"
idle=$(figure_reads "$T/idle.strace")
# Traced from before the scrape until after its answer, however long a
# busy host makes it take (the answer holds the figures read for it).
timeout -s INT 30 strace -qq -e trace=openat -o "$T/scrape.strace" -p "$VIGILD_PID" 2>>"$T/strace.err" &
tracer=$!
sleep 1
before=$(stats_samples)
scrape "$PORT" "$T/m3.txt" || problems+="the scrape failed; "
sleep 0.5
kill -INT "$tracer" 2>/dev/null
wait "$tracer"
scraped=$(figure_reads "$T/scrape.strace")
s3=$(value "$T/m3.txt" vigil_samples_total)
[ "$idle" = 0 ] || problems+="$idle reads of /proc/PID/limits in 3 s without a scrape; "
[ "$scraped" -ge 3 ] || problems+="$scraped reads of /proc/PID/limits for a scrape (3 processes); "
{ [ "$before" != none ] && [ -n "$s3" ] && ! gt "$before" "$s3"; } ||
	problems+="the stats map held $before samples before the scrape, which says '$s3'; "
tap_result "${TESTS[17]}" $([ -z "$problems" ]; echo $?) "$problems" "$(cat "$T/strace.err")"

# 5. who holds the socket
holders=$(ss -Htlnp "sport = :$PORT" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
uplink_pid=$(pgrep -P "$VIGILD_PID" -f 'internal-role uplink')
tap_result "${TESTS[4]}" $([ -n "$uplink_pid" ] && [ "$holders" = "$uplink_pid" ]; echo $?) \
	"listening socket held by '$holders'; monitor $VIGILD_PID, uplink '$uplink_pid'"
# For the last test: which program the uplink runs, and what it maps.
# uplink_prog PID: "exe-name curl ssl" (each 0 or 1: libcurl, libssl mapped)
uplink_prog() {
	local exe
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || { echo "gone 0 0"; return; }
	echo "${exe##*/} $(grep -c 'libcurl\.so' "/proc/$1/maps") $(grep -c 'libssl\.so' "/proc/$1/maps")"
}
LOCAL_PROG=$(uplink_prog "$uplink_pid")
# collector_prog: the collector's "exe-name crypto", crypto being
# libcrypto's executable mappings (the library linked in; the collector
# also maps libraries' CFI read-only, libcrypto's among them: cfi.h)
collector_prog() {
	local pid exe
	pid=$(pgrep -P "$VIGILD_PID" -f 'internal-role collector')
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || { echo "gone 0"; return; }
	echo "${exe##*/} $(grep -c ' r-xp .*libcrypto\.so' "/proc/$pid/maps")"
}
LOCAL_COLL=$(collector_prog)

# 6. promtool
out=$(promtool check metrics <"$T/m2.txt" 2>&1)
rc=$?
tap_result "${TESTS[5]}" $([ $rc -eq 0 ] && [ -z "$out" ]; echo $?) "promtool exit $rc:" "$out"

# 7-8. a real Prometheus
PPORT=$(free_port)
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: vigild
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
EOF
spawn prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
	--web.listen-address="127.0.0.1:$PPORT" >"$T/prometheus.log" 2>&1
# query EXPR: the first result's value, or nothing
query() {
	curl -s --max-time 5 -G "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" |
		"$JG" '.data.result[0].value[1]' 2>/dev/null
}
wait_for 30 sh -c "[ \"\$(curl -s --max-time 2 -G http://127.0.0.1:$PPORT/api/v1/query --data-urlencode 'query=up{job=\"vigild\"}' | '$JG' '.data.result[0].value[1]' 2>/dev/null)\" = 1 ]"
up=$(query 'up{job="vigild"}')
tap_result "${TESTS[6]}" $([ "$up" = 1 ]; echo $?) "up{job=\"vigild\"} is '$up'" "$(tail -5 "$T/prometheus.log")"
samples=$(query 'vigil_samples_total{job="vigild"}')
budget=$(query 'vigil_tenant_budget_ratio{job="vigild",tenant="batch"}')
tap_result "${TESTS[7]}" $([ -n "$samples" ] && gt "$samples" 0 && [ "$budget" = 0.02 ]; echo $?) \
	"vigil_samples_total '$samples', batch's budget '$budget'"

# 9. slowloris: more half-requests than vigild serves at once (4), held open
t0=$(now_ms)
hold=()
for i in $(seq 12); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ' >&"$fd"
	hold+=("$fd")
done
scrape "$PORT" "$T/m3.txt"
r3=$?
t1=$(now_ms)
# Each held connection must be closed by vigild: evicted (the oldest, to
# make room) or timed out.  Reading returns then: end of file, or a reset
# when vigild closed it with the half-request unread.
closed=0
for fd in "${hold[@]}"; do
	timeout 10 cat <&"$fd" >/dev/null 2>&1
	[ $? -ne 124 ] && closed=$((closed + 1))
done
t2=$(now_ms)
for fd in "${hold[@]}"; do exec {fd}>&-; done
tap_result "${TESTS[8]}" $([ $r3 -eq 0 ] && [ $((t1 - t0)) -lt 5000 ] && [ $closed -eq 12 ] &&
	[ $((t2 - t0)) -lt 9000 ]; echo $?) \
	"scrape rc $r3 after $((t1 - t0)) ms (the timeout is 5000); $closed of 12 closed by vigild, the last after $((t2 - t0)) ms"

# 10. a huge request
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$uplink_pid/status"; }
before=$(rss)
resp=$( { printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: '; head -c 2000000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } |
	timeout 10 curl -s --max-time 8 telnet://127.0.0.1:$PORT 2>/dev/null | head -1 | tr -d '\r')
after=$(rss)
scrape "$PORT" "$T/m4.txt"
r4=$?
ok=1
{ [ -z "$resp" ] || [[ "$resp" == "HTTP/1.1 431"* ]]; } && [ $((after - before)) -lt 1024 ] && [ $r4 -eq 0 ] && ok=0
tap_result "${TESTS[9]}" $ok "answer '$resp'; uplink RSS $before kB -> $after kB; next scrape rc $r4"

# 11. other routes
c404=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/")
c405=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST "http://127.0.0.1:$PORT/metrics")
tap_result "${TESTS[10]}" $([ "$c404" = 404 ] && [ "$c405" = 405 ]; echo $?) "GET / $c404, POST /metrics $c405"

# 12. an address that is taken (by the vigild still running)
"$VIGILD" --duration 3 --no-top --output "$T/out2" --metrics-listen "127.0.0.1:$PORT" >"$T/taken.log" 2>&1
rc=$?
tap_result "${TESTS[11]}" $([ $rc -eq 69 ] && grep -q -- "--metrics-listen 127.0.0.1:$PORT: cannot listen: Address already in use" "$T/taken.log"; echo $?) \
	"exit $rc" "$(tail -3 "$T/taken.log")"

kill -TERM "$VIGILD_PID"
vigild_wait 20

# 13. none
vigild_start "$T/none.log" --duration 0 --interval 2 --no-top --output "$T/out3" --metrics-listen none
problems=
vigild_wait_ready 30 || problems+="not sampling; "
listeners=
for p in $(pid_tree "$VIGILD_PID"); do
	ss -Htlnp | grep -q "pid=$p," && listeners+="$p "
done
[ -z "$listeners" ] || problems+="TCP listeners in vigild's processes: $listeners; "
grep -q 'metrics: http' "$T/none.log" && problems+="it announced a metrics address; "
sleep 3
kill -TERM "$VIGILD_PID"
vigild_wait 20
[ "$VIGILD_RC" = 0 ] || problems+="exit $VIGILD_RC; "
[ -n "$(profile_files "$T/out3")" ] || problems+="no profile written; "
tap_result "${TESTS[12]}" $([ -z "$problems" ]; echo $?) "$problems" "$(tail -5 "$T/none.log")"

# 14-15. export: the page against what a faithful receiver saw, through an outage
# Profiles (series) the receiver accepted: a push carries an interval's
# series, and vigil_export_profiles_total counts series.
pushed_200() { pyro_samples '.status == 200' | wc -l; }
# The spool's files (one per interval: cpu-<stamp>_<k>_<n>.push), which
# vigil_spool_files counts.
spooled() { find "$T/out4" -maxdepth 1 -type f -name 'cpu-*_*_*.push' | wc -l; }
problems=
if pyro_start pyro; then
	PORT4=$(free_port)
	# One file per interval, its series pushed faster than they come.
	vigild_start "$T/export.log" --duration 0 --interval 3 --no-top --output "$T/out4" \
		--export-url "$PYRO_URL" --export-max-rate 50 --metrics-listen "127.0.0.1:$PORT4"
	vigild_wait_ready 30 || problems+="vigild did not start; "
	EXPORT_PROG=$(uplink_prog "$(pgrep -P "$VIGILD_PID" -f 'internal-role uplink')")
	EXPORT_COLL=$(collector_prog)
	pyro_wait_samples 30 3 || problems+="fewer than 3 samples pushed in 30 s; "
	pyro_stop
	sleep 3 # a push or two fails and is retried; what was in flight is settled
	scrape "$PORT4" "$T/e1.txt"
	n=$(spooled)
	sleep 2.5 # more than a metrics period: the next page saw at least what was counted
	scrape "$PORT4" "$T/e2.txt"
	p1=$(value "$T/e1.txt" 'vigil_export_profiles_total{result="pushed"}')
	r200=$(pushed_200)
	[ "$p1" = "$r200" ] || problems+="pushed $p1, the receiver answered 200 to $r200; "
	[ "$(value "$T/e2.txt" vigil_export_failing)" = 1 ] || problems+="not failing during the outage; "
	[ "$(value "$T/e2.txt" vigil_export_configured)" = 1 ] || problems+="export not configured; "
	gt "$(value "$T/e2.txt" vigil_export_retries_total)" 0 || problems+="no retries counted; "
	f1=$(value "$T/e1.txt" vigil_spool_files)
	f2=$(value "$T/e2.txt" vigil_spool_files)
	{ [ -n "$f1" ] && [ "$f1" -le "$n" ] && [ "$n" -le "$f2" ] && [ "$n" -gt 0 ]; } ||
		problems+="spool_files $f1 then $f2, with $n files spooled in between; "
	gt "$(value "$T/e2.txt" vigil_spool_bytes)" 0 || problems+="spool_bytes 0 with files spooled; "
else
	problems+="the receiver did not start; "
fi
tap_result "${TESTS[13]}" $([ -z "$problems" ]; echo $?) "$problems" "$(grep -E '^vigil_(export|spool)' "$T/e2.txt" 2>/dev/null)" \
	"$(tail -5 "$T/export.log")"

problems=
drained() {
	scrape "$PORT4" "$T/e3.txt" && [ "$(value "$T/e3.txt" vigil_spool_files)" = 0 ] &&
		[ "$(value "$T/e3.txt" vigil_export_failing)" = 0 ]
}
if pyro_restart; then
	wait_for 60 drained || problems+="the spool did not drain within 60 s; "
	kill -TERM "$VIGILD_PID"
	vigild_wait 20
	# stopped: nothing in flight any more; the last page vigild served is compared
	[ "$(value "$T/e3.txt" vigil_export_failing)" = 0 ] || problems+="still failing; "
	p3=$(value "$T/e3.txt" 'vigil_export_profiles_total{result="pushed"}')
	r200=$(pushed_200)
	# the page was taken before the last pushes vigild made until SIGTERM
	{ [ -n "$p3" ] && [ "$p3" -le "$r200" ] && gt "$p3" "$p1"; } ||
		problems+="pushed $p3 (was $p1), the receiver answered 200 to $r200; "
else
	problems+="the receiver did not come back; "
fi
tap_result "${TESTS[14]}" $([ -z "$problems" ]; echo $?) "$problems" "$(grep -E '^vigil_(export|spool)' "$T/e3.txt" 2>/dev/null)"
read -r lexe lcurl lssl <<<"$LOCAL_PROG"
read -r eexe ecurl _ <<<"${EXPORT_PROG:-none 0 0}"
tap_result "${TESTS[15]}" $([ "$lexe" = vigild-uplink-local ] && [ "$lcurl" = 0 ] && [ "$lssl" = 0 ] &&
	[ "$eexe" = vigild-uplink ] && [ "$ecurl" -gt 0 ]; echo $?) \
	"without: $lexe, libcurl mappings $lcurl, libssl $lssl; with --export-url: $eexe, libcurl $ecurl"
read -r lexe lcrypto <<<"$LOCAL_COLL"
read -r eexe ecrypto <<<"${EXPORT_COLL:-none 0}"
tap_result "${TESTS[16]}" $([ "$lexe" = vigild-collector-local ] && [ "$lcrypto" = 0 ] &&
	[ "$eexe" = vigild-collector ] && [ "$ecrypto" -gt 0 ]; echo $?) \
	"without: $lexe, libcrypto text mappings $lcrypto; with --export-url: $eexe, libcrypto $ecrypto"
tap_done
