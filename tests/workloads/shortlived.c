/*
 * shortlived - burns CPU in short_burn() and exits: a process that is gone
 * long before the collector drains its samples, so symbolizing it needs
 * what was recorded at sample time.
 *
 * Usage: shortlived [--ms MS | --cpu-ms MS]
 * --ms (default 500) burns for MS of wall time: it lives MS however little
 * of a CPU it gets.  --cpu-ms burns until the process has had MS of CPU
 * time: on an idle host it lives as long, on a loaded one longer, and a
 * sampler at F Hz takes about F * MS / 1000 samples of it either way (for
 * a test that counts them).
 */
#include <stddef.h>

#include "vwl.h"

#define CHECK_EVERY 32768

void short_burn(long long end_ns, long long (*clock_ns)(void));

void short_burn(long long end_ns, long long (*clock_ns)(void))
{
	do {
		for (volatile long i = 0; i < CHECK_EVERY; i++)
			;
	} while (clock_ns() < end_ns);
}

int main(int argc, char **argv)
{
	static const char *const known[] = {"--ms", "--cpu-ms", NULL};
	double ms = vwl_arg(argc, argv, known, "--ms", 500, 1, 60000);
	double cpu_ms = vwl_arg(argc, argv, known, "--cpu-ms", 0, 1, 60000);

	if (cpu_ms > 0) /* one thread: its CPU time is the process's */
		short_burn(vwl_thread_ns() + (long long)(cpu_ms * 1e6), vwl_thread_ns);
	else
		short_burn(vwl_mono_ns() + (long long)(ms * 1e6), vwl_mono_ns);
	return 0;
}
