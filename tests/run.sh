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
# Usage: tests/run.sh [unit|fuzz|harness|integration|FILE]...
#   (default: harness unit fuzz integration; a FILE is a script (*.sh) or a
#   TAP-printing binary, run as one stream)

set -u
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
	local name=${1#"$PWD"/} rc
	shift
	echo "== $name"
	"$@" </dev/null >"$TMP/out" 2>"$TMP/err"
	rc=$?
	cat "$TMP/out"
	if [ -s "$TMP/err" ]; then
		echo "-- stderr of $name:"
		cat "$TMP/err"
	fi
	count "$name" "$rc"
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
for w in "${args[@]}"; do
	case $w in
	unit) run_unit ;;
	fuzz) run_fuzz ;;
	harness) run_scripts tests/harness ;;
	integration) run_scripts tests/integration ;;
	/*) run_file "$w" ;;
	esac
done

echo "=="
for s in "${skips[@]}"; do echo "skipped: $s"; done
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
