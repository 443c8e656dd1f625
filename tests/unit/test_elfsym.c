/*
 * test_elfsym.c - unit tests of the ELF symbol reader.
 *
 * The fixtures (tests/unit/fixtures, built into build/tests/fixtures) are a
 * shared library linked at a non-zero base (so file offsets and virtual
 * addresses differ), its stripped and build-id-less twins, and a PIE
 * program.  Expected values come from nm and readelf at build time, and
 * from the dynamic loader at run time, never from the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfsym.h"
#include "fixtures/fixtures.h"

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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
