/*
 * test_cgnest.c - which cgroups the monitor lets carry a tenant's events,
 * on real cgroups made here under the cgroup2 mount: never the root, only
 * levels 1 to VIGIL_MAX_CGROUP_DEPTH (where bpf/profile.bpf.c looks), never
 * one nested in or around another, and nothing when the mount does not
 * show the root of the hierarchy.  Needs root and cgroup v2: without
 * them every case fails (there is nothing to test against).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cgnest.h"
#include "cgroups.h"

#define LEVELS (VIGIL_MAX_CGROUP_DEPTH + 1)

static char root[1024];
/* dirs[i]: the cgroup at level i + 1 of one chain made for the test. */
static char dirs[LEVELS][2048];
static uint64_t ids[LEVELS];

static int setup(void **state)
{
	struct cgroups *cg;
	struct stat st;

	if (cgroups_new(NULL, &cg) != 0) {
		fprintf(stderr, "no cgroup v2 mount\n");
		return -1;
	}
	if (strlen(cgroups_root(cg)) >= sizeof(root)) {
		cgroups_free(cg);
		return -1;
	}
	memcpy(root, cgroups_root(cg), strlen(cgroups_root(cg)) + 1);
	cgroups_free(cg);
	for (int i = 0; i < LEVELS; i++) {
		char name[32];

		if (i == 0) {
			snprintf(name, sizeof(name), "/vigil-ut-cgnest-%d", (int)getpid());
			memcpy(dirs[0], root, strlen(root) + 1);
		} else {
			snprintf(name, sizeof(name), "/l%d", i + 1);
			memcpy(dirs[i], dirs[i - 1], strlen(dirs[i - 1]) + 1);
		}
		if (strlen(dirs[i]) + strlen(name) >= sizeof(dirs[i]))
			return -1;
		strcat(dirs[i], name);
		if (mkdir(dirs[i], 0755) < 0 || stat(dirs[i], &st) < 0) {
			fprintf(stderr, "mkdir %s: %s\n", dirs[i], strerror(errno));
			return -1;
		}
		ids[i] = st.st_ino;
	}
	return 0;
}

static int teardown(void **state)
{
	for (int i = LEVELS - 1; i >= 0; i--)
		if (dirs[i][0])
			rmdir(dirs[i]);
	return 0;
}

static int open_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static int describe(const char *path, struct cgnest_node *n)
{
	int fd = open_dir(path), rc;

	rc = cgnest_describe(fd, n);
	close(fd);
	return rc;
}

static void test_root_refused(void **state)
{
	struct cgnest_node n;
	struct stat st;

	assert_int_equal(stat(root, &st), 0);
	assert_int_equal(st.st_ino, CGNEST_ROOT_ID);
	assert_int_equal(describe(root, &n), -EINVAL);
}

/* Every level the BPF program looks at is accepted, with its ancestors. */
static void test_levels_up_to_the_bpf_limit(void **state)
{
	for (int i = 0; i < VIGIL_MAX_CGROUP_DEPTH; i++) {
		struct cgnest_node n;

		assert_int_equal(describe(dirs[i], &n), 0);
		assert_int_equal(n.id, ids[i]);
		assert_int_equal(n.level, i + 1);
		assert_int_equal(n.nanc, i);
		for (int a = 0; a < i; a++)
			assert_int_equal(n.anc[a], ids[i - 1 - a]); /* parent first */
	}
}

/* One level deeper, the default events would not see the tenant: refused. */
static void test_deeper_refused(void **state)
{
	struct cgnest_node n;

	memset(&n, 0x5a, sizeof(n));
	assert_int_equal(describe(dirs[VIGIL_MAX_CGROUP_DEPTH], &n), -E2BIG);
	assert_int_equal(n.level, 0x5a5a5a5a); /* untouched on error */
}

static void test_nesting(void **state)
{
	struct cgnest_node a[2], c;
	char sib[sizeof(dirs[0]) + 8];

	assert_int_equal(describe(dirs[2], &a[0]), 0); /* level 3 attached */
	/* itself, an ancestor, a descendant: the same tasks twice */
	assert_int_equal(describe(dirs[2], &c), 0);
	assert_int_equal(cgnest_check(a, 1, &c), -EEXIST);
	assert_int_equal(describe(dirs[0], &c), 0);
	assert_int_equal(cgnest_check(a, 1, &c), -EEXIST);
	assert_int_equal(describe(dirs[9], &c), 0);
	assert_int_equal(cgnest_check(a, 1, &c), -EEXIST);
	/* a sibling shares no task */
	snprintf(sib, sizeof(sib), "%s/sib", dirs[1]);
	assert_int_equal(mkdir(sib, 0755), 0);
	assert_int_equal(describe(sib, &c), 0);
	assert_int_equal(cgnest_check(a, 1, &c), 0);
	/* ... unless what is attached sits around both */
	assert_int_equal(describe(dirs[1], &a[1]), 0);
	assert_int_equal(cgnest_check(&a[1], 1, &c), -EEXIST);
	assert_int_equal(cgnest_check(a, 0, &c), 0);
	rmdir(sib);
}

/*
 * A bind mount of a subtree (as a cgroup namespace would show) hides the
 * levels above it: refused rather than guessed, in a mount namespace of
 * its own so that nothing outlives the test.
 */
static void test_partial_mount_refused(void **state)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		char mnt[] = "/tmp/vigil-ut-cgnest-XXXXXX", child[64];
		struct cgnest_node n;

		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    !mkdtemp(mnt) || mount(dirs[0], mnt, NULL, MS_BIND, NULL) < 0)
			_exit(2);
		snprintf(child, sizeof(child), "%s/l2", mnt);
		int fd = open(child, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int rc = fd < 0 ? -errno : cgnest_describe(fd, &n);

		if (fd >= 0)
			close(fd); /* an open directory keeps the mount busy, and mnt behind in /tmp */
		umount(mnt);
		rmdir(mnt);
		_exit(rc == -EXDEV ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_refused),
		cmocka_unit_test(test_levels_up_to_the_bpf_limit),
		cmocka_unit_test(test_deeper_refused),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_partial_mount_refused),
	};
	return cmocka_run_group_tests_name("cgnest", tests, setup, teardown);
}
