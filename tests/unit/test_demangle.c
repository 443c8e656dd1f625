/*
 * test_demangle.c - C++ names through libiberty's demangler: the readable
 * form of mangled names, everything else untouched, hostile names (deep
 * nesting, garbage, too long) answered without a crash and within bounds,
 * and a cache that stays within its limits and counts what it evicts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "demangle.h"

static int reset(void **state)
{
	demangle_reset();
	return 0;
}

static void test_names(void **state)
{
	assert_string_equal(demangle("_ZN2ns3Foo3barEi"), "ns::Foo::bar(int)");
	assert_string_equal(demangle("_ZN8vigil_wl8checksumERKSt6vectorIhSaIhEE"),
			    "vigil_wl::checksum(std::vector<unsigned char, std::allocator<unsigned char> > const&)");
	assert_string_equal(demangle("_ZN8vigil_wl7SpinnerImE4spinEm"),
			    "vigil_wl::Spinner<unsigned long>::spin(unsigned long)");
	/* a clone the compiler made: still readable, the clone said */
	assert_string_equal(demangle("_ZN2ns3Foo3barEi.cold"), "ns::Foo::bar(int) [clone .cold]");
}

static void test_untouched(void **state)
{
	const char *c = "sha256_block_data_order_avx2", *garbage = "_Zgarbage!!", *z = "_Z", *e = "";

	/* not mangled, or not demangleable: the very same string */
	assert_ptr_equal(demangle(c), c);
	assert_ptr_equal(demangle(garbage), garbage);
	assert_ptr_equal(demangle(z), z);
	assert_ptr_equal(demangle(e), e);
}

/* Deep nesting, long names: an answer, never a crash; bounded output. */
static void test_hostile(void **state)
{
	size_t n = DEMANGLE_MAX_IN + 100;
	char *s = malloc(n + 1);
	const char *r;

	/* nested templates, 1000 deep: _Z1fI1AI1AI...EEE */
	strcpy(s, "_Z1fI");
	for (int i = 0; i < 1000; i++)
		strcat(s, "1AI");
	strcat(s, "i");
	for (int i = 0; i < 1001; i++)
		strcat(s, "E");
	strcat(s, "vv");
	r = demangle(s);
	assert_non_null(r);
	assert_true(strlen(r) <= DEMANGLE_MAX_OUT);

	/* back-references that would print exponentially long: cut at the bound */
	strcpy(s, "_Z1fI");
	for (int i = 0; i < 30; i++)
		strcat(s, "St4pairIS_S_E");
	strcat(s, "Evv");
	r = demangle(s);
	assert_non_null(r);
	assert_true(strlen(r) <= DEMANGLE_MAX_OUT);

	/* longer than DEMANGLE_MAX_IN: not demangled at all */
	memset(s, 'a', n);
	memcpy(s, "_ZN", 3);
	s[n] = '\0';
	assert_ptr_equal(demangle(s), s);
	free(s);
}

static void test_cache(void **state)
{
	const struct demangle_stats *st = demangle_stats();
	uint64_t evicted0 = st->evicted, hits0 = st->hits, misses0 = st->misses;
	char name[64], f[32];

	assert_string_equal(demangle("_ZN2ns3Foo3barEi"), "ns::Foo::bar(int)");
	assert_int_equal(st->misses - misses0, 1);
	assert_string_equal(demangle("_ZN2ns3Foo3barEi"), "ns::Foo::bar(int)");
	assert_int_equal(st->hits - hits0, 1);
	assert_int_equal(st->misses - misses0, 1);
	assert_int_equal(st->entries, 1);
	/* more distinct names than the cache holds: emptied, counted, bounded */
	for (int i = 0; i < DEMANGLE_CACHE_ENTRIES + 10; i++) {
		snprintf(f, sizeof(f), "f%d", i);
		snprintf(name, sizeof(name), "_ZN2ns%zu%s3barEi", strlen(f), f);
		assert_non_null(strstr(demangle(name), "::bar(int)"));
		assert_true(st->entries <= DEMANGLE_CACHE_ENTRIES);
		assert_true(st->bytes <= DEMANGLE_CACHE_BYTES);
	}
	assert_int_equal(st->evicted - evicted0, DEMANGLE_CACHE_ENTRIES);
	assert_int_equal(st->entries, 11);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_names, reset, reset),
		cmocka_unit_test_setup_teardown(test_untouched, reset, reset),
		cmocka_unit_test_setup_teardown(test_hostile, reset, reset),
		cmocka_unit_test_setup_teardown(test_cache, reset, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
