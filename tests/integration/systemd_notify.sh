#!/bin/bash
# tests/integration/systemd_notify.sh - vigild speaks systemd's service
# notification protocol (sd_notify(3)) to a real datagram socket.
#
# It mostly waits, and what it times are vigild's timers (pets every 1 s
# allowed 1.5 s, stalls of 8 s), never a CPU share: tests/run.sh runs it in
# its pool, beside the others.
# run.sh: alongside
#
# There is no systemd here: build/tests/tools/sd_notify_recv binds the
# socket NOTIFY_SOCKET names, records each datagram with its sender's pid
# (SCM_CREDENTIALS) and the CLOCK_MONOTONIC time it arrived, and runs a
# check of vigild's state the moment READY=1 arrives.  One vigild runs with
# a policy (tenant "web" at a fixed 11 Hz, the default tenant at 29 Hz) and
# WATCHDOG_USEC=2 s, and is checked for:
#   1. READY=1, once, from the main process, when BPF is loaded and the
#      "sampling" line is logged;
#   2. a STATUS= with the frequency, the tenants and their frequencies, and
#      the export and control-plane states;
#   3. on SIGHUP, RELOADING=1 with MONOTONIC_USEC close to the clock, then
#      READY=1 once the collector applied the new policy (its tenant "api"
#      is in the STATUS= sent by then);
#   4. WATCHDOG=1 every WATCHDOG_USEC/2 or so while both workers work;
#   5-6. no WATCHDOG=1 from a few seconds after the collector (then the
#      uplink) is SIGSTOPped, the reason logged, and WATCHDOG=1 again after
#      SIGCONT;
#   7. STOPPING=1 on SIGTERM, exit 0;
#   8. with --export-url to a Pyroscope stand-in (lib_pyro.sh): STATUS=
#      says the export is on ("idle" or "sending"), where it said "off"
#      without; once the stand-in answers 503, "export: failing (HTTP
#      503)", and the uplink lives on (parsing the error body once got it
#      killed by its filter: jansson opened /dev/urandom).
# The times below follow from vigild's own constants: workers beat every
# second (beats_interval_ms: a sixth of WATCHDOG_USEC, at least 1 s), a
# worker is stalled after 3 s without progress (three beats, more than
# WATCHDOG_USEC/2 here), and the watchdog is petted every WATCHDOG_USEC/2.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pyro.sh"

RECV=$B/tests/tools/sd_notify_recv
TESTS=(
	"READY=1 once, from the main pid, after BPF is loaded and sampling is logged"
	"STATUS= names the frequency, the tenants with their frequencies, export and control plane"
	"SIGHUP: RELOADING=1 with MONOTONIC_USEC close to the clock, then READY=1 once the new policy applies"
	"WATCHDOG=1 every WATCHDOG_USEC/2 (1 s) while the workers work"
	"collector SIGSTOPped: WATCHDOG=1 stops (reason logged), resumes after SIGCONT"
	"uplink SIGSTOPped: WATCHDOG=1 stops (reason logged), resumes after SIGCONT"
	"SIGTERM: STOPPING=1, then vigild exits 0"
	"with --export-url: STATUS= says export idle or sending, then failing (HTTP 503) when the server answers 503; exit 0"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$RECV" "${TESTS[@]}"
require_file "$PYRO_RECEIVER" "${TESTS[@]}"

WD_USEC=2000000
PET_US=$((WD_USEC / 2))
STALL_US=3000000 # three beats of BEAT_MIN_MS (beats.h)

CG=$(cgroup2_root)
write_policy() { # FILE TENANT HZ
	cat >"$1" <<EOF
version: 1
defaults:
  hz: {min: 29, max: 29, start: 29}
  budget: {max_overhead_percent: 5.0}
tenants:
  - name: $2
    cgroups: ["$CG/vigil-it-$$-$2"]
    hz: {min: $3, max: $3, start: $3}
EOF
	chmod 0644 "$1"
}
P=$T/policy.yaml
write_policy "$P" web 11

NOTES=$T/notify.txt
LOG=$T/vigild.log
: >"$NOTES"
: >"$LOG"
# Run when READY=1 arrives: the monitor holds the loaded perf_event program
# and has logged that sampling started.  ($VIGILD_PID is known by then.)
cat >"$T/at_ready.sh" <<EOF
#!/bin/sh
pid=\$(cat "$T/vigild.pid")
grep -qsE '^(prog_type:[[:space:]]+7|link_type:[[:space:]]+perf)\$' /proc/\$pid/fdinfo/* || exit 3
grep -q 'sampling [0-9]* CPUs at 29 Hz' "$LOG" || exit 4
exit 0
EOF
chmod 755 "$T/at_ready.sh"
spawn "$RECV" "$T/notify" "$NOTES" --on READY=1 "$T/at_ready.sh"
RECV_PID=$SPAWNED_PID
wait_for 5 test -S "$T/notify" || { echo "Bail out! sd_notify_recv did not bind"; exit 1; }

# The pid is written before vigild can reach READY (calibration alone takes longer).
NOTIFY_SOCKET=$T/notify WATCHDOG_USEC=$WD_USEC \
	vigild_start "$LOG" --policy "$P" --hz 29 --interval 1 --control-period 1 --duration 0 \
	--output "$T/out" --metrics-listen none
echo "$VIGILD_PID" >"$T/vigild.pid"
VIGILD_TIMEOUT=120

# lines_with ASSIGNMENT: the notification lines that carry it.
lines_with() { awk -F'\t' -v a="$1" '{ for (i = 3; i <= NF; i++) if ($i == a) { print; next } }' "$NOTES"; }
# field PREFIX: the values of every assignment starting with PREFIX, in order.
field() { awk -F'\t' -v p="$1" '{ for (i = 3; i <= NF; i++) if (index($i, p) == 1) print substr($i, length(p) + 1) }' "$NOTES"; }
now_us() { "$RECV" now; }

# 1. READY=1
wait_for 60 grep -q 'READY=1' "$NOTES"
sleep 2.5 # a few beats and pets
problems=
mapfile -t ready < <(lines_with READY=1)
[ ${#ready[@]} -eq 1 ] || problems+="${#ready[@]} READY=1 before any reload (want 1); "
senders=$(awk -F'\t' '{ print $2 }' "$NOTES" | sort -u | tr '\n' ' ')
[ "$senders" = "$VIGILD_PID " ] || problems+="senders: $senders, want only the main pid $VIGILD_PID; "
case "${ready[0]:-}" in
*$'\t'on=0) ;;
*) problems+="at READY=1 the check said ${ready[0]##*on=} (3: no perf BPF program held, 4: sampling not logged); " ;;
esac
tap_result "${TESTS[0]}" $([ -z "$problems" ]; echo $?) "$problems" "notifications:" "$(cat "$NOTES")"

# 2. STATUS=
status=$(field STATUS= | tail -1)
want="sampling at 29 Hz; 2 tenants: default 29 Hz, web 11 Hz; export: off; control plane: off"
tap_result "${TESTS[1]}" $([ "$status" = "$want" ]; echo $?) "last STATUS=: '$status'" "want: '$want'"

# 3. SIGHUP: reload to a policy whose tenant is "api".
write_policy "$P" api 13
before=$(wc -l <"$NOTES")
hup_us=$(now_us)
kill -HUP "$VIGILD_PID"
wait_for 15 sh -c "tail -n +$((before + 1)) '$NOTES' | grep -q 'READY=1'"
problems=
after=$(tail -n +$((before + 1)) "$NOTES")
rel_line=$(grep -m1 -n 'RELOADING=1' <<<"$after" | cut -d: -f1)
rdy_line=$(grep -m1 -n 'READY=1' <<<"$after" | cut -d: -f1)
if [ -z "$rel_line" ] || [ -z "$rdy_line" ]; then
	problems+="RELOADING=1 then READY=1 not both seen; "
else
	[ "$rel_line" -lt "$rdy_line" ] || problems+="READY=1 before RELOADING=1; "
	rel=$(sed -n "${rel_line}p" <<<"$after")
	got_us=$(cut -f1 <<<"$rel")
	mono=$(tr '\t' '\n' <<<"$rel" | sed -n 's/^MONOTONIC_USEC=//p')
	if [ -z "$mono" ]; then
		problems+="RELOADING=1 without MONOTONIC_USEC; "
	else
		# Between the SIGHUP and the datagram's arrival, by the same clock.
		[ "$mono" -ge "$hup_us" ] && [ "$mono" -le "$got_us" ] ||
			problems+="MONOTONIC_USEC=$mono not between the SIGHUP ($hup_us) and its arrival ($got_us); "
	fi
	# The STATUS= sent with or before that READY=1 shows the new tenant.
	st=$(head -n "$rdy_line" <<<"$after" | tr '\t' '\n' | sed -n 's/^STATUS=//p' | tail -1)
	case "$st" in
	*"api 13 Hz"*) ;;
	*) problems+="STATUS= by the READY=1 after the reload: '$st' (no 'api 13 Hz': READY=1 before the policy applied); " ;;
	esac
	grep -q 'policy reloaded' "$LOG" || problems+="the collector did not log the reload; "
fi
tap_result "${TESTS[2]}" $([ -z "$problems" ]; echo $?) "$problems" "since the SIGHUP:" "$after"

# 4. WATCHDOG=1 cadence over the last few seconds.
sleep 4
pets() { lines_with WATCHDOG=1 | cut -f1; }
# max_gap FROM_US TO_US: the longest time without a pet in [FROM, TO].
max_gap() {
	{ echo "$1"; pets | awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b'; echo "$2"; } |
		awk 'NR > 1 { g = $1 - p; if (g > m) m = g } { p = $1 } END { print m + 0 }'
}
count_pets() { pets | awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b' | wc -l; }
t1=$(now_us)
t0=$((t1 - 4000000))
gap=$(max_gap "$t0" "$t1")
n=$(count_pets "$t0" "$t1")
# One per PET_US: at least 3 in 4 s, and never silent for 1.5 of its period.
tap_result "${TESTS[3]}" $([ "$n" -ge 3 ] && [ "$gap" -le $((PET_US * 3 / 2)) ]; echo $?) \
	"$n WATCHDOG=1 in 4 s, longest gap ${gap} us (period $PET_US us)"

# stall_check WORKER PID TESTNAME: SIGSTOP the worker for 8 s.
stall_check() {
	local who=$1 pid=$2 name=$3 t_stop t_cont t_end quiet gap_after n_after problems= logged
	logged=$(grep -c "the $who has made no progress" "$LOG")
	t_stop=$(now_us)
	kill -STOP "$pid"
	sleep 8
	t_cont=$(now_us)
	kill -CONT "$pid"
	sleep 4
	t_end=$(now_us)
	# From stall + one pet period (+0.5 s slack) until SIGCONT: silence.
	quiet=$((t_stop + STALL_US + PET_US + 500000))
	n=$(count_pets "$quiet" "$t_cont")
	[ "$n" -eq 0 ] || problems+="$n WATCHDOG=1 between $(((quiet - t_stop) / 1000)) ms after SIGSTOP and SIGCONT; "
	# ... and some before the stall counted (it was alive then).
	[ "$(count_pets "$((t_stop - PET_US * 2))" "$t_stop")" -ge 1 ] || problems+="no WATCHDOG=1 just before SIGSTOP; "
	n_after=$(count_pets "$t_cont" "$t_end")
	[ "$n_after" -ge 2 ] || problems+="$n_after WATCHDOG=1 in the 4 s after SIGCONT; "
	[ "$(grep -c "the $who has made no progress" "$LOG")" -gt "$logged" ] ||
		problems+="the monitor did not log the $who's stall; "
	tap_result "$name" $([ -z "$problems" ]; echo $?) "$problems" "log:" "$(grep -E 'progress|watchdog' "$LOG" | tail -4)"
}
COLLECTOR=$(pgrep -f -P "$VIGILD_PID" -- '--internal-role collector')
UPLINK=$(pgrep -f -P "$VIGILD_PID" -- '--internal-role uplink')
stall_check collector "$COLLECTOR" "${TESTS[4]}"
stall_check uplink "$UPLINK" "${TESTS[5]}"

# 7. SIGTERM
kill -TERM "$VIGILD_PID"
vigild_wait 30
problems=
[ "$VIGILD_RC" -eq 0 ] || problems+="exit $VIGILD_RC; "
tail -n 3 "$NOTES" | grep -q 'STOPPING=1' || problems+="no STOPPING=1 among the last notifications; "
tap_result "${TESTS[6]}" $([ -z "$problems" ]; echo $?) "$problems" "$(tail -n 3 "$NOTES")" "$(tail -5 "$LOG")"
kill -TERM "$RECV_PID" 2>/dev/null

# 8. The export state in STATUS=.
NOTES=$T/notify-export.txt
: >"$NOTES"
spawn "$RECV" "$T/notify2" "$NOTES"
RECV_PID=$SPAWNED_PID
wait_for 5 test -S "$T/notify2"
problems=
if ! pyro_start pyro; then
	problems+="the Pyroscope stand-in did not start; "
else
	# Metrics on a port of their own: the default one may be taken by another test.
	mport=$(free_port)
	NOTIFY_SOCKET=$T/notify2 vigild_start "$T/vigild-export.log" --hz 29 --interval 1 --duration 0 \
		--output "$T/out-export" --export-url "$PYRO_URL" --metrics-listen "127.0.0.1:$mport"
	status_has() { field STATUS= | grep -qE "$1"; }
	wait_for 30 status_has '^sampling .*; export: (idle|sending); control plane: off$' ||
		problems+="no STATUS= with 'export: idle' or 'sending'; "
	pyro_stop
	PYRO_ARGS=(--default 503)
	pyro_restart || problems+="the stand-in did not restart on its port; "
	wait_for 30 status_has '; export: failing \(HTTP 503\); control plane: off$' ||
		problems+="no STATUS= with 'export: failing (HTTP 503)' once the server answered 503; "
	kill -TERM "$VIGILD_PID"
	vigild_wait 30
	[ "$VIGILD_RC" -eq 0 ] || problems+="vigild exited $VIGILD_RC; "
	pyro_stop
fi
tap_result "${TESTS[7]}" $([ -z "$problems" ]; echo $?) "$problems" "STATUS= lines:" "$(field STATUS= | uniq)" \
	"vigild log:" "$(tail -5 "$T/vigild-export.log")"
kill -TERM "$RECV_PID" 2>/dev/null
tap_done
