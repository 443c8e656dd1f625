/*
 * framememo.h - the frames one profile has placed already.
 *
 * Runs in the collector, at the flush.  Distinct stacks of one interval
 * share most of their frames (main, the library's entry, the event loop),
 * and each stack names its frames again: looked up in the symbolizer,
 * its names interned, its location found.  A frame met again in the same
 * profile takes the location id it got the first time.  A key is the
 * frame's identity as the flush looks it up: a kernel frame by its address
 * and whether it is a return address, a user frame by its process (pid and
 * start time) as well.  The location ids belong to one pprof builder, so a
 * memo serves one profile and is freed with it.
 *
 * Hash seeds come from the clock and the memo's address: a profiled
 * process chooses its addresses, not where they land.  Library-like:
 * returns 0 or -errno, never logs.
 */
#ifndef VIGIL_FRAMEMEMO_H
#define VIGIL_FRAMEMEMO_H

#include <stddef.h>
#include <stdint.h>

/*
 * A memo keeps at most this many frames (its slots at most 8 MiB): a
 * hostile process can fill its stacks with distinct addresses, and the
 * memo only saves work.  Past it, a frame is looked up again each time.
 */
#define FRAMEMEMO_MAX 131072

/* kind: what the address is */
#define FRAMEMEMO_KERNEL 1u
#define FRAMEMEMO_USER 2u
#define FRAMEMEMO_RETURN 4u /* or'ed in: looked up at address - 1 */

struct framememo_key {
	uint32_t kind;
	uint32_t pid;      /* 0 for a kernel frame */
	uint64_t start_ns; /* the process's start; 0 for a kernel frame */
	uint64_t ip;
};

struct framememo_slot;

struct framememo {
	struct framememo_slot *slots;
	size_t mask; /* capacity - 1, a power of two; 0 with no slots yet */
	size_t n;
	uint64_t seed;
};

/* An empty memo (no allocation until the first put). */
void framememo_init(struct framememo *m);
void framememo_release(struct framememo *m);

/* The location id put for k, or 0. */
uint64_t framememo_get(const struct framememo *m, const struct framememo_key *k);

/*
 * Remember loc (> 0) for k (replacing what k had).  A memo holding
 * FRAMEMEMO_MAX frames keeps no new one, and says 0.  0, -EINVAL (loc 0)
 * or -ENOMEM.
 */
int framememo_put(struct framememo *m, const struct framememo_key *k, uint64_t loc);

#endif /* VIGIL_FRAMEMEMO_H */
