#!/bin/bash
# tests/integration/lib_pg.sh - a real PostgreSQL 15 for a test (issue 10:
# nothing is mocked).  Sourced after lib.sh, never run.
#
#   pg_start    initdb into $T/pg and start postgres listening only on a
#               Unix socket in $T/pgsock (listen_addresses '', fsync on),
#               as a non-root user (postgres refuses root: the vigil
#               system user when the test runs as root, else the caller);
#               creates the database "vigil" and sets PG_URL to a libpq
#               URL for it.  Stopped at exit.  0 or 1 with the reason in
#               $PG_ERR.
#   pg_stop     stop it (fast), pg_kill (SIGKILL, as a crash), pg_restart
#   pg_psql     psql on the test database (-X -A -t -q, stops on error)
#   pg_empty    drop every table of the test database

[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DATA=$T/pg
PG_SOCK=$T/pgsock
PG_LOG=$T/pglog/postgres.log
PG_URL=
PG_ERR=
PG_DB=vigil
PG_SUPER=vigil_test

# pg_as CMD...: CMD as the user postgres runs as.
pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$PG_OS_USER" -- "$@"
	else
		"$@"
	fi
}

pg_ctl_start() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
		-o "-c listen_addresses='' -c unix_socket_directories='$PG_SOCK' -c fsync=on -c max_connections=40" \
		start >>"$T/pg_ctl.out" 2>&1
}

pg_start() {
	if [ ! -x "$PG_BIN/initdb" ]; then
		PG_ERR="$PG_BIN/initdb is missing: make deps (postgresql-15)"
		return 1
	fi
	if [ "$(id -u)" -eq 0 ]; then
		vigil_user_ids >/dev/null
		PG_OS_USER=vigil
	else
		PG_OS_USER=$(id -un)
	fi
	mkdir -p "$PG_DATA" "$PG_SOCK" "${PG_LOG%/*}" || return 1
	[ "$(id -u)" -eq 0 ] && chown "$PG_OS_USER:" "$PG_DATA" "$PG_SOCK" "${PG_LOG%/*}"
	chmod 700 "$PG_DATA"
	if ! pg_as "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_SUPER" --auth=trust -E UTF8 --no-locale \
		>"$T/initdb.out" 2>&1; then
		PG_ERR="initdb: $(tail -3 "$T/initdb.out" | tr '\n' ' ')"
		return 1
	fi
	if ! pg_ctl_start; then
		PG_ERR="pg_ctl start: $(tail -5 "$PG_LOG" "$T/pg_ctl.out" 2>/dev/null | tr '\n' ' ')"
		return 1
	fi
	PG_STARTED=1
	if ! PGHOST=$PG_SOCK "$PG_BIN/createdb" -U "$PG_SUPER" "$PG_DB" >"$T/createdb.out" 2>&1; then
		PG_ERR="createdb: $(cat "$T/createdb.out")"
		return 1
	fi
	PG_URL="postgresql://$PG_SUPER@/$PG_DB?host=$PG_SOCK"
	return 0
}

pg_stop() {
	[ -n "${PG_STARTED:-}" ] || return 0
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >>"$T/pg_ctl.out" 2>&1
	PG_STARTED=
}

# pg_kill: SIGKILL the postmaster and every backend, as a crash would.
pg_kill() {
	local pid
	pid=$(head -1 "$PG_DATA/postmaster.pid" 2>/dev/null) || return 1
	pkill -KILL -P "$pid" 2>/dev/null
	kill -KILL "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	PG_STARTED=
}

pg_restart() {
	pg_ctl_start && PG_STARTED=1
}

pg_psql() {
	PGHOST=$PG_SOCK "$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -U "$PG_SUPER" -d "$PG_DB" "$@"
}

# pg_empty: drop every table of the test database (migrations added later included).
pg_empty() {
	pg_psql -c "DO \$\$ DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables
		WHERE schemaname = current_schema() LOOP EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', t);
		END LOOP; END \$\$"
}

trap 'pg_stop; lib_cleanup' EXIT
