/*
 * test_polrevert.c - a rollback's YAML: the top-level serial's value is
 * replaced and every other byte kept (comments, CRLF, indented "serial:"
 * keys that are not the top-level one); a policy without a top-level
 * serial, with two, or with an empty one is refused with the line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "polrevert.h"

static void expect_out(const char *in, int64_t serial, const char *want)
{
	char *out = NULL, err[160];
	size_t len = 0;

	if (polrevert_reserial(in, strlen(in), serial, &out, &len, err, sizeof(err)))
		fail_msg("%s: %s", in, err);
	assert_int_equal(len, strlen(want));
	assert_string_equal(out, want);
	free(out);
}

static void expect_err(const char *in, const char *reason)
{
	char *out = NULL, err[160];
	size_t len = 0;

	assert_int_equal(polrevert_reserial(in, strlen(in), 9, &out, &len, err, sizeof(err)), -EINVAL);
	if (!strstr(err, reason))
		fail_msg("\"%s\" does not say \"%s\"", err, reason);
}

static void test_reserial(void **state)
{
	(void)state;
	expect_out("version: 1\nserial: 3\ndefaults:\n  hz: {min: 1}\n", 12,
		   "version: 1\nserial: 12\ndefaults:\n  hz: {min: 1}\n");
	expect_out("serial: 3 # the old one\n", 4, "serial: 4 # the old one\n");
	expect_out("serial:    7\r\nversion: 1\r\n", 100, "serial:    100\r\nversion: 1\r\n");
	expect_out("version: 1\nserial: 5", 6, "version: 1\nserial: 6");
	/* Indented serial keys belong to something else. */
	expect_out("tenants:\n  - serial: 1\nserial: 2\n", 3, "tenants:\n  - serial: 1\nserial: 3\n");
	expect_out("serial: \"41\"\n", 42, "serial: 42\n");
}

static void test_refused(void **state)
{
	(void)state;
	expect_err("version: 1\n", "no top-level \"serial:\" line");
	expect_err("  serial: 1\n", "no top-level");
	expect_err("serial: 1\nserial: 2\n", "line 2: a second top-level serial (the first is on line 1)");
	expect_err("serial:\n", "line 1: the top-level serial has no value");
	expect_err("serial:   # none\n", "has no value");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reserial),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
