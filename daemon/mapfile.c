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
#include <limits.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "procmaps.h"

static bool is_mapped_file(const struct stat *st, const struct procmap *mp)
{
	return S_ISREG(st->st_mode) && st->st_ino == mp->inode &&
	       st->st_dev == makedev(mp->dev_major, mp->dev_minor);
}

bool mapfile_debuglink_name_ok(const char *name)
{
	size_t n = strnlen(name, MAPFILE_DEBUGLINK_MAX + 1);

	if (n == 0 || n > MAPFILE_DEBUGLINK_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '.' || *c == '_' || *c == '+' || *c == '-'))
			return false;
	return true;
}

/* path inside root as O_PATH, no symlink: the fd, or -errno. */
static int open_in_root(int root, const char *path)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));

	return fd < 0 ? -errno : fd;
}

/* File systems whose files are views of processes or of the kernel, never debug files. */
static bool pseudo_fs(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return true;
	switch ((unsigned long)sf.f_type) {
	case PROC_SUPER_MAGIC:
	case SYSFS_MAGIC:
	case DEBUGFS_MAGIC:
	case TRACEFS_MAGIC:
	case SECURITYFS_MAGIC:
	case BPF_FS_MAGIC:
	case CGROUP_SUPER_MAGIC:
	case CGROUP2_SUPER_MAGIC:
	case NSFS_MAGIC:
	case SELINUX_MAGIC:
	case SMACK_MAGIC:
	case HUGETLBFS_MAGIC:
	case PSTOREFS_MAGIC:
	case EFIVARFS_MAGIC:
	case RDTGROUP_SUPER_MAGIC:
	case DEVPTS_SUPER_MAGIC:
	case BINDERFS_SUPER_MAGIC:
		return true;
	}
	return false;
}

/* Whether fd is a directory every user may pass through. */
static bool searchable_by_all(int fd)
{
	struct stat d;

	return fstat(fd, &d) == 0 && S_ISDIR(d.st_mode) && (d.st_mode & S_IXOTH);
}

/*
 * The file at path (absolute, in the host's own root) as an O_PATH fd, if
 * every user of the host could read it: walked one component at a time
 * from "/", each directory checked searchable by others before the next
 * step is taken from it (so a directory swapped after its check is never
 * walked through), no symlink, no "." or "..", and the file readable by
 * others.  -ENOENT (or -errno) otherwise.
 */
static int open_readable_by_all(int root, const char *path, struct stat *ret_st)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	char comp[NAME_MAX + 1];
	const char *p = path;
	int dfd, fd;

	dfd = fcntl(root, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return -errno;
	for (;;) {
		const char *next;
		size_t len;

		if (!searchable_by_all(dfd)) {
			close(dfd);
			return -ENOENT;
		}
		while (*p == '/')
			p++;
		next = strchr(p, '/');
		len = next ? (size_t)(next - p) : strlen(p);
		if (len == 0 || len > NAME_MAX || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.')) {
			close(dfd);
			return -EINVAL;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		how.flags = O_PATH | O_CLOEXEC | (next ? O_DIRECTORY : 0);
		fd = (int)syscall(SYS_openat2, dfd, comp, &how, sizeof(how));
		close(dfd);
		if (fd < 0)
			return -errno;
		if (!next)
			break;
		dfd = fd;
		p = next;
	}
	if (fstat(fd, ret_st) < 0 || !S_ISREG(ret_st->st_mode) || !(ret_st->st_mode & S_IROTH) ||
	    pseudo_fs(fd)) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

/*
 * The monitor's own root, as an O_PATH fd, if pid lives in the monitor's
 * mount namespace; -EACCES otherwise.  Everything after is resolved from
 * that root, never from pid's, so that pid exiting, its number being
 * reused or the process changing namespace in between changes nothing.
 * (Init's namespace would be the host's even under a unit's PrivateTmp=,
 * but /proc/1/ns may not be readable, as on the test machines.)
 */
static int host_root(uint32_t pid)
{
	char buf[64];
	struct stat a, b;
	int root;

	snprintf(buf, sizeof(buf), "/proc/%" PRIu32 "/ns/mnt", pid);
	if (stat(buf, &b) < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	if (stat("/proc/self/ns/mnt", &a) < 0)
		return -errno;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -EACCES;
	root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	return root < 0 ? -errno : root;
}

int mapfile_open_debuglink(uint32_t pid, const struct procmap *mp, const char *name)
{
	char buf[64], dir[PROCMAPS_MAX_PATH + 1], cand[3][PROCMAPS_MAX_PATH + MAPFILE_DEBUGLINK_MAX + 32];
	const char *slash;
	struct stat bin, st, got;
	int root, pfd, fd = -ENOENT;

	if (!mapfile_debuglink_name_ok(name) || mp->deleted || mp->path[0] != '/' || strchr(mp->path, '\\'))
		return -EINVAL;
	slash = strrchr(mp->path, '/');
	if ((size_t)(slash - mp->path) > PROCMAPS_MAX_PATH)
		return -EINVAL;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - mp->path), mp->path);
	/* cand[] has room for the longest dir and name: no truncation */
	snprintf(cand[0], sizeof(cand[0]), "%s/%s", dir, name);
	snprintf(cand[1], sizeof(cand[1]), "%s/.debug/%s", dir, name);
	snprintf(cand[2], sizeof(cand[2]), "/usr/lib/debug%s/%s", dir, name);

	/*
	 * "Readable by every user" is only a claim about the host's own
	 * view: in another mount namespace (a container, PrivateTmp=, a
	 * sandbox) paths and modes of directories are not what users of the
	 * host meet on the way.  Those processes' debug files are found by
	 * build-id only.
	 */
	root = host_root(pid);
	if (root < 0)
		return root;
	/* The mapped file itself, as the host sees its path: for its owner. */
	pfd = open_in_root(root, mp->path);
	if (pfd < 0 || fstat(pfd, &bin) < 0 || !is_mapped_file(&bin, mp)) {
		if (pfd >= 0)
			close(pfd);
		close(root);
		return pfd < 0 ? pfd : -ESTALE;
	}
	close(pfd);
	for (size_t i = 0; i < 3 && fd < 0; i++) {
		pfd = open_readable_by_all(root, cand[i], &st);
		if (pfd < 0)
			continue;
		if (st.st_uid == bin.st_uid && !(st.st_ino == bin.st_ino && st.st_dev == bin.st_dev)) {
			snprintf(buf, sizeof(buf), "/proc/self/fd/%d", pfd);
			fd = open(buf, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
			/* the same file, still readable by others */
			if (fd >= 0 && (fstat(fd, &got) < 0 || got.st_dev != st.st_dev ||
					got.st_ino != st.st_ino || !(got.st_mode & S_IROTH))) {
				close(fd);
				fd = -ENOENT;
			} else if (fd < 0) {
				fd = -ENOENT;
			}
		}
		close(pfd);
	}
	close(root);
	return fd;
}

/*
 * Whether mp's path is one to resolve: 0, -ENOENT (deleted) or -EINVAL
 * (not absolute, or holding a backslash: mapfile.h).
 */
static int path_usable(const struct procmap *mp)
{
	if (mp->deleted)
		return -ENOENT;
	if (mp->path[0] != '/' || strchr(mp->path, '\\'))
		return -EINVAL;
	return 0;
}

int mapfile_root(uint32_t pid)
{
	char buf[64];
	int root;

	snprintf(buf, sizeof(buf), "/proc/%" PRIu32 "/root", pid);
	root = open(buf, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return root;
}

int mapfile_open_at(int root, const struct procmap *mp, struct stat *ret_st)
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
	int pfd, fd = path_usable(mp);

	if (fd < 0)
		return fd;
	pfd = (int)syscall(SYS_openat2, root, mp->path, &how, sizeof(how));
	if (pfd < 0)
		return -errno;
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

int mapfile_open(uint32_t pid, const struct procmap *mp, struct stat *ret_st)
{
	int root, fd = path_usable(mp);

	if (fd < 0)
		return fd; /* before /proc is touched */
	root = mapfile_root(pid);
	if (root < 0)
		return root;
	fd = mapfile_open_at(root, mp, ret_st);
	close(root);
	return fd;
}
