/*
 * sampler_handover.c - the loader hands the loaded sampler to the monitor
 * as fds (sampler_send / sampler_receive, see sampler.h).
 *
 * sampler_send runs in the loader; sampler_receive in the monitor, which
 * checks every message against the privsep table (PEER_LOADER) and accepts
 * a hand-over only when it is complete and consistent: one fd per slot,
 * every per-CPU slot filled, no more CPUs than announced.
 */
#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

#include "privsep.h"
#include "sampler_int.h"

enum { FD_PROG = 1, FD_EVENTS, FD_STATS, FD_TSTATS, FD_TENANT_CG, FD_EXEC_LINK, FD_TENANT_CFG, FD_CPU_EVENT,
       FD_CPU_LINK };

static int send_fd(int sock, uint32_t kind, uint32_t index, int32_t cpu, int fd)
{
	struct msg_loader_fd m = { .hdr = { MSG_LOADER_FD, sizeof(m) }, .kind = kind,
				   .index = index, .cpu = cpu };

	return privsep_send(sock, &m, sizeof(m), &fd, 1);
}

int sampler_send(const struct sampler *s, int sock)
{
	struct msg_loader_done done = { .hdr = { MSG_LOADER_DONE, sizeof(done) },
					.version = PRIVSEP_VERSION, .ncpus = s->ncpus, .hz = s->tenant_hz[0] };
	int rc = 0;

	rc = rc ?: send_fd(sock, FD_PROG, 0, -1, s->prog_fd);
	rc = rc ?: send_fd(sock, FD_EVENTS, 0, -1, s->events_fd);
	rc = rc ?: send_fd(sock, FD_STATS, 0, -1, s->stats_fd);
	rc = rc ?: send_fd(sock, FD_TSTATS, 0, -1, s->tstats_fd);
	rc = rc ?: send_fd(sock, FD_TENANT_CG, 0, -1, s->tenant_cg_fd);
	rc = rc ?: send_fd(sock, FD_EXEC_LINK, 0, -1, s->exec_link_fd);
	rc = rc ?: send_fd(sock, FD_TENANT_CFG, 0, -1, s->tenant_cfg_fd);
	for (unsigned i = 0; !rc && i < s->ncpus; i++) {
		rc = send_fd(sock, FD_CPU_EVENT, i, s->cpus[i], s->pfds[i]);
		rc = rc ?: send_fd(sock, FD_CPU_LINK, i, s->cpus[i], s->links[i]);
	}
	return rc ?: privsep_send(sock, &done, sizeof(done), NULL, 0);
}

/* Where an fd of this kind and index goes, or NULL if the message is bad. */
static int *slot(struct sampler *s, const struct msg_loader_fd *m)
{
	switch (m->kind) {
	case FD_PROG: return &s->prog_fd;
	case FD_EVENTS: return &s->events_fd;
	case FD_STATS: return &s->stats_fd;
	case FD_TSTATS: return &s->tstats_fd;
	case FD_TENANT_CG: return &s->tenant_cg_fd;
	case FD_EXEC_LINK: return &s->exec_link_fd;
	case FD_TENANT_CFG: return &s->tenant_cfg_fd;
	case FD_CPU_EVENT:
	case FD_CPU_LINK:
		if (m->index >= s->ncpus || m->cpu < 0)
			return NULL;
		s->cpus[m->index] = m->cpu;
		return m->kind == FD_CPU_EVENT ? &s->pfds[m->index] : &s->links[m->index];
	}
	return NULL;
}

int sampler_receive(int sock, struct sampler **ret)
{
	union {
		struct msg_hdr hdr;
		struct msg_loader_fd fd;
		struct msg_loader_done done;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} u;
	bool seen[MSG_TYPE_MAX] = { 0 };
	struct sampler *s = sampler_alloc(SAMPLER_MAX_CPUS);
	int fds[PRIVSEP_MAX_FDS];
	size_t len;

	if (!s)
		return -ENOMEM;
	for (;;) {
		int type = privsep_recv(sock, PEER_LOADER, seen, &u, &len, fds), *where;

		if (type < 0) {
			sampler_free(s); /* closes whatever arrived */
			return type;
		}
		if (type == MSG_LOADER_DONE) {
			if (u.done.version != PRIVSEP_VERSION || u.done.ncpus == 0 ||
			    u.done.ncpus > SAMPLER_MAX_CPUS || u.done.hz == 0)
				break;
			for (unsigned i = u.done.ncpus; i < SAMPLER_MAX_CPUS; i++)
				if (s->pfds[i] >= 0 || s->links[i] >= 0)
					goto bad; /* more CPUs than it says: closed by sampler_free */
			s->ncpus = u.done.ncpus;
			s->tenant_hz[0] = u.done.hz;
			for (unsigned i = 0; i < s->ncpus; i++)
				if (s->pfds[i] < 0 || s->links[i] < 0)
					goto bad;
			if (s->prog_fd < 0 || s->events_fd < 0 || s->stats_fd < 0 || s->tstats_fd < 0 ||
			    s->tenant_cg_fd < 0 || s->exec_link_fd < 0 || s->tenant_cfg_fd < 0)
				goto bad;
			*ret = s;
			return 0;
		}
		where = slot(s, &u.fd);
		if (!where || *where >= 0) {
			close(fds[0]);
			break;
		}
		*where = fds[0];
	}
bad:
	sampler_free(s);
	return -EPROTO;
}
