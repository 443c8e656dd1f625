#!/bin/bash
# tests/integration/ring.sh - the ring buffer is sized by --hz, and at
# 999 Hz with every CPU busy it loses nothing.
#
# sampler_load.c gives each CPU 512 KiB of ring, or about a second of
# samples at 2 KiB each when --hz asks for more, up to 2 MiB: fewer
# wakeups of the collector at a high frequency (issue 13), the same RSS
# at the default one.  The size is read where the kernel says it, in the
# fdinfo of the ring's fd (map_type 27, BPF_MAP_TYPE_RINGBUF) held by
# vigild's processes.  Then, at 999 Hz with one benchspin per CPU (DWARF
# stack copies, the bench's workload), every profile must say lost=0.

. "$(dirname "$0")/lib.sh"

TESTS=(
	"--hz 19: the ring is 512 KiB a CPU (the CPUs' total rounded up to a power of two)"
	"--hz 999: the ring is 2 MiB a CPU (the same rounding)"
	"--hz 999, every CPU busy: samples taken and none lost"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"
require_file "$WLD/benchspin" "${TESTS[@]}"

NCPU=$(nproc)

# pow2 N: the least power of two >= N (and >= 4096), as sampler_load.c rounds.
pow2() {
	local p=4096
	while [ "$p" -lt "$1" ]; do p=$((p * 2)); done
	echo "$p"
}

# ring_entries: max_entries of the ring buffer map held by vigild's processes.
ring_entries() {
	local p f k v type entries
	for p in $(pid_tree "$VIGILD_PID"); do
		for f in /proc/"$p"/fdinfo/*; do
			type= entries=
			{ while read -r k v; do
				case $k in
				map_type:) type=$v ;;
				max_entries:) entries=$v ;;
				esac
			done <"$f"; } 2>/dev/null
			[ "$type" = 27 ] && { echo "$entries"; return; }
		done
	done
}

# size_result I PER_CPU LOG: the ring of the vigild running now against PER_CPU.
size_result() {
	local got want
	got=$(ring_entries)
	want=$(pow2 $((NCPU * $2)))
	tap_result "${TESTS[$1]}" $([ "${got:-0}" = "$want" ]; echo $?) \
		"$NCPU CPUs: ring of ${got:-none} bytes, want $want" "$(tail -5 "$3")"
}

vigild_start "$T/vigild.19.log" --hz 19 --interval 30 --duration 20 --output "$T/out.19"
vigild_wait_ready 20 || tap_diag "vigild --hz 19 not sampling:" "$(tail -5 "$T/vigild.19.log")"
size_result 0 $((512 << 10)) "$T/vigild.19.log"
kill -TERM "$VIGILD_PID" 2>/dev/null
vigild_wait 20

# A fifth of bench.sh's work per CPU, about 1.3 s here: the window need
# only hold some drains of a ring filled at full speed.
OUT=$T/busy
vigild_start "$T/vigild.busy.log" --hz 999 --interval 2 --duration 8 --output "$OUT"
vigild_wait_ready 20 || tap_diag "vigild not sampling:" "$(tail -5 "$T/vigild.busy.log")"
size_result 1 $((2 << 20)) "$T/vigild.busy.log"
pids=()
for ((i = 0; i < NCPU; i++)); do
	spawn "$WLD/benchspin" --ops 400000 >/dev/null
	pids+=("$SPAWNED_PID")
done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
vigild_wait 40
mapfile -t FILES < <(profile_files "$OUT")
samples=0 lost=0 comments=
for f in "${FILES[@]}"; do
	c=$(pq info "$f" 2>/dev/null | sed -n 's/^comment: vigil: hz=.* samples=\([0-9]*\) lost=\([0-9]*\) .*/\1 \2/p')
	[ -n "$c" ] || continue
	comments+="$c; "
	samples=$((samples + ${c% *}))
	lost=$((lost + ${c#* }))
done
tap_result "${TESTS[2]}" $([ "$samples" -gt $((NCPU * 999)) ] && [ "$lost" -eq 0 ]; echo $?) \
	"${#FILES[@]} profiles: $samples samples, $lost lost (samples lost: per profile $comments)" \
	"$(tail -5 "$T/vigild.busy.log")"
tap_done
