#!/bin/bash
# tests/integration/lib_cppki.sh - a throw-away PKI for the control plane,
# made with the openssl CLI.  Sourced after lib.sh, never run (tests/run.sh
# runs no lib*.sh).
#
# setup_cppki makes, under $CP ($T/cppki):
#   server-ca/ca.pem   the CA clients trust for vigil-cp's certificate
#   server.pem/.key    vigil-cp's certificate: RSA, SAN IP:127.0.0.1 and
#                      DNS:localhost, serverAuth (RSA so that TLS 1.2 suites
#                      without ECDHE would be possible if the server allowed them)
#   agent-ca/ca.pem    agents' CA            admin-ca/ca.pem  administrators' CA
#   other-ca/ca.pem    a CA vigil-cp does not know
#   policy-ca/ca.pem   the --policy-trust CA
#   NAME.pem/.key      client certificates (clientAuth unless said):
#                        agent1, agent2 (revoked later: crl2.pem),
#                        admin1, expired (2020), future (2040),
#                        revoked (in crl1.pem and crl2.pem),
#                        serverauth (serverAuth EKU only), noeku (no EKU),
#                        subca (a CA certificate, with clientAuth),
#                        stranger (from other-ca)
#                      all but admin1 and stranger from agent-ca;
#                      psigner (policy-ca) and psigner2 (other-ca) sign policies
#   crl1.pem           CRLs of agent-ca and admin-ca: "revoked" is revoked
#   crl2.pem           the same, later: "agent2" is revoked as well

[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0

# quiet, newkey, ca_section, cnf_common and ca_dir, shared with the signing PKI.
. "$(dirname "${BASH_SOURCE[0]}")/lib_pki.sh"

CP=$T/cppki
export CP_SAN_DNS=unused # the client profile names each certificate in its SANs
mkdir -p "$CP"

{
	for ca in server-ca agent-ca admin-ca other-ca policy-ca; do ca_section "$ca" "$CP"; done
	cnf_common
	cat <<'EOF2'
[ server ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ client ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:$ENV::CP_SAN_DNS,URI:spiffe://vigil.test/$ENV::CP_SAN_DNS
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ policysign ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ caclient ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyCertSign
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF2
} >"$CP/openssl.cnf"
CPCNF=$CP/openssl.cnf

# cp_ca NAME CN: a self-signed CA in $CP/NAME.
cp_ca() {
	ca_dir "$1" "$CP" &&
		quiet openssl req -new -x509 -config "$CPCNF" -extensions v3_ca -key "$CP/$1/ca.key" \
			-subj "/O=Vigil test/CN=$2" -days 30 -out "$CP/$1/ca.pem"
}

# cp_issue CA NAME PROFILE [STARTDATE ENDDATE]: $CP/NAME.pem and $CP/NAME.key.
cp_issue() {
	local ca=$1 name=$2 ext=$3 dates=()
	[ $# -ge 5 ] && dates=(-startdate "$4" -enddate "$5")
	newkey "$CP/$name.key" &&
		quiet openssl req -new -config "$CPCNF" -key "$CP/$name.key" -subj "/O=Vigil test/CN=$name" \
			-out "$CP/$name.csr" &&
		CP_SAN_DNS=$name.vigil.test quiet openssl ca -batch -notext -config "$CPCNF" -name "$ca" \
			-extensions "$ext" "${dates[@]}" -in "$CP/$name.csr" -out "$CP/$name.pem"
}

# cp_crl OUT: the current CRLs of agent-ca and admin-ca, in one PEM file.
cp_crl() {
	quiet openssl ca -config "$CPCNF" -name agent-ca -gencrl -out "$CP/agent.crl" &&
		quiet openssl ca -config "$CPCNF" -name admin-ca -gencrl -out "$CP/admin.crl" &&
		cat "$CP/agent.crl" "$CP/admin.crl" >"$1"
}

setup_cppki() {
	cp_ca server-ca "Vigil test server CA" && cp_ca agent-ca "Vigil test agent CA" &&
		cp_ca admin-ca "Vigil test admin CA" && cp_ca other-ca "Vigil test other CA" &&
		cp_ca policy-ca "Vigil test policy CA" || return 1
	# The server key is RSA: a server with an RSA key could agree on TLS 1.2
	# suites without ECDHE (AES128-GCM-SHA256) or with CBC, had it allowed them.
	quiet openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$CP/server.key" &&
		quiet openssl req -new -config "$CPCNF" -key "$CP/server.key" -subj "/O=Vigil test/CN=localhost" \
			-out "$CP/server.csr" &&
		quiet openssl ca -batch -notext -config "$CPCNF" -name server-ca -extensions server \
			-in "$CP/server.csr" -out "$CP/server.pem" || return 1
	cp_issue agent-ca agent1 client && cp_issue agent-ca agent2 client &&
		cp_issue admin-ca admin1 client &&
		cp_issue agent-ca expired client 20200101000000Z 20200201000000Z &&
		cp_issue agent-ca future client 20400101000000Z 20400201000000Z &&
		cp_issue agent-ca revoked client && cp_issue agent-ca serverauth serverauth &&
		cp_issue agent-ca noeku noeku && cp_issue agent-ca subca caclient &&
		cp_issue other-ca stranger client && cp_issue policy-ca psigner policysign &&
		cp_issue other-ca psigner2 policysign || return 1
	quiet openssl ca -config "$CPCNF" -name agent-ca -revoke "$CP/revoked.pem" &&
		cp_crl "$CP/crl1.pem" &&
		quiet openssl ca -config "$CPCNF" -name agent-ca -revoke "$CP/agent2.pem" &&
		cp_crl "$CP/crl2.pem"
}
