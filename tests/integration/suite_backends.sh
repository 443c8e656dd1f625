#!/bin/bash
# tests/integration/suite_backends.sh - every integration script that starts
# vigil-cp runs on both store backends, or says why it does not (issue 10:
# "the whole control-plane suite runs against both backends").  A static
# check of the scripts next to it, so that a new script cannot quietly run
# on SQLite only:
#   - a script that starts vigil-cp (--db, cp_start[_named], or the README's
#     quick start) either sources lib_backend.sh and has a pg_NAME.sh
#     wrapper that runs it with VIGIL_TEST_BACKEND=pg (and names no
#     --db sqlite:$FILE of its own: cp_db does), or runs PostgreSQL
#     itself (sources lib_pg.sh), or has a comment line starting
#     "# SQLite only" that says why;
#   - each pg_NAME.sh wrapper runs an existing NAME.sh that sources
#     lib_backend.sh (otherwise it would run SQLite twice).
# One result per script concerned.

. "$(dirname "$0")/lib.sh"

DIR=$(cd "$(dirname "$0")" && pwd)
cd "$DIR" || exit 1
concerned=()
for f in *.sh; do
	case $f in lib*.sh | suite_backends.sh) continue ;; esac
	case $f in pg_*.sh)
		concerned+=("$f")
		continue
		;;
	esac
	# Code lines (not comments) that start vigil-cp.
	if grep -vE '^[[:space:]]*#' "$f" | grep -qE -- '--db[ =]|(^|[[:space:]])cp_start(_named)?[[:space:]]|fleet-quickstart'; then
		concerned+=("$f")
	fi
done
tap_plan ${#concerned[@]}

sources() { grep -qE "^[[:space:]]*\\. \"\\\$\\(dirname \"\\\$0\"\\)/$2\"" "$1"; }
for f in "${concerned[@]}"; do
	case $f in
	pg_*.sh)
		target=${f#pg_}
		if [ -f "$target" ] && sources "$target" lib_backend.sh &&
			grep -qE "^VIGIL_TEST_BACKEND=pg exec bash \"\\\$\\(dirname \"\\\$0\"\\)/$target\"\$" "$f"; then
			tap_ok "$f runs $target with VIGIL_TEST_BACKEND=pg, and $target honours it (lib_backend.sh)"
		else
			tap_not_ok "$f runs $target with VIGIL_TEST_BACKEND=pg, and $target honours it (lib_backend.sh)" \
				"want a line: VIGIL_TEST_BACKEND=pg exec bash \"\$(dirname \"\$0\")/$target\", and $target sourcing lib_backend.sh"
		fi
		;;
	*)
		hard=$(grep -vE '^[[:space:]]*#' "$f" | grep -nE -- '--db "?sqlite:\$' | head -3)
		if sources "$f" lib_backend.sh && [ -n "$hard" ]; then
			tap_not_ok "$f starts vigil-cp: it runs on SQLite, and pg_$f runs it on PostgreSQL" \
				"a store named as sqlite: runs on SQLite under pg_$f too; use cp_db FILE:" "$hard"
		elif sources "$f" lib_backend.sh && [ -f "pg_$f" ]; then
			tap_ok "$f starts vigil-cp: it runs on SQLite, and pg_$f runs it on PostgreSQL"
		elif sources "$f" lib_backend.sh; then
			tap_not_ok "$f starts vigil-cp: it runs on SQLite, and pg_$f runs it on PostgreSQL" \
				"pg_$f is missing: copy another pg_*.sh wrapper"
		elif sources "$f" lib_pg.sh; then
			tap_ok "$f starts vigil-cp on a PostgreSQL it starts itself"
		elif grep -q '^# SQLite only' "$f"; then
			tap_ok "$f starts vigil-cp on SQLite only, and says why"
		else
			tap_not_ok "$f starts vigil-cp on one backend only" \
				"source lib_backend.sh, name stores with cp_db and add pg_$f; or say why not in a '# SQLite only' comment"
		fi
		;;
	esac
done
tap_done
