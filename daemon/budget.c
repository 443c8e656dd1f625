/*
 * budget.c - per-tenant overhead controller (the method is in budget.h).
 *
 * Runs in the collector, once per tenant per control period; pure
 * arithmetic on what the collector measured.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "budget.h"

static bool config_ok(const struct budget_config *c)
{
	return c && c->hz_min >= 1 && c->hz_min <= c->hz_max && c->hz_start >= c->hz_min &&
	       c->hz_start <= c->hz_max && isfinite(c->max_overhead) && c->max_overhead > 0;
}

static enum budget_state steer(struct budget *b, double noise);

static double clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

int budget_init(struct budget *b, const struct budget_config *cfg)
{
	if (!b || !config_ok(cfg))
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	b->cfg = *cfg;
	b->hz = cfg->hz_start;
	return 0;
}

int budget_configure(struct budget *b, const struct budget_config *cfg)
{
	if (!b || !config_ok(cfg))
		return -EINVAL;
	b->cfg = *cfg;
	b->hz = clamp(b->hz, cfg->hz_min, cfg->hz_max);
	/* What a sample costs has not changed: act on the new budget now. */
	if (b->k > 0)
		steer(b, 0); /* a new budget is news: act on it */
	b->unreachable = b->k > 0 && b->hz <= cfg->hz_min && b->k * cfg->hz_min > cfg->max_overhead;
	return 0;
}

unsigned budget_hz(const struct budget *b)
{
	/* hz stays within [min, max], which are integers: so does this. */
	return (unsigned)clamp(floor(b->hz + 0.5), b->cfg.hz_min, b->cfg.hz_max);
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

uint64_t budget_cost(const struct budget_input *in)
{
	uint64_t irq;

	if (in->samples && in->sample_cost_ns > UINT64_MAX / in->samples)
		irq = UINT64_MAX;
	else
		irq = in->samples * in->sample_cost_ns;
	return add_sat(add_sat(in->bpf_ns, irq), in->agent_ns);
}

double budget_overhead(const struct budget_input *in)
{
	return in->tenant_ns ? (double)budget_cost(in) / (double)in->tenant_ns : 0;
}

uint64_t budget_apportion(uint64_t agent_ns, uint64_t samples, uint64_t all_samples)
{
	if (all_samples == 0)
		return 0;
	if (samples > all_samples)
		samples = all_samples;
	return (uint64_t)((unsigned __int128)agent_ns * samples / all_samples);
}

static void pool_reset(struct budget *b)
{
	b->pool_cost_ns = b->pool_bpf_ns = b->pool_cpu_ns = b->pool_hz_cpu = 0;
	b->pool_samples = 0;
	b->pool_periods = 0;
}

/*
 * Move the set-point towards the budget given the estimate k.  noise is
 * the relative uncertainty of the estimate (1/sqrt(samples) for a pool of
 * that many samples): room that noise could explain is not taken, so that
 * counting noise at low rates does not walk the frequency up and down;
 * a gap of more than BUDGET_NOISE_BAND_MAX is always acted on.
 * Going down stays prompt: the budget is a limit.
 */
static enum budget_state steer(struct budget *b, double noise)
{
	const struct budget_config *c = &b->cfg;
	double target, ratio, step, old = b->hz;
	double up_band = fmin(BUDGET_NOISE_BAND_MAX, fmax(BUDGET_DEADBAND, 1 + 2 * noise));

	/* Where the budget would be met with room to spare; no cost: max. */
	target = b->k > 0 ? BUDGET_SETPOINT * c->max_overhead / b->k : INFINITY;
	ratio = target / b->hz;
	if (ratio <= up_band && ratio >= 1 / BUDGET_DEADBAND) {
		step = 1;
	} else if (ratio < 1) {
		step = pow(ratio, BUDGET_GAIN_DOWN);
		if (step < 1 / BUDGET_MAX_STEP_DOWN)
			step = 1 / BUDGET_MAX_STEP_DOWN;
	} else {
		step = isinf(ratio) ? BUDGET_MAX_STEP_UP : pow(ratio, BUDGET_GAIN_UP);
		if (step > BUDGET_MAX_STEP_UP)
			step = BUDGET_MAX_STEP_UP;
	}
	b->hz = clamp(b->hz * step, c->hz_min, c->hz_max);
	b->unreachable = b->k > 0 && b->hz <= c->hz_min && b->k * c->hz_min > c->max_overhead;
	return b->hz == old ? BUDGET_HOLD : BUDGET_MOVE;
}

/* Decide from the pool: smoothed k, then steer. */
static enum budget_state decide(struct budget *b, double overhead)
{
	double hz_eff = b->pool_hz_cpu / b->pool_cpu_ns;
	double k_new = overhead / hz_eff;
	double noise = 1 / sqrt(b->pool_samples > 1 ? (double)b->pool_samples : 1.0);

	if (b->k <= 0 || k_new <= 0 || k_new > 2 * b->k || k_new < b->k / 2)
		b->k = k_new;
	else
		b->k += 0.5 * (k_new - b->k);
	return steer(b, noise);
}

int budget_update(struct budget *b, const struct budget_input *in, struct budget_result *ret)
{
	struct budget_result r = { 0 };
	double overhead;

	if (!b || !in || !ret || in->hz == 0)
		return -EINVAL;
	r.cost_ns = budget_cost(in);
	b->pool_cost_ns += (double)r.cost_ns;
	b->pool_bpf_ns += (double)in->bpf_ns;
	b->pool_cpu_ns += (double)in->tenant_ns;
	b->pool_hz_cpu += (double)in->hz * (double)in->tenant_ns;
	b->pool_samples += in->samples;
	b->pool_periods++;

	if (b->pool_cpu_ns <= 0) {
		/* No CPU time, no overhead to speak of: hold, and start over. */
		pool_reset(b);
		r.state = BUDGET_IDLE;
	} else {
		overhead = b->pool_cost_ns / b->pool_cpu_ns;
		r.overhead = overhead;
		/* One sample more or less must not move the estimate by more
		 * than 1/BUDGET_MIN_SAMPLES: with costs that scale with the
		 * rate that means that many samples; with a large fixed cost,
		 * fewer suffice. */
		double one = (double)in->sample_cost_ns +
			     (b->pool_samples ? b->pool_bpf_ns / (double)b->pool_samples : 0);

		if ((b->pool_cost_ns < BUDGET_MIN_SAMPLES * one ||
		     b->pool_cpu_ns < BUDGET_MIN_CPU_NS) &&
		    b->pool_periods < BUDGET_MAX_POOL) {
			r.state = BUDGET_POOLING;
		} else {
			r.state = decide(b, overhead);
			pool_reset(b);
		}
	}
	r.hz = budget_hz(b);
	r.unreachable = b->unreachable;
	*ret = r;
	return 0;
}
