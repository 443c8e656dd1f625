/*
 * decimal.h - strict decimal numbers from the command line and the
 * environment: digits only (no sign, blank, base prefix or trailing junk),
 * within a range.  Used by vigild's and vigil-cp's option parsers and by
 * notify.c (WATCHDOG_USEC).  Library-like: never logs.
 */
#ifndef VIGIL_DECIMAL_H
#define VIGIL_DECIMAL_H

#include <stdint.h>

/*
 * s as an unsigned number in [lo, hi] into *ret.  0; -EINVAL when s is
 * NULL or does not start with a digit; -ERANGE for anything else wrong
 * (junk after the digits, overflow, out of range).
 */
int decimal_uint(const char *s, unsigned long lo, unsigned long hi, unsigned *ret);

/* The same for any 64-bit unsigned number. */
int decimal_u64(const char *s, uint64_t *ret);

#endif
