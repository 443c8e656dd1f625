/*
 * kallsyms.h - kernel text symbols from /proc/kallsyms, sorted for lookup.
 *
 * Part of the symbolization library used by the collector process.
 * Library-like: functions return 0 or -errno and never log.
 *
 * Ownership: every string handed out is owned by the struct kallsyms:
 * module names until kallsyms_free(), a symbol's name until the next
 * kallsyms_lookup() on the same table (names are kept as tokens,
 * toknames.h, and decoded into one buffer).
 */
#ifndef VIGIL_KALLSYMS_H
#define VIGIL_KALLSYMS_H

#include <stddef.h>
#include <stdint.h>

#define KALLSYMS_MAX_LINES   (8u << 20)   /* more: -E2BIG */
#define KALLSYMS_MAX_LINE    4096         /* longer line: -EINVAL */
#define KALLSYMS_MAX_MODULES 65535        /* more distinct modules: -E2BIG */
/*
 * kallsyms has no sizes: a symbol covers up to the next one, but no more
 * than this many bytes (so an address far past the last symbol of a region
 * is not blamed on it).
 */
#define KALLSYMS_MAX_SYMBOL_SIZE (1u << 20)

struct kallsyms;

/*
 * Load the text symbols (types t, T, w, W) of a kallsyms-format file,
 * usually "/proc/kallsyms".  Of several names at one address a global one
 * with the fewest leading underscores wins.  Symbols of modules keep their
 * module, as "[name]" with the brackets.
 *
 * Returns 0 and *ret_k; -EPERM if every address read is 0 (kptr_restrict
 * hides them from this process); -ENODATA if there is no text symbol;
 * -EINVAL on a malformed line; -E2BIG past the limits above; -ENOMEM;
 * -errno from opening or reading the file.
 */
int kallsyms_load(const char *path, struct kallsyms **ret_k);

/*
 * The same from an open fd (not closed).  /proc/kallsyms decides whether
 * to show addresses from the credentials of whoever opened it, so a
 * privileged process can open it and hand the fd to an unprivileged one.
 */
int kallsyms_load_fd(int fd, struct kallsyms **ret_k);

/*
 * The name of the text symbol covering addr, or NULL.  *ret_module
 * (optional) gets NULL for the kernel image or "[module]"; *ret_off
 * (optional) gets addr minus the symbol's address.  Outputs are written
 * only when a symbol is found.
 */
const char *kallsyms_lookup(struct kallsyms *k, uint64_t addr, const char **ret_module,
			    uint64_t *ret_off);

/*
 * Address range of a module's text symbols (module == NULL: the kernel
 * image; otherwise a pointer kallsyms_lookup() returned, or a "[name]"
 * string): [*ret_start, *ret_end), where ret_end is one past the highest
 * symbol address.  -ENOENT if there is no such module.
 */
int kallsyms_range(const struct kallsyms *k, const char *module, uint64_t *ret_start,
		   uint64_t *ret_end);

size_t kallsyms_count(const struct kallsyms *k);

/* Bytes held for the table and its names (0 for NULL). */
size_t kallsyms_bytes(const struct kallsyms *k);

void kallsyms_free(struct kallsyms *k);

#endif
