/*
 * b64.c - base64 for the admin API (b64.h): a strict decoder of our own,
 * since OpenSSL's EVP_DecodeBlock skips surrounding whitespace and counts
 * padding as decoded bytes; encoding by OpenSSL.
 * Runs in vigil-cp.  Never logs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "b64.h"

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int b64_decode(const char *s, size_t len, size_t max, uint8_t **ret, size_t *ret_len)
{
	size_t pad = 0, n = 0, out_len;
	uint32_t acc = 0;
	int bits = 0;
	uint8_t *out;

	while (pad < 2 && len > 0 && s[len - 1] == '=') {
		len--;
		pad++;
	}
	if (pad && (len + pad) % 4)
		return -EINVAL;
	if (len % 4 == 1)
		return -EINVAL;
	out_len = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	if (out_len > max)
		return -EFBIG;
	out = malloc(out_len ? out_len : 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v = b64val(s[i]);

		if (v < 0) {
			free(out);
			return -EINVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* The bits left over must be zero: one encoding per byte string. */
	if (acc & ((1u << bits) - 1)) {
		free(out);
		return -EINVAL;
	}
	*ret = out;
	*ret_len = n;
	return 0;
}

json_t *b64_json(const uint8_t *buf, size_t len)
{
	char *text;
	json_t *v;

	if (len > INT32_MAX / 2)
		return NULL;
	text = malloc(4 * ((len + 2) / 3) + 1);
	if (!text)
		return NULL;
	EVP_EncodeBlock((unsigned char *)text, buf, (int)len);
	v = json_string(text);
	free(text);
	return v;
}
