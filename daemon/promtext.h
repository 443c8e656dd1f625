/*
 * promtext.h - a writer of the Prometheus text exposition format, version
 * 0.0.4, into a buffer of fixed size.
 *
 * Library-like: no allocation, no logging; shared by vigild's uplink and
 * vigil-cp.  The format is Prometheus' "Exposition formats" document:
 * "# HELP name text" and "# TYPE name type" once per family, before its
 * samples; then one "name{label="value",...} value" line per sample.  In
 * HELP text a backslash and a line feed are escaped (\\, \n); in label
 * values a double quote too (\").  Counters are named with their _total
 * (the family's name includes it in 0.0.4 text); names use base units
 * (seconds, bytes, ratios), which is the caller's part.
 *
 * A family's samples must follow its promtext_family() call with no other
 * family in between: the format does not allow a family to be split.
 */
#ifndef VIGIL_PROMTEXT_H
#define VIGIL_PROMTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Families one page may declare (each is remembered to write HELP/TYPE once). */
#define PROMTEXT_MAX_FAMILIES 96
#define PROMTEXT_MAX_NAME 128

/* The Content-Type of a page (exposition format 0.0.4). */
#define PROMTEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum promtext_type {
	PROMTEXT_COUNTER,
	PROMTEXT_GAUGE,
	PROMTEXT_HISTOGRAM,
};

struct promtext_label {
	const char *name;
	const char *value;
};

struct promtext {
	char *buf;
	size_t cap, len;
	int err;                /* the first error: every later call returns it */
	size_t nfamilies;
	char families[PROMTEXT_MAX_FAMILIES][PROMTEXT_MAX_NAME];
	char current[PROMTEXT_MAX_NAME]; /* the family whose samples may follow */
	enum promtext_type current_type;
};

/* Start a page in buf (cap bytes; the text is NUL-terminated while it fits). */
void promtext_init(struct promtext *p, char *buf, size_t cap);

/*
 * Declare a family: its HELP and TYPE lines, unless it was declared on
 * this page already (then its samples may follow again only if it is the
 * current family).  A counter's name must end in _total.  0, -EINVAL (bad
 * name, a counter without _total, the same name with another type, or a
 * declared family that is not the current one), -ENOBUFS (the buffer is
 * full), -E2BIG (too many families).
 */
int promtext_family(struct promtext *p, const char *name, enum promtext_type type, const char *help);

/*
 * One sample of the current family (a counter or gauge): name is the
 * family's, labels[0..nlabels) in the order given.  Label names are
 * checked ([a-zA-Z_][a-zA-Z0-9_]*, not "__"-prefixed), values escaped.
 * 0, -EINVAL, -ENOBUFS.
 */
int promtext_sample(struct promtext *p, const char *name, const struct promtext_label *labels,
		    size_t nlabels, double value);

/* The same with a whole number, printed exactly (counters past 2^53 stay exact). */
int promtext_sample_u64(struct promtext *p, const char *name, const struct promtext_label *labels,
			size_t nlabels, uint64_t value);

/*
 * One histogram of the current family (declared PROMTEXT_HISTOGRAM):
 * counts[i] observations fell in (bounds[i-1], bounds[i]] (bounds rising),
 * counts[nbounds] above the last bound; written as cumulative
 * name_bucket{le=...} lines, le="+Inf", name_sum and name_count.
 * 0, -EINVAL (bounds not rising), -ENOBUFS.
 */
int promtext_histogram(struct promtext *p, const char *name, const struct promtext_label *labels,
		       size_t nlabels, const double *bounds, const uint64_t *counts, size_t nbounds,
		       double sum);

/* 0 while everything fitted, else the first error. */
int promtext_error(const struct promtext *p);

/* Bytes written (without the NUL). */
size_t promtext_len(const struct promtext *p);

#endif
