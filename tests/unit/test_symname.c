/*
 * test_symname.c - leading underscores are counted up to the first other
 * byte, never past the bound given, and never past a NUL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "guard.h"
#include "symname.h"

static void test_counts(void **state)
{
	assert_int_equal(symname_leading_underscores("getpid", 6), 0);
	assert_int_equal(symname_leading_underscores("__getpid", 8), 2);
	assert_int_equal(symname_leading_underscores("__GI___getpid", 13), 2);
	assert_int_equal(symname_leading_underscores("", 0), 0);
	assert_int_equal(symname_leading_underscores("", 100), 0);
	assert_int_equal(symname_leading_underscores("___", 100), 3); /* stops at the NUL */
	assert_int_equal(symname_leading_underscores("_____x", 3), 3); /* stops at the bound */
}

/* A name of nothing but underscores, ending at an unmapped page. */
static void test_bound_at_page_end(void **state)
{
	char under[4096];
	struct guarded g;

	memset(under, '_', sizeof(under));
	guard_copy(&g, under, sizeof(under));
	assert_int_equal(symname_leading_underscores((const char *)g.data, sizeof(under)),
			 sizeof(under));
	guard_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_bound_at_page_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
