#!/bin/bash
# tests/integration/policyfile.sh - vigild opens its policy file without
# following symbolic links, and only if root owns it and neither group nor
# others may write it (security finding 2 of issue 8).  The monitor
# passes the opened file to the collector, so whatever it accepts, the
# collector can read.
#
#   1-4. At start: a symlinked policy, a group-writable one, an
#        other-writable one, one owned by another user: exit 78, one line
#        naming the file and why.
#   5-8. On SIGHUP, vigild running with a valid policy (tenant "alpha"),
#        the same four put in its place: each logged as refused, naming
#        why, "keeping the policy in force".
#   9.   After them: alpha's budget lines go on, no tenant of the refused
#        files appears, profiles keep being written.
#   10.  A valid policy (tenant "charlie") then reloads on SIGHUP.
#   11.  SIGTERM: exit 0.
#   12.  --check says what the daemon would: a valid policy that is
#        group-writable is refused (exit 78, naming why); made root-only,
#        it passes.
#
# It mostly waits, on its own files, with deadlines of 10 s:
# tests/run.sh runs it in its pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"

VARIANTS=(symlink group-writable other-writable other-owner)
LABELS=("a symlink" "group-writable" "other-writable" "owned by nobody")
SAYS=("is a symbolic link" "writable by its group" "writable by others" "owned by uid $(id -u nobody)")
TESTS=()
for l in "${LABELS[@]}"; do TESTS+=("at start, policy file $l: exit 78, one line naming it"); done
for l in "${LABELS[@]}"; do TESTS+=("on SIGHUP, policy file $l: refused and logged, the policy in force kept"); done
TESTS+=("after the refused reloads: the old policy still applies and profiles keep coming")
TESTS+=("a valid policy then reloads on SIGHUP")
TESTS+=("SIGTERM: exit 0")
TESTS+=("--check refuses a valid but group-writable policy (exit 78, why), passes it once root-only")
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"

CGROOT=$(cgroup2_root)
VIGILD_TIMEOUT=90

# write_policy FILE TENANT: a valid policy naming TENANT, root's, 0644.
write_policy() {
	cat >"$1" <<EOF
version: 1
defaults:
  hz: {min: 19, max: 19, start: 19}
  budget: {max_overhead_percent: 5.0}
tenants:
  - name: $2
    cgroups: ["${CGROOT:-/sys/fs/cgroup}/vigil-it-$$-$2"]
EOF
	chown root:root "$1"
	chmod 0644 "$1"
}

# bad VARIANT FILE: put a policy of tenant "bravo", made bad as VARIANT
# says, at FILE (replacing what is there, as an editor or mv would).
bad() {
	local v=$1 f=$2
	write_policy "$T/bravo.yaml" bravo
	rm -f "$f.new"
	case $v in
	symlink) ln -s "$T/bravo.yaml" "$f.new" ;;
	group-writable) cp "$T/bravo.yaml" "$f.new" && chmod 0664 "$f.new" ;;
	other-writable) cp "$T/bravo.yaml" "$f.new" && chmod 0646 "$f.new" ;;
	other-owner) cp "$T/bravo.yaml" "$f.new" && chown nobody "$f.new" && chmod 0644 "$f.new" ;;
	esac
	mv -Tf "$f.new" "$f"
}

# 1-4. At start.
for i in "${!VARIANTS[@]}"; do
	P=$T/start-$i.yaml
	bad "${VARIANTS[$i]}" "$P"
	log=$T/start-$i.log
	vigild_start "$log" --policy "$P" --hz 19 --interval 1 --duration 2 --output "$T/start-out"
	vigild_wait 30
	lines=$(grep -c . "$log")
	problems=
	[ "$VIGILD_RC" -eq 78 ] || problems+="exit $VIGILD_RC, not 78; "
	[ "$lines" -eq 1 ] || problems+="$lines lines of output, not 1; "
	grep -qF "$P" "$log" || problems+="the file is not named; "
	grep -qF "${SAYS[$i]}" "$log" || problems+="no \"${SAYS[$i]}\"; "
	tap_result "${TESTS[$i]}" $([ -z "$problems" ]; echo $?) "$problems" "output:" "$(head -5 "$log")"
done

# 5-8. On SIGHUP.
P=$T/policy.yaml
OUT=$T/profiles
LOG=$T/vigild.log
write_policy "$P" alpha
vigild_start "$LOG" --policy "$P" --hz 19 --interval 1 --control-period 1 --duration 0 --output "$OUT"
if ! vigild_wait_ready 20; then
	for name in "${TESTS[@]:4}"; do tap_not_ok "$name" "vigild did not start; its log:" "$(tail -10 "$LOG")"; done
	tap_done
fi

# wait_log PATTERN COUNT TIMEOUT: until LOG has at least COUNT lines matching PATTERN.
wait_log() {
	local limit=$(($(now_ms) + $3 * 1000))
	while [ "$(now_ms)" -lt "$limit" ]; do
		[ "$(grep -cE -- "$1" "$LOG")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

sleep 1.5
first_hup_line=$(($(wc -l <"$LOG") + 1))
profiles_before=$(profile_files "$OUT" | wc -l)
for i in "${!VARIANTS[@]}"; do
	bad "${VARIANTS[$i]}" "$P"
	from=$(($(wc -l <"$LOG") + 1))
	kill -HUP "$VIGILD_PID"
	wait_log "keeping the policy in force" $((i + 1)) 10
	line=$(tail -n +"$from" "$LOG" | grep -F "keeping the policy in force" | head -1)
	problems=
	[ -n "$line" ] || problems+="no \"keeping the policy in force\" within 10 s; "
	grep -qF "$P" <<<"$line" || problems+="the file is not named; "
	grep -qF "${SAYS[$i]}" <<<"$line" || problems+="no \"${SAYS[$i]}\"; "
	kill -0 "$VIGILD_PID" 2>/dev/null || problems+="vigild exited; "
	tap_result "${TESTS[$((i + 4))]}" $([ -z "$problems" ]; echo $?) "$problems" "log since:" \
		"$(tail -n +"$from" "$LOG" | cut -c1-200 | head -8)"
done

# 9. The policy in force is still alpha's, and sampling goes on.
sleep 3
since=$(tail -n +"$first_hup_line" "$LOG")
last_alpha=$(tail -n 20 "$LOG" | grep -c "budget tenant=alpha ")
problems=
[ "$last_alpha" -ge 1 ] || problems+="no budget line for tenant alpha in the last 20 lines; "
grep -q "tenant=bravo" <<<"$since" && problems+="tenant bravo (a refused file) appears; "
grep -q "policy reloaded" <<<"$since" && problems+="a refused policy was reloaded; "
new_profiles=$(($(profile_files "$OUT" | wc -l) - profiles_before))
[ "$new_profiles" -ge 3 ] || problems+="only $new_profiles new profiles since the first SIGHUP (1 s intervals); "
kill -0 "$VIGILD_PID" 2>/dev/null || problems+="vigild exited; "
tap_result "${TESTS[8]}" $([ -z "$problems" ]; echo $?) "$problems" "log tail:" "$(tail -6 "$LOG" | cut -c1-200)"

# 10. A valid one reloads.
write_policy "$T/charlie.yaml" charlie
mv -Tf "$T/charlie.yaml" "$P"
kill -HUP "$VIGILD_PID"
problems=
wait_log "policy reloaded" 1 10 || problems+="no \"policy reloaded\" within 10 s; "
wait_log "budget tenant=charlie " 1 10 || problems+="no budget line for tenant charlie within 10 s; "
tap_result "${TESTS[9]}" $([ -z "$problems" ]; echo $?) "$problems" "log tail:" "$(tail -6 "$LOG" | cut -c1-200)"

# 11.
kill -TERM "$VIGILD_PID"
vigild_wait 30
tap_result "${TESTS[10]}" $([ "$VIGILD_RC" -eq 0 ]; echo $?) "exit $VIGILD_RC; log tail:" "$(tail -5 "$LOG")"

# 12. --check, as an administrator would run it before a reload.
write_policy "$T/check.yaml" delta
chmod 0664 "$T/check.yaml"
out=$("$VIGILD" --policy "$T/check.yaml" --check 2>&1)
rc=$?
chmod 0644 "$T/check.yaml"
out2=$("$VIGILD" --policy "$T/check.yaml" --check 2>&1)
rc2=$?
tap_result "${TESTS[11]}" $([ $rc -eq 78 ] && grep -qF "writable by its group" <<<"$out" &&
	grep -qF "vigild would refuse this file" <<<"$out" && [ $rc2 -eq 0 ] && grep -qF "valid" <<<"$out2"; echo $?) \
	"group-writable: exit $rc: $out" "root-only: exit $rc2: $out2"

tap_done
