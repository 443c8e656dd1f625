/*
 * heartbeat.h - when a worker sends its heartbeat to the monitor
 * (MSG_COLLECTOR_BEAT, MSG_UPLINK_BEAT: privsep.h).
 *
 * Runs in the collector and the uplink (unprivileged, confined).  The
 * worker calls heartbeat_turn() each time its main loop turns: that
 * advances the progress counter the monitor watches, and says when a beat
 * is due (every BEAT_INTERVAL_MS, or at once when forced because what
 * the beat reports changed).  A worker stuck anywhere else stops its
 * counter, which is the point.  Library-like: no I/O, never logs.
 */
#ifndef VIGIL_HEARTBEAT_H
#define VIGIL_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "privsep.h"

struct heartbeat {
	uint64_t progress;   /* loop turns */
	uint64_t next_ns;    /* CLOCK_MONOTONIC when the next beat is due; 0: now */
	uint64_t interval_ns; /* the setup's beat_ms; 0: BEAT_MIN_MS */
	uint64_t shown;      /* the digest of what the last beat showed (heartbeat_changed) */
};

/* BEAT_SLACK_MS (privsep.h), for heartbeat_turn(). */
#define HEARTBEAT_SLACK_NS (BEAT_SLACK_MS * 1000000ull)

/* Beat every interval_ms (the setup's beat_ms, checked by the caller). */
void heartbeat_init(struct heartbeat *h, uint32_t interval_ms);

/*
 * One turn of the loop; true when a beat is due within slack_ns, or
 * forced (the next is scheduled the interval after now_ns).
 */
bool heartbeat_turn(struct heartbeat *h, uint64_t now_ns, uint64_t slack_ns, bool force);

/*
 * Whether what the worker's beat shows in STATUS= changed: digest is the
 * worker's digest of it (heartbeat_digest).  Kept; true the first time.
 * A change is beaten at once (force), not at the next interval.
 */
bool heartbeat_changed(struct heartbeat *h, uint64_t digest);

/* Fold n bytes at p into the digest d (FNV-1a, 64 bits; start from 0). */
uint64_t heartbeat_digest(uint64_t d, const void *p, size_t n);

/* Milliseconds until the next beat is due (0: now), for the loop's poll. */
int heartbeat_timeout_ms(const struct heartbeat *h, uint64_t now_ns);

#endif
