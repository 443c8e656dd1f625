/*
 * test_opampsrv.c - the OpAMP server logic against a real SQLite store in
 * a temporary directory, with messages built and read by protobuf-c as an
 * OpAMP client would: what an agent reports lands in the store (description,
 * health with its component map, effective config hash, remote config
 * status); sequence gaps and unknown agents get ReportFullState; the newest
 * matching assignment's policy is sent, with both files and its hash, and
 * sent again only while the agent reports another hash; malformed, hostile
 * and impersonating messages get BadRequest and leave the store as it was.
 * With VIGIL_TEST_PG_URL set (tests/integration/store_pg.sh), every case
 * runs again on PostgreSQL, named pg_*.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "configmap.h"
#include "cpevent.h"
#include "opamp.pb-c.h"
#include "opampsrv.h"
#include "pgtest.h"
#include "store.h"

#define CAPS_REMOTE                                                          \
	(OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsStatus | \
	 OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_AcceptsRemoteConfig | \
	 OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsRemoteConfig)
#define FULL_STATE OPAMP__PROTO__V1__SERVER_TO_AGENT_FLAGS__ServerToAgentFlags_ReportFullState
#define SERVER_CAPS 0x7u

struct fx {
	char dir[64], path[128];
	struct store *st;
	struct opampsrv *srv;
	struct cp_identity id;
	int64_t now;
	bool pg;	/* the store is PostgreSQL (pg_url()), not f->path */
};

/* The store at url (a SQLite file in f->dir when NULL) and a server on it. */
static int setup_store(void **state, const char *url)
{
	struct fx *f = calloc(1, sizeof(*f));
	char sq[160], err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_opampsrv.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/cp.db", f->dir);
	snprintf(sq, sizeof(sq), "sqlite:%s", f->path);
	if (store_open(url ? url : sq, &f->st, err, sizeof(err)))
		fail_msg("store_open: %s", err);
	f->pg = url != NULL;
	assert_int_equal(opampsrv_new(f->st, &f->srv), 0);
	f->id.role = CP_ROLE_AGENT;
	snprintf(f->id.subject, sizeof(f->id.subject), "CN=host1,O=Example");
	snprintf(f->id.sans, sizeof(f->id.sans), "DNS:host1.example");
	snprintf(f->id.serial, sizeof(f->id.serial), "1F");
	snprintf(f->id.fingerprint, sizeof(f->id.fingerprint), "%064d", 0);
	f->now = 1700000000000;
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_store(state, NULL);
}

/* The same cases on PostgreSQL (pgtest.h), each on an emptied database. */
static int setup_pg(void **state)
{
	pg_empty();
	return setup_store(state, pg_url());
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[200];

	opampsrv_free(f->srv);
	store_close(f->st);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- building AgentToServer ---------------------------------------------- */

struct msg {
	Opamp__Proto__V1__AgentToServer m;
	Opamp__Proto__V1__AgentDescription desc;
	Opamp__Proto__V1__KeyValue kv[4];
	Opamp__Proto__V1__KeyValue *kvp[4];
	Opamp__Proto__V1__AnyValue av[4];
	Opamp__Proto__V1__RemoteConfigStatus rcs;
	Opamp__Proto__V1__AgentDisconnect disc;
	uint8_t uid[16];
};

static void msg_init(struct msg *x, uint8_t uid_byte, uint64_t seq)
{
	memset(x, 0, sizeof(*x));
	opamp__proto__v1__agent_to_server__init(&x->m);
	memset(x->uid, uid_byte, sizeof(x->uid));
	x->m.instance_uid.data = x->uid;
	x->m.instance_uid.len = 16;
	x->m.sequence_num = seq;
	x->m.capabilities = CAPS_REMOTE;
}

/* agent_description: host.name (identifying) and env (non-identifying). */
static void msg_describe(struct msg *x, const char *host, const char *env)
{
	const char *keys[2] = { "host.name", "env" };
	const char *vals[2] = { host, env };

	opamp__proto__v1__agent_description__init(&x->desc);
	for (int i = 0; i < 2; i++) {
		opamp__proto__v1__key_value__init(&x->kv[i]);
		opamp__proto__v1__any_value__init(&x->av[i]);
		x->av[i].value_case = OPAMP__PROTO__V1__ANY_VALUE__VALUE_STRING_VALUE;
		x->av[i].string_value = (char *)(uintptr_t)vals[i];
		x->kv[i].key = (char *)(uintptr_t)keys[i];
		x->kv[i].value = &x->av[i];
		x->kvp[i] = &x->kv[i];
	}
	x->desc.identifying_attributes = &x->kvp[0];
	x->desc.n_identifying_attributes = 1;
	x->desc.non_identifying_attributes = &x->kvp[1];
	x->desc.n_non_identifying_attributes = 1;
	x->m.agent_description = &x->desc;
	/* A full report also has the remote config status CAPS_REMOTE promises (UNSET at first). */
	opamp__proto__v1__remote_config_status__init(&x->rcs);
	x->m.remote_config_status = &x->rcs;
}

static void msg_status(struct msg *x, Opamp__Proto__V1__RemoteConfigStatuses status, const uint8_t *hash,
		       const char *error)
{
	opamp__proto__v1__remote_config_status__init(&x->rcs);
	x->rcs.status = status;
	if (hash) {
		x->rcs.last_remote_config_hash.data = (uint8_t *)(uintptr_t)hash;
		x->rcs.last_remote_config_hash.len = 32;
	}
	if (error)
		x->rcs.error_message = (char *)(uintptr_t)error;
	x->m.remote_config_status = &x->rcs;
}

static uint8_t *pack(const Opamp__Proto__V1__AgentToServer *m, size_t *len)
{
	uint8_t *b;

	*len = opamp__proto__v1__agent_to_server__get_packed_size(m);
	b = malloc(*len ? *len : 1);
	assert_non_null(b);
	assert_int_equal(opamp__proto__v1__agent_to_server__pack(m, b), *len);
	return b;
}

/* Handle raw bytes; the reply, unpacked (free with ..._free_unpacked), and its status. */
static Opamp__Proto__V1__ServerToAgent *handle_raw(struct fx *f, const uint8_t *b, size_t len, int *status)
{
	struct opampsrv_reply rep;
	Opamp__Proto__V1__ServerToAgent *out;

	f->now += 1000;
	assert_int_equal(opampsrv_handle(f->srv, &f->id, b, len, f->now, &rep), 0);
	assert_non_null(rep.body);
	out = opamp__proto__v1__server_to_agent__unpack(NULL, rep.len, rep.body);
	assert_non_null(out);
	*status = rep.http_status;
	if (rep.http_status != 200)
		assert_true(strlen(rep.log) > 0);
	free(rep.body);
	assert_int_equal(out->capabilities, SERVER_CAPS);
	return out;
}

static Opamp__Proto__V1__ServerToAgent *handle(struct fx *f, struct msg *x, int want_status)
{
	size_t len;
	uint8_t *b = pack(&x->m, &len);
	int status;
	Opamp__Proto__V1__ServerToAgent *out = handle_raw(f, b, len, &status);

	free(b);
	assert_int_equal(status, want_status);
	if (status == 200) {
		assert_null(out->error_response);
		assert_int_equal(out->instance_uid.len, 16);
		assert_memory_equal(out->instance_uid.data, x->uid, 16);
	}
	return out;
}

static void expect_bad_request(Opamp__Proto__V1__ServerToAgent *out, const char *reason)
{
	assert_non_null(out->error_response);
	assert_int_equal(out->error_response->type,
			 OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE_TYPE__ServerErrorResponseType_BadRequest);
	if (reason && !strstr(out->error_response->error_message, reason))
		fail_msg("\"%s\" does not say \"%s\"", out->error_response->error_message, reason);
	assert_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
}

static int count_cb(const struct store_agent *a, void *arg)
{
	(void)a;
	(*(int *)arg)++;
	return 0;
}

static int n_agents(struct fx *f)
{
	int n = 0;

	assert_int_equal(store_agent_list(f->st, count_cb, &n), 0);
	return n;
}

static void add_policy(struct fx *f, int64_t serial)
{
	char yaml[64];
	struct store_policy p = { .serial = serial, .signer = "CN=signer", .uploaded_by = "CN=admin" };

	snprintf(yaml, sizeof(yaml), "serial: %lld\n", (long long)serial);
	p.yaml = (uint8_t *)yaml;
	p.yaml_len = strlen(yaml);
	p.sig = (uint8_t *)"\x30\x03sig";
	p.sig_len = 5;
	assert_int_equal(store_policy_add(f->st, &p), 0);
}

static void assign(struct fx *f, const char *sel, int64_t serial)
{
	int64_t id;

	assert_int_equal(store_assign(f->st, sel, serial, "CN=admin", f->now, &id), 0);
	opampsrv_invalidate(f->srv);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_first_message(void **state)
{
	struct fx *f = *state;
	struct msg x;
	struct store_agent a;
	Opamp__Proto__V1__ServerToAgent *out;

	/* A client's first message is its full state: no need to ask for it. */
	msg_init(&x, 1, 0);
	msg_describe(&x, "h1", "prod");
	out = handle(f, &x, 200);
	assert_int_equal(out->flags & FULL_STATE, 0);
	assert_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);

	assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
	assert_string_equal(a.description_json,
			    "{\"identifying\":{\"host.name\":\"h1\"},\"non_identifying\":{\"env\":\"prod\"}}");
	assert_string_equal(a.cert_subject, "CN=host1,O=Example");
	assert_string_equal(a.cert_sans, "DNS:host1.example");
	assert_string_equal(a.cert_serial, "1F");
	assert_int_equal(a.first_seen, f->now);
	assert_int_equal(a.last_seen, f->now);
	assert_int_equal(a.capabilities, CAPS_REMOTE);
	assert_int_equal(a.last_sequence_num, 0);
	assert_false(a.disconnected);
	store_agent_release(&a);

	/* The next one, compressed (no description), is in sequence: no flag, description kept. */
	msg_init(&x, 1, 1);
	out = handle(f, &x, 200);
	assert_int_equal(out->flags & FULL_STATE, 0);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
	assert_non_null(a.description_json);
	assert_int_equal(a.last_sequence_num, 1);
	assert_true(a.first_seen < a.last_seen);
	store_agent_release(&a);
}

static void test_unknown_agent_compressed(void **state)
{
	struct fx *f = *state;
	struct msg x;
	Opamp__Proto__V1__ServerToAgent *out;

	/* The server lost this agent (or never had it): ask for everything. */
	msg_init(&x, 2, 41);
	out = handle(f, &x, 200);
	assert_true(out->flags & FULL_STATE);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	msg_init(&x, 2, 42);
	msg_describe(&x, "h2", "prod");
	out = handle(f, &x, 200);
	assert_int_equal(out->flags & FULL_STATE, 0);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);

	/* A description without the remote config status its capabilities promise is not full. */
	msg_init(&x, 7, 42);
	msg_describe(&x, "h7", "prod");
	x.m.remote_config_status = NULL;
	out = handle(f, &x, 200);
	assert_true(out->flags & FULL_STATE);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	/* The full state from an agent the store has no row for, mid-sequence: nothing to ask. */
	msg_init(&x, 8, 42);
	msg_describe(&x, "h8", "prod");
	out = handle(f, &x, 200);
	assert_int_equal(out->flags & FULL_STATE, 0);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
}

static void test_sequence_gap(void **state)
{
	struct fx *f = *state;
	struct msg x;
	Opamp__Proto__V1__ServerToAgent *out;
	uint64_t seqs[] = { 1, 2, 3, 5, 6, 6, 7 };
	bool want[] = { false, false, false, true, false, true, false };

	msg_init(&x, 3, 0);
	msg_describe(&x, "h3", "prod");
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		msg_init(&x, 3, seqs[i]);
		out = handle(f, &x, 200);
		if (!!(out->flags & FULL_STATE) != want[i])
			fail_msg("sequence_num %llu: ReportFullState %s", (unsigned long long)seqs[i],
				 want[i] ? "missing" : "unexpected");
		opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	}
	/* The gap survives a restart of the server: the store knows the last number. */
	opampsrv_free(f->srv);
	assert_int_equal(opampsrv_new(f->st, &f->srv), 0);
	msg_init(&x, 3, 8);
	out = handle(f, &x, 200);
	assert_int_equal(out->flags & FULL_STATE, 0);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	msg_init(&x, 3, 10);
	out = handle(f, &x, 200);
	assert_true(out->flags & FULL_STATE);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
}

static void test_uid_length(void **state)
{
	struct fx *f = *state;
	struct msg x;
	size_t lens[] = { 0, 1, 15, 17, 26, 36 };
	uint8_t big[36];

	memset(big, 7, sizeof(big));
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		msg_init(&x, 4, 0);
		msg_describe(&x, "h4", "prod");
		x.m.instance_uid.data = big;
		x.m.instance_uid.len = lens[i];
		expect_bad_request(handle(f, &x, 400), "instance_uid of");
	}
	assert_int_equal(n_agents(f), 0);
}

static void test_malformed_bytes(void **state)
{
	struct fx *f = *state;
	struct msg x;
	uint8_t *b, *cut;
	size_t len;
	int status, n_before;
	static const uint8_t hostile[][12] = {
		{ 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },	/* uid of 2^63 bytes */
		{ 0x0a, 0x10, 1, 2, 3 },						/* uid of 16, 3 there */
		{ 0x1a, 0x05, 0x0a, 0x7f, 0x00 },					/* description runs past its end */
		{ 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, /* 11-byte varint */
		{ 0x0b, 0x0c },								/* a group (proto2) */
		{ 0x07 },								/* wire type 7 */
		{ 0x00, 0x00 },								/* field number 0 */
	};
	static const size_t hostile_len[] = { 10, 5, 5, 12, 2, 1, 2 };

	/* A good message first, so that the store has something to keep. */
	msg_init(&x, 5, 0);
	msg_describe(&x, "h5", "prod");
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	n_before = n_agents(f);

	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		cut = malloc(hostile_len[i]);
		memcpy(cut, hostile[i], hostile_len[i]);
		expect_bad_request(handle_raw(f, cut, hostile_len[i], &status), NULL);
		assert_int_equal(status, 400);
		free(cut);
	}

	/* Every truncation of a real message: BadRequest, or a shorter valid message. */
	msg_init(&x, 6, 0);
	msg_describe(&x, "h6", "prod");
	msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED, NULL, "bad");
	b = pack(&x.m, &len);
	for (size_t n = 1; n < len; n++) {
		Opamp__Proto__V1__ServerToAgent *out;

		cut = malloc(n);
		memcpy(cut, b, n);
		out = handle_raw(f, cut, n, &status);
		free(cut);
		assert_true(status == 200 || status == 400);
		if (status == 400) {
			assert_int_equal(n_agents(f), n_before);
			expect_bad_request(out, NULL);
		} else {
			opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
			n_before = n_agents(f);
		}
	}
	free(b);
	/* The first agent is as it was. */
	{
		struct store_agent a;

		memset(x.uid, 5, 16);
		assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
		assert_non_null(strstr(a.description_json, "\"h5\""));
		store_agent_release(&a);
	}
}

/* Prepend a length-delimited field's header (tag, varint length) before p. */
static uint8_t *prepend(uint8_t *p, uint8_t tag, size_t len)
{
	uint8_t v[10];
	size_t vl = 0;

	do {
		v[vl++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
		len >>= 7;
	} while (len);
	p -= vl;
	memcpy(p, v, vl);
	*--p = tag;
	return p;
}

/* An AgentToServer with a 16-byte uid and an agent_description whose body is end - p bytes at p. */
static uint8_t *wrap_description(uint8_t *p, uint8_t *end)
{
	p = prepend(p, 0x1a, (size_t)(end - p)); /* AgentToServer.agent_description (#3) */
	p -= 16;
	memset(p, 9, 16);
	return prepend(p, 0x0a, 16);		 /* AgentToServer.instance_uid (#1) */
}

static void test_hostile_sizes(void **state)
{
	struct fx *f = *state;
	size_t big = OPAMPSRV_MAX_MESSAGE + 1, cap;
	uint8_t *b = calloc(1, big), *p, *end;
	int status;

	assert_non_null(b);
	/* Over the limit: refused before a byte is decoded. */
	expect_bad_request(handle_raw(f, b, big, &status), "over the limit");
	assert_int_equal(status, 400);
	free(b);

	/*
	 * A nesting bomb (protobuf-c would recurse once per level): a KeyValue
	 * whose AnyValue holds a KeyValueList holding a KeyValue..., 600 deep.
	 */
	cap = 600 * 8 + 64;
	b = malloc(cap);
	assert_non_null(b);
	end = p = b + cap;
	for (int d = 0; d < 200; d++) {
		p = prepend(p, 0x0a, (size_t)(end - p)); /* KeyValueList.values (#1): KeyValue */
		p = prepend(p, 0x32, (size_t)(end - p)); /* AnyValue.kvlist_value (#6) */
		p = prepend(p, 0x12, (size_t)(end - p)); /* KeyValue.value (#2) */
	}
	p = prepend(p, 0x0a, (size_t)(end - p));	 /* AgentDescription.identifying_attributes (#1) */
	p = wrap_description(p, end);
	expect_bad_request(handle_raw(f, p, (size_t)(end - p), &status), "nested deeper");
	assert_int_equal(status, 400);
	free(b);

	/* 70000 empty identifying attributes: too many elements to unpack. */
	cap = 2 * 70000 + 64;
	b = malloc(cap);
	assert_non_null(b);
	end = p = b + cap;
	for (int i = 0; i < 70000; i++)
		p = prepend(p, 0x0a, 0);
	p = wrap_description(p, end);
	expect_bad_request(handle_raw(f, p, (size_t)(end - p), &status), "more than 65536 elements");
	assert_int_equal(status, 400);
	free(b);
	assert_int_equal(n_agents(f), 0);
}

static void test_not_utf8(void **state)
{
	struct fx *f = *state;
	struct msg x;

	msg_init(&x, 11, 0);
	msg_describe(&x, "h\xff", "prod");
	expect_bad_request(handle(f, &x, 400), "not UTF-8");
	msg_init(&x, 11, 0);
	msg_describe(&x, "h\xed\xa0\x80", "prod"); /* a UTF-16 surrogate */
	expect_bad_request(handle(f, &x, 400), "not UTF-8");
	assert_int_equal(n_agents(f), 0);
}

static void test_uid_bound_to_subject(void **state)
{
	struct fx *f = *state;
	struct msg x;
	struct store_agent a;

	msg_init(&x, 12, 0);
	msg_describe(&x, "h12", "prod");
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	/* Another certificate claims the uid: refused, the row untouched. */
	snprintf(f->id.subject, sizeof(f->id.subject), "CN=intruder,O=Example");
	msg_init(&x, 12, 1);
	msg_describe(&x, "h12", "dev");
	expect_bad_request(handle(f, &x, 400), "belongs to another certificate");
	assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
	assert_string_equal(a.cert_subject, "CN=host1,O=Example");
	assert_non_null(strstr(a.description_json, "\"prod\""));
	assert_int_equal(a.last_sequence_num, 0);
	store_agent_release(&a);
	/* The intruder's own uid is fine. */
	msg_init(&x, 13, 0);
	msg_describe(&x, "intruder", "dev");
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	/* And so is an admin certificate: no; it gets BadRequest. */
	f->id.role = CP_ROLE_ADMIN;
	expect_bad_request(handle(f, &x, 400), "not an agent certificate");
}

/* The reply's remote config: serial's files and the hash of the map. */
static void expect_config(Opamp__Proto__V1__ServerToAgent *out, int64_t serial, uint8_t ret_hash[32])
{
	const uint8_t *yaml, *sig;
	size_t yl, sl;
	uint8_t h[32];
	char want[64];

	assert_non_null(out->remote_config);
	assert_non_null(out->remote_config->config);
	assert_int_equal(configmap_policy(out->remote_config->config, &yaml, &yl, &sig, &sl), 0);
	snprintf(want, sizeof(want), "serial: %lld\n", (long long)serial);
	assert_int_equal(yl, strlen(want));
	assert_memory_equal(yaml, want, yl);
	assert_int_equal(sl, 5);
	assert_int_equal(configmap_hash(out->remote_config->config, h), 0);
	assert_int_equal(out->remote_config->config_hash.len, 32);
	assert_memory_equal(out->remote_config->config_hash.data, h, 32);
	memcpy(ret_hash, h, 32);
}

static void test_remote_config(void **state)
{
	struct fx *f = *state;
	struct msg x;
	struct store_agent a;
	Opamp__Proto__V1__ServerToAgent *out;
	uint8_t h2[32], other[32];
	uint64_t seq = 0;

	add_policy(f, 1);
	add_policy(f, 2);
	add_policy(f, 3);
	assign(f, "env=prod", 1);
	assign(f, "host.name=h20", 3);
	assign(f, "env=prod", 2); /* newest matching: 2 wins over 3 and 1 */

	msg_init(&x, 20, seq++);
	msg_describe(&x, "h20", "prod");
	out = handle(f, &x, 200);
	expect_config(out, 2, h2);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);

	/* Still no status from the agent: the config goes again. */
	msg_init(&x, 20, seq++);
	out = handle(f, &x, 200);
	expect_config(out, 2, h2);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);

	/* APPLIED with its hash: nothing more is sent, the serial is recorded. */
	msg_init(&x, 20, seq++);
	msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED, h2, NULL);
	out = handle(f, &x, 200);
	assert_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
	assert_int_equal(a.applied_serial, 2);
	assert_int_equal(a.remote_config_status, 1);
	assert_true(a.has_remote_config_hash);
	assert_memory_equal(a.remote_config_hash, h2, 32);
	assert_null(a.last_error);
	store_agent_release(&a);

	/* A compressed poll afterwards (status not repeated): still nothing to send. */
	msg_init(&x, 20, seq++);
	out = handle(f, &x, 200);
	assert_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);

	/* The agent reports another hash (e.g. it reverted): the config is sent again. */
	memset(other, 0x5a, sizeof(other));
	msg_init(&x, 20, seq++);
	msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED, other,
		   "policy.yaml:1:1: serial 2 is not newer than 7");
	out = handle(f, &x, 200);
	expect_config(out, 2, h2);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
	assert_string_equal(a.last_error, "policy.yaml:1:1: serial 2 is not newer than 7");
	assert_int_equal(a.remote_config_status, 3);
	assert_int_equal(a.applied_serial, 2); /* FAILED does not change what it runs */
	store_agent_release(&a);

	/* A newer assignment, seen only once the cache is invalidated. */
	add_policy(f, 4);
	{
		int64_t id;

		assert_int_equal(store_assign(f->st, "host.name=h20", 4, "CN=admin", f->now, &id), 0);
	}
	msg_init(&x, 20, seq++);
	msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED, h2, NULL);
	out = handle(f, &x, 200);
	assert_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	opampsrv_invalidate(f->srv);
	msg_init(&x, 20, seq++);
	out = handle(f, &x, 200);
	expect_config(out, 4, other);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
}

static void test_selector_no_match(void **state)
{
	struct fx *f = *state;
	struct msg x;
	Opamp__Proto__V1__ServerToAgent *out;

	add_policy(f, 1);
	assign(f, "env=prod,host.name=h30", 1);
	msg_init(&x, 30, 0);
	msg_describe(&x, "h30", "dev");
	out = handle(f, &x, 200);
	assert_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	/* The description changes to match: the next reply carries the policy. */
	msg_init(&x, 30, 1);
	msg_describe(&x, "h30", "prod");
	out = handle(f, &x, 200);
	assert_non_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);

	/* An agent that does not accept remote config never gets one. */
	msg_init(&x, 31, 0);
	msg_describe(&x, "h30", "prod");
	x.m.capabilities = OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsStatus;
	out = handle(f, &x, 200);
	assert_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);

	/* Nor does an unknown agent in the reply that asks for its full state. */
	msg_init(&x, 32, 9);
	out = handle(f, &x, 200);
	assert_true(out->flags & FULL_STATE);
	assert_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
}

static void test_health_effective_disconnect(void **state)
{
	struct fx *f = *state;
	struct msg x;
	struct store_agent a;
	Opamp__Proto__V1__ComponentHealth top, sampling, budget;
	Opamp__Proto__V1__ComponentHealth__ComponentHealthMapEntry e[2], *ep[2] = { &e[0], &e[1] };
	Opamp__Proto__V1__EffectiveConfig ec;
	Opamp__Proto__V1__AgentConfigMap cm;
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry cme, *cmep = &cme;
	Opamp__Proto__V1__AgentConfigFile file;
	Opamp__Proto__V1__ServerToAgent *out;
	uint8_t want[32];

	add_policy(f, 1);
	assign(f, "env=prod", 1);
	opamp__proto__v1__component_health__init(&top);
	opamp__proto__v1__component_health__init(&sampling);
	opamp__proto__v1__component_health__init(&budget);
	top.healthy = 0;
	top.last_error = "tenant web over budget";
	top.status = "degraded";
	sampling.healthy = 1;
	sampling.status = "19 Hz";
	budget.healthy = 0;
	budget.last_error = "tenant web over budget";
	for (int i = 0; i < 2; i++)
		opamp__proto__v1__component_health__component_health_map_entry__init(&e[i]);
	e[0].key = "sampling";
	e[0].value = &sampling;
	e[1].key = "budget/web";
	e[1].value = &budget;
	top.n_component_health_map = 2;
	top.component_health_map = ep;

	opamp__proto__v1__agent_config_file__init(&file);
	file.body.data = (uint8_t *)"serial: 1\n";
	file.body.len = 10;
	file.content_type = "text/yaml";
	opamp__proto__v1__agent_config_map__config_map_entry__init(&cme);
	cme.key = "policy.yaml";
	cme.value = &file;
	opamp__proto__v1__agent_config_map__init(&cm);
	cm.n_config_map = 1;
	cm.config_map = &cmep;
	opamp__proto__v1__effective_config__init(&ec);
	ec.config_map = &cm;
	assert_int_equal(configmap_hash(&cm, want), 0);

	msg_init(&x, 40, 0);
	msg_describe(&x, "h40", "prod");
	x.m.health = &top;
	x.m.effective_config = &ec;
	out = handle(f, &x, 200);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
	assert_int_equal(a.healthy, 0);
	assert_non_null(a.health_json);
	assert_non_null(strstr(a.health_json, "\"component_health_map\":{\"budget/web\":{"));
	assert_non_null(strstr(a.health_json, "\"sampling\":{\"healthy\":true"));
	assert_non_null(strstr(a.health_json, "\"status\":\"degraded\""));
	assert_string_equal(a.last_error, "tenant web over budget");
	assert_true(a.has_effective_hash);
	assert_memory_equal(a.effective_hash, want, 32);
	store_agent_release(&a);

	/* agent_disconnect: an ordinary reply, no config pushed at a leaving agent. */
	msg_init(&x, 40, 1);
	opamp__proto__v1__agent_disconnect__init(&x.disc);
	x.m.agent_disconnect = &x.disc;
	out = handle(f, &x, 200);
	assert_null(out->remote_config);
	assert_int_equal(out->flags & FULL_STATE, 0);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
	assert_true(a.disconnected);
	store_agent_release(&a);

	/* It comes back: connected again. */
	msg_init(&x, 40, 2);
	out = handle(f, &x, 200);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
	assert_false(a.disconnected);
	store_agent_release(&a);

	/* An agent the server never saw, disconnecting, leaves no row. */
	msg_init(&x, 41, 5);
	opamp__proto__v1__agent_disconnect__init(&x.disc);
	x.m.agent_disconnect = &x.disc;
	out = handle(f, &x, 200);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	assert_int_equal(store_agent_get(f->st, x.uid, &a), -ENOENT);
}


/* ---- failed serials, events, two servers, rollout offers ------------------ */

/*
 * opamp-spec#397: APPLIED(A), then B is offered, APPLYING(B), FAILED(B),
 * and the agent falls back to APPLIED(A).  B must not be sent again: the
 * failure is remembered in the agent's row, whichever server reads it.
 */
static void test_failed_never_again(void **state)
{
	struct fx *f = *state;
	struct msg x;
	struct store_agent a;
	Opamp__Proto__V1__ServerToAgent *out;
	uint8_t h1[32], h2[32], h3[32];
	uint64_t seq = 0;

	add_policy(f, 1);
	add_policy(f, 2);
	add_policy(f, 3);
	assign(f, "env=prod", 1);
	msg_init(&x, 50, seq++);
	msg_describe(&x, "h50", "prod");
	out = handle(f, &x, 200);
	expect_config(out, 1, h1);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	msg_init(&x, 50, seq++);
	msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED, h1, NULL);
	out = handle(f, &x, 200);
	assert_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);

	assign(f, "env=prod", 2);
	msg_init(&x, 50, seq++);
	out = handle(f, &x, 200);
	expect_config(out, 2, h2);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	msg_init(&x, 50, seq++);
	msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLYING, h2, NULL);
	out = handle(f, &x, 200);
	assert_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	msg_init(&x, 50, seq++);
	msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED, h2, "hz.max above 999");
	out = handle(f, &x, 200);
	assert_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	/* Back on A: before the fix, B went out again here, and the loop began. */
	for (int i = 0; i < 3; i++) {
		msg_init(&x, 50, seq++);
		if (i == 0)
			msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED, h1,
				   NULL);
		out = handle(f, &x, 200);
		assert_null(out->remote_config);
		opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	}
	assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
	assert_int_equal(a.n_failed, 1);
	assert_int_equal(a.failed_serials[0], 2);
	assert_int_equal(a.applied_serial, 1);
	store_agent_release(&a);
	/* A server that has never seen the agent reads the failure from the row. */
	opampsrv_free(f->srv);
	assert_int_equal(opampsrv_new(f->st, &f->srv), 0);
	msg_init(&x, 50, seq++);
	out = handle(f, &x, 200);
	assert_null(out->remote_config);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	/* Something newer still goes out. */
	assign(f, "env=prod", 3);
	msg_init(&x, 50, seq++);
	out = handle(f, &x, 200);
	expect_config(out, 3, h3);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
}

struct seen {
	int n;
	struct {
		enum cpevent_kind kind;
		int64_t serial;
		int healthy;
		char detail[128];
	} ev[32];
};

static void on_event(const struct cpevent *ev, void *arg)
{
	struct seen *s = arg;

	assert_true(s->n < 32);
	s->ev[s->n].kind = ev->kind;
	s->ev[s->n].serial = ev->serial;
	s->ev[s->n].healthy = ev->healthy;
	snprintf(s->ev[s->n].detail, sizeof(s->ev[s->n].detail), "%s", ev->detail ? ev->detail : "");
	s->n++;
}

/* The next event seen is kind (with serial, when not -1, and detail, when not NULL). */
static void expect_event(struct seen *s, int *i, enum cpevent_kind kind, int64_t serial, const char *detail)
{
	if (*i >= s->n)
		fail_msg("no event %s (only %d seen)", cpevent_name(kind), s->n);
	if (s->ev[*i].kind != kind)
		fail_msg("event %d is %s, not %s", *i, cpevent_name(s->ev[*i].kind), cpevent_name(kind));
	if (serial >= 0)
		assert_int_equal(s->ev[*i].serial, serial);
	if (detail)
		assert_string_equal(s->ev[*i].detail, detail);
	(*i)++;
}

static void test_events(void **state)
{
	struct fx *f = *state;
	struct seen seen = { 0 };
	struct msg x;
	Opamp__Proto__V1__ServerToAgent *out;
	Opamp__Proto__V1__ComponentHealth top, budget;
	Opamp__Proto__V1__ComponentHealth__ComponentHealthMapEntry e, *ep = &e;
	uint8_t h1[32], h2[32];
	uint64_t seq = 0;
	int i = 0;

	opampsrv_set_events(f->srv, on_event, &seen);
	add_policy(f, 1);
	add_policy(f, 2);
	assign(f, "env=prod", 1);
	msg_init(&x, 60, seq++);
	msg_describe(&x, "h60", "prod");
	out = handle(f, &x, 200);
	expect_config(out, 1, h1);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	expect_event(&seen, &i, CPEVENT_FIRST_SEEN, -1, NULL);

	msg_init(&x, 60, seq++);
	msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED, h1, NULL);
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	expect_event(&seen, &i, CPEVENT_POLICY_APPLIED, 1, NULL);
	/* The same status again is no transition. */
	msg_init(&x, 60, seq++);
	msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED, h1, NULL);
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	assert_int_equal(seen.n, i);

	assign(f, "env=prod", 2);
	msg_init(&x, 60, seq++);
	out = handle(f, &x, 200);
	expect_config(out, 2, h2);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	msg_init(&x, 60, seq++);
	msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED, h2, "bad hz");
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	expect_event(&seen, &i, CPEVENT_POLICY_FAILED, 2, "bad hz");

	/* Health: a tenant over budget (unreachable), then the same report again. */
	opamp__proto__v1__component_health__init(&top);
	opamp__proto__v1__component_health__init(&budget);
	opamp__proto__v1__component_health__component_health_map_entry__init(&e);
	top.healthy = 1;
	budget.healthy = 0;
	e.key = "budget/web";
	e.value = &budget;
	top.n_component_health_map = 1;
	top.component_health_map = &ep;
	msg_init(&x, 60, seq++);
	x.m.health = &top;
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	expect_event(&seen, &i, CPEVENT_TENANT_UNREACHABLE, -1, "web");
	msg_init(&x, 60, seq++);
	x.m.health = &top;
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	assert_int_equal(seen.n, i);
	/* The agent as a whole turns unhealthy. */
	top.healthy = 0;
	top.last_error = "sampling stopped";
	msg_init(&x, 60, seq++);
	x.m.health = &top;
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	expect_event(&seen, &i, CPEVENT_HEALTH_CHANGED, -1, "sampling stopped");
	assert_int_equal(seen.ev[i - 1].healthy, 0);

	/* The same agent on a new certificate (same subject). */
	snprintf(f->id.fingerprint, sizeof(f->id.fingerprint), "%064d", 7);
	msg_init(&x, 60, seq++);
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	expect_event(&seen, &i, CPEVENT_CERT_ROTATED, -1, NULL);
	assert_non_null(strstr(seen.ev[i - 1].detail, "0000000000"));

	/* Another subject claiming its uid. */
	snprintf(f->id.subject, sizeof(f->id.subject), "CN=intruder");
	msg_init(&x, 60, seq++);
	expect_bad_request(handle(f, &x, 400), "belongs to another certificate");
	expect_event(&seen, &i, CPEVENT_IDENTITY_REFUSED, -1, "CN=host1,O=Example");
	assert_int_equal(seen.n, i);
}

/*
 * Two servers on one store, an agent alternating between them: each reads
 * the row again when the sequence number says another server spoke to the
 * agent, so no full state is asked for, and a change made on one is seen
 * on the other once the generation moved.
 */
static void test_two_servers(void **state)
{
	struct fx *f = *state;
	struct opampsrv *other, *srv[2];
	struct msg x;
	Opamp__Proto__V1__ServerToAgent *out;
	struct store_agent a;
	int64_t gen0, gen1;
	uint8_t h[32];

	assert_int_equal(opampsrv_new(f->st, &other), 0);
	srv[0] = f->srv;
	srv[1] = other;
	msg_init(&x, 70, 0);
	msg_describe(&x, "h70", "prod");
	out = handle(f, &x, 200);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	for (uint64_t seq = 1; seq < 7; seq++) {
		f->srv = srv[seq % 2];
		msg_init(&x, 70, seq);
		out = handle(f, &x, 200);
		assert_int_equal(out->flags & FULL_STATE, 0);
		assert_null(out->remote_config);
		opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	}
	assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
	assert_int_equal(a.last_sequence_num, 6);
	store_agent_release(&a);

	/* An assignment made through server 0 (the store) moves the generation ... */
	assert_int_equal(store_generation(f->st, &gen0), 0);
	add_policy(f, 1);
	{
		int64_t id;

		assert_int_equal(store_assign(f->st, "env=prod", 1, "CN=admin", f->now, &id), 0);
	}
	assert_int_equal(store_generation(f->st, &gen1), 0);
	assert_int_equal(gen1, gen0 + 2);
	/* ... and server 1, told by its tick, sends the policy. */
	opampsrv_invalidate(other);
	f->srv = other;
	msg_init(&x, 70, 7);
	out = handle(f, &x, 200);
	expect_config(out, 1, h);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	f->srv = srv[0];
	opampsrv_free(other);
}


/*
 * A report of a policy uploaded through another server less than a tick
 * ago: the server loads its policies again (the generation moved) and
 * names the serial, in the row and in the event, rather than 0.
 */
static void test_report_before_tick(void **state)
{
	struct fx *f = *state;
	struct seen seen = { 0 };
	struct msg x;
	struct store_agent a;
	Opamp__Proto__V1__ServerToAgent *out;
	uint8_t h[32];
	int i = 0;

	opampsrv_set_events(f->srv, on_event, &seen);
	msg_init(&x, 90, 0);
	msg_describe(&x, "h90", "prod");
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	expect_event(&seen, &i, CPEVENT_FIRST_SEEN, -1, NULL);
	/* "Another server": the store directly, this server not told. */
	add_policy(f, 1);
	{
		int64_t id;

		assert_int_equal(store_assign(f->st, "env=prod", 1, "CN=admin", f->now, &id), 0);
	}
	{
		struct opampsrv *other;
		struct opampsrv *mine = f->srv;

		assert_int_equal(opampsrv_new(f->st, &other), 0);
		f->srv = other;
		msg_init(&x, 90, 1);
		out = handle(f, &x, 200);
		expect_config(out, 1, h);
		opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
		f->srv = mine;
		opampsrv_free(other);
	}
	msg_init(&x, 90, 2);
	msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED, h, NULL);
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	expect_event(&seen, &i, CPEVENT_POLICY_APPLIED, 1, NULL);
	assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
	assert_int_equal(a.applied_serial, 1);
	store_agent_release(&a);
}

struct offers {
	uint8_t uid[16];
	int64_t serial;
	int sent;
	int64_t sent_serial;
};

static int64_t offer_cb(void *arg, const uint8_t uid[STORE_UID_LEN])
{
	struct offers *o = arg;

	return memcmp(uid, o->uid, 16) == 0 ? o->serial : 0;
}

static void sent_cb(void *arg, const uint8_t uid[STORE_UID_LEN], int64_t serial, int64_t now)
{
	struct offers *o = arg;

	(void)now;
	assert_memory_equal(uid, o->uid, 16);
	o->sent++;
	o->sent_serial = serial;
}

/* A rollout's offer wins over an older assignment, and its policy need not be assigned. */
static void test_rollout_offer(void **state)
{
	struct fx *f = *state;
	struct offers o = { .serial = 3 };
	struct opampsrv_rollouts ro = { .offer = offer_cb, .sent = sent_cb, .arg = &o };
	struct msg x;
	Opamp__Proto__V1__ServerToAgent *out;
	uint8_t h[32];

	memset(o.uid, 80, sizeof(o.uid));
	add_policy(f, 1);
	add_policy(f, 2);
	add_policy(f, 3);
	assign(f, "env=prod", 2);
	opampsrv_set_rollouts(f->srv, &ro);
	msg_init(&x, 80, 0);
	msg_describe(&x, "h80", "prod");
	out = handle(f, &x, 200);
	expect_config(out, 3, h);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	assert_int_equal(o.sent, 1);
	assert_int_equal(o.sent_serial, 3);
	/* Another agent is not offered it: its assignment stands. */
	msg_init(&x, 81, 0);
	msg_describe(&x, "h81", "prod");
	out = handle(f, &x, 200);
	expect_config(out, 2, h);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	assert_int_equal(o.sent, 1);
	/* An offer older than the assignment loses (serials only move forward). */
	o.serial = 1;
	msg_init(&x, 80, 1);
	out = handle(f, &x, 200);
	expect_config(out, 2, h);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	assert_int_equal(o.sent, 1);
	/* A failed offered serial is not offered again. */
	o.serial = 3;
	msg_init(&x, 80, 2);
	out = handle(f, &x, 200);
	expect_config(out, 3, h);
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	msg_init(&x, 80, 3);
	msg_status(&x, OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED, h, "no");
	out = handle(f, &x, 200);
	expect_config(out, 2, h); /* back to its assignment */
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	assert_int_equal(o.sent, 2);
	opampsrv_set_rollouts(f->srv, NULL);
}

/* ---- two servers on one store ------------------------------------------ */

/* Run sql on the fixture's database behind the store's back. */
static void raw_sql(struct fx *f, const char *sql)
{
	if (f->pg) {
		PGconn *c = pg_connect();
		PGresult *r = PQexec(c, sql);

		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fail_msg("%s: %s", sql, PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
	} else {
		sqlite3 *db;
		char *err = NULL;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
			fail_msg("%s: %s", sql, err);
		sqlite3_close(db);
	}
}

/*
 * Two servers find a new instance_uid unbound at once, for two
 * certificates: the one whose write comes second must be refused, not
 * take the uid over.  Played on one server: it has the uid cached for its
 * certificate (so it does not read the row again for the next message),
 * and the row is bound to another subject behind its back, as the other
 * server's write would have left it.
 */
static void test_uid_bound_across_servers(void **state)
{
	struct fx *f = *state;
	struct msg x;
	struct store_agent a;
	struct seen ev = { 0 };
	char sql[256];

	opampsrv_set_events(f->srv, on_event, &ev);
	msg_init(&x, 14, 0);
	msg_describe(&x, "h14", "prod");
	opamp__proto__v1__server_to_agent__free_unpacked(handle(f, &x, 200), NULL);
	snprintf(sql, sizeof(sql),
		 "UPDATE agents SET cert_subject = 'CN=other,O=Example', last_sequence_num = 5 WHERE uid = %s",
		 f->pg ? "'\\x0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e'::bytea" : "X'0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e'");
	raw_sql(f, sql);
	msg_init(&x, 14, 1);
	expect_bad_request(handle(f, &x, 400), "belongs to another certificate (CN=other,O=Example)");
	assert_int_equal(store_agent_get(f->st, x.uid, &a), 0);
	assert_string_equal(a.cert_subject, "CN=other,O=Example");
	assert_int_equal(a.last_sequence_num, 5);
	store_agent_release(&a);
	assert_true(ev.n >= 2);
	assert_int_equal(ev.ev[ev.n - 1].kind, CPEVENT_IDENTITY_REFUSED);
	assert_string_equal(ev.ev[ev.n - 1].detail, "CN=other,O=Example");
	opampsrv_set_events(f->srv, NULL, NULL);
}

#define CASE(fn) { #fn, fn, setup, teardown, NULL }
#define PG_CASE(fn) { "pg_" #fn, fn, setup_pg, teardown, NULL }
#define ALL_CASES(C)                                                                             \
	C(test_first_message), C(test_unknown_agent_compressed), C(test_sequence_gap),            \
	C(test_uid_length), C(test_malformed_bytes), C(test_hostile_sizes), C(test_not_utf8),      \
	C(test_uid_bound_to_subject), C(test_remote_config), C(test_selector_no_match),            \
	C(test_health_effective_disconnect), C(test_failed_never_again), C(test_events),           \
	C(test_two_servers), C(test_rollout_offer), C(test_report_before_tick),                                                \
	C(test_uid_bound_across_servers)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = { ALL_CASES(CASE) };
	const struct CMUnitTest pg_tests[] = { ALL_CASES(PG_CASE) };
	return pg_run_groups("test_opampsrv", sqlite_tests, pg_tests, NULL, NULL);
}
