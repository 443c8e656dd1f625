#!/bin/bash
# tests/integration/metrics_hostile.sh - an uplink that sends, on its
# metrics socket to the monitor or to the collector, anything but an ask
# for the figures (MSG_METRICS_WANTED).
#
# The test-only build (build/tests/vigild-testhooks, daemon/testhooks.h)
# makes the confined uplink send an EXPORT_ACK there 2 s after start.  To
# the monitor: the uplink is treated as compromised (killed, vigild shuts
# down with a failure), as on its control socket.  To the collector: that
# socket is closed and no more figures go to the uplink; sampling and the
# profiles go on, and scrapes are still answered, from the monitor's
# figures.
. "$(dirname "$0")/lib.sh"
HOOKS=$B/tests/vigild-testhooks
TESTS=(
	"junk on the metrics socket to the monitor: the uplink is killed as compromised, vigild exits with a failure"
	"junk on the metrics socket to the collector: it stops sending figures and says why; sampling, profiles and scrapes go on"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$HOOKS" "${TESTS[@]}"
VIGILD=$HOOKS

# run NAME WHO: vigild for 6 s with the uplink's junk going to WHO; its log in $T/NAME.log
run() {
	PORT=$(free_port)
	VIGIL_TEST_ATTEMPT=uplink:metrics_junk:$2 vigild_start "$T/$1.log" --bpf-dir "$B/bpf" \
		--trust "$B/dev-ca/ca.pem" --hz 49 --interval 1 --duration 6 --output "$T/$1" --no-top \
		--metrics-listen "127.0.0.1:$PORT"
}

run monitor monitor
vigild_wait 60
log=$T/monitor.log
tap_result "${TESTS[0]}" "$(grep -q 'TEST HOOK: an EXPORT_ACK on the metrics socket to the monitor' "$log" &&
	grep -q 'the uplink broke the protocol on its metrics socket: treating it as compromised' "$log" &&
	[ "$VIGILD_RC" != 0 ] && [ "$VIGILD_RC" != 255 ] && [ "$VIGILD_RAN_MS" -lt 5500 ]; echo $?)" \
	"exit $VIGILD_RC after $VIGILD_RAN_MS ms;" "$(grep -i 'hook\|broke\|killed' "$log" | head -5)"

run collector collector
vigild_wait_ready 30
sleep 3.5 # past the junk
code=$(curl -s -o "$T/page.txt" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/metrics")
vigild_wait 60
log=$T/collector.log
files=$(profile_files "$T/collector" | wc -l)
tap_result "${TESTS[1]}" "$(grep -q 'TEST HOOK: an EXPORT_ACK on the metrics socket to the collector' "$log" &&
	grep -q 'the uplink sent what the metrics socket does not carry' "$log" &&
	[ "$code" = 200 ] && grep -q '^process_resident_memory_bytes{process="collector"}' "$T/page.txt" &&
	[ "$VIGILD_RC" = 0 ] && [ "$files" -ge 5 ]; echo $?)" \
	"exit $VIGILD_RC, $files profiles, scrape $code;" "$(grep -i 'hook\|metrics socket\|broke' "$log" | head -5)"
tap_done
