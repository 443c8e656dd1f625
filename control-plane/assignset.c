/*
 * assignset.c - the assignments vigil-cp applies (see assignset.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "assignset.h"

struct assignset_load {
	struct assignset *as;
	size_t cap;
	size_t oldest;	/* once ASSIGNSET_MAX are held: the slot the next one replaces */
};

static int assignset_add(const struct store_assignment *a, void *arg)
{
	struct assignset_load *l = arg;
	struct assignset *as = l->as;
	struct selector sel;
	char err[128];

	/* A selector the admin API let through but that does not parse selects nobody. */
	if (selector_parse(a->selector, &sel, err, sizeof(err)) != 0)
		return 0;
	if (as->n == ASSIGNSET_MAX) {
		/*
		 * Keep the newest: the array is a ring from here on, and the
		 * oldest's slot takes this one (moving the others down costs
		 * 32 MiB of memmove for each assignment past the limit).
		 */
		as->v[l->oldest] = (struct assignset_entry){ .serial = a->serial, .sel = sel };
		l->oldest = (l->oldest + 1) % ASSIGNSET_MAX;
		return 0;
	}
	if (as->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct assignset_entry *n = reallocarray(as->v, cap, sizeof(*n));

		if (!n)
			return -ENOMEM;
		as->v = n;
		l->cap = cap;
	}
	as->v[as->n++] = (struct assignset_entry){ .serial = a->serial, .sel = sel };
	return 0;
}

static void assignset_reverse(struct assignset_entry *v, size_t n)
{
	for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
		struct assignset_entry t = v[i];

		v[i] = v[j - 1];
		v[j - 1] = t;
	}
}

int assignset_load(struct store *st, struct assignset *ret)
{
	struct assignset as = { 0 };
	struct assignset_load l = { .as = &as };
	int r = store_assignment_list(st, assignset_add, &l);

	if (r) {
		assignset_release(&as);
		return r;
	}
	/*
	 * Newest first, so that the first match wins.  The store lists
	 * oldest first, so the ring is [oldest, n) then [0, oldest):
	 * reversed, each part reversed.
	 */
	assignset_reverse(as.v, l.oldest);
	assignset_reverse(as.v + l.oldest, as.n - l.oldest);
	*ret = as;
	return 0;
}

void assignset_release(struct assignset *as)
{
	free(as->v);
	as->v = NULL;
	as->n = 0;
}

int64_t assignset_resolve(const struct assignset *as, const json_t *description)
{
	for (size_t i = 0; description && i < as->n; i++)
		if (selector_match_json(&as->v[i].sel, description))
			return as->v[i].serial;
	return 0;
}

bool assignset_names(const struct assignset *as, int64_t serial)
{
	for (size_t i = 0; i < as->n; i++)
		if (as->v[i].serial == serial)
			return true;
	return false;
}
