/*
 * bench_budget - what the overhead controller itself costs, in CPU time per
 * call, on synthetic inputs: budget_update() (one tenant, one control
 * period) and tenancy_control() (every tenant of a policy, one control
 * period, frequencies applied through do-nothing ops).  No BPF, no cgroups: the
 * I/O of a real control period (cgroup scan, cpu.stat, BPF map reads) is
 * measured by the benchmark on a running vigild instead (tests/bench/
 * budgets.sh).
 *
 * The inputs keep the controller working as it does on a host: a closed
 * loop around a tenant whose overhead is k x hz with k stepping by 4x every
 * 64 periods and +-25% noise per period, one period in 8 nearly idle and
 * one in 97 idle, so that calls move, hold, pool and idle (the mix is
 * printed).  Noise comes from a table
 * filled once, so making the inputs costs a few ns per call; that harness
 * cost is measured alone and printed too.
 *
 * Usage: bench_budget [--calls N] [--tenants N] [--cost-ns N]
 *   --calls N    budget_update calls (default 1000000)
 *   --tenants N  tenants for tenancy_control, besides default (default 256)
 *   --cost-ns N  per-sample interrupt cost in the inputs (default 13000,
 *                what the development VM measured; tests/bench/budgets.sh
 *                passes the figure it measured on the host)
 *
 * Prints, on stdout:
 *   bench_budget: budget_update calls=N ns_per_call=X harness_ns=H move=M hold=H pooling=P idle=I
 *   bench_budget: tenancy_control tenants=T calls=N ns_per_call=X ns_per_tenant=Y
 * Exit codes: 0 done, 64 usage, 1 failure.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "budget.h"
#include "policy.h"
#include "tenancy.h"

#define MAX_CALLS 100000000L
#define MAX_TENANTS 256		/* POLICY_MAX_TENANTS */
#define NOISE 4096		/* power of two */
#define COST_NS_DEFAULT 13000ull /* the dev VM's per-sample cost: --cost-ns */
#define PERIOD_NS 2000000000ull	/* a 2 s control period ... */
#define TENANT_CPU_NS 600000000ull /* ... in which the tenant ran 0.6 CPU s */

static double noise[NOISE];
static uint64_t cost_ns = COST_NS_DEFAULT;

static void usage(void)
{
	fprintf(stderr, "usage: bench_budget [--calls N] [--tenants N] [--cost-ns N]\n");
	exit(64);
}

static long parse_num(const char *what, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "bench_budget: %s must be an integer in [%ld, %ld], not '%s'\n", what,
			min, max, s);
		exit(64);
	}
	return v;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One period's measurement of a tenant with overhead k x hz, noisy. */
static void synth(struct budget_input *in, unsigned hz, double k, long i)
{
	double n = noise[i & (NOISE - 1)];
	/* Busy, now and then nearly idle (few samples: pooled), or idle. */
	uint64_t cpu = (i % 97) == 96 ? 0 : (uint64_t)(TENANT_CPU_NS * n) / ((i % 8) == 7 ? 60 : 1);
	/* cost = k x hz x cpu, split as the collector would see it. */
	double cost = k * hz * (double)cpu;
	uint64_t samples = (uint64_t)(hz * (double)cpu / 1e9 * n + 0.5);

	in->samples = samples;
	in->sample_cost_ns = cost_ns;
	in->bpf_ns = samples * 3000;
	in->agent_ns = cost > (double)(samples * (cost_ns + 3000))
			       ? (uint64_t)(cost - (double)(samples * (cost_ns + 3000)))
			       : 0;
	in->tenant_ns = cpu;
	in->hz = hz;
}

static double k_at(long i)
{
	/* Overhead per Hz: 0.0067%/Hz (~60 us a sample), x4 every other 64 periods. */
	return ((i >> 6) & 1) ? 4 * 6.7e-5 : 6.7e-5;
}

static int bench_update(long calls)
{
	struct budget_config cfg = { .hz_min = 1, .hz_max = 99, .hz_start = 49, .max_overhead = 0.0005 };
	struct budget b;
	struct budget_result r;
	struct budget_input in;
	long counts[4] = { 0 };
	volatile uint64_t sink = 0;
	uint64_t t0, t1, t2;
	unsigned hz = cfg.hz_start;

	if (budget_init(&b, &cfg))
		return -EINVAL;
	/* The harness alone: inputs made, no decision. */
	t0 = cpu_ns();
	for (long i = 0; i < calls; i++) {
		synth(&in, hz, k_at(i), i);
		sink += in.agent_ns;
		hz = 1 + (unsigned)(sink & 63);
	}
	t1 = cpu_ns();
	hz = cfg.hz_start;
	for (long i = 0; i < calls; i++) {
		synth(&in, hz, k_at(i), i);
		if (budget_update(&b, &in, &r))
			return -EINVAL;
		hz = r.hz;
		counts[r.state]++;
	}
	t2 = cpu_ns();
	printf("bench_budget: budget_update calls=%ld ns_per_call=%.1f harness_ns=%.1f"
	       " move=%ld hold=%ld pooling=%ld idle=%ld\n",
	       calls, (double)(t2 - t1) / (double)calls, (double)(t1 - t0) / (double)calls,
	       counts[BUDGET_MOVE], counts[BUDGET_HOLD], counts[BUDGET_POOLING], counts[BUDGET_IDLE]);
	return 0;
}

static int noop_attach(void *ctx, uint32_t tenant, uint32_t gen, uint64_t id, unsigned hz, unsigned *ret_hz)
{
	*ret_hz = hz;
	return 0;
}

static int noop_detach(void *ctx, uint64_t id)
{
	return 0;
}

static int noop_set_hz(void *ctx, uint32_t tenant, unsigned hz, unsigned *ret_hz)
{
	*ret_hz = hz;
	return 0;
}

/* A policy with n tenants besides default, each with its own budget. */
static int make_policy(long n, struct policy **ret)
{
	size_t cap = 256 + (size_t)n * 160, len = 0;
	char *y = malloc(cap);
	struct policy_errors errs;
	int rc;

	if (!y)
		return -ENOMEM;
	len += (size_t)snprintf(y + len, cap - len,
				"version: 1\ndefaults:\n  hz: {min: 2, max: 2, start: 2}\ntenants:\n");
	for (long i = 0; i < n; i++)
		len += (size_t)snprintf(y + len, cap - len,
					"  - name: t%ld\n    cgroups: [/sys/fs/cgroup/unified/bench-%ld]\n"
					"    hz: {min: 1, max: 99, start: 49}\n"
					"    budget: {max_overhead_percent: %.3f}\n",
					i, i, 0.01 + 0.01 * (double)(i % 50));
	rc = policy_parse(y, len, "bench", 1000, ret, &errs);
	if (rc == -EBADMSG && errs.n)
		fprintf(stderr, "bench_budget: %s\n", errs.e[0].text);
	free(y);
	return rc;
}

static int bench_control(long ntenants, long updates)
{
	static const struct tenancy_ops ops = { noop_attach, noop_detach, noop_set_hz, NULL };
	struct tenancy tn;
	struct tenancy_reading r = { 0 };
	struct policy *p;
	long n, calls = updates / (ntenants + 1);
	uint64_t t0, t1;
	int rc;

	if (calls < 1000)
		calls = 1000;
	rc = make_policy(ntenants, &p);
	if (rc)
		return rc;
	rc = tenancy_init(&tn, p, true, 1000, cost_ns); /* owns p from here on success */
	if (rc) {
		policy_free(p);
		return rc;
	}
	n = (long)tn.n;
	r.stats = calloc((size_t)n, sizeof(*r.stats));
	r.usage_us = calloc((size_t)n, sizeof(*r.usage_us));
	r.usage_ok = calloc((size_t)n, sizeof(*r.usage_ok));
	if (!r.stats || !r.usage_us || !r.usage_ok) {
		rc = -ENOMEM;
		goto out;
	}
	for (long t = 0; t < n; t++)
		r.usage_ok[t] = true;
	t0 = cpu_ns();
	for (long c = 0; c < calls; c++) {
		for (long t = 0; t < n; t++) {
			struct budget_input in;

			/* Cumulative counters, as read from the BPF map and cpu.stat. */
			synth(&in, tn.t[t].hz, k_at(c + t), c + t);
			r.stats[t].samples += in.samples;
			r.stats[t].run_ns += in.bpf_ns;
			r.stats[t].foreign += in.samples / 16;
			r.usage_us[t] += in.tenant_ns / 1000;
			r.agent_ns += in.agent_ns;
		}
		rc = tenancy_control(&tn, &r, &ops);
		if (rc)
			goto out;
	}
	t1 = cpu_ns();
	printf("bench_budget: tenancy_control tenants=%ld calls=%ld ns_per_call=%.0f ns_per_tenant=%.1f"
	       " (inputs included)\n",
	       ntenants, calls, (double)(t1 - t0) / (double)calls,
	       (double)(t1 - t0) / (double)calls / (double)n);
out:
	free(r.stats);
	free(r.usage_us);
	free(r.usage_ok);
	tenancy_release(&tn);
	return rc;
}

int main(int argc, char **argv)
{
	long calls = 1000000, tenants = MAX_TENANTS;
	unsigned seed = 12345;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc)
			calls = parse_num("--calls", argv[++i], 1, MAX_CALLS);
		else if (strcmp(argv[i], "--tenants") == 0 && i + 1 < argc)
			tenants = parse_num("--tenants", argv[++i], 1, MAX_TENANTS);
		else if (strcmp(argv[i], "--cost-ns") == 0 && i + 1 < argc)
			cost_ns = (uint64_t)parse_num("--cost-ns", argv[++i], 1, 1000000);
		else
			usage();
	}
	for (int i = 0; i < NOISE; i++) {
		seed = seed * 1103515245u + 12345u;
		noise[i] = 0.75 + 0.5 * (double)((seed >> 8) & 0xffff) / 65535.0;
	}
	rc = bench_update(calls);
	if (!rc)
		rc = bench_control(1, calls);
	if (!rc)
		rc = bench_control(tenants, calls);
	if (rc) {
		fprintf(stderr, "bench_budget: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
