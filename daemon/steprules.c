/*
 * steprules.c - the direct-mapped cache of unwinding steps (steprules.h).
 *
 * Two-way sets, the most recently used slot first.  The slots are
 * allocated on first use and touched only as rules are stored, so a
 * collector that never unwinds copied stacks pays nothing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "steprules.h"

struct slot {
	uint64_t cfi_id; /* 0: empty (ids start at 1) */
	uint64_t addr;
	struct steprule rule;
};

struct steprules {
	struct slot *slots; /* STEPRULES_SLOTS, or NULL until the first put */
	struct steprules_stats st;
};

_Static_assert((STEPRULES_SLOTS & (STEPRULES_SLOTS - 1)) == 0, "a power of two");

struct steprules *steprules_new(void)
{
	return calloc(1, sizeof(struct steprules));
}

void steprules_free(struct steprules *r)
{
	if (!r)
		return;
	free(r->slots);
	free(r);
}

/* The first of the two slots of (cfi_id, addr)'s set. */
static size_t set_of(uint64_t cfi_id, uint64_t addr)
{
	uint64_t h = (addr ^ (cfi_id * 0xff51afd7ed558ccdull)) * 0x9e3779b97f4a7c15ull;

	return ((size_t)(h >> 32) & (STEPRULES_SLOTS / 2 - 1)) * 2;
}

static bool holds(const struct slot *s, uint64_t cfi_id, uint64_t addr)
{
	return s->cfi_id == cfi_id && s->addr == addr && s->rule.kind;
}

int steprules_get(struct steprules *r, uint64_t cfi_id, uint64_t addr, struct steprule *ret)
{
	struct slot *s, t;

	if (r->slots) {
		s = &r->slots[set_of(cfi_id, addr)];
		if (holds(&s[1], cfi_id, addr)) {
			/* the set's most recently used comes first */
			t = s[0];
			s[0] = s[1];
			s[1] = t;
		}
		if (holds(&s[0], cfi_id, addr)) {
			*ret = s[0].rule;
			r->st.hits++;
			return 0;
		}
	}
	r->st.misses++;
	return -ENOENT;
}

void steprules_put(struct steprules *r, uint64_t cfi_id, uint64_t addr, const struct steprule *rule)
{
	struct slot *s;

	if (!cfi_id || !rule->kind)
		return;
	if (!r->slots) {
		r->slots = calloc(STEPRULES_SLOTS, sizeof(*r->slots));
		if (!r->slots)
			return; /* a cache: unwinding goes on without it */
	}
	s = &r->slots[set_of(cfi_id, addr)];
	if (!holds(&s[0], cfi_id, addr)) {
		/* the least recently used of the two goes */
		if (s[1].cfi_id && !holds(&s[1], cfi_id, addr))
			r->st.replaced++;
		s[1] = s[0];
	}
	s[0] = (struct slot){ .cfi_id = cfi_id, .addr = addr, .rule = *rule };
}

void steprules_get_stats(const struct steprules *r, struct steprules_stats *ret)
{
	*ret = r->st;
}
