/*
 * test_workerexe.c - finding the worker programs beside vigild
 * (workerexe.c), on real files: the one accepted is opened and is the
 * file beside "self"; a missing one, a symbolic link, a directory, a file
 * writable by group or others, one not executable by others, one with
 * another owner, and any in a directory others may write (not sticky) are
 * each refused with a reason naming the path.
 *
 * Needs root for the owner case (chown): skipped otherwise, failed with
 * VIGIL_REQUIRE_BPF=1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "rootonly.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workerexe.h"

static char tmp[] = "/tmp/vigil-workerexe-XXXXXX";
static char self[PATH_MAX];

static const char *at(const char *name)
{
	static char buf[2][PATH_MAX];
	static int i;

	i = (i + 1) % 2;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, name);
	return buf[i];
}

static void make_file(const char *name, mode_t mode)
{
	int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, name, strlen(name)), (ssize_t)strlen(name));
	close(fd);
	assert_int_equal(chmod(at(name), mode), 0);
}

static int setup(void **state)
{
	if (!mkdtemp(tmp))
		return -1;
	snprintf(self, sizeof(self), "%s/vigild", tmp);
	make_file("vigild", 0755);
	return 0;
}

static int teardown(void **state)
{
	rm_tree(tmp);
	return 0;
}

/* Expect workerexe_open(self, role) to fail with err, its reason holding want. */
static void refused(const char *role, int err, const char *want)
{
	char why[PATH_MAX + 200] = "";
	int fd = -1;

	assert_int_equal(workerexe_open(self, role, &fd, why, sizeof(why)), err);
	assert_int_equal(fd, -1);
	if (!strstr(why, want))
		fail_msg("reason \"%s\" lacks \"%s\"", why, want);
	if (!strstr(why, tmp))
		fail_msg("reason \"%s\" names no path", why);
}

static void test_accepted(void **state)
{
	char why[256] = "", buf[64] = "";
	struct stat a, b;
	int fd = -1;

	make_file("vigild-collector", 0755);
	assert_int_equal(workerexe_open(self, "collector", &fd, why, sizeof(why)), 0);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(stat(at("vigild-collector"), &b), 0);
	assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen("vigild-collector"));
	assert_string_equal(buf, "vigild-collector");
	close(fd);
	/* 0711 is enough: the workers only execute it */
	make_file("vigild-uplink", 0711);
	assert_int_equal(workerexe_open(self, "uplink", &fd, why, sizeof(why)), 0);
	close(fd);
}

static void test_missing(void **state)
{
	refused("nothere", -ENOENT, "vigild-nothere: No such file or directory");
}

static void test_symlink(void **state)
{
	make_file("real", 0755);
	assert_int_equal(symlink(at("real"), at("vigild-linked")), 0);
	refused("linked", -EPERM, "symbolic link");
}

static void test_directory(void **state)
{
	assert_int_equal(mkdir(at("vigild-dir"), 0755), 0);
	refused("dir", -EPERM, "not a regular file");
}

static void test_writable(void **state)
{
	make_file("vigild-gw", 0775);
	refused("gw", -EPERM, "writable by its group (mode 0775)");
	make_file("vigild-ow", 0757);
	refused("ow", -EPERM, "writable by others (mode 0757)");
}

static void test_not_executable(void **state)
{
	make_file("vigild-nx", 0750);
	refused("nx", -EPERM, "not executable by others (mode 0750)");
}

static void test_other_owner(void **state)
{
	need_root();
	make_file("vigild-theirs", 0755);
	assert_int_equal(chown(at("vigild-theirs"), 4242, 4242), 0);
	refused("theirs", -EPERM, "owned by uid 4242");
}

static void test_directory_writable(void **state)
{
	make_file("vigild-collector", 0755);
	assert_int_equal(chmod(tmp, 0777), 0);
	refused("collector", -EPERM, "may be changed by others");
	assert_int_equal(chmod(tmp, 0775), 0);
	refused("collector", -EPERM, "mode 0775)");
	/* sticky: others may add files, not replace this one (its owner is checked) */
	assert_int_equal(chmod(tmp, 01777), 0);
	{
		char why[256];
		int fd = -1;

		assert_int_equal(workerexe_open(self, "collector", &fd, why, sizeof(why)), 0);
		close(fd);
	}
	assert_int_equal(chmod(tmp, 0700), 0);
	/* a relative self has no directory to check */
	{
		char why[256], cwd[PATH_MAX];
		int fd = -1;

		assert_non_null(getcwd(cwd, sizeof(cwd)));
		assert_int_equal(chdir(tmp), 0);
		assert_int_equal(workerexe_open("vigild", "collector", &fd, why, sizeof(why)), -EINVAL);
		assert_int_equal(fd, -1);
		assert_non_null(strstr(why, "not an absolute path"));
		assert_int_equal(chdir(cwd), 0);
	}
}

static void test_bad_role(void **state)
{
	char why[64];
	int fd = -1;

	assert_int_equal(workerexe_open(self, "../x", &fd, why, sizeof(why)), -EINVAL);
	assert_int_equal(workerexe_open(self, "", &fd, why, sizeof(why)), -EINVAL);
	assert_int_equal(fd, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_symlink),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_writable),
		cmocka_unit_test(test_not_executable),
		cmocka_unit_test(test_other_owner),
		cmocka_unit_test(test_directory_writable),
		cmocka_unit_test(test_bad_role),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
