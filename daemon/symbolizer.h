/*
 * symbolizer.h - turn the frames of BPF stack samples into pprof mappings,
 * addresses and function names.
 *
 * Used by the collector process.  It reaches /proc/PID/maps and the files
 * of profiled processes only through the ops it is given (in vigild, fds
 * from the monitor), parses the files with elfsym and the kernel's symbols
 * with kallsyms.  Library-like: functions return 0 or -errno and never log.
 * Not thread-safe: one symbolizer belongs to one thread.
 *
 * Processes are named by (pid, start_ns), start_ns being the group leader's
 * start_boottime in nanoseconds as the BPF program reports it; 0 means
 * "unknown" and skips the check that the live process is the one meant.
 *
 * Address convention (what a frame's mapping and address mean):
 *
 *  - A frame in a file that could be opened: mapping is the file's single
 *    sym_mapping {path, build_id, start 0, limit = file size,
 *    file_offset 0}, one per distinct file (device and inode) whatever
 *    process maps it, and
 *    address is the FILE OFFSET of the instruction.  pprof's rule
 *    file offset = address - start + file_offset holds, and the same
 *    instruction has the same address in every process despite ASLR.
 *    A raw ip in such a mapping becomes ip - map.start + map.offset.
 *  - A frame in anonymous memory (JIT), [vdso], [vsyscall], or a file
 *    that could not be opened: a sym_mapping per distinct (path, start,
 *    end, offset) with the real runtime range, file_offset = the mapping's
 *    offset, and address = the raw ip.  [vdso] frames are named from the
 *    collector's own vDSO when its size matches (same kernel, same ABI).
 *  - A build-id frame is named from the file with that build-id that the
 *    sampled process maps.  A build-id is only what a file's note claims,
 *    and any user can write a file whose note claims libc's: so another
 *    process's file is used only when none of the process's own files has
 *    that build-id (or it was never noted, or its maps could not be
 *    read), and never when one of its files is not parsed yet (deferred),
 *    whose build-id is not known.  That file is the first seen with the
 *    build-id, or a later one that only root could have written (owned by
 *    uid 0, not group- or world-writable) if the first was not.
 *  - A build-id frame whose file was never seen: a sym_mapping per build-id
 *    with path "", build_id set, start 0, limit UINT64_MAX, and address =
 *    the file offset, so a later tool can still symbolize it by build-id.
 *  - A raw ip of a process never noted, or in none of its executable
 *    mappings: mapping NULL, address = ip.
 *  - Kernel frames: address = raw ip.  Kernel-image frames get the mapping
 *    "[kernel.kallsyms]", start = lowest kernel text address, limit = one
 *    past the highest kernel text symbol (0 and UINT64_MAX when kallsyms
 *    could not be read).  Frames in a module get a mapping named like the
 *    module, "[nf_tables]", over the range of that module's symbols.
 *
 * Return addresses: every frame but the innermost is a return address,
 * which points after the call; pass is_return_addr so that address - 1 is
 * looked up.  The address reported stays the original one.
 *
 * Frames are never dropped: every lookup returns 0 and fills *ret, with
 * mapping and/or function NULL when unknown.  Errors (-EINVAL) are only for
 * invalid arguments.
 *
 * Lifetime of what a frame points to (mapping, its strings, function): all
 * owned by the symbolizer, and valid at least until the next
 * symbolizer_tick() or symbolizer_gc(), whichever comes first, or
 * symbolizer_free().  Concretely, an object used in generation g is only
 * freed by a gc at generation g + SYMBOLIZER_KEEP_GENERATIONS or later;
 * kernel mappings and names live until symbolizer_free().
 */
#ifndef VIGIL_SYMBOLIZER_H
#define VIGIL_SYMBOLIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* Processes (and files, mappings) unused this many generations are dropped. */
#define SYMBOLIZER_KEEP_GENERATIONS 3
#define SYMBOLIZER_MAX_PROCESSES    32768
#define SYMBOLIZER_MAX_FILES        8192
#define SYMBOLIZER_MAX_ANON         65536  /* distinct non-file mappings */
#define SYMBOLIZER_MAX_PROC_MAPS    16384  /* executable mappings kept per process */
/*
 * Distinct files (device and inode, as maps shows them) asked of
 * ops.open_file per read of a process's maps, whatever the number of
 * mappings: each file is asked for once per read, and mappings of files
 * past this many stay address + mapping.  A process can map one file
 * thousands of times, or thousands of files, and each request costs the
 * monitor time; the largest processes seen map a few hundred libraries.
 */
#define SYMBOLIZER_MAX_PROC_FILES   1024
/* Parsed symbol tables beyond this many bytes: files are kept without symbols. */
#define SYMBOLIZER_ELF_BUDGET       (64u << 20)
/*
 * MiniDebugInfo (.gnu_debugdata, at most ELFSYM_MAX_DEBUGDATA bytes of xz):
 * decompressed into at most SYMBOLIZER_MINI_MAX bytes by a decoder held to
 * SYMBOLIZER_MINI_MEMLIMIT (xz -6, the usual, needs 9 MiB), both freed once
 * its symbols are parsed.  An xz bomb stops at the bound and is refused.
 */
#define SYMBOLIZER_MINI_MAX         (16u << 20)
/* A .gnu_debuglink file is read whole for its CRC-32: larger ones are refused. */
#define SYMBOLIZER_DEBUGLINK_MAX    (256ull << 20)
#define SYMBOLIZER_MINI_MEMLIMIT    (32u << 20)
/*
 * Parsing costs time (up to ELFSYM_MAX_READ bytes read a file), and any
 * user can hand the collector new files to parse: a fresh copy of a binary
 * is a new file.  So parsing may take at most SYMBOLIZER_PARSE_PERCENT of
 * wall-clock time on average, in bursts of up to SYMBOLIZER_PARSE_BURST_MS
 * (start-up, a deploy).  A file met when that is spent is kept without
 * symbols for now (frames: address + mapping) and parsed once time allows
 * and a process mapping it is looked at again, at most once a generation
 * per process.  Whatever users do, sampling keeps at least the rest.
 */
/*
 * Unwinding's CFI (.eh_frame_hdr and .eh_frame, cfi.h): bytes held for all
 * files at once; past it the least recently used file's are dropped, and
 * read again (through ops.open_file) when a sample needs them.  Python's
 * interpreter, libc and libcrypto together hold about 1.3 MiB.
 */
#define SYMBOLIZER_CFI_BUDGET       (8u << 20)
#define SYMBOLIZER_PARSE_PERCENT    10
#define SYMBOLIZER_PARSE_BURST_MS   2000

struct symbolizer;

struct sym_mapping {
	const char *path;     /* as the process sees it, "[vdso]", "[kernel.kallsyms]" */
	const char *build_id; /* lowercase hex, "" if unknown */
	uint64_t start, limit, file_offset; /* the pprof Mapping fields */
};

struct sym_frame {
	const struct sym_mapping *mapping; /* NULL: address in no known mapping */
	uint64_t address;                  /* value for pprof Location.address */
	const char *function;              /* NULL: no symbol; a kernel frame's until the next
					    * symbolizer_kernel() (kallsyms.h) */
};

struct symbolizer_stats {
	size_t processes;       /* cached processes, live or exited */
	size_t files;           /* distinct files (incl. unknown build-ids) */
	size_t files_with_symbols;
	size_t files_with_debug;    /* ... and symbols from a separate debug file too */
	uint64_t debug_files_read;  /* debug files found by build-id and parsed */
	uint64_t debug_files_refused; /* found, but not ELF or of another build-id */
	uint64_t minidebug_read;      /* .gnu_debugdata (MiniDebugInfo) sections read */
	uint64_t minidebug_refused;   /* ... and refused: not xz, too large, not ELF, no symbols */
	uint64_t cfi_bytes;           /* CFI held for unwinding */
	uint64_t cfi_mapped;          /* ... of which mapped from files, resident only where read */
	uint64_t cfi_read, cfi_evicted, cfi_reloaded; /* files' CFI read, dropped by the LRU, read again */
	uint64_t cfi_shared;          /* files served by another file's identical CFI */
	/*
	 * What the bounds above did: processes, files and anonymous mappings
	 * dropped after SYMBOLIZER_KEEP_GENERATIONS unused, and new ones
	 * refused at SYMBOLIZER_MAX_PROCESSES, _FILES, _ANON.
	 */
	uint64_t procs_aged, files_aged, anon_aged;
	uint64_t procs_refused, files_refused, anon_refused;
	/*
	 * Reads of processes' maps asked of ops.open_maps, and reads not
	 * asked because the last one began after what called for them: an
	 * exec (symbolizer_forget_process), or a sample in no known mapping
	 * (symbolizer_sample_time); or because they could find nothing: a
	 * process whose maps were refused (EPERM), an address in the first
	 * page or in the process's stack (once per process and generation)
	 */
	uint64_t maps_reads, maps_reads_saved;
	size_t files_deferred;  /* not parsed yet: over the parse-time budget */
	uint64_t files_parsed;  /* parses so far (a file that did not parse counts) */
	uint64_t parse_ns;      /* the wall time they took, paid from the budget */
	uint64_t deferrals;     /* new files left unparsed, the budget spent (so far) */
	size_t symbol_tables;   /* parsed symbol tables held (files that parsed the same share one) */
	size_t anon_mappings;
	size_t kernel_symbols;  /* 0: kernel frames stay unsymbolized */
	uint64_t elf_bytes;     /* memory held by parsed symbol tables */
	uint64_t generation;
};

struct procmap;

/*
 * How the symbolizer reaches other processes' maps and files.  A collector
 * without privileges cannot open them itself and asks the monitor.
 */
/* The most files ops.open_files is asked for at once. */
#define SYMBOLIZER_FILES_AT_ONCE 8

/* The most files ops.open_maps_files answers with. */
#define SYMBOLIZER_FILES_WITH_MAPS 7

/* One file of ops.open_maps_files: the mapping's file it was opened for, and the answer. */
struct sym_preopen {
	uint64_t inode;
	uint32_t dev_major, dev_minor; /* as maps shows them */
	int fd;                        /* the symbolizer closes it; or -errno */
	struct stat st;                /* fd's fstat */
};

struct symbolizer_ops {
	/* An fd of /proc/PID/maps to read (the symbolizer closes it), or -errno. */
	int (*open_maps)(void *ctx, uint32_t pid);
	/*
	 * A read-only fd of the regular file behind maps entry mp of pid, with
	 * its fstat in *ret_st (the symbolizer closes the fd), or -errno.
	 */
	int (*open_file)(void *ctx, uint32_t pid, const struct procmap *mp, struct stat *ret_st);
	/*
	 * Optional (NULL: open_file for each): open_file for maps entries
	 * mps[0..n) of pid at once (n at most SYMBOLIZER_FILES_AT_ONCE), each
	 * answer in ret_fds[i] and ret_st[i]: one ask for a read of the maps,
	 * not one a file.  0, or -errno when nothing could be asked.
	 */
	int (*open_files)(void *ctx, uint32_t pid, const struct procmap *const *mps, size_t n,
			  int *ret_fds, struct stat *ret_st);
	/*
	 * Optional (NULL: open_maps, then the files): open_maps and, in the
	 * same ask, the files of the process's executable file mappings as
	 * the answerer read the maps (at most SYMBOLIZER_FILES_WITH_MAPS, one
	 * a file): *ret_n entries of ret.  The maps fd or -errno (*ret_n 0
	 * then).  Asked for a process's first read and the first after an
	 * exec, which want every file; open_file(s) are asked only for the
	 * files these leave out (mapped in between, or past the first few).
	 */
	int (*open_maps_files)(void *ctx, uint32_t pid, struct sym_preopen *ret, size_t *ret_n);
	/*
	 * Optional (NULL: none): a read-only fd of the separate debug file of
	 * a build-id (the symbolizer checks that its note says the same
	 * build-id, and closes it), or -errno.
	 */
	int (*open_debug)(void *ctx, const uint8_t *build_id, size_t len);
	/*
	 * Optional (NULL: none): a read-only fd of the debug file that the file
	 * of maps entry mp of pid names in its .gnu_debuglink (`name`, a plain
	 * file name), found beside it; the symbolizer checks its CRC-32 and
	 * build-id.  -errno if none.
	 */
	int (*open_debuglink)(void *ctx, uint32_t pid, const struct procmap *mp, const char *name);
	void *ctx;
};

/*
 * A symbolizer that reaches processes through ops (both functions
 * required; copied, ctx not owned) and reads kernel symbols from
 * kallsyms_fd (-1: none; not closed).  kallsyms failing to load is not
 * fatal: kernel frames then stay unsymbolized.  Returns 0 and *ret_s,
 * -EINVAL, or -ENOMEM.
 */
int symbolizer_new_ops(const struct symbolizer_ops *ops, int kallsyms_fd, struct symbolizer **ret_s);

/*
 * Called on a process's first sample.  Reads /proc/PID/maps once
 * (ops.open_maps), and opens (ops.open_file, once per distinct file, at
 * most SYMBOLIZER_MAX_PROC_FILES) and parses the files of its executable
 * mappings into a cache shared by all processes, keyed by the opened
 * file's dev, inode, size and times, so that each file is parsed once.
 * Files whose parse gives the same symbols (the same binary in several
 * containers) hold them once.  The maps are kept after the process exits,
 * until unused for SYMBOLIZER_KEEP_GENERATIONS.  That an fd is the mapped
 * file is ops.open_file's to check (in vigild the monitor does, mapfile.h).
 *
 * A re-read (a frame in no known mapping) keeps the mappings the process
 * has unmapped since, where nothing new lies: frames of samples taken
 * while a library was loaded still name it at the end of the interval.
 *
 * Cheap if (pid, start_ns) is already noted: returns the first result
 * again.  -ESRCH if the process is gone (or pid now names another
 * process), -ENOSPC past SYMBOLIZER_MAX_PROCESSES, -EACCES, -ENOMEM.
 */
int symbolizer_note_process(struct symbolizer *s, uint32_t pid, uint64_t start_ns);

/*
 * The process exec'ed at exec_ns (CLOCK_BOOTTIME; 0: unknown): every
 * cached (pid, *) whose maps were read before is unknown to lookups until
 * the next note reads its maps again; that read keeps the files of
 * mappings the process had before at the same place, same inode, same
 * offset, and asks the monitor for the others.  Maps read after exec_ns
 * are the new image's already, and stay, but for the mappings a re-read
 * kept from an earlier read (the old image's): those go.
 */
void symbolizer_forget_process(struct symbolizer *s, uint32_t pid, uint64_t exec_ns);

/*
 * The sample whose addresses are looked up next was taken at time_ns
 * (CLOCK_BOOTTIME; 0: unknown, the default).  An address of it in no
 * known mapping re-reads the maps only if they were read before time_ns:
 * a read begun later showed every mapping the sample was in (but one
 * unmapped since, which a re-read would not show either).  The re-read
 * is not spent then.
 */
void symbolizer_sample_time(struct symbolizer *s, uint64_t time_ns);


/*
 * A raw user instruction pointer.  If ip is in no cached mapping, the maps
 * are re-read once (at most once per generation per process) in case the
 * process mapped something new; not when no read could find it: the
 * process's maps were refused (EPERM), or ip is in the first page or in
 * the [stack] the last read showed.
 */
int symbolizer_user_ip(struct symbolizer *s, uint32_t pid, uint64_t start_ns, uint64_t ip,
		       bool is_return_addr, struct sym_frame *ret);

/*
 * A (build-id, file offset) user frame; build_id is the 20 bytes the
 * kernel reports (shorter build-ids zero-padded).  Named from the files of
 * (pid, start_ns) first (see the address convention above).  If none of
 * them has the build-id and the process is noted, its maps are re-read
 * once (at most once per generation) in case it dlopen'ed the file.
 */
int symbolizer_user_bid(struct symbolizer *s, uint32_t pid, uint64_t start_ns,
			const uint8_t build_id[20], uint64_t file_offset, bool is_return_addr,
			struct sym_frame *ret);

/* A kernel instruction pointer. */
int symbolizer_kernel(struct symbolizer *s, uint64_t ip, bool is_return_addr,
		      struct sym_frame *ret);

/*
 * Drop processes not used since generation now_gen -
 * SYMBOLIZER_KEEP_GENERATIONS, then files and non-file mappings that no
 * remaining process references and that were not used since then either.
 */
void symbolizer_gc(struct symbolizer *s, uint64_t now_gen);

/* Advance the generation (call once per interval) and gc. */
void symbolizer_tick(struct symbolizer *s);

void symbolizer_get_stats(const struct symbolizer *s, struct symbolizer_stats *ret);

/*
 * Change the parse-time budget (the defaults are SYMBOLIZER_PARSE_PERCENT
 * and SYMBOLIZER_PARSE_BURST_MS); the credit starts full again.  0 and 0
 * defer every new file until the budget is raised.
 */
void symbolizer_set_parse_budget(struct symbolizer *s, unsigned percent, unsigned burst_ms);

void symbolizer_free(struct symbolizer *s);

/*
 * Unwinding (unwind.c): the executable mapping of (pid, start_ns) holding
 * ip, with its file's CFI and the mapping's load bias (runtime address
 * minus the file's own).  cfi is owned by the symbolizer and valid until
 * the next call of any symbolizer function.
 */
struct cfi;
struct sym_unwind_map {
	uint64_t start, end, bias;
	const struct cfi *cfi;
};

/*
 * 0 and *ret; -ESRCH: the process was never noted; -ENOENT: ip is in none
 * of its executable mappings, after a re-read as symbolizer_user_ip()
 * makes one; -ENODATA: the mapping has no CFI (JIT code,
 * a file without .eh_frame_hdr, or one whose CFI could not be read).
 */
int symbolizer_unwind_map(struct symbolizer *s, uint32_t pid, uint64_t start_ns, uint64_t ip,
			  struct sym_unwind_map *ret);

/*
 * What symbolizer_unwind_map() answers for (pid, start_ns) rests on: the
 * generation (symbolizer_tick), the version of the process's mappings,
 * which changes with every read, re-read or drop of them, and the CFI
 * reloads so far (a reloaded CFI gets a new id: rules learnt from the old
 * are not assumed to hold).  While all three stay, every question about
 * the process's addresses gets the same answer, but for CFI that could
 * not be read then (deferred, or dropped and not read again), which may
 * be there later (unwind.c's memo keeps only what did not need it), and
 * for an address in none of its mappings, which a later sample may re-read
 * the maps for (the memo keeps no stack that met one).  0 and *ret,
 * -ESRCH (not noted, or exec'd since).
 */
struct sym_maps_version {
	uint64_t gen, maps, cfi;
};
int symbolizer_maps_version(struct symbolizer *s, uint32_t pid, uint64_t start_ns,
			     struct sym_maps_version *ret);

/*
 * The mapping whose CFI bytes (as held now: none are read by this call)
 * cover addr, for libunwind reading an expression it cached by address:
 * 0 and *ret, -ESRCH, or -ENOENT.  A scan of the process's mappings.
 */
int symbolizer_unwind_data(struct symbolizer *s, uint32_t pid, uint64_t start_ns, uint64_t addr,
			   struct sym_unwind_map *ret);

#endif
