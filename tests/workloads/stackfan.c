/*
 * stackfan - spins through PATHS distinct call stacks, round and round,
 * for SECONDS: for scale benchmarks that need a known number of distinct
 * stacks per interval.
 *
 * Path p is a chain of LEVELS calls, fan_a() or fan_b() at each level as
 * bit i of p says, LEVELS = ceil(log2(PATHS)) (at least 1); the bottom
 * spins in fan_leaf() for about US microseconds (wall clock), at one of two
 * instructions.  Each path's return addresses differ from every other
 * path's, so each is a distinct stack to the profiler (two, with the
 * leaf's two addresses).
 *
 * With --duty D (0 < D <= 1) it sleeps after each path so as to spin a
 * fraction D of the time: many processes then make a known load.
 *
 * Usage: stackfan [--paths N] [--seconds S] [--us US] [--duty D]
 */
#include <stddef.h>
#include <time.h>

#include "vwl.h"

static volatile long sink;
static int levels;

long fan_a(int level, long p, long long end_ns);
long fan_b(int level, long p, long long end_ns);
long fan_leaf(long long end_ns);

/*
 * Two instructions spin: nearly every sample of a path has one of two
 * leaf addresses.  The clock is the vDSO's (no system call, whose kernel
 * stacks would add stacks of their own).
 */
long fan_leaf(long long end_ns)
{
	long n = 0;

	while (vwl_mono_ns() < end_ns) {
		long k = 1L << 16;

		__asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(k));
		n++;
	}
	return n;
}

static long next(int level, long p, long long end_ns)
{
	if (level == levels)
		return fan_leaf(end_ns);
	return (p >> level) & 1 ? fan_b(level + 1, p, end_ns) : fan_a(level + 1, p, end_ns);
}

long fan_a(int level, long p, long long end_ns)
{
	long r = next(level, p, end_ns);

	sink += r;
	return r + 1;
}

long fan_b(int level, long p, long long end_ns)
{
	long r = next(level, p, end_ns);

	sink += r;
	return r + 2;
}

int main(int argc, char **argv)
{
	static const char *const known[] = {"--paths", "--seconds", "--us", "--duty", NULL};
	long paths = (long)vwl_arg(argc, argv, known, "--paths", 1024, 1, 1 << 24);
	double secs = vwl_arg(argc, argv, known, "--seconds", 10, 0.1, 3600);
	double us = vwl_arg(argc, argv, known, "--us", 100, 1, 1e6);
	double duty = vwl_arg(argc, argv, known, "--duty", 1, 1e-6, 1);
	double rest_ns = us * 1e3 * (1 / duty - 1);
	struct timespec rest = { .tv_sec = (time_t)(rest_ns / 1e9),
				 .tv_nsec = (long)(rest_ns - (double)(time_t)(rest_ns / 1e9) * 1e9) };
	long long end = vwl_mono_ns() + (long long)(secs * 1e9);

	for (levels = 1; (1L << levels) < paths; levels++)
		;
	while (vwl_mono_ns() < end)
		for (long p = 0; p < paths && vwl_mono_ns() < end; p++) {
			sink += fan_a(0, p, vwl_mono_ns() + (long long)(us * 1e3));
			if (duty < 1)
				nanosleep(&rest, NULL);
		}
	return 0;
}
