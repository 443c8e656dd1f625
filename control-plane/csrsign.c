/*
 * csrsign.c - vigil-cp's certificate issuer for OpAMP's CSR flow
 * (csrsign.h).  The request is hostile input from any agent certificate:
 * its size is capped before parsing, its key is judged before any
 * signature is checked with it (an 8192-bit cap bounds the cost of one
 * verification), and nothing of it but the subject (which must equal the
 * peer's) and the public key reaches the certificate.
 *
 * Runs in vigil-cp (unprivileged, single-threaded).  Never logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "csrsign.h"
#include "hexdigit.h"
#include "pemfile.h"
#include "signing.h"
#include "sslutil.h"

#define CSRSIGN_MAX_RSA_BITS 8192
#define CSRSIGN_BACKDATE 60	/* seconds: clocks a little behind still accept it */

struct csrsign {
	X509 *issuer;
	EVP_PKEY *key;
	STACK_OF(X509) *chain;	/* intermediates from the issuer file, for the agent to present */
	bool issuer_is_anchor;	/* the issuer itself is in --agent-ca */
	long lifetime;		/* seconds */
};

void csrsign_free(struct csrsign *cs)
{
	if (!cs)
		return;
	X509_free(cs->issuer);
	EVP_PKEY_free(cs->key);
	sk_X509_pop_free(cs->chain, X509_free);
	free(cs);
}

int csrsign_new(const char *issuer_cert, const char *issuer_key, const char *agent_ca, unsigned days,
		struct csrsign **ret, char *err, size_t errlen)
{
	STACK_OF(X509) *certs = NULL, *anchors = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *xs = NULL;
	struct csrsign *cs = NULL;
	char subj[256], why[160];
	int r;

	if (!issuer_cert || !issuer_key || !agent_ca || days == 0 || days > CSRSIGN_MAX_DAYS) {
		snprintf(err, errlen, "--issuer-cert, --issuer-key and --agent-ca are needed, and --issued-days "
			 "from 1 to %u", CSRSIGN_MAX_DAYS);
		return -EINVAL;
	}
	r = pemfile_certs("--issuer-cert", issuer_cert, false, &certs, err, errlen);
	if (r)
		goto out;
	r = pemfile_certs("--agent-ca", agent_ca, false, &anchors, err, errlen);
	if (r)
		goto out;
	r = -ENOMEM;
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		goto out;
	r = pemfile_key("--issuer-key", issuer_key, &cs->key, err, errlen);
	if (r)
		goto out;
	cs->issuer = sk_X509_shift(certs);
	cs->chain = certs;
	certs = NULL;
	cs->lifetime = (long)days * 86400;
	sslutil_name(X509_get_subject_name(cs->issuer), subj, sizeof(subj));
	r = -EBADMSG;
	if (X509_check_ca(cs->issuer) <= 0 ||
	    ((X509_get_extension_flags(cs->issuer) & EXFLAG_KUSAGE) &&
	     !(X509_get_key_usage(cs->issuer) & KU_KEY_CERT_SIGN))) {
		snprintf(err, errlen, "--issuer-cert %s: %s is not a CA certificate that may sign certificates "
			 "(basicConstraints CA:TRUE, keyUsage keyCertSign)", issuer_cert, subj);
		goto out;
	}
	if (X509_check_private_key(cs->issuer, cs->key) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "--issuer-key %s does not match the certificate of --issuer-cert %s",
			 issuer_key, issuer_cert);
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(cs->issuer)) <= 0) {
		snprintf(err, errlen, "--issuer-cert %s: %s has expired", issuer_cert, subj);
		goto out;
	}
	/* What it issues must pass tlsconf's check on the next connection. */
	r = -ENOMEM;
	store = X509_STORE_new();
	xs = X509_STORE_CTX_new();
	if (!store || !xs)
		goto out;
	for (int i = 0; i < sk_X509_num(anchors); i++) {
		if (X509_cmp(sk_X509_value(anchors, i), cs->issuer) == 0)
			cs->issuer_is_anchor = true;
		if (!X509_STORE_add_cert(store, sk_X509_value(anchors, i)))
			goto out;
	}
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	if (!X509_STORE_CTX_init(xs, store, cs->issuer, cs->chain))
		goto out;
	if (X509_verify_cert(xs) != 1) {
		snprintf(err, errlen, "--issuer-cert %s: %s does not chain to --agent-ca %s (%s): agents could "
			 "not connect with what it issues", issuer_cert, subj, agent_ca,
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs)));
		r = -EPERM;
		goto out;
	}
	*ret = cs;
	cs = NULL;
	r = 0;
out:
	if (r == -ENOMEM) {
		sslutil_reason(why, sizeof(why));
		snprintf(err, errlen, "out of memory or OpenSSL failure: %s", why);
	}
	ERR_clear_error();
	X509_STORE_CTX_free(xs);
	X509_STORE_free(store);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(anchors, X509_free);
	csrsign_free(cs);
	return r;
}

long csrsign_lifetime(const struct csrsign *cs)
{
	return cs ? cs->lifetime : 0;
}

/* The keys an agent may renew with: EC P-256/P-384, RSA 2048..8192. */
static int key_ok(EVP_PKEY *k, char *why, size_t whylen)
{
	char group[64] = "";
	size_t glen = 0;
	int bits = EVP_PKEY_get_bits(k);

	if (EVP_PKEY_is_a(k, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &glen) ||
		    (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0)) {
			ERR_clear_error();
			snprintf(why, whylen, "the request's EC key is on curve %.40s: only P-256 and P-384 are "
				 "accepted", group[0] ? group : "(unnamed)");
			return -EBADMSG;
		}
		return 0;
	}
	if (EVP_PKEY_is_a(k, "RSA")) {
		if (bits < 2048 || bits > CSRSIGN_MAX_RSA_BITS) {
			snprintf(why, whylen, "the request's RSA key has %d bits: 2048 to %d are accepted", bits,
				 CSRSIGN_MAX_RSA_BITS);
			return -EBADMSG;
		}
		return 0;
	}
	snprintf(why, whylen, "the request's key is %.40s: only EC P-256/P-384 and RSA >= 2048 bits are accepted",
		 EVP_PKEY_get0_type_name(k) ? EVP_PKEY_get0_type_name(k) : "of an unknown type");
	return -EBADMSG;
}

static void hex_upper(const unsigned char *p, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 3 <= outlen; i++)
		o += (size_t)snprintf(out + o, outlen - o, "%02X", p[i]);
	out[o] = '\0';
}

int csrsign_issue(const struct csrsign *cs, X509 *peer, const uint8_t *csr, size_t len, time_t now,
		  struct csrsign_issued *ret, char *why, size_t whylen)
{
	X509_REQ *req = NULL;
	X509 *x = NULL;
	BIO *b = NULL, *out = NULL;
	EVP_PKEY *pub;
	BIGNUM *bn = NULL;
	X509V3_CTX v3;
	unsigned char serial[16], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	time_t not_after;
	const EVP_MD *dgst;
	BUF_MEM *mem;
	int r = -EBADMSG, idx;

	memset(ret, 0, sizeof(*ret));
	if (!cs || !peer) {
		snprintf(why, whylen, "no issuer or no peer certificate");
		return -EINVAL;
	}
	if (len > CSRSIGN_MAX_CSR) {
		snprintf(why, whylen, "certificate request of %zu bytes, over the limit of %u", len, CSRSIGN_MAX_CSR);
		return -E2BIG;
	}
	b = BIO_new_mem_buf(csr, (int)len);
	if (!b) {
		r = -ENOMEM;
		goto out;
	}
	req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	if (!req) {
		snprintf(why, whylen, "the certificate request is not a PEM PKCS#10 request");
		goto out;
	}
	pub = X509_REQ_get0_pubkey(req);
	if (!pub) {
		snprintf(why, whylen, "the certificate request has no usable public key");
		goto out;
	}
	if ((r = key_ok(pub, why, whylen)))
		goto out;
	r = -EBADMSG;
	if (X509_REQ_verify(req, pub) != 1) {
		snprintf(why, whylen, "the certificate request's self-signature does not verify");
		goto out;
	}
	sslutil_name(X509_REQ_get_subject_name(req), ret->subject, sizeof(ret->subject));
	if (X509_NAME_cmp(X509_REQ_get_subject_name(req), X509_get_subject_name(peer)) != 0) {
		char mine[256];

		sslutil_name(X509_get_subject_name(peer), mine, sizeof(mine));
		snprintf(why, whylen, "the certificate request is for subject \"%.120s\", not the connection's "
			 "\"%.120s\": an agent may renew only its own identity", ret->subject, mine);
		goto out;
	}

	r = -EIO;
	x = X509_new();
	bn = BN_new();
	if (!x || !bn || RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;	/* positive */
	serial[0] |= 0x40;	/* and a full 16 bytes, never zero */
	if (!BN_bin2bn(serial, sizeof(serial), bn) || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(cs->issuer)) ||
	    !X509_set_subject_name(x, X509_get_subject_name(peer)) || !X509_set_pubkey(x, pub))
		goto out;
	not_after = now + cs->lifetime;
	{
		/* Never outlive the issuer: a chain that expires first is refused anyway. */
		struct tm tm;

		if (ASN1_TIME_to_tm(X509_get0_notAfter(cs->issuer), &tm) && timegm(&tm) < not_after)
			not_after = timegm(&tm);
	}
	if (not_after <= now) {
		snprintf(why, whylen, "the issuer certificate has expired");
		r = -EBADMSG;
		goto out;
	}
	if (!ASN1_TIME_set(X509_getm_notBefore(x), now - CSRSIGN_BACKDATE) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), not_after))
		goto out;
	X509V3_set_ctx(&v3, cs->issuer, x, NULL, NULL, 0);
	if (sslutil_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
	    sslutil_add_ext(x, &v3, NID_key_usage, "critical,digitalSignature") ||
	    sslutil_add_ext(x, &v3, NID_ext_key_usage, "clientAuth") ||
	    sslutil_add_ext(x, &v3, NID_subject_key_identifier, "hash"))
		goto out;
	/* The issuer's key id, when it has one to name (older CAs may not). */
	if (X509_get0_subject_key_id(cs->issuer) && sslutil_add_ext(x, &v3, NID_authority_key_identifier, "keyid"))
		goto out;
	/* The SANs of the identity being renewed, byte for byte; none asked for are added. */
	idx = X509_get_ext_by_NID(peer, NID_subject_alt_name, -1);
	if (idx >= 0 && !X509_add_ext(x, X509_get_ext(peer, idx), -1))
		goto out;
	dgst = EVP_PKEY_is_a(cs->key, "ED25519") || EVP_PKEY_is_a(cs->key, "ED448") ? NULL : EVP_sha256();
	if (!X509_sign(x, cs->key, dgst))
		goto out;

	out = BIO_new(BIO_s_mem());
	if (!out || !PEM_write_bio_X509(out, x))
		goto out;
	if (!cs->issuer_is_anchor) {
		if (!PEM_write_bio_X509(out, cs->issuer))
			goto out;
		for (int i = 0; i < sk_X509_num(cs->chain); i++)
			if (!PEM_write_bio_X509(out, sk_X509_value(cs->chain, i)))
				goto out;
	}
	BIO_get_mem_ptr(out, &mem);
	ret->pem = malloc(mem->length);
	if (!ret->pem) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(ret->pem, mem->data, mem->length);
	ret->len = mem->length;
	hex_upper(serial, sizeof(serial), ret->serial, sizeof(ret->serial));
	if (X509_digest(x, EVP_sha256(), md, &mdlen) && mdlen == 32)
		hexdigit_encode(md, mdlen, ret->fingerprint);
	ret->not_after = not_after;
	r = 0;
out:
	if (r == -EIO || r == -ENOMEM) {
		char e[160];

		sslutil_reason(e, sizeof(e));
		snprintf(why, whylen, "cannot issue the certificate: %s", e);
	}
	ERR_clear_error();
	BN_free(bn);
	X509_free(x);
	X509_REQ_free(req);
	BIO_free(b);
	BIO_free(out);
	return r;
}
