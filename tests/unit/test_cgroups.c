/*
 * test_cgroups.c - cgroup ids name real cgroup v2 directories, including
 * ones created after start-up and ones removed since (needs root and a
 * cgroup2 mount; this machine has both).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cgroups.h"

static void test_find_mount(void **state)
{
	const char *mi =
		"22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
		"35 22 0:30 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
		"36 22 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
	char p[256];

	assert_int_equal(cgroups_find_mount(mi, p, sizeof(p)), 0);
	assert_string_equal(p, "/sys/fs/cgroup/unified");
	assert_int_equal(cgroups_find_mount("22 1 0:21 / /sys rw - sysfs sysfs rw\n", p, sizeof(p)),
			 -ENOENT);
	assert_int_equal(cgroups_find_mount("", p, sizeof(p)), -ENOENT);
	assert_int_equal(cgroups_find_mount(mi, p, 5), -ENAMETOOLONG);
}

static void test_real(void **state)
{
	struct cgroups *c;
	char top[256], child[300], rel[300];
	struct stat st, rootst;

	assert_int_equal(cgroups_new(NULL, &c), 0);
	snprintf(top, sizeof(top), "%s/vigil-unit-%d", cgroups_root(c), (int)getpid());
	snprintf(child, sizeof(child), "%s/inner", top);
	/* Created after the first scan: found by the on-demand rescan. */
	assert_int_equal(cgroups_rescan(c), 0);
	assert_int_equal(mkdir(top, 0755), 0);
	assert_int_equal(mkdir(child, 0755), 0);
	assert_int_equal(stat(child, &st), 0);
	assert_int_equal(stat(cgroups_root(c), &rootst), 0);

	/* The rescan is rate-limited to once a second. */
	sleep(1);
	snprintf(rel, sizeof(rel), "/vigil-unit-%d/inner", (int)getpid());
	assert_non_null(cgroups_path(c, st.st_ino));
	assert_string_equal(cgroups_path(c, st.st_ino), rel);
	assert_string_equal(cgroups_path(c, rootst.st_ino), "/");

	/* Removed: its samples may still be pending, so the name stays. */
	assert_int_equal(rmdir(child), 0);
	assert_int_equal(rmdir(top), 0);
	assert_int_equal(cgroups_rescan(c), 0);
	assert_string_equal(cgroups_path(c, st.st_ino), rel);
	/* An id that never existed */
	assert_null(cgroups_path(c, 0xfffffffffffull));
	cgroups_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_mount),
		cmocka_unit_test(test_real),
	};
	return cmocka_run_group_tests_name("cgroups", tests, NULL, NULL);
}
