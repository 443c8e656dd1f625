#!/bin/bash
# tests/run.sh - run every test and print one closing line "N passed, N failed".
#
# Unit tests are cmocka binaries under build/tests/unit; each test case
# counts.  Integration tests are scripts under tests/integration that print
# TAP lines ("ok - name", "not ok - name", "ok - name # SKIP why"); each line
# counts.  A script that exits non-zero without reporting a failure counts as
# one failure, so a crash cannot pass silently.
#
# Usage: tests/run.sh [unit|integration]...   (default: both)

set -u
cd "$(dirname "$0")/.."
B=build
passed=0 failed=0 skipped=0
failures=()

run_unit() {
	local bin out rc p f
	for bin in "$B"/tests/unit/test_*; do
		[ -x "$bin" ] || continue
		out=$("$bin" 2>&1); rc=$?
		printf '%s\n' "$out"
		p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
		f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
		passed=$((passed + p)); failed=$((failed + f))
		[ "$f" -gt 0 ] && failures+=("$bin")
		if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
			failed=$((failed + 1)); failures+=("$bin (exit $rc)")
		fi
	done
}

run_integration() {
	local t out rc p f s tmp
	tmp=$(mktemp /tmp/vigil-run.XXXXXX)
	trap 'rm -f "$tmp"' RETURN
	for t in tests/integration/*.sh; do
		[ -f "$t" ] || continue
		case ${t##*/} in lib*.sh) continue ;; esac # helpers, not tests
		echo "== $t"
		# Through a file, not tee /dev/stderr: reopening a redirected
		# stderr would truncate the caller's log.
		bash "$t" >"$tmp" 2>&1; rc=$?
		cat "$tmp"
		out=$(cat "$tmp")
		p=$(printf '%s\n' "$out" | grep -Ec '^ok( |$)' )
		s=$(printf '%s\n' "$out" | grep -Ec '^ok .*# SKIP')
		f=$(printf '%s\n' "$out" | grep -Ec '^not ok( |$)')
		p=$((p - s))
		passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
		[ "$f" -gt 0 ] && failures+=("$t")
		if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
			failed=$((failed + 1)); failures+=("$t (exit $rc)")
		fi
	done
}

what=("$@"); [ ${#what[@]} -eq 0 ] && what=(unit integration)
for w in "${what[@]}"; do
	case $w in
	unit) run_unit ;;
	integration) run_integration ;;
	*) echo "usage: $0 [unit|integration]..." >&2; exit 64 ;;
	esac
done

[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
