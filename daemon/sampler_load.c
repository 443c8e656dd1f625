/*
 * sampler_load.c - load profile.bpf.o from memory and attach it to one
 * software cpu-clock perf event per online CPU (sampler_open, see
 * sampler.h).
 *
 * Runs in the loader, the monitor's short-lived child (root, CAP_BPF and
 * CAP_PERFMON, under its own seccomp allowlist): libbpf is used only here,
 * so that its parse of the kernel's BTF (~12 MB at its peak) comes and goes
 * with that child.  Everything after loading works on plain fds, which
 * sampler_handover.c passes to the monitor.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sampler_int.h"

#define VERIFIER_LOG_SIZE (256 * 1024)

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

/*
 * The ring buffer: 512 KiB a CPU, as always; above 256 Hz, about a
 * second of samples at 2 KiB each (a DWARF stack copy of a shallow
 * stack is ~800 bytes, a frame-pointer sample ~250) where that is more,
 * up to RING_HIGH_HZ_TOTAL in all; rounded up to a power of two.  The
 * program wakes the collector when half the ring is used
 * (bpf/profile.bpf.c, wake_flag), and each wakeup costs it some 70 us on
 * the 2-CPU VM of docs/benchmarks.md (the context switches, a drain
 * begun cold): at
 * 999 Hz with benchspin's DWARF copies, 1 MiB on 2 CPUs woke it three
 * times a second, 4 MiB under once.
 *
 * The memory is the price: the data pages are mapped twice into the
 * collector, so each byte costs two of its RSS (6 MiB more at 999 Hz on
 * 2 CPUs).  A wakeup costs the same however many CPUs fill the ring, so
 * the growth is bounded in all, not per CPU: from 5 CPUs on (their
 * 512 KiB a CPU rounded up is 4 MiB or more) --hz changes nothing, and
 * 4096 CPUs give 2 GiB, within the map's 32-bit size, as before.
 *
 * --hz is what sizes it, once, at load.  With a policy, the tenants'
 * frequencies come from the policy (up to --max-hz), and a ring sized
 * for a lower --hz is woken more often for them; with deep stacks at a
 * high frequency it can fill before the collector drains it, and the
 * samples that found it full are lost and counted (lost=,
 * vigil_samples_lost_total), as at any size.  vigild(8) says so.
 */
#define RING_PER_CPU ((size_t)512 << 10)
#define RING_BYTES_PER_SAMPLE 2048
#define RING_HIGH_HZ_TOTAL ((size_t)4 << 20)

static size_t ring_bytes(unsigned ncpu, unsigned hz)
{
	size_t base = (size_t)ncpu * RING_PER_CPU;
	size_t want = (size_t)ncpu * hz * RING_BYTES_PER_SAMPLE;

	if (want > RING_HIGH_HZ_TOTAL)
		want = RING_HIGH_HZ_TOTAL;
	return pow2_at_least(want > base ? want : base);
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

static int dup_fd(int fd)
{
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);

	return d < 0 ? -errno : d;
}

int sampler_open(const void *obj_buf, size_t len, const char *name, const struct sampler_config *cfg,
		 struct sampler **ret, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .object_name = "vigil_profile");
	int cpus[SAMPLER_MAX_CPUS];
	struct bpf_object *obj = NULL;
	struct bpf_program *prog, *exec_prog;
	struct bpf_link *exec_link = NULL;
	struct bpf_map *events;
	struct sampler *s = NULL;
	char *vlog = NULL;
	int ncpu, rc;

	ncpu = online_cpus(cpus, SAMPLER_MAX_CPUS);
	if (ncpu < 0) {
		snprintf(err, errlen, "cannot list online CPUs: %s", strerror(-ncpu));
		return ncpu;
	}
	s = sampler_alloc((unsigned)ncpu);
	vlog = calloc(1, VERIFIER_LOG_SIZE);
	if (!s || !vlog) {
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(s->cpus, cpus, (size_t)ncpu * sizeof(*cpus));

	obj = bpf_object__open_mem(obj_buf, len, &oopts);
	if (!obj) {
		rc = -errno;
		snprintf(err, errlen, "%s: not a usable BPF object: %s", name, strerror(-rc));
		goto fail;
	}
	prog = bpf_object__find_program_by_name(obj, "vigil_sample");
	exec_prog = bpf_object__find_program_by_name(obj, "vigil_exec");
	events = bpf_object__find_map_by_name(obj, "events");
	if (!prog || !exec_prog || !events || !bpf_object__find_map_by_name(obj, "stats") ||
	    !bpf_object__find_map_by_name(obj, "tstats") ||
	    !bpf_object__find_map_by_name(obj, "tenant_cg") ||
	    !bpf_object__find_map_by_name(obj, "tenant_cfg")) {
		rc = -ENOENT;
		snprintf(err, errlen, "%s: programs vigil_sample/vigil_exec or maps events, stats, "
			 "tstats, tenant_cg, tenant_cfg missing", name);
		goto fail;
	}
	bpf_program__set_log_buf(prog, vlog, VERIFIER_LOG_SIZE);
	bpf_program__set_log_buf(exec_prog, vlog, VERIFIER_LOG_SIZE);

	rc = bpf_map__set_max_entries(events, ring_bytes((unsigned)ncpu, cfg->hz));
	if (rc) {
		snprintf(err, errlen, "%s: cannot size the ring buffer: %s", name, strerror(-rc));
		goto fail;
	}
	{
		/* .rodata is set before load: the verifier prunes the unused branch. */
		struct bpf_map *rodata = bpf_object__find_map_by_name(obj, ".rodata");
		size_t sz;
		bool *use_build_id = rodata ? (bool *)(uintptr_t)bpf_map__initial_value(rodata, &sz) : NULL;

		if (!use_build_id || sz < sizeof(bool)) {
			rc = -ENOENT;
			snprintf(err, errlen, "%s: .rodata (use_build_id) missing", name);
			goto fail;
		}
		*use_build_id = cfg->build_id;
	}

	rc = bpf_object__load(obj);
	if (rc) {
		if (vlog[0]) {
			log_tail(vlog, err, errlen, name, rc);
			rc = -ENOEXEC; /* the verifier said no: not a permission problem */
		} else {
			snprintf(err, errlen, "%s: load failed: %s", name, strerror(-rc));
		}
		goto fail;
	}
	/* Own copies of the fds: the libbpf object goes away below. */
	if ((s->prog_fd = dup_fd(bpf_program__fd(prog))) < 0 ||
	    (s->events_fd = dup_fd(bpf_map__fd(events))) < 0 ||
	    (s->stats_fd = dup_fd(bpf_object__find_map_fd_by_name(obj, "stats"))) < 0 ||
	    (s->tstats_fd = dup_fd(bpf_object__find_map_fd_by_name(obj, "tstats"))) < 0 ||
	    (s->tenant_cg_fd = dup_fd(bpf_object__find_map_fd_by_name(obj, "tenant_cg"))) < 0 ||
	    (s->tenant_cfg_fd = dup_fd(bpf_object__find_map_fd_by_name(obj, "tenant_cfg"))) < 0) {
		rc = -EMFILE;
		snprintf(err, errlen, "%s: cannot keep the program and maps: %s", name, strerror(errno));
		goto fail;
	}
	s->tenant_hz[0] = cfg->hz;
	rc = sampler_write_tenant_cfg(s, 0);
	if (rc) {
		snprintf(err, errlen, "%s: tenant_cfg update: %s", name, strerror(-rc));
		goto fail;
	}

	for (int i = 0; i < ncpu; i++) {
		s->pfds[i] = sampler_open_event(cpus[i], -1, cfg->hz, false); /* sampler_start */
		if (s->pfds[i] < 0) {
			rc = s->pfds[i];
			snprintf(err, errlen, "perf_event_open(cpu-clock, cpu %d): %s", cpus[i], strerror(-rc));
			goto fail;
		}
		s->links[i] = sampler_attach(s->prog_fd, s->pfds[i], 0);
		if (s->links[i] < 0) {
			rc = s->links[i];
			snprintf(err, errlen, "attach to cpu-clock on cpu %d: %s", cpus[i], strerror(-rc));
			goto fail;
		}
	}
	exec_link = bpf_program__attach(exec_prog);
	if (!exec_link || (s->exec_link_fd = dup_fd(bpf_link__fd(exec_link))) < 0) {
		rc = -errno;
		snprintf(err, errlen, "attach to sched_process_exec: %s", strerror(-rc));
		goto fail;
	}
	/* Our dup keeps the link (and so the attachment) alive. */
	bpf_link__destroy(exec_link);
	bpf_object__close(obj);
	free(vlog);
	*ret = s;
	return 0;
fail:
	bpf_link__destroy(exec_link);
	bpf_object__close(obj);
	free(vlog);
	sampler_free(s);
	return rc;
}
