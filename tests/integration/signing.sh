#!/bin/bash
# tests/integration/signing.sh - signed BPF objects, the whole matrix, with
# certificates this test makes with the openssl CLI (openssl req/ca).
#
# A PKI in $T: a trusted root CA with an intermediate, an untrusted "other"
# root, and signers that are good, chained, expired, not yet valid, for the
# wrong usage, and revoked (with a CRL).  Objects are copies of the built
# build/bpf/*.bpf.o.  Each case runs vigil-sign verify (verify --bpf runs the
# very checks vigild runs before loading, bpfobj_read_verified) and asserts
# the exit code (0, or 77 when refused), the reason token and the file
# named in the message.  Signatures go both ways with `openssl cms`.
# No BPF is loaded here: tests/integration/vigild_signing.sh does that.
#
# It starts no vigild and times nothing a loaded host could miss:
# tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pki.sh"

TESTS_ALL="vigil-sign and openssl are available"
# Every case below, loops included (6 flipped bytes, 3 truncations), counted.
tap_plan 68
require_file "$SIGN" "$TESTS_ALL"
require_file "$B/bpf/profile.bpf.o" "$TESTS_ALL"
if ! command -v openssl >/dev/null; then
	tap_not_ok "$TESTS_ALL" "openssl(1) is not installed (make deps)"
	tap_done
fi

# accepted NAME ARGS...: vigil-sign verify ARGS exits 0 and says OK.
accepted() {
	local name=$1 rc
	shift
	"$SIGN" verify "$@" >"$T/out" 2>"$T/err"
	rc=$?
	tap_result "$name" $([ $rc -eq 0 ] && grep -q ': OK: ' "$T/out"; echo $?) \
		"vigil-sign verify $* -> exit $rc" "$(cat "$T/out" "$T/err" | head -5)"
}

# refused NAME TOKEN ARGS...: vigil-sign verify ARGS (last one the object)
# exits 77 with one line "...OBJECT: refused (TOKEN): ...".
refused() {
	local name=$1 token=$2 rc file lines
	shift 2
	file=${*: -1}
	"$SIGN" verify "$@" >"$T/out" 2>"$T/err"
	rc=$?
	lines=$(grep -c . "$T/err")
	tap_result "$name" \
		$([ $rc -eq 77 ] && [ "$lines" -eq 1 ] && grep -qF "$file: refused ($token): " "$T/err"; echo $?) \
		"vigil-sign verify $* -> exit $rc, expected 77 and \"$file: refused ($token)\":" \
		"$(cat "$T/out" "$T/err" | head -5)"
}

# ---------------------------------------------------------------------------

if ! setup_pki 2>"$T/setup.err"; then
	tap_not_ok "$TESTS_ALL" "could not make the test PKI with openssl:" "$(head -20 "$T/setup.err")"
	tap_done
fi
tap_ok "$TESTS_ALL"

ROOT=$P/root/ca.pem
D=$T/objs
mkdir -p "$D"
cp "$B/bpf/profile.bpf.o" "$D/profile.bpf.o"
cp "$B/bpf/empty.bpf.o" "$D/empty.bpf.o" 2>/dev/null || cp "$B/bpf/profile.bpf.o" "$D/empty.bpf.o"
OBJ=$D/profile.bpf.o
LEN=$(stat -c %s "$OBJ")
# the profile object's version, as built (bpf/vigil_abi.h)
PV=$(sed -n 's/^#define VIGIL_PROFILE_OBJ_VERSION \([0-9]*\).*/\1/p' "$VIGIL_ROOT/bpf/vigil_abi.h")

# --- Good signatures, both ways with openssl --------------------------------

our_sign good "$OBJ"
accepted "vigil-sign signature verifies" --trust "$ROOT" "$OBJ"
openssl cms -verify -binary -inform DER -purpose any -content "$OBJ" -in "$OBJ.sig" \
	-CAfile "$ROOT" -out /dev/null >"$T/ossl.out" 2>&1
tap_result "openssl cms -verify accepts a vigil-sign signature" $? "$(head -3 "$T/ossl.out")"
accepted "verify --bpf: the checks vigild makes pass" --trust "$ROOT" --bpf \
	--min-version "$PV" "$OBJ"
[ -n "$PV" ] && grep -q "profile version $PV " "$T/out"
tap_result "verify --bpf reports the object's name and version" $? "$(cat "$T/out")"

ossl_sign good "$OBJ" "$T/ossl.sig"
accepted "openssl cms signature verifies" --trust "$ROOT" --sig "$T/ossl.sig" "$OBJ"
cp "$T/ossl.sig" "$OBJ.sig"
accepted "openssl cms signature passes verify --bpf" --trust "$ROOT" --bpf "$OBJ"

accepted "a CRL that does not list the signer" --trust "$ROOT" --crl "$P/root.crl" --sig "$T/ossl.sig" "$OBJ"

cp "$OBJ" "$T/chained.bin"
"$SIGN" sign --cert "$P/chained-full.pem" --key "$P/chained.key" "$T/chained.bin"
accepted "signer under an intermediate (chain in the signature)" --trust "$ROOT" "$T/chained.bin"
openssl cms -verify -binary -inform DER -purpose any -content "$T/chained.bin" -in "$T/chained.bin.sig" \
	-CAfile "$ROOT" -out /dev/null >"$T/ossl.out" 2>&1
tap_result "openssl cms -verify accepts the chained vigil-sign signature" $? "$(head -3 "$T/ossl.out")"
ossl_sign chained "$T/chained.bin" "$T/chained.ossl.sig" -certfile "$P/inter/ca.pem"
accepted "openssl cms signature under an intermediate (-certfile)" --trust "$ROOT" \
	--sig "$T/chained.ossl.sig" "$T/chained.bin"
accepted "trust store holding only the intermediate" --trust "$P/inter/ca.pem" "$T/chained.bin"
ossl_sign chained "$T/chained.bin" "$T/chained.nochain.sig"
refused "intermediate signature without the chain" untrusted --trust "$ROOT" \
	--sig "$T/chained.nochain.sig" "$T/chained.bin"

# --- The bytes: flips, another file, empty ---------------------------------

our_sign good "$OBJ"
for off in 0 1 64 $((LEN / 3)) $((LEN / 2)) $((LEN - 1)); do
	cp "$OBJ" "$D/flip.bin"
	cp "$OBJ.sig" "$D/flip.bin.sig"
	flip "$D/flip.bin" "$off"
	refused "byte $off of $LEN flipped" digest-mismatch --trust "$ROOT" "$D/flip.bin"
done
# The identity note itself: a rollback attempt without the signer's key.
NOTE=$(note_offset "$OBJ")
cp "$OBJ" "$D/flip.bin"
cp "$OBJ.sig" "$D/flip.bin.sig"
flip "$D/flip.bin" $((NOTE + 12))
refused "byte of the identity note flipped" digest-mismatch --trust "$ROOT" "$D/flip.bin"

our_sign good "$D/empty.bpf.o"
cp "$D/empty.bpf.o.sig" "$D/other.bin.sig"
cp "$OBJ" "$D/other.bin"
refused "signature of a different file" digest-mismatch --trust "$ROOT" "$D/other.bin"
cat "$OBJ" /dev/null >"$D/longer.bin" && printf x >>"$D/longer.bin"
cp "$OBJ.sig" "$D/longer.bin.sig"
refused "one byte appended" digest-mismatch --trust "$ROOT" "$D/longer.bin"

: >"$D/empty.bin"
cp "$OBJ.sig" "$D/empty.bin.sig"
refused "empty object" empty-object --trust "$ROOT" "$D/empty.bin"

# --- The signature file: missing, garbage, truncated ------------------------

cp "$OBJ" "$D/nosig.bin"
refused "missing signature" no-signature --trust "$ROOT" "$D/nosig.bin"
cp "$OBJ" "$D/emptysig.bin"
: >"$D/emptysig.bin.sig"
refused "empty signature" no-signature --trust "$ROOT" "$D/emptysig.bin"
cp "$OBJ" "$D/garbage.bin"
head -c 700 /dev/urandom >"$D/garbage.bin.sig"
refused "garbage signature" malformed-signature --trust "$ROOT" "$D/garbage.bin"
SIGLEN=$(stat -c %s "$OBJ.sig")
for n in 1 $((SIGLEN / 2)) $((SIGLEN - 1)); do
	cp "$OBJ" "$D/trunc.bin"
	head -c "$n" "$OBJ.sig" >"$D/trunc.bin.sig"
	refused "signature truncated to $n of $SIGLEN bytes" malformed-signature --trust "$ROOT" "$D/trunc.bin"
done
openssl cms -sign -binary -md sha256 -outform PEM -in "$OBJ" -signer "$P/good.pem" \
	-inkey "$P/good.key" -out "$D/pem.bin.sig" 2>/dev/null
cp "$OBJ" "$D/pem.bin"
refused "PEM instead of DER signature" malformed-signature --trust "$ROOT" "$D/pem.bin"
cp "$OBJ" "$D/sha1.bin"
ossl_sign good "$D/sha1.bin" "$D/sha1.bin.sig" -md sha1
refused "SHA-1 digest" weak-digest --trust "$ROOT" "$D/sha1.bin"
cp "$OBJ" "$D/nocerts.bin"
ossl_sign good "$D/nocerts.bin" "$D/nocerts.bin.sig" -nocerts
refused "signer certificate left out (-nocerts)" no-signer-certificate --trust "$ROOT" "$D/nocerts.bin"

# --- The certificate: trust, validity, usage, revocation --------------------

sig_case() { # NAME TOKEN SIGNER [VERIFY OPTS...]: openssl-signed copy of the object
	local name=$1 token=$2 signer=$3 f
	shift 3
	f=$D/cert-$signer.bin
	cp "$OBJ" "$f"
	ossl_sign "$signer" "$f" "$f.sig" || { tap_not_ok "$name" "openssl cms -sign failed:" "$(cat "$T/ossl.err")"; return; }
	refused "$name" "$token" --trust "$ROOT" "$@" "$f"
}
sig_case "signer from an untrusted CA" untrusted untrusted
sig_case "expired signing certificate" expired expired
sig_case "signing certificate not yet valid" not-yet-valid future
sig_case "certificate for serverAuth, not codeSigning" bad-eku serverauth
sig_case "certificate without extended key usage" bad-eku noeku
sig_case "revoked certificate with the CRL" revoked revoked --crl "$P/root.crl"
accepted "the same revoked certificate without a CRL" --trust "$ROOT" "$D/cert-revoked.bin"
sig_case "CRL of another CA: revocation unknown" crl-unusable good --crl "$P/other.crl"
cp "$OBJ" "$D/exp.bin"
ossl_sign expired "$D/exp.bin" "$D/exp.bin.sig"
"$SIGN" verify --trust "$ROOT" "$D/exp.bin" 2>"$T/err" >/dev/null
grep -q 'CN=expired expired on 2020-02-01' "$T/err"
tap_result "expiry message names the certificate and the date" $? "$(cat "$T/err")"

# vigil-sign refuses to make signatures vigild would refuse.
for s in expired future serverauth; do
	cp "$OBJ" "$D/s-$s.bin"
	"$SIGN" sign --cert "$P/$s.pem" --key "$P/$s.key" "$D/s-$s.bin" 2>"$T/err"
	rc=$?
	tap_result "vigil-sign sign refuses the $s certificate (exit 65)" \
		$([ $rc -eq 65 ] && [ ! -e "$D/s-$s.bin.sig" ]; echo $?) "exit $rc:" "$(cat "$T/err")"
done
"$SIGN" sign --cert "$P/good.pem" --key "$P/serverauth.key" "$D/s-good.bin" 2>"$T/err"
rc=$?
tap_result "vigil-sign sign refuses a key that is not the certificate's (exit 65)" \
	$([ $rc -eq 65 ] && grep -q 'does not belong' "$T/err"; echo $?) "exit $rc:" "$(cat "$T/err")"

# --- Identity: name and version (verify --bpf, as vigild) -------------------

W=$T/wrongname
mkdir -p "$W"
cp "$OBJ" "$W/empty.bpf.o"
our_sign good "$W/empty.bpf.o"
refused "profile object in the empty slot (wrong name)" wrong-name --trust "$ROOT" --bpf "$W/empty.bpf.o"
refused "object older than the minimum version" old-version --trust "$ROOT" --bpf --min-version $((PV + 1)) "$OBJ"
V=$T/oldversion
mkdir -p "$V"
cp "$OBJ" "$V/profile.bpf.o"
printf '\000' | dd of="$V/profile.bpf.o" bs=1 seek=$((NOTE + 12)) conv=notrunc status=none
our_sign good "$V/profile.bpf.o"
accepted "a version-0 object signed properly verifies as a file" --trust "$ROOT" "$V/profile.bpf.o"
refused "a signed version-0 object is a rollback for vigild" old-version --trust "$ROOT" --bpf \
	--min-version 1 "$V/profile.bpf.o"
L=$T/symlink
mkdir -p "$L"
cp "$OBJ" "$L/real.o"
cp "$OBJ.sig" "$L/profile.bpf.o.sig"
ln -s real.o "$L/profile.bpf.o"
refused "object behind a symlink" not-regular-file --trust "$ROOT" --bpf "$L/profile.bpf.o"
N=$T/notbpf
mkdir -p "$N"
cp /bin/true "$N/profile.bpf.o"
our_sign good "$N/profile.bpf.o"
refused "signed file that is not a BPF object" not-bpf-object --trust "$ROOT" --bpf "$N/profile.bpf.o"

# --- vigil-sign itself -------------------------------------------------------

"$SIGN" >/dev/null 2>"$T/err"
rc=$?
tap_result "vigil-sign without a command: exit 64, one line" \
	$([ $rc -eq 64 ] && [ "$(grep -c . "$T/err")" -eq 1 ]; echo $?) "exit $rc:" "$(cat "$T/err")"
"$SIGN" verify --trust "$ROOT" --bogus "$OBJ" >/dev/null 2>"$T/err"
rc=$?
tap_result "vigil-sign unknown option: exit 64, one line" \
	$([ $rc -eq 64 ] && [ "$(grep -c . "$T/err")" -eq 1 ]; echo $?) "exit $rc:" "$(cat "$T/err")"
"$SIGN" verify --trust "$ROOT" "$D/no-such-file" >/dev/null 2>"$T/err"
rc=$?
tap_result "vigil-sign verify of a missing file: exit 66" $([ $rc -eq 66 ]; echo $?) "exit $rc:" "$(cat "$T/err")"
"$SIGN" verify --trust "$P/good.key" "$OBJ" >/dev/null 2>"$T/err"
rc=$?
tap_result "vigil-sign verify with a key as trust store: exit 65" $([ $rc -eq 65 ]; echo $?) "exit $rc:" "$(cat "$T/err")"

DC=$T/devca
"$SIGN" dev-ca --out "$DC" --days 2 2>"$T/err" &&
	cp "$OBJ" "$T/dc.bin" &&
	"$SIGN" sign --cert "$DC/signer.pem" --key "$DC/signer.key" "$T/dc.bin" &&
	"$SIGN" verify --trust "$DC/ca.pem" "$T/dc.bin" >/dev/null &&
	openssl cms -verify -binary -inform DER -purpose any -content "$T/dc.bin" -in "$T/dc.bin.sig" \
		-CAfile "$DC/ca.pem" -out /dev/null 2>>"$T/err" &&
	openssl x509 -in "$DC/signer.pem" -noout -ext extendedKeyUsage 2>>"$T/err" | grep -q 'Code Signing' &&
	[ "$(stat -c %a "$DC/signer.key")" = 600 ]
tap_result "dev-ca: a codeSigning signer whose signatures verify (ours and openssl's)" $? "$(cat "$T/err")"
"$SIGN" dev-ca --out "$DC" 2>"$T/err"
rc=$?
tap_result "dev-ca does not replace an existing CA without --force (exit 73)" \
	$([ $rc -eq 73 ] && grep -q -- --force "$T/err"; echo $?) "exit $rc:" "$(cat "$T/err")"

# make's own signatures: build/bpf/*.sig under build/dev-ca.
if [ -f "$B/dev-ca/ca.pem" ]; then
	"$SIGN" verify --trust "$B/dev-ca/ca.pem" --bpf "$B"/bpf/*.bpf.o >"$T/out" 2>&1
	tap_result "make signed build/bpf/*.bpf.o with build/dev-ca" $? "$(cat "$T/out")"
else
	tap_not_ok "make signed build/bpf/*.bpf.o with build/dev-ca" "$B/dev-ca/ca.pem missing: run make"
fi

# A key in a PKCS#11 token (signing/p11key.c): SoftHSM stands for an HSM;
# the key's file is deleted once imported, so only the token can sign.
HSM=$T/hsm
softhsm_token "$HSM" Token vigil-test 2468
hsm_rc=$?
(umask 077 && printf 1111 >"$HSM/badpin")
TOKEN_URI="pkcs11:token=vigil-test;object=signer;type=private"
mkdir -p "$HSM/obj"
cp "$B/bpf/profile.bpf.o" "$HSM/obj/profile.bpf.o"

# hsm_refused NAME WANT URI CERT [STDIN]: vigil-sign sign exits 65 with one
# line naming URI without its query (which may hold a PIN) and saying WANT;
# no signature is written.  STDIN (default empty) is offered on its stdin,
# which it must not read for a PIN.
hsm_refused() {
	local rc lines query=${3#*\?}
	[ "$query" = "$3" ] && query='no query to hide'
	rm -f "$HSM/obj/profile.bpf.o.sig"
	printf '%s' "${5:-}" | "$SIGN" sign --cert "$4" --key "$3" "$HSM/obj/profile.bpf.o" >"$T/out" 2>"$T/err"
	rc=${PIPESTATUS[1]}
	lines=$(grep -c . "$T/err")
	tap_result "$1" $([ $hsm_rc -eq 0 ] && [ $rc -eq 65 ] && [ "$lines" -eq 1 ] && grep -qF "${3%%\?*}" "$T/err" &&
		! grep -qF "$query" "$T/err" && grep -q "$2" "$T/err" && [ ! -e "$HSM/obj/profile.bpf.o.sig" ]; echo $?) \
		"token setup exit $hsm_rc; vigil-sign sign -> exit $rc, want 65 and one line with the URI (no query) and '$2':" \
		"$(cat "$T/out" "$T/err" "$HSM/setup.out" | head -8)"
}

"$SIGN" sign --cert "$HSM/keys/signer.pem" --key "$TOKEN_URI?pin-source=$HSM/pin" "$HSM/obj/profile.bpf.o" >"$T/out" 2>"$T/err" &&
	"$SIGN" verify --trust "$HSM/keys/ca.pem" --bpf "$HSM/obj/profile.bpf.o" >>"$T/out" 2>>"$T/err" &&
	openssl cms -verify -binary -inform DER -in "$HSM/obj/profile.bpf.o.sig" -content "$HSM/obj/profile.bpf.o" \
		-CAfile "$HSM/keys/ca.pem" -purpose any -out /dev/null >>"$T/out" 2>>"$T/err"
signed_rc=$?
tap_result "pkcs11: vigil-sign signs with a key in a token (its file deleted); vigil-sign verify --bpf and openssl cms accept it" \
	$([ $hsm_rc -eq 0 ] && [ $signed_rc -eq 0 ]; echo $?) "token setup exit $hsm_rc:" "$(cat "$T/out" "$T/err" "$HSM/setup.out" | head -8)"
hsm_refused "pkcs11: a wrong PIN: exit 65, one line naming the URI, no signature" "or missing PIN" \
	"$TOKEN_URI?pin-source=$HSM/badpin" "$HSM/keys/signer.pem"
hsm_refused "pkcs11: a wrong PIN in the URI (pin-value=): exit 65, the PIN not shown, no signature" "or missing PIN" \
	"$TOKEN_URI?pin-value=1111" "$HSM/keys/signer.pem"
hsm_refused "pkcs11: no PIN in the URI: exit 65, nothing read from stdin (which holds the PIN), no signature" \
	"or missing PIN" "$TOKEN_URI" "$HSM/keys/signer.pem" "$(printf '2468\n')"
hsm_refused "pkcs11: no such key in the token: exit 65, one line naming the URI, no signature" "no such private key" \
	"pkcs11:token=vigil-test;object=nobody;type=private?pin-source=$HSM/pin" "$HSM/keys/signer.pem"
hsm_refused "pkcs11: the token's key does not belong to --cert: exit 65, no signature" "does not belong" \
	"$TOKEN_URI?pin-source=$HSM/pin" "$P/good.pem"

# A PIN among the path's attributes, where libp11 takes it too (after ';'
# or '&', the scheme in any case): not shown.  path_pin NAME URI SHOWN:
# vigil-sign exits 65 with one line holding SHOWN and not the PIN (1111).
path_pin() {
	local rc
	rm -f "$HSM/obj/profile.bpf.o.sig"
	"$SIGN" sign --cert "$HSM/keys/signer.pem" --key "$2" "$HSM/obj/profile.bpf.o" >"$T/out" 2>"$T/err"
	rc=$?
	tap_result "$1" $([ $hsm_rc -eq 0 ] && [ $rc -eq 65 ] && [ "$(grep -c . "$T/err")" -eq 1 ] &&
		! grep -q 1111 "$T/err" && grep -qF "$3" "$T/err" && [ ! -e "$HSM/obj/profile.bpf.o.sig" ]; echo $?) \
		"exit $rc, want 65 and one line with '$3', without the PIN:" "$(cat "$T/out" "$T/err" | head -5)"
}
path_pin "pkcs11: a wrong PIN among the path's attributes: exit 65, shown as pin-value=..., no signature" \
	"$TOKEN_URI;pin-value=1111" "$TOKEN_URI;pin-value=...:"
path_pin "pkcs11: a wrong PIN after '&' in the path: exit 65, shown as pin-value=..., no signature" \
	"$TOKEN_URI&pin-value=1111" "$TOKEN_URI&pin-value=...:"
path_pin "pkcs11: PKCS11: in capitals, a wrong PIN in the path: exit 65, taken as a URI, the PIN not shown" \
	"PKCS11:${TOKEN_URI#pkcs11:};PIN-VALUE=1111" "PKCS11:${TOKEN_URI#pkcs11:};PIN-VALUE=...:"

# VIGIL_PKCS11_MODULE naming no file: said so, not "no such key".
VIGIL_PKCS11_MODULE=$T/no-such-module.so "$SIGN" sign --cert "$HSM/keys/signer.pem" \
	--key "$TOKEN_URI?pin-source=$HSM/pin" "$HSM/obj/profile.bpf.o" >"$T/out" 2>"$T/err"
rc=$?
tap_result "pkcs11: VIGIL_PKCS11_MODULE names no file: exit 65, one line naming it and why, no signature" \
	$([ $rc -eq 65 ] && [ "$(grep -c . "$T/err")" -eq 1 ] &&
		grep -qF "VIGIL_PKCS11_MODULE=$T/no-such-module.so: No such file or directory" "$T/err" &&
		[ ! -e "$HSM/obj/profile.bpf.o.sig" ]; echo $?) \
	"exit $rc, want 65 and one line:" "$(cat "$T/out" "$T/err" | head -5)"

tap_done
