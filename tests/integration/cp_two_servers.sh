#!/bin/bash
# tests/integration/cp_two_servers.sh - two vigil-cp processes on one real
# PostgreSQL 15 (lib_pg.sh: initdb + pg_ctl on a Unix socket, non-root)
# serve one fleet, as behind a load balancer (docs/control-plane.md, "High
# availability").  The OpAMP test agent is given both servers (--server
# twice): each message goes to the next one, a failed one is retried at
# once on the other.  What must hold:
#   - each server's admin API sees what was done through the other;
#   - an agent alternating between the servers on every poll stays known:
#     after its first message it is never asked for its full state (each
#     server reads the agent's row again when the message's sequence_num
#     is not its cached one + 1), and it is never told another certificate
#     owns its instance_uid;
#   - an assignment made through one server reaches an agent that polls
#     only the other within a few seconds (the vigil_generation counter:
#     each server drops its caches within a second of a change);
#   - the alternating agent gets its assigned policy and reports APPLIED,
#     and both servers show it;
#   - a server killed with SIGKILL: the agent's messages that go to it fail
#     and are retried at once on the other, which answers without asking
#     for the full state; a server that says 503 is failed over the same way.
# PostgreSQL only: several vigil-cp on one SQLite file is not a supported
# deployment (docs/control-plane.md).  Nothing is mocked; nothing skips.
#
# It mostly waits on its own PostgreSQL and ports; a cache dropped within
# 1 s is given 5 s: tests/run.sh runs it in its pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_opamp.sh"
. "$(dirname "$0")/lib_pg.sh"

TESTS=(
	"PostgreSQL 15 starts, and two vigil-cp processes start on the same database"
	"a policy uploaded through server A is listed by server B; an assignment made through B is listed by A"
	"an agent alternating between A and B on every poll is answered by both, 200 each time"
	"the alternating agent is never asked for its full state after its first message (each server reads the row the other wrote)"
	"the alternating agent receives its assigned policy once, reports APPLIED, and both servers show it"
	"the store holds the agent's last sequence_num and one row, whichever server wrote last"
	"an assignment made through A reaches an agent that polls only B, within 5 s (vigil_generation)"
	"A killed with SIGKILL: each message that goes to A fails and is sent again at once to B, which answers"
	"after A's death B serves the agent without asking for its full state, and the agent stays APPLIED"
	"a server answering 503 (over --max-connections): the message goes at once to the next server, which answers"
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

for f in "$VIGIL_CP" "$VIGILCTL" "$OPAMP_AGENT"; do
	[ -x "$f" ] || fail_rest "$f is missing: run make"
done
command -v jq >/dev/null || fail_rest "jq is missing: make deps"

P=$T/pki
UID1=0193a5c0000070008000000000000a01
UID2=0193a5c0000070008000000000000a02
UID3=0193a5c0000070008000000000000a03
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -1; }
jq_is() { jq -e "$2" >/dev/null 2>&1 <<<"$1"; }

cp_pki "$P" || fail_rest "could not make the PKI"
pg_start || fail_rest "PostgreSQL did not start: $PG_ERR"

# Server A, server B (and C, later), with lib_opamp.sh's cp_start_named.
start_server() { # start_server NAME LOG [ARGS...]
	local name=$1 log=$2
	shift 2
	cp_start_named "$name" "$P" "$PG_URL" "$log" --log-level debug "$@"
}
on() { cp_on "$@"; }
# agent2 N ARGS...: the test agent with certificate agentN, given A then B.
agent2() {
	local n=$1
	shift
	agent_on "A B" "$P" "$n" "$@"
}

if start_server A "$T/a.log" && start_server B "$T/b.log"; then
	result 0
else
	result 1 "$(tail -5 "$T/a.log" "$T/b.log" 2>/dev/null)"
	fail_rest "the servers did not start"
fi

# ---------------------------------------------------------------------------
# One store behind both admin APIs.

cp_policy "$T/p1.yaml" 1 web && cp_sign "$P" "$T/p1.yaml"
cp_policy "$T/p2.yaml" 2 batch && cp_sign "$P" "$T/p2.yaml"
H1=$(cp_config_hash "$T/p1.yaml" "$T/p1.yaml.sig")
H2=$(cp_config_hash "$T/p2.yaml" "$T/p2.yaml.sig")
on A vctl "$P" policy upload "$T/p1.yaml" "$T/p1.yaml.sig" >"$T/up.out" 2>&1
plB=$(on B vctl "$P" policy list 2>&1)
on B vctl "$P" assign 1 --selector vigil.tenant-set=blue >>"$T/up.out" 2>&1
asA=$(on A vctl "$P" assignments 2>&1)
if jq_is "$plB" '[.policies[].serial] == [1]' && grep -q 'vigil.tenant-set=blue' <<<"$asA"; then
	result 0
else
	result 1 "$(cat "$T/up.out")" "B's policy list: $plB" "A's assignments: $asA"
fi

# ---------------------------------------------------------------------------
# An agent alternating between the servers.

mkdir -p "$T/save1"
agent2 1 --uid "$UID1" --attr host.name=h1 --label vigil.tenant-set=blue --poll 150 --count 10 \
	--save "$T/save1" --no-disconnect --retries 2 >"$T/alt.out" 2>&1
replies=$(grep '^reply ' "$T/alt.out")
servers=$(sed -n 's/.* server=\([0-9]*\).*/\1/p' <<<"$replies" | tr -d '\n')
if [ "$(grep -c ' http=200 ' <<<"$replies")" = 10 ] && [ "$servers" = 1212121212 ]; then
	result 0
else
	result 1 "servers in turn: $servers (want 1212121212)" "$(cat "$T/alt.out")"
fi

# flags: bit 0 is ReportFullState (an odd hex number); only the first message carries the full state.
FULLRE=' flags=0x[0-9a-f]*[13579bdf] '
full_asked=$(grep '^reply ' "$T/alt.out" | grep -c "$FULLRE")
full_sent=$(grep -c '^send .* full=1 ' "$T/alt.out")
if [ "$full_asked" = 0 ] && [ "$full_sent" = 1 ] && ! grep -q '^reply .* error_type=[A-Z]' "$T/alt.out"; then
	result 0
else
	result 1 "$full_asked replies asked for the full state, $full_sent messages carried it" "$(cat "$T/alt.out")"
fi

nrc=$(grep -c '^reply .* remote_config_hash=[0-9a-f]' "$T/alt.out")
rc=$(grep -m1 '^reply .* remote_config_hash=[0-9a-f]' "$T/alt.out")
jA=$(on A vctl "$P" agent "$UID1" 2>&1)
jB=$(on B vctl "$P" agent "$UID1" 2>&1)
want=".remote_config_status == \"APPLIED\" and .remote_config_hash == \"$H1\" and .assigned_serial == 1"
if [ "$nrc" = 1 ] && [ "$(kv remote_config_hash <<<"$rc")" = "$H1" ] && [ "$(kv hash_ok <<<"$rc")" = 1 ] &&
	grep -q '^send .* rcs=APPLIED ' "$T/alt.out" && jq_is "$jA" "$want" && jq_is "$jB" "$want"; then
	result 0
else
	result 1 "$nrc remote configs (want 1), expected hash $H1" "$(cat "$T/alt.out")" "A: $jA" "B: $jB"
fi

last_seq=$(grep '^reply ' "$T/alt.out" | tail -1 | kv seq)
row=$(pg_psql -c "SELECT count(*), max(last_sequence_num) FROM agents WHERE uid = '\\x$UID1'::bytea")
if [ "$row" = "1|$last_seq" ] && jq_is "$jB" ".sequence_num == $last_seq"; then
	result 0
else
	result 1 "store: $row (want 1|$last_seq)" "B: $jB"
fi

# ---------------------------------------------------------------------------
# Caches across servers: B has the assignments cached (it just served an
# agent); an assignment made through A must reach an agent polling only B.

on B agent "$P" 2 --uid "$UID2" --attr host.name=h2 --label env=late --count 2 --poll 100 --no-disconnect \
	>"$T/b0.out" 2>&1
on A vctl "$P" policy upload "$T/p2.yaml" "$T/p2.yaml.sig" >"$T/up2.out" 2>&1 &&
	on A vctl "$P" assign 2 --selector env=late >>"$T/up2.out" 2>&1
t0=$(now_ms)
# One poll every 250 ms through B only (a new process: its first message is full).
on B agent "$P" 2 --uid "$UID2" --attr host.name=h2 --label env=late --poll 250 --count 24 --no-disconnect \
	>"$T/b1.out" 2>&1 &
bpid=$!
SPAWNED+=("$bpid")
got=
while [ "$(($(now_ms) - t0))" -lt 6000 ]; do
	got=$(grep -m1 '^reply .* remote_config_hash=[0-9a-f]' "$T/b1.out")
	[ -n "$got" ] && break
	sleep 0.1
done
took=$(($(now_ms) - t0))
# The agent is a child of the background subshell (on and agent are functions).
pkill -P "$bpid" 2>/dev/null
kill "$bpid" 2>/dev/null
wait "$bpid" 2>/dev/null
if [ "$(kv remote_config_hash <<<"$got")" = "$H2" ] && [ "$took" -le 5000 ] && [ "$(kv server <<<"$got")" = 1 ]; then
	result 0
	tap_diag "the assignment made through A reached the agent through B after $took ms"
else
	result 1 "after $took ms: '${got:-no remote config}' (want $H2)" "$(cat "$T/up2.out")" "$(tail -5 "$T/b1.out")"
fi

# ---------------------------------------------------------------------------
# A dies.  A long-running agent alternating between both.

"$OPAMP_AGENT" --server "$A_URL" --server "$B_URL" --cert "$P/agent1.pem" --key "$P/agent1.key" \
	--ca "$P/server-ca.pem" --uid "$UID1" --attr host.name=h1 --label vigil.tenant-set=blue --poll 150 \
	--save "$T/save1" --resume --no-disconnect --timeout 3000 >"$T/kill.out" 2>&1 &
LONG=$!
SPAWNED+=("$LONG")
count_ge() { [ "$(grep -c "$2" "$T/kill.out")" -ge "$1" ]; }
wait_for 10 count_ge 4 '^reply .* http=200 '
kill -KILL "$A_PID"
wait "$A_PID" 2>/dev/null
before=$(grep -c '^reply ' "$T/kill.out")
wait_for 10 count_ge $((before + 6)) '^reply .* http=200 '
kill -TERM "$LONG"
wait "$LONG"
after=$(tail -n +"$((before + 1))" "$T/kill.out")
# Each failure on A (server=1) is followed at once by B's answer to the same seq.
bad=$(awk '
	/^fail / { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		if (v["server"] != 1 || v["retry_in_ms"] != 0) { print "not an immediate failover: " $0; exit }
		pending = v["seq"]; next }
	/^reply / && pending != "" { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		if (v["server"] != 2 || v["seq"] != pending || v["http"] != 200) { print "after the failure: " $0; exit }
		pending = ""; n++ }
	END { if (n < 2) print "only " n + 0 " failovers seen" }' <<<"$after")
if [ -z "$bad" ] && grep -q '^fail .* server=1' <<<"$after"; then
	result 0
else
	result 1 "$bad" "$(tail -n +"$((before - 2))" "$T/kill.out" | head -30)"
fi
jB=$(on B vctl "$P" agent "$UID1" 2>&1)
if ! grep '^reply ' <<<"$after" | grep -q "$FULLRE" &&
	! grep -q '^send .* full=1 ' <<<"$after" &&
	jq_is "$jB" ".remote_config_status == \"APPLIED\" and .remote_config_hash == \"$H1\""; then
	result 0
else
	result 1 "$(grep -E '^(send .* full=1|reply .* flags=0x[0-9a-f]*[13579bdf] )' <<<"$after" | head -5)" "B: $jB"
fi

# ---------------------------------------------------------------------------
# 503: server C serves one connection, held by an idle client.

start_server C "$T/c.log" --max-connections 1 --retry-after 1 || fail_rest "server C did not start"
"$OPAMP_AGENT" --server "$C_URL" --cert "$P/agent3.pem" --key "$P/agent3.key" --ca "$P/server-ca.pem" \
	--uid "$UID3" --poll 60000 --no-disconnect >"$T/hold.out" 2>&1 &
HOLD=$!
SPAWNED+=("$HOLD")
wait_for 10 grep -q '^reply n=1 .* http=200 ' "$T/hold.out"
sleep 0.3
"$OPAMP_AGENT" --server "$C_URL" --server "$B_URL" --cert "$P/agent2.pem" --key "$P/agent2.key" \
	--ca "$P/server-ca.pem" --uid "$UID2" --count 1 --no-disconnect --retries 3 >"$T/ovl.out" 2>&1
kill -TERM "$HOLD"
f=$(grep -m1 '^fail ' "$T/ovl.out")
r=$(grep -m1 '^reply .* http=200 ' "$T/ovl.out")
if [ "$(kv http <<<"$f")" = 503 ] && [ "$(kv server <<<"$f")" = 1 ] && [ "$(kv retry_in_ms <<<"$f")" = 0 ] &&
	[ "$(kv server <<<"$r")" = 2 ] && [ "$(kv seq <<<"$r")" = "$(kv seq <<<"$f")" ]; then
	result 0
else
	result 1 "$(cat "$T/ovl.out")" "$(tail -3 "$T/c.log")"
fi

on B cp_stop TERM
bad=$(grep -hE '(^|: )store: |internal error|Sanitizer|runtime error' "$T/a.log" "$T/b.log" | head -5)
if [ -z "$bad" ] && [ "$CP_RC" = 0 ]; then
	result 0
else
	result 1 "B exited $CP_RC" "$bad"
fi

tap_done
