#!/bin/bash
# tests/integration/cp_mtls.sh - vigil-cp's mutual TLS, routing by
# certificate role, HTTP handling, overload and reload, with real TLS and a
# PKI made here with the openssl CLI (lib_cppki.sh).  curl and openssl
# s_client are the clients; tests/tools/opamp_msg makes and reads the OpAMP
# messages.
#
# Every refusal must happen at the handshake or as 403 (or 4xx/503 where
# the case says so) AND leave a line in vigil-cp's log giving the reason.
# pg_cp_mtls.sh runs it all with vigil-cp on PostgreSQL (lib_backend.sh).
#
# It mostly waits on its own vigil-cp (its own ports and stores); the one
# time it checks, a 5 s idle timeout, may take 4 to 10 s: tests/run.sh runs
# it (and pg_cp_mtls.sh) in its pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_backend.sh"
. "$(dirname "$0")/lib_cppki.sh"

CPBIN=${VIGIL_CP:-$B/vigil-cp} # VIGIL_CP: another build of it (e.g. with ASan)
OPMSG=$B/tests/tools/opamp_msg

tap_plan 39

require_file "$CPBIN" $(seq 1 39 | sed 's/^/cp_mtls test /')
require_file "$OPMSG" $(seq 1 39 | sed 's/^/cp_mtls test /')
if ! setup_cppki; then
	for i in $(seq 1 39); do tap_not_ok "cp_mtls test $i" "the test PKI could not be made"; done
	tap_done
fi

# A copy of the files SIGHUP reloads, so that the test can change them.
cp "$CP/server.pem" "$T/server.pem"
cp "$CP/server.key" "$T/server.key"
cp "$CP/crl1.pem" "$T/crl.pem"
cp "$CP/policy-ca/ca.pem" "$T/ptrust.pem"

# cp_start LOG ARGS...: start vigil-cp on a free port with the test PKI and
# ARGS; sets CP_PID, CP_PORT, CP_URL.  1 when it does not come up.
cp_start() {
	local log=$1 try i db
	shift
	for try in 1 2 3 4 5; do
		CP_PORT=$(free_port)
		: >"$log"
		db=$(cp_db "$T/cp-$CP_PORT.db") || return 1
		spawn "$CPBIN" --listen "127.0.0.1:$CP_PORT" --cert "$T/server.pem" --key "$T/server.key" \
			--agent-ca "$CP/agent-ca/ca.pem" --admin-ca "$CP/admin-ca/ca.pem" --crl "$T/crl.pem" \
			--policy-trust "$T/ptrust.pem" --db "$db" "$@" 2>"$log"
		CP_PID=$SPAWNED_PID
		for i in $(seq 1 100); do
			grep -q 'listening on' "$log" && { CP_URL=https://127.0.0.1:$CP_PORT; return 0; }
			kill -0 "$CP_PID" 2>/dev/null || break
			sleep 0.05
		done
		grep -q 'Address already in use' "$log" || return 1
	done
	return 1
}

# as NAME CURL-ARGS...: curl with client certificate NAME ("-" for none).
as() {
	local who=$1
	shift
	if [ "$who" = - ]; then
		curl -sS --max-time 10 --cacert "$CP/server-ca/ca.pem" "$@"
	else
		curl -sS --max-time 10 --cacert "$CP/server-ca/ca.pem" --cert "$CP/$who.pem" --key "$CP/$who.key" "$@"
	fi
}

# opamp NAME FILE [CURL-ARGS...]: POST FILE to /v1/opamp as NAME; prints the status.
opamp() {
	local who=$1 body=$2
	shift 2
	as "$who" -H 'Content-Type: application/x-protobuf' --data-binary "@$body" -o "$T/reply" \
		-w '%{http_code}' "$@" "$CP_URL/v1/opamp" 2>"$T/curl.err"
}

# logged LOG TEXT...: wait (up to 5 s: a refused connection is logged as it
# is freed) until one line of LOG contains every TEXT.
logged() {
	local log=$1 i
	shift
	for i in $(seq 1 50); do
		awk -v n=$# 'BEGIN { for (i = 1; i < ARGC; i++) want[i] = ARGV[i]; ARGC = 1 }
			{ ok = 1; for (i = 1; i <= n; i++) if (index($0, want[i]) == 0) ok = 0; if (ok) found = 1 }
			END { exit !found }' "$@" <"$log" && return 0
		sleep 0.1
	done
	return 1
}

# refused_at_handshake NAME TEXT...: NAME's certificate gets no HTTP reply at
# all, and the log gives the reason.
refused_at_handshake() {
	local who=$1 code
	shift
	code=$(as "$who" -o /dev/null -w '%{http_code}' "$CP_URL/api/v1/agents" 2>/dev/null)
	[ "$code" = 000 ] || { echo "got HTTP $code, not a refused handshake"; return 1; }
	logged "$LOG" "TLS handshake refused" "$@" || { echo "no log line with: $*"; tail -3 "$LOG"; return 1; }
}

LOG=$T/cp.log
UID1=0123456789abcdef0123456789abcdef
UID2=fedcba9876543210fedcba9876543210
"$OPMSG" a2s "$UID1" 1 --describe host1 >"$T/a2s.bin"
# Another agent: the OpAMP server binds an instance_uid to the first certificate that used it.
"$OPMSG" a2s "$UID2" 1 --describe host2 >"$T/a2s-2.bin"

if cp_start "$LOG" --log-level debug; then
	tap_ok "vigil-cp starts and listens on 127.0.0.1:$CP_PORT"
else
	tap_not_ok "vigil-cp starts and listens" "$(cat "$LOG")"
	for i in $(seq 2 39); do tap_not_ok "cp_mtls test $i" "vigil-cp did not start"; done
	tap_done
fi

# Refused at the handshake, each with its reason in the log.
out=$(refused_at_handshake - "peer did not return a certificate" "certificate required")
tap_result "no client certificate: refused at the handshake, logged" $? "$out"
out=$(refused_at_handshake stranger "unable to get local issuer certificate" "subject CN=stranger")
tap_result "a certificate from another CA: refused at the handshake, logged" $? "$out"
out=$(refused_at_handshake expired "certificate has expired" "subject CN=expired")
tap_result "an expired certificate: refused at the handshake, logged" $? "$out"
out=$(refused_at_handshake future "certificate is not yet valid" "subject CN=future")
tap_result "a certificate not yet valid: refused at the handshake, logged" $? "$out"
out=$(refused_at_handshake revoked "certificate revoked" "subject CN=revoked")
tap_result "a certificate revoked by the CRL: refused at the handshake, logged" $? "$out"
out=$(refused_at_handshake serverauth "unsuitable certificate purpose" "subject CN=serverauth")
tap_result "a serverAuth-only certificate: refused at the handshake, logged" $? "$out"
out=$(refused_at_handshake noeku "CN=noeku has no clientAuth extended key usage")
tap_result "a certificate without extended key usage: refused at the handshake, logged" $? "$out"
out=$(refused_at_handshake subca "CN=subca is a CA certificate, not a client's")
tap_result "a CA certificate as a client's: refused at the handshake, logged" $? "$out"

# The wrong role for the route.
code=$(as agent1 -o "$T/body" -w '%{http_code}' "$CP_URL/api/v1/agents" 2>&1)
st=1
[ "$code" = 403 ] && logged "$LOG" "CN=agent1" "/api/v1/agents: 403 Forbidden" "cannot use the admin API" && st=0
tap_result "an agent certificate on /api/v1/agents: 403, logged" $st "HTTP $code: $(cat "$T/body")"
code=$(opamp admin1 "$T/a2s.bin")
st=1
[ "$code" = 403 ] && logged "$LOG" "CN=admin1" "/v1/opamp: 403 Forbidden" "cannot speak OpAMP" && st=0
tap_result "an admin certificate on /v1/opamp: 403, logged" $st "HTTP $code: $(cat "$T/reply")"

# The routes reach their handlers.
: >"$T/empty"
code=$(opamp agent1 "$T/empty")
reply=$("$OPMSG" s2a "$T/reply" 2>&1)
st=1
[ "$code" = 400 ] && [[ $reply == *"error=1 "* ]] && st=0
tap_result "an agent's empty POST /v1/opamp reaches the OpAMP handler: 400 BadRequest" $st \
	"HTTP $code: $reply"
code=$(opamp agent1 "$T/a2s.bin")
reply=$("$OPMSG" s2a "$T/reply" 2>&1)
st=1
[ "$code" = 200 ] && [[ $reply == "uid=$UID1 "* ]] && [[ $reply == *"error=-1 "* ]] && st=0
tap_result "an agent's AgentToServer gets 200 and a ServerToAgent for its instance_uid" $st \
	"HTTP $code: $reply"
code=$(as admin1 -o "$T/body" -w '%{http_code} %{content_type}' "$CP_URL/api/v1/policies" 2>&1)
st=1
[ "${code%% *}" = 200 ] && [[ $code == *application/json* ]] && jq -e '.policies | type == "array"' "$T/body" >/dev/null &&
	st=0
tap_result "an admin's GET /api/v1/policies gets 200 and JSON" $st "HTTP $code: $(head -c 300 "$T/body")"

# The identity the certificate gives, as openssl prints it.
fp=$(openssl x509 -in "$CP/agent1.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
serial=$(openssl x509 -in "$CP/agent1.pem" -noout -serial | sed 's/.*=//')
st=1
logged "$LOG" "agent certificate CN=agent1, serial $serial, SHA-256 $fp" \
	"SANs DNS:agent1.vigil.test, URI:spiffe://vigil.test/agent1.vigil.test" && st=0
tap_result "the identity: subject, serial, SHA-256 fingerprint and SANs of the certificate" $st \
	"want serial $serial, SHA-256 $fp; log: $(grep 'agent certificate' "$LOG" | head -2)"

# Unknown paths and wrong methods.
c1=$(as agent1 -o /dev/null -w '%{http_code}' "$CP_URL/v2/nothing" 2>&1)
c2=$(as agent1 -D "$T/hdr" -o /dev/null -w '%{http_code}' "$CP_URL/v1/opamp" 2>&1)
st=1
[ "$c1" = 404 ] && [ "$c2" = 405 ] && grep -qi '^Allow: POST' "$T/hdr" && logged "$LOG" "/v2/nothing: 404" &&
	logged "$LOG" "/v1/opamp: 405" && st=0
tap_result "an unknown path gets 404, GET /v1/opamp 405 with Allow: POST, both logged" $st "404? $c1, 405? $c2"

# Protocol versions and cipher suites.
# s_client: what it negotiated ("Cipher is X", "(NONE)" when refused).
sclient() {
	timeout 10 openssl s_client -connect "127.0.0.1:$CP_PORT" -CAfile "$CP/server-ca/ca.pem" \
		-cert "$CP/agent1.pem" -key "$CP/agent1.key" "$@" </dev/null 2>&1 | sed -n 's/.*Cipher is //p' | head -1
}
neg=$(sclient -tls1_1 -cipher 'DEFAULT@SECLEVEL=0')
st=1
[ "$neg" = "(NONE)" ] && logged "$LOG" "TLS handshake refused: unsupported protocol" && st=0
tap_result "TLS 1.1 is refused at the handshake, logged" $st "negotiated: $neg"
st=0
bad=
for suite in AES128-GCM-SHA256 AES256-SHA256 DHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-SHA ECDHE-RSA-AES256-SHA384; do
	neg=$(sclient -tls1_2 -cipher "$suite:@SECLEVEL=0")
	[ "$neg" = "(NONE)" ] || { st=1; bad="$bad $suite->$neg"; }
done
logged "$LOG" "TLS handshake refused: no shared cipher" || { st=1; bad="$bad (not logged)"; }
tap_result "TLS 1.2 without ECDHE or with CBC is refused (5 suites), logged" $st "accepted:$bad"
st=0
got=
for suite in ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-CHACHA20-POLY1305; do
	neg=$(sclient -tls1_2 -cipher "$suite")
	[ "$neg" = "$suite" ] || st=1
	got="$got $suite->$neg"
done
neg=$(sclient -tls1_3)
[[ $neg == TLS_* ]] || st=1
tap_result "TLS 1.2 with ECDHE and AEAD, and TLS 1.3, are accepted" $st "$got; TLS 1.3->$neg"

# Gzip both ways.
gzip -c "$T/a2s.bin" >"$T/a2s.gz"
code=$(opamp agent1 "$T/a2s.gz" -H 'Content-Encoding: gzip' -H 'Accept-Encoding: gzip' -D "$T/hdr")
reply=$(gunzip -c <"$T/reply" 2>&1 | "$OPMSG" s2a 2>&1)
code2=$(opamp agent1 "$T/a2s.bin" -D "$T/hdr2")
st=1
[ "$code" = 200 ] && grep -qi '^Content-Encoding: gzip' "$T/hdr" && [[ $reply == "uid=$UID1 "* ]] &&
	[ "$code2" = 200 ] && ! grep -qi '^Content-Encoding' "$T/hdr2" && st=0
tap_result "a gzip request is accepted; the reply is gzip'ed when asked, plain when not" $st \
	"HTTP $code/$code2: $reply; $(tr -d '\r' <"$T/hdr" | grep -i encoding)"

# Keep-alive.
out=$(as agent1 -v -H 'Content-Type: application/x-protobuf' --data-binary "@$T/a2s.bin" \
	"$CP_URL/v1/opamp" "$CP_URL/v1/opamp" "$CP_URL/v1/opamp" -o /dev/null -o /dev/null -o /dev/null 2>&1)
n=$(grep -c 'Re-using existing connection' <<<"$out")
st=1
[ "$n" -eq 2 ] && [ "$(grep -c '^< HTTP/1.1 200' <<<"$out")" -eq 3 ] && st=0
tap_result "keep-alive: three requests on one connection" $st "re-used $n times; $(grep '^< HTTP' <<<"$out")"

# Bad bodies; the server answers afterwards.
head -c 2000 /dev/urandom >"$T/junk"
printf '\x0a\xff\xff\xff\xff\x0f' >>"$T/junk" # a length that runs past the end, whatever came before
code=$(opamp agent1 "$T/junk")
after=$(opamp agent1 "$T/a2s.bin")
st=1
[ "$code" = 400 ] && [ "$after" = 200 ] && logged "$LOG" "CN=agent1: POST /v1/opamp: 400" && st=0
tap_result "a malformed AgentToServer gets 400, logged; the server answers afterwards" $st "HTTP $code, then $after"
head -c $((5 << 20)) /dev/zero >"$T/huge"
code=$(opamp agent1 "$T/huge")
after=$(opamp agent1 "$T/a2s.bin")
st=1
[ "$code" = 413 ] && [ "$after" = 200 ] && logged "$LOG" "413" "refused by the HTTP parser" && st=0
tap_result "a 5 MiB body gets 413, logged; the server answers afterwards" $st "HTTP $code, then $after; $(cat "$T/curl.err")"
head -c $((8 << 20)) /dev/zero | gzip -c >"$T/bomb.gz"
code=$(opamp agent1 "$T/bomb.gz" -H 'Content-Encoding: gzip')
after=$(opamp agent1 "$T/a2s.bin")
st=1
[ "$code" = 413 ] && [ "$after" = 200 ] && logged "$LOG" "413" "inflates past" && st=0
tap_result "a gzip body that inflates past the limit gets 413, logged; the server answers afterwards" $st \
	"HTTP $code ($(stat -c %s "$T/bomb.gz") bytes), then $after"
resp=$(printf 'GARBAGE \x01\x02 nonsense\r\n\r\n' | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$CP_PORT" \
	-cert "$CP/agent1.pem" -key "$CP/agent1.key" 2>/dev/null | head -1 | tr -d '\r')
after=$(opamp agent1 "$T/a2s.bin")
st=1
[[ $resp == "HTTP/1.1 400"* ]] && [ "$after" = 200 ] && logged "$LOG" "400 Bad Request: refused by the HTTP parser" &&
	st=0
tap_result "a malformed request line gets 400, logged; the server answers afterwards" $st "got '$resp', then $after"

# Plain HTTP on the TLS port.
curl -sS --max-time 10 -o /dev/null "http://127.0.0.1:$CP_PORT/v1/opamp" 2>/dev/null
st=1
logged "$LOG" "TLS handshake refused: http request" && st=0
tap_result "plain HTTP on the TLS port is refused at the handshake, logged" $st "$(tail -2 "$LOG")"

# A body of the wrong type.
code=$(as agent1 -H 'Content-Type: application/json' --data-binary '{}' -o /dev/null -w '%{http_code}' \
	"$CP_URL/v1/opamp" 2>&1)
st=1
[ "$code" = 415 ] && logged "$LOG" "/v1/opamp: 415" && st=0
tap_result "POST /v1/opamp with Content-Type application/json gets 415, logged" $st "HTTP $code"

MAIN_PID=$CP_PID MAIN_PORT=$CP_PORT MAIN_URL=$CP_URL

# Overload, from the configured limit: a second server with
# --max-connections 4 holds 4 idle TLS connections; the next is told 503.
LOG2=$T/cp2.log
MAXC=4
IDLE=5
if cp_start "$LOG2" --max-connections $MAXC --retry-after 7 --idle-timeout $IDLE; then
	holders=()
	for i in $(seq 1 $MAXC); do
		(sleep 8) | openssl s_client -quiet -connect "127.0.0.1:$CP_PORT" -cert "$CP/agent1.pem" \
			-key "$CP/agent1.key" >/dev/null 2>&1 &
		holders+=($!)
		SPAWNED+=($!)
	done
	# vigil-cp counts a connection when it accepts it, in the order they queued.
	for i in $(seq 1 100); do
		[ "$(ss -tnH state established "( dport = :$CP_PORT )" | wc -l)" -ge $MAXC ] && break
		sleep 0.1
	done
	sleep 0.3
	code=$(opamp agent1 "$T/a2s.bin" -D "$T/hdr")
	reply=$("$OPMSG" s2a "$T/reply" 2>&1)
	st=1
	[ "$code" = 503 ] && grep -qi '^Retry-After: 7' "$T/hdr" && [[ $reply == "uid=$UID1 "*"error=2 retry_ns=7000000000 "* ]] &&
		logged "$LOG2" "/v1/opamp: 503 Service Unavailable: over --max-connections $MAXC" && st=0
	tap_result "over --max-connections $MAXC: 503, Retry-After and an OpAMP Unavailable with retry_info, logged" \
		$st "HTTP $code: $reply; $(tr -d '\r' <"$T/hdr" | grep -i retry)"
	for p in "${holders[@]}"; do kill "$p" 2>/dev/null; done
	after=000
	for i in $(seq 1 50); do
		after=$(opamp agent1 "$T/a2s.bin")
		[ "$after" = 200 ] && break
		sleep 0.2
	done
	tap_result "when the connections close, the server answers 200 again" "$([ "$after" = 200 ]; echo $?)" \
		"HTTP $after"
	# A connection that never says a word is closed after --idle-timeout, and logged.
	exec 3<>"/dev/tcp/127.0.0.1/$CP_PORT"
	silent_port=$(ss -tnH state established "( dport = :$CP_PORT )" | awk '{ split($3, a, ":"); print a[2] }' | tail -1)
	t0=$(now_ms)
	read -r -t 20 -u 3 _
	waited=$(($(now_ms) - t0))
	exec 3<&-
	st=1
	[ "$waited" -ge $(((IDLE - 1) * 1000)) ] && [ "$waited" -le $(((IDLE + 5) * 1000)) ] &&
		logged "$LOG2" "127.0.0.1:$silent_port: TLS handshake refused: no TLS handshake" && st=0
	tap_result "a connection that never speaks is closed after --idle-timeout $IDLE, logged with its address" $st \
		"closed after $waited ms (port $silent_port); $(tail -2 "$LOG2")"
	kill "$CP_PID" 2>/dev/null
else
	tap_not_ok "overload: 503 with Retry-After" "$(cat "$LOG2")"
	tap_not_ok "when the connections close, the server answers 200 again" "no server"
	tap_not_ok "a connection that never speaks is closed after --idle-timeout" "no server"
fi
# A CRL file that covers only the agents' CA: warned at start, and
# administrators' certificates are refused (revocation fails closed).
LOG3=$T/cp3.log
if cp_start "$LOG3" --crl "$CP/agent.crl"; then
	code=$(as admin1 -o /dev/null -w '%{http_code}' "$CP_URL/api/v1/policies" 2>/dev/null)
	code2=$(opamp agent1 "$T/a2s.bin")
	st=1
	[ "$code" = 000 ] && [ "$code2" = 200 ] &&
		logged "$LOG3" "warning: no CRL covers admin CA CN=Vigil test admin CA" &&
		logged "$LOG3" "TLS handshake refused" "unable to get certificate CRL" "subject CN=admin1" && st=0
	tap_result "a CA no CRL covers: warned at start, its certificates refused at the handshake (fail closed)" $st \
		"admin HTTP $code, agent HTTP $code2; $(cat "$LOG3")"
	kill "$CP_PID" 2>/dev/null
else
	tap_not_ok "a CA no CRL covers: warned at start, its certificates refused" "$(cat "$LOG3")"
fi
CP_PID=$MAIN_PID CP_PORT=$MAIN_PORT CP_URL=$MAIN_URL

# SIGHUP with a new CRL revokes agent2 for new connections, and for
# a connection that was open before the reload, at its next request.
code=$(opamp agent2 "$T/a2s-2.bin")
req() {
	printf 'POST /v1/opamp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\nContent-Length: %d\r\n\r\n' \
		"$(stat -c %s "$T/a2s-2.bin")"
	cat "$T/a2s-2.bin"
}
# The second request goes once the reload is done ($T/go).
{
	req
	for i in $(seq 1 150); do [ -e "$T/go" ] && break; sleep 0.1; done
	req
	sleep 3
} | timeout 30 openssl s_client -quiet -connect "127.0.0.1:$CP_PORT" \
	-cert "$CP/agent2.pem" -key "$CP/agent2.key" >"$T/held.out" 2>/dev/null &
held=$!
for i in $(seq 1 100); do grep -aq 'HTTP/1.1 ' "$T/held.out" && break; sleep 0.1; done
cp "$CP/crl2.pem" "$T/crl.pem"
kill -HUP "$CP_PID"
logged "$LOG" "reloaded (configuration 2"
code2=$(opamp agent2 "$T/a2s-2.bin")
st=1
[ "$code" = 200 ] && [ "$code2" = 000 ] && logged "$LOG" "TLS handshake refused" "certificate revoked" "subject CN=agent2" &&
	kill -0 "$CP_PID" && st=0
tap_result "SIGHUP loads a new CRL: agent2, served before, is refused at the handshake, logged" $st \
	"before: HTTP $code, after: $code2; $(grep -i 'reload' "$LOG")"
touch "$T/go"
wait "$held"
statuses=$(grep -a -o 'HTTP/1.1 [0-9]*' "$T/held.out" | tr '\n' ' ')
st=1
[ "$statuses" = "HTTP/1.1 200 HTTP/1.1 403 " ] && logged "$LOG" "CN=agent2" "403" "reloaded configuration: certificate revoked" &&
	st=0
tap_result "a connection opened before the reload is verified again: its next request gets 403, logged" $st \
	"statuses: $statuses"
code=$(opamp agent1 "$T/a2s.bin")
tap_result "the server keeps serving the others after the reload (same process)" \
	"$([ "$code" = 200 ] && kill -0 "$CP_PID"; echo $?)" "HTTP $code"

# SIGHUP reloads --policy-trust too: a policy signed under other-ca is
# refused until the trust file names that CA.
printf 'version: 1\nserial: 1\ndefaults:\n  hz: {min: 1, max: 99, start: 19}\n' >"$T/p1.yaml"
openssl cms -sign -binary -md sha256 -outform DER -in "$T/p1.yaml" -signer "$CP/psigner2.pem" \
	-inkey "$CP/psigner2.key" -out "$T/p1.sig" 2>/dev/null
printf '{"yaml":"%s","signature":"%s"}' "$(base64 -w0 "$T/p1.yaml")" "$(base64 -w0 "$T/p1.sig")" >"$T/p1.json"
upload() {
	as admin1 -H 'Content-Type: application/json' --data-binary "@$T/p1.json" -o "$T/body" -w '%{http_code}' \
		"$CP_URL/api/v1/policies" 2>&1
}
c1=$(upload)
b1=$(cat "$T/body")
cp "$CP/other-ca/ca.pem" "$T/ptrust.pem"
kill -HUP "$CP_PID"
logged "$LOG" "reloaded (configuration 3"
c2=$(upload)
st=1
[[ $c1 == 4?? && $b1 == *untrusted* ]] && [ "$c2" = 201 ] && st=0
tap_result "SIGHUP reloads --policy-trust: an upload refused as untrusted is accepted after it" $st \
	"before: HTTP $c1 $b1; after: HTTP $c2 $(cat "$T/body")"

# A reload with a broken certificate file keeps the old configuration.
fp_before=$(openssl s_client -connect "127.0.0.1:$CP_PORT" -cert "$CP/agent1.pem" -key "$CP/agent1.key" </dev/null 2>/dev/null |
	openssl x509 -noout -fingerprint -sha256 2>/dev/null)
echo "not a certificate" >"$T/server.pem"
kill -HUP "$CP_PID"
st=1
if logged "$LOG" "reload failed, keeping the running configuration" "--cert $T/server.pem" "no PEM certificate"; then
	code=$(opamp agent1 "$T/a2s.bin")
	fp_after=$(openssl s_client -connect "127.0.0.1:$CP_PORT" -cert "$CP/agent1.pem" -key "$CP/agent1.key" </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null)
	[ "$code" = 200 ] && [ -n "$fp_before" ] && [ "$fp_before" = "$fp_after" ] && st=0
fi
tap_result "SIGHUP with a broken certificate file: logged, and the old certificate keeps serving" $st \
	"HTTP ${code:-?}; before $fp_before, after ${fp_after:-?}; $(grep -i 'reload failed' "$LOG")"
cp "$CP/server.pem" "$T/server.pem"

# Start-up refusals: exit codes and one-line messages.
run_cp() {
	timeout 10 "$CPBIN" --listen 127.0.0.1:1 --cert "$CP/server.pem" --key "$CP/server.key" \
		--policy-trust "$CP/policy-ca/ca.pem" --db "$(cp_db "$T/refused.db")" "$@" 2>&1 >/dev/null
}
m1=$(run_cp --agent-ca "$CP/agent-ca/ca.pem" --admin-ca "$CP/agent-ca/ca.pem")
r1=$?
m2=$(run_cp --agent-ca "$CP/agent-ca/ca.pem" --admin-ca "$T/nonexistent.pem")
r2=$?
m3=$(run_cp --agent-ca "$CP/agent-ca/ca.pem" --admin-ca "$CP/admin1.pem")
r3=$?
st=1
[ $r1 = 78 ] && [[ $m1 == *"are the same file"* ]] && [ $r2 = 66 ] && [[ $m2 == *"--admin-ca $T/nonexistent.pem: No such file"* ]] &&
	[ $r3 = 78 ] && [[ $m3 == *"is not a CA certificate"* ]] && st=0
tap_result "start-up: one CA file for both roles (78), a missing file (66), a non-CA as CA (78), each named" $st \
	"$r1: $m1" "$r2: $m2" "$r3: $m3"
# subca was issued by the agents' CA: as the admins' CA, certificates would chain to both.
m1=$(run_cp --agent-ca "$CP/agent-ca/ca.pem" --admin-ca "$CP/subca.pem")
r1=$?
m2=$(timeout 10 "$CPBIN" --listen 127.0.0.1:1 --cert "$CP/server.pem" --key "$CP/agent1.key" \
	--agent-ca "$CP/agent-ca/ca.pem" --admin-ca "$CP/admin-ca/ca.pem" --policy-trust "$CP/policy-ca/ca.pem" \
	--db "$(cp_db "$T/refused.db")" 2>&1 >/dev/null)
r2=$?
st=1
[ $r1 = 78 ] && [[ $m1 == *"one CA issued the other"* ]] && [ $r2 = 78 ] &&
	[[ $m2 == *"--key $CP/agent1.key does not match the certificate of --cert $CP/server.pem"* ]] && st=0
tap_result "start-up: an admin CA issued by the agent CA (78), a key that does not match the certificate (78)" $st \
	"$r1: $m1" "$r2: $m2"
m4=$("$CPBIN" --cert x 2>&1)
r4=$?
m5=$("$CPBIN" --listen 127.0.0.1:99999 2>&1)
r5=$?
st=1
[ $r4 = 64 ] && [[ $m4 == *"--key FILE is required"* ]] && [ $r5 = 64 ] && [[ $m5 == *"port must be"* ]] && st=0
tap_result "usage errors exit 64 with one line" $st "$r4: $m4" "$r5: $m5"

tap_done
