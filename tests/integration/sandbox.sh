#!/bin/bash
# tests/integration/sandbox.sh - privilege separation, observed from outside.
#
# While vigild runs: every worker has all capability sets empty, a non-root
# uid, no_new_privs and a seccomp filter; the monitor has exactly the
# documented capabilities (sandbox.c) and a seccomp filter too.
#
# With the test-only build (build/tests/vigild-testhooks, daemon/testhooks.h)
# a process told to try what its sandbox forbids must be stopped by the layer
# meant to stop it, and the test tells which:
#   - a system call outside a seccomp allowlist: the process dies of SIGSYS
#     (not "refused": a missing capability or Landlock would refuse it too),
#     the monitor's log names the process, its pid and the call, and the
#     kernel's own audit record of the kill (dmesg) names the same pid and
#     call number; vigild exits 70 and no program it loaded stays loaded;
#   - the loader (which parses the signature as root) is already under its
#     filter, with only its capabilities, before it reads anything;
#   - the monitor itself after the drop: killed by SIGSYS, its workers end,
#     nothing stays loaded;
#   - the collector opening a file its uid may read (shown here as that
#     uid) outside what Landlock allows: EACCES, and it lives on;
#   - the uplink connecting to a local port with no control plane
#     configured: killed (no socket() at all), and the listener sees no
#     connection.
# A worker that sends a message the protocol forbids is killed by the
# monitor.  A frequency above the ceiling is capped, the collector is told
# the frequency really in effect, and the sample rate shows it.
#
# "Nothing stays loaded": no vigil_sample program that was not there
# before the run is pinned or held by a process of the run once it ended
# (lib.sh leaked).

. "$(dirname "$0")/lib.sh"

HOOKS=$B/tests/vigild-testhooks
LISTEN=$B/tests/tools/tcp_listen
# role:what syscall-the-kernel-names
ATTEMPTS=(
	"collector:execve execve"
	"collector:ptrace ptrace"
	"collector:bpf_prog_load bpf"
	"collector:socket_inet socket"
	"collector:socket_unix_stream socket"
	"uplink:socket_unix_stream socket"
	"uplink:open openat"
	"collector:fcntl_setown fcntl"
	"uplink:fcntl_setsig fcntl"
	"uplink:execve execve"
	"loader:execve execve"
)
TESTS=(
	"collector: CapInh/Prm/Eff/Bnd/Amb all 0, non-root uid, NoNewPrivs 1, Seccomp 2"
	"uplink: CapInh/Prm/Eff/Bnd/Amb all 0, non-root uid, NoNewPrivs 1, Seccomp 2"
	"monitor: exactly CAP_BPF CAP_PERFMON CAP_SYS_PTRACE CAP_DAC_READ_SEARCH, non-root uid, Seccomp 2"
	"profiles are still symbolized through the monitor (and vigild exits 0)"
	"workers get no inherited fd and an empty environment"
)
for a in "${ATTEMPTS[@]}"; do
	set -- $a
	TESTS+=("${1%%:*} tries ${1#*:}: killed by SIGSYS, monitor logs pid and $2, kernel audit agrees, exit 70, nothing left loaded")
done
TESTS+=("loader: confined before it reads anything: uid 0 with only CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH")
TESTS+=("monitor tries execve after the drop: killed by SIGSYS (kernel audit agrees), workers gone, nothing left loaded")
TESTS+=("collector opens /etc/passwd (readable by its uid): Landlock refuses with EACCES, the collector lives on")
TESTS+=("uplink connects to a listening local port: killed by SIGSYS at socket(), no connection arrives")
TESTS+=("collector sends a message the table forbids: killed as compromised, monitor exits 70")
TESTS+=("collector asks for 100000 Hz under --max-hz 47: capped, told 47 Hz, and the sample rate shows it")
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$HOOKS" "${TESTS[@]}"
require_file "$LISTEN" "${TESTS[@]}"

# Capabilities as the kernel names them in CapEff (bit numbers).
MONITOR_CAPS=$(printf '%016x' $(((1 << 2) | (1 << 19) | (1 << 38) | (1 << 39))))
LOADER_CAPS=$(printf '%016x' $(((1 << 2) | (1 << 38) | (1 << 39))))

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
VIGIL_UID=
if [ -z "$COLLECTOR" ] || [ -z "$UPLINK" ]; then
	tap_not_ok "${TESTS[0]}" "no collector/uplink child of $VIGILD_PID" "$(ps -ef | grep vigild)"
	tap_not_ok "${TESTS[1]}" "see above"
else
	check_worker "${TESTS[0]}" "$COLLECTOR"
	check_worker "${TESTS[1]}" "$UPLINK"
	read -r VIGIL_UID _ <<<"$(status_of "$COLLECTOR" Uid)"
	read -r VIGIL_GID _ <<<"$(status_of "$COLLECTOR" Gid)"
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
st=1
if [ "$VIGILD_RC" = 0 ] && has_frame burn_alpha <"$T/split.folded" &&
	{ has_frame vwl_lib_spin <"$T/split.folded" || has_frame burn_gamma <"$T/split.folded"; }; then
	st=0
fi
tap_result "${TESTS[3]}" $st "vigild exit $VIGILD_RC; stacks of $SPLIT:" \
	"$(sort -rn "$T/split.folded" | head -3 | cut -c1-200)" "$(tail -5 "$T/vigild.log")"

# ---------------------------------------------------------------------------
# The test-only build, told to misbehave.

# hook_start ATTEMPT RUN_ARGS...: start the test-only vigild in the
# background with VIGIL_TEST_ATTEMPT set; its pid in HPID, its log in LOG,
# the vigil_sample programs loaded before it in BEFORE.  A watchdog kills it after
# 60 s.
HN=0
hook_start() {
	local attempt=$1
	shift
	HN=$((HN + 1))
	LOG=$T/hook$HN.log
	BEFORE=$(vigil_sample_ids)
	VIGIL_TEST_ATTEMPT=$attempt "$HOOKS" --bpf-dir "$B/bpf" --trust "$B/dev-ca/ca.pem" \
		--output "$T/hook-out$HN" --no-top "$@" >"$LOG" 2>&1 &
	HPID=$!
	SPAWNED+=("$HPID")
	( sleep 60; kill -KILL "$HPID" 2>/dev/null ) >/dev/null 2>&1 &
	SPAWNED+=("$!")
}

# hook_wait: wait for it; RC its exit code, LEFT its programs still loaded
# 1 s after every process it started is gone (and which are not gone).
# Its children (the workers, the loader) are noted while it runs: once it
# has exited they are no one's children, and other tests' vigilds run
# the same programs.
hook_wait() {
	local i w kids=" " alive
	while kill -0 "$HPID" 2>/dev/null && [ -z "$(ps -o stat= -p "$HPID" | grep Z)" ]; do
		for w in $(pgrep -P "$HPID"); do
			[[ $kids == *" $w "* ]] || kids+="$w "
		done
		sleep 0.05
	done
	wait "$HPID" 2>/dev/null
	RC=$?
	# Workers end with the monitor (PR_SET_PDEATHSIG, or its socket).
	for ((i = 0; i < 50; i++)); do
		alive=$(hook_alive $kids)
		[ -z "$alive" ] && break
		sleep 0.1
	done
	sleep 1
	LEFT=$(leaked "$BEFORE" | tr '\n' ' ')
	alive=$(hook_alive $kids)
	[ -z "$alive" ] || LEFT+="(workers still running: $alive)"
}

# hook_alive PID...: those of PID... that still run one of $HOOKS's programs
hook_alive() {
	local w exe
	for w in "$@"; do
		exe=$(readlink "/proc/$w/exe" 2>/dev/null) || continue
		[[ $exe == "$HOOKS"* ]] && printf '%s(%s) ' "$w" "${exe##*/}"
	done
}

# hooked ATTEMPT RUN_ARGS...: both.
hooked() {
	hook_start "$@"
	hook_wait
}

# audit_syscall PID: the system call number of the kernel's seccomp record of PID.
audit_syscall() {
	dmesg 2>/dev/null | awk -v p="pid=$1" '/audit: type=1326 / {
		hit = 0; sc = ""
		for (i = 1; i <= NF; i++) { if ($i == p) hit = 1; if ($i ~ /^syscall=/) sc = substr($i, 9) }
		if (hit) last = sc
	} END { print last }'
}

i=5
for a in "${ATTEMPTS[@]}"; do
	set -- $a
	attempt=$1 call=$2 role=${1%%:*}
	hooked "$attempt" --hz 19 --duration 10
	line=$(grep -E "the $role \(pid [0-9]+\) was killed by SIGSYS: .* forbids, $call \(number [0-9]+\)" "$LOG" | head -1)
	pid=$(sed -nE 's/.*\(pid ([0-9]+)\).*/\1/p' <<<"$line")
	num=$(sed -nE 's/.*\(number ([0-9]+)\).*/\1/p' <<<"$line")
	kernel=$([ -n "$pid" ] && audit_syscall "$pid")
	hook_pid=$(sed -nE "s/.*TEST HOOK: pid ([0-9]+) attempting .*/\1/p" "$LOG" | head -1)
	st=1
	if [ "$RC" -eq 70 ] && [ -n "$line" ] && [ "$pid" = "$hook_pid" ] && [ -n "$num" ] &&
		[ "$kernel" = "$num" ] && [ -z "$LEFT" ] && ! grep -q "NOT STOPPED\|returned: refused" "$LOG"; then
		st=0
	fi
	tap_result "${TESTS[$i]}" $st "exit $RC (want 70); monitor says pid ${pid:-?} call ${num:-?}," \
		"the hook ran as pid ${hook_pid:-?}, the kernel's audit record says call ${kernel:-none};" \
		"left loaded: ${LEFT:-nothing}; log:" "$(cat "$LOG")"
	if [ "$attempt" = loader:execve ]; then
		LOADER_LOG=$LOG
	fi
	i=$((i + 1))
done

# The loader's confinement, as it noted it just before its filter went on.
eff=$(sed -nE 's/.*TEST HOOK: loader CapEff:\s*([0-9a-f]+).*/\1/p' "$LOADER_LOG")
bnd=$(sed -nE 's/.*TEST HOOK: loader CapBnd:\s*([0-9a-f]+).*/\1/p' "$LOADER_LOG")
uid=$(sed -nE 's/.*TEST HOOK: loader Uid:\s*([0-9]+).*/\1/p' "$LOADER_LOG")
# ... and it was killed before a byte of the object was read: nothing was verified.
tap_result "${TESTS[$i]}" $([ "$eff" = "$LOADER_CAPS" ] && [ "$bnd" = "$LOADER_CAPS" ] && [ "$uid" = 0 ] &&
	! grep -q "signature verified" "$LOADER_LOG"; echo $?) \
	"loader uid ${uid:-?} CapEff ${eff:-?} CapBnd ${bnd:-?} (want $LOADER_CAPS); log:" "$(cat "$LOADER_LOG")"
i=$((i + 1))

# The monitor itself, after the drop.
hooked monitor:execve --hz 19 --duration 10
kernel=$(audit_syscall "$HPID")
st=1
if [ "$RC" -eq $((128 + 31)) ] && [ "$kernel" = 59 ] && grep -q "TEST HOOK: pid $HPID attempting execve" "$LOG" &&
	[ -z "$LEFT" ]; then
	st=0
fi
tap_result "${TESTS[$i]}" $st "exit $RC (want 159: SIGSYS); kernel's audit record for pid $HPID: syscall ${kernel:-none} (want 59);" \
	"left loaded: ${LEFT:-nothing}; log:" "$(cat "$LOG")"
i=$((i + 1))

# Landlock: a file the collector's uid may read, refused inside the sandbox.
outside=1
if [ -n "$VIGIL_UID" ] && setpriv --reuid "$VIGIL_UID" --regid "$VIGIL_GID" --clear-groups \
	cat /etc/passwd >/dev/null 2>&1; then
	outside=0
fi
hooked collector:open --hz 19 --duration 10
st=1
if [ $outside -eq 0 ] && [ "$RC" -eq 0 ] && grep -q "TEST HOOK: open returned: refused: Permission denied" "$LOG" &&
	! grep -q "killed by" "$LOG" && [ -z "$LEFT" ]; then
	st=0
fi
tap_result "${TESTS[$i]}" $st "uid ${VIGIL_UID:-?} can read /etc/passwd outside the sandbox: $([ $outside -eq 0 ] && echo yes || echo no);" \
	"exit $RC (want 0: the collector ended itself after the refusal); log:" "$(cat "$LOG")"
i=$((i + 1))

# The uplink and a local port: no control plane is configured.
coproc LISTENER { "$LISTEN" 15; }
read -r _ port <&"${LISTENER[0]}"
hooked "uplink:connect_local:$port" --hz 19 --duration 5
read -r _ conns <&"${LISTENER[0]}"
line=$(grep -E "the uplink \(pid [0-9]+\) was killed by SIGSYS: .* forbids, socket \(number 41\)" "$LOG")
tap_result "${TESTS[$i]}" $([ "$RC" -eq 70 ] && [ -n "$line" ] && [ "$conns" = 0 ] && [ -z "$LEFT" ]; echo $?) \
	"exit $RC, listener on port ${port:-?} saw ${conns:-?} connection(s); log:" "$(cat "$LOG")"
i=$((i + 1))

hooked collector:bad_message --hz 19 --duration 10
tap_result "${TESTS[$i]}" $([ "$RC" -eq 70 ] && grep -q 'collector broke the protocol' "$LOG" &&
	grep -qE 'the collector \(pid [0-9]+\) was killed by signal 9' "$LOG" && [ -z "$LEFT" ]; echo $?) \
	"exit $RC; left loaded: ${LEFT:-nothing}; log:" "$(cat "$LOG")"
i=$((i + 1))

# The ceiling: ask for 100000 Hz with --max-hz 47.  A busy workload runs
# wholly inside the session once the answer is in, and its samples per
# second of its own threads' CPU time (which it prints) must be 47 within
# 3 sigma of counting noise: 11 (--hz) or uncapped is far off.  (47, not
# 50: a period that is a whole number of scheduler ticks - 20 ms is five
# of CONFIG_HZ=250's - samples at one fixed phase of the tick, where CFS
# switches tasks, and on a contended CPU that aliases: seen 37% over.)
# lib.sh's rate_verdict judges it, with 24 samples' worth of CPU at least
# (0.51 s of the 3 s it runs: a loaded host gives less than a whole CPU),
# where 3 sigma is 61%: 11 Hz, 77% under, is still outside it.
hook_start collector:set_hz:100000 --hz 11 --max-hz 47 --interval 20 --duration 9
for ((k = 0; k < 200; k++)); do
	grep -q "TEST HOOK: asked for" "$LOG" && break
	kill -0 "$HPID" 2>/dev/null || break
	sleep 0.1
done
"$WLD/cpusplit" --seconds 3 --threads 1 >"$T/busy.out" 2>&1 &
BUSY=$!
wait $BUSY
hook_wait
mapfile -t HF < <(profile_files "$T/hook-out$HN")
n=$(pq total --label pid=$BUSY "${HF[@]}" 2>/dev/null || echo 0)
verdict=$(rate_verdict "$n" 47 "$T/busy.out" 24)
tap_result "${TESTS[$i]}" $([ "$RC" -eq 0 ] && grep -q 'capped at the ceiling of 47 Hz' "$LOG" &&
	grep -q 'TEST HOOK: asked for 100000 Hz: granted, 47 Hz in effect' "$LOG" &&
	[[ $verdict == ok* ]] && [ -z "$LEFT" ]; echo $?) "exit $RC; ${verdict#* }; left loaded: ${LEFT:-nothing}; log:" "$(cat "$LOG")"
[[ $verdict == ok* ]] && tap_diag "${verdict#ok }"

tap_done
