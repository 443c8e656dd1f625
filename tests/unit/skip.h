/*
 * skip.h - skip a cmocka test case and say why.
 *
 * cmocka's skip() gives no reason.  skip_because() prints one first, as the
 * TAP diagnostic line "# skip: REASON" that tests/run.sh attaches to the
 * skipped case, so a skip is visible with its cause, and with
 * VIGIL_REQUIRE_BPF=1 (where every skip is a failure) the failure says what
 * was missing.  Skip only when the thing the test needs (root, BPF, cgroups,
 * a kernel feature) is really absent; a broken result is a failure.
 *
 * The checks below tell whether the host has what a test needs, asked
 * independently of the code under test, so that a broken module fails
 * instead of skipping.
 *
 * Header-only, for the cmocka unit tests; include after <cmocka.h>.
 */
#ifndef VIGIL_TEST_SKIP_H
#define VIGIL_TEST_SKIP_H

#include <stdbool.h>
#include <stdio.h>

#define skip_because(...)                              \
	do {                                           \
		print_message("# skip: " __VA_ARGS__); \
		print_message("\n");                   \
		skip();                                \
	} while (0)

/* True when /proc/kallsyms shows real addresses to this process (root,
 * or kptr_restrict 0), i.e. its first symbol's address is not zero. */
static inline bool host_shows_kernel_addresses(void)
{
	unsigned long long addr = 0;
	FILE *f = fopen("/proc/kallsyms", "re");

	if (!f)
		return false;
	if (fscanf(f, "%llx", &addr) != 1)
		addr = 0;
	fclose(f);
	return addr != 0;
}

#endif
