/*
 * fuzz_auditlog.c - libFuzzer target for what vigilctl audit verify reads
 * from a server it does not trust: checkpoint_verify() (a signed note) and
 * auditverify_record() (the records), with a fixed Ed25519 key.
 *
 * The first byte picks the parser; the rest is the input.  Beyond not
 * crashing or reading past the input (ASan, UBSan): the results are only
 * the documented ones, a failure always says why, and a record that is
 * refused always names an index at or before its own.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auditverify.h"
#include "checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                         \
	do {                                                                             \
		if (!(x)) {                                                              \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #x); \
			abort();                                                         \
		}                                                                        \
	} while (0)

/* A fixed key: RFC 8032's test 1 secret. */
static const uint8_t seed[32] = { 0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
				  0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
				  0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	EVP_PKEY *k;
	char err[512] = "";

	if (size < 1)
		return 0;
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
	CHECK(k);
	if (data[0] & 1) {
		struct checkpoint cp;
		char *text = malloc(size);
		int r;

		CHECK(text);
		memcpy(text, data + 1, size - 1);
		r = checkpoint_verify(text, size - 1, k, NULL, &cp, err, sizeof(err));
		CHECK(r == 0 || r == -EBADMSG || r == -EKEYREJECTED || r == -ENOMEM || r == -EINVAL);
		CHECK(r == 0 || err[0]);
		if (r == 0)
			CHECK(cp.size <= INT64_MAX && cp.origin[0]);
		free(text);
	} else {
		/* Records split at '\n', against a checkpoint of as many records. */
		struct checkpoint cp = { .origin = "fuzz", .size = 0 };
		struct auditverify *v;
		const uint8_t *p = data + 1, *end = data + size;
		uint64_t fed = 0;
		int r = 0;

		for (const uint8_t *q = p; q < end; q++)
			cp.size += *q == '\n';
		CHECK(auditverify_new(&cp, &v) == 0);
		while (p < end && r == 0) {
			const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));

			if (!nl)
				break;
			r = auditverify_record(v, p, (size_t)(nl - p), err, sizeof(err));
			CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
			if (r == -EBADMSG) {
				CHECK(err[0]);
				CHECK(auditverify_bad_index(v) >= 0 && auditverify_bad_index(v) <= (int64_t)fed);
			}
			fed++;
			p = nl + 1;
		}
		if (r == 0) {
			r = auditverify_finish(v, err, sizeof(err));
			CHECK(r == 0 || r == -EBADMSG);
		}
		auditverify_free(v);
	}
	EVP_PKEY_free(k);
	return 0;
}
