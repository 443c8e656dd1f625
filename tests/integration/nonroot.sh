#!/bin/bash
# tests/integration/nonroot.sh - vigild started as user vigil with its
# capabilities as ambient ones, as vigild.service starts it (User=vigil,
# AmbientCapabilities=, CapabilityBoundingSet=, NoNewPrivileges=yes),
# compared with a root start measured here too.
#
#   - it samples: valid profiles, and a process of another user (nobody)
#     symbolized, its own functions and the kernel's;
#   - every process ends as after a root start: the dropped monitor, the
#     collector and the uplink (read from /proc/PID/status while it runs)
#     and the short-lived loader (as it notes itself just before its
#     seccomp filter, in the test-only build, daemon/testhooks.h) have the
#     same CapEff, CapPrm, CapInh and CapAmb, the same uid and gid (the
#     loader excepted: it stays the uid it started as, 0 or vigil's), and
#     NoNewPrivs and Seccomp where the root start has them; the workers'
#     CapAmb is 0 (the start's ambient set must not reach them).  Only
#     CapBnd differs, by design (sandbox.c, trim_bounding);
#   - with any one of the five capabilities missing it fails, naming the
#     capability (exit 77, one line) -- CAP_SYSLOG excepted, without which
#     it runs as a root start without it does: no kernel function named,
#     and the log names /dev/kmsg;
#   - as another user with the same capabilities (nobody), or as vigil
#     with another supplementary group: exit 77, one line naming root and
#     vigil.

. "$(dirname "$0")/lib.sh"

HOOKS=$B/tests/vigild-testhooks
WORK=$WLD/syscalls
CAPS="bpf perfmon sys_ptrace dac_read_search syslog"
TESTS=(
	"root start (reference): runs, exit 0"
	"as vigil with the five ambient capabilities: exit 0, valid profiles, nothing warned"
	"as vigil: another user's process symbolized, its own and kernel frames"
	"as vigil: the output directory's profiles are vigil's"
	"monitor after the drop: uid/gid, CapEff/Prm/Inh/Amb, NoNewPrivs, Seccomp as in the root start"
	"collector: uid/gid, CapEff/Prm/Inh/Amb (Amb 0), NoNewPrivs, Seccomp as in the root start"
	"uplink: uid/gid, CapEff/Prm/Inh/Amb (Amb 0), NoNewPrivs, Seccomp as in the root start"
	"loader: CapEff/Prm/Inh/Amb and NoNewPrivs as in the root start, uid vigil's"
)
for c in $CAPS; do
	if [ $c = syslog ]; then
		TESTS+=("as vigil without cap_$c: runs, names no kernel function, says /dev/kmsg")
	else
		TESTS+=("as vigil without cap_$c: exit 77, one line naming CAP_${c^^}")
	fi
done
TESTS+=("as nobody with the five capabilities: exit 77, one line: root or user vigil")
TESTS+=("as vigil in another supplementary group: exit 77, one line: root or user vigil")
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$HOOKS" "${TESTS[@]}"
require_file "$WORK" "${TESTS[@]}"
command -v setpriv >/dev/null || {
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "setpriv is not installed"; done
	tap_done
}
read -r VUID VGID < <(vigil_user_ids)

ALL=$(setpriv_caps "" $CAPS)

# as_user LOG USER GROUPS CAPS PROGRAM ARGS...: run PROGRAM as USER (group
# USER's, supplementary GROUPS: "" for none), with CAPS inheritable,
# ambient and bounding (as systemd's User=, AmbientCapabilities=,
# CapabilityBoundingSet=, NoNewPrivileges=yes), in the background, output
# to LOG; pid in $VPID (setpriv execs the program).
as_user() {
	local log=$1 user=$2 groups=$3 caps=$4 grp
	shift 4
	grp=(--clear-groups)
	[ -n "$groups" ] && grp=(--groups "$groups")
	setpriv --reuid "$user" --regid "$(id -g "$user")" "${grp[@]}" --inh-caps "$caps" \
		--ambient-caps "$caps" --bounding-set "-all,$caps" --no-new-privs -- "$@" >"$log" 2>&1 &
	VPID=$!
	SPAWNED+=("$VPID")
}

status_of() { grep -E "^$2:" "/proc/$1/status" 2>/dev/null | awk '{ $1 = ""; print substr($0, 2) }'; }

# snap NAME PID: the fields compared, of PID and its collector and uplink,
# into the associative array SNAP[NAME.ROLE.FIELD].
declare -A SNAP
FIELDS="Uid Gid CapEff CapPrm CapInh CapAmb CapBnd NoNewPrivs Seccomp"
snap() {
	local name=$1 pid=$2 role p f
	for role in monitor collector uplink; do
		case $role in
		monitor) p=$pid ;;
		*) p=$(pgrep -P "$pid" -f "internal-role $role" | head -1) ;;
		esac
		for f in $FIELDS; do SNAP[$name.$role.$f]=$([ -n "$p" ] && status_of "$p" $f); done
	done
}

# same ROLE: the fields of ROLE that differ between the root and the vigil
# start (Uid/Gid: both non-root and the vigil start's vigil's; CapBnd is
# not compared); also CapAmb 0 in both.
same() {
	local role=$1 f bad=
	for f in CapEff CapPrm CapInh CapAmb NoNewPrivs Seccomp Uid Gid; do
		[ -n "${SNAP[root.$role.$f]}" ] && [ "${SNAP[root.$role.$f]}" = "${SNAP[vigil.$role.$f]}" ] ||
			bad+="$f: root start '${SNAP[root.$role.$f]}', vigil start '${SNAP[vigil.$role.$f]}'; "
	done
	[ "${SNAP[vigil.$role.CapAmb]}" = 0000000000000000 ] || bad+="CapAmb not 0; "
	[ "${SNAP[vigil.$role.Uid]}" = "$VUID $VUID $VUID $VUID" ] || bad+="Uid not vigil's; "
	echo "$bad"
}

# run NAME PID LOG: wait until it samples (its "sampling N CPUs" line: the
# monitor has dropped and its workers are up), snapshot its tree, then wait
# until it exits ($RC).
run() {
	local name=$1 log=$3 i
	VIGILD_PID=$2
	VIGILD_START_MS=$(now_ms)
	vigild_wait_ready 30 || tap_diag "$name: vigild not sampling"
	for ((i = 0; i < 300; i++)); do
		grep -q 'sampling [0-9]* CPUs' "$log" 2>/dev/null && break
		kill -0 "$VIGILD_PID" 2>/dev/null || break
		sleep 0.1
	done
	snap "$name" "$VIGILD_PID"
	vigild_wait 60
	RC=$VIGILD_RC
}

ARGS=(--hz 49 --interval 1 --duration 5 --metrics-listen none)

# --- 1. root ---------------------------------------------------------------
"$VIGILD" "${ARGS[@]}" --output "$T/root.out" >"$T/root.log" 2>&1 &
SPAWNED+=("$!")
run root $! "$T/root.log"
tap_result "${TESTS[0]}" $([ "$RC" -eq 0 ]; echo $?) "exit $RC" "$(head -10 "$T/root.log")"

# --- 2-4. vigil ------------------------------------------------------------
# The output directory as StateDirectory=/tmpfiles.d would make it: vigil's.
install -d -o "$VUID" -g "$VGID" -m 0750 "$T/vigil.out"
setpriv --reuid=65534 --regid=65534 --clear-groups "$WORK" --seconds 14 >/dev/null 2>&1 &
WL=$!
SPAWNED+=("$WL")
# as systemd starts it: User=vigil keeps vigil's own gid as its one supplementary group
as_user "$T/vigil.log" vigil "$VGID" "$ALL" "$VIGILD" "${ARGS[@]}" --output "$T/vigil.out"
run vigil "$VPID" "$T/vigil.log"
kill "$WL" 2>/dev/null
wait "$WL" 2>/dev/null
files=$(profile_files "$T/vigil.out")
# shellcheck disable=SC2086 # file names without spaces
bad=$(validate_profiles $files)
tap_result "${TESTS[1]}" $([ "$RC" -eq 0 ] && [ -z "$bad" ] && [ "$(grep -c . <<<"$files")" -ge 3 ] &&
	! grep -qi 'warn\|cannot\|error\|missing' "$T/vigil.log"; echo $?) \
	"exit $RC, $(grep -c . <<<"$files") profiles; $bad" "$(head -10 "$T/vigil.log")"
# shellcheck disable=SC2086
named=$(syscalls_named "$WL" $files)
tap_result "${TESTS[2]}" $([ "$named" = "user kernel" ]; echo $?) "named of the workload: ${named:-nothing}"
# shellcheck disable=SC2086
owners=$(stat -c '%u:%g' $files 2>/dev/null | sort -u | tr '\n' ' ')
tap_result "${TESTS[3]}" $([ "$owners" = "$VUID:$VGID " ]; echo $?) "owners: $owners"

# --- 5-7. each process, against the root start ------------------------------
i=4
for role in monitor collector uplink; do
	bad=$(same $role)
	tap_result "${TESTS[$i]}" $([ -z "$bad" ]; echo $?) "$bad" \
		"$(for f in $FIELDS; do echo "$f root '${SNAP[root.$role.$f]}' vigil '${SNAP[vigil.$role.$f]}'"; done)"
	i=$((i + 1))
done

# --- 8. the loader, as it notes itself (test-only build) --------------------
# loader:execve: it notes its sets, then tries execve and dies of SIGSYS.
loader_field() { sed -nE "s/.*TEST HOOK: loader $2:\s*(.*)/\1/p" "$1" | head -1; }
VIGIL_TEST_ATTEMPT=loader:execve timeout 30 "$HOOKS" --hz 19 --duration 1 --metrics-listen none \
	--output "$T/hroot.out" --bpf-dir "$B/bpf" >"$T/hroot.log" 2>&1
install -d -o "$VUID" -g "$VGID" -m 0750 "$T/hvigil.out"
VIGIL_TEST_ATTEMPT=loader:execve as_user "$T/hvigil.log" vigil "" "$ALL" timeout 30 "$HOOKS" --hz 19 \
	--duration 1 --metrics-listen none --output "$T/hvigil.out" --bpf-dir "$B/bpf"
wait "$VPID"
bad=
for f in CapEff CapPrm CapInh CapAmb NoNewPrivs; do
	r=$(loader_field "$T/hroot.log" $f)
	v=$(loader_field "$T/hvigil.log" $f)
	[ -n "$r" ] && [ "$r" = "$v" ] || bad+="$f: root start '$r', vigil start '$v'; "
done
[ "$(loader_field "$T/hvigil.log" Uid | awk '{ print $1 $2 $3 }')" = "$VUID$VUID$VUID" ] ||
	bad+="uid '$(loader_field "$T/hvigil.log" Uid)'; "
tap_result "${TESTS[7]}" $([ -z "$bad" ]; echo $?) "$bad" "$(grep 'TEST HOOK' "$T/hvigil.log")"

# --- 9-13. one capability missing --------------------------------------------
i=8
for c in $CAPS; do
	# shellcheck disable=SC2046
	less=$(setpriv_caps "" $(tr ' ' '\n' <<<"$CAPS" | grep -vx "$c"))
	out=$T/no-$c.out
	install -d -o "$VUID" -g "$VGID" -m 0750 "$out"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$WORK" --seconds 6 >/dev/null 2>&1 &
	WL=$!
	SPAWNED+=("$WL")
	as_user "$T/no-$c.log" vigil "" "$less" timeout 60 "$VIGILD" --hz 49 --interval 1 --duration 3 \
		--metrics-listen none --output "$out"
	wait "$VPID"
	RC=$?
	kill "$WL" 2>/dev/null
	wait "$WL" 2>/dev/null
	files=$(profile_files "$out")
	lines=$(grep -c . "$T/no-$c.log")
	if [ $c = syslog ]; then
		# shellcheck disable=SC2086
		named=$(syscalls_named "$WL" $files)
		tap_result "${TESTS[$i]}" $([ "$RC" -eq 0 ] && [ -n "$files" ] && [ "$named" = user ] &&
			grep -q /dev/kmsg "$T/no-$c.log"; echo $?) \
			"exit $RC, $(grep -c . <<<"$files") profiles; named of the workload: ${named:-nothing}" \
			"$(head -5 "$T/no-$c.log")"
	else
		tap_result "${TESTS[$i]}" $([ "$RC" -eq 77 ] && [ "$lines" -eq 1 ] && [ -z "$files" ] &&
			sed -n 's/.*missing \([^:]*\):.*/\1/p' "$T/no-$c.log" | grep -qw "CAP_${c^^}"; echo $?) \
			"exit $RC, $lines line(s), $(grep -c . <<<"$files") profiles" "$(head -5 "$T/no-$c.log")"
	fi
	i=$((i + 1))
done

# --- 14-15. anyone else ------------------------------------------------------
install -d -m 0777 "$T/other.out"
as_user "$T/nobody.log" nobody "" "$ALL" timeout 30 "$VIGILD" --hz 19 --duration 1 \
	--metrics-listen none --output "$T/other.out"
wait "$VPID"
RC=$?
tap_result "${TESTS[$i]}" $([ "$RC" -eq 77 ] && [ "$(grep -c . "$T/nobody.log")" -eq 1 ] &&
	grep -q 'root or as user vigil' "$T/nobody.log"; echo $?) "exit $RC" "$(cat "$T/nobody.log")"
i=$((i + 1))
as_user "$T/groups.log" vigil "$VGID,$(getent group nogroup | cut -d: -f3)" "$ALL" timeout 30 \
	"$VIGILD" --hz 19 --duration 1 --metrics-listen none --output "$T/vigil.out"
wait "$VPID"
RC=$?
tap_result "${TESTS[$i]}" $([ "$RC" -eq 77 ] && [ "$(grep -c . "$T/groups.log")" -eq 1 ] &&
	grep -q 'root or as user vigil' "$T/groups.log"; echo $?) "exit $RC" "$(cat "$T/groups.log")"

tap_done
