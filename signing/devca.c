/*
 * devca.c - a development CA and code-signing certificate (see devca.h).
 *
 * Built with the OpenSSL API rather than by running openssl(1), so that
 * `make` needs nothing but vigil-sign and the result does not depend on the
 * local openssl.cnf.  The extensions are those vigild checks for: the CA is
 * CA:TRUE with keyCertSign/cRLSign, the signer CA:FALSE with
 * digitalSignature and extendedKeyUsage codeSigning.
 */
#include "devca.h"
#include "sslutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static const char *const devca_files[] = { "ca.pem", "ca.key", "signer.pem", "signer.key" };

static void __attribute__((format(printf, 3, 4))) fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;

	if (!buf || !len)
		return;
	va_start(ap, f);
	vsnprintf(buf, len, f, ap);
	va_end(ap);
}

static int set_serial(X509 *x)
{
	unsigned char r[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return 0;
	r[0] = (r[0] & 0x7f) | 0x40; /* positive, and always 16 bytes long */
	bn = BN_bin2bn(r, sizeof(r), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok;
}

/* A certificate for key, issued by issuer/issuer_key (NULL: self-signed). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
		       unsigned days)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX ctx;
	int ok;

	ok = x && name && X509_set_version(x, X509_VERSION_3) && set_serial(x) &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
	     X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) &&
	     X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"Vigil",
					-1, -1, 0) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0) &&
	     X509_set_subject_name(x, name) &&
	     X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) &&
	     X509_set_pubkey(x, key);
	if (ok) {
		X509V3_set_ctx_nodb(&ctx);
		X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
		ok = !sslutil_add_ext(x, &ctx, NID_basic_constraints,
			     ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE") &&
		     !sslutil_add_ext(x, &ctx, NID_key_usage,
			     ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") &&
		     (ca || !sslutil_add_ext(x, &ctx, NID_ext_key_usage, "codeSigning")) &&
		     !sslutil_add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
		     !sslutil_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") &&
		     X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0;
	}
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* PEM of a certificate (key NULL) or of a private key (PKCS#8, unencrypted). */
static BIO *to_pem(X509 *cert, EVP_PKEY *key)
{
	BIO *b = BIO_new(cert ? BIO_s_mem() : BIO_s_secmem()); /* secmem: cleared when freed */

	if (b && (cert ? PEM_write_bio_X509(b, cert)
		       : PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)))
		return b;
	BIO_free(b);
	return NULL;
}

/* dirfd/name := the bytes of b, through a temporary renamed into place. */
static int write_file(int dirfd, const char *name, BIO *b, mode_t mode)
{
	char tmp[64];
	char *p;
	long len = BIO_get_mem_data(b, &p);
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), ".%s.%ld.tmp", name, (long)getpid());
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t n = write(fd, p, (size_t)len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		p += n;
		len -= n;
	}
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && renameat(dirfd, tmp, dirfd, name) < 0)
		rc = -errno;
	if (rc)
		unlinkat(dirfd, tmp, 0);
	return rc;
}

int devca_create(const char *dir, const char *cn_prefix, unsigned days, bool force, char *err,
		 size_t errlen)
{
	EVP_PKEY *ca_key = NULL, *signer_key = NULL;
	X509 *ca = NULL, *signer = NULL;
	BIO *pem[4] = { NULL };
	char cn[128], why[256];
	int dirfd = -1, rc;
	struct stat st;

	if (!days || days > DEVCA_MAX_DAYS) {
		fmt(err, errlen, "validity of %u days is not between 1 and %u", days, DEVCA_MAX_DAYS);
		return -EINVAL;
	}
	if (!cn_prefix)
		cn_prefix = "Vigil development";
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		fmt(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
		return rc;
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		rc = -errno;
		fmt(err, errlen, "%s: %s", dir, strerror(errno));
		return rc;
	}
	for (size_t i = 0; !force && i < 4; i++) {
		if (fstatat(dirfd, devca_files[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
			fmt(err, errlen, "%s/%s exists; not replacing a CA that may be in use (use --force)",
			    dir, devca_files[i]);
			rc = -EEXIST;
			goto out;
		}
	}

	rc = -EIO;
	ca_key = EVP_EC_gen("P-256");
	signer_key = EVP_EC_gen("P-256");
	if (!ca_key || !signer_key) {
		fmt(err, errlen, "cannot generate keys: %s", sslutil_reason(why, sizeof(why)));
		goto out;
	}
	snprintf(cn, sizeof(cn), "%s CA", cn_prefix);
	ca = make_cert(cn, ca_key, NULL, NULL, true, days);
	snprintf(cn, sizeof(cn), "%s signer", cn_prefix);
	signer = ca ? make_cert(cn, signer_key, ca, ca_key, false, days) : NULL;
	if (!signer) {
		fmt(err, errlen, "cannot make the certificates: %s", sslutil_reason(why, sizeof(why)));
		goto out;
	}
	pem[0] = to_pem(ca, NULL);
	pem[1] = to_pem(NULL, ca_key);
	pem[2] = to_pem(signer, NULL);
	pem[3] = to_pem(NULL, signer_key);
	for (int i = 0; i < 4; i++) {
		if (!pem[i]) {
			fmt(err, errlen, "cannot encode %s: %s", devca_files[i], sslutil_reason(why, sizeof(why)));
			goto out;
		}
	}
	/* Keys first: a certificate never exists without its key. */
	static const int order[4] = { 1, 3, 0, 2 };
	for (int k = 0; k < 4; k++) {
		int i = order[k];

		rc = write_file(dirfd, devca_files[i], pem[i], i % 2 ? 0600 : 0644);
		if (rc) {
			fmt(err, errlen, "%s/%s: %s", dir, devca_files[i], strerror(-rc));
			goto out;
		}
	}
	rc = 0;
out:
	for (int i = 0; i < 4; i++)
		BIO_free(pem[i]);
	X509_free(ca);
	X509_free(signer);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(signer_key);
	if (dirfd >= 0)
		close(dirfd);
	ERR_clear_error();
	return rc;
}
