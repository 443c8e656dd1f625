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

/*
 * The worker program beside self, whose identity is me (fstat of the
 * running image or of self).  The directory is opened without following
 * a symbolic link and must not let anyone but its owner (root, or self's
 * owner) change what it holds; the program is opened in it.
 */
static int open_beside(const struct stat *me, const char *self, const char *role, int *ret_fd,
		       char *why, size_t whylen)
{
	char dir[PATH_MAX], path[PATH_MAX];
	const char *slash = strrchr(self, '/');
	struct stat st, dst;
	int dfd, fd, n;

	if (!role || !*role || !ret_fd || strchr(role, '/'))
		return -EINVAL;
	n = snprintf(path, sizeof(path), "%s-%s", self, role);
	if (n < 0 || (size_t)n >= sizeof(path) || !slash) {
		snprintf(why, whylen, "%s-%s: %s", self, role,
			 slash ? "path too long" : "not an absolute path");
		return slash ? -ENAMETOOLONG : -EINVAL;
	}
	snprintf(dir, sizeof(dir), "%.*s", slash == self ? 1 : (int)(slash - self), self);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || fstat(dfd, &dst) < 0) {
		int e = errno;

		if (dfd >= 0)
			close(dfd);
		snprintf(why, whylen, "%s: %s", dir, strerror(e));
		return -e;
	}
	if ((dst.st_uid != 0 && dst.st_uid != me->st_uid) ||
	    ((dst.st_mode & (S_IWGRP | S_IWOTH)) && !(dst.st_mode & S_ISVTX))) {
		snprintf(why, whylen, "%s: the directory of vigild's programs may be changed by others "
			 "(owner uid %u, mode %04o): it must be root's or vigild's owner's, writable by "
			 "no one else", dir, (unsigned)dst.st_uid, (unsigned)(dst.st_mode & 07777));
		close(dfd);
		return -EPERM;
	}
	fd = openat(dfd, path + (slash - self) + 1, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	close(dfd);
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
	/* vigild's owner, and root or this process's user: never the workers' user */
	if (st.st_uid != me->st_uid || (st.st_uid != 0 && st.st_uid != geteuid())) {
		snprintf(why, whylen, "%s: owned by uid %u, not by %s's owner (uid %u) and root", path,
			 (unsigned)st.st_uid, self, (unsigned)me->st_uid);
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

/* The identity (stat) of path, following its last link or not (flags: fstatat's). */
static int identity(const char *path, int flags, struct stat *ret, char *why, size_t whylen)
{
	int e;

	if (fstatat(AT_FDCWD, path, ret, flags) == 0)
		return 0;
	e = errno;
	snprintf(why, whylen, "%s: %s", path, strerror(e));
	return -e;
}

int workerexe_open(const char *self, const char *role, int *ret_fd, char *why, size_t whylen)
{
	struct stat me;
	int r;

	if (!self)
		return -EINVAL;
	r = identity(self, AT_SYMLINK_NOFOLLOW, &me, why, whylen);
	return r ? r : open_beside(&me, self, role, ret_fd, why, whylen);
}

int workerexe_open_self(const char *role, int *ret_fd, char *why, size_t whylen)
{
	char self[PATH_MAX];
	struct stat me;
	ssize_t n;
	int r;

	/* The running image itself (the magic link), not whatever its path names now. */
	if ((r = identity("/proc/self/exe", 0, &me, why, whylen)) < 0)
		return r;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		int e = n < 0 ? errno : EIO;

		snprintf(why, whylen, "/proc/self/exe: %s", strerror(e));
		return -e;
	}
	self[n] = '\0';
	return open_beside(&me, self, role, ret_fd, why, whylen);
}
