/*
 * testhooks.h - TEST-ONLY: make a confined vigild process attempt what its
 * sandbox forbids, to prove the sandbox holds.
 *
 * Included only when built with -DVIGIL_TEST_HOOKS, which the Makefile does
 * for build/tests/vigild-testhooks and never for build/vigild.  Once a
 * process has confined itself, VIGIL_TEST_ATTEMPT=ROLE:WHAT makes the
 * process of that role (monitor, loader, collector, uplink) try WHAT:
 *
 *   execve, ptrace, bpf_prog_load, socket_inet   system calls its seccomp
 *                    allowlist lacks: the filter kills it (SIGSYS)
 *   socket_unix_stream   an AF_UNIX stream socket: SIGSYS too (only the
 *                    datagram socket of the journal and notify protocols
 *                    is allowed, sandbox.c)
 *   fcntl_setown, fcntl_setsig   fcntl() commands that would have the
 *                    kernel signal another process (its parent) through
 *                    O_ASYNC: SIGSYS (only harmless commands are allowed)
 *   open             open("/etc/passwd") read-only: SIGSYS in the uplink
 *                    (no openat), EACCES from Landlock in the collector
 *   connect_local:PORT   a TCP connection to 127.0.0.1:PORT
 *   bad_message      a message the protocol table forbids (collector)
 *   set_hz:N         ask the monitor for N Hz and log its answer (collector)
 *   tenant_root      ask the monitor to sample the root cgroup (id 1) for
 *                    tenant 1, and log its answer (collector)
 *   bad_ack:S        after S seconds (profiles are spooled and one is in
 *                    flight by then), acknowledge an export push that is
 *                    not in flight, on the socket to the collector (uplink,
 *                    export on): the collector must report a protocol break
 *
 * A call that returns instead is reported on stderr ("TEST HOOK: WHAT
 * returned ..."); the process then exits 0 if the kernel refused it with
 * EPERM or EACCES (the tests say which layer that must have been), and 1
 * if it succeeded.
 */
#ifndef VIGIL_TESTHOOKS_H
#define VIGIL_TESTHOOKS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "monclient.h"
#include "privsep.h"

/*
 * The uplink's ends of the metrics sockets, to the monitor and to the
 * collector (uplinkmet.h), set before its attempt: bad_ack leaves them
 * alone (their readers take anything else as a protocol break of their
 * own), metrics_junk:monitor and metrics_junk:collector send on them.
 */
static int testhooks_metrics_fd[2] = { -1, -1 };

/* What the attempt is for this role, or NULL. */
static inline const char *testhooks_want(const char *role)
{
	const char *want = getenv("VIGIL_TEST_ATTEMPT");
	size_t rl = strlen(role);

	if (!want || strncmp(want, role, rl) != 0 || want[rl] != ':')
		return NULL;
	return want + rl + 1;
}

/* Log this process's capability sets, ids and no_new_privs (before its filter forbids open). */
static inline void testhooks_note_caps(const char *role)
{
	char line[256];
	FILE *f;

	if (!testhooks_want(role) || !(f = fopen("/proc/self/status", "re")))
		return;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "Cap", 3) == 0 || strncmp(line, "Uid:", 4) == 0 ||
		    strncmp(line, "Gid:", 4) == 0 || strncmp(line, "NoNewPrivs:", 11) == 0)
			log_warnx("TEST HOOK: %s %.*s", role, (int)strcspn(line, "\n"), line);
	fclose(f);
}

static inline void testhooks_attempt(const char *role)
{
	const char *what = testhooks_want(role);
	long rc = 0;

	if (!what)
		return;
	log_warnx("TEST HOOK: pid %d attempting %s", (int)getpid(), what);
	if (strcmp(what, "execve") == 0) {
		char *argv[] = { "true", NULL };

		rc = execve("/bin/true", argv, NULL);
	} else if (strcmp(what, "ptrace") == 0) {
		rc = ptrace(PTRACE_ATTACH, getppid(), NULL, NULL);
	} else if (strcmp(what, "bpf_prog_load") == 0) {
		union bpf_attr attr;

		memset(&attr, 0, sizeof(attr));
		attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
		rc = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	} else if (strcmp(what, "socket_inet") == 0) {
		rc = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	} else if (strcmp(what, "socket_unix_stream") == 0) {
		rc = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	} else if (strcmp(what, "fcntl_setown") == 0) {
		rc = fcntl(STDERR_FILENO, F_SETOWN, (int)getppid());
	} else if (strcmp(what, "fcntl_setsig") == 0) {
		rc = fcntl(STDERR_FILENO, F_SETSIG, SIGKILL);
	} else if (strcmp(what, "open") == 0) {
		rc = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	} else if (strncmp(what, "connect_local:", 14) == 0) {
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons((uint16_t)atoi(what + 14)),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		rc = fd < 0 ? fd : connect(fd, (struct sockaddr *)&a, sizeof(a));
	} else if (strcmp(what, "bad_message") == 0) {
		/* A well-formed header with a length the table does not allow. */
		uint8_t msg[sizeof(struct msg_open_maps) + 4] = { 0 };
		struct msg_hdr h = { MSG_OPEN_MAPS, sizeof(msg) };

		memcpy(msg, &h, sizeof(h));
		privsep_send(PRIVSEP_FD, msg, sizeof(msg), NULL, 0);
		for (;;)
			poll(NULL, 0, -1); /* the monitor is expected to kill us */
	} else if (strncmp(what, "bad_ack:", 8) == 0) {
		/*
		 * The socket to the collector is an AF_UNIX SEQPACKET one that is
		 * not PRIVSEP_FD; the metrics sockets are too, and their readers
		 * ignore what comes the wrong way: send on each of them.
		 */
		int sent = 0;

		struct msg_export_ack m = { .hdr = { MSG_EXPORT_ACK, sizeof(m) },
					    .version = PRIVSEP_VERSION, .result = EXPORT_PUSHED,
					    .seq = 0x7fffffff, .http_status = 200 };

		sleep((unsigned)atoi(what + 8));
		for (int fd = PRIVSEP_FD + 1; fd < 256; fd++) {
			int type = 0, dom = 0;
			socklen_t l = sizeof(type), l2 = sizeof(dom);

			if (fd == testhooks_metrics_fd[0] || fd == testhooks_metrics_fd[1])
				continue;
			if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_SEQPACKET &&
			    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l2) == 0 && dom == AF_UNIX) {
				log_warnx("TEST HOOK: acknowledging seq %llu, never sent, on fd %d",
					  (unsigned long long)m.seq, fd);
				if (privsep_send(fd, &m, sizeof(m), NULL, 0) == 0)
					sent++;
			}
		}
		if (sent)
			return; /* carry on: the collector and the monitor must act */
		log_warnx("TEST HOOK: no socket to the collector found");
		exit(1);
	} else if (strncmp(what, "metrics_junk:", 13) == 0) {
		/*
		 * On the metrics socket to the monitor or to the collector, after
		 * 2 s: what is not an ask for the figures (an EXPORT_ACK, which
		 * the uplink may send, but not there).
		 */
		int fd = testhooks_metrics_fd[strcmp(what + 13, "monitor") == 0 ? 0 : 1];
		struct msg_export_ack m = { .hdr = { MSG_EXPORT_ACK, sizeof(m) },
					    .version = PRIVSEP_VERSION, .result = EXPORT_PUSHED };

		sleep(2);
		log_warnx("TEST HOOK: an EXPORT_ACK on the metrics socket to the %s (fd %d)", what + 13, fd);
		if (fd < 0 || privsep_send(fd, &m, sizeof(m), NULL, 0) < 0)
			exit(1);
		return; /* carry on: the monitor or the collector must act */
	} else if (strncmp(what, "set_hz:", 7) == 0) {
		struct msg_set_hz m = { .hdr = { MSG_SET_HZ, sizeof(m) }, .hz = (uint32_t)atoi(what + 7) };
		unsigned got = 0;
		int err = monclient_ask_hz(&m, sizeof(m), &got);

		log_warnx("TEST HOOK: asked for %u Hz: %s, %u Hz in effect", m.hz,
			  err ? strerror(-err) : "granted", got);
		return; /* carry on sampling at whatever the monitor allowed */
	} else if (strcmp(what, "tenant_root") == 0) {
		struct msg_tenant_cgroup m = { .hdr = { MSG_TENANT_CGROUP, sizeof(m) }, .tenant = 1,
					       .hz = 10, .cgroup_id = 1 };
		unsigned got = 0;
		int err = monclient_ask_hz(&m, sizeof(m), &got);

		log_warnx("TEST HOOK: asked for the root cgroup: %s", err ? strerror(-err) : "granted");
		return;
	} else {
		log_warnx("TEST HOOK: unknown attempt %s", what);
		exit(64);
	}
	if (rc < 0 && (errno == EPERM || errno == EACCES)) {
		log_warnx("TEST HOOK: %s returned: refused: %s", what, strerror(errno));
		exit(0);
	}
	log_warnx("TEST HOOK: %s returned: NOT STOPPED: %ld (%s)", what, rc,
		  rc < 0 ? strerror(errno) : "success");
	exit(1);
}

#endif
