/*
 * kallsyms.c - load kernel text symbols from a kallsyms-format file.
 *
 * Runs in the collector.  Lines look like
 *
 *   ffffffff821f8be0 T schedule
 *   ffffffffc0a01000 t nft_do_chain	[nf_tables]
 *
 * The file is read in fixed-size chunks (no line can make us allocate more
 * than KALLSYMS_MAX_LINE), only text symbols are kept, and the result is a
 * sorted array of 10-byte entries (the low 32 bits of the address, the
 * name's offset, the module), the runs of entries that share the high 32
 * bits (one on x86-64: the kernel image, its modules and BPF programs all
 * lie in the top 2 GiB), the names as tokens (toknames.h) and a module
 * table.  Loading sorts 16-byte entries that also hold the whole address
 * and the name's rank, then packs them in place: ~0.7 MiB less for a
 * distribution kernel's ~120k text symbols, for as long as the collector
 * runs; the tokens take another ~1 MiB off the names.
 */
#include "kallsyms.h"

#include "growarr.h"
#include "hexdigit.h"
#include "symname.h"
#include "toknames.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK 65536

struct ksym {
	uint64_t addr;
	uint32_t name; /* the name's code in names (toknames_get) */
	uint16_t mod;  /* 0: kernel image, else index into mods */
	uint8_t rank;  /* preference among names at one address */
	uint8_t pad;
};

struct kmod {
	uint32_t name; /* offset into modnames: "[name]" */
	uint64_t start, end;
};

/* A loaded symbol: its address is (the high 32 bits of its run) << 32 | lo. */
struct ksym_packed {
	uint32_t lo;
	uint32_t name;
	uint16_t mod;
} __attribute__((packed));

/* Entries [first, next run's first) have these high 32 bits. */
struct krun {
	uint32_t hi;
	uint32_t first;
};

struct kallsyms {
	struct ksym_packed *syms;
	size_t n;
	struct krun *runs;
	size_t nruns;
	struct toknames names;
	struct kmod *mods; /* mods[0] is the kernel image */
	size_t nmods;
	char *modnames;
	size_t modnames_len;
	char name[KALLSYMS_MAX_LINE + 1]; /* the last name kallsyms_lookup decoded */
};

struct loader {
	struct ksym *syms;
	size_t n, cap;
	struct toknames names;
	struct kmod *mods;
	size_t nmods, mcap;
	char *modnames;
	size_t mlen, mcapb;
	size_t lines;
	bool any_nonzero;
	bool counting; /* sizing pass: count symbols and name bytes only */
	uint16_t last_mod;
	/*
	 * The last symbol stored, if its name is "__pfx_NAME", and where the
	 * code of its NAME lies in names: the next symbol, NAME, shares it.
	 */
	char pfx[KALLSYMS_MAX_LINE];
	size_t pfx_len;
	uint32_t pfx_tail;
};

#define PFX "__pfx_"
#define PFX_LEN 6
#define PFX_TOKENS 3 /* "", "", "pfx" */

/* Index of module "[name]" (mod, mlen including brackets), adding it if new. */
static int module_index(struct loader *l, const char *mod, size_t mlen, uint16_t *ret)
{
	int r;

	if (l->last_mod && strlen(l->modnames + l->mods[l->last_mod].name) == mlen &&
	    memcmp(l->modnames + l->mods[l->last_mod].name, mod, mlen) == 0) {
		*ret = l->last_mod;
		return 0;
	}
	for (size_t i = 1; i < l->nmods; i++) {
		const char *name = l->modnames + l->mods[i].name;

		if (strlen(name) == mlen && memcmp(name, mod, mlen) == 0) {
			*ret = l->last_mod = (uint16_t)i;
			return 0;
		}
	}
	if (l->nmods > KALLSYMS_MAX_MODULES)
		return -E2BIG;
	if ((r = growarr((void **)&l->mods, &l->mcap, l->nmods + 1, sizeof(*l->mods), 16)) < 0 ||
	    (r = growarr((void **)&l->modnames, &l->mcapb, l->mlen + mlen + 1, 1, 1024)) < 0)
		return r;
	memcpy(l->modnames + l->mlen, mod, mlen);
	l->modnames[l->mlen + mlen] = '\0';
	l->mods[l->nmods] = (struct kmod){ .name = (uint32_t)l->mlen };
	l->mlen += mlen + 1;
	*ret = l->last_mod = (uint16_t)l->nmods++;
	return 0;
}

static int parse_line(struct loader *l, const char *p, const char *end)
{
	const char *name, *mod = NULL;
	size_t nlen, mlen = 0;
	uint64_t addr = 0;
	unsigned digits = 0;
	uint16_t modidx = 0;
	uint32_t name_off, tail = 0;
	bool shared, pfx;
	char type;
	int d, r;

	while (p < end && (d = hexdigit_value(*p)) >= 0) {
		if (++digits > 16)
			return -EINVAL;
		addr = addr << 4 | (uint64_t)d;
		p++;
	}
	if (digits == 0 || end - p < 4 || p[0] != ' ' || p[2] != ' ')
		return -EINVAL;
	type = p[1];
	p += 3;
	name = p;
	while (p < end && *p != '\t' && *p != ' ')
		p++;
	nlen = (size_t)(p - name);
	if (nlen == 0)
		return -EINVAL;
	if (p < end) {
		p++;
		if (end - p < 3 || p[0] != '[' || end[-1] != ']' ||
		    memchr(p + 1, ']', (size_t)(end - p - 2)) || memchr(p, ' ', (size_t)(end - p)))
			return -EINVAL;
		mod = p;
		mlen = (size_t)(end - p);
	}
	if (memchr(name, '\0', nlen) || (mod && memchr(mod, '\0', mlen)))
		return -EINVAL;
	if (addr)
		l->any_nonzero = true;
	if (type != 't' && type != 'T' && type != 'w' && type != 'W')
		return 0;
	/*
	 * 0 is a hidden address (kptr_restrict).  The last byte of the address
	 * space holds no function, and [start, end) of its module could not
	 * include it (found by fuzz_kallsyms).
	 */
	if (addr == 0 || addr == UINT64_MAX)
		return 0;
	/*
	 * Kernels built with function padding (CONFIG_FUNCTION_PADDING, x86's
	 * default since 6.2) list a "__pfx_NAME" symbol for the padding just
	 * before each function NAME: half the text symbols, listed just
	 * before it.  NAME's code is the tail of that name's (toknames.h),
	 * so it is not stored twice (1.3 MiB of names on a distribution
	 * kernel, before tokens).
	 */
	shared = l->pfx_len == nlen + PFX_LEN && memcmp(l->pfx + PFX_LEN, name, nlen) == 0;
	name_off = l->pfx_tail;
	l->pfx_len = 0;
	pfx = !shared && nlen > PFX_LEN && nlen < sizeof(l->pfx) && memcmp(name, PFX, PFX_LEN) == 0;
	if (pfx) {
		memcpy(l->pfx, name, nlen);
		l->pfx_len = nlen;
	}
	if (l->counting) {
		l->n++;
		return shared ? 0 : toknames_count(&l->names, name, nlen);
	}
	if (mod && (r = module_index(l, mod, mlen, &modidx)) < 0)
		return r;
	if ((r = growarr((void **)&l->syms, &l->cap, l->n + 1, sizeof(*l->syms), 1024)) < 0)
		return r;
	if (!shared &&
	    (r = toknames_add(&l->names, name, nlen, PFX_TOKENS, &name_off, pfx ? &tail : NULL)) < 0)
		return r;
	if (pfx)
		l->pfx_tail = tail;
	l->syms[l->n++] = (struct ksym){
		.addr = addr,
		.name = (uint32_t)name_off,
		.mod = modidx,
		.rank = type == 'T' ? 3 : type == 'W' ? 2 : type == 't' ? 1 : 0,
	};
	return 0;
}

/* The names, and room to decode two of them, for comparing entries. */
struct sortctx {
	const struct toknames *names;
	char x[KALLSYMS_MAX_LINE + 1], y[KALLSYMS_MAX_LINE + 1];
};

static int cmp_ksym(const struct ksym *x, const struct ksym *y, struct sortctx *c)
{
	const char *xn, *yn;
	size_t xu, yu;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	/* Names are at most a line long: decoded whole. */
	xn = toknames_get(c->names, x->name, c->x, sizeof(c->x));
	yn = toknames_get(c->names, y->name, c->y, sizeof(c->y));
	if (!xn || !yn)
		return !xn - !yn;
	xu = symname_leading_underscores(xn, KALLSYMS_MAX_LINE);
	yu = symname_leading_underscores(yn, KALLSYMS_MAX_LINE);
	if (xu != yu)
		return xu < yu ? -1 : 1;
	return strcmp(xn, yn);
}

/*
 * Heapsort: in place, so that sorting ~120k symbols needs no second copy
 * of them (glibc's qsort_r allocates one the size of the array).
 */
static void sift(struct ksym *v, size_t root, size_t n, struct sortctx *c)
{
	for (;;) {
		size_t child = 2 * root + 1, top = root;
		struct ksym t;

		if (child < n && cmp_ksym(&v[top], &v[child], c) < 0)
			top = child;
		if (child + 1 < n && cmp_ksym(&v[top], &v[child + 1], c) < 0)
			top = child + 1;
		if (top == root)
			return;
		t = v[root];
		v[root] = v[top];
		v[top] = t;
		root = top;
	}
}

static void sort_ksyms(struct ksym *v, size_t n, struct sortctx *c)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(v, i, n, c);
	for (size_t end = n; end-- > 1;) {
		struct ksym t = v[0];

		v[0] = v[end];
		v[end] = t;
		sift(v, 0, end, c);
	}
}

/* The runs of v[0..n) (sorted) that share the high 32 bits of their address. */
static int count_runs(const struct ksym *v, size_t n, struct krun **ret, size_t *ret_n)
{
	size_t nr = 0;
	struct krun *r;

	for (size_t i = 0; i < n; i++)
		if (i == 0 || v[i].addr >> 32 != v[i - 1].addr >> 32)
			nr++;
	r = calloc(nr ? nr : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	nr = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || v[i].addr >> 32 != v[i - 1].addr >> 32)
			r[nr++] = (struct krun){ .hi = (uint32_t)(v[i].addr >> 32), .first = (uint32_t)i };
	*ret = r;
	*ret_n = nr;
	return 0;
}

/*
 * Pack v[0..n) into 10-byte entries in the same memory, front to back:
 * packed entry i ends at 10i + 10, within v[0..i], which is read already.
 */
static struct ksym_packed *pack(struct ksym *v, size_t n)
{
	struct ksym_packed *p = (struct ksym_packed *)(void *)v;

	_Static_assert(sizeof(struct ksym_packed) == 10 && sizeof(struct ksym) == 16,
		       "packing in place needs the packed entry no larger than the loaded one");
	for (size_t i = 0; i < n; i++) {
		const struct ksym s = v[i];

		p[i] = (struct ksym_packed){ .lo = (uint32_t)s.addr, .name = s.name, .mod = s.mod };
	}
	return p;
}

/* Sort, keep the best name at each address, and hand the arrays over. */
static int finish(struct loader *l, struct kallsyms **ret)
{
	struct kallsyms *k;
	struct ksym_packed *packed, *shrunk;
	struct sortctx *c;
	size_t n = 0;

	if (l->n == 0)
		return l->lines && !l->any_nonzero ? -EPERM : -ENODATA;
	k = calloc(1, sizeof(*k));
	c = malloc(sizeof(*c));
	if (!k || !c) {
		free(k);
		free(c);
		return -ENOMEM;
	}
	c->names = &l->names;
	sort_ksyms(l->syms, l->n, c);
	free(c);
	for (size_t i = 0; i < l->nmods; i++)
		l->mods[i].start = l->mods[i].end = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct ksym s = l->syms[i];
		struct kmod *m = &l->mods[s.mod];

		/* The best name at an address sorts first: drop the others. */
		if (n > 0 && s.addr == l->syms[n - 1].addr)
			continue;
		l->syms[n++] = s;
		if (m->end == 0 || s.addr < m->start)
			m->start = s.addr;
		if (s.addr >= m->end)
			m->end = s.addr + 1; /* no symbol at UINT64_MAX */
	}
	/* Names of dropped aliases stay among the names: a few KiB, not a copy. */
	if (n > UINT32_MAX || count_runs(l->syms, n, &k->runs, &k->nruns) < 0) {
		kallsyms_free(k);
		return n > UINT32_MAX ? -E2BIG : -ENOMEM;
	}
	packed = pack(l->syms, n);
	shrunk = realloc(packed, n * sizeof(*packed));
	k->syms = shrunk ? shrunk : packed;
	k->n = n;
	toknames_seal(&l->names);
	k->names = l->names;
	l->names = (struct toknames){ 0 };
	k->mods = l->mods;
	k->nmods = l->nmods;
	k->modnames = l->modnames ? l->modnames : strdup("");
	k->modnames_len = l->mlen;
	l->syms = NULL;
	l->mods = NULL;
	l->modnames = NULL;
	if (!k->modnames) {
		kallsyms_free(k);
		return -ENOMEM;
	}
	*ret = k;
	return 0;
}

int kallsyms_load(const char *path, struct kallsyms **ret_k)
{
	int fd, r;

	if (!path || !ret_k)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = kallsyms_load_fd(fd, ret_k);
	close(fd);
	return r;
}

/* One pass over the file from its current position. */
static int read_pass(int fd, struct loader *l, char *buf)
{
	size_t have = 0;
	int r;

	for (;;) {
		ssize_t got = read(fd, buf + have, CHUNK + KALLSYMS_MAX_LINE - have);
		const char *p, *end;

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		have += (size_t)got;
		p = buf;
		end = buf + have;
		for (;;) {
			const char *eol = memchr(p, '\n', (size_t)(end - p));

			if (!eol) {
				if (got > 0)
					break;
				eol = end; /* last line without its newline */
				if (eol == p)
					break;
			}
			if (++l->lines > KALLSYMS_MAX_LINES)
				return -E2BIG;
			if ((size_t)(eol - p) > KALLSYMS_MAX_LINE)
				return -EINVAL;
			if ((r = parse_line(l, p, eol)) < 0)
				return r;
			p = eol < end ? eol + 1 : end;
		}
		have = (size_t)(end - p);
		if (have > KALLSYMS_MAX_LINE)
			return -EINVAL;
		memmove(buf, p, have);
		if (got == 0)
			return 0;
	}
}

int kallsyms_load_fd(int fd, struct kallsyms **ret_k)
{
	struct loader l = { 0 };
	char *buf = NULL;
	off_t start;
	int r;

	if (fd < 0 || !ret_k)
		return -EINVAL;
	/* mods[0] stands for the kernel image. */
	if ((r = growarr((void **)&l.mods, &l.mcap, 1, sizeof(*l.mods), 16)) < 0)
		goto out;
	l.nmods = 1;
	buf = malloc(CHUNK + KALLSYMS_MAX_LINE);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	/*
	 * Where the file can be read twice (/proc/kallsyms can), size first and
	 * allocate once: growing by doubling would, at its peak, hold twice the
	 * ~120k symbols of a distribution kernel, all for a moment at start-up.
	 */
	start = lseek(fd, 0, SEEK_CUR);
	if (start >= 0) {
		l.counting = true;
		r = read_pass(fd, &l, buf);
		l.counting = false;
		if (r == 0 && lseek(fd, start, SEEK_SET) == start) {
			/* The tokens numbered commonest first, the names' bytes reserved. */
			if (l.n && ((r = growarr((void **)&l.syms, &l.cap, l.n, sizeof(*l.syms), 1)) < 0 ||
				    (r = toknames_rank(&l.names)) < 0))
				goto out;
		} else if (lseek(fd, start, SEEK_SET) != start) {
			r = r ? r : -errno;
			goto out;
		}
		l.n = l.lines = l.pfx_len = 0;
		l.any_nonzero = false;
	}
	r = read_pass(fd, &l, buf);
	if (r == 0)
		r = finish(&l, ret_k);
out:
	free(buf);
	free(l.syms);
	toknames_free(&l.names);
	free(l.mods);
	free(l.modnames);
	return r;
}

/* The address of entry i, which lies in run r. */
static uint64_t addr_of(const struct kallsyms *k, size_t r, size_t i)
{
	return (uint64_t)k->runs[r].hi << 32 | k->syms[i].lo;
}

const char *kallsyms_lookup(struct kallsyms *k, uint64_t addr, const char **ret_module,
			    uint64_t *ret_off)
{
	const struct ksym_packed *s;
	size_t lo = 0, hi, r, end, i;
	uint64_t a;

	if (!k || k->n == 0)
		return NULL;
	/* The last run whose high bits are at most addr's. */
	hi = k->nruns;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((uint64_t)k->runs[mid].hi <= addr >> 32)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	r = lo - 1;
	end = r + 1 < k->nruns ? k->runs[r + 1].first : k->n;
	if ((uint64_t)k->runs[r].hi < addr >> 32) {
		i = end - 1; /* above the run: its last symbol, if near enough */
	} else {
		/* In the run, the last symbol at or below addr. */
		lo = k->runs[r].first;
		hi = end;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (k->syms[mid].lo <= (uint32_t)addr)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo > k->runs[r].first) {
			i = lo - 1;
		} else {
			/* Below the run's first symbol: the previous run's last, if any. */
			if (r == 0)
				return NULL;
			i = k->runs[r].first - 1;
			r--;
		}
	}
	s = &k->syms[i];
	a = addr_of(k, r, i);
	if (addr - a >= KALLSYMS_MAX_SYMBOL_SIZE || !toknames_get(&k->names, s->name, k->name,
								     sizeof(k->name)))
		return NULL;
	if (ret_module)
		*ret_module = s->mod ? k->modnames + k->mods[s->mod].name : NULL;
	if (ret_off)
		*ret_off = addr - a;
	return k->name;
}

int kallsyms_range(const struct kallsyms *k, const char *module, uint64_t *ret_start,
		   uint64_t *ret_end)
{
	const struct kmod *m = NULL;

	if (!k || !ret_start || !ret_end)
		return -EINVAL;
	if (!module) {
		m = &k->mods[0];
	} else {
		for (size_t i = 1; i < k->nmods && !m; i++)
			if (k->modnames + k->mods[i].name == module ||
			    strcmp(k->modnames + k->mods[i].name, module) == 0)
				m = &k->mods[i];
	}
	if (!m || m->end == 0)
		return -ENOENT;
	*ret_start = m->start;
	*ret_end = m->end;
	return 0;
}

size_t kallsyms_count(const struct kallsyms *k)
{
	return k ? k->n : 0;
}

size_t kallsyms_bytes(const struct kallsyms *k)
{
	if (!k)
		return 0;
	return k->n * sizeof(*k->syms) + k->nruns * sizeof(*k->runs) + toknames_bytes(&k->names) +
	       k->nmods * sizeof(*k->mods) + k->modnames_len;
}

void kallsyms_free(struct kallsyms *k)
{
	if (!k)
		return;
	free(k->syms);
	free(k->runs);
	toknames_free(&k->names);
	free(k->mods);
	free(k->modnames);
	free(k);
}
