/*
 * fuzz_broker.c - libFuzzer target: arbitrary bytes, with arbitrary fds
 * attached, sent to the monitor's request handler over a real socketpair.
 *
 * Input: byte 0 picks the sender (bit 0: collector or uplink) and how many
 * fds travel with the message (bits 1-2: 0 to 3, each a /dev/null fd);
 * the rest is the datagram.  The handler must never crash, must answer or
 * refuse, and must not leak a single fd, whatever arrives.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "fdcount.h" /* tests/unit: the fd counter the unit tests use */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sv[2] = { -1, -1 };

static void drain_replies(void)
{
	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * PRIVSEP_MAX_FDS)];
			struct cmsghdr align;
		} u;
		char msg[PRIVSEP_MAX_MSG];
		struct iovec iov = { msg, sizeof(msg) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				     .msg_controllen = sizeof(u.buf) };

		if (recvmsg(sv[1], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			for (int i = 0; i < n; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(fd);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 3)];
		struct cmsghdr align;
	} u;
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	enum privsep_peer from;
	int fds[3], nfds, before;
	struct iovec iov;
	struct msghdr mh = { 0 };

	if (sv[0] < 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (size < 1)
		return 0;
	from = data[0] & 1 ? PEER_UPLINK : PEER_COLLECTOR;
	nfds = (data[0] >> 1) & 3;
	if (nfds > 3)
		nfds = 3;
	data++;
	size--;
	if (size > 2 * PRIVSEP_MAX_MSG)
		size = 2 * PRIVSEP_MAX_MSG; /* longer than that only tests the kernel */

	before = open_fd_count();
	for (int i = 0; i < nfds; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	iov.iov_base = (void *)(uintptr_t)data;
	iov.iov_len = size;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	if (sendmsg(sv[1], &mh, MSG_NOSIGNAL) < 0) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return 0;
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);

	(void)broker_serve_one(&b, sv[0], from);
	broker_release(&b);
	drain_replies();
	if (open_fd_count() != before)
		abort(); /* an fd leaked: a hostile peer could exhaust the monitor */
	return 0;
}
