#!/bin/bash
# tests/integration/export_restart.sh - at least once across restarts: the
# profiles one run could not push are found by the next and pushed first,
# oldest first, with the same RawSample.ID; what is not the spool's in the
# output directory is left alone.
#
# Run 1 exports to a receiver that is down (lib_pyro.sh: started for its
# port, then stopped) and stops after 6 s.  Run 2 starts with the receiver up.
# The spool holds one file per interval (cpu-<stamp>_<k>_<n>.push, its
# series' PushRequest); the series in them are read with pushdump
# (lib_spool.sh).
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pyro.sh"
. "$(dirname "$0")/lib_spool.sh"

TESTS=(
	"run 1, target down: its profiles stay in the spool after it exits"
	"run 2 finds them at start and says so"
	"run 2 pushes them first, oldest first, with the IDs of their series' names"
	"nothing lost over the two runs"
	"files that are not the spool's are left alone (an older vigild's per-series file with one log line)"
	"a spooled file over 16 MiB, or empty, is dropped with a log line, not retried"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
spool_require

OUT=$T/profiles
pyro_start recv || { for t in "${TESTS[@]}"; do tap_not_ok "$t" "no receiver"; done; tap_done; }
pyro_stop

vigild_start "$T/run1.log" --hz 49 --interval 2 --duration 6 --output "$OUT" --no-top \
	--export-url "$PYRO_URL" --metrics-listen none
spool_watch "$OUT" || tap_diag "the output directory did not appear: $(tail -5 "$T/run1.log")"
vigild_wait 60
# What run 1 left: its files, and their series in the order they will be sent.
files_left=$(spool_files "$OUT")
n_files=$(echo "$files_left" | grep -c .)
left=$(for f in $files_left; do "$PUSHDUMP" "$OUT/$f" | cut -f1; done)
n_left=$(echo "$left" | grep -c .)
tap_result "${TESTS[0]}" "$([ "$VIGILD_RC" = 0 ] && [ "$n_left" -ge 3 ] &&
	[ "$(spool_written | wc -l)" = "$n_left" ]; echo $?)" \
	"exit $VIGILD_RC; $n_left series left in $n_files files, of $(spool_written | wc -l) written"
# Not the spool's: an export-off profile, an older vigild's per-series
# profile and a stranger's file.
spool_extract "$T/series1"
one=$(ls "$T/series1" | head -1)
echo hello >"$OUT/notes.txt"
cp "$T/series1/$one" "$OUT/cpu-20250101T000000.000Z.pb.gz"
LEGACY=cpu-20250101T000003.000Z@old@default.pb.gz
cp "$T/series1/$one" "$OUT/$LEGACY"
chown --reference="$OUT" "$OUT/notes.txt" "$OUT/cpu-20250101T000000.000Z.pb.gz" "$OUT/$LEGACY"
# Spool files that can never be pushed, older than run 1's (so sent first).
BIG=cpu-20250101T000001.000Z_0_1.push
EMPTY=cpu-20250101T000002.000Z_0_1.push
truncate -s 17M "$OUT/$BIG"
: >"$OUT/$EMPTY"
chown --reference="$OUT" "$OUT/$BIG" "$OUT/$EMPTY"
# No run wrote them: out of what lib_spool.sh compares (dirwatch keeps a link).
wait_for 5 eval '[ -e "$SPOOL_SHADOW/$BIG" ] && [ -e "$SPOOL_SHADOW/$EMPTY" ]'
rm -f "$SPOOL_SHADOW/$BIG" "$SPOOL_SHADOW/$EMPTY"

pyro_restart || tap_diag "the receiver did not restart"
vigild_start "$T/run2.log" --hz 49 --interval 2 --duration 6 --output "$OUT" --no-top \
	--export-url "$PYRO_URL" --metrics-listen none --export-max-rate 100
vigild_wait 60
tap_result "${TESTS[1]}" "$(grep -q "export: $((n_files + 2)) file(s) left by a previous run wait in the spool" "$T/run2.log"; echo $?)" \
	"$(grep 'export:' "$T/run2.log" | head -3)"
# The first n_left samples received are run 1's series, in file order.
first=$(pyro_samples '.status == 200' | head -n "$n_left" | jq -r .id)
want=$(for n in $left; do python3 -c '
import hashlib, sys
h = bytearray(hashlib.sha256(sys.argv[1].encode() + b"\0" + sys.argv[2].encode()).digest()[:16])
h[6] = (h[6] & 0x0F) | 0x80; h[8] = (h[8] & 0x3F) | 0x80; x = h.hex()
print(f"{x[0:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}")' "$(hostname)" "$n"; done)
tap_result "${TESTS[2]}" "$([ -n "$first" ] && [ "$first" = "$want" ]; echo $?)" \
	"first received: $(echo $first | head -c 200) want: $(echo $want | head -c 200)"
spool_written >"$T/written"
spool_now "$OUT" >"$T/remaining"
spool_compare "$T/written" "$T/remaining" >"$T/compare"
tap_diag "$(grep -v '^lost\|^unsent' "$T/compare" | head -5 | tr '\n' ' ')lost $(grep -c '^lost' "$T/compare")"
bad=$(grep '^lost \|^extra \|^badid \|^dupid \|^dupseries \|^unreadable ' "$T/compare")
tap_result "${TESTS[3]}" "$([ -z "$bad" ]; echo $?)" "$(echo "$bad" | head -5)"
tap_result "${TESTS[4]}" "$([ -f "$OUT/notes.txt" ] && [ -f "$OUT/cpu-20250101T000000.000Z.pb.gz" ] &&
	[ -f "$OUT/$LEGACY" ] && cmp -s "$OUT/$LEGACY" "$T/series1/$one" &&
	[ "$(grep -c 'export: 1 per-series profile file(s) (cpu-<stamp>@<service>@<tenant>.pb.gz) of an older vigild' "$T/run2.log")" = 1 ] &&
	[ "$(pyro_samples '.labels.service_name == "old"' | wc -l)" = 0 ]; echo $?)" \
	"$(ls "$OUT" | grep -v '\.push$' | head)" "$(grep 'older vigild' "$T/run2.log")"
tap_result "${TESTS[5]}" "$([ ! -e "$OUT/$BIG" ] && [ ! -e "$OUT/$EMPTY" ] &&
	grep -q "$BIG cannot be sent (larger than the 16 MiB" "$T/run2.log" &&
	grep -q "$EMPTY cannot be sent (empty)" "$T/run2.log" &&
	[ "$(grep -c 'cannot be sent' "$T/run2.log")" = 2 ] &&
	[ "$(pyro_requests '.body_bytes == 0 or .body_bytes > 16000000' | wc -l)" = 0 ]; echo $?)" \
	"$(grep 'cannot be sent' "$T/run2.log" | head -3) $(ls "$OUT" | grep '^cpu-20250101')"
tap_done
