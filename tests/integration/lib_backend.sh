#!/bin/bash
# tests/integration/lib_backend.sh - the store a test's vigil-cp runs on:
# SQLite (the default) or, with VIGIL_TEST_BACKEND=pg, a real PostgreSQL 15
# (lib_pg.sh: initdb into $T, pg_ctl on a Unix socket, as a non-root user),
# started once for the whole script, never once per case.  Sourced after
# lib.sh and BEFORE tap_plan, never run.
#
# Every script that starts vigil-cp names its stores as SQLite files and
# passes them through cp_db; tests/integration/pg_NAME.sh runs NAME.sh with
# VIGIL_TEST_BACKEND=pg, so that tests/run.sh counts each backend as its
# own TAP stream.  A PostgreSQL that does not start is a failure (1..1,
# "not ok"), never a silent pass: CI has PostgreSQL (make deps).
#
#   BACKEND        sqlite | pg            BACKEND_NAME   SQLite | PostgreSQL
#   cp_db FILE     the --db argument for the store named FILE: sqlite:FILE,
#                  or the URL of a PostgreSQL database named after FILE
#                  (created on first use: vigil-cp restarted on FILE finds
#                  what it left, two FILEs are two databases).  A URL
#                  (...://...) is passed as it is.
#   backend_sql FILE SQL
#                  run SQL on the store named FILE, as an attacker with the
#                  database's credentials would (sqlite3 with foreign keys
#                  on, as vigil-cp has them; psql as the superuser).  Its
#                  output on stdout; 1 on an error.
#   backend_blob PATH   an SQL expression for PATH's bytes (the server reads
#                  the file: PostgreSQL runs as another user, so PATH must
#                  be readable by it)
#   backend_empty_blob  an SQL expression for a zero-length blob
#   backend_check FILE  the store named FILE passes the backend's own
#                  integrity check (PRAGMA integrity_check; amcheck on
#                  every B-tree index and heap); prints what failed

[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0

BACKEND=${VIGIL_TEST_BACKEND:-sqlite}
case $BACKEND in
sqlite) BACKEND_NAME=SQLite ;;
pg)
	BACKEND_NAME=PostgreSQL
	. "$(dirname "${BASH_SOURCE[0]}")/lib_pg.sh"
	if ! pg_start; then
		echo "1..1"
		echo "not ok 1 - PostgreSQL 15 starts for this script's vigil-cp (VIGIL_TEST_BACKEND=pg)"
		tap_diag "${PG_ERR:-pg_start failed}" "$(tail -5 "$PG_LOG" 2>/dev/null)"
		exit 1
	fi
	mkdir -p "$T/pgdbs"
	;;
*)
	echo "1..1"
	echo "not ok 1 - VIGIL_TEST_BACKEND=$BACKEND: want sqlite or pg"
	exit 1
	;;
esac

# backend_dbname FILE: a database name for FILE, unique within this test
# (its path under $T, folded to [a-z0-9_], at most 63 bytes with a hash).
backend_dbname() {
	local rel=${1#"$T"/} h
	h=$(printf '%s' "$1" | cksum | cut -d' ' -f1)
	rel=$(printf '%s' "$rel" | tr -c 'a-zA-Z0-9' '_' | tr 'A-Z' 'a-z')
	printf 't_%s_%s' "${rel:0:40}" "$h"
}

cp_db() {
	local db=$1 name out
	case $db in *://*)
		echo "$db"
		return
		;;
	esac
	if [ "$BACKEND" = sqlite ]; then
		echo "sqlite:$db"
		return
	fi
	name=$(backend_dbname "$db")
	# A marker file rather than a variable: cp_db often runs in $(...).
	if [ ! -e "$T/pgdbs/$name" ]; then
		if ! out=$(PGHOST=$PG_SOCK "$PG_BIN/createdb" -U "$PG_SUPER" "$name" 2>&1); then
			echo "cp_db: createdb $name: $out" >&2
			return 1
		fi
		: >"$T/pgdbs/$name"
	fi
	echo "postgresql://$PG_SUPER@/$name?host=$PG_SOCK"
}

backend_sql() {
	if [ "$BACKEND" = sqlite ]; then
		sqlite3 -bail "$1" "PRAGMA foreign_keys = ON; $2"
	else
		PGHOST=$PG_SOCK "$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -U "$PG_SUPER" \
			-d "$(backend_dbname "$1")" -c "$2"
	fi
}

backend_blob() {
	if [ "$BACKEND" = sqlite ]; then
		echo "readfile('$1')"
	else
		echo "pg_read_binary_file('$1')"
	fi
}

backend_empty_blob() {
	if [ "$BACKEND" = sqlite ]; then echo "X''"; else echo "'\\x'::bytea"; fi
}

backend_check() {
	local out
	if [ "$BACKEND" = sqlite ]; then
		out=$(sqlite3 "$1" 'PRAGMA integrity_check;' 2>&1)
		[ "$out" = ok ] && return 0
		echo "integrity_check: $out"
		return 1
	fi
	# amcheck (contrib, in Debian's postgresql-15): every B-tree index
	# against its heap, every heap's tuples; it raises an error on the
	# first corruption it finds.
	out=$(backend_sql "$1" "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS amcheck;
		SELECT bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		  JOIN pg_am am ON am.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE am.amname = 'btree' AND n.nspname = 'public';
		SELECT t.relname || ': ' || v.msg FROM pg_class t
		  JOIN pg_namespace n ON n.oid = t.relnamespace,
		       LATERAL verify_heapam(t.oid) v
		 WHERE t.relkind = 'r' AND n.nspname = 'public';" 2>&1 | grep -v '^$')
	[ -z "$out" ] && return 0
	echo "amcheck: $out"
	return 1
}
