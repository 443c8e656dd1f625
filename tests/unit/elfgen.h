/*
 * elfgen.h - build small synthetic ELF images for the ELF reader's tests:
 * a valid ET_DYN file of either class and byte order, with as many
 * function symbols and names of whatever length a test asks for, laid out
 * so that a test can then break one thing (a section header, a count, a
 * string) and see the reader refuse it.
 *
 * Written from the System V ABI's "Object Files" chapter, independently of
 * daemon/elfsym.c, so that the two do not share a misreading.
 *
 * Layout: ELF header; program headers (PT_LOAD over the whole file, then
 * PT_NOTE); the build-id note; .symtab and .strtab; .dynsym and .dynstr
 * (if any); section headers [0] null, [1] .symtab, [2] .strtab,
 * [3] .dynsym, [4] .dynstr, [5] .note.gnu.build-id.
 *
 * Header-only; the image is malloc'ed and owned by the caller.
 */
#ifndef VIGIL_TEST_ELFGEN_H
#define VIGIL_TEST_ELFGEN_H

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct elfgen {
	bool is32, msb;
	size_t nsym;       /* function symbols in .symtab */
	size_t name_len;   /* length of each name, at least 8 */
	bool one_name;     /* every .symtab symbol points at the same name */
	size_t ndyn;       /* function symbols in .dynsym; 0: none */
	size_t dynstr_pad; /* extra NUL bytes at the end of .dynstr */
};

/* Where the pieces are, for tests to patch. */
struct elfimg {
	uint8_t *buf;
	size_t len;
	bool is32, msb;
	size_t ehsize, phoff, phentsize, shoff, shentsize, shnum, symentsize;
	size_t symtab_off, strtab_off, dynsym_off, dynstr_off, note_off;
	size_t symtab_len, strtab_len, dynsym_len, dynstr_len;
	uint64_t base;     /* address of symbol 0; symbol i is at base + 16 i */
};

#define ELFGEN_SYMTAB 1
#define ELFGEN_STRTAB 2
#define ELFGEN_DYNSYM 3
#define ELFGEN_DYNSTR 4
#define ELFGEN_NOTE   5

static inline void elfgen_put(const struct elfimg *m, size_t off, size_t size, uint64_t v)
{
	for (size_t i = 0; i < size; i++) {
		size_t shift = m->msb ? 8 * (size - 1 - i) : 8 * i;

		m->buf[off + i] = (uint8_t)(v >> shift);
	}
}

static inline uint64_t elfgen_get(const struct elfimg *m, size_t off, size_t size)
{
	uint64_t v = 0;

	for (size_t i = 0; i < size; i++) {
		size_t shift = m->msb ? 8 * (size - 1 - i) : 8 * i;

		v |= (uint64_t)m->buf[off + i] << shift;
	}
	return v;
}

/* ELFGEN_SET(m, off, Shdr, sh_size, v): a field of an Elf32_/Elf64_ struct at off. */
#define ELFGEN_SET(m, off, T, f, v)                                                      \
	do {                                                                             \
		size_t o_ = (m)->is32 ? offsetof(Elf32_##T, f) : offsetof(Elf64_##T, f);   \
		size_t s_ = (m)->is32 ? sizeof(((Elf32_##T *)0)->f)                        \
				      : sizeof(((Elf64_##T *)0)->f);                       \
		elfgen_put(m, (off) + o_, s_, (uint64_t)(v));                              \
	} while (0)
#define ELFGEN_GET(m, off, T, f)                                                         \
	elfgen_get(m, (off) + ((m)->is32 ? offsetof(Elf32_##T, f) : offsetof(Elf64_##T, f)), \
		   (m)->is32 ? sizeof(((Elf32_##T *)0)->f) : sizeof(((Elf64_##T *)0)->f))

/* Offset of section header i. */
static inline size_t elfgen_sh(const struct elfimg *m, size_t i)
{
	return m->shoff + i * m->shentsize;
}

static inline void elfgen_name(char *out, size_t len, char prefix, size_t i)
{
	/* prefix, then i in decimal, zero-padded to len characters */
	snprintf(out, len + 1, "%c%0*zu", prefix, (int)(len - 1), i);
}

static inline void elfgen_syms(struct elfimg *m, size_t off, size_t n, size_t first,
			       const size_t *name_offs, bool one_name)
{
	for (size_t i = 0; i < n; i++) {
		size_t e = off + (i + 1) * m->symentsize;

		ELFGEN_SET(m, e, Sym, st_name, one_name ? name_offs[0] : name_offs[i]);
		ELFGEN_SET(m, e, Sym, st_info, ELF64_ST_INFO(STB_GLOBAL, STT_FUNC));
		ELFGEN_SET(m, e, Sym, st_shndx, 9); /* some section: only "not undefined" matters */
		ELFGEN_SET(m, e, Sym, st_value, m->base + 16 * (first + i));
		ELFGEN_SET(m, e, Sym, st_size, 16);
	}
}

static inline void elfgen_shdr(struct elfimg *m, size_t i, uint32_t type, size_t off, size_t len,
			       uint32_t link, size_t entsize, size_t align)
{
	size_t sh = elfgen_sh(m, i);

	ELFGEN_SET(m, sh, Shdr, sh_type, type);
	ELFGEN_SET(m, sh, Shdr, sh_offset, off);
	ELFGEN_SET(m, sh, Shdr, sh_size, len);
	ELFGEN_SET(m, sh, Shdr, sh_link, link);
	ELFGEN_SET(m, sh, Shdr, sh_info, 1);
	ELFGEN_SET(m, sh, Shdr, sh_entsize, entsize);
	ELFGEN_SET(m, sh, Shdr, sh_addralign, align);
}

/* Fill *m with the image g describes; false if out of memory. */
static inline bool elfgen_build(const struct elfgen *g, struct elfimg *m)
{
	size_t name_len = g->name_len < 8 ? 8 : g->name_len;
	size_t nstr = g->one_name ? (g->nsym ? 1 : 0) : g->nsym;
	size_t *offs = calloc(g->nsym + g->ndyn + 1, sizeof(*offs));
	size_t off, phnum = 2, shnum = 6;
	char *name = malloc(name_len + 1);
	uint64_t memsz;

	if (!offs || !name) {
		free(offs);
		free(name);
		return false;
	}
	memset(m, 0, sizeof(*m));
	m->is32 = g->is32;
	m->msb = g->msb;
	m->ehsize = g->is32 ? sizeof(Elf32_Ehdr) : sizeof(Elf64_Ehdr);
	m->phentsize = g->is32 ? sizeof(Elf32_Phdr) : sizeof(Elf64_Phdr);
	m->shentsize = g->is32 ? sizeof(Elf32_Shdr) : sizeof(Elf64_Shdr);
	m->symentsize = g->is32 ? sizeof(Elf32_Sym) : sizeof(Elf64_Sym);
	m->shnum = shnum;
	m->base = 0x1000;

	off = m->phoff = m->ehsize;
	off += phnum * m->phentsize;
	m->note_off = off;
	off += 12 + 4 + 20;
	off = (off + 7) & ~(size_t)7;
	m->symtab_off = off;
	m->symtab_len = (g->nsym + 1) * m->symentsize;
	off += m->symtab_len;
	m->strtab_off = off;
	m->strtab_len = 1 + nstr * (name_len + 1);
	off += m->strtab_len;
	off = (off + 7) & ~(size_t)7;
	m->dynsym_off = off;
	m->dynsym_len = g->ndyn ? (g->ndyn + 1) * m->symentsize : 0;
	off += m->dynsym_len;
	m->dynstr_off = off;
	m->dynstr_len = g->ndyn ? 1 + g->ndyn * (name_len + 1) + g->dynstr_pad : 0;
	off += m->dynstr_len;
	off = (off + 7) & ~(size_t)7;
	m->shoff = off;
	off += shnum * m->shentsize;
	m->len = off;
	m->buf = calloc(1, m->len);
	if (!m->buf) {
		free(offs);
		free(name);
		return false;
	}

	memcpy(m->buf, ELFMAG, SELFMAG);
	m->buf[EI_CLASS] = g->is32 ? ELFCLASS32 : ELFCLASS64;
	m->buf[EI_DATA] = g->msb ? ELFDATA2MSB : ELFDATA2LSB;
	m->buf[EI_VERSION] = EV_CURRENT;
	ELFGEN_SET(m, 0, Ehdr, e_type, ET_DYN);
	ELFGEN_SET(m, 0, Ehdr, e_machine, g->is32 ? EM_386 : EM_X86_64);
	ELFGEN_SET(m, 0, Ehdr, e_version, EV_CURRENT);
	ELFGEN_SET(m, 0, Ehdr, e_phoff, m->phoff);
	ELFGEN_SET(m, 0, Ehdr, e_shoff, m->shoff);
	ELFGEN_SET(m, 0, Ehdr, e_ehsize, m->ehsize);
	ELFGEN_SET(m, 0, Ehdr, e_phentsize, m->phentsize);
	ELFGEN_SET(m, 0, Ehdr, e_phnum, phnum);
	ELFGEN_SET(m, 0, Ehdr, e_shentsize, m->shentsize);
	ELFGEN_SET(m, 0, Ehdr, e_shnum, shnum);
	ELFGEN_SET(m, 0, Ehdr, e_shstrndx, SHN_UNDEF);

	/* One segment maps the whole file, and memory up to the last symbol. */
	memsz = m->base + 16 * (g->nsym + g->ndyn + 1);
	if (memsz < m->len)
		memsz = m->len;
	ELFGEN_SET(m, m->phoff, Phdr, p_type, PT_LOAD);
	ELFGEN_SET(m, m->phoff, Phdr, p_flags, PF_R | PF_X);
	ELFGEN_SET(m, m->phoff, Phdr, p_offset, 0);
	ELFGEN_SET(m, m->phoff, Phdr, p_vaddr, 0);
	ELFGEN_SET(m, m->phoff, Phdr, p_filesz, m->len);
	ELFGEN_SET(m, m->phoff, Phdr, p_memsz, memsz);
	ELFGEN_SET(m, m->phoff, Phdr, p_align, 0x1000);
	ELFGEN_SET(m, m->phoff + m->phentsize, Phdr, p_type, PT_NOTE);
	ELFGEN_SET(m, m->phoff + m->phentsize, Phdr, p_flags, PF_R);
	ELFGEN_SET(m, m->phoff + m->phentsize, Phdr, p_offset, m->note_off);
	ELFGEN_SET(m, m->phoff + m->phentsize, Phdr, p_vaddr, m->note_off);
	ELFGEN_SET(m, m->phoff + m->phentsize, Phdr, p_filesz, 36);
	ELFGEN_SET(m, m->phoff + m->phentsize, Phdr, p_memsz, 36);
	ELFGEN_SET(m, m->phoff + m->phentsize, Phdr, p_align, 4);

	/* The note: namesz 4, descsz 20, NT_GNU_BUILD_ID, "GNU\0", 20 bytes. */
	elfgen_put(m, m->note_off, 4, 4);
	elfgen_put(m, m->note_off + 4, 4, 20);
	elfgen_put(m, m->note_off + 8, 4, NT_GNU_BUILD_ID);
	memcpy(m->buf + m->note_off + 12, "GNU", 4);
	for (int i = 0; i < 20; i++)
		m->buf[m->note_off + 16 + i] = (uint8_t)(0xa0 + i);

	for (size_t i = 0; i < nstr; i++) {
		offs[i] = 1 + i * (name_len + 1);
		elfgen_name(name, name_len, 's', i);
		memcpy(m->buf + m->strtab_off + offs[i], name, name_len);
	}
	elfgen_syms(m, m->symtab_off, g->nsym, 0, offs, g->one_name);
	for (size_t i = 0; i < g->ndyn; i++) {
		offs[i] = 1 + i * (name_len + 1);
		elfgen_name(name, name_len, 'd', i);
		memcpy(m->buf + m->dynstr_off + offs[i], name, name_len);
	}
	if (g->ndyn)
		elfgen_syms(m, m->dynsym_off, g->ndyn, g->nsym, offs, false);

	elfgen_shdr(m, ELFGEN_SYMTAB, SHT_SYMTAB, m->symtab_off, m->symtab_len, ELFGEN_STRTAB,
		    m->symentsize, 8);
	elfgen_shdr(m, ELFGEN_STRTAB, SHT_STRTAB, m->strtab_off, m->strtab_len, 0, 0, 1);
	if (g->ndyn) {
		elfgen_shdr(m, ELFGEN_DYNSYM, SHT_DYNSYM, m->dynsym_off, m->dynsym_len,
			    ELFGEN_DYNSTR, m->symentsize, 8);
		elfgen_shdr(m, ELFGEN_DYNSTR, SHT_STRTAB, m->dynstr_off, m->dynstr_len, 0, 0, 1);
	} else {
		elfgen_shdr(m, ELFGEN_DYNSYM, SHT_PROGBITS, 0, 0, 0, 0, 1);
		elfgen_shdr(m, ELFGEN_DYNSTR, SHT_PROGBITS, 0, 0, 0, 0, 1);
	}
	elfgen_shdr(m, ELFGEN_NOTE, SHT_NOTE, m->note_off, 36, 0, 0, 4);
	free(offs);
	free(name);
	return true;
}

#endif
