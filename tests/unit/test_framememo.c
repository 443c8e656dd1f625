/*
 * test_framememo.c - the frames one profile has placed already: a key
 * finds the location put for it and nothing else, whichever of its fields
 * differs; growing keeps every entry; a full memo keeps what it has and
 * takes nothing new.
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

static void test_bound(void **state)
{
	struct framememo m;
	struct framememo_key k = { .kind = FRAMEMEMO_KERNEL };
	size_t cap;

	framememo_init(&m);
	for (uint64_t i = 0; i < FRAMEMEMO_MAX; i++) {
		k.ip = 0xffffffff81000000 + i;
		assert_int_equal(framememo_put(&m, &k, i + 1), 0);
	}
	assert_int_equal(m.n, FRAMEMEMO_MAX);
	cap = m.mask + 1;
	/* a slot: the key and its location */
	assert_true(cap * (sizeof(struct framememo_key) + sizeof(uint64_t)) <= 8u << 20);
	/* full: a new frame is not kept, and the table does not grow */
	k.ip = 1;
	assert_int_equal(framememo_put(&m, &k, 7), 0);
	assert_int_equal(framememo_get(&m, &k), 0);
	assert_int_equal(m.n, FRAMEMEMO_MAX);
	assert_int_equal(m.mask + 1, cap);
	/* what it has stays, and can be replaced */
	k.ip = 0xffffffff81000000;
	assert_int_equal(framememo_get(&m, &k), 1);
	assert_int_equal(framememo_put(&m, &k, 9), 0);
	assert_int_equal(framememo_get(&m, &k), 9);
	k.ip = 0xffffffff81000000 + FRAMEMEMO_MAX - 1;
	assert_int_equal(framememo_get(&m, &k), FRAMEMEMO_MAX);
	framememo_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_bound),
	};

	return cmocka_run_group_tests_name("framememo", tests, NULL, NULL);
}
