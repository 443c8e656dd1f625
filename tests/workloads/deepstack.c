/*
 * deepstack - recurses DEPTH (120) frames deep through deep_recurse() and
 * spins in deep_leaf() at the bottom, so that every sample of it has a
 * user stack of ~125 frames: close to, but under, the kernel's default
 * perf_event_max_stack of 127.
 *
 * Usage: deepstack [--seconds S] [--depth N]
 */
#include <stdio.h>

#include "vwl.h"

#define CHECK_EVERY (1L << 20)

long deep_leaf(long long end_ns);
long deep_recurse(int n, long long end_ns);

long deep_leaf(long long end_ns)
{
	long rounds = 0;

	do {
		for (volatile long i = 0; i < CHECK_EVERY; i++)
			;
		rounds++;
	} while (vwl_mono_ns() < end_ns);
	return rounds;
}

/* Not a tail call (the +1 after it), so every level keeps its frame. */
long deep_recurse(int n, long long end_ns)
{
	if (n <= 1)
		return deep_leaf(end_ns) + 1;
	return deep_recurse(n - 1, end_ns) + 1;
}

int main(int argc, char **argv)
{
	static const char *const known[] = {"--seconds", "--depth", NULL};
	double seconds = vwl_arg(argc, argv, known, "--seconds", 10, 0.01, 86400);
	int depth = (int)vwl_arg(argc, argv, known, "--depth", 120, 1, 10000);
	long r = deep_recurse(depth, vwl_mono_ns() + (long long)(seconds * 1e9));

	return r > 0 ? 0 : 1;
}
