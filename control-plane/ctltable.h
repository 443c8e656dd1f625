/*
 * ctltable.h - vigilctl's aligned text tables: rows of cells printed in
 * columns padded to the widest cell, for a terminal.  Cells come from the
 * server and, through it, from agents, so each is made safe to print:
 * control characters (C0, DEL, C1 and the ESC that starts a terminal escape
 * sequence) become '?', and a cell is cut at CTLTABLE_MAX_CELL columns.
 *
 * Library-like: 0 or -errno (-ENOMEM); the table owns copies of its cells.
 */
#ifndef VIGIL_CTLTABLE_H
#define VIGIL_CTLTABLE_H

#include <stddef.h>
#include <stdio.h>

#define CTLTABLE_MAX_COLS 12
#define CTLTABLE_MAX_CELL 80	/* display columns; longer cells end in "..." */

struct ctltable;

/* A table with these column headings (ncols <= CTLTABLE_MAX_COLS). */
int ctltable_new(size_t ncols, const char *const *headings, struct ctltable **ret);

/* Append a row of ncols cells (NULL prints as "-"). */
int ctltable_add(struct ctltable *t, const char *const *cells);

/* Rows added so far. */
size_t ctltable_rows(const struct ctltable *t);

/* Headings then rows, columns separated by two spaces, no trailing blanks. */
void ctltable_print(const struct ctltable *t, FILE *f);

/* Accepts NULL. */
void ctltable_free(struct ctltable *t);

/*
 * s made safe for a terminal, as a cell is, into out (NUL-terminated, cut
 * to outlen - 1 bytes without splitting a UTF-8 sequence).  Returns out.
 */
char *ctltable_sanitize(const char *s, char *out, size_t outlen);

#endif
