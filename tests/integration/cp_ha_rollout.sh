#!/bin/bash
# tests/integration/cp_ha_rollout.sh - a staged rollout served by two
# vigil-cp processes on one real PostgreSQL 15 (issue 10, "Several servers,
# one fleet"), one of them killed in the middle.  Six OpAMP test agents
# (tests/tools/opamp_agent, one process each) are given both servers: each
# message goes to the next server in turn, a failed one at once to the
# other, as behind a load balancer.  What must hold:
#   - every agent is answered by both servers before the rollout starts;
#   - a rollout started through A (stages 1,50%,100%) reaches its second
#     stage while agents alternate; then A is killed with SIGKILL and the
#     rollout completes through B alone: progress lives in the store, and
#     B's tick advances it;
#   - every agent applied the policy, and each stage was started exactly
#     once, completed exactly once, and the rollout completed once (one
#     server advances a rollout at a time: FOR UPDATE SKIP LOCKED), as the
#     audit log records it;
#   - the audit log, appended by both servers, verifies through B; A started
#     again verifies it too, consistent with the checkpoint saved from B.
# PostgreSQL only: several vigil-cp on one SQLite file is not a supported
# deployment (docs/control-plane.md).  Nothing is mocked; nothing skips.
#
# It mostly waits on agents polling every 200 ms, with its own PostgreSQL
# and ports and deadlines of 10 s or more: tests/run.sh runs it in its
# pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_opamp.sh"
. "$(dirname "$0")/lib_pg.sh"

TESTS=(
	"PostgreSQL 15 starts, and two vigil-cp (A and B, one --audit-key) start on the same database"
	"six agents given both servers report, and each agent is answered by both A and B"
	"a rollout started through A (stages 1,50%,100%) reaches its second stage while agents alternate"
	"A killed with SIGKILL mid-rollout: the rollout completes through B"
	"every agent applied the rolled-out policy"
	"the audit log records each stage started once and completed once, and the rollout completed once"
	"the audit log, appended by both servers, verifies through B"
	"A started again on the same database verifies the log too, consistent with the checkpoint saved from B"
	"neither server logged a store error, an internal error or a sanitizer report"
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

JG=$B/tests/tools/json_get
for f in "$VIGIL_CP" "$VIGILCTL" "$OPAMP_AGENT" "$JG"; do
	[ -x "$f" ] || fail_rest "$f is missing: run make"
done
jg() { "$JG" "$1"; }

P=$T/pki
STATE=$T/audit-state
cp_pki "$P" || fail_rest "could not make the PKI"
cp_quiet openssl genpkey -algorithm ed25519 -out "$P/audit.key" &&
	cp_quiet openssl pkey -in "$P/audit.key" -pubout -out "$P/audit.pub" || fail_rest "could not make the audit key"
cp_policy "$T/p1.yaml" 1 && cp_sign "$P" "$T/p1.yaml" || fail_rest "could not sign the policy"
HASH1=$(cp_config_hash "$T/p1.yaml" "$T/p1.yaml.sig")
pg_start || fail_rest "PostgreSQL did not start: $PG_ERR"

start_server() { # start_server NAME
	cp_start_named "$1" "$P" "$PG_URL" "$T/cp-$1.log" --audit-key "$P/audit.key" --log-level debug
}
if start_server A && start_server B; then
	result 0
else
	result 1 "$(tail -5 "$T"/cp-*.log)"
	fail_rest "the servers did not start"
fi

# ctl NAME ARGS...: vigilctl as the admin through server NAME (JSON); $OUT, $ERR, $RC.
ctl() {
	local name=$1
	shift
	cp_on "$name" vctl "$P" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
diag() { echo "exit $RC; stdout: ${OUT:0:2000}; stderr: $ERR"; }

AGENTS="1 2 3 4 5 6"
for i in $AGENTS; do
	mkdir -p "$T/save$i"
	agent_on "A B" "$P" 1 --uid "$(printf '%032x' $((0x600 + i)))" --attr "host.name=ha$i" --label env=ha \
		--poll 200 --backoff-max 1000 --save "$T/save$i" >"$T/agent$i.log" 2>&1 &
	SPAWNED+=("$!")
done
n_agents() { ctl B agents --selector env=ha && [ "$(echo "$OUT" | jg .agents#)" = 6 ]; }
both_served() {
	local i
	for i in $AGENTS; do
		grep -q 'server=1' "$T/agent$i.log" && grep -q 'server=2' "$T/agent$i.log" || return 1
	done
}
wait_for 20 n_agents && wait_for 10 both_served
result $? "$(diag); $(tail -3 "$T/agent1.log")"

ctl A policy upload "$T/p1.yaml" "$T/p1.yaml.sig"
ctl A rollout start 1 --selector env=ha --stages 1,50%,100% --bake 2s --report-timeout 60s
ID=$(echo "$OUT" | jg .id)
at_stage() { ctl B rollout status "$ID" && [ "$(echo "$OUT" | jg .stage)" -ge "$1" ]; }
if [ "$RC" = 0 ] && [ -n "$ID" ] && wait_for 30 at_stage 1; then
	result 0
else
	result 1 "$(diag)"
fi

cp_on A cp_stop KILL
completed() { ctl B rollout status "$ID" && [ "$(echo "$OUT" | jg .state)" = completed ]; }
wait_for 60 completed
result $? "$(diag); B: $(tail -5 "$T/cp-B.log")"

applied_all() {
	local i
	for i in $AGENTS; do grep -q "apply hash=$HASH1 result=applied" "$T/agent$i.log" || return 1; done
}
wait_for 10 applied_all
result $? "$(grep -h 'apply' "$T"/agent*.log | head -12)"

# Each rollout event of this rollout, from the exported records (exact bytes, one JSON per line).
ctl B audit export --since 0
echo "$OUT" >"$T/records.jsonl"
count() { # count KIND [STAGE]
	local n=0 line
	while IFS= read -r line; do
		[ "$(echo "$line" | jg .kind)" = "$1" ] || continue
		[ "$(echo "$line" | jg .rollout)" = "$ID" ] || continue
		[ -z "${2:-}" ] || [ "$(echo "$line" | jg .stage)" = "$2" ] || continue
		n=$((n + 1))
	done <"$T/records.jsonl"
	echo "$n"
}
bad=
for s in 0 1 2; do
	[ "$(count rollout_stage_started "$s")" = 1 ] || bad+="stage $s started $(count rollout_stage_started "$s") times; "
	[ "$(count rollout_stage_completed "$s")" = 1 ] ||
		bad+="stage $s completed $(count rollout_stage_completed "$s") times; "
done
[ "$(count rollout_completed)" = 1 ] || bad+="completed $(count rollout_completed) times; "
[ -z "$bad" ]
result $? "$bad" "$(grep rollout "$T/records.jsonl" | head -10)"

ctl B audit verify --audit-pubkey "$P/audit.pub" --state "$STATE"
SIZE_B=$(sed -n 's/.*size \([0-9]*\).*/\1/p' <<<"$OUT$ERR" | head -1)
[ "$RC" = 0 ]
result $? "$(diag)"

start_server A2 && A_URL=$A2_URL
ctl A2 audit verify --audit-pubkey "$P/audit.pub" --state "$STATE"
[ "$RC" = 0 ]
result $? "$(diag); size seen through B: ${SIZE_B:-?}; A2: $(tail -5 "$T/cp-A2.log")"

bad=$(grep -hE 'store:|internal error|ERROR: AddressSanitizer|runtime error' "$T"/cp-*.log | grep -v 'readable again' | head -5)
[ -z "$bad" ]
result $? "$bad"
tap_done
