#!/bin/bash
# tests/integration/verifier.sh - a BPF object that passes every signature
# and identity check but that the kernel's verifier rejects: vigild must say
# so with the relevant tail of the verifier log, and leave nothing loaded.

. "$(dirname "$0")/lib.sh"

TESTS=("signed object rejected by the verifier: exit 65, verifier log tail in the error, nothing loaded")
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$B/vigil-sign" "${TESTS[@]}"

D=$T/bpf
mkdir -p "$D"
if ! clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -D__VIGIL_BPF__ -I"$B/gen" -I"$VIGIL_ROOT/bpf" \
	-c "$VIGIL_ROOT/tests/bpf/verifier_reject.bpf.c" -o "$D/profile.bpf.o" 2>"$T/cc.err"; then
	tap_not_ok "${TESTS[0]}" "cannot build the test object:" "$(cat "$T/cc.err")"
	tap_done
fi
"$B/vigil-sign" sign --cert "$B/dev-ca/signer.pem" --key "$B/dev-ca/signer.key" "$D/profile.bpf.o" \
	>"$T/sign.out" 2>&1 || tap_diag "vigil-sign failed:" "$(cat "$T/sign.out")"

before=$(vigil_sample_ids)
timeout 60 "$VIGILD" --bpf-dir "$D" --trust "$B/dev-ca/ca.pem" --duration 2 --output "$T/out" \
	>"$T/stdout" 2>"$T/stderr"
rc=$?
# Only programs this test's processes hold count: the host may run other
# vigild instances (a shared machine), whose programs come and go.
for _ in $(seq 30); do
	leaks=$(leaked "$before")
	[ -z "$leaks" ] && break
	sleep 0.1
done
# The verifier explains itself with register states and a reason such as
# "invalid mem access 'scalar'"; the error must carry that, not just EACCES.
tap_result "${TESTS[0]}" $([ "$rc" -eq 65 ] && grep -q 'verifier rejected' "$T/stderr" &&
	grep -qE "invalid mem access|R[0-9] invalid|scalar" "$T/stderr" &&
	grep -q "signature verified" "$T/stderr" && [ -z "$leaks" ]; echo $?) \
	"exit $rc, left loaded: ${leaks:-nothing}; stderr:" "$(cat "$T/stderr")"
tap_done
