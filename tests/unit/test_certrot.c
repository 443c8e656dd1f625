/*
 * test_certrot.c - the agent's side of OpAMP's CSR flow (daemon/certrot.c),
 * with keys and certificates made here with OpenSSL: the new key is EC
 * P-256 and the request carries the subject in use and verifies; an offer
 * is taken only if it is for the new key, names the same subject, has
 * clientAuth and is valid now (another key, another subject, expired, not
 * yet valid, no clientAuth, not PEM, oversize: refused with the reason);
 * the renewal is due at half of the lifetime minus at most a tenth of it;
 * a kept pair is preferred only if it is the same subject, valid, and
 * expires later.
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

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certrot.h"

static EVP_PKEY *ca_key;

static char *pem_of_key(EVP_PKEY *k, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *m;
	char *p;

	assert_true(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL));
	BIO_get_mem_ptr(b, &m);
	p = malloc(m->length + 1);
	memcpy(p, m->data, m->length);
	p[m->length] = '\0';
	*len = m->length;
	BIO_free(b);
	return p;
}

static EVP_PKEY *key_of_pem(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);

	BIO_free(b);
	assert_non_null(k);
	return k;
}

/* A certificate for k: CN=cn, valid [now+nb, now+na), clientAuth or serverAuth, PEM. */
static char *mkcert(EVP_PKEY *k, const char *cn, long nb, long na, bool client, size_t *len)
{
	X509 *x = X509_new();
	X509_NAME *issuer = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *m;
	char *p;

	assert_true(X509_set_version(x, X509_VERSION_3));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), 42));
	assert_true(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "O", MBSTRING_ASC,
					       (const unsigned char *)"Example", -1, -1, 0));
	assert_true(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
					       (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_NAME_add_entry_by_txt(issuer, "CN", MBSTRING_ASC, (const unsigned char *)"CA", -1, -1, 0));
	assert_true(X509_set_issuer_name(x, issuer));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), nb));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), na));
	assert_true(X509_set_pubkey(x, k));
	X509V3_set_ctx(&ctx, NULL, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, client ? "clientAuth" : "serverAuth");
	assert_true(X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
	assert_true(X509_sign(x, ca_key, EVP_sha256()));
	assert_true(PEM_write_bio_X509(b, x));
	BIO_get_mem_ptr(b, &m);
	p = malloc(m->length + 1);
	memcpy(p, m->data, m->length);
	p[m->length] = '\0';
	*len = m->length;
	BIO_free(b);
	X509_NAME_free(issuer);
	X509_free(x);
	return p;
}

static int setup(void **state)
{
	ca_key = EVP_EC_gen("P-256");
	(void)state;
	return ca_key ? 0 : -1;
}

static int teardown(void **state)
{
	EVP_PKEY_free(ca_key);
	(void)state;
	return 0;
}

static void test_key_and_request(void **state)
{
	EVP_PKEY *cur = EVP_EC_gen("P-256"), *nk;
	char *key, *cert, *csr, group[32] = "";
	size_t key_len, cert_len, csr_len, glen;
	X509_REQ *req;
	X509 *x;
	BIO *b;

	assert_int_equal(certrot_keygen(&key, &key_len), 0);
	nk = key_of_pem(key, key_len);
	assert_true(EVP_PKEY_is_a(nk, "EC"));
	assert_true(EVP_PKEY_get_utf8_string_param(nk, "group", group, sizeof(group), &glen));
	assert_string_equal(group, "prime256v1");
	cert = mkcert(cur, "host1", -60, 3600, true, &cert_len);
	assert_int_equal(certrot_csr(key, key_len, cert, cert_len, &csr, &csr_len), 0);
	b = BIO_new_mem_buf(csr, (int)csr_len);
	req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(req);
	assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
	assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), nk), 1);
	b = BIO_new_mem_buf(cert, (int)cert_len);
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_int_equal(X509_NAME_cmp(X509_REQ_get_subject_name(req), X509_get_subject_name(x)), 0);
	/* nonsense in, -EBADMSG out */
	free(csr);
	assert_int_equal(certrot_csr("junk", 4, cert, cert_len, &csr, &csr_len), -EBADMSG);
	assert_int_equal(certrot_csr(key, key_len, "junk", 4, &csr, &csr_len), -EBADMSG);
	X509_free(x);
	X509_REQ_free(req);
	EVP_PKEY_free(nk);
	EVP_PKEY_free(cur);
	free(key);
	free(cert);
	(void)state;
}

static void refused(const char *offer, size_t len, const char *key, size_t key_len, const char *cur,
		    size_t cur_len, int want, const char *why_has)
{
	char why[256] = "";

	assert_int_equal(certrot_check(offer, len, key, key_len, cur, cur_len, time(NULL), why, sizeof(why)), want);
	if (!strstr(why, why_has))
		fail_msg("reason \"%s\" lacks \"%s\"", why, why_has);
}

static void test_offer(void **state)
{
	EVP_PKEY *cur = EVP_EC_gen("P-256"), *nk, *other = EVP_EC_gen("P-256");
	char *key, *cur_pem, *o, why[256];
	size_t key_len, cur_len, len;

	assert_int_equal(certrot_keygen(&key, &key_len), 0);
	nk = key_of_pem(key, key_len);
	cur_pem = mkcert(cur, "host1", -60, 3600, true, &cur_len);

	o = mkcert(nk, "host1", -60, 86400, true, &len);
	assert_int_equal(certrot_check(o, len, key, key_len, cur_pem, cur_len, time(NULL), why, sizeof(why)), 0);
	/* a chain after the leaf is fine: the leaf is what is checked */
	{
		char *chain = malloc(len + cur_len);

		memcpy(chain, o, len);
		memcpy(chain + len, cur_pem, cur_len);
		assert_int_equal(certrot_check(chain, len + cur_len, key, key_len, cur_pem, cur_len, time(NULL), why,
					       sizeof(why)), 0);
		free(chain);
	}
	free(o);
	o = mkcert(other, "host1", -60, 86400, true, &len);
	refused(o, len, key, key_len, cur_pem, cur_len, -EBADMSG, "not for the key");
	free(o);
	o = mkcert(nk, "host2", -60, 86400, true, &len);
	refused(o, len, key, key_len, cur_pem, cur_len, -EBADMSG, "another subject");
	free(o);
	o = mkcert(nk, "host1", -7200, -3600, true, &len);
	refused(o, len, key, key_len, cur_pem, cur_len, -EBADMSG, "not valid now");
	free(o);
	o = mkcert(nk, "host1", 3600, 7200, true, &len);
	refused(o, len, key, key_len, cur_pem, cur_len, -EBADMSG, "not valid now");
	free(o);
	o = mkcert(nk, "host1", -60, 86400, false, &len);
	refused(o, len, key, key_len, cur_pem, cur_len, -EBADMSG, "clientAuth");
	free(o);
	refused("garbage", 7, key, key_len, cur_pem, cur_len, -EBADMSG, "no PEM certificate");
	refused("", 0, key, key_len, cur_pem, cur_len, -EBADMSG, "no PEM certificate");
	{
		char *big = calloc(1, CERTROT_MAX_CERT + 1);

		refused(big, CERTROT_MAX_CERT + 1, key, key_len, cur_pem, cur_len, -E2BIG, "over");
		free(big);
	}
	EVP_PKEY_free(nk);
	EVP_PKEY_free(cur);
	EVP_PKEY_free(other);
	free(key);
	free(cur_pem);
	(void)state;
}

static void test_schedule(void **state)
{
	const time_t nb = 1700000000, life = 120;
	time_t lo = nb + life, hi = nb, n, na;
	char *pem;
	size_t len;
	EVP_PKEY *k = EVP_EC_gen("P-256");

	/* half of the lifetime, minus at most a tenth of it */
	assert_int_equal(certrot_due(nb, nb + life, 0), nb + 60);
	for (uint64_t r = 0; r < 100000; r += 7) {
		time_t d = certrot_due(nb, nb + life, r * 2654435761u);

		assert_true(d <= nb + 60 && d > nb + 60 - 12);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	assert_int_equal(lo, nb + 49);	/* the whole window is used */
	assert_int_equal(hi, nb + 60);
	/* 30 days: due between day 12 and day 15 */
	for (uint64_t r = 1; r < 1000; r++) {
		time_t d = certrot_due(nb, nb + 30 * 86400, r * 0x9e3779b97f4a7c15ull);

		assert_true(d <= nb + 15 * 86400 && d > nb + 12 * 86400);
	}
	/* nonsense validity: due at once */
	assert_int_equal(certrot_due(nb, nb - 5, 12345), nb);
	/* the validity the schedule is computed from */
	pem = mkcert(k, "host1", -60, 60, true, &len);
	assert_int_equal(certrot_validity(pem, len, &n, &na), 0);
	assert_int_equal(na - n, 120);
	assert_int_equal(certrot_validity("x", 1, &n, &na), -EBADMSG);
	free(pem);
	EVP_PKEY_free(k);
	(void)state;
}

static void test_prefer_kept(void **state)
{
	EVP_PKEY *a = EVP_EC_gen("P-256"), *b = EVP_EC_gen("P-256");
	char *cur, *later, *earlier, *other, *expired, *key, *both;
	size_t cur_len, later_len, earlier_len, other_len, expired_len, key_len, off;
	time_t now = time(NULL);

	cur = mkcert(a, "host1", -3600, 600, true, &cur_len);
	later = mkcert(b, "host1", -7200, 86400, true, &later_len);	/* backdated, lasts longer */
	earlier = mkcert(b, "host1", -60, 300, true, &earlier_len);
	other = mkcert(b, "host2", -60, 86400, true, &other_len);
	expired = mkcert(b, "host1", -7200, -60, true, &expired_len);
	assert_true(certrot_newer(later, later_len, cur, cur_len, now));
	assert_false(certrot_newer(earlier, earlier_len, cur, cur_len, now));
	assert_false(certrot_newer(other, other_len, cur, cur_len, now));
	assert_false(certrot_newer(expired, expired_len, cur, cur_len, now));
	assert_false(certrot_newer("x", 1, cur, cur_len, now));

	/* identity.pem: certificate, then key */
	key = pem_of_key(b, &key_len);
	both = malloc(later_len + key_len);
	memcpy(both, later, later_len);
	memcpy(both + later_len, key, key_len);
	assert_int_equal(certrot_split(both, later_len + key_len, &off), 0);
	assert_int_equal(off, later_len);
	assert_int_equal(certrot_pair(both, off, both + off, later_len + key_len - off), 0);
	assert_int_equal(certrot_pair(cur, cur_len, key, key_len), -EBADMSG);
	assert_int_equal(certrot_split(key, key_len, &off), -EBADMSG);	/* no certificate */
	assert_int_equal(certrot_split(later, later_len, &off), -EBADMSG);	/* no key */
	free(both);
	both = malloc(later_len + key_len);
	memcpy(both, key, key_len);
	memcpy(both + key_len, later, later_len);
	assert_int_equal(certrot_split(both, later_len + key_len, &off), -EBADMSG);	/* key first */
	free(both);
	free(key);
	free(cur);
	free(later);
	free(earlier);
	free(other);
	free(expired);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_and_request),
		cmocka_unit_test(test_offer),
		cmocka_unit_test(test_schedule),
		cmocka_unit_test(test_prefer_kept),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
