/*
 * policy.c - parse, validate and query the profiling policy (policy.h).
 *
 * yamltree.c turns the bytes into a bounded tree; this file checks that tree
 * against the schema, collecting every problem with its position, and only
 * if there is none builds a struct policy.  Overlap of cgroup selectors is
 * decided exactly with cgglob.c (see selectors_overlap()).
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgglob.h"
#include "exporturl.h"
#include "policy.h"
#include "yamltree.h"

/* States of the selector-overlap search the whole policy may cost. */
#define OVERLAP_WORK (1ull << 25)

struct policy_selector {
	char *buf;		/* the selector with every '/' made a NUL */
	char **comp;		/* its components, in buf */
	size_t *comp_len;
	size_t n_comp;		/* 0 for "/" */
};

/* What was written in one "hz" or "budget" block. */
struct block {
	const struct ynode *node;	/* the block, if present */
	const struct ynode *hz_node[3];	/* min, max, start, when written */
	bool hz_bad;			/* a field was invalid: skip relation checks */
	const struct ynode *budget_node;
	bool budget_bad;
};

enum { HZ_MIN, HZ_MAX, HZ_START };
static const char *const hz_keys[] = { "min", "max", "start" };

/* A tenant while it is being checked. */
struct tparse {
	const struct ynode *item;
	const struct ynode *name_node;		/* valid name, or NULL */
	const struct ynode **sel_node;		/* valid selectors ... */
	size_t *sel_idx;			/* ... their index in cgroups ... */
	struct policy_selector *sel;		/* ... compiled */
	size_t n_sel;
	unsigned hz[3];
	double budget_percent;
	enum policy_unwind unwind;
};

struct ctx {
	const char *filename;
	unsigned max_hz;
	struct policy_errors *errs;
	size_t n_errors;		/* all of them, kept or not */
	uint64_t work;
	size_t n_selectors;
};

/* ------------------------------------------------------------------------
 * Errors. */

__attribute__((format(printf, 4, 5)))
static void error_at(struct ctx *c, unsigned line, unsigned col, const char *fmt, ...)
{
	struct policy_errors *e = c->errs;
	struct policy_error *pe;
	va_list ap;
	int n;

	c->n_errors++;
	if (!e)
		return;
	if (e->n == POLICY_MAX_ERRORS) {
		e->n_dropped++;
		return;
	}
	pe = &e->e[e->n++];
	pe->line = line;
	pe->col = col;
	n = snprintf(pe->text, sizeof(pe->text), "%s:%u:%u: ", c->filename, line, col);
	if (n < 0 || (size_t)n >= sizeof(pe->text))
		return;
	va_start(ap, fmt);
	vsnprintf(pe->text + n, sizeof(pe->text) - (size_t)n, fmt, ap);
	va_end(ap);
}

#define error_node(c, node, ...) error_at((c), (node)->line, (node)->col, __VA_ARGS__)

static void yaml_error(void *ctx, unsigned line, unsigned col, const char *msg)
{
	error_at(ctx, line, col, "%s", msg);
}

/* Keep the messages in file order (insertion sort: stable, n is small). */
static void errors_sort(struct policy_errors *e)
{
	for (size_t i = 1; i < e->n; i++) {
		struct policy_error t = e->e[i];
		size_t j = i;

		while (j > 0 && (e->e[j - 1].line > t.line ||
				 (e->e[j - 1].line == t.line && e->e[j - 1].col > t.col))) {
			e->e[j] = e->e[j - 1];
			j--;
		}
		e->e[j] = t;
	}
}

/*
 * s[0..len) quoted for a message: control bytes and quotes escaped, long
 * values cut, so that what the user wrote cannot forge a log line.
 */
#define QUOTE_CUT 60

struct quoted {
	char s[2 + 4 * QUOTE_CUT + 3 + 1];	/* quotes, all escaped, "...", NUL */
};

static struct quoted quote(const char *s, size_t len)
{
	struct quoted q;
	size_t o = 0;
	const size_t cut = QUOTE_CUT;

	q.s[o++] = '"';
	for (size_t i = 0; i < len && i < cut; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			q.s[o++] = '\\';
			q.s[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			static const char hex[] = "0123456789abcdef";

			q.s[o++] = '\\';
			q.s[o++] = 'x';
			q.s[o++] = hex[ch >> 4];
			q.s[o++] = hex[ch & 15];
		} else {
			q.s[o++] = (char)ch;
		}
	}
	q.s[o++] = '"';
	if (len > cut) {
		memcpy(q.s + o, "...", 3);
		o += 3;
	}
	q.s[o] = '\0';
	return q;
}

#define Q(n) (quote((n)->str, (n)->len).s)

static const char *describe(const struct ynode *n)
{
	if (n->type == YNODE_MAP)
		return "a mapping";
	if (n->type == YNODE_SEQ)
		return "a list";
	switch (yamltree_kind(n)) {
	case YSCALAR_NULL:
		return "empty (null)";
	case YSCALAR_BOOL:
		return "a boolean";
	case YSCALAR_INT:
		return "an integer";
	case YSCALAR_FLOAT:
		return "a number";
	default:
		return "a string";
	}
}

/* ------------------------------------------------------------------------
 * Mappings: keys, duplicates, unknown keys. */

static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t d[33], prev;

	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		d[j] = j;
	for (size_t i = 1; i <= la; i++) {
		prev = d[0];
		d[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t t = d[j], best = prev + (a[i - 1] != b[j - 1]);

			if (d[j] + 1 < best)
				best = d[j] + 1;
			if (d[j - 1] + 1 < best)
				best = d[j - 1] + 1;
			d[j] = best;
			prev = t;
		}
	}
	return d[lb];
}

/*
 * Report what is wrong with the keys of map n (path names it in messages,
 * "" for the top level); allowed is NULL-terminated.
 */
static void check_keys(struct ctx *c, const struct ynode *n, const char *path,
		       const char *const *allowed)
{
	char expected[128] = "";
	size_t na = 0;

	while (allowed[na])
		na++;
	for (size_t i = 0; i < na; i++) {
		size_t o = strlen(expected);

		snprintf(expected + o, sizeof(expected) - o, "%s%s", i == 0 ? "" : i + 1 == na ? " or " : ", ",
			 allowed[i]);
	}

	for (size_t i = 0; i + 1 < n->n_kids; i += 2) {
		const struct ynode *k = n->kids[i];
		bool known = false, dup = false;
		const char *near = NULL;

		if (k->bad)
			continue;
		if (k->type != YNODE_SCALAR) {
			error_node(c, k, "keys must be strings, not %s", describe(k));
			continue;
		}
		for (size_t j = 0; j < i && !dup; j += 2) {
			const struct ynode *o = n->kids[j];

			if (o->type == YNODE_SCALAR && o->len == k->len &&
			    !memcmp(o->str, k->str, k->len)) {
				error_node(c, k, "duplicate key %s%s%s (first at %u:%u)", Q(k),
					   *path ? " in " : "", path, o->line, o->col);
				dup = true;
			}
		}
		if (dup)
			continue;
		for (size_t a = 0; a < na; a++) {
			if (strlen(allowed[a]) == k->len && !memcmp(allowed[a], k->str, k->len))
				known = true;
			else if (edit_distance(k->str, k->len, allowed[a], strlen(allowed[a])) <= 2)
				near = allowed[a];
		}
		if (known)
			continue;
		if (near)
			error_node(c, k, "unknown key %s%s%s (did you mean \"%s\"?)", Q(k),
				   *path ? " in " : "", path, near);
		else
			error_node(c, k, "unknown key %s%s%s (expected %s)", Q(k), *path ? " in " : "",
				   path, expected);
	}
}

/* ------------------------------------------------------------------------
 * Scalars. */

/* An integer in [lo, hi] into *ret; false (reported) otherwise. */
static bool get_uint(struct ctx *c, const struct ynode *n, const char *path, unsigned lo,
		     unsigned hi, const char *range_note, unsigned *ret)
{
	const char *s;
	unsigned long long v;
	bool neg = false;
	int base = 10;
	char *end;

	if (n->bad)
		return false;
	if (n->type != YNODE_SCALAR || yamltree_kind(n) != YSCALAR_INT) {
		error_node(c, n, "%s must be an integer, not %s", path, describe(n));
		return false;
	}
	s = n->str;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
		base = s[1] == 'o' ? 8 : 16;
		s += 2;
	}
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || (neg && v) || v < lo || v > hi) {
		error_node(c, n, "%s must be between %u and %u%s, got %s", path, lo, hi, range_note,
			   Q(n));
		return false;
	}
	*ret = (unsigned)v;
	return true;
}

/* A budget in percent into *ret; false (reported) otherwise. */
static bool get_percent(struct ctx *c, const struct ynode *n, const char *path, double *ret)
{
	enum yscalar_kind k;
	double v;

	if (n->bad)
		return false;
	k = n->type == YNODE_SCALAR ? yamltree_kind(n) : YSCALAR_STRING;
	if (n->type != YNODE_SCALAR || (k != YSCALAR_INT && k != YSCALAR_FLOAT)) {
		error_node(c, n, "%s must be a number, not %s", path, describe(n));
		return false;
	}
	/* The core schema's .inf and .nan, and 0x/0o integers, are numbers
	 * but never a sensible budget: strtod would read them differently. */
	if (strpbrk(n->str, "iInNxo"))
		v = NAN;
	else
		v = strtod(n->str, NULL);
	if (!isfinite(v) || v < POLICY_MIN_OVERHEAD_PERCENT || v > POLICY_MAX_OVERHEAD_PERCENT) {
		error_node(c, n, "%s must be between %g and %g (percent of the tenant's CPU time), got %s",
			   path, POLICY_MIN_OVERHEAD_PERCENT, POLICY_MAX_OVERHEAD_PERCENT, Q(n));
		return false;
	}
	*ret = v;
	return true;
}

/* A string scalar; false (reported) if n is anything else. */
static bool is_string(struct ctx *c, const struct ynode *n, const char *path)
{
	if (n->bad)
		return false;
	if (n->type == YNODE_SCALAR && yamltree_kind(n) == YSCALAR_STRING)
		return true;
	if (n->type == YNODE_SCALAR && yamltree_kind(n) != YSCALAR_NULL)
		error_node(c, n, "%s must be a string, not %s (put it in quotes)", path, describe(n));
	else
		error_node(c, n, "%s must be a string, not %s", path, describe(n));
	return false;
}

static void read_version(struct ctx *c, const struct ynode *n)
{
	if (n->bad)
		return;
	if (n->type != YNODE_SCALAR || yamltree_kind(n) != YSCALAR_INT) {
		error_node(c, n, "version must be an integer, not %s", describe(n));
		return;
	}
	if (strcmp(n->str, "1") != 0)
		error_node(c, n, "unsupported version %s: this vigild reads version %d", Q(n),
			   POLICY_VERSION);
}

/*
 * serial: a positive decimal integer that fits SQLite's and JSON's signed
 * 64-bit integers.  Signed policies must have one and it only moves forward;
 * a local file may leave it out (0).
 */
static void read_serial(struct ctx *c, const struct ynode *n, uint64_t *ret)
{
	uint64_t v = 0;

	if (n->bad)
		return;
	if (n->type != YNODE_SCALAR || yamltree_kind(n) != YSCALAR_INT) {
		error_node(c, n, "serial must be a positive integer, not %s", describe(n));
		return;
	}
	for (size_t i = 0; i < n->len; i++) {
		unsigned d = (unsigned)(n->str[i] - '0');

		/* v * 10 + d <= POLICY_MAX_SERIAL, so the largest serial itself parses. */
		if (n->str[i] < '0' || n->str[i] > '9' || v > (POLICY_MAX_SERIAL - d) / 10) {
			v = 0;
			break;
		}
		v = v * 10 + d;
	}
	if (v == 0 || v > POLICY_MAX_SERIAL)
		error_node(c, n, "serial must be a decimal integer between 1 and %llu, got %s",
			   (unsigned long long)POLICY_MAX_SERIAL, Q(n));
	else
		*ret = v;
}

/* ------------------------------------------------------------------------
 * hz and budget blocks. */

static void read_hz(struct ctx *c, const struct ynode *hz, const char *path, struct block *b,
		    unsigned *vals)
{
	static const char *const keys[] = { "min", "max", "start", NULL };
	char p[96];

	if (!hz)
		return;
	b->node = hz;
	if (hz->bad) {
		b->hz_bad = true;
		return;
	}
	if (hz->type != YNODE_MAP) {
		error_node(c, hz, "%s.hz must be a mapping of min, max and start, not %s", path,
			   describe(hz));
		b->hz_bad = true;
		return;
	}
	snprintf(p, sizeof(p), "%s.hz", path);
	check_keys(c, hz, p, keys);
	for (int i = 0; i < 3; i++) {
		const struct ynode *v = yamltree_get(hz, hz_keys[i]);

		if (!v)
			continue;
		snprintf(p, sizeof(p), "%s.hz.%s", path, hz_keys[i]);
		b->hz_node[i] = v;
		if (!get_uint(c, v, p, 1, c->max_hz, "", &vals[i]))
			b->hz_bad = true;
	}
}

static void read_budget(struct ctx *c, const struct ynode *bud, const char *path,
			struct block *b, double *val)
{
	static const char *const keys[] = { "max_overhead_percent", NULL };
	char p[96];
	const struct ynode *v;

	if (!bud)
		return;
	if (bud->bad) {
		b->budget_bad = true;
		return;
	}
	if (bud->type != YNODE_MAP) {
		error_node(c, bud, "%s.budget must be a mapping with max_overhead_percent, not %s",
			   path, describe(bud));
		b->budget_bad = true;
		return;
	}
	snprintf(p, sizeof(p), "%s.budget", path);
	check_keys(c, bud, p, keys);
	v = yamltree_get(bud, "max_overhead_percent");
	if (!v)
		return;
	snprintf(p, sizeof(p), "%s.budget.max_overhead_percent", path);
	b->budget_node = v;
	if (!get_percent(c, v, p, val))
		b->budget_bad = true;
}

static void read_unwind(struct ctx *c, const struct ynode *v, const char *path,
			enum policy_unwind *val)
{
	if (!v || v->bad)
		return;
	if (v->type == YNODE_SCALAR && v->len == 5 && !memcmp(v->str, "dwarf", 5))
		*val = POLICY_UNWIND_DWARF;
	else if (v->type == YNODE_SCALAR && v->len == 13 && !memcmp(v->str, "frame-pointer", 13))
		*val = POLICY_UNWIND_FRAME_POINTER;
	else if (v->type == YNODE_SCALAR && yamltree_kind(v) == YSCALAR_STRING)
		error_node(c, v, "%s.unwind must be dwarf or frame-pointer, not %s", path, Q(v));
	else
		error_node(c, v, "%s.unwind must be dwarf or frame-pointer, not %s", path, describe(v));
}

/*
 * min <= start <= max, reported at a field this block wrote (a block that
 * wrote none of the offending fields inherited the problem and stays
 * quiet: it was reported where it was made).
 */
static void check_hz_order(struct ctx *c, const struct block *b, const char *path,
			   const unsigned *v, const char *inherited_from)
{
	const struct ynode *at = NULL;
	char note[3][40];

	if (b->hz_bad)
		return;
	if (v[HZ_MIN] > v[HZ_MAX])
		at = b->hz_node[HZ_MAX] ? b->hz_node[HZ_MAX] : b->hz_node[HZ_MIN];
	if (!at && v[HZ_START] < v[HZ_MIN])
		at = b->hz_node[HZ_START] ? b->hz_node[HZ_START] : b->hz_node[HZ_MIN];
	if (!at && v[HZ_START] > v[HZ_MAX])
		at = b->hz_node[HZ_START] ? b->hz_node[HZ_START] : b->hz_node[HZ_MAX];
	if (!at)
		return;
	for (int i = 0; i < 3; i++)
		snprintf(note[i], sizeof(note[i]), "%s", b->hz_node[i] ? "" : inherited_from);
	error_node(c, at, "%s.hz must have min <= start <= max, got min %u%s, start %u%s, max %u%s",
		   path, v[HZ_MIN], note[HZ_MIN], v[HZ_START], note[HZ_START], v[HZ_MAX],
		   note[HZ_MAX]);
}

/* ------------------------------------------------------------------------
 * Cgroup selectors. */

static void selector_release(struct policy_selector *s)
{
	if (!s)
		return;
	free(s->buf);
	free(s->comp);
	free(s->comp_len);
	memset(s, 0, sizeof(*s));
}

/* Split a valid selector into components.  0 or -ENOMEM. */
static int selector_compile(const char *path, struct policy_selector *s)
{
	size_t len = strlen(path), n = 0;

	memset(s, 0, sizeof(*s));
	s->buf = strdup(path);
	s->comp = calloc(len / 2 + 1, sizeof(*s->comp));
	s->comp_len = calloc(len / 2 + 1, sizeof(*s->comp_len));
	if (!s->buf || !s->comp || !s->comp_len) {
		selector_release(s);
		return -ENOMEM;
	}
	for (char *p = s->buf; *p;) {
		char *q;

		*p++ = '\0';	/* the '/' */
		if (!*p)
			break;	/* "/" alone */
		q = strchrnul(p, '/');
		s->comp[n] = p;
		s->comp_len[n++] = (size_t)(q - p);
		p = q;
	}
	s->n_comp = n;
	return 0;
}

/* Check selector n; 0, -EINVAL (reported) or -ENOMEM. */
static int read_selector(struct ctx *c, const struct ynode *n, const char *path,
			 struct policy_selector *ret)
{
	const char *why = NULL;

	if (!is_string(c, n, path))
		return -EINVAL;
	if (memchr(n->str, '\0', n->len)) {
		error_node(c, n, "%s contains a NUL byte", path);
		return -EINVAL;
	}
	if (n->len > POLICY_MAX_PATH) {
		error_node(c, n, "%s is longer than %u bytes", path, POLICY_MAX_PATH);
		return -EINVAL;
	}
	if (n->len == 0 || n->str[0] != '/') {
		error_node(c, n, "%s %s must be an absolute path, starting with '/'", path, Q(n));
		return -EINVAL;
	}
	if (n->len > 1 && n->str[n->len - 1] == '/') {
		error_node(c, n, "%s %s must not end with '/'", path, Q(n));
		return -EINVAL;
	}
	for (const char *p = n->str + 1; n->len > 1;) {
		const char *q = strchrnul(p, '/');

		if (cgglob_check(p, (size_t)(q - p), &why) < 0) {
			error_node(c, n, "%s %s: %s", path, Q(n), why);
			return -EINVAL;
		}
		if (!*q)
			break;
		p = q + 1;
	}
	return selector_compile(n->str, ret);
}

/*
 * Whether some cgroup belongs to both a and b: that is, a cgroup whose
 * first components match both selectors' components as far as the shorter
 * selector goes (a selector owns its cgroup and all descendants, so when one
 * selector could name an ancestor of the other's cgroups they overlap too).
 * Below the shorter selector's depth the longer one's components need only
 * match something, which every accepted pattern does.  Component names are
 * 1 to 255 bytes, not "." or "..".
 *
 * 1 (and an example path in witness), 0, -E2BIG (work budget spent) or
 * -ENOMEM.
 */
static int selectors_overlap(const struct policy_selector *a, const struct policy_selector *b,
			     char *witness, size_t wlen, uint64_t *work)
{
	const struct policy_selector *lng = a->n_comp >= b->n_comp ? a : b;
	size_t k = a->n_comp < b->n_comp ? a->n_comp : b->n_comp, o = 0;
	char name[CGGLOB_NAME_MAX + 1];
	int r;

	for (size_t i = 0; i < lng->n_comp; i++) {
		if (i < k && !cgglob_is_pattern(a->comp[i], a->comp_len[i]) &&
		    !cgglob_is_pattern(b->comp[i], b->comp_len[i])) {
			/* The common case, kept cheap: two plain names. */
			if (*work == 0)
				return -E2BIG;
			(*work)--;
			if (a->comp_len[i] != b->comp_len[i] ||
			    memcmp(a->comp[i], b->comp[i], a->comp_len[i]))
				return 0;
			memcpy(name, a->comp[i], a->comp_len[i]);
			name[a->comp_len[i]] = '\0';
			r = 1;
		} else if (i < k)
			r = cgglob_intersect(a->comp[i], a->comp_len[i], b->comp[i], b->comp_len[i],
					     name, sizeof(name), work);
		else
			r = cgglob_intersect(lng->comp[i], lng->comp_len[i], lng->comp[i],
					     lng->comp_len[i], name, sizeof(name), work);
		if (r <= 0)
			return r;
		o += (size_t)snprintf(witness + o, o < wlen ? wlen - o : 0, "/%s", name);
		if (o >= wlen)
			o = wlen - 1;
	}
	if (lng->n_comp == 0)
		snprintf(witness, wlen, "/");
	return 1;
}

/*
 * The first selector of an earlier tenant that selector s of tenant i
 * overlaps: 1 with *ret_j, *ret_u and witness set; 0 if there is none;
 * -E2BIG (work budget spent) or -ENOMEM.
 */
static int first_overlap(struct ctx *c, const struct tparse *t, size_t i, size_t s,
			 size_t *ret_j, size_t *ret_u, char *witness, size_t wlen)
{
	for (size_t j = 0; j < i; j++) {
		for (size_t u = 0; u < t[j].n_sel; u++) {
			int r = selectors_overlap(&t[i].sel[s], &t[j].sel[u], witness, wlen,
						  &c->work);

			if (r == 1) {
				*ret_j = j;
				*ret_u = u;
			}
			if (r != 0)
				return r;
		}
	}
	return 0;
}

/* Report each selector that overlaps one of an earlier tenant.  0 or -ENOMEM. */
static int check_overlaps(struct ctx *c, const struct ynode *tenants, const struct tparse *t,
			  size_t nt)
{
	char witness[POLICY_MAX_PATH + 1];

	for (size_t i = 1; i < nt; i++) {
		for (size_t s = 0; s < t[i].n_sel; s++) {
			const struct ynode *ns = t[i].sel_node[s], *nu, *name;
			size_t j = 0, u = 0; /* set when first_overlap returns 1 */
			int r = first_overlap(c, t, i, s, &j, &u, witness, sizeof(witness));

			if (r == -ENOMEM)
				return r;
			if (r == -E2BIG) {
				error_node(c, tenants,
					   "tenants: the cgroup selectors are too many or too complex to check for overlaps; use fewer wildcards");
				return 0;
			}
			if (r == 0)
				continue;
			nu = t[j].sel_node[u];
			name = t[j].name_node;
			error_node(c, ns,
				   "tenants[%zu].cgroups[%zu] %s overlaps %s of tenants[%zu]%s%s (%u:%u): %s would belong to both",
				   i, t[i].sel_idx[s], Q(ns), Q(nu), j, name ? " " : "",
				   name ? Q(name) : "", nu->line, nu->col,
				   quote(witness, strlen(witness)).s);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Tenants. */

static bool name_ok(const struct ynode *n)
{
	if (n->len == 0 || n->len > POLICY_MAX_NAME)
		return false;
	for (size_t i = 0; i < n->len; i++) {
		unsigned char ch = (unsigned char)n->str[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
			return false;
	}
	return true;
}

static void read_name(struct ctx *c, const struct ynode *n, const char *path,
		      struct tparse *t, const struct tparse *earlier, size_t n_earlier)
{
	char p[64];

	snprintf(p, sizeof(p), "%s.name", path);
	if (!is_string(c, n, p))
		return;
	if (!name_ok(n)) {
		error_node(c, n, "%s %s must be 1 to %u letters, digits, '_', '-' or '.'", p, Q(n),
			   POLICY_MAX_NAME);
		return;
	}
	if (n->len == 7 && !memcmp(n->str, "default", 7)) {
		error_node(c, n, "%s \"default\" is reserved for the cgroups no tenant selects", p);
		return;
	}
	for (size_t j = 0; j < n_earlier; j++) {
		const struct ynode *o = earlier[j].name_node;

		if (o && o->len == n->len && !memcmp(o->str, n->str, n->len)) {
			error_node(c, n, "%s %s is already the name of tenants[%zu] (%u:%u)", p, Q(n),
				   j, o->line, o->col);
			return;
		}
	}
	t->name_node = n;
}

static int read_cgroups(struct ctx *c, const struct ynode *n, const char *path, struct tparse *t)
{
	char p[64];

	if (n->bad)
		return 0;
	if (n->type != YNODE_SEQ) {
		error_node(c, n, "%s.cgroups must be a list of cgroup paths, not %s", path,
			   describe(n));
		return 0;
	}
	if (n->n_kids == 0) {
		error_node(c, n, "%s.cgroups must list at least one cgroup", path);
		return 0;
	}
	t->sel = calloc(n->n_kids, sizeof(*t->sel));
	t->sel_node = calloc(n->n_kids, sizeof(*t->sel_node));
	t->sel_idx = calloc(n->n_kids, sizeof(*t->sel_idx));
	if (!t->sel || !t->sel_node || !t->sel_idx)
		return -ENOMEM;
	for (size_t i = 0; i < n->n_kids; i++) {
		const struct ynode *s = n->kids[i];
		int r;

		if (i == POLICY_MAX_CGROUPS) {
			error_node(c, s, "%s.cgroups has more than %u entries", path,
				   POLICY_MAX_CGROUPS);
			break;
		}
		if (c->n_selectors == POLICY_MAX_SELECTORS) {
			error_node(c, s, "more than %u cgroup selectors in all", POLICY_MAX_SELECTORS);
			break;
		}
		c->n_selectors++;
		snprintf(p, sizeof(p), "%s.cgroups[%zu]", path, i);
		r = read_selector(c, s, p, &t->sel[t->n_sel]);
		if (r == -ENOMEM)
			return r;
		if (r == 0) {
			t->sel_idx[t->n_sel] = i;
			t->sel_node[t->n_sel++] = s;
		}
	}
	return 0;
}

static int read_tenant(struct ctx *c, const struct ynode *item, size_t idx, struct tparse *t,
		       const struct tparse *earlier, const unsigned *dhz, bool dhz_bad,
		       double dbudget, enum policy_unwind dunwind)
{
	static const char *const keys[] = { "name", "cgroups", "hz", "budget", "unwind", NULL };
	const struct ynode *name, *cgroups;
	struct block b = { 0 };
	char path[32];
	int r;

	snprintf(path, sizeof(path), "tenants[%zu]", idx);
	t->item = item;
	memcpy(t->hz, dhz, sizeof(t->hz));
	t->budget_percent = dbudget;
	t->unwind = dunwind;
	if (item->bad)
		return 0;
	if (item->type != YNODE_MAP) {
		error_node(c, item, "%s must be a mapping with name, cgroups, hz and budget, not %s",
			   path, describe(item));
		return 0;
	}
	check_keys(c, item, path, keys);
	name = yamltree_get(item, "name");
	if (name)
		read_name(c, name, path, t, earlier, idx);
	else
		error_node(c, item, "%s has no name", path);
	cgroups = yamltree_get(item, "cgroups");
	if (cgroups) {
		r = read_cgroups(c, cgroups, path, t);
		if (r < 0)
			return r;
	} else {
		error_node(c, item, "%s has no cgroups", path);
	}
	read_hz(c, yamltree_get(item, "hz"), path, &b, t->hz);
	/* Broken defaults were reported there; compare only what is known. */
	if (!dhz_bad || (b.hz_node[HZ_MIN] && b.hz_node[HZ_MAX] && b.hz_node[HZ_START]))
		check_hz_order(c, &b, path, t->hz, " (from defaults)");
	read_budget(c, yamltree_get(item, "budget"), path, &b, &t->budget_percent);
	read_unwind(c, yamltree_get(item, "unwind"), path, &t->unwind);
	return 0;
}

static void tparse_release(struct tparse *t)
{
	for (size_t i = 0; i < t->n_sel; i++)
		selector_release(&t->sel[i]);
	free(t->sel);
	free(t->sel_node);
	free(t->sel_idx);
}

/* ------------------------------------------------------------------------
 * The whole policy. */

static int tenant_init(struct policy_tenant *pt, const char *name, size_t name_len,
		       const unsigned *hz, double percent, enum policy_unwind unwind)
{
	pt->unwind = unwind;
	pt->name = strndup(name, name_len);
	if (!pt->name)
		return -ENOMEM;
	pt->hz.min = hz[HZ_MIN];
	pt->hz.max = hz[HZ_MAX];
	pt->hz.start = hz[HZ_START];
	pt->max_overhead = percent / 100.0;
	return 0;
}

/* Move the checked tenants into a new policy.  0 or -ENOMEM. */
static int build(struct tparse *t, size_t nt, const unsigned *dhz, double dbudget,
		 enum policy_unwind dunwind, struct policy **ret)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->version = POLICY_VERSION;
	p->tenants = calloc(nt + 1, sizeof(*p->tenants));
	if (!p->tenants)
		goto oom;
	p->n_tenants = 1;
	if (tenant_init(&p->tenants[0], "default", 7, dhz, dbudget, dunwind) < 0)
		goto oom;
	for (size_t i = 0; i < nt; i++) {
		struct policy_tenant *pt = &p->tenants[p->n_tenants];

		if (tenant_init(pt, t[i].name_node->str, t[i].name_node->len, t[i].hz,
				t[i].budget_percent, t[i].unwind) < 0)
			goto oom;
		p->n_tenants++;
		pt->cgroups = calloc(t[i].n_sel, sizeof(*pt->cgroups));
		if (!pt->cgroups)
			goto oom;
		for (size_t s = 0; s < t[i].n_sel; s++) {
			pt->cgroups[s] = strdup(t[i].sel_node[s]->str);
			if (!pt->cgroups[s])
				goto oom;
			pt->n_cgroups++;
		}
		/* The compiled selectors change hands. */
		pt->sel = t[i].sel;
		t[i].sel = NULL;
		t[i].n_sel = 0;
	}
	*ret = p;
	return 0;
oom:
	policy_free(p);
	return -ENOMEM;
}

/* ------------------------------------------------------------------------
 * The export: section (issue 11). */

/* A string under key of n into out (size out_len); "" when absent.  Reported when bad. */
static const struct ynode *export_string(struct ctx *c, const struct ynode *n, const char *key,
					 char *out, size_t out_len)
{
	const struct ynode *v = yamltree_get(n, key);
	char path[64];

	if (!v)
		return NULL;
	snprintf(path, sizeof(path), "export.%s", key);
	if (!is_string(c, v, path))
		return NULL;
	if (v->len >= out_len || memchr(v->str, '\0', v->len)) {
		error_node(c, v, "%s is longer than %zu bytes", path, out_len - 1);
		return NULL;
	}
	memcpy(out, v->str, v->len + 1);
	return v;
}

static void read_export(struct ctx *c, const struct ynode *n, struct policy_export *e)
{
	static const char *const keys[] = { "url", "tenant", "basic_auth_file", "bearer_token_file", "ca",
					    "cert", "key", "spool_max_bytes", NULL };
	static const char *const files[] = { "basic_auth_file", "bearer_token_file", "ca", "cert", "key" };
	char *const dest[] = { e->basic_auth_file, e->bearer_token_file, e->ca, e->cert, e->key };
	const struct ynode *v;
	char why[400];

	if (!n || n->bad)
		return;
	if (n->type != YNODE_MAP) {
		error_node(c, n, "export must be a mapping (url, tenant, basic_auth_file, ...), not %s",
			   describe(n));
		return;
	}
	check_keys(c, n, "export", keys);
	e->set = 1;
	v = export_string(c, n, "url", e->url, sizeof(e->url));
	if (v) {
		struct exporturl u;

		if (exporturl_parse("export.url", e->url, &u, why, sizeof(why)))
			error_node(c, v, "%s", why);
	}
	v = export_string(c, n, "tenant", e->tenant, sizeof(e->tenant));
	if (v && exporturl_check_tenant("export.tenant", e->tenant, why, sizeof(why)))
		error_node(c, v, "%s", why);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[64];

		snprintf(path, sizeof(path), "export.%s", files[i]);
		v = export_string(c, n, files[i], dest[i], POLICY_EXPORT_PATH_MAX + 1);
		if (v && exporturl_check_file(path, dest[i], why, sizeof(why)))
			error_node(c, v, "%s", why);
	}
	if (e->basic_auth_file[0] && e->bearer_token_file[0])
		error_node(c, n, "export: basic_auth_file and bearer_token_file: choose one");
	if (!e->cert[0] != !e->key[0])
		error_node(c, n, "export: cert and key go together (a client certificate and its key)");
	v = yamltree_get(n, "spool_max_bytes");
	if (v && !v->bad) {
		unsigned long long b;
		char *end;

		errno = 0;
		if (v->type != YNODE_SCALAR || yamltree_kind(v) != YSCALAR_INT || v->str[0] == '-' ||
		    (b = strtoull(v->str, &end, 10), errno || *end) || b < POLICY_MIN_SPOOL_BYTES ||
		    b > POLICY_MAX_SPOOL_BYTES)
			error_node(c, v, "export.spool_max_bytes must be a whole number of bytes from %llu to "
				   "%llu, got %s", POLICY_MIN_SPOOL_BYTES, POLICY_MAX_SPOOL_BYTES, Q(v));
		else
			e->spool_max_bytes = b;
	}
}

static int validate(struct ctx *c, const struct ynode *root, struct policy **ret)
{
	static const char *const top_keys[] = { "version", "serial", "defaults", "tenants", "export", NULL };
	struct policy_export exp = { 0 };
	static const char *const def_keys[] = { "hz", "budget", "unwind", NULL };
	enum policy_unwind dunwind = POLICY_UNWIND_DWARF;
	const struct ynode *version, *serial_node, *defaults, *tenants;
	uint64_t serial = 0;
	unsigned dhz[3];
	double dbudget = POLICY_BUILTIN_OVERHEAD_PERCENT;
	struct block db = { 0 };
	struct tparse *t = NULL;
	size_t nt = 0;
	int r = 0;

	if (!root || (root->type == YNODE_SCALAR && !root->bad &&
		      yamltree_kind(root) == YSCALAR_NULL)) {
		error_at(c, 1, 1, "policy is empty: expected a mapping with version, defaults and tenants");
		return -EBADMSG;
	}
	if (root->bad)
		return -EBADMSG;
	if (root->type != YNODE_MAP) {
		error_node(c, root, "the policy must be a mapping with version, defaults and tenants, not %s",
			   describe(root));
		return -EBADMSG;
	}
	check_keys(c, root, "", top_keys);

	version = yamltree_get(root, "version");
	if (!version)
		error_node(c, root, "missing key \"version\" (write \"version: %d\")", POLICY_VERSION);
	else
		read_version(c, version);
	serial_node = yamltree_get(root, "serial");
	if (serial_node)
		read_serial(c, serial_node, &serial);

	/* Built-in defaults, then what "defaults" says, field by field. */
	dhz[HZ_MAX] = POLICY_BUILTIN_HZ_MAX < c->max_hz ? POLICY_BUILTIN_HZ_MAX : c->max_hz;
	dhz[HZ_MIN] = POLICY_BUILTIN_HZ_MIN;
	defaults = yamltree_get(root, "defaults");
	if (defaults && !defaults->bad && defaults->type != YNODE_MAP) {
		error_node(c, defaults, "defaults must be a mapping with hz and budget, not %s",
			   describe(defaults));
		defaults = NULL;
		db.hz_bad = true;
	} else if (defaults && defaults->bad) {
		defaults = NULL;
		db.hz_bad = true;
	}
	if (defaults) {
		check_keys(c, defaults, "defaults", def_keys);
		read_hz(c, yamltree_get(defaults, "hz"), "defaults", &db, dhz);
	}
	/* An unwritten start follows min and max into range. */
	if (!db.hz_node[HZ_START]) {
		unsigned lo = dhz[HZ_MIN], hi = dhz[HZ_MAX];

		dhz[HZ_START] = POLICY_BUILTIN_HZ_START;
		if (dhz[HZ_START] > hi)
			dhz[HZ_START] = hi;
		if (dhz[HZ_START] < lo)
			dhz[HZ_START] = lo;
	}
	check_hz_order(c, &db, "defaults", dhz, " (built in)");
	if (defaults) {
		read_budget(c, yamltree_get(defaults, "budget"), "defaults", &db, &dbudget);
		read_unwind(c, yamltree_get(defaults, "unwind"), "defaults", &dunwind);
	}

	read_export(c, yamltree_get(root, "export"), &exp);

	tenants = yamltree_get(root, "tenants");
	if (tenants && !tenants->bad && tenants->type != YNODE_SEQ &&
	    !(tenants->type == YNODE_SCALAR && yamltree_kind(tenants) == YSCALAR_NULL)) {
		error_node(c, tenants, "tenants must be a list, not %s", describe(tenants));
	} else if (tenants && tenants->type == YNODE_SEQ) {
		t = calloc(tenants->n_kids ? tenants->n_kids : 1, sizeof(*t));
		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < tenants->n_kids; i++) {
			if (i == POLICY_MAX_TENANTS) {
				error_node(c, tenants->kids[i], "more than %u tenants",
					   POLICY_MAX_TENANTS);
				break;
			}
			r = read_tenant(c, tenants->kids[i], i, &t[i], t, dhz, db.hz_bad, dbudget,
					dunwind);
			nt++;
			if (r < 0)
				goto out;
		}
		c->work = OVERLAP_WORK;
		r = check_overlaps(c, tenants, t, nt);
		if (r < 0)
			goto out;
	}

	if (c->n_errors == 0) {
		r = build(t, nt, dhz, dbudget, dunwind, ret);
		if (r == 0) {
			(*ret)->serial = serial;
			(*ret)->export = exp;
		}
	} else
		r = -EBADMSG;
out:
	for (size_t i = 0; i < nt; i++)
		tparse_release(&t[i]);
	free(t);
	return r;
}

int policy_parse(const char *buf, size_t len, const char *filename, unsigned max_hz,
		 struct policy **ret, struct policy_errors *errs)
{
	static const struct yamltree_limits lim = {
		.max_depth = POLICY_MAX_DEPTH,
		.max_nodes = POLICY_MAX_NODES,
	};
	struct ctx c = {
		.filename = filename ? filename : "policy",
		.max_hz = max_hz,
		.errs = errs,
	};
	struct ynode *root = NULL;
	struct policy *p = NULL;
	int r;

	if (errs)
		memset(errs, 0, sizeof(*errs));
	if ((!buf && len) || !ret || max_hz == 0)
		return -EINVAL;
	if (len > POLICY_MAX_SIZE) {
		error_at(&c, 1, 1, "policy is larger than %u bytes", POLICY_MAX_SIZE);
		return -EBADMSG;
	}
	r = yamltree_parse(buf ? buf : "", len, &lim, yaml_error, &c, &root);
	if (r == 0)
		r = validate(&c, root, &p);
	yamltree_free(root);
	if (r == 0 && c.n_errors)
		r = -EBADMSG;	/* defensive: never return a policy with errors */
	if (errs)
		errors_sort(errs);
	if (r < 0) {
		policy_free(p);
		return r;
	}
	*ret = p;
	return 0;
}

int policy_load_file(const char *path, unsigned max_hz, struct policy **ret,
		     struct policy_errors *errs)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, r;

	if (errs)
		memset(errs, 0, sizeof(*errs));
	if (!path || !ret || max_hz == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		goto out;
	}
	/* Read one byte past the limit to know that there was more. */
	buf = malloc(POLICY_MAX_SIZE + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, POLICY_MAX_SIZE + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == POLICY_MAX_SIZE + 1)
			break;
	}
	r = policy_parse(buf, len, path, max_hz, ret, errs);
out:
	free(buf);
	close(fd);
	return r;
}

int policy_new_default(unsigned hz, struct policy **ret)
{
	unsigned v[3] = { hz, hz, hz };
	struct policy *p;
	int r;

	if (hz == 0 || !ret)
		return -EINVAL;
	r = build(NULL, 0, v, POLICY_MAX_OVERHEAD_PERCENT, POLICY_UNWIND_DWARF, &p);
	if (r < 0)
		return r;
	*ret = p;
	return 0;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_tenants; i++) {
		struct policy_tenant *t = &p->tenants[i];

		for (size_t s = 0; s < t->n_cgroups; s++)
			free(t->cgroups[s]);
		if (t->sel)
			for (size_t s = 0; s < t->n_cgroups; s++)
				selector_release(&t->sel[s]);
		free(t->sel);
		free(t->cgroups);
		free(t->name);
	}
	free(p->tenants);
	free(p);
}

static bool selector_match(const struct policy_selector *s, const char *path)
{
	const char *p = path;
	char name[CGGLOB_NAME_MAX + 1];

	for (size_t k = 0; k < s->n_comp; k++) {
		const char *q;
		size_t len;

		while (*p == '/')
			p++;
		if (!*p)
			return false;	/* the path is above the selector */
		q = strchrnul(p, '/');
		len = (size_t)(q - p);
		if (len > CGGLOB_NAME_MAX)
			return false;
		memcpy(name, p, len);
		name[len] = '\0';
		if (fnmatch(s->comp[k], name, FNM_NOESCAPE) != 0)
			return false;
		p = q;
	}
	return true;
}

int policy_match(const struct policy *p, const char *cgroup_path)
{
	if (!p || !cgroup_path || cgroup_path[0] != '/')
		return POLICY_DEFAULT_TENANT;
	for (size_t t = 1; t < p->n_tenants; t++)
		for (size_t s = 0; s < p->tenants[t].n_cgroups; s++)
			if (selector_match(&p->tenants[t].sel[s], cgroup_path))
				return (int)t;
	return POLICY_DEFAULT_TENANT;
}

int policy_find(const struct policy *p, const char *name)
{
	if (!p || !name)
		return -ENOENT;
	for (size_t t = 0; t < p->n_tenants; t++)
		if (!strcmp(p->tenants[t].name, name))
			return (int)t;
	return -ENOENT;
}
