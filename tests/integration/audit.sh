#!/bin/bash
# audit.sh - the tamper-evident audit log end to end (issue 10), on SQLite
# and on a real PostgreSQL 15 (lib_pg.sh), nothing mocked:
#
#   - vigil-cp with --audit-key serves a signed checkpoint; admin actions
#     (vigilctl upload/assign, a refused one too) and agent events (the
#     OpAMP test agent: first seen, policy applied and failed, health) are
#     records with the admin's subject and certificate fingerprint;
#   - vigilctl audit verify passes and saves the checkpoint; then, directly
#     in the database (sqlite3 / psql), a record is changed, one deleted,
#     two swapped, one inserted: each time verify exits 65 and names the
#     first bad index (the log is restored between cases);
#   - the history cut short and vigil-cp restarted on it with the same key
#     (it signs a smaller tree): verify with the state saved before fails
#     ("the log shrank"), and still fails once the log has grown past the
#     saved size (the consistency proof cannot verify); a wrong public key
#     fails; audit tail and export print the records;
#   - --audit-key unreadable or not Ed25519: exit 78, naming the option;
#   - test_cpaudit's cases run on PostgreSQL; two vigil-cp processes on one
#     PostgreSQL append into one log that verifies through either.
#
# It mostly waits on its own vigil-cp and PostgreSQL; the one time it
# checks is --follow's 1 s poll, given 2.5 s: tests/run.sh runs it in its
# pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_opamp.sh"
. "$(dirname "$0")/lib_pg.sh"

P=$T/pki
PER_BACKEND=(
	"vigil-cp starts with --audit-key and signs a checkpoint of the empty log that verify accepts"
	"admin actions are records: upload 201, assign 201, a refused assign 404, with the admin's subject and fingerprint"
	"agent events are records: first_seen, policy_applied (serial 1), policy_failed (serial 2), health_changed"
	"audit verify passes over every record and saves the checkpoint in --state"
	"a record changed in the database: verify exits 65 naming its index"
	"a record deleted (the rest renumbered): verify exits 65 naming its index"
	"two records swapped: verify exits 65 naming the first"
	"a record inserted: verify exits 65 naming its index"
	"history cut short and re-signed by a restarted vigil-cp: verify with the saved checkpoint exits 65 (the log shrank)"
	"the cut log grown past the saved size: verify exits 65 (the consistency proof fails); a fresh state alone would pass"
	"a wrong public key: verify exits 65"
	"audit tail prints the last records for a person (--follow: new ones too); audit export --since N prints the stored records exactly"
)
TESTS=("PostgreSQL 15 starts (initdb, pg_ctl on a Unix socket, as a non-root user)")
for b in sqlite postgresql; do
	for t in "${PER_BACKEND[@]}"; do TESTS+=("$b: $t"); done
done
TESTS+=(
	"--audit-key that cannot be read, or an EC key: vigil-cp exits 78 naming --audit-key"
	"test_cpaudit: every case passes on SQLite and on PostgreSQL (the pg_ cases ran)"
	"two vigil-cp on one PostgreSQL append into one log: verify through either gives the same size and root"
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
	while [ "$N" -lt "${#TESTS[@]}" ]; do result 1 "(not run) $1"; done
	tap_done
}

for f in "$VIGIL_CP" "$VIGILCTL" "$OPAMP_AGENT" "$B/tests/unit/test_cpaudit"; do
	[ -x "$f" ] || fail_rest "$f is missing: run make"
done
for c in jq sqlite3 openssl; do
	command -v $c >/dev/null || fail_rest "$c is missing: make deps"
done
cp_pki "$P" || fail_rest "could not make the PKI"
cp_quiet openssl genpkey -algorithm ed25519 -out "$P/audit.key" &&
	cp_quiet openssl pkey -in "$P/audit.key" -pubout -out "$P/audit.pub" &&
	cp_quiet openssl genpkey -algorithm ed25519 -out "$P/other.key" &&
	cp_quiet openssl pkey -in "$P/other.key" -pubout -out "$P/other.pub" || fail_rest "could not make the audit keys"
FPR=$(openssl x509 -in "$P/admin.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')

if pg_start; then
	result 0
else
	result 1 "$PG_ERR"
fi

# ---------------------------------------------------------------------------
# Helpers; BACKEND (sqlite|postgresql) and DB say which database.

wait_for() {
	local limit=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.1
	done
}

# sql STATEMENTS: run on the backend's database (both dialects take what we send).
sql() {
	if [ "$BACKEND" = sqlite ]; then
		sqlite3 -cmd ".timeout 5000" "$DB" "$1"
	else
		PGOPTIONS="-c client_min_messages=warning" pg_psql -c "$1"
	fi
}

# sql_replace IDX FROM TO: replace text FROM by TO inside record IDX.
sql_replace() {
	if [ "$BACKEND" = sqlite ]; then
		sql "UPDATE audit SET record = CAST(replace(CAST(record AS TEXT), '$2', '$3') AS BLOB) WHERE idx = $1"
	else
		sql "UPDATE audit SET record = convert_to(replace(convert_from(record, 'UTF8'), '$2', '$3'), 'UTF8') WHERE idx = $1"
	fi
}

save_log() { sql "DROP TABLE IF EXISTS audit_saved; CREATE TABLE audit_saved AS SELECT * FROM audit"; }
restore_log() { sql "DELETE FROM audit; INSERT INTO audit SELECT * FROM audit_saved"; }

# verify [ARGS...]: vigilctl audit verify with the log's key and the backend's state file;
# its exit code in $RC, its stderr in $ERR, its stdout in $OUT.
verify() {
	OUT=$(vctl "$P" audit verify --audit-pubkey "$P/audit.pub" --state "$STATE" "$@" 2>"$T/verify.err")
	RC=$?
	ERR=$(cat "$T/verify.err")
}

# bad_index_is K: verify failed with 65 and named index K first.
bad_index_is() {
	verify
	[ "$RC" = 65 ] && grep -q "first bad index $1:" <<<"$ERR"
}

records() { vctl "$P" audit export 2>>"$T/vctl.err"; }

start_cp() {
	cp_start "$P" "$DB" "$LOG" --audit-key "$P/audit.key" "$@" && cp_wait_ready "$P"
}

# ---------------------------------------------------------------------------
# One backend.

run_backend() {
	BACKEND=$1
	DB=$2
	LOG=$T/cp-$BACKEND.log
	STATE=$T/state-$BACKEND/checkpoint
	local first=$N k n recs h1 h2

	unset CP_PORT
	if ! start_cp; then
		result 1 "$(tail -5 "$LOG")"
		while [ "$N" -lt $((first + ${#PER_BACKEND[@]})) ]; do result 1 "(not run) vigil-cp did not start"; done
		return
	fi
	verify
	[ "$RC" = 0 ] && grep -q "verified: 0 records" <<<"$OUT" && [ -s "$STATE" ]
	result $? "rc=$RC $OUT $ERR"

	# Admin actions.
	cp_policy "$T/p1.yaml" 1 web && cp_sign "$P" "$T/p1.yaml"
	cp_policy "$T/p2.yaml" 2 web && cp_sign "$P" "$T/p2.yaml"
	vctl "$P" policy upload "$T/p1.yaml" "$T/p1.yaml.sig" >/dev/null 2>>"$T/vctl.err" &&
		vctl "$P" policy upload "$T/p2.yaml" "$T/p2.yaml.sig" >/dev/null 2>>"$T/vctl.err" &&
		vctl "$P" assign 1 --selector host.name=h1 >/dev/null 2>>"$T/vctl.err"
	vctl "$P" assign 99 --selector host.name=h1 >/dev/null 2>&1 # refused: 404
	recs=$(records)
	h1=$(openssl dgst -sha256 -r "$T/p1.yaml" | cut -d' ' -f1)
	jq -se --arg fp "$FPR" --arg h1 "sha256:$h1" '
		[.[] | select(.kind == "admin")] as $a |
		($a | length) == 4 and
		($a[0].action == "POST /api/v1/policies" and $a[0].status == 201 and $a[0].args.yaml == $h1) and
		($a[2].action == "POST /api/v1/assignments" and $a[2].status == 201 and $a[2].args.serial == 1) and
		($a[3].status == 404 and $a[3].args.serial == 99) and
		all($a[]; .subject == "CN=admin" and .fingerprint == $fp and (.request_sha256 | length) == 64)' \
		<<<"$recs" >/dev/null && ! grep -q "$(base64 -w0 "$T/p1.yaml" | head -c 40)" <<<"$recs"
	result $? "$recs" "$(cat "$T/vctl.err")"

	# Agent events: agent1 gets serial 1 and applies it; agent2 fails serial 2 and is unhealthy.
	vctl "$P" assign 2 --selector host.name=h2 >/dev/null 2>>"$T/vctl.err"
	agent "$P" 1 --uid 0193a5c0000070008000000000000001 --attr host.name=h1 --poll 100 --count 4 \
		>"$T/a1.out" 2>&1
	agent "$P" 2 --uid 0193a5c0000070008000000000000002 --attr host.name=h2 --poll 100 --count 4 \
		--fail-config --unhealthy "disk full" >"$T/a2.out" 2>&1
	recs=$(records)
	jq -se '
		any(.[]; .kind == "first_seen" and (.subject | contains("CN=agent1")) and .uid == "0193a5c0000070008000000000000001") and
		any(.[]; .kind == "policy_applied" and .serial == 1 and .uid == "0193a5c0000070008000000000000001") and
		any(.[]; .kind == "policy_failed" and .serial == 2 and .uid == "0193a5c0000070008000000000000002") and
		any(.[]; .kind == "health_changed" and .healthy == false and .uid == "0193a5c0000070008000000000000002")' \
		<<<"$recs" >/dev/null
	result $? "$recs" "$(tail -n 3 "$T/a1.out" "$T/a2.out")"

	n=$(wc -l <<<"$recs")
	verify
	[ "$RC" = 0 ] && grep -q "verified: $n records" <<<"$OUT" && grep -q "consistent with the checkpoint of 0" <<<"$OUT" &&
		[ "$(sed -n 2p "$STATE")" = "$n" ]
	result $? "rc=$RC $OUT $ERR" "state: $(cat "$STATE")"

	# Tampering, each on the log as it was (saved here, restored after each).
	save_log
	k=$(jq -s '[.[] | select(.kind == "admin" and .status == 404)][0].i' <<<"$recs")
	sql_replace "$k" '"status":404' '"status":201'
	bad_index_is "$k"
	h1=$?
	restore_log
	verify
	[ "$h1" = 0 ] && [ "$RC" = 0 ]
	result $? "changed record $k: $ERR (after restore: rc=$RC)"

	k=3
	sql "DELETE FROM audit WHERE idx = $k; UPDATE audit SET idx = idx + 100000 WHERE idx > $k;
	     UPDATE audit SET idx = idx - 100001 WHERE idx > 100000"
	bad_index_is $k
	h1=$?
	restore_log
	verify
	[ "$h1" = 0 ] && [ "$RC" = 0 ]
	result $? "deleted record $k: $ERR (after restore: rc=$RC)"

	k=5
	sql "UPDATE audit SET idx = 100000 WHERE idx = $k; UPDATE audit SET idx = $k WHERE idx = $((k + 1));
	     UPDATE audit SET idx = $((k + 1)) WHERE idx = 100000"
	bad_index_is $k
	h1=$?
	restore_log
	verify
	[ "$h1" = 0 ] && [ "$RC" = 0 ]
	result $? "swapped $k and $((k + 1)): $ERR (after restore: rc=$RC)"

	k=2
	sql "UPDATE audit SET idx = idx + 100000 WHERE idx >= $k; UPDATE audit SET idx = idx - 99999 WHERE idx >= 100000;
	     INSERT INTO audit (idx, at, record) SELECT $k, at, record FROM audit WHERE idx = 0"
	bad_index_is $k
	h1=$?
	restore_log
	verify
	[ "$h1" = 0 ] && [ "$RC" = 0 ]
	result $? "inserted at $k: $ERR (after restore: rc=$RC)"

	# Truncated and re-signed: vigil-cp restarted on the cut log with the same key.
	cp_stop
	sql "DELETE FROM audit WHERE idx >= $((n - 3)); DROP TABLE audit_saved"
	if start_cp; then
		verify
		[ "$RC" = 65 ] && grep -q "the log shrank" <<<"$ERR"
		result $? "rc=$RC $OUT $ERR"
		for _ in 1 2 3 4 5; do vctl "$P" assign 1 --selector host.name=h9 >/dev/null 2>>"$T/vctl.err"; done
		verify
		h1=$RC
		h2=$ERR
		verify --state "$T/fresh-$BACKEND"
		[ "$h1" = 65 ] && grep -q "rewritten" <<<"$h2" && [ "$RC" = 0 ]
		result $? "rc=$h1 $h2 (fresh state: rc=$RC $ERR)"
	else
		result 1 "vigil-cp did not restart: $(tail -5 "$LOG")"
		result 1 "(not run)"
	fi

	OUT=$(vctl "$P" audit verify --audit-pubkey "$P/other.pub" --state "$T/other-$BACKEND" 2>"$T/verify.err")
	RC=$?
	[ "$RC" = 65 ] && grep -q "no signature by key" "$T/verify.err"
	result $? "rc=$RC $(cat "$T/verify.err")"

	recs=$(records)
	n=$(wc -l <<<"$recs")
	OUT=$("$VIGILCTL" --server "$CP_URL" --cert "$P/admin.pem" --key "$P/admin.key" --ca "$P/server-ca.pem" \
		audit tail 2>&1)
	h1=$(vctl "$P" audit export --since 2)
	if [ "$BACKEND" = sqlite ]; then
		h2=$(sqlite3 "$DB" "SELECT CAST(record AS TEXT) FROM audit WHERE idx >= 2 ORDER BY idx")
	else
		h2=$(pg_psql -c "SELECT convert_from(record, 'UTF8') FROM audit WHERE idx >= 2 ORDER BY idx")
	fi
	# --follow prints a record appended while it runs.
	timeout 4 "$VIGILCTL" --server "$CP_URL" --cert "$P/admin.pem" --key "$P/admin.key" --ca "$P/server-ca.pem" \
		audit tail --follow --since "$n" >"$T/follow.out" 2>&1 &
	k=$!
	sleep 1.5
	vctl "$P" assign 1 --selector host.name=followed >/dev/null 2>>"$T/vctl.err"
	wait $k
	[ "$(wc -l <<<"$OUT")" = 10 ] && grep -q "^#$((n - 1)) .* admin .*action=POST /api/v1/assignments" <<<"$OUT" &&
		[ "$h1" = "$h2" ] && [ "$(wc -l <<<"$h1")" = $((n - 2)) ] &&
		grep -q "^#$n .* admin .*selector.*followed" "$T/follow.out"
	result $? "$OUT" "export: $(head -c 300 <<<"$h1")" "follow: $(cat "$T/follow.out")"
	cp_stop
}

run_backend sqlite "$T/cp.db"
if [ -n "$PG_URL" ]; then
	pg_empty >/dev/null 2>&1
	run_backend postgresql "$PG_URL"
else
	for t in "${PER_BACKEND[@]}"; do result 1 "(not run) no PostgreSQL: $PG_ERR"; done
fi

# ---------------------------------------------------------------------------
# Once.

LOG=$T/cp-badkey.log
unset CP_PORT
cp_quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$P/ec.key"
cp_start "$P" "$T/bad.db" "$LOG" --audit-key "$T/nonexistent.pem"
wait "$CP_PID"
r1=$?
cp_start "$P" "$T/bad.db" "$LOG" --audit-key "$P/ec.key"
wait "$CP_PID"
r2=$?
[ "$r1" = 78 ] && [ "$r2" = 78 ] && grep -q -- "--audit-key $T/nonexistent.pem" "$LOG" &&
	grep -q -- "--audit-key $P/ec.key: not an Ed25519 key" "$LOG"
result $? "exit $r1 and $r2" "$(cat "$LOG")"

if [ -n "$PG_URL" ]; then
	VIGIL_TEST_PG_URL=$PG_URL CMOCKA_MESSAGE_OUTPUT=TAP "$B/tests/unit/test_cpaudit" >"$T/unit.tap" 2>&1
	rc=$?
	npg=$(grep -cE '^ok [0-9]+ - pg_' "$T/unit.tap")
	[ "$rc" = 0 ] && [ "$npg" = 8 ] && ! grep -q '^not ok' "$T/unit.tap"
	result $? "exit $rc, $npg pg_ cases passed (8 expected)" "$(grep -E '^not ok|^#' "$T/unit.tap" | head -20)"

	# Two servers on one database, admin actions alternating between them.
	pg_empty >/dev/null 2>&1
	BACKEND=postgresql
	DB=$PG_URL
	unset CP_PORT
	LOG=$T/cp-two-a.log
	start_cp
	A_PID=$CP_PID A_URL=$CP_URL
	unset CP_PORT
	LOG=$T/cp-two-b.log
	start_cp
	B_PID=$CP_PID B_URL=$CP_URL
	for i in 1 2 3 4 5 6; do
		CP_URL=$([ $((i % 2)) = 0 ] && echo "$A_URL" || echo "$B_URL")
		vctl "$P" assign 1 --selector host.name=two$i >/dev/null 2>&1 # 404s: no policy here, still records
	done
	CP_URL=$A_URL
	OA=$(vctl "$P" audit verify --audit-pubkey "$P/audit.pub" --state "$T/two-a" 2>&1)
	RA=$?
	CP_URL=$B_URL
	OB=$(vctl "$P" audit verify --audit-pubkey "$P/audit.pub" --state "$T/two-b" 2>&1)
	RB=$?
	[ "$RA" = 0 ] && [ "$RB" = 0 ] && grep -q "verified: 6 records" <<<"$OA" &&
		[ "$(sed 's/;.*//' <<<"$OA")" = "$(sed 's/;.*//' <<<"$OB")" ]
	result $? "A: rc=$RA $OA" "B: rc=$RB $OB" "$(tail -n 3 "$T/cp-two-a.log" "$T/cp-two-b.log")"
	kill "$A_PID" "$B_PID" 2>/dev/null
else
	result 1 "(not run) no PostgreSQL: $PG_ERR"
	result 1 "(not run) no PostgreSQL: $PG_ERR"
fi

tap_done
