/*
 * signing.c - detached CMS signatures with OpenSSL 3 (see signing.h).
 *
 * Verification does not hand everything to one CMS_verify() call: its
 * errors do not say which check failed, and its chain check applies the
 * S/MIME purpose (emailProtection) to the signer, which a code-signing
 * certificate need not have.  Each check runs by itself instead, so that
 * the caller learns exactly why an object was refused: parse and structure,
 * digest algorithm, signature over the signed attributes, digest of the
 * object, chain to the trust store (purpose "any", as `openssl cms -purpose
 * any`, plus the CRL when there is one), and finally the codeSigning
 * extended key usage, which OpenSSL 3.0 has no X509_PURPOSE for.
 *
 * Every OpenSSL call that fails leaves errors on the thread's queue; they
 * are turned into the message and cleared before returning, so that they
 * do not surface in an unrelated later call.
 */
#include "signing.h"
#include "p11key.h"
#include "sslutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct signing_trust {
	X509_STORE *store;
	STACK_OF(X509_CRL) *crls; /* NULL: no revocation check */
	time_t at;                /* 0: now */
};

struct signing_key {
	X509 *cert;
	STACK_OF(X509) *chain; /* extra certificates to include; may be empty */
	EVP_PKEY *pkey;          /* the file's; or p11's, owned by it */
	struct p11key *p11;      /* a key in a PKCS#11 token (p11key.h) */
};

static const char *const status_names[] = {
	[SIGNING_OK] = "ok",
	[SIGNING_ERR_EMPTY_OBJECT] = "empty-object",
	[SIGNING_ERR_NO_SIG] = "no-signature",
	[SIGNING_ERR_MALFORMED_SIG] = "malformed-signature",
	[SIGNING_ERR_WEAK_DIGEST] = "weak-digest",
	[SIGNING_ERR_NO_SIGNER_CERT] = "no-signer-certificate",
	[SIGNING_ERR_BAD_SIGNATURE] = "bad-signature",
	[SIGNING_ERR_DIGEST_MISMATCH] = "digest-mismatch",
	[SIGNING_ERR_UNTRUSTED] = "untrusted",
	[SIGNING_ERR_EXPIRED] = "expired",
	[SIGNING_ERR_NOT_YET_VALID] = "not-yet-valid",
	[SIGNING_ERR_REVOKED] = "revoked",
	[SIGNING_ERR_CRL] = "crl-unusable",
	[SIGNING_ERR_BAD_EKU] = "bad-eku",
	[SIGNING_ERR_BAD_KEY_USAGE] = "bad-key-usage",
	[SIGNING_ERR_INTERNAL] = "internal",
};

const char *signing_status_name(enum signing_status st)
{
	if ((unsigned)st < sizeof(status_names) / sizeof(status_names[0]) && status_names[st])
		return status_names[st];
	return "unknown";
}

static void __attribute__((format(printf, 3, 4))) fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;

	if (!buf || !len)
		return;
	va_start(ap, f);
	vsnprintf(buf, len, f, ap);
	va_end(ap);
}

/* Never prompt on a terminal for a passphrase: encrypted keys are refused. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

int signing_read_file(int dirfd, const char *path, size_t max, bool nofollow, void **ret_buf,
		      size_t *ret_len)
{
	int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK; /* a FIFO must not block us */
	struct stat st;
	size_t cap, len = 0;
	uint8_t *buf;
	int fd, rc;

	if (nofollow)
		flags |= O_NOFOLLOW;
	fd = openat(dirfd, path, flags);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto fail_fd;
	}
	if ((uint64_t)st.st_size > max) {
		rc = -EFBIG;
		goto fail_fd;
	}
	/* One byte more than the size, to see the end without a second buffer. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (!buf) {
		rc = -ENOMEM;
		goto fail_fd;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			/* The file grew while being read. */
			size_t ncap = cap > max / 2 ? max + 1 : cap * 2;
			uint8_t *nbuf;

			if (len > max) {
				rc = -EFBIG;
				goto fail_buf;
			}
			nbuf = realloc(buf, ncap);
			if (!nbuf) {
				rc = -ENOMEM;
				goto fail_buf;
			}
			buf = nbuf;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto fail_buf;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		rc = -EFBIG;
		goto fail_buf;
	}
	close(fd);
	*ret_buf = buf;
	*ret_len = len;
	return 0;

fail_buf:
	free(buf);
fail_fd:
	close(fd);
	return rc;
}

/* "CN=signer,O=Example", "(empty name)" for an empty one: what messages name. */
static const char *name_str(const X509_NAME *name, char *buf, size_t len)
{
	if (!*sslutil_name(name, buf, len))
		snprintf(buf, len, "(empty name)");
	return buf;
}

static const char *subject_str(const X509 *x, char *buf, size_t len)
{
	return name_str(X509_get_subject_name(x), buf, len);
}

/* "2031-01-02 03:04:05Z" */
static const char *time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm))
		snprintf(buf, len, "(bad time)");
	return buf;
}

static const char *serial_str(const X509 *x, char *buf, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	snprintf(buf, len, "%s", hex ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
	return buf;
}

/* ------------------------------------------------------------------------ */
/* Trust store.                                                             */

static bool looks_pem(const void *buf, size_t len)
{
	return memmem(buf, len, "-----BEGIN", 10) != NULL;
}

int signing_trust_load_mem(const void *ca, size_t ca_len, const char *ca_name, const void *crl,
			   size_t crl_len, const char *crl_name, struct signing_trust **ret_trust,
			   char *err, size_t errlen)
{
	STACK_OF(X509_INFO) *infos = NULL;
	struct signing_trust *t;
	char why[256];
	int ncerts = 0, rc;
	BIO *b;

	if (!ca_len) {
		fmt(err, errlen, "%s: empty: no CA certificate", ca_name);
		return -EBADMSG;
	}
	if (ca_len > SIGNING_MAX_TRUST_BYTES || (crl && crl_len > SIGNING_MAX_CRL_BYTES)) {
		fmt(err, errlen, "%s: too large", ca_len > SIGNING_MAX_TRUST_BYTES ? ca_name : crl_name);
		return -EFBIG;
	}
	if (crl && !crl_len) {
		fmt(err, errlen, "%s: empty: no CRL", crl_name);
		return -EBADMSG;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->store = X509_STORE_new();
	if (!t->store)
		goto nomem;

	b = BIO_new_mem_buf(ca, (int)ca_len);
	if (!b)
		goto nomem;
	infos = PEM_X509_INFO_read_bio(b, NULL, no_password, NULL);
	BIO_free(b);
	if (!infos) {
		fmt(err, errlen, "%s: not a PEM bundle of certificates: %s", ca_name,
		    sslutil_reason(why, sizeof(why)));
		rc = -EBADMSG;
		goto fail;
	}
	for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *xi = sk_X509_INFO_value(infos, i);

		if (!xi->x509)
			continue;
		if (!X509_STORE_add_cert(t->store, xi->x509)) {
			fmt(err, errlen, "%s: cannot add certificate %d: %s", ca_name, i + 1,
			    sslutil_reason(why, sizeof(why)));
			rc = -EBADMSG;
			goto fail;
		}
		ncerts++;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	infos = NULL;
	if (!ncerts) {
		fmt(err, errlen, "%s: no certificate in the file", ca_name);
		rc = -EBADMSG;
		goto fail;
	}

	if (crl) {
		t->crls = sk_X509_CRL_new_null();
		if (!t->crls || !(b = BIO_new_mem_buf(crl, (int)crl_len)))
			goto nomem;
		if (looks_pem(crl, crl_len)) {
			infos = PEM_X509_INFO_read_bio(b, NULL, no_password, NULL);
			for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
				X509_INFO *xi = sk_X509_INFO_value(infos, i);

				if (xi->crl && sk_X509_CRL_push(t->crls, xi->crl) > 0)
					xi->crl = NULL; /* now owned by t->crls */
			}
		} else {
			X509_CRL *c = d2i_X509_CRL_bio(b, NULL);

			if (c && sk_X509_CRL_push(t->crls, c) <= 0)
				X509_CRL_free(c);
		}
		BIO_free(b);
		if (sk_X509_CRL_num(t->crls) == 0) {
			fmt(err, errlen, "%s: no CRL in the file (PEM \"X509 CRL\" or DER expected): %s",
			    crl_name, sslutil_reason(why, sizeof(why)));
			rc = -EBADMSG;
			goto fail;
		}
	}

	/*
	 * Every certificate the operator put in the bundle is an anchor
	 * (PARTIAL_CHAIN), so trusting only a code-signing intermediate works.
	 * Purpose "any", as `openssl cms -purpose any`: the S/MIME purpose CMS
	 * would apply does not fit code signing, whose EKU check_usage() makes.
	 */
	X509_STORE_set_flags(t->store, X509_V_FLAG_PARTIAL_CHAIN |
					       (t->crls ? X509_V_FLAG_CRL_CHECK : 0));
	X509_STORE_set_purpose(t->store, X509_PURPOSE_ANY);
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	ERR_clear_error();
	*ret_trust = t;
	return 0;

nomem:
	rc = -ENOMEM;
	fmt(err, errlen, "%s: out of memory", ca_name);
fail:
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	signing_trust_free(t);
	ERR_clear_error();
	return rc;
}

int signing_trust_load(const char *ca_path, const char *crl_path, struct signing_trust **ret_trust,
		       char *err, size_t errlen)
{
	void *ca = NULL, *crl = NULL;
	size_t ca_len, crl_len = 0;
	int rc;

	rc = signing_read_file(AT_FDCWD, ca_path, SIGNING_MAX_TRUST_BYTES, false, &ca, &ca_len);
	if (rc) {
		fmt(err, errlen, "%s: %s", ca_path, rc == -EFBIG ? "larger than 8 MiB" : strerror(-rc));
		return rc;
	}
	if (crl_path) {
		rc = signing_read_file(AT_FDCWD, crl_path, SIGNING_MAX_CRL_BYTES, false, &crl, &crl_len);
		if (rc) {
			fmt(err, errlen, "%s: %s", crl_path,
			    rc == -EFBIG ? "larger than 64 MiB" : strerror(-rc));
			free(ca);
			return rc;
		}
		if (!crl_len) {
			fmt(err, errlen, "%s: empty: no CRL", crl_path);
			free(ca);
			free(crl);
			return -EBADMSG;
		}
	}
	rc = signing_trust_load_mem(ca, ca_len, ca_path, crl, crl_len, crl_path, ret_trust, err, errlen);
	free(ca);
	free(crl);
	return rc;
}

void signing_trust_set_time(struct signing_trust *t, time_t at)
{
	t->at = at;
}

void signing_trust_free(struct signing_trust *t)
{
	if (!t)
		return;
	X509_STORE_free(t->store);
	sk_X509_CRL_pop_free(t->crls, X509_CRL_free);
	free(t);
}

/* ------------------------------------------------------------------------ */
/* Verification.                                                            */

/* Validity at `at` (0: now), as X509_verify_cert would see it. */
static enum signing_status check_validity(const X509 *x, time_t at, char *msg, size_t msglen)
{
	char name[256], when[64];
	time_t *tp = at ? &at : NULL;

	if (X509_cmp_time(X509_get0_notBefore(x), tp) > 0) {
		fmt(msg, msglen, "certificate %s is not valid before %s", subject_str(x, name, sizeof(name)),
		    time_str(X509_get0_notBefore(x), when, sizeof(when)));
		return SIGNING_ERR_NOT_YET_VALID;
	}
	if (X509_cmp_time(X509_get0_notAfter(x), tp) < 0) {
		fmt(msg, msglen, "certificate %s expired on %s", subject_str(x, name, sizeof(name)),
		    time_str(X509_get0_notAfter(x), when, sizeof(when)));
		return SIGNING_ERR_EXPIRED;
	}
	return SIGNING_OK;
}

/*
 * Whether x lists the Vigil policy-signing extended key usage
 * (SIGNING_POLICY_EKU_OID).  OpenSSL knows no such purpose, so the EKU
 * extension is read and each OID compared.
 */
static bool has_policy_eku(X509 *x)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	ASN1_OBJECT *want = OBJ_txt2obj(SIGNING_POLICY_EKU_OID, 1);
	bool found = false;

	for (int i = 0; eku && want && i < sk_ASN1_OBJECT_num(eku) && !found; i++)
		found = OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), want) == 0;
	ASN1_OBJECT_free(want);
	EXTENDED_KEY_USAGE_free(eku);
	return found;
}

/* The signer must be meant for what it signs: code, or (policy) code or policies. */
static enum signing_status check_usage(X509 *x, bool policy, char *msg, size_t msglen)
{
	uint32_t flags = X509_get_extension_flags(x);
	bool code = (flags & EXFLAG_XKUSAGE) && (X509_get_extended_key_usage(x) & XKU_CODE_SIGN);
	char name[256];

	if (!code && !(policy && (flags & EXFLAG_XKUSAGE) && has_policy_eku(x))) {
		if (policy)
			fmt(msg, msglen, "certificate %s %s; add extendedKeyUsage = codeSigning or %s "
				 "(Vigil policy signing)", subject_str(x, name, sizeof(name)),
			    flags & EXFLAG_XKUSAGE ? "has an extended key usage without codeSigning or "
						     "policy signing"
						   : "has no extended key usage", SIGNING_POLICY_EKU_OID);
		else
			fmt(msg, msglen, "certificate %s %s; add extendedKeyUsage = codeSigning",
			    subject_str(x, name, sizeof(name)),
			    flags & EXFLAG_XKUSAGE ? "has an extended key usage without codeSigning"
						   : "has no extended key usage (codeSigning is required)");
		return SIGNING_ERR_BAD_EKU;
	}
	if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE)) {
		fmt(msg, msglen, "certificate %s has a key usage without digitalSignature",
		    subject_str(x, name, sizeof(name)));
		return SIGNING_ERR_BAD_KEY_USAGE;
	}
	return SIGNING_OK;
}

static enum signing_status chain_status(int e)
{
	switch (e) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return SIGNING_ERR_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return SIGNING_ERR_NOT_YET_VALID;
	case X509_V_ERR_CERT_REVOKED:
		return SIGNING_ERR_REVOKED;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
	case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
		return SIGNING_ERR_CRL;
	default:
		return SIGNING_ERR_UNTRUSTED;
	}
}

static enum signing_status verify_chain(const struct signing_trust *t, X509 *signer,
					STACK_OF(X509) *untrusted, char *msg, size_t msglen)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	enum signing_status st = SIGNING_OK;
	char name[256], when[64];
	X509 *cur;
	int e;

	if (!ctx || !X509_STORE_CTX_init(ctx, t->store, signer, untrusted)) {
		X509_STORE_CTX_free(ctx);
		fmt(msg, msglen, "out of memory");
		return SIGNING_ERR_INTERNAL;
	}
	if (t->at)
		X509_STORE_CTX_set_time(ctx, 0, t->at);
	if (t->crls)
		X509_STORE_CTX_set0_crls(ctx, t->crls);
	if (X509_verify_cert(ctx) == 1)
		goto out;

	e = X509_STORE_CTX_get_error(ctx);
	cur = X509_STORE_CTX_get_current_cert(ctx);
	if (!cur)
		cur = signer;
	st = chain_status(e);
	subject_str(cur, name, sizeof(name));
	switch (st) {
	case SIGNING_ERR_EXPIRED:
		fmt(msg, msglen, "certificate %s expired on %s", name,
		    time_str(X509_get0_notAfter(cur), when, sizeof(when)));
		break;
	case SIGNING_ERR_NOT_YET_VALID:
		fmt(msg, msglen, "certificate %s is not valid before %s", name,
		    time_str(X509_get0_notBefore(cur), when, sizeof(when)));
		break;
	case SIGNING_ERR_REVOKED: {
		char serial[80];

		fmt(msg, msglen, "certificate %s (serial %s) is revoked by the CRL", name,
		    serial_str(cur, serial, sizeof(serial)));
		break;
	}
	case SIGNING_ERR_CRL:
		fmt(msg, msglen, "cannot check certificate %s for revocation: %s", name,
		    X509_verify_cert_error_string(e));
		break;
	default:
		if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		    e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
		    e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT) {
			char issuer[256];

			fmt(msg, msglen, "certificate %s (issuer %s) does not chain to the trust store: %s",
			    name, name_str(X509_get_issuer_name(cur), issuer, sizeof(issuer)),
			    X509_verify_cert_error_string(e));
		} else {
			fmt(msg, msglen, "certificate %s: %s", name, X509_verify_cert_error_string(e));
		}
		break;
	}
out:
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return st;
}

static bool digest_ok(int nid)
{
	return nid == NID_sha256 || nid == NID_sha384 || nid == NID_sha512;
}

/*
 * The object's digest against the signature.  Done by hand rather than with
 * CMS_verify(), whose OpenSSL 3.0 error path leaks its copy of a memory BIO
 * when the signature's digest algorithm list is damaged.
 */
static enum signing_status verify_content(CMS_ContentInfo *cms, CMS_SignerInfo *si, const void *data,
					  size_t len, int nid, char *msg, size_t msglen)
{
	enum signing_status st = SIGNING_OK;
	BIO *cont, *chain;
	char buf[16384], why[256];
	int r;

	if (len > INT32_MAX) {
		fmt(msg, msglen, "the object is too large (%zu bytes)", len);
		return SIGNING_ERR_INTERNAL;
	}
	cont = BIO_new_mem_buf(data, (int)len);
	if (!cont) {
		fmt(msg, msglen, "out of memory");
		return SIGNING_ERR_INTERNAL;
	}
	chain = CMS_dataInit(cms, cont); /* digest BIOs pushed in front of cont */
	if (!chain) {
		fmt(msg, msglen, "the signature's digest algorithms are unusable: %s",
		    sslutil_reason(why, sizeof(why)));
		BIO_free(cont);
		return SIGNING_ERR_MALFORMED_SIG;
	}
	while ((r = BIO_read(chain, buf, sizeof(buf))) > 0)
		;
	if (r < 0 || CMS_SignerInfo_verify_content(si, chain) != 1) {
		unsigned long e = ERR_peek_last_error();

		if (ERR_GET_LIB(e) == ERR_LIB_CMS && ERR_GET_REASON(e) == CMS_R_NO_MATCHING_DIGEST) {
			fmt(msg, msglen, "the signer's digest algorithm is not among the signature's");
			st = SIGNING_ERR_MALFORMED_SIG;
		} else {
			fmt(msg, msglen, "the object's bytes are not the bytes that were signed (%zu "
					 "bytes, SHA-%s digest differs)",
			    len, nid == NID_sha256 ? "256" : nid == NID_sha384 ? "384" : "512");
			st = SIGNING_ERR_DIGEST_MISMATCH;
		}
	}
	while (chain && chain != cont) {
		BIO *next = BIO_pop(chain);

		BIO_free(chain);
		chain = next;
	}
	BIO_free(cont);
	ERR_clear_error();
	return st;
}

static enum signing_status verify(const struct signing_trust *trust, bool policy, const void *data,
				  size_t len, const void *sig, size_t sig_len, char *msg, size_t msglen)
{
	enum signing_status st;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_SignerInfo) *sis;
	STACK_OF(X509) *certs = NULL;
	CMS_SignerInfo *si;
	X509_ALGOR *dig;
	const ASN1_OBJECT *dobj;
	const unsigned char *p = sig;
	X509 *signer = NULL;
	char why[256];
	int nid, n;

	if (msg && msglen)
		msg[0] = '\0';
	if (!data || !len) {
		fmt(msg, msglen, "the object is empty");
		return SIGNING_ERR_EMPTY_OBJECT;
	}
	if (!sig || !sig_len) {
		fmt(msg, msglen, "the signature is empty");
		return SIGNING_ERR_NO_SIG;
	}
	if (sig_len > SIGNING_MAX_SIG_BYTES) {
		fmt(msg, msglen, "the signature is %zu bytes, more than the %u a signature may have",
		    sig_len, SIGNING_MAX_SIG_BYTES);
		return SIGNING_ERR_MALFORMED_SIG;
	}
	ERR_clear_error();
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)sig_len);
	if (!cms) {
		fmt(msg, msglen, "the signature is not DER CMS (truncated or not a signature): %s",
		    sslutil_reason(why, sizeof(why)));
		return SIGNING_ERR_MALFORMED_SIG;
	}
	if (p != (const unsigned char *)sig + sig_len) {
		fmt(msg, msglen, "%zu stray bytes after the CMS structure",
		    sig_len - (size_t)(p - (const unsigned char *)sig));
		st = SIGNING_ERR_MALFORMED_SIG;
		goto out;
	}
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	if (nid != NID_pkcs7_signed) {
		fmt(msg, msglen, "the CMS structure is %s, not signedData",
		    nid != NID_undef ? OBJ_nid2ln(nid) : "of an unknown type");
		st = SIGNING_ERR_MALFORMED_SIG;
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
		fmt(msg, msglen, "the signed content type is not id-data");
		st = SIGNING_ERR_MALFORMED_SIG;
		goto out;
	}
	if (CMS_is_detached(cms) != 1) {
		fmt(msg, msglen, "the signature embeds content; a detached signature (-binary without "
				 "-nodetach) is required");
		st = SIGNING_ERR_MALFORMED_SIG;
		goto out;
	}
	sis = CMS_get0_SignerInfos(cms);
	n = sis ? sk_CMS_SignerInfo_num(sis) : 0;
	if (n != 1) {
		fmt(msg, msglen, "the signature has %d signers; exactly one is accepted", n);
		st = SIGNING_ERR_MALFORMED_SIG;
		goto out;
	}
	si = sk_CMS_SignerInfo_value(sis, 0);
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
	X509_ALGOR_get0(&dobj, NULL, NULL, dig);
	nid = OBJ_obj2nid(dobj);
	if (!digest_ok(nid)) {
		fmt(msg, msglen, "digest %s is not accepted; sign with -md sha256",
		    nid != NID_undef ? OBJ_nid2sn(nid) : "(unknown)");
		st = SIGNING_ERR_WEAK_DIGEST;
		goto out;
	}
	CMS_set1_signers_certs(cms, NULL, 0);
	CMS_SignerInfo_get0_algs(si, NULL, &signer, NULL, NULL);
	if (!signer) {
		fmt(msg, msglen, "the signer's certificate is not in the signature (signed with -nocerts?)");
		st = SIGNING_ERR_NO_SIGNER_CERT;
		goto out;
	}
	ERR_clear_error();

	/* The signature itself: first over the signed attributes, when present... */
	if (CMS_signed_get_attr_count(si) >= 0 && CMS_SignerInfo_verify(si) != 1) {
		char name[256];

		fmt(msg, msglen, "the signature does not verify with the key of %s: %s",
		    subject_str(signer, name, sizeof(name)), sslutil_reason(why, sizeof(why)));
		st = SIGNING_ERR_BAD_SIGNATURE;
		goto out;
	}
	/* ...then the object's digest (or, without attributes, the signature over it). */
	st = verify_content(cms, si, data, len, nid, msg, msglen);
	if (st != SIGNING_OK)
		goto out;

	/* Who signed: chain, validity, revocation, then what the certificate is for. */
	certs = CMS_get1_certs(cms);
	st = verify_chain(trust, signer, certs, msg, msglen);
	if (st != SIGNING_OK)
		goto out;
	st = check_usage(signer, policy, msg, msglen);
	if (st != SIGNING_OK)
		goto out;
	{
		char name[256], issuer[256], serial[80], until[64];

		fmt(msg, msglen, "signed by %s (serial %s, issuer %s, valid until %s)",
		    subject_str(signer, name, sizeof(name)), serial_str(signer, serial, sizeof(serial)),
		    name_str(X509_get_issuer_name(signer), issuer, sizeof(issuer)),
		    time_str(X509_get0_notAfter(signer), until, sizeof(until)));
	}
out:
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return st;
}

enum signing_status signing_verify(const struct signing_trust *trust, const void *data, size_t len,
				   const void *sig, size_t sig_len, char *msg, size_t msglen)
{
	return verify(trust, false, data, len, sig, sig_len, msg, msglen);
}

enum signing_status signing_verify_policy(const struct signing_trust *trust, const void *data,
					  size_t len, const void *sig, size_t sig_len, char *msg,
					  size_t msglen)
{
	return verify(trust, true, data, len, sig, sig_len, msg, msglen);
}

/* ------------------------------------------------------------------------ */
/* Signing.                                                                 */

int signing_key_load(const char *cert_path, const char *key_path, struct signing_key **ret_key,
		     char *err, size_t errlen)
{
	struct signing_key *k;
	void *cbuf = NULL, *kbuf = NULL;
	size_t clen, klen = 0;
	char why[256];
	BIO *b = NULL;
	int rc;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	rc = signing_read_file(AT_FDCWD, cert_path, SIGNING_MAX_KEY_BYTES, false, &cbuf, &clen);
	if (rc) {
		fmt(err, errlen, "%s: %s", cert_path, rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
		goto fail;
	}
	if (!p11key_is_uri(key_path)) {
		rc = signing_read_file(AT_FDCWD, key_path, SIGNING_MAX_KEY_BYTES, false, &kbuf, &klen);
		if (rc) {
			fmt(err, errlen, "%s: %s", key_path,
			    rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
			goto fail;
		}
	}
	rc = -ENOMEM;
	k->chain = sk_X509_new_null();
	if (!k->chain || !(b = BIO_new_mem_buf(cbuf, (int)clen)))
		goto fail;
	k->cert = PEM_read_bio_X509(b, NULL, no_password, NULL);
	if (!k->cert) {
		fmt(err, errlen, "%s: not a PEM certificate: %s", cert_path, sslutil_reason(why, sizeof(why)));
		rc = -EBADMSG;
		goto fail;
	}
	for (;;) {
		X509 *x = PEM_read_bio_X509(b, NULL, no_password, NULL);

		if (!x)
			break;
		if (sk_X509_push(k->chain, x) <= 0) {
			X509_free(x);
			goto fail;
		}
	}
	ERR_clear_error(); /* the end of the PEM stream */
	BIO_free(b);
	b = NULL;
	if (p11key_is_uri(key_path)) {
		if (p11key_load(key_path, &k->p11, err, errlen)) {
			rc = -EBADMSG; /* err says why */
			goto fail;
		}
		k->pkey = p11key_pkey(k->p11);
	} else if (!(b = BIO_new_mem_buf(kbuf, (int)klen))) {
		goto fail;
	} else if (!(k->pkey = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL))) {
		fmt(err, errlen, "%s: not an unencrypted PEM private key: %s", key_path,
		    sslutil_reason(why, sizeof(why)));
		rc = -EBADMSG;
		goto fail;
	}
	if (X509_check_private_key(k->cert, k->pkey) != 1) {
		char shown[512];

		fmt(err, errlen, "%s: this key does not belong to the certificate in %s",
		    p11key_is_uri(key_path) ? p11key_shown(key_path, shown, sizeof(shown)) : key_path,
		    cert_path);
		rc = -EKEYREJECTED;
		goto fail;
	}
	BIO_free(b);
	if (kbuf)
		OPENSSL_cleanse(kbuf, klen);
	free(kbuf);
	free(cbuf);
	ERR_clear_error();
	*ret_key = k;
	return 0;

fail:
	if (rc == -ENOMEM)
		fmt(err, errlen, "out of memory");
	BIO_free(b);
	if (kbuf)
		OPENSSL_cleanse(kbuf, klen);
	free(kbuf);
	free(cbuf);
	signing_key_free(k);
	ERR_clear_error();
	return rc;
}

enum signing_status signing_key_check(const struct signing_key *key, char *msg, size_t msglen)
{
	enum signing_status st;

	if (msg && msglen)
		msg[0] = '\0';
	st = check_validity(key->cert, 0, msg, msglen);
	if (st == SIGNING_OK)
		st = check_usage(key->cert, false, msg, msglen);
	return st;
}

void signing_key_free(struct signing_key *key)
{
	if (!key)
		return;
	X509_free(key->cert);
	sk_X509_pop_free(key->chain, X509_free);
	if (key->p11)
		p11key_free(key->p11); /* the key, then the token */
	else
		EVP_PKEY_free(key->pkey);
	free(key);
}

int signing_sign(const struct signing_key *key, const void *data, size_t len, void **ret_sig,
		 size_t *ret_sig_len, char *err, size_t errlen)
{
	const unsigned flags = CMS_BINARY | CMS_DETACHED | CMS_PARTIAL;
	CMS_ContentInfo *cms = NULL;
	unsigned char *der = NULL;
	void *out;
	char why[256];
	BIO *in = NULL;
	int n, rc = -EIO;

	if (!len) {
		fmt(err, errlen, "refusing to sign an empty file: vigild would refuse it");
		return -EINVAL;
	}
	if (len > INT32_MAX) {
		fmt(err, errlen, "too large to sign (%zu bytes)", len);
		return -EFBIG;
	}
	ERR_clear_error();
	in = BIO_new_mem_buf(data, (int)len);
	cms = in ? CMS_sign(NULL, NULL, key->chain, NULL, flags) : NULL;
	if (!cms || !CMS_add1_signer(cms, key->cert, key->pkey, EVP_sha256(), flags) ||
	    !CMS_final(cms, in, NULL, flags)) {
		fmt(err, errlen, "cannot sign: %s", sslutil_reason(why, sizeof(why)));
		goto out;
	}
	n = i2d_CMS_ContentInfo(cms, &der);
	if (n <= 0) {
		fmt(err, errlen, "cannot encode the signature: %s", sslutil_reason(why, sizeof(why)));
		goto out;
	}
	out = malloc((size_t)n);
	if (!out) {
		fmt(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	memcpy(out, der, (size_t)n);
	*ret_sig = out;
	*ret_sig_len = (size_t)n;
	rc = 0;
out:
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	ERR_clear_error();
	return rc;
}
