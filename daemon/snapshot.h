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
	/*
	 * Names the "tenant" label of each sample by its index and the
	 * generation of names it belongs to (NULL: "tenant-N").
	 */
	const char *(*tenant_name)(const void *ctx, uint32_t tenant, uint32_t gen);
	const void *tenant_ctx;
	/* Extra profile comments (the budgets' figures); borrowed. */
	const char *const *comments;
	size_t ncomments;
	/* One more comment, as it is (the spool's drops; NULL: none); borrowed. */
	const char *extra_comment;
	/* And one on the interval's ring buffer traffic and unwinding (NULL: none); borrowed. */
	const char *unwind_comment;
	/* And one on the collector's caches: sizes, and what their bounds did (NULL: none). */
	const char *cache_comment;
};

/*
 * Leaf functions by CPU time (samples weighed by their periods: tenants may
 * be sampled at other frequencies), for the terminal's top table.
 */
struct snapshot_top_entry {
	char *function; /* owned */
	char *comm;     /* owned */
	uint64_t cpu_ns;
};

struct snapshot_top {
	struct snapshot_top_entry *v; /* sorted by cpu_ns, descending */
	size_t n;
	uint64_t samples, cpu_ns; /* in all */
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

/*
 * Export on: the interval split into one profile per series (service,
 * tenant), service as service_of() names it.  Each stack is symbolized
 * once, into the profile of its series, with the same labels and comments
 * as snapshot_build's.  Series beyond SNAPSHOT_MAX_SERIES in one interval
 * go into the series "other" of their tenant.
 */
#define SNAPSHOT_MAX_SERIES 256
#define SNAPSHOT_OTHER_SERVICE "other"

struct snapshot_series {
	char *service;   /* owned */
	char tenant[64]; /* the tenant's name (cut to 63 bytes) */
	uint8_t *buf;    /* owned: gzip pprof */
	size_t len;
	size_t raw_len;  /* the pprof's size uncompressed (what Pyroscope charges a push) */
	uint64_t samples;  /* samples (events) in it */
	uint64_t records;  /* its pprof Sample messages (what a reader counts as samples) */
};

struct snapshot_set {
	struct snapshot_series *v;
	size_t n;
};

/*
 * Build every series' profile.  *ret_set is owned by the caller (free with
 * snapshot_set_free); an interval without samples gives no series.
 * ret_top as for snapshot_build.  0 or -errno.
 */
int snapshot_build_series(const struct stackagg *agg, struct symbolizer *sym, struct cgroups *cg,
			  const struct snapshot_meta *m, struct snapshot_set **ret_set,
			  struct snapshot_top **ret_top);

void snapshot_set_free(struct snapshot_set *s);

#endif
