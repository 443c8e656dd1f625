/*
 * uplinkbase.c - what both uplink programs do the same way (see uplinkbase.h).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <time.h>

#include "log.h"
#include "sandbox.h"
#include "uplinkbase.h"

int uplinkbase_signalfd(void)
{
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		fatalx(71, "signalfd: %s", strerror(errno));
	return sfd;
}

void uplinkbase_confine(const unsigned *ports, size_t n, bool net)
{
	struct msg_ready ready = { .hdr = { MSG_UPLINK_READY, sizeof(ready) },
				   .version = PRIVSEP_VERSION };
	bool net_confined = false;
	int rc;

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatalx(71, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
	rc = sandbox_landlock_uplink_ports(ports, n, &net_confined);
	if (rc)
		fatalx(71, "cannot confine file and network access (Landlock%s): %s; the uplink does "
		       "not run without it%s", rc == -EOPNOTSUPP ? " is not available" : "", strerror(-rc),
		       rc == -EOPNOTSUPP ? " (a kernel with CONFIG_SECURITY_LANDLOCK=y and landlock "
					   "in its lsm= list has it)" : "");
	if (net && !net_confined)
		log_warnx("this kernel's Landlock has no network rules (ABI < 4): TCP connections are "
			  "not limited to the control plane's and the export target's ports (seccomp still "
			  "limits the uplink to TCP/IP sockets)");
	rc = sandbox_seccomp(net ? SANDBOX_UPLINK_NET : SANDBOX_UPLINK);
	if (rc)
		fatalx(71, "cannot install the seccomp filter: %s", strerror(-rc));
	rc = privsep_send(PRIVSEP_FD, &ready, sizeof(ready), NULL, 0);
	if (rc)
		fatalx(70, "cannot reach the monitor: %s", strerror(-rc));
}

uint64_t uplinkbase_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void uplinkbase_heartbeat(struct heartbeat *hb, uint32_t beat_ms)
{
	if (beat_ms < BEAT_MIN_MS || beat_ms > BEAT_MAX_MS)
		fatalx(70, "the monitor's setup asks for a beat every %u ms (%u to %u)", beat_ms,
		       BEAT_MIN_MS, BEAT_MAX_MS);
	heartbeat_init(hb, beat_ms);
}

void uplinkbase_beat(struct heartbeat *hb, const struct msg_uplink_beat *state, bool force)
{
	struct msg_uplink_beat m = *state;
	const uint32_t shown[4] = { m.cp_state, m.export.state, (uint32_t)m.export.last_http_status,
				    (uint32_t)(m.serial >> 32) ^ (uint32_t)m.serial };

	if (heartbeat_changed(hb, heartbeat_digest(0, shown, sizeof(shown))))
		force = true;
	/* A beat due soon goes now, on the metrics' wakeup rather than one of its own. */
	if (!heartbeat_turn(hb, uplinkbase_now_ns(), HEARTBEAT_SLACK_NS, force))
		return;
	m.hdr = (struct msg_hdr){ MSG_UPLINK_BEAT, sizeof(m) };
	m.version = PRIVSEP_VERSION;
	m.progress = hb->progress;
	privsep_send(PRIVSEP_FD, &m, sizeof(m), NULL, 0);
}
