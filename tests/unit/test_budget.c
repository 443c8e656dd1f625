/*
 * test_budget.c - the overhead controller keeps a tenant under its budget:
 * it converges within 30 s of a change in load or budget, holds steady
 * (<= 20% frequency swing) under noisy measurements, never exceeds the
 * maximum frequency, and reports a budget it cannot meet even at the minimum.
 *
 * The tenant is simulated: a load in CPU cores, sampled on cpu-clock (hz
 * samples per second of its CPU time, carried fractionally), each sample
 * costing an interrupt, BPF run time and agent time, plus a fixed agent
 * cost per second that does not scale with the rate.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "budget.h"

struct plant {
	double load;		/* CPU cores the tenant uses */
	double irq_ns;		/* interrupt cost of one sample (as calibrated) */
	double bpf_ns;		/* BPF run time per sample */
	double agent_ns;	/* agent CPU per sample */
	double fixed_ns;	/* agent CPU per second that does not scale with hz */
	double noise;		/* each measurement off by up to +-noise (relative) */
	uint64_t rng;
	double carry;		/* fractional samples */
};

static struct plant plant_default(void)
{
	return (struct plant){
		.load = 1.0, .irq_ns = 15000, .bpf_ns = 4000, .agent_ns = 2000,
		.fixed_ns = 20000, .rng = 0x9e3779b97f4a7c15ull,
	};
}

static double uniform(struct plant *p)	/* in [-1, 1) */
{
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return (double)(p->rng >> 11) / (double)(1ull << 52) - 1.0;
}

static double jitter(struct plant *p)
{
	return 1.0 + p->noise * uniform(p);
}

/* The true (noise-free) overhead of sampling the tenant at hz. */
static double true_overhead(const struct plant *p, double hz)
{
	return hz * (p->irq_ns + p->bpf_ns + p->agent_ns) * 1e-9 + p->fixed_ns * 1e-9 / p->load;
}

/* The highest frequency that meets the budget. */
static double ideal_hz(const struct plant *p, double budget)
{
	return (budget - p->fixed_ns * 1e-9 / p->load) /
	       ((p->irq_ns + p->bpf_ns + p->agent_ns) * 1e-9);
}

static void plant_period(struct plant *p, unsigned hz, double secs, struct budget_input *in)
{
	double cpu_s = p->load * secs, exact = hz * cpu_s + p->carry;
	uint64_t samples = (uint64_t)exact;

	p->carry = exact - (double)samples;
	if (p->noise > 0 && samples > 0 && uniform(p) > 0.5)
		samples += uniform(p) > 0 ? 1 : -1;	/* timer phase */
	*in = (struct budget_input){
		.bpf_ns = (uint64_t)(samples * p->bpf_ns * jitter(p)),
		.samples = samples,
		.sample_cost_ns = (uint64_t)p->irq_ns,
		.agent_ns = (uint64_t)((samples * p->agent_ns + p->fixed_ns * secs) * jitter(p)),
		.tenant_ns = (uint64_t)(cpu_s * 1e9 * jitter(p)),
		.hz = hz,
	};
}

struct run {
	double secs;		/* control period */
	double t;		/* simulated time */
	double last_bad;	/* last time the rate was not where it should be */
	unsigned hz_min_seen, hz_max_seen;
	double hz_sum;
	unsigned n;
	struct budget_result last;
};

/*
 * Run for duration seconds.  A period counts as "bad" when the rate is over
 * the budget or wastes more than 30% of it (below the maximum); the phase's
 * convergence time is when the last bad period ended, from its start.
 */
static double run_phase(struct budget *b, struct plant *p, struct run *r, double duration,
			double steady_after)
{
	double start = r->t, last_bad = start;

	r->hz_min_seen = UINT32_MAX;
	r->hz_max_seen = 0;
	r->hz_sum = 0;
	r->n = 0;
	while (r->t < start + duration - 1e-9) {
		struct budget_input in;
		unsigned hz = budget_hz(b);
		double o = true_overhead(p, hz);

		assert_true(hz >= b->cfg.hz_min && hz <= b->cfg.hz_max);
		if (o > b->cfg.max_overhead * 1.0000001 ||
		    (o < 0.7 * b->cfg.max_overhead && hz < b->cfg.hz_max))
			last_bad = r->t + r->secs;
		if (r->t >= start + steady_after) {
			r->hz_min_seen = hz < r->hz_min_seen ? hz : r->hz_min_seen;
			r->hz_max_seen = hz > r->hz_max_seen ? hz : r->hz_max_seen;
			r->hz_sum += hz;
			r->n++;
		}
		plant_period(p, hz, r->secs, &in);
		assert_int_equal(budget_update(b, &in, &r->last), 0);
		assert_true(r->last.hz >= b->cfg.hz_min && r->last.hz <= b->cfg.hz_max);
		assert_true(isfinite(r->last.overhead));
		r->t += r->secs;
	}
	return last_bad - start;
}

static struct budget_config cfg(unsigned min, unsigned max, unsigned start, double percent)
{
	return (struct budget_config){ .hz_min = min, .hz_max = max, .hz_start = start,
				       .max_overhead = percent / 100 };
}

static void test_formula(void **state)
{
	struct budget_input in = { .bpf_ns = 4000, .samples = 10, .sample_cost_ns = 15000,
				   .agent_ns = 6000, .tenant_ns = 1000000, .hz = 10 };

	assert_int_equal(budget_cost(&in), 4000 + 150000 + 6000);
	assert_true(fabs(budget_overhead(&in) - 0.16) < 1e-12);
	in.tenant_ns = 0;
	assert_true(budget_overhead(&in) == 0);
	in.samples = UINT64_MAX;
	assert_int_equal(budget_cost(&in), UINT64_MAX);	/* saturates, no wrap */

	assert_int_equal(budget_apportion(1000, 1, 4), 250);
	assert_int_equal(budget_apportion(1000, 0, 4), 0);
	assert_int_equal(budget_apportion(1000, 3, 0), 0);
	assert_int_equal(budget_apportion(1000, 9, 4), 1000);
	assert_int_equal(budget_apportion(UINT64_MAX, UINT64_MAX / 2, UINT64_MAX), UINT64_MAX / 2);
}

static void test_config(void **state)
{
	struct budget b;
	struct budget_config c = cfg(1, 99, 49, 1.0);
	struct budget_input in = { .tenant_ns = 1, .hz = 0 };
	struct budget_result res;

	assert_int_equal(budget_init(&b, &c), 0);
	assert_int_equal(budget_hz(&b), 49);
	c = cfg(0, 99, 49, 1.0);
	assert_int_equal(budget_init(&b, &c), -EINVAL);
	c = cfg(50, 40, 45, 1.0);
	assert_int_equal(budget_init(&b, &c), -EINVAL);
	c = cfg(1, 99, 100, 1.0);
	assert_int_equal(budget_init(&b, &c), -EINVAL);
	c = cfg(1, 99, 49, 0);
	assert_int_equal(budget_init(&b, &c), -EINVAL);
	c = cfg(1, 99, 49, NAN);
	assert_int_equal(budget_init(&b, &c), -EINVAL);
	assert_int_equal(budget_update(&b, &in, &res), -EINVAL);

	/* A new policy takes effect at once: the rate is clamped into it. */
	c = cfg(1, 99, 49, 1.0);
	assert_int_equal(budget_init(&b, &c), 0);
	c = cfg(1, 20, 10, 1.0);
	assert_int_equal(budget_configure(&b, &c), 0);
	assert_int_equal(budget_hz(&b), 20);
	c = cfg(30, 40, 35, 1.0);
	assert_int_equal(budget_configure(&b, &c), 0);
	assert_int_equal(budget_hz(&b), 30);
	c = cfg(3, 2, 2, 1.0);
	assert_int_equal(budget_configure(&b, &c), -EINVAL);
	assert_int_equal(budget_hz(&b), 30);
}

/* 49 Hz costs 0.1% here; a 0.02% budget must be met within 30 s. */
static void test_converges_to_tight_budget(void **state)
{
	struct budget b;
	struct plant p = plant_default();
	struct run r = { .secs = 5 };
	struct budget_config c = cfg(1, 99, 49, 0.02);
	double conv;

	assert_int_equal(budget_init(&b, &c), 0);
	conv = run_phase(&b, &p, &r, 180, 60);
	assert_true(conv <= 30);
	/* Settled: the same rate every period, under budget. */
	assert_int_equal(r.hz_min_seen, r.hz_max_seen);
	assert_true(true_overhead(&p, r.hz_max_seen) <= c.max_overhead);
	assert_true(r.hz_max_seen <= ideal_hz(&p, c.max_overhead));
	assert_false(r.last.unreachable);
}

static void test_loose_budget_reaches_max(void **state)
{
	struct budget b;
	struct plant p = plant_default();
	struct run r = { .secs = 5 };
	struct budget_config c = cfg(1, 99, 49, 2.0);

	assert_int_equal(budget_init(&b, &c), 0);
	assert_true(run_phase(&b, &p, &r, 120, 30) <= 30);
	assert_int_equal(r.hz_min_seen, 99);
	assert_int_equal(r.hz_max_seen, 99);
	assert_int_equal(r.last.state, BUDGET_HOLD);
}

/* Load falls tenfold, so the fixed agent cost weighs ten times more. */
static void test_load_step(void **state)
{
	struct budget b;
	struct plant p = plant_default();
	struct run r = { .secs = 5 };
	struct budget_config c = cfg(1, 99, 49, 0.1);
	unsigned before;

	p.fixed_ns = 50000;
	assert_int_equal(budget_init(&b, &c), 0);
	assert_true(run_phase(&b, &p, &r, 120, 60) <= 30);
	before = r.hz_max_seen;
	assert_true(before > 0.75 * ideal_hz(&p, c.max_overhead));

	p.load = 0.1;
	assert_true(ideal_hz(&p, c.max_overhead) < 0.6 * before);	/* a real step */
	assert_true(run_phase(&b, &p, &r, 120, 60) <= 30);
	assert_true(r.hz_max_seen < before);

	p.load = 1.0;
	assert_true(run_phase(&b, &p, &r, 120, 60) <= 30);
	assert_true(r.hz_max_seen > 0.75 * ideal_hz(&p, c.max_overhead));
}

static void test_budget_change(void **state)
{
	const double periods[] = { 5, 2 };

	for (size_t i = 0; i < sizeof(periods) / sizeof(*periods); i++) {
		struct budget b;
		struct plant p = plant_default();
		struct run r = { .secs = periods[i] };
		struct budget_config c = cfg(1, 99, 49, 0.02);

		assert_int_equal(budget_init(&b, &c), 0);
		assert_true(run_phase(&b, &p, &r, 120, 60) <= 30);
		assert_true(r.hz_max_seen < 15);

		c = cfg(1, 99, 49, 1.0);	/* room: up to max */
		assert_int_equal(budget_configure(&b, &c), 0);
		assert_true(run_phase(&b, &p, &r, 120, 60) <= 30);
		assert_int_equal(r.hz_min_seen, 99);

		c = cfg(1, 99, 49, 0.05);	/* tight again */
		assert_int_equal(budget_configure(&b, &c), 0);
		assert_true(run_phase(&b, &p, &r, 120, 60) <= 30);
		assert_true(true_overhead(&p, r.hz_max_seen) <= c.max_overhead);
	}
}

/*
 * +-10% noise on every measurement and a sample of timer jitter: at steady
 * state the rate moves by at most 20% peak to peak and the overhead keeps
 * to the budget, whatever the seed.
 */
static void test_noise_steady_state(void **state)
{
	const double budgets[] = { 0.02, 0.1, 0.15 };

	for (size_t bi = 0; bi < sizeof(budgets) / sizeof(*budgets); bi++) {
		for (uint64_t seed = 1; seed <= 20; seed++) {
			struct budget b;
			struct plant p = plant_default();
			struct run r = { .secs = 5 };
			struct budget_config c = cfg(1, 99, 49, budgets[bi]);
			double mean;

			p.noise = 0.10;
			p.rng = seed * 0x2545f4914f6cdd1dull;
			assert_int_equal(budget_init(&b, &c), 0);
			run_phase(&b, &p, &r, 60, 0);
			run_phase(&b, &p, &r, 600, 0);
			mean = r.hz_sum / r.n;
			if ((r.hz_max_seen - r.hz_min_seen) > 0.20 * mean)
				fail_msg("budget %g%% seed %u: hz %u..%u around %.1f", budgets[bi],
					 (unsigned)seed, r.hz_min_seen, r.hz_max_seen, mean);
			assert_true(true_overhead(&p, mean) <= c.max_overhead);
			assert_true(r.hz_min_seen >= 0.7 * ideal_hz(&p, c.max_overhead));
		}
	}
}

/* The fixed cost alone is over budget for a nearly idle tenant. */
static void test_unreachable_at_min(void **state)
{
	struct budget b;
	struct plant p = plant_default();
	struct run r = { .secs = 5 };
	struct budget_config c = cfg(2, 99, 49, 0.5);

	p.load = 0.05;
	p.fixed_ns = 500000;	/* 1% of 0.05 cores */
	assert_true(true_overhead(&p, 2) > c.max_overhead);
	assert_int_equal(budget_init(&b, &c), 0);
	run_phase(&b, &p, &r, 60, 0);
	assert_int_equal(budget_hz(&b), 2);
	assert_true(r.last.unreachable);
	assert_true(r.last.overhead > c.max_overhead);
	run_phase(&b, &p, &r, 60, 0);
	assert_int_equal(r.hz_min_seen, 2);
	assert_int_equal(r.hz_max_seen, 2);	/* never tries its luck higher */
	assert_true(r.last.unreachable);

	/* The budget raised above the fixed cost: reachable again, rate rises. */
	c = cfg(2, 99, 49, 5.0);
	assert_int_equal(budget_configure(&b, &c), 0);
	assert_true(run_phase(&b, &p, &r, 60, 30) <= 30);
	assert_false(r.last.unreachable);
	assert_int_equal(r.hz_min_seen, 99);
}

/* No CPU time at all: nothing is measured, nothing moves, no NaN. */
static void test_idle(void **state)
{
	struct budget b;
	struct budget_config c = cfg(1, 99, 49, 1.0);
	struct budget_input in = { .sample_cost_ns = 15000, .hz = 49 };
	struct budget_result res;

	assert_int_equal(budget_init(&b, &c), 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(budget_update(&b, &in, &res), 0);
		assert_int_equal(res.state, BUDGET_IDLE);
		assert_int_equal(res.hz, 49);
		assert_true(res.overhead == 0);
		assert_false(res.unreachable);
	}
	/* Agent time charged with no tenant CPU (rounding elsewhere): still idle. */
	in.agent_ns = 1000000;
	assert_int_equal(budget_update(&b, &in, &res), 0);
	assert_int_equal(res.state, BUDGET_IDLE);
	assert_int_equal(res.hz, 49);
}

/*
 * A few samples per period are pooled, not acted on one period at a time:
 * one sample more or less would swing the estimate.
 */
static void test_pooling_few_samples(void **state)
{
	struct budget b;
	struct budget_config c = cfg(1, 99, 49, 0.02);
	struct budget_input in = { .samples = 2, .sample_cost_ns = 15000,
				   .tenant_ns = 100000000, .hz = 49 };
	struct budget_result res;

	/* 0.03% overhead, over budget, but on two samples a period. */
	assert_int_equal(budget_init(&b, &c), 0);
	for (int i = 0; i < BUDGET_MAX_POOL - 1; i++) {
		assert_int_equal(budget_update(&b, &in, &res), 0);
		assert_int_equal(res.state, BUDGET_POOLING);
		assert_int_equal(res.hz, 49);
	}
	/* The last period of the pool decides on all of them. */
	in.samples = 3;
	assert_int_equal(budget_update(&b, &in, &res), 0);
	assert_int_equal(res.state, BUDGET_MOVE);
	assert_true(res.hz < 49);
	assert_true(fabs(res.overhead - 7 * 15000.0 / (3 * 100000000.0)) < 1e-12);

	/* Enough samples in one period: decided at once. */
	in.samples = 8;
	assert_int_equal(budget_init(&b, &c), 0);
	assert_int_equal(budget_update(&b, &in, &res), 0);
	assert_int_equal(res.state, BUDGET_MOVE);

	/* Few samples, but a fixed cost that dwarfs them: decided at once. */
	in.samples = 1;
	in.agent_ns = 400000;
	assert_int_equal(budget_init(&b, &c), 0);
	assert_int_equal(budget_update(&b, &in, &res), 0);
	assert_int_equal(res.state, BUDGET_MOVE);
}

/* Under 20 ms of tenant CPU a period is pooled even with many samples. */
static void test_pooling_little_cpu(void **state)
{
	struct budget b;
	struct budget_config c = cfg(1, 99, 49, 0.02);
	struct budget_input in = { .samples = 100, .sample_cost_ns = 15000, .tenant_ns = 5000000,
				   .hz = 49 };
	struct budget_result res;

	assert_int_equal(budget_init(&b, &c), 0);
	assert_int_equal(budget_update(&b, &in, &res), 0);
	assert_int_equal(res.state, BUDGET_POOLING);
	in.tenant_ns = 15000000;	/* 20 ms pooled now */
	assert_int_equal(budget_update(&b, &in, &res), 0);
	assert_int_equal(res.state, BUDGET_MOVE);
}

/* Settle a noise-free tenant; return the rate it settled at. */
static unsigned settle(struct budget *b, struct plant *p, double percent)
{
	struct run r = { .secs = 5 };
	struct budget_config c = cfg(1, 99, 49, percent);

	assert_int_equal(budget_init(b, &c), 0);
	run_phase(b, p, &r, 120, 60);
	assert_int_equal(r.hz_min_seen, r.hz_max_seen);
	return r.hz_max_seen;
}

/* One period measured a little off does not move a settled rate. */
static void test_deadband(void **state)
{
	struct budget b;
	struct plant p = plant_default();
	struct budget_input in;
	struct budget_result res;
	unsigned hz = settle(&b, &p, 0.1);

	for (double off = 0.95; off <= 1.051; off += 0.05) {
		plant_period(&p, hz, 5, &in);
		in.tenant_ns = (uint64_t)(in.tenant_ns / off);
		assert_int_equal(budget_update(&b, &in, &res), 0);
		assert_int_equal(res.state, BUDGET_HOLD);
		assert_int_equal(res.hz, hz);
	}
}

/*
 * A single period 1.6x as costly moves the rate only part of the way (it
 * may be noise); a step of 3x is real news and is acted on in full.
 */
static void test_smoothing(void **state)
{
	struct budget b;
	struct plant p = plant_default();
	struct budget_input in;
	struct budget_result res;
	unsigned hz = settle(&b, &p, 0.1);

	plant_period(&p, hz, 5, &in);
	in.tenant_ns = (uint64_t)(in.tenant_ns / 1.6);
	assert_int_equal(budget_update(&b, &in, &res), 0);
	assert_int_equal(res.state, BUDGET_MOVE);
	assert_true(res.hz < hz && res.hz > hz / 1.45);

	hz = settle(&b, &p, 0.1);
	plant_period(&p, hz, 5, &in);
	in.tenant_ns = (uint64_t)(in.tenant_ns / 3);
	assert_int_equal(budget_update(&b, &in, &res), 0);
	assert_true(res.hz < hz / 2.4);
}

/* A reload acts at once, in the right direction, before any new period. */
static void test_configure_acts_at_once(void **state)
{
	struct budget b;
	struct plant p = plant_default();
	unsigned hz = settle(&b, &p, 0.05);
	struct budget_config c = cfg(1, 99, 49, 1.0);

	assert_int_equal(budget_configure(&b, &c), 0);
	assert_true(budget_hz(&b) > hz);
	hz = budget_hz(&b);
	c = cfg(1, 99, 49, 0.01);
	assert_int_equal(budget_configure(&b, &c), 0);
	assert_true(budget_hz(&b) < hz / 2);
}

/* Whatever it is fed, the rate stays in [min, max] and the figures finite. */
static void test_bounds_under_garbage(void **state)
{
	struct plant p = plant_default();
	struct budget b;
	struct budget_config c = cfg(5, 40, 20, 0.5);
	struct budget_result res;

	assert_int_equal(budget_init(&b, &c), 0);
	for (int i = 0; i < 100000; i++) {
		struct budget_input in;
		uint64_t x = p.rng;

		uniform(&p);
		in.bpf_ns = x & 1 ? x >> 20 : 0;
		in.samples = x & 2 ? (x >> 30) & 0xffff : (x & 4 ? UINT64_MAX : 0);
		in.sample_cost_ns = x & 8 ? 15000 : x >> 40;
		in.agent_ns = x & 16 ? x : 0;
		in.tenant_ns = x & 32 ? (x >> 13) : (x & 64 ? 1 : 0);
		in.hz = 1 + (unsigned)(x >> 50);
		assert_int_equal(budget_update(&b, &in, &res), 0);
		assert_true(res.hz >= c.hz_min && res.hz <= c.hz_max);
		assert_true(isfinite(res.overhead) && res.overhead >= 0);
		assert_true(isfinite(b.hz) && isfinite(b.k));
		if (i % 1000 == 0) {
			c.hz_max = 6 + (unsigned)(x % 90);
			c.hz_start = c.hz_min;
			assert_int_equal(budget_configure(&b, &c), 0);
			assert_true(budget_hz(&b) <= c.hz_max);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formula),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_converges_to_tight_budget),
		cmocka_unit_test(test_loose_budget_reaches_max),
		cmocka_unit_test(test_load_step),
		cmocka_unit_test(test_budget_change),
		cmocka_unit_test(test_noise_steady_state),
		cmocka_unit_test(test_unreachable_at_min),
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_pooling_few_samples),
		cmocka_unit_test(test_pooling_little_cpu),
		cmocka_unit_test(test_deadband),
		cmocka_unit_test(test_smoothing),
		cmocka_unit_test(test_configure_acts_at_once),
		cmocka_unit_test(test_bounds_under_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
