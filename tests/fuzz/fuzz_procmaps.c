/*
 * fuzz_procmaps.c - libFuzzer target for the /proc/PID/maps parser (make
 * fuzz).
 *
 * Input: the text of a maps file.  The kernel writes it, but the paths in
 * it are whatever the profiled process named its files (spaces, newlines
 * printed as "\012", a trailing " (deleted)"), so it is parsed as
 * untrusted text: from memory ending at an inaccessible page.  What
 * parses must be sorted, every mapping non-empty with a NUL-terminated
 * path of at most PROCMAPS_MAX_PATH bytes, and procmaps_find() must agree
 * with a linear search.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guardbuf.h"
#include "procmaps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                 \
	do {                                                                     \
		if (!(x)) {                                                      \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
				__LINE__, #x);                                   \
			abort();                                                 \
		}                                                                \
	} while (0)

static const struct procmap *linear_find(const struct procmaps *m, uint64_t addr)
{
	const struct procmap *best = NULL;

	/* The last mapping (in sorted order) starting at or below addr. */
	for (size_t i = 0; i < m->n; i++)
		if (m->maps[i].start <= addr)
			best = &m->maps[i];
	return best && addr < best->end ? best : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)guardbuf(data, size);
	struct procmaps *m = NULL;
	int r = procmaps_parse(text, size, &m);

	CHECK(r == 0 || r == -EINVAL || r == -E2BIG);
	if (r < 0)
		return 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct procmap *p = &m->maps[i];

		CHECK(p->start < p->end);
		CHECK(i == 0 || m->maps[i - 1].start <= p->start);
		CHECK(strlen(p->path) <= PROCMAPS_MAX_PATH);
		CHECK((p->prot & ~7u) == 0);
		CHECK(procmaps_find(m, p->start) != NULL);
		CHECK(procmaps_find(m, p->start)->start <= p->start);
	}
	for (size_t i = 0; i < m->n && i < 256; i++) {
		const uint64_t probe[] = { m->maps[i].start - 1, m->maps[i].end - 1, m->maps[i].end };

		for (int k = 0; k < 3; k++)
			CHECK(procmaps_find(m, probe[k]) == linear_find(m, probe[k]));
	}
	CHECK(procmaps_find(m, 0) == linear_find(m, 0));
	CHECK(procmaps_find(m, UINT64_MAX) == linear_find(m, UINT64_MAX));
	procmaps_free(m);
	return 0;
}
