/*
 * test_gzip.c - unit tests for daemon/gzip.c: round trips (including
 * inputs gzip(1) must accept), the output limit against a zip bomb, and
 * corrupt or truncated input placed to end exactly at an unmapped page so
 * that any over-read crashes the test.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "guard.h"

#include "gzip.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Text-like data: compressible but not trivially. */
static uint8_t *make_text(size_t len)
{
	static const char *words[] = {"main", "worker_loop", "malloc", "memcpy", "__libc_start_main",
				      "compute", "0x7fff1234", ";", "\n"};
	uint8_t *buf = malloc(len ? len : 1);
	size_t i = 0;

	assert_non_null(buf);
	while (i < len) {
		const char *w = words[rng() % (sizeof(words) / sizeof(words[0]))];
		size_t n = strlen(w);

		if (n > len - i)
			n = len - i;
		memcpy(buf + i, w, n);
		i += n;
	}
	return buf;
}

static void roundtrip(const uint8_t *in, size_t len)
{
	uint8_t *z, *out;
	size_t zlen, olen;
	struct guarded g;

	assert_int_equal(gzip_compress(in, len, &z, &zlen), 0);
	assert_true(zlen >= 18); /* 10-byte header + 8-byte trailer at least */
	assert_int_equal(z[0], 0x1f);
	assert_int_equal(z[1], 0x8b);
	assert_int_equal(z[2], 8); /* deflate */

	guard_copy(&g, z, zlen);
	assert_int_equal(gzip_decompress(g.data, zlen, len, &out, &olen), 0);
	assert_int_equal(olen, len);
	assert_non_null(out);
	if (len)
		assert_memory_equal(out, in, len);
	free(out);
	guard_free(&g);
	free(z);
}

static void test_roundtrip(void **state)
{
	static const size_t sizes[] = {0, 1, 17, 4095, 4096, 4097, 100000, 3 << 20};
	size_t i, j;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *text = make_text(sizes[i]), *rnd = malloc(sizes[i] + 1);

		assert_non_null(rnd);
		for (j = 0; j < sizes[i]; j++)
			rnd[j] = (uint8_t)rng();
		roundtrip(text, sizes[i]);
		roundtrip(rnd, sizes[i]); /* incompressible: output larger than input */
		free(text);
		free(rnd);
	}
}

static void test_compresses(void **state)
{
	size_t len = 1 << 20, zlen;
	uint8_t *text = make_text(len), *z;

	assert_int_equal(gzip_compress(text, len, &z, &zlen), 0);
	assert_true(zlen < len / 3);
	free(z);
	free(text);
}

/* Our output must be what gzip(1) accepts, and gzip(1)'s what we accept. */
static void test_interop_gzip_tool(void **state)
{
	char path[] = "/tmp/vigil-test-gzip-XXXXXX", cmd[256];
	size_t len = 200000, zlen, olen;
	uint8_t *text = make_text(len), *z, *out, file[300000];
	FILE *f;
	int fd;

	assert_int_equal(gzip_compress(text, len, &z, &zlen), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, z, zlen), (ssize_t)zlen);
	close(fd);
	snprintf(cmd, sizeof(cmd), "gzip -t %s", path);
	assert_int_equal(system(cmd), 0);

	/* gzip -c of the same data, twice concatenated: two members. */
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "gzip -9 -c %s %s", path, path);
	f = popen(cmd, "r");
	assert_non_null(f);
	zlen = fread(file, 1, sizeof(file), f);
	assert_int_equal(pclose(f), 0);
	assert_true(zlen > 0 && zlen < sizeof(file));
	assert_int_equal(gzip_decompress(file, zlen, 2 * len, &out, &olen), 0);
	assert_int_equal(olen, 2 * len);
	assert_memory_equal(out, text, len);
	assert_memory_equal(out + len, text, len);
	free(out);
	unlink(path);
	free(z);
	free(text);
}

static void test_limit(void **state)
{
	size_t len = 100000, zlen, olen;
	uint8_t *text = make_text(len), *z, *out = NULL;
	struct guarded g;

	assert_int_equal(gzip_compress(text, len, &z, &zlen), 0);
	guard_copy(&g, z, zlen);
	assert_int_equal(gzip_decompress(g.data, zlen, len, &out, &olen), 0);
	assert_int_equal(olen, len);
	free(out);
	out = NULL;
	assert_int_equal(gzip_decompress(g.data, zlen, len - 1, &out, &olen), -E2BIG);
	assert_null(out);
	assert_int_equal(gzip_decompress(g.data, zlen, 0, &out, &olen), -E2BIG);
	assert_null(out);
	guard_free(&g);
	free(z);
	free(text);
}

/* A 256 MiB run of zeros is ~250 KiB compressed; a 1 MiB limit must stop it. */
static void test_zip_bomb(void **state)
{
	size_t len = 256u << 20, zlen, olen;
	uint8_t *zeros = calloc(1, len), *z, *out = NULL;

	assert_non_null(zeros);
	assert_int_equal(gzip_compress(zeros, len, &z, &zlen), 0);
	free(zeros);
	assert_true(zlen < len / 200); /* level 1 (GZIP_LEVEL) packs zeros ~229 to 1 */
	assert_int_equal(gzip_decompress(z, zlen, 1u << 20, &out, &olen), -E2BIG);
	assert_null(out);
	free(z);
}

static void test_truncated(void **state)
{
	size_t len = 5000, zlen, cut, olen;
	uint8_t *text = make_text(len), *z, *out = NULL;

	assert_int_equal(gzip_compress(text, len, &z, &zlen), 0);
	for (cut = 0; cut < zlen; cut++) {
		struct guarded g;

		guard_copy(&g, z, cut);
		assert_int_equal(gzip_decompress(g.data, cut, len, &out, &olen), -EINVAL);
		assert_null(out);
		guard_free(&g);
	}
	free(z);
	free(text);
}

static void test_corrupt(void **state)
{
	size_t len = 5000, zlen, i, olen;
	uint8_t *text = make_text(len), *z, *out = NULL, *bad;
	struct guarded g;
	int failed = 0;

	assert_int_equal(gzip_compress(text, len, &z, &zlen), 0);
	bad = malloc(zlen + 16);
	assert_non_null(bad);

	/* Flip each byte after the 10-byte header (which holds unchecked
	 * fields like mtime): CRC-32 and ISIZE must catch every change. */
	for (i = 10; i < zlen; i++) {
		int err;

		memcpy(bad, z, zlen);
		bad[i] ^= 0xff;
		guard_copy(&g, bad, zlen);
		err = gzip_decompress(g.data, zlen, 2 * len, &out, &olen);
		if (err == 0) {
			/* Only acceptable if the output is unchanged. */
			assert_int_equal(olen, len);
			assert_memory_equal(out, text, len);
			free(out);
			out = NULL;
		} else {
			assert_int_equal(err, -EINVAL);
			assert_null(out);
			failed++;
		}
		guard_free(&g);
	}
	assert_true(failed >= (int)(zlen - 10) - 1);

	/* Trailing garbage after a valid member. */
	memcpy(bad, z, zlen);
	memcpy(bad + zlen, "garbage garbage!", 16);
	guard_copy(&g, bad, zlen + 16);
	assert_int_equal(gzip_decompress(g.data, zlen + 16, 2 * len, &out, &olen), -EINVAL);
	guard_free(&g);

	/* Not gzip at all, and gzip magic followed by garbage. */
	guard_copy(&g, "hello, world", 12);
	assert_int_equal(gzip_decompress(g.data, 12, len, &out, &olen), -EINVAL);
	guard_free(&g);
	guard_copy(&g, "\x1f\x8b\x08\x00garbagegarbage", 18);
	assert_int_equal(gzip_decompress(g.data, 18, len, &out, &olen), -EINVAL);
	guard_free(&g);
	guard_copy(&g, "\x1f", 1);
	assert_int_equal(gzip_decompress(g.data, 1, len, &out, &olen), -EINVAL);
	guard_free(&g);
	assert_null(out);

	free(bad);
	free(z);
	free(text);
}

static void test_bad_args(void **state)
{
	uint8_t *out = NULL, byte = 0;
	size_t len;

	assert_int_equal(gzip_compress(NULL, 1, &out, &len), -EINVAL);
	assert_int_equal(gzip_compress(&byte, 1, NULL, &len), -EINVAL);
	assert_int_equal(gzip_decompress(NULL, 0, 100, &out, &len), -EINVAL);
	assert_int_equal(gzip_decompress(&byte, 0, 100, &out, &len), -EINVAL);
	assert_null(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_compresses),
		cmocka_unit_test(test_interop_gzip_tool),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_zip_bomb),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
