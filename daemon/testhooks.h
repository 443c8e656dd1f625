/*
 * testhooks.h - TEST-ONLY: make a confined worker attempt what its sandbox
 * forbids, to prove the sandbox holds.
 *
 * Included only when built with -DVIGIL_TEST_HOOKS, which the Makefile does
 * for build/tests/vigild-testhooks and never for build/vigild.  After the
 * worker has confined itself, VIGIL_TEST_ATTEMPT=ROLE:WHAT makes the worker
 * of that role try WHAT: execve, ptrace, bpf_prog_load, socket_inet, open,
 * bad_message (a message the protocol forbids) or set_hz:N.  Forbidden system
 * calls kill the worker (SIGSYS); if one returns instead, the worker says
 * so and exits 0, which the test treats as a failure of the sandbox.
 */
#ifndef VIGIL_TESTHOOKS_H
#define VIGIL_TESTHOOKS_H

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "monclient.h"
#include "privsep.h"

static void testhooks_attempt(const char *role)
{
	const char *want = getenv("VIGIL_TEST_ATTEMPT");
	size_t rl = strlen(role);
	const char *what;
	long rc = 0;

	if (!want || strncmp(want, role, rl) != 0 || want[rl] != ':')
		return;
	what = want + rl + 1;
	log_warnx("TEST HOOK: attempting %s", what);
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
	} else if (strcmp(what, "open") == 0) {
		rc = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	} else if (strcmp(what, "bad_message") == 0) {
		/* A well-formed header with a length the table does not allow. */
		uint8_t msg[sizeof(struct msg_open_maps) + 4] = { 0 };
		struct msg_hdr h = { MSG_OPEN_MAPS, sizeof(msg) };

		memcpy(msg, &h, sizeof(h));
		privsep_send(PRIVSEP_FD, msg, sizeof(msg), NULL, 0);
		for (;;)
			poll(NULL, 0, -1); /* the monitor is expected to kill us */
		return;
	} else if (strncmp(what, "set_hz:", 7) == 0) {
		struct msg_set_hz m = { .hdr = { MSG_SET_HZ, sizeof(m) }, .hz = (uint32_t)atoi(what + 7) };
		unsigned got = 0;
		int err = monclient_ask_hz(&m, sizeof(m), &got);

		log_warnx("TEST HOOK: asked for %u Hz: %s, %u Hz in effect", m.hz,
			  err ? strerror(-err) : "granted", got);
		return; /* carry on sampling at whatever the monitor allowed */
	} else {
		log_warnx("TEST HOOK: unknown attempt %s", what);
		exit(64);
	}
	if (rc < 0 && (errno == EPERM || errno == EACCES)) {
		log_warnx("TEST HOOK: %s refused: %s", what, strerror(errno));
		exit(0);
	}
	log_warnx("TEST HOOK: %s was NOT STOPPED: returned %ld (%s)", what, rc,
		  rc < 0 ? strerror(errno) : "success");
	exit(1);
}

#endif
