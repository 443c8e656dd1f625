/*
 * snapshot.h - turn one interval's aggregated samples into a pprof profile.
 *
 * Runs in the collector.  Every distinct raw stack is symbolized once
 * (kernel frames through kallsyms, user frames through the symbolizer) and
 * added to a pprof builder with the labels pid, tid, comm, thread_name,
 * cgroup and tenant.  Frames that cannot be symbolized stay as address + mapping.
 *
 * Library-like: returns 0 or -errno, never logs.
 */
#ifndef VIGIL_SNAPSHOT_H
#define VIGIL_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "vigil_abi.h"

struct stackagg;
struct symbolizer;
struct cgroups;

struct snapshot_meta {
	int64_t time_ns;     /* realtime at the start of the interval */
	int64_t duration_ns;
	unsigned hz;
	unsigned ncpus;
	struct vigil_stats stats; /* counters over the interval, all CPUs */
	/* Names the "tenant" label of each sample (NULL: "tenant-N"). */
	const char *(*tenant_name)(const void *ctx, uint32_t tenant);
	const void *tenant_ctx;
	/* Extra profile comments (the budgets' figures); borrowed. */
	const char *const *comments;
	size_t ncomments;
};

/* Leaf functions by samples, for the terminal's top table. */
struct snapshot_top_entry {
	char *function; /* owned */
	char *comm;     /* owned */
	uint64_t count;
};

struct snapshot_top {
	struct snapshot_top_entry *v; /* sorted by count, descending */
	size_t n;
	uint64_t total;
};

/*
 * Build and encode (gzip) the profile.  *ret_buf is malloc'd and owned by
 * the caller.  ret_top may be NULL; if not, *ret_top receives the leaf
 * table (free with snapshot_top_free).
 */
int snapshot_build(const struct stackagg *agg, struct symbolizer *sym, struct cgroups *cg,
		   const struct snapshot_meta *m, uint8_t **ret_buf, size_t *ret_len,
		   struct snapshot_top **ret_top);

void snapshot_top_free(struct snapshot_top *t);

#endif
