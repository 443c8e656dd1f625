/*
 * uplinkmet.c - the uplink's Prometheus side (see uplinkmet.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "uplinkbase.h"
#include "uplinkmet.h"

void uplinkmet_init(struct uplinkmet *um)
{
	memset(um, 0, sizeof(*um));
	um->pmfd = -1;
	um->cmfd = -1;
}

/*
 * An ask not answered in this long is asked again at the next scrape (a
 * peer that lost one, or was busy past the server's wait).
 */
#define ASK_AGAIN_NS 2000000000ull

static void render(void *ctx, struct promtext *p)
{
	upmetrics_render(&((struct uplinkmet *)ctx)->met, p);
}

/* Both answered (or gone): the waiting scrapes get the page. */
static void maybe_fresh(struct uplinkmet *um)
{
	if (!um->pm_pending && !um->cm_pending)
		metricsrv_fresh(um->srv);
}

/* One MSG_METRICS_WANTED on sock; false when it could not be sent (full or gone). */
static bool ask(int sock)
{
	struct msg_ready m = { .hdr = { MSG_METRICS_WANTED, sizeof(m) }, .version = PRIVSEP_VERSION };

	return sock >= 0 && privsep_send(sock, &m, sizeof(m), NULL, 0) == 0;
}

/* A scrape came in (metricsrv_want_fn): ask the monitor and the collector for their figures. */
static void want(void *ctx)
{
	struct uplinkmet *um = ctx;
	uint64_t now = uplinkbase_now_ns();

	if ((um->pm_pending || um->cm_pending) && now - um->asked_ns < ASK_AGAIN_NS)
		return; /* asked already: their answers serve this scrape too */
	um->asked_ns = now;
	um->pm_pending = ask(um->pmfd);
	um->cm_pending = ask(um->cmfd);
	maybe_fresh(um);
}

void uplinkmet_setup(struct uplinkmet *um, bool *seen_mon, bool cp)
{
	union {
		struct msg_metrics_fd m;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} m;
	int fds[PRIVSEP_MAX_FDS], type, rc;
	size_t len;

	type = privsep_recv(PRIVSEP_FD, PEER_MONITOR, seen_mon, &m, &len, fds);
	if (type != MSG_UPLINK_METRICS || m.m.version != PRIVSEP_VERSION)
		fatalx(70, "no metrics socket from the monitor (%s)",
		       type < 0 ? strerror(-type) : "wrong type or version");
	um->pmfd = fds[1];
	um->cmfd = fds[2];
	/* An ask that does not fit is not made (ask()): the uplink's loop never waits on them. */
	if (fcntl(um->pmfd, F_SETFL, O_NONBLOCK) < 0 || fcntl(um->cmfd, F_SETFL, O_NONBLOCK) < 0)
		fatalx(71, "fcntl: %s", strerror(errno));
	rc = metricsrv_new(fds[0], render, want, um, &um->srv);
	if (rc)
		fatalx(71, "cannot serve metrics: %s", strerror(-rc));
	um->met.control_plane = cp;
	um->met.http = metricsrv_stats(um->srv);
}

size_t uplinkmet_pollfds(struct uplinkmet *um, struct pollfd *p, int *timeout)
{
	int t;

	if (!um->srv)
		return 0;
	p[0] = (struct pollfd){ .fd = um->pmfd, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = um->cmfd, .events = POLLIN };
	t = metricsrv_timeout_ms(um->srv);
	if (t >= 0 && (*timeout < 0 || t < *timeout))
		*timeout = t;
	return 2 + metricsrv_pollfds(um->srv, p + 2);
}

/* MSG_PROC_METRICS on the socket the monitor gave for them, and nothing else. */
static void from_monitor(struct uplinkmet *um)
{
	union {
		struct msg_proc_metrics proc;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} m;
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int type = privsep_recv(um->pmfd, PEER_MONITOR, um->seen_pm, &m, &len, fds);

	if (type == -EAGAIN || type == -EINTR)
		return;
	if (type == -EPIPE || type == -ECONNRESET) {
		close(um->pmfd);
		um->pmfd = -1;
	} else if (type != MSG_PROC_METRICS || upmetrics_take_proc(&um->met, &m.proc)) {
		fatalx(70, "the monitor sent process figures the uplink cannot mean (%s)",
		       type < 0 ? strerror(-type) : "wrong type or contents");
	}
	um->pm_pending = false;
	maybe_fresh(um);
}

/*
 * MSG_COLLECTOR_METRICS on the socket the monitor gave for them, and
 * nothing else; a collector that sends what cannot be meant is treated
 * as on the control socket (the uplink ends, the monitor shuts down).
 */
static void from_collector(struct uplinkmet *um)
{
	union {
		struct msg_collector_metrics col;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} m;
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int type = privsep_recv(um->cmfd, PEER_COLLECTOR, um->seen_cm, &m, &len, fds);

	if (type == -EAGAIN || type == -EINTR)
		return;
	if (type == -EPIPE || type == -ECONNRESET) {
		close(um->cmfd);
		um->cmfd = -1;
	} else if (type != MSG_COLLECTOR_METRICS || upmetrics_take_collector(&um->met, &m.col)) {
		fatalx(70, "the collector sent metrics the uplink cannot mean (%s)",
		       type < 0 ? strerror(-type) : "wrong type or contents");
	}
	um->cm_pending = false;
	maybe_fresh(um);
}

void uplinkmet_handle(struct uplinkmet *um, const struct pollfd *p, size_t n)
{
	if (!um->srv || n < 2)
		return;
	if (um->pmfd >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
		from_monitor(um);
	if (um->cmfd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
		from_collector(um);
	metricsrv_handle(um->srv, p + 2, n - 2);
}

void uplinkmet_now(struct uplinkmet *um)
{
	struct pollfd p[UPLINKMET_NPOLLFDS];
	int timeout = 0;
	size_t n = uplinkmet_pollfds(um, p, &timeout);

	if (n && poll(p, n, 0) >= 0)
		uplinkmet_handle(um, p, n);
}

void uplinkmet_free(struct uplinkmet *um)
{
	metricsrv_free(um->srv);
	um->srv = NULL;
	if (um->pmfd >= 0)
		close(um->pmfd);
	if (um->cmfd >= 0)
		close(um->cmfd);
	um->pmfd = um->cmfd = -1;
}
