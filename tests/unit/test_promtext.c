/*
 * test_promtext.c - the Prometheus text writer: HELP/TYPE once per family,
 * escaping in HELP text and label values, counters named _total, exact
 * whole numbers, NaN/Inf, cumulative histogram buckets, split families and
 * bad names refused, and a full buffer reported rather than cut silently.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "promtext.h"

static char buf[8192];

static void test_family_once(void **state)
{
	struct promtext p;
	struct promtext_label l[] = { { "process", "uplink" } };

	(void)state;
	promtext_init(&p, buf, sizeof(buf));
	assert_int_equal(promtext_family(&p, "vigil_samples_total", PROMTEXT_COUNTER, "Samples taken."), 0);
	assert_int_equal(promtext_sample_u64(&p, "vigil_samples_total", NULL, 0, 42), 0);
	/* again, right after: no second HELP/TYPE */
	assert_int_equal(promtext_family(&p, "vigil_samples_total", PROMTEXT_COUNTER, "Samples taken."), 0);
	assert_int_equal(promtext_family(&p, "process_open_fds", PROMTEXT_GAUGE, "Open fds."), 0);
	assert_int_equal(promtext_sample(&p, "process_open_fds", l, 1, 7), 0);
	assert_int_equal(promtext_error(&p), 0);
	assert_string_equal(buf, "# HELP vigil_samples_total Samples taken.\n"
				 "# TYPE vigil_samples_total counter\n"
				 "vigil_samples_total 42\n"
				 "# HELP process_open_fds Open fds.\n"
				 "# TYPE process_open_fds gauge\n"
				 "process_open_fds{process=\"uplink\"} 7\n");
	assert_int_equal(promtext_len(&p), strlen(buf));
}

static void test_escaping(void **state)
{
	struct promtext p;
	struct promtext_label l[] = { { "tenant", "a\\b\"c\nd" }, { "empty", "" } };

	(void)state;
	promtext_init(&p, buf, sizeof(buf));
	assert_int_equal(promtext_family(&p, "x_ratio", PROMTEXT_GAUGE, "back\\slash \"quoted\"\nnext"), 0);
	assert_int_equal(promtext_sample(&p, "x_ratio", l, 2, 0.25), 0);
	/* HELP escapes \ and line feed, not the double quote; label values all three */
	assert_string_equal(buf, "# HELP x_ratio back\\\\slash \"quoted\"\\nnext\n"
				 "# TYPE x_ratio gauge\n"
				 "x_ratio{tenant=\"a\\\\b\\\"c\\nd\",empty=\"\"} 0.25\n");
}

static void test_numbers(void **state)
{
	struct promtext p;

	(void)state;
	promtext_init(&p, buf, sizeof(buf));
	assert_int_equal(promtext_family(&p, "n", PROMTEXT_GAUGE, "n"), 0);
	promtext_sample_u64(&p, "n", NULL, 0, UINT64_MAX);
	promtext_sample(&p, "n", NULL, 0, NAN);
	promtext_sample(&p, "n", NULL, 0, INFINITY);
	promtext_sample(&p, "n", NULL, 0, -INFINITY);
	promtext_sample(&p, "n", NULL, 0, 0.1);
	promtext_sample(&p, "n", NULL, 0, 1e-7);
	promtext_sample(&p, "n", NULL, 0, -3);
	assert_int_equal(promtext_error(&p), 0);
	assert_string_equal(buf, "# HELP n n\n# TYPE n gauge\n"
				 "n 18446744073709551615\nn NaN\nn +Inf\nn -Inf\nn 0.1\nn 1e-07\nn -3\n");
}

static void test_histogram(void **state)
{
	struct promtext p;
	struct promtext_label l[] = { { "route", "opamp" } };
	const double bounds[] = { 0.005, 0.1, 1 };
	const uint64_t counts[] = { 3, 0, 2, 1 };
	const double bad[] = { 0.1, 0.1 };

	(void)state;
	promtext_init(&p, buf, sizeof(buf));
	assert_int_equal(promtext_family(&p, "req_seconds", PROMTEXT_HISTOGRAM, "Latency."), 0);
	assert_int_equal(promtext_histogram(&p, "req_seconds", l, 1, bounds, counts, 3, 2.5), 0);
	assert_string_equal(buf, "# HELP req_seconds Latency.\n# TYPE req_seconds histogram\n"
				 "req_seconds_bucket{route=\"opamp\",le=\"0.005\"} 3\n"
				 "req_seconds_bucket{route=\"opamp\",le=\"0.1\"} 3\n"
				 "req_seconds_bucket{route=\"opamp\",le=\"1\"} 5\n"
				 "req_seconds_bucket{route=\"opamp\",le=\"+Inf\"} 6\n"
				 "req_seconds_sum{route=\"opamp\"} 2.5\n"
				 "req_seconds_count{route=\"opamp\"} 6\n");
	assert_int_equal(promtext_histogram(&p, "req_seconds", NULL, 0, bad, counts, 2, 0), -EINVAL);
	/* a histogram's samples go through promtext_histogram only */
	assert_int_equal(promtext_sample(&p, "req_seconds", NULL, 0, 1), -EINVAL);
}

static void test_refused(void **state)
{
	struct promtext p;
	struct promtext_label bad_label[] = { { "0abc", "v" } };
	struct promtext_label reserved[] = { { "__name__", "v" } };

	(void)state;
	promtext_init(&p, buf, sizeof(buf));
	/* a counter must be named _total */
	assert_int_equal(promtext_family(&p, "vigil_samples", PROMTEXT_COUNTER, "x"), -EINVAL);
	assert_int_equal(promtext_family(&p, "bad-name", PROMTEXT_GAUGE, "x"), -EINVAL);
	assert_int_equal(promtext_family(&p, "9lives", PROMTEXT_GAUGE, "x"), -EINVAL);
	assert_int_equal(promtext_family(&p, "a", PROMTEXT_GAUGE, "x"), 0);
	assert_int_equal(promtext_sample(&p, "a", bad_label, 1, 1), -EINVAL);
	assert_int_equal(promtext_sample(&p, "a", reserved, 1, 1), -EINVAL);
	/* a sample of another family than the current one */
	assert_int_equal(promtext_sample(&p, "b", NULL, 0, 1), -EINVAL);
	assert_int_equal(promtext_family(&p, "b", PROMTEXT_GAUGE, "x"), 0);
	/* a family may not be split, nor change its type */
	assert_int_equal(promtext_family(&p, "a", PROMTEXT_GAUGE, "x"), -EINVAL);
	assert_int_equal(promtext_family(&p, "b", PROMTEXT_HISTOGRAM, "x"), -EINVAL);
	/* refusals are the caller's mistakes: the page itself is still good */
	assert_int_equal(promtext_error(&p), 0);
}

static void test_full(void **state)
{
	char small[64];
	struct promtext p;
	struct promtext_label l[] = { { "k", "a fairly long value that does not fit" } };

	(void)state;
	promtext_init(&p, small, sizeof(small));
	assert_int_equal(promtext_family(&p, "g", PROMTEXT_GAUGE, "g"), 0);
	assert_int_equal(promtext_sample(&p, "g", l, 1, 1), -ENOBUFS);
	/* sticky: later calls fail the same way, and nothing is written past cap */
	assert_int_equal(promtext_sample(&p, "g", NULL, 0, 1), -ENOBUFS);
	assert_int_equal(promtext_error(&p), -ENOBUFS);
	assert_true(promtext_len(&p) < sizeof(small));
	assert_int_equal(strlen(small), promtext_len(&p));

	/* too many families */
	promtext_init(&p, buf, sizeof(buf));
	for (int i = 0; i < PROMTEXT_MAX_FAMILIES; i++) {
		char n[16];

		snprintf(n, sizeof(n), "f%d", i);
		assert_int_equal(promtext_family(&p, n, PROMTEXT_GAUGE, ""), 0);
	}
	assert_int_equal(promtext_family(&p, "one_more", PROMTEXT_GAUGE, ""), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_family_once),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_full),
	};
	return cmocka_run_group_tests_name("promtext", tests, NULL, NULL);
}
