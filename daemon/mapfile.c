/*
 * mapfile.c - open the file behind one executable mapping of a process
 * (see mapfile.h).
 *
 * Runs in the monitor, as uid vigil with CAP_SYS_PTRACE and
 * CAP_DAC_READ_SEARCH, under its seccomp filter (openat, openat2, fstat).
 */
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "procmaps.h"

static bool is_mapped_file(const struct stat *st, const struct procmap *mp)
{
	return S_ISREG(st->st_mode) && st->st_ino == mp->inode &&
	       st->st_dev == makedev(mp->dev_major, mp->dev_minor);
}

int mapfile_open(uint32_t pid, const struct procmap *mp, struct stat *ret_st)
{
	/*
	 * Resolve inside the process's root (a container's absolute paths
	 * stay inside it), following no symlink at all, and only as O_PATH.
	 */
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	char buf[64];
	struct stat st;
	int root, pfd, fd;

	if (mp->deleted)
		return -ENOENT;
	if (mp->path[0] != '/' || strchr(mp->path, '\\'))
		return -EINVAL;

	snprintf(buf, sizeof(buf), "/proc/%" PRIu32 "/root", pid);
	root = open(buf, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	pfd = (int)syscall(SYS_openat2, root, mp->path, &how, sizeof(how));
	if (pfd < 0)
		pfd = -errno;
	close(root);
	if (pfd < 0)
		return pfd;
	if (fstat(pfd, &st) < 0 || !is_mapped_file(&st, mp)) {
		close(pfd);
		return -ESTALE;
	}
	/* Known to be the mapped regular file: now open it for reading. */
	snprintf(buf, sizeof(buf), "/proc/self/fd/%d", pfd);
	fd = open(buf, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		fd = -errno;
	close(pfd);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || !is_mapped_file(&st, mp)) {
		close(fd);
		return -ESTALE;
	}
	*ret_st = st;
	return fd;
}
