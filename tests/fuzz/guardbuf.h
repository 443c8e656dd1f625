/*
 * guardbuf.h - for parser fuzz targets: copy each input so that it ends
 * exactly where an inaccessible page begins (the picohttpparser technique
 * STYLE.md asks of parser tests; tests/unit/guard.h is the cmocka
 * version).  Under AddressSanitizer a heap redzone already catches a read
 * past the input; the guard page catches it in any build, the replay of
 * the corpora by `make check` included, and catches reads far past the
 * end that could land in another allocation.
 *
 * One region is mapped on first use and reused; an input larger than it
 * is passed as it is.  Header-only.
 */
#ifndef VIGIL_FUZZ_GUARDBUF_H
#define VIGIL_FUZZ_GUARDBUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUARDBUF_MAX (4u << 20)

static inline const uint8_t *guardbuf(const uint8_t *data, size_t size)
{
	static uint8_t *end; /* the first byte of the inaccessible page */

	if (!end) {
		size_t pg = (size_t)sysconf(_SC_PAGESIZE);
		uint8_t *map = mmap(NULL, GUARDBUF_MAX + pg, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (map == MAP_FAILED || mprotect(map + GUARDBUF_MAX, pg, PROT_NONE) != 0)
			abort();
		end = map + GUARDBUF_MAX;
	}
	if (size > GUARDBUF_MAX)
		return data;
	if (size)
		memmove(end - size, data, size);
	return end - size;
}

#endif
