/*
 * cfi.h - the call-frame information of one ELF file, as unwind.c needs
 * it: the .eh_frame_hdr search table (the PT_GNU_EH_FRAME segment) and the
 * .eh_frame it indexes, copied into memory with bounded reads, or mapped
 * read-only from the file when only root can change it (root's, written
 * by no one else, on a local file system the system mounted) and the process has
 * mapguard_install()ed: then only the pages unwinding reads are resident,
 * shared with the page cache, and a truncation reads zeros (mapguard.h).
 *
 * Part of the collector's unwinding, which runs without privileges.  The
 * file is hostile (any user can run a binary of their own making): the
 * header is checked here, every later read of these bytes by libunwind
 * goes through unwind.c's bounds-checked accessor, and the copies are
 * bounded by the limits below.  Library-like: returns 0 or -errno, never
 * logs.
 *
 * Format (Linux Standard Base, "Exception Frame Header"): u8 version (1),
 * u8 eh_frame_ptr_enc, u8 fde_count_enc, u8 table_enc, the encoded
 * address of .eh_frame, the encoded FDE count, then fde_count pairs
 * (initial location, FDE address), sorted.  libunwind's remote table
 * search reads the pairs as DW_EH_PE_datarel|DW_EH_PE_sdata4, relative to
 * the header: that is what GNU ld and lld write, and the only table
 * encoding accepted here.
 */
#ifndef VIGIL_CFI_H
#define VIGIL_CFI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* .eh_frame_hdr of the largest Debian binaries is under 1 MiB, .eh_frame under 8. */
#define CFI_MAX_HDR      (4u << 20)
#define CFI_MAX_EH_FRAME (12u << 20)

struct elfsym;

#define CFI_MAX_SEGS 8 /* PT_LOAD segments kept, for the load bias (linkers emit 2 to 5) */

struct cfi_seg {
	uint64_t offset, vaddr, filesz;
};

struct cfi {
	uint64_t hdr_vaddr;   /* the header's address, in the file's own terms */
	uint64_t ehf_vaddr;   /* .eh_frame's */
	uint64_t hdr_offset, ehf_offset; /* where both lie in the file */
	uint32_t fde_count;   /* table entries (each 8 bytes, after the 12-byte head) */
	size_t hdr_len, ehf_len;
	uint8_t *hdr, *ehf;   /* owned (heap, or mapped); NULL after cfi_drop_bytes() */
	bool mapped;          /* hdr and ehf lie in mappings of the file */
	/*
	 * Unique among the CFI objects of this process, and new whenever the
	 * bytes are (read, cloned or reloaded): what steprules.h keys by.
	 */
	uint64_t id;
	size_t nsegs;
	struct cfi_seg segs[CFI_MAX_SEGS];
	/* For the cache that holds it (the symbolizer); 0 from the readers here. */
	size_t refs;          /* files it serves */
	uint64_t used;        /* the cache's clock at its last use */
};

/*
 * Read the CFI of the file open at fd (pread or mmap; the fd is neither
 * closed nor kept), whose headers e parsed.  0 and *ret; -ENOENT: no PT_GNU_EH_FRAME, or an
 * empty table; -ENOTSUP: an encoding other than the above; -EINVAL: the
 * header or table lies outside the file or its segments; -ENOMEM; -errno
 * of I/O; -ESTALE: the file changed while read.  A .eh_frame longer than CFI_MAX_EH_FRAME is cut there (FDEs past
 * it then fail to read: those frames end their stacks).
 */
int cfi_read_fd(int fd, const struct elfsym *e, struct cfi **ret);

/* Same from an image in memory whose file offsets are its indexes (the vDSO). */
int cfi_read_mem(const void *img, size_t len, const struct elfsym *e, struct cfi **ret);

/*
 * The load bias of a mapping of the file: runtime address minus file
 * address, for a mapping at start of file offset offset.  -ENOENT if no
 * segment holds that offset.
 */
int cfi_bias(const struct cfi *c, uint64_t start, uint64_t offset, uint64_t *ret_bias);

/*
 * Whether a and b, both holding their bytes, are the same CFI: the same
 * addresses, table and segments, and byte for byte the same .eh_frame_hdr
 * and .eh_frame.  Two files' CFI that compare equal unwind every address
 * alike, whatever else differs between the files.
 */
bool cfi_same(const struct cfi *a, const struct cfi *b);

/* A copy of c's description without its bytes (to be read with cfi_reload_fd); NULL: ENOMEM. */
struct cfi *cfi_clone_empty(const struct cfi *c);

/* Free the copied bytes, keep where they lie (for a cache that evicts). */
void cfi_drop_bytes(struct cfi *c);

/* Read them again from the same file, open at fd: 0 or -errno (c unchanged). */
int cfi_reload_fd(struct cfi *c, int fd);

/* Bytes held by c, copied or mapped (what the symbolizer's budget counts). */
size_t cfi_mem_usage(const struct cfi *c);

/* Of those, the bytes mapped from the file (resident only where read). */
size_t cfi_mapped_bytes(const struct cfi *c);

void cfi_free(struct cfi *c);

#endif
