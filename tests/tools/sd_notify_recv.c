/*
 * sd_notify_recv - TEST TOOL: stand in for systemd's notification socket.
 *
 *   sd_notify_recv SOCKET OUT [--on ASSIGNMENT CMD]
 *   sd_notify_recv now
 *
 * Binds an AF_UNIX datagram socket at SOCKET (mode 0666, so that a
 * process that dropped to another user can still notify, as it can reach
 * /run/systemd/notify), asks for the sender's credentials with each
 * datagram (SO_PASSCRED, SCM_CREDENTIALS), and appends one line per
 * datagram to OUT:
 *
 *   <CLOCK_MONOTONIC µs at receipt> TAB <sender pid> TAB <assignment> [TAB <assignment>]...
 *
 * the datagram's newline-separated assignments (sd_notify(3)) split at
 * newlines; a tab or other control byte inside one is written as '?'.
 * With --on, a datagram that has ASSIGNMENT (e.g. READY=1) runs CMD with
 * /bin/sh before the next datagram is read, and its line ends with a
 * field "on=<CMD's exit status>": a check of the sender's state as close
 * to the notification as a test can get.
 * "now" prints CLOCK_MONOTONIC in µs, the clock of the lines (and of
 * MONOTONIC_USEC=), for the shell.
 * Runs until SIGTERM or SIGINT.  Exit 0, or 1 with a message on errors.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* systemd takes datagrams of up to NOTIFY_BUFFER_MAX (PIPE_BUF, 4096) bytes. */
#define DGRAM_MAX 4096

static volatile sig_atomic_t done;

/* Whether the datagram has the line `a` (whole, between newlines). */
static bool has_assignment(const char *dgram, const char *a)
{
	size_t n = strlen(a);

	for (const char *p = dgram; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, a, n) && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

static void on_signal(int sig)
{
	(void)sig;
	done = 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct sigaction act = { .sa_handler = on_signal };
	int fd, one = 1;
	FILE *out;

	const char *on = NULL, *on_cmd = NULL;

	if (argc == 2 && !strcmp(argv[1], "now")) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		printf("%llu\n", (unsigned long long)ts.tv_sec * 1000000ull +
					(unsigned long long)ts.tv_nsec / 1000);
		return 0;
	}
	if (argc == 6 && !strcmp(argv[3], "--on")) {
		on = argv[4];
		on_cmd = argv[5];
	} else if (argc != 3) {
		argv[1] = "";
	}
	if (!argv[1][0] || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: sd_notify_recv SOCKET OUT [--on ASSIGNMENT CMD] | sd_notify_recv now\n");
		return 1;
	}
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		perror("sd_notify_recv: socket");
		return 1;
	}
	unlink(argv[1]);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(argv[1], 0666) < 0) {
		fprintf(stderr, "sd_notify_recv: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	out = fopen(argv[2], "ae");
	if (!out) {
		fprintf(stderr, "sd_notify_recv: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	while (!done) {
		char buf[DGRAM_MAX + 1];
		union {
			char b[CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = buf, .iov_len = DGRAM_MAX };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				     .msg_controllen = sizeof(ctl.b) };
		struct ucred cred = { .pid = 0 };
		struct timespec ts;
		ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("sd_notify_recv: recvmsg");
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
			    c->cmsg_len == CMSG_LEN(sizeof(cred)))
				memcpy(&cred, CMSG_DATA(c), sizeof(cred));
		if (mh.msg_flags & MSG_TRUNC) {
			fprintf(stderr, "sd_notify_recv: a datagram longer than %d bytes (systemd drops those)\n",
				DGRAM_MAX);
			continue;
		}
		fprintf(out, "%llu\t%d", (unsigned long long)ts.tv_sec * 1000000ull +
					   (unsigned long long)ts.tv_nsec / 1000, (int)cred.pid);
		fputc('\t', out);
		for (ssize_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)buf[i];

			if (ch == '\n')
				fputc(i + 1 < n ? '\t' : ' ', out);
			else
				fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, out);
		}
		buf[n] = '\0';
		if (on && has_assignment(buf, on)) {
			int st = system(on_cmd);

			fprintf(out, "\ton=%d", WIFEXITED(st) ? WEXITSTATUS(st) : 128);
		}
		fputc('\n', out);
		fflush(out);
	}
	fclose(out);
	unlink(argv[1]);
	return 0;
}
