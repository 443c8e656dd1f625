/*
 * test_merkle.c - RFC 6962 Merkle trees: the published reference roots
 * and proofs, the cached tree against a naive recomputation at every size
 * past the cache levels, every inclusion and consistency proof of every
 * (m, n) up to 64 verifying, and any flipped bit, wrong index or wrong
 * size refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merkle.h"

#define H MERKLE_HASH_LEN

/*
 * The reference tree of google/certificate-transparency
 * cpp/merkletree/merkle_tree_test.cc (as replicated in Chromium's
 * net/cert/ct_log_verifier_unittest.cc, "All test data replicated from
 * https://github.com/google/certificate-transparency/blob/c41b090ecc14ddd6b3531dc7e5ce36b21e253fdd/cpp/merkletree/merkle_tree_test.cc"):
 * its eight leaves, the roots at sizes 1..8, and some of its proofs.
 */
static const char *const ref_leaves[8] = {
	"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
};
static const char *const ref_roots[8] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct ref_proof {
	uint64_t a, b; /* inclusion: leaf index (0-based), size; consistency: m, n */
	size_t n;
	const char *h[3];
};

static const struct ref_proof ref_inclusion[] = {
	{ 0, 1, 0, { 0 } },
	{ 0, 8, 3,
	  { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 5, 8, 3,
	  { "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 3, 1, { "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" } },
	{ 1, 5, 3,
	  { "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
};

static const struct ref_proof ref_consistency[] = {
	{ 1, 1, 0, { 0 } },
	{ 1, 8, 3,
	  { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 6, 8, 3,
	  { "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 5, 2,
	  { "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
};

static size_t unhex(const char *s, uint8_t *out)
{
	size_t n = strlen(s) / 2;

	for (size_t i = 0; i < n; i++) {
		unsigned int v;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void tohex(const uint8_t *h, char out[2 * H + 1])
{
	for (int i = 0; i < H; i++)
		sprintf(out + 2 * i, "%02x", h[i]);
}

static struct merkle *ref_tree(size_t n)
{
	struct merkle *t;

	assert_int_equal(merkle_new(&t), 0);
	for (size_t i = 0; i < n; i++) {
		uint8_t data[16], h[H];
		size_t len = unhex(ref_leaves[i], data);

		assert_int_equal(merkle_leaf_hash(data, len, h), 0);
		assert_int_equal(merkle_append(t, h), 0);
	}
	return t;
}

static void test_reference_roots(void **state)
{
	uint8_t h[H];
	char hex[2 * H + 1];

	(void)state;
	for (size_t n = 0; n <= 8; n++) {
		struct merkle *t = ref_tree(n);

		assert_int_equal(merkle_size(t), n);
		assert_int_equal(merkle_root(t, n, h), 0);
		tohex(h, hex);
		assert_string_equal(hex, n ? ref_roots[n - 1]
					   : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
		merkle_free(t);
	}
	/* Every prefix of the full tree gives the same roots as a tree of that size. */
	struct merkle *t = ref_tree(8);

	for (size_t n = 1; n <= 8; n++) {
		assert_int_equal(merkle_root(t, n, h), 0);
		tohex(h, hex);
		assert_string_equal(hex, ref_roots[n - 1]);
	}
	assert_int_equal(merkle_root(t, 9, h), -ERANGE);
	merkle_free(t);
}

static void test_reference_proofs(void **state)
{
	struct merkle *t = ref_tree(8);
	uint8_t p[MERKLE_MAX_PROOF * H], root[H], root2[H], leaf[H];
	char hex[2 * H + 1];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(ref_inclusion) / sizeof(ref_inclusion[0]); i++) {
		const struct ref_proof *r = &ref_inclusion[i];

		assert_int_equal(merkle_inclusion_proof(t, r->a, r->b, p, &n), 0);
		assert_int_equal(n, r->n);
		for (size_t j = 0; j < n; j++) {
			tohex(p + j * H, hex);
			assert_string_equal(hex, r->h[j]);
		}
		assert_int_equal(merkle_root(t, r->b, root), 0);
		assert_int_equal(merkle_leaf(t, r->a, leaf), 0);
		assert_int_equal(merkle_verify_inclusion(leaf, r->a, r->b, p, n, root), 0);
	}
	for (size_t i = 0; i < sizeof(ref_consistency) / sizeof(ref_consistency[0]); i++) {
		const struct ref_proof *r = &ref_consistency[i];

		assert_int_equal(merkle_consistency_proof(t, r->a, r->b, p, &n), 0);
		assert_int_equal(n, r->n);
		for (size_t j = 0; j < n; j++) {
			tohex(p + j * H, hex);
			assert_string_equal(hex, r->h[j]);
		}
		assert_int_equal(merkle_root(t, r->a, root), 0);
		assert_int_equal(merkle_root(t, r->b, root2), 0);
		assert_int_equal(merkle_verify_consistency(r->a, r->b, root, root2, p, n), 0);
	}
	merkle_free(t);
}

/* MTH by the RFC's definition, over an array of leaf hashes, without any cache. */
static void naive_mth(const uint8_t *leaves, uint64_t n, uint8_t out[H])
{
	uint64_t k = 1;
	uint8_t l[H], r[H];

	if (n == 0) {
		merkle_empty_root(out);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves, H);
		return;
	}
	while (k * 2 < n)
		k *= 2;
	naive_mth(leaves, k, l);
	naive_mth(leaves + k * H, n - k, r);
	assert_int_equal(merkle_node_hash(l, r, out), 0);
}

static uint8_t *make_leaves(size_t n)
{
	uint8_t *leaves = malloc(n * H + 1);

	assert_non_null(leaves);
	for (size_t i = 0; i < n; i++) {
		char rec[32];
		int len = snprintf(rec, sizeof(rec), "record %zu", i);

		assert_int_equal(merkle_leaf_hash(rec, (size_t)len, leaves + i * H), 0);
	}
	return leaves;
}

/* The cached levels agree with the definition at every size, across several cache levels. */
static void test_against_naive(void **state)
{
	const size_t max = 600;
	uint8_t *leaves = make_leaves(max), a[H], b[H];
	struct merkle *t;

	(void)state;
	assert_int_equal(merkle_new(&t), 0);
	for (size_t n = 1; n <= max; n++) {
		assert_int_equal(merkle_append(t, leaves + (n - 1) * H), 0);
		assert_int_equal(merkle_root(t, n, a), 0);
		naive_mth(leaves, n, b);
		assert_memory_equal(a, b, H);
	}
	/* And every prefix of the grown tree (its cache is complete) still agrees. */
	for (size_t n = 0; n <= max; n += 7) {
		assert_int_equal(merkle_root(t, n, a), 0);
		naive_mth(leaves, n, b);
		assert_memory_equal(a, b, H);
	}
	merkle_free(t);
	free(leaves);
}

/* Every proof of every (m, n) up to 64 verifies, and no altered one does (each byte altered). */
static void test_all_proofs(void **state)
{
	const uint64_t max = 64;
	uint8_t *leaves = make_leaves(max);
	uint8_t p[MERKLE_MAX_PROOF * H], bad[MERKLE_MAX_PROOF * H], roots[65][H];
	struct merkle *t;
	size_t np;

	(void)state;
	assert_int_equal(merkle_new(&t), 0);
	for (uint64_t i = 0; i < max; i++)
		assert_int_equal(merkle_append(t, leaves + i * H), 0);
	for (uint64_t n = 0; n <= max; n++)
		assert_int_equal(merkle_root(t, n, roots[n]), 0);

	for (uint64_t n = 1; n <= max; n++) {
		for (uint64_t i = 0; i < n; i++) {
			const uint8_t *leaf = leaves + i * H;

			assert_int_equal(merkle_inclusion_proof(t, i, n, p, &np), 0);
			assert_int_equal(merkle_verify_inclusion(leaf, i, n, p, np, roots[n]), 0);
			/* Wrong index, wrong size, another leaf, another root. */
			if (n > 1) {
				assert_int_equal(merkle_verify_inclusion(leaf, (i + 1) % n, n, p, np, roots[n]),
						 -EBADMSG);
				assert_int_equal(merkle_verify_inclusion(leaves + ((i + 1) % n) * H, i, n, p, np,
									 roots[n]),
						 -EBADMSG);
				assert_int_equal(merkle_verify_inclusion(leaf, i, n, p, np, roots[n - 1]), -EBADMSG);
			}
			/*
			 * Another size with that size's root (the verifier may accept
			 * another size with the same root when the path's shape is the
			 * same: the size is bound by the signed root, not the path).
			 */
			if (n < max)
				assert_int_equal(merkle_verify_inclusion(leaf, i, n + 1, p, np, roots[n + 1]), -EBADMSG);
			if (n - 1 > i)
				assert_int_equal(merkle_verify_inclusion(leaf, i, n - 1, p, np, roots[n - 1]), -EBADMSG);
			/*
			 * Every byte of the path altered (a bit of it, the bit
			 * moving from byte to byte): a hash compared is wrong in
			 * any bit alike, and all bits of all bytes took 20 s.
			 */
			for (size_t byte = 0; byte < np * H; byte++) {
				memcpy(bad, p, np * H);
				bad[byte] ^= (uint8_t)(1u << (byte % 8));
				assert_int_equal(merkle_verify_inclusion(leaf, i, n, bad, np, roots[n]), -EBADMSG);
			}
			/* A hash too few, a hash too many. */
			if (np > 0)
				assert_int_equal(merkle_verify_inclusion(leaf, i, n, p, np - 1, roots[n]), -EBADMSG);
			memcpy(p + np * H, roots[0], H);
			assert_int_equal(merkle_verify_inclusion(leaf, i, n, p, np + 1, roots[n]), -EBADMSG);
		}
		for (uint64_t m = 0; m <= n; m++) {
			assert_int_equal(merkle_consistency_proof(t, m, n, p, &np), 0);
			assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n], p, np), 0);
			if (m == 0)
				continue;
			/* Swapped or other roots, other sizes (with their own roots). */
			if (m < n) {
				assert_int_equal(merkle_verify_consistency(m, n, roots[n], roots[m], p, np), -EBADMSG);
				assert_int_equal(merkle_verify_consistency(m, n, roots[m - 1], roots[n], p, np),
						 -EBADMSG);
				assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n - 1], p, np),
						 -EBADMSG);
				assert_int_equal(merkle_verify_consistency(m - 1, n, roots[m - 1], roots[n], p, np),
						 -EBADMSG);
				assert_int_equal(merkle_verify_consistency(m + 1, n, roots[m + 1], roots[n], p, np),
						 -EBADMSG);
				if (n < max)
					assert_int_equal(merkle_verify_consistency(m, n + 1, roots[m], roots[n + 1], p, np),
							 -EBADMSG);
				assert_int_equal(merkle_verify_consistency(n, m, roots[n], roots[m], p, np), -EBADMSG);
			}
			for (size_t byte = 0; byte < np * H; byte++) {
				memcpy(bad, p, np * H);
				bad[byte] ^= (uint8_t)(1u << (byte % 8));
				assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n], bad, np), -EBADMSG);
			}
			if (np > 0)
				assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n], p, np - 1), -EBADMSG);
			memcpy(p + np * H, p, H);
			assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n], p, np + 1), -EBADMSG);
		}
	}
	merkle_free(t);
	free(leaves);
}

/* Cut back and grown again (an append that did not commit), the tree is as if never grown. */
static void test_truncate(void **state)
{
	const size_t max = 200;
	uint8_t *leaves = make_leaves(max), *other = make_leaves(max), a[H], b[H];
	struct merkle *t;

	(void)state;
	assert_int_equal(merkle_new(&t), 0);
	for (size_t i = 0; i < 150; i++)
		assert_int_equal(merkle_append(t, leaves + i * H), 0);
	assert_int_equal(merkle_truncate(t, 151), -ERANGE);
	assert_int_equal(merkle_truncate(t, 37), 0);
	assert_int_equal(merkle_size(t), 37);
	/* Other leaves where the cut ones were: nothing of the old ones may remain. */
	for (size_t i = 37; i < max; i++)
		assert_int_equal(merkle_append(t, (i < 100 ? other : leaves) + i * H), 0);
	for (size_t n = 1; n <= max; n += 3) {
		uint8_t *mix = malloc(n * H);

		for (size_t i = 0; i < n; i++)
			memcpy(mix + i * H, (i >= 37 && i < 100 ? other : leaves) + i * H, H);
		naive_mth(mix, n, b);
		assert_int_equal(merkle_root(t, n, a), 0);
		assert_memory_equal(a, b, H);
		free(mix);
	}
	merkle_free(t);
	free(leaves);
	free(other);
}

static void test_bad_arguments(void **state)
{
	struct merkle *t = ref_tree(5);
	uint8_t p[MERKLE_MAX_PROOF * H], h[H];
	size_t np;

	(void)state;
	assert_int_equal(merkle_inclusion_proof(t, 5, 5, p, &np), -EINVAL);
	assert_int_equal(merkle_inclusion_proof(t, 0, 6, p, &np), -ERANGE);
	assert_int_equal(merkle_consistency_proof(t, 4, 3, p, &np), -EINVAL);
	assert_int_equal(merkle_consistency_proof(t, 1, 6, p, &np), -ERANGE);
	assert_int_equal(merkle_leaf(t, 5, h), -ERANGE);
	merkle_root(t, 5, h);
	assert_int_equal(merkle_verify_inclusion(h, 0, 0, p, 0, h), -EBADMSG);
	/* Nothing is consistent with a shrinking tree. */
	assert_int_equal(merkle_verify_consistency(5, 4, h, h, p, 0), -EBADMSG);
	/* An empty proof between two sizes proves nothing. */
	assert_int_equal(merkle_verify_consistency(2, 4, h, h, p, 0), -EBADMSG);
	merkle_free(t);
	merkle_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_roots),
		cmocka_unit_test(test_reference_proofs),
		cmocka_unit_test(test_against_naive),
		cmocka_unit_test(test_all_proofs),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
