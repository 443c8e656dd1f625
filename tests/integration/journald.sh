#!/bin/bash
# tests/integration/journald.sh - when its stderr is the journal, vigild
# logs through the journal's native protocol, with structured fields.
#
# There is no journald here.  vigild (daemon/journal.c) sends to the fixed
# path /run/systemd/journal/socket, so vigild runs in a private mount namespace
# (unshare -m) whose /run/systemd/journal is a directory of this test where
# build/tests/tools/journal_recv has bound that socket; it parses the
# native protocol (KEY=VALUE, the binary KEY/size/value form, and entries
# passed as a sealed memfd) as journald does, and writes each entry as one
# JSON line with the sender's pid.  JOURNAL_STREAM is set to the device and
# inode of the file vigild's stderr goes to, as systemd sets it.  Checked:
#   1. every line is an entry (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER,
#      VIGIL_PROCESS) and nothing goes to stderr;
#   2. the "started" event: its MESSAGE_ID, VIGIL_HZ, from the monitor;
#   3. the collector, under its real seccomp filter and Landlock, logs
#      through the journal too: per-tenant budget entries with
#      VIGIL_PROCESS=collector, VIGIL_TENANT, VIGIL_HZ, from its pid, and
#      it lives on (vigild exits 0);
#   4. a policy refused on SIGHUP: its MESSAGE_ID, PRIORITY=4;
#   5. a JOURNAL_STREAM that is not stderr: plain lines on stderr, no entry;
#   7. a BPF object with a flipped byte: the loader, under its own filter,
#      logs the refusal with its MESSAGE_ID, and vigild exits 77;
#   6. the listener itself: libsystemd's binary form and memfd arrive
#      intact (so that 1-4 would see what a journald sees).
#
# It mostly waits; its journal socket is in a mount namespace of its own
# and it times nothing: tests/run.sh runs it in its pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"

JR=$B/tests/tools/journal_recv
JG=$B/tests/tools/json_get
ID_STARTED=8edaba06a97147e2a1eff1ddc211b083 # logids.h
ID_POLICY_REFUSED=7efbacab9f154c67b06621d0cadf20db
ID_BPF_REFUSED=d902e12140984472b6e99c15a2658f1d
TESTS=(
	"stderr is the journal: every line is an entry with MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, VIGIL_PROCESS; stderr empty"
	"'started' entry: MESSAGE_ID=$ID_STARTED, PRIORITY=6, VIGIL_HZ=29, VIGIL_PROCESS=monitor, vigild's pid"
	"the confined collector logs to the journal: VIGIL_PROCESS=collector, VIGIL_TENANT=web, VIGIL_HZ=11, its pid; vigild exits 0"
	"policy refused on SIGHUP: MESSAGE_ID=$ID_POLICY_REFUSED, PRIORITY=4, from the collector"
	"JOURNAL_STREAM naming another file: plain lines on stderr, no journal entry"
	"the listener reads libsystemd's binary form (datagram) and a sealed memfd entry intact"
	"a tampered BPF object: MESSAGE_ID=$ID_BPF_REFUSED, PRIORITY=3, VIGIL_PROCESS=loader; exit 77"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$JR" "${TESTS[@]}"
require_file "$JG" "${TESTS[@]}"
command -v unshare >/dev/null || { for t in "${TESTS[@]}"; do tap_not_ok "$t" "unshare(1) is missing"; done; tap_done; }

mkdir -p "$T/journal"
chmod 755 "$T/journal"
J=$T/journal.json
: >"$J"
spawn "$JR" listen "$T/journal/socket" "$J"
JR_PID=$SPAWNED_PID
wait_for 5 test -S "$T/journal/socket" || { echo "Bail out! journal_recv did not bind"; exit 1; }

# in_ns CMD...: run CMD (exec'd: same pid) where /run/systemd/journal is $T/journal.
cat >"$T/in_ns" <<EOF
#!/bin/sh
exec unshare -m sh -c 'mount -t tmpfs -o mode=755 tmpfs /run && mkdir -p /run/systemd/journal &&
	mount --bind "$T/journal" /run/systemd/journal && exec "\$@"' sh "\$@"
EOF
chmod 755 "$T/in_ns"

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

# entries KEY VALUE: the JSON lines whose KEY is VALUE.
entries() {
	local l
	while IFS= read -r l; do
		[ "$("$JG" ".$1" <<<"$l" 2>/dev/null)" = "$2" ] && printf '%s\n' "$l"
	done <"$J"
}
get() { "$JG" ".$1" <<<"$2" 2>/dev/null; }

LOG=$T/vigild.stderr
: >"$LOG"
REAL_VIGILD=$VIGILD
VIGILD=$T/in_ns
JOURNAL_STREAM=$(stat -c '%d:%i' "$LOG") \
	vigild_start "$LOG" "$REAL_VIGILD" --policy "$P" --hz 29 --interval 1 --control-period 1 \
	--duration 0 --output "$T/out" --metrics-listen none
VIGILD=$REAL_VIGILD
wait_for 60 grep -q "\"MESSAGE_ID\":\"$ID_STARTED\"" "$J"
COLLECTOR=$(pgrep -f -P "$VIGILD_PID" -- '--internal-role collector')
wait_for 10 grep -q '"VIGIL_TENANT":"web"' "$J"

# 4 first (vigild must be running): a policy that does not parse, then SIGHUP.
printf 'version: 2\n' >"$P"
kill -HUP "$VIGILD_PID"
wait_for 10 grep -q "\"MESSAGE_ID\":\"$ID_POLICY_REFUSED\"" "$J"
sleep 1.5
kill -TERM "$VIGILD_PID"
vigild_wait 30

# 1
problems=
n=$(wc -l <"$J")
[ "$n" -ge 5 ] || problems+="only $n entries; "
bad=$(awk '!/"MESSAGE":/ || !/"PRIORITY":"[0-7]"/ || !/"SYSLOG_IDENTIFIER":"vigild"/ || !/"VIGIL_PROCESS":"(monitor|collector|uplink|loader)"/' "$J" | head -3)
[ -z "$bad" ] || problems+="entries without the common fields: $bad; "
[ ! -s "$LOG" ] || problems+="stderr has lines: $(head -3 "$LOG"); "
tap_result "${TESTS[0]}" $([ -z "$problems" ]; echo $?) "$problems"

# 2
problems=
mapfile -t st < <(entries MESSAGE_ID "$ID_STARTED")
if [ ${#st[@]} -ne 1 ]; then
	problems+="${#st[@]} 'started' entries; "
else
	e=${st[0]}
	[ "$(get PRIORITY "$e")" = 6 ] || problems+="PRIORITY=$(get PRIORITY "$e"); "
	[ "$(get VIGIL_HZ "$e")" = 29 ] || problems+="VIGIL_HZ=$(get VIGIL_HZ "$e"); "
	[ "$(get VIGIL_PROCESS "$e")" = monitor ] || problems+="VIGIL_PROCESS=$(get VIGIL_PROCESS "$e"); "
	[ "$(get _PID "$e")" = "$VIGILD_PID" ] || problems+="_PID=$(get _PID "$e"), vigild is $VIGILD_PID; "
	case "$(get MESSAGE "$e")" in
	"sampling "*" CPUs at 29 Hz"*) ;;
	*) problems+="MESSAGE=$(get MESSAGE "$e"); " ;;
	esac
fi
tap_result "${TESTS[1]}" $([ -z "$problems" ]; echo $?) "$problems" "${st[@]}"

# 3
problems=
mapfile -t web < <(entries VIGIL_TENANT web)
if [ ${#web[@]} -eq 0 ]; then
	problems+="no entry with VIGIL_TENANT=web; "
else
	e=${web[0]}
	[ "$(get VIGIL_PROCESS "$e")" = collector ] || problems+="VIGIL_PROCESS=$(get VIGIL_PROCESS "$e"); "
	[ "$(get VIGIL_HZ "$e")" = 11 ] || problems+="VIGIL_HZ=$(get VIGIL_HZ "$e"); "
	[ -n "$COLLECTOR" ] && [ "$(get _PID "$e")" = "$COLLECTOR" ] ||
		problems+="_PID=$(get _PID "$e"), the collector is ${COLLECTOR:-unknown}; "
	case "$(get MESSAGE "$e")" in
	"budget tenant=web hz=11 "*) ;;
	*) problems+="MESSAGE=$(get MESSAGE "$e"); " ;;
	esac
fi
[ "$VIGILD_RC" -eq 0 ] || problems+="vigild exited $VIGILD_RC; "
tap_result "${TESTS[2]}" $([ -z "$problems" ]; echo $?) "$problems" "${web[0]:-}"

# 4
problems=
mapfile -t ref < <(entries MESSAGE_ID "$ID_POLICY_REFUSED")
if [ ${#ref[@]} -ne 1 ]; then
	problems+="${#ref[@]} 'policy refused' entries; "
else
	e=${ref[0]}
	[ "$(get PRIORITY "$e")" = 4 ] || problems+="PRIORITY=$(get PRIORITY "$e"); "
	[ "$(get VIGIL_PROCESS "$e")" = collector ] || problems+="VIGIL_PROCESS=$(get VIGIL_PROCESS "$e"); "
	case "$(get MESSAGE "$e")" in
	*"invalid policy; keeping the one in force"*) ;;
	*) problems+="MESSAGE=$(get MESSAGE "$e"); " ;;
	esac
fi
tap_result "${TESTS[3]}" $([ -z "$problems" ]; echo $?) "$problems" "${ref[@]}"

# 5: JOURNAL_STREAM of another file; the socket is there all the same.
: >"$J"
write_policy "$P" web 11
OTHER=$T/other
: >"$OTHER"
LOG2=$T/vigild2.stderr
VIGILD=$T/in_ns
JOURNAL_STREAM=$(stat -c '%d:%i' "$OTHER") \
	vigild_start "$LOG2" "$REAL_VIGILD" --policy "$P" --hz 29 --interval 1 --duration 2 --output "$T/out2" \
	--metrics-listen none
VIGILD=$REAL_VIGILD
vigild_wait 60
problems=
[ "$VIGILD_RC" -eq 0 ] || problems+="exit $VIGILD_RC; "
grep -q '^vigild: sampling [0-9]* CPUs at 29 Hz' "$LOG2" || problems+="no plain 'sampling' line on stderr; "
[ ! -s "$J" ] || problems+="$(wc -l <"$J") journal entries; "
tap_result "${TESTS[4]}" $([ -z "$problems" ]; echo $?) "$problems" "$(head -3 "$LOG2")"

# 7 (before 6, which stops the listener): a byte of the object flipped.
: >"$J"
mkdir -p "$T/badbpf"
cp "$B/bpf/profile.bpf.o" "$B/bpf/profile.bpf.o.sig" "$T/badbpf/"
size=$(stat -c %s "$T/badbpf/profile.bpf.o")
printf '\xff' | dd of="$T/badbpf/profile.bpf.o" bs=1 seek=$((size / 2)) conv=notrunc status=none
LOG3=$T/vigild3.stderr
: >"$LOG3"
VIGILD=$T/in_ns
JOURNAL_STREAM=$(stat -c '%d:%i' "$LOG3") \
	vigild_start "$LOG3" "$REAL_VIGILD" --bpf-dir "$T/badbpf" --trust "$B/dev-ca/ca.pem" --hz 29 \
	--duration 2 --output "$T/out3" --metrics-listen none
VIGILD=$REAL_VIGILD
vigild_wait 60
problems=
[ "$VIGILD_RC" -eq 77 ] || problems+="exit $VIGILD_RC, want 77; "
mapfile -t bpf < <(entries MESSAGE_ID "$ID_BPF_REFUSED")
if [ ${#bpf[@]} -ne 1 ]; then
	problems+="${#bpf[@]} 'BPF object refused' entries; "
else
	e=${bpf[0]}
	[ "$(get PRIORITY "$e")" = 3 ] || problems+="PRIORITY=$(get PRIORITY "$e"); "
	[ "$(get VIGIL_PROCESS "$e")" = loader ] || problems+="VIGIL_PROCESS=$(get VIGIL_PROCESS "$e"); "
	case "$(get MESSAGE "$e")" in
	*profile.bpf.o*) ;;
	*) problems+="MESSAGE=$(get MESSAGE "$e") does not name the object; " ;;
	esac
fi
[ ! -s "$LOG3" ] || problems+="stderr: $(head -3 "$LOG3"); "
BPF_RESULT=("${TESTS[6]}" "$([ -z "$problems" ]; echo $?)" "$problems" "${bpf[@]}")

# 6: 5000 bytes go in one datagram, 9 MB (more than any socket buffer here) as a memfd.
: >"$J"
"$T/in_ns" "$JR" send-big 5000
"$T/in_ns" "$JR" send-big 9000000
wait_for 10 test "$(wc -l <"$J")" -ge 2
problems=
expect() { awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "%c", i % 100 == 99 ? 10 : 97 + i % 26 }'; }
for size in 5000 9000000; do
	line=$(awk -v s="$size" 'length($0) > s / 2 && length($0) < s * 3' "$J" | head -1)
	via=$(get _VIA "$line")
	want_via=$([ "$size" -eq 5000 ] && echo datagram || echo memfd)
	[ "$via" = "$want_via" ] || problems+="$size bytes came as '$via', expected $want_via; "
	[ "$(get BIG "$line" | head -c "$size" | cksum)" = "$(expect "$size" | cksum)" ] ||
		problems+="BIG= of $size bytes not intact; "
done
kill -TERM "$JR_PID"
wait "$JR_PID"
rc=$?
[ "$rc" -eq 0 ] || problems+="journal_recv refused entries (exit $rc); "
tap_result "${TESTS[5]}" $([ -z "$problems" ]; echo $?) "$problems"
tap_result "${BPF_RESULT[@]}"
tap_done
