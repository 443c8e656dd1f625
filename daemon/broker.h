/*
 * broker.h - the monitor's answers to its workers' requests.
 *
 * Runs in the monitor (privileged).  This is the only code there that
 * reads bytes a worker chose, so it trusts none of them: every message is
 * checked against privsep_rules before a field is read (privsep_recv), and
 * every field is range-checked before use.  A message that breaks the
 * protocol means the worker is compromised (or broken, which the monitor
 * cannot tell apart): the caller kills it.
 *
 * The collector may ask for /proc/PID/maps and for the file behind one
 * executable mapping (which the broker finds in maps it reads itself, so no
 * path from the collector is ever opened), for a tenant's sampling
 * frequency, which the broker caps at max_hz, and for a tenant's cgroup to
 * be sampled or not, named by cgroup id.  The uplink may ask for nothing yet.
 *
 * Library-like: returns 0 or -errno and never logs; what happened is left
 * in struct broker for the monitor to log.
 */
#ifndef VIGIL_BROKER_H
#define VIGIL_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "privsep.h"

struct sampler;

struct broker {
	struct sampler *sampler; /* NULL: frequency requests are checked, not applied */
	unsigned max_hz;         /* absolute ceiling, whatever a worker asks */
	int cgroup_root_fd;      /* the cgroup2 mount, for opening cgroups by id; -1: none */
	bool seen_collector[MSG_TYPE_MAX];
	bool seen_uplink[MSG_TYPE_MAX];
	/* What the last call did, for the monitor's log. */
	int last_type;           /* message type, 0 if none was accepted */
	int last_err;            /* -errno of a refused request (answered with ERR_REPLY) */
	unsigned last_hz_asked, last_hz_applied, last_tenant;
	uint64_t last_cgroup_id; /* of a TENANT_CGROUP request */
	char detail[256];        /* more about last_err, when there is more */
	const char *violation;   /* with -EPROTO: which rule was broken */
};

/*
 * Receive one message from `from` on sock, check it and answer it.
 * Returns 0 when handled (including requests refused with an ERR_REPLY),
 * -EPIPE when the peer closed its end, -EPROTO when the message breaks the
 * protocol (b->violation says how), or another -errno from the socket.
 */
int broker_serve_one(struct broker *b, int sock, enum privsep_peer from);

/* Highest pid the kernel can hand out; larger pids in requests are hostile. */
#define BROKER_PID_MAX 4194304u

#endif
