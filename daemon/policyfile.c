/*
 * policyfile.c - open the policy file without following symbolic links,
 * and only if root owns it and no one else may write it (see
 * policyfile.h).
 *
 * Runs in the monitor, as root at start-up and as the dropped monitor on
 * SIGHUP (its seccomp filter allows openat, openat2, fstat, newfstatat).
 */
#include "policyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int reason(int err, char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return err;
}

/*
 * For the message only: the first prefix of path that is a symbolic link
 * (its length), or the whole path when none is found any more.
 */
static int symlink_prefix(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	struct stat st;

	if (len >= sizeof(buf))
		return (int)len;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (i < len && buf[i] != '/')
			continue;
		if (buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		if (fstatat(AT_FDCWD, buf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			return (int)i;
		buf[i] = path[i];
	}
	return (int)len;
}

int policyfile_open(const char *path, int *ret_fd, char *why, size_t why_len)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	char self[64];
	struct stat st;
	int pfd, fd;

	if (!path || !*path)
		return reason(-EINVAL, why, why_len, "empty path");
	pfd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
	if (pfd < 0 && errno == ELOOP)
		return reason(-ELOOP, why, why_len, "%.*s is a symbolic link, and vigild follows none to "
			      "its policy: give the file's real path", symlink_prefix(path), path);
	if (pfd < 0)
		return reason(-errno, why, why_len, "%s: %s", path, strerror(errno));
	if (fstat(pfd, &st) < 0) {
		fd = -errno;
		close(pfd);
		return reason(fd, why, why_len, "%s: %s", path, strerror(-fd));
	}
	if (!S_ISREG(st.st_mode)) {
		close(pfd);
		return reason(-EINVAL, why, why_len, "%s is not a regular file", path);
	}
	if (st.st_uid != 0) {
		close(pfd);
		return reason(-EPERM, why, why_len, "%s is owned by uid %u, not root, so that user could "
			      "change the policy: chown root: %s", path, (unsigned)st.st_uid, path);
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		close(pfd);
		return reason(-EPERM, why, why_len, "%s (mode %04o) is writable by %s: chmod go-w %s", path,
			      (unsigned)(st.st_mode & 07777),
			      (st.st_mode & S_IWGRP) && (st.st_mode & S_IWOTH) ? "group and others"
			      : st.st_mode & S_IWGRP ? "its group" : "others", path);
	}
	/* Known to be a root-owned regular file: now open it for reading. */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		fd = -errno;
	close(pfd);
	if (fd < 0)
		return reason(fd, why, why_len, "%s: %s", path, strerror(-fd));
	*ret_fd = fd;
	return 0;
}
