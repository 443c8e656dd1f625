/*
 * growarr.h - grow a heap array by doubling, for the collector's table
 * builders (kallsyms.c, toknames.c).
 *
 * Library-like: 0 or -ENOMEM, never logs.
 */
#ifndef VIGIL_GROWARR_H
#define VIGIL_GROWARR_H

#include <stddef.h>

/*
 * Make *p (of *cap elements of elem bytes) hold at least need elements:
 * the capacity doubles from *cap, or from first when *cap is 0.  On
 * failure *p and *cap are unchanged.  0 or -ENOMEM (overflow included).
 */
int growarr(void **p, size_t *cap, size_t need, size_t elem, size_t first);

#endif
