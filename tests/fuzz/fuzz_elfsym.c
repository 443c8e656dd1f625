/*
 * fuzz_elfsym.c - libFuzzer target for the ELF symbol reader (make fuzz).
 *
 * Input: the bytes of an ELF file, as any user on the host can make one
 * and run it for the collector to read.  They are parsed twice through
 * the API the collector uses: from a memfd with elfsym_open_fd() (the
 * collector's path, with preads) and from memory ending at an
 * inaccessible page with elfsym_open_mem().  Both must agree on the
 * result, and whatever parsed must answer every query within its own
 * bounds: a lookup returns a NUL-terminated name of at most
 * ELFSYM_MAX_NAME_LEN bytes that is the same for the same address, and a
 * translated offset lies in the file.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elfsym.h"
#include "guardbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                 \
	do {                                                                     \
		if (!(x)) {                                                      \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
				__LINE__, #x);                                   \
			abort();                                                 \
		}                                                                \
	} while (0)

static int memfd = -1;

static void query(const struct elfsym *e, const struct elfsym *f, uint64_t vaddr)
{
	uint64_t off = UINT64_MAX, off2 = UINT64_MAX;
	const char *a = elfsym_lookup(e, vaddr, &off);
	const char *b = elfsym_lookup(f, vaddr, &off2);

	CHECK((a == NULL) == (b == NULL));
	if (a) {
		CHECK(strlen(a) <= ELFSYM_MAX_NAME_LEN && strlen(a) > 0);
		CHECK(strcmp(a, b) == 0);
		CHECK(off == off2 && off <= vaddr);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct elfsym *e = NULL, *f = NULL;
	const uint8_t *g;
	int r1, r2;

	if (memfd < 0 && (memfd = memfd_create("fuzz-elfsym", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(memfd, 0) < 0 || (size && pwrite(memfd, data, size, 0) != (ssize_t)size))
		abort();
	r1 = elfsym_open_fd(memfd, &e);
	g = guardbuf(data, size);
	r2 = elfsym_open_mem(g, size, &f);
	CHECK(r1 == r2);
	CHECK(r1 == 0 || r1 == -EINVAL || r1 == -E2BIG);
	if (r1 < 0)
		return 0;

	CHECK(elfsym_symbol_count(e) == elfsym_symbol_count(f));
	CHECK(elfsym_symbol_count(e) <= ELFSYM_MAX_SYMBOLS);
	CHECK(elfsym_file_size(e) == size);
	CHECK(elfsym_mem_usage(e) == elfsym_mem_usage(f));
	{
		size_t l1 = 0, l2 = 0;
		const uint8_t *b1 = elfsym_build_id(e, &l1), *b2 = elfsym_build_id(f, &l2);

		CHECK((b1 == NULL) == (b2 == NULL));
		CHECK(l1 == l2 && l1 <= ELFSYM_MAX_BUILD_ID);
		CHECK(!b1 || memcmp(b1, b2, l1) == 0);
	}
	/* Offsets across the file (and past it), and what they translate to. */
	for (uint64_t off = 0; off <= size + 64; off += 1 + size / 64) {
		uint64_t va = 0, vb = 0;
		int t1 = elfsym_offset_to_vaddr(e, off, &va);
		int t2 = elfsym_offset_to_vaddr(f, off, &vb);

		CHECK(t1 == t2 && va == vb);
		CHECK(t1 == 0 || t1 == -ENOENT);
		CHECK(t1 != 0 || off < size);
		if (t1 == 0) {
			query(e, f, va);
			query(e, f, va - 1);
		}
	}
	/* Addresses a symbol table could hold, and the edges of the space. */
	for (size_t i = 0; i + 8 <= size && i < 4096; i += 8) {
		uint64_t v;

		memcpy(&v, data + i, 8);
		query(e, f, v);
	}
	query(e, f, 0);
	query(e, f, UINT64_MAX);
	elfsym_free(e);
	elfsym_free(f);
	return 0;
}
