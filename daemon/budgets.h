/*
 * budgets.h - the collector's overhead control loop.
 *
 * Each control period: rescan the cgroup tree, keep every tenant's
 * cgroups attached to its own perf events (through the monitor), read
 * what sampling cost each tenant (BPF counters, the calibrated interrupt
 * cost, the agent's own CPU time) and what CPU each tenant used (cpu.stat),
 * let tenancy.c / budget.c decide each tenant's next frequency, and log
 * one structured line per tenant.  The same figures go into every profile
 * as comments.
 *
 * Runs in the collector, without privileges; it is process code and logs.
 */
#ifndef VIGIL_BUDGETS_H
#define VIGIL_BUDGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "privsep.h"

struct budgets;
struct cgroups;
struct policy;

/*
 * p: the policy (owned by the budgets from then on); controlled: steer
 * budgets (a policy file was given) or only report.  tstats_fd: the
 * per-tenant counters map.  0 or -errno.
 */
int budgets_new(const struct msg_collector_setup *cfg, int tstats_fd, struct cgroups *cg,
		struct policy *p, bool controlled, struct budgets **ret);

/* After the collector is ready: set frequencies, attach tenants' cgroups. */
void budgets_start(struct budgets *b);

/* One control period. */
void budgets_tick(struct budgets *b);

/*
 * ns of the collector's time went into unwinding a stack copied from
 * tenant (index): charged to that tenant alone at the next period.
 */
void budgets_charge_unwind(struct budgets *b, uint32_t tenant, uint64_t ns);

/*
 * A new policy, at once (owned by the budgets from then on).  controlled:
 * steer budgets from now on (a signed policy from the control plane), even
 * if vigild started without a policy.
 */
void budgets_reload(struct budgets *b, struct policy *p, bool controlled);

/*
 * Each tenant's state for the control plane's health report, at most max
 * of them into out[].  Returns how many.
 */
size_t budgets_health(const struct budgets *b, struct health_tenant *out, size_t max);

/* The name of tenant index t in generation gen ("default" for 0), or NULL. */
const char *budgets_tenant_name(const struct budgets *b, uint32_t t, uint32_t gen);

/* An interval was written with the names above (tenancy_written). */
void budgets_written(struct budgets *b);

/* How many tenants the current policy has (indices 0..n-1). */
size_t budgets_ntenants(const struct budgets *b);

/*
 * One line per tenant on the last control period ("tenant=web hz=49
 * overhead=0.0123% ..."), for profile comments.  Returns how many; the
 * lines stay valid until the next tick or reload.
 */
size_t budgets_report(const struct budgets *b, const char *const **ret_lines);

/* The policy in force (owned by b; valid until the next budgets_reload). */
const struct policy *budgets_policy(const struct budgets *b);

/*
 * Changes whenever budgets_reload puts another policy in force (never 0):
 * what derives from the policy is redone only when it moves.
 */
uint64_t budgets_policy_generation(const struct budgets *b);

/*
 * Each tenant's row for the Prometheus metrics (frequency in effect,
 * measured overhead and budget as ratios), at most max into out[].
 * Returns how many.
 */
size_t budgets_metrics(const struct budgets *b, struct metrics_tenant *out, size_t max);

void budgets_free(struct budgets *b);

#endif
