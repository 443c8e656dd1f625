/*
 * procstat.c - a process's start time from /proc/PID/stat (see procstat.h).
 *
 * Runs in the collector and in the monitor: it opens and reads one file of
 * /proc, nothing else.
 */
#include "procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int procstat_start_ticks(uint32_t pid, uint64_t *ret_ticks)
{
	char path[48], buf[1024];
	const char *p, *end;
	uint64_t ticks = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* comm may contain anything, even ") ": the fields follow the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	end = buf + n;
	/* ") S ppid ..." : starttime is field 22, the 20th after ")". */
	for (int field = 2; field < 22 && p; field++)
		p = memchr(p + 1, ' ', (size_t)(end - p - 1));
	if (!p || p + 1 >= end || p[1] < '0' || p[1] > '9')
		return -EINVAL;
	for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
		if (ticks > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		ticks = ticks * 10 + (uint64_t)(*p - '0');
	}
	*ret_ticks = ticks;
	return 0;
}
