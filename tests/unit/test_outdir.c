/*
 * test_outdir.c - the output directory opener (outdir.c) on real
 * directories: what it creates is handed to the user, what exists is
 * never chowned and is refused unless the user can write it, and a
 * symbolic link anywhere on the path is refused, naming it, with the
 * directory it points to left as it was.
 *
 * Needs root (to create root-owned directories and chown): skipped
 * otherwise, failed with VIGIL_REQUIRE_BPF=1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "rootonly.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outdir.h"

#define UID 4242
#define GID 4243
#define USER "tester"

static char tmp[] = "/tmp/vigil-outdir-XXXXXX";
static char cwd[PATH_MAX];

/* tmp/name, in a static buffer (one at a time). */
static const char *at(const char *name)
{
	static char buf[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, name);
	return buf[i];
}

static void assert_owner_mode(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_uid, uid);
	assert_int_equal(st.st_gid, gid);
	assert_int_equal(st.st_mode & 07777, mode);
}

/* outdir_open, expecting success: returns created, checks fd is path. */
static bool opens(const char *path)
{
	char why[512] = "";
	struct stat a, b;
	bool created = false;
	int fd = -1;

	assert_int_equal(outdir_open(path, UID, GID, USER, &fd, &created, why, sizeof(why)), 0);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_dev, b.st_dev);
	close(fd);
	return created;
}

/* outdir_open, expecting err; the reason must hold `says` and be one line. */
static void refused(const char *path, int err, const char *says)
{
	char why[512] = "";
	int fd = -1;

	assert_int_equal(outdir_open(path, UID, GID, USER, &fd, NULL, why, sizeof(why)), err);
	assert_int_equal(fd, -1);
	if (!strstr(why, says))
		fail_msg("reason \"%s\" lacks \"%s\"", why, says);
	assert_null(strchr(why, '\n'));
}

static int setup(void **state)
{
	if (geteuid() != 0)
		return 0;
	umask(022);
	if (!getcwd(cwd, sizeof(cwd)) || !mkdtemp(tmp))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	if (cwd[0] && chdir(cwd) < 0)
		return -1;
	rm_tree(tmp);
	return 0;
}

/* Missing directories are made; only the last is handed over, 0750. */
static void test_creates(void **state)
{
	need_root();
	assert_true(opens(at("new/a/out")));
	assert_owner_mode(at("new"), 0, 0, 0755);
	assert_owner_mode(at("new/a"), 0, 0, 0755);
	assert_owner_mode(at("new/a/out"), UID, GID, 0750);
	/* The next run finds it, the user's own: used, not created again. */
	assert_false(opens(at("new/a/out")));
	assert_owner_mode(at("new/a/out"), UID, GID, 0750);
}

/* A relative path, with "." components and extra slashes. */
static void test_relative(void **state)
{
	need_root();
	assert_int_equal(chdir(tmp), 0);
	assert_true(opens("./rel//x/./"));
	assert_owner_mode(at("rel/x"), UID, GID, 0750);
	assert_owner_mode(at("rel"), 0, 0, 0755);
	assert_false(opens("rel/x"));
	assert_int_equal(chdir(cwd), 0);
}

/* Existing directories the user may write are used as they are. */
static void test_existing_writable(void **state)
{
	need_root();
	assert_int_equal(mkdir(at("own"), 0700), 0);
	assert_int_equal(chown(at("own"), UID, 0), 0);
	assert_false(opens(at("own")));
	assert_owner_mode(at("own"), UID, 0, 0700);

	assert_int_equal(mkdir(at("group"), 0), 0);
	assert_int_equal(chmod(at("group"), 0770), 0);
	assert_int_equal(chown(at("group"), 0, GID), 0);
	assert_false(opens(at("group")));
	assert_owner_mode(at("group"), 0, GID, 0770);
}

/*
 * An existing directory the user cannot write is refused, and never
 * chowned - even empty and root's, which vigild used to hand over.
 */
static void test_existing_refused(void **state)
{
	char fix[PATH_MAX + 32];

	need_root();
	assert_int_equal(mkdir(at("root-empty"), 0755), 0);
	snprintf(fix, sizeof(fix), "chown %s: %s", USER, at("root-empty"));
	refused(at("root-empty"), -EACCES, fix);
	assert_owner_mode(at("root-empty"), 0, 0, 0755);

	/* the user's own, but not writable by it */
	assert_int_equal(mkdir(at("own-ro"), 0500), 0);
	assert_int_equal(chown(at("own-ro"), UID, GID), 0);
	refused(at("own-ro"), -EACCES, "chmod u+rwx");
	/* the owner's bits count for the owner, even when others' allow */
	assert_int_equal(mkdir(at("own-0077"), 0), 0);
	assert_int_equal(chmod(at("own-0077"), 0077), 0);
	assert_int_equal(chown(at("own-0077"), UID, GID), 0);
	refused(at("own-0077"), -EACCES, "writable by every user");
	/* the user's group, without write */
	assert_int_equal(mkdir(at("group-ro"), 0750), 0);
	assert_int_equal(chown(at("group-ro"), 0, GID), 0);
	refused(at("group-ro"), -EACCES, "not writable by user " USER);
	/* writable but not searchable is no use */
	assert_int_equal(mkdir(at("no-x"), 0), 0);
	assert_int_equal(chmod(at("no-x"), 0220), 0);
	assert_int_equal(chown(at("no-x"), 0, GID), 0);
	refused(at("no-x"), -EACCES, "not writable");
}

/*
 * Profiles hold every process's stacks: an existing directory that
 * someone else owns or may write is refused, however writable it is for
 * the user (a sticky /tmp-like one too: others could read and plant).
 */
static void test_existing_shared(void **state)
{
	need_root();
	assert_int_equal(mkdir(at("sticky"), 0755), 0);
	assert_int_equal(chmod(at("sticky"), 01777), 0);
	refused(at("sticky"), -EACCES, "writable by every user: they could read, forge or delete profiles; chmod o-w");
	assert_owner_mode(at("sticky"), 0, 0, 01777);
	assert_int_equal(mkdir(at("other-owner"), 0777), 0);
	assert_int_equal(chmod(at("other-owner"), 0777), 0);
	assert_int_equal(chown(at("other-owner"), 65534, 65534), 0);
	refused(at("other-owner"), -EACCES, "is owned by uid 65534, neither root nor " USER);
	assert_int_equal(mkdir(at("other-group"), 0), 0);
	assert_int_equal(chmod(at("other-group"), 0770), 0);
	assert_int_equal(chown(at("other-group"), UID, 65534), 0);
	refused(at("other-group"), -EACCES, "is writable by its group");
	assert_owner_mode(at("other-group"), UID, 65534, 0770);
}

/*
 * The directory vigild creates is created only where no one else could
 * swap it before it is handed over: not in a parent others may write
 * (unless sticky) or another user owns.
 */
static void test_parent(void **state)
{
	need_root();
	assert_int_equal(mkdir(at("loose"), 0), 0);
	assert_int_equal(chmod(at("loose"), 0777), 0);
	refused(at("loose/out"), -EACCES, "lets other users rename what vigild would create in it");
	assert_int_equal(access(at("loose/out"), F_OK), -1);
	assert_int_equal(mkdir(at("theirs"), 0755), 0);
	assert_int_equal(chown(at("theirs"), 65534, 65534), 0);
	refused(at("theirs/out"), -EACCES, "lets its owner rename what vigild would create in it");
	/* sticky, like /tmp: others cannot rename root's entries */
	assert_int_equal(chmod(at("loose"), 01777), 0);
	assert_true(opens(at("loose/out")));
	assert_owner_mode(at("loose/out"), UID, GID, 0750);
}

/*
 * A symbolic link as the last component, say planted in a sticky
 * world-writable directory: refused, naming it; what it points to (an
 * empty root-owned directory) keeps its owner and mode; a dangling link
 * does not get its target created.
 */
static void test_symlink_last(void **state)
{
	char says[PATH_MAX + 32];
	struct stat st;

	need_root();
	assert_int_equal(mkdir(at("pub"), 0755), 0);
	assert_int_equal(chmod(at("pub"), 01777), 0);
	assert_int_equal(mkdir(at("victim"), 0755), 0);
	assert_int_equal(symlink(at("victim"), at("pub/out")), 0);
	snprintf(says, sizeof(says), "%s is a symbolic link", at("pub/out"));
	refused(at("pub/out"), -ELOOP, says);
	assert_owner_mode(at("victim"), 0, 0, 0755);

	assert_int_equal(symlink(at("nowhere"), at("pub/dangling")), 0);
	refused(at("pub/dangling"), -ELOOP, "pub/dangling is a symbolic link");
	assert_int_equal(lstat(at("nowhere"), &st), -1);
	assert_int_equal(errno, ENOENT);

	/* a trailing slash or dot does not make it a directory */
	refused(at("pub/out/"), -ELOOP, "pub/out is a symbolic link");
	refused(at("pub/out/."), -ELOOP, "pub/out is a symbolic link");
}

/* A symbolic link in a middle component: refused, naming that component. */
static void test_symlink_middle(void **state)
{
	char says[PATH_MAX + 32];
	struct stat st;

	need_root();
	assert_int_equal(mkdir(at("real"), 0755), 0);
	assert_int_equal(symlink("real", at("mid")), 0);
	snprintf(says, sizeof(says), "%s is a symbolic link", at("mid"));
	refused(at("mid/out"), -ELOOP, says);
	assert_int_equal(lstat(at("real/out"), &st), -1);
	assert_int_equal(errno, ENOENT);
	/* magic links too */
	snprintf(says, sizeof(says), "/proc/%d/cwd/out", (int)getpid());
	refused(says, -ELOOP, "/cwd is a symbolic link");
}

static void test_not_directory(void **state)
{
	int fd;

	need_root();
	fd = open(at("file"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	refused(at("file"), -ENOTDIR, "file is not a directory");
	refused(at("file/out"), -ENOTDIR, "file is not a directory");
	refused("", -EINVAL, "empty");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_creates),
		cmocka_unit_test(test_relative),
		cmocka_unit_test(test_existing_writable),
		cmocka_unit_test(test_existing_refused),
		cmocka_unit_test(test_existing_shared),
		cmocka_unit_test(test_parent),
		cmocka_unit_test(test_symlink_last),
		cmocka_unit_test(test_symlink_middle),
		cmocka_unit_test(test_not_directory),
	};
	return cmocka_run_group_tests_name("outdir", tests, setup, teardown);
}
