/*
 * test_tscclock.c - the time-stamp counter as the collector's stopwatch:
 * the clock until it is calibrated, then the counter, and what it says
 * an interval lasted agrees with CLOCK_MONOTONIC over the same interval.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "tscclock.h"

static uint64_t mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void nap(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* An interval read by t and by the clock, around the same nap: both figures. */
static void both(const struct tscclock *t, uint64_t ns, uint64_t *by_t, uint64_t *by_clock)
{
	uint64_t c0 = mono(), a = tscclock_read(t);

	nap(ns);
	uint64_t b = tscclock_read(t), c1 = mono();

	*by_t = tscclock_ns(t, a, b);
	*by_clock = c1 - c0;
}

/*
 * How far t's figure for a 50 ms nap is from the clock's, the least of
 * five tries: a preemption between a clock read and its counter read
 * (a loaded machine) widens one try, not the scale's error.
 */
static uint64_t least_diff(const struct tscclock *t, uint64_t *by_clock)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 5; i++) {
		uint64_t x, c, d;

		both(t, 50000000, &x, &c);
		d = x > c ? x - c : c - x;
		if (d < best) {
			best = d;
			*by_clock = c;
		}
	}
	return best;
}

static void test_before_calibration(void **state)
{
	struct tscclock t;
	uint64_t by_t, by_clock;

	tscclock_init(&t);
	tscclock_calibrate(&t, mono());
	/* Not calibrated yet: readings are the clock's, nanoseconds. */
	both(&t, 20000000, &by_t, &by_clock);
	assert_true(by_t >= 20000000);
	assert_true(by_t <= by_clock);
	/* Less than TSCCLOCK_CALIBRATE_NS since the first call: still the clock. */
	tscclock_calibrate(&t, mono());
	assert_true(t.ns_per_tick == 0);
	assert_int_equal(tscclock_ns(&t, 5, 3), 0);
}

static void test_calibrated(void **state)
{
	struct tscclock t;
	uint64_t by_clock;

	tscclock_init(&t);
	if (!t.invariant)
		skip(); /* the CPU's counter is not invariant: the collector reads the clock */
	tscclock_calibrate(&t, mono());
	nap(TSCCLOCK_CALIBRATE_NS + 20000000);
	tscclock_calibrate(&t, mono());
	assert_true(t.ns_per_tick > 0);
	/*
	 * The counter's figure for a 50 ms nap agrees with the clock's for the
	 * same nap: within 2% (the scale was fitted over ~120 ms, clock reads
	 * of a few µs apart at each end) and the clock reads' own distance
	 * from the counter's (both pairs taken back to back).
	 */
	assert_true(least_diff(&t, &by_clock) < by_clock / 50 + 200000);
	/* And after a longer fit the scale is tighter. */
	nap(400000000);
	tscclock_calibrate(&t, mono());
	assert_true(least_diff(&t, &by_clock) < by_clock / 200 + 200000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_before_calibration),
		cmocka_unit_test(test_calibrated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
