#!/bin/bash
# tests/integration/export_cp.sh - export beside a control plane: the
# collector and the uplink share one socket for OpAMP's messages and the
# export's, and the acks reach the spool through the control plane's side
# of the collector (cpside.c).  The control plane is down throughout (a
# port nothing listens on): export does not wait for it.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pyro.sh"
. "$(dirname "$0")/lib_spool.sh"

TESTS=(
	"with --control-plane (down) and --export-url, profiles are pushed and leave the spool"
	"nothing lost, nothing extra, the IDs of the series' names"
	"vigild exits 0 on SIGTERM; the collector saw no protocol break"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
spool_require

P=$T/pki
mkdir -p "$P"
cd "$P" || exit 1
if ! { mkca server && mkca agent && mkca policy &&
	leaf agent host1 host1 "extendedKeyUsage = clientAuth" && chmod 600 ./*.key; }; then
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "the test PKI could not be made"; done
	tap_done
fi
cd "$T" || exit 1
# A port nothing listens on (lib.sh free_port).
CP_PORT=$(free_port)

OUT=$T/profiles
pyro_start recv || { for t in "${TESTS[@]}"; do tap_not_ok "$t" "no receiver"; done; tap_done; }
vigild_start "$T/vigild.log" --hz 49 --interval 2 --output "$OUT" --no-top \
	--control-plane "https://127.0.0.1:$CP_PORT" --cert "$P/host1.pem" --key "$P/host1.key" \
	--ca "$P/server-ca.pem" --policy-trust "$P/policy-ca.pem" --state-dir "$T/state" \
	--poll-interval 1 --export-url "$PYRO_URL" --export-max-rate 100 --metrics-listen none
spool_watch "$OUT" || tap_diag "the output directory did not appear: $(tail -5 "$T/vigild.log")"
vigild_wait_ready 30 || tap_diag "vigild did not start sampling; its log:" "$(tail -20 "$T/vigild.log")"
pyro_wait_samples 30 10
# dirwatch may miss files pushed before it could link them (export_outage.sh)
has_written() { [ -n "$(spool_written)" ]; }
wait_for 30 has_written
spool_written >"$T/w1"
# Those files leave the spool: each push is acked through the control
# plane's side of the collector, down or not.  Within 20 s (it takes about
# one interval; the receiver checks each push with go tool pprof before it
# answers, which a loaded host makes slow); a spool the acks never reach
# keeps them for good.
stale() { comm -12 <(spool_now "$OUT") "$T/w1"; }
drained() { [ -z "$(stale)" ]; }
wait_for 20 drained
n=$(pyro_samples '.status == 200' | wc -l)
stale=$(stale)
tap_result "${TESTS[0]}" "$([ "$n" -ge 10 ] && [ -s "$T/w1" ] && [ -z "$stale" ]; echo $?)" \
	"$n samples received; still spooled after 20 s: $(echo $stale | head -c 300); $(grep -i 'export\|control plane' "$T/vigild.log" | head -5)"
kill -TERM "$VIGILD_PID"
vigild_wait 30
sleep 0.5
spool_written >"$T/written"
spool_now "$OUT" >"$T/remaining"
spool_compare "$T/written" "$T/remaining" >"$T/compare"
tap_diag "$(grep -v '^lost\|^unsent' "$T/compare" | head -5 | tr '\n' ' ')lost $(grep -c '^lost' "$T/compare")"
bad=$(grep '^lost \|^extra \|^badid \|^dupid \|^dupseries \|^unreadable ' "$T/compare")
tap_result "${TESTS[1]}" "$([ -z "$bad" ]; echo $?)" "$(echo "$bad" | head -5)"
tap_result "${TESTS[2]}" "$([ "$VIGILD_RC" = 0 ] && ! grep -q 'broke the protocol' "$T/vigild.log"; echo $?)" \
	"exit $VIGILD_RC; $(grep 'broke' "$T/vigild.log" | head -3)"
tap_done
