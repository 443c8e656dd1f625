/*
 * merkle.h - the Merkle tree of RFC 6962 section 2.1 (SHA-256): the hash
 * of a leaf, of a node and of the empty tree; an append-only tree in
 * memory that answers the root of any prefix, inclusion proofs
 * (PATH(m, D[n]), 2.1.1) and consistency proofs (PROOF(m, D[n]), 2.1.2);
 * and the verifiers of RFC 9162 sections 2.1.3.2 and 2.1.4.2, which need
 * no tree.
 *
 * The tree keeps every leaf hash (32 bytes each) and the hashes of the
 * complete subtrees of 2^MERKLE_CACHE_LEVEL leaves and more (about 4 bytes
 * per leaf more); a smaller subtree is recomputed from its leaves when a
 * root or a proof needs it (at most 15 hashes).  So 1M records cost ~36 MB
 * and a root or a proof costs O(log n) hashes.
 *
 * Used by vigil-cp (cpaudit.c) and vigilctl (audit verify).  Library-like:
 * 0 or -errno, never logs.  Proofs are flat arrays of n * MERKLE_HASH_LEN
 * bytes in the order the RFC gives them (from the leaf up).
 */
#ifndef VIGIL_MERKLE_H
#define VIGIL_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN 32
/* Longer than any proof of a tree of up to 2^64 leaves. */
#define MERKLE_MAX_PROOF 130
#define MERKLE_CACHE_LEVEL 4

/* SHA-256(0x00 || data); 0, or -ENOMEM when OpenSSL cannot. */
int merkle_leaf_hash(const void *data, size_t len, uint8_t ret[MERKLE_HASH_LEN]);
/* SHA-256(0x01 || left || right). */
int merkle_node_hash(const uint8_t left[MERKLE_HASH_LEN], const uint8_t right[MERKLE_HASH_LEN],
		     uint8_t ret[MERKLE_HASH_LEN]);
/* SHA-256 of nothing: the root of the empty tree. */
void merkle_empty_root(uint8_t ret[MERKLE_HASH_LEN]);

struct merkle;

int merkle_new(struct merkle **ret);
/* Accepts NULL. */
void merkle_free(struct merkle *t);

/* The number of leaves. */
uint64_t merkle_size(const struct merkle *t);

/* Append one leaf by its hash (merkle_leaf_hash of the record). -ENOMEM. */
int merkle_append(struct merkle *t, const uint8_t leaf_hash[MERKLE_HASH_LEN]);

/* Forget the leaves from size on (an append that did not commit); -ERANGE past the end. */
int merkle_truncate(struct merkle *t, uint64_t size);

/* The hash of leaf i; -ERANGE when i >= size. */
int merkle_leaf(const struct merkle *t, uint64_t i, uint8_t ret[MERKLE_HASH_LEN]);

/* MTH(D[0:size]) for size <= merkle_size (-ERANGE otherwise). */
int merkle_root(const struct merkle *t, uint64_t size, uint8_t ret[MERKLE_HASH_LEN]);

/*
 * PATH(index, D[0:size]) into ret (room for MERKLE_MAX_PROOF hashes),
 * *ret_n hashes.  -EINVAL when index >= size, -ERANGE when size > merkle_size.
 */
int merkle_inclusion_proof(const struct merkle *t, uint64_t index, uint64_t size, uint8_t *ret,
			   size_t *ret_n);

/*
 * PROOF(m, D[0:n]) into ret (room for MERKLE_MAX_PROOF hashes), *ret_n
 * hashes; empty when m == 0 or m == n.  -EINVAL when m > n, -ERANGE when
 * n > merkle_size.
 */
int merkle_consistency_proof(const struct merkle *t, uint64_t m, uint64_t n, uint8_t *ret, size_t *ret_n);

/* 0 when path proves leaf_hash is leaf index of the tree of size with root; else -EBADMSG. */
int merkle_verify_inclusion(const uint8_t leaf_hash[MERKLE_HASH_LEN], uint64_t index, uint64_t size,
			    const uint8_t *path, size_t n, const uint8_t root[MERKLE_HASH_LEN]);

/*
 * 0 when path proves the tree of size m with root m_root is a prefix of
 * the tree of size n with root n_root; else -EBADMSG.  m == n needs an
 * empty path and equal roots; m == 0 needs an empty path (every tree
 * extends the empty one).
 */
int merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t m_root[MERKLE_HASH_LEN],
			      const uint8_t n_root[MERKLE_HASH_LEN], const uint8_t *path, size_t np);

#endif
