#!/bin/bash
# tests/integration/cgroup_walks.sh - the collector walks the host's
# cgroup tree (to attach tenants' cgroups, every control period) only when
# a tenant of the policy names cgroups: at vigild's defaults nothing would
# come of it, and on a host of containers it is thousands of directories
# every few seconds (issue 13: cost that grows gently with the host).
#
# vigild with --control-period 1, strace on the collector for 4 s (four
# control periods, and no interval's end: a profile's cgroup labels look a
# path up on their own, and a miss may walk the tree then, at most once a
# second): no directory under the cgroup2 mount is opened without a tenant
# cgroup in the policy (without this change: one walk a period); with one
# (an empty cgroup of the test's), a walk a period, and the tenant gets
# its cgroup (cgroups=1 in the collector's budget lines).
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"

TESTS=(
	"no tenant names cgroups: the collector opens no directory under the cgroup2 mount in 4 control periods"
	"a tenant names one: the collector walks the tree and the tenant has its cgroup"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
CGROOT=$(cgroup2_root)
if [ -z "$CGROOT" ] || ! command -v strace >/dev/null; then
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "needs a cgroup v2 mount and strace (make deps)"; done
	tap_done
fi
CG=$CGROOT/vigil-walks-$$
trap 'lib_cleanup; rmdir "$CG" 2>/dev/null' EXIT
mkdir "$CG" || { for n in "${TESTS[@]}"; do tap_not_ok "$n" "cannot make $CG"; done; tap_done; }

# walks NAME ARGS...: vigild ARGS for 9 s; the collector's opens under the
# cgroup2 mount while strace watched it for 4 s (into $T/NAME.strace), in N.
walks() {
	local name=$1 c
	shift
	vigild_start "$T/$name.log" --hz 19 --interval 30 --duration 9 --control-period 1 --no-top \
		--output "$T/$name" "$@"
	vigild_wait_ready 20
	sleep 1
	c=$(pgrep -P "$VIGILD_PID" -f 'internal-role collector')
	timeout -s INT 4 strace -qq -e trace=openat -o "$T/$name.strace" -p "$c" 2>>"$T/strace.err"
	vigild_wait 30
	# directories (the walk); the root's cpu.stat is read every period
	# either way: the default tenant's CPU time
	N=$(grep "openat(.*\"$CGROOT" "$T/$name.strace" | grep -c O_DIRECTORY)
}

walks defaults
n=$N
tap_result "${TESTS[0]}" $([ "$n" = 0 ] && [ "$VIGILD_RC" = 0 ]; echo $?) \
	"$n directories opened under $CGROOT; vigild exit $VIGILD_RC" \
	"$(grep "$CGROOT" "$T/defaults.strace" | grep O_DIRECTORY | head -3)" \
	"$(cat "$T/strace.err" 2>/dev/null)"

cat >"$T/policy.yaml" <<EOF2
version: 1
defaults:
  hz: {min: 1, max: 49, start: 19}
  budget: {max_overhead_percent: 1.0}
tenants:
  - name: walked
    cgroups: ["$CG"]
EOF2
walks tenant --policy "$T/policy.yaml"
n=$N
tap_result "${TESTS[1]}" $([ "$n" -ge 3 ] && grep -q 'tenant=walked .*cgroups=1' "$T/tenant.log" &&
	[ "$VIGILD_RC" = 0 ]; echo $?) \
	"$n directories opened under $CGROOT; vigild exit $VIGILD_RC" "$(grep 'tenant=walked' "$T/tenant.log" | tail -2)"
tap_done
