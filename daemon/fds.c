/*
 * fds.c - helpers for file descriptors and arrays of them (see fds.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fds.h"

void fds_close(const int *fds, size_t n)
{
	for (size_t i = 0; fds && i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int fds_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fds_create_new(int dirfd, const char *name, mode_t mode)
{
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
	int fd = openat(dirfd, name, flags, mode);

	if (fd < 0 && errno == EEXIST && unlinkat(dirfd, name, 0) == 0)
		fd = openat(dirfd, name, flags, mode);
	return fd < 0 ? -errno : fd;
}
