/*
 * test_spool.c - profile files appear whole, under names that sort by time,
 * never replace one another, and leave nothing behind on failure.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "spool.h"

static char dir[64];

static int setup(void **state)
{
	strcpy(dir, "/tmp/vigil-spool-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static int entries(int dfd)
{
	DIR *d;
	struct dirent *de;
	int n = 0, fd = dup(dfd);

	d = fdopendir(fd);
	rewinddir(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_name(void **state)
{
	char a[64], b[64], c[64];

	assert_int_equal(spool_name(a, sizeof(a), 1763717520123456789ll), 0);
	assert_string_equal(a, "cpu-20251121T093200.123Z.pb.gz");
	assert_int_equal(spool_name(b, sizeof(b), 1763717520124000000ll), 0);
	assert_int_equal(spool_name(c, sizeof(c), 1763717530000000000ll), 0);
	assert_true(strcmp(a, b) < 0);
	assert_true(strcmp(b, c) < 0);
	assert_int_equal(spool_name(a, 10, 0), -ENAMETOOLONG);
}

static void test_write(void **state)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char used[128], path[256], back[16];
	int fd;

	assert_true(dfd >= 0);
	assert_int_equal(spool_write(dfd, "cpu-1.pb.gz", "hello", 5, used, sizeof(used)), 0);
	assert_string_equal(used, "cpu-1.pb.gz");
	/* same name again: a new file, the first one untouched */
	assert_int_equal(spool_write(dfd, "cpu-1.pb.gz", "world", 5, used, sizeof(used)), 0);
	assert_string_equal(used, "cpu-1-1.pb.gz");
	snprintf(path, sizeof(path), "%s/cpu-1.pb.gz", dir);
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, back, sizeof(back)), 5);
	assert_memory_equal(back, "hello", 5);
	close(fd);
	assert_int_equal(entries(dfd), 2); /* no temporaries left */
	/* names that would escape the directory or hide are refused */
	assert_int_equal(spool_write(dfd, "../x", "a", 1, NULL, 0), -EINVAL);
	assert_int_equal(spool_write(dfd, ".hidden", "a", 1, NULL, 0), -EINVAL);
	close(dfd);
}

static void test_gone_directory(void **state)
{
	char sub[128];
	int dfd;

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	dfd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(spool_write(dfd, "cpu-2.pb.gz", "x", 1, NULL, 0), -ENOENT);
	close(dfd);
}

/*
 * Whatever sits at the temporary name already - a FIFO that would block
 * the writer, a symlink to elsewhere - is never written through: it is
 * replaced by a file of our own, and the profile still appears whole.
 */
static void test_planted_temporary(void **state)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char tmp[128], used[128], target[128];
	struct stat st;

	assert_true(dfd >= 0);
	snprintf(tmp, sizeof(tmp), ".p.pb.gz.tmp-%d", (int)getpid());
	assert_int_equal(mkfifoat(dfd, tmp, 0666), 0);
	assert_int_equal(spool_write(dfd, "p.pb.gz", "abc", 3, used, sizeof(used)), 0);
	assert_int_equal(fstatat(dfd, "p.pb.gz", &st, 0), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 3);
	snprintf(target, sizeof(target), "%s/victim", dir);
	assert_int_equal(close(open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
	assert_int_equal(symlinkat(target, dfd, tmp), 0);
	assert_int_equal(spool_write(dfd, "q.pb.gz", "defg", 4, used, sizeof(used)), 0);
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 0); /* untouched */
	assert_int_equal(fstatat(dfd, "q.pb.gz", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 4);
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name),
		cmocka_unit_test_setup_teardown(test_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_temporary, setup, teardown),
	};
	return cmocka_run_group_tests_name("spool", tests, NULL, NULL);
}
