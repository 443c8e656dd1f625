/*
 * sampler.c - the loaded sampler as the monitor holds it: its fds, the
 * default tenant's cpu-clock event and BPF link on every online CPU, and
 * each tenant cgroup's own events (see sampler.h).
 *
 * Runs in the monitor (user vigil after start-up, CAP_BPF and CAP_PERFMON)
 * and, for sampler_alloc and the event helpers, in the loader.  Which
 * cgroups may get events is cgnest.c's decision; loading is
 * sampler_load.c's, the hand-over sampler_handover.c's and frequency
 * changes sampler_hz.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "fds.h"
#include "sampler_int.h"

struct sampler *sampler_alloc(unsigned ncpus)
{
	struct sampler *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->prog_fd = s->events_fd = s->stats_fd = s->tstats_fd = s->tenant_cg_fd = s->exec_link_fd = s->tenant_cfg_fd = -1;
	s->pfds = malloc(ncpus * sizeof(*s->pfds));
	s->links = malloc(ncpus * sizeof(*s->links));
	if (!s->pfds || !s->links) {
		free(s->pfds);
		free(s->links);
		free(s);
		return NULL;
	}
	for (unsigned i = 0; i < ncpus; i++)
		s->pfds[i] = s->links[i] = -1;
	s->ncpus = ncpus;
	return s;
}

int sampler_open_event(int cpu, int cgroup_fd, unsigned hz, bool enabled)
{
	struct perf_event_attr attr = {
		.size = sizeof(attr),
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.freq = 1,
		.sample_freq = hz,
		.disabled = !enabled,
	};
	int fd = (int)syscall(SYS_perf_event_open, &attr, cgroup_fd, cpu, -1,
			      PERF_FLAG_FD_CLOEXEC | (cgroup_fd >= 0 ? PERF_FLAG_PID_CGROUP : 0));

	return fd < 0 ? -errno : fd;
}

int sampler_attach(int prog_fd, int pfd, uint64_t cookie)
{
	LIBBPF_OPTS(bpf_link_create_opts, lopts, .perf_event.bpf_cookie = cookie);
	int fd = bpf_link_create(prog_fd, pfd, BPF_PERF_EVENT, &lopts);

	return fd < 0 ? -errno : fd;
}

int sampler_start(struct sampler *s)
{
	for (unsigned i = 0; i < s->ncpus; i++)
		if (s->pfds[i] >= 0 && ioctl(s->pfds[i], PERF_EVENT_IOC_ENABLE, 0) < 0)
			return -errno;
	return 0;
}

int sampler_events_fd(const struct sampler *s)
{
	return s->events_fd;
}

int sampler_stats_fd(const struct sampler *s)
{
	return s->stats_fd;
}

int sampler_write_tenant_cfg(struct sampler *s, unsigned tenant)
{
	uint32_t key = tenant;
	struct vigil_tenant_cfg v;

	if (tenant >= VIGIL_MAX_TENANTS)
		return -EINVAL;
	v = (struct vigil_tenant_cfg){
		.unwind = s->tenant_unwind[tenant],
		.period_ns = s->tenant_hz[tenant] ? sampler_period_ns(s->tenant_hz[tenant]) : 0,
	};
	if (bpf_map_update_elem(s->tenant_cfg_fd, &key, &v, BPF_ANY) < 0)
		return -errno;
	return 0;
}

int sampler_set_unwind(struct sampler *s, unsigned tenant, unsigned mode)
{
	unsigned old;
	int rc;

	if (!s || tenant >= VIGIL_MAX_TENANTS || (mode != VIGIL_UNWIND_FP && mode != VIGIL_UNWIND_DWARF))
		return -EINVAL;
	old = s->tenant_unwind[tenant];
	s->tenant_unwind[tenant] = mode;
	rc = sampler_write_tenant_cfg(s, tenant);
	if (rc)
		s->tenant_unwind[tenant] = old;
	return rc;
}

int sampler_tstats_fd(const struct sampler *s)
{
	return s->tstats_fd;
}

unsigned sampler_ncpus(const struct sampler *s)
{
	return s->ncpus;
}

static void cg_close(struct cg_events *c, unsigned ncpus)
{
	/* Links first: the program stops running before its events go. */
	fds_close(c->links, c->links ? ncpus : 0);
	fds_close(c->pfds, c->pfds ? ncpus : 0);
	free(c->links);
	free(c->pfds);
}

/*
 * A cgroup's old events (old) give way to its new, disabled ones (c), one
 * CPU at a time: the old event stops, then the new one starts.  On this
 * CPU its tasks are sampled by neither for that moment, never by both.
 * The old events are closed whatever happens; 0, or the first -errno of
 * an enable (its CPU then samples the cgroup for no one).
 */
static int hand_over(struct sampler *s, struct cg_events *old, struct cg_events *c, char *err,
		     size_t errlen)
{
	int rc = 0;

	for (unsigned i = 0; i < s->ncpus; i++) {
		fds_close(&old->links[i], 1);
		fds_close(&old->pfds[i], 1);
		old->links[i] = old->pfds[i] = -1; /* cg_close below closes what is left */
		if (ioctl(c->pfds[i], PERF_EVENT_IOC_ENABLE, 0) < 0 && !rc) {
			rc = -errno;
			snprintf(err, errlen, "enable the cgroup's new event on cpu %d: %s", s->cpus[i],
				 strerror(-rc));
		}
	}
	cg_close(old, s->ncpus);
	return rc;
}

/* Move cgs[i] (and its node) to the end of the list. */
static void swap_last(struct sampler *s, size_t i)
{
	size_t last = s->ncgs - 1;
	struct cg_events c = s->cgs[i];
	struct cgnest_node n = s->nodes[i];

	s->cgs[i] = s->cgs[last];
	s->nodes[i] = s->nodes[last];
	s->cgs[last] = c;
	s->nodes[last] = n;
}

int sampler_tenant_add_cgroup(struct sampler *s, unsigned tenant, uint32_t gen, int cgroup_fd,
			      uint64_t cgroup_id, unsigned hz, char *err, size_t errlen)
{
	struct cg_events c = { .tenant = tenant };
	struct cgnest_node node;
	uint32_t t = tenant;
	bool same = false;
	unsigned old_hz;
	int rc;

	if (tenant == 0 || tenant >= VIGIL_MAX_TENANTS || hz == 0)
		return -EINVAL;
	rc = cgnest_describe(cgroup_fd, &node);
	if (rc == -EINVAL)
		snprintf(err, errlen, "the root cgroup cannot be a tenant's");
	else if (rc == -E2BIG)
		snprintf(err, errlen, "deeper than %d levels below the root, where vigild's BPF program "
			 "stops looking", VIGIL_MAX_CGROUP_DEPTH);
	else if (rc == -EXDEV)
		snprintf(err, errlen, "the cgroup2 mount does not show the root of the hierarchy "
			 "(a cgroup namespace?): levels cannot be told");
	if (rc)
		return rc;
	if (node.id != cgroup_id)
		return -ESTALE;
	/*
	 * A cgroup already attached is being handed to another tenant: keep it
	 * last, where cgnest_check() does not look, and swap its events below.
	 */
	for (size_t i = 0; i < s->ncgs; i++)
		if (s->nodes[i].id == cgroup_id) {
			swap_last(s, i);
			same = true;
		}
	rc = cgnest_check(s->nodes, s->ncgs - same, &node);
	if (rc) {
		snprintf(err, errlen, "it is, or is nested in or around, a cgroup already sampled for "
			 "a tenant: its tasks would be sampled twice");
		return rc;
	}
	if (!same && s->ncgs == SAMPLER_MAX_CGROUPS)
		return -ENOSPC;
	c.pfds = malloc(s->ncpus * sizeof(*c.pfds));
	c.links = malloc(s->ncpus * sizeof(*c.links));
	if (!c.pfds || !c.links) {
		free(c.pfds);
		free(c.links);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < s->ncpus; i++)
		c.pfds[i] = c.links[i] = -1;
	/*
	 * Every event of a tenant index runs at its one frequency, the one
	 * map "tenant_cfg" values its samples at: the index's events there
	 * are already (its other cgroups', or another generation's still to
	 * be handed over) go to hz first, and the period with them.
	 */
	old_hz = s->tenant_hz[tenant];
	if (hz != old_hz && (rc = sampler_set_tenant_hz(s, tenant, hz)) < 0) {
		snprintf(err, errlen, "set the tenant's other events to %u Hz: %s", hz, strerror(-rc));
		goto fail;
	}
	/*
	 * A hand-over's new events start disabled: each starts only once its
	 * CPU's old one has stopped (below), so no task is sampled twice.
	 */
	for (unsigned i = 0; i < s->ncpus; i++) {
		c.pfds[i] = sampler_open_event(s->cpus[i], cgroup_fd, hz, !same);
		if (c.pfds[i] < 0) {
			rc = c.pfds[i];
			snprintf(err, errlen, "perf_event_open(cpu-clock, cgroup %" PRIu64 ", cpu %d): %s",
				 cgroup_id, s->cpus[i], strerror(-rc));
			goto fail;
		}
		c.links[i] = sampler_attach(s->prog_fd, c.pfds[i], (uint64_t)gen << 32 | tenant);
		if (c.links[i] < 0) {
			rc = c.links[i];
			snprintf(err, errlen, "attach to the cgroup %" PRIu64 " event on cpu %d: %s",
				 cgroup_id, s->cpus[i], strerror(-rc));
			goto fail;
		}
	}
	/* One update, so the default events never see the cgroup unlisted. */
	if (bpf_map_update_elem(s->tenant_cg_fd, &cgroup_id, &t, BPF_ANY) < 0) {
		rc = -errno;
		snprintf(err, errlen, "tenant_cg update: %s", strerror(-rc));
		goto fail;
	}
	if (same)
		rc = hand_over(s, &s->cgs[--s->ncgs], &c, err, errlen);
	s->nodes[s->ncgs] = node;
	s->cgs[s->ncgs++] = c;
	return rc;
fail:
	cg_close(&c, s->ncpus);
	/* Back to the old frequency, best effort, as sampler_set_tenant_hz's own undoing. */
	if (s->tenant_hz[tenant] == old_hz)
		return rc;
	if (old_hz)
		(void)sampler_set_tenant_hz(s, tenant, old_hz);
	else {
		s->tenant_hz[tenant] = 0;
		(void)sampler_write_tenant_cfg(s, tenant);
	}
	return rc;
}

int sampler_tenant_remove_cgroup(struct sampler *s, uint64_t cgroup_id)
{
	for (size_t i = 0; i < s->ncgs; i++) {
		if (s->nodes[i].id != cgroup_id)
			continue;
		/* First hand its tasks back to the default events, then stop. */
		bpf_map_delete_elem(s->tenant_cg_fd, &cgroup_id);
		cg_close(&s->cgs[i], s->ncpus);
		s->ncgs--;
		s->cgs[i] = s->cgs[s->ncgs];
		s->nodes[i] = s->nodes[s->ncgs];
		return 0;
	}
	return -ENOENT;
}

void sampler_free(struct sampler *s)
{
	int single[7];

	if (!s)
		return;
	for (size_t i = 0; i < s->ncgs; i++)
		cg_close(&s->cgs[i], s->ncpus);
	fds_close(&s->exec_link_fd, 1);
	fds_close(s->links, s->ncpus);
	fds_close(s->pfds, s->ncpus);
	single[0] = s->prog_fd;
	single[1] = s->events_fd;
	single[2] = s->stats_fd;
	single[3] = s->tstats_fd;
	single[4] = s->tenant_cg_fd;
	single[5] = s->tenant_cfg_fd;
	single[6] = -1;
	fds_close(single, 7);
	free(s->links);
	free(s->pfds);
	free(s);
}
