/*
 * framememo.c - the frames one profile has placed already (see
 * framememo.h).  Open addressing, linear probing, a power-of-two capacity
 * at most 3/4 full; a slot holds its whole key, so a hit is never a
 * collision's guess.
 */
#include "framememo.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct framememo_slot {
	struct framememo_key key;
	uint64_t loc; /* 0: empty */
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t key_hash(const struct framememo *m, const struct framememo_key *k)
{
	uint64_t h = mix64(k->ip ^ m->seed);

	h = mix64(h ^ k->start_ns);
	return mix64(h ^ ((uint64_t)k->pid << 32 | k->kind));
}

static int key_eq(const struct framememo_key *a, const struct framememo_key *b)
{
	return a->ip == b->ip && a->pid == b->pid && a->kind == b->kind &&
	       a->start_ns == b->start_ns;
}

void framememo_init(struct framememo *m)
{
	struct timespec ts = { 0 };

	clock_gettime(CLOCK_MONOTONIC, &ts);
	memset(m, 0, sizeof(*m));
	m->seed = mix64((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)(uintptr_t)m);
}

void framememo_release(struct framememo *m)
{
	free(m->slots);
	m->slots = NULL;
	m->mask = 0;
	m->n = 0;
}

static struct framememo_slot *find(const struct framememo *m, const struct framememo_key *k)
{
	for (size_t i = key_hash(m, k) & m->mask;; i = (i + 1) & m->mask) {
		struct framememo_slot *s = &m->slots[i];

		if (!s->loc || key_eq(&s->key, k))
			return s;
	}
}

uint64_t framememo_get(const struct framememo *m, const struct framememo_key *k)
{
	return m->slots ? find(m, k)->loc : 0;
}

static int grow(struct framememo *m)
{
	size_t cap = m->slots ? (m->mask + 1) * 2 : 256;
	struct framememo old = *m;

	if (cap > SIZE_MAX / sizeof(*m->slots))
		return -ENOMEM;
	m->slots = calloc(cap, sizeof(*m->slots));
	if (!m->slots) {
		m->slots = old.slots;
		return -ENOMEM;
	}
	m->mask = cap - 1;
	for (size_t i = 0; old.slots && i <= old.mask; i++)
		if (old.slots[i].loc)
			*find(m, &old.slots[i].key) = old.slots[i];
	free(old.slots);
	return 0;
}

int framememo_put(struct framememo *m, const struct framememo_key *k, uint64_t loc)
{
	struct framememo_slot *s;

	if (!loc)
		return -EINVAL;
	if (m->n >= FRAMEMEMO_MAX) {
		s = find(m, k);
		if (s->loc)
			s->loc = loc;
		return 0;
	}
	if ((!m->slots || (m->n + 1) * 4 > (m->mask + 1) * 3) && grow(m) < 0)
		return -ENOMEM;
	s = find(m, k);
	if (!s->loc)
		m->n++;
	s->key = *k;
	s->loc = loc;
	return 0;
}
