#!/bin/bash
# tests/integration/cp_pg_failover.sh - vigil-cp across a PostgreSQL
# failover, as docs/control-plane.md ("High availability") describes it:
# a real primary (lib_pg.sh) and a real streaming standby made from it with
# pg_basebackup -R, synchronous replication (synchronous_standby_names),
# and vigil-cp given both hosts in one --db URL with
# target_session_attrs=read-write.  The primary is killed with SIGKILL:
#   - until the standby is promoted, each store call makes one connection
#     attempt and fails: the agent's message is answered 500 and vigil-cp
#     keeps running (no restart, no crash);
#   - the standby promoted (pg_ctl promote), the next call reconnects to it,
#     and everything acknowledged before the kill is there (the policy
#     upload and assignment committed with synchronous_commit on);
#   - the new primary takes writes: a newer policy is uploaded, assigned
#     and applied by the agent.
# Nothing is mocked; PostgreSQL 15 is started here as a non-root user.
#
# It mostly waits on its own primary and standby (Unix sockets in $T) and
# times nothing: tests/run.sh runs it in its pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_opamp.sh"
. "$(dirname "$0")/lib_pg.sh"

TESTS=(
	"a primary and a streaming standby (pg_basebackup -R), replication synchronous"
	"vigil-cp starts on a --db URL naming both hosts with target_session_attrs=read-write, and connects to the primary"
	"a policy upload and assignment acknowledged by vigil-cp are on the standby already (synchronous commit)"
	"the agent receives the policy and reports APPLIED"
	"the primary killed, the standby not yet promoted: the agent's message is answered 500 (store unreachable), vigil-cp keeps running"
	"the standby promoted: the next message is answered 200 by the same vigil-cp process, reconnected to the new primary"
	"everything acknowledged before the kill is there: the policy, the assignment, the agent APPLIED"
	"the new primary takes writes: serial 2 uploaded and assigned, and the agent applies it"
	"vigil-cp logged the failed calls, the store lost and readable again (its tick), and no crash or sanitizer report"
)
tap_plan ${#TESTS[@]}
N=0
result() {
	local ok=$1
	shift
	tap_result "${TESTS[$N]}" "$ok" "$@"
	N=$((N + 1))
}
fail_rest() {
	while [ "$N" -lt "${#TESTS[@]}" ]; do result 1 "$1"; done
	tap_done
}

for f in "$VIGIL_CP" "$VIGILCTL" "$OPAMP_AGENT"; do
	[ -x "$f" ] || fail_rest "$f is missing: run make"
done
command -v jq >/dev/null || fail_rest "jq is missing: make deps"

P=$T/pki
LOG=$T/cp.log
UID1=0193a5c0000070008000000000000f01
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -1; }
jq_is() { jq -e "$2" >/dev/null 2>&1 <<<"$1"; }
cp_pki "$P" || fail_rest "could not make the PKI"

# ---------------------------------------------------------------------------
# The primary (lib_pg.sh) and the standby, here.

SB_DATA=$T/pg2
SB_SOCK=$T/pgsock2
SB_LOG=$T/pglog/standby.log
SB_STARTED=
sb_stop() {
	[ -n "$SB_STARTED" ] || return 0
	pg_as "$PG_BIN/pg_ctl" -D "$SB_DATA" -m immediate -w -t 60 stop >>"$T/pg_ctl.out" 2>&1
	SB_STARTED=
}
# vigil-cp first (a client left connected slows a fast shutdown), then the
# primary, then the standby.
failover_cleanup() {
	local p
	for p in "${SPAWNED[@]}"; do kill -KILL "$p" 2>/dev/null; done
	pg_stop
	sb_stop
	lib_cleanup
}
trap failover_cleanup EXIT
sb_psql() {
	PGHOST=$SB_SOCK "$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -U "$PG_SUPER" -d "$PG_DB" "$@"
}

standby() {
	pg_start || { SB_ERR="primary: $PG_ERR"; return 1; }
	mkdir -p "$SB_DATA" "$SB_SOCK" || return 1
	[ "$(id -u)" -eq 0 ] && chown "$PG_OS_USER:" "$SB_DATA" "$SB_SOCK"
	chmod 700 "$SB_DATA"
	# -R: standby.signal and primary_conninfo (the primary's socket); -X stream;
	# -c fast: a spread checkpoint would take up to 4.5 minutes.
	pg_as "$PG_BIN/pg_basebackup" -h "$PG_SOCK" -U "$PG_SUPER" -D "$SB_DATA" -R -X stream -c fast \
		>"$T/basebackup.out" 2>&1 || { SB_ERR="pg_basebackup: $(tail -3 "$T/basebackup.out")"; return 1; }
	pg_as "$PG_BIN/pg_ctl" -D "$SB_DATA" -l "$SB_LOG" -w -t 60 \
		-o "-c listen_addresses='' -c unix_socket_directories='$SB_SOCK' -c fsync=on -c max_connections=40" \
		start >>"$T/pg_ctl.out" 2>&1 || { SB_ERR="standby start: $(tail -5 "$SB_LOG")"; return 1; }
	SB_STARTED=1
	wait_for 20 sh -c "[ \"\$(PGHOST='$PG_SOCK' '$PG_BIN/psql' -X -A -t -U '$PG_SUPER' -d '$PG_DB' \
		-c \"SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'\")\" = 1 ]" ||
		{ SB_ERR="the standby does not stream"; return 1; }
	# Synchronous: a COMMIT with synchronous_commit on waits for the standby's flush.
	pg_psql -c "ALTER SYSTEM SET synchronous_standby_names = '*'" -c 'SELECT pg_reload_conf()' >/dev/null &&
		wait_for 10 sh -c "[ \"\$(PGHOST='$PG_SOCK' '$PG_BIN/psql' -X -A -t -U '$PG_SUPER' -d '$PG_DB' \
			-c \"SELECT sync_state FROM pg_stat_replication\")\" = sync ]" ||
		{ SB_ERR="the standby is not synchronous"; return 1; }
	[ "$(sb_psql -c 'SELECT pg_is_in_recovery()')" = t ] || { SB_ERR="the standby is not in recovery"; return 1; }
}
SB_ERR=
if standby; then
	result 0
else
	result 1 "$SB_ERR" "$(tail -5 "$PG_LOG" 2>/dev/null)"
	fail_rest "no primary and standby"
fi

# ---------------------------------------------------------------------------
# vigil-cp on both hosts.

DB_URL="postgresql://$PG_SUPER@/$PG_DB?host=$PG_SOCK,$SB_SOCK&target_session_attrs=read-write&connect_timeout=3"
cp_start "$P" "$DB_URL" "$LOG" --log-level debug
# vigil-cp's connection (the only client backend but psql's own) is on the primary.
on_primary() {
	[ "$(pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
		AND pid <> pg_backend_pid() AND datname = '$PG_DB'")" -ge 1 ]
}
if cp_wait_ready "$P" && on_primary; then
	result 0
else
	result 1 "$(tail -5 "$LOG")"
	fail_rest "vigil-cp did not start"
fi
CP_FIRST_PID=$CP_PID

cp_policy "$T/p1.yaml" 1 web && cp_sign "$P" "$T/p1.yaml"
cp_policy "$T/p2.yaml" 2 batch && cp_sign "$P" "$T/p2.yaml"
H1=$(cp_config_hash "$T/p1.yaml" "$T/p1.yaml.sig")
H2=$(cp_config_hash "$T/p2.yaml" "$T/p2.yaml.sig")
if vctl "$P" policy upload "$T/p1.yaml" "$T/p1.yaml.sig" >"$T/up.out" 2>&1 &&
	vctl "$P" assign 1 --selector env=ha >>"$T/up.out" 2>&1 &&
	[ "$(sb_psql -c 'SELECT count(*) FROM policies WHERE serial = 1')" = 1 ] &&
	[ "$(sb_psql -c 'SELECT selector FROM assignments')" = env=ha ]; then
	result 0
else
	result 1 "$(cat "$T/up.out")" "standby: $(sb_psql -c 'SELECT serial FROM policies' 2>&1)"
fi

mkdir -p "$T/save"
ag() { agent "$P" 1 --uid "$UID1" --attr host.name=h1 --label env=ha --save "$T/save" "$@"; }
ag --poll 100 --count 3 --no-disconnect >"$T/a1.out" 2>&1
if [ "$(grep -m1 '^reply .* remote_config_hash=[0-9a-f]' "$T/a1.out" | kv remote_config_hash)" = "$H1" ] &&
	grep -q '^send .* rcs=APPLIED ' "$T/a1.out"; then
	result 0
else
	result 1 "$(cat "$T/a1.out")"
fi

# ---------------------------------------------------------------------------
# The failover.

before=$(wc -l <"$LOG")
pg_kill
ag --resume --poll 100 --count 2 --no-disconnect --retries 0 >"$T/down.out" 2>&1
codes=$(grep '^reply ' "$T/down.out" | sed -n 's/.* http=\([0-9]*\) .*/\1/p' | tr '\n' ' ')
if [ "$codes" = "500 500 " ] && kill -0 "$CP_PID" 2>/dev/null; then
	result 0
else
	result 1 "HTTP codes: $codes" "$(cat "$T/down.out")" "$(tail -n +"$((before + 1))" "$LOG" | head -10)"
fi

# (long enough for the once-a-second tick to find the store gone too)
sleep 1.5
pg_as "$PG_BIN/pg_ctl" -D "$SB_DATA" -w -t 60 promote >>"$T/pg_ctl.out" 2>&1
promoted=$(sb_psql -c 'SELECT pg_is_in_recovery()' 2>&1)
ag --resume --poll 100 --count 2 --no-disconnect --retries 0 >"$T/up1.out" 2>&1
first=$(grep -m1 '^reply ' "$T/up1.out")
if [ "$promoted" = f ] && [ "$(kv http <<<"$first")" = 200 ] && [ "$CP_PID" = "$CP_FIRST_PID" ] &&
	kill -0 "$CP_PID" 2>/dev/null; then
	result 0
else
	result 1 "in recovery after promote: $promoted" "$(cat "$T/up1.out")" "$(tail -5 "$LOG")"
fi

pl=$(vctl "$P" policy list 2>&1)
as=$(vctl "$P" assignments 2>&1)
j=$(vctl "$P" agent "$UID1" 2>&1)
if jq_is "$pl" '[.policies[].serial] == [1]' && grep -q 'env=ha' <<<"$as" &&
	jq_is "$j" ".remote_config_status == \"APPLIED\" and .remote_config_hash == \"$H1\""; then
	result 0
else
	result 1 "$pl" "$as" "$j"
fi

if vctl "$P" policy upload "$T/p2.yaml" "$T/p2.yaml.sig" >"$T/up2.out" 2>&1 &&
	vctl "$P" assign 2 --selector env=ha >>"$T/up2.out" 2>&1; then
	ag --resume --poll 100 --count 3 --no-disconnect >"$T/a2.out" 2>&1
	j=$(vctl "$P" agent "$UID1" 2>&1)
	if [ "$(grep -m1 '^reply .* remote_config_hash=[0-9a-f]' "$T/a2.out" | kv remote_config_hash)" = "$H2" ] &&
		jq_is "$j" ".remote_config_status == \"APPLIED\" and .remote_config_hash == \"$H2\"" &&
		[ "$(sb_psql -c 'SELECT max(serial) FROM policies')" = 2 ]; then
		result 0
	else
		result 1 "$(cat "$T/a2.out")" "$j"
	fi
else
	result 1 "$(cat "$T/up2.out")"
fi

# The tick reads the store once a second: give it one to see the store back.
wait_for 3 grep -q 'store: readable again' "$LOG"
failed_lines=$(tail -n +"$((before + 1))" "$LOG" | grep -c 'the OpAMP handler failed')
lost=$(tail -n +"$((before + 1))" "$LOG" | grep -c 'store: cannot read the generation: .* (retrying each second)')
back=$(tail -n +"$((before + 1))" "$LOG" | grep -c 'store: readable again')
if [ "$failed_lines" -ge 2 ] && [ "$lost" = 1 ] && [ "$back" = 1 ] &&
	! grep -qE 'Sanitizer|runtime error|Segmentation' "$LOG"; then
	result 0
	tap_diag "while no primary was reachable: $(tail -n +"$((before + 1))" "$LOG" | grep -m1 'the OpAMP handler failed')"
else
	result 1 "$failed_lines 'the OpAMP handler failed' lines, $lost 'cannot read the generation' (want 1)," \
		"$back 'readable again' (want 1)" "$(tail -n +"$((before + 1))" "$LOG" | head -10)"
fi
cp_stop TERM

tap_done
