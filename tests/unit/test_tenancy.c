/*
 * test_tenancy.c - which cgroups get a tenant's own events, how attachments
 * follow the cgroup tree and policy reloads, and how one control period's
 * counters become each tenant's cost (foreign interrupts included) and
 * frequency requests.  The monitor is replaced by recording ops.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tenancy.h"

#define ROOT "/sys/fs/cgroup/unified"

static const char policy_yaml[] =
	"version: 1\n"
	"defaults:\n"
	"  hz: {min: 2, max: 2, start: 2}\n"
	"  budget: {max_overhead_percent: 1.0}\n"
	"tenants:\n"
	"  - name: batch\n"
	"    cgroups: [\"" ROOT "/batch\"]\n"
	"    hz: {min: 1, max: 99, start: 49}\n"
	"    budget: {max_overhead_percent: 0.02}\n"
	"  - name: web\n"
	"    cgroups: [\"" ROOT "/web*\"]\n"
	"    hz: {min: 1, max: 99, start: 49}\n"
	"    budget: {max_overhead_percent: 2.0}\n";

static struct policy *parse(const char *yaml)
{
	struct policy_errors errs;
	struct policy *p = NULL;

	assert_int_equal(policy_parse(yaml, strlen(yaml), "t.yaml", 100000, &p, &errs), 0);
	return p;
}

static const struct tenancy_cgroup tree[] = {
	{ 1, "/" },
	{ 2, "/batch" },
	{ 3, "/batch/job1" },    /* descendant: covered by /batch's events */
	{ 4, "/web1" },
	{ 5, "/web2" },
	{ 6, "/web2/app" },
	{ 7, "/system.slice" },  /* nobody's: default */
	{ 8, "/webby/x" },       /* /webby matches web*; its parent is not listed, but it is a descendant */
};

/* --- recording ops ---------------------------------------------------------- */

struct rec {
	int attaches, detaches, sethz;
	uint64_t attached[16];
	uint32_t attached_tenant[16];
	uint32_t attached_gen[16];
	size_t nattached;
	uint32_t hz_tenant[16];
	unsigned hz_value[16];
	int attach_rc;
	/* The monitor's side: its ceiling (0: none), a refusal, what is in effect. */
	unsigned ceiling;
	int hz_rc;
	unsigned in_effect[8];
};

static unsigned capped(const struct rec *r, unsigned hz)
{
	return r->ceiling && hz > r->ceiling ? r->ceiling : hz;
}

static int rec_attach(void *ctx, uint32_t tenant, uint32_t gen, uint64_t id, unsigned hz,
		      unsigned *ret_hz)
{
	struct rec *r = ctx;

	size_t i = 0;

	r->attaches++;
	if (r->attach_rc)
		return r->attach_rc;
	/* As the monitor does: a cgroup attached already is handed over. */
	while (i < r->nattached && r->attached[i] != id)
		i++;
	r->attached[i] = id;
	r->attached_tenant[i] = tenant;
	r->attached_gen[i] = gen;
	if (i == r->nattached)
		r->nattached++;
	r->in_effect[tenant % 8] = capped(r, hz);
	*ret_hz = r->in_effect[tenant % 8];
	return 0;
}

static int rec_detach(void *ctx, uint64_t id)
{
	struct rec *r = ctx;

	r->detaches++;
	for (size_t i = 0; i < r->nattached; i++)
		if (r->attached[i] == id) {
			r->attached[i] = r->attached[--r->nattached];
			r->attached_tenant[i] = r->attached_tenant[r->nattached];
			r->attached_gen[i] = r->attached_gen[r->nattached];
			return 0;
		}
	return -ENOENT;
}

static int rec_hz(void *ctx, uint32_t tenant, unsigned hz, unsigned *ret_hz)
{
	struct rec *r = ctx;

	r->hz_tenant[r->sethz % 16] = tenant;
	r->hz_value[r->sethz % 16] = hz;
	r->sethz++;
	if (!r->hz_rc)
		r->in_effect[tenant % 8] = capped(r, hz);
	*ret_hz = r->in_effect[tenant % 8];
	return r->hz_rc;
}

/* Whether tenant was asked for hz since r->sethz was last reset (16 at most). */
static bool asked_hz(const struct rec *r, uint32_t tenant, unsigned hz)
{
	for (int i = 0; i < r->sethz && i < 16; i++)
		if (r->hz_tenant[i] == tenant && r->hz_value[i] == hz)
			return true;
	return false;
}

static uint32_t tenant_of(const struct rec *r, uint64_t id)
{
	for (size_t i = 0; i < r->nattached; i++)
		if (r->attached[i] == id)
			return r->attached_tenant[i];
	return UINT32_MAX;
}

/* --- tests ------------------------------------------------------------------- */

static void test_tops(void **state)
{
	struct policy *p = parse(policy_yaml);
	struct tenancy_top *tops;
	size_t n;

	assert_int_equal(tenancy_compute_tops(p, ROOT, tree, sizeof(tree) / sizeof(tree[0]), &tops, &n), 0);
	/* /batch, /web1, /web2, /webby/x's ancestor is not listed but /webby/x's
	 * parent /webby matches web* too: /webby/x is not a top. */
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		if (tops[i].id == 2)
			assert_int_equal(tops[i].tenant, 1);
		else if (tops[i].id == 4 || tops[i].id == 5)
			assert_int_equal(tops[i].tenant, 2);
		else
			fail_msg("unexpected top %llu", (unsigned long long)tops[i].id);
	}
	free(tops);
	policy_free(p);
}

static void test_reconcile_follows_tree(void **state)
{
	struct rec r = { 0 };
	struct tenancy_ops ops = { rec_attach, rec_detach, rec_hz, &r };
	struct tenancy tn;

	assert_int_equal(tenancy_init(&tn, parse(policy_yaml), true, 1000, 13000), 0);
	assert_int_equal(tenancy_reconcile(&tn, tree, 8, ROOT, &ops), 0);
	assert_int_equal(r.nattached, 3);
	assert_int_equal(tenant_of(&r, 2), 1);
	assert_int_equal(tenant_of(&r, 5), 2);
	assert_int_equal(tn.t[2].ncgroups, 2);
	/* again: nothing changes */
	assert_int_equal(tenancy_reconcile(&tn, tree, 8, ROOT, &ops), 0);
	assert_int_equal(r.attaches, 3);
	assert_int_equal(r.detaches, 0);
	/* /web1 removed, /web3 created */
	{
		const struct tenancy_cgroup tree2[] = { { 1, "/" }, { 2, "/batch" }, { 5, "/web2" },
							{ 9, "/web3" } };

		assert_int_equal(tenancy_reconcile(&tn, tree2, 4, ROOT, &ops), 0);
		assert_int_equal(r.nattached, 3);
		assert_int_equal(tenant_of(&r, 4), UINT32_MAX);
		assert_int_equal(tenant_of(&r, 9), 2);
		assert_int_equal(r.detaches, 1);
	}
	/* an attach the monitor refuses is reported, and retried next time */
	{
		const struct tenancy_cgroup tree3[] = { { 1, "/" }, { 2, "/batch" }, { 5, "/web2" },
							{ 9, "/web3" }, { 10, "/web4" } };

		r.attach_rc = -EMFILE;
		assert_int_equal(tenancy_reconcile(&tn, tree3, 5, ROOT, &ops), -EMFILE);
		r.attach_rc = 0;
		assert_int_equal(tenancy_reconcile(&tn, tree3, 5, ROOT, &ops), 0);
		assert_int_equal(tenant_of(&r, 10), 2);
	}
	tenancy_release(&tn);
}

static void test_replace_keeps_learning_by_name(void **state)
{
	static const char reordered[] =
		"version: 1\n"
		"defaults:\n"
		"  hz: {min: 3, max: 3, start: 3}\n"
		"tenants:\n"
		"  - name: web\n"
		"    cgroups: [\"" ROOT "/web*\"]\n"
		"    hz: {min: 1, max: 99, start: 49}\n"
		"    budget: {max_overhead_percent: 2.0}\n"
		"  - name: batch\n"
		"    cgroups: [\"" ROOT "/batch\"]\n"
		"    hz: {min: 1, max: 99, start: 49}\n"
		"    budget: {max_overhead_percent: 5.0}\n";
	struct rec r = { 0 };
	struct tenancy_ops ops = { rec_attach, rec_detach, rec_hz, &r };
	struct tenancy tn;

	assert_int_equal(tenancy_init(&tn, parse(policy_yaml), true, 1000, 13000), 0);
	assert_int_equal(tenancy_reconcile(&tn, tree, 8, ROOT, &ops), 0);
	tn.t[1].budget.k = 1e-5; /* pretend batch's cost was learnt */
	tn.t[1].hz = 7;
	struct policy *p2 = parse(reordered);
	uint32_t gen0 = tn.gen;

	assert_true(tenancy_renames(&tn, p2));
	r.detaches = 0;
	assert_int_equal(tenancy_replace(&tn, p2, tree, 8, ROOT, &ops), 0);
	/*
	 * A new generation of names: every cgroup carries it now, and samples
	 * of the old one are still named as they were until two intervals
	 * were written.
	 */
	assert_int_equal(tn.gen, gen0 + 1);
	for (size_t i = 0; i < r.nattached; i++)
		assert_int_equal(r.attached_gen[i], tn.gen);
	assert_string_equal(tenancy_name(&tn, 1, gen0), "batch");
	assert_string_equal(tenancy_name(&tn, 1, tn.gen), "web");
	assert_string_equal(tenancy_name(&tn, 0, gen0 + 7), "default");
	assert_null(tenancy_name(&tn, 3, gen0));
	tenancy_written(&tn);
	assert_string_equal(tenancy_name(&tn, 2, gen0), "web");
	tenancy_written(&tn);
	assert_null(tenancy_name(&tn, 2, gen0));
	assert_string_equal(tenancy_name(&tn, 2, tn.gen), "batch");
	/*
	 * Indices moved: batch is 2 now, and its cgroup was handed to it
	 * without a detach (the default events would have sampled it).
	 */
	assert_string_equal(tenancy_name(&tn, 2, tn.gen), "batch");
	assert_int_equal(tenant_of(&r, 2), 2);
	assert_int_equal(tenant_of(&r, 4), 1);
	assert_int_equal(r.detaches, 0);
	assert_int_equal(r.nattached, 3);
	assert_int_equal(tn.t[1].ncgroups, 2);
	assert_int_equal(tn.t[2].ncgroups, 1);
	assert_true(tn.t[2].budget.k == 1e-5);
	/* the default tenant's new frequency was asked for */
	assert_true(asked_hz(&r, 0, 3));
	assert_false(tn.have_prev); /* the next period measures from here */
	tenancy_release(&tn);
}

/*
 * A reload that keeps the tenants' names at their indices (a budget
 * changed) touches no attachment and names nothing anew; each tenant is
 * told its frequency under the new policy.
 */
static void test_replace_same_names_keeps_attachments(void **state)
{
	static const char faster[] =
		"version: 1\n"
		"defaults:\n"
		"  hz: {min: 2, max: 2, start: 2}\n"
		"tenants:\n"
		"  - name: batch\n"
		"    cgroups: [\"" ROOT "/batch\"]\n"
		"    hz: {min: 13, max: 13, start: 13}\n"
		"  - name: web\n"
		"    cgroups: [\"" ROOT "/web*\"]\n"
		"    hz: {min: 1, max: 99, start: 49}\n";
	struct rec r = { 0 };
	struct tenancy_ops ops = { rec_attach, rec_detach, rec_hz, &r };
	struct tenancy tn;
	struct policy *p2;

	assert_int_equal(tenancy_init(&tn, parse(policy_yaml), true, 1000, 13000), 0);
	assert_int_equal(tenancy_reconcile(&tn, tree, 8, ROOT, &ops), 0);
	assert_int_equal(r.attaches, 3);
	p2 = parse(faster);
	assert_false(tenancy_renames(&tn, p2));
	r.sethz = 0;
	assert_int_equal(tenancy_replace(&tn, p2, tree, 8, ROOT, &ops), 0);
	assert_int_equal(r.attaches, 3);
	assert_int_equal(r.detaches, 0);
	assert_int_equal(tn.t[1].ncgroups, 1);
	assert_int_equal(tn.t[2].ncgroups, 2);
	assert_true(asked_hz(&r, 1, 13));
	assert_true(asked_hz(&r, 2, 49));
	assert_int_equal(r.in_effect[1], 13);

	/* A tenant dropped: its index has no name any more; its cgroup goes. */
	p2 = parse("version: 1\n"
		   "tenants:\n"
		   "  - name: batch\n"
		   "    cgroups: [\"" ROOT "/batch\"]\n");
	assert_true(tenancy_renames(&tn, p2));
	assert_int_equal(tenancy_replace(&tn, p2, tree, 8, ROOT, &ops), 0);
	assert_int_equal(r.detaches, 2);
	assert_int_equal(r.nattached, 1);
	assert_int_equal(tenant_of(&r, 2), 1);
	tenancy_release(&tn);
}

/* Past generations' names are bounded: the oldest goes first. */
static void test_past_names_bounded(void **state)
{
	static const char *const yaml[2] = {
		"version: 1\ntenants:\n  - name: even\n    cgroups: [\"" ROOT "/batch\"]\n",
		"version: 1\ntenants:\n  - name: odd\n    cgroups: [\"" ROOT "/batch\"]\n",
	};
	struct rec r = { 0 };
	struct tenancy_ops ops = { rec_attach, rec_detach, rec_hz, &r };
	struct tenancy tn;

	assert_int_equal(tenancy_init(&tn, parse(yaml[0]), true, 1000, 13000), 0);
	assert_int_equal(tenancy_reconcile(&tn, tree, 8, ROOT, &ops), 0);
	for (int i = 1; i <= TENANCY_MAX_PAST + 1; i++)
		assert_int_equal(tenancy_replace(&tn, parse(yaml[i % 2]), tree, 8, ROOT, &ops), 0);
	assert_int_equal(tn.gen, TENANCY_MAX_PAST + 1);
	assert_int_equal(tn.npast, TENANCY_MAX_PAST);
	assert_null(tenancy_name(&tn, 1, 0));
	assert_string_equal(tenancy_name(&tn, 1, 1), "odd");
	assert_string_equal(tenancy_name(&tn, 1, TENANCY_MAX_PAST), "even");
	assert_string_equal(tenancy_name(&tn, 1, tn.gen), "odd");
	assert_int_equal(r.nattached, 1);
	assert_int_equal(r.attached_gen[0], tn.gen);
	assert_int_equal(r.detaches, 0);
	/* A generation a cgroup still carries (a reconcile cut short) does not age. */
	assert_int_equal(tn.ntops, 1);
	tn.tops[0].gen = 1;
	for (int i = 0; i < 3; i++)
		tenancy_written(&tn);
	assert_string_equal(tenancy_name(&tn, 1, 1), "odd");
	assert_null(tenancy_name(&tn, 1, 2));
	tn.tops[0].gen = tn.gen; /* handed over: two intervals from now, gone */
	tenancy_written(&tn);
	assert_string_equal(tenancy_name(&tn, 1, 1), "odd");
	tenancy_written(&tn);
	assert_null(tenancy_name(&tn, 1, 1));
	tenancy_release(&tn);
}

/* A hand-over the monitor refuses leaves the cgroup to no tenant's events. */
static void test_replace_refused_handover_detaches(void **state)
{
	static const char swapped[] =
		"version: 1\n"
		"tenants:\n"
		"  - name: web\n"
		"    cgroups: [\"" ROOT "/web*\"]\n"
		"  - name: batch\n"
		"    cgroups: [\"" ROOT "/batch\"]\n";
	struct rec r = { 0 };
	struct tenancy_ops ops = { rec_attach, rec_detach, rec_hz, &r };
	struct tenancy tn;

	assert_int_equal(tenancy_init(&tn, parse(policy_yaml), true, 1000, 13000), 0);
	assert_int_equal(tenancy_reconcile(&tn, tree, 8, ROOT, &ops), 0);
	r.attach_rc = -EIO;
	assert_int_equal(tenancy_replace(&tn, parse(swapped), tree, 8, ROOT, &ops), -EIO);
	/* every cgroup changed index; each hand-over refused, each let go */
	assert_int_equal(r.nattached, 0);
	assert_int_equal(r.detaches, 3);
	assert_int_equal(tn.ntops, 0);
	/* asked again at the next reconcile, and attached then */
	r.attach_rc = 0;
	assert_int_equal(tenancy_reconcile(&tn, tree, 8, ROOT, &ops), 0);
	assert_int_equal(tenant_of(&r, 4), 1);
	assert_int_equal(tenant_of(&r, 2), 2);
	assert_int_equal(r.nattached, 3);
	tenancy_release(&tn);
}

static void test_control_accounts_foreign_and_agent(void **state)
{
	struct rec r = { 0 };
	struct tenancy_ops ops = { rec_attach, rec_detach, rec_hz, &r };
	struct vigil_tenant_stats st[3] = { 0 };
	uint64_t us[3] = { 0 };
	bool ok[3] = { true, true, true };
	struct tenancy_reading rd = { st, us, ok, 0, NULL };
	struct tenancy tn;

	assert_int_equal(tenancy_init(&tn, parse(policy_yaml), true, 1000, 10000), 0);
	assert_int_equal(tenancy_control(&tn, &rd, &ops), 0); /* baseline only */
	assert_false(tn.t[1].reported);

	/* 5 s: batch used 5 CPU-s, took 245 own samples (49 Hz) and 10 foreign */
	st[0].samples = 100; st[0].run_ns = 200000;
	st[1].samples = 245; st[1].run_ns = 490000; st[1].foreign = 10; st[1].foreign_ns = 10000;
	st[2].samples = 155; st[2].run_ns = 310000;
	us[0] = 2000000; us[1] = 5000000; us[2] = 3000000;
	rd.agent_ns = 5000000; /* 5 ms of agent CPU */
	assert_int_equal(tenancy_control(&tn, &rd, &ops), 0);
	assert_true(tn.t[1].reported);
	assert_int_equal(tn.t[1].in.samples, 255);
	assert_int_equal(tn.t[1].in.bpf_ns, 500000);
	assert_int_equal(tn.t[1].in.tenant_ns, 5000000000ull);
	assert_int_equal(tn.t[1].in.agent_ns, 5000000ull * 245 / 500);
	assert_int_equal(tn.t[1].foreign, 10);
	/* (0.5 ms + 255 x 10 us + 2.45 ms) / 5 s = 0.11%: over 0.02%, so down */
	assert_true(tn.t[1].out.overhead > 0.0010 && tn.t[1].out.overhead < 0.0012);
	assert_true(tn.t[1].hz < 49);
	/* the monitor was asked for batch's new rate */
	{
		bool asked = false;

		for (int i = 0; i < r.sethz && i < 16; i++)
			asked |= r.hz_tenant[i] == 1 && r.hz_value[i] == tn.t[1].hz;
		assert_true(asked);
	}
	/* web has room: it does not go down */
	assert_true(tn.t[2].hz >= 49);
	/* the default tenant is fixed at 2 Hz by its policy */
	assert_int_equal(tn.t[0].hz, 2);

	/* counters that went backwards (map recreated) count as nothing */
	st[1].samples = 1;
	assert_int_equal(tenancy_control(&tn, &rd, &ops), 0);
	assert_int_equal(tn.t[1].recorded, 0);
	tenancy_release(&tn);
}

/*
 * Issue 12: the collector's time unwinding a tenant's copied stacks is
 * charged to that tenant alone, and the rest of the agent's CPU is shared
 * by samples as before.  Two tenants alike in every figure but that: the
 * one on DWARF unwinding pays for it, and the same budget buys it a lower
 * frequency.
 */
static void test_control_charges_unwinding(void **state)
{
	static const char two[] =
		"version: 1\n"
		"tenants:\n"
		"  - name: dw\n"
		"    cgroups: [\"" ROOT "/dw\"]\n"
		"    hz: {min: 1, max: 99, start: 49}\n"
		"    budget: {max_overhead_percent: 0.5}\n"
		"    unwind: dwarf\n"
		"  - name: fp\n"
		"    cgroups: [\"" ROOT "/fp\"]\n"
		"    hz: {min: 1, max: 99, start: 49}\n"
		"    budget: {max_overhead_percent: 0.5}\n"
		"    unwind: frame-pointer\n";
	struct rec r = { 0 };
	struct tenancy_ops ops = { rec_attach, rec_detach, rec_hz, &r };
	struct vigil_tenant_stats st[3] = { 0 };
	uint64_t us[3] = { 0 }, unw[3] = { 0 };
	bool ok[3] = { true, true, true };
	struct tenancy_reading rd = { st, us, ok, 0, unw };
	struct tenancy tn;
	struct policy *p = parse(two);

	assert_int_equal(p->tenants[0].unwind, POLICY_UNWIND_DWARF); /* the default */
	assert_int_equal(p->tenants[1].unwind, POLICY_UNWIND_DWARF);
	assert_int_equal(p->tenants[2].unwind, POLICY_UNWIND_FRAME_POINTER);
	assert_int_equal(tenancy_init(&tn, p, true, 1000, 10000), 0);
	assert_int_equal(tenancy_control(&tn, &rd, &ops), 0); /* baseline only */

	/* 5 s: both used 5 CPU-s and took 245 samples; unwinding dw's took 10 ms */
	st[1].samples = st[2].samples = 245;
	st[1].run_ns = st[2].run_ns = 490000;
	us[1] = us[2] = 5000000;
	unw[1] = 10000000;
	rd.agent_ns = 12000000; /* 10 ms of it unwinding, 2 ms shared */
	assert_int_equal(tenancy_control(&tn, &rd, &ops), 0);
	assert_int_equal(tn.t[2].in.agent_ns, 2000000ull * 245 / 490);
	assert_int_equal(tn.t[1].in.agent_ns, 2000000ull * 245 / 490 + 10000000ull);
	assert_true(tn.t[1].out.overhead > tn.t[2].out.overhead);
	assert_true(tn.t[1].hz < tn.t[2].hz);
	tenancy_release(&tn);
}

static void test_uncontrolled_reports_only(void **state)
{
	struct rec r = { 0 };
	struct tenancy_ops ops = { rec_attach, rec_detach, rec_hz, &r };
	struct vigil_tenant_stats st[1] = { 0 };
	uint64_t us[1] = { 0 };
	bool ok[1] = { true };
	struct tenancy_reading rd = { st, us, ok, 0, NULL };
	struct policy *p;
	struct tenancy tn;

	assert_int_equal(policy_new_default(19, &p), 0);
	assert_int_equal(tenancy_init(&tn, p, false, 1000, 10000), 0);
	assert_int_equal(tenancy_control(&tn, &rd, &ops), 0);
	st[0].samples = 1000000; /* far over any budget */
	us[0] = 1000;
	assert_int_equal(tenancy_control(&tn, &rd, &ops), 0);
	assert_int_equal(tn.t[0].hz, 19);
	assert_int_equal(r.sethz, 0);
	assert_true(tn.t[0].out.overhead > 1.0);
	tenancy_release(&tn);
}

/*
 * The figures use the frequency the monitor says is in effect: capped
 * below what the controller asked, or unchanged when a change is refused;
 * each new answer is news (to log) once, not every period.
 */
static void test_frequency_in_effect(void **state)
{
	struct rec r = { .ceiling = 20 };
	struct tenancy_ops ops = { rec_attach, rec_detach, rec_hz, &r };
	struct vigil_tenant_stats st[3] = { 0 };
	uint64_t us[3] = { 0 };
	bool ok[3] = { true, true, true };
	struct tenancy_reading rd = { st, us, ok, 0, NULL };
	struct tenancy tn;
	unsigned before;

	/* tenancy's own ceiling is above the monitor's: only the answer tells */
	assert_int_equal(tenancy_init(&tn, parse(policy_yaml), true, 1000, 10000), 0);
	assert_int_equal(tenancy_reconcile(&tn, tree, 8, ROOT, &ops), 0);
	/* batch and web start at 49 Hz; attached at the monitor's 20 Hz */
	assert_int_equal(tn.t[1].hz, 20);
	assert_int_equal(tn.t[1].hz_asked, 49);
	assert_true(tn.t[1].hz_news);
	tn.t[1].hz_news = false; /* logged */

	/* asking again for more gets the same answer: no news */
	assert_int_equal(tenancy_set_hz(&tn, 1, 49, &ops), 0);
	assert_int_equal(tn.t[1].hz, 20);
	assert_false(tn.t[1].hz_news);

	/* a period at 20 Hz: the controller's figures use 20, not 49 */
	assert_int_equal(tenancy_control(&tn, &rd, &ops), 0);
	st[1].samples = 100; /* 5 CPU s at 20 Hz */
	us[1] = 5000000;
	assert_int_equal(tenancy_control(&tn, &rd, &ops), 0);
	assert_int_equal(tn.t[1].in.hz, 20);

	/* a refused change: the old frequency stays, and it is news */
	r.hz_rc = -EIO;
	before = tn.t[2].hz;
	assert_int_equal(tenancy_set_hz(&tn, 2, 3, &ops), -EIO);
	assert_int_equal(tn.t[2].hz, before);
	assert_int_equal(tn.t[2].hz_err, -EIO);
	assert_true(tn.t[2].hz_news);
	/* the monitor gone: nothing is known, nothing changes */
	tn.t[2].hz_news = false;
	r.hz_rc = -EPIPE;
	assert_int_equal(tenancy_set_hz(&tn, 2, 5, &ops), -EPIPE);
	assert_int_equal(tn.t[2].hz, before);
	assert_false(tn.t[2].hz_news);
	tenancy_release(&tn);
}

/*
 * A cgroup the monitor refuses for good (too deep...) is asked for once,
 * not every period; again once it went away and came back.  A nesting
 * refusal is retried after something was detached.
 */
static void test_refusals_not_repeated(void **state)
{
	struct rec r = { .attach_rc = -E2BIG };
	struct tenancy_ops ops = { rec_attach, rec_detach, rec_hz, &r };
	struct tenancy tn;
	int first;

	assert_int_equal(tenancy_init(&tn, parse(policy_yaml), true, 1000, 13000), 0);
	first = tenancy_reconcile(&tn, tree, 8, ROOT, &ops);
	assert_int_equal(first, -E2BIG);
	assert_int_equal(r.attaches, 3); /* /batch, /web1, /web2 */
	assert_int_equal(tenancy_reconcile(&tn, tree, 8, ROOT, &ops), 0);
	assert_int_equal(r.attaches, 3);
	/* /batch (id 2) goes away and comes back: asked again */
	assert_int_equal(tenancy_reconcile(&tn, tree + 2, 6, ROOT, &ops), 0);
	assert_int_equal(tenancy_reconcile(&tn, tree, 8, ROOT, &ops), -E2BIG);
	assert_int_equal(r.attaches, 4);
	/* a transient failure is retried every time */
	tenancy_release(&tn);
	r = (struct rec){ .attach_rc = -ENOMEM };
	assert_int_equal(tenancy_init(&tn, parse(policy_yaml), true, 1000, 13000), 0);
	assert_int_equal(tenancy_reconcile(&tn, tree, 8, ROOT, &ops), -ENOMEM);
	assert_int_equal(tenancy_reconcile(&tn, tree, 8, ROOT, &ops), -ENOMEM);
	assert_int_equal(r.attaches, 6);
	tenancy_release(&tn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tops),
		cmocka_unit_test(test_reconcile_follows_tree),
		cmocka_unit_test(test_replace_keeps_learning_by_name),
		cmocka_unit_test(test_replace_same_names_keeps_attachments),
		cmocka_unit_test(test_replace_refused_handover_detaches),
		cmocka_unit_test(test_past_names_bounded),
		cmocka_unit_test(test_control_accounts_foreign_and_agent),
		cmocka_unit_test(test_control_charges_unwinding),
		cmocka_unit_test(test_uncontrolled_reports_only),
		cmocka_unit_test(test_frequency_in_effect),
		cmocka_unit_test(test_refusals_not_repeated),
	};
	return cmocka_run_group_tests_name("tenancy", tests, NULL, NULL);
}
