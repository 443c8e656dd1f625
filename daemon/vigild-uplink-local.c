/*
 * vigild-uplink-local.c - the program of the uplink without a control
 * plane or export (uplinklocal.c): vigild's monitor runs it, as the
 * unprivileged user, with the privilege-separation socket as its only
 * open descriptor (monitor.c, start_worker).  It is a program of its own
 * so that it does not map libcurl (workerexe.h).
 */
#include <stdio.h>
#include <string.h>

#include "uplinklocal.h"

#define EX_USAGE 64

int main(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--internal-role") || strcmp(argv[2], "uplink")) {
		fputs("vigild-uplink-local: the uplink of vigild, which starts it; not to be run by hand\n",
		      stderr);
		return EX_USAGE;
	}
	return uplinklocal_main();
}
