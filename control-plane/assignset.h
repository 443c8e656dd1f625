/*
 * assignset.h - the assignments of policies to selectors as vigil-cp
 * applies them: loaded from the store, the selectors parsed once, newest
 * first, so that the first match is the newest and wins.  At most
 * ASSIGNSET_MAX are kept, the newest; a stored selector that no longer
 * parses selects nobody.  The OpAMP side (what an agent is sent) and the
 * admin API (what "assigned_serial" shows) both resolve through this, so
 * they cannot disagree.
 *
 * Runs in vigil-cp.  Library-like: 0 or -errno, never logs.
 */
#ifndef VIGIL_ASSIGNSET_H
#define VIGIL_ASSIGNSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "selector.h"
#include "store.h"

#define ASSIGNSET_MAX 4096

struct assignset {
	struct assignset_entry {
		int64_t serial;
		struct selector sel;
	} *v;			/* newest first; malloc'ed */
	size_t n;
};

/* 0 and *ret (release with assignset_release), or the store's -errno, -ENOMEM. */
int assignset_load(struct store *st, struct assignset *ret);

/* Accepts a zeroed set. */
void assignset_release(struct assignset *as);

/*
 * The serial of the newest assignment that selects an agent described by
 * description (selector_description()'s parse; NULL matches nothing), 0
 * when none does.
 */
int64_t assignset_resolve(const struct assignset *as, const json_t *description);

/* Whether any assignment names serial. */
bool assignset_names(const struct assignset *as, int64_t serial);

#endif
