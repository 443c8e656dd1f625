/*
 * symbolizer.c - map sampled frames to pprof mappings, addresses and
 * function names, with caches that outlive the processes sampled.
 *
 * Runs in the collector.  Three caches, all owned by struct symbolizer:
 *
 *  - processes, keyed by pid (chained on start_ns): the executable
 *    mappings of /proc/PID/maps, each pointing at a shared file or at a
 *    non-file mapping object;
 *  - files, found by the opened file's (dev, inode), checked against its
 *    size and times so a reused inode is not mistaken for the file it
 *    replaced, and parsed once by elfsym; files whose parse gave the same
 *    result share it.  A build-id (what BPF build-id frames carry) is
 *    only a file's claim: it names frames from the files of the sampled
 *    process itself, and a global table keyed by it (first come, first
 *    kept) serves only processes whose own files do not tell;
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

#include "cfi.h"
#include "elfsym.h"
#include "hexdigit.h"
#include "kallsyms.h"
#include "mapfile.h"
#include "procmaps.h"
#include "procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lzma.h>
#include <zlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
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

/*
 * Parsed symbols, shared by the files whose parse gave exactly the same
 * result (elfsym_same: build-id, segments, every symbol and name), such as
 * one binary in several containers: each is still its own file, with its
 * own path, but the symbols are held once.  Sharing what compares equal
 * changes no answer, so no file can name another's frames through it.
 */
struct sym_elf {
	struct hnode node;     /* in s->by_content */
	struct elfsym *elf;
	size_t bytes;          /* elfsym_mem_usage(), counted once in s->elf_bytes */
	size_t refs;           /* files using it */
};

/*
 * One file, as opened: its identity is (dev, inode), checked against its
 * size and times so that a reused inode is not mistaken for the file it
 * replaced.  Its build-id is what its note claims, and anyone can write
 * any note: it is never a reason to take one file for another.
 */
struct sym_file {
	struct hnode dev_node; /* in s->by_dev while in_dev */
	struct hnode bid_node; /* in s->by_bid (or s->by_ph, placeholders) while in_bid */
	struct sym_file *next; /* s->files */
	struct sym_elf *syms;  /* NULL: no symbols (not ELF, corrupt, budget, deferred) */
	struct sym_elf *dsyms; /* its separate debug file's, by build-id (NULL: none) */
	size_t refs;           /* process mappings pointing here */
	uint64_t last_used;
	/*
	 * Its CFI, for unwinding (symbolizer_unwind_map): read when the file
	 * is parsed, and shared (cfi->refs) with the files of the same
	 * build-id whose CFI is byte for byte the same (one binary in several
	 * containers: each its own file, the CFI held once); the bytes are
	 * dropped by the LRU of SYMBOLIZER_CFI_BUDGET (cfi kept, hdr/ehf NULL,
	 * cfi->used its clock) and read again when needed, from the file that
	 * needs them, into a CFI of its own.
	 */
	struct cfi *cfi;
	uint64_t cfi_retry_gen; /* generation of its last reload attempt */
	bool in_dev, in_bid, has_bid, placeholder;
	bool deferred;         /* not parsed yet: over the parse-time budget */
	uint8_t rank;          /* who could have written it: file_rank() */
	uint8_t bid_key[BID_KEY];
	uint64_t dev, ino, size;
	struct timespec mtime, ctime;
	char *path;
	char build_id[2 * ELFSYM_MAX_BUILD_ID + 1];
	struct sym_mapping mapping;
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
	uint64_t inode;        /* as maps showed it, to ask for the file again */
	uint32_t dev_major, dev_minor;
	struct sym_file *file; /* file-backed and opened */
	struct sym_anon *anon; /* otherwise (NULL if over the limit) */
	bool gone;             /* missing from the maps last read: kept until the next tick */
};

struct sym_proc {
	struct hnode node; /* in s->procs, hashed by pid */
	uint32_t pid;
	int err;           /* result of the first note */
	bool gone;         /* maps can no longer be re-read */
	bool execed;       /* exec'd since its maps were read: unknown until noted again */
	uint64_t start_ns;
	uint64_t last_used;
	uint64_t reread_gen;
	uint64_t read_ns; /* CLOCK_BOOTTIME when the last read of its maps began (0: none) */
	uint64_t maps_seq; /* s->maps_seq when its mappings last changed (proc_index) */
	uint64_t stack_lo, stack_hi; /* its [stack] at the last read (0, 0: none) */
	uint64_t futile_gen;         /* generation of the last re-read not asked (reread_futile) */
	size_t n;
	struct sym_pmap *maps; /* sorted by start */
	/*
	 * The distinct files of maps that have a build-id, sorted by it, for
	 * the process's build-id frames.  unsettled: one of its files was not
	 * parsed yet (deferred) when this was built, so its build-id is not
	 * known; rebuilt when s->fills moved on since (index_fills).
	 */
	struct sym_file **bfiles;
	size_t nbfiles;
	bool unsettled;
	uint64_t index_fills;
};

struct sym_kmod {
	struct sym_kmod *next;
	const char *module; /* owned by s->ksyms */
	struct sym_mapping mapping;
};

struct symbolizer {
	uint64_t gen;
	uint64_t maps_seq; /* changes of any process's mappings so far (symbolizer_maps_version) */
	/*
	 * CLOCK_BOOTTIME when the sample being unwound was taken
	 * (symbolizer_sample_time; 0: none, as at a flush): a miss by it
	 * re-reads only maps read before it.
	 */
	uint64_t sample_ns;
	struct htab procs, by_bid, by_ph, by_dev, by_anon, by_content;
	size_t nprocs, nfiles, nanon, nelfs;
	struct sym_file *files;
	struct sym_anon *anons;
	uint64_t elf_bytes;
	uint64_t fills;       /* files parsed (or found unparsable) so far */
	uint64_t parse_ns;    /* wall time those parses took */
	uint64_t deferrals;   /* files met with the budget spent (each time) */
	uint64_t debug_files, debug_refused; /* separate debug files read, refused */
	uint64_t minidebug_read, minidebug_refused; /* .gnu_debugdata sections */
	uint64_t seed;        /* of the content and build-id hashes: random, so not collided on purpose */
	struct kallsyms *ksyms;
	char kernel_build_id[2 * ELFSYM_MAX_BUILD_ID + 1];
	struct sym_mapping kmap;
	struct sym_kmod *kmods;
	struct elfsym *vdso;
	uint64_t vdso_size;
	struct cfi *vdso_cfi;
	/* Unwinding's CFI: bytes held, the LRU's clock, and what it did. */
	uint64_t cfi_bytes, cfi_clock;
	uint64_t cfi_mapped;        /* of cfi_bytes, mapped from files (cfi.h) */
	uint64_t cfi_read, cfi_evicted, cfi_reloaded, cfi_shared;
	/* What the bounds did: entries aged out, and new ones refused at a limit. */
	uint64_t procs_aged, files_aged, anon_aged;
	uint64_t procs_refused, files_refused, anon_refused;
	uint64_t maps_reads, exec_reads_saved, reads_after_sample, reads_futile;
	uint64_t ns_per_tick;
	struct symbolizer_ops ops; /* how to reach processes (the monitor, in vigild) */
	/* Parse time: a credit refilled with wall-clock time (symbolizer.h). */
	int64_t parse_credit_ns, parse_burst_ns;
	uint64_t parse_last_ns;
	unsigned parse_percent;
};


/* --- shared symbols ------------------------------------------------------ */

/* Files whose hash matches a new parse and that are compared with it, at most. */
#define SHARE_PROBES 4

/*
 * The symbols of a fresh parse (taken over: freed or kept), shared with
 * files that parsed the same; NULL for none (no symbols, or over
 * SYMBOLIZER_ELF_BUDGET).
 */
static struct sym_elf *elf_intern(struct symbolizer *s, struct elfsym *e, bool keep_empty)
{
	struct sym_elf *se;
	size_t probes = 0, bytes;
	uint64_t h;

	if (!e || (elfsym_symbol_count(e) == 0 && !keep_empty)) {
		elfsym_free(e);
		return NULL;
	}
	h = elfsym_hash(e, s->seed);
	for (struct hnode *n = htab_first(&s->by_content, h); n && probes < SHARE_PROBES;
	     n = n->next) {
		if (n->hash != h)
			continue;
		probes++;
		se = container_of(n, struct sym_elf, node);
		if (elfsym_same(se->elf, e)) {
			elfsym_free(e);
			se->refs++;
			return se;
		}
	}
	bytes = elfsym_mem_usage(e);
	if (s->elf_bytes + bytes > SYMBOLIZER_ELF_BUDGET || !(se = calloc(1, sizeof(*se)))) {
		elfsym_free(e);
		return NULL;
	}
	se->elf = e;
	se->bytes = bytes;
	se->refs = 1;
	s->elf_bytes += bytes;
	s->nelfs++;
	htab_insert(&s->by_content, &se->node, h);
	return se;
}

static void elf_put(struct symbolizer *s, struct sym_elf *se)
{
	if (!se || --se->refs > 0)
		return;
	htab_remove(&s->by_content, &se->node);
	s->elf_bytes -= se->bytes;
	s->nelfs--;
	elfsym_free(se->elf);
	free(se);
}

/* --- files -------------------------------------------------------------- */

/*
 * Who could have written a file, for the global build-id table: 2 when
 * only root could (owned by uid 0, not writable by group or others), so
 * that its build-id note is the system's claim; 1 for any other file; 0
 * for a placeholder (a build-id and no file).
 */
static uint8_t file_rank(const struct stat *st)
{
	return st->st_uid == 0 && !(st->st_mode & (S_IWGRP | S_IWOTH)) ? 2 : 1;
}

/* Build-ids are anyone's to choose: hashed with the random seed. */
static uint64_t bid_hash(const struct symbolizer *s, const uint8_t key[BID_KEY])
{
	return hash_bytes(key, BID_KEY, s->seed);
}

static struct sym_file *bid_lookup(const struct symbolizer *s, const struct htab *t,
				   const uint8_t key[BID_KEY])
{
	uint64_t h = bid_hash(s, key);

	for (struct hnode *n = htab_first(t, h); n; n = n->next) {
		struct sym_file *f = container_of(n, struct sym_file, bid_node);

		if (n->hash == h && memcmp(f->bid_key, key, BID_KEY) == 0)
			return f;
	}
	return NULL;
}

/*
 * The global build-id table: for the build-id frames of a process whose
 * own files do not tell (never noted, or its maps unreadable).  The first
 * file with a build-id wins it, and keeps it for as long as it lives:
 * another file with the same note, whoever made it, never takes it over,
 * unless only root could have written that one and not the holder
 * (file_rank), so a note any user can forge cannot keep the system's own
 * library out either.
 */
static void bid_offer(struct symbolizer *s, struct sym_file *f)
{
	struct sym_file *old;

	if (!f->has_bid || f->in_bid)
		return;
	old = bid_lookup(s, &s->by_bid, f->bid_key);
	if (old) {
		if (old->rank >= f->rank)
			return;
		htab_remove(&s->by_bid, &old->bid_node);
		old->in_bid = false;
	}
	htab_insert(&s->by_bid, &f->bid_node, bid_hash(s, f->bid_key));
	f->in_bid = true;
}

static uint64_t dev_hash(uint64_t dev, uint64_t ino)
{
	return mix64(ino ^ mix64(dev));
}

static struct sym_file *dev_find(struct symbolizer *s, uint64_t dev, uint64_t ino)
{
	uint64_t h = dev_hash(dev, ino);

	for (struct hnode *n = htab_first(&s->by_dev, h); n; n = n->next) {
		struct sym_file *f = container_of(n, struct sym_file, dev_node);

		if (n->hash == h && f->dev == dev && f->ino == ino)
			return f;
	}
	return NULL;
}

static bool file_fresh(const struct sym_file *f, const struct stat *st)
{
	return f->size == (uint64_t)st->st_size &&
	       f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       f->ctime.tv_sec == st->st_ctim.tv_sec && f->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* A new file object: an opened file (st) at path, or a placeholder (st NULL). */
static struct sym_file *file_new(struct symbolizer *s, const char *path, const struct stat *st)
{
	struct sym_file *f;

	if (s->nfiles >= SYMBOLIZER_MAX_FILES) {
		s->files_refused++;
		return NULL;
	}
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
	if (st) {
		f->dev = st->st_dev;
		f->ino = st->st_ino;
		f->size = (uint64_t)st->st_size;
		f->mtime = st->st_mtim;
		f->ctime = st->st_ctim;
		f->rank = file_rank(st);
		f->mapping.limit = (uint64_t)st->st_size;
		htab_insert(&s->by_dev, &f->dev_node, dev_hash(f->dev, f->ino));
		f->in_dev = true;
	}
	f->next = s->files;
	s->files = f;
	s->nfiles++;
	return f;
}

/* A file lets go of its CFI; the last one frees it. */
static void cfi_put(struct symbolizer *s, struct cfi *c)
{
	if (!c || --c->refs > 0)
		return;
	s->cfi_bytes -= cfi_mem_usage(c);
	s->cfi_mapped -= cfi_mapped_bytes(c);
	cfi_free(c);
}

static void file_destroy(struct symbolizer *s, struct sym_file *f)
{
	if (f->in_dev)
		htab_remove(&s->by_dev, &f->dev_node);
	if (f->in_bid)
		htab_remove(f->placeholder ? &s->by_ph : &s->by_bid, &f->bid_node);
	elf_put(s, f->syms);
	elf_put(s, f->dsyms);
	cfi_put(s, f->cfi);
	free(f->path);
	free(f);
	s->nfiles--;
}

/* A build-id frame whose file is unknown: keep the build-id for later tools. */
static struct sym_file *placeholder_get(struct symbolizer *s, const uint8_t key[BID_KEY])
{
	struct sym_file *f = bid_lookup(s, &s->by_ph, key);

	if (f)
		return f;
	f = file_new(s, "", NULL);
	if (!f)
		return NULL;
	f->placeholder = true;
	memcpy(f->bid_key, key, BID_KEY);
	hexdigit_encode(key, BID_KEY, f->build_id);
	f->mapping.limit = UINT64_MAX;
	htab_insert(&s->by_ph, &f->bid_node, bid_hash(s, key));
	f->in_bid = true;
	return f;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The BPF program's clock (bpf_ktime_get_boot_ns). */
static uint64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
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

/* Whether d's build-id note says bid. */
static bool has_build_id(const struct elfsym *d, const uint8_t *bid, size_t bid_len)
{
	size_t dlen = 0;
	const uint8_t *dbid = elfsym_build_id(d, &dlen);

	return dbid && dlen == bid_len && memcmp(dbid, bid, bid_len) == 0;
}

/*
 * A debug file's parse d, from fd (closed here): its symbols if ok, else
 * counted as refused and freed.
 */
static struct sym_elf *debug_take(struct symbolizer *s, int fd, struct elfsym *d, bool ok)
{
	close(fd);
	if (ok) {
		s->debug_files++;
		return elf_intern(s, d, false);
	}
	elfsym_free(d);
	s->debug_refused++;
	return NULL;
}

/*
 * The symbols of the separate debug file of build-id bid (Debian's
 * -dbgsym packages: static functions such as start_thread have names
 * there only), or NULL: none installed, or a file whose own note does not
 * say the same build-id (then it is not that file's debug file).
 */
static struct sym_elf *debug_syms(struct symbolizer *s, const uint8_t *bid, size_t bid_len)
{
	struct elfsym *d = NULL;
	bool ok;
	int fd;

	if (!s->ops.open_debug)
		return NULL;
	fd = s->ops.open_debug(s->ops.ctx, bid, bid_len);
	if (fd < 0)
		return NULL;
	ok = elfsym_open_fd(fd, &d) == 0 && has_build_id(d, bid, bid_len) &&
	     elfsym_symbol_count(d) > 0;
	return debug_take(s, fd, d, ok);
}

/* The CRC-32 (zlib's, as .gnu_debuglink's) of the whole file at fd, within SYMBOLIZER_DEBUGLINK_MAX bytes. */
static int file_crc(int fd, uint32_t *ret)
{
	uint8_t *buf = malloc(65536);
	uLong crc = crc32(0, Z_NULL, 0);
	uint64_t off = 0;
	int rc = buf ? 0 : -ENOMEM;

	while (!rc) {
		ssize_t n = pread(fd, buf, 65536, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : 0;
			break;
		}
		off += (uint64_t)n;
		if (off > SYMBOLIZER_DEBUGLINK_MAX)
			rc = -E2BIG;
		else
			crc = crc32(crc, buf, (uInt)n);
	}
	free(buf);
	*ret = (uint32_t)crc;
	return rc;
}

/*
 * The symbols of the debug file the mapped file names in its
 * .gnu_debuglink (found beside it by the monitor, GDB's places), or NULL:
 * none, or refused (another CRC-32 than the link says, another build-id
 * than the file's, not ELF, no symbols).
 */
static struct sym_elf *debuglink_syms(struct symbolizer *s, const struct elfsym *e, uint32_t pid,
				      const struct procmap *mp)
{
	const uint8_t *bid;
	size_t bid_len = 0;
	struct elfsym *d = NULL;
	const char *name;
	uint32_t want, crc = 0;
	bool ok;
	int fd;

	if (!s->ops.open_debuglink || !(name = elfsym_debuglink(e, &want)) ||
	    !mapfile_debuglink_name_ok(name))
		return NULL;
	fd = s->ops.open_debuglink(s->ops.ctx, pid, mp, name);
	if (fd < 0)
		return NULL;
	bid = elfsym_build_id(e, &bid_len);
	ok = file_crc(fd, &crc) == 0 && crc == want && elfsym_open_fd(fd, &d) == 0 &&
	     elfsym_symbol_count(d) > 0 && (!bid || has_build_id(d, bid, bid_len));
	return debug_take(s, fd, d, ok);
}

/*
 * Decompress the xz stream in[0..len) into a buffer of at most
 * SYMBOLIZER_MINI_MAX bytes, the decoder held to SYMBOLIZER_MINI_MEMLIMIT:
 * 0 and *ret, *ret_len; -E2BIG past either bound, -EINVAL if it is not a
 * whole xz stream, -ENOMEM.
 */
static int unxz(const uint8_t *in, size_t len, uint8_t **ret, size_t *ret_len)
{
	lzma_stream z = LZMA_STREAM_INIT;
	size_t cap = len * 4 < 65536 ? 65536 : len * 4;
	uint8_t *out = NULL;
	lzma_ret lr;
	int rc = 0;

	if (cap > SYMBOLIZER_MINI_MAX)
		cap = SYMBOLIZER_MINI_MAX;
	if (lzma_stream_decoder(&z, SYMBOLIZER_MINI_MEMLIMIT, 0) != LZMA_OK)
		return -ENOMEM;
	z.next_in = in;
	z.avail_in = len;
	for (;;) {
		if (!out || z.avail_out == 0) {
			size_t used = out ? (size_t)(z.next_out - out) : 0;
			uint8_t *n;

			if (out && cap >= SYMBOLIZER_MINI_MAX) {
				rc = -E2BIG;
				break;
			}
			if (out)
				cap = cap * 2 > SYMBOLIZER_MINI_MAX ? SYMBOLIZER_MINI_MAX : cap * 2;
			if (!(n = realloc(out, cap))) {
				rc = -ENOMEM;
				break;
			}
			out = n;
			z.next_out = out + used;
			z.avail_out = cap - used;
		}
		lr = lzma_code(&z, LZMA_FINISH);
		if (lr == LZMA_STREAM_END)
			break;
		if (lr != LZMA_OK) {
			rc = lr == LZMA_MEM_ERROR ? -ENOMEM : lr == LZMA_MEMLIMIT_ERROR ? -E2BIG : -EINVAL;
			break;
		}
	}
	if (!rc) {
		*ret = out;
		*ret_len = (size_t)(z.next_out - out);
		out = NULL;
	}
	lzma_end(&z);
	free(out);
	return rc;
}

/*
 * The symbols of the file's MiniDebugInfo (.gnu_debugdata, an xz'ed ELF
 * with a .symtab; Fedora's and others' way to name static functions of
 * stripped binaries), or NULL: none, or refused (not xz, past the bounds,
 * not ELF, no symbols).
 */
static struct sym_elf *minidebug_syms(struct symbolizer *s, int fd, const struct elfsym *e)
{
	uint64_t off, len;
	uint8_t *in = NULL, *img = NULL;
	size_t img_len = 0, got = 0;
	struct elfsym *m = NULL;
	int rc;

	if (elfsym_debugdata(e, &off, &len) < 0)
		return NULL;
	in = malloc(len);
	rc = in ? 0 : -ENOMEM;
	while (!rc && got < len) {
		ssize_t n = pread(fd, in + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		rc = n < 0 ? -errno : n == 0 ? -ESTALE : 0;
		got += n > 0 ? (size_t)n : 0;
	}
	if (!rc)
		rc = unxz(in, len, &img, &img_len);
	free(in);
	if (!rc)
		rc = elfsym_open_mem(img, img_len, &m);
	free(img);
	if (rc || elfsym_symbol_count(m) == 0) {
		elfsym_free(m);
		s->minidebug_refused++;
		return NULL;
	}
	s->minidebug_read++;
	return elf_intern(s, m, false);
}

/* Drop the bytes of the least recently used CFI until need more fit. */
static void cfi_make_room(struct symbolizer *s, uint64_t need)
{
	while (s->cfi_bytes + need > SYMBOLIZER_CFI_BUDGET) {
		struct sym_file *old = NULL;

		for (struct sym_file *f = s->files; f; f = f->next)
			if (f->cfi && f->cfi->hdr && (!old || f->cfi->used < old->cfi->used))
				old = f;
		if (!old)
			return;
		s->cfi_bytes -= cfi_mem_usage(old->cfi);
		s->cfi_mapped -= cfi_mapped_bytes(old->cfi);
		cfi_drop_bytes(old->cfi);
		s->cfi_bytes += cfi_mem_usage(old->cfi);
		s->cfi_evicted++;
	}
}

/*
 * Read f's CFI from fd (e: its headers), within SYMBOLIZER_CFI_BUDGET.  The
 * file that holds f's build-id in the global table lends its CFI if it
 * holds the same bytes: the build-id alone is only a claim, the
 * comparison is what shares.
 */
static void cfi_fill(struct symbolizer *s, struct sym_file *f, int fd, const struct elfsym *e)
{
	struct sym_file *g = f->has_bid ? bid_lookup(s, &s->by_bid, f->bid_key) : NULL;
	struct cfi *c;

	if (f->cfi || !e || cfi_read_fd(fd, e, &c) < 0)
		return;
	s->cfi_read++;
	if (g && g != f && g->cfi && cfi_same(g->cfi, c)) {
		cfi_free(c);
		f->cfi = g->cfi;
		f->cfi->refs++;
		f->cfi->used = ++s->cfi_clock;
		s->cfi_shared++;
		return;
	}
	if (cfi_mem_usage(c) > SYMBOLIZER_CFI_BUDGET) {
		cfi_free(c);
		return;
	}
	cfi_make_room(s, cfi_mem_usage(c));
	f->cfi = c;
	c->refs = 1;
	c->used = ++s->cfi_clock;
	s->cfi_bytes += cfi_mem_usage(c);
	s->cfi_mapped += cfi_mapped_bytes(c);
}

/*
 * Parse f's file, open at fd, and give f its build-id and symbols (within
 * SYMBOLIZER_ELF_BUDGET), paying for the time it takes.  A file that does
 * not parse is kept without symbols.
 */
static void file_fill(struct symbolizer *s, struct sym_file *f, int fd, uint32_t pid,
		      const struct procmap *mp)
{
	struct elfsym *e = NULL;
	const uint8_t *bid;
	size_t bid_len = 0;
	uint64_t t0 = mono_ns();

	(void)elfsym_open_fd(fd, &e); /* failure: a file without symbols */
	f->deferred = false;
	bid = elfsym_build_id(e, &bid_len);
	if (bid) {
		hexdigit_encode(bid, bid_len, f->build_id);
		if (bid_len <= BID_KEY) {
			memcpy(f->bid_key, bid, bid_len);
			f->has_bid = true;
		}
	}
	/* before elf_intern, which may free e and with it bid */
	if (bid)
		f->dsyms = debug_syms(s, bid, bid_len);
	if (!f->dsyms && e)
		f->dsyms = debuglink_syms(s, e, pid, mp);
	if (!f->dsyms && e)
		f->dsyms = minidebug_syms(s, fd, e);
	cfi_fill(s, f, fd, e);
	/*
	 * A stripped file's own table may be empty: it is kept for its program
	 * headers when a debug file names its functions (a debug file's own
	 * headers keep addresses, not file offsets).
	 */
	f->syms = elf_intern(s, e, f->dsyms != NULL);
	s->fills++;
	bid_offer(s, f);
	t0 = mono_ns() - t0;
	s->parse_ns += t0;
	s->parse_credit_ns -= (int64_t)t0;
}

/*
 * The file object for an executable file mapping of pid, whose file was
 * opened as fd (-errno: it was not) with its fstat *st; fd is closed.
 * NULL if none.
 */
static struct sym_file *file_take(struct symbolizer *s, uint32_t pid, const struct procmap *mp,
				  int fd, const struct stat *st)
{
	struct sym_file *f;

	if (fd < 0)
		return NULL;
	f = dev_find(s, st->st_dev, st->st_ino);
	if (f && file_fresh(f, st)) {
		if (f->deferred && parse_allowed(s))
			file_fill(s, f, fd, pid, mp);
		close(fd);
		bid_offer(s, f); /* if it lost its place to a file now gone */
		return f;
	}
	if (f) {
		/* The inode now holds another file; the old object stays for its users. */
		htab_remove(&s->by_dev, &f->dev_node);
		f->in_dev = false;
	}
	f = file_new(s, mp->path, st);
	if (f) {
		if (parse_allowed(s)) {
			file_fill(s, f, fd, pid, mp);
		} else {
			f->deferred = true; /* a file object now, so that frames keep file offsets */
			s->deferrals++;
		}
	}
	close(fd);
	return f;
}

/* The file object for an executable file mapping of pid, or NULL. */
static struct sym_file *file_get(struct symbolizer *s, uint32_t pid, const struct procmap *mp)
{
	struct stat st;
	int fd = s->ops.open_file(s->ops.ctx, pid, mp, &st);

	return file_take(s, pid, mp, fd, &st);
}

/* *ret_in_sym (optional): file_offset's distance from the function's start. */
static const char *file_symbol(const struct sym_file *f, uint64_t file_offset, uint64_t *ret_in_sym)
{
	uint64_t vaddr;

	const char *name = NULL;

	/* the file's own program headers: a debug file's have no file offsets */
	if (!f->syms || elfsym_offset_to_vaddr(f->syms->elf, file_offset, &vaddr) < 0)
		return NULL;
	/* The debug file's full symbol table first: it names static functions too. */
	if (f->dsyms)
		name = elfsym_lookup(f->dsyms->elf, vaddr, ret_in_sym);
	return name ? name : elfsym_lookup(f->syms->elf, vaddr, ret_in_sym);
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
	if (s->nanon >= SYMBOLIZER_MAX_ANON) {
		s->anon_refused++;
		return NULL;
	}
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

/* The process (pid, start_ns), exec'd or not. */
static struct sym_proc *proc_find_any(struct symbolizer *s, uint32_t pid, uint64_t start_ns)
{
	uint64_t h = pid_hash(pid);

	for (struct hnode *n = htab_first(&s->procs, h); n; n = n->next) {
		struct sym_proc *p = container_of(n, struct sym_proc, node);

		if (p->pid == pid && p->start_ns == start_ns)
			return p;
	}
	return NULL;
}

/* The process (pid, start_ns), when its maps are known: not exec'd since. */
static struct sym_proc *proc_find(struct symbolizer *s, uint32_t pid, uint64_t start_ns)
{
	struct sym_proc *p = proc_find_any(s, pid, start_ns);

	return p && !p->execed ? p : NULL;
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

static int pmap_cmp(const void *a, const void *b)
{
	const struct sym_pmap *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * A re-read of maps replaces old[0..nold) with (*maps)[0..*n): the old
 * mappings that the new ones do not overlap (a library unloaded since) are
 * kept, marked gone, their references handed over, within
 * SYMBOLIZER_MAX_PROC_MAPS, so that samples taken while they were mapped
 * still name their frames at the end of the interval; symbolizer_tick(),
 * after the flush that used them, lets them go.  The rest of old is
 * released.  Sorted by start.
 */
static void pmaps_replace(struct sym_pmap *old, size_t nold, struct sym_pmap **maps, size_t *n)
{
	size_t k = *n, keep = 0;
	bool grown = false;

	for (size_t i = 0; i < nold; i++) {
		bool take = k + keep < SYMBOLIZER_MAX_PROC_MAPS;

		for (size_t j = 0; j < k && take; j++)
			take = !(old[i].start < (*maps)[j].end && (*maps)[j].start < old[i].end);
		if (take && !grown) {
			struct sym_pmap *v = realloc(*maps, (k + nold) * sizeof(*v));

			grown = v != NULL;
			take = grown;
			if (v)
				*maps = v;
		}
		if (take) {
			(*maps)[k + keep] = old[i];
			(*maps)[k + keep++].gone = true;
			continue;
		}
		if (old[i].file)
			old[i].file->refs--;
		if (old[i].anon)
			old[i].anon->refs--;
	}
	free(old);
	if (keep) {
		qsort(*maps, k + keep, sizeof(**maps), pmap_cmp);
		*n = k + keep;
	}
}

/* Does /proc/PID/stat's start time match start_ns (both since boot)? */
static int check_start(const struct symbolizer *s, uint32_t pid, uint64_t start_ns)
{
	uint64_t ticks;
	int r = procstat_start_ticks(pid, &ticks);

	if (r < 0)
		return r;
	return ticks == start_ns / s->ns_per_tick ? 0 : -ESRCH;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;

	return x < y ? -1 : x > y;
}

/* By build-id; of one build-id, the file fewer users could have written first. */
static int cmp_bid(const void *a, const void *b)
{
	const struct sym_file *x = *(struct sym_file *const *)a, *y = *(struct sym_file *const *)b;
	int c = memcmp(x->bid_key, y->bid_key, BID_KEY);

	return c ? c : (int)y->rank - (int)x->rank;
}

/* (Re)build p's build-id index from its maps. */
static void proc_index(struct symbolizer *s, struct sym_proc *p)
{
	struct sym_file **v = NULL;
	size_t n = 0, k = 0;

	/* Every change of p's mappings comes here: what they answer may differ now. */
	p->maps_seq = ++s->maps_seq;

	free(p->bfiles);
	p->bfiles = NULL;
	p->nbfiles = 0;
	p->unsettled = false;
	p->index_fills = s->fills;
	for (size_t i = 0; i < p->n; i++)
		if (p->maps[i].file)
			n++;
	if (n && !(v = calloc(n, sizeof(*v)))) {
		p->unsettled = true; /* unknown: no fallback to other files */
		return;
	}
	for (size_t i = 0; i < p->n; i++)
		if (p->maps[i].file && (k == 0 || v[k - 1] != p->maps[i].file))
			v[k++] = p->maps[i].file;
	if (k)
		qsort(v, k, sizeof(*v), cmp_ptr); /* v is NULL when there is none */
	n = 0;
	for (size_t i = 0; i < k; i++) {
		if (i && v[i] == v[i - 1])
			continue;
		if (v[i]->deferred)
			p->unsettled = true;
		else if (v[i]->has_bid)
			v[n++] = v[i];
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_bid);
	p->bfiles = v;
	p->nbfiles = n;
}

enum bid_answer {
	BID_OWN,     /* a file the process maps has it */
	BID_UNKNOWN, /* none known to, but a file of it is not parsed yet */
	BID_NONE,    /* none of the process's files has it */
};

static enum bid_answer proc_bid(struct symbolizer *s, struct sym_proc *p, const uint8_t key[BID_KEY],
				struct sym_file **ret)
{
	size_t lo = 0, hi;

	if (p->unsettled && p->index_fills != s->fills)
		proc_index(s, p);
	hi = p->nbfiles;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(p->bfiles[mid]->bid_key, key, BID_KEY) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->nbfiles && memcmp(p->bfiles[lo]->bid_key, key, BID_KEY) == 0) {
		*ret = p->bfiles[lo];
		return BID_OWN;
	}
	return p->unsettled ? BID_UNKNOWN : BID_NONE;
}

/*
 * What one load of a process's maps has asked the monitor for, by the
 * (device, inode) that maps shows: each file is asked for once, however
 * many times it is mapped, and at most SYMBOLIZER_MAX_PROC_FILES of them.
 */
struct load_seen {
	uint64_t ino;
	uint32_t major, minor;
	bool used;
	struct sym_file *file; /* NULL: asked, and not opened */
};

struct load_memo {
	struct load_seen *v;
	size_t mask, asked;
	struct sym_preopen *pre; /* what ops.open_maps_files answered: npre entries */
	size_t npre;
};

static struct load_seen *memo_slot(struct load_memo *m, const struct procmap *mp)
{
	size_t i = mix64(mp->inode ^ mix64(((uint64_t)mp->dev_major << 32) | mp->dev_minor)) & m->mask;

	/* Never full: at most SYMBOLIZER_MAX_PROC_FILES used of twice as many. */
	while (m->v[i].used && (m->v[i].ino != mp->inode || m->v[i].major != mp->dev_major ||
				m->v[i].minor != mp->dev_minor))
		i = (i + 1) & m->mask;
	return &m->v[i];
}

static struct sym_file *still_mapped(const struct sym_proc *p, const struct procmap *mp);

/* Whether a maps entry is one whose file a load asks for (unless still_mapped()). */
static bool wants_file(const struct procmap *mp)
{
	return (mp->prot & PROT_EXEC) && mp->inode && mp->path[0] == '/';
}

/*
 * What ops.open_maps_files answered for mp's file, or NULL: taken when
 * the load comes to its first mapping (memo_file_get), as if asked for
 * then, and never asked for again.
 */
static struct sym_preopen *memo_preopen(const struct load_memo *m, const struct procmap *mp)
{
	for (size_t j = 0; j < m->npre; j++)
		if (m->pre[j].inode == mp->inode && m->pre[j].dev_major == mp->dev_major &&
		    m->pre[j].dev_minor == mp->dev_minor)
			return &m->pre[j];
	return NULL;
}

/*
 * With ops.open_files: the files of maps->maps[i] and of the next entries
 * that a load will ask for, at most SYMBOLIZER_FILES_AT_ONCE, in one ask;
 * their memo slots filled.  left: executable entries from i on that the
 * load takes (its bound on mappings).
 */
static void memo_ask_ahead(struct symbolizer *s, struct load_memo *m, const struct sym_proc *p,
			   const struct procmaps *maps, size_t i, size_t left)
{
	const struct procmap *mps[SYMBOLIZER_FILES_AT_ONCE];
	struct load_seen *slots[SYMBOLIZER_FILES_AT_ONCE];
	struct stat st[SYMBOLIZER_FILES_AT_ONCE];
	int fds[SYMBOLIZER_FILES_AT_ONCE];
	size_t n = 0;
	int r;

	for (; i < maps->n && left && n < SYMBOLIZER_FILES_AT_ONCE &&
	       m->asked < SYMBOLIZER_MAX_PROC_FILES; i++) {
		const struct procmap *mp = &maps->maps[i];
		struct load_seen *e;

		if (!(mp->prot & PROT_EXEC))
			continue;
		left--;
		if (!wants_file(mp) || still_mapped(p, mp) || memo_preopen(m, mp))
			continue;
		e = memo_slot(m, mp);
		if (e->used)
			continue;
		m->asked++;
		*e = (struct load_seen){
			.ino = mp->inode, .major = mp->dev_major, .minor = mp->dev_minor, .used = true,
		};
		mps[n] = mp;
		slots[n++] = e;
	}
	if (!n)
		return;
	r = s->ops.open_files(s->ops.ctx, p->pid, mps, n, fds, st);
	for (size_t k = 0; k < n; k++)
		slots[k]->file = file_take(s, p->pid, mps[k], r < 0 ? r : fds[k], &st[k]);
}

static struct sym_file *memo_file_get(struct symbolizer *s, struct load_memo *m,
				      const struct sym_proc *p, const struct procmaps *maps,
				      size_t i, size_t left)
{
	const struct procmap *mp = &maps->maps[i];
	struct load_seen *e = memo_slot(m, mp);
	struct sym_preopen *po;

	if (e->used)
		return e->file;
	if (m->asked >= SYMBOLIZER_MAX_PROC_FILES)
		return NULL;
	po = memo_preopen(m, mp);
	if (!po && s->ops.open_files) {
		memo_ask_ahead(s, m, p, maps, i, left);
		return e->file;
	}
	m->asked++;
	*e = (struct load_seen){
		.ino = mp->inode, .major = mp->dev_major, .minor = mp->dev_minor, .used = true,
		.file = po ? file_take(s, p->pid, mp, po->fd, &po->st) : file_get(s, p->pid, mp),
	};
	if (po)
		po->fd = -EBADF; /* file_take closed it */
	return e->file;
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

/*
 * The file of the same mapping in the maps read before, when the process
 * maps the same range of the same inode at the same offset, by the same
 * path, still: a re-read (a library loaded after the first one) asks the
 * monitor again only for what changed, not for every file of the process.
 * Not when the old entry was already missing from the last read, nor for
 * a file whose parsing was put off (file_get parses it when it is asked
 * for again), nor for one another file has replaced at its inode since
 * (file_get found it stale for another process).  What this does not see,
 * as file_get's size, mtime and ctime would: a file rewritten in place
 * under the mapping between the two reads, or unlinked, its inode number
 * given to a new file of the same path and size, and that mapped at the
 * very same place; the frames of that mapping then keep the old file's
 * names until the process's next exec or exit.
 */
static struct sym_file *still_mapped(const struct sym_proc *p, const struct procmap *mp)
{
	const struct sym_pmap *old = p->maps ? pmap_find(p, mp->start) : NULL;

	if (!old || old->gone || !old->file || old->file->deferred || !old->file->in_dev ||
	    old->start != mp->start || old->end != mp->end || old->offset != mp->offset ||
	    old->inode != mp->inode || old->dev_major != mp->dev_major ||
	    old->dev_minor != mp->dev_minor || strcmp(old->file->path, mp->path) != 0)
		return NULL;
	return old->file;
}

/*
 * (Re-)read a process's maps and swap them in.  keep_old: mappings gone
 * from the new read are kept for the rest of the generation (a re-read);
 * otherwise dropped (the first read after an exec).
 */
static int proc_load(struct symbolizer *s, struct sym_proc *p, bool keep_old)
{
	struct sym_preopen pre[SYMBOLIZER_FILES_WITH_MAPS];
	struct load_memo memo = { .pre = pre };
	struct procmaps *m = NULL;
	struct sym_pmap *maps = NULL;
	size_t n = 0, k = 0, slots = 2;
	uint64_t began = boot_ns();
	int fd, r;

	s->maps_reads++;
	if (!keep_old)
		p->stack_lo = p->stack_hi = 0; /* the old image's, even if this read fails */
	/* A first read wants every file: asked with the maps.  A re-read, what changed. */
	if (s->ops.open_maps_files && (!keep_old || !p->maps))
		fd = s->ops.open_maps_files(s->ops.ctx, p->pid, pre, &memo.npre);
	else
		fd = s->ops.open_maps(s->ops.ctx, p->pid);
	if (fd < 0)
		return fd;
	if (memo.npre > SYMBOLIZER_FILES_WITH_MAPS)
		memo.npre = SYMBOLIZER_FILES_WITH_MAPS;
	r = procmaps_read_fd(fd, &m);
	close(fd);
	if (r < 0)
		goto out;
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
	p->stack_lo = p->stack_hi = 0;
	for (size_t i = m->n; i-- > 0;) /* the last entries, as a rule */
		if (!strcmp(m->maps[i].path, "[stack]") && !(m->maps[i].prot & PROT_EXEC)) {
			p->stack_lo = m->maps[i].start;
			p->stack_hi = m->maps[i].end;
			break;
		}
	if (n > SYMBOLIZER_MAX_PROC_MAPS)
		n = SYMBOLIZER_MAX_PROC_MAPS;
	if (n) {
		while (slots < 2 * n && slots < 2 * SYMBOLIZER_MAX_PROC_FILES)
			slots *= 2;
		maps = calloc(n, sizeof(*maps));
		memo.v = calloc(slots, sizeof(*memo.v));
		memo.mask = slots - 1;
		if (!maps || !memo.v) {
			free(maps);
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
		pm->inode = mp->inode;
		pm->dev_major = mp->dev_major;
		pm->dev_minor = mp->dev_minor;
		if (wants_file(mp)) {
			pm->file = still_mapped(p, mp);
			if (!pm->file)
				pm->file = memo_file_get(s, &memo, p, m, i, n - k + 1);
		}
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
	if (keep_old)
		pmaps_replace(p->maps, p->n, &maps, &k);
	else
		pmaps_release(p->maps, p->n);
	p->maps = maps;
	p->n = k;
	p->read_ns = began;
	proc_index(s, p);
	r = 0;
out:
	for (size_t j = 0; j < memo.npre; j++) /* not taken: mapped no more, or kept (still_mapped) */
		if (pre[j].fd >= 0)
			close(pre[j].fd);
	free(memo.v);
	procmaps_free(m);
	return r;
}

static void proc_destroy(struct symbolizer *s, struct sym_proc *p)
{
	htab_remove(&s->procs, &p->node);
	pmaps_release(p->maps, p->n);
	free(p->bfiles);
	free(p);
	s->nprocs--;
}

/* A re-read's address when none is known: the rules on addresses do not apply. */
#define REREAD_ANY_ADDR UINT64_MAX
/*
 * Below this no process maps code: the first page (vm.mmap_min_addr is
 * 65536 on x86-64 by default, 32768 on some arm64 systems, and may be 0,
 * as for Wine, which still leaves page 0 unmapped as a rule).
 */
#define REREAD_MIN_ADDR 0x1000ull

/*
 * Whether a re-read for a miss at addr could find anything: not when the
 * monitor refused the process's maps (EPERM: its own pid, above all, which
 * was sampled every interval and asked for every time; an EACCES may
 * pass), nor for an address in the first page, nor for one in the
 * process's stack, where an unwinder's bad guess at a return address
 * lands (what it read there was a saved frame pointer or a local).  Not
 * seen: a stack made executable since the last read (an execstack library
 * dlopen'ed); its code is found at the next miss elsewhere.
 */
static bool reread_futile(const struct sym_proc *p, uint64_t addr)
{
	if (p->err == -EPERM)
		return true;
	if (addr == REREAD_ANY_ADDR)
		return false;
	return addr < REREAD_MIN_ADDR || (addr >= p->stack_lo && addr < p->stack_hi);
}

/* One extra read of the maps per process and generation, for a miss at addr. */
static void proc_maybe_reread(struct symbolizer *s, struct sym_proc *p, uint64_t addr)
{
	int r;

	if (p->gone || p->reread_gen == s->gen)
		return;
	if (reread_futile(p, addr)) {
		/* counted once a generation: a read not asked, not each miss */
		if (p->futile_gen != s->gen)
			s->reads_futile++;
		p->futile_gen = s->gen;
		return;
	}
	/*
	 * Read after the sample was taken: that read showed every mapping
	 * the sample could be in, but for one unmapped since, which a read
	 * now would not show either.  The re-read is not spent: a later
	 * sample's miss may need it.
	 */
	if (s->sample_ns && p->read_ns > s->sample_ns) {
		s->reads_after_sample++;
		return;
	}
	p->reread_gen = s->gen;
	r = proc_load(s, p, true);
	if (r == -ESRCH)
		p->gone = true;
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
			hexdigit_encode(buf + desc_off, descsz, s->kernel_build_id);
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
	    elfsym_open_mem((const void *)base, mp->end - mp->start, &s->vdso) == 0) {
		s->vdso_size = mp->end - mp->start;
		(void)cfi_read_mem((const void *)base, s->vdso_size, s->vdso, &s->vdso_cfi);
	}
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
	if (htab_init(&s->procs) < 0 || htab_init(&s->by_bid) < 0 || htab_init(&s->by_ph) < 0 ||
	    htab_init(&s->by_dev) < 0 || htab_init(&s->by_anon) < 0 ||
	    htab_init(&s->by_content) < 0) {
		symbolizer_free(s);
		return -ENOMEM;
	}
	if (getrandom(&s->seed, sizeof(s->seed), GRND_NONBLOCK) != (ssize_t)sizeof(s->seed))
		s->seed = mix64(mono_ns() ^ (uintptr_t)s);
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
	p = proc_find_any(s, pid, start_ns);
	if (p && p->execed) {
		/* Its new image: the mappings it kept (ld.so's, often) keep their files. */
		p->execed = false;
		p->last_used = s->gen;
		p->reread_gen = 0; /* as a new process's: one re-read this generation */
		r = proc_load(s, p, false);
		if (r == -ENOMEM) {
			p->execed = true; /* as a new process's: tried again at its next note */
			return r;
		}
		if (r < 0) {
			pmaps_release(p->maps, p->n);
			p->maps = NULL;
			p->n = 0;
			proc_index(s, p);
		}
		p->err = r;
		p->gone = r == -ESRCH;
		return r;
	}
	if (p) {
		p->last_used = s->gen;
		return p->err;
	}
	if (s->nprocs >= SYMBOLIZER_MAX_PROCESSES) {
		s->procs_refused++;
		return -ENOSPC;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	p->start_ns = start_ns;
	p->last_used = s->gen;
	r = proc_load(s, p, true);
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

static void proc_drop_kept(struct symbolizer *s, struct sym_proc *p);

void symbolizer_sample_time(struct symbolizer *s, uint64_t time_ns)
{
	if (s)
		s->sample_ns = time_ns;
}

void symbolizer_forget_process(struct symbolizer *s, uint32_t pid, uint64_t exec_ns)
{
	struct hnode *n, *next;

	if (!s)
		return;
	for (n = htab_first(&s->procs, pid_hash(pid)); n; n = next) {
		struct sym_proc *p = container_of(n, struct sym_proc, node);

		next = n->next;
		if (p->pid != pid)
			continue;
		if (exec_ns && p->read_ns > exec_ns && !p->execed) {
			/*
			 * Its maps were read after the exec: they are the new
			 * image's.  But for what that read kept of an earlier
			 * one (a re-read keeps what it no longer shows): the old
			 * image's.  And the new image has its own re-read.
			 */
			proc_drop_kept(s, p);
			p->reread_gen = 0;
			s->exec_reads_saved++;
			continue;
		}
		if (p->n)
			p->execed = true; /* its maps: what the next read may keep files from */
		else
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
		f->function = file_symbol(file, look - pm->start + pm->offset, NULL);
		if (!f->function && look != ip) {
			/*
			 * A "return address" at a function's very first byte,
			 * after a gap: the signal trampoline (__restore_rt), which
			 * a signal frame returns to without a call.  A real
			 * return address there would have its call, and so a
			 * name, in the byte before.
			 */
			uint64_t in_sym = 1;
			const char *at = file_symbol(file, ip - pm->start + pm->offset, &in_sym);

			if (at && in_sym == 0)
				f->function = at;
		}
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
			proc_maybe_reread(s, p, pm ? REREAD_ANY_ADDR : look);
			pm = pmap_find(p, look);
		}
		if (pm)
			frame_from_pmap(s, pm, ip, look, &f);
	}
	*ret = f;
	return 0;
}

/*
 * Before f reads its CFI's bytes again: a CFI it shares becomes one of its
 * own (empty, to be read), so that what one file's bytes are now never
 * becomes another's.  0 or -ENOMEM.
 */
static int cfi_own(struct symbolizer *s, struct sym_file *f)
{
	struct cfi *n;

	if (f->cfi->refs <= 1)
		return 0;
	n = cfi_clone_empty(f->cfi);
	if (!n)
		return -ENOMEM;
	n->refs = 1;
	f->cfi->refs--;
	f->cfi = n;
	s->cfi_bytes += cfi_mem_usage(n);
	return 0;
}

/* f's CFI bytes, read again through pm's mapping if the LRU dropped them. */
static const struct cfi *file_cfi(struct symbolizer *s, uint32_t pid, struct sym_file *f,
				  const struct sym_pmap *pm)
{
	struct procmap mp = {
		.start = pm->start, .end = pm->end, .offset = pm->offset, .inode = pm->inode,
		.dev_major = pm->dev_major, .dev_minor = pm->dev_minor, .prot = PROT_READ | PROT_EXEC,
		.path = f->path,
	};
	struct stat st;
	int fd;

	if (!f->cfi)
		return NULL;
	if (!f->cfi->hdr && f->cfi_retry_gen != s->gen) {
		/* At most once a generation: a file that keeps failing costs nothing more. */
		f->cfi_retry_gen = s->gen;
		fd = s->ops.open_file(s->ops.ctx, pid, &mp, &st);
		if (fd >= 0) {
			if ((uint64_t)st.st_dev == f->dev && (uint64_t)st.st_ino == f->ino &&
			    file_fresh(f, &st) && cfi_own(s, f) == 0) {
				uint64_t before = cfi_mem_usage(f->cfi);

				cfi_make_room(s, f->cfi->hdr_len + f->cfi->ehf_len);
				if (cfi_reload_fd(f->cfi, fd) == 0) {
					s->cfi_bytes += cfi_mem_usage(f->cfi) - before;
					s->cfi_mapped += cfi_mapped_bytes(f->cfi);
					s->cfi_reloaded++;
				}
			}
			close(fd);
		}
	}
	if (!f->cfi->hdr)
		return NULL;
	f->cfi->used = ++s->cfi_clock;
	return f->cfi;
}

int symbolizer_unwind_map(struct symbolizer *s, uint32_t pid, uint64_t start_ns, uint64_t ip,
			  struct sym_unwind_map *ret)
{
	const struct sym_pmap *pm;
	struct sym_proc *p;
	const struct cfi *c = NULL;
	uint64_t bias;

	if (!s || !ret)
		return -EINVAL;
	p = proc_find(s, pid, start_ns);
	if (!p)
		return -ESRCH;
	p->last_used = s->gen;
	pm = pmap_find(p, ip);
	if (!pm) {
		/* Mapped since it was noted (dlopen), or not code at all. */
		proc_maybe_reread(s, p, ip);
		pm = pmap_find(p, ip);
	}
	if (!pm)
		return -ENOENT;
	if (pm->file)
		c = file_cfi(s, pid, pm->file, pm);
	else if (pm->anon && pm->anon->vdso)
		c = s->vdso_cfi;
	if (!c || cfi_bias(c, pm->start, pm->offset, &bias) < 0)
		return -ENODATA;
	*ret = (struct sym_unwind_map){ .start = pm->start, .end = pm->end, .bias = bias, .cfi = c };
	return 0;
}

int symbolizer_maps_version(struct symbolizer *s, uint32_t pid, uint64_t start_ns,
			     struct sym_maps_version *ret)
{
	const struct sym_proc *p;

	if (!s || !ret)
		return -EINVAL;
	p = proc_find(s, pid, start_ns);
	if (!p)
		return -ESRCH;
	*ret = (struct sym_maps_version){ .gen = s->gen, .maps = p->maps_seq, .cfi = s->cfi_reloaded };
	return 0;
}

int symbolizer_unwind_data(struct symbolizer *s, uint32_t pid, uint64_t start_ns, uint64_t addr,
			   struct sym_unwind_map *ret)
{
	struct sym_proc *p;
	uint64_t bias;

	if (!s || !ret)
		return -EINVAL;
	p = proc_find(s, pid, start_ns);
	if (!p)
		return -ESRCH;
	for (size_t i = 0; i < p->n; i++) {
		const struct sym_pmap *pm = &p->maps[i];
		const struct cfi *c;

		if (pm->file)
			c = pm->file->cfi && pm->file->cfi->hdr ? pm->file->cfi : NULL;
		else
			c = pm->anon && pm->anon->vdso ? s->vdso_cfi : NULL;
		if (!c || cfi_bias(c, pm->start, pm->offset, &bias) < 0)
			continue;
		if ((addr - (bias + c->hdr_vaddr) < c->hdr_len) ||
		    (addr - (bias + c->ehf_vaddr) < c->ehf_len)) {
			*ret = (struct sym_unwind_map){ .start = pm->start, .end = pm->end, .bias = bias,
							.cfi = c };
			return 0;
		}
	}
	return -ENOENT;
}

int symbolizer_user_bid(struct symbolizer *s, uint32_t pid, uint64_t start_ns,
			const uint8_t build_id[20], uint64_t file_offset, bool is_return_addr,
			struct sym_frame *ret)
{
	struct sym_frame f = { .mapping = NULL, .address = file_offset, .function = NULL };
	enum bid_answer a = BID_NONE;
	struct sym_file *file = NULL;
	struct sym_proc *p;

	if (!s || !build_id || !ret)
		return -EINVAL;
	/*
	 * A build-id is what a file's note claims, and any user can write
	 * any note: the frame is named from a file this very process maps,
	 * and from the global table only when none of its files has that
	 * build-id (or the process was never noted).
	 */
	p = proc_find(s, pid, start_ns);
	if (p) {
		p->last_used = s->gen;
		a = proc_bid(s, p, build_id, &file);
		if (a != BID_OWN && !p->gone && p->reread_gen != s->gen) {
			/* Maybe it dlopen'ed the file, or there is credit to parse it now. */
			proc_maybe_reread(s, p, REREAD_ANY_ADDR);
			a = proc_bid(s, p, build_id, &file);
		}
	}
	if (a == BID_NONE)
		file = bid_lookup(s, &s->by_bid, build_id);
	if (!file)
		file = placeholder_get(s, build_id);
	if (file) {
		file->last_used = s->gen;
		f.mapping = &file->mapping;
		f.function = file_symbol(file, is_return_addr && file_offset ? file_offset - 1
									     : file_offset, NULL);
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
			if (stale(p->last_used, now_gen)) {
				proc_destroy(s, p);
				s->procs_aged++;
			}
		}
	}
	for (struct sym_file **pp = &s->files; *pp;) {
		struct sym_file *f = *pp;

		if (f->refs == 0 && stale(f->last_used, now_gen)) {
			*pp = f->next;
			file_destroy(s, f);
			s->files_aged++;
		} else {
			pp = &f->next;
		}
	}
	for (struct sym_anon **pp = &s->anons; *pp;) {
		struct sym_anon *a = *pp;

		if (a->refs == 0 && stale(a->last_used, now_gen)) {
			*pp = a->next;
			anon_destroy(s, a);
			s->anon_aged++;
		} else {
			pp = &a->next;
		}
	}
}

/*
 * The mappings a re-read kept (pmaps_replace) served the interval that
 * just ended: let them go now, with the files they hold, or an address a
 * new mapping took since would be named from the old one until some other
 * address missed.
 */
static void proc_drop_kept(struct symbolizer *s, struct sym_proc *p)
{
	size_t k = 0;

	for (size_t i = 0; i < p->n; i++) {
		if (!p->maps[i].gone) {
			p->maps[k++] = p->maps[i];
			continue;
		}
		if (p->maps[i].file)
			p->maps[i].file->refs--;
		if (p->maps[i].anon)
			p->maps[i].anon->refs--;
	}
	if (k == p->n)
		return;
	p->n = k;
	proc_index(s, p);
}

void symbolizer_tick(struct symbolizer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i <= s->procs.mask; i++)
		for (struct hnode *n = s->procs.b[i]; n; n = n->next)
			proc_drop_kept(s, container_of(n, struct sym_proc, node));
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
		if (f->syms)
			st.files_with_symbols++;
		if (f->dsyms)
			st.files_with_debug++;
		if (f->deferred)
			st.files_deferred++;
	}
	st.symbol_tables = s->nelfs;
	st.anon_mappings = s->nanon;
	st.kernel_symbols = kallsyms_count(s->ksyms);
	st.elf_bytes = s->elf_bytes;
	st.debug_files_read = s->debug_files;
	st.debug_files_refused = s->debug_refused;
	st.minidebug_read = s->minidebug_read;
	st.minidebug_refused = s->minidebug_refused;
	st.cfi_bytes = s->cfi_bytes;
	st.cfi_mapped = s->cfi_mapped;
	st.cfi_read = s->cfi_read;
	st.cfi_evicted = s->cfi_evicted;
	st.cfi_shared = s->cfi_shared;
	st.cfi_reloaded = s->cfi_reloaded;
	st.procs_aged = s->procs_aged;
	st.files_aged = s->files_aged;
	st.anon_aged = s->anon_aged;
	st.procs_refused = s->procs_refused;
	st.files_refused = s->files_refused;
	st.anon_refused = s->anon_refused;
	st.maps_reads = s->maps_reads;
	st.maps_reads_saved = s->exec_reads_saved + s->reads_after_sample + s->reads_futile;
	st.generation = s->gen;
	st.files_parsed = s->fills;
	st.parse_ns = s->parse_ns;
	st.deferrals = s->deferrals;
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
	cfi_free(s->vdso_cfi);
	free(s->procs.b);
	free(s->by_bid.b);
	free(s->by_ph.b);
	free(s->by_dev.b);
	free(s->by_anon.b);
	free(s->by_content.b);
	free(s);
}
