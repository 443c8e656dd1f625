/*
 * opampcli.c - build AgentToServer, parse ServerToAgent (see opampcli.h).
 * Runs in the uplink.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "configmap.h"
#include "opamp.pb-c.h"
#include "opampcli.h"

_Static_assert(CONFIG_HASH_LEN == CONFIGMAP_HASH_LEN, "privsep.h and configmap.h hash lengths");

typedef Opamp__Proto__V1__KeyValue KeyValue;
typedef Opamp__Proto__V1__AnyValue AnyValue;
typedef Opamp__Proto__V1__ComponentHealth Health;
typedef Opamp__Proto__V1__ComponentHealth__ComponentHealthMapEntry HealthEntry;

#define MAX_ATTRS (VIGILD_MAX_LABELS_WIRE + 4)
#define VIGILD_MAX_LABELS_WIRE 16
#define MAX_COMPONENTS (HEALTH_MAX_TENANTS + 2)

void opampcli_init(struct opampcli *c)
{
	c->seq = 0;
	c->dirty = OPAMPCLI_ALL;
	c->inflight = 0;
}

void opampcli_mark(struct opampcli *c, unsigned parts)
{
	c->dirty |= parts;
}

void opampcli_sent(struct opampcli *c, bool ok)
{
	if (ok)
		c->dirty &= ~c->inflight;
	c->inflight = 0;
}

/* Everything one message points to, on the caller's stack. */
struct build {
	KeyValue kv[MAX_ATTRS];
	AnyValue av[MAX_ATTRS];
	KeyValue *id_attrs[2], *other_attrs[MAX_ATTRS];
	char label_keys[VIGILD_MAX_LABELS_WIRE][64];
	Opamp__Proto__V1__AgentDescription desc;
	Health health, comp[MAX_COMPONENTS];
	HealthEntry entries[MAX_COMPONENTS];
	HealthEntry *entry_ptrs[MAX_COMPONENTS];
	char comp_names[MAX_COMPONENTS][80];
	char comp_status[MAX_COMPONENTS][160];
	char top_status[96];
	Opamp__Proto__V1__EffectiveConfig eff;
	Opamp__Proto__V1__AgentConfigMap eff_map;
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry eff_entry;
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry *eff_entries[1];
	Opamp__Proto__V1__AgentConfigFile eff_file;
	Opamp__Proto__V1__RemoteConfigStatus rcs;
	Opamp__Proto__V1__AgentDisconnect disc;
	Opamp__Proto__V1__ConnectionSettingsRequest csr_req;
	Opamp__Proto__V1__OpAMPConnectionSettingsRequest csr_opamp;
	Opamp__Proto__V1__CertificateRequest csr;
	Opamp__Proto__V1__ConnectionSettingsStatus cs;
	size_t nkv;
};

static KeyValue *attr(struct build *b, const char *key, const char *value)
{
	KeyValue *kv = &b->kv[b->nkv];
	AnyValue *av = &b->av[b->nkv];

	opamp__proto__v1__key_value__init(kv);
	opamp__proto__v1__any_value__init(av);
	av->value_case = OPAMP__PROTO__V1__ANY_VALUE__VALUE_STRING_VALUE;
	av->string_value = (char *)(uintptr_t)value;
	kv->key = (char *)(uintptr_t)key;
	kv->value = av;
	b->nkv++;
	return kv;
}

static void describe(struct build *b, const struct opampcli_report *r)
{
	const char *l = r->labels;
	size_t n = 0;

	opamp__proto__v1__agent_description__init(&b->desc);
	b->id_attrs[0] = attr(b, "service.name", "vigild");
	b->id_attrs[1] = attr(b, "host.name", r->hostname);
	b->desc.identifying_attributes = b->id_attrs;
	b->desc.n_identifying_attributes = 2;
	b->other_attrs[n++] = attr(b, "service.version", VIGIL_VERSION);
	b->other_attrs[n++] = attr(b, "os.type", "linux");
	for (unsigned i = 0; l && i < r->nlabels && i < VIGILD_MAX_LABELS_WIRE; i++) {
		const char *eq = strchr(l, '=');

		if (eq && (size_t)(eq - l) < sizeof(b->label_keys[0])) {
			snprintf(b->label_keys[i], sizeof(b->label_keys[i]), "%.*s", (int)(eq - l), l);
			b->other_attrs[n++] = attr(b, b->label_keys[i], eq + 1);
		}
		l += strlen(l) + 1;
	}
	b->desc.non_identifying_attributes = b->other_attrs;
	b->desc.n_non_identifying_attributes = n;
}

static const char *tenant_state(uint32_t s)
{
	switch (s) {
	case TENANT_OK: return "within-budget";
	case TENANT_THROTTLED: return "throttled";
	case TENANT_OVER: return "over-budget";
	default: return "measuring";
	}
}

static const char *source_name(uint32_t s)
{
	return s == POLICY_SRC_REMOTE ? "signed, from the control plane" :
	       s == POLICY_SRC_LOCAL ? "local --policy" : "default";
}

static void component(struct build *b, size_t i, const char *name, bool healthy, const char *status,
		      const char *error, uint64_t start_ns)
{
	Health *h = &b->comp[i];

	opamp__proto__v1__component_health__init(h);
	h->healthy = healthy;
	h->start_time_unix_nano = start_ns;
	snprintf(b->comp_names[i], sizeof(b->comp_names[i]), "%s", name);
	snprintf(b->comp_status[i], sizeof(b->comp_status[i]), "%s", status);
	h->status = b->comp_status[i];
	if (error)
		h->last_error = (char *)(uintptr_t)error;
	opamp__proto__v1__component_health__component_health_map_entry__init(&b->entries[i]);
	b->entries[i].key = b->comp_names[i];
	b->entries[i].value = h;
	b->entry_ptrs[i] = &b->entries[i];
}

static void health(struct build *b, const struct opampcli_report *r)
{
	const struct msg_agent_health *h = r->health;
	const struct msg_policy_status *p = r->policy;
	bool sampling = h && h->sampling;
	bool refused = p && p->status == REMOTE_FAILED;
	size_t n = 0;
	char status[160];

	opamp__proto__v1__component_health__init(&b->health);
	b->health.healthy = sampling;
	b->health.start_time_unix_nano = r->start_ns;
	snprintf(b->top_status, sizeof(b->top_status), "%s", !h ? "starting" : sampling ? "sampling"
				  : "not sampling");
	b->health.status = b->top_status;
	if (refused)
		b->health.last_error = (char *)(uintptr_t)p->reason;
	snprintf(status, sizeof(status), h ? "%" PRIu64 " samples" : "no figures yet",
		 h ? h->samples : 0);
	component(b, n++, "sampling", sampling, status, NULL, r->start_ns);
	if (p) {
		if (p->serial)
			snprintf(status, sizeof(status), "serial %" PRIu64 " (%s)%s", p->serial,
				 source_name(p->source), refused ? "; the last one sent was refused" : "");
		else
			snprintf(status, sizeof(status), "%s%s", source_name(p->source),
				 refused ? "; the last one sent was refused" : "");
		component(b, n++, "policy", !refused, status, refused ? p->reason : NULL, r->start_ns);
	}
	for (uint32_t i = 0; h && i < h->nlisted && i < HEALTH_MAX_TENANTS; i++) {
		const struct health_tenant *t = &h->tenants[i];
		char name[80];

		snprintf(name, sizeof(name), "budget/%.64s", t->name);
		snprintf(status, sizeof(status), "%s hz=%u overhead=%.4f%%", tenant_state(t->state),
			 t->hz, (double)t->overhead_ppm / 1e4);
		component(b, n++, name, t->state != TENANT_OVER, status, NULL, r->start_ns);
	}
	b->health.component_health_map = b->entry_ptrs;
	b->health.n_component_health_map = n;
}

int opampcli_build(struct opampcli *c, const struct opampcli_report *r, bool disconnect,
		   uint8_t **ret, size_t *ret_len)
{
	Opamp__Proto__V1__AgentToServer m = OPAMP__PROTO__V1__AGENT_TO_SERVER__INIT;
	struct build *b = calloc(1, sizeof(*b));
	unsigned parts = disconnect ? 0 : c->dirty;
	uint8_t *out;
	size_t len;

	if (!b)
		return -ENOMEM;
	m.instance_uid.data = (uint8_t *)(uintptr_t)r->uid;
	m.instance_uid.len = 16;
	m.sequence_num = c->seq;
	m.capabilities = OPAMPCLI_CAPABILITIES;
	if (disconnect) {
		opamp__proto__v1__agent_disconnect__init(&b->disc);
		m.agent_disconnect = &b->disc;
	}
	if (parts & OPAMPCLI_DESC) {
		describe(b, r);
		m.agent_description = &b->desc;
	}
	if (parts & OPAMPCLI_HEALTH) {
		health(b, r);
		m.health = &b->health;
	}
	if ((parts & OPAMPCLI_EFFECTIVE) && r->policy) {
		opamp__proto__v1__effective_config__init(&b->eff);
		opamp__proto__v1__agent_config_map__init(&b->eff_map);
		opamp__proto__v1__agent_config_map__config_map_entry__init(&b->eff_entry);
		opamp__proto__v1__agent_config_file__init(&b->eff_file);
		b->eff_file.body.data = (uint8_t *)(uintptr_t)r->yaml;
		b->eff_file.body.len = r->yaml ? r->yaml_len : 0;
		b->eff_file.content_type = CONFIGMAP_POLICY_TYPE;
		b->eff_entry.key = CONFIGMAP_POLICY;
		b->eff_entry.value = &b->eff_file;
		b->eff_entries[0] = &b->eff_entry;
		b->eff_map.config_map = b->eff_entries;
		b->eff_map.n_config_map = 1;
		b->eff.config_map = &b->eff_map;
		m.effective_config = &b->eff;
	} else {
		parts &= ~OPAMPCLI_EFFECTIVE;
	}
	if ((parts & OPAMPCLI_REMOTE_STATUS) && r->policy) {
		/*
		 * Always part of the full state, as ReportsRemoteConfig promises:
		 * UNSET with no hash until a remote config has been received.
		 */
		opamp__proto__v1__remote_config_status__init(&b->rcs);
		if (r->policy->status != REMOTE_NONE) {
			b->rcs.last_remote_config_hash.data = (uint8_t *)(uintptr_t)r->policy->hash;
			b->rcs.last_remote_config_hash.len = CONFIG_HASH_LEN;
		}
		b->rcs.status = r->policy->status == REMOTE_APPLIED
			? OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED
			: r->policy->status == REMOTE_FAILED
			? OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED
			: OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_UNSET;
		if (r->policy->status == REMOTE_FAILED)
			b->rcs.error_message = (char *)(uintptr_t)r->policy->reason;
		m.remote_config_status = &b->rcs;
	} else {
		parts &= ~OPAMPCLI_REMOTE_STATUS; /* not known yet: still pending */
	}
	if (!disconnect && r->csr) {
		opamp__proto__v1__connection_settings_request__init(&b->csr_req);
		opamp__proto__v1__op_ampconnection_settings_request__init(&b->csr_opamp);
		opamp__proto__v1__certificate_request__init(&b->csr);
		b->csr.csr.data = (uint8_t *)(uintptr_t)r->csr;
		b->csr.csr.len = r->csr_len;
		b->csr_opamp.certificate_request = &b->csr;
		b->csr_req.opamp = &b->csr_opamp;
		m.connection_settings_request = &b->csr_req;
	}
	if (!disconnect && r->cs_status != OPAMPCLI_CS_UNSET) {
		opamp__proto__v1__connection_settings_status__init(&b->cs);
		b->cs.status = (Opamp__Proto__V1__ConnectionSettingsStatuses)r->cs_status;
		if (r->cs_hash) {
			b->cs.last_connection_settings_hash.data = (uint8_t *)(uintptr_t)r->cs_hash;
			b->cs.last_connection_settings_hash.len = 32;
		}
		if (r->cs_error)
			b->cs.error_message = (char *)(uintptr_t)r->cs_error;
		m.connection_settings_status = &b->cs;
	}
	len = opamp__proto__v1__agent_to_server__get_packed_size(&m);
	out = malloc(len ? len : 1);
	if (!out) {
		free(b);
		return -ENOMEM;
	}
	opamp__proto__v1__agent_to_server__pack(&m, out);
	free(b);
	c->seq++;
	c->inflight = parts;
	*ret = out;
	*ret_len = len;
	return 0;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len)
{
	uint8_t *d = malloc(len ? len : 1);

	if (d && len)
		memcpy(d, p, len);
	return d;
}

/*
 * protobuf-c's allocations while it decodes one reply, counted: a few
 * bytes on the wire can make a structure of tens of bytes (an empty map
 * entry is 2 bytes, its struct 40 and a pointer), so the body's bound
 * alone does not bound memory.  Past OPAMPCLI_DECODE_BUDGET the decoder
 * is refused memory and gives up.
 */
struct decode_budget {
	size_t used;
	bool exceeded;
};

static void *budget_alloc(void *ctx, size_t size)
{
	struct decode_budget *b = ctx;
	size_t *p;

	if (size > OPAMPCLI_DECODE_BUDGET || b->used + size + sizeof(size_t) > OPAMPCLI_DECODE_BUDGET) {
		b->exceeded = true;
		return NULL;
	}
	p = malloc(size + sizeof(size_t));
	if (!p)
		return NULL;
	b->used += size + sizeof(size_t);
	*p = size;
	return p + 1;
}

static void budget_free(void *ctx, void *ptr)
{
	struct decode_budget *b = ctx;
	size_t *p = ptr;

	if (!p)
		return;
	b->used -= p[-1] + sizeof(size_t);
	free(p - 1);
}

int opampcli_parse(const uint8_t *buf, size_t len, struct opampcli_reply *ret)
{
	Opamp__Proto__V1__ServerToAgent *m;
	struct opampcli_reply r = { 0 };
	struct decode_budget budget = { 0 };
	ProtobufCAllocator alloc = { .alloc = budget_alloc, .free = budget_free,
				     .allocator_data = &budget };
	int rc = 0;

	m = opamp__proto__v1__server_to_agent__unpack(&alloc, len, buf);
	if (!m)
		return budget.exceeded ? -E2BIG : -EBADMSG;
	r.flags = m->flags;
	if (m->error_response) {
		r.error = true;
		r.error_type = m->error_response->type;
		snprintf(r.error_message, sizeof(r.error_message), "%s",
			 m->error_response->error_message ? m->error_response->error_message : "");
		if (m->error_response->details_case ==
			    OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE__DETAILS_RETRY_INFO &&
		    m->error_response->retry_info)
			r.retry_after_ns = m->error_response->retry_info->retry_after_nanoseconds;
	}
	if (m->remote_config) {
		const Opamp__Proto__V1__AgentConfigMap *cm = m->remote_config->config;
		const uint8_t *y, *s;
		size_t yl, sl;

		r.remote_config = true;
		/* The server's hash, else the one configmap.h defines (none for a non-map). */
		if (m->remote_config->config_hash.len == CONFIG_HASH_LEN)
			memcpy(r.hash, m->remote_config->config_hash.data, CONFIG_HASH_LEN);
		else if (configmap_hash(cm, r.hash) == -ENOMEM)
			rc = -ENOMEM;
		if (!rc) {
			r.files_err = configmap_policy(cm, &y, &yl, &s, &sl);
			if (!r.files_err) {
				r.yaml = dup_bytes(y, yl);
				r.sig = dup_bytes(s, sl);
				r.yaml_len = yl;
				r.sig_len = sl;
				if (!r.yaml || !r.sig)
					rc = -ENOMEM;
			}
		}
	}
	r.capabilities = m->capabilities;
	if (!rc && m->connection_settings && m->connection_settings->opamp &&
	    m->connection_settings->opamp->certificate && m->connection_settings->opamp->certificate->cert.len &&
	    m->connection_settings->opamp->certificate->cert.len <= OPAMPCLI_MAX_CERT) {
		const ProtobufCBinaryData *c = &m->connection_settings->opamp->certificate->cert;

		r.cert_offer = true;
		if (m->connection_settings->hash.len == sizeof(r.cert_hash))
			memcpy(r.cert_hash, m->connection_settings->hash.data, sizeof(r.cert_hash));
		else
			SHA256(c->data, c->len, r.cert_hash);
		r.cert = dup_bytes(c->data, c->len);
		r.cert_len = c->len;
		if (!r.cert)
			rc = -ENOMEM;
	}
	opamp__proto__v1__server_to_agent__free_unpacked(m, &alloc);
	if (rc) {
		opampcli_reply_release(&r);
		return rc;
	}
	*ret = r;
	return 0;
}

void opampcli_reply_release(struct opampcli_reply *r)
{
	if (!r)
		return;
	free(r->yaml);
	free(r->sig);
	free(r->cert);
	r->yaml = r->sig = r->cert = NULL;
}
