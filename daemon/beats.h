/*
 * beats.h - the workers' heartbeats as the monitor keeps them: whether
 * each worker is alive and making progress (for systemd's watchdog), and
 * the service's state in one line (for STATUS=).
 *
 * Runs in the monitor.  The beats (MSG_COLLECTOR_BEAT, MSG_UPLINK_BEAT,
 * privsep.h) come from unprivileged, possibly compromised workers: they
 * are checked here before a field is used, and a worker can only make
 * itself look stalled or healthy, and the status line say what it says
 * (bounded, printable).  Library-like: returns 0 or -errno, never logs.
 */
#ifndef VIGIL_BEATS_H
#define VIGIL_BEATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "privsep.h"


struct beats_worker {
	bool seen;            /* a beat arrived */
	uint64_t progress;    /* the last progress counter */
	uint64_t moved_us;    /* CLOCK_MONOTONIC when progress last advanced (or the start) */
};

struct beats {
	struct beats_worker collector, uplink;
	struct msg_collector_beat c;  /* the last valid ones */
	struct msg_uplink_beat u;
	uint64_t started_us;
	uint64_t stall_min_us; /* three beats: a worker silent this long, at least, is stalled */
};

/* The workers beat every beat_ms (their setups'). */
void beats_init(struct beats *b, uint64_t now_us, uint32_t beat_ms);

/*
 * How often the workers beat (privsep.h), given systemd's WATCHDOG_USEC
 * (0: none): a sixth of it, so that a stall (three silent beats) is seen
 * within half of it, within BEAT_MIN_MS..BEAT_MAX_MS; BEAT_MAX_MS when
 * nothing watches.
 */
uint32_t beats_interval_ms(uint64_t watchdog_usec);

/*
 * Check a beat and keep it.  -EPROTO (with *ret_why) when it cannot be
 * meant: another protocol version, more tenants listed than fit, a state
 * out of range, progress going backwards.  Names are cut to their
 * buffers and anything unprintable in them replaced.
 */
int beats_take_collector(struct beats *b, const struct msg_collector_beat *m, uint64_t now_us,
			 const char **ret_why);
int beats_take_uplink(struct beats *b, const struct msg_uplink_beat *m, uint64_t now_us,
		      const char **ret_why);

/*
 * Whether a worker has made no progress for stall_us, and at least three
 * beats (its beats stopped, or its counter did): returns true with its
 * name ("collector", "uplink")
 * and how long, the collector first.  A worker that never beat counts
 * from beats_init.  uplink_alive false: the uplink is not checked (it has
 * exited on purpose).
 */
bool beats_stalled(const struct beats *b, uint64_t now_us, uint64_t stall_us, bool uplink_alive,
		   const char **ret_who, uint64_t *ret_for_us);

/*
 * The STATUS= line: frequency, tenants (count, names and frequencies),
 * export and control-plane state, e.g.
 *   "sampling at 99 Hz; 2 tenants: web 49 Hz, batch 19 Hz; export: off;
 *    control plane: connected, policy serial 7"
 * hz is the configured default frequency.  Always NUL-terminated within len.
 */
void beats_status(const struct beats *b, unsigned hz, char *buf, size_t len);

#endif
