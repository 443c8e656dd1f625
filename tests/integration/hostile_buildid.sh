#!/bin/bash
# tests/integration/hostile_buildid.sh - a build-id is what a file's note
# says, and any user can write a file whose note says libc's.  An
# unprivileged process maps such a file R+X (tests/tools/fakebid: a few
# hundred bytes of headers, sparse up to libc's size, one function
# mallory_was_here over all of it) while vigild --build-id profiles the
# host, where every process's libc frames arrive as (libc's build-id,
# offset).  No frame of another process may be named from that file: the
# libc frames of the syscalls workload (read) stay libc's.

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
mkdir -p "$T/spoof"
"$FAKEBID" "$LIBC" "$T/spoof/libc-fake.so" mallory_was_here
chown -R 65534:65534 "$T/spoof"
tap_diag "forged: $T/spoof/libc-fake.so, $(du -h "$T/spoof/libc-fake.so" | cut -f1) on disk," \
	"build-id $(readelf -n "$T/spoof/libc-fake.so" | awk '/Build ID/ { print $3 }') (libc: $(readelf -n "$LIBC" | awk '/Build ID/ { print $3 }'))"

OUT=$T/profiles # vigild creates it
VIGILD_TIMEOUT=60
vigild_start "$T/vigild.log" --build-id --hz 99 --interval 3 --duration 12 --output "$OUT"
vigild_wait_ready 20 || tap_diag "vigild not sampling after 20 s:" "$(tail -5 "$T/vigild.log")"

# The forger first, as nobody; the victim once the forgery is in place.
spawn setpriv --reuid 65534 --regid 65534 --clear-groups \
	"$WLD/spoofer" --file "$T/spoof/libc-fake.so" --seconds 9
SPOOF=$SPAWNED_PID
sleep 2
spawn "$WLD/syscalls" --seconds 6
SYS=$SPAWNED_PID
wait "$SPOOF" "$SYS"
vigild_wait 40
mapfile -t FILES < <(profile_files "$OUT")

tap_result "${TESTS[0]}" $([ "$VIGILD_RC" -eq 0 ]; echo $?) \
	"vigild exit $VIGILD_RC; its log:" "$(tail -10 "$T/vigild.log")"

pq stacks --label pid=$SPOOF "${FILES[@]}" >"$T/spoof.folded" 2>/dev/null
read -r _ spun < <(inclusive spoofer_spin <"$T/spoof.folded")
tap_result "${TESTS[1]}" $([ "$spun" -ge 10 ]; echo $?) \
	"spoofer (pid $SPOOF): $spun samples in spoofer_spin" "$(sort -rn "$T/spoof.folded" | head -3)"

# Every sample of every process but the spoofer, with its pid.
bad=""
for pid in $(pq labels pid "${FILES[@]}" 2>/dev/null | awk '{ print $1 }' | sort -u); do
	[ "$pid" = "$SPOOF" ] && continue
	n=$(pq stacks --label pid="$pid" "${FILES[@]}" 2>/dev/null | awk -F'\t' '$2 ~ /(^|;)mallory_was_here(;|$)/ { n += $1 } END { print n + 0 }')
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
