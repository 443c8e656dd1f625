/*
 * cgglob.c - cgroup path component globs: syntax check, matching, and exact
 * intersection of two patterns (see cgglob.h for the accepted syntax).
 *
 * A pattern compiles to a list of tokens, each either '*' or a set of bytes
 * ('?', a bracket expression and a literal byte are all sets).  Two patterns
 * share a name iff the product of their automata reaches its accepting
 * state; a 0-1 breadth-first search over (token of a, token of b, prefix
 * class) finds the shortest shared name, which lets us also require a
 * length of at most NAME_MAX and exclude "." and "..".  The prefix class
 * records whether what was consumed so far is "", ".", ".." or anything
 * else.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cgglob.h"

struct tok {
	bool star;
	uint64_t set[4];	/* bytes this token consumes (unused for '*') */
};

static void set_add(uint64_t *set, unsigned c)
{
	set[c >> 6] |= 1ull << (c & 63);
}

static bool set_has(const uint64_t *set, unsigned c)
{
	return set[c >> 6] >> (c & 63) & 1;
}

/* Every byte a cgroup name may hold: all but NUL and '/'. */
static void set_any(uint64_t *set)
{
	set[0] = set[1] = set[2] = set[3] = ~0ull;
	set[0] &= ~(1ull | 1ull << '/');
}

static bool set_empty(const uint64_t *set)
{
	return !(set[0] | set[1] | set[2] | set[3]);
}

/*
 * Parse a bracket expression starting at p[i] == '['.  On success the set
 * goes to t and the index just past ']' to *ret_end.
 */
static int parse_bracket(const char *p, size_t plen, size_t i, struct tok *t, size_t *ret_end,
			 const char **why)
{
	uint64_t members[4] = { 0 }, any[4];
	size_t j = i + 1;
	bool neg = false, first = true;

	if (j < plen && p[j] == '^') {
		*why = "'[^...]' is not supported: write '[!...]' to negate a set";
		return -EINVAL;
	}
	if (j < plen && p[j] == '!') {
		neg = true;
		j++;
	}
	for (;;) {
		unsigned char lo, hi;

		if (j >= plen) {
			*why = "'[' has no closing ']' (write '[[]' for a literal '[')";
			return -EINVAL;
		}
		if (p[j] == ']' && !first)
			break;
		if (p[j] == '[') {
			*why = "'[' inside '[...]' is not supported (no character classes)";
			return -EINVAL;
		}
		lo = hi = (unsigned char)p[j];
		if (j + 2 < plen && p[j + 1] == '-' && p[j + 2] != ']') {
			if (p[j + 2] == '[') {
				*why = "'[' inside '[...]' is not supported (no character classes)";
				return -EINVAL;
			}
			hi = (unsigned char)p[j + 2];
			if (hi < lo) {
				*why = "a range in '[...]' goes backwards";
				return -EINVAL;
			}
			j += 3;
		} else {
			j++;
		}
		for (unsigned c = lo; c <= hi; c++)
			set_add(members, c);
		first = false;
	}
	set_any(any);
	for (int k = 0; k < 4; k++)
		t->set[k] = (neg ? ~members[k] : members[k]) & any[k];
	t->star = false;
	*ret_end = j + 1;
	return 0;
}

/* Tokens of a pattern; toks holds at least plen entries. */
static int tokenize(const char *p, size_t plen, struct tok *toks, size_t *ret_n, const char **why)
{
	size_t i = 0, n = 0;

	if (plen == 0) {
		*why = "empty path component";
		return -EINVAL;
	}
	if (plen > CGGLOB_NAME_MAX) {
		*why = "path component longer than 255 bytes";
		return -EINVAL;
	}
	if ((plen == 1 && p[0] == '.') || (plen == 2 && p[0] == '.' && p[1] == '.')) {
		*why = "'.' and '..' are not allowed in a cgroup path";
		return -EINVAL;
	}
	while (i < plen) {
		struct tok *t = &toks[n++];
		int r;

		switch (p[i]) {
		case '\0':
		case '/':
			*why = "NUL or '/' inside a path component";
			return -EINVAL;
		case '*':
			if (i + 1 < plen && p[i + 1] == '*') {
				*why = "'**' is not supported: a cgroup's descendants already belong to its tenant";
				return -EINVAL;
			}
			t->star = true;
			i++;
			break;
		case '?':
			t->star = false;
			set_any(t->set);
			i++;
			break;
		case '[':
			r = parse_bracket(p, plen, i, t, &i, why);
			if (r < 0)
				return r;
			break;
		default:
			t->star = false;
			memset(t->set, 0, sizeof(t->set));
			set_add(t->set, (unsigned char)p[i]);
			i++;
			break;
		}
	}
	*ret_n = n;
	return 0;
}

int cgglob_check(const char *s, size_t len, const char **ret_why)
{
	struct tok toks[CGGLOB_NAME_MAX];
	const char *why = NULL;
	size_t n;
	int r;

	if (len > CGGLOB_NAME_MAX) {
		why = "path component longer than 255 bytes";
		r = -EINVAL;
	} else {
		r = tokenize(s, len, toks, &n, &why);
	}
	if (r < 0 && ret_why)
		*ret_why = why;
	return r;
}

bool cgglob_is_pattern(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '*' || s[i] == '?' || s[i] == '[')
			return true;
	return false;
}

bool cgglob_match(const char *p, size_t plen, const char *name, size_t nlen)
{
	struct tok toks[CGGLOB_NAME_MAX];
	bool cur[CGGLOB_NAME_MAX + 1], nxt[CGGLOB_NAME_MAX + 1];
	const char *why;
	size_t n;

	if (plen > CGGLOB_NAME_MAX || tokenize(p, plen, toks, &n, &why) < 0)
		return false;
	memset(cur, 0, sizeof(cur));
	cur[0] = true;
	for (size_t k = 0;; k++) {
		/* '*' may match nothing: close over skipping it. */
		for (size_t i = 0; i < n; i++)
			if (cur[i] && toks[i].star)
				cur[i + 1] = true;
		if (k == nlen)
			return cur[n];
		memset(nxt, 0, sizeof(nxt));
		bool alive = false;
		unsigned char c = (unsigned char)name[k];
		for (size_t i = 0; i < n; i++) {
			if (!cur[i])
				continue;
			if (toks[i].star) {
				if (c != 0 && c != '/')
					nxt[i] = alive = true;
			} else if (set_has(toks[i].set, c)) {
				nxt[i + 1] = alive = true;
			}
		}
		if (!alive)
			return false;
		memcpy(cur, nxt, sizeof(cur));
	}
}

/* Prefix classes: what the name consumed so far is. */
enum { PC_EMPTY, PC_DOT, PC_DOTDOT, PC_OTHER, PC_N };

static const unsigned char dot_next[PC_N] = { PC_DOT, PC_DOTDOT, PC_OTHER, PC_OTHER };

/* A byte of s other than '.', preferring ones that read well in a message. */
static int pick(const uint64_t *s)
{
	static const char pref[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_-";

	for (const char *q = pref; *q; q++)
		if (set_has(s, (unsigned char)*q))
			return (unsigned char)*q;
	for (unsigned c = 1; c < 256; c++)
		if (c != '.' && set_has(s, c))
			return (int)c;
	return -1;
}

struct search {
	size_t la, lb;		/* token counts */
	const struct tok *ta, *tb;
	uint16_t *dist;		/* UINT16_MAX: not reached */
	int32_t *pred;		/* previous state on the shortest path */
	int16_t *pch;		/* byte consumed to get here, -1 for none */
	uint32_t *cur, *nxt;
	size_t ncur, nnxt;
};

static uint32_t state(const struct search *s, size_t i, size_t j, unsigned pc)
{
	return (uint32_t)((i * (s->lb + 1) + j) * PC_N + pc);
}

static void relax(struct search *s, uint32_t from, uint32_t to, int ch, uint16_t d)
{
	if (s->dist[to] <= d)
		return;
	s->dist[to] = d;
	s->pred[to] = (int32_t)from;
	s->pch[to] = (int16_t)ch;
	if (ch < 0)
		s->cur[s->ncur++] = to;
	else
		s->nxt[s->nnxt++] = to;
}

static int search_run(struct search *s, char *witness, size_t wlen, uint64_t *work)
{
	uint32_t goal = state(s, s->la, s->lb, PC_OTHER);

	s->dist[0] = 0;
	s->pred[0] = -1;
	s->pch[0] = -1;
	s->cur[s->ncur++] = 0;
	for (uint16_t d = 0; d <= CGGLOB_NAME_MAX; d++) {
		for (size_t q = 0; q < s->ncur; q++) {
			uint32_t st = s->cur[q];
			unsigned pc = st % PC_N;
			size_t ij = st / PC_N, i = ij / (s->lb + 1), j = ij % (s->lb + 1);
			uint64_t sa[4], sb[4], both[4];
			size_t ni, nj;

			if (s->dist[st] != d)
				continue;	/* reached more cheaply since queued */
			if (*work == 0)
				return -E2BIG;
			(*work)--;
			if (st == goal) {
				size_t len = d, k = len;

				if (witness && wlen > len) {
					witness[len] = '\0';
					for (int32_t x = (int32_t)st; x > 0; x = s->pred[x])
						if (s->pch[x] >= 0)
							witness[--k] = (char)s->pch[x];
				}
				return 1;
			}
			if (i < s->la && s->ta[i].star)
				relax(s, st, state(s, i + 1, j, pc), -1, d);
			if (j < s->lb && s->tb[j].star)
				relax(s, st, state(s, i, j + 1, pc), -1, d);
			if (i == s->la || j == s->lb)
				continue;
			if (s->ta[i].star) {
				set_any(sa);
				ni = i;
			} else {
				memcpy(sa, s->ta[i].set, sizeof(sa));
				ni = i + 1;
			}
			if (s->tb[j].star) {
				set_any(sb);
				nj = j;
			} else {
				memcpy(sb, s->tb[j].set, sizeof(sb));
				nj = j + 1;
			}
			for (int k = 0; k < 4; k++)
				both[k] = sa[k] & sb[k];
			if (set_empty(both))
				continue;
			/* Ordinary bytes first: of equally short names, the
			 * witness shown to the user avoids leading dots. */
			int c = pick(both);
			if (c >= 0)
				relax(s, st, state(s, ni, nj, PC_OTHER), c, (uint16_t)(d + 1));
			if (set_has(both, '.'))
				relax(s, st, state(s, ni, nj, dot_next[pc]), '.', (uint16_t)(d + 1));
		}
		if (s->nnxt == 0)
			return 0;
		uint32_t *t = s->cur;
		s->cur = s->nxt;
		s->ncur = s->nnxt;
		s->nxt = t;
		s->nnxt = 0;
	}
	return 0;	/* shared names exist, but all are longer than NAME_MAX */
}

int cgglob_intersect(const char *a, size_t alen, const char *b, size_t blen, char *witness,
		     size_t wlen, uint64_t *work)
{
	struct tok ta[CGGLOB_NAME_MAX], tb[CGGLOB_NAME_MAX];
	struct search s = { .ta = ta, .tb = tb };
	const char *why;
	size_t n;
	int r;

	if (alen > CGGLOB_NAME_MAX || blen > CGGLOB_NAME_MAX ||
	    tokenize(a, alen, ta, &s.la, &why) < 0 || tokenize(b, blen, tb, &s.lb, &why) < 0)
		return -EINVAL;

	/* A plain name is itself the only candidate: no search needed. */
	if (!cgglob_is_pattern(a, alen) || !cgglob_is_pattern(b, blen)) {
		const char *lit = cgglob_is_pattern(a, alen) ? b : a;
		size_t llen = lit == a ? alen : blen;
		const char *pat = lit == a ? b : a;
		size_t plen = lit == a ? blen : alen;

		if (*work == 0)
			return -E2BIG;
		(*work)--;
		if (!cgglob_match(pat, plen, lit, llen))
			return 0;
		if (witness && wlen > llen) {
			memcpy(witness, lit, llen);
			witness[llen] = '\0';
		}
		return 1;
	}

	n = (s.la + 1) * (s.lb + 1) * PC_N;
	s.dist = malloc(n * sizeof(*s.dist));
	s.pred = malloc(n * sizeof(*s.pred));
	s.pch = malloc(n * sizeof(*s.pch));
	s.cur = malloc(n * sizeof(*s.cur));
	s.nxt = malloc(n * sizeof(*s.nxt));
	if (!s.dist || !s.pred || !s.pch || !s.cur || !s.nxt) {
		r = -ENOMEM;
		goto out;
	}
	memset(s.dist, 0xff, n * sizeof(*s.dist));
	r = search_run(&s, witness, wlen, work);
out:
	free(s.dist);
	free(s.pred);
	free(s.pch);
	free(s.cur);
	free(s.nxt);
	return r;
}
