/*
 * cfi.c - one ELF file's .eh_frame_hdr and .eh_frame for unwinding
 * (cfi.h), copied or mapped.  Runs in the collector, without privileges,
 * on hostile files.
 */
#include <errno.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cfi.h"
#include "elfsym.h"
#include "mapguard.h"

/* DW_EH_PE_* pointer encodings (LSB, "DWARF Extensions": .eh_frame). */
#define PE_ABSPTR  0x00
#define PE_UDATA4  0x03
#define PE_UDATA8  0x04
#define PE_SDATA4  0x0b
#define PE_SDATA8  0x0c
#define PE_PCREL   0x10
#define PE_DATAREL 0x30
#define HDR_HEAD   12 /* version, 3 encodings, eh_frame_ptr, fde_count (4 bytes each here) */

struct source {
	int fd;            /* -1: read from img */
	const uint8_t *img;
	size_t img_len;
};

static int read_at(const struct source *src, uint64_t off, void *buf, size_t len)
{
	if (src->fd < 0) {
		if (off > src->img_len || len > src->img_len - off)
			return -EINVAL;
		memcpy(buf, src->img + off, len);
		return 0;
	}
	for (size_t done = 0; done < len;) {
		ssize_t n = pread(src->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EINVAL; /* the file is shorter than its headers say */
		done += (size_t)n;
	}
	return 0;
}

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* The address .eh_frame_ptr names: 4-byte encodings only (what linkers write). */
static int eh_frame_address(const uint8_t *head, uint64_t hdr_vaddr, uint64_t *ret)
{
	uint8_t enc = head[1];
	uint32_t raw = le32(head + 4);
	uint64_t base;

	switch (enc & 0x70) {
	case PE_ABSPTR:
		base = 0;
		break;
	case PE_PCREL:
		base = hdr_vaddr + 4;
		break;
	case PE_DATAREL:
		base = hdr_vaddr;
		break;
	default:
		return -ENOTSUP;
	}
	switch (enc & 0x0f) {
	case PE_UDATA4:
		*ret = base + raw;
		return 0;
	case PE_SDATA4:
		*ret = base + (uint64_t)(int64_t)(int32_t)raw;
		return 0;
	default:
		return -ENOTSUP;
	}
}

/*
 * Whether the file's bytes [0, end) can be mapped rather than copied:
 * only root can change them (a regular file of root's, writable by
 * neither group nor others), they lie within the file, and the file
 * system is a local one that the system mounted: not FUSE, a network file
 * system or overlayfs (whose lower layers could be either), which could
 * serve other bytes at the next page fault; and not mounted nosuid or
 * nodev, as udisks and fusermount mount what a user brings (a disk image
 * whose bytes the user can change underneath).  Root may still truncate
 * the file: mapguard.h.
 */
static bool root_only(int fd, uint64_t end)
{
	struct statfs sf;
	struct stat st;

	if (!mapguard_installed() || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) || st.st_size < 0 || (uint64_t)st.st_size < end ||
	    fstatfs(fd, &sf) < 0 || (sf.f_flags & (ST_NOSUID | ST_NODEV)))
		return false;
	switch ((unsigned long)sf.f_type) {
	case EXT4_SUPER_MAGIC: /* ext2 and ext3 too */
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case TMPFS_MAGIC:
	case SQUASHFS_MAGIC:
		return true;
	default:
		return false;
	}
}

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

/* [off, off + len) of the file, mapped read-only and guarded; NULL on failure. */
static uint8_t *map_range(int fd, uint64_t off, size_t len)
{
	size_t delta = (size_t)(off % page_size());
	void *p;

	if (len == 0 || len > SIZE_MAX - delta)
		return NULL;
	p = mmap(NULL, delta + len, PROT_READ, MAP_PRIVATE, fd, (off_t)(off - delta));
	if (p == MAP_FAILED)
		return NULL;
	if (mapguard_add(p, delta + len) < 0) {
		munmap(p, delta + len);
		return NULL;
	}
	return (uint8_t *)p + delta;
}

static void unmap_range(uint8_t *b, uint64_t off, size_t len)
{
	size_t delta = (size_t)(off % page_size());

	if (!b)
		return;
	mapguard_remove(b - delta);
	munmap(b - delta, delta + len);
}

/*
 * Map c's two ranges from fd, if root_only() allows: true and c->hdr,
 * c->ehf set, or false with neither (then they are copied).
 */
static bool map_bytes(struct cfi *c, int fd)
{
	uint64_t end = c->hdr_offset + c->hdr_len > c->ehf_offset + c->ehf_len ?
			       c->hdr_offset + c->hdr_len : c->ehf_offset + c->ehf_len;
	uint8_t *h, *f;

	if (fd < 0 || c->ehf_len == 0 || !root_only(fd, end))
		return false;
	h = map_range(fd, c->hdr_offset, c->hdr_len);
	f = h ? map_range(fd, c->ehf_offset, c->ehf_len) : NULL;
	if (!f) {
		unmap_range(h, c->hdr_offset, c->hdr_len);
		return false;
	}
	c->hdr = h;
	c->ehf = f;
	c->mapped = true;
	return true;
}

/*
 * c's bytes (c->hdr and c->ehf, NULL on entry) from src, at the offsets and
 * lengths c holds: mapped where map_bytes() allows, else copied.  0 or
 * -errno, with neither set.
 */
static int load_bytes(struct cfi *c, const struct source *src)
{
	int r;

	if (map_bytes(c, src->fd))
		return 0;
	c->mapped = false;
	c->hdr = malloc(c->hdr_len);
	c->ehf = malloc(c->ehf_len ? c->ehf_len : 1);
	if (!c->hdr || !c->ehf)
		r = -ENOMEM;
	else if ((r = read_at(src, c->hdr_offset, c->hdr, c->hdr_len)) == 0 &&
		 (r = read_at(src, c->ehf_offset, c->ehf, c->ehf_len)) == 0)
		return 0;
	free(c->hdr);
	free(c->ehf);
	c->hdr = c->ehf = NULL;
	return r;
}

/* steprules.h keys rules by id: never 0, never reused. */
static uint64_t new_id(void)
{
	static uint64_t last;

	return __atomic_add_fetch(&last, 1, __ATOMIC_RELAXED);
}

static int cfi_read(const struct source *src, const struct elfsym *e, struct cfi **ret)
{
	uint64_t hoff, hvaddr, hsize, eoff, eavail;
	uint8_t head[HDR_HEAD];
	struct cfi *c;
	int r;

	if (!e || !ret)
		return -EINVAL;
	if ((r = elfsym_eh_frame_hdr(e, &hoff, &hvaddr, &hsize)) < 0)
		return r;
	if (hsize < HDR_HEAD || hsize > CFI_MAX_HDR)
		return hsize < HDR_HEAD ? -EINVAL : -E2BIG;
	if ((r = read_at(src, hoff, head, sizeof(head))) < 0)
		return r;
	if (head[0] != 1)
		return -ENOTSUP;
	if (head[2] != PE_UDATA4 || head[3] != (PE_DATAREL | PE_SDATA4))
		return -ENOTSUP;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->id = new_id();
	c->hdr_vaddr = hvaddr;
	c->fde_count = le32(head + 8);
	if (c->fde_count == 0) {
		r = -ENOENT;
		goto fail;
	}
	if ((uint64_t)c->fde_count > (hsize - HDR_HEAD) / 8) {
		r = -EINVAL;
		goto fail;
	}
	if ((r = eh_frame_address(head, hvaddr, &c->ehf_vaddr)) < 0)
		goto fail;
	if ((r = elfsym_vaddr_to_offset(e, c->ehf_vaddr, &eoff, &eavail)) < 0) {
		r = -EINVAL;
		goto fail;
	}
	c->hdr_offset = hoff;
	c->ehf_offset = eoff;
	for (size_t i = 0; c->nsegs < CFI_MAX_SEGS; i++) {
		struct cfi_seg *sg = &c->segs[c->nsegs];

		if (elfsym_segment(e, i, &sg->offset, &sg->vaddr, &sg->filesz) < 0)
			break;
		c->nsegs++;
	}
	c->hdr_len = HDR_HEAD + (size_t)c->fde_count * 8;
	c->ehf_len = eavail > CFI_MAX_EH_FRAME ? CFI_MAX_EH_FRAME : (size_t)eavail;
	if ((r = load_bytes(c, src)) < 0)
		goto fail;
	/* The head checked above is the one loaded, or the file changed in between. */
	if (memcmp(c->hdr, head, sizeof(head)) != 0) {
		r = -ESTALE;
		goto fail;
	}
	*ret = c;
	return 0;
fail:
	cfi_free(c);
	return r;
}

int cfi_read_fd(int fd, const struct elfsym *e, struct cfi **ret)
{
	struct source src = { .fd = fd };

	if (fd < 0)
		return -EBADF;
	return cfi_read(&src, e, ret);
}

int cfi_read_mem(const void *img, size_t len, const struct elfsym *e, struct cfi **ret)
{
	struct source src = { .fd = -1, .img = img, .img_len = len };

	if (!img)
		return -EINVAL;
	return cfi_read(&src, e, ret);
}

int cfi_bias(const struct cfi *c, uint64_t start, uint64_t offset, uint64_t *ret_bias)
{
	for (size_t i = 0; c && i < c->nsegs; i++) {
		const struct cfi_seg *sg = &c->segs[i];

		if (offset >= sg->offset && offset - sg->offset < sg->filesz) {
			*ret_bias = start - (sg->vaddr + (offset - sg->offset));
			return 0;
		}
	}
	return -ENOENT;
}

bool cfi_same(const struct cfi *a, const struct cfi *b)
{
	if (!a || !b || !a->hdr || !a->ehf || !b->hdr || !b->ehf)
		return false;
	if (a->hdr_vaddr != b->hdr_vaddr || a->ehf_vaddr != b->ehf_vaddr ||
	    a->hdr_offset != b->hdr_offset || a->ehf_offset != b->ehf_offset ||
	    a->fde_count != b->fde_count || a->hdr_len != b->hdr_len || a->ehf_len != b->ehf_len ||
	    a->nsegs != b->nsegs)
		return false;
	for (size_t i = 0; i < a->nsegs; i++)
		if (a->segs[i].offset != b->segs[i].offset || a->segs[i].vaddr != b->segs[i].vaddr ||
		    a->segs[i].filesz != b->segs[i].filesz)
			return false;
	return memcmp(a->hdr, b->hdr, a->hdr_len) == 0 && memcmp(a->ehf, b->ehf, a->ehf_len) == 0;
}

struct cfi *cfi_clone_empty(const struct cfi *c)
{
	struct cfi *n = malloc(sizeof(*n));

	if (!n)
		return NULL;
	*n = *c;
	n->hdr = n->ehf = NULL;
	n->mapped = false;
	n->id = new_id(); /* its bytes will be another file's */
	n->refs = 0;
	n->used = 0;
	return n;
}

void cfi_drop_bytes(struct cfi *c)
{
	if (!c)
		return;
	if (c->mapped) {
		unmap_range(c->hdr, c->hdr_offset, c->hdr_len);
		unmap_range(c->ehf, c->ehf_offset, c->ehf_len);
	} else {
		free(c->hdr);
		free(c->ehf);
	}
	c->hdr = c->ehf = NULL;
	c->mapped = false;
}

int cfi_reload_fd(struct cfi *c, int fd)
{
	struct source src = { .fd = fd };
	struct cfi n;
	int r;

	if (!c || fd < 0)
		return -EINVAL;
	n = *c;
	n.hdr = n.ehf = NULL;
	if ((r = load_bytes(&n, &src)) < 0)
		return r;
	/* The same head as before, or it is another file now. */
	if (le32(n.hdr + 8) != c->fde_count) {
		cfi_drop_bytes(&n);
		return -ESTALE;
	}
	cfi_drop_bytes(c);
	c->hdr = n.hdr;
	c->ehf = n.ehf;
	c->mapped = n.mapped;
	c->id = new_id(); /* the same file, but the rules learnt are not assumed to hold */
	return 0;
}

size_t cfi_mem_usage(const struct cfi *c)
{
	if (!c)
		return 0;
	return sizeof(*c) + (c->hdr ? c->hdr_len : 0) + (c->ehf ? c->ehf_len : 0);
}

size_t cfi_mapped_bytes(const struct cfi *c)
{
	return c && c->mapped && c->hdr ? c->hdr_len + c->ehf_len : 0;
}

void cfi_free(struct cfi *c)
{
	if (!c)
		return;
	cfi_drop_bytes(c);
	free(c);
}
