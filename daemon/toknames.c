/*
 * toknames.c - a table of names stored as their '_'-separated tokens
 * (toknames.h).
 *
 * A name's code is the LEB128 varint id of each of its tokens (1 for the
 * commonest token once ranked), then 0.  "__pfx_tcp_v4_rcv" is the tokens
 * "", "", "pfx", "tcp", "v4", "rcv": the code of "tcp_v4_rcv" is the tail
 * of its code, and shares its bytes.
 */
#include "toknames.h"

#include "growarr.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_SLOTS 1024
#define FIRST_CODES 65536

/* FNV-1a. */
static uint32_t hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static size_t varint_len(uint32_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* The hash of every token, in nslots slots (a power of two). */
static int rehash(struct toknames *t, size_t nslots)
{
	uint32_t *s = calloc(nslots, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t id = 1; id <= t->ntok; id++) {
		const char *tok = t->tokens + t->off[id - 1];
		size_t h = hash(tok, strlen(tok)) & (nslots - 1);

		while (s[h])
			h = (h + 1) & (nslots - 1);
		s[h] = (uint32_t)id;
	}
	free(t->slots);
	t->slots = s;
	t->nslots = nslots;
	return 0;
}

/* The id of the token s[0..len) (no NUL in it), added if new. */
static int token_id(struct toknames *t, const char *s, size_t len, uint32_t *ret)
{
	size_t h;
	int r;

	if ((t->ntok + 1) * 2 > t->nslots &&
	    (r = rehash(t, t->nslots ? t->nslots * 2 : FIRST_SLOTS)) < 0)
		return r;
	for (h = hash(s, len) & (t->nslots - 1); t->slots[h]; h = (h + 1) & (t->nslots - 1)) {
		const char *tok = t->tokens + t->off[t->slots[h] - 1];

		/* strncmp stops at tok's NUL: s holds none, so a shorter tok differs. */
		if (strncmp(tok, s, len) == 0 && tok[len] == '\0') {
			*ret = t->slots[h];
			return 0;
		}
	}
	if (t->ntok >= UINT32_MAX - 1 || t->tlen + len + 1 > UINT32_MAX)
		return -E2BIG;
	if ((r = growarr((void **)&t->tokens, &t->tcap, t->tlen + len + 1, 1, 4096)) < 0 ||
	    (r = growarr((void **)&t->off, &t->cap_tok, t->ntok + 1, sizeof(*t->off), 1024)) < 0 ||
	    (r = growarr((void **)&t->count, &t->cap_count, t->ntok + 1, sizeof(*t->count), 1024)) < 0)
		return r;
	memcpy(t->tokens + t->tlen, s, len);
	t->tokens[t->tlen + len] = '\0';
	t->off[t->ntok] = (uint32_t)t->tlen;
	t->count[t->ntok] = 0;
	t->tlen += len + 1;
	t->slots[h] = (uint32_t)++t->ntok;
	*ret = (uint32_t)t->ntok;
	return 0;
}

/* The next token of [*p, end): its length; *p moves past it and its '_'. */
static size_t next_token(const char **p, const char *end, bool *last)
{
	const char *u = memchr(*p, '_', (size_t)(end - *p));
	size_t len = (size_t)((u ? u : end) - *p);

	*last = !u;
	*p = u ? u + 1 : end;
	return len;
}

int toknames_count(struct toknames *t, const char *name, size_t len)
{
	const char *p = name, *end = name + len;
	bool last = false;

	while (!last) {
		const char *tok = p;
		size_t tl = next_token(&p, end, &last);
		uint32_t id;
		int r = token_id(t, tok, tl, &id);

		if (r < 0)
			return r;
		t->count[id - 1]++;
	}
	t->count_names++;
	return 0;
}

static int cmp_rank(const void *a, const void *b, void *count)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	uint64_t cx = ((const uint64_t *)count)[x - 1], cy = ((const uint64_t *)count)[y - 1];

	if (cx != cy)
		return cx > cy ? -1 : 1;
	return x < y ? -1 : x > y;
}

int toknames_rank(struct toknames *t)
{
	uint32_t *order, *off;
	char *tokens;
	size_t bytes = t->count_names, pos = 0;
	int r;

	if (t->ntok == 0)
		return 0;
	order = malloc(t->ntok * sizeof(*order));
	off = malloc(t->cap_tok * sizeof(*off));
	tokens = malloc(t->tcap);
	if (!order || !off || !tokens) {
		free(order);
		free(off);
		free(tokens);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->ntok; i++)
		order[i] = (uint32_t)(i + 1);
	qsort_r(order, t->ntok, sizeof(*order), cmp_rank, t->count);
	for (size_t i = 0; i < t->ntok; i++) {
		const char *tok = t->tokens + t->off[order[i] - 1];
		size_t len = strlen(tok) + 1;

		bytes += t->count[order[i] - 1] * varint_len((uint32_t)(i + 1));
		memcpy(tokens + pos, tok, len);
		off[i] = (uint32_t)pos;
		pos += len;
	}
	free(order);
	free(t->tokens);
	free(t->off);
	t->tokens = tokens;
	t->off = off;
	memset(t->count, 0, t->ntok * sizeof(*t->count));
	t->count_names = 0;
	if ((r = rehash(t, t->nslots)) < 0)
		return r;
	return growarr((void **)&t->codes, &t->cap, t->len + bytes, 1, 1);
}

static int put(struct toknames *t, uint32_t v)
{
	int r = growarr((void **)&t->codes, &t->cap, t->len + varint_len(v), 1, FIRST_CODES);

	if (r < 0)
		return r;
	while (v >= 0x80) {
		t->codes[t->len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	t->codes[t->len++] = (uint8_t)v;
	return 0;
}

int toknames_add(struct toknames *t, const char *name, size_t len, size_t skip, uint32_t *ret_off,
		 uint32_t *ret_tail)
{
	const char *p = name, *end = name + len;
	size_t start = t->len, i = 0;
	bool last = false;
	int r = 0;

	/* At most 5 bytes a token (len + 1 of them) and the end. */
	if (len > UINT32_MAX || start + 5 * (len + 2) > UINT32_MAX)
		return -E2BIG;
	while (!last && r == 0) {
		const char *tok = p;
		size_t tl = next_token(&p, end, &last);
		uint32_t id;

		if (i++ == skip && ret_tail)
			*ret_tail = (uint32_t)t->len;
		r = token_id(t, tok, tl, &id);
		if (r == 0)
			r = put(t, id);
	}
	if (r == 0 && ret_tail && i <= skip)
		r = -EINVAL;
	if (r == 0)
		r = put(t, 0);
	if (r < 0) {
		t->len = start;
		return r;
	}
	*ret_off = (uint32_t)start;
	return 0;
}

static void shrink(void **p, size_t *cap, size_t n, size_t elem)
{
	void *a;

	if (n == 0 || n >= *cap)
		return;
	a = reallocarray(*p, n, elem);
	if (a) {
		*p = a;
		*cap = n;
	}
}

void toknames_seal(struct toknames *t)
{
	free(t->slots);
	free(t->count);
	t->slots = NULL;
	t->count = NULL;
	t->cap_count = 0;
	t->nslots = 0;
	shrink((void **)&t->codes, &t->cap, t->len, 1);
	shrink((void **)&t->tokens, &t->tcap, t->tlen, 1);
	shrink((void **)&t->off, &t->cap_tok, t->ntok, sizeof(*t->off));
}

const char *toknames_get(const struct toknames *t, uint32_t off, char *buf, size_t buflen)
{
	size_t o = off, n = 0;
	bool first = true;

	if (!t || !buf || buflen == 0 || off >= t->len)
		return NULL;
	for (;;) {
		uint32_t id = 0;
		unsigned shift = 0;
		uint8_t b;
		const char *tok;

		do {
			if (o >= t->len || shift > 28)
				return NULL;
			b = t->codes[o++];
			id |= (uint32_t)(b & 0x7f) << shift;
			shift += 7;
		} while (b & 0x80);
		if (id == 0)
			break;
		if (id > t->ntok)
			return NULL;
		if (!first && n + 1 < buflen)
			buf[n++] = '_';
		first = false;
		for (tok = t->tokens + t->off[id - 1]; *tok && n + 1 < buflen; tok++)
			buf[n++] = *tok;
	}
	buf[n] = '\0';
	return buf;
}

size_t toknames_bytes(const struct toknames *t)
{
	if (!t)
		return 0;
	return t->cap + t->tcap + t->cap_tok * sizeof(*t->off) +
	       t->cap_count * sizeof(*t->count) + t->nslots * sizeof(*t->slots);
}

void toknames_free(struct toknames *t)
{
	if (!t)
		return;
	free(t->codes);
	free(t->tokens);
	free(t->off);
	free(t->count);
	free(t->slots);
	*t = (struct toknames){ 0 };
}
