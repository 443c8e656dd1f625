#!/bin/bash
# tests/integration/sample_value.sh - a sample is worth the CPU time its
# tenant's events stood for when it was taken, whatever --hz says and
# however often, and however, the tenant's frequency changed.
#
# vigild --hz 19 and three policies, each loaded in turn (SIGHUP):
#   1. the default tenant at 29 Hz, a tenant "valued" (index 1, a cgroup
#      made here) at 71 Hz;
#   2. some 5 s later: 47 and 197 Hz, "valued" keeping its index, so its
#      events are changed in place (PERF_EVENT_IOC_PERIOD), as the
#      default tenant's, opened at 19 Hz, are in both steps;
#   3. some 4 s later: a tenant "spare" (an empty cgroup) takes index 1 at
#      5 Hz, and "valued" moves to index 2 at 131 Hz: its cgroup is handed
#      over to new events.  (As a smoke test of that path: "spare"'s
#      cgroup has the lower id, so it is attached first, and index 1 is
#      set to 5 Hz while "valued"'s old events are still index 1's, for
#      the moment before the hand-over.)
# After a change in place the kernel still reports the period an event was
# opened with: only the period the monitor writes for the BPF program
# (map "tenant_cfg") is right.  One cpusplit burner in "valued"'s cgroup,
# pinned to one CPU, and one in this script's, pinned to another, each for
# the whole run.
#
# Each burner's profiled CPU time (the profiles' cpu/nanoseconds values of
# its samples) must be the CPU time it reports itself, within 3 sigma of
# counting noise (samples are a Poisson count: N of them are off by
# 1/sqrt(N)); below it, also by at most one period (the old one) on its
# CPU per frequency change or hand-over: the kernel restarts a period
# there, and the part of it run so far is never sampled.  Valued at
# 1/--hz, both burners would show several times their CPU time; valued
# at the period the kernel reports, "valued"'s 197 Hz samples would be
# worth 1/71 s and the default tenant's 1/19 s throughout.

. "$(dirname "$0")/lib.sh"

TESTS=(
	"the tenant's burner, at 71, 197 (in place) then 131 Hz (another index): its profiled CPU time is the CPU time it used"
	"the default tenant's burner, at 29 then 47 Hz (--hz 19): its profiled CPU time is the CPU time it used"
	"the policies' frequencies were in effect: each burner's samples are what its frequencies give over the CPU it ran at each, not its first or --hz all along"
	"vigild exits 0 on SIGTERM"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"
if ! command -v taskset >/dev/null; then
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "taskset (util-linux) is missing: make deps"; done
	tap_done
fi
CGROOT=$(cgroup2_root)
CG_SPARE=$CGROOT/vigil-it-$$-spare
CG=$CGROOT/vigil-it-$$-valued
# In this order: the lower id is attached first (above).
if [ -z "$CGROOT" ] || ! tmp_cgroup "$CG_SPARE" || ! tmp_cgroup "$CG"; then
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "no cgroup v2 mount, or cannot make $CG"; done
	tap_done
fi
[ "$(stat -c %i "$CG_SPARE")" -lt "$(stat -c %i "$CG")" ] ||
	tap_diag "note: $CG_SPARE's id is not the lower: index 1 is not reused before the hand-over"
# The first two CPUs this script may use (one when it has one).
read -r CPU_A CPU_B < <(awk '/^Cpus_allowed_list:/ {
	n = split($2, r, ","); k = 0
	for (i = 1; i <= n && k < 2; i++) {
		m = split(r[i], ab, "-"); lo = ab[1]; hi = m > 1 ? ab[2] : ab[1]
		for (c = lo + 0; c <= hi + 0 && k < 2; c++) cpu[k++] = c
	}
	print cpu[0], (k > 1 ? cpu[1] : cpu[0]) }' /proc/self/status)

# policy DEFAULT_HZ VALUED_HZ [SPARE_HZ]: with SPARE_HZ, "spare" comes first.
policy() {
	cat <<EOF
version: 1
defaults:
  hz: {min: $1, max: $1, start: $1}
  budget: {max_overhead_percent: 10}
tenants:
EOF
	[ -n "${3:-}" ] && cat <<EOF
  - name: spare
    cgroups: ["$CG_SPARE"]
    hz: {min: $3, max: $3, start: $3}
    budget: {max_overhead_percent: 10}
EOF
	cat <<EOF
  - name: valued
    cgroups: ["$CG"]
    hz: {min: $2, max: $2, start: $2}
    budget: {max_overhead_percent: 10}
EOF
}
policy 29 71 >"$T/policy.yaml"

OUT=$T/profiles
VIGILD_TIMEOUT=90
vigild_start "$T/vigild.log" --policy "$T/policy.yaml" --hz 19 --interval 30 --duration 0 \
	--control-period 1 --output "$OUT"
vigild_wait_ready 20 || tap_diag "vigild not sampling:" "$(tail -5 "$T/vigild.log")"
# Until the tenant's events run at its first frequency (the collector
# attaches them as it starts).
wait_for 10 grep -q "tenant=valued hz=71 " "$T/vigild.log" ||
	tap_diag "no 'tenant=valued hz=71' line:" "$(tail -5 "$T/vigild.log")"

spawn sh -c 'echo $$ >"$1/cgroup.procs" && exec taskset -c "$3" "$2" --threads 1 --seconds 14' sh \
	"$CG" "$WLD/cpusplit" "$CPU_A" >"$T/tenant.out"
P_TEN=$SPAWNED_PID
spawn taskset -c "$CPU_B" "$WLD/cpusplit" --threads 1 --seconds 14 >"$T/default.out"
P_DEF=$SPAWNED_PID
# burner_cpu PID: the CPU seconds PID's threads have run so far (schedstat).
burner_cpu() { awk -v ns="$(tasks_ns "$1")" 'BEGIN { printf "%.4f", ns / 1e9 }'; }
# Each change took effect between the SIGHUP and the budget line that
# shows it (a line each control period, 1 s): the burners' CPU at both.
sleep 5
policy 47 197 >"$T/policy.yaml"
T1_LO=$(burner_cpu "$P_TEN") D1_LO=$(burner_cpu "$P_DEF")
kill -HUP "$VIGILD_PID"
wait_for 10 grep -q "tenant=valued hz=197 " "$T/vigild.log" ||
	tap_diag "no 'tenant=valued hz=197' line:" "$(tail -5 "$T/vigild.log")"
T1_HI=$(burner_cpu "$P_TEN") D1_HI=$(burner_cpu "$P_DEF")
sleep 4
policy 47 131 5 >"$T/policy.yaml"
T2_LO=$(burner_cpu "$P_TEN")
kill -HUP "$VIGILD_PID"
wait_for 10 grep -q "tenant=valued hz=131 " "$T/vigild.log" ||
	tap_diag "no 'tenant=valued hz=131' line:" "$(tail -5 "$T/vigild.log")"
T2_HI=$(burner_cpu "$P_TEN")
wait "$P_TEN" "$P_DEF"
kill -TERM "$VIGILD_PID"
vigild_wait 40
mapfile -t FILES < <(profile_files "$OUT")

# counts PID OUTFILE: "SAMPLES CPU_NS CPU_S" of PID's cpusplit samples in
# the profiles, and the CPU seconds it reported.
counts() {
	local n ns
	n=$(pq total --label pid="$1" --label comm=cpusplit "${FILES[@]}" 2>/dev/null || echo 0)
	ns=$(pq cpu --label pid="$1" --label comm=cpusplit "${FILES[@]}" 2>>"$T/pq.err" || echo 0)
	echo "${n:-0} ${ns:-0} $(cpusplit_cpu "$2")"
}
: >"$T/pq.err"
read -r N_TEN NS_TEN CPU_TEN < <(counts "$P_TEN" "$T/tenant.out")
read -r N_DEF NS_DEF CPU_DEF < <(counts "$P_DEF" "$T/default.out")

# verdict N NS CPU LOSS_S: "ok ..." (else "bad ...") when N samples worth
# NS ns are CPU seconds, within 3 sigma above and 3 sigma plus LOSS_S below.
verdict() {
	awk -v n="$1" -v ns="$2" -v cpu="${3:-0}" -v loss="$4" 'BEGIN {
		prof = ns / 1e9; noise = 3 / sqrt(n > 1 ? n : 1); low = noise + (cpu > 0 ? loss / cpu : 0)
		d = cpu > 0 ? prof / cpu - 1 : -1
		printf "%s %d samples worth %.3f s against %.3f s CPU used: %+.1f%%, allowed -%.1f%% to +%.1f%%",
			(n >= 100 && d >= -low && d <= noise ? "ok" : "bad"), n, prof, cpu, 100 * d, 100 * low, 100 * noise }'
}

# The tenant's CPU: 71 -> 197 Hz; a third policy's SET_HZ at 197; index 1
# to 5 Hz; the hand-over (up to 5 Hz's period); 131 Hz set again.
v=$(verdict "$N_TEN" "$NS_TEN" "$CPU_TEN" "$(awk 'BEGIN { print 1 / 71 + 1 / 197 + 1 / 197 + 1 / 5 + 1 / 131 }')")
tap_result "${TESTS[0]}" $([[ $v == ok* ]]; echo $?) "${v#* }" "$(cat "$T/pq.err")" \
	"labels: $(pq labels tenant --label pid="$P_TEN" "${FILES[@]}" | tr '\t\n' '= ')"
[[ $v == ok* ]] && tap_diag "tenant: ${v#ok }"
# The default tenant's CPU: 29 -> 47 Hz, and 47 set again.
v=$(verdict "$N_DEF" "$NS_DEF" "$CPU_DEF" "$(awk 'BEGIN { print 1 / 29 + 1 / 47 }')")
tap_result "${TESTS[1]}" $([[ $v == ok* ]]; echo $?) "${v#* }" "$(cat "$T/pq.err")" \
	"labels: $(pq labels tenant --label pid="$P_DEF" "${FILES[@]}" | tr '\t\n' '= ')"
[[ $v == ok* ]] && tap_diag "default: ${v#ok }"

# The premise: the policies' frequencies were in effect.  Counted without
# the values: a burner's samples must be what its frequencies give over
# the CPU time it ran at each (measured here at each change, which took
# effect between two readings), within 3 sigma of counting noise, and
# below also one sample for each restarted period; and they must be more
# than 3 sigma away from what its first frequency all along, or --hz (19)
# all along, would give, else the count does not tell them apart.
# rate_premise N TOTAL "HZ..." "LO HI ..." RESTARTS: HZ are the phases'
# frequencies, each LO HI pair the burner's CPU at the change between two.
rate_premise() {
	awk -v n="$1" -v tot="${2:-0}" -v hzs="$3" -v bs="$4" -v restarts="$5" 'BEGIN {
		np = split(hzs, hz, " "); split(bs, b, " ")
		# the expected count is linear in each boundary: its least and most
		emin = emax = 0; prevmin = prevmax = 0
		for (i = 1; i <= np; i++) {
			if (i < np) {
				lo = b[2 * i - 1]; hi = b[2 * i]
				# a boundary late puts more CPU in phase i: more samples when hz[i] > hz[i + 1]
				if (hz[i] > hz[i + 1]) { endmax = hi; endmin = lo } else { endmax = lo; endmin = hi }
			} else {
				endmin = endmax = tot
			}
			emin += hz[i] * (endmin - prevmin); emax += hz[i] * (endmax - prevmax)
			prevmin = endmin; prevmax = endmax
		}
		low = emin - 3 * sqrt(emin) - restarts; high = emax + 3 * sqrt(emax)
		ok = tot > 0 && n >= low && n <= high
		split(hz[1] " 19", alt, " ")
		for (k = 1; k <= 2; k++)
			if (n >= alt[k] * tot - 3 * sqrt(alt[k] * tot) && n <= alt[k] * tot + 3 * sqrt(alt[k] * tot)) {
				ok = 0; why = why sprintf(" (as at %d Hz all along)", alt[k])
			}
		printf "%s %d samples in %.2f CPU s, want %.0f to %.0f%s", (ok ? "ok" : "bad"), n, tot, low, high, why }'
}
a=$(rate_premise "$N_TEN" "$CPU_TEN" "71 197 131" "$T1_LO $T1_HI $T2_LO $T2_HI" 4)
b=$(rate_premise "$N_DEF" "$CPU_DEF" "29 47" "$D1_LO $D1_HI" 2)
tap_result "${TESTS[2]}" $([[ $a == ok* ]] && [[ $b == ok* ]]; echo $?) "tenant: ${a#* }" "default: ${b#* }" \
	"log: $(grep -E 'tenant=(valued|default) hz=' "$T/vigild.log" | tail -6)"
tap_diag "tenant: ${a#* }; default: ${b#* }" \
	"(CPU s at the changes: tenant $T1_LO-$T1_HI, $T2_LO-$T2_HI; default $D1_LO-$D1_HI)"

tap_result "${TESTS[3]}" $([ "$VIGILD_RC" -eq 0 ]; echo $?) "vigild exit $VIGILD_RC:" "$(tail -10 "$T/vigild.log")"

tap_done
