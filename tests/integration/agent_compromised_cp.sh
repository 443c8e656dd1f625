#!/bin/bash
# tests/integration/agent_compromised_cp.sh - vigild against a COMPROMISED
# control plane: the real vigil-cp, whose database (SQLite, or PostgreSQL
# when pg_agent_compromised_cp.sh runs it: lib_backend.sh) an attacker
# rewrote.  vigil-cp refuses hostile uploads itself (the admin API checks
# the signature, the YAML and the serial), so the attacker goes around it:
# vigil-cp is stopped, a policy row it would never have stored and an
# assignment of it to this agent are written with the sqlite3 CLI (psql), and
# vigil-cp is started again on the same database (it caches policies and
# assignments; a restart loses nothing else), so that it sends what the
# attacker wrote.  The schema stops none of it: policies(serial) only has
# to be unique and positive and yaml/sig non-NULL (the unsigned policy's
# signature is an empty blob), an assignment must name a stored
# serial, the "serials only move forward" rule is vigil-cp's code, not a
# constraint, and the config hash vigil-cp sends is computed from the row's
# bytes when it loads them.  The admin API's refusal of each hostile upload
# is checked first (the uploads go straight to the API with curl, since
# vigilctl refuses an empty signature file and a policy over 1 MiB itself).
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane
#
# First a good policy (serial 1, tenant "tenanta", the burner's cgroup) is
# uploaded and assigned with vigilctl and applied.  Then, one at a time,
# with the hostile policies naming another tenant ("evil") for the same
# cgroup so that one wrongly applied would show in the profiles:
#   unsigned         an empty signature
#   untrusted        signed by a key from a CA --policy-trust does not hold
#   tampered         signed by the trusted signer, then one byte changed
#   invalid YAML     a YAML syntax error, validly signed
#   oversize         1.5 MiB (over the agent's POLICY_MAX_SIZE, 1 MiB; under
#                    the store's 2 MiB), validly signed
#   replayed         after a good serial 7 (tenant "tenantb") is applied, a
#                    new assignment makes vigil-cp send the original serial-1
#                    row again, bytes and signature as they were signed
#                    (the admin API would let an administrator assign an
#                    old serial too; the agent refuses it all the same)
# Each time the agent reports FAILED with the reason (vigilctl agent ID:
# remote_config_status and last_error), vigilctl still shows the serial in
# force as applied, the state directory's last-known-good file is unchanged
# byte for byte, and profiles written after the refusal carry the tenant in
# force and never "evil" (sampling never stopped).  At the end: every
# vigil-cp run exited 0 on SIGTERM and logged no store, internal or OpAMP
# error, and vigild exits 0 on SIGTERM with no worker lost.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_backend.sh"

CPD=$B/vigil-cp
CTL=$B/vigilctl
JG=$B/tests/tools/json_get
CASES=(unsigned untrusted tampered invalid-yaml oversize replayed)
NAMES=(
	"vigil-cp and vigild --control-plane start; the agent shows up in vigilctl"
	"a good policy (serial 1, tenant tenanta) assigned with vigilctl is APPLIED; profiles carry tenanta"
	"vigil-cp's admin API refuses each hostile upload itself: the attacker has to write the database"
)
for c in "${CASES[@]}"; do
	NAMES+=("$c policy written into vigil-cp's database: vigil-cp sends it, the agent reports FAILED with the reason"
		"$c: the policy in force is kept (vigilctl, state directory) and sampling goes on with its tenant")
	[ "$c" = oversize ] &&
		NAMES+=("a good policy (serial 7, tenant tenantb) assigned with vigilctl is APPLIED; profiles carry tenantb")
done
NAMES+=("every vigil-cp run exited 0 on SIGTERM and logged no store, internal or OpAMP error"
	"vigild never restarted a worker, and exits 0 on SIGTERM")
N=${#NAMES[@]}
tap_plan $N

require_file "$CPD" "${NAMES[@]}" && require_file "$CTL" "${NAMES[@]}" && require_file "$JG" "${NAMES[@]}"
[ "$BACKEND" != sqlite ] || command -v sqlite3 >/dev/null || {
	for n in "${NAMES[@]}"; do tap_not_ok "$n" "the sqlite3 CLI is not installed"; done
	tap_done
}
require_bpf "${NAMES[@]}"
jg() { "$JG" "$1"; }
CGROOT=$(cgroup2_root)

# ---------------------------------------------------------------------------
# PKI, as agent_cp.sh makes it: the server's, agents', admins' CAs, the
# policy CA (policy EKU) and another CA the agent does not trust.

P=$T/pki
mkdir -p "$P"
cd "$P" || exit 1
setup() {
	mkca server && mkca agent && mkca admin && mkca policy && mkca other || return 1
	leaf server server localhost "extendedKeyUsage = serverAuth" \
		"subjectAltName = IP:127.0.0.1, DNS:localhost" &&
		leaf agent host1 host1 "extendedKeyUsage = clientAuth" &&
		leaf admin alice alice "extendedKeyUsage = clientAuth" &&
		leaf policy signer "policy signer" \
			"extendedKeyUsage = 2.25.227699756064508679566492730626946662765" &&
		leaf other rogue "rogue signer" "extendedKeyUsage = 2.25.227699756064508679566492730626946662765" ||
		return 1
	chmod 600 ./*.key
}
if ! setup; then
	for n in "${NAMES[@]}"; do tap_not_ok "$n" "the test PKI could not be made"; done
	tap_done
fi
sign() { # sign IN OUT SIGNER
	tap_quiet openssl cms -sign -binary -md sha256 -outform DER -in "$1" -signer "$3.pem" -inkey "$3.key" -out "$2"
}

# A tenant cgroup with a burner in it, for the policies to name.
CG=$CGROOT/vigil-it-$$-ccp
ccp_cleanup() {
	lib_cleanup
	for _ in 1 2 3 4 5; do rmdir "$CG" 2>/dev/null && break; sleep 0.2; done
}
trap ccp_cleanup EXIT
mkdir "$CG" || { for n in "${NAMES[@]}"; do tap_not_ok "$n" "cannot make $CG"; done; tap_done; }
spawn sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --threads 1 --seconds 600' sh "$CG" "$WLD/cpusplit" \
	>/dev/null
policy() { # policy SERIAL TENANT FILE
	cat >"$3" <<EOF2
version: 1
serial: $1
defaults:
  hz: {min: 1, max: 99, start: 19}
tenants:
  - name: $2
    cgroups: ["$CG"]
EOF2
}

# The policies, good and hostile.  Hostile ones name tenant "evil".
policy 1 tenanta p1.yaml && sign p1.yaml p1.sig signer &&
	policy 7 tenantb p7.yaml && sign p7.yaml p7.sig signer &&
	policy 2 evil p2.yaml && : >p2.sig &&
	policy 3 evil p3.yaml && sign p3.yaml p3.sig rogue &&
	policy 4 evil p4.yaml && sign p4.yaml p4.sig signer &&
	sed -i 's/start: 19/start: 99/' p4.yaml &&
	printf 'version: 1\nserial: 5\ndefaults:\n  hz: {min: 1, max: 99, start: 19\ntenants:\n  - name: evil\n' \
		>p5.yaml && sign p5.yaml p5.sig signer &&
	policy 6 evil p6.yaml &&
	head -c $((3 << 19)) /dev/zero | tr '\0' '#' | fold -w 79 >>p6.yaml && echo >>p6.yaml &&
	sign p6.yaml p6.sig signer
st=$?
# The tampered file differs from what was signed by exactly one byte.
[ "$(cmp -l <(policy 4 evil /dev/stdout) p4.yaml | wc -l)" = 1 ] || st=1
SIZE6=$(stat -c %s p6.yaml 2>/dev/null || echo 0)
[ "$SIZE6" -gt $((1 << 20)) ] && [ "$SIZE6" -lt $((2 << 20)) ] || st=1
if [ $st -ne 0 ]; then
	for n in "${NAMES[@]}"; do tap_not_ok "$n" "the test policies could not be made (p6.yaml: $SIZE6 bytes)"; done
	tap_done
fi

# ---------------------------------------------------------------------------
# vigil-cp on a free loopback port, one database for all its runs.

PORT=$(free_port)
URL=https://127.0.0.1:$PORT
DB=$T/cp.db
CPLOG=$T/cp.log
CP_RCS=()
start_cp() {
	echo "--- vigil-cp started" >>"$CPLOG"
	spawn "$CPD" --listen "127.0.0.1:$PORT" --cert "$P/server.pem" --key "$P/server.key" \
		--agent-ca "$P/agent-ca.pem" --admin-ca "$P/admin-ca.pem" --policy-trust "$P/policy-ca.pem" \
		--db "$(cp_db "$DB")" --log-level debug 2>>"$CPLOG"
	CP_PID=$SPAWNED_PID
}
stop_cp() {
	kill -TERM "$CP_PID"
	wait "$CP_PID" 2>/dev/null
	CP_RCS+=($?)
}
ctl() {
	"$CTL" --server "$URL" --cert "$P/alice.pem" --key "$P/alice.key" --ca "$P/server-ca.pem" --json "$@" \
		>"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
cp_ready() {
	for _ in $(seq 100); do
		kill -0 "$CP_PID" 2>/dev/null || return 1
		ctl policy list
		[ "$RC" -ne 69 ] && return 0
		sleep 0.1
	done
	return 1
}
# field F: F of this agent as `vigilctl agent ID --json` shows it (after ctl agent).
field() { echo "$OUT" | jg "$1" 2>/dev/null; }
diag() {
	echo "vigilctl exit $RC: $(echo "$OUT" | grep -E '"(applied_serial|assigned_serial|remote_config_status|last_error)"') $ERR"
	echo "vigil-cp:"
	tail -4 "$CPLOG"
	echo "vigild:"
	grep -E 'control plane|policy' "$LOG" 2>/dev/null | tail -6
}

start_cp
cp_ready
st=$?

LOG=$T/vigild.log
OUTD=$T/profiles
STATE=$T/state
HOST=$(hostname)
SEL="host.name=$HOST"
cd "$T" || exit 1
vigild_start "$LOG" --control-plane "https://localhost:$PORT" --cert "$P/host1.pem" --key "$P/host1.key" \
	--ca "$P/server-ca.pem" --policy-trust "$P/policy-ca.pem" --state-dir "$STATE" --poll-interval 1 \
	--interval 1 --no-top --output "$OUTD"
[ $st -eq 0 ] && vigild_wait_ready 30
st=$?
have_agent() {
	ctl agents
	AUID=$(echo "$OUT" | jg '.agents[0].uid' 2>/dev/null)
	[ -n "$AUID" ] && echo "$OUT" | grep -q "\"host.name\": *\"$HOST\""
}
[ $st -eq 0 ] && wait_for 15 have_agent
st=$?
tap_result "${NAMES[0]}" $st "$(diag)" "$(tail -5 "$LOG")"
if [ $st -ne 0 ]; then
	for n in "${NAMES[@]:1}"; do tap_not_ok "$n" "not run: vigil-cp or vigild did not start"; done
	tap_done
fi

# tenant_profiles SINCE_MS TENANT FORBIDDEN: some profile begun after
# SINCE_MS has samples of TENANT, and none of those has samples of FORBIDDEN
# (the first such file in $BAD).
tenant_profiles() {
	local f n=0
	for f in $(profiles_begun_after "$OUTD" "$1"); do
		[ "$(pq total --label tenant="$3" "$f" 2>/dev/null || echo 0)" -eq 0 ] || { BAD=$f; return 2; }
		[ "$(pq total --label tenant="$2" "$f" 2>/dev/null || echo 0)" -gt 0 ] && n=$((n + 1))
	done
	[ "$n" -ge 1 ]
}
# applied SERIAL: vigilctl shows the agent APPLIED with SERIAL.
applied() {
	ctl agent "$AUID"
	[ "$(field .applied_serial)" = "$1" ] && [ "$(field .remote_config_status)" = APPLIED ]
}
# good SERIAL TENANT FORBIDDEN: upload and assign with vigilctl, wait until
# applied and profiles carry TENANT; the state directory's file kept as $T/lkg.
good() {
	local since
	ctl policy upload "$P/p$1.yaml" "$P/p$1.sig"
	[ "$RC" -eq 0 ] || return 1
	ctl assign "$1" --selector "$SEL"
	[ "$RC" -eq 0 ] || return 1
	# Profiles are judged from the moment the agent reports the policy
	# applied: one begun between the assignment and that moment holds the
	# previous tenant, and on a loaded host that window outlasts a profile.
	wait_for 15 applied "$1" && grep -q "control plane: policy serial $1 applied" "$LOG" &&
		since=$(now_ms) &&
		wait_for 15 tenant_profiles "$since" "$2" "$3" && cp "$STATE/policy.signed" "$T/lkg" &&
		grep -aqx "serial: $1" "$T/lkg"
}
good 1 tenanta evil
tap_result "${NAMES[1]}" $? "$(diag)"

# Through the front door (the admin API, as vigilctl would call it; vigilctl
# itself refuses an empty signature file and a policy over 1 MiB before
# sending) each hostile policy is refused: 400 for the empty signature,
# 422 for the signature or the YAML, 413 for the size; nothing is stored.
why=
for i in 2 3 4 5 6; do
	printf '{"yaml": "%s", "signature": "%s"}' "$(base64 -w0 "$P/p$i.yaml")" "$(base64 -w0 "$P/p$i.sig")" \
		>"$T/upload.json"
	code=$(curl -sS -o "$T/upload.out" -w '%{http_code}' --cacert "$P/server-ca.pem" --cert "$P/alice.pem" \
		--key "$P/alice.key" -H 'Content-Type: application/json' --data-binary "@$T/upload.json" \
		"$URL/api/v1/policies" 2>&1)
	want=422
	[ "$i" = 2 ] && want=400
	[ "$i" = 6 ] && want=413
	[ "$code" = "$want" ] || why+="p$i.yaml: HTTP $code, not $want; "
	tap_diag "upload of p$i.yaml: HTTP $code: $(jg .error <"$T/upload.out" 2>/dev/null | cut -c1-160)"
done
ctl policy list
[ -z "$why" ] && [ "$(echo "$OUT" | jg '.policies#')" = 1 ]
tap_result "${NAMES[2]}" $? "$why" "$OUT"

# ---------------------------------------------------------------------------
# The attacker's writes: vigil-cp down, rows in, vigil-cp up.

# compromise SQL: stop vigil-cp, run SQL on its database (with the foreign
# keys enforced, as vigil-cp enforces them), start it again (not in a
# subshell: vigil-cp is this shell's child).  1 with $CERR.
compromise() {
	stop_cp
	if ! CERR=$(backend_sql "$DB" "$1" 2>&1); then
		CERR="$BACKEND_NAME: $CERR"
		start_cp
		cp_ready
		return 1
	fi
	start_cp
	cp_ready || { CERR="vigil-cp did not come back"; return 1; }
}
# hostile SERIAL YAML-EXPR SIG-EXPR: a policy row vigil-cp's admin API
# would refuse, and an assignment of it to this agent (the newest wins).
hostile() {
	local now
	now=$(now_ms)
	compromise "INSERT INTO policies (serial, yaml, sig, signer, uploaded_by, uploaded_at)
			VALUES ($1, $2, $3, 'CN=attacker', 'CN=attacker', $now);
		INSERT INTO assignments (selector, serial, assigned_by, assigned_at)
			VALUES ('$SEL', $1, 'CN=attacker', $now);"
}
# refused REASON-ERE: vigilctl shows the agent FAILED with last_error matching.
refused() {
	ctl agent "$AUID"
	[ "$(field .remote_config_status)" = FAILED ] && field .last_error | grep -qE "^$1"
}
# check SERIAL TENANT FORBIDDEN REASON-ERE POLICY: after the attacker's
# write, the uplink received POLICY's bytes (p$POLICY.yaml and .sig, by
# their sizes), the refusal with its reason, then the policy in force kept: still SERIAL at
# vigil-cp, the state directory's file unchanged, vigild alive, profiles
# begun after the refusal of TENANT and none of FORBIDDEN.
NI=3
check() {
	local since st why
	wait_for 20 refused "$4" && grep -qE "policy refused: $4" "$LOG" &&
		grep -qF "a policy arrived ($(stat -c %s "$P/p$5.yaml") bytes, signature $(stat -c %s "$P/p$5.sig") bytes)" \
			"$LOG"
	st=$?
	since=$(now_ms)
	why=$(field .last_error)
	tap_result "${NAMES[$NI]}" $st "$(diag)"
	[ $st -eq 0 ] && tap_diag "last_error: $why"
	BAD=
	ctl agent "$AUID"
	[ "$(field .applied_serial)" = "$1" ] && cmp -s "$STATE/policy.signed" "$T/lkg" && kill -0 "$VIGILD_PID" &&
		wait_for 10 tenant_profiles "$since" "$2" "$3"
	tap_result "${NAMES[$((NI + 1))]}" $? "$(diag)" "$(cmp "$STATE/policy.signed" "$T/lkg" 2>&1)" \
		"${BAD:+a profile with tenant $3: $BAD}"
	NI=$((NI + 2))
}
not_run() {
	tap_not_ok "${NAMES[$NI]}" "$@" "$(diag)"
	tap_not_ok "${NAMES[$((NI + 1))]}" "not run"
	NI=$((NI + 2))
}
run_case() { # run_case SERIAL YAML-EXPR SIG-EXPR REASON-ERE: serial 1 and tenanta in force
	if hostile "$1" "$2" "$3"; then
		check 1 tenanta evil "$4" "$1"
	else
		not_run "$CERR"
	fi
}
rf() { backend_blob "$P/$1"; }

# 1. Unsigned: the policy with an empty signature.
run_case 2 "$(rf p2.yaml)" "$(backend_empty_blob)" 'unsigned: '
# 2. Signed by a key from a CA that --policy-trust does not hold.
run_case 3 "$(rf p3.yaml)" "$(rf p3.sig)" 'untrusted: '
# 3. Signed by the trusted signer, then one byte changed.
run_case 4 "$(rf p4.yaml)" "$(rf p4.sig)" 'digest-mismatch: '
# 4. A valid signature over invalid YAML: the parser's file:line:col.
run_case 5 "$(rf p5.yaml)" "$(rf p5.sig)" 'invalid: policy\.yaml:[0-9]+:[0-9]+: '
# 5. 1.5 MiB, validly signed: over the agent's 1 MiB.
run_case 6 "$(rf p6.yaml)" "$(rf p6.sig)" "oversize: policy\\.yaml is $SIZE6 bytes \\(at most $((1 << 20))\\)"

# 6. The replay: a good serial 7 (tenantb) in force, then the original
# serial-1 row (bytes and signature as signed) assigned again.
good 7 tenantb tenanta
tap_result "${NAMES[$NI]}" $? "$(diag)"
NI=$((NI + 1))
if compromise "INSERT INTO assignments (selector, serial, assigned_by, assigned_at)
	VALUES ('$SEL', 1, 'CN=attacker', $(now_ms));"; then
	check 7 tenantb tenanta 'stale: serial 1 is not newer than the policy in force \(serial 7\)' 1
else
	not_run "$CERR"
fi

# ---------------------------------------------------------------------------
# The end.

stop_cp
# A store or internal error, an OpAMP message that failed or was refused,
# a 500, a crash report.
bad=$(grep -nE '(^|: )store: |internal error|opamp: (message from|BadRequest)|: 500[: ]|Segmentation|Abort|Sanitizer|runtime error' \
	"$CPLOG" | head -5)
ok=0
for rc in "${CP_RCS[@]}"; do [ "$rc" -eq 0 ] || ok=1; done
[ $ok -eq 0 ] && [ -z "$bad" ] && [ "${#CP_RCS[@]}" -eq 7 ]
tap_result "${NAMES[$NI]}" $? "vigil-cp exit codes: ${CP_RCS[*]}" "$bad"
NI=$((NI + 1))

kill -TERM "$VIGILD_PID"
vigild_wait 30
W='was killed by|exited with status|broke the protocol|worker failed'
[ "$VIGILD_RC" -eq 0 ] && ! grep -qE "$W" "$LOG"
tap_result "${NAMES[$NI]}" $? "exit $VIGILD_RC" "$(grep -E "$W" "$LOG" | head -3)" \
	"$(tail -5 "$LOG")"
tap_done
