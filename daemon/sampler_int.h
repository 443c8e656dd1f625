/*
 * sampler_int.h - the sampler's insides, shared by the files that make it
 * up (sampler.c: lifetime, per-CPU events and tenant cgroups;
 * sampler_load.c: loading; sampler_handover.c: the loader's hand-over;
 * sampler_hz.c: frequency at run time).  Nothing outside them includes it.
 */
#ifndef VIGIL_SAMPLER_INT_H
#define VIGIL_SAMPLER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgnest.h"
#include "sampler.h"
#include "vigil_abi.h"

#define SAMPLER_MAX_CPUS 4096

/* One tenant cgroup's event and link per CPU (where it sits: nodes[]). */
struct cg_events {
	unsigned tenant;
	int *pfds;
	int *links;
};

struct sampler {
	int prog_fd, events_fd, stats_fd, tstats_fd, tenant_cg_fd, exec_link_fd, tenant_cfg_fd;
	int cpus[SAMPLER_MAX_CPUS];
	int *pfds;  /* default tenant: perf event per CPU */
	int *links; /* default tenant: BPF link per CPU */
	unsigned ncpus;
	unsigned tenant_hz[VIGIL_MAX_TENANTS]; /* [0]: the default tenant */
	unsigned tenant_unwind[VIGIL_MAX_TENANTS]; /* enum vigil_unwind */
	struct cg_events cgs[SAMPLER_MAX_CGROUPS];
	/* Where each of cgs[] sits, same index, as cgnest_check() wants them. */
	struct cgnest_node nodes[SAMPLER_MAX_CGROUPS];
	size_t ncgs;
};

/* An empty sampler for ncpus CPUs, every fd -1; NULL without memory. */
struct sampler *sampler_alloc(unsigned ncpus);

/*
 * A cpu-clock event on one CPU, for a cgroup (cgroup_fd) or everything
 * (-1), enabled or not.
 */
int sampler_open_event(int cpu, int cgroup_fd, unsigned hz, bool enabled);

/* Attach the program to a perf event, the tenant index as its cookie. */
/* cookie: the tenant index, and its names' generation above (vigil_abi.h). */
int sampler_attach(int prog_fd, int pfd, uint64_t cookie);

/* The period of a frequency, as cpu-clock takes it: 1e9 / hz ns (hz > 0). */
static inline uint64_t sampler_period_ns(unsigned hz)
{
	return 1000000000ull / hz;
}

/*
 * Write a tenant's entry of map "tenant_cfg" from tenant_unwind[] and
 * tenant_hz[] (period 0 while no frequency is set): 0 or -errno.
 */
int sampler_write_tenant_cfg(struct sampler *s, unsigned tenant);

#endif
