#!/bin/bash
# tests/integration/hostile_buildid.sh - a build-id is what a file's note
# says, and any user can write a file whose note says libc's
# (tests/tools/fakebid: a few hundred bytes of headers, sparse up to
# libc's size, one function mallory_was_here over all of it).  While
# vigild --build-id profiles the host, where every process's libc frames
# arrive as (libc's build-id, offset), nobody runs the attack
# (tests/workloads/spoofer): one process maps 400 files slow to parse, to
# spend the collector's parse-time credit; right after, another maps the
# forged file, which is then met with no credit left and deferred; it
# forks a child every second, and at a child's look, with credit again,
# the forged file is parsed.  Before the fix that parse replaced libc in
# the build-id table, and the libc frames of every process were named
# mallory_was_here from then on.  Now no frame of another process may be
# named from the forged file: the syscalls workload's read stays libc's.
#
# It runs with the serial scripts, not in tests/run.sh's lane beside them:
# every vigild on the host samples the flood and spends its own parse
# credit on the 400 files, so the other scripts' workloads would have
# their new files deferred, and frames they judge by name left unnamed.

. "$(dirname "$0")/lib.sh"

TESTS=(
	"build-id spoofing: vigild --build-id exits 0"
	"build-id spoofing: the spoofer, mapping the forged file, is profiled"
	"build-id spoofing: no frame of another process is named from the forged file"
	"build-id spoofing: syscalls' libc frames are named from libc"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"
FAKEBID=$B/tests/tools/fakebid
require_file "$FAKEBID" "${TESTS[@]}"
require_file "$WLD/spoofer" "${TESTS[@]}"

LIBC=$(ldd "$WLD/syscalls" | awk '$1 ~ /^libc\.so/ { print $3 }')
mkdir -p "$T/spoof/slow"
"$FAKEBID" "$LIBC" "$T/spoof/libc-fake.so" mallory_was_here
"$FAKEBID" --slow "$T/spoof/slow" 400
chown -R 65534:65534 "$T/spoof"
tap_diag "forged: $T/spoof/libc-fake.so, $(du -h "$T/spoof/libc-fake.so" | cut -f1) on disk," \
	"build-id $(readelf -n "$T/spoof/libc-fake.so" | awk '/Build ID/ { print $3 }') (libc: $(readelf -n "$LIBC" | awk '/Build ID/ { print $3 }'))"

OUT=$T/profiles # vigild creates it
VIGILD_TIMEOUT=60
vigild_start "$T/vigild.log" --build-id --hz 99 --interval 3 --duration 18 --output "$OUT"
vigild_wait_ready 20 || tap_diag "vigild not sampling after 20 s:" "$(tail -5 "$T/vigild.log")"

NOBODY=(setpriv --reuid 65534 --regid 65534 --clear-groups) # execs: the pid is the workload's
spawn "${NOBODY[@]}" "$WLD/spoofer" flood "$T/spoof/slow" --seconds 14
FLOOD=$SPAWNED_PID
sleep 0.3
spawn "${NOBODY[@]}" "$WLD/spoofer" file "$T/spoof/libc-fake.so" --seconds 14 --fork-every 1
SPOOF=$SPAWNED_PID
sleep 4
spawn "$WLD/syscalls" --seconds 8
SYS=$SPAWNED_PID
wait "$FLOOD" "$SPOOF" "$SYS"
vigild_wait 40
mapfile -t FILES < <(profile_files "$OUT")

tap_result "${TESTS[0]}" $([ "$VIGILD_RC" -eq 0 ]; echo $?) \
	"vigild exit $VIGILD_RC; its log:" "$(tail -10 "$T/vigild.log")"

pq stacks --label pid=$SPOOF "${FILES[@]}" >"$T/spoof.folded" 2>/dev/null
pq stacks --label pid=$FLOOD "${FILES[@]}" >"$T/flood.folded" 2>/dev/null
read -r _ spun < <(inclusive spoofer_spin <"$T/spoof.folded")
read -r _ flooded < <(inclusive spoofer_spin <"$T/flood.folded")
tap_result "${TESTS[1]}" $([ "$spun" -ge 10 ] && [ "$flooded" -ge 10 ]; echo $?) \
	"spoofer (pid $SPOOF): $spun samples in spoofer_spin; flood (pid $FLOOD): $flooded"

# Every sample of every process but the attacker's (spoofer_spin in them).
bad=""
for pid in $(pq labels pid "${FILES[@]}" 2>/dev/null | awk -F'\t' '{ print $2 }' | sort -u); do
	pq stacks --label pid="$pid" "${FILES[@]}" >"$T/pid.folded" 2>/dev/null
	has_frame spoofer_spin <"$T/pid.folded" && continue
	n=$(awk -F'\t' '$2 ~ /(^|;)mallory_was_here(;|$)/ { n += $1 } END { print n + 0 }' "$T/pid.folded")
	[ "$n" -eq 0 ] || bad+="pid $pid: $n samples named mallory_was_here; "
done
tap_result "${TESTS[2]}" $([ -z "$bad" ]; echo $?) "$bad"

pq stacks --label pid=$SYS "${FILES[@]}" >"$T/sys.folded" 2>/dev/null
all=$(stacks_sum <"$T/sys.folded")
read -r _ named < <(inclusive read <"$T/sys.folded")
tap_diag "syscalls (pid $SYS): $named of $all samples under libc's read"
tap_result "${TESTS[3]}" $([ "$all" -ge 20 ] && [ $((named * 100)) -ge $((all * 50)) ]; echo $?) \
	"syscalls: $named of $all samples under read" "$(sort -rn "$T/sys.folded" | head -5 | cut -c1-300)"

tap_done
