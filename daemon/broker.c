/*
 * broker.c - the monitor's request handlers (see broker.h).
 *
 * Runs in the monitor with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH: it opens
 * what the unprivileged collector cannot, and only that.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "broker.h"
#include "procmaps.h"
#include "sampler.h"
#include "symbolizer.h"

static int reply_fd(int sock, int fd)
{
	struct msg_reply r = { .hdr = { MSG_FD_REPLY, sizeof(r) }, .err = 0 };

	return privsep_send(sock, &r, sizeof(r), &fd, 1);
}

static int reply_err(struct broker *b, int sock, int err)
{
	struct msg_reply r = { .hdr = { MSG_ERR_REPLY, sizeof(r) }, .err = err < 0 ? -err : err };

	b->last_err = err < 0 ? err : -err;
	return privsep_send(sock, &r, sizeof(r), NULL, 0);
}

static int hostile(struct broker *b, const char *why)
{
	b->violation = why;
	return -EPROTO;
}

static int open_maps(struct broker *b, int sock, const struct msg_open_maps *m)
{
	char path[48];
	int fd, rc;

	if (m->pid == 0 || m->pid > BROKER_PID_MAX || m->pad)
		return hostile(b, "OPEN_MAPS with an impossible pid");
	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/maps", m->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return reply_err(b, sock, errno == ENOENT ? -ESRCH : -errno);
	rc = reply_fd(sock, fd);
	close(fd);
	return rc;
}

static int open_file(struct broker *b, int sock, const struct msg_open_file *m)
{
	const struct procmap *mp = NULL;
	struct procmaps *maps = NULL;
	struct stat st;
	int fd, rc;

	if (m->pid == 0 || m->pid > BROKER_PID_MAX || m->pad)
		return hostile(b, "OPEN_FILE with an impossible pid");
	if (m->start >= m->end || (m->start | m->end) & 4095)
		return hostile(b, "OPEN_FILE with an impossible mapping range");

	/* The monitor's own reading of the process, not the collector's word. */
	rc = procmaps_read((int)m->pid, &maps);
	if (rc < 0)
		return reply_err(b, sock, rc);
	for (size_t i = 0; i < maps->n; i++) {
		if (maps->maps[i].start == m->start && maps->maps[i].end == m->end) {
			mp = &maps->maps[i];
			break;
		}
	}
	if (!mp || mp->path[0] != '/' || !(mp->prot & PROT_EXEC) || mp->inode != m->inode ||
	    mp->dev_major != m->dev_major || mp->dev_minor != m->dev_minor) {
		procmaps_free(maps);
		return reply_err(b, sock, -ENOENT);
	}
	fd = symbolizer_open_mapped_file(m->pid, mp, &st);
	procmaps_free(maps);
	if (fd < 0)
		return reply_err(b, sock, fd);
	rc = reply_fd(sock, fd);
	close(fd);
	return rc;
}

static int set_hz(struct broker *b, const struct msg_set_hz *m)
{
	unsigned hz;

	if (m->hz == 0 || m->pad)
		return hostile(b, "SET_HZ of 0");
	hz = m->hz > b->max_hz ? b->max_hz : m->hz;
	b->last_hz_asked = m->hz;
	b->last_hz_applied = hz;
	if (b->sampler) {
		int rc = sampler_set_hz(b->sampler, hz);

		if (rc)
			b->last_err = rc;
	}
	return 0;
}

int broker_serve_one(struct broker *b, int sock, enum privsep_peer from)
{
	union {
		struct msg_hdr hdr;
		struct msg_open_maps open_maps;
		struct msg_open_file open_file;
		struct msg_set_hz set_hz;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} u;
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int type;

	b->last_type = 0;
	b->last_err = 0;
	b->violation = NULL;
	type = privsep_recv(sock, from, from == PEER_UPLINK ? b->seen_uplink : b->seen_collector, &u,
			    &len, fds);
	if (type == -EPROTO)
		return hostile(b, "a message the table does not allow (type, sender, length, fds or repeat)");
	if (type < 0)
		return type;
	b->last_type = type;
	/* No message a worker may send carries fds (privsep_recv checked). */
	switch (type) {
	case MSG_COLLECTOR_READY:
	case MSG_UPLINK_READY:
		return 0;
	case MSG_OPEN_MAPS:
		return open_maps(b, sock, &u.open_maps);
	case MSG_OPEN_FILE:
		return open_file(b, sock, &u.open_file);
	case MSG_SET_HZ:
		return set_hz(b, &u.set_hz);
	default:
		return hostile(b, "a message type the monitor does not answer");
	}
}
