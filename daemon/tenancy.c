/*
 * tenancy.c - tenant cgroups and per-period overhead control in the
 * collector (see tenancy.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenancy.h"

/* Weight of the newest period in the agent's smoothed cost per sample. */
#define TENANCY_AGENT_SMOOTHING 0.3

/* root + path, the absolute path policy selectors are written against. */
static int abs_path(char *out, size_t len, const char *root, const char *path)
{
	int n = snprintf(out, len, "%s%s", root, strcmp(path, "/") ? path : "");

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int tenancy_compute_tops(const struct policy *p, const char *root,
			 const struct tenancy_cgroup *cgroups, size_t n,
			 struct tenancy_top **ret, size_t *ret_n)
{
	struct tenancy_top *tops = NULL;
	size_t ntops = 0, cap = 0;

	for (size_t i = 0; i < n; i++) {
		char abs[PATH_MAX], parent[PATH_MAX];
		const char *slash;
		int t, tp;

		if (strcmp(cgroups[i].path, "/") == 0 || abs_path(abs, sizeof(abs), root, cgroups[i].path))
			continue; /* the root belongs to the default tenant */
		t = policy_match(p, abs);
		if (t <= 0)
			continue;
		/* A top: its parent is not the same tenant's (descendants are). */
		slash = strrchr(abs, '/');
		if (!slash || slash == abs)
			continue;
		memcpy(parent, abs, (size_t)(slash - abs));
		parent[slash - abs] = '\0';
		tp = policy_match(p, parent);
		if (tp == t)
			continue;
		if (ntops == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct tenancy_top *v = realloc(tops, nc * sizeof(*v));

			if (!v) {
				free(tops);
				return -ENOMEM;
			}
			tops = v;
			cap = nc;
		}
		tops[ntops++] = (struct tenancy_top){ cgroups[i].id, (uint32_t)t, 0 };
	}
	*ret = tops;
	*ret_n = ntops;
	return 0;
}

static struct budget_config config_of(const struct policy_tenant *pt, unsigned max_hz)
{
	struct budget_config c = {
		.hz_min = pt->hz.min,
		.hz_max = pt->hz.max,
		.hz_start = pt->hz.start,
		.max_overhead = pt->max_overhead,
	};

	/* The monitor's ceiling binds whatever the policy says. */
	if (c.hz_max > max_hz)
		c.hz_max = max_hz;
	if (c.hz_min > c.hz_max)
		c.hz_min = c.hz_max;
	if (c.hz_start > c.hz_max)
		c.hz_start = c.hz_max;
	if (c.hz_start < c.hz_min)
		c.hz_start = c.hz_min;
	return c;
}

static void prev_free(struct tenancy_reading *r)
{
	free(r->stats);
	free(r->usage_us);
	free(r->usage_ok);
	free(r->unwind_ns);
	memset(r, 0, sizeof(*r));
}

/* Tenants for policy p, carrying over by name what old[] learnt. */
static struct tenancy_tenant *make_tenants(const struct policy *p, bool controlled, unsigned max_hz,
					   const struct tenancy_tenant *old, size_t nold)
{
	struct tenancy_tenant *t = calloc(p->n_tenants, sizeof(*t));

	if (!t)
		return NULL;
	for (size_t i = 0; i < p->n_tenants; i++) {
		struct budget_config cfg = config_of(&p->tenants[i], max_hz);
		const struct tenancy_tenant *was = NULL;

		snprintf(t[i].name, sizeof(t[i].name), "%s", p->tenants[i].name);
		for (size_t j = 0; j < nold && !was; j++)
			if (strcmp(old[j].name, t[i].name) == 0)
				was = &old[j];
		t[i].controlled = controlled;
		if (was && controlled) {
			t[i].budget = was->budget;
			if (budget_configure(&t[i].budget, &cfg) < 0)
				budget_init(&t[i].budget, &cfg);
		} else if (budget_init(&t[i].budget, &cfg) < 0) {
			free(t);
			errno = EINVAL;
			return NULL;
		}
		t[i].hz = budget_hz(&t[i].budget);
	}
	return t;
}

int tenancy_init(struct tenancy *tn, struct policy *p, bool controlled, unsigned max_hz,
		 uint64_t sample_cost_ns)
{
	memset(tn, 0, sizeof(*tn));
	tn->controlled = controlled;
	tn->max_hz = max_hz;
	tn->sample_cost_ns = sample_cost_ns;
	tn->t = make_tenants(p, controlled, max_hz, NULL, 0);
	if (!tn->t)
		return -errno;
	tn->policy = p;
	tn->n = p->n_tenants;
	return 0;
}

/* What the monitor answered about a tenant's frequency. */
static void took(struct tenancy_tenant *t, unsigned asked, unsigned got, int rc)
{
	bool same;

	if (rc == -EPIPE)
		return; /* no answer: nothing is known */
	/* The same answer to the same request is said once, not every period. */
	same = asked == t->hz_asked && rc == t->hz_err && (got ? got : t->hz) == t->hz;
	if (got)
		t->hz = got;
	if ((rc || t->hz != asked) && !same)
		t->hz_news = true;
	t->hz_asked = asked;
	t->hz_err = rc;
}

int tenancy_set_hz(struct tenancy *tn, uint32_t tenant, unsigned hz, const struct tenancy_ops *ops)
{
	unsigned got = 0;
	int rc;

	if (tenant >= tn->n || hz == 0)
		return -EINVAL;
	rc = ops->set_hz(ops->ctx, tenant, hz, &got);
	took(&tn->t[tenant], hz, got, rc);
	return rc;
}

static bool attached(const struct tenancy *tn, uint64_t id, uint32_t tenant)
{
	for (size_t i = 0; i < tn->ntops; i++)
		if (tn->tops[i].id == id && tn->tops[i].tenant == tenant)
			return true;
	return false;
}

/* The index of id in tops[], or n. */
static size_t want_of(const struct tenancy_top *tops, size_t n, uint64_t id)
{
	size_t i = 0;

	while (i < n && tops[i].id != id)
		i++;
	return i;
}

static bool wanted(const struct tenancy_top *tops, size_t n, uint64_t id, uint32_t tenant)
{
	for (size_t i = 0; i < n; i++)
		if (tops[i].id == id && tops[i].tenant == tenant)
			return true;
	return false;
}

/* A refusal that asking again will not change (cgnest.h). */
static bool for_good(int rc)
{
	return rc == -E2BIG || rc == -EINVAL || rc == -EXDEV || rc == -EEXIST;
}

static bool refused(const struct tenancy *tn, uint64_t id, uint32_t tenant)
{
	for (size_t i = 0; i < tn->nrefused; i++)
		if (tn->refused[i].id == id && tn->refused[i].tenant == tenant)
			return true;
	return false;
}

/*
 * Forget refusals of cgroups that are no longer wanted for that tenant,
 * and, after a detach (detached), the nesting ones, which may hold now.
 */
static void prune_refused(struct tenancy *tn, const struct tenancy_top *want, size_t nwant, bool detached)
{
	for (size_t i = 0; i < tn->nrefused;) {
		const struct tenancy_refused *r = &tn->refused[i];

		if (!wanted(want, nwant, r->id, r->tenant) || (detached && r->err == -EEXIST))
			tn->refused[i] = tn->refused[--tn->nrefused];
		else
			i++;
	}
}

static void note_refused(struct tenancy *tn, const struct tenancy_top *top, int err)
{
	struct tenancy_refused *v = realloc(tn->refused, (tn->nrefused + 1) * sizeof(*v));

	if (!v)
		return; /* asked again next time: a log line more, nothing worse */
	tn->refused = v;
	tn->refused[tn->nrefused++] = (struct tenancy_refused){ top->id, top->tenant, err };
}

int tenancy_reconcile(struct tenancy *tn, const struct tenancy_cgroup *cgroups, size_t n,
		      const char *root, const struct tenancy_ops *ops)
{
	struct tenancy_top *want = NULL;
	size_t nwant = 0;
	bool detached = false, *moving;
	int rc, first = 0;

	rc = tenancy_compute_tops(tn->policy, root, cgroups, n, &want, &nwant);
	if (rc)
		return rc;
	moving = calloc(nwant ? nwant : 1, sizeof(*moving));
	if (!moving) {
		free(want);
		return -ENOMEM;
	}
	/*
	 * Gone: detach.  Now another tenant's: no detach, the attach below
	 * hands the cgroup over in the monitor, so that the default events
	 * never see it unlisted and sample its tasks on the wrong label.
	 */
	for (size_t i = 0; i < tn->ntops;) {
		const struct tenancy_top *top = &tn->tops[i];
		size_t w = want_of(want, nwant, top->id);

		if (w < nwant && want[w].tenant == top->tenant && top->gen == tn->gen) {
			i++;
			continue;
		}
		if (w < nwant) {
			moving[w] = true;
		} else {
			ops->detach(ops->ctx, top->id); /* -ENOENT: already gone */
			detached = true;
		}
		if (top->tenant < tn->n && tn->t[top->tenant].ncgroups)
			tn->t[top->tenant].ncgroups--;
		tn->tops[i] = tn->tops[--tn->ntops];
	}
	prune_refused(tn, want, nwant, detached);
	for (size_t i = 0; i < nwant; i++) {
		struct tenancy_tenant *t = &tn->t[want[i].tenant];
		unsigned got = 0, asked = t->hz;
		struct tenancy_top *v;

		if (attached(tn, want[i].id, want[i].tenant) || refused(tn, want[i].id, want[i].tenant)) {
			if (moving[i])
				ops->detach(ops->ctx, want[i].id); /* not handed over: not the old tenant's either */
			continue;
		}
		rc = ops->attach(ops->ctx, want[i].tenant, tn->gen, want[i].id, asked, &got);
		if (rc == 0)
			took(t, asked, got, 0);
		else if (moving[i])
			ops->detach(ops->ctx, want[i].id); /* not handed over: not the old tenant's either */
		if (rc == -ENOENT)
			continue; /* removed between the scan and now */
		if (rc) {
			if (for_good(rc))
				note_refused(tn, &want[i], rc);
			if (!first)
				first = rc;
			continue;
		}
		v = realloc(tn->tops, (tn->ntops + 1) * sizeof(*v));
		if (!v) {
			ops->detach(ops->ctx, want[i].id);
			first = first ? first : -ENOMEM;
			continue;
		}
		tn->tops = v;
		tn->tops[tn->ntops] = want[i];
		tn->tops[tn->ntops++].gen = tn->gen;
		tn->t[want[i].tenant].ncgroups++;
	}
	free(moving);
	free(want);
	return first;
}

static void past_free(struct tenancy_past *p)
{
	free(p->name);
}

/* The current names, kept as the past generation they are about to become. */
static int keep_past(struct tenancy *tn)
{
	struct tenancy_past p = { .gen = tn->gen, .n = tn->n };
	struct tenancy_past *v;

	p.name = malloc(tn->n * sizeof(*p.name));
	if (!p.name)
		return -ENOMEM;
	for (size_t i = 0; i < tn->n; i++)
		memcpy(p.name[i], tn->t[i].name, sizeof(p.name[i]));
	if (tn->npast == TENANCY_MAX_PAST) {
		/* The oldest goes: its samples, if any are left, get "tenant-N". */
		past_free(&tn->past[0]);
		memmove(tn->past, tn->past + 1, (tn->npast - 1) * sizeof(*tn->past));
		tn->past[tn->npast - 1] = p;
		return 0;
	}
	v = realloc(tn->past, (tn->npast + 1) * sizeof(*v));
	if (!v) {
		past_free(&p);
		return -ENOMEM;
	}
	tn->past = v;
	tn->past[tn->npast++] = p;
	return 0;
}

int tenancy_replace(struct tenancy *tn, struct policy *p, const struct tenancy_cgroup *cgroups,
		    size_t n, const char *root, const struct tenancy_ops *ops)
{
	struct tenancy_tenant *t = make_tenants(p, tn->controlled, tn->max_hz, tn->t, tn->n);
	int rc;

	if (!t) {
		policy_free(p);
		return -errno;
	}
	if (tenancy_renames(tn, p)) {
		/* Without memory for them, samples still to be written get "tenant-N". */
		keep_past(tn);
		tn->gen++;
	}
	/*
	 * Attachments stay: the reconcile below detaches what the new policy
	 * no longer wants and hands over what changed tenant (indices change
	 * with the policy); a cgroup in between would be sampled by the
	 * default events, on the default label.
	 */
	tn->nrefused = 0; /* a new policy asks afresh */
	free(tn->t);
	policy_free(tn->policy);
	tn->t = t;
	tn->policy = p;
	tn->n = p->n_tenants;
	for (size_t i = 0; i < tn->ntops; i++)
		if (tn->tops[i].tenant < tn->n)
			tn->t[tn->tops[i].tenant].ncgroups++;
	tn->have_prev = false;
	prev_free(&tn->prev);
	/* Reconciled whatever the default's answer: no cgroup keeps an old generation. */
	rc = tenancy_set_hz(tn, 0, tn->t[0].hz, ops);
	{
		int r = tenancy_reconcile(tn, cgroups, n, root, ops);

		rc = rc ? rc : r;
	}
	/* Kept attachments run at the old policy's frequency until told. */
	for (uint32_t i = 1; i < tn->n; i++)
		if (tn->t[i].ncgroups) {
			int r = tenancy_set_hz(tn, i, tn->t[i].hz, ops);

			rc = rc ? rc : r;
		}
	return rc;
}

bool tenancy_renames(const struct tenancy *tn, const struct policy *p)
{
	for (size_t i = 1; i < tn->n; i++)
		if (i >= p->n_tenants || strcmp(tn->t[i].name, p->tenants[i].name) != 0)
			return true;
	return false;
}

static int save_prev(struct tenancy *tn, const struct tenancy_reading *r)
{
	if (!tn->prev.stats) {
		tn->prev.stats = calloc(tn->n, sizeof(*tn->prev.stats));
		tn->prev.usage_us = calloc(tn->n, sizeof(*tn->prev.usage_us));
		tn->prev.usage_ok = calloc(tn->n, sizeof(*tn->prev.usage_ok));
		tn->prev.unwind_ns = calloc(tn->n, sizeof(*tn->prev.unwind_ns));
		if (!tn->prev.stats || !tn->prev.usage_us || !tn->prev.usage_ok || !tn->prev.unwind_ns) {
			prev_free(&tn->prev);
			return -ENOMEM;
		}
	}
	memcpy(tn->prev.stats, r->stats, tn->n * sizeof(*r->stats));
	memcpy(tn->prev.usage_us, r->usage_us, tn->n * sizeof(*r->usage_us));
	memcpy(tn->prev.usage_ok, r->usage_ok, tn->n * sizeof(*r->usage_ok));
	if (r->unwind_ns)
		memcpy(tn->prev.unwind_ns, r->unwind_ns, tn->n * sizeof(*r->unwind_ns));
	else
		memset(tn->prev.unwind_ns, 0, tn->n * sizeof(*tn->prev.unwind_ns));
	tn->prev.agent_ns = r->agent_ns;
	tn->have_prev = true;
	return 0;
}

static uint64_t delta(uint64_t now, uint64_t then)
{
	return now >= then ? now - then : 0; /* counters reset: count nothing */
}

int tenancy_control(struct tenancy *tn, const struct tenancy_reading *r,
		    const struct tenancy_ops *ops)
{
	uint64_t agent, all = 0, unwound = 0;
	int first = 0;

	if (!tn->have_prev)
		return save_prev(tn, r);
	agent = delta(r->agent_ns, tn->prev.agent_ns);
	for (size_t i = 0; i < tn->n; i++) {
		all += delta(r->stats[i].samples, tn->prev.stats[i].samples);
		if (r->unwind_ns)
			unwound += delta(r->unwind_ns[i], tn->prev.unwind_ns[i]);
	}
	/* Unwinding is charged to whose stacks were unwound; the rest is shared. */
	agent = agent > unwound ? agent - unwound : 0;
	if (all) {
		double now = (double)agent / (double)all;

		tn->agent_per_sample = tn->agent_per_sample > 0
					       ? tn->agent_per_sample + TENANCY_AGENT_SMOOTHING * (now - tn->agent_per_sample)
					       : now;
	}

	for (size_t i = 0; i < tn->n; i++) {
		struct tenancy_tenant *t = &tn->t[i];
		const struct vigil_tenant_stats *now = &r->stats[i], *then = &tn->prev.stats[i];
		uint64_t rec = delta(now->samples, then->samples);
		uint64_t foreign = delta(now->foreign, then->foreign);
		struct budget_input in = {
			.bpf_ns = delta(now->run_ns, then->run_ns) + delta(now->foreign_ns, then->foreign_ns),
			/* default-event interrupts that hit it cost it too */
			.samples = rec + foreign,
			.sample_cost_ns = tn->sample_cost_ns,
			.agent_ns = (uint64_t)(tn->agent_per_sample * (double)rec) +
				    (r->unwind_ns ? delta(r->unwind_ns[i], tn->prev.unwind_ns[i]) : 0),
			.tenant_ns = r->usage_ok[i] && tn->prev.usage_ok[i]
					     ? delta(r->usage_us[i], tn->prev.usage_us[i]) * 1000
					     : 0,
			.hz = t->hz ? t->hz : 1,
		};
		struct budget_result out = { .hz = t->hz };

		if (t->controlled) {
			int rc = budget_update(&t->budget, &in, &out);

			if (rc)
				return rc;
			if (out.hz > tn->max_hz)
				out.hz = tn->max_hz;
			/* t->hz: what the monitor says is in effect, which may be less. */
			if (out.hz != t->hz) {
				rc = tenancy_set_hz(tn, (uint32_t)i, out.hz, ops);
				if (rc && !first)
					first = rc;
			}
		} else {
			out.overhead = budget_overhead(&in);
			out.cost_ns = budget_cost(&in);
			out.state = in.tenant_ns ? BUDGET_HOLD : BUDGET_IDLE;
		}
		t->in = in;
		t->out = out;
		t->recorded = rec;
		t->foreign = foreign;
		t->reported = true;
	}
	return save_prev(tn, r) ?: first;
}

const char *tenancy_name(const struct tenancy *tn, uint32_t tenant, uint32_t gen)
{
	if (tenant == 0 || gen == tn->gen)
		return tenant < tn->n ? tn->t[tenant].name : NULL;
	for (size_t i = 0; i < tn->npast; i++)
		if (tn->past[i].gen == gen)
			return tenant < tn->past[i].n ? tn->past[i].name[tenant] : NULL;
	return NULL;
}

/* Whether a cgroup is still attached with generation gen (a reconcile cut short). */
static bool carried(const struct tenancy *tn, uint32_t gen)
{
	for (size_t i = 0; i < tn->ntops; i++)
		if (tn->tops[i].gen == gen)
			return true;
	return false;
}

void tenancy_written(struct tenancy *tn)
{
	size_t k = 0;

	/*
	 * Samples of a past generation are all in the ring once the hand-over
	 * is done, so the first interval written after it holds them all;
	 * the names are kept for one more, to be sure.
	 */
	for (size_t i = 0; i < tn->npast; i++) {
		if (!carried(tn, tn->past[i].gen) && ++tn->past[i].written >= 2)
			past_free(&tn->past[i]);
		else
			tn->past[k++] = tn->past[i];
	}
	tn->npast = k;
}

void tenancy_release(struct tenancy *tn)
{
	if (!tn)
		return;
	free(tn->t);
	free(tn->tops);
	free(tn->refused);
	for (size_t i = 0; i < tn->npast; i++)
		past_free(&tn->past[i]);
	free(tn->past);
	policy_free(tn->policy);
	prev_free(&tn->prev);
	memset(tn, 0, sizeof(*tn));
}
