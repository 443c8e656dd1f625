/*
 * uplinklocal.c - vigild's uplink when there is nothing to reach: neither
 * --control-plane nor --export-url.  It serves the Prometheus metrics
 * (when on) and beats; nothing else.
 *
 * It is the program vigild-uplink-local, which the monitor runs instead
 * of vigild-uplink when neither is configured (both are fixed at start:
 * a policy's export: section needs --export-url).  Its code does not
 * call libcurl, so it does not map libcurl, OpenSSL and the TLS, LDAP,
 * Kerberos and SSH libraries libcurl pulls in: at vigild's defaults these
 * were ~5 MiB of the uplink's 8.5 MiB of resident pages (docs/benchmarks.md,
 * "Memory at 19 Hz").
 *
 * Confined as the other uplink is, more tightly: Landlock denies every
 * file and every TCP connection; its seccomp filter (SANDBOX_UPLINK)
 * allows no socket but the journal's AF_UNIX datagram one, and accept4
 * on the metrics socket the monitor bound and handed over.  After set-up the monitor never speaks to it: a
 * message on the privilege-separation socket is a protocol break.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"
#include "privsep.h"
#include "uplinkbase.h"
#include "uplinklocal.h"
#include "uplinkmet.h"

#ifdef VIGIL_TEST_HOOKS
#include "testhooks.h"
#endif

/* 0, or -EPIPE when the monitor is gone (so is vigild). */
static int from_monitor(bool *seen_mon)
{
	uint8_t raw[PRIVSEP_MAX_MSG];
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int type = privsep_recv(PRIVSEP_FD, PEER_MONITOR, seen_mon, raw, &len, fds);

	if (type == -EAGAIN || type == -EINTR)
		return 0;
	if (type == -EPIPE || type == -ECONNRESET)
		return -EPIPE;
	if (type < 0)
		fatalx(70, "the monitor broke the protocol: %s", strerror(-type));
	fatalx(70, "the monitor sent message %d, which the uplink without a control plane or export "
	       "never takes", type);
}

int uplinklocal_main(void)
{
	union {
		struct msg_uplink_setup setup;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} m;
	static const struct msg_uplink_beat state = { .cp_state = BEAT_CP_OFF }; /* export: EXPORT_OFF */
	bool seen_mon[MSG_TYPE_MAX] = { false };
	struct uplinkmet um;
	struct heartbeat hb = { 0 };
	int fds[PRIVSEP_MAX_FDS], sfd, type;
	size_t len;

	log_init("vigild[uplink]");
	uplinkmet_init(&um);
	type = privsep_recv(PRIVSEP_FD, PEER_MONITOR, seen_mon, &m, &len, fds);
	if (type != MSG_UPLINK_SETUP || m.setup.version != PRIVSEP_VERSION)
		fatalx(70, "no valid setup from the monitor (%s)", type < 0 ? strerror(-type) : "wrong type");
	if (m.setup.flags & (UPLINK_F_CONTROL_PLANE | UPLINK_F_EXPORT))
		fatalx(70, "the monitor started vigild-uplink-local with a control plane or export "
		       "(vigild-uplink is the uplink for those)");
	uplinkbase_heartbeat(&hb, m.setup.beat_ms);
	sfd = uplinkbase_signalfd();
	if (m.setup.flags & UPLINK_F_METRICS)
		uplinkmet_setup(&um, seen_mon, false);
	uplinkbase_confine((const unsigned[1]){ 0 }, 1, false);
#ifdef VIGIL_TEST_HOOKS
	testhooks_metrics_fd[0] = um.pmfd;
	testhooks_metrics_fd[1] = um.cmfd;
	testhooks_attempt("uplink");
#endif
	for (;;) {
		struct pollfd p[2 + UPLINKMET_NPOLLFDS] = { { .fd = sfd, .events = POLLIN },
							     { .fd = PRIVSEP_FD, .events = POLLIN } };
		struct signalfd_siginfo si;
		int timeout = heartbeat_timeout_ms(&hb, uplinkbase_now_ns());
		size_t nm = uplinkmet_pollfds(&um, p + 2, &timeout);

		if (poll(p, 2 + nm, timeout) < 0) {
			if (errno == EINTR)
				continue;
			fatalx(71, "poll: %s", strerror(errno));
		}
		uplinkbase_beat(&hb, &state, false);
		uplinkmet_handle(&um, p + 2, nm);
		if ((p[0].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si) &&
		    si.ssi_signo != SIGHUP && si.ssi_signo != SIGPIPE)
			break;
		if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && from_monitor(seen_mon) == -EPIPE)
			break;
	}
	uplinkmet_free(&um);
	return 0;
}
