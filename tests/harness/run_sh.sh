#!/bin/bash
# tests/harness/run_sh.sh - the test of tests/run.sh and of the fuzz corpus
# replay: make check's count is only worth something if a failure, a skip
# and a stream that stops early are counted as such.
#
# Each case runs tests/run.sh on one stream made to break a rule (a cmocka
# binary with 5 failing and 2 skipped cases, TAP scripts without a plan, with
# two plans, that stop early or exit non-zero without a failure, the replay
# driver on inputs that abort, over-read, leak or hang) and checks the last
# line, the exit code and that the failure is named.  Then the pool of
# "# run.sh: alongside" scripts and the lane of "# run.sh: lane" ones: a
# copy of run.sh in a tree of its own whose tests/integration holds such
# streams, marked and not, run as the integration phase and as FILEs (the
# counts must be the same), and killed while its pool runs.  Needs no root.

. "$(dirname "$0")/../integration/lib.sh"

RUN=$VIGIL_ROOT/tests/run.sh
CM=$B/tests/harness/cm_counts
FC=$B/tests/harness/fuzz_crash

TESTS=(
	"cmocka binary: every case counted"
	"cmocka binary: VIGIL_REQUIRE_BPF=1 makes each skip a failure, with its reason"
	"cmocka binary that aborts: planned 10, ran 4"
	"script without a plan"
	"script with two plans"
	"script that stops early"
	"script that exits 3 after passing"
	"script with a skip"
	"script with the plan last"
	"script with the plan in the middle"
	"script that bails out"
	"replay: saved inputs that pass"
	"replay: an input that aborts fails and is named"
	"replay: an over-read and a leak each fail"
	"replay: an input that hangs fails"
	"replay: a missing corpus directory fails"
	"replay: an empty corpus directory fails"
	"pool: alongside streams that crash, plan wrong, print nothing or fail count as in a serial run"
	"pool: the same streams as FILEs, one after another: the same count"
	"pool: at most VIGIL_ALONGSIDE_JOBS at once, beside the serial phase, shown after it in name order"
	"pool: killed with run.sh (SIGTERM), the streams still running and what they started end"
	"pool: VIGIL_ALONGSIDE_JOBS that is not a number of streams: usage error"
	"lane: one stream at a time, beside the serial phase and the pool, shown and counted after the pool"
	"lane: VIGIL_LANE_JOBS that is not a number of streams: usage error"
	"replay: every leaking input among fine ones is named, and only those"
)
tap_plan ${#TESTS[@]}
require_file "$CM" "${TESTS[@]}"
require_file "$FC" "${TESTS[@]}"

# check NAME RC LAST GREP... -- tests/run.sh ARGS: run.sh ARGS must exit
# with RC (0 or 1), end with the line LAST, and print every GREP (fixed
# strings) before it, and no GREP written !TEXT.  RUNNER=FILE runs that copy of run.sh instead.
check() {
	local name=$1 want_rc=$2 want_last=$3 rc last problems= g
	shift 3
	local greps=()
	while [ "$1" != -- ]; do greps+=("$1"); shift; done
	shift
	"${RUNNER:-$RUN}" "$@" >"$T/run.out" 2>&1
	rc=$?
	[ "$rc" -gt 1 ] && rc=1
	last=$(tail -n 1 "$T/run.out")
	[ "$rc" -eq "$want_rc" ] || problems+="exit $rc, want $want_rc; "
	[ "$last" = "$want_last" ] || problems+="last line '$last', want '$want_last'; "
	for g in "${greps[@]}"; do
		case $g in
		!*) ! head -n -1 "$T/run.out" | grep -qF -- "${g#!}" || problems+="'${g#!}' said; " ;;
		*) head -n -1 "$T/run.out" | grep -qF -- "$g" || problems+="no '$g'; " ;;
		esac
	done
	tap_result "$name" $([ -z "$problems" ]; echo $?) "$problems" "run.sh said:" "$(tail -n 12 "$T/run.out")"
}

# script NAME [exit N] LINES...: a script $T/NAME.sh that prints LINES (and
# exits with N).
script() {
	local f=$T/$1.sh rc=0
	shift
	[ "$1" = exit ] && { rc=$2; shift 2; }
	{
		echo "cat <<'EOF'"
		printf '%s\n' "$@"
		echo "EOF"
		echo "exit $rc"
	} >"$f"
}

# command_script NAME COMMAND...: a script $T/NAME.sh that runs the
# commands (one per argument).
command_script() {
	local f=$T/$1.sh
	shift
	printf '%s\n' "$@" >"$f"
}

export -n VIGIL_REQUIRE_BPF
unset VIGIL_REQUIRE_BPF

check "${TESTS[0]}" 1 "3 passed, 5 failed, 2 skipped" \
	"failed: build/tests/harness/cm_counts: fail_equal" "failed: build/tests/harness/cm_counts: fail_true" \
	"failed: build/tests/harness/cm_counts: fail_msg_" "failed: build/tests/harness/cm_counts: fail_string" \
	"failed: build/tests/harness/cm_counts: fail_signal" \
	"skipped: build/tests/harness/cm_counts: skip_reason (the deliberate reason)" -- "$CM"
VIGIL_REQUIRE_BPF=1 check "${TESTS[1]}" 1 \
	"3 passed, 7 failed, 0 skipped" \
	"skip_reason: skipped (the deliberate reason), and VIGIL_REQUIRE_BPF=1 allows no skip" -- "$CM"
CM_COUNTS_ABORT=1 check "${TESTS[2]}" 1 "1 passed, 3 failed, 1 skipped" \
	"cm_counts: planned 10 tests, ran 4 (exit 134)" -- "$CM"

script noplan "ok 1 - a" "ok 2 - b"
check "${TESTS[3]}" 1 "2 passed, 1 failed, 0 skipped" "noplan.sh: no plan (1..N)" -- "$T/noplan.sh"
script twoplans "1..1" "ok 1 - a" "1..1" "ok 1 - b"
check "${TESTS[4]}" 1 "2 passed, 1 failed, 0 skipped" "twoplans.sh: the plan (1..N) appears 2 times" \
	-- "$T/twoplans.sh"
script early exit 1 "1..3" "ok 1 - a" "ok 2 - b"
check "${TESTS[5]}" 1 "2 passed, 1 failed, 0 skipped" "early.sh: planned 3 tests, ran 2 (exit 1)" \
	-- "$T/early.sh"
script exit3 exit 3 "1..2" "ok 1 - a" "ok 2 - b"
check "${TESTS[6]}" 1 "2 passed, 1 failed, 0 skipped" "exit3.sh: exit 3 without a failing test" \
	-- "$T/exit3.sh"
script skip "1..2" "ok 1 - a" "ok 2 - b # SKIP no cgroup v2 here"
check "${TESTS[7]}" 0 "1 passed, 0 failed, 1 skipped" "skipped: $T/skip.sh: b (no cgroup v2 here)" \
	-- "$T/skip.sh"
script planlast "ok 1 - a" "ok 2 - b" "1..2"
check "${TESTS[8]}" 0 "2 passed, 0 failed, 0 skipped" -- "$T/planlast.sh"
script planmid "ok 1 - a" "1..2" "ok 2 - b"
check "${TESTS[9]}" 1 "2 passed, 1 failed, 0 skipped" "the plan comes after 1 of its 2 results" \
	-- "$T/planmid.sh"
script bail "1..2" "ok 1 - a" "Bail out! no database"
check "${TESTS[10]}" 1 "1 passed, 2 failed, 0 skipped" "Bail out! no database" "planned 2 tests, ran 1" \
	-- "$T/bail.sh"

# The replay driver, through run.sh as make check runs it.
C=$T/corpus
mkdir -p "$C/good" "$C/abort" "$C/bad" "$C/hang" "$C/empty"
printf 'fine' >"$C/good/one"
printf '' >"$C/good/two"
cp "$C/good/one" "$C/abort/" && printf 'abort!' >"$C/abort/saved-input"
printf 'over' >"$C/bad/over" && printf 'leak' >"$C/bad/leak" && printf 'hang' >"$C/hang/hang"
command_script replay_good "exec '$FC' '$C/good'"
check "${TESTS[11]}" 0 "1 passed, 0 failed, 0 skipped" -- "$T/replay_good.sh"
command_script replay_abort "exec '$FC' '$C/abort'"
check "${TESTS[12]}" 1 "0 passed, 1 failed, 0 skipped" \
	"fuzz_crash: $C/abort/saved-input: killed by signal 6" -- "$T/replay_abort.sh"
command_script replay_bad "exec '$FC' '$C/bad'"
check "${TESTS[13]}" 1 "0 passed, 1 failed, 0 skipped" \
	"# $C/bad/leak: exit 1" "# $C/bad/over: exit 1" \
	"heap-buffer-overflow" "LeakSanitizer: detected memory leaks" -- "$T/replay_bad.sh"
command_script replay_hang "export VIGIL_REPLAY_TIMEOUT=1" "exec '$FC' '$C/hang'"
check "${TESTS[14]}" 1 "0 passed, 1 failed, 0 skipped" "fuzz_crash: $C/hang/hang: still running after 1 s" \
	-- "$T/replay_hang.sh"
command_script replay_none "exec '$FC' '$C/none'"
check "${TESTS[15]}" 1 "0 passed, 1 failed, 0 skipped" \
	"$C/none: No such file or directory (every fuzz target needs a corpus directory)" -- "$T/replay_none.sh"
command_script replay_empty "exec '$FC' '$C/empty'"
check "${TESTS[16]}" 1 "0 passed, 1 failed, 0 skipped" \
	"$C/empty: no input in the corpus directory" -- "$T/replay_empty.sh"
# The inputs share a child: a leak is found when it exits, and then each
# input runs alone, so that both leaks are named and the fine ones are not.
mkdir -p "$C/leaks"
printf 'fine' >"$C/leaks/a" && printf 'leak 1' >"$C/leaks/b" && printf 'fine' >"$C/leaks/c" &&
	printf 'leak 2' >"$C/leaks/d" && printf '' >"$C/leaks/e"
command_script replay_leaks "exec '$FC' '$C/leaks'"
check "${TESTS[24]}" 1 "0 passed, 1 failed, 0 skipped" \
	"fuzz_crash: $C/leaks/b: exit 1" "(and 1 more failure(s))" "# $C/leaks/d: exit 1" \
	"!$C/leaks/a:" "!$C/leaks/c:" "!$C/leaks/e:" -- "$T/replay_leaks.sh"

# The pool.  A tree of its own: its tests/run.sh is a copy of run.sh, which
# runs what its tests/integration holds.  Scripts marked alongside log
# "pool NAME start|end NS" to $EV, the serial z_serial.sh "serial ...".
TREE=$T/tree
IT=$TREE/tests/integration
EV=$T/events
mkdir -p "$IT"
cp "$RUN" "$TREE/tests/run.sh"
# it NAME MARKED LINES...: a script printing LINES, then running the rest
# of its body from stdin; MARKED (alongside, lane or serial) says whether
# run.sh may pool it, and in which pool: such a one logs "pool" or "lane"
# events and takes 0.6 s (after $PRE, when set) before that body, so that
# others run beside it.
it() {
	local f=$IT/$1.sh mark=$2 ev=pool
	shift 2
	[ "$mark" = lane ] && ev=lane
	{
		echo '#!/bin/bash'
		if [ "$mark" != serial ]; then
			echo "# run.sh: $mark"
			echo "echo \"$ev ${f##*/} start \$(date +%s%N)\" >>'$EV'"
		fi
		echo "cat <<'EOF'"
		printf '%s\n' "$@"
		echo "EOF"
		if [ "$mark" != serial ]; then
			echo "${PRE:-}"
			echo "sleep 0.6"
			echo "echo \"$ev ${f##*/} end \$(date +%s%N)\" >>'$EV'"
		fi
		cat
	} >"$f"
}
it a_pass serial "1..2" "ok 1 - a" "ok 2 - b" </dev/null
it b_crash alongside "1..3" "ok 1 - a" <<<'kill -SEGV $$'
it c_short alongside "1..3" "ok 1 - a" "ok 2 - b" </dev/null
it d_silent alongside </dev/null
it e_fail alongside "1..2" "ok 1 - a" "not ok 2 - b" <<<'exit 1'
it f_skip alongside "1..1" "ok 1 - s # SKIP not here" </dev/null
# g_last starts last (two slots, five before it): the serial z_serial.sh,
# started long before, must still be running then.
PRE="touch '$T/g_started'" it g_last alongside "1..2" "ok 1 - a" "ok 2 - b" </dev/null
it h_lane lane "1..2" "ok 1 - a" "ok 2 - b" </dev/null
it i_lane lane "1..2" "ok 1 - a" "not ok 2 - b" </dev/null
it z_serial serial "1..1" "ok 1 - z" <<EOF2
echo "serial z_serial.sh start \$(date +%s%N)" >>'$EV'
for _ in \$(seq 100); do [ -e '$T/g_started' ] && break; sleep 0.1; done
echo "serial z_serial.sh end \$(date +%s%N)" >>'$EV'
EOF2
printf 'echo "1..1"; echo "not ok 1 - a helper is never run"\n' >"$IT/lib_helper.sh"
POOL_LAST="12 passed, 5 failed, 1 skipped"
POOL_FAILS=("b_crash.sh: planned 3 tests, ran 1 (exit 139)" "c_short.sh: planned 3 tests, ran 2"
	"d_silent.sh: no plan (1..N)" "e_fail.sh: b" "i_lane.sh: b" "skipped: tests/integration/f_skip.sh: s (not here)")
: >"$EV"
RUNNER=$TREE/tests/run.sh VIGIL_ALONGSIDE_JOBS=2 check "${TESTS[17]}" 1 "$POOL_LAST" "${POOL_FAILS[@]}" \
	-- integration
cp "$T/run.out" "$T/pool.out"
pooled=$(cat "$EV")
rm -f "$T/g_started"
: >"$EV"
RUNNER=$TREE/tests/run.sh check "${TESTS[18]}" 1 "$POOL_LAST" "${POOL_FAILS[@]}" -- \
	"$IT"/[a-z]_*.sh

# At most 2 pooled streams at a time, and 2 at some time; z_serial.sh and
# g_last.sh overlap; the pool's streams shown after the serial ones, in
# name order, each said to be run beside.
problems=
most=$(sort -k4n <<<"$pooled" | awk '$1 == "pool" { n += ($3 == "start") ? 1 : -1; if (n > m) m = n } END { print m + 0 }')
[ "$most" = 2 ] || problems+="$most pooled streams ran at once at most, want 2; "
zs=$(awk '$2 == "z_serial.sh" && $3 == "start" { print $4 }' <<<"$pooled")
ze=$(awk '$2 == "z_serial.sh" && $3 == "end" { print $4 }' <<<"$pooled")
gs=$(awk '$2 == "g_last.sh" && $3 == "start" { print $4 }' <<<"$pooled")
ge=$(awk '$2 == "g_last.sh" && $3 == "end" { print $4 }' <<<"$pooled")
[ -n "$zs" ] && [ -n "$ze" ] && [ -n "$gs" ] && [ -n "$ge" ] && [ "$gs" -lt "$ze" ] && [ "$zs" -lt "$ge" ] ||
	problems+="g_last.sh ($gs..$ge) did not run while z_serial.sh ($zs..$ze) did; "
order=$(grep '^== ' "$T/pool.out" | sed 's/^== //; s/ (run beside the others, in a pool of 2)$/ pooled/; s/ (run beside the others, in a lane of 1)$/ laned/' | tr '\n' ' ')
want="tests/integration/a_pass.sh tests/integration/z_serial.sh tests/integration/b_crash.sh pooled"
want+=" tests/integration/c_short.sh pooled tests/integration/d_silent.sh pooled tests/integration/e_fail.sh pooled"
want+=" tests/integration/f_skip.sh pooled tests/integration/g_last.sh pooled"
want+=" tests/integration/h_lane.sh laned tests/integration/i_lane.sh laned "
[ "$order" = "$want" ] || problems+="streams shown as: $order; "
grep -qx -- '-- tests/integration/g_last.sh: [0-9]* s' "$T/pool.out" || problems+="no time for g_last.sh; "
tap_result "${TESTS[19]}" $([ -z "$problems" ]; echo $?) "$problems" "events:" "$pooled"

# Killed while its pool runs: the pooled script, its child and its
# foreground command end with run.sh; the serial script is run.sh's own.
TREE2=$T/tree2
mkdir -p "$TREE2/tests/integration"
cp "$RUN" "$TREE2/tests/run.sh"
printf '# run.sh: alongside\necho $$ >%s/hang.pid\nsleep 60 &\necho $! >%s/hang-child.pid\nsleep 60\n' "$T" "$T" \
	>"$TREE2/tests/integration/a_hang.sh"
printf 'echo $$ >%s/serial.pid\nexec sleep 60\n' "$T" >"$TREE2/tests/integration/b_serial.sh"
"$TREE2/tests/run.sh" integration >"$T/kill.out" 2>&1 &
rp=$!
wait_for 10 test -s "$T/hang-child.pid" -a -s "$T/serial.pid"
# The pool's session: every process the pool started.
sid=$(ps -o sid= -p "$(cat "$T/hang.pid" 2>/dev/null || echo 0)" | tr -d ' ')
kill -TERM "$rp"
wait "$rp"
rc=$?
left=
gone() {
	local p
	left=
	for p in $(cat "$T/hang.pid" "$T/hang-child.pid" 2>/dev/null) $(pgrep -s "${sid:-0}"); do
		# A zombie has ended; whoever reaps orphans may take its time.
		kill -0 "$p" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" != Z ] && left+="$p "
	done
	[ -z "$left" ]
}
wait_for 5 gone
st=$?
kill "$(cat "$T/serial.pid" 2>/dev/null)" 2>/dev/null
[ -s "$T/hang.pid" ] && [ -s "$T/hang-child.pid" ] && [ -n "$sid" ] && [ "$sid" != "$(ps -o sid= -p $$ | tr -d " ")" ] && [ $st -eq 0 ] &&
	[ "$rc" -ne 0 ]
tap_result "${TESTS[20]}" $? "run.sh exit $rc; the pool's session ${sid:-?}; still running: ${left:-none}" \
	"$(tail -5 "$T/kill.out")"

out=$(VIGIL_ALONGSIDE_JOBS=0 "$TREE/tests/run.sh" integration 2>&1)
rc=$?
[ $rc -eq 64 ] && grep -q 'VIGIL_ALONGSIDE_JOBS=0' <<<"$out"
tap_result "${TESTS[21]}" $? "exit $rc: $out"

# The lane: one stream at a time, the first begun before the serial
# z_serial.sh ended (it waits for the pool's last stream to start).
problems=
most=$(sort -k4n <<<"$pooled" | awk '$1 == "lane" { n += ($3 == "start") ? 1 : -1; if (n > m) m = n } END { print m + 0 }')
[ "$most" = 1 ] || problems+="$most lane streams ran at once at most, want 1; "
hs=$(awk '$2 == "h_lane.sh" && $3 == "start" { print $4 }' <<<"$pooled")
is=$(awk '$2 == "i_lane.sh" && $3 == "start" { print $4 }' <<<"$pooled")
[ -n "$hs" ] && [ -n "$is" ] && [ -n "$ze" ] && [ "$hs" -lt "$ze" ] ||
	problems+="h_lane.sh started at ${hs:-never}, i_lane.sh at ${is:-never}, z_serial.sh ended at ${ze:-?}; "
grep -qx -- '-- tests/integration/i_lane.sh: [0-9]* s' "$T/pool.out" || problems+="no time for i_lane.sh; "
tap_result "${TESTS[22]}" $([ -z "$problems" ]; echo $?) "$problems" "events:" "$pooled"

out=$(VIGIL_LANE_JOBS=x "$TREE/tests/run.sh" integration 2>&1)
rc=$?
[ $rc -eq 64 ] && grep -q 'VIGIL_LANE_JOBS=x' <<<"$out"
tap_result "${TESTS[23]}" $? "exit $rc: $out"

tap_done
