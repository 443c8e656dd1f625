/*
 * snapshot.c - aggregated samples -> symbolized, labelled pprof (see snapshot.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroups.h"
#include "framememo.h"
#include "pprof.h"
#include "service.h"
#include "snapshot.h"
#include "stackagg.h"
#include "symbolizer.h"

#define MAX_FRAMES (2 * VIGIL_MAX_STACK + 1)

struct leaf {
	char *function; /* owned copies: the symbolizer's strings do not outlive its tick */
	char *comm;
	uint64_t cpu_ns;
};

struct leaves {
	struct leaf *v;
	size_t n, cap;
	uint64_t cpu_ns; /* of every leaf */
};

static int leaves_add(struct leaves *l, char *function, char *comm, uint64_t cpu_ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct leaf *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct leaf){ function, comm, cpu_ns };
	l->cpu_ns += cpu_ns;
	return 0;
}

static int cmp_leaf_name(const void *a, const void *b)
{
	const struct leaf *x = a, *y = b;
	int c = strcmp(x->function, y->function);

	return c ? c : strcmp(x->comm, y->comm);
}

static int cmp_top_cpu(const void *a, const void *b)
{
	const struct snapshot_top_entry *x = a, *y = b;

	return x->cpu_ns < y->cpu_ns ? 1 : x->cpu_ns > y->cpu_ns ? -1 : 0;
}

void snapshot_top_free(struct snapshot_top *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].function);
		free(t->v[i].comm);
	}
	free(t->v);
	free(t);
}

/* The leaves, merged by (function, comm); the strings move into the table. */
static int make_top(struct leaves *l, uint64_t samples, struct snapshot_top **ret)
{
	struct snapshot_top *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->samples = samples;
	t->cpu_ns = l->cpu_ns;
	qsort(l->v, l->n, sizeof(*l->v), cmp_leaf_name);
	t->v = calloc(l->n ? l->n : 1, sizeof(*t->v));
	if (!t->v) {
		free(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < l->n; i++) {
		char *fn = l->v[i].function, *cm = l->v[i].comm;
		struct snapshot_top_entry *last = t->n ? &t->v[t->n - 1] : NULL;

		if (last && strcmp(last->function, fn) == 0 && strcmp(last->comm, cm) == 0) {
			last->cpu_ns += l->v[i].cpu_ns;
			free(fn);
			free(cm);
		} else {
			t->v[t->n++] = (struct snapshot_top_entry){ fn, cm, l->v[i].cpu_ns };
		}
	}
	l->n = 0; /* every string now belongs to t */
	qsort(t->v, t->n, sizeof(*t->v), cmp_top_cpu);
	*ret = t;
	return 0;
}

static uint64_t add_frame(struct pprof_builder *b, const struct sym_frame *f)
{
	uint64_t mid = 0;

	if (f->mapping) {
		const struct sym_mapping *m = f->mapping;

		mid = pprof_mapping(b, m->start, m->limit, m->file_offset, m->path, m->build_id,
				    true);
		if (!mid)
			return 0;
	}
	return pprof_location(b, mid, f->address, f->function);
}

/* Name of a frame for the top table. */
static const char *frame_name(const struct sym_frame *f, char *buf, size_t len)
{
	const char *base;

	if (f->function)
		return f->function;
	if (!f->mapping)
		snprintf(buf, len, "0x%" PRIx64, f->address);
	else {
		base = strrchr(f->mapping->path, '/');
		snprintf(buf, len, "0x%" PRIx64 "@%s", f->address,
			 base ? base + 1 : f->mapping->path);
	}
	return buf;
}

/* The default events' period (--hz): a profile's informative period. */
static int64_t hz_period_ns(const struct snapshot_meta *m)
{
	return 1000000000ll / (m->hz ? m->hz : 1);
}

/* The location this profile gave frame k already; none when the leaf's name is wanted. */
static uint64_t placed(const struct framememo *fm, const struct framememo_key *k, bool want_name)
{
	return want_name ? 0 : framememo_get(fm, k);
}

static int add_entry(struct pprof_builder *b, struct framememo *fm, const struct stackagg_entry *e,
		     struct symbolizer *sym, struct cgroups *cg, const struct snapshot_meta *m,
		     struct leaves *leaves, char *leafbuf, size_t leaflen, bool exported)
{
	const struct vigil_sample_hdr *h = &e->hdr;
	uint64_t locs[MAX_FRAMES];
	size_t n = 0, nk = h->kernel_len / 8, nu, unit;
	struct sym_frame f, leaf = { 0 };
	/* A kernel leaf's name, which the next kernel frame's lookup would overwrite. */
	char kleaf[512];
	char comm[VIGIL_COMM_LEN + 1], thread[VIGIL_COMM_LEN + 1], cgbuf[64], tbuf[32];
	const char *cgpath, *tenant = m->tenant_name ? m->tenant_name(m->tenant_ctx, h->tenant, h->tenant_gen) : NULL;
	int rc;

	unit = h->user_fmt == VIGIL_USER_BUILD_ID ? sizeof(struct vigil_frame_bid) : 8;
	nu = h->user_len / unit;

	for (size_t i = 0; i < nk; i++) {
		struct framememo_key k = { .kind = FRAMEMEMO_KERNEL | (i > 0 ? FRAMEMEMO_RETURN : 0) };
		uint64_t ip;

		memcpy(&ip, e->frames + i * 8, 8);
		k.ip = ip;
		if ((locs[n] = placed(fm, &k, n == 0 && leaves))) {
			n++;
			continue;
		}
		rc = symbolizer_kernel(sym, ip, i > 0, &f);
		if (rc)
			f = (struct sym_frame){ .address = ip };
		if (n == 0) {
			leaf = f;
			if (f.function) {
				snprintf(kleaf, sizeof(kleaf), "%s", f.function);
				leaf.function = kleaf;
			}
		}
		locs[n] = add_frame(b, &f);
		if (!locs[n] || framememo_put(fm, &k, locs[n]) < 0)
			return -ENOMEM;
		n++;
	}
	for (size_t j = 0; j < nu; j++) {
		const uint8_t *p = e->frames + h->kernel_len + j * unit;
		/* Below the leaf, and below a syscall, a user pc is a return address. */
		bool is_ret = j > 0 || nk > 0;
		/* An address in the process (a build-id frame names its file instead: not kept). */
		struct framememo_key k = { .kind = FRAMEMEMO_USER | (is_ret ? FRAMEMEMO_RETURN : 0),
					   .pid = h->pid, .start_ns = h->start_ns };

		if (h->user_fmt == VIGIL_USER_BUILD_ID) {
			struct vigil_frame_bid fb;

			memcpy(&fb, p, sizeof(fb));
			if (fb.status == VIGIL_BID_IP) {
				k.ip = fb.offset_or_ip;
				if ((locs[n] = placed(fm, &k, n == 0 && leaves))) {
					n++;
					continue;
				}
			}
			if (fb.status == VIGIL_BID_VALID)
				rc = symbolizer_user_bid(sym, h->pid, h->start_ns, fb.build_id,
							 fb.offset_or_ip, is_ret, &f);
			else if (fb.status == VIGIL_BID_IP)
				rc = symbolizer_user_ip(sym, h->pid, h->start_ns, fb.offset_or_ip,
							is_ret, &f);
			else
				continue;
			if (rc)
				f = (struct sym_frame){ .address = fb.offset_or_ip };
		} else {
			uint64_t ip;

			memcpy(&ip, p, 8);
			if (ip == VIGIL_USER_TRUNCATED) {
				/* The unwinder stopped here: one marker, no made-up frames. */
				f = (struct sym_frame){ .function = "[truncated]" };
				rc = 0;
			} else {
				k.ip = ip;
				if ((locs[n] = placed(fm, &k, n == 0 && leaves))) {
					n++;
					continue;
				}
				rc = symbolizer_user_ip(sym, h->pid, h->start_ns, ip, is_ret, &f);
			}
			if (rc)
				f = (struct sym_frame){ .address = ip };
		}
		if (n == 0)
			leaf = f;
		locs[n] = add_frame(b, &f);
		if (!locs[n] || (k.ip && framememo_put(fm, &k, locs[n]) < 0))
			return -ENOMEM;
		n++;
	}
	if (n == 0) {
		/* Both walks failed: keep the sample, say so in its only frame. */
		leaf = (struct sym_frame){ .function = "[no stack]" };
		locs[n] = pprof_location(b, 0, 0, "[no stack]");
		if (!locs[n])
			return -ENOMEM;
		n++;
	}

	memcpy(comm, h->comm, VIGIL_COMM_LEN);
	comm[VIGIL_COMM_LEN] = '\0';
	memcpy(thread, h->thread_name, VIGIL_COMM_LEN);
	thread[VIGIL_COMM_LEN] = '\0';
	cgpath = cg ? cgroups_path(cg, h->cgroup_id) : NULL;
	if (!cgpath) {
		snprintf(cgbuf, sizeof(cgbuf), "cgroup-id:%" PRIu64, h->cgroup_id);
		cgpath = cgbuf;
	}

	if (!tenant) {
		snprintf(tbuf, sizeof(tbuf), "tenant-%u", h->tenant);
		tenant = tbuf;
	}

	const struct pprof_label labels[] = {
		{ .key = "pid", .num = h->pid },
		{ .key = "tid", .num = h->tid },
		{ .key = "comm", .str = comm },
		{ .key = "thread_name", .str = thread },
		{ .key = "cgroup", .str = cgpath },
		{ .key = "tenant", .str = tenant },
	};
	/*
	 * Pyroscope stores every distinct set of string labels as a series of
	 * its own and counts them against its 30-label limit: thread_name and
	 * cgroup multiply an exported profile into many series, so exported
	 * (per-service) profiles keep only comm and tenant; pid and tid are
	 * numeric, which Pyroscope does not turn into series. Files in the
	 * output directory keep every label.
	 */
	const struct pprof_label exp_labels[] = { labels[0], labels[1], labels[2], labels[5] };
	const struct pprof_label *lv = exported ? exp_labels : labels;
	size_t nl = exported ? sizeof(exp_labels) / sizeof(exp_labels[0])
			     : sizeof(labels) / sizeof(labels[0]);

	/* Each sample is worth its own period: its tenant's frequency may have changed. */
	rc = pprof_sample(b, locs, n, lv, nl, (int64_t)e->count, (int64_t)e->cpu_ns);
	if (rc)
		return rc;
	if (leaves) {
		/* The top table copies names before the symbolizer's next tick. */
		const char *name = frame_name(&leaf, leafbuf, leaflen);
		char *fn = strdup(name), *cm = strdup(comm);

		if (!fn || !cm || leaves_add(leaves, fn, cm, e->cpu_ns)) {
			free(fn);
			free(cm);
			return -ENOMEM;
		}
	}
	return 0;
}

static int add_comments(struct pprof_builder *b, const struct snapshot_meta *m)
{
	char text[512];
	int rc;

	snprintf(text, sizeof(text),
		 "vigil: hz=%u cpus=%u samples=%" PRIu64 " lost=%" PRIu64 " idle=%" PRIu64
		 " user_stack_errors=%" PRIu64 " kernel_stack_errors=%" PRIu64
		 " exec_events_lost=%" PRIu64,
		 m->hz, m->ncpus, m->stats.samples, m->stats.lost, m->stats.idle, m->stats.user_err,
		 m->stats.kernel_err, m->stats.exec_lost);
	rc = pprof_comment(b, text);
	if (!rc && m->unwind_comment)
		rc = pprof_comment(b, m->unwind_comment);
	if (!rc && m->cache_comment)
		rc = pprof_comment(b, m->cache_comment);
	for (size_t i = 0; !rc && i < m->ncomments; i++) {
		char line[600];

		snprintf(line, sizeof(line), "vigil: budget %s", m->comments[i]);
		rc = pprof_comment(b, line);
	}
	if (!rc && m->extra_comment)
		rc = pprof_comment(b, m->extra_comment);
	return rc;
}

int snapshot_build(const struct stackagg *agg, struct symbolizer *sym, struct cgroups *cg,
		   const struct snapshot_meta *m, uint8_t **ret_buf, size_t *ret_len,
		   struct snapshot_top **ret_top)
{
	struct leaves leaves = { 0 };
	struct pprof_builder *b;
	struct framememo fm;
	char leafbuf[128];
	int rc = 0;

	b = pprof_new(hz_period_ns(m), m->time_ns);
	if (!b)
		return -errno;
	framememo_init(&fm);
	for (size_t i = 0; i < stackagg_distinct(agg); i++) {
		rc = add_entry(b, &fm, stackagg_get(agg, i), sym, cg, m, ret_top ? &leaves : NULL,
			       leafbuf, sizeof(leafbuf), false);
		if (rc)
			goto out;
	}
	rc = add_comments(b, m);
	if (rc)
		goto out;
	rc = pprof_encode(b, m->duration_ns, ret_buf, ret_len);
	if (rc)
		goto out;
	if (ret_top) {
		rc = make_top(&leaves, stackagg_total(agg), ret_top);
		if (rc) {
			free(*ret_buf);
			*ret_buf = NULL;
		}
	}
out:
	for (size_t i = 0; i < leaves.n; i++) {
		free(leaves.v[i].function);
		free(leaves.v[i].comm);
	}
	free(leaves.v);
	framememo_release(&fm);
	pprof_free(b);
	return rc;
}

/* ---- export: one profile per series ---- */

struct series_b {
	struct snapshot_series out;
	struct pprof_builder *b;
	struct framememo fm; /* the locations of b's frames */
};

void snapshot_set_free(struct snapshot_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].service);
		free(s->v[i].buf);
	}
	free(s->v);
	free(s);
}

/* The series of entry e: its service and its tenant's name. */
static int entry_series(const struct stackagg_entry *e, struct cgroups *cg,
			const struct snapshot_meta *m, char *svc, size_t svc_len, char *tenant,
			size_t tenant_len)
{
	char comm[VIGIL_COMM_LEN + 1];
	const char *t = m->tenant_name ? m->tenant_name(m->tenant_ctx, e->hdr.tenant, e->hdr.tenant_gen) : NULL;

	memcpy(comm, e->hdr.comm, VIGIL_COMM_LEN);
	comm[VIGIL_COMM_LEN] = '\0';
	if (t)
		snprintf(tenant, tenant_len, "%s", t);
	else
		snprintf(tenant, tenant_len, "tenant-%u", e->hdr.tenant);
	return service_of(cg ? cgroups_path(cg, e->hdr.cgroup_id) : NULL, comm, svc, svc_len);
}

static struct series_b *find_series(struct series_b *v, size_t *n, size_t limit, const char *svc,
				    const char *tenant, int64_t period_ns, int64_t time_ns)
{
	struct series_b *s;

	for (size_t i = 0; i < *n; i++)
		if (strcmp(v[i].out.service, svc) == 0 && strcmp(v[i].out.tenant, tenant) == 0)
			return &v[i];
	if (*n >= limit) /* past it when "other" series were added */
		return NULL;
	s = &v[*n];
	memset(s, 0, sizeof(*s));
	s->out.service = strdup(svc);
	s->b = pprof_new(period_ns, time_ns);
	if (!s->out.service || !s->b) {
		free(s->out.service);
		pprof_free(s->b);
		errno = ENOMEM;
		return NULL;
	}
	snprintf(s->out.tenant, sizeof(s->out.tenant), "%s", tenant);
	framememo_init(&s->fm);
	(*n)++;
	return s;
}

int snapshot_build_series(const struct stackagg *agg, struct symbolizer *sym, struct cgroups *cg,
			  const struct snapshot_meta *m, struct snapshot_set **ret_set,
			  struct snapshot_top **ret_top)
{
	/* Past the limit, each tenant's "other" still has a slot of its own. */
	const size_t cap = SNAPSHOT_MAX_SERIES + VIGIL_MAX_TENANTS;
	struct series_b *v = calloc(cap, sizeof(*v));
	struct snapshot_set *set = calloc(1, sizeof(*set));
	struct leaves leaves = { 0 };
	char svc[1024], tenant[64], leafbuf[128];
	size_t n = 0;
	int rc = 0;

	if (!v || !set) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < stackagg_distinct(agg); i++) {
		const struct stackagg_entry *e = stackagg_get(agg, i);
		struct series_b *s;
		/*
		 * A series is one tenant's: its profile's period is that of its
		 * first stack's samples (informative only; the values are exact).
		 */
		int64_t period_ns = e->count && e->cpu_ns >= e->count ? (int64_t)(e->cpu_ns / e->count)
								       : hz_period_ns(m);

		if (entry_series(e, cg, m, svc, sizeof(svc), tenant, sizeof(tenant)) < 0)
			snprintf(svc, sizeof(svc), "%s", SNAPSHOT_OTHER_SERVICE);
		errno = 0;
		s = find_series(v, &n, SNAPSHOT_MAX_SERIES, svc, tenant, period_ns, m->time_ns);
		if (!s && errno == 0) /* full: the tenant's "other" */
			s = find_series(v, &n, cap, SNAPSHOT_OTHER_SERVICE, tenant, period_ns, m->time_ns);
		if (!s) {
			rc = errno ? -errno : -ENOSPC;
			goto out;
		}
		rc = add_entry(s->b, &s->fm, e, sym, cg, m, ret_top ? &leaves : NULL, leafbuf,
			       sizeof(leafbuf), true);
		if (rc)
			goto out;
		s->out.samples += e->count;
	}
	set->v = calloc(n ? n : 1, sizeof(*set->v));
	if (!set->v) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rc = add_comments(v[i].b, m);
		if (!rc)
			rc = pprof_encode(v[i].b, m->duration_ns, &v[i].out.buf, &v[i].out.len);
		if (rc)
			goto out;
		/* RFC 1952, 2.3.1: a gzip member ends with ISIZE, the input's size mod 2^32 (LE) */
		if (v[i].out.len >= 4) {
			const uint8_t *t = v[i].out.buf + v[i].out.len - 4;

			v[i].out.raw_len = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 |
					   (size_t)t[3] << 24;
		}
		v[i].out.records = pprof_sample_count(v[i].b);
		set->v[set->n++] = v[i].out;
		v[i].out.service = NULL;
		v[i].out.buf = NULL;
	}
	if (ret_top) {
		rc = make_top(&leaves, stackagg_total(agg), ret_top);
		if (rc)
			goto out;
	}
	*ret_set = set;
	set = NULL;
out:
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].out.service);
		free(v[i].out.buf);
		framememo_release(&v[i].fm);
		pprof_free(v[i].b);
	}
	free(v);
	snapshot_set_free(set);
	for (size_t i = 0; i < leaves.n; i++) {
		free(leaves.v[i].function);
		free(leaves.v[i].comm);
	}
	free(leaves.v);
	return rc;
}
