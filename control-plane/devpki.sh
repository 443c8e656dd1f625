#!/bin/sh
# control-plane/devpki.sh DIR - a development PKI for trying the control
# plane on one machine (README "Fleet"), made with the plain openssl
# commands of docs/control-plane.md:
#   server-ca.pem            the CA clients trust for vigil-cp (--ca)
#   cp.pem cp.key            vigil-cp's certificate: localhost, 127.0.0.1, ::1
#   agent-ca.pem             --agent-ca;  agent.pem agent.key: this host's agent
#   admin-ca.pem             --admin-ca;  admin.pem admin.key: an administrator
#   policy-ca.pem            --policy-trust (vigil-cp and vigild)
#   policy-signer.pem .key   a policy signer (Vigil policy-signing EKU)
# Keys are EC P-256, mode 0600; CA keys stay in DIR.  For development only:
# a real deployment keeps CA keys offline and issues per host.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 64; }
mkdir -p "$1"
cd "$1"
umask 077
POLICY_EKU=2.25.227699756064508679566492730626946662765
q() { "$@" >/dev/null 2>&1 || { echo "devpki: failed: $*" >&2; exit 1; }; }
key() { q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

for ca in server agent admin policy; do
	key $ca-ca.key
	q openssl req -x509 -new -key $ca-ca.key -sha256 -days 3650 \
		-subj "/O=Vigil development/CN=Vigil development $ca CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" -out $ca-ca.pem
done

# issue NAME CA SUBJECT EKU [SAN]
issue() {
	key "$1.key"
	q openssl req -new -key "$1.key" -subj "$3" -out "$1.csr"
	{
		echo "basicConstraints = critical, CA:FALSE"
		echo "keyUsage = critical, digitalSignature"
		echo "extendedKeyUsage = $4"
		[ -z "${5:-}" ] || echo "subjectAltName = $5"
	} > "$1.ext"
	q openssl x509 -req -in "$1.csr" -CA "$2-ca.pem" -CAkey "$2-ca.key" -CAcreateserial \
		-days 365 -sha256 -extfile "$1.ext" -out "$1.pem"
	rm -f "$1.csr" "$1.ext"
}
issue cp server "/O=Vigil development/CN=localhost" serverAuth \
	"DNS:localhost, IP:127.0.0.1, IP:::1"
issue agent agent "/O=Vigil development/CN=$(hostname)" clientAuth
issue admin admin "/O=Vigil development/CN=admin" clientAuth
issue policy-signer policy "/O=Vigil development/CN=policy signer" $POLICY_EKU
chmod 0644 ./*.pem
echo "devpki: development PKI in $(pwd)"
