/*
 * pprof.c - pprof profile builder, encoder, decoder and validator.
 *
 * The collector calls the builder for every unique stack of every interval,
 * so everything it stores is interned once in compact arrays, each indexed
 * by an open-addressing hash table (linear probing, power-of-two size, load
 * at most 3/4).  A slot keeps the entry's 32-bit hash and its index + 1, so
 * probing rarely touches the entries and growing never rehashes keys.
 *
 *   strings    char *strs[], bytes in an arena     (string_table; [0] == "")
 *   mappings   struct pmapping[]                   (id = index + 1)
 *   functions  name string index per function      (id = index + 1)
 *   locations  struct plocation[]                  (id = index + 1)
 *   stacks     location ids in one frame pool, struct pstack[] slices of it
 *   label sets canonical (sorted) labels in one pool, struct plabelset[]
 *   samples    (stack, label set) -> values[2]
 *
 * Samples share stacks and label sets, and label sets are few (about one per
 * thread), so a sample costs 24 bytes plus its stack if the stack is new.
 * pprof_encode() builds the protobuf-c message tree in temporary arrays that
 * point into these (string table, frame pool, sample values), packs it and
 * gzips it.
 *
 * Hash seeds come from the clock and the builder's address, so a profiled
 * process cannot precompute symbol names that collide.  Library-like: runs
 * in the collector (no privileges), never logs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demangle.h"
#include "gzip.h"
#include "pprof.h"

/* Entity indices are stored as uint32_t and ids are index + 1. */
#define PPROF_MAX_ENTRIES (UINT32_MAX - 1)
/* Strings are copied into arena chunks of this size (or larger, for one). */
#define ARENA_CHUNK (64 * 1024)

struct hslot {
	uint32_t hash;
	uint32_t idx; /* entry index + 1; 0 = empty */
};

struct htab {
	struct hslot *slots;
	size_t mask; /* capacity - 1; capacity is a power of two */
	size_t n;
};

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	char data[];
};

struct pmapping {
	uint64_t start, limit, offset;
	uint32_t filename, build_id; /* string indices */
	bool has_functions;
};

struct plocation {
	uint64_t address;
	uint32_t mapping;  /* mapping id, 0 = none */
	uint32_t function; /* function id, 0 = unsymbolized */
};

struct pslice {
	size_t off;
	uint32_t n;
};

struct plabel {
	int64_t num;
	uint32_t key, str, num_unit; /* string indices; str 0 => numeric */
};

struct psample {
	int64_t values[2]; /* count, cpu ns: what Sample.value points at */
	uint32_t stack, labelset;
};

struct pprof_builder {
	uint64_t seed;
	int64_t period, time_nanos;

	char **strs;
	size_t n_strs, cap_strs;
	struct htab str_ht;
	struct arena_chunk *arena;
	uint32_t s_samples, s_count, s_cpu, s_nanoseconds;

	struct pmapping *maps;
	size_t n_maps, cap_maps;
	struct htab map_ht;

	uint32_t *funcs;      /* name string index: the symbol (system_name) */
	uint32_t *func_names; /* string index of its readable name (name): C++ demangled */
	size_t n_funcs, cap_funcs, cap_func_names;
	struct htab func_ht;

	struct plocation *locs;
	size_t n_locs, cap_locs;
	struct htab loc_ht;

	uint64_t *frames; /* pool of location ids, leaf first per stack */
	size_t n_frames, cap_frames;
	struct pslice *stacks;
	size_t n_stacks, cap_stacks;
	struct htab stack_ht;

	struct plabel *labels; /* pool of canonical label sets */
	size_t n_labels, cap_labels;
	struct pslice *lsets;
	size_t n_lsets, cap_lsets;
	struct htab lset_ht;

	struct psample *samples;
	size_t n_samples, cap_samples;
	struct htab sample_ht;

	int64_t *comments;
	size_t n_comments, cap_comments;
};

/* ------------------------------------------------------------------------ */
/* Hashing and the generic hash table. */

#define K1 0x9e3779b97f4a7c15ULL
#define K2 0xc2b2ae3d27d4eb4fULL

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dULL;
	x ^= x >> 33;
	return x;
}

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t hash_bytes(uint64_t seed, const void *p, size_t len)
{
	const uint8_t *s = p;
	uint64_t h = seed ^ (len * K1), w;

	for (; len >= 8; s += 8, len -= 8) {
		memcpy(&w, s, 8);
		h = rotl64(h ^ (w * K2), 31) * K1;
	}
	if (len) {
		w = 0;
		memcpy(&w, s, len);
		h = rotl64(h ^ (w * K2), 31) * K1;
	}
	return mix64(h);
}

static uint32_t fold32(uint64_t h)
{
	return (uint32_t)(h ^ (h >> 32));
}

typedef bool ht_eq_fn(const struct pprof_builder *b, uint32_t idx, const void *key);

/* Make room for one more entry.  Call before ht_find(): growing moves slots. */
static int ht_reserve(struct htab *t)
{
	struct hslot *ns;
	size_t cap = t->slots ? t->mask + 1 : 0, ncap, i, j;

	if (cap && (t->n + 1) * 4 <= cap * 3)
		return 0;
	ncap = cap ? cap * 2 : 64;
	if (ncap > SIZE_MAX / sizeof(*ns))
		return -ENOMEM;
	ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (i = 0; i < cap; i++) {
		if (!t->slots[i].idx)
			continue;
		for (j = t->slots[i].hash & (ncap - 1); ns[j].idx; j = (j + 1) & (ncap - 1))
			;
		ns[j] = t->slots[i];
	}
	free(t->slots);
	t->slots = ns;
	t->mask = ncap - 1;
	return 0;
}

/* The slot holding key, or the empty slot where it belongs. */
static struct hslot *ht_find(const struct htab *t, uint32_t hash, ht_eq_fn *eq,
			     const struct pprof_builder *b, const void *key)
{
	size_t i;

	for (i = hash & t->mask;; i = (i + 1) & t->mask) {
		struct hslot *s = &t->slots[i];

		if (!s->idx || (s->hash == hash && eq(b, s->idx - 1, key)))
			return s;
	}
}

static void ht_set(struct htab *t, struct hslot *s, uint32_t hash, size_t idx)
{
	s->hash = hash;
	s->idx = (uint32_t)idx + 1;
	t->n++;
}

/*
 * Return p reallocated to hold at least need (> *cap) elements and update
 * *cap, or NULL with nothing changed.  Use through GROW(), which does
 * nothing when there is room already and yields 0 or -ENOMEM.
 */
static void *grow(void *p, size_t *cap, size_t need, size_t elsize)
{
	size_t ncap;
	void *np;

	ncap = *cap ? *cap : 16;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / elsize)
			return NULL;
		ncap *= 2;
	}
	np = realloc(p, ncap * elsize);
	if (!np)
		return NULL;
	*cap = ncap;
	return np;
}

#define GROW(arr, cap, need)                                                      \
	((need) <= (cap) ? 0 : ({                                                  \
		__typeof__(arr) _g = grow((arr), &(cap), (need), sizeof(*(arr)));  \
		if (_g)                                                            \
			(arr) = _g;                                                \
		_g ? 0 : -ENOMEM;                                                  \
	}))

/* ------------------------------------------------------------------------ */
/* Strings. */

struct skey {
	const char *s;
	size_t len;
};

static bool str_eq(const struct pprof_builder *b, uint32_t idx, const void *key)
{
	const struct skey *k = key;
	const char *s = b->strs[idx];

	/* strncmp stops at s's NUL, so s[len] is only read if s has len bytes. */
	return strncmp(s, k->s, k->len) == 0 && s[k->len] == '\0';
}

static char *arena_alloc(struct pprof_builder *b, size_t n)
{
	struct arena_chunk *c = b->arena;

	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		if (cap > ARENA_CHUNK && b->arena) {
			/* Keep filling the current chunk: put the big one behind it. */
			c->next = b->arena->next;
			b->arena->next = c;
		} else {
			c->next = b->arena;
			b->arena = c;
		}
	}
	c->used += n;
	return c->data + c->used - n;
}

/* Intern s (truncated to PPROF_MAX_STRING bytes); NULL interns "". */
static int intern(struct pprof_builder *b, const char *s, uint32_t *ret_idx)
{
	struct hslot *slot;
	struct skey k;
	uint32_t h;
	char *copy;

	if (!s)
		s = "";
	k.s = s;
	k.len = strnlen(s, PPROF_MAX_STRING + 1);
	if (k.len > PPROF_MAX_STRING) {
		k.len = PPROF_MAX_STRING;
		/* Do not cut a UTF-8 sequence: s[len] must start a character. */
		while (k.len > 0 && ((unsigned char)s[k.len] & 0xc0) == 0x80)
			k.len--;
	}
	h = fold32(hash_bytes(b->seed, s, k.len));
	if (ht_reserve(&b->str_ht) < 0)
		return -ENOMEM;
	slot = ht_find(&b->str_ht, h, str_eq, b, &k);
	if (slot->idx) {
		*ret_idx = slot->idx - 1;
		return 0;
	}
	if (b->n_strs >= PPROF_MAX_ENTRIES || GROW(b->strs, b->cap_strs, b->n_strs + 1))
		return -ENOMEM;
	copy = arena_alloc(b, k.len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, s, k.len);
	copy[k.len] = '\0';
	b->strs[b->n_strs] = copy;
	ht_set(&b->str_ht, slot, h, b->n_strs);
	*ret_idx = (uint32_t)b->n_strs++;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Builder. */

struct pprof_builder *pprof_new(int64_t period_ns, int64_t time_nanos)
{
	struct pprof_builder *b;
	struct timespec ts = {0};
	uint32_t empty;

	if (period_ns <= 0) {
		errno = EINVAL;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	b->seed = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
			(uint64_t)(uintptr_t)b ^ ((uint64_t)time_nanos * K1));
	b->period = period_ns;
	b->time_nanos = time_nanos;
	if (intern(b, "", &empty) < 0 || intern(b, "samples", &b->s_samples) < 0 ||
	    intern(b, "count", &b->s_count) < 0 || intern(b, "cpu", &b->s_cpu) < 0 ||
	    intern(b, "nanoseconds", &b->s_nanoseconds) < 0) {
		pprof_free(b);
		errno = ENOMEM;
		return NULL;
	}
	return b;
}

void pprof_free(struct pprof_builder *b)
{
	struct arena_chunk *c, *next;

	if (!b)
		return;
	for (c = b->arena; c; c = next) {
		next = c->next;
		free(c);
	}
	free(b->strs);
	free(b->str_ht.slots);
	free(b->maps);
	free(b->map_ht.slots);
	free(b->funcs);
	free(b->func_names);
	free(b->func_ht.slots);
	free(b->locs);
	free(b->loc_ht.slots);
	free(b->frames);
	free(b->stacks);
	free(b->stack_ht.slots);
	free(b->labels);
	free(b->lsets);
	free(b->lset_ht.slots);
	free(b->samples);
	free(b->sample_ht.slots);
	free(b->comments);
	free(b);
}

static bool map_eq(const struct pprof_builder *b, uint32_t idx, const void *key)
{
	const struct pmapping *m = &b->maps[idx], *k = key;

	return m->start == k->start && m->limit == k->limit && m->offset == k->offset &&
	       m->filename == k->filename && m->build_id == k->build_id;
}

uint64_t pprof_mapping(struct pprof_builder *b, uint64_t start, uint64_t limit,
		       uint64_t file_offset, const char *filename, const char *build_id,
		       bool has_functions)
{
	struct pmapping k = {.start = start, .limit = limit, .offset = file_offset};
	struct hslot *slot;
	uint32_t h;

	if (!b || limit < start) {
		errno = EINVAL;
		return 0;
	}
	if (intern(b, filename, &k.filename) < 0 || intern(b, build_id, &k.build_id) < 0)
		goto nomem;
	h = fold32(mix64(start ^ rotl64(limit * K1, 17) ^ rotl64(file_offset * K2, 31) ^
			 ((uint64_t)k.filename << 32 | k.build_id) ^ b->seed));
	if (ht_reserve(&b->map_ht) < 0)
		goto nomem;
	slot = ht_find(&b->map_ht, h, map_eq, b, &k);
	if (slot->idx) {
		b->maps[slot->idx - 1].has_functions |= has_functions;
		return slot->idx;
	}
	if (b->n_maps >= PPROF_MAX_ENTRIES || GROW(b->maps, b->cap_maps, b->n_maps + 1))
		goto nomem;
	k.has_functions = has_functions;
	b->maps[b->n_maps] = k;
	ht_set(&b->map_ht, slot, h, b->n_maps);
	return ++b->n_maps;
nomem:
	errno = ENOMEM;
	return 0;
}

static bool func_eq(const struct pprof_builder *b, uint32_t idx, const void *key)
{
	return b->funcs[idx] == *(const uint32_t *)key;
}

/* Function id (> 0) for the interned symbol name, or 0 on ENOMEM. */
static uint32_t function_id(struct pprof_builder *b, uint32_t name)
{
	struct hslot *slot;
	uint32_t h = fold32(mix64(name ^ b->seed)), readable = name;
	const char *d;

	if (ht_reserve(&b->func_ht) < 0)
		return 0;
	slot = ht_find(&b->func_ht, h, func_eq, b, &name);
	if (slot->idx)
		return slot->idx;
	/* Borrowed from demangle()'s cache until its next call: interned at once. */
	d = demangle(b->strs[name]);
	if (d != b->strs[name] && intern(b, d, &readable) < 0)
		return 0;
	if (b->n_funcs >= PPROF_MAX_ENTRIES ||
	    GROW(b->func_names, b->cap_func_names, b->n_funcs + 1) ||
	    GROW(b->funcs, b->cap_funcs, b->n_funcs + 1))
		return 0;
	b->funcs[b->n_funcs] = name;
	b->func_names[b->n_funcs] = readable;
	ht_set(&b->func_ht, slot, h, b->n_funcs);
	return (uint32_t)++b->n_funcs;
}

static bool loc_eq(const struct pprof_builder *b, uint32_t idx, const void *key)
{
	const struct plocation *l = &b->locs[idx], *k = key;

	return l->address == k->address && l->mapping == k->mapping && l->function == k->function;
}

uint64_t pprof_location(struct pprof_builder *b, uint64_t mapping_id, uint64_t address,
			const char *function)
{
	struct plocation k = {.address = address};
	struct hslot *slot;
	uint32_t h;

	if (!b || mapping_id > b->n_maps) {
		errno = EINVAL;
		return 0;
	}
	k.mapping = (uint32_t)mapping_id;
	if (function && *function) {
		uint32_t name;

		if (intern(b, function, &name) < 0)
			goto nomem;
		k.function = function_id(b, name);
		if (!k.function)
			goto nomem;
	}
	h = fold32(mix64(address ^ b->seed) ^ ((uint64_t)k.mapping << 32 | k.function) * K1);
	if (ht_reserve(&b->loc_ht) < 0)
		goto nomem;
	slot = ht_find(&b->loc_ht, h, loc_eq, b, &k);
	if (slot->idx)
		return slot->idx;
	if (b->n_locs >= PPROF_MAX_ENTRIES || GROW(b->locs, b->cap_locs, b->n_locs + 1))
		goto nomem;
	b->locs[b->n_locs] = k;
	ht_set(&b->loc_ht, slot, h, b->n_locs);
	return ++b->n_locs;
nomem:
	errno = ENOMEM;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Stacks, label sets and samples. */

struct stack_key {
	const uint64_t *ids;
	size_t n;
};

static bool stack_eq(const struct pprof_builder *b, uint32_t idx, const void *key)
{
	const struct pslice *s = &b->stacks[idx];
	const struct stack_key *k = key;

	return s->n == k->n && (!k->n || !memcmp(b->frames + s->off, k->ids, k->n * sizeof(*k->ids)));
}

static int intern_stack(struct pprof_builder *b, const uint64_t *ids, size_t n, uint32_t *ret)
{
	struct stack_key k = {ids, n};
	struct hslot *slot;
	uint32_t h;

	h = fold32(hash_bytes(b->seed, ids, n * sizeof(*ids)));
	if (ht_reserve(&b->stack_ht) < 0)
		return -ENOMEM;
	slot = ht_find(&b->stack_ht, h, stack_eq, b, &k);
	if (slot->idx) {
		*ret = slot->idx - 1;
		return 0;
	}
	if (b->n_stacks >= PPROF_MAX_ENTRIES ||
	    GROW(b->stacks, b->cap_stacks, b->n_stacks + 1) ||
	    GROW(b->frames, b->cap_frames, b->n_frames + n))
		return -ENOMEM;
	if (n)
		memcpy(b->frames + b->n_frames, ids, n * sizeof(*ids));
	b->stacks[b->n_stacks] = (struct pslice){.off = b->n_frames, .n = (uint32_t)n};
	b->n_frames += n;
	ht_set(&b->stack_ht, slot, h, b->n_stacks);
	*ret = (uint32_t)b->n_stacks++;
	return 0;
}

static int label_cmp(const struct plabel *a, const struct plabel *c)
{
	if (a->key != c->key)
		return a->key < c->key ? -1 : 1;
	if (a->str != c->str)
		return a->str < c->str ? -1 : 1;
	if (a->num != c->num)
		return a->num < c->num ? -1 : 1;
	if (a->num_unit != c->num_unit)
		return a->num_unit < c->num_unit ? -1 : 1;
	return 0;
}

struct lset_key {
	const struct plabel *labels;
	size_t n;
};

static bool lset_eq(const struct pprof_builder *b, uint32_t idx, const void *key)
{
	const struct pslice *s = &b->lsets[idx];
	const struct lset_key *k = key;
	size_t i;

	if (s->n != k->n)
		return false;
	for (i = 0; i < k->n; i++)
		if (label_cmp(&b->labels[s->off + i], &k->labels[i]))
			return false;
	return true;
}

static int intern_labelset(struct pprof_builder *b, const struct pprof_label *labels, size_t n,
			   uint32_t *ret)
{
	struct plabel set[PPROF_MAX_LABELS];
	struct lset_key k = {set, n};
	struct hslot *slot;
	uint64_t h = b->seed ^ n;
	size_t i, j;

	for (i = 0; i < n; i++) {
		struct plabel l = {0};

		if (!labels[i].key || !*labels[i].key)
			return -EINVAL;
		if (intern(b, labels[i].key, &l.key) < 0)
			return -ENOMEM;
		if (labels[i].str) {
			if (intern(b, labels[i].str, &l.str) < 0)
				return -ENOMEM;
		} else {
			l.num = labels[i].num;
			if (labels[i].num_unit && intern(b, labels[i].num_unit, &l.num_unit) < 0)
				return -ENOMEM;
		}
		/* Insertion sort: the order callers list labels in must not matter. */
		for (j = i; j > 0 && label_cmp(&set[j - 1], &l) > 0; j--)
			set[j] = set[j - 1];
		set[j] = l;
	}
	for (i = 0; i < n; i++)
		h = rotl64(h ^ mix64(((uint64_t)set[i].key << 32 | set[i].str) ^
				     (uint64_t)set[i].num * K2 ^ set[i].num_unit),
			   23) *
		    K1;
	h = fold32(mix64(h));
	if (ht_reserve(&b->lset_ht) < 0)
		return -ENOMEM;
	slot = ht_find(&b->lset_ht, (uint32_t)h, lset_eq, b, &k);
	if (slot->idx) {
		*ret = slot->idx - 1;
		return 0;
	}
	if (b->n_lsets >= PPROF_MAX_ENTRIES ||
	    GROW(b->lsets, b->cap_lsets, b->n_lsets + 1) ||
	    GROW(b->labels, b->cap_labels, b->n_labels + n))
		return -ENOMEM;
	if (n)
		memcpy(b->labels + b->n_labels, set, n * sizeof(*set));
	b->lsets[b->n_lsets] = (struct pslice){.off = b->n_labels, .n = (uint32_t)n};
	b->n_labels += n;
	ht_set(&b->lset_ht, slot, (uint32_t)h, b->n_lsets);
	*ret = (uint32_t)b->n_lsets++;
	return 0;
}

struct sample_key {
	uint32_t stack, labelset;
};

static bool sample_eq(const struct pprof_builder *b, uint32_t idx, const void *key)
{
	const struct sample_key *k = key;

	return b->samples[idx].stack == k->stack && b->samples[idx].labelset == k->labelset;
}

int pprof_sample(struct pprof_builder *b, const uint64_t *location_ids, size_t n,
		 const struct pprof_label *labels, size_t n_labels, int64_t count,
		 int64_t cpu_ns)
{
	struct sample_key k;
	struct psample *s;
	struct hslot *slot;
	uint32_t h;
	size_t i;
	int err;

	if (!b || (n && !location_ids) || (n_labels && !labels) || count < 0 || cpu_ns < 0)
		return -EINVAL;
	if (n > PPROF_MAX_FRAMES || n_labels > PPROF_MAX_LABELS)
		return -E2BIG;
	for (i = 0; i < n; i++)
		if (location_ids[i] == 0 || location_ids[i] > b->n_locs)
			return -EINVAL;
	err = intern_labelset(b, labels, n_labels, &k.labelset);
	if (err < 0)
		return err;
	err = intern_stack(b, location_ids, n, &k.stack);
	if (err < 0)
		return err;

	h = fold32(mix64(((uint64_t)k.stack << 32 | k.labelset) ^ b->seed));
	if (ht_reserve(&b->sample_ht) < 0)
		return -ENOMEM;
	slot = ht_find(&b->sample_ht, h, sample_eq, b, &k);
	if (slot->idx) {
		int64_t c, t;

		s = &b->samples[slot->idx - 1];
		if (__builtin_add_overflow(s->values[0], count, &c) ||
		    __builtin_add_overflow(s->values[1], cpu_ns, &t))
			return -EOVERFLOW;
		s->values[0] = c;
		s->values[1] = t;
		return 0;
	}
	if (b->n_samples >= PPROF_MAX_ENTRIES ||
	    GROW(b->samples, b->cap_samples, b->n_samples + 1))
		return -ENOMEM;
	b->samples[b->n_samples] = (struct psample){
		.values = {count, cpu_ns}, .stack = k.stack, .labelset = k.labelset};
	ht_set(&b->sample_ht, slot, h, b->n_samples);
	b->n_samples++;
	return 0;
}

int pprof_comment(struct pprof_builder *b, const char *text)
{
	uint32_t idx;

	if (!b || !text)
		return -EINVAL;
	if (GROW(b->comments, b->cap_comments, b->n_comments + 1) ||
	    intern(b, text, &idx) < 0)
		return -ENOMEM;
	b->comments[b->n_comments++] = idx;
	return 0;
}

size_t pprof_sample_count(const struct pprof_builder *b)
{
	return b ? b->n_samples : 0;
}

/* ------------------------------------------------------------------------ */
/* Encoding. */

/* Everything pprof_encode() allocates; freed in one place. */
struct encode_tmp {
	Perftools__Profiles__Mapping *maps, **map_ptrs;
	Perftools__Profiles__Function *funcs, **func_ptrs;
	Perftools__Profiles__Location *locs, **loc_ptrs;
	Perftools__Profiles__Line *lines, **line_ptrs;
	Perftools__Profiles__Label *labels, **label_ptrs;
	Perftools__Profiles__Sample *samples, **sample_ptrs;
	uint8_t *packed;
};

static void encode_tmp_free(struct encode_tmp *t)
{
	free(t->maps);
	free(t->map_ptrs);
	free(t->funcs);
	free(t->func_ptrs);
	free(t->locs);
	free(t->loc_ptrs);
	free(t->lines);
	free(t->line_ptrs);
	free(t->labels);
	free(t->label_ptrs);
	free(t->samples);
	free(t->sample_ptrs);
	free(t->packed);
}

/* calloc that never returns NULL for n == 0, so NULL always means ENOMEM. */
static void *xcalloc(size_t n, size_t size)
{
	return calloc(n ? n : 1, size);
}

int pprof_encode(const struct pprof_builder *b, int64_t duration_nanos, uint8_t **ret_buf,
		 size_t *ret_len)
{
	Perftools__Profiles__Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
	Perftools__Profiles__ValueType st[2] = {PERFTOOLS__PROFILES__VALUE_TYPE__INIT,
						PERFTOOLS__PROFILES__VALUE_TYPE__INIT};
	Perftools__Profiles__ValueType *st_ptrs[2] = {&st[0], &st[1]};
	Perftools__Profiles__ValueType pt = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	struct encode_tmp t = {0};
	size_t i, size, out_len;
	uint8_t *out;
	int err;

	if (!b || !ret_buf || !ret_len)
		return -EINVAL;
	t.maps = xcalloc(b->n_maps, sizeof(*t.maps));
	t.map_ptrs = xcalloc(b->n_maps, sizeof(*t.map_ptrs));
	t.funcs = xcalloc(b->n_funcs, sizeof(*t.funcs));
	t.func_ptrs = xcalloc(b->n_funcs, sizeof(*t.func_ptrs));
	t.locs = xcalloc(b->n_locs, sizeof(*t.locs));
	t.loc_ptrs = xcalloc(b->n_locs, sizeof(*t.loc_ptrs));
	t.lines = xcalloc(b->n_locs, sizeof(*t.lines));
	t.line_ptrs = xcalloc(b->n_locs, sizeof(*t.line_ptrs));
	t.labels = xcalloc(b->n_labels, sizeof(*t.labels));
	t.label_ptrs = xcalloc(b->n_labels, sizeof(*t.label_ptrs));
	t.samples = xcalloc(b->n_samples, sizeof(*t.samples));
	t.sample_ptrs = xcalloc(b->n_samples, sizeof(*t.sample_ptrs));
	if (!t.maps || !t.map_ptrs || !t.funcs || !t.func_ptrs || !t.locs || !t.loc_ptrs ||
	    !t.lines || !t.line_ptrs || !t.labels || !t.label_ptrs || !t.samples ||
	    !t.sample_ptrs) {
		err = -ENOMEM;
		goto out;
	}

	st[0].type = b->s_samples;
	st[0].unit = b->s_count;
	st[1].type = b->s_cpu;
	st[1].unit = b->s_nanoseconds;
	pt.type = b->s_cpu;
	pt.unit = b->s_nanoseconds;
	p.n_sample_type = 2;
	p.sample_type = st_ptrs;
	p.period_type = &pt;
	p.period = b->period;
	p.time_nanos = b->time_nanos;
	p.duration_nanos = duration_nanos;
	p.n_string_table = b->n_strs;
	p.string_table = b->strs;
	p.n_comment = b->n_comments;
	p.comment = b->comments;

	for (i = 0; i < b->n_maps; i++) {
		const struct pmapping *m = &b->maps[i];
		Perftools__Profiles__Mapping *pm = &t.maps[i];

		perftools__profiles__mapping__init(pm);
		pm->id = i + 1;
		pm->memory_start = m->start;
		pm->memory_limit = m->limit;
		pm->file_offset = m->offset;
		pm->filename = m->filename;
		pm->build_id = m->build_id;
		pm->has_functions = m->has_functions;
		t.map_ptrs[i] = pm;
	}
	p.n_mapping = b->n_maps;
	p.mapping = t.map_ptrs;

	for (i = 0; i < b->n_funcs; i++) {
		Perftools__Profiles__Function *f = &t.funcs[i];

		perftools__profiles__function__init(f);
		f->id = i + 1;
		f->name = b->func_names[i];
		f->system_name = b->funcs[i];
		t.func_ptrs[i] = f;
	}
	p.n_function = b->n_funcs;
	p.function = t.func_ptrs;

	for (i = 0; i < b->n_locs; i++) {
		const struct plocation *l = &b->locs[i];
		Perftools__Profiles__Location *pl = &t.locs[i];

		perftools__profiles__location__init(pl);
		pl->id = i + 1;
		pl->mapping_id = l->mapping;
		pl->address = l->address;
		if (l->function) {
			perftools__profiles__line__init(&t.lines[i]);
			t.lines[i].function_id = l->function;
			t.line_ptrs[i] = &t.lines[i];
			pl->n_line = 1;
			pl->line = &t.line_ptrs[i];
		}
		t.loc_ptrs[i] = pl;
	}
	p.n_location = b->n_locs;
	p.location = t.loc_ptrs;

	for (i = 0; i < b->n_labels; i++) {
		const struct plabel *l = &b->labels[i];
		Perftools__Profiles__Label *pl = &t.labels[i];

		perftools__profiles__label__init(pl);
		pl->key = l->key;
		pl->str = l->str;
		if (!l->str) {
			pl->num = l->num;
			pl->num_unit = l->num_unit;
		}
		t.label_ptrs[i] = pl;
	}

	for (i = 0; i < b->n_samples; i++) {
		struct psample *s = &b->samples[i];
		const struct pslice *stk = &b->stacks[s->stack], *ls = &b->lsets[s->labelset];
		Perftools__Profiles__Sample *ps = &t.samples[i];

		perftools__profiles__sample__init(ps);
		ps->n_location_id = stk->n;
		ps->location_id = stk->n ? b->frames + stk->off : NULL;
		ps->n_value = 2;
		ps->value = s->values;
		ps->n_label = ls->n;
		ps->label = ls->n ? t.label_ptrs + ls->off : NULL;
		t.sample_ptrs[i] = ps;
	}
	p.n_sample = b->n_samples;
	p.sample = t.sample_ptrs;

	size = perftools__profiles__profile__get_packed_size(&p);
	t.packed = malloc(size ? size : 1);
	if (!t.packed) {
		err = -ENOMEM;
		goto out;
	}
	if (perftools__profiles__profile__pack(&p, t.packed) != size) {
		err = -EINVAL; /* cannot happen: the tree is ours */
		goto out;
	}
	err = gzip_compress(t.packed, size, &out, &out_len);
	if (err < 0)
		goto out;
	*ret_buf = out;
	*ret_len = out_len;
out:
	encode_tmp_free(&t);
	return err;
}

/* ------------------------------------------------------------------------ */
/* Decoding and validation. */

int pprof_decode(const uint8_t *buf, size_t len, Perftools__Profiles__Profile **ret)
{
	Perftools__Profiles__Profile *p;
	uint8_t *raw = NULL;
	size_t raw_len;
	int err;

	/* An empty buffer would parse as a profile with nothing in it. */
	if (!buf || !len || !ret)
		return -EINVAL;
	if (gzip_is_gzip(buf, len)) {
		err = gzip_decompress(buf, len, PPROF_MAX_DECODED, &raw, &raw_len);
		if (err < 0)
			return err;
		buf = raw;
		len = raw_len;
	} else if (len > PPROF_MAX_DECODED) {
		return -E2BIG;
	}
	p = perftools__profiles__profile__unpack(NULL, len, buf);
	free(raw);
	if (!p)
		return -EINVAL;
	*ret = p;
	return 0;
}

static int u64_cmp(const void *a, const void *c)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)c;

	return x < y ? -1 : x > y;
}

/* Sorted copy of ids; -EINVAL if one is 0 or repeated. */
static int sorted_ids(uint64_t **ret, size_t n, const void *const *items, size_t id_offset)
{
	uint64_t *ids = xcalloc(n, sizeof(*ids));
	size_t i;

	if (!ids)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (!items[i]) {
			free(ids);
			return -EINVAL;
		}
		memcpy(&ids[i], (const char *)items[i] + id_offset, sizeof(uint64_t));
	}
	qsort(ids, n, sizeof(*ids), u64_cmp);
	for (i = 0; i < n; i++) {
		if (ids[i] == 0 || (i && ids[i] == ids[i - 1])) {
			free(ids);
			return -EINVAL;
		}
	}
	*ret = ids;
	return 0;
}

static bool has_id(const uint64_t *ids, size_t n, uint64_t id)
{
	return id && bsearch(&id, ids, n, sizeof(*ids), u64_cmp);
}

static bool str_ok(const Perftools__Profiles__Profile *p, int64_t idx)
{
	return idx >= 0 && (uint64_t)idx < p->n_string_table;
}

static bool vt_ok(const Perftools__Profiles__Profile *p, const Perftools__Profiles__ValueType *v)
{
	return v && str_ok(p, v->type) && str_ok(p, v->unit);
}

int pprof_validate(const Perftools__Profiles__Profile *p)
{
	uint64_t *map_ids = NULL, *loc_ids = NULL, *func_ids = NULL;
	size_t i, j;
	int err = -EINVAL;

	if (!p || !p->n_string_table || !p->string_table)
		return -EINVAL;
	for (i = 0; i < p->n_string_table; i++)
		if (!p->string_table[i])
			return -EINVAL;
	if (p->string_table[0][0] != '\0')
		return -EINVAL;
	if (!str_ok(p, p->drop_frames) || !str_ok(p, p->keep_frames) ||
	    !str_ok(p, p->default_sample_type) || !str_ok(p, p->doc_url))
		return -EINVAL;
	if (p->period_type && !vt_ok(p, p->period_type))
		return -EINVAL;
	if ((p->n_sample_type && !p->sample_type) || (p->n_comment && !p->comment) ||
	    (p->n_mapping && !p->mapping) || (p->n_location && !p->location) ||
	    (p->n_function && !p->function) || (p->n_sample && !p->sample))
		return -EINVAL;
	for (i = 0; i < p->n_sample_type; i++)
		if (!vt_ok(p, p->sample_type[i]))
			return -EINVAL;
	for (i = 0; i < p->n_comment; i++)
		if (!str_ok(p, p->comment[i]))
			return -EINVAL;

	if ((err = sorted_ids(&map_ids, p->n_mapping, (const void *const *)p->mapping,
			      offsetof(Perftools__Profiles__Mapping, id))) < 0 ||
	    (err = sorted_ids(&loc_ids, p->n_location, (const void *const *)p->location,
			      offsetof(Perftools__Profiles__Location, id))) < 0 ||
	    (err = sorted_ids(&func_ids, p->n_function, (const void *const *)p->function,
			      offsetof(Perftools__Profiles__Function, id))) < 0)
		goto out;
	err = -EINVAL;

	for (i = 0; i < p->n_mapping; i++) {
		const Perftools__Profiles__Mapping *m = p->mapping[i];

		if (!str_ok(p, m->filename) || !str_ok(p, m->build_id))
			goto out;
	}
	for (i = 0; i < p->n_function; i++) {
		const Perftools__Profiles__Function *f = p->function[i];

		if (!str_ok(p, f->name) || !str_ok(p, f->system_name) || !str_ok(p, f->filename))
			goto out;
	}
	for (i = 0; i < p->n_location; i++) {
		const Perftools__Profiles__Location *l = p->location[i];

		if ((l->mapping_id && !has_id(map_ids, p->n_mapping, l->mapping_id)) ||
		    (l->n_line && !l->line))
			goto out;
		for (j = 0; j < l->n_line; j++)
			if (!l->line[j] || !has_id(func_ids, p->n_function, l->line[j]->function_id))
				goto out;
	}
	for (i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];

		if (!s || s->n_value != p->n_sample_type || (s->n_location_id && !s->location_id) ||
		    (s->n_label && !s->label))
			goto out;
		for (j = 0; j < s->n_location_id; j++)
			if (!has_id(loc_ids, p->n_location, s->location_id[j]))
				goto out;
		for (j = 0; j < s->n_label; j++) {
			const Perftools__Profiles__Label *l = s->label[j];

			if (!l || !str_ok(p, l->key) || !str_ok(p, l->str) || !str_ok(p, l->num_unit))
				goto out;
		}
	}
	err = 0;
out:
	free(map_ids);
	free(loc_ids);
	free(func_ids);
	return err;
}
