/*
 * pyropush.c - Pyroscope series labels and the PushRequest body (see
 * pyropush.h).  Runs in the collector (the bodies), the uplink and the
 * monitor at start (the check of --label).  Library-like, never logs.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gzip.h"
#include "push.pb-c.h"
#include "pyropush.h"

static const char *const reserved[] = { "service_name", "__name__", "host", "tenant" };

/* Bytes of the valid UTF-8 sequence at s (at most len), or 0 (RFC 3629, section 4). */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static bool utf8_valid(const char *s)
{
	size_t len = strlen(s);

	for (size_t i = 0; i < len;) {
		size_t k = utf8_seq((const unsigned char *)s + i, len - i);

		if (!k)
			return false;
		i += k;
	}
	return true;
}

size_t pyropush_utf8_cut(const char *s, size_t len, size_t max)
{
	size_t i = 0;

	while (i < len) {
		size_t k = utf8_seq((const unsigned char *)s + i, len - i);

		if (!k)
			k = 1;
		if (i + k > max)
			break;
		i += k;
	}
	return i;
}

/* A malloc'd copy of s, valid UTF-8 ('?' for each invalid byte), at most PYROPUSH_VALUE_MAX bytes. */
static char *value_dup(const char *s)
{
	size_t len = strlen(s), o = 0;
	char *d = malloc(len + 1);

	if (!d)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t k = utf8_seq((const unsigned char *)s + i, len - i);

		if (k) {
			memcpy(d + o, s + i, k);
			o += k;
			i += k;
		} else {
			d[o++] = '?';
			i++;
		}
	}
	d[pyropush_utf8_cut(d, o, PYROPUSH_VALUE_MAX)] = '\0';
	return d;
}

/*
 * A label name as the distributor takes it: [a-zA-Z_][a-zA-Z0-9_]*, with
 * '.' allowed anywhere and rewritten to '_' (SanitizeLegacyLabelName).
 * Writes the rewritten name to out (size PYROPUSH_NAME_MAX + 1).
 */
static bool name_ok(const char *s, size_t len, char *out)
{
	if (len == 0 || len > PYROPUSH_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.')
			c = '_';
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			   (c >= '0' && c <= '9' && i > 0)))
			return false;
		out[i] = c;
	}
	out[len] = '\0';
	return true;
}

int pyropush_check_agent_labels(const char *const *kv, size_t n, char *err, size_t errlen)
{
	static char names[PYROPUSH_MAX_LABELS][PYROPUSH_NAME_MAX + 1];

	if (n > PYROPUSH_MAX_LABELS - PYROPUSH_FIXED_LABELS) {
		snprintf(err, errlen, "--label: %zu labels, but Pyroscope takes at most %d on a series and "
			 "vigild sets %d (service_name, __name__, host, tenant): give at most %d", n,
			 PYROPUSH_MAX_LABELS, PYROPUSH_FIXED_LABELS,
			 PYROPUSH_MAX_LABELS - PYROPUSH_FIXED_LABELS);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(kv[i], '=');
		size_t kl = eq ? (size_t)(eq - kv[i]) : 0;

		if (!eq || !name_ok(kv[i], kl, names[i])) {
			snprintf(err, errlen, "--label '%.100s': with export on, a key must be a Pyroscope label "
				 "name: letters, digits, '_' and '.' (sent as '_'), not starting with a digit, "
				 "at most %d bytes", kv[i], PYROPUSH_NAME_MAX);
			return -EINVAL;
		}
		for (size_t r = 0; r < sizeof(reserved) / sizeof(reserved[0]); r++) {
			if (!strcmp(names[i], reserved[r])) {
				snprintf(err, errlen, "--label '%.100s': %s is set by vigild on every series "
					 "it exports: choose another key", kv[i], reserved[r]);
				return -EINVAL;
			}
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(names[i], names[j])) {
				snprintf(err, errlen, "--label '%.100s': the key %s is given twice (a '.' "
					 "counts as '_'): Pyroscope refuses duplicate label names", kv[i],
					 names[i]);
				return -EINVAL;
			}
		}
		if (strlen(eq + 1) > PYROPUSH_VALUE_MAX || !utf8_valid(eq + 1)) {
			snprintf(err, errlen, "--label '%.100s': a value must be UTF-8 of at most %d bytes",
				 kv[i], PYROPUSH_VALUE_MAX);
			return -EINVAL;
		}
	}
	return 0;
}

void pyropush_labels_release(struct pyropush_labels *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->l[i].name);
		free(l->l[i].value);
	}
	l->n = 0;
}

static int add(struct pyropush_labels *l, const char *name, size_t nlen, const char *value)
{
	struct pyropush_label *p = &l->l[l->n];

	p->name = strndup(name, nlen);
	p->value = value_dup(value);
	if (!p->name || !p->value) {
		free(p->name);
		free(p->value);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct pyropush_label *)a)->name, ((const struct pyropush_label *)b)->name);
}

int pyropush_labels_build(const char *service, const char *host, const char *tenant,
			  const char *const *kv, size_t n, struct pyropush_labels *ret, char *err,
			  size_t errlen)
{
	struct pyropush_labels l = { 0 };
	int rc;

	if (!service || !*service) {
		snprintf(err, errlen, "no service name: Pyroscope needs a non-empty service_name");
		return -EINVAL;
	}
	rc = pyropush_check_agent_labels(kv, n, err, errlen);
	if (rc)
		return rc;
	rc = add(&l, "service_name", 12, service);
	if (!rc)
		rc = add(&l, "__name__", 8, PYROPUSH_METRIC);
	if (!rc && host && *host)
		rc = add(&l, "host", 4, host);
	if (!rc && tenant && *tenant)
		rc = add(&l, "tenant", 6, tenant);
	for (size_t i = 0; i < n && !rc; i++) {
		const char *eq = strchr(kv[i], '=');

		rc = add(&l, kv[i], (size_t)(eq - kv[i]), eq + 1);
		if (!rc)
			for (char *c = l.l[l.n - 1].name; *c; c++)
				if (*c == '.')
					*c = '_';
	}
	if (rc) {
		pyropush_labels_release(&l);
		return rc;
	}
	qsort(l.l, l.n, sizeof(l.l[0]), by_name);
	*ret = l;
	return 0;
}

/* The protobuf-c view of one series; pairs and pp: room for PYROPUSH_MAX_LABELS. */
static int series_view(const struct pyropush_series *v, Push__V1__RawProfileSeries *series,
		       Push__V1__RawSample *sample, Push__V1__RawSample **smp, Push__V1__LabelPair *pairs,
		       Push__V1__LabelPair **pp)
{
	const struct pyropush_labels *l = v->labels;

	if (!l || l->n > PYROPUSH_MAX_LABELS || !v->profile || !v->len)
		return -EINVAL;
	/* the _init functions, not the INIT macros (which cast const away) */
	push__v1__raw_profile_series__init(series);
	push__v1__raw_sample__init(sample);
	for (size_t i = 0; i < l->n; i++) {
		push__v1__label_pair__init(&pairs[i]);
		pairs[i].name = l->l[i].name;
		pairs[i].value = l->l[i].value;
		pp[i] = &pairs[i];
	}
	series->n_labels = l->n;
	series->labels = pp;
	sample->raw_profile.data = (uint8_t *)(uintptr_t)v->profile;
	sample->raw_profile.len = v->len;
	sample->id = (char *)(uintptr_t)(v->id ? v->id : "");
	*smp = sample;
	series->n_samples = 1;
	series->samples = smp;
	return 0;
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* The bytes series v adds to a PushRequest: key, length, message (field 1, length-delimited). */
static size_t series_bytes(const struct pyropush_series *v)
{
	Push__V1__RawProfileSeries series;
	Push__V1__RawSample sample, *smp;
	Push__V1__LabelPair pairs[PYROPUSH_MAX_LABELS], *pp[PYROPUSH_MAX_LABELS];
	size_t n;

	if (series_view(v, &series, &sample, &smp, pairs, pp))
		return SIZE_MAX / 4;
	n = push__v1__raw_profile_series__get_packed_size(&series);
	return 1 + varint_len(n) + n;
}

size_t pyropush_part(const struct pyropush_series *v, size_t n, size_t raw_max, size_t body_max)
{
	size_t raw = 0, body = 0, k;

	for (k = 0; k < n; k++) {
		size_t b = series_bytes(&v[k]);

		if (k > 0 && (v[k].raw_len > raw_max - raw || b > body_max - body))
			break;
		raw += v[k].raw_len < raw_max - raw ? v[k].raw_len : raw_max - raw;
		body += b < body_max - body ? b : body_max - body;
	}
	return k;
}

int pyropush_encode_series(const struct pyropush_series *v, size_t n, uint8_t **ret_buf,
			   size_t *ret_len)
{
	Push__V1__PushRequest req;
	struct view {
		Push__V1__RawProfileSeries series;
		Push__V1__RawSample sample, *smp;
		Push__V1__LabelPair pairs[PYROPUSH_MAX_LABELS], *pp[PYROPUSH_MAX_LABELS];
	} *views;
	Push__V1__RawProfileSeries **sp;
	uint8_t *buf = NULL;
	size_t len;
	int rc = 0;

	if (!n)
		return -EINVAL;
	views = calloc(n, sizeof(*views));
	sp = calloc(n, sizeof(*sp));
	if (!views || !sp) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		rc = series_view(&v[i], &views[i].series, &views[i].sample, &views[i].smp,
				 views[i].pairs, views[i].pp);
		sp[i] = &views[i].series;
	}
	if (rc)
		goto out;
	push__v1__push_request__init(&req);
	req.n_series = n;
	req.series = sp;
	len = push__v1__push_request__get_packed_size(&req);
	buf = malloc(len ? len : 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	push__v1__push_request__pack(&req, buf);
	*ret_buf = buf;
	*ret_len = len;
out:
	free(views);
	free(sp);
	return rc;
}

int pyropush_encode(const struct pyropush_labels *l, const void *profile, size_t len, const char *id,
		    uint8_t **ret_buf, size_t *ret_len)
{
	const struct pyropush_series v = { .labels = l, .profile = profile, .len = len, .id = id };

	return pyropush_encode_series(&v, 1, ret_buf, ret_len);
}

/* A base-128 varint (protobuf encoding) at *p; false when it runs past end or 10 bytes. */
static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return true;
		}
	}
	return false;
}

int pyropush_count_samples(const uint8_t *pprof, size_t len, uint64_t *ret)
{
	const uint8_t *p = pprof, *end = pprof + len;
	uint64_t n = 0, key, v;

	while (p < end) {
		if (!varint(&p, end, &key))
			return -EINVAL;
		switch (key & 7) {
		case 0: /* varint */
			if (!varint(&p, end, &v))
				return -EINVAL;
			break;
		case 1: /* 64-bit */
			if ((size_t)(end - p) < 8)
				return -EINVAL;
			p += 8;
			break;
		case 2: /* length-delimited */
			if (!varint(&p, end, &v) || v > (uint64_t)(end - p))
				return -EINVAL;
			p += v;
			if (key >> 3 == 2)
				n++;
			break;
		case 5: /* 32-bit */
			if ((size_t)(end - p) < 4)
				return -EINVAL;
			p += 4;
			break;
		default:
			return -EINVAL;
		}
	}
	*ret = n;
	return 0;
}

int pyropush_request_count(const uint8_t *body, size_t len, size_t max_raw, uint64_t *ret_series,
			   uint64_t *ret_samples)
{
	Push__V1__PushRequest *req = push__v1__push_request__unpack(NULL, len, body);
	uint64_t samples = 0;

	if (!req)
		return -EINVAL;
	for (size_t i = 0; i < req->n_series; i++) {
		for (size_t j = 0; j < req->series[i]->n_samples; j++) {
			const ProtobufCBinaryData *gz = &req->series[i]->samples[j]->raw_profile;
			uint8_t *raw;
			size_t rawlen;
			uint64_t n;

			if (gzip_decompress(gz->data, gz->len, max_raw, &raw, &rawlen))
				continue;
			if (!pyropush_count_samples(raw, rawlen, &n))
				samples += n;
			free(raw);
		}
	}
	*ret_series = req->n_series;
	*ret_samples = samples;
	push__v1__push_request__free_unpacked(req, NULL);
	return 0;
}
