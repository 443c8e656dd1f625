/*
 * sampler_hz.c - a tenant's sampling frequency at run time
 * (sampler_set_tenant_hz, see sampler.h).
 *
 * Runs in the monitor (user vigil, CAP_PERFMON; the ioctl is in its
 * seccomp allowlist), on the collector's request, after the broker has
 * capped the frequency at the ceiling.
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "sampler_int.h"

/*
 * cpu-clock turns a frequency into a fixed period when the event is
 * opened, so a new frequency is a new period, from each CPU's next tick.
 */
static int set_period(const int *pfds, unsigned n, unsigned hz)
{
	uint64_t period = sampler_period_ns(hz);

	for (unsigned i = 0; i < n; i++)
		if (pfds[i] >= 0 && ioctl(pfds[i], PERF_EVENT_IOC_PERIOD, &period) < 0)
			return -errno;
	return 0;
}

/* Every event of one tenant to hz; stops at the first error. */
static int set_tenant(struct sampler *s, unsigned tenant, unsigned hz)
{
	int rc = 0;

	if (tenant == 0)
		rc = set_period(s->pfds, s->ncpus, hz);
	for (size_t i = 0; !rc && i < s->ncgs; i++)
		if (s->cgs[i].tenant == tenant)
			rc = set_period(s->cgs[i].pfds, s->ncpus, hz);
	return rc;
}

int sampler_set_tenant_hz(struct sampler *s, unsigned tenant, unsigned hz)
{
	unsigned old;
	int rc;

	if (hz == 0 || tenant >= VIGIL_MAX_TENANTS)
		return -EINVAL;
	/*
	 * Nothing to do at the frequency in effect (a policy reload asks for
	 * it again): a new period would restart each CPU's, and the part run
	 * so far would go unsampled.
	 */
	if (s->tenant_hz[tenant] == hz)
		return 0;
	old = s->tenant_hz[tenant];
	rc = set_tenant(s, tenant, hz);
	if (!rc) {
		/*
		 * The samples' period (vigil_abi.h: the kernel's own report of
		 * it stays the old one).  A sample taken between a CPU's ioctl
		 * and this update, microseconds, is valued at the old period.
		 */
		s->tenant_hz[tenant] = hz;
		rc = sampler_write_tenant_cfg(s, tenant);
		if (!rc)
			return 0;
		s->tenant_hz[tenant] = old;
	}
	/* Not half changed: back to the rate the caller was told is in effect. */
	if (old)
		(void)set_tenant(s, tenant, old);
	return rc;
}

unsigned sampler_tenant_hz(const struct sampler *s, unsigned tenant)
{
	return tenant < VIGIL_MAX_TENANTS ? s->tenant_hz[tenant] : 0;
}
