/*
 * libvwl.c - libvwl.so, the shared library every test workload links.
 *
 * It holds the helpers the workloads share (clocks, argument parsing) and
 * burn functions whose samples must be attributed to a frame inside a shared
 * object: burn_gamma (one third of cpusplit's split) and vwl_lib_spin.
 * Built -fPIC with frame pointers and without inlining; see vwl.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vwl.h"

/* Loop iterations between two clock reads in the burn loops: ~50 us of work,
 * so that the clock read (a system call for thread CPU time) is a small,
 * fixed fraction of every burn function's time. */
#define VWL_CHECK_EVERY 32768

long long vwl_thread_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long long vwl_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int vwl_known(const char *const *known, const char *opt, size_t len)
{
	for (; *known; known++)
		if (strlen(*known) == len && strncmp(*known, opt, len) == 0)
			return 1;
	return 0;
}

double vwl_arg(int argc, char **argv, const char *const *known, const char *name,
	       double def, double min, double max)
{
	double val = def;
	size_t nlen = strlen(name);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL, *eq = strchr(a, '=');
		size_t len = eq ? (size_t)(eq - a) : strlen(a);

		if (!vwl_known(known, a, len)) {
			fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], a);
			exit(64);
		}
		if (eq) {
			v = eq + 1;
		} else {
			if (i + 1 >= argc) {
				fprintf(stderr, "%s: %s needs a value\n", argv[0], a);
				exit(64);
			}
			v = argv[++i];
		}
		if (len != nlen || strncmp(a, name, len) != 0)
			continue;
		char *end;
		errno = 0;
		val = strtod(v, &end);
		if (errno || end == v || *end || !(val >= min && val <= max)) {
			fprintf(stderr, "%s: %s must be a number in [%g, %g], not '%s'\n",
				argv[0], name, min, max, v);
			exit(64);
		}
	}
	return val;
}

void burn_gamma(long long ns)
{
	long long end = vwl_thread_ns() + ns;

	do {
		for (volatile long i = 0; i < VWL_CHECK_EVERY; i++)
			;
	} while (vwl_thread_ns() < end);
}

void vwl_lib_spin(long long end_ns)
{
	do {
		for (volatile long i = 0; i < VWL_CHECK_EVERY; i++)
			;
	} while (vwl_mono_ns() < end_ns);
}
