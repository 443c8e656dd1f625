#!/bin/bash
# tests/run.sh - run the tests; the last line is always
#   N passed, N failed, N skipped
#
# Every test program is a TAP stream, read by one reader (tap_count below):
#   unit         each build/tests/unit/test_* cmocka binary, one per
#                tests/unit/test_*.c, run with CMOCKA_MESSAGE_OUTPUT=TAP;
#                each case counts, failing and skipped ones included
#   fuzz         each build/tests/fuzz/fuzz_<name>, one per
#                tests/fuzz/fuzz_<name>.c, replaying tests/fuzz/corpus/<name>/
#                (tests/fuzz/replay.c): one result per target
#   harness      tests/harness/*.sh: the test of this script
#   integration  tests/integration/*.sh but the sourced helpers (lib*.sh);
#                each result line counts
#
# The rules, each broken one a failure named in the list before the last line:
#   - a stream must print its plan (1..N) exactly once, before or after all
#     of its results, and run exactly N results;
#   - a stream that exits non-zero without a failing result counts as one
#     failure (a crash cannot pass);
#   - a test whose binary is not built fails (a source without its binary
#     cannot pass by being absent);
#   - with VIGIL_REQUIRE_BPF=1 every skip is a failure, with the skip's
#     reason: the tests that skip here need BPF, root, cgroups or TLS, and
#     CI (.ci/run) has them all.
# A result is "ok", "not ok", or either with a "# SKIP reason" directive;
# cmocka prints a skipped case as "not ok N # SKIP name", its reason (see
# tests/unit/skip.h) on the line "# skip: reason" before it.  Skips are
# listed with their reasons too.
#
# Streams run one after another, but for the integration scripts marked
# "# run.sh: alongside" (scripts that mostly wait, see below) or
# "# run.sh: lane" (scripts that sample like the serial ones but assert
# nothing a test beside them could change): when the integration phase is
# asked for, those run from the start, the first in a pool of
# VIGIL_ALONGSIDE_JOBS (default 3) at once, the second one at a time in a
# lane of their own, beside every other phase, and are shown and counted,
# in name order, after the serial integration phase.
#
# Usage: tests/run.sh [unit|fuzz|harness|integration|FILE]...
#   (default: harness unit fuzz integration; a FILE is a script (*.sh) or a
#   TAP-printing binary, run as one stream)

set -u
# One locale whatever the invoker's: messages (strerror's) in English, and
# a decimal point in numbers ($EPOCHREALTIME, printf, awk).
export LC_ALL=C.UTF-8
REQUIRE=${VIGIL_REQUIRE_BPF:-0}
args=()
for a in "$@"; do
	case $a in
	unit | fuzz | harness | integration) args+=("$a") ;;
	*)
		if [ ! -e "$a" ]; then
			echo "usage: $0 [unit|fuzz|harness|integration|FILE]..." >&2
			exit 64
		fi
		case $a in /*) args+=("$a") ;; *) args+=("$PWD/$a") ;; esac
		;;
	esac
done
cd "$(dirname "$0")/.." || exit 1
B=build
passed=0 failed=0 skipped=0
failures=() skips=()
TMP=$(mktemp -d /tmp/vigil-run.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT

# tap_count FILE: read the TAP in FILE; print one line per finding, fields
# separated by tabs:  pass | fail NAME | skip NAME REASON | bad WHAT
TAP_AWK='
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
BEGIN { plans = 0; n = 0; reason = ""; bail = "" }
/^1\.\.[0-9]+([ \t]|$)/ {
	plans++
	planned = substr($0, 4) + 0
	plan_after = n
	skipall = ""
	if (match($0, /#[ \t]*[Ss][Kk][Ii][Pp]/))
		skipall = trim(substr($0, RSTART + RLENGTH))
	next
}
/^# skip: / { reason = trim(substr($0, 9)); next }
/^Bail out!/ { bail = trim(substr($0, 10)); next }
/^(not )?ok([ \t]|$)/ {
	n++
	ok = ($0 !~ /^not /)
	rest = $0
	sub(/^(not )?ok[ \t]*/, "", rest)
	sub(/^[0-9]+[ \t]*/, "", rest)
	sub(/^-[ \t]*/, "", rest)
	desc = rest
	if (match(rest, /#[ \t]*[Ss][Kk][Ii][Pp][^ \t]*/)) {
		desc = trim(substr(rest, 1, RSTART - 1))
		why = trim(substr(rest, RSTART + RLENGTH))
		# cmocka: "not ok 4 # SKIP name"; the reason came before.
		if (desc == "") { desc = why; why = reason }
		else if (why == "") why = reason
		if (desc == "") desc = "result " n
		printf "skip\t%s\t%s\n", desc, why
	} else {
		desc = trim(desc)
		if (desc == "") desc = "result " n
		if (ok) print "pass"
		else printf "fail\t%s\n", desc
	}
	reason = ""
	next
}
END {
	if (plans == 0)
		print "bad\tno plan (1..N): it stopped before announcing its tests, or never does"
	else if (plans > 1)
		printf "bad\tthe plan (1..N) appears %d times\n", plans
	else {
		if (plan_after != 0 && plan_after != n)
			printf "bad\tthe plan comes after %d of its %d results\n", plan_after, n
		if (planned != n)
			printf "bad\tplanned %d tests, ran %d\n", planned, n
		else if (n == 0)
			printf "skip\tevery test\t%s\n", (skipall != "" ? skipall : "the plan is 1..0")
	}
	if (bail != "")
		printf "bad\tBail out! %s\n", bail
}'

# count NAME RC: add what $TMP/out holds to the totals.
count() {
	local name=$1 rc=$2 kind a b nfail=0 exit_note=
	[ "$rc" -ne 0 ] && exit_note=" (exit $rc)"
	while IFS=$'\t' read -r kind a b; do
		case $kind in
		pass) passed=$((passed + 1)) ;;
		fail)
			nfail=$((nfail + 1))
			failures+=("$name: $a")
			;;
		skip)
			if [ "$REQUIRE" = 1 ]; then
				nfail=$((nfail + 1))
				failures+=("$name: $a: skipped (${b:-no reason given}), and VIGIL_REQUIRE_BPF=1 allows no skip")
			else
				skipped=$((skipped + 1))
				skips+=("$name: $a (${b:-no reason given})")
			fi
			;;
		bad)
			nfail=$((nfail + 1))
			failures+=("$name: $a$exit_note")
			;;
		esac
	done < <(awk "$TAP_AWK" "$TMP/out")
	if [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then
		nfail=1
		failures+=("$name: exit $rc without a failing test")
	fi
	failed=$((failed + nfail))
}

# stream NAME CMD...: run CMD as one TAP stream, show its output, count it.
# Its stdout is the TAP; its stderr is shown after it, not parsed (a line
# there cannot add or hide a result).
stream() {
	local name=${1#"$PWD"/} rc t0=$SECONDS
	shift
	echo "== $name"
	"$@" </dev/null >"$TMP/out" 2>"$TMP/err"
	rc=$?
	cat "$TMP/out"
	if [ -s "$TMP/err" ]; then
		echo "-- stderr of $name:"
		cat "$TMP/err"
	fi
	echo "-- $name: $((SECONDS - t0)) s"
	count "$name" "$rc"
}

# Integration scripts that mostly wait (a receiver away for a minute, a
# control plane polled every second), use little CPU, share nothing on the
# host with another test, and assert nothing that another test's load could
# change say so with a line "# run.sh: alongside" among their first 30 (and
# why, in their header).  In a run that includes the integration phase they
# run in a pool of at most VIGIL_ALONGSIDE_JOBS at once, started before the
# harness, unit and fuzz phases: as one ends the next starts, and the pool
# runs on during the serial integration phase, which skips them.  When that
# phase is over, run.sh waits for the pool and shows each of its streams, in
# name order, counted by the same rules as any other.  A run without the
# integration phase (tests/run.sh FILE...) runs a marked script in turn.
#
# Scripts that sample the host as the serial ones do (their own vigild, a
# workload that burns CPU), share no file, user or port with another test,
# judge only their own vigild and workload (the lib.sh helpers look only at
# processes started for the test), and assert nothing that a second such
# test or the other phases beside them could change (names in profiles,
# messages, exit codes, counts of their own events; not a rate, a share of
# CPU, an overhead or a deadline a loaded host could miss) say
# "# run.sh: lane" instead: they run the same way in a second pool of one
# stream at a time (VIGIL_LANE_JOBS, default 1), so that make check takes
# about half the serial phase's time on two CPUs.
ALONG_JOBS=${VIGIL_ALONGSIDE_JOBS:-3}
LANE_JOBS=${VIGIL_LANE_JOBS:-1}
ALONG=() # the marked scripts, in name order
LANE=()
ALONG_PID= # the pools, while they may run
LANE_PID=
marked() { head -30 "$1" | grep -qx "# run.sh: $2"; }
pooled() { marked "$1" alongside || marked "$1" lane; }

# A pool, run by its own bash in a session of its own (setsid), so that
# the EXIT trap can end it, every script and whatever each started, with
# one kill of its process group: POOL TMP NAME JOBS SCRIPT...  Script I's
# stdout, stderr, exit status, start and end (seconds) go to TMP/NAME.I.*.
POOL='
tmp=$1 name=$2 max=$3
shift 3
echo $$ >"$tmp/$name.pgid"
i=0
for t in "$@"; do
	i=$((i + 1))
	while [ "$(jobs -pr | wc -l)" -ge "$max" ]; do wait -n; done
	(
		echo $SECONDS >"$tmp/$name.$i.t0"
		bash "$t" </dev/null >"$tmp/$name.$i.out" 2>"$tmp/$name.$i.err"
		echo $? >"$tmp/$name.$i.rc"
		echo $SECONDS >"$tmp/$name.$i.t1"
	) &
done
wait'

start_alongside() {
	local t
	for t in tests/integration/*.sh; do
		case ${t##*/} in lib*.sh) continue ;; esac
		if marked "$t" alongside; then
			ALONG+=("$t")
		elif marked "$t" lane; then
			LANE+=("$t")
		fi
	done
	if [ ${#ALONG[@]} -gt 0 ]; then
		setsid -w bash -c "$POOL" pool "$TMP" along "$ALONG_JOBS" "${ALONG[@]}" </dev/null &
		ALONG_PID=$!
	fi
	if [ ${#LANE[@]} -gt 0 ]; then
		setsid -w bash -c "$POOL" pool "$TMP" lane "$LANE_JOBS" "${LANE[@]}" </dev/null &
		LANE_PID=$!
	fi
}

# stop_pool NAME PID: for the EXIT trap: SIGTERM to the pool and all in it
# (each script's own cleanup then runs).
stop_pool() {
	local g=
	[ -n "$2" ] || return 0
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		g=$(cat "$TMP/$1.pgid" 2>/dev/null) && break
		sleep 0.1
	done
	[ -n "$g" ] && kill -TERM -- "-$g" 2>/dev/null
	kill -TERM "$2" 2>/dev/null
}
stop_alongside() {
	stop_pool along "$ALONG_PID"
	stop_pool lane "$LANE_PID"
}

# finish_pool NAME PID JOBS WHERE SCRIPT...: wait for the pool; show and
# count each of its streams.
finish_pool() {
	local name=$1 pid=$2 jobs=$3 where=$4 i=0 t rc t0 t1
	shift 4
	[ -n "$pid" ] && wait "$pid"
	for t in "$@"; do
		i=$((i + 1))
		# No exit status: the stream never ended, it cannot pass.
		rc=$(cat "$TMP/$name.$i.rc" 2>/dev/null) || rc=255
		t0=$(cat "$TMP/$name.$i.t0" 2>/dev/null) || t0=0
		t1=$(cat "$TMP/$name.$i.t1" 2>/dev/null) || t1=$t0
		echo "== $t (run beside the others, $where $jobs)"
		cat "$TMP/$name.$i.out" 2>/dev/null
		if [ -s "$TMP/$name.$i.err" ]; then
			echo "-- stderr of $t:"
			cat "$TMP/$name.$i.err"
		fi
		echo "-- $t: $((t1 - t0)) s"
		cp "$TMP/$name.$i.out" "$TMP/out" 2>/dev/null || : >"$TMP/out"
		count "$t" "$rc"
	done
}
finish_alongside() {
	finish_pool along "$ALONG_PID" "$ALONG_JOBS" "in a pool of" "${ALONG[@]}"
	ALONG_PID= ALONG=()
	finish_pool lane "$LANE_PID" "$LANE_JOBS" "in a lane of" "${LANE[@]}"
	LANE_PID= LANE=()
}

# missing NAME WHY: a test that cannot even start.
missing() {
	set -- "${1#"$PWD"/}" "$2"
	echo "== $1"
	echo "$2"
	failed=$((failed + 1))
	failures+=("$1: $2")
}

run_unit() {
	local src bin
	for src in tests/unit/test_*.c; do
		[ -e "$src" ] || continue
		bin=$B/tests/unit/$(basename "$src" .c)
		if [ -x "$bin" ]; then
			stream "$bin" env -u CMOCKA_XML_FILE CMOCKA_MESSAGE_OUTPUT=TAP "$bin"
		else
			missing "$bin" "not built (run make)"
		fi
	done
}

run_fuzz() {
	local src name bin
	for src in tests/fuzz/fuzz_*.c; do
		[ -e "$src" ] || continue
		name=$(basename "$src" .c)
		bin=$B/tests/fuzz/$name
		if [ -x "$bin" ]; then
			stream "$bin" "$bin" "tests/fuzz/corpus/${name#fuzz_}"
		else
			missing "$bin" "not built (run make)"
		fi
	done
}

run_scripts() {
	local t
	for t in "$1"/*.sh; do
		[ -f "$t" ] || continue
		case ${t##*/} in lib*.sh) continue ;; esac # sourced helpers, not tests
		[ "$ALONG_STARTED" = 1 ] && pooled "$t" && continue # the pools': finish_alongside
		stream "$t" bash "$t"
	done
}

run_file() {
	local f=$1
	case $f in
	*.sh) stream "$f" bash "$f" ;;
	*) if [ -x "$f" ]; then
		stream "$f" env -u CMOCKA_XML_FILE CMOCKA_MESSAGE_OUTPUT=TAP "$f"
	else
		missing "$f" "not an executable file"
	fi ;;
	esac
}

[ ${#args[@]} -eq 0 ] && args=(harness unit fuzz integration)
for v in VIGIL_ALONGSIDE_JOBS="$ALONG_JOBS" VIGIL_LANE_JOBS="$LANE_JOBS"; do
	case ${v#*=} in
	'' | *[!0-9]* | 0)
		echo "$0: $v: want a number of streams, 1 or more" >&2
		exit 64
		;;
	esac
done
ALONG_STARTED=0
for w in "${args[@]}"; do
	if [ "$w" = integration ]; then
		trap 'stop_alongside; rm -rf "$TMP"' EXIT
		start_alongside
		ALONG_STARTED=1
		break
	fi
done
for w in "${args[@]}"; do
	case $w in
	unit) run_unit ;;
	fuzz) run_fuzz ;;
	harness) run_scripts tests/harness ;;
	integration)
		run_scripts tests/integration
		finish_alongside
		;;
	/*) run_file "$w" ;;
	esac
done

echo "=="
for s in "${skips[@]}"; do echo "skipped: $s"; done
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
