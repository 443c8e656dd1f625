/*
 * demangle.h - readable C++ names for pprof's Function.name.
 *
 * pprof's Function carries two names: `name`, for people ("ns::Foo::bar(int)"),
 * and `system_name`, the symbol as the linker knows it ("_ZN2ns3Foo3barEi").
 * The demangling is the C++ runtime's own (the Itanium C++ ABI's
 * demangler, libiberty's cplus_demangle_v3, which is libstdc++'s
 * __cxa_demangle too), never a hand-written one.
 *
 * Runs in the collector on names read from the ELF files of profiled
 * processes: hostile input.  A name longer than DEMANGLE_MAX_IN is not
 * demangled; a result longer than DEMANGLE_MAX_OUT is cut with "...".
 * Results are cached (the same functions come back every interval), the
 * cache bounded by DEMANGLE_CACHE_ENTRIES and DEMANGLE_CACHE_BYTES: past
 * either it is emptied and starts again, and the evictions are counted.
 */
#ifndef VIGIL_DEMANGLE_H
#define VIGIL_DEMANGLE_H

#include <stddef.h>
#include <stdint.h>

#define DEMANGLE_MAX_IN        4096
#define DEMANGLE_MAX_OUT       4096
#define DEMANGLE_CACHE_ENTRIES 8192
#define DEMANGLE_CACHE_BYTES   (2u << 20)

/*
 * The readable form of sym when it is a mangled C++ name ("_Z..."), else
 * sym itself (C names, names the demangler refuses, and on ENOMEM).  The
 * pointer is valid until the next call.
 */
const char *demangle(const char *sym);

struct demangle_stats {
	uint64_t hits, misses, evicted; /* evicted: entries dropped by emptying the cache */
	size_t entries, bytes;
};

const struct demangle_stats *demangle_stats(void);

/* Empty the cache and free its memory (tests, and the collector at exit). */
void demangle_reset(void);

#endif
