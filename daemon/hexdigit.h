/*
 * hexdigit.h - the value of one hexadecimal digit, for the text parsers of
 * the collector (/proc/PID/maps, /proc/kallsyms) that read addresses
 * without strtoull(), whose locale, base prefixes, signs and leading
 * blanks the kernel's fixed formats do not need.
 *
 * Library-like: no state, no allocation, never logs.
 */
#ifndef VIGIL_HEXDIGIT_H
#define VIGIL_HEXDIGIT_H

/* 0..15 for '0'-'9', 'a'-'f' and 'A'-'F'; -1 for any other char. */
int hexdigit_value(char c);

#endif
