/*
 * uplink.c - vigild's uplink process: the only one that will talk to the
 * network (the control plane and export targets, in later work).
 *
 * Re-executed by the monitor with --internal-role uplink, as the
 * unprivileged user with every capability set empty and no_new_privs.
 * Whatever it needs from files (credentials) it must load before it
 * confines itself; after that, Landlock denies it every file and TCP
 * connection, and its seccomp allowlist has neither open() nor socket():
 * with no control plane or export target configured (all there is today)
 * it has nothing to reach.  It sets up, confines itself, reports ready and
 * waits for the monitor to stop it.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"
#include "privsep.h"
#include "sandbox.h"
#include "uplink.h"

#ifdef VIGIL_TEST_HOOKS
#include "testhooks.h"
#endif

int uplink_main(void)
{
	union {
		struct msg_uplink_setup setup;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} u;
	struct msg_ready ready = { .hdr = { MSG_UPLINK_READY, sizeof(ready) },
				   .version = PRIVSEP_VERSION };
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[PRIVSEP_MAX_FDS];
	sigset_t mask;
	size_t len;
	int type, sfd, rc;

	log_init("vigild[uplink]");
	type = privsep_recv(PRIVSEP_FD, PEER_MONITOR, seen, &u, &len, fds);
	if (type != MSG_UPLINK_SETUP || u.setup.version != PRIVSEP_VERSION)
		fatalx(70, "no valid setup from the monitor (%s)", type < 0 ? strerror(-type) : "wrong type");

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		fatalx(71, "signalfd: %s", strerror(errno));

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatalx(71, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
	rc = sandbox_landlock_none();
	if (rc)
		fatalx(71, "cannot confine file and network access (Landlock%s): %s; the uplink does "
		       "not run without it%s", rc == -EOPNOTSUPP ? " is not available" : "", strerror(-rc),
		       rc == -EOPNOTSUPP ? " (a kernel with CONFIG_SECURITY_LANDLOCK=y and landlock "
					   "in its lsm= list has it)" : "");
	rc = sandbox_seccomp(SANDBOX_UPLINK);
	if (rc)
		fatalx(71, "cannot install the seccomp filter: %s", strerror(-rc));
	rc = privsep_send(PRIVSEP_FD, &ready, sizeof(ready), NULL, 0);
	if (rc)
		fatalx(70, "cannot reach the monitor: %s", strerror(-rc));
#ifdef VIGIL_TEST_HOOKS
	testhooks_attempt("uplink");
#endif

	for (;;) {
		struct pollfd p[2] = { { .fd = sfd, .events = POLLIN },
				       { .fd = PRIVSEP_FD, .events = POLLIN } };
		struct signalfd_siginfo si;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fatalx(71, "poll: %s", strerror(errno));
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
			return 0; /* the monitor never speaks after setup: it is gone */
		if ((p[0].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si) &&
		    si.ssi_signo != SIGHUP)
			return 0;
	}
}
