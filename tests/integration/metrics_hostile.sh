#!/bin/bash
# tests/integration/metrics_hostile.sh - an uplink that sends, on its
# metrics socket to the monitor or to the collector, anything but an ask
# for the figures (MSG_METRICS_WANTED).
#
# The test-only build (build/tests/vigild-testhooks, daemon/testhooks.h)
# makes the confined uplink send an EXPORT_ACK there 2 s after start.  To
# the monitor: the uplink is treated as compromised (killed, vigild shuts
# down with a failure), as on its control socket.  To the collector: it
# reports the break to the monitor (MSG_UPLINK_BROKE), which does the
# same, as for a break on the export's socket.
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane
. "$(dirname "$0")/lib.sh"
HOOKS=$B/tests/vigild-testhooks
TESTS=(
	"junk on the metrics socket to the monitor: the uplink is killed as compromised, vigild exits with a failure"
	"junk on the metrics socket to the collector: it reports the break, the monitor kills the uplink, vigild exits with a failure"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$HOOKS" "${TESTS[@]}"
VIGILD=$HOOKS

# run NAME WHO: vigild (--duration 30) with the uplink's junk going to WHO;
# its log in $T/NAME.log.  The junk ends it about 2 s after the uplink
# starts; it must end well before the duration could (25 s after launch,
# where vigild's start-up calibration alone may take 4.5 s on a loaded host).
run() {
	PORT=$(free_port)
	VIGIL_TEST_ATTEMPT=uplink:metrics_junk:$2 vigild_start "$T/$1.log" --bpf-dir "$B/bpf" \
		--trust "$B/dev-ca/ca.pem" --hz 49 --interval 1 --duration 30 --output "$T/$1" --no-top \
		--metrics-listen "127.0.0.1:$PORT"
}

run monitor monitor
vigild_wait 60
log=$T/monitor.log
tap_result "${TESTS[0]}" "$(grep -q 'TEST HOOK: an EXPORT_ACK on the metrics socket to the monitor' "$log" &&
	grep -q 'the uplink broke the protocol on its metrics socket: treating it as compromised' "$log" &&
	[ "$VIGILD_RC" != 0 ] && [ "$VIGILD_RC" != 255 ] && [ "$VIGILD_RAN_MS" -lt 25000 ]; echo $?)" \
	"exit $VIGILD_RC after $VIGILD_RAN_MS ms;" "$(grep -i 'hook\|broke\|killed' "$log" | head -5)"

run collector collector
vigild_wait 60
log=$T/collector.log
tap_result "${TESTS[1]}" "$(grep -q 'TEST HOOK: an EXPORT_ACK on the metrics socket to the collector' "$log" &&
	grep -q 'collector.*the uplink broke the protocol (on the metrics socket' "$log" &&
	grep -q 'the collector says the uplink broke the protocol' "$log" &&
	[ "$VIGILD_RC" != 0 ] && [ "$VIGILD_RC" != 255 ] && [ "$VIGILD_RAN_MS" -lt 25000 ]; echo $?)" \
	"exit $VIGILD_RC after $VIGILD_RAN_MS ms;" "$(grep -i 'hook\|broke\|killed' "$log" | head -5)"
tap_done
