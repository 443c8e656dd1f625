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
 * Both send heartbeats, which are checked and kept in b->beats.
 *
 * Library-like: returns 0 or -errno and never logs; what happened is left
 * in struct broker for the monitor to log.
 */
#ifndef VIGIL_BROKER_H
#define VIGIL_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "privsep.h"

/* Where separate debug files are found by build-id (Debian, Fedora, GDB). */
#define BROKER_DEBUG_DIR "/usr/lib/debug/.build-id"

struct beats;
struct sampler;
struct procmaps;

/*
 * OPEN_FILE is answered from the maps of the last process asked about,
 * read once and kept, not read again for each request: a process can map
 * one file thousands of times, and reading its maps costs time in
 * proportion (about 15 ms at 16384 mappings here), so one read per
 * request made a look at such a process quadratic.  The kept maps are
 * those of one process (pid and start time, checked at each request, so a
 * reused pid is never answered from them), read at most BROKER_MAPS_TTL_MS
 * ago, and after the collector's last OPEN_MAPS: OPEN_MAPS drops them, and
 * the collector asks about mappings of the copy of the maps it reads from
 * that fd, so the monitor's copy is at least as new as the collector's.
 * A mapping that is not in them is refused (it changed); one that is
 * there is still opened only if the file at its path is that inode on that
 * device (mapfile.h).  What this allows that reading maps at each request
 * did not: the collector may get a file the process unmapped less than
 * BROKER_MAPS_TTL_MS ago, and had mapped executable when the monitor read.
 */
#define BROKER_MAPS_TTL_MS 1000

struct broker_maps {
	struct procmaps *maps; /* NULL: nothing kept */
	uint32_t pid;
	uint64_t start_ticks;  /* procstat_start_ticks() when read */
	uint64_t read_ns;      /* CLOCK_MONOTONIC when read */
};

struct broker {
	struct sampler *sampler; /* NULL: frequency requests are checked, not applied */
	unsigned max_hz;         /* absolute ceiling, whatever a worker asks */
	unsigned unwind;         /* --unwind: VIGIL_UNWIND_FP forbids stack copies */
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
	struct broker_maps maps; /* kept for OPEN_FILE (above); broker_release() frees */
	struct beats *beats;     /* where heartbeats are checked and kept (beats.h); NULL: dropped */
	uint64_t maps_reads;     /* /proc/PID/maps read for OPEN_FILE(S) and for OPEN_MAPS's files */
	/* The last EXPORT_CONFIG (strings terminated), for the monitor's loop to act on. */
	struct msg_export_config export_cfg;
};

/*
 * Receive one message from `from` on sock, check it and answer it.
 * Returns 0 when handled (including requests refused with an ERR_REPLY),
 * -EPIPE when the peer closed its end, -EPROTO when the message breaks the
 * protocol (b->violation says how), or another -errno from the socket.
 */
int broker_serve_one(struct broker *b, int sock, enum privsep_peer from);

/*
 * Milliseconds until the kept maps expire (for the caller's poll timeout),
 * or -1 when none are kept.  broker_expire() drops them once expired, so
 * that an idle monitor does not hold them.
 */
int broker_maps_timeout_ms(const struct broker *b);
void broker_expire(struct broker *b);

/* Free what b holds (the kept maps).  b may be used again afterwards. */
void broker_release(struct broker *b);

/* Highest pid the kernel can hand out; larger pids in requests are hostile. */
#define BROKER_PID_MAX 4194304u

#endif
