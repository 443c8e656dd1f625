/*
 * decimal.c - strict decimal numbers (see decimal.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "decimal.h"

int decimal_uint(const char *s, unsigned long lo, unsigned long hi, unsigned *ret)
{
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end != '\0' || v < lo || v > hi)
		return -ERANGE;
	*ret = (unsigned)v;
	return 0;
}

int decimal_u64(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0')
		return -ERANGE;
	*ret = (uint64_t)v;
	return 0;
}
