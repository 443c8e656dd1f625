/*
 * journal.c - journald's native protocol (see journal.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "journal.h"

#define KEY_MAX 64

static bool key_ok(const char *k, size_t len)
{
	if (len == 0 || len > KEY_MAX || k[0] == '_' || (k[0] >= '0' && k[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return false;
	return true;
}

/* Append len bytes at *at of buf (JOURNAL_MAX_ENTRY); false when they do not fit. */
static bool put(char *buf, size_t *at, const void *p, size_t len)
{
	if (len > JOURNAL_MAX_ENTRY - *at)
		return false;
	memcpy(buf + *at, p, len);
	*at += len;
	return true;
}

int journal_send(struct journal *j, const struct iovec *fields, size_t n)
{
	char buf[JOURNAL_MAX_ENTRY];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct iovec iov;
	struct msghdr mh = { .msg_name = &sa, .msg_namelen = sizeof(sa), .msg_iov = &iov, .msg_iovlen = 1 };
	size_t at = 0;

	if (!j || !j->path || strlen(j->path) >= sizeof(sa.sun_path) || (!fields && n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const char *f = fields[i].iov_base;
		size_t len = fields[i].iov_len;
		const char *eq = f ? memchr(f, '=', len) : NULL;
		size_t klen = eq ? (size_t)(eq - f) : 0, vlen = eq ? len - klen - 1 : 0;
		bool ok;

		if (!eq || !key_ok(f, klen) || memchr(f, '\0', len))
			return -EINVAL;
		if (!memchr(eq + 1, '\n', vlen)) {
			ok = put(buf, &at, f, len) && put(buf, &at, "\n", 1);
		} else {
			uint8_t le[8];

			for (unsigned b = 0; b < 8; b++)
				le[b] = (uint8_t)((uint64_t)vlen >> (8 * b));
			ok = put(buf, &at, f, klen) && put(buf, &at, "\n", 1) && put(buf, &at, le, 8) &&
			     put(buf, &at, eq + 1, vlen) && put(buf, &at, "\n", 1);
		}
		if (!ok)
			return -EMSGSIZE;
	}
	if (j->fd < 0) {
		j->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (j->fd < 0)
			return -errno;
	}
	memcpy(sa.sun_path, j->path, strlen(j->path));
	iov.iov_base = buf;
	iov.iov_len = at;
	if (sendmsg(j->fd, &mh, MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

void journal_close(struct journal *j)
{
	if (j && j->fd >= 0) {
		close(j->fd);
		j->fd = -1;
	}
}
