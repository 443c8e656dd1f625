/*
 * vigild-collector.c - the collector's program: vigild's monitor runs it,
 * as the unprivileged user, with the privilege-separation socket as its
 * only open descriptor (monitor.c, start_worker).  It is a program of its
 * own so that it maps only the libraries its process uses (workerexe.h).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "collector.h"
#include "unwind.h"

#define EX_USAGE 64

/*
 * The program's sigprocmask, which libunwind's calls bind to: while
 * unwind_stack() runs it changes nothing and reports an empty mask, which
 * libunwind then "restores" (unwind.h, unwind_active, says why); every
 * other call (ours, the libraries') is pthread_sigmask's, which is what
 * the C library's sigprocmask is.
 */
int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	int e;

	if (unwind_active()) {
		if (old)
			sigemptyset(old);
		return 0;
	}
	e = pthread_sigmask(how, set, old);
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--internal-role") || strcmp(argv[2], "collector")) {
		fputs("vigild-collector: the collector of vigild, which starts it; not to be run by hand\n",
		      stderr);
		return EX_USAGE;
	}
	return collector_main();
}
