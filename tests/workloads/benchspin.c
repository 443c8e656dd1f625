/*
 * benchspin - the benchmark's workload: a fixed amount of CPU work, timed.
 *
 * One op is a call chain BENCH_DEPTH + 2 frames deep (so that profilers unwind
 * realistic stacks) ending in bench_mix(), a few thousand rounds of integer
 * mixing.  The amount of work is fixed by --ops, so the wall time it takes
 * measures how much a profiler slows the machine down.  It prints one line:
 *
 *   benchspin ops=N wall_s=W ops_per_s=R start_mono=T0 end_mono=T1 check=X
 *
 * with T0/T1 CLOCK_MONOTONIC seconds of the start and end of the work.
 *
 * Usage: benchspin [--ops N]
 */
#include <stdint.h>
#include <stdio.h>

#include "vwl.h"

#define BENCH_DEPTH 12
#define BENCH_ROUNDS 4096

uint64_t bench_mix(uint64_t x);
uint64_t bench_chain(int depth, uint64_t x);

uint64_t bench_mix(uint64_t x)
{
	for (int i = 0; i < BENCH_ROUNDS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		x += (uint64_t)i;
	}
	return x;
}

uint64_t bench_chain(int depth, uint64_t x)
{
	if (depth <= 0)
		return bench_mix(x);
	return bench_chain(depth - 1, x + 1) ^ 1;
}

int main(int argc, char **argv)
{
	static const char *const known[] = {"--ops", NULL};
	long ops = (long)vwl_arg(argc, argv, known, "--ops", 200000, 1, 1e12);
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	long long t0 = vwl_mono_ns(), t1;
	double wall;

	for (long i = 0; i < ops; i++)
		x = bench_chain(BENCH_DEPTH, x);
	t1 = vwl_mono_ns();
	wall = (t1 - t0) / 1e9;
	printf("benchspin ops=%ld wall_s=%.4f ops_per_s=%.0f start_mono=%.6f end_mono=%.6f check=%llx\n",
	       ops, wall, ops / wall, t0 / 1e9, t1 / 1e9, (unsigned long long)x);
	return 0;
}
