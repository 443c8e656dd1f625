#!/bin/bash
# tests/integration/tenant_cgroups.sh - which cgroups the monitor lets carry
# a tenant's own perf events, with a real vigild on real cgroups.
#
# bpf/profile.bpf.c finds a task's tenant by looking up its cgroup's
# ancestors at levels 1 to VIGIL_MAX_CGROUP_DEPTH (16).  A tenant cgroup
# deeper than that would get its own events while the default events,
# not seeing it, sampled its tasks too: twice the rate, on the wrong
# label.  So the monitor refuses it (daemon/cgnest.c), and its tasks stay
# with the default tenant, sampled once.  A tenant cgroup at level 16 is
# sampled for its tenant.  The root cgroup is never a tenant's, even when a
# (compromised) collector asks for it.
#
# Two chains of cgroups under the cgroup2 mount, one 17 levels deep and one
# 16, a cpusplit burner at the bottom of each, fixed frequencies (the
# default tenant 29 Hz, the level-16 tenant 71 Hz).  A burner's rate is its
# samples over its own threads' CPU time (which it prints), which must be
# its tenant's frequency within 3 sigma of counting noise.

. "$(dirname "$0")/lib.sh"

TESTS=(
	"a tenant cgroup 17 levels deep: refused by the monitor, which says why (vigild exits 0)"
	"its burner is sampled once, by the default events: tenant=default, at the default 29 Hz"
	"a tenant cgroup 16 levels deep: its burner sampled for its tenant, at its 71 Hz"
	"the collector asks for the root cgroup: the monitor refuses (EINVAL) and says why"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"
HOOKS=$B/tests/vigild-testhooks
require_file "$HOOKS" "${TESTS[@]}"
CGROOT=$(cgroup2_root)
if [ -z "$CGROOT" ]; then
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "no cgroup v2 mount in /proc/self/mountinfo"; done
	tap_done
fi

# chain NAME LEVELS: make $CGROOT/NAME/l2/.../lLEVELS; prints the deepest.
# It runs in a command substitution's subshell, so the caller lists the
# chains in CHAINS for the cleanup (an assignment here would be lost).
CHAINS=("$CGROOT/vigil-it-$$-deep" "$CGROOT/vigil-it-$$-sixteen")
chain() {
	local d=$CGROOT/$1 l
	mkdir "$d" || return 1
	for ((l = 2; l <= $2; l++)); do
		d=$d/l$l
		mkdir "$d" || return 1
	done
	echo "$d"
}
cg_cleanup() {
	local c
	lib_cleanup
	for c in "${CHAINS[@]}"; do
		# deepest first; the burners are gone (lib_cleanup), but a killed
		# task can keep its cgroup busy for a moment
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			[ -d "$c" ] || break
			find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$c" ] && sleep 0.2
		done
		[ -d "$c" ] && echo "# could not remove $c" >&2
	done
}
trap cg_cleanup EXIT

DEEP=$(chain "vigil-it-$$-deep" 17) && SIXTEEN=$(chain "vigil-it-$$-sixteen" 16) || {
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "cannot make cgroups under $CGROOT"; done
	tap_done
}
# The mount's top is level 0 when it is the hierarchy's root: check the claim.
[ "$(stat -c %i "$CGROOT")" = 1 ] || tap_diag "note: $CGROOT is not the hierarchy's root (inode $(stat -c %i "$CGROOT"))"

cat >"$T/policy.yaml" <<EOF
version: 1
defaults:
  hz: {min: 29, max: 29, start: 29}
  budget: {max_overhead_percent: 10}
tenants:
  - name: deep
    cgroups: ["$DEEP"]
    hz: {min: 71, max: 71, start: 71}
    budget: {max_overhead_percent: 10}
  - name: sixteen
    cgroups: ["$SIXTEEN"]
    hz: {min: 71, max: 71, start: 71}
    budget: {max_overhead_percent: 10}
EOF

OUT=$T/profiles
VIGILD_TIMEOUT=60
vigild_start "$T/vigild.log" --policy "$T/policy.yaml" --hz 29 --interval 20 --duration 14 \
	--control-period 2 --output "$OUT"
vigild_wait_ready 20 || tap_diag "vigild not sampling:" "$(tail -5 "$T/vigild.log")"
# The tenants are attached at the collector's start: give it a moment.
sleep 1

# burner CGROUP OUT: cpusplit moved into CGROUP before it execs.
burner() {
	spawn sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --threads 1 --seconds 6' sh "$1" "$WLD/cpusplit" >"$2"
}
burner "$DEEP" "$T/deep.out"
P_DEEP=$SPAWNED_PID
burner "$SIXTEEN" "$T/sixteen.out"
P_SIX=$SPAWNED_PID
wait "$P_DEEP" "$P_SIX"
vigild_wait 40
mapfile -t FILES < <(profile_files "$OUT")

line=$(grep -E "tenant 1: cgroup $(stat -c %i "$DEEP") not sampled: deeper than 16 levels below the root" "$T/vigild.log" | head -1)
tap_result "${TESTS[0]}" $([ "$VIGILD_RC" -eq 0 ] && [ -n "$line" ]; echo $?) \
	"vigild exit $VIGILD_RC; its log:" "$(grep -v 'budget tenant=' "$T/vigild.log" | tail -15)"

# Samples of a burner: of its pid once it is cpusplit (before its exec it
# is the sh that moved itself into the cgroup, still in the test's).
count() { pq total --label pid="$1" --label comm=cpusplit "${@:2}" "${FILES[@]}" 2>/dev/null || echo 0; }

# rate PID HZ OUTFILE: rate_verdict (lib.sh) of PID's samples.
rate() { rate_verdict "$(count "$1")" "$2" "$3"; }

v=$(rate "$P_DEEP" 29 "$T/deep.out")
all=$(count "$P_DEEP")
def=$(count "$P_DEEP" --label tenant=default)
tap_result "${TESTS[1]}" $([[ $v == ok* ]] && [ "$all" -gt 0 ] && [ "$def" -eq "$all" ]; echo $?) \
	"${v#* }; $def of $all samples tenant=default" \
	"labels: $(pq labels tenant --label pid="$P_DEEP" "${FILES[@]}" | tr '\t\n' '= ')"
[[ $v == ok* ]] && tap_diag "deep: ${v#ok }"

v=$(rate "$P_SIX" 71 "$T/sixteen.out")
all=$(count "$P_SIX")
own=$(count "$P_SIX" --label tenant=sixteen)
tap_result "${TESTS[2]}" $([[ $v == ok* ]] && [ "$all" -gt 0 ] && [ "$own" -eq "$all" ] &&
	! grep -q "tenant 2: cgroup [0-9]* not sampled" "$T/vigild.log"; echo $?) \
	"${v#* }; $own of $all samples tenant=sixteen" \
	"labels: $(pq labels tenant --label pid="$P_SIX" "${FILES[@]}" | tr '\t\n' '= ')" "$(tail -5 "$T/vigild.log")"
[[ $v == ok* ]] && tap_diag "level 16: ${v#ok }"

VIGIL_TEST_ATTEMPT=collector:tenant_root timeout 60 "$HOOKS" --bpf-dir "$B/bpf" --trust "$B/dev-ca/ca.pem" \
	--output "$T/hook-out" --no-top --hz 19 --duration 4 >"$T/hook.log" 2>&1
rc=$?
tap_result "${TESTS[3]}" $([ $rc -eq 0 ] && grep -q "TEST HOOK: asked for the root cgroup: Invalid argument" "$T/hook.log" &&
	grep -q "tenant 1: cgroup 1 not sampled: the root cgroup cannot be a tenant's" "$T/hook.log"; echo $?) \
	"exit $rc; log:" "$(cat "$T/hook.log")"

tap_done
