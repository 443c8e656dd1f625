/*
 * promtext.c - Prometheus text exposition format 0.0.4 (see promtext.h).
 *
 * Library-like, runs wherever it is linked (vigild's uplink, vigil-cp);
 * needs no privilege, never logs.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promtext.h"

void promtext_init(struct promtext *p, char *buf, size_t cap)
{
	memset(p, 0, sizeof(*p));
	p->buf = buf;
	p->cap = cap;
	if (cap)
		buf[0] = '\0';
	else
		p->err = -ENOBUFS;
}

int promtext_error(const struct promtext *p)
{
	return p->err;
}

size_t promtext_len(const struct promtext *p)
{
	return p->len;
}

static int fail(struct promtext *p, int err)
{
	if (!p->err)
		p->err = err;
	return p->err;
}

static int put(struct promtext *p, const char *s, size_t n)
{
	if (p->err)
		return p->err;
	if (n >= p->cap - p->len)
		return fail(p, -ENOBUFS);
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
	return 0;
}

static int puts_(struct promtext *p, const char *s)
{
	return put(p, s, strlen(s));
}

/* s with backslash and line feed escaped, and the double quote if quote. */
static int put_escaped(struct promtext *p, const char *s, bool quote)
{
	for (; *s && !p->err; s++) {
		if (*s == '\\')
			put(p, "\\\\", 2);
		else if (*s == '\n')
			put(p, "\\n", 2);
		else if (*s == '"' && quote)
			put(p, "\\\"", 2);
		else
			put(p, s, 1);
	}
	return p->err;
}

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]* ; label names: no ':' and no "__" prefix. */
static bool valid_name(const char *s, bool label)
{
	size_t n = strlen(s);

	if (!n || n >= PROMTEXT_MAX_NAME)
		return false;
	if (label && n >= 2 && s[0] == '_' && s[1] == '_')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  (c == ':' && !label) || (i > 0 && c >= '0' && c <= '9');

		if (!ok)
			return false;
	}
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

int promtext_family(struct promtext *p, const char *name, enum promtext_type type, const char *help)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };

	if (p->err)
		return p->err;
	if (!valid_name(name, false) || (unsigned)type > PROMTEXT_HISTOGRAM ||
	    (type == PROMTEXT_COUNTER && !ends_with(name, "_total")))
		return -EINVAL;
	for (size_t i = 0; i < p->nfamilies; i++) {
		if (strcmp(p->families[i], name))
			continue;
		/* Declared already: only its samples may go on, and only if nothing came between. */
		if (strcmp(p->current, name) || p->current_type != type)
			return -EINVAL;
		return 0;
	}
	if (p->nfamilies == PROMTEXT_MAX_FAMILIES)
		return fail(p, -E2BIG);
	puts_(p, "# HELP ");
	puts_(p, name);
	puts_(p, " ");
	put_escaped(p, help ? help : "", false);
	puts_(p, "\n# TYPE ");
	puts_(p, name);
	puts_(p, " ");
	puts_(p, types[type]);
	puts_(p, "\n");
	if (p->err)
		return p->err;
	snprintf(p->families[p->nfamilies++], PROMTEXT_MAX_NAME, "%s", name);
	snprintf(p->current, sizeof(p->current), "%s", name);
	p->current_type = type;
	return 0;
}

/* name{labels[,extra]} : the part of a sample line before its value. */
static int put_series(struct promtext *p, const char *name, const char *suffix,
		      const struct promtext_label *labels, size_t nlabels, const char *le)
{
	bool any = nlabels || le;

	puts_(p, name);
	if (suffix)
		puts_(p, suffix);
	if (any)
		puts_(p, "{");
	for (size_t i = 0; i < nlabels; i++) {
		if (i)
			puts_(p, ",");
		puts_(p, labels[i].name);
		puts_(p, "=\"");
		put_escaped(p, labels[i].value ? labels[i].value : "", true);
		puts_(p, "\"");
	}
	if (le) {
		puts_(p, nlabels ? ",le=\"" : "le=\"");
		puts_(p, le);
		puts_(p, "\"");
	}
	if (any)
		puts_(p, "}");
	return puts_(p, " ");
}

/*
 * A sample may only follow its family's declaration (the format cannot
 * split a family), and its labels must be valid names.
 */
static int check_sample(struct promtext *p, const char *name, const struct promtext_label *labels,
			size_t nlabels, bool histogram)
{
	if (p->err)
		return p->err;
	if (strcmp(p->current, name) || (p->current_type == PROMTEXT_HISTOGRAM) != histogram)
		return -EINVAL;
	for (size_t i = 0; i < nlabels; i++)
		if (!labels[i].name || !valid_name(labels[i].name, true) ||
		    (histogram && !strcmp(labels[i].name, "le")))
			return -EINVAL;
	return 0;
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64) round-trips; %.17g does the same, longer. */
static void format_double(char *out, size_t len, double v)
{
	if (isnan(v))
		snprintf(out, len, "NaN");
	else if (isinf(v))
		snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		snprintf(out, len, "%.0f", v);
	else {
		/* The shortest of %.15g..%.17g that reads back as the same double. */
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(out, len, "%.*g", prec, v);
			if (strtod(out, NULL) == v)
				break;
		}
	}
}

int promtext_sample(struct promtext *p, const char *name, const struct promtext_label *labels,
		    size_t nlabels, double value)
{
	char num[40];
	int rc = check_sample(p, name, labels, nlabels, false);

	if (rc)
		return rc;
	format_double(num, sizeof(num), value);
	put_series(p, name, NULL, labels, nlabels, NULL);
	puts_(p, num);
	return puts_(p, "\n");
}

int promtext_sample_u64(struct promtext *p, const char *name, const struct promtext_label *labels,
			size_t nlabels, uint64_t value)
{
	char num[24];
	int rc = check_sample(p, name, labels, nlabels, false);

	if (rc)
		return rc;
	snprintf(num, sizeof(num), "%" PRIu64, value);
	put_series(p, name, NULL, labels, nlabels, NULL);
	puts_(p, num);
	return puts_(p, "\n");
}

int promtext_histogram(struct promtext *p, const char *name, const struct promtext_label *labels,
		       size_t nlabels, const double *bounds, const uint64_t *counts, size_t nbounds,
		       double sum)
{
	char num[40], le[40];
	uint64_t cum = 0;
	int rc = check_sample(p, name, labels, nlabels, true);

	if (rc)
		return rc;
	for (size_t i = 1; i < nbounds; i++)
		if (!(bounds[i] > bounds[i - 1]))
			return -EINVAL;
	for (size_t i = 0; i <= nbounds; i++) {
		cum += counts[i];
		if (i < nbounds)
			format_double(le, sizeof(le), bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		snprintf(num, sizeof(num), "%" PRIu64, cum);
		put_series(p, name, "_bucket", labels, nlabels, le);
		puts_(p, num);
		puts_(p, "\n");
	}
	format_double(num, sizeof(num), sum);
	put_series(p, name, "_sum", labels, nlabels, NULL);
	puts_(p, num);
	puts_(p, "\n");
	snprintf(num, sizeof(num), "%" PRIu64, cum);
	put_series(p, name, "_count", labels, nlabels, NULL);
	puts_(p, num);
	return puts_(p, "\n");
}
