/*
 * tlsconf.h - vigil-cp's TLS configuration: one OpenSSL 3 SSL_CTX per
 * loaded configuration (start, and each SIGHUP), and the state each TLS
 * connection carries.
 *
 * The context: the server certificate (with its chain) and key; TLS 1.3,
 * and TLS 1.2 with ECDHE key exchange and AEAD ciphers only (AES-GCM,
 * ChaCha20-Poly1305); no renegotiation, no compression, no session
 * resumption (every connection presents and verifies its certificate, so a
 * new CRL or an expiry takes effect on the next connection).  A client
 * certificate is required; it must chain to --agent-ca (CP_ROLE_AGENT) or
 * to --admin-ca (CP_ROLE_ADMIN), never to both, and carry the clientAuth
 * extended key usage.  Both CAs are advertised as acceptable.
 *
 * With --crl, the store checks the client certificate against its
 * issuer's CRL (X509_V_FLAG_CRL_CHECK).  A CA that no CRL of the file
 * covers fails closed: its certificates are refused ("unable to get
 * certificate CRL"), and tlsconf_new() says so in its warnings.  Each file
 * of a CA bundle is a set of trust anchors (X509_V_FLAG_PARTIAL_CHAIN), so
 * --agent-ca and --admin-ca may be two intermediates under one root, given
 * without that root.
 *
 * Runs in vigil-cp (unprivileged, single-threaded).  Library-like: returns
 * 0 or -errno with a one-line reason; never logs.  The verify and info
 * callbacks record why a handshake failed in the connection's struct
 * tlsconn for httpd.c to log.
 */
#ifndef VIGIL_TLSCONF_H
#define VIGIL_TLSCONF_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "cpident.h"

struct tlsconf_files {
	const char *cert;	/* server certificate, PEM, then its chain */
	const char *key;	/* its private key, PEM, unencrypted */
	const char *agent_ca;	/* PEM bundle: agents' CA certificates */
	const char *admin_ca;	/* PEM bundle: administrators' CA certificates */
	const char *crl;	/* NULL, or CRLs: PEM (any number) or one DER */
};

/*
 * What each SSL made by tlsconf_ssl_new() carries, owned by the SSL and
 * freed with it (on_free is called first).
 */
struct tlsconn {
	char peer[64];			/* "192.0.2.1:5000", "[::1]:5000"; at handshake start */
	char refusal[400];		/* why the handshake failed; "" while it has not */
	bool handshake_done;
	bool verified;			/* handshake done with a verified client certificate */
	struct cp_identity id;		/* valid when verified (role != CP_ROLE_NONE) */
	unsigned generation;		/* of the configuration that verified it */
	void *user;			/* for the caller */
	void (*on_free)(struct tlsconn *c);
};

/*
 * Load the files into a new server context tagged with generation.
 * 0 and *ret_ctx (SSL_CTX_free() it; connections hold their own
 * reference), or -errno with a message naming the file and the reason in
 * err: -ENOENT, -EACCES, -EFBIG... a file cannot be read; -EBADMSG its
 * contents are unusable (no certificate, key does not match, not a CA);
 * -EINVAL the roles would be ambiguous (one file for both CAs, a
 * certificate in both, a CA of one issued by a CA of the other); -ENOMEM,
 * -EIO (OpenSSL).  warn (may be NULL) gets "" or a one-line warning that
 * does not stop the load (a CA no CRL covers, an expired CRL or server
 * certificate, a key file that others can read).
 */
int tlsconf_new(const struct tlsconf_files *f, unsigned generation, SSL_CTX **ret_ctx, char *err,
		size_t errlen, char *warn, size_t warnlen);

/* The generation a context was made with. */
unsigned tlsconf_generation(const SSL_CTX *ctx);

/* A one-line summary of a context ("2 agent CA(s), 1 admin CA(s), CRL: 2"). */
void tlsconf_describe(const SSL_CTX *ctx, char *buf, size_t len);

/*
 * A server-side SSL from ctx with its struct tlsconn attached (*ret_conn,
 * owned by the SSL).  NULL on allocation failure.
 */
SSL *tlsconf_ssl_new(SSL_CTX *ctx, struct tlsconn **ret_conn);

/* Fill the connection's peer address from its socket, unless known already. */
void tlsconf_note_peer(SSL *ssl);

/* The struct tlsconn of an SSL made by tlsconf_ssl_new(), or NULL. */
struct tlsconn *tlsconf_conn(const SSL *ssl);

/*
 * Verify again the client certificate of an established connection, under
 * ctx (a newer configuration): 0 with *ret filled, or -EPERM with the
 * reason in why (revoked since, another role...).
 */
int tlsconf_reverify(SSL_CTX *ctx, SSL *ssl, struct cp_identity *ret, char *why, size_t whylen);

#endif
