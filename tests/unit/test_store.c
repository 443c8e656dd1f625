/*
 * test_store.c - the store (store.h) on a real SQLite file in a temporary
 * directory: agents, policies and assignments go in and come back as they
 * were; serials only move forward; an assignment must name a stored
 * policy; an older schema is migrated and a newer one refused; the file is
 * in WAL mode; and an agent's update is fast enough for 10k agents polling
 * every 30 s (333/s), with the measured rate printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

struct fixture {
	char dir[64];
	char path[128];
	char url[160];
	struct store *st;
};

static void rm_db(struct fixture *f)
{
	char p[200];

	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/cp.db", f->dir);
	snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
	assert_int_equal(store_open(f->url, &f->st, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	rm_db(f);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void uid_of(uint8_t uid[STORE_UID_LEN], unsigned n)
{
	memset(uid, 0xa5, STORE_UID_LEN);
	uid[12] = (uint8_t)(n >> 24);
	uid[13] = (uint8_t)(n >> 16);
	uid[14] = (uint8_t)(n >> 8);
	uid[15] = (uint8_t)n;
}

static void test_open_wal_and_version(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db;
	sqlite3_stmt *stmt;

	assert_int_equal(store_schema_version(f->st), 2);
	/* Another connection sees WAL mode, the version and the tables. */
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 2);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

static void test_bad_urls(void **state)
{
	struct store *st = NULL;
	char err[256];

	(void)state;
	assert_int_equal(store_open("postgres:host=x", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown store scheme"));
	assert_int_equal(store_open("sqlite:", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "empty path"));
	assert_int_equal(store_open("/var/lib/cp.db", &st, err, sizeof(err)), -EINVAL);
	assert_int_not_equal(store_open("sqlite:/nonexistent-dir/x/cp.db", &st, err, sizeof(err)), 0);
	assert_true(strlen(err) > 0);
	assert_null(st);
}

static void test_agent_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct store_agent a = { 0 }, got;

	uid_of(a.uid, 7);
	a.cert_subject = "CN=host1,O=Example";
	a.cert_sans = "DNS:host1.example";
	a.cert_serial = "0A1B";
	a.cert_fingerprint = "ab" "cd";
	a.description_json = "{\"identifying\":{\"host.name\":\"h1\"},\"non_identifying\":{}}";
	a.first_seen = 1000;
	a.last_seen = 1000;
	a.capabilities = 0x8000000000000003ull; /* the top bit survives SQLite's signed integers */
	a.last_sequence_num = UINT64_MAX;
	a.healthy = 1;
	a.health_json = "{\"healthy\":true}";
	memset(a.effective_hash, 0x11, 32);
	a.has_effective_hash = true;
	a.applied_serial = 4;
	a.remote_config_status = 3;
	memset(a.remote_config_hash, 0x22, 32);
	a.has_remote_config_hash = true;
	a.last_error = "policy.yaml:3:1: bad";
	a.disconnected = true;
	assert_int_equal(store_agent_put(f->st, &a), 0);

	assert_int_equal(store_agent_get(f->st, a.uid, &got), 0);
	assert_memory_equal(got.uid, a.uid, STORE_UID_LEN);
	assert_string_equal(got.cert_subject, a.cert_subject);
	assert_string_equal(got.cert_sans, a.cert_sans);
	assert_string_equal(got.cert_serial, a.cert_serial);
	assert_string_equal(got.cert_fingerprint, a.cert_fingerprint);
	assert_string_equal(got.description_json, a.description_json);
	assert_int_equal(got.first_seen, 1000);
	assert_true(got.capabilities == a.capabilities);
	assert_true(got.last_sequence_num == UINT64_MAX);
	assert_int_equal(got.healthy, 1);
	assert_string_equal(got.health_json, a.health_json);
	assert_true(got.has_effective_hash);
	assert_memory_equal(got.effective_hash, a.effective_hash, 32);
	assert_int_equal(got.applied_serial, 4);
	assert_int_equal(got.remote_config_status, 3);
	assert_true(got.has_remote_config_hash);
	assert_memory_equal(got.remote_config_hash, a.remote_config_hash, 32);
	assert_string_equal(got.last_error, a.last_error);
	assert_true(got.disconnected);
	store_agent_release(&got);

	/* A second put replaces everything but first_seen; NULLs stay NULL. */
	a.first_seen = 5000;
	a.last_seen = 6000;
	a.description_json = NULL;
	a.health_json = NULL;
	a.last_error = NULL;
	a.healthy = -1;
	a.has_effective_hash = false;
	a.has_remote_config_hash = false;
	a.disconnected = false;
	assert_int_equal(store_agent_put(f->st, &a), 0);
	assert_int_equal(store_agent_get(f->st, a.uid, &got), 0);
	assert_int_equal(got.first_seen, 1000);
	assert_int_equal(got.last_seen, 6000);
	assert_null(got.description_json);
	assert_null(got.health_json);
	assert_null(got.last_error);
	assert_int_equal(got.healthy, -1);
	assert_false(got.has_effective_hash);
	assert_false(got.has_remote_config_hash);
	assert_false(got.disconnected);
	store_agent_release(&got);

	uid_of(a.uid, 8);
	assert_int_equal(store_agent_get(f->st, a.uid, &got), -ENOENT);
	store_agent_release(NULL);
}

static void test_agent_limits(void **state)
{
	struct fixture *f = *state;
	struct store_agent a = { 0 }, got;
	size_t n = (256u << 10) + 1;
	char *big = malloc(n + 1);

	assert_non_null(big);
	memset(big, 'x', n);
	big[n] = '\0';
	uid_of(a.uid, 9);
	a.description_json = big;
	assert_int_equal(store_agent_put(f->st, &a), -E2BIG);
	assert_int_equal(store_agent_get(f->st, a.uid, &got), -ENOENT);
	free(big);
}

struct list_state {
	unsigned n;
	uint8_t last[STORE_UID_LEN];
	unsigned stop_at;
};

static int list_cb(const struct store_agent *a, void *arg)
{
	struct list_state *ls = arg;

	if (ls->n)
		assert_true(memcmp(ls->last, a->uid, STORE_UID_LEN) < 0);
	memcpy(ls->last, a->uid, STORE_UID_LEN);
	ls->n++;
	return ls->n == ls->stop_at ? 42 : 0;
}

static void test_agent_list(void **state)
{
	struct fixture *f = *state;
	struct list_state ls = { 0 };
	unsigned order[] = { 5, 1, 9, 3, 7 };

	for (size_t i = 0; i < 5; i++) {
		struct store_agent a = { 0 };

		uid_of(a.uid, order[i]);
		assert_int_equal(store_agent_put(f->st, &a), 0);
	}
	assert_int_equal(store_agent_list(f->st, list_cb, &ls), 0);
	assert_int_equal(ls.n, 5);
	memset(&ls, 0, sizeof(ls));
	ls.stop_at = 2;
	assert_int_equal(store_agent_list(f->st, list_cb, &ls), 42);
	assert_int_equal(ls.n, 2);
}

static struct store_policy policy(int64_t serial, const char *yaml)
{
	struct store_policy p = {
		.serial = serial,
		.yaml = (uint8_t *)(uintptr_t)yaml,
		.yaml_len = strlen(yaml),
		.sig = (uint8_t *)(uintptr_t)"\x30\x82sig",
		.sig_len = 5,
		.signer = "CN=policy signer",
		.uploaded_by = "CN=admin",
		.uploaded_at = 1234,
	};

	return p;
}

static int count_policy(const struct store_policy *p, void *arg)
{
	int64_t *last = arg;

	assert_true(p->serial > *last);
	*last = p->serial;
	return 0;
}

static void test_policies(void **state)
{
	struct fixture *f = *state;
	struct store_policy p = policy(3, "serial: 3\n"), got;
	int64_t max = -1, last = 0;

	assert_int_equal(store_policy_max_serial(f->st, &max), 0);
	assert_int_equal(max, 0);
	assert_int_equal(store_policy_add(f->st, &p), 0);
	/* Serials only move forward: the same one and an older one are refused. */
	assert_int_equal(store_policy_add(f->st, &p), -EEXIST);
	p = policy(2, "serial: 2\n");
	assert_int_equal(store_policy_add(f->st, &p), -EEXIST);
	p = policy(0, "serial: 0\n");
	assert_int_equal(store_policy_add(f->st, &p), -EINVAL);
	p = policy(10, "serial: 10\n");
	assert_int_equal(store_policy_add(f->st, &p), 0);
	assert_int_equal(store_policy_max_serial(f->st, &max), 0);
	assert_int_equal(max, 10);

	assert_int_equal(store_policy_get(f->st, 3, &got), 0);
	assert_int_equal(got.serial, 3);
	assert_int_equal(got.yaml_len, 10);
	assert_memory_equal(got.yaml, "serial: 3\n", 10);
	assert_int_equal(got.sig_len, 5);
	assert_memory_equal(got.sig, "\x30\x82sig", 5);
	assert_string_equal(got.signer, "CN=policy signer");
	assert_string_equal(got.uploaded_by, "CN=admin");
	assert_int_equal(got.uploaded_at, 1234);
	store_policy_release(&got);
	assert_int_equal(store_policy_get(f->st, 4, &got), -ENOENT);

	assert_int_equal(store_policy_list(f->st, count_policy, &last), 0);
	assert_int_equal(last, 10);
}

static int collect_assignment(const struct store_assignment *a, void *arg)
{
	int64_t *ids = arg;

	assert_true(a->id > ids[0]);
	ids[0] = a->id;
	ids[1]++;
	if (ids[1] == 2) {
		assert_string_equal(a->selector, "env=prod,host.name=h2");
		assert_int_equal(a->serial, 1);
		assert_string_equal(a->assigned_by, "CN=admin");
		assert_int_equal(a->assigned_at, 77);
	}
	return 0;
}

static void test_assignments(void **state)
{
	struct fixture *f = *state;
	struct store_policy p = policy(1, "serial: 1\n");
	int64_t id1 = 0, id2 = 0, ids[2] = { 0, 0 };

	assert_int_equal(store_assign(f->st, "env=prod", 1, "CN=admin", 5, &id1), -ENOENT);
	assert_int_equal(store_policy_add(f->st, &p), 0);
	assert_int_equal(store_assign(f->st, "env=prod", 1, "CN=admin", 5, &id1), 0);
	assert_int_equal(store_assign(f->st, "env=prod,host.name=h2", 1, "CN=admin", 77, &id2), 0);
	assert_true(id2 > id1);
	assert_int_equal(store_assign(f->st, "", 1, "CN=admin", 5, &id1), -EINVAL);
	assert_int_equal(store_assignment_list(f->st, collect_assignment, ids), 0);
	assert_int_equal(ids[1], 2);
}

/* The first schema exactly as vigil-cp 0.1.0's migration 1 wrote it. */
static const char schema_v1[] =
	"CREATE TABLE agents ("
	" uid BLOB PRIMARY KEY CHECK (length(uid) = 16),"
	" cert_subject TEXT, cert_sans TEXT, cert_serial TEXT, cert_fingerprint TEXT,"
	" description TEXT,"
	" first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
	" capabilities INTEGER NOT NULL DEFAULT 0,"
	" last_sequence_num INTEGER NOT NULL DEFAULT 0,"
	" healthy INTEGER NOT NULL DEFAULT -1, health TEXT,"
	" effective_hash BLOB,"
	" applied_serial INTEGER NOT NULL DEFAULT 0,"
	" remote_config_status INTEGER NOT NULL DEFAULT 0, remote_config_hash BLOB,"
	" last_error TEXT,"
	" disconnected INTEGER NOT NULL DEFAULT 0"
	") WITHOUT ROWID;"
	"CREATE TABLE policies ("
	" serial INTEGER PRIMARY KEY CHECK (serial > 0),"
	" yaml BLOB NOT NULL, sig BLOB NOT NULL,"
	" signer TEXT, uploaded_by TEXT, uploaded_at INTEGER NOT NULL"
	");"
	"CREATE TABLE assignments ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" selector TEXT NOT NULL,"
	" serial INTEGER NOT NULL REFERENCES policies(serial),"
	" assigned_by TEXT, assigned_at INTEGER NOT NULL"
	");"
	"INSERT INTO policies VALUES (5, x'7365', x'30', 'CN=s', 'CN=a', 9);"
	"INSERT INTO assignments (selector, serial, assigned_by, assigned_at) VALUES ('env=a', 5, 'CN=a', 9);"
	"PRAGMA application_id = 1447510860;" /* 0x5647434c */
	"PRAGMA user_version = 1;";

static void make_db(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_migrate_from_v1(void **state)
{
	struct fixture *f = *state;
	struct store_policy got;
	int64_t ids[2] = { 0, 0 }, max = 0;
	sqlite3 *db;
	sqlite3_stmt *stmt;
	char err[256];

	store_close(f->st);
	rm_db(f);
	make_db(f->path, schema_v1);
	assert_int_equal(store_open(f->url, &f->st, err, sizeof(err)), 0);
	assert_int_equal(store_schema_version(f->st), 2);
	/* The old rows are all there... */
	assert_int_equal(store_policy_get(f->st, 5, &got), 0);
	assert_int_equal(got.yaml_len, 2);
	assert_memory_equal(got.yaml, "se", 2);
	store_policy_release(&got);
	assert_int_equal(store_assignment_list(f->st, collect_assignment, ids), 0);
	assert_int_equal(ids[1], 1);
	assert_int_equal(store_policy_max_serial(f->st, &max), 0);
	assert_int_equal(max, 5);
	/* ...and migration 2's indexes exist. */
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN "
					    "('agents_last_seen', 'assignments_serial')",
					    -1, &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 2);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

static void test_refuse_newer_and_foreign(void **state)
{
	struct fixture *f = *state;
	struct store *st = NULL;
	char err[256];

	store_close(f->st);
	f->st = NULL;
	rm_db(f);
	make_db(f->path, "PRAGMA application_id = 1447510860; PRAGMA user_version = 99;");
	assert_int_equal(store_open(f->url, &st, err, sizeof(err)), -EPROTO);
	assert_null(st);
	assert_non_null(strstr(err, "newer"));
	/* Nothing was changed: the version is still 99, and no table was made. */
	{
		sqlite3 *db;
		sqlite3_stmt *stmt;

		assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT user_version FROM pragma_user_version), "
						    "(SELECT count(*) FROM sqlite_schema)", -1, &stmt, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(stmt, 0), 99);
		assert_int_equal(sqlite3_column_int(stmt, 1), 0);
		sqlite3_finalize(stmt);
		sqlite3_close(db);
	}

	rm_db(f);
	make_db(f->path, "CREATE TABLE other(x); PRAGMA user_version = 1;");
	assert_int_equal(store_open(f->url, &st, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "not a vigil-cp database"));

	rm_db(f);
	make_db(f->path, "CREATE TABLE other(x);");
	/* An empty-versioned SQLite file is taken as new: migration 1 adds its tables. */
	assert_int_equal(store_open(f->url, &f->st, err, sizeof(err)), 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 10k agents polling every 30 s: 333 updates/s, each one row.  Measure. */
static void test_agent_put_rate(void **state)
{
	struct fixture *f = *state;
	enum { AGENTS = 2000, ROUNDS = 3 };
	struct store_agent a = { 0 };
	double t0, dt, rate;

	a.cert_subject = "CN=host,O=Example";
	a.cert_fingerprint = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	a.description_json = "{\"identifying\":{\"host.name\":\"host-0001\"},\"non_identifying\":"
			     "{\"env\":\"prod\",\"vigil.tenant-set\":\"web\"}}";
	a.health_json = "{\"healthy\":true,\"component_health_map\":{\"sampling\":{\"healthy\":true}}}";
	a.healthy = 1;
	t0 = now_s();
	for (unsigned r = 0; r < ROUNDS; r++) {
		for (unsigned i = 0; i < AGENTS; i++) {
			uid_of(a.uid, i);
			a.last_seen = (int64_t)(r * AGENTS + i);
			a.last_sequence_num = r;
			assert_int_equal(store_agent_put(f->st, &a), 0);
		}
	}
	dt = now_s() - t0;
	rate = AGENTS * ROUNDS / dt;
	print_message("# store_agent_put: %.0f updates/s (%u in %.3f s, ASan build; 333/s needed)\n", rate,
		      AGENTS * ROUNDS, dt);
	assert_true(rate > 333.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_wal_and_version, setup, teardown),
		cmocka_unit_test(test_bad_urls),
		cmocka_unit_test_setup_teardown(test_agent_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_assignments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_newer_and_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_put_rate, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
