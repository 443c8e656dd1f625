/*
 * budget.h - the per-tenant overhead controller: from what sampling a tenant
 * cost in the last control period, the frequency to sample it at next.
 *
 * Pure logic, no I/O, no clock: the collector (no privileges) measures, this
 * module decides, the monitor applies (and enforces its own ceiling).
 *
 * Measurement.  Over a control period (a few seconds) the cost of profiling
 * a tenant is
 *
 *     cost = BPF run time on its samples + samples x per-sample interrupt
 *            cost (calibrated on the host) + agent CPU apportioned by its
 *            share of samples (budget_apportion())
 *
 * and its overhead is cost / the tenant's own CPU time (cpu.stat usage_usec
 * delta of its cgroups).  The budget is the highest overhead allowed, as a
 * fraction (policy's max_overhead).
 *
 * Method.  Sampling on cpu-clock takes hz samples per second of the
 * tenant's CPU time, so overhead is close to proportional to hz: overhead =
 * k x hz, with k the cost of one sample per second of tenant CPU, plus a
 * part that does not scale (the fixed share of the agent's CPU), which
 * makes k grow as hz falls.  The controller
 *
 *   1. pools periods until one sample more or less would change the
 *      pool's cost by at most 1/BUDGET_MIN_SAMPLES (when all costs scale
 *      with the rate: 8 samples; a large fixed cost needs fewer) and the
 *      pool holds BUDGET_MIN_CPU_NS of tenant CPU time, or until
 *      BUDGET_MAX_POOL periods are pooled, so that a few samples of a
 *      nearly idle tenant do not move it; a pool with no CPU time at all
 *      is "idle" and moves nothing;
 *   2. estimates k = overhead / hz (hz weighted by CPU time over the pool)
 *      and smooths it, k += 1/2 (k_new - k), except that a change of more
 *      than 2x is taken at once (a step in load or cost is real news);
 *   3. aims at hz* = BUDGET_SETPOINT x budget / k, i.e. 90% of the budget,
 *      leaving room for noise;
 *   4. holds still while hz* is within 10% of the current frequency (the
 *      deadband: at steady state the expected overhead then stays between
 *      82% and 99% of the budget, and noise does not make the rate wander);
 *      upwards the band widens to 1 + 2/sqrt(n) for a pool of n samples (at
 *      most BUDGET_NOISE_BAND_MAX), so that room which counting noise could
 *      explain is not taken: a tenant sampled at 10 Hz for a few seconds
 *      gives only a few dozen samples, and without this its rate walks up
 *      and down by a third;
 *   5. otherwise moves multiplicatively part of the way, hz x (hz* / hz)^g,
 *      g = 0.9 down and 0.6 up (over budget is fixed quickly, room is taken
 *      cautiously), at most 10x down and 3x up per decision;
 *   6. clamps to [min, max]: the result is never above max.  When it sits at
 *      min and k x min is still over the budget, the budget is reported
 *      unreachable.
 * A new policy (budget_configure()) is acted on at once with the k already
 * learnt, without waiting for a period at the new rate.
 *
 * Because the overhead is nearly linear in hz, each step removes most of
 * the error in log space: from 49 Hz to the rate that meets a 0.02% budget
 * takes 3 to 4 periods, from a tight budget to max about 3 (tests/unit/
 * test_budget.c checks <= 30 s with 2 s and 5 s periods, and <= 20%
 * peak-to-peak frequency swing under +-10% noise).  That holds while one
 * period says enough (step 1: e.g. 8 samples, hz x cores x period >= 8,
 * 0.2 cores at 8 Hz with 5 s periods); a tenant that gives less is
 * measured over up to BUDGET_MAX_POOL periods per decision, so it
 * converges up to that many times more slowly: its overhead cannot be
 * known any faster.
 *
 * Library-like: returns 0 or -errno, never logs.
 */
#ifndef VIGIL_BUDGET_H
#define VIGIL_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#define BUDGET_SETPOINT 0.9		/* aim at this fraction of the budget */
#define BUDGET_DEADBAND 1.10		/* hold while hz* is within this ratio */
#define BUDGET_GAIN_DOWN 0.9
#define BUDGET_GAIN_UP 0.6
#define BUDGET_MAX_STEP_DOWN 10.0
#define BUDGET_MAX_STEP_UP 3.0
#define BUDGET_MIN_SAMPLES 8		/* pool at least this many samples' cost ... */
#define BUDGET_MIN_CPU_NS 20000000ull	/* ... and this much tenant CPU (20 ms) ... */
#define BUDGET_MAX_POOL 3		/* ... unless this many periods are pooled */
#define BUDGET_NOISE_BAND_MAX 1.5	/* the noise-widened upward deadband stops here */

struct budget_config {
	unsigned hz_min, hz_max;	/* 1 <= hz_min <= hz_max */
	unsigned hz_start;		/* hz_min <= hz_start <= hz_max */
	double max_overhead;		/* budget as a fraction: 1% is 0.01; > 0 */
};

/* What one tenant's sampling cost during one control period. */
struct budget_input {
	uint64_t bpf_ns;		/* BPF run time spent on its samples */
	uint64_t samples;		/* its samples */
	uint64_t sample_cost_ns;	/* calibrated interrupt cost of one sample */
	uint64_t agent_ns;		/* agent CPU apportioned to it */
	uint64_t tenant_ns;		/* its own CPU time (cgroup cpu.stat) */
	unsigned hz;			/* the frequency it was sampled at; >= 1 */
};

enum budget_state {
	BUDGET_HOLD,		/* decided: the rate is right (in the deadband or at a bound) */
	BUDGET_MOVE,		/* decided: the rate changes */
	BUDGET_POOLING,		/* too little to go on yet: periods are being pooled */
	BUDGET_IDLE,		/* the tenant used no CPU: nothing to measure */
};

struct budget_result {
	unsigned hz;		/* frequency for the next period, in [hz_min, hz_max] */
	double overhead;	/* measured: cost / tenant CPU over the pool; 0 when idle */
	uint64_t cost_ns;	/* cost in this period */
	bool unreachable;	/* the budget cannot be met even at hz_min */
	enum budget_state state;
};

/* One tenant's controller.  Embed it; the fields are private. */
struct budget {
	struct budget_config cfg;
	double hz;		/* continuous set-point, in [hz_min, hz_max] */
	double k;		/* smoothed overhead per Hz; 0 until measured */
	bool unreachable;
	/* The pool of periods not yet decided on. */
	double pool_cost_ns, pool_bpf_ns, pool_cpu_ns, pool_hz_cpu;
	uint64_t pool_samples;
	unsigned pool_periods;
};

/* Start at cfg->hz_start.  0, or -EINVAL if cfg breaks its constraints. */
int budget_init(struct budget *b, const struct budget_config *cfg);

/*
 * A new policy for a tenant being controlled already: keeps what was
 * learnt about its cost and its frequency (clamped into the new bounds at
 * once), so that a new budget is acted on in the next decision.  0 or
 * -EINVAL (b unchanged).
 */
int budget_configure(struct budget *b, const struct budget_config *cfg);

/*
 * Account one control period and decide the next frequency (see the method
 * above).  *ret is written on success.  0, or -EINVAL (in->hz is 0).
 */
int budget_update(struct budget *b, const struct budget_input *in, struct budget_result *ret);

/* The frequency the controller currently asks for, in [hz_min, hz_max]. */
unsigned budget_hz(const struct budget *b);

/* cost of one period in ns (saturating), as defined above. */
uint64_t budget_cost(const struct budget_input *in);

/* cost / tenant_ns, or 0 when tenant_ns is 0. */
double budget_overhead(const struct budget_input *in);

/*
 * The part of the agent's CPU time agent_ns that a tenant with samples of
 * all_samples samples bears: agent_ns x samples / all_samples, rounded down,
 * without overflow; 0 if all_samples is 0 (samples is capped at it).
 */
uint64_t budget_apportion(uint64_t agent_ns, uint64_t samples, uint64_t all_samples);

#endif
