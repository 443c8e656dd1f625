/*
 * elfsym.c - read one ELF file's function symbols, build-id and PT_LOAD
 * segments, and keep compact arrays.
 *
 * Runs in the collector (unprivileged, confined) on files of profiled
 * processes, which may be hostile.  The headers and tables are decoded
 * here, from the System V ABI's "Object Files" chapter, rather than with
 * libelf, whose ELF_C_READ mode allocates and reads whole sections of
 * whatever size a header claims: here every byte read and every byte
 * allocated goes through the limits of elfsym.h.
 *
 *  - Every read is a pread (never mmap: a file truncated under us cannot
 *    raise SIGBUS) of a range first checked against the file size with
 *    overflow-safe arithmetic, and charged to the file's read budget.
 *  - Tables are streamed ELFSYM_CHUNK bytes at a time; a string table is
 *    read whole (bounded) while its symbol table is streamed, then freed.
 *  - Sections are found by type; the exceptions, .gnu_debugdata
 *    (MiniDebugInfo) and .gnu_debuglink, are non-allocated PROGBITS
 *    sections whose names are read from e_shstrndx's table, 15 bytes per
 *    candidate, at most ELFSYM_MAX_DD_CANDS of them.  Extended section and program header
 *    counts (e_shnum 0, e_phnum PN_XNUM, e_shstrndx SHN_XINDEX) are
 *    honoured and bounded.
 *  - Any inconsistency refuses the whole file: a table read in part could
 *    only give names that are wrong.
 *
 * Memory: one symbol is 16 bytes (address, size, name offset) and names
 * live in one arena; aliases at one address keep one name.
 */
#include "elfsym.h"

#include "symname.h"

#include <byteswap.h>
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Nested symbols: how many earlier symbols lookup checks for cover. */
#define LOOKUP_BACKTRACK 16

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_DATA ELFDATA2LSB
#else
#define HOST_DATA ELFDATA2MSB
#endif

struct elfsym_seg {
	uint64_t vaddr, offset, filesz, memsz;
	bool exec;
};

struct elfsym_sym {
	uint64_t addr;
	uint32_t size; /* zero-size symbols already extended */
	uint32_t name; /* offset into names */
};

struct elfsym {
	uint64_t file_size;
	struct elfsym_seg *segs;
	size_t nsegs;
	struct elfsym_sym *syms;
	size_t nsyms;
	char *names;
	size_t names_len;
	size_t build_id_len;
	uint8_t build_id[ELFSYM_MAX_BUILD_ID];
	uint64_t dd_offset, dd_size; /* .gnu_debugdata; size 0: none */
	uint64_t ehh_offset, ehh_vaddr, ehh_size; /* PT_GNU_EH_FRAME; size 0: none */
	uint32_t debuglink_crc;
	char debuglink[ELFSYM_MAX_DEBUGLINK + 1]; /* .gnu_debuglink's file name; "": none */
};

/* Headers decoded from either class and byte order. */
struct phdr {
	uint32_t type, flags;
	uint64_t offset, vaddr, filesz, memsz, align;
};

struct shdr {
	uint32_t name, type, link, info;
	uint64_t flags, offset, size, entsize, addralign;
};

/* A section that may be .gnu_debugdata, until its name is read. */
#define ELFSYM_MAX_DD_CANDS 16
struct dd_cand {
	uint32_t name;
	uint64_t offset, size;
};

/* A byte range of the file holding notes. */
struct region {
	uint64_t off, len;
	size_t align;
};

/* A function symbol while collecting. */
struct cand {
	uint64_t addr;
	uint32_t size;  /* clamped to UINT32_MAX */
	uint32_t name;  /* offset into the arena */
	uint32_t seq;   /* order in the file: the last tie-break */
	uint16_t len;   /* of the name, at most ELFSYM_MAX_NAME_LEN */
	uint8_t unders; /* leading underscores, counted up to 255 */
	uint8_t rank;   /* binding: global 2, weak 1, local 0 */
};
_Static_assert(sizeof(struct cand) == 24, "ELFSYM_MAX_PEAK_MEM counts 24 bytes a symbol");
_Static_assert(sizeof(struct elfsym_sym) == 16, "elfsym.h promises 16 bytes a symbol");
_Static_assert(sizeof(struct elfsym_seg) <= 64, "ELFSYM_MAX_PEAK_MEM counts 64 bytes a segment");
_Static_assert(ELFSYM_MAX_NAME_LEN <= UINT16_MAX, "cand.len");
_Static_assert(ELFSYM_MAX_NAMES <= UINT32_MAX && ELFSYM_MAX_SYMBOLS <= UINT32_MAX, "offsets");
_Static_assert(ELFSYM_MAX_NOTE_SIZE <= ELFSYM_CHUNK, "a note is read into the chunk buffer");

struct parse {
	int fd;                /* -1: reading mem */
	const uint8_t *mem;
	uint64_t size;         /* of the file */
	uint64_t budget;       /* bytes that may still be read */
	bool is64, swap;
	uint64_t phoff, shoff;
	size_t phnum, shnum, phentsize, shentsize, ehsize;
	size_t shstrndx;       /* 0: none */
	struct dd_cand dd[ELFSYM_MAX_DD_CANDS];
	size_t ndd;
	uint8_t *chunk;        /* ELFSYM_CHUNK bytes */
	struct region notes[ELFSYM_MAX_NOTES];
	size_t nnotes;
	struct shdr tabs[2];   /* the first SHT_SYMTAB, the first SHT_DYNSYM */
	size_t tab_index[2];   /* their section indexes; 0: none */
	const char *str;       /* the string table of the table being read */
	size_t str_len;
	struct cand *c;
	size_t nc, ccap;
	char *arena;
	size_t alen, acap;
	struct elfsym *e;
};

static bool range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* Do two ranges, each already within the file, share a byte? */
static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/* A field of a header in the file's byte order (size from the field). */
static uint64_t field(const struct parse *p, const uint8_t *b, size_t size)
{
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	switch (size) {
	case 1:
		return b[0];
	case 2:
		memcpy(&v16, b, 2);
		return p->swap ? bswap_16(v16) : v16;
	case 4:
		memcpy(&v32, b, 4);
		return p->swap ? bswap_32(v32) : v32;
	default:
		memcpy(&v64, b, 8);
		return p->swap ? bswap_64(v64) : v64;
	}
}

/* GET(p, b, Phdr, p_offset): the field of an Elf32_ or Elf64_ struct at b. */
#define FIELD(p, b, T, f) field(p, (b) + offsetof(T, f), sizeof(((T *)0)->f))
#define GET(p, b, T, f) ((p)->is64 ? FIELD(p, b, Elf64_##T, f) : FIELD(p, b, Elf32_##T, f))

static int read_at(struct parse *p, uint64_t off, void *buf, size_t len)
{
	uint8_t *out = buf;

	if (!range_ok(off, len, p->size))
		return -EINVAL;
	if (len > p->budget)
		return -E2BIG;
	p->budget -= len;
	if (p->fd < 0) {
		if (len)
			memcpy(out, p->mem + off, len);
		return 0;
	}
	while (len > 0) {
		ssize_t n = pread(p->fd, out, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ESTALE; /* shorter than fstat said: it changed */
		out += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Call fn on each of n entries of entsize bytes at off, read
 * ELFSYM_CHUNK bytes at a time.  The whole table must lie in the file and
 * fit the read budget before anything is read.
 */
typedef int (*entry_fn)(struct parse *p, const uint8_t *ent, size_t index);

static int each_entry(struct parse *p, uint64_t off, uint64_t n, size_t entsize, entry_fn fn)
{
	size_t per = ELFSYM_CHUNK / entsize;
	uint64_t i = 0;
	int r;

	if (n == 0) /* then the offset means nothing */
		return 0;
	if (n > p->size / entsize || !range_ok(off, n * entsize, p->size))
		return -EINVAL;
	if (n * entsize > p->budget)
		return -E2BIG;
	while (i < n) {
		size_t k = n - i < per ? (size_t)(n - i) : per;

		if ((r = read_at(p, off + i * entsize, p->chunk, k * entsize)) < 0)
			return r;
		for (size_t j = 0; j < k; j++)
			if ((r = fn(p, p->chunk + j * entsize, (size_t)(i + j))) < 0)
				return r;
		i += k;
	}
	return 0;
}

static void decode_shdr(const struct parse *p, const uint8_t *b, struct shdr *sh)
{
	sh->name = (uint32_t)GET(p, b, Shdr, sh_name);
	sh->flags = GET(p, b, Shdr, sh_flags);
	sh->type = (uint32_t)GET(p, b, Shdr, sh_type);
	sh->link = (uint32_t)GET(p, b, Shdr, sh_link);
	sh->info = (uint32_t)GET(p, b, Shdr, sh_info);
	sh->offset = GET(p, b, Shdr, sh_offset);
	sh->size = GET(p, b, Shdr, sh_size);
	sh->entsize = GET(p, b, Shdr, sh_entsize);
	sh->addralign = GET(p, b, Shdr, sh_addralign);
}

static int read_shdr(struct parse *p, size_t index, struct shdr *sh)
{
	uint8_t b[sizeof(Elf64_Shdr)];
	int r;

	if ((index >= p->shnum && index != 0) || index * p->shentsize > UINT64_MAX - p->shoff)
		return -EINVAL;
	if ((r = read_at(p, p->shoff + index * p->shentsize, b, p->shentsize)) < 0)
		return r;
	decode_shdr(p, b, sh);
	return 0;
}

/* The ELF header, and the real section and program header counts. */
static int read_ehdr(struct parse *p)
{
	uint8_t b[sizeof(Elf64_Ehdr)];
	uint16_t type, phnum, shnum, shstrndx;
	int r;

	if ((r = read_at(p, 0, b, EI_NIDENT)) < 0)
		return r;
	if (memcmp(b, ELFMAG, SELFMAG) != 0 || b[EI_VERSION] != EV_CURRENT ||
	    (b[EI_CLASS] != ELFCLASS32 && b[EI_CLASS] != ELFCLASS64) ||
	    (b[EI_DATA] != ELFDATA2LSB && b[EI_DATA] != ELFDATA2MSB))
		return -EINVAL;
	p->is64 = b[EI_CLASS] == ELFCLASS64;
	p->swap = b[EI_DATA] != HOST_DATA;
	p->ehsize = p->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	if ((r = read_at(p, EI_NIDENT, b + EI_NIDENT, p->ehsize - EI_NIDENT)) < 0)
		return r;
	type = (uint16_t)GET(p, b, Ehdr, e_type);
	if (type != ET_EXEC && type != ET_DYN)
		return -EINVAL;
	p->phoff = GET(p, b, Ehdr, e_phoff);
	p->shoff = GET(p, b, Ehdr, e_shoff);
	phnum = (uint16_t)GET(p, b, Ehdr, e_phnum);
	shnum = (uint16_t)GET(p, b, Ehdr, e_shnum);
	shstrndx = (uint16_t)GET(p, b, Ehdr, e_shstrndx);
	p->phentsize = p->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	p->shentsize = p->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
	/* Entries of another size than the spec's: refused, not guessed at. */
	if ((phnum && GET(p, b, Ehdr, e_phentsize) != p->phentsize) ||
	    (p->shoff && GET(p, b, Ehdr, e_shentsize) != p->shentsize))
		return -EINVAL;

	p->phnum = phnum;
	p->shnum = shnum;
	/* Sections, but no table: reading one "at offset 0" would read the header. */
	if (!p->shoff && shnum)
		return -EINVAL;
	if (p->shoff) {
		struct shdr sh0;

		/* Section 0 holds the real counts when they do not fit 16 bits. */
		if ((r = read_shdr(p, 0, &sh0)) < 0)
			return r;
		if (shnum == 0) {
			if (sh0.size > ELFSYM_MAX_SECTIONS)
				return -E2BIG;
			p->shnum = (size_t)sh0.size;
		}
		if (phnum == PN_XNUM)
			p->phnum = sh0.info;
		p->shstrndx = shstrndx == SHN_XINDEX ? sh0.link : shstrndx < SHN_LORESERVE ? shstrndx : 0;
	} else if (phnum == PN_XNUM) {
		return -EINVAL;
	}
	if (p->shnum > ELFSYM_MAX_SECTIONS || p->phnum > ELFSYM_MAX_PHDRS)
		return -E2BIG;
	return 0;
}

static void note_region(struct parse *p, uint64_t off, uint64_t len, uint64_t align)
{
	/* Too big, too small or out of the file: not where a build-id is. */
	if (p->nnotes >= ELFSYM_MAX_NOTES || len < 12 || len > ELFSYM_MAX_NOTE_SIZE ||
	    !range_ok(off, len, p->size))
		return;
	p->notes[p->nnotes++] = (struct region){ off, len, align == 8 ? 8 : 4 };
}

static int on_phdr(struct parse *p, const uint8_t *b, size_t index)
{
	struct elfsym *e = p->e;
	struct phdr ph = {
		.type = (uint32_t)GET(p, b, Phdr, p_type),
		.flags = (uint32_t)GET(p, b, Phdr, p_flags),
		.offset = GET(p, b, Phdr, p_offset),
		.vaddr = GET(p, b, Phdr, p_vaddr),
		.filesz = GET(p, b, Phdr, p_filesz),
		.memsz = GET(p, b, Phdr, p_memsz),
		.align = GET(p, b, Phdr, p_align),
	};

	if (ph.type == PT_NOTE) {
		note_region(p, ph.offset, ph.filesz, ph.align);
	} else if (ph.type == PT_GNU_EH_FRAME) {
		/* The first one: the loader and the unwinders use no other. */
		if (range_ok(ph.offset, ph.filesz, p->size) && ph.filesz && !e->ehh_size) {
			e->ehh_offset = ph.offset;
			e->ehh_vaddr = ph.vaddr;
			e->ehh_size = ph.filesz;
		}
	} else if (ph.type == PT_LOAD) {
		if (!range_ok(ph.offset, ph.filesz, p->size) || ph.vaddr > UINT64_MAX - ph.memsz ||
		    ph.filesz > ph.memsz)
			return -EINVAL;
		if (e->nsegs >= ELFSYM_MAX_LOADS)
			return -E2BIG;
		if (!e->segs) {
			e->segs = calloc(ELFSYM_MAX_LOADS, sizeof(*e->segs));
			if (!e->segs)
				return -ENOMEM;
		}
		e->segs[e->nsegs++] = (struct elfsym_seg){
			.vaddr = ph.vaddr, .offset = ph.offset, .filesz = ph.filesz,
			.memsz = ph.memsz, .exec = ph.flags & PF_X,
		};
	}
	return 0;
}

static int on_shdr(struct parse *p, const uint8_t *b, size_t index)
{
	struct shdr sh;
	int t;

	if (index == 0) /* the null section (or the extended counts) */
		return 0;
	decode_shdr(p, b, &sh);
	if (sh.type == SHT_NOTE) {
		note_region(p, sh.offset, sh.size, sh.addralign);
		return 0;
	}
	if (sh.type == SHT_PROGBITS && !(sh.flags & SHF_ALLOC) && sh.size > 0 &&
	    sh.size <= ELFSYM_MAX_DEBUGDATA && range_ok(sh.offset, sh.size, p->size) &&
	    p->ndd < ELFSYM_MAX_DD_CANDS) {
		p->dd[p->ndd++] = (struct dd_cand){ .name = sh.name, .offset = sh.offset, .size = sh.size };
		return 0;
	}
	/* One of each, as the gABI says there is; more would only cost time. */
	t = sh.type == SHT_SYMTAB ? 0 : sh.type == SHT_DYNSYM ? 1 : -1;
	if (t >= 0 && !p->tab_index[t]) {
		p->tabs[t] = sh;
		p->tab_index[t] = index;
	}
	return 0;
}

/* Look for NT_GNU_BUILD_ID in a note region read into buf. */
static bool scan_notes(struct parse *p, const uint8_t *buf, size_t len, size_t align)
{
	size_t off = 0;

	while (len - off >= 12) {
		size_t namesz = (size_t)field(p, buf + off, 4);
		size_t descsz = (size_t)field(p, buf + off + 4, 4);
		uint32_t type = (uint32_t)field(p, buf + off + 8, 4);
		size_t name_off = off + 12, desc_off, next;

		/* len <= ELFSYM_MAX_NOTE_SIZE: none of this can overflow. */
		if (namesz > len - name_off)
			return false;
		desc_off = name_off + ((namesz + align - 1) & ~(align - 1));
		if (desc_off > len || descsz > len - desc_off)
			return false;
		if (type == NT_GNU_BUILD_ID && namesz == 4 && memcmp(buf + name_off, "GNU", 4) == 0 &&
		    descsz > 0 && descsz <= ELFSYM_MAX_BUILD_ID) {
			memcpy(p->e->build_id, buf + desc_off, descsz);
			p->e->build_id_len = descsz;
			return true;
		}
		next = desc_off + ((descsz + align - 1) & ~(align - 1));
		if (next > len)
			return false;
		off = next;
	}
	return false;
}

static int find_build_id(struct parse *p)
{
	for (size_t i = 0; i < p->nnotes; i++) {
		const struct region *n = &p->notes[i];
		int r = read_at(p, n->off, p->chunk, (size_t)n->len);

		if (r < 0)
			return r;
		if (scan_notes(p, p->chunk, (size_t)n->len, n->align))
			break;
	}
	return 0;
}

/*
 * Which candidate, if any, is .gnu_debugdata: its name in the section
 * name table.  A table that is not one, or a name out of it, is only "no".
 */
/* .gnu_debuglink's content: a file name, NUL, padding to 4, a CRC-32 (gdb's docs). */
static int read_debuglink(struct parse *p, const struct dd_cand *c)
{
	uint8_t b[ELFSYM_MAX_DEBUGLINK + 1 + 3 + 4];
	size_t n, crc_off;
	int r;

	if (c->size < 8 || c->size > sizeof(b))
		return 0;
	if ((r = read_at(p, c->offset, b, (size_t)c->size)) < 0)
		return r;
	n = strnlen((const char *)b, (size_t)c->size - 4);
	crc_off = (n + 1 + 3) & ~(size_t)3;
	if (n == 0 || n > ELFSYM_MAX_DEBUGLINK || crc_off + 4 > c->size)
		return 0;
	memcpy(p->e->debuglink, b, n);
	p->e->debuglink[n] = '\0';
	p->e->debuglink_crc = (uint32_t)field(p, b + crc_off, 4);
	return 0;
}

static int find_debugdata(struct parse *p)
{
	static const char want[] = ".gnu_debugdata", link[] = ".gnu_debuglink";
	char got[sizeof(want)];
	_Static_assert(sizeof(want) == sizeof(link), "one read compares both");
	struct shdr ss;
	int r;

	if (!p->ndd || !p->shstrndx || p->shstrndx >= p->shnum)
		return 0;
	if ((r = read_shdr(p, p->shstrndx, &ss)) < 0)
		return r;
	if (ss.type != SHT_STRTAB || !range_ok(ss.offset, ss.size, p->size))
		return 0;
	for (size_t i = 0; i < p->ndd; i++) {
		if (!range_ok(p->dd[i].name, sizeof(want), ss.size))
			continue;
		if ((r = read_at(p, ss.offset + p->dd[i].name, got, sizeof(want))) < 0)
			return r;
		if (memcmp(got, want, sizeof(want)) == 0 && !p->e->dd_size) {
			p->e->dd_offset = p->dd[i].offset;
			p->e->dd_size = p->dd[i].size;
		} else if (memcmp(got, link, sizeof(link)) == 0 && !p->e->debuglink[0] &&
			   (r = read_debuglink(p, &p->dd[i])) < 0) {
			return r;
		}
	}
	return 0;
}

static int collect(struct parse *p, uint64_t addr, uint64_t size, uint8_t rank, const char *name,
		   size_t len)
{
	size_t unders;

	if (p->nc >= ELFSYM_MAX_SYMBOLS || len + 1 > ELFSYM_MAX_NAMES - p->alen)
		return -E2BIG;
	if (p->nc == p->ccap) {
		size_t cap = p->ccap ? p->ccap * 2 : 256;
		struct cand *a;

		if (cap > ELFSYM_MAX_SYMBOLS)
			cap = ELFSYM_MAX_SYMBOLS;
		a = reallocarray(p->c, cap, sizeof(*a));
		if (!a)
			return -ENOMEM;
		p->c = a;
		p->ccap = cap;
	}
	if (len + 1 > p->acap - p->alen) {
		size_t cap = p->acap ? p->acap : 4096;
		char *a;

		while (cap - p->alen < len + 1)
			cap *= 2;
		if (cap > ELFSYM_MAX_NAMES)
			cap = ELFSYM_MAX_NAMES;
		a = realloc(p->arena, cap);
		if (!a)
			return -ENOMEM;
		p->arena = a;
		p->acap = cap;
	}
	memcpy(p->arena + p->alen, name, len);
	p->arena[p->alen + len] = '\0';
	unders = symname_leading_underscores(name, len);
	p->c[p->nc] = (struct cand){
		.addr = addr,
		.size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size,
		.name = (uint32_t)p->alen,
		.seq = (uint32_t)p->nc,
		.len = (uint16_t)len,
		.unders = unders > UINT8_MAX ? UINT8_MAX : (uint8_t)unders,
		.rank = rank,
	};
	p->nc++;
	p->alen += len + 1;
	return 0;
}

static int on_sym(struct parse *p, const uint8_t *b, size_t index)
{
	uint32_t name = (uint32_t)GET(p, b, Sym, st_name);
	uint8_t info = (uint8_t)GET(p, b, Sym, st_info);
	uint16_t shndx = (uint16_t)GET(p, b, Sym, st_shndx);
	uint64_t value = GET(p, b, Sym, st_value);
	uint64_t size = GET(p, b, Sym, st_size);
	int type = ELF64_ST_TYPE(info), bind = ELF64_ST_BIND(info); /* same in ELF32 */
	size_t max, len;

	if (index == 0) /* the undefined symbol */
		return 0;
	if ((type != STT_FUNC && type != STT_GNU_IFUNC) || shndx == SHN_UNDEF || value == 0 ||
	    name == 0)
		return 0;
	if (name >= p->str_len)
		return -EINVAL;
	/* The table ends in NUL (checked), so this stays inside it. */
	max = p->str_len - name;
	len = strnlen(p->str + name, max < ELFSYM_MAX_NAME_LEN ? max : ELFSYM_MAX_NAME_LEN);
	if (len == 0)
		return 0;
	/*
	 * A versioned alias in .symtab carries its version in its name
	 * (clock_gettime@@GLIBC_2.17): the function is clock_gettime.  No C or
	 * mangled C++ name holds an '@'.
	 */
	{
		const char *at = memchr(p->str + name + 1, '@', len - 1);

		if (at)
			len = (size_t)(at - (p->str + name));
	}
	return collect(p, value, size, bind == STB_GLOBAL ? 2 : bind == STB_WEAK ? 1 : 0,
		       p->str + name, len);
}

static int read_symtab(struct parse *p, int t)
{
	const struct shdr *sh = &p->tabs[t];
	size_t entsize = p->is64 ? sizeof(Elf64_Sym) : sizeof(Elf32_Sym);
	uint64_t shtab_len = (uint64_t)p->shnum * p->shentsize;
	struct shdr str;
	char *buf = NULL;
	int r;

	if (sh->entsize != entsize || sh->size % entsize || !range_ok(sh->offset, sh->size, p->size))
		return -EINVAL;
	if (sh->size <= entsize) /* nothing but the undefined symbol */
		return 0;
	if (sh->link == 0 || sh->link == p->tab_index[t] || sh->link >= p->shnum)
		return -EINVAL;
	if ((r = read_shdr(p, sh->link, &str)) < 0)
		return r;
	if (str.type != SHT_STRTAB || !range_ok(str.offset, str.size, p->size))
		return -EINVAL;
	/* Symbols that are their own names, or headers: not a real table. */
	if (overlaps(sh->offset, sh->size, str.offset, str.size) ||
	    overlaps(sh->offset, sh->size, 0, p->ehsize) ||
	    overlaps(str.offset, str.size, 0, p->ehsize) ||
	    overlaps(sh->offset, sh->size, p->shoff, shtab_len) ||
	    overlaps(str.offset, str.size, p->shoff, shtab_len))
		return -EINVAL;
	if (str.size > ELFSYM_MAX_STRTAB)
		return -E2BIG;
	/* Refuse before reading a byte what the budget could not finish. */
	if (str.size + sh->size > p->budget)
		return -E2BIG;
	if (str.size) {
		buf = malloc((size_t)str.size);
		if (!buf)
			return -ENOMEM;
		if ((r = read_at(p, str.offset, buf, (size_t)str.size)) < 0)
			goto out;
		/* The gABI: the last byte is NUL, so that every string ends. */
		if (buf[str.size - 1] != '\0') {
			r = -EINVAL;
			goto out;
		}
	}
	p->str = buf;
	p->str_len = (size_t)str.size;
	r = each_entry(p, sh->offset, sh->size / entsize, entsize, on_sym);
	p->str = NULL;
	p->str_len = 0;
out:
	free(buf);
	return r;
}

/*
 * Order by address, then best name first, in constant time per compare
 * (names are compared byte by byte only once sorted, in finalize).
 */
static int cmp_cand(const struct cand *x, const struct cand *y)
{
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* The public name first: getpid over __getpid over __GI___getpid. */
	if (x->unders != y->unders)
		return x->unders < y->unders ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	if ((x->size == 0) != (y->size == 0))
		return x->size ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Heapsort: in place (no scratch the size of the array), n log n at worst. */
static void sift(struct cand *v, size_t root, size_t n)
{
	for (;;) {
		size_t child = 2 * root + 1, top = root;
		struct cand t;

		if (child < n && cmp_cand(&v[top], &v[child]) < 0)
			top = child;
		if (child + 1 < n && cmp_cand(&v[top], &v[child + 1]) < 0)
			top = child + 1;
		if (top == root)
			return;
		t = v[root];
		v[root] = v[top];
		v[top] = t;
		root = top;
	}
}

static void sort_cands(struct cand *v, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(v, i, n);
	for (size_t end = n; end-- > 1;) {
		struct cand t = v[0];

		v[0] = v[end];
		v[end] = t;
		sift(v, 0, end);
	}
}

/* End of the segment (in memory) holding vaddr, 0 if none. */
static uint64_t segment_end(const struct elfsym *e, uint64_t vaddr)
{
	for (size_t i = 0; i < e->nsegs; i++) {
		const struct elfsym_seg *s = &e->segs[i];

		if (vaddr >= s->vaddr && vaddr - s->vaddr < s->memsz)
			return s->vaddr + s->memsz;
	}
	return 0;
}

/* Sort, pick one name per address, extend zero sizes, compact the names. */
static int finalize(struct parse *p)
{
	struct elfsym *e = p->e;
	size_t n = 0, alen = 0;

	if (p->nc == 0)
		return 0;
	sort_cands(p->c, p->nc);
	/* Distinct addresses, and the bytes their winning names need. */
	for (size_t i = 0; i < p->nc; i++) {
		if (i > 0 && p->c[i].addr == p->c[i - 1].addr)
			continue;
		n++;
		alen += p->c[i].len + 1u;
	}
	e->syms = calloc(n, sizeof(*e->syms));
	e->names = malloc(alen);
	if (!e->syms || !e->names)
		return -ENOMEM;
	for (size_t i = 0; i < p->nc;) {
		struct elfsym_sym *s = &e->syms[e->nsyms++];
		const struct cand *c = &p->c[i];
		uint32_t size = 0;
		size_t j;

		for (j = i; j < p->nc && p->c[j].addr == c->addr; j++) {
			const struct cand *d = &p->c[j];

			if (d->size > size)
				size = d->size;
			/* Of names equal in rank, the first in byte order (as
			 * strcmp), so that the choice does not depend on the
			 * order of the tables: each name is compared once. */
			if (d->unders == c->unders && d->rank == c->rank &&
			    (d->size == 0) == (c->size == 0) && d->len == c->len &&
			    memcmp(p->arena + d->name, p->arena + c->name, d->len) < 0)
				c = d;
		}
		s->addr = c->addr;
		s->size = size;
		s->name = (uint32_t)e->names_len;
		memcpy(e->names + e->names_len, p->arena + c->name, c->len + 1u);
		e->names_len += c->len + 1u;
		i = j;
	}
	for (size_t i = 0; i < e->nsyms; i++) {
		struct elfsym_sym *s = &e->syms[i];
		uint64_t end;

		if (s->size)
			continue;
		end = i + 1 < e->nsyms ? e->syms[i + 1].addr : segment_end(e, s->addr);
		if (end > s->addr)
			s->size = end - s->addr > UINT32_MAX ? UINT32_MAX : (uint32_t)(end - s->addr);
	}
	return 0;
}

static int parse(struct parse *p, struct elfsym **ret_elf)
{
	int r;

	p->budget = ELFSYM_MAX_READ;
	p->e = calloc(1, sizeof(*p->e));
	p->chunk = malloc(ELFSYM_CHUNK);
	if (!p->e || !p->chunk) {
		r = -ENOMEM;
		goto out;
	}
	p->e->file_size = p->size;
	if ((r = read_ehdr(p)) < 0 ||
	    (r = each_entry(p, p->phoff, p->phnum, p->phentsize, on_phdr)) < 0 ||
	    (p->shnum && (r = each_entry(p, p->shoff, p->shnum, p->shentsize, on_shdr)) < 0) ||
	    (r = find_build_id(p)) < 0 || (r = find_debugdata(p)) < 0 ||
	    (p->tab_index[0] && (r = read_symtab(p, 0)) < 0) ||
	    (p->tab_index[1] && (r = read_symtab(p, 1)) < 0))
		goto out;
	/* The arrays shrink to what the result holds before it is built. */
	free(p->chunk);
	p->chunk = NULL;
	if (p->e->nsegs && p->e->nsegs < ELFSYM_MAX_LOADS) {
		struct elfsym_seg *s = reallocarray(p->e->segs, p->e->nsegs, sizeof(*s));

		if (s)
			p->e->segs = s;
	}
	if ((r = finalize(p)) < 0)
		goto out;
	*ret_elf = p->e;
	p->e = NULL;
out:
	free(p->chunk);
	free(p->c);
	free(p->arena);
	elfsym_free(p->e);
	return r;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int elfsym_open_fd(int fd, struct elfsym **ret_elf)
{
	struct parse p = { .fd = fd };
	struct elfsym *e = NULL;
	struct stat st, after;
	int r;

	if (fd < 0 || !ret_elf)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	p.size = (uint64_t)st.st_size;
	if ((r = parse(&p, &e)) < 0)
		return r;
	/* Written to while we read: what we read may mix two files. */
	if (fstat(fd, &after) < 0 || !same_file(&st, &after)) {
		elfsym_free(e);
		return -ESTALE;
	}
	*ret_elf = e;
	return 0;
}

int elfsym_open_mem(const void *buf, size_t len, struct elfsym **ret_elf)
{
	struct parse p = { .fd = -1, .mem = buf, .size = len };

	if ((!buf && len) || !ret_elf)
		return -EINVAL;
	return parse(&p, ret_elf);
}

const char *elfsym_debuglink(const struct elfsym *e, uint32_t *ret_crc)
{
	if (!e || !e->debuglink[0])
		return NULL;
	*ret_crc = e->debuglink_crc;
	return e->debuglink;
}

int elfsym_debugdata(const struct elfsym *e, uint64_t *ret_offset, uint64_t *ret_size)
{
	if (!e || !e->dd_size)
		return -ENOENT;
	*ret_offset = e->dd_offset;
	*ret_size = e->dd_size;
	return 0;
}

const uint8_t *elfsym_build_id(const struct elfsym *e, size_t *ret_len)
{
	if (!e || !e->build_id_len)
		return NULL;
	if (ret_len)
		*ret_len = e->build_id_len;
	return e->build_id;
}

uint64_t elfsym_file_size(const struct elfsym *e)
{
	return e ? e->file_size : 0;
}

size_t elfsym_symbol_count(const struct elfsym *e)
{
	return e ? e->nsyms : 0;
}

size_t elfsym_mem_usage(const struct elfsym *e)
{
	if (!e)
		return 0;
	return sizeof(*e) + e->nsegs * sizeof(*e->segs) + e->nsyms * sizeof(*e->syms) +
	       e->names_len;
}

static bool same_seg(const struct elfsym_seg *a, const struct elfsym_seg *b)
{
	return a->vaddr == b->vaddr && a->offset == b->offset && a->filesz == b->filesz &&
	       a->memsz == b->memsz && a->exec == b->exec;
}

bool elfsym_same(const struct elfsym *a, const struct elfsym *b)
{
	if (!a || !b)
		return a == b;
	if (a->build_id_len != b->build_id_len || a->nsegs != b->nsegs || a->nsyms != b->nsyms ||
	    a->names_len != b->names_len ||
	    memcmp(a->build_id, b->build_id, a->build_id_len) != 0)
		return false;
	for (size_t i = 0; i < a->nsegs; i++)
		if (!same_seg(&a->segs[i], &b->segs[i]))
			return false;
	/* struct elfsym_sym has no padding (16 bytes, asserted above). */
	return (a->nsyms == 0 || memcmp(a->syms, b->syms, a->nsyms * sizeof(*a->syms)) == 0) &&
	       (a->names_len == 0 || memcmp(a->names, b->names, a->names_len) == 0);
}

static uint64_t hash_step(uint64_t h, uint64_t v)
{
	h = (h ^ v) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;
	uint64_t w;

	for (; len >= 8; c += 8, len -= 8) {
		memcpy(&w, c, 8);
		h = hash_step(h, w);
	}
	w = 0;
	memcpy(&w, c, len);
	return hash_step(h, w ^ ((uint64_t)len << 56));
}

uint64_t elfsym_hash(const struct elfsym *e, uint64_t seed)
{
	uint64_t h = hash_step(seed, 0x5ca1ab1e);

	if (!e)
		return h;
	h = hash_bytes(h, e->build_id, e->build_id_len);
	h = hash_step(h, e->nsegs);
	for (size_t i = 0; i < e->nsegs; i++) {
		const struct elfsym_seg *s = &e->segs[i];

		h = hash_step(hash_step(hash_step(h, s->vaddr), s->offset), s->filesz);
		h = hash_step(h, s->memsz ^ ((uint64_t)s->exec << 63));
	}
	h = hash_step(h, e->nsyms);
	if (e->nsyms)
		h = hash_bytes(h, e->syms, e->nsyms * sizeof(*e->syms));
	if (e->names_len)
		h = hash_bytes(h, e->names, e->names_len);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 33);
}

int elfsym_offset_to_vaddr(const struct elfsym *e, uint64_t file_offset, uint64_t *ret_vaddr)
{
	if (!e || !ret_vaddr)
		return -EINVAL;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < e->nsegs; i++) {
			const struct elfsym_seg *s = &e->segs[i];

			if (s->exec != (pass == 0))
				continue;
			if (file_offset >= s->offset && file_offset - s->offset < s->filesz) {
				*ret_vaddr = s->vaddr + (file_offset - s->offset);
				return 0;
			}
		}
	}
	return -ENOENT;
}

int elfsym_vaddr_to_offset(const struct elfsym *e, uint64_t vaddr, uint64_t *ret_offset,
			   uint64_t *ret_avail)
{
	if (!e || !ret_offset || !ret_avail)
		return -EINVAL;
	for (size_t i = 0; i < e->nsegs; i++) {
		const struct elfsym_seg *s = &e->segs[i];

		if (vaddr >= s->vaddr && vaddr - s->vaddr < s->filesz) {
			*ret_offset = s->offset + (vaddr - s->vaddr);
			*ret_avail = s->filesz - (vaddr - s->vaddr);
			return 0;
		}
	}
	return -ENOENT;
}

int elfsym_segment(const struct elfsym *e, size_t i, uint64_t *ret_offset, uint64_t *ret_vaddr,
		   uint64_t *ret_filesz)
{
	if (!e || !ret_offset || !ret_vaddr || !ret_filesz)
		return -EINVAL;
	if (i >= e->nsegs)
		return -ENOENT;
	*ret_offset = e->segs[i].offset;
	*ret_vaddr = e->segs[i].vaddr;
	*ret_filesz = e->segs[i].filesz;
	return 0;
}

int elfsym_eh_frame_hdr(const struct elfsym *e, uint64_t *ret_offset, uint64_t *ret_vaddr,
			uint64_t *ret_size)
{
	if (!e || !ret_offset || !ret_vaddr || !ret_size)
		return -EINVAL;
	if (!e->ehh_size)
		return -ENOENT;
	*ret_offset = e->ehh_offset;
	*ret_vaddr = e->ehh_vaddr;
	*ret_size = e->ehh_size;
	return 0;
}

const char *elfsym_lookup(const struct elfsym *e, uint64_t vaddr, uint64_t *ret_offset_in_sym)
{
	size_t lo = 0, hi;

	if (!e || e->nsyms == 0)
		return NULL;
	hi = e->nsyms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e->syms[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* syms[lo - 1] is the last symbol at or below vaddr; an earlier,
	 * larger symbol may still enclose vaddr (nested symbols). */
	for (size_t k = 0; k < LOOKUP_BACKTRACK && lo > k; k++) {
		const struct elfsym_sym *s = &e->syms[lo - 1 - k];

		if (vaddr - s->addr < s->size) {
			if (ret_offset_in_sym)
				*ret_offset_in_sym = vaddr - s->addr;
			return e->names + s->name;
		}
	}
	return NULL;
}

void elfsym_free(struct elfsym *e)
{
	if (!e)
		return;
	free(e->segs);
	free(e->syms);
	free(e->names);
	free(e);
}
