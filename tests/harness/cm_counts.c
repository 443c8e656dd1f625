/*
 * cm_counts.c - a cmocka binary that fails on purpose, for the test of
 * tests/run.sh (tests/harness/run_sh.sh): 3 cases pass, 5 fail (each in a
 * different way cmocka reports), 2 skip, one of them with a reason.  With
 * CM_COUNTS_ABORT set, the fifth case aborts the whole binary.
 * Never run by make check directly.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "skip.h"

static void pass_a(void **state) { }
static void pass_b(void **state)
{
	if (getenv("CM_COUNTS_ABORT")) /* a crash cmocka cannot catch: the run stops here */
		abort();
}
static void pass_c(void **state) { }
static void fail_equal(void **state) { assert_int_equal(1, 2); }
static void fail_true(void **state) { assert_true(0); }
static void fail_msg_(void **state) { fail_msg("deliberate"); }
static void fail_string(void **state) { assert_string_equal("a", "b"); }
static void fail_signal(void **state) { raise(SIGFPE); }
static void skip_plain(void **state) { skip(); }
static void skip_reason(void **state) { skip_because("the deliberate %s", "reason"); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pass_a),     cmocka_unit_test(fail_equal), cmocka_unit_test(skip_plain),
		cmocka_unit_test(fail_true),  cmocka_unit_test(pass_b),	    cmocka_unit_test(fail_msg_),
		cmocka_unit_test(fail_string), cmocka_unit_test(skip_reason), cmocka_unit_test(fail_signal),
		cmocka_unit_test(pass_c),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
