/*
 * test_opampcli.c - the agent's OpAMP messages, decoded with protobuf-c
 * as a server would: full state on the first message and after
 * ReportFullState, only changes otherwise, sequence numbers, parts kept
 * pending when a message did not reach the server, agent_disconnect; and
 * replies: remote config (hash given or computed, extra files refused),
 * error responses with retry_info, flags, garbage; the CSR flow's request
 * and ConnectionSettingsStatus in a message, and the certificate offered
 * in a reply (hash given or computed, oversize ignored).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/sha.h>

#include "cfghash.h"
#include "configmap.h"
#include "opamp.pb-c.h"
#include "opampcli.h"

static const char labels[] = "env=prod\0vigil.tenant-set=web\0";

static void fill(struct opampcli_report *r, struct msg_policy_status *ps,
		 struct msg_agent_health *h)
{
	memset(r, 0, sizeof(*r));
	memset(ps, 0, sizeof(*ps));
	memset(h, 0, sizeof(*h));
	memset(r->uid, 7, 16);
	r->hostname = "host1";
	r->labels = labels;
	r->nlabels = 2;
	r->start_ns = 1;
	ps->source = POLICY_SRC_REMOTE;
	ps->serial = 4;
	ps->status = REMOTE_APPLIED;
	memset(ps->hash, 0x5a, sizeof(ps->hash));
	r->policy = ps;
	r->yaml = "version: 1\nserial: 4\n";
	r->yaml_len = strlen(r->yaml);
	h->sampling = 1;
	h->ntenants = h->nlisted = 2;
	strcpy(h->tenants[0].name, "default");
	strcpy(h->tenants[1].name, "web");
	h->tenants[1].state = TENANT_OVER;
	r->health = h;
}

static Opamp__Proto__V1__AgentToServer *build(struct opampcli *c, const struct opampcli_report *r,
					       bool disconnect)
{
	Opamp__Proto__V1__AgentToServer *m;
	uint8_t *buf;
	size_t len;

	assert_int_equal(opampcli_build(c, r, disconnect, &buf, &len), 0);
	m = opamp__proto__v1__agent_to_server__unpack(NULL, len, buf);
	free(buf);
	assert_non_null(m);
	assert_int_equal(m->instance_uid.len, 16);
	assert_int_equal(m->capabilities, OPAMPCLI_CAPABILITIES);
	return m;
}

static const char *attr(Opamp__Proto__V1__KeyValue **kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i]->key, key))
			return kv[i]->value->string_value;
	return NULL;
}

static void test_full_then_changes(void **st)
{
	struct opampcli c;
	struct opampcli_report r;
	struct msg_policy_status ps;
	struct msg_agent_health h;
	Opamp__Proto__V1__AgentToServer *m;

	fill(&r, &ps, &h);
	opampcli_init(&c);
	m = build(&c, &r, false);
	assert_int_equal(m->sequence_num, 0);
	assert_non_null(m->agent_description);
	assert_string_equal(attr(m->agent_description->identifying_attributes,
				 m->agent_description->n_identifying_attributes, "service.name"), "vigild");
	assert_string_equal(attr(m->agent_description->identifying_attributes,
				 m->agent_description->n_identifying_attributes, "host.name"), "host1");
	assert_string_equal(attr(m->agent_description->non_identifying_attributes,
				 m->agent_description->n_non_identifying_attributes, "env"), "prod");
	assert_string_equal(attr(m->agent_description->non_identifying_attributes,
				 m->agent_description->n_non_identifying_attributes,
				 "vigil.tenant-set"), "web");
	assert_non_null(m->health);
	assert_true(m->health->healthy);
	assert_int_equal(m->health->n_component_health_map, 4); /* sampling, policy, 2 tenants */
	assert_non_null(m->effective_config);
	assert_int_equal(m->effective_config->config_map->n_config_map, 1);
	assert_string_equal(m->effective_config->config_map->config_map[0]->key, "policy.yaml");
	assert_non_null(m->remote_config_status);
	assert_int_equal(m->remote_config_status->status,
			 OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED);
	assert_int_equal(m->remote_config_status->last_remote_config_hash.len, 32);
	opamp__proto__v1__agent_to_server__free_unpacked(m, NULL);

	/* before any remote config: UNSET, no hash (the full state still has it) */
	ps.status = REMOTE_NONE;
	opampcli_init(&c);
	m = build(&c, &r, false);
	assert_non_null(m->remote_config_status);
	assert_int_equal(m->remote_config_status->status,
			 OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_UNSET);
	assert_int_equal(m->remote_config_status->last_remote_config_hash.len, 0);
	opamp__proto__v1__agent_to_server__free_unpacked(m, NULL);
	ps.status = REMOTE_APPLIED;
	c.seq = 1;

	/* it did not reach the server: everything is still pending */
	opampcli_sent(&c, false);
	m = build(&c, &r, false);
	assert_int_equal(m->sequence_num, 1);
	assert_non_null(m->agent_description);
	assert_non_null(m->effective_config);
	opamp__proto__v1__agent_to_server__free_unpacked(m, NULL);
	opampcli_sent(&c, true);

	/* nothing changed: a bare poll */
	m = build(&c, &r, false);
	assert_int_equal(m->sequence_num, 2);
	assert_null(m->agent_description);
	assert_null(m->health);
	assert_null(m->effective_config);
	assert_null(m->remote_config_status);
	opamp__proto__v1__agent_to_server__free_unpacked(m, NULL);
	opampcli_sent(&c, true);

	/* a refused policy: only status and health */
	ps.status = REMOTE_FAILED;
	strcpy(ps.reason, "untrusted: no chain");
	opampcli_mark(&c, OPAMPCLI_REMOTE_STATUS | OPAMPCLI_HEALTH);
	m = build(&c, &r, false);
	assert_null(m->agent_description);
	assert_null(m->effective_config);
	assert_int_equal(m->remote_config_status->status,
			 OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED);
	assert_string_equal(m->remote_config_status->error_message, "untrusted: no chain");
	assert_string_equal(m->health->last_error, "untrusted: no chain");
	opamp__proto__v1__agent_to_server__free_unpacked(m, NULL);
	opampcli_sent(&c, true);

	/* ReportFullState: everything again */
	opampcli_mark(&c, OPAMPCLI_ALL);
	m = build(&c, &r, false);
	assert_non_null(m->agent_description);
	assert_non_null(m->health);
	assert_non_null(m->effective_config);
	assert_non_null(m->remote_config_status);
	opamp__proto__v1__agent_to_server__free_unpacked(m, NULL);
	opampcli_sent(&c, true);

	/* the last message */
	m = build(&c, &r, true);
	assert_non_null(m->agent_disconnect);
	assert_int_equal(m->sequence_num, 5);
	opamp__proto__v1__agent_to_server__free_unpacked(m, NULL);
}

static uint8_t *pack_reply(Opamp__Proto__V1__ServerToAgent *s, size_t *len)
{
	uint8_t *buf;

	*len = opamp__proto__v1__server_to_agent__get_packed_size(s);
	buf = malloc(*len + 1);
	opamp__proto__v1__server_to_agent__pack(s, buf);
	return buf;
}

static void test_replies(void **st)
{
	Opamp__Proto__V1__ServerToAgent s;
	Opamp__Proto__V1__AgentRemoteConfig rc;
	Opamp__Proto__V1__AgentConfigMap map;
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry e[3], *ep[3] = { &e[0], &e[1], &e[2] };
	Opamp__Proto__V1__AgentConfigFile f[3];
	Opamp__Proto__V1__ServerErrorResponse er;
	Opamp__Proto__V1__RetryInfo ri;
	struct opampcli_reply r;
	uint8_t want[32], *buf;
	size_t len;
	char k0[] = "policy.yaml.sig", k1[] = "policy.yaml", k2[] = "extra";
	char t0[] = "application/pkcs7-signature", t1[] = "text/yaml";

	opamp__proto__v1__server_to_agent__init(&s);
	opamp__proto__v1__agent_remote_config__init(&rc);
	opamp__proto__v1__agent_config_map__init(&map);
	opamp__proto__v1__server_error_response__init(&er);
	opamp__proto__v1__retry_info__init(&ri);
	for (int i = 0; i < 3; i++) {
		opamp__proto__v1__agent_config_map__config_map_entry__init(&e[i]);
		opamp__proto__v1__agent_config_file__init(&f[i]);
		e[i].value = &f[i];
	}
	e[0].key = k0;
	f[0].content_type = t0;
	f[0].body.data = (uint8_t *)"SIG";
	f[0].body.len = 3;
	e[1].key = k1;
	f[1].content_type = t1;
	f[1].body.data = (uint8_t *)"version: 1\n";
	f[1].body.len = 11;
	e[2].key = k2;
	f[2].content_type = t1;
	map.config_map = ep;
	map.n_config_map = 2;
	rc.config = &map;
	s.remote_config = &rc;
	s.flags = 1;
	/* no config_hash from the server: computed, as configmap.h defines it */
	buf = pack_reply(&s, &len);
	assert_int_equal(opampcli_parse(buf, len, &r), 0);
	free(buf);
	assert_true(r.remote_config);
	assert_int_equal(r.files_err, 0);
	assert_int_equal(r.flags, 1);
	assert_int_equal(r.yaml_len, 11);
	assert_memory_equal(r.yaml, "version: 1\n", 11);
	assert_int_equal(r.sig_len, 3);
	assert_int_equal(cfghash_policy("version: 1\n", 11, "SIG", 3, want), 0);
	assert_memory_equal(r.hash, want, 32);
	assert_int_equal(configmap_hash(&map, want), 0);
	assert_memory_equal(r.hash, want, 32);
	/* the agent's hash is vigil-cp's (control-plane/configmap.c) */
	{
		uint8_t cp[CONFIGMAP_HASH_LEN];
		const uint8_t *y, *sg;
		size_t yl, sl;

		assert_int_equal(configmap_hash(&map, cp), 0);
		assert_memory_equal(cp, want, 32);
		assert_int_equal(configmap_policy(&map, &y, &yl, &sg, &sl), 0);
		assert_int_equal(yl, 11);
		assert_int_equal(sl, 3);
	}
	opampcli_reply_release(&r);
	/* a third file: refused as a whole */
	map.n_config_map = 3;
	buf = pack_reply(&s, &len);
	assert_int_equal(opampcli_parse(buf, len, &r), 0);
	free(buf);
	assert_int_equal(r.files_err, -EBADMSG);
	assert_null(r.yaml);
	opampcli_reply_release(&r);
	/* one file missing */
	map.n_config_map = 1;
	buf = pack_reply(&s, &len);
	assert_int_equal(opampcli_parse(buf, len, &r), 0);
	free(buf);
	assert_int_equal(r.files_err, -ENOENT);
	opampcli_reply_release(&r);
	/* an error response with retry_info */
	s.remote_config = NULL;
	er.type = OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE_TYPE__ServerErrorResponseType_Unavailable;
	er.error_message = (char *)(uintptr_t)"busy";
	er.details_case = OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE__DETAILS_RETRY_INFO;
	ri.retry_after_nanoseconds = 7000000000ull;
	er.retry_info = &ri;
	s.error_response = &er;
	buf = pack_reply(&s, &len);
	assert_int_equal(opampcli_parse(buf, len, &r), 0);
	free(buf);
	assert_true(r.error);
	assert_int_equal(r.error_type, 2);
	assert_string_equal(r.error_message, "busy");
	assert_int_equal(r.retry_after_ns, 7000000000ull);
	opampcli_reply_release(&r);
	/* garbage, and an empty body (a valid, empty ServerToAgent) */
	assert_int_equal(opampcli_parse((const uint8_t *)"<html>hello</html>", 18, &r), -EBADMSG);
	assert_int_equal(opampcli_parse((const uint8_t *)"", 0, &r), 0);
	assert_false(r.remote_config);
	opampcli_reply_release(&r);
}

/*
 * 4 MiB of empty config_map entries (2 bytes each on the wire, about 60 in
 * memory): refused for the decoding budget, not decoded into 130 MB.
 */
static void test_csr_flow(void **st)
{
	struct opampcli c;
	struct opampcli_report r;
	struct msg_policy_status ps;
	struct msg_agent_health h;
	Opamp__Proto__V1__AgentToServer *m;
	Opamp__Proto__V1__ServerToAgent out = OPAMP__PROTO__V1__SERVER_TO_AGENT__INIT;
	Opamp__Proto__V1__ConnectionSettingsOffers offers = OPAMP__PROTO__V1__CONNECTION_SETTINGS_OFFERS__INIT;
	Opamp__Proto__V1__OpAMPConnectionSettings os;
	Opamp__Proto__V1__TLSCertificate tc = OPAMP__PROTO__V1__TLSCERTIFICATE__INIT;
	struct opampcli_reply rep;
	uint8_t hash[32], *buf, *big;
	size_t len;

	/* The __INIT macro casts away a const (the empty string); the function does not. */
	opamp__proto__v1__op_ampconnection_settings__init(&os);
	opampcli_init(&c);
	fill(&r, &ps, &h);
	m = build(&c, &r, false);
	assert_int_equal(m->capabilities, OPAMPCLI_CAPABILITIES);
	assert_true(m->capabilities & OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_AcceptsOpAMPConnectionSettings);
	assert_true(m->capabilities &
		    OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsConnectionSettingsStatus);
	assert_null(m->connection_settings_request);
	assert_null(m->connection_settings_status);
	opamp__proto__v1__agent_to_server__free_unpacked(m, NULL);

	r.csr = "-----BEGIN CERTIFICATE REQUEST-----\n";
	r.csr_len = strlen(r.csr);
	r.cs_status = OPAMPCLI_CS_FAILED;
	memset(hash, 0x33, sizeof(hash));
	r.cs_hash = hash;
	r.cs_error = "the new certificate failed";
	m = build(&c, &r, false);
	assert_non_null(m->connection_settings_request);
	assert_non_null(m->connection_settings_request->opamp);
	assert_non_null(m->connection_settings_request->opamp->certificate_request);
	assert_int_equal(m->connection_settings_request->opamp->certificate_request->csr.len, r.csr_len);
	assert_memory_equal(m->connection_settings_request->opamp->certificate_request->csr.data, r.csr, r.csr_len);
	assert_non_null(m->connection_settings_status);
	assert_int_equal(m->connection_settings_status->status,
			 OPAMP__PROTO__V1__CONNECTION_SETTINGS_STATUSES__ConnectionSettingsStatuses_FAILED);
	assert_int_equal(m->connection_settings_status->last_connection_settings_hash.len, 32);
	assert_string_equal(m->connection_settings_status->error_message, "the new certificate failed");
	opamp__proto__v1__agent_to_server__free_unpacked(m, NULL);
	/* never with agent_disconnect */
	m = build(&c, &r, true);
	assert_null(m->connection_settings_request);
	assert_null(m->connection_settings_status);
	opamp__proto__v1__agent_to_server__free_unpacked(m, NULL);

	/* an offer: the certificate copied out, the hash as given, or computed */
	tc.cert.data = (uint8_t *)"-----BEGIN CERTIFICATE-----\nAAAA\n";
	tc.cert.len = strlen((const char *)tc.cert.data);
	os.certificate = &tc;
	offers.opamp = &os;
	offers.hash.data = hash;
	offers.hash.len = sizeof(hash);
	out.connection_settings = &offers;
	out.capabilities = 0x67;
	len = opamp__proto__v1__server_to_agent__get_packed_size(&out);
	buf = malloc(len);
	opamp__proto__v1__server_to_agent__pack(&out, buf);
	assert_int_equal(opampcli_parse(buf, len, &rep), 0);
	free(buf);
	assert_true(rep.cert_offer);
	assert_int_equal(rep.capabilities & OPAMPCLI_SERVER_SIGNS, OPAMPCLI_SERVER_SIGNS);
	assert_int_equal(rep.cert_len, tc.cert.len);
	assert_memory_equal(rep.cert, tc.cert.data, tc.cert.len);
	assert_memory_equal(rep.cert_hash, hash, sizeof(hash));
	opampcli_reply_release(&rep);
	offers.hash.len = 0;
	len = opamp__proto__v1__server_to_agent__get_packed_size(&out);
	buf = malloc(len);
	opamp__proto__v1__server_to_agent__pack(&out, buf);
	assert_int_equal(opampcli_parse(buf, len, &rep), 0);
	free(buf);
	assert_true(rep.cert_offer);
	SHA256(tc.cert.data, tc.cert.len, hash);
	assert_memory_equal(rep.cert_hash, hash, sizeof(hash));
	opampcli_reply_release(&rep);
	/* past OPAMPCLI_MAX_CERT: no offer */
	big = calloc(1, OPAMPCLI_MAX_CERT + 1);
	tc.cert.data = big;
	tc.cert.len = OPAMPCLI_MAX_CERT + 1;
	len = opamp__proto__v1__server_to_agent__get_packed_size(&out);
	buf = malloc(len);
	opamp__proto__v1__server_to_agent__pack(&out, buf);
	assert_int_equal(opampcli_parse(buf, len, &rep), 0);
	free(buf);
	free(big);
	assert_false(rep.cert_offer);
	assert_null(rep.cert);
	opampcli_reply_release(&rep);
	(void)st;
}

static void test_amplification(void **st)
{
	size_t n = 2u << 20, inner = 2 * n, len;
	uint8_t *buf = malloc(inner + 32), *p = buf;
	struct opampcli_reply r;

	/* ServerToAgent.remote_config (#3) { config (#1) { config_map (#1) {} x n } } */
	*p++ = 0x1a;
	len = inner + 1 + 4; /* config's tag and 4-byte varint length */
	for (int i = 0; i < 4; i++, len >>= 7)
		*p++ = (uint8_t)((len & 0x7f) | (i < 3 ? 0x80 : 0));
	*p++ = 0x0a;
	len = inner;
	for (int i = 0; i < 4; i++, len >>= 7)
		*p++ = (uint8_t)((len & 0x7f) | (i < 3 ? 0x80 : 0));
	for (size_t i = 0; i < n; i++) {
		*p++ = 0x0a;
		*p++ = 0x00;
	}
	assert_int_equal(opampcli_parse(buf, (size_t)(p - buf), &r), -E2BIG);
	/* the same shape, small: decoded */
	{
		uint8_t small[] = { 0x1a, 0x06, 0x0a, 0x04, 0x0a, 0x00, 0x0a, 0x00 };

		assert_int_equal(opampcli_parse(small, sizeof(small), &r), 0);
		assert_true(r.remote_config);
		assert_int_equal(r.files_err, -EBADMSG); /* entries without a key or file */
		opampcli_reply_release(&r);
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_then_changes),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_csr_flow),
		cmocka_unit_test(test_amplification),
	};
	return cmocka_run_group_tests_name("opampcli", tests, NULL, NULL);
}
