#!/bin/bash
# tests/integration/sandbox.sh - privilege separation, observed from outside.
#
# While vigild runs: every worker has all capability sets empty, a non-root
# uid, no_new_privs and a seccomp filter; the monitor has exactly the
# documented capabilities (sandbox.c) and a seccomp filter too.
# With the test-only build (build/tests/vigild-testhooks), a worker told to
# try what its sandbox forbids is killed by SIGSYS (or refused), the monitor
# says so and exits 70, and nothing stays loaded in the kernel.  A worker
# that sends a message the protocol forbids is killed by the monitor.  A
# frequency above the ceiling is capped.

. "$(dirname "$0")/lib.sh"

HOOKS=$B/tests/vigild-testhooks
ATTEMPTS=(collector:execve collector:ptrace collector:bpf_prog_load collector:socket_inet
	uplink:open uplink:execve)
TESTS=(
	"collector: CapInh/Prm/Eff/Bnd/Amb all 0, non-root uid, NoNewPrivs 1, Seccomp 2"
	"uplink: CapInh/Prm/Eff/Bnd/Amb all 0, non-root uid, NoNewPrivs 1, Seccomp 2"
	"monitor: exactly CAP_BPF CAP_PERFMON CAP_SYS_PTRACE CAP_DAC_READ_SEARCH, non-root uid, Seccomp 2"
	"profiles are still symbolized through the monitor"
	"workers get no inherited fd and an empty environment"
)
for a in "${ATTEMPTS[@]}"; do TESTS+=("$a: worker killed by SIGSYS or refused, monitor exits 70, nothing left loaded"); done
TESTS+=("collector sends a message the table forbids: killed as compromised, monitor exits 70")
TESTS+=("collector asks for 100000 Hz under --max-hz 50: capped, and the sample rate shows it")
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$HOOKS" "${TESTS[@]}"

# Capabilities as the kernel names them in CapEff (bit numbers).
MONITOR_CAPS=$(printf '%016x' $(((1 << 2) | (1 << 19) | (1 << 38) | (1 << 39))))

status_of() { grep -E "^$2:" /proc/$1/status | awk '{ $1 = ""; print substr($0, 2) }'; }

check_worker() {
	local name=$1 pid=$2 bad= f
	for f in CapInh CapPrm CapEff CapBnd CapAmb; do
		[ "$(status_of "$pid" $f)" = 0000000000000000 ] || bad+="$f=$(status_of "$pid" $f) "
	done
	read -r ruid euid suid fsuid <<<"$(status_of "$pid" Uid)"
	for u in $ruid $euid $suid $fsuid; do [ "$u" != 0 ] || bad+="uid 0 "; done
	[ "$(status_of "$pid" NoNewPrivs)" = 1 ] || bad+="NoNewPrivs=$(status_of "$pid" NoNewPrivs) "
	[ "$(status_of "$pid" Seccomp)" = 2 ] || bad+="Seccomp=$(status_of "$pid" Seccomp) "
	tap_result "$name" $([ -z "$bad" ]; echo $?) "pid $pid: $bad"
}

OUT=$T/profiles
VIGILD_TIMEOUT=60
# An fd and a variable the monitor inherits must not reach the workers.
exec 9<"$VIGIL_ROOT/README.md"
export VIGIL_SANDBOX_SECRET=leak-me
vigild_start "$T/vigild.log" --hz 49 --interval 3 --duration 8 --output "$OUT"
exec 9<&-
unset VIGIL_SANDBOX_SECRET
vigild_wait_ready 20 || tap_diag "vigild not sampling:" "$(tail -5 "$T/vigild.log")"
spawn "$WLD/cpusplit" --seconds 4 --threads 1
SPLIT=$SPAWNED_PID
sleep 1
COLLECTOR=$(pgrep -P "$VIGILD_PID" -f 'internal-role collector')
UPLINK=$(pgrep -P "$VIGILD_PID" -f 'internal-role uplink')
if [ -z "$COLLECTOR" ] || [ -z "$UPLINK" ]; then
	tap_not_ok "${TESTS[0]}" "no collector/uplink child of $VIGILD_PID" "$(ps -ef | grep vigild)"
	tap_not_ok "${TESTS[1]}" "see above"
else
	check_worker "${TESTS[0]}" "$COLLECTOR"
	check_worker "${TESTS[1]}" "$UPLINK"
fi
bad=
for w in "$COLLECTOR" "$UPLINK"; do
	[ -n "$w" ] || continue
	if ls -l /proc/"$w"/fd 2>/dev/null | grep -q README.md; then bad+="pid $w holds the inherited fd; "; fi
	if [ -s /proc/"$w"/environ ]; then bad+="pid $w environment: $(tr '\0' ' ' </proc/"$w"/environ); "; fi
done
tap_result "${TESTS[4]}" $([ -n "$COLLECTOR" ] && [ -z "$bad" ]; echo $?) "$bad"

bad=
for f in CapPrm CapEff CapBnd; do
	[ "$(status_of "$VIGILD_PID" $f)" = "$MONITOR_CAPS" ] || bad+="$f=$(status_of "$VIGILD_PID" $f) "
done
for f in CapInh CapAmb; do
	[ "$(status_of "$VIGILD_PID" $f)" = 0000000000000000 ] || bad+="$f=$(status_of "$VIGILD_PID" $f) "
done
read -r ruid euid _ <<<"$(status_of "$VIGILD_PID" Uid)"
[ "$ruid" != 0 ] && [ "$euid" != 0 ] || bad+="uid $ruid/$euid "
[ "$(status_of "$VIGILD_PID" Seccomp)" = 2 ] || bad+="Seccomp=$(status_of "$VIGILD_PID" Seccomp) "
[ "$(status_of "$VIGILD_PID" NoNewPrivs)" = 1 ] || bad+="NoNewPrivs=$(status_of "$VIGILD_PID" NoNewPrivs) "
tap_result "${TESTS[2]}" $([ -z "$bad" ]; echo $?) "monitor pid $VIGILD_PID (want $MONITOR_CAPS): $bad"

wait "$SPLIT"
vigild_wait 40
mapfile -t FILES < <(profile_files "$OUT")
pq stacks --label pid=$SPLIT "${FILES[@]}" >"$T/split.folded" 2>&1
tap_result "${TESTS[3]}" $([ "$VIGILD_RC" = 0 ] && has_frame burn_alpha <"$T/split.folded" &&
	has_frame vwl_lib_spin <"$T/split.folded" || has_frame burn_gamma <"$T/split.folded"; echo $?) \
	"vigild exit $VIGILD_RC; stacks of $SPLIT:" "$(sort -rn "$T/split.folded" | head -3 | cut -c1-200)" \
	"$(tail -5 "$T/vigild.log")"

loaded() { bpftool prog show 2>/dev/null | grep -c 'name vigil_sample'; }

# hooked RUN_ARGS...: run the test-only vigild; sets RC and LOG.
hooked() {
	LOG=$T/hook.log
	timeout 60 "$HOOKS" --bpf-dir "$B/bpf" --trust "$B/dev-ca/ca.pem" \
		--output "$T/hook-out" --no-top "$@" >"$LOG" 2>&1
	RC=$?
}

i=5
for a in "${ATTEMPTS[@]}"; do
	before=$(loaded)
	VIGIL_TEST_ATTEMPT=$a hooked --hz 19 --duration 10
	role=${a%%:*}
	after=$(loaded)
	if [ "$RC" -eq 70 ] && grep -q "the $role was killed by signal 31" "$LOG" &&
		[ "$after" -le "$before" ]; then
		tap_ok "${TESTS[$i]}"
	elif [ "$RC" -eq 0 ] && grep -q "TEST HOOK: .* refused" "$LOG" && [ "$after" -le "$before" ]; then
		tap_ok "${TESTS[$i]}"
	else
		tap_not_ok "${TESTS[$i]}" "exit $RC, vigil_sample programs loaded before $before after $after; log:" \
			"$(cat "$LOG")"
	fi
	i=$((i + 1))
done

VIGIL_TEST_ATTEMPT=collector:bad_message hooked --hz 19 --duration 10
tap_result "${TESTS[$i]}" $([ "$RC" -eq 70 ] && grep -q 'collector broke the protocol' "$LOG" &&
	grep -q 'the collector was killed by signal 9' "$LOG"; echo $?) "exit $RC; log:" "$(cat "$LOG")"
i=$((i + 1))

# The ceiling: ask for 100000 Hz with --max-hz 50, measure the rate on a busy CPU.
rm -rf "$T/hook-out"
spawn "$WLD/cpusplit" --seconds 7 --threads 1
BUSY=$SPAWNED_PID
VIGIL_TEST_ATTEMPT=collector:set_hz:100000 hooked --hz 10 --max-hz 50 --interval 20 --duration 6
wait "$BUSY"
mapfile -t HF < <(profile_files "$T/hook-out")
n=$(pq total --label pid=$BUSY "${HF[@]}" 2>/dev/null || echo 0)
# 6 s of one busy thread: ~300 samples at 50 Hz, ~60 at 10 Hz, thousands uncapped.
tap_result "${TESTS[$i]}" $([ "$RC" -eq 0 ] && grep -q 'capped at the ceiling of 50 Hz' "$LOG" &&
	[ "${n:-0}" -ge 150 ] && [ "${n:-0}" -le 360 ]; echo $?) \
	"exit $RC, $n samples of the busy thread in ~6 s (want 150..360 for 50 Hz); log:" "$(cat "$LOG")"

tap_done
