/*
 * pemfile.c - vigil-cp's certificate and key files (see pemfile.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pemfile.h"
#include "signing.h"
#include "sslutil.h"

int pemfile_read(const char *opt, const char *path, size_t max, void **ret, size_t *ret_len,
		 char *err, size_t errlen)
{
	int r = signing_read_file(AT_FDCWD, path, max, false, ret, ret_len);

	if (r == -EFBIG)
		snprintf(err, errlen, "%s %s: larger than %zu bytes", opt, path, max);
	else if (r == -EINVAL)
		snprintf(err, errlen, "%s %s: not a regular file", opt, path);
	else if (r)
		snprintf(err, errlen, "%s %s: %s", opt, path, strerror(-r));
	return r;
}

int pemfile_certs(const char *opt, const char *path, bool want_ca, STACK_OF(X509) **ret, char *err,
		  size_t errlen)
{
	STACK_OF(X509) *sk = NULL;
	void *buf = NULL;
	size_t len;
	BIO *b = NULL;
	X509 *x;
	char why[200];
	int r;

	r = pemfile_read(opt, path, PEMFILE_MAX_BYTES, &buf, &len, err, errlen);
	if (r)
		return r;
	r = -ENOMEM;
	sk = sk_X509_new_null();
	b = BIO_new_mem_buf(buf, (int)len);
	if (!sk || !b)
		goto out;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			goto out;
		}
	}
	/* The loop ends at the end of the file (PEM_R_NO_START_LINE) or at garbage. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		snprintf(err, errlen, "%s %s: certificate %d is not valid PEM: %s", opt, path,
			 sk_X509_num(sk) + 1, sslutil_reason(why, sizeof(why)));
		r = -EBADMSG;
		goto out;
	}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		snprintf(err, errlen, "%s %s: no PEM certificate in the file", opt, path);
		r = -EBADMSG;
		goto out;
	}
	if (want_ca) {
		for (int i = 0; i < sk_X509_num(sk); i++) {
			if (X509_check_ca(sk_X509_value(sk, i)) <= 0) {
				char subj[256];

				sslutil_name(X509_get_subject_name(sk_X509_value(sk, i)), subj, sizeof(subj));
				snprintf(err, errlen, "%s %s: certificate %d (%s) is not a CA certificate", opt,
					 path, i + 1, subj);
				r = -EBADMSG;
				goto out;
			}
		}
	}
	*ret = sk;
	sk = NULL;
	r = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	BIO_free(b);
	free(buf);
	return r;
}

int pemfile_key(const char *opt, const char *path, EVP_PKEY **ret, char *err, size_t errlen)
{
	void *buf = NULL;
	size_t len;
	BIO *b;
	EVP_PKEY *k = NULL;
	char why[200];
	int r;

	r = pemfile_read(opt, path, PEMFILE_MAX_BYTES, &buf, &len, err, errlen);
	if (r)
		return r;
	b = BIO_new_mem_buf(buf, (int)len);
	if (b)
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (!k) {
		snprintf(err, errlen, "%s %s: no usable PEM private key (an encrypted key is not "
			 "supported): %s", opt, path, sslutil_reason(why, sizeof(why)));
		return -EBADMSG;
	}
	*ret = k;
	return 0;
}
