#!/bin/bash
# tests/integration/outdir.sh - vigild's --output is resolved without
# following symbolic links, and only a directory vigild creates is handed
# to the vigil user (security finding 1 of issue 8).
#
#   1-2. In a sticky world-writable directory (mode 1777) another user
#        (nobody) plants a symlink at the output path, pointing to an empty
#        root-owned directory: vigild exits 73 with one line naming the
#        symlink, and the target keeps its owner and mode.
#   3.   A symlink in a middle component: refused the same way, and nothing
#        is created through it.
#   4.   An existing empty root-owned directory vigild did not create: not
#        chowned, refused with the fix (chown vigil: DIR).
#   5.   A missing directory (and its missing parent): created, owned by
#        vigil with mode 0750 (the parent stays root's), profiles written.
#   6.   A second run on the directory it created: accepted, profiles written.
#
# It mostly waits on short vigild runs over its own directories and times
# nothing: tests/run.sh runs it in its pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"

TESTS=(
	"symlink planted by another user in a sticky directory: exit 73, one line naming the symlink"
	"symlink planted by another user: its target keeps its owner, mode and emptiness"
	"symlink in a middle component: exit 73 naming it, nothing created through it"
	"existing empty root-owned directory: exit 73 with the fix (chown vigil:), not chowned"
	"missing directory: created, owned by vigil 0750 (parent root's), profiles written, exit 0"
	"second run on the directory vigild created: used as it is, profiles written, exit 0"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"

VIGILD_TIMEOUT=60

# refused NAME DIR SAYS [CHECK...]: vigild --output DIR must exit 73 with
# exactly one line of output, containing SAYS; then CHECK (a command) must
# print nothing (what it prints is a problem).
refused() {
	local name=$1 dir=$2 says=$3 log=$T/refused.$TAP_N.log lines problems=
	shift 3
	vigild_start "$log" --hz 19 --interval 1 --duration 2 --output "$dir"
	vigild_wait 30
	lines=$(grep -c . "$log")
	[ "$VIGILD_RC" -eq 73 ] || problems+="exit $VIGILD_RC, not 73; "
	[ "$lines" -eq 1 ] || problems+="$lines lines of output, not 1; "
	grep -qF -- "$says" "$log" || problems+="no \"$says\"; "
	[ $# -gt 0 ] && problems+=$("$@")
	tap_result "$name" $([ -z "$problems" ]; echo $?) "$problems" "output:" "$(head -5 "$log")"
}

# owner_mode PATH: "uid:gid mode"
owner_mode() { stat -c '%u:%g %a' "$1"; }

# 1-2. The planted symlink.
PUB=$T/pub
VICTIM=$T/victim
mkdir "$PUB" "$VICTIM"
chmod 1777 "$PUB"
chmod 755 "$VICTIM"
setpriv --reuid nobody --regid nogroup --clear-groups ln -s "$VICTIM" "$PUB/out"
planted() { [ -L "$PUB/out" ] && [ "$(stat -c %U "$PUB/out")" = nobody ] || echo "no symlink of nobody's at $PUB/out; "; }
before=$(owner_mode "$VICTIM")
refused "${TESTS[0]}" "$PUB/out" "$PUB/out is a symbolic link" planted
after=$(owner_mode "$VICTIM")
tap_result "${TESTS[1]}" $([ "$before" = "$after" ] && [ -z "$(ls -A "$VICTIM")" ]; echo $?) \
	"before: $before, after: $after, holds: $(ls -A "$VICTIM" | head -3)"

# 3. A symlink in the middle.
mkdir "$T/real"
ln -s real "$T/mid"
not_through() { [ ! -e "$T/real/out" ] || echo "$T/real/out was created through the symlink; "; }
refused "${TESTS[2]}" "$T/mid/out" "$T/mid is a symbolic link" not_through

# 4. An existing empty root-owned directory.
mkdir "$T/existing"
chmod 755 "$T/existing"
unchanged() { [ "$(owner_mode "$T/existing")" = "0:0 755" ] || echo "$T/existing is now $(owner_mode "$T/existing"); "; }
refused "${TESTS[3]}" "$T/existing" "chown vigil: $T/existing" unchanged

# 5-6. A directory vigild creates, and the next run on it.
OUT=$T/made/profiles
vigil_ids="$(id -u vigil 2>/dev/null):$(id -g vigil 2>/dev/null)"
for run in 1 2; do
	name=${TESTS[$((run + 3))]}
	log=$T/made.$run.log
	problems=
	before=$(profile_files "$OUT" 2>/dev/null | wc -l)
	vigild_start "$log" --hz 49 --interval 1 --duration 3 --output "$OUT"
	vigild_wait 40
	[ "$VIGILD_RC" -eq 0 ] || problems+="exit $VIGILD_RC; "
	[ "$(owner_mode "$OUT" 2>/dev/null)" = "$vigil_ids 750" ] ||
		problems+="$OUT is $(owner_mode "$OUT" 2>&1), not $vigil_ids 750; "
	[ "$(owner_mode "$T/made" 2>/dev/null)" = "0:0 755" ] ||
		problems+="$T/made is $(owner_mode "$T/made" 2>&1), not root's 755; "
	mapfile -t files < <(profile_files "$OUT")
	[ ${#files[@]} -gt "$before" ] || problems+="no new profile (${#files[@]} in all); "
	[ ${#files[@]} -gt 0 ] && { out=$(validate_profiles "${files[@]}") || problems+="$out; "; }
	tap_result "$name" $([ -z "$problems" ]; echo $?) "$problems" "log:" "$(tail -5 "$log")"
done

tap_done
