/*
 * mapsread - what reading and parsing one process's /proc/PID/maps costs
 * here, with the code the monitor and the collector use for it
 * (procmaps_read): the CPU time (user and system: the kernel writes the
 * text) of the cheapest of N reads, in milliseconds, and the number of
 * mappings.  CPU time, not wall time, so that a busy host does not
 * inflate it: tests compare it with the CPU time a process spent.
 *
 * Usage: mapsread PID [N]      prints "CPU_MS MAPPINGS"
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "procmaps.h"

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	int pid = argc > 1 ? atoi(argv[1]) : 0, n = argc > 2 ? atoi(argv[2]) : 5;
	double best = 1e12;
	size_t count = 0;

	if (pid <= 0 || n <= 0) {
		fprintf(stderr, "usage: mapsread PID [N]\n");
		return 64;
	}
	for (int i = 0; i < n; i++) {
		struct procmaps *m;
		double t0 = cpu_ms(), t;

		if (procmaps_read(pid, &m) < 0) {
			fprintf(stderr, "mapsread: cannot read /proc/%d/maps\n", pid);
			return 1;
		}
		t = cpu_ms() - t0;
		best = t < best ? t : best;
		count = m->n;
		procmaps_free(m);
	}
	printf("%.3f %zu\n", best, count);
	return 0;
}
