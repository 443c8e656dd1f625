/*
 * procmaps.c - parse /proc/PID/maps.
 *
 * Runs in the collector (unprivileged).  The input is treated as untrusted
 * bytes: every read is bounded by the caller's length, never by a NUL, and
 * every field is validated.  A line looks like
 *
 *   7f1c2a000000-7f1c2a021000 r-xp 00001000 08:01 123456   /usr/lib/x.so
 *
 * and the path, which may contain spaces, is the rest of the line after the
 * inode and its padding.  The result is a single allocation: the struct,
 * the array and the path strings, so that procmaps_free() is one free().
 */
#include "procmaps.h"

#include "hexdigit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char DELETED_SUFFIX[] = " (deleted)";

struct cursor {
	const char *p, *end; /* end: the end of the current line */
};

/* 1..maxdigits hex digits. */
static int parse_hex(struct cursor *c, unsigned maxdigits, uint64_t *ret)
{
	uint64_t v = 0;
	unsigned n = 0;
	int d;

	while (c->p < c->end && (d = hexdigit_value(*c->p)) >= 0) {
		if (++n > maxdigits)
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
		c->p++;
	}
	if (n == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_dec(struct cursor *c, uint64_t *ret)
{
	uint64_t v = 0;
	unsigned n = 0;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		unsigned d = (unsigned)(*c->p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
		n++;
		c->p++;
	}
	if (n == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int expect(struct cursor *c, char ch)
{
	if (c->p >= c->end || *c->p != ch)
		return -EINVAL;
	c->p++;
	return 0;
}

static int parse_perm(struct cursor *c, char set, uint32_t bit, uint32_t *prot)
{
	if (c->p >= c->end)
		return -EINVAL;
	if (*c->p == set)
		*prot |= bit;
	else if (*c->p != '-')
		return -EINVAL;
	c->p++;
	return 0;
}

/* Growable scratch state while parsing; paths are arena offsets until the end. */
struct builder {
	struct procmap *maps;
	size_t n, cap;
	char *arena;
	size_t alen, acap;
};

static int arena_add(struct builder *b, const char *s, size_t len, size_t *ret_off)
{
	if (len == 0) {
		*ret_off = 0; /* the arena starts with "" */
		return 0;
	}
	if (b->alen + len + 1 > b->acap) {
		size_t cap = b->acap ? b->acap : 1024;
		char *a;

		while (cap < b->alen + len + 1)
			cap *= 2;
		a = realloc(b->arena, cap);
		if (!a)
			return -ENOMEM;
		b->arena = a;
		b->acap = cap;
	}
	*ret_off = b->alen;
	memcpy(b->arena + b->alen, s, len);
	b->arena[b->alen + len] = '\0';
	b->alen += len + 1;
	return 0;
}

static int parse_line(struct builder *b, const char *line, const char *eol)
{
	struct cursor c = { line, eol };
	struct procmap m = { 0 };
	uint64_t dev_major, dev_minor;
	const char *path;
	size_t plen, off;
	int r;

	if ((r = parse_hex(&c, 16, &m.start)) < 0 || (r = expect(&c, '-')) < 0 ||
	    (r = parse_hex(&c, 16, &m.end)) < 0 || (r = expect(&c, ' ')) < 0)
		return r;
	if (m.start >= m.end)
		return -EINVAL;
	if ((r = parse_perm(&c, 'r', PROT_READ, &m.prot)) < 0 ||
	    (r = parse_perm(&c, 'w', PROT_WRITE, &m.prot)) < 0 ||
	    (r = parse_perm(&c, 'x', PROT_EXEC, &m.prot)) < 0)
		return r;
	if (c.p >= c.end || (*c.p != 'p' && *c.p != 's'))
		return -EINVAL;
	m.shared = *c.p++ == 's';
	if ((r = expect(&c, ' ')) < 0 || (r = parse_hex(&c, 16, &m.offset)) < 0 ||
	    (r = expect(&c, ' ')) < 0 || (r = parse_hex(&c, 8, &dev_major)) < 0 ||
	    (r = expect(&c, ':')) < 0 || (r = parse_hex(&c, 8, &dev_minor)) < 0 ||
	    (r = expect(&c, ' ')) < 0 || (r = parse_dec(&c, &m.inode)) < 0)
		return r;
	m.dev_major = (uint32_t)dev_major;
	m.dev_minor = (uint32_t)dev_minor;

	/* Anything after the inode must be padding and then the path. */
	if (c.p < c.end && *c.p != ' ')
		return -EINVAL;
	while (c.p < c.end && *c.p == ' ')
		c.p++;
	path = c.p;
	plen = (size_t)(c.end - c.p);
	if (plen > PROCMAPS_MAX_PATH || memchr(path, '\0', plen))
		return -EINVAL;
	if (plen >= sizeof(DELETED_SUFFIX) &&
	    memcmp(path + plen - (sizeof(DELETED_SUFFIX) - 1), DELETED_SUFFIX,
		   sizeof(DELETED_SUFFIX) - 1) == 0) {
		m.deleted = true;
		plen -= sizeof(DELETED_SUFFIX) - 1;
	}
	if ((r = arena_add(b, path, plen, &off)) < 0)
		return r;
	m.path = (const char *)(uintptr_t)off; /* fixed up in finish() */

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct procmap *a = reallocarray(b->maps, cap, sizeof(*a));

		if (!a)
			return -ENOMEM;
		b->maps = a;
		b->cap = cap;
	}
	b->maps[b->n++] = m;
	return 0;
}

static int cmp_start(const void *a, const void *b)
{
	const struct procmap *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Pack the builder into one allocation: struct, array, arena. */
static int finish(struct builder *b, struct procmaps **ret)
{
	size_t hdr = sizeof(struct procmaps);
	size_t arr = b->n * sizeof(struct procmap);
	struct procmaps *m;
	char *arena;
	bool sorted = true;

	m = malloc(hdr + arr + b->alen);
	if (!m)
		return -ENOMEM;
	m->maps = (struct procmap *)(void *)((char *)m + hdr);
	m->n = b->n;
	arena = (char *)m + hdr + arr;
	memcpy(arena, b->arena, b->alen);
	for (size_t i = 0; i < b->n; i++) {
		m->maps[i] = b->maps[i];
		m->maps[i].path = arena + (uintptr_t)b->maps[i].path;
		if (i > 0 && m->maps[i].start < m->maps[i - 1].start)
			sorted = false;
	}
	if (!sorted)
		qsort(m->maps, m->n, sizeof(*m->maps), cmp_start);
	*ret = m;
	return 0;
}

int procmaps_parse(const char *buf, size_t len, struct procmaps **ret_maps)
{
	struct builder b = { 0 };
	const char *p = buf, *end = buf + len;
	size_t lines = 0;
	int r;

	if (!ret_maps || (!buf && len))
		return -EINVAL;
	/* Offset 0 of the arena is the "" every anonymous mapping shares. */
	b.arena = malloc(1024);
	if (!b.arena) {
		r = -ENOMEM;
		goto out;
	}
	b.arena[0] = '\0';
	b.alen = 1;
	b.acap = 1024;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (!eol)
			eol = end;
		if (++lines > PROCMAPS_MAX_LINES) {
			r = -E2BIG;
			goto out;
		}
		if ((r = parse_line(&b, p, eol)) < 0)
			goto out;
		p = eol < end ? eol + 1 : end;
	}
	r = finish(&b, ret_maps);
out:
	free(b.maps);
	free(b.arena);
	return r;
}

int procmaps_read_fd(int fd, struct procmaps **ret_maps)
{
	char *buf = NULL;
	size_t len = 0, cap = 16384;
	int r;

	if (fd < 0 || !ret_maps)
		return -EINVAL;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb;

			if (cap >= PROCMAPS_MAX_FILE) {
				r = -E2BIG;
				goto out;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				r = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* An exiting process's mm may vanish mid-read. */
			r = errno == ESRCH ? -ESRCH : -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	r = procmaps_parse(buf, len, ret_maps);
out:
	free(buf);
	return r;
}

int procmaps_read(int pid, struct procmaps **ret_maps)
{
	char path[64];
	int fd, r;

	if (pid <= 0 || !ret_maps)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	r = procmaps_read_fd(fd, ret_maps);
	close(fd);
	return r;
}

const struct procmap *procmaps_find(const struct procmaps *m, uint64_t addr)
{
	size_t lo = 0, hi;

	if (!m || m->n == 0)
		return NULL;
	/* Last mapping with start <= addr. */
	hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->maps[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	if (addr < m->maps[lo - 1].end)
		return &m->maps[lo - 1];
	return NULL;
}

void procmaps_free(struct procmaps *m)
{
	free(m);
}
