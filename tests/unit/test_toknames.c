/*
 * test_toknames.c - unit tests of the token table the kernel's symbol
 * names are kept in: every name comes back byte for byte, however it
 * splits on '_', whether built in one pass or two; the commonest tokens
 * take one byte; a tail shares its name's bytes; bad offsets are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toknames.h"

static const char *const odd[] = {
	"_", "__", "___", "a", "_a", "a_", "__a__", "a__b", "x86_64", "foo.cold", "foo.isra.0",
	"__x64_sys_read", "__pfx___x64_sys_read", "tcp_v4_rcv", "with space? no_ but$signs",
};
#define NODD (sizeof(odd) / sizeof(odd[0]))

/* Add every name of v (after counting them all when two_pass); check each comes back. */
static void round_trip(const char *const *v, size_t n, int two_pass)
{
	struct toknames t = { 0 };
	uint32_t *off = calloc(n, sizeof(*off));
	char buf[256];

	assert_non_null(off);
	if (two_pass) {
		for (size_t i = 0; i < n; i++)
			assert_int_equal(toknames_count(&t, v[i], strlen(v[i])), 0);
		assert_int_equal(toknames_rank(&t), 0);
	}
	for (size_t i = 0; i < n; i++)
		assert_int_equal(toknames_add(&t, v[i], strlen(v[i]), 0, &off[i], NULL), 0);
	toknames_seal(&t);
	for (size_t i = 0; i < n; i++) {
		const char *got = toknames_get(&t, off[i], buf, sizeof(buf));

		if (!got || strcmp(got, v[i]) != 0)
			fail_msg("name %zu: got '%s', want '%s'", i, got ? got : "(null)", v[i]);
	}
	toknames_free(&t);
	free(off);
}

static void test_round_trip(void **state)
{
	round_trip(odd, NODD, 0);
	round_trip(odd, NODD, 1);
}

/*
 * 20 000 distinct tokens: ids past 127 and past 16 383 take two and
 * three bytes, and still decode.
 */
static void test_many_tokens(void **state)
{
	enum { N = 20000 };
	char **v = calloc(N, sizeof(*v));

	assert_non_null(v);
	for (size_t i = 0; i < N; i++) {
		assert_true(asprintf(&v[i], "w%zu_common_w%zu", i, (i * 7919) % N) > 0);
	}
	round_trip((const char *const *)v, N, 0);
	round_trip((const char *const *)v, N, 1);
	for (size_t i = 0; i < N; i++)
		free(v[i]);
	free(v);
}

/*
 * Two passes rank the commonest token first: a name of it alone is one
 * byte and the end.  A token the first pass did not see (the file changed
 * between them) still gets an id.
 */
static void test_rank(void **state)
{
	struct toknames t = { 0 };
	uint32_t a, b, c;
	char buf[64];
	char rare[16];

	for (int i = 0; i < 300; i++) {
		snprintf(rare, sizeof(rare), "r%d", i);
		assert_int_equal(toknames_count(&t, rare, strlen(rare)), 0);
	}
	for (int i = 0; i < 1000; i++)
		assert_int_equal(toknames_count(&t, "hot_hot", 7), 0);
	assert_int_equal(toknames_rank(&t), 0);
	assert_int_equal(toknames_add(&t, "hot", 3, 0, &a, NULL), 0);
	assert_int_equal(toknames_add(&t, "r299_hot", 8, 0, &b, NULL), 0);
	assert_int_equal(toknames_add(&t, "new_in_pass_two", 15, 0, &c, NULL), 0);
	/* "hot": id 1, then the end */
	assert_int_equal(b - a, 2);
	assert_int_equal(t.codes[a], 1);
	assert_string_equal(toknames_get(&t, a, buf, sizeof(buf)), "hot");
	assert_string_equal(toknames_get(&t, b, buf, sizeof(buf)), "r299_hot");
	assert_string_equal(toknames_get(&t, c, buf, sizeof(buf)), "new_in_pass_two");
	toknames_free(&t);
}

/* "__pfx_NAME" with skip 3: NAME's code is its tail, and decodes as NAME. */
static void test_tail(void **state)
{
	struct toknames t = { 0 };
	uint32_t off, tail, off2;
	size_t len;
	char buf[64];

	assert_int_equal(toknames_add(&t, "__pfx_tcp_v4_rcv", 16, 3, &off, &tail), 0);
	len = t.len;
	assert_string_equal(toknames_get(&t, off, buf, sizeof(buf)), "__pfx_tcp_v4_rcv");
	assert_string_equal(toknames_get(&t, tail, buf, sizeof(buf)), "tcp_v4_rcv");
	assert_true(tail > off && tail < len);
	/* "__pfx" has three tokens, no tail: refused, nothing kept */
	assert_int_equal(toknames_add(&t, "__pfx", 5, 3, &off2, &tail), -EINVAL);
	assert_int_equal(t.len, len);
	/* ... but "__pfx_" has one, the empty name */
	assert_int_equal(toknames_add(&t, "__pfx_", 6, 3, &off2, &tail), 0);
	assert_string_equal(toknames_get(&t, tail, buf, sizeof(buf)), "");
	assert_string_equal(toknames_get(&t, off2, buf, sizeof(buf)), "__pfx_");
	toknames_free(&t);
}

/* Offsets that are not a name's, and short buffers. */
static void test_bad(void **state)
{
	struct toknames t = { 0 };
	uint32_t off;
	char buf[8];

	assert_null(toknames_get(&t, 0, buf, sizeof(buf)));
	assert_int_equal(toknames_add(&t, "abc_defghijk", 12, 0, &off, NULL), 0);
	assert_null(toknames_get(&t, t.len, buf, sizeof(buf)));
	assert_null(toknames_get(&t, UINT32_MAX, buf, sizeof(buf)));
	assert_null(toknames_get(&t, off, buf, 0));
	/* cut, NUL-terminated */
	assert_string_equal(toknames_get(&t, off, buf, sizeof(buf)), "abc_def");
	/* an id past the dictionary, and a code without its end */
	t.codes[off] = 0x7f;
	assert_null(toknames_get(&t, off, buf, sizeof(buf)));
	t.codes[off] = 1;
	t.codes[t.len - 1] = 0x80;
	assert_null(toknames_get(&t, off, buf, sizeof(buf)));
	toknames_free(&t);
	toknames_free(NULL);
	assert_int_equal(toknames_bytes(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip), cmocka_unit_test(test_many_tokens),
		cmocka_unit_test(test_rank),       cmocka_unit_test(test_tail),
		cmocka_unit_test(test_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
