#!/bin/bash
# tests/integration/lib_opamp.sh - a control-plane PKI made with the openssl
# CLI, a vigil-cp to run against, and the OpAMP test agent, for cp_opamp.sh
# and the control-plane benchmark (tests/bench/bench_cp.sh).  Sourced after
# lib.sh (which gives $T, $B, spawn and the cleanup), never run.
#
# cp_pki DIR makes, with EC P-256 keys:
#   server-ca.pem           the CA agents and vigilctl trust for the server
#   server.pem/.key         CN=vigil-cp, SAN IP:127.0.0.1 DNS:localhost, serverAuth
#   agent-ca.pem/.key       --agent-ca
#   agent1..3.pem/.key      CN=agentN, clientAuth, under agent-ca
#   admin-ca.pem/.key       --admin-ca
#   admin.pem/.key          CN=admin, clientAuth, under admin-ca
#   policy-ca.pem           --policy-trust
#   signer.pem/.key         CN=policy signer, codeSigning, under policy-ca
# cp_start / cp_stop / cp_wait_ready run build/vigil-cp on a SQLite file;
# vctl runs build/vigilctl as the admin; agent runs the test agent.
# Several servers on one store (PostgreSQL): cp_start_named, cp_on,
# agent_on (below, "Several vigil-cp").

[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0

VIGIL_CP=${VIGIL_CP:-$B/vigil-cp} # another build (e.g. ASan) from the environment
VIGILCTL=$B/vigilctl
OPAMP_AGENT=${OPAMP_AGENT:-$B/tests/tools/opamp_agent}

# ---------------------------------------------------------------------------
# PKI.

# cp_quiet CMD...: run CMD, show its output only if it fails.
cp_quiet() {
	local out
	out=$("$@" 2>&1) || { echo "setup failed: $*" >&2; echo "$out" >&2; return 1; }
}

cp_key() { cp_quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# cp_ca DIR NAME CN: a self-signed CA, DIR/NAME.pem and DIR/NAME.key.
cp_ca() {
	cp_key "$1/$2.key" &&
		cp_quiet openssl req -new -x509 -key "$1/$2.key" -subj "/CN=$3" -days 30 -sha256 \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
			-addext "subjectKeyIdentifier=hash" -out "$1/$2.pem"
}

# cp_leaf DIR CA NAME SUBJECT EXTENSIONS...: DIR/NAME.pem/.key issued by DIR/CA.
cp_leaf() {
	local dir=$1 ca=$2 name=$3 subj=$4 ext
	shift 4
	ext=$dir/$name.ext
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "subjectKeyIdentifier=hash"
		echo "authorityKeyIdentifier=keyid"
		printf '%s\n' "$@"
	} >"$ext"
	cp_key "$dir/$name.key" &&
		cp_quiet openssl req -new -key "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr" &&
		cp_quiet openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.pem" -CAkey "$dir/$ca.key" \
			-set_serial "0x$(openssl rand -hex 8)" -days 30 -sha256 -extfile "$ext" -out "$dir/$name.pem"
}

cp_pki() {
	local d=$1 i
	mkdir -p "$d"
	cp_ca "$d" server-ca "Test server CA" &&
		cp_ca "$d" agent-ca "Test agent CA" &&
		cp_ca "$d" admin-ca "Test admin CA" &&
		cp_ca "$d" policy-ca "Test policy CA" || return 1
	cp_leaf "$d" server-ca server "/CN=vigil-cp" "keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" || return 1
	for i in 1 2 3; do
		cp_leaf "$d" agent-ca "agent$i" "/O=Test fleet/CN=agent$i" "keyUsage=critical,digitalSignature" \
			"extendedKeyUsage=clientAuth" || return 1
	done
	cp_leaf "$d" admin-ca admin "/CN=admin" "keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=clientAuth" &&
		cp_leaf "$d" policy-ca signer "/CN=policy signer" "keyUsage=critical,digitalSignature" \
			"extendedKeyUsage=codeSigning"
}

# cp_sign PKI IN: IN.sig, a detached CMS signature as an administrator makes it.
cp_sign() {
	cp_quiet openssl cms -sign -binary -md sha256 -outform DER -in "$2" -signer "$1/signer.pem" \
		-inkey "$1/signer.key" -out "$2.sig"
}

# cp_policy FILE SERIAL [TENANT]: a small valid policy with that serial.
cp_policy() {
	cat >"$1" <<EOF
version: 1
serial: $2
defaults:
  hz: {min: 1, max: 49, start: 19}
  budget: {max_overhead_percent: 1.0}
tenants:
  - name: ${3:-web}
    cgroups: ["/sys/fs/cgroup/${3:-web}*"]
EOF
}

# ---------------------------------------------------------------------------
# The config hash as control-plane/configmap.h defines it, computed with the
# shell and openssl only: SHA-256 over the entries in sorted key order
# ("policy.yaml" < "policy.yaml.sig"), each entry
#   u32be(len(key)) key u32be(len(content_type)) content_type u32be(len(body)) body

u32be() {
	printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))"
	printf "\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"
}

# cp_entry KEY CONTENT_TYPE FILE
cp_entry() {
	u32be ${#1}
	printf '%s' "$1"
	u32be ${#2}
	printf '%s' "$2"
	u32be "$(stat -c %s "$3")"
	cat "$3"
}

# cp_config_hash YAML SIG: lower-case hex.
cp_config_hash() {
	{
		cp_entry policy.yaml text/yaml "$1"
		cp_entry policy.yaml.sig application/pkcs7-signature "$2"
	} | LC_ALL=C openssl dgst -sha256 -r | cut -d' ' -f1
}

# ---------------------------------------------------------------------------
# vigil-cp.

# cp_start PKI DB LOG [ARGS...]: start vigil-cp on 127.0.0.1:$CP_PORT (chosen
# here the first time, kept across restarts); pid in $CP_PID.  DB is a
# SQLite file, or a store URL (postgresql://...) passed as it is; with
# lib_backend.sh sourced, the file names a store of its backend (cp_db).
cp_start() {
	local pki=$1 db=$2 log=$3
	shift 3
	CP_PORT=${CP_PORT:-$(free_port)}
	CP_URL=https://127.0.0.1:$CP_PORT
	if declare -F cp_db >/dev/null; then
		db=$(cp_db "$db") || return 1
	else
		case $db in *://*) ;; *) db=sqlite:$db ;; esac
	fi
	"$VIGIL_CP" --listen "127.0.0.1:$CP_PORT" --cert "$pki/server.pem" --key "$pki/server.key" \
		--agent-ca "$pki/agent-ca.pem" --admin-ca "$pki/admin-ca.pem" --policy-trust "$pki/policy-ca.pem" \
		--db "$db" "$@" >>"$log" 2>&1 &
	CP_PID=$!
	SPAWNED+=("$CP_PID")
}

# cp_wait_ready PKI [SECONDS]: until the admin API answers (1 if vigil-cp died or timed out).
cp_wait_ready() {
	local pki=$1 limit=$(($(now_ms) + ${2:-15} * 1000))
	while [ "$(now_ms)" -lt "$limit" ]; do
		kill -0 "$CP_PID" 2>/dev/null || return 1
		curl -sf -o /dev/null --max-time 2 --cacert "$pki/server-ca.pem" --cert "$pki/admin.pem" \
			--key "$pki/admin.key" "$CP_URL/api/v1/policies" && return 0
		sleep 0.1
	done
	return 1
}

# cp_stop [SIGNAL]: stop vigil-cp (TERM) and wait for it; its exit code in $CP_RC.
cp_stop() {
	local limit=$(($(now_ms) + 10000))
	# (bash's "Killed" notice for the job goes to the braces' stderr)
	{
		kill -"${1:-TERM}" "$CP_PID"
		while kill -0 "$CP_PID" && [ "$(now_ms)" -lt "$limit" ]; do sleep 0.05; done
		kill -KILL "$CP_PID"
		wait "$CP_PID"
		CP_RC=$?
	} 2>/dev/null
}

# vctl PKI ARGS...: vigilctl as the administrator, JSON out.
vctl() {
	local pki=$1
	shift
	"$VIGILCTL" --server "$CP_URL" --cert "$pki/admin.pem" --key "$pki/admin.key" --ca "$pki/server-ca.pem" \
		--json "$@"
}

# agent PKI N ARGS...: the test agent with certificate agentN.
agent() {
	local pki=$1 n=$2
	shift 2
	"$OPAMP_AGENT" --server "$CP_URL" --cert "$pki/agent$n.pem" --key "$pki/agent$n.key" \
		--ca "$pki/server-ca.pem" "$@"
}

# ---------------------------------------------------------------------------
# Several vigil-cp on one store (a PostgreSQL URL), as behind a load
# balancer (tests/integration/cp_two_servers.sh).  lib's cp_* functions act
# on the current server (CP_PORT, CP_PID, CP_URL); these keep one set per
# named server.

# cp_start_named NAME PKI DB LOG [ARGS...]: start one more vigil-cp on a port
# of its own and wait until it answers; its port, pid and URL in NAME_PORT,
# NAME_PID and NAME_URL, and it is the current server.  1 when it does not
# answer.
cp_start_named() {
	local name=$1
	shift
	CP_PORT=$(free_port) CP_PID= CP_URL=
	cp_start "$@" && cp_wait_ready "$1" || return 1
	printf -v "${name}_PORT" %s "$CP_PORT"
	printf -v "${name}_PID" %s "$CP_PID"
	printf -v "${name}_URL" %s "$CP_URL"
}

# cp_on NAME CMD...: make NAME the current server and run CMD (vctl, agent,
# cp_stop...).
cp_on() {
	local name=$1 port pid url
	shift
	port=${name}_PORT pid=${name}_PID url=${name}_URL
	CP_PORT=${!port} CP_PID=${!pid} CP_URL=${!url}
	"$@"
}

# agent_on "NAME..." PKI N ARGS...: the test agent with certificate agentN,
# given the named servers in that order (--server repeated: each message
# goes to the next, a failed one at once to the one after).
agent_on() {
	local names=$1 pki=$2 n=$3 name url servers=()
	shift 3
	for name in $names; do
		url=${name}_URL
		servers+=(--server "${!url}")
	done
	"$OPAMP_AGENT" "${servers[@]}" --cert "$pki/agent$n.pem" --key "$pki/agent$n.key" \
		--ca "$pki/server-ca.pem" "$@"
}
