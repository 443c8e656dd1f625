/*
 * test_procmaps.c - unit tests of the /proc/PID/maps parser.
 *
 * Every parse runs on input placed so that it ends exactly where an
 * inaccessible page begins (picohttpparser style): reading one byte past
 * the input crashes the test instead of passing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guard.h"
#include "procmaps.h"

/* Parse s[0..len) copied to end where an inaccessible page begins. */
static int guarded_parse(const char *s, size_t len, struct procmaps **ret)
{
	struct guarded g;
	int r;

	guard_copy(&g, s, len);
	r = procmaps_parse((const char *)g.data, len, ret);
	guard_free(&g);
	return r;
}

static int guarded_parse_str(const char *s, struct procmaps **ret)
{
	return guarded_parse(s, strlen(s), ret);
}

/* The last line deliberately has no newline. */
static const char SAMPLE[] =
	"55d0c0a02000-55d0c0a05000 r-xp 00002000 fd:01 1234567                    /usr/bin/my prog\n"
	"55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1234567                    /usr/bin/my prog\n"
	"55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]\n"
	"7f0000000000-7f0000001000 rw-s 00000000 00:05 42                         /dev/zero (deleted)\n"
	"7f0000001000-7f0000002000 ---p 00000000 00:00 0 \n"
	"7f0000002000-7f0000003000 r-xp 00001000 103:02 99                        /memfd:jit code (deleted)\n"
	"7f0000003000-7f0000004000 rw-p 00000000 00:00 0\n"
	"7ffd4b7c2000-7ffd4b7c4000 r-xp 00000000 00:00 0                          [vdso]\n"
	"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";

static void test_parse_sample(void **state)
{
	struct procmaps *m = NULL;
	const struct procmap *p;

	assert_int_equal(guarded_parse_str(SAMPLE, &m), 0);
	assert_non_null(m);
	assert_int_equal(m->n, 9);

	/* Sorted although the input was not. */
	for (size_t i = 1; i < m->n; i++)
		assert_true(m->maps[i - 1].start < m->maps[i].start);

	p = &m->maps[0];
	assert_int_equal(p->start, 0x55d0c0a00000);
	assert_int_equal(p->end, 0x55d0c0a02000);
	assert_int_equal(p->prot, PROT_READ);
	assert_string_equal(p->path, "/usr/bin/my prog");

	p = &m->maps[1];
	assert_int_equal(p->offset, 0x2000);
	assert_int_equal(p->prot, PROT_READ | PROT_EXEC);
	assert_int_equal(p->dev_major, 0xfd);
	assert_int_equal(p->dev_minor, 1);
	assert_int_equal(p->inode, 1234567);
	assert_false(p->shared);
	assert_false(p->deleted);
	assert_string_equal(p->path, "/usr/bin/my prog");

	p = &m->maps[2];
	assert_string_equal(p->path, "[heap]");
	assert_int_equal(p->prot, PROT_READ | PROT_WRITE);
	assert_int_equal(p->inode, 0);

	p = &m->maps[3];
	assert_true(p->shared);
	assert_true(p->deleted);
	assert_string_equal(p->path, "/dev/zero");
	assert_int_equal(p->dev_major, 0);
	assert_int_equal(p->dev_minor, 5);

	p = &m->maps[4];
	assert_int_equal(p->prot, 0);
	assert_string_equal(p->path, "");

	p = &m->maps[5];
	assert_int_equal(p->dev_major, 0x103);
	assert_int_equal(p->dev_minor, 2);
	assert_true(p->deleted);
	assert_string_equal(p->path, "/memfd:jit code");

	p = &m->maps[6];
	assert_string_equal(p->path, "");

	p = &m->maps[7];
	assert_string_equal(p->path, "[vdso]");

	p = &m->maps[8];
	assert_int_equal(p->start, 0xffffffffff600000);
	assert_int_equal(p->prot, PROT_EXEC);
	assert_string_equal(p->path, "[vsyscall]");

	/* find: start inclusive, end exclusive, gaps are misses. */
	assert_ptr_equal(procmaps_find(m, 0x55d0c0a02000), &m->maps[1]);
	assert_ptr_equal(procmaps_find(m, 0x55d0c0a04fff), &m->maps[1]);
	assert_null(procmaps_find(m, 0x55d0c0a05000));
	assert_null(procmaps_find(m, 0x1000));
	assert_ptr_equal(procmaps_find(m, 0xffffffffff600fff), &m->maps[8]);
	assert_null(procmaps_find(m, 0xffffffffff601000));
	procmaps_free(m);
}

static void test_empty(void **state)
{
	struct procmaps *m = NULL;

	assert_int_equal(guarded_parse("", 0, &m), 0);
	assert_int_equal(m->n, 0);
	assert_null(procmaps_find(m, 0x1000));
	procmaps_free(m);
	procmaps_free(NULL);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"\n",
		"zzzz-1000 r-xp 00000000 00:00 0\n",
		"1000 r-xp 00000000 00:00 0\n",
		"1000-2000 r-xp 00000000 00:00\n",
		"1000-2000 r-xp 00000000 00:00 \n",
		"1000-2000 rwxq 00000000 00:00 0\n",
		"1000-2000 r-x 00000000 00:00 0\n",
		"1000-2000 r-xpp 00000000 00:00 0\n",
		"1000-2000 rx-p 00000000 00:00 0\n",
		"2000-1000 r-xp 00000000 00:00 0\n",
		"1000-1000 r-xp 00000000 00:00 0\n",
		"1000-2000 r-xp 00000000 00:00 0x /bin/x\n",
		"1000-2000 r-xp 00000000 0000 0 /bin/x\n",
		"1000-2000 r-xp 00000000 00:00 -1 /bin/x\n",
		"11111111111111111-2000 r-xp 00000000 00:00 0\n",
		"1000-2000 r-xp 00000000 00:00 99999999999999999999999 /bin/x\n",
		"1000-2000  r-xp 00000000 00:00 0\n",
		"1000-2000 r-xp 00000000 00:00 0 /bin/x\n1000-\n",
		"1000-2000 r-xp",
		"1000-2000 r-xp 0000000g 00:00 0\n",
	};
	struct procmaps *m = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = guarded_parse_str(bad[i], &m);

		if (r != -EINVAL)
			fail_msg("line %zu parsed as %d: %s", i, r, bad[i]);
	}
	/* A NUL inside the path. */
	assert_int_equal(guarded_parse("1000-2000 r-xp 00000000 00:00 1 /a\0b\n", 37, &m), -EINVAL);
}

static void test_path_limit(void **state)
{
	const char *prefix = "1000-2000 r-xp 00000000 08:01 5 /";
	size_t plen = strlen(prefix);
	char *line = malloc(plen + PROCMAPS_MAX_PATH + 2);
	struct procmaps *m = NULL;

	assert_non_null(line);
	memcpy(line, prefix, plen);
	/* "/" plus PROCMAPS_MAX_PATH - 1 bytes: exactly at the limit. */
	memset(line + plen, 'a', PROCMAPS_MAX_PATH - 1);
	assert_int_equal(guarded_parse(line, plen + PROCMAPS_MAX_PATH - 1, &m), 0);
	assert_int_equal(strlen(m->maps[0].path), PROCMAPS_MAX_PATH);
	procmaps_free(m);
	line[plen + PROCMAPS_MAX_PATH - 1] = 'a';
	assert_int_equal(guarded_parse(line, plen + PROCMAPS_MAX_PATH, &m), -EINVAL);
	free(line);
}

/* Every prefix of a valid input: never a crash, and line-aligned ones parse. */
static void test_truncations(void **state)
{
	size_t len = strlen(SAMPLE), lines = 0;

	for (size_t cut = 0; cut <= len; cut++) {
		struct procmaps *m = NULL;
		int r = guarded_parse(SAMPLE, cut, &m);

		if (cut > 0 && SAMPLE[cut - 1] == '\n')
			lines++; /* complete lines in SAMPLE[0..cut) */
		if (cut == len || (cut > 0 && SAMPLE[cut - 1] == '\n')) {
			assert_int_equal(r, 0);
			assert_int_equal(m->n, cut == len ? 9 : lines);
		} else if (cut == 0) {
			assert_int_equal(r, 0);
		} else {
			/* A cut inside a line is malformed unless it falls in the path. */
			assert_true(r == 0 || r == -EINVAL);
		}
		procmaps_free(r == 0 ? m : NULL);
	}
}

static char *repeat_lines(size_t n, size_t *ret_len)
{
	char *buf = malloc(n * 48 + 1), *p = buf;

	assert_non_null(buf);
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%zx-%zx r-xp 00000000 00:00 0\n", (i + 1) * 0x1000, (i + 1) * 0x1000 + 0x800);
	*ret_len = (size_t)(p - buf);
	return buf;
}

static void test_line_limit(void **state)
{
	struct procmaps *m = NULL;
	size_t len;
	char *buf = repeat_lines(PROCMAPS_MAX_LINES + 1, &len);
	size_t last = len - 1;

	assert_int_equal(guarded_parse(buf, len, &m), -E2BIG);
	/* Drop the last line: exactly at the limit. */
	while (last > 0 && buf[last - 1] != '\n')
		last--;
	assert_int_equal(guarded_parse(buf, last, &m), 0);
	assert_int_equal(m->n, PROCMAPS_MAX_LINES);
	assert_ptr_equal(procmaps_find(m, 0x1000 * 500 + 0x10), &m->maps[499]);
	assert_null(procmaps_find(m, 0x1000 * 500 + 0x900));
	procmaps_free(m);
	free(buf);
}

__attribute__((noinline)) static int marker_function(int x)
{
	return x + 1;
}

static void test_read_self(void **state)
{
	struct procmaps *m = NULL;
	const struct procmap *p;
	char exe[PATH_MAX];
	struct stat st;

	assert_int_equal(procmaps_read(getpid(), &m), 0);
	assert_true(m->n > 5);
	p = procmaps_find(m, (uintptr_t)&marker_function);
	assert_non_null(p);
	assert_non_null(realpath("/proc/self/exe", exe));
	assert_string_equal(p->path, exe);
	assert_true(p->prot & PROT_EXEC);
	assert_int_equal(stat(exe, &st), 0);
	assert_int_equal(p->inode, st.st_ino);
	assert_int_equal(makedev(p->dev_major, p->dev_minor), st.st_dev);
	/* The stack is there too, and not executable. */
	p = procmaps_find(m, (uintptr_t)&st);
	assert_non_null(p);
	assert_string_equal(p->path, "[stack]");
	assert_false(p->prot & PROT_EXEC);
	procmaps_free(m);
	(void)marker_function(1);
}

/* A real mapping of a file whose name has spaces, then deleted. */
static void test_read_spaces_and_deleted(void **state)
{
	char dir[] = "/tmp/vigil procmaps XXXXXX";
	char path[PATH_MAX];
	struct procmaps *m = NULL;
	const struct procmap *p;
	void *addr;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a file  with spaces", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8192), 0);
	addr = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 4096);
	assert_true(addr != MAP_FAILED);
	close(fd);

	assert_int_equal(procmaps_read(getpid(), &m), 0);
	p = procmaps_find(m, (uintptr_t)addr + 100);
	assert_non_null(p);
	assert_string_equal(p->path, path);
	assert_int_equal(p->offset, 4096);
	assert_false(p->deleted);
	procmaps_free(m);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(procmaps_read(getpid(), &m), 0);
	p = procmaps_find(m, (uintptr_t)addr);
	assert_non_null(p);
	assert_true(p->deleted);
	assert_string_equal(p->path, path);
	procmaps_free(m);
	munmap(addr, 8192);
}

static void test_read_gone(void **state)
{
	struct procmaps *m = NULL;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(procmaps_read(pid, &m), -ESRCH);
	assert_int_equal(procmaps_read(0, &m), -EINVAL);
	assert_int_equal(procmaps_parse(NULL, 1, &m), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_sample),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_path_limit),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_read_self),
		cmocka_unit_test(test_read_spaces_and_deleted),
		cmocka_unit_test(test_read_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
