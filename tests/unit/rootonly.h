/*
 * rootonly.h - for unit tests that need root: need_root() at the top of a
 * test skips it when the test does not run as root, and fails it instead
 * with VIGIL_REQUIRE_BPF=1, where nothing may skip; rm_tree() removes a
 * scratch directory made with mkdtemp().
 *
 * Header-only, for the cmocka unit tests; include after <cmocka.h>.
 */
#ifndef VIGIL_TEST_ROOTONLY_H
#define VIGIL_TEST_ROOTONLY_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void need_root(void)
{
	const char *req = getenv("VIGIL_REQUIRE_BPF");

	if (geteuid() == 0)
		return;
	if (req && strcmp(req, "1") == 0)
		fail_msg("needs root (VIGIL_REQUIRE_BPF=1: may not skip)");
	skip();
}

static inline int rm_tree_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Remove dir and all it holds, following no symlink; a dir still ending in XXXXXX was never made. */
static inline void rm_tree(const char *dir)
{
	size_t n = strlen(dir);

	if (n >= 6 && strcmp(dir + n - 6, "XXXXXX") == 0)
		return;
	nftw(dir, rm_tree_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
