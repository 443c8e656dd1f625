/*
 * test_framememo.c - the frames one profile has placed already: a key
 * finds the location put for it and nothing else, whichever of its fields
 * differs; growing keeps every entry.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "framememo.h"

static void test_put_get(void **state)
{
	struct framememo m;
	const struct framememo_key k = { .kind = FRAMEMEMO_USER | FRAMEMEMO_RETURN, .pid = 7,
					 .start_ns = 1234, .ip = 0x401000 };
	struct framememo_key o;

	framememo_init(&m);
	assert_int_equal(framememo_get(&m, &k), 0); /* empty, no table yet */
	assert_int_equal(framememo_put(&m, &k, 0), -EINVAL);
	assert_int_equal(framememo_put(&m, &k, 42), 0);
	assert_int_equal(framememo_get(&m, &k), 42);
	assert_int_equal(m.n, 1);

	/* each field is part of the identity */
	o = k;
	o.kind = FRAMEMEMO_USER;
	assert_int_equal(framememo_get(&m, &o), 0);
	o = k;
	o.pid = 8;
	assert_int_equal(framememo_get(&m, &o), 0);
	o = k;
	o.start_ns = 1235;
	assert_int_equal(framememo_get(&m, &o), 0);
	o = k;
	o.ip = 0x401001;
	assert_int_equal(framememo_get(&m, &o), 0);
	o = (struct framememo_key){ .kind = FRAMEMEMO_KERNEL | FRAMEMEMO_RETURN, .ip = 0x401000 };
	assert_int_equal(framememo_get(&m, &o), 0);

	/* putting a key again replaces its location, it does not add one */
	assert_int_equal(framememo_put(&m, &k, 43), 0);
	assert_int_equal(framememo_get(&m, &k), 43);
	assert_int_equal(m.n, 1);
	framememo_release(&m);
	assert_int_equal(framememo_get(&m, &k), 0);
}

static void test_growth(void **state)
{
	enum { N = 20000 };
	struct framememo m;

	framememo_init(&m);
	for (uint64_t i = 0; i < N; i++) {
		/* kernel and user keys of the same address, in two processes */
		struct framememo_key k = { .kind = i % 2 ? FRAMEMEMO_KERNEL : FRAMEMEMO_USER,
					   .pid = (uint32_t)(i % 3), .start_ns = i % 3, .ip = i / 2 };

		assert_int_equal(framememo_put(&m, &k, i + 1), 0);
	}
	assert_int_equal(m.n, N);
	assert_true((m.mask + 1) * 3 >= m.n * 4); /* at most 3/4 full */
	for (uint64_t i = 0; i < N; i++) {
		struct framememo_key k = { .kind = i % 2 ? FRAMEMEMO_KERNEL : FRAMEMEMO_USER,
					   .pid = (uint32_t)(i % 3), .start_ns = i % 3, .ip = i / 2 };

		assert_int_equal(framememo_get(&m, &k), i + 1);
	}
	framememo_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_growth),
	};

	return cmocka_run_group_tests_name("framememo", tests, NULL, NULL);
}
