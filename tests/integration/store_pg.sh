#!/bin/bash
# tests/integration/store_pg.sh - vigil-cp's PostgreSQL store (issue 10)
# on a real PostgreSQL 15 started here (lib_pg.sh: initdb into $T, pg_ctl on
# a Unix socket, as a non-root user, fsync on).  Nothing is mocked.
#
#   - build/tests/unit/test_store, test_opampsrv, test_api and test_rollout run their
#     cases on both backends (VIGIL_TEST_PG_URL set): one result per binary,
#     the failing case names in the diagnostics, and it fails when the pg_
#     cases did not all run;
#   - the SQLite store_kill scenario, turned for a server: store_stress
#     writes while the PostgreSQL server is killed with SIGKILL; after a
#     restart the store's invariants hold and no acknowledged serial is lost;
#   - vigil-cp end to end with --db postgresql://...: vigilctl uploads and
#     assigns a signed policy, the OpAMP test agent receives it and reports
#     APPLIED, the URL's password appears in no log line; vigil-cp restarted
#     has kept everything; vigil-cp keeps serving across a restart of the
#     PostgreSQL server (it reconnects).
# This script does not skip: without PostgreSQL (make deps installs
# postgresql-15) every result fails, so CI cannot pass without running it.
#
# It mostly waits on a PostgreSQL of its own (a Unix socket in $T) and
# times nothing: tests/run.sh runs it in its pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_opamp.sh"
. "$(dirname "$0")/lib_pg.sh"

ROUNDS=4
TESTS=(
	"PostgreSQL 15 starts: initdb and pg_ctl as a non-root user, on a Unix socket only, fsync on"
	"test_store: every case passes on SQLite and on PostgreSQL (the pg_ cases ran)"
	"test_opampsrv: every case passes on SQLite and on PostgreSQL (the pg_ cases ran)"
	"test_api: every case passes on SQLite and on PostgreSQL (the pg_ cases ran)"
	"test_rollout: every case passes on SQLite and on PostgreSQL (the pg_ cases ran)"
)
for i in $(seq 1 $ROUNDS); do
	TESTS+=("PostgreSQL killed with SIGKILL mid-writes, round $i: restarted, invariants hold, no acknowledged serial lost")
done
TESTS+=(
	"vigil-cp starts on --db postgresql://... and logs the store without its password"
	"vigilctl uploads a signed policy and assigns it, on PostgreSQL"
	"the OpAMP test agent receives the policy, reports APPLIED, and vigil-cp records it"
	"vigil-cp restarted on the same database has kept the policy, the assignment and the agent"
	"vigil-cp keeps serving after the PostgreSQL server restarts under it (reconnects)"
)
tap_plan ${#TESTS[@]}
N=0

# result OK DIAGNOSTIC...: the next test's result.
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

STRESS=$B/tests/tools/store_stress
for f in "$B/tests/unit/test_store" "$B/tests/unit/test_opampsrv" "$B/tests/unit/test_api" "$B/tests/unit/test_rollout" "$STRESS" "$VIGIL_CP" "$VIGILCTL" "$OPAMP_AGENT"; do
	[ -x "$f" ] || fail_rest "$f is missing: run make"
done
command -v jq >/dev/null || fail_rest "jq is missing: make deps"

if pg_start && [ "$(pg_psql -c 'SHOW fsync')" = on ] && [ "$(pg_psql -c "SHOW listen_addresses")" = "" ] &&
	[ "$(pg_psql -c 'SELECT current_setting($$server_version_num$$)::int / 10000')" = 15 ]; then
	result 0
else
	result 1 "${PG_ERR:-the settings of the server are not the ones asked for}" "$(tail -5 "$PG_LOG" 2>/dev/null)"
	fail_rest "PostgreSQL did not start"
fi

# ---------------------------------------------------------------------------
# The unit cases on both backends.

# unit NAME PG_CASES: one result for build/tests/unit/NAME run with
# VIGIL_TEST_PG_URL: every pg_ case it runs must pass (none skipped), and
# there must be at least PG_CASES of them (cases added later count too).
unit() {
	local name=$1 want=$2 rc npg nall bad
	VIGIL_TEST_PG_URL=$PG_URL CMOCKA_MESSAGE_OUTPUT=TAP "$B/tests/unit/$name" >"$T/$name.tap" 2>&1
	rc=$?
	npg=$(grep -E '^ok [0-9]+ - pg_' "$T/$name.tap" | grep -vc '# SKIP')
	nall=$(grep -cE '^(not )?ok [0-9]+ - pg_' "$T/$name.tap")
	bad=$(grep -E '^not ok |# SKIP' "$T/$name.tap")
	if [ "$rc" = 0 ] && [ -z "$bad" ] && [ "$npg" = "$nall" ] && [ "$npg" -ge "$want" ]; then
		result 0
	else
		result 1 "exit $rc, $npg of $nall pg_ cases passed (at least $want expected)" "$bad" \
			"$(grep -E '^#' "$T/$name.tap" | head -20)"
	fi
}
unit test_store 15
unit test_opampsrv 11
unit test_api 13
unit test_rollout 15

# ---------------------------------------------------------------------------
# SIGKILL of the server while store_stress writes.

pg_empty 2>/dev/null
cat >"$T/invariants.sql" <<'EOF'
SELECT 'orphan assignment ' || a.id FROM assignments a LEFT JOIN policies p ON p.serial = a.serial
 WHERE p.serial IS NULL;
SELECT 'policy ' || serial || ' holds another serial''s YAML' FROM policies
 WHERE convert_from(yaml, 'UTF8') NOT LIKE 'serial: ' || serial || E'\n%';
SELECT 'agent row not whole: ' || encode(uid, 'hex') FROM agents
 WHERE (description::json -> 'non_identifying' ->> 'seq') <> last_sequence_num::text
    OR first_seen > last_seen OR length(uid) <> 16;
EOF
prev_max=0
for i in $(seq 1 $ROUNDS); do
	problems=
	"$STRESS" write "$PG_URL" >"$T/out.$i" 2>"$T/err.$i" &
	pid=$!
	SPAWNED+=("$pid")
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", 0.3 + (r % 1200) / 1000 }')"
	kill -0 "$pid" 2>/dev/null || problems+="store_stress exited before the kill: $(head -3 "$T/err.$i"); "
	pg_kill
	# store_stress fails on its broken connection (it does not retry).
	wait "$pid" 2>/dev/null
	acked=$(awk '/^serial /{ s = $2 } END { print s + 0 }' "$T/out.$i")
	[ "$acked" -gt 0 ] || problems+="nothing was acknowledged before the kill; "
	pg_restart || problems+="PostgreSQL did not restart: $(tail -3 "$PG_LOG"); "
	bad=$(pg_psql -f "$T/invariants.sql" 2>&1)
	[ -z "$bad" ] || problems+="$(echo "$bad" | head -5 | tr '\n' ';') "
	if check=$("$STRESS" check "$PG_URL" 2>&1); then
		max=$(awk '/^max_serial /{ print $2 }' <<<"$check")
	else
		problems+="store_stress check: $(echo "$check" | head -5 | tr '\n' ';') "
		max=0
	fi
	[ "${max:-0}" -ge "$acked" ] || problems+="serial $acked was acknowledged but the store's highest is $max; "
	[ "${max:-0}" -ge "$prev_max" ] || problems+="the highest serial went back from $prev_max to $max; "
	result "$([ -z "$problems" ] && echo 0 || echo 1)" "$problems" \
		"round $i: acknowledged $acked, stored $max; $(echo "$check" | tr '\n' ' ')"
	[ -n "$problems" ] || tap_diag "round $i: serial $acked acknowledged before the kill, $max stored after the restart"
	prev_max=${max:-0}
done

# ---------------------------------------------------------------------------
# vigil-cp end to end.

P=$T/pki
LOG=$T/cp.log
UID1=0193a5c0000070008000000000000001
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -1; }
jq_is() { jq -e "$2" >/dev/null 2>&1 <<<"$1"; }

cp_pki "$P" || fail_rest "could not make the PKI"
pg_empty 2>/dev/null
# Trust authentication ignores the password; vigil-cp must not show it.
CP_DB="$PG_URL&password=pw-s3cret-x"
cp_start "$P" "$CP_DB" "$LOG" --log-level debug
if cp_wait_ready "$P" && grep -q "store postgresql://" "$LOG" && ! grep -q "s3cret" "$LOG" &&
	[ "$(pg_psql -c 'SELECT version FROM vigil_schema')" -ge 2 ]; then
	result 0
else
	result 1 "$(tail -5 "$LOG")"
	fail_rest "vigil-cp did not start on PostgreSQL"
fi

cp_policy "$T/p1.yaml" 1 web && cp_sign "$P" "$T/p1.yaml"
H1=$(cp_config_hash "$T/p1.yaml" "$T/p1.yaml.sig")
if vctl "$P" policy upload "$T/p1.yaml" "$T/p1.yaml.sig" >"$T/up.out" 2>&1 &&
	vctl "$P" assign 1 --selector vigil.tenant-set=blue >>"$T/up.out" 2>&1 &&
	[ "$(pg_psql -c 'SELECT count(*) FROM policies WHERE serial = 1')" = 1 ] &&
	[ "$(pg_psql -c "SELECT selector FROM assignments")" = vigil.tenant-set=blue ]; then
	result 0
else
	result 1 "$(cat "$T/up.out")"
fi

agent "$P" 1 --uid "$UID1" --attr host.name=h1 --label env=it --label vigil.tenant-set=blue --poll 100 \
	--count 4 --no-disconnect >"$T/rc.out" 2>&1
rc1=$(grep -m1 '^reply .* remote_config_hash=[0-9a-f]' "$T/rc.out")
j=$(vctl "$P" agent "$UID1" 2>&1)
if [ "$(kv remote_config_hash <<<"$rc1")" = "$H1" ] && grep -q '^send .* rcs=APPLIED ' "$T/rc.out" &&
	jq_is "$j" ".remote_config_status == \"APPLIED\" and .remote_config_hash == \"$H1\" and .assigned_serial == 1"; then
	result 0
else
	result 1 "expected $H1" "$(cat "$T/rc.out")" "$j"
fi

cp_stop
before=$(pg_psql -c 'SELECT count(*) FROM agents' -c 'SELECT count(*) FROM policies' | tr '\n' ' ')
cp_start "$P" "$CP_DB" "$LOG"
j=$(cp_wait_ready "$P" && vctl "$P" agent "$UID1" 2>&1)
pl=$(vctl "$P" policy list 2>&1)
as=$(vctl "$P" assignments 2>&1)
if jq_is "$j" ".remote_config_status == \"APPLIED\" and .remote_config_hash == \"$H1\" and .assigned_serial == 1" &&
	jq_is "$pl" "[.policies[].serial] == [1] and .policies[0].sha256 == \"$(sha256sum <"$T/p1.yaml" | cut -d' ' -f1)\"" &&
	grep -q 'vigil.tenant-set=blue' <<<"$as" && [ "$before" = "1 1 " ]; then
	result 0
else
	result 1 "rows before the restart: $before" "$j" "$pl" "$as" "$(tail -5 "$LOG")"
fi

# The server restarts (fast shutdown: vigil-cp's connection is closed under it).
pg_stop
pg_restart
# The same agent comes back with its full state, reporting the policy it applied.
agent "$P" 1 --uid "$UID1" --attr host.name=h1 --label env=it --label vigil.tenant-set=blue \
	--report-hash "$H1" --poll 100 --count 2 --no-disconnect --retries 3 >"$T/after.out" 2>&1
j=$(vctl "$P" agent "$UID1" 2>&1)
if grep -q '^reply n=1 .* http=200 ' "$T/after.out" && kill -0 "$CP_PID" 2>/dev/null &&
	! grep -q 'remote_config_hash=[0-9a-f]' "$T/after.out" &&
	jq_is "$j" ".remote_config_status == \"APPLIED\" and .assigned_serial == 1 and .sequence_num == 1" &&
	! grep -q "s3cret" "$LOG"; then
	result 0
else
	result 1 "$(cat "$T/after.out")" "$j" "$(tail -5 "$LOG")" "$(grep -c s3cret "$LOG") log lines show the password"
fi
cp_stop

tap_done
