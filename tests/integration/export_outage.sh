#!/bin/bash
# tests/integration/export_outage.sh - a profile reaches Pyroscope even when
# Pyroscope is away for a minute: at least once, none lost, a resend
# recognisable by its RawSample.ID.
#
# vigild at --interval 2 pushes to the receiver (tests/tools/pyro_receiver,
# lib_pyro.sh); every spool file it writes is recorded as it appears
# (tests/tools/dirwatch, lib_spool.sh).  The receiver is stopped for 60 s
# and started again on the same port.  Then the set of (interval start,
# service, tenant) that arrived is compared with the set of files written.
#
# It mostly waits, and asserts nothing another test's load could change:
# tests/run.sh runs it in its pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pyro.sh"
. "$(dirname "$0")/lib_spool.sh"

TESTS=(
	"before the outage: profiles arrive, one series per service, and leave the spool"
	"during the outage: every file written stays in the spool (none unlinked without an ack)"
	"after the outage: the backlog drains, oldest first"
	"none lost: every file written and gone from the spool arrived"
	"nothing arrived that was not written; resends carry the ID derived from host and file name"
	"SIGTERM: vigild exits 0 and says what waits for the next run"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
spool_require

OUTAGE=60
OUT=$T/profiles
spool_receiver
spool_spin

VIGILD_TIMEOUT=$((OUTAGE + 240))
# --export-max-rate 50: this shared host has many processes, and a backlog
# drains only if pushes outpace the series each interval adds.
vigild_start "$T/vigild.log" --hz 49 --interval 2 --output "$OUT" --no-top \
	--export-url "$PYRO_URL" --export-max-rate 50
spool_watch "$OUT" || tap_diag "the output directory did not appear: $(tail -5 "$T/vigild.log")"
vigild_wait_ready 20 || tap_diag "vigild did not start sampling; its log:" "$(tail -20 "$T/vigild.log")"

# 1. Up: profiles arrive and their files go.
pyro_wait_samples 20 6
# What was written is known from dirwatch's hard links, and a file pushed
# and unlinked before dirwatch could link it is not (pushes are quick, and
# dirwatch may wait for a CPU on a loaded host; CI once caught none in the
# first intervals): wait until it has caught one.
has_written() { [ -n "$(spool_written)" ]; }
wait_for 30 has_written
spool_written >"$T/w1"
sleep 3
before=$(pyro_samples '.status == 200' | wc -l)
services=$(pyro_samples '.status == 200' | jq -r '.labels.service_name' | sort -u | wc -l)
# what was written 3 s ago has been pushed and unlinked
stale=$(comm -12 <(spool_now "$OUT") "$T/w1")
tap_result "${TESTS[0]}" "$([ "$before" -ge 6 ] && [ "$services" -ge 2 ] && [ -s "$T/w1" ] && [ -z "$stale" ]; echo $?)" \
	"received $before samples of $services services; $(wc -l <"$T/w1") series written by then" \
	"(dirwatch saw $(grep -c '\.push$' "$SPOOL_SEEN") files, linked $(find "$SPOOL_SHADOW" -name '*.push' | wc -l));" \
	"files of the first intervals still spooled: $(echo $stale | head -c 300)"

# 2. Down for a minute.
pyro_stop
down_at=$(spool_written | wc -l)
sleep "$OUTAGE"
during=$(spool_written | tail -n +"$((down_at + 1))")
missing=$(comm -23 <(echo "$during" | sort) <(spool_now "$OUT"))
n_during=$(echo "$during" | grep -c .)
# An interval of 2 s for a minute: about 30 intervals, each one file or
# more (the spinner is in each).  A loaded machine can stretch the
# collector's intervals (each file is fsynced): a third of them is enough to
# say that files were written and kept.
tap_result "${TESTS[1]}" "$([ "$n_during" -ge $((OUTAGE / 6)) ] && [ -z "$missing" ]; echo $?)" \
	"$n_during files written during the outage; gone without an ack: $(echo $missing | head -c 300)"

# 3. Up again: everything written until now leaves the spool.  The uplink
# may be waiting out a backoff that grew during the outage (up to 64 s).
backlog=$(spool_now "$OUT")
pyro_restart || tap_diag "the receiver did not restart"
up_at=$(now_ms)
drained() { [ -z "$(comm -12 <(echo "$backlog") <(spool_now "$OUT"))" ]; }
wait_for 150 drained
drain_ms=$(($(now_ms) - up_at))
# Oldest first: one profile in flight at a time, the oldest, so across the
# whole run the interval starts arrive in order (an interval's series share
# their start).
order=$(python3 - "$PYRO_LOG" <<'PY'
import json, sys
t = [s["time_nanos"] for line in open(sys.argv[1]) for r in [json.loads(line)]
     if r.get("status") == 200 for s in (r.get("samples") or [])]
bad = sum(1 for a, b in zip(t, t[1:]) if b < a)
print("ok" if bad == 0 else f"{bad} of {len(t)} arrived before an older one")
PY
)
tap_result "${TESTS[2]}" "$(drained && [ "$order" = ok ]; echo $?)" \
	"backlog of $(echo "$backlog" | grep -c .) files; drained: $(drained && echo yes || echo no) after ${drain_ms} ms; order: $order; spool now: $(spool_now "$OUT" | wc -l)"

# Stop, then compare.
sleep 3
kill -TERM "$VIGILD_PID"
vigild_wait 30
sleep 0.5
spool_written >"$T/written"
spool_now "$OUT" >"$T/remaining"
spool_compare "$T/written" "$T/remaining" >"$T/compare"
tap_diag "$(grep -v '^lost\|^unsent' "$T/compare" | head -5 | tr '\n' ' ')lost $(grep -c '^lost' "$T/compare")"
lost=$(grep '^lost ' "$T/compare")
tap_result "${TESTS[3]}" "$([ -z "$lost" ] && [ "$(awk '$1 == "received" { print $2 }' "$T/compare")" -gt 30 ]; echo $?)" \
	"$(grep -v '^lost\|^unsent' "$T/compare" | head -8 | tr '\n' ' ') lost: $(echo $lost | head -c 400)"
bad=$(grep '^extra \|^badid \|^dupid \|^mislabelled \|^dupseries \|^unreadable ' "$T/compare")
tap_result "${TESTS[4]}" "$([ -z "$bad" ]; echo $?)" "$(echo "$bad" | head -5)"
# What waits: as many profiles (series) as remain, or as many files, and
# their bytes, whichever the line counts in.
n_files=$(spool_files "$OUT" | wc -l)
n_series=$(grep -c . "$T/remaining")
bytes=$(find "$OUT" -maxdepth 1 -name "$SPOOL_GLOB" -printf '%s\n' | awk '{ t += $1 } END { print t + 0 }')
waits=$(sed -n 's/.*export: \([0-9]*\) \(profile\|file\)(s) (\([0-9]*\) bytes) wait in the spool for the next run.*/\1 \2 \3/p' "$T/vigild.log" | tail -1)
case $waits in
"$n_series profile $bytes" | "$n_files file $bytes") said=ok ;;
"" ) said="no line saying what waits (with $n_files files left)" ;;
*) said="the line says '$waits'; left: $n_files files, $n_series series, $bytes bytes" ;;
esac
[ "$n_files" = 0 ] && [ -z "$waits" ] && said=ok
tap_result "${TESTS[5]}" "$([ "$VIGILD_RC" = 0 ] && [ "$said" = ok ]; echo $?)" \
	"exit $VIGILD_RC; $said; $(tail -3 "$T/vigild.log" | tr '\n' ' ')"
tap_done
