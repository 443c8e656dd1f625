/*
 * elfsym.c - read one ELF file's function symbols, build-id and PT_LOAD
 * segments with libelf, then drop libelf and keep compact arrays.
 *
 * Runs in the collector (unprivileged) on files of profiled processes,
 * which may be hostile: every offset and size is checked against the file
 * size before libelf is asked for the bytes, and libelf's own checks
 * (elf_strptr, gelf_getsym, gelf_getnote bounds) do the rest.  The file is
 * read with pread (ELF_C_READ), never mmap'ed, so a file truncated under
 * us cannot raise SIGBUS.
 *
 * Memory: one symbol is 16 bytes (address, size, name offset) and names
 * live in one arena; names that .symtab and .dynsym both carry, and
 * aliases at one address, are stored once.
 */
#include "elfsym.h"

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_NOTE_SIZE (1u << 20)
#define MAX_SECTIONS  65536u
/* Nested symbols: how many earlier symbols lookup checks for cover. */
#define LOOKUP_BACKTRACK 16

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
};

/* A symbol while collecting, before dedup. */
struct rawsym {
	uint64_t addr, size;
	uint32_t name;
	uint8_t rank; /* binding: higher is preferred */
};

struct collect {
	struct rawsym *syms;
	size_t n, cap;
	char *arena;
	size_t alen, acap;
};

static bool range_ok(uint64_t off, uint64_t size, uint64_t file_size)
{
	return off <= file_size && size <= file_size - off;
}

static void scan_notes(struct elfsym *e, Elf_Data *data)
{
	GElf_Nhdr nh;
	size_t off = 0, name_off, desc_off, next;

	while ((next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const char *name = (const char *)data->d_buf + name_off;

		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    memcmp(name, "GNU", 4) == 0 && nh.n_descsz > 0 &&
		    nh.n_descsz <= ELFSYM_MAX_BUILD_ID) {
			memcpy(e->build_id, (const uint8_t *)data->d_buf + desc_off, nh.n_descsz);
			e->build_id_len = nh.n_descsz;
			return;
		}
		if (next <= off)
			return;
		off = next;
	}
}

static int read_phdrs(Elf *elf, struct elfsym *e)
{
	size_t phnum, nload = 0;

	if (elf_getphdrnum(elf, &phnum) != 0)
		return -EINVAL;
	if (phnum > ELFSYM_MAX_PHDRS)
		return -E2BIG;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			return -EINVAL;
		if (ph.p_type == PT_LOAD)
			nload++;
	}
	if (nload) {
		e->segs = calloc(nload, sizeof(*e->segs));
		if (!e->segs)
			return -ENOMEM;
	}
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			return -EINVAL;
		if (ph.p_type == PT_LOAD) {
			struct elfsym_seg *s;

			if (!range_ok(ph.p_offset, ph.p_filesz, e->file_size) ||
			    ph.p_vaddr > UINT64_MAX - ph.p_memsz || ph.p_filesz > ph.p_memsz)
				return -EINVAL;
			if (e->nsegs >= nload)
				return -EINVAL;
			s = &e->segs[e->nsegs++];
			s->vaddr = ph.p_vaddr;
			s->offset = ph.p_offset;
			s->filesz = ph.p_filesz;
			s->memsz = ph.p_memsz;
			s->exec = ph.p_flags & PF_X;
		} else if (ph.p_type == PT_NOTE && !e->build_id_len) {
			Elf_Data *d;

			if (!range_ok(ph.p_offset, ph.p_filesz, e->file_size) ||
			    ph.p_filesz == 0 || ph.p_filesz > MAX_NOTE_SIZE)
				continue;
			d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz,
						 ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
			if (d)
				scan_notes(e, d);
		}
	}
	return 0;
}

static int collect_add(struct collect *c, uint64_t addr, uint64_t size, uint8_t rank,
		       const char *name)
{
	size_t len = strnlen(name, ELFSYM_MAX_NAME_LEN);

	if (c->n >= ELFSYM_MAX_SYMBOLS || c->alen + len + 1 > ELFSYM_MAX_NAMES)
		return -E2BIG;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct rawsym *a = reallocarray(c->syms, cap, sizeof(*a));

		if (!a)
			return -ENOMEM;
		c->syms = a;
		c->cap = cap;
	}
	if (c->alen + len + 1 > c->acap) {
		size_t cap = c->acap ? c->acap : 4096;
		char *a;

		while (cap < c->alen + len + 1)
			cap *= 2;
		a = realloc(c->arena, cap);
		if (!a)
			return -ENOMEM;
		c->arena = a;
		c->acap = cap;
	}
	memcpy(c->arena + c->alen, name, len);
	c->arena[c->alen + len] = '\0';
	c->syms[c->n++] = (struct rawsym){
		.addr = addr, .size = size, .name = (uint32_t)c->alen, .rank = rank,
	};
	c->alen += len + 1;
	return 0;
}

static int read_symtab(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, struct elfsym *e,
		       struct collect *c)
{
	size_t entsize = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
	Elf_Scn *strscn;
	GElf_Shdr strsh;
	Elf_Data *d;
	size_t count;

	if (entsize == 0 || sh->sh_entsize != entsize ||
	    !range_ok(sh->sh_offset, sh->sh_size, e->file_size))
		return -EINVAL;
	strscn = elf_getscn(elf, sh->sh_link);
	if (!strscn || !gelf_getshdr(strscn, &strsh) || strsh.sh_type != SHT_STRTAB ||
	    !range_ok(strsh.sh_offset, strsh.sh_size, e->file_size))
		return -EINVAL;
	count = sh->sh_size / entsize;
	if (count > ELFSYM_MAX_SYMBOLS)
		return -E2BIG;
	d = elf_getdata(scn, NULL);
	if (!d)
		return count ? -EINVAL : 0;
	for (size_t i = 1; i < count; i++) {
		GElf_Sym sym;
		const char *name;
		int type, bind, r;
		uint8_t rank;

		if (!gelf_getsym(d, (int)i, &sym))
			return -EINVAL;
		type = GELF_ST_TYPE(sym.st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
		    sym.st_value == 0)
			continue;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name || !*name)
			continue;
		bind = GELF_ST_BIND(sym.st_info);
		rank = bind == STB_GLOBAL ? 2 : bind == STB_WEAK ? 1 : 0;
		if ((r = collect_add(c, sym.st_value, sym.st_size, rank, name)) < 0)
			return r;
	}
	return 0;
}

static int read_sections(Elf *elf, struct elfsym *e, struct collect *c)
{
	size_t shnum;
	Elf_Scn *scn = NULL;

	if (elf_getshdrnum(elf, &shnum) != 0)
		return -EINVAL;
	if (shnum > MAX_SECTIONS)
		return -E2BIG;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		int r;

		if (!gelf_getshdr(scn, &sh))
			return -EINVAL;
		if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM) {
			if ((r = read_symtab(elf, scn, &sh, e, c)) < 0)
				return r;
		} else if (sh.sh_type == SHT_NOTE && !e->build_id_len) {
			Elf_Data *d;

			if (!range_ok(sh.sh_offset, sh.sh_size, e->file_size) ||
			    sh.sh_size == 0 || sh.sh_size > MAX_NOTE_SIZE)
				continue;
			d = elf_getdata(scn, NULL);
			if (d)
				scan_notes(e, d);
		}
	}
	return 0;
}

static unsigned leading_underscores(const char *s)
{
	unsigned n = 0;

	while (s[n] == '_')
		n++;
	return n;
}

/* Order by address, then best name first (arena: where names live). */
static int cmp_rawsym(const void *a, const void *b, void *arena)
{
	const struct rawsym *x = a, *y = b;
	const char *cmp_arena = arena;
	const char *xn, *yn;
	unsigned xu, yu;
	size_t xl, yl;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* The public name first: getpid over __getpid over __GI___getpid. */
	xn = cmp_arena + x->name;
	yn = cmp_arena + y->name;
	xu = leading_underscores(xn);
	yu = leading_underscores(yn);
	if (xu != yu)
		return xu < yu ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	if ((x->size == 0) != (y->size == 0))
		return x->size ? -1 : 1;
	xl = strlen(xn);
	yl = strlen(yn);
	if (xl != yl)
		return xl < yl ? -1 : 1;
	return strcmp(xn, yn);
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

static uint32_t clamp32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Sort, pick one name per address, extend zero sizes, compact the names. */
static int finalize(struct elfsym *e, struct collect *c)
{
	size_t n = 0, alen = 0;

	if (c->n == 0)
		return 0;
	qsort_r(c->syms, c->n, sizeof(*c->syms), cmp_rawsym, c->arena);

	/* Count distinct addresses and the bytes their winning names need. */
	for (size_t i = 0; i < c->n; i++) {
		if (i > 0 && c->syms[i].addr == c->syms[i - 1].addr)
			continue;
		n++;
		alen += strlen(c->arena + c->syms[i].name) + 1;
	}
	e->syms = calloc(n, sizeof(*e->syms));
	e->names = malloc(alen);
	if (!e->syms || !e->names)
		return -ENOMEM;
	for (size_t i = 0; i < c->n;) {
		struct elfsym_sym *s = &e->syms[e->nsyms++];
		const char *name = c->arena + c->syms[i].name;
		size_t len = strlen(name);
		uint64_t size = 0;
		size_t j;

		for (j = i; j < c->n && c->syms[j].addr == c->syms[i].addr; j++)
			if (c->syms[j].size > size)
				size = c->syms[j].size;
		s->addr = c->syms[i].addr;
		s->size = clamp32(size);
		s->name = (uint32_t)e->names_len;
		memcpy(e->names + e->names_len, name, len + 1);
		e->names_len += len + 1;
		i = j;
	}
	for (size_t i = 0; i < e->nsyms; i++) {
		struct elfsym_sym *s = &e->syms[i];
		uint64_t end;

		if (s->size)
			continue;
		end = i + 1 < e->nsyms ? e->syms[i + 1].addr : segment_end(e, s->addr);
		if (end > s->addr)
			s->size = clamp32(end - s->addr);
	}
	return 0;
}

static int parse(Elf *elf, uint64_t file_size, struct elfsym **ret_elf)
{
	struct collect c = { 0 };
	struct elfsym *e;
	GElf_Ehdr eh;
	int r;

	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh))
		return -EINVAL;
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->file_size = file_size;
	if ((r = read_phdrs(elf, e)) < 0 || (r = read_sections(elf, e, &c)) < 0 ||
	    (r = finalize(e, &c)) < 0)
		goto out;
	*ret_elf = e;
	e = NULL;
out:
	free(c.syms);
	free(c.arena);
	elfsym_free(e);
	return r;
}

int elfsym_open_fd(int fd, struct elfsym **ret_elf)
{
	struct stat st;
	Elf *elf;
	int r;

	if (fd < 0 || !ret_elf)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > ELFSYM_MAX_FILE_SIZE)
		return -E2BIG;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf)
		return -EINVAL;
	r = parse(elf, (uint64_t)st.st_size, ret_elf);
	elf_end(elf);
	return r;
}

int elfsym_open_mem(const void *buf, size_t len, struct elfsym **ret_elf)
{
	char *copy;
	Elf *elf;
	int r;

	if ((!buf && len) || !ret_elf)
		return -EINVAL;
	if (len > ELFSYM_MAX_FILE_SIZE)
		return -E2BIG;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	/* libelf wants a writable image; it must outlive the Elf handle. */
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, buf, len);
	elf = elf_memory(copy, len);
	if (!elf) {
		free(copy);
		return -EINVAL;
	}
	r = parse(elf, len, ret_elf);
	elf_end(elf);
	free(copy);
	return r;
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
