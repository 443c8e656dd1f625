/*
 * notify.c - systemd service notifications from the monitor (see notify.h).
 *
 * Runs in the monitor (root at start, then the vigil user with
 * CAP_BPF/CAP_PERFMON under seccomp).  The protocol is spoken directly, as
 * sd_notify(3) describes it ("the notification protocol is stable"): each
 * state is one datagram of newline-separated assignments to the AF_UNIX
 * socket named by $NOTIFY_SOCKET, a path, or the abstract namespace when it
 * starts with '@'.  It is what libsystemd's sd_notify(0, state) sends, without mapping
 * libsystemd and what it pulls in (docs/benchmarks.md, "Memory at 19 Hz").
 * vsock addresses (systemd 254 and later, for VMs) are not spoken: -EAFNOSUPPORT.
 * On top: the rate limit on STATUS= and the watchdog's schedule.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "decimal.h"
#include "notify.h"

/* One datagram of state to $NOTIFY_SOCKET, on a socket made for it (as sd_notify does). */
static int notify_datagram(const char *path, const char *state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	struct iovec iov = { .iov_base = (void *)(uintptr_t)state, .iov_len = strlen(state) };
	struct msghdr mh = { .msg_name = &sa, .msg_iov = &iov, .msg_iovlen = 1 };
	int fd, rc = 0;

	if (path[0] != '/' && path[0] != '@')
		return -EAFNOSUPPORT;
	/* A path needs room for its NUL; an abstract name has none. */
	if (len < 2 || len > sizeof(sa.sun_path) - (path[0] == '/'))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract: the name's length counts, no terminator */
	mh.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int send_state(struct notify *n, const char *state)
{
	int rc;

	if (!n->on)
		return 0;
	rc = notify_datagram(n->socket, state);
	if (rc < 0)
		return rc;
	n->sent++;
	return 0;
}

/*
 * sd_watchdog_enabled(3)'s rule: WATCHDOG_USEC in microseconds, for this
 * process unless WATCHDOG_PID names another.  0 when there is none.
 */
static uint64_t watchdog_usec(void)
{
	const char *u = getenv("WATCHDOG_USEC"), *p = getenv("WATCHDOG_PID");
	uint64_t usec, pid;

	if (!u || decimal_u64(u, &usec) < 0 || usec == 0)
		return 0;
	if (p && (decimal_u64(p, &pid) < 0 || pid != (uint64_t)getpid()))
		return 0;
	return usec;
}

int notify_init(struct notify *n, uint64_t now_us)
{
	uint64_t usec = 0;

	const char *sock = getenv("NOTIFY_SOCKET");

	memset(n, 0, sizeof(*n));
	n->on = sock != NULL;
	/* One too long is kept cut, and refused at each send (-ENAMETOOLONG). */
	if (n->on)
		snprintf(n->socket, sizeof(n->socket), "%s", sock);
	/* Read now: the environment is the monitor's own until it starts the workers. */
	if (n->on && (usec = watchdog_usec()) > 0) {
		n->watchdog_usec = usec;
		n->next_pet_us = now_us + usec / 2;
	}
	return 0;
}

static int send_status_now(struct notify *n, const char *status, uint64_t now_us, const char *prefix)
{
	char buf[NOTIFY_STATUS_MAX + 64];
	int rc;

	snprintf(buf, sizeof(buf), "%sSTATUS=%s", prefix, status);
	rc = send_state(n, buf);
	if (rc)
		return rc;
	if (status != n->status)
		snprintf(n->status, sizeof(n->status), "%s", status);
	n->status_sent_us = now_us;
	n->have_pending = false;
	return 0;
}

int notify_ready(struct notify *n, uint64_t now_us)
{
	if (n->have_pending)
		return send_status_now(n, n->pending, now_us, "READY=1\n");
	return send_state(n, "READY=1");
}

int notify_reloading(struct notify *n, uint64_t now_us)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_us);
	return send_state(n, buf);
}

int notify_stopping(struct notify *n)
{
	return send_state(n, "STOPPING=1");
}

int notify_status(struct notify *n, const char *status, uint64_t now_us)
{
	if (!strncmp(status, n->status, sizeof(n->status) - 1) && !n->have_pending)
		return 0;
	if (n->status_sent_us && now_us < n->status_sent_us + NOTIFY_STATUS_MIN_MS * 1000ull) {
		snprintf(n->pending, sizeof(n->pending), "%s", status);
		/* Back to what was sent: nothing left to say. */
		n->have_pending = strcmp(n->pending, n->status) != 0;
		return 0;
	}
	return send_status_now(n, status, now_us, "");
}

int notify_tick(struct notify *n, uint64_t now_us)
{
	if (!n->have_pending || now_us < n->status_sent_us + NOTIFY_STATUS_MIN_MS * 1000ull)
		return 0;
	return send_status_now(n, n->pending, now_us, "");
}

bool notify_watchdog_due(struct notify *n, uint64_t now_us)
{
	if (!n->watchdog_usec || now_us < n->next_pet_us)
		return false;
	n->next_pet_us = now_us + n->watchdog_usec / 2;
	return true;
}

int notify_watchdog(struct notify *n)
{
	return send_state(n, "WATCHDOG=1");
}

int notify_timeout_ms(const struct notify *n, uint64_t now_us)
{
	uint64_t next = UINT64_MAX;

	if (n->watchdog_usec)
		next = n->next_pet_us;
	if (n->have_pending && n->status_sent_us + NOTIFY_STATUS_MIN_MS * 1000ull < next)
		next = n->status_sent_us + NOTIFY_STATUS_MIN_MS * 1000ull;
	if (next == UINT64_MAX)
		return -1;
	if (next <= now_us)
		return 0;
	if ((next - now_us) / 1000 >= INT32_MAX)
		return INT32_MAX;
	return (int)((next - now_us + 999) / 1000);
}
