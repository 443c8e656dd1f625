/*
 * outdir.c - open or create the output directory without following
 * symbolic links, and hand over only a directory created here (see
 * outdir.h).
 *
 * Runs in the monitor during start-up, as root.
 */
#include "outdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
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

/* One component below dfd, as a directory (O_PATH), never through a symlink. */
static int open_component(int dfd, const char *name)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, dfd, name, &how, sizeof(how));

	return fd < 0 ? -errno : fd;
}

/* Whether uid:gid (no supplementary groups) may create files in st. */
static bool writable_by(const struct stat *st, uid_t uid, gid_t gid)
{
	mode_t bits = st->st_uid == uid ? st->st_mode >> 6 : st->st_gid == gid ? st->st_mode >> 3
										: st->st_mode;

	return (bits & 03) == 03; /* write and search */
}

static int check_existing(int fd, const char *path, uid_t uid, gid_t gid, const char *user,
			  char *why, size_t why_len)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return reason(-errno, why, why_len, "%s: %s", path, strerror(errno));
	/*
	 * Profiles hold every process's stacks and names: whoever else owns
	 * or may write the directory could read, forge or delete them (or
	 * plant a FIFO where the collector writes).
	 */
	if (st.st_uid != 0 && st.st_uid != uid)
		return reason(-EACCES, why, why_len,
			      "%s is owned by uid %u, neither root nor %s: that user could read, forge or "
			      "delete profiles; give a directory root or %s owns (or a path that does not "
			      "exist yet)", path, (unsigned)st.st_uid, user, user);
	if ((st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && st.st_gid != gid))
		return reason(-EACCES, why, why_len,
			      "%s (mode %04o, group %u) is writable by %s: they could read, forge or "
			      "delete profiles; chmod %s %s", path, (unsigned)(st.st_mode & 07777),
			      (unsigned)st.st_gid, st.st_mode & S_IWOTH ? "every user" : "its group",
			      st.st_mode & S_IWOTH ? "o-w" : "g-w", path);
	if (writable_by(&st, uid, gid))
		return 0;
	if (st.st_uid == uid)
		return reason(-EACCES, why, why_len,
			      "%s (owner %s, mode %04o) is not writable by its owner: chmod u+rwx %s", path,
			      user, (unsigned)(st.st_mode & 07777), path);
	return reason(-EACCES, why, why_len,
		      "%s (owner uid %u, mode %04o) is not writable by user %s, and vigild hands over only "
		      "a directory it creates itself: chown %s: %s (or give a path that does not exist yet)",
		      path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), user, user, path);
}

/* Whether the directory fd holds nothing (fd's position is not used). */
static bool is_empty(int fd)
{
	int d = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = d >= 0 ? fdopendir(d) : NULL;
	struct dirent *de;
	bool empty = true;

	if (!dir) {
		if (d >= 0)
			close(d);
		return false;
	}
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(dir);
	return empty;
}

/* The directory just made, if it is the one made: hand it to uid:gid. */
static int hand_over(int fd, const char *path, uid_t uid, gid_t gid, const char *user, char *why,
		     size_t why_len)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return reason(-errno, why, why_len, "%s: %s", path, strerror(errno));
	/*
	 * What was made is ours, 0700 (or less, by the umask) and empty; the
	 * parent was checked to let no one else swap it meanwhile, and this is
	 * the second line of that defence.
	 */
	if (st.st_uid != geteuid() || (st.st_mode & 07077) || !is_empty(fd))
		return 1; /* not what was made: treat it as any existing directory */
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0750) < 0)
		return reason(-errno, why, why_len, "cannot hand %s to user %s: %s", path, user,
			      strerror(errno));
	return 0;
}

/*
 * The directory the output directory is to be created in: if anyone but
 * root could rename entries in it (its owner is another user, or group or
 * others may write it and it is not sticky), they could swap what vigild
 * makes for another directory before it is handed over.
 */
static int safe_parent(int dfd, const char *path, const char *name_at, char *why, size_t why_len)
{
	int n = name_at > path ? (int)(name_at - path) : 1;
	struct stat st;

	if (fstat(dfd, &st) < 0)
		return reason(-errno, why, why_len, "%.*s: %s", n, path, strerror(errno));
	if (st.st_uid == 0 && (!(st.st_mode & (S_IWGRP | S_IWOTH)) || (st.st_mode & S_ISVTX)))
		return 0;
	return reason(-EACCES, why, why_len,
		      "%.*s (owner uid %u, mode %04o) lets %s rename what vigild would create in it: "
		      "create %s yourself, owned by root or vigild's user and writable by no one else, "
		      "or choose another place", n, path, (unsigned)st.st_uid,
		      (unsigned)(st.st_mode & 07777), st.st_uid != 0 ? "its owner" : "other users", path);
}

/* Whether nothing but slashes and "." components follows. */
static bool last_component(const char *rest)
{
	for (;;) {
		rest += strspn(rest, "/");
		if (rest[0] == '.' && (rest[1] == '/' || !rest[1]))
			rest++;
		else
			return !*rest;
	}
}

static int component_error(int err, const char *path, const char *end, char *why, size_t why_len)
{
	int n = (int)(end - path);

	if (err == -ELOOP)
		return reason(err, why, why_len, "%.*s is a symbolic link, and vigild follows none in "
			      "--output: give the directory's real path", n, path);
	if (err == -ENOTDIR)
		return reason(err, why, why_len, "%.*s is not a directory", n, path);
	return reason(err, why, why_len, "%.*s: %s", n, path, strerror(-err));
}

int outdir_open(const char *path, uid_t uid, gid_t gid, const char *user, int *ret_fd,
		bool *ret_created, char *why, size_t why_len)
{
	char name[NAME_MAX + 1];
	const char *p = path, *end;
	bool created = false;
	int dfd, fd, rc;

	if (!path || !*path)
		return reason(-EINVAL, why, why_len, "empty path");
	if (strlen(path) >= PATH_MAX)
		return reason(-ENAMETOOLONG, why, why_len, "path too long");
	dfd = open(*path == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return reason(-errno, why, why_len, "%s: %s", *path == '/' ? "/" : ".", strerror(errno));

	for (; (p += strspn(p, "/"), *p); p = end) {
		size_t len;
		bool last;

		end = strchrnul(p, '/');
		len = (size_t)(end - p);
		if (len == 1 && *p == '.')
			continue;
		if (len > NAME_MAX) {
			close(dfd);
			return reason(-ENAMETOOLONG, why, why_len, "%.*s: name too long", (int)(end - path),
				      path);
		}
		memcpy(name, p, len);
		name[len] = '\0';
		last = last_component(end);
		created = false;
		fd = open_component(dfd, name);
		if (fd == -ENOENT && last && (rc = safe_parent(dfd, path, p, why, why_len)) < 0) {
			close(dfd);
			return rc;
		}
		if (fd == -ENOENT) {
			/* 0700 until handed over: nobody else can put anything in it */
			if (mkdirat(dfd, name, last ? 0700 : 0755) == 0) {
				created = last;
			} else if (errno != EEXIST) {
				rc = -errno;
				close(dfd);
				return reason(rc, why, why_len, "cannot create %.*s: %s", (int)(end - path),
					      path, strerror(-rc));
			}
			fd = open_component(dfd, name);
		}
		close(dfd);
		if (fd < 0)
			return component_error(fd, path, end, why, why_len);
		dfd = fd;
	}

	/* Every component was a directory reached without a symlink: open it. */
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd < 0 ? reason(-errno, why, why_len, "%s: %s", path, strerror(errno)) : 0;
	close(dfd);
	if (rc)
		return rc;
	rc = created ? hand_over(fd, path, uid, gid, user, why, why_len) : 1;
	if (rc == 1) {
		created = false;
		rc = check_existing(fd, path, uid, gid, user, why, why_len);
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*ret_fd = fd;
	if (ret_created)
		*ret_created = created;
	return 0;
}
