/*
 * pgtest.h - the PostgreSQL half of the store-backed unit tests
 * (test_store, test_api, test_opampsrv).
 *
 * Each of those runs its cases on a SQLite file and, when VIGIL_TEST_PG_URL
 * is set (tests/integration/store_pg.sh starts a real PostgreSQL and sets
 * it), the same cases again on that database, named pg_*, in the same
 * cmocka group so that there is one TAP plan whichever backends run.
 *
 * Header-only; include after <cmocka.h> and <libpq-fe.h>.
 */
#ifndef VIGIL_TEST_PGTEST_H
#define VIGIL_TEST_PGTEST_H

#include <stdlib.h>
#include <string.h>

/* VIGIL_TEST_PG_URL, or NULL when it is unset or empty. */
static inline const char *pg_url(void)
{
	const char *u = getenv("VIGIL_TEST_PG_URL");

	return u && *u ? u : NULL;
}

/* A notice processor that drops PostgreSQL's NOTICEs ("table does not
 * exist, skipping"), which would otherwise land in the TAP stream. */
static inline void pg_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* A new connection to pg_url(), NOTICEs dropped; the test fails without
 * one.  The caller PQfinish()es it. */
static inline PGconn *pg_connect(void)
{
	PGconn *c = PQconnectdb(pg_url());

	assert_non_null(c);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("VIGIL_TEST_PG_URL: %s", PQerrorMessage(c));
	PQsetNoticeProcessor(c, pg_quiet, NULL);
	return c;
}

/* Drop the store's tables, so that the next store_open() starts afresh. */
static inline void pg_empty(void)
{
	PGconn *c = pg_connect();
	/* Every table, so that a migration added later is emptied too. */
	PGresult *r = PQexec(c, "DO $$ DECLARE t text; BEGIN "
				"FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP "
				"EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', t); END LOOP; END $$");

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("emptying the database: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* Run the ns cases of sqlite and, when pg_url() is set, the np of pg after
 * them, as one group called name; cmocka's return value. */
static inline int pg_run_group(const char *name, const struct CMUnitTest *sqlite, size_t ns,
			       const struct CMUnitTest *pg, size_t np, CMFixtureFunction group_setup,
			       CMFixtureFunction group_teardown)
{
	struct CMUnitTest *tests;
	size_t n = ns + (pg_url() ? np : 0);
	int rc;

	tests = calloc(ns + np, sizeof(*tests));
	if (!tests)
		return 1;
	memcpy(tests, sqlite, ns * sizeof(*tests));
	if (n > ns)
		memcpy(tests + ns, pg, np * sizeof(*tests));
	rc = _cmocka_run_group_tests(name, tests, n, group_setup, group_teardown);
	free(tests);
	return rc;
}

#define pg_run_groups(name, sqlite, pg, group_setup, group_teardown)                                  \
	pg_run_group(name, sqlite, sizeof(sqlite) / sizeof((sqlite)[0]), pg, sizeof(pg) / sizeof((pg)[0]), \
		     group_setup, group_teardown)

#endif
