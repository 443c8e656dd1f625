/*
 * tscclock.c - the time-stamp counter scaled by CLOCK_MONOTONIC (tscclock.h).
 */
#include <time.h>

#include "tscclock.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>

static bool counter_invariant(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
		return false;
	if (!__get_cpuid(0x80000007u, &a, &b, &c, &d))
		return false;
	return d & (1u << 8);
}

static uint64_t counter(void)
{
	return __rdtsc();
}
#else
static bool counter_invariant(void)
{
	return false;
}

static uint64_t counter(void)
{
	return 0;
}
#endif

static uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void tscclock_init(struct tscclock *t)
{
	*t = (struct tscclock){ .invariant = counter_invariant() };
}

void tscclock_calibrate(struct tscclock *t, uint64_t mono_now)
{
	uint64_t now;

	if (!t->invariant)
		return;
	now = counter();
	if (!t->mono0) {
		t->tsc0 = now;
		t->mono0 = mono_now;
		return;
	}
	if (mono_now - t->mono0 < TSCCLOCK_CALIBRATE_NS || now <= t->tsc0)
		return;
	t->ns_per_tick = (double)(mono_now - t->mono0) / (double)(now - t->tsc0);
}

uint64_t tscclock_read(const struct tscclock *t)
{
	return t->ns_per_tick > 0 ? counter() : clock_ns();
}

uint64_t tscclock_ns(const struct tscclock *t, uint64_t a, uint64_t b)
{
	if (b <= a)
		return 0;
	return t->ns_per_tick > 0 ? (uint64_t)((double)(b - a) * t->ns_per_tick) : b - a;
}
