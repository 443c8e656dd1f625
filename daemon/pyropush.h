/*
 * pyropush.h - Grafana Pyroscope push requests: the label set of a
 * series, checked against the rules Pyroscope's distributor applies, and
 * the PushRequest body that carries one gzip pprof profile for each of an
 * interval's series (and the rule that cuts an interval into parts).
 *
 * Pyroscope's rules (grafana/pyroscope pkg/validation/validate.go,
 * ValidateLabels; limits from pkg/validation/limits.go, their defaults):
 * at most 30 labels, names at most 1024 bytes, values at most 2048 bytes,
 * a valid __name__, a non-empty service_name, no duplicate names, values
 * valid UTF-8, names of [a-zA-Z_][a-zA-Z0-9_]* (a '.' is rewritten to '_'
 * by the distributor, SanitizeLegacyLabelName: we do the same here, so the
 * series is named the same on both sides).  The labels are sorted by name
 * (byte order) as the distributor sorts them.
 *
 * Runs in the collector (building the PushRequest of each spool file), in
 * the uplink (checking the --label's it was given) and in the monitor at
 * start (checking the agent's --label).  Library-like: 0 or -errno, never logs; a one-line
 * reason in err where there is one.
 */
#ifndef VIGIL_PYROPUSH_H
#define VIGIL_PYROPUSH_H

#include <stddef.h>
#include <stdint.h>

#define PYROPUSH_MAX_LABELS 30
#define PYROPUSH_NAME_MAX 1024
#define PYROPUSH_VALUE_MAX 2048
/* service_name, __name__, host, tenant: what is left is for --label */
#define PYROPUSH_FIXED_LABELS 4
#define PYROPUSH_METRIC "process_cpu"

struct pyropush_label {
	char *name;  /* malloc'd, owned by the set */
	char *value;
};

struct pyropush_labels {
	size_t n;
	struct pyropush_label l[PYROPUSH_MAX_LABELS];
};

/*
 * Check the agent's labels ("k=v" strings) for a series: each name valid
 * once '.' became '_', none of service_name, __name__, host, tenant (set by
 * vigild), no two with one name, at most PYROPUSH_MAX_LABELS -
 * PYROPUSH_FIXED_LABELS, lengths within the limits, values UTF-8.  0, or
 * -EINVAL with err naming the label, the rule and the fix.
 */
int pyropush_check_agent_labels(const char *const *kv, size_t n, char *err, size_t errlen);

/*
 * The label set of the series (service, host, tenant; kv as above),
 * sorted.  service must be non-empty; it and host are made valid UTF-8
 * (an invalid byte becomes '?') and cut to PYROPUSH_VALUE_MAX bytes at a
 * character boundary; tenant likewise ("" when none: Pyroscope keeps an
 * empty value as no label, so the label is left out).  0 and *ret (release
 * with pyropush_labels_release), -EINVAL (err says why), -ENOMEM.
 */
int pyropush_labels_build(const char *service, const char *host, const char *tenant,
			  const char *const *kv, size_t n, struct pyropush_labels *ret, char *err,
			  size_t errlen);

void pyropush_labels_release(struct pyropush_labels *l);

/*
 * The length of the longest prefix of s[0..len) that is at most max bytes
 * and does not cut a UTF-8 sequence (s must be valid UTF-8).
 */
size_t pyropush_utf8_cut(const char *s, size_t len, size_t max);

/* One series of a PushRequest: its labels and its one profile.  All borrowed. */
struct pyropush_series {
	const struct pyropush_labels *labels;
	const void *profile;  /* gzip pprof: RawSample.raw_profile */
	size_t len;
	size_t raw_len;       /* the pprof's size uncompressed (for pyropush_part) */
	const char *id;       /* RawSample.ID, NULL: "" */
};

/*
 * Pyroscope's distributor charges a push's uncompressed profile bytes
 * (totalPushUncompressedBytes) against the tenant's ingestion burst,
 * 2 MB by default (grafana/pyroscope pkg/distributor, pkg/validation
 * limits.go): a larger request is refused with 429 however often it is
 * retried.  A part stays at half of it.
 */
#define PYROPUSH_PART_RAW_MAX (1u << 20)

/*
 * How many of the series v[0..n), taken in order, go into the next
 * PushRequest: as many as keep the sum of their raw_len within raw_max and
 * the encoded request within body_max; at least 1 when n > 0 (a series
 * larger than either is a request of its own).  0 when n is 0.
 */
size_t pyropush_part(const struct pyropush_series *v, size_t n, size_t raw_max, size_t body_max);

/*
 * PushRequest{ series: [ RawProfileSeries{ labels, samples: [ RawSample{
 * raw_profile, ID } ] } ... ] }, one RawProfileSeries per v[i], in order,
 * serialized.  0 and *ret_buf (malloc'd, the caller frees) and *ret_len,
 * or -ENOMEM / -EINVAL (n 0, a series without a profile or with too many
 * labels).
 */
int pyropush_encode_series(const struct pyropush_series *v, size_t n, uint8_t **ret_buf,
			   size_t *ret_len);

/* pyropush_encode_series of the one series (l, profile, id). */
int pyropush_encode(const struct pyropush_labels *l, const void *profile, size_t len, const char *id,
		    uint8_t **ret_buf, size_t *ret_len);

/*
 * The samples in a pprof Profile (uncompressed): occurrences of its field
 * 2 (repeated Sample sample = 2, github.com/google/pprof
 * proto/profile.proto), counted by walking the top-level fields only.
 * 0 and *ret, or -EINVAL (not protobuf).
 */
int pyropush_count_samples(const uint8_t *pprof, size_t len, uint64_t *ret);

/*
 * What a serialized PushRequest holds: its series, and the pprof samples
 * of all their profiles (each raw_profile inflated up to max_raw bytes and
 * counted as pyropush_count_samples does; one that does not inflate or
 * parse counts as none).  0, -EINVAL (not a PushRequest), -ENOMEM.
 */
int pyropush_request_count(const uint8_t *body, size_t len, size_t max_raw, uint64_t *ret_series,
			   uint64_t *ret_samples);

#endif
