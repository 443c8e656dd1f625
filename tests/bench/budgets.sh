#!/bin/bash
# tests/bench/budgets.sh - how the per-tenant overhead budgets behave on
# this host: convergence after step changes, steady-state overhead against
# budget per tenant, and what the controller itself costs.
#
# One vigild session (--control-period 2) with two tenants, each a cgroup
# made here (vigil-bench-PID-{tight,loose} under the cgroup v2 mount, found
# as vigild finds it) with a cpusplit burner in it; the default tenant is
# fixed at 2 Hz (its system-wide events interrupt tenants too, and are
# charged to them).  Before the session the bench measures the per-sample
# cost itself (tests/tools/calibrate) and derives tight's budget from it,
# so that 99 Hz costs OVERRUN x the budget in interrupts alone on any host:
#
#   0 s   start: tight (that budget) and loose (5%) both start at 49 Hz
#   30 s  load step: a second burner joins tight's cgroup
#   50 s  budget step (SIGHUP): tight -> 5%, loose 5% -> tight's budget
#   94 s  end
#
# Convergence is the time from the step to the log line of the first
# control period that meets the new budget (a step down: overhead <=
# budget) or reaches the new rate (a step up: hz >= 90% of hz.max); the
# periods of the phase after that which are still over budget are counted
# too.  Steady state pools each tenant's figures over the last 12-36 s of a
# phase: overhead (vigild's own, BPF + interrupts + agent share) against
# the budget, the interrupt share alone (samples / CPU s x the cost the
# bench measured, not vigild's figure), and the frequency's mean and
# peak-to-peak swing.
#
# The controller's cost: tests/tools/bench_budget (budget_update and
# tenancy_control on synthetic inputs, CPU time per call); the whole
# control period in the running collector (budgets_tick: cgroup scan,
# cpu.stat and BPF map reads, decisions, log) timed with a bpftrace uprobe
# on the collector alone, when bpftrace is there; and the collector's
# total CPU per control period (everything it does, sampling included).
#
# Prints a report, also left in build/bench/budgets.md.  Root only.
# Environment: BENCH_BUDGETS_PERIOD (control period, 2), BENCH_BUDGETS_KEEP
# (a directory to copy the session's log, rows and profiles into).

set -u
cd "$(dirname "$0")/../.."

B=build
VIGILD=$B/vigild
WL=$B/tests/workloads/cpusplit
PQ=$B/tests/tools/pprof_query
BENCH_BUDGET=$B/tests/tools/bench_budget
CALIB=$B/tests/tools/calibrate
# The cgroup v2 mount as vigild finds it (the first cgroup2 entry of
# mountinfo; tests/integration/lib.sh's cgroup2_root does the same).
CGROOT=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
CP=${BENCH_BUDGETS_PERIOD:-2}
LOAD_AT=30
HUP_AT=50
DURATION=94
OVERRUN=2     # 99 Hz x the measured cost = OVERRUN x tight's budget
LOOSE_B=5
HZMAX=99
DEF_HZ=2
OUT=$B/bench/budgets.md

die() { echo "bench-budgets: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (BPF, cgroups)"
for f in "$VIGILD" "$WL" "$BENCH_BUDGET" "$CALIB"; do [ -x "$f" ] || die "$f missing: run make first"; done
[ -n "$CGROOT" ] || die "no cgroup v2 mount in /proc/self/mountinfo"

TMP=$(mktemp -d /tmp/vigil-bench-budgets.XXXXXX)
CG_TIGHT=$CGROOT/vigil-bench-$$-tight
CG_LOOSE=$CGROOT/vigil-bench-$$-loose
PIDS=()
VIGILD_PID=
BT_PID=

cleanup() {
	local p cg i
	[ -n "$BT_PID" ] && kill -INT "$BT_PID" 2>/dev/null
	[ -n "$VIGILD_PID" ] && kill -KILL "$VIGILD_PID" 2>/dev/null
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	{ wait; } 2>/dev/null
	[ -n "${BENCH_BUDGETS_KEEP:-}" ] && mkdir -p "$BENCH_BUDGETS_KEEP" && cp -r "$TMP"/. "$BENCH_BUDGETS_KEEP"/
	for cg in "$CG_TIGHT" "$CG_LOOSE"; do
		for ((i = 0; i < 50; i++)); do
			[ -d "$cg" ] || break
			rmdir "$cg" 2>/dev/null && break
			sleep 0.1
		done
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# The controller alone.

# The per-sample cost, measured here: three calibrations (each tried up
# to three times, as the monitor does).  tight's budget comes from the
# lowest, the irq figures below use the median.
COSTS=()
for ((i = 0; i < 9 && ${#COSTS[@]} < 3; i++)); do
	c=$("$CALIB" 2>>"$TMP/calibrate.err" | sed -n 's/.* ns_per_sample=\([0-9]*\) .*clamped=0.*/\1/p')
	[ -n "$c" ] && COSTS+=("$c")
done
[ ${#COSTS[@]} -gt 0 ] || die "cannot measure the per-sample cost: $(tail -3 "$TMP/calibrate.err")"
COST_NS=$(printf '%s\n' "${COSTS[@]}" | sort -n | awk '{ v[++n] = $1 } END { print v[int((n + 1) / 2)] }')
COST_LO=$(printf '%s\n' "${COSTS[@]}" | sort -n | head -1)
TIGHT_B=$(awk -v c="$COST_LO" -v f=$OVERRUN -v hz=$HZMAX 'BEGIN { printf "%.4f", 100 * hz * c * 1e-9 / f }')
echo "bench-budgets: per-sample cost ${COSTS[*]} ns (median $COST_NS); tight's budget ${TIGHT_B}%"

echo "bench-budgets: controller microbenchmark"
"$BENCH_BUDGET" --cost-ns "$COST_NS" >"$TMP/micro" || die "bench_budget failed"
cat "$TMP/micro"

# ---------------------------------------------------------------------------
# The session.

mkdir "$CG_TIGHT" "$CG_LOOSE" || die "cannot create cgroups under $CGROOT"

policy() {
	cat >"$TMP/policy.new" <<EOF
version: 1
defaults:
  hz: {min: $DEF_HZ, max: $DEF_HZ, start: $DEF_HZ}
tenants:
  - name: tight
    cgroups: ["$CG_TIGHT"]
    hz: {min: 1, max: $HZMAX, start: 49}
    budget: {max_overhead_percent: $1}
  - name: loose
    cgroups: ["$CG_LOOSE"]
    hz: {min: 1, max: $HZMAX, start: 49}
    budget: {max_overhead_percent: $2}
EOF
	mv -f "$TMP/policy.new" "$TMP/policy.yaml"
}
policy "$TIGHT_B" "$LOOSE_B"

# burner CGROUP: a one-thread cpusplit in CGROUP until the session ends.
burner() {
	sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --threads 1 --seconds "$3"' \
		sh "$1" "$WL" $((DURATION + 20)) >/dev/null &
	PIDS+=($!)
}

stamp() {
	local line
	while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done
}

# CPU time (ns) of every thread of PID and its children.
tree_cpu_ns() {
	local p f v sum=0
	for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
		for f in /proc/"$p"/task/*/schedstat; do
			read -r v _ <"$f" 2>/dev/null && sum=$((sum + v))
		done
	done
	echo "$sum"
}
task_cpu_ns() {
	local f v sum=0
	for f in /proc/"$1"/task/*/schedstat; do
		read -r v _ <"$f" 2>/dev/null && sum=$((sum + v))
	done
	echo "$sum"
}

LOG=$TMP/vigild.log
exec {LOGFD}> >(stamp >"$LOG")
T0=$EPOCHREALTIME
"$VIGILD" --policy "$TMP/policy.yaml" --control-period "$CP" --hz $DEF_HZ --interval 10 \
	--duration $DURATION --output "$TMP/profiles" >&$LOGFD 2>&1 &
VIGILD_PID=$!
exec {LOGFD}>&-

# Burners once vigild has calibrated (they would leave calibration no
# quiet CPU), before its collector samples.
for ((i = 0; i < 200; i++)); do
	grep -qE 'calibrated: |calibrating' "$LOG" && break
	kill -0 "$VIGILD_PID" 2>/dev/null || die "vigild exited: $(tail -5 "$LOG")"
	sleep 0.1
done
burner "$CG_TIGHT"
burner "$CG_LOOSE"

# The collector, and budgets_tick timed in it alone.
for ((i = 0; i < 100; i++)); do
	COLL=$(ps -o pid= -o args= --ppid "$VIGILD_PID" 2>/dev/null | awk '/--internal-role collector/ { print $1 }')
	[ -n "$COLL" ] && break
	sleep 0.1
done
[ -n "$COLL" ] || die "no collector process: $(tail -5 "$LOG")"
if command -v bpftrace >/dev/null; then
	bpftrace -p "$COLL" -e "
		uprobe:$PWD/$VIGILD:budgets_tick { @s[tid] = nsecs; }
		uretprobe:$PWD/$VIGILD:budgets_tick /@s[tid]/ { printf(\"tick %d\\n\", nsecs - @s[tid]); delete(@s[tid]); }
	" >"$TMP/ticks" 2>"$TMP/bpftrace.err" &
	BT_PID=$!
fi

# sleep_until S: until S seconds after vigild's start.
sleep_until() {
	sleep "$(awk -v t0="$T0" -v s="$1" -v now="$EPOCHREALTIME" 'BEGIN { d = t0 + s - now; printf "%.3f", (d > 0 ? d : 0) }')"
}

# The collector's CPU over the part of the session with both burners
# steady, and the control periods in it.
sleep_until 12
C0=$(task_cpu_ns "$COLL") C0T=$EPOCHREALTIME
sleep_until $LOAD_AT
C1=$(task_cpu_ns "$COLL") C1T=$EPOCHREALTIME
burner "$CG_TIGHT"
LOAD=$EPOCHREALTIME
sleep_until $HUP_AT
policy 5 "$TIGHT_B"
HUP=$EPOCHREALTIME
kill -HUP "$VIGILD_PID"

wait "$VIGILD_PID"
VIGILD_RC=$?
VIGILD_PID=
[ -n "$BT_PID" ] && kill -INT "$BT_PID" 2>/dev/null
sleep 0.5
[ "$VIGILD_RC" -eq 0 ] || echo "bench-budgets: vigild exited $VIGILD_RC: $(tail -5 "$LOG" | cut -c1-200)"

# ---------------------------------------------------------------------------
# Figures.

rel() { awk -v a="$1" -v t0="$T0" 'BEGIN { printf "%.3f", a - t0 }'; }
R_LOAD=$(rel "$LOAD")
R_HUP=$(rel "$HUP")
VIGILD_COST=$(sed -n 's/.*calibrated: one sample costs \([0-9]*\) ns.*/\1/p; s/.*assuming \([0-9]*\) ns.*/fallback \1/p' "$LOG" | head -1)

# rows TENANT: "t hz overhead% budget% samples foreign cpu_s cost_ms state"
rows() {
	awk -v want="$1" -v t0="$T0" '
		/vigild\[collector\]: budget tenant=/ {
			delete f
			for (i = 2; i <= NF; i++) if (split($i, kv, "=") == 2) f[kv[1]] = kv[2]
			if (f["tenant"] != want) next
			sub(/%$/, "", f["overhead"]); sub(/%$/, "", f["budget"])
			printf "%.3f %s %s %s %s %s %s %s %s\n", $1 - t0, f["hz"], f["overhead"], f["budget"],
				f["samples"], f["foreign_samples"], f["cpu_s"], f["cost_ms"], f["state"]
		}' "$LOG"
}
for t in tight loose default; do rows "$t" >"$TMP/$t.rows"; done

# converge ROWS FROM TO KIND BUDGET: after a step at FROM (s), within the
# phase [FROM, TO): "seconds_to_converge hz_before hz_after over/periods".
# KIND down: first period (wholly after the step) with overhead <= BUDGET;
# KIND up: first period with hz >= 90% of hz.max.
converge() {
	awk -v from="$2" -v to="$3" -v kind="$4" -v b="$5" -v cp="$CP" -v hzmax=$HZMAX '
		BEGIN { before = "start" }
		$1 <= from { before = $2; next }
		$1 >= to { next }
		$1 < from + cp { next }	# straddles the step
		{
			last = $2; n++
			if (t == "") {
				if ((kind == "down" && $3 <= b && $5 + $6 > 0) || (kind == "up" && $2 >= 0.9 * hzmax)) {
					t = $1 - from; after = $2
				}
				next
			}
			m++; if ($3 > b) over++
		}
		END {
			if (t == "") printf "never %s %s -\n", before, last
			else printf "%.1f %s %s %d/%d\n", t, before, after, over, m
		}' "$1"
}
# steady ROWS FROM TO BUDGET: pooled over the periods logged in [FROM, TO).
steady() {
	awk -v from="$2" -v to="$3" -v b="$4" -v c="$COST_NS" '
		$1 >= from && $1 < to {
			n++; cost += $8; cpu += $7; s += $5; fo += $6; hz += $2; sq += $2 * $2
			if (lo == "" || $2 < lo) lo = $2; if ($2 > hi) hi = $2
			if ($3 > b) over++
		}
		END {
			if (!n || cpu <= 0) { print "- - - - - - - -"; exit }
			o = 100 * cost / 1e3 / cpu; mean = hz / n
			irq = 100 * (s + fo) / cpu * c * 1e-9
			printf "%d %.4f %.0f%% %.4f %.1f %d-%d %.0f%% %d\n", n, o, 100 * o / b, irq, mean, lo, hi,
				100 * (hi - lo) / mean, over
		}' "$1"
}

read -r su_t su_b su_a su_o <<<"$(converge "$TMP/tight.rows" 0 "$LOAD_AT" down "$TIGHT_B")"
read -r ld_t ld_b ld_a ld_o <<<"$(converge "$TMP/tight.rows" "$R_LOAD" "$R_HUP" down "$TIGHT_B")"
read -r up_t up_b up_a up_o <<<"$(converge "$TMP/tight.rows" "$R_HUP" 999 up 5)"
read -r dn_t dn_b dn_a dn_o <<<"$(converge "$TMP/loose.rows" "$R_HUP" 999 down "$TIGHT_B")"

s_tight1=$(steady "$TMP/tight.rows" 18 "$LOAD_AT" "$TIGHT_B")
s_tight2=$(steady "$TMP/tight.rows" $((LOAD_AT + 6)) "$R_HUP" "$TIGHT_B")
s_loose1=$(steady "$TMP/loose.rows" 14 "$R_HUP" "$LOOSE_B")
s_loose2=$(steady "$TMP/loose.rows" $((HUP_AT + 20)) 999 "$TIGHT_B")
s_tight3=$(steady "$TMP/tight.rows" $((HUP_AT + 20)) 999 5)
s_def=$(steady "$TMP/default.rows" 0 999 1)

# Controller cost.
read -r bu_ns bu_h bu_mix <<<"$(awk '/budget_update/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	printf "%s %s move=%s,hold=%s,pooling=%s,idle=%s\n", f["ns_per_call"], f["harness_ns"], f["move"], f["hold"], f["pooling"], f["idle"] }' "$TMP/micro")"
tc1=$(awk '/tenants=1 / { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "ns_per_call") print kv[2] } }' "$TMP/micro")
tcn=$(awk '/tenancy_control/ && !/tenants=1 / { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
	END { printf "%s %s %s\n", f["tenants"], f["ns_per_call"], f["ns_per_tenant"] }' "$TMP/micro")
read -r tcn_n tcn_ns tcn_pt <<<"$tcn"
ticks=$(awk '/^tick / { print $2 }' "$TMP/ticks" 2>/dev/null | sort -n |
	awk '{ v[++n] = $1 }
		END {
			if (!n) { print "0 - - - -"; exit }
			p = int(n * 0.9 + 0.5); if (p < 1) p = 1
			printf "%d %.0f %.0f %.0f %.0f\n", n, v[1] / 1000, v[int((n + 1) / 2)] / 1000, v[p] / 1000, v[n] / 1000
		}')
read -r tk_n tk_min tk_med tk_p90 tk_max <<<"$ticks"
coll_ms=$(awk -v a="$C0" -v b="$C1" -v ta="$C0T" -v tb="$C1T" -v cp="$CP" 'BEGIN { printf "%.2f", (b - a) / 1e6 / ((tb - ta) / cp) }')
ncg=$(find "$CGROOT" -mindepth 1 -type d 2>/dev/null | wc -l)

# ---------------------------------------------------------------------------
# Report.

row_steady() {
	local name=$1 phase=$2 budget=$3 n o pct irq mean range swing over
	read -r n o pct irq mean range swing over <<<"$4"
	printf '| %-7s | %-28s | %-7s | %-8s | %-6s | %-9s | %-6s | %-6s | %-5s | %-4s |\n' \
		"$name" "$phase" "$budget%" "$o%" "$pct" "$irq%" "$mean" "$range" "$swing" "$over/$n"
}
conv_row() {
	printf '| %-34s | %-6s | %-9s | %-15s | %-13s |\n' "$1" "$2" "$3 -> $4" "$5" "$6"
}

{
	echo "Vigil budgets benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "control period ${CP} s; per-sample cost measured by the bench ${COSTS[*]} ns (median $COST_NS, used below); vigild's own: ${VIGILD_COST:-?} ns ($(grep -m1 -oE 'calibrated: [^)]*\)|calibrating[^;]*' "$LOG"))"
	echo "tenants: tight ($TIGHT_B%) and loose ($LOOSE_B%), hz 1-$HZMAX from 49, one cpusplit each; default fixed at $DEF_HZ Hz; $ncg cgroups on the host"
	echo
	echo "Convergence (from the step to the first control period that meets it; over = later periods of the phase still over budget):"
	echo
	echo "| step                               | tenant | hz        | converged after | over budget   |"
	echo "|------------------------------------|--------|-----------|-----------------|---------------|"
	conv_row "start-up, 49 Hz, budget $TIGHT_B%" tight 49 "$su_a" "$su_t s" "$su_o"
	conv_row "load step: 2nd burner in its cgroup" tight "$ld_b" "$ld_a" "$ld_t s" "$ld_o"
	conv_row "budget $TIGHT_B% -> 5% (SIGHUP), up" tight "$up_b" "$up_a" "$up_t s" "-"
	conv_row "budget $LOOSE_B% -> $TIGHT_B% (SIGHUP), down" loose "$dn_b" "$dn_a" "$dn_t s" "$dn_o"
	echo
	echo "Frequency by control period (t s:hz; steps at ${R_LOAD%.*} s and ${R_HUP%.*} s):"
	echo
	for t in tight loose; do
		echo "    $t: $(awk '{ printf "%s%d:%d", (NR > 1 ? " " : ""), $1, $2 }' "$TMP/$t.rows")"
	done
	echo
	echo "Steady state (vigild's own overhead pooled over the phase's periods; irq = (samples + foreign) / CPU s x the cost measured by the bench):"
	echo
	echo "| tenant  | phase                        | budget  | overhead | of bud | irq only  | hz avg | hz     | swing | over |"
	echo "|---------|------------------------------|---------|----------|--------|-----------|--------|--------|-------|------|"
	row_steady tight "18-${LOAD_AT} s, 1 burner" "$TIGHT_B" "$s_tight1"
	row_steady tight "$((LOAD_AT + 6))-${HUP_AT} s, 2 burners" "$TIGHT_B" "$s_tight2"
	row_steady loose "14-${HUP_AT} s" "$LOOSE_B" "$s_loose1"
	row_steady loose "$((HUP_AT + 20))-${DURATION} s, after the step" "$TIGHT_B" "$s_loose2"
	row_steady tight "$((HUP_AT + 20))-${DURATION} s, after the step" 5 "$s_tight3"
	row_steady default "whole session (fixed)" 1 "$s_def"
	echo
	echo "Controller cost:"
	echo
	echo "| what                                                         | cost |"
	echo "|--------------------------------------------------------------|------|"
	echo "| budget_update(), one tenant, synthetic ($bu_mix) | ${bu_ns} ns/call (harness ${bu_h} ns) |"
	echo "| tenancy_control(), default + 1 tenant                        | ${tc1} ns/call |"
	echo "| tenancy_control(), default + $tcn_n tenants                      | $(awk -v a="$tcn_ns" 'BEGIN { printf "%.1f", a / 1000 }') us/call, ${tcn_pt} ns/tenant |"
	if [ "$tk_n" -gt 0 ]; then
		echo "| budgets_tick() in the collector, wall time (uprobe), $tk_n periods | min ${tk_min} us, median ${tk_med} us, p90 ${tk_p90} us, max ${tk_max} us |"
	else
		why="bpftrace not installed"
		[ -n "$BT_PID" ] && why=$(grep -v -e RLIMIT_MEMLOCK -e uprobe_events -e 'failed to detach' "$TMP/bpftrace.err" | head -c 200 | tr '\n' ' ')
		echo "| budgets_tick() in the collector (uprobe)                     | not measured: ${why:-no tick seen} |"
	fi
	echo "| collector CPU per control period, all its work (12-${LOAD_AT} s)   | ${coll_ms} ms |"
} | tee "$TMP/report"
mkdir -p "$(dirname "$OUT")" && cp "$TMP/report" "$OUT"
