/*
 * test_hexdigit.c - every char value: the sixteen digits of both cases get
 * their value, everything else (signs, blanks, NUL, bytes >= 0x80) -1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "hexdigit.h"

static void test_all_chars(void **state)
{
	static const char lower[] = "0123456789abcdef", upper[] = "0123456789ABCDEF";

	for (int c = -128; c < 128; c++) {
		const char *l = c ? memchr(lower, c, 16) : NULL;
		const char *u = c ? memchr(upper, c, 16) : NULL;
		int want = l ? (int)(l - lower) : u ? (int)(u - upper) : -1;

		assert_int_equal(hexdigit_value((char)c), want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_chars),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
