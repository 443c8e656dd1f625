/*
 * test_cpaudit.c - the audit log end to end below HTTP: cpaudit writes
 * canonical records for fleet events and admin actions (blobs by hash,
 * refusals too) into a real store; two "servers" on one store keep one
 * tree; the admin API's audit routes (through api_handle) serve the size,
 * a signed checkpoint (503 without a key), the records as stored, and
 * proofs that verify; auditverify passes the log as written and names the
 * first bad index when a record is changed, deleted, swapped or inserted
 * directly in the database, and a truncated and re-signed history fails
 * against the checkpoint saved before; a gap in the stored indexes stops a
 * restart; records reach a journald socket with the stable MESSAGE_ID.
 *
 * With VIGIL_TEST_PG_URL set, the cases run again on PostgreSQL (pg_*).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "api.h"
#include "auditapi.h"
#include "auditverify.h"
#include "checkpoint.h"
#include "cpaudit.h"
#include "pgtest.h"

struct fx {
	char dir[64], path[128], url[512];
	bool pg;
	struct store *st;
	EVP_PKEY *key;
	struct cpaudit *au;
	struct api *api;
};

static const struct cp_identity admin = {
	.role = CP_ROLE_ADMIN,
	.subject = "CN=admin1,O=Example",
	.fingerprint = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12",
};

static struct cpaudit *open_log(struct fx *f, struct store *st, EVP_PKEY *key)
{
	struct cpaudit_config c = { .origin = "test/audit", .key = key, .journal_socket = "", .log_records = 0 };
	struct cpaudit *au = NULL;
	char err[512];

	if (cpaudit_new(st, &c, &au, err, sizeof(err)))
		fail_msg("cpaudit_new: %s", err);
	return au;
}

static int setup_on(void **state, const char *pg)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	if (pg) {
		f->pg = true;
		snprintf(f->url, sizeof(f->url), "%s", pg);
		pg_empty();
	} else {
		snprintf(f->dir, sizeof(f->dir), "/tmp/test_cpaudit.XXXXXX");
		assert_non_null(mkdtemp(f->dir));
		snprintf(f->path, sizeof(f->path), "%s/cp.db", f->dir);
		snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
	}
	if (store_open(f->url, &f->st, err, sizeof(err)))
		fail_msg("store_open: %s", err);
	f->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(f->key);
	f->au = open_log(f, f->st, f->key);
	assert_int_equal(api_new(f->st, NULL, &f->api), 0);
	api_set_on_action(f->api, cpaudit_on_action, f->au);
	api_set_audit(f->api, auditapi_handle, f->au);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_on(state, NULL);
}

static int setup_pg(void **state)
{
	return setup_on(state, pg_url());
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[200];

	api_free(f->api);
	cpaudit_free(f->au);
	store_close(f->st);
	EVP_PKEY_free(f->key);
	if (!f->pg) {
		unlink(f->path);
		snprintf(p, sizeof(p), "%s-wal", f->path);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", f->path);
		unlink(p);
		rmdir(f->dir);
	}
	free(f);
	return 0;
}

/* SQL on the fixture's database, whichever backend. */
static void sql(struct fx *f, const char *q)
{
	if (!f->pg) {
		sqlite3 *db;
		char *msg = NULL;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		if (sqlite3_exec(db, q, NULL, NULL, &msg) != SQLITE_OK)
			fail_msg("%s: %s", q, msg);
		sqlite3_close(db);
	} else {
		PGconn *c = pg_connect();
		PGresult *r = PQexec(c, q);

		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fail_msg("%s: %s", q, PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
	}
}

static void event(struct fx *f, struct cpaudit *au, enum cpevent_kind k, int64_t serial)
{
	struct cpevent ev = { .kind = k, .at = 1700000000000 + serial, .subject = "CN=host1",
			      .fingerprint = "ff00", .serial = serial, .healthy = 0, .detail = "why" };

	memset(ev.uid, 0x11, sizeof(ev.uid));
	cpaudit_on_event(&ev, au ? au : f->au);
}

static int handle(struct fx *f, const char *method, const char *path, const char *query, const char *body,
		  struct api_reply *rep)
{
	int r = api_handle(f->api, &admin, method, path, query, (const uint8_t *)body, body ? strlen(body) : 0,
			   1700000001000, rep);

	assert_int_equal(r, 0);
	return rep->http_status;
}

/* Every stored record, in order, each to fn. */
struct recs {
	int n;
	char *r[64];
	size_t len[64];
};

static int collect(const struct store_audit_record *r, void *arg)
{
	struct recs *rs = arg;

	assert_true(rs->n < 64);
	rs->r[rs->n] = strndup((const char *)r->record, r->len);
	rs->len[rs->n++] = r->len;
	return 0;
}

static void recs_free(struct recs *rs)
{
	for (int i = 0; i < rs->n; i++)
		free(rs->r[i]);
	rs->n = 0;
}

/* Verify the stored records against a checkpoint of the log: the bad index, or -1. */
static int64_t verify_store(struct fx *f, const struct checkpoint *cp, char *err, size_t errlen)
{
	struct recs rs = { 0 };
	struct auditverify *v;
	int64_t bad = -1;
	int e = 0;

	assert_int_equal(store_audit_list(f->st, 0, 64, collect, &rs), 0);
	assert_int_equal(auditverify_new(cp, &v), 0);
	err[0] = '\0';
	for (int i = 0; i < rs.n && e == 0 && (uint64_t)i < cp->size; i++)
		e = auditverify_record(v, (const uint8_t *)rs.r[i], rs.len[i], err, errlen);
	if (e == 0)
		e = auditverify_finish(v, err, errlen);
	if (e)
		bad = auditverify_bad_index(v);
	assert_true(e == 0 || e == -EBADMSG);
	auditverify_free(v);
	recs_free(&rs);
	return bad;
}

static void signed_checkpoint(struct fx *f, struct checkpoint *cp)
{
	char *text, err[256];
	size_t len;

	assert_int_equal(cpaudit_checkpoint(f->au, &text, &len), 0);
	if (checkpoint_verify(text, len, f->key, NULL, cp, err, sizeof(err)))
		fail_msg("checkpoint_verify: %s", err);
	free(text);
}

/* A few records of each sort: events, an admin action that worked and one that was refused. */
static void fill(struct fx *f)
{
	struct api_reply rep;

	event(f, NULL, CPEVENT_FIRST_SEEN, 0);
	event(f, NULL, CPEVENT_POLICY_APPLIED, 7);
	event(f, NULL, CPEVENT_HEALTH_CHANGED, 0);
	/* Refused: no such policy (404); still recorded, with its status. */
	assert_int_equal(handle(f, "POST", "/api/v1/assignments", NULL, "{\"serial\":9,\"selector\":\"env=prod\"}",
				&rep),
			 404);
	free(rep.body);
	/* Refused: no trust store loaded (500); the blobs go in by hash. */
	handle(f, "POST", "/api/v1/policies", NULL, "{\"yaml\":\"aGVsbG8=\",\"signature\":\"AAEC\"}", &rep);
	free(rep.body);
	event(f, NULL, CPEVENT_POLICY_FAILED, 8);
	event(f, NULL, CPEVENT_ROLLOUT_STAGE_STARTED, 8);
	event(f, NULL, CPEVENT_CERT_ROTATED, 0);
}

static void test_records(void **state)
{
	struct fx *f = *state;
	struct recs rs = { 0 };
	struct checkpoint cp;
	char err[256], want[512], hex[65];
	json_t *o;

	fill(f);
	assert_int_equal(cpaudit_size(f->au), 8);
	assert_int_equal(store_audit_list(f->st, 0, 64, collect, &rs), 0);
	assert_int_equal(rs.n, 8);
	/* Canonical: sorted keys, compact, exactly these fields. */
	assert_string_equal(rs.r[0], "{\"detail\":\"why\",\"fingerprint\":\"ff00\",\"i\":0,\"kind\":\"first_seen\","
				     "\"prev\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
				     "\"subject\":\"CN=host1\",\"t\":1700000000000,"
				     "\"uid\":\"11111111111111111111111111111111\"}");
	o = json_loads(rs.r[1], 0, NULL);
	assert_string_equal(json_string_value(json_object_get(o, "kind")), "policy_applied");
	assert_int_equal(json_integer_value(json_object_get(o, "serial")), 7);
	json_decref(o);
	o = json_loads(rs.r[2], 0, NULL);
	assert_true(json_is_false(json_object_get(o, "healthy")));
	json_decref(o);
	/* The refused assignment, as the admin sent it, with its status and the request's hash. */
	o = json_loads(rs.r[3], 0, NULL);
	assert_string_equal(json_string_value(json_object_get(o, "kind")), "admin");
	assert_string_equal(json_string_value(json_object_get(o, "action")), "POST /api/v1/assignments");
	assert_string_equal(json_string_value(json_object_get(o, "subject")), admin.subject);
	assert_string_equal(json_string_value(json_object_get(o, "fingerprint")), admin.fingerprint);
	assert_int_equal(json_integer_value(json_object_get(o, "status")), 404);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "args"), "serial")), 9);
	assert_int_equal(cpaudit_request_hash("POST", "/api/v1/assignments", NULL,
					      (const uint8_t *)"{\"serial\":9,\"selector\":\"env=prod\"}",
					      strlen("{\"serial\":9,\"selector\":\"env=prod\"}"), hex),
			 0);
	assert_string_equal(json_string_value(json_object_get(o, "request_sha256")), hex);
	json_decref(o);
	/* The upload's YAML ("hello") by the SHA-256 of its bytes, never the blob. */
	o = json_loads(rs.r[4], 0, NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "args"), "yaml")),
			    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	assert_null(strstr(rs.r[4], "aGVsbG8"));
	json_decref(o);
	o = json_loads(rs.r[6], 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(o, "rollout")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "stage")), 0);
	assert_null(json_object_get(o, "uid"));
	json_decref(o);
	snprintf(want, sizeof(want), "\"i\":7");
	assert_non_null(strstr(rs.r[7], want));
	recs_free(&rs);
	/* The whole log verifies against its signed checkpoint. */
	signed_checkpoint(f, &cp);
	assert_int_equal(cp.size, 8);
	assert_int_equal(verify_store(f, &cp, err, sizeof(err)), -1);
}

/* Two servers on one store append in turn: both keep the same tree. */
static void test_two_servers(void **state)
{
	struct fx *f = *state;
	struct store *st2;
	struct cpaudit *au2;
	struct checkpoint cp;
	uint8_t r1[32], r2[32];
	char err[256];

	assert_int_equal(store_open(f->url, &st2, err, sizeof(err)), 0);
	au2 = open_log(f, st2, NULL);
	for (int i = 0; i < 10; i++)
		event(f, i % 2 ? au2 : f->au, CPEVENT_POLICY_APPLIED, i);
	assert_int_equal(cpaudit_sync(f->au), 0);
	assert_int_equal(cpaudit_sync(au2), 0);
	assert_int_equal(cpaudit_size(f->au), 10);
	assert_int_equal(cpaudit_size(au2), 10);
	assert_int_equal(merkle_root(cpaudit_tree(f->au), 10, r1), 0);
	assert_int_equal(merkle_root(cpaudit_tree(au2), 10, r2), 0);
	assert_memory_equal(r1, r2, 32);
	signed_checkpoint(f, &cp);
	assert_int_equal(verify_store(f, &cp, err, sizeof(err)), -1);
	/* Without a key the second one signs nothing. */
	{
		char *text;
		size_t len;

		assert_int_equal(cpaudit_checkpoint(au2, &text, &len), -ENOKEY);
	}
	cpaudit_free(au2);
	store_close(st2);
}

/* The tampering cases, each on a fresh copy of the same log (restored between). */
static void tamper(struct fx *f, const struct checkpoint *cp, const char *q, int64_t want, const char *says)
{
	char err[256];
	int64_t bad;

	sql(f, "DROP TABLE IF EXISTS audit_saved");
	sql(f, "CREATE TABLE audit_saved AS SELECT * FROM audit");
	sql(f, q);
	bad = verify_store(f, cp, err, sizeof(err));
	if (bad != want || !strstr(err, says))
		fail_msg("%s: bad index %lld (want %lld): %s", q, (long long)bad, (long long)want, err);
	sql(f, "DELETE FROM audit");
	sql(f, "INSERT INTO audit SELECT * FROM audit_saved");
	sql(f, "DROP TABLE audit_saved");
	assert_int_equal(verify_store(f, cp, err, sizeof(err)), -1);
}

static void test_tamper(void **state)
{
	struct fx *f = *state;
	struct checkpoint cp;
	const char *swap_prep;

	fill(f);
	signed_checkpoint(f, &cp);
	/* Changed: the refused assignment's status made to look like a success. */
	tamper(f, &cp, f->pg ? "UPDATE audit SET record = replace(convert_from(record, 'UTF8'), '\"status\":404', "
			       "'\"status\":201')::bytea WHERE idx = 3"
			     : "UPDATE audit SET record = CAST(replace(CAST(record AS TEXT), '\"status\":404', "
			       "'\"status\":201') AS BLOB) WHERE idx = 3",
	       3, "record 3 was changed");
	/* The last record changed: only the checkpoint's root can tell. */
	tamper(f, &cp, f->pg ? "UPDATE audit SET record = replace(convert_from(record, 'UTF8'), 'why', 'who')::bytea "
			       "WHERE idx = 7"
			     : "UPDATE audit SET record = CAST(replace(CAST(record AS TEXT), 'why', 'who') AS BLOB) "
			       "WHERE idx = 7",
	       7, "record 7 was changed");
	/* Deleted, then the rest renumbered to hide the gap. */
	tamper(f, &cp, "DELETE FROM audit WHERE idx = 2; UPDATE audit SET idx = idx + 1000 WHERE idx > 2; "
		       "UPDATE audit SET idx = idx - 1001 WHERE idx > 1000",
	       2,
	       "deleted, inserted or moved at index 2");
	/* Two swapped. */
	swap_prep = "UPDATE audit SET idx = 100 WHERE idx = 4; UPDATE audit SET idx = 4 WHERE idx = 5; "
		    "UPDATE audit SET idx = 5 WHERE idx = 100";
	tamper(f, &cp, swap_prep, 4, "at index 4");
	/* One inserted (a copy of record 1 put in at 5, the later ones moved up). */
	tamper(f, &cp,
	       "UPDATE audit SET idx = idx + 100 WHERE idx >= 5; UPDATE audit SET idx = idx - 99 WHERE idx >= 105; "
	       "INSERT INTO audit (idx, at, record) SELECT 5, at, record FROM audit WHERE idx = 1",
	       5, "at index 5");
	/* The tail deleted. */
	tamper(f, &cp, "DELETE FROM audit WHERE idx >= 6", 6, "from index 6 on are missing");
}

/* A history cut short and re-signed: the consistency check against the saved checkpoint catches it. */
static void test_truncate_resign(void **state)
{
	struct fx *f = *state;
	struct checkpoint saved, cp;
	uint8_t proof[MERKLE_MAX_PROOF * MERKLE_HASH_LEN];
	struct auditverify *v;
	struct recs rs = { 0 };
	char err[256];
	size_t np;

	fill(f);
	signed_checkpoint(f, &saved);
	sql(f, "DELETE FROM audit WHERE idx >= 5");
	/* A restarted server loads what is left and signs it. */
	cpaudit_free(f->au);
	f->au = open_log(f, f->st, f->key);
	api_set_on_action(f->api, cpaudit_on_action, f->au);
	signed_checkpoint(f, &cp);
	assert_int_equal(cp.size, 5);
	assert_int_equal(verify_store(f, &cp, err, sizeof(err)), -1); /* on its own it looks fine */
	assert_int_equal(auditverify_new(&cp, &v), 0);
	assert_int_equal(store_audit_list(f->st, 0, 64, collect, &rs), 0);
	for (int i = 0; i < rs.n; i++)
		assert_int_equal(auditverify_record(v, (const uint8_t *)rs.r[i], rs.len[i], err, sizeof(err)), 0);
	assert_int_equal(auditverify_finish(v, err, sizeof(err)), 0);
	assert_int_equal(auditverify_against_saved(v, &saved, proof, 0, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "the log shrank"));
	/* Grown back past the saved size with other records: the proof cannot verify. */
	for (int i = 0; i < 6; i++)
		event(f, NULL, CPEVENT_FIRST_SEEN, 100 + i);
	signed_checkpoint(f, &cp);
	assert_int_equal(cp.size, 11);
	assert_int_equal(merkle_consistency_proof(cpaudit_tree(f->au), saved.size, cp.size, proof, &np), 0);
	auditverify_free(v);
	recs_free(&rs);
	assert_int_equal(auditverify_new(&cp, &v), 0);
	assert_int_equal(store_audit_list(f->st, 0, 64, collect, &rs), 0);
	for (int i = 0; i < rs.n; i++)
		assert_int_equal(auditverify_record(v, (const uint8_t *)rs.r[i], rs.len[i], err, sizeof(err)), 0);
	assert_int_equal(auditverify_finish(v, err, sizeof(err)), 0);
	assert_int_equal(auditverify_against_saved(v, &saved, proof, np, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "rewritten"));
	auditverify_free(v);
	recs_free(&rs);
}

/* An honest log grows consistently with what was saved. */
static void test_consistent_growth(void **state)
{
	struct fx *f = *state;
	struct checkpoint saved, cp;
	uint8_t proof[MERKLE_MAX_PROOF * MERKLE_HASH_LEN];
	struct auditverify *v;
	struct recs rs = { 0 };
	char err[256];
	size_t np;

	fill(f);
	signed_checkpoint(f, &saved);
	for (int i = 0; i < 9; i++)
		event(f, NULL, CPEVENT_HEALTH_CHANGED, i);
	signed_checkpoint(f, &cp);
	assert_int_equal(merkle_consistency_proof(cpaudit_tree(f->au), saved.size, cp.size, proof, &np), 0);
	assert_int_equal(auditverify_new(&cp, &v), 0);
	assert_int_equal(store_audit_list(f->st, 0, 64, collect, &rs), 0);
	for (int i = 0; i < rs.n; i++)
		assert_int_equal(auditverify_record(v, (const uint8_t *)rs.r[i], rs.len[i], err, sizeof(err)), 0);
	assert_int_equal(auditverify_finish(v, err, sizeof(err)), 0);
	assert_int_equal(auditverify_against_saved(v, &saved, proof, np, err, sizeof(err)), 0);
	/* Another log's checkpoint is not this one's. */
	snprintf(saved.origin, sizeof(saved.origin), "other/log");
	assert_int_equal(auditverify_against_saved(v, &saved, proof, np, err, sizeof(err)), -EBADMSG);
	auditverify_free(v);
	recs_free(&rs);
}

/*
 * A row put at the end by hand (a copy of record 0 as record 8) is not
 * another server's: the log does not take it in, keeps signing what it
 * holds, and appends nothing past it until it is gone.
 */
static void test_foreign_row_refused(void **state)
{
	struct fx *f = *state;
	struct checkpoint cp;
	json_t *fields = json_object();
	char err[256];

	fill(f);
	sql(f, "INSERT INTO audit (idx, at, record) SELECT 8, at, record FROM audit WHERE idx = 0");
	assert_int_equal(cpaudit_sync(f->au), -EBADMSG);
	signed_checkpoint(f, &cp);
	assert_int_equal(cp.size, 8);
	assert_int_equal(cpaudit_append(f->au, "admin", fields, 1, NULL), -EBADMSG);
	assert_int_equal(cpaudit_size(f->au), 8);
	sql(f, "DELETE FROM audit WHERE idx = 8");
	assert_int_equal(cpaudit_append(f->au, "admin", fields, 1, NULL), 0);
	signed_checkpoint(f, &cp);
	assert_int_equal(cp.size, 9);
	assert_int_equal(verify_store(f, &cp, err, sizeof(err)), -1);
	json_decref(fields);
}

/*
 * With an event base, what one turn of the loop records is written when
 * it next turns, in one transaction; a checkpoint takes what is queued
 * first.  A batch that fails leaves the tree as it was.
 */
static void test_batched(void **state)
{
	struct fx *f = *state;
	struct event_base *base = event_base_new();
	struct checkpoint cp;
	json_t *big;
	char err[256], *huge;
	int64_t size = -1;

	assert_non_null(base);
	assert_int_equal(cpaudit_set_event_base(f->au, base), 0);
	for (int i = 0; i < 5; i++)
		event(f, NULL, CPEVENT_FIRST_SEEN, i);
	assert_int_equal(cpaudit_size(f->au), 0);
	assert_int_equal(store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 0);
	event_base_loop(base, EVLOOP_NONBLOCK); /* runs the flush (1: nothing left pending) */
	assert_int_equal(cpaudit_size(f->au), 5);
	assert_int_equal(store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 5);
	/* Queued, then a checkpoint: it covers them. */
	event(f, NULL, CPEVENT_FIRST_SEEN, 5);
	signed_checkpoint(f, &cp);
	assert_int_equal(cp.size, 6);
	assert_int_equal(verify_store(f, &cp, err, sizeof(err)), -1);
	/* A record over the store's limit: nothing of the batch is kept, the tree included. */
	event(f, NULL, CPEVENT_FIRST_SEEN, 6);
	huge = calloc(1, STORE_MAX_AUDIT_RECORD + 1);
	memset(huge, 'x', STORE_MAX_AUDIT_RECORD);
	big = json_pack("{s:s}", "blob", huge);
	assert_int_equal(cpaudit_append(f->au, "admin", big, 1, NULL), -E2BIG);
	assert_int_equal(cpaudit_size(f->au), 6);
	json_decref(big);
	free(huge);
	event(f, NULL, CPEVENT_FIRST_SEEN, 7);
	event_base_loop(base, EVLOOP_NONBLOCK); /* runs the flush (1: nothing left pending) */
	signed_checkpoint(f, &cp);
	assert_int_equal(cp.size, 7);
	assert_int_equal(verify_store(f, &cp, err, sizeof(err)), -1);
	/* Text from a peer is cut and made UTF-8: the record is still written. */
	{
		struct cpevent ev = { .kind = CPEVENT_POLICY_FAILED, .at = 9, .subject = "CN=x" };
		char *detail = malloc(100001);

		memset(detail, 'e', 100000);
		detail[100000] = '\0';
		detail[3] = (char)0xff;
		ev.detail = detail;
		cpaudit_on_event(&ev, f->au);
		free(detail);
	}
	signed_checkpoint(f, &cp);
	assert_int_equal(cp.size, 8);
	{
		struct recs rs = { 0 };

		assert_int_equal(store_audit_list(f->st, 7, 1, collect, &rs), 0);
		assert_non_null(strstr(rs.r[0], "\"detail\":\"eee?eee"));
		assert_non_null(strstr(rs.r[0], "eee...\""));
		assert_true(rs.len[0] < CPAUDIT_MAX_TEXT + 400);
		recs_free(&rs);
	}
	assert_int_equal(cpaudit_set_event_base(f->au, NULL), 0);
	event_base_free(base);
}

/* A gap in the stored indexes stops a restart, naming where. */
static void test_gap_refused(void **state)
{
	struct fx *f = *state;
	struct cpaudit_config c = { .origin = "test/audit", .journal_socket = "" };
	struct cpaudit *au = NULL;
	char err[512];

	fill(f);
	sql(f, "DELETE FROM audit WHERE idx = 3");
	assert_int_equal(cpaudit_new(f->st, &c, &au, err, sizeof(err)), -EBADMSG);
	assert_null(au);
	assert_non_null(strstr(err, "index 3"));
	/* And an append from the running one refuses to go on past the gap it cannot see. */
	c.origin = "two words";
	assert_int_equal(cpaudit_new(f->st, &c, &au, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--audit-origin"));
}

static void test_api_routes(void **state)
{
	struct fx *f = *state;
	struct api_reply rep;
	struct checkpoint cp;
	json_t *j, *p;
	char err[256];
	uint8_t proof[MERKLE_MAX_PROOF * MERKLE_HASH_LEN], leaf[32], root[32], r2[32];
	size_t np;

	fill(f);
	assert_int_equal(handle(f, "GET", "/api/v1/audit", NULL, NULL, &rep), 200);
	j = json_loadb(rep.body, rep.len, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "size")), 8);
	assert_string_equal(json_string_value(json_object_get(j, "origin")), "test/audit");
	assert_true(json_is_true(json_object_get(j, "signed")));
	json_decref(j);
	free(rep.body);

	assert_int_equal(handle(f, "GET", "/api/v1/audit/checkpoint", NULL, NULL, &rep), 200);
	assert_string_equal(rep.content_type, "text/plain; charset=utf-8");
	assert_int_equal(checkpoint_verify(rep.body, rep.len, f->key, NULL, &cp, err, sizeof(err)), 0);
	assert_int_equal(cp.size, 8);
	free(rep.body);

	/* Records: the stored bytes, one per line, paged. */
	assert_int_equal(handle(f, "GET", "/api/v1/audit/records", "since=2&limit=3", NULL, &rep), 200);
	assert_string_equal(rep.content_type, "application/x-ndjson");
	{
		int lines = 0;

		for (size_t i = 0; i < rep.len; i++)
			lines += rep.body[i] == '\n';
		assert_int_equal(lines, 3);
		assert_non_null(strstr(rep.body, "\"i\":2,"));
		assert_non_null(strstr(rep.body, "\"i\":4,"));
		assert_null(strstr(rep.body, "\"i\":5,"));
	}
	free(rep.body);
	assert_int_equal(handle(f, "GET", "/api/v1/audit/records", "since=8", NULL, &rep), 200);
	assert_int_equal(rep.len, 0);
	free(rep.body);

	/* Proofs that verify against the checkpoint. */
	assert_int_equal(handle(f, "GET", "/api/v1/audit/proof/inclusion", "index=3&size=8", NULL, &rep), 200);
	j = json_loadb(rep.body, rep.len, 0, NULL);
	p = json_object_get(j, "proof");
	np = json_array_size(p);
	for (size_t i = 0; i < np; i++)
		assert_int_equal(EVP_DecodeBlock(proof + i * 32, (const unsigned char *)json_string_value(json_array_get(p, i)),
						 44),
				 33);
	assert_int_equal(EVP_DecodeBlock(r2, (const unsigned char *)json_string_value(json_object_get(j, "leaf_hash")),
					 44),
			 33);
	memcpy(leaf, r2, 32);
	assert_int_equal(merkle_verify_inclusion(leaf, 3, 8, proof, np, cp.root), 0);
	json_decref(j);
	free(rep.body);
	assert_int_equal(handle(f, "GET", "/api/v1/audit/proof/consistency", "from=3&to=8", NULL, &rep), 200);
	j = json_loadb(rep.body, rep.len, 0, NULL);
	p = json_object_get(j, "proof");
	np = json_array_size(p);
	for (size_t i = 0; i < np; i++)
		EVP_DecodeBlock(proof + i * 32, (const unsigned char *)json_string_value(json_array_get(p, i)), 44);
	assert_int_equal(merkle_root(cpaudit_tree(f->au), 3, root), 0);
	assert_int_equal(merkle_verify_consistency(3, 8, root, cp.root, proof, np), 0);
	json_decref(j);
	free(rep.body);

	/* Bad queries: named. */
	assert_int_equal(handle(f, "GET", "/api/v1/audit/proof/inclusion", "index=8&size=8", NULL, &rep), 400);
	free(rep.body);
	assert_int_equal(handle(f, "GET", "/api/v1/audit/proof/inclusion", "index=0&size=99", NULL, &rep), 400);
	assert_non_null(strstr(rep.body, "the log has"));
	free(rep.body);
	assert_int_equal(handle(f, "GET", "/api/v1/audit/proof/consistency", "from=5&to=3", NULL, &rep), 400);
	free(rep.body);
	assert_int_equal(handle(f, "GET", "/api/v1/audit/records", "since=1&since=2", NULL, &rep), 400);
	assert_non_null(strstr(rep.body, "twice"));
	free(rep.body);
	assert_int_equal(handle(f, "GET", "/api/v1/audit/records", "limit=0", NULL, &rep), 400);
	free(rep.body);
	assert_int_equal(handle(f, "GET", "/api/v1/audit/records", "from=1", NULL, &rep), 400);
	assert_non_null(strstr(rep.body, "unknown parameter"));
	free(rep.body);
	assert_int_equal(handle(f, "GET", "/api/v1/audit/records", "since=-1", NULL, &rep), 400);
	free(rep.body);
	assert_int_equal(handle(f, "GET", "/api/v1/audit/nope", NULL, NULL, &rep), 404);
	free(rep.body);
	/* Writing to the log through the API is not a thing; the refusal itself is recorded. */
	assert_int_equal(handle(f, "POST", "/api/v1/audit/records", NULL, "{}", &rep), 405);
	free(rep.body);
	assert_int_equal(cpaudit_size(f->au), 9);
	/* Without a key: 503 with the fix. */
	cpaudit_free(f->au);
	f->au = open_log(f, f->st, NULL);
	api_set_on_action(f->api, cpaudit_on_action, f->au);
	api_set_audit(f->api, auditapi_handle, f->au);
	assert_int_equal(handle(f, "GET", "/api/v1/audit/checkpoint", NULL, NULL, &rep), 503);
	assert_non_null(strstr(rep.body, "--audit-key"));
	free(rep.body);
}

/* Each record reaches journald's socket as one datagram with the stable MESSAGE_ID. */
static void test_journal(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct cpaudit_config c = { .origin = "test/audit", .log_records = 1 };
	struct cpaudit *au = NULL;
	char err[256], buf[8192];
	ssize_t n;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/test_cpaudit.journal.%d", (int)getpid());
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	c.journal_socket = sa.sun_path;
	assert_int_equal(cpaudit_new(f->st, &c, &au, err, sizeof(err)), 0);
	{
		struct cpevent ev = { .kind = CPEVENT_IDENTITY_REFUSED, .at = 5, .subject = "CN=evil",
				      .detail = "CN=owner" };

		cpaudit_on_event(&ev, au);
	}
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "MESSAGE_ID=" CPAUDIT_MESSAGE_ID "\n"));
	assert_non_null(strstr(buf, "\nMESSAGE=audit record 0: identity_refused\n"));
	assert_non_null(strstr(buf, "\nVIGIL_AUDIT_RECORD={\"detail\":\"CN=owner\","));
	assert_non_null(strstr(buf, "\nVIGIL_AUDIT_INDEX=0\n"));
	cpaudit_free(au);
	close(fd);
	unlink(sa.sun_path);
}

#define CASE(fn) { #fn, fn, setup, teardown, NULL }
#define PG_CASE(fn) { "pg_" #fn, fn, setup_pg, teardown, NULL }

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {
		CASE(test_records),	     CASE(test_two_servers), CASE(test_tamper),   CASE(test_truncate_resign),
		CASE(test_consistent_growth), CASE(test_gap_refused), CASE(test_api_routes), CASE(test_journal),
		CASE(test_foreign_row_refused), CASE(test_batched),
	};
	const struct CMUnitTest pg_tests[] = {
		PG_CASE(test_records),	      PG_CASE(test_two_servers), PG_CASE(test_tamper),
		PG_CASE(test_truncate_resign), PG_CASE(test_gap_refused), PG_CASE(test_api_routes),
		PG_CASE(test_foreign_row_refused), PG_CASE(test_batched),
	};

	return pg_run_groups("test_cpaudit", sqlite_tests, pg_tests, NULL, NULL);
}
