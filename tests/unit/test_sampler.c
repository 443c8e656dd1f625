/*
 * test_sampler.c - CPU list parsing, and refusal of objects that are not
 * the sampler (loading the real one is covered by the integration tests).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sampler.h"

static void test_cpulist(void **state)
{
	int c[16];

	assert_int_equal(sampler_parse_cpulist("0-1\n", c, 16), 2);
	assert_int_equal(c[0], 0);
	assert_int_equal(c[1], 1);
	assert_int_equal(sampler_parse_cpulist("0,2-4,7", c, 16), 5);
	assert_int_equal(c[1], 2);
	assert_int_equal(c[3], 4);
	assert_int_equal(c[4], 7);
	assert_int_equal(sampler_parse_cpulist("3", c, 16), 1);
	assert_int_equal(sampler_parse_cpulist("", c, 16), -EINVAL);
	assert_int_equal(sampler_parse_cpulist("4-2", c, 16), -EINVAL);
	assert_int_equal(sampler_parse_cpulist("a", c, 16), -EINVAL);
	assert_int_equal(sampler_parse_cpulist("0-", c, 16), -EINVAL);
	assert_int_equal(sampler_parse_cpulist("0-100", c, 16), -E2BIG);
}

static void test_not_an_object(void **state)
{
	struct sampler_config cfg = { .hz = 19, .build_id = true };
	struct sampler *s = NULL;
	char err[512] = "";
	static const char junk[] = "this is not ELF";

	assert_true(sampler_open(junk, sizeof(junk), "junk.bpf.o", &cfg, &s, err, sizeof(err)) < 0);
	assert_null(s);
	assert_non_null(strstr(err, "junk.bpf.o"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpulist),
		cmocka_unit_test(test_not_an_object),
	};
	return cmocka_run_group_tests_name("sampler", tests, NULL, NULL);
}
