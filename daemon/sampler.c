/*
 * sampler.c - load profile.bpf.o from memory and attach it to one software
 * cpu-clock perf event per online CPU (see sampler.h).
 *
 * Runs in the monitor, with CAP_BPF and CAP_PERFMON.
 */
#include <errno.h>
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

#define MAX_CPUS 4096
#define VERIFIER_LOG_SIZE (256 * 1024)

struct sampler {
	struct bpf_object *obj;
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

	rc = bpf_map__set_max_entries(events, pow2_at_least(cfg->ringbuf_bytes ? cfg->ringbuf_bytes
										: (size_t)ncpu << 20));
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
	uint64_t period;

	if (hz == 0)
		return -EINVAL;
	period = 1000000000ull / hz;
	for (unsigned i = 0; i < s->ncpus; i++)
		if (ioctl(s->pfds[i], PERF_EVENT_IOC_PERIOD, &period) < 0)
			return -errno;
	s->hz = hz;
	return 0;
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
