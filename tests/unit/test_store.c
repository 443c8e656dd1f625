/*
 * test_store.c - the store (store.h) on a real SQLite file in a temporary
 * directory: agents, policies and assignments go in and come back as they
 * were; serials only move forward; an assignment must name a stored
 * policy; an older schema is migrated and a newer one refused; the file is
 * in WAL mode; and an agent's update is fast enough for 10k agents polling
 * every 30 s (333/s), with the measured rate printed.
 *
 * With VIGIL_TEST_PG_URL set (tests/integration/store_pg.sh starts a real
 * PostgreSQL 15 and sets it), the same cases run again against it, named
 * pg_*, with the ones only PostgreSQL has: its schema table, a newer
 * schema refused and no password in an error, two processes migrating at
 * once, two processes uploading serials at once, a reconnect after the
 * server dropped the connection.  Unset, only SQLite runs (no skip: the
 * PostgreSQL cases are not listed), and store_pg.sh fails when they did
 * not run.  Each pg_ case starts from an empty database.
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

#include <sys/wait.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "pgtest.h"
#include "store.h"
#include "store_int.h"

struct fixture {
	char dir[64];
	char path[128];
	char url[512];
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

	assert_int_equal(store_schema_version(f->st), store_sqlite_schema_latest);
	/* Another connection sees WAL mode, the version and the tables. */
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), store_sqlite_schema_latest);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

static void test_bad_urls(void **state)
{
	struct store *st = NULL;
	char err[256];

	(void)state;
	assert_int_equal(store_open("mysql:host=x", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown store scheme"));
	assert_int_equal(store_open("sqlite:", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "empty path"));
	assert_int_equal(store_open("/var/lib/cp.db", &st, err, sizeof(err)), -EINVAL);
	assert_int_not_equal(store_open("sqlite:/nonexistent-dir/x/cp.db", &st, err, sizeof(err)), 0);
	assert_true(strlen(err) > 0);
	assert_null(st);
}

static void test_url_display(void **state)
{
	static const char *const cases[][2] = {
		{ "sqlite:/var/lib/vigil-cp/vigil-cp.db", "sqlite:/var/lib/vigil-cp/vigil-cp.db" },
		{ "postgresql://cp:s3cret@db1.example:5433/vigil?sslmode=verify-full&password=x",
		  "postgresql://db1.example:5433/vigil" },
		{ "postgres://cp@/vigil?host=/run/postgresql", "postgres:///vigil" },
		{ "postgresql://a@b:c@host/db", "postgresql://host/db" },
		{ "postgresql://host", "postgresql://host" },
	};
	char buf[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		store_url_display(cases[i][0], buf, sizeof(buf));
		assert_string_equal(buf, cases[i][1]);
	}
	store_url_display(cases[1][0], buf, 8);
	assert_string_equal(buf, "postgre");
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
	assert_int_equal(store_schema_version(f->st), store_sqlite_schema_latest);
	/* The old rows are all there... */
	assert_int_equal(store_policy_get(f->st, 5, &got), 0);
	assert_int_equal(got.yaml_len, 2);
	assert_memory_equal(got.yaml, "se", 2);
	store_policy_release(&got);
	assert_int_equal(store_assignment_list(f->st, collect_assignment, ids), 0);
	assert_int_equal(ids[1], 1);
	assert_int_equal(store_policy_max_serial(f->st, &max), 0);
	assert_int_equal(max, 5);
	/* ...and migration 2's index exists. */
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = "
					    "'assignments_serial'",
					    -1, &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 1);
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

/* ---------------------------------------------------------------------------
 * PostgreSQL (VIGIL_TEST_PG_URL). */

/* Run sql (no parameters) on a connection of its own. */
static void pg_sql(const char *sql)
{
	PGconn *c = pg_connect();
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* The first column of the first row of sql, as text into buf ("" when no row). */
static void pg_value(const char *sql, char *buf, size_t len)
{
	PGconn *c = pg_connect();
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	snprintf(buf, len, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	PQfinish(c);
}

static int setup_pg(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->url, sizeof(f->url), "%s", pg_url());
	pg_empty();
	if (store_open(f->url, &f->st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	*state = f;
	return 0;
}

static int teardown_pg(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	free(f);
	return 0;
}

static void test_pg_schema_table(void **state)
{
	struct fixture *f = *state;
	char v[64], want[16];

	assert_int_equal(store_schema_version(f->st), store_pg_schema_latest);
	pg_value("SELECT string_agg(version::text, ',') FROM vigil_schema", v, sizeof(v));
	snprintf(want, sizeof(want), "%d", store_pg_schema_latest);
	assert_string_equal(v, want);
	pg_value("SELECT count(*) FROM pg_indexes WHERE indexname = 'assignments_serial'", v, sizeof(v));
	assert_string_equal(v, "1");
	/* Reopening an up-to-date schema changes nothing. */
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open(f->url, &f->st, v, sizeof(v)), 0);
	assert_int_equal(store_schema_version(f->st), store_pg_schema_latest);
}

static void test_pg_refuse_newer_no_password(void **state)
{
	struct fixture *f = *state;
	struct store *st = NULL;
	char url[600], err[512], v[32];

	store_close(f->st);
	f->st = NULL;
	pg_sql("UPDATE vigil_schema SET version = 99");
	/* Trust authentication ignores the password; the message must not show it. */
	snprintf(url, sizeof(url), "%s%cpassword=s3cret-pw", f->url, strchr(f->url, '?') ? '&' : '?');
	assert_int_equal(store_open(url, &st, err, sizeof(err)), -EPROTO);
	assert_null(st);
	assert_non_null(strstr(err, "newer"));
	assert_null(strstr(err, "s3cret-pw"));
	pg_value("SELECT string_agg(version::text, ',') FROM vigil_schema", v, sizeof(v));
	assert_string_equal(v, "99");

	/* A database that does not exist: named, the password not. */
	snprintf(url, sizeof(url), "%s%cdbname=nosuchdb&password=s3cret-pw", f->url,
		 strchr(f->url, '?') ? '&' : '?');
	assert_int_equal(store_open(url, &st, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "nosuchdb"));
	assert_null(strstr(err, "s3cret-pw"));
	/* "postgres:" is the other spelling, but it wants a URL. */
	assert_int_equal(store_open("postgres:host=x", &st, err, sizeof(err)), -EINVAL);
}

enum { PG_PROCS = 4 };

/* Run fn(i) in n child processes at once; each must exit 0. */
static void pg_fork_all(int n, int (*fn)(int i, const char *url), const char *url)
{
	pid_t pids[PG_PROCS];

	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			_exit(fn(i, url));
	}
	for (int i = 0; i < n; i++) {
		int status = 0;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("child %d: status %#x", i, status);
	}
}

static int open_once(int i, const char *url)
{
	struct store *st = NULL;
	char err[256];
	int r = store_open(url, &st, err, sizeof(err));

	if (r == 0 && store_schema_version(st) != store_pg_schema_latest)
		r = -EPROTO;
	if (r)
		fprintf(stderr, "# child %d: %s\n", i, err);
	store_close(st);
	return r ? 1 : 0;
}

static void test_pg_concurrent_migrate(void **state)
{
	struct fixture *f = *state;
	char v[64], want[16];

	store_close(f->st);
	f->st = NULL;
	for (int round = 0; round < 3; round++) {
		pg_empty();
		pg_fork_all(PG_PROCS, open_once, f->url);
		pg_value("SELECT string_agg(version::text, ',') FROM vigil_schema", v, sizeof(v));
		snprintf(want, sizeof(want), "%d", store_pg_schema_latest);
		assert_string_equal(v, want);
	}
}

enum { PG_UPLOADS = 150 };

/* Child i uploads serials i+1, i+1+n, ... as fast as it can; -EEXIST is fine. */
static int upload_serials(int i, const char *url)
{
	struct store *st = NULL;
	char err[256];
	int bad = 0;

	if (store_open(url, &st, err, sizeof(err)))
		return 1;
	for (int k = 0; k < PG_UPLOADS; k++) {
		struct store_policy p = policy(i + 1 + (int64_t)k * 2, "serial: x\n");
		int r = store_policy_add(st, &p);

		if (r != 0 && r != -EEXIST) {
			fprintf(stderr, "# child %d: store_policy_add: %d\n", i, r);
			bad = 1;
		}
	}
	store_close(st);
	return bad;
}

static void test_pg_serials_race(void **state)
{
	struct fixture *f = *state;
	char v[64];
	int64_t max = 0, last = 0;

	pg_fork_all(2, upload_serials, f->url);
	/*
	 * Rows in the order they were written: each upload's transaction id
	 * (xmin) is assigned by its INSERT, after the lock.  Without the
	 * lock, two uploads that both read the same max() could land as 6
	 * then 5.
	 */
	pg_value("SELECT count(*) FROM (SELECT serial < lag(serial) OVER (ORDER BY xmin::text::bigint) AS back "
		 "FROM policies) t WHERE back",
		 v, sizeof(v));
	assert_string_equal(v, "0");
	pg_value("SELECT count(*) FROM policies", v, sizeof(v));
	print_message("# two processes uploading at once stored %s serials, in order\n", v);
	assert_true(atoi(v) >= PG_UPLOADS);
	assert_int_equal(store_policy_max_serial(f->st, &max), 0);
	assert_true(max >= PG_UPLOADS);
	assert_int_equal(store_policy_list(f->st, count_policy, &last), 0);
	assert_int_equal(last, max);
}

static void test_pg_reconnect(void **state)
{
	struct fixture *f = *state;
	struct store_agent a = { 0 }, got;
	char v[32];

	uid_of(a.uid, 77);
	a.first_seen = a.last_seen = 5;
	assert_int_equal(store_agent_put(f->st, &a), 0);
	/* The server drops every other connection (as a restart would). */
	pg_value("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
		 "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
		 v, sizeof(v));
	assert_true(atoi(v) >= 1);
	usleep(100 * 1000);
	assert_int_equal(store_agent_get(f->st, a.uid, &got), 0);
	assert_int_equal(got.first_seen, 5);
	store_agent_release(&got);
	a.last_seen = 6;
	assert_int_equal(store_agent_put(f->st, &a), 0);
}

static void test_pg_text_utf8(void **state)
{
	struct fixture *f = *state;
	struct store_agent a = { 0 }, got;

	/* TEXT is UTF-8 in PostgreSQL: other bytes are refused, nothing half-stored. */
	uid_of(a.uid, 78);
	a.last_error = "bad \xff\xfe bytes";
	assert_int_equal(store_agent_put(f->st, &a), -EILSEQ);
	assert_int_equal(store_agent_get(f->st, a.uid, &got), -ENOENT);
	a.last_error = "caf\xc3\xa9";
	assert_int_equal(store_agent_put(f->st, &a), 0);
	assert_int_equal(store_agent_get(f->st, a.uid, &got), 0);
	assert_string_equal(got.last_error, "caf\xc3\xa9");
	store_agent_release(&got);
}


/*
 * The serials that FAILED on an agent survive a round trip, oldest first,
 * the oldest forgotten past STORE_MAX_FAILED; and the generation moves with
 * each policy and assignment, in their transactions.
 */
static void test_failed_and_generation(void **state)
{
	struct fixture *f = *state;
	struct store_agent a = { 0 }, got;
	struct store_policy p = { .serial = 1, .yaml = (uint8_t *)"x", .yaml_len = 1, .sig = (uint8_t *)"s",
				  .sig_len = 1, .uploaded_at = 1 };
	int64_t g0, g1, g2, g3, id;

	uid_of(a.uid, 9);
	a.first_seen = a.last_seen = 1;
	store_agent_add_failed(&a, 5);
	store_agent_add_failed(&a, 3);
	store_agent_add_failed(&a, 5); /* known: no-op */
	store_agent_add_failed(&a, 0); /* not a serial */
	assert_int_equal(a.n_failed, 2);
	assert_int_equal(store_agent_put(f->st, &a), 0);
	assert_int_equal(store_agent_get(f->st, a.uid, &got), 0);
	assert_int_equal(got.n_failed, 2);
	assert_int_equal(got.failed_serials[0], 5);
	assert_int_equal(got.failed_serials[1], 3);
	assert_true(store_agent_failed(&got, 3));
	assert_false(store_agent_failed(&got, 4));
	store_agent_release(&got);
	for (int64_t s = 100; s < 100 + STORE_MAX_FAILED; s++)
		store_agent_add_failed(&a, s);
	assert_int_equal(a.n_failed, STORE_MAX_FAILED);
	assert_int_equal(store_agent_put(f->st, &a), 0);
	assert_int_equal(store_agent_get(f->st, a.uid, &got), 0);
	assert_int_equal(got.n_failed, STORE_MAX_FAILED);
	/* 5 and 3 were the oldest: forgotten. */
	assert_int_equal(got.failed_serials[0], 100);
	assert_false(store_agent_failed(&got, 5));
	assert_false(store_agent_failed(&got, 3));
	assert_int_equal(got.failed_serials[STORE_MAX_FAILED - 1], 100 + STORE_MAX_FAILED - 1);
	store_agent_release(&got);

	assert_int_equal(store_generation(f->st, &g0), 0);
	assert_int_equal(store_policy_add(f->st, &p), 0);
	assert_int_equal(store_generation(f->st, &g1), 0);
	assert_int_equal(g1, g0 + 1);
	assert_int_equal(store_assign(f->st, "a=b", 1, "CN=admin", 2, &id), 0);
	assert_int_equal(store_generation(f->st, &g2), 0);
	assert_int_equal(g2, g1 + 1);
	/* A refused change does not move it; an agent's report does not either. */
	assert_int_equal(store_policy_add(f->st, &p), -EEXIST);
	assert_int_equal(store_assign(f->st, "a=b", 7, "CN=admin", 2, &id), -ENOENT);
	assert_int_equal(store_agent_put(f->st, &a), 0);
	assert_int_equal(store_generation(f->st, &g3), 0);
	assert_int_equal(g3, g2);
}

/*
 * An instance_uid stays bound to the certificate subject it was first
 * stored with, in the write itself (two servers may both have found it
 * unbound): another subject's put is refused and changes nothing.
 */
static void test_agent_identity_bound(void **state)
{
	struct fixture *f = *state;
	struct store_agent a = { 0 }, got;

	uid_of(a.uid, 41);
	a.cert_subject = "CN=host41";
	a.description_json = "{\"first\":1}";
	a.first_seen = a.last_seen = 1000;
	a.last_sequence_num = 3;
	assert_int_equal(store_agent_put(f->st, &a), 0);

	a.cert_subject = "CN=intruder";
	a.description_json = "{\"intruder\":1}";
	a.last_sequence_num = 4;
	assert_int_equal(store_agent_put(f->st, &a), -EPERM);
	a.cert_subject = NULL;
	assert_int_equal(store_agent_put(f->st, &a), -EPERM);
	assert_int_equal(store_agent_get(f->st, a.uid, &got), 0);
	assert_string_equal(got.cert_subject, "CN=host41");
	assert_string_equal(got.description_json, "{\"first\":1}");
	assert_true(got.last_sequence_num == 3);
	store_agent_release(&got);

	/* Its own certificate still writes. */
	a.cert_subject = "CN=host41";
	a.last_sequence_num = 5;
	assert_int_equal(store_agent_put(f->st, &a), 0);
	assert_int_equal(store_agent_get(f->st, a.uid, &got), 0);
	assert_true(got.last_sequence_num == 5);
	store_agent_release(&got);
}

/* ---------------------------------------------------------------------------
 * The audit log, on both backends. */

struct audit_view {
	int64_t next;		/* the records this "server" knows: [0, next) */
	int n_seen;
	const char *tag;	/* what its records say */
	size_t pad;		/* extra bytes in the record it builds */
	int fail;		/* build returns this */
	int batch;		/* records per append (1 when 0) */
	int made;		/* in the append under way */
};

static int audit_seen(const struct store_audit_record *r, void *arg)
{
	struct audit_view *v = arg;

	if (r->idx != v->next)
		return -EPROTO;
	v->next++;
	v->n_seen++;
	return 0;
}

static int audit_build(int64_t idx, void *arg, uint8_t **ret, size_t *ret_len, int64_t *ret_at)
{
	struct audit_view *v = arg;
	char head[64];
	int n;

	if (v->fail)
		return v->fail;
	if (v->made == (v->batch ? v->batch : 1))
		return 1;
	v->made++;
	n = snprintf(head, sizeof(head), "%s %lld", v->tag, (long long)idx);
	*ret = calloc(1, (size_t)n + v->pad + 1);
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, head, (size_t)n);
	*ret_len = (size_t)n + v->pad;
	*ret_at = 1000 + idx;
	return 0;
}

static int audit_append(struct store *st, struct audit_view *v)
{
	int64_t idx = -1;
	int r;

	v->made = 0;
	r = store_audit_append(st, v->next, audit_seen, audit_build, v, &idx);
	if (r == 0) {
		/* idx is the last of the batch, right after what the caller saw. */
		if (idx != v->next + v->made - 1)
			return -EPROTO;
		v->next += v->made;
	}
	return r;
}

struct audit_rows {
	int n;
	int64_t idx[16];
	char rec[16][32];
};

static int audit_collect(const struct store_audit_record *r, void *arg)
{
	struct audit_rows *rows = arg;

	if (rows->n < 16) {
		rows->idx[rows->n] = r->idx;
		snprintf(rows->rec[rows->n], sizeof(rows->rec[0]), "%.*s", (int)r->len, (const char *)r->record);
		assert_int_equal(r->at, 1000 + r->idx);
	}
	rows->n++;
	return 0;
}

/* SQL on the fixture's database, whichever backend it is. */
static void fixture_sql(struct fixture *f, const char *sql)
{
	if (strncmp(f->url, "sqlite:", 7) == 0) {
		sqlite3 *db;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	} else {
		PGconn *c = pg_connect();
		PGresult *r = PQexec(c, sql);

		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fail_msg("%s: %s", sql, PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
	}
}

static void test_audit(void **state)
{
	struct fixture *f = *state;
	struct audit_view a = { .tag = "a" }, b = { .tag = "b" };
	struct audit_rows rows = { 0 };
	struct store *st2 = NULL;
	int64_t size = -1;
	char err[256];

	assert_int_equal(store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(audit_append(f->st, &a), 0);
	assert_int_equal(a.n_seen, 0);
	/* A second "server" on the same database sees the first one's records, then adds its own. */
	assert_int_equal(store_open(f->url, &st2, err, sizeof(err)), 0);
	assert_int_equal(audit_append(st2, &b), 0);
	assert_int_equal(b.n_seen, 3);
	assert_int_equal(b.next, 4);
	assert_int_equal(audit_append(st2, &b), 0);
	/* ...and the first sees those two before its fourth record lands at 5. */
	assert_int_equal(audit_append(f->st, &a), 0);
	assert_int_equal(a.n_seen, 2);
	assert_int_equal(a.next, 6);
	assert_int_equal(store_audit_size(st2, &size), 0);
	assert_int_equal(size, 6);
	assert_int_equal(store_audit_list(f->st, 0, 100, audit_collect, &rows), 0);
	assert_int_equal(rows.n, 6);
	assert_string_equal(rows.rec[0], "a 0");
	assert_string_equal(rows.rec[3], "b 3");
	assert_string_equal(rows.rec[4], "b 4");
	assert_string_equal(rows.rec[5], "a 5");
	/* Three records in one append: consecutive, one commit. */
	a.batch = 3;
	assert_int_equal(audit_append(f->st, &a), 0);
	assert_int_equal(a.next, 9);
	a.batch = 0;
	fixture_sql(f, "DELETE FROM audit WHERE idx >= 6");
	a.next = 6;
	memset(&rows, 0, sizeof(rows));
	assert_int_equal(store_audit_list(f->st, 2, 3, audit_collect, &rows), 0);
	assert_int_equal(rows.n, 3);
	assert_int_equal(rows.idx[0], 2);
	assert_int_equal(rows.idx[2], 4);
	memset(&rows, 0, sizeof(rows));
	assert_int_equal(store_audit_list(f->st, 6, 3, audit_collect, &rows), 0);
	assert_int_equal(rows.n, 0);
	assert_int_equal(store_audit_list(f->st, 0, 0, audit_collect, &rows), -EINVAL);
	assert_int_equal(store_audit_list(f->st, 0, STORE_MAX_AUDIT_LIST + 1, audit_collect, &rows), -EINVAL);
	assert_int_equal(store_audit_list(f->st, -1, 1, audit_collect, &rows), -EINVAL);

	/* A record over the limit, or a failing build: nothing is written. */
	a.pad = STORE_MAX_AUDIT_RECORD;
	assert_int_equal(audit_append(f->st, &a), -E2BIG);
	a.pad = STORE_MAX_AUDIT_RECORD - 8;
	assert_int_equal(audit_append(f->st, &a), 0);
	a.pad = 0;
	a.fail = -ECANCELED;
	assert_int_equal(audit_append(f->st, &a), -ECANCELED);
	a.fail = 0;
	assert_int_equal(store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 7);
	/* The log cut short under a server: it is told, and writes nothing. */
	a.next = 9;
	assert_int_equal(audit_append(f->st, &a), -ESTALE);
	/* A gap in what it has not seen yet: refused. */
	fixture_sql(f, "DELETE FROM audit WHERE idx = 4");
	b.next = 3;
	assert_int_equal(audit_append(st2, &b), -EBADMSG);
	assert_int_equal(store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 7);
	store_close(st2);
}

enum { AUDIT_PROCS = 4, AUDIT_EACH = 60 };

/* Child i appends AUDIT_EACH records, checking that it sees every other one exactly once. */
static int audit_appender(int i, const char *url)
{
	struct audit_view v = { .tag = "x" };
	struct store *st = NULL;
	char err[256];

	if (store_open(url, &st, err, sizeof(err)))
		return 1;
	for (int k = 0; k < AUDIT_EACH; k++) {
		int r = audit_append(st, &v);

		if (r) {
			fprintf(stderr, "# child %d: store_audit_append: %d\n", i, r);
			store_close(st);
			return 1;
		}
	}
	store_close(st);
	return 0;
}

/* Several processes appending at once build one log without a gap or a duplicate. */
static void test_audit_concurrent(void **state)
{
	struct fixture *f = *state;
	struct audit_rows rows = { 0 };
	int64_t size = 0;
	pid_t pids[AUDIT_PROCS];

	for (int i = 0; i < AUDIT_PROCS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			_exit(audit_appender(i, f->url));
	}
	for (int i = 0; i < AUDIT_PROCS; i++) {
		int status = 0;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("appender %d: status %#x", i, status);
	}
	assert_int_equal(store_audit_size(f->st, &size), 0);
	assert_int_equal(size, AUDIT_PROCS * AUDIT_EACH);
	assert_int_equal(store_audit_list(f->st, 0, STORE_MAX_AUDIT_LIST, audit_collect, &rows), 0);
	assert_int_equal(rows.n, AUDIT_PROCS * AUDIT_EACH);
}

/* ---------------------------------------------------------------------------
 * Staged rollouts' rows (the engine's decisions are test_rollout's). */

/* rank_fn: reverse order, stage 0 for the first, 1 for the rest. */
static int rank_reverse(void *arg, int64_t id, struct store_rollout_member *m, size_t n)
{
	int64_t *seen = arg;

	*seen = id;
	for (size_t i = 0; i < n; i++) {
		m[i].rank = (int64_t)(n - 1 - i);
		m[i].stage = m[i].rank == 0 ? 0 : 1;
	}
	return 0;
}

static int rank_fail(void *arg, int64_t id, struct store_rollout_member *m, size_t n)
{
	(void)arg;
	(void)id;
	(void)m;
	(void)n;
	return -EIO;
}

struct members_seen {
	struct store_rollout_member m[8];
	size_t n;
};

static int member_seen(const struct store_rollout_member *m, void *arg)
{
	struct members_seen *ms = arg;

	assert_true(ms->n < 8);
	ms->m[ms->n] = *m;
	ms->m[ms->n].reason = m->reason ? strdup(m->reason) : NULL;
	ms->n++;
	return 0;
}

static void members_release(struct members_seen *ms)
{
	for (size_t i = 0; i < ms->n; i++)
		free(ms->m[i].reason);
	ms->n = 0;
}

static int count_offer(void *arg, const uint8_t uid[STORE_UID_LEN], int64_t rollout_id, int64_t serial,
		       int64_t sent_at)
{
	int *n = arg;

	(void)uid;
	(void)rollout_id;
	(void)sent_at;
	assert_int_equal(serial, 1);
	(*n)++;
	return 0;
}

static int offers(struct fixture *f)
{
	int n = 0;

	assert_int_equal(store_rollout_offers(f->st, count_offer, &n), 0);
	return n;
}

/* A change function that halts the rollout, succeeds member 0 and fails member 1 ... then fails itself. */
static int halt_then(void *arg, struct store_rollout *r, struct store_rollout_member *m, size_t n,
		     struct store_rollout_change *ch)
{
	int *fail = arg;

	assert_int_equal(n, 3);
	r->state = STORE_ROLLOUT_HALTED;
	r->updated_at = 50;
	ch->rollout = ch->offers = true;
	m[0].succeeded_at = 40;
	m[0].dirty = true;
	m[1].failed_at = 41;
	free(m[1].reason);
	m[1].reason = strdup("no report within 5s");
	m[1].dirty = true;
	return *fail ? -EIO : 0;
}

static int complete(void *arg, struct store_rollout *r, struct store_rollout_member *m, size_t n,
		    struct store_rollout_change *ch)
{
	(void)arg;
	(void)m;
	(void)n;
	r->state = STORE_ROLLOUT_COMPLETED;
	r->updated_at = 60;
	ch->assign = true;
	return 0;
}

static void test_rollouts(void **state)
{
	struct fixture *f = *state;
	struct store_policy p = policy(1, "serial: 1\n");
	struct store_rollout ro = { .serial = 1, .selector = "env=prod", .stages = "1,100%", .bake_ms = 1000,
				    .max_failures = 0, .report_timeout_ms = 5000, .created_by = "CN=admin",
				    .created_at = 10 },
			     got;
	struct store_rollout_member m[3] = { 0 };
	struct store_rollout_overlap ov;
	struct members_seen ms = { 0 };
	int64_t id = 0, id2 = 0, seen = 0, g0, g1;
	int fail;

	for (int i = 0; i < 3; i++)
		uid_of(m[i].uid, (unsigned)(20 + i));
	assert_int_equal(store_rollout_create(f->st, &ro, m, 3, rank_reverse, &seen, &id, &ov), -ENOENT);
	assert_int_equal(store_policy_add(f->st, &p), 0);
	assert_int_equal(store_rollout_create(f->st, &ro, m, 0, rank_reverse, &seen, &id, &ov), -EINVAL);
	/* The rank function's error undoes everything. */
	assert_int_equal(store_rollout_create(f->st, &ro, m, 3, rank_fail, NULL, &id, &ov), -EIO);
	assert_int_equal(store_rollout_get(f->st, 1, &got), -ENOENT);
	assert_int_equal(store_generation(f->st, &g0), 0);
	assert_int_equal(store_rollout_create(f->st, &ro, m, 3, rank_reverse, &seen, &id, &ov), 0);
	assert_true(id > 0);
	assert_int_equal(seen, id);
	assert_int_equal(store_generation(f->st, &g1), 0);
	assert_int_equal(g1, g0 + 1);
	assert_int_equal(store_rollout_get(f->st, id, &got), 0);
	assert_int_equal(got.state, STORE_ROLLOUT_RUNNING);
	assert_int_equal(got.stage, 0);
	assert_int_equal(got.stage_started_at, 10);
	assert_int_equal(got.updated_at, 10);
	assert_string_equal(got.stages, "1,100%");
	assert_string_equal(got.created_by, "CN=admin");
	assert_null(got.reason);
	assert_int_equal(got.assignment_id, 0);
	store_rollout_release(&got);
	/* Rank order: the last uid first. */
	assert_int_equal(store_rollout_members(f->st, id, member_seen, &ms), 0);
	assert_int_equal(ms.n, 3);
	assert_int_equal(ms.m[0].uid[15], 22);
	assert_int_equal(ms.m[0].stage, 0);
	assert_int_equal(ms.m[2].uid[15], 20);
	assert_int_equal(ms.m[0].sent_at, 0);
	members_release(&ms);

	/* Overlap: refused, naming the shared agent and its rollout. */
	assert_int_equal(store_rollout_create(f->st, &ro, m + 1, 1, rank_reverse, &seen, &id2, &ov), -EBUSY);
	assert_int_equal(ov.n, 1);
	assert_int_equal(ov.uid[0][15], 21);
	assert_int_equal(ov.rollout_id[0], id);

	/* Offers: stage 0 only (one agent); sent_at once. */
	assert_int_equal(offers(f), 1);
	assert_int_equal(store_rollout_sent(f->st, id, m[2].uid, 30), 0);
	assert_int_equal(store_rollout_sent(f->st, id, m[2].uid, 31), 0);
	/* Reports: APPLIED once (first time kept); FAILED for another serial ignored. */
	assert_int_equal(store_rollout_mark(f->st, m[2].uid, STORE_MARK_APPLIED, 1, 32, NULL), 0);
	assert_int_equal(store_rollout_mark(f->st, m[2].uid, STORE_MARK_APPLIED, 1, 33, NULL), 0);
	assert_int_equal(store_rollout_mark(f->st, m[1].uid, STORE_MARK_FAILED, 9, 34, "x"), 0);
	assert_int_equal(store_rollout_mark(f->st, m[1].uid, STORE_MARK_UNHEALTHY, 0, 34, "x"), 0); /* not applied */
	assert_int_equal(store_rollout_mark(f->st, m[1].uid, STORE_MARK_TENANT, 0, 34, "x"), 0);	  /* not sent */
	assert_int_equal(store_rollout_mark(f->st, m[1].uid, STORE_MARK_FAILED, 1, 34, NULL), -EINVAL);
	assert_int_equal(store_rollout_members(f->st, id, member_seen, &ms), 0);
	assert_int_equal(ms.m[0].sent_at, 30);
	assert_int_equal(ms.m[0].applied_at, 32);
	assert_int_equal(ms.m[1].failed_at, 0);
	members_release(&ms);

	/* An update whose function fails leaves nothing behind. */
	fail = 1;
	assert_int_equal(store_rollout_update(f->st, id, true, true, halt_then, &fail), -EIO);
	assert_int_equal(store_rollout_get(f->st, id, &got), 0);
	assert_int_equal(got.state, STORE_ROLLOUT_RUNNING);
	store_rollout_release(&got);
	assert_int_equal(store_generation(f->st, &g0), 0);
	assert_int_equal(g0, g1);
	/* A report written after the engine read a member is not undone by its write-back. */
	fail = 0;
	assert_int_equal(store_rollout_mark(f->st, m[2].uid, STORE_MARK_FAILED, 1, 39, "policy failed: late"), 0);
	assert_int_equal(store_rollout_update(f->st, id, true, true, halt_then, &fail), 0);
	assert_int_equal(store_generation(f->st, &g0), 0);
	assert_int_equal(g0, g1 + 1);
	assert_int_equal(store_rollout_get(f->st, id, &got), 0);
	assert_int_equal(got.state, STORE_ROLLOUT_HALTED);
	assert_int_equal(got.updated_at, 50);
	store_rollout_release(&got);
	assert_int_equal(store_rollout_members(f->st, id, member_seen, &ms), 0);
	/* Member 0 had failed first: the engine's "succeeded" does not overwrite that. */
	assert_int_equal(ms.m[0].failed_at, 39);
	assert_int_equal(ms.m[0].succeeded_at, 0);
	assert_string_equal(ms.m[0].reason, "policy failed: late");
	assert_int_equal(ms.m[1].failed_at, 41);
	assert_string_equal(ms.m[1].reason, "no report within 5s");
	members_release(&ms);
	/* Halted: only the member that was sent it is still offered it. */
	assert_int_equal(offers(f), 1);
	assert_int_equal(store_rollout_update(f->st, 999, false, false, complete, NULL), -ENOENT);
	assert_int_equal(store_rollout_update(f->st, id, false, false, complete, NULL), 0);
	assert_int_equal(store_rollout_get(f->st, id, &got), 0);
	assert_int_equal(got.state, STORE_ROLLOUT_COMPLETED);
	assert_true(got.assignment_id > 0);
	store_rollout_release(&got);
	assert_int_equal(offers(f), 0);
	/* Completed: its agents are free for another rollout. */
	assert_int_equal(store_rollout_create(f->st, &ro, m + 1, 1, rank_reverse, &seen, &id2, &ov), 0);
	assert_true(id2 > id);
}

#define PG_CASE(name, fn) { "pg_" name, fn, setup_pg, teardown_pg, NULL }

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {
		cmocka_unit_test_setup_teardown(test_open_wal_and_version, setup, teardown),
		cmocka_unit_test(test_bad_urls),
		cmocka_unit_test(test_url_display),
		cmocka_unit_test_setup_teardown(test_agent_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_assignments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_newer_and_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_put_rate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_and_generation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_identity_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollouts, setup, teardown),
	};
	const struct CMUnitTest pg_tests[] = {
		PG_CASE("schema_table", test_pg_schema_table),
		PG_CASE("agent_roundtrip", test_agent_roundtrip),
		PG_CASE("agent_limits", test_agent_limits),
		PG_CASE("agent_list", test_agent_list),
		PG_CASE("policies", test_policies),
		PG_CASE("assignments", test_assignments),
		PG_CASE("refuse_newer_no_password", test_pg_refuse_newer_no_password),
		PG_CASE("concurrent_migrate", test_pg_concurrent_migrate),
		PG_CASE("serials_race", test_pg_serials_race),
		PG_CASE("reconnect", test_pg_reconnect),
		PG_CASE("text_utf8", test_pg_text_utf8),
		PG_CASE("agent_put_rate", test_agent_put_rate),
		PG_CASE("failed_and_generation", test_failed_and_generation),
		PG_CASE("agent_identity_bound", test_agent_identity_bound),
		PG_CASE("audit", test_audit),
		PG_CASE("audit_concurrent", test_audit_concurrent),
		PG_CASE("rollouts", test_rollouts),
	};
	return pg_run_groups("test_store", sqlite_tests, pg_tests, NULL, NULL);
}
