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
 * The engine's control commands (MODULE_PATH, QUIET) are libp11's:
 * engines/pkcs11 in github.com/OpenSC/libp11 (`openssl engine pkcs11 -vvv`
 * lists them).  libp11 builds the key without a reference to the engine,
 * and the engine's finish closes the module: so the engine stays
 * initialised as long as the key (struct p11key), not only while loading.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "p11key.h"
#include "sslutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/ui.h>

struct p11key {
	ENGINE *engine; /* initialised (ENGINE_init) */
	EVP_PKEY *pkey;
};

bool p11key_is_uri(const char *key)
{
	/* A URI's scheme is case-insensitive (RFC 3986), and libp11 takes it so. */
	return key && strncasecmp(key, "pkcs11:", 7) == 0;
}

/*
 * Whether the attribute named name[0..len) may hold a PIN: any name with
 * "pin" in it, in any case, but pin-source (a file's name).  Wider than
 * libp11's own "pin-value", so that a misspelt or percent-encoded name,
 * which libp11 refuses and a message then shows, hides its value too.
 */
static bool may_hold_pin(const char *name, size_t len)
{
	if (len == 10 && strncasecmp(name, "pin-source", 10) == 0)
		return false;
	for (size_t j = 0; j + 3 <= len; j++)
		if (strncasecmp(name + j, "pin", 3) == 0)
			return true;
	return false;
}

const char *p11key_shown(const char *uri, char *buf, size_t len)
{
	size_t n = strcspn(uri, "?"), used = 0, i = p11key_is_uri(uri) ? 7 : 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (i) {
		used = (size_t)snprintf(buf, len, "%.7s", uri);
		if (used >= len)
			return buf;
	}
	/*
	 * The path's attributes, separated by ';' (or '&', which libp11 takes
	 * there too), each as it is but the value of one that may hold a PIN.
	 */
	while (i < n) {
		size_t a = strcspn(uri + i, ";&?"), k = a;
		const char *eq = memchr(uri + i, '=', a), *end = "";
		char sep[2] = { uri[i + a] == '?' ? '\0' : uri[i + a], '\0' };

		if (eq && may_hold_pin(uri + i, (size_t)(eq - (uri + i)))) {
			k = (size_t)(eq - (uri + i)) + 1;
			end = "...";
		}
		used += (size_t)snprintf(buf + used, len - used, "%.*s%s%s", (int)k, uri + i, end, sep);
		if (used >= len)
			return buf;
		i += a + (sep[0] != '\0');
	}
	if (uri[n])
		snprintf(buf + used, len - used, "?...");
	return buf;
}

/*
 * Every prompt fails: libp11 asks its UI for a PIN the URI does not give,
 * and OpenSSL's default UI would read the terminal (or stdin).  Failing is
 * better than answering "" (UI_null's way), which spends one of a token's
 * PIN tries.
 */
static int no_prompt(UI *ui, UI_STRING *uis)
{
	(void)ui;
	(void)uis;
	return 0;
}

int p11key_load(const char *uri, struct p11key **ret, char *err, size_t errlen)
{
	const char *module = getenv("VIGIL_PKCS11_MODULE");
	const char *mod_shown = module && *module ? module : "p11-kit's proxy";
	char why[256], shown[512];
	UI_METHOD *ui = NULL;
	struct p11key *k;
	ENGINE *e;

	if (!p11key_is_uri(uri) || !ret)
		return -EINVAL;
	p11key_shown(uri, shown, sizeof(shown));
	k = calloc(1, sizeof(*k));
	ui = UI_create_method("vigil-sign: no prompts");
	if (!k || !ui || UI_method_set_reader(ui, no_prompt) < 0) {
		snprintf(err, errlen, "out of memory");
		free(k);
		UI_destroy_method(ui);
		return -ENOMEM;
	}
	/* Found among OpenSSL's engines (its ENGINESDIR) by id, loaded on demand. */
	e = ENGINE_by_id("pkcs11");
	if (!e) {
		snprintf(err, errlen, "%s: no PKCS#11 engine for OpenSSL (install "
			 "libengine-pkcs11-openssl): %s", shown, sslutil_reason(why, sizeof(why)));
		goto fail_noengine;
	}
	/* One line of ours says what failed; libp11's own lines on stderr, not. */
	ENGINE_ctrl_cmd_string(e, "QUIET", NULL, 1);
	/*
	 * libp11 loads the module only when the key is asked for, and then
	 * says only that there is no key (and prints dlopen's error itself).
	 * A bare name (no '/') is dlopen's to find: not checked here.
	 */
	if (module && strchr(module, '/') && access(module, R_OK) < 0) {
		snprintf(err, errlen, "VIGIL_PKCS11_MODULE=%s: %s (the PKCS#11 module to load; "
			 "unset, p11-kit's proxy is loaded)", module, strerror(errno));
		ENGINE_free(e);
		goto fail_noengine;
	}
	if (module && *module && !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0)) {
		snprintf(err, errlen, "VIGIL_PKCS11_MODULE=%s: the PKCS#11 engine refuses it: %s",
			 module, sslutil_reason(why, sizeof(why)));
		ENGINE_free(e);
		goto fail_noengine;
	}
	if (!ENGINE_init(e)) {
		snprintf(err, errlen, "%s: the PKCS#11 engine does not start (module %s): %s", shown,
			 mod_shown, sslutil_reason(why, sizeof(why)));
		ENGINE_free(e);
		goto fail_noengine;
	}
	k->pkey = ENGINE_load_private_key(e, uri, ui, NULL);
	UI_destroy_method(ui);
	if (!k->pkey) {
		snprintf(err, errlen, "%s: no such private key in a token of module %s, or a wrong "
			 "or missing PIN (pin-source= in the URI): %s", shown, mod_shown,
			 sslutil_reason(why, sizeof(why)));
		ENGINE_finish(e);
		ENGINE_free(e);
		free(k);
		ERR_clear_error();
		return -ENOKEY;
	}
	k->engine = e;
	ERR_clear_error();
	*ret = k;
	return 0;

fail_noengine:
	UI_destroy_method(ui);
	free(k);
	ERR_clear_error();
	return -ENOENT;
}

EVP_PKEY *p11key_pkey(const struct p11key *k)
{
	return k ? k->pkey : NULL;
}

void p11key_free(struct p11key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	if (k->engine) {
		ENGINE_finish(k->engine);
		ENGINE_free(k->engine);
	}
	free(k);
}
