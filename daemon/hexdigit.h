/*
 * hexdigit.h - hexadecimal digits: the value of one, for the text parsers
 * of the collector (/proc/PID/maps, /proc/kallsyms) that read addresses
 * without strtoull(), whose locale, base prefixes, signs and leading
 * blanks the kernel's fixed formats do not need; and bytes written as hex
 * (build-ids, hashes, fingerprints, instance ids).
 *
 * Library-like: no state, no allocation, never logs.
 */
#ifndef VIGIL_HEXDIGIT_H
#define VIGIL_HEXDIGIT_H

#include <stddef.h>
#include <stdint.h>

/* 0..15 for '0'-'9', 'a'-'f' and 'A'-'F'; -1 for any other char. */
int hexdigit_value(char c);

/* b[0..n) as lower-case hex into out, which has room for 2n + 1 chars (NUL-terminated). */
void hexdigit_encode(const uint8_t *b, size_t n, char *out);

#endif
