#!/bin/bash
# tests/integration/vigilctl.sh - vigilctl against a real vigil-cp on
# loopback, with real mutual TLS and a PKI made here with the openssl CLI:
# a policy signed with `openssl cms` (by a certificate issued with the
# commands of docs/control-plane.md, "Signing a policy") is uploaded,
# listed, shown byte for byte and assigned; refused uploads (tampered,
# replayed or older serial, untrusted signer, invalid YAML, missing file)
# and refused identities (an agent's certificate, a certificate from no
# known CA, a server that --ca does not trust, no server) end with the
# exit codes vigilctl(1) documents.  Needs no root.  pg_vigilctl.sh runs it
# with vigil-cp on PostgreSQL (lib_backend.sh).
#
# It starts no vigild and times nothing a loaded host could miss:
# tests/run.sh runs it in its lane, beside the others.
# run.sh: lane
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_backend.sh"

CP=$B/vigil-cp
CTL=$B/vigilctl
JG=$B/tests/tools/json_get
N=25
tap_plan $N

require_file "$CP" "vigil-cp is built" && require_file "$CTL" "vigilctl is built" &&
	require_file "$JG" "json_get is built"
jg() { "$JG" "$1"; }

# ---------------------------------------------------------------------------
# PKI: three CAs for vigil-cp (server, agents, admins), the policy CA of
# docs/control-plane.md, and an untrusted CA.

P=$T/pki
mkdir -p "$P"
cd "$P" || exit 1
# vleaf CA NAME EXTENSIONS...: leaf, named NAME, with key identifiers.
vleaf() {
	leaf "$1" "$2" "$2" "subjectKeyIdentifier = hash" "authorityKeyIdentifier = keyid" "${@:3}"
}
setup() {
	mkca server && mkca agent && mkca admin && mkca other || return 1
	vleaf server server "extendedKeyUsage = serverAuth" "subjectAltName = IP:127.0.0.1, DNS:localhost" &&
		vleaf agent host1 "extendedKeyUsage = clientAuth" &&
		vleaf admin alice "extendedKeyUsage = clientAuth" &&
		vleaf other mallory "extendedKeyUsage = clientAuth" &&
		vleaf other untrusted-signer "extendedKeyUsage = codeSigning" || return 1
	# The policy CA and signer exactly as docs/control-plane.md makes them.
	tap_quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out policy-ca.key &&
		tap_quiet openssl req -x509 -new -key policy-ca.key -sha256 -days 3650 \
			-subj "/O=Example/CN=Example policy CA" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" \
			-out policy-ca.pem &&
		tap_quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out policy-signer.key &&
		tap_quiet openssl req -new -key policy-signer.key -subj "/O=Example/CN=alice policy signer" \
			-out policy-signer.csr || return 1
	cat >policy-signer.ext <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = 2.25.227699756064508679566492730626946662765
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	tap_quiet openssl x509 -req -in policy-signer.csr -CA policy-ca.pem -CAkey policy-ca.key \
		-CAcreateserial -days 365 -sha256 -extfile policy-signer.ext -out policy-signer.pem
}
if ! setup; then
	for i in $(seq $N); do tap_not_ok "vigilctl test $i" "the test PKI could not be made"; done
	tap_done
fi

# sign IN OUT [SIGNER]: the documented openssl command.
sign() {
	openssl cms -sign -binary -md sha256 -outform DER -in "$1" \
		-signer "${3:-policy-signer}.pem" -inkey "${3:-policy-signer}.key" -out "$2"
}
policy() { # policy SERIAL FILE
	cat >"$2" <<EOF
version: 1
serial: $1
defaults:
  hz: {min: 1, max: 99, start: 19}
tenants:
  - name: web
    cgroups: ["/sys/fs/cgroup/web*"]
    budget: {max_overhead_percent: 2.0}
EOF
}

# ---------------------------------------------------------------------------
# vigil-cp on a free loopback port.

PORT=$(free_port)
URL=https://127.0.0.1:$PORT
spawn "$CP" --listen "127.0.0.1:$PORT" --cert server.pem --key server.key --agent-ca agent-ca.pem \
	--admin-ca admin-ca.pem --policy-trust policy-ca.pem --db "$(cp_db "$T/cp.db")" 2>"$T/cp.log"
CP_PID=$SPAWNED_PID

# ctl [CERT] ARGS...: vigilctl as alice (or CERT), output in $OUT/$ERR, exit code in $RC.
ctl_as() {
	local who=$1
	shift
	"$CTL" --server "$URL" --cert "$who.pem" --key "$who.key" --ca server-ca.pem "$@" \
		>"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
ctl() { ctl_as alice "$@"; }
diag() { echo "exit $RC"; echo "stdout: $OUT"; echo "stderr: $ERR"; echo "vigil-cp: $(tail -5 "$T/cp.log")"; }

# 1: it listens (vigilctl says 69 until it does).
ready=1
for _ in $(seq 100); do
	kill -0 "$CP_PID" 2>/dev/null || break
	ctl --json policy list
	[ "$RC" -ne 69 ] && { ready=0; break; }
	sleep 0.1
done
tap_result "vigil-cp starts and answers vigilctl" $ready "$(diag)"

# 2: an empty store.
ctl --json policy list
[ "$RC" -eq 0 ] && [ "$(echo "$OUT" | jg .policies)" = "[]" ]
tap_result "policy list on an empty store: exit 0, no policies" $? "$(diag)"

# 3: a policy signed with openssl cms by the policy-EKU signer.
policy 1 p1.yaml && sign p1.yaml p1.yaml.sig
ctl --json policy upload p1.yaml p1.yaml.sig
[ "$RC" -eq 0 ] && [ "$(echo "$OUT" | jg .serial)" = 1 ] &&
	echo "$OUT" | jg .signer | grep -q "alice policy signer" &&
	[ "$(echo "$OUT" | jg .sha256)" = "$(sha256sum <p1.yaml | cut -d' ' -f1)" ]
tap_result "upload of a policy signed with openssl cms (policy EKU): serial, signer, sha256" $? "$(diag)"

# 4: listed, with who uploaded it.
ctl --json policy list
[ "$RC" -eq 0 ] && [ "$(echo "$OUT" | jg .policies#)" = 1 ] &&
	echo "$OUT" | jg '.policies[0].uploaded_by' | grep -q "CN=alice"
tap_result "policy list shows it, uploaded by the admin certificate's subject" $? "$(diag)"

# 5: the table, forced off a terminal; JSON is the default off a terminal.
ctl --table policy list
t=$OUT
ctl policy list
[ "$RC" -eq 0 ] && echo "$t" | head -1 | grep -q '^SERIAL  *SHA256' && echo "$t" | grep -q '^1  ' &&
	echo "$OUT" | jg .policies >/dev/null
tap_result "--table prints an aligned table; without a terminal the output is JSON" $? "$(diag)" "$t"

# 6: shown byte for byte.
ctl policy show 1
cmp -s "$T/out" p1.yaml
tap_result "policy show prints the signed bytes" $? "$(diag)"

# 7: tampered after signing.
policy 2 p2.yaml && sign p2.yaml p2.yaml.sig && sed -i 's/2.0}/9.0}/' p2.yaml
ctl policy upload p2.yaml p2.yaml.sig
[ "$RC" -eq 65 ] && echo "$ERR" | grep -q "refused (HTTP 422): policy signature: digest-mismatch" &&
	[ "$(echo "$ERR" | wc -l)" -eq 1 ]
tap_result "a policy tampered after signing: exit 65, digest-mismatch, one line" $? "$(diag)"

# 8: the same serial again (a replay of the first upload).
ctl policy upload p1.yaml p1.yaml.sig
[ "$RC" -eq 65 ] && echo "$ERR" | grep -q "(HTTP 409): policy serial 1 is not new"
tap_result "a replayed serial: exit 65, 409 not new" $? "$(diag)"

# 9: forward, then an older serial.
policy 5 p5.yaml && sign p5.yaml p5.yaml.sig && policy 4 p4.yaml && sign p4.yaml p4.yaml.sig
ctl policy upload p5.yaml p5.yaml.sig
rc5=$RC
ctl policy upload p4.yaml p4.yaml.sig
[ "$rc5" -eq 0 ] && [ "$RC" -eq 65 ] && echo "$ERR" | grep -q "serial 4 is not new"
tap_result "serial 5 goes in, then 4 is refused: exit 65" $? "$(diag)"

# 10: a signer from a CA that --policy-trust does not hold.
policy 6 p6.yaml && sign p6.yaml p6u.sig untrusted-signer
ctl policy upload p6.yaml p6u.sig
[ "$RC" -eq 65 ] && echo "$ERR" | grep -q "policy signature: untrusted: "
tap_result "an untrusted signer: exit 65, policy signature: untrusted" $? "$(diag)"

# 11: a valid signature over an invalid policy.
printf 'version: 1\nserial: 7\ndefaults:\n  hz: {min: 0}\n' >bad.yaml && sign bad.yaml bad.yaml.sig
ctl policy upload bad.yaml bad.yaml.sig
[ "$RC" -eq 65 ] && echo "$ERR" | grep -q "policy.yaml:4:13: defaults.hz.min"
tap_result "a signed invalid policy: exit 65 with file:line:col" $? "$(diag)"

# 12: an unsigned one (garbage where the signature goes).
head -c 300 /dev/urandom >junk.sig
ctl policy upload p6.yaml junk.sig
[ "$RC" -eq 65 ] && echo "$ERR" | grep -q "malformed-signature"
tap_result "a garbage signature: exit 65, malformed-signature" $? "$(diag)"

# 13: a missing file.
ctl policy upload p6.yaml nonexistent.sig
[ "$RC" -eq 66 ] && echo "$ERR" | grep -q "nonexistent.sig"
tap_result "a missing signature file: exit 66" $? "$(diag)"

# 14: nothing refused went in.
ctl --json policy list
[ "$RC" -eq 0 ] && [ "$(echo "$OUT" | jg .policies#)" = 2 ] &&
	[ "$(echo "$OUT" | jg '.policies[0].serial')" = 1 ] && [ "$(echo "$OUT" | jg '.policies[1].serial')" = 5 ]
tap_result "only serials 1 and 5 are stored" $? "$(diag)"

# 15: assign.
ctl --json assign 5 --selector env=prod,vigil.tenant-set=web
[ "$RC" -eq 0 ] && [ "$(echo "$OUT" | jg .serial)" = 5 ] &&
	[ "$(echo "$OUT" | jg .selector)" = "env=prod,vigil.tenant-set=web" ]
tap_result "assign 5 --selector env=prod,vigil.tenant-set=web" $? "$(diag)"

# 16: to an unknown serial, and with a bad selector.
ctl assign 99 --selector env=prod
rc99=$RC
e99=$ERR
ctl assign 5 --selector env
[ "$rc99" -eq 65 ] && echo "$e99" | grep -q "(HTTP 404)" && [ "$RC" -eq 65 ] &&
	echo "$ERR" | grep -q "(HTTP 400)"
tap_result "assign to an unknown serial (404) or with a bad selector (400): exit 65" $? "$(diag)" "$e99"

# 17: assignments.
ctl --json assignments
[ "$RC" -eq 0 ] && [ "$(echo "$OUT" | jg .assignments#)" = 1 ] &&
	echo "$OUT" | jg '.assignments[0].assigned_by' | grep -q "CN=alice"
tap_result "assignments lists the one assignment, by alice" $? "$(diag)"

# 18: agents (none has connected), with and without a selector; an unknown one.
ctl --json agents --selector env=prod
a1=$RC
n1=$(echo "$OUT" | jg .agents#)
ctl --json agents
a2=$RC
n2=$(echo "$OUT" | jg .agents#)
ctl agent 0123456789abcdef0123456789abcdef
[ "$a1" -eq 0 ] && [ "$a2" -eq 0 ] && [ "$n1" = 0 ] && [ "$n2" = 0 ] && [ "$RC" -eq 65 ] &&
	echo "$ERR" | grep -q "(HTTP 404)"
tap_result "agents (filtered or not) exit 0; an unknown agent: exit 65 (404)" $? "$(diag)"

# 19: an agent's certificate on the admin API.
ctl_as host1 --json policy list
[ "$RC" -eq 77 ]
tap_result "an agent's certificate on the admin API: exit 77" $? "$(diag)"

# 20: a certificate from a CA vigil-cp does not know.
ctl_as mallory --json policy list
[ "$RC" -eq 77 ]
tap_result "a certificate from an unknown CA: exit 77" $? "$(diag)"

# 21: a server that --ca does not vouch for.
"$CTL" --server "$URL" --cert alice.pem --key alice.key --ca other-ca.pem policy list >"$T/out" 2>"$T/err"
RC=$?
ERR=$(cat "$T/err")
[ "$RC" -eq 76 ] && echo "$ERR" | grep -q "does not verify against --ca"
tap_result "a server certificate that --ca does not trust: exit 76" $? "$(diag)"

# 22: nobody listening.
"$CTL" --server "https://127.0.0.1:1" --cert alice.pem --key alice.key --ca server-ca.pem policy list \
	>/dev/null 2>"$T/err"
RC=$?
[ "$RC" -eq 69 ]
tap_result "no server: exit 69" $? "exit $RC: $(cat "$T/err")"

# 23: usage and configuration errors, before any connection; the environment fallbacks.
"$CTL" frobnicate >/dev/null 2>&1
u1=$?
"$CTL" --server "$URL" --cert missing.pem --key alice.key --ca server-ca.pem policy list >/dev/null 2>&1
u2=$?
VIGILCTL_SERVER=$URL VIGILCTL_CERT=alice.pem VIGILCTL_KEY=alice.key VIGILCTL_CA=server-ca.pem \
	"$CTL" --json policy list >"$T/out" 2>"$T/err"
u3=$?
[ "$u1" -eq 64 ] && [ "$u2" -eq 78 ] && [ "$u3" -eq 0 ]
tap_result "usage 64, unreadable --cert 78, VIGILCTL_* environment works" $? "$u1 $u2 $u3 $(cat "$T/err")"

# 24: the largest policy (1 MiB: a long comment) goes through vigil-cp; one byte more does not.
policy 8 big.yaml
pad=$((1048576 - $(stat -c %s big.yaml)))
{ printf '#'; head -c $((pad - 2)) /dev/zero | tr '\0' x; printf '\n'; } >>big.yaml
sign big.yaml big.yaml.sig
ctl --json policy upload big.yaml big.yaml.sig
b1=$RC
o1=$OUT
echo >>big.yaml
ctl policy upload big.yaml big.yaml.sig
[ "$(stat -c %s big.yaml)" -eq 1048577 ] && [ "$b1" -eq 0 ] && [ "$(echo "$o1" | jg .serial)" = 8 ] &&
	[ "$RC" -eq 65 ] && echo "$ERR" | grep -q "larger than 1048576"
tap_result "a 1 MiB signed policy uploads; 1 MiB + 1 byte is refused (65)" $? "$(diag)" "first: $b1 $o1"

# 25: vigil-cp is still up after all of it.
kill -0 "$CP_PID" 2>/dev/null
tap_result "vigil-cp survived every refusal" $? "$(tail -20 "$T/cp.log")"

tap_done
