/*
 * test_cgglob.c - cgroup component globs mean what fnmatch(3) says they
 * mean, and "can these two patterns match the same cgroup name" is answered
 * exactly: checked against fnmatch on every byte, and against brute-force
 * enumeration of short names for thousands of random pattern pairs.
 */
#include <errno.h>
#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cgglob.h"

static bool fnm(const char *p, const char *s)
{
	return fnmatch(p, s, FNM_NOESCAPE) == 0;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= CGGLOB_NAME_MAX && strcmp(s, ".") && strcmp(s, "..") &&
	       !strchr(s, '/');
}

static int inter(const char *a, const char *b, char *w)
{
	uint64_t work = 1u << 24;

	return cgglob_intersect(a, strlen(a), b, strlen(b), w, CGGLOB_NAME_MAX + 1, &work);
}

static void test_check(void **state)
{
	static const char *const good[] = {
		"a", "web*", "*.service", "x?y", "[abc]", "[!abc]", "[]a]", "[!]a]", "[a-z0-9]",
		"[a-]", "[--0]", "dev-disk-by\\x2duuid", "[!^]", "*a*b*", "\xc3\xa9t\xc3\xa9",
	};
	static const struct {
		const char *p, *why;
	} bad[] = {
		{ "", "empty path component" },
		{ ".", "'.' and '..' are not allowed in a cgroup path" },
		{ "..", "'.' and '..' are not allowed in a cgroup path" },
		{ "a**", "'**' is not supported: a cgroup's descendants already belong to its tenant" },
		{ "[ab", "'[' has no closing ']' (write '[[]' for a literal '[')" },
		{ "[]", "'[' has no closing ']' (write '[[]' for a literal '[')" },
		{ "[!]", "'[' has no closing ']' (write '[[]' for a literal '[')" },
		{ "[^a]", "'[^...]' is not supported: write '[!...]' to negate a set" },
		{ "[[:digit:]]", "'[' inside '[...]' is not supported (no character classes)" },
		{ "[a-[]", "'[' inside '[...]' is not supported (no character classes)" },
		{ "[z-a]", "a range in '[...]' goes backwards" },
	};
	char longname[CGGLOB_NAME_MAX + 2];
	const char *why;

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		assert_int_equal(cgglob_check(good[i], strlen(good[i]), &why), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		why = NULL;
		assert_int_equal(cgglob_check(bad[i].p, strlen(bad[i].p), &why), -EINVAL);
		assert_string_equal(why, bad[i].why);
	}
	assert_int_equal(cgglob_check("a/b", 3, &why), -EINVAL);
	assert_int_equal(cgglob_check("a\0b", 3, &why), -EINVAL);
	memset(longname, 'n', sizeof(longname));
	assert_int_equal(cgglob_check(longname, CGGLOB_NAME_MAX, NULL), 0);
	assert_int_equal(cgglob_check(longname, CGGLOB_NAME_MAX + 1, &why), -EINVAL);
	assert_string_equal(why, "path component longer than 255 bytes");

	assert_false(cgglob_is_pattern("web.service", 11));
	assert_true(cgglob_is_pattern("web*", 4));
	assert_true(cgglob_is_pattern("w?b", 3));
	assert_true(cgglob_is_pattern("[w]", 3));
}

/* One-byte names: every byte, every bracket form, same answer as fnmatch. */
static void test_match_bytes(void **state)
{
	static const char *const pats[] = {
		"?", "*", "[]a]", "[!]a]", "[]-a]", "[a-]", "[--0]", "[a-c-e]", "[!a-c]", "[\x80-\xff]",
		"[\\]", "[!\\]", "\\", "[-]", "[!-]", "[.]", "[a-a]", "[!!]", "[!^]", "[*?]",
	};

	for (size_t i = 0; i < sizeof(pats) / sizeof(*pats); i++) {
		assert_int_equal(cgglob_check(pats[i], strlen(pats[i]), NULL), 0);
		for (int c = 1; c < 256; c++) {
			char s[2] = { (char)c, 0 };

			if (c == '/')
				continue;
			if (cgglob_match(pats[i], strlen(pats[i]), s, 1) != fnm(pats[i], s))
				fail_msg("pattern %s byte 0x%02x: cgglob %d fnmatch %d", pats[i], c,
					 cgglob_match(pats[i], strlen(pats[i]), s, 1), fnm(pats[i], s));
		}
	}
}

static uint64_t rng = 88172645463325252ull;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* A random pattern over a small alphabet, possibly invalid. */
static void random_pattern(char *p, size_t max)
{
	static const char alpha[] = "ab.z*?[]!-";
	size_t n = 1 + rnd((unsigned)max);

	for (size_t i = 0; i < n; i++)
		p[i] = alpha[rnd(sizeof(alpha) - 1)];
	p[n] = '\0';
}

static void random_name(char *s, size_t max)
{
	static const char alpha[] = "ab.z*?[]!-";
	size_t n = rnd((unsigned)max + 1);

	for (size_t i = 0; i < n; i++)
		s[i] = alpha[rnd(sizeof(alpha) - 1)];
	s[n] = '\0';
}

static void test_match_random(void **state)
{
	char p[16], s[16];
	unsigned checked = 0;

	for (int i = 0; i < 200000; i++) {
		random_pattern(p, 8);
		if (cgglob_check(p, strlen(p), NULL) < 0)
			continue;
		random_name(s, 8);
		if (cgglob_match(p, strlen(p), s, strlen(s)) != fnm(p, s))
			fail_msg("pattern \"%s\" name \"%s\": cgglob %d fnmatch %d", p, s,
				 cgglob_match(p, strlen(p), s, strlen(s)), fnm(p, s));
		checked++;
	}
	assert_true(checked > 10000);
}

static void test_intersect_cases(void **state)
{
	static const struct {
		const char *a, *b, *witness;	/* NULL: disjoint */
	} cases[] = {
		{ "web", "web", "web" },
		{ "web", "web2", NULL },
		{ "web*", "web2", "web2" },
		{ "web*", "*.service", "web.service" },
		{ "a*", "*b", "ab" },
		{ "a*", "b*", NULL },
		{ "[a-c]x", "[d-f]x", NULL },
		{ "[a-c]x", "[!a]x", "bx" },
		{ "x?", "x??", NULL },
		{ "*", "*", "a" },
		{ "?", "[.]", NULL },		/* only ".", which is no name */
		{ "[.][.]", "*", NULL },	/* only ".." */
		{ ".*", "*.", ".a." },		/* ".", ".." excluded */
		{ "[!a]", "a", NULL },
		{ "*x*", "*y*", "xy" },
	};
	char w[CGGLOB_NAME_MAX + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		int r = inter(cases[i].a, cases[i].b, w);

		if (r != (cases[i].witness != NULL))
			fail_msg("%s vs %s: %d", cases[i].a, cases[i].b, r);
		if (r == 1)
			assert_string_equal(w, cases[i].witness);
		/* Symmetric. */
		assert_int_equal(inter(cases[i].b, cases[i].a, w), r);
	}
}

/* Shared names longer than NAME_MAX do not count. */
static void test_intersect_length(void **state)
{
	char a[CGGLOB_NAME_MAX + 1], b[CGGLOB_NAME_MAX + 1], w[CGGLOB_NAME_MAX + 1];

	memset(a, 'x', 200);
	strcpy(a + 200, "*");
	b[0] = '*';
	memset(b + 1, 'y', 200);
	b[201] = '\0';
	assert_int_equal(inter(a, b, w), 0);	/* 400 bytes at least */
	b[56] = '\0';				/* 255 bytes exactly */
	assert_int_equal(inter(a, b, w), 1);
	assert_int_equal(strlen(w), 255);
	assert_true(fnm(a, w) && fnm(b, w));
}

static void test_intersect_work(void **state)
{
	uint64_t work = 0;
	char w[CGGLOB_NAME_MAX + 1];

	assert_int_equal(cgglob_intersect("a*", 2, "*b", 2, w, sizeof(w), &work), -E2BIG);
	work = 1000;
	assert_int_equal(cgglob_intersect("a*", 2, "*b", 2, w, sizeof(w), &work), 1);
	assert_true(work < 1000 && work > 900);
	assert_int_equal(cgglob_intersect("a*[", 3, "*b", 2, w, sizeof(w), &work), -EINVAL);
}

/*
 * Random pairs against enumeration of every name up to 6 bytes over "a.z".
 * The patterns are made of tokens that mention no byte but 'a' and '.', so
 * 'z' stands for every other byte and the enumeration is exact: a shared
 * name found by it must be found, the witness must match both, be a valid
 * name and be as short as the shortest enumerated one.
 */
static void test_intersect_exhaustive(void **state)
{
	static const char alpha[] = "a.z";
	static const char *const toks[] = {
		"a", ".", "*", "?", "[a.]", "[!a]", "[!.]", "[!a.]", "[.]",
	};
	static char names[1100][8];
	size_t nn = 0;
	unsigned pairs, overlapping = 0;

	for (size_t len = 1; len <= 6; len++) {
		size_t total = 1;

		for (size_t i = 0; i < len; i++)
			total *= 3;
		for (size_t k = 0; k < total; k++) {
			size_t x = k;

			for (size_t i = 0; i < len; i++, x /= 3)
				names[nn][i] = alpha[x % 3];
			names[nn][len] = '\0';
			if (valid_name(names[nn]))
				nn++;
		}
	}

	for (pairs = 0; pairs < 3000; pairs++) {
		char a[32] = "", b[32] = "", w[CGGLOB_NAME_MAX + 1];
		size_t shortest = 0;
		unsigned na = 1 + rnd(3), nb = 1 + rnd(3);
		int r;

		for (unsigned i = 0; i < na; i++)
			strcat(a, toks[rnd(sizeof(toks) / sizeof(*toks))]);
		for (unsigned i = 0; i < nb; i++)
			strcat(b, toks[rnd(sizeof(toks) / sizeof(*toks))]);
		if (cgglob_check(a, strlen(a), NULL) < 0 || cgglob_check(b, strlen(b), NULL) < 0)
			continue;	/* "**", "." or ".." */
		for (size_t i = 0; i < nn && !shortest; i++)
			if (fnm(a, names[i]) && fnm(b, names[i]))
				shortest = strlen(names[i]);
		r = inter(a, b, w);
		if (shortest && (r != 1 || strlen(w) != shortest))
			fail_msg("\"%s\" and \"%s\" share a name of %zu bytes, cgglob says %d \"%s\"",
				 a, b, shortest, r, r == 1 ? w : "");
		if (r == 1) {
			overlapping++;
			if (!fnm(a, w) || !fnm(b, w) || !valid_name(w))
				fail_msg("\"%s\" and \"%s\": bad witness \"%s\"", a, b, w);
			if (strlen(w) <= 6 && !shortest)
				fail_msg("\"%s\" and \"%s\": witness \"%s\" not enumerated", a, b, w);
		} else {
			assert_int_equal(r, 0);
		}
	}
	assert_true(overlapping > 300 && overlapping < 2700);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_match_bytes),
		cmocka_unit_test(test_match_random),
		cmocka_unit_test(test_intersect_cases),
		cmocka_unit_test(test_intersect_length),
		cmocka_unit_test(test_intersect_work),
		cmocka_unit_test(test_intersect_exhaustive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
