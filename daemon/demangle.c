/*
 * demangle.c - readable C++ names, cached and bounded (see demangle.h).
 */
#include "demangle.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/*
 * The Itanium C++ ABI's demangler, from libiberty (libiberty-dev: a
 * static archive, of which only the demangler is linked).  libstdc++'s
 * __cxa_demangle is the same code, but mapping libstdc++ for it cost the
 * collector ~0.9 MiB of resident pages (its constructors set up iostreams).
 */
#include <libiberty/demangle.h>

#define SLOTS (2 * DEMANGLE_CACHE_ENTRIES) /* a power of two, at most half full */

struct slot {
	uint64_t hash;
	char *in;  /* the mangled name; NULL: free */
	char *out; /* its readable form; NULL: the demangler refused it */
};

static struct slot *slots;
static struct demangle_stats st;

/* FNV-1a, 64-bit. */
static uint64_t hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

void demangle_reset(void)
{
	if (slots) {
		for (size_t i = 0; i < SLOTS; i++) {
			free(slots[i].in);
			free(slots[i].out);
		}
		free(slots);
		slots = NULL;
	}
	st.evicted += st.entries;
	st.entries = 0;
	st.bytes = 0;
}

/* The demangler's answer, cut to DEMANGLE_MAX_OUT; NULL when it refuses. */
static char *run(const char *sym)
{
	/* What __cxa_demangle asks of the same demangler: parameters, and types too. */
	char *out = cplus_demangle_v3(sym, DMGL_PARAMS | DMGL_TYPES);

	if (!out)
		return NULL;
	if (strlen(out) > DEMANGLE_MAX_OUT)
		memcpy(out + DEMANGLE_MAX_OUT - 3, "...", 4);
	return out;
}

const char *demangle(const char *sym)
{
	size_t len, i;
	uint64_t h;
	char *out;

	if (strncmp(sym, "_Z", 2) != 0)
		return sym;
	len = strnlen(sym, DEMANGLE_MAX_IN + 1);
	if (len > DEMANGLE_MAX_IN)
		return sym;
	h = hash(sym);
	if (slots) {
		for (i = h & (SLOTS - 1); slots[i].in; i = (i + 1) & (SLOTS - 1)) {
			if (slots[i].hash == h && strcmp(slots[i].in, sym) == 0) {
				st.hits++;
				return slots[i].out ? slots[i].out : sym;
			}
		}
	}
	st.misses++;
	out = run(sym);
	if (st.entries >= DEMANGLE_CACHE_ENTRIES ||
	    st.bytes + len + 1 + (out ? strlen(out) + 1 : 0) > DEMANGLE_CACHE_BYTES)
		demangle_reset();
	if (!slots && !(slots = calloc(SLOTS, sizeof(*slots))))
		goto uncached;
	for (i = h & (SLOTS - 1); slots[i].in; i = (i + 1) & (SLOTS - 1))
		;
	if (!(slots[i].in = strdup(sym)))
		goto uncached;
	slots[i].hash = h;
	slots[i].out = out;
	st.entries++;
	st.bytes += len + 1 + (out ? strlen(out) + 1 : 0);
	return out ? out : sym;
uncached:
	/* No memory for the cache: the plain name rather than a leak. */
	free(out);
	return sym;
}

const struct demangle_stats *demangle_stats(void)
{
	return &st;
}
