/*
 * shortlived - burns CPU in short_burn() for half a second (wall time) and
 * exits: a process that is gone long before the collector drains its
 * samples, so symbolizing it needs what was recorded at sample time.
 *
 * Usage: shortlived [--ms MS]
 */
#include <stddef.h>

#include "vwl.h"

#define CHECK_EVERY 32768

void short_burn(long long end_ns);

void short_burn(long long end_ns)
{
	do {
		for (volatile long i = 0; i < CHECK_EVERY; i++)
			;
	} while (vwl_mono_ns() < end_ns);
}

int main(int argc, char **argv)
{
	static const char *const known[] = {"--ms", NULL};
	double ms = vwl_arg(argc, argv, known, "--ms", 500, 1, 60000);

	short_burn(vwl_mono_ns() + (long long)(ms * 1e6));
	return 0;
}
