/*
 * test_policyfile.c - the policy file opener (policyfile.c) on real files:
 * a regular file root owns and only root may write is opened read-only;
 * a symbolic link on the path (the file itself, or a directory above it),
 * a file writable by its group or by others, a file another user owns,
 * and anything but a regular file are refused with a one-line reason that
 * names the path at fault and the fix.  It also runs as the monitor runs
 * it on SIGHUP: dropped to the unprivileged user with the monitor's
 * capabilities, under its seccomp filter.
 *
 * Needs root (to make files owned by root and by others): skipped
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policyfile.h"
#include "sandbox.h"

#define TEXT "version: 1\n"

static char tmp[] = "/tmp/vigil-policyfile-XXXXXX";

static const char *at(const char *name)
{
	static char buf[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, name);
	return buf[i];
}

/* A policy file with owner uid and mode exactly as given. */
static const char *policy(const char *name, uid_t uid, mode_t mode)
{
	const char *path = at(name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, TEXT, strlen(TEXT)), strlen(TEXT));
	assert_int_equal(fchown(fd, uid, 0), 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void opens(const char *path)
{
	char why[512] = "", buf[64];
	int fd = -1;

	assert_int_equal(policyfile_open(path, &fd, why, sizeof(why)), 0);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(read(fd, buf, sizeof(buf)), strlen(TEXT));
	assert_memory_equal(buf, TEXT, strlen(TEXT));
	close(fd);
}

static void refused(const char *path, int err, const char *says)
{
	char why[512] = "";
	int fd = -1;

	assert_int_equal(policyfile_open(path, &fd, why, sizeof(why)), err);
	assert_int_equal(fd, -1);
	if (!strstr(why, says))
		fail_msg("reason \"%s\" lacks \"%s\"", why, says);
	assert_null(strchr(why, '\n'));
}

static int setup(void **state)
{
	if (geteuid() != 0)
		return 0;
	if (!mkdtemp(tmp) || chmod(tmp, 0755) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	rm_tree(tmp);
	return 0;
}

static void test_root_owned(void **state)
{
	need_root();
	opens(policy("p0644.yaml", 0, 0644));
	opens(policy("p0600.yaml", 0, 0600));
	opens(policy("p0444.yaml", 0, 0444));
}

static void test_symlink(void **state)
{
	char says[PATH_MAX + 32];

	need_root();
	policy("real.yaml", 0, 0644);
	assert_int_equal(symlink("real.yaml", at("link.yaml")), 0);
	snprintf(says, sizeof(says), "%s is a symbolic link", at("link.yaml"));
	refused(at("link.yaml"), -ELOOP, says);

	/* a directory above it */
	assert_int_equal(mkdir(at("etc"), 0755), 0);
	assert_int_equal(symlink("etc", at("etc-link")), 0);
	policy("etc/p.yaml", 0, 0644);
	snprintf(says, sizeof(says), "%s is a symbolic link", at("etc-link"));
	refused(at("etc-link/p.yaml"), -ELOOP, says);
	opens(at("etc/p.yaml"));
}

static void test_writable(void **state)
{
	char says[PATH_MAX + 32];

	need_root();
	snprintf(says, sizeof(says), "chmod go-w %s", at("g.yaml"));
	refused(policy("g.yaml", 0, 0664), -EPERM, says);
	refused(at("g.yaml"), -EPERM, "writable by its group");
	refused(policy("o.yaml", 0, 0646), -EPERM, "writable by others");
	refused(policy("go.yaml", 0, 0666), -EPERM, "writable by group and others");
}

static void test_other_owner(void **state)
{
	char says[PATH_MAX + 32];

	need_root();
	snprintf(says, sizeof(says), "chown root: %s", at("u.yaml"));
	refused(policy("u.yaml", 4242, 0644), -EPERM, says);
	refused(at("u.yaml"), -EPERM, "owned by uid 4242");
}

static void test_not_regular(void **state)
{
	need_root();
	assert_int_equal(mkdir(at("dir.yaml"), 0755), 0);
	refused(at("dir.yaml"), -EINVAL, "not a regular file");
	/* A FIFO is never opened for real: this would block. */
	assert_int_equal(mkfifo(at("fifo.yaml"), 0644), 0);
	refused(at("fifo.yaml"), -EINVAL, "not a regular file");
	refused("/dev/null", -EINVAL, "/dev/null is not a regular file");
	refused(at("missing.yaml"), -ENOENT, "missing.yaml: No such file");
	refused("", -EINVAL, "empty");
}

/*
 * On SIGHUP the monitor is uid vigil with its four capabilities under its
 * seccomp filter: a root-only (0600) policy still opens, through
 * CAP_DAC_READ_SEARCH, and a symlink is still refused.
 */
static void test_as_dropped_monitor(void **state)
{
	const char *path, *link;
	int p[2], status, res[2] = { 1, 1 };
	bool fell_back;
	uid_t uid;
	gid_t gid;
	pid_t pid;

	need_root();
	path = policy("root-only.yaml", 0, 0600);
	link = at("root-only-link.yaml");
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(sandbox_user(&uid, &gid, &fell_back), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char why[512], buf[64];
		int fd = -1;

		close(p[0]);
		if (sandbox_monitor_drop(uid, gid) < 0 || sandbox_seccomp(SANDBOX_MONITOR) < 0)
			syscall(SYS_exit_group, 80);
		res[0] = policyfile_open(path, &fd, why, sizeof(why));
		if (res[0] == 0 && (read(fd, buf, sizeof(buf)) != (ssize_t)strlen(TEXT) ||
				    memcmp(buf, TEXT, strlen(TEXT))))
			res[0] = -EIO;
		res[1] = policyfile_open(link, &fd, why, sizeof(why));
		/* exit_group itself: the sanitizers' _exit does more than the filter allows */
		syscall(SYS_exit_group, write(p[1], res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 81);
	}
	close(p[1]);
	assert_int_equal(read(p[0], res, sizeof(res)), sizeof(res));
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(res[0], 0);
	assert_int_equal(res[1], -ELOOP);
}

/*
 * The directories above count: one that another user may rename entries
 * in (writable by others and not sticky, or owned by another user) is
 * refused; a sticky one such as /tmp is not.
 */
static void test_directories(void **state)
{
	char dir[PATH_MAX], file[PATH_MAX + 16];

	need_root();
	snprintf(dir, sizeof(dir), "%s", at("loose"));
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(file, sizeof(file), "%s/p.yaml", dir);
	assert_int_equal(close(open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	refused(file, -EPERM, "mode 0777) lets others rename files in it");
	assert_int_equal(chmod(dir, 01777), 0); /* sticky: others cannot rename root's file */
	{
		char why[512];
		int fd = -1;

		assert_int_equal(policyfile_open(file, &fd, why, sizeof(why)), 0);
		close(fd);
	}
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(chown(dir, 65534, 65534), 0);
	refused(file, -EPERM, "(owner uid 65534, mode 0755) lets its owner rename files in it");
	assert_int_equal(chown(dir, 0, 0), 0);
	/* a directory further up counts too */
	assert_int_equal(chmod(tmp, 0775), 0);
	refused(file, -EPERM, "a directory above it (owner uid 0, mode 0775)");
	assert_int_equal(chmod(tmp, 0755), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_owned),
		cmocka_unit_test(test_symlink),
		cmocka_unit_test(test_writable),
		cmocka_unit_test(test_other_owner),
		cmocka_unit_test(test_not_regular),
		cmocka_unit_test(test_as_dropped_monitor),
		cmocka_unit_test(test_directories),
	};
	return cmocka_run_group_tests_name("policyfile", tests, setup, teardown);
}
