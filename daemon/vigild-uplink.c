/*
 * vigild-uplink.c - the uplink's program: vigild's monitor runs it, as the
 * unprivileged user, with the privilege-separation socket as its only open
 * descriptor (monitor.c, start_worker).  It is a program of its own so
 * that it maps only the libraries its process uses (workerexe.h).
 */
#include <stdio.h>
#include <string.h>

#include "uplink.h"

#define EX_USAGE 64

int main(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--internal-role") || strcmp(argv[2], "uplink")) {
		fputs("vigild-uplink: the uplink of vigild, which starts it; not to be run by hand\n", stderr);
		return EX_USAGE;
	}
	return uplink_main();
}
