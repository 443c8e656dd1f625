/*
 * merkle.c - RFC 6962 Merkle trees: hashing, an append-only tree with
 * cached upper levels, inclusion and consistency proofs, and the RFC 9162
 * verifiers (see merkle.h).
 *
 * Level L node k is the hash of the complete subtree of leaves
 * [k * 2^L, (k + 1) * 2^L).  Every range the RFC's recursions visit
 * starts at a multiple of the largest power of two below its size, so
 * each of their complete subtrees is one such node: cached from
 * MERKLE_CACHE_LEVEL up, recomputed from the leaves below it.
 *
 * Runs in vigil-cp and vigilctl.  Never logs.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "merkle.h"

#define H MERKLE_HASH_LEN
#define LEVELS 64

struct level {
	uint8_t *h;
	uint64_t n, cap;	/* in hashes */
};

struct merkle {
	struct level leaves;
	struct level lvl[LEVELS];	/* only [MERKLE_CACHE_LEVEL..] are used */
};

/*
 * SHA-256 with the algorithm fetched once and one context per thread: the
 * implicit fetch of EVP_sha256() in every EVP_DigestInit takes a lock and a
 * lookup each time, a third of the cost of hashing a node (a 1M-record
 * verify hashes ~20M of them).
 */
static int sha256_parts(const void *a, size_t alen, const void *b, size_t blen, const void *c, size_t clen,
			uint8_t ret[H])
{
	static _Thread_local EVP_MD *md;
	static _Thread_local EVP_MD_CTX *ctx;
	unsigned int n = 0;

	if (!md && !(md = EVP_MD_fetch(NULL, "SHA256", NULL)))
		return -ENOMEM;
	if (!ctx && !(ctx = EVP_MD_CTX_new()))
		return -ENOMEM;
	if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, a, alen) != 1 ||
	    (blen && EVP_DigestUpdate(ctx, b, blen) != 1) || (clen && EVP_DigestUpdate(ctx, c, clen) != 1) ||
	    EVP_DigestFinal_ex(ctx, ret, &n) != 1 || n != H)
		return -ENOMEM;
	return 0;
}

int merkle_leaf_hash(const void *data, size_t len, uint8_t ret[H])
{
	static const uint8_t prefix = 0x00;

	return sha256_parts(&prefix, 1, data, len, NULL, 0, ret);
}

int merkle_node_hash(const uint8_t left[H], const uint8_t right[H], uint8_t ret[H])
{
	static const uint8_t prefix = 0x01;

	return sha256_parts(&prefix, 1, left, H, right, H, ret);
}

void merkle_empty_root(uint8_t ret[H])
{
	/* SHA-256(""), a constant: no call that could fail. */
	static const uint8_t empty[H] = { 0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
					  0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
					  0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55 };

	memcpy(ret, empty, H);
}

int merkle_new(struct merkle **ret)
{
	struct merkle *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	*ret = t;
	return 0;
}

void merkle_free(struct merkle *t)
{
	if (!t)
		return;
	free(t->leaves.h);
	for (int l = 0; l < LEVELS; l++)
		free(t->lvl[l].h);
	free(t);
}

uint64_t merkle_size(const struct merkle *t)
{
	return t->leaves.n;
}

static int level_push(struct level *v, const uint8_t h[H])
{
	if (v->n == v->cap) {
		uint64_t cap = v->cap ? v->cap * 2 : 64;
		uint8_t *p;

		if (cap > SIZE_MAX / H)
			return -ENOMEM;
		p = realloc(v->h, (size_t)(cap * H));
		if (!p)
			return -ENOMEM;
		v->h = p;
		v->cap = cap;
	}
	memcpy(v->h + v->n * H, h, H);
	v->n++;
	return 0;
}

/* The hash of the complete subtree of 2^level leaves from start (aligned, within the tree). */
static int subtree(const struct merkle *t, uint64_t start, int level, uint8_t ret[H])
{
	uint8_t l[H], r[H];
	int e;

	if (level == 0) {
		memcpy(ret, t->leaves.h + start * H, H);
		return 0;
	}
	if (level >= MERKLE_CACHE_LEVEL && (start >> level) < t->lvl[level].n) {
		memcpy(ret, t->lvl[level].h + (start >> level) * H, H);
		return 0;
	}
	if ((e = subtree(t, start, level - 1, l)) || (e = subtree(t, start + (1ull << (level - 1)), level - 1, r)))
		return e;
	return merkle_node_hash(l, r, ret);
}

int merkle_append(struct merkle *t, const uint8_t leaf_hash[H])
{
	uint64_t n;
	int e = level_push(&t->leaves, leaf_hash);

	if (e)
		return e;
	n = t->leaves.n;
	/* Each level whose subtree the new leaf completes gets its node (from the level below). */
	for (int l = MERKLE_CACHE_LEVEL; l < LEVELS && (n & ((1ull << l) - 1)) == 0; l++) {
		uint8_t h[H];
		uint64_t start = n - (1ull << l);

		if ((e = subtree(t, start, l, h)) || (e = level_push(&t->lvl[l], h))) {
			/* Undo the leaf: the tree stays as it was. */
			t->leaves.n--;
			for (int k = MERKLE_CACHE_LEVEL; k < l; k++)
				t->lvl[k].n--;
			return e;
		}
	}
	return 0;
}

int merkle_truncate(struct merkle *t, uint64_t size)
{
	if (size > t->leaves.n)
		return -ERANGE;
	t->leaves.n = size;
	/* A cached node stays exactly when its whole subtree does. */
	for (int l = MERKLE_CACHE_LEVEL; l < LEVELS; l++)
		if (t->lvl[l].n > (size >> l))
			t->lvl[l].n = size >> l;
	return 0;
}

int merkle_leaf(const struct merkle *t, uint64_t i, uint8_t ret[H])
{
	if (i >= t->leaves.n)
		return -ERANGE;
	memcpy(ret, t->leaves.h + i * H, H);
	return 0;
}

/* The largest power of two smaller than n (n >= 2). */
static uint64_t split(uint64_t n)
{
	return 1ull << (63 - __builtin_clzll(n - 1));
}

/* MTH(D[lo:hi]), hi > lo, lo aligned as the RFC's recursions keep it. */
static int mth(const struct merkle *t, uint64_t lo, uint64_t hi, uint8_t ret[H])
{
	uint64_t size = hi - lo, k;
	uint8_t l[H], r[H];
	int e;

	if ((size & (size - 1)) == 0)
		return subtree(t, lo, __builtin_ctzll(size), ret);
	k = split(size);
	if ((e = mth(t, lo, lo + k, l)) || (e = mth(t, lo + k, hi, r)))
		return e;
	return merkle_node_hash(l, r, ret);
}

int merkle_root(const struct merkle *t, uint64_t size, uint8_t ret[H])
{
	if (size > t->leaves.n)
		return -ERANGE;
	if (size == 0) {
		merkle_empty_root(ret);
		return 0;
	}
	return mth(t, 0, size, ret);
}

/* PATH(m, D[lo:hi]) appended to out (RFC 6962 2.1.1). */
static int path(const struct merkle *t, uint64_t m, uint64_t lo, uint64_t hi, uint8_t *out, size_t *n)
{
	uint64_t k;
	int e;

	if (hi - lo <= 1)
		return 0;
	k = split(hi - lo);
	if (*n >= MERKLE_MAX_PROOF)
		return -E2BIG;
	if (m < k) {
		if ((e = path(t, m, lo, lo + k, out, n)))
			return e;
		e = mth(t, lo + k, hi, out + *n * H);
	} else {
		if ((e = path(t, m - k, lo + k, hi, out, n)))
			return e;
		e = mth(t, lo, lo + k, out + *n * H);
	}
	if (e == 0)
		(*n)++;
	return e;
}

int merkle_inclusion_proof(const struct merkle *t, uint64_t index, uint64_t size, uint8_t *ret, size_t *ret_n)
{
	size_t n = 0;
	int e;

	if (size > t->leaves.n)
		return -ERANGE;
	if (index >= size)
		return -EINVAL;
	e = path(t, index, 0, size, ret, &n);
	if (e == 0)
		*ret_n = n;
	return e;
}

/* SUBPROOF(m, D[lo:hi], b) appended to out (RFC 6962 2.1.2). */
static int subproof(const struct merkle *t, uint64_t m, uint64_t lo, uint64_t hi, bool b, uint8_t *out,
		    size_t *n)
{
	uint64_t k;
	int e;

	if (*n >= MERKLE_MAX_PROOF)
		return -E2BIG;
	if (m == hi - lo) {
		if (b)
			return 0;
		e = mth(t, lo, hi, out + *n * H);
	} else {
		k = split(hi - lo);
		if (m <= k) {
			if ((e = subproof(t, m, lo, lo + k, b, out, n)))
				return e;
			e = mth(t, lo + k, hi, out + *n * H);
		} else {
			if ((e = subproof(t, m - k, lo + k, hi, false, out, n)))
				return e;
			e = mth(t, lo, lo + k, out + *n * H);
		}
	}
	if (e == 0)
		(*n)++;
	return e;
}

int merkle_consistency_proof(const struct merkle *t, uint64_t m, uint64_t n, uint8_t *ret, size_t *ret_n)
{
	size_t len = 0;
	int e = 0;

	if (n > t->leaves.n)
		return -ERANGE;
	if (m > n)
		return -EINVAL;
	if (m > 0 && m < n)
		e = subproof(t, m, 0, n, true, ret, &len);
	if (e == 0)
		*ret_n = len;
	return e;
}

/* RFC 9162 2.1.3.2. */
int merkle_verify_inclusion(const uint8_t leaf_hash[H], uint64_t index, uint64_t size, const uint8_t *p,
			    size_t n, const uint8_t root[H])
{
	uint64_t fn, sn;
	uint8_t r[H];

	if (index >= size)
		return -EBADMSG;
	fn = index;
	sn = size - 1;
	memcpy(r, leaf_hash, H);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *c = p + i * H;

		if (sn == 0)
			return -EBADMSG;
		if ((fn & 1) || fn == sn) {
			if (merkle_node_hash(c, r, r))
				return -ENOMEM;
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			if (merkle_node_hash(r, c, r))
				return -ENOMEM;
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, H) == 0 ? 0 : -EBADMSG;
}

/* RFC 9162 2.1.4.2, with the trivial cases (m == 0, m == n) handled first. */
int merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t m_root[H], const uint8_t n_root[H],
			      const uint8_t *p, size_t np)
{
	uint64_t fn, sn;
	uint8_t fr[H], sr[H];
	size_t i = 0;

	if (m > n)
		return -EBADMSG;
	if (m == n)
		return np == 0 && memcmp(m_root, n_root, H) == 0 ? 0 : -EBADMSG;
	if (m == 0)
		return np == 0 ? 0 : -EBADMSG;
	if (np == 0)
		return -EBADMSG;
	/* Step 2: when m is a power of two, the old root is the path's first element. */
	if ((m & (m - 1)) == 0) {
		memcpy(fr, m_root, H);
	} else {
		memcpy(fr, p, H);
		i = 1;
	}
	memcpy(sr, fr, H);
	fn = m - 1;
	sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < np; i++) {
		const uint8_t *c = p + i * H;

		if (sn == 0)
			return -EBADMSG;
		if ((fn & 1) || fn == sn) {
			if (merkle_node_hash(c, fr, fr) || merkle_node_hash(c, sr, sr))
				return -ENOMEM;
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			if (merkle_node_hash(sr, c, sr))
				return -ENOMEM;
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(fr, m_root, H) == 0 && memcmp(sr, n_root, H) == 0 ? 0 : -EBADMSG;
}
