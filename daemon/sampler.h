/*
 * sampler.h - load the sampling BPF program, attach it to cpu-clock, and
 * steer it at run time.
 *
 * sampler_open() (sampler_load.c) runs in the loader, a short-lived child
 * of the monitor (privileged: CAP_BPF + CAP_PERFMON), and hands everything
 * to the monitor as fds (sampler_send / sampler_receive,
 * sampler_handover.c), so that libbpf's transient memory (the kernel's BTF)
 * never weighs on the long-lived monitor.  The object is taken as bytes
 * already in memory, so that what the caller checked is what gets loaded;
 * the file is never re-read here.  The monitor then adds and removes
 * tenant cgroups (sampler.c, under cgnest.c's rules) and changes
 * frequencies (sampler_hz.c).
 *
 * Functions return 0 or -errno; on error a one-line reason (for a verifier
 * rejection: the tail of the verifier log) is written to err.  A verifier
 * rejection is -ENOEXEC, whatever errno the kernel used.
 */
#ifndef VIGIL_SAMPLER_H
#define VIGIL_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sampler_config {
	unsigned hz;          /* per CPU */
	bool build_id;        /* user stacks as build-id + offset */
};

struct sampler;

/* obj/len: profile.bpf.o bytes (not kept after return). name: for messages. */
int sampler_open(const void *obj, size_t len, const char *name, const struct sampler_config *cfg,
		 struct sampler **ret, char *err, size_t errlen);

/*
 * Send every fd of s over sock (MSG_LOADER_FD each, then MSG_LOADER_DONE);
 * s is unchanged and still owns its fds.  0 or -errno.
 */
int sampler_send(const struct sampler *s, int sock);

/*
 * Rebuild a sampler from what sampler_send() sent (checked against the
 * privsep table as coming from PEER_LOADER).  0 and *ret, -EPROTO for an
 * incomplete or inconsistent hand-over (every fd received is closed),
 * -EPIPE if the loader hung up first, -ENOMEM.
 */
int sampler_receive(int sock, struct sampler **ret);

/*
 * The default tenant's events are opened disabled, so that nothing is
 * sampled as the default tenant's before the tenants' cgroups are
 * attached; this enables them.  0 or -errno.
 */
int sampler_start(struct sampler *s);

/* Map fds owned by the sampler: the ring buffer of samples and the stats. */
int sampler_events_fd(const struct sampler *s);
int sampler_stats_fd(const struct sampler *s);
/* Number of CPUs sampled. */
unsigned sampler_ncpus(const struct sampler *s);

/*
 * Tenants.  sampler_open() samples the default tenant (index 0) on every
 * CPU.  A tenant's cgroup gets its own cpu-clock event per CPU, scoped to
 * that cgroup and its descendants (PERF_FLAG_PID_CGROUP), carrying the
 * tenant index and gen as its BPF cookie (vigil_abi.h); the cgroup goes
 * into map "tenant_cg" so that the default events leave its tasks to it.
 * cgroup_fd is borrowed and must be the cgroup whose id is cgroup_id
 * (-ESTALE otherwise).
 * Refused, with the reason in err, as cgnest.h says: -EINVAL for the root
 * cgroup (and for tenant 0 or out of range), -E2BIG deeper than
 * VIGIL_MAX_CGROUP_DEPTH, -EXDEV when levels cannot be told, -EEXIST if
 * an ancestor or a descendant of it is attached already (its events would
 * sample the same tasks twice); -ENOSPC past SAMPLER_MAX_CGROUPS.  The
 * cgroup itself attached already is handed to the tenant given: its new
 * events are opened disabled, the map changes in one update, then on each
 * CPU the old event stops before the new one starts, so its tasks are
 * never the default events' meanwhile, nor sampled twice.  An error after
 * the old events stopped leaves the new ones in place (the caller
 * detaches them).  All of a tenant index's events run at one frequency,
 * which map "tenant_cfg" values its samples at: the events it has already
 * go to hz first (sampler_set_tenant_hz), and back on failure.
 */
#define SAMPLER_MAX_CGROUPS 256
int sampler_tenant_add_cgroup(struct sampler *s, unsigned tenant, uint32_t gen, int cgroup_fd,
			      uint64_t cgroup_id, unsigned hz, char *err, size_t errlen);
/* Stop sampling a cgroup for its tenant.  -ENOENT if it was not attached. */
int sampler_tenant_remove_cgroup(struct sampler *s, uint64_t cgroup_id);
/*
 * Frequency of every event of one tenant (0: the default events).
 * cpu-clock turns a frequency into a fixed period when an event is opened,
 * so this sets the period (1e9 / hz ns), effective from each CPU's next
 * tick.  0 or -errno; on error the tenant's events are put back to the
 * frequency they had (best effort) and sampler_tenant_hz() still says it.
 */
int sampler_set_tenant_hz(struct sampler *s, unsigned tenant, unsigned hz);
/* The frequency in effect for a tenant (0: none set, or out of range). */
unsigned sampler_tenant_hz(const struct sampler *s, unsigned tenant);
/*
 * How a tenant's user stacks are taken (enum vigil_unwind): 0, -EINVAL
 * (tenant or mode out of range), or -errno of the map update.
 */
int sampler_set_unwind(struct sampler *s, unsigned tenant, unsigned mode);
/* Map fd of the per-tenant counters (struct vigil_tenant_stats). */
int sampler_tstats_fd(const struct sampler *s);

/* Detaches and unloads everything; accepts NULL. */
void sampler_free(struct sampler *s);

/* Online CPUs from a "0-3,5" list (as in /sys/devices/system/cpu/online).
 * Fills cpus[] (up to max) and returns the count, or -EINVAL. */
int sampler_parse_cpulist(const char *list, int *cpus, int max);

#endif
