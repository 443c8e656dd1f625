#!/bin/bash
# tests/integration/systemd_status_cp.sh - vigild's STATUS= (sd_notify) says
# the control plane's state and the serial of the signed policy in force.
#
# A real vigil-cp (SQLite) and vigild --control-plane with NOTIFY_SOCKET on
# build/tests/tools/sd_notify_recv's socket:
#   1. connected, no serial yet (no signed policy);
#   2. a signed policy (serial 1, tenant "cpweb") assigned with vigilctl:
#      "control plane: connected, policy serial 1", the tenant listed;
#   3. vigil-cp stopped: "control plane: failing, policy serial 1" while
#      sampling goes on, and vigild still exits 0 on SIGTERM.
#
# SQLite only, with no pg_ wrapper: it is about what vigild says of the
# control plane, which is the same OpAMP whatever store vigil-cp keeps.
#
# It mostly waits on 1 s polls, with deadlines of 20 s or more and its own
# socket and port: tests/run.sh runs it in its pool, beside the others.
# run.sh: alongside

. "$(dirname "$0")/lib.sh"

CPD=$B/vigil-cp
CTL=$B/vigilctl
RECV=$B/tests/tools/sd_notify_recv
TESTS=(
	"STATUS= says 'control plane: connected' once the agent reached vigil-cp"
	"after a signed policy is assigned: 'control plane: connected, policy serial 1' and its tenant"
	"vigil-cp stopped: 'control plane: failing, policy serial 1', sampling goes on, exit 0 on SIGTERM"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
for f in "$CPD" "$CTL" "$RECV"; do require_file "$f" "${TESTS[@]}"; done

P=$T/pki
mkdir -p "$P"
cd "$P" || exit 1
if ! { mkca server && mkca agent && mkca admin && mkca policy &&
	leaf server server localhost "extendedKeyUsage = serverAuth" \
		"subjectAltName = IP:127.0.0.1, DNS:localhost" &&
	leaf agent host1 host1 "extendedKeyUsage = clientAuth" &&
	leaf admin alice alice "extendedKeyUsage = clientAuth" &&
	leaf policy signer "policy signer" \
		"extendedKeyUsage = 2.25.227699756064508679566492730626946662765"; }; then
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "the test PKI could not be made"; done
	tap_done
fi
chmod 600 ./*.key

PORT=$(free_port)
URL=https://127.0.0.1:$PORT
CPLOG=$T/cp.log
spawn "$CPD" --listen "127.0.0.1:$PORT" --cert "$P/server.pem" --key "$P/server.key" \
	--agent-ca "$P/agent-ca.pem" --admin-ca "$P/admin-ca.pem" --policy-trust "$P/policy-ca.pem" \
	--db "sqlite:$T/cp.db" --metrics-listen none 2>"$CPLOG"
CP_PID=$SPAWNED_PID
ctl() {
	"$CTL" --server "$URL" --cert "$P/alice.pem" --key "$P/alice.key" --ca "$P/server-ca.pem" --json "$@" \
		>"$T/ctl.out" 2>"$T/ctl.err"
}
cp_up() { kill -0 "$CP_PID" 2>/dev/null && { ctl policy list; [ $? -ne 69 ]; }; }
wait_for 15 cp_up || { echo "Bail out! vigil-cp did not start: $(tail -3 "$CPLOG")"; exit 1; }

NOTES=$T/notify.txt
: >"$NOTES"
spawn "$RECV" "$T/notify" "$NOTES"
wait_for 5 test -S "$T/notify"
status() { awk -F'\t' '{ for (i = 3; i <= NF; i++) if (index($i, "STATUS=") == 1) print substr($i, 8) }' "$NOTES"; }
status_has() { status | grep -qE "$1"; }

LOG=$T/vigild.log
cd "$T" || exit 1
NOTIFY_SOCKET=$T/notify vigild_start "$LOG" --control-plane "https://localhost:$PORT" \
	--cert "$P/host1.pem" --key "$P/host1.key" --ca "$P/server-ca.pem" \
	--policy-trust "$P/policy-ca.pem" --state-dir "$T/state" --poll-interval 1 --interval 1 \
	--hz 19 --no-top --metrics-listen none --output "$T/out"

wait_for 40 status_has '; control plane: connected$'
tap_result "${TESTS[0]}" $? "STATUS= lines:" "$(status | uniq)" "vigild:" "$(tail -5 "$LOG")"

CG=$(cgroup2_root)/vigil-it-$$-cp
cat >"$T/p1.yaml" <<EOF
version: 1
serial: 1
defaults:
  hz: {min: 1, max: 99, start: 19}
tenants:
  - name: cpweb
    cgroups: ["$CG"]
EOF
openssl cms -sign -binary -md sha256 -outform DER -in "$T/p1.yaml" -signer "$P/signer.pem" \
	-inkey "$P/signer.key" -out "$T/p1.yaml.sig"
problems=
ctl policy upload "$T/p1.yaml" "$T/p1.yaml.sig" || problems+="upload failed: $(cat "$T/ctl.err"); "
ctl assign 1 --selector "host.name=$(hostname)" || problems+="assign failed: $(cat "$T/ctl.err"); "
wait_for 20 status_has ': default 19 Hz, cpweb [0-9]+ Hz;.*; control plane: connected, policy serial 1$' ||
	problems+="no STATUS= with the tenant cpweb and 'connected, policy serial 1'; "
tap_result "${TESTS[1]}" $([ -z "$problems" ]; echo $?) "$problems" "STATUS= lines:" "$(status | uniq)"

problems=
kill -TERM "$CP_PID"
wait "$CP_PID" 2>/dev/null
wait_for 30 status_has '^sampling at 19 Hz; .*; control plane: failing, policy serial 1$' ||
	problems+="no STATUS= with 'sampling' and 'control plane: failing, policy serial 1'; "
kill -TERM "$VIGILD_PID"
vigild_wait 30
[ "$VIGILD_RC" -eq 0 ] || problems+="vigild exited $VIGILD_RC; "
tap_result "${TESTS[2]}" $([ -z "$problems" ]; echo $?) "$problems" "STATUS= lines:" "$(status | uniq)" \
	"vigild:" "$(tail -5 "$LOG")"
tap_done
