/*
 * b64.h - base64 (RFC 4648 section 4) as the admin API speaks it: strict
 * decoding of what administrators send (policy uploads), and encoding
 * into JSON strings (policies, proofs).  Runs in vigil-cp.
 * Library-like: returns 0 or -errno (or NULL), never logs.
 */
#ifndef VIGIL_B64_H
#define VIGIL_B64_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * Strict base64 (padding optional, no whitespace, the unused bits zero so
 * that a byte string has one encoding) of s[0..len) into a malloc'ed
 * buffer (the caller frees) of at most max bytes.  0, -EFBIG over max,
 * -EINVAL not base64, -ENOMEM.
 */
int b64_decode(const char *s, size_t len, size_t max, uint8_t **ret, size_t *ret_len);

/* buf[0..len) as a base64 JSON string (new reference), or NULL. */
json_t *b64_json(const uint8_t *buf, size_t len);

#endif
