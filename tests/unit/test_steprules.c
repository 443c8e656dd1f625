/*
 * test_steprules.c - the bounded cache of learnt unwinding steps
 * (daemon/steprules.c): keys, the two-way sets and what is counted.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "steprules.h"

static struct steprule rule(int32_t cfa_off)
{
	return (struct steprule){ .kind = STEPRULE_STEP, .cfa_reg = STEPRULE_SP, .cfa_off = cfa_off,
				  .ra_off = -8 };
}

static void test_get_put(void **state)
{
	struct steprules *r = steprules_new();
	struct steprule a = rule(16), got;
	struct steprule none = { .kind = STEPRULE_NONE };
	struct steprules_stats st;

	assert_non_null(r);
	assert_int_equal(steprules_get(r, 1, 0x1000, &got), -ENOENT);
	steprules_put(r, 1, 0x1000, &a);
	assert_int_equal(steprules_get(r, 1, 0x1000, &got), 0);
	assert_int_equal(got.cfa_off, 16);
	/* another file's rule at the same address is another key */
	assert_int_equal(steprules_get(r, 2, 0x1000, &got), -ENOENT);
	assert_int_equal(steprules_get(r, 1, 0x1001, &got), -ENOENT);
	/* a refusal is kept too: it spares learning it again */
	steprules_put(r, 2, 0x1000, &none);
	assert_int_equal(steprules_get(r, 2, 0x1000, &got), 0);
	assert_int_equal(got.kind, STEPRULE_NONE);
	/* id 0 (no CFI object has it) and an empty rule are not stored */
	steprules_put(r, 0, 0x2000, &a);
	assert_int_equal(steprules_get(r, 0, 0x2000, &got), -ENOENT);
	got = (struct steprule){ 0 };
	steprules_put(r, 3, 0x2000, &got);
	assert_int_equal(steprules_get(r, 3, 0x2000, &got), -ENOENT);
	/* replacing a key's own rule is not counted as replacing another */
	a.cfa_off = 24;
	steprules_put(r, 1, 0x1000, &a);
	assert_int_equal(steprules_get(r, 1, 0x1000, &got), 0);
	assert_int_equal(got.cfa_off, 24);
	steprules_get_stats(r, &st);
	assert_int_equal(st.hits, 3);
	assert_int_equal(st.misses, 5);
	assert_int_equal(st.replaced, 0);
	steprules_free(r);
}

/*
 * Bounded: more rules than slots are stored, each replacing one (counted),
 * and the recently used survive where the table is full.
 */
static void test_bounded(void **state)
{
	struct steprules *r = steprules_new();
	struct steprules_stats st;
	struct steprule a = rule(8), got;
	uint64_t n = 4 * STEPRULES_SLOTS, found = 0;

	assert_non_null(r);
	for (uint64_t i = 0; i < n; i++) {
		a.cfa_off = (int32_t)i;
		steprules_put(r, 7, i, &a);
		/* the first rule is used all along: it must stay */
		assert_int_equal(steprules_get(r, 7, 0, &got), 0);
		assert_int_equal(got.cfa_off, 0);
	}
	for (uint64_t i = 0; i < n; i++) {
		if (steprules_get(r, 7, i, &got) == 0) {
			assert_int_equal(got.cfa_off, (int32_t)i);
			found++;
		}
	}
	assert_true(found <= STEPRULES_SLOTS);
	assert_true(found >= STEPRULES_SLOTS / 2);
	steprules_get_stats(r, &st);
	/* every rule stored either sits in a slot or replaced one that did */
	assert_true(st.replaced >= n - STEPRULES_SLOTS);
	assert_true(st.replaced <= n);
	steprules_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_put),
		cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
