#!/bin/bash
# tests/integration/output_errors.sh - vigild survives an output directory
# that fills up or turns read-only: it says so on stderr, keeps sampling,
# and writes profiles again once the directory is usable.
#
# The output directory is a 1 MiB tmpfs: room for the profiles held back
# while it was full and those written after, whatever else the host runs
# (vigild profiles every process: a busy host's profiles are larger, and
# with 64 KiB the last one, at SIGTERM, once found no room).  With 2 s
# intervals:
#   1. wait for a first profile;
#   2. fill the tmpfs: an error naming the lack of space must appear on
#      stderr and vigild must stay up; free the space (filler and old
#      profiles): a new profile must appear and be valid;
#   3. remove the profiles and remount the tmpfs read-only: same, with
#      the read-only error, until it is remounted read-write.
# Then SIGTERM: exit 0 and no temporary files left behind.

. "$(dirname "$0")/lib.sh"

TESTS=(
	"full output directory: error on stderr, vigild keeps running"
	"full output directory: profiles written again once space is freed"
	"read-only output directory: error on stderr, vigild keeps running"
	"read-only output directory: profiles written again once writable"
	"after output errors: SIGTERM exits 0, no temporary files left"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"

OUT=$T/spool
LOG=$T/vigild.log
# The user's own (a directory others may write is refused, rightly).
read -r VUID VGID <<<"$(vigil_user_ids)"
tmp_mount "$OUT" -t tmpfs -o "size=1m,mode=0750,uid=$VUID,gid=$VGID" tmpfs ||
	{ for n in "${TESTS[@]}"; do tap_not_ok "$n" "cannot mount a tmpfs on $OUT"; done; tap_done; }

spawn "$WLD/cpusplit" --seconds 60
VIGILD_TIMEOUT=120
vigild_start "$LOG" --hz 99 --interval 2 --duration 0 --output "$OUT"
vigild_wait_ready 20

# wait_new_profile AFTER_COUNT TIMEOUT: wait for more than AFTER_COUNT profiles.
wait_new_profile() {
	local n=$1 limit=$(($(now_ms) + $2 * 1000))
	while [ "$(now_ms)" -lt "$limit" ]; do
		[ "$(profile_files "$OUT" | wc -l)" -gt "$n" ] && return 0
		kill -0 "$VIGILD_PID" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

# log_since LINE: vigild's log from line LINE on.
log_since() { tail -n +"$1" "$LOG"; }

# check_error NAME PATTERN FROM_LINE: after two intervals, the log since
# FROM_LINE mentions PATTERN and vigild is still alive.
check_error() {
	local name=$1 pat=$2 from=$3 problems=
	sleep 5
	kill -0 "$VIGILD_PID" 2>/dev/null && [ "$(awk '{print $3}' /proc/"$VIGILD_PID"/stat)" != Z ] ||
		problems+="vigild exited; "
	log_since "$from" | grep -qiE "$pat" || problems+="no /$pat/ on stderr; "
	tap_result "$name" $([ -z "$problems" ]; echo $?) "$problems" "log since:" "$(log_since "$from" | tail -8)"
}

# check_recovery NAME COUNT: a profile beyond COUNT appears and is valid.
check_recovery() {
	local name=$1 count=$2 newest out
	if wait_new_profile "$count" 10; then
		newest=$(profile_files "$OUT" | tail -1)
		out=$(validate_profiles "$newest")
		tap_result "$name" $? "$out"
	else
		tap_not_ok "$name" "no new profile within 10 s ($count before); log:" "$(tail -8 "$LOG")"
	fi
}

if ! wait_new_profile 0 15; then
	for n in "${TESTS[@]}"; do
		tap_not_ok "$n" "no first profile in 15 s; log:" "$(tail -10 "$LOG")"
	done
	tap_done
fi

# Full.  dd stops at ENOSPC; nothing else can then be written.
from=$(($(wc -l <"$LOG") + 1))
dd if=/dev/zero of="$OUT/filler" bs=4k 2>/dev/null
check_error "${TESTS[0]}" 'no space|ENOSPC|space left' "$from"
rm -f "$OUT/filler" "$OUT"/*.pb.gz
check_recovery "${TESTS[1]}" 0

# Read-only.
from=$(($(wc -l <"$LOG") + 1))
rm -f "$OUT"/*.pb.gz
mount -o remount,ro "$OUT"
check_error "${TESTS[2]}" 'read-only|EROFS' "$from"
mount -o remount,rw "$OUT"
check_recovery "${TESTS[3]}" 0

kill -TERM "$VIGILD_PID"
vigild_wait 20
leftover=$(find "$OUT" -mindepth 1 -name '.*' | head -3)
tap_result "${TESTS[4]}" $([ "$VIGILD_RC" -eq 0 ] && [ -z "$leftover" ]; echo $?) \
	"exit $VIGILD_RC; temporary files: ${leftover:-none}"

tap_done
