/*
 * budgets.c - the collector's overhead control loop (see budgets.h).
 *
 * Runs in the collector, without privileges: attaching a cgroup and
 * changing a frequency are requests to the monitor (monclient.c), which
 * enforces its own ceiling whatever is asked here.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "budgets.h"
#include "cgroups.h"
#include "log.h"
#include "monclient.h"
#include "tenancy.h"
#include "vigil_abi.h"

struct budgets {
	struct tenancy tn;
	struct cgroups *cg;
	int tstats_fd;
	int ncpus_possible;
	pid_t uplink_pid;
	/* The cgroup listing of the last scan (paths borrowed from cg). */
	struct tenancy_cgroup *list;
	size_t nlist, caplist;
	uint64_t reloads;            /* budgets_reload calls: budgets_policy_generation */
	uint64_t unwind_ns[VIGIL_MAX_TENANTS]; /* budgets_charge_unwind(), by tenant index */
	/* Report lines, one per tenant. */
	char **lines;
	size_t nlines;
	bool started;
};

/* --- requests to the monitor --------------------------------------------- */

static int ask_attach(void *ctx, uint32_t tenant, uint32_t gen, uint64_t cgroup_id, unsigned hz,
		      unsigned *ret_hz)
{
	struct msg_tenant_cgroup m = { .hdr = { MSG_TENANT_CGROUP, sizeof(m) },
				       .tenant = tenant, .hz = hz, .cgroup_id = cgroup_id, .gen = gen };

	return monclient_ask_hz(&m, sizeof(m), ret_hz);
}

static int ask_detach(void *ctx, uint64_t cgroup_id)
{
	struct msg_tenant_cgroup_del m = { .hdr = { MSG_TENANT_CGROUP_DEL, sizeof(m) },
					   .cgroup_id = cgroup_id };

	return monclient_ask(&m, sizeof(m));
}

static int ask_hz(void *ctx, uint32_t tenant, unsigned hz, unsigned *ret_hz)
{
	struct msg_set_hz m = { .hdr = { MSG_SET_HZ, sizeof(m) }, .hz = hz, .tenant = tenant };

	return monclient_ask_hz(&m, sizeof(m), ret_hz);
}

static const struct tenancy_ops ops = {
	.attach = ask_attach,
	.detach = ask_detach,
	.set_hz = ask_hz,
};

/* --- reading ---------------------------------------------------------------- */

static int add_listed(void *ctx, uint64_t id, const char *path)
{
	struct budgets *b = ctx;

	if (b->nlist == b->caplist) {
		size_t cap = b->caplist ? b->caplist * 2 : 256;
		struct tenancy_cgroup *v = realloc(b->list, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		b->list = v;
		b->caplist = cap;
	}
	b->list[b->nlist++] = (struct tenancy_cgroup){ id, path };
	return 0;
}

static int scan(struct budgets *b)
{
	int rc = cgroups_rescan(b->cg);

	b->nlist = 0;
	if (rc)
		return rc;
	return cgroups_foreach_live(b->cg, add_listed, b);
}

/* First field of /proc/PID/schedstat: time on CPU in ns. */
static uint64_t cpu_ns_of(pid_t pid)
{
	char path[64], buf[128];
	unsigned long long v = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	sscanf(buf, "%llu", &v);
	return v;
}

static int read_counters(struct budgets *b, struct tenancy_reading *r)
{
	size_t n = b->tn.n;
	struct vigil_tenant_stats *percpu = calloc(b->ncpus_possible, sizeof(*percpu));
	uint64_t root_us = 0, sum_us = 0;
	bool root_ok;

	if (!percpu)
		return -ENOMEM;
	for (uint32_t t = 0; t < n; t++) {
		memset(&r->stats[t], 0, sizeof(r->stats[t]));
		if (bpf_map_lookup_elem(b->tstats_fd, &t, percpu) < 0)
			continue;
		for (int c = 0; c < b->ncpus_possible; c++) {
			r->stats[t].samples += percpu[c].samples;
			r->stats[t].run_ns += percpu[c].run_ns;
			r->stats[t].foreign += percpu[c].foreign;
			r->stats[t].foreign_ns += percpu[c].foreign_ns;
		}
	}
	free(percpu);

	/* A tenant's CPU: its top cgroups' (which include their descendants). */
	for (size_t t = 0; t < n; t++) {
		r->usage_us[t] = 0;
		r->usage_ok[t] = t != 0;
	}
	for (size_t i = 0; i < b->tn.ntops; i++) {
		const struct tenancy_top *top = &b->tn.tops[i];
		const char *path = cgroups_path(b->cg, top->id);
		uint64_t us;

		if (top->tenant >= n)
			continue;
		if (!path || cgroups_usage_usec(b->cg, path, &us) < 0) {
			r->usage_ok[top->tenant] = false;
			continue;
		}
		r->usage_us[top->tenant] += us;
		sum_us += us;
	}
	/* The default tenant: everything else. */
	root_ok = cgroups_usage_usec(b->cg, "/", &root_us) == 0;
	r->usage_ok[0] = root_ok;
	r->usage_us[0] = root_ok && root_us > sum_us ? root_us - sum_us : 0;

	r->agent_ns = cpu_ns_of(getpid()) + cpu_ns_of(getppid()) +
		      (b->uplink_pid ? cpu_ns_of(b->uplink_pid) : 0);
	r->unwind_ns = b->unwind_ns;
	return 0;
}

/* --- reporting -------------------------------------------------------------- */

static const char *state_name(enum budget_state s)
{
	switch (s) {
	case BUDGET_HOLD: return "hold";
	case BUDGET_MOVE: return "move";
	case BUDGET_POOLING: return "pooling";
	case BUDGET_IDLE: return "idle";
	}
	return "?";
}

static void free_lines(struct budgets *b)
{
	for (size_t i = 0; i < b->nlines; i++)
		free(b->lines[i]);
	free(b->lines);
	b->lines = NULL;
	b->nlines = 0;
}

static void report(struct budgets *b)
{
	free_lines(b);
	b->lines = calloc(b->tn.n, sizeof(*b->lines));
	if (!b->lines)
		return;
	for (size_t i = 0; i < b->tn.n; i++) {
		const struct tenancy_tenant *t = &b->tn.t[i];
		const struct policy_tenant *pt = &b->tn.policy->tenants[i];
		char line[512], budget[32], asked[48] = "";

		if (!t->reported)
			continue;
		/* hz is what is in effect; a request the monitor did not grant shows. */
		if (t->hz_asked && (t->hz_asked != t->hz || t->hz_err))
			snprintf(asked, sizeof(asked), " hz_asked=%u%s", t->hz_asked,
				 t->hz_err ? " hz_refused=yes" : "");
		if (t->controlled)
			snprintf(budget, sizeof(budget), "%.4f%%", 100.0 * pt->max_overhead);
		else
			snprintf(budget, sizeof(budget), "none"); /* no policy: measured, not steered */
		snprintf(line, sizeof(line),
			 "tenant=%s hz=%u overhead=%.4f%% budget=%s samples=%" PRIu64
			 " foreign_samples=%" PRIu64 " cpu_s=%.3f cost_ms=%.3f bpf_ms=%.3f"
			 " agent_ms=%.3f cgroups=%u state=%s%s%s%s",
			 t->name, t->hz, 100.0 * t->out.overhead, budget, t->recorded,
			 t->foreign, (double)t->in.tenant_ns / 1e9, (double)t->out.cost_ns / 1e6,
			 (double)t->in.bpf_ns / 1e6, (double)t->in.agent_ns / 1e6, t->ncgroups,
			 t->controlled ? state_name(t->out.state) : "fixed",
			 asked, t->out.unreachable ? " unreachable=yes" : "",
			 t->out.unreachable ? " (over budget even at hz.min)" : "");
		b->lines[b->nlines++] = strdup(line);
		if (!b->lines[b->nlines - 1]) {
			b->nlines--;
		} else {
			/* Over budget even at hz.min: what an operator alerts on (logids.h). */
			const struct log_event ev = {
				.priority = t->out.unreachable ? LOG_WARNING : LOG_INFO,
				.id = t->out.unreachable ? LOG_ID_BUDGET_UNREACHABLE : NULL,
				.tenant = t->name,
				.hz = t->hz,
			};

			log_event(&ev, "budget %s", line);
		}
	}
}

/*
 * A frequency the monitor refused, failed to set, or capped: said once
 * per new answer, with the frequency really in effect (which is what the
 * budget figures use).
 */
static void log_hz_news(struct budgets *b)
{
	for (size_t i = 0; i < b->tn.n; i++) {
		struct tenancy_tenant *t = &b->tn.t[i];

		if (!t->hz_news)
			continue;
		t->hz_news = false;
		if (t->hz_err)
			log_warnx("tenant %s: the monitor did not set %u Hz (%s); it samples at %u Hz",
				  t->name, t->hz_asked, strerror(-t->hz_err), t->hz);
		else
			log_warnx("tenant %s: asked for %u Hz, the monitor applied %u Hz (its ceiling)",
				  t->name, t->hz_asked, t->hz);
	}
}

/* --- the loop --------------------------------------------------------------- */

int budgets_new(const struct msg_collector_setup *cfg, int tstats_fd, struct cgroups *cg,
		struct policy *p, bool controlled, struct budgets **ret)
{
	struct budgets *b = calloc(1, sizeof(*b));
	int rc;

	if (!b) {
		policy_free(p);
		return -ENOMEM;
	}
	b->cg = cg;
	b->tstats_fd = tstats_fd;
	b->uplink_pid = (pid_t)cfg->uplink_pid;
	b->ncpus_possible = libbpf_num_possible_cpus();
	if (b->ncpus_possible <= 0) {
		free(b);
		policy_free(p);
		return -EINVAL;
	}
	rc = tenancy_init(&b->tn, p, controlled, cfg->max_hz, cfg->sample_cost_ns);
	if (rc) {
		free(b);
		policy_free(p);
		return rc;
	}
	*ret = b;
	return 0;
}

/*
 * Tell the monitor how each tenant of p has its stacks taken (unwind:).
 * only_fp: just the tenants that must not have them copied, before their
 * indices change hands, so that no index copies a stack its new tenant
 * forbids even for a moment.
 */
static void apply_unwind(const struct policy *p, bool only_fp)
{
	bool refused = false;

	for (size_t i = 0; i < p->n_tenants; i++) {
		bool dwarf = p->tenants[i].unwind == POLICY_UNWIND_DWARF;
		struct msg_set_unwind m = { .hdr = { MSG_SET_UNWIND, sizeof(m) }, .tenant = (uint32_t)i,
					    .mode = dwarf ? VIGIL_UNWIND_DWARF : VIGIL_UNWIND_FP };
		int rc;

		if (only_fp && dwarf)
			continue;
		rc = monclient_ask(&m, sizeof(m));
		if (rc == -EPERM)
			refused = true;
		else if (rc && rc != -EPIPE)
			log_warn_errno(rc, "tenant %s: cannot set unwind: %s", p->tenants[i].name,
				       dwarf ? "dwarf" : "frame-pointer");
	}
	if (refused && !only_fp)
		log_info("stacks are walked by frame pointers only (vigild --unwind frame-pointer): "
			  "tenants whose policy says unwind: dwarf get no stack copies");
}

/* Whether a tenant of the policy in force names cgroups. */
static bool policy_names_cgroups(const struct policy *p)
{
	for (size_t i = 0; p && i < p->n_tenants; i++)
		if (p->tenants[i].n_cgroups)
			return true;
	return false;
}

static void reconcile(struct budgets *b)
{
	int rc;

	if (!b->cg)
		return;
	/*
	 * Nothing attached, nothing refused, and no tenant that could want a
	 * cgroup: nothing to do, and no need to walk the host's cgroup tree
	 * (every control period; thousands of directories on a host of
	 * containers).  The profiles' cgroup labels look paths up on their
	 * own (cgroups_path).
	 */
	if (b->tn.ntops == 0 && b->tn.nrefused == 0 && !policy_names_cgroups(b->tn.policy))
		return;
	rc = scan(b);
	if (rc) {
		log_warn_errno(rc, "cannot list cgroups; tenants keep the cgroups they had");
		return;
	}
	rc = tenancy_reconcile(&b->tn, b->list, b->nlist, cgroups_root(b->cg), &ops);
	if (rc == -ENOSPC && !b->tn.full_warned) {
		log_warnx("more tenant cgroups than can be sampled separately; the rest stay with their parents' tenant or default");
		b->tn.full_warned = true;
	} else if (rc && rc != -EPIPE) {
		log_warn_errno(rc, "attaching tenant cgroups");
	}
}

void budgets_charge_unwind(struct budgets *b, uint32_t tenant, uint64_t ns)
{
	if (b && tenant < VIGIL_MAX_TENANTS)
		b->unwind_ns[tenant] += ns;
}

void budgets_start(struct budgets *b)
{
	apply_unwind(b->tn.policy, false);
	tenancy_set_hz(&b->tn, 0, b->tn.t[0].hz, &ops);
	reconcile(b);
	log_hz_news(b);
	b->started = true;
}

void budgets_tick(struct budgets *b)
{
	struct tenancy_reading r = { 0 };
	int rc;

	reconcile(b);
	r.stats = calloc(b->tn.n, sizeof(*r.stats));
	r.usage_us = calloc(b->tn.n, sizeof(*r.usage_us));
	r.usage_ok = calloc(b->tn.n, sizeof(*r.usage_ok));
	if (r.stats && r.usage_us && r.usage_ok && read_counters(b, &r) == 0) {
		bool first = !b->tn.have_prev;

		rc = tenancy_control(&b->tn, &r, &ops);
		log_hz_news(b);
		if (rc && rc != -EPIPE)
			log_warn_errno(rc, "steering tenant frequencies");
		if (!first)
			report(b);
	}
	free(r.stats);
	free(r.usage_us);
	free(r.usage_ok);
}

void budgets_reload(struct budgets *b, struct policy *p, bool controlled)
{
	int rc;

	b->reloads++;

	/* A signed policy from the control plane steers budgets from then on. */
	b->tn.controlled |= controlled;
	apply_unwind(p, true);
	if (b->cg && scan(b) == 0)
		rc = tenancy_replace(&b->tn, p, b->list, b->nlist, cgroups_root(b->cg), &ops);
	else
		rc = tenancy_replace(&b->tn, p, NULL, 0, "", &ops);
	apply_unwind(b->tn.policy, false);
	free_lines(b);
	log_hz_news(b);
	if (rc && rc != -EPIPE)
		log_warn_errno(rc, "applying the new policy (some tenant cgroups are not attached yet)");
}

size_t budgets_health(const struct budgets *b, struct health_tenant *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < b->tn.n && n < max; i++, n++) {
		const struct tenancy_tenant *t = &b->tn.t[i];
		double ppm = t->reported ? 1e6 * t->out.overhead : 0;

		memset(&out[n], 0, sizeof(out[n]));
		snprintf(out[n].name, sizeof(out[n].name), "%s", t->name);
		out[n].hz = t->hz;
		out[n].overhead_ppm = ppm > 4e9 ? 4000000000u : (uint32_t)ppm;
		if (!t->reported || t->out.state == BUDGET_POOLING || t->out.state == BUDGET_IDLE)
			out[n].state = TENANT_UNMEASURED;
		else if (t->controlled && t->out.unreachable)
			out[n].state = TENANT_OVER;
		else if (t->controlled && t->out.hz < b->tn.policy->tenants[i].hz.max)
			out[n].state = TENANT_THROTTLED;
		else
			out[n].state = TENANT_OK;
	}
	return n;
}

const char *budgets_tenant_name(const struct budgets *b, uint32_t t, uint32_t gen)
{
	return tenancy_name(&b->tn, t, gen);
}

void budgets_written(struct budgets *b)
{
	tenancy_written(&b->tn);
}

size_t budgets_ntenants(const struct budgets *b)
{
	return b->tn.n;
}

const struct policy *budgets_policy(const struct budgets *b)
{
	return b->tn.policy;
}

uint64_t budgets_policy_generation(const struct budgets *b)
{
	return b->reloads + 1;
}

size_t budgets_report(const struct budgets *b, const char *const **ret_lines)
{
	*ret_lines = (const char *const *)b->lines;
	return b->nlines;
}

void budgets_free(struct budgets *b)
{
	if (!b)
		return;
	free_lines(b);
	free(b->list);
	tenancy_release(&b->tn);
	free(b);
}

/* --- Prometheus metrics ----------------------------------------------------- */

size_t budgets_metrics(const struct budgets *b, struct metrics_tenant *out, size_t max)
{
	struct health_tenant h[METRICS_MAX_TENANTS];
	size_t n = budgets_health(b, h, max < METRICS_MAX_TENANTS ? max : METRICS_MAX_TENANTS);

	for (size_t i = 0; i < n; i++) {
		const struct tenancy_tenant *t = &b->tn.t[i];

		memset(&out[i], 0, sizeof(out[i]));
		memcpy(out[i].name, h[i].name, sizeof(out[i].name));
		out[i].hz = h[i].hz;
		out[i].state = h[i].state;
		out[i].overhead_ratio = t->reported && isfinite(t->out.overhead) && t->out.overhead >= 0
					? t->out.overhead : 0;
		out[i].budget_ratio = b->tn.policy->tenants[i].max_overhead;
	}
	return n;
}
