#!/bin/bash
# cp_opamp.sh - vigil-cp speaks OpAMP over HTTP with a client that is not
# vigild: tests/tools/opamp_agent, which behaves as opamp-go's HTTP client
# does (full state on the first message and on ReportFullState only, polls of
# instance_uid + sequence_num + capabilities, agent_disconnect at exit, gzip
# on and off).  Real vigil-cp, real mutual TLS on loopback, a PKI made here
# with openssl, a SQLite file (or, run by pg_cp_opamp.sh, a database on a
# real PostgreSQL: lib_backend.sh).  What the server recorded is read back
# through the admin API (vigilctl --json); the remote config's hash
# is computed again here with printf and openssl, not with our C code.
#
# It mostly waits on its own vigil-cp (its own ports and store) and times
# only what a client waits (Retry-After): tests/run.sh runs it (and
# pg_cp_opamp.sh) in its pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_backend.sh"
. "$(dirname "$0")/lib_opamp.sh"

tap_plan 45

P=$T/pki
DB=$T/cp.db
LOG=$T/cp.log
CAPS=14343 # ReportsStatus|AcceptsRemoteConfig|ReportsEffectiveConfig|ReportsHealth|ReportsRemoteConfig|ReportsHeartbeat

# Instance uids (UUID v7 form: version nibble 7, variant 10).
UID1=0193a5c0000070008000000000000001
UID2=0193a5c0000070008000000000000002
UID3=0193a5c0000070008000000000000003
UID4=0193a5c0000070008000000000000004
UID5=0193a5c0000070008000000000000005
UID6=0193a5c0000070008000000000000006
UID7=0193a5c0000070008000000000000007

# kv KEY: the value of KEY= in the line on stdin.
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -1; }

# line FILE PATTERN: the first line of FILE that matches the extended regex.
line() { grep -E -m1 "$2" "$1"; }

# agent_json UID: the admin API's view of one agent (vigilctl).
agent_json() { vctl "$P" agent "$1" 2>"$T/vctl.err"; }

# jq_is JSON FILTER: the filter's result is true.
jq_is() { jq -e "$2" >/dev/null 2>&1 <<<"$1"; }

# wait_for SECONDS CMD...: until CMD succeeds (1 when it never did).
wait_for() {
	local limit=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.1
	done
}

# count_ge N FILE REGEX: FILE has at least N lines that match.
count_ge() { [ "$(grep -cE "$3" "$2")" -ge "$1" ]; }

# logged_since N REGEX: vigil-cp logged a line matching REGEX after its first N lines.
logged_since() { log_since "$1" | grep -qE "$2"; }

# log_since N: what vigil-cp logged after its first N lines.
log_since() { tail -n +"$(($1 + 1))" "$LOG"; }
log_lines() { wc -l <"$LOG"; }

# alive: vigil-cp runs and serves a normal agent.
alive() {
	kill -0 "$CP_PID" 2>/dev/null || return 1
	agent "$P" 3 --uid "$UID6" --count 1 --no-disconnect --retries 0 >"$T/alive.out" 2>&1 &&
		grep -q '^reply n=1 .* http=200 ' "$T/alive.out"
}

# fail_rest REASON: every remaining test fails with REASON; end.
fail_rest() {
	while [ "$TAP_N" -lt "$TAP_PLAN" ]; do tap_not_ok "(not run)" "$1"; done
	tap_done
}

for f in "$VIGIL_CP" "$VIGILCTL" "$OPAMP_AGENT"; do
	[ -x "$f" ] || fail_rest "$f is missing: run make"
done
command -v jq >/dev/null || fail_rest "jq is missing: make deps"
cp_pki "$P" || fail_rest "could not make the PKI"

# ---------------------------------------------------------------------------
# Start.

cp_start "$P" "$DB" "$LOG"
if cp_wait_ready "$P"; then
	tap_ok "vigil-cp starts with the test PKI on a new $BACKEND_NAME store"
else
	tap_not_ok "vigil-cp starts with the test PKI on a new $BACKEND_NAME store" "$(tail -5 "$LOG")"
	fail_rest "vigil-cp did not start"
fi

# ---------------------------------------------------------------------------
# First message: full state, recorded.

agent "$P" 1 --uid "$UID1" --attr host.name=h1 --attr service.name=vigil --label env=it \
	--label vigil.tenant-set=blue --poll 100 --count 3 --no-disconnect >"$T/a1.out" 2>&1
r1=$(line "$T/a1.out" '^reply n=1 ')
s1=$(line "$T/a1.out" '^send n=1 ')
if [ "$(kv http <<<"$r1")" = 200 ] && [ "$(kv caps <<<"$r1")" != 0x0 ] && [ "$(kv error_type <<<"$r1")" = - ] &&
	[ "$(kv full <<<"$s1")" = 1 ] && [ "$(kv uid <<<"$r1")" = match ]; then
	tap_ok "the first message (full state) is answered 200 with the server's capabilities and the agent's instance_uid"
else
	tap_not_ok "the first message (full state) is answered 200 with the server's capabilities and the agent's instance_uid" \
		"$(cat "$T/a1.out")"
fi

j=$(agent_json "$UID1")
if jq_is "$j" '.description.identifying["host.name"] == "h1" and .description.identifying["service.name"] == "vigil"
	and .description.non_identifying.env == "it" and .description.non_identifying["vigil.tenant-set"] == "blue"'; then
	tap_ok "the agent_description of the first message is recorded (identifying and non-identifying)"
else
	tap_not_ok "the agent_description of the first message is recorded (identifying and non-identifying)" "$j" "$(cat "$T/vctl.err")"
fi
if jq_is "$j" ".healthy == true and .capabilities == $CAPS and (.certificate.subject | test(\"CN=agent1\"))
	and (.effective_config_hash != null) and .remote_config_status == \"UNSET\""; then
	tap_ok "health, capabilities, effective config, remote config status and the certificate subject are recorded"
else
	tap_not_ok "health, capabilities, effective config, remote config status and the certificate subject are recorded" "$j"
fi

# Heartbeats: only instance_uid, sequence_num, capabilities; no flag back.
hb_sends=$(grep -E '^send n=[23] ' "$T/a1.out" | grep -c ' full=0 desc=0 health=0 effective=0 rcs=- ')
hb_flags=$(grep -E '^reply n=[23] ' "$T/a1.out" | grep -c ' http=200 .* flags=0x0 ')
if [ "$hb_sends" = 2 ] && [ "$hb_flags" = 2 ] && jq_is "$j" '.sequence_num == 2 and .description != null'; then
	tap_ok "polls in sequence carry no state, get no ReportFullState, and keep the recorded state"
else
	tap_not_ok "polls in sequence carry no state, get no ReportFullState, and keep the recorded state" \
		"$(cat "$T/a1.out")" "$j"
fi

# ---------------------------------------------------------------------------
# A sequence gap: ReportFullState, then the full state at once.

agent "$P" 2 --uid "$UID2" --attr host.name=h2 --label env=it --poll 100 --count 5 --seq-skip 2 \
	--no-disconnect >"$T/a2.out" 2>&1
rgap=$(line "$T/a2.out" '^reply n=3 ')
if [ "$(kv seq <<<"$rgap")" = 3 ] && [ "$(kv http <<<"$rgap")" = 200 ] && [ $(($(kv flags <<<"$rgap") & 1)) = 1 ]; then
	tap_ok "a gap in sequence_num (1 then 3) gets the ReportFullState flag"
else
	tap_not_ok "a gap in sequence_num (1 then 3) gets the ReportFullState flag" "$(cat "$T/a2.out")"
fi
s4=$(line "$T/a2.out" '^send n=4 ')
r4=$(line "$T/a2.out" '^reply n=4 ')
if [ "$(kv full <<<"$s4")" = 1 ] && [ "$(kv seq <<<"$s4")" = 4 ] && [ "$(kv flags <<<"$r4")" = 0x0 ] &&
	[ "$(kv full <<<"$(line "$T/a2.out" '^send n=5 ')")" = 0 ]; then
	tap_ok "the client answers with its full state at once, and the server is satisfied"
else
	tap_not_ok "the client answers with its full state at once, and the server is satisfied" "$(cat "$T/a2.out")"
fi

# A poll from an agent the server has no state for (it lost its store, say):
# the server asks for the full state.
agent "$P" 2 --uid "$UID7" --attr host.name=h2b --count 2 --poll 100 --first-heartbeat --no-disconnect \
	>"$T/hb.out" 2>&1
r=$(line "$T/hb.out" '^reply n=1 ')
if [ "$(kv full <<<"$(line "$T/hb.out" '^send n=1 ')")" = 0 ] && [ $(($(kv flags <<<"$r") & 1)) = 1 ] &&
	[ "$(kv full <<<"$(line "$T/hb.out" '^send n=2 ')")" = 1 ] &&
	jq_is "$(agent_json "$UID7")" '.description.identifying["host.name"] == "h2b"'; then
	tap_ok "a poll from an agent the server does not know gets ReportFullState, and the full state is recorded"
else
	tap_not_ok "a poll from an agent the server does not know gets ReportFullState, and the full state is recorded" \
		"$(cat "$T/hb.out")"
fi

# ---------------------------------------------------------------------------
# Malformed messages: BadRequest and a log line; the server keeps serving.

bad_uid() {
	local n=$1 uid=$2 before out
	before=$(log_lines)
	agent "$P" 3 --uid "$uid" --count 1 --no-disconnect --retries 0 >"$T/bad$n.out" 2>&1
	out=$(line "$T/bad$n.out" '^reply n=1 ')
	wait_for 5 logged_since "$before" "instance_uid of $n bytes"
	if [ "$(kv http <<<"$out")" = 400 ] && [ "$(kv error_type <<<"$out")" = BadRequest ] &&
		log_since "$before" | grep -q "BadRequest.*instance_uid of $n bytes"; then
		tap_ok "an instance_uid of $n bytes gets HTTP 400 BadRequest and a log line"
	else
		tap_not_ok "an instance_uid of $n bytes gets HTTP 400 BadRequest and a log line" \
			"$(cat "$T/bad$n.out")" "log: $(log_since "$before")"
	fi
}
bad_uid 15 0193a5c00000700080000000000001
bad_uid 17 0193a5c000007000800000000000000101
tap_result "vigil-cp still serves after the wrong instance_uid lengths" "$(alive && echo 0 || echo 1)" \
	"$(cat "$T/alive.out" 2>/dev/null)"

# raw_case NAME FILE [opamp_agent options]: HTTP 400 (or what WANT lists)
# and a log line that says so (and matches LOGRE, when set).
raw_case() {
	local name=$1 file=$2 before out http
	shift 2
	before=$(log_lines)
	agent "$P" 3 --raw "$file" "$@" >"$T/raw.out" 2>&1
	out=$(line "$T/raw.out" '^reply n=1 ')
	http=$(kv http <<<"$out")
	wait_for 5 logged_since "$before" " $http[: ]"
	if [[ " ${WANT:-400} " == *" $http "* ]] && log_since "$before" | grep -E " $http[: ]" | grep -qE "${LOGRE:-.}"; then
		tap_ok "$name"
	else
		tap_not_ok "$name" "$(cat "$T/raw.out")" "log: $(log_since "$before")"
	fi
}

hwm0=$(awk '/^VmHWM:/ { print $2 }' "/proc/$CP_PID/status" 2>/dev/null)
# A valid message cut in the middle of instance_uid: tag 1, length 16, 8 bytes.
printf '\x0a\x10\x01\x93\xa5\xc0\x00\x00\x70\x00' >"$T/truncated.pb"
LOGRE=BadRequest raw_case "a truncated protobuf gets HTTP 400 and a log line" "$T/truncated.pb"
# Eleven 0xff bytes: a varint that never ends within 64 bits.
printf '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff' >"$T/garbage.pb"
LOGRE=BadRequest raw_case "garbage (an endless varint) gets HTTP 400 and a log line" "$T/garbage.pb"
# An empty body parses as an AgentToServer with no instance_uid.
: >"$T/empty.pb"
LOGRE=BadRequest raw_case "an empty body (no instance_uid) gets HTTP 400 and a log line" "$T/empty.pb"
# "Content-Encoding: gzip" on bytes that are not gzip.
printf '\x0a\x10\x01\x93\xa5\xc0\x00\x00\x70\x00\x80\x00\x00\x00\x00\x00\x00\x07\x10\x00' >"$T/plain.pb"
raw_case "a body that claims gzip but is not gets HTTP 400 and a log line" "$T/plain.pb" --content-encoding gzip
# 64 MiB of zeros in 64 KiB of gzip: over OPAMPSRV_MAX_MESSAGE once inflated.
head -c $((64 << 20)) /dev/zero | gzip -9 >"$T/bomb.gz"
WANT="400 413" raw_case "a gzip bomb (64 KiB inflating to 64 MiB) is refused (400/413) and logged" "$T/bomb.gz" \
	--content-encoding gzip
# 5 MiB that is not compressed: over the limit before any parsing.
head -c $((5 << 20)) /dev/zero >"$T/big.pb"
WANT=413 raw_case "a 5 MiB body is refused with 413 and logged" "$T/big.pb"
# The spec: servers MUST honour Content-Encoding; one they do not know is refused, not guessed.
WANT=415 raw_case "an unknown Content-Encoding (br) is refused with 415 and logged" "$T/plain.pb" --content-encoding br
WANT=415 raw_case "a Content-Type other than application/x-protobuf is refused with 415 and logged" "$T/plain.pb" \
	--content-type text/plain
hwm1=$(awk '/^VmHWM:/ { print $2 }' "/proc/$CP_PID/status" 2>/dev/null)
if alive && [ -n "$hwm0" ] && [ -n "$hwm1" ] && [ $((hwm1 - hwm0)) -lt $((48 << 10)) ]; then
	tap_ok "vigil-cp still serves after the malformed bodies, its peak RSS grown by less than 48 MiB (the bomb inflates to 64) ($hwm0 -> $hwm1 kB)"
else
	tap_not_ok "vigil-cp still serves after the malformed bodies, its peak RSS grown by less than 48 MiB (the bomb inflates to 64) (${hwm0:-?} -> ${hwm1:-?} kB)" \
		"$(cat "$T/alive.out" 2>/dev/null)"
fi

# ---------------------------------------------------------------------------
# gzip on and off.

gz_case() {
	local name=$1 want_enc=$2 out
	shift 2
	agent "$P" 1 --uid "$UID1" --count 2 --poll 50 --no-disconnect "$@" >"$T/gz.out" 2>&1
	out=$(grep '^reply ' "$T/gz.out")
	if [ "$(grep -c ' http=200 .* decode=ok ' <<<"$out")" = 2 ] && [ "$(grep -c " enc=$want_enc " <<<"$out")" = 2 ]; then
		tap_ok "$name"
	else
		tap_not_ok "$name" "$(cat "$T/gz.out")"
	fi
}
gz_case "gzip on: gzip requests are read and replies come back gzip" gzip --gzip
gz_case "gzip off: plain requests, plain replies" identity
gz_case "gzip requests without Accept-Encoding get plain replies" identity --gzip-request

# ---------------------------------------------------------------------------
# A signed policy, assigned, arrives as the remote config.

cp_policy "$T/p1.yaml" 1 web && cp_sign "$P" "$T/p1.yaml"
cp_policy "$T/p2.yaml" 2 batch && cp_sign "$P" "$T/p2.yaml"
H1=$(cp_config_hash "$T/p1.yaml" "$T/p1.yaml.sig")
H2=$(cp_config_hash "$T/p2.yaml" "$T/p2.yaml.sig")
if vctl "$P" policy upload "$T/p1.yaml" "$T/p1.yaml.sig" >"$T/up.out" 2>&1 &&
	vctl "$P" assign 1 --selector vigil.tenant-set=blue >>"$T/up.out" 2>&1; then
	tap_ok "vigilctl uploads a signed policy (serial 1) and assigns it to vigil.tenant-set=blue"
else
	tap_not_ok "vigilctl uploads a signed policy (serial 1) and assigns it to vigil.tenant-set=blue" "$(cat "$T/up.out")"
fi

mkdir -p "$T/save1"
agent "$P" 1 --uid "$UID1" --attr host.name=h1 --label env=it --label vigil.tenant-set=blue --poll 100 --count 4 \
	--save "$T/save1" --no-disconnect >"$T/rc.out" 2>&1
rc1=$(grep -m1 '^reply .* remote_config_hash=[0-9a-f]' "$T/rc.out")
if [ -n "$rc1" ] && [ "$(kv remote_config_hash <<<"$rc1")" = "$H1" ] && [ "$(kv hash_ok <<<"$rc1")" = 1 ]; then
	tap_ok "the assigned policy arrives as a remote config whose config_hash is SHA-256 over the sorted map (openssl)"
else
	tap_not_ok "the assigned policy arrives as a remote config whose config_hash is SHA-256 over the sorted map (openssl)" \
		"expected $H1" "$(cat "$T/rc.out")"
fi
if cmp -s "$T/save1/policy.yaml" "$T/p1.yaml" && cmp -s "$T/save1/policy.yaml.sig" "$T/p1.yaml.sig" &&
	openssl cms -verify -binary -inform DER -in "$T/save1/policy.yaml.sig" -content "$T/save1/policy.yaml" \
		-CAfile "$P/policy-ca.pem" -purpose any -out /dev/null 2>"$T/cms.err"; then
	tap_ok "policy.yaml and policy.yaml.sig arrive byte for byte as uploaded, and the signature verifies with openssl"
else
	tap_not_ok "policy.yaml and policy.yaml.sig arrive byte for byte as uploaded, and the signature verifies with openssl" \
		"$(cat "$T/cms.err")" "$(ls -l "$T/save1")"
fi
nrc=$(grep -c '^reply .* remote_config_hash=[0-9a-f]' "$T/rc.out")
applied=$(line "$T/rc.out" '^send .* rcs=APPLIED ')
if [ "$nrc" = 1 ] && [ -n "$applied" ]; then
	tap_ok "the client reports APPLIED with the hash, and later polls do not get the config again"
else
	tap_not_ok "the client reports APPLIED with the hash, and later polls do not get the config again" \
		"$(cat "$T/rc.out")"
fi
j=$(agent_json "$UID1")
if jq_is "$j" ".remote_config_status == \"APPLIED\" and .remote_config_hash == \"$H1\" and .assigned_serial == 1"; then
	tap_ok "the server records APPLIED and the hash, and names serial 1 as assigned"
else
	tap_not_ok "the server records APPLIED and the hash, and names serial 1 as assigned" "$j"
fi

# The same hash from a new process (an agent restarted with its saved policy): not resent.
agent "$P" 1 --uid "$UID1" --attr host.name=h1 --label env=it --label vigil.tenant-set=blue --poll 100 --count 2 \
	--save "$T/save1" --resume --no-disconnect >"$T/same.out" 2>&1
if [ "$(grep -c '^reply .* http=200 ' "$T/same.out")" = 2 ] &&
	! grep -q '^reply .* remote_config_hash=[0-9a-f]' "$T/same.out"; then
	tap_ok "an agent that reports the same hash is not sent the config again"
else
	tap_not_ok "an agent that reports the same hash is not sent the config again" "$(cat "$T/same.out")"
fi

# A different hash: resent.
agent "$P" 1 --uid "$UID1" --attr host.name=h1 --label env=it --label vigil.tenant-set=blue --poll 100 --count 2 \
	--report-hash "$(printf '%064d' 0)" --no-disconnect >"$T/diff.out" 2>&1
r=$(line "$T/diff.out" '^reply n=1 ')
if [ "$(kv remote_config_hash <<<"$r")" = "$H1" ]; then
	tap_ok "an agent that reports a different hash is sent the config again"
else
	tap_not_ok "an agent that reports a different hash is sent the config again" "$(cat "$T/diff.out")"
fi

# FAILED is recorded with its reason.
agent "$P" 3 --uid "$UID3" --attr host.name=h3 --label vigil.tenant-set=blue --poll 100 --count 3 --fail-config \
	--no-disconnect >"$T/fail.out" 2>&1
j=$(agent_json "$UID3")
if grep -q '^send .* rcs=FAILED ' "$T/fail.out" &&
	jq_is "$j" ".remote_config_status == \"FAILED\" and (.last_error | test(\"fail-config\"))"; then
	tap_ok "a client that fails the config reports FAILED, and the server records it with the reason"
else
	tap_not_ok "a client that fails the config reports FAILED, and the server records it with the reason" \
		"$(cat "$T/fail.out")" "$j"
fi

# A newer assignment wins: the agent on H1 is offered H2.
if vctl "$P" policy upload "$T/p2.yaml" "$T/p2.yaml.sig" >"$T/up2.out" 2>&1 &&
	vctl "$P" assign 2 --selector env=it >>"$T/up2.out" 2>&1; then
	agent "$P" 1 --uid "$UID1" --attr host.name=h1 --label env=it --label vigil.tenant-set=blue --poll 100 \
		--count 2 --save "$T/save1" --resume --no-disconnect >"$T/new.out" 2>&1
	r=$(grep -m1 '^reply .* remote_config_hash=[0-9a-f]' "$T/new.out")
	if [ "$(kv remote_config_hash <<<"$r")" = "$H2" ] && cmp -s "$T/save1/policy.yaml" "$T/p2.yaml"; then
		tap_ok "a newer assignment (serial 2 to env=it) replaces the config of an agent that had serial 1"
	else
		tap_not_ok "a newer assignment (serial 2 to env=it) replaces the config of an agent that had serial 1" \
			"$(cat "$T/new.out")"
	fi
else
	tap_not_ok "a newer assignment (serial 2 to env=it) replaces the config of an agent that had serial 1" \
		"$(cat "$T/up2.out")"
fi

# ---------------------------------------------------------------------------
# Identity: an instance_uid belongs to the certificate it first came with.

agent "$P" 2 --uid "$UID1" --count 1 --no-disconnect --retries 0 >"$T/steal.out" 2>&1
r=$(line "$T/steal.out" '^reply n=1 ')
j=$(agent_json "$UID1")
if [ "$(kv http <<<"$r")" = 400 ] && jq_is "$j" '(.certificate.subject | test("CN=agent1")) and .description.identifying["host.name"] == "h1"'; then
	tap_ok "another certificate (agent2) claiming agent1's instance_uid is refused, and the record is untouched"
else
	tap_not_ok "another certificate (agent2) claiming agent1's instance_uid is refused, and the record is untouched" \
		"$(cat "$T/steal.out")" "$j"
fi

# ---------------------------------------------------------------------------
# agent_disconnect.

agent "$P" 2 --uid "$UID4" --attr host.name=h4 --poll 100 --count 2 >"$T/disc.out" 2>&1
j=$(agent_json "$UID4")
if grep -q '^send .* disconnect=1 ' "$T/disc.out" && grep -q '^reply n=3 .* http=200 ' "$T/disc.out" &&
	jq_is "$j" '.disconnected == true'; then
	tap_ok "agent_disconnect in the last message is recorded"
else
	tap_not_ok "agent_disconnect in the last message is recorded" "$(cat "$T/disc.out")" "$j"
fi
agent "$P" 2 --uid "$UID4" --attr host.name=h4 --count 1 --no-disconnect >"$T/back.out" 2>&1
j=$(agent_json "$UID4")
if jq_is "$j" '.disconnected == false'; then
	tap_ok "an agent that speaks again after agent_disconnect is connected again"
else
	tap_not_ok "an agent that speaks again after agent_disconnect is connected again" "$(cat "$T/back.out")" "$j"
fi

# ---------------------------------------------------------------------------
# Restarts lose nothing, and a running client reconnects.

# snapshot: agents (without what moves: last_seen, sequence_num), policies, assignments.
snapshot() {
	{
		vctl "$P" agents | jq -S '[.agents[] | del(.last_seen, .sequence_num, .disconnected)]'
		vctl "$P" policy list | jq -S .
		vctl "$P" assignments | jq -S .
	} 2>&1
}

mkdir -p "$T/save5"
# Started directly, not through a function: SIGTERM must reach opamp_agent, not a subshell.
"$OPAMP_AGENT" --server "$CP_URL" --cert "$P/agent2.pem" --key "$P/agent2.key" --ca "$P/server-ca.pem" \
	--uid "$UID5" --attr host.name=h5 --label env=it --label vigil.tenant-set=blue --poll 200 --backoff-max 400 \
	--timeout 2000 --save "$T/save5" >"$T/long.out" 2>&1 &
LONG_PID=$!
SPAWNED+=("$LONG_PID")
# settled: the policy applied, APPLIED reported, one poll more
wait_for 20 grep -q '^apply .* result=applied' "$T/long.out"
n=$(grep -c '^reply .* http=200 ' "$T/long.out")
wait_for 20 count_ge $((n + 2)) "$T/long.out" '^reply .* http=200 '
before=$(snapshot)
nagents=$(jq 'length' <<<"$(vctl "$P" agents | jq '.agents')" 2>/dev/null)

cp_stop TERM
n_before=$(grep -c '^reply ' "$T/long.out")
wait_for 10 grep -q '^fail ' "$T/long.out"
cp_start "$P" "$DB" "$LOG"
if cp_wait_ready "$P"; then
	after=$(snapshot)
	if [ "$before" = "$after" ] && [ "${nagents:-0}" -ge 6 ]; then
		tap_ok "after SIGTERM and a restart, agents ($nagents), policies and assignments are all there"
	else
		tap_not_ok "after SIGTERM and a restart, agents (${nagents:-?}), policies and assignments are all there" \
			"$(diff <(echo "$before") <(echo "$after") | head -40)"
	fi
else
	tap_not_ok "after SIGTERM and a restart, agents, policies and assignments are all there" "$(tail -5 "$LOG")"
	fail_rest "vigil-cp did not restart"
fi

answered_after() { tail -n +"$(($1 + 1))" "$T/long.out" | grep -q '^reply .* http=200 '; }
wait_for 15 answered_after "$(grep -n '^fail ' "$T/long.out" | tail -1 | cut -d: -f1)"
if grep -q '^fail ' "$T/long.out" && tail -n +"$((n_before + 1))" "$T/long.out" | grep -q '^reply .* http=200 '; then
	tap_ok "a polling client sees the outage, retries with backoff and is answered again after the restart"
else
	tap_not_ok "a polling client sees the outage, retries with backoff and is answered again after the restart" \
		"$(tail -20 "$T/long.out")"
fi
first_after=$(tail -n +"$((n_before + 1))" "$T/long.out" | grep -m1 '^reply .* http=200 ')
# (A message the server took but could not answer as it stopped comes again
# with the same number, and ReportFullState is right then: required to be
# absent only when the first failure is a refused connection, a message the
# server never saw.)
first_fail=$(grep -m1 '^fail ' "$T/long.out")
if [ "$(kv flags <<<"$first_after")" = 0x0 ] || [[ $first_fail != *"Couldn't connect"* ]]; then
	tap_ok "the restarted server knows the client's sequence_num: no ReportFullState after the outage"
else
	tap_not_ok "the restarted server knows the client's sequence_num: no ReportFullState after the outage" \
		"$first_fail" "$first_after"
fi

# The polling client is held still (SIGSTOP, and a second for a request
# it had sent) from the snapshot to the restart: a status it reported in
# between would be newer after the restart, not lost.
kill -STOP "$LONG_PID" 2>/dev/null
sleep 1
before=$(snapshot)
cp_stop KILL
cp_start "$P" "$DB" "$LOG"
if cp_wait_ready "$P"; then
	after=$(snapshot)
	kill -CONT "$LONG_PID" 2>/dev/null
	if [ "$before" = "$after" ] && check=$(backend_check "$DB"); then
		tap_ok "after kill -9 and a restart, nothing is lost and the database passes its integrity check"
	else
		tap_not_ok "after kill -9 and a restart, nothing is lost and the database passes its integrity check" \
			"$(diff <(echo "$before") <(echo "$after") | head -40)" "$check"
	fi
else
	tap_not_ok "after kill -9 and a restart, nothing is lost and the database passes its integrity check" "$(tail -5 "$LOG")"
	fail_rest "vigil-cp did not restart"
fi
kill -CONT "$LONG_PID" 2>/dev/null

# the client is answered by the server restarted after kill -9
lines=$(wc -l <"$T/long.out")
wait_for 15 answered_after "$lines"
kill -TERM "$LONG_PID"
wait "$LONG_PID"
long_rc=$?
j=$(agent_json "$UID5")
if [ "$long_rc" = 0 ] && tail -2 "$T/long.out" | grep -q '^reply .* http=200 ' && jq_is "$j" '.disconnected == true'; then
	tap_ok "SIGTERM makes the client send agent_disconnect, which the restarted server records"
else
	tap_not_ok "SIGTERM makes the client send agent_disconnect, which the restarted server records" \
		"rc $long_rc" "$(tail -6 "$T/long.out")" "$j"
fi
if jq_is "$j" ".remote_config_status == \"APPLIED\" and .remote_config_hash == \"$H2\"" &&
	cmp -s "$T/save5/policy.yaml" "$T/p2.yaml"; then
	tap_ok "the client that lived through both restarts runs the newest assigned policy"
else
	tap_not_ok "the client that lived through both restarts runs the newest assigned policy" "$j"
fi

# ---------------------------------------------------------------------------
# Keep-alive, and the log.

agent "$P" 1 --uid "$UID1" --count 5 --poll 20 --no-disconnect >"$T/ka.out" 2>&1
if [ "$(grep -c '^reply .* http=200 .* newconn=0 ' "$T/ka.out")" = 4 ]; then
	tap_ok "one keep-alive connection carries every poll of a client"
else
	tap_not_ok "one keep-alive connection carries every poll of a client" "$(cat "$T/ka.out")"
fi

if ! grep -qiE 'BEGIN (EC |RSA )?PRIVATE KEY|sanitizer|runtime error' "$LOG"; then
	tap_ok "vigil-cp's log shows no key material and no sanitizer report"
else
	tap_not_ok "vigil-cp's log shows no key material and no sanitizer report" "$(grep -iE 'PRIVATE KEY|sanitizer|runtime error' "$LOG" | head -5)"
fi

cp_stop TERM
if [ "$CP_RC" = 0 ]; then
	tap_ok "vigil-cp exits 0 on SIGTERM"
else
	tap_not_ok "vigil-cp exits 0 on SIGTERM" "exit code $CP_RC" "$(tail -5 "$LOG")"
fi

# ---------------------------------------------------------------------------
# Overload: 503 with Retry-After; the client waits that long, as opamp-go
# does, and is served once there is room.  A second vigil-cp that serves two
# connections at once; two idle keep-alive clients hold them.

CP_PORT=$(free_port)
cp_start "$P" "$T/cp2.db" "$T/cp2.log" --max-connections 2 --retry-after 1
if cp_wait_ready "$P"; then
	HOLD=()
	for u in "$UID1" "$UID2"; do
		"$OPAMP_AGENT" --server "$CP_URL" --cert "$P/agent1.pem" --key "$P/agent1.key" --ca "$P/server-ca.pem" \
			--uid "$u" --poll 60000 --no-disconnect >"$T/hold-$u.out" 2>&1 &
		HOLD+=("$!")
		SPAWNED+=("$!")
	done
	# both connected and idle (and the admin API's probe gone)
	wait_for 10 grep -q '^reply n=1 .* http=200 ' "$T/hold-$UID1.out"
	wait_for 10 grep -q '^reply n=1 .* http=200 ' "$T/hold-$UID2.out"
	sleep 0.3
	agent "$P" 1 --uid "$UID3" --count 1 --no-disconnect --backoff-max 300 >"$T/ovl.out" 2>&1 &
	OVL=$!
	SPAWNED+=("$OVL")
	# refused at least once, then a Retry-After's wait more
	wait_for 10 grep -q '^fail .* http=503 ' "$T/ovl.out"
	sleep 1.2
	kill -TERM "${HOLD[@]}"
	wait "$OVL"
	r=$(grep -m1 '^reply .* http=503 ' "$T/ovl.out")
	f=$(grep -m1 '^fail ' "$T/ovl.out")
	if [ "$(kv retry_after <<<"$r")" = 1 ] && [ "$(kv retry_in_ms <<<"$f")" -ge 1000 ] &&
		grep -q '^reply .* http=200 ' "$T/ovl.out"; then
		tap_ok "over --max-connections: 503 with Retry-After: 1, which the client honours, then 200"
	else
		tap_not_ok "over --max-connections: 503 with Retry-After: 1, which the client honours, then 200" \
			"$(cat "$T/ovl.out")" "$(tail -5 "$T/cp2.log")"
	fi
else
	tap_not_ok "over --max-connections: 503 with Retry-After: 1, which the client honours, then 200" "$(tail -5 "$T/cp2.log")"
fi
cp_stop TERM

tap_done
