/*
 * test_signing.c - unit tests for signing/signing.c and signing/devca.c.
 *
 * Certificates come from devca_create() in a temporary directory (a CA and
 * a codeSigning signer valid for 30 days); CRLs are made here with the
 * OpenSSL API.  Interoperability with the openssl CLI, and certificates
 * only the CLI makes (expired, wrong EKU...), are covered again by
 * tests/integration/signing.sh.  Signatures under test are placed so that
 * they end exactly at an unmapped page: any over-read crashes the test.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "guard.h"
#include "devca.h"
#include "signing.h"

/* ------------------------------------------------------------------------ */
/* Helpers.                                                                 */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint8_t *random_bytes(size_t len)
{
	uint8_t *b = malloc(len ? len : 1);

	assert_non_null(b);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)rng();
	return b;
}

/* A scratch directory with dev CAs "a" (trusted) and "b" (another CA). */
static char tmpdir[] = "/tmp/vigil-test-signing.XXXXXX";
static char dir_a[128], dir_b[128];

static void path_in(char *buf, size_t len, const char *dir, const char *name)
{
	assert_true((size_t)snprintf(buf, len, "%s/%s", dir, name) < len);
}

static int setup_cas(void **state)
{
	char err[512];

	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(dir_a, sizeof(dir_a), "%s/a", tmpdir);
	snprintf(dir_b, sizeof(dir_b), "%s/b", tmpdir);
	if (devca_create(dir_a, "Test A", 30, false, err, sizeof(err)) ||
	    devca_create(dir_b, "Test B", 30, false, err, sizeof(err))) {
		fprintf(stderr, "devca_create: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown_cas(void **state)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct signing_trust *trust_of(const char *dir, const char *crl)
{
	struct signing_trust *t = NULL;
	char ca[256], err[512];
	int rc;

	path_in(ca, sizeof(ca), dir, "ca.pem");
	rc = signing_trust_load(ca, crl, &t, err, sizeof(err));
	if (rc)
		fail_msg("signing_trust_load(%s): %d %s", ca, rc, err);
	return t;
}

static struct signing_key *key_of(const char *dir, const char *cert, const char *key)
{
	struct signing_key *k = NULL;
	char c[256], kp[256], err[512];
	int rc;

	path_in(c, sizeof(c), dir, cert);
	path_in(kp, sizeof(kp), dir, key);
	rc = signing_key_load(c, kp, &k, err, sizeof(err));
	if (rc)
		fail_msg("signing_key_load(%s): %d %s", c, rc, err);
	return k;
}

static void sign(const struct signing_key *k, const void *data, size_t len, void **sig,
		 size_t *sig_len)
{
	char err[512];
	int rc = signing_sign(k, data, len, sig, sig_len, err, sizeof(err));

	if (rc)
		fail_msg("signing_sign: %d %s", rc, err);
}

/* Verify with the signature in guarded memory; returns the status, msg filled. */
static enum signing_status verify_guarded(const struct signing_trust *t, const void *data,
					  size_t len, const void *sig, size_t sig_len, char *msg,
					  size_t msglen)
{
	struct guarded gs, gd;
	enum signing_status st;

	guard_copy(&gs, sig, sig_len);
	guard_copy(&gd, data, len);
	st = signing_verify(t, gd.data, len, gs.data, sig_len, msg, msglen);
	guard_free(&gd);
	guard_free(&gs);
	return st;
}

static void expect_status(enum signing_status got, enum signing_status want, const char *msg)
{
	if (got != want)
		fail_msg("status %s, expected %s (%s)", signing_status_name(got),
			 signing_status_name(want), msg);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void *load_pem(const char *dir, const char *name, bool key)
{
	char path[256];
	void *obj;
	FILE *f;

	path_in(path, sizeof(path), dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	obj = key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL) : (void *)PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(obj);
	return obj;
}

/*
 * A CRL issued by dir's CA, written to dir/name: revoking dir's signer when
 * revoke_signer, valid from last to next (seconds from now).
 */
static void make_crl(const char *dir, const char *name, bool revoke_signer, long last, long next)
{
	X509 *ca = load_pem(dir, "ca.pem", false), *signer = load_pem(dir, "signer.pem", false);
	EVP_PKEY *key = load_pem(dir, "ca.key", true);
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	char path[256];
	FILE *f;

	assert_non_null(crl);
	assert_true(X509_CRL_set_version(crl, X509_CRL_VERSION_2));
	assert_true(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)));
	assert_non_null(X509_gmtime_adj(t, last));
	assert_true(X509_CRL_set1_lastUpdate(crl, t));
	assert_non_null(X509_gmtime_adj(t, next));
	assert_true(X509_CRL_set1_nextUpdate(crl, t));
	if (revoke_signer) {
		X509_REVOKED *r = X509_REVOKED_new();

		assert_true(X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(signer)));
		assert_non_null(X509_gmtime_adj(t, -60));
		assert_true(X509_REVOKED_set_revocationDate(r, t));
		assert_true(X509_CRL_add0_revoked(crl, r));
	}
	assert_true(X509_CRL_sort(crl));
	assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
	path_in(path, sizeof(path), dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(PEM_write_X509_CRL(f, crl));
	fclose(f);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	EVP_PKEY_free(key);
	X509_free(ca);
	X509_free(signer);
}

/*
 * A certificate issued by dir's CA for a fresh key, with these extensions
 * (NULL: absent), written to dir/name.pem and dir/name.key.
 */
static void issue_cert(const char *dir, const char *name, const char *eku, const char *ku)
{
	X509 *ca = load_pem(dir, "ca.pem", false), *x = X509_new();
	EVP_PKEY *cakey = load_pem(dir, "ca.key", true), *key = EVP_EC_gen("P-256");
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX ctx;
	char path[256];
	FILE *f;

	assert_non_null(x);
	assert_non_null(key);
	assert_true(X509_set_version(x, X509_VERSION_3));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rng() & 0xffffff) + 1));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)name,
					       -1, -1, 0));
	assert_true(X509_set_subject_name(x, n));
	assert_true(X509_set_issuer_name(x, X509_get_subject_name(ca)));
	assert_true(X509_set_pubkey(x, key));
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	for (int i = 0; i < 2; i++) {
		const char *v = i ? ku : eku;
		X509_EXTENSION *e;

		if (!v)
			continue;
		e = X509V3_EXT_conf_nid(NULL, &ctx, i ? NID_key_usage : NID_ext_key_usage, v);
		assert_non_null(e);
		assert_true(X509_add_ext(x, e, -1));
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, cakey, EVP_sha256()) > 0);
	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_true(PEM_write_X509(f, x));
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_true(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
	fclose(f);
	X509_NAME_free(n);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
}

/* ------------------------------------------------------------------------ */
/* Tests.                                                                   */

static void test_roundtrip(void **state)
{
	struct signing_key *k = key_of(dir_a, "signer.pem", "signer.key");
	struct signing_trust *t = trust_of(dir_a, NULL);
	uint8_t *data = random_bytes(50000);
	void *sig;
	size_t sig_len;
	char msg[1024];

	sign(k, data, 50000, &sig, &sig_len);
	assert_true(sig_len > 100 && sig_len < 4096);
	expect_status(verify_guarded(t, data, 50000, sig, sig_len, msg, sizeof(msg)), SIGNING_OK, msg);
	assert_non_null(strstr(msg, "signed by CN=Test A signer"));
	assert_non_null(strstr(msg, "issuer CN=Test A CA"));
	/* One byte of content is enough. */
	free(sig);
	sign(k, "x", 1, &sig, &sig_len);
	expect_status(verify_guarded(t, "x", 1, sig, sig_len, msg, sizeof(msg)), SIGNING_OK, msg);
	/* msg may be NULL. */
	assert_int_equal(signing_verify(t, "x", 1, sig, sig_len, NULL, 0), SIGNING_OK);
	free(sig);
	free(data);
	signing_trust_free(t);
	signing_key_free(k);
}

/* openssl cms signs, we verify; we sign, openssl cms verifies. */
static void test_openssl_interop(void **state)
{
	struct signing_key *k = key_of(dir_a, "signer.pem", "signer.key");
	struct signing_trust *t = trust_of(dir_a, NULL);
	uint8_t *data = random_bytes(10000);
	char obj[256], sigp[256], cmd[2048], msg[1024];
	void *sig, *osig;
	size_t sig_len, osig_len;

	path_in(obj, sizeof(obj), tmpdir, "interop.bin");
	path_in(sigp, sizeof(sigp), tmpdir, "interop.bin.sig");
	write_file(obj, data, 10000);

	snprintf(cmd, sizeof(cmd),
		 "openssl cms -sign -binary -md sha256 -outform DER -in %s -signer %s/signer.pem "
		 "-inkey %s/signer.key -out %s",
		 obj, dir_a, dir_a, sigp);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(signing_read_file(AT_FDCWD, sigp, SIGNING_MAX_SIG_BYTES, true, &osig,
					   &osig_len), 0);
	expect_status(verify_guarded(t, data, 10000, osig, osig_len, msg, sizeof(msg)), SIGNING_OK,
		      msg);
	free(osig);

	/* Variants openssl cms can make. */
	{
		static const struct {
			const char *opts;
			enum signing_status want;
		} v[] = {
			{ "-md sha512", SIGNING_OK },
			{ "-md sha256 -noattr", SIGNING_OK }, /* signature over the content itself */
			{ "-md sha1", SIGNING_ERR_WEAK_DIGEST },
			{ "-md sha256 -nocerts", SIGNING_ERR_NO_SIGNER_CERT },
			{ "-md sha256 -nodetach", SIGNING_ERR_MALFORMED_SIG },
		};

		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
			snprintf(cmd, sizeof(cmd),
				 "openssl cms -sign -binary %s -outform DER -in %s -signer %s/signer.pem "
				 "-inkey %s/signer.key -out %s",
				 v[i].opts, obj, dir_a, dir_a, sigp);
			assert_int_equal(system(cmd), 0);
			assert_int_equal(signing_read_file(AT_FDCWD, sigp, SIGNING_MAX_SIG_BYTES, true,
							   &osig, &osig_len), 0);
			expect_status(verify_guarded(t, data, 10000, osig, osig_len, msg, sizeof(msg)),
				      v[i].want, msg);
			if (v[i].want == SIGNING_OK) {
				/* Still bound to the bytes. */
				data[0] ^= 1;
				expect_status(signing_verify(t, data, 10000, osig, osig_len, msg,
							     sizeof(msg)),
					      SIGNING_ERR_DIGEST_MISMATCH, msg);
				data[0] ^= 1;
			}
			free(osig);
		}
	}

	sign(k, data, 10000, &sig, &sig_len);
	write_file(sigp, sig, sig_len);
	snprintf(cmd, sizeof(cmd),
		 "openssl cms -verify -binary -inform DER -purpose any -content %s -in %s "
		 "-CAfile %s/ca.pem -out /dev/null 2>/dev/null",
		 obj, sigp, dir_a);
	assert_int_equal(system(cmd), 0);
	/* And openssl sees a flipped byte too, so the command above can fail. */
	data[5000] ^= 1;
	write_file(obj, data, 10000);
	assert_int_not_equal(system(cmd), 0);
	free(sig);
	free(data);
	signing_trust_free(t);
	signing_key_free(k);
}

static void test_object_flips(void **state)
{
	struct signing_key *k = key_of(dir_a, "signer.pem", "signer.key");
	struct signing_trust *t = trust_of(dir_a, NULL);
	const size_t len = 3000;
	uint8_t *data = random_bytes(len);
	void *sig;
	size_t sig_len;
	char msg[1024];

	sign(k, data, len, &sig, &sig_len);
	for (size_t off = 0; off < len; off += (off < 16 || off > len - 16) ? 1 : 37) {
		for (int bit = 0; bit < 8; bit += 7) {
			data[off] ^= (uint8_t)(1u << bit);
			expect_status(signing_verify(t, data, len, sig, sig_len, msg, sizeof(msg)),
				      SIGNING_ERR_DIGEST_MISMATCH, msg);
			data[off] ^= (uint8_t)(1u << bit);
		}
	}
	/* One byte more or less is another object as well. */
	expect_status(signing_verify(t, data, len - 1, sig, sig_len, msg, sizeof(msg)),
		      SIGNING_ERR_DIGEST_MISMATCH, msg);
	assert_non_null(strstr(msg, "not the bytes that were signed"));
	expect_status(signing_verify(t, data, len, sig, sig_len, msg, sizeof(msg)), SIGNING_OK, msg);
	free(sig);
	free(data);
	signing_trust_free(t);
	signing_key_free(k);
}

static void test_other_file(void **state)
{
	struct signing_key *k = key_of(dir_a, "signer.pem", "signer.key");
	struct signing_trust *t = trust_of(dir_a, NULL);
	uint8_t *a = random_bytes(1000), *b = random_bytes(1000);
	void *sig;
	size_t sig_len;
	char msg[1024];

	sign(k, a, 1000, &sig, &sig_len);
	expect_status(verify_guarded(t, b, 1000, sig, sig_len, msg, sizeof(msg)),
		      SIGNING_ERR_DIGEST_MISMATCH, msg);
	free(sig);
	free(a);
	free(b);
	signing_trust_free(t);
	signing_key_free(k);
}

/* Every prefix of a signature is refused as malformed, without over-reading. */
static void test_truncated_sig(void **state)
{
	struct signing_key *k = key_of(dir_a, "signer.pem", "signer.key");
	struct signing_trust *t = trust_of(dir_a, NULL);
	void *sig;
	size_t sig_len;
	char msg[1024];

	sign(k, "object", 6, &sig, &sig_len);
	expect_status(verify_guarded(t, "object", 6, sig, 0, msg, sizeof(msg)), SIGNING_ERR_NO_SIG,
		      msg);
	for (size_t n = 1; n < sig_len; n++)
		expect_status(verify_guarded(t, "object", 6, sig, n, msg, sizeof(msg)),
			      SIGNING_ERR_MALFORMED_SIG, msg);
	free(sig);
	signing_trust_free(t);
	signing_key_free(k);
}

/* No single-byte change of a signature makes it verify (and none crashes). */
static void test_sig_flips(void **state)
{
	struct signing_key *k = key_of(dir_a, "signer.pem", "signer.key");
	struct signing_trust *t = trust_of(dir_a, NULL);
	uint8_t *sig;
	size_t sig_len;
	char msg[1024];
	int seen[SIGNING_ERR_INTERNAL + 1] = { 0 };

	sign(k, "object", 6, (void **)&sig, &sig_len);
	for (size_t off = 0; off < sig_len; off++) {
		enum signing_status st;

		sig[off] ^= 0x01;
		st = verify_guarded(t, "object", 6, sig, sig_len, msg, sizeof(msg));
		sig[off] ^= 0x01;
		assert_true(st >= SIGNING_OK && st < SIGNING_ERR_INTERNAL);
		seen[st]++;
		/* The signature value ends the DER: any change to it is a bad signature. */
		if (off >= sig_len - 60)
			expect_status(st, SIGNING_ERR_BAD_SIGNATURE, msg);
	}
	/*
	 * A few bytes are not covered by the signature and do not matter to
	 * verification (e.g. the algorithm identifier of the signature, whose
	 * key type alone decides); none of them is in the signed content.
	 */
	assert_true(seen[SIGNING_OK] <= 16);
	/* The flips hit the structure, the signature and the certificate. */
	assert_true(seen[SIGNING_ERR_MALFORMED_SIG] > 0);
	assert_true(seen[SIGNING_ERR_BAD_SIGNATURE] + seen[SIGNING_ERR_DIGEST_MISMATCH] > 0);
	assert_true(seen[SIGNING_ERR_UNTRUSTED] > 0);
	free(sig);
	signing_trust_free(t);
	signing_key_free(k);
}

static void test_garbage_sig(void **state)
{
	struct signing_trust *t = trust_of(dir_a, NULL);
	struct signing_key *k = key_of(dir_a, "signer.pem", "signer.key");
	uint8_t *g = random_bytes(700), *sig2;
	void *sig;
	size_t sig_len;
	char msg[1024];

	expect_status(verify_guarded(t, "object", 6, g, 700, msg, sizeof(msg)),
		      SIGNING_ERR_MALFORMED_SIG, msg);
	expect_status(verify_guarded(t, "object", 6, "-----BEGIN CMS-----\n", 20, msg, sizeof(msg)),
		      SIGNING_ERR_MALFORMED_SIG, msg);
	/* A valid signature followed by a stray byte. */
	sign(k, "object", 6, &sig, &sig_len);
	sig2 = malloc(sig_len + 1);
	assert_non_null(sig2);
	memcpy(sig2, sig, sig_len);
	sig2[sig_len] = 0;
	expect_status(verify_guarded(t, "object", 6, sig2, sig_len + 1, msg, sizeof(msg)),
		      SIGNING_ERR_MALFORMED_SIG, msg);
	assert_non_null(strstr(msg, "stray"));
	/* Larger than any signature may be. */
	expect_status(signing_verify(t, "object", 6, sig2, SIGNING_MAX_SIG_BYTES + 1, msg, sizeof(msg)),
		      SIGNING_ERR_MALFORMED_SIG, msg);
	free(sig2);
	free(sig);
	free(g);
	signing_key_free(k);
	signing_trust_free(t);
}

static void test_empty(void **state)
{
	struct signing_trust *t = trust_of(dir_a, NULL);
	struct signing_key *k = key_of(dir_a, "signer.pem", "signer.key");
	void *sig = (void *)0x1;
	size_t sig_len = 7;
	char msg[256];

	assert_int_equal(signing_sign(k, "", 0, &sig, &sig_len, msg, sizeof(msg)), -EINVAL);
	/* ret_* untouched on failure. */
	assert_ptr_equal(sig, (void *)0x1);
	assert_int_equal(sig_len, 7);
	sign(k, "x", 1, &sig, &sig_len);
	expect_status(signing_verify(t, "", 0, sig, sig_len, msg, sizeof(msg)),
		      SIGNING_ERR_EMPTY_OBJECT, msg);
	expect_status(signing_verify(t, NULL, 0, sig, sig_len, msg, sizeof(msg)),
		      SIGNING_ERR_EMPTY_OBJECT, msg);
	expect_status(signing_verify(t, "x", 1, NULL, 0, msg, sizeof(msg)), SIGNING_ERR_NO_SIG, msg);
	free(sig);
	signing_key_free(k);
	signing_trust_free(t);
}

static void test_untrusted(void **state)
{
	struct signing_key *kb = key_of(dir_b, "signer.pem", "signer.key");
	struct signing_trust *ta = trust_of(dir_a, NULL), *tb = trust_of(dir_b, NULL);
	void *sig;
	size_t sig_len;
	char msg[1024];

	sign(kb, "object", 6, &sig, &sig_len);
	expect_status(signing_verify(tb, "object", 6, sig, sig_len, msg, sizeof(msg)), SIGNING_OK, msg);
	expect_status(signing_verify(ta, "object", 6, sig, sig_len, msg, sizeof(msg)),
		      SIGNING_ERR_UNTRUSTED, msg);
	assert_non_null(strstr(msg, "Test B signer"));
	free(sig);
	signing_trust_free(ta);
	signing_trust_free(tb);
	signing_key_free(kb);
}

/* A bundle of both CAs trusts both signers; so does trusting the signer itself. */
static void test_bundle_and_anchor(void **state)
{
	struct signing_key *ka = key_of(dir_a, "signer.pem", "signer.key");
	struct signing_key *kb = key_of(dir_b, "signer.pem", "signer.key");
	struct signing_trust *t;
	char bundle[256], pa[256], pb[256], cmd[1024], err[512], msg[1024];
	void *sa, *sb;
	size_t la, lb;

	path_in(bundle, sizeof(bundle), tmpdir, "bundle.pem");
	path_in(pa, sizeof(pa), dir_a, "ca.pem");
	path_in(pb, sizeof(pb), dir_b, "ca.pem");
	snprintf(cmd, sizeof(cmd), "cat %s %s > %s", pa, pb, bundle);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(signing_trust_load(bundle, NULL, &t, err, sizeof(err)), 0);
	sign(ka, "object", 6, &sa, &la);
	sign(kb, "object", 6, &sb, &lb);
	expect_status(signing_verify(t, "object", 6, sa, la, msg, sizeof(msg)), SIGNING_OK, msg);
	expect_status(signing_verify(t, "object", 6, sb, lb, msg, sizeof(msg)), SIGNING_OK, msg);
	signing_trust_free(t);

	/* Only A's signer certificate in the trust store: A verifies, B does not. */
	path_in(pa, sizeof(pa), dir_a, "signer.pem");
	assert_int_equal(signing_trust_load(pa, NULL, &t, err, sizeof(err)), 0);
	expect_status(signing_verify(t, "object", 6, sa, la, msg, sizeof(msg)), SIGNING_OK, msg);
	expect_status(signing_verify(t, "object", 6, sb, lb, msg, sizeof(msg)), SIGNING_ERR_UNTRUSTED,
		      msg);
	signing_trust_free(t);
	free(sa);
	free(sb);
	signing_key_free(ka);
	signing_key_free(kb);
}

static void test_validity(void **state)
{
	struct signing_key *k = key_of(dir_a, "signer.pem", "signer.key");
	struct signing_trust *t = trust_of(dir_a, NULL);
	void *sig;
	size_t sig_len;
	char msg[1024];

	sign(k, "object", 6, &sig, &sig_len);
	signing_trust_set_time(t, time(NULL) + 31 * 86400);
	expect_status(signing_verify(t, "object", 6, sig, sig_len, msg, sizeof(msg)),
		      SIGNING_ERR_EXPIRED, msg);
	assert_non_null(strstr(msg, "expired on"));
	signing_trust_set_time(t, time(NULL) - 2 * 3600);
	expect_status(signing_verify(t, "object", 6, sig, sig_len, msg, sizeof(msg)),
		      SIGNING_ERR_NOT_YET_VALID, msg);
	assert_non_null(strstr(msg, "not valid before"));
	signing_trust_set_time(t, time(NULL) + 29 * 86400);
	expect_status(signing_verify(t, "object", 6, sig, sig_len, msg, sizeof(msg)), SIGNING_OK, msg);
	free(sig);
	signing_trust_free(t);
	signing_key_free(k);
}

/* The CA's own certificate has no codeSigning EKU: it may not sign objects. */
static void test_bad_eku(void **state)
{
	struct signing_key *k = key_of(dir_a, "ca.pem", "ca.key");
	struct signing_trust *t = trust_of(dir_a, NULL);
	void *sig;
	size_t sig_len;
	char msg[1024];

	expect_status(signing_key_check(k, msg, sizeof(msg)), SIGNING_ERR_BAD_EKU, msg);
	sign(k, "object", 6, &sig, &sig_len);
	expect_status(signing_verify(t, "object", 6, sig, sig_len, msg, sizeof(msg)),
		      SIGNING_ERR_BAD_EKU, msg);
	assert_non_null(strstr(msg, "codeSigning"));
	free(sig);
	signing_trust_free(t);
	signing_key_free(k);
	k = key_of(dir_a, "signer.pem", "signer.key");
	expect_status(signing_key_check(k, msg, sizeof(msg)), SIGNING_OK, msg);
	signing_key_free(k);
}

/* Certificates from the trusted CA whose usages do not allow code signing. */
static void test_usages(void **state)
{
	static const struct {
		const char *name, *eku, *ku;
		enum signing_status want;
	} cases[] = {
		{ "serverauth", "serverAuth,clientAuth", "digitalSignature", SIGNING_ERR_BAD_EKU },
		{ "anyeku", "anyExtendedKeyUsage", "digitalSignature", SIGNING_ERR_BAD_EKU },
		{ "noeku", NULL, "digitalSignature", SIGNING_ERR_BAD_EKU },
		{ "encipher", "codeSigning", "keyAgreement", SIGNING_ERR_BAD_KEY_USAGE },
		{ "codesign", "codeSigning", "digitalSignature", SIGNING_OK },
		{ "codesign-noku", "codeSigning", NULL, SIGNING_OK },
		{ "codesign-more", "serverAuth,codeSigning", "digitalSignature,nonRepudiation",
		  SIGNING_OK },
	};
	struct signing_trust *t = trust_of(dir_a, NULL);
	char cert[64], keyf[64], msg[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct signing_key *k;
		void *sig;
		size_t sig_len;

		issue_cert(dir_a, cases[i].name, cases[i].eku, cases[i].ku);
		snprintf(cert, sizeof(cert), "%s.pem", cases[i].name);
		snprintf(keyf, sizeof(keyf), "%s.key", cases[i].name);
		k = key_of(dir_a, cert, keyf);
		expect_status(signing_key_check(k, msg, sizeof(msg)), cases[i].want, msg);
		sign(k, "object", 6, &sig, &sig_len);
		expect_status(signing_verify(t, "object", 6, sig, sig_len, msg, sizeof(msg)),
			      cases[i].want, msg);
		if (cases[i].want != SIGNING_OK)
			assert_non_null(strstr(msg, cases[i].name));
		free(sig);
		signing_key_free(k);
	}
	signing_trust_free(t);
}

static void test_crl(void **state)
{
	struct signing_key *k = key_of(dir_a, "signer.pem", "signer.key");
	struct signing_trust *t;
	char crl[256], msg[1024];
	void *sig;
	size_t sig_len;

	sign(k, "object", 6, &sig, &sig_len);

	/* A CRL that does not list the signer. */
	make_crl(dir_a, "ok.crl", false, -60, 86400);
	path_in(crl, sizeof(crl), dir_a, "ok.crl");
	t = trust_of(dir_a, crl);
	expect_status(signing_verify(t, "object", 6, sig, sig_len, msg, sizeof(msg)), SIGNING_OK, msg);
	signing_trust_free(t);

	/* One that does. */
	make_crl(dir_a, "revoked.crl", true, -60, 86400);
	path_in(crl, sizeof(crl), dir_a, "revoked.crl");
	t = trust_of(dir_a, crl);
	expect_status(signing_verify(t, "object", 6, sig, sig_len, msg, sizeof(msg)),
		      SIGNING_ERR_REVOKED, msg);
	assert_non_null(strstr(msg, "revoked"));
	signing_trust_free(t);

	/* A CRL past its nextUpdate: revocation cannot be checked. */
	make_crl(dir_a, "stale.crl", false, -7200, -3600);
	path_in(crl, sizeof(crl), dir_a, "stale.crl");
	t = trust_of(dir_a, crl);
	expect_status(signing_verify(t, "object", 6, sig, sig_len, msg, sizeof(msg)), SIGNING_ERR_CRL,
		      msg);
	signing_trust_free(t);

	/* Another CA's CRL: none for our issuer. */
	make_crl(dir_b, "b.crl", false, -60, 86400);
	path_in(crl, sizeof(crl), dir_b, "b.crl");
	t = trust_of(dir_a, crl);
	expect_status(signing_verify(t, "object", 6, sig, sig_len, msg, sizeof(msg)), SIGNING_ERR_CRL,
		      msg);
	signing_trust_free(t);
	free(sig);
	signing_key_free(k);
}

static void test_trust_load_errors(void **state)
{
	struct signing_trust *t = (struct signing_trust *)0x1;
	char p[256], ca[256], err[512];
	uint8_t *g = random_bytes(1000);

	path_in(ca, sizeof(ca), dir_a, "ca.pem");
	path_in(p, sizeof(p), tmpdir, "nonexistent.pem");
	assert_int_equal(signing_trust_load(p, NULL, &t, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "nonexistent.pem"));
	path_in(p, sizeof(p), tmpdir, "empty.pem");
	write_file(p, "", 0);
	assert_int_equal(signing_trust_load(p, NULL, &t, err, sizeof(err)), -EBADMSG);
	assert_int_equal(signing_trust_load(ca, p, &t, err, sizeof(err)), -EBADMSG);
	path_in(p, sizeof(p), tmpdir, "garbage.pem");
	write_file(p, g, 1000);
	assert_int_equal(signing_trust_load(p, NULL, &t, err, sizeof(err)), -EBADMSG);
	assert_int_equal(signing_trust_load(ca, p, &t, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "garbage.pem"));
	/* A key is not a certificate. */
	path_in(p, sizeof(p), dir_a, "signer.key");
	assert_int_equal(signing_trust_load(p, NULL, &t, err, sizeof(err)), -EBADMSG);
	/* A certificate is not a CRL. */
	assert_int_equal(signing_trust_load(ca, ca, &t, err, sizeof(err)), -EBADMSG);
	assert_ptr_equal(t, (struct signing_trust *)0x1);
	signing_trust_free(NULL);
	free(g);
}

static void test_key_load_errors(void **state)
{
	struct signing_key *k = (struct signing_key *)0x1;
	char c[256], key[256], err[512];

	path_in(c, sizeof(c), dir_a, "signer.pem");
	path_in(key, sizeof(key), dir_b, "signer.key");
	assert_int_equal(signing_key_load(c, key, &k, err, sizeof(err)), -EKEYREJECTED);
	assert_non_null(strstr(err, "does not belong"));
	path_in(key, sizeof(key), dir_a, "ca.pem");
	assert_int_equal(signing_key_load(c, key, &k, err, sizeof(err)), -EBADMSG);
	path_in(key, sizeof(key), dir_a, "signer.key");
	assert_int_equal(signing_key_load(key, key, &k, err, sizeof(err)), -EBADMSG);
	path_in(c, sizeof(c), dir_a, "missing.pem");
	assert_int_equal(signing_key_load(c, key, &k, err, sizeof(err)), -ENOENT);
	assert_ptr_equal(k, (struct signing_key *)0x1);
	signing_key_free(NULL);
}

static void test_read_file(void **state)
{
	char p[256], l[256];
	void *buf = (void *)0x1;
	size_t len = 0;

	path_in(p, sizeof(p), tmpdir, "ten");
	write_file(p, "0123456789", 10);
	assert_int_equal(signing_read_file(AT_FDCWD, p, 10, true, &buf, &len), 0);
	assert_int_equal(len, 10);
	assert_memory_equal(buf, "0123456789", 10);
	free(buf);
	buf = (void *)0x1;
	assert_int_equal(signing_read_file(AT_FDCWD, p, 9, true, &buf, &len), -EFBIG);
	path_in(l, sizeof(l), tmpdir, "ten.link");
	assert_int_equal(symlink(p, l), 0);
	assert_int_equal(signing_read_file(AT_FDCWD, l, 10, true, &buf, &len), -ELOOP);
	assert_int_equal(signing_read_file(AT_FDCWD, l, 10, false, &buf, &len), 0);
	free(buf);
	buf = (void *)0x1;
	assert_int_equal(signing_read_file(AT_FDCWD, tmpdir, 10, true, &buf, &len), -EINVAL);
	path_in(p, sizeof(p), tmpdir, "fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(signing_read_file(AT_FDCWD, p, 10, true, &buf, &len), -EINVAL);
	path_in(p, sizeof(p), tmpdir, "empty");
	write_file(p, "", 0);
	assert_int_equal(signing_read_file(AT_FDCWD, p, 10, true, &buf, &len), 0);
	assert_int_equal(len, 0);
	assert_non_null(buf);
	free(buf);
}

static void test_devca(void **state)
{
	char p[256], err[512];
	struct stat st;

	/* A CA in use is not replaced by accident... */
	assert_int_equal(devca_create(dir_a, NULL, 30, false, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "--force"));
	assert_int_equal(devca_create(dir_a, NULL, 0, false, err, sizeof(err)), -EINVAL);
	/* ...and private keys are private. */
	path_in(p, sizeof(p), dir_a, "signer.key");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	path_in(p, sizeof(p), dir_a, "ca.key");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_status_names(void **state)
{
	for (int st = SIGNING_OK; st <= SIGNING_ERR_INTERNAL; st++)
		assert_string_not_equal(signing_status_name((enum signing_status)st), "unknown");
	assert_string_equal(signing_status_name(SIGNING_ERR_DIGEST_MISMATCH), "digest-mismatch");
	assert_string_equal(signing_status_name((enum signing_status)999), "unknown");
}

/*
 * Policies (signing_verify_policy) may be signed with codeSigning or with
 * the Vigil policy-signing EKU; BPF objects (signing_verify) with
 * codeSigning only, so a policy signer's key cannot sign code the monitor
 * would load.
 */
static void test_policy_eku(void **state)
{
	static const struct {
		const char *name, *eku, *ku;
		enum signing_status policy, code;
	} cases[] = {
		{ "policysigner", SIGNING_POLICY_EKU_OID, "digitalSignature", SIGNING_OK,
		  SIGNING_ERR_BAD_EKU },
		{ "policysigner-noku", SIGNING_POLICY_EKU_OID, NULL, SIGNING_OK, SIGNING_ERR_BAD_EKU },
		{ "policysigner-more", "clientAuth," SIGNING_POLICY_EKU_OID, "digitalSignature",
		  SIGNING_OK, SIGNING_ERR_BAD_EKU },
		{ "policysigner-encipher", SIGNING_POLICY_EKU_OID, "keyAgreement",
		  SIGNING_ERR_BAD_KEY_USAGE, SIGNING_ERR_BAD_EKU },
		{ "codesigner", "codeSigning", "digitalSignature", SIGNING_OK, SIGNING_OK },
		{ "serverauthonly", "serverAuth", "digitalSignature", SIGNING_ERR_BAD_EKU,
		  SIGNING_ERR_BAD_EKU },
		{ "anyekuonly", "anyExtendedKeyUsage", "digitalSignature", SIGNING_ERR_BAD_EKU,
		  SIGNING_ERR_BAD_EKU },
		{ "nopolicyeku", NULL, "digitalSignature", SIGNING_ERR_BAD_EKU, SIGNING_ERR_BAD_EKU },
		/* A neighbour of the OID (one arc more) is another OID. */
		{ "policy-sibling", SIGNING_POLICY_EKU_OID ".1", "digitalSignature",
		  SIGNING_ERR_BAD_EKU, SIGNING_ERR_BAD_EKU },
	};
	static const char policy[] = "version: 1\nserial: 7\n";
	struct signing_trust *ta = trust_of(dir_a, NULL), *tb = trust_of(dir_b, NULL);
	char cert[64], keyf[64], msg[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct signing_key *k;
		struct guarded gs, gd;
		void *sig;
		size_t sig_len, len = sizeof(policy) - 1;

		issue_cert(dir_a, cases[i].name, cases[i].eku, cases[i].ku);
		snprintf(cert, sizeof(cert), "%s.pem", cases[i].name);
		snprintf(keyf, sizeof(keyf), "%s.key", cases[i].name);
		k = key_of(dir_a, cert, keyf);
		/* signing_key_check speaks for BPF objects: codeSigning only. */
		expect_status(signing_key_check(k, msg, sizeof(msg)), cases[i].code, msg);
		sign(k, policy, len, &sig, &sig_len);
		guard_copy(&gs, sig, sig_len);
		guard_copy(&gd, policy, len);
		expect_status(signing_verify_policy(ta, gd.data, len, gs.data, sig_len, msg,
						    sizeof(msg)),
			      cases[i].policy, msg);
		if (cases[i].policy == SIGNING_OK) {
			assert_non_null(strstr(msg, cases[i].name));
		} else {
			assert_non_null(strstr(msg, cases[i].name));
			if (cases[i].policy == SIGNING_ERR_BAD_EKU)
				assert_non_null(strstr(msg, SIGNING_POLICY_EKU_OID));
		}
		expect_status(signing_verify(ta, gd.data, len, gs.data, sig_len, msg, sizeof(msg)),
			      cases[i].code, msg);
		if (cases[i].code == SIGNING_ERR_BAD_EKU)
			assert_non_null(strstr(msg, "codeSigning"));
		guard_free(&gd);
		guard_free(&gs);
		if (cases[i].policy == SIGNING_OK) {
			/* The policy EKU changes no other check: bytes, trust, validity. */
			expect_status(signing_verify_policy(ta, "version: 1\nserial: 8\n", len, sig,
							    sig_len, msg, sizeof(msg)),
				      SIGNING_ERR_DIGEST_MISMATCH, msg);
			expect_status(signing_verify_policy(tb, policy, len, sig, sig_len, msg,
							    sizeof(msg)),
				      SIGNING_ERR_UNTRUSTED, msg);
			signing_trust_set_time(ta, time(NULL) + 2 * 86400);
			expect_status(signing_verify_policy(ta, policy, len, sig, sig_len, msg,
							    sizeof(msg)),
				      SIGNING_ERR_EXPIRED, msg);
			signing_trust_set_time(ta, 0);
		}
		free(sig);
		signing_key_free(k);
	}
	signing_trust_free(ta);
	signing_trust_free(tb);
}

/* A policy signed with openssl cms by a policy-EKU certificate verifies as a policy. */
static void test_policy_eku_openssl(void **state)
{
	static const char policy[] = "version: 1\nserial: 9\n";
	struct signing_trust *t = trust_of(dir_a, NULL);
	char obj[256], sigp[256], cmd[2048], msg[1024];
	void *osig;
	size_t osig_len;

	issue_cert(dir_a, "cmspolicysigner", SIGNING_POLICY_EKU_OID, "digitalSignature");
	path_in(obj, sizeof(obj), tmpdir, "policy.yaml");
	path_in(sigp, sizeof(sigp), tmpdir, "policy.yaml.sig");
	write_file(obj, policy, sizeof(policy) - 1);
	snprintf(cmd, sizeof(cmd),
		 "openssl cms -sign -binary -md sha256 -outform DER -in %s -signer "
		 "%s/cmspolicysigner.pem -inkey %s/cmspolicysigner.key -out %s",
		 obj, dir_a, dir_a, sigp);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(signing_read_file(AT_FDCWD, sigp, SIGNING_MAX_SIG_BYTES, true, &osig,
					   &osig_len), 0);
	expect_status(signing_verify_policy(t, policy, sizeof(policy) - 1, osig, osig_len, msg,
					    sizeof(msg)),
		      SIGNING_OK, msg);
	expect_status(signing_verify(t, policy, sizeof(policy) - 1, osig, osig_len, msg, sizeof(msg)),
		      SIGNING_ERR_BAD_EKU, msg);
	free(osig);
	signing_trust_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_openssl_interop),
		cmocka_unit_test(test_object_flips),
		cmocka_unit_test(test_other_file),
		cmocka_unit_test(test_truncated_sig),
		cmocka_unit_test(test_sig_flips),
		cmocka_unit_test(test_garbage_sig),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_untrusted),
		cmocka_unit_test(test_bundle_and_anchor),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_bad_eku),
		cmocka_unit_test(test_usages),
		cmocka_unit_test(test_policy_eku),
		cmocka_unit_test(test_policy_eku_openssl),
		cmocka_unit_test(test_crl),
		cmocka_unit_test(test_trust_load_errors),
		cmocka_unit_test(test_key_load_errors),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_devca),
		cmocka_unit_test(test_status_names),
	};

	return cmocka_run_group_tests(tests, setup_cas, teardown_cas);
}
