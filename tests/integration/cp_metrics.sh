#!/bin/bash
# tests/integration/cp_metrics.sh - vigil-cp's Prometheus metrics
# (docs/metrics.md), and vigild's metrics with a control plane: a real
# vigil-cp on loopback (mTLS, a PKI made here) with --metrics-listen, and a
# real vigild --control-plane polling it every second.
#
# vigil-cp's page must follow the fleet: no agent, then vigild connected
# and healthy, then disconnected once vigild stops; the OpAMP requests
# counted by code and in the latency histogram (the histogram's count is
# the requests' count), a policy uploaded and a rollout started seen in
# the serial and rollouts figures, the audit log's records growing.
# promtool must be silent on both pages, and a real Prometheus scraping
# vigil-cp must answer a query about the agents.  A hostile scraper on
# vigild's metrics port (half-requests held open, a 2 MB request) must not
# slow its OpAMP polls: vigil-cp's own request counter measures the poll
# rate before and during the attack, and the rate during must be at least
# half the rate before.  pg_cp_metrics.sh runs it all with vigil-cp on
# PostgreSQL (lib_backend.sh).
#
# It mostly waits on 1 s polls, on ports of its own; it counts requests,
# not samples, and the poll rate under attack may fall to half before it
# fails (a stall of seconds, not a busy CPU): tests/run.sh runs it (and
# pg_cp_metrics.sh) in its pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_backend.sh"
. "$(dirname "$0")/lib_opamp.sh"

JG=$B/tests/tools/json_get
NAMES=(
	"vigil-cp ($BACKEND_NAME) serves /metrics: build info, no agent yet, the audit log's records, store up"
	"vigild --control-plane connects: vigil-cp counts one connected healthy agent"
	"vigild's page says the control plane is connected, and its policy source"
	"OpAMP requests counted by route and code; the latency histogram counts the same requests"
	"a policy uploaded and a rollout started: vigil_cp_policy_serial_max 1, one rollout, more audit records"
	"promtool check metrics finds no problem on vigil-cp's page nor on vigild's"
	"a real Prometheus scraping vigil-cp answers: up 1, one agent"
	"a hostile scraper on vigild's metrics port does not slow its OpAMP polls"
	"vigild stopped: vigil-cp counts the agent disconnected"
	"vigil-cp --metrics-listen none: only the OpAMP port listens"
)
tap_plan ${#NAMES[@]}
require_bpf "${NAMES[@]}"
require_file "$VIGIL_CP" "${NAMES[@]}"
require_file "$JG" "${NAMES[@]}"
for tool in curl promtool prometheus ss; do
	if ! command -v $tool >/dev/null; then
		for n in "${NAMES[@]}"; do tap_not_ok "$n" "$tool is not installed (make deps)"; done
		tap_done
	fi
done

scrape() { [ "$(curl -s -o "$2" -w '%{http_code}' --max-time 10 "http://127.0.0.1:$1/metrics")" = 200 ]; }
value() { awk -v s="$2" '$1 == s { print $2; found = 1; exit } END { if (!found) exit 1 }' "$1"; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'; }
# opamp_requests FILE: every OpAMP request counted, whatever its code
opamp_requests() { awk '/^vigil_cp_http_requests_total\{route="opamp",/ { n += $2 } END { print n + 0 }' "$1"; }

P=$T/pki
if ! cp_pki "$P"; then
	for n in "${NAMES[@]}"; do tap_not_ok "$n" "the test PKI could not be made"; done
	tap_done
fi
chmod 600 "$P"/*.key
CPLOG=$T/cp.log
MPORT=$(free_port)
cp_start "$P" "$T/cp.db" "$CPLOG" --metrics-listen "127.0.0.1:$MPORT"
if ! cp_wait_ready "$P" 20; then
	for n in "${NAMES[@]}"; do tap_not_ok "$n" "vigil-cp did not start" "$(tail -5 "$CPLOG")"; done
	tap_done
fi
ctl() { OUT=$(vctl "$P" "$@" 2>&1); }

# 1. a fresh vigil-cp
scrape "$MPORT" "$T/c1.txt"
r=$?
problems=
[ $r -eq 0 ] || problems+="scrape failed; "
ver=$("$VIGIL_CP" --version | awk '{ print $2 }')
[ "$(value "$T/c1.txt" "vigil_cp_build_info{version=\"$ver\"}")" = 1 ] || problems+="no build info for $ver; "
[ "$(value "$T/c1.txt" vigil_cp_store_up)" = 1 ] || problems+="store not up; "
agents=$(awk '/^vigil_cp_agents\{/ { n += $2; k++ } END { print k + 0, n + 0 }' "$T/c1.txt")
[ "$agents" = "6 0" ] || problems+="agents rows/sum '$agents', want 6 rows summing to 0; "
audit1=$(value "$T/c1.txt" vigil_cp_audit_records)
[ -n "$audit1" ] || problems+="no audit records figure; "
tap_result "${NAMES[0]}" $([ -z "$problems" ]; echo $?) "$problems" "$(head -40 "$T/c1.txt")"

# 2. vigild connects
VPORT=$(free_port)
VIGILD_TIMEOUT=150
vigild_start "$T/vigild.log" --control-plane "https://localhost:$CP_PORT" --cert "$P/agent1.pem" \
	--key "$P/agent1.key" --ca "$P/server-ca.pem" --policy-trust "$P/policy-ca.pem" --state-dir "$T/state" \
	--poll-interval 1 --interval 5 --no-top --output "$T/out" --metrics-listen "127.0.0.1:$VPORT"
vigild_wait_ready 30
connected_healthy() {
	scrape "$MPORT" "$T/c2.txt" &&
		[ "$(value "$T/c2.txt" 'vigil_cp_agents{connection="connected",health="healthy"}')" = 1 ]
}
wait_for 20 connected_healthy
connected_healthy
tap_result "${NAMES[1]}" $? "$(grep '^vigil_cp_agents' "$T/c2.txt")" "$(tail -5 "$T/vigild.log")"

# 3. vigild's side
wait_for 10 sh -c "curl -s --max-time 2 http://127.0.0.1:$VPORT/metrics | grep -q '^vigil_control_plane_connected 1'"
scrape "$VPORT" "$T/v1.txt"
tap_result "${NAMES[2]}" $([ "$(value "$T/v1.txt" vigil_control_plane_connected)" = 1 ] &&
	[ "$(value "$T/v1.txt" vigil_control_plane_configured)" = 1 ] &&
	[ "$(value "$T/v1.txt" 'vigil_policy_source{source="default"}')" = 1 ] &&
	[ "$(value "$T/v1.txt" vigil_policy_serial)" = 0 ]; echo $?) "$(grep -E '^vigil_(control|policy)' "$T/v1.txt")"

# 4. requests and the histogram
sleep 3
scrape "$MPORT" "$T/c3.txt"
ok200=$(value "$T/c3.txt" 'vigil_cp_http_requests_total{route="opamp",code="200"}')
total=$(opamp_requests "$T/c3.txt")
hcount=$(value "$T/c3.txt" 'vigil_cp_http_request_duration_seconds_count{route="opamp"}')
hinf=$(value "$T/c3.txt" 'vigil_cp_http_request_duration_seconds_bucket{route="opamp",le="+Inf"}')
tap_result "${NAMES[3]}" $([ -n "$ok200" ] && gt "$ok200" 2 && [ "$hcount" = "$total" ] && [ "$hinf" = "$total" ]; echo $?) \
	"opamp 200: '$ok200', all opamp: $total, histogram count '$hcount', +Inf bucket '$hinf'" \
	"$(grep '^vigil_cp_http' "$T/c3.txt")"

# 5. a policy and a rollout (whether vigild takes the policy does not matter here)
cp_policy "$T/p1.yaml" 1 && cp_sign "$P" "$T/p1.yaml"
ctl policy upload "$T/p1.yaml" "$T/p1.yaml.sig"
up_out=$OUT
ctl rollout start 1 --selector "host.name=$(hostname)" --stages 100%
ro_out=$OUT
sleep 1.2 # the store figures are cached for a second
scrape "$MPORT" "$T/c4.txt"
serial=$(value "$T/c4.txt" vigil_cp_policy_serial_max)
rollouts=$(awk '/^vigil_cp_rollouts\{/ { n += $2; k++ } END { print k + 0, n + 0 }' "$T/c4.txt")
audit2=$(value "$T/c4.txt" vigil_cp_audit_records)
tap_result "${NAMES[4]}" $([ "$serial" = 1 ] && [ "$rollouts" = "4 1" ] && gt "$audit2" "$audit1"; echo $?) \
	"serial '$serial', rollout rows/sum '$rollouts', audit records $audit1 -> $audit2" "$up_out" "$ro_out" \
	"$(grep '^vigil_cp_rollouts' "$T/c4.txt")"

# 6. promtool on both pages
out1=$(promtool check metrics <"$T/c4.txt" 2>&1)
rc1=$?
scrape "$VPORT" "$T/v2.txt"
out2=$(promtool check metrics <"$T/v2.txt" 2>&1)
rc2=$?
tap_result "${NAMES[5]}" $([ $rc1 -eq 0 ] && [ -z "$out1" ] && [ $rc2 -eq 0 ] && [ -z "$out2" ]; echo $?) \
	"vigil-cp: exit $rc1 $out1" "vigild: exit $rc2 $out2"

# 7. Prometheus
PPORT=$(free_port)
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: vigil-cp
    static_configs:
      - targets: ["127.0.0.1:$MPORT"]
EOF
spawn prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
	--web.listen-address="127.0.0.1:$PPORT" >"$T/prometheus.log" 2>&1
query() {
	curl -s --max-time 5 -G "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" |
		"$JG" '.data.result[0].value[1]' 2>/dev/null
}
prom_up() { [ "$(query 'up{job="vigil-cp"}')" = 1 ]; }
wait_for 30 prom_up
up=$(query 'up{job="vigil-cp"}')
n=$(query 'sum(vigil_cp_agents{job="vigil-cp"})')
tap_result "${NAMES[6]}" $([ "$up" = 1 ] && [ "$n" = 1 ]; echo $?) "up '$up', agents '$n'" \
	"$(tail -3 "$T/prometheus.log")"

# 8. a hostile scraper on vigild's port: the poll rate before and during it
scrape "$MPORT" "$T/r0.txt"
a0=$(opamp_requests "$T/r0.txt")
t0=$(now_ms)
sleep 5
scrape "$MPORT" "$T/r1.txt"
a1=$(opamp_requests "$T/r1.txt")
t1=$(now_ms)
hostile() {
	local end=$(($(now_ms) + 6000)) hold=() fd
	while [ "$(now_ms)" -lt "$end" ]; do
		for _ in 1 2 3 4 5 6; do
			exec {fd}<>"/dev/tcp/127.0.0.1/$VPORT" || continue
			printf 'GET /metrics HTTP/1.1\r\nX-Slow: ' >&"$fd"
			hold+=("$fd")
		done
		{ printf 'GET /metrics HTTP/1.1\r\nX-Big: '; head -c 2000000 /dev/zero | tr '\0' a; } |
			timeout 2 curl -s --max-time 2 "telnet://127.0.0.1:$VPORT" >/dev/null 2>&1
		sleep 0.2
	done
	for fd in "${hold[@]}"; do exec {fd}>&-; done
}
hostile
scrape "$MPORT" "$T/r2.txt"
a2=$(opamp_requests "$T/r2.txt")
t2=$(now_ms)
before=$(awk -v n=$((a1 - a0)) -v ms=$((t1 - t0)) 'BEGIN { printf "%.2f", n * 1000 / ms }')
during=$(awk -v n=$((a2 - a1)) -v ms=$((t2 - t1)) 'BEGIN { printf "%.2f", n * 1000 / ms }')
alive=$(kill -0 "$VIGILD_PID" 2>/dev/null && echo yes || echo no)
tap_result "${NAMES[7]}" $(gt "$before" 0 && ! gt "$(awk -v b="$before" 'BEGIN { print b / 2 }')" "$during" &&
	[ "$alive" = yes ]; echo $?) \
	"OpAMP requests per second: $before before ($((a1 - a0)) in $((t1 - t0)) ms), $during during the attack ($((a2 - a1)) in $((t2 - t1)) ms); vigild alive: $alive"

# 9. vigild stops: agent_disconnect
kill -TERM "$VIGILD_PID"
vigild_wait 20
disconnected() {
	scrape "$MPORT" "$T/c5.txt" &&
		[ "$(awk '/^vigil_cp_agents\{connection="disconnected",/ { n += $2 } END { print n + 0 }' "$T/c5.txt")" = 1 ] &&
		[ "$(awk '/^vigil_cp_agents\{connection="connected",/ { n += $2 } END { print n + 0 }' "$T/c5.txt")" = 0 ]
}
wait_for 10 disconnected
disconnected
tap_result "${NAMES[8]}" $? "vigild exit $VIGILD_RC" "$(grep '^vigil_cp_agents' "$T/c5.txt")"

# 10. none
cp_stop
CP_PORT=$(free_port)
cp_start "$P" "$T/cp.db" "$T/cp2.log" --metrics-listen none
cp_wait_ready "$P" 20
ports=$(ss -Htlnp | grep "pid=$CP_PID," | awk '{ print $4 }' | sed 's/.*://' | sort -u | tr '\n' ' ')
tap_result "${NAMES[9]}" $([ "$ports" = "$CP_PORT " ]; echo $?) "vigil-cp listens on: $ports (OpAMP: $CP_PORT)"
cp_stop
tap_done
