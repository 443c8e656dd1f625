/*
 * polrevert.h - a rollback is a new policy: the old policy's YAML with
 * its top-level "serial:" value replaced by the next serial, every other
 * byte kept (comments, order, spacing), ready for vigil-sign.  Serials
 * only move forward on agents, so this is how an administrator goes back.
 * Used by vigilctl (policy revert).
 *
 * The serial line is a line that starts at column 0 with "serial:"
 * (block-style YAML, as docs/policy.md writes policies); its value runs to
 * the end of the line or to a " #" comment.  Exactly one such line must
 * exist.  Library-like: 0 or -errno with a one-line reason in err.
 */
#ifndef VIGIL_POLREVERT_H
#define VIGIL_POLREVERT_H

#include <stddef.h>
#include <stdint.h>

/*
 * yaml[0..len) with its top-level serial set to serial (> 0), in a new
 * malloc'ed buffer (*ret, *ret_len; NUL-terminated past ret_len).  -EINVAL
 * with the reason in err: no top-level serial line, two of them, an empty
 * value; -ENOMEM.
 */
int polrevert_reserial(const char *yaml, size_t len, int64_t serial, char **ret, size_t *ret_len, char *err,
		       size_t errlen);

#endif
