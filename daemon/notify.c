/*
 * notify.c - systemd service notifications from the monitor (see notify.h).
 *
 * Runs in the monitor (root at start, then the vigil user with
 * CAP_BPF/CAP_PERFMON under seccomp).  A thin layer over libsystemd's
 * sd_notify: it adds the rate limit on STATUS= and the watchdog's
 * schedule, nothing of the protocol itself.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "notify.h"

static int send_state(struct notify *n, const char *state)
{
	int rc;

	if (!n->on)
		return 0;
	/* unset_environment 0: the workers get their own environment anyway. */
	rc = sd_notify(0, state);
	if (rc < 0)
		return rc;
	n->sent++;
	return 0;
}

int notify_init(struct notify *n, uint64_t now_us)
{
	uint64_t usec = 0;

	memset(n, 0, sizeof(*n));
	n->on = getenv("NOTIFY_SOCKET") != NULL;
	/* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is this process. */
	if (n->on && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
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
