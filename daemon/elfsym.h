/*
 * elfsym.h - the function symbols, build-id and loadable segments of one
 * ELF file, read with bounded preads and kept in compact arrays.
 *
 * Part of the symbolization library used by the collector process, which
 * parses ELF files of profiled processes without privileges.  The input is
 * hostile: any user can run a binary of their own making, and the
 * collector will read it.  Whatever its headers claim, one file costs at
 * most the limits below; past one of them, or on any inconsistency, the
 * file is refused and the caller keeps it without symbols (its frames stay
 * address + mapping).  Library-like: functions return 0 or -errno and
 * never log.
 *
 * Ownership: a struct elfsym owns every string and array it hands out;
 * they stay valid until elfsym_free().  No file descriptor is kept once
 * elfsym_open_*() returns.
 */
#ifndef VIGIL_ELFSYM_H
#define VIGIL_ELFSYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Limits, per file.  The largest binary on the development hosts
 * (/usr/bin/node, unstripped) has 153k function symbols in .symtab and
 * .dynsym together, with 11 MB of names in its string tables of 12.8 MB:
 * it must fit with room to spare, a file many times larger must not cost
 * more than a bounded fraction of the collector.
 *
 *  - Time: every byte read counts against ELFSYM_MAX_READ (headers, notes,
 *    symbol and string tables; the code is never read), in preads of at
 *    most ELFSYM_CHUNK bytes.  A table claiming more than what is left of
 *    that budget is refused before any of it is read, so a sparse file
 *    that claims a gigabyte costs nothing.  Sorting is of at most
 *    ELFSYM_MAX_SYMBOLS entries with a constant-time comparison.
 *  - Memory: at most ELFSYM_MAX_PEAK_MEM of heap while parsing (one string
 *    table at a time, the collected symbols and names, and the result),
 *    and elfsym_mem_usage() once parsed: at most 16 bytes a symbol, the
 *    names, and 40 bytes a segment.
 */
#define ELFSYM_MAX_READ      (64u << 20)  /* bytes read per file */
#define ELFSYM_CHUNK         65536        /* bytes per pread of a table */
#define ELFSYM_MAX_SECTIONS  65536        /* section headers (SHN_LORESERVE is 0xff00) */
#define ELFSYM_MAX_PHDRS     4096         /* program headers (the kernel execs <= 1170) */
#define ELFSYM_MAX_LOADS     64           /* PT_LOAD segments (linkers emit 2 to 5) */
#define ELFSYM_MAX_NOTES     16           /* note segments and sections looked at */
#define ELFSYM_MAX_NOTE_SIZE 65536        /* larger notes are skipped */
#define ELFSYM_MAX_STRTAB    (16u << 20)  /* bytes of one string table */
#define ELFSYM_MAX_SYMBOLS   (1u << 19)   /* function symbols of both tables */
#define ELFSYM_MAX_NAMES     (16u << 20)  /* bytes of their names (with NULs) */
#define ELFSYM_MAX_NAME_LEN  4095         /* longer names are truncated */
#define ELFSYM_MAX_BUILD_ID  64           /* longer build-ids are ignored */
#define ELFSYM_MAX_DEBUGDATA (8u << 20)   /* .gnu_debugdata larger than this is ignored */
#define ELFSYM_MAX_DEBUGLINK 255          /* a longer .gnu_debuglink name is ignored */

/*
 * The parse's peak heap, from the limits: the read buffer and one string
 * table, plus the collected symbols (24 bytes each) and names, each
 * counted twice for the moment a growing array is copied.  That covers
 * the finishing phase too, when the string table is gone and the result
 * (16 bytes a symbol, and the names) is built.  The sort works in place.
 * Checked by tests/unit/test_elfsym.c.
 */
#define ELFSYM_MAX_PEAK_MEM                                                   \
	((size_t)ELFSYM_CHUNK + ELFSYM_MAX_STRTAB + 2 * 24 * (size_t)ELFSYM_MAX_SYMBOLS + \
	 2 * (size_t)ELFSYM_MAX_NAMES + 64 * ELFSYM_MAX_LOADS + 4096)

struct elfsym;

/*
 * Parse the ELF file open at fd (read with pread(); the fd is neither
 * closed nor kept).  ELFCLASS32 and ELFCLASS64, either byte order.  Reads
 * the NT_GNU_BUILD_ID note, the PT_LOAD program headers, and the defined
 * STT_FUNC/STT_GNU_IFUNC symbols of the first SHT_SYMTAB and the first
 * SHT_DYNSYM section, merged, deduplicated and sorted by address (a
 * versioned name, "clock_gettime@@GLIBC_2.17", is kept without its version).  Of
 * several names at one address the one with the fewest leading
 * underscores wins (getpid over __getpid), then global over weak over
 * local, then the sized one, then the shorter, then the first in byte order;
 * a symbol of size 0 extends to the next symbol (or the end of its
 * segment).  Only ET_EXEC and ET_DYN files are accepted.
 *
 * Returns 0 and *ret_elf; -EINVAL if fd is not a regular file or the ELF
 * is malformed (an offset or size past the end of the file, a table
 * overlapping its strings or the headers, a wrong entry size, a string
 * offset out of range, a string table not ending in NUL...); -E2BIG past
 * the limits above; -ESTALE if the file changed while it was read in a
 * way the kernel records (it shrank, or its size or times differ
 * afterwards); -ENOMEM; or -errno of I/O.  A change the kernel does not
 * record goes unseen: stores through a writable MAP_SHARED mapping into a
 * page already dirty change no timestamp (only the first write to a clean
 * page does), nor, where timestamps are coarse, does a write within the
 * same clock tick as the one before it.  Whoever can write the file that
 * way chooses its content anyway; what they get is symbols mixed from two
 * versions of their own file, within the limits above.
 */
int elfsym_open_fd(int fd, struct elfsym **ret_elf);

/* Same, from an image in memory (read in place, never past len; buf need
 * not outlive the call). */
int elfsym_open_mem(const void *buf, size_t len, struct elfsym **ret_elf);

/*
 * Where the file's .gnu_debugdata section lies (MiniDebugInfo: an
 * xz-compressed ELF whose .symtab holds the functions the file's own
 * tables lack), within the file and at most ELFSYM_MAX_DEBUGDATA bytes:
 * 0 and *ret_offset, *ret_size; -ENOENT if it has none.  Its content is
 * the caller's to read and check (it is as hostile as the file).
 */
int elfsym_debugdata(const struct elfsym *e, uint64_t *ret_offset, uint64_t *ret_size);

/*
 * The file name its .gnu_debuglink gives for its separate debug file, and
 * that file's CRC-32 in *ret_crc; NULL if it has none.  Owned by e.  Any
 * bytes but NUL: what a name may be is the monitor's to decide.
 */
const char *elfsym_debuglink(const struct elfsym *e, uint32_t *ret_crc);

/* The build-id bytes and their count, or NULL if the file has none. */
const uint8_t *elfsym_build_id(const struct elfsym *e, size_t *ret_len);

/* Size of the file in bytes. */
uint64_t elfsym_file_size(const struct elfsym *e);

/* Number of distinct function symbols kept. */
size_t elfsym_symbol_count(const struct elfsym *e);

/* Heap bytes held by e (for the caller's memory budget). */
size_t elfsym_mem_usage(const struct elfsym *e);

/*
 * Whether a and b hold the same build-id, segments, symbols and names:
 * everything elfsym_offset_to_vaddr() and elfsym_lookup() answer from, so
 * that either one answers every question as the other would.  (The bytes
 * the reader never reads, the code, are not compared.)  Two NULLs are
 * the same.
 */
bool elfsym_same(const struct elfsym *a, const struct elfsym *b);

/*
 * A 64-bit hash of what elfsym_same() compares, keyed by seed (pick it at
 * random, so that files cannot be made to collide on purpose).  Equal for
 * the same; not a cryptographic hash: compare with elfsym_same().
 */
uint64_t elfsym_hash(const struct elfsym *e, uint64_t seed);

/*
 * Translate a file offset to a virtual address through the PT_LOAD
 * segment holding it: vaddr = p_vaddr + (offset - p_offset).  Executable
 * segments are tried first.  -ENOENT if no segment's file bytes hold it.
 */
int elfsym_offset_to_vaddr(const struct elfsym *e, uint64_t file_offset, uint64_t *ret_vaddr);

/*
 * The inverse, through the PT_LOAD segment whose file bytes hold vaddr:
 * 0, *ret_offset and *ret_avail (bytes of the segment's file image from
 * there on); -ENOENT if none holds it.
 */
int elfsym_vaddr_to_offset(const struct elfsym *e, uint64_t vaddr, uint64_t *ret_offset,
			   uint64_t *ret_avail);

/* The i-th PT_LOAD segment (0 and its fields), -ENOENT past the last. */
int elfsym_segment(const struct elfsym *e, size_t i, uint64_t *ret_offset, uint64_t *ret_vaddr,
		   uint64_t *ret_filesz);

/*
 * Where the PT_GNU_EH_FRAME segment (.eh_frame_hdr) lies: 0 and its file
 * offset, address and size (within the file); -ENOENT if there is none.
 * Its bytes are the caller's to read and check (cfi.h).
 */
int elfsym_eh_frame_hdr(const struct elfsym *e, uint64_t *ret_offset, uint64_t *ret_vaddr,
			uint64_t *ret_size);

/*
 * The name of the function covering vaddr, or NULL if none does.  The
 * string is owned by e.  *ret_offset_in_sym (optional) gets vaddr minus the
 * symbol's address.
 */
const char *elfsym_lookup(const struct elfsym *e, uint64_t vaddr, uint64_t *ret_offset_in_sym);

void elfsym_free(struct elfsym *e);

#endif
