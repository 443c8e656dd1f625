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

/*
 * Every directory from the file's up to the root must be owned by root and
 * not writable by group or others, unless sticky (/tmp): whoever may
 * rename entries in one could put another root-owned file (or a hard link
 * to one) in the policy's place.  dir_fd (borrowed) is the file's
 * directory.  0, or -EPERM with the reason.
 */
static int trusted_dirs(int dir_fd, const char *path, char *why, size_t why_len)
{
	struct stat st, up;
	int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return reason(-errno, why, why_len, "%s: %s", path, strerror(errno));
	for (unsigned depth = 0;; depth++) {
		int parent;

		if (fstat(fd, &st) < 0) {
			rc = reason(-errno, why, why_len, "%s: %s", path, strerror(errno));
			break;
		}
		if (st.st_uid != 0 || ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))) {
			rc = reason(-EPERM, why, why_len, "%s: %s above it (owner uid %u, mode %04o) lets "
				    "%s rename files in it, who could put another file in the policy's "
				    "place: keep the policy in a directory tree only root may change",
				    path, depth == 0 ? "the directory" : "a directory", (unsigned)st.st_uid,
				    (unsigned)(st.st_mode & 07777), st.st_uid != 0 ? "its owner" : "others");
			break;
		}
		parent = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (parent < 0) {
			rc = reason(-errno, why, why_len, "%s: %s", path, strerror(errno));
			break;
		}
		if (fstat(parent, &up) < 0 || (up.st_dev == st.st_dev && up.st_ino == st.st_ino)) {
			close(parent);
			break; /* the root */
		}
		close(fd);
		fd = parent;
	}
	close(fd);
	return rc;
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
	{
		/* Its directory, reached the same way (no symlink), and those above. */
		char dir[PATH_MAX];
		const char *slash = strrchr(path, '/');
		int dfd, rc;

		if (!slash)
			snprintf(dir, sizeof(dir), ".");
		else if (slash == path)
			snprintf(dir, sizeof(dir), "/");
		else
			snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		dfd = (int)syscall(SYS_openat2, AT_FDCWD, dir, &(struct open_how){
			.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
			.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS }, sizeof(struct open_how));
		if (dfd < 0) {
			rc = -errno;
			close(pfd);
			return reason(rc, why, why_len, "%s: %s", dir, strerror(-rc));
		}
		rc = trusted_dirs(dfd, path, why, why_len);
		close(dfd);
		if (rc) {
			close(pfd);
			return rc;
		}
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
