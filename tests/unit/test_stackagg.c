/*
 * test_stackagg.c - identical samples are counted together, different ones
 * are not, and malformed records are refused without over-reading.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "guard.h"
#include "stackagg.h"

struct rec {
	struct vigil_sample_hdr h;
	uint64_t k[4];
	uint64_t u[8];
};

static size_t make(struct rec *r, uint32_t pid, uint32_t tid, uint32_t cpu, uint64_t leaf)
{
	memset(r, 0, sizeof(*r));
	r->h.type = VIGIL_EV_SAMPLE;
	r->h.pid = pid;
	r->h.tid = tid;
	r->h.cpu = cpu;
	r->h.cgroup_id = 7;
	r->h.period_ns = 10000000;
	memcpy(r->h.comm, "proc", 4);
	memcpy(r->h.thread_name, "thr", 3);
	r->h.user_fmt = VIGIL_USER_IPS;
	r->h.kernel_len = 2 * 8;
	r->h.user_len = 3 * 8;
	r->k[0] = 0xffffffff81000000ull;
	r->k[1] = 0xffffffff81000100ull;
	/* frames are contiguous: kernel then user */
	r->k[2] = leaf;
	r->k[3] = 0x401000;
	r->u[0] = 0x402000;
	return sizeof(r->h) + 5 * 8;
}

static void test_identity(void **state)
{
	struct stackagg *a = stackagg_new(0);
	struct rec r;
	size_t len;

	assert_non_null(a);
	len = make(&r, 10, 11, 0, 0x400100);
	assert_int_equal(stackagg_add(a, &r, len), 0);
	/* another CPU, same stack and thread: same entry */
	len = make(&r, 10, 11, 1, 0x400100);
	r.h.user_err = -14;
	assert_int_equal(stackagg_add(a, &r, len), 0);
	/* another time and period (its tenant's frequency changed): same entry, periods summed */
	len = make(&r, 10, 11, 0, 0x400100);
	r.h.time_ns = 12345;
	r.h.period_ns = 5000000;
	assert_int_equal(stackagg_add(a, &r, len), 0);
	assert_int_equal(stackagg_distinct(a), 1);
	assert_int_equal(stackagg_get(a, 0)->count, 3);
	assert_int_equal(stackagg_get(a, 0)->cpu_ns, 2 * 10000000 + 5000000);
	assert_int_equal(stackagg_get(a, 0)->hdr.cpu, 0);
	assert_int_equal(stackagg_get(a, 0)->hdr.period_ns, 0);
	/* another thread */
	len = make(&r, 10, 12, 0, 0x400100);
	assert_int_equal(stackagg_add(a, &r, len), 0);
	/* another leaf */
	len = make(&r, 10, 11, 0, 0x400104);
	assert_int_equal(stackagg_add(a, &r, len), 0);
	/* another process start time (pid reused) */
	len = make(&r, 10, 11, 0, 0x400100);
	r.h.start_ns = 99;
	assert_int_equal(stackagg_add(a, &r, len), 0);
	assert_int_equal(stackagg_distinct(a), 4);
	assert_int_equal(stackagg_total(a), 6);

	const struct stackagg_entry *e = stackagg_get(a, 2);
	uint64_t f;
	memcpy(&f, e->frames + 16, 8);
	assert_int_equal(f, 0x400104);
	assert_null(stackagg_get(a, 4));

	stackagg_reset(a);
	assert_int_equal(stackagg_distinct(a), 0);
	assert_int_equal(stackagg_total(a), 0);
	stackagg_free(a);
}

/*
 * Every field of a stack's identity tells entries apart, also those the
 * hash leaves out (the names) or folds together (the frames' split
 * between kernel and user): each variant is its own entry, and adding
 * the variants again finds each one, not a sibling with the same hash.
 */
static void test_identity_fields(void **state)
{
	struct stackagg *a = stackagg_new(0);
	struct rec r;
	size_t len, n = 9;

	assert_non_null(a);
	for (int round = 0; round < 2; round++) {
		for (size_t v = 0; v < n; v++) {
			len = make(&r, 10, 11, 0, 0x400100);
			switch (v) {
			case 1: memcpy(r.h.comm, "prod", 4); break;
			case 2: memcpy(r.h.thread_name, "thx", 3); break;
			case 3: r.h.kernel_len = 3 * 8; r.h.user_len = 2 * 8; break;
			case 4: r.h.tenant = 1; break;
			case 5: r.h.tenant_gen = 1; break;
			case 6: r.h.cgroup_id = 8; break;
			case 7: r.h.user_fmt = VIGIL_USER_BUILD_ID; r.h.kernel_len = 8; r.h.user_len = 32; break;
			case 8: r.h.start_ns = 1; break;
			}
			assert_int_equal(stackagg_add(a, &r, len), 0);
		}
		assert_int_equal(stackagg_distinct(a), n);
	}
	for (size_t i = 0; i < n; i++)
		assert_int_equal(stackagg_get(a, i)->count, 2);
	assert_int_equal(memcmp(stackagg_get(a, 1)->hdr.comm, "prod", 4), 0);
	assert_int_equal(memcmp(stackagg_get(a, 2)->hdr.thread_name, "thx", 3), 0);
	assert_int_equal(stackagg_get(a, 3)->hdr.kernel_len, 24);
	assert_int_equal(stackagg_total(a), 2 * n);
	stackagg_free(a);
}

static void test_many_and_limit(void **state)
{
	struct stackagg *a = stackagg_new(64 * 1024);
	struct rec r;
	size_t len, i;
	int rc = 0;

	for (i = 0; i < 100000; i++) {
		len = make(&r, 1, 1, 0, 0x400000 + i);
		rc = stackagg_add(a, &r, len);
		if (rc)
			break;
	}
	assert_int_equal(rc, -ENOSPC);
	assert_true(i > 100);
	assert_int_equal(stackagg_distinct(a), i);
	/* every entry kept its own frames through arena growth */
	for (size_t j = 0; j < i; j++) {
		uint64_t f;

		memcpy(&f, stackagg_get(a, j)->frames + 16, 8);
		assert_int_equal(f, 0x400000 + j);
	}
	/* a repeat still counts when full */
	len = make(&r, 1, 1, 0, 0x400000);
	assert_int_equal(stackagg_add(a, &r, len), 0);
	assert_int_equal(stackagg_get(a, 0)->count, 2);
	stackagg_free(a);
}

/* stackagg_add() on a record that ends exactly at an unmapped page. */
static int guarded_add(struct stackagg *a, const void *rec, size_t len)
{
	struct guarded g;
	int r;

	guard_copy(&g, rec, len);
	r = stackagg_add(a, g.data, len);
	guard_free(&g);
	return r;
}

static void test_malformed(void **state)
{
	struct stackagg *a = stackagg_new(0);
	struct rec r;
	size_t len;

	len = make(&r, 1, 1, 0, 1);
	assert_int_equal(guarded_add(a, &r, len), 0);
	/* lengths claim more than is there */
	r.h.user_len = 8 * 8;
	assert_int_equal(guarded_add(a, &r, len), -EINVAL);
	len = make(&r, 1, 1, 0, 1);
	r.h.kernel_len = 3; /* not a whole frame */
	assert_int_equal(guarded_add(a, &r, len), -EINVAL);
	len = make(&r, 1, 1, 0, 1);
	r.h.user_fmt = 7;
	assert_int_equal(guarded_add(a, &r, len), -EINVAL);
	len = make(&r, 1, 1, 0, 1);
	r.h.type = VIGIL_EV_EXEC;
	assert_int_equal(guarded_add(a, &r, len), -EINVAL);
	/* shorter than a header */
	assert_int_equal(guarded_add(a, &r, 10), -EINVAL);
	len = make(&r, 1, 1, 0, 1);
	r.h.kernel_len = 0xfffffff8u; /* huge: must not wrap the length check */
	assert_int_equal(guarded_add(a, &r, len), -EINVAL);
	assert_int_equal(stackagg_total(a), 1);
	stackagg_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_identity_fields),
		cmocka_unit_test(test_many_and_limit),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests_name("stackagg", tests, NULL, NULL);
}
