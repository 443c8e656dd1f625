/*
 * upmetrics.c - vigild's metrics page (see upmetrics.h, docs/metrics.md).
 *
 * Runs in the uplink, unprivileged; never logs.  Naming follows
 * Prometheus' conventions: base units (seconds, bytes, ratios), _total on
 * counters, process_* as the official clients name them (with a "process"
 * label, since three processes are one vigild).
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "upmetrics.h"

#ifndef VIGIL_VERSION
#define VIGIL_VERSION "unknown"
#endif

static bool ratio_ok(double v)
{
	return isfinite(v) && v >= 0 && v <= 1e6;
}

int upmetrics_take_collector(struct upmetrics *m, const struct msg_collector_metrics *msg)
{
	if (msg->version != PRIVSEP_VERSION || msg->ntenants > METRICS_MAX_TENANTS)
		return -EPROTO;
	for (uint32_t i = 0; i < msg->ntenants; i++) {
		const struct metrics_tenant *t = &msg->tenants[i];

		if (!memchr(t->name, '\0', sizeof(t->name)) || !t->name[0] || t->state > TENANT_UNMEASURED ||
		    !ratio_ok(t->overhead_ratio) || !ratio_ok(t->budget_ratio))
			return -EPROTO;
	}
	m->col = *msg;
	m->have_collector = true;
	return 0;
}

int upmetrics_take_proc(struct upmetrics *m, const struct msg_proc_metrics *msg)
{
	if (msg->version != PRIVSEP_VERSION)
		return -EPROTO;
	for (int i = 0; i < METRICS_NPROC; i++) {
		const struct proc_row *r = &msg->rows[i];

		if (r->valid > 1 || !isfinite(r->cpu_seconds) || r->cpu_seconds < 0 ||
		    !isfinite(r->start_time_seconds) || r->start_time_seconds < 0)
			return -EPROTO;
	}
	m->proc = *msg;
	m->have_proc = true;
	return 0;
}

static void family(struct promtext *p, const char *name, enum promtext_type t, const char *help)
{
	promtext_family(p, name, t, help);
}

static void one(struct promtext *p, const char *name, enum promtext_type t, const char *help, uint64_t v)
{
	family(p, name, t, help);
	promtext_sample_u64(p, name, NULL, 0, v);
}

static void render_sampling(const struct upmetrics *m, struct promtext *p)
{
	const struct msg_collector_metrics *c = &m->col;
	static const char *const states[] = { "ok", "throttled", "over", "unmeasured" };

	one(p, "vigil_samples_total", PROMTEXT_COUNTER, "Samples recorded by the BPF program, all CPUs.",
	    c->samples_total);
	one(p, "vigil_samples_lost_total", PROMTEXT_COUNTER,
	    "Samples dropped because the ring buffer was full.", c->lost_total);
	one(p, "vigil_idle_ticks_total", PROMTEXT_COUNTER,
	    "Timer ticks that found a CPU idle (nothing to record).", c->idle_total);
	family(p, "vigil_stack_walk_errors_total", PROMTEXT_COUNTER,
	       "Stack walks that failed, by kind (user or kernel stack).");
	promtext_sample_u64(p, "vigil_stack_walk_errors_total",
			    (struct promtext_label[]){ { "kind", "user" } }, 1, c->user_stack_errors_total);
	promtext_sample_u64(p, "vigil_stack_walk_errors_total",
			    (struct promtext_label[]){ { "kind", "kernel" } }, 1, c->kernel_stack_errors_total);
	one(p, "vigil_exec_events_lost_total", PROMTEXT_COUNTER,
	    "Exec events dropped because the ring buffer was full (their processes may symbolize less well).",
	    c->exec_lost_total);
	one(p, "vigil_stack_copy_lookups_total", PROMTEXT_COUNTER,
	    "User stack copies (dwarf mode) whose end the BPF program had to look up in the task's mappings, the slow way.",
	    c->stack_copy_lookups_total);
	one(p, "vigil_malformed_records_total", PROMTEXT_COUNTER,
	    "Ring buffer records the collector refused as malformed.", c->malformed_total);
	one(p, "vigil_profiles_written_total", PROMTEXT_COUNTER,
	    "Profiles written into the output directory.", c->profiles_written_total);
	one(p, "vigil_profiles_lost_total", PROMTEXT_COUNTER,
	    "Profiles dropped because the output directory would not take them.", c->profiles_lost_total);

	one(p, "vigil_tenants", PROMTEXT_GAUGE, "Tenants in the policy in force.", c->ntenants);
	family(p, "vigil_tenant_sampling_frequency_hertz", PROMTEXT_GAUGE,
	       "Sampling frequency in effect for the tenant, per CPU.");
	for (uint32_t i = 0; i < c->ntenants; i++)
		promtext_sample_u64(p, "vigil_tenant_sampling_frequency_hertz",
				    (struct promtext_label[]){ { "tenant", c->tenants[i].name } }, 1,
				    c->tenants[i].hz);
	family(p, "vigil_tenant_overhead_ratio", PROMTEXT_GAUGE,
	       "Profiling cost measured in the last control period, as a fraction of the tenant's CPU time.");
	for (uint32_t i = 0; i < c->ntenants; i++)
		promtext_sample(p, "vigil_tenant_overhead_ratio",
				(struct promtext_label[]){ { "tenant", c->tenants[i].name } }, 1,
				c->tenants[i].overhead_ratio);
	family(p, "vigil_tenant_budget_ratio", PROMTEXT_GAUGE,
	       "The policy's overhead budget for the tenant, as a fraction of its CPU time.");
	for (uint32_t i = 0; i < c->ntenants; i++)
		promtext_sample(p, "vigil_tenant_budget_ratio",
				(struct promtext_label[]){ { "tenant", c->tenants[i].name } }, 1,
				c->tenants[i].budget_ratio);
	family(p, "vigil_tenant_state", PROMTEXT_GAUGE,
	       "1 for the tenant's budget state (ok, throttled, over, unmeasured), 0 for the others.");
	for (uint32_t i = 0; i < c->ntenants; i++)
		for (uint32_t s = 0; s < 4; s++)
			promtext_sample_u64(p, "vigil_tenant_state",
					    (struct promtext_label[]){ { "tenant", c->tenants[i].name },
								       { "state", states[s] } }, 2,
					    c->tenants[i].state == s);
}

static void render_export(const struct upmetrics *m, struct promtext *p)
{
	static const struct export_stats none;
	const struct export_stats *e = m->exp ? m->exp : &none;
	const struct spool_stats *sp = &m->col.spool;

	family(p, "vigil_export_profiles_total", PROMTEXT_COUNTER,
	       "Profiles by export result: pushed (accepted), rejected (refused for good), dropped "
	       "(past the spool's bound).");
	promtext_sample_u64(p, "vigil_export_profiles_total",
			    (struct promtext_label[]){ { "result", "pushed" } }, 1, e->pushed_total);
	promtext_sample_u64(p, "vigil_export_profiles_total",
			    (struct promtext_label[]){ { "result", "rejected" } }, 1, e->rejected_total);
	promtext_sample_u64(p, "vigil_export_profiles_total",
			    (struct promtext_label[]){ { "result", "dropped" } }, 1, sp->dropped_total);
	one(p, "vigil_export_retries_total", PROMTEXT_COUNTER, "Push attempts that failed and were retried.",
	    e->retries_total);
	one(p, "vigil_export_sent_bytes_total", PROMTEXT_COUNTER, "Request bodies sent to the export target.",
	    e->request_bytes_total);
	one(p, "vigil_export_configured", PROMTEXT_GAUGE, "1 when an export target is configured.",
	    e->state != EXPORT_OFF);
	one(p, "vigil_export_failing", PROMTEXT_GAUGE, "1 while the last push failed and is being retried.",
	    e->state == EXPORT_FAILING);
	one(p, "vigil_spool_bytes", PROMTEXT_GAUGE, "Bytes of the spool files waiting to be pushed.",
	    sp->bytes);
	one(p, "vigil_spool_files", PROMTEXT_GAUGE,
	    "Spool files (one interval's PushRequest each) waiting to be pushed.", sp->files);
	one(p, "vigil_spool_dropped_bytes_total", PROMTEXT_COUNTER,
	    "Bytes of profiles dropped past the spool's bound.", sp->dropped_bytes_total);
}

static void render_control_plane(const struct upmetrics *m, struct promtext *p)
{
	static const char *const sources[] = { "default", "local", "remote" };

	one(p, "vigil_control_plane_configured", PROMTEXT_GAUGE, "1 when --control-plane is given.",
	    m->control_plane);
	one(p, "vigil_control_plane_connected", PROMTEXT_GAUGE,
	    "1 when the last exchange with the control plane succeeded.", m->control_plane && m->cp_connected);
	if (!m->have_policy)
		return;
	one(p, "vigil_policy_serial", PROMTEXT_GAUGE,
	    "Serial of the policy in force (0: a local or default policy, which has none).", m->policy_serial);
	family(p, "vigil_policy_source", PROMTEXT_GAUGE,
	       "1 for where the policy in force came from (default, local --policy, remote signed).");
	for (uint32_t s = 0; s < 3; s++)
		promtext_sample_u64(p, "vigil_policy_source",
				    (struct promtext_label[]){ { "source", sources[s] } }, 1,
				    m->policy_source == s);
}

static void render_proc(const struct upmetrics *m, struct promtext *p)
{
	static const char *const names[METRICS_NPROC] = { "monitor", "collector", "uplink" };
	const struct proc_row *r = m->proc.rows;

#define EACH(metric, type, help, cond, call)                                                  \
	do {                                                                                   \
		family(p, metric, type, help);                                                  \
		for (int i = 0; i < METRICS_NPROC; i++) {                                      \
			struct promtext_label l = { "process", names[i] };                     \
			if (r[i].valid && (cond))                                              \
				call;                                                          \
		}                                                                              \
	} while (0)
	EACH("process_cpu_seconds_total", PROMTEXT_COUNTER, "Total user and system CPU time spent in seconds.",
	     true, promtext_sample(p, "process_cpu_seconds_total", &l, 1, r[i].cpu_seconds));
	EACH("process_resident_memory_bytes", PROMTEXT_GAUGE, "Resident memory size in bytes.", true,
	     promtext_sample_u64(p, "process_resident_memory_bytes", &l, 1, r[i].resident_bytes));
	EACH("process_virtual_memory_bytes", PROMTEXT_GAUGE, "Virtual memory size in bytes.", true,
	     promtext_sample_u64(p, "process_virtual_memory_bytes", &l, 1, r[i].virtual_bytes));
	EACH("process_open_fds", PROMTEXT_GAUGE, "Number of open file descriptors.",
	     r[i].flags & PROC_ROW_OPEN_FDS, promtext_sample_u64(p, "process_open_fds", &l, 1, r[i].open_fds));
	EACH("process_max_fds", PROMTEXT_GAUGE, "Maximum number of open file descriptors.", r[i].max_fds,
	     promtext_sample_u64(p, "process_max_fds", &l, 1, r[i].max_fds));
	EACH("process_start_time_seconds", PROMTEXT_GAUGE,
	     "Start time of the process since unix epoch in seconds.", true,
	     promtext_sample(p, "process_start_time_seconds", &l, 1, r[i].start_time_seconds));
#undef EACH
}

void upmetrics_render(void *ctx, struct promtext *p)
{
	const struct upmetrics *m = ctx;

	family(p, "vigil_build_info", PROMTEXT_GAUGE, "1, labelled with the version of vigild.");
	promtext_sample_u64(p, "vigil_build_info", (struct promtext_label[]){ { "version", VIGIL_VERSION } }, 1,
			    1);
	if (m->have_collector)
		render_sampling(m, p);
	render_export(m, p);
	render_control_plane(m, p);
	if (m->have_proc)
		render_proc(m, p);
	if (m->http) {
		one(p, "vigil_metrics_requests_total", PROMTEXT_COUNTER,
		    "HTTP requests answered by the metrics endpoint.", m->http->requests_total);
		one(p, "vigil_metrics_connections_dropped_total", PROMTEXT_COUNTER,
		    "Metrics connections closed without an answer (timeout, too many, reset).",
		    m->http->refused_total);
	}
}
