#!/bin/bash
# tests/integration/lib_pki.sh - a throw-away PKI made with the openssl CLI, for
# the signing tests (signing.sh, vigild_signing.sh).  Sourced after lib.sh,
# never run (tests/run.sh runs no lib*.sh).
#
# setup_pki makes, under $P ($T/pki):
#   root/ca.pem       trusted root CA          root.crl   its CRL (revokes "revoked")
#   inter/ca.pem      intermediate under root  other.crl  CRL of the other CA
#   other/ca.pem      an untrusted root
#   NAME.pem/.key     signers: good, revoked, chained (under inter;
#                     chained-full.pem has the chain), expired (2020),
#                     future (2040), serverauth (wrong EKU), noeku,
#                     untrusted (under other)
# and gives ossl_sign / our_sign (openssl cms or vigil-sign) and flip.
#
# Its openssl ca helpers (quiet, newkey, ca_section, cnf_common, ca_dir) also
# make lib_cppki.sh's PKI: sourcing this file only defines, it makes nothing.

[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0

SIGN=$B/vigil-sign
P=$T/pki
CNF=$P/openssl.cnf

# quiet CMD...: run CMD, show its output only if it fails.
quiet() {
	local out
	out=$("$@" 2>&1) || { echo "setup failed: $*" >&2; echo "$out" >&2; return 1; }
}

# ca_section NAME [BASE]: the openssl.cnf section of CA NAME, kept in
# BASE/NAME (BASE defaults to $P).
ca_section() {
	cat <<EOF
[ $1 ]
dir = ${2:-$P}/$1
database = \$dir/index.txt
new_certs_dir = \$dir/new
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
serial = \$dir/serial
crlnumber = \$dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 7
policy = anything
unique_subject = no
copy_extensions = none
EOF
}

# cnf_common: the openssl.cnf sections both PKIs use: any subject, a
# prompt-less req, a root CA, and leaves with the wrong EKU or none.
cnf_common() {
	cat <<'EOF'
[ anything ]
commonName = supplied
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ serverauth ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ noeku ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

# write_cnf: $CNF, for the signing PKI.
write_cnf() {
	mkdir -p "$P" || return 1
	{
		ca_section root
		ca_section inter
		ca_section other
		cnf_common
		cat <<'EOF'
[ v3_inter ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ codesign ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	} >"$CNF"
}

newkey() { quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# ca_dir NAME [BASE]: an empty openssl ca database and a key in BASE/NAME
# (BASE defaults to $P).
ca_dir() {
	local d=${2:-$P}/$1
	mkdir -p "$d/new"
	: >"$d/index.txt"
	echo 1000 >"$d/serial"
	echo 1000 >"$d/crlnumber"
	newkey "$d/ca.key"
}

# issue CA NAME PROFILE [STARTDATE ENDDATE]: $P/NAME.pem and $P/NAME.key.
issue() {
	local ca=$1 name=$2 ext=$3 dates=()
	[ $# -ge 5 ] && dates=(-startdate "$4" -enddate "$5")
	newkey "$P/$name.key" &&
		quiet openssl req -new -config "$CNF" -key "$P/$name.key" -subj "/CN=$name" -out "$P/$name.csr" &&
		quiet openssl ca -batch -notext -config "$CNF" -name "$ca" -extensions "$ext" "${dates[@]}" \
			-in "$P/$name.csr" -out "$P/$name.pem"
}

setup_pki() {
	write_cnf && ca_dir root && quiet openssl req -new -x509 -config "$CNF" -extensions v3_ca -key "$P/root/ca.key" \
		-subj "/CN=Test root CA" -days 30 -out "$P/root/ca.pem" || return 1
	ca_dir other && quiet openssl req -new -x509 -config "$CNF" -extensions v3_ca -key "$P/other/ca.key" \
		-subj "/CN=Test other CA" -days 30 -out "$P/other/ca.pem" || return 1
	ca_dir inter && quiet openssl req -new -config "$CNF" -key "$P/inter/ca.key" \
		-subj "/CN=Test intermediate CA" -out "$P/inter/ca.csr" &&
		quiet openssl ca -batch -notext -config "$CNF" -name root -extensions v3_inter \
			-in "$P/inter/ca.csr" -out "$P/inter/ca.pem" || return 1
	issue root good codesign &&
		issue root revoked codesign &&
		issue root expired codesign 20200101000000Z 20200201000000Z &&
		issue root future codesign 20400101000000Z 20400201000000Z &&
		issue root serverauth serverauth &&
		issue root noeku noeku &&
		issue other untrusted codesign &&
		issue inter chained codesign || return 1
	# The chained signer's file carries its intermediate, as PKIs hand them out.
	cat "$P/chained.pem" "$P/inter/ca.pem" >"$P/chained-full.pem"
	quiet openssl ca -config "$CNF" -name root -revoke "$P/revoked.pem" &&
		quiet openssl ca -config "$CNF" -name root -gencrl -out "$P/root.crl" &&
		quiet openssl ca -config "$CNF" -name other -gencrl -out "$P/other.crl"
}

# ossl_sign SIGNER IN OUT [OPTS...]: what an enterprise PKI or HSM would do.
ossl_sign() {
	local signer=$1 in=$2 out=$3
	shift 3
	openssl cms -sign -binary -md sha256 -outform DER -in "$in" -signer "$P/$signer.pem" \
		-inkey "$P/$signer.key" -out "$out" "$@" 2>"$T/ossl.err"
}

# our_sign SIGNER IN: vigil-sign writes IN.sig.
our_sign() {
	"$SIGN" sign --cert "$P/$1.pem" --key "$P/$1.key" "$2"
}

# flip FILE OFFSET: invert one byte in place.
flip() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "$(printf '\\%03o' $((b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# note_offset FILE: byte offset of the object's struct vigil_obj_meta
# (obj_version is at +12, abi_version at +8, name at +16).
note_offset() {
	LC_ALL=C grep -obUa VIGILOBJ "$1" | head -1 | cut -d: -f1
}
