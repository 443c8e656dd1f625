/*
 * store_stress.c - test tool: write to a vigil-cp store as fast as it can,
 * to be killed with SIGKILL at random moments (tests/integration/
 * store_kill.sh), or check what such a store holds afterwards.
 *
 *   store_stress write DB [SECONDS]   agents, policies, assignments in a loop
 *   store_stress check DB             the invariants; exit 0 when they hold
 *   store_stress rate DB [N]          N agent updates (default 20000), "rate R/s"
 *   store_stress poll DB [AGENTS]     opampsrv_handle: each agent's full first
 *                                     message, then 3 rounds of steady polls
 *                                     (compressed, nothing new); "poll R/s"
 *
 * DB is a SQLite file or a store URL (postgresql://..., for
 * tests/integration/store_pg.sh, which kills the server instead).
 *
 * write continues from what the store has (the next serial is max + 1) and
 * prints "serial N" on stdout, flushed, once store_policy_add(N) has
 * returned: the killer then knows the least the store must keep.  Each
 * agent's description carries the sequence number written with it, each
 * policy's YAML its serial, each assignment the time of its call, so that
 * check can tell a half-written call from a whole one.
 *
 * check reopens the store (as vigil-cp would after the kill) and verifies
 * through store.h: serials strictly increase with upload time, every YAML
 * says its own serial, every assignment names a stored policy and ids
 * increase with time, every agent row is whole; it prints the max serial
 * ("max_serial N") and the counts.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "opamp.pb-c.h"
#include "opampsrv.h"
#include "store.h"
#include "store_int.h"

#define STRESS_AGENTS 500

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_store(const char *db, struct store **st)
{
	char url[4200], err[512];
	int r;

	/* DB is a SQLite file, or a store URL (postgresql://...) as it is. */
	snprintf(url, sizeof(url), strstr(db, "://") ? "%s" : "sqlite:%s", db);
	r = store_open(url, st, err, sizeof(err));
	if (r)
		fprintf(stderr, "store_stress: %s\n", err);
	return r;
}

static void agent_fill(struct store_agent *a, unsigned i, uint64_t seq, char *desc, size_t desclen)
{
	memset(a, 0, sizeof(*a));
	memset(a->uid, 0x42, STORE_UID_LEN);
	a->uid[14] = (uint8_t)(i >> 8);
	a->uid[15] = (uint8_t)i;
	snprintf(desc, desclen,
		 "{\"identifying\":{\"host.name\":\"host-%u\"},\"non_identifying\":{\"env\":\"prod\",\"seq\":\"%" PRIu64
		 "\"}}",
		 i, seq);
	a->description_json = desc;
	a->cert_subject = "CN=stress,O=Example";
	a->health_json = "{\"healthy\":true}";
	a->healthy = 1;
	a->last_sequence_num = seq;
	a->first_seen = a->last_seen = now_ms();
	a->capabilities = 3;
}

static int do_write(const char *db, double seconds)
{
	struct store *st;
	int64_t serial = 0, tick = 0;
	double end = seconds > 0 ? mono_s() + seconds : 0;
	char desc[256], yaml[256], sel[64];
	uint64_t seq = 0;
	int r;

	if (open_store(db, &st))
		return 1;
	if ((r = store_policy_max_serial(st, &serial))) {
		fprintf(stderr, "store_stress: max serial: %s\n", strerror(-r));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	srandom((unsigned)(now_ms() ^ getpid()));
	while (!end || mono_s() < end) {
		struct store_agent a;

		tick++;
		agent_fill(&a, (unsigned)(random() % STRESS_AGENTS), ++seq, desc, sizeof(desc));
		if ((r = store_agent_put(st, &a))) {
			fprintf(stderr, "store_stress: agent put: %s\n", strerror(-r));
			return 1;
		}
		if (tick % 7 == 0) {
			struct store_policy p = { .serial = serial + 1, .signer = "CN=signer", .uploaded_by = "CN=admin" };
			int n = snprintf(yaml, sizeof(yaml), "serial: %" PRId64 "\n# %ld\n", serial + 1, random());

			p.yaml = (uint8_t *)yaml;
			p.yaml_len = (size_t)n;
			p.sig = (uint8_t *)yaml; /* any bytes: the store does not verify */
			p.sig_len = (size_t)n;
			p.uploaded_at = now_ms();
			if ((r = store_policy_add(st, &p))) {
				fprintf(stderr, "store_stress: policy add %" PRId64 ": %s\n", serial + 1, strerror(-r));
				return 1;
			}
			serial++;
			printf("serial %" PRId64 "\n", serial);
		}
		if (tick % 11 == 0 && serial > 0) {
			int64_t id;

			snprintf(sel, sizeof(sel), "host.name=host-%ld", random() % STRESS_AGENTS);
			if ((r = store_assign(st, sel, 1 + random() % serial, "CN=admin", now_ms(), &id))) {
				fprintf(stderr, "store_stress: assign: %s\n", strerror(-r));
				return 1;
			}
		}
	}
	store_close(st);
	return 0;
}

struct check {
	int64_t last_serial, last_at, last_id, max_serial;
	unsigned n_policies, n_assignments, n_agents, bad;
	struct store *st;
};

static int check_policy(const struct store_policy *p, void *arg)
{
	struct check *c = arg;
	char want[64];
	int n = snprintf(want, sizeof(want), "serial: %" PRId64 "\n", p->serial);

	if (p->serial <= c->last_serial || p->uploaded_at < c->last_at) {
		fprintf(stderr, "policy %" PRId64 ": serial or upload time goes backwards\n", p->serial);
		c->bad++;
	}
	if (p->yaml_len < (size_t)n || memcmp(p->yaml, want, (size_t)n) != 0 || p->sig_len != p->yaml_len) {
		fprintf(stderr, "policy %" PRId64 ": YAML or signature not the one written\n", p->serial);
		c->bad++;
	}
	c->last_serial = p->serial;
	c->last_at = p->uploaded_at;
	c->max_serial = p->serial;
	c->n_policies++;
	return 0;
}

static int check_assignment(const struct store_assignment *a, void *arg)
{
	struct check *c = arg;
	struct store_policy p;
	int r;

	if (a->id <= c->last_id || a->assigned_at < c->last_at) {
		fprintf(stderr, "assignment %" PRId64 ": id or time goes backwards\n", a->id);
		c->bad++;
	}
	r = store_policy_get(c->st, a->serial, &p);
	if (r) {
		fprintf(stderr, "assignment %" PRId64 ": policy %" PRId64 ": %s\n", a->id, a->serial, strerror(-r));
		c->bad++;
	} else {
		store_policy_release(&p);
	}
	c->last_id = a->id;
	c->last_at = a->assigned_at;
	c->n_assignments++;
	return 0;
}

static int check_agent(const struct store_agent *a, void *arg)
{
	struct check *c = arg;
	char want[64];

	snprintf(want, sizeof(want), "\"seq\":\"%" PRIu64 "\"", a->last_sequence_num);
	if (!a->description_json || !strstr(a->description_json, want) || a->first_seen > a->last_seen ||
	    !a->cert_subject || a->healthy != 1 || !a->health_json) {
		fprintf(stderr, "agent %02x%02x: row not whole\n", a->uid[14], a->uid[15]);
		c->bad++;
	}
	c->n_agents++;
	return 0;
}

static int do_check(const char *db)
{
	struct check c = { 0 };
	int r;

	if (open_store(db, &c.st))
		return 1;
	r = store_policy_list(c.st, check_policy, &c);
	c.last_at = 0;
	if (r == 0)
		r = store_assignment_list(c.st, check_assignment, &c);
	if (r == 0)
		r = store_agent_list(c.st, check_agent, &c);
	if (r) {
		fprintf(stderr, "store_stress: reading the store: %s\n", strerror(-r));
		store_close(c.st);
		return 1;
	}
	store_close(c.st);
	printf("max_serial %" PRId64 "\npolicies %u\nassignments %u\nagents %u\nbad %u\n", c.max_serial,
	       c.n_policies, c.n_assignments, c.n_agents, c.bad);
	return c.bad ? 1 : 0;
}

static int do_rate(const char *db, long n)
{
	struct store *st;
	char desc[256];
	double t0, dt;
	int r;

	if (open_store(db, &st))
		return 1;
	t0 = mono_s();
	for (long i = 0; i < n; i++) {
		struct store_agent a;

		agent_fill(&a, (unsigned)(i % 10000), (uint64_t)i, desc, sizeof(desc));
		a.uid[13] = (uint8_t)((i % 10000) >> 16);
		if ((r = store_agent_put(st, &a))) {
			fprintf(stderr, "store_stress: agent put: %s\n", strerror(-r));
			return 1;
		}
	}
	dt = mono_s() - t0;
	printf("rate %.0f/s (%ld store_agent_put in %.3f s, %.1f us each)\n", (double)n / dt, n, dt, dt * 1e6 / (double)n);
	store_close(st);
	return 0;
}

/* One AgentToServer from agent i, packed into buf; its length. */
static size_t poll_msg(uint8_t *buf, unsigned i, uint64_t seq, bool full)
{
	Opamp__Proto__V1__AgentToServer m;
	Opamp__Proto__V1__AgentDescription d;
	Opamp__Proto__V1__KeyValue kv[2], *id = &kv[0], *nonid = &kv[1];
	Opamp__Proto__V1__AnyValue av[2];
	uint8_t uid[STORE_UID_LEN];
	char host[32];

	opamp__proto__v1__agent_to_server__init(&m);
	memset(uid, 0x17, sizeof(uid));
	memcpy(uid, &i, sizeof(i));
	m.instance_uid.data = uid;
	m.instance_uid.len = sizeof(uid);
	m.sequence_num = seq;
	m.capabilities = 0x1007;
	if (full) {
		snprintf(host, sizeof(host), "host-%u", i);
		opamp__proto__v1__agent_description__init(&d);
		for (int k = 0; k < 2; k++) {
			opamp__proto__v1__key_value__init(&kv[k]);
			opamp__proto__v1__any_value__init(&av[k]);
			av[k].value_case = OPAMP__PROTO__V1__ANY_VALUE__VALUE_STRING_VALUE;
			kv[k].value = &av[k];
		}
		kv[0].key = "host.name";
		av[0].string_value = host;
		kv[1].key = "env";
		av[1].string_value = i % 2 ? "prod" : "dev";
		d.identifying_attributes = &id;
		d.n_identifying_attributes = 1;
		d.non_identifying_attributes = &nonid;
		d.n_non_identifying_attributes = 1;
		m.agent_description = &d;
	}
	return opamp__proto__v1__agent_to_server__pack(&m, buf);
}

static int do_poll(const char *db, unsigned agents)
{
	struct cp_identity id = { .role = CP_ROLE_AGENT };
	struct store_policy p = { .serial = 1, .signer = "CN=signer", .uploaded_by = "CN=admin" };
	struct store *st;
	struct opampsrv *srv;
	uint8_t buf[512];
	int64_t max = 0, aid;
	double t0, dt;
	int r;

	if (open_store(db, &st))
		return 1;
	snprintf(id.subject, sizeof(id.subject), "CN=poll,O=Example");
	if (store_policy_max_serial(st, &max) == 0 && max == 0) {
		p.yaml = (uint8_t *)"serial: 1\n";
		p.yaml_len = 10;
		p.sig = (uint8_t *)"sig";
		p.sig_len = 3;
		if (store_policy_add(st, &p) || store_assign(st, "env=prod", 1, "CN=admin", now_ms(), &aid))
			return 1;
	}
	if ((r = opampsrv_new(st, &srv)))
		return 1;
	for (int round = 0; round < 4; round++) {
		t0 = mono_s();
		for (unsigned i = 0; i < agents; i++) {
			struct opampsrv_reply rep;
			size_t len = poll_msg(buf, i, (uint64_t)round, round == 0);

			r = opampsrv_handle(srv, &id, buf, len, now_ms(), &rep);
			if (r || rep.http_status != 200) {
				fprintf(stderr, "store_stress: poll: %d %d %s\n", r, rep.http_status, rep.log);
				return 1;
			}
			free(rep.body);
		}
		dt = mono_s() - t0;
		printf("poll %s: %.0f/s (%u agents in %.3f s, %.1f us each)\n", round ? "steady" : "first",
		       agents / dt, agents, dt, dt * 1e6 / agents);
	}
	opampsrv_free(srv);
	store_close(st);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "poll") == 0)
		return do_poll(argv[2], argc > 3 ? (unsigned)atoi(argv[3]) : 10000);
	if (argc >= 3 && strcmp(argv[1], "write") == 0)
		return do_write(argv[2], argc > 3 ? atof(argv[3]) : 0);
	if (argc == 3 && strcmp(argv[1], "check") == 0)
		return do_check(argv[2]);
	/* The SQLite schema version this build migrates to. */
	if (argc == 2 && strcmp(argv[1], "latest") == 0)
		return printf("%d\n", store_sqlite_schema_latest) < 0;
	if (argc >= 3 && strcmp(argv[1], "rate") == 0)
		return do_rate(argv[2], argc > 3 ? atol(argv[3]) : 20000);
	fprintf(stderr, "usage: store_stress write DB [SECONDS] | check DB | rate DB [N] | poll DB [AGENTS] | latest\n");
	return 64;
}
