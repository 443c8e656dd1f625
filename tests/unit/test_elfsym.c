/*
 * test_elfsym.c - unit tests of the ELF symbol reader.
 *
 * The fixtures (tests/unit/fixtures, built into build/tests/fixtures) are a
 * shared library linked at a non-zero base (so file offsets and virtual
 * addresses differ), its stripped and build-id-less twins, and a PIE
 * program.  Expected values come from nm and readelf at build time, and
 * from the dynamic loader at run time, never from the code under test.
 *
 * The hostile shapes (tables claiming a gigabyte, sparse files, headers
 * past the end or overlapping, a million symbols, strings out of range,
 * wrong entry sizes, extended-count tricks, a file changing under the
 * reader) are built by elfgen.h and then broken one field at a time.  Each
 * parse from memory ends exactly at an unmapped page (guard.h), and its
 * heap peak is measured through the sanitizer's allocation hooks and its
 * CPU time with the thread's clock: memory against ELFSYM_MAX_PEAK_MEM,
 * time against what the largest file the limits accept costs on this host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "elfgen.h"
#include "elfsym.h"
#include "fixtures/fixtures.h"
#include "guard.h"

#ifndef __SANITIZE_ADDRESS__
#error "test_elfsym measures the heap through AddressSanitizer's hooks: build with -fsanitize=address"
#endif

/* The sanitizer allocator's interface (sanitizer/allocator_interface.h,
 * which gcc does not install). */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
					      void (*free_hook)(const volatile void *));
size_t __sanitizer_get_allocated_size(const volatile void *p);

static _Atomic size_t heap_now, heap_peak;

static void on_malloc(const volatile void *p, size_t n)
{
	size_t now = atomic_fetch_add(&heap_now, n) + n;
	size_t peak = atomic_load(&heap_peak);

	while (now > peak && !atomic_compare_exchange_weak(&heap_peak, &peak, now))
		;
}

static void on_free(const volatile void *p)
{
	if (p)
		atomic_fetch_sub(&heap_now, __sanitizer_get_allocated_size(p));
}

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static struct elfsym *open_fixture(const char *name)
{
	char path[PATH_MAX];
	struct elfsym *e = NULL;
	int fd, r;

	if (!fixture_path(name, path, sizeof(path)))
		fail_msg("fixture %s not built (make build/tests/fixtures/%s)", name, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	r = elfsym_open_fd(fd, &e);
	if (r < 0)
		fail_msg("elfsym_open_fd(%s) = %d", name, r);
	/* The fd is not closed by elfsym. */
	assert_int_equal(fcntl(fd, F_GETFD), FD_CLOEXEC);
	close(fd);
	return e;
}

static uint8_t *read_fixture(const char *name, size_t *ret_len)
{
	char path[PATH_MAX];
	struct stat st;
	uint8_t *buf;
	int fd;

	assert_true(fixture_path(name, path, sizeof(path)));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*ret_len = (size_t)st.st_size;
	return buf;
}

static void check_build_id(const char *name)
{
	struct elfsym *e = open_fixture(name);
	char hex[256];
	uint8_t want[64];
	size_t want_len, len = 0;
	const uint8_t *bid;

	assert_true(fixture_build_id(name, hex, sizeof(hex)));
	want_len = fixture_unhex(hex, want, sizeof(want));
	assert_int_equal(want_len, 20);
	bid = elfsym_build_id(e, &len);
	assert_non_null(bid);
	assert_int_equal(len, want_len);
	assert_memory_equal(bid, want, len);
	elfsym_free(e);
}

static void test_build_id(void **state)
{
	struct elfsym *e;
	size_t len = 123;

	check_build_id("libvsym.so");
	check_build_id("vsym_prog");
	e = open_fixture("libvsym-nobid.so");
	assert_null(elfsym_build_id(e, &len));
	assert_int_equal(len, 123);
	elfsym_free(e);
}

static void test_file_size(void **state)
{
	char path[PATH_MAX];
	struct elfsym *e = open_fixture("libvsym.so");
	struct stat st;

	assert_true(fixture_path("libvsym.so", path, sizeof(path)));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(elfsym_file_size(e), (uint64_t)st.st_size);
	elfsym_free(e);
}

static void expect_symbol(const struct elfsym *e, const char *file, const char *sym)
{
	uint64_t addr, size, off = 99;
	const char *got;

	if (!fixture_nm(file, sym, &addr, &size))
		fail_msg("%s not in nm output of %s", sym, file);
	got = elfsym_lookup(e, addr, &off);
	if (!got || strcmp(got, sym) != 0)
		fail_msg("lookup(%#llx) = %s, want %s", (unsigned long long)addr, got ? got : "NULL", sym);
	assert_int_equal(off, 0);
	if (size > 1) {
		got = elfsym_lookup(e, addr + size - 1, &off);
		assert_non_null(got);
		assert_string_equal(got, sym);
		assert_int_equal(off, size - 1);
	}
}

static void test_lookup_known(void **state)
{
	struct elfsym *e = open_fixture("libvsym.so");
	uint64_t addr, size;
	const char *below;

	expect_symbol(e, "libvsym.so", "vsym_alpha");
	expect_symbol(e, "libvsym.so", "vsym_beta");
	expect_symbol(e, "libvsym.so", "vsym_gamma");
	expect_symbol(e, "libvsym.so", "vsym_last");
	/* Static: only in .symtab. */
	expect_symbol(e, "libvsym.so", "vsym_hidden_static");
	/* The IFUNC symbol shares its address with the (local) resolver: the
	 * global name wins. */
	expect_symbol(e, "libvsym.so", "vsym_ifunc");

	/* Functions are 64-byte aligned and short: past the end is a gap. */
	assert_true(fixture_nm("libvsym.so", "vsym_alpha", &addr, &size));
	assert_true(size > 0 && size < 64);
	assert_null(elfsym_lookup(e, addr + size, NULL));
	below = elfsym_lookup(e, addr - 1, NULL);
	assert_true(below == NULL || strcmp(below, "vsym_alpha") != 0);
	/* Nothing below the first function, nothing far above the last. */
	assert_null(elfsym_lookup(e, 0, NULL));
	assert_null(elfsym_lookup(e, UINT64_MAX, NULL));
	assert_true(elfsym_symbol_count(e) >= 8);
	elfsym_free(e);

	e = open_fixture("vsym_prog");
	expect_symbol(e, "vsym_prog", "vsym_prog_leaf");
	expect_symbol(e, "vsym_prog", "vsym_prog_work");
	expect_symbol(e, "vsym_prog", "main");
	elfsym_free(e);
}

static void test_zero_size_symbol(void **state)
{
	struct elfsym *e = open_fixture("libvsym.so");
	uint64_t addr, size, next, off;
	const char *got;

	assert_true(fixture_nm("libvsym.so", "vsym_nosize", &addr, &size));
	assert_int_equal(size, 0);
	assert_true(fixture_nm("libvsym.so", "vsym_ifunc_impl", &next, NULL));
	assert_true(next > addr + 8);
	got = elfsym_lookup(e, addr + 5, &off);
	assert_non_null(got);
	assert_string_equal(got, "vsym_nosize");
	assert_int_equal(off, 5);
	/* It extends up to, not into, the next symbol. */
	got = elfsym_lookup(e, next - 1, NULL);
	assert_non_null(got);
	assert_string_equal(got, "vsym_nosize");
	got = elfsym_lookup(e, next, NULL);
	assert_non_null(got);
	assert_string_equal(got, "vsym_ifunc_impl");
	elfsym_free(e);
}

static void test_stripped(void **state)
{
	struct elfsym *e = open_fixture("libvsym-stripped.so"), *full = open_fixture("libvsym.so");
	uint64_t addr;
	size_t a, b;

	/* Same code, same addresses: nm of the unstripped file applies. */
	expect_symbol(e, "libvsym.so", "vsym_alpha");
	expect_symbol(e, "libvsym.so", "vsym_gamma");
	expect_symbol(e, "libvsym.so", "vsym_ifunc");
	expect_symbol(e, "libvsym.so", "vsym_nosize");
	/* .symtab is gone, and with it the static function. */
	assert_true(fixture_nm("libvsym.so", "vsym_hidden_static", &addr, NULL));
	assert_null(elfsym_lookup(e, addr, NULL));
	assert_non_null(elfsym_build_id(e, &a));
	assert_non_null(elfsym_build_id(full, &b));
	assert_int_equal(a, b);
	assert_memory_equal(elfsym_build_id(e, NULL), elfsym_build_id(full, NULL), a);
	assert_true(elfsym_symbol_count(e) < elfsym_symbol_count(full));
	elfsym_free(e);
	elfsym_free(full);
}

/*
 * The loader maps the library; the runtime address of vsym_beta, turned
 * into a file offset through /proc/self/maps, must translate back to the
 * address nm reports.
 */
static void test_offset_to_vaddr_runtime(void **state)
{
	char path[PATH_MAX], mapped[PATH_MAX];
	struct elfsym *e = open_fixture("libvsym.so");
	uint64_t off, vaddr, want;
	void *h, *fn;

	assert_true(fixture_path("libvsym.so", path, sizeof(path)));
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(h);
	fn = dlsym(h, "vsym_beta");
	assert_non_null(fn);
	assert_true(fixture_runtime_offset(getpid(), (uintptr_t)fn, &off, mapped, sizeof(mapped)));
	assert_string_equal(mapped, path);
	assert_true(fixture_nm("libvsym.so", "vsym_beta", &want, NULL));
	/* The fixture is linked at 0x100000: offsets are not addresses. */
	assert_true(off != want);
	assert_int_equal(elfsym_offset_to_vaddr(e, off, &vaddr), 0);
	assert_int_equal(vaddr, want);
	assert_string_equal(elfsym_lookup(e, vaddr, NULL), "vsym_beta");
	dlclose(h);
	elfsym_free(e);
}

/* Compare with the program headers read by hand. */
static void test_offset_to_vaddr_segments(void **state)
{
	size_t len;
	uint8_t *img = read_fixture("libvsym.so", &len);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)(void *)img;
	struct elfsym *e = open_fixture("libvsym.so");
	uint64_t vaddr, covered_end = 0;
	int loads = 0;

	assert_true(len > sizeof(*eh) && eh->e_phoff + eh->e_phnum * sizeof(Elf64_Phdr) <= len);
	for (int i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, img + eh->e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_filesz == 0)
			continue;
		loads++;
		assert_int_equal(elfsym_offset_to_vaddr(e, ph.p_offset, &vaddr), 0);
		assert_int_equal(vaddr, ph.p_vaddr);
		assert_int_equal(elfsym_offset_to_vaddr(e, ph.p_offset + ph.p_filesz - 1, &vaddr), 0);
		assert_int_equal(vaddr, ph.p_vaddr + ph.p_filesz - 1);
		if (ph.p_offset + ph.p_filesz > covered_end)
			covered_end = ph.p_offset + ph.p_filesz;
	}
	assert_true(loads >= 2);
	/* Past the last segment's file bytes (section headers live there). */
	assert_int_equal(elfsym_offset_to_vaddr(e, covered_end, &vaddr), -ENOENT);
	assert_int_equal(elfsym_offset_to_vaddr(e, len + 100000, &vaddr), -ENOENT);
	elfsym_free(e);
	free(img);
}

static void exercise(struct elfsym *e)
{
	uint64_t vaddr;

	/* Whatever was parsed must be safe to query. */
	for (uint64_t a = 0; a < 0x110000; a += 0x1000) {
		(void)elfsym_lookup(e, a, NULL);
		(void)elfsym_lookup(e, a + 0x1140, NULL);
		(void)elfsym_offset_to_vaddr(e, a, &vaddr);
	}
	(void)elfsym_build_id(e, NULL);
}

static void test_corrupt(void **state)
{
	size_t len;
	uint8_t *img = read_fixture("libvsym.so", &len);
	uint8_t *copy = malloc(len);
	struct elfsym *e = NULL;
	Elf64_Ehdr eh;
	unsigned seed = 12345;
	int ok = 0, failed = 0;

	assert_non_null(copy);
	memcpy(&eh, img, sizeof(eh));

	/* Not ELF at all. */
	assert_int_equal(elfsym_open_mem("hello, world", 12, &e), -EINVAL);
	assert_int_equal(elfsym_open_mem("", 0, &e), -EINVAL);

	/* Truncated everywhere. */
	for (size_t cut = 0; cut < len; cut += 7) {
		int r = elfsym_open_mem(img, cut, &e);

		if (cut < sizeof(Elf64_Ehdr))
			assert_int_equal(r, -EINVAL);
		if (r == 0) {
			exercise(e);
			elfsym_free(e);
		}
	}

	/* Program headers past the end of the file. */
	memcpy(copy, img, len);
	((Elf64_Ehdr *)(void *)copy)->e_phoff = len + 4096;
	assert_int_equal(elfsym_open_mem(copy, len, &e), -EINVAL);

	/* Every section header's offset pointing past the end. */
	memcpy(copy, img, len);
	for (int i = 0; i < eh.e_shnum; i++) {
		Elf64_Shdr *sh = (Elf64_Shdr *)(void *)(copy + eh.e_shoff + (size_t)i * sizeof(*sh));

		if (sh->sh_type == SHT_SYMTAB)
			sh->sh_offset = len - 8;
	}
	assert_int_equal(elfsym_open_mem(copy, len, &e), -EINVAL);

	/* A relocatable object is not something a process maps. */
	memcpy(copy, img, len);
	((Elf64_Ehdr *)(void *)copy)->e_type = ET_REL;
	assert_int_equal(elfsym_open_mem(copy, len, &e), -EINVAL);

	/* Random damage, concentrated on the headers and the tables. */
	for (int iter = 0; iter < 4000; iter++) {
		int flips = 1 + (int)(rand_r(&seed) % 8), r;

		memcpy(copy, img, len);
		for (int k = 0; k < flips; k++) {
			size_t where;

			switch (rand_r(&seed) % 3) {
			case 0:
				where = rand_r(&seed) % 64 + 0;
				break;
			case 1:
				where = eh.e_shoff + rand_r(&seed) % ((size_t)eh.e_shnum * sizeof(Elf64_Shdr));
				break;
			default:
				where = rand_r(&seed) % len;
				break;
			}
			if (where < len)
				copy[where] = (uint8_t)rand_r(&seed);
		}
		r = elfsym_open_mem(copy, len, &e);
		if (r == 0) {
			exercise(e);
			elfsym_free(e);
			ok++;
		} else {
			assert_true(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
			failed++;
		}
	}
	/* The damage must actually have been noticed sometimes. */
	assert_true(failed > 100);
	assert_true(ok > 100);
	free(copy);
	free(img);
}

/* Through a file descriptor: a truncated file, a directory, a pipe. */
static void test_bad_fds(void **state)
{
	size_t len;
	uint8_t *img = read_fixture("libvsym.so", &len);
	struct elfsym *e = NULL;
	int fd = memfd_create("vigil-elfsym", MFD_CLOEXEC), p[2];
	uint64_t alpha;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, len / 3), (ssize_t)(len / 3));
	assert_true(elfsym_open_fd(fd, &e) < 0);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, img, len, 0), (ssize_t)len);
	assert_int_equal(elfsym_open_fd(fd, &e), 0);
	assert_true(fixture_nm("libvsym.so", "vsym_alpha", &alpha, NULL));
	assert_non_null(elfsym_lookup(e, alpha, NULL));
	assert_string_equal(elfsym_lookup(e, alpha, NULL), "vsym_alpha");
	elfsym_free(e);
	close(fd);

	fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(elfsym_open_fd(fd, &e), -EINVAL);
	close(fd);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(elfsym_open_fd(p[0], &e), -EINVAL);
	close(p[0]);
	close(p[1]);
	assert_int_equal(elfsym_open_fd(-1, &e), -EINVAL);
	elfsym_free(NULL);
	free(img);
}

/* ---- hostile files: what one parse costs ------------------------------ */

struct cost {
	int r;
	double ms;      /* CPU time of the parse */
	size_t peak;    /* heap peak above what was allocated before it */
	size_t nsyms, held;
	char first[64]; /* name at the first symbol's address, "" if none */
};

static void measure_done(struct cost *c, struct elfsym *e, size_t base, double t0, uint64_t probe)
{
	const char *name;

	c->ms = cpu_ms() - t0;
	c->peak = atomic_load(&heap_peak) - base;
	c->nsyms = elfsym_symbol_count(e);
	c->held = elfsym_mem_usage(e);
	name = elfsym_lookup(e, probe, NULL);
	snprintf(c->first, sizeof(c->first), "%s", name ? name : "");
	if (c->r == 0)
		exercise(e);
	elfsym_free(e);
	/* Whatever happened, nothing stays allocated. */
	assert_int_equal(atomic_load(&heap_now), base);
}

/* Parse img[0..len) placed to end at an unmapped page. */
static struct cost parse_mem(const void *img, size_t len)
{
	struct cost c = { 0 };
	struct elfsym *e = NULL;
	struct guarded g;
	size_t base;
	double t0;

	guard_copy(&g, img, len); /* mmap: not on the heap */
	base = atomic_load(&heap_now);
	atomic_store(&heap_peak, base);
	t0 = cpu_ms();
	c.r = elfsym_open_mem(g.data, len, &e);
	measure_done(&c, e, base, t0, 0x1000);
	guard_free(&g);
	return c;
}

static struct cost parse_fd(int fd)
{
	struct cost c = { 0 };
	struct elfsym *e = NULL;
	size_t base = atomic_load(&heap_now);
	double t0;

	atomic_store(&heap_peak, base);
	t0 = cpu_ms();
	c.r = elfsym_open_fd(fd, &e);
	measure_done(&c, e, base, t0, 0x1000);
	return c;
}

static struct elfimg gen(size_t nsym, size_t name_len)
{
	struct elfgen g = { .nsym = nsym, .name_len = name_len };
	struct elfimg m;

	assert_true(elfgen_build(&g, &m));
	return m;
}

/*
 * The reference: the largest file the limits accept, every limit that
 * costs time or memory reached at once - ELFSYM_MAX_SYMBOLS symbols,
 * ELFSYM_MAX_NAMES bytes of names, a string table of ELFSYM_MAX_STRTAB.
 * Its CPU time on this host (best of three: the least disturbed by the
 * other work on the machine) is what no hostile file may exceed by much.
 */
static double ref_ms;
static struct cost ref_cost;

static struct elfimg gen_largest(void)
{
	size_t half = ELFSYM_MAX_SYMBOLS / 2, nl = ELFSYM_MAX_NAMES / ELFSYM_MAX_SYMBOLS - 1;
	struct elfgen g = { .nsym = half, .name_len = nl, .ndyn = half };
	struct elfimg m;

	g.dynstr_pad = ELFSYM_MAX_STRTAB - (1 + half * (nl + 1));
	assert_true(elfgen_build(&g, &m));
	assert_int_equal(m.dynstr_len, ELFSYM_MAX_STRTAB);
	return m;
}

static int setup_reference(void **state)
{
	struct elfimg m = gen_largest();

	for (int i = 0; i < 3; i++) {
		struct cost c = parse_mem(m.buf, m.len);

		if (c.r != 0)
			fail_msg("the largest acceptable file was refused: %d", c.r);
		if (i == 0 || c.ms < ref_ms)
			ref_ms = c.ms;
		ref_cost = c;
	}
	free(m.buf);
	print_message("reference: %zu symbols, %zu bytes held, heap peak %.1f MiB of %.1f MiB allowed, %.1f ms CPU\n",
		      ref_cost.nsyms, ref_cost.held, ref_cost.peak / 1048576.0,
		      ELFSYM_MAX_PEAK_MEM / 1048576.0, ref_ms);
	return 0;
}

/*
 * The bound a hostile parse must keep: heap within ELFSYM_MAX_PEAK_MEM,
 * and CPU time within twice the reference, plus 2 ms for what a parse of
 * nothing costs under the sanitizers.
 */
static void check_cost(const struct cost *c, const char *what)
{
	double limit = 2 * ref_ms + 2;

	print_message("%-44s rc %4d  %7zu syms  peak %9zu B  %7.2f ms\n", what, c->r, c->nsyms,
		      c->peak, c->ms);
	if (c->peak > ELFSYM_MAX_PEAK_MEM)
		fail_msg("%s: heap peak %zu > ELFSYM_MAX_PEAK_MEM %zu", what, c->peak,
			 (size_t)ELFSYM_MAX_PEAK_MEM);
	if (c->ms > limit)
		fail_msg("%s: %.1f ms CPU > %.1f ms (twice the largest acceptable file)", what, c->ms,
			 limit);
}

static void expect_refused(const struct elfimg *m, int want, const char *what)
{
	struct cost c = parse_mem(m->buf, m->len);

	check_cost(&c, what);
	if (c.r != want)
		fail_msg("%s: rc %d, want %d", what, c.r, want);
}

static void expect_parsed(const struct elfimg *m, size_t nsyms, const char *what)
{
	struct cost c = parse_mem(m->buf, m->len);

	check_cost(&c, what);
	if (c.r != 0)
		fail_msg("%s: rc %d, want 0", what, c.r);
	assert_int_equal(c.nsyms, nsyms);
	assert_string_equal(c.first, "s0000000");
}

static void test_largest_accepted(void **state)
{
	char name[64];

	/* Held: 16 bytes a symbol and the names, as elfsym.h says. */
	assert_int_equal(ref_cost.nsyms, ELFSYM_MAX_SYMBOLS);
	assert_true(ref_cost.held <= 16 * (size_t)ELFSYM_MAX_SYMBOLS + ELFSYM_MAX_NAMES + 4096);
	assert_true(ref_cost.peak <= ELFSYM_MAX_PEAK_MEM);
	elfgen_name(name, ELFSYM_MAX_NAMES / ELFSYM_MAX_SYMBOLS - 1, 's', 0);
	assert_string_equal(ref_cost.first, name);

	/* One step past each limit is refused. */
	{
		struct elfgen g = { .nsym = ELFSYM_MAX_SYMBOLS / 2 + 1, .name_len = 8,
				    .ndyn = ELFSYM_MAX_SYMBOLS / 2, .dynstr_pad = 0 };
		struct elfimg over;

		assert_true(elfgen_build(&g, &over));
		expect_refused(&over, -E2BIG, "ELFSYM_MAX_SYMBOLS + 1 symbols");
		free(over.buf);
	}
	{
		/* Names: 4096 of 4095 bytes fill ELFSYM_MAX_NAMES; one more is too many. */
		struct elfgen g = { .nsym = ELFSYM_MAX_NAMES / 4096, .name_len = 4095, .one_name = true };
		struct elfimg ok, over;
		struct cost c;

		assert_true(elfgen_build(&g, &ok));
		c = parse_mem(ok.buf, ok.len);
		check_cost(&c, "ELFSYM_MAX_NAMES bytes of names");
		assert_int_equal(c.r, 0);
		assert_int_equal(c.nsyms, ELFSYM_MAX_NAMES / 4096);
		g.nsym++;
		assert_true(elfgen_build(&g, &over));
		expect_refused(&over, -E2BIG, "ELFSYM_MAX_NAMES + 4096 bytes of names");
		free(ok.buf);
		free(over.buf);
	}
	{
		/* A string table one byte over ELFSYM_MAX_STRTAB. */
		struct elfgen g = { .nsym = 10, .ndyn = 10 };
		struct elfimg over;

		g.dynstr_pad = ELFSYM_MAX_STRTAB + 1 - (1 + 10 * 9);
		assert_true(elfgen_build(&g, &over));
		assert_int_equal(over.dynstr_len, ELFSYM_MAX_STRTAB + 1);
		expect_refused(&over, -E2BIG, "string table of ELFSYM_MAX_STRTAB + 1");
		free(over.buf);
	}
}

/* Both classes and byte orders parse to the same symbols. */
static void test_classes(void **state)
{
	for (int k = 0; k < 4; k++) {
		struct elfgen g = { .is32 = k & 1, .msb = k & 2, .nsym = 100, .ndyn = 20 };
		struct elfimg m;
		struct elfsym *e = NULL;
		const uint8_t *bid;
		size_t len;
		char name[16];

		assert_true(elfgen_build(&g, &m));
		assert_int_equal(elfsym_open_mem(m.buf, m.len, &e), 0);
		assert_int_equal(elfsym_symbol_count(e), 120);
		for (size_t i = 0; i < 120; i++) {
			elfgen_name(name, 8, i < 100 ? 's' : 'd', i < 100 ? i : i - 100);
			assert_string_equal(elfsym_lookup(e, m.base + 16 * i + 7, NULL), name);
		}
		bid = elfsym_build_id(e, &len);
		assert_non_null(bid);
		assert_int_equal(len, 20);
		assert_int_equal(bid[19], 0xa0 + 19);
		elfsym_free(e);
		free(m.buf);
	}
}

/*
 * A table claiming a gigabyte of a sparse file: refused before a byte of
 * it is read.  The tables move past the section headers, into the hole,
 * so that nothing overlaps and only the size is wrong.
 */
static void test_sparse_gigabyte(void **state)
{
	const uint64_t giga = 1ull << 30;
	struct elfimg m = gen(10, 8);
	size_t sym = elfgen_sh(&m, ELFGEN_SYMTAB), str = elfgen_sh(&m, ELFGEN_STRTAB);
	size_t hole = (m.len + 4095) & ~(size_t)4095;
	int fd = memfd_create("vigil-sparse", MFD_CLOEXEC);
	struct stat st;
	struct cost c;
	char name[16];

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(hole + giga)), 0);

	/* .symtab claims a gigabyte (the file really is that big). */
	ELFGEN_SET(&m, sym, Shdr, sh_offset, hole);
	ELFGEN_SET(&m, sym, Shdr, sh_size, giga / m.symentsize * m.symentsize);
	assert_int_equal(pwrite(fd, m.buf, m.len, 0), (ssize_t)m.len);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_blocks * 512 < 1 << 20); /* sparse indeed */
	c = parse_fd(fd);
	check_cost(&c, "sparse: .symtab claims 1 GiB");
	assert_int_equal(c.r, -E2BIG);
	assert_true(c.peak < 2 * ELFSYM_CHUNK);

	/* .strtab claims a gigabyte. */
	ELFGEN_SET(&m, sym, Shdr, sh_offset, m.symtab_off);
	ELFGEN_SET(&m, sym, Shdr, sh_size, m.symtab_len);
	ELFGEN_SET(&m, str, Shdr, sh_offset, hole);
	ELFGEN_SET(&m, str, Shdr, sh_size, giga);
	assert_int_equal(pwrite(fd, m.buf, m.len, 0), (ssize_t)m.len);
	c = parse_fd(fd);
	check_cost(&c, "sparse: .strtab claims 1 GiB");
	assert_int_equal(c.r, -E2BIG);
	assert_true(c.peak < 2 * ELFSYM_CHUNK);

	/* .strtab of ELFSYM_MAX_STRTAB, its names then the hole (zeros, NUL
	 * at the end): read, bounded, and the names in it are right. */
	ELFGEN_SET(&m, str, Shdr, sh_size, ELFSYM_MAX_STRTAB);
	assert_int_equal(pwrite(fd, m.buf, m.len, 0), (ssize_t)m.len);
	assert_int_equal(pwrite(fd, m.buf + m.strtab_off, m.strtab_len, (off_t)hole),
			 (ssize_t)m.strtab_len);
	c = parse_fd(fd);
	check_cost(&c, "sparse: .strtab of ELFSYM_MAX_STRTAB, mostly hole");
	assert_int_equal(c.r, 0);
	assert_int_equal(c.nsyms, 10);
	elfgen_name(name, 8, 's', 0);
	assert_string_equal(c.first, name);
	close(fd);
	free(m.buf);
}

static void set_and_refuse(struct elfimg *m, size_t off, size_t size, uint64_t v, int want,
			   const char *what)
{
	uint64_t old = elfgen_get(m, off, size);

	elfgen_put(m, off, size, v);
	expect_refused(m, want, what);
	elfgen_put(m, off, size, old);
	expect_parsed(m, 10, "(restored)");
}

static void test_past_the_end(void **state)
{
	struct elfimg m = gen(10, 8);
	size_t sym = elfgen_sh(&m, ELFGEN_SYMTAB), str = elfgen_sh(&m, ELFGEN_STRTAB);
	size_t s;

	expect_parsed(&m, 10, "valid");
	set_and_refuse(&m, offsetof(Elf64_Ehdr, e_shoff), 8, m.len, -EINVAL,
		       "section headers at the end");
	set_and_refuse(&m, offsetof(Elf64_Ehdr, e_shoff), 8, UINT64_MAX - 16, -EINVAL,
		       "section headers at 2^64 - 16");
	set_and_refuse(&m, offsetof(Elf64_Ehdr, e_shnum), 2, 1000, -EINVAL,
		       "1000 section headers past the end");
	set_and_refuse(&m, offsetof(Elf64_Ehdr, e_phoff), 8, m.len - 8, -EINVAL,
		       "program headers past the end");
	set_and_refuse(&m, offsetof(Elf64_Ehdr, e_phoff), 8, UINT64_MAX - 8, -EINVAL,
		       "program headers at 2^64 - 8");
	s = sym + offsetof(Elf64_Shdr, sh_offset);
	set_and_refuse(&m, s, 8, m.len - 8, -EINVAL, ".symtab past the end");
	set_and_refuse(&m, s, 8, UINT64_MAX - 16, -EINVAL, ".symtab at 2^64 - 16");
	s = sym + offsetof(Elf64_Shdr, sh_size);
	set_and_refuse(&m, s, 8, UINT64_MAX / 24 * 24, -EINVAL, ".symtab of 2^64 bytes");
	s = str + offsetof(Elf64_Shdr, sh_offset);
	set_and_refuse(&m, s, 8, m.len - 1, -EINVAL, ".strtab past the end");
	set_and_refuse(&m, s, 8, UINT64_MAX, -EINVAL, ".strtab at 2^64 - 1");
	s = m.phoff + offsetof(Elf64_Phdr, p_filesz);
	set_and_refuse(&m, s, 8, m.len + 1, -EINVAL, "PT_LOAD past the end");
	s = m.phoff + offsetof(Elf64_Phdr, p_vaddr);
	set_and_refuse(&m, s, 8, UINT64_MAX - 4, -EINVAL, "PT_LOAD wrapping around 2^64");
	free(m.buf);
}

static void test_overlaps(void **state)
{
	struct elfimg m = gen(10, 8);
	size_t sym = elfgen_sh(&m, ELFGEN_SYMTAB), str = elfgen_sh(&m, ELFGEN_STRTAB);
	struct elfimg two;

	set_and_refuse(&m, str + offsetof(Elf64_Shdr, sh_offset), 8, m.symtab_off + 24, -EINVAL,
		       ".strtab inside .symtab");
	set_and_refuse(&m, sym + offsetof(Elf64_Shdr, sh_offset), 8, m.shoff, -EINVAL,
		       ".symtab over the section headers");
	set_and_refuse(&m, str + offsetof(Elf64_Shdr, sh_offset), 8, m.shoff + 64, -EINVAL,
		       ".strtab over the section headers");
	set_and_refuse(&m, str + offsetof(Elf64_Shdr, sh_offset), 8, 0, -EINVAL,
		       ".strtab over the ELF header");
	set_and_refuse(&m, sym + offsetof(Elf64_Shdr, sh_offset), 8, 16, -EINVAL,
		       ".symtab over the ELF header");

	/* Two .symtab sections over the same bytes: the first is read once. */
	two = gen(10, 8);
	ELFGEN_SET(&two, elfgen_sh(&two, ELFGEN_DYNSYM), Shdr, sh_type, SHT_SYMTAB);
	ELFGEN_SET(&two, elfgen_sh(&two, ELFGEN_DYNSYM), Shdr, sh_offset, two.symtab_off);
	ELFGEN_SET(&two, elfgen_sh(&two, ELFGEN_DYNSYM), Shdr, sh_size, two.symtab_len);
	ELFGEN_SET(&two, elfgen_sh(&two, ELFGEN_DYNSYM), Shdr, sh_link, ELFGEN_STRTAB);
	ELFGEN_SET(&two, elfgen_sh(&two, ELFGEN_DYNSYM), Shdr, sh_entsize, 24);
	expect_parsed(&two, 10, "two .symtab over the same bytes");
	free(two.buf);
	free(m.buf);
}

static void test_strings(void **state)
{
	struct elfimg m = gen(10, 8), big;
	size_t sym = elfgen_sh(&m, ELFGEN_SYMTAB);
	size_t st1 = m.symtab_off + m.symentsize; /* symbol 1 */
	struct elfsym *e = NULL;
	const char *name;

	set_and_refuse(&m, st1 + offsetof(Elf64_Sym, st_name), 4, m.strtab_len, -EINVAL,
		       "st_name = size of .strtab");
	set_and_refuse(&m, st1 + offsetof(Elf64_Sym, st_name), 4, UINT32_MAX, -EINVAL,
		       "st_name = 2^32 - 1");
	set_and_refuse(&m, m.strtab_off + m.strtab_len - 1, 1, 'x', -EINVAL,
		       ".strtab not ending in NUL");
	set_and_refuse(&m, sym + offsetof(Elf64_Shdr, sh_link), 4, 0, -EINVAL, "sh_link 0");
	set_and_refuse(&m, sym + offsetof(Elf64_Shdr, sh_link), 4, ELFGEN_SYMTAB, -EINVAL,
		       "sh_link to itself");
	set_and_refuse(&m, sym + offsetof(Elf64_Shdr, sh_link), 4, m.shnum, -EINVAL,
		       "sh_link = e_shnum");
	set_and_refuse(&m, sym + offsetof(Elf64_Shdr, sh_link), 4, UINT32_MAX, -EINVAL,
		       "sh_link = 2^32 - 1");
	set_and_refuse(&m, sym + offsetof(Elf64_Shdr, sh_link), 4, ELFGEN_NOTE, -EINVAL,
		       "sh_link to a note");
	set_and_refuse(&m, sym + offsetof(Elf64_Shdr, sh_type) + m.shentsize, 4, SHT_PROGBITS,
		       -EINVAL, ".strtab of type PROGBITS");
	free(m.buf);

	/* A name longer than ELFSYM_MAX_NAME_LEN is cut, not refused. */
	big = gen(2, ELFSYM_MAX_NAME_LEN + 1000);
	assert_int_equal(elfsym_open_mem(big.buf, big.len, &e), 0);
	name = elfsym_lookup(e, big.base, NULL);
	assert_non_null(name);
	assert_int_equal(strlen(name), ELFSYM_MAX_NAME_LEN);
	assert_int_equal(name[0], 's');
	elfsym_free(e);
	free(big.buf);
}

static void test_entsize(void **state)
{
	struct elfimg m = gen(10, 8);
	size_t es = elfgen_sh(&m, ELFGEN_SYMTAB) + offsetof(Elf64_Shdr, sh_entsize);
	size_t sz = elfgen_sh(&m, ELFGEN_SYMTAB) + offsetof(Elf64_Shdr, sh_size);
	const uint64_t bad[] = { 0, 1, 23, 25, 48, 1ull << 40, UINT64_MAX };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		set_and_refuse(&m, es, 8, bad[i], -EINVAL, ".symtab sh_entsize not 24");
	set_and_refuse(&m, sz, 8, m.symtab_len - 1, -EINVAL, ".symtab size not a multiple");
	set_and_refuse(&m, offsetof(Elf64_Ehdr, e_shentsize), 2, 0, -EINVAL, "e_shentsize 0");
	set_and_refuse(&m, offsetof(Elf64_Ehdr, e_shentsize), 2, 65535, -EINVAL,
		       "e_shentsize 65535");
	set_and_refuse(&m, offsetof(Elf64_Ehdr, e_phentsize), 2, 32, -EINVAL,
		       "e_phentsize of ELF32 in ELF64");
	free(m.buf);
}

static void test_counts(void **state)
{
	struct elfimg m = gen(10, 8);
	size_t sh0 = elfgen_sh(&m, 0);
	size_t shnum = offsetof(Elf64_Ehdr, e_shnum), phnum = offsetof(Elf64_Ehdr, e_phnum);

	/* Extended numbering, as the gABI defines it, is honoured... */
	elfgen_put(&m, shnum, 2, 0);
	ELFGEN_SET(&m, sh0, Shdr, sh_size, m.shnum);
	expect_parsed(&m, 10, "e_shnum 0, count in section 0");
	elfgen_put(&m, phnum, 2, PN_XNUM);
	ELFGEN_SET(&m, sh0, Shdr, sh_info, 2);
	expect_parsed(&m, 10, "e_phnum PN_XNUM, count in section 0");
	/* ...and bounded. */
	set_and_refuse(&m, sh0 + offsetof(Elf64_Shdr, sh_size), 8, 1ull << 32, -E2BIG,
		       "2^32 sections");
	set_and_refuse(&m, sh0 + offsetof(Elf64_Shdr, sh_size), 8, ELFSYM_MAX_SECTIONS + 1,
		       -E2BIG, "ELFSYM_MAX_SECTIONS + 1 sections");
	set_and_refuse(&m, sh0 + offsetof(Elf64_Shdr, sh_info), 4, UINT32_MAX, -E2BIG,
		       "2^32 - 1 program headers");
	set_and_refuse(&m, sh0 + offsetof(Elf64_Shdr, sh_info), 4, ELFSYM_MAX_PHDRS + 1, -E2BIG,
		       "ELFSYM_MAX_PHDRS + 1 program headers");
	set_and_refuse(&m, offsetof(Elf64_Ehdr, e_shoff), 8, 0, -EINVAL,
		       "PN_XNUM without section headers");
	elfgen_put(&m, shnum, 2, m.shnum);
	elfgen_put(&m, phnum, 2, 2);
	/* Sections counted but no table: the header is not read as one. */
	set_and_refuse(&m, offsetof(Elf64_Ehdr, e_shoff), 8, 0, -EINVAL, "e_shnum 6 and e_shoff 0");

	/* Section names are never used: whatever e_shstrndx says is harmless. */
	elfgen_put(&m, offsetof(Elf64_Ehdr, e_shstrndx), 2, SHN_XINDEX);
	ELFGEN_SET(&m, sh0, Shdr, sh_link, UINT32_MAX);
	expect_parsed(&m, 10, "e_shstrndx SHN_XINDEX, garbage in section 0");
	elfgen_put(&m, offsetof(Elf64_Ehdr, e_shstrndx), 2, 60000);
	expect_parsed(&m, 10, "e_shstrndx 60000");
	set_and_refuse(&m, phnum, 2, ELFSYM_MAX_PHDRS + 1, -E2BIG, "e_phnum ELFSYM_MAX_PHDRS + 1");
	free(m.buf);
}

/* Rebuild m's program headers as n copies of its PT_LOAD, at the end. */
static void many_loads(struct elfimg *m, size_t n)
{
	size_t at = (m->len + 7) & ~(size_t)7, len = at + n * m->phentsize;
	uint8_t *b = calloc(1, len);

	assert_non_null(b);
	memcpy(b, m->buf, m->len);
	for (size_t i = 0; i < n; i++)
		memcpy(b + at + i * m->phentsize, m->buf + m->phoff, m->phentsize);
	free(m->buf);
	m->buf = b;
	m->len = len;
	m->phoff = at;
	elfgen_put(m, offsetof(Elf64_Ehdr, e_phoff), 8, at);
	elfgen_put(m, offsetof(Elf64_Ehdr, e_phnum), 2, n);
	for (size_t i = 0; i < n; i++) /* filesz within the grown file still */
		ELFGEN_SET(m, at + i * m->phentsize, Phdr, p_filesz, 64);
}

static void test_segments_and_sections(void **state)
{
	struct elfimg m = gen(10, 8);
	size_t at, n = ELFSYM_MAX_SECTIONS, len;
	uint8_t *b;

	many_loads(&m, ELFSYM_MAX_LOADS);
	expect_parsed(&m, 10, "ELFSYM_MAX_LOADS PT_LOAD");
	free(m.buf);
	m = gen(10, 8);
	many_loads(&m, ELFSYM_MAX_LOADS + 1);
	expect_refused(&m, -E2BIG, "ELFSYM_MAX_LOADS + 1 PT_LOAD");
	free(m.buf);

	/* ELFSYM_MAX_SECTIONS section headers, every one a .symtab over the
	 * same table, or a note: one table and ELFSYM_MAX_NOTES notes read. */
	m = gen(10, 8);
	at = (m.len + 7) & ~(size_t)7;
	len = at + n * m.shentsize;
	b = calloc(1, len);
	assert_non_null(b);
	memcpy(b, m.buf, m.len);
	for (size_t i = 1; i < n; i++)
		memcpy(b + at + i * m.shentsize, m.buf + elfgen_sh(&m, i % 2 ? ELFGEN_SYMTAB : ELFGEN_NOTE),
		       m.shentsize);
	/* Section 2 stays the string table. */
	memcpy(b + at + 2 * m.shentsize, m.buf + elfgen_sh(&m, ELFGEN_STRTAB), m.shentsize);
	free(m.buf);
	m.buf = b;
	m.len = len;
	m.shoff = at;
	elfgen_put(&m, offsetof(Elf64_Ehdr, e_shoff), 8, at);
	elfgen_put(&m, offsetof(Elf64_Ehdr, e_shnum), 2, 0);
	ELFGEN_SET(&m, at, Shdr, sh_size, n);
	/* The notes carry no build-id, so that every one is looked at. */
	elfgen_put(&m, m.note_off + 8, 4, 12345);
	expect_parsed(&m, 10, "65536 sections: symbol tables and notes");
	free(m.buf);
}

static void test_notes(void **state)
{
	struct elfimg m = gen(10, 8);
	struct elfsym *e = NULL;
	size_t len;

	/* Sizes that run past the note, or wrap: no build-id, symbols still. */
	const uint32_t bad[] = { 21, 4096, UINT32_MAX - 2, UINT32_MAX };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int field = 0; field < 2; field++) {
			elfgen_put(&m, m.note_off + 4 * field, 4, bad[i]);
			assert_int_equal(elfsym_open_mem(m.buf, m.len, &e), 0);
			assert_null(elfsym_build_id(e, &len));
			assert_int_equal(elfsym_symbol_count(e), 10);
			elfsym_free(e);
			elfgen_put(&m, m.note_off + 4 * field, 4, field ? 20 : 4);
		}
	}
	free(m.buf);
}

/* A writer rewrites and truncates the file while it is being parsed. */
struct flipper {
	int fd;
	const struct elfimg *m;
	atomic_bool stop;
};

static void *flip(void *arg)
{
	struct flipper *f = arg;
	unsigned seed = 7;

	while (!atomic_load(&f->stop)) {
		size_t cut = rand_r(&seed) % f->m->len;

		if (ftruncate(f->fd, (off_t)cut) < 0 ||
		    pwrite(f->fd, f->m->buf, f->m->len, 0) != (ssize_t)f->m->len)
			break;
		/* Damage a random byte, then repair it. */
		cut = rand_r(&seed) % f->m->len;
		if (pwrite(f->fd, "\xff", 1, (off_t)cut) != 1 ||
		    pwrite(f->fd, f->m->buf + cut, 1, (off_t)cut) != 1)
			break;
		usleep(rand_r(&seed) % 200); /* sometimes whole for a while */
	}
	return NULL;
}

static void test_changing_file(void **state)
{
	struct elfimg m = gen(2000, 12);
	struct flipper f = { .m = &m };
	int counts[4] = { 0 }; /* ok, -ESTALE, -EINVAL, other refusals */
	pthread_t t;

	f.fd = memfd_create("vigil-flip", MFD_CLOEXEC);
	assert_true(f.fd >= 0);
	assert_int_equal(pwrite(f.fd, m.buf, m.len, 0), (ssize_t)m.len);
	assert_int_equal(pthread_create(&t, NULL, flip, &f), 0);
	for (int i = 0; i < 400; i++) {
		struct elfsym *e = NULL;
		int r = elfsym_open_fd(f.fd, &e);

		if (r == 0) {
			/* Whatever was read, it is safe to use and within bounds. */
			assert_true(elfsym_symbol_count(e) <= 2000);
			exercise(e);
			elfsym_free(e);
			counts[0]++;
		} else {
			assert_true(r == -ESTALE || r == -EINVAL || r == -E2BIG);
			counts[r == -ESTALE ? 1 : r == -EINVAL ? 2 : 3]++;
		}
	}
	atomic_store(&f.stop, true);
	pthread_join(t, NULL);
	print_message("changing file: %d parsed, %d stale, %d invalid, %d too big\n", counts[0],
		      counts[1], counts[2], counts[3]);
	/* The writer really did change it under the reader. */
	assert_true(counts[1] + counts[2] > 0);
	close(f.fd);
	free(m.buf);
}

/* A million function symbols: refused at ELFSYM_MAX_SYMBOLS, bounded. */
static void test_million_symbols(void **state)
{
	struct elfimg m = gen(1000000, 8);
	struct elfgen g = { .nsym = 1000000, .one_name = true };
	struct elfimg one;

	expect_refused(&m, -E2BIG, "a million symbols");
	free(m.buf);
	assert_true(elfgen_build(&g, &one));
	expect_refused(&one, -E2BIG, "a million symbols, one name");
	free(one.buf);
}

/* The fixtures and every prefix of one, from guarded memory. */
static void test_guarded_prefixes(void **state)
{
	size_t len;
	uint8_t *img = read_fixture("libvsym.so", &len);
	struct cost c = parse_mem(img, len);

	assert_int_equal(c.r, 0);
	for (size_t cut = 0; cut < len; cut += cut < 4096 ? 1 : 61) {
		c = parse_mem(img, cut);
		assert_true(c.r == 0 || c.r == -EINVAL || c.r == -E2BIG);
	}
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_id),
		cmocka_unit_test(test_file_size),
		cmocka_unit_test(test_lookup_known),
		cmocka_unit_test(test_zero_size_symbol),
		cmocka_unit_test(test_stripped),
		cmocka_unit_test(test_offset_to_vaddr_runtime),
		cmocka_unit_test(test_offset_to_vaddr_segments),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_bad_fds),
		cmocka_unit_test(test_largest_accepted),
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_sparse_gigabyte),
		cmocka_unit_test(test_past_the_end),
		cmocka_unit_test(test_overlaps),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_entsize),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_segments_and_sections),
		cmocka_unit_test(test_notes),
		cmocka_unit_test(test_changing_file),
		cmocka_unit_test(test_million_symbols),
		cmocka_unit_test(test_guarded_prefixes),
	};

	__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
	return cmocka_run_group_tests(tests, setup_reference, NULL);
}
