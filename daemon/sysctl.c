/*
 * sysctl.c - kernel settings read from /proc/sys (see sysctl.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "sysctl.h"

/* The first line of /proc/sys/NAME into buf (NUL-terminated): 0 or -errno. */
static int read_setting(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	return 0;
}

unsigned sysctl_max_sample_rate(void)
{
	char buf[32];
	unsigned long v;

	if (read_setting("/proc/sys/kernel/perf_event_max_sample_rate", buf, sizeof(buf)) < 0)
		return SYSCTL_SAMPLE_RATE_FALLBACK;
	v = strtoul(buf, NULL, 10);
	return v && v <= 0xffffffffu ? (unsigned)v : SYSCTL_SAMPLE_RATE_FALLBACK;
}

int sysctl_perf_paranoid(int *ret_level)
{
	char buf[32], *end;
	long v;
	int r;

	r = read_setting("/proc/sys/kernel/perf_event_paranoid", buf, sizeof(buf));
	if (r < 0)
		return r;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || v < INT_MIN || v > INT_MAX)
		return -EINVAL;
	*ret_level = (int)v;
	return 0;
}
