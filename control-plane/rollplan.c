/*
 * rollplan.c - the arithmetic of a staged rollout (rollplan.h): stages
 * text, stage sizes, the members' order, durations.  Pure functions; used
 * by vigil-cp's rollout engine and by vigilctl.  Never logs.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "rollplan.h"

/* A decimal number of at most 9 digits (no sign, no spaces); false otherwise. */
static bool rollplan_number(const char *p, size_t n, uint32_t *ret)
{
	uint32_t v = 0;

	if (n == 0 || n > 9)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(p[i] - '0');
	}
	*ret = v;
	return true;
}

int rollplan_parse(const char *text, struct rollplan *ret, char *err, size_t errlen)
{
	struct rollplan p = { 0 };
	const char *s = text;

	if (err && errlen)
		err[0] = '\0';
	if (!text || !*text) {
		snprintf(err, errlen, "empty stages: write e.g. 1,10%%,50%%,100%%");
		return -EINVAL;
	}
	if (strlen(text) > ROLLPLAN_MAX_TEXT) {
		snprintf(err, errlen, "stages longer than %d bytes", ROLLPLAN_MAX_TEXT);
		return -EINVAL;
	}
	for (;;) {
		size_t n = strcspn(s, ","), k = p.n + 1;
		struct rollplan_stage st = { 0 };

		if (p.n == ROLLPLAN_MAX_STAGES) {
			snprintf(err, errlen, "more than %d stages", ROLLPLAN_MAX_STAGES);
			return -EINVAL;
		}
		if (n == 0) {
			snprintf(err, errlen, "stage %zu: empty (stages are N or P%%, comma-separated)", k);
			return -EINVAL;
		}
		st.percent = s[n - 1] == '%';
		if (!rollplan_number(s, st.percent ? n - 1 : n, &st.value)) {
			snprintf(err, errlen, "stage %zu: \"%.*s\" is neither a count N nor a percentage P%%", k,
				 (int)(n > 32 ? 32 : n), s);
			return -EINVAL;
		}
		if (st.value == 0) {
			snprintf(err, errlen, "stage %zu: %s covers no agent (the smallest stage is 1 or 1%%)", k,
				 st.percent ? "0%" : "0");
			return -EINVAL;
		}
		if (st.percent && st.value > 100) {
			snprintf(err, errlen, "stage %zu: %u%% is over 100%%", k, st.value);
			return -EINVAL;
		}
		if (!st.percent && st.value > ROLLPLAN_MAX_COUNT) {
			snprintf(err, errlen, "stage %zu: %u is over %u agents", k, st.value, ROLLPLAN_MAX_COUNT);
			return -EINVAL;
		}
		/* Two terms of one kind compare without knowing the member count. */
		for (size_t j = p.n; j-- > 0;) {
			if (p.s[j].percent != st.percent)
				continue;
			if (p.s[j].value > st.value) {
				snprintf(err, errlen, "stage %zu: %u%s is smaller than stage %zu's %u%s (stages never shrink)",
					 k, st.value, st.percent ? "%" : "", j + 1, p.s[j].value,
					 st.percent ? "%" : "");
				return -EINVAL;
			}
			break;
		}
		p.s[p.n++] = st;
		if (!s[n])
			break;
		s += n + 1;
	}
	*ret = p;
	return 0;
}

int rollplan_sizes(const struct rollplan *p, size_t members, size_t ret_sizes[ROLLPLAN_MAX_STAGES],
		   char *err, size_t errlen)
{
	size_t sizes[ROLLPLAN_MAX_STAGES];

	if (err && errlen)
		err[0] = '\0';
	for (size_t k = 0; k < p->n && k < ROLLPLAN_MAX_STAGES; k++) {
		size_t sz = p->s[k].percent ? (members * p->s[k].value + 99) / 100 : p->s[k].value;

		if (sz > members)
			sz = members;
		if (sz == 0 && members > 0)
			sz = 1;
		if (k > 0 && sz < sizes[k - 1]) {
			snprintf(err, errlen,
				 "stage %zu (%u%s) covers %zu of %zu agents, fewer than stage %zu's %zu (stages never shrink)",
				 k + 1, p->s[k].value, p->s[k].percent ? "%" : "", sz, members, k, sizes[k - 1]);
			return -EINVAL;
		}
		sizes[k] = sz;
	}
	memcpy(ret_sizes, sizes, p->n * sizeof(sizes[0]));
	return 0;
}

size_t rollplan_stage_of(const size_t sizes[], size_t n, size_t rank)
{
	for (size_t k = 0; k < n; k++)
		if (rank < sizes[k])
			return k;
	return n;
}

bool rollplan_covers_all(const size_t sizes[], size_t n, size_t members)
{
	return n > 0 && sizes[n - 1] >= members;
}

void rollplan_key(int64_t id, const uint8_t uid[ROLLPLAN_UID_LEN], uint8_t ret_key[32])
{
	uint8_t buf[8 + ROLLPLAN_UID_LEN];
	uint64_t be = htobe64((uint64_t)id);

	memcpy(buf, &be, 8);
	memcpy(buf + 8, uid, ROLLPLAN_UID_LEN);
	SHA256(buf, sizeof(buf), ret_key);
}

struct rollplan_keyed {
	uint8_t key[32];
	uint8_t uid[ROLLPLAN_UID_LEN];
};

static int rollplan_cmp(const void *a, const void *b)
{
	const struct rollplan_keyed *x = a, *y = b;
	int c = memcmp(x->key, y->key, sizeof(x->key));

	return c ? c : memcmp(x->uid, y->uid, sizeof(x->uid));
}

int rollplan_order(int64_t id, uint8_t (*uids)[ROLLPLAN_UID_LEN], size_t n)
{
	struct rollplan_keyed *k;

	if (n == 0)
		return 0;
	k = calloc(n, sizeof(*k));
	if (!k)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		memcpy(k[i].uid, uids[i], ROLLPLAN_UID_LEN);
		rollplan_key(id, uids[i], k[i].key);
	}
	qsort(k, n, sizeof(*k), rollplan_cmp);
	for (size_t i = 0; i < n; i++)
		memcpy(uids[i], k[i].uid, ROLLPLAN_UID_LEN);
	free(k);
	return 0;
}

static const struct {
	const char *unit;
	int64_t ms;
} rollplan_units[] = {
	{ "d", 24LL * 3600 * 1000 }, { "h", 3600LL * 1000 }, { "m", 60LL * 1000 }, { "s", 1000 }, { "ms", 1 },
};

int rollplan_duration(const char *text, int64_t *ret_ms, char *err, size_t errlen)
{
	size_t digits;
	uint32_t v;

	if (err && errlen)
		err[0] = '\0';
	if (!text || !*text) {
		snprintf(err, errlen, "empty duration: write e.g. 30s, 5m or 1h");
		return -EINVAL;
	}
	digits = strspn(text, "0123456789");
	if (!rollplan_number(text, digits, &v)) {
		snprintf(err, errlen, "\"%.32s\" is not a duration: write a number and a unit, e.g. 30s, 5m or 1h",
			 text);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(rollplan_units) / sizeof(rollplan_units[0]); i++) {
		if (strcmp(text + digits, rollplan_units[i].unit) != 0)
			continue;
		if ((int64_t)v > ROLLPLAN_MAX_DURATION_MS / rollplan_units[i].ms) {
			snprintf(err, errlen, "%.32s is longer than 30 days", text);
			return -EINVAL;
		}
		*ret_ms = (int64_t)v * rollplan_units[i].ms;
		return 0;
	}
	snprintf(err, errlen, "\"%.32s\": unknown or missing unit (want ms, s, m, h or d)", text);
	return -EINVAL;
}

void rollplan_format_duration(int64_t ms, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(rollplan_units) / sizeof(rollplan_units[0]); i++) {
		if (ms != 0 && ms % rollplan_units[i].ms == 0) {
			snprintf(buf, len, "%lld%s", (long long)(ms / rollplan_units[i].ms), rollplan_units[i].unit);
			return;
		}
	}
	snprintf(buf, len, "%llds", (long long)ms / 1000);
}
