/*
 * test_csrsign.c - vigil-cp's signing of agents' certificate requests
 * (control-plane/csrsign.c) and its place in the OpAMP server (opampsrv.c),
 * with a PKI the test makes with the openssl command and requests it makes
 * with OpenSSL: an issuer that is not a CA, not under --agent-ca or whose
 * key does not match is refused at load; a request for another subject,
 * with a broken self-signature, a weak key, oversize or not PEM at all is
 * refused; a good one gets a certificate that OpenSSL verifies under the
 * agent CA for clientAuth, with the peer's subject and SANs (not the ones
 * the request asks for), CA:FALSE, digitalSignature, the configured
 * lifetime and a 128-bit serial.  The server offers it in
 * connection_settings and advertises the capabilities only with an issuer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "csrsign.h"
#include "opamp.pb-c.h"
#include "opampsrv.h"
#include "store.h"

static char dir[64];

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static char *path(const char *name)
{
	static char buf[8][160];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

/* Agent CA, an intermediate under it, a CA outside it, a leaf, and an agent certificate. */
static int setup_pki(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test_csrsign.XXXXXX");
	assert_non_null(mkdtemp(dir));
	sh("cd %s && exec >/dev/null 2>&1 && "
	   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
	   "  -days 365 -subj /CN=agent-ca -addext basicConstraints=critical,CA:TRUE "
	   "  -addext keyUsage=critical,keyCertSign,cRLSign && "
	   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -out other.pem "
	   "  -days 30 -subj /CN=other-ca -addext basicConstraints=critical,CA:TRUE && "
	   "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key -out int.csr "
	   "  -subj /CN=agent-int && "
	   "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign\\n' > int.ext && "
	   "openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile int.ext "
	   "  -out int.pem && "
	   "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout agent.key -out agent.csr "
	   "  -subj '/O=Example/CN=host1' && "
	   "printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\nsubjectAltName=DNS:host1.example,IP:10.0.0.1\\n' > agent.ext && "
	   "openssl x509 -req -in agent.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile agent.ext "
	   "  -out agent.pem && "
	   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout noski.key -out noski.pem "
	   "  -days 365 -subj /CN=noski-ca -addext basicConstraints=critical,CA:TRUE "
	   "  -addext subjectKeyIdentifier=none -addext authorityKeyIdentifier=none && "
	   "cat ca.pem noski.pem > agents.pem",
	   dir);
	(void)state;
	return 0;
}

static int teardown_pki(void **state)
{
	sh("rm -rf %s", dir);
	(void)state;
	return 0;
}

static X509 *read_cert(const char *p)
{
	FILE *f = fopen(p, "r");
	X509 *x;

	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static EVP_PKEY *ec_key(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);

	assert_non_null(k);
	return k;
}

static EVP_PKEY *rsa_key(unsigned bits)
{
	EVP_PKEY *k = EVP_RSA_gen(bits);

	assert_non_null(k);
	return k;
}

/*
 * A PEM request for key with subject O=org/CN=cn and a DNS SAN; with
 * other set, the public key is swapped for other's after signing, so the
 * self-signature no longer verifies.
 */
static char *make_csr(EVP_PKEY *key, const char *org, const char *cn, EVP_PKEY *other, size_t *ret_len)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:evil.example");
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *mem;
	char *out;

	assert_true(req && n && exts && san && b);
	assert_true(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)org, -1, -1, 0));
	assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(req, n));
	assert_true(X509_REQ_set_pubkey(req, key));
	assert_true(sk_X509_EXTENSION_push(exts, san));
	assert_true(X509_REQ_add_extensions(req, exts));
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	if (other)
		assert_true(X509_REQ_set_pubkey(req, other));
	assert_true(PEM_write_bio_X509_REQ(b, req));
	BIO_get_mem_ptr(b, &mem);
	out = malloc(mem->length + 1);
	assert_non_null(out);
	memcpy(out, mem->data, mem->length);
	out[mem->length] = '\0';
	*ret_len = mem->length;
	BIO_free(b);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(n);
	X509_REQ_free(req);
	return out;
}

static struct csrsign *signer(const char *cert, const char *key, unsigned days)
{
	struct csrsign *cs = NULL;
	char err[512];

	assert_int_equal(csrsign_new(path(cert), path(key), path("ca.pem"), days, &cs, err, sizeof(err)), 0);
	return cs;
}

static void test_issuer_checks(void **state)
{
	struct csrsign *cs = NULL;
	char err[512];

	/* A leaf is no issuer. */
	assert_int_equal(csrsign_new(path("agent.pem"), path("agent.key"), path("ca.pem"), 30, &cs, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "not a CA"));
	/* A CA outside --agent-ca would issue certificates nobody accepts. */
	assert_int_equal(csrsign_new(path("other.pem"), path("other.key"), path("ca.pem"), 30, &cs, err, sizeof(err)),
			 -EPERM);
	assert_non_null(strstr(err, "does not chain to --agent-ca"));
	/* The key must be the issuer's. */
	assert_int_equal(csrsign_new(path("ca.pem"), path("int.key"), path("ca.pem"), 30, &cs, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "does not match"));
	assert_int_equal(csrsign_new(path("nope.pem"), path("ca.key"), path("ca.pem"), 30, &cs, err, sizeof(err)),
			 -ENOENT);
	assert_null(cs);
	/* The agent CA itself and an intermediate under it both do. */
	cs = signer("ca.pem", "ca.key", 30);
	assert_int_equal(csrsign_lifetime(cs), 30 * 86400);
	csrsign_free(cs);
	csrsign_free(signer("int.pem", "int.key", 7));
	(void)state;
}

static int verify_issued(const char *pem, size_t len, X509 **ret_leaf)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	STACK_OF(X509) *chain = sk_X509_new_null();
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *xs = X509_STORE_CTX_new();
	X509 *leaf, *x;
	int ok;

	leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
	assert_non_null(leaf);
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		sk_X509_push(chain, x);
	ERR_clear_error();
	x = read_cert(path("ca.pem"));
	X509_STORE_add_cert(st, x);
	X509_free(x);
	X509_STORE_CTX_init(xs, st, leaf, chain);
	X509_STORE_CTX_set_purpose(xs, X509_PURPOSE_SSL_CLIENT);
	ok = X509_verify_cert(xs);
	X509_STORE_CTX_free(xs);
	X509_STORE_free(st);
	sk_X509_pop_free(chain, X509_free);
	BIO_free(b);
	*ret_leaf = leaf;
	return ok;
}

static void check_good(const char *issuer, const char *issuer_key, EVP_PKEY *key)
{
	struct csrsign *cs = signer(issuer, issuer_key, 30);
	X509 *peer = read_cert(path("agent.pem")), *leaf;
	struct csrsign_issued is;
	char why[300], sans[256] = "";
	size_t len;
	char *csr = make_csr(key, "Example", "host1", NULL, &len);
	time_t now = time(NULL);
	BASIC_CONSTRAINTS *bc;
	GENERAL_NAMES *gens;
	BIO *b;
	int days, secs;

	assert_int_equal(csrsign_issue(cs, peer, (const uint8_t *)csr, len, now, &is, why, sizeof(why)), 0);
	assert_int_equal(verify_issued(is.pem, is.len, &leaf), 1);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(leaf), X509_get_subject_name(peer)), 0);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), key), 1);
	/* The SANs of the certificate being renewed, not the request's. */
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	assert_non_null(gens);
	b = BIO_new(BIO_s_mem());
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME_print(b, sk_GENERAL_NAME_value(gens, i));
		BIO_puts(b, ";");
	}
	BIO_read(b, sans, sizeof(sans) - 1);
	BIO_free(b);
	GENERAL_NAMES_free(gens);
	assert_string_equal(sans, "DNS:host1.example;IP Address:10.0.0.1;");
	bc = X509_get_ext_d2i(leaf, NID_basic_constraints, NULL, NULL);
	assert_non_null(bc);
	assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_CLIENT);
	assert_true(X509_get_ext_by_NID(leaf, NID_authority_key_identifier, -1) >= 0);
	assert_true(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf), X509_get0_notAfter(leaf)));
	assert_int_equal(days * 86400 + secs, 30 * 86400 + 60);
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);

		assert_int_equal(BN_num_bytes(bn), 16);
		BN_free(bn);
	}
	assert_int_equal(strlen(is.serial), 32);
	assert_int_equal(strlen(is.fingerprint), 64);
	X509_free(leaf);
	free(is.pem);
	free(csr);
	X509_free(peer);
	csrsign_free(cs);
}

static void test_good_requests(void **state)
{
	EVP_PKEY *p256 = ec_key("P-256"), *p384 = ec_key("P-384"), *rsa = rsa_key(2048);

	check_good("ca.pem", "ca.key", p256);
	check_good("ca.pem", "ca.key", p384);
	check_good("int.pem", "int.key", rsa);	/* the chain goes with the certificate */
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(rsa);
	(void)state;
}

static void refused(const struct csrsign *cs, X509 *peer, const char *csr, size_t len, int want, const char *why_has)
{
	struct csrsign_issued is;
	char why[300] = "";

	assert_int_equal(csrsign_issue(cs, peer, (const uint8_t *)csr, len, time(NULL), &is, why, sizeof(why)), want);
	assert_null(is.pem);
	if (!strstr(why, why_has))
		fail_msg("reason \"%s\" lacks \"%s\"", why, why_has);
}

/* An issuer without a subjectKeyIdentifier still issues (no authorityKeyIdentifier then). */
static void test_issuer_without_ski(void **state)
{
	struct csrsign *cs = NULL;
	struct csrsign_issued is;
	X509 *peer = read_cert(path("agent.pem")), *leaf;
	EVP_PKEY *key = ec_key("P-256");
	char err[512], why[300], *csr;
	size_t len;
	BIO *b;

	assert_int_equal(csrsign_new(path("noski.pem"), path("noski.key"), path("agents.pem"), 30, &cs, err,
				     sizeof(err)), 0);
	csr = make_csr(key, "Example", "host1", NULL, &len);
	assert_int_equal(csrsign_issue(cs, peer, (const uint8_t *)csr, len, time(NULL), &is, why, sizeof(why)), 0);
	b = BIO_new_mem_buf(is.pem, (int)is.len);
	leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
	assert_non_null(leaf);
	assert_int_equal(X509_get_ext_by_NID(leaf, NID_authority_key_identifier, -1), -1);
	assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_CLIENT);
	BIO_free(b);
	X509_free(leaf);
	free(is.pem);
	free(csr);
	EVP_PKEY_free(key);
	X509_free(peer);
	csrsign_free(cs);
	(void)state;
}

static void test_bad_requests(void **state)
{
	struct csrsign *cs = signer("ca.pem", "ca.key", 30);
	X509 *peer = read_cert(path("agent.pem"));
	EVP_PKEY *good = ec_key("P-256"), *other = ec_key("P-256"), *k1 = ec_key("secp256k1"),
		 *weak = rsa_key(1024);
	size_t len;
	char *csr, *big;

	csr = make_csr(good, "Example", "host2", NULL, &len);
	refused(cs, peer, csr, len, -EBADMSG, "may renew only its own identity");
	free(csr);
	csr = make_csr(good, "Other", "host1", NULL, &len);
	refused(cs, peer, csr, len, -EBADMSG, "may renew only its own identity");
	free(csr);
	csr = make_csr(good, "Example", "host1", other, &len);
	refused(cs, peer, csr, len, -EBADMSG, "self-signature does not verify");
	free(csr);
	csr = make_csr(k1, "Example", "host1", NULL, &len);
	refused(cs, peer, csr, len, -EBADMSG, "only P-256 and P-384");
	free(csr);
	csr = make_csr(weak, "Example", "host1", NULL, &len);
	refused(cs, peer, csr, len, -EBADMSG, "1024 bits");
	free(csr);
	refused(cs, peer, "garbage", 7, -EBADMSG, "not a PEM PKCS#10");
	refused(cs, peer, "", 0, -EBADMSG, "not a PEM PKCS#10");
	csr = make_csr(good, "Example", "host1", NULL, &len);
	refused(cs, peer, csr, len / 2, -EBADMSG, "not a PEM PKCS#10");	/* cut short */
	refused(cs, NULL, csr, len, -EINVAL, "no peer");
	big = calloc(1, CSRSIGN_MAX_CSR + 1);
	assert_non_null(big);
	memcpy(big, csr, len);
	memset(big + len, '\n', CSRSIGN_MAX_CSR + 1 - len);
	refused(cs, peer, big, CSRSIGN_MAX_CSR + 1, -E2BIG, "over the limit");
	free(big);
	free(csr);
	EVP_PKEY_free(good);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(weak);
	X509_free(peer);
	csrsign_free(cs);
	(void)state;
}

/* ---- the OpAMP server's side ---- */

static Opamp__Proto__V1__ServerToAgent *exchange(struct opampsrv *srv, struct cp_identity *id, uint64_t seq,
						 const char *csr, size_t csr_len, struct opampsrv_reply *rep)
{
	Opamp__Proto__V1__AgentToServer m = OPAMP__PROTO__V1__AGENT_TO_SERVER__INIT;
	Opamp__Proto__V1__ConnectionSettingsRequest csr_req = OPAMP__PROTO__V1__CONNECTION_SETTINGS_REQUEST__INIT;
	Opamp__Proto__V1__OpAMPConnectionSettingsRequest oreq = OPAMP__PROTO__V1__OP_AMPCONNECTION_SETTINGS_REQUEST__INIT;
	Opamp__Proto__V1__CertificateRequest cr = OPAMP__PROTO__V1__CERTIFICATE_REQUEST__INIT;
	Opamp__Proto__V1__ServerToAgent *out;
	uint8_t uid[16] = { 1, 2, 3 }, buf[4096];
	size_t n;

	m.instance_uid.data = uid;
	m.instance_uid.len = sizeof(uid);
	m.sequence_num = seq;
	if (csr) {
		cr.csr.data = (uint8_t *)(uintptr_t)csr;
		cr.csr.len = csr_len;
		oreq.certificate_request = &cr;
		csr_req.opamp = &oreq;
		m.connection_settings_request = &csr_req;
	}
	n = opamp__proto__v1__agent_to_server__pack(&m, buf);
	assert_int_equal(opampsrv_handle(srv, id, buf, n, (int64_t)time(NULL) * 1000, rep), 0);
	out = opamp__proto__v1__server_to_agent__unpack(NULL, rep->len, rep->body);
	assert_non_null(out);
	return out;
}

#define CSR_CAPS 0x60u

static void test_server_offer(void **state)
{
	char tmp[64], url[160], err[256], p[200];
	struct store *st = NULL;
	struct opampsrv *srv = NULL;
	struct cp_identity id = { .role = CP_ROLE_AGENT, .subject = "O=Example,CN=host1" };
	struct csrsign *cs = signer("ca.pem", "ca.key", 30);
	struct opampsrv_reply rep;
	Opamp__Proto__V1__ServerToAgent *out;
	EVP_PKEY *key = ec_key("P-256");
	size_t len;
	char *csr = make_csr(key, "Example", "host1", NULL, &len);
	X509 *leaf;

	snprintf(tmp, sizeof(tmp), "/tmp/test_csrsign_db.XXXXXX");
	assert_non_null(mkdtemp(tmp));
	snprintf(url, sizeof(url), "sqlite:%s/cp.db", tmp);
	assert_int_equal(store_open(url, &st, err, sizeof(err)), 0);
	assert_int_equal(opampsrv_new(st, &srv), 0);
	id.cert = read_cert(path("agent.pem"));

	/* No issuer: not advertised, and a request is refused with a reason. */
	out = exchange(srv, &id, 1, csr, len, &rep);
	assert_int_equal(rep.http_status, 200);
	assert_int_equal(out->capabilities & CSR_CAPS, 0);
	assert_null(out->connection_settings);
	assert_non_null(out->error_response);
	assert_non_null(strstr(out->error_response->error_message, "--issuer-cert"));
	assert_non_null(strstr(rep.log, "refused"));
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	free(rep.body);

	opampsrv_set_signer(srv, cs);
	out = exchange(srv, &id, 2, NULL, 0, &rep);
	assert_int_equal(out->capabilities & CSR_CAPS, CSR_CAPS);
	assert_null(out->connection_settings);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	free(rep.body);

	out = exchange(srv, &id, 3, csr, len, &rep);
	assert_null(out->error_response);
	assert_non_null(out->connection_settings);
	assert_int_equal(out->connection_settings->hash.len, 32);
	assert_non_null(out->connection_settings->opamp);
	assert_non_null(out->connection_settings->opamp->certificate);
	assert_int_equal(out->connection_settings->opamp->certificate->private_key.len, 0);
	assert_int_equal(verify_issued((const char *)out->connection_settings->opamp->certificate->cert.data,
				       out->connection_settings->opamp->certificate->cert.len, &leaf), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), key), 1);
	assert_non_null(strstr(rep.log, "issued a certificate"));
	X509_free(leaf);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	free(rep.body);

	/* A hostile request costs the agent its answer, not the server. */
	out = exchange(srv, &id, 4, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", 40, &rep);
	assert_non_null(out->error_response);
	assert_null(out->connection_settings);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	free(rep.body);

	/* The agent's ConnectionSettingsStatus is logged: FAILED with its reason, APPLIED; APPLYING is not. */
	{
		Opamp__Proto__V1__AgentToServer m = OPAMP__PROTO__V1__AGENT_TO_SERVER__INIT;
		Opamp__Proto__V1__ConnectionSettingsStatus css;
		static const int statuses[3] = {
			OPAMP__PROTO__V1__CONNECTION_SETTINGS_STATUSES__ConnectionSettingsStatuses_FAILED,
			OPAMP__PROTO__V1__CONNECTION_SETTINGS_STATUSES__ConnectionSettingsStatuses_APPLIED,
			OPAMP__PROTO__V1__CONNECTION_SETTINGS_STATUSES__ConnectionSettingsStatuses_APPLYING,
		};
		static const char *const want[3] = { "connection settings FAILED by O=Example,CN=host1: the "
						     "handshake failed", "connection settings APPLIED by", "" };
		uint8_t uid[16] = { 1, 2, 3 }, buf[512];
		size_t n;

		m.instance_uid.data = uid;
		m.instance_uid.len = sizeof(uid);
		opamp__proto__v1__connection_settings_status__init(&css);
		m.connection_settings_status = &css;
		css.error_message = "the handshake failed";
		for (int i = 0; i < 3; i++) {
			m.sequence_num = 5 + (uint64_t)i;
			css.status = statuses[i];
			n = opamp__proto__v1__agent_to_server__pack(&m, buf);
			assert_int_equal(opampsrv_handle(srv, &id, buf, n, (int64_t)time(NULL) * 1000, &rep), 0);
			if (want[i][0] ? !strstr(rep.log, want[i]) : rep.log[0] != '\0')
				fail_msg("log \"%s\", want \"%s\"", rep.log, want[i]);
			free(rep.body);
		}
	}

	X509_free(id.cert);
	free(csr);
	EVP_PKEY_free(key);
	opampsrv_free(srv);
	csrsign_free(cs);
	store_close(st);
	snprintf(p, sizeof(p), "rm -rf %s", tmp);
	assert_int_equal(system(p), 0);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issuer_checks),
		cmocka_unit_test(test_good_requests),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_issuer_without_ski),
		cmocka_unit_test(test_server_offer),
	};

	return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
