/*
 * auditlog.c - seccomp kills as the kernel's audit records tell them (see
 * auditlog.h).  Runs in the monitor.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auditlog.h"

/* One read of /dev/kmsg returns one record; the kernel's limit is 8 KiB. */
#define RECORD_MAX 8192

struct auditlog {
	int fd;
	struct auditlog_seccomp kept[AUDITLOG_KEEP];
	size_t nkept, next;
};

int auditlog_open(const char *path, struct auditlog **ret)
{
	struct auditlog *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (a->fd < 0) {
		int rc = -errno;

		free(a);
		return rc;
	}
	/* From now on only: what the kernel logs before is not ours to judge. */
	if (lseek(a->fd, 0, SEEK_END) < 0) {
		int rc = -errno;

		close(a->fd);
		free(a);
		return rc;
	}
	*ret = a;
	return 0;
}

/* Parse an unsigned number of base in [p, end) into *v (no sign, no overflow). */
static bool number(const char *p, const char *end, int base, unsigned long long max,
		   unsigned long long *v)
{
	unsigned long long x = 0;

	if (p == end)
		return false;
	for (; p < end; p++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			return false;
		if (x > (max - (unsigned)d) / (unsigned)base)
			return false;
		x = x * (unsigned)base + (unsigned)d;
	}
	*v = x;
	return true;
}

/* The value of field key= among the space-separated words of [p, end). */
static bool field(const char *p, const char *end, const char *key, const char **ret_v,
		  const char **ret_end)
{
	size_t klen = strlen(key);

	while (p < end) {
		const char *w = p, *we = memchr(p, ' ', (size_t)(end - p));

		if (!we)
			we = end;
		if ((size_t)(we - w) > klen && memcmp(w, key, klen) == 0 && w[klen] == '=') {
			*ret_v = w + klen + 1;
			*ret_end = we;
			return true;
		}
		p = we + 1;
	}
	return false;
}

int auditlog_parse(const char *rec, size_t len, struct auditlog_seccomp *ret)
{
	static const char head[] = "audit: type=1326 ";
	const char *end = rec + len, *semi, *msg, *nl, *v, *ve;
	unsigned long long pri, usec, pid, arch, sc, sig;
	struct auditlog_seccomp r;

	semi = memchr(rec, ';', len);
	if (!semi)
		return -EINVAL;
	/* PRI: facility << 3 | level; the kernel's own messages are facility 0. */
	v = rec;
	ve = memchr(rec, ',', (size_t)(semi - rec));
	if (!ve || !number(v, ve, 10, INT_MAX, &pri))
		return -EINVAL;
	if (pri >> 3 != 0)
		return -ENOENT;
	/* PRI,SEQ,USEC,...: the time stamp is the third field */
	v = memchr(ve + 1, ',', (size_t)(semi - ve - 1));
	if (!v)
		return -EINVAL;
	v++;
	ve = memchr(v, ',', (size_t)(semi - v));
	if (!ve)
		ve = semi;
	if (!number(v, ve, 10, UINT64_MAX, &usec))
		return -EINVAL;
	msg = semi + 1;
	nl = memchr(msg, '\n', (size_t)(end - msg));
	if (nl)
		end = nl; /* the dictionary lines after it are not the message */
	if ((size_t)(end - msg) < sizeof(head) - 1 || memcmp(msg, head, sizeof(head) - 1) != 0)
		return -ENOENT;
	msg += sizeof(head) - 1;
	if (!field(msg, end, "pid", &v, &ve) || !number(v, ve, 10, INT_MAX, &pid) || pid == 0 ||
	    !field(msg, end, "arch", &v, &ve) || !number(v, ve, 16, UINT32_MAX, &arch) ||
	    !field(msg, end, "syscall", &v, &ve) || !number(v, ve, 10, INT_MAX, &sc) ||
	    !field(msg, end, "sig", &v, &ve) || !number(v, ve, 10, 64, &sig))
		return -EINVAL;
	r.usec = usec;
	r.pid = (pid_t)pid;
	r.arch = (uint32_t)arch;
	r.syscall = (int)sc;
	r.sig = (int)sig;
	*ret = r;
	return 0;
}

static void keep(struct auditlog *a, const struct auditlog_seccomp *r)
{
	a->kept[a->next] = *r;
	a->next = (a->next + 1) % AUDITLOG_KEEP;
	if (a->nkept < AUDITLOG_KEEP)
		a->nkept++;
}

/* Read every record logged since the last read; keep the seccomp ones. */
static int drain(struct auditlog *a)
{
	char *buf = malloc(RECORD_MAX);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		struct auditlog_seccomp r;
		ssize_t n = read(a->fd, buf, RECORD_MAX);

		if (n < 0 && (errno == EPIPE || errno == EINTR))
			continue; /* EPIPE: records were overwritten before we read them */
		if (n <= 0)
			break; /* EAGAIN: nothing more */
		if (auditlog_parse(buf, (size_t)n, &r) == 0)
			keep(a, &r);
	}
	free(buf);
	return 0;
}

/* The newest kept SIGSYS record of pid, logged since not_before, or NULL. */
static const struct auditlog_seccomp *find(const struct auditlog *a, pid_t pid, uint64_t not_before)
{
	for (size_t i = 0; i < a->nkept; i++) {
		size_t k = (a->next + AUDITLOG_KEEP - 1 - i) % AUDITLOG_KEEP;
		const struct auditlog_seccomp *r = &a->kept[k];

		if (r->pid == pid && r->sig == SIGSYS && r->usec >= not_before)
			return r;
	}
	return NULL;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int auditlog_seccomp_of(struct auditlog *a, pid_t pid, uint64_t not_before_usec, int timeout_ms,
			struct auditlog_seccomp *ret)
{
	uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	const struct auditlog_seccomp *r;

	if (!a)
		return -ENOENT;
	for (;;) {
		struct pollfd p = { .fd = a->fd, .events = POLLIN };
		uint64_t now;
		int rc = drain(a);

		if (rc)
			return rc;
		r = find(a, pid, not_before_usec);
		if (r) {
			*ret = *r;
			return 0;
		}
		now = mono_ms();
		if (now >= deadline)
			return -ENOENT;
		(void)poll(&p, 1, (int)(deadline - now));
	}
}

const char *auditlog_syscall_name(const struct auditlog_seccomp *r)
{
	static char name[64];
	char *s = seccomp_syscall_resolve_num_arch(r->arch, r->syscall);

	if (!s)
		return NULL;
	snprintf(name, sizeof(name), "%s", s);
	free(s);
	return name;
}

void auditlog_free(struct auditlog *a)
{
	if (!a)
		return;
	close(a->fd);
	free(a);
}
