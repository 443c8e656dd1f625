#!/bin/bash
# tests/integration/tenant_handover.sh - policy reloads while tenants'
# cgroups are sampled, with a real vigild on real cgroups.
#
# A tenant's cgroup has its own perf events, and map "tenant_cg" tells the
# default events to leave its tasks alone (bpf/profile.bpf.c).  A reload
# used to detach every cgroup and attach it again: in between, the default
# events sampled the tenant's tasks on the label tenant=default (CI caught
# one such sample in budgets.sh).  Now a cgroup that stays a tenant's is
# kept, or handed over in the monitor: its new events start and the map
# changes in one update before its old events stop (daemon/sampler.c).
#
# A reload that reorders the tenants gives their indices other names.
# Samples carry the index and the generation of names their events were
# attached with (vigil_abi.h), so a sample taken before the reload is still
# named as it was when the interval is written, after it.
#
# Two cgroups, alpha's and beta's, a cpusplit burner in each, fixed
# frequencies (each tenant at 97 Hz, the default events at 999 Hz, so that
# the old way's gap of a millisecond or less showed: 7 default samples in
# one run, where 97 Hz showed none), and 12 reloads
# alternating three policies: the tenants in order, reordered (indices
# swap: a new generation), and in order with another budget (indices kept:
# the attachments stay).  Each reload is waited for ("policy reloaded" in
# the log) before the next.

. "$(dirname "$0")/lib.sh"

TESTS=(
	"12 SIGHUPs, each reloaded (three policies in turn); vigild exits 0"
	"no sample of a tenant's burner is labelled tenant=default across the reloads"
	"every sample of alpha's burner is tenant=alpha and of beta's tenant=beta, reordered or not"
	"each burner sampled at 97 Hz (3 sigma): no gap and no double sampling at the hand-overs"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"
require_file "$WLD/cpusplit" "${TESTS[@]}"
CGROOT=$(cgroup2_root)
if [ -z "$CGROOT" ]; then
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "no cgroup v2 mount in /proc/self/mountinfo"; done
	tap_done
fi

A=$CGROOT/vigil-it-$$-alpha
B_CG=$CGROOT/vigil-it-$$-beta
cg_cleanup() {
	local c
	lib_cleanup
	for c in "$A" "$B_CG"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			[ -d "$c" ] || break
			rmdir "$c" 2>/dev/null || sleep 0.2
		done
		[ -d "$c" ] && echo "# could not remove $c" >&2
	done
}
trap cg_cleanup EXIT
mkdir "$A" "$B_CG" || {
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "cannot make cgroups under $CGROOT"; done
	tap_done
}

# policy FILE FIRST SECOND BUDGET: tenants FIRST then SECOND (alpha or beta).
policy() {
	local t
	{
		echo "version: 1"
		echo "defaults:"
		echo "  hz: {min: 999, max: 999, start: 999}"
		echo "  budget: {max_overhead_percent: 10}"
		echo "tenants:"
		for t in "$2" "$3"; do
			echo "  - name: $t"
			if [ "$t" = alpha ]; then echo "    cgroups: [\"$A\"]"; else echo "    cgroups: [\"$B_CG\"]"; fi
			echo "    hz: {min: 97, max: 97, start: 97}"
			echo "    budget: {max_overhead_percent: $4}"
		done
	} >"$1"
}
policy "$T/inorder.yaml" alpha beta 10
policy "$T/reordered.yaml" beta alpha 10
policy "$T/budget.yaml" alpha beta 5
cp "$T/inorder.yaml" "$T/policy.yaml"

RELOADS=12
OUT=$T/profiles
VIGILD_TIMEOUT=90
# --duration is only a stop for a run gone wrong: vigild is ended with
# SIGTERM (its last profile written at exit) once the burners and the
# reloads are done, however long a loaded host made the reloads take.
vigild_start "$T/vigild.log" --policy "$T/policy.yaml" --hz 999 --interval 4 --duration 80 \
	--control-period 2 --output "$OUT"
vigild_wait_ready 20 || tap_diag "vigild not sampling:" "$(tail -5 "$T/vigild.log")"
sleep 1 # the tenants are attached at the collector's start

# burner CGROUP OUT: cpusplit moved into CGROUP before it execs.
burner() {
	spawn sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --threads 1 --seconds 16' sh "$1" "$WLD/cpusplit" >"$2"
}
burner "$A" "$T/alpha.out"
P_A=$SPAWNED_PID
burner "$B_CG" "$T/beta.out"
P_B=$SPAWNED_PID

reloaded() { [ "$(grep -c "policy reloaded" "$T/vigild.log")" -ge "$1" ]; }
sleep 1.5
done_reloads=0
order=""
for ((i = 1; i <= RELOADS; i++)); do
	case $((i % 3)) in
	1) next=reordered ;;
	2) next=inorder ;;
	0) next=budget ;;
	esac
	cp "$T/$next.yaml" "$T/policy.yaml.new" && mv "$T/policy.yaml.new" "$T/policy.yaml"
	kill -HUP "$VIGILD_PID"
	wait_for 10 reloaded "$i" || break
	done_reloads=$i
	order+=" $next"
	sleep 0.8
done
wait "$P_A" "$P_B"
kill -TERM "$VIGILD_PID"
vigild_wait 40
mapfile -t FILES < <(profile_files "$OUT")

tap_result "${TESTS[0]}" $([ "$done_reloads" -eq "$RELOADS" ] && [ "$VIGILD_RC" -eq 0 ]; echo $?) \
	"$done_reloads of $RELOADS reloads logged ($order); vigild exit $VIGILD_RC; its log:" \
	"$(grep -v 'budget tenant=' "$T/vigild.log" | tail -15)"
tap_diag "${#FILES[@]} profiles; reloads:$order"

# Samples of a burner: of its pid once it is cpusplit (before its exec it
# is the sh that moved itself into the cgroup, still in the test's).
count() { pq total --label pid="$1" --label comm=cpusplit "${@:2}" "${FILES[@]}" 2>/dev/null || echo 0; }
labels() { pq labels tenant --label pid="$1" --label comm=cpusplit "${FILES[@]}" 2>/dev/null | tr '\t\n' '= '; }

all_a=$(count "$P_A")
all_b=$(count "$P_B")
def_a=$(count "$P_A" --label tenant=default)
def_b=$(count "$P_B" --label tenant=default)
tap_result "${TESTS[1]}" $([ "$all_a" -gt 0 ] && [ "$all_b" -gt 0 ] && [ "$def_a" -eq 0 ] && [ "$def_b" -eq 0 ]; echo $?) \
	"tenant=default: $def_a of alpha's $all_a samples, $def_b of beta's $all_b" \
	"alpha's labels: $(labels "$P_A")" "beta's labels: $(labels "$P_B")"

own_a=$(count "$P_A" --label tenant=alpha)
own_b=$(count "$P_B" --label tenant=beta)
tap_result "${TESTS[2]}" $([ "$all_a" -gt 0 ] && [ "$own_a" -eq "$all_a" ] && [ "$all_b" -gt 0 ] && [ "$own_b" -eq "$all_b" ]; echo $?) \
	"$own_a of alpha's $all_a samples tenant=alpha, $own_b of beta's $all_b tenant=beta" \
	"alpha's labels: $(labels "$P_A")" "beta's labels: $(labels "$P_B")"

# rate PID HZ OUTFILE: rate_verdict (lib.sh) of PID's samples.
rate() { rate_verdict "$(count "$1")" "$2" "$3"; }
va=$(rate "$P_A" 97 "$T/alpha.out")
vb=$(rate "$P_B" 97 "$T/beta.out")
tap_result "${TESTS[3]}" $([[ $va == ok* ]] && [[ $vb == ok* ]]; echo $?) \
	"alpha: ${va#* }" "beta: ${vb#* }"
[[ $va == ok* ]] && [[ $vb == ok* ]] && tap_diag "alpha: ${va#ok }; beta: ${vb#ok }"

tap_done
