#!/bin/bash
# tests/integration/buildid.sh - vigild --build-id: the kernel resolves user
# frames to (build-id, file offset) at sample time, and the collector turns
# them into the same symbols and one mapping per file carrying its build-id.
# Every test also requires that vigild ran its 8 s and exited 0: profiles
# left by a vigild that failed prove nothing.

. "$(dirname "$0")/lib.sh"

TESTS=(
	"--build-id: cpusplit's functions symbolized from build-id frames"
	"--build-id: a process that lived 0.3 s (0.3 s of CPU) is symbolized"
	"--build-id: the workload's mapping carries the binary's build-id"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"

OUT=$T/profiles # vigild creates it
VIGILD_TIMEOUT=60
vigild_start "$T/vigild.log" --build-id --hz 99 --interval 3 --duration 8 --output "$OUT"
vigild_wait_ready 20 || tap_diag "vigild not sampling after 20 s:" "$(tail -5 "$T/vigild.log")"

spawn "$WLD/cpusplit" --seconds 4 --threads 1
SPLIT=$SPAWNED_PID
spawn "$WLD/shortlived" --cpu-ms 300 # samples however little of a CPU it gets
SHORT=$SPAWNED_PID
wait "$SPLIT" "$SHORT"
vigild_wait 40
mapfile -t FILES < <(profile_files "$OUT")
# vigild_ok: true when vigild exited 0 (checked by every test below).
vigild_ok() { [ "$VIGILD_RC" -eq 0 ]; }
RAN="vigild exit $VIGILD_RC (want 0) after $((VIGILD_RAN_MS / 1000)) s, ${#FILES[@]} profile(s)"

pq stacks --label pid=$SPLIT "${FILES[@]}" >"$T/split.folded" 2>&1
tap_result "${TESTS[0]}" \
	$(vigild_ok && has_frame burn_alpha <"$T/split.folded" && has_frame burn_beta <"$T/split.folded" &&
		has_frame burn_gamma <"$T/split.folded"; echo $?) \
	"$RAN; top stacks of pid $SPLIT:" "$(sort -rn "$T/split.folded" | head -5 | cut -c1-300)" \
	"$(tail -5 "$T/vigild.log")"

pq stacks --label pid=$SHORT "${FILES[@]}" >"$T/short.folded" 2>&1
tap_result "${TESTS[1]}" $(vigild_ok && has_frame short_burn <"$T/short.folded"; echo $?) \
	"$RAN; top stacks of pid $SHORT:" "$(sort -rn "$T/short.folded" | head -5 | cut -c1-300)"

want=$(readelf -n "$WLD/cpusplit" | awk '/Build ID/ { print $3 }')
got=$(pq mappings "${FILES[@]}" 2>&1 | awk -F'\t' -v p="$WLD/cpusplit" '$5 == p { print $6 }' | sort -u)
tap_result "${TESTS[2]}" $(vigild_ok && [ -n "$want" ] && [ "$got" = "$want" ]; echo $?) \
	"$RAN; readelf says $want, the profile's mapping for $WLD/cpusplit says '${got:-none}'"

tap_done
