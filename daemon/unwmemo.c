/*
 * unwmemo.c - the memo of unwound stacks (unwmemo.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "unwmemo.h"

struct entry {
	uint64_t key;   /* 0: empty */
	uint64_t words; /* unwmemo_rec.words */
	uint64_t gen, maps, cfi;
	uint32_t pid;
	uint8_t nips, nreads;
	bool whole;
	uint16_t off[UNWMEMO_READS];
	uint64_t ips[UNWMEMO_FRAMES];
};

struct unwmemo {
	struct entry *slots; /* UNWMEMO_SLOTS, mapped at the first put; NULL before */
	bool unmappable;     /* that mmap failed: not tried again */
	uint64_t seed;
	uint64_t lane[2]; /* unwmemo_key()'s other two chains' keys */
	uint64_t pos[UNWMEMO_READS]; /* each place's key in the words' hash: term() */
	struct unwmemo_stats st;
};

_Static_assert((UNWMEMO_SLOTS & (UNWMEMO_SLOTS - 1)) == 0, "a power of two");
_Static_assert(UNWMEMO_READS <= UINT8_MAX && UNWMEMO_FRAMES <= UINT8_MAX, "counts fit");

/* splitmix64's finalizer: a bijection where every input bit reaches every output bit. */
static uint64_t fmix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * One step of the key's hash: what a change of v does to the result
 * depends on h, which depends on the key.
 */
static uint64_t mix(uint64_t h, uint64_t v)
{
	return fmix(h ^ v);
}

/*
 * The i-th word's term of the words' hash: the terms are summed, not
 * chained, so that the loads of the words (cold: the BPF program wrote
 * them on another CPU) need not wait for each other's arithmetic.  Each
 * term depends on the key, so what one word's change does to the sum
 * cannot be known, nor undone by another's.
 */
static uint64_t term(uint64_t pos, uint64_t v)
{
	return fmix(v ^ pos);
}

struct unwmemo *unwmemo_new(void)
{
	struct unwmemo *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	if (getrandom(&m->seed, sizeof(m->seed), GRND_NONBLOCK) != sizeof(m->seed)) {
		struct timespec ts;

		/* early boot without entropy: a key nobody outside can read still */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		m->seed = mix((uint64_t)(uintptr_t)m, (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32);
	}
	for (unsigned i = 0; i < UNWMEMO_READS; i++)
		m->pos[i] = fmix(~m->seed + i);
	m->lane[0] = fmix(m->seed + 1);
	m->lane[1] = fmix(m->seed + 2);
	return m;
}

void unwmemo_free(struct unwmemo *m)
{
	if (!m)
		return;
	if (m->slots)
		munmap(m->slots, UNWMEMO_SLOTS * sizeof(struct entry));
	free(m);
}

/*
 * Three keyed chains, then joined: one chain of ten steps was a tenth of
 * the collector's time at 999 Hz, waiting on each multiply in turn.
 */
uint64_t unwmemo_key(const struct unwmemo *m, const struct unwmemo_where *w, uint64_t start_ns,
		     uint64_t rip, uint64_t rsp, uint64_t rbp, uint64_t len, size_t max)
{
	uint64_t a = mix(mix(mix(m->seed, w->pid), start_ns), w->gen);
	uint64_t b = mix(mix(mix(m->lane[0], rip), rsp), rbp);
	uint64_t c = mix(mix(mix(m->lane[1], len), max), w->maps);
	uint64_t h = mix(mix(a, b), mix(c, w->cfi));

	return h ? h : 1;
}

void unwmemo_rec_start(const struct unwmemo *m, struct unwmemo_rec *r)
{
	r->pos = m->pos;
	r->words = 0;
	r->n = 0;
	r->overflow = false;
}

void unwmemo_note(struct unwmemo_rec *r, uint64_t off, uint64_t w)
{
	if (r->n >= UNWMEMO_READS || off > UINT16_MAX) {
		r->overflow = true;
		return;
	}
	r->words += term(r->pos[r->n], w);
	r->off[r->n++] = (uint16_t)off;
}

size_t unwmemo_find(struct unwmemo *m, uint64_t key, const struct unwmemo_where *w,
		    const uint8_t *stack, uint64_t len, uint64_t *ips, size_t max, bool *whole)
{
	const struct entry *e;
	uint64_t h;

	if (!m->slots)
		return 0;
	e = &m->slots[key & (UNWMEMO_SLOTS - 1)];
	if (e->key != key || e->pid != w->pid || e->gen != w->gen || e->maps != w->maps ||
	    e->cfi != w->cfi || e->nips > max)
		return 0;
	if (e->nreads && (!stack || len < 8))
		return 0;
	h = 0;
	for (unsigned i = 0; i < e->nreads; i++) {
		uint64_t v;

		/* len is in the key, so each word is inside the copy again: checked all the same */
		if (e->off[i] > len - 8)
			return 0;
		memcpy(&v, stack + e->off[i], 8);
		h += term(m->pos[i], v);
	}
	if (h != e->words)
		return 0;
	memcpy(ips, e->ips, e->nips * sizeof(*ips));
	*whole = e->whole;
	m->st.hits++;
	return e->nips;
}

void unwmemo_put(struct unwmemo *m, uint64_t key, const struct unwmemo_where *w,
		 const struct unwmemo_rec *r, const uint64_t *ips, size_t n, bool whole)
{
	struct entry *e;

	if (r->overflow || n == 0 || n > UNWMEMO_FRAMES)
		return;
	if (!m->slots) {
		if (m->unmappable)
			return;
		void *p = mmap(NULL, UNWMEMO_SLOTS * sizeof(struct entry), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			m->unmappable = true; /* a cache: unwinding goes on without it */
			return;
		}
		m->slots = p;
	}
	e = &m->slots[key & (UNWMEMO_SLOTS - 1)];
	if (e->key && e->key != key)
		m->st.replaced++;
	e->key = key;
	e->words = r->words;
	e->gen = w->gen;
	e->maps = w->maps;
	e->cfi = w->cfi;
	e->pid = w->pid;
	e->nips = (uint8_t)n;
	e->nreads = (uint8_t)r->n;
	e->whole = whole;
	memcpy(e->off, r->off, r->n * sizeof(*r->off));
	memcpy(e->ips, ips, n * sizeof(*ips));
	m->st.stored++;
}

void unwmemo_get_stats(const struct unwmemo *m, struct unwmemo_stats *ret)
{
	*ret = m->st;
}
