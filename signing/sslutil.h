/*
 * sslutil.h - small OpenSSL helpers shared by the code that reads
 * certificates: the reason of the last OpenSSL error, the text of an X.509
 * name, and one certificate extension from openssl's config syntax.
 *
 * Used by signing.c and devca.c (vigild's monitor, vigil-sign) and by
 * vigil-cp's tlsconf.c, csrsign.c and pemfile.c.  Library-like: never
 * logs, never allocates what the caller must free.
 */
#ifndef VIGIL_SSLUTIL_H
#define VIGIL_SSLUTIL_H

#include <stddef.h>

#include <openssl/x509.h>

/*
 * The reason of the most recent OpenSSL error into buf ("unknown OpenSSL
 * error" when the queue is empty), then the queue is emptied.  Returns buf.
 */
const char *sslutil_reason(char *buf, size_t len);

/*
 * "CN=signer,O=Example": the RFC 2253 text of n, with control and non-ASCII
 * characters escaped, so that it is safe in one log line; cut to len - 1
 * bytes.  "" for an empty name (or when it cannot be printed).  Returns buf.
 */
const char *sslutil_name(const X509_NAME *n, char *buf, size_t len);

/* Add the extension nid = value (openssl's config syntax) to x.  0 or -EIO. */
int sslutil_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value);

#endif
