/*
 * syscalls - spends its time in the kernel: a tight loop of 64 KiB read()s
 * from /dev/zero and getppid(), so that profiles of it must show kernel
 * frames (entry_SYSCALL_64, do_syscall_64, __x64_sys_read, ...) under the
 * user frames syscall_loop -> read_zero.
 *
 * Usage: syscalls [--seconds S]
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "vwl.h"

static char buf[65536];

void read_zero(int fd);
void syscall_loop(int fd, long long end_ns);

void read_zero(int fd)
{
	if (read(fd, buf, sizeof(buf)) < 0)
		perror("syscalls: read /dev/zero");
	(void)getppid();
}

void syscall_loop(int fd, long long end_ns)
{
	do {
		for (int i = 0; i < 64; i++)
			read_zero(fd);
	} while (vwl_mono_ns() < end_ns);
}

int main(int argc, char **argv)
{
	static const char *const known[] = {"--seconds", NULL};
	double seconds = vwl_arg(argc, argv, known, "--seconds", 10, 0.01, 86400);
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		perror("syscalls: /dev/zero");
		return 1;
	}
	syscall_loop(fd, vwl_mono_ns() + (long long)(seconds * 1e9));
	close(fd);
	return 0;
}
