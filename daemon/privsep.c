/*
 * privsep.c - message transport and the validation table (see privsep.h).
 *
 * Shared by the monitor and the workers; library-like, never logs.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fds.h"
#include "privsep.h"

const struct privsep_rule privsep_rules[MSG_TYPE_MAX] = {
	/*                  sender          exact length                       fds once counted */
	[MSG_COLLECTOR_SETUP] = { PEER_MONITOR, sizeof(struct msg_collector_setup), 5, true, false },
	[MSG_COLLECTOR_READY] = { PEER_COLLECTOR, sizeof(struct msg_ready), 0, true, false },
	[MSG_OPEN_MAPS] = { PEER_COLLECTOR, sizeof(struct msg_open_maps), 0, false, false },
	[MSG_OPEN_FILE] = { PEER_COLLECTOR, sizeof(struct msg_open_file), 0, false, false },
	[MSG_OPEN_DEBUG] = { PEER_COLLECTOR, sizeof(struct msg_open_debug), 0, false, false },
	[MSG_OPEN_DEBUGLINK] = { PEER_COLLECTOR, sizeof(struct msg_open_debuglink), 0, false, false },
	[MSG_OPEN_FILES] = { PEER_COLLECTOR, sizeof(struct msg_open_files), 0, false, false },
	[MSG_FILES_REPLY] = { PEER_MONITOR, sizeof(struct msg_files_reply), PRIVSEP_MAX_FDS, false, true },
	[MSG_MAPS_REPLY] = { PEER_MONITOR, sizeof(struct msg_maps_reply), PRIVSEP_MAX_FDS, false, true },
	[MSG_FD_REPLY] = { PEER_MONITOR, sizeof(struct msg_reply), 1, false, false },
	[MSG_ERR_REPLY] = { PEER_MONITOR, sizeof(struct msg_reply), 0, false, false },
	[MSG_SET_HZ] = { PEER_COLLECTOR, sizeof(struct msg_set_hz), 0, false, false },
	[MSG_SET_UNWIND] = { PEER_COLLECTOR, sizeof(struct msg_set_unwind), 0, false, false },
	[MSG_UPLINK_SETUP] = { PEER_MONITOR, sizeof(struct msg_uplink_setup), 0, true, false },
	[MSG_UPLINK_READY] = { PEER_UPLINK, sizeof(struct msg_ready), 0, true, false },
	[MSG_POLICY] = { PEER_MONITOR, sizeof(struct msg_policy), 1, false, false },
	[MSG_TENANT_CGROUP] = { PEER_COLLECTOR, sizeof(struct msg_tenant_cgroup), 0, false, false },
	[MSG_TENANT_CGROUP_DEL] = { PEER_COLLECTOR, sizeof(struct msg_tenant_cgroup_del), 0, false, false },
	[MSG_LOADER_FD] = { PEER_LOADER, sizeof(struct msg_loader_fd), 1, false, false },
	[MSG_LOADER_DONE] = { PEER_LOADER, sizeof(struct msg_loader_done), 0, true, false },
	[MSG_HZ_REPLY] = { PEER_MONITOR, sizeof(struct msg_hz_reply), 0, false, false },
	[MSG_SAMPLING_START] = { PEER_COLLECTOR, sizeof(struct msg_ready), 0, true, false },
	[MSG_UPLINK_CREDS] = { PEER_MONITOR, sizeof(struct msg_uplink_creds), 3, false, false },
	[MSG_COLLECTOR_CP] = { PEER_MONITOR, sizeof(struct msg_collector_cp), 3, true, false },
	[MSG_UPLINK_PEER] = { PEER_MONITOR, sizeof(struct msg_uplink_peer), 1, true, false },
	[MSG_REMOTE_POLICY] = { PEER_UPLINK, sizeof(struct msg_remote_policy), 1, false, false },
	[MSG_AGENT_START] = { PEER_COLLECTOR, sizeof(struct msg_agent_start), 0, true, false },
	[MSG_POLICY_STATUS] = { PEER_COLLECTOR, sizeof(struct msg_policy_status), 1, false, false },
	[MSG_AGENT_HEALTH] = { PEER_COLLECTOR, sizeof(struct msg_agent_health), 0, false, false },
	[MSG_UPLINK_BROKE] = { PEER_COLLECTOR, sizeof(struct msg_uplink_broke), 0, true, false },
	[MSG_IDENTITY_SAVE] = { PEER_UPLINK, sizeof(struct msg_identity_save), 1, false, false },
	/* export to Pyroscope (issue 11) */
	[MSG_EXPORT_PROFILE] = { PEER_COLLECTOR, sizeof(struct msg_export_profile), 1, false, false },
	[MSG_EXPORT_ACK] = { PEER_UPLINK, sizeof(struct msg_export_ack), 0, false, false },
	[MSG_UPLINK_EXPORT] = { PEER_MONITOR, sizeof(struct msg_uplink_export), 5, false, false },
	[MSG_EXPORT_CONFIG] = { PEER_COLLECTOR, sizeof(struct msg_export_config), 0, false, false },
	/* Prometheus metrics */
	[MSG_COLLECTOR_METRICS] = { PEER_COLLECTOR, sizeof(struct msg_collector_metrics), 0, false, false },
	[MSG_PROC_METRICS] = { PEER_MONITOR, sizeof(struct msg_proc_metrics), 0, false, false },
	[MSG_COLLECTOR_PEER] = { PEER_MONITOR, sizeof(struct msg_metrics_fd), 1, true, false },
	[MSG_UPLINK_METRICS] = { PEER_MONITOR, sizeof(struct msg_metrics_fd), 3, true, false },
	[MSG_COLLECTOR_METRICS_SOCK] = { PEER_MONITOR, sizeof(struct msg_metrics_fd), 1, true, false },
	[MSG_METRICS_WANTED] = { PEER_UPLINK, sizeof(struct msg_ready), 0, false, false },
	/* systemd readiness and watchdog (issue 11) */
	[MSG_COLLECTOR_BEAT] = { PEER_COLLECTOR, sizeof(struct msg_collector_beat), 0, false, false },
	[MSG_UPLINK_BEAT] = { PEER_UPLINK, sizeof(struct msg_uplink_beat), 0, false, false },
};
_Static_assert(sizeof(struct msg_collector_metrics) <= PRIVSEP_MAX_MSG, "collector metrics fit a message");
_Static_assert(offsetof(struct msg_files_reply, nfds) == sizeof(struct msg_hdr),
	       "FILES_REPLY's fd count comes first (nfds_counted)");
_Static_assert(offsetof(struct msg_maps_reply, nfds) == sizeof(struct msg_hdr),
	       "MAPS_REPLY's fd count comes first (nfds_counted)");

int privsep_send(int sock, const void *msg, size_t len, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * PRIVSEP_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > PRIVSEP_MAX_FDS || len > PRIVSEP_MAX_MSG)
		return -EINVAL;
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
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int privsep_recv(int sock, enum privsep_peer from, bool *seen, void *buf, size_t *ret_len,
		 int *ret_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * PRIVSEP_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = PRIVSEP_MAX_MSG };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	int fds[PRIVSEP_MAX_FDS];
	size_t nfds = 0;
	struct msg_hdr hdr;
	const struct privsep_rule *rule;
	ssize_t n;

	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	/* Collect every fd first, so that a bad message leaks none. */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds < PRIVSEP_MAX_FDS)
				fds[nfds++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0) {
		/*
		 * End of stream, or an empty datagram (SEQPACKET cannot tell them
		 * apart); one that carried fds was certainly sent, and is hostile.
		 */
		if (nfds)
			goto bad;
		return -EPIPE;
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		goto bad;
	if ((size_t)n < sizeof(hdr))
		goto bad;
	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.type == 0 || hdr.type >= MSG_TYPE_MAX)
		goto bad;
	rule = &privsep_rules[hdr.type];
	if (rule->len == 0 || rule->sender != from || hdr.len != (size_t)n || rule->len != (size_t)n)
		goto bad;
	if (rule->nfds_counted) {
		uint32_t said;

		/* rule->len leaves room for it (a static assertion of the type's) */
		memcpy(&said, (const char *)buf + sizeof(hdr), sizeof(said));
		if (said != nfds || nfds > rule->nfds)
			goto bad;
	} else if (rule->nfds != nfds) {
		goto bad;
	}
	if (rule->once && seen[hdr.type])
		goto bad;
	seen[hdr.type] = true;
	memcpy(ret_fds, fds, nfds * sizeof(int));
	/* a counted type's slots past what came: -1, so that closing rule.nfds of them is safe */
	for (size_t i = nfds; rule->nfds_counted && i < rule->nfds; i++)
		ret_fds[i] = -1;
	*ret_len = n;
	return (int)hdr.type;
bad:
	fds_close(fds, nfds);
	return -EPROTO;
}

/* export to Pyroscope (issue 11): every message fits one datagram */
_Static_assert(sizeof(struct msg_export_profile) <= PRIVSEP_MAX_MSG, "msg_export_profile");
_Static_assert(sizeof(struct msg_collector_setup) <= PRIVSEP_MAX_MSG, "msg_collector_setup");
_Static_assert(sizeof(struct msg_export_ack) <= PRIVSEP_MAX_MSG, "msg_export_ack");
_Static_assert(sizeof(struct msg_uplink_export) <= PRIVSEP_MAX_MSG, "msg_uplink_export");
_Static_assert(sizeof(struct msg_export_config) <= PRIVSEP_MAX_MSG, "msg_export_config");

int privsep_take_asks(int sock, enum privsep_peer from, bool *seen, enum privsep_type type, int max)
{
	int n = 0;

	while (n < max) {
		union {
			struct msg_ready m;
			uint8_t raw[PRIVSEP_MAX_MSG];
		} u;
		int fds[PRIVSEP_MAX_FDS];
		size_t len;
		int got = privsep_recv(sock, from, seen, &u, &len, fds);

		if (got == -EINTR)
			continue;
		if (got == -EAGAIN)
			break;
		if (got != (int)type || u.m.version != PRIVSEP_VERSION)
			return got >= 0 || got == -EPROTO ? -EPROTO : -EPIPE;
		n++;
	}
	return n;
}
