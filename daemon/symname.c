/*
 * symname.c - symbol-name ranking shared by the ELF and kernel symbol
 * readers (see symname.h).  Runs in the collector; no state.
 */
#include "symname.h"

size_t symname_leading_underscores(const char *name, size_t max)
{
	size_t n = 0;

	while (n < max && name[n] == '_')
		n++;
	return n;
}
