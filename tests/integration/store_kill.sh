#!/bin/bash
# tests/integration/store_kill.sh - kill -9 at any moment leaves vigil-cp's
# SQLite store consistent (issue 9), and nothing a store call acknowledged
# is lost.
#
# tests/tools/store_stress writes agents, policies and assignments in a
# loop, printing "serial N" once store_policy_add(N) has returned.  Each
# round lets it run for a random fraction of a second on the same database
# and SIGKILLs it; then:
#   - sqlite3's PRAGMA integrity_check says "ok";
#   - SQL invariants hold: every assignment names a stored policy, serials
#     and assignment ids increase with time, each YAML is its own serial's;
#   - the store reopens and store_stress check agrees (rows whole);
#   - the highest serial stored is at least the last one acknowledged, and
#     never lower than after the round before.
#
# SQLite only, with no pg_ wrapper: it is about SQLite itself (its journal
# and WAL surviving a writer killed mid-transaction, PRAGMA integrity_check,
# user_version).  A PostgreSQL server keeps its data whatever happens to a
# client; the PostgreSQL counterpart, the SERVER killed with SIGKILL
# mid-writes, is in store_pg.sh.

. "$(dirname "$0")/lib.sh"

ROUNDS=6
TESTS=()
for i in $(seq 1 $ROUNDS); do
	TESTS+=("kill -9 round $i: integrity_check ok, invariants hold, nothing acknowledged lost")
done
TESTS+=("after $ROUNDS kills the store reopens at its schema and takes writes again")
tap_plan ${#TESTS[@]}

STRESS=$B/tests/tools/store_stress
require_file "$STRESS" "${TESTS[@]}"
if ! command -v sqlite3 >/dev/null; then
	for name in "${TESTS[@]}"; do tap_not_ok "$name" "sqlite3 is missing: make deps"; done
	tap_done
fi

DB=$T/cp.db
prev_max=0

# invariants: one line per broken rule (nothing when all hold).
invariants() {
	sqlite3 "$DB" <<-'EOF'
		SELECT 'orphan assignment ' || a.id FROM assignments a LEFT JOIN policies p ON p.serial = a.serial
		 WHERE p.serial IS NULL;
		SELECT 'serials out of upload order at ' || serial FROM
		 (SELECT serial, uploaded_at, lag(uploaded_at) OVER (ORDER BY serial) AS prev FROM policies)
		 WHERE prev > uploaded_at;
		SELECT 'assignment ids out of time order at ' || id FROM
		 (SELECT id, assigned_at, lag(assigned_at) OVER (ORDER BY id) AS prev FROM assignments)
		 WHERE prev > assigned_at;
		SELECT 'policy ' || serial || ' holds another serial''s YAML' FROM policies
		 WHERE substr(CAST(yaml AS TEXT), 1, length('serial: ' || serial) + 1) <> 'serial: ' || serial || char(10);
		SELECT 'agent row not whole: ' || hex(uid) FROM agents
		 WHERE json_extract(description, '$.non_identifying.seq') <> CAST(last_sequence_num AS TEXT)
		    OR first_seen > last_seen OR length(uid) <> 16;
	EOF
}

for i in $(seq 1 $ROUNDS); do
	problems=
	"$STRESS" write "$DB" >"$T/out.$i" 2>"$T/err.$i" &
	pid=$!
	# A random moment: 0.05 to 1.5 s into the run (the first round also
	# catches the schema's creation when it is short).
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", 0.05 + (r % 1450) / 1000 }')"
	if ! kill -0 "$pid" 2>/dev/null; then
		problems+="store_stress exited before the kill: $(cat "$T/err.$i"); "
	fi
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	acked=$(awk '/^serial /{ s = $2 } END { print s + 0 }' "$T/out.$i")

	ic=$(sqlite3 "$DB" 'PRAGMA integrity_check' 2>&1)
	[ "$ic" = ok ] || problems+="integrity_check: $ic; "
	bad=$(invariants 2>&1)
	[ -z "$bad" ] || problems+="$(echo "$bad" | head -5 | tr '\n' ';') "
	if check=$("$STRESS" check "$DB" 2>&1); then
		max=$(awk '/^max_serial /{ print $2 }' <<<"$check")
	else
		problems+="store_stress check: $(echo "$check" | head -5 | tr '\n' ';') "
		max=0
	fi
	[ "${max:-0}" -ge "$acked" ] || problems+="serial $acked was acknowledged but the store's highest is $max; "
	[ "${max:-0}" -ge "$prev_max" ] || problems+="the highest serial went back from $prev_max to $max; "
	tap_result "${TESTS[$((i - 1))]}" "$([ -z "$problems" ] && echo 0 || echo 1)" \
		"$problems" "round $i: acknowledged $acked, stored $max; $(echo "$check" | tr '\n' ' ')"
	prev_max=${max:-0}
done

problems=
v=$(sqlite3 "$DB" 'PRAGMA user_version')
latest=$("$STRESS" latest)
[ -n "$latest" ] && [ "$v" = "$latest" ] || problems+="user_version $v, expected ${latest:-?}; "
mode=$(sqlite3 "$DB" 'PRAGMA journal_mode')
[ "$mode" = wal ] || problems+="journal_mode $mode, expected wal; "
"$STRESS" write "$DB" 0.3 >"$T/out.last" 2>&1 || problems+="writing after the kills: $(head -3 "$T/out.last"); "
"$STRESS" check "$DB" >"$T/check.last" 2>&1 || problems+="check after the last write: $(head -5 "$T/check.last"); "
tap_result "${TESTS[$ROUNDS]}" "$([ -z "$problems" ] && echo 0 || echo 1)" "$problems"

tap_done
