/*
 * sampler.c - load profile.bpf.o from memory and attach it to one software
 * cpu-clock perf event per online CPU, and per CPU and tenant cgroup (see
 * sampler.h).
 *
 * libbpf is used only to load: sampler_open() runs in the short-lived
 * loader (a child of the monitor, with CAP_BPF and CAP_PERFMON), where
 * libbpf's parse of the kernel's BTF (~12 MB at its peak) comes and goes.
 * Everything after that works on plain fds - the program, the maps, the
 * perf events and the BPF links - which the loader hands to the monitor
 * (sampler_send / sampler_receive) before it exits.
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "privsep.h"
#include "sampler.h"
#include "vigil_abi.h"

#define MAX_CPUS 4096
#define VERIFIER_LOG_SIZE (256 * 1024)

#define MAX_ANCESTORS 64

/* One tenant cgroup: an event and a link per CPU, and its ancestors' ids. */
struct cg_events {
	uint64_t id;
	unsigned tenant;
	int *pfds;
	int *links;
	uint64_t anc[MAX_ANCESTORS];
	unsigned nanc;
};

struct sampler {
	int prog_fd, events_fd, stats_fd, tstats_fd, tenant_cg_fd, exec_link_fd;
	int cpus[MAX_CPUS];
	int *pfds;  /* default tenant: perf event per CPU */
	int *links; /* default tenant: BPF link per CPU */
	unsigned ncpus;
	unsigned tenant_hz[VIGIL_MAX_TENANTS]; /* [0]: the default tenant */
	struct cg_events cgs[SAMPLER_MAX_CGROUPS];
	size_t ncgs;
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

static struct sampler *sampler_alloc(unsigned ncpus)
{
	struct sampler *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->prog_fd = s->events_fd = s->stats_fd = s->tstats_fd = s->tenant_cg_fd = s->exec_link_fd = -1;
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

/* A cpu-clock event on one CPU, for a cgroup (cgroup_fd) or everything (-1). */
static int open_event(int cpu, int cgroup_fd, unsigned hz)
{
	struct perf_event_attr attr = {
		.size = sizeof(attr),
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.freq = 1,
		.sample_freq = hz,
	};
	int fd = (int)syscall(SYS_perf_event_open, &attr, cgroup_fd, cpu, -1,
			      PERF_FLAG_FD_CLOEXEC | (cgroup_fd >= 0 ? PERF_FLAG_PID_CGROUP : 0));

	return fd < 0 ? -errno : fd;
}

/* Attach the program to a perf event, the tenant index as its cookie. */
static int attach(int prog_fd, int pfd, unsigned tenant)
{
	LIBBPF_OPTS(bpf_link_create_opts, lopts, .perf_event.bpf_cookie = tenant);
	int fd = bpf_link_create(prog_fd, pfd, BPF_PERF_EVENT, &lopts);

	return fd < 0 ? -errno : fd;
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
	int cpus[MAX_CPUS];
	struct bpf_object *obj = NULL;
	struct bpf_program *prog, *exec_prog;
	struct bpf_link *exec_link = NULL;
	struct bpf_map *events;
	struct sampler *s = NULL;
	char *vlog = NULL;
	int ncpu, rc;

	ncpu = online_cpus(cpus, MAX_CPUS);
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
	    !bpf_object__find_map_by_name(obj, "tenant_cg")) {
		rc = -ENOENT;
		snprintf(err, errlen, "%s: programs vigil_sample/vigil_exec or maps events, stats, "
			 "tstats, tenant_cg missing", name);
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
	    (s->tenant_cg_fd = dup_fd(bpf_object__find_map_fd_by_name(obj, "tenant_cg"))) < 0) {
		rc = -EMFILE;
		snprintf(err, errlen, "%s: cannot keep the program and maps: %s", name, strerror(errno));
		goto fail;
	}

	for (int i = 0; i < ncpu; i++) {
		s->pfds[i] = open_event(cpus[i], -1, cfg->hz);
		if (s->pfds[i] < 0) {
			rc = s->pfds[i];
			snprintf(err, errlen, "perf_event_open(cpu-clock, cpu %d): %s", cpus[i], strerror(-rc));
			goto fail;
		}
		s->links[i] = attach(s->prog_fd, s->pfds[i], 0);
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
	s->tenant_hz[0] = cfg->hz;
	*ret = s;
	return 0;
fail:
	bpf_link__destroy(exec_link);
	bpf_object__close(obj);
	free(vlog);
	sampler_free(s);
	return rc;
}

/* --- the hand-over from the loader to the monitor ---------------------------- */

enum { FD_PROG = 1, FD_EVENTS, FD_STATS, FD_TSTATS, FD_TENANT_CG, FD_EXEC_LINK, FD_CPU_EVENT,
       FD_CPU_LINK };

static int send_fd(int sock, uint32_t kind, uint32_t index, int32_t cpu, int fd)
{
	struct msg_loader_fd m = { .hdr = { MSG_LOADER_FD, sizeof(m) }, .kind = kind,
				   .index = index, .cpu = cpu };

	return privsep_send(sock, &m, sizeof(m), &fd, 1);
}

int sampler_send(const struct sampler *s, int sock)
{
	struct msg_loader_done done = { .hdr = { MSG_LOADER_DONE, sizeof(done) },
					.version = PRIVSEP_VERSION, .ncpus = s->ncpus, .hz = s->tenant_hz[0] };
	int rc = 0;

	rc = rc ?: send_fd(sock, FD_PROG, 0, -1, s->prog_fd);
	rc = rc ?: send_fd(sock, FD_EVENTS, 0, -1, s->events_fd);
	rc = rc ?: send_fd(sock, FD_STATS, 0, -1, s->stats_fd);
	rc = rc ?: send_fd(sock, FD_TSTATS, 0, -1, s->tstats_fd);
	rc = rc ?: send_fd(sock, FD_TENANT_CG, 0, -1, s->tenant_cg_fd);
	rc = rc ?: send_fd(sock, FD_EXEC_LINK, 0, -1, s->exec_link_fd);
	for (unsigned i = 0; !rc && i < s->ncpus; i++) {
		rc = send_fd(sock, FD_CPU_EVENT, i, s->cpus[i], s->pfds[i]);
		rc = rc ?: send_fd(sock, FD_CPU_LINK, i, s->cpus[i], s->links[i]);
	}
	return rc ?: privsep_send(sock, &done, sizeof(done), NULL, 0);
}

/* Where an fd of this kind and index goes, or NULL if the message is bad. */
static int *slot(struct sampler *s, const struct msg_loader_fd *m)
{
	switch (m->kind) {
	case FD_PROG: return &s->prog_fd;
	case FD_EVENTS: return &s->events_fd;
	case FD_STATS: return &s->stats_fd;
	case FD_TSTATS: return &s->tstats_fd;
	case FD_TENANT_CG: return &s->tenant_cg_fd;
	case FD_EXEC_LINK: return &s->exec_link_fd;
	case FD_CPU_EVENT:
	case FD_CPU_LINK:
		if (m->index >= s->ncpus || m->cpu < 0)
			return NULL;
		s->cpus[m->index] = m->cpu;
		return m->kind == FD_CPU_EVENT ? &s->pfds[m->index] : &s->links[m->index];
	}
	return NULL;
}

int sampler_receive(int sock, struct sampler **ret)
{
	union {
		struct msg_hdr hdr;
		struct msg_loader_fd fd;
		struct msg_loader_done done;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} u;
	bool seen[MSG_TYPE_MAX] = { 0 };
	struct sampler *s = sampler_alloc(MAX_CPUS);
	int fds[PRIVSEP_MAX_FDS];
	size_t len;

	if (!s)
		return -ENOMEM;
	s->ncpus = MAX_CPUS; /* until DONE says how many */
	for (;;) {
		int type = privsep_recv(sock, PEER_LOADER, seen, &u, &len, fds), *where;

		if (type < 0) {
			sampler_free(s); /* closes whatever arrived */
			return type;
		}
		if (type == MSG_LOADER_DONE) {
			if (u.done.version != PRIVSEP_VERSION || u.done.ncpus == 0 ||
			    u.done.ncpus > MAX_CPUS || u.done.hz == 0)
				break;
			for (unsigned i = u.done.ncpus; i < MAX_CPUS; i++)
				if (s->pfds[i] >= 0 || s->links[i] >= 0)
					goto bad; /* more CPUs than it says: closed by sampler_free */
			s->ncpus = u.done.ncpus;
			s->tenant_hz[0] = u.done.hz;
			for (unsigned i = 0; i < s->ncpus; i++)
				if (s->pfds[i] < 0 || s->links[i] < 0)
					goto bad;
			if (s->prog_fd < 0 || s->events_fd < 0 || s->stats_fd < 0 || s->tstats_fd < 0 ||
			    s->tenant_cg_fd < 0 || s->exec_link_fd < 0)
				goto bad;
			*ret = s;
			return 0;
		}
		where = slot(s, &u.fd);
		if (!where || *where >= 0) {
			close(fds[0]);
			break;
		}
		*where = fds[0];
	}
bad:
	sampler_free(s);
	return -EPROTO;
}

/* --- at run time -------------------------------------------------------------- */

int sampler_events_fd(const struct sampler *s)
{
	return s->events_fd;
}

int sampler_stats_fd(const struct sampler *s)
{
	return s->stats_fd;
}

int sampler_tstats_fd(const struct sampler *s)
{
	return s->tstats_fd;
}

unsigned sampler_ncpus(const struct sampler *s)
{
	return s->ncpus;
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
	if (tenant == 0 && (rc = set_period(s->pfds, s->ncpus, hz)) != 0)
		return rc;
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

static void close_all(int *fds, unsigned n)
{
	for (unsigned i = 0; fds && i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void cg_close(struct cg_events *c, unsigned ncpus)
{
	/* Links first: the program stops running before its events go. */
	close_all(c->links, ncpus);
	close_all(c->pfds, ncpus);
	free(c->links);
	free(c->pfds);
}

/*
 * The ids (inode numbers) of a cgroup directory's ancestors, up to the
 * mount's root (included: it is a cgroup too).
 */
static int ancestors(int cgroup_fd, uint64_t *anc, unsigned *ret_n)
{
	struct stat st, up;
	unsigned n = 0;
	int fd = fcntl(cgroup_fd, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	for (;;) {
		int parent = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		close(fd);
		if (parent < 0)
			return -errno;
		if (fstat(parent, &up) < 0) {
			close(parent);
			return -errno;
		}
		/* Past the mount's root (another filesystem), or the root itself. */
		if (up.st_dev != st.st_dev || up.st_ino == st.st_ino) {
			close(parent);
			break;
		}
		if (n == MAX_ANCESTORS) {
			close(parent);
			return -E2BIG;
		}
		anc[n++] = up.st_ino;
		st = up;
		fd = parent;
	}
	*ret_n = n;
	return 0;
}

int sampler_tenant_add_cgroup(struct sampler *s, unsigned tenant, int cgroup_fd,
			      uint64_t cgroup_id, unsigned hz, char *err, size_t errlen)
{
	struct cg_events c = { .id = cgroup_id, .tenant = tenant };
	uint32_t t = tenant;
	int rc;

	if (tenant == 0 || tenant >= VIGIL_MAX_TENANTS || hz == 0)
		return -EINVAL;
	/*
	 * Events on a cgroup fire for its descendants too: a cgroup nested in
	 * (or around) an attached one would sample the same tasks twice, over
	 * the ceiling.  Its ancestors come from the cgroup tree itself.
	 */
	rc = ancestors(cgroup_fd, c.anc, &c.nanc);
	if (rc)
		return rc;
	for (size_t i = 0; i < s->ncgs; i++) {
		if (s->cgs[i].id == cgroup_id)
			return -EEXIST;
		for (unsigned a = 0; a < c.nanc; a++)
			if (c.anc[a] == s->cgs[i].id)
				return -EEXIST;
		for (unsigned a = 0; a < s->cgs[i].nanc; a++)
			if (s->cgs[i].anc[a] == cgroup_id)
				return -EEXIST;
	}
	if (s->ncgs == SAMPLER_MAX_CGROUPS)
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
	for (unsigned i = 0; i < s->ncpus; i++) {
		c.pfds[i] = open_event(s->cpus[i], cgroup_fd, hz);
		if (c.pfds[i] < 0) {
			rc = c.pfds[i];
			snprintf(err, errlen, "perf_event_open(cpu-clock, cgroup %" PRIu64 ", cpu %d): %s",
				 cgroup_id, s->cpus[i], strerror(-rc));
			goto fail;
		}
		c.links[i] = attach(s->prog_fd, c.pfds[i], tenant);
		if (c.links[i] < 0) {
			rc = c.links[i];
			snprintf(err, errlen, "attach to the cgroup %" PRIu64 " event on cpu %d: %s",
				 cgroup_id, s->cpus[i], strerror(-rc));
			goto fail;
		}
	}
	if (bpf_map_update_elem(s->tenant_cg_fd, &cgroup_id, &t, BPF_ANY) < 0) {
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
	for (size_t i = 0; i < s->ncgs; i++) {
		if (s->cgs[i].id != cgroup_id)
			continue;
		/* First hand its tasks back to the default events, then stop. */
		bpf_map_delete_elem(s->tenant_cg_fd, &cgroup_id);
		cg_close(&s->cgs[i], s->ncpus);
		s->cgs[i] = s->cgs[--s->ncgs];
		return 0;
	}
	return -ENOENT;
}

void sampler_free(struct sampler *s)
{
	int single[] = { -1, -1, -1, -1, -1, -1 };

	if (!s)
		return;
	for (size_t i = 0; i < s->ncgs; i++)
		cg_close(&s->cgs[i], s->ncpus);
	single[0] = s->exec_link_fd;
	close_all(s->links, s->ncpus);
	close_all(s->pfds, s->ncpus);
	single[1] = s->prog_fd;
	single[2] = s->events_fd;
	single[3] = s->stats_fd;
	single[4] = s->tstats_fd;
	single[5] = s->tenant_cg_fd;
	close_all(single, 6);
	free(s->links);
	free(s->pfds);
	free(s);
}
