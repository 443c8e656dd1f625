/*
 * sysctl.c - kernel settings read from /proc/sys (see sysctl.h).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "sysctl.h"

unsigned sysctl_max_sample_rate(void)
{
	char buf[32];
	unsigned long v;
	ssize_t n;
	int fd;

	fd = open("/proc/sys/kernel/perf_event_max_sample_rate", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return SYSCTL_SAMPLE_RATE_FALLBACK;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return SYSCTL_SAMPLE_RATE_FALLBACK;
	buf[n] = '\0';
	v = strtoul(buf, NULL, 10);
	return v && v <= 0xffffffffu ? (unsigned)v : SYSCTL_SAMPLE_RATE_FALLBACK;
}
