/*
 * certrot.c - the agent's side of OpAMP's CSR flow (certrot.h): key,
 * request, check of the offer, schedule.  Runs in the uplink.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certrot.h"

static int bio_out(BIO *b, char **ret, size_t *ret_len)
{
	BUF_MEM *mem;
	char *p;

	BIO_get_mem_ptr(b, &mem);
	p = malloc(mem->length + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, mem->data, mem->length);
	p[mem->length] = '\0';
	*ret = p;
	*ret_len = mem->length;
	return 0;
}

static X509 *read_cert(const void *pem, size_t len)
{
	BIO *b = len <= CERTROT_MAX_CERT ? BIO_new_mem_buf(pem, (int)len) : NULL;
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

static EVP_PKEY *read_key(const void *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}

int certrot_keygen(char **ret_pem, size_t *ret_len)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	BIO *b = BIO_new(BIO_s_mem());
	int r = -EIO;

	if (k && b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		r = bio_out(b, ret_pem, ret_len);
	if (b) {
		BUF_MEM *mem;

		BIO_get_mem_ptr(b, &mem);
		if (mem && mem->data)
			OPENSSL_cleanse(mem->data, mem->max);
	}
	BIO_free(b);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return r;
}

int certrot_csr(const void *key_pem, size_t key_len, const void *cert_pem, size_t cert_len, char **ret_pem,
		size_t *ret_len)
{
	EVP_PKEY *k = read_key(key_pem, key_len);
	X509 *cur = read_cert(cert_pem, cert_len);
	X509_REQ *req = NULL;
	BIO *b = NULL;
	int r = -EBADMSG;

	if (!k || !cur)
		goto out;
	r = -EIO;
	req = X509_REQ_new();
	b = BIO_new(BIO_s_mem());
	if (req && b && X509_REQ_set_subject_name(req, X509_get_subject_name(cur)) &&
	    X509_REQ_set_pubkey(req, k) && X509_REQ_sign(req, k, EVP_sha256()) > 0 &&
	    PEM_write_bio_X509_REQ(b, req))
		r = bio_out(b, ret_pem, ret_len);
out:
	ERR_clear_error();
	BIO_free(b);
	X509_REQ_free(req);
	X509_free(cur);
	EVP_PKEY_free(k);
	return r;
}

int certrot_check(const void *offer, size_t offer_len, const void *key_pem, size_t key_len, const void *cur_pem,
		  size_t cur_len, time_t now, char *why, size_t whylen)
{
	X509 *x = NULL, *cur = NULL;
	EVP_PKEY *k = NULL;
	int r = -EBADMSG;

	if (offer_len > CERTROT_MAX_CERT) {
		snprintf(why, whylen, "the offered certificate is %zu bytes, over %u", offer_len, CERTROT_MAX_CERT);
		return -E2BIG;
	}
	x = read_cert(offer, offer_len);
	cur = read_cert(cur_pem, cur_len);
	k = read_key(key_pem, key_len);
	if (!x) {
		snprintf(why, whylen, "the offer carries no PEM certificate");
		goto out;
	}
	if (!cur || !k) {
		snprintf(why, whylen, "the certificate in use or the new key does not parse");
		goto out;
	}
	if (X509_check_private_key(x, k) != 1) {
		snprintf(why, whylen, "the offered certificate is not for the key this agent made");
		goto out;
	}
	if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_subject_name(cur)) != 0) {
		snprintf(why, whylen, "the offered certificate names another subject than the one in use");
		goto out;
	}
	if (!(X509_get_extension_flags(x) & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT)) {
		snprintf(why, whylen, "the offered certificate lacks the clientAuth extended key usage");
		goto out;
	}
	if (X509_cmp_time(X509_get0_notBefore(x), &now) > 0 || X509_cmp_time(X509_get0_notAfter(x), &now) <= 0) {
		snprintf(why, whylen, "the offered certificate is not valid now");
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	X509_free(x);
	X509_free(cur);
	EVP_PKEY_free(k);
	return r;
}

static time_t asn1_time(const ASN1_TIME *t, bool *ok)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm)) {
		*ok = false;
		return 0;
	}
	return timegm(&tm);
}

int certrot_validity(const void *pem, size_t len, time_t *ret_not_before, time_t *ret_not_after)
{
	X509 *x = read_cert(pem, len);
	bool ok = x != NULL;
	time_t nb = 0, na = 0;

	if (x) {
		nb = asn1_time(X509_get0_notBefore(x), &ok);
		na = asn1_time(X509_get0_notAfter(x), &ok);
	}
	X509_free(x);
	ERR_clear_error();
	if (!ok)
		return -EBADMSG;
	*ret_not_before = nb;
	*ret_not_after = na;
	return 0;
}

time_t certrot_due(time_t not_before, time_t not_after, uint64_t rnd)
{
	time_t lifetime = not_after > not_before ? not_after - not_before : 0;
	uint64_t window = (uint64_t)lifetime / 10;
	time_t jitter = window ? (time_t)(rnd % window) : 0;

	return not_before + lifetime / 2 - jitter;
}

int certrot_pair(const void *cert_pem, size_t cert_len, const void *key_pem, size_t key_len)
{
	X509 *x = read_cert(cert_pem, cert_len);
	EVP_PKEY *k = read_key(key_pem, key_len);
	int r = x && k && X509_check_private_key(x, k) == 1 ? 0 : -EBADMSG;

	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(k);
	return r;
}

bool certrot_newer(const void *cand, size_t cand_len, const void *cur, size_t cur_len, time_t now)
{
	X509 *a = read_cert(cand, cand_len), *b = read_cert(cur, cur_len);
	bool yes = false;

	if (a && b && X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) == 0 &&
	    X509_cmp_time(X509_get0_notBefore(a), &now) <= 0 && X509_cmp_time(X509_get0_notAfter(a), &now) > 0 &&
	    ASN1_TIME_compare(X509_get0_notAfter(a), X509_get0_notAfter(b)) > 0)
		yes = true;
	ERR_clear_error();
	X509_free(a);
	X509_free(b);
	return yes;
}

int certrot_split(const char *pem, size_t len, size_t *ret_off)
{
	const char *cert = memmem(pem, len, "-----BEGIN CERTIFICATE-----", 27);
	const char *p = pem, *end = pem + len;

	/* The first "-----BEGIN ...PRIVATE KEY-----" line. */
	while (p < end && (p = memmem(p, (size_t)(end - p), "-----BEGIN ", 11))) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);

		if (memmem(p, n, "PRIVATE KEY-----", 16)) {
			if (!cert || cert > p)
				return -EBADMSG;
			*ret_off = (size_t)(p - pem);
			return 0;
		}
		p += 11;
	}
	return -EBADMSG;
}
