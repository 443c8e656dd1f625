/*
 * test_backoff.c - the uplink's retry schedule: exponential from 0.5 s to
 * 5 min with jitter inside known bounds, the server's wait honoured (and
 * capped), and Retry-After in both of HTTP's forms.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

#define S 1000000000ull

static void test_schedule_bounds(void **state)
{
	/* the n-th failure waits in [max(0.5 s, d/2), d], d = min(5 min, 0.5 s * 2^(n-1)) */
	for (unsigned n = 1; n <= 40; n++) {
		struct backoff lo = { n - 1 }, hi = { n - 1 }, mid = { n - 1 };
		uint64_t d = BACKOFF_MIN_NS;

		for (unsigned i = 1; i < n && d < BACKOFF_MAX_NS; i++)
			d *= 2;
		if (d > BACKOFF_MAX_NS)
			d = BACKOFF_MAX_NS;
		uint64_t a = backoff_next(&lo, 0, 0);
		uint64_t b = backoff_next(&hi, UINT64_MAX, 0);
		uint64_t c = backoff_next(&mid, 0x123456789abcdefull, 0);
		uint64_t floor = d / 2 > BACKOFF_MIN_NS ? d / 2 : BACKOFF_MIN_NS;

		assert_true(a >= floor && a <= d);
		assert_true(b >= floor && b <= d);
		assert_true(c >= floor && c <= d);
		assert_true(a >= BACKOFF_MIN_NS && b <= BACKOFF_MAX_NS);
		assert_int_equal(lo.failures, n);
	}
	/* the first failure waits exactly 0.5 s; by the 11th the cap is reached */
	{
		struct backoff b = { 0 };

		assert_int_equal(backoff_next(&b, 12345, 0), BACKOFF_MIN_NS);
		for (int i = 0; i < 9; i++)
			backoff_next(&b, 0, 0);
		assert_int_equal(backoff_next(&b, 0, 0), BACKOFF_MAX_NS / 2);
	}
}

static void test_jitter_spreads(void **state)
{
	/* a fleet failing together does not retry together */
	uint64_t min = UINT64_MAX, max = 0, x = 88172645463325252ull;

	for (int i = 0; i < 1000; i++) {
		struct backoff b = { 5 };
		uint64_t w;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w = backoff_next(&b, x, 0);
		min = w < min ? w : min;
		max = w > max ? w : max;
	}
	/* 6th failure: d = 16 s, waits in [8 s, 16 s], spread over most of it */
	assert_true(min >= 8 * S && max <= 16 * S);
	assert_true(max - min > 6 * S);
}

static void test_server_wait(void **state)
{
	struct backoff b = { 0 };

	/* longer than ours: honoured */
	assert_int_equal(backoff_next(&b, 0, 42 * S), 42 * S);
	/* shorter than ours: ours */
	b.failures = 10;
	assert_true(backoff_next(&b, 0, 1 * S) >= 150 * S);
	/* absurd: capped at an hour */
	assert_int_equal(backoff_next(&b, 0, UINT64_MAX), BACKOFF_SERVER_MAX_NS);
	backoff_reset(&b);
	assert_int_equal(backoff_next(&b, 0, 0), BACKOFF_MIN_NS);
}

static void test_retry_after(void **state)
{
	uint64_t ns = 0;

	assert_int_equal(backoff_parse_retry_after(" 120\r\n", 0, &ns), 0);
	assert_int_equal(ns, 120 * S);
	assert_int_equal(backoff_parse_retry_after("0", 0, &ns), 0);
	assert_int_equal(ns, 0);
	assert_int_equal(backoff_parse_retry_after("99999999999", 0, &ns), 0);
	assert_int_equal(ns, BACKOFF_SERVER_MAX_NS);
	/* 784111777 is Sun, 06 Nov 1994 08:49:37 GMT */
	assert_int_equal(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT\r\n", 784111777 - 30,
						   &ns), 0);
	assert_int_equal(ns, 30 * S);
	assert_int_equal(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 30, &ns),
			 0);
	assert_int_equal(ns, 0);
	assert_int_equal(backoff_parse_retry_after("soon", 0, &ns), -EINVAL);
	assert_int_equal(backoff_parse_retry_after("12abc", 0, &ns), -EINVAL);
	assert_int_equal(backoff_parse_retry_after("-5", 0, &ns), -EINVAL);
	assert_int_equal(backoff_parse_retry_after("", 0, &ns), -EINVAL);
}

/* A header line as libcurl hands it: any case, CRLF, not terminated. */
static void test_retry_after_header(void **state)
{
	static const char l1[] = "retry-after: 7\r\n", l2[] = "Retry-After:\r\n",
			  l3[] = "Content-Length: 7\r\n";
	uint64_t ns = 0;

	(void)state;
	assert_int_equal(backoff_retry_after_header(l1, sizeof(l1) - 1, 0, &ns), 0);
	assert_int_equal(ns, 7000000000ull);
	assert_int_equal(backoff_retry_after_header(l2, sizeof(l2) - 1, 0, &ns), -EINVAL);
	assert_int_equal(backoff_retry_after_header(l3, sizeof(l3) - 1, 0, &ns), -EINVAL);
	assert_int_equal(backoff_retry_after_header(l1, 11, 0, &ns), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schedule_bounds),
		cmocka_unit_test(test_jitter_spreads),
		cmocka_unit_test(test_server_wait),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_retry_after_header),
	};
	return cmocka_run_group_tests_name("backoff", tests, NULL, NULL);
}
