#!/bin/bash
# tests/integration/shortlived_wake.sh - processes that live 150 ms are
# symbolized, though the collector no longer drains on a short timer.
#
# The BPF program writes samples into the ring without waking anyone,
# except for a process's first sample (and a ring half full): the
# collector, woken, drains at once and captures the process's maps and
# files while it lives (bpf/profile.bpf.c, wake_flag).  Otherwise it drains
# at most 5 s apart (DRAIN_MAX_NS), by which time a 150 ms process is gone: its
# copied stacks could not be unwound nor its addresses symbolized.
#
# vigild at 49 Hz, at its default (DWARF) unwinding; eight shortlived
# processes, one after another, each burning 150 ms of CPU time in
# short_burn() (--cpu-ms: on an idle host it lives 150 ms, on a loaded one
# longer, and it has about 7 samples either way; burning 150 ms of wall
# time, a process that got a sixth of a CPU had none 30% of the time).
# Each one sampled must have most of its samples under short_burn (a
# sample may fall in the dynamic loader before main).

. "$(dirname "$0")/lib.sh"

TESTS=(
	"at least 6 of 8 processes of 150 ms were sampled (49 Hz: about 7 samples each)"
	"each one sampled is symbolized: most of its samples are under short_burn"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"
require_file "$WLD/shortlived" "${TESTS[@]}"

OUT=$T/profiles
vigild_start "$T/vigild.log" --hz 49 --interval 30 --duration 12 --output "$OUT"
vigild_wait_ready 20 || tap_diag "vigild not sampling:" "$(tail -5 "$T/vigild.log")"
sleep 1

PIDS=()
for _ in 1 2 3 4 5 6 7 8; do
	"$WLD/shortlived" --cpu-ms 150 &
	PIDS+=($!)
	wait $!
	sleep 0.2
done
vigild_wait 40
mapfile -t FILES < <(profile_files "$OUT")

sampled=0 symbolized=0 why=
for p in "${PIDS[@]}"; do
	n=$(pq total --label pid="$p" "${FILES[@]}" 2>/dev/null || echo 0)
	[ "${n:-0}" -gt 0 ] || continue
	sampled=$((sampled + 1))
	s=$(pq stacks --label pid="$p" "${FILES[@]}" 2>/dev/null | inclusive short_burn | awk '{ print $2 }')
	if [ "${s:-0}" -gt $((n / 2)) ]; then
		symbolized=$((symbolized + 1))
	else
		why+="pid $p: ${s:-0} of $n samples under short_burn: $(pq stacks --label pid="$p" "${FILES[@]}" 2>/dev/null | sort -rn | head -2 | cut -c1-200 | tr '\n' ' '); "
	fi
done
tap_result "${TESTS[0]}" $([ "$sampled" -ge 6 ]; echo $?) \
	"$sampled of 8 sampled (vigild exit $VIGILD_RC; ${#FILES[@]} profiles)" "$(tail -5 "$T/vigild.log")"
tap_result "${TESTS[1]}" $([ "$sampled" -gt 0 ] && [ "$symbolized" -eq "$sampled" ]; echo $?) \
	"$symbolized of $sampled sampled processes symbolized" "$why"
tap_diag "$sampled of 8 processes sampled, $symbolized symbolized"

tap_done
