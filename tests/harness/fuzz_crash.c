/*
 * fuzz_crash.c - a fuzz target with bugs on purpose, for the test of the
 * corpus replay (tests/harness/run_sh.sh, tests/fuzz/replay.c): an input
 * starting with "abort" aborts, "over" reads one byte past the input (ASan),
 * "leak" leaks (LeakSanitizer), "hang" never returns; anything else is fine.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int starts(const uint8_t *d, size_t n, const char *w)
{
	return n >= strlen(w) && memcmp(d, w, strlen(w)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static volatile uint8_t sink;

	if (starts(data, size, "abort"))
		abort();
	if (starts(data, size, "over"))
		sink = data[size];
	if (starts(data, size, "leak")) {
		volatile uint8_t *lost = malloc(64);

		if (lost)
			lost[0] = 1;
	}
	if (starts(data, size, "hang"))
		for (;;)
			sink++;
	return 0;
}
