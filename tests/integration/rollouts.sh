#!/bin/bash
# tests/integration/rollouts.sh - staged rollouts end to end: a real
# vigil-cp (SQLite, or a real PostgreSQL 15 under pg_rollouts.sh:
# lib_backend.sh), vigilctl as the administrator, and real test agents
# (tests/tools/opamp_agent, one process per agent, several instance uids on
# one agent certificate) polling every 200 ms.
#
#   - stages 1,50%,100% over six agents: the canary alone gets the policy
#     first, then three, then six; the rollout completes after the bakes,
#     every agent applied it, and the completion recorded its assignment;
#   - a rollout whose canary refuses the policy halts by itself: no other
#     agent receives it, status names the agent and its reason; resume
#     counts failures from zero (the next stage starts, and halts again),
#     abort ends it, and a resume after that is refused;
#   - a rollout sharing agents with a halted one is refused, naming them;
#   - vigil-cp killed (SIGKILL) mid-rollout and started again: the rollout
#     completes;
#   - opamp-spec#397: an agent that APPLIED A, FAILED B and reports
#     APPLIED A again is never sent B again;
#   - policy revert writes the old policy with the next serial, and will
#     not overwrite a file without --force;
#   - bad stages and durations are refused with the reason.
#
# It mostly waits on agents polling every 200 ms; the order of stages is
# vigil-cp's, the port and store are its own, deadlines 10 s or more:
# tests/run.sh runs it (and pg_rollouts.sh) in its pool, beside the others.
# run.sh: alongside
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_opamp.sh"
. "$(dirname "$0")/lib_backend.sh"

JG=$B/tests/tools/json_get
N=34
tap_plan $N

require_file "$VIGIL_CP" "vigil-cp is built" && require_file "$VIGILCTL" "vigilctl is built" &&
	require_file "$OPAMP_AGENT" "opamp_agent is built" && require_file "$JG" "json_get is built"
jg() { "$JG" "$1"; }

P=$T/pki
if ! cp_pki "$P" >"$T/pki.log" 2>&1; then
	for i in $(seq $N); do tap_not_ok "rollouts test $i" "the test PKI could not be made: $(tail -3 "$T/pki.log")"; done
	tap_done
fi

DB=$T/cp.db # cp_start names it through cp_db (lib_backend.sh)

# ctl ARGS...: vigilctl as the admin (JSON), output in $OUT/$ERR, exit code in $RC.
ctl() {
	vctl "$P" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
diag() { echo "exit $RC"; echo "stdout: ${OUT:0:3000}"; echo "stderr: $ERR"; echo "vigil-cp: $(tail -8 "$T/cp.log")"; }

cp_start "$P" "$DB" "$T/cp.log"
cp_wait_ready "$P" 20
tap_result "vigil-cp starts" $? "$(tail -5 "$T/cp.log")"

# Policies 1..6, signed as an administrator signs them.
for s in 1 2 3 4 5 6; do
	cp_policy "$T/p$s.yaml" "$s" && cp_sign "$P" "$T/p$s.yaml" && ctl policy upload "$T/p$s.yaml" "$T/p$s.yaml.sig" ||
		echo "upload $s: $ERR" >>"$T/setup.log"
done
HASH2=$(cp_config_hash "$T/p2.yaml" "$T/p2.yaml.sig")
HASH3=$(cp_config_hash "$T/p3.yaml" "$T/p3.yaml.sig")
HASH5=$(cp_config_hash "$T/p5.yaml" "$T/p5.yaml.sig")
HASH6=$(cp_config_hash "$T/p6.yaml" "$T/p6.yaml.sig")

# start_agent NAME UIDNUM LABEL [ARGS...]: an agent process, log $T/NAME.log.
start_agent() {
	local name=$1 num=$2 label=$3
	shift 3
	mkdir -p "$T/save-$name"
	"$OPAMP_AGENT" --server "$CP_URL" --cert "$P/agent1.pem" --key "$P/agent1.key" --ca "$P/server-ca.pem" --uid "$(printf '%032x' "$num")" --attr "host.name=$name" --label "$label" --poll 200 \
		--save "$T/save-$name" --backoff-max 1000 "$@" >>"$T/$name.log" 2>&1 &
	SPAWNED+=("$!")
	eval "PID_$name=$!"
}
# applied NAME HASH: the agent applied the config with HASH.
applied() { grep -q "apply hash=$2 result=applied" "$T/$1.log"; }
# received NAME HASH: how many times the agent was sent the config with HASH (applied or failed).
received() { grep -c "apply hash=$2 result=\(applied\|failed\)" "$T/$1.log"; }
state_is() { ctl rollout status "$1" && [ "$(echo "$OUT" | jg .state)" = "$2" ]; }
n_agents() { ctl agents --selector "$1" && [ "$(echo "$OUT" | jg .agents#)" = "$2" ]; }

# ---------------------------------------------------------------------------
# 1. Stages 1,50%,100% over six agents, completing.

for i in 1 2 3 4 5 6; do start_agent "prod$i" "$((0x100 + i))" env=prod; done
wait_for 20 n_agents env=prod 6
tap_result "six agents report (env=prod)" $? "$(diag)"

# The bake is 4 s so that the canary-only window (the bake, plus the others'
# next poll) is far longer than this script's 0.2 s polling, even when the
# pool's other tests load the machine; a 1 s bake was missed once in CI.
BAKE1_MS=4000
ctl rollout start 2 --selector env=prod --stages 1,50%,100% --bake $((BAKE1_MS / 1000))s --report-timeout 30s
ID1=$(echo "$OUT" | jg .id)
[ "$RC" -eq 0 ] && [ "$ID1" = 1 ] && [ "$(echo "$OUT" | jg .state)" = running ]
tap_result "rollout start 2 --stages 1,50%,100%: rollout 1, running" $? "$(diag)"

# The canary alone, until its bake ends.
canary_only() {
	local n=0 i
	for i in 1 2 3 4 5 6; do applied "prod$i" "$HASH2" && n=$((n + 1)); done
	[ "$n" -eq 1 ]
}
wait_for 10 canary_only
ok=$?
sleep 0.5
n=0
for i in 1 2 3 4 5 6; do applied "prod$i" "$HASH2" && n=$((n + 1)); done
ctl rollout status "$ID1"
[ $ok -eq 0 ] && [ "$n" -le 3 ] && [ "$(echo "$OUT" | jg .stage_status[0].size)" = 1 ]
tap_result "the canary applies it first (one agent; stage 1 covers 1)" $? "applied by $n; $(diag)"

wait_for 40 state_is "$ID1" completed
tap_result "rollout 1 completes after the bakes" $? "$(diag)"
n=0
for i in 1 2 3 4 5 6; do applied "prod$i" "$HASH2" && n=$((n + 1)); done
[ "$n" -eq 6 ] && [ "$(echo "$OUT" | jg .stage_status[2].succeeded)" = 3 ] &&
	[ "$(echo "$OUT" | jg .stage_status[1].new_members)" = 2 ]
tap_result "all six applied policy 2; stages took 1, 2 and 3 new agents" $? "applied by $n; $(diag)"
# Order: nobody but the canary was sent it before the canary's bake (BAKE1_MS after it applied) ended.
c_applied=$(echo "$OUT" | jg .members[0].applied_at)
first_other=
for k in 1 2 3 4 5; do
	t=$(echo "$OUT" | jg ".members[$k].sent_at")
	[ -z "$first_other" ] || [ "$t" -lt "$first_other" ] && first_other=$t
done
[ "$(echo "$OUT" | jg .members[0].stage)" = 0 ] && [ "$first_other" -ge $((c_applied + BAKE1_MS)) ]
tap_result "the others were sent it only after the canary's bake (canary applied $c_applied, next sent $first_other)" $? "$(diag)"
ctl assignments
[ "$(echo "$OUT" | jg .assignments[0].assigned_by)" = "rollout 1" ] &&
	[ "$(echo "$OUT" | jg .assignments[0].selector)" = env=prod ] &&
	[ "$(echo "$OUT" | jg .assignments[0].serial)" = 2 ]
tap_result "the completed rollout recorded the assignment env=prod -> 2" $? "$(diag)"

# A new agent that matches later gets it through that assignment.
start_agent prod7 $((0x107)) env=prod
wait_for 15 applied prod7 "$HASH2"
tap_result "an agent that appears after completion gets policy 2" $? "$(tail -5 "$T/prod7.log")"

# ---------------------------------------------------------------------------
# 2. The canary refuses: the rollout halts by itself.

for i in 1 2 3 4; do start_agent "bad$i" "$((0x200 + i))" env=bad --fail-config; done
wait_for 20 n_agents env=bad 4
ctl rollout start 3 --selector env=bad --stages 1,100% --bake 1s --report-timeout 30s
ID2=$(echo "$OUT" | jg .id)
wait_for 15 state_is "$ID2" halted
tap_result "a refused canary halts rollout $ID2 by itself" $? "$(diag)"
CANARY=$(echo "$OUT" | jg .failures[0].uid)
REASON=$(echo "$OUT" | jg .failures[0].reason)
[ "$(echo "$OUT" | jg .failures#)" = 1 ] && [ "$REASON" = "policy failed: opamp_agent: refused (--fail-config)" ] &&
	echo "$OUT" | jg .reason | grep -q "1 failure (more than --max-failures 0): $CANARY"
tap_result "status names the failed agent and its reason" $? "$(diag)"
vctl "$P" --table rollout status "$ID2" >"$T/status.txt" 2>&1
grep -q "$CANARY .*policy failed: opamp_agent: refused" "$T/status.txt" && grep -q "state: *halted" "$T/status.txt"
tap_result "the status table shows the failure" $? "$(cat "$T/status.txt")"
sleep 2
n=0
for i in 1 2 3 4; do n=$((n + $(received "bad$i" "$HASH3"))); done
[ "$n" -eq 1 ]
tap_result "no agent but the canary received policy 3 (received $n times in all)" $? "$(grep -h apply "$T"/bad*.log)"

# Overlap with a halted rollout: refused, naming the agents.
ctl rollout start 4 --selector env=bad --stages 100%
[ "$RC" -eq 65 ] && echo "$ERR" | grep -q "HTTP 409.*4 agents are already in a running or halted rollout: .*(rollout $ID2)"
tap_result "a rollout sharing agents with halted rollout $ID2 is refused (409) and names them" $? "$(diag)"

ctl rollout resume "$ID2"
[ "$RC" -eq 0 ]
tap_result "rollout resume" $? "$(diag)"
wait_for 15 state_is "$ID2" halted
ok=$?
n=0
for i in 1 2 3 4; do n=$((n + $(received "bad$i" "$HASH3"))); done
# Halted again as soon as one of stage 2 failed: those sent it by then received it, nobody else.
sent=0
for k in 0 1; do sent=$((sent + $(echo "$OUT" | jg ".stage_status[$k].sent"))); done
[ $ok -eq 0 ] && [ "$(echo "$OUT" | jg .stage)" = 1 ] && [ "$(echo "$OUT" | jg .failures#)" -ge 2 ] &&
	[ "$n" -ge 2 ] && [ "$n" -eq "$sent" ]
tap_result "resumed, stage 2 started (the old failure no longer counted), failed and halted again" $? \
	"received $n, sent $sent; $(diag)"

ctl rollout abort "$ID2"
[ "$RC" -eq 0 ] && [ "$(echo "$OUT" | jg .state)" = aborted ]
tap_result "rollout abort" $? "$(diag)"
ctl rollout resume "$ID2"
[ "$RC" -eq 65 ] && echo "$ERR" | grep -q "409.*is aborted"
tap_result "resume of an aborted rollout: refused (409, says aborted)" $? "$(diag)"

# ---------------------------------------------------------------------------
# 3. vigil-cp killed mid-rollout.

for i in 1 2 3 4; do start_agent "rs$i" "$((0x300 + i))" env=restart; done
wait_for 20 n_agents env=restart 4
ctl rollout start 5 --selector env=restart --stages 1,100% --bake 3s --report-timeout 60s
ID3=$(echo "$OUT" | jg .id)
rs_canary() { local i; for i in 1 2 3 4; do applied "rs$i" "$HASH5" && return 0; done; return 1; }
wait_for 15 rs_canary
tap_result "rollout $ID3: the canary applied policy 5" $? "$(diag)"
cp_stop KILL
cp_start "$P" "$DB" "$T/cp.log"
cp_wait_ready "$P" 20
tap_result "vigil-cp killed (SIGKILL) and started again" $? "$(tail -5 "$T/cp.log")"
wait_for 40 state_is "$ID3" completed
ok=$?
n=0
for i in 1 2 3 4; do applied "rs$i" "$HASH5" && n=$((n + 1)); done
[ $ok -eq 0 ] && [ "$n" -eq 4 ]
tap_result "rollout $ID3 completes after the restart, all four applied" $? "applied by $n; $(diag)"

# ---------------------------------------------------------------------------
# 4. opamp-spec#397: APPLIED(A) -> FAILED(B) -> APPLIED(A) does not loop.
# The agent applies A (policy 1, assigned), then refuses B (policy 6, rolled
# out to it) and goes back to reporting A, as an agent that keeps its
# last-known-good does.  B must be sent to it once, not again each time it
# reports A.

HASH1=$(cp_config_hash "$T/p1.yaml" "$T/p1.yaml.sig")
ctl assign 1 --selector env=p397
start_agent p397 $((0x397)) env=p397 --fail-hash "$HASH6"
wait_for 15 applied p397 "$HASH1"
tap_result "#397: the agent applied A (policy 1)" $? "$(tail -5 "$T/p397.log")"
ctl rollout start 6 --selector env=p397 --stages 100% --report-timeout 30s
ID4=$(echo "$OUT" | jg .id)
wait_for 15 state_is "$ID4" halted
tap_result "#397: B (policy 6) FAILED on it and rollout $ID4 halted" $? "$(diag)"
# The agent reports A again and again after the halt: 20 more messages at
# least (about 4 s at its 200 ms poll, as the test once slept; up to 30 s
# on a loaded host), each a chance for a loop to send B again.
sends() { grep -c "^send " "$T/p397.log"; }
more_sends() { [ "$(sends)" -ge "$1" ]; }
wait_for 30 more_sends $(($(sends) + 20))
polled=$?
n=$(received p397 "$HASH6")
ctl agent "$(printf '%032x' $((0x397)))"
[ "$polled" = 0 ] && [ "$n" -eq 1 ] && [ "$(echo "$OUT" | jg .remote_config_status)" = APPLIED ] &&
	[ "$(grep -c "apply hash=$HASH1 result=applied" "$T/p397.log")" -le 2 ]
tap_result "#397: B was sent once in all, the agent is back on A (APPLIED), no loop" $? \
	"B received $n times; $(sends) messages sent (20 more after the halt: $([ "$polled" = 0 ] && echo yes || echo no));" \
	"$(grep apply "$T/p397.log"); $(diag)"

# ---------------------------------------------------------------------------
# 5. policy revert.

ctl policy revert --to 1 --out "$T/revert.yaml"
[ "$RC" -eq 0 ] && [ "$(sed 's/^serial: 7$/serial: 1/' "$T/revert.yaml" | cmp - "$T/p1.yaml" && echo same)" = same ] &&
	grep -q '^serial: 7$' "$T/revert.yaml"
tap_result "policy revert --to 1: policy 1's bytes with serial 7 (the next)" $? "$(diag); $(cat "$T/revert.yaml")"
ctl policy revert --to 2 --out "$T/revert.yaml"
rc1=$RC
grep -q '^serial: 7$' "$T/revert.yaml" && cmp -s <(sed 's/^serial: 7$/serial: 1/' "$T/revert.yaml") "$T/p1.yaml"
same=$?
[ "$rc1" -eq 73 ] && [ $same -eq 0 ] && echo "$ERR" | grep -q "exists: refusing to overwrite it (--force to replace it)"
tap_result "revert will not overwrite an existing file (exit 73, file unchanged)" $? "$(diag)"
ctl policy revert --to 2 --out "$T/revert.yaml" --force
[ "$RC" -eq 0 ] && [ "$(sed 's/^serial: 7$/serial: 2/' "$T/revert.yaml" | cmp - "$T/p2.yaml" && echo same)" = same ]
tap_result "revert --force replaces it" $? "$(diag)"
cp_sign "$P" "$T/revert.yaml" && ctl policy upload "$T/revert.yaml" "$T/revert.yaml.sig"
[ "$RC" -eq 0 ] && [ "$(echo "$OUT" | jg .serial)" = 7 ]
tap_result "the reverted file, signed, uploads as serial 7" $? "$(diag)"

# ---------------------------------------------------------------------------
# 6. Refusals.

ctl rollout start 2 --selector env=prod --stages 0
[ "$RC" -eq 65 ] && echo "$ERR" | grep -q "400.*stages: stage 1: 0 covers no agent"
tap_result "--stages 0: refused (400) with the reason" $? "$(diag)"
ctl rollout start 2 --selector env=nobody --stages 100%
[ "$RC" -eq 65 ] && echo "$ERR" | grep -q "409.*no agent matches selector env=nobody"
tap_result "a selector that matches no agent: refused (409)" $? "$(diag)"
ctl rollout start 2 --selector env=prod --stages 100% --bake 5x
[ "$RC" -eq 64 ] && echo "$ERR" | grep -q -- "--bake: \"5x\": unknown or missing unit"
tap_result "--bake 5x: usage error naming the unit" $? "$(diag)"

ctl agents --stages 1
[ "$RC" -eq 64 ] && echo "$ERR" | grep -q -- "--stages, --bake, --max-failures and --report-timeout go with rollout start only"
tap_result "rollout options with another command: usage error" $? "$(diag)"
ctl rollout status first
[ "$RC" -eq 64 ] && echo "$ERR" | grep -q "rollout status: ID must be a positive integer, not first"
tap_result "rollout status with a bad id: usage error" $? "$(diag)"

ctl rollout list
[ "$RC" -eq 0 ] && [ "$(echo "$OUT" | jg .rollouts#)" = 4 ]
tap_result "rollout list shows the four rollouts" $? "$(diag)"

tap_done
