/*
 * procmaps.h - parse /proc/PID/maps into a sorted array of mappings.
 *
 * Part of the symbolization library used by the collector process (no
 * privileges beyond reading /proc).  Library-like: functions return 0 or
 * -errno and never log.
 *
 * Ownership: a struct procmaps and everything it points to (the maps array
 * and every path string) is one allocation owned by the caller, released
 * with procmaps_free().  Pointers into it stay valid until then.
 */
#ifndef VIGIL_PROCMAPS_H
#define VIGIL_PROCMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* More lines than this in one maps file is treated as hostile: -E2BIG. */
#define PROCMAPS_MAX_LINES 65536
/* Longest path accepted on one line (the kernel never prints more). */
#define PROCMAPS_MAX_PATH 4096
/* procmaps_read() refuses maps files larger than this: -E2BIG. */
#define PROCMAPS_MAX_FILE (16u << 20)

struct procmap {
	uint64_t start, end;  /* [start, end) in the process's address space */
	uint64_t offset;      /* file offset of start */
	uint64_t inode;       /* 0 for anonymous and pseudo mappings */
	uint32_t dev_major, dev_minor;
	uint32_t prot;        /* PROT_READ|PROT_WRITE|PROT_EXEC from "rwxp" */
	bool shared;          /* 's' rather than 'p' */
	bool deleted;         /* path ended with " (deleted)"; stripped from path */
	/*
	 * "" for anonymous memory, "[vdso]", "[heap]", "[stack]" ... for
	 * pseudo mappings, else the file's path as the kernel prints it.
	 * Kernel escapes (a newline printed as "\012") are left as printed.
	 */
	const char *path;
};

struct procmaps {
	struct procmap *maps; /* sorted by start */
	size_t n;
};

/*
 * Parse the text of a maps file: buf[0..len), which need not be
 * NUL-terminated and is never read past len.  The last line may lack its
 * newline.  Returns 0 and *ret_maps (free with procmaps_free), -EINVAL on
 * a malformed line, -E2BIG past PROCMAPS_MAX_LINES, -ENOMEM.
 */
int procmaps_parse(const char *buf, size_t len, struct procmaps **ret_maps);

/*
 * Read and parse /proc/PID/maps.  -ESRCH if the process is gone, -EACCES
 * if not permitted, -E2BIG past PROCMAPS_MAX_FILE, else as procmaps_parse().
 * A zombie or kernel thread yields an empty (n == 0) result.
 */
int procmaps_read(int pid, struct procmaps **ret_maps);

/*
 * The same from an fd of an already opened maps file, read from its
 * current position to the end; the fd stays open and owned by the caller.
 * (/proc/PID/maps checks access when opened, so an fd opened by a
 * privileged process can be read by an unprivileged one.)
 */
int procmaps_read_fd(int fd, struct procmaps **ret_maps);

/* The mapping containing addr (binary search), or NULL if none. */
const struct procmap *procmaps_find(const struct procmaps *m, uint64_t addr);

void procmaps_free(struct procmaps *m);

#endif
