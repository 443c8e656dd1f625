/*
 * guard.h - for parser tests: copy input so that it ends exactly where an
 * inaccessible page begins, so that reading one byte past it faults and
 * fails the test instead of passing by luck (picohttpparser's technique).
 *
 * Header-only, for the cmocka unit tests; include after <cmocka.h>.
 */
#ifndef VIGIL_TEST_GUARD_H
#define VIGIL_TEST_GUARD_H

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* An mmap'ed copy of data that ends where an inaccessible page begins. */
struct guarded {
	void *map;
	size_t map_len;
	uint8_t *data;
};

static inline void guard_copy(struct guarded *g, const void *data, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t pages = (len + pg - 1) / pg + 1;

	g->map_len = pages * pg;
	g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g->map != MAP_FAILED);
	assert_int_equal(mprotect((uint8_t *)g->map + (pages - 1) * pg, pg, PROT_NONE), 0);
	g->data = (uint8_t *)g->map + (pages - 1) * pg - len;
	if (len)
		memcpy(g->data, data, len);
}

static inline void guard_free(struct guarded *g)
{
	munmap(g->map, g->map_len);
}

#endif
