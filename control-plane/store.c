/*
 * store.c - store.h's front: picks the backend by the URL's scheme and
 * forwards each call through its struct store_ops (store_int.h); checks
 * the limits every backend shares and releases what backends fill.
 * Runs in vigil-cp (unprivileged, single-threaded).  Never logs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_int.h"

static const struct store_ops *const store_backends[] = {
	&store_sqlite_ops,
	&store_pg_ops,
};

int store_open(const char *url, struct store **ret_store, char *err, size_t errlen)
{
	const char *colon;
	size_t n;

	if (err && errlen)
		err[0] = '\0';
	if (!url || !ret_store)
		return -EINVAL;
	colon = strchr(url, ':');
	if (!colon) {
		snprintf(err, errlen, "%s: not a store URL (want sqlite:PATH or postgresql://...)", url);
		return -EINVAL;
	}
	n = (size_t)(colon - url);
	for (size_t i = 0; i < sizeof(store_backends) / sizeof(store_backends[0]); i++) {
		const struct store_ops *ops = store_backends[i];

		if ((strlen(ops->scheme) != n || memcmp(ops->scheme, url, n) != 0) &&
		    (!ops->alias || strlen(ops->alias) != n || memcmp(ops->alias, url, n) != 0))
			continue;
		if (!colon[1]) {
			snprintf(err, errlen, "%s: empty path", url);
			return -EINVAL;
		}
		return ops->open(colon + 1, ret_store, err, errlen);
	}
	snprintf(err, errlen, "%.*s: unknown store scheme (want sqlite:PATH or postgresql://...)",
		 (int)(n > 64 ? 64 : n), url);
	return -EINVAL;
}

void store_url_display(const char *url, char *buf, size_t len)
{
	const char *p = strstr(url, "://"), *at, *end;

	if (!len)
		return;
	if (!p) {
		snprintf(buf, len, "%s", url);
		return;
	}
	p += 3;
	/* The authority ends at the first '/' or '?'; the userinfo at its last '@'. */
	end = p + strcspn(p, "/?");
	at = memrchr(p, '@', (size_t)(end - p));
	if (at)
		p = at + 1;
	end = p + strcspn(p, "?");
	snprintf(buf, len, "%.*s%.*s", (int)(strstr(url, "://") + 3 - url), url, (int)(end - p), p);
}

void store_close(struct store *st)
{
	if (st)
		st->ops->close(st);
}

int store_schema_version(struct store *st)
{
	return st->ops->schema_version(st);
}

static int store_check_text(const char *s)
{
	return s && strnlen(s, STORE_MAX_TEXT + 1) > STORE_MAX_TEXT ? -E2BIG : 0;
}

int store_check_agent(const struct store_agent *a)
{
	const char *texts[] = { a->cert_subject, a->cert_sans,	 a->cert_serial, a->cert_fingerprint,
				a->description_json, a->health_json, a->last_error };

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (store_check_text(texts[i]))
			return -E2BIG;
	if (a->healthy < -1 || a->healthy > 1)
		return -EINVAL;
	return 0;
}

int store_check_policy(const struct store_policy *p)
{
	if (p->serial <= 0 || !p->yaml || !p->sig)
		return -EINVAL;
	if (p->yaml_len > STORE_MAX_BLOB || p->sig_len > STORE_MAX_BLOB)
		return -E2BIG;
	if (store_check_text(p->signer) || store_check_text(p->uploaded_by))
		return -E2BIG;
	return 0;
}

int store_agent_get(struct store *st, const uint8_t uid[STORE_UID_LEN], struct store_agent *ret)
{
	return st->ops->agent_get(st, uid, ret);
}

int store_agent_put(struct store *st, const struct store_agent *a)
{
	int r = store_check_agent(a);

	return r ? r : st->ops->agent_put(st, a);
}

int store_agent_list(struct store *st, store_agent_cb cb, void *arg)
{
	return st->ops->agent_list(st, cb, arg);
}

void store_agent_release(struct store_agent *a)
{
	if (!a)
		return;
	free(a->cert_subject);
	free(a->cert_sans);
	free(a->cert_serial);
	free(a->cert_fingerprint);
	free(a->description_json);
	free(a->health_json);
	free(a->last_error);
	memset(a, 0, sizeof(*a));
}

int store_policy_add(struct store *st, const struct store_policy *p)
{
	int r = store_check_policy(p);

	return r ? r : st->ops->policy_add(st, p);
}

int store_policy_get(struct store *st, int64_t serial, struct store_policy *ret)
{
	return st->ops->policy_get(st, serial, ret);
}

int store_policy_max_serial(struct store *st, int64_t *ret_serial)
{
	return st->ops->policy_max_serial(st, ret_serial);
}

int store_policy_list(struct store *st, store_policy_cb cb, void *arg)
{
	return st->ops->policy_list(st, cb, arg);
}

void store_policy_release(struct store_policy *p)
{
	if (!p)
		return;
	free(p->yaml);
	free(p->sig);
	free(p->signer);
	free(p->uploaded_by);
	memset(p, 0, sizeof(*p));
}

int store_assign(struct store *st, const char *selector, int64_t serial, const char *assigned_by,
		 int64_t at, int64_t *ret_id)
{
	if (!selector || !*selector || serial <= 0)
		return -EINVAL;
	if (store_check_text(selector) || store_check_text(assigned_by))
		return -E2BIG;
	return st->ops->assign(st, selector, serial, assigned_by, at, ret_id);
}

int store_assignment_list(struct store *st, store_assignment_cb cb, void *arg)
{
	return st->ops->assignment_list(st, cb, arg);
}

int store_generation(struct store *st, int64_t *ret_gen)
{
	return st->ops->generation(st, ret_gen);
}

bool store_agent_failed(const struct store_agent *a, int64_t serial)
{
	for (size_t i = 0; i < a->n_failed; i++)
		if (a->failed_serials[i] == serial)
			return true;
	return false;
}

void store_agent_add_failed(struct store_agent *a, int64_t serial)
{
	if (serial <= 0 || store_agent_failed(a, serial))
		return;
	if (a->n_failed == STORE_MAX_FAILED) {
		memmove(a->failed_serials, a->failed_serials + 1, (STORE_MAX_FAILED - 1) * sizeof(a->failed_serials[0]));
		a->n_failed--;
	}
	a->failed_serials[a->n_failed++] = serial;
}

void store_failed_format(const struct store_agent *a, char buf[STORE_FAILED_TEXT])
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < a->n_failed && i < STORE_MAX_FAILED; i++)
		off += (size_t)snprintf(buf + off, STORE_FAILED_TEXT - off, "%s%lld", i ? "," : "",
					(long long)a->failed_serials[i]);
}

void store_failed_parse(const char *text, struct store_agent *a)
{
	a->n_failed = 0;
	while (text && *text) {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(text, &end, 10);
		if (end == text || errno)
			break;
		if (v > 0)
			store_agent_add_failed(a, v);
		text = *end == ',' ? end + 1 : end;
		if (*end != ',')
			break;
	}
}

/* ---------------------------------------------------------------------------
 * The audit log. */

int store_audit_append(struct store *st, int64_t have, store_audit_cb seen, store_audit_build_fn build,
		       void *arg, int64_t *ret_idx)
{
	if (have < 0 || !seen || !build)
		return -EINVAL;
	return st->ops->audit_append(st, have, seen, build, arg, ret_idx);
}

int store_audit_list(struct store *st, int64_t since, int64_t limit, store_audit_cb cb, void *arg)
{
	if (since < 0 || limit < 1 || limit > STORE_MAX_AUDIT_LIST || !cb)
		return -EINVAL;
	return st->ops->audit_list(st, since, limit, cb, arg);
}

int store_audit_size(struct store *st, int64_t *ret_size)
{
	return st->ops->audit_size(st, ret_size);
}

/* ---------------------------------------------------------------------------
 * Staged rollouts. */

static const char *const store_rollout_states[] = {
	[STORE_ROLLOUT_RUNNING] = "running",
	[STORE_ROLLOUT_HALTED] = "halted",
	[STORE_ROLLOUT_ABORTED] = "aborted",
	[STORE_ROLLOUT_COMPLETED] = "completed",
};

const char *store_rollout_state_name(int state)
{
	if (state <= 0 || state >= (int)(sizeof(store_rollout_states) / sizeof(store_rollout_states[0])))
		return "unknown";
	return store_rollout_states[state];
}

int store_rollout_state_parse(const char *name)
{
	for (int i = 1; name && i < (int)(sizeof(store_rollout_states) / sizeof(store_rollout_states[0])); i++)
		if (!strcmp(name, store_rollout_states[i]))
			return i;
	return 0;
}

static int store_uid_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STORE_UID_LEN);
}

struct store_active_pair {
	uint8_t uid[STORE_UID_LEN];	/* first: store_uid_cmp compares it */
	int64_t id;
};

int store_rollout_overlap_check(const struct store_rollout_member *m, size_t n,
				const uint8_t (*active)[STORE_UID_LEN], const int64_t *active_id, size_t na,
				struct store_rollout_overlap *o)
{
	struct store_active_pair *pairs;

	memset(o, 0, sizeof(*o));
	if (na == 0 || n == 0)
		return 0;
	pairs = malloc(na * sizeof(*pairs));
	if (!pairs)
		return -ENOMEM;
	for (size_t i = 0; i < na; i++) {
		memcpy(pairs[i].uid, active[i], STORE_UID_LEN);
		pairs[i].id = active_id[i];
	}
	qsort(pairs, na, sizeof(*pairs), store_uid_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct store_active_pair *p = bsearch(m[i].uid, pairs, na, sizeof(*pairs), store_uid_cmp);

		if (!p)
			continue;
		if (o->n < STORE_ROLLOUT_OVERLAP_SHOWN) {
			memcpy(o->uid[o->n], p->uid, STORE_UID_LEN);
			o->rollout_id[o->n] = p->id;
		}
		o->n++;
	}
	free(pairs);
	return o->n ? -EBUSY : 0;
}

static int store_check_rollout(const struct store_rollout *r)
{
	if (!r->selector || !*r->selector || !r->stages || !*r->stages || r->serial <= 0 || r->bake_ms < 0 ||
	    r->max_failures < 0 || r->report_timeout_ms < 0)
		return -EINVAL;
	if (store_check_text(r->selector) || store_check_text(r->stages) || store_check_text(r->created_by) ||
	    store_check_text(r->reason))
		return -E2BIG;
	return 0;
}

int store_rollout_create(struct store *st, const struct store_rollout *r, struct store_rollout_member *m,
			 size_t n, store_rollout_rank_fn rank_fn, void *rank_arg, int64_t *ret_id,
			 struct store_rollout_overlap *ret_overlap)
{
	struct store_rollout_overlap dummy;
	int rr = store_check_rollout(r);

	if (rr)
		return rr;
	if (n == 0 || !rank_fn)
		return -EINVAL;
	return st->ops->rollout_create(st, r, m, n, rank_fn, rank_arg, ret_id, ret_overlap ? ret_overlap : &dummy);
}

int store_rollout_get(struct store *st, int64_t id, struct store_rollout *ret)
{
	return st->ops->rollout_get(st, id, ret);
}

int store_rollout_list(struct store *st, int state, store_rollout_cb cb, void *arg)
{
	return st->ops->rollout_list(st, state, cb, arg);
}

int store_rollout_members(struct store *st, int64_t id, store_rollout_member_cb cb, void *arg)
{
	return st->ops->rollout_members(st, id, cb, arg);
}

void store_rollout_release(struct store_rollout *r)
{
	if (!r)
		return;
	free(r->selector);
	free(r->stages);
	free(r->created_by);
	free(r->reason);
	memset(r, 0, sizeof(*r));
}

void store_rollout_member_release(struct store_rollout_member *m)
{
	if (!m)
		return;
	free(m->reason);
	memset(m, 0, sizeof(*m));
}

int store_rollout_update(struct store *st, int64_t id, bool nowait, bool with_members,
			 store_rollout_update_fn fn, void *arg)
{
	return st->ops->rollout_update(st, id, nowait, with_members, fn, arg);
}

int store_rollout_mark(struct store *st, const uint8_t uid[STORE_UID_LEN], int kind, int64_t serial,
		       int64_t at, const char *reason)
{
	if (kind < STORE_MARK_APPLIED || kind > STORE_MARK_TENANT || (kind != STORE_MARK_APPLIED && !reason))
		return -EINVAL;
	if (store_check_text(reason))
		return -E2BIG;
	return st->ops->rollout_mark(st, uid, kind, serial, at, reason);
}

int store_rollout_sent(struct store *st, int64_t id, const uint8_t uid[STORE_UID_LEN], int64_t at)
{
	return st->ops->rollout_sent(st, id, uid, at);
}

int store_rollout_offers(struct store *st, store_offer_cb cb, void *arg)
{
	return st->ops->rollout_offers(st, cb, arg);
}

int store_member_push(const struct store_rollout_member *m, void *arg)
{
	struct store_member_vec *vec = arg;

	if (vec->n == vec->cap) {
		size_t ncap = vec->cap ? vec->cap * 2 : 64;
		void *nv = realloc(vec->v, ncap * sizeof(*vec->v));

		if (!nv)
			return -ENOMEM;
		vec->v = nv;
		vec->cap = ncap;
	}
	vec->v[vec->n] = *m;
	vec->v[vec->n].reason = NULL;
	if (m->reason && !(vec->v[vec->n].reason = strdup(m->reason)))
		return -ENOMEM;
	vec->n++;
	return 0;
}

void store_member_vec_release(struct store_member_vec *vec)
{
	for (size_t i = 0; i < vec->n; i++)
		store_rollout_member_release(&vec->v[i]);
	free(vec->v);
}
