/*
 * monclient.c - the collector's requests to the monitor (see monclient.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "monclient.h"

static bool gone;
static int policy_fd = -1;
static char policy_name[sizeof(((struct msg_policy *)0)->name)];

bool monclient_gone(void)
{
	return gone;
}

static void keep_policy(const struct msg_policy *m, int fd)
{
	if (policy_fd >= 0)
		close(policy_fd); /* two SIGHUPs before we looked: the newer wins */
	policy_fd = fd;
	memcpy(policy_name, m->name, sizeof(policy_name));
	policy_name[sizeof(policy_name) - 1] = '\0';
}

union msg_in {
	struct msg_reply reply;
	struct msg_files_reply files;
	struct msg_maps_reply maps;
	struct msg_hz_reply hz;
	struct msg_policy policy;
	uint8_t raw[PRIVSEP_MAX_MSG];
};

/* One message from the monitor; the type, or -EPIPE. */
static int receive(union msg_in *u, int *fds)
{
	/* Replies and policies may repeat: nothing here is once-only. */
	bool seen[MSG_TYPE_MAX] = { 0 };
	size_t len;
	int type = privsep_recv(PRIVSEP_FD, PEER_MONITOR, seen, u, &len, fds);

	if (type == -EPIPE || type == -ECONNRESET) {
		gone = true;
		return -EPIPE;
	}
	if (type < 0)
		fatalx(70, "the monitor broke the protocol: %s", strerror(-type));
	if (type == MSG_POLICY) {
		if (u->policy.version != PRIVSEP_VERSION)
			fatalx(70, "policy message of protocol version %u", u->policy.version);
		keep_policy(&u->policy, fds[0]);
	}
	return type;
}

/* A positive errno from the monitor as -errno; anything else is -EIO. */
static int remote_err(int32_t err)
{
	return err == 0 ? 0 : err > 0 && err < 4096 ? -err : -EIO;
}

/* Send req and receive its answer into u (fds of an FD_REPLY in fds). */
static int ask(const void *req, size_t len, union msg_in *u, int *fds)
{
	int rc, type;

	if (gone)
		return -EPIPE;
	rc = privsep_send(PRIVSEP_FD, req, len, NULL, 0);
	if (rc == -EPIPE || rc == -ECONNRESET) {
		gone = true;
		return -EPIPE;
	}
	if (rc)
		fatalx(70, "cannot reach the monitor: %s", strerror(-rc));
	for (;;) {
		type = receive(u, fds);
		if (type < 0 || type != MSG_POLICY)
			return type;
		/* kept for the loop; the answer is still to come */
	}
}

int monclient_ask(const void *req, size_t len)
{
	union msg_in u;
	int fds[PRIVSEP_MAX_FDS];
	int type = ask(req, len, &u, fds);

	if (type < 0)
		return type;
	if (type == MSG_FD_REPLY)
		return fds[0];
	if (type == MSG_ERR_REPLY)
		return remote_err(u.reply.err);
	fatalx(70, "the monitor sent message %d where an FD or ERR answer was due", type);
}

int monclient_ask_hz(const void *req, size_t len, unsigned *ret_hz)
{
	union msg_in u;
	int fds[PRIVSEP_MAX_FDS];
	int type = ask(req, len, &u, fds);

	if (type < 0)
		return type;
	if (type != MSG_HZ_REPLY)
		fatalx(70, "the monitor sent message %d where a frequency answer was due", type);
	*ret_hz = u.hz.hz;
	return remote_err(u.hz.err);
}

int monclient_ask_files(const struct msg_open_files *req, int *ret_fds)
{
	union msg_in u;
	int fds[PRIVSEP_MAX_FDS];
	size_t k = 0;
	int type = ask(req, sizeof(*req), &u, fds);

	if (type < 0)
		return type;
	if (type != MSG_FILES_REPLY)
		fatalx(70, "the monitor sent message %d where a FILES answer was due", type);
	/* privsep_recv checked that nfds fds came */
	if (u.files.n != req->n)
		fatalx(70, "the monitor answered %u files where %u were asked", u.files.n, req->n);
	for (uint32_t i = 0; i < PRIVSEP_MAX_FDS; i++) {
		if (i >= req->n ? u.files.err[i] != 0 : u.files.err[i] < 0)
			fatalx(70, "the monitor's FILES answer has an impossible error %d", u.files.err[i]);
		if (i < req->n && u.files.err[i] == 0 && k == u.files.nfds)
			fatalx(70, "the monitor's FILES answer has fewer fds than successes");
		if (i < req->n)
			ret_fds[i] = u.files.err[i] ? remote_err(u.files.err[i]) : fds[k++];
	}
	if (k != u.files.nfds)
		fatalx(70, "the monitor's FILES answer has more fds than successes");
	return 0;
}

int monclient_ask_maps(const struct msg_open_maps *req, struct msg_maps_reply *ret, int *ret_fds)
{
	static const struct msg_maps_file zero;
	union msg_in u;
	int fds[PRIVSEP_MAX_FDS];
	size_t k = 1;
	int type = ask(req, sizeof(*req), &u, fds);

	if (type < 0)
		return type;
	if (type == MSG_ERR_REPLY)
		return u.reply.err ? remote_err(u.reply.err) : -EIO;
	if (type != MSG_MAPS_REPLY)
		fatalx(70, "the monitor sent message %d where a MAPS answer was due", type);
	/* privsep_recv checked that nfds fds came, at most PRIVSEP_MAX_FDS */
	if (u.maps.nfds < 1 || u.maps.n > MAPS_REPLY_FILES)
		fatalx(70, "the monitor's MAPS answer has %u fds for %u files", u.maps.nfds, u.maps.n);
	for (uint32_t i = 0; i < MAPS_REPLY_FILES; i++) {
		const struct msg_maps_file *e = &u.maps.files[i];

		if (i >= u.maps.n ? memcmp(e, &zero, sizeof(zero)) != 0 : e->err < 0 || e->pad)
			fatalx(70, "the monitor's MAPS answer has an impossible entry %u", i);
		if (i < u.maps.n && e->err == 0 && k == u.maps.nfds)
			fatalx(70, "the monitor's MAPS answer has fewer fds than files opened");
		if (i < u.maps.n)
			ret_fds[i] = e->err ? remote_err(e->err) : fds[k++];
	}
	if (k != u.maps.nfds)
		fatalx(70, "the monitor's MAPS answer has more fds than files opened");
	*ret = u.maps;
	return fds[0];
}

int monclient_poll(void)
{
	union msg_in u;
	int fds[PRIVSEP_MAX_FDS];
	int type;

	if (gone)
		return -EPIPE;
	type = receive(&u, fds);
	if (type < 0)
		return type;
	if (type != MSG_POLICY)
		fatalx(70, "the monitor sent an answer (%d) nobody asked for", type);
	return 1;
}

bool monclient_policy_waiting(void)
{
	return policy_fd >= 0;
}

int monclient_take_policy(int *ret_fd, char *ret_name, size_t len)
{
	if (policy_fd < 0)
		return 0;
	*ret_fd = policy_fd;
	snprintf(ret_name, len, "%s", policy_name);
	policy_fd = -1;
	return 1;
}
