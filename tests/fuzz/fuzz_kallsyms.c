/*
 * fuzz_kallsyms.c - libFuzzer target for kallsyms parsing (make fuzz).
 *
 * Input: the text of a kallsyms file, read through the API the collector
 * uses, kallsyms_load_fd(), from a memfd (seekable, like /proc/kallsyms,
 * so the sizing pass runs too).  What loads must answer lookups
 * consistently: a name found for an address is NUL-terminated, at most a
 * line long, at an offset below KALLSYMS_MAX_SYMBOL_SIZE, and its
 * module's range holds the address.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hexdigit.h"
#include "kallsyms.h"

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

static void query(struct kallsyms *k, uint64_t addr)
{
	const char *mod = (const char *)1;
	uint64_t off = UINT64_MAX, start, end;
	const char *name = kallsyms_lookup(k, addr, &mod, &off);

	if (!name)
		return;
	CHECK(strlen(name) > 0 && strlen(name) <= KALLSYMS_MAX_LINE);
	CHECK(off < KALLSYMS_MAX_SYMBOL_SIZE && off <= addr);
	CHECK(mod == NULL || (mod[0] == '[' && mod[strlen(mod) - 1] == ']'));
	CHECK(kallsyms_range(k, mod, &start, &end) == 0);
	CHECK(start <= addr - off && addr - off < end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kallsyms *k = NULL;
	int r;

	if (memfd < 0 && (memfd = memfd_create("fuzz-kallsyms", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(memfd, 0) < 0 || (size && pwrite(memfd, data, size, 0) != (ssize_t)size) ||
	    lseek(memfd, 0, SEEK_SET) != 0)
		abort();
	r = kallsyms_load_fd(memfd, &k);
	CHECK(r == 0 || r == -EINVAL || r == -E2BIG || r == -EPERM || r == -ENODATA);
	if (r < 0)
		return 0;
	CHECK(kallsyms_count(k) > 0);
	/* Every address written in the input, and its neighbours. */
	for (size_t i = 0; i < size; i++) {
		uint64_t v = 0;
		size_t n = 0;

		if (i > 0 && hexdigit_value((char)data[i - 1]) >= 0)
			continue;
		while (i + n < size && n < 16 && hexdigit_value((char)data[i + n]) >= 0)
			v = v << 4 | (uint64_t)hexdigit_value((char)data[i + n++]);
		if (n == 0)
			continue;
		query(k, v - 1);
		query(k, v);
		query(k, v + 1);
	}
	query(k, 0);
	query(k, UINT64_MAX);
	kallsyms_free(k);
	return 0;
}
