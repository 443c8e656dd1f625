#!/bin/bash
# tests/integration/export.sh - vigild pushes its profiles to Pyroscope (a
# faithful stand-in, tests/tools/pyro_receiver.c): over plain HTTP with a
# tenant and basic auth, over TLS with a CA and a client certificate made
# here and a bearer token; 429 (with Retry-After) and 503 are retried, the
# same body each time; 400 is given up at once and reported; and what would
# not work is refused at start with exit 78 and one line: a secrets file
# others may read, a --label Pyroscope would refuse.
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pyro.sh"

TESTS=(
	"plain http: every series pushed with Pyroscope's labels, X-Scope-OrgID and basic auth, the spool emptied"
	"https with --export-ca and a client certificate (mutual TLS) and a bearer token"
	"429 with Retry-After and 503 retried with the same body, Retry-After waited out, then pushed"
	"400 is not retried: dropped, reported in the log with the server's Connect error"
	"a secrets file readable by others is refused at start: exit 78 and chmod 600 in the message"
	"a --label Pyroscope would refuse is refused at start: exit 78 naming it"
	"the policy's export: section wins over the command line (tenant, spool bound), another port is refused, SIGHUP without it goes back"
	"a hung control plane (accepts, never answers) does not stall the pushes"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
for tool in "$PYRO_RECEIVER" "$PQ"; do
	if [ ! -x "$tool" ]; then
		for t in "${TESTS[@]}"; do tap_not_ok "$t" "$tool is not built (make)"; done
		tap_done
	fi
done

cd "$T" || exit 1
HOST=$(hostname)
printf 'alice:s3cret\n' >basic.txt && chmod 600 basic.txt
printf 'tok-123\n' >bearer.txt && chmod 600 bearer.txt
COMMON=(--hz 49 --interval 2 --duration 0 --export-max-rate 100 --label env=test --label team.name=prof)

# spool_files DIR: the spool files in DIR (one per interval, or a few
# parts: cpu-<stamp>_<k>_<n>.push, each holding the interval's series).
spool_files() { find "$1" -maxdepth 1 -name 'cpu-*_*_*.push' 2>/dev/null; }

# stop_vigild: SIGTERM and wait; problems appended when it does not exit 0.
stop_vigild() {
	kill -TERM "$VIGILD_PID" 2>/dev/null
	vigild_wait 30 || problems+="vigild did not stop within 30 s; "
	[ "$VIGILD_RC" -eq 0 ] || problems+="vigild exited $VIGILD_RC; "
}

report() {
	local name=$1 log=$2
	if [ -z "$problems" ]; then
		tap_ok "$name"
	else
		tap_not_ok "$name" "$problems" "vigild log:" "$(grep -v 'signature verified' "$log" | tail -12)" \
			"receiver:" "$(pyro_requests | tail -4 | cut -c1-400)"
	fi
}

# 1. Plain HTTP, tenant, basic auth.
problems=
if pyro_start plain --require-tenant acme --require-basic alice:s3cret; then
	VIGILD_TIMEOUT=120
	vigild_start "$T/plain.log" "${COMMON[@]}" --output "$T/plain" --export-url "$PYRO_URL/" \
		--export-tenant acme --export-basic-auth-file basic.txt
	vigild_wait_ready 20 || problems+="not sampling after 20 s; "
	# Two intervals' series pushed, and the spool emptied behind them: a
	# file there now is gone once pushed.  The spool is not expected to be
	# empty at any one moment: each interval writes a file, and on a busy
	# host (every process a series, each checked by go tool pprof in the
	# receiver) a push can take longer than an interval.
	pyro_wait_samples 30 2 || problems+="fewer than 2 profiles accepted in 30 s; "
	sleep 4.5
	before=$(spool_files "$T/plain" | sort)
	wait_for 60 eval '[ -z "$(comm -12 <(echo "$before") <(spool_files "$T/plain" | sort))" ]' ||
		problems+="spool files not pushed in 60 s: $(comm -12 <(echo "$before") <(spool_files "$T/plain" | sort) |
			wc -l) of $(echo "$before" | grep -c .); receiver's time a request (ms): $(pyro_requests |
			jq -r .handle_ms | tr '\n' ' '); "
	stop_vigild
	n=$(pyro_samples '.status == 200' | wc -l)
	bad=$(pyro_requests '.status != 200' | wc -l)
	[ "$n" -ge 4 ] || problems+="only $n profiles accepted; "
	[ "$bad" -eq 0 ] || problems+="$bad requests refused: $(pyro_requests '.status != 200' | head -2 | cut -c1-300); "
	# Every sample: Pyroscope's labels, ours, and an ID seen once.
	wrong=$(pyro_samples | jq -c --arg h "$HOST" 'select((.labels.__name__ != "process_cpu") or
		((.labels.service_name // "") == "") or (.labels.host != $h) or ((.labels.tenant // "") == "") or
		(.labels.env != "test") or (.labels.team_name != "prof") or ((.id // "") == ""))' | head -2)
	[ -z "$wrong" ] || problems+="samples with wrong labels: $wrong; "
	dups=$(pyro_samples | jq -r .id | sort | uniq -d | head -2)
	[ -z "$dups" ] || problems+="an ID pushed twice without an outage: $dups; "
	# One push per spool file: an interval's series travel together.
	mixed=$(pyro_requests | jq -c 'select(([(.samples // [])[].time_nanos] | unique | length) > 1) | .seq' | head -2)
	[ -z "$mixed" ] || problems+="requests holding series of several intervals: $mixed; "
	services=$(pyro_samples | jq -r .labels.service_name | sort -u | wc -l)
	[ "$services" -ge 2 ] || problems+="only $services service(s): the host's profile was not split; "
	hdr=$(pyro_requests | jq -r '[.path, .headers["content-type"], .headers["x-scope-orgid"],
		.headers.authorization, .headers["connect-protocol-version"]] | join(" ")' | sort -u)
	want="/push.v1.PusherService/Push application/proto acme Basic $(printf alice:s3cret | base64) 1"
	[ "$hdr" = "$want" ] || problems+="request headers '$hdr', expected '$want'; "
	grep -q 'export: pushing profiles to' "$T/plain.log" || problems+="no start line for export; "
	pyro_stop
else
	problems+="the receiver did not start; "
fi
report "${TESTS[0]}" "$T/plain.log"

# 2. TLS: the CA and a client certificate made here, and a bearer token.
problems=
if mkca pyro && leaf pyro server 127.0.0.1 "subjectAltName = IP:127.0.0.1" \
	"extendedKeyUsage = serverAuth" && leaf pyro agent agent-7 "extendedKeyUsage = clientAuth"; then
	chmod 600 agent.key
	if pyro_start tls --cert server.pem --key server.key --client-ca pyro-ca.pem --require-bearer tok-123; then
		vigild_start "$T/tls.log" "${COMMON[@]}" --output "$T/tls" --export-url "$PYRO_URL" \
			--export-ca "$T/pyro-ca.pem" --export-cert "$T/agent.pem" --export-key "$T/agent.key" \
			--export-bearer-token-file bearer.txt
		vigild_wait_ready 20 || problems+="not sampling after 20 s; "
		pyro_wait_samples 30 1 || problems+="no profile accepted over TLS in 30 s; "
		stop_vigild
		[ "$(pyro_requests '.status != 200' | wc -l)" -eq 0 ] ||
			problems+="refused: $(pyro_requests '.status != 200' | head -1 | cut -c1-300); "
		pyro_requests | jq -r .tls_client | grep -qv 'agent-7' &&
			problems+="client certificate logged as $(pyro_requests | jq -r .tls_client | sort -u | tr '\n' ' '); "
		[ "$(pyro_requests | jq -r .headers.authorization | sort -u)" = "Bearer tok-123" ] ||
			problems+="authorization $(pyro_requests | jq -r .headers.authorization | sort -u); "
		pyro_stop
	else
		problems+="the TLS receiver did not start; "
	fi
else
	problems+="cannot make the test PKI; "
fi
report "${TESTS[1]}" "$T/tls.log"

# 3 and 4. Scripted answers: 429 (Retry-After: 2), 503, then 400, then normal.
problems=
problems4=
if pyro_start script --script "429:2,503,400"; then
	vigild_start "$T/script.log" "${COMMON[@]}" --output "$T/script" --export-url "$PYRO_URL"
	vigild_wait_ready 20 || problems+="not sampling after 20 s; "
	pyro_wait_samples 40 2 || problems+="fewer than 2 profiles accepted in 40 s; "
	stop_vigild
	mapfile -t st < <(pyro_requests | jq -r .status)
	mapfile -t bb < <(pyro_requests | jq -r .body_bytes)
	mapfile -t ms < <(pyro_requests | jq -r .time_unix_ms)
	if [ "${st[0]}-${st[1]}-${st[2]}-${st[3]}" != "429-503-400-200" ]; then
		problems+="statuses ${st[*]:0:5}, expected 429 503 400 200...; "
	else
		[ "${bb[0]}" = "${bb[1]}" ] || problems+="the retry after 429 sent another body (${bb[0]} then ${bb[1]} bytes); "
		[ $((ms[1] - ms[0])) -ge 2000 ] || problems+="retried $((ms[1] - ms[0])) ms after a 429 with Retry-After: 2; "
		grep -q 'export: push failed: HTTP 429' "$T/script.log" || problems+="the 429 is not in the log; "
		grep -q 'export: push failed: HTTP 503' "$T/script.log" || problems+="the 503 is not in the log; "
		[ "${bb[2]}" = "${bb[0]}" ] || problems4+="the 400 was not the retried profile; "
		grep -q 'refused a push of [0-9]* profile(s) for good (HTTP 400: .*): dropped, not retried' "$T/script.log" ||
			problems4+="the 400 is not reported: $(grep export: "$T/script.log" | tail -3 | tr '\n' ' '); "
		grep -q 'push failed: HTTP 400' "$T/script.log" && problems4+="the 400 was retried; "
		[ "$(pyro_requests '.status == 400' | wc -l)" -eq 1 ] || problems4+="more than one 400; "
	fi
	pyro_stop
else
	problems+="the receiver did not start; "
fi
problems4="$problems$problems4"
report "${TESTS[2]}" "$T/script.log"
problems=$problems4
report "${TESTS[3]}" "$T/script.log"

# 5. A secrets file others may read.
problems=
printf 'alice:s3cret\n' >open.txt && chmod 644 open.txt
out=$(timeout 60 "$VIGILD" --duration 1 --output "$T/open" --export-url http://127.0.0.1:9 \
	--export-basic-auth-file "$T/open.txt" 2>&1)
rc=$?
[ "$rc" -eq 78 ] || problems+="exit $rc, expected 78; "
grep -q "export-basic-auth-file: $T/open.txt (mode 0644) is readable by .*chmod 600" <<<"$out" ||
	problems+="message: $(tail -2 <<<"$out" | tr '\n' ' '); "
[ -z "$problems" ] && tap_ok "${TESTS[4]}" || tap_not_ok "${TESTS[4]}" "$problems"

# 6. A --label Pyroscope would refuse (a '-' in the name).
problems=
out=$(timeout 60 "$VIGILD" --duration 1 --output "$T/lbl" --export-url http://127.0.0.1:9 \
	--label my-team=x 2>&1)
rc=$?
[ "$rc" -eq 78 ] || problems+="exit $rc, expected 78; "
grep -q "label 'my-team=x': with export on, a key must be a Pyroscope label name" <<<"$out" ||
	problems+="message: $(tail -2 <<<"$out" | tr '\n' ' '); "
[ -z "$problems" ] && tap_ok "${TESTS[5]}" || tap_not_ok "${TESTS[5]}" "$problems"

# 7. The policy's export: section.
problems=
if pyro_start pol; then
	printf 'version: 1\nexport:\n  tenant: from-policy\n  spool_max_bytes: 65536\n' >policy.yaml
	vigild_start "$T/pol.log" "${COMMON[@]}" --output "$T/pol" --export-url "$PYRO_URL" \
		--export-tenant from-cli --policy "$T/policy.yaml"
	vigild_wait_ready 20 || problems+="not sampling after 20 s; "
	pyro_wait_samples 30 1 || problems+="nothing accepted in 30 s; "
	t=$(pyro_requests | jq -r '.headers["x-scope-orgid"]' | sort -u | tr '\n' ' ')
	[ "$t" = "from-policy " ] || problems+="tenants under the policy: '$t', expected from-policy; "
	grep -q 'policy: export configuration applied' "$T/pol.log" || problems+="no line saying the policy's export applies; "
	grep -q "export: the spool's bound is now 65536 bytes" "$T/pol.log" ||
		problems+="the policy's spool_max_bytes did not bound the spool; "
	# Another port: the uplink's sandbox allows one; refused, kept.
	printf 'version: 1\nexport:\n  url: http://127.0.0.1:%d\n  tenant: from-policy\n' $((PYRO_PORT + 1)) >policy.yaml
	kill -HUP "$VIGILD_PID"
	wait_for 10 grep -q "may only connect to port $PYRO_PORT" "$T/pol.log" ||
		problems+="a policy URL on another port was not refused with the reason; "
	# No section: back to --export-tenant and --spool-max-bytes's default.
	printf 'version: 1\n' >policy.yaml
	kill -HUP "$VIGILD_PID"
	wait_for 10 grep -q "export: the spool's bound is now 268435456 bytes" "$T/pol.log" ||
		problems+="without the section the spool's bound did not go back to 256 MiB; "
	n=$(pyro_requests | wc -l)
	wait_for 30 eval '[ "$(pyro_requests | tail -n +$((n + 1)) | jq -r ".headers[\"x-scope-orgid\"]" | grep -c from-cli)" -ge 2 ]' ||
		problems+="after the section went away, no push as from-cli: $(pyro_requests | tail -2 | jq -c .headers | tr '\n' ' '); "
	last=$(pyro_requests | tail -1 | jq -r '.headers["x-scope-orgid"]')
	[ "$last" = from-cli ] || problems+="the last push was as $last; "
	stop_vigild
	pyro_stop
else
	problems+="the receiver did not start; "
fi
report "${TESTS[6]}" "$T/pol.log"

# 8. A control plane that accepts and never answers: each OpAMP request
# blocks for its connect timeout (10 s), and the pushes go on meanwhile.
problems=
mkdir -p "$T/pki" && cd "$T/pki" || exit 1
if mkca cps && mkca agentca && mkca pol && leaf agentca host1 host1 "extendedKeyUsage = clientAuth" &&
	chmod 600 ./*.key; then
	cd "$T" || exit 1
	spawn python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
held = []
while True:
    c, _ = s.accept(); held.append(c)' "$T/cphang.port"
	wait_for 5 test -s "$T/cphang.port"
	# --no-go-check: what is judged is when the pushes come, and go tool
	# pprof on each series of the host's processes would slow the answers.
	if pyro_start hung --no-go-check; then
		# Something to sample in every interval, even on an idle machine (an
		# interval without samples writes no file, which would read as a gap).
		spawn bash -c 'while :; do for ((i = 0; i < 5000; i++)); do :; done; sleep 0.1; done'
		vigild_start "$T/hung.log" "${COMMON[@]}" --output "$T/hung" --export-url "$PYRO_URL" \
			--control-plane "https://127.0.0.1:$(cat "$T/cphang.port")" --cert "$T/pki/host1.pem" \
			--key "$T/pki/host1.key" --ca "$T/pki/cps-ca.pem" --policy-trust "$T/pki/pol-ca.pem" \
			--state-dir "$T/hung-state" --poll-interval 1
		vigild_wait_ready 20 || problems+="not sampling after 20 s; "
		sleep 16
		end_ms=$(now_ms)
		stop_vigild
		# The pushes' times, and the end: no gap near the 10 s an OpAMP request blocks.
		mapfile -t ms < <(pyro_requests '.status == 200' | jq -r .time_unix_ms)
		# 16 s at --interval 2: 8 intervals, each one push or more (5 at
		# least, for a loaded host).
		[ "${#ms[@]}" -ge 5 ] || problems+="only ${#ms[@]} pushes in 16 s; "
		ms+=("$end_ms")
		gap=0
		for ((i = 1; i < ${#ms[@]}; i++)); do
			d=$((ms[i] - ms[i - 1]))
			[ "$d" -gt "$gap" ] && gap=$d
		done
		# A push waiting on a blocked OpAMP request would wait its 10 s;
		# 7 s leaves a loaded host two intervals and more of slack.
		[ "$gap" -le 7000 ] || problems+="pushes stalled for $gap ms (interval 2 s); "
		grep -qi 'control plane 127.0.0.1:[0-9]*: .*time' "$T/hung.log" ||
			problems+="the control plane did not time out (so nothing was shown): $(grep 'control plane' "$T/hung.log" | head -2 | tr '\n' ' '); "
		pyro_stop
	else
		problems+="the receiver did not start; "
	fi
else
	problems+="cannot make the test PKI; "
fi
cd "$T" || exit 1
report "${TESTS[7]}" "$T/hung.log"

tap_done
