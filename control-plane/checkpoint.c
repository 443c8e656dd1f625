/*
 * checkpoint.c - C2SP tlog-checkpoint notes signed with Ed25519: writing,
 * strict parsing and verification (see checkpoint.h).
 *
 * Strict means: the body is exactly three lines (we write no extension
 * lines, so a note with one is not ours); the size is decimal without a
 * leading zero and fits in 63 bits; every base64 is canonical (it
 * re-encodes to the same text); every line ends in '\n' and the note ends
 * with its last signature line.  A signature line of another key (a
 * witness's cosignature) is allowed and ignored, as signed-note says.
 *
 * Runs in vigil-cp and vigilctl.  Never logs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "checkpoint.h"
#include "pemfile.h"

#define EM_DASH "\xe2\x80\x94"
#define ED25519_SIG_LEN 64
#define ED25519_PUB_LEN 32

int checkpoint_check_name(const char *name, char *err, size_t errlen)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > CHECKPOINT_MAX_ORIGIN) {
		snprintf(err, errlen, "the origin must have 1 to %d characters", CHECKPOINT_MAX_ORIGIN);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= ' ' || c >= 0x7f || c == '+') {
			snprintf(err, errlen,
				 "the origin \"%.64s\" has a space, '+' or a character that is not printable "
				 "ASCII at byte %zu (it is also the signing key's name: c2sp.org/signed-note)",
				 name, i + 1);
			return -EINVAL;
		}
	}
	return 0;
}

/* An origin line as read: one non-empty line of printable characters (UTF-8 allowed). */
static bool origin_ok(const char *s, size_t n)
{
	if (n == 0 || n > CHECKPOINT_MAX_ORIGIN)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
			return false;
	return true;
}

int checkpoint_key_id(const char *name, EVP_PKEY *key, uint8_t ret[4])
{
	uint8_t pub[ED25519_PUB_LEN], md[EVP_MAX_MD_SIZE];
	size_t publen = sizeof(pub);
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int ok;

	if (!key || EVP_PKEY_id(key) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(key, pub, &publen) != 1 || publen != ED25519_PUB_LEN)
		return -EINVAL;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, name, strlen(name)) == 1 &&
	     EVP_DigestUpdate(ctx, "\n\x01", 2) == 1 && EVP_DigestUpdate(ctx, pub, publen) == 1 &&
	     EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -ENOMEM;
	memcpy(ret, md, 4);
	return 0;
}

/* The body of c (three lines) into buf; its length, or -E2BIG. */
static int body(const struct checkpoint *c, char *buf, size_t len)
{
	char b64[4 * ((MERKLE_HASH_LEN + 2) / 3) + 1];
	int n;

	EVP_EncodeBlock((unsigned char *)b64, c->root, MERKLE_HASH_LEN);
	n = snprintf(buf, len, "%s\n%" PRIu64 "\n%s\n", c->origin, c->size, b64);
	return n < 0 || (size_t)n >= len ? -E2BIG : n;
}

int checkpoint_sign(const struct checkpoint *c, EVP_PKEY *key, char **ret, size_t *ret_len)
{
	uint8_t blob[4 + ED25519_SIG_LEN];
	char text[CHECKPOINT_MAX_TEXT], sigb64[4 * ((sizeof(blob) + 2) / 3) + 1], *out;
	size_t siglen = ED25519_SIG_LEN;
	EVP_MD_CTX *ctx;
	char why[8];
	int n, m, r;

	if (checkpoint_check_name(c->origin, why, sizeof(why)) || c->size > INT64_MAX)
		return -EINVAL;
	if ((r = checkpoint_key_id(c->origin, key, blob)))
		return r;
	n = body(c, text, sizeof(text));
	if (n < 0)
		return n;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	r = EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
			    EVP_DigestSign(ctx, blob + 4, &siglen, (const unsigned char *)text, (size_t)n) == 1 &&
			    siglen == ED25519_SIG_LEN
		    ? 0
		    : -EINVAL;
	EVP_MD_CTX_free(ctx);
	if (r)
		return r;
	EVP_EncodeBlock((unsigned char *)sigb64, blob, sizeof(blob));
	m = snprintf(text + n, sizeof(text) - (size_t)n, "\n" EM_DASH " %s %s\n", c->origin, sigb64);
	if (m < 0 || (size_t)m >= sizeof(text) - (size_t)n)
		return -E2BIG;
	out = strdup(text);
	if (!out)
		return -ENOMEM;
	*ret = out;
	*ret_len = (size_t)(n + m);
	return 0;
}

/* Canonical base64 of exactly want bytes; false otherwise. */
static bool b64_exact(const char *s, size_t len, uint8_t *out, size_t want)
{
	size_t enc = 4 * ((want + 2) / 3);
	unsigned char tmp[128], again[200];

	if (len != enc || enc >= sizeof(again) || want > sizeof(tmp))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= '0' && s[i] <= '9') &&
		    s[i] != '+' && s[i] != '/' && s[i] != '=')
			return false;
	if (EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len) < (int)want)
		return false;
	EVP_EncodeBlock(again, tmp, (int)want);
	if (memcmp(again, s, len) != 0)
		return false;
	memcpy(out, tmp, want);
	return true;
}

/* The next line of [*p, end) without its '\n' (which must be there). */
static bool next_line(const char **p, const char *end, const char **ret, size_t *ret_len)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));

	if (!nl)
		return false;
	*ret = *p;
	*ret_len = (size_t)(nl - *p);
	*p = nl + 1;
	return true;
}

int checkpoint_verify(const char *text, size_t len, EVP_PKEY *pub, const char *key_name,
		      struct checkpoint *ret, char *err, size_t errlen)
{
	const char *p = text, *end = text + len, *line, *body_end;
	struct checkpoint c = { 0 };
	uint8_t want_id[4];
	size_t n, nsigs = 0;
	bool found = false, verified = false;

	if (len > CHECKPOINT_MAX_TEXT || memchr(text, '\0', len)) {
		snprintf(err, errlen, "checkpoint: longer than %d bytes or not text", CHECKPOINT_MAX_TEXT);
		return -EBADMSG;
	}
	/* Origin. */
	if (!next_line(&p, end, &line, &n) || !origin_ok(line, n)) {
		snprintf(err, errlen, "checkpoint: line 1 is not an origin (one line of 1 to %d printable "
				      "characters)", CHECKPOINT_MAX_ORIGIN);
		return -EBADMSG;
	}
	memcpy(c.origin, line, n);
	c.origin[n] = '\0';
	if (!key_name)
		key_name = c.origin;
	/* Size: decimal, no sign, no leading zero, at most 2^63 - 1. */
	if (!next_line(&p, end, &line, &n) || n == 0 || n > 19 || (n > 1 && line[0] == '0')) {
		snprintf(err, errlen, "checkpoint: line 2 is not a tree size");
		return -EBADMSG;
	}
	for (size_t i = 0; i < n; i++) {
		if (line[i] < '0' || line[i] > '9' || c.size > (uint64_t)(INT64_MAX - (line[i] - '0')) / 10) {
			snprintf(err, errlen, "checkpoint: line 2 is not a tree size");
			return -EBADMSG;
		}
		c.size = c.size * 10 + (uint64_t)(line[i] - '0');
	}
	/* Root hash. */
	if (!next_line(&p, end, &line, &n) || !b64_exact(line, n, c.root, MERKLE_HASH_LEN)) {
		snprintf(err, errlen, "checkpoint: line 3 is not the base64 of a 32-byte root hash");
		return -EBADMSG;
	}
	body_end = p;
	if (!next_line(&p, end, &line, &n) || n != 0) {
		snprintf(err, errlen, "checkpoint: the body has more than three lines (extension lines are not "
				      "written by vigil-cp)");
		return -EBADMSG;
	}
	if (checkpoint_key_id(key_name, pub, want_id)) {
		snprintf(err, errlen, "checkpoint: the verification key is not an Ed25519 key");
		return -EINVAL;
	}
	/* Signature lines, to the end. */
	while (p < end) {
		const char *name, *sp;
		uint8_t blob[4 + ED25519_SIG_LEN];

		if (!next_line(&p, end, &line, &n) || n < sizeof(EM_DASH) || memcmp(line, EM_DASH " ", 4) != 0 ||
		    ++nsigs > CHECKPOINT_MAX_SIGS) {
			snprintf(err, errlen, "checkpoint: line %zu is not a signature line (\"" EM_DASH " NAME "
					      "BASE64\")", 4 + nsigs);
			return -EBADMSG;
		}
		name = line + 4;
		sp = memchr(name, ' ', n - 4);
		if (!sp || sp == name) {
			snprintf(err, errlen, "checkpoint: signature line %zu has no key name", nsigs);
			return -EBADMSG;
		}
		if ((size_t)(sp - name) != strlen(key_name) || memcmp(name, key_name, (size_t)(sp - name)) != 0)
			continue; /* another key's signature (a cosigner): not ours to check */
		if (!b64_exact(sp + 1, (size_t)(line + n - sp - 1), blob, sizeof(blob)))
			continue; /* of another algorithm (another length) */
		if (memcmp(blob, want_id, 4) != 0)
			continue;
		found = true;
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		if (!ctx)
			return -ENOMEM;
		if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
		    EVP_DigestVerify(ctx, blob + 4, ED25519_SIG_LEN, (const unsigned char *)text,
				     (size_t)(body_end - text)) == 1)
			verified = true;
		EVP_MD_CTX_free(ctx);
	}
	if (nsigs == 0) {
		snprintf(err, errlen, "checkpoint: no signature line");
		return -EBADMSG;
	}
	if (!found) {
		snprintf(err, errlen, "checkpoint: no signature by key \"%s\" with id %02x%02x%02x%02x (is it the "
				      "right public key?)",
			 key_name, want_id[0], want_id[1], want_id[2], want_id[3]);
		return -EKEYREJECTED;
	}
	if (!verified) {
		snprintf(err, errlen, "checkpoint: the signature of key \"%s\" does not verify: the note was "
				      "altered or signed by another key",
			 key_name);
		return -EKEYREJECTED;
	}
	*ret = c;
	return 0;
}

int checkpoint_load_key(const char *opt, const char *path, EVP_PKEY **ret, char *err, size_t errlen)
{
	void *buf = NULL;
	size_t len;
	EVP_PKEY *k = NULL;
	BIO *b;
	int r;

	r = pemfile_read(opt, path, PEMFILE_MAX_BYTES, &buf, &len, err, errlen);
	if (r)
		return r;
	b = BIO_new_mem_buf(buf, (int)len);
	if (b) {
		k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
		if (!k) {
			(void)BIO_reset(b);
			k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		}
	}
	BIO_free(b);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (!k) {
		snprintf(err, errlen, "%s %s: no PEM public key or unencrypted private key", opt, path);
		return -EBADMSG;
	}
	if (EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "%s %s: a %s key, not Ed25519 (make one with: openssl genpkey -algorithm "
				      "ed25519)",
			 opt, path, OBJ_nid2sn(EVP_PKEY_id(k)));
		EVP_PKEY_free(k);
		return -EINVAL;
	}
	*ret = k;
	return 0;
}
