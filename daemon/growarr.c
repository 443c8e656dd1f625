/*
 * growarr.c - grow a heap array by doubling (growarr.h).
 */
#include "growarr.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int growarr(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
	size_t c = *cap ? *cap : (first ? first : 1);
	void *a;

	if (need <= *cap)
		return 0;
	while (c < need) {
		if (c > SIZE_MAX / 2)
			return -ENOMEM;
		c *= 2;
	}
	a = reallocarray(*p, c, elem);
	if (!a)
		return -ENOMEM;
	*p = a;
	*cap = c;
	return 0;
}
