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
#include "pprof.h"
#include "snapshot.h"
#include "stackagg.h"
#include "symbolizer.h"

#define MAX_FRAMES (2 * VIGIL_MAX_STACK + 1)

struct leaf {
	char *function; /* owned copies: the symbolizer's strings do not outlive its tick */
	char *comm;
	uint64_t count;
};

struct leaves {
	struct leaf *v;
	size_t n, cap;
};

static int leaves_add(struct leaves *l, char *function, char *comm, uint64_t count)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct leaf *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct leaf){ function, comm, count };
	return 0;
}

static int cmp_leaf_name(const void *a, const void *b)
{
	const struct leaf *x = a, *y = b;
	int c = strcmp(x->function, y->function);

	return c ? c : strcmp(x->comm, y->comm);
}

static int cmp_top_count(const void *a, const void *b)
{
	const struct snapshot_top_entry *x = a, *y = b;

	return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
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
static int make_top(struct leaves *l, uint64_t total, struct snapshot_top **ret)
{
	struct snapshot_top *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->total = total;
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
			last->count += l->v[i].count;
			free(fn);
			free(cm);
		} else {
			t->v[t->n++] = (struct snapshot_top_entry){ fn, cm, l->v[i].count };
		}
	}
	l->n = 0; /* every string now belongs to t */
	qsort(t->v, t->n, sizeof(*t->v), cmp_top_count);
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

static int add_entry(struct pprof_builder *b, const struct stackagg_entry *e, struct symbolizer *sym,
		     struct cgroups *cg, const struct snapshot_meta *m, int64_t period_ns,
		     struct leaves *leaves, char *leafbuf, size_t leaflen)
{
	const struct vigil_sample_hdr *h = &e->hdr;
	uint64_t locs[MAX_FRAMES];
	size_t n = 0, nk = h->kernel_len / 8, nu, unit;
	struct sym_frame f, leaf = { 0 };
	char comm[VIGIL_COMM_LEN + 1], thread[VIGIL_COMM_LEN + 1], cgbuf[64], tbuf[32];
	const char *cgpath, *tenant = m->tenant_name ? m->tenant_name(m->tenant_ctx, h->tenant) : NULL;
	int rc;

	unit = h->user_fmt == VIGIL_USER_BUILD_ID ? sizeof(struct vigil_frame_bid) : 8;
	nu = h->user_len / unit;

	for (size_t i = 0; i < nk; i++) {
		uint64_t ip;

		memcpy(&ip, e->frames + i * 8, 8);
		rc = symbolizer_kernel(sym, ip, i > 0, &f);
		if (rc)
			f = (struct sym_frame){ .address = ip };
		if (n == 0)
			leaf = f;
		locs[n] = add_frame(b, &f);
		if (!locs[n])
			return -ENOMEM;
		n++;
	}
	for (size_t j = 0; j < nu; j++) {
		const uint8_t *p = e->frames + h->kernel_len + j * unit;
		/* Below the leaf, and below a syscall, a user pc is a return address. */
		bool is_ret = j > 0 || nk > 0;

		if (h->user_fmt == VIGIL_USER_BUILD_ID) {
			struct vigil_frame_bid fb;

			memcpy(&fb, p, sizeof(fb));
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
			rc = symbolizer_user_ip(sym, h->pid, h->start_ns, ip, is_ret, &f);
			if (rc)
				f = (struct sym_frame){ .address = ip };
		}
		if (n == 0)
			leaf = f;
		locs[n] = add_frame(b, &f);
		if (!locs[n])
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
	rc = pprof_sample(b, locs, n, labels, sizeof(labels) / sizeof(labels[0]), (int64_t)e->count,
			  (int64_t)e->count * period_ns);
	if (rc)
		return rc;
	if (leaves) {
		/* The top table copies names before the symbolizer's next tick. */
		const char *name = frame_name(&leaf, leafbuf, leaflen);
		char *fn = strdup(name), *cm = strdup(comm);

		if (!fn || !cm || leaves_add(leaves, fn, cm, e->count)) {
			free(fn);
			free(cm);
			return -ENOMEM;
		}
	}
	return 0;
}

int snapshot_build(const struct stackagg *agg, struct symbolizer *sym, struct cgroups *cg,
		   const struct snapshot_meta *m, uint8_t **ret_buf, size_t *ret_len,
		   struct snapshot_top **ret_top)
{
	int64_t period_ns = 1000000000ll / (m->hz ? m->hz : 1);
	struct leaves leaves = { 0 };
	struct pprof_builder *b;
	char text[512], leafbuf[128];
	int rc = 0;

	b = pprof_new(period_ns, m->time_ns);
	if (!b)
		return -errno;
	for (size_t i = 0; i < stackagg_distinct(agg); i++) {
		rc = add_entry(b, stackagg_get(agg, i), sym, cg, m, period_ns, ret_top ? &leaves : NULL,
			       leafbuf, sizeof(leafbuf));
		if (rc)
			goto out;
	}
	snprintf(text, sizeof(text),
		 "vigil: hz=%u cpus=%u samples=%" PRIu64 " lost=%" PRIu64 " idle=%" PRIu64
		 " user_stack_errors=%" PRIu64 " kernel_stack_errors=%" PRIu64
		 " exec_events_lost=%" PRIu64,
		 m->hz, m->ncpus, m->stats.samples, m->stats.lost, m->stats.idle, m->stats.user_err,
		 m->stats.kernel_err, m->stats.exec_lost);
	rc = pprof_comment(b, text);
	for (size_t i = 0; !rc && i < m->ncomments; i++) {
		char line[600];

		snprintf(line, sizeof(line), "vigil: budget %s", m->comments[i]);
		rc = pprof_comment(b, line);
	}
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
	pprof_free(b);
	return rc;
}
