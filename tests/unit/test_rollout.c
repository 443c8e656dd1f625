/*
 * test_rollout.c - the staged rollouts engine (rollout.h) on a real store
 * and a fake clock (every call is given its "now"): stages complete after
 * the bake, a canary failure halts the rollout with the agent and reason
 * named and nobody new is offered it, a missing report times out, health
 * turning bad after applying and a tenant turning unreachable fail a
 * member, halt/resume/abort, a new engine on the same store carries on
 * where the first stopped (restart), two engines on one store advance a
 * stage once, an agent offline during its stage is still offered it, a
 * completed rollout records its assignment (a new agent gets the policy
 * through it) unless its last stage left agents out, overlapping
 * rollouts are refused naming the shared agents, and bad specs are
 * refused with the reason.
 *
 * The cases run on SQLite, and again on PostgreSQL (pg_*) when
 * VIGIL_TEST_PG_URL is set (tests/integration/store_pg.sh).
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

#include "assignset.h"
#include "hexdigit.h"
#include "pgtest.h"
#include "rollout.h"
#include "rollplan.h"
#include "selector.h"
#include "store.h"

#define MAX_EV 64

struct fixture {
	char dir[64];
	char url[512];
	struct store *st;
	struct rollout *ro;
	struct cpevent ev[MAX_EV];
	char detail[MAX_EV][512];
	size_t n_ev;
};

static void on_event(const struct cpevent *ev, void *arg)
{
	struct fixture *f = arg;

	assert_true(f->n_ev < MAX_EV);
	f->ev[f->n_ev] = *ev;
	f->detail[f->n_ev][0] = '\0';
	if (ev->detail)
		snprintf(f->detail[f->n_ev], sizeof(f->detail[0]), "%s", ev->detail);
	f->ev[f->n_ev].detail = f->detail[f->n_ev];
	f->n_ev++;
}

static void uid_of(int i, uint8_t uid[STORE_UID_LEN])
{
	memset(uid, 0, STORE_UID_LEN);
	uid[0] = 0xa0;
	uid[15] = (uint8_t)i;
}

static void put_agent(struct store *st, int i, const char *env)
{
	struct store_agent a = { 0 };
	char desc[200];

	uid_of(i, a.uid);
	snprintf(desc, sizeof(desc), "{\"identifying\":{\"host.name\":\"h%d\"},\"non_identifying\":{\"env\":\"%s\"}}",
		 i, env);
	a.description_json = desc;
	a.cert_subject = "CN=agent";
	a.first_seen = a.last_seen = 1;
	a.healthy = 1;
	assert_int_equal(store_agent_put(st, &a), 0);
}

static void put_policy(struct store *st, int64_t serial)
{
	uint8_t yaml[] = "serial: 1\n", sig[] = "sig";
	struct store_policy p = { .serial = serial, .yaml = yaml, .yaml_len = sizeof(yaml) - 1, .sig = sig,
				  .sig_len = 3, .signer = "CN=signer", .uploaded_by = "CN=admin", .uploaded_at = 1 };

	assert_int_equal(store_policy_add(st, &p), 0);
}

static void open_store(struct fixture *f)
{
	char err[256];

	assert_int_equal(store_open(f->url, &f->st, err, sizeof(err)), 0);
	assert_int_equal(rollout_new(f->st, &f->ro), 0);
	rollout_set_events(f->ro, on_event, f);
}

static int setup_at(void **state, const char *url)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	if (url) {
		pg_empty();
		snprintf(f->url, sizeof(f->url), "%s", url);
	} else {
		snprintf(f->dir, sizeof(f->dir), "/tmp/test_rollout.XXXXXX");
		assert_non_null(mkdtemp(f->dir));
		snprintf(f->url, sizeof(f->url), "sqlite:%s/cp.db", f->dir);
	}
	open_store(f);
	put_policy(f->st, 1);
	put_policy(f->st, 2);
	/* Six prod agents (1..6), two dev (7, 8). */
	for (int i = 1; i <= 6; i++)
		put_agent(f->st, i, "prod");
	put_agent(f->st, 7, "dev");
	put_agent(f->st, 8, "dev");
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_at(state, NULL);
}

static int setup_pg(void **state)
{
	return setup_at(state, pg_url());
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[200];

	rollout_free(f->ro);
	store_close(f->st);
	if (f->dir[0]) {
		const char *sfx[] = { "", "-wal", "-shm" };

		for (int i = 0; i < 3; i++) {
			snprintf(p, sizeof(p), "%s/cp.db%s", f->dir, sfx[i]);
			unlink(p);
		}
		rmdir(f->dir);
	}
	free(f);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Helpers. */

static int64_t start(struct fixture *f, const char *selector, const char *stages, int64_t bake, int64_t max_fail,
		     int64_t timeout, int64_t now)
{
	struct rollout_spec spec = { .serial = 2, .selector = selector, .stages = stages, .bake_ms = bake,
				     .max_failures = max_fail, .report_timeout_ms = timeout };
	char err[512];
	int64_t id = 0;
	int r = rollout_start(f->ro, &spec, "CN=admin", now, &id, err, sizeof(err));

	if (r)
		fail_msg("rollout_start: %d %s", r, err);
	return id;
}

/* The uid of the member of rank in rollout id. */
struct nth {
	int64_t rank;
	struct store_rollout_member m;
	bool found;
};

static int nth_cb(const struct store_rollout_member *m, void *arg)
{
	struct nth *n = arg;

	if (m->rank == n->rank) {
		n->m = *m;
		n->m.reason = m->reason ? strdup(m->reason) : NULL;
		n->found = true;
	}
	return 0;
}

static struct store_rollout_member member(struct fixture *f, int64_t id, int64_t rank)
{
	struct nth n = { .rank = rank };

	assert_int_equal(store_rollout_members(f->st, id, nth_cb, &n), 0);
	assert_true(n.found);
	return n.m;
}

static void report(struct fixture *f, enum cpevent_kind kind, const uint8_t uid[STORE_UID_LEN], int64_t serial,
		   int healthy, const char *detail, int64_t now)
{
	struct cpevent ev = { .kind = kind, .at = now, .serial = serial, .healthy = healthy, .detail = detail };

	memcpy(ev.uid, uid, STORE_UID_LEN);
	assert_int_equal(rollout_event(f->ro, &ev), 0);
}

static void applied(struct fixture *f, int64_t id, int64_t rank, int64_t now)
{
	struct store_rollout_member m = member(f, id, rank);

	rollout_sent(f->ro, m.uid, 2, now);
	report(f, CPEVENT_POLICY_APPLIED, m.uid, 2, 1, NULL, now);
	free(m.reason);
}

/* How many of agents 1..8 are offered serial now. */
static int offered(struct fixture *f, int64_t serial)
{
	int n = 0;

	for (int i = 1; i <= 8; i++) {
		uint8_t uid[STORE_UID_LEN];

		uid_of(i, uid);
		n += rollout_offer(f->ro, uid) == serial;
	}
	assert_int_equal(rollout_take_error(f->ro), 0);
	return n;
}

static struct store_rollout get(struct fixture *f, int64_t id)
{
	struct store_rollout r;

	assert_int_equal(store_rollout_get(f->st, id, &r), 0);
	return r;
}

static int state_of(struct fixture *f, int64_t id)
{
	struct store_rollout r = get(f, id);
	int s = r.state;

	store_rollout_release(&r);
	return s;
}

static int stage_now(struct fixture *f, int64_t id)
{
	struct store_rollout r = get(f, id);
	int s = r.stage;

	store_rollout_release(&r);
	return s;
}

static size_t count_ev(struct fixture *f, enum cpevent_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < f->n_ev; i++)
		n += f->ev[i].kind == kind;
	return n;
}

/* ---------------------------------------------------------------------------
 * Cases. */

/* 1,50%,100% over six agents: 1, then 3, then 6; each after its bake. */
static void test_stages_complete(void **state)
{
	struct fixture *f = *state;
	struct store_rollout_member canary;
	uint8_t want[6][STORE_UID_LEN];
	int64_t id = start(f, "env=prod", "1,50%,100%", 1000, 0, 10000, 0);
	struct store_rollout r;

	assert_true(id > 0);
	assert_int_equal(count_ev(f, CPEVENT_ROLLOUT_STAGE_STARTED), 1);
	/* The canary is the first of the documented order; dev agents are not members. */
	for (int i = 0; i < 6; i++)
		uid_of(i + 1, want[i]);
	assert_int_equal(rollplan_order(id, want, 6), 0);
	canary = member(f, id, 0);
	assert_memory_equal(canary.uid, want[0], STORE_UID_LEN);
	assert_int_equal(canary.stage, 0);
	assert_int_equal(member(f, id, 5).stage, 2);
	assert_int_equal(offered(f, 2), 1);
	assert_int_equal(rollout_offer(f->ro, canary.uid), 2);

	assert_int_equal(rollout_advance(f->ro, 100), 0);
	applied(f, id, 0, 200);
	assert_int_equal(rollout_advance(f->ro, 1100), 0); /* baked 900 ms of 1000 */
	assert_int_equal(stage_now(f, id), 0);
	assert_true(rollout_advance(f->ro, 1200) > 0);
	r = get(f, id);
	assert_int_equal(r.stage, 1);
	assert_int_equal(r.stage_started_at, 1200);
	store_rollout_release(&r);
	assert_int_equal(offered(f, 2), 3);
	assert_true(member(f, id, 0).succeeded_at == 1200);

	for (int k = 1; k < 3; k++)
		applied(f, id, k, 1300);
	assert_true(rollout_advance(f->ro, 2300) > 0);
	assert_int_equal(offered(f, 2), 6);
	for (int k = 3; k < 6; k++)
		applied(f, id, k, 2400);
	assert_true(rollout_advance(f->ro, 3400) > 0);
	r = get(f, id);
	assert_int_equal(r.state, STORE_ROLLOUT_COMPLETED);
	assert_true(r.assignment_id > 0);
	store_rollout_release(&r);
	assert_int_equal(count_ev(f, CPEVENT_ROLLOUT_STAGE_STARTED), 3);
	assert_int_equal(count_ev(f, CPEVENT_ROLLOUT_STAGE_COMPLETED), 3);
	assert_int_equal(count_ev(f, CPEVENT_ROLLOUT_COMPLETED), 1);
	assert_int_equal(f->ev[f->n_ev - 1].kind, CPEVENT_ROLLOUT_COMPLETED);
	assert_int_equal(f->ev[f->n_ev - 1].rollout_id, id);
	/* Completed with an assignment: the offers go through it now. */
	assert_int_equal(offered(f, 2), 0);
	free(canary.reason);
}

struct assigned {
	int64_t serial;
	char by[64];
	int n;
};

static int assigned_cb(const struct store_assignment *a, void *arg)
{
	struct assigned *as = arg;

	as->serial = a->serial;
	snprintf(as->by, sizeof(as->by), "%s", a->assigned_by ? a->assigned_by : "");
	as->n++;
	return 0;
}

/* After completion, a new agent that matches the selector resolves to the serial. */
static void test_completed_assigns(void **state)
{
	struct fixture *f = *state;
	int64_t id = start(f, "env=prod", "100%", 0, 0, 10000, 0);
	struct assigned as = { 0 };
	struct assignset set;
	json_t *desc;

	for (int k = 0; k < 6; k++)
		applied(f, id, k, 10);
	assert_true(rollout_advance(f->ro, 20) > 0);
	assert_int_equal(state_of(f, id), STORE_ROLLOUT_COMPLETED);
	assert_int_equal(store_assignment_list(f->st, assigned_cb, &as), 0);
	assert_int_equal(as.n, 1);
	assert_int_equal(as.serial, 2);
	assert_string_equal(as.by, "rollout 1");
	put_agent(f->st, 9, "prod");
	assert_int_equal(assignset_load(f->st, &set), 0);
	desc = selector_description("{\"identifying\":{},\"non_identifying\":{\"env\":\"prod\"}}");
	assert_int_equal(assignset_resolve(&set, desc), 2);
	json_decref(desc);
	desc = selector_description("{\"identifying\":{},\"non_identifying\":{\"env\":\"dev\"}}");
	assert_int_equal(assignset_resolve(&set, desc), 0);
	json_decref(desc);
	assignset_release(&set);
}

/* The canary fails: halted by itself, named with its reason, nobody new offered. */
static void test_canary_fails_halts(void **state)
{
	struct fixture *f = *state;
	int64_t id = start(f, "env=prod", "1,50%,100%", 1000, 0, 10000, 0);
	struct store_rollout_member c = member(f, id, 0);
	struct store_rollout r;
	char hex[33], err[256];

	rollout_sent(f->ro, c.uid, 2, 50);
	report(f, CPEVENT_POLICY_FAILED, c.uid, 2, 1, "policy.yaml:3:1: unknown key", 100);
	assert_true(rollout_advance(f->ro, 200) > 0);
	r = get(f, id);
	assert_int_equal(r.state, STORE_ROLLOUT_HALTED);
	hexdigit_encode(c.uid, STORE_UID_LEN, hex);
	assert_non_null(r.reason);
	assert_non_null(strstr(r.reason, "1 failure (more than --max-failures 0)"));
	assert_non_null(strstr(r.reason, hex));
	assert_non_null(strstr(r.reason, "policy failed: policy.yaml:3:1: unknown key"));
	store_rollout_release(&r);
	assert_int_equal(count_ev(f, CPEVENT_ROLLOUT_HALTED), 1);
	assert_int_equal(count_ev(f, CPEVENT_ROLLOUT_STAGE_COMPLETED), 0);
	free(c.reason);
	c = member(f, id, 0);
	assert_int_equal(c.failed_at, 100);
	assert_string_equal(c.reason, "policy failed: policy.yaml:3:1: unknown key");
	/* Only the canary (sent) keeps it; time passing starts no stage. */
	assert_int_equal(offered(f, 2), 1);
	assert_int_equal(rollout_advance(f->ro, 100000), 0);
	assert_int_equal(offered(f, 2), 1);

	/* Halting a halted rollout: refused with its state. */
	assert_int_equal(rollout_halt(f->ro, id, "CN=admin", 300, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "is halted"));
	/* Resume: the old failure no longer counts; stage 0 is done, stage 1 starts. */
	assert_int_equal(rollout_resume(f->ro, id, "CN=admin", 400, err, sizeof(err)), 0);
	assert_true(rollout_advance(f->ro, 500) > 0);
	r = get(f, id);
	assert_int_equal(r.state, STORE_ROLLOUT_RUNNING);
	assert_int_equal(r.stage, 1);
	assert_int_equal(r.failures_base, 1);
	assert_null(r.reason);
	store_rollout_release(&r);
	assert_int_equal(offered(f, 2), 3);
	/* Abort: final, nobody is offered it, and it cannot be resumed. */
	assert_int_equal(rollout_abort(f->ro, id, "CN=admin", 600, err, sizeof(err)), 0);
	assert_int_equal(state_of(f, id), STORE_ROLLOUT_ABORTED);
	assert_int_equal(offered(f, 2), 0);
	assert_int_equal(rollout_resume(f->ro, id, "CN=admin", 700, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "is aborted"));
	assert_int_equal(rollout_halt(f->ro, 99, "CN=admin", 700, err, sizeof(err)), -ENOENT);
	free(c.reason);
}

/* max_failures 1: one failure is tolerated, the second halts. */
static void test_max_failures(void **state)
{
	struct fixture *f = *state;
	int64_t id = start(f, "env=prod", "2,100%", 0, 1, 10000, 0);
	struct store_rollout_member a = member(f, id, 0), b;

	report(f, CPEVENT_POLICY_FAILED, a.uid, 2, 1, "bad", 10);
	applied(f, id, 1, 10);
	assert_true(rollout_advance(f->ro, 20) > 0);
	assert_int_equal(stage_now(f, id), 1);
	b = member(f, id, 4);
	report(f, CPEVENT_POLICY_FAILED, b.uid, 2, 1, "worse", 30);
	assert_true(rollout_advance(f->ro, 40) > 0);
	assert_int_equal(state_of(f, id), STORE_ROLLOUT_HALTED);
	/* The reason names the count and the failures, newest first. */
	{
		struct store_rollout r = get(f, id);
		char ha[33], hb[33], want[256];

		hexdigit_encode(a.uid, STORE_UID_LEN, ha);
		hexdigit_encode(b.uid, STORE_UID_LEN, hb);
		snprintf(want, sizeof(want),
			 "2 failures (more than --max-failures 1): %s: policy failed: worse; %s: policy failed: bad", hb,
			 ha);
		assert_string_equal(r.reason, want);
		store_rollout_release(&r);
	}
	free(a.reason);
	free(b.reason);
}

/* No report within the timeout: a failure, counted from the later of the stage's start and sent_at. */
static void test_report_timeout(void **state)
{
	struct fixture *f = *state;
	int64_t id = start(f, "env=prod", "1,100%", 0, 0, 5000, 0);
	struct store_rollout_member c = member(f, id, 0);
	struct store_rollout r;

	rollout_sent(f->ro, c.uid, 2, 3000);
	assert_int_equal(rollout_advance(f->ro, 7999), 0);
	assert_int_equal(state_of(f, id), STORE_ROLLOUT_RUNNING);
	assert_true(rollout_advance(f->ro, 8000) > 0);
	r = get(f, id);
	assert_int_equal(r.state, STORE_ROLLOUT_HALTED);
	assert_non_null(strstr(r.reason, "no report within 5s"));
	store_rollout_release(&r);
	free(c.reason);
	c = member(f, id, 0);
	assert_string_equal(c.reason, "no report within 5s");
	assert_int_equal(c.failed_at, 8000);
	free(c.reason);
}

/* Unhealthy after applying (before the bake ends) fails; unhealthy before applying does not. */
static void test_unhealthy_after_apply(void **state)
{
	struct fixture *f = *state;
	int64_t id = start(f, "env=prod", "1,100%", 10000, 0, 60000, 0);
	struct store_rollout_member c = member(f, id, 0);

	report(f, CPEVENT_HEALTH_CHANGED, c.uid, 0, 0, "collector exited", 50);
	assert_int_equal(rollout_advance(f->ro, 60), 0);
	assert_int_equal(state_of(f, id), STORE_ROLLOUT_RUNNING);
	applied(f, id, 0, 100);
	report(f, CPEVENT_HEALTH_CHANGED, c.uid, 0, 0, "oom", 5000);
	assert_true(rollout_advance(f->ro, 5100) > 0);
	assert_int_equal(state_of(f, id), STORE_ROLLOUT_HALTED);
	free(c.reason);
	c = member(f, id, 0);
	assert_string_equal(c.reason, "unhealthy after applying: oom");
	free(c.reason);
}

/* Unhealthy after the member succeeded: not a failure of the rollout. */
static void test_unhealthy_after_success(void **state)
{
	struct fixture *f = *state;
	int64_t id = start(f, "env=prod", "1,100%", 1000, 0, 60000, 0);
	struct store_rollout_member c = member(f, id, 0);

	applied(f, id, 0, 100);
	assert_true(rollout_advance(f->ro, 1100) > 0);
	report(f, CPEVENT_HEALTH_CHANGED, c.uid, 0, 0, "later", 1200);
	assert_int_equal(rollout_advance(f->ro, 1300), 0);
	assert_int_equal(state_of(f, id), STORE_ROLLOUT_RUNNING);
	free(c.reason);
	c = member(f, id, 0);
	assert_int_equal(c.failed_at, 0);
	free(c.reason);
}

/* A tenant turning unreachable after the policy was sent fails the member. */
static void test_tenant_unreachable(void **state)
{
	struct fixture *f = *state;
	int64_t id = start(f, "env=prod", "1,100%", 10000, 0, 60000, 0);
	struct store_rollout_member c = member(f, id, 0), d = member(f, id, 3);

	/* Not sent yet: not this rollout's doing. */
	report(f, CPEVENT_TENANT_UNREACHABLE, c.uid, 0, 1, "web", 10);
	assert_int_equal(rollout_advance(f->ro, 20), 0);
	rollout_sent(f->ro, c.uid, 2, 30);
	/* A member whose stage has not started is not offered, so not sent. */
	rollout_sent(f->ro, d.uid, 2, 30);
	report(f, CPEVENT_TENANT_UNREACHABLE, c.uid, 0, 1, "web", 40);
	assert_true(rollout_advance(f->ro, 50) > 0);
	assert_int_equal(state_of(f, id), STORE_ROLLOUT_HALTED);
	free(c.reason);
	free(d.reason);
	c = member(f, id, 0);
	d = member(f, id, 3);
	assert_non_null(strstr(c.reason, "tenant web unreachable"));
	assert_int_equal(d.sent_at, 0);
	free(c.reason);
	free(d.reason);
}

/* A new engine on the same store (vigil-cp restarted) carries on. */
static void test_restart(void **state)
{
	struct fixture *f = *state;
	int64_t id = start(f, "env=prod", "1,50%,100%", 1000, 0, 10000, 0);

	applied(f, id, 0, 100);
	assert_true(rollout_advance(f->ro, 1100) > 0);
	/* Killed: nothing in memory survives. */
	rollout_free(f->ro);
	store_close(f->st);
	open_store(f);
	assert_int_equal(stage_now(f, id), 1);
	assert_int_equal(offered(f, 2), 3);
	for (int k = 1; k < 3; k++)
		applied(f, id, k, 1200);
	assert_true(rollout_advance(f->ro, 2200) > 0);
	for (int k = 3; k < 6; k++)
		applied(f, id, k, 2300);
	assert_true(rollout_advance(f->ro, 3300) > 0);
	assert_int_equal(state_of(f, id), STORE_ROLLOUT_COMPLETED);
}

/* Two engines (two servers) on one store: a stage is started once. */
static void test_two_engines(void **state)
{
	struct fixture *f = *state;
	struct store *st2;
	struct rollout *ro2;
	char err[256];
	int64_t id = start(f, "env=prod", "1,100%", 0, 0, 10000, 0);
	size_t before;

	assert_int_equal(store_open(f->url, &st2, err, sizeof(err)), 0);
	assert_int_equal(rollout_new(st2, &ro2), 0);
	rollout_set_events(ro2, on_event, f);
	applied(f, id, 0, 10);
	before = count_ev(f, CPEVENT_ROLLOUT_STAGE_STARTED);
	assert_true(rollout_advance(ro2, 20) > 0);
	assert_int_equal(rollout_advance(f->ro, 20), 0);
	assert_int_equal(count_ev(f, CPEVENT_ROLLOUT_STAGE_STARTED), before + 1);
	/* The first engine sees the stage the second started once told to reload. */
	rollout_invalidate(f->ro);
	assert_int_equal(offered(f, 2), 6);
	rollout_free(ro2);
	store_close(st2);
}

/* An agent that never reported during its stage is still offered the policy while running. */
static void test_offline_agent(void **state)
{
	struct fixture *f = *state;
	int64_t id = start(f, "env=prod", "1,100%", 0, 1, 5000, 0);
	struct store_rollout_member late;

	applied(f, id, 0, 10);
	assert_true(rollout_advance(f->ro, 20) > 0);
	for (int k = 1; k < 5; k++)
		applied(f, id, k, 30);
	late = member(f, id, 5);
	assert_int_equal(rollout_offer(f->ro, late.uid), 2);
	/* Its report times out (1 failure, allowed): the rollout completes. */
	assert_true(rollout_advance(f->ro, 5020) > 0);
	assert_int_equal(state_of(f, id), STORE_ROLLOUT_COMPLETED);
	free(late.reason);
	late = member(f, id, 5);
	assert_string_equal(late.reason, "no report within 5s");
	free(late.reason);
}

/* A last stage short of everyone: no assignment; who it reached keeps it, the rest never get it. */
static void test_partial_rollout(void **state)
{
	struct fixture *f = *state;
	int64_t id = start(f, "env=prod", "1,50%", 0, 0, 5000, 0);
	struct store_rollout r;
	struct assigned as = { 0 };

	applied(f, id, 0, 10);
	assert_true(rollout_advance(f->ro, 20) > 0);
	for (int k = 1; k < 3; k++)
		applied(f, id, k, 30);
	assert_true(rollout_advance(f->ro, 40) > 0);
	r = get(f, id);
	assert_int_equal(r.state, STORE_ROLLOUT_COMPLETED);
	assert_int_equal(r.assignment_id, 0);
	store_rollout_release(&r);
	assert_int_equal(store_assignment_list(f->st, assigned_cb, &as), 0);
	assert_int_equal(as.n, 0);
	assert_int_equal(offered(f, 2), 3);
	assert_non_null(strstr(f->detail[f->n_ev - 1], "did not cover every member"));
}

/* A second rollout sharing agents with a running one is refused, naming them. */
static void test_overlap_refused(void **state)
{
	struct fixture *f = *state;
	struct rollout_spec spec = { .serial = 2, .selector = "host.name=h3", .stages = "1", .bake_ms = 0,
				     .report_timeout_ms = 1000 };
	int64_t id = start(f, "env=prod", "1,100%", 0, 0, 10000, 0), id2 = 0;
	char err[512], hex[33];
	uint8_t uid[STORE_UID_LEN];

	uid_of(3, uid);
	hexdigit_encode(uid, STORE_UID_LEN, hex);
	assert_int_equal(rollout_start(f->ro, &spec, "CN=admin", 10, &id2, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "1 agent is already in a running or halted rollout"));
	assert_non_null(strstr(err, hex));
	assert_non_null(strstr(err, "(rollout 1)"));
	/* Disjoint agents: fine. */
	spec.selector = "env=dev";
	assert_int_equal(rollout_start(f->ro, &spec, "CN=admin", 10, &id2, err, sizeof(err)), 0);
	assert_true(id2 > id);
	/* Halted still counts; aborted frees the agents. */
	spec.selector = "host.name=h3";
	assert_int_equal(rollout_halt(f->ro, id, "CN=admin", 20, err, sizeof(err)), 0);
	assert_int_equal(rollout_start(f->ro, &spec, "CN=admin", 30, &id2, err, sizeof(err)), -EBUSY);
	assert_int_equal(rollout_abort(f->ro, id, "CN=admin", 40, err, sizeof(err)), 0);
	assert_int_equal(rollout_start(f->ro, &spec, "CN=admin", 50, &id2, err, sizeof(err)), 0);
}

static void expect_refused(struct fixture *f, struct rollout_spec spec, int want, const char *reason)
{
	char err[512] = "";
	int64_t id = 0;

	assert_int_equal(rollout_start(f->ro, &spec, "CN=admin", 0, &id, err, sizeof(err)), want);
	if (!strstr(err, reason))
		fail_msg("\"%s\" does not say \"%s\"", err, reason);
}

static void test_bad_specs(void **state)
{
	struct fixture *f = *state;
	struct rollout_spec ok = { .serial = 2, .selector = "env=prod", .stages = "1,100%", .bake_ms = 0,
				   .report_timeout_ms = 1000 },
			    s;

	s = ok, s.stages = "0";
	expect_refused(f, s, -EINVAL, "stages: stage 1: 0 covers no agent");
	s = ok, s.stages = "150%";
	expect_refused(f, s, -EINVAL, "over 100%");
	s = ok, s.stages = "";
	expect_refused(f, s, -EINVAL, "empty stages");
	s = ok, s.stages = "5,10%";
	expect_refused(f, s, -EINVAL, "stages: stage 2 (10%) covers 1 of 6 agents, fewer than stage 1's 5");
	s = ok, s.selector = "env";
	expect_refused(f, s, -EINVAL, "selector: term 1");
	s = ok, s.selector = "env=staging";
	expect_refused(f, s, -ENODATA, "no agent matches selector env=staging");
	s = ok, s.serial = 7;
	expect_refused(f, s, -ENOENT, "no policy with serial 7");
	s = ok, s.report_timeout_ms = 0;
	expect_refused(f, s, -EINVAL, "report_timeout_ms must be");
	s = ok, s.bake_ms = -1;
	expect_refused(f, s, -EINVAL, "bake_ms must be");
	s = ok, s.max_failures = -1;
	expect_refused(f, s, -EINVAL, "max_failures must be");
	/* Nothing was stored by a refused start. */
	assert_int_equal(offered(f, 2), 0);
}

/*
 * PostgreSQL: a rollout whose row another server holds (SELECT ... FOR
 * UPDATE in an open transaction) is left alone by this server's tick, and
 * advanced once the other lets go: one server at a time.
 */
static void test_pg_locked_rollout_skipped(void **state)
{
	struct fixture *f = *state;
	int64_t id = start(f, "env=prod", "1,100%", 0, 0, 10000, 0);
	PGconn *other = pg_connect();
	PGresult *res;
	char sql[128];

	applied(f, id, 0, 10);
	res = PQexec(other, "BEGIN");
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	snprintf(sql, sizeof(sql), "SELECT id FROM rollouts WHERE id = %lld FOR UPDATE", (long long)id);
	res = PQexec(other, sql);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(res), 1);
	PQclear(res);
	/* Held elsewhere: skipped at once (no wait), nothing changed. */
	assert_int_equal(rollout_advance(f->ro, 20), 0);
	assert_int_equal(stage_now(f, id), 0);
	res = PQexec(other, "COMMIT");
	PQclear(res);
	PQfinish(other);
	assert_true(rollout_advance(f->ro, 30) > 0);
	assert_int_equal(stage_now(f, id), 1);
}

/* Each case once per backend: "test_x" on SQLite, "pg_test_x" on PostgreSQL. */
#define CASE(p, fn, setup_fn) { p #fn, fn, setup_fn, teardown, NULL }
#define CASES(p, setup_fn)                                                                                \
	CASE(p, test_stages_complete, setup_fn), CASE(p, test_completed_assigns, setup_fn),               \
	CASE(p, test_canary_fails_halts, setup_fn), CASE(p, test_max_failures, setup_fn),                 \
	CASE(p, test_report_timeout, setup_fn), CASE(p, test_unhealthy_after_apply, setup_fn),            \
	CASE(p, test_unhealthy_after_success, setup_fn), CASE(p, test_tenant_unreachable, setup_fn),      \
	CASE(p, test_restart, setup_fn), CASE(p, test_two_engines, setup_fn),                             \
	CASE(p, test_offline_agent, setup_fn), CASE(p, test_partial_rollout, setup_fn),                   \
	CASE(p, test_overlap_refused, setup_fn), CASE(p, test_bad_specs, setup_fn)

int main(void)
{
	const struct CMUnitTest sqlite[] = { CASES("", setup) };
	const struct CMUnitTest pg[] = { CASES("pg_", setup_pg),
					 { "pg_test_locked_rollout_skipped", test_pg_locked_rollout_skipped, setup_pg,
					   teardown, NULL } };

	return pg_run_groups("rollout", sqlite, pg, NULL, NULL);
}
