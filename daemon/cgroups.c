/*
 * cgroups.c - cgroup v2 id -> path (see cgroups.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroups.h"

#define MAX_CGROUPS 200000
#define MAX_DEPTH 64
#define RESCAN_NS 1000000000ull

struct cg {
	uint64_t id;
	char *path;
	bool live; /* seen by the last scan (not only remembered) */
};

struct cgroups {
	char root[PATH_MAX];
	struct cg *v; /* sorted by id after a scan */
	size_t n, cap;
	uint64_t last_scan_ns;
	bool scanned;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int cgroups_find_mount(const char *mountinfo, char *ret_path, size_t len)
{
	const char *line = mountinfo;

	/* mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] - FSTYPE SRC OPTS */
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t ll = nl ? (size_t)(nl - line) : strlen(line);
		char buf[4096], mnt[PATH_MAX];
		const char *sep;

		if (ll < sizeof(buf)) {
			memcpy(buf, line, ll);
			buf[ll] = '\0';
			sep = strstr(buf, " - ");
			if (sep && strncmp(sep + 3, "cgroup2 ", 8) == 0 &&
			    sscanf(buf, "%*s %*s %*s %*s %4095s", mnt) == 1) {
				if (strlen(mnt) >= len)
					return -ENAMETOOLONG;
				strcpy(ret_path, mnt);
				return 0;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

static int add(struct cgroups *c, uint64_t id, const char *path)
{
	if (c->n >= MAX_CGROUPS)
		return -E2BIG;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct cg *v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n].path = strdup(path);
	if (!c->v[c->n].path)
		return -ENOMEM;
	c->v[c->n].live = true;
	c->v[c->n++].id = id;
	return 0;
}

/* Depth-first walk from dirfd (which it closes). rel is the path so far. */
static int walk(struct cgroups *c, int dfd, char *rel, size_t rlen, int depth)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (depth > MAX_DEPTH) {
		close(dfd);
		return 0;
	}
	d = fdopendir(dfd);
	if (!d) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		size_t nl;
		int fd;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		nl = strlen(de->d_name);
		if (rlen + 1 + nl >= PATH_MAX)
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue; /* removed while we looked */
		if (fstat(fd, &st) < 0) {
			close(fd);
			continue;
		}
		rel[rlen] = '/';
		memcpy(rel + rlen + 1, de->d_name, nl + 1);
		rc = add(c, st.st_ino, rel);
		if (rc) {
			close(fd);
			break;
		}
		rc = walk(c, fd, rel, rlen + 1 + nl, depth + 1);
		rel[rlen] = '\0';
		if (rc)
			break;
	}
	closedir(d);
	return rc;
}

static int cmp_cg(const void *a, const void *b)
{
	const struct cg *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Ids are never reused (64-bit kernfs ids), so cgroups removed since the last
 * scan keep their names: their samples may still be waiting to be written.
 */
int cgroups_rescan(struct cgroups *c)
{
	char rel[PATH_MAX] = "";
	struct cg *old = c->v;
	size_t nold = c->n;
	struct stat st;
	int fd, rc;

	c->v = NULL;
	c->n = c->cap = 0;
	c->last_scan_ns = now_ns();
	c->scanned = true;
	fd = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto merge;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		goto merge;
	}
	rc = add(c, st.st_ino, "/");
	if (rc) {
		close(fd);
		goto merge;
	}
	rc = walk(c, fd, rel, 0, 0);
merge:
	qsort(c->v, c->n, sizeof(*c->v), cmp_cg);
	{
		size_t nnew = c->n;

		for (size_t i = 0; i < nold; i++) {
			bool found = false;
			size_t lo = 0, hi = nnew;

			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (c->v[mid].id == old[i].id) {
					found = true;
					break;
				}
				if (c->v[mid].id < old[i].id)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (!found && c->n < MAX_CGROUPS && add(c, old[i].id, old[i].path) == 0)
				c->v[c->n - 1].live = false;
		}
	}
	for (size_t i = 0; i < nold; i++)
		free(old[i].path);
	free(old);
	qsort(c->v, c->n, sizeof(*c->v), cmp_cg);
	return rc;
}

int cgroups_new(const char *root, struct cgroups **ret)
{
	struct cgroups *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	if (root) {
		if (strlen(root) >= sizeof(c->root)) {
			free(c);
			return -ENAMETOOLONG;
		}
		strcpy(c->root, root);
	} else {
		char *buf = malloc(1 << 20);
		FILE *f = fopen("/proc/self/mountinfo", "re");
		size_t n = 0;
		int rc;

		if (buf && f)
			n = fread(buf, 1, (1 << 20) - 1, f);
		if (f)
			fclose(f);
		if (!buf) {
			free(c);
			return -ENOMEM;
		}
		buf[n] = '\0';
		rc = cgroups_find_mount(buf, c->root, sizeof(c->root));
		free(buf);
		if (rc) {
			free(c);
			return rc;
		}
	}
	*ret = c;
	return 0;
}

const char *cgroups_root(const struct cgroups *c)
{
	return c->root;
}

static const char *find(const struct cgroups *c, uint64_t id)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->v[mid].id == id)
			return c->v[mid].path;
		if (c->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *cgroups_path(struct cgroups *c, uint64_t id)
{
	const char *p = find(c, id);

	if (p)
		return p;
	if (c->scanned && now_ns() - c->last_scan_ns < RESCAN_NS)
		return NULL;
	cgroups_rescan(c);
	return find(c, id);
}

int cgroups_foreach_live(const struct cgroups *c,
			 int (*fn)(void *ctx, uint64_t id, const char *path), void *ctx)
{
	for (size_t i = 0; i < c->n; i++) {
		int rc;

		if (!c->v[i].live)
			continue;
		rc = fn(ctx, c->v[i].id, c->v[i].path);
		if (rc)
			return rc;
	}
	return 0;
}

int cgroups_usage_usec(const struct cgroups *c, const char *path, uint64_t *ret_usec)
{
	char file[PATH_MAX + 32], buf[512];
	unsigned long long v;
	ssize_t n;
	char *p;
	int fd;

	if (snprintf(file, sizeof(file), "%s%s/cpu.stat", c->root, strcmp(path, "/") ? path : "") >=
	    (int)sizeof(file))
		return -ENAMETOOLONG;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -ENODATA;
	buf[n] = '\0';
	p = strstr(buf, "usage_usec ");
	if (!p || (p != buf && p[-1] != '\n') || sscanf(p + 11, "%llu", &v) != 1)
		return -ENODATA;
	*ret_usec = v;
	return 0;
}

void cgroups_free(struct cgroups *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].path);
	free(c->v);
	free(c);
}
