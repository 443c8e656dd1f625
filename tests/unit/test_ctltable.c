/*
 * test_ctltable.c - vigilctl's tables (control-plane/ctltable.c): columns
 * line up, lines end without blanks, long cells are cut with "...", and
 * text from the server can never put a control sequence on the
 * administrator's terminal (agents choose their own host names and labels).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctltable.h"

/* What t prints, malloc'ed. */
static char *printed(const struct ctltable *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	ctltable_print(t, f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_aligned(void **state)
{
	static const char *const h[] = { "ID", "HOST", "ERROR" };
	struct ctltable *t;
	char *out;

	assert_int_equal(ctltable_new(3, h, &t), 0);
	assert_int_equal(ctltable_rows(t), 0);
	assert_int_equal(ctltable_add(t, (const char *const[]){ "1", "web-01.example", "" }), 0);
	assert_int_equal(ctltable_add(t, (const char *const[]){ "1234", NULL, "timeout" }), 0);
	assert_int_equal(ctltable_add(t, (const char *const[]){ "7", "hôte", NULL }), 0);
	assert_int_equal(ctltable_rows(t), 3);
	out = printed(t);
	assert_string_equal(out, "ID    HOST            ERROR\n"
				 "1     web-01.example\n"
				 "1234  -               timeout\n"
				 "7     hôte            -\n");
	free(out);
	ctltable_free(t);
	ctltable_free(NULL);
	assert_int_equal(ctltable_new(0, h, &t), -EINVAL);
	assert_int_equal(ctltable_new(CTLTABLE_MAX_COLS + 1, h, &t), -EINVAL);
}

static void test_hostile_text(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "plain", "plain" },
		{ "\x1b]0;owned\x07", "?]0;owned?" },			/* OSC: set the title */
		{ "red\x1b[31m", "red?[31m" },				/* CSI */
		{ "a\nb\rc\td", "a?b?c?d" },
		{ "del\x7f", "del?" },
		{ "c1\xc2\x9b" "31m", "c1??31m" },			/* 8-bit CSI, U+009B */
		{ "bidi\xe2\x80\xae" "txt.exe", "bidi???txt.exe" },	/* U+202E */
		{ "iso\xe2\x81\xa6x", "iso???x" },			/* U+2066 */
		{ "ok \xe2\x82\xac", "ok \xe2\x82\xac" },		/* the euro sign stays */
		{ "bad \xff\xfe", "bad ??" },
		{ "cut \xe2\x82", "cut ??" },				/* a truncated sequence */
		{ "", "" },
	};
	char out[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ctltable_sanitize(cases[i].in, out, sizeof(out));
		if (strcmp(out, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, out, cases[i].want);
	}
	assert_string_equal(ctltable_sanitize(NULL, out, sizeof(out)), "");
	/* Cut to the buffer without splitting a character. */
	ctltable_sanitize("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", out, 8);
	assert_string_equal(out, "\xe2\x82\xac...");
}

static void test_long_cells(void **state)
{
	static const char *const h[] = { "A", "B" };
	char long_cell[300], *out, *nl;
	struct ctltable *t;

	memset(long_cell, 'x', sizeof(long_cell) - 1);
	long_cell[sizeof(long_cell) - 1] = '\0';
	assert_int_equal(ctltable_new(2, h, &t), 0);
	assert_int_equal(ctltable_add(t, (const char *const[]){ long_cell, "end" }), 0);
	out = printed(t);
	nl = strchr(out, '\n');
	assert_non_null(nl);
	/* Row 2: CTLTABLE_MAX_CELL columns (the last three "..."), two blanks, "end". */
	assert_int_equal(strlen(nl + 1), CTLTABLE_MAX_CELL + 2 + 3 + 1);
	assert_memory_equal(nl + 1 + CTLTABLE_MAX_CELL - 3, "...  end\n", 9);
	free(out);
	ctltable_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aligned),
		cmocka_unit_test(test_hostile_text),
		cmocka_unit_test(test_long_cells),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
