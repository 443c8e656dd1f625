/*
 * elfpatch.c - make hostile copies of an executable for the integration
 * test of the ELF reader (tests/integration/hostile_elf.sh), and ask the
 * reader about them.
 *
 *   elfpatch limits               the reader's limits, as shell assignments
 *   elfpatch SHAPE IN OUT         copy the ELF64 little-endian file IN to OUT,
 *                                 breaking its section headers as SHAPE says
 *   elfpatch check FILE           elfsym_open_fd() on FILE: "rc symbols
 *                                 cpu_ms" (rc 0 or -errno)
 *
 * Only section headers and what they point to change: the kernel and the
 * dynamic loader run a program from its program headers, so every copy
 * still executes exactly like IN.  Shapes (written from the System V ABI's
 * "Object Files" chapter, independently of daemon/elfsym.c):
 *
 *   symtab-1g   .symtab moved past the end and claiming 1 GiB of a sparse file
 *   strtab-1g   .strtab moved past the end and claiming 1 GiB of a sparse file
 *   overlap     .strtab is the bytes of .symtab
 *   past-end    .symtab at offset 2^63
 *   shnum       e_shnum 0 with section 0 claiming 2^32 sections,
 *               e_shstrndx SHN_XINDEX with section 0 pointing nowhere
 *   strings     every .symtab name offset out of .strtab
 *   entsize     .symtab entry size 0
 *   million     a new .symtab of 1,000,000 function symbols named m0000000...
 *               all over the code, with their .strtab, appended
 *
 * Exit status: 0; 64 usage; 65 IN is not what this tool can patch; 70 I/O.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "elfsym.h"
#include "symbolizer.h"

#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_IOERR 70

static uint8_t *img;
static size_t img_len;

static void die(int code, const char *what)
{
	fprintf(stderr, "elfpatch: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
	exit(code);
}

static void load(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0)
		die(EX_IOERR, path);
	img_len = (size_t)st.st_size;
	img = malloc(img_len);
	if (!img || pread(fd, img, img_len, 0) != (ssize_t)img_len)
		die(EX_IOERR, path);
	close(fd);
	errno = 0;
	if (img_len < sizeof(Elf64_Ehdr) || memcmp(img, ELFMAG, SELFMAG) != 0 ||
	    img[EI_CLASS] != ELFCLASS64 || img[EI_DATA] != ELFDATA2LSB)
		die(EX_DATAERR, "not an ELF64 little-endian file");
}

static Elf64_Ehdr *ehdr(void)
{
	return (Elf64_Ehdr *)(void *)img;
}

static Elf64_Shdr *shdr(size_t i)
{
	Elf64_Ehdr *eh = ehdr();

	errno = 0;
	if (eh->e_shoff > img_len || i >= eh->e_shnum ||
	    (img_len - eh->e_shoff) / sizeof(Elf64_Shdr) <= i)
		die(EX_DATAERR, "section headers out of the file");
	return (Elf64_Shdr *)(void *)(img + eh->e_shoff + i * sizeof(Elf64_Shdr));
}

static size_t find_section(uint32_t type)
{
	for (size_t i = 1; i < ehdr()->e_shnum; i++)
		if (shdr(i)->sh_type == type)
			return i;
	errno = 0;
	die(EX_DATAERR, "no .symtab: patch an unstripped file");
	return 0;
}

/* Write img, then grow the file (sparse) to total bytes if larger. */
static void save(const char *path, const void *extra, size_t extra_len, uint64_t total)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

	if (fd < 0 || pwrite(fd, img, img_len, 0) != (ssize_t)img_len ||
	    (extra_len && pwrite(fd, extra, extra_len, (off_t)img_len) != (ssize_t)extra_len) ||
	    (total > img_len + extra_len && ftruncate(fd, (off_t)total) < 0) || close(fd) < 0)
		die(EX_IOERR, path);
}

/* The lowest and highest address of executable code (PT_LOAD with PF_X). */
static void code_range(uint64_t *lo, uint64_t *hi)
{
	Elf64_Ehdr *eh = ehdr();

	*lo = UINT64_MAX;
	*hi = 0;
	for (size_t i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, img + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) {
			if (ph.p_vaddr < *lo)
				*lo = ph.p_vaddr;
			if (ph.p_vaddr + ph.p_memsz > *hi)
				*hi = ph.p_vaddr + ph.p_memsz;
		}
	}
	errno = 0;
	if (*lo >= *hi)
		die(EX_DATAERR, "no executable segment");
}

static void million(const char *out, size_t symi)
{
	const size_t n = 1000000, namelen = 9; /* "m0000000" and its NUL */
	Elf64_Shdr *sym = shdr(symi), *str = shdr(sym->sh_link);
	size_t at = (img_len + 7) & ~(size_t)7, syms_len = (n + 1) * sizeof(Elf64_Sym);
	size_t str_len = 1 + n * namelen, len = at - img_len + syms_len + str_len;
	uint8_t *extra = calloc(1, len);
	uint64_t lo, hi;

	if (!extra)
		die(EX_IOERR, "out of memory");
	code_range(&lo, &hi);
	for (size_t i = 0; i < n; i++) {
		Elf64_Sym s = {
			.st_name = (uint32_t)(1 + i * namelen),
			.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
			.st_shndx = 1,
			.st_value = lo + (i * 16) % (hi - lo),
			.st_size = 16,
		};
		char name[16];

		memcpy(extra + (at - img_len) + (i + 1) * sizeof(s), &s, sizeof(s));
		snprintf(name, sizeof(name), "m%07zu", i);
		memcpy(extra + (at - img_len) + syms_len + 1 + i * namelen, name, namelen - 1);
	}
	sym->sh_offset = at;
	sym->sh_size = syms_len;
	str->sh_offset = at + syms_len;
	str->sh_size = str_len;
	save(out, extra, len, 0);
	free(extra);
}

static int patch(const char *shape, const char *in, const char *out)
{
	const uint64_t giga = 1ull << 30;
	size_t symi;
	Elf64_Shdr *sym, *str;
	uint64_t end;

	load(in);
	symi = find_section(SHT_SYMTAB);
	sym = shdr(symi);
	str = shdr(sym->sh_link);
	end = (img_len + 4095) & ~(uint64_t)4095;
	if (strcmp(shape, "symtab-1g") == 0) {
		sym->sh_offset = end;
		sym->sh_size = giga / sizeof(Elf64_Sym) * sizeof(Elf64_Sym);
		save(out, NULL, 0, end + giga);
	} else if (strcmp(shape, "strtab-1g") == 0) {
		str->sh_offset = end;
		str->sh_size = giga;
		save(out, NULL, 0, end + giga);
	} else if (strcmp(shape, "overlap") == 0) {
		str->sh_offset = sym->sh_offset;
		str->sh_size = sym->sh_size;
		save(out, NULL, 0, 0);
	} else if (strcmp(shape, "past-end") == 0) {
		sym->sh_offset = 1ull << 63;
		save(out, NULL, 0, 0);
	} else if (strcmp(shape, "shnum") == 0) {
		Elf64_Shdr *sh0 = shdr(0);

		sh0->sh_size = 1ull << 32;
		sh0->sh_link = UINT32_MAX;
		ehdr()->e_shnum = 0;
		ehdr()->e_shstrndx = SHN_XINDEX;
		save(out, NULL, 0, 0);
	} else if (strcmp(shape, "strings") == 0) {
		errno = 0;
		if (sym->sh_offset > img_len || sym->sh_size > img_len - sym->sh_offset)
			die(EX_DATAERR, ".symtab out of the file");
		for (size_t i = 1; i < sym->sh_size / sizeof(Elf64_Sym); i++) {
			Elf64_Sym *s = (Elf64_Sym *)(void *)(img + sym->sh_offset + i * sizeof(*s));

			s->st_name = (uint32_t)(str->sh_size + i);
		}
		save(out, NULL, 0, 0);
	} else if (strcmp(shape, "entsize") == 0) {
		sym->sh_entsize = 0;
		save(out, NULL, 0, 0);
	} else if (strcmp(shape, "million") == 0) {
		million(out, symi);
	} else {
		errno = 0;
		die(EX_USAGE, "unknown shape");
	}
	return 0;
}

static int check(const char *path)
{
	struct elfsym *e = NULL;
	struct timespec a, b;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		die(EX_IOERR, path);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	r = elfsym_open_fd(fd, &e);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	printf("%d %zu %.1f\n", r, elfsym_symbol_count(e),
	       (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
	elfsym_free(e);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "limits") == 0) {
		printf("ELFSYM_MAX_PEAK_MEM=%zu\nELFSYM_MAX_READ=%u\nELFSYM_MAX_SYMBOLS=%u\n"
		       "ELFSYM_MAX_NAMES=%u\nSYMBOLIZER_ELF_BUDGET=%u\n"
		       "SYMBOLIZER_PARSE_PERCENT=%u\nSYMBOLIZER_PARSE_BURST_MS=%u\n",
		       (size_t)ELFSYM_MAX_PEAK_MEM, ELFSYM_MAX_READ, ELFSYM_MAX_SYMBOLS,
		       ELFSYM_MAX_NAMES, SYMBOLIZER_ELF_BUDGET, SYMBOLIZER_PARSE_PERCENT,
		       SYMBOLIZER_PARSE_BURST_MS);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "check") == 0)
		return check(argv[2]);
	if (argc == 4)
		return patch(argv[1], argv[2], argv[3]);
	fprintf(stderr, "usage: elfpatch limits | check FILE | SHAPE IN OUT\n");
	return EX_USAGE;
}
