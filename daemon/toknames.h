/*
 * toknames.h - a table of names stored as their '_'-separated tokens.
 *
 * The kernel's ~120k text symbol names (kallsyms.h) are mostly a few
 * dozen thousand words joined by '_' (tcp_v4_rcv, __x64_sys_read).  Each
 * distinct token is kept once, in a dictionary, and each name as the ids
 * of its tokens, LEB128 varints ended by 0; ids are ranked by how often
 * the token occurs, so that the 127 commonest take one byte.  On Linux
 * 6.18's symbols: 1.8 MB of names become 0.8 MB (docs/benchmarks.md).
 *
 * Building takes one or two passes.  With two, the first counts
 * (toknames_count) and toknames_rank numbers the tokens by frequency
 * and says how many bytes the names will take; the second adds
 * (toknames_add), tokens the first pass did not see taking the next ids.
 * With one pass, ids go by first appearance.  toknames_seal then drops
 * what only building needs.
 *
 * Part of the collector's symbolization library.  Library-like: 0 or
 * -errno, never logs.  Ownership: everything is the struct's until
 * toknames_free().
 */
#ifndef VIGIL_TOKNAMES_H
#define VIGIL_TOKNAMES_H

#include <stddef.h>
#include <stdint.h>

struct toknames {
	uint8_t *codes;          /* the names, encoded */
	size_t len, cap;
	char *tokens;            /* the dictionary: each token NUL-terminated */
	size_t tlen, tcap;
	uint32_t *off;           /* off[id - 1]: the token's offset in tokens */
	size_t ntok, cap_tok;
	uint64_t *count;         /* building only: occurrences by id */
	size_t cap_count;
	size_t count_names;      /* building only: names counted since the last rank */
	uint32_t *slots;         /* building only: hash of tokens to ids, 0 empty */
	size_t nslots;           /* a power of two, or 0 */
};

/* Pass one: count the tokens of name[0..len).  -ENOMEM, -E2BIG. */
int toknames_count(struct toknames *t, const char *name, size_t len);

/*
 * Renumber the tokens counted so far, commonest first, and reserve the
 * bytes the names counted will take.  -ENOMEM.
 */
int toknames_rank(struct toknames *t);

/*
 * Pass two (or the only one): append name[0..len).  *ret_off is where its
 * code begins (what toknames_get takes); if ret_tail is not NULL,
 * *ret_tail is where the code of what follows the first `skip` tokens
 * begins: the code of that tail as a name of its own, which needs no
 * bytes of its own ("__pfx_NAME" and NAME: skip 3).  -EINVAL when name
 * has no more than skip tokens; -ENOMEM; -E2BIG past 4 GiB of codes.
 */
int toknames_add(struct toknames *t, const char *name, size_t len, size_t skip, uint32_t *ret_off,
		 uint32_t *ret_tail);

/* Done adding: free the hash and the counts, shrink the arrays to fit. */
void toknames_seal(struct toknames *t);

/*
 * The name whose code begins at off, into buf (NUL-terminated, cut to
 * buflen - 1 bytes).  Returns buf, or NULL when off or the code is not
 * one of this table's (buflen 0 too).
 */
const char *toknames_get(const struct toknames *t, uint32_t off, char *buf, size_t buflen);

/* Bytes held: codes, dictionary, offsets (after toknames_seal). */
size_t toknames_bytes(const struct toknames *t);

void toknames_free(struct toknames *t);

#endif
