#!/bin/bash
# tests/integration/export_hostile.sh - an uplink that acknowledges a push
# the collector never made is treated as compromised, and the spool keeps
# its profiles.
#
# The test-only build (build/tests/vigild-testhooks, daemon/testhooks.h)
# makes the confined uplink wait 8 s (profiles are spooled, one is in
# flight) and then send MSG_EXPORT_ACK for a seq that is not in flight, on
# its socket to the collector.  The collector must report the
# protocol break to the monitor (MSG_UPLINK_BROKE), which kills the uplink
# and shuts vigild down with a failure; no file is unlinked on its word.
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pyro.sh"

HOOKS=$B/tests/vigild-testhooks
TESTS=(
	"the collector reports an ack for no profile in flight as a protocol break"
	"the monitor kills the uplink and vigild exits with a failure"
	"the spool's files stay (none unlinked on a hostile ack)"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$HOOKS" "${TESTS[@]}"
require_file "$PYRO_RECEIVER" "${TESTS[@]}"

OUT=$T/profiles
pyro_start recv || { for t in "${TESTS[@]}"; do tap_not_ok "$t" "no receiver"; done; tap_done; }
# The receiver is down: no push succeeds, so no ack is a real one.
pyro_stop

VIGILD=$HOOKS
VIGIL_TEST_ATTEMPT=uplink:bad_ack:8 vigild_start "$T/vigild.log" --bpf-dir "$B/bpf" \
	--trust "$B/dev-ca/ca.pem" --hz 49 --interval 1 --output "$OUT" --no-top \
	--export-url "$PYRO_URL"
vigild_wait 60
log=$T/vigild.log
tap_result "${TESTS[0]}" "$(grep -q 'TEST HOOK: acknowledging seq' "$log" &&
	grep -q 'collector.*the uplink broke the protocol (an EXPORT_ACK for no profile in flight' "$log"; echo $?)" \
	"$(grep -i 'hook\|broke' "$log" | head -5)"
tap_result "${TESTS[1]}" "$(grep -q 'the collector says the uplink broke the protocol' "$log" &&
	[ "$VIGILD_RC" != 0 ] && [ "$VIGILD_RC" != 255 ]; echo $?)" \
	"exit $VIGILD_RC; $(tail -4 "$log" | tr '\n' ' ')"
# Every interval's file (1 s each, about 8 before the ack: one file each,
# cpu-<stamp>_<k>_<n>.push) is still there: at least 3, which leaves the
# collector 5 s to load and start on a loaded host.
left=$(find "$OUT" -maxdepth 1 -name 'cpu-*_*_*.push' | wc -l)
intervals=$(find "$OUT" -maxdepth 1 -name 'cpu-*_*_*.push' -printf '%f\n' | cut -d_ -f1 | sort -u | wc -l)
tap_result "${TESTS[2]}" "$([ "$intervals" -ge 3 ]; echo $?)" \
	"$left spool files of $intervals intervals left in $OUT"
tap_done
