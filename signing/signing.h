/*
 * signing.h - detached CMS (PKCS#7) signatures of BPF objects: sign, and
 * verify against a trust store of CA certificates and an optional CRL.
 *
 * A signature is a DER CMS SignedData with no encapsulated content, one
 * SignerInfo, a SHA-256 (or SHA-384/512) digest and the signer's
 * certificate inside: exactly what
 *   openssl cms -sign -binary -md sha256 -outform DER -in X -signer C -inkey K
 * produces, and what
 *   openssl cms -verify -binary -inform DER -purpose any -content X -CAfile CA
 * accepts.  Verification is stricter than that command: the signer's
 * certificate must also carry the codeSigning extended key usage, and
 * digitalSignature when it has a key usage extension at all.
 *
 * Library-like: never logs, never exits.  Trust and key loading return 0 or
 * -errno with a one-line message in err; verification returns a precise
 * reason (enum signing_status) with a one-line message.  Everything works on
 * bytes already in memory, so the caller decides what it reads, once.
 *
 * Runs in vigild's monitor (privileged) and in vigil-sign.
 */
#ifndef VIGIL_SIGNING_H
#define VIGIL_SIGNING_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Limits on what is read from files the caller does not control. */
#define SIGNING_MAX_SIG_BYTES   (256u << 10) /* a signature with a long chain is ~10 KiB */
#define SIGNING_MAX_TRUST_BYTES (8u << 20)   /* a PEM bundle of CA certificates */
#define SIGNING_MAX_CRL_BYTES   (64u << 20)  /* PEM or DER CRLs */
#define SIGNING_MAX_KEY_BYTES   (1u << 20)   /* signer certificate (+ chain) or key */

/* Why a verification failed.  Stable: tests and logs use signing_status_name(). */
enum signing_status {
	SIGNING_OK = 0,
	SIGNING_ERR_EMPTY_OBJECT,   /* "empty-object": nothing to verify */
	SIGNING_ERR_NO_SIG,         /* "no-signature": signature missing or empty */
	SIGNING_ERR_MALFORMED_SIG,  /* "malformed-signature": not DER CMS SignedData, truncated,
				       trailing bytes, embedded content, not exactly one signer */
	SIGNING_ERR_WEAK_DIGEST,    /* "weak-digest": digest other than SHA-256/384/512 */
	SIGNING_ERR_NO_SIGNER_CERT, /* "no-signer-certificate": signer's certificate not included */
	SIGNING_ERR_BAD_SIGNATURE,  /* "bad-signature": signed attributes do not verify with the
				       signer's key */
	SIGNING_ERR_DIGEST_MISMATCH,/* "digest-mismatch": the bytes are not the bytes signed */
	SIGNING_ERR_UNTRUSTED,      /* "untrusted": no chain to a certificate of the trust store */
	SIGNING_ERR_EXPIRED,        /* "expired": a certificate of the chain has expired */
	SIGNING_ERR_NOT_YET_VALID,  /* "not-yet-valid": a certificate of the chain is not valid yet */
	SIGNING_ERR_REVOKED,        /* "revoked": listed in the CRL */
	SIGNING_ERR_CRL,            /* "crl-unusable": a CRL was given but is missing for the
				       issuer, expired, or badly signed */
	SIGNING_ERR_BAD_EKU,        /* "bad-eku": no codeSigning extended key usage */
	SIGNING_ERR_BAD_KEY_USAGE,  /* "bad-key-usage": key usage without digitalSignature */
	SIGNING_ERR_INTERNAL,       /* "internal": out of memory or an OpenSSL failure */
};

/* Short stable token for a status ("expired", "digest-mismatch"...). */
const char *signing_status_name(enum signing_status st);

/*
 * Trust store: CA certificates (every certificate of the bundle is a trust
 * anchor, so a bundle may hold just an intermediate CA), and, when given,
 * CRLs that must then cover the signer's issuer.
 */
struct signing_trust;

/*
 * Load a PEM bundle of CA certificates (at least one) and optionally CRLs
 * (PEM, any number, or one DER CRL; crl_path NULL: no revocation check).
 * Returns 0 and *ret_trust (free with signing_trust_free), or -errno with a
 * message naming the file in err: -ENOENT/-EACCES... reading, -EFBIG over
 * the limits above, -EBADMSG nothing usable in the file, -ENOMEM.
 */
int signing_trust_load(const char *ca_path, const char *crl_path, struct signing_trust **ret_trust,
		       char *err, size_t errlen);

/* Same from bytes in memory (ca_len > 0; crl NULL/0: no CRL).  Names are for messages. */
int signing_trust_load_mem(const void *ca, size_t ca_len, const char *ca_name, const void *crl,
			   size_t crl_len, const char *crl_name, struct signing_trust **ret_trust,
			   char *err, size_t errlen);

/* Check validity at this time instead of the current time (0: now).  For tests. */
void signing_trust_set_time(struct signing_trust *t, time_t at);

/* Accepts NULL. */
void signing_trust_free(struct signing_trust *t);

/*
 * Verify that sig (DER CMS, detached) signs exactly data[0..len) and that
 * its signer is trusted.  Checks, in this order: object not empty,
 * signature present and well-formed, digest algorithm, the signature itself
 * (signed attributes and the object's digest), the certificate chain (trust,
 * validity at now, revocation when the trust has CRLs), then the signer's
 * extended key usage and key usage.
 * Returns SIGNING_OK, with msg describing the signer ("signed by CN=...,
 * serial ..., valid until ..."), or the first failed check, with msg saying
 * what failed (naming the certificate when one is at fault).  msg may be
 * NULL; it is always NUL-terminated when msglen > 0.
 */
enum signing_status signing_verify(const struct signing_trust *trust, const void *data, size_t len,
				   const void *sig, size_t sig_len, char *msg, size_t msglen);

/*
 * The extended key usage that marks a certificate as one that signs Vigil
 * policies (and nothing else): an OID under the UUID arc 2.25 (ITU-T X.667),
 * so that it is unique without a registry.  In an openssl extension file:
 *   extendedKeyUsage = 2.25.227699756064508679566492730626946662765
 * docs/control-plane.md shows how to issue one.
 */
#define SIGNING_POLICY_EKU_OID "2.25.227699756064508679566492730626946662765"

/*
 * signing_verify() for a policy: the same checks, except that the signer's
 * certificate may carry either codeSigning or SIGNING_POLICY_EKU_OID.
 */
enum signing_status signing_verify_policy(const struct signing_trust *trust, const void *data,
					  size_t len, const void *sig, size_t sig_len, char *msg,
					  size_t msglen);

/* A signer: certificate (+ chain to include in signatures) and private key. */
struct signing_key;

/*
 * Load the signer certificate from cert_path (PEM; certificates after the
 * first are included in signatures as the chain) and its private key from
 * key_path (PEM, unencrypted), or from the PKCS#11 token key_path names
 * when it is a "pkcs11:" URI (p11key.h: an HSM; the key stays in it).
 * Returns 0 and *ret_key (free with signing_key_free), or -errno with
 * a message: -EBADMSG unparsable, -EKEYREJECTED the key does not match the
 * certificate, -EFBIG, -ENOENT, -ENOMEM.
 */
int signing_key_load(const char *cert_path, const char *key_path, struct signing_key **ret_key,
		     char *err, size_t errlen);

/*
 * Whether the signer's certificate is one vigild accepts by itself (valid
 * now, codeSigning EKU, digitalSignature key usage): SIGNING_OK or the
 * status verification would report, with a message.  The chain is not
 * checked here (no trust store).
 */
enum signing_status signing_key_check(const struct signing_key *key, char *msg, size_t msglen);

/* Accepts NULL. */
void signing_key_free(struct signing_key *key);

/*
 * Sign data[0..len) (len > 0): *ret_sig is a malloc'ed DER detached CMS
 * signature (SHA-256, signing time, signer certificate and chain included)
 * of *ret_sig_len bytes; the caller frees it.  Returns 0, -EINVAL for empty
 * data, -ENOMEM or -EIO (OpenSSL failure, message in err).
 */
int signing_sign(const struct signing_key *key, const void *data, size_t len, void **ret_sig,
		 size_t *ret_sig_len, char *err, size_t errlen);

/*
 * Read a whole regular file (path relative to dirfd, or AT_FDCWD) of at
 * most max bytes into a malloc'ed buffer the caller frees (not
 * NUL-terminated; non-NULL even for an empty file).  The file is read to
 * its end, so one that grows past max while being read is refused too.
 * With nofollow a symlink is refused.  0 or -errno: -EFBIG too large,
 * -EINVAL not a regular file, -ELOOP a symlink with nofollow, -ENOENT,
 * -EACCES, -EIO..., -ENOMEM.
 */
int signing_read_file(int dirfd, const char *path, size_t max, bool nofollow, void **ret_buf,
		      size_t *ret_len);

#endif
