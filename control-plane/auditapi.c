/*
 * auditapi.c - the admin API's audit routes (auditapi.h): the log's size,
 * its signed checkpoint, its records as stored, and Merkle proofs, so that
 * vigilctl audit verify can check what the server says against what it
 * signed.  Runs in vigil-cp's event loop (unprivileged).  Never logs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auditapi.h"
#include "b64.h"

/* ------------------------------------------------------------------------
 * Queries: "k=v&k=v", each key one of names, each value a decimal up to 2^63 - 1. */

#define MAX_PARAMS 2

struct params {
	const char *names[MAX_PARAMS + 1];	/* NULL-terminated */
	bool have[MAX_PARAMS];
	int64_t v[MAX_PARAMS];
};

static int parse_query(const char *q, struct params *p, char *err, size_t errlen)
{
	while (q && *q) {
		const char *amp = strchr(q, '&'), *eq;
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		int k = -1;
		int64_t v = 0;

		eq = memchr(q, '=', len);
		if (!eq || eq == q) {
			snprintf(err, errlen, "query: \"%.*s\" is not NAME=NUMBER", (int)(len > 64 ? 64 : len), q);
			return -EINVAL;
		}
		for (int i = 0; p->names[i]; i++)
			if (strlen(p->names[i]) == (size_t)(eq - q) && !memcmp(p->names[i], q, (size_t)(eq - q)))
				k = i;
		if (k < 0) {
			snprintf(err, errlen, "query: unknown parameter \"%.*s\"", (int)(eq - q > 32 ? 32 : eq - q), q);
			return -EINVAL;
		}
		if (p->have[k]) {
			snprintf(err, errlen, "query: %s appears twice", p->names[k]);
			return -EINVAL;
		}
		if (eq + 1 == q + len) {
			snprintf(err, errlen, "query: %s is empty", p->names[k]);
			return -EINVAL;
		}
		for (const char *c = eq + 1; c < q + len; c++) {
			if (*c < '0' || *c > '9' || v > (INT64_MAX - (*c - '0')) / 10) {
				snprintf(err, errlen, "query: %s must be a decimal integer from 0 to 2^63-1",
					 p->names[k]);
				return -EINVAL;
			}
			v = v * 10 + (*c - '0');
		}
		p->have[k] = true;
		p->v[k] = v;
		q = amp ? amp + 1 : q + len;
	}
	return 0;
}

static json_t *proof_array(const uint8_t *p, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, b64_json(p + i * MERKLE_HASH_LEN, MERKLE_HASH_LEN))) {
			json_decref(arr);
			return NULL;
		}
	return arr;
}

/* ------------------------------------------------------------------------
 * Routes. */

static int summary(struct cpaudit *au, const struct cp_identity *id, struct api_reply *ret)
{
	int e = cpaudit_sync(au);

	if (e && e != -EBADMSG)
		return api_reply_error(ret, id, 500, NULL, "audit log: reading the store: %s", strerror(-e));
	return api_reply_json(ret, 200,
			  json_pack("{s:I, s:s, s:b}", "size", (json_int_t)cpaudit_size(au), "origin",
				    cpaudit_origin(au), "signed", cpaudit_signs(au)));
}

static int checkpoint_route(struct cpaudit *au, const struct cp_identity *id, struct api_reply *ret)
{
	char *text = NULL;
	size_t len = 0;
	int e = cpaudit_checkpoint(au, &text, &len);

	if (e == -ENOKEY)
		return api_reply_error(ret, id, 503, NULL,
				   "this vigil-cp signs no checkpoints: start it with --audit-key FILE (an Ed25519 "
				   "private key in PEM)");
	if (e)
		return api_reply_error(ret, id, 500, NULL, "audit log: signing a checkpoint failed: %s", strerror(-e));
	ret->http_status = 200;
	ret->body = text;
	ret->len = len;
	ret->content_type = "text/plain; charset=utf-8";
	return 0;
}

struct page {
	char *buf;
	size_t len, cap;
	bool full;
};

static int page_add(const struct store_audit_record *r, void *arg)
{
	struct page *pg = arg;

	if (pg->len > 0 && pg->len + r->len + 1 > AUDITAPI_MAX_PAGE_BYTES) {
		pg->full = true;
		return 1; /* stop: the client asks again from here */
	}
	if (pg->len + r->len + 2 > pg->cap) {
		size_t cap = (pg->len + r->len + 2) * 2;
		char *b = realloc(pg->buf, cap);

		if (!b)
			return -ENOMEM;
		pg->buf = b;
		pg->cap = cap;
	}
	memcpy(pg->buf + pg->len, r->record, r->len);
	pg->len += r->len;
	pg->buf[pg->len++] = '\n';
	pg->buf[pg->len] = '\0';
	return 0;
}

static int records(struct cpaudit *au, const struct cp_identity *id, const char *query, struct api_reply *ret)
{
	struct params p = { .names = { "since", "limit", NULL } };
	struct page pg = { 0 };
	char err[160];
	int64_t limit;
	int e;

	if (parse_query(query, &p, err, sizeof(err)))
		return api_reply_error(ret, id, 400, NULL, "%s", err);
	limit = p.have[1] ? p.v[1] : AUDITAPI_DEFAULT_PAGE;
	cpaudit_flush(au); /* what is queued is part of the log already */
	if (limit < 1 || limit > AUDITAPI_MAX_PAGE)
		return api_reply_error(ret, id, 400, NULL, "query: limit must be from 1 to %d", AUDITAPI_MAX_PAGE);
	e = store_audit_list(cpaudit_store(au), p.have[0] ? p.v[0] : 0, limit, page_add, &pg);
	if (e < 0) {
		free(pg.buf);
		return e == -ENOMEM ? -ENOMEM
				    : api_reply_error(ret, id, 500, NULL, "audit log: reading the store: %s", strerror(-e));
	}
	ret->http_status = 200;
	ret->body = pg.buf ? pg.buf : strdup("");
	ret->len = pg.len;
	ret->content_type = "application/x-ndjson";
	return ret->body ? 0 : -ENOMEM;
}

/*
 * What both proofs begin with: the two required parameters of p, and the
 * tree brought up to the store.  0 with *ret_size the log's size, or 1
 * when *ret was filled with the refusal (or a negative errno).
 */
static int proof_query(struct cpaudit *au, const struct cp_identity *id, const char *query, struct params *p,
		       struct api_reply *ret, uint64_t *ret_size)
{
	char err[160];
	int e;

	if (parse_query(query, p, err, sizeof(err)))
		e = api_reply_error(ret, id, 400, NULL, "%s", err);
	else if (!p->have[0] || !p->have[1])
		e = api_reply_error(ret, id, 400, NULL, "query: %s and %s are required", p->names[0], p->names[1]);
	/* -EBADMSG: a row that does not follow the tree; answer for the tree we hold. */
	else if ((e = cpaudit_sync(au)) && e != -EBADMSG)
		e = api_reply_error(ret, id, 500, NULL, "audit log: reading the store: %s", strerror(-e));
	else {
		*ret_size = cpaudit_size(au);
		return 0;
	}
	return e < 0 ? e : 1;
}

static int inclusion(struct cpaudit *au, const struct cp_identity *id, const char *query, struct api_reply *ret)
{
	struct params p = { .names = { "index", "size", NULL } };
	uint8_t proof[MERKLE_MAX_PROOF * MERKLE_HASH_LEN], root[MERKLE_HASH_LEN], leaf[MERKLE_HASH_LEN];
	size_t n = 0;
	uint64_t size = 0;
	int e;

	if ((e = proof_query(au, id, query, &p, ret, &size)))
		return e < 0 ? e : 0;
	if ((uint64_t)p.v[1] > size || p.v[0] >= p.v[1])
		return api_reply_error(ret, id, 400, NULL,
				   "no inclusion proof of index %" PRId64 " in a tree of size %" PRId64
				   ": the log has %" PRIu64 " records (index < size <= that)",
				   p.v[0], p.v[1], size);
	if ((e = merkle_inclusion_proof(cpaudit_tree(au), (uint64_t)p.v[0], (uint64_t)p.v[1], proof, &n)) ||
	    (e = merkle_root(cpaudit_tree(au), (uint64_t)p.v[1], root)) ||
	    (e = merkle_leaf(cpaudit_tree(au), (uint64_t)p.v[0], leaf)))
		return e == -ENOMEM ? e : api_reply_error(ret, id, 500, NULL, "audit log: %s", strerror(-e));
	return api_reply_json(ret, 200,
			  json_pack("{s:I, s:I, s:o, s:o, s:o}", "index", (json_int_t)p.v[0], "size",
				    (json_int_t)p.v[1], "leaf_hash", b64_json(leaf, sizeof(leaf)), "root",
				    b64_json(root, sizeof(root)), "proof", proof_array(proof, n)));
}

static int consistency(struct cpaudit *au, const struct cp_identity *id, const char *query,
		       struct api_reply *ret)
{
	struct params p = { .names = { "from", "to", NULL } };
	uint8_t proof[MERKLE_MAX_PROOF * MERKLE_HASH_LEN], r1[MERKLE_HASH_LEN], r2[MERKLE_HASH_LEN];
	size_t n = 0;
	uint64_t size = 0;
	int e;

	if ((e = proof_query(au, id, query, &p, ret, &size)))
		return e < 0 ? e : 0;
	if ((uint64_t)p.v[1] > size || p.v[0] > p.v[1])
		return api_reply_error(ret, id, 400, NULL,
				   "no consistency proof from size %" PRId64 " to %" PRId64 ": the log has %" PRIu64
				   " records (from <= to <= that)",
				   p.v[0], p.v[1], size);
	if ((e = merkle_consistency_proof(cpaudit_tree(au), (uint64_t)p.v[0], (uint64_t)p.v[1], proof, &n)) ||
	    (e = merkle_root(cpaudit_tree(au), (uint64_t)p.v[0], r1)) ||
	    (e = merkle_root(cpaudit_tree(au), (uint64_t)p.v[1], r2)))
		return e == -ENOMEM ? e : api_reply_error(ret, id, 500, NULL, "audit log: %s", strerror(-e));
	return api_reply_json(ret, 200,
			  json_pack("{s:I, s:I, s:o, s:o, s:o}", "from", (json_int_t)p.v[0], "to", (json_int_t)p.v[1],
				    "from_root", b64_json(r1, sizeof(r1)), "to_root", b64_json(r2, sizeof(r2)), "proof",
				    proof_array(proof, n)));
}

int auditapi_handle(void *arg, const struct cp_identity *id, const char *rest, const char *query,
		    struct api_reply *ret)
{
	struct cpaudit *au = arg;
	bool no_query = !query || !*query;

	if (!strcmp(rest, "") || !strcmp(rest, "/"))
		return no_query ? summary(au, id, ret)
				: api_reply_error(ret, id, 400, NULL, "/api/v1/audit takes no query parameters");
	if (!strcmp(rest, "/checkpoint"))
		return no_query ? checkpoint_route(au, id, ret)
				: api_reply_error(ret, id, 400, NULL, "/api/v1/audit/checkpoint takes no query parameters");
	if (!strcmp(rest, "/records"))
		return records(au, id, query, ret);
	if (!strcmp(rest, "/proof/inclusion"))
		return inclusion(au, id, query, ret);
	if (!strcmp(rest, "/proof/consistency"))
		return consistency(au, id, query, ret);
	return api_reply_error(ret, id, 404, NULL, "no such resource: /api/v1/audit%.100s", rest);
}
