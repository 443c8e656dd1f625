#!/bin/bash
# tests/harness/run_sh.sh - the test of tests/run.sh and of the fuzz corpus
# replay: make check's count is only worth something if a failure, a skip
# and a stream that stops early are counted as such.
#
# Each case runs tests/run.sh on one stream made to break a rule (a cmocka
# binary with 5 failing and 2 skipped cases, TAP scripts without a plan, with
# two plans, that stop early or exit non-zero without a failure, the replay
# driver on inputs that abort, over-read, leak or hang) and checks the last
# line, the exit code and that the failure is named.  Needs no root.

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
)
tap_plan ${#TESTS[@]}
require_file "$CM" "${TESTS[@]}"
require_file "$FC" "${TESTS[@]}"

# check NAME RC LAST GREP... -- tests/run.sh ARGS: run.sh ARGS must exit
# with RC (0 or 1), end with the line LAST, and print every GREP (fixed
# strings) before it.
check() {
	local name=$1 want_rc=$2 want_last=$3 rc last problems= g
	shift 3
	local greps=()
	while [ "$1" != -- ]; do greps+=("$1"); shift; done
	shift
	"$RUN" "$@" >"$T/run.out" 2>&1
	rc=$?
	[ "$rc" -gt 1 ] && rc=1
	last=$(tail -n 1 "$T/run.out")
	[ "$rc" -eq "$want_rc" ] || problems+="exit $rc, want $want_rc; "
	[ "$last" = "$want_last" ] || problems+="last line '$last', want '$want_last'; "
	for g in "${greps[@]}"; do
		head -n -1 "$T/run.out" | grep -qF -- "$g" || problems+="no '$g'; "
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

tap_done
