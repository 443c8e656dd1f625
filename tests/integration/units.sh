#!/bin/bash
# tests/integration/units.sh - the systemd units of packaging/systemd/.
#
# systemd is not PID 1 here, so the units cannot be started; what can be
# checked without it is:
#   - systemd-analyze verify, in a temporary root holding the installed
#     layout (packaging/deb.mk: the built programs at the units' paths, the
#     man pages their Documentation= names, the host's systemd units for
#     the targets they refer to): no output at all, and a missing ExecStart
#     binary does fail it;
#   - the sysusers.d and tmpfiles.d files, applied to a temporary root:
#     the users and vigild's directories with the owners and modes vigild
#     itself would give them (daemon/outdir.c);
#   - systemd-analyze security --offline=true: each unit's exposure, parsed
#     and held to its ceiling, and enforced by systemd itself (--threshold);
#   - the directives: the hardening present, the ones that break a
#     profiler absent, SystemCallFilter= with what vigild calls;
#   - the unit with the network drop-in example (vigild-network.conf)
#     applied, as systemd reads drop-ins (--root, the drop-in in
#     vigild.service.d/): held to its own measured ceiling;
#   - vigild started as the unit starts it, as far as that goes without
#     systemd: User=vigil, the unit's AmbientCapabilities= as inheritable
#     and ambient, bounding set exactly the unit's CapabilityBoundingSet=,
#     no_new_privs, the unit's UMask= and ExecStart= options, its output
#     directory made as the tmpfiles.d file makes it.  It must write valid
#     profiles in which another user's process is symbolized, kernel frames
#     included; and with any one capability of the set taken away it must
#     fail (exit non-zero, or, for CAP_SYSLOG, no kernel symbols), so the
#     set is the least that works.

# SQLite only: this test never starts vigil-cp; it puts the binary where
# systemd-analyze verify looks for ExecStart's program, and the unit's --db
# is the packaged default, a SQLite file in its StateDirectory.

. "$(dirname "$0")/lib.sh"

U=$VIGIL_ROOT/packaging/systemd
VIGILD_UNIT=$U/vigild.service
NET_DROPIN=$U/vigild-network.conf
CP_UNIT=$U/vigil-cp.service

# Exposure ceilings (systemd-analyze security, 0 to 10).  vigil-cp's is the
# issue's 1.5, vigild's the issue's 2.2 (measured 1.9 with systemd 252:
# user vigil with ambient capabilities, no network).  What remains is what
# a profiler is for: CAP_SYS_PTRACE 0.3, CAP_DAC_READ_SEARCH 0.2, CAP_BPF
# and CAP_SYSLOG 0.1 each, bpf and perf_event_open in @privileged and
# @debug, /proc/kallsyms and /proc/PID of every process
# (ProtectKernelTunables=, ProtectKernelLogs=, ProtectProc=, ProcSubset=,
# PrivateUsers=).  With the network drop-in: measured 2.6 (PrivateNetwork=
# off 0.5, AF_INET 0.3, localhost allowed 0.1, less IPAddressDeny='s own);
# its ceiling is that measurement, so that any loosening fails.
VIGILD_MAX=2.2
NET_MAX=2.6
CP_MAX=1.5

TESTS=(
	"systemd-analyze verify vigild.service in the installed layout: passes, no output"
	"systemd-analyze verify vigil-cp.service in the installed layout: passes, no output"
	"systemd-analyze verify fails when the unit's ExecStart binary is missing"
	"sysusers.d files make users vigil and vigil-cp; tmpfiles.d makes vigild's directories as vigild would"
	"vigild.service: exposure (systemd-analyze security --offline) at most $VIGILD_MAX"
	"vigil-cp.service: exposure at most $CP_MAX"
	"systemd-analyze security --threshold passes both units at their ceilings, and fails vigild's just below"
	"vigild.service with the network drop-in (vigild.service.d/network.conf): exposure at most $NET_MAX, network open"
	"vigild.service: Type=notify, reload by SIGHUP, watchdog, and every hardening directive listed"
	"vigild.service: none of PrivateUsers=, ProtectKernelTunables=, ProtectKernelLogs=, ProtectProc=, ProcSubset="
	"vigild.service: SystemCallFilter= is exactly @system-service, bpf, perf_event_open and the six that vigild's sandbox and unwinder call, nothing more"
	"vigil-cp.service: Type=exec (no sd_notify), own user, no capabilities, full hardening"
	"vigild as the unit starts it (user vigil, its ambient and bounding sets, no_new_privs, UMask, options): valid profiles 0600, another user's process symbolized with kernel frames"
)

# unit_values FILE KEY: the values of every KEY= line of FILE (one line each,
# continuation lines joined), as systemd would read them.
unit_values() {
	sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' "$1" 2>/dev/null | sed -n "s/^$2=//p"
}

# The capabilities of vigild.service, each of which is taken away in turn.
CAPS=$(unit_values "$VIGILD_UNIT" CapabilityBoundingSet | tr ' ' '\n' | grep . | sort -u)
for c in $CAPS; do
	if [ "$c" = CAP_SYSLOG ]; then
		TESTS+=("without $c: vigild runs but names no kernel function")
	else
		TESTS+=("without $c: vigild fails, exit 77 naming $c")
	fi
done
TESTS+=("without vigil.conf's directory: exit 73 naming it (user vigil cannot make it)")
tap_plan ${#TESTS[@]}
require_file "$VIGILD_UNIT" "${TESTS[@]}"
require_file "$CP_UNIT" "${TESTS[@]}"
require_file "$NET_DROPIN" "${TESTS[@]}"
for tool in systemd-analyze systemd-sysusers systemd-tmpfiles setpriv; do
	command -v "$tool" >/dev/null && continue
	for name in "${TESTS[@]}"; do tap_not_ok "$name" "$tool is not installed"; done
	tap_done
done


# has DIRECTIVE... : each of them a line of $UNIT ("Key=value", exactly, or
# "Key=" for any value); prints the missing ones.
has() {
	local d
	for d in "$@"; do
		case $d in
		*=) grep -q "^$d" "$UNIT" || echo "missing $d" ;;
		*) grep -qxF "$d" "$UNIT" || echo "missing $d" ;;
		esac
	done
}

# --- 1-3. systemd-analyze verify in the installed layout -----------------
#
# verify checks that ExecStart='s program exists and is executable, that
# the units it refers to exist, and runs man for Documentation=.  The root
# gets what the packages install (deb.mk) plus the host's systemd units and
# kill(1) (ExecReload=), which belong to the OS the packages install into;
# MANPATH points man at the root's pages.
R=$T/root
mkdir -p "$R/usr/libexec/vigil" "$R/usr/sbin" "$R/usr/bin" "$R/usr/lib/systemd" \
	"$R/usr/share/man/man5" "$R/usr/share/man/man8" "$R/etc/systemd/system"
install -m 0755 "$VIGILD" "$VIGILD-collector" "$VIGILD-collector-local" "$VIGILD-uplink" \
	"$VIGILD-uplink-local" "$R/usr/libexec/vigil/"
ln -s ../libexec/vigil/vigild "$R/usr/sbin/vigild"
install -m 0755 "$B/vigil-cp" "$R/usr/sbin/"
cp -a /usr/lib/systemd/system "$R/usr/lib/systemd/"
cp "$(type -P kill)" "$R/usr/bin/"
for m in "$VIGIL_ROOT"/docs/*.[1-8]; do install -D -m 0644 "$m" "$R/usr/share/man/man${m##*.}/${m##*/}"; done
cp "$VIGILD_UNIT" "$CP_UNIT" "$R/etc/systemd/system/"

verify() { # UNIT: its output, and its status
	MANPATH=$R/usr/share/man systemd-analyze verify --root="$R" "/etc/systemd/system/$1" 2>&1
}
out=$(verify vigild.service)
st=$?
tap_result "${TESTS[0]}" $([ "$st" -eq 0 ] && [ -z "$out" ]; echo $?) "exit $st:" "$out"
out=$(verify vigil-cp.service)
st=$?
tap_result "${TESTS[1]}" $([ "$st" -eq 0 ] && [ -z "$out" ]; echo $?) "exit $st:" "$out"
mv "$R/usr/libexec/vigil/vigild" "$R/usr/libexec/vigil/vigild.away"
out=$(verify vigild.service)
st=$?
mv "$R/usr/libexec/vigil/vigild.away" "$R/usr/libexec/vigil/vigild"
tap_result "${TESTS[2]}" $([ "$st" -ne 0 ] && grep -q 'not executable' <<<"$out"; echo $?) \
	"without /usr/libexec/vigil/vigild: exit $st:" "$out"

# --- 4. sysusers.d and tmpfiles.d -----------------------------------------
S=$T/sysroot
mkdir -p "$S/etc"
why=
if ! out=$(systemd-sysusers --root="$S" "$U/vigil.sysusers" "$U/vigil-cp.sysusers" 2>&1); then
	why="systemd-sysusers: $out"
elif ! out=$(systemd-tmpfiles --root="$S" --create "$U/vigil.conf" 2>&1) || [ -n "$out" ]; then
	why="systemd-tmpfiles: $out"
else
	vu=$(awk -F: '$1 == "vigil" { print $3 ":" $4 ":" $7 }' "$S/etc/passwd")
	cu=$(awk -F: '$1 == "vigil-cp" { print $3 ":" $4 ":" $7 }' "$S/etc/passwd")
	vid=${vu%%:*}
	# all user vigil's, as systemd makes StateDirectory= for User=vigil
	want="$vid:$vid:755 $vid:$vid:750 $vid:$vid:700"
	got=$(stat -c '%u:%g:%a' "$S/var/lib/vigil" "$S/var/lib/vigil/profiles" "$S/var/lib/vigil/state" 2>&1 | tr '\n' ' ')
	[[ $vu == [1-9]*:[1-9]*:/usr/sbin/nologin ]] || why="user vigil: '$vu'"
	[[ $cu == [1-9]*:[1-9]*:/usr/sbin/nologin ]] || why="$why user vigil-cp: '$cu'"
	[ "$got" = "$want " ] || why="$why /var/lib/vigil, profiles, state: $got; want $want"
fi
tap_result "${TESTS[3]}" $([ -z "$why" ]; echo $?) "$why"

# --- 5-7. exposure --------------------------------------------------------
exposure() { # UNIT: the overall exposure systemd-analyze gives it
	systemd-analyze security --offline=true "$1" 2>/dev/null |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\.[0-9]\).*/\1/p'
}
tenths() { awk -v x="$1" 'BEGIN { printf "%d", x * 10 + 0.5 }'; }
for i in 0 1; do
	unit=$([ $i = 0 ] && echo "$VIGILD_UNIT" || echo "$CP_UNIT")
	max=$([ $i = 0 ] && echo $VIGILD_MAX || echo $CP_MAX)
	e=$(exposure "$unit")
	tap_result "${TESTS[$((4 + i))]}" \
		$([ -n "$e" ] && [ "$(tenths "$e")" -le "$(tenths "$max")" ]; echo $?) \
		"${unit##*/}: exposure '${e:-not found}', ceiling $max" \
		"$(systemd-analyze security --offline=true "$unit" 2>&1 | grep '✗')"
done
why=
for u in "$VIGILD_UNIT:$VIGILD_MAX" "$CP_UNIT:$CP_MAX"; do
	systemd-analyze security --offline=true --threshold="$(tenths "${u##*:}")" "${u%:*}" >/dev/null 2>&1 ||
		why="$why ${u%:*} over --threshold=$(tenths "${u##*:}");"
done
systemd-analyze security --offline=true --threshold=$(($(tenths "$(exposure "$VIGILD_UNIT")") - 1)) \
	"$VIGILD_UNIT" >/dev/null 2>&1 && why="$why vigild.service passes a threshold below its exposure;"
tap_result "${TESTS[6]}" $([ -z "$why" ]; echo $?) "$why"

# The drop-in read as systemd reads it: a root holding the unit and
# vigild.service.d/network.conf.  It must apply (network open: exposure
# above the unit's alone, PrivateNetwork= off, AF_INET) and stay under
# its own ceiling.
N=$T/netroot
mkdir -p "$N/etc/systemd/system/vigild.service.d"
cp "$VIGILD_UNIT" "$N/etc/systemd/system/"
cp "$NET_DROPIN" "$N/etc/systemd/system/vigild.service.d/network.conf"
netsec=$(systemd-analyze security --offline=true --root="$N" vigild.service 2>&1)
e=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\.[0-9]\).*/\1/p' <<<"$netsec")
why=
[ -n "$e" ] && [ "$(tenths "$e")" -le "$(tenths "$NET_MAX")" ] || why="exposure '${e:-not found}', ceiling $NET_MAX;"
[ -n "$e" ] && [ "$(tenths "$e")" -gt "$(tenths "$(exposure "$VIGILD_UNIT")")" ] || why="$why not above the unit's alone;"
grep -q '✗ PrivateNetwork=' <<<"$netsec" || why="$why PrivateNetwork= still on;"
grep -q '✗ RestrictAddressFamilies=~AF_(INET|INET6)' <<<"$netsec" || why="$why AF_INET still refused;"
# Its ExecStart= (after the reset) runs the same program, without --metrics-listen none.
dx=$(unit_values "$NET_DROPIN" ExecStart | grep .)
[[ $dx == /usr/libexec/vigil/vigild\ *'$VIGILD_OPTS' && $dx != *"metrics-listen none"* ]] ||
	why="$why drop-in ExecStart '$dx';"
[ "$(grep -c '^ExecStart=$' "$NET_DROPIN")" = 1 ] || why="$why no ExecStart= reset;"
tap_result "${TESTS[7]}" $([ -z "$why" ]; echo $?) "$why" "$(grep '✗' <<<"$netsec")"

# --- 8-11. directives -----------------------------------------------------
UNIT=$VIGILD_UNIT
why=$(has Type=notify NotifyAccess=main 'ExecReload=kill -HUP $MAINPID' WatchdogSec= \
	CapabilityBoundingSet= NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
	PrivateDevices=yes ProtectKernelModules=yes ProtectControlGroups=yes ProtectClock=yes \
	ProtectHostname=yes PrivateMounts=yes RestrictAddressFamilies= RestrictNamespaces=yes \
	LockPersonality=yes MemoryDenyWriteExecute=yes RestrictRealtime=yes RestrictSUIDSGID=yes \
	SystemCallArchitectures=native StateDirectory=vigil ConfigurationDirectory=vigil UMask=0077 \
	DevicePolicy=closed EnvironmentFile=-/etc/default/vigild User=vigil Group=vigil RemoveIPC=yes \
	PrivateNetwork=yes RestrictAddressFamilies=AF_UNIX IPAddressDeny=any)
grep -q '^ExecStart=/usr/libexec/vigil/vigild --duration 0 --metrics-listen none \$VIGILD_OPTS$' "$UNIT" ||
	why="$why ExecStart not /usr/libexec/vigil/vigild --duration 0 --metrics-listen none \$VIGILD_OPTS"
# The ambient set is the bounding set, and neither has what only a root
# start needs (become vigil, trim bounding sets).
amb=$(unit_values "$UNIT" AmbientCapabilities | tr ' ' '\n' | grep . | sort -u)
[ -n "$amb" ] && [ "$amb" = "$(unit_values "$UNIT" CapabilityBoundingSet | tr ' ' '\n' | grep . | sort -u)" ] ||
	why="$why AmbientCapabilities= is not CapabilityBoundingSet=;"
grep -q 'CAP_SETUID\|CAP_SETGID\|CAP_SETPCAP' <<<"$amb" && why="$why CAP_SET{UID,GID,PCAP} granted;"
tap_result "${TESTS[8]}" $([ -z "$why" ]; echo $?) "$why"

why=
for d in PrivateUsers ProtectKernelTunables ProtectKernelLogs ProtectProc ProcSubset SecureBits; do
	grep -q "^$d=" "$UNIT" && why="$why $(grep "^$d=" "$UNIT")"
done
tap_result "${TESTS[9]}" $([ -z "$why" ]; echo $?) "present:$why"

# What vigild calls beyond @system-service (strace of a run: its own seccomp
# and Landlock set-up, tenant cgroups opened by handle, the unwinder's
# mincore), besides the two the issue names.
filter=" $(unit_values "$UNIT" SystemCallFilter | tr '\n' ' ') "
want=(@system-service bpf perf_event_open open_by_handle_at mincore seccomp
	landlock_create_ruleset landlock_add_rule landlock_restrict_self)
why=
for s in "${want[@]}"; do
	[[ $filter == *" $s "* ]] || why="$why missing $s;"
done
for s in $filter; do
	[[ " ${want[*]} " == *" $s "* ]] || why="$why $s beyond what vigild calls;"
done
tap_result "${TESTS[10]}" $([ -z "$why" ]; echo $?) "SystemCallFilter:$filter" "$why"

UNIT=$CP_UNIT
why=$(has Type=exec User=vigil-cp 'ExecReload=kill -HUP $MAINPID' NoNewPrivileges=yes PrivateUsers=yes \
	ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes PrivateMounts=yes \
	ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes ProtectControlGroups=yes \
	ProtectClock=yes ProtectHostname=yes ProtectProc=invisible RestrictNamespaces=yes \
	LockPersonality=yes MemoryDenyWriteExecute=yes RestrictRealtime=yes RestrictSUIDSGID=yes \
	SystemCallArchitectures=native StateDirectory=vigil-cp ConfigurationDirectory=vigil-cp \
	SystemCallFilter=@system-service 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6')
# One CapabilityBoundingSet= line, empty: no capability at all.
[ "$(unit_values "$UNIT" CapabilityBoundingSet | tr -d ' ')" = "" ] &&
	[ "$(grep -c '^CapabilityBoundingSet=' "$UNIT")" = 1 ] || why="$why CapabilityBoundingSet= not empty"
unit_values "$UNIT" ExecStart | grep -q -- '--db sqlite:/var/lib/vigil-cp/' || why="$why database not under StateDirectory"
# vigil-cp has no sd_notify (if it gains one, Type=notify is the unit's to use).
grep -qs 'NOTIFY_SOCKET\|sd_notify' "$VIGIL_ROOT"/control-plane/*.c && why="$why vigil-cp speaks sd_notify now: Type=notify"
tap_result "${TESTS[11]}" $([ -z "$why" ]; echo $?) "$why"

# --- 12+. vigild as the unit starts it ------------------------------------
require_bpf "${TESTS[@]:12}"
read -r VUID VGID < <(vigil_user_ids)
UMASK=$(unit_values "$VIGILD_UNIT" UMask)
# The unit's options, but $VIGILD_OPTS (empty by default); later ones win.
read -r -a UNIT_ARGS < <(unit_values "$VIGILD_UNIT" ExecStart | sed 's/^[^ ]* //; s/\$VIGILD_OPTS//')
WORK=$B/tests/workloads/syscalls

# setpriv_unit CAP...: setpriv's options for what systemd does with the
# unit: User=vigil, Group=vigil (its supplementary groups: vigil only, as
# initgroups() gives it here), CAP... as AmbientCapabilities= (so
# inheritable too) and CapabilityBoundingSet=, NoNewPrivileges=yes.
setpriv_unit() {
	local set
	set=$(setpriv_caps "" "$@")
	echo --reuid "$VUID" --regid "$VGID" --groups "$VGID" --inh-caps "$set" \
		--ambient-caps "$set" --bounding-set "$(setpriv_caps -all "$@")" --no-new-privs
}

# as_unit NAME CAP...: run vigild with exactly CAP... in the ambient and
# bounding sets; its log in $T/NAME.log, its profiles in $T/NAME.out (made
# as vigil.conf makes /var/lib/vigil/profiles), its status in $RC.  A
# process of another user (nobody) that spends its time in system calls
# runs meanwhile; its pid in $UNIT_WL.
as_unit() {
	local name=$1
	shift
	install -d -o "$VUID" -g "$VGID" -m 0750 "$T/$name.out"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$WORK" --seconds 8 >/dev/null 2>&1 &
	UNIT_WL=$! # setpriv execs: the workload's pid
	SPAWNED+=("$UNIT_WL")
	(
		umask "${UMASK:-0022}"
		# shellcheck disable=SC2046 # options without spaces
		timeout 60 setpriv $(setpriv_unit "$@") -- \
			"$VIGILD" "${UNIT_ARGS[@]}" --hz 49 --duration 3 --interval 1 --output "$T/$name.out" \
			--bpf-dir "$B/bpf" --trust "$B/dev-ca/ca.pem" >"$T/$name.log" 2>&1
	)
	RC=$?
	kill "$UNIT_WL" 2>/dev/null
	wait "$UNIT_WL" 2>/dev/null
}

as_unit all $CAPS
files=$(profile_files "$T/all.out")
# shellcheck disable=SC2086 # file names without spaces
bad=$(validate_profiles $files)
perms=$(stat -c '%a' $files 2>/dev/null | sort -u | tr '\n' ' ')
# shellcheck disable=SC2086
tap_result "${TESTS[12]}" $([ "$RC" -eq 0 ] && [ -z "$bad" ] && [ "$(echo "$files" | grep -c .)" -ge 2 ] &&
	[ "$(syscalls_named "$UNIT_WL" $files)" = "user kernel" ] && [ "$perms" = "600 " ] && ! grep -qi 'warn\|cannot\|error' "$T/all.log"; echo $?) \
	"ambient and bounding set: $(echo $CAPS); exit $RC; $(echo "$files" | grep -c .) profiles, modes $perms; $bad" \
	"$(head -20 "$T/all.log")"

# Each capability of the set, taken away, must break vigild.
i=0
for c in $CAPS; do
	# shellcheck disable=SC2046
	as_unit "no-$c" $(grep -vx "$c" <<<"$CAPS")
	files=$(profile_files "$T/no-$c.out")
	if [ "$c" = CAP_SYSLOG ]; then
		# It runs, but /proc/kallsyms shows it zeros: no kernel frame named.
		# shellcheck disable=SC2086
		tap_result "${TESTS[$((13 + i))]}" \
			$([ "$RC" -eq 0 ] && [ -n "$files" ] && [ "$(syscalls_named "$UNIT_WL" $files)" = user ]; echo $?) \
			"exit $RC, $(echo "$files" | grep -c .) profiles" "$(head -5 "$T/no-$c.log")"
	else
		tap_result "${TESTS[$((13 + i))]}" \
			$([ "$RC" -eq 77 ] && [ -z "$files" ] && grep -q "missing.*$c" "$T/no-$c.log"; echo $?) \
			"exit $RC, $(echo "$files" | grep -c .) profiles" "$(head -5 "$T/no-$c.log")"
	fi
	i=$((i + 1))
done

# CAP_CHOWN is not in the set because vigil.conf makes the directory, and
# user vigil cannot create one in a directory of root's: the same run on
# a directory not made for it fails, saying why.
# shellcheck disable=SC2046
timeout 60 setpriv $(setpriv_unit $CAPS) -- \
	"$VIGILD" "${UNIT_ARGS[@]}" --hz 49 --duration 1 --output "$T/unmade.out" --bpf-dir "$B/bpf" \
	--trust "$B/dev-ca/ca.pem" --metrics-listen none >"$T/unmade.log" 2>&1
RC=$?
tap_result "${TESTS[$((${#TESTS[@]} - 1))]}" \
	$([ "$RC" -eq 73 ] && grep -q "$T/unmade.out" "$T/unmade.log"; echo $?) \
	"exit $RC" "$(head -5 "$T/unmade.log")"

tap_done
