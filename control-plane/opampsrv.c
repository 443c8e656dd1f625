/*
 * opampsrv.c - vigil-cp's OpAMP server logic (opampsrv.h): one
 * AgentToServer in, the store updated, one ServerToAgent out.  The bytes
 * come from any agent certificate, so they are hostile until proven
 * otherwise: the size is capped, the protobuf is walked once (iteratively
 * bounded: nesting depth and number of elements) before protobuf-c
 * unpacks it, since protobuf-c itself recurses without limit and
 * allocates per element; every string that reaches the store is UTF-8
 * and bounded.
 *
 * Behaviour follows opamp-spec's specification.md and what opamp-go's
 * server does: the reply echoes instance_uid (opamp-go's HTTP handler
 * fills it when the callback did not); a sequence_num that is not the
 * last + 1 gets ReportFullState ("Agent Status Compression"), and so does
 * a message from an agent the store does not know unless it is a full
 * report (its description and every report its capabilities promise: a
 * client's first message; opamp-go's example server decides the same);
 * agent_disconnect is answered with an ordinary reply and marks the agent
 * disconnected; remote config goes only to agents that claim
 * AcceptsRemoteConfig, whenever the last_remote_config_hash they reported
 * differs from the assigned policy's, except in a reply that asks for the
 * full state of an agent whose hash is unknown (the next message says).
 *
 * Cost of a steady poll: the assignments (with parsed selectors) and the
 * policies (config hash of each; the map of each assigned one) are cached
 * and reloaded only after opampsrv_invalidate(); agents are cached too
 * (a tree keyed by uid, bounded in bytes), each with the serial its
 * description resolved to, so that a poll with nothing new is a decode,
 * a lookup, one row written and an encode.  Several vigil-cp processes
 * may share one database, and an agent may reach any of them on any poll:
 * a cached agent is used only when the message's sequence_num follows the
 * cached one (a message handled by another server in between would have
 * taken that number), else its row is read again; what is cached of
 * policies and assignments is dropped when store_generation() moves
 * (vigil-cp's tick calls opampsrv_invalidate()).
 *
 * What the agent is offered: the higher of the serial its newest matching
 * assignment names and the serial a rollout offers it (opampsrv_set_rollouts),
 * leaving out any serial that FAILED on that agent, which is remembered in
 * its row and never offered again.  Transitions worth recording (cpevent.h)
 * go to the events callback after the agent's row is stored.
 *
 * Runs in vigil-cp (unprivileged, single-threaded).  Never logs.
 */
#include <errno.h>
#include <math.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <openssl/evp.h>

#include "assignset.h"
#include "configmap.h"
#include "cpevent.h"
#include "csrsign.h"
#include "hexdigit.h"
#include "opamp.pb-c.h"
#include "opampsrv.h"
#include "selector.h"
#include "store.h"

#define OPAMPSRV_MAX_DEPTH 16		/* messages nested in one another */
#define OPAMPSRV_MAX_ELEMENTS 65536	/* length-delimited or unknown fields in one message */
#define OPAMPSRV_MAX_JSON (64u << 10)	/* description or health as JSON */
#define OPAMPSRV_MAX_ERROR 1024		/* bytes of an error message kept */
#define OPAMPSRV_CACHE_BYTES (64u << 20) /* agents cached before the cache starts over */

#define OPAMPSRV_CAPABILITIES                                            \
	(OPAMP__PROTO__V1__SERVER_CAPABILITIES__ServerCapabilities_AcceptsStatus |      \
	 OPAMP__PROTO__V1__SERVER_CAPABILITIES__ServerCapabilities_OffersRemoteConfig | \
	 OPAMP__PROTO__V1__SERVER_CAPABILITIES__ServerCapabilities_AcceptsEffectiveConfig)
/* Advertised only with a signer (--issuer-cert/--issuer-key). */
#define OPAMPSRV_CSR_CAPABILITIES                                                           \
	(OPAMP__PROTO__V1__SERVER_CAPABILITIES__ServerCapabilities_OffersConnectionSettings | \
	 OPAMP__PROTO__V1__SERVER_CAPABILITIES__ServerCapabilities_AcceptsConnectionSettingsRequest)

typedef Opamp__Proto__V1__AgentToServer agent_to_server;
typedef Opamp__Proto__V1__ServerToAgent server_to_agent;

struct opampsrv_policy {
	int64_t serial;
	uint8_t hash[CONFIGMAP_HASH_LEN];
	uint8_t *yaml, *sig;	/* only for assigned policies, NULL otherwise */
	size_t yaml_len, sig_len;
};

struct opampsrv_agent {
	struct store_agent a;
	uint64_t gen;		/* s->gen when target was resolved */
	int64_t target;		/* serial of the newest matching assignment, 0 none */
	size_t bytes;		/* what this entry costs, for the cache's bound */
};

struct opampsrv {
	struct store *st;
	uint64_t gen;		/* bumped by opampsrv_invalidate */
	bool loaded;
	int64_t loaded_gen;	/* store_generation() when the cache was loaded */
	struct assignset assignments;
	struct opampsrv_policy *policies;	 /* serial order */
	size_t n_policies;
	void *agents;		/* tsearch tree of struct opampsrv_agent */
	size_t cache_bytes;
	const struct csrsign *signer;	/* borrowed; NULL: CSRs are refused */
	cpevent_fn on_event;		/* NULL: events go nowhere */
	void *event_arg;
	struct opampsrv_rollouts rollouts;	/* offer NULL: no rollout offers anything */
};

/* ---------------------------------------------------------------------------
 * The cache of assignments and policies. */

static void opampsrv_unload(struct opampsrv *s)
{
	for (size_t i = 0; i < s->n_policies; i++) {
		free(s->policies[i].yaml);
		free(s->policies[i].sig);
	}
	free(s->policies);
	assignset_release(&s->assignments);
	s->policies = NULL;
	s->n_policies = 0;
	s->loaded = false;
}

struct opampsrv_load {
	struct opampsrv *s;
	size_t cap;
};

/* The two files of a policy as an AgentConfigMap pointing at yaml and sig. */
struct opampsrv_map {
	Opamp__Proto__V1__AgentConfigFile files[2];
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry entries[2];
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry *entry_ptrs[2];
	Opamp__Proto__V1__AgentConfigMap map;
};

static void opampsrv_map_init(struct opampsrv_map *m, const uint8_t *yaml, size_t yaml_len, const uint8_t *sig,
			      size_t sig_len)
{
	static const char *const keys[2] = { CONFIGMAP_POLICY, CONFIGMAP_POLICY_SIG };
	static const char *const types[2] = { CONFIGMAP_POLICY_TYPE, CONFIGMAP_SIG_TYPE };

	for (int i = 0; i < 2; i++) {
		opamp__proto__v1__agent_config_file__init(&m->files[i]);
		m->files[i].content_type = (char *)(uintptr_t)types[i];
		opamp__proto__v1__agent_config_map__config_map_entry__init(&m->entries[i]);
		m->entries[i].key = (char *)(uintptr_t)keys[i];
		m->entries[i].value = &m->files[i];
		m->entry_ptrs[i] = &m->entries[i];
	}
	m->files[0].body.data = (uint8_t *)(uintptr_t)yaml;
	m->files[0].body.len = yaml_len;
	m->files[1].body.data = (uint8_t *)(uintptr_t)sig;
	m->files[1].body.len = sig_len;
	opamp__proto__v1__agent_config_map__init(&m->map);
	m->map.n_config_map = 2;
	m->map.config_map = m->entry_ptrs;
}

static int opampsrv_load_policy(const struct store_policy *p, void *arg)
{
	struct opampsrv_load *l = arg;
	struct opampsrv *s = l->s;
	struct opampsrv_policy *op;
	struct opampsrv_map m;
	int r;

	if (s->n_policies == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct opampsrv_policy *n = reallocarray(s->policies, cap, sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->policies = n;
		l->cap = cap;
	}
	op = &s->policies[s->n_policies];
	memset(op, 0, sizeof(*op));
	op->serial = p->serial;
	opampsrv_map_init(&m, p->yaml, p->yaml_len, p->sig, p->sig_len);
	r = configmap_hash(&m.map, op->hash);
	if (r)
		return r;
	if (assignset_names(&s->assignments, p->serial)) {
		op->yaml = malloc(p->yaml_len ? p->yaml_len : 1);
		op->sig = malloc(p->sig_len ? p->sig_len : 1);
		if (!op->yaml || !op->sig) {
			free(op->yaml);
			free(op->sig);
			return -ENOMEM;
		}
		memcpy(op->yaml, p->yaml, p->yaml_len);
		memcpy(op->sig, p->sig, p->sig_len);
		op->yaml_len = p->yaml_len;
		op->sig_len = p->sig_len;
	}
	s->n_policies++;
	return 0;
}

static int opampsrv_load(struct opampsrv *s)
{
	struct opampsrv_load l = { .s = s };
	int r;

	if (s->loaded)
		return 0;
	opampsrv_unload(s);
	/* Read first: a change made while the lists are read moves it again. */
	if (store_generation(s->st, &s->loaded_gen))
		s->loaded_gen = 0;
	r = assignset_load(s->st, &s->assignments);
	if (r == 0)
		r = store_policy_list(s->st, opampsrv_load_policy, &l);
	if (r) {
		opampsrv_unload(s);
		return r;
	}
	s->loaded = true;
	return 0;
}

/*
 * An agent reported a config hash no cached policy has: the policy may
 * have been uploaded through another server less than a tick ago.  Load
 * again when the store's generation says something changed (one row read
 * otherwise, so that random hashes from an agent cost little).
 */
static int opampsrv_refresh(struct opampsrv *s)
{
	int64_t gen;

	if (store_generation(s->st, &gen) != 0 || gen == s->loaded_gen)
		return 0;
	s->loaded = false;
	s->gen++;
	return opampsrv_load(s);
}

static struct opampsrv_policy *opampsrv_policy_by_serial(struct opampsrv *s, int64_t serial)
{
	size_t lo = 0, hi = s->n_policies;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->policies[mid].serial == serial)
			return &s->policies[mid];
		if (s->policies[mid].serial < serial)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int64_t opampsrv_serial_by_hash(const struct opampsrv *s, const uint8_t hash[CONFIGMAP_HASH_LEN])
{
	for (size_t i = s->n_policies; i-- > 0;)
		if (memcmp(s->policies[i].hash, hash, CONFIGMAP_HASH_LEN) == 0)
			return s->policies[i].serial;
	return 0;
}

/*
 * The policy of serial with its YAML and signature at hand: those of
 * assigned policies are loaded with the cache, others (offered by a
 * rollout) from the store on first use.  NULL when there is no such
 * policy or it cannot be read now (the agent is offered nothing this time).
 */
static const struct opampsrv_policy *opampsrv_policy_blobs(struct opampsrv *s, int64_t serial)
{
	struct opampsrv_policy *p = opampsrv_policy_by_serial(s, serial);
	struct store_policy sp;

	if (!p || p->yaml)
		return p;
	if (store_policy_get(s->st, serial, &sp) != 0)
		return NULL;
	p->yaml = sp.yaml;
	p->yaml_len = sp.yaml_len;
	p->sig = sp.sig;
	p->sig_len = sp.sig_len;
	sp.yaml = sp.sig = NULL;
	store_policy_release(&sp);
	return p;
}

/* The description is parsed once for all the assignments, not once for each. */
static int64_t opampsrv_resolve(const struct opampsrv *s, const char *description_json)
{
	json_t *d = selector_description(description_json);
	int64_t serial = assignset_resolve(&s->assignments, d);

	json_decref(d);
	return serial;
}

/* ---------------------------------------------------------------------------
 * The agent cache. */

static int opampsrv_agent_cmp(const void *x, const void *y)
{
	return memcmp(((const struct opampsrv_agent *)x)->a.uid, ((const struct opampsrv_agent *)y)->a.uid,
		      STORE_UID_LEN);
}

static void opampsrv_agent_free(void *p)
{
	struct opampsrv_agent *oa = p;

	store_agent_release(&oa->a);
	free(oa);
}

static size_t opampsrv_strbytes(const char *p)
{
	return p ? strlen(p) + 1 : 0;
}

static size_t opampsrv_agent_bytes(const struct opampsrv_agent *oa)
{
	const struct store_agent *a = &oa->a;

	return sizeof(*oa) + 64 /* tree node */ + opampsrv_strbytes(a->cert_subject) +
	       opampsrv_strbytes(a->cert_sans) + opampsrv_strbytes(a->cert_serial) +
	       opampsrv_strbytes(a->cert_fingerprint) + opampsrv_strbytes(a->description_json) +
	       opampsrv_strbytes(a->health_json) + opampsrv_strbytes(a->last_error);
}

static struct opampsrv_agent *opampsrv_cache_find(struct opampsrv *s, const uint8_t uid[STORE_UID_LEN])
{
	struct opampsrv_agent key;
	void *found;

	memcpy(key.a.uid, uid, STORE_UID_LEN);
	found = tfind(&key, &s->agents, opampsrv_agent_cmp);
	return found ? *(struct opampsrv_agent **)found : NULL;
}

static void opampsrv_cache_clear(struct opampsrv *s)
{
	tdestroy(s->agents, opampsrv_agent_free);
	s->agents = NULL;
	s->cache_bytes = 0;
}

/* Put oa (owned by the cache from now on) in place of what it had for that uid. */
static void opampsrv_cache_put(struct opampsrv *s, struct opampsrv_agent *oa)
{
	struct opampsrv_agent *old = opampsrv_cache_find(s, oa->a.uid);
	void *slot;

	if (old) {
		tdelete(old, &s->agents, opampsrv_agent_cmp);
		s->cache_bytes -= old->bytes;
		opampsrv_agent_free(old);
	}
	oa->bytes = opampsrv_agent_bytes(oa);
	if (s->cache_bytes + oa->bytes > OPAMPSRV_CACHE_BYTES)
		opampsrv_cache_clear(s);
	slot = tsearch(oa, &s->agents, opampsrv_agent_cmp);
	if (!slot) {
		/* No memory for a node: the store has the row, the cache can do without it. */
		opampsrv_agent_free(oa);
		return;
	}
	s->cache_bytes += oa->bytes;
}

/* ---------------------------------------------------------------------------
 * The wire walk before protobuf-c: bounded depth and element count. */

struct opampsrv_scan {
	size_t elements;
};

static int opampsrv_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -EBADMSG;
}

static int opampsrv_walk(struct opampsrv_scan *sc, const ProtobufCMessageDescriptor *d, const uint8_t *p,
			 size_t len, unsigned depth)
{
	const uint8_t *end = p + len;

	if (depth > OPAMPSRV_MAX_DEPTH)
		return -ELOOP;
	while (p < end) {
		const ProtobufCFieldDescriptor *f;
		uint64_t tag, n;
		int r;

		if (opampsrv_varint(&p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
			return -EBADMSG;
		f = protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
		if (!f && ++sc->elements > OPAMPSRV_MAX_ELEMENTS)
			return -E2BIG;
		switch (tag & 7) {
		case 0:
			if (opampsrv_varint(&p, end, &n))
				return -EBADMSG;
			break;
		case 1:
			if ((size_t)(end - p) < 8)
				return -EBADMSG;
			p += 8;
			break;
		case 5:
			if ((size_t)(end - p) < 4)
				return -EBADMSG;
			p += 4;
			break;
		case 2:
			if (opampsrv_varint(&p, end, &n) || n > (uint64_t)(end - p))
				return -EBADMSG;
			if (f && ++sc->elements > OPAMPSRV_MAX_ELEMENTS)
				return -E2BIG;
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				r = opampsrv_walk(sc, f->descriptor, p, (size_t)n, depth + 1);
				if (r)
					return r;
			}
			p += n;
			break;
		default: /* groups (3, 4) are not proto3; 6 and 7 do not exist */
			return -EBADMSG;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------------
 * What the agent says, as the store keeps it. */

static bool opampsrv_utf8(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			unsigned char cc = (unsigned char)s[i + j];

			if ((cc & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (cc & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static bool opampsrv_str_ok(const char *s)
{
	return !s || opampsrv_utf8(s, strlen(s));
}

/* A copy of text cut to OPAMPSRV_MAX_ERROR bytes on a character boundary, or NULL when empty. */
static int opampsrv_error_copy(const char *text, char **ret)
{
	size_t n = text ? strlen(text) : 0;

	*ret = NULL;
	if (n == 0)
		return 0;
	if (n > OPAMPSRV_MAX_ERROR) {
		n = OPAMPSRV_MAX_ERROR;
		while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
			n--;
	}
	*ret = strndup(text, n);
	return *ret ? 0 : -ENOMEM;
}

static json_t *opampsrv_anyvalue_json(const Opamp__Proto__V1__AnyValue *v);

static json_t *opampsrv_kvlist_json(Opamp__Proto__V1__KeyValue *const *kv, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < n; i++) {
		json_t *v = opampsrv_anyvalue_json(kv[i]->value);

		if (!v || json_object_set_new(o, kv[i]->key ? kv[i]->key : "", v) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* AnyValue as JSON: scalars as themselves, bytes as lower-case hex. */
static json_t *opampsrv_anyvalue_json(const Opamp__Proto__V1__AnyValue *v)
{
	if (!v)
		return json_null();
	switch (v->value_case) {
	case OPAMP__PROTO__V1__ANY_VALUE__VALUE_STRING_VALUE:
		return json_string(v->string_value ? v->string_value : "");
	case OPAMP__PROTO__V1__ANY_VALUE__VALUE_BOOL_VALUE:
		return json_boolean(v->bool_value);
	case OPAMP__PROTO__V1__ANY_VALUE__VALUE_INT_VALUE:
		return json_integer(v->int_value);
	case OPAMP__PROTO__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
		/* JSON has no NaN or infinity: those go as strings. */
		if (isnan(v->double_value))
			return json_string("NaN");
		if (isinf(v->double_value))
			return json_string(v->double_value > 0 ? "Infinity" : "-Infinity");
		return json_real(v->double_value);
	case OPAMP__PROTO__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
		size_t n = v->bytes_value.len;
		char *hex = malloc(2 * n + 1);
		json_t *j;

		if (!hex)
			return NULL;
		hexdigit_encode(v->bytes_value.data, n, hex);
		j = json_string(hex);
		free(hex);
		return j;
	}
	case OPAMP__PROTO__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
		json_t *a = json_array();

		for (size_t i = 0; a && v->array_value && i < v->array_value->n_values; i++) {
			json_t *e = opampsrv_anyvalue_json(v->array_value->values[i]);

			if (!e || json_array_append_new(a, e) != 0) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	case OPAMP__PROTO__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
		return v->kvlist_value ? opampsrv_kvlist_json(v->kvlist_value->values, v->kvlist_value->n_values)
				       : json_object();
	default:
		return json_null();
	}
}

/*
 * An attribute list as store.h's description format: every value a
 * string (structured values as their compact JSON).
 */
static json_t *opampsrv_attrs_json(Opamp__Proto__V1__KeyValue *const *kv, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < n; i++) {
		const Opamp__Proto__V1__AnyValue *v = kv[i]->value;
		json_t *s;

		if (v && v->value_case == OPAMP__PROTO__V1__ANY_VALUE__VALUE_STRING_VALUE) {
			s = json_string(v->string_value ? v->string_value : "");
		} else {
			json_t *j = opampsrv_anyvalue_json(v);
			char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

			json_decref(j);
			s = text ? json_string(text) : NULL;
			free(text);
		}
		if (!s || json_object_set_new(o, kv[i]->key ? kv[i]->key : "", s) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* Dump j (consumed) to *ret when within OPAMPSRV_MAX_JSON: 0, -E2BIG, -ENOMEM. */
static int opampsrv_dump(json_t *j, char **ret)
{
	char *text;

	if (!j)
		return -ENOMEM;
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (!text)
		return -ENOMEM;
	if (strlen(text) > OPAMPSRV_MAX_JSON) {
		free(text);
		return -E2BIG;
	}
	*ret = text;
	return 0;
}

static int opampsrv_description_json(const Opamp__Proto__V1__AgentDescription *d, char **ret)
{
	json_t *o = json_object();
	json_t *id = opampsrv_attrs_json(d->identifying_attributes, d->n_identifying_attributes);
	json_t *nonid = opampsrv_attrs_json(d->non_identifying_attributes, d->n_non_identifying_attributes);

	if (!o || !id || !nonid || json_object_set_new(o, "identifying", id) != 0) {
		json_decref(o);
		json_decref(nonid);
		if (!o)
			json_decref(id);
		return -ENOMEM;
	}
	if (json_object_set_new(o, "non_identifying", nonid) != 0) {
		json_decref(o);
		return -ENOMEM;
	}
	return opampsrv_dump(o, ret);
}

static json_t *opampsrv_health_json(const Opamp__Proto__V1__ComponentHealth *h)
{
	json_t *o = json_object();
	json_t *map, *attrs;

	if (!o)
		return NULL;
	if (json_object_set_new(o, "healthy", json_boolean(h->healthy)) ||
	    json_object_set_new(o, "start_time_unix_nano", json_integer((json_int_t)h->start_time_unix_nano)) ||
	    json_object_set_new(o, "status_time_unix_nano", json_integer((json_int_t)h->status_time_unix_nano)) ||
	    (h->last_error && *h->last_error && json_object_set_new(o, "last_error", json_string(h->last_error))) ||
	    (h->status && *h->status && json_object_set_new(o, "status", json_string(h->status))))
		goto fail;
	if (h->n_component_health_map) {
		map = json_object();
		if (!map || json_object_set_new(o, "component_health_map", map))
			goto fail;
		for (size_t i = 0; i < h->n_component_health_map; i++) {
			const Opamp__Proto__V1__ComponentHealth__ComponentHealthMapEntry *e = h->component_health_map[i];
			json_t *c;

			if (!e->value)
				continue;
			c = opampsrv_health_json(e->value);
			if (!c || json_object_set_new(map, e->key ? e->key : "", c))
				goto fail;
		}
	}
	if (h->n_attributes) {
		attrs = opampsrv_attrs_json(h->attributes, h->n_attributes);
		if (!attrs || json_object_set_new(o, "attributes", attrs))
			goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* Every string of the message that may reach the store or a JSON encoder is UTF-8. */
static bool opampsrv_kvs_ok(Opamp__Proto__V1__KeyValue *const *kv, size_t n);

static bool opampsrv_anyvalue_ok(const Opamp__Proto__V1__AnyValue *v)
{
	if (!v)
		return true;
	switch (v->value_case) {
	case OPAMP__PROTO__V1__ANY_VALUE__VALUE_STRING_VALUE:
		return opampsrv_str_ok(v->string_value);
	case OPAMP__PROTO__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
		for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++)
			if (!opampsrv_anyvalue_ok(v->array_value->values[i]))
				return false;
		return true;
	case OPAMP__PROTO__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
		return !v->kvlist_value || opampsrv_kvs_ok(v->kvlist_value->values, v->kvlist_value->n_values);
	default:
		return true;
	}
}

static bool opampsrv_kvs_ok(Opamp__Proto__V1__KeyValue *const *kv, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!opampsrv_str_ok(kv[i]->key) || !opampsrv_anyvalue_ok(kv[i]->value))
			return false;
	return true;
}

static bool opampsrv_health_ok(const Opamp__Proto__V1__ComponentHealth *h)
{
	if (!opampsrv_str_ok(h->last_error) || !opampsrv_str_ok(h->status) ||
	    !opampsrv_kvs_ok(h->attributes, h->n_attributes))
		return false;
	for (size_t i = 0; i < h->n_component_health_map; i++) {
		const Opamp__Proto__V1__ComponentHealth__ComponentHealthMapEntry *e = h->component_health_map[i];

		if (!opampsrv_str_ok(e->key) || (e->value && !opampsrv_health_ok(e->value)))
			return false;
	}
	return true;
}

/* ---------------------------------------------------------------------------
 * Replies. */

static int opampsrv_pack(const server_to_agent *out, struct opampsrv_reply *ret)
{
	size_t n = opamp__proto__v1__server_to_agent__get_packed_size(out);

	ret->body = malloc(n ? n : 1);
	if (!ret->body)
		return -ENOMEM;
	ret->len = opamp__proto__v1__server_to_agent__pack(out, ret->body);
	return 0;
}

/* The log line's view of a peer: its subject, cut short. */
static const char *opampsrv_who(const struct cp_identity *id)
{
	return id && id->subject[0] ? id->subject : "(no subject)";
}

/* BadRequest: HTTP 400 with a ServerToAgent that says why; the store is not touched. */
static int opampsrv_bad_request(const struct cp_identity *id, const ProtobufCBinaryData *uid, const char *why,
				struct opampsrv_reply *ret)
{
	server_to_agent out = OPAMP__PROTO__V1__SERVER_TO_AGENT__INIT;
	Opamp__Proto__V1__ServerErrorResponse er;

	/* The __INIT macro casts away a const (protobuf_c_empty_string); the function does not. */
	opamp__proto__v1__server_error_response__init(&er);
	er.type = OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE_TYPE__ServerErrorResponseType_BadRequest;
	er.error_message = (char *)(uintptr_t)why;
	out.error_response = &er;
	out.capabilities = OPAMPSRV_CAPABILITIES;
	if (uid && uid->len == STORE_UID_LEN)
		out.instance_uid = *uid;
	ret->http_status = 400;
	snprintf(ret->log, sizeof(ret->log), "opamp: BadRequest from %.120s: %s", opampsrv_who(id), why);
	return opampsrv_pack(&out, ret);
}

/* ---------------------------------------------------------------------------
 * The CSR flow (ConnectionSettingsRequest #11 -> ConnectionSettingsOffers #4). */

/* What an offer points into; lives until the reply is packed. */
struct opampsrv_offer {
	Opamp__Proto__V1__ConnectionSettingsOffers offers;
	Opamp__Proto__V1__OpAMPConnectionSettings opamp;
	Opamp__Proto__V1__TLSCertificate cert;
	Opamp__Proto__V1__ServerErrorResponse er;
	struct csrsign_issued issued;
	uint8_t hash[32];
	char why[300];
};

static uint64_t opampsrv_capabilities(const struct opampsrv *s)
{
	return OPAMPSRV_CAPABILITIES | (s && s->signer ? OPAMPSRV_CSR_CAPABILITIES : 0);
}

static const ProtobufCBinaryData *opampsrv_csr_request(const agent_to_server *in)
{
	const Opamp__Proto__V1__ConnectionSettingsRequest *r = in->connection_settings_request;

	if (!r || !r->opamp || !r->opamp->certificate_request)
		return NULL;
	return &r->opamp->certificate_request->csr;
}

/*
 * Sign the request, or say why not in error_response (BadRequest) and the
 * log; the rest of the message was processed already.  0, or -ENOMEM/-EIO.
 */
static int opampsrv_csr(struct opampsrv *s, const struct cp_identity *id, const ProtobufCBinaryData *csr,
			int64_t now, server_to_agent *out, struct opampsrv_offer *o, struct opampsrv_reply *ret)
{
	unsigned mdlen = 0;
	int r;

	if (!s->signer) {
		snprintf(o->why, sizeof(o->why), "this server does not sign certificate requests (vigil-cp runs "
			 "without --issuer-cert/--issuer-key)");
		r = -EPERM;
	} else {
		r = csrsign_issue(s->signer, id->cert, csr->data, csr->len, (time_t)(now / 1000), &o->issued,
				  o->why, sizeof(o->why));
		/* An issuer OpenSSL cannot sign with (-EIO) is this request's failure, said and logged. */
		if (r == -ENOMEM)
			return r;
	}
	if (r) {
		opamp__proto__v1__server_error_response__init(&o->er);
		o->er.type = OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE_TYPE__ServerErrorResponseType_BadRequest;
		o->er.error_message = o->why;
		out->error_response = &o->er;
		snprintf(ret->log, sizeof(ret->log), "opamp: certificate request from %.120s refused: %s",
			 opampsrv_who(id), o->why);
		return 0;
	}
	opamp__proto__v1__connection_settings_offers__init(&o->offers);
	opamp__proto__v1__op_ampconnection_settings__init(&o->opamp);
	opamp__proto__v1__tlscertificate__init(&o->cert);
	o->cert.cert.data = (uint8_t *)o->issued.pem;
	o->cert.cert.len = o->issued.len;
	o->opamp.certificate = &o->cert;
	o->offers.opamp = &o->opamp;
	/* The offer's hash: SHA-256 of what it carries, the certificate PEM. */
	if (!EVP_Digest(o->issued.pem, o->issued.len, o->hash, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return -EIO;
	o->offers.hash.data = o->hash;
	o->offers.hash.len = sizeof(o->hash);
	out->connection_settings = &o->offers;
	snprintf(ret->log, sizeof(ret->log), "opamp: issued a certificate to %.120s: serial %s, SHA-256 %s, "
		 "valid %ld s", opampsrv_who(id), o->issued.serial, o->issued.fingerprint,
		 (long)(o->issued.not_after - now / 1000));
	return 0;
}

/* What the agent says of the settings offered last (#15): logged. */
static void opampsrv_csr_status(const struct cp_identity *id, const agent_to_server *in, struct opampsrv_reply *ret)
{
	const Opamp__Proto__V1__ConnectionSettingsStatus *st = in->connection_settings_status;
	const char *what;

	if (!st || ret->log[0])
		return;
	switch (st->status) {
	case OPAMP__PROTO__V1__CONNECTION_SETTINGS_STATUSES__ConnectionSettingsStatuses_APPLIED:
		what = "APPLIED";
		break;
	case OPAMP__PROTO__V1__CONNECTION_SETTINGS_STATUSES__ConnectionSettingsStatuses_FAILED:
		what = "FAILED";
		break;
	default:
		return;	/* APPLYING and UNSET say nothing worth a line on every poll */
	}
	snprintf(ret->log, sizeof(ret->log), "opamp: connection settings %s by %.120s%s%.200s", what,
		 opampsrv_who(id), st->error_message && st->error_message[0] ? ": " : "",
		 st->error_message && opampsrv_str_ok(st->error_message) ? st->error_message : "");
}

/* ---------------------------------------------------------------------------
 * Events: what changed with this message, told after the row is stored. */

/* What the agent's row said before this message. */
struct opampsrv_before {
	int status;
	bool has_hash;
	uint8_t hash[CONFIGMAP_HASH_LEN];
	int healthy;
	char *fingerprint;	/* malloc'ed, or NULL */
	json_t *health;		/* the health it reported before, parsed, or NULL */
};

/* The fingerprint is moved, not copied: opampsrv_set_identity() sets the connection's next. */
static void opampsrv_before_take(struct opampsrv_agent *oa, const agent_to_server *in,
				 struct opampsrv_before *b)
{
	struct store_agent *a = &oa->a;

	memset(b, 0, sizeof(*b));
	b->status = a->remote_config_status;
	b->has_hash = a->has_remote_config_hash;
	memcpy(b->hash, a->remote_config_hash, sizeof(b->hash));
	b->healthy = a->healthy;
	b->fingerprint = a->cert_fingerprint;
	a->cert_fingerprint = NULL;
	/* Parsed only when a new health report is to be compared with it. */
	if (in->health && a->health_json)
		b->health = json_loads(a->health_json, 0, NULL);
}

static void opampsrv_before_release(struct opampsrv_before *b)
{
	free(b->fingerprint);
	json_decref(b->health);
}

static void opampsrv_emit(struct opampsrv *s, enum cpevent_kind kind, const uint8_t *uid,
			  const struct cp_identity *id, int64_t now, int64_t serial, int healthy, const char *detail)
{
	struct cpevent ev = {
		.kind = kind,
		.at = now,
		.subject = id ? id->subject : NULL,
		.fingerprint = id ? id->fingerprint : NULL,
		.serial = serial,
		.healthy = healthy,
		.detail = detail,
	};

	if (!s->on_event)
		return;
	memcpy(ev.uid, uid, STORE_UID_LEN);
	s->on_event(&ev, s->event_arg);
}

/* Whether the health reported before had component name, unhealthy. */
static bool opampsrv_was_unhealthy(const json_t *health, const char *name)
{
	json_t *c = json_object_get(json_object_get(health, "component_health_map"), name);

	return c && json_is_false(json_object_get(c, "healthy"));
}

static void opampsrv_events(struct opampsrv *s, const agent_to_server *in, const struct opampsrv_agent *oa,
			    bool known, const struct opampsrv_before *b, const struct cp_identity *id, int64_t now)
{
	const struct store_agent *a = &oa->a;
	const uint8_t *uid = a->uid;

	if (!s->on_event)
		return;
	if (!known)
		opampsrv_emit(s, CPEVENT_FIRST_SEEN, uid, id, now, 0, a->healthy, NULL);
	else if (b->fingerprint && strcmp(b->fingerprint, id->fingerprint) != 0)
		opampsrv_emit(s, CPEVENT_CERT_ROTATED, uid, id, now, 0, a->healthy, b->fingerprint);
	if (in->remote_config_status &&
	    (a->remote_config_status != b->status || a->has_remote_config_hash != b->has_hash ||
	     memcmp(a->remote_config_hash, b->hash, sizeof(b->hash)) != 0)) {
		int64_t serial = a->has_remote_config_hash ? opampsrv_serial_by_hash(s, a->remote_config_hash) : 0;

		if (a->remote_config_status == OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED)
			opampsrv_emit(s, CPEVENT_POLICY_APPLIED, uid, id, now, serial, a->healthy, NULL);
		else if (a->remote_config_status == OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED)
			opampsrv_emit(s, CPEVENT_POLICY_FAILED, uid, id, now, serial, a->healthy, a->last_error);
	}
	if (!in->health)
		return;
	/* The first report of a healthy agent is no change; a first unhealthy one is. */
	if (a->healthy != b->healthy && !(b->healthy == -1 && a->healthy == 1))
		opampsrv_emit(s, CPEVENT_HEALTH_CHANGED, uid, id, now, 0, a->healthy,
			      a->healthy ? NULL : a->last_error);
	for (size_t i = 0; i < in->health->n_component_health_map; i++) {
		const Opamp__Proto__V1__ComponentHealth__ComponentHealthMapEntry *e = in->health->component_health_map[i];

		/* vigild reports each tenant's budget as "budget/NAME", unhealthy when unreachable. */
		if (!e->key || strncmp(e->key, "budget/", 7) != 0 || !e->key[7] || !e->value || e->value->healthy)
			continue;
		if (!opampsrv_was_unhealthy(b->health, e->key))
			opampsrv_emit(s, CPEVENT_TENANT_UNREACHABLE, uid, id, now, 0, a->healthy, e->key + 7);
	}
}

/* ---------------------------------------------------------------------------
 * What the agent is offered. */

/*
 * The serial the agent should run: the higher of its assignment's and its
 * rollout's, leaving out those that FAILED on it; 0 for none.  *ret_offer
 * is what the rollout offers.
 */
static int64_t opampsrv_target(const struct opampsrv *s, const struct opampsrv_agent *oa, int64_t *ret_offer)
{
	int64_t offer = s->rollouts.offer ? s->rollouts.offer(s->rollouts.arg, oa->a.uid) : 0, best = 0;

	if (oa->target > 0 && !store_agent_failed(&oa->a, oa->target))
		best = oa->target;
	if (offer > best && !store_agent_failed(&oa->a, offer))
		best = offer;
	*ret_offer = offer;
	return best;
}

/* ---------------------------------------------------------------------------
 * One message. */

/*
 * A fresh copy of the cached or stored agent, or a new one; *ret_known says
 * which.  The cached copy is used only when seq follows its sequence_num:
 * otherwise another server (or a restart of the agent) may have moved the
 * row on, and the store has the truth.
 */
static int opampsrv_agent_load(struct opampsrv *s, const uint8_t uid[STORE_UID_LEN], uint64_t seq,
			       struct opampsrv_agent **ret, bool *ret_known)
{
	struct opampsrv_agent *cached = opampsrv_cache_find(s, uid), *oa = calloc(1, sizeof(*oa));
	const struct store_agent *c;
	int r;

	if (!oa)
		return -ENOMEM;
	if (cached && seq != cached->a.last_sequence_num + 1) {
		tdelete(cached, &s->agents, opampsrv_agent_cmp);
		s->cache_bytes -= cached->bytes;
		opampsrv_agent_free(cached);
		cached = NULL;
	}
	if (cached) {
		c = &cached->a;
		oa->a = *c;
		oa->a.cert_subject = oa->a.cert_sans = oa->a.cert_serial = oa->a.cert_fingerprint = NULL;
		oa->a.description_json = oa->a.health_json = oa->a.last_error = NULL;
		if ((c->description_json && !(oa->a.description_json = strdup(c->description_json))) ||
		    (c->health_json && !(oa->a.health_json = strdup(c->health_json))) ||
		    (c->last_error && !(oa->a.last_error = strdup(c->last_error))) ||
		    (c->cert_subject && !(oa->a.cert_subject = strdup(c->cert_subject))) ||
		    (c->cert_fingerprint && !(oa->a.cert_fingerprint = strdup(c->cert_fingerprint)))) {
			opampsrv_agent_free(oa);
			return -ENOMEM;
		}
		oa->gen = cached->gen;
		oa->target = cached->target;
		*ret_known = true;
		*ret = oa;
		return 0;
	}
	r = store_agent_get(s->st, uid, &oa->a);
	if (r == -ENOENT) {
		memset(&oa->a, 0, sizeof(oa->a));
		memcpy(oa->a.uid, uid, STORE_UID_LEN);
		oa->a.healthy = -1;
		*ret_known = false;
	} else if (r) {
		free(oa);
		return r;
	} else {
		*ret_known = true;
	}
	oa->gen = 0; /* never s->gen: resolve its target */
	*ret = oa;
	return 0;
}

static int opampsrv_set_text(char **field, const char *value)
{
	char *copy = value ? strdup(value) : NULL;

	if (value && !copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

/*
 * Apply what msg reports to oa->a.  0; -EBADMSG with the reason in why for
 * what the agent got wrong; -ENOMEM.
 */
static int opampsrv_apply(struct opampsrv *s, const agent_to_server *msg, struct opampsrv_agent *oa,
			  const char **why)
{
	struct store_agent *a = &oa->a;
	int r;

	if (msg->agent_description) {
		const Opamp__Proto__V1__AgentDescription *d = msg->agent_description;
		char *json = NULL;

		if (!opampsrv_kvs_ok(d->identifying_attributes, d->n_identifying_attributes) ||
		    !opampsrv_kvs_ok(d->non_identifying_attributes, d->n_non_identifying_attributes)) {
			*why = "agent_description: a string is not UTF-8";
			return -EBADMSG;
		}
		r = opampsrv_description_json(d, &json);
		if (r == -E2BIG) {
			*why = "agent_description: larger than 64 KiB as JSON";
			return -EBADMSG;
		}
		if (r)
			return r;
		if (!a->description_json || strcmp(a->description_json, json) != 0)
			oa->gen = 0; /* resolve its target again */
		free(a->description_json);
		a->description_json = json;
	}
	if (msg->capabilities)
		a->capabilities = msg->capabilities;
	if (msg->health) {
		char *json = NULL;

		if (!opampsrv_health_ok(msg->health)) {
			*why = "health: a string is not UTF-8";
			return -EBADMSG;
		}
		r = opampsrv_dump(opampsrv_health_json(msg->health), &json);
		if (r == -E2BIG) {
			*why = "health: larger than 64 KiB as JSON";
			return -EBADMSG;
		}
		if (r)
			return r;
		free(a->health_json);
		a->health_json = json;
		a->healthy = msg->health->healthy ? 1 : 0;
		if (!msg->health->healthy && msg->health->last_error && *msg->health->last_error) {
			char *e;

			if ((r = opampsrv_error_copy(msg->health->last_error, &e)))
				return r;
			free(a->last_error);
			a->last_error = e;
		}
	}
	if (msg->effective_config) {
		if (configmap_hash(msg->effective_config->config_map, a->effective_hash) != 0) {
			*why = "effective_config: a key appears twice in config_map";
			return -EBADMSG;
		}
		a->has_effective_hash = true;
	}
	if (msg->remote_config_status) {
		const Opamp__Proto__V1__RemoteConfigStatus *rcs = msg->remote_config_status;

		if (!opampsrv_str_ok(rcs->error_message)) {
			*why = "remote_config_status: error_message is not UTF-8";
			return -EBADMSG;
		}
		a->remote_config_status = (int)rcs->status;
		a->has_remote_config_hash = rcs->last_remote_config_hash.len == CONFIGMAP_HASH_LEN;
		if (a->has_remote_config_hash)
			memcpy(a->remote_config_hash, rcs->last_remote_config_hash.data, CONFIGMAP_HASH_LEN);
		if (a->has_remote_config_hash &&
		    (rcs->status == OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED ||
		     rcs->status == OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED) &&
		    !opampsrv_serial_by_hash(s, a->remote_config_hash) && (r = opampsrv_refresh(s)))
			return r;
		if (rcs->status == OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED) {
			a->applied_serial = a->has_remote_config_hash ? opampsrv_serial_by_hash(s, a->remote_config_hash) : 0;
			if ((r = opampsrv_set_text(&a->last_error, NULL)))
				return r;
		} else if (rcs->status == OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED) {
			char *e;

			if (a->has_remote_config_hash)
				store_agent_add_failed(a, opampsrv_serial_by_hash(s, a->remote_config_hash));

			if ((r = opampsrv_error_copy(rcs->error_message && *rcs->error_message ? rcs->error_message
												: "FAILED (no reason given)",
						     &e)))
				return r;
			free(a->last_error);
			a->last_error = e;
		}
	}
	a->disconnected = msg->agent_disconnect != NULL;
	return 0;
}

static int opampsrv_set_identity(struct store_agent *a, const struct cp_identity *id)
{
	int r;

	if ((r = opampsrv_set_text(&a->cert_subject, id->subject)) || (r = opampsrv_set_text(&a->cert_sans, id->sans)) ||
	    (r = opampsrv_set_text(&a->cert_serial, id->serial)) ||
	    (r = opampsrv_set_text(&a->cert_fingerprint, id->fingerprint)))
		return r;
	return 0;
}

/*
 * Whether msg is a full report: the description, and each report its
 * capabilities promise (opamp-go's server asks an agent it lost track of
 * for its full state only when one of these is missing).
 */
static bool opampsrv_full_report(const agent_to_server *msg)
{
	uint64_t caps = msg->capabilities;

	if (!msg->agent_description)
		return false;
	if ((caps & OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsEffectiveConfig) &&
	    !msg->effective_config)
		return false;
	if ((caps & OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsRemoteConfig) &&
	    !msg->remote_config_status)
		return false;
	if ((caps & OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsHealth) && !msg->health)
		return false;
	return true;
}

int opampsrv_handle(struct opampsrv *s, const struct cp_identity *id, const uint8_t *msg, size_t len, int64_t now,
		    struct opampsrv_reply *ret)
{
	server_to_agent out = OPAMP__PROTO__V1__SERVER_TO_AGENT__INIT;
	Opamp__Proto__V1__AgentRemoteConfig rc = OPAMP__PROTO__V1__AGENT_REMOTE_CONFIG__INIT;
	struct opampsrv_map map;
	struct opampsrv_offer csr_offer = { 0 };
	struct opampsrv_scan sc = { 0 };
	struct opampsrv_agent *oa = NULL;
	struct opampsrv_before before = { .healthy = -1 };
	agent_to_server *in = NULL;
	int64_t target, offer = 0;
	const char *why = NULL;
	bool known = false, full_report;
	char why_buf[200];
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->http_status = 200;
	if (!id || id->role != CP_ROLE_AGENT)
		return opampsrv_bad_request(id, NULL, "not an agent certificate", ret);
	if (len > OPAMPSRV_MAX_MESSAGE) {
		snprintf(why_buf, sizeof(why_buf), "message of %zu bytes, over the limit of %u", len,
			 OPAMPSRV_MAX_MESSAGE);
		return opampsrv_bad_request(id, NULL, why_buf, ret);
	}
	r = opampsrv_walk(&sc, &opamp__proto__v1__agent_to_server__descriptor, msg, len, 0);
	if (r)
		return opampsrv_bad_request(id, NULL,
					    r == -ELOOP  ? "AgentToServer nested deeper than 16 messages"
					    : r == -E2BIG ? "AgentToServer with more than 65536 elements"
							  : "not a protobuf message (truncated or malformed)",
					    ret);
	in = opamp__proto__v1__agent_to_server__unpack(NULL, len, msg);
	if (!in)
		return opampsrv_bad_request(id, NULL, "not an AgentToServer message", ret);
	if (in->instance_uid.len != STORE_UID_LEN) {
		snprintf(why_buf, sizeof(why_buf), "instance_uid of %zu bytes (must be %d)", in->instance_uid.len,
			 STORE_UID_LEN);
		r = opampsrv_bad_request(id, NULL, why_buf, ret);
		goto out;
	}
	r = opampsrv_load(s);
	if (r)
		goto out;
	r = opampsrv_agent_load(s, in->instance_uid.data, in->sequence_num, &oa, &known);
	if (r)
		goto out;
	if (known && oa->a.cert_subject && strcmp(oa->a.cert_subject, id->subject) != 0) {
		snprintf(why_buf, sizeof(why_buf), "instance_uid belongs to another certificate (%.100s)",
			 oa->a.cert_subject);
		r = opampsrv_bad_request(id, &in->instance_uid, why_buf, ret);
		if (r == 0)
			opampsrv_emit(s, CPEVENT_IDENTITY_REFUSED, in->instance_uid.data, id, now, 0, -1,
				      oa->a.cert_subject);
		goto out;
	}
	opampsrv_before_take(oa, in, &before);
	full_report = opampsrv_full_report(in);
	/* An unknown agent that says nothing of itself leaves no row (e.g. a last agent_disconnect). */
	if (!known && !full_report && in->agent_disconnect)
		goto reply;
	/*
	 * Status compression: a gap in sequence_num, or an agent we have no
	 * state for that did not send it, must report its full state.
	 */
	if (!in->agent_disconnect && (known ? in->sequence_num != oa->a.last_sequence_num + 1 : !full_report))
		out.flags |= OPAMP__PROTO__V1__SERVER_TO_AGENT_FLAGS__ServerToAgentFlags_ReportFullState;

	r = opampsrv_apply(s, in, oa, &why);
	if (r == -EBADMSG) {
		r = opampsrv_bad_request(id, &in->instance_uid, why, ret);
		goto out;
	}
	if (r)
		goto out;
	if ((r = opampsrv_set_identity(&oa->a, id)))
		goto out;
	if (!known)
		oa->a.first_seen = now;
	oa->a.last_seen = now;
	oa->a.last_sequence_num = in->sequence_num;
	if (oa->gen != s->gen) {
		oa->target = opampsrv_resolve(s, oa->a.description_json);
		oa->gen = s->gen;
	}
	r = store_agent_put(s->st, &oa->a);
	if (r == -EPERM) {
		/* Another server bound this uid to another certificate since we read it. */
		struct store_agent owner;
		bool have = store_agent_get(s->st, in->instance_uid.data, &owner) == 0;
		const char *who = have && owner.cert_subject ? owner.cert_subject : "unknown";

		snprintf(why_buf, sizeof(why_buf), "instance_uid belongs to another certificate (%.100s)", who);
		r = opampsrv_bad_request(id, &in->instance_uid, why_buf, ret);
		if (r == 0)
			opampsrv_emit(s, CPEVENT_IDENTITY_REFUSED, in->instance_uid.data, id, now, 0, -1, who);
		if (have)
			store_agent_release(&owner);
		goto out;
	}
	if (r)
		goto out;
	opampsrv_events(s, in, oa, known, &before, id, now);

	/* Remote config: the policy it should run, when the agent reports another hash. */
	target = opampsrv_target(s, oa, &offer);
	if (target > 0 && !in->agent_disconnect &&
	    (oa->a.capabilities & OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_AcceptsRemoteConfig) &&
	    !(out.flags && !oa->a.has_remote_config_hash)) {
		const struct opampsrv_policy *p = opampsrv_policy_blobs(s, target);

		if (p && p->yaml &&
		    (!oa->a.has_remote_config_hash || memcmp(oa->a.remote_config_hash, p->hash, CONFIGMAP_HASH_LEN) != 0)) {
			opampsrv_map_init(&map, p->yaml, p->yaml_len, p->sig, p->sig_len);
			rc.config = &map.map;
			rc.config_hash.data = (uint8_t *)(uintptr_t)p->hash;
			rc.config_hash.len = CONFIGMAP_HASH_LEN;
			out.remote_config = &rc;
			if (target == offer && s->rollouts.sent)
				s->rollouts.sent(s->rollouts.arg, oa->a.uid, target, now);
		}
	}
	opampsrv_cache_put(s, oa);
	oa = NULL;
	if (!in->agent_disconnect) {
		if (opampsrv_csr_request(in)) {
			r = opampsrv_csr(s, id, opampsrv_csr_request(in), now, &out, &csr_offer, ret);
			if (r)
				goto out;
			if (csr_offer.issued.pem) {
				char detail[96];

				snprintf(detail, sizeof(detail), "issued %s", csr_offer.issued.fingerprint);
				opampsrv_emit(s, CPEVENT_CERT_ROTATED, in->instance_uid.data, id, now, 0, -1, detail);
			}
		}
		opampsrv_csr_status(id, in, ret);
	}
reply:
	out.instance_uid = in->instance_uid;
	out.capabilities = opampsrv_capabilities(s);
	r = opampsrv_pack(&out, ret);
out:
	free(csr_offer.issued.pem);
	opampsrv_before_release(&before);
	if (oa)
		opampsrv_agent_free(oa);
	opamp__proto__v1__agent_to_server__free_unpacked(in, NULL);
	if (r) {
		free(ret->body);
		ret->body = NULL;
		ret->len = 0;
		if (!ret->log[0])
			snprintf(ret->log, sizeof(ret->log), "opamp: message from %.120s: %s", opampsrv_who(id),
				 strerror(-r));
	}
	return r;
}

/* ---------------------------------------------------------------------------
 * Life cycle. */

int opampsrv_new(struct store *st, struct opampsrv **ret)
{
	struct opampsrv *s;

	if (!st || !ret)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->st = st;
	s->gen = 1;
	*ret = s;
	return 0;
}

void opampsrv_set_signer(struct opampsrv *s, const struct csrsign *cs)
{
	if (s)
		s->signer = cs;
}

void opampsrv_set_events(struct opampsrv *s, cpevent_fn fn, void *arg)
{
	if (!s)
		return;
	s->on_event = fn;
	s->event_arg = arg;
}

void opampsrv_set_rollouts(struct opampsrv *s, const struct opampsrv_rollouts *r)
{
	if (!s)
		return;
	if (r)
		s->rollouts = *r;
	else
		memset(&s->rollouts, 0, sizeof(s->rollouts));
}

void opampsrv_invalidate(struct opampsrv *s)
{
	if (!s)
		return;
	s->loaded = false;
	s->gen++;
}

void opampsrv_free(struct opampsrv *s)
{
	if (!s)
		return;
	opampsrv_unload(s);
	opampsrv_cache_clear(s);
	free(s);
}
