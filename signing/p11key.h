/*
 * p11key.h - a signer's private key kept in a PKCS#11 token (an HSM, a
 * smart card, SoftHSM), named by an RFC 7512 URI, for vigil-sign.
 */
#ifndef VIGIL_P11KEY_H
#define VIGIL_P11KEY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

/* Whether key names a key in a token ("pkcs11:..."), not a file. */
bool p11key_is_uri(const char *key);

/*
 * uri as it may be shown: without its query (after '?'), which may hold
 * the PIN (pin-value=, RFC 7512 section 2.3), and with "..." for the
 * value of any attribute of the path (where libp11 takes a pin-value
 * too) whose name has "pin" in it, but pin-source.  Returns buf.
 */
const char *p11key_shown(const char *uri, char *buf, size_t len);

/* A key in a token, and what keeps the token open while it is used. */
struct p11key;

/*
 * The private key uri names, through Debian's PKCS#11 engine for OpenSSL
 * (libengine-pkcs11-openssl, "pkcs11"), which loads the module named by
 * the environment's VIGIL_PKCS11_MODULE or, without it, p11-kit's proxy
 * (every module p11-kit knows).  The PIN comes from the URI
 * (pin-source=FILE, or pin-value=PIN) as RFC 7512 says; nothing is asked
 * on a terminal: a URI without one fails to log in.  The key never leaves
 * the token: signing with p11key_pkey() goes through the engine, which
 * stays initialised until p11key_free().  Returns 0 and *ret, or -ENOENT
 * (no such engine: the package is missing), -ENOKEY (no such key, a wrong
 * or missing PIN, or a module that does not load), -ENOMEM, with a message
 * in err that shows no PIN.
 */
int p11key_load(const char *uri, struct p11key **ret, char *err, size_t errlen);

/* The key, owned by k. */
EVP_PKEY *p11key_pkey(const struct p11key *k);

/* The key, then the engine's hold on the token. */
void p11key_free(struct p11key *k);

#endif
