/*
 * stackagg.h - aggregate identical raw samples within one interval.
 *
 * Runs in the collector.  Each ring-buffer record is hashed and counted;
 * symbolization happens once per distinct stack at the end of the interval,
 * which keeps the per-sample cost to one hash and one compare.
 *
 * Two samples are the same when pid, process start, tid, cgroup, process
 * and thread names, user stack format and every frame match (the CPU,
 * time, period and walk errors are not part of the identity).  An entry
 * counts its samples and sums their periods: samples of one stack may
 * stand for different CPU times (a tenant's frequency changed).
 *
 * Library-like: returns 0 or -errno, never logs.
 */
#ifndef VIGIL_STACKAGG_H
#define VIGIL_STACKAGG_H

#include <stddef.h>
#include <stdint.h>

#include "vigil_abi.h"

struct stackagg;

struct stackagg_entry {
	struct vigil_sample_hdr hdr; /* cpu, time_ns, period_ns and *_err zeroed; lengths valid */
	uint64_t count;
	uint64_t cpu_ns; /* the sum of the samples' period_ns */
	const uint8_t *frames; /* kernel_len bytes of kernel frames, then user_len bytes */
};

/* max_bytes: memory the distinct stacks may use (0: 16 MiB). NULL + errno. */
struct stackagg *stackagg_new(size_t max_bytes);

/*
 * Count one ring-buffer record (header + frames, len bytes in all).
 * -EINVAL: the record is malformed (lengths disagree, unknown format);
 * -ENOSPC: the memory limit is reached: flush, reset, and add again.
 */
int stackagg_add(struct stackagg *a, const void *record, size_t len);

size_t stackagg_distinct(const struct stackagg *a);
uint64_t stackagg_total(const struct stackagg *a);

/* The i-th distinct entry, 0 <= i < stackagg_distinct(); valid until reset. */
const struct stackagg_entry *stackagg_get(const struct stackagg *a, size_t i);

/* Forget every entry, keep the memory for reuse. */
void stackagg_reset(struct stackagg *a);
void stackagg_free(struct stackagg *a);

#endif
