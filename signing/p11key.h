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
 * The private key uri names, through Debian's PKCS#11 engine for OpenSSL
 * (libengine-pkcs11-openssl, "pkcs11"), which loads the module named by
 * the environment's VIGIL_PKCS11_MODULE or, without it, p11-kit's proxy
 * (every module p11-kit knows).  The PIN comes from the URI
 * (pin-value=..., or pin-source=FILE) as RFC 7512 says; nothing is asked
 * on a terminal.  The key never leaves the token: signing with *ret_key
 * goes through the engine.  Returns 0 and *ret_key (EVP_PKEY_free), or
 * -ENOENT (no such engine: the package is missing), -ENOKEY (no such key,
 * or a wrong PIN), -ENOMEM, with a message in err.
 */
int p11key_load(const char *uri, EVP_PKEY **ret_key, char *err, size_t errlen);

#endif
