/*
 * symname.h - how "public" a symbol name looks, for the symbol readers of
 * the collector (elfsym for ELF files, kallsyms for the kernel) when one
 * address carries several names and one must be shown.
 *
 * The convention both follow: implementation aliases of a function carry
 * more leading underscores than its public name (getpid, __getpid,
 * __GI___getpid; do_sys_open, __do_sys_open), so fewer is better.  Each
 * reader combines this with what its own format knows (ELF binding,
 * kallsyms type letter); see elfsym.h and kallsyms.h for the full order.
 *
 * Library-like: no state, no allocation, never logs.
 */
#ifndef VIGIL_SYMNAME_H
#define VIGIL_SYMNAME_H

#include <stddef.h>

/*
 * The number of '_' that name starts with, looking at no more than max
 * bytes: the count stops at the first other byte (a NUL included), so a
 * NUL-terminated name may be passed with any max at least its length.
 */
size_t symname_leading_underscores(const char *name, size_t max);

#endif
