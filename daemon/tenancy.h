/*
 * tenancy.h - tenants in the collector: which cgroups sit at the top of
 * each tenant (they get the tenant's own perf events), and, each control
 * period, what sampling cost each tenant and at what frequency to sample
 * it next (daemon/budget.h decides; this module measures and applies).
 *
 * Runs in the collector, without privileges.  Everything it needs from the
 * monitor (attach or detach a cgroup, change a tenant's frequency) goes
 * through struct tenancy_ops, so that the logic can be tested without one.
 * Returns 0 or -errno; never logs (the figures are left in the tenants for
 * the collector to log and to put in profiles).
 */
#ifndef VIGIL_TENANCY_H
#define VIGIL_TENANCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "policy.h"
#include "vigil_abi.h"

struct cgroups;

/* A cgroup at the top of a tenant: no ancestor belongs to the same tenant. */
struct tenancy_top {
	uint64_t id;
	uint32_t tenant;
	uint32_t gen; /* attached: the generation of names it was attached with */
};

/* One cgroup as listed by the collector: id and path below the mount. */
struct tenancy_cgroup {
	uint64_t id;
	const char *path; /* "/a/b", "/" for the root */
};

/*
 * The monitor's answers.  attach and set_hz return 0 or -errno and, unless
 * the monitor is gone (-EPIPE), write to *ret_hz the tenant's frequency in
 * effect afterwards, as the monitor says: what was asked, capped at its
 * ceiling, or after a refusal the frequency it still has (0: none yet).
 */
struct tenancy_ops {
	int (*attach)(void *ctx, uint32_t tenant, uint32_t gen, uint64_t cgroup_id, unsigned hz,
		      unsigned *ret_hz);
	int (*detach)(void *ctx, uint64_t cgroup_id);
	int (*set_hz)(void *ctx, uint32_t tenant, unsigned hz, unsigned *ret_hz);
	void *ctx;
};

/* The counters a control period is computed from; all cumulative. */
struct tenancy_reading {
	struct vigil_tenant_stats *stats; /* [n_tenants], summed over CPUs */
	uint64_t *usage_us;               /* [n_tenants]: tenant CPU, cpu.stat */
	bool *usage_ok;                   /* [n_tenants]: usage_us could be read */
	uint64_t agent_ns;                /* the agent's own CPU time */
	/*
	 * [n_tenants] or NULL: the part of agent_ns spent unwinding each
	 * tenant's copied stacks (DWARF mode), charged to that tenant alone;
	 * the rest of agent_ns is shared by samples.
	 */
	uint64_t *unwind_ns;
};

struct tenancy_tenant {
	char name[POLICY_MAX_NAME + 1];
	struct budget budget;
	bool controlled;          /* a policy sets its budget (else fixed hz) */
	unsigned hz;              /* in effect, as the monitor last said */
	/* The last frequency asked of the monitor, and its answer. */
	unsigned hz_asked;
	int hz_err;               /* 0, or -errno: refused or failed */
	bool hz_news;             /* asked != in effect, or an error, not yet logged */
	unsigned ncgroups;        /* cgroups attached to it */
	/* The last control period, for the log and for profiles. */
	bool reported;
	struct budget_input in;
	struct budget_result out;
	uint64_t recorded, foreign;
};

struct tenancy {
	struct policy *policy;     /* owned */
	struct tenancy_tenant *t;  /* [policy->n_tenants]; t[0] is "default" */
	size_t n;
	bool controlled;           /* --policy given: budgets are steered */
	unsigned max_hz;           /* the monitor's ceiling */
	uint64_t sample_cost_ns;
	struct tenancy_top *tops;  /* attached now */
	size_t ntops;
	/*
	 * Refused by the monitor for good (too deep, the root, a namespace,
	 * nested in or around another): not asked again while they stay tops
	 * of the same tenant, so that one refusal is one log line.  err is the
	 * refusal; nesting refusals (-EEXIST) are retried once something is
	 * detached.
	 */
	struct tenancy_refused { uint64_t id; uint32_t tenant; int err; } *refused;
	size_t nrefused;
	bool full_warned;          /* ran into SAMPLER_MAX_CGROUPS */
	/*
	 * The generation of the tenants' names by index (vigil_abi.h): a
	 * policy that names an index otherwise starts the next one.  Samples
	 * carry the generation of the events that took them; the names of
	 * past generations are kept until two intervals were written since
	 * and no cgroup is attached with them any more (tenancy_written), at
	 * most TENANCY_MAX_PAST of them.
	 */
	uint32_t gen;
	struct tenancy_past { uint32_t gen; unsigned written; size_t n; char (*name)[POLICY_MAX_NAME + 1]; } *past;
	size_t npast;
	/*
	 * The agent's CPU per recorded sample, smoothed over periods: one
	 * period's burst (symbolizing a new program, say) should not be
	 * charged to the tenants all at once.
	 */
	double agent_per_sample;
	/* The previous reading, to take differences. */
	bool have_prev;
	struct tenancy_reading prev;
};

/*
 * Tops of every tenant but the default among cgroups[] (sorted or not), for
 * a policy whose selectors are absolute paths under root (the cgroup2
 * mount).  *ret is malloc'd (may be NULL when *ret_n is 0).
 */
int tenancy_compute_tops(const struct policy *p, const char *root,
			 const struct tenancy_cgroup *cgroups, size_t n,
			 struct tenancy_top **ret, size_t *ret_n);

/*
 * Start with a policy (owned by the tenancy from then on).  controlled:
 * steer budgets (a policy file was given) or keep every tenant at its
 * start frequency.  Nothing is attached yet: call tenancy_reconcile().
 */
int tenancy_init(struct tenancy *tn, struct policy *p, bool controlled, unsigned max_hz,
		 uint64_t sample_cost_ns);

/*
 * Switch to a new policy at once (owned by the tenancy from then on).
 * Tenants keep, by name, what their controller learnt.  A cgroup attached
 * for the same tenant index stays attached, unless the policy renames an
 * index (a new generation); one whose tenant index or generation changed
 * is attached again, which the monitor takes as a hand-over (never
 * detached in between); one the new policy does not want is detached;
 * new tops are attached.  Every tenant's frequency is
 * set, the default's first.  The next control period measures from here.
 * On error the new policy is in force but some cgroups may not be
 * attached (the next reconcile retries).
 */
int tenancy_replace(struct tenancy *tn, struct policy *p, const struct tenancy_cgroup *cgroups,
		    size_t n, const char *root, const struct tenancy_ops *ops);

/*
 * Whether p would give one of the current tenants' indices another name
 * (or none).  tenancy_replace() then starts a new generation of names and
 * attaches every cgroup again with it.
 */
bool tenancy_renames(const struct tenancy *tn, const struct policy *p);

/*
 * Bring the attached cgroups in line with cgroups[] (new cgroups appear,
 * old ones go).  Returns 0, or the first -errno an attach returned
 * (others were still tried); -ENOSPC when past SAMPLER_MAX_CGROUPS.  A
 * cgroup the monitor refused for good (see struct tenancy) is not asked
 * for again, and its refusal is returned only the first time.
 */
int tenancy_reconcile(struct tenancy *tn, const struct tenancy_cgroup *cgroups, size_t n,
		      const char *root, const struct tenancy_ops *ops);

/*
 * One control period: from the difference between r and the previous
 * reading, each tenant's cost and overhead; for a controlled tenant, the
 * next frequency (asked of the monitor through ops->set_hz when it
 * changes).  The first call only records the reading.  r is copied.
 */
int tenancy_control(struct tenancy *tn, const struct tenancy_reading *r,
		    const struct tenancy_ops *ops);

/*
 * Ask the monitor to sample a tenant at hz and take its answer: t[tenant].hz
 * becomes the frequency really in effect (capped, or unchanged after a
 * refusal), hz_asked and hz_err record the request, and hz_news is set
 * when the two differ or the request failed.  0 or -errno.
 */
int tenancy_set_hz(struct tenancy *tn, uint32_t tenant, unsigned hz, const struct tenancy_ops *ops);

/*
 * The name tenant (index) had in generation gen ("default" for 0), or NULL
 * out of range or for a generation no longer kept.
 */
const char *tenancy_name(const struct tenancy *tn, uint32_t tenant, uint32_t gen);

/* An interval was written: past generations' names age (see struct tenancy). */
#define TENANCY_MAX_PAST 64
void tenancy_written(struct tenancy *tn);

void tenancy_release(struct tenancy *tn);

#endif
