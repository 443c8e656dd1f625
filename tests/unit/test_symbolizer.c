/*
 * test_symbolizer.c - unit tests of the symbolizer on real processes: this
 * test itself (its own functions, a dlopen'ed fixture library, libc, the
 * vDSO, anonymous executable memory) and children running the fixture
 * program, symbolized after they are killed.
 *
 * The symbolizer reaches the processes through the monitor's opener
 * (mapfile_open), as vigild's collector does through the monitor.
 * Expected values come from the dynamic loader, /proc/self/maps read
 * independently (fixtures.h), and nm/readelf output of the fixtures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fdcount.h"
#include "skip.h"

#include <dlfcn.h>
#include <elf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "cfi.h"
#include "elfgen.h"
#include "elfsym.h"
#include "fixtures/fixtures.h"
#include "mapfile.h"
#include "procmaps.h"
#include "symbolizer.h"

/* start_boottime in ns as BPF reports it, from /proc/PID/stat (in ticks). */
static uint64_t start_ns_of(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long ticks;
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	assert_non_null(p);
	/* ") state ppid ..." : skip fields 3..21 */
	for (int i = 0; i < 20; i++) {
		p = strchr(p + 1, ' ');
		assert_non_null(p);
	}
	assert_int_equal(sscanf(p + 1, "%llu", &ticks), 1);
	return ticks * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* The test reaches processes itself, with the monitor's opener (mapfile.h). */
static int test_open_maps(void *ctx, uint32_t pid)
{
	char path[48];
	int fd;

	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/maps", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno; /* as the monitor answers */
	return fd;
}

static int test_open_file(void *ctx, uint32_t pid, const struct procmap *mp, struct stat *ret_st)
{
	return mapfile_open(pid, mp, ret_st);
}

static struct symbolizer *new_sym(const char *kallsyms)
{
	static const struct symbolizer_ops ops = { .open_maps = test_open_maps,
						   .open_file = test_open_file };
	struct symbolizer *s = NULL;
	int kfd = kallsyms ? open(kallsyms, O_RDONLY | O_CLOEXEC) : -1;

	assert_int_equal(symbolizer_new_ops(&ops, kfd, &s), 0);
	assert_non_null(s);
	if (kfd >= 0)
		close(kfd);
	return s;
}

static void note_self(struct symbolizer *s)
{
	assert_int_equal(symbolizer_note_process(s, (uint32_t)getpid(), start_ns_of(getpid())), 0);
}

static struct sym_frame self_ip(struct symbolizer *s, uintptr_t ip, bool is_ret)
{
	struct sym_frame f;

	memset(&f, 0xa5, sizeof(f));
	assert_int_equal(symbolizer_user_ip(s, (uint32_t)getpid(), start_ns_of(getpid()), ip, is_ret,
					    &f),
			 0);
	return f;
}

static bool is_mapped(const char *path)
{
	char line[PATH_MAX + 256];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "re");

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, path) != NULL;
	fclose(f);
	return found;
}

__attribute__((noinline, aligned(64))) int symbolizer_test_marker(int x);
__attribute__((noinline, aligned(64))) int symbolizer_test_marker(int x)
{
	return x * 5 + 1;
}

static void test_self_binary(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	uintptr_t ip = (uintptr_t)&symbolizer_test_marker;
	char exe[PATH_MAX], mapped[PATH_MAX];
	struct sym_frame f;
	struct stat st;
	uint64_t off;

	note_self(s);
	note_self(s); /* cheap the second time */
	assert_non_null(realpath("/proc/self/exe", exe));
	assert_true(fixture_runtime_offset(getpid(), ip, &off, mapped, sizeof(mapped)));
	assert_int_equal(stat(exe, &st), 0);

	f = self_ip(s, ip + 3, false);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, exe);
	assert_int_equal(f.mapping->start, 0);
	assert_int_equal(f.mapping->limit, (uint64_t)st.st_size);
	assert_int_equal(f.mapping->file_offset, 0);
	assert_int_equal(strlen(f.mapping->build_id), 40); /* gcc links with --build-id */
	assert_int_equal(f.address, off + 3);
	assert_non_null(f.function);
	assert_string_equal(f.function, "symbolizer_test_marker");

	/* A return address just past the function's first byte still names it. */
	f = self_ip(s, ip + 1, true);
	assert_string_equal(f.function, "symbolizer_test_marker");
	assert_int_equal(f.address, off + 1);
	/* A return address at its first byte belongs to what precedes it. */
	f = self_ip(s, ip, true);
	assert_int_equal(f.address, off);
	assert_true(f.function == NULL || strcmp(f.function, "symbolizer_test_marker") != 0);
	assert_int_equal(symbolizer_test_marker(1), 6);
	symbolizer_free(s);
}

static void test_dlopen_lib(void **state)
{
	char path[PATH_MAX], hex[128];
	struct symbolizer *s = new_sym(NULL);
	struct sym_frame f;
	uint64_t off;
	void *h, *fn;

	assert_true(fixture_path("libvsym.so", path, sizeof(path)));
	assert_true(fixture_build_id("libvsym.so", hex, sizeof(hex)));
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(h);
	fn = dlsym(h, "vsym_gamma");
	assert_non_null(fn);
	note_self(s);
	assert_true(fixture_runtime_offset(getpid(), (uintptr_t)fn, &off, NULL, 0));

	f = self_ip(s, (uintptr_t)fn + 2, false);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, path);
	assert_string_equal(f.mapping->build_id, hex);
	assert_int_equal(f.address, off + 2);
	assert_non_null(f.function);
	assert_string_equal(f.function, "vsym_gamma");

	/* Same file through the build-id path: same mapping object, same answer. */
	{
		uint8_t bid[20] = { 0 };
		struct sym_frame g;

		assert_int_equal(fixture_unhex(hex, bid, sizeof(bid)), 20);
		assert_int_equal(symbolizer_user_bid(s, (uint32_t)getpid(), start_ns_of(getpid()), bid,
						     off + 2, false, &g),
				 0);
		assert_ptr_equal(g.mapping, f.mapping);
		assert_int_equal(g.address, off + 2);
		assert_string_equal(g.function, "vsym_gamma");
		/* Any pid, even one never noted: build-ids are global. */
		assert_int_equal(symbolizer_user_bid(s, 1, 0, bid, off + 1, true, &g), 0);
		assert_string_equal(g.function, "vsym_gamma");
		assert_int_equal(g.address, off + 1);
	}
	symbolizer_free(s);
	dlclose(h);
}

static void test_libc(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	uintptr_t ip = (uintptr_t)dlsym(RTLD_DEFAULT, "getpid");
	char mapped[PATH_MAX];
	struct sym_frame f;
	uint64_t off;

	assert_true(ip != 0);
	note_self(s);
	assert_true(fixture_runtime_offset(getpid(), ip, &off, mapped, sizeof(mapped)));
	f = self_ip(s, ip, false);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, mapped);
	assert_non_null(strstr(f.mapping->path, "libc.so"));
	assert_int_equal(f.address, off);
	assert_non_null(f.function);
	/* libc has getpid (weak) and __getpid at one address: the public name. */
	assert_string_equal(f.function, "getpid");
	symbolizer_free(s);
}

/*
 * Over the parse-time budget a file is kept without symbols (deferred),
 * its frames still file offsets in its mapping; once time allows, the
 * next look at the process parses it, and the frame gets its name.
 */
static void test_parse_budget(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	uintptr_t ip = (uintptr_t)&symbolizer_test_marker;
	struct symbolizer_stats st;
	struct sym_frame f;
	uint64_t address;

	symbolizer_set_parse_budget(s, 0, 0);
	note_self(s);
	f = self_ip(s, ip + 3, false);
	assert_non_null(f.mapping);
	assert_null(f.function);
	assert_string_equal(f.mapping->build_id, "");
	address = f.address;
	symbolizer_get_stats(s, &st);
	assert_true(st.files_deferred > 0);
	assert_int_equal(st.files_with_symbols, 0);
	/* Still no credit: asked again, still deferred, nothing re-read. */
	f = self_ip(s, ip + 3, false);
	assert_null(f.function);

	symbolizer_set_parse_budget(s, SYMBOLIZER_PARSE_PERCENT, SYMBOLIZER_PARSE_BURST_MS);
	f = self_ip(s, ip + 3, false);
	assert_non_null(f.function);
	assert_string_equal(f.function, "symbolizer_test_marker");
	assert_int_equal(f.address, address); /* the same file offset */
	assert_true(strlen(f.mapping->build_id) > 0);
	symbolizer_get_stats(s, &st);
	assert_int_equal(st.files_deferred, 0);
	assert_true(st.files_with_symbols > 0);
	symbolizer_free(s);
}

/*
 * A flood of new files, as any user can make: fresh copies of a file that
 * is slow to read (a symbol table of sparse zeros, a quarter of the read
 * budget), all mapped by one process, reached through fake ops.  Parsing
 * them all would cost N times one; the parse-time budget lets through
 * about one burst's worth and defers the rest, which a later look at the
 * process parses once time allows.  The premise (that parsing them all
 * would overrun the budget several times) is checked from the cost of one
 * fresh copy measured here.
 */
struct flood {
	char dir[64];
	size_t n;
	unsigned long long opened;
};

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void flood_path(const struct flood *fl, size_t i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/z%zu", fl->dir, i);
}

static void flood_make(const struct flood *fl, size_t i, struct elfimg *m, uint64_t total)
{
	char path[128];
	int fd;

	/* A build-id of its own: the same one would make them one file. */
	elfgen_put(m, m->note_off + 16, 4, i);
	flood_path(fl, i, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, m->buf, m->len, 0), (ssize_t)m->len);
	assert_int_equal(ftruncate(fd, (off_t)total), 0);
	close(fd);
}

static int flood_open_maps(void *ctx, uint32_t pid)
{
	const struct flood *fl = ctx;
	int fd = memfd_create("flood-maps", MFD_CLOEXEC);
	FILE *f;

	if (fd < 0)
		return -errno;
	f = fdopen(dup(fd), "w");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	for (size_t i = 0; i < fl->n; i++)
		fprintf(f, "%llx-%llx r-xp 00000000 08:01 %zu %s/z%zu\n",
			0x10000000ull + i * 0x100000ull, 0x10010000ull + i * 0x100000ull, 1000 + i,
			fl->dir, i);
	fclose(f);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int flood_open_file(void *ctx, uint32_t pid, const struct procmap *mp, struct stat *ret_st)
{
	struct flood *fl = ctx;
	char path[128];
	int fd;

	if (mp->inode < 1000 || mp->inode >= 1000 + fl->n)
		return -ENOENT;
	flood_path(fl, mp->inode - 1000, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, ret_st) < 0)
		return -errno;
	fl->opened++;
	return fd;
}

/* The flood's directory, removed by flood_teardown even when a check fails. */
static char flood_dir[64];

static int flood_teardown(void **state)
{
	char cmd[128];

	if (flood_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", flood_dir);
		if (system(cmd) != 0)
			return -1;
		flood_dir[0] = '\0';
	}
	return 0;
}

static void test_parse_budget_flood(void **state)
{
	struct elfgen g = { .nsym = 10 };
	struct flood fl = { .dir = "/var/tmp/vigil-flood.XXXXXX" };
	struct symbolizer_ops ops = { .open_maps = flood_open_maps, .open_file = flood_open_file, .ctx = &fl };
	struct symbolizer *s = NULL;
	struct symbolizer_stats st;
	struct elfsym *e = NULL;
	struct elfimg m;
	uint64_t hole, total;
	double one, t0, spent, allowed;
	unsigned burst_ms;
	char path[128];
	size_t parsed;
	int fd;

	assert_non_null(mkdtemp(fl.dir));
	memcpy(flood_dir, fl.dir, sizeof(flood_dir));
	assert_true(elfgen_build(&g, &m));
	/* .symtab moves into a hole. */
	hole = (m.len + 4095) & ~(uint64_t)4095;
	ELFGEN_SET(&m, elfgen_sh(&m, ELFGEN_SYMTAB), Shdr, sh_offset, hole);
	ELFGEN_SET(&m, elfgen_sh(&m, ELFGEN_SYMTAB), Shdr, sh_size, ELFSYM_MAX_READ / 4 / 24 * 24);
	total = hole + ELFSYM_MAX_READ / 4 / 24 * 24;

	/* What one fresh copy costs to parse, here (the best of three). */
	one = 1e9;
	for (int k = 0; k < 3; k++) {
		flood_make(&fl, 0, &m, total);
		flood_path(&fl, 0, path, sizeof(path));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		t0 = mono_ms();
		assert_int_equal(elfsym_open_fd(fd, &e), 0);
		if (mono_ms() - t0 < one)
			one = mono_ms() - t0;
		elfsym_free(e);
		close(fd);
	}
	/* A burst of two parses; enough copies to need ten times that, and
	 * at least 200 ms, next to which opening files costs little. */
	burst_ms = (unsigned)(2 * one) + 1;
	fl.n = (size_t)(10 * (burst_ms + one) / one) + 1;
	if ((double)fl.n * one < 200)
		fl.n = (size_t)(200 / one) + 1;
	if (fl.n > 400)
		fl.n = 400;
	for (size_t i = 0; i < fl.n; i++)
		flood_make(&fl, i, &m, total);

	assert_int_equal(symbolizer_new_ops(&ops, -1, &s), 0);
	symbolizer_set_parse_budget(s, SYMBOLIZER_PARSE_PERCENT, burst_ms);
	t0 = mono_ms();
	assert_int_equal(symbolizer_note_process(s, 4242, 0), 0);
	spent = mono_ms() - t0;
	symbolizer_get_stats(s, &st);
	parsed = st.files - st.files_deferred;
	/*
	 * The credit pays for burst_ms plus what refilled meanwhile, and the
	 * last parse may overdraw it by one; a parse costs at least about
	 * `one` (the best of three), whatever the load.
	 */
	allowed = (burst_ms + spent * SYMBOLIZER_PARSE_PERCENT / 100) / one + 1;
	print_message("flood: %zu fresh files of %.1f ms each: %zu parsed (at most %.1f allowed), "
		      "%zu deferred, in %.1f ms (all of them would take %.0f ms)\n",
		      fl.n, one, parsed, allowed, st.files_deferred, spent, (double)fl.n * one);
	assert_int_equal(st.files, fl.n);
	assert_true(st.files_deferred > 0);
	assert_true((double)parsed <= allowed + 1);
	assert_true(spent < (double)fl.n * one / 2);
	/* What the profiles' comment says: every parse counted, and its time within the look's. */
	assert_int_equal(st.files_parsed, parsed);
	assert_int_equal(st.deferrals, st.files_deferred);
	assert_true(st.parse_ns > 0 && (double)st.parse_ns / 1e6 <= spent);

	/* Later, with time to spare, a look at the process parses more. */
	symbolizer_set_parse_budget(s, SYMBOLIZER_PARSE_PERCENT, burst_ms);
	{
		struct sym_frame f;
		size_t before = st.files_deferred;
		/* In the last file: one of those deferred. */
		uint64_t ip = 0x10000000ull + (fl.n - 1) * 0x100000ull + 0x10;

		assert_int_equal(symbolizer_user_ip(s, 4242, 0, ip, false, &f), 0);
		assert_non_null(f.mapping);
		symbolizer_get_stats(s, &st);
		assert_true(st.files_deferred < before);
		print_message("flood: a later look parsed %zu more\n", before - st.files_deferred);
	}
	assert_int_equal(st.files, fl.n);
	symbolizer_free(s);

	for (size_t i = 0; i < fl.n; i++) {
		flood_path(&fl, i, path, sizeof(path));
		unlink(path);
	}
	rmdir(fl.dir);
	free(m.buf);
}

/* Anonymous executable memory, as a JIT makes; mapped after the note. */
static void test_anon_and_reread(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct symbolizer_stats st;
	struct sym_frame f;
	uint8_t *region, *a, *b;

	/* Inaccessible pages around each mapping keep the kernel from merging them. */
	region = mmap(NULL, 12 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(region != MAP_FAILED);
	note_self(s);
	a = mmap(region + page, 2 * page, PROT_READ | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	b = mmap(region + 4 * page, page, PROT_READ | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	assert_true(a != MAP_FAILED && b != MAP_FAILED);

	/* Not in the cached maps: re-read once, found. */
	f = self_ip(s, (uintptr_t)a + 100, false);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, "");
	assert_string_equal(f.mapping->build_id, "");
	assert_int_equal(f.mapping->start, (uintptr_t)a);
	assert_int_equal(f.mapping->limit, (uintptr_t)a + 2 * page);
	assert_int_equal(f.mapping->file_offset, 0);
	assert_int_equal(f.address, (uintptr_t)a + 100);
	assert_null(f.function);
	/* The same range twice is one mapping. */
	assert_ptr_equal(self_ip(s, (uintptr_t)a + 2 * page - 1, false).mapping, f.mapping);

	/* Another new mapping in the same generation: no second re-read. */
	b = mmap(region + 7 * page, 3 * page, PROT_READ | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	assert_true(b != MAP_FAILED);
	f = self_ip(s, (uintptr_t)b + 5, false);
	assert_null(f.mapping);
	assert_int_equal(f.address, (uintptr_t)b + 5);
	assert_null(f.function);
	/* Next generation: allowed again. */
	symbolizer_tick(s);
	f = self_ip(s, (uintptr_t)b + 5, false);
	assert_non_null(f.mapping);
	assert_int_equal(f.mapping->start, (uintptr_t)b);
	symbolizer_get_stats(s, &st);
	assert_true(st.anon_mappings >= 2);
	assert_int_equal(f.mapping->limit, (uintptr_t)b + 3 * page);
	munmap(region, 12 * page);
	symbolizer_free(s);
}

/* open_file through the monitor's opener, counted. */
static int counted_open_file(void *ctx, uint32_t pid, const struct procmap *mp, struct stat *ret_st)
{
	(*(unsigned *)ctx)++;
	return mapfile_open(pid, mp, ret_st);
}

struct batch_count {
	unsigned asks, files, most, singles;
};

static int batch_open_files(void *ctx, uint32_t pid, const struct procmap *const *mps, size_t n,
			    int *ret_fds, struct stat *ret_st)
{
	struct batch_count *c = ctx;

	assert_true(n >= 1 && n <= SYMBOLIZER_FILES_AT_ONCE);
	c->asks++;
	c->files += (unsigned)n;
	if (n > c->most)
		c->most = (unsigned)n;
	for (size_t i = 0; i < n; i++)
		ret_fds[i] = mapfile_open(pid, mps[i], &ret_st[i]);
	return 0;
}

static int batch_open_file(void *ctx, uint32_t pid, const struct procmap *mp, struct stat *ret_st)
{
	((struct batch_count *)ctx)->singles++;
	return mapfile_open(pid, mp, ret_st);
}

static int batch_refused(void *ctx, uint32_t pid, const struct procmap *const *mps, size_t n,
			 int *ret_fds, struct stat *ret_st)
{
	((struct batch_count *)ctx)->asks++;
	return -EPIPE;
}

/*
 * With ops.open_files, one read of a process's maps asks for its files
 * in asks of up to SYMBOLIZER_FILES_AT_ONCE, each file once, and names
 * what one at a time named; an ask that fails leaves those files unknown.
 */
static void test_files_at_once(void **state)
{
	struct batch_count c = { 0 }, one = { 0 };
	struct symbolizer_ops ops = { .open_maps = test_open_maps, .open_file = batch_open_file,
				      .open_files = batch_open_files, .ctx = &c };
	struct symbolizer_ops singly = { .open_maps = test_open_maps, .open_file = batch_open_file,
					 .ctx = &one };
	struct symbolizer *s = NULL, *t = NULL;
	struct symbolizer_stats st;
	struct sym_frame f, g;
	size_t files;
	int before = open_fd_count();

	assert_int_equal(symbolizer_new_ops(&ops, -1, &s), 0);
	assert_int_equal(symbolizer_new_ops(&singly, -1, &t), 0);
	note_self(s);
	note_self(t);
	assert_int_equal(c.singles, 0);
	assert_true(one.singles >= 2); /* this binary and the C library at least */
	assert_int_equal(c.files, one.singles);
	assert_int_equal(c.asks, (one.singles + SYMBOLIZER_FILES_AT_ONCE - 1) / SYMBOLIZER_FILES_AT_ONCE);
	assert_int_equal(c.most, one.singles < SYMBOLIZER_FILES_AT_ONCE ? one.singles
								 : SYMBOLIZER_FILES_AT_ONCE);
	f = self_ip(s, (uintptr_t)&test_files_at_once, false);
	g = self_ip(t, (uintptr_t)&test_files_at_once, false);
	assert_string_equal(f.function, "test_files_at_once");
	assert_string_equal(g.function, "test_files_at_once");
	f = self_ip(s, (uintptr_t)&strlen, false);
	g = self_ip(t, (uintptr_t)&strlen, false);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, g.mapping->path);
	symbolizer_get_stats(t, &st);
	files = st.files;
	symbolizer_get_stats(s, &st);
	assert_true(files >= 2);
	assert_int_equal(st.files, files);
	symbolizer_free(s);
	symbolizer_free(t);

	/* the ask fails: the process is known, its files are not */
	c = (struct batch_count){ 0 };
	ops.open_files = batch_refused;
	assert_int_equal(symbolizer_new_ops(&ops, -1, &s), 0);
	note_self(s);
	assert_true(c.asks >= 1);
	assert_int_equal(c.singles, 0);
	f = self_ip(s, (uintptr_t)&test_files_at_once, false);
	assert_null(f.function);
	symbolizer_get_stats(s, &st);
	assert_int_equal(st.files, 0);
	symbolizer_free(s);
	assert_int_equal(open_fd_count(), before); /* every fd asked for was closed */
}

/* ops.open_maps_files as the monitor answers it: its own read of the maps, the first files opened. */
struct with_maps {
	struct batch_count c; /* open_file(s) asks */
	unsigned asks, maps;  /* open_maps_files asks; open_maps asks */
	size_t limit;         /* files answered with the maps, at most */
	int first_err;        /* nonzero: the first file's answer, not opened */
	bool stranger;        /* one more entry, of a file the process does not map */
};

static bool same_file(const struct procmap *a, const struct procmap *b)
{
	return a->inode == b->inode && a->dev_major == b->dev_major && a->dev_minor == b->dev_minor;
}

/* Whether maps entry i is an executable file mapping and the first of its file. */
static bool first_exec_file(const struct procmaps *m, size_t i)
{
	const struct procmap *mp = &m->maps[i];

	if (!(mp->prot & PROT_EXEC) || !mp->inode || mp->path[0] != '/')
		return false;
	for (size_t j = 0; j < i; j++)
		if ((m->maps[j].prot & PROT_EXEC) && m->maps[j].path[0] == '/' && same_file(&m->maps[j], mp))
			return false;
	return true;
}

static int wm_open_maps(void *ctx, uint32_t pid)
{
	((struct with_maps *)ctx)->maps++;
	return test_open_maps(ctx, pid);
}

static int wm_open_maps_files(void *ctx, uint32_t pid, struct sym_preopen *ret, size_t *ret_n)
{
	struct with_maps *w = ctx;
	struct procmaps *m;
	size_t n = 0;
	int fd = test_open_maps(ctx, pid);

	w->asks++;
	assert_true(fd >= 0);
	assert_int_equal(procmaps_read((int)pid, &m), 0);
	for (size_t i = 0; i < m->n && n < w->limit && n < SYMBOLIZER_FILES_WITH_MAPS; i++) {
		const struct procmap *mp = &m->maps[i];

		if (!first_exec_file(m, i))
			continue;
		ret[n] = (struct sym_preopen){ .inode = mp->inode, .dev_major = mp->dev_major,
					       .dev_minor = mp->dev_minor };
		ret[n].fd = n == 0 && w->first_err ? w->first_err : mapfile_open(pid, mp, &ret[n].st);
		n++;
	}
	procmaps_free(m);
	if (w->stranger && n < SYMBOLIZER_FILES_WITH_MAPS) {
		ret[n] = (struct sym_preopen){ .inode = 1, .dev_major = 0, .dev_minor = 1,
					       .fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC) };
		assert_true(ret[n].fd >= 0);
		assert_int_equal(fstat(ret[n].fd, &ret[n].st), 0);
		n++;
	}
	*ret_n = n;
	return fd;
}

/* This process's distinct executable files, as a load counts them. */
static unsigned own_exec_files(void)
{
	struct procmaps *m;
	unsigned n = 0;

	assert_int_equal(procmaps_read(getpid(), &m), 0);
	for (size_t i = 0; i < m->n; i++)
		n += first_exec_file(m, i);
	procmaps_free(m);
	return n;
}

/*
 * With ops.open_maps_files, a process's first read gets its maps and its
 * first files in one ask, and asks open_files only for the rest: each
 * file once, named as one at a time named it.  A file answered with an
 * error is not asked for again; one the process does not map is closed.
 * A re-read (a miss) asks open_maps: it wants only what changed.
 */
static void test_files_with_maps(void **state)
{
	static const size_t limits[] = { SYMBOLIZER_FILES_WITH_MAPS, 1 };
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned distinct = own_exec_files();
	int before = open_fd_count();
	struct symbolizer_stats st;
	struct symbolizer *s;
	struct sym_frame f;
	uint8_t *region;

	assert_true(distinct >= 2); /* this binary and the C library at least */
	for (size_t l = 0; l < 2; l++) {
		struct with_maps w = { .limit = limits[l], .stranger = true };
		struct symbolizer_ops ops = { .open_maps = wm_open_maps, .open_file = batch_open_file,
					      .open_files = batch_open_files,
					      .open_maps_files = wm_open_maps_files, .ctx = &w };
		unsigned with = distinct < limits[l] ? distinct : (unsigned)limits[l];

		assert_int_equal(symbolizer_new_ops(&ops, -1, &s), 0);
		note_self(s);
		assert_int_equal(w.asks, 1);
		assert_int_equal(w.maps, 0);
		assert_int_equal(w.c.singles, 0);
		assert_int_equal(w.c.files, distinct - with);
		f = self_ip(s, (uintptr_t)&test_files_with_maps, false);
		assert_string_equal(f.function, "test_files_with_maps");
		f = self_ip(s, (uintptr_t)&strlen, false);
		assert_non_null(f.mapping);
		symbolizer_get_stats(s, &st);
		assert_int_equal(st.files, distinct);

		/* a miss: a re-read, through open_maps, asking no file it has */
		region = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(region != MAP_FAILED);
		assert_int_equal(munmap(region, page), 0);
		f = self_ip(s, (uintptr_t)region + 8, false);
		assert_null(f.mapping);
		assert_int_equal(w.asks, 1);
		assert_int_equal(w.maps, 1);
		assert_int_equal(w.c.files, distinct - with);
		symbolizer_free(s);
	}

	/* the first file's answer an error: not asked for again, not known */
	{
		struct with_maps w = { .limit = SYMBOLIZER_FILES_WITH_MAPS, .first_err = -EACCES };
		struct symbolizer_ops ops = { .open_maps = wm_open_maps, .open_file = batch_open_file,
					      .open_files = batch_open_files,
					      .open_maps_files = wm_open_maps_files, .ctx = &w };
		unsigned with = distinct < SYMBOLIZER_FILES_WITH_MAPS ? distinct : SYMBOLIZER_FILES_WITH_MAPS;

		assert_int_equal(symbolizer_new_ops(&ops, -1, &s), 0);
		note_self(s);
		assert_int_equal(w.c.files + w.c.singles, distinct - with);
		symbolizer_get_stats(s, &st);
		assert_int_equal(st.files, distinct - 1);
		symbolizer_free(s);
	}
	assert_int_equal(open_fd_count(), before); /* every fd answered was closed */
}

/*
 * A re-read of a process's maps (a library loaded after the first read)
 * asks the monitor for the files of new mappings only: the ones it mapped
 * before, same range of the same inode at the same offset, keep their
 * file.  Each ask costs the monitor a dozen system calls; a process
 * sampled early in its life is read three or four times.
 */
static void test_reread_keeps_files(void **state)
{
	unsigned opens = 0;
	struct symbolizer_ops ops = { .open_maps = test_open_maps, .open_file = counted_open_file,
				      .ctx = &opens };
	struct symbolizer *s = NULL;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct sym_frame f, g;
	uint8_t *region, *a;
	unsigned first;
	int fd;

	assert_int_equal(symbolizer_new_ops(&ops, -1, &s), 0);
	region = mmap(NULL, 4 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(region != MAP_FAILED);
	note_self(s);
	first = opens;
	assert_true(first >= 2); /* this test's binary and the C library at least */
	g = self_ip(s, (uintptr_t)&test_reread_keeps_files, false);
	assert_non_null(g.mapping);
	assert_int_equal(opens, first);

	/* A new mapping of this binary (a range of its own): one ask, not first + 1. */
	fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	a = mmap(region + page, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, fd, 0);
	close(fd);
	assert_true(a != MAP_FAILED);
	f = self_ip(s, (uintptr_t)a + 64, false);
	assert_ptr_equal(f.mapping, g.mapping); /* a file's frames share its one mapping */
	assert_int_equal(opens, first + 1);
	/* the mappings read before still name their code */
	f = self_ip(s, (uintptr_t)&test_reread_keeps_files, false);
	assert_ptr_equal(f.mapping, g.mapping);
	assert_string_equal(f.function, "test_reread_keeps_files");

	/* Remapped over with another page of the file (another offset): asked for again. */
	symbolizer_tick(s);
	fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	a = mmap(region + page, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, fd, (off_t)page);
	close(fd);
	assert_true(a != MAP_FAILED);
	f = self_ip(s, (uintptr_t)region + 3 * page, false); /* in no mapping: a re-read */
	assert_null(f.mapping);
	assert_int_equal(opens, first + 2);
	f = self_ip(s, (uintptr_t)a + 64, false);
	assert_ptr_equal(f.mapping, g.mapping);

	/*
	 * After an exec the maps are unknown until the next note, which asks
	 * for no file mapped at the same place before (here: all of them),
	 * and drops what the new maps lack (a re-read would keep it for the
	 * rest of the generation): the old image's mappings name nothing.
	 */
	a = mmap(region + 2 * page, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0);
	assert_true(a != MAP_FAILED);
	symbolizer_tick(s);
	f = self_ip(s, (uintptr_t)a + 8, false);
	assert_non_null(f.mapping);
	assert_int_equal(munmap(a, page), 0);
	symbolizer_forget_process(s, (uint32_t)getpid(), 0);
	f = self_ip(s, (uintptr_t)&test_reread_keeps_files, false);
	assert_null(f.mapping);
	note_self(s);
	assert_int_equal(opens, first + 2);
	f = self_ip(s, (uintptr_t)&test_reread_keeps_files, false);
	assert_string_equal(f.function, "test_reread_keeps_files");
	f = self_ip(s, (uintptr_t)a + 8, false);
	assert_null(f.mapping);
	munmap(region, 4 * page);
	symbolizer_free(s);
}

static uint64_t boottime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t maps_reads(const struct symbolizer *s, uint64_t *ret_saved)
{
	struct symbolizer_stats st;

	symbolizer_get_stats(s, &st);
	*ret_saved = st.maps_reads_saved;
	return st.maps_reads;
}

/* open_maps refusing as the monitor refuses its own pid, counted. */
static int refusing_open_maps(void *ctx, uint32_t pid)
{
	(*(unsigned *)ctx)++;
	return -EPERM;
}

/* test_open_maps unless told to fail with -EIO, counted. */
struct flaky_maps {
	bool fail;
	unsigned calls;
};

static int flaky_open_maps(void *ctx, uint32_t pid)
{
	struct flaky_maps *fm = ctx;

	fm->calls++;
	return fm->fail ? -EIO : test_open_maps(NULL, pid);
}

/* An address in the middle of this process's [stack] (0 if it has none). */
static uintptr_t self_stack_addr(void)
{
	struct procmaps *m = NULL;
	uintptr_t a = 0;

	assert_int_equal(procmaps_read(getpid(), &m), 0);
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->maps[i].path, "[stack]"))
			a = (uintptr_t)(m->maps[i].start + (m->maps[i].end - m->maps[i].start) / 2);
	procmaps_free(m);
	return a;
}

/*
 * A miss asks for a re-read only where one could find something: not in
 * the process's stack (where an unwinder's bad guess at a return address
 * lands), not in the first page, not for a process whose maps were
 * refused.  Those are counted as saved, once a process and generation,
 * and do not spend the generation's re-read: a miss on code mapped since
 * still finds it, and one elsewhere still asks.
 */
static void test_futile_rereads(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t stack = self_stack_addr();
	struct sym_frame f;
	uint64_t saved;
	unsigned refusals = 0;
	struct symbolizer_ops refusing = { .open_maps = refusing_open_maps,
					   .open_file = test_open_file, .ctx = &refusals };
	struct symbolizer *r = NULL;
	uint8_t *a;

	assert_true(stack != 0);
	note_self(s);
	assert_int_equal(maps_reads(s, &saved), 1);
	assert_int_equal(saved, 0);
	f = self_ip(s, stack, true);
	assert_null(f.mapping);
	f = self_ip(s, 0x10, true);
	assert_null(f.mapping);
	assert_int_equal(maps_reads(s, &saved), 1);
	assert_int_equal(saved, 1);
	/* Code mapped since: this generation's re-read is still there for it. */
	a = mmap(NULL, 2 * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(a != MAP_FAILED);
	assert_int_equal(mprotect(a, page, PROT_READ | PROT_EXEC), 0);
	f = self_ip(s, (uintptr_t)a + 8, false);
	assert_non_null(f.mapping);
	assert_int_equal(maps_reads(s, &saved), 2);
	/* A miss neither in the stack nor the first page (data): the next generation's re-read. */
	symbolizer_tick(s);
	f = self_ip(s, (uintptr_t)a + page + 8, false);
	assert_null(f.mapping);
	assert_int_equal(maps_reads(s, &saved), 3);
	assert_int_equal(saved, 1);
	/* The next generation's futile miss is counted again. */
	symbolizer_tick(s);
	f = self_ip(s, stack, true);
	assert_null(f.mapping);
	assert_int_equal(maps_reads(s, &saved), 3);
	assert_int_equal(saved, 2);
	munmap(a, 2 * page);
	symbolizer_free(s);

	/* Refused: asked once at the note, never again; counted once a generation. */
	assert_int_equal(symbolizer_new_ops(&refusing, -1, &r), 0);
	assert_int_equal(symbolizer_note_process(r, 4242, 0), -EPERM);
	assert_int_equal(refusals, 1);
	for (int gen = 0; gen < 3; gen++) {
		assert_int_equal(symbolizer_user_ip(r, 4242, 0, 0x400000, false, &f), 0);
		assert_null(f.mapping);
		assert_int_equal(symbolizer_user_ip(r, 4242, 0, 0x500000, true, &f), 0);
		assert_null(f.mapping);
		symbolizer_tick(r);
	}
	assert_int_equal(refusals, 1);
	assert_int_equal(maps_reads(r, &saved), 1);
	assert_int_equal(saved, 3);
	symbolizer_free(r);

	/* An exec whose read fails: the old image's stack no longer rules out a re-read. */
	{
		struct flaky_maps fm = { 0 };
		struct symbolizer_ops flaky = { .open_maps = flaky_open_maps,
						.open_file = test_open_file, .ctx = &fm };
		uint64_t start = start_ns_of(getpid());

		assert_int_equal(symbolizer_new_ops(&flaky, -1, &r), 0);
		assert_int_equal(symbolizer_note_process(r, (uint32_t)getpid(), start), 0);
		symbolizer_forget_process(r, (uint32_t)getpid(), 0);
		fm.fail = true;
		assert_int_equal(symbolizer_note_process(r, (uint32_t)getpid(), start), -EIO);
		assert_int_equal(fm.calls, 2);
		fm.fail = false;
		assert_int_equal(symbolizer_user_ip(r, (uint32_t)getpid(), start, stack, true, &f), 0);
		assert_int_equal(fm.calls, 3);
		symbolizer_free(r);
	}
}

/*
 * After an exec, the maps are not read again when the last read began
 * after the exec (the event comes later, through the ring): that read saw
 * the new image.  What a re-read kept of an earlier read goes (the old
 * image's), and the new image has its own re-read.  Each read is a request
 * to the monitor; a process sampled at its fork was read twice where once
 * saw it all.
 */
static void test_exec_before_read(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct sym_frame f;
	uint64_t saved, before;
	uint8_t *a, *b, *c;

	a = mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(a != MAP_FAILED);
	note_self(s);
	assert_int_equal(maps_reads(s, &saved), 1);
	f = self_ip(s, (uintptr_t)a + 8, false);
	assert_non_null(f.mapping);

	/* a unmapped and b mapped, then a re-read (a miss on b): it keeps a. */
	before = boottime_ns();
	b = mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(b != MAP_FAILED);
	assert_int_equal(munmap(a, page), 0);
	f = self_ip(s, (uintptr_t)b + 8, false);
	assert_non_null(f.mapping);
	assert_int_equal(maps_reads(s, &saved), 2);
	f = self_ip(s, (uintptr_t)a + 8, false);
	assert_non_null(f.mapping); /* kept */

	/* An exec before that read: no read, the maps stay, but for the kept a. */
	symbolizer_forget_process(s, (uint32_t)getpid(), before);
	assert_int_equal(maps_reads(s, &saved), 2);
	assert_int_equal(saved, 1);
	f = self_ip(s, (uintptr_t)&test_exec_before_read, false);
	assert_non_null(f.mapping);
	assert_string_equal(f.function, "test_exec_before_read");
	f = self_ip(s, (uintptr_t)b + 8, false);
	assert_non_null(f.mapping);
	note_self(s);
	assert_int_equal(maps_reads(s, &saved), 2);
	/* a is gone (a miss spends the new image's re-read, in this generation)... */
	f = self_ip(s, (uintptr_t)a + 8, false);
	assert_null(f.mapping);
	assert_int_equal(maps_reads(s, &saved), 3);
	/* ...and one made since is found at the next generation's. */
	c = mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(c != MAP_FAILED);
	symbolizer_tick(s);
	f = self_ip(s, (uintptr_t)c + 8, false);
	assert_non_null(f.mapping);
	assert_int_equal(maps_reads(s, &saved), 4);

	/* An exec after the last read (or of unknown time): unknown until noted and read again. */
	symbolizer_forget_process(s, (uint32_t)getpid(), boottime_ns() + 1);
	f = self_ip(s, (uintptr_t)&test_exec_before_read, false);
	assert_null(f.mapping);
	note_self(s);
	assert_int_equal(maps_reads(s, &saved), 5);
	f = self_ip(s, (uintptr_t)&test_exec_before_read, false);
	assert_string_equal(f.function, "test_exec_before_read");
	symbolizer_forget_process(s, (uint32_t)getpid(), 0);
	f = self_ip(s, (uintptr_t)&test_exec_before_read, false);
	assert_null(f.mapping);
	assert_int_equal(saved, 1);
	munmap(b, page);
	munmap(c, page);
	symbolizer_free(s);
}

/*
 * A sample taken before the last read of its process's maps, whose
 * address is in none of them, does not read them again: that read showed
 * every mapping the sample could be in.  One taken after it does; and a
 * lookup of unknown time (a flush's) reads as before.
 */
static void test_miss_before_read(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct sym_frame f;
	uint64_t saved, before;
	uint8_t *a, *b;

	before = boottime_ns();
	note_self(s);
	assert_int_equal(maps_reads(s, &saved), 1);
	a = mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(a != MAP_FAILED);
	symbolizer_sample_time(s, before);
	f = self_ip(s, (uintptr_t)a + 8, false);
	assert_null(f.mapping);
	assert_int_equal(maps_reads(s, &saved), 1);
	assert_int_equal(saved, 1);
	/* not spent: a sample taken after the read has it */
	symbolizer_sample_time(s, boottime_ns());
	f = self_ip(s, (uintptr_t)a + 8, false);
	assert_non_null(f.mapping);
	assert_int_equal(f.mapping->start, (uintptr_t)a);
	assert_int_equal(maps_reads(s, &saved), 2);
	/* unknown time, next generation: a miss reads */
	symbolizer_sample_time(s, 0);
	symbolizer_tick(s);
	b = mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(b != MAP_FAILED);
	f = self_ip(s, (uintptr_t)b + 8, false);
	assert_non_null(f.mapping);
	assert_int_equal(maps_reads(s, &saved), 3);
	assert_int_equal(saved, 1);
	munmap(a, page);
	munmap(b, page);
	symbolizer_free(s);
}

/*
 * A mapping gone from a re-read of the maps (a library unloaded) still
 * names addresses in it for the rest of that generation, where nothing
 * new lies; a mapping made over it replaces it; and the re-read of a
 * later generation lets it go.
 */
static void test_unmapped_kept(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct sym_frame f;
	uint8_t *region, *a, *b, *c, *d;

	region = mmap(NULL, 16 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(region != MAP_FAILED);
	a = mmap(region + page, 2 * page, PROT_READ | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	assert_true(a != MAP_FAILED);
	note_self(s);
	f = self_ip(s, (uintptr_t)a + 100, false);
	assert_non_null(f.mapping);
	assert_int_equal(f.mapping->start, (uintptr_t)a);

	/* a unmapped, b mapped: the re-read b needs keeps a. */
	assert_int_equal(mprotect(a, 2 * page, PROT_NONE), 0);
	b = mmap(region + 6 * page, page, PROT_READ | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	assert_true(b != MAP_FAILED);
	symbolizer_tick(s);
	f = self_ip(s, (uintptr_t)b + 5, false);
	assert_non_null(f.mapping);
	assert_int_equal(f.mapping->start, (uintptr_t)b);
	f = self_ip(s, (uintptr_t)a + 100, false);
	assert_non_null(f.mapping);
	assert_int_equal(f.mapping->start, (uintptr_t)a);
	assert_int_equal(f.mapping->limit, (uintptr_t)a + 2 * page);

	/* Next generation: c lies over a's first page; d is new elsewhere. */
	c = mmap(a, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	d = mmap(region + 10 * page, page, PROT_READ | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	assert_true(c != MAP_FAILED && d != MAP_FAILED);
	symbolizer_tick(s);
	/* a's first page is c's now, asked first (the tick let a go: a miss, a re-read) */
	f = self_ip(s, (uintptr_t)a + 100, false);
	assert_non_null(f.mapping);
	assert_int_equal(f.mapping->start, (uintptr_t)c);
	assert_int_equal(f.mapping->limit, (uintptr_t)c + page);
	/* its second page, where nothing lies, is no one's */
	f = self_ip(s, (uintptr_t)a + page + 100, false);
	assert_null(f.mapping);
	f = self_ip(s, (uintptr_t)d + 5, false);
	assert_non_null(f.mapping);
	assert_int_equal(f.mapping->start, (uintptr_t)d);

	/* b, unmapped in this generation and missed by no read yet, is still known. */
	assert_int_equal(mprotect(b, page, PROT_NONE), 0);
	f = self_ip(s, (uintptr_t)b + 5, false);
	assert_non_null(f.mapping);
	/* A read in the next generation misses it: kept for that generation... */
	symbolizer_tick(s);
	f = self_ip(s, (uintptr_t)region + 13 * page, false); /* in no mapping: a re-read */
	assert_null(f.mapping);
	f = self_ip(s, (uintptr_t)b + 5, false);
	assert_non_null(f.mapping);
	assert_int_equal(f.mapping->start, (uintptr_t)b);
	/* ...and let go by a read in the one after. */
	symbolizer_tick(s);
	f = self_ip(s, (uintptr_t)region + 13 * page, false);
	assert_null(f.mapping);
	f = self_ip(s, (uintptr_t)b + 5, false);
	assert_null(f.mapping);
	munmap(region, 16 * page);
	symbolizer_free(s);
}

/* Address of a dynamic symbol of our own vDSO, read by hand. */
static uintptr_t vdso_symbol(const char *name)
{
	uintptr_t base = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	const Elf64_Shdr *sh;

	if (!base)
		return 0;
	sh = (const Elf64_Shdr *)(base + eh->e_shoff);
	for (int i = 0; i < eh->e_shnum; i++) {
		const Elf64_Sym *sym;
		const char *str;

		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		sym = (const Elf64_Sym *)(base + sh[i].sh_offset);
		str = (const char *)(base + sh[sh[i].sh_link].sh_offset);
		for (size_t j = 0; j < sh[i].sh_size / sizeof(*sym); j++)
			if (strcmp(str + sym[j].st_name, name) == 0)
				return base + sym[j].st_value;
	}
	return 0;
}

static void test_vdso(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	uintptr_t ip;
	struct sym_frame f;

	if (!getauxval(AT_SYSINFO_EHDR)) {
		symbolizer_free(s);
		skip_because("this process has no vDSO (vdso=0 on the kernel command line?)");
	}
	ip = vdso_symbol("__vdso_clock_gettime");
	assert_true(ip != 0);
	note_self(s);
	f = self_ip(s, ip + 4, true);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, "[vdso]");
	assert_int_equal(f.mapping->start, getauxval(AT_SYSINFO_EHDR));
	assert_int_equal(f.address, ip + 4);
	assert_non_null(f.function);
	assert_string_equal(f.function, "clock_gettime");
	symbolizer_free(s);
}

struct child {
	pid_t pid;
	int in, out; /* its stdin (write end) and stdout (read end) */
	uintptr_t leaf, work;
};

static void spawn_prog(struct child *c)
{
	char path[PATH_MAX], line[128];
	int in[2], out[2];
	ssize_t n;
	size_t len = 0;

	assert_true(fixture_path("vsym_prog", path, sizeof(path)));
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->in = in[1];
	c->out = out[0];
	while (len < sizeof(line) - 1 && (n = read(c->out, line + len, sizeof(line) - 1 - len)) > 0) {
		len += (size_t)n;
		if (memchr(line, '\n', len))
			break;
	}
	line[len] = '\0';
	assert_int_equal(sscanf(line, "%" SCNxPTR " %" SCNxPTR, &c->leaf, &c->work), 2);
}

static void kill_prog(struct child *c)
{
	int status;

	kill(c->pid, SIGKILL);
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	close(c->in);
	close(c->out);
}

static void test_child_exits(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	char path[PATH_MAX], mapped[PATH_MAX], hex[128];
	struct child c;
	struct sym_frame f;
	uint64_t start, leaf_off, work_off;
	uint8_t bid[20];

	assert_true(fixture_path("vsym_prog", path, sizeof(path)));
	assert_true(fixture_build_id("vsym_prog", hex, sizeof(hex)));
	assert_int_equal(fixture_unhex(hex, bid, sizeof(bid)), 20);
	spawn_prog(&c);
	start = start_ns_of(c.pid);
	assert_true(fixture_runtime_offset(c.pid, c.leaf, &leaf_off, mapped, sizeof(mapped)));
	assert_string_equal(mapped, path);
	assert_true(fixture_runtime_offset(c.pid, c.work, &work_off, NULL, 0));

	/* A start time that is not this process's: pid reuse, refused. */
	assert_int_equal(symbolizer_note_process(s, (uint32_t)c.pid, start + 5000000000ull), -ESRCH);
	assert_int_equal(symbolizer_note_process(s, (uint32_t)c.pid, start), 0);
	kill_prog(&c);

	/* Gone, and still symbolized from the kept maps. */
	assert_int_equal(symbolizer_note_process(s, (uint32_t)c.pid, start), 0);
	assert_int_equal(symbolizer_user_ip(s, (uint32_t)c.pid, start, c.leaf, false, &f), 0);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, path);
	assert_string_equal(f.mapping->build_id, hex);
	assert_int_equal(f.address, leaf_off);
	assert_non_null(f.function);
	assert_string_equal(f.function, "vsym_prog_leaf");

	/* An address outside its maps: the re-read fails quietly. */
	assert_int_equal(symbolizer_user_ip(s, (uint32_t)c.pid, start, 0x1000, false, &f), 0);
	assert_null(f.mapping);
	assert_int_equal(f.address, 0x1000);

	/* Build-id frames of the dead process. */
	assert_int_equal(symbolizer_user_bid(s, (uint32_t)c.pid, start, bid, work_off + 1, true, &f), 0);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, path);
	assert_int_equal(f.address, work_off + 1);
	assert_string_equal(f.function, "vsym_prog_work");

	/* A process noted only after it is gone cannot be read. */
	assert_int_equal(symbolizer_note_process(s, (uint32_t)c.pid, start + 1), -ESRCH);
	symbolizer_free(s);
}

/* Two processes of one binary: the file is parsed once. */
static void test_files_shared(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	struct symbolizer_stats a, b;
	struct sym_frame f1, f2;
	struct child c1, c2;

	spawn_prog(&c1);
	spawn_prog(&c2);
	assert_int_equal(symbolizer_note_process(s, (uint32_t)c1.pid, start_ns_of(c1.pid)), 0);
	symbolizer_get_stats(s, &a);
	assert_int_equal(a.processes, 1);
	assert_true(a.files_with_symbols >= 2); /* vsym_prog, libc, ld.so */
	assert_int_equal(symbolizer_note_process(s, (uint32_t)c2.pid, start_ns_of(c2.pid)), 0);
	symbolizer_get_stats(s, &b);
	assert_int_equal(b.processes, 2);
	assert_int_equal(b.files, a.files);
	assert_int_equal(b.elf_bytes, a.elf_bytes);

	/* Same instruction, two processes, two ASLR bases: one location. */
	assert_int_equal(symbolizer_user_ip(s, (uint32_t)c1.pid, start_ns_of(c1.pid), c1.leaf, false, &f1), 0);
	assert_int_equal(symbolizer_user_ip(s, (uint32_t)c2.pid, start_ns_of(c2.pid), c2.leaf, false, &f2), 0);
	assert_ptr_equal(f1.mapping, f2.mapping);
	assert_int_equal(f1.address, f2.address);
	assert_string_equal(f1.function, "vsym_prog_leaf");
	assert_ptr_equal(f1.function, f2.function);
	kill_prog(&c1);
	kill_prog(&c2);
	symbolizer_free(s);
}

static void test_bid_after_dlopen(void **state)
{
	char path[PATH_MAX], hex[128];
	struct symbolizer *s = new_sym(NULL);
	struct sym_frame f;
	uint64_t alpha, off;
	uint8_t bid[20];
	void *h, *fn;

	assert_true(fixture_path("libvsym-stripped.so", path, sizeof(path)));
	assert_true(fixture_build_id("libvsym.so", hex, sizeof(hex))); /* strip keeps the note */
	assert_int_equal(fixture_unhex(hex, bid, sizeof(bid)), 20);
	assert_true(fixture_nm("libvsym.so", "vsym_alpha", &alpha, NULL));
	assert_false(is_mapped("/libvsym")); /* earlier tests dlclose'd theirs */

	note_self(s);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(h);
	fn = dlsym(h, "vsym_alpha");
	assert_non_null(fn);
	assert_true(fixture_runtime_offset(getpid(), (uintptr_t)fn, &off, NULL, 0));

	/* Unknown build-id of a noted process: its maps are re-read. */
	assert_int_equal(symbolizer_user_bid(s, (uint32_t)getpid(), start_ns_of(getpid()), bid, off,
					     false, &f),
			 0);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, path);
	assert_string_equal(f.mapping->build_id, hex);
	assert_int_equal(f.address, off);
	assert_string_equal(f.function, "vsym_alpha");
	symbolizer_free(s);
	dlclose(h);
}

static void test_unknown(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	uint8_t bid[20];
	struct sym_frame f, g;
	struct child c;
	uint64_t start;

	/* A pid never noted. */
	assert_int_equal(symbolizer_user_ip(s, 4000000, 1, 0x401000, true, &f), 0);
	assert_null(f.mapping);
	assert_int_equal(f.address, 0x401000);
	assert_null(f.function);

	/* An unknown build-id keeps its identity for later tools. */
	for (int i = 0; i < 20; i++)
		bid[i] = (uint8_t)(0xf0 + i);
	assert_int_equal(symbolizer_user_bid(s, 4000000, 1, bid, 0x1234, false, &f), 0);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, "");
	assert_string_equal(f.mapping->build_id, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00010203");
	assert_int_equal(f.mapping->start, 0);
	assert_int_equal(f.mapping->limit, UINT64_MAX);
	assert_int_equal(f.address, 0x1234);
	assert_null(f.function);
	assert_int_equal(symbolizer_user_bid(s, 4000000, 1, bid, 0x10, false, &g), 0);
	assert_ptr_equal(g.mapping, f.mapping);

	/* A dead process that was never noted. */
	spawn_prog(&c);
	start = start_ns_of(c.pid);
	kill_prog(&c);
	assert_int_equal(symbolizer_note_process(s, (uint32_t)c.pid, start), -ESRCH);
	assert_int_equal(symbolizer_note_process(s, (uint32_t)c.pid, start), -ESRCH);
	assert_int_equal(symbolizer_user_ip(s, (uint32_t)c.pid, start, c.leaf, false, &f), 0);
	assert_null(f.mapping);
	assert_int_equal(f.address, c.leaf);

	assert_int_equal(symbolizer_note_process(s, 0, 0), -EINVAL);
	assert_int_equal(symbolizer_user_ip(s, 1, 0, 0, false, NULL), -EINVAL);
	symbolizer_free(s);
	symbolizer_free(NULL);
}

static uint64_t kallsyms_addr(const char *name)
{
	char line[1024], sym[512];
	unsigned long long addr;
	uint64_t found = 0;
	char type;
	FILE *f = fopen("/proc/kallsyms", "re");

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx %c %511s", &addr, &type, sym) == 3 && strcmp(sym, name) == 0)
			found = addr;
	fclose(f);
	return found;
}

static void test_kernel(void **state)
{
	struct symbolizer *s = new_sym("/proc/kallsyms");
	struct symbolizer_stats st;
	struct sym_frame f;
	uint64_t addr = kallsyms_addr("schedule");

	if (!host_shows_kernel_addresses()) {
		symbolizer_free(s);
		skip_because("/proc/kallsyms shows no kernel addresses here (needs root)");
	}
	assert_true(addr != 0);
	symbolizer_get_stats(s, &st);
	assert_true(st.kernel_symbols > 0);
	assert_int_equal(symbolizer_kernel(s, addr + 1, true, &f), 0);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, "[kernel.kallsyms]");
	assert_true(f.mapping->start <= addr && addr < f.mapping->limit);
	assert_int_equal(f.address, addr + 1);
	assert_non_null(f.function);
	assert_string_equal(f.function, "schedule");
	assert_int_equal(symbolizer_kernel(s, addr, false, &f), 0);
	assert_string_equal(f.function, "schedule");
	/* As a return address, its first byte is the end of the previous function. */
	assert_int_equal(symbolizer_kernel(s, addr, true, &f), 0);
	assert_true(f.function == NULL || strcmp(f.function, "schedule") != 0);
	if (access("/sys/kernel/notes", R_OK) == 0)
		assert_int_equal(strlen(f.mapping->build_id), 40);
	symbolizer_free(s);

	/* Without kallsyms: the kernel mapping, no names. */
	s = new_sym(NULL);
	assert_int_equal(symbolizer_kernel(s, addr, false, &f), 0);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, "[kernel.kallsyms]");
	assert_int_equal(f.address, addr);
	assert_null(f.function);
	symbolizer_free(s);
}

static void test_kernel_modules(void **state)
{
	char dir[] = "/tmp/vigil-symbolizer-XXXXXX", path[64];
	static const char text[] = "ffffffff81000000 T _stext\n"
				   "ffffffff81000100 T do_thing\n"
				   "ffffffffc0001000 t mod_fn_a\t[mymod]\n"
				   "ffffffffc0001100 T mod_fn_b\t[mymod]\n";
	struct symbolizer *s;
	struct sym_frame f, g;
	FILE *fp;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/kallsyms", dir);
	fp = fopen(path, "we");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	s = new_sym(path);
	unlink(path);
	rmdir(dir);

	assert_int_equal(symbolizer_kernel(s, 0xffffffffc0001010, false, &f), 0);
	assert_string_equal(f.function, "mod_fn_a");
	assert_string_equal(f.mapping->path, "[mymod]");
	assert_int_equal(f.mapping->start, 0xffffffffc0001000);
	assert_int_equal(f.mapping->limit, 0xffffffffc0001101);
	assert_int_equal(symbolizer_kernel(s, 0xffffffffc0001101, true, &g), 0);
	assert_string_equal(g.function, "mod_fn_b");
	assert_ptr_equal(g.mapping, f.mapping);
	assert_int_equal(symbolizer_kernel(s, 0xffffffff81000105, false, &f), 0);
	assert_string_equal(f.function, "do_thing");
	assert_string_equal(f.mapping->path, "[kernel.kallsyms]");
	assert_int_equal(f.mapping->start, 0xffffffff81000000);
	assert_int_equal(f.mapping->limit, 0xffffffff81000101);
	symbolizer_free(s);
}

static void test_gc_and_forget(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	uintptr_t ip = (uintptr_t)&symbolizer_test_marker;
	struct symbolizer_stats st;
	struct sym_frame f;

	note_self(s);
	f = self_ip(s, ip, false);
	/* Generation 1 -> 2: what a frame points to is still valid (ASan checks). */
	symbolizer_tick(s);
	assert_string_equal(f.function, "symbolizer_test_marker");
	assert_true(strlen(f.mapping->path) > 0);
	symbolizer_tick(s);
	symbolizer_get_stats(s, &st);
	assert_int_equal(st.processes, 1);
	assert_true(st.files >= 2);
	assert_true(st.elf_bytes > 0);

	/* Unused for SYMBOLIZER_KEEP_GENERATIONS: process, files and mappings go. */
	symbolizer_tick(s);
	symbolizer_get_stats(s, &st);
	assert_int_equal(st.generation, 4);
	assert_int_equal(st.processes, 0);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.anon_mappings, 0);
	assert_int_equal(st.elf_bytes, 0);
	f = self_ip(s, ip, false);
	assert_null(f.mapping);
	assert_null(f.function);

	/* Used every generation: kept. */
	note_self(s);
	for (int i = 0; i < 5; i++) {
		symbolizer_tick(s);
		f = self_ip(s, ip, false);
		assert_non_null(f.function);
	}
	symbolizer_get_stats(s, &st);
	assert_int_equal(st.processes, 1);

	/* exec: forget makes the maps unknown; the next note reads them again. */
	symbolizer_forget_process(s, (uint32_t)getpid(), 0);
	symbolizer_get_stats(s, &st);
	assert_int_equal(st.processes, 1); /* held for the files its next read may keep */
	f = self_ip(s, ip, false);
	assert_null(f.mapping);
	note_self(s);
	f = self_ip(s, ip, false);
	assert_string_equal(f.function, "symbolizer_test_marker");
	symbolizer_free(s);
}

/* --- build-ids are claims: one user's file never names another's frames --- */

/*
 * A small ELF file of our own making (tests/unit/elfgen.h): one R+X
 * PT_LOAD over all of its `total` bytes (sparse past the headers), at
 * vaddr 0, so that a file offset is its address; one function `name` at
 * [value, value + size); the build-id bid.  Owned by uid, mode 0644.
 */
static void write_elf(const char *path, const uint8_t bid[20], const char *name, uint64_t value,
		      uint64_t size, uint64_t total, uid_t uid)
{
	struct elfgen g = { .nsym = 1, .name_len = strlen(name) };
	struct elfimg m;
	int fd;

	assert_true(g.name_len >= 8);
	assert_true(elfgen_build(&g, &m));
	memcpy(m.buf + m.strtab_off + 1, name, g.name_len);
	memcpy(m.buf + m.note_off + 16, bid, 20);
	ELFGEN_SET(&m, m.symtab_off + m.symentsize, Sym, st_value, value);
	ELFGEN_SET(&m, m.symtab_off + m.symentsize, Sym, st_size, size);
	ELFGEN_SET(&m, m.phoff, Phdr, p_filesz, total);
	ELFGEN_SET(&m, m.phoff, Phdr, p_memsz, total);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, m.buf, m.len, 0), (ssize_t)m.len);
	assert_int_equal(ftruncate(fd, (off_t)total), 0);
	assert_int_equal(fchown(fd, uid, (gid_t)-1), 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);
	free(m.buf);
}

/* In a forked child: go when the test does, even when an assertion ends it early. */
static void die_with_parent(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
		_exit(0);
}

/* A child that maps each of paths[] R+X at fixed addresses, reported in at[]. */
struct mapper {
	pid_t pid;
	uint64_t start_ns;
	uintptr_t at[4];
};

/* Below the libraries, so first in its maps, and in what ASan leaves to programs. */
#define MAPPER_BASE 0x40000000ull

static void mapper_start(struct mapper *c, const char *const *paths, size_t n)
{
	int pfd[2];

	assert_true(n <= 4);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		die_with_parent();
		for (size_t i = 0; i < n; i++) {
			int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
			struct stat st;
			void *p;

			if (fd < 0 || fstat(fd, &st) < 0)
				_exit(90);
			p = mmap((void *)(uintptr_t)(MAPPER_BASE + i * 0x1000000ull), (size_t)st.st_size,
				 PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
			if (p == MAP_FAILED)
				_exit(91);
			close(fd);
		}
		if (write(pfd[1], "k", 1) != 1)
			_exit(92);
		for (;;)
			pause();
	}
	close(pfd[1]);
	{
		char ok;

		assert_int_equal(read(pfd[0], &ok, 1), 1);
	}
	close(pfd[0]);
	for (size_t i = 0; i < n; i++)
		c->at[i] = (uintptr_t)(MAPPER_BASE + i * 0x1000000ull);
	c->start_ns = start_ns_of(c->pid);
}

static void mapper_stop(struct mapper *c)
{
	kill(c->pid, SIGKILL);
	assert_int_equal(waitpid(c->pid, NULL, 0), c->pid);
}

/* s's figures once it has noted a mapper that maps none of the test's files: what the rest of a process costs. */
static void stats_without_files(struct symbolizer *s, struct symbolizer_stats *ret)
{
	struct mapper m;

	mapper_start(&m, NULL, 0);
	assert_int_equal(symbolizer_note_process(s, (uint32_t)m.pid, m.start_ns), 0);
	symbolizer_get_stats(s, ret);
	mapper_stop(&m);
}

/* libc as this process maps it: path, build-id, getpid's file offset. */
struct libc_info {
	char path[PATH_MAX], hex[2 * 20 + 1];
	uint8_t bid[20];
	uint64_t getpid_off, size;
	uintptr_t getpid_ip;
};

static void libc_info(struct libc_info *l)
{
	const uint8_t *bid;
	struct elfsym *e = NULL;
	struct stat st;
	size_t len = 0;
	int fd;

	l->getpid_ip = (uintptr_t)dlsym(RTLD_DEFAULT, "getpid");
	assert_true(l->getpid_ip != 0);
	assert_true(fixture_runtime_offset(getpid(), l->getpid_ip, &l->getpid_off, l->path,
					   sizeof(l->path)));
	fd = open(l->path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	l->size = (uint64_t)st.st_size;
	assert_int_equal(elfsym_open_fd(fd, &e), 0);
	close(fd);
	bid = elfsym_build_id(e, &len);
	assert_non_null(bid);
	assert_int_equal(len, 20); /* Debian links with --build-id=sha1 */
	memcpy(l->bid, bid, 20);
	for (size_t i = 0; i < 20; i++)
		snprintf(l->hex + 2 * i, 3, "%02x", l->bid[i]);
	elfsym_free(e);
}

struct spoof {
	char dir[64], fake[96];
	struct libc_info libc;
	struct mapper mallory;
};

/* Mallory's file: 4 KiB of headers, sparse up to libc's size, libc's build-id. */
static void spoof_setup(struct spoof *sp, uid_t owner)
{
	snprintf(sp->dir, sizeof(sp->dir), "/var/tmp/vigil-spoof.XXXXXX");
	assert_non_null(mkdtemp(sp->dir));
	assert_int_equal(chmod(sp->dir, 0755), 0);
	snprintf(sp->fake, sizeof(sp->fake), "%s/fake.so", sp->dir);
	libc_info(&sp->libc);
	write_elf(sp->fake, sp->libc.bid, "mallory_was_here", 0x40, sp->libc.size - 0x40,
		  sp->libc.size, owner);
}

static void spoof_teardown(struct spoof *sp)
{
	unlink(sp->fake);
	rmdir(sp->dir);
}

static struct sym_frame bid_frame(struct symbolizer *s, uint32_t pid, uint64_t start,
				  const uint8_t bid[20], uint64_t off)
{
	struct sym_frame f;

	memset(&f, 0xa5, sizeof(f));
	assert_int_equal(symbolizer_user_bid(s, pid, start, bid, off, false, &f), 0);
	return f;
}

/* This process's libc frame, by ip and by build-id, is libc's getpid. */
static void assert_own_libc(struct symbolizer *s, const struct spoof *sp)
{
	struct sym_frame f = self_ip(s, sp->libc.getpid_ip, false);

	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, sp->libc.path);
	assert_string_equal(f.mapping->build_id, sp->libc.hex);
	assert_int_equal(f.address, sp->libc.getpid_off);
	assert_non_null(f.function);
	assert_string_equal(f.function, "getpid");
	f = bid_frame(s, (uint32_t)getpid(), start_ns_of(getpid()), sp->libc.bid, sp->libc.getpid_off);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, sp->libc.path);
	assert_non_null(f.function);
	assert_string_equal(f.function, "getpid");
}

/* Mallory's own frames in his own file: named from it, as they should be. */
static void assert_mallory_own(struct symbolizer *s, const struct spoof *sp)
{
	struct sym_frame f;

	assert_int_equal(symbolizer_user_ip(s, (uint32_t)sp->mallory.pid, sp->mallory.start_ns,
					    sp->mallory.at[0] + sp->libc.getpid_off, false, &f),
			 0);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, sp->fake);
	assert_int_equal(f.address, sp->libc.getpid_off);
	assert_non_null(f.function);
	assert_string_equal(f.function, "mallory_was_here");
}

/*
 * (a) Mallory's process is looked at first: his file, claiming libc's
 * build-id, is parsed before the genuine libc.  The genuine libc of other
 * processes must stay libc, by ip and by build-id, and not become an
 * alias of his file.  In the global table (a process never noted) the
 * genuine libc, which only root could have written, takes the build-id
 * over from a file any user could have.
 */
static void test_bid_spoof_mallory_first(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	const char *paths[1];
	struct spoof sp;
	struct sym_frame f;

	spoof_setup(&sp, 65534); /* nobody's */
	paths[0] = sp.fake;
	mapper_start(&sp.mallory, paths, 1);
	assert_int_equal(symbolizer_note_process(s, (uint32_t)sp.mallory.pid, sp.mallory.start_ns), 0);
	assert_mallory_own(s, &sp);
	note_self(s);
	assert_own_libc(s, &sp);
	/* A process never noted: the global table, where root's file won. */
	f = bid_frame(s, 4000000, 1, sp.libc.bid, sp.libc.getpid_off);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, sp.libc.path);
	assert_string_equal(f.function, "getpid");
	/* Still, after the victim's maps are read again. */
	symbolizer_tick(s);
	symbolizer_forget_process(s, (uint32_t)getpid(), 0);
	note_self(s);
	assert_own_libc(s, &sp);
	mapper_stop(&sp.mallory);
	spoof_teardown(&sp);
	symbolizer_free(s);
}

/*
 * (b) The genuine libc is seen first; Mallory's file is deferred by the
 * parse-time budget (which he can spend himself) and parsed later.  It
 * must not replace libc in the build-id table: not for this process's
 * build-id frames, nor for a process never noted.  Even when his file is
 * owned by root (a container's root, say): first come, first kept.
 */
static void test_bid_spoof_mallory_later(void **state)
{
	for (int owner = 0; owner < 2; owner++) {
		struct symbolizer *s = new_sym(NULL);
		struct symbolizer_stats st;
		const char *paths[1];
		struct spoof sp;
		struct sym_frame f;

		spoof_setup(&sp, owner ? 65534 : 0);
		paths[0] = sp.fake;
		note_self(s);
		assert_own_libc(s, &sp);
		mapper_start(&sp.mallory, paths, 1);
		symbolizer_set_parse_budget(s, 0, 0);
		assert_int_equal(symbolizer_note_process(s, (uint32_t)sp.mallory.pid, sp.mallory.start_ns), 0);
		symbolizer_get_stats(s, &st);
		assert_true(st.files_deferred >= 1);
		/* Later, with time to parse: his frame makes the collector read his file. */
		symbolizer_set_parse_budget(s, SYMBOLIZER_PARSE_PERCENT, SYMBOLIZER_PARSE_BURST_MS);
		assert_mallory_own(s, &sp);
		symbolizer_get_stats(s, &st);
		assert_int_equal(st.files_deferred, 0);
		assert_own_libc(s, &sp);
		f = bid_frame(s, 4000000, 1, sp.libc.bid, sp.libc.getpid_off);
		assert_non_null(f.mapping);
		assert_string_equal(f.mapping->path, sp.libc.path);
		assert_string_equal(f.function, "getpid");
		mapper_stop(&sp.mallory);
		spoof_teardown(&sp);
		symbolizer_free(s);
	}
}

/*
 * (c) The victim's own file is not parsed yet (the budget is spent, as
 * Mallory can make it) while Mallory's, claiming its build-id, is: the
 * victim's build-id frame stays a build-id and an offset, unnamed, rather
 * than named from another process's file; once its file is parsed, it is
 * named from it.  (Two files of our own here, so that Mallory's process
 * does not map the victim's file too, as it maps libc.)
 */
static void test_bid_spoof_victim_deferred(void **state)
{
	char dir[] = "/var/tmp/vigil-spoof.XXXXXX", genuine[64], fake[64], hexbid[41];
	const char *gp[1] = { genuine }, *fp[1] = { fake };
	struct symbolizer *s = new_sym(NULL);
	struct mapper victim, mallory;
	struct sym_frame f;
	uint8_t bid[20];

	for (int i = 0; i < 20; i++) {
		bid[i] = (uint8_t)(0x70 + i);
		snprintf(hexbid + 2 * i, 3, "%02x", bid[i]);
	}
	assert_non_null(mkdtemp(dir));
	snprintf(genuine, sizeof(genuine), "%s/genuine.so", dir);
	snprintf(fake, sizeof(fake), "%s/fake.so", dir);
	write_elf(genuine, bid, "genuine_function", 0x800, 0x800, 0x2000, 0);
	write_elf(fake, bid, "mallory_was_here", 0x40, 0x2000 - 0x40, 0x2000, 65534);
	mapper_start(&mallory, fp, 1);
	mapper_start(&victim, gp, 1);

	assert_int_equal(symbolizer_note_process(s, (uint32_t)mallory.pid, mallory.start_ns), 0);
	symbolizer_set_parse_budget(s, 0, 0);
	assert_int_equal(symbolizer_note_process(s, (uint32_t)victim.pid, victim.start_ns), 0);
	f = bid_frame(s, (uint32_t)victim.pid, victim.start_ns, bid, 0x810);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->build_id, hexbid);
	assert_string_not_equal(f.mapping->path, fake);
	assert_int_equal(f.address, 0x810);
	assert_null(f.function);

	/* Once parsed, the victim's frames are its own file's. */
	symbolizer_set_parse_budget(s, SYMBOLIZER_PARSE_PERCENT, SYMBOLIZER_PARSE_BURST_MS);
	symbolizer_tick(s);
	f = bid_frame(s, (uint32_t)victim.pid, victim.start_ns, bid, 0x810);
	assert_non_null(f.mapping);
	assert_string_equal(f.mapping->path, genuine);
	assert_string_equal(f.function, "genuine_function");
	/* Mallory's are still his. */
	f = bid_frame(s, (uint32_t)mallory.pid, mallory.start_ns, bid, 0x810);
	assert_string_equal(f.mapping->path, fake);
	assert_string_equal(f.function, "mallory_was_here");
	/* The genuine file is root's, his is not: the global table is root's now. */
	f = bid_frame(s, 4000000, 1, bid, 0x810);
	assert_string_equal(f.function, "genuine_function");
	mapper_stop(&mallory);
	mapper_stop(&victim);
	unlink(genuine);
	unlink(fake);
	rmdir(dir);
	symbolizer_free(s);
}

/* Copy the file at from to to (mode 0644); 0 or -1. */
static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, r = -1;
	ssize_t n = -1;

	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			goto out;
	r = out >= 0 && n == 0 ? 0 : -1;
out:
	close(in);
	if (out >= 0)
		close(out);
	return r;
}

/*
 * Two copies of one library (two files, one build-id, the same bytes) hold
 * one CFI; a third that claims the build-id but whose .eh_frame differs by
 * one byte holds its own; and a file that shared, once the LRU took the
 * bytes, reads them again into a CFI of its own.
 */
static void test_cfi_shared(void **state)
{
	char dir[] = "/var/tmp/vigil-cfishare.XXXXXX", lib[PATH_MAX], a[64], b[64], c[64];
	const char *paths[3] = { a, b, c };
	struct symbolizer *s = new_sym(NULL);
	struct symbolizer_stats st0, st;
	struct sym_unwind_map ma, mb, mc;
	uint64_t held, bytes;
	struct elfsym *e = NULL;
	struct cfi *cf = NULL;
	struct mapper m;
	uint8_t byte;
	int fd;

	assert_true(fixture_path("libvsym.so", lib, sizeof(lib)));
	assert_non_null(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/a.so", dir);
	snprintf(b, sizeof(b), "%s/b.so", dir);
	snprintf(c, sizeof(c), "%s/c.so", dir);
	assert_int_equal(copy_file(lib, a), 0);
	assert_int_equal(copy_file(lib, b), 0);
	assert_int_equal(copy_file(lib, c), 0);
	/* c: the last byte of its .eh_frame flipped */
	fd = open(c, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(elfsym_open_fd(fd, &e), 0);
	assert_int_equal(cfi_read_fd(fd, e, &cf), 0);
	assert_true(cf->ehf_len > 0);
	assert_int_equal(pread(fd, &byte, 1, (off_t)(cf->ehf_offset + cf->ehf_len - 1)), 1);
	byte ^= 0x5a;
	assert_int_equal(pwrite(fd, &byte, 1, (off_t)(cf->ehf_offset + cf->ehf_len - 1)), 1);
	cfi_free(cf);
	elfsym_free(e);
	close(fd);

	stats_without_files(s, &st0);

	mapper_start(&m, paths, 3);
	assert_int_equal(symbolizer_note_process(s, (uint32_t)m.pid, m.start_ns), 0);
	assert_int_equal(symbolizer_unwind_map(s, (uint32_t)m.pid, m.start_ns, m.at[0] + 0x1010, &ma), 0);
	assert_int_equal(symbolizer_unwind_map(s, (uint32_t)m.pid, m.start_ns, m.at[1] + 0x1010, &mb), 0);
	assert_int_equal(symbolizer_unwind_map(s, (uint32_t)m.pid, m.start_ns, m.at[2] + 0x1010, &mc), 0);
	assert_ptr_equal(ma.cfi, mb.cfi);
	assert_ptr_not_equal(ma.cfi, mc.cfi);
	assert_int_equal(ma.bias + 0x100000, m.at[0]);
	assert_int_equal(mb.bias + 0x100000, m.at[1]);
	symbolizer_get_stats(s, &st);
	assert_int_equal(st.cfi_read, st0.cfi_read + 3);
	assert_int_equal(st.cfi_shared, st0.cfi_shared + 1);
	/* a's and c's CFI held, b's not again */
	assert_int_equal(st.cfi_bytes - st0.cfi_bytes,
			 cfi_mem_usage(ma.cfi) + cfi_mem_usage(mc.cfi));
	held = st.cfi_bytes;
	bytes = cfi_mem_usage(ma.cfi) - sizeof(struct cfi);

	/* The bytes dropped (a's and b's at once), as the LRU does, and b reads its own. */
	{
		struct cfi *shared;

		memcpy(&shared, &ma.cfi, sizeof(shared));
		cfi_drop_bytes(shared);
	}
	symbolizer_tick(s);
	assert_int_equal(symbolizer_unwind_map(s, (uint32_t)m.pid, m.start_ns, m.at[1] + 0x1010, &mb), 0);
	assert_ptr_not_equal(mb.cfi, ma.cfi);
	assert_non_null(mb.cfi->hdr);
	assert_null(ma.cfi->hdr);
	assert_true(cfi_same(mb.cfi, mc.cfi) == false);
	/* and a, alone with the old one now, reads it again in place */
	assert_int_equal(symbolizer_unwind_map(s, (uint32_t)m.pid, m.start_ns, m.at[0] + 0x1010, &mc), 0);
	assert_ptr_equal(mc.cfi, ma.cfi);
	assert_non_null(ma.cfi->hdr);
	assert_true(cfi_same(ma.cfi, mb.cfi));
	/*
	 * Counted: b's own CFI, whole, and a's bytes again (the drop above went
	 * behind the symbolizer's back, so the bytes it dropped are still
	 * counted: held already has them once).
	 */
	symbolizer_get_stats(s, &st);
	assert_int_equal(st.cfi_bytes, held + cfi_mem_usage(mb.cfi) + bytes);
	assert_int_equal(st.cfi_reloaded, st0.cfi_reloaded + 2);
	mapper_stop(&m);
	unlink(a);
	unlink(b);
	unlink(c);
	rmdir(dir);
	symbolizer_free(s);
}

/*
 * What build-ids are legitimately for: the same binary in several places
 * (containers: other inodes, same bytes) holds its symbols once, each copy
 * keeping its own mapping (its path).  A file that claims the same
 * build-id but whose symbols differ gets its own, and names only its own
 * frames.
 */
static void test_same_content_shared(void **state)
{
	char dir[] = "/var/tmp/vigil-share.XXXXXX", a[64], b[64], c[64];
	const char *paths[3] = { a, b, c };
	struct symbolizer *s = new_sym(NULL);
	struct symbolizer_stats st0, st;
	struct mapper m;
	struct sym_frame fa, fb, fc;
	uint8_t bid[20];

	for (int i = 0; i < 20; i++)
		bid[i] = (uint8_t)(0x30 + i);
	assert_non_null(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/a.so", dir);
	snprintf(b, sizeof(b), "%s/b.so", dir);
	snprintf(c, sizeof(c), "%s/c.so", dir);
	write_elf(a, bid, "shared_function", 0x800, 0x800, 0x2000, 0);
	write_elf(b, bid, "shared_function", 0x800, 0x800, 0x2000, 0);
	write_elf(c, bid, "forged_function", 0x800, 0x800, 0x2000, 65534);

	stats_without_files(s, &st0);

	mapper_start(&m, paths, 3);
	assert_int_equal(symbolizer_note_process(s, (uint32_t)m.pid, m.start_ns), 0);
	symbolizer_get_stats(s, &st);
	assert_int_equal(st.files, st0.files + 3);
	assert_int_equal(st.symbol_tables, st0.symbol_tables + 2); /* a and b share */
	assert_int_equal(symbolizer_user_ip(s, (uint32_t)m.pid, m.start_ns, m.at[0] + 0x810, false, &fa), 0);
	assert_int_equal(symbolizer_user_ip(s, (uint32_t)m.pid, m.start_ns, m.at[1] + 0x810, false, &fb), 0);
	assert_int_equal(symbolizer_user_ip(s, (uint32_t)m.pid, m.start_ns, m.at[2] + 0x810, false, &fc), 0);
	assert_string_equal(fa.mapping->path, a);
	assert_string_equal(fb.mapping->path, b);
	assert_string_equal(fc.mapping->path, c);
	assert_int_equal(fa.address, 0x810);
	assert_string_equal(fa.function, "shared_function");
	assert_ptr_equal(fa.function, fb.function); /* one table */
	assert_string_equal(fc.function, "forged_function");
	mapper_stop(&m);
	unlink(a);
	unlink(b);
	unlink(c);
	rmdir(dir);
	symbolizer_free(s);
}

/* --- a process's maps cost bounded requests, however many mappings ------ */

/*
 * The collector's requests answered by the monitor's own handler
 * (broker.c, mapfile.c) over a real socketpair, in this process, as vigild
 * does across two.  open_file past `limit` is answered -EAGAIN without
 * asking: the way before this was fixed asked once per mapping, and at
 * thousands of mappings that would take minutes to fail.
 */
struct via_broker {
	struct broker b;
	int sv[2];
	unsigned long open_files, limit;
};

static int vb_ask(struct via_broker *vb, const void *msg, size_t len)
{
	uint8_t buf[PRIVSEP_MAX_MSG];
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[PRIVSEP_MAX_FDS], type;
	struct msg_reply rep;
	size_t n;

	assert_int_equal(privsep_send(vb->sv[1], msg, len, NULL, 0), 0);
	assert_int_equal(broker_serve_one(&vb->b, vb->sv[0], PEER_COLLECTOR), 0);
	type = privsep_recv(vb->sv[1], PEER_MONITOR, seen, buf, &n, fds);
	if (type == MSG_FD_REPLY)
		return fds[0];
	assert_int_equal(type, MSG_ERR_REPLY);
	memcpy(&rep, buf, sizeof(rep));
	return -(int)rep.err;
}

static int vb_open_maps(void *ctx, uint32_t pid)
{
	struct msg_open_maps m = { .hdr = { MSG_OPEN_MAPS, sizeof(m) }, .pid = pid };

	return vb_ask(ctx, &m, sizeof(m));
}

static int vb_open_file(void *ctx, uint32_t pid, const struct procmap *mp, struct stat *ret_st)
{
	struct via_broker *vb = ctx;
	struct msg_open_file m = {
		.hdr = { MSG_OPEN_FILE, sizeof(m) }, .pid = pid,
		.dev_major = mp->dev_major, .dev_minor = mp->dev_minor,
		.start = mp->start, .end = mp->end, .inode = mp->inode,
	};
	int fd;

	if (++vb->open_files > vb->limit)
		return -EAGAIN;
	fd = vb_ask(vb, &m, sizeof(m));
	if (fd >= 0 && fstat(fd, ret_st) < 0) {
		close(fd);
		return -EBADF;
	}
	return fd;
}

/* OPEN_FILES through the monitor's handler: up to 8 files in one ask. */
static int vb_open_files(void *ctx, uint32_t pid, const struct procmap *const *mps, size_t n,
			 int *ret_fds, struct stat *ret_st)
{
	struct via_broker *vb = ctx;
	struct msg_open_files m = { .hdr = { MSG_OPEN_FILES, sizeof(m) }, .pid = pid,
				    .n = (uint32_t)n };
	struct msg_files_reply r;
	uint8_t buf[PRIVSEP_MAX_MSG];
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[PRIVSEP_MAX_FDS];
	size_t len, k = 0;

	assert_true(n >= 1 && n <= PRIVSEP_MAX_FDS);
	vb->open_files += n;
	if (vb->open_files > vb->limit)
		return -EAGAIN;
	for (size_t i = 0; i < n; i++)
		m.maps[i] = (struct msg_file_ref){ .dev_major = mps[i]->dev_major,
						   .dev_minor = mps[i]->dev_minor,
						   .start = mps[i]->start, .end = mps[i]->end,
						   .inode = mps[i]->inode };
	assert_int_equal(privsep_send(vb->sv[1], &m, sizeof(m), NULL, 0), 0);
	assert_int_equal(broker_serve_one(&vb->b, vb->sv[0], PEER_COLLECTOR), 0);
	assert_int_equal(privsep_recv(vb->sv[1], PEER_MONITOR, seen, buf, &len, fds), MSG_FILES_REPLY);
	memcpy(&r, buf, sizeof(r));
	assert_int_equal(r.n, n);
	for (size_t i = 0; i < n; i++) {
		ret_fds[i] = r.err[i] ? -r.err[i] : fds[k++];
		if (ret_fds[i] >= 0 && fstat(ret_fds[i], &ret_st[i]) < 0) {
			close(ret_fds[i]);
			ret_fds[i] = -EBADF;
		}
	}
	assert_int_equal(k, r.nfds);
	return 0;
}

/* A child that maps the first page of this test's binary R+X n times. */
static pid_t many_maps_child(size_t n)
{
	int pfd[2];
	pid_t pid;
	char ok;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

		die_with_parent();

		/* Offset 0 each time: neighbours cannot merge into one mapping. */
		for (size_t i = 0; i < n; i++)
			if (fd < 0 || mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED)
				_exit(90);
		if (write(pfd[1], "k", 1) != 1)
			_exit(91);
		for (;;)
			pause();
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &ok, 1), 1);
	close(pfd[0]);
	return pid;
}

/*
 * CPU time of this process (the monitor's handler runs in it too), so that
 * a busy host, which delays it, does not make the bound below flaky.
 */
static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double time_note(struct via_broker *vb, pid_t pid, bool batched, unsigned long *ret_files,
			uint64_t *ret_reads, struct symbolizer **keep)
{
	static const struct symbolizer_ops proto = { .open_maps = vb_open_maps, .open_file = vb_open_file };
	struct symbolizer_ops ops = proto;

	if (batched)
		ops.open_files = vb_open_files;
	struct symbolizer *s = NULL;
	uint64_t reads = vb->b.maps_reads;
	double t0, t;

	ops.ctx = vb;
	assert_int_equal(symbolizer_new_ops(&ops, -1, &s), 0);
	symbolizer_set_parse_budget(s, 0, 0); /* requests and maps only: no parsing */
	vb->open_files = 0;
	t0 = cpu_ms();
	assert_int_equal(symbolizer_note_process(s, (uint32_t)pid, start_ns_of(pid)), 0);
	t = cpu_ms() - t0;
	*ret_files = vb->open_files;
	*ret_reads = vb->b.maps_reads - reads;
	if (keep)
		*keep = s;
	else
		symbolizer_free(s);
	return t;
}

/*
 * A process that maps one file R+X thousands of times: the collector asks
 * the monitor for that file once per look, and the monitor reads the maps
 * once, not once per mapping.  A look at it costs about what a look at a
 * process with a handful of mappings costs, plus reading its maps (both
 * measured here, in CPU time); before, it cost a read of the whole maps
 * per mapping (16384 of them, ~15 ms each: minutes).
 */
static void test_many_mappings(void **state)
{
	const size_t nmaps = SYMBOLIZER_MAX_PROC_MAPS;
	struct via_broker vb = { .b = { .max_hz = 100, .cgroup_root_fd = -1 }, .limit = 64 };
	struct symbolizer *s;
	struct procmaps *m;
	struct sym_frame f;
	pid_t small, big;
	double t_read = 1e9, t_small = 1e9, t_big = 1e9, t;
	unsigned long files_small = 0, files_big = 0, nf;
	uint64_t reads_big = 0, nr;
	size_t distinct = 0, mapped = 0;
	char exe[PATH_MAX];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, vb.sv), 0);
	assert_non_null(realpath("/proc/self/exe", exe));
	small = many_maps_child(0);
	big = many_maps_child(nmaps);

	/* Reading and parsing the big one's maps, once: the part that must grow. */
	for (int k = 0; k < 3; k++) {
		double t0 = cpu_ms();

		assert_int_equal(procmaps_read(big, &m), 0);
		t = cpu_ms() - t0;
		t_read = t < t_read ? t : t_read;
		if (k == 0) {
			for (size_t i = 0; i < m->n; i++) {
				bool seen = false;

				if (!(m->maps[i].prot & PROT_EXEC) || !m->maps[i].inode)
					continue;
				mapped++;
				for (size_t j = 0; j < i && !seen; j++)
					seen = (m->maps[j].prot & PROT_EXEC) && m->maps[j].inode == m->maps[i].inode &&
					       m->maps[j].dev_minor == m->maps[i].dev_minor &&
					       m->maps[j].dev_major == m->maps[i].dev_major;
				distinct += !seen;
			}
		}
		procmaps_free(m);
	}
	assert_true(mapped > nmaps);
	for (int k = 0; k < 3; k++) {
		t = time_note(&vb, small, false, &nf, &nr, NULL);
		t_small = t < t_small ? t : t_small;
		files_small = nf;
		/* the last look asks for its files 8 at a time (OPEN_FILES), the frames below are its */
		t = time_note(&vb, big, k == 2, &nf, &nr, k == 2 ? &s : NULL);
		t_big = t < t_big ? t : t_big;
		/* 8 at a time, the same files as one at a time: none past the mappings' bound */
		if (k == 2)
			assert_int_equal(nf, files_big);
		files_big = nf > files_big ? nf : files_big;
		reads_big = nr > reads_big ? nr : reads_big;
	}
	print_message("many mappings: %zu R+X file mappings of %zu files: %lu requests (a handful of "
		      "mappings: %lu), %" PRIu64 " maps read by the monitor; look %.2f ms CPU (a handful: "
		      "%.2f ms, one read of its maps: %.2f ms; bound %.2f ms)\n",
		      mapped, distinct, files_big, files_small, reads_big, t_big, t_small, t_read,
		      3 * t_small + 4 * t_read);
	assert_true(files_big <= distinct);
	assert_int_equal(reads_big, 1);
	assert_true(t_big <= 3 * t_small + 4 * t_read);

	/* And the mappings are the file's: frames are file offsets in it. */
	assert_int_equal(procmaps_read(big, &m), 0);
	for (size_t i = 0; i < m->n; i++) {
		if (m->maps[i].prot & PROT_EXEC && m->maps[i].offset == 0 && m->maps[i].end - m->maps[i].start == 4096 &&
		    strcmp(m->maps[i].path, exe) == 0) {
			assert_int_equal(symbolizer_user_ip(s, (uint32_t)big, start_ns_of(big),
							    m->maps[i].start + 0x10, false, &f),
					 0);
			assert_non_null(f.mapping);
			assert_string_equal(f.mapping->path, exe);
			assert_int_equal(f.address, 0x10);
			break;
		}
	}
	procmaps_free(m);
	symbolizer_free(s);
	broker_release(&vb.b);
	close(vb.sv[0]);
	close(vb.sv[1]);
	kill(small, SIGKILL);
	kill(big, SIGKILL);
	waitpid(small, NULL, 0);
	waitpid(big, NULL, 0);
}

/*
 * Thousands of distinct files: at most SYMBOLIZER_MAX_PROC_FILES are
 * asked for per look; mappings of the others stay address + mapping.
 */
struct many_files {
	size_t n;
	unsigned long opened;
	char path[PATH_MAX];
};

static int mf_open_maps(void *ctx, uint32_t pid)
{
	const struct many_files *mf = ctx;
	int fd = memfd_create("many-files-maps", MFD_CLOEXEC);
	FILE *f;

	if (fd < 0)
		return -errno;
	f = fdopen(dup(fd), "w");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	for (size_t i = 0; i < mf->n; i++)
		fprintf(f, "%llx-%llx r-xp 00000000 08:01 %zu /many/f%zu\n", 0x10000000ull + i * 0x10000ull,
			0x10001000ull + i * 0x10000ull, 1000 + i, i);
	fclose(f);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int mf_open_file(void *ctx, uint32_t pid, const struct procmap *mp, struct stat *ret_st)
{
	struct many_files *mf = ctx;
	int fd = open(mf->path, O_RDONLY | O_CLOEXEC);

	mf->opened++;
	if (fd < 0 || fstat(fd, ret_st) < 0)
		return -errno;
	return fd;
}

static int mf_open_files(void *ctx, uint32_t pid, const struct procmap *const *mps, size_t n,
			 int *ret_fds, struct stat *ret_st)
{
	assert_true(n >= 1 && n <= SYMBOLIZER_FILES_AT_ONCE);
	for (size_t i = 0; i < n; i++)
		ret_fds[i] = mf_open_file(ctx, pid, mps[i], &ret_st[i]);
	return 0;
}

static void proc_files_cap(bool batched)
{
	struct many_files mf = { .n = SYMBOLIZER_MAX_PROC_FILES * 3 };
	struct symbolizer_ops ops = { .open_maps = mf_open_maps, .open_file = mf_open_file, .ctx = &mf };
	struct symbolizer *s = NULL;
	struct sym_frame f;
	uint64_t last = 0x10000000ull + (mf.n - 1) * 0x10000ull;

	if (batched)
		ops.open_files = mf_open_files;
	assert_true(fixture_path("libvsym.so", mf.path, sizeof(mf.path)));
	assert_int_equal(symbolizer_new_ops(&ops, -1, &s), 0);
	assert_int_equal(symbolizer_note_process(s, 4242, 0), 0);
	print_message("%zu distinct files mapped: %lu asked for\n", mf.n, mf.opened);
	assert_int_equal(mf.opened, SYMBOLIZER_MAX_PROC_FILES);
	/* Within the limit: the file's mapping, a file offset. */
	assert_int_equal(symbolizer_user_ip(s, 4242, 0, 0x10000000ull + 0x20, false, &f), 0);
	assert_non_null(f.mapping);
	assert_int_equal(f.mapping->start, 0);
	assert_int_equal(f.address, 0x20);
	/* Past it: address + mapping. */
	assert_int_equal(symbolizer_user_ip(s, 4242, 0, last + 0x20, false, &f), 0);
	assert_non_null(f.mapping);
	assert_int_equal(f.mapping->start, last);
	assert_int_equal(f.address, last + 0x20);
	assert_null(f.function);
	symbolizer_free(s);
}

static void test_proc_files_cap(void **state)
{
	proc_files_cap(false);
	proc_files_cap(true); /* asked 8 at a time: the same bound */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_binary),
		cmocka_unit_test(test_parse_budget),
		cmocka_unit_test_teardown(test_parse_budget_flood, flood_teardown),
		cmocka_unit_test(test_dlopen_lib),
		cmocka_unit_test(test_libc),
		cmocka_unit_test(test_anon_and_reread),
		cmocka_unit_test(test_reread_keeps_files),
		cmocka_unit_test(test_files_at_once),
		cmocka_unit_test(test_files_with_maps),
		cmocka_unit_test(test_exec_before_read),
		cmocka_unit_test(test_futile_rereads),
		cmocka_unit_test(test_miss_before_read),
		cmocka_unit_test(test_unmapped_kept),
		cmocka_unit_test(test_vdso),
		cmocka_unit_test(test_child_exits),
		cmocka_unit_test(test_files_shared),
		cmocka_unit_test(test_bid_after_dlopen),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_kernel),
		cmocka_unit_test(test_kernel_modules),
		cmocka_unit_test(test_gc_and_forget),
		cmocka_unit_test(test_bid_spoof_mallory_first),
		cmocka_unit_test(test_bid_spoof_mallory_later),
		cmocka_unit_test(test_bid_spoof_victim_deferred),
		cmocka_unit_test(test_same_content_shared),
		cmocka_unit_test(test_cfi_shared),
		cmocka_unit_test(test_many_mappings),
		cmocka_unit_test(test_proc_files_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
