/*
 * api.c - vigil-cp's admin API (api.h): one HTTP request in, one JSON reply
 * out, the store read or changed in between.  Runs in vigil-cp's event loop
 * (unprivileged, single-threaded); httpd.c has already checked the client
 * certificate and the body size, and this file checks both again.
 *
 * The upload path is the one that matters for trust: the signature is
 * verified over the exact bytes that are stored and later sent to agents,
 * the YAML is validated as an agent would (with a generous hz ceiling: the
 * server does not know each host's perf_event_max_sample_rate, and agents
 * validate again), and the serial must move forward.  The server never
 * signs anything; it refuses what an administrator did not sign.
 *
 * Library-like: never logs.  What deserves a log line (each change, each
 * refusal) comes back in api_reply.log.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "api.h"
#include "b64.h"
#include "assignset.h"
#include "hexdigit.h"
#include "policy.h"
#include "rollout.h"
#include "rollplan.h"
#include "selector.h"

struct api {
	struct store *st;
	const struct signing_trust *trust;
	api_change_fn on_change;
	void *on_change_arg;
	api_action_fn on_action;	/* the audit log's hooks (api.h) */
	void *on_action_arg;
	api_audit_fn audit;
	void *audit_arg;
	struct rollout *rollouts;	/* borrowed; NULL: the rollout routes answer 503 */
};

int api_new(struct store *st, const struct signing_trust *policy_trust, struct api **ret)
{
	struct api *a;

	if (!st || !ret)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->st = st;
	a->trust = policy_trust;
	*ret = a;
	return 0;
}

void api_set_trust(struct api *a, const struct signing_trust *policy_trust)
{
	a->trust = policy_trust;
}

void api_set_on_change(struct api *a, api_change_fn fn, void *arg)
{
	a->on_change = fn;
	a->on_change_arg = arg;
}

void api_free(struct api *a)
{
	free(a);
}

/* ------------------------------------------------------------------------
 * Replies. */

int api_reply_json(struct api_reply *ret, int status, json_t *obj)
{
	char *s;

	if (!obj)
		return -ENOMEM;
	s = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(obj);
	if (!s)
		return -ENOMEM;
	ret->http_status = status;
	ret->body = s;
	ret->len = strlen(s);
	return 0;
}

static void set_log(struct api_reply *ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_log(struct api_reply *ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ret->log, sizeof(ret->log), fmt, ap);
	va_end(ap);
}

int api_reply_error(struct api_reply *ret, const struct cp_identity *id, int status, json_t *extra,
		    const char *fmt, ...)
{
	char text[1024];
	json_t *obj;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	set_log(ret, "admin API: %d for %s: %s", status, id && id->subject[0] ? id->subject : "(none)",
		text);
	obj = extra ? extra : json_object();
	if (!obj || json_object_set_new(obj, "error", json_string(text))) {
		json_decref(obj);
		return -ENOMEM;
	}
	return api_reply_json(ret, status, obj);
}

/* ------------------------------------------------------------------------
 * Encodings. */


/* 32 hex digits, or the UUID form 8-4-4-4-12; either case. */
static int parse_uid(const char *s, uint8_t uid[STORE_UID_LEN])
{
	size_t len = strlen(s), n = 0;

	if (len != 32 && len != 36)
		return -EINVAL;
	for (size_t i = 0; i < len;) {
		int hi, lo;

		if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
			if (s[i++] != '-')
				return -EINVAL;
			continue;
		}
		hi = hexdigit_value(s[i]);
		lo = i + 1 < len ? hexdigit_value(s[i + 1]) : -1;
		if (hi < 0 || lo < 0 || n >= STORE_UID_LEN)
			return -EINVAL;
		uid[n++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return n == STORE_UID_LEN ? 0 : -EINVAL;
}

static void uuid_form(const uint8_t uid[STORE_UID_LEN], char out[37])
{
	char h[33];

	hexdigit_encode(uid, STORE_UID_LEN, h);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

static void sha256_hex(const void *buf, size_t len, char out[65])
{
	uint8_t md[32];
	unsigned mdlen = 0;

	if (!EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
		out[0] = '\0';
		return;
	}
	hexdigit_encode(md, 32, out);
}

/* Percent-decoding of a query value (RFC 3986; '+' is a plus sign).  -EINVAL on a bad escape. */
static int pct_decode(const char *s, size_t len, char *out, size_t outlen)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			int hi = i + 1 < len ? hexdigit_value(s[i + 1]) : -1;
			int lo = i + 2 < len ? hexdigit_value(s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EINVAL;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (n + 1 >= outlen)
			return -E2BIG;
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

/* ------------------------------------------------------------------------
 * Agents. */

static const char *config_status_name(int s)
{
	switch (s) {
	case 0:
		return "UNSET";
	case 1:
		return "APPLIED";
	case 2:
		return "APPLYING";
	case 3:
		return "FAILED";
	default:
		return "UNKNOWN";
	}
}

/* A JSON text from the store as a value (a string if it does not parse), or null. */
static json_t *embedded_json(const char *text)
{
	json_t *v;

	if (!text)
		return json_null();
	v = json_loads(text, JSON_DECODE_ANY, NULL);
	return v ? v : json_string(text);
}

static json_t *hash_or_null(bool has, const uint8_t h[32])
{
	char s[65];

	if (!has)
		return json_null();
	hexdigit_encode(h, 32, s);
	return json_string(s);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *agent_json(const struct store_agent *ag, int64_t assigned)
{
	char uid[33], uuid[37];

	hexdigit_encode(ag->uid, STORE_UID_LEN, uid);
	uuid_form(ag->uid, uuid);
	return json_pack("{s:s, s:s, s:{s:o, s:o, s:o, s:o}, s:o, s:I, s:I, s:I, s:I, s:o, s:o,"
			 " s:o, s:I, s:I, s:s, s:o, s:o, s:b}",
			 "uid", uid, "uuid", uuid,
			 "certificate",
			 "subject", str_or_null(ag->cert_subject), "sans", str_or_null(ag->cert_sans),
			 "serial", str_or_null(ag->cert_serial),
			 "fingerprint", str_or_null(ag->cert_fingerprint),
			 "description", embedded_json(ag->description_json),
			 "first_seen", (json_int_t)ag->first_seen,
			 "last_seen", (json_int_t)ag->last_seen,
			 "capabilities", (json_int_t)ag->capabilities,
			 "sequence_num", (json_int_t)ag->last_sequence_num,
			 "healthy", ag->healthy < 0 ? json_null() : json_boolean(ag->healthy),
			 "health", embedded_json(ag->health_json),
			 "effective_config_hash", hash_or_null(ag->has_effective_hash, ag->effective_hash),
			 "applied_serial", (json_int_t)ag->applied_serial,
			 "assigned_serial", (json_int_t)assigned,
			 "remote_config_status", config_status_name(ag->remote_config_status),
			 "remote_config_hash",
			 hash_or_null(ag->has_remote_config_hash, ag->remote_config_hash),
			 "last_error", str_or_null(ag->last_error),
			 "disconnected", (int)ag->disconnected);
}

struct agent_list {
	json_t *arr;
	const struct selector *filter;	/* NULL: every agent */
	const struct assignset *assigned;
};

static int list_agent(const struct store_agent *ag, void *arg)
{
	struct agent_list *l = arg;
	json_t *d = selector_description(ag->description_json), *o;
	int r = 0;

	/* The description is parsed once for the filter and every assignment. */
	if (!l->filter || selector_match_json(l->filter, d)) {
		o = agent_json(ag, assignset_resolve(l->assigned, d));
		if (!o || json_array_append_new(l->arr, o))
			r = -ENOMEM;
	}
	json_decref(d);
	return r;
}

/* The selector of "?selector=...", NULL when the query has none, or an error reply. */
static int query_selector(const char *query, struct selector *sel, bool *have, char *err,
			  size_t errlen)
{
	*have = false;
	if (!query || !*query)
		return 0;
	for (const char *p = query; *p;) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		char text[SELECTOR_MAX_TERMS * (2 * SELECTOR_MAX_TEXT + 2) + 1];
		int r;

		if (!eq || (size_t)(eq - p) != strlen("selector") || memcmp(p, "selector", 8)) {
			snprintf(err, errlen, "unknown query parameter %.*s (expected selector=k=v,...)",
				 (int)((eq ? eq : end) - p > 64 ? 64 : (eq ? eq : end) - p), p);
			return -EINVAL;
		}
		if (*have) {
			snprintf(err, errlen, "selector given twice");
			return -EINVAL;
		}
		r = pct_decode(eq + 1, (size_t)(end - eq - 1), text, sizeof(text));
		if (r) {
			snprintf(err, errlen, "selector: %s", r == -E2BIG ? "too long" : "bad %-escape");
			return -EINVAL;
		}
		if (selector_parse(text, sel, err, errlen))
			return -EINVAL;
		*have = true;
		p = amp ? amp + 1 : end;
	}
	return 0;
}

static int agents_list(struct api *a, const struct cp_identity *id, const char *query,
		       struct api_reply *ret)
{
	struct selector sel;
	struct assignset as = { 0 };
	struct agent_list l = { 0 };
	char err[256] = "";
	bool have;
	int r;

	if (query_selector(query, &sel, &have, err, sizeof(err)))
		return api_reply_error(ret, id, 400, NULL, "%s", err);
	r = assignset_load(a->st, &as);
	l.arr = json_array();
	l.filter = have ? &sel : NULL;
	l.assigned = &as;
	if (!r && !l.arr)
		r = -ENOMEM;
	if (!r)
		r = store_agent_list(a->st, list_agent, &l);
	assignset_release(&as);
	if (r == -ENOMEM) {
		json_decref(l.arr);
		return -ENOMEM;
	}
	if (r) {
		json_decref(l.arr);
		return api_reply_error(ret, id, 500, NULL, "store: listing agents failed: %s", strerror(-r));
	}
	return api_reply_json(ret, 200, json_pack("{s:o}", "agents", l.arr));
}

static int agent_show(struct api *a, const struct cp_identity *id, const char *uidtext,
		      struct api_reply *ret)
{
	uint8_t uid[STORE_UID_LEN];
	struct store_agent ag;
	struct assignset as;
	json_t *d, *o;
	int r;

	if (parse_uid(uidtext, uid))
		return api_reply_error(ret, id, 400, NULL,
				   "agent id must be 32 hex digits or a UUID (8-4-4-4-12)");
	r = store_agent_get(a->st, uid, &ag);
	if (r == -ENOENT)
		return api_reply_error(ret, id, 404, NULL, "no agent %s", uidtext);
	if (r)
		return api_reply_error(ret, id, 500, NULL, "store: reading agent failed: %s", strerror(-r));
	r = assignset_load(a->st, &as);
	if (r) {
		store_agent_release(&ag);
		return r == -ENOMEM ? -ENOMEM
				    : api_reply_error(ret, id, 500, NULL, "store: listing assignments failed: %s",
						  strerror(-r));
	}
	d = selector_description(ag.description_json);
	o = agent_json(&ag, assignset_resolve(&as, d));
	json_decref(d);
	assignset_release(&as);
	store_agent_release(&ag);
	return api_reply_json(ret, 200, o);
}

/* ------------------------------------------------------------------------
 * Policies. */

/* The request body as a JSON object whose keys are all in allowed, or an error reply. */
static json_t *parse_body(const uint8_t *body, size_t len, const char *const *allowed, char *err,
			  size_t errlen)
{
	json_error_t je;
	const char *key;
	json_t *obj, *v;

	if (!body || len == 0) {
		snprintf(err, errlen, "empty body: a JSON object is required");
		return NULL;
	}
	obj = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
	if (!obj) {
		snprintf(err, errlen, "body is not JSON: line %d column %d: %s", je.line, je.column,
			 je.text);
		return NULL;
	}
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "body must be a JSON object");
		json_decref(obj);
		return NULL;
	}
	json_object_foreach(obj, key, v) {
		size_t i;

		for (i = 0; allowed[i] && strcmp(allowed[i], key); i++)
			;
		if (!allowed[i]) {
			snprintf(err, errlen, "unknown field \"%.64s\"", key);
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

/* A base64 string field, decoded: 0, or an HTTP status (400, 413) with err. */
static int b64_field(json_t *obj, const char *name, size_t max, uint8_t **ret, size_t *ret_len,
		     char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, name);
	int r;

	if (!v || !json_is_string(v)) {
		snprintf(err, errlen, "field \"%s\" (a base64 string) is required", name);
		return 400;
	}
	if (json_string_length(v) == 0) {
		snprintf(err, errlen, "field \"%s\" is empty", name);
		return 400;
	}
	r = b64_decode(json_string_value(v), json_string_length(v), max, ret, ret_len);
	if (r == -EFBIG) {
		snprintf(err, errlen, "%s is larger than %zu bytes", name, max);
		return 413;
	}
	if (r == -ENOMEM)
		return -ENOMEM;
	if (r) {
		snprintf(err, errlen, "field \"%s\" is not base64", name);
		return 400;
	}
	return 0;
}

/* {"errors":[...]} for a policy that does not validate. */
static json_t *policy_errors_json(const struct policy_errors *e)
{
	json_t *arr = json_array();

	if (!arr)
		return NULL;
	for (size_t i = 0; i < e->n; i++)
		json_array_append_new(arr, json_string(e->e[i].text));
	if (e->n_dropped) {
		char more[64];

		snprintf(more, sizeof(more), "and %zu more", e->n_dropped);
		json_array_append_new(arr, json_string(more));
	}
	return json_pack("{s:o}", "errors", arr);
}

static int policy_upload(struct api *a, const struct cp_identity *id, const uint8_t *body,
			 size_t len, int64_t now, struct api_reply *ret)
{
	static const char *const fields[] = { "yaml", "signature", NULL };
	struct store_policy sp = { 0 };
	struct policy_errors errs;
	struct policy *p = NULL;
	enum signing_status vs;
	uint8_t *yaml = NULL, *sig = NULL;
	size_t yaml_len = 0, sig_len = 0;
	char err[512], signer[512], sum[65], by[sizeof(id->subject)];
	int64_t max_serial = 0;
	json_t *obj;
	int r;

	obj = parse_body(body, len, fields, err, sizeof(err));
	if (!obj)
		return api_reply_error(ret, id, 400, NULL, "%s", err);
	r = b64_field(obj, "yaml", POLICY_MAX_SIZE, &yaml, &yaml_len, err, sizeof(err));
	if (!r)
		r = b64_field(obj, "signature", SIGNING_MAX_SIG_BYTES, &sig, &sig_len, err,
			      sizeof(err));
	json_decref(obj);
	if (r) {
		if (r > 0)
			r = api_reply_error(ret, id, r, NULL, "%s", err);
		goto out;
	}
	if (!a->trust) {
		r = api_reply_error(ret, id, 500, NULL, "no policy trust store is loaded");
		goto out;
	}

	/* The signature first: nothing an administrator did not sign goes further. */
	vs = signing_verify_policy(a->trust, yaml, yaml_len, sig, sig_len, signer, sizeof(signer));
	if (vs != SIGNING_OK) {
		if (vs == SIGNING_ERR_INTERNAL) {
			r = api_reply_error(ret, id, 500, NULL, "policy signature: %s", signer);
			goto out;
		}
		r = api_reply_error(ret, id, 422, json_pack("{s:s}", "reason", signing_status_name(vs)),
				"policy signature: %s: %s", signing_status_name(vs), signer);
		goto out;
	}

	r = policy_parse((const char *)yaml, yaml_len, "policy.yaml", API_POLICY_MAX_HZ, &p, &errs);
	if (r == -EBADMSG) {
		char all[1024] = "";
		size_t o = 0;

		/* One line with every problem (cut if long); the list has them all. */
		for (size_t i = 0; i < errs.n && o < sizeof(all); i++)
			o += (size_t)snprintf(all + o, sizeof(all) - o, "%s%s", i ? "; " : "",
					      errs.e[i].text);
		r = api_reply_error(ret, id, 422, policy_errors_json(&errs),
				"policy.yaml is not a valid policy: %s%s", errs.n ? all : "(no detail)",
				errs.n_dropped ? "; and more" : "");
		goto out;
	}
	if (r) {
		r = r == -ENOMEM ? -ENOMEM : api_reply_error(ret, id, 500, NULL, "policy_parse: %s", strerror(-r));
		goto out;
	}
	if (p->serial == 0) {
		r = api_reply_error(ret, id, 422, NULL,
				"policy.yaml has no serial: a signed policy needs a top-level "
				"\"serial: N\" greater than every uploaded one");
		goto out;
	}
	r = store_policy_max_serial(a->st, &max_serial);
	if (r) {
		r = api_reply_error(ret, id, 500, NULL, "store: %s", strerror(-r));
		goto out;
	}
	if ((int64_t)p->serial <= max_serial) {
		r = api_reply_error(ret, id, 409, json_pack("{s:I}", "max_serial", (json_int_t)max_serial),
				"policy serial %" PRIu64 " is not new: serials only move forward "
				"(the highest uploaded is %" PRId64 ")", p->serial, max_serial);
		goto out;
	}

	sp.serial = (int64_t)p->serial;
	sp.yaml = yaml;
	sp.yaml_len = yaml_len;
	sp.sig = sig;
	sp.sig_len = sig_len;
	sp.signer = signer;
	snprintf(by, sizeof(by), "%s", id->subject);
	sp.uploaded_by = by;
	sp.uploaded_at = now;
	r = store_policy_add(a->st, &sp);
	if (r == -EEXIST) {
		/* Another server of the same store got there first. */
		r = api_reply_error(ret, id, 409, NULL, "policy serial %" PRIu64 " is not new: serials only "
				"move forward", p->serial);
		goto out;
	}
	if (r) {
		r = api_reply_error(ret, id, 500, NULL, "store: adding policy failed: %s", strerror(-r));
		goto out;
	}
	if (a->on_change)
		a->on_change(a->on_change_arg);
	sha256_hex(yaml, yaml_len, sum);
	r = api_reply_json(ret, 201, json_pack("{s:I, s:s, s:s}", "serial", (json_int_t)p->serial,
					   "signer", signer, "sha256", sum));
	set_log(ret, "admin API: %s uploaded policy serial %" PRIu64 " (sha256 %.16s, %s)",
		id->subject, p->serial, sum, signer);
out:
	policy_free(p);
	free(yaml);
	free(sig);
	return r;
}

/* What a listing shows of a policy; with content, its YAML and signature too. */
static json_t *policy_json(const struct store_policy *p, bool content)
{
	char sum[65];
	json_t *o;

	sha256_hex(p->yaml, p->yaml_len, sum);
	o = json_pack("{s:I, s:s, s:I, s:o, s:o, s:I}", "serial", (json_int_t)p->serial, "sha256", sum,
		      "size", (json_int_t)p->yaml_len, "signer", str_or_null(p->signer),
		      "uploaded_by", str_or_null(p->uploaded_by), "uploaded_at",
		      (json_int_t)p->uploaded_at);
	if (o && content &&
	    (json_object_set_new(o, "yaml", b64_json(p->yaml, p->yaml_len)) ||
	     json_object_set_new(o, "signature", b64_json(p->sig, p->sig_len)))) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static int list_policy(const struct store_policy *p, void *arg)
{
	json_t *o = policy_json(p, false);

	if (!o || json_array_append_new(arg, o))
		return -ENOMEM;
	return 0;
}

static int policies_list(struct api *a, const struct cp_identity *id, struct api_reply *ret)
{
	json_t *arr = json_array();
	int r;

	if (!arr)
		return -ENOMEM;
	r = store_policy_list(a->st, list_policy, arr);
	if (r) {
		json_decref(arr);
		return r == -ENOMEM ? -ENOMEM
				    : api_reply_error(ret, id, 500, NULL, "store: listing policies failed: %s",
						  strerror(-r));
	}
	return api_reply_json(ret, 200, json_pack("{s:o}", "policies", arr));
}

/* A decimal serial from a path: 1..2^63-1, or 0. */
static int64_t parse_serial_text(const char *s)
{
	int64_t v = 0;

	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_MAX - (*s - '0')) / 10)
			return 0;
		v = v * 10 + (*s - '0');
	}
	return v;
}

static int policy_show(struct api *a, const struct cp_identity *id, const char *text,
		       struct api_reply *ret)
{
	int64_t serial = parse_serial_text(text);
	struct store_policy p;
	json_t *o;
	int r;

	if (serial <= 0)
		return api_reply_error(ret, id, 400, NULL, "a policy serial is a positive decimal integer");
	r = store_policy_get(a->st, serial, &p);
	if (r == -ENOENT)
		return api_reply_error(ret, id, 404, NULL, "no policy with serial %" PRId64, serial);
	if (r)
		return api_reply_error(ret, id, 500, NULL, "store: reading policy failed: %s", strerror(-r));
	o = policy_json(&p, true);
	store_policy_release(&p);
	return api_reply_json(ret, 200, o);
}

/* ------------------------------------------------------------------------
 * Assignments. */

static int assign(struct api *a, const struct cp_identity *id, const uint8_t *body, size_t len,
		  int64_t now, struct api_reply *ret)
{
	static const char *const fields[] = { "serial", "selector", NULL };
	struct selector sel;
	json_t *obj, *vs, *vsel;
	char err[512], text[SELECTOR_MAX_TERMS * (2 * SELECTOR_MAX_TEXT + 2) + 1];
	int64_t serial, aid = 0;
	int r;

	obj = parse_body(body, len, fields, err, sizeof(err));
	if (!obj)
		return api_reply_error(ret, id, 400, NULL, "%s", err);
	vs = json_object_get(obj, "serial");
	vsel = json_object_get(obj, "selector");
	if (!vs || !json_is_integer(vs) || json_integer_value(vs) <= 0) {
		json_decref(obj);
		return api_reply_error(ret, id, 400, NULL, "field \"serial\" (a positive integer) is required");
	}
	if (!vsel || !json_is_string(vsel)) {
		json_decref(obj);
		return api_reply_error(ret, id, 400, NULL, "field \"selector\" (\"k=v,...\") is required");
	}
	serial = json_integer_value(vs);
	if (json_string_length(vsel) >= sizeof(text) || strlen(json_string_value(vsel)) !=
							  json_string_length(vsel)) {
		json_decref(obj);
		return api_reply_error(ret, id, 400, NULL, "selector: too long or not text");
	}
	memcpy(text, json_string_value(vsel), json_string_length(vsel) + 1);
	json_decref(obj);
	if (selector_parse(text, &sel, err, sizeof(err)))
		return api_reply_error(ret, id, 400, NULL, "selector: %s", err);

	r = store_assign(a->st, text, serial, id->subject, now, &aid);
	if (r == -ENOENT)
		return api_reply_error(ret, id, 404, NULL,
				   "no policy with serial %" PRId64 ": upload it first", serial);
	if (r)
		return api_reply_error(ret, id, 500, NULL, "store: assigning failed: %s", strerror(-r));
	if (a->on_change)
		a->on_change(a->on_change_arg);
	r = api_reply_json(ret, 201, json_pack("{s:I, s:I, s:s}", "id", (json_int_t)aid, "serial",
					   (json_int_t)serial, "selector", text));
	set_log(ret, "admin API: %s assigned policy serial %" PRId64 " to %s (assignment %" PRId64 ")",
		id->subject, serial, text, aid);
	return r;
}

static int list_assignment(const struct store_assignment *as, void *arg)
{
	json_t *o = json_pack("{s:I, s:s, s:I, s:o, s:I}", "id", (json_int_t)as->id, "selector",
			      as->selector ? as->selector : "", "serial", (json_int_t)as->serial,
			      "assigned_by", str_or_null(as->assigned_by), "assigned_at",
			      (json_int_t)as->assigned_at);

	if (!o || json_array_append_new(arg, o))
		return -ENOMEM;
	return 0;
}

static int assignments_list(struct api *a, const struct cp_identity *id, struct api_reply *ret)
{
	json_t *arr = json_array();
	int r;

	if (!arr)
		return -ENOMEM;
	r = store_assignment_list(a->st, list_assignment, arr);
	if (r) {
		json_decref(arr);
		return r == -ENOMEM ? -ENOMEM
				    : api_reply_error(ret, id, 500, NULL, "store: listing assignments failed: %s",
						  strerror(-r));
	}
	return api_reply_json(ret, 200, json_pack("{s:o}", "assignments", arr));
}

/* ------------------------------------------------------------------------
 * Routing. */

#define PREFIX "/api/v1/"

static bool is(const char *m, const char *want)
{
	return strcmp(m, want) == 0;
}

static int wrong_method(struct api_reply *ret, const struct cp_identity *id, const char *method,
			const char *path, const char *allowed)
{
	return api_reply_error(ret, id, 405, json_pack("{s:s}", "allow", allowed),
			   "%.16s is not allowed on %.128s (allowed: %s)", method, path, allowed);
}

/* ------------------------------------------------------------------------
 * Staged rollouts (rollout.h does the deciding; this is its admin face). */

void api_set_rollouts(struct api *a, struct rollout *ro)
{
	a->rollouts = ro;
}

static json_t *time_or_null(int64_t t)
{
	return t ? json_integer((json_int_t)t) : json_null();
}

static json_t *rollout_json(const struct store_rollout *r)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:s, s:i, s:I, s:I, s:o, s:I, s:I, s:o, s:o}", "id",
			 (json_int_t)r->id, "serial", (json_int_t)r->serial, "selector", r->selector, "stages",
			 r->stages, "bake_ms", (json_int_t)r->bake_ms, "max_failures", (json_int_t)r->max_failures,
			 "report_timeout_ms", (json_int_t)r->report_timeout_ms, "state",
			 store_rollout_state_name(r->state), "stage", r->stage, "stage_started_at",
			 (json_int_t)r->stage_started_at, "failures_base", (json_int_t)r->failures_base,
			 "created_by", str_or_null(r->created_by), "created_at", (json_int_t)r->created_at,
			 "updated_at", (json_int_t)r->updated_at, "reason", str_or_null(r->reason),
			 "assignment_id", time_or_null(r->assignment_id));
}

/* A rollout id from a path: 1..2^63-1, or 0. */
static int64_t parse_rollout_id(const char *s, size_t n)
{
	char buf[24];

	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return parse_serial_text(buf);
}

/* An optional non-negative integer field; -EINVAL when present and not one. */
static int opt_int(json_t *obj, const char *name, int64_t def, int64_t *ret)
{
	json_t *v = json_object_get(obj, name);

	if (!v) {
		*ret = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EINVAL;
	*ret = json_integer_value(v);
	return 0;
}

static int rollout_reply(struct api *a, const struct cp_identity *id, int status, int64_t rid,
			 struct api_reply *ret)
{
	struct store_rollout r;
	json_t *o;
	int e = store_rollout_get(a->st, rid, &r);

	if (e)
		return api_reply_error(ret, id, 500, NULL, "store: reading rollout %" PRId64 " failed: %s", rid,
				   strerror(-e));
	o = rollout_json(&r);
	store_rollout_release(&r);
	return api_reply_json(ret, status, o);
}

static int rollout_create_req(struct api *a, const struct cp_identity *id, const uint8_t *body, size_t len,
			      int64_t now, struct api_reply *ret)
{
	static const char *const fields[] = { "serial",	      "selector",	  "stages", "bake_ms",
					      "max_failures", "report_timeout_ms", NULL };
	struct rollout_spec spec = { 0 };
	json_t *obj, *vs, *vsel, *vst;
	char err[1024], *sel = NULL, *stages = NULL;
	int64_t rid = 0;
	int r, status;

	obj = parse_body(body, len, fields, err, sizeof(err));
	if (!obj)
		return api_reply_error(ret, id, 400, NULL, "%s", err);
	vs = json_object_get(obj, "serial");
	vsel = json_object_get(obj, "selector");
	vst = json_object_get(obj, "stages");
	if (!vs || !json_is_integer(vs) || json_integer_value(vs) <= 0) {
		json_decref(obj);
		return api_reply_error(ret, id, 400, NULL, "field \"serial\" (a positive integer) is required");
	}
	if (!vsel || !json_is_string(vsel) || !vst || !json_is_string(vst)) {
		json_decref(obj);
		return api_reply_error(ret, id, 400, NULL,
				   "fields \"selector\" (\"k=v,...\") and \"stages\" (\"1,10%%,...\") are required");
	}
	if (opt_int(obj, "bake_ms", ROLLOUT_DEFAULT_BAKE_MS, &spec.bake_ms) ||
	    opt_int(obj, "max_failures", 0, &spec.max_failures) ||
	    opt_int(obj, "report_timeout_ms", ROLLOUT_DEFAULT_REPORT_TIMEOUT_MS, &spec.report_timeout_ms)) {
		json_decref(obj);
		return api_reply_error(ret, id, 400, NULL,
				   "bake_ms, max_failures and report_timeout_ms are non-negative integers");
	}
	spec.serial = json_integer_value(vs);
	/* Text with a NUL inside would be cut short: refuse it rather than store another selector. */
	if (strlen(json_string_value(vsel)) != json_string_length(vsel) ||
	    strlen(json_string_value(vst)) != json_string_length(vst)) {
		json_decref(obj);
		return api_reply_error(ret, id, 400, NULL, "selector and stages must be text without NUL");
	}
	sel = strdup(json_string_value(vsel));
	stages = strdup(json_string_value(vst));
	json_decref(obj);
	if (!sel || !stages) {
		free(sel);
		free(stages);
		return -ENOMEM;
	}
	spec.selector = sel;
	spec.stages = stages;
	r = rollout_start(a->rollouts, &spec, id->subject, now, &rid, err, sizeof(err));
	free(sel);
	free(stages);
	switch (r) {
	case 0:
		break;
	case -ENOMEM:
		return -ENOMEM;
	case -EINVAL:
		return api_reply_error(ret, id, 400, NULL, "%s", err);
	case -ENOENT:
		return api_reply_error(ret, id, 404, NULL, "%s", err);
	case -ENODATA:
	case -EBUSY:
	case -E2BIG:
		return api_reply_error(ret, id, 409, NULL, "%s", err);
	default:
		return api_reply_error(ret, id, 500, NULL, "store: starting the rollout failed: %s", strerror(-r));
	}
	if (a->on_change)
		a->on_change(a->on_change_arg);
	status = rollout_reply(a, id, 201, rid, ret);
	set_log(ret, "admin API: %s started rollout %" PRId64 " of policy serial %" PRId64, id->subject, rid,
		spec.serial);
	return status;
}

static int list_rollout(const struct store_rollout *r, void *arg)
{
	json_t *o = rollout_json(r);

	if (!o || json_array_append_new(arg, o))
		return -ENOMEM;
	return 0;
}

static int rollouts_list(struct api *a, const struct cp_identity *id, struct api_reply *ret)
{
	json_t *arr = json_array();
	int r;

	if (!arr)
		return -ENOMEM;
	r = store_rollout_list(a->st, 0, list_rollout, arr);
	if (r) {
		json_decref(arr);
		return r == -ENOMEM ? -ENOMEM
				    : api_reply_error(ret, id, 500, NULL, "store: listing rollouts failed: %s",
						  strerror(-r));
	}
	return api_reply_json(ret, 200, json_pack("{s:o}", "rollouts", arr));
}

/* What a rollout's status shows: each member, the failures, and counts per stage. */
struct rollout_status {
	json_t *members, *failures;
	struct {
		json_int_t members, sent, applied, succeeded, failed;
	} per[ROLLPLAN_MAX_STAGES + 1];
	size_t n_stages;
	int64_t n, n_failed;
};

static int status_member(const struct store_rollout_member *m, void *arg)
{
	struct rollout_status *s = arg;
	size_t k = m->stage < 0 ? 0 : (size_t)m->stage > s->n_stages ? s->n_stages : (size_t)m->stage;
	char uid[33];
	json_t *o;

	hexdigit_encode(m->uid, STORE_UID_LEN, uid);
	s->per[k].members++;
	s->per[k].sent += m->sent_at != 0;
	s->per[k].applied += m->applied_at != 0;
	s->per[k].succeeded += m->succeeded_at != 0;
	s->per[k].failed += m->failed_at != 0;
	s->n++;
	if (m->failed_at)
		s->n_failed++;
	/* Counts cover everyone; the lists stop at a size a client can take. */
	if (s->n <= API_ROLLOUT_MAX_LISTED) {
		o = json_pack("{s:s, s:I, s:i, s:o, s:o, s:o, s:o, s:o}", "uid", uid, "rank", (json_int_t)m->rank,
			      "stage", m->stage, "sent_at", time_or_null(m->sent_at), "applied_at",
			      time_or_null(m->applied_at), "failed_at", time_or_null(m->failed_at), "succeeded_at",
			      time_or_null(m->succeeded_at), "reason", str_or_null(m->reason));
		if (!o || json_array_append_new(s->members, o))
			return -ENOMEM;
	}
	if (m->failed_at && s->n_failed <= API_ROLLOUT_MAX_LISTED) {
		o = json_pack("{s:s, s:i, s:I, s:o}", "uid", uid, "stage", m->stage, "at", (json_int_t)m->failed_at,
			      "reason", str_or_null(m->reason));
		if (!o || json_array_append_new(s->failures, o))
			return -ENOMEM;
	}
	return 0;
}

static int rollout_show(struct api *a, const struct cp_identity *id, int64_t rid, struct api_reply *ret)
{
	struct rollout_status *s = calloc(1, sizeof(*s));
	size_t sizes[ROLLPLAN_MAX_STAGES];
	struct store_rollout r;
	struct rollplan plan;
	json_t *o = NULL, *stages = NULL;
	char why[200];
	int e;

	if (!s)
		return -ENOMEM;
	e = store_rollout_get(a->st, rid, &r);
	if (e) {
		free(s);
		if (e == -ENOENT)
			return api_reply_error(ret, id, 404, NULL, "no rollout %" PRId64, rid);
		return api_reply_error(ret, id, 500, NULL, "store: reading rollout failed: %s", strerror(-e));
	}
	if (rollplan_parse(r.stages, &plan, why, sizeof(why)))
		plan.n = 0;
	s->n_stages = plan.n;
	s->members = json_array();
	s->failures = json_array();
	stages = json_array();
	if (!s->members || !s->failures || !stages) {
		e = -ENOMEM;
		goto out;
	}
	e = store_rollout_members(a->st, rid, status_member, s);
	if (e)
		goto out;
	if (plan.n && rollplan_sizes(&plan, (size_t)s->n, sizes, why, sizeof(why)))
		plan.n = 0;
	for (size_t k = 0; k < plan.n; k++) {
		char spec[16];
		json_t *st;

		snprintf(spec, sizeof(spec), "%u%s", plan.s[k].value, plan.s[k].percent ? "%" : "");
		/* Members are counted by the stage that first covers them; a stage covers all before it. */
		st = json_pack("{s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "stage", (int)k, "spec", spec, "size",
			       (json_int_t)sizes[k], "new_members", s->per[k].members, "sent", s->per[k].sent,
			       "succeeded", s->per[k].succeeded, "failed", s->per[k].failed, "status",
			       (int)k < r.stage	    ? "completed"
			       : (int)k > r.stage   ? (r.state == STORE_ROLLOUT_COMPLETED ? "completed" : "waiting")
			       : r.state == STORE_ROLLOUT_COMPLETED ? "completed"
			       : r.state == STORE_ROLLOUT_RUNNING   ? "running"
								    : store_rollout_state_name(r.state));
		if (!st || json_array_append_new(stages, st)) {
			e = -ENOMEM;
			goto out;
		}
		json_object_set_new(st, "applied", json_integer(s->per[k].applied));
	}
	o = rollout_json(&r);
	if (!o || json_object_set_new(o, "member_count", json_integer(s->n)) ||
	    json_object_set_new(o, "covers_all", json_boolean(plan.n && rollplan_covers_all(sizes, plan.n, (size_t)s->n))) ||
	    json_object_set_new(o, "not_covered", json_integer(s->per[s->n_stages].members)) ||
	    json_object_set_new(o, "failures_counted", json_integer((json_int_t)(s->n_failed - r.failures_base))) ||
	    json_object_set_new(o, "failure_count", json_integer((json_int_t)s->n_failed)) ||
	    json_object_set(o, "stage_status", stages) || json_object_set(o, "failures", s->failures) ||
	    json_object_set(o, "members", s->members))
		e = -ENOMEM;
out:
	store_rollout_release(&r);
	json_decref(stages);
	json_decref(s->members);
	json_decref(s->failures);
	free(s);
	if (e) {
		json_decref(o);
		return e == -ENOMEM ? -ENOMEM
				    : api_reply_error(ret, id, 500, NULL, "store: reading rollout members failed: %s",
						  strerror(-e));
	}
	return api_reply_json(ret, 200, o);
}

static int rollout_action(struct api *a, const struct cp_identity *id, int64_t rid, const char *action,
			  const uint8_t *body, size_t len, int64_t now, struct api_reply *ret)
{
	char err[256];
	int r, status;

	/* No body, or an empty object: nothing to say but the action. */
	if (len) {
		static const char *const none[] = { NULL };
		json_t *obj = parse_body(body, len, none, err, sizeof(err));

		if (!obj)
			return api_reply_error(ret, id, 400, NULL, "%s", err);
		json_decref(obj);
	}
	if (is(action, "halt"))
		r = rollout_halt(a->rollouts, rid, id->subject, now, err, sizeof(err));
	else if (is(action, "resume"))
		r = rollout_resume(a->rollouts, rid, id->subject, now, err, sizeof(err));
	else
		r = rollout_abort(a->rollouts, rid, id->subject, now, err, sizeof(err));
	if (r == -ENOMEM)
		return r;
	if (r == -ENOENT)
		return api_reply_error(ret, id, 404, NULL, "no rollout %" PRId64, rid);
	if (r == -EBUSY) {
		struct store_rollout cur;
		json_t *extra = NULL;

		if (store_rollout_get(a->st, rid, &cur) == 0) {
			extra = json_pack("{s:s}", "state", store_rollout_state_name(cur.state));
			store_rollout_release(&cur);
		}
		return api_reply_error(ret, id, 409, extra, "cannot %s: %s", action, err);
	}
	if (r)
		return api_reply_error(ret, id, 500, NULL, "store: %s rollout failed: %s", action, strerror(-r));
	if (a->on_change)
		a->on_change(a->on_change_arg);
	status = rollout_reply(a, id, 200, rid, ret);
	set_log(ret, "admin API: %s: %s rollout %" PRId64, id->subject, action, rid);
	return status;
}

/* rest: what follows "/api/v1/rollouts" ("", "/ID", "/ID/ACTION"). */
static int rollouts_route(struct api *a, const struct cp_identity *id, const char *method, const char *path,
			  const char *rest, const uint8_t *body, size_t len, int64_t now, struct api_reply *ret)
{
	bool get = is(method, "GET"), post = is(method, "POST");
	const char *slash;
	int64_t rid;

	if (!a->rollouts)
		return api_reply_error(ret, id, 503, NULL, "rollouts are not enabled on this server");
	if (!*rest)
		return get ? rollouts_list(a, id, ret)
		       : post ? rollout_create_req(a, id, body, len, now, ret)
			      : wrong_method(ret, id, method, path, "GET, POST");
	rest++;
	slash = strchr(rest, '/');
	rid = parse_rollout_id(rest, slash ? (size_t)(slash - rest) : strlen(rest));
	if (rid <= 0)
		return api_reply_error(ret, id, 400, NULL, "a rollout id is a positive decimal integer");
	if (!slash)
		return get ? rollout_show(a, id, rid, ret) : wrong_method(ret, id, method, path, "GET");
	if (!is(slash + 1, "halt") && !is(slash + 1, "resume") && !is(slash + 1, "abort"))
		return api_reply_error(ret, id, 404, NULL, "no such resource: %.128s", path);
	return post ? rollout_action(a, id, rid, slash + 1, body, len, now, ret)
		    : wrong_method(ret, id, method, path, "POST");
}

static int api_route(struct api *a, const struct cp_identity *id, const char *method, const char *path,
		     const char *query, const uint8_t *body, size_t len, int64_t now, struct api_reply *ret)
{
	const char *rest;
	bool get, post;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!a || !method || !path)
		return -EINVAL;
	/* httpd.c routes only admins here; an agent (or anyone) that gets this far is still refused. */
	if (!id || id->role != CP_ROLE_ADMIN)
		return api_reply_error(ret, id, 403, NULL, "the admin API needs an administrator's certificate");
	if (len > API_MAX_BODY)
		return api_reply_error(ret, id, 413, NULL, "request body is larger than %u bytes",
				   API_MAX_BODY);
	if (strncmp(path, PREFIX, strlen(PREFIX)))
		return api_reply_error(ret, id, 404, NULL, "no such resource: %.128s", path);
	rest = path + strlen(PREFIX);
	get = is(method, "GET");
	post = is(method, "POST");

	/* The audit log's routes take their own queries (auditapi.c). */
	if (!strncmp(rest, "audit", 5) && (rest[5] == '\0' || rest[5] == '/')) {
		if (!a->audit)
			r = api_reply_error(ret, id, 404, NULL, "no such resource: %.128s", path);
		else if (!get)
			r = wrong_method(ret, id, method, path, "GET");
		else
			r = a->audit(a->audit_arg, id, rest + 5, query, ret);
		goto out;
	}
	if (query && *query && strcmp(rest, "agents"))
		return api_reply_error(ret, id, 400, NULL, "%.128s takes no query parameters", path);
	if (is(rest, "agents")) {
		r = get ? agents_list(a, id, query, ret) : wrong_method(ret, id, method, path, "GET");
	} else if (!strncmp(rest, "agents/", 7) && rest[7] && !strchr(rest + 7, '/')) {
		r = get ? agent_show(a, id, rest + 7, ret) : wrong_method(ret, id, method, path, "GET");
	} else if (is(rest, "policies")) {
		r = get    ? policies_list(a, id, ret)
		    : post ? policy_upload(a, id, body, len, now, ret)
			   : wrong_method(ret, id, method, path, "GET, POST");
	} else if (!strncmp(rest, "policies/", 9) && rest[9] && !strchr(rest + 9, '/')) {
		r = get ? policy_show(a, id, rest + 9, ret) : wrong_method(ret, id, method, path, "GET");
	} else if (is(rest, "assignments")) {
		r = get    ? assignments_list(a, id, ret)
		    : post ? assign(a, id, body, len, now, ret)
			   : wrong_method(ret, id, method, path, "GET, POST");
	} else if (!strncmp(rest, "rollouts", 8) && (rest[8] == '\0' || rest[8] == '/')) {
		r = rollouts_route(a, id, method, path, rest + 8, body, len, now, ret);
	} else {
		r = api_reply_error(ret, id, 404, NULL, "no such resource: %.128s", path);
	}
out:
	if (r < 0) {
		free(ret->body);
		memset(ret, 0, sizeof(*ret));
	}
	return r;
}

/* ------------------------------------------------------------------------
 * The audit log's hooks. */

void api_set_on_action(struct api *a, api_action_fn fn, void *arg)
{
	a->on_action = fn;
	a->on_action_arg = arg;
}

void api_set_audit(struct api *a, api_audit_fn fn, void *arg)
{
	a->audit = fn;
	a->audit_arg = arg;
}

int api_handle(struct api *a, const struct cp_identity *id, const char *method, const char *path,
	       const char *query, const uint8_t *body, size_t len, int64_t now,
	       struct api_reply *ret)
{
	int r = api_route(a, id, method, path, query, body, len, now, ret);

	/* Every request that could change something is recorded, refused or not. */
	if (a && a->on_action && method && path && strcmp(method, "GET") != 0) {
		struct api_action act = { .id = id, .method = method, .path = path, .query = query,
					  .body = body, .len = len, .http_status = r < 0 ? 500 : ret->http_status,
					  .now = now };

		a->on_action(&act, a->on_action_arg);
	}
	return r;
}
