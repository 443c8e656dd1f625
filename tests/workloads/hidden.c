/*
 * hidden - meant to be run from a path that exists only inside a private
 * mount namespace (tests/integration copy it, with libvwl.so, onto a tmpfs
 * mounted there), so the profiler must read the executable and library
 * through the process, not by the path in /proc/PID/maps.
 *
 * It alternates between hidden_spin() in the executable and vwl_lib_spin()
 * in libvwl.so, 10 ms each.
 *
 * Usage: hidden [--seconds S]
 */
#include <stddef.h>

#include "vwl.h"

#define CHECK_EVERY 32768
#define SLICE_NS 10000000LL

void hidden_spin(long long end_ns);

void hidden_spin(long long end_ns)
{
	do {
		for (volatile long i = 0; i < CHECK_EVERY; i++)
			;
	} while (vwl_mono_ns() < end_ns);
}

int main(int argc, char **argv)
{
	static const char *const known[] = {"--seconds", NULL};
	double seconds = vwl_arg(argc, argv, known, "--seconds", 10, 0.01, 86400);
	long long end = vwl_mono_ns() + (long long)(seconds * 1e9), now;

	while ((now = vwl_mono_ns()) < end) {
		hidden_spin(now + SLICE_NS);
		vwl_lib_spin(now + 2 * SLICE_NS);
	}
	return 0;
}
