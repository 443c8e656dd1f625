/*
 * yamltree.h - a bounded YAML parser for configuration: libyaml events into
 * a small tree of scalars, mappings and sequences, each with its position.
 *
 * Built for untrusted input.  It reads exactly len bytes, refuses aliases
 * (so no "billion laughs"), anchors and tags, accepts one document, and
 * stops at a nesting depth and a node count the caller chooses.  Scalars are
 * kept as text; what they mean is the caller's business (yamltree_kind()
 * resolves plain scalars with the YAML 1.2 core schema).
 *
 * Library-like: returns 0 or -errno, never logs.  Problems in the input are
 * reported through a callback, with 1-based line and column.
 */
#ifndef VIGIL_YAMLTREE_H
#define VIGIL_YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>

enum ynode_type { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
	enum ynode_type type;
	unsigned line, col;	/* 1-based position of the node's first character */
	bool plain;		/* scalar written without quotes (or block style) */
	bool bad;		/* an error was already reported for this node */
	char *str;		/* scalar: the value, NUL-terminated ... */
	size_t len;		/* ... of len bytes, which may include NUL bytes */
	struct ynode **kids;	/* map: key, value, key, value...; seq: items */
	size_t n_kids, cap_kids;
};

/* What a scalar is (YAML 1.2 core schema for plain scalars). */
enum yscalar_kind { YSCALAR_NULL, YSCALAR_BOOL, YSCALAR_INT, YSCALAR_FLOAT, YSCALAR_STRING };

struct yamltree_limits {
	unsigned max_depth;	/* most collections nested in one another, >= 1 */
	unsigned max_nodes;	/* most nodes in the document */
};

/* Called for each problem in the input; msg is only valid during the call. */
typedef void yamltree_error_fn(void *ctx, unsigned line, unsigned col, const char *msg);

/*
 * Parse buf[0..len).  On success *ret is the root node (NULL for a stream
 * with no document) and the caller frees it with yamltree_free().
 *
 * Returns 0 if a tree was built, even when err was called for anchors, tags
 * or aliases (an alias becomes a null scalar with bad set, so that callers
 * do not report it twice).  -EBADMSG if the input is not YAML or breaks a
 * limit (err said why; nothing is returned), -ENOMEM.
 */
int yamltree_parse(const char *buf, size_t len, const struct yamltree_limits *lim,
		   yamltree_error_fn *err, void *ctx, struct ynode **ret);

void yamltree_free(struct ynode *n);

enum yscalar_kind yamltree_kind(const struct ynode *n);

/* The value of map n under key (NUL-free), or NULL. */
struct ynode *yamltree_get(const struct ynode *n, const char *key);

#endif
