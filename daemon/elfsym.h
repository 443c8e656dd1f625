/*
 * elfsym.h - the function symbols, build-id and loadable segments of one
 * ELF file, parsed once with libelf and kept in compact arrays.
 *
 * Part of the symbolization library used by the collector process, which
 * parses ELF files of profiled processes without privileges: the input is
 * untrusted, and corrupt files fail with -EINVAL instead of crashing.
 * Library-like: functions return 0 or -errno and never log.
 *
 * Ownership: a struct elfsym owns every string and array it hands out;
 * they stay valid until elfsym_free().  No file descriptor or libelf handle
 * is kept once elfsym_open_*() returns.
 */
#ifndef VIGIL_ELFSYM_H
#define VIGIL_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

#define ELFSYM_MAX_FILE_SIZE (1ull << 30) /* larger files: -E2BIG */
#define ELFSYM_MAX_SYMBOLS   (4u << 20)   /* more FUNC symbols: -E2BIG */
#define ELFSYM_MAX_NAMES     (256u << 20) /* bytes of symbol names: -E2BIG */
#define ELFSYM_MAX_NAME_LEN  4095         /* longer names are truncated */
#define ELFSYM_MAX_PHDRS     4096         /* more program headers: -E2BIG */
#define ELFSYM_MAX_BUILD_ID  64           /* longer build-ids are ignored */

struct elfsym;

/*
 * Parse the ELF file open at fd (read with pread(); the fd is neither
 * closed nor kept).  Reads the NT_GNU_BUILD_ID note, the PT_LOAD program
 * headers, and STT_FUNC/STT_GNU_IFUNC symbols of both .symtab and .dynsym,
 * merged, deduplicated and sorted by address.  Of several names at one
 * address the one with the fewest leading underscores wins (getpid over
 * __getpid), then global over weak over local, then the sized one; a
 * symbol of size 0 extends to the next symbol (or the end of its segment).
 * Only ET_EXEC and ET_DYN files are accepted.
 *
 * Returns 0 and *ret_elf, -EINVAL if fd is not a regular file or the ELF
 * is malformed, -E2BIG past the limits above, -ENOMEM, or -errno of I/O.
 */
int elfsym_open_fd(int fd, struct elfsym **ret_elf);

/* Same, from an image in memory (copied: buf need not outlive the call). */
int elfsym_open_mem(const void *buf, size_t len, struct elfsym **ret_elf);

/* The build-id bytes and their count, or NULL if the file has none. */
const uint8_t *elfsym_build_id(const struct elfsym *e, size_t *ret_len);

/* Size of the file in bytes. */
uint64_t elfsym_file_size(const struct elfsym *e);

/* Number of distinct function symbols kept. */
size_t elfsym_symbol_count(const struct elfsym *e);

/* Heap bytes held by e (for the caller's memory budget). */
size_t elfsym_mem_usage(const struct elfsym *e);

/*
 * Translate a file offset to a virtual address through the PT_LOAD
 * segment holding it: vaddr = p_vaddr + (offset - p_offset).  Executable
 * segments are tried first.  -ENOENT if no segment's file bytes hold it.
 */
int elfsym_offset_to_vaddr(const struct elfsym *e, uint64_t file_offset, uint64_t *ret_vaddr);

/*
 * The name of the function covering vaddr, or NULL if none does.  The
 * string is owned by e.  *ret_offset_in_sym (optional) gets vaddr minus the
 * symbol's address.
 */
const char *elfsym_lookup(const struct elfsym *e, uint64_t vaddr, uint64_t *ret_offset_in_sym);

void elfsym_free(struct elfsym *e);

#endif
