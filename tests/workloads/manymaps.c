/*
 * manymaps - a process with thousands of executable mappings of one file,
 * as any user can make: the first page of its own executable mapped R+X
 * --maps times (each at offset 0, so that no two merge into one mapping),
 * then CPU burnt in manymaps_spin(), forking every --fork-every seconds a
 * child (which inherits every mapping, and is one more process to look
 * at) that burns in manymaps_child_spin() for --child-seconds and exits.
 *
 * Usage: manymaps [--maps N] [--seconds S] [--fork-every S] [--child-seconds S]
 * At exit it prints "children N", the number of children it forked.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vwl.h"

#define CHECK_EVERY 32768

void manymaps_spin(long long end_ns);
void manymaps_child_spin(long long end_ns);

void manymaps_spin(long long end_ns)
{
	do {
		for (volatile long i = 0; i < CHECK_EVERY; i++)
			;
	} while (vwl_mono_ns() < end_ns);
}

void manymaps_child_spin(long long end_ns)
{
	do {
		for (volatile long i = 0; i < CHECK_EVERY; i++)
			;
	} while (vwl_mono_ns() < end_ns);
}

int main(int argc, char **argv)
{
	static const char *const known[] = {"--maps", "--seconds", "--fork-every",
					    "--child-seconds", NULL};
	long maps = (long)vwl_arg(argc, argv, known, "--maps", 16000, 0, 60000);
	double seconds = vwl_arg(argc, argv, known, "--seconds", 10, 0.01, 86400);
	double every = vwl_arg(argc, argv, known, "--fork-every", 0, 0, 86400);
	double child_s = vwl_arg(argc, argv, known, "--child-seconds", 0.3, 0.01, 86400);
	long long end = vwl_mono_ns() + (long long)(seconds * 1e9), next, now;
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC), children = 0;

	if (fd < 0) {
		perror("manymaps: /proc/self/exe");
		return 1;
	}
	for (long i = 0; i < maps; i++) {
		if (mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED) {
			perror("manymaps: mmap");
			return 1;
		}
	}
	close(fd);
	next = every > 0 ? vwl_mono_ns() + (long long)(every * 1e9) : end;
	while ((now = vwl_mono_ns()) < end) {
		if (now >= next) {
			pid_t pid = fork();

			if (pid == 0) {
				manymaps_child_spin(vwl_mono_ns() + (long long)(child_s * 1e9));
				_exit(0);
			}
			if (pid > 0)
				children++;
			next += (long long)(every * 1e9);
		}
		manymaps_spin(now + 10000000LL < next ? now + 10000000LL : next);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	while (wait(NULL) > 0)
		;
	printf("children %d\n", children);
	return 0;
}
