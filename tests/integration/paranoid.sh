#!/bin/bash
# tests/integration/paranoid.sh - vigild on a kernel whose
# kernel.perf_event_paranoid=3 refuses perf_event_open without CAP_SYS_ADMIN.
#
# Debian's kernels carry a patch (security-perf-allow-further-restriction-
# of-perf_event_open.patch) that makes 3 their default and then refuses
# perf_event_open with EACCES to a caller without CAP_SYS_ADMIN, before
# anything else the call checks; CAP_PERFMON is not enough.  This host runs
# an upstream kernel, where 3 means the same as 2.  So the Debian kernel is
# made up of its two observable parts, each where vigild meets it: the
# setting, a file bind-mounted over /proc/sys/kernel/perf_event_paranoid in
# a mount namespace of the test's own (nothing else on the host sees it),
# and the refusal, a seccomp filter under which perf_event_open fails with
# EACCES (tests/tools/without_syscall).  vigild runs without CAP_SYS_ADMIN
# in its bounding set (the unit's case) and as plain root.  What a filter
# cannot show: on Debian's kernel a probe with CAP_SYS_ADMIN passes where
# one with CAP_PERFMON alone is refused (seccomp does not see
# capabilities), the case where plain root is told of the setting; here,
# with both refused, plain root must not be.

. "$(dirname "$0")/lib.sh"

TESTS=(
	"paranoid 3 and perf_event_open refused: exit 77, one line naming the setting and the remedy, nothing written"
	"paranoid 2 and perf_event_open refused: exit 77, and the line does not blame the setting"
	"paranoid 3 on a kernel that still opens perf events for CAP_PERFMON (upstream): vigild runs and writes a valid profile"
	"paranoid 3 and perf_event_open refused even with CAP_SYS_ADMIN (not Debian's patch: an LSM, say), vigild started with it: the setting is not blamed"
)
tap_plan ${#TESTS[@]}
require_file "$VIGILD" "${TESTS[@]}"
WITHOUT=$B/tests/tools/without_syscall
require_file "$WITHOUT" "${TESTS[@]}"
require_bpf "${TESTS[@]}"

# as_debian LEVEL REFUSE CAPS ARGS...: vigild ARGS with the paranoid setting
# reading LEVEL; REFUSE=yes makes perf_event_open fail with EACCES; CAPS=-admin
# runs it without CAP_SYS_ADMIN in its bounding set.  Exit code in $RC,
# stderr in $T/stderr.
as_debian() {
	local level=$1 refuse=$2 caps=$3 pre=() bound=()
	shift 3
	echo "$level" >"$T/paranoid"
	[ "$refuse" = yes ] && pre=("$WITHOUT" perf_event_open=EACCES)
	[ "$caps" = -admin ] && bound=(setpriv --bounding-set -sys_admin --inh-caps -sys_admin)
	timeout 60 unshare --mount --propagation private \
		bash -c 'mount --bind "$1" /proc/sys/kernel/perf_event_paranoid && shift && exec "$@"' \
		_ "$T/paranoid" "${bound[@]}" "${pre[@]}" "$VIGILD" --metrics-listen none "$@" \
		>"$T/stdout" 2>"$T/stderr"
	RC=$?
}

OUT=$T/out # never created by the refused runs

as_debian 3 yes -admin --hz 19 --duration 2 --output "$OUT"
lines=$(grep -c . "$T/stderr")
tap_result "${TESTS[0]}" \
	$([ "$RC" -eq 77 ] && [ "$lines" -eq 1 ] &&
		grep -q 'kernel.perf_event_paranoid is 3' "$T/stderr" &&
		grep -q 'CAP_SYS_ADMIN' "$T/stderr" &&
		grep -q 'kernel.perf_event_paranoid=2' "$T/stderr" &&
		grep -q 'sysctl.d' "$T/stderr" && [ ! -e "$OUT" ]
	echo $?) \
	"exit $RC, $lines stderr line(s), $OUT $([ -e "$OUT" ] && echo exists || echo absent):" \
	"$(head -5 "$T/stderr")"

as_debian 2 yes -admin --hz 19 --duration 2 --output "$OUT.2"
tap_result "${TESTS[1]}" \
	$([ "$RC" -eq 77 ] && ! grep -q 'perf_event_paranoid' "$T/stderr" &&
		grep -q 'perf_event_open' "$T/stderr"
	echo $?) \
	"exit $RC:" "$(tail -5 "$T/stderr")"

as_debian 3 no -admin --hz 99 --duration 3 --interval 1 --output "$T/ok"
files=("$T"/ok/*.pb.gz)
why=
[ -e "${files[0]}" ] || why="no profile written"
[ -z "$why" ] && why=$(validate_profiles "${files[@]}")
tap_result "${TESTS[2]}" $([ "$RC" -eq 0 ] && [ -z "$why" ]; echo $?) \
	"exit $RC, ${#files[@]} file(s): $why" "$(tail -5 "$T/stderr")"

# Started as plain root, vigild can ask with CAP_SYS_ADMIN too: the filter
# refuses that as well, which Debian's patch would not, so the setting is
# not what refuses it, and the sampler's own failure is reported.
as_debian 3 yes keep --hz 19 --duration 2 --output "$OUT.4"
tap_result "${TESTS[3]}" \
	$([ "$RC" -ne 0 ] && ! grep -q 'perf_event_paranoid' "$T/stderr" &&
		grep -q 'perf_event_open' "$T/stderr"
	echo $?) \
	"exit $RC:" "$(tail -5 "$T/stderr")"

tap_done
