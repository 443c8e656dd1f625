#!/bin/bash
# tests/integration/agent_csr.sh - certificate rotation through OpAMP's CSR
# flow, with a real vigil-cp and a real vigild on loopback, real mutual TLS
# and a PKI made here with the openssl CLI (lib_cppki.sh).
#
# vigild starts with an agent certificate that lives two minutes, half of
# it gone; vigil-cp signs requests with --issuer-cert/--issuer-key (the
# agent CA).  The agent renews by itself: vigil-cp logs the certificate it
# issued and then a connection presenting it, the agent reports APPLIED,
# sampling never stops, and the new pair lands in the state directory
# (identity.pem, vigil's, 0600); a SIGHUP with the shorter-lived files
# still on disk keeps it, and a restarted vigild uses it.  vigil-cp
# refuses an issuer outside --agent-ca at start, and keeps its issuer when
# a SIGHUP brings a key that does not match.  Then a vigil-cp whose issuer
# is an intermediate its --crl does not cover (what it issues is refused at
# the handshake), and vigild restarted on a fresh short-lived certificate:
# the agent renews, the new connection fails, it goes back to the
# certificate it had, reports FAILED, and sampling goes on.  pg_agent_csr.sh
# runs it all with vigil-cp on PostgreSQL (lib_backend.sh).
#
# It mostly waits on 1 s polls, with deadlines of 10 s or more and a port
# and store of its own: tests/run.sh runs it (and pg_agent_csr.sh) in its
# pool, beside the others.
# run.sh: alongside
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_backend.sh"

CPD=$B/vigil-cp
NAMES=(
	"vigil-cp refuses to start with an issuer that does not chain to --agent-ca (exit 78, the reason said)"
	"vigil-cp starts with --issuer-cert/--issuer-key and says it signs requests"
	"vigild starts with a two-minute certificate past half of its life, and samples"
	"the agent renews by itself: vigil-cp issues a certificate for its subject"
	"the next connection presents the issued certificate (vigil-cp logs its serial and SHA-256)"
	"the agent reports the renewal APPLIED and says the new certificate works"
	"the renewed pair is kept in the state directory: identity.pem, vigil's, 0600, the issued certificate"
	"sampling never stopped across the renewal (profiles kept coming)"
	"SIGHUP with the shorter-lived --cert still on disk: the agent keeps the renewed certificate"
	"vigild restarted: it uses the renewed certificate from the state directory"
	"vigil-cp SIGHUP with an issuer key that does not match: the reload fails, the running configuration stays"
	"a renewal whose certificate the server refuses: the agent goes back to the previous certificate and reports FAILED"
	"after the failed renewal the agent keeps polling with its previous certificate, and sampling goes on"
	"vigild exits 0 on SIGTERM"
)
N=${#NAMES[@]}
tap_plan $N
require_file "$CPD" "${NAMES[@]}"
require_bpf "${NAMES[@]}"
. "$(dirname "$0")/lib_cppki.sh"

# cp_issue takes openssl ca dates: YYYYMMDDHHMMSSZ.
stamp() { date -u -d "@$1" +%Y%m%d%H%M%SZ; }
short_cert() { # short_cert NAME: CN=host1 from agent-ca, 2 minutes, 58 s of it gone (due at once)
	local now
	now=$(date +%s)
	newkey "$CP/$1.key" &&
		quiet openssl req -new -config "$CPCNF" -key "$CP/$1.key" -subj "/O=Vigil test/CN=host1" \
			-out "$CP/$1.csr" &&
		CP_SAN_DNS=host1.vigil.test quiet openssl ca -batch -notext -config "$CPCNF" -name agent-ca \
			-extensions client -startdate "$(stamp $((now - 58)))" -enddate "$(stamp $((now + 62)))" \
			-in "$CP/$1.csr" -out "$CP/$1.pem" &&
		chmod 600 "$CP/$1.key"
}
setup() {
	cp_ca server-ca "Vigil test server CA" && cp_ca agent-ca "Vigil test agent CA" &&
		cp_ca admin-ca "Vigil test admin CA" && cp_ca policy-ca "Vigil test policy CA" || return 1
	newkey "$CP/server.key" &&
		quiet openssl req -new -config "$CPCNF" -key "$CP/server.key" -subj "/O=Vigil test/CN=localhost" \
			-out "$CP/server.csr" &&
		quiet openssl ca -batch -notext -config "$CPCNF" -name server-ca -extensions server \
			-in "$CP/server.csr" -out "$CP/server.pem" || return 1
	# An intermediate under the agent CA: what it issues needs its CRL, which --crl lacks.
	cp_issue agent-ca agent-int v3_ca && cp_crl "$CP/crl.pem" || return 1
	chmod 600 "$CP"/*.key "$CP"/*/ca.key
	short_cert host1
}
if ! setup; then
	for n in "${NAMES[@]}"; do tap_not_ok "$n" "the test PKI could not be made"; done
	tap_done
fi

PORT=$(free_port)
start_cp() { # start_cp LOG ISSUER-CERT ISSUER-KEY [ARGS...]
	local log=$1 ic=$2 ik=$3
	shift 3
	spawn "$CPD" --listen "127.0.0.1:$PORT" --cert "$CP/server.pem" --key "$CP/server.key" \
		--agent-ca "$CP/agent-ca/ca.pem" --admin-ca "$CP/admin-ca/ca.pem" \
		--policy-trust "$CP/policy-ca/ca.pem" --db "$(cp_db "$T/cp.db")" --log-level debug \
		--issuer-cert "$ic" --issuer-key "$ik" --issued-days 1 "$@" 2>"$log"
	CP_PID=$SPAWNED_PID
}
profiles_since() { # profiles_since MS N: at least N profiles begun after MS
	[ "$(find "$OUTD" -maxdepth 1 -name '*.pb.gz' ! -name '.*' -newermt "@$(($1 / 1000 + 1))" | wc -l)" -ge "$2" ]
}
fp() { openssl x509 -outform DER | sha256sum | cut -d' ' -f1; }

"$CPD" --listen "127.0.0.1:$PORT" --cert "$CP/server.pem" --key "$CP/server.key" \
	--agent-ca "$CP/agent-ca/ca.pem" --admin-ca "$CP/admin-ca/ca.pem" --policy-trust "$CP/policy-ca/ca.pem" \
	--db "$(cp_db "$T/cp0.db")" --issuer-cert "$CP/admin-ca/ca.pem" --issuer-key "$CP/admin-ca/ca.key" 2>"$T/cp0.log"
rc=$?
[ $rc -eq 78 ] && grep -q 'does not chain to --agent-ca' "$T/cp0.log"
tap_result "${NAMES[0]}" $? "exit $rc" "$(cat "$T/cp0.log")"

CPLOG=$T/cp.log
cp "$CP/agent-ca/ca.pem" "$T/issuer.pem" && cp "$CP/agent-ca/ca.key" "$T/issuer.key"
start_cp "$CPLOG" "$T/issuer.pem" "$T/issuer.key"
wait_for 10 grep -q "signing agents' certificate requests" "$CPLOG"
tap_result "${NAMES[1]}" $? "$(tail -5 "$CPLOG")"

LOG=$T/vigild.log
OUTD=$T/out
STATE=$T/state
VIGILD_ARGS=(--control-plane "https://localhost:$PORT" --cert "$CP/host1.pem" --key "$CP/host1.key"
	--ca "$CP/server-ca/ca.pem" --policy-trust "$CP/policy-ca/ca.pem" --state-dir "$STATE" --poll-interval 1
	--interval 1 --no-top --output "$OUTD")
cd "$T" || exit 1
OLD_FP=$(fp <"$CP/host1.pem")
START_MS=$(now_ms)
vigild_start "$LOG" "${VIGILD_ARGS[@]}"
vigild_wait_ready 30 && wait_for 10 grep -q 'renewal (CSR flow) due' "$LOG"
tap_result "${NAMES[2]}" $? "$(tail -20 "$LOG")"

issued() { grep -q 'issued a certificate to CN=host1: serial' "$CPLOG"; }
wait_for 25 issued
tap_result "${NAMES[3]}" $? "$(tail -5 "$CPLOG")" "$(grep -i renewal "$LOG")"
line=$(grep -m1 'issued a certificate to' "$CPLOG")
SERIAL=$(echo "$line" | sed -n 's/.*serial \([0-9A-F]*\),.*/\1/p')
NEW_FP=$(echo "$line" | sed -n 's/.*SHA-256 \([0-9a-f]*\),.*/\1/p')
presented() { grep -q "agent certificate CN=host1, serial $SERIAL, SHA-256 $NEW_FP" "$CPLOG"; }
[ -n "$SERIAL" ] && [ ${#NEW_FP} -eq 64 ] && wait_for 10 presented
tap_result "${NAMES[4]}" $? "serial '$SERIAL' fingerprint '$NEW_FP'" "$(grep 'agent certificate' "$CPLOG" | tail -3)"
ROTATED_MS=$(now_ms)

applied() { grep -q 'connection settings APPLIED by CN=host1' "$CPLOG" && grep -q 'the new certificate works' "$LOG"; }
wait_for 10 applied
tap_result "${NAMES[5]}" $? "$(tail -5 "$CPLOG")" "$(grep -i renewal "$LOG")"

kept() {
	[ -f "$STATE/identity.pem" ] && read -r owner mode < <(stat -c '%U %a' "$STATE/identity.pem") &&
		[ "$owner" = vigil ] && [ "$mode" = 600 ] && [ "$(fp <"$STATE/identity.pem")" = "$NEW_FP" ] &&
		openssl pkey -in "$STATE/identity.pem" -noout 2>/dev/null
}
wait_for 10 kept
tap_result "${NAMES[6]}" $? "$(ls -la "$STATE")" "$(grep -i 'state directory' "$LOG")"

both() { profiles_since "$ROTATED_MS" 3 && profiles_since "$START_MS" 5; }
wait_for 10 both && kill -0 "$VIGILD_PID" &&
	! grep -q 'sampling stopped' "$LOG"
tap_result "${NAMES[7]}" $? "$(ls "$OUTD" | wc -l) profiles" "$(tail -5 "$LOG")"

n0=$(grep -c "serial $SERIAL, SHA-256 $NEW_FP" "$CPLOG")
old0=$(grep -c "SHA-256 $OLD_FP" "$CPLOG")
kill -HUP "$VIGILD_PID"
again() { [ "$(grep -c "serial $SERIAL, SHA-256 $NEW_FP" "$CPLOG")" -gt "$n0" ]; }
wait_for 10 grep -q 'keeping the renewed one' "$LOG" && wait_for 10 again &&
	[ "$(grep -c "SHA-256 $OLD_FP" "$CPLOG")" -eq "$old0" ]
tap_result "${NAMES[8]}" $? "$(grep -iE 'renew|cert' "$LOG" | tail -3)" "$(grep 'agent certificate' "$CPLOG" | tail -2)"

kill -TERM "$VIGILD_PID"
vigild_wait 30
LOG=$T/vigild2.log
n0=$(grep -c "serial $SERIAL, SHA-256 $NEW_FP" "$CPLOG")
vigild_start "$LOG" "${VIGILD_ARGS[@]}"
again() { [ "$(grep -c "serial $SERIAL, SHA-256 $NEW_FP" "$CPLOG")" -gt "$n0" ]; }
vigild_wait_ready 30 && grep -q 'using the certificate renewed through the control plane' "$LOG" && wait_for 15 again
tap_result "${NAMES[9]}" $? "$(grep -i 'control plane' "$LOG" | head -5)" "$(grep 'agent certificate' "$CPLOG" | tail -2)"

# The issuer is reloaded on SIGHUP, and a bad one does not replace the good.
cp "$CP/agent-int.key" "$T/issuer.key"
n0=$(grep -c 'CN=host1 (agent): POST /v1/opamp: 200' "$CPLOG")
kill -HUP "$CP_PID"
served() { [ "$(grep -c 'CN=host1 (agent): POST /v1/opamp: 200' "$CPLOG")" -ge $((n0 + 2)) ]; }
wait_for 10 grep -q 'reload failed, keeping the running configuration: --issuer-key .* does not match' "$CPLOG" &&
	wait_for 10 served && kill -0 "$CP_PID"
tap_result "${NAMES[10]}" $? "$(grep -iE 'SIGHUP|reload' "$CPLOG")"

# A vigil-cp whose issuer (an intermediate under the agent CA) has no CRL in
# --crl: what it issues fails the handshake (unable to get certificate CRL).
kill -TERM "$CP_PID"
wait "$CP_PID" 2>/dev/null
CPLOG=$T/cp2.log
start_cp "$CPLOG" "$CP/agent-int.pem" "$CP/agent-int.key" --crl "$CP/crl.pem"
wait_for 10 grep -q "signing agents' certificate requests" "$CPLOG"
# vigild again, with a fresh short-lived certificate and no renewed one kept.
kill -TERM "$VIGILD_PID"
vigild_wait 30
rm -f "$STATE/identity.pem"
short_cert host1 && HOST1_FP=$(fp <"$CP/host1.pem")
LOG=$T/vigild3.log
vigild_start "$LOG" "${VIGILD_ARGS[@]}"
FAIL_MS=$(now_ms)
reverted() {
	grep -q 'connection settings FAILED by CN=host1' "$CPLOG" &&
		grep -q 'the connection with the new certificate failed' "$LOG"
}
wait_for 30 reverted && grep -q 'issued a certificate to' "$CPLOG" && grep -q 'unable to get certificate CRL' "$CPLOG"
tap_result "${NAMES[11]}" $? "$(grep -iE 'renewal|certificate' "$LOG" | tail -6)" "$(tail -6 "$CPLOG")"

# After the FAILED report: requests keep coming with host1's certificate.
n0=$(grep -c 'CN=host1 (agent): POST /v1/opamp: 200' "$CPLOG")
polled_old() {
	grep -q "SHA-256 $HOST1_FP" "$CPLOG" &&
		[ "$(grep -c 'CN=host1 (agent): POST /v1/opamp: 200' "$CPLOG")" -ge $((n0 + 2)) ]
}
wait_for 10 polled_old && wait_for 10 profiles_since "$FAIL_MS" 3 && kill -0 "$VIGILD_PID"
tap_result "${NAMES[12]}" $? "$(grep -c 'POST /v1/opamp' "$CPLOG") requests" "$(tail -4 "$CPLOG")"

kill -TERM "$VIGILD_PID"
vigild_wait 30
[ "$VIGILD_RC" -eq 0 ]
tap_result "${NAMES[13]}" $? "exit $VIGILD_RC" "$(tail -5 "$LOG")"
kill -TERM "$CP_PID"
wait "$CP_PID" 2>/dev/null
tap_done
