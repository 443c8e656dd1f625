/*
 * test_rollplan.c - a rollout's arithmetic: which stages text parses and
 * which is refused with which reason, how many agents each stage covers
 * (percentages round up, at least one, clamped, never shrinking), that
 * the members' order is the documented SHA-256 order (the same on every
 * run, different per rollout), and durations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "rollplan.h"

static void test_parse_ok(void **state)
{
	struct rollplan p;
	char err[160];

	(void)state;
	assert_int_equal(rollplan_parse("1,10%,50%,100%", &p, err, sizeof(err)), 0);
	assert_int_equal(p.n, 4);
	assert_int_equal(p.s[0].value, 1);
	assert_false(p.s[0].percent);
	assert_int_equal(p.s[1].value, 10);
	assert_true(p.s[1].percent);
	assert_int_equal(p.s[3].value, 100);
	assert_int_equal(rollplan_parse("100%", &p, err, sizeof(err)), 0);
	assert_int_equal(p.n, 1);
	assert_int_equal(rollplan_parse("5,5,5", &p, err, sizeof(err)), 0);
	assert_int_equal(rollplan_parse("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", &p, err, sizeof(err)), 0);
	assert_int_equal(p.n, 16);
	/* A count after a percentage parses; the member count decides (rollplan_sizes). */
	assert_int_equal(rollplan_parse("50%,3", &p, err, sizeof(err)), 0);
}

static void expect_error(const char *text, const char *reason)
{
	struct rollplan p;
	char err[160] = "";

	assert_int_equal(rollplan_parse(text, &p, err, sizeof(err)), -EINVAL);
	if (!strstr(err, reason))
		fail_msg("%s: \"%s\" does not say \"%s\"", text, err, reason);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_error("", "empty stages");
	expect_error("0", "stage 1: 0 covers no agent");
	expect_error("1,0%", "stage 2: 0% covers no agent");
	expect_error("150%", "stage 1: 150% is over 100%");
	expect_error("10,5", "stage 2: 5 is smaller than stage 1's 10");
	expect_error("1,50%,10%", "stage 3: 10% is smaller than stage 2's 50%");
	expect_error("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "more than 16 stages");
	expect_error("1,,2", "stage 2: empty");
	expect_error("1,", "stage 2: empty");
	expect_error("-1", "stage 1: \"-1\" is neither");
	expect_error("1.5%", "neither a count N nor a percentage");
	expect_error(" 1", "neither");
	expect_error("%", "neither");
	expect_error("1%%", "neither");
	expect_error("1000001", "over 1000000 agents");
	expect_error("9999999999", "neither");
	assert_int_equal(rollplan_parse(NULL, &(struct rollplan){ 0 }, NULL, 0), -EINVAL);
}

static void sizes_of(const char *text, size_t members, const size_t *want, size_t n)
{
	struct rollplan p;
	size_t got[ROLLPLAN_MAX_STAGES];
	char err[160];

	assert_int_equal(rollplan_parse(text, &p, err, sizeof(err)), 0);
	assert_int_equal(p.n, n);
	if (rollplan_sizes(&p, members, got, err, sizeof(err)) != 0)
		fail_msg("%s over %zu: %s", text, members, err);
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i])
			fail_msg("%s over %zu: stage %zu covers %zu, want %zu", text, members, i + 1, got[i],
				 want[i]);
}

static void test_sizes(void **state)
{
	char err[160];
	struct rollplan p;
	size_t got[ROLLPLAN_MAX_STAGES];

	(void)state;
	sizes_of("1,10%,50%,100%", 1000, (const size_t[]){ 1, 100, 500, 1000 }, 4);
	/* Percentages round up, at least one agent. */
	sizes_of("1,10%,50%,100%", 6, (const size_t[]){ 1, 1, 3, 6 }, 4);
	sizes_of("1%,34%", 3, (const size_t[]){ 1, 2 }, 2);
	/* Counts clamp to the members there are. */
	sizes_of("5,50", 7, (const size_t[]){ 5, 7 }, 2);
	sizes_of("1,50%,100%", 1, (const size_t[]){ 1, 1, 1 }, 3);
	/* The last stage need not be everyone. */
	sizes_of("1,50%", 10, (const size_t[]){ 1, 5 }, 2);
	assert_int_equal(rollplan_covers_all((const size_t[]){ 1, 5 }, 2, 10), false);
	assert_int_equal(rollplan_covers_all((const size_t[]){ 1, 10 }, 2, 10), true);
	/* A count then a smaller percentage of these members: refused, saying so. */
	assert_int_equal(rollplan_parse("10,10%", &p, err, sizeof(err)), 0);
	assert_int_equal(rollplan_sizes(&p, 50, got, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "stage 2 (10%) covers 5 of 50 agents, fewer than stage 1's 10"));
	/* ... and fine where the percentage is bigger. */
	assert_int_equal(rollplan_sizes(&p, 200, got, err, sizeof(err)), 0);
	assert_int_equal(got[1], 20);
}

static void test_stage_of(void **state)
{
	const size_t sizes[] = { 1, 3, 3, 6 };

	(void)state;
	assert_int_equal(rollplan_stage_of(sizes, 4, 0), 0);
	assert_int_equal(rollplan_stage_of(sizes, 4, 1), 1);
	assert_int_equal(rollplan_stage_of(sizes, 4, 2), 1);
	assert_int_equal(rollplan_stage_of(sizes, 4, 3), 3);
	assert_int_equal(rollplan_stage_of(sizes, 4, 5), 3);
	assert_int_equal(rollplan_stage_of(sizes, 4, 6), 4);
}

static void test_order(void **state)
{
	uint8_t uids[64][ROLLPLAN_UID_LEN], a[64][ROLLPLAN_UID_LEN], b[64][ROLLPLAN_UID_LEN];
	uint8_t key[32], want[32], buf[24];
	uint64_t be = htobe64(7);

	(void)state;
	/* The key is exactly SHA-256(id big-endian || uid). */
	memset(uids, 0, sizeof(uids));
	for (int i = 0; i < 64; i++)
		uids[i][15] = (uint8_t)i, uids[i][0] = 0xab;
	memcpy(buf, &be, 8);
	memcpy(buf + 8, uids[3], 16);
	SHA256(buf, sizeof(buf), want);
	rollplan_key(7, uids[3], key);
	assert_memory_equal(key, want, 32);

	memcpy(a, uids, sizeof(a));
	assert_int_equal(rollplan_order(7, a, 64), 0);
	for (int i = 1; i < 64; i++) {
		uint8_t k0[32], k1[32];

		rollplan_key(7, a[i - 1], k0);
		rollplan_key(7, a[i], k1);
		assert_true(memcmp(k0, k1, 32) < 0);
	}
	/* Same order whatever order the uids came in. */
	for (int i = 0; i < 64; i++)
		memcpy(b[i], uids[63 - i], 16);
	assert_int_equal(rollplan_order(7, b, 64), 0);
	assert_memory_equal(a, b, sizeof(a));
	/* Another rollout picks other canaries (the first of 64 differs with overwhelming odds). */
	memcpy(b, uids, sizeof(b));
	assert_int_equal(rollplan_order(8, b, 64), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(rollplan_order(8, b, 0), 0);
}

static void test_duration(void **state)
{
	int64_t ms = -1;
	char err[160], buf[32];

	(void)state;
	assert_int_equal(rollplan_duration("30s", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(rollplan_duration("5m", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(rollplan_duration("1h", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(rollplan_duration("250ms", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(rollplan_duration("0s", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(rollplan_duration("30d", &ms, err, sizeof(err)), 0);
	assert_int_equal(rollplan_duration("31d", &ms, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than 30 days"));
	assert_int_equal(rollplan_duration("30", &ms, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown or missing unit"));
	assert_int_equal(rollplan_duration("5x", &ms, err, sizeof(err)), -EINVAL);
	assert_int_equal(rollplan_duration("s", &ms, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a duration"));
	assert_int_equal(rollplan_duration("-5s", &ms, err, sizeof(err)), -EINVAL);
	assert_int_equal(rollplan_duration("", &ms, err, sizeof(err)), -EINVAL);
	assert_int_equal(rollplan_duration("1.5h", &ms, err, sizeof(err)), -EINVAL);

	rollplan_format_duration(30000, buf, sizeof(buf));
	assert_string_equal(buf, "30s");
	rollplan_format_duration(600000, buf, sizeof(buf));
	assert_string_equal(buf, "10m");
	rollplan_format_duration(1500, buf, sizeof(buf));
	assert_string_equal(buf, "1500ms");
	rollplan_format_duration(0, buf, sizeof(buf));
	assert_string_equal(buf, "0s");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok), cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_sizes),	 cmocka_unit_test(test_stage_of),
		cmocka_unit_test(test_order),	 cmocka_unit_test(test_duration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
