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
#include "assignset.h"
#include "hexdigit.h"
#include "policy.h"
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

/* Serialize obj (consumed) into ret; -ENOMEM when jansson cannot. */
static int reply_json(struct api_reply *ret, int status, json_t *obj)
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

/*
 * {"error": text} with status, plus extra's members (consumed, may be
 * NULL).  The same text goes to the log, prefixed with who asked.
 */
static int reply_error(struct api_reply *ret, const struct cp_identity *id, int status,
		       json_t *extra, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int reply_error(struct api_reply *ret, const struct cp_identity *id, int status,
		       json_t *extra, const char *fmt, ...)
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
	return reply_json(ret, status, obj);
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

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict base64 (RFC 4648 section 4, padding optional, no whitespace) of
 * s[0..len) into a malloc'ed buffer of at most max bytes.  0, -EFBIG over
 * max, -EINVAL not base64, -ENOMEM.
 */
static int b64_decode(const char *s, size_t len, size_t max, uint8_t **ret, size_t *ret_len)
{
	size_t pad = 0, n = 0, out_len;
	uint32_t acc = 0;
	int bits = 0;
	uint8_t *out;

	while (pad < 2 && len > 0 && s[len - 1] == '=') {
		len--;
		pad++;
	}
	if (pad && (len + pad) % 4)
		return -EINVAL;
	if (len % 4 == 1)
		return -EINVAL;
	out_len = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	if (out_len > max)
		return -EFBIG;
	out = malloc(out_len ? out_len : 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v = b64val(s[i]);

		if (v < 0) {
			free(out);
			return -EINVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* The bits left over must be zero: one encoding per byte string. */
	if (acc & ((1u << bits) - 1)) {
		free(out);
		return -EINVAL;
	}
	*ret = out;
	*ret_len = n;
	return 0;
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
		return reply_error(ret, id, 400, NULL, "%s", err);
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
		return reply_error(ret, id, 500, NULL, "store: listing agents failed: %s", strerror(-r));
	}
	return reply_json(ret, 200, json_pack("{s:o}", "agents", l.arr));
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
		return reply_error(ret, id, 400, NULL,
				   "agent id must be 32 hex digits or a UUID (8-4-4-4-12)");
	r = store_agent_get(a->st, uid, &ag);
	if (r == -ENOENT)
		return reply_error(ret, id, 404, NULL, "no agent %s", uidtext);
	if (r)
		return reply_error(ret, id, 500, NULL, "store: reading agent failed: %s", strerror(-r));
	r = assignset_load(a->st, &as);
	if (r) {
		store_agent_release(&ag);
		return r == -ENOMEM ? -ENOMEM
				    : reply_error(ret, id, 500, NULL, "store: listing assignments failed: %s",
						  strerror(-r));
	}
	d = selector_description(ag.description_json);
	o = agent_json(&ag, assignset_resolve(&as, d));
	json_decref(d);
	assignset_release(&as);
	store_agent_release(&ag);
	return reply_json(ret, 200, o);
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
		return reply_error(ret, id, 400, NULL, "%s", err);
	r = b64_field(obj, "yaml", POLICY_MAX_SIZE, &yaml, &yaml_len, err, sizeof(err));
	if (!r)
		r = b64_field(obj, "signature", SIGNING_MAX_SIG_BYTES, &sig, &sig_len, err,
			      sizeof(err));
	json_decref(obj);
	if (r) {
		if (r > 0)
			r = reply_error(ret, id, r, NULL, "%s", err);
		goto out;
	}
	if (!a->trust) {
		r = reply_error(ret, id, 500, NULL, "no policy trust store is loaded");
		goto out;
	}

	/* The signature first: nothing an administrator did not sign goes further. */
	vs = signing_verify_policy(a->trust, yaml, yaml_len, sig, sig_len, signer, sizeof(signer));
	if (vs != SIGNING_OK) {
		if (vs == SIGNING_ERR_INTERNAL) {
			r = reply_error(ret, id, 500, NULL, "policy signature: %s", signer);
			goto out;
		}
		r = reply_error(ret, id, 422, json_pack("{s:s}", "reason", signing_status_name(vs)),
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
		r = reply_error(ret, id, 422, policy_errors_json(&errs),
				"policy.yaml is not a valid policy: %s%s", errs.n ? all : "(no detail)",
				errs.n_dropped ? "; and more" : "");
		goto out;
	}
	if (r) {
		r = r == -ENOMEM ? -ENOMEM : reply_error(ret, id, 500, NULL, "policy_parse: %s", strerror(-r));
		goto out;
	}
	if (p->serial == 0) {
		r = reply_error(ret, id, 422, NULL,
				"policy.yaml has no serial: a signed policy needs a top-level "
				"\"serial: N\" greater than every uploaded one");
		goto out;
	}
	r = store_policy_max_serial(a->st, &max_serial);
	if (r) {
		r = reply_error(ret, id, 500, NULL, "store: %s", strerror(-r));
		goto out;
	}
	if ((int64_t)p->serial <= max_serial) {
		r = reply_error(ret, id, 409, json_pack("{s:I}", "max_serial", (json_int_t)max_serial),
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
		r = reply_error(ret, id, 409, NULL, "policy serial %" PRIu64 " is not new: serials only "
				"move forward", p->serial);
		goto out;
	}
	if (r) {
		r = reply_error(ret, id, 500, NULL, "store: adding policy failed: %s", strerror(-r));
		goto out;
	}
	if (a->on_change)
		a->on_change(a->on_change_arg);
	sha256_hex(yaml, yaml_len, sum);
	r = reply_json(ret, 201, json_pack("{s:I, s:s, s:s}", "serial", (json_int_t)p->serial,
					   "signer", signer, "sha256", sum));
	set_log(ret, "admin API: %s uploaded policy serial %" PRIu64 " (sha256 %.16s, %s)",
		id->subject, p->serial, sum, signer);
out:
	policy_free(p);
	free(yaml);
	free(sig);
	return r;
}

/* buf[0..len) as a base64 JSON string. */
static json_t *b64_string(const uint8_t *buf, size_t len)
{
	char *text;
	json_t *v;

	if (len > INT32_MAX / 2)
		return NULL;
	text = malloc(4 * ((len + 2) / 3) + 1);
	if (!text)
		return NULL;
	EVP_EncodeBlock((unsigned char *)text, buf, (int)len);
	v = json_string(text);
	free(text);
	return v;
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
	    (json_object_set_new(o, "yaml", b64_string(p->yaml, p->yaml_len)) ||
	     json_object_set_new(o, "signature", b64_string(p->sig, p->sig_len)))) {
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
				    : reply_error(ret, id, 500, NULL, "store: listing policies failed: %s",
						  strerror(-r));
	}
	return reply_json(ret, 200, json_pack("{s:o}", "policies", arr));
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
		return reply_error(ret, id, 400, NULL, "a policy serial is a positive decimal integer");
	r = store_policy_get(a->st, serial, &p);
	if (r == -ENOENT)
		return reply_error(ret, id, 404, NULL, "no policy with serial %" PRId64, serial);
	if (r)
		return reply_error(ret, id, 500, NULL, "store: reading policy failed: %s", strerror(-r));
	o = policy_json(&p, true);
	store_policy_release(&p);
	return reply_json(ret, 200, o);
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
		return reply_error(ret, id, 400, NULL, "%s", err);
	vs = json_object_get(obj, "serial");
	vsel = json_object_get(obj, "selector");
	if (!vs || !json_is_integer(vs) || json_integer_value(vs) <= 0) {
		json_decref(obj);
		return reply_error(ret, id, 400, NULL, "field \"serial\" (a positive integer) is required");
	}
	if (!vsel || !json_is_string(vsel)) {
		json_decref(obj);
		return reply_error(ret, id, 400, NULL, "field \"selector\" (\"k=v,...\") is required");
	}
	serial = json_integer_value(vs);
	if (json_string_length(vsel) >= sizeof(text) || strlen(json_string_value(vsel)) !=
							  json_string_length(vsel)) {
		json_decref(obj);
		return reply_error(ret, id, 400, NULL, "selector: too long or not text");
	}
	memcpy(text, json_string_value(vsel), json_string_length(vsel) + 1);
	json_decref(obj);
	if (selector_parse(text, &sel, err, sizeof(err)))
		return reply_error(ret, id, 400, NULL, "selector: %s", err);

	r = store_assign(a->st, text, serial, id->subject, now, &aid);
	if (r == -ENOENT)
		return reply_error(ret, id, 404, NULL,
				   "no policy with serial %" PRId64 ": upload it first", serial);
	if (r)
		return reply_error(ret, id, 500, NULL, "store: assigning failed: %s", strerror(-r));
	if (a->on_change)
		a->on_change(a->on_change_arg);
	r = reply_json(ret, 201, json_pack("{s:I, s:I, s:s}", "id", (json_int_t)aid, "serial",
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
				    : reply_error(ret, id, 500, NULL, "store: listing assignments failed: %s",
						  strerror(-r));
	}
	return reply_json(ret, 200, json_pack("{s:o}", "assignments", arr));
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
	return reply_error(ret, id, 405, json_pack("{s:s}", "allow", allowed),
			   "%.16s is not allowed on %.128s (allowed: %s)", method, path, allowed);
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
		return reply_error(ret, id, 403, NULL, "the admin API needs an administrator's certificate");
	if (len > API_MAX_BODY)
		return reply_error(ret, id, 413, NULL, "request body is larger than %u bytes",
				   API_MAX_BODY);
	if (strncmp(path, PREFIX, strlen(PREFIX)))
		return reply_error(ret, id, 404, NULL, "no such resource: %.128s", path);
	rest = path + strlen(PREFIX);
	get = is(method, "GET");
	post = is(method, "POST");

	/* The audit log's routes take their own queries (auditapi.c). */
	if (!strncmp(rest, "audit", 5) && (rest[5] == '\0' || rest[5] == '/')) {
		if (!a->audit)
			r = reply_error(ret, id, 404, NULL, "no such resource: %.128s", path);
		else if (!get)
			r = wrong_method(ret, id, method, path, "GET");
		else
			r = a->audit(a->audit_arg, id, rest + 5, query, ret);
		goto out;
	}
	if (query && *query && strcmp(rest, "agents"))
		return reply_error(ret, id, 400, NULL, "%.128s takes no query parameters", path);
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
	} else {
		r = reply_error(ret, id, 404, NULL, "no such resource: %.128s", path);
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
