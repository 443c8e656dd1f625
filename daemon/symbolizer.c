/*
 * symbolizer.c - map sampled frames to pprof mappings, addresses and
 * function names, with caches that outlive the processes sampled.
 *
 * Runs in the collector.  Three caches, all owned by struct symbolizer:
 *
 *  - processes, keyed by pid (chained on start_ns): the executable
 *    mappings of /proc/PID/maps, each pointing at a shared file or at a
 *    non-file mapping object;
 *  - files, parsed once by elfsym and found by build-id (the key BPF
 *    build-id frames use) or by the opened file's (dev, inode), checked
 *    against its size and times so a reused inode is not mistaken for the
 *    file it replaced;
 *  - non-file mappings ([vdso], JIT memory, unopenable files), interned per
 *    (path, start, end, offset) so identical ones are one pprof mapping.
 *
 * Files and non-file mappings are reference-counted by the process maps
 * that point at them and carry the generation they were last used in;
 * symbolizer_gc() frees what nothing references and nobody used lately.
 * That is what makes returned pointers valid until the next tick.
 *
 * Parsing a file is paid for from a credit of wall-clock time
 * (SYMBOLIZER_PARSE_PERCENT, SYMBOLIZER_PARSE_BURST_MS): a file met when
 * it is spent gets a file object without symbols, marked deferred, and is
 * parsed when a process that maps it is looked at again with credit left.
 */
#include "symbolizer.h"

#include "elfsym.h"
#include "kallsyms.h"
#include "procmaps.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BID_KEY 20

/* --- a small chained hash table ----------------------------------------- */

struct hnode {
	struct hnode *next;
	uint64_t hash;
};

struct htab {
	struct hnode **b;
	size_t mask; /* bucket count - 1; bucket count is a power of two */
	size_t n;
};

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t hash_bytes(const void *p, size_t len, uint64_t seed)
{
	const unsigned char *c = p;
	uint64_t h = seed ^ 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return mix64(h);
}

static int htab_init(struct htab *t)
{
	t->b = calloc(64, sizeof(*t->b));
	if (!t->b)
		return -ENOMEM;
	t->mask = 63;
	t->n = 0;
	return 0;
}

static void htab_insert(struct htab *t, struct hnode *node, uint64_t hash)
{
	size_t i;

	/* Grow at load 1; if that fails the chains just get longer. */
	if (t->n + 1 > t->mask + 1) {
		size_t nb = (t->mask + 1) * 2;
		struct hnode **b = calloc(nb, sizeof(*b));

		if (b) {
			for (size_t j = 0; j <= t->mask; j++) {
				struct hnode *h = t->b[j], *next;

				for (; h; h = next) {
					next = h->next;
					h->next = b[h->hash & (nb - 1)];
					b[h->hash & (nb - 1)] = h;
				}
			}
			free(t->b);
			t->b = b;
			t->mask = nb - 1;
		}
	}
	node->hash = hash;
	i = hash & t->mask;
	node->next = t->b[i];
	t->b[i] = node;
	t->n++;
}

static void htab_remove(struct htab *t, struct hnode *node)
{
	struct hnode **pp = &t->b[node->hash & t->mask];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == node) {
			*pp = node->next;
			t->n--;
			return;
		}
	}
}

static struct hnode *htab_first(const struct htab *t, uint64_t hash)
{
	return t->b[hash & t->mask];
}

/* --- objects ------------------------------------------------------------ */

struct sym_alias;

struct sym_file {
	struct hnode bid_node; /* in s->by_bid while in_bid */
	struct sym_file *next; /* s->files */
	struct sym_alias *aliases;
	struct elfsym *elf;    /* NULL: not parsed (not ELF, corrupt, budget) */
	size_t elf_bytes;
	size_t refs;           /* process mappings pointing here */
	uint64_t last_used;
	bool in_bid, placeholder;
	bool deferred;         /* not parsed yet: over the parse-time budget */
	uint8_t bid_key[BID_KEY];
	char *path;
	char build_id[2 * ELFSYM_MAX_BUILD_ID + 1];
	struct sym_mapping mapping;
};

/* An opened file's identity, pointing at the sym_file parsed from it. */
struct sym_alias {
	struct hnode node;     /* in s->by_dev */
	struct sym_alias *next; /* file->aliases */
	struct sym_file *file;
	uint64_t dev, ino, size;
	struct timespec mtime, ctime;
};

struct sym_anon {
	struct hnode node;     /* in s->by_anon */
	struct sym_anon *next; /* s->anons */
	size_t refs;
	uint64_t last_used;
	bool vdso;             /* named from the collector's own vDSO */
	char *path;
	struct sym_mapping mapping;
};

struct sym_pmap {
	uint64_t start, end, offset;
	struct sym_file *file; /* file-backed and opened */
	struct sym_anon *anon; /* otherwise (NULL if over the limit) */
};

struct sym_proc {
	struct hnode node; /* in s->procs, hashed by pid */
	uint32_t pid;
	int err;           /* result of the first note */
	bool gone;         /* maps can no longer be re-read */
	uint64_t start_ns;
	uint64_t last_used;
	uint64_t reread_gen;
	size_t n;
	struct sym_pmap *maps; /* sorted by start */
};

struct sym_kmod {
	struct sym_kmod *next;
	const char *module; /* owned by s->ksyms */
	struct sym_mapping mapping;
};

struct symbolizer {
	uint64_t gen;
	struct htab procs, by_bid, by_dev, by_anon;
	size_t nprocs, nfiles, nanon;
	struct sym_file *files;
	struct sym_anon *anons;
	uint64_t elf_bytes;
	struct kallsyms *ksyms;
	char kernel_build_id[2 * ELFSYM_MAX_BUILD_ID + 1];
	struct sym_mapping kmap;
	struct sym_kmod *kmods;
	struct elfsym *vdso;
	uint64_t vdso_size;
	uint64_t ns_per_tick;
	struct symbolizer_ops ops; /* how to reach processes (the monitor, in vigild) */
	/* Parse time: a credit refilled with wall-clock time (symbolizer.h). */
	int64_t parse_credit_ns, parse_burst_ns;
	uint64_t parse_last_ns;
	unsigned parse_percent;
};

static void hex(char *out, const uint8_t *b, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * len] = '\0';
}

/* --- files -------------------------------------------------------------- */

static struct sym_file *bid_find(struct symbolizer *s, const uint8_t key[BID_KEY])
{
	uint64_t h = hash_bytes(key, BID_KEY, 0);

	for (struct hnode *n = htab_first(&s->by_bid, h); n; n = n->next) {
		struct sym_file *f = container_of(n, struct sym_file, bid_node);

		if (n->hash == h && memcmp(f->bid_key, key, BID_KEY) == 0)
			return f;
	}
	return NULL;
}

static void bid_insert(struct symbolizer *s, struct sym_file *f)
{
	struct sym_file *old = bid_find(s, f->bid_key);

	if (old) {
		htab_remove(&s->by_bid, &old->bid_node);
		old->in_bid = false;
	}
	htab_insert(&s->by_bid, &f->bid_node, hash_bytes(f->bid_key, BID_KEY, 0));
	f->in_bid = true;
}

static uint64_t dev_hash(uint64_t dev, uint64_t ino)
{
	return mix64(ino ^ mix64(dev));
}

static struct sym_alias *alias_find(struct symbolizer *s, uint64_t dev, uint64_t ino)
{
	uint64_t h = dev_hash(dev, ino);

	for (struct hnode *n = htab_first(&s->by_dev, h); n; n = n->next) {
		struct sym_alias *a = container_of(n, struct sym_alias, node);

		if (n->hash == h && a->dev == dev && a->ino == ino)
			return a;
	}
	return NULL;
}

static bool alias_fresh(const struct sym_alias *a, const struct stat *st)
{
	return a->size == (uint64_t)st->st_size &&
	       a->mtime.tv_sec == st->st_mtim.tv_sec && a->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       a->ctime.tv_sec == st->st_ctim.tv_sec && a->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static void alias_unlink(struct symbolizer *s, struct sym_alias *a)
{
	struct sym_alias **pp = &a->file->aliases;

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	}
	htab_remove(&s->by_dev, &a->node);
	free(a);
}

static void alias_add(struct symbolizer *s, struct sym_file *f, const struct stat *st)
{
	struct sym_alias *a = calloc(1, sizeof(*a));

	if (!a)
		return; /* only costs a re-parse later */
	a->file = f;
	a->dev = st->st_dev;
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->mtime = st->st_mtim;
	a->ctime = st->st_ctim;
	a->next = f->aliases;
	f->aliases = a;
	htab_insert(&s->by_dev, &a->node, dev_hash(a->dev, a->ino));
}

static struct sym_file *file_new(struct symbolizer *s, const char *path)
{
	struct sym_file *f;

	if (s->nfiles >= SYMBOLIZER_MAX_FILES)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->path = strdup(path);
	if (!f->path) {
		free(f);
		return NULL;
	}
	f->last_used = s->gen;
	f->mapping.path = f->path;
	f->mapping.build_id = f->build_id;
	f->next = s->files;
	s->files = f;
	s->nfiles++;
	return f;
}

static void file_destroy(struct symbolizer *s, struct sym_file *f)
{
	while (f->aliases)
		alias_unlink(s, f->aliases);
	if (f->in_bid)
		htab_remove(&s->by_bid, &f->bid_node);
	s->elf_bytes -= f->elf_bytes;
	elfsym_free(f->elf);
	free(f->path);
	free(f);
	s->nfiles--;
}

/* A build-id frame whose file is unknown: keep the build-id for later tools. */
static struct sym_file *placeholder_get(struct symbolizer *s, const uint8_t key[BID_KEY])
{
	struct sym_file *f = file_new(s, "");

	if (!f)
		return NULL;
	f->placeholder = true;
	memcpy(f->bid_key, key, BID_KEY);
	hex(f->build_id, key, BID_KEY);
	f->mapping.limit = UINT64_MAX;
	bid_insert(s, f);
	return f;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* May a file be parsed now?  Credits the time since the last question. */
static bool parse_allowed(struct symbolizer *s)
{
	uint64_t now = mono_ns();

	if (now > s->parse_last_ns) {
		uint64_t add = (now - s->parse_last_ns) / 100 * s->parse_percent;

		if (add >= (uint64_t)(s->parse_burst_ns - s->parse_credit_ns))
			s->parse_credit_ns = s->parse_burst_ns;
		else
			s->parse_credit_ns += (int64_t)add;
		s->parse_last_ns = now;
	}
	return s->parse_credit_ns > 0;
}

/* Parse the file open at fd, paying for the time it takes; NULL if it failed. */
static struct elfsym *parse_paid(struct symbolizer *s, int fd)
{
	struct elfsym *e = NULL;
	uint64_t t0 = mono_ns();

	(void)elfsym_open_fd(fd, &e); /* failure: a file without symbols */
	s->parse_credit_ns -= (int64_t)(mono_ns() - t0);
	return e;
}

/* Give f what was parsed from its file: build-id, and symbols within budget. */
static void file_fill(struct symbolizer *s, struct sym_file *f, struct elfsym *e)
{
	const uint8_t *bid;
	size_t bid_len = 0;

	f->deferred = false;
	bid = elfsym_build_id(e, &bid_len);
	if (bid) {
		hex(f->build_id, bid, bid_len);
		if (bid_len <= BID_KEY) {
			memcpy(f->bid_key, bid, bid_len);
			bid_insert(s, f); /* replaces a placeholder */
		}
	}
	if (e && elfsym_symbol_count(e) > 0 &&
	    s->elf_bytes + elfsym_mem_usage(e) <= SYMBOLIZER_ELF_BUDGET) {
		f->elf = e;
		f->elf_bytes = elfsym_mem_usage(e);
		s->elf_bytes += f->elf_bytes;
	} else {
		elfsym_free(e);
	}
}

/* The shared file object for an executable file mapping, or NULL. */
static struct sym_file *file_get(struct symbolizer *s, uint32_t pid, const struct procmap *mp)
{
	struct sym_alias *a;
	struct sym_file *f, *known = NULL;
	struct elfsym *e = NULL;
	const uint8_t *bid;
	size_t bid_len = 0;
	struct stat st;
	int fd;

	fd = s->ops.open_file(s->ops.ctx, pid, mp, &st);
	if (fd < 0)
		return NULL;
	a = alias_find(s, st.st_dev, st.st_ino);
	if (a && alias_fresh(a, &st)) {
		if (a->file->deferred && parse_allowed(s))
			file_fill(s, a->file, parse_paid(s, fd));
		close(fd);
		return a->file;
	}
	if (a)
		alias_unlink(s, a); /* the inode now holds another file */
	if (s->nfiles >= SYMBOLIZER_MAX_FILES) {
		close(fd);
		return NULL;
	}
	if (!parse_allowed(s)) {
		/* Later: a file object now, so that frames keep file offsets. */
		close(fd);
		f = file_new(s, mp->path);
		if (!f)
			return NULL;
		f->deferred = true;
		f->mapping.limit = (uint64_t)st.st_size;
		alias_add(s, f, &st);
		return f;
	}
	e = parse_paid(s, fd);
	close(fd);

	bid = elfsym_build_id(e, &bid_len);
	if (bid && bid_len <= BID_KEY) {
		uint8_t key[BID_KEY] = { 0 };

		memcpy(key, bid, bid_len);
		known = bid_find(s, key);
		if (known && !known->placeholder && !known->deferred) {
			/* Same binary seen elsewhere (another container...). */
			elfsym_free(e);
			alias_add(s, known, &st);
			return known;
		}
	}
	f = file_new(s, mp->path);
	if (!f) {
		elfsym_free(e);
		return NULL;
	}
	f->mapping.limit = (uint64_t)st.st_size;
	file_fill(s, f, e);
	alias_add(s, f, &st);
	return f;
}

static const char *file_symbol(const struct sym_file *f, uint64_t file_offset)
{
	uint64_t vaddr;

	if (!f->elf || elfsym_offset_to_vaddr(f->elf, file_offset, &vaddr) < 0)
		return NULL;
	return elfsym_lookup(f->elf, vaddr, NULL);
}

/* --- non-file mappings --------------------------------------------------- */

static uint64_t anon_hash(const char *path, uint64_t start, uint64_t end, uint64_t offset)
{
	return hash_bytes(path, strlen(path), mix64(start) ^ mix64(end + 1) ^ mix64(offset + 2));
}

static struct sym_anon *anon_get(struct symbolizer *s, const struct procmap *mp)
{
	uint64_t h = anon_hash(mp->path, mp->start, mp->end, mp->offset);
	struct sym_anon *a;

	for (struct hnode *n = htab_first(&s->by_anon, h); n; n = n->next) {
		a = container_of(n, struct sym_anon, node);
		if (n->hash == h && a->mapping.start == mp->start && a->mapping.limit == mp->end &&
		    a->mapping.file_offset == mp->offset && strcmp(a->path, mp->path) == 0)
			return a;
	}
	if (s->nanon >= SYMBOLIZER_MAX_ANON)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->path = strdup(mp->path);
	if (!a->path) {
		free(a);
		return NULL;
	}
	a->last_used = s->gen;
	a->mapping = (struct sym_mapping){
		.path = a->path, .build_id = "",
		.start = mp->start, .limit = mp->end, .file_offset = mp->offset,
	};
	a->vdso = s->vdso && strcmp(mp->path, "[vdso]") == 0 && mp->end - mp->start == s->vdso_size;
	a->next = s->anons;
	s->anons = a;
	s->nanon++;
	htab_insert(&s->by_anon, &a->node, h);
	return a;
}

static void anon_destroy(struct symbolizer *s, struct sym_anon *a)
{
	htab_remove(&s->by_anon, &a->node);
	free(a->path);
	free(a);
	s->nanon--;
}

/* --- processes ----------------------------------------------------------- */

static uint64_t pid_hash(uint32_t pid)
{
	return mix64(pid);
}

static struct sym_proc *proc_find(struct symbolizer *s, uint32_t pid, uint64_t start_ns)
{
	uint64_t h = pid_hash(pid);

	for (struct hnode *n = htab_first(&s->procs, h); n; n = n->next) {
		struct sym_proc *p = container_of(n, struct sym_proc, node);

		if (p->pid == pid && p->start_ns == start_ns)
			return p;
	}
	return NULL;
}

static void pmaps_release(struct sym_pmap *maps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (maps[i].file)
			maps[i].file->refs--;
		if (maps[i].anon)
			maps[i].anon->refs--;
	}
	free(maps);
}

/* Does /proc/PID/stat's start time match start_ns (both since boot)? */
static int check_start(const struct symbolizer *s, uint32_t pid, uint64_t start_ns)
{
	char path[64], buf[1024];
	const char *p, *end;
	unsigned long long ticks;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* comm may contain anything, even ") ": the fields follow the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	end = buf + n;
	/* ") S ppid ..." : starttime is field 22, the 20th after ")". */
	for (int field = 2; field < 22 && p; field++) {
		p = memchr(p + 1, ' ', (size_t)(end - p - 1));
	}
	if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
		return -EINVAL;
	return ticks == start_ns / s->ns_per_tick ? 0 : -ESRCH;
}

/* (Re-)read a process's maps and swap them in. */
static int proc_load(struct symbolizer *s, struct sym_proc *p)
{
	struct procmaps *m = NULL;
	struct sym_pmap *maps = NULL;
	size_t n = 0, k = 0;
	int fd, r;

	fd = s->ops.open_maps(s->ops.ctx, p->pid);
	if (fd < 0)
		return fd;
	r = procmaps_read_fd(fd, &m);
	close(fd);
	if (r < 0)
		return r;
	if (m->n == 0) { /* zombie: its memory is gone */
		r = -ESRCH;
		goto out;
	}
	/* After reading maps: if pid still names the process, they were its maps. */
	if (p->start_ns && (r = check_start(s, p->pid, p->start_ns)) < 0)
		goto out;
	for (size_t i = 0; i < m->n; i++)
		if (m->maps[i].prot & PROT_EXEC)
			n++;
	if (n > SYMBOLIZER_MAX_PROC_MAPS)
		n = SYMBOLIZER_MAX_PROC_MAPS;
	if (n) {
		maps = calloc(n, sizeof(*maps));
		if (!maps) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < m->n && k < n; i++) {
		const struct procmap *mp = &m->maps[i];
		struct sym_pmap *pm;

		if (!(mp->prot & PROT_EXEC))
			continue;
		pm = &maps[k++];
		pm->start = mp->start;
		pm->end = mp->end;
		pm->offset = mp->offset;
		if (mp->inode && mp->path[0] == '/')
			pm->file = file_get(s, p->pid, mp);
		if (pm->file) {
			pm->file->refs++;
			pm->file->last_used = s->gen;
		} else {
			pm->anon = anon_get(s, mp);
			if (pm->anon) {
				pm->anon->refs++;
				pm->anon->last_used = s->gen;
			}
		}
	}
	pmaps_release(p->maps, p->n);
	p->maps = maps;
	p->n = k;
	r = 0;
out:
	procmaps_free(m);
	return r;
}

static void proc_destroy(struct symbolizer *s, struct sym_proc *p)
{
	htab_remove(&s->procs, &p->node);
	pmaps_release(p->maps, p->n);
	free(p);
	s->nprocs--;
}

/* One extra read of the maps per process and generation. */
static void proc_maybe_reread(struct symbolizer *s, struct sym_proc *p)
{
	int r;

	if (p->gone || p->reread_gen == s->gen)
		return;
	p->reread_gen = s->gen;
	r = proc_load(s, p);
	if (r == -ESRCH)
		p->gone = true;
}

static const struct sym_pmap *pmap_find(const struct sym_proc *p, uint64_t addr)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->maps[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || addr >= p->maps[lo - 1].end)
		return NULL;
	return &p->maps[lo - 1];
}

/* --- public API ---------------------------------------------------------- */

static void load_kernel_build_id(struct symbolizer *s)
{
	uint8_t buf[4096];
	size_t off = 0;
	ssize_t n;
	int fd;

	fd = open("/sys/kernel/notes", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	while (n > 0 && off + 12 <= (size_t)n) {
		uint32_t namesz, descsz, type;
		size_t name_off = off + 12, desc_off;

		memcpy(&namesz, buf + off, 4);
		memcpy(&descsz, buf + off + 4, 4);
		memcpy(&type, buf + off + 8, 4);
		if (namesz > 64 || descsz > 4096)
			return;
		desc_off = name_off + ((namesz + 3u) & ~3u);
		if (desc_off + descsz > (size_t)n)
			return;
		if (type == 3 /* NT_GNU_BUILD_ID */ && namesz == 4 &&
		    memcmp(buf + name_off, "GNU", 4) == 0 && descsz > 0 &&
		    descsz <= ELFSYM_MAX_BUILD_ID) {
			hex(s->kernel_build_id, buf + desc_off, descsz);
			return;
		}
		off = desc_off + ((descsz + 3u) & ~3u);
	}
}

/* Our own vDSO names [vdso] frames of processes with the same one. */
static void load_vdso(struct symbolizer *s)
{
	uintptr_t base = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
	struct procmaps *m;
	const struct procmap *mp;

	if (!base || procmaps_read(getpid(), &m) < 0)
		return;
	mp = procmaps_find(m, base);
	if (mp && mp->start == base && strcmp(mp->path, "[vdso]") == 0 &&
	    elfsym_open_mem((const void *)base, mp->end - mp->start, &s->vdso) == 0)
		s->vdso_size = mp->end - mp->start;
	procmaps_free(m);
}

static int symbolizer_init(const struct symbolizer_ops *ops, struct kallsyms *ksyms,
			   struct symbolizer **ret_s)
{
	struct symbolizer *s;
	long tck;

	s = calloc(1, sizeof(*s));
	if (!s) {
		kallsyms_free(ksyms);
		return -ENOMEM;
	}
	s->gen = 1;
	s->ops = *ops;
	s->ksyms = ksyms;
	if (htab_init(&s->procs) < 0 || htab_init(&s->by_bid) < 0 ||
	    htab_init(&s->by_dev) < 0 || htab_init(&s->by_anon) < 0) {
		symbolizer_free(s);
		return -ENOMEM;
	}
	symbolizer_set_parse_budget(s, SYMBOLIZER_PARSE_PERCENT, SYMBOLIZER_PARSE_BURST_MS);
	tck = sysconf(_SC_CLK_TCK);
	s->ns_per_tick = tck > 0 ? 1000000000ull / (uint64_t)tck : 10000000ull;

	s->kmap.path = "[kernel.kallsyms]";
	s->kmap.build_id = s->kernel_build_id;
	s->kmap.limit = UINT64_MAX;
	load_kernel_build_id(s);
	if (s->ksyms) {
		uint64_t start, end;

		if (kallsyms_range(s->ksyms, NULL, &start, &end) == 0) {
			s->kmap.start = start;
			s->kmap.limit = end;
		}
	}
	load_vdso(s);
	*ret_s = s;
	return 0;
}

int symbolizer_new_ops(const struct symbolizer_ops *ops, int kallsyms_fd, struct symbolizer **ret_s)
{
	struct kallsyms *k = NULL;

	if (!ret_s || !ops || !ops->open_maps || !ops->open_file)
		return -EINVAL;
	if (kallsyms_fd >= 0 && kallsyms_load_fd(kallsyms_fd, &k) < 0)
		k = NULL;
	return symbolizer_init(ops, k, ret_s);
}

int symbolizer_note_process(struct symbolizer *s, uint32_t pid, uint64_t start_ns)
{
	struct sym_proc *p;
	int r;

	if (!s || pid == 0 || pid > INT32_MAX)
		return -EINVAL;
	p = proc_find(s, pid, start_ns);
	if (p) {
		p->last_used = s->gen;
		return p->err;
	}
	if (s->nprocs >= SYMBOLIZER_MAX_PROCESSES)
		return -ENOSPC;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	p->start_ns = start_ns;
	p->last_used = s->gen;
	r = proc_load(s, p);
	if (r == -ENOMEM) {
		free(p);
		return r;
	}
	/* Remember failures too, so that every sample does not retry. */
	p->err = r;
	p->gone = r == -ESRCH;
	htab_insert(&s->procs, &p->node, pid_hash(pid));
	s->nprocs++;
	return r;
}

void symbolizer_forget_process(struct symbolizer *s, uint32_t pid)
{
	struct hnode *n, *next;

	if (!s)
		return;
	for (n = htab_first(&s->procs, pid_hash(pid)); n; n = next) {
		struct sym_proc *p = container_of(n, struct sym_proc, node);

		next = n->next;
		if (p->pid == pid)
			proc_destroy(s, p);
	}
}

static void frame_from_pmap(struct symbolizer *s, const struct sym_pmap *pm, uint64_t ip,
			    uint64_t look, struct sym_frame *f)
{
	if (pm->file) {
		struct sym_file *file = pm->file;

		file->last_used = s->gen;
		f->mapping = &file->mapping;
		f->address = ip - pm->start + pm->offset;
		f->function = file_symbol(file, look - pm->start + pm->offset);
	} else if (pm->anon) {
		struct sym_anon *a = pm->anon;

		a->last_used = s->gen;
		f->mapping = &a->mapping;
		if (a->vdso) {
			uint64_t vaddr;

			if (elfsym_offset_to_vaddr(s->vdso, look - pm->start + pm->offset, &vaddr) == 0)
				f->function = elfsym_lookup(s->vdso, vaddr, NULL);
		}
	}
}

int symbolizer_user_ip(struct symbolizer *s, uint32_t pid, uint64_t start_ns, uint64_t ip,
		       bool is_return_addr, struct sym_frame *ret)
{
	struct sym_frame f = { .mapping = NULL, .address = ip, .function = NULL };
	const struct sym_pmap *pm;
	struct sym_proc *p;
	uint64_t look = is_return_addr && ip ? ip - 1 : ip;

	if (!s || !ret)
		return -EINVAL;
	p = proc_find(s, pid, start_ns);
	if (p) {
		p->last_used = s->gen;
		pm = pmap_find(p, look);
		/* Not mapped when noted, or mapped from a file not parsed yet. */
		if (!pm || (pm->file && pm->file->deferred && !p->gone &&
			    p->reread_gen != s->gen && parse_allowed(s))) {
			proc_maybe_reread(s, p);
			pm = pmap_find(p, look);
		}
		if (pm)
			frame_from_pmap(s, pm, ip, look, &f);
	}
	*ret = f;
	return 0;
}

int symbolizer_user_bid(struct symbolizer *s, uint32_t pid, uint64_t start_ns,
			const uint8_t build_id[20], uint64_t file_offset, bool is_return_addr,
			struct sym_frame *ret)
{
	struct sym_frame f = { .mapping = NULL, .address = file_offset, .function = NULL };
	struct sym_proc *p;
	struct sym_file *file;

	if (!s || !build_id || !ret)
		return -EINVAL;
	p = proc_find(s, pid, start_ns);
	if (p)
		p->last_used = s->gen;
	file = bid_find(s, build_id);
	if ((!file || file->placeholder) && p) {
		proc_maybe_reread(s, p);
		file = bid_find(s, build_id);
	}
	if (!file)
		file = placeholder_get(s, build_id);
	if (file) {
		file->last_used = s->gen;
		f.mapping = &file->mapping;
		f.function = file_symbol(file, is_return_addr && file_offset ? file_offset - 1
									     : file_offset);
	}
	*ret = f;
	return 0;
}

static const struct sym_mapping *kmod_mapping(struct symbolizer *s, const char *module)
{
	struct sym_kmod *m;
	uint64_t start = 0, end = UINT64_MAX;

	for (m = s->kmods; m; m = m->next)
		if (m->module == module)
			return &m->mapping;
	m = calloc(1, sizeof(*m));
	if (!m)
		return &s->kmap;
	(void)kallsyms_range(s->ksyms, module, &start, &end);
	m->module = module;
	m->mapping = (struct sym_mapping){
		.path = module, .build_id = "", .start = start, .limit = end,
	};
	m->next = s->kmods;
	s->kmods = m;
	return &m->mapping;
}

int symbolizer_kernel(struct symbolizer *s, uint64_t ip, bool is_return_addr,
		      struct sym_frame *ret)
{
	struct sym_frame f = { .mapping = NULL, .address = ip, .function = NULL };
	const char *module = NULL;

	if (!s || !ret)
		return -EINVAL;
	f.mapping = &s->kmap;
	f.function = kallsyms_lookup(s->ksyms, is_return_addr && ip ? ip - 1 : ip, &module, NULL);
	if (f.function && module)
		f.mapping = kmod_mapping(s, module);
	*ret = f;
	return 0;
}

static bool stale(uint64_t last_used, uint64_t now_gen)
{
	return now_gen >= last_used && now_gen - last_used >= SYMBOLIZER_KEEP_GENERATIONS;
}

void symbolizer_gc(struct symbolizer *s, uint64_t now_gen)
{
	if (!s)
		return;
	for (size_t i = 0; i <= s->procs.mask; i++) {
		struct hnode *n, *next;

		for (n = s->procs.b[i]; n; n = next) {
			struct sym_proc *p = container_of(n, struct sym_proc, node);

			next = n->next;
			if (stale(p->last_used, now_gen))
				proc_destroy(s, p);
		}
	}
	for (struct sym_file **pp = &s->files; *pp;) {
		struct sym_file *f = *pp;

		if (f->refs == 0 && stale(f->last_used, now_gen)) {
			*pp = f->next;
			file_destroy(s, f);
		} else {
			pp = &f->next;
		}
	}
	for (struct sym_anon **pp = &s->anons; *pp;) {
		struct sym_anon *a = *pp;

		if (a->refs == 0 && stale(a->last_used, now_gen)) {
			*pp = a->next;
			anon_destroy(s, a);
		} else {
			pp = &a->next;
		}
	}
}

void symbolizer_tick(struct symbolizer *s)
{
	if (!s)
		return;
	s->gen++;
	symbolizer_gc(s, s->gen);
}

void symbolizer_get_stats(const struct symbolizer *s, struct symbolizer_stats *ret)
{
	struct symbolizer_stats st = { 0 };

	if (!s || !ret)
		return;
	st.processes = s->nprocs;
	st.files = s->nfiles;
	for (const struct sym_file *f = s->files; f; f = f->next) {
		if (f->elf)
			st.files_with_symbols++;
		if (f->deferred)
			st.files_deferred++;
	}
	st.anon_mappings = s->nanon;
	st.kernel_symbols = kallsyms_count(s->ksyms);
	st.elf_bytes = s->elf_bytes;
	st.generation = s->gen;
	*ret = st;
}

void symbolizer_set_parse_budget(struct symbolizer *s, unsigned percent, unsigned burst_ms)
{
	if (!s)
		return;
	s->parse_percent = percent > 100 ? 100 : percent;
	s->parse_burst_ns = (int64_t)burst_ms * 1000000;
	s->parse_credit_ns = s->parse_burst_ns;
	s->parse_last_ns = mono_ns();
}

void symbolizer_free(struct symbolizer *s)
{
	if (!s)
		return;
	if (s->procs.b) {
		for (size_t i = 0; i <= s->procs.mask; i++) {
			struct hnode *n, *next;

			for (n = s->procs.b[i]; n; n = next) {
				next = n->next;
				proc_destroy(s, container_of(n, struct sym_proc, node));
			}
		}
	}
	while (s->files) {
		struct sym_file *f = s->files;

		s->files = f->next;
		file_destroy(s, f);
	}
	while (s->anons) {
		struct sym_anon *a = s->anons;

		s->anons = a->next;
		anon_destroy(s, a);
	}
	while (s->kmods) {
		struct sym_kmod *m = s->kmods;

		s->kmods = m->next;
		free(m);
	}
	kallsyms_free(s->ksyms);
	elfsym_free(s->vdso);
	free(s->procs.b);
	free(s->by_bid.b);
	free(s->by_dev.b);
	free(s->by_anon.b);
	free(s);
}
