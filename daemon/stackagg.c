/*
 * stackagg.c - per-interval aggregation of raw samples (see stackagg.h).
 *
 * Entries live in one growing arena (offsets, not pointers, so it can be
 * reallocated); an open-addressing table of (hash, offset) finds them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "stackagg.h"

#define DEFAULT_MAX_BYTES (16u << 20)

struct slot {
	uint64_t hash; /* 0: empty */
	uint32_t off;  /* entry offset in the arena */
};

struct entry {
	struct stackagg_entry pub;
	uint64_t hash;
	uint32_t frames_len;
	uint32_t pad;
	/* frames follow */
};

struct stackagg {
	uint8_t *arena;
	size_t used, cap, max_bytes;
	uint32_t *order; /* entry offsets in insertion order */
	size_t n, order_cap;
	struct slot *slots;
	size_t nslots; /* power of two */
	uint64_t total;
};

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	return h;
}

/*
 * A record's hash, in one pass: four independent lanes, since mix() is a
 * chain of multiplies.  The lanes start from the header's identity words
 * (process, thread, cgroup, tenant and the frames' layout), then take the
 * frames 32 bytes at a time.  The names (comm, thread_name) are left out:
 * they follow from the process and thread but for a rename, and a match
 * is a memcmp() of the whole header (its non-identity fields zeroed by
 * stackagg_add) and frames anyway.  At 999 Hz this hash was 7% of the
 * collector's time when it took the whole header too, in two passes.
 */
static uint64_t record_hash(const struct vigil_sample_hdr *h, const uint8_t *p, size_t len)
{
	uint64_t v, l[4] = {
		mix(0x5eed, (uint64_t)h->pid << 32 | h->tid),
		mix(0x243f6a8885a308d3ull, h->cgroup_id),
		mix(0x13198a2e03707344ull, h->start_ns),
		mix(0xa4093822299f31d0ull, (uint64_t)h->tenant << 32 | h->tenant_gen),
	};
	unsigned i;

	l[0] = mix(l[0], (uint64_t)h->user_fmt << 32 | h->kernel_len);
	for (; len >= 32; p += 32, len -= 32) {
		memcpy(&v, p, 8);
		l[0] = mix(l[0], v);
		memcpy(&v, p + 8, 8);
		l[1] = mix(l[1], v);
		memcpy(&v, p + 16, 8);
		l[2] = mix(l[2], v);
		memcpy(&v, p + 24, 8);
		l[3] = mix(l[3], v);
	}
	/* The last 0 to 3 words, a lane each, then the bytes left (none in a valid record). */
	for (i = 0; len >= 8; p += 8, len -= 8, i++) {
		memcpy(&v, p, 8);
		l[i] = mix(l[i], v);
	}
	v = 0;
	memcpy(&v, p, len);
	return mix(mix(l[0], l[1]) ^ mix(l[2], l[3]), v ^ (uint64_t)h->user_len << 32 ^ len);
}

struct stackagg *stackagg_new(size_t max_bytes)
{
	struct stackagg *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->max_bytes = max_bytes ? max_bytes : DEFAULT_MAX_BYTES;
	a->nslots = 1024;
	a->slots = calloc(a->nslots, sizeof(*a->slots));
	if (!a->slots) {
		free(a);
		errno = ENOMEM;
		return NULL;
	}
	return a;
}

static int grow_slots(struct stackagg *a)
{
	size_t n = a->nslots * 2;
	struct slot *s = calloc(n, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < a->nslots; i++) {
		size_t j;

		if (!a->slots[i].hash)
			continue;
		for (j = a->slots[i].hash & (n - 1); s[j].hash; j = (j + 1) & (n - 1))
			;
		s[j] = a->slots[i];
	}
	free(a->slots);
	a->slots = s;
	a->nslots = n;
	return 0;
}

static int check_record(const struct vigil_sample_hdr *h, size_t len)
{
	size_t ulen_unit;

	if (len < sizeof(*h) || h->type != VIGIL_EV_SAMPLE)
		return -EINVAL;
	if (h->user_fmt == VIGIL_USER_IPS)
		ulen_unit = 8;
	else if (h->user_fmt == VIGIL_USER_BUILD_ID)
		ulen_unit = sizeof(struct vigil_frame_bid);
	else
		return -EINVAL;
	/* Stack copies are unwound into frames before they get here: never kept. */
	if (h->ustack_len != 0 || h->kernel_len > VIGIL_KSTACK_BYTES || h->kernel_len % 8 ||
	    h->user_len > VIGIL_USTACK_BYTES || h->user_len % ulen_unit ||
	    sizeof(*h) + (size_t)h->kernel_len + h->user_len != len)
		return -EINVAL;
	return 0;
}

int stackagg_add(struct stackagg *a, const void *record, size_t len)
{
	struct vigil_sample_hdr h;
	const uint8_t *frames = (const uint8_t *)record + sizeof(h);
	size_t flen, need, i;
	uint64_t hash, period;
	struct entry *e;
	int rc;

	if (len < sizeof(h))
		return -EINVAL;
	memcpy(&h, record, sizeof(h));
	rc = check_record(&h, len);
	if (rc)
		return rc;
	period = h.period_ns;
	/* Not part of the identity. */
	h.cpu = 0;
	h.time_ns = 0;
	h.period_ns = 0;
	h.kernel_err = 0;
	h.user_err = 0;
	flen = len - sizeof(h);

	hash = record_hash(&h, frames, flen);
	hash |= 1; /* 0 marks an empty slot */
	for (i = hash & (a->nslots - 1); a->slots[i].hash; i = (i + 1) & (a->nslots - 1)) {
		if (a->slots[i].hash != hash)
			continue;
		e = (struct entry *)(a->arena + a->slots[i].off);
		if (e->frames_len == flen && memcmp(&e->pub.hdr, &h, sizeof(h)) == 0 &&
		    memcmp(e + 1, frames, flen) == 0) {
			e->pub.count++;
			e->pub.cpu_ns += period;
			a->total++;
			return 0;
		}
	}

	need = (sizeof(*e) + flen + 7) & ~(size_t)7;
	if (a->used + need > a->max_bytes)
		return -ENOSPC;
	if (a->used + need > a->cap) {
		size_t cap = a->cap ? a->cap : 64 * 1024;
		uint8_t *p;

		while (cap < a->used + need)
			cap *= 2;
		if (cap > a->max_bytes)
			cap = a->max_bytes;
		p = realloc(a->arena, cap);
		if (!p)
			return -ENOMEM;
		a->arena = p;
		a->cap = cap;
	}
	if (a->n == a->order_cap) {
		size_t oc = a->order_cap ? a->order_cap * 2 : 256;
		uint32_t *o = realloc(a->order, oc * sizeof(*o));

		if (!o)
			return -ENOMEM;
		a->order = o;
		a->order_cap = oc;
	}
	if ((a->n + 1) * 2 > a->nslots) {
		rc = grow_slots(a);
		if (rc)
			return rc;
		for (i = hash & (a->nslots - 1); a->slots[i].hash; i = (i + 1) & (a->nslots - 1))
			;
	}

	e = (struct entry *)(a->arena + a->used);
	memset(e, 0, sizeof(*e));
	e->pub.hdr = h;
	e->pub.count = 1;
	e->pub.cpu_ns = period;
	e->hash = hash;
	e->frames_len = flen;
	memcpy(e + 1, frames, flen);
	a->slots[i].hash = hash;
	a->slots[i].off = a->used;
	a->order[a->n++] = a->used;
	a->used += need;
	a->total++;
	return 0;
}

size_t stackagg_distinct(const struct stackagg *a)
{
	return a->n;
}

uint64_t stackagg_total(const struct stackagg *a)
{
	return a->total;
}

const struct stackagg_entry *stackagg_get(const struct stackagg *a, size_t i)
{
	struct entry *e;

	if (i >= a->n)
		return NULL;
	e = (struct entry *)(a->arena + a->order[i]);
	/* The arena may have moved since the entry was added. */
	e->pub.frames = (const uint8_t *)(e + 1);
	return &e->pub;
}

void stackagg_reset(struct stackagg *a)
{
	memset(a->slots, 0, a->nslots * sizeof(*a->slots));
	a->used = 0;
	a->n = 0;
	a->total = 0;
}

void stackagg_free(struct stackagg *a)
{
	if (!a)
		return;
	free(a->arena);
	free(a->order);
	free(a->slots);
	free(a);
}
