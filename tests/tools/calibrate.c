/*
 * calibrate - run the start-up calibration of the per-sample interrupt cost
 * (daemon/calibrate.c) and print what it measured, for docs/overhead.md
 * and for checking by hand.
 *
 * Usage: calibrate [--hz N] [--rounds N] [--repeat N]   (defaults 10000, 200, 1)
 *
 * Prints one line per calibration:
 *   hz=10000 rounds=200 used=20 ns_per_sample=12159 uncertainty_ns=102 samples=424
 *   base_ns=36923004 loaded_ns=42078430 clamped=0 wall_ms=960
 * (rounds: runs of each kind done before the deadline; used: the fastest
 * loaded runs the estimate rests on, with their samples and CPU time, and
 * base_ns the CPU time of as many runs without sampling).
 * Exit codes: 0 every calibration succeeded, 64 usage, 75 one was too
 * noisy (-EAGAIN), 1 any other failure.  Needs what the monitor has at
 * start-up (root, or CAP_PERFMON where perf_event_paranoid > 2).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calibrate.h"

static void usage(void)
{
	fprintf(stderr, "usage: calibrate [--hz N] [--rounds N] [--repeat N]\n");
	exit(64);
}

static unsigned parse_num(const char *what, const char *s, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "calibrate: %s must be an integer in [%lu, %lu], not '%s'\n", what, min,
			max, s);
		exit(64);
	}
	return (unsigned)v;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	unsigned hz = CALIBRATE_HZ_DEFAULT, rounds = CALIBRATE_ROUNDS_DEFAULT, repeat = 1;
	int status = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--hz") == 0 && i + 1 < argc)
			hz = parse_num("--hz", argv[++i], 1, 1000000);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = parse_num("--rounds", argv[++i], 1, 1000);
		else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
			repeat = parse_num("--repeat", argv[++i], 1, 1000);
		else
			usage();
	}

	for (unsigned i = 0; i < repeat; i++) {
		struct calibrate_result r;
		double t0 = now_ms();
		int rc = calibrate_sample_cost(hz, rounds, &r);

		if (rc < 0) {
			fprintf(stderr, "calibrate: hz=%u rounds=%u: %s (wall_ms=%.0f)\n", hz, rounds,
				strerror(-rc), now_ms() - t0);
			if (rc == -EINVAL)
				return 64;
			status = rc == -EAGAIN && status != 1 ? 75 : 1;
			continue;
		}
		printf("hz=%u rounds=%u used=%u ns_per_sample=%llu uncertainty_ns=%llu samples=%llu "
		       "base_ns=%llu loaded_ns=%llu clamped=%d wall_ms=%.0f\n",
		       r.hz, r.rounds, r.used, (unsigned long long)r.ns_per_sample,
		       (unsigned long long)r.uncertainty_ns, (unsigned long long)r.samples,
		       (unsigned long long)r.base_ns, (unsigned long long)r.loaded_ns, r.clamped,
		       now_ms() - t0);
		fflush(stdout);
	}
	return status;
}
