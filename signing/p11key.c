/*
 * p11key.c - a signer's private key in a PKCS#11 token (see p11key.h).
 *
 * OpenSSL 3 reaches PKCS#11 through a provider or through an ENGINE, its
 * older plug-in interface.  Debian bookworm packages no PKCS#11 provider;
 * it packages libp11's engine (libengine-pkcs11-openssl), which OpenSSL 3.0
 * still loads and which `openssl cms -engine pkcs11 -keyform engine` uses.
 * The ENGINE calls are deprecated in OpenSSL 3.0, not removed: this file
 * alone asks for them (OPENSSL_SUPPRESS_DEPRECATED) and is the one place
 * to change once a provider is packaged (OSSL_STORE_open on the URI).
 *
 * The engine's control commands (MODULE_PATH, LOAD_CERT_CTRL...) are
 * libp11's: engines/pkcs11 in github.com/OpenSC/libp11.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "p11key.h"
#include "sslutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/engine.h>
#include <openssl/err.h>

bool p11key_is_uri(const char *key)
{
	return key && strncmp(key, "pkcs11:", 7) == 0;
}

int p11key_load(const char *uri, EVP_PKEY **ret_key, char *err, size_t errlen)
{
	const char *module = getenv("VIGIL_PKCS11_MODULE");
	char why[256];
	EVP_PKEY *k = NULL;
	ENGINE *e;

	if (!p11key_is_uri(uri) || !ret_key)
		return -EINVAL;
	/* Found among OpenSSL's engines (its ENGINESDIR) by id, loaded on demand. */
	e = ENGINE_by_id("pkcs11");
	if (!e) {
		snprintf(err, errlen, "%s: no PKCS#11 engine for OpenSSL (install "
			 "libengine-pkcs11-openssl): %s", uri, sslutil_reason(why, sizeof(why)));
		ERR_clear_error();
		return -ENOENT;
	}
	/* One line of ours says what failed; libp11's own lines on stderr, not. */
	ENGINE_ctrl_cmd_string(e, "QUIET", NULL, 1);
	if (module && *module && !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0)) {
		snprintf(err, errlen, "VIGIL_PKCS11_MODULE=%s: the PKCS#11 engine refuses it: %s",
			 module, sslutil_reason(why, sizeof(why)));
		ENGINE_free(e);
		ERR_clear_error();
		return -ENOENT;
	}
	if (!ENGINE_init(e)) {
		snprintf(err, errlen, "%s: the PKCS#11 engine does not start (module %s): %s", uri,
			 module && *module ? module : "p11-kit's proxy", sslutil_reason(why, sizeof(why)));
		ENGINE_free(e);
		ERR_clear_error();
		return -ENOENT;
	}
	/* No UI method: a PIN the URI does not give is not asked for. */
	k = ENGINE_load_private_key(e, uri, NULL, NULL);
	if (!k)
		snprintf(err, errlen, "%s: no such private key in the token, or a wrong PIN: %s", uri,
			 sslutil_reason(why, sizeof(why)));
	/* The key holds its own reference to the engine. */
	ENGINE_finish(e);
	ENGINE_free(e);
	ERR_clear_error();
	if (!k)
		return -ENOKEY;
	*ret_key = k;
	return 0;
}
