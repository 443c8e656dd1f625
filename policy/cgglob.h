/*
 * cgglob.h - glob patterns for one component of a cgroup path, and whether
 * two of them can match the same name.
 *
 * A policy selects cgroups with paths such as "/sys/fs/cgroup/web*":
 * each '/'-separated component is an fnmatch(3) pattern, matched with
 * FNM_NOESCAPE in the C locale (bytewise).  This module defines the subset of
 * fnmatch syntax a policy may use and decides, exactly, whether the sets of
 * names two components match intersect; policy.c builds "do two selectors
 * overlap" on top of that.
 *
 * Accepted syntax, per component (1 to 255 bytes, no '/', no NUL):
 *   *        any run of bytes, including none
 *   ?        any one byte
 *   [set]    one byte in the set; "[!set]" one byte not in it.  Members are
 *            single bytes or ranges "a-z" (byte order); ']' first is a
 *            member, '-' first or last is a member.
 *   other    that byte literally ('\' included: systemd escapes unit names
 *            as "\x2d", so backslash cannot be an escape character)
 * Refused, because they depend on the locale or on POSIXLY_CORRECT or read
 * as something they are not: '[' inside a set (classes like [:alpha:]),
 * "[^...]", an unterminated '[', a reversed range, "**", and the names "."
 * and "..".
 *
 * Library-like: returns 0 or -errno, never logs.
 */
#ifndef VIGIL_CGGLOB_H
#define VIGIL_CGGLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CGGLOB_NAME_MAX 255	/* longest cgroup directory name (NAME_MAX) */

/*
 * Check that s[0..len) is an acceptable component pattern.  0, or -EINVAL
 * with *ret_why set to a static English phrase saying what is wrong
 * ("'**' is not supported ..."); ret_why may be NULL.
 */
int cgglob_check(const char *s, size_t len, const char **ret_why);

/* Whether s[0..len) contains '*', '?' or '[' (is not a plain name). */
bool cgglob_is_pattern(const char *s, size_t len);

/*
 * Match name[0..nlen) against pattern p[0..plen) (which passed
 * cgglob_check) with this module's own automaton.  Gives the same answer as
 * fnmatch(p, name, FNM_NOESCAPE) in the C locale; it exists so that tests
 * and fuzzers can hold the two against each other.
 */
bool cgglob_match(const char *p, size_t plen, const char *name, size_t nlen);

/*
 * Whether some cgroup name (1 to CGGLOB_NAME_MAX bytes, neither "." nor "..",
 * no '/' or NUL) matches both a and b, which passed cgglob_check.
 *
 * If so, returns 1 and, when witness is not NULL, writes the shortest such
 * name there, NUL-terminated (wlen >= CGGLOB_NAME_MAX + 1 always suffices).
 * Returns 0 if there is none, -ENOMEM, or -E2BIG when *work, a budget of
 * automaton states the caller grants across calls, runs out; the states
 * visited are subtracted from *work.
 */
int cgglob_intersect(const char *a, size_t alen, const char *b, size_t blen, char *witness,
		     size_t wlen, uint64_t *work);

#endif
