#!/bin/bash
# tests/integration/vigild_signing.sh - vigild loads only BPF objects a
# trusted signer signed, and refuses everything else before loading.
#
# Each case puts a profile.bpf.o (+ .sig) in its own directory and runs
#   vigild --bpf-dir DIR --trust CA [--crl CRL] --duration 1 --output OUT
# A good object must profile (exit 0, a profile written).  A refused one
# must exit 77 with exactly one log line "DIR/profile.bpf.o: refused
# (REASON): ...", write no profile, and leave no vigil_sample program
# loaded (bpftool prog show).  The PKI comes from lib_pki.sh (openssl CLI).
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pki.sh"

TESTS=(
	"good object signed by vigil-sign: profiles"
	"good object signed by openssl cms: profiles"
	"byte 0 flipped: refused (digest-mismatch)"
	"byte in the middle flipped: refused (digest-mismatch)"
	"last byte flipped: refused (digest-mismatch)"
	"signature of another file: refused (digest-mismatch)"
	"untrusted CA: refused (untrusted)"
	"expired certificate: refused (expired)"
	"certificate not yet valid: refused (not-yet-valid)"
	"certificate without codeSigning: refused (bad-eku)"
	"revoked certificate with --crl: refused (revoked)"
	"missing signature: refused (no-signature)"
	"garbage signature: refused (malformed-signature)"
	"truncated signature: refused (malformed-signature)"
	"empty object: refused (empty-object)"
	"object built for another slot: refused (wrong-name)"
	"object older than vigild accepts: refused (old-version)"
)
tap_plan ${#TESTS[@]}

require_file "$VIGILD" "${TESTS[@]}"
require_file "$SIGN" "${TESTS[@]}"
require_bpf "${TESTS[@]}"
if ! setup_pki 2>"$T/setup.err"; then
	for t in "${TESTS[@]}"; do
		tap_not_ok "$t" "could not make the test PKI with openssl:" "$(head -5 "$T/setup.err")"
	done
	tap_done
fi

ROOT=$P/root/ca.pem
SRC=$B/bpf/profile.bpf.o
LEN=$(stat -c %s "$SRC")
NOTE=$(note_offset "$SRC")
N=0

# case_dir: a fresh DIR with a copy of the sampler; path in $DIR.
case_dir() {
	N=$((N + 1))
	DIR=$T/case$N
	mkdir -p "$DIR"
	cp "$SRC" "$DIR/profile.bpf.o"
}

# run_vigild DIR [ARGS...]: exit code in $RC, output in $T/log, leaks in $LEAKS.
run_vigild() {
	local dir=$1 before
	shift
	rm -rf "$T/out"
	before=$(vigil_sample_ids)
	timeout 60 "$VIGILD" --bpf-dir "$dir" --trust "$ROOT" "$@" --duration 1 --interval 1 \
		--output "$T/out" >"$T/log" 2>&1
	RC=$?
	# The kernel frees a program shortly after its last holder exits.
	for _ in $(seq 30); do
		LEAKS=$(leaked "$before")
		[ -z "$LEAKS" ] && break
		sleep 0.1
	done
}

expect_profiles() {
	local name=$1 dir=$2 n
	shift 2
	run_vigild "$dir" "$@"
	n=$(profile_files "$T/out" | wc -l)
	tap_result "$name" $([ "$RC" -eq 0 ] && [ "$n" -ge 1 ] && [ -z "$LEAKS" ]; echo $?) \
		"exit $RC, $n profile(s), leaks: ${LEAKS:-none}" "$(head -5 "$T/log")"
}

expect_refused() {
	local name=$1 token=$2 dir=$3 n lines
	shift 3
	run_vigild "$dir" "$@"
	n=$(profile_files "$T/out" | wc -l)
	lines=$(grep -c 'refused' "$T/log")
	tap_result "$name" \
		$([ "$RC" -eq 77 ] && [ "$lines" -eq 1 ] && [ "$n" -eq 0 ] && [ -z "$LEAKS" ] &&
			grep -qF "$dir/profile.bpf.o: refused ($token): " "$T/log"; echo $?) \
		"exit $RC (want 77), $lines 'refused' line(s) (want 1 naming $dir/profile.bpf.o and ($token)), $n profile(s), leaks: ${LEAKS:-none}" \
		"$(head -5 "$T/log")"
}

i=0
case_dir; our_sign good "$DIR/profile.bpf.o"
expect_profiles "${TESTS[i++]}" "$DIR"
case_dir; ossl_sign good "$DIR/profile.bpf.o" "$DIR/profile.bpf.o.sig"
expect_profiles "${TESTS[i++]}" "$DIR"

for off in 0 $((LEN / 2)) $((LEN - 1)); do
	case_dir; our_sign good "$DIR/profile.bpf.o"
	flip "$DIR/profile.bpf.o" "$off"
	expect_refused "${TESTS[i++]}" digest-mismatch "$DIR"
done
case_dir
cp "$B/bpf/empty.bpf.o" "$T/other.bin" 2>/dev/null || printf 'another file' >"$T/other.bin"
our_sign good "$T/other.bin"
cp "$T/other.bin.sig" "$DIR/profile.bpf.o.sig"
expect_refused "${TESTS[i++]}" digest-mismatch "$DIR"

for c in untrusted:untrusted expired:expired future:not-yet-valid serverauth:bad-eku; do
	case_dir; ossl_sign "${c%%:*}" "$DIR/profile.bpf.o" "$DIR/profile.bpf.o.sig"
	expect_refused "${TESTS[i++]}" "${c#*:}" "$DIR"
done
case_dir; ossl_sign revoked "$DIR/profile.bpf.o" "$DIR/profile.bpf.o.sig"
expect_refused "${TESTS[i++]}" revoked "$DIR" --crl "$P/root.crl"

case_dir
expect_refused "${TESTS[i++]}" no-signature "$DIR"
case_dir; head -c 700 /dev/urandom >"$DIR/profile.bpf.o.sig"
expect_refused "${TESTS[i++]}" malformed-signature "$DIR"
case_dir; our_sign good "$DIR/profile.bpf.o"
head -c 300 "$DIR/profile.bpf.o.sig" >"$DIR/t" && mv "$DIR/t" "$DIR/profile.bpf.o.sig"
expect_refused "${TESTS[i++]}" malformed-signature "$DIR"
case_dir; our_sign good "$DIR/profile.bpf.o"
: >"$DIR/profile.bpf.o"
expect_refused "${TESTS[i++]}" empty-object "$DIR"

# Properly signed, but not what the slot may load.
case_dir; cp "$B/bpf/empty.bpf.o" "$DIR/profile.bpf.o"; our_sign good "$DIR/profile.bpf.o"
expect_refused "${TESTS[i++]}" wrong-name "$DIR"
case_dir
printf '\000' | dd of="$DIR/profile.bpf.o" bs=1 seek=$((NOTE + 12)) conv=notrunc status=none
our_sign good "$DIR/profile.bpf.o"
expect_refused "${TESTS[i++]}" old-version "$DIR"

tap_done
