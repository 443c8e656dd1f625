/*
 * pemfile.h - the files vigil-cp is given on its command line: read
 * bounded, then parsed as PEM certificates or a PEM private key.  Every
 * message names the option and the file ("--agent-ca /etc/a.pem: ...").
 *
 * Used by tlsconf.c (server certificate, key, client CAs, CRLs) and
 * csrsign.c (issuer certificate and key).  Runs in vigil-cp, at start and
 * on SIGHUP.  Library-like: 0 or -errno with a one-line reason in err.
 */
#ifndef VIGIL_PEMFILE_H
#define VIGIL_PEMFILE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Limits on the files read (the same as the signing trust store's). */
#define PEMFILE_MAX_BYTES (8u << 20)
#define PEMFILE_MAX_CRL_BYTES (64u << 20)

/*
 * The whole regular file path (at most max bytes) into a malloc'ed *ret
 * the caller frees.  -EFBIG, -EINVAL (not a regular file), -ENOENT...
 */
int pemfile_read(const char *opt, const char *path, size_t max, void **ret, size_t *ret_len,
		 char *err, size_t errlen);

/*
 * Every PEM certificate of the file, in order; at least one, and nothing
 * but certificates.  With want_ca, each must be a CA certificate.
 * -EBADMSG for what is not that, or pemfile_read()'s errors.
 */
int pemfile_certs(const char *opt, const char *path, bool want_ca, STACK_OF(X509) **ret, char *err,
		  size_t errlen);

/* The PEM private key of the file (not encrypted); the buffer is wiped. */
int pemfile_key(const char *opt, const char *path, EVP_PKEY **ret, char *err, size_t errlen);

#endif
