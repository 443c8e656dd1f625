#!/bin/bash
# tests/integration/pyro_receiver.sh - the Pyroscope stand-in that the export
# tests rely on (tests/tools/pyro_receiver.c) keeps Pyroscope's rules: what it
# accepts, what it refuses with which Connect error and HTTP status, what it
# logs, how it can be scripted, TLS with client certificates, and auth.
#
# Every refusal is paired with the nearest request that is accepted (30
# labels against 31, a 1024-byte name against 1025, ...), so that a receiver
# refusing everything, or nothing, fails.  Requests come from pyro_push.
#
# It mostly waits on its own receivers, and times only a lower bound (a
# 2 s delay): tests/run.sh runs it in its pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pyro.sh"

TESTS=(
	"a valid push: 200, empty application/proto body, logged with headers, labels, ID, time, totals"
	"missing service_name: 400 invalid_argument; --service-name-fallback accepts it as Pyroscope's distributor does"
	"30 labels accepted, 31: 400 invalid_argument naming the limit"
	"a 1024-byte label name accepted, 1025: 400 label name too long"
	"a 2048-byte label value accepted, 2049: 400 label value too long"
	"duplicate label names: 400 invalid_argument"
	"__name__ missing or empty: 400 invalid metric name; an empty label name: 400 invalid label name"
	"a corrupt gzip and a non-pprof payload: 500 unknown, as Pyroscope's distributor answers"
	"a profile go tool pprof rejects: 400 pprof_rejected, alone among 70 in one request; accepted with --no-go-check"
	"a profile older than 1 h or newer than 10 min: 400 outside the ingestion window"
	"wrong path 404, GET 405, wrong Content-Type 415, undecodable body 400, gzip Content-Encoding accepted"
	"script 200,429:2,503,slow:S,close: in order, Retry-After on 429, the slow one waits, close answers nothing"
	"SIGUSR1 reloads the script file"
	"an outage: stopped cleanly, pushes refused, restarted on the same port, the log goes on"
	"TLS: a client certificate from the CA is accepted and logged, none or another CA's is refused"
	"--require-tenant, --require-basic, --require-bearer: 401 unauthenticated unless right"
	"over 4 MiB uncompressed (however small gzip made it) or over 16000 samples: 400; 16000 accepted"
	"string sample labels join the series' labels (split_series; 27+3 accepted, 28+3 refused; same names and span_id not added)"
)
tap_plan ${#TESTS[@]}

for tool in "$PYRO_RECEIVER" "$PYRO_PUSH"; do
	if [ ! -x "$tool" ]; then
		for t in "${TESTS[@]}"; do tap_not_ok "$t" "$tool is not built (make)"; done
		tap_done
	fi
done

cd "$T" || exit 1
VALID=(--label service_name=checkout --label __name__=process_cpu)

# push NAME ARGS...: pyro_push to the current receiver, output in $T/NAME.out.
push() {
	local name=$1
	shift
	"$PYRO_PUSH" --url "$PYRO_URL" "$@" >"$T/$name.out" 2>&1
}

# status NAME: the HTTP status of that push ("none" without an answer).
status() {
	local s
	s=$(sed -n 's/^status //p' "$T/$1.out" | tail -1)
	echo "${s:-none}"
}

# error_of NAME: "CODE MESSAGE" of that push's Connect JSON error.
error_of() {
	grep '^{' "$T/$1.out" | tail -1 | jq -r '"\(.code) \(.message)"' 2>/dev/null
}

# expect NAME STATUS [CODE [MESSAGE-PART]]: appends to $problems.
expect() {
	local name=$1 want=$2 code=${3:-} part=${4:-} got err
	got=$(status "$name")
	if [ "$got" != "$want" ]; then
		problems+="$name: status $got, expected $want ($(tr '\n' ' ' <"$T/$name.out" | cut -c1-300)); "
		return
	fi
	[ -n "$code" ] || return
	err=$(error_of "$name")
	[ "${err%% *}" = "$code" ] || problems+="$name: code '${err%% *}', expected $code; "
	[ -z "$part" ] || [[ "$err" == *"$part"* ]] || problems+="$name: message '$(echo "$err" | cut -c1-200)' lacks '$part'; "
}

report() {
	tap_result "$1" "$([ -z "$problems" ] && echo 0 || echo 1)" "$problems"
	problems=
}

problems=
pyro_start main --script-file "$T/main.script" || problems+="receiver did not start; "
main=("$PYRO_PID" "$PYRO_URL" "$PYRO_LOG" "$PYRO_SCRIPT" "$PYRO_PORT")
# main_back: talk to the main receiver again after another one was started.
main_back() {
	PYRO_PID=${main[0]} PYRO_URL=${main[1]} PYRO_LOG=${main[2]} PYRO_SCRIPT=${main[3]} PYRO_PORT=${main[4]}
	PYRO_NAME=main PYRO_ARGS=(--script-file "$T/main.script")
}

# ---------------------------------------------------------------------------
# 1. A valid push.
push valid "${VALID[@]}" --label host=h1 --synth 7 --id 0f0e0d0c-aaaa-4bbb-8ccc-000000000001 \
	--tenant acme --bearer s3cret
expect valid 200
grep -qx 'content-type application/proto' "$T/valid.out" || problems+="no application/proto content type; "
[ "$(grep -vc '^\(status\|content-type\|retry-after\) ' "$T/valid.out")" -eq 0 ] || problems+="a body on the 200; "
# Flushed per request: the line is there while the receiver still runs.
line=$(pyro_samples '.id == "0f0e0d0c-aaaa-4bbb-8ccc-000000000001"')
req=$(pyro_requests '.samples[0].id? == "0f0e0d0c-aaaa-4bbb-8ccc-000000000001"')
if [ -z "$line" ]; then
	problems+="the accepted sample is not in the log; "
else
	[ "$(jq -r '.labels.service_name, .labels.__name__, .labels.host, .result, .samples' <<<"$line" | tr '\n' ' ')" = \
		"checkout process_cpu h1 accepted 7 " ] || problems+="logged sample: $line; "
	[ "$(jq -r '.totals | join(",")' <<<"$line")" = "7,70000000" ] || problems+="logged totals: $line; "
	[ "$(jq -r .split_series <<<"$line")" = 1 ] || problems+="no sample labels, yet split_series: $line; "
	[ "$(jq -r '.sample_types | join(",")' <<<"$line")" = "samples/count,cpu/nanoseconds" ] ||
		problems+="logged sample types: $line; "
	tn=$(jq -r .time_nanos <<<"$line")
	now_ns=$(($(now_ms) * 1000000))
	[ $((now_ns - tn)) -ge 0 ] && [ $((now_ns - tn)) -lt 60000000000 ] || problems+="logged time_nanos $tn, now $now_ns; "
	[ "$(jq -r .duration_nanos <<<"$line")" = 10000000000 ] || problems+="logged duration: $line; "
	[ "$(jq -r '.raw_bytes > 0 and .uncompressed_bytes > .raw_bytes' <<<"$line")" = true ] ||
		problems+="logged sizes: $line; "
fi
[ "$(jq -r '.headers["x-scope-orgid"], .headers.authorization, .headers["content-type"], .headers["connect-protocol-version"], .headers["user-agent"], .status' <<<"$req" | tr '\n' ' ')" = \
	"acme Bearer s3cret application/proto 1 pyro_push/0.1.0 200 " ] || problems+="logged request: $req; "
# The request line and the headers pyro_push sends: between 150 and 400 bytes.
[ "$(jq -r '.header_bytes > 150 and .header_bytes < 400' <<<"$req")" = true ] || problems+="header_bytes: $req; "
report "${TESTS[0]}"

# ---------------------------------------------------------------------------
# 2. service_name.
push nosvc --label __name__=process_cpu --label host=h1 --synth 3
expect nosvc 400 invalid_argument "service name is not provided"
push emptysvc --label __name__=process_cpu --label service_name= --synth 3
expect emptysvc 400 invalid_argument "service name is not provided"
[ "$(pyro_samples '.labels.host == "h1" and .status == 400' | jq -r .result | head -1)" = missing_labels ] ||
	problems+="the refused sample is not logged as missing_labels; "
if pyro_start fallback --service-name-fallback; then
	push fbsvc --label __name__=process_cpu --synth 3
	expect fbsvc 200
	pyro_stop
else
	problems+="the fallback receiver did not start; "
fi
main_back
report "${TESTS[1]}"

# ---------------------------------------------------------------------------
# 3-5. The limits, each at the edge.
push l30 "${VALID[@]}" --label-repeat l=v,28 --synth 2
expect l30 200
push l31 "${VALID[@]}" --label-repeat l=v,29 --synth 2
expect l31 400 invalid_argument "has 31 label names; limit 30"
report "${TESTS[2]}"

n1024=$(printf 'n%.0s' {1..1024})
push n1024 "${VALID[@]}" --label "$n1024=v" --synth 2
expect n1024 200
push n1025 "${VALID[@]}" --label "${n1024}x=v" --synth 2
expect n1025 400 invalid_argument "has label name too long"
report "${TESTS[3]}"

v2048=$(printf 'v%.0s' {1..2048})
push v2048 "${VALID[@]}" --label "long=$v2048" --synth 2
expect v2048 200
push v2049 "${VALID[@]}" --label "long=${v2048}x" --synth 2
expect v2049 400 invalid_argument "has label value too long"
report "${TESTS[4]}"

# ---------------------------------------------------------------------------
# 6-7. Duplicates and invalid names.
push dup "${VALID[@]}" --label env=a --label env=b --synth 2
expect dup 400 invalid_argument "has duplicate label name: 'env'"
push dupsvc "${VALID[@]}" --label service_name=checkout --synth 2
expect dupsvc 400 invalid_argument "duplicate label name: 'service_name'"
report "${TESTS[5]}"

push noname --label service_name=checkout --synth 2
expect noname 400 invalid_argument "invalid metric name"
push emptyname --label service_name=checkout --label __name__= --synth 2
expect emptyname 400 invalid_argument "invalid metric name"
push badlabel "${VALID[@]}" --label "=v" --synth 2
expect badlabel 400 invalid_argument "invalid label name ''"
push badutf8 "${VALID[@]}" --label "k=$(printf 'a\xffb')" --synth 2
expect badutf8 400 invalid_argument "invalid label value"
report "${TESTS[6]}"

# ---------------------------------------------------------------------------
# 8. Payloads that are not gzip pprof.  Pyroscope's distributor does not
# wrap these in a validation error, so connect-go answers "unknown", 500.
"$PYRO_PUSH" --url "$PYRO_URL" "${VALID[@]}" --synth 50 --id keep >/dev/null 2>&1
printf '\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03this is not deflate data at all' >corrupt.gz
push corrupt "${VALID[@]}" --profile corrupt.gz
expect corrupt 500 unknown
printf '{"this is":"JSON, not a pprof profile"}' | gzip >json.gz
push notpprof "${VALID[@]}" --profile json.gz
expect notpprof 500 unknown
printf '\x1f\x8b' >short.gz
push short "${VALID[@]}" --profile short.gz
expect short 500 unknown "gzip reset"
[ "$(pyro_samples '.status == 500' | jq -r .result | sort -u | tr '\n' ' ')" = "malformed_gzip malformed_pprof " ] ||
	problems+="results logged: $(pyro_samples '.status == 500' | jq -r .result | tr '\n' ' '); "
# One good and one corrupt sample: the answer is the error, the good one still counts.
push mixed "${VALID[@]}" --synth 2 --profile corrupt.gz
expect mixed 500 unknown
[ "$(pyro_requests '.status == 500' | tail -1 | jq -r '[.samples[].result] | join(",")')" = "malformed_gzip,accepted" ] ||
	problems+="mixed request logged as $(pyro_requests '.status == 500' | tail -1 | jq -c '[.samples[].result]'); "
report "${TESTS[7]}"

# ---------------------------------------------------------------------------
# 9. The go tool pprof oracle.
push dangling "${VALID[@]}" --synth 3 --synth-dangling
expect dangling 400 invalid_argument "go tool pprof -raw rejected"
# The profiles of a request go to go tool pprof together (64 a run), and a
# run that does not pass them all is redone one by one: 70 valid series,
# the 2nd and the 67th (one in each run) dangling, are one refusal that
# names two, and those two alone are pprof_rejected.
for i in $(seq 1 70); do
	extra=()
	[ "$i" -eq 2 ] || [ "$i" -eq 67 ] && extra=(--synth-dangling)
	"$PYRO_PUSH" --write "$T/part$i" --label service_name="svc$i" --label __name__=process_cpu \
		--synth 3 "${extra[@]}" || problems+="pyro_push --write failed; "
done
for i in $(seq 1 70); do cat "$T/part$i"; done >"$T/many.body"
push many --body "$T/many.body"
expect many 400 invalid_argument "go tool pprof -raw rejected"
[ "$(error_of many | grep -o 'go tool pprof -raw rejected' | wc -l)" -eq 2 ] ||
	problems+="many: the message names $(error_of many | grep -o 'go tool pprof -raw rejected' | wc -l) rejections, not 2; "
got=$(pyro_requests '(.samples | length) == 70' | tail -1 |
	jq -r '[.samples[] | select(.result != "accepted") | "\(.labels.service_name)=\(.result)"] | join(" ")')
[ "$got" = "svc2=pprof_rejected svc67=pprof_rejected" ] ||
	problems+="many: not accepted: '$got', expected svc2 and svc67 pprof_rejected; "
for i in $(seq 1 70); do [ "$i" -eq 2 ] || [ "$i" -eq 67 ] || cat "$T/part$i"; done >"$T/many_ok.body"
push many_ok --body "$T/many_ok.body"
expect many_ok 200
if pyro_start nogo --no-go-check; then
	push dangling_nogo "${VALID[@]}" --synth 3 --synth-dangling
	expect dangling_nogo 200
	pyro_stop
else
	problems+="the --no-go-check receiver did not start; "
fi
main_back
report "${TESTS[8]}"

# ---------------------------------------------------------------------------
# 10. The ingestion window (validation.reject-older-than 1h, -newer-than 10m).
push old "${VALID[@]}" --synth 2 --synth-age 3700
expect old 400 invalid_argument "outside of ingestion window"
push fresh "${VALID[@]}" --synth 2 --synth-age 3000
expect fresh 200
push future "${VALID[@]}" --synth 2 --synth-age -700
expect future 400 invalid_argument "outside of ingestion window"
report "${TESTS[9]}"

# ---------------------------------------------------------------------------
# 11. HTTP and Connect framing.
push path "${VALID[@]}" --synth 2 --path /push.v1.PusherService/Nope
expect path 404
push get --method GET
expect get 405
push json "${VALID[@]}" --synth 2 --content-type application/json
expect json 415
push garbage --body corrupt.gz
expect garbage 400 invalid_argument "unmarshal"
push empty --body /dev/null
expect empty 400 invalid_argument "no profiles received"
push gzbody "${VALID[@]}" --synth 2 --gzip-body
expect gzbody 200
push brbody "${VALID[@]}" --synth 2 --header "Content-Encoding: br"
expect brbody 501 unimplemented
push cpv "${VALID[@]}" --synth 2 --header "Connect-Protocol-Version: 2"
expect cpv 400 invalid_argument "connect-protocol-version"
report "${TESTS[10]}"

# ---------------------------------------------------------------------------
# 12. A script given at start.
if pyro_start scripted --script "200,429:2,503,slow:2,close" --no-go-check; then
	for i in 1 2 3; do push "s$i" "${VALID[@]}" --synth 2; done
	t0=$(now_ms)
	push s4 "${VALID[@]}" --synth 2
	slow_ms=$(($(now_ms) - t0))
	push s5 "${VALID[@]}" --synth 2
	push s6 "${VALID[@]}" --synth 2
	expect s1 200
	expect s2 429 resource_exhausted
	grep -qx 'retry-after 2' "$T/s2.out" || problems+="no Retry-After: 2 on the 429; "
	expect s3 503 unavailable
	grep -q '^retry-after' "$T/s3.out" && problems+="a Retry-After on the 503 that was not asked for; "
	expect s4 200
	[ "$slow_ms" -ge 2000 ] || problems+="slow:2 answered after $slow_ms ms; "
	grep -q '^error: ' "$T/s5.out" || problems+="close: $(tr '\n' ' ' <"$T/s5.out"); "
	expect s6 200
	[ "$(pyro_requests | jq -r .answer | tr '\n' ' ')" = "normal scripted scripted slow close normal " ] ||
		problems+="answers logged: $(pyro_requests | jq -r .answer | tr '\n' ' '); "
	pyro_stop
else
	problems+="the scripted receiver did not start; "
fi
main_back
report "${TESTS[11]}"

# 13. Reloading the script while running.
if pyro_script "503:7,400"; then
	push r1 "${VALID[@]}" --synth 2
	push r2 "${VALID[@]}" --synth 2
	push r3 "${VALID[@]}" --synth 2
	expect r1 503 unavailable
	grep -qx 'retry-after 7' "$T/r1.out" || problems+="no Retry-After: 7 after the reload; "
	expect r2 400 invalid_argument
	expect r3 200
else
	problems+="the receiver did not log the reloaded script; "
fi
report "${TESTS[12]}"

# 14. An outage, as the export tests make one (lib_pyro.sh).
before=$(pyro_samples '.status == 200' | wc -l)
port=$PYRO_PORT
pyro_stop || problems+="the receiver exited $? on SIGTERM; "
push down "${VALID[@]}" --synth 2
grep -q '^error: ' "$T/down.out" || problems+="a push while it is down: $(tr '\n' ' ' <"$T/down.out"); "
: >"$PYRO_SCRIPT" # the script file is read at start too: come back answering normally
if pyro_restart; then
	[ "$PYRO_PORT" = "$port" ] || problems+="restarted on port $PYRO_PORT, was $port; "
	push up "${VALID[@]}" --synth 2 --id after-outage
	expect up 200
	pyro_wait_samples 5 $((before + 1)) || problems+="pyro_wait_samples did not see $((before + 1)) accepted samples; "
	pyro_wait_samples 1 1 '.id == "after-outage"' || problems+="the push after the restart is not in the log; "
	pyro_wait_samples 1 1 '.id == "0f0e0d0c-aaaa-4bbb-8ccc-000000000001"' ||
		problems+="the log before the outage is gone; "
	pyro_stop || problems+="the restarted receiver exited $? on SIGTERM; "
else
	problems+="did not restart on port $port; "
fi
report "${TESTS[13]}"

# ---------------------------------------------------------------------------
# 15. TLS with client certificates.
if mkca pyro && mkca other && leaf pyro server 127.0.0.1 "subjectAltName = IP:127.0.0.1" \
	"extendedKeyUsage = serverAuth" && leaf pyro agent agent-1 "extendedKeyUsage = clientAuth" &&
	leaf other stranger stranger-1 "extendedKeyUsage = clientAuth"; then
	if pyro_start tls --cert server.pem --key server.key --client-ca pyro-ca.pem --no-go-check; then
		push tls_ok "${VALID[@]}" --synth 2 --cacert pyro-ca.pem --cert agent.pem --key agent.key
		expect tls_ok 200
		[ "$(pyro_requests '.status == 200' | jq -r .tls_client)" = "/O=Vigil test/CN=agent-1" ] ||
			problems+="client certificate logged as $(pyro_requests | jq -c .tls_client); "
		push tls_none "${VALID[@]}" --synth 2 --cacert pyro-ca.pem
		grep -q '^error: ' "$T/tls_none.out" || problems+="no client certificate: $(tr '\n' ' ' <"$T/tls_none.out"); "
		push tls_other "${VALID[@]}" --synth 2 --cacert pyro-ca.pem --cert stranger.pem --key stranger.key
		grep -q '^error: ' "$T/tls_other.out" || problems+="another CA's certificate: $(tr '\n' ' ' <"$T/tls_other.out"); "
		push tls_plain "${VALID[@]}" --synth 2 --cacert other-ca.pem --cert agent.pem --key agent.key
		grep -q '^error: ' "$T/tls_plain.out" || problems+="a server not checked against its CA was trusted; "
		[ "$(pyro_requests | wc -l)" -eq 1 ] || problems+="refused handshakes reached the handler; "
		pyro_stop
	else
		problems+="the TLS receiver did not start; "
	fi
else
	problems+="could not make the test PKI; "
fi
report "${TESTS[14]}"

# ---------------------------------------------------------------------------
# 16. Auth.
if pyro_start tenant --require-tenant acme --no-go-check; then
	push t_none "${VALID[@]}" --synth 2
	expect t_none 401 unauthenticated "no org id"
	push t_wrong "${VALID[@]}" --synth 2 --tenant other
	expect t_wrong 401 unauthenticated
	push t_right "${VALID[@]}" --synth 2 --tenant acme
	expect t_right 200
	pyro_stop
else
	problems+="the tenant receiver did not start; "
fi
if pyro_start basic --require-basic vigil:pa55 --no-go-check; then
	push b_none "${VALID[@]}" --synth 2
	expect b_none 401 unauthenticated
	push b_wrong "${VALID[@]}" --synth 2 --basic vigil:nope
	expect b_wrong 401 unauthenticated
	push b_right "${VALID[@]}" --synth 2 --basic vigil:pa55
	expect b_right 200
	[ "$(pyro_requests '.status == 200' | jq -r '.headers.authorization')" = "Basic $(printf vigil:pa55 | base64)" ] ||
		problems+="Authorization not logged as received; "
	pyro_stop
else
	problems+="the basic-auth receiver did not start; "
fi
if pyro_start bearer --require-bearer tok-123 --no-go-check; then
	push br_wrong "${VALID[@]}" --synth 2 --bearer tok-12
	expect br_wrong 401 unauthenticated
	push br_right "${VALID[@]}" --synth 2 --bearer tok-123
	expect br_right 200
	pyro_stop
else
	problems+="the bearer receiver did not start; "
fi
report "${TESTS[15]}"

# ---------------------------------------------------------------------------
# 17. validation.max-profile-size-bytes (4 MiB), on the uncompressed size.
if pyro_start size --no-go-check; then
	push big "${VALID[@]}" --synth 200000
	expect big 400 invalid_argument "uncompressed profile payload size exceeds limit"
	[ "$(pyro_samples .result | jq -r '"\(.result) \(.raw_bytes < 4194304)"')" = "profile_size_limit true" ] ||
		problems+="logged as $(pyro_samples | jq -c '{result, raw_bytes}'); "
	# validation.max-profile-stacktrace-samples (16000), at its edge.
	push fits "${VALID[@]}" --synth 16000
	expect fits 200
	push many "${VALID[@]}" --synth 16001
	expect many 400 invalid_argument "exceeds the samples count limit"
	pyro_stop
else
	problems+="the receiver did not start; "
fi
report "${TESTS[16]}"

# ---------------------------------------------------------------------------
# 18. Pyroscope splits a profile by its string sample labels and validates
# each split's labels: the series' plus those it does not have already
# (pprofsplit), trace_id/span_id/profile_id apart.  vigild's profiles carry
# cgroup, comm, thread_name and tenant this way.
main_back
pyro_restart || problems+="the main receiver did not come back; "
SL=(--synth-sample-label comm=a --synth-sample-label thread_name=t --synth-sample-label cgroup=/)
push sl_split "${VALID[@]}" --synth 4 --synth-sample-label comm=a,b --id sl-split
expect sl_split 200
[ "$(pyro_samples '.id == "sl-split"' | jq -r .split_series)" = 2 ] ||
	problems+="two comm values, split_series $(pyro_samples '.id == "sl-split"' | jq -c .split_series); "
push sl_edge "${VALID[@]}" --label-repeat l=v,25 --synth 4 "${SL[@]}"
expect sl_edge 200
push sl_over "${VALID[@]}" --label-repeat l=v,26 --synth 4 "${SL[@]}"
expect sl_over 400 invalid_argument "has 31 label names; limit 30"
push sl_same "${VALID[@]}" --label-repeat l=v,28 --synth 4 --synth-sample-label service_name=other \
	--synth-sample-label span_id=0123456789abcdef
expect sl_same 200
pyro_stop
report "${TESTS[17]}"

tap_done
