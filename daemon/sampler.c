/*
 * sampler.c - load profile.bpf.o from memory and attach it to one software
 * cpu-clock perf event per online CPU (see sampler.h).
 *
 * Runs in the monitor, with CAP_BPF and CAP_PERFMON.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sampler.h"
#include "vigil_abi.h"

#define MAX_CPUS 4096
#define VERIFIER_LOG_SIZE (256 * 1024)

/* One tenant cgroup: an event per CPU. */
struct cg_events {
	uint64_t id;
	unsigned tenant;
	int *pfds;
	struct bpf_link **links;
};

struct sampler {
	struct bpf_object *obj;
	struct bpf_program *prog;
	int cpus[MAX_CPUS];
	struct cg_events cgs[SAMPLER_MAX_CGROUPS];
	size_t ncgs;
	unsigned tenant_hz[VIGIL_MAX_TENANTS];
	struct bpf_link **links; /* one per CPU */
	int *pfds;               /* perf event fds, one per CPU */
	unsigned ncpus;
	unsigned hz;
	struct bpf_link *exec_link;
};

int sampler_parse_cpulist(const char *list, int *cpus, int max)
{
	const char *p = list;
	int n = 0;

	while (*p && *p != '\n') {
		char *end;
		long a, b;

		errno = 0;
		a = strtol(p, &end, 10);
		if (errno || end == p || a < 0)
			return -EINVAL;
		b = a;
		p = end;
		if (*p == '-') {
			p++;
			b = strtol(p, &end, 10);
			if (errno || end == p || b < a)
				return -EINVAL;
			p = end;
		}
		for (long c = a; c <= b; c++) {
			if (n >= max)
				return -E2BIG;
			cpus[n++] = (int)c;
		}
		if (*p == ',')
			p++;
		else if (*p && *p != '\n')
			return -EINVAL;
	}
	return n ? n : -EINVAL;
}

static int online_cpus(int *cpus, int max)
{
	char buf[4096];
	ssize_t n;
	int fd;

	fd = open("/sys/devices/system/cpu/online", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EINVAL;
	buf[n] = '\0';
	return sampler_parse_cpulist(buf, cpus, max);
}

static size_t pow2_at_least(size_t v)
{
	size_t p = 4096;

	while (p < v)
		p <<= 1;
	return p;
}

/* The last few lines of a verifier log: where the rejection is explained. */
static void log_tail(const char *log, char *err, size_t errlen, const char *name, int rc)
{
	size_t len = strlen(log);
	const char *tail = log + len;
	int lines = 0;

	while (tail > log && lines < 6) {
		tail--;
		if (*tail == '\n' && tail + 1 < log + len)
			lines++;
	}
	if (*tail == '\n')
		tail++;
	snprintf(err, errlen, "%s: the kernel verifier rejected the program (%s); log tail:\n%s",
		 name, strerror(-rc), len ? tail : "(empty)");
}

int sampler_open(const void *obj_buf, size_t len, const char *name, const struct sampler_config *cfg,
		 struct sampler **ret, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .object_name = "vigil_profile");
	struct perf_event_attr attr = {
		.size = sizeof(attr),
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.freq = 1,
		.sample_freq = cfg->hz,
	};
	int cpus[MAX_CPUS];
	struct sampler *s;
	struct bpf_program *prog, *exec_prog;
	struct bpf_map *events;
	char *vlog = NULL;
	int ncpu, rc;

	ncpu = online_cpus(cpus, MAX_CPUS);
	if (ncpu < 0) {
		snprintf(err, errlen, "cannot list online CPUs: %s", strerror(-ncpu));
		return ncpu;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->links = calloc(ncpu, sizeof(*s->links));
	s->pfds = malloc(ncpu * sizeof(*s->pfds));
	for (int i = 0; s->pfds && i < ncpu; i++)
		s->pfds[i] = -1;
	vlog = calloc(1, VERIFIER_LOG_SIZE);
	if (!s->links || !s->pfds || !vlog) {
		rc = -ENOMEM;
		goto fail;
	}

	s->obj = bpf_object__open_mem(obj_buf, len, &oopts);
	if (!s->obj) {
		rc = -errno;
		snprintf(err, errlen, "%s: not a usable BPF object: %s", name, strerror(-rc));
		goto fail;
	}
	prog = bpf_object__find_program_by_name(s->obj, "vigil_sample");
	exec_prog = bpf_object__find_program_by_name(s->obj, "vigil_exec");
	events = bpf_object__find_map_by_name(s->obj, "events");
	if (!prog || !exec_prog || !events) {
		rc = -ENOENT;
		snprintf(err, errlen, "%s: program vigil_sample/vigil_exec or map events missing", name);
		goto fail;
	}
	bpf_program__set_log_buf(prog, vlog, VERIFIER_LOG_SIZE);
	bpf_program__set_log_buf(exec_prog, vlog, VERIFIER_LOG_SIZE);

	/*
	 * 512 KiB per CPU: at 999 Hz on every CPU with ~500-byte records, half
	 * a second of samples, while the collector drains every 25 ms.  (The
	 * data pages are mapped twice into the collector, so every byte here
	 * costs two of its RSS.)  A full ring is counted as lost samples.
	 */
	rc = bpf_map__set_max_entries(events, pow2_at_least(cfg->ringbuf_bytes ? cfg->ringbuf_bytes
										: (size_t)ncpu << 19));
	if (rc) {
		snprintf(err, errlen, "%s: cannot size the ring buffer: %s", name, strerror(-rc));
		goto fail;
	}
	{
		/* .rodata is set before load: the verifier prunes the unused branch. */
		struct bpf_map *rodata = bpf_object__find_map_by_name(s->obj, ".rodata");
		size_t sz;
		bool *use_build_id = rodata ? (bool *)(uintptr_t)bpf_map__initial_value(rodata, &sz) : NULL;

		if (!use_build_id || sz < sizeof(bool)) {
			rc = -ENOENT;
			snprintf(err, errlen, "%s: .rodata (use_build_id) missing", name);
			goto fail;
		}
		*use_build_id = cfg->build_id;
	}

	rc = bpf_object__load(s->obj);
	if (rc) {
		if (vlog[0]) {
			log_tail(vlog, err, errlen, name, rc);
			rc = -ENOEXEC; /* the verifier said no: not a permission problem */
		} else
			snprintf(err, errlen, "%s: load failed: %s", name, strerror(-rc));
		goto fail;
	}

	for (int i = 0; i < ncpu; i++) {
		int fd = syscall(SYS_perf_event_open, &attr, -1, cpus[i], -1, PERF_FLAG_FD_CLOEXEC);

		if (fd < 0) {
			rc = -errno;
			snprintf(err, errlen, "perf_event_open(cpu-clock, cpu %d): %s", cpus[i], strerror(-rc));
			goto fail;
		}
		s->pfds[i] = fd;
		s->cpus[i] = cpus[i];
		s->links[i] = bpf_program__attach_perf_event(prog, fd);
		if (!s->links[i]) {
			rc = -errno;
			snprintf(err, errlen, "attach to cpu-clock on cpu %d: %s", cpus[i], strerror(-rc));
			goto fail;
		}
		s->ncpus++;
	}
	s->exec_link = bpf_program__attach(exec_prog);
	if (!s->exec_link) {
		rc = -errno;
		snprintf(err, errlen, "attach to sched_process_exec: %s", strerror(-rc));
		goto fail;
	}
	free(vlog);
	s->hz = cfg->hz;
	s->tenant_hz[0] = cfg->hz;
	s->prog = prog;
	*ret = s;
	return 0;
fail:
	free(vlog);
	if (s->pfds && s->links)
		s->ncpus = ncpu; /* close every fd opened so far */
	sampler_free(s);
	return rc;
}

int sampler_events_fd(const struct sampler *s)
{
	return bpf_object__find_map_fd_by_name(s->obj, "events");
}

int sampler_stats_fd(const struct sampler *s)
{
	return bpf_object__find_map_fd_by_name(s->obj, "stats");
}

int sampler_set_hz(struct sampler *s, unsigned hz)
{
	return sampler_set_tenant_hz(s, 0, hz);
}

static int set_period(const int *pfds, unsigned n, unsigned hz)
{
	uint64_t period = 1000000000ull / hz;

	for (unsigned i = 0; i < n; i++)
		if (pfds[i] >= 0 && ioctl(pfds[i], PERF_EVENT_IOC_PERIOD, &period) < 0)
			return -errno;
	return 0;
}

int sampler_set_tenant_hz(struct sampler *s, unsigned tenant, unsigned hz)
{
	int rc;

	if (hz == 0 || tenant >= VIGIL_MAX_TENANTS)
		return -EINVAL;
	if (tenant == 0) {
		rc = set_period(s->pfds, s->ncpus, hz);
		if (rc)
			return rc;
		s->hz = hz;
	}
	for (size_t i = 0; i < s->ncgs; i++) {
		if (s->cgs[i].tenant != tenant)
			continue;
		rc = set_period(s->cgs[i].pfds, s->ncpus, hz);
		if (rc)
			return rc;
	}
	s->tenant_hz[tenant] = hz;
	return 0;
}

unsigned sampler_tenant_hz(const struct sampler *s, unsigned tenant)
{
	return tenant < VIGIL_MAX_TENANTS ? s->tenant_hz[tenant] : 0;
}

int sampler_tstats_fd(const struct sampler *s)
{
	return bpf_object__find_map_fd_by_name(s->obj, "tstats");
}

static void cg_close(struct cg_events *c, unsigned ncpus)
{
	for (unsigned i = 0; i < ncpus; i++) {
		bpf_link__destroy(c->links[i]);
		if (c->pfds[i] >= 0)
			close(c->pfds[i]);
	}
	free(c->links);
	free(c->pfds);
}

int sampler_tenant_add_cgroup(struct sampler *s, unsigned tenant, int cgroup_fd,
			      uint64_t cgroup_id, unsigned hz, char *err, size_t errlen)
{
	struct perf_event_attr attr = {
		.size = sizeof(attr),
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.freq = 1,
		.sample_freq = hz,
	};
	LIBBPF_OPTS(bpf_perf_event_opts, popts, .bpf_cookie = tenant);
	int map = bpf_object__find_map_fd_by_name(s->obj, "tenant_cg");
	struct cg_events c = { .id = cgroup_id, .tenant = tenant };
	uint32_t t = tenant;
	int rc;

	if (tenant == 0 || tenant >= VIGIL_MAX_TENANTS || hz == 0 || map < 0)
		return -EINVAL;
	for (size_t i = 0; i < s->ncgs; i++)
		if (s->cgs[i].id == cgroup_id)
			return -EEXIST;
	if (s->ncgs == SAMPLER_MAX_CGROUPS)
		return -ENOSPC;
	c.pfds = malloc(s->ncpus * sizeof(*c.pfds));
	c.links = calloc(s->ncpus, sizeof(*c.links));
	if (!c.pfds || !c.links) {
		free(c.pfds);
		free(c.links);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < s->ncpus; i++)
		c.pfds[i] = -1;
	for (unsigned i = 0; i < s->ncpus; i++) {
		c.pfds[i] = syscall(SYS_perf_event_open, &attr, cgroup_fd, s->cpus[i], -1,
				    PERF_FLAG_PID_CGROUP | PERF_FLAG_FD_CLOEXEC);
		if (c.pfds[i] < 0) {
			rc = -errno;
			snprintf(err, errlen, "perf_event_open(cpu-clock, cgroup %" PRIu64 ", cpu %d): %s",
				 cgroup_id, s->cpus[i], strerror(-rc));
			goto fail;
		}
		c.links[i] = bpf_program__attach_perf_event_opts(s->prog, c.pfds[i], &popts);
		if (!c.links[i]) {
			rc = -errno;
			snprintf(err, errlen, "attach to the cgroup %" PRIu64 " event on cpu %d: %s",
				 cgroup_id, s->cpus[i], strerror(-rc));
			goto fail;
		}
	}
	if (bpf_map_update_elem(map, &cgroup_id, &t, BPF_ANY) < 0) {
		rc = -errno;
		snprintf(err, errlen, "tenant_cg update: %s", strerror(-rc));
		goto fail;
	}
	s->cgs[s->ncgs++] = c;
	s->tenant_hz[tenant] = hz;
	return 0;
fail:
	cg_close(&c, s->ncpus);
	return rc;
}

int sampler_tenant_remove_cgroup(struct sampler *s, uint64_t cgroup_id)
{
	int map = bpf_object__find_map_fd_by_name(s->obj, "tenant_cg");

	for (size_t i = 0; i < s->ncgs; i++) {
		if (s->cgs[i].id != cgroup_id)
			continue;
		/* First hand its tasks back to the default events, then stop. */
		if (map >= 0)
			bpf_map_delete_elem(map, &cgroup_id);
		cg_close(&s->cgs[i], s->ncpus);
		s->cgs[i] = s->cgs[--s->ncgs];
		return 0;
	}
	return -ENOENT;
}

unsigned sampler_hz(const struct sampler *s)
{
	return s->hz;
}

unsigned sampler_ncpus(const struct sampler *s)
{
	return s->ncpus;
}

void sampler_free(struct sampler *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ncgs; i++)
		cg_close(&s->cgs[i], s->ncpus);
	bpf_link__destroy(s->exec_link);
	for (unsigned i = 0; i < s->ncpus; i++) {
		if (s->links)
			bpf_link__destroy(s->links[i]);
		if (s->pfds && s->pfds[i] >= 0)
			close(s->pfds[i]);
	}
	bpf_object__close(s->obj);
	free(s->links);
	free(s->pfds);
	free(s);
}
