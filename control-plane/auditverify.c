/*
 * auditverify.c - checking an audit log against its checkpoints (see
 * auditverify.h).  Runs in vigilctl, as the administrator.  Never logs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auditverify.h"
#include "hexdigit.h"

struct auditverify {
	struct checkpoint cp;
	struct merkle *tree;
	int64_t bad;
	char why[256];
};

int auditverify_new(const struct checkpoint *cp, struct auditverify **ret)
{
	struct auditverify *v = calloc(1, sizeof(*v));

	if (!v || merkle_new(&v->tree)) {
		free(v);
		return -ENOMEM;
	}
	v->cp = *cp;
	v->bad = -1;
	*ret = v;
	return 0;
}

void auditverify_free(struct auditverify *v)
{
	if (!v)
		return;
	merkle_free(v->tree);
	free(v);
}

static int bad(struct auditverify *v, int64_t idx, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int bad(struct auditverify *v, int64_t idx, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
	v->bad = idx;
	snprintf(err, errlen, "%s", v->why);
	return -EBADMSG;
}

int auditverify_record(struct auditverify *v, const uint8_t *rec, size_t len, char *err, size_t errlen)
{
	uint64_t p = merkle_size(v->tree);
	uint8_t root[MERKLE_HASH_LEN], leaf[MERKLE_HASH_LEN];
	char hex[2 * MERKLE_HASH_LEN + 1], *again;
	json_t *o, *vi, *vprev;
	bool canonical;
	int e;

	if (v->bad >= 0) {
		snprintf(err, errlen, "%s", v->why);
		return -EBADMSG;
	}
	if (p >= v->cp.size)
		return -ERANGE;
	o = json_loadb((const char *)rec, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return bad(v, (int64_t)p, err, errlen, "record %" PRIu64 " is not a JSON object", p);
	}
	again = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII);
	canonical = again && strlen(again) == len && memcmp(again, rec, len) == 0;
	free(again);
	vi = json_object_get(o, "i");
	vprev = json_object_get(o, "prev");
	if (!canonical || !json_is_integer(vi) || !json_is_string(vprev) ||
	    !json_is_integer(json_object_get(o, "t")) || !json_is_string(json_object_get(o, "kind"))) {
		json_decref(o);
		return bad(v, (int64_t)p, err, errlen,
			   "record %" PRIu64 " is not a canonical audit record (sorted compact JSON with i, prev, t "
			   "and kind): it was written by something other than vigil-cp",
			   p);
	}
	if (json_integer_value(vi) != (json_int_t)p) {
		json_int_t i = json_integer_value(vi);

		json_decref(o);
		return bad(v, (int64_t)p, err, errlen,
			   "record %" PRIu64 " says it is record %" JSON_INTEGER_FORMAT
			   ": a record was deleted, inserted or moved at index %" PRIu64,
			   p, i, p);
	}
	if ((e = merkle_root(v->tree, p, root))) {
		json_decref(o);
		return e;
	}
	hexdigit_encode(root, sizeof(root), hex);
	if (strcmp(json_string_value(vprev), hex) != 0) {
		json_decref(o);
		/* Record 0's prev is the empty tree's: nothing before it can be to blame. */
		if (p == 0)
			return bad(v, 0, err, errlen, "record 0 was changed: its prev is not the empty tree's root");
		return bad(v, (int64_t)p - 1, err, errlen,
			   "record %" PRId64 " was changed: the records before %" PRIu64
			   " no longer hash to the prev that record %" PRIu64 " holds",
			   (int64_t)p - 1, p, p);
	}
	json_decref(o);
	if ((e = merkle_leaf_hash(rec, len, leaf)) || (e = merkle_append(v->tree, leaf)))
		return e;
	return 0;
}

int auditverify_finish(struct auditverify *v, char *err, size_t errlen)
{
	uint64_t n = merkle_size(v->tree);
	uint8_t root[MERKLE_HASH_LEN];
	int e;

	if (v->bad >= 0) {
		snprintf(err, errlen, "%s", v->why);
		return -EBADMSG;
	}
	if (n < v->cp.size)
		return bad(v, (int64_t)n, err, errlen,
			   "the checkpoint covers %" PRIu64 " records but only %" PRIu64
			   " came: records from index %" PRIu64 " on are missing",
			   v->cp.size, n, n);
	if ((e = merkle_root(v->tree, n, root)))
		return e;
	if (memcmp(root, v->cp.root, sizeof(root)) != 0)
		return bad(v, (int64_t)n - 1, err, errlen,
			   "record %" PRIu64 " was changed: the records do not hash to the checkpoint's root", n - 1);
	return 0;
}

int64_t auditverify_bad_index(const struct auditverify *v)
{
	return v->bad;
}

uint64_t auditverify_count(const struct auditverify *v)
{
	return merkle_size(v->tree);
}

const struct merkle *auditverify_tree(const struct auditverify *v)
{
	return v->tree;
}

int auditverify_against_saved(const struct auditverify *v, const struct checkpoint *old, const uint8_t *proof,
			      size_t np, char *err, size_t errlen)
{
	uint8_t root[MERKLE_HASH_LEN];

	if (strcmp(old->origin, v->cp.origin) != 0) {
		snprintf(err, errlen, "the saved checkpoint is of log \"%s\", this one of \"%s\"", old->origin,
			 v->cp.origin);
		return -EBADMSG;
	}
	if (old->size > v->cp.size) {
		snprintf(err, errlen,
			 "the log shrank: a checkpoint verified earlier covered %" PRIu64
			 " records, the server now signs %" PRIu64 " (history truncated and re-signed)",
			 old->size, v->cp.size);
		return -EBADMSG;
	}
	if (merkle_verify_consistency(old->size, v->cp.size, old->root, v->cp.root, proof, np) != 0) {
		snprintf(err, errlen,
			 "the server's consistency proof from the saved checkpoint (%" PRIu64 " records) to this one (%" PRIu64
			 ") does not verify: the history before %" PRIu64 " was rewritten",
			 old->size, v->cp.size, old->size);
		return -EBADMSG;
	}
	if (merkle_root(v->tree, old->size, root) != 0 || memcmp(root, old->root, sizeof(root)) != 0) {
		snprintf(err, errlen,
			 "the first %" PRIu64 " records no longer hash to the saved checkpoint's root: the history "
			 "was rewritten",
			 old->size);
		return -EBADMSG;
	}
	return 0;
}
