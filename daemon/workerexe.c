/*
 * workerexe.c - find and open the worker programs (workerexe.h).
 *
 * Runs in the monitor, as root, during start-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workerexe.h"

int workerexe_open(const char *self, const char *role, int *ret_fd, char *why, size_t whylen)
{
	char path[PATH_MAX];
	struct stat me, st;
	int fd, n;

	if (!self || !role || !*role || !ret_fd || strchr(role, '/'))
		return -EINVAL;
	n = snprintf(path, sizeof(path), "%s-%s", self, role);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(why, whylen, "%s-%s: path too long", self, role);
		return -ENAMETOOLONG;
	}
	if (stat(self, &me) < 0) {
		int e = errno;

		snprintf(why, whylen, "%s: %s", self, strerror(e));
		return -e;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int e = errno;

		if (e == ELOOP)
			snprintf(why, whylen, "%s: a symbolic link; the %s program must be a file beside %s",
				 path, role, self);
		else
			snprintf(why, whylen, "%s: %s (the %s program is installed beside %s)", path,
				 strerror(e), role, self);
		return e == ELOOP ? -EPERM : -e;
	}
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		snprintf(why, whylen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s: not a regular file", path);
		goto refused;
	}
	if (st.st_uid != me.st_uid) {
		snprintf(why, whylen, "%s: owned by uid %u, not by %s's owner (uid %u)", path,
			 (unsigned)st.st_uid, self, (unsigned)me.st_uid);
		goto refused;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, whylen, "%s: writable by %s (mode %04o): chmod go-w it", path,
			 st.st_mode & S_IWOTH ? "others" : "its group", (unsigned)(st.st_mode & 07777));
		goto refused;
	}
	if (!(st.st_mode & S_IXOTH)) {
		snprintf(why, whylen, "%s: not executable by others (mode %04o), and the %s runs as an "
			 "unprivileged user: chmod o+x it", path, (unsigned)(st.st_mode & 07777), role);
		goto refused;
	}
	*ret_fd = fd;
	return 0;
refused:
	close(fd);
	return -EPERM;
}

int workerexe_open_self(const char *role, int *ret_fd, char *why, size_t whylen)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0) {
		int e = n < 0 ? errno : EIO;

		snprintf(why, whylen, "/proc/self/exe: %s", strerror(e));
		return -e;
	}
	self[n] = '\0';
	return workerexe_open(self, role, ret_fd, why, whylen);
}
