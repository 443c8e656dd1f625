/*
 * ctltable.c - aligned, terminal-safe text tables for vigilctl (ctltable.h).
 * Runs in vigilctl, an administrator's unprivileged client.
 *
 * Widths are counted in code points, which is what a terminal shows for
 * the text vigil-cp stores (host names, labels, certificate subjects);
 * wide CJK characters would misalign a column, not corrupt the terminal.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctltable.h"

struct ctltable {
	size_t ncols, ncells, cap;
	char **cells;			/* ncells filled, row by row: the headings first */
	size_t width[CTLTABLE_MAX_COLS];
};

/* Bytes of the UTF-8 sequence that starts with b, 0 when b cannot start one. */
static size_t utf8_len(unsigned char b)
{
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		return 2;
	if (b >= 0xe0 && b <= 0xef)
		return 3;
	if (b >= 0xf0 && b <= 0xf4)
		return 4;
	return 0;
}

/* A valid sequence of n bytes at s (continuations only; overlongs are rare enough to show). */
static bool utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return false;
	/* U+0080..U+009F are the C1 controls (CSI is U+009B). */
	if (n == 2 && s[0] == 0xc2 && s[1] < 0xa0)
		return false;
	/* Line separators and bidi overrides (U+2028..U+202E, U+2066..U+2069) reorder what is shown. */
	if (n == 3 && s[0] == 0xe2 && ((s[1] == 0x80 && s[2] >= 0xa8 && s[2] <= 0xae) ||
				       (s[1] == 0x81 && s[2] >= 0xa6 && s[2] <= 0xa9)))
		return false;
	return true;
}

/*
 * Copy s safely into out (at most outlen - 1 bytes and max_cols code
 * points, "..." when cut); *ret_cols the code points written.
 */
static void sanitize(const char *s, size_t max_cols, char *out, size_t outlen, size_t *ret_cols)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, cols = 0;

	while (*p) {
		size_t n = utf8_len(*p);
		bool ok = n > 0 && *p >= 0x20 && *p != 0x7f && utf8_ok(p, n);
		size_t need = ok ? n : 1;

		if (cols + 1 > max_cols || o + need >= outlen) {
			/* Cut: make room for "..." within both limits. */
			while (o > 0 && (cols + 3 > max_cols || o + 3 >= outlen)) {
				do
					o--;
				while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80);
				cols--;
			}
			if (o + 3 < outlen && cols + 3 <= max_cols) {
				memcpy(out + o, "...", 3);
				o += 3;
				cols += 3;
			}
			break;
		}
		if (ok) {
			memcpy(out + o, p, n);
			p += n;
		} else {
			out[o] = '?';
			/* Skip the whole bad sequence's lead byte only: continuations become '?' too. */
			p++;
		}
		o += need;
		cols++;
	}
	out[o] = '\0';
	if (ret_cols)
		*ret_cols = cols;
}

char *ctltable_sanitize(const char *s, char *out, size_t outlen)
{
	if (outlen == 0)
		return out;
	sanitize(s ? s : "", (size_t)-1, out, outlen, NULL);
	return out;
}

int ctltable_new(size_t ncols, const char *const *headings, struct ctltable **ret)
{
	struct ctltable *t;
	int r;

	if (ncols == 0 || ncols > CTLTABLE_MAX_COLS)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ncols = ncols;
	r = ctltable_add(t, headings);
	if (r) {
		ctltable_free(t);
		return r;
	}
	*ret = t;
	return 0;
}

int ctltable_add(struct ctltable *t, const char *const *cells)
{
	size_t used = t->ncells;

	if (used + t->ncols > t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16 * t->ncols;
		char **c = realloc(t->cells, cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		t->cells = c;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		char buf[4 * CTLTABLE_MAX_CELL + 4];
		size_t cols;

		sanitize(cells[i] ? cells[i] : "-", CTLTABLE_MAX_CELL, buf, sizeof(buf), &cols);
		t->cells[used + i] = strdup(buf);
		if (!t->cells[used + i]) {
			while (i-- > 0)
				free(t->cells[used + i]);
			return -ENOMEM;
		}
		if (cols > t->width[i])
			t->width[i] = cols;
	}
	t->ncells += t->ncols;
	return 0;
}

size_t ctltable_rows(const struct ctltable *t)
{
	return t->ncells ? t->ncells / t->ncols - 1 : 0;	/* the headings are not a row */
}

static size_t cols_of(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

void ctltable_print(const struct ctltable *t, FILE *f)
{
	for (size_t r = 0; r < t->ncells / t->ncols; r++) {
		size_t last = t->ncols;

		/* Trailing empty cells print nothing, so lines end without blanks. */
		while (last > 1 && !t->cells[r * t->ncols + last - 1][0])
			last--;
		for (size_t c = 0; c < last; c++) {
			const char *s = t->cells[r * t->ncols + c];

			fputs(s, f);
			if (c + 1 < last)
				fprintf(f, "%*s", (int)(t->width[c] - cols_of(s) + 2), "");
		}
		fputc('\n', f);
	}
}

void ctltable_free(struct ctltable *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
