/*
 * test_options.c - vigild's command line: defaults, ranges, one-line errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "options.h"

static int parse(struct vigild_opts *o, char *err, size_t n, ...)
{
	char *argv[32] = { "vigild" };
	int argc = 1;
	va_list ap;
	char *a;

	va_start(ap, n);
	while ((a = va_arg(ap, char *)) != NULL)
		argv[argc++] = a;
	va_end(ap);
	err[0] = '\0';
	return options_parse(argc, argv, 100000, o, err, n);
}

static void test_defaults(void **state)
{
	struct vigild_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_int_equal(o.hz, 19);
	assert_int_equal(o.interval_s, 10);
	assert_int_equal(o.duration_s, 0);
	assert_string_equal(o.output, VIGILD_DEFAULT_OUTPUT);
	assert_false(o.build_id);
	assert_int_equal(o.role, ROLE_MONITOR);
}

static void test_values(void **state)
{
	struct vigild_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, sizeof(err), "--hz", "99", "--interval", "5", "--duration",
			       "0", "--output", "/tmp/x", "--build-id", NULL), 0);
	assert_int_equal(o.hz, 99);
	assert_int_equal(o.interval_s, 5);
	assert_string_equal(o.output, "/tmp/x");
	assert_true(o.build_id);
	assert_int_equal(parse(&o, err, sizeof(err), "--hz=100000", "--max-hz", "100000", NULL), 0);
	assert_int_equal(o.hz, 100000);
	assert_int_equal(o.max_hz, 100000);
	/* above the default ceiling without raising it */
	assert_int_equal(parse(&o, err, sizeof(err), "--hz", "5000", NULL), -EINVAL);
	assert_non_null(strstr(err, "--max-hz"));
	assert_int_equal(parse(&o, err, sizeof(err), "--max-hz", "10", NULL), -EINVAL);
	assert_non_null(strstr(err, "--hz 19"));
	assert_int_equal(parse(&o, err, sizeof(err), "--trust", "/x/ca.pem", "--crl", "/x/crl.pem",
			       NULL), 0);
	assert_string_equal(o.trust, "/x/ca.pem");
	assert_string_equal(o.crl, "/x/crl.pem");
}

static void test_out_of_range(void **state)
{
	static const char *bad_hz[] = { "0", "100001", "-5", "abc", "12x", "", " 5", "99999999999999999999" };
	struct vigild_opts o;
	char err[256];

	for (size_t i = 0; i < sizeof(bad_hz) / sizeof(bad_hz[0]); i++) {
		assert_int_equal(parse(&o, err, sizeof(err), "--hz", bad_hz[i], NULL), -EINVAL);
		assert_non_null(strstr(err, "--hz"));
		assert_null(strchr(err, '\n'));
	}
	assert_int_equal(parse(&o, err, sizeof(err), "--interval", "0", NULL), -EINVAL);
	assert_non_null(strstr(err, "--interval"));
	assert_int_equal(parse(&o, err, sizeof(err), "--duration", "-1", NULL), -EINVAL);
	assert_non_null(strstr(err, "--duration"));
	assert_int_equal(parse(&o, err, sizeof(err), "--output", "", NULL), -EINVAL);
}

static void test_unknown(void **state)
{
	struct vigild_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, sizeof(err), "--frobnicate", NULL), -EINVAL);
	assert_non_null(strstr(err, "--frobnicate"));
	assert_int_equal(parse(&o, err, sizeof(err), "-x", NULL), -EINVAL);
	assert_non_null(strstr(err, "-x"));
	assert_int_equal(parse(&o, err, sizeof(err), "stray", NULL), -EINVAL);
	assert_non_null(strstr(err, "stray"));
	assert_int_equal(parse(&o, err, sizeof(err), "--hz", NULL), -EINVAL);
	assert_non_null(strstr(err, "--hz"));
	assert_int_equal(parse(&o, err, sizeof(err), "--internal-role", "root", NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_unknown),
	};
	return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
